//! The organiser's genesis TOML (`plaza genesis`, `plaza init`): parsed and validated, then
//! its canonical bytes round-trip and hash to the same alliance id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::round_trip;
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::genesis::{Genesis, GENESIS_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(genesis) = Genesis::from_toml(text) else { return };
    genesis.validate().expect("a parsed genesis is valid");
    round_trip(&genesis, GENESIS_BYTES_MAX);
    let again = Genesis::from_bytes(&genesis.to_bytes(), GENESIS_BYTES_MAX).expect("round trip");
    assert_eq!(again.alliance_id(), genesis.alliance_id());
});
