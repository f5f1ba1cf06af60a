//! The sales table (tag 8 of the state root): every sale by (seller, order id), kept for
//! refunds and revocations (S6, S8).
//!
//! Stored as seller → order id → sale, with each sale boxed: a lookup compares one 32-byte key
//! per level of a 200-entry map and then short order ids, instead of (key, order id) pairs
//! all the way down a map of millions, and inserting never shifts whole sales inside the tree's
//! nodes. Order ids are [`OrderId`]s, held inline in the nodes and compared as words, in the
//! byte order of `String`. The iteration order — seller, then order id — is the order of `NamedKey`, so the
//! snapshot and the root see exactly a `Table<NamedKey, Sale>` (docs/FORMAT.md).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

use super::accounts::Accounts;
use super::table::{leaf_of, Leaves, NO_SLOT};
use super::tree::SlotTree;
use crate::hash::Hash;
use crate::merkle::InclusionProof;
use crate::keys::PublicKey;

use super::types::{NamedKey, RawSaleParties, Sale};

/// Bytes of an order id held inline, in the map's nodes.
const ORDER_HEAD_BYTES: usize = 24;

/// A sale's order id, ordered as `String` orders it (by bytes). The first 24 bytes are held
/// inline as three big-endian words (zero-padded), the rest (ids are at most 64 bytes) on the
/// heap: a lookup compares words inside the tree's nodes instead of following a pointer to each
/// key's bytes, and ids of up to 24 bytes allocate nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OrderId {
    head: [u64; 3],
    len: u8,
    tail: Option<Box<[u8]>>,
}

impl OrderId {
    pub fn new(order: &str) -> OrderId {
        let bytes = order.as_bytes();
        let len = u8::try_from(bytes.len()).expect("order ids are at most 64 bytes");
        let mut head = [0u8; ORDER_HEAD_BYTES];
        let inline = bytes.len().min(ORDER_HEAD_BYTES);
        head[..inline].copy_from_slice(&bytes[..inline]);
        let (words, _) = head.as_chunks::<8>();
        OrderId {
            head: [u64::from_be_bytes(words[0]), u64::from_be_bytes(words[1]), u64::from_be_bytes(words[2])],
            len,
            tail: (bytes.len() > ORDER_HEAD_BYTES).then(|| bytes[ORDER_HEAD_BYTES..].into()),
        }
    }

    /// The bytes after the first 24.
    fn tail(&self) -> &[u8] {
        self.tail.as_deref().unwrap_or(&[])
    }

    /// `string`: `u32 len ‖ bytes`, as `Writer::str` writes the id.
    pub fn encode(&self, w: &mut Writer) {
        let mut head = [0u8; ORDER_HEAD_BYTES];
        for (chunk, word) in head.chunks_exact_mut(8).zip(self.head) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        w.u32(u32::from(self.len));
        w.raw(&head[..usize::from(self.len).min(ORDER_HEAD_BYTES)]);
        if let Some(tail) = &self.tail {
            w.raw(tail);
        }
    }
}

impl PartialOrd for OrderId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderId {
    /// Byte order: equal zero-padded heads mean one id's first 24 bytes are a prefix of the
    /// other's (or equal), so the tails, then the lengths, decide.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.head.cmp(&other.head).then_with(|| self.tail().cmp(other.tail()).then(self.len.cmp(&other.len)))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sales {
    /// Each sale with its slot in the tree (`NO_SLOT` until its block ends).
    map: BTreeMap<PublicKey, BTreeMap<OrderId, (Box<Sale>, u64)>>,
    len: usize,
    /// (seller, order id) touched since the last root, with repeats.
    dirty: Vec<(PublicKey, OrderId)>,
    tree: SlotTree,
}

impl Sales {
    pub fn get(&self, seller: &PublicKey, order: &OrderId) -> Option<&Sale> {
        self.map.get(seller)?.get(order).map(|(s, _)| &**s)
    }
    /// Sellers with at least one sale, sorted (for the explorer's order search).
    pub fn sellers(&self) -> impl Iterator<Item = &PublicKey> {
        self.map.keys()
    }
    pub fn contains(&self, seller: &PublicKey, order: &OrderId) -> bool {
        self.get(seller, order).is_some()
    }
    /// Marks the sale changed: call only when about to change it.
    pub fn get_mut(&mut self, seller: &PublicKey, order: &OrderId) -> Option<&mut Sale> {
        let (sale, _) = self.map.get_mut(seller)?.get_mut(order)?;
        self.dirty.push((*seller, order.clone()));
        Some(&mut **sale)
    }
    pub fn insert(&mut self, seller: PublicKey, order: OrderId, sale: Sale) {
        self.dirty.push((seller, order.clone()));
        match self.map.entry(seller).or_default().entry(order) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().0 = Box::new(sale),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert((Box::new(sale), NO_SLOT));
                self.len += 1;
            }
        }
    }

    /// Writes the leaves of the touched sales (new ones take the next slots, in key order)
    /// and returns the table's root. Sales are never removed, so every touched key is present.
    pub fn commit(&mut self, buffer: &mut Writer, accounts: &Accounts) -> Hash {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut leaves = Leaves::new(&mut self.tree, buffer);
        let mut at = 0;
        while at < dirty.len() {
            // One seller's keys at a time: one lookup of the seller.
            let seller = dirty[at].0;
            let orders = self.map.get_mut(&seller).expect("a touched sale's seller is in the table");
            while at < dirty.len() && dirty[at].0 == seller {
                let order = &dirty[at].1;
                if let Some((sale, slot)) = orders.get_mut(order) {
                    leaves.queue(slot, |w| {
                        seller.encode(w);
                        order.encode(w);
                        sale.encode_with(w, accounts);
                    });
                }
                at += 1;
            }
        }
        leaves.write();
        dirty.clear();
        self.dirty = dirty;
        self.tree.root()
    }

    /// The encoded key and value of a sale and its leaf's path (committed tree).
    pub fn prove(&self, seller: &PublicKey, order: &OrderId, accounts: &Accounts) -> Option<(Vec<u8>, Vec<u8>, InclusionProof)> {
        let (sale, slot) = self.map.get(seller)?.get(order)?;
        let path = self.tree.prove(*slot)?;
        let mut key = Writer::new();
        seller.encode(&mut key);
        order.encode(&mut key);
        let mut value = Writer::new();
        sale.encode_with(&mut value, accounts);
        Some((key.into_bytes(), value.into_bytes(), path))
    }

    /// `u64 slots ‖ u32 n ‖ (NamedKey ‖ Sale ‖ u64 slot)×n`, by (seller, order id).
    pub fn encode(&self, w: &mut Writer, accounts: &Accounts) {
        debug_assert!(self.dirty.is_empty(), "a snapshot is taken between blocks");
        w.u64(self.tree.len());
        w.u32(u32::try_from(self.len).expect("fewer than 2^32 sales"));
        for (seller, orders) in &self.map {
            for (order, (sale, slot)) in orders {
                seller.encode(w);
                order.encode(w);
                sale.encode_with(w, accounts);
                w.u64(*slot);
            }
        }
    }
}

/// Sales as decoded from a snapshot, before the `balances` table (later in the snapshot)
/// resolves their items' parties.
pub(crate) struct RawSales(Vec<(NamedKey, Sale, RawSaleParties, u64)>);

impl RawSales {
    /// Sales have no empty slots: the slots are exactly 0 … n−1.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let slots = r.u64()?;
        let len = r.len("sales", u32::MAX as usize)?;
        if slots != len as u64 {
            return Err(DecodeError::invalid("sales", "a table's slots are exactly its entries"));
        }
        // Every sale takes more than 8 bytes (its slot alone is a u64): a count the bytes
        // left cannot hold is refused before anything is allocated for it.
        if len > r.remaining() / 8 {
            return Err(DecodeError::invalid("sales", "more sales than the snapshot's bytes can hold"));
        }
        let mut raw: Vec<(NamedKey, Sale, RawSaleParties, u64)> = Vec::with_capacity(len.min(r.remaining() / 64));
        let mut taken = vec![false; len];
        for _ in 0..len {
            let key = NamedKey::decode(r)?;
            if raw.last().is_some_and(|(last, _, _, _)| *last >= key) {
                return Err(DecodeError::invalid("sales", "keys must be sorted and distinct"));
            }
            let (sale, parties) = Sale::decode_raw(r)?;
            let slot = r.u64()?;
            match taken.get_mut(usize::try_from(slot).unwrap_or(usize::MAX)) {
                Some(t) if !*t => *t = true,
                _ => return Err(DecodeError::invalid("sales", "a slot out of range or taken twice")),
            }
            raw.push((key, sale, parties, slot));
        }
        Ok(RawSales(raw))
    }

    pub fn resolve(self, accounts: &Accounts) -> Result<Sales, DecodeError> {
        let mut sales = Sales::default();
        let mut leaves = vec![crate::hash::Hash::ZERO; self.0.len()];
        let mut buffer = Writer::new();
        for (key, mut sale, parties, slot) in self.0 {
            sale.resolve(parties, accounts)?;
            let order = OrderId::new(&key.name);
            leaves[slot as usize] = leaf_of(&mut buffer, |w| {
                key.merchant.encode(w);
                order.encode(w);
                sale.encode_with(w, accounts);
            });
            sales.map.entry(key.merchant).or_default().insert(order, (Box::new(sale), slot));
            sales.len += 1;
        }
        sales.tree = SlotTree::from_leaves(leaves);
        Ok(sales)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_compare_as_strings_do() {
        let words = [
            "", "a", "o", "o1", "o10", "o9", "o-1", "o-10", "order-00000001", "order-00000001x", "order-0000000", "zzzzzzzzzzzzzzzz", "é",
            "o\u{0}", "2026-11-23/pos-01/000001", "2026-11-23/pos-01/0000010", "2026-11-23/pos-01/00000", "2026-11-23/pos-01/000001\u{0}",
            "x\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
            "x\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}",
            "x", "x\u{0}",
        ];
        for a in words {
            for b in words {
                assert_eq!(OrderId::new(a).cmp(&OrderId::new(b)), a.cmp(b), "{a:?} vs {b:?}");
                assert_eq!(OrderId::new(a) == OrderId::new(b), a == b);
            }
            let mut w = Writer::new();
            OrderId::new(a).encode(&mut w);
            assert_eq!(w.into_bytes(), a.to_owned().to_bytes(), "{a:?}");
        }
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Short strings over a small alphabet, so prefixes and equal words are common.
            let make = |mut v: u64| -> String {
                let len = (v % 20) as usize;
                v /= 20;
                (0..len).map(|i| [b'a', b'b', b'0'][((v >> (2 * i)) % 3) as usize] as char).collect()
            };
            let (a, b) = (make(x), make(x.rotate_left(29)));
            assert_eq!(OrderId::new(&a).cmp(&OrderId::new(&b)), a.cmp(&b), "{a:?} vs {b:?}");
        }
    }
}
