//! Blocks (DESIGN §6, docs/FORMAT.md §7).
//!
//! A block is a header and the ordered records it carries. Its id is the blake3 hash of the
//! canonical header, which commits to the records (Merkle root over record ids), to their
//! receipts, to the state after execution and to the validator set; blocks are executed
//! before they are voted on, so these roots are agreed, not assumed.

use crate::cert::{Certificate, ValidatorSet};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::merkle;
use crate::receipt::Receipt;
use crate::record::{Record, RECORD_BYTES_MAX};

/// Records in one block.
pub const RECORDS_PER_BLOCK_MAX: usize = 10_000;
/// An encoded block: the records' bound plus room for the header.
pub const BLOCK_BYTES_MAX: usize = 16 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// 1 for the first block after genesis.
    pub height: u64,
    /// The epoch: how many validator-set changes the chain before this block made effective
    /// (0 from genesis). Equal to its parent's, plus one when the parent ended an epoch.
    pub epoch: u64,
    /// The consensus view in which it was proposed (views start at 1 in every epoch).
    pub view: u64,
    /// The parent block's id; for height 1, the alliance id (the genesis hash).
    pub parent: Hash,
    /// Block time, Unix ms, chosen by the proposer; never earlier than the parent's.
    pub time_ms: u64,
    pub proposer: PublicKey,
    /// Merkle root over the record ids, in block order.
    pub records_root: Hash,
    /// Merkle root over the encoded receipts, in block order.
    pub receipts_root: Hash,
    /// The alliance state root after executing this block.
    pub state_root: Hash,
    /// Hash of the validator set that certifies this block (the set of its epoch).
    pub validator_set_hash: Hash,
    /// Present when a settlement period closed in this block.
    pub statement_hash: Option<Hash>,
    /// Present only on the block that ends its epoch: its execution made a different
    /// validator set effective, and this is that set's hash. The next block is the first of
    /// the next epoch, certified by that set.
    pub next_validator_set_hash: Option<Hash>,
}

impl BlockHeader {
    pub fn id(&self) -> Hash {
        Hash::digest(&self.to_bytes())
    }

    /// Whether this block ends its epoch (a changed validator set takes effect after it).
    pub fn ends_epoch(&self) -> bool {
        self.next_validator_set_hash.is_some()
    }

    /// The epoch of this block's children.
    pub fn child_epoch(&self) -> u64 {
        self.epoch + u64::from(self.ends_epoch())
    }
}

impl Encode for BlockHeader {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.height);
        w.u64(self.epoch);
        w.u64(self.view);
        self.parent.encode(w);
        w.u64(self.time_ms);
        self.proposer.encode(w);
        self.records_root.encode(w);
        self.receipts_root.encode(w);
        self.state_root.encode(w);
        self.validator_set_hash.encode(w);
        w.option(&self.statement_hash);
        w.option(&self.next_validator_set_hash);
    }
}
impl Decode for BlockHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader {
            height: r.u64()?,
            epoch: r.u64()?,
            view: r.u64()?,
            parent: Hash::decode(r)?,
            time_ms: r.u64()?,
            proposer: PublicKey::decode(r)?,
            records_root: Hash::decode(r)?,
            receipts_root: Hash::decode(r)?,
            state_root: Hash::decode(r)?,
            validator_set_hash: Hash::decode(r)?,
            statement_hash: r.option("statement hash")?,
            next_validator_set_hash: r.option("next validator set hash")?,
        };
        if header.height == 0 {
            return Err(DecodeError::invalid("block header", "height starts at 1"));
        }
        Ok(header)
    }
}

/// A header and its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    pub records: Vec<Record>,
}

impl Block {
    pub fn id(&self) -> Hash {
        self.header.id()
    }

    /// The Merkle root the header must carry for these records.
    pub fn compute_records_root(records: &[Record]) -> Hash {
        let leaves: Vec<Hash> = records.iter().map(|r| merkle::leaf_hash(r.id().as_bytes())).collect();
        merkle::root_of_leaf_hashes(&leaves)
    }

    pub fn compute_receipts_root(receipts: &[Receipt]) -> Hash {
        let leaves: Vec<Hash> = receipts.iter().map(|r| merkle::leaf_hash(&r.to_bytes())).collect();
        merkle::root_of_leaf_hashes(&leaves)
    }

    /// Whether the header's records root matches the records carried.
    pub fn records_match_header(&self) -> bool {
        Block::compute_records_root(&self.records) == self.header.records_root
    }
}

impl Encode for Block {
    fn encode(&self, w: &mut Writer) {
        self.header.encode(w);
        w.seq(&self.records);
    }
}
impl Decode for Block {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode(r)?;
        // Each record is at most RECORD_BYTES_MAX; the block's byte bound is checked by the caller.
        let records: Vec<Record> = r.seq("block records", RECORDS_PER_BLOCK_MAX)?;
        let _ = RECORD_BYTES_MAX;
        Ok(Block { header, records })
    }
}

/// A finalized block as stored and exported: the block and its finalization certificate,
/// and, on the block that ends an epoch, what the next epoch needs ([`EpochEnd`]).
///
/// The certificate finalizes this block or a descendant: a later block of the same epoch, or
/// (only on an epoch-ending block) the last of its epoch-suffix blocks, the empty blocks
/// consensus built on it only to finalize it with its own validator set (docs/CONSENSUS.md,
/// "Epochs").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedBlock {
    pub block: Block,
    pub certificate: Certificate,
    /// Present exactly when the header names a next validator set.
    pub epoch_end: Option<EpochEnd>,
}

/// What an epoch-ending block carries besides its header: the next validator set in full
/// (the header commits to its hash), so that certificates can be followed from genesis
/// without re-executing governance, and the views of its suffix blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochEnd {
    pub next_validators: ValidatorSet,
    /// The views of the suffix blocks from the block's child to the one the certificate
    /// finalizes, in order; empty when the certificate is the block's own. The suffix blocks'
    /// ids follow from them ([`crate::cert::suffix_target`]).
    pub suffix: Vec<u64>,
}

impl FinalizedBlock {
    /// A block with its certificate that does not end an epoch.
    pub fn new(block: Block, certificate: Certificate) -> FinalizedBlock {
        FinalizedBlock { block, certificate, epoch_end: None }
    }

    /// The suffix views (empty unless the block ends its epoch and was finalized through them).
    pub fn suffix(&self) -> &[u64] {
        self.epoch_end.as_ref().map_or(&[], |e| e.suffix.as_slice())
    }

    /// The id of the block at the end of the suffix (the block's own id without one).
    pub fn suffix_end(&self, alliance: &Hash) -> Hash {
        let h = &self.block.header;
        crate::cert::suffix_target(alliance, h.epoch, h.id(), h.height, self.suffix())
    }

    /// The view of the block at the end of the suffix (the block's own view without one).
    pub fn suffix_end_view(&self) -> u64 {
        self.suffix().last().copied().unwrap_or(self.block.header.view)
    }
}

impl Encode for EpochEnd {
    fn encode(&self, w: &mut Writer) {
        self.next_validators.encode(w);
        w.seq(&self.suffix);
    }
}

impl EpochEnd {
    /// Decodes and checks it against the header it belongs to: the set's hash is the header's
    /// next-set hash, suffix views increase from the header's view.
    pub fn decode_for(r: &mut Reader<'_>, header: &BlockHeader) -> Result<EpochEnd, DecodeError> {
        let next_validators = ValidatorSet::decode(r)?;
        let suffix: Vec<u64> = r.seq("suffix views", crate::cert::SUFFIX_VIEWS_MAX)?;
        if Some(next_validators.hash()) != header.next_validator_set_hash {
            return Err(DecodeError::invalid("epoch end", "the next validator set is not the one the header names"));
        }
        if suffix.first().is_some_and(|v| *v <= header.view) || suffix.windows(2).any(|p| p[0] >= p[1]) {
            return Err(DecodeError::invalid("epoch end", "suffix views must increase from the block's view"));
        }
        Ok(EpochEnd { next_validators, suffix })
    }
}

impl Encode for FinalizedBlock {
    fn encode(&self, w: &mut Writer) {
        self.block.encode(w);
        self.certificate.encode(w);
        if let Some(end) = &self.epoch_end {
            end.encode(w);
        }
    }
}
impl Decode for FinalizedBlock {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let block = Block::decode(r)?;
        let certificate = Certificate::decode(r)?;
        // Present exactly on epoch-ending blocks, which the header tells.
        let epoch_end = if block.header.ends_epoch() { Some(EpochEnd::decode_for(r, &block.header)?) } else { None };
        Ok(FinalizedBlock { block, certificate, epoch_end })
    }
}
