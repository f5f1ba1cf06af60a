//! blake3 hashes (docs/FORMAT.md §2).

use std::fmt;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

/// A 32-byte blake3 digest: record ids, block ids, Merkle nodes, state roots.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; 32]);

/// The lexicographic order of `N` bytes (the order of `[u8; N]`), compared as big-endian 64-bit
/// words: no call to `memcmp`, and the first word almost always decides. Ordered maps keyed by
/// hashes, keys and card numbers compare on every step of every lookup.
#[inline]
pub(crate) fn cmp_bytes<const N: usize>(a: &[u8; N], b: &[u8; N]) -> std::cmp::Ordering {
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    for (x, y) in a_words.iter().zip(b_words) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x.cmp(&y);
        }
    }
    a_rest.cmp(b_rest)
}

impl PartialOrd for Hash {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Hash {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        cmp_bytes(&self.0, &other.0)
    }
}

impl Hash {
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn digest(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// blake3 over the concatenation of `parts`, without building the concatenation.
    pub fn digest_parts(parts: &[&[u8]]) -> Hash {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(part);
        }
        Hash(*hasher.finalize().as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Hash, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex: {e}"))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("a hash is 32 bytes (64 hex digits), this is {} bytes", b.len()))?;
        Ok(Hash(array))
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

impl Encode for Hash {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for Hash {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Hash(r.array()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_order_is_the_byte_order() {
        // Pairs that differ in one byte at every position, equal pairs, and random pairs.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..20_000 {
            let mut a = [0u8; 32];
            let mut b = [0u8; 32];
            for k in 0..32 {
                a[k] = next() as u8;
                b[k] = if i % 2 == 0 { a[k] } else { next() as u8 };
            }
            if i % 2 == 0 {
                b[i % 32] = next() as u8;
            }
            assert_eq!(cmp_bytes(&a, &b), a.cmp(&b));
            assert_eq!(Hash(a).cmp(&Hash(b)), a.cmp(&b));
            assert_eq!(cmp_bytes(&a, &a), std::cmp::Ordering::Equal);
            let (a16, b16): ([u8; 16], [u8; 16]) = (a[..16].try_into().expect("16"), b[..16].try_into().expect("16"));
            assert_eq!(cmp_bytes(&a16, &b16), a16.cmp(&b16));
            let (a12, b12): ([u8; 12], [u8; 12]) = (a[..12].try_into().expect("12"), b[..12].try_into().expect("12"));
            assert_eq!(cmp_bytes(&a12, &b12), a12.cmp(&b12));
        }
    }
}
