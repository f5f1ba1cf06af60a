// Shared sample values for the encoding tests (included with `mod`).
#![allow(dead_code)]

use plaza_ledger::block::{Block, BlockHeader, FinalizedBlock};
use plaza_ledger::cert::{Certificate, Validator, ValidatorSet, VoteTarget};
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::money::{Amount, Bps};
use plaza_ledger::policy::Policy;
use plaza_ledger::receipt::Receipt;
use plaza_ledger::record::*;
use plaza_ledger::{Hash, Keypair};

pub const T0: u64 = 1_795_363_200_000; // 2026-11-22T16:00:00Z = 2026-11-23 00:00 at UTC+8

pub fn key(name: &str) -> Keypair {
    Keypair::from_seed(name.as_bytes())
}

pub fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("sample amount")
}

pub fn profile(name: &str, category: &str) -> MerchantProfile {
    MerchantProfile {
        key: key(name).public(),
        name: name.to_owned(),
        category: category.to_owned(),
        district: "riverside".to_owned(),
        latitude_e6: 31_230_416,
        longitude_e6: 121_473_701,
        network_key: Some(key(&format!("{name}/net")).public()),
    }
}

pub fn validator_set(names: &[&str]) -> ValidatorSet {
    ValidatorSet::new(
        names
            .iter()
            .map(|n| Validator { key: key(n).public(), network_key: key(&format!("{n}/net")).public() })
            .collect(),
    )
    .expect("sample validator set")
}

pub fn genesis() -> Genesis {
    let mut members = vec![profile("hotpot", "restaurant"), profile("gym", "fitness"), profile("school", "education")];
    members.sort_by(|a, b| a.key.cmp(&b.key));
    Genesis {
        name: "Riverside Alliance".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: T0,
        categories: vec![
            Named { code: "education".into(), name: "Education".into() },
            Named { code: "fitness".into(), name: "Fitness".into() },
            Named { code: "restaurant".into(), name: "Restaurants".into() },
        ],
        districts: vec![Named { code: "riverside".into(), name: "Riverside".into() }],
        members,
        validators: validator_set(&["hotpot", "gym", "school"]),
        policy: Policy::default_v1(T0),
        promoters: Vec::new(),
    }
}

pub fn alliance() -> Hash {
    genesis().alliance_id()
}

pub fn record(signer: &str, payload: Payload) -> Record {
    let kp = key(signer);
    Record::sign(RecordBody { alliance: alliance(), signer: kp.public(), created_at_ms: T0 + 1000, payload }, &kp)
}

/// One sample of every payload kind.
pub fn sample_payloads() -> Vec<(&'static str, Payload)> {
    let code = CodeSecret::new(b"REF-CODE-0001").expect("code");
    let coupon = CodeSecret::new(b"COUPON-0001").expect("code");
    let mut coupon_hashes = vec![coupon.hash(), CodeSecret::new(b"COUPON-0002").expect("code").hash()];
    coupon_hashes.sort();
    vec![
        ("propose-admit", Payload::Propose { action: Action::AdmitMerchant(profile("grocer", "grocery")) }),
        ("propose-policy", Payload::Propose { action: Action::PublishPolicy(Policy { version: 2, ..Policy::default_v1(T0 + 86_400_000) }) }),
        (
            "propose-promoter",
            Payload::Propose {
                action: Action::RegisterPromoter {
                    id: PromoterId::new("lily").expect("id"),
                    name: "Lily".into(),
                    upstream: Some(PromoterId::new("mia").expect("id")),
                },
            },
        ),
        ("vote", Payload::Vote { proposal: Hash::digest(b"proposal"), approve: true }),
        ("issue-card", Payload::IssueCard { card: CardId([7; 16]) }),
        (
            "refer",
            Payload::Refer {
                code_hash: code.hash(),
                card: Some(CardId([7; 16])),
                promoter: Some(PromoterId::new("lily").expect("id")),
                upstream: Some(PromoterId::new("mia").expect("id")),
                valid_at: vec![Place::Category("fitness".into())],
                expires_at_ms: T0 + 7 * 86_400_000,
                multi_use: false,
            },
        ),
        (
            "issue-coupons",
            Payload::IssueCoupons {
                batch: "B-2026-11".into(),
                code_hashes: coupon_hashes,
                value: CouponValue::Fixed(amount("20.00")),
                min_spend: amount("100.00"),
                redeemable_at: vec![],
                funding: Funding::Issuer,
                expires_at_ms: T0 + 30 * 86_400_000,
            },
        ),
        (
            "sale",
            Payload::Sale {
                order: "POS-0001".into(),
                gross: amount("128.00"),
                base: amount("108.00"),
                card: Some(CardId([7; 16])),
                referral_code: Some(code),
                coupon_codes: vec![coupon],
                points_redeemed: 50,
            },
        ),
        ("refund", Payload::Refund { order: "POS-0001".into(), refund_id: "RF-1".into(), amount: amount("28.00") }),
        ("revoke", Payload::RevokeRedemption { order: "POS-0001".into(), code_hash: Hash::digest(b"COUPON-0001") }),
        (
            "agreement",
            Payload::Agreement {
                agreement_id: "AG-1".into(),
                counterparty: key("gym").public(),
                terms: Terms::FixedFee { payer: key("hotpot").public(), amount: amount("50.00") },
                starts_at_ms: T0,
                ends_at_ms: None,
            },
        ),
        (
            "agreement-override",
            Payload::Agreement {
                agreement_id: "AG-2".into(),
                counterparty: key("gym").public(),
                terms: Terms::RateOverride { referral_rate: Some(Bps(800)), home_rate: None },
                starts_at_ms: T0,
                ends_at_ms: Some(T0 + 86_400_000),
            },
        ),
        ("accept", Payload::Accept { agreement: Hash::digest(b"agreement") }),
        ("confirm-payment", Payload::ConfirmPayment { period: 3, payer: key("gym").public(), amount: amount("12.34") }),
    ]
}

pub fn sample_block() -> Block {
    let records: Vec<Record> = sample_payloads().into_iter().map(|(_, p)| record("hotpot", p)).collect();
    let receipts: Vec<Receipt> = records.iter().map(|r| Receipt::accepted(r.id())).collect();
    Block {
        header: BlockHeader {
            height: 1,
            epoch: 0,
            view: 1,
            parent: alliance(),
            time_ms: T0 + 2000,
            proposer: key("hotpot").public(),
            records_root: Block::compute_records_root(&records),
            receipts_root: Block::compute_receipts_root(&receipts),
            state_root: Hash::digest(b"state"),
            validator_set_hash: validator_set(&["hotpot", "gym", "school"]).hash(),
            statement_hash: None,
            next_validator_set_hash: None,
        },
        records,
    }
}

pub fn sample_finalized() -> FinalizedBlock {
    let block = sample_block();
    let target = VoteTarget::finalize(0, 1, block.id());
    let votes = ["hotpot", "gym", "school"].iter().map(|n| target.sign(&alliance(), &key(n)));
    FinalizedBlock { certificate: Certificate::from_votes(target, votes), block, epoch_end: None }
}
