//! The Plaza node: the sans-IO replica, and around it (feature `io`, on by default) the
//! I/O shell — networking, the HTTP API, metrics and RocksDB.
//!
//! Always built (the simulator uses these without the `io` feature):
//! - [`replica`]: one node's whole logic — consensus, mempool admission, proposing,
//!   executing, the consensus log, finalization, the sync policy — with no I/O.
//! - [`chain`]: building, executing and storing blocks over any store.
//! - [`mempool`]: checked records waiting for a block.
//! - [`wire`]: gossiped records and block sync's messages as bytes.
//! - [`config`]: `config.toml`. [`json`]: record payloads as JSON, converted by hand.
//!
//! With `io`:
//! - [`driver`]: the thin shell that turns the replica's effects into tokio, libp2p and
//!   RocksDB calls.
//! - [`net`]: libp2p (member-only peers, gossip, block sync).
//! - [`api`]: the HTTP API (JSON), `/metrics`, `/openapi.json`.
//! - [`client`]: a minimal blocking HTTP client for the CLI, the testnet and the tests.
//!
//! Architecture invariant: the driver is the only place where the replica meets tokio,
//! sockets and RocksDB; what goes into a block (records, time) is decided by the proposer and
//! then checked and executed identically by every validator.

#[cfg(feature = "io")]
pub mod api;
pub mod chain;
#[cfg(feature = "io")]
pub mod client;
pub mod config;
#[cfg(feature = "io")]
pub mod driver;
pub mod json;
pub mod mempool;
#[cfg(feature = "io")]
pub mod metrics;
#[cfg(feature = "io")]
pub mod net;
pub mod replica;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
#[cfg(feature = "io")]
use std::sync::{Arc, Mutex, RwLock};

#[cfg(feature = "io")]
use plaza_ledger::contract::State;
#[cfg(feature = "io")]
use plaza_ledger::record::Record;
#[cfg(feature = "io")]
use plaza_ledger::store::Store;
#[cfg(feature = "io")]
use plaza_ledger::{Hash, Keypair};
#[cfg(feature = "io")]
use tokio::sync::{mpsc, oneshot, watch};

pub use config::NodeConfig;

/// The node's wall clock: the system clock plus a testnet-only offset. Block times and
/// node-signed records' created-at times come from it; consensus timers do not.
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn new(offset_ms: i64) -> Clock {
        Clock { offset_ms: AtomicI64::new(offset_ms) }
    }
    pub fn now_ms(&self) -> u64 {
        let system = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        (system + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    pub fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed) + ms
    }
}

/// What one submitted record became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// New in the mempool, gossiped.
    Accepted,
    /// Already waiting.
    Pending,
    /// Already in a finalized block.
    Final,
    Refused(String),
}

/// Requests from the API to the driver.
#[cfg(feature = "io")]
pub enum Command {
    Submit { records: Vec<Record>, reply: oneshot::Sender<Vec<Admission>> },
}

/// Live facts the driver publishes for the API.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub view: u64,
    pub validator: bool,
    pub peer_id: String,
    pub listen: Vec<String>,
    pub peers: Vec<String>,
}

/// What the API and the driver share.
#[cfg(feature = "io")]
pub struct Shared {
    pub store: Arc<Store>,
    pub state: Arc<RwLock<State>>,
    pub mempool: Arc<Mutex<mempool::Mempool>>,
    pub metrics: metrics::Metrics,
    pub clock: Clock,
    pub merchant: Keypair,
    pub alliance: Hash,
    pub api_token: String,
    pub config: NodeConfig,
    pub tip: watch::Receiver<u64>,
    pub status: Mutex<Status>,
    pub commands: mpsc::Sender<Command>,
}

#[cfg(feature = "io")]
impl Shared {
    pub fn state(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn mempool(&self) -> std::sync::MutexGuard<'_, mempool::Mempool> {
        self.mempool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The files of a node home (`plaza init`).
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    pub fn new(root: &Path) -> Home {
        Home { root: root.to_owned() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn merchant_key(&self) -> PathBuf {
        self.root.join("keys").join("merchant.key")
    }
    pub fn network_key(&self) -> PathBuf {
        self.root.join("keys").join("network.key")
    }
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api-token")
    }
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }
    pub fn load_config(&self) -> Result<NodeConfig, String> {
        let text = std::fs::read_to_string(self.config()).map_err(|e| format!("reading {}: {e}", self.config().display()))?;
        NodeConfig::from_toml(&text)
    }
    pub fn load_token(&self) -> Result<String, String> {
        std::fs::read_to_string(self.api_token())
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("reading {}: {e}", self.api_token().display()))
    }
}
