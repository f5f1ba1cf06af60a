//! Four replicas in one process, over in-memory stores and a perfect in-memory network,
//! through a scripted day of an alliance: cards, referrals, coupons, sales, refunds, a
//! governance vote, the local midnight that closes the period. Every replica ends with the
//! same chain, state root and statement; records from a non-member never get in.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use plaza_consensus::Message;
use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{Policy, DAY_MS};
use plaza_ledger::record::{
    Action, CardId, CodeSecret, CouponValue, Funding, MerchantProfile, Payload, PromoterId, Record, RecordBody,
};
use plaza_ledger::store::{ChainStore, MemStore};
use plaza_ledger::{Hash, Keypair, PublicKey};
use plaza_node::mempool::Mempool;
use plaza_node::replica::{Effect, Now, Replica, ReplicaConfig};
use plaza_node::{Admission, NodeConfig, Rejection};

/// 2026-11-23 00:00 at UTC+8.
const T0: u64 = 1_795_363_200_000;
const NODES: usize = 4;

fn key(i: usize) -> Keypair {
    Keypair::from_seed(format!("cluster-test/{i}").as_bytes())
}

fn genesis() -> Genesis {
    let mut members: Vec<MerchantProfile> = (0..NODES)
        .map(|i| MerchantProfile {
            key: key(i).public(),
            name: format!("m{i}"),
            category: format!("c{i}"),
            district: "d".into(),
            latitude_e6: 0,
            longitude_e6: 0,
            network_key: Some(Keypair::from_seed(format!("cluster-test/net{i}").as_bytes()).public()),
        })
        .collect();
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let validators = ValidatorSet::new(
        members.iter().map(|m| Validator { key: m.key, network_key: m.network_key.expect("set above") }).collect(),
    )
    .expect("validators");
    let mut policy = Policy::default_v1(T0);
    policy.min_payout = Amount::from_cents(1).expect("cent");
    let genesis = Genesis {
        name: "cluster".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: T0,
        categories: (0..NODES).map(|i| Named { code: format!("c{i}"), name: format!("c{i}") }).collect(),
        districts: vec![Named { code: "d".into(), name: "d".into() }],
        members,
        validators,
        policy,
        promoters: Vec::new(),
    };
    genesis.validate().expect("valid genesis");
    genesis
}

struct Cluster {
    replicas: Vec<Replica<MemStore>>,
    stores: Vec<Arc<MemStore>>,
    keys: Vec<PublicKey>,
    alliance: Hash,
    /// Monotonic ms; the wall clock is `wall_start + ms`.
    ms: u64,
    wall_start: u64,
    network: VecDeque<(usize, Delivery)>,
    relayed: Vec<Record>,
    /// A node whose disk refuses consensus-log writes, and what it sent after the refusal.
    broken_disk: Option<usize>,
    sent_after_failure: usize,
}

enum Delivery {
    Consensus(PublicKey, Message),
    Records(Vec<Record>),
}

impl Cluster {
    fn new(wall_start: u64) -> Cluster {
        let genesis = genesis();
        let mut config = ReplicaConfig::from_node(&NodeConfig::default());
        config.consensus.view_timeout_ms = 500;
        config.consensus.rebroadcast_interval_ms = 200;
        config.block_interval_ms = 5;
        config.empty_block_interval_ms = 50;
        config.snapshot_interval_blocks = 10;
        let now = Now { ms: 1, wall_ms: wall_start + 1 };
        let mut replicas = Vec::new();
        let mut stores = Vec::new();
        for i in 0..NODES {
            let store = Arc::new(MemStore::new(&genesis));
            let mempool = Arc::new(Mutex::new(Mempool::new(10_000, 10_000)));
            replicas.push(Replica::open(store.clone(), key(i), config.clone(), mempool, now).expect("opens"));
            stores.push(store);
        }
        let mut cluster = Cluster {
            replicas,
            stores,
            keys: (0..NODES).map(|i| key(i).public()).collect(),
            alliance: genesis.alliance_id(),
            ms: 1,
            wall_start,
            network: VecDeque::new(),
            relayed: Vec::new(),
            broken_disk: None,
            sent_after_failure: 0,
        };
        for i in 0..NODES {
            cluster.perform(i);
        }
        cluster
    }

    fn now(&self) -> Now {
        Now { ms: self.ms, wall_ms: self.wall_start + self.ms }
    }

    fn perform(&mut self, i: usize) {
        let mut failed = false;
        while let Some(effect) = self.replicas[i].poll_effect() {
            if failed && matches!(effect, Effect::Broadcast(_) | Effect::Send { .. }) {
                self.sent_after_failure += 1;
            }
            match effect {
                Effect::Persist(_) if self.broken_disk == Some(i) => {
                    self.replicas[i].persist_failed("the test's disk refuses writes");
                    failed = true;
                }
                Effect::Persist(entries) => self.stores[i].put_vote_log(&entries).expect("memory store"),
                Effect::Broadcast(message) => {
                    for to in (0..NODES).filter(|to| *to != i) {
                        self.network.push_back((to, Delivery::Consensus(self.keys[i], message.clone())));
                    }
                }
                Effect::Send { to, message } => {
                    if let Some(to) = self.keys.iter().position(|k| *k == to) {
                        self.network.push_back((to, Delivery::Consensus(self.keys[i], message)));
                    }
                }
                Effect::Relay(records) => {
                    self.relayed.extend(records.iter().cloned());
                    for to in (0..NODES).filter(|to| *to != i) {
                        self.network.push_back((to, Delivery::Records(records.clone())));
                    }
                }
                // Every replica is in step here; block sync has nothing to do.
                Effect::RequestSync { .. } => self.replicas[i].sync_failed(),
                Effect::Finalized { .. } | Effect::InvalidProposal { .. } | Effect::Voted { .. } => {}
            }
        }
    }

    /// Runs the cluster for `ms` milliseconds of its clock, delivering every message at once.
    fn run_for(&mut self, ms: u64) {
        let end = self.ms + ms;
        while self.ms < end {
            while let Some((to, delivery)) = self.network.pop_front() {
                let now = self.now();
                match delivery {
                    Delivery::Consensus(from, message) => self.replicas[to].handle_message(now, from, message),
                    Delivery::Records(records) => self.replicas[to].handle_gossip_records(now, records),
                }
                self.perform(to);
            }
            self.ms += 1;
            for i in 0..NODES {
                if self.replicas[i].poll_timeout() <= self.ms {
                    let now = self.now();
                    self.replicas[i].handle_timeout(now);
                    self.perform(i);
                }
            }
        }
    }

    fn record(&self, signer: usize, payload: Payload) -> Record {
        let k = key(signer);
        Record::sign(RecordBody { alliance: self.alliance, signer: k.public(), created_at_ms: self.now().wall_ms, payload }, &k)
    }

    fn submit(&mut self, node: usize, records: Vec<Record>) -> Vec<Admission> {
        let now = self.now();
        let answers = self.replicas[node].handle_submit(now, records);
        self.perform(node);
        answers
    }
}

fn sale(order: &str, cents: u64, card: Option<CardId>, referral: Option<&str>, coupon: Option<&str>) -> Payload {
    Payload::Sale {
        order: order.into(),
        gross: Amount::from_cents(cents).expect("amount"),
        base: Amount::from_cents(cents).expect("amount"),
        card,
        referral_code: referral.map(|r| CodeSecret::new(r.as_bytes()).expect("secret")),
        coupon_codes: coupon.map(|c| CodeSecret::new(c.as_bytes()).expect("secret")).into_iter().collect(),
        points_redeemed: 0,
    }
}

#[test]
fn four_replicas_through_a_day_end_with_equal_roots_and_statements() {
    // Start at 23:59:50 local time on the first day, so the scripted day closes mid-test.
    let mut cluster = Cluster::new(T0 + DAY_MS - 10_000);
    let card = CardId([7; 16]);
    let script: Vec<(usize, usize, Payload)> = vec![
        (0, 0, Payload::IssueCard { card }),
        (
            1,
            1,
            Payload::Refer {
                code_hash: CodeSecret::new(b"cluster-ref-1").expect("secret").hash(),
                card: Some(card),
                promoter: None,
                upstream: None,
                valid_at: Vec::new(),
                expires_at_ms: T0 + 30 * DAY_MS,
                multi_use: true,
            },
        ),
        (
            2,
            2,
            Payload::IssueCoupons {
                batch: "spring".into(),
                code_hashes: vec![CodeSecret::new(b"cluster-cpn-1").expect("secret").hash()],
                value: CouponValue::Fixed(Amount::from_cents(500).expect("amount")),
                min_spend: Amount::from_cents(1_000).expect("amount"),
                redeemable_at: Vec::new(),
                funding: Funding::Issuer,
                expires_at_ms: T0 + 30 * DAY_MS,
            },
        ),
    ];
    for (node, signer, payload) in script {
        let record = cluster.record(signer, payload);
        assert_eq!(cluster.submit(node, vec![record]), vec![Admission::Accepted]);
    }
    cluster.run_for(300);
    let sales = vec![
        cluster.record(3, sale("o-1", 12_000, Some(card), Some("cluster-ref-1"), None)),
        cluster.record(1, sale("o-2", 8_000, Some(card), None, Some("cluster-cpn-1"))),
        cluster.record(2, sale("o-3", 30_000, None, Some("cluster-ref-1"), None)),
    ];
    // A batch with a record from a non-member: refused at admission, never relayed.
    let outsider = Keypair::from_seed(b"cluster-test/outsider");
    let foreign = Record::sign(
        RecordBody {
            alliance: cluster.alliance,
            signer: outsider.public(),
            created_at_ms: cluster.now().wall_ms,
            payload: Payload::IssueCard { card: CardId([9; 16]) },
        },
        &outsider,
    );
    let mut batch = sales.clone();
    batch.push(foreign.clone());
    let answers = cluster.submit(3, batch);
    assert_eq!(answers[..3], [Admission::Accepted, Admission::Accepted, Admission::Accepted]);
    assert_eq!(answers[3], Admission::Refused(Rejection::NotAMember(outsider.public())));
    // The same record gossiped by a member is dropped too, before it could be relayed on.
    let now = cluster.now();
    cluster.replicas[0].handle_gossip_records(now, vec![foreign.clone()]);
    cluster.perform(0);
    assert_eq!(cluster.replicas[0].mempool_len(), 0, "a non-member's gossiped record never enters the mempool");
    cluster.run_for(300);
    let refund = cluster.record(3, Payload::Refund { order: "o-1".into(), refund_id: "r-1".into(), amount: Amount::from_cents(2_000).expect("amount") });
    let proposal = cluster.record(0, Payload::Propose {
        action: Action::RegisterPromoter { id: PromoterId::new("walker").expect("id"), name: "Walker".into(), upstream: None },
    });
    let proposal_id = proposal.id();
    cluster.submit(0, vec![refund, proposal]);
    cluster.run_for(300);
    let votes: Vec<Record> = (1..NODES).map(|i| cluster.record(i, Payload::Vote { proposal: proposal_id, approve: true })).collect();
    cluster.submit(2, votes);
    // Past local midnight: the period closes in the first block after it.
    cluster.run_for(12_000);

    assert!(!cluster.relayed.iter().any(|r| r.id() == foreign.id()), "the non-member's record was relayed");
    let tips: Vec<u64> = cluster.stores.iter().map(|s| s.tip_height().expect("tip")).collect();
    let height = *tips.iter().min().expect("four");
    assert!(height >= 20, "the cluster finalized only {tips:?}");
    for h in 1..=height {
        let blocks: Vec<_> = cluster.stores.iter().map(|s| s.block(h).expect("read").expect("stored").block.header).collect();
        assert!(blocks.windows(2).all(|w| w[0] == w[1]), "height {h}: replicas differ");
    }
    // Each replica writes its periodic snapshot at its own heights in the interval (10 here).
    let snapshots: Vec<u64> = cluster.stores.iter().map(|s| s.state_snapshot().expect("read").map_or(0, |(h, _)| h)).collect();
    for (i, at) in snapshots.iter().enumerate() {
        assert!(*at > 0 && at % 10 == plaza_node::replica::snapshot_phase(&key(i).public()) % 10, "replica {i}'s snapshots: {snapshots:?}");
    }
    assert!(snapshots.windows(2).any(|w| w[0] != w[1]), "all replicas wrote their snapshot at the same height: {snapshots:?}");
    let roots: Vec<Hash> = cluster.replicas.iter().map(|r| r.state().read().expect("lock").state_root()).collect();
    let tip_root = cluster.stores[0].block(tips[0]).expect("read").expect("stored").block.header.state_root;
    assert_eq!(roots[0], tip_root, "the live state is the tip's");
    let records: usize = (1..=height).map(|h| cluster.stores[0].block(h).expect("read").expect("stored").block.records.len()).sum();
    assert_eq!(records, 3 + 3 + 2 + 3, "every member's record is final once, the non-member's never");
    for store in &cluster.stores {
        for r in &sales {
            assert!(store.record_location(&r.id()).expect("read").is_some(), "a sale is missing");
        }
        assert!(store.record_location(&foreign.id()).expect("read").is_none());
    }
    // The period closed: every replica holds the same statement.
    let statements: Vec<Vec<(u64, Vec<u8>)>> = cluster.stores.iter().map(|s| s.statements()).collect();
    assert!(!statements[0].is_empty(), "the day's statement was not closed");
    assert!(statements.windows(2).all(|w| w[0] == w[1]), "replicas hold different statements");
}

/// A consensus-log write that fails stops that replica's consensus before it sends the vote
/// (it could equivocate after a crash otherwise); the other three go on finalizing.
#[test]
fn a_failed_log_write_stops_consensus_before_the_vote_goes_out() {
    let mut cluster = Cluster::new(T0 + 9 * 3_600_000);
    cluster.run_for(500);
    let before = cluster.stores[1].tip_height().expect("tip");
    assert!(before >= 3, "the cluster runs: {before}");
    cluster.broken_disk = Some(0);
    cluster.run_for(2_000);
    assert!(!cluster.replicas[0].is_validator(), "consensus stopped at the failed write");
    assert_eq!(cluster.sent_after_failure, 0, "nothing was sent after the failed write");
    let after = cluster.stores[1].tip_height().expect("tip");
    assert!(after >= before + 10, "three of four still finalize: {before} → {after}");
}
