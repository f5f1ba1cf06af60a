//! One record, proven (DESIGN §6): a self-contained proof that a record is in a final block,
//! with its receipt, checkable offline from this file and docs/FORMAT.md alone.
//!
//! ```text
//! RecordProof = "PLAZA-PROOF\0" ‖ version: u16 (= 3) ‖ u32 len ‖ Genesis ‖ Anchor ‖ ValidatorSet
//!               ‖ BlockHeader ‖ seq<BlockHeader> (descendants) ‖ Certificate ‖ Record ‖ Receipt
//!               ‖ InclusionProof (record id in records_root) ‖ InclusionProof (receipt in receipts_root)
//! Anchor      = 0x01                                  the set is the genesis set
//!             | 0x02 ‖ BlockHeader                    a checkpoint block certified by the same set
//! ```
//!
//! The certificate finalizes the block itself (no descendants), or the last of the
//! descendants: consensus finalizes a block through a descendant when the descendant's
//! finalize certificate comes first, and every ancestor not yet final is final with it. The
//! descendants are the headers from the block's child to the certified block, each the child
//! of the one before.
//!
//! Why the validator set is to be believed: either it is the genesis set (the alliance id is
//! the hash of the genesis carried in the proof), or it certified a checkpoint block that the
//! auditor trusts by its id (from their own `plaza verify` report, which lists the first
//! block of every validator set). Headers commit to the set that certifies them, not to the
//! next one, so a set change can only be followed by re-execution; the checkpoint is where a
//! full verification hands over to the proof (that verification established the checkpoint
//! is final, so the proof carries only its header).

use crate::audit::{BlockEntry, Check, Failure, DESCENDANT_DISTANCE_MAX};
use crate::block::BlockHeader;
use crate::cert::{Certificate, ValidatorSet, VoteKind};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::contract::State;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::{self, InclusionProof};
use crate::receipt::Receipt;
use crate::record::{Record, RECORD_BYTES_MAX};
use crate::store::ChainStore;

pub const MAGIC: &[u8; 12] = b"PLAZA-PROOF\0";
/// 3: the headers up to a certified descendant; the checkpoint anchor is a header only.
/// (2: the genesis is length-prefixed; 1: the first.) Older versions are not read.
pub const VERSION: u16 = 3;
/// A proof file: genesis (≤ 1 MiB), up to 1024 descendant headers (≤ 256 KiB), a record and paths.
pub const PROOF_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Why the validator set that certified the block is the right one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Anchor {
    /// The set is the genesis set.
    Genesis,
    /// A block the auditor trusts by id (from a verification of their own), certified by the same set.
    Checkpoint { header: BlockHeader },
}

impl Encode for Anchor {
    fn encode(&self, w: &mut Writer) {
        match self {
            Anchor::Genesis => w.u8(1),
            Anchor::Checkpoint { header } => {
                w.u8(2);
                header.encode(w);
            }
        }
    }
}
impl Decode for Anchor {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Anchor::Genesis),
            2 => Ok(Anchor::Checkpoint { header: BlockHeader::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "proof anchor", tag }),
        }
    }
}

/// What both kinds of proof (records here, state items in `state_proof`) carry after their
/// magic and version to show that their header is final: the genesis, why the validator set
/// is to be believed, the set, the header, and its certificate (FORMAT.md, "Proofs and exports").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedHeader {
    pub genesis: Genesis,
    pub anchor: Anchor,
    /// The set that certified the block.
    pub validators: ValidatorSet,
    pub header: BlockHeader,
    /// Empty when the certificate is the block's own; else the headers from the block's child
    /// to the descendant the certificate finalizes, in height order.
    pub descendants: Vec<BlockHeader>,
    pub certificate: Certificate,
}

/// What a valid [`CertifiedHeader`] establishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finality {
    pub alliance: Hash,
    /// `None` when anchored at genesis, else the checkpoint (height, id).
    pub checkpoint: Option<(u64, Hash)>,
    /// `None` when the certificate is the block's own, else the descendant it finalizes
    /// (height, id).
    pub finalized_through: Option<(u64, Hash)>,
}

impl CertifiedHeader {
    /// `block`'s header with its certificate, from a node's store: the headers up to the
    /// descendant its certificate finalizes, the validator set (the genesis set, `in_force` when
    /// it is the one, or the one in force recomputed by re-execution) and the anchor.
    pub fn from_store<S: ChainStore + ?Sized>(store: &S, block: &crate::block::FinalizedBlock, in_force: Option<&ValidatorSet>) -> Result<CertifiedHeader, String> {
        let genesis = store.genesis().clone();
        let header = block.block.header.clone();
        let descendants = descendants_in_store(store, block)?;
        let (validators, anchor) = validators_in_store(store, &genesis, &header, in_force)?;
        Ok(CertifiedHeader { genesis, anchor, validators, header, descendants, certificate: block.certificate.clone() })
    }

    /// Checks that the header is final: the set is the header's, the descendant headers chain
    /// up to the block the certificate finalizes, a quorum of the set signed it, and the set is
    /// the genesis set or certified a checkpoint in `trusted`.
    pub fn verify(&self, trusted: &[Hash]) -> Result<Finality, Failure> {
        let h = self.header.height;
        if self.validators.hash() != self.header.validator_set_hash {
            return Err(Failure::at(
                Check::ValidatorSet,
                h,
                "validator set",
                format!("{} (in the header)", self.header.validator_set_hash),
                format!("{} (carried)", self.validators.hash()),
            ));
        }
        let alliance = self.genesis.alliance_id();
        let certified = check_descendants(&self.header, &self.descendants)?;
        check_finalizes(certified, &alliance, &self.certificate, &self.validators, h)?;
        let finalized_through = (!self.descendants.is_empty()).then(|| (certified.height, certified.id()));
        let checkpoint = check_anchor(&self.anchor, &self.genesis, &self.validators, &self.header, trusted)?;
        Ok(Finality { alliance, checkpoint, finalized_through })
    }

    /// The block ids a proof resting on this header's anchor needs trusted: none for genesis,
    /// the checkpoint's id otherwise (what `plaza proof` and the API check their own proofs with).
    pub fn own_trust(&self) -> Vec<Hash> {
        match &self.anchor {
            Anchor::Genesis => Vec::new(),
            Anchor::Checkpoint { header } => vec![header.id()],
        }
    }
}

impl Encode for CertifiedHeader {
    fn encode(&self, w: &mut Writer) {
        w.sized(|w| self.genesis.encode(w));
        self.anchor.encode(w);
        self.validators.encode(w);
        self.header.encode(w);
        w.seq(&self.descendants);
        self.certificate.encode(w);
    }
}

impl Decode for CertifiedHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let genesis_len = r.len("genesis", crate::genesis::GENESIS_BYTES_MAX)?;
        let genesis = Genesis::from_bytes(r.take(genesis_len)?, crate::genesis::GENESIS_BYTES_MAX)?;
        Ok(CertifiedHeader {
            genesis,
            anchor: Anchor::decode(r)?,
            validators: ValidatorSet::decode(r)?,
            header: BlockHeader::decode(r)?,
            descendants: r.seq("descendant headers", DESCENDANT_DISTANCE_MAX as usize)?,
            certificate: Certificate::decode(r)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordProof {
    pub certified: CertifiedHeader,
    pub record: Record,
    pub receipt: Receipt,
    pub record_path: InclusionProof,
    pub receipt_path: InclusionProof,
}

/// What a valid proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenRecord {
    pub alliance: Hash,
    pub height: u64,
    pub block: Hash,
    pub index: u64,
    pub record: Hash,
    pub receipt: Receipt,
    /// `None` when anchored at genesis, else the checkpoint (height, id).
    pub checkpoint: Option<(u64, Hash)>,
    /// `None` when the certificate is the block's own, else the descendant it finalizes
    /// (height, id).
    pub finalized_through: Option<(u64, Hash)>,
}

impl RecordProof {
    /// Builds the proof of record `index` of `entry`, whose block `validators` certified and
    /// whose certificate is its own.
    pub fn build(genesis: &Genesis, anchor: Anchor, validators: ValidatorSet, entry: &BlockEntry, index: usize) -> Result<RecordProof, String> {
        RecordProof::build_through(genesis, anchor, validators, entry, index, Vec::new())
    }

    /// Builds the proof of record `index` of `entry`, final through the certificate it carries,
    /// which finalizes the last of `descendants` (the headers from the block's child up to the
    /// certified one; empty when the certificate is the block's own).
    pub fn build_through(
        genesis: &Genesis,
        anchor: Anchor,
        validators: ValidatorSet,
        entry: &BlockEntry,
        index: usize,
        descendants: Vec<BlockHeader>,
    ) -> Result<RecordProof, String> {
        let header = entry.block.block.header.clone();
        let certified = CertifiedHeader { genesis: genesis.clone(), anchor, validators, header, descendants, certificate: entry.block.certificate.clone() };
        RecordProof::of(certified, entry, index)
    }

    /// The proof of record `index` of `entry`, whose block `certified` shows final.
    fn of(certified: CertifiedHeader, entry: &BlockEntry, index: usize) -> Result<RecordProof, String> {
        let block = &entry.block.block;
        let record = block.records.get(index).ok_or_else(|| format!("block {} has no record {index}", block.header.height))?.clone();
        let receipt = *entry.receipts.get(index).ok_or_else(|| format!("block {} has no receipt {index}", block.header.height))?;
        let record_leaves: Vec<Hash> = block.records.iter().map(|r| merkle::leaf_hash(r.id().as_bytes())).collect();
        let receipt_leaves: Vec<Hash> = entry.receipts.iter().map(|r| merkle::leaf_hash(&r.to_bytes())).collect();
        let record_path = merkle::prove(&record_leaves, index).ok_or("record index out of range")?;
        let receipt_path = merkle::prove(&receipt_leaves, index).ok_or("receipt index out of range")?;
        if certified.descendants.len() as u64 > DESCENDANT_DISTANCE_MAX {
            return Err(format!("the certified descendant is {} blocks above; a proof carries at most {DESCENDANT_DISTANCE_MAX}", certified.descendants.len()));
        }
        Ok(RecordProof { certified, record, receipt, record_path, receipt_path })
    }

    /// Builds the proof of record `id` from a node's store: the block, the headers up to the
    /// descendant its certificate finalizes, the validator set (the genesis set, or the one in
    /// force recomputed by re-execution) and the anchor (genesis, or the first block that set
    /// certified). `Ok(None)` when the record is not in the store's chain.
    pub fn from_store<S: ChainStore + ?Sized>(store: &S, id: &Hash) -> Result<Option<RecordProof>, String> {
        let Some(location) = store.record_location(id).map_err(|e| e.to_string())? else { return Ok(None) };
        let height = location.height;
        let block = store.block(height).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {height} is missing from the store"))?;
        let receipts = store.block_receipts(&block).map_err(|e| e.to_string())?;
        let certified = CertifiedHeader::from_store(store, &block, None)?;
        let entry = BlockEntry { block, receipts, statement: None };
        RecordProof::of(certified, &entry, location.index as usize).map(Some)
    }

    /// Checks the proof offline. `trusted` are block ids the auditor trusts as checkpoints;
    /// a proof anchored at a checkpoint not among them fails.
    pub fn verify(&self, trusted: &[Hash]) -> Result<ProvenRecord, Failure> {
        let header = &self.certified.header;
        let h = header.height;
        let fail = |check: Check, item: &str, expected: String, found: String| Err(Failure::at(check, h, item.to_owned(), expected, found));
        let alliance = self.certified.genesis.alliance_id();
        let id = self.record.id();
        if let Err(e) = self.record.check(&alliance) {
            return fail(Check::RecordSignature, "record", "a record of this alliance with a valid signature".into(), e.to_string());
        }
        if self.receipt.record != id {
            return fail(Check::Receipt, "receipt", format!("a receipt for record {id}"), format!("a receipt for record {}", self.receipt.record));
        }
        if (self.record_path.index, self.record_path.tree_size) != (self.receipt_path.index, self.receipt_path.tree_size) {
            return fail(
                Check::Receipt,
                "receipt path",
                format!("position {} of {} (the record's)", self.record_path.index, self.record_path.tree_size),
                format!("position {} of {}", self.receipt_path.index, self.receipt_path.tree_size),
            );
        }
        if !self.record_path.verify(&merkle::leaf_hash(id.as_bytes()), &header.records_root) {
            return fail(Check::RecordsRoot, "record path", format!("a path from record {id} to the records root {}", header.records_root), "a path that does not lead there".into());
        }
        if !self.receipt_path.verify(&merkle::leaf_hash(&self.receipt.to_bytes()), &header.receipts_root) {
            return fail(
                Check::ReceiptsRoot,
                "receipt path",
                format!("a path from the receipt to the receipts root {}", header.receipts_root),
                "a path that does not lead there".into(),
            );
        }
        let Finality { alliance, checkpoint, finalized_through } = self.certified.verify(trusted)?;
        Ok(ProvenRecord { alliance, height: h, block: header.id(), index: self.record_path.index, record: id, receipt: self.receipt, checkpoint, finalized_through })
    }
}

/// Why the set is to be believed (step 5 of the record proof's rule): it is the genesis set,
/// or it certified a checkpoint block the auditor trusts, at or below `header`. Returns the
/// checkpoint (height, id), if any.
pub(crate) fn check_anchor(anchor: &Anchor, genesis: &Genesis, validators: &ValidatorSet, header: &BlockHeader, trusted: &[Hash]) -> Result<Option<(u64, Hash)>, Failure> {
    let h = header.height;
    let fail = |check: Check, item: &str, expected: String, found: String| Err(Failure::at(check, h, item.to_owned(), expected, found));
    match anchor {
        Anchor::Genesis => {
            if *validators != genesis.validators {
                return fail(Check::ValidatorSet, "anchor", format!("the genesis validator set {}", genesis.validators.hash()), format!("set {}", validators.hash()));
            }
            Ok(None)
        }
        Anchor::Checkpoint { header: checkpoint } => {
            let cid = checkpoint.id();
            if !trusted.contains(&cid) {
                return fail(
                    Check::Start,
                    "anchor",
                    "a checkpoint block you trust (pass its id with --trust)".into(),
                    format!("checkpoint block {cid} at height {}, not trusted", checkpoint.height),
                );
            }
            if checkpoint.validator_set_hash != header.validator_set_hash || checkpoint.height > h {
                return fail(
                    Check::ValidatorSet,
                    "anchor",
                    format!("a checkpoint at or below height {h} certified by set {}", header.validator_set_hash),
                    format!("height {} certified by set {}", checkpoint.height, checkpoint.validator_set_hash),
                );
            }
            Ok(Some((checkpoint.height, cid)))
        }
    }
}

/// The headers from `block`'s child up to the descendant its certificate finalizes (empty
/// when the certificate is the block's own), read from the store.
pub(crate) fn descendants_in_store<S: ChainStore + ?Sized>(store: &S, block: &crate::block::FinalizedBlock) -> Result<Vec<BlockHeader>, String> {
    let header = &block.block.header;
    let height = header.height;
    let target = block.certificate.target;
    let mut descendants = Vec::new();
    if target.block == header.id() {
        return Ok(descendants);
    }
    let tip = store.tip_height().map_err(|e| e.to_string())?;
    let mut h = height;
    loop {
        h += 1;
        if h > tip || h - height > DESCENDANT_DISTANCE_MAX {
            return Err(format!(
                "block {height}'s certificate finalizes block {} (view {}), not found within {DESCENDANT_DISTANCE_MAX} blocks above it up to the tip {tip}",
                target.block, target.view
            ));
        }
        let child = store.block(h).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {h} is missing from the store"))?.block.header;
        let found = child.id() == target.block;
        descendants.push(child);
        if found {
            return Ok(descendants);
        }
    }
}

/// The set that certified `header` and why it is to be believed: the genesis set, or the set
/// in force (`in_force`, when the caller holds the state before the block, else recomputed by
/// re-execution) anchored at the first block it certified.
pub(crate) fn validators_in_store<S: ChainStore + ?Sized>(
    store: &S,
    genesis: &Genesis,
    header: &BlockHeader,
    in_force: Option<&ValidatorSet>,
) -> Result<(ValidatorSet, Anchor), String> {
    let read = |h: u64| -> Result<crate::block::FinalizedBlock, String> {
        store.block(h).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {h} is missing from the store"))
    };
    let height = header.height;
    let set_hash = header.validator_set_hash;
    if genesis.validators.hash() == set_hash {
        return Ok((genesis.validators.clone(), Anchor::Genesis));
    }
    let set = match in_force {
        Some(set) if set.hash() == set_hash => set.clone(),
        _ => {
            let mut state = State::from_genesis(genesis);
            for h in 1..height {
                let b = read(h)?;
                state.apply_block(b.block.header.time_ms, &b.block.records).map_err(|e| format!("block {h} does not re-execute: {e}"))?;
            }
            state.validator_set().clone()
        }
    };
    if set.hash() != set_hash {
        return Err(format!("block {height} names validator set {set_hash}, re-execution gives {}", set.hash()));
    }
    // The first block this set certified: the one a full verification reports.
    let mut first = header.clone();
    for h in (1..height).rev() {
        let b = read(h)?.block.header;
        if b.validator_set_hash != set_hash {
            break;
        }
        first = b;
    }
    Ok((set, Anchor::Checkpoint { header: first }))
}

/// Follows the descendant headers from `header`: each the child of the one before (next
/// height, parent = the previous id, a later view), all certified by the same set. Returns
/// the header the certificate must finalize: the last descendant, or `header` itself.
pub(crate) fn check_descendants<'a>(header: &'a BlockHeader, descendants: &'a [BlockHeader]) -> Result<&'a BlockHeader, Failure> {
    let mut previous = header;
    for (i, d) in descendants.iter().enumerate() {
        let at = |check: Check, expected: String, found: String| Err(Failure::at(check, d.height, format!("descendant header {i}"), expected, found));
        if d.height != previous.height + 1 {
            return at(Check::Height, format!("height {}", previous.height + 1), format!("height {}", d.height));
        }
        if d.parent != previous.id() {
            return at(
                Check::ParentLink,
                format!("parent {} (the id of the header at height {})", previous.id(), previous.height),
                format!("parent {}", d.parent),
            );
        }
        if d.view <= previous.view {
            return at(Check::Height, format!("a view above {} (its parent's)", previous.view), format!("view {}", d.view));
        }
        if d.validator_set_hash != header.validator_set_hash {
            return at(
                Check::ValidatorSet,
                format!("validator set {} (the proven block's)", header.validator_set_hash),
                format!("validator set {}", d.validator_set_hash),
            );
        }
        previous = d;
    }
    Ok(previous)
}

/// The certificate must finalize `certified` (its view, its id) and hold for `set`. `h` is the
/// proven block's height, where a failure is reported.
pub(crate) fn check_finalizes(certified: &BlockHeader, alliance: &Hash, cert: &Certificate, set: &ValidatorSet, h: u64) -> Result<(), Failure> {
    let id = certified.id();
    let t = cert.target;
    if t.kind != VoteKind::Finalize || t.block != id || t.view != certified.view {
        let expected = if certified.height == h {
            format!("a finalize certificate for view {} naming block {id} (or the headers up to the descendant it finalizes)", certified.view)
        } else {
            format!("a finalize certificate for view {} naming block {id} at height {}, the last descendant header", certified.view, certified.height)
        };
        return Err(Failure::at(Check::Certificate, h, "certificate", expected, format!("a {} certificate for view {} naming {}", t.kind.name(), t.view, t.block)));
    }
    cert.verify(alliance, set).map_err(|e| Failure::at(Check::CertificateSigners, h, "certificate", format!("a quorum of the {} validators' valid signatures", set.len()), e.to_string()))
}

impl Encode for RecordProof {
    fn encode(&self, w: &mut Writer) {
        w.raw(MAGIC);
        w.u16(VERSION);
        self.certified.encode(w);
        self.record.encode(w);
        self.receipt.encode(w);
        self.record_path.encode(w);
        self.receipt_path.encode(w);
    }
}

impl Decode for RecordProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.take(12)? != MAGIC {
            return Err(DecodeError::invalid("proof", "not a Plaza record proof"));
        }
        let version = r.u16()?;
        if version != VERSION {
            let why = if version < VERSION { " (an older proof: write it again with `plaza proof`)" } else { "" };
            return Err(DecodeError::invalid("proof", format!("version {version}, this plaza reads version {VERSION}{why}")));
        }
        let certified = CertifiedHeader::decode(r)?;
        let start = r.offset();
        let record = Record::decode(r)?;
        if r.offset() - start > RECORD_BYTES_MAX {
            return Err(DecodeError::invalid("proof", "the record exceeds the record size limit"));
        }
        Ok(RecordProof {
            certified,
            record,
            receipt: Receipt::decode(r)?,
            record_path: InclusionProof::decode(r)?,
            receipt_path: InclusionProof::decode(r)?,
        })
    }
}
