//! Finality through a descendant (docs/FORMAT.md, "Proofs and exports"): consensus finalizes
//! a block by its own finalize certificate or by a later block's, and a node stores the
//! ancestors finalized that way with the descendant's certificate. Such a chain verifies as an
//! export, from a checkpoint, and as record proofs; every way of breaking the link fails with
//! its own error.

use plaza_ledger::audit::chain::{finalize_through, ChainBuilder};
use plaza_ledger::audit::export::{ExportReader, ExportWriter};
use plaza_ledger::audit::proof::{RecordProof, PROOF_BYTES_MAX};
use plaza_ledger::audit::verify::{Checkpoint, Source};
use plaza_ledger::audit::{verify_chain, BlockEntry, Check, Failure, Report, Start, VerifyOptions};
use plaza_ledger::cert::VoteTarget;
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::State;
use plaza_ledger::store::{BlockWrite, ChainStore, MemStore};
use plaza_ledger::Hash;

/// Eight blocks with views that skip (nullified views): blocks 2, 3 and 4 are final through
/// block 5's certificate, block 6 through block 7's; blocks 1, 5, 7 and 8 carry their own.
/// Returns the builder, the blocks and the state after each block (index h−1).
fn chain() -> (ChainBuilder, Vec<BlockEntry>, Vec<State>) {
    let mut b = ChainBuilder::new(4, 4);
    let mut blocks = Vec::new();
    let mut states = Vec::new();
    for h in 1..=8u64 {
        if h % 3 == 0 {
            b.skip_views(2);
        }
        let records = b.sales(3 + h as usize);
        blocks.push(b.push(records).expect("valid block"));
        states.push(b.state().clone());
    }
    finalize_through(&mut blocks[1..5]);
    finalize_through(&mut blocks[5..7]);
    (b, blocks, states)
}

fn export(b: &ChainBuilder, checkpoint: Option<&Checkpoint>, blocks: &[BlockEntry]) -> Vec<u8> {
    let mut writer = ExportWriter::new(Vec::new(), b.genesis(), checkpoint).expect("in memory");
    for entry in blocks {
        writer.write_block(entry).expect("in memory");
    }
    writer.finish().expect("in memory")
}

fn verify(bytes: &[u8], options: &VerifyOptions) -> Report {
    let mut reader = ExportReader::open(bytes).unwrap_or_else(|f| panic!("export does not open: {f}"));
    let genesis = reader.genesis().clone();
    let start = reader.take_start();
    verify_chain(&genesis, start, reader, options, &mut |_| {})
}

fn failure(b: &ChainBuilder, blocks: &[BlockEntry]) -> Failure {
    let report = verify(&export(b, None, blocks), &VerifyOptions::default());
    let f = report.failure.expect("the change is caught");
    assert!(!f.expected.is_empty() && !f.found.is_empty(), "{f}");
    f
}

#[test]
fn a_chain_final_through_descendants_verifies() {
    let (b, blocks, _) = chain();
    assert_ne!(blocks[2].block.certificate.target.block, blocks[2].block.block.id(), "block 3 is final through block 5");
    let bytes = export(&b, None, &blocks);
    // Small windows, so held blocks span windows; any thread count.
    for (threads, window_blocks) in [(1, 1), (2, 2), (3, 4096)] {
        let report = verify(&bytes, &VerifyOptions { threads, window_records: 8, window_blocks });
        assert!(report.is_ok(), "{threads} threads: {:?}", report.failure);
        assert_eq!((report.blocks, report.tip_height, report.tip_id), (8, 8, blocks[7].block.block.id()));
    }
}

#[test]
fn an_export_cut_before_the_descendant_fails() {
    let (b, blocks, _) = chain();
    let f = failure(&b, &blocks[..4]);
    assert_eq!((f.check, f.height), (Check::Certificate, Some(2)), "{f}");
    assert!(f.found.contains("ends at height 4"), "{f}");
    assert!(f.expected.contains(&blocks[4].block.block.id().to_string()), "{f}");
    // Cut right after the descendant: fine.
    assert!(verify(&export(&b, None, &blocks[..5]), &VerifyOptions::default()).is_ok());
}

#[test]
fn an_altered_descendant_header_fails_at_the_held_block() {
    let (b, mut blocks, _) = chain();
    blocks[4].block.block.header.proposer = b.member(3);
    let f = failure(&b, &blocks);
    assert_eq!((f.check, f.height), (Check::Certificate, Some(2)), "{f}");
    assert!(f.found.contains("not in this chain, or its header was altered"), "{f}");
}

#[test]
fn a_certificate_naming_a_block_not_in_the_export_fails() {
    let (b, mut blocks, _) = chain();
    let set = b.genesis().validators.clone();
    // A genuine-looking certificate for a block that is not in the chain, at block 5's view:
    // caught when block 5 comes with another id.
    let view5 = blocks[4].block.block.header.view;
    blocks[2].block.certificate = b.certify(&set, VoteTarget::finalize(0, view5, Hash::digest(b"elsewhere")));
    let f = failure(&b, &blocks);
    assert_eq!((f.check, f.height), (Check::Certificate, Some(3)), "{f}");
    assert!(f.found.contains("not in this chain"), "{f}");
    // At a view beyond the chain: caught at its end.
    let (_, mut blocks, _) = chain();
    blocks[2].block.certificate = b.certify(&set, VoteTarget::finalize(0, 1_000, Hash::digest(b"elsewhere")));
    let f = failure(&b, &blocks);
    assert_eq!((f.check, f.height), (Check::Certificate, Some(3)), "{f}");
    assert!(f.found.contains("ends at height 8"), "{f}");
}

#[test]
fn a_descendant_certificate_must_hold_for_its_view_and_set() {
    let (b, blocks, _) = chain();
    let set = b.genesis().validators.clone();
    let five = &blocks[4].block.block;
    // The right block at the wrong view.
    let mut bad = blocks.clone();
    bad[3].block.certificate = b.certify(&set, VoteTarget::finalize(0, five.header.view + 1, five.id()));
    let f = failure(&b, &bad);
    assert_eq!((f.check, f.height), (Check::Certificate, Some(4)), "{f}");
    // Too few signers.
    let mut bad = blocks.clone();
    bad[2].block.certificate.signatures.truncate(2);
    assert_eq!({ let f = failure(&b, &bad); (f.check, f.height) }, (Check::CertificateSigners, Some(3)));
    // A forged signature.
    let mut bad = blocks.clone();
    bad[1].block.certificate.signatures[0].1 = bad[1].block.certificate.signatures[1].1;
    assert_eq!({ let f = failure(&b, &bad); (f.check, f.height) }, (Check::CertificateSignature, Some(2)));
    // A certificate of an ancestor (an earlier view) is no finalization of this block.
    let mut bad = blocks.clone();
    bad[3].block.certificate = blocks[0].block.certificate.clone();
    assert_eq!({ let f = failure(&b, &bad); (f.check, f.height) }, (Check::Certificate, Some(4)));
}

#[test]
fn a_partial_export_from_a_checkpoint_final_through_a_descendant_verifies() {
    let (b, blocks, states) = chain();
    // The checkpoint is block 3, final through block 5, which the export carries.
    let checkpoint = Checkpoint {
        header: blocks[2].block.block.header.clone(),
        certificate: blocks[2].block.certificate.clone(),
        suffix: Vec::new(),
        validators: b.genesis().validators.clone(),
        state: states[2].clone(),
    };
    let report = verify(&export(&b, Some(&checkpoint), &blocks[3..6]), &VerifyOptions::default());
    // Block 6 is final through block 7, which this export lacks.
    let f = report.failure.expect("block 6 is not proven final");
    assert_eq!((f.check, f.height), (Check::Certificate, Some(6)), "{f}");
    let report = verify(&export(&b, Some(&checkpoint), &blocks[3..7]), &VerifyOptions::default());
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.start_height, report.tip_height), (3, 7));
    // Without block 5, the checkpoint itself is not shown final.
    let report = verify(&export(&b, Some(&checkpoint), &blocks[3..4]), &VerifyOptions::default());
    let f = report.failure.expect("the checkpoint is not proven final");
    assert_eq!((f.check, f.height), (Check::Certificate, Some(3)), "{f}");
    // A checkpoint whose certificate names a descendant not in the export.
    let mut wrong = checkpoint.clone();
    wrong.certificate = b.certify(&b.genesis().validators, VoteTarget::finalize(0, 1_000, Hash::digest(b"elsewhere")));
    let report = verify(&export(&b, Some(&wrong), &blocks[3..7]), &VerifyOptions::default());
    assert_eq!(report.failure.map(|f| (f.check, f.height)), Some((Check::Certificate, Some(3))));
    // Verified directly from the checkpoint as a start, too.
    let report = verify_chain(b.genesis(), Start::Checkpoint(Box::new(checkpoint)), blocks[3..8].iter().cloned().map(|e| Ok(Source::from(e))), &VerifyOptions::default(), &mut |_| {});
    assert!(report.is_ok(), "{:?}", report.failure);
}

fn store(b: &ChainBuilder, blocks: &[BlockEntry]) -> MemStore {
    let store = MemStore::new(b.genesis());
    for entry in blocks {
        let statement = entry.statement.as_ref().map(|s| (s.period, s.to_bytes()));
        store
            .append(BlockWrite {
                block: &entry.block,
                receipts: &entry.receipts,
                statement: statement.as_ref().map(|(p, bytes)| (*p, bytes.as_slice())),
                state_snapshot: None,
            })
            .expect("append");
    }
    store
}

#[test]
fn every_record_of_a_chain_final_through_descendants_proves() {
    let (b, blocks, _) = chain();
    let store = store(&b, &blocks);
    for entry in &blocks {
        let h = entry.block.block.header.height;
        for record in &entry.block.block.records {
            let proof = RecordProof::from_store(&store, &record.id()).expect("builds").expect("the record is in the chain");
            let expected_descendants = match h {
                2..=4 => 5 - h,
                6 => 1,
                _ => 0,
            };
            assert_eq!(proof.certified.descendants.len() as u64, expected_descendants, "block {h}");
            let decoded = RecordProof::from_bytes(&proof.to_bytes(), PROOF_BYTES_MAX).expect("decodes");
            assert_eq!(decoded, proof);
            let proven = decoded.verify(&[]).expect("verifies");
            assert_eq!((proven.height, proven.record), (h, record.id()));
            let through = match h {
                2..=4 => Some((5, blocks[4].block.block.id())),
                6 => Some((7, blocks[6].block.block.id())),
                _ => None,
            };
            assert_eq!(proven.finalized_through, through, "block {h}");
        }
    }
    assert_eq!(RecordProof::from_store(&store, &Hash::digest(b"no such record")).expect("reads"), None);
}

#[test]
fn a_tampered_descendant_path_fails_where_it_was_changed() {
    let (b, blocks, _) = chain();
    let store = store(&b, &blocks);
    let good = RecordProof::from_store(&store, &blocks[1].block.block.records[2].id()).expect("builds").expect("found");
    assert_eq!(good.certified.descendants.len(), 3);
    good.verify(&[]).expect("the untouched proof verifies");

    let mut p = good.clone();
    p.certified.descendants[1].parent.0[0] ^= 1;
    let f = p.verify(&[]).expect_err("a broken parent link");
    assert_eq!((f.check, f.height), (Check::ParentLink, Some(4)), "{f}");

    // The last header altered: the certificate no longer names it.
    let mut p = good.clone();
    p.certified.descendants[2].time_ms += 1;
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::Certificate));

    // A header dropped from the middle: heights no longer run on.
    let mut p = good.clone();
    p.certified.descendants.remove(1);
    assert_eq!(p.verify(&[]).map_err(|f| (f.check, f.height)), Err((Check::Height, Some(5))));

    // No headers at all: the certificate names another block.
    let mut p = good.clone();
    p.certified.descendants.clear();
    let f = p.verify(&[]).expect_err("the certificate is a descendant's");
    assert_eq!(f.check, Check::Certificate);
    assert!(f.expected.contains("headers up to the descendant"), "{f}");

    // A descendant certified by another set.
    let mut p = good.clone();
    p.certified.descendants[0].validator_set_hash = Hash::digest(b"another set");
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::ValidatorSet));

    // An older proof version is refused with a specific error.
    let mut bytes = good.to_bytes();
    bytes[12..14].copy_from_slice(&2u16.to_be_bytes());
    let e = RecordProof::from_bytes(&bytes, PROOF_BYTES_MAX).expect_err("version 2");
    assert!(e.to_string().contains("version 2, this plaza reads version 4"), "{e}");
}

#[test]
fn a_store_whose_certificate_names_a_missing_block_cannot_prove() {
    let (b, blocks, _) = chain();
    // Only blocks 1..=4: blocks 2..=4 name block 5, which this store lacks.
    let store = store(&b, &blocks[..4]);
    let e = RecordProof::from_store(&store, &blocks[2].block.block.records[0].id()).expect_err("no descendant");
    assert!(e.contains("not found within"), "{e}");
}
