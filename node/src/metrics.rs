//! Prometheus metrics served at `/metrics`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    pub height: Gauge,
    pub view: Gauge,
    pub finalized_blocks: Counter,
    pub finalized_records: Counter,
    pub mempool_records: Gauge,
    pub peers: Gauge,
    /// Connected peers whose network key is a validator's.
    pub validator_peers: Gauge,
    /// Blocks behind the highest tip a peer reported (set when rendered).
    pub sync_lag_blocks: Gauge,
    /// Seconds since the last finalized block's time (set when rendered).
    pub last_block_age_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub refused_peers: Counter,
    pub invalid_proposals: Counter,
    pub synced_blocks: Counter,
    /// From a proposal's arrival to our notarize vote on it.
    pub vote_latency: Histogram,
    /// From a record's admission into this node's mempool to its block's finalization.
    pub finality_latency: Histogram,
    /// HTTP API connections open now.
    pub api_connections: Gauge,
    /// New API connections closed at once: `api_connections_max` reached and none idle.
    pub api_refused_connections: Counter,
    /// Idle API connections closed to make room for a new one.
    pub api_evicted_connections: Counter,
    /// API connections closed for not sending a whole header within `api_header_read_timeout_ms`.
    pub api_header_timeouts: Counter,
    /// API requests answered 408 after `api_request_timeout_ms`.
    pub api_request_timeouts: Counter,
    /// API requests answered 429: the client had `api_requests_per_client_max` in flight.
    pub api_throttled_requests: Counter,
    /// API requests refused before routing: header or URI too large (431, 414).
    pub api_oversized_requests: Counter,
    /// Failed accepts on the API socket (e.g. out of file descriptors).
    pub api_accept_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("plaza");
        let m = Metrics {
            height: Gauge::default(),
            view: Gauge::default(),
            finalized_blocks: Counter::default(),
            finalized_records: Counter::default(),
            mempool_records: Gauge::default(),
            peers: Gauge::default(),
            validator_peers: Gauge::default(),
            sync_lag_blocks: Gauge::default(),
            last_block_age_seconds: Gauge::default(),
            refused_peers: Counter::default(),
            invalid_proposals: Counter::default(),
            synced_blocks: Counter::default(),
            vote_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            finality_latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            api_connections: Gauge::default(),
            api_refused_connections: Counter::default(),
            api_evicted_connections: Counter::default(),
            api_header_timeouts: Counter::default(),
            api_request_timeouts: Counter::default(),
            api_throttled_requests: Counter::default(),
            api_oversized_requests: Counter::default(),
            api_accept_errors: Counter::default(),
            registry: Registry::default(),
        };
        registry.register("height", "Height of the last finalized block", m.height.clone());
        registry.register("view", "Current consensus view", m.view.clone());
        registry.register("finalized_blocks", "Blocks finalized (or synced) since start", m.finalized_blocks.clone());
        registry.register("finalized_records", "Records finalized since start", m.finalized_records.clone());
        registry.register("mempool_records", "Records waiting in the mempool", m.mempool_records.clone());
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register("validator_peers", "Connected peers that are validators", m.validator_peers.clone());
        registry.register("sync_lag_blocks", "Blocks behind the highest finalized tip a peer reported", m.sync_lag_blocks.clone());
        registry.register("last_block_age_seconds", "Seconds since the time of the last finalized block", m.last_block_age_seconds.clone());
        registry.register(
            "build",
            "The node's build",
            prometheus_client::metrics::info::Info::new(vec![("version", env!("CARGO_PKG_VERSION").to_owned())]),
        );
        registry.register("refused_peers", "Connections refused: not a member or observer", m.refused_peers.clone());
        registry.register("invalid_proposals", "Proposals that failed verification or execution", m.invalid_proposals.clone());
        registry.register("synced_blocks", "Blocks stored through block sync", m.synced_blocks.clone());
        registry.register("vote_latency_seconds", "From a proposal's arrival to this node's notarize vote", m.vote_latency.clone());
        registry.register(
            "finality_latency_seconds",
            "From a record's admission into this node's mempool to finalization",
            m.finality_latency.clone(),
        );
        registry.register("api_connections", "HTTP API connections open now", m.api_connections.clone());
        registry.register("api_refused_connections", "API connections closed at once: api_connections_max reached, none idle", m.api_refused_connections.clone());
        registry.register("api_evicted_connections", "Idle API connections closed to make room for a new one", m.api_evicted_connections.clone());
        registry.register("api_header_timeouts", "API connections closed: no whole request header within api_header_read_timeout_ms", m.api_header_timeouts.clone());
        registry.register("api_request_timeouts", "API requests answered 408 after api_request_timeout_ms", m.api_request_timeouts.clone());
        registry.register("api_throttled_requests", "API requests answered 429: api_requests_per_client_max in flight", m.api_throttled_requests.clone());
        registry.register("api_oversized_requests", "API requests answered 414 or 431 before routing", m.api_oversized_requests.clone());
        registry.register("api_accept_errors", "Failed accepts on the API socket (e.g. out of file descriptors)", m.api_accept_errors.clone());
        Metrics { registry, ..m }
    }

    /// Metrics for a node whose finalized tip is `height` at start (a restarted node shows
    /// its height before its next block).
    pub fn at_height(height: u64) -> Metrics {
        let m = Metrics::new();
        m.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        m
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
