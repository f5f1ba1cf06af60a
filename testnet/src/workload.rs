//! The simulator's merchants: a seeded stream of real signed records (cards, referrals,
//! coupons, sales with cards, referral codes, coupons and points, refunds, governance
//! proposals and votes), and the alliance they belong to.
//!
//! Records refer to earlier ones (a sale uses a card issued before, a refund an earlier
//! sale), so the contract does real work; whether a record is accepted or refused by the
//! contract depends on what was final when its block ran, which is fine: the receipts are
//! compared between nodes, not predicted.

use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{Policy, DAY_MS};
use plaza_ledger::record::{
    Action, CardId, CodeSecret, CouponValue, Funding, MerchantProfile, Payload, PromoterId, Record, RecordBody,
};
use plaza_ledger::{Hash, Keypair};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Genesis time of every simulated alliance: 2026-11-23 00:00 at UTC+8.
pub const GENESIS_MS: u64 = 1_795_363_200_000;

/// The alliance: every member is a merchant (its vote key is its merchant key), each in a
/// category of its own so cards and referrals cross categories; the first `validators` of
/// `keys` validate from genesis (the others are members who may be voted in).
pub fn genesis(keys: &[Keypair], network_keys: &[Keypair], validators: usize) -> Genesis {
    let mut members: Vec<MerchantProfile> = keys
        .iter()
        .zip(network_keys)
        .enumerate()
        .map(|(i, (k, net))| MerchantProfile {
            key: k.public(),
            name: format!("merchant {i}"),
            category: format!("c{i:02}"),
            district: "d".into(),
            latitude_e6: 31_230_416,
            longitude_e6: 121_473_701,
            network_key: Some(net.public()),
        })
        .collect();
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let validators = ValidatorSet::new(
        keys.iter().zip(network_keys).take(validators).map(|(k, net)| Validator { key: k.public(), network_key: net.public() }).collect(),
    )
    .expect("distinct simulated keys");
    let mut categories: Vec<Named> = (0..keys.len()).map(|i| Named { code: format!("c{i:02}"), name: format!("c{i:02}") }).collect();
    categories.sort();
    let mut policy = Policy::default_v1(GENESIS_MS);
    policy.min_payout = Amount::from_cents(1).expect("a cent");
    policy.card_sales_per_hour_max = 1_000_000;
    let genesis = Genesis {
        name: "sim".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: GENESIS_MS,
        categories,
        districts: vec![Named { code: "d".into(), name: "d".into() }],
        members,
        validators,
        policy,
        promoters: Vec::new(),
    };
    genesis.validate().expect("the simulated genesis is valid");
    genesis
}

/// The stream of records.
pub struct Workload {
    rng: ChaCha8Rng,
    alliance: Hash,
    keys: Vec<Keypair>,
    outsider: Keypair,
    counter: u64,
    cards: Vec<(CardId, usize)>,
    referrals: Vec<String>,
    coupons: Vec<String>,
    sales: Vec<(usize, String, u64)>,
    proposals: Vec<Hash>,
}

impl Workload {
    pub fn new(seed: u64, alliance: Hash, keys: &[Keypair]) -> Workload {
        Workload {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x0c0f_fee5),
            alliance,
            keys: keys.iter().map(|k| Keypair::from_secret(&k.secret_bytes()).expect("a valid secret")).collect(),
            outsider: Keypair::from_seed(format!("sim-{seed}-outsider").as_bytes()),
            counter: 0,
            cards: Vec::new(),
            referrals: Vec::new(),
            coupons: Vec::new(),
            sales: Vec::new(),
            proposals: Vec::new(),
        }
    }

    /// A batch of one to four records, created at `created_at_ms`.
    pub fn batch(&mut self, created_at_ms: u64) -> Vec<Record> {
        let count = self.rng.random_range(1..=4);
        (0..count).map(|_| self.record(created_at_ms)).collect()
    }

    /// A well-formed, well-signed record from a key that is not a member.
    pub fn outsider_record(&mut self, created_at_ms: u64) -> Record {
        self.counter += 1;
        let body = RecordBody {
            alliance: self.alliance,
            signer: self.outsider.public(),
            created_at_ms,
            payload: Payload::IssueCard { card: CardId([0xee; 16]) },
        };
        Record::sign(body, &self.outsider)
    }

    fn secret(text: &str) -> CodeSecret {
        CodeSecret::new(text.as_bytes()).expect("8 to 64 bytes")
    }

    fn record(&mut self, t: u64) -> Record {
        self.counter += 1;
        let n = self.counter;
        let signer = self.rng.random_range(0..self.keys.len());
        let roll = self.rng.random_range(0..100);
        let payload = match roll {
            0..15 => {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&n.to_be_bytes());
                id[8] = signer as u8;
                self.cards.push((CardId(id), signer));
                Payload::IssueCard { card: CardId(id) }
            }
            15..25 => {
                let code = format!("sim-ref-{n:06}");
                let card = (!self.cards.is_empty() && self.rng.random_bool(0.5))
                    .then(|| self.cards[self.rng.random_range(0..self.cards.len())].0);
                self.referrals.push(code.clone());
                Payload::Refer {
                    code_hash: Self::secret(&code).hash(),
                    card,
                    promoter: None,
                    upstream: None,
                    valid_at: Vec::new(),
                    expires_at_ms: t + 30 * DAY_MS,
                    multi_use: self.rng.random_bool(0.5),
                }
            }
            25..33 => {
                let codes: Vec<String> = (0..self.rng.random_range(1..=3)).map(|k| format!("sim-cpn-{n:06}-{k}")).collect();
                let mut code_hashes: Vec<Hash> = codes.iter().map(|c| Self::secret(c).hash()).collect();
                code_hashes.sort();
                self.coupons.extend(codes);
                Payload::IssueCoupons {
                    batch: format!("b{n}"),
                    code_hashes,
                    value: CouponValue::Fixed(Amount::from_cents(500).expect("amount")),
                    min_spend: Amount::from_cents(1_000).expect("amount"),
                    redeemable_at: Vec::new(),
                    funding: if self.rng.random_bool(0.5) { Funding::Issuer } else { Funding::Redeemer },
                    expires_at_ms: t + 30 * DAY_MS,
                }
            }
            33..78 => {
                let gross = self.rng.random_range(1_000..100_000u64);
                let order = format!("o{n}");
                self.sales.push((signer, order.clone(), gross));
                let card = (!self.cards.is_empty() && self.rng.random_bool(0.7))
                    .then(|| self.cards[self.rng.random_range(0..self.cards.len())].0);
                let referral_code = (!self.referrals.is_empty() && self.rng.random_bool(0.4))
                    .then(|| Self::secret(&self.referrals[self.rng.random_range(0..self.referrals.len())]));
                let coupon_codes = if !self.coupons.is_empty() && self.rng.random_bool(0.2) {
                    vec![Self::secret(&self.coupons[self.rng.random_range(0..self.coupons.len())])]
                } else {
                    Vec::new()
                };
                let points_redeemed = if card.is_some() && self.rng.random_bool(0.2) { self.rng.random_range(1..500) } else { 0 };
                Payload::Sale {
                    order,
                    gross: Amount::from_cents(gross).expect("amount"),
                    base: Amount::from_cents(gross).expect("amount"),
                    card,
                    referral_code,
                    coupon_codes,
                    points_redeemed,
                }
            }
            78..88 if !self.sales.is_empty() => {
                let (seller, order, gross) = self.sales[self.rng.random_range(0..self.sales.len())].clone();
                let amount = self.rng.random_range(1..=gross);
                return self.sign(seller, t, Payload::Refund { order, refund_id: format!("r{n}"), amount: Amount::from_cents(amount).expect("amount") });
            }
            88..93 => {
                let id = PromoterId::new(&format!("p{n}")).expect("a promoter id");
                Payload::Propose { action: Action::RegisterPromoter { id, name: format!("promoter {n}"), upstream: None } }
            }
            _ if !self.proposals.is_empty() => {
                let proposal = self.proposals[self.rng.random_range(0..self.proposals.len())];
                Payload::Vote { proposal, approve: self.rng.random_bool(0.9) }
            }
            _ => {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&n.to_be_bytes());
                Payload::IssueCard { card: CardId(id) }
            }
        };
        let is_proposal = matches!(payload, Payload::Propose { .. });
        let record = self.sign(signer, t, payload);
        if is_proposal {
            self.proposals.push(record.id());
        }
        record
    }

    fn sign(&self, signer: usize, t: u64, payload: Payload) -> Record {
        let key = &self.keys[signer];
        Record::sign(RecordBody { alliance: self.alliance, signer: key.public(), created_at_ms: t, payload }, key)
    }
}
