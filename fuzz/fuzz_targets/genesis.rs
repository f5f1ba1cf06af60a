//! A genesis in canonical bytes (export files, proofs, the node's store), under its 1 MiB
//! limit; decoding validates it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::canonical;
use plaza_ledger::genesis::{Genesis, GENESIS_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    if let Some(genesis) = canonical::<Genesis>(data, GENESIS_BYTES_MAX) {
        genesis.validate().expect("a decoded genesis is valid");
    }
});
