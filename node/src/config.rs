//! The node's configuration file, `config.toml` in the node home, with documented defaults
//! (docs/NODE.md lists every key).

use serde::{Deserialize, Serialize};

/// Every field has a default; unknown fields are errors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// libp2p listen multiaddr.
    pub listen: String,
    /// HTTP API socket address; loopback unless you mean it.
    pub api: String,
    /// Multiaddrs of peers to dial at start.
    pub peers: Vec<String>,
    /// Network keys (hex) of observer nodes allowed to connect read-only; re-read from the
    /// file while the node runs.
    pub observers: Vec<String>,
    /// This node is an observer (`plaza init --observer`): it syncs and serves blocks, never
    /// votes, and refuses submissions.
    pub observer: bool,
    /// `human` or `json`.
    pub log_format: String,
    /// Records waiting in the mempool, at most.
    pub mempool_records_max: usize,
    /// Records one merchant may have waiting in the mempool (fairness between merchants).
    pub mempool_records_per_merchant_max: usize,
    /// Records in one proposed block, at most.
    pub block_records_max: usize,
    /// A leader with records waiting proposes this long after it entered its view (batching).
    pub block_interval_ms: u64,
    /// A leader with nothing to propose proposes an empty block after this long
    /// (keeps block time moving so settlement periods close); below `view_timeout_ms`.
    pub empty_block_interval_ms: u64,
    /// Consensus view timeout.
    pub view_timeout_ms: u64,
    /// Consensus rebroadcast interval while stuck.
    pub rebroadcast_interval_ms: u64,
    /// A proposal whose block time differs from our clock by more than this is invalid.
    pub block_time_skew_ms_max: u64,
    /// A state snapshot is written with every this many finalized blocks.
    pub snapshot_interval_blocks: u64,
    /// HTTP request bodies, at most.
    pub api_body_bytes_max: usize,
    /// Peers connected at once, at most.
    pub peers_max: u32,
    /// HTTP API connections open at once, at most; above it the oldest idle connection (of the
    /// client holding the most) is closed, or the new one when none is idle.
    pub api_connections_max: usize,
    /// A connection that has not sent a whole request header this long after it opened (or
    /// after its last response) is closed.
    pub api_header_read_timeout_ms: u64,
    /// A request (body read and answer) that takes longer gets 408 and its connection closes;
    /// above the `?wait=true` limit.
    pub api_request_timeout_ms: u64,
    /// Requests one client address may have in flight at once; more get 429.
    pub api_requests_per_client_max: usize,
    /// Testnet only: milliseconds added to this node's wall clock (the clock block times and
    /// node-signed records use). Lets a demo play a day in minutes; whatever time a proposer
    /// puts in a header is what everyone executes, so the chain stays deterministic.
    pub clock_offset_ms: i64,
    /// Testnet only: allow `POST /v1/testnet/clock` to move `clock_offset_ms` forward.
    pub testnet_clock_api: bool,
    /// Guest tokens (at least 32 characters each): they submit records already signed by their
    /// merchant, never make this node sign (docs/NODE.md, "API authority").
    pub api_guest_tokens: Vec<String>,
    /// Accept records signed by their merchant with no token at all.
    pub api_open_submit: bool,
    /// Records one signer may submit a minute with a guest token or none.
    pub api_guest_records_per_signer_per_minute: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: "/ip4/127.0.0.1/tcp/7100".into(),
            api: "127.0.0.1:7180".into(),
            peers: Vec::new(),
            observers: Vec::new(),
            observer: false,
            log_format: "human".into(),
            mempool_records_max: 100_000,
            mempool_records_per_merchant_max: 20_000,
            block_records_max: 5_000,
            block_interval_ms: 50,
            empty_block_interval_ms: 1_000,
            view_timeout_ms: 3_000,
            rebroadcast_interval_ms: 1_000,
            block_time_skew_ms_max: 30_000,
            snapshot_interval_blocks: 200,
            api_body_bytes_max: 8 * 1024 * 1024,
            peers_max: 64,
            api_connections_max: 256,
            api_header_read_timeout_ms: 10_000,
            api_request_timeout_ms: 75_000,
            api_requests_per_client_max: 64,
            clock_offset_ms: 0,
            testnet_clock_api: false,
            api_guest_tokens: Vec::new(),
            api_open_submit: false,
            api_guest_records_per_signer_per_minute: 600,
        }
    }
}

impl NodeConfig {
    pub fn to_toml(&self) -> String {
        format!(
            "# Plaza node configuration. Every key is optional; these are the values in force.\n# See docs/NODE.md for what each one means.\n{}",
            toml::to_string(self).expect("a config always serialises")
        )
    }

    pub fn from_toml(text: &str) -> Result<NodeConfig, String> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| {
            // Name the line: the parser's message alone may not say which key it was.
            let line = e.span().and_then(|span| text.get(..span.start)).map(|before| before.matches('\n').count() + 1);
            match line.and_then(|n| text.lines().nth(n - 1).map(|l| (n, l.trim()))) {
                Some((n, l)) => format!("config.toml line {n} ({l}): {}", e.message()),
                None => format!("config.toml: {}", e.message()),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Relations between fields that the types cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.log_format != "human" && self.log_format != "json" {
            return Err(format!("config.toml: log_format must be \"human\" or \"json\", not {:?}", self.log_format));
        }
        if self.block_records_max == 0 || self.block_records_max > plaza_ledger::block::RECORDS_PER_BLOCK_MAX {
            return Err(format!("config.toml: block_records_max must be 1 to {}", plaza_ledger::block::RECORDS_PER_BLOCK_MAX));
        }
        if self.mempool_records_max == 0 || self.mempool_records_per_merchant_max == 0 {
            return Err("config.toml: mempool limits must be positive".into());
        }
        if self.view_timeout_ms < 100 || self.empty_block_interval_ms >= self.view_timeout_ms {
            return Err("config.toml: view_timeout_ms must be at least 100 and above empty_block_interval_ms".into());
        }
        if self.block_interval_ms > self.empty_block_interval_ms {
            return Err("config.toml: block_interval_ms must not exceed empty_block_interval_ms".into());
        }
        if self.rebroadcast_interval_ms == 0 || self.snapshot_interval_blocks == 0 {
            return Err("config.toml: rebroadcast_interval_ms and snapshot_interval_blocks must be positive".into());
        }
        if self.api_body_bytes_max < 1024 {
            return Err("config.toml: api_body_bytes_max must be at least 1024".into());
        }
        if let Some(t) = self.api_guest_tokens.iter().find(|t| t.trim().len() < 32 || t.trim() != t.as_str()) {
            return Err(format!("config.toml: api_guest_tokens: {:?} must be at least 32 characters, without surrounding spaces", t));
        }
        if self.api_guest_records_per_signer_per_minute == 0 {
            return Err("config.toml: api_guest_records_per_signer_per_minute must be positive".into());
        }
        if let Some(bad) = self.observers.iter().find(|o| plaza_ledger::PublicKey::from_hex(o).is_err()) {
            return Err(format!("config.toml: observers: {bad:?} is not a network key (64 hex digits, as `plaza keys show` prints it)"));
        }
        crate::limits::check_config(self)?;
        self.api.parse::<std::net::SocketAddr>().map_err(|e| format!("config.toml: api {:?}: {e}", self.api))?;
        Ok(())
    }
}
