//! Blocks (DESIGN §6, docs/FORMAT.md §7).
//!
//! A block is a header and the ordered records it carries. Its id is the blake3 hash of the
//! canonical header, which commits to the records (Merkle root over record ids), to their
//! receipts, to the state after execution and to the validator set; blocks are executed
//! before they are voted on, so these roots are agreed, not assumed.

use crate::cert::Certificate;
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
    /// The consensus view in which it was proposed.
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
    /// Hash of the validator set that certifies this block.
    pub validator_set_hash: Hash,
    /// Present when a settlement period closed in this block.
    pub statement_hash: Option<Hash>,
}

impl BlockHeader {
    pub fn id(&self) -> Hash {
        Hash::digest(&self.to_bytes())
    }
}

impl Encode for BlockHeader {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.height);
        w.u64(self.view);
        self.parent.encode(w);
        w.u64(self.time_ms);
        self.proposer.encode(w);
        self.records_root.encode(w);
        self.receipts_root.encode(w);
        self.state_root.encode(w);
        self.validator_set_hash.encode(w);
        w.option(&self.statement_hash);
    }
}
impl Decode for BlockHeader {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader {
            height: r.u64()?,
            view: r.u64()?,
            parent: Hash::decode(r)?,
            time_ms: r.u64()?,
            proposer: PublicKey::decode(r)?,
            records_root: Hash::decode(r)?,
            receipts_root: Hash::decode(r)?,
            state_root: Hash::decode(r)?,
            validator_set_hash: Hash::decode(r)?,
            statement_hash: r.option("statement hash")?,
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

/// A finalized block as stored and exported: the block and its finalization certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinalizedBlock {
    pub block: Block,
    pub certificate: Certificate,
}

impl Encode for FinalizedBlock {
    fn encode(&self, w: &mut Writer) {
        self.block.encode(w);
        self.certificate.encode(w);
    }
}
impl Decode for FinalizedBlock {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(FinalizedBlock { block: Block::decode(r)?, certificate: Certificate::decode(r)? })
    }
}
