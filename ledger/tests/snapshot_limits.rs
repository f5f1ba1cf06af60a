//! A snapshot's empty item slots take no bytes, so decoding them must not take memory in
//! proportion either: the input the `ledger_values` fuzz target found (tests/data/README.md)
//! made the decoder build a dense tree of about 2.5 GiB.

use plaza_ledger::contract::State;

/// The process's peak resident memory so far, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[test]
fn empty_item_slots_cost_a_decoded_snapshot_no_memory() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/snapshot-empty-item-slots.bin")).expect("test data");
    let before = peak_rss_kib();
    let decoded = State::decode_snapshot(&bytes);
    let grown = peak_rss_kib().saturating_sub(before);
    // Whatever the verdict (the fuzz target only asks for no panic and canonical bytes), the
    // decoder may not pay for slots the input did not pay for.
    assert!(grown < 64 * 1024, "decoding a {}-byte snapshot took {grown} KiB more memory", bytes.len());
    if let Ok(state) = decoded {
        use plaza_ledger::codec::Encode;
        assert_eq!(state.to_bytes(), bytes, "a snapshot that decodes is canonical");
        let _ = state.state_root();
    }
}
