//! Full-chain verification (DESIGN §6): what `plaza verify` runs.
//!
//! Blocks go through two stages. The parallel stage decodes blocks (when given bytes) and
//! checks every record and certificate signature, batched, on all cores; it needs no state.
//! The sequential stage walks the blocks in order: height, parent link, the validator set in
//! force, stateless record rules, the records root, re-execution through the settlement
//! contract (receipts, receipts root, statement, statement hash, state root) and finally the
//! certificate (finalize, names this block, quorum of distinct validators of the set in force,
//! signatures). A block finalized through a descendant carries that descendant's certificate:
//! it is held, and its certificate is checked when the named block arrives (same id and view;
//! heights are consecutive and parent links checked, so it is a descendant) against the set
//! that certifies that block; an input that ends first fails. Epochs: every header's epoch
//! must be its parent's (plus one after an epoch-ending block), every certificate must be of
//! its block's epoch and signed by that epoch's set, and an epoch-ending block must be final
//! within its epoch (its own certificate, or its suffix blocks'), naming the next set, which
//! re-execution must give.
//!
//! The two stages overlap: while the calling thread re-executes one window of blocks, the
//! other threads decode the next window and check its signatures, in tasks of a few hundred
//! records that any thread takes in turn; when the calling thread is done it reads the
//! window after and takes tasks too. So `threads` threads are busy until a window is done,
//! whichever stage is longer, and never more than `threads`.
//!
//! Verification stops at the first divergence: everything after it would be built on a
//! state that is already wrong.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;

use crate::audit::{BlockEntry, Check, Failure, DESCENDANT_DISTANCE_MAX};
use crate::block::{Block, BlockHeader};
use crate::cert::{Certificate, CertificateError, ValidatorSet, VoteKind};
use crate::codec::Decode;
use crate::contract::{State, Statement};
use crate::execute::{execute_checked, Mismatch};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::keys::{self, domain, BatchItem, PublicKey, Signature};
use crate::receipt::Receipt;

/// A block out of the parallel stage: decoded, with whether each signature (records', then the
/// certificate's) verified; or why it could not be read.
type Prepared = Result<(BlockEntry, Vec<bool>), Failure>;

/// Signatures handed to one `keys::verify_batch` call.
pub const BATCH_SIGNATURES: usize = 256;

/// How the verifier runs.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Threads in all, the calling thread included (it re-executes blocks, then helps decode
    /// and check signatures).
    pub threads: usize,
    /// Records (roughly) per pipeline window.
    pub window_records: usize,
    /// Blocks per pipeline window, at most.
    pub window_blocks: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { threads: default_threads(), window_records: 32_768, window_blocks: 4096 }
    }
}

/// All cores.
pub fn default_threads() -> usize {
    thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Where the chain starts.
pub enum Start {
    /// From genesis: everything is recomputed.
    Genesis,
    /// From a checkpoint: the state after block `header.height`, trusted (the state root is
    /// chained, so a snapshot cannot be proven from the header). The auditor must compare
    /// the checkpoint's block id with one they verified themselves.
    Checkpoint(Box<Checkpoint>),
}

/// A trusted starting point for a partial chain.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub header: BlockHeader,
    pub certificate: Certificate,
    /// The views of the header's suffix blocks, when it ends an epoch and its certificate
    /// is of the last of them (docs/CONSENSUS.md, "Epochs").
    pub suffix: Vec<u64>,
    /// The set that certified `header`.
    pub validators: ValidatorSet,
    /// The state after `header`'s block.
    pub state: State,
}

/// One item for the verifier: a decoded block, or its encoded bytes (decoded in parallel).
#[allow(clippy::large_enum_variant)]
pub enum Source {
    Decoded(BlockEntry),
    /// The encoding of a [`BlockEntry`] (docs/FORMAT.md, "Proofs and exports"); `at` says
    /// where it came from, for error messages.
    Encoded { bytes: Vec<u8>, at: String },
}

impl Source {
    fn weight(&self) -> usize {
        match self {
            Source::Decoded(e) => e.block.block.records.len() + 1,
            Source::Encoded { bytes, .. } => bytes.len() / 160 + 1,
        }
    }
}

impl From<BlockEntry> for Source {
    fn from(entry: BlockEntry) -> Source {
        Source::Decoded(entry)
    }
}

/// Counts reported after each window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub blocks: u64,
    pub records: u64,
    pub height: u64,
}

/// A validator set and the first height it certified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Epoch {
    /// The epoch number (header field `epoch`).
    pub epoch: u64,
    pub from_height: u64,
    pub set_hash: Hash,
    pub validators: usize,
}

/// What was verified, and the first divergence if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub alliance: Hash,
    /// 0 from genesis, else the checkpoint's height.
    pub start_height: u64,
    /// The alliance id from genesis, else the checkpoint's block id (trusted, not verified).
    pub start_block: Hash,
    pub blocks: u64,
    pub records: u64,
    /// Record and certificate signatures checked.
    pub signatures: u64,
    pub statements: u64,
    /// The last block verified (height, id, state root); the start when none was.
    pub tip_height: u64,
    pub tip_id: Hash,
    pub state_root: Hash,
    /// Validator sets in force, in order: where each began certifying.
    pub epochs: Vec<Epoch>,
    /// The verified blocks a [`Watch`] asked for: (height, id), in height order.
    pub watched: Vec<(u64, Hash)>,
    pub failure: Option<Failure>,
}

/// Blocks whose ids the caller wants reported (to compare the chain with a tip it was told
/// about, `audit::tip`): by height or by id.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    pub heights: Vec<u64>,
    pub ids: Vec<Hash>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Verifies a chain from `genesis` (or a checkpoint) through `blocks`, which must be in
/// height order. `Err` items (unreadable input) are reported as the failure at that point.
pub fn verify_chain<I>(genesis: &Genesis, start: Start, blocks: I, options: &VerifyOptions, progress: &mut dyn FnMut(Progress)) -> Report
where
    I: IntoIterator<Item = Result<Source, Failure>>,
{
    verify_chain_watching(genesis, start, blocks, options, &Watch::default(), progress)
}

/// [`verify_chain`], reporting the ids of the blocks `watch` names in [`Report::watched`].
pub fn verify_chain_watching<I>(genesis: &Genesis, start: Start, blocks: I, options: &VerifyOptions, watch: &Watch, progress: &mut dyn FnMut(Progress)) -> Report
where
    I: IntoIterator<Item = Result<Source, Failure>>,
{
    let mut verifier = match Verifier::new(genesis, start) {
        Ok(v) => v,
        Err((report, failure)) => return Report { failure: Some(failure), ..*report },
    };
    verifier.watch = watch.clone();
    let mut blocks = blocks.into_iter();
    let mut exhausted = false;
    let mut ready: Vec<Prepared> = Vec::new();
    let threads = options.threads.max(1);
    let mut pending = read_window(&mut blocks, &mut exhausted, options);
    loop {
        let (sources, read_failure) = pending;
        if ready.is_empty() && sources.is_empty() && read_failure.is_none() {
            break;
        }
        let window = Window::new(verifier.alliance, sources);
        let (checked, next, panicked) = thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(|| window.work())).collect();
            // This thread re-executes the window before (the helpers check this one's
            // signatures meanwhile), reads the next window, then checks signatures too: the
            // threads stay busy until the window is done, whichever part takes longer.
            let checked = verifier.check_all(std::mem::take(&mut ready));
            let next = if checked.is_ok() {
                read_window(&mut blocks, &mut exhausted, options)
            } else {
                window.cancel();
                (Vec::new(), None)
            };
            window.work();
            let panicked = helpers.into_iter().map(|h| h.join().is_err()).fold(false, |any, p| any | p);
            (checked, next, panicked)
        });
        if let Err(failure) = checked {
            return verifier.finish(Some(failure));
        }
        progress(Progress { blocks: verifier.report.blocks, records: verifier.report.records, height: verifier.report.tip_height });
        ready = match window.into_results() {
            Some(p) if !panicked => p,
            _ => {
                let failure = Failure::new(Check::File, None, "verifier", "signature workers to finish", "a worker that panicked");
                return verifier.finish(Some(failure));
            }
        };
        if let Some(f) = read_failure {
            ready.push(Err(f));
        }
        pending = next;
    }
    verifier.finish(None)
}

/// Reads the next window of blocks: about `window_records` records, at most `window_blocks`
/// blocks. A read failure ends the input.
fn read_window<I>(blocks: &mut I, exhausted: &mut bool, options: &VerifyOptions) -> (Vec<Source>, Option<Failure>)
where
    I: Iterator<Item = Result<Source, Failure>>,
{
    let mut sources = Vec::new();
    let mut weight = 0;
    while !*exhausted && weight < options.window_records && sources.len() < options.window_blocks.max(1) {
        match blocks.next() {
            None => *exhausted = true,
            Some(Err(f)) => {
                *exhausted = true;
                return (sources, Some(f));
            }
            Some(Ok(source)) => {
                weight += source.weight();
                sources.push(source);
            }
        }
    }
    (sources, None)
}

/// Records (by [`Source::weight`]) per task of the parallel stage: small enough that threads
/// finish a window within a task of each other, large enough for full signature batches.
const TASK_WEIGHT: usize = 2 * BATCH_SIGNATURES;

/// The parallel stage of one window: tasks of contiguous blocks (decode, then every record and
/// certificate signature in batches) that any thread takes in turn.
struct Window {
    alliance: Hash,
    tasks: Vec<Mutex<Task>>,
    next: AtomicUsize,
}

enum Task {
    Waiting(Vec<Source>),
    Taken,
    Done(Vec<Prepared>),
}

impl Window {
    fn new(alliance: Hash, sources: Vec<Source>) -> Window {
        let mut tasks = Vec::new();
        let mut current = Vec::new();
        let mut weight = 0;
        for source in sources {
            weight += source.weight();
            current.push(source);
            if weight >= TASK_WEIGHT {
                tasks.push(Mutex::new(Task::Waiting(std::mem::take(&mut current))));
                weight = 0;
            }
        }
        if !current.is_empty() {
            tasks.push(Mutex::new(Task::Waiting(current)));
        }
        Window { alliance, tasks, next: AtomicUsize::new(0) }
    }

    /// Takes tasks until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(task) = self.tasks.get(i) else { return };
            let taken = match task.lock() {
                Ok(mut t) => std::mem::replace(&mut *t, Task::Taken),
                Err(_) => return,
            };
            if let Task::Waiting(sources) = taken {
                let done = prepare_group(&self.alliance, sources);
                if let Ok(mut t) = task.lock() {
                    *t = Task::Done(done);
                }
            }
        }
    }

    /// No task is started after this (verification stopped at a failure).
    fn cancel(&self) {
        self.next.store(self.tasks.len(), Ordering::Relaxed);
    }

    /// The results in block order; `None` if a task was not done (a worker panicked).
    fn into_results(self) -> Option<Vec<Prepared>> {
        let mut out = Vec::new();
        for task in self.tasks {
            match task.into_inner().ok()? {
                Task::Done(part) => out.extend(part),
                Task::Waiting(_) | Task::Taken => return None,
            }
        }
        Some(out)
    }
}

/// One signature to check.
struct Job {
    key: PublicKey,
    domain: &'static [u8],
    message: Vec<u8>,
    signature: Signature,
}

fn jobs_of(alliance: &Hash, entry: &BlockEntry, jobs: &mut Vec<Job>) {
    for record in &entry.block.block.records {
        jobs.push(Job { key: *record.signer(), domain: domain::RECORD, message: record.signing_bytes(), signature: *record.signature() });
    }
    let message = entry.block.certificate.target.signing_bytes(alliance);
    for (key, signature) in &entry.block.certificate.signatures {
        jobs.push(Job { key: *key, domain: domain::VOTE, message: message.clone(), signature: *signature });
    }
}

/// Checks signatures with `keys::verify_batch`, in batches, on the calling thread.
fn check_jobs(jobs: &[Job]) -> Vec<bool> {
    let mut accepted = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(BATCH_SIGNATURES) {
        let items: Vec<BatchItem<'_>> =
            chunk.iter().map(|j| BatchItem { key: &j.key, domain: j.domain, message: &j.message, signature: &j.signature }).collect();
        accepted.extend(keys::verify_batch(&items));
    }
    accepted
}

fn prepare_group(alliance: &Hash, sources: Vec<Source>) -> Vec<Prepared> {
    let mut decoded: Vec<Result<BlockEntry, Failure>> = Vec::with_capacity(sources.len());
    for source in sources {
        decoded.push(match source {
            Source::Decoded(entry) => Ok(entry),
            Source::Encoded { bytes, at } => BlockEntry::from_bytes(&bytes, crate::audit::export::FRAME_BYTES_MAX)
                .map_err(|e| Failure::new(Check::File, None, at, "a block entry in the canonical encoding", e.to_string())),
        });
    }
    let mut jobs = Vec::new();
    let mut counts = Vec::with_capacity(decoded.len());
    for entry in decoded.iter().flatten() {
        let before = jobs.len();
        jobs_of(alliance, entry, &mut jobs);
        counts.push(jobs.len() - before);
    }
    let mut accepted = check_jobs(&jobs).into_iter();
    let mut counts = counts.into_iter();
    decoded
        .into_iter()
        .map(|d| {
            d.map(|entry| {
                let n = counts.next().unwrap_or(0);
                let sigs: Vec<bool> = accepted.by_ref().take(n).collect();
                (entry, sigs)
            })
        })
        .collect()
}

struct Verifier {
    alliance: Hash,
    state: State,
    /// The set that certifies the next block.
    set: ValidatorSet,
    /// The epoch of the next block.
    epoch: u64,
    /// Blocks final through a descendant's certificate whose descendant has not come yet, in
    /// height order (at most [`DESCENDANT_DISTANCE_MAX`] of them).
    held: Vec<Held>,
    watch: Watch,
    report: Report,
}

/// A block whose certificate finalizes a descendant: it is final once that descendant is
/// reached (same id and view, linked by parent hashes) and the certificate holds for the set
/// that certifies the descendant (docs/FORMAT.md, "Proofs and exports").
struct Held {
    height: u64,
    certificate: Certificate,
    /// Whether each of the certificate's signatures verified.
    sigs: Vec<bool>,
}

impl Verifier {
    #[allow(clippy::result_large_err)]
    fn new(genesis: &Genesis, start: Start) -> Result<Verifier, (Box<Report>, Failure)> {
        let alliance = genesis.alliance_id();
        let empty = |start_height: u64, start_block: Hash| Report {
            alliance,
            start_height,
            start_block,
            blocks: 0,
            records: 0,
            signatures: 0,
            statements: 0,
            tip_height: start_height,
            tip_id: start_block,
            state_root: Hash::ZERO,
            epochs: Vec::new(),
            watched: Vec::new(),
            failure: None,
        };
        match start {
            Start::Genesis => {
                let state = State::from_genesis(genesis);
                let set = genesis.validators.clone();
                let mut report = empty(0, alliance);
                report.state_root = state.state_root();
                Ok(Verifier { alliance, state, set, epoch: 0, held: Vec::new(), watch: Watch::default(), report })
            }
            Start::Checkpoint(c) => {
                let id = c.header.id();
                let report = empty(c.header.height, id);
                let fail = |item: &str, expected: String, found: String| {
                    Err((Box::new(report.clone()), Failure::at(Check::Start, c.header.height, format!("checkpoint {item}"), expected, found)))
                };
                if c.state.alliance_id() != alliance {
                    return fail("alliance", alliance.to_string(), c.state.alliance_id().to_string());
                }
                if c.state.state_root() != c.header.state_root {
                    return fail("state root", c.header.state_root.to_string(), c.state.state_root().to_string());
                }
                if c.validators.hash() != c.header.validator_set_hash {
                    return fail("validator set", c.header.validator_set_hash.to_string(), c.validators.hash().to_string());
                }
                let target = c.certificate.target;
                let mut held = Vec::new();
                let end = crate::cert::suffix_target(&alliance, c.header.epoch, id, c.header.height, &c.suffix);
                let end_view = c.suffix.last().copied().unwrap_or(c.header.view);
                if !c.suffix.is_empty() && !c.header.ends_epoch() {
                    return fail("suffix", "no suffix blocks (the block does not end its epoch)".into(), format!("{} suffix views", c.suffix.len()));
                }
                if target.epoch != c.header.epoch {
                    return fail("certificate", format!("a certificate of epoch {}", c.header.epoch), format!("a certificate of epoch {}", target.epoch));
                }
                if target.kind == VoteKind::Finalize && target.block == end && target.view == end_view {
                    if let Err(e) = c.certificate.verify(&alliance, &c.validators) {
                        return fail("certificate", "a quorum of valid validator signatures".into(), e.to_string());
                    }
                } else if target.kind == VoteKind::Finalize && target.block != id && target.view > c.header.view && !c.header.ends_epoch() {
                    // Final through a descendant, which must follow in the export.
                    let message = target.signing_bytes(&alliance);
                    let items: Vec<BatchItem<'_>> = c
                        .certificate
                        .signatures
                        .iter()
                        .map(|(key, signature)| BatchItem { key, domain: domain::VOTE, message: &message, signature })
                        .collect();
                    let sigs = keys::verify_batch(&items);
                    held.push(Held { height: c.header.height, certificate: c.certificate.clone(), sigs });
                } else {
                    return fail(
                        "certificate",
                        format!("a finalize certificate for view {} naming {id}, or for a descendant at a later view", c.header.view),
                        describe_target(&c.certificate),
                    );
                }
                let set = c.state.validator_set().clone();
                if crate::execute::next_validator_set_hash(c.validators.hash(), &c.state) != c.header.next_validator_set_hash {
                    return fail("next validator set", format!("{:?} (the checkpoint state's set)", c.state.validator_set().hash()), format!("{:?} (in the header)", c.header.next_validator_set_hash));
                }
                let mut report = report;
                report.state_root = c.state.state_root();
                let state = c.state;
                let epoch = c.header.child_epoch();
                Ok(Verifier { alliance, state, set, epoch, held, watch: Watch::default(), report })
            }
        }
    }

    /// Ends verification. Without a failure so far, a block still held (its certificate
    /// names a descendant the input never reached) is one.
    fn finish(mut self, failure: Option<Failure>) -> Report {
        let failure = failure.or_else(|| {
            self.held.first().map(|held| {
                let t = held.certificate.target;
                Failure::at(
                    Check::Certificate,
                    held.height,
                    "certificate (of a descendant)",
                    format!("the block it finalizes, {} at view {}, later in the chain", t.block, t.view),
                    format!("the chain ends at height {} before that block: cut short, or the block is not a descendant", self.report.tip_height),
                )
            })
        });
        self.report.failure = failure;
        self.report
    }

    fn check_all(&mut self, window: Vec<Prepared>) -> Result<(), Failure> {
        for item in window {
            let (entry, sigs) = item.map_err(|mut f| {
                if f.height.is_none() {
                    f.item = format!("{} (after height {})", f.item, self.report.tip_height);
                }
                f
            })?;
            self.check(&entry, &sigs)?;
        }
        Ok(())
    }

    fn check(&mut self, entry: &BlockEntry, sigs: &[bool]) -> Result<(), Failure> {
        let block = &entry.block.block;
        let header = &block.header;
        let expected_height = self.report.tip_height + 1;
        let h = header.height;
        if h != expected_height {
            let what = if h > expected_height { "a gap: blocks are missing" } else { "a height repeated or out of order" };
            return Err(Failure::at(Check::Height, h, "block header", format!("height {expected_height}"), format!("height {h} ({what})")));
        }
        if header.parent != self.report.tip_id {
            return Err(Failure::at(
                Check::ParentLink,
                h,
                "block header parent",
                format!("{} (the id of block {})", self.report.tip_id, self.report.tip_height),
                header.parent.to_string(),
            ));
        }
        let id = block.id();
        if header.epoch != self.epoch {
            return Err(Failure::at(
                Check::Epoch,
                h,
                "block header epoch",
                format!("epoch {} (its parent's, plus one after an epoch-ending block)", self.epoch),
                format!("epoch {}", header.epoch),
            ));
        }
        let end = entry.block.suffix_end(&self.alliance);
        let end_view = entry.block.suffix_end_view();
        // Blocks held for a descendant's certificate: this one (or its suffix) may be it, or
        // show it is not coming (views grow along a chain).
        self.resolve_held(h, header, id, end, end_view)?;
        if header.validator_set_hash != self.set.hash() {
            return Err(Failure::at(
                Check::ValidatorSet,
                h,
                "block header validator-set hash",
                format!("{} (the set in force from genesis and governance, {} validators)", self.set.hash(), self.set.len()),
                format!("{} (a validator set no vote put in force)", header.validator_set_hash),
            ));
        }
        for (i, record) in block.records.iter().enumerate() {
            if let Err(e) = record.check_without_signature(&self.alliance) {
                return Err(Failure::at(Check::Record, h, format!("record {i} ({})", record.id()), "a record that meets the stateless rules", e.to_string()));
            }
            if !sigs.get(i).copied().unwrap_or(false) {
                return Err(Failure::at(
                    Check::RecordSignature,
                    h,
                    format!("record {i} ({})", record.id()),
                    format!("a valid signature by its signer {}", record.signer()),
                    format!("signature {} that does not verify", record.signature().to_hex()),
                ));
            }
        }
        let records_root = Block::compute_records_root(&block.records);
        if records_root != header.records_root {
            return Err(Failure::at(
                Check::RecordsRoot,
                h,
                format!("records root over {} records", block.records.len()),
                format!("{} (in the header)", header.records_root),
                format!("{records_root} (records changed, added, removed or reordered)"),
            ));
        }
        // The header's roots against re-execution, in the one shared check (crate::execute).
        let outcome = execute_checked(&mut self.state, block, self.epoch).map_err(|e| {
            let (check, item, expected, found) = match &e {
                Mismatch::Epoch { header, expected } => (Check::Epoch, "block header epoch", expected.to_string(), header.to_string()),
                Mismatch::NextValidatorSet { computed, header } => {
                    let show = |s: &Option<Hash>| s.map(|h| h.to_string()).unwrap_or_else(|| "none (no set change)".into());
                    (
                        Check::ValidatorSet,
                        "block header next-validator-set hash",
                        format!("{} (re-execution)", show(computed)),
                        format!("{} (in the header)", show(header)),
                    )
                }
                Mismatch::ValidatorSet { header, state } => {
                    (Check::ValidatorSet, "block header validator-set hash", state.to_string(), header.to_string())
                }
                Mismatch::Refused(e) => (Check::Execution, "block", "a block the settlement contract accepts".into(), e.to_string()),
                Mismatch::ReceiptsRoot { computed, header } => {
                    (Check::ReceiptsRoot, "receipts root", format!("{computed} (re-execution)"), format!("{header} (in the header)"))
                }
                Mismatch::StatementHash { computed, header } => {
                    let show = |s: &Option<Hash>| s.map(|h| h.to_string()).unwrap_or_else(|| "no statement".into());
                    (
                        Check::StatementHash,
                        "statement hash",
                        format!("{} (re-execution)", show(computed)),
                        format!("{} (in the header)", show(header)),
                    )
                }
                Mismatch::StateRoot { computed, header } => {
                    (Check::StateRoot, "state root", format!("{computed} (re-execution)"), format!("{header} (in the header)"))
                }
            };
            Failure::at(check, h, item, expected, found)
        })?;
        compare_receipts(h, &outcome.receipts, &entry.receipts)?;
        compare_statements(h, outcome.statement.as_ref(), entry.statement.as_ref())?;
        let cert_sigs = &sigs[block.records.len().min(sigs.len())..];
        let target = entry.block.certificate.target;
        if target.kind == VoteKind::Finalize && target.block != end && target.view > header.view && target.epoch == header.epoch && !header.ends_epoch() {
            // Final through a descendant of its epoch: checked when the descendant arrives.
            self.held.push(Held { height: h, certificate: entry.block.certificate.clone(), sigs: cert_sigs.to_vec() });
        } else {
            // Its own certificate, or (an epoch-ending block) its suffix's: the epoch's set
            // must finalize it before the next set takes over.
            self.check_certificate(h, header, end, end_view, &entry.block.certificate, cert_sigs)?;
        }
        // The carried next set is the one the header names (checked when decoded), and the
        // header's is the one re-execution gives (execute_checked).
        if let Some(end) = &entry.block.epoch_end
            && end.next_validators != *self.state.validator_set()
        {
            return Err(Failure::at(
                Check::ValidatorSet,
                h,
                "next validator set",
                format!("{} (re-execution)", self.state.validator_set().hash()),
                format!("{} (carried with the block)", end.next_validators.hash()),
            ));
        }
        // The block holds: move on.
        if self.report.epochs.last().map(|e| e.set_hash) != Some(header.validator_set_hash) || self.report.epochs.last().map(|e| e.epoch) != Some(header.epoch) {
            self.report.epochs.push(Epoch { epoch: header.epoch, from_height: h, set_hash: header.validator_set_hash, validators: self.set.len() });
        }
        self.set = self.state.validator_set().clone();
        self.epoch = header.child_epoch();
        self.report.blocks += 1;
        self.report.records += block.records.len() as u64;
        self.report.signatures += (block.records.len() + entry.block.certificate.signatures.len()) as u64;
        self.report.statements += u64::from(outcome.statement.is_some());
        if self.watch.heights.contains(&h) || self.watch.ids.contains(&id) {
            self.report.watched.push((h, id));
        }
        self.report.tip_height = h;
        self.report.tip_id = id;
        self.report.state_root = outcome.state_root;
        Ok(())
    }

    /// Checks the certificates held for a descendant against block `h` (id `id`): one that
    /// names it must be for its view and valid for the set that certifies it; one that names
    /// another block at a view up to this block's can never be matched.
    fn resolve_held(&mut self, h: u64, header: &BlockHeader, id: Hash, end: Hash, end_view: u64) -> Result<(), Failure> {
        let mut still = Vec::with_capacity(self.held.len());
        for held in std::mem::take(&mut self.held) {
            let t = held.certificate.target;
            let item = || format!("certificate (of a descendant, checked at height {h})");
            if t.epoch != header.epoch {
                return Err(Failure::at(
                    Check::Certificate,
                    held.height,
                    item(),
                    format!("block {} at view {} of epoch {}, before the epoch ends", t.block, t.view, t.epoch),
                    format!("block {id} at height {h} is of epoch {}: the named block is not in this chain", header.epoch),
                ));
            }
            if t.block == end && end != id {
                if t.view != end_view {
                    return Err(Failure::at(
                        Check::Certificate,
                        held.height,
                        item(),
                        format!("a finalize certificate for view {end_view} (the last suffix block of block {id} at height {h})"),
                        describe_target(&held.certificate),
                    ));
                }
                self.check_signatures(held.height, &held.certificate, &held.sigs)?;
            } else if t.block == id {
                if t.view != header.view {
                    return Err(Failure::at(
                        Check::Certificate,
                        held.height,
                        item(),
                        format!("a finalize certificate for view {} (the view of block {id} at height {h})", header.view),
                        describe_target(&held.certificate),
                    ));
                }
                self.check_signatures(held.height, &held.certificate, &held.sigs)?;
            } else if t.view <= end_view || header.ends_epoch() {
                return Err(Failure::at(
                    Check::Certificate,
                    held.height,
                    item(),
                    format!("block {} at view {}, the block it finalizes, as a descendant", t.block, t.view),
                    format!(
                        "block {id} at height {h} and view {} instead: the named block is not in this chain, or its header was altered",
                        header.view
                    ),
                ));
            } else if h - held.height >= DESCENDANT_DISTANCE_MAX {
                return Err(Failure::at(
                    Check::Certificate,
                    held.height,
                    item(),
                    format!("block {} at view {} within {DESCENDANT_DISTANCE_MAX} heights", t.block, t.view),
                    format!("no such block up to height {h}"),
                ));
            } else {
                still.push(held);
            }
        }
        self.held = still;
        Ok(())
    }

    /// The certificate must finalize `id` at `view` (the block, or the end of its suffix) in
    /// the block's epoch.
    fn check_certificate(&self, h: u64, header: &BlockHeader, id: Hash, view: u64, cert: &Certificate, sigs: &[bool]) -> Result<(), Failure> {
        let target = cert.target;
        if target.kind != VoteKind::Finalize || target.block != id || target.view != view || target.epoch != header.epoch {
            let what = if header.ends_epoch() {
                format!("a finalize certificate of epoch {} for view {view} naming block {id} (the block or its last suffix block: an epoch-ending block is final within its epoch)", header.epoch)
            } else {
                format!("a finalize certificate of epoch {} for view {view} naming block {id}, or for a descendant at a later view", header.epoch)
            };
            return Err(Failure::at(Check::Certificate, h, "certificate", what, describe_target(cert)));
        }
        self.check_signatures(h, cert, sigs)
    }

    /// Quorum of distinct validators of the set in force, and every signature valid.
    fn check_signatures(&self, h: u64, cert: &Certificate, sigs: &[bool]) -> Result<(), Failure> {
        if let Err(e) = cert.check_signers(&self.set) {
            let (expected, found) = match e {
                CertificateError::TooFewSigners { found, needed } => {
                    (format!("at least {needed} signers of the {} validators in force", self.set.len()), format!("{found} signers"))
                }
                CertificateError::DuplicateOrUnsorted(key) => {
                    ("distinct signers in ascending key order".to_owned(), format!("signer {key} repeated or out of order"))
                }
                CertificateError::NotAValidator(key) => {
                    (format!("signers from the validator set {} in force", self.set.hash()), format!("signer {key}, not a validator"))
                }
                other => ("a well-formed certificate".to_owned(), other.to_string()),
            };
            return Err(Failure::at(Check::CertificateSigners, h, "certificate", expected, found));
        }
        for (i, (key, signature)) in cert.signatures.iter().enumerate() {
            if !sigs.get(i).copied().unwrap_or(false) {
                return Err(Failure::at(
                    Check::CertificateSignature,
                    h,
                    format!("certificate signature {i}"),
                    format!("a valid finalize vote by validator {key}"),
                    format!("signature {} that does not verify", signature.to_hex()),
                ));
            }
        }
        Ok(())
    }
}

fn describe_target(cert: &Certificate) -> String {
    format!("a {} certificate of epoch {} for view {} naming {}", cert.target.kind.name(), cert.target.epoch, cert.target.view, cert.target.block)
}

fn describe_receipt(r: &Receipt) -> String {
    let name = r.code().map(|c| c.name()).unwrap_or("unknown code");
    format!("record {} code {} ({name})", r.record, r.code)
}

fn compare_receipts(h: u64, computed: &[Receipt], carried: &[Receipt]) -> Result<(), Failure> {
    for (i, (c, s)) in computed.iter().zip(carried).enumerate() {
        if c != s {
            return Err(Failure::at(Check::Receipt, h, format!("receipt {i}"), format!("{} (re-execution)", describe_receipt(c)), format!("{} (stored)", describe_receipt(s))));
        }
    }
    if computed.len() != carried.len() {
        return Err(Failure::at(Check::Receipt, h, "receipts", format!("{} receipts, one per record", computed.len()), format!("{} receipts", carried.len())));
    }
    Ok(())
}

fn compare_statements(h: u64, computed: Option<&Statement>, carried: Option<&Statement>) -> Result<(), Failure> {
    let (c, s) = match (computed, carried) {
        (None, None) => return Ok(()),
        (Some(c), None) => {
            return Err(Failure::at(Check::Statement, h, format!("statement of period {}", c.period), "the statement this block closes", "no statement"));
        }
        (None, Some(s)) => {
            return Err(Failure::at(Check::Statement, h, format!("statement of period {}", s.period), "no statement (this block closes no period)", "a statement"));
        }
        (Some(c), Some(s)) => (c, s),
    };
    let item = |what: String| format!("statement of period {}, {what}", c.period);
    let fail = |what: String, e: String, f: String| Err(Failure::at(Check::Statement, h, item(what), e, f));
    if (c.alliance, c.period, c.start_ms, c.end_ms) != (s.alliance, s.period, s.start_ms, s.end_ms) {
        return fail(
            "period".into(),
            format!("period {} [{}, {}) ms", c.period, c.start_ms, c.end_ms),
            format!("period {} [{}, {}) ms", s.period, s.start_ms, s.end_ms),
        );
    }
    let line = |l: &crate::contract::Line| format!("{} {} -> {} {} ({} sources)", l.kind.name(), l.debtor, l.creditor, cents(l.amount as i128), l.sources.len());
    for (i, (a, b)) in c.lines.iter().zip(&s.lines).enumerate() {
        if a != b {
            return fail(format!("line {i}"), line(a), line(b));
        }
    }
    if c.lines.len() != s.lines.len() {
        return fail("lines".into(), format!("{} lines", c.lines.len()), format!("{} lines", s.lines.len()));
    }
    for (i, (a, b)) in c.nets.iter().zip(&s.nets).enumerate() {
        if a != b {
            return fail(format!("net {i}"), format!("{} {}", a.0, cents(a.1)), format!("{} {}", b.0, cents(b.1)));
        }
    }
    let transfer = |t: &crate::contract::Transfer| format!("{} pays {} {}", t.payer, t.payee, cents(t.amount as i128));
    for (what, a, b) in [("transfer", &c.transfers, &s.transfers), ("rolled-over transfer", &c.rolled_over, &s.rolled_over)] {
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            if x != y {
                return fail(format!("{what} {i}"), transfer(x), transfer(y));
            }
        }
    }
    if c != s {
        return fail("contents".into(), format!("hash {} (re-execution)", c.hash()), format!("hash {} (stored)", s.hash()));
    }
    Ok(())
}

fn cents(v: i128) -> String {
    crate::contract::statement::cents(v)
}
