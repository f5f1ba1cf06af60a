//! A sorted map with a Merkle tree over its entries: the tree remembers which keys a block
//! touched, so the root is recomputed along the changed paths only (docs/FORMAT.md, "State
//! root"; the tree is [`SlotTree`]).

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::merkle::InclusionProof;

use super::tree::{SlotTree, EMPTY};

/// An entry that has no slot yet (inserted in the current block).
pub(crate) const NO_SLOT: u64 = u64::MAX;

/// The byte a leaf's hashed bytes start with (docs/FORMAT.md, "Table trees").
const LEAF_PREFIX: u8 = 0x00;

/// `H(0x00 ‖ key ‖ value)`, encoded into `buffer` (cleared first).
pub(crate) fn leaf_of(buffer: &mut Writer, encode: impl FnOnce(&mut Writer)) -> Hash {
    buffer.clear();
    buffer.u8(LEAF_PREFIX);
    encode(buffer);
    Hash::digest(buffer.as_slice())
}

/// The leaves one commit writes into a table's tree, encoded one after another into one
/// buffer and hashed together when it finishes (several at a time where the processor can:
/// `plaza_hash_many`). A new entry's slot is given when its leaf is queued: the next free
/// slot, in the order leaves are queued.
pub(crate) struct Leaves<'a> {
    tree: &'a mut SlotTree,
    buffer: &'a mut Writer,
    ends: Vec<usize>,
    slots: Vec<u64>,
    next: u64,
}

impl<'a> Leaves<'a> {
    pub fn new(tree: &'a mut SlotTree, buffer: &'a mut Writer) -> Self {
        buffer.clear();
        let next = tree.len();
        Leaves { tree, buffer, ends: Vec::new(), slots: Vec::new(), next }
    }

    /// Queues the leaf `H(0x00 ‖ what encode writes)` for `slot`; a new entry's slot
    /// (`NO_SLOT`) becomes the next free one.
    pub fn queue(&mut self, slot: &mut u64, encode: impl FnOnce(&mut Writer)) {
        if *slot == NO_SLOT {
            *slot = self.next;
            self.next += 1;
        }
        self.buffer.u8(LEAF_PREFIX);
        encode(self.buffer);
        self.ends.push(self.buffer.len());
        self.slots.push(*slot);
    }

    /// Hashes the queued leaves and writes them into the tree (the caller then takes its root).
    pub fn write(self) {
        let bytes = self.buffer.as_slice();
        let mut start = 0;
        let inputs: Vec<&[u8]> = self
            .ends
            .iter()
            .map(|&end| {
                let input = &bytes[start..end];
                start = end;
                input
            })
            .collect();
        let mut hashes = vec![[0u8; 32]; inputs.len()];
        plaza_hash_many::hash_each(None, &inputs, &mut hashes);
        for (&slot, hash) in self.slots.iter().zip(hashes) {
            if slot == self.tree.len() {
                self.tree.push(Hash(hash));
            } else {
                self.tree.set(slot, Hash(hash));
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Table<K: Ord, V> {
    map: BTreeMap<K, Slot<V>>,
    /// Keys touched since the last root, each once (a slot's flag says whether its key is
    /// listed): sorted when hashed. Hot keys — a referral code or a referrer touched by every
    /// sale — are listed once per block, not once per touch.
    dirty: Vec<K>,
    tree: SlotTree,
}

/// A value, whether it changed since the last root (false between blocks), and its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot<V> {
    value: V,
    touched: bool,
    slot: u64,
}

impl<K: Ord + Clone + Encode + Decode, V: Encode + Decode> Table<K, V> {
    pub fn new() -> Self {
        Table { map: BTreeMap::new(), dirty: Vec::new(), tree: SlotTree::default() }
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|slot| &slot.value)
    }
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
    /// Marks the key changed: call only when about to change the value.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let slot = self.map.get_mut(key)?;
        if !slot.touched {
            slot.touched = true;
            self.dirty.push(key.clone());
        }
        Some(&mut slot.value)
    }
    pub fn insert(&mut self, key: K, value: V) {
        match self.map.entry(key) {
            Entry::Occupied(mut entry) => {
                let slot = entry.get_mut();
                slot.value = value;
                if !slot.touched {
                    slot.touched = true;
                    self.dirty.push(entry.key().clone());
                }
            }
            Entry::Vacant(entry) => {
                self.dirty.push(entry.key().clone());
                entry.insert(Slot { value, touched: true, slot: NO_SLOT });
            }
        }
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.map.iter().map(|(key, slot)| (key, &slot.value))
    }

    /// Writes the leaves of the touched keys (new keys take the next slots, in key order),
    /// forgets the touched set and returns the table's root. (Entries are never removed from
    /// a `Table`, so it has no empty slots.)
    pub fn commit(&mut self, buffer: &mut Writer) -> Hash {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        let mut leaves = Leaves::new(&mut self.tree, buffer);
        for key in &dirty {
            let Some(slot) = self.map.get_mut(key) else { continue };
            slot.touched = false;
            leaves.queue(&mut slot.slot, |w| {
                key.encode(w);
                slot.value.encode(w);
            });
        }
        leaves.write();
        // Keep the vector's capacity for the next block.
        dirty.clear();
        self.dirty = dirty;
        self.tree.root()
    }

    /// The encoded key and value of `key` and the path of its leaf to the table's root
    /// (the table must be committed).
    pub fn prove(&self, key: &K) -> Option<(Vec<u8>, Vec<u8>, InclusionProof)> {
        let slot = self.map.get(key)?;
        let path = self.tree.prove(slot.slot)?;
        Some((key.to_bytes(), slot.value.to_bytes(), path))
    }

    /// Snapshot: `u64 slots ‖ u32 n ‖ (key ‖ value ‖ u64 slot)×n`, by key; the slots of a
    /// `Table` are exactly 0 … n−1. The tree is rebuilt from the entries.
    pub fn decode_table(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let slots = r.u64()?;
        let len = r.len(what, u32::MAX as usize)?;
        if slots != len as u64 {
            return Err(DecodeError::invalid(what, "a table's slots are exactly its entries"));
        }
        let mut map = BTreeMap::new();
        let mut leaves = vec![EMPTY; len.min(r.remaining())];
        let mut buffer = Writer::new();
        let mut last: Option<K> = None;
        for _ in 0..len {
            let key = K::decode(r)?;
            if let Some(prev) = &last {
                if *prev >= key {
                    return Err(DecodeError::invalid(what, "keys must be sorted and distinct"));
                }
            }
            let value = V::decode(r)?;
            let slot = r.u64()?;
            let Some(at) = leaves.get_mut(usize::try_from(slot).unwrap_or(usize::MAX)).filter(|l| **l == EMPTY) else {
                return Err(DecodeError::invalid(what, "a slot out of range or taken twice"));
            };
            *at = leaf_of(&mut buffer, |w| {
                key.encode(w);
                value.encode(w);
            });
            last = Some(key.clone());
            map.insert(key, Slot { value, touched: false, slot });
        }
        Ok(Table { map, dirty: Vec::new(), tree: SlotTree::from_leaves(leaves) })
    }
}

impl<K: Ord + Clone + Encode + Decode, V: Encode + Decode> Encode for Table<K, V> {
    fn encode(&self, w: &mut Writer) {
        debug_assert!(self.dirty.is_empty(), "a snapshot is taken between blocks");
        w.u64(self.tree.len());
        w.u32(u32::try_from(self.map.len()).expect("tables hold fewer than 2^32 entries"));
        for (k, slot) in &self.map {
            k.encode(w);
            slot.value.encode(w);
            w.u64(slot.slot);
        }
    }
}
