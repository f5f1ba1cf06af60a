//! Range checks where numbers enter the node (issue 20): every numeric key of `config.toml`
//! and the testnet clock. The release profile keeps overflow checks on, so a number that can
//! reach arithmetic (a timer's `Instant + Duration`, the clock's `system + offset`) is
//! bounded here, where it enters, with a specific error, instead of panicking later.

use crate::config::NodeConfig;

/// A day: the longest interval or timeout a config key may name.
pub const INTERVAL_MS_MAX: u64 = 86_400_000;
/// The testnet clock offset, either way, at most: 100 years (so `system + offset` never
/// overflows and block times stay in the years a `u64` of milliseconds can carry).
pub const CLOCK_OFFSET_MS_MAX: i64 = 100 * 366 * 86_400_000;
/// Records waiting in a mempool, at most, whatever the config says.
pub const MEMPOOL_RECORDS_LIMIT: usize = 10_000_000;
/// Request bodies, at most, whatever the config says.
pub const API_BODY_BYTES_LIMIT: usize = 256 * 1024 * 1024;
/// API connections, at most, whatever the config says.
pub const API_CONNECTIONS_LIMIT: usize = 65_536;
/// Peers, at most, whatever the config says.
pub const PEERS_LIMIT: u32 = 10_000;
/// Blocks between state snapshots, at most.
pub const SNAPSHOT_INTERVAL_BLOCKS_MAX: u64 = 1_000_000;

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(key: &str, value: T, min: T, max: T) -> Result<(), String> {
    if value < min || value > max {
        return Err(format!("config.toml: {key} = {value} is out of range ({min} to {max})"));
    }
    Ok(())
}

/// Every numeric key within its range (called by [`NodeConfig::validate`]).
pub fn check_config(c: &NodeConfig) -> Result<(), String> {
    in_range("mempool_records_max", c.mempool_records_max, 1, MEMPOOL_RECORDS_LIMIT)?;
    in_range("mempool_records_per_merchant_max", c.mempool_records_per_merchant_max, 1, MEMPOOL_RECORDS_LIMIT)?;
    in_range("block_interval_ms", c.block_interval_ms, 0, INTERVAL_MS_MAX)?;
    in_range("empty_block_interval_ms", c.empty_block_interval_ms, 0, INTERVAL_MS_MAX)?;
    in_range("view_timeout_ms", c.view_timeout_ms, 100, INTERVAL_MS_MAX)?;
    in_range("rebroadcast_interval_ms", c.rebroadcast_interval_ms, 1, INTERVAL_MS_MAX)?;
    in_range("block_time_skew_ms_max", c.block_time_skew_ms_max, 0, INTERVAL_MS_MAX)?;
    in_range("snapshot_interval_blocks", c.snapshot_interval_blocks, 1, SNAPSHOT_INTERVAL_BLOCKS_MAX)?;
    in_range("api_body_bytes_max", c.api_body_bytes_max, 1024, API_BODY_BYTES_LIMIT)?;
    in_range("peers_max", c.peers_max, 1, PEERS_LIMIT)?;
    in_range("clock_offset_ms", c.clock_offset_ms, -CLOCK_OFFSET_MS_MAX, CLOCK_OFFSET_MS_MAX)?;
    in_range("api_connections_max", c.api_connections_max, 1, API_CONNECTIONS_LIMIT)?;
    in_range("api_header_read_timeout_ms", c.api_header_read_timeout_ms, 100, INTERVAL_MS_MAX)?;
    in_range("api_request_timeout_ms", c.api_request_timeout_ms, 1_000, INTERVAL_MS_MAX)?;
    in_range("api_requests_per_client_max", c.api_requests_per_client_max, 1, API_CONNECTIONS_LIMIT)?;
    // The addresses matter only to the I/O shell (the simulator has no sockets).
    #[cfg(feature = "io")]
    {
        c.listen.parse::<libp2p::Multiaddr>().map_err(|e| format!("config.toml: listen {:?} is not a multiaddr: {e}", c.listen))?;
        for peer in &c.peers {
            check_peer_address(peer).map_err(|e| format!("config.toml: {e}"))?;
        }
    }
    Ok(())
}

/// A peer address: a multiaddr such as `/ip4/10.0.0.2/tcp/7100/p2p/12D3…`.
#[cfg(feature = "io")]
pub fn check_peer_address(text: &str) -> Result<(), String> {
    text.parse::<libp2p::Multiaddr>().map(drop).map_err(|e| format!("peer {text:?} is not a multiaddr (e.g. /ip4/10.0.0.2/tcp/7100): {e}"))
}

/// A warning when the API address is not loopback: the API then serves the network, and
/// anyone who can reach it may read the ledger (writes still need the token).
pub fn public_api_warning(api: &str) -> Option<String> {
    let addr: std::net::SocketAddr = api.parse().ok()?;
    (!addr.ip().is_loopback()).then(|| {
        format!("the API address {api} is not loopback: the HTTP API (reads without a token) serves the network; keep it on 127.0.0.1 unless you mean it")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_numeric_key_rejects_its_extremes() {
        let toml_for = |key: &str, value: &str| format!("{key} = {value}\n");
        for (key, bad) in [
            ("clock_offset_ms", "9223372036854775807"),
            ("clock_offset_ms", "-9223372036854775808"),
            ("view_timeout_ms", "18446744073709551615"),
            ("block_interval_ms", "18446744073709551615"),
            ("empty_block_interval_ms", "18446744073709551615"),
            ("rebroadcast_interval_ms", "18446744073709551615"),
            ("block_time_skew_ms_max", "18446744073709551615"),
            ("snapshot_interval_blocks", "18446744073709551615"),
            ("mempool_records_max", "18446744073709551615"),
            ("mempool_records_per_merchant_max", "0"),
            ("api_body_bytes_max", "18446744073709551615"),
            ("peers_max", "0"),
            ("api_connections_max", "0"),
            ("api_header_read_timeout_ms", "18446744073709551615"),
            ("api_request_timeout_ms", "0"),
            ("api_requests_per_client_max", "0"),
        ] {
            let err = NodeConfig::from_toml(&toml_for(key, bad)).expect_err(key);
            assert!(err.contains(key) || err.contains("out of range") || err.contains("must"), "{key} = {bad}: {err}");
        }
        // Beyond the type's range: the TOML parser's own error, still an error.
        assert!(NodeConfig::from_toml("clock_offset_ms = 9223372036854775808\n").is_err());
        assert!(NodeConfig::from_toml("peers_max = -1\n").is_err());
        // The edges themselves are accepted.
        let edge = format!("clock_offset_ms = {CLOCK_OFFSET_MS_MAX}\n");
        assert!(NodeConfig::from_toml(&edge).is_ok());
    }

    #[cfg(feature = "io")]
    #[test]
    fn addresses_are_checked() {
        let err = NodeConfig::from_toml("peers = [\"not-a-multiaddr\"]\n").expect_err("bad peer");
        assert!(err.contains("not a multiaddr"), "{err}");
        assert!(NodeConfig::from_toml("listen = \"7100\"\n").is_err());
        assert!(NodeConfig::from_toml("peers = [\"/ip4/10.0.0.2/tcp/7100\"]\n").is_ok());
        assert!(public_api_warning("0.0.0.0:7180").is_some());
        assert!(public_api_warning("10.1.2.3:7180").is_some());
        assert!(public_api_warning("127.0.0.1:7180").is_none());
        assert!(public_api_warning("[::1]:7180").is_none());
    }

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(check_config(&NodeConfig::default()), Ok(()));
    }
}
