//! blake3 of many short inputs at once: the state trees' leaves and nodes (docs/FORMAT.md,
//! "Table trees"), hashed eight at a time with AVX2 where the processor has it.
//!
//! This is the one crate of Plaza's that holds unsafe code (the rest of the workspace forbids
//! it): three unsafe blocks, an unaligned load, an unaligned store of a finished lane and the call into the AVX2
//! path after the processor was seen to have AVX2.
//!
//! The output is blake3 itself, whichever path computes it: [`hash_each`] is the same
//! function as `blake3::hash` (or `blake3::keyed_hash` given a key) applied to every input,
//! and the tests hold it to that on every length up to two chunks, keyed and not, on both
//! paths. Only the speed differs. A block's touched state entries are independent of each
//! other until their hashes meet in the tree, so a table's commit collects them and hashes
//! them side by side: one AVX2 register holds the same word of eight different inputs, so
//! eight compressions cost about what two or three cost one at a time.
//!
//! Why it is written here: the blake3 crate computes many inputs at once internally (for the
//! chunks of one long input) but exposes that only in a module it marks unstable and "for
//! benchmarks only". The compression function is BLAKE3's specification (section 2.2 of the
//! BLAKE3 paper): `G`, seven rounds, the fixed message permutation, and the flags below.

/// A blake3 digest.
pub type Hash = [u8; 32];

/// blake3's IV (the first eight words of SHA-256's initial state).
const IV: [u32; 8] = [0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19];
const CHUNK_START: u32 = 1;
const CHUNK_END: u32 = 2;
const ROOT: u32 = 8;
const KEYED_HASH: u32 = 16;
const BLOCK: usize = 64;
/// Inputs longer than one chunk go to the blake3 crate: their chunks are a tree of their own.
const CHUNK: usize = 1024;
/// Batches with fewer inputs than this go to the blake3 crate one by one.
#[cfg(target_arch = "x86_64")]
const MIN_BATCH: usize = 3;

/// `out[i] = blake3(inputs[i])`, keyed by `key` if given (`blake3::keyed_hash`).
pub fn hash_each(key: Option<&[u8; 32]>, inputs: &[&[u8]], out: &mut [Hash]) {
    assert_eq!(inputs.len(), out.len(), "one output per input");
    #[cfg(target_arch = "x86_64")]
    if inputs.len() >= MIN_BATCH && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        unsafe { avx2::hash_each(key, inputs, out) };
        return;
    }
    one_by_one(key, inputs, out);
}

/// The blake3 crate on each input in turn: the reference, and the path without AVX2.
pub fn one_by_one(key: Option<&[u8; 32]>, inputs: &[&[u8]], out: &mut [Hash]) {
    for (input, out) in inputs.iter().zip(out) {
        *out = one(key, input);
    }
}

#[inline]
fn one(key: Option<&[u8; 32]>, input: &[u8]) -> Hash {
    match key {
        Some(key) => *blake3::keyed_hash(key, input).as_bytes(),
        None => *blake3::hash(input).as_bytes(),
    }
}

/// The words a compression starts from: the key's, or the IV.
fn key_words(key: Option<&[u8; 32]>) -> [u32; 8] {
    match key {
        None => IV,
        Some(key) => std::array::from_fn(|i| u32::from_le_bytes(key[4 * i..4 * i + 4].try_into().expect("four bytes"))),
    }
}

/// The number of 64-byte blocks blake3 compresses for a one-chunk input (an empty input is
/// one empty block).
fn blocks_of(len: usize) -> usize {
    len.div_ceil(BLOCK).max(1)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{blocks_of, key_words, one, BLOCK, CHUNK, CHUNK_END, CHUNK_START, IV, KEYED_HASH, MIN_BATCH, ROOT};
    use super::Hash;

    const LANES: usize = 8;

    /// The message word each of the 16 positions of a round reads, per round: round 0 reads
    /// them in order, and each next round applies blake3's permutation to the last.
    const SCHEDULE: [[usize; 16]; 7] = {
        const PERMUTATION: [usize; 16] = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
        let mut s = [[0usize; 16]; 7];
        let mut i = 0;
        while i < 16 {
            s[0][i] = i;
            i += 1;
        }
        let mut r = 1;
        while r < 7 {
            let mut i = 0;
            while i < 16 {
                s[r][i] = s[r - 1][PERMUTATION[i]];
                i += 1;
            }
            r += 1;
        }
        s
    };

    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot16(x: __m256i) -> __m256i {
        let mask = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
        _mm256_shuffle_epi8(x, mask)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot8(x: __m256i) -> __m256i {
        let mask = _mm256_setr_epi8(1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
        _mm256_shuffle_epi8(x, mask)
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot12(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<12>(x), _mm256_slli_epi32::<20>(x))
    }
    #[target_feature(enable = "avx2")]
    #[inline]
    fn rot7(x: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_srli_epi32::<7>(x), _mm256_slli_epi32::<25>(x))
    }

    /// blake3's `G` on four words of the state, in every lane.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn g(v: &mut [__m256i; 16], a: usize, b: usize, c: usize, d: usize, x: __m256i, y: __m256i) {
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), x);
        v[d] = rot16(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rot12(_mm256_xor_si256(v[b], v[c]));
        v[a] = _mm256_add_epi32(_mm256_add_epi32(v[a], v[b]), y);
        v[d] = rot8(_mm256_xor_si256(v[d], v[a]));
        v[c] = _mm256_add_epi32(v[c], v[d]);
        v[b] = rot7(_mm256_xor_si256(v[b], v[c]));
    }

    /// One compression in each of eight lanes: `cv` becomes the chaining value after block `m`
    /// (the counter is 0: every input here is within its first chunk).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn compress(cv: &mut [__m256i; 8], m: &[__m256i; 16], block_len: __m256i, flags: __m256i) {
        let zero = _mm256_setzero_si256();
        let iv = [_mm256_set1_epi32(IV[0] as i32), _mm256_set1_epi32(IV[1] as i32), _mm256_set1_epi32(IV[2] as i32), _mm256_set1_epi32(IV[3] as i32)];
        let mut v = [cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7], iv[0], iv[1], iv[2], iv[3], zero, zero, block_len, flags];
        for s in &SCHEDULE {
            g(&mut v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
            g(&mut v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
            g(&mut v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
            g(&mut v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
            g(&mut v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
            g(&mut v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
            g(&mut v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
            g(&mut v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
        }
        for i in 0..8 {
            cv[i] = _mm256_xor_si256(v[i], v[i + 8]);
        }
    }

    /// Rows of eight words (one per lane) turned into columns (one word of every lane).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn transpose(r: [__m256i; 8]) -> [__m256i; 8] {
        let t0 = _mm256_unpacklo_epi32(r[0], r[1]);
        let t1 = _mm256_unpackhi_epi32(r[0], r[1]);
        let t2 = _mm256_unpacklo_epi32(r[2], r[3]);
        let t3 = _mm256_unpackhi_epi32(r[2], r[3]);
        let t4 = _mm256_unpacklo_epi32(r[4], r[5]);
        let t5 = _mm256_unpackhi_epi32(r[4], r[5]);
        let t6 = _mm256_unpacklo_epi32(r[6], r[7]);
        let t7 = _mm256_unpackhi_epi32(r[6], r[7]);
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let u4 = _mm256_unpacklo_epi64(t4, t6);
        let u5 = _mm256_unpackhi_epi64(t4, t6);
        let u6 = _mm256_unpacklo_epi64(t5, t7);
        let u7 = _mm256_unpackhi_epi64(t5, t7);
        [
            _mm256_permute2x128_si256::<0x20>(u0, u4),
            _mm256_permute2x128_si256::<0x20>(u1, u5),
            _mm256_permute2x128_si256::<0x20>(u2, u6),
            _mm256_permute2x128_si256::<0x20>(u3, u7),
            _mm256_permute2x128_si256::<0x31>(u0, u4),
            _mm256_permute2x128_si256::<0x31>(u1, u5),
            _mm256_permute2x128_si256::<0x31>(u2, u6),
            _mm256_permute2x128_si256::<0x31>(u3, u7),
        ]
    }

    /// Words `8h … 8h + 7` of every lane's block, as columns.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn half(blocks: &[&[u8; BLOCK]; LANES], h: usize) -> [__m256i; 8] {
        let mut rows = [_mm256_setzero_si256(); 8];
        for (row, block) in rows.iter_mut().zip(blocks) {
            let bytes = &block[32 * h..32 * h + 32];
            // SAFETY: `bytes` is 32 readable bytes; the load is unaligned.
            *row = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
        }
        transpose(rows)
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn vector(x: [i32; LANES]) -> __m256i {
        _mm256_setr_epi32(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7])
    }

    /// # Safety
    /// The processor must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn hash_each(key: Option<&[u8; 32]>, inputs: &[&[u8]], out: &mut [Hash]) {
        // Batches of inputs with about as many blocks: a batch runs as many blocks as its
        // longest input has. Long inputs go to the blake3 crate.
        let mut order: Vec<(u32, u32)> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            if input.len() > CHUNK {
                out[i] = one(key, input);
            } else {
                order.push((blocks_of(input.len()) as u32, i as u32));
            }
        }
        order.sort_unstable();
        let base = if key.is_some() { KEYED_HASH } else { 0 };
        let start = key_words(key).map(|w| _mm256_set1_epi32(w as i32));
        for batch in order.chunks(LANES) {
            if batch.len() < MIN_BATCH {
                for &(_, i) in batch {
                    out[i as usize] = one(key, inputs[i as usize]);
                }
                continue;
            }
            let lanes: [&[u8]; LANES] = std::array::from_fn(|j| batch.get(j).map_or(&[][..], |&(_, i)| inputs[i as usize]));
            let ends: [usize; LANES] = std::array::from_fn(|j| blocks_of(lanes[j].len()) - 1);
            let hashes = eight(&start, base, &lanes, &ends);
            for (&(_, i), hash) in batch.iter().zip(hashes) {
                out[i as usize] = hash;
            }
        }
    }

    /// The hashes of eight one-chunk inputs, `ends[j]` the index of input `j`'s last block.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn eight(start: &[__m256i; 8], base: u32, lanes: &[&[u8]; LANES], ends: &[usize; LANES]) -> [Hash; LANES] {
        let mut cv = *start;
        let mut hashes = [[0u8; 32]; LANES];
        // A lane's block that is short or past its input: its bytes, zero-padded.
        let mut padded = [[0u8; BLOCK]; LANES];
        let last = ends.iter().copied().max().unwrap_or(0);
        for b in 0..=last {
            let mut block_len = [0i32; LANES];
            let mut flags = [0i32; LANES];
            let mut blocks: [&[u8; BLOCK]; LANES] = [&[0u8; BLOCK]; LANES];
            for j in 0..LANES {
                let input = lanes[j];
                let from = (b * BLOCK).min(input.len());
                let bytes = &input[from..(from + BLOCK).min(input.len())];
                block_len[j] = bytes.len() as i32;
                flags[j] = (base | if b == 0 { CHUNK_START } else { 0 } | if b == ends[j] { CHUNK_END | ROOT } else { 0 }) as i32;
                if let Ok(full) = <&[u8; BLOCK]>::try_from(bytes) {
                    blocks[j] = full;
                } else {
                    padded[j] = [0; BLOCK];
                    padded[j][..bytes.len()].copy_from_slice(bytes);
                }
            }
            for j in 0..LANES {
                if block_len[j] < BLOCK as i32 {
                    blocks[j] = &padded[j];
                }
            }
            let (lo, hi) = (half(&blocks, 0), half(&blocks, 1));
            let m = [lo[0], lo[1], lo[2], lo[3], lo[4], lo[5], lo[6], lo[7], hi[0], hi[1], hi[2], hi[3], hi[4], hi[5], hi[6], hi[7]];
            compress(&mut cv, &m, vector(block_len), vector(flags));
            if ends.contains(&b) {
                // Columns back into rows: `rows[j]` is lane `j`'s eight words, which in
                // little-endian order are its hash.
                let rows = transpose(cv);
                for j in (0..LANES).filter(|&j| ends[j] == b) {
                    // SAFETY: `hashes[j]` is 32 writable bytes; the store is unaligned.
                    unsafe { _mm256_storeu_si256(hashes[j].as_mut_ptr().cast(), rows[j]) };
                }
            }
        }
        hashes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test bytes.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    const KEY: [u8; 32] = [7; 32];

    fn check(inputs: &[Vec<u8>]) {
        let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        for key in [None, Some(&KEY)] {
            let mut got = vec![[0u8; 32]; slices.len()];
            hash_each(key, &slices, &mut got);
            for (input, got) in slices.iter().zip(&got) {
                assert_eq!(*got, one(key, input), "length {} keyed {}", input.len(), key.is_some());
            }
        }
    }

    #[test]
    fn every_length_up_to_two_chunks_is_blake3() {
        // Eight inputs of one length per batch, then mixed lengths in one call.
        for len in 0..=2 * CHUNK + 1 {
            check(&(0..8).map(|s| bytes(len, s as u64 + 1)).collect::<Vec<_>>());
        }
        let mixed: Vec<Vec<u8>> = (0..300).map(|i| bytes((i * 37) % (CHUNK + 200), i as u64)).collect();
        check(&mixed);
    }

    #[test]
    fn partial_batches_and_single_inputs_are_blake3() {
        for n in 0..=17 {
            check(&(0..n).map(|i| bytes(i * 61 % 700, i as u64 + 99)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_batched_path_runs_where_avx2_exists() {
        // Not a tautology on machines with AVX2: the comparison above ran the batched code.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let inputs: Vec<Vec<u8>> = (0..8).map(|i| bytes(64, i)).collect();
            let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
            let mut got = vec![[0u8; 32]; 8];
            // SAFETY: AVX2 checked above.
            unsafe { avx2::hash_each(Some(&KEY), &slices, &mut got) };
            let mut want = vec![[0u8; 32]; 8];
            one_by_one(Some(&KEY), &slices, &mut want);
            assert_eq!(got, want);
        }
    }
}
