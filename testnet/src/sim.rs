//! The deterministic cluster simulator (DESIGN §10): n nodes running the node's own
//! [`Replica`] — consensus, mempool admission, proposing, executing every block through the
//! settlement contract before voting, the consensus log, finalization and block sync — over
//! a simulated network, clock and disk ([`MemStore`]), all driven by one seed. Merchants
//! submit real signed records ([`crate::workload`]) to the nodes as API clients would.
//!
//! Faults: message loss, duplication, reordering and delay; partitions and heals; crashes at
//! any instant and restarts from what was durably written (a consensus-log write in flight
//! takes simulated disk time, and a crash in it loses the write and everything the node
//! would have sent after it); clock skew and drift; up to f Byzantine validators played by
//! mock nodes around the honest replica (equivocating leader, twins, invalid proposals,
//! withheld votes, votes for unknown blocks, silence).
//!
//! After every run:
//! - safety: no two honest nodes finalized different blocks at one height, and every honest
//!   node that reached a height has the same block, state root, receipts root and statement
//!   hash there; no honest validator sent two different votes of one kind in one view, or
//!   both nullify and finalize in one view;
//! - the ledger: every record acknowledged final at any honest node is in every honest node's
//!   chain that reached its height, no record appears twice in a chain, no record from a
//!   non-member is admitted or finalized, and each honest node's live state has its tip
//!   header's state root;
//! - liveness: once faults stop every honest validator finalizes a new block within
//!   [`LIVENESS_VIEWS_MAX`] views.
//!
//! - the auditor: every honest node's chain passes the full verification of `plaza verify`
//!   (`audit::verify_chain`: every certificate by the set of its epoch, followed from genesis).
//!
//! With [`SimOptions::epochs`], the alliance has seven members of which four validate; the
//! members vote the other three in and, after a period close made it effective, out again
//! (n = 4 → 7 → 4), with the Byzantine count held to f of the set in force; the clock jumps
//! a day twice so that periods close.
//!
//! A failing run prints its seed; [`run`] with that seed replays it exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Range;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use plaza_consensus::{Config, InjectedBugs, Message, PAYLOAD_BYTES_MAX};
use plaza_ledger::block::{Block, BLOCK_BYTES_MAX};
use plaza_ledger::audit::{verify_chain, BlockEntry, Start, VerifyOptions};
use plaza_ledger::cert::{Vote, VoteKind, VoteTarget};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::Statement;
use plaza_ledger::genesis::Genesis;
use plaza_ledger::policy::{DAY_MS, HOUR_MS};
use plaza_ledger::record::{Action, Payload, Record, RecordBody};
use plaza_ledger::store::{ChainStore, MemStore};
use plaza_ledger::{Hash, Keypair, PublicKey};
use plaza_node::mempool::Mempool;
use plaza_node::replica::{Effect, Now, Replica, ReplicaBugs, ReplicaConfig};
use plaza_node::wire::{SyncRequest, SyncResponse};
use plaza_node::{Admission, Rejection};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::workload::{self, Workload, GENESIS_MS};

/// Once faults stop, every honest validator must finalize a new block within this many views.
pub const LIVENESS_VIEWS_MAX: u64 = 60;
/// A simulated node's wall clock at local time 0: the run crosses a local midnight (a
/// settlement period closes) a few simulated seconds in.
const WALL_START_MS: u64 = GENESIS_MS + plaza_ledger::policy::DAY_MS - 16_000;
/// How long the simulated disk takes for one synced write, at most.
const DISK_WRITE_MS_MAX: u64 = 3;

/// What the runs of a batch have in common; each seed draws the rest.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// Validator counts to draw from.
    pub validator_counts: Vec<usize>,
    /// How long faults last, in simulated milliseconds.
    pub fault_duration_ms: u64,
    /// How long the cluster runs after faults stop.
    pub calm_duration_ms: u64,
    /// Allow Byzantine mock nodes (up to f).
    pub byzantine: bool,
    /// Allow network faults, partitions, crashes and clock skew.
    pub network_faults: bool,
    /// Deliberate protocol bugs in every validator (needs consensus's `inject-bugs` feature).
    pub bugs: InjectedBugs,
    /// Deliberate replica bugs in every node (needs node's `inject-bugs` feature).
    pub replica_bugs: ReplicaBugs,
    /// Validator-set changes by member vote in the run: 4 → 7 → 4 (`validator_counts` is
    /// not used).
    pub epochs: bool,
}

impl SimOptions {
    /// The validator-change scenario: long enough for two votes and two period closes.
    pub fn epochs() -> SimOptions {
        SimOptions { fault_duration_ms: EPOCH_FAULTS_MS, calm_duration_ms: 4_000, epochs: true, ..SimOptions::default() }
    }
}

/// Epoch runs: members, validators at genesis, how long faults last. The votes follow each
/// other: the additions are offered from the start; once they are final somewhere every clock
/// jumps a day (a period closes: epoch 1, seven validators); once epoch 1 has begun
/// somewhere the removals are offered, and once they are final the clocks jump again
/// (epoch 2, the four of genesis).
const EPOCH_MEMBERS: usize = 7;
const EPOCH_VALIDATORS: usize = 4;
const EPOCH_FAULTS_MS: u64 = 4_200;
const GOVERNANCE_START_MS: u64 = 50;
/// How often the governance records not yet final are offered again.
const GOVERNANCE_INTERVAL_MS: u64 = 150;

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            validator_counts: vec![4, 4, 4, 4, 4, 4, 4, 4, 7, 7, 10],
            fault_duration_ms: 1_000,
            calm_duration_ms: 3_000,
            byzantine: true,
            network_faults: true,
            bugs: InjectedBugs::default(),
            replica_bugs: ReplicaBugs::default(),
            epochs: false,
        }
    }
}

/// A Byzantine validator's behaviour, played by a mock around the honest replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// As leader, sends two different valid blocks to two halves of the cluster.
    Equivocator,
    /// Two nodes with one key, each running honest code with its own store.
    Twins,
    /// As leader, proposes blocks whose header the execution contradicts.
    InvalidProposer,
    /// Never sends a vote or certificate (still proposes).
    Withholder,
    /// Votes honestly and also notarizes and finalizes random unknown block ids.
    UnknownBlockVoter,
    /// Sends nothing at all.
    Silent,
}

const BYZANTINE_KINDS: [Byzantine; 6] = [
    Byzantine::Equivocator,
    Byzantine::Twins,
    Byzantine::InvalidProposer,
    Byzantine::Withholder,
    Byzantine::UnknownBlockVoter,
    Byzantine::Silent,
];

/// What one seed made of the options.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    /// Validators at genesis.
    pub validators: usize,
    /// Members (merchants running a node); more than `validators` in an epoch run.
    pub members: usize,
    pub epochs: bool,
    pub byzantine: Vec<(usize, Byzantine)>,
    pub loss: f64,
    pub duplication: f64,
    pub delay_ms: Range<u64>,
    pub partitions: bool,
    pub crashes: bool,
    pub skew_ms_max: u64,
}

impl Scenario {
    pub fn from_seed(seed: u64, options: &SimOptions) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ce1_a210);
        let (validators, members) = if options.epochs {
            (EPOCH_VALIDATORS, EPOCH_MEMBERS)
        } else {
            let n = options.validator_counts[rng.random_range(0..options.validator_counts.len())];
            (n, n)
        };
        let mut byzantine = Vec::new();
        if options.byzantine {
            // At most f of every set in force: f of the genesis set among its validators, and
            // in an epoch run one more among the three voted in (f = 2 of seven), who leave
            // again with it.
            let mut groups = vec![(0..validators).collect::<Vec<usize>>()];
            if members > validators {
                groups.push((validators..members).collect());
            }
            for (g, mut indices) in groups.into_iter().enumerate() {
                let f = if g == 0 { (validators - 1) / 3 } else { (members - 1) / 3 - (validators - 1) / 3 };
                let count = rng.random_range(0..=f);
                for _ in 0..count {
                    let index = indices.remove(rng.random_range(0..indices.len()));
                    byzantine.push((index, BYZANTINE_KINDS[rng.random_range(0..BYZANTINE_KINDS.len())]));
                }
            }
            byzantine.sort_by_key(|(i, _)| *i);
        }
        let faults = options.network_faults;
        Scenario {
            seed,
            validators,
            members,
            epochs: options.epochs,
            byzantine,
            loss: if faults { rng.random_range(0.0..0.2) } else { 0.0 },
            duplication: if faults { rng.random_range(0.0..0.1) } else { 0.0 },
            delay_ms: if faults { 10..rng.random_range(40..150) } else { 20..80 },
            partitions: faults && rng.random_bool(0.5),
            crashes: faults && rng.random_bool(0.5),
            skew_ms_max: if faults { rng.random_range(0..5_000) } else { 0 },
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} n={}{} byzantine={:?} loss={:.2} dup={:.2} delay={:?}ms partitions={} crashes={} skew≤{}ms",
            self.seed,
            self.validators,
            if self.epochs { format!("→{}→{} (epochs)", self.members, self.validators) } else { String::new() },
            self.byzantine,
            self.loss,
            self.duplication,
            self.delay_ms,
            self.partitions,
            self.crashes,
            self.skew_ms_max
        )
    }
}

/// The outcome of one seeded run.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub scenario: Scenario,
    /// blake3 of everything that happened: every delivery, timer, effect and fault, in order.
    pub trace_hash: Hash,
    /// The lowest finalized height among honest validators at the end.
    pub finalized_height_min: u64,
    /// Records in the lowest honest chain at the end.
    pub finalized_records_min: u64,
    /// The state root of the highest block every honest node holds.
    pub common_state_root: Hash,
    pub views_max: u64,
    pub messages: u64,
    /// The lowest epoch an honest node's chain reached (2 when both votes took effect
    /// everywhere in an epoch run).
    pub epoch_min: u64,
    /// Finalization certificates signed by a validator voted in (epoch runs).
    pub certificates_with_new_validators: u64,
    /// Empty when every check passed.
    pub violations: Vec<String>,
}

impl RunReport {
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What a batch of runs found.
#[derive(Clone, Debug, Default)]
pub struct SimSummary {
    pub runs: u64,
    pub failures: Vec<RunReport>,
    pub finalized_blocks: u64,
    pub finalized_records: u64,
    pub messages: u64,
    pub elapsed: Duration,
}

impl SimSummary {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for SimSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} runs, {} failed, {} blocks and {} records finalized (lowest honest chain per run, summed), {} messages, {:.1}s",
            self.runs,
            self.failures.len(),
            self.finalized_blocks,
            self.finalized_records,
            self.messages,
            self.elapsed.as_secs_f64()
        )?;
        for failure in &self.failures {
            writeln!(f, "FAILED {}", failure.scenario)?;
            for violation in failure.violations.iter().take(5) {
                writeln!(f, "  {violation}")?;
            }
            writeln!(f, "  replay: plaza sim --seed {}", failure.scenario.seed)?;
        }
        Ok(())
    }
}

/// Runs every seed of `seeds` (on all cores), with a progress bar when asked, and prints the
/// summary when `show_progress` is set. Failing seeds are listed with their scenario.
pub fn run_seeds(options: &SimOptions, seeds: Range<u64>, show_progress: bool) -> SimSummary {
    let started = Instant::now();
    let total = seeds.end.saturating_sub(seeds.start);
    let bar = if show_progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {elapsed_precise} eta {eta}  {msg}") {
        bar.set_style(style);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(total.max(1) as usize);
    let next = std::sync::atomic::AtomicU64::new(seeds.start);
    let reports: Vec<Vec<RunReport>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if seed >= seeds.end {
                            return mine;
                        }
                        let report = run(seed, options);
                        if !report.passed() {
                            bar.println(format!("FAILED {}: {}", report.scenario, report.violations[0]));
                        }
                        bar.inc(1);
                        mine.push(report);
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("simulator threads do not panic")).collect()
    });
    bar.finish_and_clear();
    let mut all: Vec<RunReport> = reports.into_iter().flatten().collect();
    all.sort_by_key(|r| r.scenario.seed);
    let mut summary = SimSummary { elapsed: started.elapsed(), ..SimSummary::default() };
    for report in all {
        summary.runs += 1;
        summary.finalized_blocks += report.finalized_height_min;
        summary.finalized_records += report.finalized_records_min;
        summary.messages += report.messages;
        if !report.passed() {
            summary.failures.push(report);
        }
    }
    if show_progress {
        print!("{summary}");
    }
    summary
}

/// Runs one seed and checks it.
pub fn run(seed: u64, options: &SimOptions) -> RunReport {
    let scenario = Scenario::from_seed(seed, options);
    let mut cluster = Cluster::new(scenario.clone(), options);
    cluster.run(options);
    cluster.report()
}

// ------------------------------------------------------------------------------ the cluster

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Honest,
    Byzantine(Byzantine),
}

struct Node {
    key: usize,
    role: Role,
    /// The running process; `None` while crashed.
    replica: Option<Replica<MemStore>>,
    /// The disk: survives crashes.
    store: Arc<MemStore>,
    /// Increments with every crash; events of an earlier life are stale.
    life: u64,
    /// The height it wrote a state snapshot at when it last stopped cleanly.
    stopped_at: Option<u64>,
    /// A consensus-log write on the disk, and the effects waiting behind it.
    writing: bool,
    held: VecDeque<Effect>,
    skew_ms: i64,
    /// Clock rate error in parts per million.
    drift_ppm: i64,
    /// The wall clock at local time 0 (moved by the day jumps of an epoch run).
    wall_start_ms: u64,
    /// The wake-up scheduled (global ms) and its generation.
    wake: Option<(u64, u64)>,
    wake_generation: u64,
}

impl Node {
    fn local_ms(&self, global_ms: u64) -> u64 {
        let g = global_ms as i64;
        (g + self.skew_ms + g * self.drift_ppm / 1_000_000 + 10_000).max(0) as u64
    }
    /// The first global instant at which this node's clock shows at least `local_ms`.
    fn global_ms(&self, local_ms: u64) -> u64 {
        let l = local_ms as i64 - 10_000 - self.skew_ms;
        let mut global = (l * 1_000_000 / (1_000_000 + self.drift_ppm)).max(0) as u64;
        while self.local_ms(global) < local_ms {
            global += 1;
        }
        global
    }
    fn now(&self, global_ms: u64) -> Now {
        let ms = self.local_ms(global_ms);
        Now { ms, wall_ms: self.wall_start_ms + ms }
    }
}

#[allow(clippy::large_enum_variant)]
enum Event {
    /// The message was decoded from its bytes once per send; every recipient gets a copy.
    Deliver { to: usize, from: PublicKey, message: Rc<Message> },
    Records { to: usize, records: Rc<Vec<Record>> },
    Wake { node: usize, generation: u64 },
    DiskDone { node: usize, life: u64, entries: Vec<(Vec<u8>, Vec<u8>)> },
    Submit { node: usize },
    Crash { node: usize },
    Restart { node: usize },
    Partition { groups: Vec<u8> },
    FaultsEnd,
    SyncRequest { to: usize, from: usize, request: SyncRequest },
    SyncResponse { to: usize, response: Rc<SyncResponse> },
    SyncFailed { to: usize },
    /// Offer the governance records of an epoch run that are not final yet (and move the
    /// clocks when a vote is through).
    Governance,
}

/// One governance record of an epoch run, signed when first offered (at that node's clock).
struct GovernanceRecord {
    signer: usize,
    /// A proposal, or a vote on the proposal of entry `usize`.
    what: GovernanceKind,
    /// 0: the additions, 1: the removals.
    phase: u8,
    record: Option<Record>,
}

enum GovernanceKind {
    AddValidator(usize),
    RemoveValidator(usize),
    Approve(usize),
}

struct Cluster {
    scenario: Scenario,
    rng: ChaCha8Rng,
    genesis: Genesis,
    alliance: Hash,
    network_keys: Vec<Keypair>,
    governance: Vec<GovernanceRecord>,
    keys: Vec<Keypair>,
    config: ReplicaConfig,
    nodes: Vec<Node>,
    workload: Workload,
    now_ms: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    trace: blake3::Hasher,
    faults_active: bool,
    /// Partition group per node; messages cross only within a group.
    groups: Vec<u8>,
    messages: u64,
    /// Per honest key: every vote it sent, by (epoch, kind, view).
    sent_votes: BTreeMap<(usize, u64, VoteKind, u64), BTreeSet<VoteTarget>>,
    /// Per node: height → (block id, view), as finalized.
    finalized: Vec<BTreeMap<u64, (Hash, u64)>>,
    /// Records acknowledged final by an honest node: id → (height, node).
    acknowledged: BTreeMap<Hash, (u64, usize)>,
    /// Records from a non-member offered to nodes.
    outsiders: BTreeSet<Hash>,
    /// At the end of faults: the highest honest view and height.
    calm_start: Option<(u64, u64)>,
    certificates_with_new_validators: u64,
    /// Day jumps of the clocks so far (epoch runs).
    jumps: u8,
    violations: Vec<String>,
}

impl Cluster {
    fn new(scenario: Scenario, options: &SimOptions) -> Cluster {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let n = scenario.members;
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(format!("sim-{}-v{i}", scenario.seed).as_bytes())).collect();
        let network_keys: Vec<Keypair> =
            (0..n).map(|i| Keypair::from_seed(format!("sim-{}-net{i}", scenario.seed).as_bytes())).collect();
        let genesis = workload::genesis(&keys, &network_keys, scenario.validators);
        // An epoch run starts an hour into the genesis day, far from a period close: only
        // the day jumps close periods.
        let wall_start_ms = if scenario.epochs { GENESIS_MS + HOUR_MS } else { WALL_START_MS };
        let alliance = genesis.alliance_id();
        let config = ReplicaConfig {
            consensus: Config {
                view_timeout_ms: 400,
                rebroadcast_interval_ms: 200,
                silent_leader_views: 8,
                payload_bytes_max: PAYLOAD_BYTES_MAX,
                injected_bugs: options.bugs,
            },
            block_interval_ms: 5,
            empty_block_interval_ms: 10,
            block_records_max: 200,
            block_time_skew_ms_max: 30_000,
            snapshot_interval_blocks: 8,
            mempool_records_max: 10_000,
            mempool_records_per_merchant_max: 2_000,
            sync_timeout_ms: 1_000,
            bugs: options.replica_bugs,
        };
        let mut nodes = Vec::new();
        for key in 0..n {
            let role = scenario.byzantine.iter().find(|(i, _)| *i == key).map_or(Role::Honest, |(_, b)| Role::Byzantine(*b));
            let copies = if role == Role::Byzantine(Byzantine::Twins) { 2 } else { 1 };
            for _ in 0..copies {
                let skew_ms = if scenario.skew_ms_max > 0 { rng.random_range(0..=scenario.skew_ms_max) as i64 } else { 0 };
                let drift_ppm = if scenario.skew_ms_max > 0 { rng.random_range(-20_000..=20_000) } else { 0 };
                nodes.push(Node {
                    key,
                    role,
                    replica: None,
                    store: Arc::new(MemStore::new(&genesis)),
                    life: 0,
                    stopped_at: None,
                    writing: false,
                    held: VecDeque::new(),
                    skew_ms,
                    drift_ppm,
                    wall_start_ms,
                    wake: None,
                    wake_generation: 0,
                });
            }
        }
        let node_count = nodes.len();
        let workload = Workload::new(scenario.seed, alliance, &keys);
        let governance = if scenario.epochs { Cluster::governance_script(scenario.validators, scenario.members) } else { Vec::new() };
        let mut cluster = Cluster {
            scenario,
            rng,
            genesis,
            alliance,
            network_keys,
            governance,
            keys,
            config,
            nodes,
            workload,
            now_ms: 0,
            seq: 0,
            events: BTreeMap::new(),
            trace: blake3::Hasher::new(),
            faults_active: true,
            groups: vec![0; node_count],
            messages: 0,
            sent_votes: BTreeMap::new(),
            finalized: vec![BTreeMap::new(); node_count],
            acknowledged: BTreeMap::new(),
            outsiders: BTreeSet::new(),
            calm_start: None,
            certificates_with_new_validators: 0,
            jumps: 0,
            violations: Vec::new(),
        };
        for node in 0..node_count {
            cluster.start_node(node);
        }
        cluster.schedule_faults(options);
        cluster.schedule_workload(options);
        if cluster.scenario.epochs {
            cluster.schedule(GOVERNANCE_START_MS, Event::Governance);
        }
        cluster
    }

    /// The epoch run's votes: member 0 proposes to add each member beyond the genesis
    /// validators, and later to remove each again; members 1…4 approve (with the proposer,
    /// five of seven: more than 2/3).
    fn governance_script(validators: usize, members: usize) -> Vec<GovernanceRecord> {
        let mut script = Vec::new();
        for phase in [0, 1] {
            for joining in validators..members {
                let proposal = script.len();
                let what = if phase == 0 { GovernanceKind::AddValidator(joining) } else { GovernanceKind::RemoveValidator(joining) };
                script.push(GovernanceRecord { signer: 0, what, phase, record: None });
                for voter in 1..=4 {
                    script.push(GovernanceRecord { signer: voter, what: GovernanceKind::Approve(proposal), phase, record: None });
                }
            }
        }
        script
    }

    /// The governance records to offer now (0 additions, 1 removals, 2 none: waiting for
    /// epoch 1, or done), moving the clocks when a
    /// phase's records are all final at some honest node.
    fn governance_phase(&mut self) -> u8 {
        let honest = self.honest_nodes();
        let final_somewhere = |cluster: &Cluster, phase: u8| {
            honest.iter().any(|i| {
                let store = &cluster.nodes[*i].store;
                cluster.governance.iter().filter(|g| g.phase == phase).all(|g| {
                    g.record.as_ref().is_some_and(|r| matches!(store.record_location(&r.id()), Ok(Some(_))))
                })
            })
        };
        let epoch_max = honest
            .iter()
            .filter_map(|i| {
                let store = &self.nodes[*i].store;
                store.block(store.tip_height().ok()?).ok().flatten().map(|b| b.block.header.child_epoch())
            })
            .max()
            .unwrap_or(0);
        match self.jumps {
            0 if final_somewhere(self, 0) => self.jump(),
            1 if epoch_max >= 1 && final_somewhere(self, 1) => self.jump(),
            _ => {}
        }
        match self.jumps {
            0 => 0,
            1 if epoch_max >= 1 => 1,
            1 => 2,
            _ => 2,
        }
    }

    /// Every node's wall clock jumps a day forward (as the testnet clock can be moved): the
    /// next block closes a period and the changes voted in take effect.
    fn jump(&mut self) {
        self.trace.update(&[17]);
        self.jumps += 1;
        for node in &mut self.nodes {
            node.wall_start_ms += DAY_MS;
        }
    }

    /// Offers every governance record in its window that is not final yet to a random
    /// honest node that is up; a vote only once its proposal is final there (a vote on a
    /// proposal the contract does not know yet is refused for good).
    fn offer_governance(&mut self) {
        let honest: Vec<usize> = self.honest_nodes().into_iter().filter(|i| self.nodes[*i].replica.is_some()).collect();
        if honest.is_empty() {
            return;
        }
        let phase = self.governance_phase();
        let node = honest[self.rng.random_range(0..honest.len())];
        let now = self.nodes[node].now(self.now_ms);
        let store = self.nodes[node].store.clone();
        let is_final = |r: &Record| matches!(store.record_location(&r.id()), Ok(Some(_)));
        let mut offer = Vec::new();
        for i in 0..self.governance.len() {
            let entry = &self.governance[i];
            if entry.phase != phase || entry.record.as_ref().is_some_and(is_final) {
                continue;
            }
            let payload = match entry.what {
                GovernanceKind::AddValidator(m) => Payload::Propose {
                    action: Action::AddValidator { merchant: self.keys[m].public(), network_key: self.network_keys[m].public() },
                },
                GovernanceKind::RemoveValidator(m) => Payload::Propose { action: Action::RemoveValidator { merchant: self.keys[m].public() } },
                GovernanceKind::Approve(p) => match &self.governance[p].record {
                    Some(proposal) if is_final(proposal) => Payload::Vote { proposal: proposal.id(), approve: true },
                    _ => continue,
                },
            };
            let signer = entry.signer;
            let record = self.governance[i].record.get_or_insert_with(|| {
                let body = RecordBody { alliance: self.alliance, signer: self.keys[signer].public(), created_at_ms: now.wall_ms, payload };
                Record::sign(body, &self.keys[signer])
            });
            offer.push(record.clone());
        }
        for r in &offer {
            self.trace.update(r.id().as_bytes());
        }
        if !offer.is_empty() {
            self.with_replica(node, |r, now| {
                r.handle_submit(now, offer);
            });
        }
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.events.insert((at_ms, self.seq), event);
    }

    fn schedule_faults(&mut self, options: &SimOptions) {
        let end = options.fault_duration_ms;
        let count = self.nodes.len();
        if self.scenario.partitions {
            let mut t = 0;
            loop {
                t += self.rng.random_range(200..1_500);
                if t >= end {
                    break;
                }
                let groups: Vec<u8> = (0..count).map(|_| self.rng.random_range(0..2u8)).collect();
                self.schedule(t, Event::Partition { groups });
                t += self.rng.random_range(100..1_000);
                self.schedule(t.min(end), Event::Partition { groups: vec![0; count] });
            }
        }
        if self.scenario.crashes {
            let honest = self.honest_nodes();
            let crashes = self.rng.random_range(1..=3);
            for _ in 0..crashes {
                let node = honest[self.rng.random_range(0..honest.len())];
                let at = self.rng.random_range(0..end);
                let back = at + self.rng.random_range(50..2_000);
                self.schedule(at, Event::Crash { node });
                if back < end {
                    self.schedule(back, Event::Restart { node });
                }
            }
        }
        self.schedule(end, Event::FaultsEnd);
    }

    /// Merchants' batches of records, at random instants, to random honest nodes.
    fn schedule_workload(&mut self, options: &SimOptions) {
        let end = options.fault_duration_ms + options.calm_duration_ms;
        let honest = self.honest_nodes();
        let mut t = 0;
        loop {
            t += self.rng.random_range(10..120);
            if t >= end {
                break;
            }
            let node = honest[self.rng.random_range(0..honest.len())];
            self.schedule(t, Event::Submit { node });
        }
    }

    fn run(&mut self, options: &SimOptions) {
        let end = options.fault_duration_ms + options.calm_duration_ms;
        while let Some((&(at, seq), _)) = self.events.first_key_value() {
            if at > end {
                break;
            }
            let event = self.events.remove(&(at, seq)).expect("first key exists");
            self.now_ms = at;
            self.step(event);
        }
        self.check_end();
    }

    fn step(&mut self, event: Event) {
        self.trace.update(&self.now_ms.to_be_bytes());
        match event {
            Event::Deliver { to, from, message } => {
                self.trace.update(&[1, to as u8]);
                self.trace.update(from.as_bytes());
                self.with_replica(to, |r, now| r.handle_message(now, from, (*message).clone()));
            }
            Event::Records { to, records } => {
                self.trace.update(&[14, to as u8]);
                self.with_replica(to, |r, now| r.handle_gossip_records(now, (*records).clone()));
            }
            Event::Wake { node, generation } => {
                if self.nodes[node].wake.is_some_and(|(_, g)| g == generation) {
                    self.nodes[node].wake = None;
                    self.trace.update(&[2, node as u8]);
                    self.with_replica(node, |r, now| r.handle_timeout(now));
                }
            }
            Event::DiskDone { node, life, entries } => {
                if self.nodes[node].life == life {
                    self.trace.update(&[15, node as u8]);
                    let state = &mut self.nodes[node];
                    if let Err(e) = state.store.put_vote_log(&entries) {
                        self.violations.push(format!("node {node}: the simulated disk failed: {e}"));
                    }
                    state.writing = false;
                    self.perform(node);
                }
            }
            Event::Submit { node } => self.submit(node),
            Event::Crash { node } => {
                self.trace.update(&[3, node as u8]);
                let state = &mut self.nodes[node];
                // Every second one is a clean stop: the node snapshots its state at the tip as
                // the real one does on SIGTERM (its restart then re-executes nothing). A write
                // the simulated disk refuses leaves the older snapshot, as in the node.
                state.stopped_at = None;
                if state.life % 2 == 1
                    && let Some(replica) = state.replica.as_mut()
                    && replica.chain_mut().snapshot_tip().is_ok()
                {
                    state.stopped_at = Some(replica.chain().tip().height);
                }
                state.replica = None;
                state.life += 1;
                state.writing = false;
                state.held.clear();
                state.wake = None;
            }
            Event::Restart { node } => {
                self.trace.update(&[4, node as u8]);
                if self.nodes[node].replica.is_none() {
                    self.start_node(node);
                }
            }
            Event::Partition { groups } => {
                self.trace.update(&[5]);
                self.trace.update(&groups);
                self.groups = groups;
            }
            Event::SyncRequest { to, from, request } => {
                self.trace.update(&[8, to as u8, from as u8]);
                self.answer_sync(to, from, request);
            }
            Event::SyncResponse { to, response } => {
                self.trace.update(&[9, to as u8]);
                self.with_replica(to, |r, now| {
                    // A refused batch is the replica's business (it logs it); it asks again.
                    let _ = r.handle_sync_response(now, (*response).clone());
                });
            }
            Event::SyncFailed { to } => {
                self.trace.update(&[10, to as u8]);
                self.with_replica(to, |r, _| r.sync_failed());
            }
            Event::Governance => {
                self.trace.update(&[16]);
                self.offer_governance();
                self.schedule(self.now_ms + GOVERNANCE_INTERVAL_MS, Event::Governance);
            }
            Event::FaultsEnd => {
                self.trace.update(&[6]);
                self.faults_active = false;
                self.groups = vec![0; self.nodes.len()];
                for node in 0..self.nodes.len() {
                    if self.nodes[node].replica.is_none() {
                        self.start_node(node);
                    }
                }
                let honest = self.honest_nodes();
                let view = honest.iter().filter_map(|i| self.nodes[*i].replica.as_ref()?.view()).max().unwrap_or(0);
                let height = honest.iter().map(|i| self.finalized[*i].len() as u64).max().unwrap_or(0);
                self.calm_start = Some((view, height));
            }
        }
    }

    /// Starts (or restarts) a node from its disk only.
    fn start_node(&mut self, node: usize) {
        let now = self.nodes[node].now(self.now_ms);
        let state = &self.nodes[node];
        let keypair = Keypair::from_secret(&self.keys[state.key].secret_bytes()).expect("a valid secret");
        let mempool = Arc::new(Mutex::new(Mempool::new(self.config.mempool_records_max, self.config.mempool_records_per_merchant_max)));
        match Replica::open(state.store.clone(), keypair, self.config.clone(), mempool, now) {
            Ok(replica) => {
                // The store's chain is what this node finalized before (checked then).
                let tip = replica.chain().tip().height;
                let honest = self.nodes[node].role == Role::Honest;
                if let Some(stopped) = self.nodes[node].stopped_at.take()
                    && (replica.chain().opened_from_snapshot(), tip) != (stopped, stopped)
                {
                    self.violations.push(format!(
                        "node {node} stopped cleanly at height {stopped} but reopened at {tip} from the snapshot at {}",
                        replica.chain().opened_from_snapshot()
                    ));
                }
                if self.finalized[node].len() as u64 > tip && honest {
                    self.violations.push(format!("node {node} reopened at height {tip}, below what it had finalized"));
                }
                // Blocks it stored durably but whose `Finalized` report died with the crash
                // (held behind a consensus-log write): the store is the truth, as in the node.
                if honest {
                    for height in self.finalized[node].len() as u64 + 1..=tip {
                        let records: Vec<Hash> = match self.nodes[node].store.block(height) {
                            Ok(Some(b)) => b.block.records.iter().map(Record::id).collect(),
                            _ => Vec::new(),
                        };
                        self.store_finalized(node, height, &records);
                    }
                }
                // Its peers connect (the simulated network links every pair).
                let mut replica = replica;
                replica.peer_connected(now);
                self.nodes[node].replica = Some(replica);
                self.perform(node);
            }
            Err(e) => self.violations.push(format!("node {node} cannot restart: {e}")),
        }
    }

    /// Runs `f` on the node's replica (if it is up), then performs its effects and
    /// reschedules its wake-up.
    fn with_replica(&mut self, node: usize, f: impl FnOnce(&mut Replica<MemStore>, Now)) {
        let now = self.nodes[node].now(self.now_ms);
        let Some(replica) = self.nodes[node].replica.as_mut() else { return };
        f(replica, now);
        self.perform(node);
    }

    /// The node's shell: effects in order, and none past a consensus-log write until the
    /// simulated disk finished it.
    fn perform(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        let Some(replica) = state.replica.as_mut() else { return };
        while let Some(effect) = replica.poll_effect() {
            state.held.push_back(effect);
        }
        while !self.nodes[node].writing {
            let Some(effect) = self.nodes[node].held.pop_front() else { break };
            self.effect(node, effect);
        }
        // Effects may have fed the replica (none do today), and timers moved.
        let Some(replica) = self.nodes[node].replica.as_ref() else { return };
        let at = self.nodes[node].global_ms(replica.poll_timeout()).max(self.now_ms);
        let state = &mut self.nodes[node];
        if state.wake.is_none_or(|(scheduled, _)| at < scheduled) {
            state.wake_generation += 1;
            let generation = state.wake_generation;
            state.wake = Some((at, generation));
            self.schedule(at, Event::Wake { node, generation });
        }
    }

    fn effect(&mut self, node: usize, effect: Effect) {
        let role = self.nodes[node].role;
        match effect {
            Effect::Persist(entries) => {
                self.trace.update(&[11, node as u8, entries.len() as u8]);
                let delay = self.rng.random_range(0..=DISK_WRITE_MS_MAX);
                let life = self.nodes[node].life;
                self.nodes[node].writing = true;
                self.schedule(self.now_ms + delay, Event::DiskDone { node, life, entries });
            }
            Effect::Broadcast(message) => {
                if role == Role::Honest {
                    self.check_sent(node, &message);
                }
                self.broadcast_from(node, message);
            }
            Effect::Send { to, message } => {
                if self.filtered(role, &message) {
                    return;
                }
                if role == Role::Honest {
                    self.check_sent(node, &message);
                }
                let targets: Vec<usize> =
                    (0..self.nodes.len()).filter(|i| *i != node && self.keys[self.nodes[*i].key].public() == to).collect();
                self.send_all(node, &targets, message.to_bytes());
            }
            Effect::Relay(records) => {
                if records.iter().any(|r| self.outsiders.contains(&r.id())) {
                    self.violations.push(format!("node {node} relayed a record from a non-member"));
                }
                if role == Role::Byzantine(Byzantine::Silent) {
                    return;
                }
                let records = Rc::new(records);
                for to in (0..self.nodes.len()).filter(|i| *i != node) {
                    let records = records.clone();
                    self.transmit(node, to, || Event::Records { to, records: records.clone() });
                }
            }
            Effect::RequestSync { request, attempt } => {
                let others = self.nodes.len() - 1;
                if others == 0 {
                    self.with_replica(node, |r, _| r.sync_failed());
                    return;
                }
                let mut peer = (attempt % others as u64) as usize;
                if peer >= node {
                    peer += 1;
                }
                self.trace.update(&[12, node as u8, peer as u8]);
                self.stream(node, peer, Event::SyncRequest { to: peer, from: node, request }, Event::SyncFailed { to: node });
            }
            Effect::Finalized { blocks, .. } => {
                for info in blocks {
                    self.trace.update(&[13, node as u8]);
                    self.trace.update(&info.height.to_be_bytes());
                    if role == Role::Honest {
                        self.store_finalized(node, info.height, &info.records);
                    }
                }
            }
            Effect::InvalidProposal { .. } | Effect::Voted { .. } => {}
        }
    }

    /// A merchant's batch through one node's API: the node checks each record as the API
    /// does, then admits it.
    fn submit(&mut self, node: usize) {
        let now = self.nodes[node].now(self.now_ms);
        if self.nodes[node].replica.is_none() {
            return;
        }
        let mut records = self.workload.batch(now.wall_ms);
        if self.rng.random_bool(0.1) {
            let outsider = self.workload.outsider_record(now.wall_ms);
            self.outsiders.insert(outsider.id());
            records.push(outsider);
        }
        for r in &records {
            self.trace.update(r.id().as_bytes());
            if let Err(e) = r.check(&self.alliance) {
                self.violations.push(format!("the workload made an invalid record: {e}"));
                return;
            }
        }
        let ids: Vec<Hash> = records.iter().map(Record::id).collect();
        let mut answers = Vec::new();
        self.with_replica(node, |r, now| answers = r.handle_submit(now, records));
        for (id, answer) in ids.iter().zip(answers) {
            if self.outsiders.contains(id) && !matches!(answer, Admission::Refused(Rejection::NotAMember(_))) {
                self.violations.push(format!("node {node} admitted a record from a non-member: {answer:?}"));
            }
        }
    }

    /// The Byzantine mocks' filters on what they send.
    fn filtered(&self, role: Role, message: &Message) -> bool {
        match role {
            Role::Byzantine(Byzantine::Silent) => true,
            Role::Byzantine(Byzantine::Withholder) => matches!(message, Message::Vote(_) | Message::Certificate(_)),
            _ => false,
        }
    }

    fn broadcast_from(&mut self, node: usize, message: Message) {
        let role = self.nodes[node].role;
        if self.filtered(role, &message) {
            return;
        }
        let key = self.nodes[node].key;
        let others: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != node).collect();
        match (&message, role) {
            (Message::Proposal(proposal), Role::Byzantine(Byzantine::Equivocator)) => {
                // A second valid block for the same view (same records, a later time), to a
                // random half of the cluster.
                let Some(other) = self.second_block(node, proposal) else {
                    self.send_all(node, &others, message.to_bytes());
                    return;
                };
                let (a, b) = (message.to_bytes(), Message::Proposal(other).to_bytes());
                for target in others {
                    let bytes = if self.rng.random_bool(0.5) { a.clone() } else { b.clone() };
                    self.send(node, target, bytes);
                }
                return;
            }
            (Message::Proposal(proposal), Role::Byzantine(Byzantine::InvalidProposer)) => {
                // The header claims a state root execution does not produce.
                if let Ok(mut block) = Block::from_bytes(&proposal.payload, BLOCK_BYTES_MAX) {
                    block.header.state_root = Hash::digest(b"not the state after this block");
                    let mut bad = proposal.clone();
                    bad.payload = block.to_bytes();
                    bad.block = block.id();
                    let epoch = self.nodes[node].replica.as_ref().and_then(|r| r.consensus()).map_or(0, |c| c.epoch());
                    bad.signature = VoteTarget::notarize(epoch, bad.view, bad.block).sign(&self.alliance, &self.keys[key]).signature;
                    self.send_all(node, &others, Message::Proposal(bad).to_bytes());
                    return;
                }
            }
            (Message::Vote(vote), Role::Byzantine(Byzantine::UnknownBlockVoter)) if vote.target.kind != VoteKind::Nullify => {
                let unknown = Hash::digest(&self.rng.random::<u64>().to_be_bytes());
                let (epoch, view) = (vote.target.epoch, vote.target.view);
                for target in [VoteTarget::notarize(epoch, view, unknown), VoteTarget::finalize(epoch, view, unknown)] {
                    let bytes = Message::Vote(target.sign(&self.alliance, &self.keys[key])).to_bytes();
                    self.send_all(node, &others, bytes);
                }
            }
            _ => {}
        }
        self.send_all(node, &others, message.to_bytes());
    }

    /// The equivocator builds a second block on the same parent with its own replica's
    /// chain: a block every honest node would accept on its own.
    fn second_block(&mut self, node: usize, proposal: &plaza_consensus::Proposal) -> Option<plaza_consensus::Proposal> {
        let key = self.nodes[node].key;
        let block = Block::from_bytes(&proposal.payload, BLOCK_BYTES_MAX).ok()?;
        let replica = self.nodes[node].replica.as_mut()?;
        let proposer = replica.public_key();
        let (id, payload, _) = replica
            .chain_mut()
            .build(proposal.view, proposal.parent, proposal.height, block.header.time_ms + 1, proposer, block.records)
            .ok()?;
        let epoch = replica.consensus().map_or(0, |c| c.epoch());
        let mut other = proposal.clone();
        other.block = id;
        other.payload = payload;
        other.signature = VoteTarget::notarize(epoch, other.view, other.block).sign(&self.alliance, &self.keys[key]).signature;
        Some(other)
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.send_all(from, &[to], bytes);
    }

    fn send_all(&mut self, from: usize, targets: &[usize], bytes: Vec<u8>) {
        // Decoding is part of what is tested: what is delivered is what the bytes decode to.
        self.trace.update(&bytes);
        let message = match Message::decode_bytes(&bytes) {
            Ok(message) => Rc::new(message),
            Err(e) => {
                self.violations.push(format!("a sent message does not decode: {e}"));
                return;
            }
        };
        let from_key = self.keys[self.nodes[from].key].public();
        for &to in targets {
            let message = message.clone();
            self.transmit(from, to, || Event::Deliver { to, from: from_key, message: message.clone() });
        }
    }

    /// How many copies of one message from `from` reach `to`: loss, duplication and
    /// partitions while faults last.
    fn copies(&mut self, from: usize, to: usize) -> usize {
        self.messages += 1;
        if !self.faults_active {
            1
        } else if self.groups[from] != self.groups[to] || self.rng.random_bool(self.scenario.loss) {
            0
        } else if self.rng.random_bool(self.scenario.duplication) {
            2
        } else {
            1
        }
    }

    /// Schedules what the network lets through of one datagram-like transmission.
    fn transmit(&mut self, from: usize, to: usize, event: impl Fn() -> Event) {
        for _ in 0..self.copies(from, to) {
            let delay = self.rng.random_range(self.scenario.delay_ms.clone());
            self.schedule(self.now_ms + delay, event());
        }
    }

    /// A request or answer on a stream (block sync): not lost or duplicated, but it fails
    /// (the `failed` event, after a delay) across a partition.
    fn stream(&mut self, from: usize, to: usize, event: Event, failed: Event) {
        self.messages += 1;
        let delay = self.rng.random_range(self.scenario.delay_ms.clone());
        if self.faults_active && self.groups[from] != self.groups[to] {
            self.schedule(self.now_ms + delay, failed);
        } else {
            self.schedule(self.now_ms + delay, event);
        }
    }

    /// A node answers a sync request with what its replica holds; a crashed node's
    /// connection fails, a silent mock never answers (the requester times out).
    fn answer_sync(&mut self, node: usize, to: usize, request: SyncRequest) {
        if self.nodes[node].role == Role::Byzantine(Byzantine::Silent) {
            return;
        }
        let Some(replica) = self.nodes[node].replica.as_ref() else {
            self.schedule(self.now_ms + 1, Event::SyncFailed { to });
            return;
        };
        let response = Rc::new(replica.handle_sync_request(&request));
        self.stream(node, to, Event::SyncResponse { to, response }, Event::SyncFailed { to });
    }

    // ------------------------------------------------------------------------------ checks

    /// What an honest node sends: never two different votes of one kind in one view, nor
    /// both nullify and finalize in one view (CONSENSUS.md step 14). A proposal carries the
    /// leader's notarize vote.
    fn check_sent(&mut self, node: usize, message: &Message) {
        let key = self.nodes[node].key;
        let me = self.keys[key].public();
        let vote = match message {
            Message::Vote(vote) if vote.signer == me => *vote,
            // Our own proposal (not one we hand over on request) carries our notarize vote.
            Message::Proposal(p) => match self.nodes[node].replica.as_ref().and_then(|r| r.consensus()) {
                Some(c) if c.leader(p.view) == me => Vote { target: VoteTarget::notarize(c.epoch(), p.view, p.block), signer: me, signature: p.signature },
                _ => return,
            },
            _ => return,
        };
        let target = vote.target;
        let entry = self.sent_votes.entry((key, target.epoch, target.kind, target.view)).or_default();
        entry.insert(target);
        if entry.len() > 1 {
            self.violations.push(format!(
                "honest validator {key} sent two {} votes in view {} of epoch {}",
                target.kind.name(),
                target.view,
                target.epoch
            ));
        }
        let other = match target.kind {
            VoteKind::Nullify => Some(VoteKind::Finalize),
            VoteKind::Finalize => Some(VoteKind::Nullify),
            VoteKind::Notarize => None,
        };
        if let Some(other) = other
            && self.sent_votes.contains_key(&(key, target.epoch, other, target.view))
        {
            self.violations.push(format!("honest validator {key} sent both nullify and finalize in view {}", target.view));
        }
    }

    /// A block an honest node stored as final: consecutive heights, the same block as every
    /// other honest node's at that height, each record once.
    fn store_finalized(&mut self, node: usize, height: u64, records: &[Hash]) {
        let expected = self.finalized[node].len() as u64 + 1;
        if height != expected {
            self.violations.push(format!("node {node} finalized height {height} after height {}", expected - 1));
            return;
        }
        let block = match self.nodes[node].store.block(height) {
            Ok(Some(b)) => b,
            _ => {
                self.violations.push(format!("node {node} reported height {height} final but did not store it"));
                return;
            }
        };
        let id = block.block.id();
        self.trace.update(id.as_bytes());
        self.finalized[node].insert(height, (id, block.block.header.view));
        for other in self.honest_nodes() {
            if other == node {
                continue;
            }
            if let Some((theirs, _)) = self.finalized[other].get(&height)
                && *theirs != id
            {
                self.violations.push(format!(
                    "SAFETY: nodes {node} and {other} finalized different blocks at height {height}: {id:?} vs {theirs:?}"
                ));
            }
        }
        for record in records {
            if self.outsiders.contains(record) {
                self.violations.push(format!("node {node} finalized a record from a non-member at height {height}"));
            }
            match self.acknowledged.get(record) {
                Some(&(h, _)) if h != height => self.violations.push(format!(
                    "record {record} is final at height {h} and again at {height} (node {node})"
                )),
                Some(_) => {}
                None => {
                    self.acknowledged.insert(*record, (height, node));
                }
            }
        }
    }

    fn check_end(&mut self) {
        let honest = self.honest_nodes();
        // Every honest node that reached a height has the same block there, hence the same
        // state root, receipts root and statement hash (compared field by field).
        let height_max = honest.iter().map(|i| self.finalized[*i].len() as u64).max().unwrap_or(0);
        for height in 1..=height_max {
            let mut first: Option<(usize, plaza_ledger::block::BlockHeader)> = None;
            for &node in &honest {
                let Ok(Some(block)) = self.nodes[node].store.block(height) else { continue };
                let header = block.block.header;
                match &first {
                    None => first = Some((node, header)),
                    Some((other, theirs)) => {
                        let fields = [
                            ("block id", header.id() != theirs.id()),
                            ("state root", header.state_root != theirs.state_root),
                            ("receipts root", header.receipts_root != theirs.receipts_root),
                            ("statement hash", header.statement_hash != theirs.statement_hash),
                        ];
                        for (what, differs) in fields {
                            if differs {
                                self.violations.push(format!("SAFETY: nodes {node} and {other} differ in {what} at height {height}"));
                            }
                        }
                    }
                }
            }
        }
        for &node in &honest {
            let store = &self.nodes[node].store;
            let tip = store.tip_height().unwrap_or(0);
            // No record twice in one chain, every acknowledged record in every chain that
            // reached its height.
            let mut seen = BTreeSet::new();
            for height in 1..=tip {
                let Ok(Some(block)) = store.block(height) else {
                    self.violations.push(format!("node {node}'s chain lacks height {height}"));
                    break;
                };
                for record in &block.block.records {
                    if !seen.insert(record.id()) {
                        self.violations.push(format!("node {node}'s chain holds record {} twice", record.id()));
                    }
                }
            }
            for (record, (height, by)) in &self.acknowledged {
                if *height <= tip && !seen.contains(record) {
                    self.violations.push(format!("record {record}, final at node {by}, is missing from node {node}'s chain"));
                }
            }
            // The live state is the state the tip header commits to.
            if let Some(replica) = &self.nodes[node].replica
                && tip > 0
                && let Ok(Some(block)) = store.block(tip)
            {
                let root = replica.state().read().map(|s| s.state_root()).unwrap_or(Hash::ZERO);
                if root != block.block.header.state_root {
                    self.violations.push(format!("node {node}'s state differs from its tip header's state root"));
                }
            }
        }
        // The auditor: every honest chain passes `plaza verify` (certificates by the set of
        // each block's epoch, followed from genesis; the next set on every epoch-ending block).
        for &node in &honest {
            let store = self.nodes[node].store.clone();
            let tip = store.tip_height().unwrap_or(0);
            let mut statements: BTreeMap<u64, Vec<u8>> = store.statements().into_iter().collect();
            let mut period = 0;
            let entries: Vec<Result<plaza_ledger::audit::verify::Source, plaza_ledger::audit::Failure>> = (1..=tip)
                .filter_map(|h| store.block(h).ok().flatten())
                .map(|block| {
                    let receipts = store.block_receipts(&block).unwrap_or_default();
                    let statement = if block.block.header.statement_hash.is_some() {
                        period += 1;
                        statements.remove(&(period - 1)).and_then(|b| Statement::from_bytes(&b, 1 << 30).ok())
                    } else {
                        None
                    };
                    Ok(BlockEntry { block, receipts, statement }.into())
                })
                .collect();
            let options = VerifyOptions { threads: 1, ..VerifyOptions::default() };
            let report = verify_chain(&self.genesis, Start::Genesis, entries, &options, &mut |_| {});
            if let Some(failure) = report.failure {
                self.violations.push(format!("AUDIT: node {node}'s chain fails verification: {failure}"));
            }
            if self.scenario.epochs {
                let new: BTreeSet<_> = (self.scenario.validators..self.scenario.members).map(|i| self.keys[i].public()).collect();
                self.certificates_with_new_validators += (1..=tip)
                    .filter_map(|h| store.block(h).ok().flatten())
                    .filter(|b| b.certificate.signers().any(|k| new.contains(k)))
                    .count() as u64;
            }
        }
        // Liveness: after faults stop, every honest validator finalizes a block beyond the
        // highest height any of them had, within LIVENESS_VIEWS_MAX views.
        let Some((view_start, height_start)) = self.calm_start else { return };
        for &node in &honest {
            let progress = self.finalized[node].range(height_start + 1..).next().map(|(_, (_, view))| *view);
            match progress {
                None => self.violations.push(format!(
                    "LIVENESS: node {node} finalized nothing above height {height_start} after faults stopped (view {view_start}, now view {})",
                    self.nodes[node].replica.as_ref().and_then(Replica::view).unwrap_or(0)
                )),
                Some(view) if view > view_start + LIVENESS_VIEWS_MAX => self.violations.push(format!(
                    "LIVENESS: node {node} needed {} views after faults stopped to finalize",
                    view - view_start
                )),
                Some(_) => {}
            }
        }
    }

    fn honest_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].role == Role::Honest).collect()
    }

    fn report(&mut self) -> RunReport {
        let honest = self.honest_nodes();
        self.violations.dedup();
        let lowest = honest.iter().copied().min_by_key(|i| self.finalized[*i].len());
        let (height_min, records_min, root) = match lowest {
            Some(node) => {
                let store = &self.nodes[node].store;
                let tip = self.finalized[node].len() as u64;
                let records: u64 =
                    (1..=tip).filter_map(|h| store.block(h).ok().flatten()).map(|b| b.block.records.len() as u64).sum();
                let root = store.block(tip).ok().flatten().map_or(Hash::ZERO, |b| b.block.header.state_root);
                (tip, records, root)
            }
            None => (0, 0, Hash::ZERO),
        };
        let epoch_min = honest
            .iter()
            .map(|i| {
                let store = &self.nodes[*i].store;
                let tip = store.tip_height().unwrap_or(0);
                store.block(tip).ok().flatten().map_or(0, |b| b.block.header.child_epoch())
            })
            .min()
            .unwrap_or(0);
        RunReport {
            epoch_min,
            certificates_with_new_validators: self.certificates_with_new_validators,
            scenario: self.scenario.clone(),
            trace_hash: Hash(*self.trace.finalize().as_bytes()),
            finalized_height_min: height_min,
            finalized_records_min: records_min,
            common_state_root: root,
            views_max: self.nodes.iter().filter_map(|n| n.replica.as_ref()?.view()).max().unwrap_or(0),
            messages: self.messages,
            violations: std::mem::take(&mut self.violations),
        }
    }
}
