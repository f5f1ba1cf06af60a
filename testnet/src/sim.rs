//! The deterministic cluster simulator (DESIGN §10): n validators running the production
//! `plaza_consensus` state machine over a simulated network and clock, all driven by one seed.
//!
//! Faults: message loss, duplication, reordering and delay; partitions and heals; crashes and
//! restarts from what was durably written (the vote and proposal logs and the finalized
//! chain); clock skew and drift; up to f Byzantine validators played by mock nodes
//! (equivocating leader, twins, invalid proposals, withheld votes, votes for unknown blocks,
//! silence). Nodes also run the node's block sync, as the real driver does.
//!
//! After every run: no two honest validators finalized different blocks at one height (so
//! their chains are prefixes of each other), no honest validator signed two different votes
//! of one kind in one view or both nullify and finalize in one view, and once faults stop
//! every honest validator finalizes a new block within [`LIVENESS_VIEWS_MAX`] views.
//! A failing run prints its seed; [`run`] with that seed replays it exactly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::ops::Range;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use plaza_consensus::{
    Config, Consensus, FinalizedTip, InjectedBugs, Input, Message, Output, Proposal, Restart,
};
use plaza_ledger::cert::{Certificate, Validator, ValidatorSet, Vote, VoteKind, VoteTarget};
use plaza_ledger::codec::Encode;
use plaza_ledger::{Hash, Keypair, PublicKey};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Once faults stop, every honest validator must finalize a new block within this many views.
pub const LIVENESS_VIEWS_MAX: u64 = 60;
/// The first payload byte of a block that honest applications reject.
const INVALID_MARKER: u8 = 0xBA;
/// How often a node asks a peer for finalized blocks it lacks (the node's `SYNC_INTERVAL_MS`).
const SYNC_INTERVAL_MS: u64 = 500;
/// At most this many finalized blocks per sync answer (the node's `SYNC_BLOCKS_MAX`).
const SYNC_BLOCKS_MAX: usize = 256;

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
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            validator_counts: vec![4, 4, 4, 4, 4, 4, 4, 4, 7, 7, 10],
            fault_duration_ms: 1_000,
            calm_duration_ms: 3_000,
            byzantine: true,
            network_faults: true,
            bugs: InjectedBugs::default(),
        }
    }
}

/// A Byzantine validator's behaviour, played by a mock around the honest state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Byzantine {
    /// As leader, sends different blocks to two halves of the cluster.
    Equivocator,
    /// Two nodes with one key, each running honest code with its own vote log.
    Twins,
    /// As leader, proposes blocks the application rejects.
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
    pub validators: usize,
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
        let validators = options.validator_counts[rng.random_range(0..options.validator_counts.len())];
        let f = (validators - 1) / 3;
        let mut byzantine = Vec::new();
        if options.byzantine {
            let count = rng.random_range(0..=f);
            let mut indices: Vec<usize> = (0..validators).collect();
            for _ in 0..count {
                let index = indices.remove(rng.random_range(0..indices.len()));
                byzantine.push((index, BYZANTINE_KINDS[rng.random_range(0..BYZANTINE_KINDS.len())]));
            }
            byzantine.sort_by_key(|(i, _)| *i);
        }
        let faults = options.network_faults;
        Scenario {
            seed,
            validators,
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
            "seed {} n={} byzantine={:?} loss={:.2} dup={:.2} delay={:?}ms partitions={} crashes={} skew≤{}ms",
            self.seed,
            self.validators,
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
    /// blake3 of everything that happened: every delivery, timer, output and fault, in order.
    pub trace_hash: Hash,
    /// The lowest finalized height among honest validators at the end.
    pub finalized_height_min: u64,
    pub views_max: u64,
    pub messages: u64,
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
            "{} runs, {} failed, {} blocks finalized (lowest honest height per run, summed), {} messages, {:.1}s",
            self.runs,
            self.failures.len(),
            self.finalized_blocks,
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

/// What survives a crash.
#[derive(Default)]
struct Durable {
    votes: Vec<Vote>,
    /// Proposals persisted before voting for them, by block id; dropped once finalized.
    proposals: BTreeMap<Hash, Proposal>,
    /// Notarizations persisted before finalize votes, by view; dropped once finalized.
    certificates: BTreeMap<u64, Certificate>,
    /// The finalized chain: (height, view, block).
    chain: Vec<(u64, u64, Hash)>,
}

/// The application: builds and checks blocks. A block id commits to view, parent, height
/// and payload; a payload starting with [`INVALID_MARKER`] does not execute.
#[derive(Default)]
struct App {
    /// Verified (executed) blocks: volatile, lost in a crash except the finalized ones.
    blocks: BTreeSet<Hash>,
    built: u64,
}

fn block_id(view: u64, parent: &Hash, height: u64, payload: &[u8]) -> Hash {
    Hash::digest_parts(&[b"sim-block", &view.to_be_bytes(), parent.as_bytes(), &height.to_be_bytes(), payload])
}

struct Node {
    key: usize,
    role: Role,
    consensus: Option<Consensus>,
    app: App,
    durable: Durable,
    skew_ms: i64,
    /// Clock rate error in parts per million.
    drift_ppm: i64,
    timer_generation: u64,
    /// When the finalized chain last grew (global ms), and which peer block sync asks next.
    tip_changed_ms: u64,
    sync_cursor: usize,
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
}

#[allow(clippy::large_enum_variant)]
enum Event {
    /// The message was decoded from its bytes once per send; every recipient gets a copy.
    Deliver { to: usize, from: PublicKey, message: std::rc::Rc<Message> },
    Timer { node: usize, generation: u64 },
    Crash { node: usize },
    Restart { node: usize },
    Partition { groups: Vec<u8> },
    FaultsEnd,
    /// Block sync, as the node does it (DESIGN §8): a node behind on the finalized chain
    /// fetches finalized blocks from a peer and restarts consensus from the new tip.
    SyncTick { node: usize },
    SyncRequest { to: usize, from: usize, height: u64, lag_min: u64 },
    SyncResponse { to: usize, blocks: Vec<(u64, u64, Hash)> },
}

struct Cluster {
    scenario: Scenario,
    rng: ChaCha8Rng,
    alliance: Hash,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    config: Config,
    nodes: Vec<Node>,
    now_ms: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    trace: blake3::Hasher,
    faults_active: bool,
    /// Partition group per node; messages cross only within a group.
    groups: Vec<u8>,
    messages: u64,
    /// Per honest key: every vote it signed, by (kind, view).
    signed: BTreeMap<(usize, VoteKind, u64), BTreeSet<VoteTarget>>,
    /// Per node: height -> block, as finalized.
    finalized: Vec<BTreeMap<u64, (Hash, u64)>>,
    /// At the end of faults: the highest honest view and height.
    calm_start: Option<(u64, u64)>,
    violations: Vec<String>,
}

impl Cluster {
    fn new(scenario: Scenario, options: &SimOptions) -> Cluster {
        let mut rng = ChaCha8Rng::seed_from_u64(scenario.seed);
        let n = scenario.validators;
        let alliance = Hash::digest(format!("sim-alliance-{}", scenario.seed).as_bytes());
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(format!("sim-{}-v{i}", scenario.seed).as_bytes())).collect();
        let set = ValidatorSet::new(
            keys.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    key: k.public(),
                    network_key: Keypair::from_seed(format!("sim-{}-net{i}", scenario.seed).as_bytes()).public(),
                })
                .collect(),
        )
        .expect("distinct simulated keys");
        let config = Config {
            view_timeout_ms: 400,
            rebroadcast_interval_ms: 200,
            silent_leader_views: 8,
            payload_bytes_max: 1024,
            injected_bugs: options.bugs,
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
                    consensus: None,
                    app: App::default(),
                    durable: Durable::default(),
                    skew_ms,
                    drift_ppm,
                    timer_generation: 0,
                    tip_changed_ms: 0,
                    sync_cursor: 0,
                });
            }
        }
        let node_count = nodes.len();
        let mut cluster = Cluster {
            scenario,
            rng,
            alliance,
            keys,
            set,
            config,
            nodes,
            now_ms: 0,
            seq: 0,
            events: BTreeMap::new(),
            trace: blake3::Hasher::new(),
            faults_active: true,
            groups: vec![0; node_count],
            messages: 0,
            signed: BTreeMap::new(),
            finalized: vec![BTreeMap::new(); node_count],
            calm_start: None,
            violations: Vec::new(),
        };
        for node in 0..node_count {
            cluster.restart_node(node);
            // Staggered, as independent nodes' timers are.
            let first = SYNC_INTERVAL_MS * (node as u64 + 1) / node_count as u64;
            cluster.schedule(first, Event::SyncTick { node });
        }
        cluster.schedule_faults(options);
        cluster
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
            let honest: Vec<usize> = (0..count).filter(|i| self.nodes[*i].role == Role::Honest).collect();
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
        if cfg!(debug_assertions) && std::env::var_os("PLAZA_SIM_DEBUG").is_some() {
            eprintln!("end at {} with {} events left", self.now_ms, self.events.len());
            for (i, n) in self.nodes.iter().enumerate() {
                eprintln!("node {i} {:?} up={} view={:?} gen={}", n.role, n.consensus.is_some(), n.consensus.as_ref().map(|c| c.view()), n.timer_generation);
                if let Some(c) = &n.consensus {
                    for v in c.view().saturating_sub(2)..=c.view() {
                        eprintln!("   {}", c.describe_view(v));
                    }
                }
            }
        }
        self.check_end();
    }

    fn step(&mut self, event: Event) {
        self.trace.update(&self.now_ms.to_be_bytes());
        match event {
            Event::Deliver { to, from, message } => {
                self.trace.update(&[1, to as u8]);
                self.trace.update(from.as_bytes());
                self.input(to, Input::Message { from, message: (*message).clone() });
            }
            Event::Timer { node, generation } => {
                if self.nodes[node].timer_generation == generation {
                    self.trace.update(&[2, node as u8]);
                    self.input(node, Input::Timeout);
                }
            }
            Event::Crash { node } => {
                self.trace.update(&[3, node as u8]);
                let node_state = &mut self.nodes[node];
                node_state.consensus = None;
                node_state.app = App::default();
                node_state.timer_generation += 1;
            }
            Event::Restart { node } => {
                self.trace.update(&[4, node as u8]);
                if self.nodes[node].consensus.is_none() {
                    self.restart_node(node);
                }
            }
            Event::Partition { groups } => {
                self.trace.update(&[5]);
                self.trace.update(&groups);
                self.groups = groups;
            }
            Event::SyncTick { node } => {
                self.trace.update(&[7, node as u8]);
                self.schedule(self.now_ms + SYNC_INTERVAL_MS, Event::SyncTick { node });
                self.sync_tick(node);
            }
            Event::SyncRequest { to, from, height, lag_min } => {
                self.trace.update(&[8, to as u8, from as u8]);
                self.answer_sync(to, from, height, lag_min);
            }
            Event::SyncResponse { to, blocks } => {
                self.trace.update(&[9, to as u8]);
                self.apply_sync(to, blocks);
            }
            Event::FaultsEnd => {
                self.trace.update(&[6]);
                self.faults_active = false;
                self.groups = vec![0; self.nodes.len()];
                for node in 0..self.nodes.len() {
                    if self.nodes[node].consensus.is_none() {
                        self.restart_node(node);
                    }
                }
                let honest = self.honest_nodes();
                let view = honest.iter().filter_map(|i| self.nodes[*i].consensus.as_ref()).map(|c| c.view()).max().unwrap_or(0);
                let height = honest.iter().map(|i| self.finalized[*i].len() as u64).max().unwrap_or(0);
                self.calm_start = Some((view, height));
            }
        }
    }

    /// The node driver's `on_sync_tick`: ask one peer (in turn) for finalized blocks, for any
    /// lag when our tip has not moved for two view timeouts, otherwise only when clearly behind.
    fn sync_tick(&mut self, node: usize) {
        if self.nodes[node].consensus.is_none() || self.nodes.len() < 2 {
            return;
        }
        let stale = self.now_ms >= self.nodes[node].tip_changed_ms + 2 * self.config.view_timeout_ms;
        let lag_min = if stale { 1 } else { 3 };
        let others = self.nodes.len() - 1;
        let state = &mut self.nodes[node];
        state.sync_cursor += 1;
        let mut peer = state.sync_cursor % others;
        if peer >= node {
            peer += 1;
        }
        let height = state.durable.chain.len() as u64 + 1;
        self.transmit(node, peer, || Event::SyncRequest { to: peer, from: node, height, lag_min });
    }

    /// The node's answer to a sync request: its finalized blocks from `height` on, when it
    /// is at least `lag_min` ahead. Silent mocks send nothing; a crashed node cannot answer.
    fn answer_sync(&mut self, node: usize, to: usize, height: u64, lag_min: u64) {
        let state = &self.nodes[node];
        if state.consensus.is_none() || state.role == Role::Byzantine(Byzantine::Silent) {
            return;
        }
        let tip = state.durable.chain.len() as u64;
        if tip + 1 < height.saturating_add(lag_min) {
            return;
        }
        let blocks: Vec<(u64, u64, Hash)> =
            state.durable.chain.iter().skip(height as usize - 1).take(SYNC_BLOCKS_MAX).copied().collect();
        self.transmit(node, to, || Event::SyncResponse { to, blocks: blocks.clone() });
    }

    /// Stores synced blocks that extend our chain (the node checks each block's certificate;
    /// the mocks never forge finalized blocks, and agreement is checked on every one) and
    /// restarts consensus from the new tip, as the node's driver does.
    fn apply_sync(&mut self, node: usize, blocks: Vec<(u64, u64, Hash)>) {
        if self.nodes[node].consensus.is_none() {
            return;
        }
        let mut stored = false;
        for (height, view, block) in blocks {
            if height != self.nodes[node].durable.chain.len() as u64 + 1 {
                continue;
            }
            self.trace.update(block.as_bytes());
            self.store_finalized(node, height, view, block);
            stored = true;
        }
        if stored {
            self.restart_node(node);
        }
    }

    /// A finalized block, from consensus or from sync, joins the node's durable chain; what
    /// the logs kept for it can go.
    fn store_finalized(&mut self, node: usize, height: u64, view: u64, block: Hash) {
        let state = &mut self.nodes[node];
        state.durable.chain.push((height, view, block));
        state.durable.proposals.retain(|_, p| p.height > height);
        state.durable.certificates.retain(|v, _| *v > view);
        state.tip_changed_ms = self.now_ms;
        if state.role == Role::Honest {
            self.finalized[node].insert(height, (block, view));
            self.check_agreement(node, height, block);
        }
    }

    fn honest_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].role == Role::Honest).collect()
    }

    /// Starts (or restarts) a node from its durable state only.
    fn restart_node(&mut self, node: usize) {
        let state = &mut self.nodes[node];
        let finalized = state.durable.chain.last().map(|&(height, view, block)| FinalizedTip { view, height, block });
        state.app = App::default();
        if let Some(tip) = finalized {
            state.app.blocks.insert(tip.block);
        }
        let proposals = state.durable.proposals.values().cloned().collect();
        let certificates = state.durable.certificates.values().cloned().collect();
        let restart = Restart { votes: state.durable.votes.clone(), proposals, certificates, finalized };
        let consensus = Consensus::new(self.config.clone(), self.keys[state.key].clone_keypair(), self.set.clone(), self.alliance, restart)
            .expect("simulated validators are valid");
        state.consensus = Some(consensus);
        self.input(node, Input::Start);
    }

    fn input(&mut self, node: usize, input: Input) {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let local = self.nodes[node].local_ms(self.now_ms);
            let Some(consensus) = self.nodes[node].consensus.as_mut() else { return };
            let outputs = consensus.handle(local, input);
            for output in outputs {
                self.output(node, output, &mut queue);
            }
        }
    }

    fn output(&mut self, node: usize, output: Output, queue: &mut VecDeque<Input>) {
        let role = self.nodes[node].role;
        let key = self.nodes[node].key;
        match output {
            Output::Persist(vote) => {
                self.trace.update(&[10, node as u8]);
                self.trace.update(&vote.to_bytes());
                self.nodes[node].durable.votes.push(vote);
                if role == Role::Honest {
                    self.check_vote(key, vote);
                }
            }
            Output::PersistProposal(proposal) => {
                self.trace.update(&[12, node as u8]);
                self.trace.update(proposal.block.as_bytes());
                self.nodes[node].durable.proposals.insert(proposal.block, proposal);
            }
            Output::PersistCertificate(cert) => {
                self.trace.update(&[13, node as u8]);
                self.trace.update(&cert.to_bytes());
                self.nodes[node].durable.certificates.insert(cert.target.view, cert);
            }
            Output::Broadcast(message) => self.broadcast_from(node, message),
            Output::Send { to, message } => {
                if self.filtered(role, &message) {
                    return;
                }
                let targets: Vec<usize> =
                    (0..self.nodes.len()).filter(|i| *i != node && self.keys[self.nodes[*i].key].public() == to).collect();
                self.send_all(node, &targets, message.to_bytes());
            }
            Output::SetTimer { at_ms } => {
                let state = &mut self.nodes[node];
                state.timer_generation += 1;
                let generation = state.timer_generation;
                let at = state.global_ms(at_ms).max(self.now_ms);
                self.schedule(at, Event::Timer { node, generation });
            }
            Output::Propose { view, parent, height } => {
                let state = &mut self.nodes[node];
                state.app.built += 1;
                let mut payload = format!("block by {key} in view {view}, #{}", state.app.built).into_bytes();
                if role == Role::Byzantine(Byzantine::InvalidProposer) {
                    payload.insert(0, INVALID_MARKER);
                }
                let block = block_id(view, &parent, height, &payload);
                state.app.blocks.insert(block);
                queue.push_back(Input::Proposed { view, block, payload });
            }
            Output::Verify { view, block, parent, height, payload } => {
                let app = &mut self.nodes[node].app;
                let parent_known = parent == self.alliance || app.blocks.contains(&parent);
                if !parent_known {
                    self.violations.push(format!("node {node} asked to verify {block:?} before its parent"));
                }
                let valid = parent_known
                    && block == block_id(view, &parent, height, &payload)
                    && payload.first() != Some(&INVALID_MARKER);
                if valid {
                    app.blocks.insert(block);
                }
                queue.push_back(Input::Verdict { block, valid });
            }
            Output::Finalized(finalized) => {
                self.trace.update(&[11, node as u8]);
                self.trace.update(finalized.block.as_bytes());
                let state = &mut self.nodes[node];
                let expected = state.durable.chain.last().map_or(1, |(h, _, _)| h + 1);
                if finalized.height != expected {
                    self.violations.push(format!(
                        "node {node} finalized height {} after height {}",
                        finalized.height,
                        expected - 1
                    ));
                }
                if finalized.certificate.target.kind != VoteKind::Finalize
                    || finalized.certificate.check_signers(&self.set).is_err() && self.config.injected_bugs == InjectedBugs::default()
                {
                    self.violations.push(format!("node {node} finalized {:?} without a finalization certificate", finalized.block));
                }
                self.store_finalized(node, finalized.height, finalized.view, finalized.block);
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
                // A second block for the same view, to a random half of the cluster.
                let mut other = proposal.clone();
                other.payload.extend_from_slice(b" (equivocation)");
                other.block = block_id(other.view, &other.parent, other.height, &other.payload);
                other.signature = VoteTarget::notarize(other.view, other.block).sign(&self.alliance, &self.keys[key]).signature;
                let (a, b) = (Message::Proposal(proposal.clone()).to_bytes(), Message::Proposal(other).to_bytes());
                for target in others {
                    let bytes = if self.rng.random_bool(0.5) { a.clone() } else { b.clone() };
                    self.send(node, target, bytes);
                }
                return;
            }
            (Message::Vote(vote), Role::Byzantine(Byzantine::UnknownBlockVoter)) if vote.target.kind != VoteKind::Nullify => {
                let unknown = Hash::digest(&self.rng.random::<u64>().to_be_bytes());
                for target in [VoteTarget::notarize(vote.target.view, unknown), VoteTarget::finalize(vote.target.view, unknown)] {
                    let bytes = Message::Vote(target.sign(&self.alliance, &self.keys[key])).to_bytes();
                    self.send_all(node, &others, bytes);
                }
            }
            _ => {}
        }
        self.send_all(node, &others, message.to_bytes());
    }

    /// The network: loss, duplication, delay (hence reordering) and partitions while faults last.
    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.send_all(from, &[to], bytes);
    }

    fn send_all(&mut self, from: usize, targets: &[usize], bytes: Vec<u8>) {
        // Decoding is part of what is tested: what is delivered is what the bytes decode to.
        self.trace.update(&bytes);
        let message = match Message::decode_bytes(&bytes) {
            Ok(message) => std::rc::Rc::new(message),
            Err(e) => {
                self.violations.push(format!("a sent message does not decode: {e}"));
                return;
            }
        };
        for &to in targets {
            self.deliver(from, to, &message);
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

    /// Schedules what the network lets through of one transmission from `from` to `to`.
    fn transmit(&mut self, from: usize, to: usize, event: impl Fn() -> Event) {
        for _ in 0..self.copies(from, to) {
            let delay = self.rng.random_range(self.scenario.delay_ms.clone());
            self.schedule(self.now_ms + delay, event());
        }
    }

    fn deliver(&mut self, from: usize, to: usize, message: &std::rc::Rc<Message>) {
        let from_key = self.keys[self.nodes[from].key].public();
        self.transmit(from, to, || Event::Deliver { to, from: from_key, message: message.clone() });
    }

    // ------------------------------------------------------------------------------ checks

    /// An honest validator never signs two different votes of one kind in one view, nor both
    /// nullify and finalize in one view (CONSENSUS.md step 14).
    fn check_vote(&mut self, key: usize, vote: Vote) {
        let target = vote.target;
        let entry = self.signed.entry((key, target.kind, target.view)).or_default();
        entry.insert(target);
        if entry.len() > 1 {
            self.violations.push(format!("honest validator {key} signed two {} votes in view {}", target.kind.name(), target.view));
        }
        let other = match target.kind {
            VoteKind::Nullify => Some(VoteKind::Finalize),
            VoteKind::Finalize => Some(VoteKind::Nullify),
            VoteKind::Notarize => None,
        };
        if let Some(other) = other
            && self.signed.contains_key(&(key, other, target.view))
        {
            self.violations.push(format!("honest validator {key} signed both nullify and finalize in view {}", target.view));
        }
    }

    /// No two honest validators finalize different blocks at one height.
    fn check_agreement(&mut self, node: usize, height: u64, block: Hash) {
        for other in 0..self.nodes.len() {
            if other == node {
                continue;
            }
            if let Some((theirs, _)) = self.finalized[other].get(&height)
                && *theirs != block
            {
                self.violations.push(format!(
                    "SAFETY: nodes {node} and {other} finalized different blocks at height {height}: {block:?} vs {theirs:?}"
                ));
            }
        }
    }

    fn check_end(&mut self) {
        let honest = self.honest_nodes();
        // Finalized chains are prefixes of each other: every height is consecutive from 1 and
        // every shared height agrees (checked as they were finalized).
        for &node in &honest {
            let heights: Vec<u64> = self.finalized[node].keys().copied().collect();
            if heights.iter().enumerate().any(|(i, h)| *h != i as u64 + 1) {
                self.violations.push(format!("node {node}'s finalized heights have a gap"));
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
                    self.nodes[node].consensus.as_ref().map_or(0, |c| c.view())
                )),
                Some(view) if view > view_start + LIVENESS_VIEWS_MAX => self.violations.push(format!(
                    "LIVENESS: node {node} needed {} views after faults stopped to finalize",
                    view - view_start
                )),
                Some(_) => {}
            }
        }
    }

    fn report(&mut self) -> RunReport {
        let honest = self.honest_nodes();
        self.violations.dedup();
        RunReport {
            scenario: self.scenario.clone(),
            trace_hash: Hash(*self.trace.finalize().as_bytes()),
            finalized_height_min: honest.iter().map(|i| self.finalized[*i].len() as u64).min().unwrap_or(0),
            views_max: self.nodes.iter().filter_map(|n| n.consensus.as_ref()).map(|c| c.view()).max().unwrap_or(0),
            messages: self.messages,
            violations: std::mem::take(&mut self.violations),
        }
    }
}

trait CloneKeypair {
    fn clone_keypair(&self) -> Keypair;
}

impl CloneKeypair for Keypair {
    fn clone_keypair(&self) -> Keypair {
        Keypair::from_secret(&self.secret_bytes()).expect("an existing keypair's secret is valid")
    }
}
