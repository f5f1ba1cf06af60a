//! Validator changes by member vote on real `plaza` processes (issue 11): a 4-validator demo
//! alliance votes in a fifth validator (a member whose node joins), later removes one of the
//! original four. The chain keeps finalizing through both epoch changes, the new validator's
//! votes appear in certificates and the removed one's stop, and `plaza verify` passes on an
//! export of the whole chain, following the set from genesis alone.
//!
//! Every wait polls with a deadline; nothing sleeps to hide a race.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::{Record, RecordBody};
use plaza_ledger::Keypair;
use plaza_node::client::Client;
use plaza_node::json::PayloadJson;
use plaza_node::Home;
use plaza_testnet::local::{Layout, LocalTestnet};
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");
const DAY_MS: u64 = 86_400_000;
/// The demo's merchants: nodes 0–3 validate at genesis; merchant 4 (Noodle House) gets a node
/// and is voted in; merchant 5 (the cinema) has no node and votes with client-signed records.
const NEWCOMER: usize = 4;
const NODELESS: usize = 5;
const REMOVED: usize = 3;

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn plaza(args: &[&str]) -> Output {
    Command::new(PLAZA).args(args).stdin(Stdio::null()).output().expect("run plaza")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn get(c: &Client, path: &str) -> Value {
    c.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}")).ok_json().unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn status(c: &Client) -> Value {
    get(c, "/v1/status")
}

/// The newcomer's node, started by hand as an operator would: `plaza init` with its own
/// network key, then `plaza start`.
struct Newcomer {
    home: std::path::PathBuf,
    child: Child,
}

impl Drop for Newcomer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Newcomer {
    fn client(&self) -> Option<Client> {
        let home = Home::new(&self.home);
        let addr = std::fs::read_to_string(home.api_addr()).ok()?.trim().parse().ok()?;
        Some(Client::new(addr, home.load_token().ok()))
    }
}

struct Alliance {
    _dir: tempfile::TempDir,
    net: LocalTestnet,
}

impl Alliance {
    fn client(&self, i: usize) -> Client {
        self.net.nodes[i].client().expect("started")
    }
    fn key(&self, m: usize) -> String {
        self.net.merchants[m].keypair.public().to_hex()
    }
    /// A payload signed by the merchant of the node `c` talks to; final, and accepted.
    fn submit(&self, c: &Client, what: &str, payload: Value) -> Value {
        let v = c.post("/v1/records?wait=true", &json!({"payload": payload})).expect("submit").ok_json().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(v["receipt"]["name"], "accepted", "{what}: {v}");
        v
    }
    /// A payload the node-less merchant signs itself, submitted through node 0.
    fn submit_as(&self, m: usize, what: &str, payload: Value) -> Value {
        let key: &Keypair = &self.net.merchants[m].keypair;
        let parsed: PayloadJson = serde_json::from_value(payload).expect("payload");
        let now = status(&self.client(0))["clock_ms"].as_u64().expect("clock");
        let record = Record::sign(
            RecordBody { alliance: self.net.alliance, signer: key.public(), created_at_ms: now, payload: parsed.to_payload().expect("payload") },
            key,
        );
        let v = self.client(0).post("/v1/records?wait=true", &json!({"record": hex::encode(record.to_bytes())})).expect("submit").ok_json().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(v["receipt"]["name"], "accepted", "{what}: {v}");
        v
    }
    /// Moves every running node's clock a day forward (the newcomer's too): the next block
    /// closes the period, and the validator changes voted in it take effect.
    fn next_day(&self, extra: &[Client]) {
        let mut clients: Vec<Client> = (0..self.net.nodes.len()).filter(|i| self.net.nodes[*i].child.is_some()).map(|i| self.client(i)).collect();
        clients.extend_from_slice(extra);
        for c in &clients {
            c.post("/v1/testnet/clock", &json!({"advance_ms": DAY_MS})).expect("clock").ok_json().expect("the clock moved");
        }
    }
    /// Blocks `from..=to` as node `i` serves them.
    fn blocks(&self, i: usize, from: u64, to: u64) -> Vec<Value> {
        let mut out = Vec::new();
        let mut h = from;
        while h <= to {
            let page = get(&self.client(i), &format!("/v1/blocks?from={h}&limit=100"));
            let blocks = page["blocks"].as_array().expect("blocks").clone();
            if blocks.is_empty() {
                break;
            }
            h += blocks.len() as u64;
            out.extend(blocks.into_iter().filter(|b| b["height"].as_u64().is_some_and(|x| x <= to)));
        }
        out
    }
}

fn signers(block: &Value) -> Vec<String> {
    block["certificate"]["signers"].as_array().expect("signers").iter().map(|s| s.as_str().expect("key").to_owned()).collect()
}

/// Proposes `action` from node 0 and has enough members approve: 5 of the 6 active members
/// (more than two thirds). `voters` are nodes that vote through their own node.
fn vote_through(a: &Alliance, what: &str, action: Value, voters: &[&Client]) -> String {
    let proposal = a.submit(&a.client(0), what, json!({"kind": "propose", "action": action}));
    let id = proposal["id"].as_str().expect("proposal id").to_owned();
    for c in voters {
        a.submit(c, what, json!({"kind": "vote", "proposal": id, "approve": true}));
    }
    a.submit_as(NODELESS, what, json!({"kind": "vote", "proposal": id, "approve": true}));
    let p = get(&a.client(0), &format!("/v1/proposals/{id}"));
    assert_eq!(p["status"], "passed", "{what}: {p}");
    id
}

#[test]
fn an_alliance_votes_a_validator_in_and_another_out_and_keeps_finalizing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut net = LocalTestnet::prepare(&dir.path().join("net"), 4, true, Path::new(PLAZA), Layout::Loopback).expect("prepare");
    net.start_all().expect("start");
    let a = Alliance { _dir: dir, net };
    wait_until("the alliance finalizes", Duration::from_secs(60), || a.net.nodes[0].height().unwrap_or(0) >= 2);
    let genesis_set: Vec<String> = status(&a.client(0))["validators"].as_array().expect("validators").iter().map(|v| v.as_str().expect("key").to_owned()).collect();
    assert_eq!(genesis_set.len(), 4);
    assert!(!genesis_set.contains(&a.key(NEWCOMER)));

    // The newcomer's node: its own network key, a member node that does not vote yet.
    let net_dir = a.net.dir.clone();
    let network_key = net_dir.join("newcomer-network.key");
    let made = plaza(&["keys", "new", "-o", network_key.to_str().expect("path"), "--json"]);
    assert!(made.status.success(), "{}", text(&made));
    let network_public = Keypair::load(&network_key).expect("network key").public().to_hex();
    let home = net_dir.join("node4");
    let key_file = net_dir.join("keys").join(format!("merchant{NEWCOMER}.key"));
    let mut init = vec![
        "init".to_owned(),
        "--home".into(),
        home.display().to_string(),
        "--genesis".into(),
        net_dir.join("genesis.bin").display().to_string(),
        "--key".into(),
        key_file.display().to_string(),
        "--network-key".into(),
        network_key.display().to_string(),
        "--listen".into(),
        "/ip4/127.0.0.1/tcp/0".into(),
        "--api".into(),
        "127.0.0.1:0".into(),
    ];
    for n in &a.net.nodes {
        init.push("--peer".into());
        init.push(n.p2p.clone().expect("bound"));
    }
    let out = Command::new(PLAZA).args(&init).output().expect("plaza init");
    assert!(out.status.success(), "init: {}", text(&out));
    // A testnet node: its clock moves with the others'.
    let mut config = Home::new(&home).load_config().expect("config");
    config.testnet_clock_api = true;
    std::fs::write(home.join("config.toml"), config.to_toml()).expect("config");
    let log = std::fs::File::create(home.join("node.log")).expect("log");
    let child = Command::new(PLAZA)
        .args(["start", "--home"])
        .arg(&home)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("plaza start");
    let newcomer = Newcomer { home, child };
    wait_until("the newcomer's node answers", Duration::from_secs(60), || newcomer.client().is_some_and(|c| c.get("/v1/status").is_ok()));
    let newcomer_client = newcomer.client().expect("client");
    assert_eq!(status(&newcomer_client)["validator"], false);

    // Epoch 1: the fifth validator, voted in, effective at the next period close.
    let (c1, c2, c3) = (a.client(1), a.client(2), a.client(3));
    vote_through(&a, "add the newcomer", json!({"type": "add_validator", "merchant": a.key(NEWCOMER), "network_key": network_public}), &[&c1, &c2, &c3]);
    let before_first = a.net.nodes[0].height().expect("height");
    a.next_day(&[newcomer_client.clone()]);
    wait_until("the fifth validator is in the set", Duration::from_secs(120), || {
        status(&a.client(0))["validators"].as_array().is_some_and(|v| v.len() == 5)
    });
    wait_until("the newcomer votes", Duration::from_secs(180), || {
        status(&newcomer_client)["validator"] == true && {
            let tip = a.net.nodes[0].height().unwrap_or(0);
            a.blocks(0, tip.saturating_sub(5).max(before_first), tip).iter().any(|b| signers(b).contains(&a.key(NEWCOMER)))
        }
    });

    // Epoch 2: one of the original four removed; the newcomer's own node votes for it.
    vote_through(&a, "remove merchant 3", json!({"type": "remove_validator", "merchant": a.key(REMOVED)}), &[&c1, &c2, &newcomer_client]);
    a.next_day(&[newcomer_client.clone()]);
    wait_until("merchant 3 is out of the set", Duration::from_secs(120), || {
        status(&a.client(0))["validators"].as_array().is_some_and(|v| v.len() == 4 && !v.iter().any(|k| k.as_str() == Some(a.key(REMOVED).as_str())))
    });
    wait_until("the removed node stops validating", Duration::from_secs(60), || status(&a.client(REMOVED))["validator"] == false);
    let changed_at = a.net.nodes[0].height().expect("height");
    wait_until("the chain keeps finalizing after both changes", Duration::from_secs(120), || a.net.nodes[0].height().unwrap_or(0) >= changed_at + 5);
    let tip = a.net.nodes[0].height().expect("height");

    // Certificates: the newcomer signs after it joined; merchant 3 signs nothing in the last
    // blocks (it was removed), while it signed at genesis.
    let chain = a.blocks(0, 1, tip);
    assert_eq!(chain.len() as u64, tip, "every block served");
    // A certificate holds any 2f+1 of the votes, so a slow node can miss a few: look over all
    // of the first epoch, not its first blocks only.
    assert!(
        chain.iter().take_while(|b| b["epoch"].as_u64() == Some(0)).any(|b| signers(b).contains(&a.key(REMOVED))),
        "merchant 3 validated in the first epoch"
    );
    let last = &chain[chain.len() - 3..];
    assert!(last.iter().all(|b| !signers(b).contains(&a.key(REMOVED))), "no certificate after the removal names merchant 3");
    assert!(last.iter().any(|b| signers(b).contains(&a.key(NEWCOMER))), "the newcomer still signs");
    // Epochs 0, 1, 2 in order; each ending block names the next set, and only those do.
    let epochs: Vec<u64> = chain.iter().map(|b| b["epoch"].as_u64().expect("epoch")).collect();
    assert!(epochs.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1), "{epochs:?}");
    assert_eq!((epochs[0], epochs[epochs.len() - 1]), (0, 2), "two epoch changes");
    let ends: Vec<u64> = chain.iter().filter(|b| !b["next_validator_set_hash"].is_null()).map(|b| b["epoch"].as_u64().expect("epoch")).collect();
    assert_eq!(ends, [0, 1], "one epoch-ending block per change");
    // Every node, the newcomer's and the removed one's included, holds the same chain.
    let tip_id = chain[chain.len() - 1]["id"].clone();
    for c in [a.client(1), a.client(2), a.client(3), newcomer_client.clone()] {
        wait_until("every node has the tip", Duration::from_secs(60), || status(&c)["height"].as_u64().unwrap_or(0) >= tip);
        assert_eq!(get(&c, &format!("/v1/blocks/{tip}"))["id"], tip_id);
    }

    // The auditor: an export of the whole chain verifies from genesis alone.
    let export = a.net.dir.join("whole.plaza-export");
    let out = plaza(&["export", "--home", a.net.nodes[0].home.to_str().expect("home"), "-o", export.to_str().expect("path")]);
    assert!(out.status.success(), "export: {}", text(&out));
    let out = plaza(&["verify", "--export", export.to_str().expect("path"), "--json"]);
    assert!(out.status.success(), "verify: {}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("verify json");
    assert!(report["tip_height"].as_u64().is_some_and(|h| h >= tip), "{report}");
}
