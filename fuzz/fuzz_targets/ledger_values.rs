//! The other stored and exported values: receipts, statements, policies, Merkle inclusion
//! proofs and the state snapshot a node restarts from or an export's checkpoint carries.
//! The first byte chooses which.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::{canonical, split_selector};
use plaza_ledger::codec::{Decode, DecodeError, Encode};
use plaza_ledger::contract::{State, Statement, STATE_BYTES_MAX};
use plaza_ledger::merkle::InclusionProof;
use plaza_ledger::policy::Policy;
use plaza_ledger::receipt::Receipt;
use plaza_ledger::Hash;

const LIMIT: usize = 1 << 24;

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = split_selector(data) else { return };
    match selector % 5 {
        0 => {
            canonical::<Receipt>(data, LIMIT);
        }
        1 => {
            if let Some(statement) = canonical::<Statement>(data, LIMIT) {
                let _ = statement.hash();
                let _ = statement.render();
            }
        }
        2 => {
            if let Some(policy) = canonical::<Policy>(data, LIMIT) {
                let _ = policy.validate();
            }
        }
        3 => {
            if let Some(proof) = canonical::<InclusionProof>(data, LIMIT) {
                let _ = proof.verify(&Hash::digest(b"leaf"), &Hash::digest(b"root"));
            }
        }
        _ => {
            if let Some(cut) = data.len().checked_sub(1) {
                assert!(matches!(State::from_bytes(data, cut), Err(DecodeError::TooLarge { .. })));
            }
            if let Ok(state) = State::decode_snapshot(data) {
                let bytes = state.to_bytes();
                assert!(bytes == data, "a non-canonical state snapshot was accepted");
                assert!(bytes.len() <= STATE_BYTES_MAX);
                let _ = state.state_root();
            }
        }
    }
});
