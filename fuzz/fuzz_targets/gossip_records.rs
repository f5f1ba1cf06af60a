//! A gossip message of records from a peer: at most 1,024 records under the gossip size limit;
//! what decodes re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_node::net::{decode_records, encode_records, GOSSIP_BYTES_MAX, RECORDS_PER_GOSSIP_MAX};

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = decode_records(data) {
        assert!(data.len() <= GOSSIP_BYTES_MAX);
        assert!(records.len() <= RECORDS_PER_GOSSIP_MAX);
        assert!(encode_records(&records) == data, "a non-canonical gossip message was accepted");
    }
});
