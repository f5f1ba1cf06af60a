//! A node an operator can run (issue 16), against real `plaza` processes on loopback: health
//! and readiness, the status and metrics an operator watches, log files without colour codes,
//! POS retries (the original answered, a conflicting order refused), observer nodes.
//!
//! Every wait polls with a deadline; nothing sleeps to hide a race.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::{Payload, Record, RecordBody};
use plaza_ledger::Keypair;
use plaza_node::client::Client;
use plaza_node::config::NodeConfig;
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

fn plaza(args: &[&str]) -> Output {
    Command::new(PLAZA).args(args).output().expect("run plaza")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

struct Net {
    _dir: tempfile::TempDir,
    net: LocalTestnet,
}

fn prepare(nodes: usize) -> Net {
    let dir = tempfile::tempdir().expect("temp dir");
    let net = LocalTestnet::prepare(&dir.path().join("net"), nodes, false, Path::new(PLAZA), Layout::Loopback).expect("prepare");
    Net { _dir: dir, net }
}

impl Net {
    fn client(&self, i: usize) -> Client {
        self.net.nodes[i].client().expect("started")
    }
    fn home(&self, i: usize) -> String {
        self.net.nodes[i].home.display().to_string()
    }
    fn get(&self, i: usize, path: &str) -> (u16, Value) {
        let answer = self.client(i).get(path).expect("GET");
        (answer.status, serde_json::from_str(&answer.body).unwrap_or(Value::Null))
    }
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[test]
fn health_readiness_status_metrics_and_plain_logs() {
    // A one-validator alliance: ready once it runs.
    let mut t = prepare(1);
    t.net.start(0).expect("start");
    wait_until("a first block", Duration::from_secs(60), || t.net.nodes[0].height().unwrap_or(0) >= 1);
    let (code, health) = t.get(0, "/healthz");
    assert_eq!((code, health["status"].as_str()), (200, Some("ok")), "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let (code, ready) = t.get(0, "/readyz");
    assert_eq!(code, 200, "a lone validator is its own quorum: {ready}");
    assert_eq!((ready["status"].as_str(), ready["sync"].as_str(), ready["quorum"].as_u64()), (Some("ready"), Some("synced"), Some(1)), "{ready}");
    let (_, status) = t.get(0, "/v1/status");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    assert_eq!(status["sync"]["state"], "synced", "{status}");
    assert_eq!(status["sync"]["ready"], true, "{status}");
    assert_eq!(status["peer_count"], 0, "{status}");
    assert!(status["last_block_age_ms"].as_u64().is_some(), "{status}");
    let metrics = t.client(0).get("/metrics").expect("metrics").body;
    let build = metrics.lines().find(|l| l.starts_with("plaza_build_info{")).unwrap_or_else(|| panic!("build info:\n{metrics}"));
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))) && build.ends_with(" 1"), "{build}");
    let age = metric(&metrics, "plaza_last_block_age_seconds").unwrap_or_else(|| panic!("last block age:\n{metrics}"));
    assert!((0.0..60.0).contains(&age), "blocks come every second or so: {age}");
    assert_eq!(metric(&metrics, "plaza_sync_lag_blocks"), Some(0.0), "{metrics}");
    // The log is a file, not a terminal: no colour codes in it.
    let log = std::fs::read_to_string(t.net.nodes[0].log_path()).expect("log");
    assert!(log.contains("plaza node started"), "{log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escape codes in a log file:\n{log}");

    // One validator of four up: no quorum, so not ready, and the answer says why.
    let mut t = prepare(4);
    t.net.start(0).expect("start one of four");
    let (code, ready) = t.get(0, "/readyz");
    assert_eq!(code, 503, "{ready}");
    assert_eq!(ready["code"], "not-ready", "{ready}");
    assert!(ready["message"].as_str().is_some_and(|m| m.contains("1 of the 3 validators")), "{ready}");
    let (_, status) = t.get(0, "/v1/status");
    assert_eq!(status["sync"]["ready"], false, "{status}");
    assert_eq!(status["sync"]["state"], "no-peers", "{status}");
    // With a second and a third validator a quorum is connected: ready.
    t.net.start(1).expect("start");
    t.net.start(2).expect("start");
    wait_until("three of four validators connected: ready", Duration::from_secs(60), || t.get(0, "/readyz").0 == 200);
    let (_, status) = t.get(0, "/v1/status");
    assert!(status["validator_peers"].as_u64().is_some_and(|n| n >= 2), "{status}");
}

fn sale(order: &str, gross: &str) -> Value {
    json!({"kind": "sale", "order": order, "gross": gross, "base": gross, "coupon_codes": [], "points_redeemed": 0})
}

#[test]
fn a_pos_retry_answers_the_original_and_a_conflicting_order_is_refused() {
    let mut t = prepare(1);
    t.net.start(0).expect("start");
    let c = t.client(0);
    let post = |body: &Value| {
        let a = c.post("/v1/records?wait=true", body).expect("post");
        (a.status, serde_json::from_str::<Value>(&a.body).expect("json"))
    };
    // Node-signed: the same sale twice (a POS that did not hear the first answer).
    let (code, first) = post(&json!({"payload": sale("POS-1", "128.00")}));
    assert_eq!((code, first["status"].as_str(), first["receipt"]["name"].as_str()), (200, Some("final"), Some("accepted")), "{first}");
    assert_eq!(first["original"], false, "{first}");
    let (code, again) = post(&json!({"payload": sale("POS-1", "128.00")}));
    assert_eq!(code, 200, "{again}");
    assert_eq!(again["id"], first["id"], "the original record's id: {again}");
    assert_eq!((again["original"].as_bool(), again["receipt"]["name"].as_str()), (Some(true), Some("accepted")), "{again}");
    assert_ne!(again["submitted"], first["id"], "the retry was a new record, not stored: {again}");
    // The same order id with different content is a conflict naming the original.
    let (code, conflict) = post(&json!({"payload": sale("POS-1", "99.00")}));
    assert_eq!((code, conflict["code"].as_str()), (409, Some("conflicting-order")), "{conflict}");
    assert!(conflict["message"].as_str().is_some_and(|m| m.contains(first["id"].as_str().expect("id"))), "{conflict}");
    // Nothing new reached the chain: one sale with that order.
    let block = first["height"].as_u64().expect("height");
    let tip = t.net.nodes[0].height().expect("height");
    let mut sales = 0;
    for h in block..=tip {
        let (_, b) = t.get(0, &format!("/v1/blocks/{h}"));
        sales += b["record_list"].as_array().expect("records").iter().filter(|r| r["payload"]["order"] == "POS-1").count();
    }
    assert_eq!(sales, 1, "the retries added no record");

    // Client-signed: one signed record sent three times is one record; the same order signed
    // again (a new record, the same sale) answers the original too.
    let key = &t.net.merchants[0].keypair;
    let alliance = t.net.alliance;
    let now = plaza_testnet::api::status(&c).expect("status").clock_ms;
    let signed = |created: u64, gross: &str| {
        let payload = serde_json::from_value::<plaza_node::json::PayloadJson>(sale("POS-2", gross)).expect("payload").to_payload().expect("payload");
        assert!(matches!(payload, Payload::Sale { .. }));
        Record::sign(RecordBody { alliance, signer: key.public(), created_at_ms: created, payload }, key)
    };
    let record = signed(now, "50.00");
    let body = json!({"record": hex::encode(record.to_bytes())});
    let answers: Vec<Value> = (0..3).map(|_| post(&body).1).collect();
    for (i, a) in answers.iter().enumerate() {
        assert_eq!((a["id"].as_str(), a["status"].as_str()), (Some(record.id().to_hex().as_str()), Some("final")), "send {i}: {a}");
        assert_eq!(a["original"], i > 0, "send {i}: {a}");
    }
    let resigned = signed(now + 1, "50.00");
    let (code, a) = post(&json!({"record": hex::encode(resigned.to_bytes())}));
    assert_eq!((code, a["id"].as_str(), a["original"].as_bool()), (200, Some(record.id().to_hex().as_str()), Some(true)), "{a}");
    let (code, a) = post(&json!({"record": hex::encode(signed(now + 2, "51.00").to_bytes())}));
    assert_eq!((code, a["code"].as_str()), (409, Some("conflicting-order")), "{a}");
    // In a batch, each answer is its own.
    let (code, a) = post(&json!({"records": [hex::encode(resigned.to_bytes()), hex::encode(signed(now + 3, "52.00").to_bytes())]}));
    assert_eq!(code, 200, "{a}");
    assert_eq!((a["results"][0]["original"].as_bool(), a["results"][0]["id"].as_str()), (Some(true), Some(record.id().to_hex().as_str())), "{a}");
    assert_eq!((a["results"][1]["code"].as_str(), a["results"][1]["original"].as_str()), (Some("conflicting-order"), Some(record.id().to_hex().as_str())), "{a}");

    // The CLI: a retry prints that the original is answered and succeeds; a conflict exits 5.
    let home = t.home(0);
    let out = plaza(&["submit", "--home", &home, "sale", "--order", "POS-1", "--gross", "128.00", "--base", "128.00", "--wait"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already on the ledger") && text(&out).contains(first["id"].as_str().expect("id")), "{}", text(&out));
    let out = plaza(&["submit", "--home", &home, "sale", "--order", "POS-1", "--gross", "1.00", "--wait"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("conflicting-order") || text(&out).contains("a different sale"), "{}", text(&out));
}

#[test]
fn an_observer_syncs_and_verifies_but_cannot_write() {
    let mut t = prepare(1);
    t.net.start(0).expect("start");
    wait_until("a few blocks", Duration::from_secs(60), || t.net.nodes[0].height().unwrap_or(0) >= 3);
    let validator_p2p = t.net.nodes[0].p2p.clone().expect("p2p address");
    let dir = tempfile::tempdir().expect("temp dir");
    let auditor_key = dir.path().join("auditor.key");
    Keypair::generate().save(&auditor_key).expect("save");
    let genesis = t.net.dir.join("genesis.bin");
    let home = dir.path().join("observer");
    let args = |observer: bool| {
        let mut a = vec!["init", "--home", home.to_str().expect("path"), "--genesis", genesis.to_str().expect("path"), "--key", auditor_key.to_str().expect("path")];
        a.extend(["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0", "--peer", &validator_p2p, "--json"]);
        if observer {
            a.push("--observer");
        }
        a.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    // Without --observer the auditor's key is no member: refused, with the way out named.
    let out = Command::new(PLAZA).args(args(false)).output().expect("init");
    assert!(!out.status.success() && text(&out).contains("--observer"), "{}", text(&out));
    let out = Command::new(PLAZA).args(args(true)).output().expect("init");
    assert!(out.status.success(), "{}", text(&out));
    let init: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(init["observer"], true);
    let network_key = init["network_key"].as_str().expect("network key").to_owned();

    let mut observer = NodeProcess::start(&home);
    let client = observer.client.clone();
    // Not admitted yet: the member refuses it, and it has nothing.
    let refused = || metric(&t.client(0).get("/metrics").expect("metrics").body, "plaza_refused_peers_total").unwrap_or(0.0);
    wait_until("the member refuses the observer before it is listed", Duration::from_secs(30), || refused() >= 1.0);
    assert_eq!(height(&client), 0);
    // The member lists it (no restart: the running node re-reads `observers`).
    let config_path = t.net.nodes[0].home.join("config.toml");
    let mut config = NodeConfig::from_toml(&std::fs::read_to_string(&config_path).expect("config")).expect("config");
    config.observers = vec![network_key];
    std::fs::write(&config_path, config.to_toml()).expect("write config");
    let target = t.net.nodes[0].height().expect("height");
    wait_until("the observer syncs the chain", Duration::from_secs(60), || height(&client) >= target);
    let status = plaza_testnet::api::status(&client).expect("status");
    assert!(!status.peers.is_empty());
    wait_until("the observer is ready (a member peer, synced)", Duration::from_secs(30), || client.get("/readyz").is_ok_and(|a| a.status == 200));
    let s: Value = client.get("/v1/status").expect("status").ok_json().expect("json");
    assert_eq!(s["validator"], false, "{s}");

    // It cannot write: the API refuses, and so does the CLI (exit 5).
    let answer = client.post("/v1/records", &json!({"payload": sale("OBS-1", "1.00")})).expect("post");
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(answer.body.contains("observer-read-only"), "{}", answer.body);
    let out = plaza(&["submit", "--home", home.to_str().expect("path"), "issue-card"]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(text(&out).contains("read-only observer"), "{}", text(&out));
    // What it holds verifies, beside the running observer.
    let out = plaza(&["verify", "--home", home.to_str().expect("path"), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    // The chain kept growing on the member, never forked by the observer.
    let ours: Value = t.client(0).get("/v1/blocks/1").expect("block").ok_json().expect("json");
    let theirs: Value = client.get("/v1/blocks/1").expect("block").ok_json().expect("json");
    assert_eq!(ours["id"], theirs["id"]);
    observer.stop();
}

fn height(c: &Client) -> u64 {
    plaza_testnet::api::status(c).map_or(0, |s| s.height)
}

struct NodeProcess {
    child: Option<std::process::Child>,
    client: Client,
}

impl NodeProcess {
    fn start(home: &Path) -> NodeProcess {
        let log = std::fs::File::create(home.join("node.log")).expect("log");
        let child = Command::new(PLAZA)
            .args(["start", "--home"])
            .arg(home)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start");
        let addr_file: PathBuf = home.join("api.addr");
        wait_until("the node writes its API address", Duration::from_secs(60), || addr_file.exists());
        let addr = std::fs::read_to_string(&addr_file).expect("addr").trim().parse().expect("addr");
        let client = Client::new(addr, None);
        wait_until("the node answers", Duration::from_secs(30), || client.get("/healthz").is_ok());
        NodeProcess { child: Some(child), client }
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn a_backup_of_a_running_node_restores_into_a_new_home() {
    let mut t = prepare(1);
    t.net.start(0).expect("start");
    let c = t.client(0);
    for i in 0..5 {
        let a = c.post("/v1/records?wait=true", &json!({"payload": sale(&format!("B-{i}"), "10.00")})).expect("post").ok_json().expect("final");
        assert_eq!(a["status"], "final", "{a}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join("backup");
    let b = backup.to_str().expect("path");
    // While the node runs (and keeps finalizing).
    let out = plaza(&["backup", "--home", &t.home(0), "-o", b, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["node_was_running"], true, "{report}");
    let height = report["height"].as_u64().expect("height");
    assert!(height >= 5, "{report}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&backup).expect("meta").permissions().mode() & 0o777, 0o700, "a backup holds keys");
        assert_eq!(std::fs::metadata(backup.join("keys/merchant.key")).expect("meta").permissions().mode() & 0o777, 0o600);
    }
    // A second backup into the same directory is refused and changes nothing.
    let out = plaza(&["backup", "--home", &t.home(0), "-o", b]);
    assert!(!out.status.success() && text(&out).contains("exists already"), "{}", text(&out));
    let original_block = t.get(0, &format!("/v1/blocks/{height}")).1;
    t.net.stop_all();

    // Restore into a new home: the same tip, and it verifies.
    let restored = dir.path().join("restored");
    let r = restored.to_str().expect("path");
    let out = plaza(&["restore", b, "--home", r, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["height"].as_u64(), Some(height), "{report}");
    assert_eq!(report["tip"], original_block["id"], "{report}");
    let out = plaza(&["restore", b, "--home", r]);
    assert!(!out.status.success() && text(&out).contains("not empty"), "{}", text(&out));
    let out = plaza(&["verify", "--home", r, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    // It runs and serves the same chain.
    let mut node = NodeProcess::start(&restored);
    let served: Value = node.client.get(&format!("/v1/blocks/{height}")).expect("block").ok_json().expect("json");
    assert_eq!(served["id"], original_block["id"]);
    wait_until("the restored node finalizes beyond the backup", Duration::from_secs(60), || height_of(&node.client) > height);
    node.stop();
    // A stopped node is backed up directly from its store.
    let out = plaza(&["backup", "--home", r, "-o", dir.path().join("backup2").to_str().expect("path"), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["node_was_running"], false, "{report}");
    assert!(report["height"].as_u64().is_some_and(|h| h > height), "{report}");
}

fn height_of(c: &Client) -> u64 {
    height(c)
}

/// The 64-hex-digit words of `text` (keys, ids).
fn hex_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit()).filter(|w| w.len() == 64).map(str::to_owned).collect()
}

/// The display column (a CJK character counts two) at which `needle` starts in `line`.
fn column_of(line: &str, needle: &str) -> Option<usize> {
    let at = line.find(needle)?;
    Some(line[..at].chars().map(|c| if c > '\u{2e80}' { 2 } else { 1 }).sum())
}

#[test]
fn human_output_names_merchants_dates_locally_and_aligns_cjk_columns() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut net = LocalTestnet::prepare(&dir.path().join("net"), 1, true, Path::new(PLAZA), Layout::Loopback).expect("prepare");
    net.start(0).expect("start");
    let home = net.nodes[0].home.display().to_string();
    // Iron Gym (no node of its own) issues a card; Hot Pot Palace sells to it: Iron Gym earns
    // its home share (S3), so both have balances.
    let card = "0123456789abcdef0123456789abcdef";
    let gym_key = dir.path().join("net").join("keys").join("merchant1.key").display().to_string();
    let issued = plaza(&["submit", "--home", &home, "--key", &gym_key, "issue-card", "--card", card, "--wait"]);
    assert!(issued.status.success(), "{}", text(&issued));
    let sale = plaza(&["submit", "--home", &home, "sale", "--order", "HUMAN-1", "--gross", "88.00", "--card", card, "--wait"]);
    assert!(sale.status.success(), "{}", text(&sale));
    let query = |what: &[&str]| {
        let mut args = vec!["query", "--home", home.as_str()];
        args.extend_from_slice(what);
        let out = plaza(&args);
        assert!(out.status.success(), "{what:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let client = net.nodes[0].client().expect("client");
    let status: Value = serde_json::from_str(&client.get("/v1/status").expect("status").body).expect("json");
    let offset = status["utc_offset_minutes"].as_i64().expect("the status names the alliance's UTC offset");
    let merchants: Value = serde_json::from_str(&client.get("/v1/merchants").expect("merchants").body).expect("json");
    let names: Vec<(String, String)> = merchants["merchants"]
        .as_array()
        .expect("merchants")
        .iter()
        .map(|m| (m["key"].as_str().expect("key").to_owned(), m["name"].as_str().expect("name").to_owned()))
        .collect();

    // Members as a table: every row's "category" starts at the header's display column,
    // Chinese names included.
    let list = query(&["merchants"]);
    let lines: Vec<&str> = list.lines().collect();
    let header = lines.iter().position(|l| l.trim_start().starts_with("name")).unwrap_or_else(|| panic!("a header row:\n{list}"));
    let category_at = column_of(lines[header], "category").expect("category column");
    let cjk = lines.iter().find(|l| l.contains("兰州拉面")).unwrap_or_else(|| panic!("the Chinese-named member is listed:\n{list}"));
    assert!(lines[header + 2..].iter().all(|l| {
        let category = ["restaurant", "fitness", "education", "grocery", "entertainment"].iter().find_map(|c| column_of(l, c));
        category == Some(category_at)
    }), "columns misaligned:\n{list}");
    assert!(cjk.contains("restaurant"));

    // Balances and blocks name merchants instead of printing their keys.
    let balances = query(&["balances"]);
    assert!(balances.contains("Hot Pot Palace"), "{balances}");
    assert!(hex_words(&balances).is_empty(), "no keys where a name is known:\n{balances}");
    let blocks = query(&["blocks", "--limit", "3"]);
    assert!(hex_words(&blocks).is_empty(), "{blocks}");
    assert!(names.iter().any(|(_, n)| blocks.contains(n.as_str())), "the proposer is named:\n{blocks}");

    // Dates in the alliance's time zone: the tip block's time, as the block says it.
    let zone = format!("UTC{}{:02}:{:02}", if offset < 0 { '−' } else { '+' }, offset.abs() / 60, offset.abs() % 60);
    assert!(blocks.contains(&format!("time ({zone})")), "{blocks}");
    let tip: Value = serde_json::from_str(&client.get("/v1/blocks?limit=1").expect("blocks").body).expect("json");
    let ms = tip["blocks"][0]["time_ms"].as_i64().expect("time");
    let local = (ms / 1000 + offset * 60).rem_euclid(86_400);
    let clock = format!("{:02}:{:02}:{:02}", local / 3600, local % 3600 / 60, local % 60);
    let height = tip["blocks"][0]["height"].as_u64().expect("height");
    let row = blocks.lines().find(|l| l.split_whitespace().next() == Some(height.to_string().as_str())).unwrap_or_else(|| panic!("block {height}:\n{blocks}"));
    assert!(row.contains(&clock), "block {height} at {ms} ms is {clock} local: {row}");

    // Status: its own merchant by name, times as dates, the raw JSON unchanged.
    let human = query(&["status"]);
    assert!(human.contains(&format!("({zone})")), "{human}");
    assert!(!human.contains("last_block_time_ms"), "{human}");
    assert!(names.iter().any(|(key, n)| human.contains(&format!("{n} ({}…)", &key[..16]))), "{human}");
    let json = query(&["status", "--json"]);
    assert!(json.contains("last_block_time_ms"), "--json keeps milliseconds: {json}");
}
