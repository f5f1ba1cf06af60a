//! Payable items, pending (or on hold) until they lock into a statement (S8, S11).
//!
//! Stored with interned parties ([`PartyId`]); encoded, for the snapshot and the state root,
//! exactly as the `items` table (tag 9) of docs/FORMAT.md defines it, with full `Party` values.

use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::money::Amount;
use crate::record::Party;

use super::accounts::{Accounts, PartyId};
use super::statement::LineKind;
use super::table::HASH_CHUNK_BYTES;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Item {
    pub debtor: PartyId,
    pub creditor: PartyId,
    pub amount: Amount,
    pub kind: LineKind,
    pub source: Hash,
    pub lock_at_ms: u64,
    /// S11: the creditor was on hold when the item's lock time came.
    pub held: bool,
}

impl Item {
    /// `Party debtor ‖ Party creditor ‖ amount ‖ u8 kind ‖ source ‖ u64 lock at ‖ bool held`.
    fn encode(&self, w: &mut Writer, accounts: &Accounts) {
        accounts.party(self.debtor).encode(w);
        accounts.party(self.creditor).encode(w);
        self.amount.encode(w);
        self.kind.encode(w);
        self.source.encode(w);
        w.u64(self.lock_at_ms);
        w.bool(self.held);
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Items {
    map: BTreeMap<u64, Item>,
    /// Ids touched since the last root, with repeats.
    dirty: Vec<u64>,
}

impl Items {
    pub fn get(&self, id: &u64) -> Option<&Item> {
        self.map.get(id)
    }
    /// Marks the item changed: call only when about to change it.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Item> {
        let item = self.map.get_mut(id)?;
        self.dirty.push(*id);
        Some(item)
    }
    pub fn insert(&mut self, id: u64, item: Item) {
        self.dirty.push(id);
        self.map.insert(id, item);
    }
    pub fn remove(&mut self, id: &u64) -> Option<Item> {
        let item = self.map.remove(id)?;
        self.dirty.push(*id);
        Some(item)
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &Item)> {
        self.map.iter()
    }
    pub fn last_id(&self) -> Option<u64> {
        self.map.keys().next_back().copied()
    }

    /// Same bytes as `Table::hash_changes`: `tag ‖ u64 id ‖ (0 | 1 ‖ u32 len ‖ item)` for every
    /// touched id, in id order.
    pub fn hash_changes(&mut self, tag: u8, hasher: &mut blake3::Hasher, accounts: &Accounts) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut w = Writer::new();
        for id in dirty {
            // Hashed in pieces: a period close removes millions of items.
            if w.len() >= HASH_CHUNK_BYTES {
                hasher.update(&std::mem::take(&mut w).into_bytes());
            }
            w.u8(tag);
            w.u64(id);
            match self.map.get(&id) {
                None => w.u8(0),
                Some(item) => {
                    w.u8(1);
                    w.sized(|w| item.encode(w, accounts));
                }
            }
        }
        hasher.update(&w.into_bytes());
    }

    /// The snapshot encoding of the `items` table: `u32 n ‖ (u64 id ‖ item)×n`, by id.
    pub fn encode(&self, w: &mut Writer, accounts: &Accounts) {
        w.u32(u32::try_from(self.map.len()).expect("fewer than 2^32 items"));
        for (id, item) in &self.map {
            w.u64(*id);
            item.encode(w, accounts);
        }
    }
}

/// An item as decoded from a snapshot, before its parties are resolved (the `balances` table,
/// which every item's parties are in, comes later in the snapshot).
pub(crate) struct RawItems(Vec<(u64, Party, Party, Amount, LineKind, Hash, u64, bool)>);

impl RawItems {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.len("items", u32::MAX as usize)?;
        let mut raw = Vec::with_capacity(len.min(r.remaining() / 16));
        let mut last: Option<u64> = None;
        for _ in 0..len {
            let id = r.u64()?;
            if last.is_some_and(|l| l >= id) {
                return Err(DecodeError::invalid("items", "keys must be sorted and distinct"));
            }
            last = Some(id);
            raw.push((
                id,
                Party::decode(r)?,
                Party::decode(r)?,
                Amount::decode(r)?,
                LineKind::decode(r)?,
                Hash::decode(r)?,
                r.u64()?,
                r.bool("held")?,
            ));
        }
        Ok(RawItems(raw))
    }

    pub fn resolve(self, accounts: &Accounts) -> Result<Items, DecodeError> {
        let mut map = BTreeMap::new();
        let party = |p: &Party| accounts.id(p).ok_or_else(|| DecodeError::invalid("items", "an item's party has no balance"));
        for (id, debtor, creditor, amount, kind, source, lock_at_ms, held) in self.0 {
            let item = Item { debtor: party(&debtor)?, creditor: party(&creditor)?, amount, kind, source, lock_at_ms, held };
            map.insert(id, item);
        }
        Ok(Items { map, dirty: Vec::new() })
    }
}
