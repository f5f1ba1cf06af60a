//! `hash_each` against the blake3 crate one input at a time, on the state trees' shapes: a
//! node (64 bytes, keyed), an item's leaf (~100 bytes) and a sale's or card's leaf (~420).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use plaza_hash_many::{hash_each, one_by_one};

fn bench(c: &mut Criterion) {
    let key = [7u8; 32];
    let mut group = c.benchmark_group("hash_many");
    for (len, keyed) in [(64usize, true), (100, false), (420, false)] {
        let inputs: Vec<Vec<u8>> = (0..1024u32).map(|i| (0..len).map(|j| (i as usize * 31 + j) as u8).collect()).collect();
        let slices: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        let mut out = vec![[0u8; 32]; slices.len()];
        let key = keyed.then_some(&key);
        group.throughput(Throughput::Elements(slices.len() as u64));
        group.bench_with_input(BenchmarkId::new("each", len), &len, |b, _| b.iter(|| hash_each(key, &slices, &mut out)));
        group.bench_with_input(BenchmarkId::new("one_by_one", len), &len, |b, _| b.iter(|| one_by_one(key, &slices, &mut out)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
