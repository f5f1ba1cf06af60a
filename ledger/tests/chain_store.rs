//! The store trait's contract, checked on the in-memory store and (feature `store`) on
//! RocksDB by one generic test: appends only extend the tip, a refused or failed write
//! changes nothing, the consensus log reads back in key order and prunes by range.

mod common_samples;

use common_samples::*;
use plaza_ledger::block::{Block, BlockHeader, FinalizedBlock};
use plaza_ledger::cert::{Certificate, VoteTarget};
use plaza_ledger::receipt::Receipt;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::store::{BlockWrite, ChainStore, MemStore, StoreError};
use plaza_ledger::Hash;

fn block_at(height: u64, parent: Hash) -> (FinalizedBlock, Vec<Receipt>) {
    let kp = key("hotpot");
    let records: Vec<Record> = (0..2u8)
        .map(|i| {
            let mut card = [0u8; 16];
            card[..8].copy_from_slice(&height.to_be_bytes());
            card[15] = i;
            let body = RecordBody { alliance: alliance(), signer: kp.public(), created_at_ms: T0 + height, payload: Payload::IssueCard { card: CardId(card) } };
            Record::sign(body, &kp)
        })
        .collect();
    let receipts: Vec<Receipt> = records.iter().map(|r| Receipt::accepted(r.id())).collect();
    let header = BlockHeader {
        height,
        epoch: 0,
        view: height,
        parent,
        time_ms: T0 + height * 1000,
        proposer: kp.public(),
        records_root: Block::compute_records_root(&records),
        receipts_root: Block::compute_receipts_root(&receipts),
        state_root: Hash::digest(&height.to_be_bytes()),
        validator_set_hash: genesis().validators.hash(),
        statement_hash: None,
        next_validator_set_hash: None,
    };
    let block = Block { header, records };
    let target = VoteTarget::finalize(0, height, block.id());
    let certificate = Certificate::from_votes(target, [target.sign(&alliance(), &kp)]);
    (FinalizedBlock { block, certificate, epoch_end: None }, receipts)
}

fn check_contract<S: ChainStore>(store: &S) {
    assert_eq!(store.tip_height().expect("tip"), 0);
    assert_eq!(store.tip_id().expect("tip id"), alliance());
    let (one, receipts) = block_at(1, alliance());
    // A block on the wrong parent, or with receipts for other records, changes nothing.
    let (stray, stray_receipts) = block_at(1, Hash::digest(b"elsewhere"));
    let refused = store.append(BlockWrite { block: &stray, receipts: &stray_receipts, statement: None, state_snapshot: None });
    assert!(matches!(refused, Err(StoreError::BadAppend { height: 1, .. })), "{refused:?}");
    let (_, other_receipts) = block_at(2, alliance());
    let refused = store.append(BlockWrite { block: &one, receipts: &other_receipts, statement: None, state_snapshot: None });
    assert!(matches!(refused, Err(StoreError::BadAppend { height: 1, .. })), "{refused:?}");
    assert_eq!(store.tip_height().expect("tip"), 0);
    assert!(store.record_location(&one.block.records[0].id()).expect("read").is_none());

    store.append(BlockWrite { block: &one, receipts: &receipts, statement: None, state_snapshot: Some(b"snap") }).expect("append");
    assert_eq!(store.tip_height().expect("tip"), 1);
    assert_eq!(store.tip_id().expect("tip id"), one.block.id());
    assert_eq!(store.block(1).expect("read"), Some(one.clone()));
    assert_eq!(store.block(2).expect("read"), None);
    assert_eq!(store.record_location(&one.block.records[1].id()).expect("read").map(|l| (l.height, l.index)), Some((1, 1)));
    assert_eq!(store.state_snapshot().expect("read"), Some((1, b"snap".to_vec())));
    // A snapshot on its own (a stopping node's) is taken at the tip, or refused and nothing changes.
    let refused = store.put_state_snapshot(2, b"ahead");
    assert!(matches!(refused, Err(StoreError::SnapshotNotAtTip { height: 2, tip: 1 })), "{refused:?}");
    assert_eq!(store.state_snapshot().expect("read"), Some((1, b"snap".to_vec())));
    store.put_state_snapshot(1, b"at the tip").expect("snapshot");
    let mut read = None;
    assert!(store.read_state_snapshot(&mut |h, bytes| read = Some((h, bytes.to_vec()))).expect("read"));
    assert_eq!(read, Some((1, b"at the tip".to_vec())));
    // The same height twice is refused.
    assert!(store.append(BlockWrite { block: &one, receipts: &receipts, statement: None, state_snapshot: None }).is_err());

    let entry = |view: u64, tag: u8| ([view.to_be_bytes().as_slice(), &[tag]].concat(), vec![tag; 3]);
    store.put_vote_log(&[entry(5, 1), entry(3, 0)]).expect("log");
    store.put_vote_log(&[entry(4, 2)]).expect("log");
    let log = store.vote_log().expect("read");
    assert_eq!(log, vec![entry(3, 0), entry(4, 2), entry(5, 1)], "key order");
    store.delete_vote_log_below(&entry(5, 0).0).expect("prune");
    assert_eq!(store.vote_log().expect("read"), vec![entry(5, 1)]);
}

#[test]
fn the_memory_store_keeps_the_contract() {
    check_contract(&MemStore::new(&genesis()));
}

#[cfg(feature = "store")]
#[test]
fn the_rocksdb_store_keeps_the_same_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = plaza_ledger::store::Store::create(&dir.path().join("data"), &genesis()).expect("create");
    check_contract(&store);
}

/// A write the disk refuses leaves the store as it was: what a crash at that instant keeps.
#[test]
fn a_failed_write_in_the_memory_store_changes_nothing() {
    let store = MemStore::new(&genesis());
    store.fail_after(1);
    let (one, receipts) = block_at(1, alliance());
    store.append(BlockWrite { block: &one, receipts: &receipts, statement: None, state_snapshot: None }).expect("the one write allowed");
    let (two, receipts) = block_at(2, one.block.id());
    assert!(store.append(BlockWrite { block: &two, receipts: &receipts, statement: None, state_snapshot: None }).is_err());
    assert!(store.put_vote_log(&[(vec![1], vec![2])]).is_err());
    assert_eq!(store.tip_height().expect("tip"), 1);
    assert!(store.record_location(&two.block.records[0].id()).expect("read").is_none());
    assert!(store.vote_log().expect("read").is_empty());
}
