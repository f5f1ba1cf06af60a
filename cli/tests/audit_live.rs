//! The auditor's tools beside a running node (issue 12): `plaza verify`, `export`, `proof` and
//! `settle` read the store of a node that keeps running (a RocksDB reader, no lock);
//! `plaza verify-proof` reads the JSON `GET /v1/proofs/ID` returns; `plaza verify --against`
//! compares a chain with the node's signed checkpoint and calls a withheld tail an error.
//!
//! One validator on loopback. Everything polls with deadlines; nothing sleeps to hide a race.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::policy::DAY_MS;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_testnet::local::{Layout, LocalTestnet};
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");

fn plaza(args: &[&str]) -> Output {
    Command::new(PLAZA).args(args).output().expect("plaza runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn ok(out: &Output) -> &Output {
    assert!(out.status.success(), "exit {:?}\n{}\n{}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submits `count` card issues and waits for them to be final; returns their ids.
fn submit(net: &LocalTestnet, tag: u8, count: usize) -> Vec<String> {
    let client = net.nodes[0].client().expect("started");
    let now = plaza_testnet::api::status(&client).expect("status").clock_ms;
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let k = &net.merchants[i % net.merchants.len()].keypair;
            let mut card = [0u8; 16];
            card[0] = tag;
            card[1..9].copy_from_slice(&(i as u64).to_be_bytes());
            Record::sign(RecordBody { alliance: net.alliance, signer: k.public(), created_at_ms: now, payload: Payload::IssueCard { card: CardId(card) } }, k)
        })
        .collect();
    let hexes: Vec<String> = records.iter().map(|r| hex::encode(r.to_bytes())).collect();
    let answer = client.post("/v1/records?wait=true", &json!({"records": hexes})).expect("submit").ok_json().expect("submit ok");
    let results = answer["results"].as_array().expect("results");
    assert!(results.iter().all(|r| r["status"] == "final"), "{answer}");
    results.iter().map(|r| r["id"].as_str().expect("id").to_owned()).collect()
}

#[test]
fn the_auditor_tools_run_beside_a_live_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut net = LocalTestnet::prepare(&dir.path().join("net"), 1, false, Path::new(PLAZA), Layout::Loopback).expect("prepare");
    net.start(0).expect("start the node");
    let height = |net: &LocalTestnet| net.nodes[0].height().unwrap_or(0);
    wait_until("the validator finalizes a block", Duration::from_secs(60), || height(&net) >= 1);
    let ids = submit(&net, 1, 12);
    let home = net.nodes[0].home.clone();
    let home_arg = home.to_str().expect("utf-8 path");
    let api = format!("http://{}", net.nodes[0].api.expect("bound"));
    let file = |name: &str| dir.path().join(name).to_str().expect("utf-8 path").to_owned();

    // The whole chain, from the running node's store.
    let report = json_of(ok(&plaza(&["verify", "--home", home_arg, "--json"])));
    assert!(report["blocks"].as_u64().expect("blocks") >= 2, "{report}");
    // ... and compared with its signed checkpoint, fetched first: the store read afterwards holds it.
    let report = json_of(ok(&plaza(&["verify", "--home", home_arg, "--against", &api, "--json"])));
    assert_eq!(report["tips"].as_array().map(Vec::len), Some(1), "{report}");
    let tip_id = report["tip_id"].as_str().expect("tip id").to_owned();
    ok(&plaza(&["verify", "--home", home_arg, "--expect-tip", &tip_id]));

    // An export while it runs verifies.
    let whole = file("whole.plaza-export");
    ok(&plaza(&["export", "--home", home_arg, "-o", &whole]));
    ok(&plaza(&["verify", "--export", &whole]));
    let part = file("part.plaza-export");
    ok(&plaza(&["export", "--home", home_arg, "--to", "1", "-o", &part]));
    let part_tip = json_of(ok(&plaza(&["verify", "--export", &part, "--json"])))["tip_height"].as_u64().expect("tip");

    // A proof, from the store and from the API, both checked offline.
    let proof = file("record.plaza-proof");
    ok(&plaza(&["proof", &ids[3], "--home", home_arg, "-o", &proof]));
    ok(&plaza(&["verify-proof", &proof]));
    let answer = net.nodes[0].client().expect("client").get(&format!("/v1/proofs/{}", ids[3])).expect("proof").ok_json().expect("proof json");
    let from_api = file("record.json");
    std::fs::write(&from_api, answer.to_string()).expect("write");
    let proven = json_of(ok(&plaza(&["verify-proof", &from_api, "--json"])));
    assert_eq!(proven["record"].as_str(), Some(ids[3].as_str()));

    // A period closes (the testnet clock moves two days on); settle recomputes it beside the node.
    let client = net.nodes[0].client().expect("client");
    client.post("/v1/testnet/clock", &json!({"advance_ms": 2 * DAY_MS})).expect("clock").ok_json().expect("clock moved");
    submit(&net, 2, 3);
    let settled = json_of(ok(&plaza(&["settle", "--home", home_arg, "--period", "0", "--json"])));
    assert_eq!(settled["matches_stored"], true, "{settled}");

    // A state item (period 0's statement summary), proven from the store and from the API,
    // both checked offline; a flipped byte fails.
    let state_file = file("statement.plaza-proof");
    ok(&plaza(&["proof", "--state", "statement:0", "--home", home_arg, "-o", &state_file]));
    let proven = json_of(ok(&plaza(&["verify-proof", &state_file, "--json"])));
    assert_eq!((proven["kind"].as_str(), proven["table"].as_str()), (Some("state"), Some("statements")), "{proven}");
    let answer = client.get("/v1/proofs/state/statement/0").expect("state proof").ok_json().expect("state proof json");
    let from_api = file("statement.json");
    std::fs::write(&from_api, answer.to_string()).expect("write");
    let proven = json_of(ok(&plaza(&["verify-proof", &from_api, "--json"])));
    assert_eq!(proven["key"].as_str(), Some("0000000000000000"), "{proven}");
    let mut bytes = std::fs::read(&state_file).expect("read");
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    std::fs::write(&state_file, &bytes).expect("write");
    assert_eq!(plaza(&["verify-proof", &state_file]).status.code(), Some(3), "a flipped byte of the roots fails");

    // The node has gone on: the partial export withholds its tail, by the node's own checkpoint.
    wait_until("the node passes the partial export", Duration::from_secs(60), || height(&net) > part_tip);
    let out = plaza(&["verify", "--export", &part, "--against", &api, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
    let report = json_of(&out);
    assert_eq!(report["failure"]["check"], "tip", "{report}");
    assert!(report["failure"]["found"].as_str().expect("found").contains("withheld"), "{report}");
    let out = plaza(&["verify", "--export", &part, "--expect-tip", &tip_id]);
    assert_eq!(out.status.code(), Some(3));
    net.stop_all();
}
