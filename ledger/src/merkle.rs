//! Merkle trees of RFC 9162's shape with blake3 (DESIGN §6, docs/FORMAT.md §5).
//!
//! leaf hash = H(0x00 ‖ leaf), node hash = H(0x01 ‖ left ‖ right); the empty tree's root is
//! H(""); a tree of n > 1 leaves splits at k, the largest power of two smaller than n.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;

/// Proofs are at most this long: trees hold far fewer than 2^64 leaves.
pub const PROOF_HASHES_MAX: usize = 64;

pub fn leaf_hash(leaf: &[u8]) -> Hash {
    Hash::digest_parts(&[&[0x00], leaf])
}

/// Hashed from one 65-byte buffer on the stack: the state trees hash millions of nodes, and
/// an incremental hasher's set-up and finish cost about as much as the two compressions.
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut bytes = [0u8; 65];
    bytes[0] = 0x01;
    bytes[1..33].copy_from_slice(left.as_bytes());
    bytes[33..].copy_from_slice(right.as_bytes());
    Hash::digest(&bytes)
}

fn split_point(n: usize) -> usize {
    debug_assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over already-hashed leaves.
pub fn root_of_leaf_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::digest(b""),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root_of_leaf_hashes(&leaves[..k]), &root_of_leaf_hashes(&leaves[k..]))
        }
    }
}

/// The root over raw leaves.
pub fn root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    let hashed: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    root_of_leaf_hashes(&hashed)
}

/// An inclusion proof: the leaf's index, the tree size, and the audit path bottom-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash>,
}

/// The audit path for leaf `index` (RFC 9162 §2.1.3.1), bottom-up.
pub fn prove(leaves: &[Hash], index: usize) -> Option<InclusionProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    collect_path(leaves, index, &mut path);
    Some(InclusionProof { index: index as u64, tree_size: leaves.len() as u64, path })
}

fn collect_path(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if index < k {
        collect_path(&leaves[..k], index, path);
        path.push(root_of_leaf_hashes(&leaves[k..]));
    } else {
        collect_path(&leaves[k..], index - k, path);
        path.push(root_of_leaf_hashes(&leaves[..k]));
    }
}

impl InclusionProof {
    /// Checks that `leaf_hash` sits at `index` in a tree of `tree_size` leaves with `root`
    /// (RFC 9162 §2.1.3.2).
    pub fn verify(&self, leaf_hash: &Hash, root: &Hash) -> bool {
        self.verify_with(leaf_hash, root, node_hash)
    }

    /// [`verify`](Self::verify) with another inner-node function: a state table's tree has
    /// this shape with a node of its own (docs/FORMAT.md, "Table trees").
    pub fn verify_with(&self, leaf_hash: &Hash, root: &Hash, node_hash: impl Fn(&Hash, &Hash) -> Hash) -> bool {
        if self.index >= self.tree_size {
            return false;
        }
        let mut fn_ = self.index;
        let mut sn = self.tree_size - 1;
        let mut r = *leaf_hash;
        for p in &self.path {
            if sn == 0 {
                return false;
            }
            if fn_ & 1 == 1 || fn_ == sn {
                r = node_hash(p, &r);
                if fn_ & 1 == 0 {
                    while fn_ & 1 == 0 && fn_ != 0 {
                        fn_ >>= 1;
                        sn >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        sn == 0 && r == *root
    }
}

impl Encode for InclusionProof {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.index);
        w.u64(self.tree_size);
        w.seq(&self.path);
    }
}
impl Decode for InclusionProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(InclusionProof { index: r.u64()?, tree_size: r.u64()?, path: r.seq("merkle path", PROOF_HASHES_MAX)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
    }

    #[test]
    fn shape_matches_rfc_9162() {
        let l = leaves(3);
        let h: Vec<Hash> = l.iter().map(|x| leaf_hash(x)).collect();
        let expected = node_hash(&node_hash(&h[0], &h[1]), &h[2]);
        assert_eq!(root(&l), expected);
        assert_eq!(root::<Vec<u8>>(&[]), Hash::digest(b""));
        assert_eq!(root(&l[..1]), h[0]);
    }

    proptest! {
        #[test]
        fn every_leaf_proves_and_any_change_fails(n in 1usize..70, pick in any::<usize>(), flip in any::<usize>()) {
            let l = leaves(n);
            let hashed: Vec<Hash> = l.iter().map(|x| leaf_hash(x)).collect();
            let r = root_of_leaf_hashes(&hashed);
            for i in 0..n {
                let proof = prove(&hashed, i).expect("in range");
                prop_assert!(proof.verify(&hashed[i], &r));
                let decoded = InclusionProof::from_bytes(&proof.to_bytes(), 4096).expect("round trip");
                prop_assert_eq!(&decoded, &proof);
            }
            let i = pick % n;
            let proof = prove(&hashed, i).expect("in range");
            // A changed leaf byte fails.
            let mut changed = l[i].clone();
            let at = flip % changed.len();
            changed[at] ^= 1;
            prop_assert!(!proof.verify(&leaf_hash(&changed), &r));
            // A changed path byte fails.
            if !proof.path.is_empty() {
                let mut bad = proof.clone();
                let j = flip % bad.path.len();
                bad.path[j].0[flip % 32] ^= 0x80;
                prop_assert!(!bad.verify(&hashed[i], &r));
            }
            // A wrong index or size fails (unless the tree is trivially the same).
            if n > 1 {
                let mut bad = proof.clone();
                bad.index = ((i + 1) % n) as u64;
                prop_assert!(!bad.verify(&hashed[i], &r));
            }
        }
    }
}
