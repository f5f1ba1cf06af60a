//! The Plaza node: everything that does I/O — networking, mempool, the consensus driver,
//! block execution and persistence, sync, the HTTP API and metrics.
//!
//! - [`config`]: `config.toml`.
//! - [`chain`]: building, executing and storing blocks (the application consensus orders).
//! - [`mempool`]: checked records waiting for a block.
//! - [`net`]: libp2p (member-only peers, gossip, block sync).
//! - [`driver`]: the loop that runs the pure consensus state machine with tokio timers.
//! - [`api`]: the HTTP API (JSON), `/metrics`, `/openapi.json`.
//! - [`client`]: a minimal blocking HTTP client for the CLI, the testnet and the tests.
//! - [`json`]: record payloads as JSON, converted by hand.
//!
//! Architecture invariant: the driver is the only place where consensus meets tokio, sockets
//! and RocksDB; what goes into a block (records, time) is decided by the proposer and then
//! checked and executed identically by every validator.

pub mod api;
pub mod api_server;
pub mod chain;
pub mod client;
pub mod config;
pub mod driver;
pub mod json;
pub mod limits;
pub mod mempool;
pub mod metrics;
pub mod net;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use plaza_ledger::contract::State;
use plaza_ledger::record::Record;
use plaza_ledger::store::Store;
use plaza_ledger::{Hash, Keypair};
use tokio::sync::{mpsc, oneshot, watch};

pub use config::NodeConfig;

/// The node's wall clock: the system clock plus a testnet-only offset. Block times and
/// node-signed records' created-at times come from it; consensus timers do not.
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// `offset_ms` within ±[`limits::CLOCK_OFFSET_MS_MAX`] (the config check guarantees it;
    /// anything beyond is clamped, never an overflow).
    pub fn new(offset_ms: i64) -> Clock {
        Clock { offset_ms: AtomicI64::new(offset_ms.clamp(-limits::CLOCK_OFFSET_MS_MAX, limits::CLOCK_OFFSET_MS_MAX)) }
    }
    pub fn now_ms(&self) -> u64 {
        let system = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        system.saturating_add(self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    /// Moves the clock forward by `ms` (≥ 0); refuses a move that would take the offset past
    /// [`limits::CLOCK_OFFSET_MS_MAX`], and changes nothing then.
    pub fn advance(&self, ms: i64) -> Result<i64, ClockError> {
        if ms < 0 {
            return Err(ClockError::Backwards);
        }
        self.offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |offset| {
                offset.checked_add(ms).filter(|o| *o <= limits::CLOCK_OFFSET_MS_MAX)
            })
            .map(|previous| previous + ms)
            .map_err(|_| ClockError::TooFar { max_ms: limits::CLOCK_OFFSET_MS_MAX })
    }
}

/// Why the testnet clock did not move.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("the clock only moves forward")]
    Backwards,
    #[error("the clock offset would exceed {max_ms} ms (100 years)")]
    TooFar { max_ms: i64 },
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
    Refused(Rejection),
}

/// Why a submitted record was refused; its kind decides the API status and the code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Failed the stateless checks (alliance, fields, signature).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is not a member of this alliance")]
    NotAMember(plaza_ledger::PublicKey),
    #[error("the mempool is full; retry later")]
    MempoolFull,
    #[error("this merchant has too many records waiting; retry later")]
    MerchantQueueFull,
    #[error("the record's created-at time is outside the time window of the node's clock")]
    OutsideTimeWindow,
}

impl Rejection {
    /// The API's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Invalid(_) => "invalid-record",
            Rejection::NotAMember(_) => "not-a-member",
            Rejection::MempoolFull => "mempool-full",
            Rejection::MerchantQueueFull => "merchant-queue-full",
            Rejection::OutsideTimeWindow => "outside-time-window",
        }
    }
    /// The node is full: the same record may be admitted later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Rejection::MempoolFull | Rejection::MerchantQueueFull)
    }
}

/// Requests from the API to the driver.
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
pub struct Shared {
    pub store: Arc<Store>,
    pub state: Arc<RwLock<State>>,
    pub mempool: Mutex<mempool::Mempool>,
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
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("node.lock")
    }
    /// Takes the home's lock for as long as the returned file lives: one node per home.
    pub fn lock(&self) -> Result<std::fs::File, String> {
        let path = self.lock_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(format!("a node is already running on {} (its lock {} is held); stop it first", self.root.display(), path.display()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
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
