//! Real `plaza` processes on loopback (issue 5, item 7): nodes finalize identical chains
//! under steady submission; a node started late syncs from genesis; a node killed with
//! SIGKILL restarts and catches up without losing anything; every record acknowledged as
//! final is afterwards on every node; a peer whose network key is not a member's is refused.
//!
//! Everything polls with deadlines; nothing sleeps to hide a race.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");

struct Node {
    home: PathBuf,
    client: Client,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.home.join("node.log")).expect("log file");
        let err = log.try_clone().expect("log file");
        let child = Command::new(PLAZA)
            .args(["start", "--home"])
            .arg(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("plaza start");
        self.child = Some(child);
    }
    /// SIGKILL: no chance to flush anything.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn status(&self) -> Option<Value> {
        self.client.get("/v1/status").ok()?.ok_json().ok()
    }
    fn height(&self) -> u64 {
        self.status().and_then(|s| s["height"].as_u64()).unwrap_or(0)
    }
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.home.join("node.log")).unwrap_or_default();
        text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Testnet {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    keys: Vec<Keypair>,
    alliance: Hash,
    genesis: PathBuf,
}

fn prepare(n: usize) -> Testnet {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(PLAZA)
        .args(["testnet", "--prepare-only", "--json", "--nodes", &n.to_string(), "--dir"])
        .arg(dir.path().join("net"))
        .output()
        .expect("plaza testnet --prepare-only");
    assert!(out.status.success(), "prepare failed: {}", String::from_utf8_lossy(&out.stderr));
    let desc: Value = serde_json::from_slice(&out.stdout).expect("testnet json");
    let nodes = desc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| Node {
            home: PathBuf::from(n["home"].as_str().expect("home")),
            client: Client::new(n["api"].as_str().expect("api").parse().expect("addr"), Some(n["token"].as_str().expect("token").to_owned())),
            child: None,
        })
        .collect();
    let keys = desc["merchants"]
        .as_array()
        .expect("merchants")
        .iter()
        .map(|m| Keypair::load(Path::new(m["key_file"].as_str().expect("key file"))).expect("key"))
        .collect();
    let alliance = Hash::from_hex(desc["alliance_id"].as_str().expect("alliance")).expect("hash");
    let genesis = PathBuf::from(desc["genesis"].as_str().expect("genesis"));
    Testnet { _dir: dir, nodes, keys, alliance, genesis }
}

impl Testnet {
    /// Submits `count` card issues signed by rotating merchants through rotating live nodes;
    /// returns the ids the node acknowledged as final.
    fn submit_batch(&self, tag: u8, count: usize, live: &[usize]) -> Vec<Hash> {
        let mut finals = Vec::new();
        for chunk in 0..count.div_ceil(10) {
            let node = &self.nodes[live[chunk % live.len()]];
            let now = node.status().and_then(|s| s["clock_ms"].as_u64()).expect("status");
            let records: Vec<Record> = (0..10)
                .map(|i| {
                    let k = &self.keys[(chunk + i) % self.keys.len()];
                    let mut card = [0u8; 16];
                    card[0] = tag;
                    card[1..9].copy_from_slice(&((chunk * 10 + i) as u64).to_be_bytes());
                    let body = RecordBody { alliance: self.alliance, signer: k.public(), created_at_ms: now, payload: Payload::IssueCard { card: CardId(card) } };
                    Record::sign(body, k)
                })
                .collect();
            let hexes: Vec<String> = records.iter().map(|r| hex::encode(r.to_bytes())).collect();
            let answer = node.client.post("/v1/records?wait=true", &json!({"records": hexes})).expect("submit").ok_json().expect("submit ok");
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
        let mut ids = Vec::new();
        let mut from = 1;
        while from <= height {
            let v = self.nodes[node].client.get(&format!("/v1/blocks?from={from}&limit=100")).expect("blocks").ok_json().expect("blocks ok");
            for b in v["blocks"].as_array().expect("blocks") {
                if b["height"].as_u64().expect("height") <= height {
                    ids.push(b["id"].as_str().expect("id").to_owned());
                }
            }
            from += 100;
        }
        ids
    }
}

#[test]
fn nodes_agree_late_and_killed_nodes_catch_up_and_nothing_final_is_lost() {
    let started = Instant::now();
    let mut net = prepare(4);
    // Three of four validators are a quorum; node 3 starts late.
    for i in 0..3 {
        net.nodes[i].start();
    }
    wait_until("three nodes finalize a block", Duration::from_secs(60), || (0..3).all(|i| net.nodes[i].height() >= 1));
    let mut finals = net.submit_batch(1, 60, &[0, 1, 2]);
    assert_eq!(finals.len(), 60, "every record of steady submission became final");

    // A late node syncs from genesis.
    net.nodes[3].start();
    let target = net.nodes[0].height();
    wait_until("the late node syncs to the tip", Duration::from_secs(90), || net.nodes[3].height() >= target);

    // SIGKILL one node under load; the others continue; it restarts and catches up.
    net.nodes[2].kill();
    finals.extend(net.submit_batch(2, 60, &[0, 1, 3]));
    net.nodes[2].start();
    finals.extend(net.submit_batch(3, 40, &[0, 1, 3]));
    let target = net.nodes[0].height();
    wait_until("the killed node catches up", Duration::from_secs(90), || net.nodes[2].height() >= target);
    wait_until("every node reaches the same height", Duration::from_secs(60), || (0..4).all(|i| net.nodes[i].height() >= target));

    // Identical chains.
    let reference = net.chain(0, target);
    assert_eq!(reference.len() as u64, target);
    for i in 1..4 {
        assert_eq!(net.chain(i, target), reference, "node {i}'s chain differs from node 0's\n{}", net.nodes[i].log_tail());
    }
    // Every record acknowledged as final is on every node.
    for id in &finals {
        for (i, node) in net.nodes.iter().enumerate() {
            let v = node.client.get(&format!("/v1/records/{id}")).expect("record").ok_json().unwrap_or(Value::Null);
            assert_eq!(v["status"], "final", "record {id} missing on node {i}");
        }
    }
    eprintln!("multi-process scenario took {:.1}s, {} records, height {target}", started.elapsed().as_secs_f64(), finals.len());
}

#[test]
fn a_peer_that_is_not_a_member_is_refused() {
    let mut net = prepare(1);
    net.nodes[0].start();
    wait_until("the single validator finalizes", Duration::from_secs(60), || net.nodes[0].height() >= 1);
    let status = net.nodes[0].status().expect("status");
    let peer_addr = format!("{}/p2p/{}", status["listen"][0].as_str().expect("listen"), status["peer_id"].as_str().expect("peer id"));
    // An intruder with a member's merchant key but its own (non-member) network key.
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("intruder");
    let key_file = dir.path().join("m.key");
    net.keys[0].save(&key_file).expect("save key");
    let port = |()| std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let out = Command::new(PLAZA)
        .args(["init", "--home"])
        .arg(&home)
        .arg("--genesis")
        .arg(&net.genesis)
        .arg("--key")
        .arg(&key_file)
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{}", port(())), "--api", &format!("127.0.0.1:{}", port(())), "--peer", &peer_addr])
        .output()
        .expect("plaza init");
    assert!(out.status.success(), "init: {}", String::from_utf8_lossy(&out.stderr));
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    let api = config.lines().find_map(|l| l.strip_prefix("api = ")).expect("api line").trim_matches('"').to_owned();
    let mut intruder = Node { home: home.clone(), client: Client::new(api.parse().expect("addr"), None), child: None };
    intruder.start();
    let refused = |n: &Node| {
        n.client
            .get("/metrics")
            .ok()
            .and_then(|r| r.body.lines().find(|l| l.starts_with("plaza_refused_peers_total")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    wait_until("the member node refuses the intruder", Duration::from_secs(60), || refused(&net.nodes[0]) >= 1.0);
    let before = net.nodes[0].height();
    wait_until("the member keeps finalizing", Duration::from_secs(30), || net.nodes[0].height() > before + 1);
    // The intruder signs with the validator's merchant key, so it finalizes a fork of its own;
    // what matters is that nothing crossed: no peer on either side and no synced block.
    let s = intruder.status().expect("intruder status");
    assert!(s["peers"].as_array().expect("peers").is_empty(), "the intruder has no peer");
    let synced = intruder.client.get("/metrics").expect("metrics").body;
    assert!(synced.lines().any(|l| l.starts_with("plaza_synced_blocks_total 0")), "the intruder synced nothing:\n{synced}");
    assert!(net.nodes[0].status().expect("status")["peers"].as_array().expect("peers").is_empty(), "no connection is kept");
    let log = std::fs::read_to_string(net.nodes[0].home.join("node.log")).unwrap_or_default();
    assert!(log.contains("refused a connection"), "the refusal is logged:\n{log}");
}
