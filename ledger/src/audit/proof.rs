//! One record, proven (DESIGN §6): a self-contained proof that a record is in a final block,
//! with its receipt, checkable offline from this file and docs/FORMAT.md alone.
//!
//! ```text
//! RecordProof = "PLAZA-PROOF\0" ‖ version: u16 (= 4) ‖ CertifiedHeader ‖ Record ‖ Receipt
//!               ‖ InclusionProof (record id in records_root) ‖ InclusionProof (receipt in receipts_root)
//! CertifiedHeader = u32 len ‖ Genesis ‖ Anchor ‖ seq<EpochChange> ‖ ValidatorSet ‖ BlockHeader
//!               ‖ seq<BlockHeader> (descendants) ‖ seq<u64> (suffix views) ‖ Certificate
//! EpochChange = BlockHeader (an epoch-ending block) ‖ Certificate ‖ ValidatorSet (the next set)
//!               ‖ seq<u64> (its suffix views)
//! Anchor      = 0x01                                  the sets are followed from the genesis set
//!             | 0x02 ‖ BlockHeader                    a checkpoint block certified by the same set
//! ```
//!
//! The epoch changes are the chain of epoch-ending blocks from genesis to the block's epoch:
//! change i is the block that ended epoch i, certified by the set of epoch i (the genesis set
//! for i = 0, else the set change i − 1 named), naming the next set in its header; so every
//! set is proven from genesis alone, with no trusted checkpoint (docs/CONSENSUS.md, "Epochs").
//!
//! The certificate finalizes the block itself (no descendants), or the last of the
//! descendants: consensus finalizes a block through a descendant when the descendant's
//! finalize certificate comes first, and every ancestor not yet final is final with it. The
//! descendants are the headers from the block's child to the certified block, each the child
//! of the one before.
//!
//! Why the validator set is to be believed: it is the genesis set (the alliance id is the
//! hash of the genesis carried in the proof) followed through the epoch changes, each
//! certified by the set before it. (A proof may instead rest on a checkpoint block the
//! auditor trusts by its id, certified by the same set, with no epoch changes; `plaza proof`
//! always writes the genesis form.)

use crate::audit::{BlockEntry, Check, Failure, DESCENDANT_DISTANCE_MAX};
use crate::block::{BlockHeader, EpochEnd};
use crate::cert::{Certificate, ValidatorSet, VoteKind};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::{self, InclusionProof};
use crate::receipt::Receipt;
use crate::record::{Record, RECORD_BYTES_MAX};
use crate::store::ChainStore;

pub const MAGIC: &[u8; 12] = b"PLAZA-PROOF\0";
/// 3: the headers up to a certified descendant; the checkpoint anchor is a header only.
/// (2: the genesis is length-prefixed; 1: the first.) Older versions are not read.
/// 4: epochs (the chain of epoch changes, suffix views; headers and votes carry the epoch).
/// (3: the headers up to a certified descendant; 2: the genesis is length-prefixed; 1: the first.)
pub const VERSION: u16 = 4;
/// A proof file: genesis (≤ 1 MiB), up to 1024 descendant headers (≤ 256 KiB), the epoch
/// changes, a record and paths.
pub const PROOF_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Epoch changes one proof carries, at most.
pub const EPOCH_CHANGES_MAX: usize = 4096;

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

/// One epoch change: the block that ended an epoch, its certificate (of the block or of its
/// last suffix block, in that epoch), the next set its header names and its suffix views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochChange {
    pub header: BlockHeader,
    pub certificate: Certificate,
    pub end: EpochEnd,
}

impl Encode for EpochChange {
    fn encode(&self, w: &mut Writer) {
        self.header.encode(w);
        self.certificate.encode(w);
        self.end.encode(w);
    }
}
impl Decode for EpochChange {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode(r)?;
        let certificate = Certificate::decode(r)?;
        let end = EpochEnd::decode_for(r, &header)?;
        Ok(EpochChange { header, certificate, end })
    }
}

/// What both kinds of proof (records here, state items in `state_proof`) carry after their
/// magic and version to show that their header is final: the genesis, why the validator set
/// is to be believed (the epoch changes from genesis), the set, the header, and its
/// certificate (FORMAT.md, "Proofs and exports").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedHeader {
    pub genesis: Genesis,
    pub anchor: Anchor,
    /// With the genesis anchor: the blocks that ended epochs 0, 1, …, up to the header's epoch.
    pub epochs: Vec<EpochChange>,
    /// The set that certified the block (the set of its epoch).
    pub validators: ValidatorSet,
    pub header: BlockHeader,
    /// Empty when the certificate is the block's own; else the headers from the block's child
    /// to the descendant the certificate finalizes, in height order.
    pub descendants: Vec<BlockHeader>,
    /// When the certified header (the last descendant, or the block) ends its epoch and the
    /// certificate is of its last suffix block: the suffix views.
    pub suffix: Vec<u64>,
    pub certificate: Certificate,
}

/// What a valid [`CertifiedHeader`] establishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finality {
    pub alliance: Hash,
    /// `None` when anchored at genesis, else the checkpoint (height, id).
    pub checkpoint: Option<(u64, Hash)>,
    /// `None` when the certificate is the block's own, else the descendant it finalizes
    /// (height, id; for a suffix block, the height it would have).
    pub finalized_through: Option<(u64, Hash)>,
    /// The block's epoch (how many epoch changes the proof followed from genesis).
    pub epoch: u64,
}

impl CertifiedHeader {
    /// `block`'s header with its certificate, from a node's store: the headers up to the
    /// descendant its certificate finalizes, the validator set (the genesis set, `in_force` when
    /// it is the one, or the one in force recomputed by re-execution) and the anchor.
    pub fn from_store<S: ChainStore + ?Sized>(store: &S, block: &crate::block::FinalizedBlock) -> Result<CertifiedHeader, String> {
        let genesis = store.genesis().clone();
        let header = block.block.header.clone();
        let (descendants, suffix) = descendants_in_store(store, block)?;
        let epochs = epoch_changes_in_store(store, &header)?;
        let validators = epochs.last().map_or_else(|| genesis.validators.clone(), |c| c.end.next_validators.clone());
        if validators.hash() != header.validator_set_hash {
            return Err(format!("block {} names validator set {}, the epoch changes give {}", header.height, header.validator_set_hash, validators.hash()));
        }
        Ok(CertifiedHeader { genesis, anchor: Anchor::Genesis, epochs, validators, header, descendants, suffix, certificate: block.certificate.clone() })
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
        check_finalizes(certified, &self.suffix, &alliance, &self.certificate, &self.validators, h)?;
        let finalized_through = (!self.descendants.is_empty() || !self.suffix.is_empty()).then(|| {
            let end = crate::cert::suffix_target(&alliance, certified.epoch, certified.id(), certified.height, &self.suffix);
            (certified.height + self.suffix.len() as u64, end)
        });
        let checkpoint = check_anchor(&self.anchor, &self.genesis, &self.epochs, &self.validators, &self.header, trusted)?;
        Ok(Finality { alliance, checkpoint, finalized_through, epoch: self.header.epoch })
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
        w.seq(&self.epochs);
        self.validators.encode(w);
        self.header.encode(w);
        w.seq(&self.descendants);
        w.seq(&self.suffix);
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
            epochs: r.seq("epoch changes", EPOCH_CHANGES_MAX)?,
            validators: ValidatorSet::decode(r)?,
            header: BlockHeader::decode(r)?,
            descendants: r.seq("descendant headers", DESCENDANT_DISTANCE_MAX as usize)?,
            suffix: r.seq("suffix views", crate::cert::SUFFIX_VIEWS_MAX)?,
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
        // Without descendants the block's own suffix (if it ends its epoch) leads to the
        // certified block; with them, the suffix is the last descendant's, which is not known here.
        let suffix = if descendants.is_empty() { entry.block.suffix().to_vec() } else { Vec::new() };
        let certified = CertifiedHeader {
            genesis: genesis.clone(),
            anchor,
            epochs: Vec::new(),
            validators,
            header,
            descendants,
            suffix,
            certificate: entry.block.certificate.clone(),
        };
        RecordProof::of(certified, entry, index)
    }

    /// The proof of record `index` of `entry`, whose block `certified` shows final.
    pub fn of(certified: CertifiedHeader, entry: &BlockEntry, index: usize) -> Result<RecordProof, String> {
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
        let certified = CertifiedHeader::from_store(store, &block)?;
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
        let Finality { alliance, checkpoint, finalized_through, .. } = self.certified.verify(trusted)?;
        Ok(ProvenRecord { alliance, height: h, block: header.id(), index: self.record_path.index, record: id, receipt: self.receipt, checkpoint, finalized_through })
    }
}

/// Why the set is to be believed (step 5 of the record proof's rule): it is the genesis set
/// followed through the epoch changes, or it certified a checkpoint block the auditor trusts,
/// at or below `header`. Returns the checkpoint (height, id), if any.
pub(crate) fn check_anchor(
    anchor: &Anchor,
    genesis: &Genesis,
    epochs: &[EpochChange],
    validators: &ValidatorSet,
    header: &BlockHeader,
    trusted: &[Hash],
) -> Result<Option<(u64, Hash)>, Failure> {
    let h = header.height;
    let fail = |check: Check, item: &str, expected: String, found: String| Err(Failure::at(check, h, item.to_owned(), expected, found));
    match anchor {
        Anchor::Genesis => {
            let set = follow_epochs(genesis, epochs, header)?;
            if *validators != set {
                let from = if epochs.is_empty() { "the genesis validator set".to_owned() } else { format!("the set of epoch {} (from genesis through {} epoch changes)", epochs.len(), epochs.len()) };
                return fail(Check::ValidatorSet, "anchor", format!("{from} {}", set.hash()), format!("set {}", validators.hash()));
            }
            Ok(None)
        }
        Anchor::Checkpoint { header: checkpoint } => {
            if !epochs.is_empty() {
                return fail(Check::Start, "anchor", "no epoch changes with a checkpoint anchor".into(), format!("{} epoch changes", epochs.len()));
            }
            let cid = checkpoint.id();
            if !trusted.contains(&cid) {
                return fail(
                    Check::Start,
                    "anchor",
                    "a checkpoint block you trust (pass its id with --trust)".into(),
                    format!("checkpoint block {cid} at height {}, not trusted", checkpoint.height),
                );
            }
            if checkpoint.validator_set_hash != header.validator_set_hash || checkpoint.epoch != header.epoch || checkpoint.height > h {
                return fail(
                    Check::ValidatorSet,
                    "anchor",
                    format!("a checkpoint at or below height {h} of epoch {} certified by set {}", header.epoch, header.validator_set_hash),
                    format!("height {} of epoch {} certified by set {}", checkpoint.height, checkpoint.epoch, checkpoint.validator_set_hash),
                );
            }
            Ok(Some((checkpoint.height, cid)))
        }
    }
}

/// Follows the validator sets from genesis through `epochs` (docs/FORMAT.md, "Proofs and
/// exports"): change i must be a block of epoch i below `header`, name the set in force
/// (`validator_set_hash`) and the next one (`next_validator_set_hash`, the carried set), and be
/// finalized by a quorum of the set in force in epoch i (its own certificate, or its last
/// suffix block's). Returns the set of epoch `epochs.len()`, which must be `header`'s.
pub fn follow_epochs(genesis: &Genesis, epochs: &[EpochChange], header: &BlockHeader) -> Result<ValidatorSet, Failure> {
    let alliance = genesis.alliance_id();
    let mut set = genesis.validators.clone();
    let mut below = 0;
    for (i, change) in epochs.iter().enumerate() {
        let c = &change.header;
        let at = |check: Check, expected: String, found: String| Err(Failure::at(check, c.height, format!("epoch change {i}"), expected, found));
        if c.epoch != i as u64 {
            return at(Check::Epoch, format!("the block that ended epoch {i}"), format!("a block of epoch {}", c.epoch));
        }
        if c.height <= below || c.height >= header.height {
            return at(Check::Height, format!("a height above {below} and below {}", header.height), format!("height {}", c.height));
        }
        if c.validator_set_hash != set.hash() {
            return at(Check::ValidatorSet, format!("validator set {} (the set of epoch {i})", set.hash()), format!("validator set {}", c.validator_set_hash));
        }
        if c.next_validator_set_hash != Some(change.end.next_validators.hash()) {
            return at(Check::ValidatorSet, format!("a header naming the next set {}", change.end.next_validators.hash()), format!("{:?}", c.next_validator_set_hash));
        }
        check_finalizes(c, &change.end.suffix, &alliance, &change.certificate, &set, c.height)?;
        set = change.end.next_validators.clone();
        below = c.height;
    }
    if header.epoch != epochs.len() as u64 {
        return Err(Failure::at(
            Check::Epoch,
            header.height,
            "epoch changes",
            format!("the {} epoch changes before the block's epoch {}", header.epoch, header.epoch),
            format!("{} epoch changes", epochs.len()),
        ));
    }
    Ok(set)
}

/// The headers from `block`'s child up to the descendant its certificate finalizes (empty
/// when the certificate is the block's own), read from the store, and the suffix views of the
/// last of them (or of the block) when the certificate is of its suffix.
pub(crate) fn descendants_in_store<S: ChainStore + ?Sized>(store: &S, block: &crate::block::FinalizedBlock) -> Result<(Vec<BlockHeader>, Vec<u64>), String> {
    let alliance = store.alliance_id();
    let header = &block.block.header;
    let height = header.height;
    let target = block.certificate.target;
    let mut descendants = Vec::new();
    if target.block == block.suffix_end(&alliance) {
        return Ok((descendants, block.suffix().to_vec()));
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
        let child = store.block(h).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {h} is missing from the store"))?;
        let found = child.suffix_end(&alliance) == target.block;
        let suffix = child.suffix().to_vec();
        descendants.push(child.block.header);
        if found {
            return Ok((descendants, suffix));
        }
    }
}

/// The epoch changes before `header`'s epoch, from the store: for each epoch below it, the
/// last block of that epoch (epochs grow with height, so each is found by bisection), which
/// ends it and carries the next set.
pub fn epoch_changes_in_store<S: ChainStore + ?Sized>(store: &S, header: &BlockHeader) -> Result<Vec<EpochChange>, String> {
    let read = |h: u64| -> Result<crate::block::FinalizedBlock, String> {
        store.block(h).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {h} is missing from the store"))
    };
    let mut changes = Vec::new();
    let mut low = 1;
    for epoch in 0..header.epoch {
        // The highest height in [low, header.height) whose epoch is at most `epoch`.
        let (mut lo, mut hi) = (low, header.height);
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if read(mid)?.block.header.epoch <= epoch {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let block = read(lo)?;
        let Some(end) = block.epoch_end.clone() else {
            return Err(format!("block {lo}, the last of epoch {epoch}, does not end it"));
        };
        if block.block.header.epoch != epoch {
            return Err(format!("no block of epoch {epoch} below height {}", header.height));
        }
        changes.push(EpochChange { header: block.block.header, certificate: block.certificate, end });
        low = lo + 1;
    }
    Ok(changes)
}

/// Follows the descendant headers from `header`: each the child of the one before (next
/// height, parent = the previous id, a later view), all of the same epoch and certified by the
/// same set. Returns the header the certificate (or its suffix) must finalize: the last
/// descendant, or `header` itself.
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
        if previous.ends_epoch() || d.epoch != header.epoch {
            return at(Check::Epoch, format!("epoch {} (the proven block's, which a certificate of it must share)", header.epoch), format!("epoch {}", d.epoch));
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

/// The certificate must finalize `certified` (or the last of its `suffix` blocks: its view,
/// its id) in its epoch, and hold for `set`. `h` is the proven block's height, where a failure
/// is reported.
pub(crate) fn check_finalizes(certified: &BlockHeader, suffix: &[u64], alliance: &Hash, cert: &Certificate, set: &ValidatorSet, h: u64) -> Result<(), Failure> {
    if !suffix.is_empty() && !certified.ends_epoch() {
        return Err(Failure::at(Check::Certificate, h, "suffix views", "none (only an epoch-ending block has suffix blocks)".to_owned(), format!("{} views", suffix.len())));
    }
    if suffix.first().is_some_and(|v| *v <= certified.view) || suffix.windows(2).any(|p| p[0] >= p[1]) {
        return Err(Failure::at(Check::Certificate, h, "suffix views", format!("views increasing from {}", certified.view), format!("{suffix:?}")));
    }
    let id = crate::cert::suffix_target(alliance, certified.epoch, certified.id(), certified.height, suffix);
    let view = suffix.last().copied().unwrap_or(certified.view);
    let t = cert.target;
    if t.kind != VoteKind::Finalize || t.block != id || t.view != view || t.epoch != certified.epoch {
        let expected = if !suffix.is_empty() {
            format!("a finalize certificate of epoch {} for view {view} naming block {id}, the last suffix block above height {}", certified.epoch, certified.height)
        } else if certified.height == h {
            format!("a finalize certificate of epoch {} for view {view} naming block {id} (or the headers up to the descendant it finalizes)", certified.epoch)
        } else {
            format!("a finalize certificate of epoch {} for view {view} naming block {id} at height {}, the last descendant header", certified.epoch, certified.height)
        };
        return Err(Failure::at(Check::Certificate, h, "certificate", expected, format!("a {} certificate of epoch {} for view {} naming {}", t.kind.name(), t.epoch, t.view, t.block)));
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
