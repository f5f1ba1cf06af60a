//! Blocks as they arrive by sync and sit in exports: a header, a block (header and records),
//! a finalized block (block and certificate), and an export's block entry (finalized block,
//! receipts, statement). The first byte chooses which.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::{canonical, split_selector};
use plaza_ledger::audit::BlockEntry;
use plaza_ledger::audit::export::FRAME_BYTES_MAX;
use plaza_ledger::block::{Block, BlockHeader, FinalizedBlock, BLOCK_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = split_selector(data) else { return };
    match selector % 4 {
        0 => {
            canonical::<BlockHeader>(data, BLOCK_BYTES_MAX);
        }
        1 => {
            if let Some(block) = canonical::<Block>(data, BLOCK_BYTES_MAX) {
                let _ = block.records_match_header();
            }
        }
        2 => {
            canonical::<FinalizedBlock>(data, BLOCK_BYTES_MAX + 64 * 1024);
        }
        _ => {
            canonical::<BlockEntry>(data, FRAME_BYTES_MAX);
        }
    }
});
