//! One record, proven (issue 6, part 3), and partial exports from a checkpoint.

use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::audit::export::{ExportReader, ExportWriter};
use plaza_ledger::audit::proof::{Anchor, RecordProof, PROOF_BYTES_MAX};
use plaza_ledger::audit::verify::Checkpoint;
use plaza_ledger::audit::{verify_chain, BlockEntry, Check, VerifyOptions};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::policy::DAY_MS;
use plaza_ledger::record::{Action, Payload};
use plaza_ledger::store::{BlockWrite, ChainStore, MemStore};

fn chain() -> (ChainBuilder, Vec<BlockEntry>) {
    let mut b = ChainBuilder::new(4, 4);
    let mut blocks = Vec::new();
    for n in [7, 1, 13] {
        let records = b.sales(n);
        blocks.push(b.push(records).expect("valid"));
    }
    (b, blocks)
}

#[test]
fn every_record_proves_and_round_trips() {
    let (b, blocks) = chain();
    for entry in &blocks {
        for i in 0..entry.block.block.records.len() {
            let proof = RecordProof::build(b.genesis(), Anchor::Genesis, b.genesis().validators.clone(), entry, i).expect("builds");
            let bytes = proof.to_bytes();
            let decoded = RecordProof::from_bytes(&bytes, PROOF_BYTES_MAX).expect("decodes");
            assert_eq!(decoded, proof);
            let proven = decoded.verify(&[]).expect("verifies");
            assert_eq!(proven.record, entry.block.block.records[i].id());
            assert_eq!(proven.height, entry.block.block.header.height);
            assert_eq!(proven.index, i as u64);
            assert!(proven.receipt.is_accepted());
        }
    }
}

#[test]
fn a_tampered_proof_fails_where_it_was_changed() {
    let (b, blocks) = chain();
    let good = RecordProof::build(b.genesis(), Anchor::Genesis, b.genesis().validators.clone(), &blocks[2], 5).expect("builds");

    let mut p = good.clone();
    p.receipt.code = 52;
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::ReceiptsRoot));

    let mut p = good.clone();
    p.record = blocks[2].block.block.records[6].clone();
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::Receipt));

    let mut p = good.clone();
    p.record_path.path[0].0[0] ^= 1;
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::RecordsRoot));

    let mut p = good.clone();
    p.certified.certificate.signatures.truncate(2);
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::CertificateSigners));

    let mut p = good.clone();
    p.certified.header.time_ms += 1;
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::Certificate));

    let mut bytes = good.to_bytes();
    bytes.truncate(bytes.len() - 3);
    assert!(RecordProof::from_bytes(&bytes, PROOF_BYTES_MAX).is_err());
    assert!(RecordProof::from_bytes(b"garbage", PROOF_BYTES_MAX).is_err());
}

/// After a validator change a proof rests on the genesis alone: it carries the epoch change
/// (the block that ended epoch 0, its certificate by the old set, the new set), and anything
/// wrong in that chain fails. A trusted checkpoint still works as an alternative anchor.
#[test]
fn after_a_validator_change_a_proof_follows_the_set_from_genesis() {
    let mut b = ChainBuilder::new(5, 4);
    let genesis_set = b.genesis().validators.clone();
    let mut blocks = Vec::new();
    let propose = b.record(0, Payload::Propose { action: Action::AddValidator { merchant: b.member(4), network_key: b.network_key(4) } });
    let proposal = propose.id();
    blocks.push(b.push(vec![propose]).expect("valid"));
    let votes = (1..4).map(|i| b.record(i, Payload::Vote { proposal, approve: true })).collect();
    blocks.push(b.push(votes).expect("valid"));
    b.advance(DAY_MS);
    blocks.push(b.push(Vec::new()).expect("valid"));
    assert!(blocks[2].block.block.header.ends_epoch(), "the period close applies the change: epoch 0 ends");
    let view = blocks[2].block.block.header.view;
    // Blocks 2 and 3 are final through two suffix blocks above block 3, signed by the four
    // (CONSENSUS.md, "Epochs").
    b.finalize_through_suffix(&mut blocks[1..3], &[view + 2, view + 3], &genesis_set);
    let new_set = b.state().validator_set().clone();
    assert_eq!(new_set.len(), 5);
    for _ in 0..2 {
        let records = b.sales(3);
        blocks.push(b.push(records).expect("valid"));
    }
    assert_eq!(blocks[4].block.block.header.epoch, 1);
    let store = MemStore::new(b.genesis());
    for entry in &blocks {
        let statement = entry.statement.as_ref().map(|s| (s.period, s.to_bytes()));
        let write = BlockWrite { block: &entry.block, receipts: &entry.receipts, statement: statement.as_ref().map(|(p, bytes)| (*p, bytes.as_slice())), state_snapshot: None };
        store.append(write).expect("append");
    }
    let proof = RecordProof::from_store(&store, &blocks[4].block.block.records[1].id()).expect("builds").expect("found");
    assert_eq!(proof.certified.anchor, Anchor::Genesis);
    assert_eq!(proof.certified.epochs.len(), 1);
    assert_eq!(proof.certified.validators, new_set);
    let proven = proof.verify(&[]).expect("verifies from genesis alone");
    assert_eq!((proven.height, proven.checkpoint), (5, None));
    let again = RecordProof::from_bytes(&proof.to_bytes(), PROOF_BYTES_MAX).expect("decodes");
    assert_eq!(again, proof);
    // A record of block 2: final through the epoch-ending block 3 and its suffix.
    let ending = RecordProof::from_store(&store, &blocks[1].block.block.records[0].id()).expect("builds").expect("found");
    assert!(ending.verify(&[]).expect("verifies").finalized_through.is_some());

    // Without the epoch change the set is not the genesis set's successor.
    let mut p = proof.clone();
    p.certified.epochs.clear();
    assert!(matches!(p.verify(&[]).map_err(|f| f.check), Err(Check::Epoch)));
    // The change's certificate cut below a quorum of the old set.
    let mut p = proof.clone();
    p.certified.epochs[0].certificate.signatures.truncate(2);
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::CertificateSigners));
    // The change's suffix views altered: its certificate names another block.
    let mut p = proof.clone();
    p.certified.epochs[0].end.suffix[1] += 1;
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::Certificate));
    // A different next set than the one the header names.
    let mut p = proof.clone();
    p.certified.epochs[0].end.next_validators = genesis_set.clone();
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::ValidatorSet));
    // The proven block's set is not the one the changes lead to.
    let mut p = proof.clone();
    p.certified.validators = genesis_set;
    assert_eq!(p.verify(&[]).map_err(|f| f.check), Err(Check::ValidatorSet));

    // The other anchor: the first block of the new set, trusted by its id.
    let checkpoint = &blocks[3].block;
    let anchor = Anchor::Checkpoint { header: checkpoint.block.header.clone() };
    let proof = RecordProof::build(b.genesis(), anchor, new_set, &blocks[4], 1).expect("builds");
    assert_eq!(proof.verify(&[]).map_err(|f| f.check), Err(Check::Start), "an untrusted checkpoint is refused");
    let proven = proof.verify(&[checkpoint.block.id()]).expect("verifies");
    assert_eq!(proven.checkpoint, Some((4, checkpoint.block.id())));
}

#[test]
fn a_partial_export_verifies_from_its_checkpoint() {
    let mut b = ChainBuilder::new(4, 4);
    let mut blocks = Vec::new();
    let mut checkpoint = None;
    for h in 1..=6 {
        let records = b.sales(4);
        blocks.push(b.push(records).expect("valid"));
        if h == 3 {
            let last = &blocks[2].block;
            checkpoint = Some(Checkpoint {
                header: last.block.header.clone(),
                certificate: last.certificate.clone(),
                suffix: Vec::new(),
                validators: b.genesis().validators.clone(),
                state: b.state().clone(),
            });
        }
    }
    let checkpoint = checkpoint.expect("taken");
    let mut writer = ExportWriter::new(Vec::new(), b.genesis(), Some(&checkpoint)).expect("memory");
    for entry in &blocks[3..] {
        writer.write_block(entry).expect("memory");
    }
    let bytes = writer.finish().expect("memory");
    let mut reader = ExportReader::open(bytes.as_slice()).expect("opens");
    let genesis = reader.genesis().clone();
    let start = reader.take_start();
    let report = verify_chain(&genesis, start, reader, &VerifyOptions::default(), &mut |_| {});
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.start_height, report.start_block, report.blocks, report.tip_height), (3, blocks[2].block.block.id(), 3, 6));

    // A checkpoint whose state does not match its header is refused.
    let mut bad = checkpoint.clone();
    bad.header.state_root.0[0] ^= 1;
    let mut writer = ExportWriter::new(Vec::new(), b.genesis(), Some(&bad)).expect("memory");
    writer.write_block(&blocks[3]).expect("memory");
    let bytes = writer.finish().expect("memory");
    let mut reader = ExportReader::open(bytes.as_slice()).expect("opens");
    let start = reader.take_start();
    let report = verify_chain(&genesis, start, reader, &VerifyOptions::default(), &mut |_| {});
    assert_eq!(report.failure.map(|f| f.check), Some(Check::Start));
}
