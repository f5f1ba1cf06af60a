//! A sorted map that remembers which keys a block touched, so the state root can hash the
//! block's changes instead of the whole state (docs/FORMAT.md, "State root and statements").

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

/// The change buffer is handed to the hasher whenever it grows past this many bytes.
pub(crate) const HASH_CHUNK_BYTES: usize = 1 << 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Table<K: Ord, V> {
    map: BTreeMap<K, Slot<V>>,
    /// Keys touched since the last root, each once (a slot's flag says whether its key is
    /// listed): sorted when hashed. Hot keys — a referral code or a referrer touched by every
    /// sale — are listed once per block, not once per touch.
    dirty: Vec<K>,
}

/// A value and whether it changed since the last root (false between blocks).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Slot<V> {
    value: V,
    touched: bool,
}

impl<K: Ord + Clone + Encode + Decode, V: Encode + Decode> Table<K, V> {
    pub fn new() -> Self {
        Table { map: BTreeMap::new(), dirty: Vec::new() }
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
                entry.insert(Slot { value, touched: true });
            }
        }
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.map.iter().map(|(key, slot)| (key, &slot.value))
    }

    /// Feeds `tag ‖ key ‖ (0 | 1 ‖ u32 len ‖ value)` for every touched key, in key order, and
    /// forgets the touched set. Each value is encoded once, straight into the buffer. (Entries
    /// are never removed from a `Table`, so the `0` form does not occur here.)
    pub fn hash_changes(&mut self, tag: u8, hasher: &mut blake3::Hasher) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        let mut w = Writer::new();
        for key in &dirty {
            w.u8(tag);
            key.encode(&mut w);
            match self.map.get_mut(key) {
                None => w.u8(0),
                Some(slot) => {
                    slot.touched = false;
                    w.u8(1);
                    w.sized(|w| slot.value.encode(w));
                }
            }
            if w.len() >= HASH_CHUNK_BYTES {
                hasher.update(&std::mem::take(&mut w).into_bytes());
            }
        }
        hasher.update(&w.into_bytes());
        // Keep the vector's capacity for the next block.
        dirty.clear();
        self.dirty = dirty;
    }

    pub fn clear_changes(&mut self) {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(slot) = self.map.get_mut(&key) {
                slot.touched = false;
            }
        }
    }

    pub fn decode_table(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let len = r.len(what, u32::MAX as usize)?;
        let mut map = BTreeMap::new();
        let mut last: Option<K> = None;
        for _ in 0..len {
            let key = K::decode(r)?;
            if let Some(prev) = &last {
                if *prev >= key {
                    return Err(DecodeError::invalid(what, "keys must be sorted and distinct"));
                }
            }
            let value = V::decode(r)?;
            last = Some(key.clone());
            map.insert(key, Slot { value, touched: false });
        }
        Ok(Table { map, dirty: Vec::new() })
    }
}

impl<K: Ord + Clone + Encode + Decode, V: Encode + Decode> Encode for Table<K, V> {
    fn encode(&self, w: &mut Writer) {
        w.u32(u32::try_from(self.map.len()).expect("tables hold fewer than 2^32 entries"));
        for (k, slot) in &self.map {
            k.encode(w);
            slot.value.encode(w);
        }
    }
}
