//! The node's `config.toml`: parsed and validated; a parsed configuration written back with
//! `to_toml` parses to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_node::NodeConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = NodeConfig::from_toml(text) else { return };
    let written = config.to_toml();
    match NodeConfig::from_toml(&written) {
        Ok(again) => assert_eq!(again, config, "config.toml does not round-trip"),
        Err(e) => panic!("a valid configuration writes a file that does not parse: {e}\n{written}"),
    }
});
