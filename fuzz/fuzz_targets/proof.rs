//! A record proof file as `plaza verify-proof` reads it, under its 2 MiB limit; a decoded
//! proof is verified (signatures, paths, anchor), which must return a verdict, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::canonical;
use plaza_ledger::audit::proof::{RecordProof, PROOF_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    if let Some(proof) = canonical::<RecordProof>(data, PROOF_BYTES_MAX) {
        let _ = proof.verify(&[]);
        let _ = proof.verify(&[proof.certified.header.parent]);
    }
});
