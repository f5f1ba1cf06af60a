//! A block-sync request from a peer (`/plaza/sync/1`), under its 1 KiB limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plaza_fuzz::canonical;
use plaza_node::net::{SyncRequest, SYNC_REQUEST_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    canonical::<SyncRequest>(data, SYNC_REQUEST_BYTES_MAX);
});
