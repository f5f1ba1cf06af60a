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
use super::table::{leaf_of, Leaves, NO_SLOT};
use super::tree::{SlotTree, EMPTY};
use crate::merkle::InclusionProof;

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

/// Empty item slots a snapshot may hold: items removed (locked into the period's statement,
/// or reversed to zero) since the last period close, which compacts them. They take no bytes
/// in a snapshot and no memory in the decoded tree (sparse chunks, `tree.rs`); the bound keeps
/// the slot count sane.
const EMPTY_SLOTS_MAX: u64 = 1 << 26;

/// Item ids per chunk of [`Items`].
const ITEM_CHUNK: u64 = 256;

/// Items by id in chunks of [`ITEM_CHUNK`] consecutive ids, the chunks in pages of
/// [`PAGE_CHUNKS`] (a million ids), the pages in an ordered map. Ids are handed out in order
/// and items leave roughly in order (when they lock), so the live ones fill one or two pages:
/// a lookup is a step in a map of a few pages and two indexings, instead of a walk down an
/// ordered map of a million entries, and an item costs its own size instead of a map node's
/// share (a map filled in key order keeps its nodes about half full). A chunk is freed when
/// its last item leaves and a page when its last chunk does; an item on hold keeps only its
/// chunk and page, and a snapshot with far-apart ids costs only the pages it fills.
#[derive(Clone, Debug, Default)]
pub(crate) struct Items {
    /// Page `p` holds chunks `[p·PAGE_CHUNKS, (p + 1)·PAGE_CHUNKS)`; chunk `k` ids
    /// `[k·ITEM_CHUNK, (k + 1)·ITEM_CHUNK)`.
    pages: BTreeMap<u64, Page>,
    len: usize,
    /// Ids touched since the last root, with repeats.
    dirty: Vec<u64>,
    tree: SlotTree,
}

/// Each item with its slot in the tree (`NO_SLOT` until its block ends).
#[derive(Clone, Debug)]
struct Chunk {
    live: u32,
    entries: Box<[Option<(Item, u64)>]>,
}

/// Chunks per page of [`Items`].
const PAGE_CHUNKS: u64 = 4096;

#[derive(Clone, Debug)]
struct Page {
    live: u32,
    chunks: Box<[Option<Box<Chunk>>]>,
}

fn entry_in(pages: &mut BTreeMap<u64, Page>, id: u64) -> Option<&mut (Item, u64)> {
    let k = id / ITEM_CHUNK;
    pages.get_mut(&(k / PAGE_CHUNKS))?.chunks[(k % PAGE_CHUNKS) as usize].as_mut()?.entries[(id % ITEM_CHUNK) as usize].as_mut()
}

impl Items {
    fn entry(&self, id: u64) -> Option<&(Item, u64)> {
        let k = id / ITEM_CHUNK;
        self.pages.get(&(k / PAGE_CHUNKS))?.chunks[(k % PAGE_CHUNKS) as usize].as_ref()?.entries[(id % ITEM_CHUNK) as usize].as_ref()
    }
    fn entry_mut(&mut self, id: u64) -> Option<&mut (Item, u64)> {
        entry_in(&mut self.pages, id)
    }
    pub fn get(&self, id: &u64) -> Option<&Item> {
        self.entry(*id).map(|(item, _)| item)
    }
    /// Marks the item changed: call only when about to change it.
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut Item> {
        let (item, _) = entry_in(&mut self.pages, *id)?;
        self.dirty.push(*id);
        Some(item)
    }
    pub fn insert(&mut self, id: u64, item: Item) {
        self.dirty.push(id);
        let k = id / ITEM_CHUNK;
        let page = self.pages.entry(k / PAGE_CHUNKS).or_insert_with(|| Page { live: 0, chunks: vec![None; PAGE_CHUNKS as usize].into_boxed_slice() });
        let slot = &mut page.chunks[(k % PAGE_CHUNKS) as usize];
        if slot.is_none() {
            page.live += 1;
        }
        let c = slot.get_or_insert_with(|| Box::new(Chunk { live: 0, entries: vec![None; ITEM_CHUNK as usize].into_boxed_slice() }));
        let at = &mut c.entries[(id % ITEM_CHUNK) as usize];
        match at {
            Some((old, _)) => *old = item,
            None => {
                *at = Some((item, NO_SLOT));
                c.live += 1;
                self.len += 1;
            }
        }
    }
    /// Removes the item; its slot (if it has one) becomes empty.
    pub fn remove(&mut self, id: &u64) -> Option<Item> {
        let k = id / ITEM_CHUNK;
        let page = self.pages.get_mut(&(k / PAGE_CHUNKS))?;
        let chunk = &mut page.chunks[(k % PAGE_CHUNKS) as usize];
        let c = chunk.as_mut()?;
        let (item, slot) = c.entries[(id % ITEM_CHUNK) as usize].take()?;
        c.live -= 1;
        self.len -= 1;
        if c.live == 0 {
            *chunk = None;
            page.live -= 1;
            if page.live == 0 {
                self.pages.remove(&(k / PAGE_CHUNKS));
            }
        }
        if slot != NO_SLOT {
            self.tree.set(slot, EMPTY);
        }
        Some(item)
    }
    pub fn len(&self) -> usize {
        self.len
    }
    fn entries(&self) -> impl DoubleEndedIterator<Item = (u64, &(Item, u64))> {
        let chunks = self.pages.iter().flat_map(|(p, page)| {
            page.chunks.iter().enumerate().filter_map(move |(i, c)| c.as_ref().map(|c| (p * PAGE_CHUNKS + i as u64, c)))
        });
        chunks.flat_map(move |(k, c)| {
            let base = k * ITEM_CHUNK;
            c.entries.iter().enumerate().filter_map(move |(i, e)| e.as_ref().map(|e| (base + i as u64, e)))
        })
    }
    /// The items in id order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Item)> {
        self.entries().map(|(id, (item, _))| (id, item))
    }
    pub fn last_id(&self) -> Option<u64> {
        self.entries().next_back().map(|(id, _)| id)
    }

    /// Writes the leaves of the touched items (new ones take the next slots, in id order),
    /// compacts the tree when `compact` (a period closed) and it has empty slots, and returns
    /// the table's root.
    pub fn commit(&mut self, buffer: &mut Writer, accounts: &Accounts, compact: bool) -> Hash {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut leaves = Leaves::new(&mut self.tree, buffer);
        for id in &dirty {
            let Some((item, slot)) = entry_in(&mut self.pages, *id) else { continue };
            leaves.queue(slot, |w| {
                w.u64(*id);
                item.encode(w, accounts);
            });
        }
        leaves.write();
        dirty.clear();
        self.dirty = dirty;
        if compact && self.tree.empty_slots() > 0 {
            let moved = self.tree.compact();
            let chunks = self.pages.values_mut().flat_map(|p| p.chunks.iter_mut().flatten());
            for (_, slot) in chunks.flat_map(|c| c.entries.iter_mut().flatten()) {
                *slot = moved[*slot as usize];
            }
        }
        self.tree.root()
    }

    /// The encoded key and value of item `id` and its leaf's path (committed tree).
    pub fn prove(&self, id: u64, accounts: &Accounts) -> Option<(Vec<u8>, Vec<u8>, InclusionProof)> {
        let (item, slot) = self.entry(id)?;
        let path = self.tree.prove(*slot)?;
        let mut w = Writer::new();
        item.encode(&mut w, accounts);
        Some((id.to_bytes(), w.into_bytes(), path))
    }

    /// The snapshot encoding of the `items` table: `u64 slots ‖ u32 n ‖ (u64 id ‖ item ‖ u64
    /// slot)×n`, by id (slots ascend with ids).
    pub fn encode(&self, w: &mut Writer, accounts: &Accounts) {
        debug_assert!(self.dirty.is_empty(), "a snapshot is taken between blocks");
        w.u64(self.tree.len());
        w.u32(u32::try_from(self.len).expect("fewer than 2^32 items"));
        for (id, (item, slot)) in self.entries() {
            w.u64(id);
            item.encode(w, accounts);
            w.u64(*slot);
        }
    }
}

/// An item as decoded from a snapshot, before its parties are resolved (the `balances` table,
/// which every item's parties are in, comes later in the snapshot).
pub(crate) struct RawItems {
    slots: u64,
    items: Vec<(u64, Party, Party, Amount, LineKind, Hash, u64, bool, u64)>,
}

impl RawItems {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let slots = r.u64()?;
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
                r.u64()?,
            ));
        }
        // Slots ascend with ids and lie below the tree size.
        let mut next = 0u64;
        for item in &raw {
            if item.8 < next || item.8 >= slots {
                return Err(DecodeError::invalid("items", "slots must ascend with ids and lie below the slot count"));
            }
            next = item.8 + 1;
        }
        if slots - len as u64 > EMPTY_SLOTS_MAX {
            return Err(DecodeError::invalid("items", "more empty slots than a period leaves"));
        }
        Ok(RawItems { slots, items: raw })
    }

    pub fn resolve(self, accounts: &Accounts) -> Result<Items, DecodeError> {
        let mut items = Items::default();
        let party = |p: &Party| accounts.id(p).ok_or_else(|| DecodeError::invalid("items", "an item's party has no balance"));
        // The empty slots stay sparse: they cost the snapshot no bytes (`SlotTree::from_sparse`).
        let mut leaves = Vec::with_capacity(self.items.len());
        let mut buffer = Writer::new();
        for (id, debtor, creditor, amount, kind, source, lock_at_ms, held, slot) in self.items {
            let item = Item { debtor: party(&debtor)?, creditor: party(&creditor)?, amount, kind, source, lock_at_ms, held };
            leaves.push((
                slot,
                leaf_of(&mut buffer, |w| {
                    w.u64(id);
                    item.encode(w, accounts);
                }),
            ));
            items.insert(id, item);
            items.entry_mut(id).expect("just inserted").1 = slot;
        }
        items.dirty.clear();
        items.tree = SlotTree::from_sparse(self.slots, leaves);
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> Item {
        Item { debtor: 0, creditor: 1, amount: Amount::from_cents(n % 1000 + 1).expect("amount"), kind: LineKind::Referral, source: Hash::digest(&n.to_be_bytes()), lock_at_ms: n, held: false }
    }

    #[test]
    fn chunks_behave_as_an_ordered_map_of_ids() {
        // Ids within one chunk, across chunks and far apart (a chunk each, nothing between).
        let ids = [0u64, 5, 255, 256, 300, 1 << 40, u64::MAX - 1];
        let mut items = Items::default();
        let mut mirror = BTreeMap::new();
        for id in ids.iter().rev() {
            items.insert(*id, item(*id));
            mirror.insert(*id, item(*id));
        }
        assert_eq!(items.pages.len(), 3);
        assert_eq!(items.pages.values().map(|p| p.live).sum::<u32>(), 4);
        let listed: Vec<(u64, Item)> = items.iter().map(|(id, i)| (id, i.clone())).collect();
        assert_eq!(listed, mirror.clone().into_iter().collect::<Vec<_>>());
        assert_eq!(items.last_id(), Some(u64::MAX - 1));
        assert_eq!(items.get(&6), None);
        // Replacing keeps the count; removing empties chunks.
        items.insert(5, item(50));
        assert_eq!((items.len(), items.get(&5)), (ids.len(), Some(&item(50))));
        for id in [0, 5, 255, 1 << 40] {
            assert!(items.remove(&id).is_some());
            assert_eq!(items.remove(&id), None);
        }
        assert_eq!(items.pages.len(), 2);
        assert_eq!(items.pages.values().map(|p| p.live).sum::<u32>(), 2);
        assert_eq!(items.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![256, 300, u64::MAX - 1]);
        assert_eq!(items.len(), 3);
    }
}
