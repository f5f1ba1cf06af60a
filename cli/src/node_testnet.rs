//! `plaza testnet` (N node processes on loopback, optionally playing an alliance day) and
//! `plaza bench` (the same testnet under rising load, against the ed25519 ceiling).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::codec::Encode;
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::keys::{domain, verify_batch, BatchItem};
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{Policy, DAY_MS};
use plaza_ledger::record::{CardId, MerchantProfile, Payload, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use plaza_node::config::NodeConfig;
use serde_json::{json, Value};

use crate::node::sign_payload;
use crate::output::{ctx, print_json, CliError, CliResult};

#[derive(Args)]
#[command(after_help = "Examples:\n  plaza testnet --nodes 4 --demo --dir /tmp/alliance\n  plaza testnet --nodes 4            # runs until Ctrl-C\n  plaza testnet --nodes 4 --prepare-only --dir /tmp/t --json")]
pub struct TestnetArgs {
    /// Validating nodes to start (at least 1; 4 tolerates one fault).
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Play a realistic alliance day, print the statement and payment plan, check the chains and stop.
    #[arg(long)]
    pub demo: bool,
    /// Directory for keys, genesis and node homes (created; must be empty or absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write the homes and `testnet.json`, start nothing.
    #[arg(long)]
    pub prepare_only: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
#[command(after_help = "Example: plaza bench --nodes 4 --step-seconds 6 --rates 200,500,1000,2000")]
pub struct BenchArgs {
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Offered loads, records per second, in order.
    #[arg(long, value_delimiter = ',', default_value = "200,500,1000,2000,4000")]
    pub rates: Vec<u64>,
    /// Seconds per rate step.
    #[arg(long, default_value_t = 6)]
    pub step_seconds: u64,
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// One merchant of the local alliance.
pub struct LocalMerchant {
    pub name: &'static str,
    pub category: &'static str,
    pub keypair: Keypair,
    pub network: Option<Keypair>,
}

/// One node of the local alliance.
pub struct LocalNode {
    pub home: PathBuf,
    pub api: SocketAddr,
    pub listen: String,
    pub token: String,
    pub merchant: usize,
    pub child: Option<Child>,
}

impl LocalNode {
    pub fn client(&self) -> Client {
        Client::new(self.api, Some(self.token.clone()))
    }
}

pub struct LocalTestnet {
    pub dir: PathBuf,
    pub merchants: Vec<LocalMerchant>,
    pub nodes: Vec<LocalNode>,
    pub alliance: Hash,
}

const DEMO_MERCHANTS: [(&str, &str); 6] = [
    ("Hot Pot Palace", "restaurant"),
    ("Iron Gym", "fitness"),
    ("Little Oxford English", "education"),
    ("FreshMart", "grocery"),
    ("Noodle House", "restaurant"),
    ("Starlight Cinema", "entertainment"),
];

fn free_port() -> Result<u16, CliError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ctx("finding a free port"))?;
    Ok(listener.local_addr().map_err(ctx("finding a free port"))?.port())
}

fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn clone_key(k: &Keypair) -> Result<Keypair, CliError> {
    Keypair::from_secret(&k.secret_bytes()).map_err(ctx("key"))
}

impl LocalTestnet {
    /// Keys, genesis and node homes in `dir`. With `demo`, six merchants of five categories
    /// (two competing restaurants); the first `nodes` merchants run validating nodes.
    pub fn prepare(dir: &Path, nodes: usize, demo: bool) -> Result<LocalTestnet, CliError> {
        if nodes == 0 || nodes > 64 {
            return Err(CliError::new("--nodes must be 1 to 64"));
        }
        if dir.exists() && std::fs::read_dir(dir).map_err(ctx(dir.display().to_string()))?.next().is_some() {
            return Err(CliError::new(format!("{} is not empty; give an empty or new --dir", dir.display())));
        }
        let keys_dir = dir.join("keys");
        std::fs::create_dir_all(&keys_dir).map_err(ctx(format!("creating {}", keys_dir.display())))?;
        let count = if demo { nodes.max(DEMO_MERCHANTS.len()) } else { nodes };
        let mut merchants = Vec::new();
        for i in 0..count {
            let (name, category) = DEMO_MERCHANTS.get(i).copied().unwrap_or(("Corner Shop", "retail"));
            merchants.push(LocalMerchant {
                name,
                category,
                keypair: Keypair::generate(),
                network: (i < nodes).then(Keypair::generate),
            });
        }
        let now = wall_ms();
        let mut categories: Vec<Named> = merchants.iter().map(|m| Named { code: m.category.into(), name: m.category.into() }).collect();
        categories.sort();
        categories.dedup();
        let mut members: Vec<MerchantProfile> = merchants
            .iter()
            .enumerate()
            .map(|(i, m)| MerchantProfile {
                key: m.keypair.public(),
                name: if i < DEMO_MERCHANTS.len() { m.name.to_string() } else { format!("{} {i}", m.name) },
                category: m.category.into(),
                district: "riverside".into(),
                latitude_e6: 31_230_416 + i as i32 * 100,
                longitude_e6: 121_473_701 + i as i32 * 100,
                network_key: m.network.as_ref().map(Keypair::public),
            })
            .collect();
        members.sort_by_key(|m| m.key);
        let validators = ValidatorSet::new(
            merchants
                .iter()
                .filter_map(|m| m.network.as_ref().map(|n| Validator { key: m.keypair.public(), network_key: n.public() }))
                .collect(),
        )
        .map_err(ctx("validator set"))?;
        let mut policy = Policy::default_v1(now);
        if demo {
            // A day in minutes: items lock one day after their event, so a clock moved two
            // days forward shows locking, statements and clawbacks (docs/NODE.md).
            policy.lock_days = 1;
            policy.refund_window_days = 1;
            policy.points_hold_days = 0;
            policy.points_validity_days = 30;
            policy.min_payout = Amount::from_cents(100).map_err(CliError::new)?;
        }
        let genesis = Genesis {
            name: if demo { "Riverside Merchants Alliance".into() } else { "Local Plaza Testnet".into() },
            currency: "CNY".into(),
            utc_offset_minutes: 480,
            time_ms: now.saturating_sub(2_000),
            categories,
            districts: vec![Named { code: "riverside".into(), name: "Riverside".into() }],
            members,
            validators,
            policy,
        };
        genesis.validate().map_err(ctx("genesis"))?;
        let genesis_path = dir.join("genesis.bin");
        std::fs::write(&genesis_path, genesis.to_bytes()).map_err(ctx("writing genesis.bin"))?;
        let mut key_paths = Vec::new();
        for (i, m) in merchants.iter().enumerate() {
            let path = keys_dir.join(format!("merchant{i}.key"));
            m.keypair.save(&path).map_err(ctx("saving a key"))?;
            key_paths.push(path);
        }
        // Ports and peer ids first: every node dials every other one.
        let mut plan = Vec::new();
        for (i, m) in merchants.iter().enumerate().take(nodes) {
            let network = m.network.as_ref().ok_or_else(|| CliError::new("validator without network key"))?;
            let p2p = free_port()?;
            let api = free_port()?;
            let peer_id = plaza_node::net::peer_id_of(&network.public()).ok_or_else(|| CliError::new("network key"))?;
            plan.push((i, p2p, api, format!("/ip4/127.0.0.1/tcp/{p2p}/p2p/{peer_id}")));
        }
        let mut local_nodes = Vec::new();
        for (i, p2p, api, _) in &plan {
            let home = dir.join(format!("node{i}"));
            let network_path = keys_dir.join(format!("network{i}.key"));
            let network = merchants[*i].network.as_ref().ok_or_else(|| CliError::new("validator without network key"))?;
            network.save(&network_path).map_err(ctx("saving a key"))?;
            let peers: Vec<String> = plan.iter().filter(|(j, ..)| j != i).map(|(.., addr)| addr.clone()).collect();
            let listen = format!("/ip4/127.0.0.1/tcp/{p2p}");
            let init = crate::init::InitArgs {
                home: home.clone(),
                genesis: genesis_path.clone(),
                key: key_paths[*i].clone(),
                network_key: Some(network_path),
                listen: listen.clone(),
                api: format!("127.0.0.1:{api}"),
                peers: peers.clone(),
                json: false,
                ..crate::init::InitArgs::default()
            };
            let outcome = crate::init::init_home(&init)?;
            let config = NodeConfig {
                listen: listen.clone(),
                api: format!("127.0.0.1:{api}"),
                peers,
                testnet_clock_api: true,
                ..NodeConfig::default()
            };
            std::fs::write(home.join("config.toml"), config.to_toml()).map_err(ctx("writing config.toml"))?;
            local_nodes.push(LocalNode {
                home,
                api: SocketAddr::from(([127, 0, 0, 1], *api)),
                listen: plan[*i].3.clone(),
                token: outcome.api_token,
                merchant: *i,
                child: None,
            });
        }
        let testnet = LocalTestnet { dir: dir.to_owned(), merchants, nodes: local_nodes, alliance: genesis.alliance_id() };
        std::fs::write(dir.join("testnet.json"), serde_json::to_string_pretty(&testnet.describe()).unwrap_or_default())
            .map_err(ctx("writing testnet.json"))?;
        Ok(testnet)
    }

    pub fn describe(&self) -> Value {
        json!({
            "dir": self.dir.display().to_string(),
            "alliance_id": self.alliance.to_hex(),
            "genesis": self.dir.join("genesis.bin").display().to_string(),
            "merchants": self.merchants.iter().enumerate().map(|(i, m)| json!({
                "name": m.name, "category": m.category, "key": m.keypair.public().to_hex(),
                "key_file": self.dir.join("keys").join(format!("merchant{i}.key")).display().to_string(),
            })).collect::<Vec<_>>(),
            "nodes": self.nodes.iter().map(|n| json!({
                "home": n.home.display().to_string(), "api": n.api.to_string(), "p2p": n.listen, "token": n.token, "merchant": n.merchant,
            })).collect::<Vec<_>>(),
        })
    }

    pub fn start(&mut self, index: usize) -> Result<(), CliError> {
        let exe = std::env::current_exe().map_err(ctx("finding the plaza binary"))?;
        let node = &mut self.nodes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("node.log"))
            .map_err(ctx("opening node.log"))?;
        let log2 = log.try_clone().map_err(ctx("node.log"))?;
        let child = Command::new(exe)
            .arg("start")
            .arg("--home")
            .arg(&node.home)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(ctx("starting a node"))?;
        node.child = Some(child);
        Ok(())
    }

    /// Waits until every node answers and all have finalized at least `height`.
    pub fn wait_height(&mut self, height: u64, timeout: Duration, stop: &AtomicBool) -> Result<(), CliError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut ok = true;
            for (i, n) in self.nodes.iter_mut().enumerate() {
                if let Some(child) = n.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(CliError::new(format!("node {i} exited ({status}); see {}", n.home.join("node.log").display())));
                }
                let h = n.client().get("/v1/status").ok().and_then(|r| r.ok_json().ok()).and_then(|v| v["height"].as_u64());
                if h.is_none_or(|h| h < height) {
                    ok = false;
                }
            }
            if ok {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return Err(CliError::new("interrupted"));
            }
            if Instant::now() > deadline {
                return Err(CliError::new(format!("the nodes did not reach height {height} within {}s", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to every node, then wait (SIGKILL after a grace period).
    pub fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if let Some(child) = &n.child {
                let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() > deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            }
        }
    }

    /// Every node's finalized chain, compared block id by block id up to the common height.
    pub fn check_same_chain(&self, timeout: Duration) -> Result<(u64, Hash), CliError> {
        let deadline = Instant::now() + timeout;
        let heights = |nodes: &[LocalNode]| -> Vec<u64> {
            nodes.iter().map(|n| n.client().get("/v1/status").ok().and_then(|r| r.ok_json().ok()).and_then(|v| v["height"].as_u64()).unwrap_or(0)).collect()
        };
        let target = heights(&self.nodes).into_iter().max().unwrap_or(0);
        while heights(&self.nodes).into_iter().min().unwrap_or(0) < target {
            if Instant::now() > deadline {
                return Err(CliError::new(format!("not every node reached height {target}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut reference: Vec<String> = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let mut ids = Vec::new();
            let mut from = 1;
            while from <= target {
                let v = n.client().get(&format!("/v1/blocks?from={from}&limit=100")).map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
                let blocks = v["blocks"].as_array().cloned().unwrap_or_default();
                if blocks.is_empty() {
                    break;
                }
                for b in blocks {
                    if b["height"].as_u64().unwrap_or(0) <= target {
                        ids.push(b["id"].as_str().unwrap_or("").to_owned());
                    }
                }
                from += 100;
            }
            if ids.len() as u64 != target {
                return Err(CliError::new(format!("node {i} returned {} blocks, expected {target}", ids.len())));
            }
            if i == 0 {
                reference = ids;
            } else if let Some(h) = reference.iter().zip(&ids).position(|(a, b)| a != b) {
                return Err(CliError::verification(format!("node {i} differs from node 0 at height {}", h + 1)));
            }
        }
        let tip = reference.last().and_then(|h| Hash::from_hex(h).ok()).unwrap_or(Hash::ZERO);
        Ok((target, tip))
    }
}

impl Drop for LocalTestnet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Sets the flag on Ctrl-C or SIGTERM (children in the terminal's process group get SIGINT too).
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async {
            #[cfg(unix)]
            {
                if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                } else {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
        });
        f.store(true, Ordering::SeqCst);
    });
    flag
}

fn default_dir(kind: &str) -> PathBuf {
    std::env::temp_dir().join(format!("plaza-{kind}-{}-{}", std::process::id(), wall_ms()))
}

pub fn testnet(args: TestnetArgs) -> CliResult {
    let dir = args.dir.clone().unwrap_or_else(|| default_dir("testnet"));
    let mut net = LocalTestnet::prepare(&dir, args.nodes, args.demo)?;
    if args.prepare_only {
        if args.json {
            print_json(&net.describe());
        } else {
            println!("testnet prepared in {} ({} nodes); see testnet.json", dir.display(), args.nodes);
        }
        net.nodes.clear();
        return Ok(());
    }
    let stop = interrupt_flag();
    println!("starting {} nodes in {}", args.nodes, dir.display());
    for i in 0..net.nodes.len() {
        net.start(i)?;
    }
    net.wait_height(1, Duration::from_secs(60), &stop)?;
    for n in &net.nodes {
        println!("  node{} {:<22} api http://{}  token {}", n.merchant, net.merchants[n.merchant].name, n.api, n.token);
    }
    if args.demo {
        let result = run_demo(&mut net, &stop, args.json);
        net.stop_all();
        result?;
        println!("nodes stopped cleanly; the data stays in {}", dir.display());
        return Ok(());
    }
    println!("the alliance is running; Ctrl-C stops it");
    while !stop.load(Ordering::SeqCst) {
        for (i, n) in net.nodes.iter_mut().enumerate() {
            if let Some(child) = n.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(CliError::new(format!("node {i} exited ({status}); see {}", n.home.join("node.log").display())));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("stopping the nodes");
    net.stop_all();
    Ok(())
}

// ------------------------------------------------------------------------------ the demo

struct Demo<'a> {
    net: &'a mut LocalTestnet,
    stop: &'a AtomicBool,
    step: usize,
    json: bool,
}

impl Demo<'_> {
    fn node_for(&self, merchant: usize) -> &LocalNode {
        self.net.nodes.iter().find(|n| n.merchant == merchant).unwrap_or(&self.net.nodes[merchant % self.net.nodes.len()])
    }
    fn key(&self, m: usize) -> String {
        self.net.merchants[m].keypair.public().to_hex()
    }
    fn clock(&self) -> Result<u64, CliError> {
        let status = crate::node::node_status(&self.net.nodes[0].client())?;
        Ok(crate::node::status_clock(&status)?.1)
    }

    /// Signs `payload` as merchant `m` (client-side) and submits it through that merchant's
    /// node (or node 0 for merchants without one), waiting for finality. Returns (id, receipt name).
    fn submit(&mut self, m: usize, what: &str, payload: Value) -> Result<(String, String), CliError> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(CliError::new("interrupted"));
        }
        let node = self.node_for(m);
        let client = node.client();
        let status = crate::node::node_status(&client)?;
        let (alliance, now) = crate::node::status_clock(&status)?;
        let record = sign_payload(&payload, &self.net.merchants[m].keypair, alliance, now)?;
        let answer = client
            .post("/v1/records?wait=true", &json!({"record": hex::encode(record.to_bytes())}))
            .map_err(CliError::new)?
            .ok_json()
            .map_err(|e| CliError::new(format!("{what}: {e}")))?;
        let name = answer["receipt"]["name"].as_str().unwrap_or("not final").to_owned();
        // The record is final on the node it went to; every later step may read any node, so
        // wait until all of them hold that block too.
        if let Some(height) = answer["height"].as_u64() {
            self.net.wait_height(height, Duration::from_secs(30), self.stop)?;
        }
        self.step += 1;
        if !self.json {
            println!("  {:>2}. {:<22} {:<58} → {name} (height {})", self.step, self.net.merchants[m].name, what, answer["height"]);
        }
        Ok((answer["id"].as_str().unwrap_or("").to_owned(), name))
    }

    fn expect(&mut self, m: usize, what: &str, payload: Value, expected: &str) -> Result<String, CliError> {
        let (id, name) = self.submit(m, what, payload)?;
        if name != expected {
            return Err(CliError::new(format!("demo step {:?}: expected receipt {expected}, got {name}", what)));
        }
        Ok(id)
    }

    /// Moves every node's clock forward (testnet_clock_api), then waits for a block after it.
    fn advance_clock(&mut self, ms: u64, why: &str) -> Result<(), CliError> {
        for n in &self.net.nodes {
            n.client().post("/v1/testnet/clock", &json!({"advance_ms": ms})).map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
        }
        let target = self.clock()?;
        if !self.json {
            println!("  -- clocks moved forward {:.1} h: {why}", ms as f64 / 3_600_000.0);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.net.nodes[0].client().get("/v1/status").map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
            if v["last_block_time_ms"].as_u64().unwrap_or(0) >= target.saturating_sub(1_000) {
                return Ok(());
            }
            if Instant::now() > deadline || self.stop.load(Ordering::SeqCst) {
                return Err(CliError::new("no block after the clock moved"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn run_demo(net: &mut LocalTestnet, stop: &AtomicBool, json_out: bool) -> CliResult {
    const HOTPOT: usize = 0;
    const GYM: usize = 1;
    const SCHOOL: usize = 2;
    const MARKET: usize = 3;
    const NOODLE: usize = 4;
    const CINEMA: usize = 5;
    let mut d = Demo { net, stop, step: 0, json: json_out };
    let card_market = hex::encode([0x11u8; 16]);
    let card_hotpot = hex::encode([0x22u8; 16]);
    if !json_out {
        println!("an alliance day: six merchants, two of them competing restaurants");
        println!("morning:");
    }
    // Governance: promoters are registered by vote (S2); the proposal counts as the proposer's vote.
    let voters = [GYM, SCHOOL, MARKET, CINEMA];
    for (id, name, upstream) in [("agency-sun", "Sun Media Agency", None), ("kol-lily", "Lily (food & fitness KOL)", Some("agency-sun"))] {
        let p = d.expect(
            HOTPOT,
            &format!("propose: register promoter {id}"),
            json!({"kind": "propose", "action": {"type": "register_promoter", "id": id, "name": name, "upstream": upstream}}),
            "accepted",
        )?;
        for v in voters {
            d.expect(v, &format!("vote yes on promoter {id}"), json!({"kind": "vote", "proposal": p, "approve": true}), "accepted")?;
        }
    }
    let now = d.clock()?;
    let expires = now + 20 * DAY_MS;
    d.expect(MARKET, "issue member card (home: FreshMart)", json!({"kind": "issue_card", "card": card_market}), "accepted")?;
    d.expect(HOTPOT, "issue member card (home: Hot Pot Palace)", json!({"kind": "issue_card", "card": card_hotpot}), "accepted")?;
    d.expect(
        MARKET,
        "refer a customer to gyms via kol-lily (S1, S2)",
        json!({"kind": "refer", "code": "REF-MARKET-0001", "card": card_market, "promoter": "kol-lily", "valid_at": ["category:fitness"], "expires_at_ms": expires}),
        "accepted",
    )?;
    let (_, isolation) = d.submit(
        HOTPOT,
        "refer to its competitor Noodle House (S5)",
        json!({"kind": "refer", "code": "REF-HOTPOT-0001", "valid_at": [format!("merchant:{}", d.key(NOODLE))], "expires_at_ms": expires}),
    )?;
    if isolation == "accepted" {
        return Err(CliError::new("competitor isolation (S5) did not reject a referral to a competitor"));
    }
    d.expect(
        HOTPOT,
        "issue 3 coupons 30.00 for the cinema (issuer-funded)",
        json!({"kind": "issue_coupons", "batch": "HOTPOT-MOVIE", "codes": ["CPN-HOT-0001", "CPN-HOT-0002", "CPN-HOT-0003"], "value": {"fixed": "30.00"}, "min_spend": "80.00", "redeemable_at": ["category:entertainment"], "funding": "issuer", "expires_at_ms": expires}),
        "accepted",
    )?;
    d.expect(
        SCHOOL,
        "issue 2 coupons 10% at FreshMart (redeemer-funded)",
        json!({"kind": "issue_coupons", "batch": "SCHOOL-GROCERY", "codes": ["CPN-SCH-0001", "CPN-SCH-0002"], "value": {"percent_bps": 1000}, "redeemable_at": [format!("merchant:{}", d.key(MARKET))], "funding": "redeemer", "expires_at_ms": expires}),
        "accepted",
    )?;
    d.expect(
        GYM,
        "sale 3000.00 to the referred card (S1–S4)",
        json!({"kind": "sale", "order": "GYM-0001", "gross": "3000.00", "card": card_market, "referral_code": "REF-MARKET-0001"}),
        "accepted",
    )?;
    d.expect(HOTPOT, "sale 468.00 to FreshMart's card, earns points (S3, S7)", json!({"kind": "sale", "order": "HP-0001", "gross": "468.00", "card": card_market}), "accepted")?;
    d.expect(HOTPOT, "sale 236.00 to its own card", json!({"kind": "sale", "order": "HP-0002", "gross": "236.00", "card": card_hotpot}), "accepted")?;
    d.expect(
        CINEMA,
        "sale 120.00, coupon CPN-HOT-0001 + 300 points (S6, S7)",
        json!({"kind": "sale", "order": "CIN-0001", "gross": "120.00", "base": "90.00", "card": card_market, "coupon_codes": ["CPN-HOT-0001"], "points_redeemed": 300}),
        "accepted",
    )?;
    d.expect(MARKET, "sale 85.00 with school coupon CPN-SCH-0001", json!({"kind": "sale", "order": "FM-0001", "gross": "85.00", "base": "76.50", "coupon_codes": ["CPN-SCH-0001"]}), "accepted")?;
    let (_, double) = d.submit(
        NOODLE,
        "redeem CPN-HOT-0001 again (S6: single use)",
        json!({"kind": "sale", "order": "NH-0001", "gross": "99.00", "coupon_codes": ["CPN-HOT-0001"]}),
    )?;
    if double == "accepted" {
        return Err(CliError::new("a coupon was redeemed twice"));
    }
    d.expect(NOODLE, "sale 58.00 (no card)", json!({"kind": "sale", "order": "NH-0002", "gross": "58.00"}), "accepted")?;
    let agreement = d.expect(
        GYM,
        "agreement: gym pays school 50.00 per period (S9)",
        json!({"kind": "agreement", "agreement_id": "GYM-SCHOOL-2026", "counterparty": d.key(SCHOOL), "terms": {"fixed_fee": {"payer": d.key(GYM), "amount": "50.00"}}, "starts_at_ms": now}),
        "accepted",
    )?;
    d.expect(SCHOOL, "accept the agreement", json!({"kind": "accept", "agreement": agreement}), "accepted")?;
    d.expect(HOTPOT, "refund 68.00 of HP-0001 before lock (S8)", json!({"kind": "refund", "order": "HP-0001", "refund_id": "HP-0001-R1", "amount": "68.00"}), "accepted")?;
    // A policy change by vote: a higher referral rate from a minute from now.
    let policy = d.net.nodes[0].client().get("/v1/policy").map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
    let mut v2 = policy["in_force"].clone();
    v2["version"] = json!(2);
    v2["effective_at_ms"] = json!(d.clock()? + 60_000);
    v2["referral_rate_bps"] = json!(800);
    let p = d.expect(MARKET, "propose policy v2: referral rate 5% → 8%", json!({"kind": "propose", "action": {"type": "publish_policy", "policy": v2}}), "accepted")?;
    for v in [HOTPOT, GYM, SCHOOL, CINEMA] {
        d.expect(v, "vote yes on policy v2", json!({"kind": "vote", "proposal": p, "approve": true}), "accepted")?;
    }
    let proposal = d.net.nodes[0].client().get(&format!("/v1/proposals/{p}")).map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
    if proposal["status"] != "passed" {
        return Err(CliError::new(format!("policy v2 did not pass: {}", proposal["status"])));
    }

    // Two days later: the morning's items locked; statement 0 closes.
    let now = d.clock()?;
    let day = DAY_MS;
    let offset = 480 * 60_000;
    let next_midnight = ((now + offset) / day + 1) * day - offset;
    d.advance_clock(next_midnight + day + 60_000 - now, "two midnights later: the morning's items have locked")?;
    if !json_out {
        println!("two days later:");
    }
    let now = d.clock()?;
    d.expect(
        MARKET,
        "refer again at the new 8% rate",
        json!({"kind": "refer", "code": "REF-MARKET-0002", "promoter": "kol-lily", "valid_at": ["category:fitness"], "expires_at_ms": now + DAY_MS}),
        "accepted",
    )?;
    d.expect(GYM, "sale 1000.00 with the new referral", json!({"kind": "sale", "order": "GYM-0002", "gross": "1000.00", "referral_code": "REF-MARKET-0002"}), "accepted")?;
    d.expect(GYM, "refund 600.00 of GYM-0001 after lock (clawback)", json!({"kind": "refund", "order": "GYM-0001", "refund_id": "GYM-0001-R1", "amount": "600.00"}), "accepted")?;
    let statement0 = d.net.nodes[0].client().get("/v1/statements/0").map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
    // The first payee confirms it was paid (S12: the money moves outside Plaza).
    let plan = statement0["payment_plan"].as_array().cloned().unwrap_or_default();
    if let Some(t) = plan.iter().find(|t| t["payee"].as_str().is_some_and(|p| p.starts_with("merchant:")) && t["payer"].as_str().is_some_and(|p| p.starts_with("merchant:"))) {
        let payee = t["payee"].as_str().unwrap_or("").trim_start_matches("merchant:").to_owned();
        let payer = t["payer"].as_str().unwrap_or("").trim_start_matches("merchant:").to_owned();
        if let Some(m) = d.net.merchants.iter().position(|m| m.keypair.public().to_hex() == payee) {
            d.expect(
                m,
                &format!("confirm {} received from the plan", t["amount"].as_str().unwrap_or("")),
                json!({"kind": "confirm_payment", "period": 0, "payer": payer, "amount": t["amount"]}),
                "accepted",
            )?;
        }
    }
    d.advance_clock(DAY_MS, "the next midnight: statement 1 with the clawback")?;
    let statement1 = d.net.nodes[0].client().get("/v1/statements/1").map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
    let (height, tip) = d.net.check_same_chain(Duration::from_secs(60))?;
    let names: Vec<(String, String)> = d.net.merchants.iter().map(|m| (m.keypair.public().to_hex(), m.name.to_owned())).collect();
    let name_of = |party: &str| -> String {
        let key = party.trim_start_matches("merchant:");
        names.iter().find(|(k, _)| k == key).map(|(_, n)| n.clone()).unwrap_or_else(|| party.to_owned())
    };
    if json_out {
        print_json(&json!({"statements": [statement0, statement1], "height": height, "tip": tip.to_hex(), "nodes": d.net.nodes.len()}));
        return Ok(());
    }
    for s in [&statement0, &statement1] {
        println!();
        println!("statement {} (hash {}):", s["period"], &s["hash"].as_str().unwrap_or("")[..16.min(s["hash"].as_str().unwrap_or("").len())]);
        for l in s["lines"].as_array().cloned().unwrap_or_default() {
            println!("  {:<14} {:>24} → {:<24} {:>10}", l["kind"].as_str().unwrap_or(""), name_of(l["debtor"].as_str().unwrap_or("")), name_of(l["creditor"].as_str().unwrap_or("")), l["amount"].as_str().unwrap_or(""));
        }
        println!("  nets:");
        for n in s["nets"].as_array().cloned().unwrap_or_default() {
            println!("    {:<28} {:>10}", name_of(n["party"].as_str().unwrap_or("")), n["net"].as_str().unwrap_or(""));
        }
        println!("  payment plan:");
        for t in s["payment_plan"].as_array().cloned().unwrap_or_default() {
            println!("    {:<28} pays {:<28} {:>10}", name_of(t["payer"].as_str().unwrap_or("")), name_of(t["payee"].as_str().unwrap_or("")), t["amount"].as_str().unwrap_or(""));
        }
    }
    println!();
    println!("all {} nodes hold the same finalized chain: {height} blocks, tip {}", d.net.nodes.len(), tip);
    Ok(())
}

// ------------------------------------------------------------------------------ the benchmark

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

fn finalized_records(client: &Client) -> u64 {
    let Ok(r) = client.get("/metrics") else { return 0 };
    r.body
        .lines()
        .find(|l| l.starts_with("plaza_finalized_records_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

pub fn bench(args: BenchArgs) -> CliResult {
    let dir = args.dir.clone().unwrap_or_else(|| default_dir("bench"));
    let stop = interrupt_flag();
    eprintln!("measuring the ed25519 batch-verification ceiling (one core, 3 s)…");
    let verify_rate = batch_verification_rate(Duration::from_secs(3));
    eprintln!("  {verify_rate:.0} verifications/s");
    let mut net = LocalTestnet::prepare(&dir, args.nodes, false)?;
    for i in 0..net.nodes.len() {
        net.start(i)?;
    }
    net.wait_height(1, Duration::from_secs(60), &stop)?;
    let clients: Vec<Client> = net.nodes.iter().map(LocalNode::client).collect();
    let status = crate::node::node_status(&clients[0])?;
    let (alliance, _) = crate::node::status_clock(&status)?;
    let signers: Vec<Keypair> = net.merchants.iter().map(|m| clone_key(&m.keypair)).collect::<Result<_, _>>()?;
    // Cards for a realistic mix: half the sales are to a member card of another merchant.
    let mut cards = Vec::new();
    let mut setup = Vec::new();
    for (i, k) in signers.iter().enumerate() {
        for c in 0..8u8 {
            let card = CardId([i as u8, c, 0xca, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            cards.push(card);
            let body = RecordBody { alliance, signer: k.public(), created_at_ms: wall_ms(), payload: Payload::IssueCard { card } };
            setup.push(hex::encode(Record::sign(body, k).to_bytes()));
        }
    }
    clients[0].post("/v1/records?wait=true", &json!({"records": setup})).map_err(CliError::new)?.ok_json().map_err(CliError::new)?;
    let mut order = 0u64;
    let mut rows = Vec::new();
    for &rate in &args.rates {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let total = (rate * args.step_seconds) as usize;
        eprintln!("rate {rate} records/s: signing {total} sales…");
        let now = wall_ms();
        let records: Vec<String> = (0..total)
            .map(|i| {
                order += 1;
                let s = &signers[i % signers.len()];
                let card = (i % 2 == 0).then(|| cards[(i / 2) % cards.len()]);
                let gross = Amount::from_cents(1_000 + (order * 7919) % 90_000).unwrap_or(Amount::ZERO);
                let payload = Payload::Sale { order: format!("B{order}"), gross, base: gross, card, referral_code: None, coupon_codes: Vec::new(), points_redeemed: 0 };
                hex::encode(Record::sign(RecordBody { alliance, signer: s.public(), created_at_ms: now, payload }, s).to_bytes())
            })
            .collect();
        let cpu_before: f64 = net.nodes.iter().filter_map(|n| n.child.as_ref()).map(|c| cpu_seconds(c.id())).sum();
        let final_before = finalized_records(&clients[0]);
        let started = Instant::now();
        // Probes: one record every 100 ms submitted with ?wait=true, timed submit-to-final.
        let probe_client = clients[1 % clients.len()].clone();
        let probe_signer = clone_key(&signers[0])?;
        let probe_stop = Arc::new(AtomicBool::new(false));
        let ps = probe_stop.clone();
        let probe_order_base = order + 10_000_000;
        let probes = std::thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !ps.load(Ordering::SeqCst) {
                n += 1;
                let gross = Amount::from_cents(2_500).unwrap_or(Amount::ZERO);
                let payload = Payload::Sale { order: format!("P{}", probe_order_base + n), gross, base: gross, card: None, referral_code: None, coupon_codes: Vec::new(), points_redeemed: 0 };
                let r = Record::sign(RecordBody { alliance, signer: probe_signer.public(), created_at_ms: wall_ms(), payload }, &probe_signer);
                let t = Instant::now();
                let ok = probe_client
                    .post("/v1/records?wait=true", &json!({"record": hex::encode(r.to_bytes())}))
                    .ok()
                    .and_then(|a| a.ok_json().ok())
                    .is_some_and(|v| v["status"] == "final");
                if ok {
                    latencies.push(t.elapsed().as_secs_f64());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            latencies
        });
        // Load: batches every 50 ms, round-robin over the nodes.
        let batch = ((rate as f64) * 0.05).ceil().max(1.0) as usize;
        let mut sent = 0;
        let mut k = 0;
        while sent < records.len() {
            let due = started + Duration::from_millis(50 * k as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let end = (sent + batch).min(records.len());
            let chunk = &records[sent..end];
            let _ = clients[k % clients.len()].post("/v1/records", &json!({"records": chunk}));
            sent = end;
            k += 1;
        }
        // Drain: wait until everything offered is final (or 30 s).
        let offered_end = started.elapsed();
        let deadline = Instant::now() + Duration::from_secs(30);
        while finalized_records(&clients[0]) < final_before + total as u64 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let elapsed = started.elapsed().as_secs_f64();
        probe_stop.store(true, Ordering::SeqCst);
        let mut latencies = probes.join().unwrap_or_default();
        latencies.sort_by(|a, b| a.total_cmp(b));
        let committed = finalized_records(&clients[0]).saturating_sub(final_before);
        let cpu_after: f64 = net.nodes.iter().filter_map(|n| n.child.as_ref()).map(|c| cpu_seconds(c.id())).sum();
        let throughput = committed as f64 / elapsed;
        let row = json!({
            "offered_per_s": rate,
            "committed_records": committed,
            "committed_per_s": (throughput * 10.0).round() / 10.0,
            "offered_seconds": offered_end.as_secs_f64(),
            "latency_p50_s": percentile(&latencies, 0.50),
            "latency_p95_s": percentile(&latencies, 0.95),
            "latency_p99_s": percentile(&latencies, 0.99),
            "probes": latencies.len(),
            "cpu_cores_busy": (cpu_after - cpu_before) / elapsed,
            "efficiency_ratio": throughput * args.nodes as f64 / verify_rate,
        });
        eprintln!("  committed {throughput:.0}/s, p50 {:.3}s p99 {:.3}s", percentile(&latencies, 0.5), percentile(&latencies, 0.99));
        rows.push(row);
    }
    let total_records: u64 = finalized_records(&clients[0]);
    let disk: u64 = net.nodes.iter().map(|n| dir_bytes(&n.home.join("data"))).sum();
    net.stop_all();
    let peak = rows.iter().map(|r| r["committed_per_s"].as_f64().unwrap_or(0.0)).fold(0.0, f64::max);
    let report = json!({
        "nodes": args.nodes,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "ed25519_batch_verifications_per_s": verify_rate.round(),
        "steps": rows,
        "peak_committed_per_s": peak,
        "efficiency_ratio_at_peak": peak * args.nodes as f64 / verify_rate,
        "bytes_on_disk_per_record_per_node": if total_records > 0 { disk / total_records / args.nodes as u64 } else { 0 },
        "dir": dir.display().to_string(),
    });
    if args.json {
        print_json(&report);
    } else {
        println!("ed25519 batch verification: {verify_rate:.0}/s on one core");
        println!("{:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8}", "offered/s", "committed/s", "p50 s", "p95 s", "p99 s", "cpu", "ratio");
        for r in report["steps"].as_array().cloned().unwrap_or_default() {
            println!(
                "{:>10} {:>12.1} {:>9.3} {:>9.3} {:>9.3} {:>9.2} {:>8.3}",
                r["offered_per_s"].as_u64().unwrap_or(0), r["committed_per_s"].as_f64().unwrap_or(0.0), r["latency_p50_s"].as_f64().unwrap_or(f64::NAN), r["latency_p95_s"].as_f64().unwrap_or(f64::NAN),
                r["latency_p99_s"].as_f64().unwrap_or(f64::NAN), r["cpu_cores_busy"].as_f64().unwrap_or(0.0), r["efficiency_ratio"].as_f64().unwrap_or(0.0)
            );
        }
        println!("bytes on disk per record per node: {}", report["bytes_on_disk_per_record_per_node"]);
    }
    Ok(())
}
