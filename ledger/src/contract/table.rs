//! A sorted map that remembers which keys a block touched, so the state root can hash the
//! block's changes instead of the whole state (docs/FORMAT.md, "State root and statements").

use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

use super::types::EncodedLen;

/// `u32 len ‖ value`, as `Writer::bytes(&value.to_bytes())` writes it, without the copy.
pub(crate) fn write_sized<V: EncodedLen>(w: &mut Writer, value: &V) {
    let len = value.encoded_len();
    w.u32(u32::try_from(len).expect("values are far below 4 GiB"));
    debug_assert_eq!(len, value.to_bytes().len(), "encoded_len matches the encoding");
    value.encode(w);
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Table<K: Ord, V> {
    map: BTreeMap<K, V>,
    /// Keys touched since the last root, with repeats (sorted and deduplicated when hashed:
    /// cheaper than a sorted set on the hot path).
    dirty: Vec<K>,
}

impl<K: Ord + Clone + Encode + Decode, V: Encode + Decode> Table<K, V> {
    pub fn new() -> Self {
        Table { map: BTreeMap::new(), dirty: Vec::new() }
    }
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }
    /// Marks the key changed: call only when about to change the value.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let value = self.map.get_mut(key)?;
        self.dirty.push(key.clone());
        Some(value)
    }
    pub fn insert(&mut self, key: K, value: V) {
        self.dirty.push(key.clone());
        self.map.insert(key, value);
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&K, &V)> {
        self.map.iter()
    }

    /// Feeds `tag ‖ key ‖ (0 | 1 ‖ u32 len ‖ value)` for every touched key, in key order, and
    /// forgets the touched set.
    pub fn hash_changes(&mut self, tag: u8, hasher: &mut blake3::Hasher) {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut w = Writer::new();
        for key in dirty {
            w.u8(tag);
            key.encode(&mut w);
            match self.map.get(&key) {
                None => w.u8(0),
                Some(value) => {
                    w.u8(1);
                    let bytes = value.to_bytes();
                    w.bytes(&bytes);
                }
            }
        }
        hasher.update(&w.into_bytes());
    }

    /// `hash_changes` for values that know their encoded length: each value is encoded once,
    /// straight into the buffer (same bytes).
    pub fn hash_changes_sized(&mut self, tag: u8, hasher: &mut blake3::Hasher)
    where
        V: EncodedLen,
    {
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        let mut w = Writer::new();
        for (n, key) in dirty.into_iter().enumerate() {
            w.u8(tag);
            key.encode(&mut w);
            match self.map.get(&key) {
                None => w.u8(0),
                Some(value) => {
                    w.u8(1);
                    write_sized(&mut w, value);
                }
            }
            if n % 256 == 255 {
                hasher.update(&std::mem::take(&mut w).into_bytes());
            }
        }
        hasher.update(&w.into_bytes());
    }

    pub fn clear_changes(&mut self) {
        self.dirty.clear();
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
            map.insert(key, value);
        }
        Ok(Table { map, dirty: Vec::new() })
    }
}

impl<K: Ord + Clone + Encode + Decode, V: Encode + Decode> Encode for Table<K, V> {
    fn encode(&self, w: &mut Writer) {
        w.u32(u32::try_from(self.map.len()).expect("tables hold fewer than 2^32 entries"));
        for (k, v) in &self.map {
            k.encode(w);
            v.encode(w);
        }
    }
}
