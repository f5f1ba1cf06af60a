//! An export file as `plaza verify` and `plaza export` read it: magic, version, genesis,
//! optional checkpoint, block frames, End frame with count and checksum, nothing after. Every
//! frame's length is checked before anything is allocated; every block frame is decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::canonical;
use plaza_ledger::audit::export::{ExportReader, FRAME_BYTES_MAX};
use plaza_ledger::audit::BlockEntry;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = ExportReader::open(data) else { return };
    let _ = reader.genesis().alliance_id();
    let _ = reader.checkpoint().map(|c| c.header.height);
    while let Some(item) = reader.next_block_bytes() {
        match item {
            Ok((bytes, _at)) => {
                canonical::<BlockEntry>(&bytes, FRAME_BYTES_MAX);
            }
            Err(failure) => {
                let _ = failure.to_string();
                break;
            }
        }
    }
});
