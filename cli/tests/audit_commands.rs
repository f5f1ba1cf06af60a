//! The auditor's commands end to end (issue 6): a store filled by the deterministic chain
//! builder is exported, verified (from the store and from the export), a record is proven and
//! the proof checked, a period is recomputed; damage makes `verify` exit 3.

use std::path::Path;
use std::process::{Command, Output};

use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::codec::Encode;
use plaza_ledger::policy::DAY_MS;
use plaza_ledger::store::{BlockWrite, Store};
use serde_json::Value;

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");

fn plaza(args: &[&str]) -> Output {
    Command::new(PLAZA).args(args).output().expect("plaza runs")
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON on stdout ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A node home whose store holds 6 blocks, one of which closes a period. Returns a record id.
fn home(dir: &Path) -> String {
    let store = Store::create(&dir.join("data"), &ChainBuilder::new(4, 4).genesis().clone()).expect("store");
    let mut b = ChainBuilder::new(4, 4);
    let mut record = String::new();
    for h in 1..=6 {
        if h == 4 {
            b.advance(DAY_MS);
        }
        let records = b.sales(6);
        let entry = b.push(records).expect("valid");
        if h == 2 {
            record = entry.block.block.records[3].id().to_string();
        }
        let statement = entry.statement.as_ref().map(|s| (s.period, s.to_bytes()));
        store
            .append(BlockWrite {
                block: &entry.block,
                receipts: &entry.receipts,
                statement: statement.as_ref().map(|(p, bytes)| (*p, bytes.as_slice())),
                state_snapshot: None,
            })
            .expect("append");
    }
    record
}

#[test]
fn export_verify_proof_and_settle() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = dir.path().join("node");
    let record = home(&node);
    let node_arg = node.to_str().expect("utf-8 path");
    let export = dir.path().join("chain.plaza-export");
    let export_arg = export.to_str().expect("utf-8 path");

    let out = plaza(&["export", "--home", node_arg, "-o", export_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    for source in [["--export", export_arg], ["--home", node_arg]] {
        let out = plaza(&["verify", source[0], source[1], "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report = json_of(&out);
        assert_eq!(report["ok"], true);
        assert_eq!(report["blocks"], 6);
        assert_eq!(report["records"], 6 * 6 + 4);
        assert_eq!(report["statements"], 1);
    }

    // A partial export starts from a checkpoint and verifies.
    let part = dir.path().join("part.plaza-export");
    let out = plaza(&["export", "--home", node_arg, "--from", "3", "--to", "5", "-o", part.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_of(&plaza(&["verify", "--export", part.to_str().expect("utf-8"), "--json"]));
    assert_eq!((report["ok"].clone(), report["start_height"].clone(), report["tip_height"].clone()), (Value::Bool(true), 2.into(), 5.into()));

    // Damage: one flipped byte in the middle of the file.
    let mut bytes = std::fs::read(&export).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    let bad = dir.path().join("bad.plaza-export");
    std::fs::write(&bad, bytes).expect("write");
    let out = plaza(&["verify", "--export", bad.to_str().expect("utf-8"), "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json_of(&out)["failure"]["check"], "file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");

    // One record, proven.
    let proof = dir.path().join("record.plaza-proof");
    let out = plaza(&["proof", &record, "--home", node_arg, "-o", proof.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = plaza(&["verify-proof", proof.to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proven = json_of(&out);
    assert_eq!((proven["record"].as_str(), proven["height"].clone(), proven["index"].clone()), (Some(record.as_str()), 2.into(), 3.into()));
    let mut bytes = std::fs::read(&proof).expect("read");
    let last = bytes.len() - 40;
    bytes[last] ^= 1;
    std::fs::write(&proof, bytes).expect("write");
    assert_eq!(plaza(&["verify-proof", proof.to_str().expect("utf-8")]).status.code(), Some(3));

    // The period closed at block 4, recomputed offline, matches the stored statement.
    let out = plaza(&["settle", "--home", node_arg, "--period", "0", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let statement = json_of(&out);
    assert_eq!((statement["period"].clone(), statement["matches_stored"].clone()), (0.into(), Value::Bool(true)));
    let out = plaza(&["settle", "--home", node_arg, "--period", "9"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_auditor_command_has_an_example_and_bad_input_is_one_line() {
    for command in ["verify", "export", "proof", "verify-proof", "settle"] {
        let out = plaza(&[command, "--help"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("Example: plaza"), "{command} --help shows an example");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"not an export at all").expect("write");
    let out = plaza(&["verify", "--export", garbage.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a Plaza export"));
    let out = plaza(&["verify-proof", garbage.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3));
    let out = plaza(&["proof", "zz", "--home", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
}

/// A node home whose blocks 2, 3 and 4 are final through block 5's certificate (as consensus
/// stores them when block 5's finalization comes first). Returns a record id of block 3.
fn home_final_through_a_descendant(dir: &Path) -> String {
    let mut b = ChainBuilder::new(4, 4);
    let store = Store::create(&dir.join("data"), b.genesis()).expect("store");
    let mut blocks = Vec::new();
    for h in 1..=6 {
        if h == 3 {
            b.skip_views(1);
        }
        let records = b.sales(4);
        blocks.push(b.push(records).expect("valid"));
    }
    plaza_ledger::audit::chain::finalize_through(&mut blocks[1..5]);
    for entry in &blocks {
        store
            .append(BlockWrite { block: &entry.block, receipts: &entry.receipts, statement: None, state_snapshot: None })
            .expect("append");
    }
    blocks[2].block.block.records[1].id().to_string()
}

#[test]
fn blocks_final_through_a_descendant_export_verify_and_prove() {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = dir.path().join("node");
    let record = home_final_through_a_descendant(&node);
    let node_arg = node.to_str().expect("utf-8 path");

    let out = plaza(&["verify", "--home", node_arg, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json_of(&out)["blocks"], 6);

    // --to 3 reaches block 5, whose certificate finalizes blocks 2 to 4; from a checkpoint too.
    for (from, to) in [("1", "3"), ("3", "3")] {
        let part = dir.path().join(format!("part-{from}.plaza-export"));
        let out = plaza(&["export", "--home", node_arg, "--from", from, "--to", to, "-o", part.to_str().expect("utf-8")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains(&format!("exported blocks {from}..=5")) && said.contains("past --to 3"), "{said}");
        let out = plaza(&["verify", "--export", part.to_str().expect("utf-8"), "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(json_of(&out)["tip_height"], 5);
    }
    // A range that ends on a block with its own certificate is not extended.
    let part = dir.path().join("part-own.plaza-export");
    let out = plaza(&["export", "--home", node_arg, "--to", "5", "-o", part.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("past --to"));

    // The proof of a record in block 3 carries the headers of blocks 4 and 5.
    let proof = dir.path().join("record.plaza-proof");
    let out = plaza(&["proof", &record, "--home", node_arg, "-o", proof.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = plaza(&["verify-proof", proof.to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let proven = json_of(&out);
    assert_eq!((proven["height"].clone(), proven["finalized_through"]["height"].clone()), (3.into(), 5.into()));

    // The API's JSON form of the same proof is read as it is; a JSON without it is refused.
    let bytes = std::fs::read(&proof).expect("read");
    let as_json = dir.path().join("record.json");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&as_json, serde_json::json!({ "record": record, "proof": hex }).to_string()).expect("write");
    let out = plaza(&["verify-proof", as_json.to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_of(&out)["record"].as_str(), Some(record.as_str()));
    std::fs::write(&as_json, r#"{"record": "abc"}"#).expect("write");
    let out = plaza(&["verify-proof", as_json.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a \"proof\" string"), "{}", String::from_utf8_lossy(&out.stderr));
}
