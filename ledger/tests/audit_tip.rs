//! Signed checkpoints (issue 12): a verified chain compared with a tip the validators
//! certified, or with a block id the auditor expects. A withheld tail (the copy stops short)
//! and a forked tail (another block at the certified height) are errors; a copy that holds the
//! tip, or goes beyond it, agrees.

use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::audit::tip::{check_expected, SignedTip, TipAgreement, SIGNED_TIP_BYTES_MAX};
use plaza_ledger::audit::verify::Source;
use plaza_ledger::audit::{verify_chain_watching, BlockEntry, Check, Report, Start, VerifyOptions, Watch};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::Hash;

/// Six blocks; the same seeds always give the same chain.
fn chain(sales_at_4: usize) -> (ChainBuilder, Vec<BlockEntry>) {
    let mut b = ChainBuilder::new(4, 4);
    let mut blocks = Vec::new();
    for h in 1..=6 {
        let records = b.sales(if h == 4 { sales_at_4 } else { 5 });
        blocks.push(b.push(records).expect("valid"));
    }
    (b, blocks)
}

fn signed(b: &ChainBuilder, entry: &BlockEntry) -> SignedTip {
    SignedTip { header: entry.block.block.header.clone(), certificate: entry.block.certificate.clone(), validators: b.genesis().validators.clone() }
}

fn verify(b: &ChainBuilder, blocks: &[BlockEntry], watch: &Watch) -> Report {
    let report = verify_chain_watching(b.genesis(), Start::Genesis, blocks.iter().cloned().map(|e| Ok(Source::from(e))), &VerifyOptions::default(), watch, &mut |_| {});
    assert!(report.is_ok(), "{:?}", report.failure);
    report
}

fn heights(h: u64) -> Watch {
    Watch { heights: vec![h], ids: Vec::new() }
}

#[test]
fn a_chain_that_holds_the_signed_tip_agrees() {
    let (b, blocks) = chain(5);
    let set = b.genesis().validators.hash();
    let tip = signed(&b, &blocks[5]);
    tip.verify(&b.alliance()).expect("a genuine checkpoint");
    assert_eq!(tip.check(&verify(&b, &blocks, &heights(6)), &set), Ok(TipAgreement::Ends));
    let older = signed(&b, &blocks[3]);
    assert_eq!(older.check(&verify(&b, &blocks, &heights(4)), &set), Ok(TipAgreement::Beyond { beyond: 2 }));
    let decoded = SignedTip::from_bytes(&tip.to_bytes(), SIGNED_TIP_BYTES_MAX).expect("decodes");
    assert_eq!(decoded, tip);
}

#[test]
fn a_withheld_tail_is_an_error() {
    let (b, blocks) = chain(5);
    let tip = signed(&b, &blocks[5]);
    // A copy cut at block 4 (with a fresh end, so it verifies on its own).
    let report = verify(&b, &blocks[..4], &heights(6));
    let f = tip.check(&report, &b.genesis().validators.hash()).expect_err("the tail is withheld");
    assert_eq!((f.check, f.height), (Check::Tip, Some(6)), "{f}");
    assert!(f.found.contains("ends at height 4") && f.found.contains("2 blocks after it are withheld"), "{f}");
    // The same by an expected id.
    let report = verify(&b, &blocks[..4], &Watch { heights: Vec::new(), ids: vec![blocks[5].block.block.id()] });
    let f = check_expected(&report, &blocks[5].block.block.id()).expect_err("the tail is withheld");
    assert_eq!(f.check, Check::Tip);
    assert!(f.found.contains("withheld"), "{f}");
}

#[test]
fn a_forked_tail_is_an_error() {
    let (b, blocks) = chain(5);
    // Another chain from the same genesis and the same first three blocks, different from block 4 on.
    let (other_builder, other) = chain(7);
    assert_eq!(other[2].block.block.id(), blocks[2].block.block.id());
    assert_ne!(other[3].block.block.id(), blocks[3].block.block.id());
    let tip = signed(&other_builder, &other[4]);
    tip.verify(&b.alliance()).expect("validly certified in the other chain");
    let report = verify(&b, &blocks, &heights(5));
    let f = tip.check(&report, &b.genesis().validators.hash()).expect_err("the chains fork");
    assert_eq!((f.check, f.height), (Check::Tip, Some(5)), "{f}");
    assert!(f.found.contains(&blocks[4].block.block.id().to_string()) && f.found.contains("forks"), "{f}");
    let report = verify(&b, &blocks, &Watch { heights: Vec::new(), ids: vec![other[5].block.block.id()] });
    assert_eq!(check_expected(&report, &other[5].block.block.id()).map_err(|f| f.check), Err(Check::Tip));
    // The expected id, when it is in the chain.
    let id = blocks[2].block.block.id();
    let report = verify(&b, &blocks, &Watch { heights: Vec::new(), ids: vec![id] });
    assert_eq!(check_expected(&report, &id), Ok(TipAgreement::Beyond { beyond: 3 }));
}

#[test]
fn a_tampered_signed_tip_does_not_verify() {
    let (b, blocks) = chain(5);
    let good = signed(&b, &blocks[5]);
    let mut t = good.clone();
    t.header.height = 60;
    assert_eq!(t.verify(&b.alliance()).map_err(|f| f.check), Err(Check::Tip));
    let mut t = good.clone();
    t.certificate.signatures.truncate(2);
    let f = t.verify(&b.alliance()).expect_err("too few signers");
    assert!(f.found.contains("quorum is 3"), "{f}");
    let mut t = good.clone();
    t.certificate = blocks[4].block.certificate.clone();
    assert_eq!(t.verify(&b.alliance()).map_err(|f| f.check), Err(Check::Tip));
    // Another alliance's signatures do not verify here.
    assert!(good.verify(&Hash::digest(b"another alliance")).is_err());
}
