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
//! - [`explorer`]: the HTML explorer at `/` (pages, the who-owes-whom picture).
//! - [`client`]: a minimal blocking HTTP client for the CLI, the testnet and the tests.
//! - [`nearby`]: nearby members, districts, where a coupon or a card can be used (issue 19).
//!
//! Architecture invariant: the driver is the only place where the replica meets tokio,
//! sockets and RocksDB; what goes into a block (records, time) is decided by the proposer and
//! then checked and executed identically by every validator.

#[cfg(feature = "io")]
pub mod api;
#[cfg(feature = "io")]
pub mod auth;
pub mod chain;
#[cfg(feature = "io")]
pub mod client;
pub mod config;
#[cfg(feature = "io")]
pub mod driver;
#[cfg(feature = "io")]
pub mod explorer;
pub mod json;
pub mod mempool;
#[cfg(feature = "io")]
pub mod metrics;
#[cfg(feature = "io")]
pub mod nearby;
#[cfg(feature = "io")]
pub mod net;
pub mod replica;
#[cfg(feature = "io")]
pub mod sale_base;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
#[cfg(feature = "io")]
use std::sync::{Arc, RwLock};

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
    /// Testnet: where the offset is kept, so a restarted node keeps the clock its peers have
    /// (block times are checked against it; without it a restart after a demo's clock jump
    /// would refuse every proposal).
    file: Option<PathBuf>,
    /// Serialises advance-and-write, so the file always holds the latest offset.
    writing: Mutex<()>,
}

impl Clock {
    pub fn new(offset_ms: i64) -> Clock {
        Clock { offset_ms: AtomicI64::new(offset_ms), file: None, writing: Mutex::new(()) }
    }
    /// A clock whose offset is kept in `file`: the larger of `configured` and what the file
    /// holds (the clock only moves forward).
    pub fn persistent(configured: i64, file: PathBuf) -> Result<Clock, String> {
        let saved = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().parse::<i64>().map_err(|e| format!("{}: not a clock offset in ms: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => configured,
            Err(e) => return Err(format!("reading {}: {e}", file.display())),
        };
        Ok(Clock { offset_ms: AtomicI64::new(configured.max(saved)), file: Some(file), writing: Mutex::new(()) })
    }
    pub fn now_ms(&self) -> u64 {
        let system = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        (system + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    /// Moves the clock forward by `ms`; returns the new offset.
    pub fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed) + ms
    }
    /// [`Clock::advance`], then writes the new offset to the clock's file (if it has one),
    /// synced, before returning.
    pub fn advance_persisted(&self, ms: i64) -> Result<i64, String> {
        let _guard = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let offset = self.advance(ms);
        if let Some(file) = &self.file {
            let tmp = file.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(format!("{offset}\n").as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, file)
            };
            write().map_err(|e| format!("writing {}: {e}", file.display()))?;
        }
        Ok(offset)
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
    /// Guest and open submissions counted per signer (docs/NODE.md, "API authority").
    pub submit_limits: auth::SignerLimits,
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
    /// Testnet only: the clock offset moved by `POST /v1/testnet/clock`.
    pub fn clock_offset(&self) -> PathBuf {
        self.root.join("clock-offset-ms")
    }
    /// Where a running node writes the API address it bound (its config may ask for port 0).
    pub fn api_addr(&self) -> PathBuf {
        self.root.join("api.addr")
    }
    /// Writes the bound API address, whole or not at all (a reader never sees half of it).
    pub fn write_api_addr(&self, addr: std::net::SocketAddr) -> Result<(), String> {
        let temporary = self.root.join("api.addr.tmp");
        std::fs::write(&temporary, format!("{addr}\n")).map_err(|e| format!("writing {}: {e}", temporary.display()))?;
        std::fs::rename(&temporary, self.api_addr()).map_err(|e| format!("writing {}: {e}", self.api_addr().display()))
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
