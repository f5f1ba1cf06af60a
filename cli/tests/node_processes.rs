//! Real `plaza` processes on loopback (issue 5, item 7): nodes finalize identical chains
//! under steady submission; a node started late syncs from genesis; a node killed with
//! SIGKILL restarts and catches up without losing anything; every record acknowledged as
//! final is afterwards on every node; a peer whose network key is not a member's is refused.
//!
//! Everything polls with deadlines; nothing sleeps to hide a race.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::Hash;
use plaza_node::client::Client;
use plaza_testnet::local::{Layout, LocalTestnet};
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Testnet {
    _dir: tempfile::TempDir,
    net: LocalTestnet,
}

fn prepare(n: usize) -> Testnet {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = LocalTestnet::prepare(&dir.path().join("net"), n, false, Path::new(PLAZA), Layout::Loopback).expect("prepare a testnet");
    Testnet { _dir: dir, net }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

impl Testnet {
    fn height(&self, node: usize) -> u64 {
        self.net.nodes[node].height().unwrap_or(0)
    }
    fn client(&self, node: usize) -> Client {
        self.net.nodes[node].client().expect("a started node")
    }

    /// Submits `count` card issues signed by rotating merchants through rotating live nodes;
    /// returns the ids the node acknowledged as final.
    fn submit_batch(&self, tag: u8, count: usize, live: &[usize]) -> Vec<Hash> {
        let mut finals = Vec::new();
        for chunk in 0..count.div_ceil(10) {
            let client = self.client(live[chunk % live.len()]);
            let now = plaza_testnet::api::status(&client).expect("status").clock_ms;
            let records: Vec<Record> = (0..10)
                .map(|i| {
                    let k = &self.net.merchants[(chunk + i) % self.net.merchants.len()].keypair;
                    let mut card = [0u8; 16];
                    card[0] = tag;
                    card[1..9].copy_from_slice(&((chunk * 10 + i) as u64).to_be_bytes());
                    let body = RecordBody { alliance: self.net.alliance, signer: k.public(), created_at_ms: now, payload: Payload::IssueCard { card: CardId(card) } };
                    Record::sign(body, k)
                })
                .collect();
            let hexes: Vec<String> = records.iter().map(|r| hex::encode(r.to_bytes())).collect();
            let answer = client.post("/v1/records?wait=true", &json!({"records": hexes})).expect("submit").ok_json().expect("submit ok");
            for result in answer["results"].as_array().expect("results") {
                if result["status"] == "final" {
                    assert_eq!(result["receipt"]["name"], "accepted", "{result}");
                    finals.push(Hash::from_hex(result["id"].as_str().expect("id")).expect("id"));
                }
            }
        }
        finals
    }

    fn chain(&self, node: usize, height: u64) -> Vec<String> {
        plaza_testnet::local::chain_of(&self.client(node), height).expect("blocks").into_iter().map(|b| b.id).collect()
    }
}

#[test]
fn nodes_agree_late_and_killed_nodes_catch_up_and_nothing_final_is_lost() {
    let started = Instant::now();
    let mut net = prepare(4);
    // Three of four validators are a quorum; node 3 starts late.
    for i in 0..3 {
        net.net.start(i).expect("start a node");
    }
    wait_until("three nodes finalize a block", Duration::from_secs(60), || (0..3).all(|i| net.height(i) >= 1));
    let mut finals = net.submit_batch(1, 60, &[0, 1, 2]);
    assert_eq!(finals.len(), 60, "every record of steady submission became final");

    // A late node syncs from genesis.
    net.net.start(3).expect("start the late node");
    let target = net.height(0);
    wait_until("the late node syncs to the tip", Duration::from_secs(90), || net.height(3) >= target);

    // SIGKILL one node under load; the others continue; it restarts and catches up.
    net.net.kill(2);
    finals.extend(net.submit_batch(2, 60, &[0, 1, 3]));
    net.net.start(2).expect("restart the killed node");
    finals.extend(net.submit_batch(3, 40, &[0, 1, 3]));
    let target = net.height(0);
    wait_until("the killed node catches up", Duration::from_secs(90), || net.height(2) >= target);
    wait_until("every node reaches the same height", Duration::from_secs(60), || (0..4).all(|i| net.height(i) >= target));

    // Identical chains.
    let reference = net.chain(0, target);
    assert_eq!(reference.len() as u64, target);
    for i in 1..4 {
        assert_eq!(net.chain(i, target), reference, "node {i}'s chain differs from node 0's\n{}", log_tail(&net.net.nodes[i].log_path()));
    }
    // Every record acknowledged as final is on every node.
    for id in &finals {
        for i in 0..net.net.nodes.len() {
            let v = net.client(i).get(&format!("/v1/records/{id}")).expect("record").ok_json().unwrap_or(Value::Null);
            assert_eq!(v["status"], "final", "record {id} missing on node {i}");
        }
    }
    eprintln!("multi-process scenario took {:.1}s, {} records, height {target}", started.elapsed().as_secs_f64(), finals.len());
}

/// A process outside the testnet (the intruder below), with its log in its home.
struct Outsider {
    home: PathBuf,
    child: Child,
}

impl Outsider {
    fn start(home: &Path) -> Outsider {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log")).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(PLAZA)
            .args(["start", "--home"])
            .arg(home)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("plaza start");
        Outsider { home: home.to_owned(), child }
    }
    /// The API address the node reports once bound (its config asks for port 0).
    fn client(&self) -> Client {
        let file = self.home.join("api.addr");
        wait_until("the outsider reports its API address", Duration::from_secs(30), || file.exists());
        let addr = std::fs::read_to_string(&file).expect("api.addr").trim().parse().expect("an address");
        Client::new(addr, None)
    }
}

impl Drop for Outsider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_peer_that_is_not_a_member_is_refused() {
    let mut t = prepare(1);
    t.net.start(0).expect("start the validator");
    wait_until("the single validator finalizes", Duration::from_secs(60), || t.height(0) >= 1);
    let peer_addr = t.net.nodes[0].p2p.clone().expect("the validator's bound address");
    // An intruder with a member's merchant key but its own (non-member) network key.
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("intruder");
    let key_file = dir.path().join("m.key");
    t.net.merchants[0].keypair.save(&key_file).expect("save key");
    let genesis = t.net.dir.join("genesis.bin");
    let out = Command::new(PLAZA)
        .args(["init", "--home"])
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis)
        .arg("--key")
        .arg(&key_file)
        // The genesis lists the member's node key; this node makes its own on purpose.
        .arg("--unlisted-network-key")
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--peer", &peer_addr])
        .output()
        .expect("plaza init");
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    let intruder = Outsider::start(&home);
    let intruder_client = intruder.client();
    let validator = t.client(0);
    let refused = |c: &Client| {
        c.get("/metrics")
            .ok()
            .and_then(|r| r.body.lines().find(|l| l.starts_with("plaza_refused_peers_total")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    wait_until("the member node refuses the intruder", Duration::from_secs(60), || refused(&validator) >= 1.0);
    let before = t.height(0);
    wait_until("the member keeps finalizing", Duration::from_secs(30), || t.height(0) > before + 1);
    // The intruder signs with the validator's merchant key, so it finalizes a fork of its own;
    // what matters is that nothing crossed: no peer on either side and no synced block.
    let s = plaza_testnet::api::status(&intruder_client).expect("intruder status");
    assert!(s.peers.is_empty(), "the intruder has no peer");
    let synced = intruder_client.get("/metrics").expect("metrics").body;
    assert!(synced.lines().any(|l| l.starts_with("plaza_synced_blocks_total 0")), "the intruder synced nothing:\n{synced}");
    assert!(plaza_testnet::api::status(&validator).expect("status").peers.is_empty(), "no connection is kept");
    let log = std::fs::read_to_string(t.net.nodes[0].log_path()).unwrap_or_default();
    assert!(log.contains("refused a connection"), "the refusal is logged:\n{log}");
}

/// Ports are bound by the nodes themselves (port 0) and reported, so two testnets started at
/// the same moment never collide (they used to: ports were probed, released, then bound).
#[test]
fn two_testnets_started_at_once_both_run() {
    let nets: Vec<std::thread::JoinHandle<(Testnet, u64)>> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let mut t = prepare(4);
                t.net.start_all().expect("every node binds its own ports");
                let stop = AtomicBool::new(false);
                t.net.wait_height(2, Duration::from_secs(90), &stop).expect("the testnet finalizes");
                let height = t.net.check_same_chain(Duration::from_secs(60)).expect("one chain").0;
                (t, height)
            })
        })
        .collect();
    let nets: Vec<(Testnet, u64)> = nets.into_iter().map(|h| h.join().expect("a testnet thread")).collect();
    let mut seen = std::collections::BTreeSet::new();
    for (t, height) in &nets {
        assert!(*height >= 2);
        for n in &t.net.nodes {
            let api = n.api.expect("bound API");
            assert!(seen.insert(api.port()), "API port {} used twice", api.port());
            // Each testnet is its own alliance: its nodes never joined the other's.
            let status = plaza_testnet::api::status(&n.client().expect("client")).expect("status");
            assert_eq!(status.alliance().expect("alliance"), t.net.alliance);
        }
    }
    assert_ne!(nets[0].0.net.alliance, nets[1].0.net.alliance);
}

/// `plaza bench --catch-up` and `--restart` (issue 17) run end to end and report a node that
/// came back holding the whole chain: the figures are consistent with each other (no timing
/// is asserted: that is the benchmark's job).
#[test]
fn bench_times_a_catch_up_and_a_restart() {
    for (mode, nodes) in [("--catch-up", "4"), ("--restart", "1")] {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(PLAZA)
            .args(["bench", mode, "--nodes", nodes, "--records", "3000", "--load-rate", "1500", "--json", "--dir"])
            .arg(dir.path().join("bench"))
            .stderr(Stdio::null())
            .output()
            .expect("run plaza bench");
        assert!(out.status.success(), "plaza bench {mode} failed: {}", String::from_utf8_lossy(&out.stdout));
        let r: Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
        let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{mode}: no {k} in {r}"));
        assert_eq!(r["kind"], mode.trim_start_matches("--"));
        assert!(f("chain_records") >= 3000.0 && f("chain_height") >= 1.0, "{r}");
        assert!(f("serving_s") > 0.0 && f("serving_s") <= f("caught_up_s") && f("caught_up_s") <= f("resumed_s"), "{r}");
        assert!(f("cpu_s") > 0.0, "{r}");
        assert_eq!(f("store_bytes") > 0.0, mode == "--restart", "{r}");
        if mode == "--restart" {
            // Stopped with SIGTERM, it snapshotted its state at the tip: nothing to re-execute.
            assert_eq!(r["reexecuted_blocks"], 0, "{r}");
        }
    }
}
