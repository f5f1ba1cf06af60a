//! Views per second of the state machine alone: n validators exchanging messages in memory,
//! no network, no loss; every vote and certificate signature is really signed and checked.

use std::collections::VecDeque;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use plaza_consensus::{Config, Consensus, Input, Output, Restart};
use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::{Hash, Keypair, PublicKey};

const VIEWS: u64 = 20;

fn cluster(n: usize) -> Vec<Consensus> {
    let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(format!("bench-v{i}").as_bytes())).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| Validator { key: k.public(), network_key: Keypair::from_seed(format!("bench-n{i}").as_bytes()).public() })
            .collect(),
    )
    .expect("distinct keys");
    let alliance = Hash::digest(b"bench alliance");
    keys.into_iter()
        .map(|k| Consensus::new(Config::default(), k, set.clone(), alliance, 0, Restart::default()).expect("a validator"))
        .collect()
}

/// Runs until every validator finalized `VIEWS` blocks; returns the number of views.
fn run(nodes: &mut [Consensus]) -> u64 {
    let keys: Vec<PublicKey> = nodes.iter().map(|c| c.public_key()).collect();
    let mut queue: VecDeque<(usize, Input)> = (0..nodes.len()).map(|i| (i, Input::Start)).collect();
    while let Some((i, input)) = queue.pop_front() {
        for output in nodes[i].handle(0, input) {
            match output {
                Output::Broadcast(message) => {
                    for j in (0..nodes.len()).filter(|j| *j != i) {
                        queue.push_back((j, Input::Message { from: keys[i], message: message.clone() }));
                    }
                }
                Output::Send { to, message } => {
                    if let Some(j) = keys.iter().position(|k| *k == to) {
                        queue.push_back((j, Input::Message { from: keys[i], message }));
                    }
                }
                Output::Propose { view, parent, height } => {
                    let payload = view.to_be_bytes().to_vec();
                    let block = Hash::digest_parts(&[parent.as_bytes(), &height.to_be_bytes(), &payload]);
                    queue.push_front((i, Input::Proposed { view, block, payload, ends_epoch: false }));
                }
                Output::Verify { block, .. } => queue.push_front((i, Input::Verdict { block, valid: true, ends_epoch: false })),
                Output::Persist(_) | Output::PersistProposal(_) | Output::PersistCertificate(_) | Output::SetTimer { .. } | Output::Finalized(_) => {}
            }
        }
        if nodes.iter().all(|c| c.finalized().height >= VIEWS) {
            break;
        }
    }
    assert!(nodes.iter().all(|c| c.finalized().height >= VIEWS), "the cluster finalized");
    nodes.iter().map(|c| c.view()).min().unwrap_or(0)
}

fn views_per_second(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus");
    group.sample_size(10);
    for n in [4, 16] {
        group.throughput(Throughput::Elements(VIEWS));
        group.bench_function(format!("views n={n}"), |b| {
            b.iter_batched(|| cluster(n), |mut nodes| run(&mut nodes), BatchSize::SmallInput)
        });
    }
    group.finish();
}

criterion_group!(benches, views_per_second);
criterion_main!(benches);
