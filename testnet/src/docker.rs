//! The container testnet (DESIGN §10, `testnet/docker/`): N validator containers on a private
//! `--internal` network with static addresses, the closed-loop load generator submitting
//! signed records, and a seeded schedule of perturbations in the manner of CometBFT's e2e
//! runner — SIGKILL and restart, pause and unpause, disconnect and reconnect (a partition of
//! one node), and a restart in a new container with the data volume kept. Then the end checks:
//! every node at the same tip with identical chains, state roots and statements; every record
//! acknowledged final present in every node's chain exactly once; no panic in any log; progress
//! after the perturbations stopped; `plaza verify` passing on an export from one node.
//!
//! The runner drives the `docker` command (no daemon API, no compose). Everything it creates
//! carries the label `plaza.run=<run id>` and is removed when the run ends, however it ends.
//! It reaches the nodes' APIs at their addresses on the run's own private network.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plaza_ledger::Hash;
use plaza_node::client::Client;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::api::{self, BlockWithRecords, StatementList};
use crate::load::{self, AcknowledgedLoad};
use crate::local::{check_same_chain, clone_key, wall_ms, Layout, LocalTestnet};
use crate::{ctx, Error};

/// The libp2p and API ports inside every container.
pub const P2P_PORT: u16 = 7100;
pub const API_PORT: u16 = 7180;
/// Where a node's home (its volume) is mounted inside its container.
const HOME_IN_CONTAINER: &str = "/home/plaza";

/// The kinds of perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `docker kill -s KILL`, later `docker start` (the same container).
    Kill,
    /// `docker pause`, later `docker unpause` (the node still accepts TCP but never answers).
    Pause,
    /// `docker network disconnect`, later `connect --ip` with the same address (a partition).
    Disconnect,
    /// `docker stop` and `docker rm`, later a new container on the same data volume.
    Restart,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Kill, Kind::Pause, Kind::Disconnect, Kind::Restart];
    pub fn name(self) -> &'static str {
        match self {
            Kind::Kill => "kill",
            Kind::Pause => "pause",
            Kind::Disconnect => "disconnect",
            Kind::Restart => "restart",
        }
    }
}

/// A run's manifest (`testnet/docker/*.toml`). Every key has a default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Manifest {
    /// Validator containers.
    pub nodes: usize,
    /// Seeds the schedule (which perturbation, which node, how long).
    pub seed: u64,
    /// Perturbations, at least.
    pub perturbations: usize,
    /// Keep perturbing until the run has lasted this long, too.
    pub run_seconds_min: u64,
    /// The kinds drawn from; the first perturbations cover each once.
    pub kinds: Vec<Kind>,
    /// How long a node stays perturbed, drawn uniformly from this range.
    pub perturbation_ms_min: u64,
    pub perturbation_ms_max: u64,
    /// Quiet time after a node recovered, before the next perturbation.
    pub quiet_ms_min: u64,
    pub quiet_ms_max: u64,
    /// A perturbed node must catch up within this long after it is healed.
    pub recover_seconds_max: u64,
    /// Blocks every node must finalize after the last perturbation (progress).
    pub progress_blocks: u64,
    /// Each load-generator thread pauses this long between its requests.
    pub load_pause_ms: u64,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            nodes: 4,
            seed: 1,
            perturbations: 8,
            run_seconds_min: 0,
            kinds: Kind::ALL.to_vec(),
            perturbation_ms_min: 2_000,
            perturbation_ms_max: 6_000,
            quiet_ms_min: 1_000,
            quiet_ms_max: 3_000,
            recover_seconds_max: 120,
            progress_blocks: 5,
            load_pause_ms: 100,
        }
    }
}

impl Manifest {
    pub fn from_toml(text: &str) -> Result<Manifest, Error> {
        let manifest: Manifest = toml::from_str(text).map_err(ctx("manifest"))?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=crate::local::NODES_MAX).contains(&self.nodes) {
            return Err(Error::failed(format!("manifest: nodes must be 1 to {}", crate::local::NODES_MAX)));
        }
        if self.nodes < 4 && self.perturbations > 0 {
            return Err(Error::failed("manifest: perturbing a node needs at least 4 nodes (one fault tolerated)"));
        }
        if self.kinds.is_empty() {
            return Err(Error::failed("manifest: kinds is empty"));
        }
        if self.perturbation_ms_min > self.perturbation_ms_max || self.quiet_ms_min > self.quiet_ms_max {
            return Err(Error::failed("manifest: a _min is above its _max"));
        }
        Ok(())
    }
}

/// One scheduled perturbation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perturbation {
    pub kind: Kind,
    pub node: usize,
    pub duration_ms: u64,
    pub quiet_ms: u64,
}

/// The seeded schedule: the same manifest and seed give the same sequence. The first
/// `kinds.len()` perturbations are each kind once, in a seeded order; then kinds are drawn
/// uniformly. One node at a time, never the same node twice in a row.
pub struct Schedule {
    rng: ChaCha8Rng,
    manifest: Manifest,
    opening: Vec<Kind>,
    last_node: Option<usize>,
}

impl Schedule {
    pub fn new(manifest: &Manifest) -> Schedule {
        let mut rng = ChaCha8Rng::seed_from_u64(manifest.seed);
        let mut opening = manifest.kinds.clone();
        opening.sort();
        opening.dedup();
        // Fisher–Yates, then reversed so `pop` takes them in the shuffled order.
        for i in (1..opening.len()).rev() {
            let j = rng.random_range(0..=i);
            opening.swap(i, j);
        }
        opening.reverse();
        Schedule { rng, manifest: manifest.clone(), opening, last_node: None }
    }
}

impl Iterator for Schedule {
    type Item = Perturbation;
    fn next(&mut self) -> Option<Perturbation> {
        let m = &self.manifest;
        let kind = match self.opening.pop() {
            Some(k) => k,
            None => m.kinds[self.rng.random_range(0..m.kinds.len())],
        };
        let mut node = self.rng.random_range(0..m.nodes);
        if m.nodes > 1 && Some(node) == self.last_node {
            node = (node + 1 + self.rng.random_range(0..m.nodes - 1)) % m.nodes;
        }
        self.last_node = Some(node);
        let duration_ms = self.rng.random_range(m.perturbation_ms_min..=m.perturbation_ms_max);
        let quiet_ms = self.rng.random_range(m.quiet_ms_min..=m.quiet_ms_max);
        Some(Perturbation { kind, node, duration_ms, quiet_ms })
    }
}

/// One perturbation as it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Survived {
    pub kind: Kind,
    pub node: usize,
    pub duration_ms: u64,
    /// From the heal (restart, unpause, reconnect) until the node was back at the height the
    /// others had then.
    pub recover_ms: u64,
    /// Blocks the other nodes finalized while it was perturbed.
    pub blocks_during: u64,
}

/// A run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DockerReport {
    pub nodes: usize,
    pub seed: u64,
    pub run_seconds: f64,
    pub perturbations: Vec<Survived>,
    pub perturbations_by_kind: BTreeMap<String, usize>,
    pub recover_ms_median: u64,
    pub recover_ms_max: u64,
    pub records_submitted: u64,
    pub records_acknowledged: u64,
    pub records_lost: u64,
    pub failed_requests: u64,
    pub height: u64,
    pub tip: String,
    pub blocks_after_perturbations: u64,
    pub statements: usize,
    pub verified_export_blocks: u64,
}

/// What to run.
pub struct DockerPlan {
    pub manifest: Manifest,
    /// The image holding `plaza` (`testnet/docker/build-image`).
    pub image: String,
    /// The host's `plaza` binary: makes the homes and verifies the export.
    pub binary: PathBuf,
    /// Host directory for keys, homes' originals, logs and the export.
    pub dir: PathBuf,
    /// The `plaza.run` label value (letters and digits); generated when absent.
    pub run_id: Option<String>,
}

/// Runs `docker` with `args`; its standard output, trimmed, or an error with its stderr.
fn docker(args: &[&str]) -> Result<String, Error> {
    let output = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(ctx("running docker (is it installed?)"))?;
    if !output.status.success() {
        return Err(Error::failed(format!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The containers, network and volumes of one run; all removed on drop.
struct Cluster {
    run: String,
    network: String,
    ips: Vec<Ipv4Addr>,
    image: String,
    logs: PathBuf,
    /// Whether node i's container currently exists.
    present: Vec<bool>,
    /// Node i's API token.
    tokens: Vec<String>,
}

impl Cluster {
    fn label(&self) -> String {
        format!("plaza.run={}", self.run)
    }
    fn name(&self, i: usize) -> String {
        format!("plaza-{}-node{i}", self.run)
    }
    fn volume(&self, i: usize) -> String {
        format!("plaza-{}-data{i}", self.run)
    }

    /// A private network of our own: `--internal` (no route out), a /24 not in use yet.
    fn create(run: &str, nodes: usize, image: &str, logs: &Path) -> Result<Cluster, Error> {
        let network = format!("plaza-{run}");
        let label = format!("plaza.run={run}");
        let first = (std::process::id() as usize + wall_ms() as usize) % 200;
        let mut last_error = None;
        for k in 0..200 {
            let octet = 20 + (first + k) % 200;
            let subnet = format!("10.213.{octet}.0/24");
            match docker(&["network", "create", "--internal", "--subnet", &subnet, "--label", &label, &network]) {
                Ok(_) => {
                    let ips = (0..nodes).map(|i| Ipv4Addr::new(10, 213, octet as u8, 10 + i as u8)).collect();
                    return Ok(Cluster { run: run.to_owned(), network, ips, image: image.to_owned(), logs: logs.to_owned(), present: vec![false; nodes], tokens: Vec::new() });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::failed("no free subnet for the testnet's network")))
    }

    /// A data volume holding node i's home, copied from the host.
    fn make_volume(&self, i: usize, home: &Path) -> Result<(), Error> {
        docker(&["volume", "create", "--label", &self.label(), &self.volume(i)])?;
        let loader = format!("plaza-{}-load{i}", self.run);
        let mount = format!("{}:{HOME_IN_CONTAINER}", self.volume(i));
        docker(&["create", "--name", &loader, "--label", &self.label(), "-v", &mount, &self.image, "version"])?;
        let source = format!("{}/.", home.display());
        let copied = docker(&["cp", &source, &format!("{loader}:{HOME_IN_CONTAINER}")]);
        docker(&["rm", "-f", &loader])?;
        copied.map(|_| ())
    }

    /// A new container for node i on its volume, at its address.
    fn run_node(&mut self, i: usize) -> Result<(), Error> {
        let mount = format!("{}:{HOME_IN_CONTAINER}", self.volume(i));
        let ip = self.ips[i].to_string();
        docker(&[
            "run", "-d", "--name", &self.name(i), "--label", &self.label(), "--network", &self.network, "--ip", &ip, "-v", &mount,
            &self.image, "start", "--home", HOME_IN_CONTAINER,
        ])?;
        self.present[i] = true;
        Ok(())
    }

    /// Appends the container's output (it logs to stderr) to `node<i>.log` on the host.
    fn save_logs(&self, i: usize) -> Result<(), Error> {
        let output = Command::new("docker").args(["logs", &self.name(i)]).stdin(Stdio::null()).output().map_err(ctx("docker logs"))?;
        use std::io::Write;
        let path = self.logs.join(format!("node{i}.log"));
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(ctx(format!("opening {}", path.display())))?;
        file.write_all(&output.stdout).and_then(|()| file.write_all(&output.stderr)).map_err(ctx(format!("writing {}", path.display())))
    }

    /// Saves the logs of node i's container and removes it (the volume stays).
    fn remove_node(&mut self, i: usize) -> Result<(), Error> {
        if self.present[i] {
            self.save_logs(i)?;
            docker(&["rm", "-f", &self.name(i)])?;
            self.present[i] = false;
        }
        Ok(())
    }

    fn client(&self, i: usize, timeout: Duration) -> Client {
        let mut c = Client::new(SocketAddr::from((self.ips[i], API_PORT)), self.tokens.get(i).cloned());
        c.timeout = timeout;
        c
    }

    /// Applies the perturbation's first half.
    fn perturb(&mut self, kind: Kind, i: usize) -> Result<(), Error> {
        let name = self.name(i);
        match kind {
            Kind::Kill => docker(&["kill", "-s", "KILL", &name]).map(|_| ()),
            Kind::Pause => docker(&["pause", &name]).map(|_| ()),
            Kind::Disconnect => docker(&["network", "disconnect", &self.network, &name]).map(|_| ()),
            Kind::Restart => {
                docker(&["stop", "-t", "20", &name])?;
                self.remove_node(i)
            }
        }
    }

    /// Heals it.
    fn heal(&mut self, kind: Kind, i: usize) -> Result<(), Error> {
        let name = self.name(i);
        match kind {
            Kind::Kill => docker(&["start", &name]).map(|_| ()),
            Kind::Pause => docker(&["unpause", &name]).map(|_| ()),
            Kind::Disconnect => docker(&["network", "connect", "--ip", &self.ips[i].to_string(), &self.network, &name]).map(|_| ()),
            Kind::Restart => self.run_node(i),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.present.len() {
            // Unpause first: a paused container cannot be stopped cleanly.
            let _ = docker(&["unpause", &self.name(i)]);
            let _ = self.remove_node(i);
        }
        // Anything else a run made (a loader left by an interrupted copy).
        if let Ok(ids) = docker(&["ps", "-aq", "--filter", &format!("label={}", self.label())]) {
            for id in ids.lines().filter(|l| !l.is_empty()) {
                let _ = docker(&["rm", "-f", id]);
            }
        }
        let _ = docker(&["network", "rm", &self.network]);
        for i in 0..self.present.len() {
            let _ = docker(&["volume", "rm", "-f", &self.volume(i)]);
        }
    }
}

fn heights(cluster: &Cluster, nodes: usize) -> Vec<Option<u64>> {
    (0..nodes).map(|i| api::status(&cluster.client(i, Duration::from_secs(2))).ok().map(|s| s.height)).collect()
}

fn max_other(heights: &[Option<u64>], except: usize) -> u64 {
    heights.iter().enumerate().filter(|(j, _)| *j != except).filter_map(|(_, h)| *h).max().unwrap_or(0)
}

/// Runs the plan; `progress` gets a line per phase and per perturbation.
pub fn run(plan: &DockerPlan, stop: &AtomicBool, progress: &mut dyn FnMut(&str)) -> Result<DockerReport, Error> {
    let m = &plan.manifest;
    m.validate()?;
    let started = Instant::now();
    let run = plan.run_id.clone().unwrap_or_else(|| format!("{:x}", (wall_ms() ^ (u64::from(std::process::id()) << 40)) & 0xff_ffff_ffff));
    let logs = plan.dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(ctx(format!("creating {}", logs.display())))?;
    docker(&["image", "inspect", "--format", "{{.Id}}", &plan.image]).map_err(|e| Error::failed(format!("the image {}: {e}", plan.image)))?;
    let mut cluster = Cluster::create(&run, m.nodes, &plan.image, &logs)?;
    progress(&format!("run {run}: {} nodes on {} ({}…), image {}, seed {}", m.nodes, cluster.network, cluster.ips[0], plan.image, m.seed));
    let layout = Layout::Fixed { ips: cluster.ips.clone(), p2p_port: P2P_PORT, api_port: API_PORT };
    let net = LocalTestnet::prepare(&plan.dir.join("alliance"), m.nodes, false, &plan.binary, layout)?;
    for (i, node) in net.nodes.iter().enumerate() {
        cluster.make_volume(i, &node.home)?;
    }
    cluster.tokens = net.nodes.iter().map(|n| n.token.clone()).collect();
    for i in 0..m.nodes {
        cluster.run_node(i)?;
    }
    let alliance = net.alliance;
    let wait_all = |cluster: &Cluster, height: u64, timeout: Duration| -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let hs = heights(cluster, m.nodes);
            if hs.iter().all(|h| h.is_some_and(|h| h >= height)) {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return Err(Error::failed("interrupted"));
            }
            if Instant::now() > deadline {
                return Err(Error::failed(format!("the nodes did not all reach height {height} within {}s: {hs:?}", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_all(&cluster, 1, Duration::from_secs(120))?;
    progress("every node finalized a block; starting the load");
    let signers: Vec<plaza_ledger::Keypair> = net.merchants.iter().map(|m| clone_key(&m.keypair)).collect::<Result<_, _>>()?;
    let (cards, setup) = load::card_setup(&signers, alliance, load::CARDS_PER_MERCHANT);
    load::submit_all_final(&cluster.client(0, Duration::from_secs(60)), &setup)?;
    let targets = (0..m.nodes).map(|i| cluster.client(i, Duration::from_secs(20))).collect();
    let generator = AcknowledgedLoad::start(targets, &signers, alliance, cards, Duration::from_millis(m.load_pause_ms))?;

    let mut survived = Vec::new();
    let mut schedule = Schedule::new(m);
    let outcome = (|| -> Result<(), Error> {
        while survived.len() < m.perturbations || started.elapsed() < Duration::from_secs(m.run_seconds_min) {
            if stop.load(Ordering::SeqCst) {
                return Err(Error::failed("interrupted"));
            }
            let Some(p) = schedule.next() else { break };
            let before = heights(&cluster, m.nodes);
            cluster.perturb(p.kind, p.node)?;
            std::thread::sleep(Duration::from_millis(p.duration_ms));
            let during = heights(&cluster, m.nodes);
            cluster.heal(p.kind, p.node)?;
            let healed = Instant::now();
            let target = max_other(&during, p.node);
            let deadline = healed + Duration::from_secs(m.recover_seconds_max);
            loop {
                let h = api::status(&cluster.client(p.node, Duration::from_secs(2))).ok().map(|s| s.height);
                if h.is_some_and(|h| h >= target) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error::failed(format!(
                        "node {} did not recover within {}s after {} (height {h:?}, the others at {target})",
                        p.node,
                        m.recover_seconds_max,
                        p.kind.name()
                    )));
                }
                if stop.load(Ordering::SeqCst) {
                    return Err(Error::failed("interrupted"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let s = Survived {
                kind: p.kind,
                node: p.node,
                duration_ms: p.duration_ms,
                recover_ms: healed.elapsed().as_millis() as u64,
                blocks_during: target.saturating_sub(max_other(&before, p.node)),
            };
            let acked = generator.snapshot().final_ids.len();
            progress(&format!(
                "  {:>3}. {:<10} node {} for {:.1}s: the others finalized {} blocks meanwhile; back in {:.2}s ({acked} records acknowledged so far)",
                survived.len() + 1,
                p.kind.name(),
                p.node,
                p.duration_ms as f64 / 1000.0,
                s.blocks_during,
                s.recover_ms as f64 / 1000.0
            ));
            survived.push(s);
            std::thread::sleep(Duration::from_millis(p.quiet_ms));
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        generator.finish();
        return Err(e);
    }

    // Progress once the perturbations stopped, under load.
    let after_start = heights(&cluster, m.nodes).into_iter().flatten().max().unwrap_or(0);
    wait_all(&cluster, after_start + m.progress_blocks, Duration::from_secs(120))?;
    let acknowledged = generator.finish();
    progress(&format!("perturbations over; every node finalized {} more blocks; checking", m.progress_blocks));

    // Same tip, chains, state roots and statements.
    let clients: Vec<Client> = (0..m.nodes).map(|i| cluster.client(i, Duration::from_secs(30))).collect();
    let (height, tip) = check_same_chain(&clients, Duration::from_secs(120))?;
    let statements: Vec<StatementList> = clients.iter().map(|c| api::get(c, "/v1/statements")).collect::<Result<_, _>>()?;
    for (i, s) in statements.iter().enumerate().skip(1) {
        let hashes = |l: &StatementList| l.statements.iter().map(|s| (s.period, s.hash.clone())).collect::<Vec<_>>();
        let (a, b) = (hashes(&statements[0]), hashes(s));
        let common = a.len().min(b.len());
        if a[..common] != b[..common] {
            return Err(Error::diverged(format!("node {i}'s statements differ from node 0's")));
        }
    }

    // Every acknowledged record in every node's chain, exactly once.
    let mut lost = 0u64;
    for (i, client) in clients.iter().enumerate() {
        let mut count: BTreeMap<Hash, u32> = BTreeMap::new();
        for h in 1..=height {
            let block: BlockWithRecords = api::get(client, &format!("/v1/blocks/{h}"))?;
            if block.height != h {
                return Err(Error::failed(format!("node {i} answered block {} for height {h}", block.height)));
            }
            for r in &block.record_list {
                let id = Hash::from_hex(&r.id).map_err(|e| Error::failed(format!("record id {}: {e}", r.id)))?;
                *count.entry(id).or_default() += 1;
            }
        }
        if let Some((id, n)) = count.iter().find(|(_, n)| **n > 1) {
            return Err(Error::diverged(format!("node {i} holds record {id} {n} times")));
        }
        let missing = acknowledged.final_ids.iter().filter(|id| !count.contains_key(id)).count() as u64;
        if missing > 0 {
            progress(&format!("node {i} lacks {missing} acknowledged records"));
        }
        lost = lost.max(missing);
    }

    // Stop every node cleanly; then no panic may be in any log.
    for i in 0..m.nodes {
        docker(&["stop", "-t", "20", &cluster.name(i)])?;
        cluster.save_logs(i)?;
    }
    for i in 0..m.nodes {
        let path = logs.join(format!("node{i}.log"));
        let text = std::fs::read_to_string(&path).map_err(ctx(format!("reading {}", path.display())))?;
        if let Some(line) = text.lines().find(|l| l.contains("panicked") || l.contains("internal error (a bug in plaza")) {
            return Err(Error::failed(format!("node {i}'s log holds a panic: {line}")));
        }
    }
    // Keep the saved logs from growing twice when the containers are removed at the end.
    for i in 0..m.nodes {
        docker(&["rm", "-f", &cluster.name(i)])?;
        cluster.present[i] = false;
    }

    // An export from node 0's volume, verified on the host.
    let export = export_node(&cluster, 0, &plan.dir)?;
    let verified = verify_export(&plan.binary, &export)?;
    if verified < height {
        return Err(Error::failed(format!("the export verified {verified} blocks, fewer than the {height} compared")));
    }
    let mut recover: Vec<u64> = survived.iter().map(|s| s.recover_ms).collect();
    recover.sort_unstable();
    let mut by_kind = BTreeMap::new();
    for s in &survived {
        *by_kind.entry(s.kind.name().to_owned()).or_insert(0) += 1;
    }
    let report = DockerReport {
        nodes: m.nodes,
        seed: m.seed,
        run_seconds: started.elapsed().as_secs_f64(),
        perturbations_by_kind: by_kind,
        recover_ms_median: recover.get(recover.len() / 2).copied().unwrap_or(0),
        recover_ms_max: recover.last().copied().unwrap_or(0),
        perturbations: survived,
        records_submitted: acknowledged.submitted,
        records_acknowledged: acknowledged.final_ids.len() as u64,
        records_lost: lost,
        failed_requests: acknowledged.failed_requests,
        height,
        tip: tip.to_hex(),
        blocks_after_perturbations: m.progress_blocks,
        statements: statements[0].statements.len(),
        verified_export_blocks: verified,
    };
    if lost > 0 {
        return Err(Error::failed(format!("{lost} records acknowledged as final are missing from a node's chain")));
    }
    Ok(report)
}

/// `plaza export` inside a container on node i's (stopped) volume; the file copied to `dir`.
fn export_node(cluster: &Cluster, i: usize, dir: &Path) -> Result<PathBuf, Error> {
    let mount = format!("{}:{HOME_IN_CONTAINER}", cluster.volume(i));
    let name = format!("plaza-{}-export", cluster.run);
    let file = format!("{HOME_IN_CONTAINER}/chain.export");
    docker(&["run", "--name", &name, "--label", &cluster.label(), "--network", "none", "-v", &mount, &cluster.image, "export", "--home", HOME_IN_CONTAINER, "-o", &file])?;
    let out = dir.join(format!("node{i}.export"));
    let copied = docker(&["cp", &format!("{name}:{file}"), &out.display().to_string()]);
    docker(&["rm", "-f", &name])?;
    copied?;
    Ok(out)
}

/// `plaza verify --export FILE --json` on the host; the number of blocks it verified.
fn verify_export(binary: &Path, export: &Path) -> Result<u64, Error> {
    let output = Command::new(binary).arg("verify").arg("--export").arg(export).arg("--json").stdin(Stdio::null()).output().map_err(ctx("running plaza verify"))?;
    if !output.status.success() {
        return Err(Error::diverged(format!("plaza verify failed on {}: {}", export.display(), String::from_utf8_lossy(&output.stderr).trim())));
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(ctx("plaza verify's JSON"))?;
    if value.get("ok") != Some(&serde_json::Value::Bool(true)) {
        return Err(Error::diverged(format!("plaza verify did not pass {}: {value}", export.display())));
    }
    value.get("tip_height").and_then(serde_json::Value::as_u64).ok_or_else(|| Error::failed(format!("plaza verify's answer has no tip height: {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_and_the_first_perturbations_cover_every_kind() {
        let manifest = Manifest { seed: 7, ..Manifest::default() };
        let a: Vec<Perturbation> = Schedule::new(&manifest).take(50).collect();
        let b: Vec<Perturbation> = Schedule::new(&manifest).take(50).collect();
        assert_eq!(a, b);
        let mut opening: Vec<Kind> = a[..4].iter().map(|p| p.kind).collect();
        opening.sort();
        assert_eq!(opening, Kind::ALL.to_vec());
        assert!(a.windows(2).all(|w| w[0].node != w[1].node), "never the same node twice in a row");
        assert!(a.iter().all(|p| p.node < 4 && (2_000..=6_000).contains(&p.duration_ms)));
        let other: Vec<Perturbation> = Schedule::new(&Manifest { seed: 8, ..Manifest::default() }).take(50).collect();
        assert_ne!(a, other, "another seed, another schedule");
    }

    #[test]
    fn manifests_are_checked() {
        assert!(Manifest::from_toml("nodes = 4\nperturbations = 3\nkinds = [\"kill\", \"pause\"]\n").is_ok());
        assert!(Manifest::from_toml("nodes = 3\n").is_err(), "too few nodes to perturb one");
        assert!(Manifest::from_toml("kinds = [\"explode\"]\n").is_err());
        assert!(Manifest::from_toml("nodez = 4\n").is_err(), "unknown keys are errors");
        assert!(Manifest::from_toml("quiet_ms_min = 5\nquiet_ms_max = 4\n").is_err());
    }
}
