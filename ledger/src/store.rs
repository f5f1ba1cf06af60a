//! Where a node keeps its finalized chain and consensus log (DESIGN §8, docs/FORMAT.md §8).
//!
//! [`ChainStore`] is what the node's chain and replica need from storage. Two stores
//! implement it: the RocksDB [`Store`] (feature `store`), and [`MemStore`], in memory, for the
//! simulator and in-process tests. Both write each call as one atomic, synced batch, so a
//! process (or a simulated node) that crashes at any instant keeps exactly the calls that
//! returned and nothing of the rest: a finalized block with its records' index, receipts, the
//! tip and optionally a statement and a state snapshot, or one batch of consensus-log entries.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

use thiserror::Error;

use crate::block::FinalizedBlock;
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::receipt::Receipt;

#[cfg(feature = "store")]
mod rocks;
#[cfg(feature = "store")]
pub use rocks::{Store, FORMAT_MARKER, STATE_SNAPSHOT_BYTES_MAX};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: not a Plaza data directory ({reason})")]
    NotAStore { path: PathBuf, reason: String },
    #[error("{path}: already holds a Plaza store")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: the store belongs to alliance {found}, expected {expected}")]
    ForeignAlliance { path: PathBuf, expected: Hash, found: Hash },
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot append block {height}: {reason}")]
    BadAppend { height: u64, reason: String },
    #[error("a state snapshot at height {height} was refused: only the state after the tip, {tip}, can be stored")]
    SnapshotNotAtTip { height: u64, tip: u64 },
    #[error("storage error: {0}")]
    Db(String),
}

/// Where a record sits in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLocation {
    pub height: u64,
    pub index: u32,
}

/// What else is written in the same batch as a finalized block.
pub struct BlockWrite<'a> {
    pub block: &'a FinalizedBlock,
    pub receipts: &'a [Receipt],
    /// A settlement statement closed by this block: (period number, canonical bytes).
    pub statement: Option<(u64, &'a [u8])>,
    /// A snapshot of the state after this block, in the contract's canonical encoding.
    pub state_snapshot: Option<&'a [u8]>,
}

impl BlockWrite<'_> {
    /// The checks every store makes before appending: the next height, on the tip, one
    /// receipt per record and for that record.
    pub fn check(&self, tip_height: u64, tip_id: &Hash) -> Result<(), StoreError> {
        let header = &self.block.block.header;
        let bad = |reason: String| StoreError::BadAppend { height: header.height, reason };
        if header.height != tip_height + 1 {
            return Err(bad(format!("the tip is {tip_height}")));
        }
        if header.parent != *tip_id {
            return Err(bad("its parent is not the tip".into()));
        }
        if self.receipts.len() != self.block.block.records.len() {
            return Err(bad("one receipt per record is needed".into()));
        }
        for (index, (record, receipt)) in self.block.block.records.iter().zip(self.receipts).enumerate() {
            if receipt.record != record.id() {
                return Err(bad(format!("receipt {index} is for another record")));
            }
        }
        Ok(())
    }
}

/// A snapshot can only be put for the state after the tip.
fn check_snapshot_height(height: u64, tip: u64) -> Result<(), StoreError> {
    if height != tip {
        return Err(StoreError::SnapshotNotAtTip { height, tip });
    }
    Ok(())
}

/// What the chain and the replica read and write. Every write is one atomic, synced batch.
pub trait ChainStore {
    fn genesis(&self) -> &Genesis;
    fn alliance_id(&self) -> Hash;
    /// Height of the last finalized block; 0 before the first.
    fn tip_height(&self) -> Result<u64, StoreError>;
    /// Appends the next finalized block and everything derived from it, atomically.
    fn append(&self, write: BlockWrite<'_>) -> Result<(), StoreError>;
    fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError>;
    fn record_location(&self, id: &Hash) -> Result<Option<RecordLocation>, StoreError>;
    /// The receipts of a stored block, in record order.
    fn block_receipts(&self, block: &FinalizedBlock) -> Result<Vec<Receipt>, StoreError>;
    /// The latest state snapshot: the height it was taken after, and its bytes.
    fn state_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Hands the latest state snapshot's height and bytes to `read`, from the store's own
    /// buffer where it can (a snapshot is some 200 MB at a million records: each copy of it is
    /// fresh memory the kernel zeroes first). False when there is none.
    fn read_state_snapshot(&self, read: &mut dyn FnMut(u64, &[u8])) -> Result<bool, StoreError> {
        match self.state_snapshot()? {
            Some((height, bytes)) => {
                read(height, &bytes);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    /// Replaces the state snapshot with one taken after the tip, `height` (a node stopping
    /// writes one, so its restart re-executes no block), in one synced write.
    fn put_state_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError>;
    /// Replaces the state snapshot with a periodic one taken after the tip, `height`, which a
    /// crash soon after may lose (the next start then re-executes from the one before): the
    /// block it follows is already stored, and it need not hold up the next one.
    fn put_periodic_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        self.put_state_snapshot(height, snapshot)
    }
    /// Writes entries of the consensus log in one synced atomic batch.
    fn put_vote_log(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError>;
    /// Deletes the consensus-log entries with keys below `key`.
    fn delete_vote_log_below(&self, key: &[u8]) -> Result<(), StoreError>;
    /// The whole consensus log, in key order.
    fn vote_log(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError>;

    /// The id the next block's parent must be: the tip's id, or the alliance id.
    fn tip_id(&self) -> Result<Hash, StoreError> {
        let tip = self.tip_height()?;
        if tip == 0 {
            return Ok(self.alliance_id());
        }
        let block = self.block(tip)?.ok_or_else(|| StoreError::Corrupt(format!("tip block {tip} is missing")))?;
        Ok(block.block.id())
    }
}

#[derive(Default)]
struct MemInner {
    blocks: Vec<FinalizedBlock>,
    records: BTreeMap<Hash, RecordLocation>,
    receipts: BTreeMap<Hash, Receipt>,
    statements: BTreeMap<u64, Vec<u8>>,
    snapshot: Option<(u64, Vec<u8>)>,
    votes: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A store in memory with a disk's crash semantics: what a call wrote is kept whole (it is
/// "synced" when the call returns), so dropping a node's volatile state and reopening its
/// chain on the same `MemStore` is a crash at that instant. The simulator and in-process
/// tests use it; it never touches a file.
pub struct MemStore {
    genesis: Genesis,
    alliance: Hash,
    inner: Mutex<MemInner>,
    /// A write that fails on purpose (tests of the failure paths): the number of writes
    /// still allowed, `u64::MAX` for no limit.
    writes_left: Mutex<u64>,
}

impl MemStore {
    pub fn new(genesis: &Genesis) -> MemStore {
        MemStore {
            genesis: genesis.clone(),
            alliance: genesis.alliance_id(),
            inner: Mutex::new(MemInner::default()),
            writes_left: Mutex::new(u64::MAX),
        }
    }

    fn inner(&self) -> MutexGuard<'_, MemInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After `writes` more successful writes, every write fails (a full or broken disk).
    pub fn fail_after(&self, writes: u64) {
        *self.writes_left.lock().unwrap_or_else(PoisonError::into_inner) = writes;
    }

    fn take_write(&self) -> Result<(), StoreError> {
        let mut left = self.writes_left.lock().unwrap_or_else(PoisonError::into_inner);
        if *left == 0 {
            return Err(StoreError::Db("the disk refuses writes (test)".into()));
        }
        if *left != u64::MAX {
            *left -= 1;
        }
        Ok(())
    }

    /// The receipt of a finalized record.
    pub fn receipt(&self, record: &Hash) -> Option<Receipt> {
        self.inner().receipts.get(record).copied()
    }

    /// Every stored statement, by period.
    pub fn statements(&self) -> Vec<(u64, Vec<u8>)> {
        self.inner().statements.iter().map(|(p, b)| (*p, b.clone())).collect()
    }
}

impl ChainStore for MemStore {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    fn alliance_id(&self) -> Hash {
        self.alliance
    }
    fn tip_height(&self) -> Result<u64, StoreError> {
        Ok(self.inner().blocks.len() as u64)
    }
    fn tip_id(&self) -> Result<Hash, StoreError> {
        Ok(self.inner().blocks.last().map_or(self.alliance, |b| b.block.id()))
    }
    fn append(&self, write: BlockWrite<'_>) -> Result<(), StoreError> {
        let tip_id = self.tip_id()?;
        let mut inner = self.inner();
        write.check(inner.blocks.len() as u64, &tip_id)?;
        drop(inner);
        self.take_write()?;
        inner = self.inner();
        let height = write.block.block.header.height;
        for (index, (record, receipt)) in write.block.block.records.iter().zip(write.receipts).enumerate() {
            inner.records.insert(record.id(), RecordLocation { height, index: index as u32 });
            inner.receipts.insert(record.id(), *receipt);
        }
        if let Some((period, bytes)) = write.statement {
            inner.statements.insert(period, bytes.to_vec());
        }
        if let Some(snapshot) = write.state_snapshot {
            inner.snapshot = Some((height, snapshot.to_vec()));
        }
        inner.blocks.push(write.block.clone());
        Ok(())
    }
    fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError> {
        if height == 0 {
            return Ok(None);
        }
        Ok(self.inner().blocks.get(height as usize - 1).cloned())
    }
    fn record_location(&self, id: &Hash) -> Result<Option<RecordLocation>, StoreError> {
        Ok(self.inner().records.get(id).copied())
    }
    fn block_receipts(&self, block: &FinalizedBlock) -> Result<Vec<Receipt>, StoreError> {
        let inner = self.inner();
        block
            .block
            .records
            .iter()
            .map(|r| inner.receipts.get(&r.id()).copied().ok_or_else(|| StoreError::Corrupt(format!("receipt of record {} missing", r.id()))))
            .collect()
    }
    fn state_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self.inner().snapshot.clone())
    }
    fn put_state_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        check_snapshot_height(height, self.tip_height()?)?;
        self.take_write()?;
        self.inner().snapshot = Some((height, snapshot.to_vec()));
        Ok(())
    }
    fn put_vote_log(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        self.take_write()?;
        let mut inner = self.inner();
        for (key, value) in entries {
            inner.votes.insert(key.clone(), value.clone());
        }
        Ok(())
    }
    fn delete_vote_log_below(&self, key: &[u8]) -> Result<(), StoreError> {
        self.take_write()?;
        let mut inner = self.inner();
        inner.votes = inner.votes.split_off(key);
        Ok(())
    }
    fn vote_log(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        Ok(self.inner().votes.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}
