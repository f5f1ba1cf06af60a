//! Chain verification speed (docs/BENCHMARKS.md, "Chain verification").
//!
//! Builds a deterministic chain (`audit::chain::ChainBuilder`) of `PLAZA_VERIFY_RECORDS`
//! records (default 100,000; the documented figure uses 1,000,000) in blocks of
//! `PLAZA_VERIFY_BLOCK` (default 1,000), writes it as an export file, then measures in the same
//! run:
//! - the ed25519 batch-verification ceiling: `keys::verify_batch` over the chain's own record
//!   signatures, in batches of 256, on all cores, before and after the verification (the ratio
//!   is taken to the mean of the two);
//! - `plaza verify`'s work on the export file: reading, decoding, every signature, every
//!   certificate, re-execution and every root.
//!
//! and prints both rates, their ratio, the same ratio per CPU second of this process (a figure
//! that other processes' load does not skew), and one JSON line.
//!
//! Run: `cargo bench -p plaza-ledger --bench verify` (add `PLAZA_VERIFY_RECORDS=1000000`).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::thread;
use std::time::Instant;

use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::audit::export::{ExportReader, ExportWriter};
use plaza_ledger::audit::verify::{default_threads, BATCH_SIGNATURES};
use plaza_ledger::audit::{verify_chain, VerifyOptions};
use plaza_ledger::keys::{self, domain, BatchItem};
use plaza_ledger::{PublicKey, Signature};

/// Signatures kept for the ceiling measurement.
const CEILING_SIGNATURES: usize = 200_000;

/// This process's CPU time (user + system, all threads) from `/proc/self/stat` (Linux; zero
/// elsewhere): CPU seconds per wall second of verification say how busy the cores were.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses): utime and stime are the 12th and
    // 13th of them, in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// Signatures per second, and per CPU second of this process.
fn ceiling(jobs: &[(PublicKey, Vec<u8>, Signature)], threads: usize) -> (f64, f64) {
    let per_thread = jobs.len().div_ceil(threads);
    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let accepted: usize = thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(per_thread)
            .map(|part| {
                s.spawn(move || {
                    let mut ok = 0;
                    for chunk in part.chunks(BATCH_SIGNATURES) {
                        let items: Vec<BatchItem<'_>> =
                            chunk.iter().map(|(key, message, signature)| BatchItem { key, domain: domain::RECORD, message, signature }).collect();
                        ok += keys::verify_batch(&items).into_iter().filter(|a| *a).count();
                    }
                    ok
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).sum()
    });
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_started;
    assert_eq!(accepted, jobs.len(), "every signature of the chain is valid");
    (jobs.len() as f64 / seconds, jobs.len() as f64 / cpu_seconds)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let records = if quick { 2_000 } else { env_usize("PLAZA_VERIFY_RECORDS", 100_000) };
    let per_block = env_usize("PLAZA_VERIFY_BLOCK", 1_000).max(1);
    let threads = env_usize("PLAZA_VERIFY_THREADS", default_threads()).max(1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("chain.plaza-export");

    // Build and export the chain; keep some signatures for the ceiling.
    let started = Instant::now();
    let mut builder = ChainBuilder::new(20, 4);
    let file = File::create(&path).expect("create the export");
    let mut writer = ExportWriter::new(BufWriter::new(file), builder.genesis(), None).expect("write");
    let mut jobs = Vec::new();
    let mut built = 0usize;
    let mut blocks = 0u64;
    while built < records {
        // `sales(n)` adds a card issue for every tenth sale: aim at `per_block` records.
        let sales = (per_block * 10 / 11).clamp(1, records - built);
        let block_records = builder.sales(sales);
        built += block_records.len();
        for r in &block_records {
            if jobs.len() < CEILING_SIGNATURES {
                jobs.push((*r.signer(), r.signing_bytes(), *r.signature()));
            }
        }
        let entry = builder.push(block_records).expect("the builder makes valid blocks");
        writer.write_block(&entry).expect("write");
        blocks += 1;
        builder.advance(60_000);
    }
    writer.finish().expect("finish the export");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("built {built} records in {blocks} blocks ({bytes} bytes) in {:.1} s", started.elapsed().as_secs_f64());

    // The ceiling is measured before and after the verification and the ratio taken to their
    // mean: a shared machine's speed drifts by several per cent within a minute, which a
    // single ceiling run before the verification would count against (or for) the verifier.
    let (ceiling_before, ceiling_cpu_before) = ceiling(&jobs, threads);

    let started = Instant::now();
    let cpu_started = process_cpu_seconds();
    let mut reader = ExportReader::open(BufReader::new(File::open(&path).expect("open"))).expect("a valid export");
    let genesis = reader.genesis().clone();
    let start = reader.take_start();
    let options = VerifyOptions { threads, ..VerifyOptions::default() };
    let report = verify_chain(&genesis, start, reader, &options, &mut |_| {});
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = process_cpu_seconds() - cpu_started;
    let cores_busy = cpu_seconds / seconds;
    let (ceiling_after, ceiling_cpu_after) = ceiling(&jobs, threads);
    let ceiling_rate = (ceiling_before + ceiling_after) / 2.0;
    let ceiling_cpu_rate = (ceiling_cpu_before + ceiling_cpu_after) / 2.0;
    assert!(report.is_ok(), "the chain verifies: {:?}", report.failure);
    assert_eq!(report.records, built as u64);
    let verify_rate = built as f64 / seconds;
    // Signatures checked per second, certificates included.
    let signature_rate = report.signatures as f64 / seconds;
    let ratio = verify_rate / ceiling_rate;
    // The same ratio per CPU second (all threads): what the work costs, whatever share of the
    // cores other processes left this one (on an idle machine with every thread busy, the two
    // ratios agree).
    let cpu_ratio = (built as f64 / cpu_seconds) / ceiling_cpu_rate;
    println!(
        "chain verification: {built} records, {blocks} blocks, {threads} threads: {seconds:.2} s, {verify_rate:.0} records/s, {cores_busy:.2} cores busy; \
         ed25519 batch ceiling {ceiling_rate:.0} signatures/s (before {ceiling_before:.0}, after {ceiling_after:.0}); ratio {ratio:.2}; per CPU second: {:.0} records, {ceiling_cpu_rate:.0} signatures, ratio {cpu_ratio:.2}",
        built as f64 / cpu_seconds
    );
    println!(
        "{{\"records\":{built},\"blocks\":{blocks},\"threads\":{threads},\"export_bytes\":{bytes},\"verify_seconds\":{seconds:.3},\
         \"records_per_second\":{verify_rate:.0},\"signatures_per_second\":{signature_rate:.0},\"cores_busy\":{cores_busy:.2},\
         \"ed25519_batch_per_second\":{ceiling_rate:.0},\"ceiling_before\":{ceiling_before:.0},\"ceiling_after\":{ceiling_after:.0},\"ratio\":{ratio:.3},\"cpu_ratio\":{cpu_ratio:.3}}}"
    );
}
