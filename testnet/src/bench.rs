//! `plaza bench`: the local testnet under rising offered load, reporting committed records/s,
//! submit-to-final latency percentiles, CPU and bytes on disk per record, beside the ed25519
//! batch-verification ceiling measured in the same run (DESIGN §10).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plaza_ledger::keys::{domain, verify_batch, BatchItem};
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use serde::Serialize;

use crate::api;
use crate::load::{self, Probes};
use crate::local::{clone_key, interrupt_flag, wall_ms, Layout, LocalNode, LocalTestnet};
use crate::Error;

/// What to measure.
pub struct BenchPlan {
    pub nodes: usize,
    /// Offered loads, records per second, in order.
    pub rates: Vec<u64>,
    pub step_seconds: u64,
    pub dir: PathBuf,
    /// The `plaza` binary the nodes run.
    pub binary: PathBuf,
    /// Sample node 0 with `perf` during the last step and break its CPU down by stage.
    pub profile: bool,
    /// Member cards each merchant issues before the load; every second sale goes to one.
    pub cards_per_merchant: u16,
}

/// One rate step's figures.
#[derive(Clone, Debug, Serialize)]
pub struct BenchStep {
    pub offered_per_s: u64,
    pub committed_records: u64,
    pub committed_per_s: f64,
    pub offered_seconds: f64,
    pub latency_p50_s: f64,
    pub latency_p95_s: f64,
    pub latency_p99_s: f64,
    pub probes: usize,
    pub cpu_cores_busy: f64,
    pub efficiency_ratio: f64,
}

/// The whole run's figures (printed as JSON by `plaza bench --json`).
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub nodes: usize,
    /// Member cards each merchant issued before the load (every second sale went to one).
    pub cards_per_merchant: u16,
    pub cores: usize,
    /// The ed25519 batch-verification ceiling on one core: the mean of a measurement before
    /// the load and one after it.
    pub ed25519_batch_verifications_per_s: f64,
    pub steps: Vec<BenchStep>,
    pub peak_committed_per_s: f64,
    pub efficiency_ratio_at_peak: f64,
    pub bytes_on_disk_per_record_per_node: u64,
    /// Node 0's store after a full compaction, against the canonical encodings of the
    /// finalized blocks it holds (records, headers, certificates).
    pub store: StoreBytes,
    /// Node 0's CPU in the last step by stage, with `--profile`.
    pub profile: Option<Profile>,
    pub dir: String,
}

/// Where node 0's CPU went during one step: `perf` samples, each counted for the crate of
/// the function it landed in (its leaf frame), scaled to microseconds per committed record.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    pub offered_per_s: u64,
    pub samples: u64,
    /// Node 0's CPU per committed record, microseconds.
    pub cpu_us_per_record: f64,
    /// One batched signature verification, microseconds (the ceiling measured in this run).
    pub verification_us: f64,
    /// (stage, share of the samples, microseconds per record), largest first.
    pub stages: Vec<(String, f64, f64)>,
    /// The hottest functions: (share, function).
    pub top: Vec<(f64, String)>,
}

/// The stage a sampled function belongs to, by its crate or library.
fn stage_of(dso: &str, symbol: &str) -> &'static str {
    let has = |needles: &[&str]| needles.iter().any(|n| symbol.contains(n));
    if symbol.starts_with("[k]") {
        "kernel (syscalls, fsync, sockets)"
    } else if has(&["curve25519", "ed25519", "sha2::", "sha512"]) {
        "signature verification"
    } else if has(&["blake3"]) {
        "hashing (ids, roots)"
    } else if has(&["plaza_ledger::contract", "plaza_ledger::execute"]) {
        "execution (settlement contract)"
    } else if has(&["rocksdb", "LZ4", "crc32c", "Rocks", "leveldb"]) || dso.contains("rocksdb") {
        "storage (RocksDB)"
    } else if has(&["libp2p", "yamux", "snow::", "chacha", "poly1305", "gossipsub", "quick_protobuf", "multistream", "noise"]) {
        "network (libp2p, noise, gossip)"
    } else if has(&["serde_json", "hyper", "axum", "httparse", "plaza_node::api", "plaza_node::json", "hex::"]) {
        "API admission (HTTP, JSON)"
    } else if has(&["plaza_consensus"]) {
        "consensus"
    } else if has(&["plaza_ledger::codec", "plaza_ledger::record", "plaza_ledger::block", "plaza_node::wire"]) {
        "encoding and decoding"
    } else if has(&["tokio", "mio::", "futures"]) {
        "async runtime"
    } else if has(&["malloc", "free", "memcpy", "memmove", "memset", "alloc::", "realloc", "_int_"]) {
        "memory (allocator, copies)"
    } else {
        "other"
    }
}

fn perf_report(data: &Path) -> Result<Vec<(f64, String, String)>, Error> {
    let out = std::process::Command::new("perf")
        .args(["report", "--stdio", "--no-children", "--sort", "dso,sym", "-i"])
        .arg(data)
        .output()
        .map_err(|e| Error::failed(format!("perf report: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some((pct, rest)) = line.split_once('%') else { continue };
        let Ok(pct) = pct.trim().parse::<f64>() else { continue };
        let rest = rest.trim();
        let (dso, sym) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        rows.push((pct, dso.to_owned(), sym.trim().to_owned()));
    }
    Ok(rows)
}

fn perf_samples(data: &Path) -> u64 {
    let Ok(out) = std::process::Command::new("perf").args(["script", "-F", "ip", "-i"]).arg(data).output() else { return 0 };
    out.stdout.iter().filter(|b| **b == b'\n').count() as u64
}

/// A stopped node's store: bytes on disk after compaction against canonical bytes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StoreBytes {
    pub records: u64,
    pub blocks: u64,
    /// The finalized blocks' canonical encodings (`FinalizedBlock`), summed.
    pub canonical_bytes: u64,
    pub disk_bytes_before_compaction: u64,
    pub disk_bytes: u64,
    /// `disk_bytes / canonical_bytes`.
    pub ratio: f64,
    /// After compaction, per column family (`blocks`, `records`, `state`, …).
    pub families: Vec<(String, u64)>,
    /// The state snapshot's height, and the store without it against the canonical blocks:
    /// the chain's own overhead (the snapshot is the state, which grows with what is open).
    pub snapshot_height: u64,
    pub ratio_without_snapshot: f64,
}

/// Measures a stopped node's store (its data directory).
pub fn store_bytes(data: &Path) -> Result<StoreBytes, Error> {
    use plaza_ledger::codec::Encode;
    let store = plaza_ledger::store::Store::open(data).map_err(|e| Error::failed(format!("opening {}: {e}", data.display())))?;
    let tip = store.tip_height().map_err(|e| Error::failed(e.to_string()))?;
    let mut out = StoreBytes { blocks: tip, ..StoreBytes::default() };
    for h in 1..=tip {
        let block = store.block(h).map_err(|e| Error::failed(e.to_string()))?.ok_or_else(|| Error::failed(format!("block {h} missing")))?;
        out.records += block.block.records.len() as u64;
        out.canonical_bytes += block.to_bytes().len() as u64;
    }
    out.disk_bytes_before_compaction = store.disk_bytes();
    store.compact();
    out.disk_bytes = store.disk_bytes();
    out.ratio = out.disk_bytes as f64 / out.canonical_bytes.max(1) as f64;
    out.families = store.family_bytes().into_iter().map(|(name, bytes)| (name.to_owned(), bytes)).collect();
    let state: u64 = out.families.iter().filter(|(name, _)| name == "state").map(|(_, b)| b).sum();
    store.read_state_snapshot(&mut |h, _| out.snapshot_height = h).map_err(|e| Error::failed(e.to_string()))?;
    out.ratio_without_snapshot = out.disk_bytes.saturating_sub(state) as f64 / out.canonical_bytes.max(1) as f64;
    Ok(out)
}

/// Verifications per second of `verify_batch` on one core (batches of 64 record signatures).
pub fn batch_verification_rate(duration: Duration) -> f64 {
    let alliance = Hash::digest(b"bench");
    let keys: Vec<Keypair> = (0..16).map(|i| Keypair::from_seed(format!("bench-{i}").as_bytes())).collect();
    let records: Vec<Record> = (0..64)
        .map(|i| {
            let k = &keys[i % keys.len()];
            let body = RecordBody { alliance, signer: k.public(), created_at_ms: 1, payload: Payload::IssueCard { card: CardId([i as u8; 16]) } };
            Record::sign(body, k)
        })
        .collect();
    let messages: Vec<Vec<u8>> = records.iter().map(Record::signing_bytes).collect();
    let items: Vec<BatchItem<'_>> = records
        .iter()
        .zip(&messages)
        .map(|(r, m)| BatchItem { key: r.signer(), domain: domain::RECORD, message: m, signature: r.signature() })
        .collect();
    let started = Instant::now();
    let mut verified = 0u64;
    while started.elapsed() < duration {
        let ok = verify_batch(&items);
        verified += ok.iter().filter(|b| **b).count() as u64;
    }
    verified as f64 / started.elapsed().as_secs_f64()
}

fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0) + fields.get(12).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn dir_bytes(p: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(p) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn nodes_cpu(net: &LocalTestnet) -> f64 {
    net.nodes.iter().filter_map(|n| n.child.as_ref()).map(|c| cpu_seconds(c.id())).sum()
}

/// Runs the benchmark; `progress` gets one line per phase.
pub fn bench(plan: &BenchPlan, progress: &mut dyn FnMut(&str)) -> Result<BenchReport, Error> {
    let stop = interrupt_flag();
    // First, so a --dir in use is refused before the 3 s measurement.
    let mut net = LocalTestnet::prepare(&plan.dir, plan.nodes, false, &plan.binary, Layout::Loopback)?;
    progress("measuring the ed25519 batch-verification ceiling (one core, 3 s)…");
    let verify_before = batch_verification_rate(Duration::from_secs(3));
    progress(&format!("  {verify_before:.0} verifications/s"));
    net.start_all()?;
    net.wait_height(1, Duration::from_secs(60), &stop)?;
    let clients: Vec<Client> = net.nodes.iter().map(LocalNode::client).collect::<Result<_, _>>()?;
    let alliance = api::status(&clients[0])?.alliance()?;
    let signers: Vec<Keypair> = net.merchants.iter().map(|m| clone_key(&m.keypair)).collect::<Result<_, _>>()?;
    // Cards for a realistic mix: half the sales are to a member card of another merchant.
    let (cards, setup) = load::card_setup(&signers, alliance, plan.cards_per_merchant);
    load::submit_all_final(&clients[0], &setup)?;
    let mut order = 0u64;
    let mut rows = Vec::new();
    let mut profile = None;
    let last_rate = plan.rates.last().copied();
    for &rate in &plan.rates {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let total = (rate * plan.step_seconds) as usize;
        progress(&format!("rate {rate} records/s: signing {total} sales…"));
        let records = load::to_hex(&load::sales(&signers, &cards, alliance, "B", &mut order, total, wall_ms()));
        let cpu_before = nodes_cpu(&net);
        let final_before = load::finalized_records(&clients[0]);
        let node0 = net.nodes[0].child.as_ref().map(std::process::Child::id);
        let node0_cpu_before = node0.map_or(0.0, cpu_seconds);
        let perf_data = plan.dir.join("perf.data");
        let mut perf = match (plan.profile && Some(rate) == last_rate, node0) {
            (true, Some(pid)) => Some(
                std::process::Command::new("perf")
                    .args(["record", "-q", "-F", "499", "-p", &pid.to_string(), "-o"])
                    .arg(&perf_data)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .map_err(|e| Error::failed(format!("--profile needs perf (Debian's linux-perf): {e}")))?,
            ),
            _ => None,
        };
        let started = Instant::now();
        let probes = Probes::start(clients[1 % clients.len()].clone(), &signers[0], alliance, order + 10_000_000)?;
        let offered = load::offer_open_loop(&clients, &records, rate);
        // Drain: wait until everything offered is final (or 30 s).
        let deadline = Instant::now() + Duration::from_secs(30);
        while load::finalized_records(&clients[0]) < final_before + total as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let elapsed = started.elapsed().as_secs_f64();
        let latencies = probes.finish();
        let committed = load::finalized_records(&clients[0]).saturating_sub(final_before);
        if let Some(mut p) = perf.take() {
            let node0_cpu = node0.map_or(0.0, cpu_seconds) - node0_cpu_before;
            let _ = std::process::Command::new("kill").arg("-INT").arg(p.id().to_string()).status();
            let _ = p.wait();
            progress("  reading the profile…");
            let rows = perf_report(&perf_data)?;
            let per_record = node0_cpu * 1e6 / committed.max(1) as f64;
            let mut stages: std::collections::BTreeMap<&'static str, f64> = std::collections::BTreeMap::new();
            for (pct, dso, sym) in &rows {
                *stages.entry(stage_of(dso, sym)).or_default() += pct;
            }
            let total: f64 = stages.values().sum::<f64>().max(f64::MIN_POSITIVE);
            let mut stages: Vec<(String, f64, f64)> =
                stages.into_iter().map(|(k, v)| (k.to_owned(), v / total, per_record * v / total)).collect();
            stages.sort_by(|a, b| b.1.total_cmp(&a.1));
            let top = rows.iter().take(12).map(|(pct, _, sym)| (pct / 100.0, sym.clone())).collect();
            profile = Some(Profile {
                offered_per_s: rate,
                samples: perf_samples(&perf_data),
                cpu_us_per_record: per_record,
                // Set below, from the ceiling's mean.
                verification_us: f64::NAN,
                stages,
                top,
            });
        }
        let throughput = committed as f64 / elapsed;
        let step = BenchStep {
            offered_per_s: rate,
            committed_records: committed,
            committed_per_s: (throughput * 10.0).round() / 10.0,
            offered_seconds: offered.as_secs_f64(),
            latency_p50_s: percentile(&latencies, 0.50),
            latency_p95_s: percentile(&latencies, 0.95),
            latency_p99_s: percentile(&latencies, 0.99),
            probes: latencies.len(),
            cpu_cores_busy: (nodes_cpu(&net) - cpu_before) / elapsed,
            // Set below, from the ceiling's mean.
            efficiency_ratio: f64::NAN,
        };
        progress(&format!("  committed {throughput:.0}/s, p50 {:.3}s p99 {:.3}s", step.latency_p50_s, step.latency_p99_s));
        rows.push(step);
    }
    let total_records = load::finalized_records(&clients[0]);
    let disk: u64 = net.nodes.iter().map(|n| dir_bytes(&n.home.join("data"))).sum();
    net.stop_all();
    // The ceiling again, now that the nodes are stopped: the machine's speed drifts by several
    // per cent within minutes, so the ratios are taken to the mean of the two measurements.
    progress("measuring the ed25519 batch-verification ceiling again…");
    let verify_after = batch_verification_rate(Duration::from_secs(3));
    let verify_rate = (verify_before + verify_after) / 2.0;
    progress(&format!("  {verify_after:.0} verifications/s (before the load {verify_before:.0}/s)"));
    for step in &mut rows {
        step.efficiency_ratio = step.committed_per_s * plan.nodes as f64 / verify_rate;
    }
    if let Some(p) = profile.as_mut() {
        p.verification_us = 1e6 / verify_rate;
    }
    progress("compacting node 0's store…");
    let store = store_bytes(&net.nodes[0].home.join("data"))?;
    let peak = rows.iter().map(|r| r.committed_per_s).fold(0.0, f64::max);
    Ok(BenchReport {
        nodes: plan.nodes,
        cards_per_merchant: plan.cards_per_merchant,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ed25519_batch_verifications_per_s: verify_rate.round(),
        steps: rows,
        peak_committed_per_s: peak,
        efficiency_ratio_at_peak: peak * plan.nodes as f64 / verify_rate,
        bytes_on_disk_per_record_per_node: if total_records > 0 { disk / total_records / plan.nodes as u64 } else { 0 },
        store,
        profile,
        dir: plan.dir.display().to_string(),
    })
}

/// What `plaza bench --catch-up` or `--restart` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recovery {
    /// The last node is killed before the load and started after it: block sync of the whole
    /// chain it missed.
    CatchUp,
    /// The last node takes the load with the others, is stopped (SIGTERM) and started again:
    /// opening the store, the snapshot and the blocks after it, then serving.
    Restart,
}

/// A recovery measurement's plan.
pub struct RecoveryPlan {
    pub kind: Recovery,
    pub nodes: usize,
    /// Sales committed before the node comes back.
    pub records: u64,
    /// The rate they are offered at, records per second.
    pub rate: u64,
    pub dir: PathBuf,
    pub binary: PathBuf,
    /// As in [`BenchPlan`].
    pub cards_per_merchant: u16,
}

/// A recovery measurement's figures (printed as JSON by `plaza bench --json`).
#[derive(Clone, Debug, Serialize)]
pub struct RecoveryReport {
    pub kind: Recovery,
    pub nodes: usize,
    /// As in [`BenchReport`].
    pub cards_per_merchant: u16,
    /// Records in the chain (card issues and sales) when the node comes back.
    pub chain_records: u64,
    /// The chain's height the node must reach.
    pub chain_height: u64,
    /// Its store's size on disk when it comes back (for a restart; 0 for a catch-up).
    pub store_bytes: u64,
    /// Seconds from starting the process to its API answering with its p2p address bound.
    pub serving_s: f64,
    /// Seconds from starting the process to holding `chain_height`.
    pub caught_up_s: f64,
    /// Seconds from starting the process to a block above `chain_height` (consensus resumed).
    pub resumed_s: f64,
    /// Blocks and records per second of `caught_up_s`.
    pub blocks_per_s: f64,
    pub records_per_s: f64,
    /// CPU seconds the returning node spent until it held `chain_height`.
    pub cpu_s: f64,
    /// Blocks the returning node re-executed on opening its chain (those above its state
    /// snapshot; none after a clean stop), from its log.
    pub reexecuted_blocks: Option<u64>,
    pub dir: String,
}

fn height_of(node: &LocalNode) -> u64 {
    node.height().unwrap_or(0)
}

/// Builds a chain of `plan.records` sales with the last node away (catch-up) or taking part
/// (restart), brings the last node back and times it.
pub fn recovery(plan: &RecoveryPlan, progress: &mut dyn FnMut(&str)) -> Result<RecoveryReport, Error> {
    if plan.kind == Recovery::CatchUp && plan.nodes < 4 {
        return Err(Error::failed("--catch-up needs at least 4 nodes: the others must finalize without the one that is away"));
    }
    let stop = interrupt_flag();
    let mut net = LocalTestnet::prepare(&plan.dir, plan.nodes, false, &plan.binary, Layout::Loopback)?;
    net.start_all()?;
    net.wait_height(1, Duration::from_secs(60), &stop)?;
    let last = plan.nodes - 1;
    let clients: Vec<Client> = net.nodes.iter().map(LocalNode::client).collect::<Result<_, _>>()?;
    let live: Vec<Client> = if plan.kind == Recovery::CatchUp { clients[..last].to_vec() } else { clients.clone() };
    let alliance = api::status(&clients[0])?.alliance()?;
    let signers: Vec<Keypair> = net.merchants.iter().map(|m| clone_key(&m.keypair)).collect::<Result<_, _>>()?;
    let (cards, setup) = load::card_setup(&signers, alliance, plan.cards_per_merchant);
    load::submit_all_final(&clients[0], &setup)?;
    if plan.kind == Recovery::CatchUp {
        net.kill(last);
    }
    // Signed in chunks just before they are offered, so no record is older than its window.
    let chunk = (plan.rate * 10).max(1);
    let mut order = 0u64;
    let mut offered = 0u64;
    let final_before = load::finalized_records(&clients[0]);
    let started = Instant::now();
    while offered < plan.records {
        if stop.load(Ordering::SeqCst) {
            return Err(Error::failed("interrupted"));
        }
        let n = chunk.min(plan.records - offered);
        let records = load::to_hex(&load::sales(&signers, &cards, alliance, "R", &mut order, n as usize, wall_ms()));
        load::offer_open_loop(&live, &records, plan.rate);
        offered += n;
        let done = load::finalized_records(&clients[0]).saturating_sub(final_before);
        progress(&format!("  {offered} offered, {done} final ({:.0} s)", started.elapsed().as_secs_f64()));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while load::finalized_records(&clients[0]) < final_before + plan.records && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let chain_records = load::finalized_records(&clients[0]);
    if chain_records < final_before + plan.records {
        return Err(Error::failed(format!("only {} of {} records became final", chain_records - final_before, plan.records)));
    }
    let chain_height = height_of(&net.nodes[0]);
    let mut store_bytes = 0;
    if plan.kind == Recovery::Restart {
        // The returning node holds the whole chain before it stops.
        let deadline = Instant::now() + Duration::from_secs(60);
        while height_of(&net.nodes[last]) < chain_height && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        net.stop(last);
        store_bytes = dir_bytes(&net.nodes[last].home.join("data"));
    }
    progress(&format!("{} records final at height {chain_height}; starting node {last}…", chain_records));
    let spawned = Instant::now();
    net.start(last)?;
    let serving_s = spawned.elapsed().as_secs_f64();
    let pid = net.nodes[last].child.as_ref().map(std::process::Child::id);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut caught_up_s = f64::NAN;
    let mut cpu_s = f64::NAN;
    loop {
        net.check_alive(last)?;
        let h = height_of(&net.nodes[last]);
        if caught_up_s.is_nan() && h >= chain_height {
            caught_up_s = spawned.elapsed().as_secs_f64();
            cpu_s = pid.map_or(0.0, cpu_seconds);
        }
        if h > chain_height {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::failed(format!("node {last} reached height {h} of {chain_height} within 600 s")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let resumed_s = spawned.elapsed().as_secs_f64();
    let reexecuted_blocks = reexecuted_on_open(&net.nodes[last].log_path());
    net.stop_all();
    Ok(RecoveryReport {
        kind: plan.kind,
        nodes: plan.nodes,
        cards_per_merchant: plan.cards_per_merchant,
        chain_records,
        chain_height,
        store_bytes,
        serving_s,
        caught_up_s,
        resumed_s,
        blocks_per_s: chain_height as f64 / caught_up_s,
        records_per_s: chain_records as f64 / caught_up_s,
        cpu_s,
        reexecuted_blocks,
        dir: plan.dir.display().to_string(),
    })
}

/// The `reexecuted=` field of the last "chain opened" line in a node's log.
fn reexecuted_on_open(log: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| l.contains("chain opened"))?;
    let field = line.split_whitespace().find_map(|w| w.strip_prefix("reexecuted="))?;
    field.parse().ok()
}
