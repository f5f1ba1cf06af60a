//! The whole-state root (issue 12, item 4): a checkpoint snapshot is authenticated by the
//! header that certifies it, and any state item has an inclusion proof against it.

use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::audit::export::{ExportReader, ExportWriter};
use plaza_ledger::audit::proof::Anchor;
use plaza_ledger::audit::state_proof::{parse_state_key, StateProof, PROOF_BYTES_MAX};
use plaza_ledger::audit::verify::Checkpoint;
use plaza_ledger::audit::{verify_chain, BlockEntry, Check, VerifyOptions};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::State;
use plaza_ledger::policy::DAY_MS;
use plaza_ledger::record::Party;
use plaza_ledger::store::{BlockWrite, ChainStore, MemStore};

fn chain() -> (ChainBuilder, Vec<BlockEntry>) {
    let mut b = ChainBuilder::new(4, 4);
    let mut blocks = Vec::new();
    for h in 1..=6 {
        if h == 4 {
            // A period closes: statement summaries and locked balances reach the state.
            b.advance(DAY_MS);
        }
        let records = b.sales(12);
        blocks.push(b.push(records).expect("valid"));
    }
    (b, blocks)
}

fn export_from(b: &ChainBuilder, checkpoint: &Checkpoint, blocks: &[BlockEntry]) -> Vec<u8> {
    let mut writer = ExportWriter::new(Vec::new(), b.genesis(), Some(checkpoint)).expect("memory");
    for entry in blocks {
        writer.write_block(entry).expect("memory");
    }
    writer.finish().expect("memory")
}

fn verify(bytes: &[u8]) -> Option<(Check, String)> {
    let mut reader = ExportReader::open(bytes).expect("opens");
    let genesis = reader.genesis().clone();
    let start = reader.take_start();
    verify_chain(&genesis, start, reader, &VerifyOptions::default(), &mut |_| {}).failure.map(|f| (f.check, f.to_string()))
}

#[test]
fn a_tampered_checkpoint_snapshot_is_rejected() {
    let (b, blocks) = chain();
    // The state after block 3, as a partial export's checkpoint carries it.
    let mut replay = State::from_genesis(b.genesis());
    for e in &blocks[..3] {
        replay.apply_block(e.block.block.header.time_ms, &e.block.block.records).expect("valid");
    }
    let last = &blocks[2].block;
    let checkpoint = Checkpoint {
        header: last.block.header.clone(),
        certificate: last.certificate.clone(),
        suffix: Vec::new(),
        validators: b.genesis().validators.clone(),
        state: replay.clone(),
    };
    assert_eq!(verify(&export_from(&b, &checkpoint, &blocks[3..])), None, "the genuine checkpoint verifies");

    // One merchant's district altered in the snapshot bytes: still a well-formed snapshot.
    let snapshot = replay.to_bytes();
    let district = b"riverside";
    let at = snapshot.windows(district.len()).position(|w| w == district).expect("the snapshot names the district");
    let mut tampered = snapshot.clone();
    tampered[at..at + district.len()].copy_from_slice(b"lakesidex");
    let state = State::decode_snapshot(&tampered).expect("a tampered snapshot still decodes");
    assert_ne!(state.state_root(), last.block.header.state_root, "the root covers the district");
    let bad = Checkpoint { state, ..checkpoint };
    let (check, message) = verify(&export_from(&b, &bad, &blocks[3..])).expect("a tampered snapshot fails");
    assert_eq!(check, Check::Start, "{message}");
    assert!(message.contains("state root"), "{message}");
}

/// The chain in a store, and the state after its tip.
fn stored() -> (ChainBuilder, MemStore) {
    let (b, blocks) = chain();
    let store = MemStore::new(b.genesis());
    for e in &blocks {
        store.append(BlockWrite { block: &e.block, receipts: &e.receipts, statement: None, state_snapshot: None }).expect("append");
    }
    (b, store)
}

fn keys(b: &ChainBuilder) -> Vec<String> {
    // The builder's order 0 is paid with card 0 (its first 8 bytes are the order number).
    let card = "00".repeat(16);
    vec![
        format!("merchant:{}", b.member(2).to_hex()),
        format!("card:{card}"),
        format!("balance:merchant:{}", b.member(1).to_hex()),
        format!("sale:{}/order-13", b.member(13 % 4).to_hex()),
        "statement:0".into(),
        format!("balances/{}", hex::encode(Party::Merchant(b.member(0)).to_bytes())),
    ]
}

#[test]
fn state_items_prove_offline_and_round_trip() {
    let (b, store) = stored();
    let state = b.state();
    for text in keys(&b) {
        let (table, key) = parse_state_key(&text).expect("parses");
        let proof = StateProof::build(&store, state, table, &key).expect("builds").unwrap_or_else(|| panic!("{text} is in the state"));
        assert_eq!(proof.certified.anchor, Anchor::Genesis);
        assert_eq!(proof.certified.header.height, store.tip_height().expect("tip"));
        let bytes = proof.to_bytes();
        let decoded = StateProof::from_bytes(&bytes, PROOF_BYTES_MAX).expect("decodes");
        assert_eq!(decoded, proof);
        let proven = decoded.verify(&[]).expect("verifies");
        assert_eq!((proven.table, proven.key.clone()), (table, key.clone()), "{text}");
        assert!(!proven.value_text.is_empty());
    }
    // An absent key is no proof; a key of the wrong type is an error.
    let (table, key) = parse_state_key("statement:99").expect("parses");
    assert_eq!(StateProof::build(&store, state, table, &key).expect("builds"), None);
    assert!(StateProof::build(&store, state, 3, b"short").is_err());
    assert!(parse_state_key("nonsense").is_err());
    assert!(parse_state_key("cards/zz").is_err());
    assert!(parse_state_key("wallet:1").is_err());
}

#[test]
fn a_state_proof_fails_on_every_tampered_byte() {
    let (b, store) = stored();
    let text = format!("balance:merchant:{}", b.member(1).to_hex());
    let (table, key) = parse_state_key(&text).expect("parses");
    let good = StateProof::build(&store, b.state(), table, &key).expect("builds").expect("present");
    good.verify(&[]).expect("the genuine proof verifies");
    let bytes = good.to_bytes();
    // Every byte of the proof, flipped: either it no longer decodes or it no longer verifies.
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        if let Ok(p) = StateProof::from_bytes(&bad, PROOF_BYTES_MAX) {
            assert!(p.verify(&[]).is_err(), "byte {i} of {} flipped still verifies", bytes.len());
        }
    }
    // And field by field, with the check that catches it.
    let check = |p: &StateProof| p.verify(&[]).map(|_| ()).map_err(|f| f.check);
    let mut p = good.clone();
    p.item.value[0] ^= 1;
    assert_eq!(check(&p), Err(Check::StateRoot));
    let mut p = good.clone();
    p.item.key = Party::Merchant(b.member(2)).to_bytes();
    assert_eq!(check(&p), Err(Check::StateRoot));
    let mut p = good.clone();
    p.item.table = 15;
    assert_eq!(check(&p), Err(Check::StateRoot));
    let mut p = good.clone();
    p.item.path.index ^= 1;
    assert_eq!(check(&p), Err(Check::StateRoot));
    for t in 0..16 {
        let mut p = good.clone();
        p.item.roots.tables[t].0[5] ^= 1;
        assert_eq!(check(&p), Err(Check::StateRoot), "table root {t}");
    }
    let mut p = good.clone();
    p.item.roots.globals.0[0] ^= 1;
    assert_eq!(check(&p), Err(Check::StateRoot));
    let mut p = good.clone();
    p.item.roots.seen.0[0] ^= 1;
    assert_eq!(check(&p), Err(Check::StateRoot));
    let mut p = good.clone();
    p.certified.header.state_root.0[0] ^= 1;
    assert_eq!(check(&p), Err(Check::StateRoot));
    let mut p = good.clone();
    p.certified.certificate.signatures.truncate(2);
    assert_eq!(check(&p), Err(Check::CertificateSigners));
}

#[test]
fn a_state_proof_follows_a_descendant_certificate() {
    let (b, mut blocks) = chain();
    plaza_ledger::audit::chain::finalize_through(&mut blocks[4..6]);
    let store = MemStore::new(b.genesis());
    for e in &blocks[..5] {
        store.append(BlockWrite { block: &e.block, receipts: &e.receipts, statement: None, state_snapshot: None }).expect("append");
    }
    // The state after block 5, which is final through block 6's certificate.
    let mut state = State::from_genesis(b.genesis());
    for e in &blocks[..5] {
        state.apply_block(e.block.block.header.time_ms, &e.block.block.records).expect("valid");
    }
    let (table, key) = parse_state_key("statement:0").expect("parses");
    // Block 6 is not stored yet: its certificate's block cannot be found.
    assert!(StateProof::build(&store, &state, table, &key).is_err());
    let e = &blocks[5];
    store.append(BlockWrite { block: &e.block, receipts: &e.receipts, statement: None, state_snapshot: None }).expect("append");
    let proof = StateProof::build(&store, &state, table, &key).expect("builds").expect("present");
    assert_eq!(proof.certified.descendants.len(), 1);
    let proven = proof.verify(&[]).expect("verifies");
    assert_eq!(proven.finalized_through, Some((6, blocks[5].block.block.id())));
    let mut p = proof.clone();
    p.certified.descendants[0].time_ms += 1;
    assert_eq!(p.verify(&[]).map(|_| ()).map_err(|f| f.check), Err(Check::Certificate));
}
