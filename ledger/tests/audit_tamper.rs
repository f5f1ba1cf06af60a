//! Tampering is caught and located (issue 6, part 2): every kind of change to an exported
//! chain makes verification fail and names the height, the item, and expected versus found.

use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::audit::export::{ExportReader, ExportWriter};
use plaza_ledger::audit::{verify_chain, BlockEntry, Check, Failure, Report, VerifyOptions};
use plaza_ledger::cert::{Certificate, Validator, ValidatorSet, VoteTarget};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::policy::DAY_MS;
use plaza_ledger::record::{Action, Payload, Record, RECORD_BYTES_MAX};
use plaza_ledger::{Hash, Keypair};

/// Five members, four validators (quorum 3); seven blocks; block 6 closes a period whose
/// statement has lines (the card sales' home-merchant shares locked after 7 days).
fn chain() -> (plaza_ledger::genesis::Genesis, Vec<BlockEntry>) {
    let mut b = ChainBuilder::new(5, 4);
    let mut blocks = Vec::new();
    for _ in 0..3 {
        let records = b.sales(12);
        blocks.push(b.push(records).expect("valid block"));
    }
    b.advance(DAY_MS);
    let records = b.sales(5);
    blocks.push(b.push(records).expect("valid block"));
    let records = b.sales(5);
    blocks.push(b.push(records).expect("valid block"));
    b.advance(8 * DAY_MS);
    let records = b.sales(3);
    blocks.push(b.push(records).expect("valid block"));
    let records = b.sales(4);
    blocks.push(b.push(records).expect("valid block"));
    (b.genesis().clone(), blocks)
}

fn export(genesis: &plaza_ledger::genesis::Genesis, blocks: &[BlockEntry]) -> Vec<u8> {
    let mut writer = ExportWriter::new(Vec::new(), genesis, None).expect("in memory");
    for entry in blocks {
        writer.write_block(entry).expect("in memory");
    }
    writer.finish().expect("in memory")
}

fn verify_bytes(bytes: &[u8], threads: usize) -> Report {
    let mut reader = match ExportReader::open(bytes) {
        Ok(r) => r,
        Err(failure) => panic!("export does not open: {failure}"),
    };
    let genesis = reader.genesis().clone();
    let start = reader.take_start();
    let options = VerifyOptions { threads, window_records: 16, window_blocks: 2 };
    verify_chain(&genesis, start, reader, &options, &mut |_| {})
}

/// The failure reading or verifying an export, whichever comes first.
fn failure_in(bytes: &[u8]) -> Failure {
    match ExportReader::open(bytes) {
        Err(f) => f,
        Ok(mut reader) => {
            let genesis = reader.genesis().clone();
            let start = reader.take_start();
            let report = verify_chain(&genesis, start, reader, &VerifyOptions::default(), &mut |_| {});
            report.failure.expect("the damage is caught")
        }
    }
}

/// Exports the (tampered) chain with a valid checksum, as a forger would, and verifies it.
fn failure_of(blocks: &[BlockEntry]) -> Failure {
    let (genesis, _) = chain();
    let report = verify_bytes(&export(&genesis, blocks), 2);
    let failure = report.failure.expect("tampering must be caught");
    // Every failure names what was expected and what was found.
    assert!(!failure.expected.is_empty() && !failure.found.is_empty(), "{failure}");
    failure
}

fn flip_record_byte(record: &Record, at: usize) -> Record {
    let mut bytes = record.to_bytes();
    bytes[at] ^= 0x01;
    Record::from_bytes(&bytes, RECORD_BYTES_MAX).expect("still decodes")
}

#[test]
fn an_honest_chain_verifies_with_any_thread_count() {
    let (genesis, blocks) = chain();
    assert!(blocks.iter().any(|b| b.statement.as_ref().is_some_and(|s| !s.lines.is_empty())), "the chain has a statement with lines");
    let bytes = export(&genesis, &blocks);
    let one = verify_bytes(&bytes, 1);
    assert!(one.is_ok(), "{:?}", one.failure);
    assert_eq!(one.blocks, 7);
    assert_eq!(one.records, blocks.iter().map(|b| b.block.block.records.len() as u64).sum::<u64>());
    assert_eq!(one.tip_id, blocks[6].block.block.id());
    assert_eq!(one.state_root, blocks[6].block.block.header.state_root);
    assert_eq!(one.statements, 2);
    assert_eq!(one.epochs.len(), 1);
    let four = verify_bytes(&bytes, 4);
    assert_eq!(one, four);
}

#[test]
fn a_flipped_byte_in_a_record_is_located() {
    let (_, mut blocks) = chain();
    // The low byte of created_at_ms: the record still decodes and is in its time window.
    let record = &blocks[2].block.block.records[5];
    blocks[2].block.block.records[5] = flip_record_byte(record, 32 + 32 + 7);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::RecordSignature, Some(3)));
    assert!(f.item.starts_with("record 5 "), "{f}");
}

#[test]
fn a_flipped_byte_in_a_signature_is_located() {
    let (_, mut blocks) = chain();
    let record = &blocks[1].block.block.records[3];
    let last = record.to_bytes().len() - 10;
    blocks[1].block.block.records[3] = flip_record_byte(record, last);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::RecordSignature, Some(2)));
    assert!(f.item.starts_with("record 3 "), "{f}");
    assert!(f.expected.contains("valid signature"), "{f}");
}

#[test]
fn a_flipped_receipt_is_located() {
    let (_, mut blocks) = chain();
    blocks[3].receipts[2].code ^= 0x0100;
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::Receipt, Some(4)));
    assert_eq!(f.item, "receipt 2");
    assert!(f.expected.contains("code 0 (accepted)") && f.found.contains("code 256"), "{f}");
}

#[test]
fn a_flipped_state_root_is_located() {
    let (_, mut blocks) = chain();
    let good = blocks[4].block.block.header.state_root;
    blocks[4].block.block.header.state_root.0[9] ^= 0x40;
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::StateRoot, Some(5)));
    assert!(f.expected.contains(&good.to_string()), "{f}");
    assert!(f.found.contains(&blocks[4].block.block.header.state_root.to_string()), "{f}");
}

#[test]
fn a_flipped_statement_line_is_located() {
    let (_, mut blocks) = chain();
    let at = blocks.iter().position(|b| b.statement.as_ref().is_some_and(|s| !s.lines.is_empty())).expect("a statement with lines");
    let statement = blocks[at].statement.as_mut().expect("present");
    statement.lines[0].amount ^= 1;
    let period = statement.period;
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::Statement, Some(at as u64 + 1)));
    assert_eq!(f.item, format!("statement of period {period}, line 0"));
    assert_ne!(f.expected, f.found);
}

#[test]
fn a_flipped_statement_hash_in_the_header_is_located() {
    let (_, mut blocks) = chain();
    let at = blocks.iter().position(|b| b.statement.is_some()).expect("a statement");
    if let Some(h) = blocks[at].block.block.header.statement_hash.as_mut() {
        h.0[0] ^= 1;
    }
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::StatementHash, Some(at as u64 + 1)));
}

#[test]
fn two_swapped_records_are_caught_by_the_records_root() {
    let (_, mut blocks) = chain();
    blocks[1].block.block.records.swap(4, 7);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::RecordsRoot, Some(2)));
    assert!(f.found.contains("reordered"), "{f}");
}

#[test]
fn a_removed_block_is_a_gap() {
    let (_, mut blocks) = chain();
    blocks.remove(3);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::Height, Some(5)));
    assert_eq!(f.expected, "height 4");
    assert!(f.found.contains("missing"), "{f}");
}

#[test]
fn a_changed_parent_link_is_located() {
    let (_, mut blocks) = chain();
    blocks[2].block.block.header.parent = Hash::digest(b"elsewhere");
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::ParentLink, Some(3)));
    assert!(f.expected.contains(&blocks[1].block.block.id().to_string()), "{f}");
}

#[test]
fn a_certificate_with_too_few_signers_fails() {
    let (_, mut blocks) = chain();
    blocks[2].block.certificate.signatures.truncate(2);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::CertificateSigners, Some(3)));
    assert!(f.expected.contains("at least 3 signers of the 4"), "{f}");
    assert_eq!(f.found, "2 signers");
}

#[test]
fn a_certificate_with_a_duplicate_signer_fails() {
    let (_, mut blocks) = chain();
    let cert = &mut blocks[5].block.certificate;
    cert.signatures.truncate(2);
    let again = cert.signatures[1];
    cert.signatures.push(again);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::CertificateSigners, Some(6)));
    assert!(f.found.contains("repeated"), "{f}");
}

#[test]
fn a_certificate_signed_by_a_non_validator_fails() {
    let (genesis, mut blocks) = chain();
    let outsider = Keypair::from_seed(b"outsider");
    let cert = &mut blocks[1].block.certificate;
    let vote = cert.target.sign(&genesis.alliance_id(), &outsider);
    cert.signatures.pop();
    cert.signatures.push((vote.signer, vote.signature));
    cert.signatures.sort_by_key(|s| s.0);
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::CertificateSigners, Some(2)));
    assert!(f.found.contains(&outsider.public().to_hex()) && f.found.contains("not a validator"), "{f}");
}

#[test]
fn a_forged_certificate_signature_fails() {
    let (_, mut blocks) = chain();
    blocks[0].block.certificate.signatures[1].1 .0[5] ^= 0x10;
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::CertificateSignature, Some(1)));
    assert_eq!(f.item, "certificate signature 1");
}

#[test]
fn a_certificate_for_another_block_fails() {
    let (_, mut blocks) = chain();
    blocks[3].block.certificate = blocks[2].block.certificate.clone();
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::Certificate, Some(4)));
}

#[test]
fn a_validator_set_change_without_the_votes_fails() {
    let (genesis, mut blocks) = chain();
    // A forger names a set of its own keys in block 4's header and certifies it with them.
    let forged: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(format!("forger/{i}").as_bytes())).collect();
    let nets: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(format!("forger/net/{i}").as_bytes())).collect();
    let set = ValidatorSet::new(forged.iter().zip(&nets).map(|(k, n)| Validator { key: k.public(), network_key: n.public() }).collect())
        .expect("distinct keys");
    let block = &mut blocks[3].block;
    block.block.header.validator_set_hash = set.hash();
    let target = VoteTarget::finalize(0, block.block.header.view, block.block.id());
    block.certificate = Certificate::from_votes(target, forged.iter().map(|k| target.sign(&genesis.alliance_id(), k)));
    let f = failure_of(&blocks);
    assert_eq!((f.check, f.height), (Check::ValidatorSet, Some(4)));
    assert!(f.expected.contains(&genesis.validators.hash().to_string()), "{f}");
    assert!(f.found.contains(&set.hash().to_string()), "{f}");
}

#[test]
fn governance_changes_are_followed_from_genesis() {
    let mut b = ChainBuilder::new(5, 4);
    let mut blocks = Vec::new();
    let propose = b.record(0, Payload::Propose { action: Action::AddValidator { merchant: b.member(4), network_key: b.network_key(4) } });
    let proposal = propose.id();
    blocks.push(b.push(vec![propose]).expect("valid"));
    let votes = (1..4).map(|i| b.record(i, Payload::Vote { proposal, approve: true })).collect();
    blocks.push(b.push(votes).expect("valid"));
    assert!(blocks[1].receipts.iter().all(|r| r.is_accepted()));
    assert_eq!(b.state().validator_set().len(), 4, "changes wait for the period boundary");
    b.advance(DAY_MS);
    blocks.push(b.push(Vec::new()).expect("valid: closes the period"));
    assert_eq!(b.state().validator_set().len(), 5);
    let records = b.sales(4);
    blocks.push(b.push(records).expect("valid"));
    assert_eq!(blocks[3].block.certificate.signatures.len(), 5);
    let genesis = b.genesis().clone();
    let report = verify_bytes(&export(&genesis, &blocks), 2);
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.epochs.len(), 2);
    assert_eq!((report.epochs[1].from_height, report.epochs[1].validators), (4, 5));

    // The same change without the votes: the old set's header no longer matches.
    let mut unvoted = blocks.clone();
    unvoted.remove(1);
    let report = verify_bytes(&export(&genesis, &unvoted), 2);
    let f = report.failure.expect("caught");
    assert_eq!((f.check, f.height), (Check::Height, Some(3)));
}

#[test]
fn a_truncated_export_is_reported_with_its_offset() {
    let (genesis, blocks) = chain();
    let bytes = export(&genesis, &blocks);
    for cut in [bytes.len() - 1, bytes.len() - 41, bytes.len() / 2, 20] {
        let f = failure_in(&bytes[..cut]);
        assert_eq!(f.check, Check::File, "{f}");
        assert!(f.found.contains("truncated"), "{f}");
        assert!(f.item.contains("export byte"), "{f}");
    }
    assert!(ExportReader::open(&bytes[..10]).is_err());
}

#[test]
fn a_raw_byte_flip_in_the_file_is_caught_by_the_checksum_or_the_decoder() {
    let (genesis, blocks) = chain();
    let bytes = export(&genesis, &blocks);
    for at in [bytes.len() / 3, bytes.len() / 2, bytes.len() - 50] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let integrity = ExportReader::open(bad.as_slice()).and_then(|r| r.check_integrity());
        let f = integrity.expect_err("a flipped byte is caught before any block is trusted");
        assert_eq!(f.check, Check::File, "{f}");
    }
    let mut reader = ExportReader::open(bytes.as_slice()).expect("opens");
    assert!(reader.checkpoint().is_none());
    let _ = reader.take_start();
    assert_eq!(reader.check_integrity(), Ok(7));
}

#[test]
fn garbage_and_trailing_bytes_are_rejected() {
    assert_eq!(ExportReader::open(&b"NOT-AN-EXPORT-FILE"[..]).err().map(|f| f.check), Some(Check::File));
    let (genesis, blocks) = chain();
    let mut bytes = export(&genesis, &blocks);
    bytes.push(0);
    let f = failure_in(&bytes);
    assert!(f.expected.contains("end of the file"), "{f}");
    // An absurd frame length is refused before allocating.
    let mut bytes = export(&genesis, &blocks[..0]);
    let end = bytes.len() - 45;
    bytes.truncate(end);
    bytes.extend_from_slice(&[3, 0xff, 0xff, 0xff, 0xff]);
    let f = failure_in(&bytes);
    assert!(f.found.contains("length"), "{f}");
}
