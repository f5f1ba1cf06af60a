//! The API's two authorities (issue 18, docs/NODE.md "API authority"), on a real `plaza`
//! process: a guest token submits records already signed by their merchant, rate-limited per
//! signer, and can never make the node sign as its own merchant; that needs the node's token.
//!
//! Everything polls with deadlines; nothing sleeps to hide a race.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use serde_json::{json, Value};

const PLAZA: &str = env!("CARGO_BIN_EXE_plaza");
const GUEST_TOKEN: &str = "guest-token-for-a-merchant-without-a-node-0001";

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {}s waiting for: {what}", timeout.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn issue_card(alliance: Hash, key: &Keypair, now_ms: u64, n: u8) -> String {
    let body = RecordBody { alliance, signer: key.public(), created_at_ms: now_ms, payload: Payload::IssueCard { card: CardId([n; 16]) } };
    hex::encode(Record::sign(body, key).to_bytes())
}

#[test]
fn a_guest_token_submits_signed_records_but_cannot_make_the_node_sign() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(PLAZA)
        .args(["testnet", "--prepare-only", "--demo", "--json", "--nodes", "1", "--dir"])
        .arg(dir.path().join("net"))
        .output()
        .expect("plaza testnet --prepare-only");
    assert!(out.status.success(), "prepare failed: {}", String::from_utf8_lossy(&out.stderr));
    let desc: Value = serde_json::from_slice(&out.stdout).expect("testnet json");
    let node = &desc["nodes"][0];
    let home = PathBuf::from(node["home"].as_str().expect("home"));
    let alliance = Hash::from_hex(desc["alliance_id"].as_str().expect("alliance")).expect("hash");
    // Merchant 1 runs no node: it is the guest.
    let guest_key = plaza_ledger::Keypair::load(std::path::Path::new(desc["merchants"][1]["key_file"].as_str().expect("key file"))).expect("key");
    let config_path = home.join("config.toml");
    let config = std::fs::read_to_string(&config_path).expect("config");
    let config = config
        .replace("api_guest_tokens = []", &format!("api_guest_tokens = [\"{GUEST_TOKEN}\"]"))
        .replace("api_guest_records_per_signer_per_minute = 600", "api_guest_records_per_signer_per_minute = 5");
    assert!(config.contains(GUEST_TOKEN) && config.contains("= 5"), "config.toml lists the guest keys:\n{config}");
    std::fs::write(&config_path, config).expect("write config");

    let log = std::fs::File::create(home.join("node.log")).expect("log");
    let _node = Running(
        Command::new(PLAZA)
            .args(["start", "--home"])
            .arg(&home)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("plaza start"),
    );
    // The node binds its API port itself and writes the address it got into its home.
    let addr_file = home.join("api.addr");
    wait_until("the node writes its API address", Duration::from_secs(30), || addr_file.exists());
    let api: std::net::SocketAddr = std::fs::read_to_string(&addr_file).expect("api.addr").trim().parse().expect("addr");
    let owner = Client::new(api, Some(node["token"].as_str().expect("token").to_owned()));
    let guest = Client::new(api, Some(GUEST_TOKEN.to_owned()));
    let anonymous = Client::new(api, None);
    let height = || owner.get("/v1/status").ok().and_then(|r| r.ok_json().ok()).and_then(|s| s["height"].as_u64()).unwrap_or(0);
    wait_until("the node finalizes", Duration::from_secs(60), || height() >= 1);
    let now = owner.get("/v1/status").expect("status").ok_json().expect("status")["clock_ms"].as_u64().expect("clock");

    // The guest cannot make the node sign: 403, and nothing is signed.
    let guest_card = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    let refused = guest.post("/v1/records?wait=true", &json!({"payload": {"kind": "issue_card", "card": guest_card}})).expect("request");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json().expect("json")["code"], "node-token-required");
    // Nor can anybody without a token, or with a wrong one.
    let r = anonymous.post("/v1/records", &json!({"payload": {"kind": "issue_card", "card": guest_card}})).expect("request");
    assert_eq!((r.status, r.json().expect("json")["code"].clone()), (401, json!("unauthorized")));
    let r = Client::new(api, Some("not-a-token-of-this-node-at-all-000000".into()))
        .post("/v1/records", &json!({"record": issue_card(alliance, &guest_key, now, 9)}))
        .expect("request");
    assert_eq!((r.status, r.json().expect("json")["code"].clone()), (403, json!("forbidden")));
    // The testnet clock moves only with the node's token.
    let r = guest.post("/v1/testnet/clock", &json!({"advance_ms": 1000})).expect("request");
    assert_eq!(r.status, 403, "{}", r.body);

    // A record the guest's merchant signed is accepted and final.
    let answer = guest.post("/v1/records?wait=true", &json!({"record": issue_card(alliance, &guest_key, now, 1)})).expect("submit");
    let answer = answer.ok_json().expect("guest submission accepted");
    assert_eq!(answer["status"], "final", "{answer}");
    assert_eq!(answer["receipt"]["name"], "accepted", "{answer}");
    // Five a minute: one used, so five more are refused whole, four more pass.
    let batch = |from: u8, n: u8| json!({"records": (from..from + n).map(|i| issue_card(alliance, &guest_key, now, i)).collect::<Vec<_>>()});
    let r = guest.post("/v1/records", &batch(10, 5)).expect("request");
    assert_eq!((r.status, r.json().expect("json")["code"].clone()), (429, json!("rate-limited")), "{}", r.body);
    let r = guest.post("/v1/records", &batch(20, 4)).expect("request");
    assert_eq!(r.status, 200, "{}", r.body);
    // The node's own token is not limited and may make the node sign.
    let mine = owner.post("/v1/records?wait=true", &json!({"payload": {"kind": "issue_card", "card": "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"}})).expect("submit");
    assert_eq!(mine.ok_json().expect("owner submission")["receipt"]["name"], "accepted");
    // Finalized after the guest's refused request: had the node signed it, it would be here.
    assert_eq!(owner.get(&format!("/v1/cards/{guest_card}")).expect("card").status, 404, "the node never signed the guest's payload");
    let card = owner.get("/v1/cards/b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2").expect("card").ok_json().expect("card");
    assert_eq!(card["home"].as_str(), Some(desc["merchants"][0]["key"].as_str().expect("key")), "{card}");
}
