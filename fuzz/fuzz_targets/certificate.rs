//! Validator sets, vote targets, votes and certificates: what consensus messages, blocks and
//! proofs carry. The first byte chooses which. A decoded certificate is also checked against
//! a decoded validator set when the input holds both, which must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::{canonical, split_selector};
use plaza_ledger::cert::{Certificate, ValidatorSet, Vote, VoteTarget};
use plaza_ledger::codec::{Decode, Reader};
use plaza_ledger::Hash;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = split_selector(data) else { return };
    match selector % 5 {
        0 => {
            canonical::<ValidatorSet>(data, LIMIT);
        }
        1 => {
            canonical::<VoteTarget>(data, LIMIT);
        }
        2 => {
            canonical::<Vote>(data, LIMIT);
        }
        3 => {
            canonical::<Certificate>(data, LIMIT);
        }
        _ => {
            // A set followed by a certificate: structure and signatures against that set.
            let mut r = Reader::new(data);
            if let (Ok(set), Ok(cert)) = (ValidatorSet::decode(&mut r), Certificate::decode(&mut r)) {
                let _ = cert.check_signers(&set);
                let _ = cert.verify(&Hash::digest(b"fuzz alliance"), &set);
            }
        }
    }
});
