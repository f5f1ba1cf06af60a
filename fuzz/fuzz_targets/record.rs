//! A record from untrusted bytes (API submissions, gossip, blocks): the canonical decoder, its
//! 64 KiB limit, the id as the hash of the signed bytes, and the stateless checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::canonical;
use plaza_ledger::record::{Record, RECORD_BYTES_MAX};
use plaza_ledger::Hash;

fuzz_target!(|data: &[u8]| {
    if let Some(record) = canonical::<Record>(data, RECORD_BYTES_MAX) {
        assert_eq!(record.id(), Hash::digest(data), "a record's id is the hash of its bytes");
        // The stateless checks return, whatever the fields hold; the signature is checked
        // only when everything else holds (the costly part, reached by the seeds).
        let alliance = record.body().alliance;
        if record.check_without_signature(&alliance).is_ok() {
            let _ = Record::decode_checked(data, &alliance);
        }
    }
});
