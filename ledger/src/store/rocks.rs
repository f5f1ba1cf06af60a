//! The RocksDB store (DESIGN §8, docs/FORMAT.md §8): the node's [`ChainStore`].
//!
//! Column families: `meta` (format marker, genesis, tip), `blocks` (height → finalized block),
//! `block_ids` (block id → height), `records` (record id → height ‖ index ‖ receipt code: where
//! the record is and what execution made of it; its receipt is the id and that code), `state`
//! (the latest state snapshot), `statements` (period → bytes), `votes` (the consensus vote log,
//! opaque here).
//!
//! Every finalized block is written in one atomic, synced write batch together with its
//! records' index entries, the tip and optionally a statement and a state snapshot, so a
//! process killed at any instant reopens at a block boundary. Values are decoded and checked
//! on read; RocksDB's block checksums and paranoid checks are on.

use std::path::{Path, PathBuf};

use rocksdb::{BlockBasedOptions, ColumnFamilyDescriptor, DBCompressionType, Options, WriteBatch, WriteOptions, DB};
use super::{BlockWrite, ChainStore, RecordLocation, StoreError};

use crate::block::{FinalizedBlock, BLOCK_BYTES_MAX};
use crate::codec::{Decode, Encode};
use crate::genesis::{Genesis, GENESIS_BYTES_MAX};
use crate::hash::Hash;
use crate::receipt::Receipt;

/// Written once at creation; a directory without it is not a Plaza store.
pub const FORMAT_MARKER: &[u8] = b"plaza-store-v3";
/// Version 2 held state snapshots whose trees had RFC 9162's inner node (two compressions);
/// version 3's state root uses the keyed one (docs/FORMAT.md, "Table trees").
const FORMAT_V2_MARKER: &[u8] = b"plaza-store-v2";
/// Version 1 kept each receipt in a column family of its own, keyed by the record id again.
const FORMAT_V1_RECEIPTS: &str = "receipts";
/// The largest state snapshot the store will read back.
pub const STATE_SNAPSHOT_BYTES_MAX: usize = 4 * 1024 * 1024 * 1024;

const CF_META: &str = "meta";
const CF_BLOCKS: &str = "blocks";
const CF_BLOCK_IDS: &str = "block_ids";
const CF_RECORDS: &str = "records";
const CF_STATE: &str = "state";
const CF_STATEMENTS: &str = "statements";
const CF_VOTES: &str = "votes";
const COLUMN_FAMILIES: [&str; 7] = [CF_META, CF_BLOCKS, CF_BLOCK_IDS, CF_RECORDS, CF_STATE, CF_STATEMENTS, CF_VOTES];

/// A `records` entry: u64 height ‖ u32 index ‖ u16 receipt code, big-endian.
const RECORD_ENTRY_BYTES: usize = 14;

fn record_entry(height: u64, index: u32, code: u16) -> [u8; RECORD_ENTRY_BYTES] {
    let mut entry = [0u8; RECORD_ENTRY_BYTES];
    entry[..8].copy_from_slice(&height.to_be_bytes());
    entry[8..12].copy_from_slice(&index.to_be_bytes());
    entry[12..].copy_from_slice(&code.to_be_bytes());
    entry
}

fn parse_record_entry(bytes: &[u8]) -> Result<(RecordLocation, u16), StoreError> {
    let entry: &[u8; RECORD_ENTRY_BYTES] = bytes.try_into().map_err(|_| StoreError::Corrupt("record index entry".into()))?;
    let height = u64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
    let index = u32::from_be_bytes(entry[8..12].try_into().expect("4 bytes"));
    let code = u16::from_be_bytes(entry[12..].try_into().expect("2 bytes"));
    Ok((RecordLocation { height, index }, code))
}

const KEY_FORMAT: &[u8] = b"format";
const KEY_GENESIS: &[u8] = b"genesis";
const KEY_TIP: &[u8] = b"tip";
const KEY_SNAPSHOT: &[u8] = b"snapshot";

impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> Self {
        let text = e.into_string();
        if text.contains("Corruption") {
            StoreError::Corrupt(text)
        } else {
            StoreError::Db(text)
        }
    }
}

pub struct Store {
    db: DB,
    path: PathBuf,
    genesis: Genesis,
    alliance: Hash,
    /// A reader's own directory (RocksDB's secondary instance keeps its logs there), removed
    /// when the store is dropped; after `db`, so the database is closed first.
    _reader_dir: Option<ReaderDir>,
    /// The height and id of the last block this instance appended: the next append's parent
    /// check reads the tip's id from here instead of decoding the whole tip block again.
    appended: std::sync::Mutex<Option<(u64, Hash)>>,
}

/// How a store is opened.
enum Access {
    /// The node's own: read and write, holding RocksDB's lock.
    Primary,
    /// A reader beside a running node: a secondary instance, no lock, writes refused.
    Reader(ReaderDir),
}

/// A reader's directory, removed on drop.
struct ReaderDir(PathBuf);

impl Drop for ReaderDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Readers opened by this process, for distinct directory names.
static READERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn db_options(create: bool) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(create);
    opts.create_missing_column_families(create);
    opts.set_paranoid_checks(true);
    opts.set_max_open_files(256);
    opts.set_keep_log_file_num(4);
    opts
}

fn descriptors() -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|name| {
            // The blocks and the state snapshot, the two largest families, with zstd at its
            // fastest level: each value (a block, the snapshot) is compressed whole, to 0.85x
            // and 0.77x of LZ4's bytes on a bench chain (22.1 and 28.2 MB against 25.9 and
            // 36.8 MB), for a little more CPU when a snapshot is flushed and read back. Only
            // zstd on every level gets there: the blocks' keys only grow, so their files
            // reach the last level by moves that never compress again. The rest with LZ4:
            // the record index is mostly hashes, the others small.
            let mut opts = Options::default();
            if *name == CF_BLOCKS || *name == CF_STATE {
                opts.set_compression_type(DBCompressionType::Zstd);
                // window bits (unused by zstd), level 1, strategy, no dictionary
                opts.set_compression_options(-14, 1, 0, 0);
            } else {
                opts.set_compression_type(DBCompressionType::Lz4);
            }
            if *name == CF_RECORDS {
                // Most lookups here miss: every record a node is offered is looked up before
                // admission, and a new one is in no table. Bloom filters over whole keys, in
                // the memtable and in each table file, answer a miss without searching the
                // memtable's skip list or reading a file's index (the skip list search was
                // 6 % of a loaded node's CPU). Filters only skip work: the answers, and the
                // files' format, are unchanged.
                let mut table = BlockBasedOptions::default();
                table.set_bloom_filter(10.0, false);
                table.set_whole_key_filtering(true);
                opts.set_block_based_table_factory(&table);
                opts.set_memtable_prefix_bloom_ratio(0.05);
                opts.set_memtable_whole_key_filtering(true);
            }
            ColumnFamilyDescriptor::new(*name, opts)
        })
        .collect()
}

/// The `state` family's `snapshot` value: u64 height ‖ the state's encoding.
fn snapshot_value(height: u64, snapshot: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(8 + snapshot.len());
    value.extend_from_slice(&height.to_be_bytes());
    value.extend_from_slice(snapshot);
    value
}

fn synced() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

impl Store {
    /// Creates a new store for `genesis` in `path`, which must not hold one already.
    pub fn create(path: &Path, genesis: &Genesis) -> Result<Store, StoreError> {
        if path.join("CURRENT").exists() {
            return Err(StoreError::AlreadyExists { path: path.to_owned() });
        }
        std::fs::create_dir_all(path).map_err(|e| StoreError::Db(format!("cannot create {}: {e}", path.display())))?;
        let db = DB::open_cf_descriptors(&db_options(true), path, descriptors())?;
        let mut batch = WriteBatch::default();
        let meta = db.cf_handle(CF_META).expect("created above");
        batch.put_cf(meta, KEY_FORMAT, FORMAT_MARKER);
        batch.put_cf(meta, KEY_GENESIS, genesis.to_bytes());
        batch.put_cf(meta, KEY_TIP, 0u64.to_be_bytes());
        db.write_opt(batch, &synced())?;
        drop(db);
        Store::open(path)
    }

    /// Opens an existing store, checking that it is one and that it is consistent.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, Access::Primary)
    }

    /// Opens an existing store for reading only, also while its node runs: a RocksDB
    /// secondary instance, which takes no lock and reads the store as it was when opened
    /// (every finalized block written by then, each block's batch whole; nothing the node
    /// writes afterwards). Writing through it fails. The auditor's tools use it.
    pub fn open_reader(path: &Path) -> Result<Store, StoreError> {
        let n = READERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("plaza-store-reader-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Db(format!("cannot create the reader's directory {}: {e}", dir.display())))?;
        Store::open_with(path, Access::Reader(ReaderDir(dir)))
    }

    fn open_with(path: &Path, access: Access) -> Result<Store, StoreError> {
        let not_a_store = |reason: String| StoreError::NotAStore { path: path.to_owned(), reason };
        if !path.is_dir() {
            return Err(not_a_store("no such directory".into()));
        }
        if !path.join("CURRENT").exists() {
            return Err(not_a_store("no database in it; run `plaza init` first".into()));
        }
        let existing = DB::list_cf(&Options::default(), path).map_err(|e| not_a_store(e.into_string()))?;
        // A store of an earlier format, named with what changed since.
        let earlier = |marker: &str, change: &str| {
            not_a_store(format!(
                "it is in format {marker}, written by an earlier Plaza; {change} ({}): move it aside, run `plaza init` \
                 again and the node syncs the chain from the alliance",
                String::from_utf8_lossy(FORMAT_MARKER)
            ))
        };
        if existing.iter().any(|e| e == FORMAT_V1_RECEIPTS) {
            return Err(earlier("plaza-store-v1", "this version keeps receipts in the record index"));
        }
        for cf in COLUMN_FAMILIES {
            if !existing.iter().any(|e| e == cf) {
                return Err(not_a_store(format!("column family {cf:?} is missing")));
            }
        }
        let (db, reader_dir) = match access {
            Access::Primary => (DB::open_cf_descriptors(&db_options(false), path, descriptors())?, None),
            Access::Reader(dir) => {
                let mut opts = db_options(false);
                // A secondary keeps every file open, so the node's compactions cannot pull
                // one away from under it.
                opts.set_max_open_files(-1);
                let db = DB::open_cf_descriptors_as_secondary(&opts, path, dir.0.as_path(), descriptors())?;
                db.try_catch_up_with_primary()?;
                (db, Some(dir))
            }
        };
        let meta = db.cf_handle(CF_META).expect("opened with every column family");
        match db.get_cf(meta, KEY_FORMAT)? {
            Some(marker) if marker == FORMAT_MARKER => {}
            Some(marker) if marker == FORMAT_V2_MARKER => {
                return Err(earlier("plaza-store-v2", "this version's state roots hash the state trees' nodes differently"));
            }
            Some(other) => return Err(not_a_store(format!("unknown format {:?}", String::from_utf8_lossy(&other)))),
            None => return Err(not_a_store("no format marker".into())),
        }
        let genesis_bytes = db.get_cf(meta, KEY_GENESIS)?.ok_or_else(|| StoreError::Corrupt("genesis missing".into()))?;
        let genesis = Genesis::from_bytes(&genesis_bytes, GENESIS_BYTES_MAX)
            .map_err(|e| StoreError::Corrupt(format!("stored genesis does not decode: {e}")))?;
        let alliance = genesis.alliance_id();
        let store = Store { db, path: path.to_owned(), genesis, alliance, _reader_dir: reader_dir, appended: std::sync::Mutex::new(None) };
        store.check_tip()?;
        Ok(store)
    }

    /// Opens the store and insists it belongs to `alliance`.
    pub fn open_for(path: &Path, alliance: &Hash) -> Result<Store, StoreError> {
        let store = Store::open(path)?;
        if store.alliance != *alliance {
            return Err(StoreError::ForeignAlliance { path: path.to_owned(), expected: *alliance, found: store.alliance });
        }
        Ok(store)
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("every column family is opened")
    }

    /// The tip block must exist and nothing may lie beyond it.
    fn check_tip(&self) -> Result<(), StoreError> {
        let tip = self.tip_height()?;
        if tip > 0 {
            let block = self.block(tip)?.ok_or_else(|| StoreError::Corrupt(format!("tip block {tip} is missing")))?;
            if block.block.header.height != tip {
                return Err(StoreError::Corrupt(format!("block stored at {tip} says height {}", block.block.header.height)));
            }
        }
        if self.db.get_cf(self.cf(CF_BLOCKS), (tip + 1).to_be_bytes())?.is_some() {
            return Err(StoreError::Corrupt(format!("a block lies beyond the tip {tip}")));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A consistent copy of the whole store in `dir` (which must not exist), taken while the
    /// store is in use: a RocksDB checkpoint (hard links to the immutable files where `dir`
    /// is on the same file system). The primary instance only; `plaza backup` uses it.
    pub fn checkpoint(&self, dir: &Path) -> Result<(), StoreError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    pub fn alliance_id(&self) -> Hash {
        self.alliance
    }

    /// Height of the last finalized block; 0 before the first.
    pub fn tip_height(&self) -> Result<u64, StoreError> {
        let bytes = self.db.get_cf(self.cf(CF_META), KEY_TIP)?.ok_or_else(|| StoreError::Corrupt("tip missing".into()))?;
        let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt("tip is not 8 bytes".into()))?;
        Ok(u64::from_be_bytes(array))
    }

    /// The id the next block's parent must be: the tip's id, or the alliance id.
    pub fn tip_id(&self) -> Result<Hash, StoreError> {
        let tip = self.tip_height()?;
        if tip == 0 {
            return Ok(self.alliance);
        }
        if let Some((height, id)) = *self.appended.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
            && height == tip
        {
            return Ok(id);
        }
        let block = self.block(tip)?.ok_or_else(|| StoreError::Corrupt(format!("tip block {tip} is missing")))?;
        Ok(block.block.id())
    }

    /// Appends the next finalized block and everything derived from it, atomically.
    pub fn append(&self, write: BlockWrite<'_>) -> Result<(), StoreError> {
        let height = write.block.block.header.height;
        write.check(self.tip_height()?, &self.tip_id()?)?;
        let mut batch = WriteBatch::default();
        let id = write.block.block.id();
        batch.put_cf(self.cf(CF_BLOCKS), height.to_be_bytes(), write.block.to_bytes());
        batch.put_cf(self.cf(CF_BLOCK_IDS), id.as_bytes(), height.to_be_bytes());
        for (index, (record, receipt)) in write.block.block.records.iter().zip(write.receipts).enumerate() {
            // `BlockWrite::check` has matched each receipt to its record's id.
            batch.put_cf(self.cf(CF_RECORDS), record.id().as_bytes(), record_entry(height, index as u32, receipt.code));
        }
        if let Some((period, bytes)) = write.statement {
            batch.put_cf(self.cf(CF_STATEMENTS), period.to_be_bytes(), bytes);
        }
        if let Some(snapshot) = write.state_snapshot {
            batch.put_cf(self.cf(CF_STATE), KEY_SNAPSHOT, snapshot_value(height, snapshot));
        }
        batch.put_cf(self.cf(CF_META), KEY_TIP, height.to_be_bytes());
        self.db.write_opt(batch, &synced())?;
        *self.appended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((height, id));
        Ok(())
    }

    pub fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_BLOCKS), height.to_be_bytes())? else {
            return Ok(None);
        };
        let block = FinalizedBlock::from_bytes(&bytes, BLOCK_BYTES_MAX + 64 * 1024)
            .map_err(|e| StoreError::Corrupt(format!("block {height} does not decode: {e}")))?;
        if block.block.header.height != height {
            return Err(StoreError::Corrupt(format!("block stored at {height} says height {}", block.block.header.height)));
        }
        Ok(Some(block))
    }

    pub fn height_of_block(&self, id: &Hash) -> Result<Option<u64>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_BLOCK_IDS), id.as_bytes())? else {
            return Ok(None);
        };
        let array: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StoreError::Corrupt("block index entry".into()))?;
        Ok(Some(u64::from_be_bytes(array)))
    }

    pub fn record_location(&self, id: &Hash) -> Result<Option<RecordLocation>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_RECORDS), id.as_bytes())? else {
            return Ok(None);
        };
        Ok(Some(parse_record_entry(&bytes)?.0))
    }

    /// The receipt of a finalized record: its id and the code its index entry holds.
    pub fn receipt(&self, record: &Hash) -> Result<Option<Receipt>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_RECORDS), record.as_bytes())? else {
            return Ok(None);
        };
        let (_, code) = parse_record_entry(&bytes)?;
        Ok(Some(Receipt { record: *record, code }))
    }

    /// The receipts of one block, in record order (one batched lookup of the record index).
    pub fn receipts_of(&self, block: &FinalizedBlock) -> Result<Vec<Receipt>, StoreError> {
        let height = block.block.header.height;
        let ids: Vec<Hash> = block.block.records.iter().map(|r| r.id()).collect();
        let entries = self.db.batched_multi_get_cf(self.cf(CF_RECORDS), ids.iter().map(|id| id.as_bytes()), false);
        ids.iter()
            .zip(entries)
            .enumerate()
            .map(|(index, (id, entry))| {
                let entry = entry?.ok_or_else(|| StoreError::Corrupt(format!("record {id} of block {height} is not in the record index")))?;
                let (location, code) = parse_record_entry(&entry)?;
                if location != (RecordLocation { height, index: index as u32 }) {
                    return Err(StoreError::Corrupt(format!("record {id} of block {height} is indexed at {}:{}", location.height, location.index)));
                }
                Ok(Receipt { record: *id, code })
            })
            .collect()
    }

    pub fn statement(&self, period: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_STATEMENTS), period.to_be_bytes())?)
    }

    /// Every stored statement, by period.
    pub fn statements(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_STATEMENTS), rocksdb::IteratorMode::Start) {
            let (key, value) = item?;
            let period = u64::from_be_bytes(key.as_ref().try_into().map_err(|_| StoreError::Corrupt("statement key".into()))?);
            out.push((period, value.to_vec()));
        }
        Ok(out)
    }

    /// The latest state snapshot: the height it was taken after, and its bytes.
    pub fn state_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let mut out = None;
        self.read_state_snapshot(&mut |height, bytes| out = Some((height, bytes.to_vec())))?;
        Ok(out)
    }

    /// The latest state snapshot, read in place (RocksDB's pinned buffer, no copy).
    pub fn read_state_snapshot(&self, read: &mut dyn FnMut(u64, &[u8])) -> Result<bool, StoreError> {
        let Some(value) = self.db.get_pinned_cf(self.cf(CF_STATE), KEY_SNAPSHOT)? else {
            return Ok(false);
        };
        if value.len() < 8 || value.len() > STATE_SNAPSHOT_BYTES_MAX {
            return Err(StoreError::Corrupt("state snapshot size".into()));
        }
        read(u64::from_be_bytes(value[..8].try_into().expect("8 bytes")), &value[8..]);
        Ok(true)
    }

    /// Replaces the state snapshot with one taken after the tip (`height`), in one synced write.
    pub fn put_state_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        super::check_snapshot_height(height, self.tip_height()?)?;
        self.db.put_cf_opt(self.cf(CF_STATE), KEY_SNAPSHOT, snapshot_value(height, snapshot), &synced())?;
        Ok(())
    }

    /// A periodic snapshot after the tip (`height`), written without the write-ahead log, its
    /// table file written out in the background. It is only a shortcut for the next start:
    /// lost in a crash before that file is synced, the start takes the snapshot before it and
    /// re-executes more blocks. Logged and synced with its block, a snapshot (the whole state,
    /// 100 MB at a few hundred thousand records) made that block's commit wait while it was
    /// written and synced (about 0.3 s on the 2-core machine), and filled the log that the
    /// next start replays.
    pub fn put_periodic_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        super::check_snapshot_height(height, self.tip_height()?)?;
        let mut unlogged = WriteOptions::default();
        unlogged.disable_wal(true);
        self.db.put_cf_opt(self.cf(CF_STATE), KEY_SNAPSHOT, snapshot_value(height, snapshot), &unlogged)?;
        let mut background = rocksdb::FlushOptions::default();
        background.set_wait(false);
        self.db.flush_cf_opt(self.cf(CF_STATE), &background)?;
        Ok(())
    }

    /// Writes entries of the consensus vote log in one synced atomic batch, before the vote
    /// they end with is sent.
    pub fn put_vote_log(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (key, value) in entries {
            batch.put_cf(self.cf(CF_VOTES), key, value);
        }
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    pub fn delete_vote_log_below(&self, key: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(CF_VOTES), &[][..], key);
        self.db.write_opt(batch, &synced())?;
        Ok(())
    }

    /// The whole vote log, in key order.
    pub fn vote_log(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_VOTES), rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Writes every column family's memory table out to table files. A node calls it when it
    /// stops: the next open then has no write-ahead log to replay (a state snapshot makes that
    /// log hundreds of megabytes, seconds of replay and re-compression at start).
    pub fn flush(&self) -> Result<(), StoreError> {
        let families: Vec<&rocksdb::ColumnFamily> = COLUMN_FAMILIES.iter().map(|name| self.cf(name)).collect();
        self.db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default())?;
        Ok(())
    }

    /// Compacts every column family fully (old versions of overwritten keys, such as earlier
    /// state snapshots, are dropped), for `plaza bench`'s bytes-on-disk figure.
    pub fn compact(&self) {
        // Files are rewritten even where moving them down a level would do: a moved file
        // keeps the versions it holds (an earlier snapshot beside the latest).
        let mut options = rocksdb::CompactOptions::default();
        options.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for name in COLUMN_FAMILIES {
            self.db.compact_range_cf_opt(self.cf(name), None::<&[u8]>, None::<&[u8]>, &options);
        }
    }

    /// Each column family's table files, in bytes (RocksDB's `total-sst-files-size`; what is
    /// still only in the write-ahead log is not counted), for `plaza bench`.
    pub fn family_bytes(&self) -> Vec<(&'static str, u64)> {
        COLUMN_FAMILIES
            .iter()
            .map(|name| (*name, self.db.property_int_value_cf(self.cf(name), "rocksdb.total-sst-files-size").ok().flatten().unwrap_or(0)))
            .collect()
    }

    /// Bytes the store takes on disk (SST and log files), for `plaza bench`.
    pub fn disk_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(p) else { return 0 };
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.path)
    }
}

impl ChainStore for Store {
    fn genesis(&self) -> &Genesis {
        Store::genesis(self)
    }
    fn alliance_id(&self) -> Hash {
        Store::alliance_id(self)
    }
    fn tip_height(&self) -> Result<u64, StoreError> {
        Store::tip_height(self)
    }
    fn tip_id(&self) -> Result<Hash, StoreError> {
        Store::tip_id(self)
    }
    fn append(&self, write: BlockWrite<'_>) -> Result<(), StoreError> {
        Store::append(self, write)
    }
    fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError> {
        Store::block(self, height)
    }
    fn record_location(&self, id: &Hash) -> Result<Option<RecordLocation>, StoreError> {
        Store::record_location(self, id)
    }
    fn block_receipts(&self, block: &FinalizedBlock) -> Result<Vec<Receipt>, StoreError> {
        Store::receipts_of(self, block)
    }
    fn state_snapshot(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Store::state_snapshot(self)
    }
    fn read_state_snapshot(&self, read: &mut dyn FnMut(u64, &[u8])) -> Result<bool, StoreError> {
        Store::read_state_snapshot(self, read)
    }
    fn put_state_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        Store::put_state_snapshot(self, height, snapshot)
    }
    fn put_periodic_snapshot(&self, height: u64, snapshot: &[u8]) -> Result<(), StoreError> {
        Store::put_periodic_snapshot(self, height, snapshot)
    }
    fn put_vote_log(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        Store::put_vote_log(self, entries)
    }
    fn delete_vote_log_below(&self, key: &[u8]) -> Result<(), StoreError> {
        Store::delete_vote_log_below(self, key)
    }
    fn vote_log(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        Store::vote_log(self)
    }
}
