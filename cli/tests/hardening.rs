//! Hardening found by a hostile probe (issue 20, and the exit-code items of issue 14), each
//! case against real `plaza` processes on loopback: the API's connection limits and
//! timeouts (a connection flood under a 1,024 descriptor limit, half-sent headers, slow
//! bodies, per-client concurrency), range checks at numeric inputs, one JSON error form for
//! every status, typed refusals, `plaza init` for members admitted by vote and without
//! leftovers, the CLI's messages and exit codes.
//!
//! Every wait polls with a deadline; the flood and slow-request cases are bounded in count
//! and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use plaza_node::config::NodeConfig;
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");

/// A one-validator alliance prepared by `plaza testnet --prepare-only`, and its node.
struct Alliance {
    dir: tempfile::TempDir,
    home: PathBuf,
    genesis: PathBuf,
    key_file: PathBuf,
    /// Every merchant's key file, the node's merchant first.
    key_files: Vec<PathBuf>,
    key: Keypair,
    alliance: Hash,
    token: String,
    /// The running node's API (it binds port 0 and writes what it got into `api.addr`).
    api: Option<Client>,
    child: Option<Child>,
}

fn prepare() -> Alliance {
    prepare_with(&[])
}

/// `flags` go to `plaza testnet --prepare-only` (`--demo`: six merchants, one node).
fn prepare_with(flags: &[&str]) -> Alliance {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(PLAZA)
        .args(["testnet", "--prepare-only", "--json", "--nodes", "1"])
        .args(flags)
        .arg("--dir")
        .arg(dir.path().join("net"))
        .output()
        .expect("plaza testnet --prepare-only");
    assert!(out.status.success(), "prepare failed: {}", String::from_utf8_lossy(&out.stderr));
    let desc: Value = serde_json::from_slice(&out.stdout).expect("testnet json");
    let node = &desc["nodes"][0];
    let key_files: Vec<PathBuf> =
        desc["merchants"].as_array().expect("merchants").iter().map(|m| PathBuf::from(m["key_file"].as_str().expect("key file"))).collect();
    let key_file = key_files[0].clone();
    Alliance {
        key_files,
        home: PathBuf::from(node["home"].as_str().expect("home")),
        genesis: PathBuf::from(desc["genesis"].as_str().expect("genesis")),
        key: Keypair::load(&key_file).expect("key"),
        key_file,
        alliance: Hash::from_hex(desc["alliance_id"].as_str().expect("alliance")).expect("hash"),
        token: node["token"].as_str().expect("token").to_owned(),
        api: None,
        child: None,
        dir,
    }
}

impl Alliance {
    fn config(&self) -> NodeConfig {
        NodeConfig::from_toml(&std::fs::read_to_string(self.home.join("config.toml")).expect("config")).expect("config parses")
    }
    fn set_config(&self, change: impl FnOnce(&mut NodeConfig)) {
        let mut config = self.config();
        change(&mut config);
        std::fs::write(self.home.join("config.toml"), config.to_toml()).expect("write config");
    }
    fn client(&self) -> &Client {
        self.api.as_ref().expect("the node was started")
    }
    fn addr(&self) -> SocketAddr {
        self.client().addr
    }
    /// Starts the node, optionally under `ulimit -n fds`.
    fn start_with(&mut self, fds: Option<u32>) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.home.join("node.log")).expect("log file");
        let err = log.try_clone().expect("log file");
        let mut command = match fds {
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" start --home \"$1\""), PLAZA]).arg(&self.home);
                c
            }
            None => {
                let mut c = Command::new(PLAZA);
                c.args(["start", "--home"]).arg(&self.home);
                c
            }
        };
        // A previous run's address is stale: the node binds a new port.
        let addr_file = self.home.join("api.addr");
        let _ = std::fs::remove_file(&addr_file);
        let child = command.stdin(Stdio::null()).stdout(Stdio::from(log)).stderr(Stdio::from(err)).spawn().expect("plaza start");
        self.child = Some(child);
        wait_until("the node writes its API address", Duration::from_secs(60), || addr_file.exists());
        let addr = std::fs::read_to_string(&addr_file).expect("api.addr").trim().parse().expect("an address");
        self.api = Some(Client::new(addr, Some(self.token.clone())));
        wait_until("the node answers", Duration::from_secs(60), || self.status().is_some());
    }
    fn start(&mut self) {
        self.start_with(None);
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
    fn status(&self) -> Option<Value> {
        self.client().get("/v1/status").ok()?.ok_json().ok()
    }
    fn height(&self) -> u64 {
        self.status().and_then(|s| s["height"].as_u64()).unwrap_or(0)
    }
    fn metric(&self, name: &str) -> f64 {
        let body = self.client().get("/metrics").expect("metrics").body;
        body.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in\n{body}"))
    }
    fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("node.log")).unwrap_or_default()
    }
    /// Alive, answering, and no panic in its log.
    fn assert_healthy(&mut self) {
        if let Some(c) = self.child.as_mut() {
            assert!(c.try_wait().expect("try_wait").is_none(), "the node exited:\n{}", self.log());
        }
        assert!(self.status().is_some(), "the node does not answer /v1/status");
        let log = self.log();
        assert!(!log.contains("panicked") && !log.contains("internal error"), "a panic in the log:\n{log}");
    }
    fn plaza(&self, args: &[&str]) -> Output {
        Command::new(PLAZA).args(args).output().expect("plaza")
    }
    fn sign(&self, key: &Keypair, payload: Payload) -> Record {
        let now = self.status().and_then(|s| s["clock_ms"].as_u64()).expect("clock");
        Record::sign(RecordBody { alliance: self.alliance, signer: key.public(), created_at_ms: now, payload }, key)
    }
}

impl Drop for Alliance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends raw bytes, reads the whole answer (the server closes or `Connection: close`).
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// The answer is `status` with the API's error form and `code` (if given).
fn assert_error_form(what: &str, (status, head, body): &(u16, String, String), expected: u16, code: Option<&str>) {
    assert_eq!(*status, expected, "{what}: status\n{head}\n{body}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{what}: not JSON\n{head}");
    // A chunked body has its chunk sizes around the JSON.
    let json_text = body.find('{').and_then(|start| body.rfind('}').map(|end| &body[start..=end])).unwrap_or("");
    let v: Value = serde_json::from_str(json_text).unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {body}"));
    assert!(v["code"].is_string() && v["message"].is_string(), "{what}: not {{code, message}}: {v}");
    if let Some(code) = code {
        assert_eq!(v["code"], code, "{what}: {v}");
    }
}

#[test]
fn a_flood_of_idle_connections_under_1024_descriptors_leaves_the_api_answering() {
    let mut a = prepare();
    a.start_with(Some(1024));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", a.pid())).unwrap_or_default();
    if !limits.is_empty() {
        let open_files = limits.lines().find(|l| l.starts_with("Max open files")).expect("limits line");
        assert!(open_files.split_whitespace().nth(3) == Some("1024"), "the node runs under 1024 descriptors: {open_files}");
    }
    // 1,100 idle connections, held open by this test.
    let started = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..1100 {
        flood.push(TcpStream::connect_timeout(&a.addr(), Duration::from_secs(5)).expect("connect"));
    }
    // The API still answers, at once, while every flood connection is still held here.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = a.status() {
            break s;
        }
        assert!(Instant::now() < deadline, "/v1/status did not answer during the flood");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status["height"].is_u64());
    let fds = std::fs::read_dir(format!("/proc/{}/fd", a.pid())).map(|d| d.count()).unwrap_or(0);
    assert!(fds < 1024, "the node holds {fds} descriptors");
    assert!(a.metric("plaza_api_evicted_connections_total") >= 1.0, "idle connections were evicted");
    a.assert_healthy();
    assert_eq!(a.metric("plaza_api_accept_errors_total"), 0.0, "the node never ran out of descriptors");
    drop(flood);
    eprintln!("flood of 1100 connections handled in {:.1}s", started.elapsed().as_secs_f64());
}

#[test]
fn half_sent_headers_time_out_and_slow_bodies_get_408() {
    let mut a = prepare();
    a.set_config(|c| {
        c.api_header_read_timeout_ms = 500;
        c.api_request_timeout_ms = 1_500;
        c.api_requests_per_client_max = 3;
    });
    a.start();
    // 50 half-sent headers: each is closed by the server soon after the timeout.
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(a.addr()).expect("connect");
            s.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: ").expect("write");
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            s
        })
        .collect();
    for s in &mut slow {
        let mut buf = [0u8; 256];
        // EOF (0) or a reset: closed either way; a timeout of the read would fail the test.
        match s.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => panic!("a half-sent header got an answer: {}", String::from_utf8_lossy(&buf[..n])),
            Err(e) => assert!(e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut, "still open: {e}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(8), "closing took {:?}", started.elapsed());
    assert!(a.metric("plaza_api_header_timeouts_total") >= 50.0);

    // Three slow bodies fill this client's request slots: a fourth request gets 429, JSON.
    let body_pending = b"POST /v1/records HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(a.addr()).expect("connect");
            s.write_all(body_pending).expect("write");
            s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
            s
        })
        .collect();
    wait_until("three requests in flight", Duration::from_secs(5), || {
        let (status, ..) = raw(a.addr(), b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        status == 429
    });
    let answer = raw(a.addr(), b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    if answer.0 == 429 {
        assert_error_form("per-client limit", &answer, 429, Some("too-many-requests"));
    }
    // Each slow body is answered 408 in the error form after the request timeout.
    for s in &mut held {
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        assert_error_form("slow body", &(head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), head.to_owned(), body.to_owned()), 408, Some("request-timeout"));
    }
    assert!(a.metric("plaza_api_request_timeouts_total") >= 3.0);
    assert!(a.metric("plaza_api_throttled_requests_total") >= 1.0);
    a.assert_healthy();
}

#[test]
fn every_error_status_has_the_json_form() {
    let mut a = prepare();
    a.set_config(|c| c.api_body_bytes_max = 4096);
    a.start();
    let addr = a.addr();
    let token = a.client().token.clone().expect("token");
    let get = |path: &str| raw(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    assert_error_form("404 fallback", &get("/v1/nothing-here"), 404, Some("not-found"));
    assert_error_form("400 bad query", &get("/v1/blocks?limit=abc"), 400, Some("bad-query"));
    assert_error_form("400 limit 0", &get("/v1/blocks?limit=0"), 400, Some("bad-limit"));
    assert_error_form("400 limit 101", &get("/v1/blocks?limit=101"), 400, Some("bad-limit"));
    assert_error_form("400 limit huge", &get("/v1/blocks?limit=18446744073709551615"), 400, Some("bad-limit"));
    assert_error_form("400 limit beyond u64", &get("/v1/blocks?limit=18446744073709551616"), 400, Some("bad-query"));
    assert_error_form("400 bad wait", &raw(addr, b"POST /v1/records?wait=maybe HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"), 400, Some("bad-query"));
    let from_max = get("/v1/blocks?from=18446744073709551615");
    assert_eq!(from_max.0, 200, "the largest from is an empty page: {from_max:?}");
    assert_error_form("405", &raw(addr, b"DELETE /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405, Some("method-not-allowed"));
    assert_error_form("405 on a write path", &get("/v1/testnet/clock"), 405, Some("method-not-allowed"));
    let big = "x".repeat(5000);
    let request = format!("POST /v1/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}", big.len());
    assert_error_form("413", &raw(addr, request.as_bytes()), 413, Some("body-too-large"));
    assert_error_form("414", &get(&format!("/v1/records/{}", "a".repeat(10_000))), 414, Some("uri-too-long"));
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_error_form("431 many headers", &raw(addr, format!("GET /v1/status HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes()), 431, Some("headers-too-large"));
    let long = format!("GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\nConnection: close\r\n\r\n", "v".repeat(20_000));
    assert_error_form("431 long header", &raw(addr, long.as_bytes()), 431, Some("headers-too-large"));
    assert_error_form("401", &raw(addr, b"POST /v1/records HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"), 401, Some("unauthorized"));
    assert_error_form("400 bad hash", &get("/v1/records/zz"), 400, Some("bad-hash"));
    a.assert_healthy();
}

#[test]
fn numeric_extremes_are_range_checked_where_they_enter() {
    let mut a = prepare();
    a.start();
    let before = a.status().expect("status")["clock_offset_ms"].as_i64().expect("offset");
    for (body, code) in [
        (json!({"advance_ms": i64::MAX}), "bad-clock"),
        (json!({"advance_ms": -1}), "bad-clock"),
        (json!({"advance_ms": i64::MIN}), "bad-clock"),
        (json!({"advance_ms": u64::MAX}), "bad-json"),
        (json!({"advance_ms": 1e300}), "bad-json"),
    ] {
        let r = a.client().post("/v1/testnet/clock", &body).expect("answer");
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json().expect("json")["code"], code, "{body}");
        a.assert_healthy();
    }
    // Nothing moved; a small step still works.
    let after = a.status().expect("status")["clock_offset_ms"].as_i64().expect("offset");
    assert_eq!(after, before, "a refused move changes nothing");
    let ok = a.client().post("/v1/testnet/clock", &json!({"advance_ms": 1000})).expect("answer");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json().expect("json")["clock_offset_ms"].as_i64(), Some(before + 1000));
    a.assert_healthy();

    // The largest numbers in the other numeric fields: an answer (never a 5xx), and the node
    // lives on; records carrying them are executed by the contract like any other.
    let big = u64::MAX;
    for path in [format!("/v1/blocks/{big}"), format!("/v1/statements/{big}"), format!("/v1/blocks?from={big}&limit=100")] {
        let r = a.client().get(&path).expect("answer");
        assert!(r.status < 500, "{path}: {} {}", r.status, r.body);
    }
    let r = a.client().post("/v1/sales/base", &json!({"gross": "10.00", "points_redeemed": big, "at_ms": big})).expect("answer");
    assert!(r.status < 500, "sales/base: {} {}", r.status, r.body);
    for payload in [
        json!({"kind": "sale", "order": "BIG-1", "gross": "10.00", "points_redeemed": big}),
        json!({"kind": "sale", "order": "BIG-2", "gross": "92233720368547758.07"}),
        json!({"kind": "refer", "code": "REF-BIG", "expires_at_ms": big}),
        json!({"kind": "issue_coupons", "batch": "BIG", "codes": ["CPN-BIG"], "value": {"percent_bps": u32::MAX}, "funding": "issuer", "expires_at_ms": big}),
        json!({"kind": "confirm_payment", "period": big, "payer": a.key.public().to_hex(), "amount": "1.00"}),
    ] {
        let r = a.client().post("/v1/records?wait=true", &json!({"payload": payload})).expect("answer");
        assert!(r.status < 500, "{payload}: {} {}", r.status, r.body);
        a.assert_healthy();
    }
    a.kill();

    // The same numbers in config.toml are config errors (exit 1), never a panic (101).
    let config = std::fs::read_to_string(a.home.join("config.toml")).expect("config");
    for (key, value) in [
        ("clock_offset_ms", "9223372036854775807"),
        ("clock_offset_ms", "-9223372036854775808"),
        ("view_timeout_ms", "18446744073709551615"),
        ("empty_block_interval_ms", "18446744073709551615"),
        ("rebroadcast_interval_ms", "18446744073709551615"),
        ("block_time_skew_ms_max", "18446744073709551615"),
        ("api_header_read_timeout_ms", "18446744073709551615"),
        ("api_request_timeout_ms", "18446744073709551615"),
        ("mempool_records_max", "18446744073709551615"),
    ] {
        let edited: String = config
            .lines()
            .map(|l| if l.split(" = ").next() == Some(key) { format!("{key} = {value}") } else { l.to_owned() })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(a.home.join("config.toml"), edited).expect("write");
        let out = Command::new(PLAZA).args(["start", "--home"]).arg(&a.home).output().expect("start");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{key} = {value}: {err}");
        assert!(err.contains("config.toml") && err.contains(key), "{key} = {value}: {err}");
    }
}

#[test]
fn refusals_are_typed_and_batched_non_members_are_reported() {
    let mut a = prepare();
    a.start();
    let outsider = Keypair::generate();
    let card = |n: u8| Payload::IssueCard { card: CardId([n; 16]) };
    let member_record = a.sign(&a.key, card(1));
    let outsider_record = a.sign(&outsider, card(2));
    let answer = a
        .client()
        .post("/v1/records", &json!({"records": [hex::encode(member_record.to_bytes()), hex::encode(outsider_record.to_bytes())]}))
        .expect("submit")
        .ok_json()
        .expect("batch answer");
    let results = answer["results"].as_array().expect("results");
    assert_ne!(results[0]["status"], "refused", "{answer}");
    assert_eq!(results[1]["status"], "refused", "{answer}");
    assert_eq!(results[1]["code"], "not-a-member", "{answer}");
    let r = a.client().post("/v1/records", &json!({"record": hex::encode(outsider_record.to_bytes())})).expect("submit");
    assert_eq!((r.status, r.json().expect("json")["code"].clone()), (400, json!("not-a-member")));
    // The outsider's record went nowhere.
    let r = a.client().get(&format!("/v1/records/{}", outsider_record.id())).expect("query");
    assert_eq!(r.status, 404);
    a.assert_healthy();
}

#[test]
fn the_api_default_base_is_what_the_rules_allow() {
    let mut a = prepare_with(&["--demo"]);
    a.start();
    // Iron Gym (merchant 1, no node of its own) issues coupons it funds, redeemable anywhere.
    let gym = Keypair::load(&a.key_files[1]).expect("gym key");
    let expires = a.status().and_then(|s| s["clock_ms"].as_u64()).expect("clock") + 30 * 86_400_000;
    let coupons: plaza_node::json::PayloadJson = serde_json::from_value(json!({
        "kind": "issue_coupons", "batch": "GYM-ANYWHERE", "codes": ["CPN-GYM-0001"], "value": {"fixed": "20.00"},
        "funding": "issuer", "expires_at_ms": expires,
    }))
    .expect("payload");
    let record = a.sign(&gym, coupons.to_payload().expect("payload"));
    let issued = a.client().post("/v1/records?wait=true", &json!({"record": hex::encode(record.to_bytes())})).expect("submit").ok_json().expect("issued");
    assert_eq!(issued["receipt"]["name"], "accepted", "{issued}");
    // The node's merchant (Hot Pot Palace) sells with that coupon and names no base: the node
    // fills in the largest the rules allow (gross less the gym-funded coupon), not the gross.
    let sale = a
        .client()
        .post("/v1/records?wait=true", &json!({"payload": {"kind": "sale", "order": "BASE-1", "gross": "100.00", "coupon_codes": ["CPN-GYM-0001"]}}))
        .expect("submit")
        .ok_json()
        .expect("sale");
    assert_eq!(sale["status"], "final", "{sale}");
    assert_eq!(sale["receipt"]["name"], "accepted", "not base-too-high: {sale}");
    let stored = a.client().get(&format!("/v1/records/{}", sale["id"].as_str().expect("id"))).expect("record").ok_json().expect("record");
    assert_eq!(stored["record"]["payload"]["base"], "80.00", "{stored}");
    a.assert_healthy();
}

#[test]
fn metrics_show_the_height_after_a_restart() {
    let mut a = prepare();
    a.start();
    wait_until("a few blocks", Duration::from_secs(60), || a.height() >= 3);
    a.kill();
    // No block soon after the restart: the height the metrics show is the stored one.
    a.set_config(|c| {
        c.empty_block_interval_ms = 30_000;
        c.view_timeout_ms = 60_000;
    });
    a.start();
    // Read between two status reads, in case a block left notarized before the kill finalizes.
    let (low, metric, high) = (a.height(), a.metric("plaza_height"), a.height());
    assert!(low >= 3);
    assert!(low as f64 <= metric && metric <= high as f64, "metrics after a restart: {metric}, status {low}..{high}");
}

#[test]
fn submit_exit_codes_follow_the_outcome_and_broken_pipes_are_quiet() {
    let mut a = prepare();
    a.start();
    let home = a.home.to_str().expect("home").to_owned();
    let sale = |order: &str| a.plaza(&["submit", "--home", &home, "--wait", "sale", "--order", order, "--gross", "10.00"]);
    let first = sale("H-1");
    assert!(first.status.success(), "first sale: {}{}", String::from_utf8_lossy(&first.stdout), String::from_utf8_lossy(&first.stderr));
    // A POS retry of the same sale answers the original and succeeds (issue 16)...
    let retry = sale("H-1");
    assert_eq!(retry.status.code(), Some(0), "{}", String::from_utf8_lossy(&retry.stderr));
    assert!(String::from_utf8_lossy(&retry.stdout).contains("already on the ledger"), "{}", String::from_utf8_lossy(&retry.stdout));
    // ...a different sale under the same order id is refused (exit 5, the node's refusal)...
    let conflicting = a.plaza(&["submit", "--home", &home, "--wait", "sale", "--order", "H-1", "--gross", "11.00"]);
    let err = String::from_utf8_lossy(&conflicting.stderr);
    assert_eq!(conflicting.status.code(), Some(5), "a conflicting order: {err}");
    assert!(err.contains("conflicting-order"), "{err}");
    // ...and a record the ledger finalizes with a rejection exits 4.
    let rejected = a.plaza(&["submit", "--home", &home, "--wait", "refund", "--order", "NO-SUCH", "--refund-id", "R-1", "--amount", "1.00"]);
    let err = String::from_utf8_lossy(&rejected.stderr);
    assert_eq!(rejected.status.code(), Some(4), "a rejected record exits 4: {err}");
    assert!(err.contains("unknown-order"), "{err}");
    // A negative amount: a clear message, not clap's "unexpected argument".
    let negative = a.plaza(&["submit", "--home", &home, "sale", "--order", "H-2", "--gross", "-5.00"]);
    let err = String::from_utf8_lossy(&negative.stderr);
    assert!(!negative.status.success());
    assert!(err.contains("negative") && !err.contains("unexpected argument"), "{err}");
    // A refusal by the node exits 5; an unreachable node 6.
    let refused = a.plaza(&["query", "--home", &home, "blocks", "--limit", "1000"]);
    assert_eq!(refused.status.code(), Some(5), "{}", String::from_utf8_lossy(&refused.stderr));
    let unreachable = a.plaza(&["query", "--api", "127.0.0.1:1", "status"]);
    assert_eq!(unreachable.status.code(), Some(6), "{}", String::from_utf8_lossy(&unreachable.stderr));
    // `plaza query blocks | head`: the reader goes away before plaza writes.
    for args in [vec!["query", "--home", &home, "blocks"], vec!["query", "--home", &home, "blocks", "--json"]] {
        let mut child = Command::new(PLAZA).args(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: quiet, but: {err}");
    }
    a.assert_healthy();
}

#[test]
fn start_on_a_running_home_says_so() {
    let mut a = prepare();
    a.start();
    let out = Command::new(PLAZA).args(["start", "--home"]).arg(&a.home).output().expect("second start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("already running") && !err.contains("LOCK"), "{err}");
    a.assert_healthy();
}

fn init(a: &Alliance, home: &Path, key: &Path, extra: &[&str]) -> Output {
    Command::new(PLAZA)
        .args(["init", "--home"])
        .arg(home)
        .arg("--genesis")
        .arg(&a.genesis)
        .arg("--key")
        .arg(key)
        // The genesis lists the member node's network key: init checks it.
        .arg("--network-key")
        .arg(a.home.join("keys").join("network.key"))
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"])
        .args(extra)
        .output()
        .expect("plaza init")
}

fn leftovers(home: &Path) -> Vec<String> {
    match std::fs::read_dir(home) {
        Ok(d) => d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn init_checks_its_inputs_and_leaves_nothing_behind() {
    let a = prepare();
    let dir = a.dir.path();
    let home = dir.join("new-home");
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();

    let out = init(&a, &home, &a.key_file, &["--peer", "not-a-multiaddr"]);
    assert!(!out.status.success() && stderr(&out).contains("not a multiaddr"), "{}", stderr(&out));
    assert!(leftovers(&home).is_empty(), "left behind: {:?}", leftovers(&home));

    let stranger = dir.join("stranger.key");
    Keypair::generate().save(&stranger).expect("save");
    let out = init(&a, &home, &stranger, &[]);
    assert!(!out.status.success() && stderr(&out).contains("not an active member"), "{}", stderr(&out));
    assert!(leftovers(&home).is_empty(), "left behind: {:?}", leftovers(&home));

    let random = dir.join("random.bin");
    std::fs::write(&random, (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>()).expect("write");
    let out = Command::new(PLAZA).args(["init", "--home"]).arg(&home).arg("--genesis").arg(&random).arg("--key").arg(&a.key_file).output().expect("init");
    assert!(!out.status.success() && stderr(&out).contains("not a genesis file"), "{}", stderr(&out));

    let out = init(&a, &home, dir, &[]);
    assert!(!out.status.success() && stderr(&out).contains("is a directory"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("readable by others"), "{}", stderr(&out));
    assert!(leftovers(&home).is_empty(), "left behind: {:?}", leftovers(&home));

    // The corrected retry works, and warns about a non-loopback API address.
    let out = Command::new(PLAZA)
        .args(["init", "--home"])
        .arg(&home)
        .arg("--genesis")
        .arg(&a.genesis)
        .arg("--key")
        .arg(&a.key_file)
        .arg("--network-key")
        .arg(a.home.join("keys").join("network.key"))
        .args(["--listen", "/ip4/127.0.0.1/tcp/0", "--api", "0.0.0.0:7999"])
        .output()
        .expect("init");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning") && stderr(&out).contains("not loopback"), "{}", stderr(&out));
    assert!(home.join("config.toml").exists());
}

#[test]
fn a_member_admitted_by_vote_can_init_a_node() {
    let mut a = prepare();
    a.start();
    let newcomer = Keypair::generate();
    let newcomer_file = a.dir.path().join("newcomer.key");
    newcomer.save(&newcomer_file).expect("save");
    let category = a.client().get("/v1/merchants").expect("merchants").ok_json().expect("merchants")["merchants"][0]["category"].as_str().expect("category").to_owned();
    let submit = |payload: Value| a.client().post("/v1/records?wait=true", &json!({"payload": payload})).expect("submit").ok_json().expect("final");
    let proposal = submit(json!({"kind": "propose", "action": {"type": "admit", "profile": {"key": newcomer.public().to_hex(), "name": "Newcomer", "category": category, "district": "riverside"}}}));
    assert_eq!(proposal["receipt"]["name"], "accepted", "{proposal}");
    // One member: its proposal carries its own vote, so it passed as it was finalized.
    wait_until("the newcomer is a member", Duration::from_secs(30), || {
        a.client().get(&format!("/v1/merchants/{}", newcomer.public().to_hex())).map(|r| r.status == 200).unwrap_or(false)
    });

    let home = a.dir.path().join("newcomer-home");
    let out = init(&a, &home, &newcomer_file, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("genesis"), "by the genesis alone the newcomer is no member: {err}");
    let node = a.addr().to_string();
    let out = init(&a, &home, &newcomer_file, &["--members-from-node", &node]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // From an export of the chain instead (the node stopped: the export reads its store).
    a.kill();
    let export = a.dir.path().join("chain.export");
    let out = a.plaza(&["export", "--home", a.home.to_str().expect("home"), "-o", export.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let home2 = a.dir.path().join("newcomer-home-2");
    let out = init(&a, &home2, &newcomer_file, &["--members-from-export", export.to_str().expect("path")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stranger = a.dir.path().join("stranger.key");
    Keypair::generate().save(&stranger).expect("save");
    let out = init(&a, &a.dir.path().join("stranger-home"), &stranger, &["--members-from-export", export.to_str().expect("path")]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not an active member"));
}
