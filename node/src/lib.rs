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
//! - [`limits`]: range checks where numbers enter (config keys, the testnet clock).
//!
//! With `io`:
//! - [`driver`]: the thin shell that turns the replica's effects into tokio, libp2p and
//!   RocksDB calls.
//! - [`net`]: libp2p (member-only peers, gossip, block sync).
//! - [`api`]: the HTTP API (JSON), `/metrics`, `/openapi.json`.
//! - [`api_server`]: the HTTP server under it: connection limit with idle eviction,
//!   header-read and request timeouts, per-client concurrency, JSON for every error status.
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
pub mod api_server;
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
pub mod limits;
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
use plaza_ledger::Keypair;
use plaza_ledger::Hash;
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
    /// `offset_ms` within ±[`limits::CLOCK_OFFSET_MS_MAX`] (the config check guarantees it;
    /// anything beyond is clamped, never an overflow).
    pub fn new(offset_ms: i64) -> Clock {
        let offset_ms = offset_ms.clamp(-limits::CLOCK_OFFSET_MS_MAX, limits::CLOCK_OFFSET_MS_MAX);
        Clock { offset_ms: AtomicI64::new(offset_ms), file: None, writing: Mutex::new(()) }
    }
    /// A clock whose offset is kept in `file`: the larger of `configured` and what the file
    /// holds (the clock only moves forward). A saved offset out of range is an error.
    pub fn persistent(configured: i64, file: PathBuf) -> Result<Clock, String> {
        let saved = match std::fs::read_to_string(&file) {
            Ok(text) => text.trim().parse::<i64>().map_err(|e| format!("{}: not a clock offset in ms: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => configured,
            Err(e) => return Err(format!("reading {}: {e}", file.display())),
        };
        if !(-limits::CLOCK_OFFSET_MS_MAX..=limits::CLOCK_OFFSET_MS_MAX).contains(&saved) {
            return Err(format!("{}: the clock offset {saved} ms is beyond ±{} ms (100 years)", file.display(), limits::CLOCK_OFFSET_MS_MAX));
        }
        let clock = Clock::new(configured.max(saved));
        Ok(Clock { file: Some(file), ..clock })
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
    /// [`Clock::advance`], then writes the new offset to the clock's file (if it has one),
    /// synced, before returning.
    pub fn advance_persisted(&self, ms: i64) -> Result<i64, ClockError> {
        let _guard = self.writing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let offset = self.advance(ms)?;
        if let Some(file) = &self.file {
            let tmp = file.with_extension("tmp");
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(format!("{offset}\n").as_bytes())?;
                f.sync_all()?;
                std::fs::rename(&tmp, file)
            };
            write().map_err(|e| ClockError::Write(format!("writing {}: {e}", file.display())))?;
        }
        Ok(offset)
    }
}

/// Why the testnet clock did not move.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("the clock only moves forward")]
    Backwards,
    #[error("the clock offset would exceed {max_ms} ms (100 years)")]
    TooFar { max_ms: i64 },
    /// The offset moved but could not be saved (the node's own failure).
    #[error("{0}")]
    Write(String),
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
    /// A sale whose order id this signer already used for a different sale (a retry must
    /// repeat the original exactly).
    #[error("order {order:?} is already record {original}, a different sale; a retry must repeat the original sale")]
    ConflictingOrder { order: String, original: Hash },
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
            Rejection::ConflictingOrder { .. } => "conflicting-order",
        }
    }
    /// The node is full: the same record may be admitted later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Rejection::MempoolFull | Rejection::MerchantQueueFull)
    }
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
    /// Connected peers whose network key is a validator's.
    pub validator_peers: usize,
    /// Connected peers whose network key is a member's (validators included).
    pub member_peers: usize,
    /// The highest finalized height a peer reported in a block-sync answer.
    pub best_peer_height: u64,
}

/// Whether a node is ready to serve (`GET /readyz`), and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// `synced`, `syncing` or `no-peers`.
    pub sync_state: &'static str,
    /// Blocks behind the highest tip a peer reported (0 when none is known to be ahead).
    pub lag_blocks: u64,
    /// Validators reachable: connected validator peers, plus this node if it validates.
    pub validators_reachable: usize,
    pub quorum: usize,
    /// Why the node is not ready; `None` when it is.
    pub reason: Option<String>,
}

/// A node this many blocks behind a peer's reported tip is syncing, not ready.
pub const READY_LAG_BLOCKS_MAX: u64 = 2;

impl Status {
    /// Readiness from the live status, the finalized height and the validator set's size and
    /// quorum: a validator needs a quorum of validators reachable (itself included), any other
    /// node at least one member peer; and the node must be within
    /// [`READY_LAG_BLOCKS_MAX`] blocks of every tip its peers reported.
    pub fn readiness(&self, height: u64, quorum: usize) -> Readiness {
        let validators_reachable = self.validator_peers + usize::from(self.validator);
        let lag_blocks = self.best_peer_height.saturating_sub(height);
        let connected = if self.validator { validators_reachable >= quorum } else { self.member_peers > 0 };
        let sync_state = if !connected && self.peers.is_empty() {
            "no-peers"
        } else if lag_blocks > READY_LAG_BLOCKS_MAX {
            "syncing"
        } else {
            "synced"
        };
        let reason = if !connected {
            Some(if self.validator {
                format!("{validators_reachable} of the {quorum} validators a quorum needs are connected (this node included)")
            } else {
                "no member peer is connected".to_owned()
            })
        } else if lag_blocks > READY_LAG_BLOCKS_MAX {
            Some(format!("syncing: {lag_blocks} blocks behind a peer's tip {} (at most {READY_LAG_BLOCKS_MAX})", self.best_peer_height))
        } else {
            None
        };
        Readiness { sync_state, lag_blocks, validators_reachable, quorum, reason }
    }
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
