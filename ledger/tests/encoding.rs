//! Canonical encoding: round trips, rejection of non-canonical forms, and the pinned fixture
//! of sample encodings (docs/FORMAT.md §9). A change to any signed, hashed or stored format
//! makes `pinned_fixture` fail: update the fixture and FORMAT.md in the same change, on purpose,
//! with `PLAZA_UPDATE_FIXTURE=1 cargo test -p plaza-ledger --test encoding`.

mod common_samples;

use common_samples::*;
use plaza_ledger::block::{Block, BlockHeader, FinalizedBlock, BLOCK_BYTES_MAX};
use plaza_ledger::cert::{Certificate, ValidatorSet, Vote, VoteTarget};
use plaza_ledger::codec::{Decode, DecodeError, Encode};
use plaza_ledger::genesis::{Genesis, GENESIS_BYTES_MAX};
use plaza_ledger::merkle;
use plaza_ledger::money::{Amount, Bps, AMOUNT_MAX_CENTS};
use plaza_ledger::policy::Policy;
use plaza_ledger::receipt::Receipt;
use plaza_ledger::record::*;
use plaza_ledger::{Hash, Keypair};
use proptest::prelude::*;

fn round_trip<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T, max: usize) {
    let bytes = value.to_bytes();
    let decoded = T::from_bytes(&bytes, max).expect("a canonical encoding decodes");
    assert_eq!(&decoded, value);
    assert_eq!(decoded.to_bytes(), bytes, "re-encoding gives the same bytes");
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(T::from_bytes(&longer, max + 1), Err(DecodeError::TrailingBytes { .. })));
    if !bytes.is_empty() {
        assert!(T::from_bytes(&bytes[..bytes.len() - 1], max).is_err(), "a truncated encoding is rejected");
    }
}

#[test]
fn every_sample_round_trips() {
    for (_, payload) in sample_payloads() {
        round_trip(&payload, RECORD_BYTES_MAX);
        let rec = record("hotpot", payload);
        round_trip(&rec, RECORD_BYTES_MAX);
        assert_eq!(rec.check(&alliance()), Ok(()));
        assert_eq!(Record::decode_checked(&rec.to_bytes(), &alliance()).map(|r| r.id()), Ok(rec.id()));
    }
    round_trip(&genesis(), GENESIS_BYTES_MAX);
    let mut with_promoters = genesis();
    with_promoters.promoters = vec![
        plaza_ledger::genesis::GenesisPromoter { id: PromoterId::new("kol-a").unwrap(), name: "A".into(), upstream: Some(PromoterId::new("kol-b").unwrap()) },
        plaza_ledger::genesis::GenesisPromoter { id: PromoterId::new("kol-b").unwrap(), name: "B".into(), upstream: None },
    ];
    round_trip(&with_promoters, GENESIS_BYTES_MAX);
    // An empty promoter list is never encoded: its count alone is not canonical.
    let mut empty_list = genesis().to_bytes();
    empty_list.extend_from_slice(&0u32.to_be_bytes());
    assert!(plaza_ledger::genesis::Genesis::from_bytes(&empty_list, GENESIS_BYTES_MAX).is_err());
    round_trip(&sample_block(), BLOCK_BYTES_MAX);
    round_trip(&sample_finalized(), BLOCK_BYTES_MAX);
    round_trip(&validator_set(&["a", "b", "c", "d"]), 1 << 20);
    round_trip(&Policy::default_v1(T0), 1 << 20);
}

#[test]
fn records_for_another_alliance_or_tampered_are_rejected() {
    let rec = record("hotpot", sample_payloads().remove(7).1);
    assert!(matches!(rec.check(&Hash::digest(b"other")), Err(RecordError::WrongAlliance { .. })));
    let mut bytes = rec.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // inside the signature
    assert!(matches!(Record::decode_checked(&bytes, &alliance()), Err(RecordError::Signature(_))));
    let mut bytes = rec.to_bytes();
    bytes[80] ^= 1; // inside the body (created-at)
    assert!(Record::decode_checked(&bytes, &alliance()).is_err());
}

#[test]
fn time_window_is_symmetric_and_inclusive() {
    assert!(check_time_window(1000, 1600, 600).is_ok());
    assert!(check_time_window(1600, 1000, 600).is_ok());
    assert!(check_time_window(1000, 1601, 600).is_err());
    assert!(check_time_window(1601, 1000, 600).is_err());
}

#[test]
fn stateless_rules_reject_bad_fields() {
    let bad = [
        Payload::Sale {
            order: "X".into(),
            gross: amount("10.00"),
            base: amount("10.01"),
            card: None,
            referral_code: None,
            coupon_codes: vec![],
            points_redeemed: 0,
        },
        Payload::Sale { order: "X".into(), gross: Amount::ZERO, base: Amount::ZERO, card: None, referral_code: None, coupon_codes: vec![], points_redeemed: 0 },
        Payload::Sale { order: "has space".into(), gross: amount("1"), base: amount("1"), card: None, referral_code: None, coupon_codes: vec![], points_redeemed: 0 },
        Payload::Refund { order: "X".into(), refund_id: "R".into(), amount: Amount::ZERO },
        Payload::Refer {
            code_hash: Hash::ZERO,
            card: None,
            promoter: None,
            upstream: Some(PromoterId::new("mia").expect("id")),
            valid_at: vec![],
            expires_at_ms: T0 + 86_400_000,
            multi_use: false,
        },
        Payload::Refer { code_hash: Hash::ZERO, card: None, promoter: None, upstream: None, valid_at: vec![], expires_at_ms: T0, multi_use: false },
        Payload::ConfirmPayment { period: 1, payer: key("hotpot").public(), amount: amount("1") },
        Payload::Agreement {
            agreement_id: "A".into(),
            counterparty: key("hotpot").public(),
            terms: Terms::RateOverride { referral_rate: Some(Bps(1)), home_rate: None },
            starts_at_ms: T0,
            ends_at_ms: None,
        },
    ];
    for payload in bad {
        let rec = record("hotpot", payload.clone());
        assert!(matches!(rec.check(&alliance()), Err(RecordError::Field { .. })), "{payload:?} must be rejected");
    }
}

#[test]
fn non_canonical_forms_are_rejected() {
    // A bool other than 0/1 in a vote record.
    let rec = record("hotpot", Payload::Vote { proposal: Hash::ZERO, approve: true });
    let mut bytes = rec.to_bytes();
    let flag_at = 32 + 32 + 8 + 1 + 32; // alliance, signer, created-at, kind tag, proposal
    assert_eq!(bytes[flag_at], 1);
    bytes[flag_at] = 2;
    assert!(matches!(Record::from_bytes(&bytes, RECORD_BYTES_MAX), Err(DecodeError::InvalidTag { .. })));
    // An amount above the maximum.
    let over = (AMOUNT_MAX_CENTS + 1).to_be_bytes();
    assert!(Amount::from_bytes(&over, 8).is_err());
    // A rate above 100%.
    assert!(Bps::from_bytes(&10_001u32.to_be_bytes(), 4).is_err());
    // An unsorted validator set.
    let set = validator_set(&["a", "b", "c"]);
    let mut bytes = set.to_bytes();
    let (first, second) = (4..68, 68..132);
    let a = bytes[first.clone()].to_vec();
    let b = bytes[second.clone()].to_vec();
    bytes[first].copy_from_slice(&b);
    bytes[second].copy_from_slice(&a);
    assert!(ValidatorSet::from_bytes(&bytes, 1 << 16).is_err());
    // A nullify vote that names a block.
    let mut bytes = VoteTarget::nullify(0, 3).to_bytes();
    bytes[17] = 1; // kind, epoch, view, then the block

    assert!(VoteTarget::from_bytes(&bytes, 64).is_err());
}

#[test]
fn oversized_inputs_are_rejected_before_decoding() {
    let rec = record("hotpot", sample_payloads().remove(7).1);
    let bytes = rec.to_bytes();
    assert!(matches!(Record::from_bytes(&bytes, 10), Err(DecodeError::TooLarge { .. })));
}

// ---- Property tests: every type round-trips ----------------------------------------------

fn arb_key() -> impl Strategy<Value = Keypair> {
    (0u32..64).prop_map(|i| Keypair::from_seed(format!("k{i}").as_bytes()))
}
fn arb_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}
fn arb_amount() -> impl Strategy<Value = Amount> {
    (0..=AMOUNT_MAX_CENTS).prop_map(|c| Amount::from_cents(c).expect("in range"))
}
fn arb_positive_amount() -> impl Strategy<Value = Amount> {
    (1..=AMOUNT_MAX_CENTS).prop_map(|c| Amount::from_cents(c).expect("in range"))
}
fn arb_code() -> impl Strategy<Value = String> {
    "[a-z0-9_-]{1,32}"
}
fn arb_external_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9#/_.-]{1,64}"
}
fn arb_secret() -> impl Strategy<Value = CodeSecret> {
    proptest::collection::vec(any::<u8>(), SECRET_MIN..=SECRET_MAX).prop_map(|b| CodeSecret::new(&b).expect("length in range"))
}
fn arb_place() -> impl Strategy<Value = Place> {
    prop_oneof![arb_key().prop_map(|k| Place::Merchant(k.public())), arb_code().prop_map(Place::Category)]
}
fn arb_places() -> impl Strategy<Value = Vec<Place>> {
    proptest::collection::btree_set(arb_place(), 0..5).prop_map(|s| s.into_iter().collect())
}
fn arb_profile() -> impl Strategy<Value = MerchantProfile> {
    (arb_key(), "[A-Za-z ]{1,20}[A-Za-z]", arb_code(), arb_code(), -90_000_000i32..=90_000_000, -180_000_000i32..=180_000_000, proptest::option::of(arb_key()))
        .prop_map(|(k, name, category, district, lat, lon, net)| MerchantProfile {
            key: k.public(),
            name,
            category,
            district,
            latitude_e6: lat,
            longitude_e6: lon,
            network_key: net.map(|n| n.public()),
        })
}
fn arb_policy() -> impl Strategy<Value = Policy> {
    (1u32..100, any::<u32>(), 0u32..=10_000, 0u32..=10_000, arb_amount(), 0u32..30)
        .prop_map(|(version, effective, rate, cap, min_payout, hold)| Policy {
            version,
            effective_at_ms: u64::from(effective),
            referral_rate: Bps(rate),
            share_cap: Bps(cap),
            min_payout,
            points_hold_days: hold,
            ..Policy::default_v1(0)
        })
}
fn arb_promoter() -> impl Strategy<Value = PromoterId> {
    arb_code().prop_map(|c| PromoterId::new(&c).expect("valid code"))
}
fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        arb_profile().prop_map(Action::AdmitMerchant),
        arb_profile().prop_map(Action::UpdateMerchant),
        arb_key().prop_map(|k| Action::SuspendMerchant(k.public())),
        arb_key().prop_map(|k| Action::ReinstateMerchant(k.public())),
        arb_key().prop_map(|k| Action::RemoveMerchant(k.public())),
        (arb_promoter(), "[A-Za-z]{1,20}", proptest::option::of(arb_promoter()))
            .prop_filter("own upstream", |(id, _, up)| up.as_ref() != Some(id))
            .prop_map(|(id, name, upstream)| Action::RegisterPromoter { id, name, upstream }),
        (arb_key(), arb_key()).prop_map(|(m, n)| Action::AddValidator { merchant: m.public(), network_key: n.public() }),
        arb_key().prop_map(|k| Action::RemoveValidator { merchant: k.public() }),
        arb_policy().prop_map(Action::PublishPolicy),
        arb_promoter().prop_map(|p| Action::ReleaseHold(Party::Promoter(p))),
    ]
}
fn arb_payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        arb_action().prop_map(|action| Payload::Propose { action }),
        (arb_hash(), any::<bool>()).prop_map(|(proposal, approve)| Payload::Vote { proposal, approve }),
        any::<[u8; 16]>().prop_map(|c| Payload::IssueCard { card: CardId(c) }),
        (arb_hash(), proptest::option::of(any::<[u8; 16]>()), proptest::option::of(arb_promoter()), arb_places(), any::<u32>(), any::<bool>()).prop_map(
            |(code_hash, card, promoter, valid_at, expiry, multi_use)| Payload::Refer {
                code_hash,
                card: card.map(CardId),
                promoter,
                upstream: None,
                valid_at,
                expires_at_ms: u64::from(expiry) + 1,
                multi_use,
            }
        ),
        (arb_external_id(), proptest::collection::btree_set(arb_hash(), 1..10), arb_positive_amount(), arb_amount(), arb_places(), any::<bool>()).prop_map(
            |(batch, hashes, value, min_spend, redeemable_at, issuer)| Payload::IssueCoupons {
                batch,
                code_hashes: hashes.into_iter().collect(),
                value: CouponValue::Fixed(value),
                min_spend,
                redeemable_at,
                funding: if issuer { Funding::Issuer } else { Funding::Redeemer },
                expires_at_ms: u64::MAX,
            }
        ),
        (arb_external_id(), arb_positive_amount(), 0u64..=10_000, proptest::option::of(any::<[u8; 16]>()), proptest::option::of(arb_secret()), proptest::collection::vec(arb_secret(), 0..4), 0u64..1_000_000)
            .prop_map(|(order, gross, base_bps, card, referral_code, coupons, points)| {
                let base = Amount::from_cents(gross.cents() / 10_000 * base_bps).expect("below gross");
                let mut seen = std::collections::BTreeSet::new();
                let coupon_codes = coupons.into_iter().filter(|c| seen.insert(c.hash())).collect();
                Payload::Sale { order, gross, base, card: card.map(CardId), referral_code, coupon_codes, points_redeemed: points }
            }),
        (arb_external_id(), arb_external_id(), arb_positive_amount()).prop_map(|(order, refund_id, amount)| Payload::Refund { order, refund_id, amount }),
        (arb_external_id(), arb_hash()).prop_map(|(order, code_hash)| Payload::RevokeRedemption { order, code_hash }),
        (arb_hash()).prop_map(|agreement| Payload::Accept { agreement }),
        (any::<u64>(), arb_positive_amount()).prop_map(|(period, amount)| Payload::ConfirmPayment { period, payer: Keypair::from_seed(b"payer").public(), amount }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn records_round_trip(payload in arb_payload(), signer in arb_key(), created in 0u64..u64::from(u32::MAX)) {
        let body = RecordBody { alliance: Hash::digest(b"a"), signer: signer.public(), created_at_ms: created, payload };
        let rec = Record::sign(body, &signer);
        let bytes = rec.to_bytes();
        let back = Record::from_bytes(&bytes, RECORD_BYTES_MAX).expect("decodes");
        prop_assert_eq!(back.id(), rec.id());
        prop_assert_eq!(back.id(), Hash::digest(&bytes));
        prop_assert_eq!(&back, &rec);
        prop_assert!(back.signer().verify(plaza_ledger::keys::domain::RECORD, &back.signing_bytes(), back.signature()).is_ok());
    }

    #[test]
    fn headers_votes_receipts_and_proofs_round_trip(
        height in 1u64.., view in any::<u64>(), parent in arb_hash(), time in any::<u64>(), k in arb_key(),
        roots in proptest::collection::vec(arb_hash(), 5), with_statement in any::<bool>(), code in any::<u16>(),
        path in proptest::collection::vec(arb_hash(), 0..20), idx in any::<u64>(),
    ) {
        let header = BlockHeader {
            height, epoch: time % 5, view, parent, time_ms: time, proposer: k.public(),
            records_root: roots[0], receipts_root: roots[1], state_root: roots[2], validator_set_hash: roots[3],
            statement_hash: with_statement.then_some(roots[4]),
            next_validator_set_hash: (!with_statement).then_some(roots[4]),
        };
        let bytes = header.to_bytes();
        prop_assert_eq!(BlockHeader::from_bytes(&bytes, 1024).expect("decodes"), header);
        let vote = VoteTarget::notarize(time % 5, view, roots[0]).sign(&parent, &k);
        prop_assert_eq!(Vote::from_bytes(&vote.to_bytes(), 1024).expect("decodes"), vote);
        prop_assert!(vote.verify(&parent).is_ok());
        let receipt = Receipt { record: roots[1], code };
        prop_assert_eq!(Receipt::from_bytes(&receipt.to_bytes(), 64).expect("decodes"), receipt);
        let proof = merkle::InclusionProof { index: idx, tree_size: idx.saturating_add(1), path };
        prop_assert_eq!(merkle::InclusionProof::from_bytes(&proof.to_bytes(), 4096).expect("decodes"), proof);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Record::from_bytes(&bytes, RECORD_BYTES_MAX);
        let _ = Block::from_bytes(&bytes, BLOCK_BYTES_MAX);
        let _ = FinalizedBlock::from_bytes(&bytes, BLOCK_BYTES_MAX);
        let _ = Genesis::from_bytes(&bytes, GENESIS_BYTES_MAX);
        let _ = Certificate::from_bytes(&bytes, 1 << 20);
        let _ = Policy::from_bytes(&bytes, 1 << 20);
    }

    #[test]
    fn mutated_records_never_panic_and_never_keep_their_id(flip in 0usize..4096, bit in 0u8..8) {
        let rec = record("gym", sample_payloads().remove(7).1);
        let mut bytes = rec.to_bytes();
        let at = flip % bytes.len();
        bytes[at] ^= 1 << bit;
        if let Ok(back) = Record::from_bytes(&bytes, RECORD_BYTES_MAX) {
            prop_assert_ne!(back.id(), rec.id());
            prop_assert!(back.check(&alliance()).is_err());
        }
    }
}

// ---- The pinned fixture ------------------------------------------------------------------

fn fixture_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut push = |name: &str, bytes: Vec<u8>| {
        lines.push(format!("{name} {} {}", Hash::digest(&bytes).to_hex(), hex::encode(&bytes)));
    };
    push("genesis", genesis().to_bytes());
    lines.push(format!("alliance-id {} -", alliance().to_hex()));
    let mut push = |name: &str, bytes: Vec<u8>| {
        lines.push(format!("{name} {} {}", Hash::digest(&bytes).to_hex(), hex::encode(&bytes)));
    };
    for (name, payload) in sample_payloads() {
        push(&format!("record-{name}"), record("hotpot", payload).to_bytes());
    }
    let block = sample_block();
    push("block-header", block.header.to_bytes());
    push("vote-notarize", VoteTarget::notarize(0, 1, block.id()).sign(&alliance(), &key("gym")).to_bytes());
    push("vote-nullify", VoteTarget::nullify(0, 2).sign(&alliance(), &key("gym")).to_bytes());
    push("certificate", sample_finalized().certificate.to_bytes());
    push("receipt-rejected", Receipt { record: Hash::digest(b"r"), code: 7 }.to_bytes());
    let leaves: Vec<Hash> = block.records.iter().map(|r| merkle::leaf_hash(r.id().as_bytes())).collect();
    push("merkle-proof-5-of-14", merkle::prove(&leaves, 5).expect("in range").to_bytes());
    lines
}

#[test]
fn pinned_fixture() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encodings.txt");
    let actual = fixture_lines().join("\n") + "\n";
    if std::env::var_os("PLAZA_UPDATE_FIXTURE").is_some() {
        std::fs::write(&path, &actual).expect("write fixture");
    }
    let expected = std::fs::read_to_string(&path).expect("tests/fixtures/encodings.txt exists");
    let expected_lines: Vec<&str> = expected.lines().collect();
    for (i, line) in actual.lines().enumerate() {
        let name = line.split(' ').next().unwrap_or("");
        assert_eq!(
            Some(&line),
            expected_lines.get(i),
            "encoding of {name} changed: if intended, update docs/FORMAT.md and re-pin with PLAZA_UPDATE_FIXTURE=1"
        );
    }
    assert_eq!(actual.lines().count(), expected_lines.len());
}
