//! The Merkle tree over one state table (docs/FORMAT.md, "State root"): RFC 9162's shape over
//! the table's *slots*, with blake3.
//!
//! Every entry of a table holds a slot, a position in its table's tree. A key the block
//! inserted gets the next free slot at the end of the block (the block's new keys in key
//! order), keeps it while it lives, and leaves an empty slot (the hash `ZERO`) when it is
//! removed; a period close compacts a table that has empty slots. The leaf of an entry is
//! `H(0x00 ‖ key ‖ value)`; an inner node is blake3's keyed hash of `left ‖ right` under
//! [`NODE_KEY`], except that a node whose two children are both `ZERO` is `ZERO` (a run of
//! removed entries costs no hashing); a table with no slots has the root `ZERO`.
//!
//! Why a keyed hash for nodes: `left ‖ right` is exactly one 64-byte blake3 block, so a node
//! costs one compression, where RFC 9162's `H(0x01 ‖ left ‖ right)` is 65 bytes and costs two.
//! The key separates nodes from leaves as the prefix byte did (a keyed hash and a plain hash
//! are different functions), and a state table rehashes about six nodes per sale: a fifth of
//! the contract's hashing (docs/BENCHMARKS.md).
//!
//! Why slots and not key order: a tree over the sorted keys changes shape on every insertion
//! in the middle, so every later node changes. Slots only grow at the end, so a block that
//! inserts m keys computes about m new nodes, and a block that changes d existing entries of
//! a table of n recomputes about d·log2(n/d) nodes: the cost stays that of hashing what
//! changed. The nodes are cached, level by level (`levels[k][i]` covers slots
//! `[i·2^k, (i+1)·2^k)`, present when complete), and recomputed only along changed paths.

use crate::hash::Hash;
use crate::merkle::InclusionProof;

/// The hash of an empty slot and of a subtree of empty slots.
pub const EMPTY: Hash = Hash::ZERO;

/// The key of a state tree's inner nodes: blake3 of the 19 ASCII bytes `plaza/state-node/v3`
/// (checked by a test; written out so that no node waits for it to be computed).
pub const NODE_KEY: [u8; 32] = [
    0x43, 0x55, 0x42, 0x44, 0x0e, 0x5b, 0xc2, 0xc9, 0x01, 0x21, 0x8b, 0xbc, 0x9e, 0xba, 0x71, 0x0f, //
    0x78, 0x97, 0x37, 0x16, 0x9d, 0xdc, 0xa5, 0x4b, 0xcd, 0x3d, 0xe6, 0x0f, 0xee, 0x40, 0xd2, 0x7d,
];

/// An inner node: blake3 keyed by [`NODE_KEY`] over `left ‖ right`, one compression; two
/// `EMPTY` children give `EMPTY`.
#[inline]
pub fn node(left: &Hash, right: &Hash) -> Hash {
    if *left == EMPTY && *right == EMPTY {
        return EMPTY;
    }
    Hash(*blake3::keyed_hash(&NODE_KEY, &pair(left, right)).as_bytes())
}

/// `left ‖ right`, what a node hashes.
#[inline]
fn pair(left: &Hash, right: &Hash) -> [u8; 64] {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(left.as_bytes());
    bytes[32..].copy_from_slice(right.as_bytes());
    bytes
}

/// Nodes of one level to compute, hashed together when written (several at a time where the
/// processor can: `plaza_hash_many`); [`node`] one by one gives the same hashes.
#[derive(Default)]
struct Nodes {
    /// (index in the level above, `left ‖ right`)
    pairs: Vec<(usize, [u8; 64])>,
    hashes: Vec<[u8; 32]>,
}

impl Nodes {
    fn len(&self) -> usize {
        self.pairs.len()
    }
    /// Queues node `p` of `above` over `left` and `right`; two `EMPTY` children give `EMPTY`
    /// at once.
    fn queue(&mut self, p: usize, left: &Hash, right: &Hash, above: &mut Hashes) {
        if *left == EMPTY && *right == EMPTY {
            if above[p] != EMPTY {
                above[p] = EMPTY;
            }
            return;
        }
        self.pairs.push((p, pair(left, right)));
    }
    /// Hashes the queued nodes into `above`.
    fn write(&mut self, above: &mut Hashes) {
        self.hashes.clear();
        self.hashes.resize(self.pairs.len(), [0; 32]);
        let inputs: Vec<&[u8]> = self.pairs.iter().map(|(_, pair)| &pair[..]).collect();
        plaza_hash_many::hash_each(Some(&NODE_KEY), &inputs, &mut self.hashes);
        for ((p, _), hash) in self.pairs.iter().zip(&self.hashes) {
            above[*p] = Hash(*hash);
        }
        self.pairs.clear();
    }
}

/// Hashes per chunk of a [`Hashes`] (32 KiB).
const CHUNK: usize = 1024;

/// A growable array of hashes stored in chunks of at most [`CHUNK`]: growing never moves more
/// than one chunk. A tree level of a table of millions of entries is tens of megabytes; a
/// `Vec` doubling it copied the whole level each time and touched about twice its size in
/// fresh memory. Every chunk but the last is full. A chunk may be *sparse*: held as an empty
/// `Vec`, every hash in it `EMPTY`, materialized when written. Runs of removed entries then
/// cost no memory: a snapshot's empty slots take no bytes, so a decoded tree must not pay a
/// hash per empty slot either (a crafted snapshot of a few hundred bytes made decoding
/// allocate 2.6 GiB; found by the `ledger_values` fuzz target).
#[derive(Clone, Debug, Default)]
struct Hashes {
    chunks: Vec<Vec<Hash>>,
    len: usize,
}

impl PartialEq for Hashes {
    fn eq(&self, other: &Hashes) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}
impl Eq for Hashes {}

impl Hashes {
    fn from_vec(hashes: Vec<Hash>) -> Hashes {
        let len = hashes.len();
        if len <= CHUNK {
            return Hashes { chunks: if len == 0 { Vec::new() } else { vec![hashes] }, len };
        }
        Hashes { chunks: hashes.chunks(CHUNK).map(<[Hash]>::to_vec).collect(), len }
    }
    /// `n` hashes, all `EMPTY`, in sparse chunks.
    fn empty(n: usize) -> Hashes {
        Hashes { chunks: vec![Vec::new(); n.div_ceil(CHUNK)], len: n }
    }
    #[inline]
    fn len(&self) -> usize {
        self.len
    }
    /// The number of hashes chunk `c` holds.
    #[inline]
    fn chunk_len(&self, c: usize) -> usize {
        (self.len - c * CHUNK).min(CHUNK)
    }
    #[inline]
    fn is_sparse(&self, c: usize) -> bool {
        self.chunks[c].is_empty()
    }
    fn materialize(&mut self, c: usize) {
        if self.chunks[c].is_empty() {
            let n = self.chunk_len(c);
            let mut chunk = Vec::with_capacity(CHUNK.min(n.max(4)));
            chunk.resize(n, EMPTY);
            self.chunks[c] = chunk;
        }
    }
    #[inline]
    fn push(&mut self, hash: Hash) {
        if self.len % CHUNK != 0 {
            let c = self.chunks.len() - 1;
            if self.chunks[c].is_empty() {
                self.materialize(c);
            }
            self.chunks[c].push(hash);
        } else {
            let mut chunk = Vec::with_capacity(if self.len < CHUNK { 4 } else { CHUNK });
            chunk.push(hash);
            self.chunks.push(chunk);
        }
        self.len += 1;
    }
    /// Grows to `n` entries, the new ones `EMPTY`.
    fn grow_to(&mut self, n: usize) {
        while self.len < n {
            self.push(EMPTY);
        }
    }
    fn iter(&self) -> impl Iterator<Item = Hash> + '_ {
        self.chunks.iter().enumerate().flat_map(move |(c, chunk)| {
            let sparse = if chunk.is_empty() { self.chunk_len(c) } else { 0 };
            chunk.iter().copied().chain(std::iter::repeat_n(EMPTY, sparse))
        })
    }
    /// `EMPTY` hashes held, counted without expanding sparse chunks.
    fn count_empty(&self) -> u64 {
        (0..self.chunks.len())
            .map(|c| if self.is_sparse(c) { self.chunk_len(c) } else { self.chunks[c].iter().filter(|h| **h == EMPTY).count() })
            .sum::<usize>() as u64
    }
}

impl std::ops::Index<usize> for Hashes {
    type Output = Hash;
    #[inline]
    fn index(&self, i: usize) -> &Hash {
        debug_assert!(i < self.len);
        // A sparse chunk has no element at any index: the bounds check is the branch.
        self.chunks[i / CHUNK].get(i % CHUNK).unwrap_or(&EMPTY)
    }
}
impl std::ops::IndexMut<usize> for Hashes {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut Hash {
        debug_assert!(i < self.len);
        let (c, j) = (i / CHUNK, i % CHUNK);
        if j >= self.chunks[c].len() {
            self.materialize(c);
        }
        &mut self.chunks[c][j]
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotTree {
    /// `levels[0]` the leaves by slot; `levels[k]` the complete aligned nodes of 2^k leaves.
    levels: Vec<Hashes>,
    /// Slots written since the last root, with repeats.
    dirty: Vec<u64>,
    /// Slots holding `EMPTY`.
    empty: u64,
}

impl SlotTree {
    /// A tree over `leaves` (slot order), all nodes computed.
    pub fn from_leaves(leaves: Vec<Hash>) -> SlotTree {
        SlotTree::build(Hashes::from_vec(leaves))
    }

    /// A tree of `slots` slots, `EMPTY` but for `leaves` (slot, leaf), all nodes computed:
    /// the empty runs cost neither memory nor hashing.
    pub fn from_sparse(slots: u64, leaves: impl IntoIterator<Item = (u64, Hash)>) -> SlotTree {
        let mut level = Hashes::empty(usize::try_from(slots).unwrap_or(usize::MAX));
        for (slot, leaf) in leaves {
            if leaf != EMPTY {
                level[slot as usize] = leaf;
            }
        }
        SlotTree::build(level)
    }

    fn build(leaves: Hashes) -> SlotTree {
        let empty = leaves.count_empty();
        let mut levels = vec![leaves];
        loop {
            let below = &levels[levels.len() - 1];
            if below.len() < 2 {
                break;
            }
            let parents = below.len() / 2;
            let mut above = Hashes::empty(parents);
            let mut nodes = Nodes::default();
            let mut p = 0;
            while p < parents {
                // Chunk boundaries are even, so a chunk's children pairs stay within it.
                let c = 2 * p / CHUNK;
                if below.is_sparse(c) {
                    p = (c + 1) * CHUNK / 2;
                    continue;
                }
                nodes.queue(p, &below[2 * p], &below[2 * p + 1], &mut above);
                if nodes.len() == CHUNK {
                    nodes.write(&mut above);
                }
                p += 1;
            }
            nodes.write(&mut above);
            levels.push(above);
        }
        SlotTree { levels, dirty: Vec::new(), empty }
    }

    /// Slots, including empty ones: the tree size.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }
    /// Empty slots.
    pub fn empty_slots(&self) -> u64 {
        self.empty
    }

    /// Appends a leaf; returns its slot.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        if self.levels.is_empty() {
            self.levels.push(Hashes::default());
        }
        let slot = self.levels[0].len() as u64;
        self.levels[0].push(leaf);
        if leaf == EMPTY {
            self.empty += 1;
        }
        self.dirty.push(slot);
        slot
    }

    /// Writes the leaf of an existing slot (`EMPTY` empties it).
    pub fn set(&mut self, slot: u64, leaf: Hash) {
        let old = std::mem::replace(&mut self.levels[0][slot as usize], leaf);
        if old == EMPTY {
            self.empty -= 1;
        }
        if leaf == EMPTY {
            self.empty += 1;
        }
        self.dirty.push(slot);
    }

    /// Recomputes the nodes above the written slots, then returns the root.
    pub fn root(&mut self) -> Hash {
        self.commit();
        self.range_root(0, self.len())
    }

    fn commit(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        if dirty.is_empty() {
            self.dirty = dirty;
            return;
        }
        dirty.sort_unstable();
        dirty.dedup();
        let mut next = Vec::with_capacity(dirty.len() / 2 + 1);
        let mut nodes = Nodes::default();
        let mut k = 0;
        while self.levels[k].len() >= 2 && !dirty.is_empty() {
            if self.levels.len() == k + 1 {
                self.levels.push(Hashes::default());
            }
            let (below, above) = self.levels.split_at_mut(k + 1);
            let (below, above) = (&below[k], &mut above[0]);
            let parents = below.len() / 2;
            above.grow_to(parents);
            next.clear();
            for &i in &dirty {
                let p = i / 2;
                if (p as usize) < parents && next.last() != Some(&p) {
                    next.push(p);
                }
            }
            // The level's changed nodes, hashed together.
            for &p in &next {
                let p = p as usize;
                nodes.queue(p, &below[2 * p], &below[2 * p + 1], above);
            }
            nodes.write(above);
            std::mem::swap(&mut dirty, &mut next);
            k += 1;
        }
        dirty.clear();
        self.dirty = dirty;
    }

    /// The root of the RFC 9162 subtree over slots `[lo, lo + n)`; `lo` is a multiple of the
    /// largest power of two below `n` (as every subtree of the RFC's split is).
    fn range_root(&self, lo: u64, n: u64) -> Hash {
        if n == 0 {
            return EMPTY;
        }
        if n.is_power_of_two() {
            let k = n.trailing_zeros() as usize;
            return self.levels[k][(lo >> k) as usize];
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        let left = self.levels[k.trailing_zeros() as usize][(lo / k) as usize];
        node(&left, &self.range_root(lo + k, n - k))
    }

    /// The RFC 9162 audit path of `slot` (the tree must be committed: call after `root`).
    pub fn prove(&self, slot: u64) -> Option<InclusionProof> {
        let n = self.len();
        if slot >= n || !self.dirty.is_empty() {
            return None;
        }
        let mut path = Vec::new();
        self.collect_path(0, n, slot, &mut path);
        Some(InclusionProof { index: slot, tree_size: n, path })
    }

    fn collect_path(&self, lo: u64, n: u64, slot: u64, path: &mut Vec<Hash>) {
        if n <= 1 {
            return;
        }
        let k = 1u64 << (63 - (n - 1).leading_zeros());
        if slot < lo + k {
            self.collect_path(lo, k, slot, path);
            path.push(self.range_root(lo + k, n - k));
        } else {
            self.collect_path(lo + k, n - k, slot, path);
            path.push(self.range_root(lo, k));
        }
    }

    /// Drops the empty slots, keeping the others' order: returns, for each old slot, its new
    /// slot (`u64::MAX` for a dropped one). The tree is rebuilt.
    pub fn compact(&mut self) -> Vec<u64> {
        self.commit();
        let levels = std::mem::take(&mut self.levels);
        let leaves: Vec<Hash> = levels.first().map(|l| l.iter().collect()).unwrap_or_default();
        drop(levels);
        let mut map = Vec::with_capacity(leaves.len());
        let mut kept = Vec::with_capacity(leaves.len() - self.empty as usize);
        for leaf in leaves {
            if leaf == EMPTY {
                map.push(u64::MAX);
            } else {
                map.push(kept.len() as u64);
                kept.push(leaf);
            }
        }
        *self = SlotTree::from_leaves(kept);
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_tree_is_the_dense_tree_without_the_memory() {
        for n in [1u64, 2, 3, 1023, 1024, 1025, 2048, 5000, 70_001] {
            let leaves: Vec<(u64, Hash)> = (0..n).filter(|s| s % 997 == 3 || *s == n - 1).map(|s| (s, Hash::digest(&s.to_be_bytes()))).collect();
            let mut dense = vec![EMPTY; n as usize];
            for (s, l) in &leaves {
                dense[*s as usize] = *l;
            }
            let mut a = SlotTree::from_sparse(n, leaves.iter().copied());
            let mut b = SlotTree::from_leaves(dense);
            assert_eq!(a, b, "n = {n}");
            assert_eq!(a.root(), b.root(), "n = {n}");
            assert_eq!(a.empty_slots(), b.empty_slots());
            for s in [0, n / 2, n - 1] {
                assert_eq!(a.prove(s), b.prove(s), "n = {n}, slot {s}");
            }
            // Written after building, sparse and dense stay alike.
            a.set(0, Hash::digest(b"x"));
            b.set(0, Hash::digest(b"x"));
            a.push(Hash::digest(b"y"));
            b.push(Hash::digest(b"y"));
            assert_eq!(a.root(), b.root(), "n = {n} after writes");
        }
        // 2^26 empty slots and two leaves: only the chunks on the leaves' paths are held.
        let big = SlotTree::from_sparse(1 << 26, [(5, Hash::digest(b"a")), ((1 << 26) - 1, Hash::digest(b"b"))]);
        let held: usize = big.levels.iter().map(|l| l.chunks.iter().map(Vec::len).sum::<usize>()).sum();
        assert!(held <= 2 * 27 * CHUNK, "{held} hashes held");
    }

    /// The root by definition: RFC 9162's recursion with the empty-subtree rule.
    fn reference(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY,
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node(&reference(&leaves[..k]), &reference(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_node_key_is_the_hash_of_its_name() {
        assert_eq!(NODE_KEY, *blake3::hash(b"plaza/state-node/v3").as_bytes());
    }

    #[test]
    fn a_node_is_the_keyed_hash_of_its_children() {
        let (a, b) = (Hash::digest(b"a"), Hash::digest(b"b"));
        let keyed = blake3::keyed_hash(&NODE_KEY, &[*a.as_bytes(), *b.as_bytes()].concat());
        assert_eq!(node(&a, &b).as_bytes(), keyed.as_bytes());
        assert_ne!(node(&a, &b), node(&b, &a));
        assert_ne!(node(&a, &b), crate::merkle::node_hash(&a, &b));
        assert_eq!(node(&EMPTY, &EMPTY), EMPTY);
        assert_ne!(node(&a, &EMPTY), EMPTY);
    }

    fn leaf(i: u64, round: u64) -> Hash {
        crate::merkle::leaf_hash(&[i.to_be_bytes(), round.to_be_bytes()].concat())
    }

    #[test]
    fn incremental_roots_equal_the_definition_and_every_slot_proves() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut tree = SlotTree::default();
        let mut mirror: Vec<Hash> = Vec::new();
        assert_eq!(tree.root(), EMPTY);
        for round in 0..300u64 {
            // Appends, overwrites and removals, a few per round.
            for _ in 0..(next() % 7) {
                let l = leaf(mirror.len() as u64, round);
                assert_eq!(tree.push(l), mirror.len() as u64);
                mirror.push(l);
            }
            for _ in 0..(next() % 4) {
                if mirror.is_empty() {
                    break;
                }
                let s = next() % mirror.len() as u64;
                let l = if next() % 3 == 0 { EMPTY } else { leaf(s, round + 1000) };
                tree.set(s, l);
                mirror[s as usize] = l;
            }
            if round % 50 == 49 {
                let map = tree.compact();
                let kept: Vec<Hash> = mirror.iter().copied().filter(|l| *l != EMPTY).collect();
                assert_eq!(map.iter().filter(|m| **m != u64::MAX).count(), kept.len());
                mirror = kept;
            }
            let root = tree.root();
            assert_eq!(root, reference(&mirror), "round {round}");
            assert_eq!(tree.empty_slots(), mirror.iter().filter(|l| **l == EMPTY).count() as u64);
            for (s, l) in mirror.iter().enumerate() {
                if *l == EMPTY {
                    continue;
                }
                let proof = tree.prove(s as u64).expect("in range");
                assert!(proof.verify_with(l, &root, node), "slot {s} of {}", mirror.len());
                assert!(!proof.verify_with(&leaf(s as u64, 9999), &root, node));
                assert!(!proof.verify(l, &root) || mirror.len() == 1, "RFC 9162's node is not a state tree's");
            }
        }
        assert_eq!(SlotTree::from_leaves(mirror.clone()).root(), reference(&mirror));
    }
}
