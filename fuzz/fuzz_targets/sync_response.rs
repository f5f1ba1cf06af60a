//! A block-sync response from a peer: its tip and the encoded finalized blocks, each of which
//! the node then decodes as a `FinalizedBlock` (done here too).
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::canonical;
use plaza_ledger::block::{FinalizedBlock, BLOCK_BYTES_MAX};
use plaza_ledger::codec::Decode;
use plaza_node::net::{SyncResponse, SYNC_RESPONSE_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    if let Some(response) = canonical::<SyncResponse>(data, SYNC_RESPONSE_BYTES_MAX + 4096) {
        for block in &response.blocks {
            let _ = FinalizedBlock::from_bytes(block, BLOCK_BYTES_MAX + 64 * 1024);
        }
    }
});
