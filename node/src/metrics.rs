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
    pub refused_peers: Counter,
    pub invalid_proposals: Counter,
    pub synced_blocks: Counter,
    /// From a proposal's arrival to our notarize vote on it.
    pub vote_latency: Histogram,
    /// From a record's admission into this node's mempool to its block's finalization.
    pub finality_latency: Histogram,
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
            refused_peers: Counter::default(),
            invalid_proposals: Counter::default(),
            synced_blocks: Counter::default(),
            vote_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            finality_latency: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register("height", "Height of the last finalized block", m.height.clone());
        registry.register("view", "Current consensus view", m.view.clone());
        registry.register("finalized_blocks", "Blocks finalized (or synced) since start", m.finalized_blocks.clone());
        registry.register("finalized_records", "Records finalized since start", m.finalized_records.clone());
        registry.register("mempool_records", "Records waiting in the mempool", m.mempool_records.clone());
        registry.register("peers", "Connected peers", m.peers.clone());
        registry.register("refused_peers", "Connections refused: not a member or observer", m.refused_peers.clone());
        registry.register("invalid_proposals", "Proposals that failed verification or execution", m.invalid_proposals.clone());
        registry.register("synced_blocks", "Blocks stored through block sync", m.synced_blocks.clone());
        registry.register("vote_latency_seconds", "From a proposal's arrival to this node's notarize vote", m.vote_latency.clone());
        registry.register(
            "finality_latency_seconds",
            "From a record's admission into this node's mempool to finalization",
            m.finality_latency.clone(),
        );
        Metrics { registry, ..m }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
