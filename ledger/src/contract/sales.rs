//! The sales table (tag 8 of the state root): every sale by (seller, order id), kept for
//! refunds and revocations (S6, S8).
//!
//! Stored as seller → order id → sale, with each sale boxed: a lookup compares one 32-byte key
//! per level of a 200-entry map and then short order ids, instead of (key, order id) pairs
//! all the way down a map of millions, and inserting never shifts whole sales inside the tree's
//! nodes. The iteration order — seller, then order id — is the order of `NamedKey`, so the
//! snapshot and the root see exactly a `Table<NamedKey, Sale>` (docs/FORMAT.md).

use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

use super::accounts::Accounts;
use crate::keys::PublicKey;

use super::types::{NamedKey, RawSaleParties, Sale};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sales {
    /// By the seller's key bytes (the order of `PublicKey`), which are 32 bytes where a
    /// `PublicKey` value is several times that (it carries its decompressed point).
    map: BTreeMap<[u8; 32], (PublicKey, BTreeMap<String, Box<Sale>>)>,
    len: usize,
    /// (seller key bytes, order id) touched since the last root, with repeats.
    dirty: Vec<([u8; 32], String)>,
}

impl Sales {
    pub fn get(&self, key: &NamedKey) -> Option<&Sale> {
        self.map.get(key.merchant.as_bytes())?.1.get(key.name.as_str()).map(|s| &**s)
    }
    pub fn contains(&self, key: &NamedKey) -> bool {
        self.get(key).is_some()
    }
    /// Marks the sale changed: call only when about to change it.
    pub fn get_mut(&mut self, key: &NamedKey) -> Option<&mut Sale> {
        let sale = self.map.get_mut(key.merchant.as_bytes())?.1.get_mut(key.name.as_str())?;
        self.dirty.push((*key.merchant.as_bytes(), key.name.clone()));
        Some(&mut **sale)
    }
    pub fn insert(&mut self, key: NamedKey, sale: Sale) {
        self.dirty.push((*key.merchant.as_bytes(), key.name.clone()));
        let orders = &mut self.map.entry(*key.merchant.as_bytes()).or_insert_with(|| (key.merchant, BTreeMap::new())).1;
        if orders.insert(key.name, Box::new(sale)).is_none() {
            self.len += 1;
        }
    }

    /// Same bytes as `Table::hash_changes` over `Table<NamedKey, Sale>` (sales are never
    /// removed, so every touched key is present).
    pub fn hash_changes(&mut self, tag: u8, hasher: &mut blake3::Hasher, accounts: &Accounts) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut w = Writer::new();
        let mut at = 0;
        while at < dirty.len() {
            // One seller's keys at a time: one lookup of the seller (sales are never removed,
            // so a touched seller is present).
            let merchant_bytes = dirty[at].0;
            let (merchant, orders) = self.map.get(&merchant_bytes).expect("a touched sale's seller is in the table");
            while at < dirty.len() && dirty[at].0 == merchant_bytes {
                let name = &dirty[at].1;
                w.u8(tag);
                merchant.encode(&mut w);
                w.str(name);
                match orders.get(name.as_str()) {
                    None => w.u8(0),
                    Some(sale) => {
                        // `u32 len ‖ sale`, written in one pass.
                        w.u8(1);
                        w.u32(u32::try_from(sale.encoded_len_with(accounts)).expect("a sale is far below 4 GiB"));
                        sale.encode_with(&mut w, accounts);
                    }
                }
                at += 1;
            }
            hasher.update(&std::mem::take(&mut w).into_bytes());
        }
        hasher.update(&w.into_bytes());
    }

    /// `u32 n ‖ (NamedKey ‖ Sale)×n`, by (seller, order id).
    pub fn encode(&self, w: &mut Writer, accounts: &Accounts) {
        w.u32(u32::try_from(self.len).expect("fewer than 2^32 sales"));
        for (merchant, orders) in self.map.values() {
            for (name, sale) in orders {
                merchant.encode(w);
                w.str(name);
                sale.encode_with(w, accounts);
            }
        }
    }
}

/// Sales as decoded from a snapshot, before the `balances` table (later in the snapshot)
/// resolves their items' parties.
pub(crate) struct RawSales(Vec<(NamedKey, Sale, RawSaleParties)>);

impl RawSales {
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.len("sales", u32::MAX as usize)?;
        let mut raw: Vec<(NamedKey, Sale, RawSaleParties)> = Vec::with_capacity(len.min(r.remaining() / 64));
        for _ in 0..len {
            let key = NamedKey::decode(r)?;
            if raw.last().is_some_and(|(last, _, _)| *last >= key) {
                return Err(DecodeError::invalid("sales", "keys must be sorted and distinct"));
            }
            let (sale, parties) = Sale::decode_raw(r)?;
            raw.push((key, sale, parties));
        }
        Ok(RawSales(raw))
    }

    pub fn resolve(self, accounts: &Accounts) -> Result<Sales, DecodeError> {
        let mut sales = Sales::default();
        for (key, mut sale, parties) in self.0 {
            sale.resolve(parties, accounts)?;
            sales.insert(key, sale);
        }
        sales.dirty.clear();
        Ok(sales)
    }
}
