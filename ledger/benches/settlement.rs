//! Settlement contract speed (docs/BENCHMARKS.md, "Settlement contract"):
//! - `apply`: sales (card, referral, home share, points) applied per second on one core;
//! - `statement_1m`: closing the period of a day of 1,000,000 records over 200 merchants.
//!
//! Signatures are not checked by the contract, so records carry a zero signature here.
//!
//! With `PLAZA_BENCH_CLOCK=cpu` the samples are this thread's CPU time (from
//! `/proc/thread-self/schedstat`, Linux) instead of wall time: on a shared, loaded machine that
//! is the honest "one core" figure, since wall time also counts the time other processes ran.

use std::cell::OnceCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::contract::State;
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::keys::Signature;
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{Policy, HOUR_MS};
use plaza_ledger::record::*;
use plaza_ledger::{Hash, Keypair, PublicKey};

const T0: u64 = 1_795_363_200_000;
const MERCHANTS: usize = 200;
const CATEGORIES: usize = 20;
const CARDS: usize = 20_000;
const BLOCK: usize = 5_000;

/// A stopwatch over wall time or, with `PLAZA_BENCH_CLOCK=cpu`, over this thread's CPU time.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
}
impl Clock {
    fn from_env() -> Clock {
        match std::env::var("PLAZA_BENCH_CLOCK").as_deref() {
            Ok("cpu") => Clock::Cpu,
            _ => Clock::Wall,
        }
    }
    fn start(self) -> (Instant, Duration) {
        (Instant::now(), self.cpu())
    }
    fn elapsed(self, (wall, cpu): (Instant, Duration)) -> Duration {
        match self {
            Clock::Wall => wall.elapsed(),
            Clock::Cpu => self.cpu().saturating_sub(cpu),
        }
    }
    fn cpu(self) -> Duration {
        if let Clock::Wall = self {
            return Duration::ZERO;
        }
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("PLAZA_BENCH_CLOCK=cpu needs Linux schedstat");
        Duration::from_nanos(text.split_whitespace().next().and_then(|n| n.parse().ok()).expect("schedstat run time"))
    }
}

struct World {
    genesis: Genesis,
    keys: Vec<PublicKey>,
}

fn world() -> World {
    let keys: Vec<PublicKey> = (0..MERCHANTS).map(|i| Keypair::from_seed(format!("bench/{i}").as_bytes()).public()).collect();
    let mut members: Vec<MerchantProfile> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| MerchantProfile {
            key: *k,
            name: format!("m{i}"),
            category: format!("c{}", i % CATEGORIES),
            district: "d".into(),
            latitude_e6: 0,
            longitude_e6: 0,
            network_key: None,
        })
        .collect();
    members[0].network_key = Some(Keypair::from_seed(b"bench/net").public());
    let v = Validator { key: members[0].key, network_key: Keypair::from_seed(b"bench/net").public() };
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let mut categories: Vec<Named> = (0..CATEGORIES).map(|i| Named { code: format!("c{i}"), name: format!("c{i}") }).collect();
    categories.sort();
    let mut policy = Policy::default_v1(T0);
    // Every item locks at once, so one statement carries the whole day.
    policy.lock_days = 0;
    policy.refund_window_days = 0;
    policy.card_sales_per_hour_max = 1_000_000;
    let genesis = Genesis {
        name: "bench".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: T0,
        categories,
        districts: vec![Named { code: "d".into(), name: "d".into() }],
        members,
        validators: ValidatorSet::new(vec![v]).expect("set"),
        policy,
        promoters: Vec::new(),
    };
    genesis.validate().expect("bench genesis");
    World { genesis, keys }
}

fn rec(alliance: Hash, signer: PublicKey, t: u64, payload: Payload) -> Record {
    Record::from_parts(RecordBody { alliance, signer, created_at_ms: t, payload }, Signature([0; 64]))
}

/// Setup records (cards, referral codes), then `sales` sales, in blocks at increasing times
/// within the first local day.
fn blocks(w: &World, sales: usize) -> (Vec<(u64, Vec<Record>)>, Vec<(u64, Vec<Record>)>) {
    let alliance = w.genesis.alliance_id();
    let t = T0 + HOUR_MS;
    let mut setup = Vec::new();
    for i in 0..CARDS {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        setup.push(rec(alliance, w.keys[i % MERCHANTS], t, Payload::IssueCard { card: CardId(id) }));
    }
    for (i, k) in w.keys.iter().enumerate() {
        let payload = Payload::Refer {
            code_hash: CodeSecret::new(format!("bench-ref-{i:05}").as_bytes()).expect("code").hash(),
            card: None,
            promoter: None,
            upstream: None,
            valid_at: vec![],
            expires_at_ms: T0 + 30 * 86_400_000,
            multi_use: true,
        };
        setup.push(rec(alliance, *k, t, payload));
    }
    let setup_blocks: Vec<(u64, Vec<Record>)> = setup.chunks(BLOCK).map(|c| (t, c.to_vec())).collect();
    let mut sale_blocks = Vec::new();
    let per_block_ms = (20 * HOUR_MS) / (sales / BLOCK + 1) as u64;
    let mut time = t + 1;
    let mut x: u64 = 0x1234_5678;
    let mut block = Vec::with_capacity(BLOCK);
    for n in 0..sales {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let seller = (x % MERCHANTS as u64) as usize;
        let mut referrer = ((x >> 20) % MERCHANTS as u64) as usize;
        if referrer % CATEGORIES == seller % CATEGORIES {
            referrer = (referrer + 1) % MERCHANTS;
        }
        let c = ((x >> 40) % CARDS as u64) as usize;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(c as u64).to_be_bytes());
        let home = c % MERCHANTS;
        let gross = 1_000 + (x >> 8) % 50_000;
        let payload = Payload::Sale {
            order: format!("o{n}"),
            gross: Amount::from_cents(gross).expect("amount"),
            base: Amount::from_cents(gross).expect("amount"),
            card: if home % CATEGORIES == seller % CATEGORIES { None } else { Some(CardId(id)) },
            referral_code: Some(CodeSecret::new(format!("bench-ref-{referrer:05}").as_bytes()).expect("code")),
            coupon_codes: vec![],
            points_redeemed: 0,
        };
        block.push(rec(alliance, w.keys[seller], time, payload));
        if block.len() == BLOCK {
            sale_blocks.push((time, std::mem::take(&mut block)));
            time += per_block_ms;
        }
    }
    if !block.is_empty() {
        sale_blocks.push((time, block));
    }
    (setup_blocks, sale_blocks)
}

fn prepared(w: &World, setup: &[(u64, Vec<Record>)]) -> State {
    let mut state = State::from_genesis(&w.genesis);
    for (t, records) in setup {
        let out = state.apply_block(*t, records).expect("setup block");
        assert!(out.receipts.iter().all(|r| r.is_accepted()));
    }
    state
}

fn bench(c: &mut Criterion) {
    let clock = Clock::from_env();
    let w = world();
    let (setup, sales) = blocks(&w, 200_000);
    let base = prepared(&w, &setup);
    let mut group = c.benchmark_group("settlement");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(200_000));
    group.bench_function("apply_200k_sales", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut state = base.clone();
                let start = clock.start();
                for (t, records) in &sales {
                    let out = state.apply_block(*t, records).expect("block");
                    black_box(&out.state_root);
                }
                total += clock.elapsed(start);
            }
            total
        })
    });
    // A day of 1,000,000 records over 200 merchants, closed by the next day's first block.
    // Built lazily, so filtering for `apply` skips it.
    let day_state: OnceCell<State> = OnceCell::new();
    group.throughput(Throughput::Elements(1_000_000));
    let day = || {
        let (_, day) = blocks(&w, 1_000_000);
        let mut full = base.clone();
        for (t, records) in &day {
            let out = full.apply_block(*t, records).expect("block");
            assert!(out.receipts.iter().all(|r| r.is_accepted()), "bench records are all accepted");
        }
        full
    };
    group.bench_function("statement_1m_records_200_merchants", |b| {
        let full = day_state.get_or_init(day);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut state = full.clone();
                let start = clock.start();
                let out = state.apply_block(T0 + 86_400_000 + 1, &[]).expect("closing block");
                let statement = out.statement.expect("the day closed");
                black_box(statement.hash());
                total += clock.elapsed(start);
            }
            total
        })
    });
    // What a node pays to keep the state of a block it executed but has not finalized: one
    // copy of the state after that day (the replica's build, verify and sync take one each).
    group.throughput(Throughput::Elements(1));
    group.bench_function("clone_state_after_1m_records", |b| {
        let full = day_state.get_or_init(day);
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = clock.start();
                let copy = full.clone();
                total += clock.elapsed(start);
                black_box(&copy);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
