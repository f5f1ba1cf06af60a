//! The local testnet: keys, a genesis and N node homes, and N `plaza start` processes on
//! loopback (`plaza testnet`).
//!
//! Ports are never guessed: every node asks for port 0 and reports what it bound (the API
//! address in `<home>/api.addr`, its libp2p address in `/v1/status`). Nodes start one after
//! another, each dialling the ones already up, so two testnets started at once cannot collide.
//! A node (re)started later is given every other node's current address, so for any pair the
//! one that started last knows where the other is, and a connection between them can always be
//! re-established.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::codec::Encode;
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::money::Amount;
use plaza_ledger::policy::Policy;
use plaza_ledger::record::MerchantProfile;
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use plaza_node::config::NodeConfig;
use plaza_node::Home;
use serde_json::{json, Value};

use crate::api::{self, BlockSummary, BlocksPage};
use crate::{ctx, Error};

/// Nodes in one testnet, at most.
pub const NODES_MAX: usize = 64;

/// How long a starting node may take to bind and answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The API address: known once the node has bound it (or fixed by the layout).
    pub api: Option<SocketAddr>,
    /// The libp2p address others dial, with its `/p2p/` peer id: known once bound.
    pub p2p: Option<String>,
    pub peer_id: String,
    pub token: String,
    pub merchant: usize,
    pub child: Option<Child>,
}

impl LocalNode {
    /// A client for the node's API; an error before the node has reported its address.
    pub fn client(&self) -> Result<Client, Error> {
        let api = self.api.ok_or_else(|| Error::failed(format!("{} has not been started", self.home.display())))?;
        Ok(Client::new(api, Some(self.token.clone())))
    }

    /// The node's height, or `None` while it does not answer.
    pub fn height(&self) -> Option<u64> {
        self.client().ok().and_then(|c| api::status(&c).ok()).map(|s| s.height)
    }

    pub fn log_path(&self) -> PathBuf {
        self.home.join("node.log")
    }
}

/// Where the nodes listen and how they reach each other.
#[derive(Clone, Debug)]
pub enum Layout {
    /// Loopback; every port chosen by the kernel when its node starts.
    Loopback,
    /// Containers on a private network: node i listens on every interface at these ports and
    /// is reached at `ips[i]`.
    Fixed { ips: Vec<Ipv4Addr>, p2p_port: u16, api_port: u16 },
}

pub struct LocalTestnet {
    pub dir: PathBuf,
    /// The `plaza` binary the nodes run.
    pub binary: PathBuf,
    pub layout: Layout,
    pub merchants: Vec<LocalMerchant>,
    pub nodes: Vec<LocalNode>,
    pub alliance: Hash,
}

const DEMO_MERCHANTS: [(&str, &str); 6] = [
    ("Hot Pot Palace", "restaurant"),
    ("Iron Gym", "fitness"),
    ("Little Oxford English", "education"),
    ("FreshMart", "grocery"),
    ("兰州拉面 Noodle House", "restaurant"),
    ("星光影城 Starlight Cinema", "entertainment"),
];

pub fn wall_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub fn clone_key(k: &Keypair) -> Result<Keypair, Error> {
    Keypair::from_secret(&k.secret_bytes()).map_err(ctx("key"))
}

/// A fresh directory name under the system's temporary directory.
pub fn default_dir(kind: &str) -> PathBuf {
    std::env::temp_dir().join(format!("plaza-{kind}-{}-{}", std::process::id(), wall_ms()))
}

impl LocalTestnet {
    /// Keys, genesis and node homes in `dir`, made with `binary`'s `plaza init`. With `demo`,
    /// six merchants of five categories (two competing restaurants); the first `nodes`
    /// merchants run validating nodes.
    pub fn prepare(dir: &Path, nodes: usize, demo: bool, binary: &Path, layout: Layout) -> Result<LocalTestnet, Error> {
        if nodes == 0 || nodes > NODES_MAX {
            return Err(Error::failed(format!("--nodes must be 1 to {NODES_MAX}")));
        }
        if let Layout::Fixed { ips, .. } = &layout
            && ips.len() != nodes
        {
            return Err(Error::failed(format!("{} addresses for {nodes} nodes", ips.len())));
        }
        if dir.exists() && std::fs::read_dir(dir).map_err(ctx(dir.display().to_string()))?.next().is_some() {
            return Err(Error::failed(format!("{} is not empty; give an empty or new --dir", dir.display())));
        }
        let keys_dir = dir.join("keys");
        std::fs::create_dir_all(&keys_dir).map_err(ctx(format!("creating {}", keys_dir.display())))?;
        let count = if demo { nodes.max(DEMO_MERCHANTS.len()) } else { nodes };
        let mut merchants = Vec::new();
        for i in 0..count {
            let (name, category) = DEMO_MERCHANTS.get(i).copied().unwrap_or(("Corner Shop", "retail"));
            merchants.push(LocalMerchant { name, category, keypair: Keypair::generate(), network: (i < nodes).then(Keypair::generate) });
        }
        let genesis = local_genesis(&merchants, demo, wall_ms())?;
        let genesis_path = dir.join("genesis.bin");
        std::fs::write(&genesis_path, genesis.to_bytes()).map_err(ctx("writing genesis.bin"))?;
        let mut key_paths = Vec::new();
        for (i, m) in merchants.iter().enumerate() {
            let path = keys_dir.join(format!("merchant{i}.key"));
            m.keypair.save(&path).map_err(ctx("saving a key"))?;
            key_paths.push(path);
        }
        let mut peer_ids = Vec::new();
        for m in merchants.iter().take(nodes) {
            let network = m.network.as_ref().ok_or_else(|| Error::failed("validator without network key"))?;
            peer_ids.push(plaza_node::net::peer_id_of(&network.public()).ok_or_else(|| Error::failed("network key"))?.to_string());
        }
        let mut local_nodes = Vec::new();
        for (i, peer_id) in peer_ids.iter().enumerate() {
            let home = dir.join(format!("node{i}"));
            let network_path = keys_dir.join(format!("network{i}.key"));
            let network = merchants[i].network.as_ref().ok_or_else(|| Error::failed("validator without network key"))?;
            network.save(&network_path).map_err(ctx("saving a key"))?;
            let (listen, api_bind, api, p2p, peers) = match &layout {
                Layout::Loopback => ("/ip4/127.0.0.1/tcp/0".to_owned(), "127.0.0.1:0".to_owned(), None, None, Vec::new()),
                Layout::Fixed { ips, p2p_port, api_port } => {
                    let address = |j: usize| format!("/ip4/{}/tcp/{p2p_port}/p2p/{}", ips[j], peer_ids[j]);
                    (
                        format!("/ip4/0.0.0.0/tcp/{p2p_port}"),
                        format!("0.0.0.0:{api_port}"),
                        Some(SocketAddr::from((ips[i], *api_port))),
                        Some(address(i)),
                        (0..nodes).filter(|j| *j != i).map(address).collect(),
                    )
                }
            };
            let output = Command::new(binary)
                .arg("init")
                .arg("--home")
                .arg(&home)
                .arg("--genesis")
                .arg(&genesis_path)
                .arg("--key")
                .arg(&key_paths[i])
                .arg("--network-key")
                .arg(&network_path)
                .arg("--listen")
                .arg(&listen)
                .arg("--api")
                .arg(&api_bind)
                .stdin(Stdio::null())
                .output()
                .map_err(ctx(format!("running {} init", binary.display())))?;
            if !output.status.success() {
                return Err(Error::failed(format!("plaza init of node {i}: {}", String::from_utf8_lossy(&output.stderr).trim())));
            }
            let token = Home::new(&home).load_token().map_err(Error::failed)?;
            let node = LocalNode { home, api, p2p, peer_id: peer_id.clone(), token, merchant: i, child: None };
            write_config(&node, &listen, &api_bind, peers)?;
            local_nodes.push(node);
        }
        let testnet = LocalTestnet {
            dir: dir.to_owned(),
            binary: binary.to_owned(),
            layout,
            merchants,
            nodes: local_nodes,
            alliance: genesis.alliance_id(),
        };
        testnet.write_description()?;
        Ok(testnet)
    }

    /// `testnet.json`: the merchants, their key files and the nodes' homes and addresses.
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
                "home": n.home.display().to_string(), "api": n.api.map(|a| a.to_string()), "p2p": n.p2p,
                "token": n.token, "merchant": n.merchant,
            })).collect::<Vec<_>>(),
        })
    }

    fn write_description(&self) -> Result<(), Error> {
        let text = serde_json::to_string_pretty(&self.describe()).map_err(ctx("testnet.json"))?;
        std::fs::write(self.dir.join("testnet.json"), text).map_err(ctx("writing testnet.json"))
    }

    /// Starts (or restarts) node `index` and waits until it has bound its ports and answers.
    pub fn start(&mut self, index: usize) -> Result<(), Error> {
        if matches!(self.layout, Layout::Loopback) {
            let peers: Vec<String> =
                self.nodes.iter().enumerate().filter(|(j, _)| *j != index).filter_map(|(_, n)| n.p2p.clone()).collect();
            write_config(&self.nodes[index], "/ip4/127.0.0.1/tcp/0", "127.0.0.1:0", peers)?;
            self.nodes[index].api = None;
            self.nodes[index].p2p = None;
        }
        let node = &mut self.nodes[index];
        let home = Home::new(&node.home);
        match std::fs::remove_file(home.api_addr()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::failed(format!("removing {}: {e}", home.api_addr().display()))),
        }
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.log_path()).map_err(ctx("opening node.log"))?;
        let log2 = log.try_clone().map_err(ctx("node.log"))?;
        let child = Command::new(&self.binary)
            .arg("start")
            .arg("--home")
            .arg(&node.home)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(ctx(format!("starting {}", self.binary.display())))?;
        node.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive(index)?;
            let node = &mut self.nodes[index];
            if node.api.is_none()
                && let Ok(text) = std::fs::read_to_string(home.api_addr())
            {
                node.api = Some(text.trim().parse().map_err(|e| Error::failed(format!("{}: {e}", home.api_addr().display())))?);
            }
            if node.api.is_some()
                && let Ok(status) = api::status(&node.client()?)
                && (node.p2p.is_some() || !status.listen.is_empty())
            {
                if node.p2p.is_none() {
                    node.p2p = Some(format!("{}/p2p/{}", status.listen[0], status.peer_id));
                }
                break;
            }
            if Instant::now() > deadline {
                return Err(Error::failed(format!("node {index} did not come up within {}s; see {}", START_TIMEOUT.as_secs(), node.log_path().display())));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.write_description()
    }

    /// Starts every node, one after the other.
    pub fn start_all(&mut self) -> Result<(), Error> {
        for i in 0..self.nodes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// SIGKILL: the node gets no chance to flush anything.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// An error if node `index` was started and has exited.
    pub fn check_alive(&mut self, index: usize) -> Result<(), Error> {
        let node = &mut self.nodes[index];
        if let Some(child) = node.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(Error::failed(format!("node {index} exited ({status}); see {}", node.log_path().display())));
        }
        Ok(())
    }

    /// Waits until every node answers and all have finalized at least `height`.
    pub fn wait_height(&mut self, height: u64, timeout: Duration, stop: &AtomicBool) -> Result<(), Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut reached = true;
            for i in 0..self.nodes.len() {
                self.check_alive(i)?;
                if self.nodes[i].height().is_none_or(|h| h < height) {
                    reached = false;
                }
            }
            if reached {
                return Ok(());
            }
            if stop.load(Ordering::SeqCst) {
                return Err(Error::failed("interrupted"));
            }
            if Instant::now() > deadline {
                return Err(Error::failed(format!("the nodes did not reach height {height} within {}s", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM to node `index`, then wait (SIGKILL after a grace period).
    pub fn stop(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            terminate(&child);
            reap(&mut child, Instant::now() + STOP_GRACE);
        }
    }

    /// SIGTERM to every node, then wait (SIGKILL after a grace period).
    pub fn stop_all(&mut self) {
        for n in &self.nodes {
            if let Some(child) = &n.child {
                terminate(child);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for n in &mut self.nodes {
            if let Some(mut child) = n.child.take() {
                reap(&mut child, deadline);
            }
        }
    }

    /// Waits until every node has reached the highest height any of them reports, then
    /// compares their finalized chains block by block (ids, state roots, statement hashes).
    /// Returns the common height and tip.
    pub fn check_same_chain(&self, timeout: Duration) -> Result<(u64, Hash), Error> {
        let clients: Vec<Client> = self.nodes.iter().map(LocalNode::client).collect::<Result<_, _>>()?;
        check_same_chain(&clients, timeout)
    }
}

impl Drop for LocalTestnet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn write_config(node: &LocalNode, listen: &str, api: &str, peers: Vec<String>) -> Result<(), Error> {
    let config = NodeConfig { listen: listen.to_owned(), api: api.to_owned(), peers, testnet_clock_api: true, ..NodeConfig::default() };
    let path = node.home.join("config.toml");
    std::fs::write(&path, config.to_toml()).map_err(ctx(format!("writing {}", path.display())))
}

fn local_genesis(merchants: &[LocalMerchant], demo: bool, now: u64) -> Result<Genesis, Error> {
    let mut categories: Vec<Named> = merchants.iter().map(|m| Named { code: m.category.into(), name: m.category.into() }).collect();
    categories.sort();
    categories.dedup();
    let mut members: Vec<MerchantProfile> = merchants
        .iter()
        .enumerate()
        .map(|(i, m)| {
            // The demo's members stand in two real districts, about 3.5 km apart (issue 19).
            let (district, latitude_e6, longitude_e6) = crate::places::demo_place(i);
            MerchantProfile {
                key: m.keypair.public(),
                name: if i < DEMO_MERCHANTS.len() { m.name.to_string() } else { format!("{} {i}", m.name) },
                category: m.category.into(),
                district: district.into(),
                latitude_e6,
                longitude_e6,
                network_key: m.network.as_ref().map(Keypair::public),
            }
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
        policy.min_payout = Amount::from_cents(100).map_err(Error::failed)?;
    }
    let genesis = Genesis {
        name: if demo { "Riverside Merchants Alliance".into() } else { "Local Plaza Testnet".into() },
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: now.saturating_sub(2_000),
        categories,
        districts: crate::places::DEMO_DISTRICTS.iter().map(|(code, name)| Named { code: (*code).into(), name: (*name).into() }).collect(),
        members,
        validators,
        policy,
        promoters: Vec::new(),
    };
    genesis.validate().map_err(ctx("genesis"))?;
    Ok(genesis)
}

/// A node's finalized blocks 1..=`height` (summaries).
pub fn chain_of(client: &Client, height: u64) -> Result<Vec<BlockSummary>, Error> {
    const PAGE: u64 = 100;
    let mut blocks = Vec::new();
    let mut from = 1;
    while from <= height {
        let page: BlocksPage = api::get(client, &format!("/v1/blocks?from={from}&limit={PAGE}"))?;
        if page.blocks.is_empty() {
            break;
        }
        blocks.extend(page.blocks.into_iter().filter(|b| b.height <= height));
        from += PAGE;
    }
    Ok(blocks)
}

/// Waits until every node reached the highest height any reports, then compares their chains
/// block by block: ids, state roots and statement hashes. Returns the common height and tip.
pub fn check_same_chain(clients: &[Client], timeout: Duration) -> Result<(u64, Hash), Error> {
    let deadline = Instant::now() + timeout;
    let heights = || -> Vec<u64> { clients.iter().map(|c| api::status(c).map_or(0, |s| s.height)).collect() };
    let target = heights().into_iter().max().unwrap_or(0);
    while heights().into_iter().min().unwrap_or(0) < target {
        if Instant::now() > deadline {
            return Err(Error::failed(format!("not every node reached height {target} within {}s: {:?}", timeout.as_secs(), heights())));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut reference: Vec<BlockSummary> = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        let blocks = chain_of(client, target)?;
        if blocks.len() as u64 != target || blocks.iter().enumerate().any(|(k, b)| b.height != k as u64 + 1) {
            return Err(Error::failed(format!("node {i} returned {} blocks, expected heights 1 to {target}", blocks.len())));
        }
        if i == 0 {
            reference = blocks;
            continue;
        }
        for (a, b) in reference.iter().zip(&blocks) {
            if a.id != b.id {
                return Err(Error::diverged(format!("node {i} differs from node 0 at height {}: block {} vs {}", a.height, b.id, a.id)));
            }
            if a.state_root != b.state_root || a.statement_hash != b.statement_hash {
                return Err(Error::diverged(format!("node {i} differs from node 0 at height {} in its state root or statement", a.height)));
            }
        }
    }
    let tip = match reference.last() {
        Some(b) => Hash::from_hex(&b.id).map_err(|e| Error::failed(format!("block id {}: {e}", b.id)))?,
        None => Hash::ZERO,
    };
    Ok((target, tip))
}

/// Sets the flag on Ctrl-C or SIGTERM (children in the terminal's process group get SIGINT too).
pub fn interrupt_flag() -> Arc<AtomicBool> {
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

/// How long a stopped node may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

fn terminate(child: &Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

/// Waits for `child` to exit, killing it at `deadline`.
fn reap(child: &mut Child, deadline: Instant) {
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
