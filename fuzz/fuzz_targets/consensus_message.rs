//! A consensus message off the gossip network: proposal, vote, certificate or request, under
//! the message size limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_consensus::{Message, MESSAGE_BYTES_MAX};
use plaza_fuzz::canonical;

fuzz_target!(|data: &[u8]| {
    let decoded = Message::decode_bytes(data);
    let value = canonical::<Message>(data, MESSAGE_BYTES_MAX);
    assert_eq!(decoded.ok(), value, "decode_bytes is the size-limited canonical decoder");
});
