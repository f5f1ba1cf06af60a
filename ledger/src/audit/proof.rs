//! One record, proven (DESIGN §6): a self-contained proof that a record is in a final block,
//! with its receipt, checkable offline from this file and docs/FORMAT.md alone.
//!
//! ```text
//! RecordProof = "PLAZA-PROOF\0" ‖ version: u16 (= 1) ‖ Genesis ‖ Anchor ‖ ValidatorSet
//!               ‖ BlockHeader ‖ Certificate ‖ Record ‖ Receipt
//!               ‖ InclusionProof (record id in records_root) ‖ InclusionProof (receipt in receipts_root)
//! Anchor      = 0x01                                  the set is the genesis set
//!             | 0x02 ‖ BlockHeader ‖ Certificate      a checkpoint block certified by the same set
//! ```
//!
//! Why the validator set is to be believed: either it is the genesis set (the alliance id is
//! the hash of the genesis carried in the proof), or it certified a checkpoint block that the
//! auditor trusts by its id (from their own `plaza verify` report, which lists the first
//! block of every validator set). Headers commit to the set that certifies them, not to the
//! next one, so a set change can only be followed by re-execution; the checkpoint is where a
//! full verification hands over to the proof.

use crate::audit::{BlockEntry, Check, Failure};
use crate::block::BlockHeader;
use crate::cert::{Certificate, ValidatorSet, VoteKind};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::{self, InclusionProof};
use crate::receipt::Receipt;
use crate::record::{Record, RECORD_BYTES_MAX};

pub const MAGIC: &[u8; 12] = b"PLAZA-PROOF\0";
/// 2: the genesis is length-prefixed (a genesis may end with its promoters, docs/FORMAT.md).
pub const VERSION: u16 = 2;
/// A proof file: genesis (≤ 1 MiB), two headers, two certificates, a record and paths.
pub const PROOF_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Why the validator set that certified the block is the right one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Anchor {
    /// The set is the genesis set.
    Genesis,
    /// A block the auditor trusts by id, certified by the same set.
    Checkpoint { header: BlockHeader, certificate: Certificate },
}

impl Encode for Anchor {
    fn encode(&self, w: &mut Writer) {
        match self {
            Anchor::Genesis => w.u8(1),
            Anchor::Checkpoint { header, certificate } => {
                w.u8(2);
                header.encode(w);
                certificate.encode(w);
            }
        }
    }
}
impl Decode for Anchor {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Anchor::Genesis),
            2 => Ok(Anchor::Checkpoint { header: BlockHeader::decode(r)?, certificate: Certificate::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "proof anchor", tag }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordProof {
    pub genesis: Genesis,
    pub anchor: Anchor,
    /// The set that certified the block.
    pub validators: ValidatorSet,
    pub header: BlockHeader,
    pub certificate: Certificate,
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
}

impl RecordProof {
    /// Builds the proof of record `index` of `entry`, whose block `validators` certified.
    pub fn build(genesis: &Genesis, anchor: Anchor, validators: ValidatorSet, entry: &BlockEntry, index: usize) -> Result<RecordProof, String> {
        let block = &entry.block.block;
        let record = block.records.get(index).ok_or_else(|| format!("block {} has no record {index}", block.header.height))?.clone();
        let receipt = *entry.receipts.get(index).ok_or_else(|| format!("block {} has no receipt {index}", block.header.height))?;
        let record_leaves: Vec<Hash> = block.records.iter().map(|r| merkle::leaf_hash(r.id().as_bytes())).collect();
        let receipt_leaves: Vec<Hash> = entry.receipts.iter().map(|r| merkle::leaf_hash(&r.to_bytes())).collect();
        let record_path = merkle::prove(&record_leaves, index).ok_or("record index out of range")?;
        let receipt_path = merkle::prove(&receipt_leaves, index).ok_or("receipt index out of range")?;
        Ok(RecordProof {
            genesis: genesis.clone(),
            anchor,
            validators,
            header: block.header.clone(),
            certificate: entry.block.certificate.clone(),
            record,
            receipt,
            record_path,
            receipt_path,
        })
    }

    /// Checks the proof offline. `trusted` are block ids the auditor trusts as checkpoints;
    /// a proof anchored at a checkpoint not among them fails.
    pub fn verify(&self, trusted: &[Hash]) -> Result<ProvenRecord, Failure> {
        let h = self.header.height;
        let fail = |check: Check, item: &str, expected: String, found: String| Err(Failure::at(check, h, item.to_owned(), expected, found));
        let alliance = self.genesis.alliance_id();
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
        if !self.record_path.verify(&merkle::leaf_hash(id.as_bytes()), &self.header.records_root) {
            return fail(Check::RecordsRoot, "record path", format!("a path from record {id} to the records root {}", self.header.records_root), "a path that does not lead there".into());
        }
        if !self.receipt_path.verify(&merkle::leaf_hash(&self.receipt.to_bytes()), &self.header.receipts_root) {
            return fail(
                Check::ReceiptsRoot,
                "receipt path",
                format!("a path from the receipt to the receipts root {}", self.header.receipts_root),
                "a path that does not lead there".into(),
            );
        }
        if self.validators.hash() != self.header.validator_set_hash {
            return fail(Check::ValidatorSet, "validator set", format!("{} (in the header)", self.header.validator_set_hash), format!("{} (carried)", self.validators.hash()));
        }
        let block = self.header.id();
        check_finalizes(h, &alliance, &self.header, &self.certificate, &self.validators)?;
        let checkpoint = match &self.anchor {
            Anchor::Genesis => {
                if self.validators != self.genesis.validators {
                    return fail(Check::ValidatorSet, "anchor", format!("the genesis validator set {}", self.genesis.validators.hash()), format!("set {}", self.validators.hash()));
                }
                None
            }
            Anchor::Checkpoint { header, certificate } => {
                let cid = header.id();
                if !trusted.contains(&cid) {
                    return fail(
                        Check::Start,
                        "anchor",
                        "a checkpoint block you trust (pass its id with --trust)".into(),
                        format!("checkpoint block {cid} at height {}, not trusted", header.height),
                    );
                }
                if header.validator_set_hash != self.header.validator_set_hash || header.height > h {
                    return fail(
                        Check::ValidatorSet,
                        "anchor",
                        format!("a checkpoint at or below height {h} certified by set {}", self.header.validator_set_hash),
                        format!("height {} certified by set {}", header.height, header.validator_set_hash),
                    );
                }
                check_finalizes(header.height, &alliance, header, certificate, &self.validators)?;
                Some((header.height, cid))
            }
        };
        Ok(ProvenRecord { alliance, height: h, block, index: self.record_path.index, record: id, receipt: self.receipt, checkpoint })
    }
}

fn check_finalizes(h: u64, alliance: &Hash, header: &BlockHeader, cert: &Certificate, set: &ValidatorSet) -> Result<(), Failure> {
    let id = header.id();
    let t = cert.target;
    if t.kind != VoteKind::Finalize || t.block != id || t.view != header.view {
        return Err(Failure::at(
            Check::Certificate,
            h,
            "certificate",
            format!("a finalize certificate for view {} naming block {id}", header.view),
            format!("a {} certificate for view {} naming {}", t.kind.name(), t.view, t.block),
        ));
    }
    cert.verify(alliance, set).map_err(|e| Failure::at(Check::CertificateSigners, h, "certificate", format!("a quorum of the {} validators' valid signatures", set.len()), e.to_string()))
}

impl Encode for RecordProof {
    fn encode(&self, w: &mut Writer) {
        w.raw(MAGIC);
        w.u16(VERSION);
        w.sized(|w| self.genesis.encode(w));
        self.anchor.encode(w);
        self.validators.encode(w);
        self.header.encode(w);
        self.certificate.encode(w);
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
            return Err(DecodeError::invalid("proof", format!("version {version}, this plaza reads version {VERSION}")));
        }
        let genesis_len = r.len("genesis", crate::genesis::GENESIS_BYTES_MAX)?;
        let genesis = Genesis::from_bytes(r.take(genesis_len)?, crate::genesis::GENESIS_BYTES_MAX)?;
        let anchor = Anchor::decode(r)?;
        let validators = ValidatorSet::decode(r)?;
        let header = BlockHeader::decode(r)?;
        let certificate = Certificate::decode(r)?;
        let start = r.offset();
        let record = Record::decode(r)?;
        if r.offset() - start > RECORD_BYTES_MAX {
            return Err(DecodeError::invalid("proof", "the record exceeds the record size limit"));
        }
        Ok(RecordProof {
            genesis,
            anchor,
            validators,
            header,
            certificate,
            record,
            receipt: Receipt::decode(r)?,
            record_path: InclusionProof::decode(r)?,
            receipt_path: InclusionProof::decode(r)?,
        })
    }
}
