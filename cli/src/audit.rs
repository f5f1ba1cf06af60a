//! The auditor's commands: `verify`, `export`, `proof`, `verify-proof` (DESIGN §6, docs/AUDIT.md).
//!
//! All of them work offline. `verify` and `verify-proof` need nothing but the file (or the
//! store) they check; the checks themselves are `plaza_ledger::audit`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use plaza_ledger::audit::export::{ExportReader, ExportWriter, FRAME_BYTES_MAX};
use plaza_ledger::audit::proof::{ProvenRecord, RecordProof, PROOF_BYTES_MAX};
use plaza_ledger::audit::state_proof::{self, ProvenState, StateProof};
use plaza_ledger::audit::verify::{default_threads, Checkpoint, Source};
use plaza_ledger::audit::tip::{check_expected, SignedTip, TipAgreement, SIGNED_TIP_BYTES_MAX};
use plaza_ledger::audit::{verify_chain_watching, BlockEntry, Check, Failure, Report, Start, VerifyOptions, Watch};
use plaza_ledger::block::FinalizedBlock;
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::{State, Statement};
use plaza_ledger::store::Store;
use plaza_ledger::Hash;

use crate::output::{ctx, print_json, CliError, CliResult};

/// Verify a whole chain, offline: hash links, certificates against the validator set in force
/// (following governance from genesis), record signatures, and every receipt, statement and
/// state root by re-execution. Exit code 0 only when everything holds, 3 on a divergence.
///
/// Example: plaza verify --export alliance.plaza-export --against http://127.0.0.1:7001 --json
#[derive(Args)]
pub struct VerifyArgs {
    /// A node home: its store (`DIR/data`) is read, never written, as it is when the command
    /// starts; the node may be running.
    #[arg(long, conflicts_with = "export", required_unless_present = "export")]
    pub home: Option<PathBuf>,
    /// An export file written by `plaza export`.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Threads checking signatures (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// A block id the chain must hold (its tip, as a member told you): a chain without it
    /// has a withheld or forked tail (exit code 3).
    #[arg(long, value_name = "ID")]
    pub expect_tip: Option<String>,
    /// Another member's node API (http://HOST:PORT): its signed checkpoint, fetched first, must
    /// be in the chain; a chain that ends before it (withheld tail) or holds another block at
    /// its height (fork) fails with exit code 3.
    #[arg(long, value_name = "URL")]
    pub against: Option<String>,
}

/// Write a self-contained, versioned, checksummed export: genesis, blocks with their
/// certificates, receipts and statements. With --from above 1, the export starts from a
/// checkpoint (the state after block FROM−1), which the verifier trusts and reports. A block
/// final through a descendant carries that descendant's certificate, so the export goes on
/// past --to until that descendant is in it (it says so): a partial export always verifies.
///
/// Example: plaza export --home ./hotpot -o alliance.plaza-export
#[derive(Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub home: PathBuf,
    /// First height to export (default 1).
    #[arg(long, default_value_t = 1)]
    pub from: u64,
    /// Last height to export (default: the tip); extended to the block whose certificate
    /// finalizes it, when it is final through a descendant.
    #[arg(long)]
    pub to: Option<u64>,
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Write a self-contained inclusion proof of one record: the record, its receipt, their Merkle
/// paths, the block header, its finalize certificate and the validator set with its anchor
/// (genesis, or the first block that set certified).
///
/// With `--state KEY`, a proof of one state item instead (a card's lots, a balance, a coupon,
/// a statement summary …) against the tip's certified header (docs/AUDIT.md, "State proofs").
///
/// Example: plaza proof 3f1c0b…e9 --home ./hotpot -o record.plaza-proof
/// Example: plaza proof --state coupon:5be1…07 --home ./hotpot
#[derive(Args)]
pub struct ProofArgs {
    /// The record id (64 hex digits).
    #[arg(required_unless_present = "state", conflicts_with = "state")]
    pub record_id: Option<String>,
    /// A state key: KIND:VALUE (merchant:<hex>, promoter:<id>, card:<hex>, referral:<hash>,
    /// batch:<id>, coupon:<hash>, sale:<merchant hex>/<order>, item:<n>, proposal:<id>,
    /// agreement:<id>, balance:<party>, stats:<party>, statement:<period>; a party is
    /// merchant:<hex> or promoter:<id>) or TABLE/HEX (a table name or 1-16, the key's encoding).
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub home: PathBuf,
    /// Where to write the proof (default: record-<first 16 hex digits>.plaza-proof).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// Check a proof written by `plaza proof`, or the JSON `GET /v1/proofs/{id}` returns, offline.
///
/// Example: plaza verify-proof record.plaza-proof --trust 9a0e…41 --json
#[derive(Args)]
pub struct VerifyProofArgs {
    pub file: PathBuf,
    /// A checkpoint block id you trust (from your own `plaza verify` report); repeatable.
    #[arg(long)]
    pub trust: Vec<String>,
    /// The alliance id the proof must belong to.
    #[arg(long)]
    pub alliance: Option<String>,
    #[arg(long)]
    pub json: bool,
}

fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} blocks, {per_sec}, eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// The node's store, read as it is now; the node may be running (a reader takes no lock).
pub fn open_store(home: &Path) -> Result<Store, CliError> {
    Store::open_reader(&home.join("data")).map_err(ctx(format!("opening the store of {}", home.display())))
}

/// Reads block `height` with its receipts and, if it closed one, its statement.
fn store_entry(store: &Store, height: u64, period: &mut u64) -> Result<BlockEntry, Failure> {
    let store_failure = |e: String| Failure::at(Check::File, height, "store", "a readable block with its receipts", e);
    let block: FinalizedBlock = store.block(height).map_err(|e| store_failure(e.to_string()))?.ok_or_else(|| store_failure("no block".into()))?;
    let receipts = store.receipts_of(&block).map_err(|e| store_failure(e.to_string()))?;
    let statement = if block.block.header.statement_hash.is_some() {
        let p = *period;
        *period += 1;
        match store.statement(p).map_err(|e| store_failure(e.to_string()))? {
            None => None,
            Some(bytes) => Some(
                Statement::from_bytes(&bytes, FRAME_BYTES_MAX)
                    .map_err(|e| Failure::at(Check::File, height, format!("stored statement of period {p}"), "a statement in the canonical encoding", e.to_string()))?,
            ),
        }
    } else {
        None
    };
    Ok(BlockEntry { block, receipts, statement })
}

fn failure_json(f: &Failure) -> Value {
    json!({ "check": f.check.name(), "height": f.height, "item": f.item, "expected": f.expected, "found": f.found })
}

fn report_json(r: &Report, seconds: f64) -> Value {
    json!({
        "ok": r.is_ok(),
        "alliance": r.alliance.to_string(),
        "start_height": r.start_height,
        "start_block": r.start_block.to_string(),
        "blocks": r.blocks,
        "records": r.records,
        "signatures": r.signatures,
        "statements": r.statements,
        "tip_height": r.tip_height,
        "tip_id": r.tip_id.to_string(),
        "state_root": r.state_root.to_string(),
        "validator_sets": r.epochs.iter().map(|e| json!({"from_height": e.from_height, "set_hash": e.set_hash.to_string(), "validators": e.validators})).collect::<Vec<_>>(),
        "failure": r.failure.as_ref().map(failure_json),
        "seconds": (seconds * 1000.0).round() / 1000.0,
    })
}

fn print_report(r: &Report, seconds: f64) {
    let start = if r.start_height == 0 { "genesis".to_owned() } else { format!("the checkpoint at height {} (block {}, trusted, not recomputed)", r.start_height, r.start_block) };
    println!("alliance {}", r.alliance);
    println!("verified from {start}: {} blocks, {} records, {} signatures, {} statements in {seconds:.1} s", r.blocks, r.records, r.signatures, r.statements);
    println!("last verified block: height {}, id {}, state root {}", r.tip_height, r.tip_id, r.state_root);
    for e in &r.epochs {
        println!("validator set {} ({} validators) certifies from height {}", e.set_hash, e.validators, e.from_height);
    }
    match &r.failure {
        None => println!("OK: every check holds"),
        Some(f) => {
            println!("FAILED: {}", f.check.name());
            if let Some(h) = f.height {
                println!("  height:   {h}");
            }
            println!("  item:     {}", f.item);
            println!("  expected: {}", f.expected);
            println!("  found:    {}", f.found);
        }
    }
}

pub fn verify(args: VerifyArgs) -> CliResult {
    let started = Instant::now();
    let options = VerifyOptions { threads: args.threads.unwrap_or_else(default_threads).max(1), ..VerifyOptions::default() };
    let expected = args.expect_tip.as_deref().map(|t| Hash::from_hex(t).map_err(|e| CliError::new(format!("--expect-tip: {e}")))).transpose()?;
    // The other node's tip first: a chain read afterwards must hold it.
    let against = args.against.as_deref().map(|url| fetch_signed_tip(url).map(|tip| (url.to_owned(), tip))).transpose()?;
    let watch = Watch { heights: against.iter().map(|(_, t)| t.header.height).collect(), ids: expected.into_iter().collect() };
    let (mut report, genesis_set) = match (&args.home, &args.export) {
        (Some(home), None) => {
            let store = open_store(home)?;
            let tip = store.tip_height().map_err(ctx("reading the store's tip"))?;
            let genesis = store.genesis().clone();
            let progress = bar(tip, "verifying");
            let mut period = 0;
            let blocks = (1..=tip).map(|h| store_entry(&store, h, &mut period).map(Source::from));
            let report = verify_chain_watching(&genesis, Start::Genesis, blocks, &options, &watch, &mut |p| progress.set_position(p.blocks));
            progress.finish_and_clear();
            (report, genesis.validators.hash())
        }
        (None, Some(path)) => {
            let open = || -> Result<ExportReader<BufReader<File>>, CliError> {
                let file = File::open(path).map_err(ctx(format!("opening {}", path.display())))?;
                ExportReader::open(BufReader::new(file)).map_err(|f| CliError::verification(f.to_string()))
            };
            // First the file's structure and checksum (fast), then the chain.
            let integrity = open()?.check_integrity();
            let total = match integrity {
                Ok(n) => n,
                Err(f) => return fail_report(&args, f, started),
            };
            let mut reader = open()?;
            let genesis = reader.genesis().clone();
            let start = reader.take_start();
            let progress = bar(total, "verifying");
            let report = verify_chain_watching(&genesis, start, reader, &options, &watch, &mut |p| progress.set_position(p.blocks));
            progress.finish_and_clear();
            (report, genesis.validators.hash())
        }
        _ => return Err(CliError::new("give exactly one of --home DIR or --export FILE")),
    };
    // The tail: does the verified chain reach, and agree with, the tips it was given?
    let mut tips = Vec::new();
    if report.is_ok() {
        let mut outcomes: Vec<(String, Result<TipAgreement, Failure>)> = Vec::new();
        if let Some(id) = &expected {
            outcomes.push((format!("expected block {id}"), check_expected(&report, id)));
        }
        if let Some((url, tip)) = &against {
            let result = tip.verify(&report.alliance).and_then(|()| tip.check(&report, &genesis_set));
            outcomes.push((format!("the signed checkpoint of {url} (height {}, block {})", tip.header.height, tip.header.id()), result));
        }
        for (what, result) in outcomes {
            match result {
                Ok(agreement) => tips.push((what, agreement)),
                Err(f) => {
                    if report.failure.is_none() {
                        report.failure = Some(f);
                    }
                }
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let mut value = report_json(&report, seconds);
        value["ok"] = json!(report.is_ok());
        value["tips"] = tips.iter().map(|(what, a)| json!({"tip": what, "blocks_beyond": match a { TipAgreement::Ends => 0, TipAgreement::Beyond { beyond } => *beyond }})).collect();
        print_json(&value);
    } else {
        for (what, agreement) in &tips {
            match agreement {
                TipAgreement::Ends => println!("tip: the chain ends at {what}"),
                TipAgreement::Beyond { beyond } => println!("tip: the chain holds {what} and goes on {beyond} blocks after it"),
            }
        }
        print_report(&report, seconds);
    }
    match report.failure {
        None => Ok(()),
        Some(f) => Err(CliError::verification(f.to_string())),
    }
}

/// The signed checkpoint a node serves (`GET /v1/checkpoint`), from `http://HOST:PORT`.
fn fetch_signed_tip(url: &str) -> Result<SignedTip, CliError> {
    use std::net::ToSocketAddrs;
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        CliError::new(format!("--against {url}: give the node's API as http://HOST:PORT (plain HTTP, as the node serves it)"))
    })?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| CliError::new(format!("--against {url}: {e}")))?
        .next()
        .ok_or_else(|| CliError::new(format!("--against {url}: the name resolves to no address")))?;
    let client = plaza_node::client::Client::new(addr, None);
    let value = client
        .get("/v1/checkpoint")
        .and_then(|r| r.ok_json())
        .map_err(|e| CliError::new(format!("fetching the signed checkpoint of {url}: {e}")))?;
    let text = value.get("checkpoint").and_then(Value::as_str).ok_or_else(|| CliError::new(format!("{url} answered without a \"checkpoint\" field")))?;
    let bytes = hex::decode(text).map_err(|e| CliError::verification(format!("the checkpoint of {url} is not hex: {e}")))?;
    SignedTip::from_bytes(&bytes, SIGNED_TIP_BYTES_MAX).map_err(|e| CliError::verification(format!("the checkpoint of {url} does not decode: {e}")))
}

/// A failure before any block was verified (the file itself).
fn fail_report(args: &VerifyArgs, f: Failure, started: Instant) -> CliResult {
    if args.json {
        print_json(&json!({ "ok": false, "failure": failure_json(&f), "seconds": started.elapsed().as_secs_f64() }));
    }
    Err(CliError::verification(f.to_string()))
}

pub fn export(args: ExportArgs) -> CliResult {
    let store = open_store(&args.home)?;
    let tip = store.tip_height().map_err(ctx("reading the store's tip"))?;
    let to = args.to.unwrap_or(tip);
    if args.from == 0 || args.from > to || to > tip {
        return Err(CliError::new(format!("the range {}..={to} is not within the chain 1..={tip}", args.from)));
    }
    let genesis = store.genesis().clone();
    let read = |h: u64, period: &mut u64| store_entry(&store, h, period).map_err(|f| CliError::new(f.to_string()));
    let mut period = 0;
    // A partial export starts from the state after block from−1, recomputed here.
    let checkpoint = if args.from > 1 {
        let progress = bar(args.from - 1, "recomputing the checkpoint");
        let mut state = State::from_genesis(&genesis);
        let mut last = None;
        for h in 1..args.from {
            let entry = read(h, &mut period)?;
            let set = state.validator_set().clone();
            let header = &entry.block.block.header;
            let outcome = state
                .apply_block(header.time_ms, &entry.block.block.records)
                .map_err(|e| CliError::verification(format!("block {h} does not re-execute: {e}")))?;
            if outcome.state_root != header.state_root {
                return Err(CliError::verification(format!("block {h}: re-execution gives state root {}, the header says {}", outcome.state_root, header.state_root)));
            }
            last = Some((entry.block, set));
            progress.inc(1);
        }
        progress.finish_and_clear();
        let (block, validators) = last.ok_or_else(|| CliError::new("no block before --from"))?;
        let suffix = block.suffix().to_vec();
        Some(Checkpoint { header: block.block.header, certificate: block.certificate, suffix, validators, state })
    } else {
        None
    };
    let temporary = args.output.with_extension("partial");
    let file = File::create(&temporary).map_err(ctx(format!("creating {}", temporary.display())))?;
    let mut writer = ExportWriter::new(BufWriter::new(file), &genesis, checkpoint.as_ref()).map_err(ctx("writing the export"))?;
    let progress = bar(to - args.from + 1, "exporting");
    // A block final through a descendant carries the descendant's certificate, so the export
    // goes on past `to` until every such descendant is in it (the first block whose
    // certificate is its own, in practice): a partial export always verifies.
    let mut awaited: BTreeMap<Hash, u64> = BTreeMap::new();
    if let Some(c) = &checkpoint {
        let end = plaza_ledger::cert::suffix_target(&genesis.alliance_id(), c.header.epoch, c.header.id(), c.header.height, &c.suffix);
        await_descendant(&mut awaited, c.header.height, end, &c.certificate);
    }
    let mut last = to;
    for h in args.from.. {
        if h > to && awaited.is_empty() {
            break;
        }
        if h > tip {
            let (block, from) = awaited.iter().next().map(|(b, f)| (*b, *f)).unwrap_or((Hash::ZERO, 0));
            return Err(CliError::verification(format!(
                "block {from}'s certificate finalizes block {block}, which is not in this store up to its tip {tip}"
            )));
        }
        let entry = read(h, &mut period)?;
        // An epoch-ending block may be final through its suffix blocks, which end with it.
        let end = entry.block.suffix_end(&genesis.alliance_id());
        awaited.remove(&end);
        await_descendant(&mut awaited, h, end, &entry.block.certificate);
        writer.write_block(&entry).map_err(ctx("writing the export"))?;
        progress.inc(1);
        last = h;
    }
    let mut inner = writer.finish().map_err(ctx("writing the export"))?;
    inner.flush().map_err(ctx("writing the export"))?;
    inner.get_ref().sync_all().map_err(ctx("syncing the export"))?;
    drop(inner);
    std::fs::rename(&temporary, &args.output).map_err(ctx(format!("renaming to {}", args.output.display())))?;
    progress.finish_and_clear();
    println!("exported blocks {}..={last} of alliance {} to {}", args.from, genesis.alliance_id(), args.output.display());
    if last > to {
        println!("(past --to {to}: blocks up to {to} are final through the certificate of block {last}, which the export must carry)");
    }
    Ok(())
}

/// Notes that block `height` (id `id`, or the id of its last suffix block) is final through a
/// descendant, if its certificate names one: the export must reach that block.
fn await_descendant(awaited: &mut BTreeMap<Hash, u64>, height: u64, id: Hash, certificate: &plaza_ledger::cert::Certificate) {
    if certificate.target.block != id {
        awaited.entry(certificate.target.block).or_insert(height);
    }
}

fn state_proof(args: ProofArgs, text: &str) -> CliResult {
    let (table, key) = state_proof::parse_state_key(text).map_err(|e| CliError::new(format!("--state: {e}")))?;
    let store = open_store(&args.home)?;
    let state = state_proof::state_at_tip(&store).map_err(|e| CliError::verification(format!("the state at this store's tip: {e}")))?;
    let proof = StateProof::build(&store, &state, table, &key)
        .map_err(|e| CliError::verification(format!("building the state proof of {text}: {e}")))?
        .ok_or_else(|| CliError::new(format!("table {} has no entry {text} at this store's tip", state_proof::table_name(table))))?;
    let trusted = proof.certified.own_trust();
    let proven = proof.verify(&trusted).map_err(|f| CliError::verification(format!("the state proof built from this store does not verify: {f}")))?;
    let output = args.output.unwrap_or_else(|| PathBuf::from(format!("state-{}-{}.plaza-proof", state_proof::table_name(table), &hex::encode(Hash::digest(&key).as_bytes())[..16])));
    std::fs::write(&output, proof.to_bytes()).map_err(ctx(format!("writing {}", output.display())))?;
    if args.json {
        let mut value = proven_state_json(&proven);
        value["file"] = json!(output.display().to_string());
        print_json(&value);
    } else {
        println!("wrote the proof of {} entry {} (state of block {} at height {}) to {}", state_proof::table_name(table), proven.key_text, proven.block, proven.height, output.display());
        println!("value: {}", proven.value_text);
        if let Some((h, cid)) = proven.checkpoint {
            println!("it rests on checkpoint block {cid} at height {h}: verify-proof needs --trust {cid}");
        }
    }
    Ok(())
}

fn proven_state_json(p: &ProvenState) -> Value {
    json!({
        "ok": true,
        "kind": "state",
        "alliance": p.alliance.to_string(),
        "height": p.height,
        "block": p.block.to_string(),
        "table": state_proof::table_name(p.table),
        "key": hex::encode(&p.key),
        "value": hex::encode(&p.value),
        "key_text": p.key_text,
        "value_text": p.value_text,
        "finalized_through": p.finalized_through.map(|(h, id)| json!({"height": h, "block": id.to_string()})),
        "anchor": match p.checkpoint {
            None => json!("genesis"),
            Some((h, id)) => json!({"checkpoint_height": h, "checkpoint_block": id.to_string()}),
        },
    })
}

pub fn proof(args: ProofArgs) -> CliResult {
    if let Some(text) = args.state.clone() {
        return state_proof(args, &text);
    }
    let record_id = args.record_id.clone().unwrap_or_default();
    let id = Hash::from_hex(&record_id).map_err(|e| CliError::new(format!("record id: {e}")))?;
    let store = open_store(&args.home)?;
    let proof = RecordProof::from_store(&store, &id)
        .map_err(|e| CliError::verification(format!("building the proof of record {id}: {e}")))?
        .ok_or_else(|| CliError::new(format!("record {id} is not in this node's chain")))?;
    let trusted = proof.certified.own_trust();
    let proven = proof.verify(&trusted).map_err(|f| CliError::verification(format!("the proof built from this store does not verify: {f}")))?;
    let output = args.output.unwrap_or_else(|| PathBuf::from(format!("record-{}.plaza-proof", &id.to_string()[..16])));
    std::fs::write(&output, proof.to_bytes()).map_err(ctx(format!("writing {}", output.display())))?;
    if args.json {
        let mut value = proven_json(&proven);
        value["file"] = json!(output.display().to_string());
        print_json(&value);
    } else {
        println!("wrote the proof of record {id} (block {}, index {}) to {}", proven.height, proven.index, output.display());
        if let Some((h, block)) = proven.finalized_through {
            println!("the block is final through the certificate of its descendant {block} at height {h}; the proof carries the headers up to it");
        }
        if let Some((h, cid)) = proven.checkpoint {
            println!("it rests on checkpoint block {cid} at height {h}: verify-proof needs --trust {cid}");
        }
    }
    Ok(())
}

fn proven_json(p: &ProvenRecord) -> Value {
    json!({
        "ok": true,
        "alliance": p.alliance.to_string(),
        "record": p.record.to_string(),
        "height": p.height,
        "block": p.block.to_string(),
        "index": p.index,
        "receipt_code": p.receipt.code,
        "receipt": p.receipt.code().map(|c| c.name()).unwrap_or("unknown"),
        "finalized_through": p.finalized_through.map(|(h, id)| json!({"height": h, "block": id.to_string()})),
        "anchor": match p.checkpoint {
            None => json!("genesis"),
            Some((h, id)) => json!({"checkpoint_height": h, "checkpoint_block": id.to_string()}),
        },
    })
}

pub fn verify_proof(args: VerifyProofArgs) -> CliResult {
    let bytes = std::fs::read(&args.file).map_err(ctx(format!("reading {}", args.file.display())))?;
    // The hex form is twice as long, plus a few facts around it.
    let max = PROOF_BYTES_MAX.max(state_proof::PROOF_BYTES_MAX);
    let limit = if looks_like_json(&bytes) { 2 * max + 64 * 1024 } else { max };
    if bytes.len() > limit {
        return Err(CliError::new(format!("{} is {} bytes; a proof is at most {max}", args.file.display(), bytes.len())));
    }
    let bytes = if looks_like_json(&bytes) { proof_from_json(&args.file, &bytes)? } else { bytes };
    let trusted = args.trust.iter().map(|t| Hash::from_hex(t).map_err(|e| CliError::new(format!("--trust {t}: {e}")))).collect::<Result<Vec<_>, _>>()?;
    if bytes.starts_with(state_proof::MAGIC) {
        return verify_state_proof(&args, &bytes, &trusted);
    }
    let proof = RecordProof::from_bytes(&bytes, PROOF_BYTES_MAX).map_err(|e| CliError::verification(format!("{} is not a valid proof: {e}", args.file.display())))?;
    if let Some(expected) = &args.alliance {
        let expected = Hash::from_hex(expected).map_err(|e| CliError::new(format!("--alliance: {e}")))?;
        let found = proof.certified.genesis.alliance_id();
        if found != expected {
            return Err(CliError::verification(format!("the proof is for alliance {found}, expected {expected}")));
        }
    }
    let proven = proof.verify(&trusted).map_err(|f| {
        if args.json {
            print_json(&json!({ "ok": false, "failure": failure_json(&f) }));
        }
        CliError::verification(f.to_string())
    })?;
    if args.json {
        print_json(&proven_json(&proven));
    } else {
        let name = proven.receipt.code().map(|c| c.name()).unwrap_or("unknown");
        println!("OK: record {} is record {} of final block {} at height {}", proven.record, proven.index, proven.block, proven.height);
        println!("receipt: code {} ({name})", proven.receipt.code);
        if let Some((h, block)) = proven.finalized_through {
            println!("final through the certificate of its descendant {block} at height {h}");
        }
        match proven.checkpoint {
            None => println!("validator set: the genesis set of alliance {}", proven.alliance),
            Some((h, id)) => println!("validator set: as certified at trusted checkpoint {id} (height {h}) of alliance {}", proven.alliance),
        }
    }
    Ok(())
}

fn verify_state_proof(args: &VerifyProofArgs, bytes: &[u8], trusted: &[Hash]) -> CliResult {
    let proof = StateProof::from_bytes(bytes, state_proof::PROOF_BYTES_MAX)
        .map_err(|e| CliError::verification(format!("{} is not a valid state proof: {e}", args.file.display())))?;
    if let Some(expected) = &args.alliance {
        let expected = Hash::from_hex(expected).map_err(|e| CliError::new(format!("--alliance: {e}")))?;
        let found = proof.certified.genesis.alliance_id();
        if found != expected {
            return Err(CliError::verification(format!("the proof is for alliance {found}, expected {expected}")));
        }
    }
    let proven = proof.verify(trusted).map_err(|f| {
        if args.json {
            print_json(&json!({ "ok": false, "failure": failure_json(&f) }));
        }
        CliError::verification(f.to_string())
    })?;
    if args.json {
        print_json(&proven_state_json(&proven));
    } else {
        println!("OK: {} entry {} is in the state after final block {} at height {}", state_proof::table_name(proven.table), proven.key_text, proven.block, proven.height);
        println!("value: {}", proven.value_text);
        if let Some((h, block)) = proven.finalized_through {
            println!("final through the certificate of its descendant {block} at height {h}");
        }
        match proven.checkpoint {
            None => println!("validator set: the genesis set of alliance {}", proven.alliance),
            Some((h, id)) => println!("validator set: as certified at trusted checkpoint {id} (height {h}) of alliance {}", proven.alliance),
        }
    }
    Ok(())
}

/// A proof saved from `GET /v1/proofs/{id}` is a JSON object (the binary form starts with
/// the magic "PLAZA-PROOF").
fn looks_like_json(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The proof bytes of the API's JSON form: its `proof` field, in hex.
fn proof_from_json(file: &Path, bytes: &[u8]) -> Result<Vec<u8>, CliError> {
    let bad = |why: String| CliError::verification(format!("{} is not a valid proof: {why}", file.display()));
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(format!("JSON that does not parse ({e})")))?;
    let hex_text = value
        .get("proof")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a JSON object without a \"proof\" string (the form GET /v1/proofs/{id} returns)".into()))?;
    let proof = hex::decode(hex_text).map_err(|e| bad(format!("its \"proof\" field is not hex ({e})")))?;
    let max = PROOF_BYTES_MAX.max(state_proof::PROOF_BYTES_MAX);
    if proof.len() > max {
        return Err(CliError::new(format!("{} holds a proof of {} bytes; a proof is at most {max}", file.display(), proof.len())));
    }
    Ok(proof)
}
