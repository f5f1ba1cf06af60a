//! The auditor's tools (DESIGN §6): full-chain verification, exports, inclusion proofs.
//!
//! An auditor trusts nothing but the chain. Everything here is a pure function of bytes:
//! no network, no clock, no store (the CLI reads the store or the export file and feeds the
//! blocks in).
//!
//! - [`verify`]: [`verify::verify_chain`] checks every hash link, every certificate against
//!   the validator set in force at its height (replaying governance from genesis), every
//!   record signature (batched across all cores), and every receipt, statement and state root
//!   by re-executing the settlement contract. It stops at the first divergence and names it
//!   precisely: a [`Failure`] carries the height, the item, what was expected and what was
//!   found.
//! - [`export`]: the export file (docs/FORMAT.md, "Proofs and exports"): versioned, framed per
//!   block, checksummed, with size limits, streamed over `std::io::Read`/`Write`.
//! - [`proof`]: a self-contained proof that one record is in a final block, with its receipt.
//! - [`tip`]: signed checkpoints (a node's certified tip) and the check that a verified chain
//!   reaches and agrees with one, so a withheld or forked tail is seen.
//! - [`chain`]: a deterministic chain builder for tests and benchmarks (genesis from seeds,
//!   blocks executed through the contract, certificates signed by the validators).
//!
//! Which validator set certifies block h: the set in force after executing blocks 1..h−1
//! (`State::validator_set` before block h; the genesis set for h = 1), which is the set of the
//! block's epoch. The header's `validator_set_hash` must name it. Governance changes voted in
//! take effect when a block closes a period; that block ends its epoch, names the next set in
//! `next_validator_set_hash` (and carries it in full beside its certificate), and the first
//! block the new set certifies is the one after it, in the next epoch.

pub mod chain;
pub mod export;
pub mod proof;
pub mod state_proof;
pub mod tip;
pub mod verify;

use std::fmt;

use crate::block::FinalizedBlock;
use crate::contract::Statement;
use crate::receipt::Receipt;

pub use verify::{verify_chain, verify_chain_watching, Progress, Report, Start, VerifyOptions, Watch};

/// How far above a block the descendant its certificate finalizes may be, in heights.
///
/// Consensus finalizes a block by its own finalize certificate or through a descendant's: when
/// the certificate of a later block D arrives, every ancestor not yet final is final too, and
/// the node stores each with D's certificate (docs/FORMAT.md, "Proofs and exports"). The
/// verifier holds such blocks until it reaches D, and a record proof carries the headers up to
/// D; this bounds both (a proof's headers fit its 2 MiB with a 1 MiB genesis).
pub const DESCENDANT_DISTANCE_MAX: u64 = 1024;

/// One finalized block with what its execution produced, as stored and exported. The header
/// commits to the receipts (receipts root) and the statement (statement hash); the verifier
/// recomputes both and compares them with these copies item by item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockEntry {
    pub block: FinalizedBlock,
    /// One per record, in block order.
    pub receipts: Vec<Receipt>,
    /// The statement this block closed, if any.
    pub statement: Option<Statement>,
}

/// Which check a divergence failed. The names are stable (JSON reports use them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The export file itself: truncated, garbage, oversized, wrong version or checksum.
    File,
    /// The genesis or the checkpoint the chain starts from.
    Start,
    /// Heights must run 1, 2, 3, … without a gap.
    Height,
    /// A header's parent must be the previous block's id.
    ParentLink,
    /// The header's validator-set hash must name the set in force (from genesis and governance).
    ValidatorSet,
    /// The header's epoch must be its parent's, plus one after an epoch-ending block.
    Epoch,
    /// A record's stateless rules (alliance, fields).
    Record,
    RecordSignature,
    RecordsRoot,
    /// The contract refused the block (time going backwards, non-member, time window …).
    Execution,
    Receipt,
    ReceiptsRoot,
    Statement,
    StatementHash,
    StateRoot,
    /// The certificate must be a finalize certificate naming this block, or a descendant
    /// later in the chain (at a later view) that is then reached.
    Certificate,
    /// Quorum, sorted distinct signers, all validators of the set in force.
    CertificateSigners,
    CertificateSignature,
    /// The chain must reach, and agree with, a tip the auditor was given (an expected block id,
    /// or a node's signed checkpoint): a withheld or forked tail fails here.
    Tip,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::File => "file",
            Check::Start => "start",
            Check::Height => "height",
            Check::ParentLink => "parent-link",
            Check::ValidatorSet => "validator-set",
            Check::Epoch => "epoch",
            Check::Record => "record",
            Check::RecordSignature => "record-signature",
            Check::RecordsRoot => "records-root",
            Check::Execution => "execution",
            Check::Receipt => "receipt",
            Check::ReceiptsRoot => "receipts-root",
            Check::Statement => "statement",
            Check::StatementHash => "statement-hash",
            Check::StateRoot => "state-root",
            Check::Certificate => "certificate",
            Check::CertificateSigners => "certificate-signers",
            Check::CertificateSignature => "certificate-signature",
            Check::Tip => "tip",
        }
    }
}

/// The first divergence found: where, in what, expected versus found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub check: Check,
    /// The block height, when the divergence is in a block.
    pub height: Option<u64>,
    /// The item, e.g. "record 3 (id …)", "certificate", "export byte 1234".
    pub item: String,
    pub expected: String,
    pub found: String,
}

impl Failure {
    pub fn new(check: Check, height: Option<u64>, item: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Failure {
        Failure { check, height, item: item.into(), expected: expected.into(), found: found.into() }
    }
    pub fn at(check: Check, height: u64, item: impl Into<String>, expected: impl Into<String>, found: impl Into<String>) -> Failure {
        Failure::new(check, Some(height), item, expected, found)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.height {
            Some(h) => write!(f, "{} check failed at height {h}, {}: expected {}, found {}", self.check.name(), self.item, self.expected, self.found),
            None => write!(f, "{} check failed, {}: expected {}, found {}", self.check.name(), self.item, self.expected, self.found),
        }
    }
}

impl std::error::Error for Failure {}
