//! Shared harness for the settlement tests: a five-merchant alliance and a block driver.
#![allow(dead_code)]

use plaza_ledger::cert::{Validator, ValidatorSet};
use plaza_ledger::contract::{BlockOutcome, LineKind, State, Statement};
use plaza_ledger::genesis::{Genesis, Named};
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{Policy, DAY_MS};
use plaza_ledger::receipt::Code;
use plaza_ledger::record::*;
use plaza_ledger::{Hash, Keypair, PublicKey};

/// 2026-11-23 00:00 at UTC+8: period 0 is that local day.
pub const T0: u64 = 1_795_363_200_000;
pub const MERCHANTS: &[(&str, &str)] =
    &[("hotpot", "restaurant"), ("gym", "fitness"), ("school", "education"), ("noodles", "restaurant"), ("mart", "grocery")];

pub fn key(name: &str) -> Keypair {
    Keypair::from_seed(format!("settlement/{name}").as_bytes())
}
pub fn pk(name: &str) -> PublicKey {
    key(name).public()
}
pub fn m(name: &str) -> Party {
    Party::Merchant(pk(name))
}
pub fn promoter(id: &str) -> Party {
    Party::Promoter(PromoterId::new(id).expect("promoter id"))
}
pub fn amt(text: &str) -> Amount {
    Amount::parse(text).expect("amount")
}
pub fn cents(text: &str) -> u128 {
    u128::from(amt(text).cents())
}
pub fn secret(text: &str) -> CodeSecret {
    CodeSecret::new(text.as_bytes()).expect("secret")
}
pub fn card(n: u8) -> CardId {
    CardId([n; 16])
}

pub fn profile(name: &str, category: &str) -> MerchantProfile {
    MerchantProfile {
        key: pk(name),
        name: name.to_owned(),
        category: category.to_owned(),
        district: "riverside".to_owned(),
        latitude_e6: 31_230_416,
        longitude_e6: 121_473_701,
        network_key: Some(key(&format!("{name}/net")).public()),
    }
}

pub fn genesis_with(policy: Policy) -> Genesis {
    let mut members: Vec<MerchantProfile> = MERCHANTS.iter().map(|(n, c)| profile(n, c)).collect();
    members.sort_by(|a, b| a.key.cmp(&b.key));
    let validators = ValidatorSet::new(
        ["hotpot", "gym", "school"].iter().map(|n| Validator { key: pk(n), network_key: key(&format!("{n}/net")).public() }).collect(),
    )
    .expect("validators");
    let categories = ["education", "fitness", "grocery", "restaurant"]
        .iter()
        .map(|c| Named { code: (*c).into(), name: (*c).into() })
        .collect();
    let g = Genesis {
        name: "Riverside".into(),
        currency: "CNY".into(),
        utc_offset_minutes: 480,
        time_ms: T0,
        categories,
        districts: vec![Named { code: "riverside".into(), name: "Riverside".into() }],
        members,
        validators,
        policy,
        promoters: Vec::new(),
    };
    g.validate().expect("test genesis is valid");
    g
}

/// The default policy, with a 0.01 minimum payout so scenarios see every net paid.
pub fn test_policy() -> Policy {
    let mut p = Policy::default_v1(T0);
    p.min_payout = Amount::from_cents(1).expect("cent");
    p
}

pub struct Sim {
    pub genesis: Genesis,
    pub state: State,
    pub now: u64,
    pub statements: Vec<Statement>,
    nonce: u64,
}

impl Sim {
    pub fn new() -> Sim {
        Sim::with_policy(test_policy())
    }
    pub fn with_policy(policy: Policy) -> Sim {
        let genesis = genesis_with(policy);
        let state = State::from_genesis(&genesis);
        Sim { genesis, state, now: T0 + 9 * 3_600_000, statements: Vec::new(), nonce: 0 }
    }
    pub fn alliance(&self) -> Hash {
        self.state.alliance_id()
    }
    pub fn record(&mut self, who: &str, payload: Payload) -> Record {
        // Every block advances `now`, so records submitted one per block never repeat.
        self.nonce += 1;
        let body = RecordBody { alliance: self.alliance(), signer: pk(who), created_at_ms: self.now, payload };
        let r = Record::sign(body, &key(who));
        r.check(&self.alliance()).expect("test records are well-formed");
        r
    }
    pub fn block(&mut self, records: Vec<Record>) -> BlockOutcome {
        let out = self.state.apply_block(self.now, &records).expect("valid block");
        if let Some(s) = &out.statement {
            self.statements.push(s.clone());
        }
        self.now += 1;
        out
    }
    /// Submits one record in its own block and returns its receipt code.
    pub fn submit(&mut self, who: &str, payload: Payload) -> Code {
        let r = self.record(who, payload);
        let out = self.block(vec![r]);
        out.receipts[0].code().expect("known code")
    }
    pub fn submit_id(&mut self, who: &str, payload: Payload) -> (Hash, Code) {
        let r = self.record(who, payload);
        let id = r.id();
        let out = self.block(vec![r]);
        (id, out.receipts[0].code().expect("known code"))
    }
    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
    }
    /// An empty block after `days` days: returns the statement it closed.
    pub fn close_after(&mut self, days: u64) -> Statement {
        self.now += days * DAY_MS;
        self.block(Vec::new()).statement.expect("a period closed")
    }
    /// Every proposal needs > 2/3 of 5 active members: the proposer and three more.
    pub fn pass(&mut self, action: Action) -> Hash {
        let (id, code) = self.submit_id("hotpot", Payload::Propose { action });
        assert_eq!(code, Code::Accepted);
        for voter in ["gym", "school", "mart"] {
            assert_eq!(self.submit(voter, Payload::Vote { proposal: id, approve: true }), Code::Accepted);
        }
        id
    }
    pub fn sale(&mut self, seller: &str, order: &str, gross: &str, base: &str) -> SaleBuilder {
        SaleBuilder {
            seller: seller.to_owned(),
            payload: Payload::Sale {
                order: order.into(),
                gross: amt(gross),
                base: amt(base),
                card: None,
                referral_code: None,
                coupon_codes: Vec::new(),
                points_redeemed: 0,
            },
        }
    }
    pub fn refer(&mut self, who: &str, code: &str, card: Option<CardId>, promoter: Option<&str>, valid_at: Vec<Place>, days: u64) -> Code {
        let payload = Payload::Refer {
            code_hash: secret(code).hash(),
            card,
            promoter: promoter.map(|p| PromoterId::new(p).expect("id")),
            upstream: None,
            valid_at,
            expires_at_ms: self.now + days * DAY_MS,
            multi_use: false,
        };
        self.submit(who, payload)
    }
}

pub struct SaleBuilder {
    pub seller: String,
    pub payload: Payload,
}
impl SaleBuilder {
    pub fn card(mut self, c: CardId) -> Self {
        if let Payload::Sale { card, .. } = &mut self.payload {
            *card = Some(c);
        }
        self
    }
    pub fn referral(mut self, code: &str) -> Self {
        if let Payload::Sale { referral_code, .. } = &mut self.payload {
            *referral_code = Some(secret(code));
        }
        self
    }
    pub fn coupon(mut self, code: &str) -> Self {
        if let Payload::Sale { coupon_codes, .. } = &mut self.payload {
            coupon_codes.push(secret(code));
        }
        self
    }
    pub fn points(mut self, p: u64) -> Self {
        if let Payload::Sale { points_redeemed, .. } = &mut self.payload {
            *points_redeemed = p;
        }
        self
    }
    pub fn submit(self, sim: &mut Sim) -> Code {
        sim.submit(&self.seller.clone(), self.payload)
    }
}

/// The amount of one line, 0 if absent.
pub fn line(s: &Statement, debtor: &Party, creditor: &Party, kind: LineKind) -> u128 {
    s.lines.iter().find(|l| &l.debtor == debtor && &l.creditor == creditor && l.kind == kind).map_or(0, |l| l.amount)
}

pub fn refund(order: &str, id: &str, amount: &str) -> Payload {
    Payload::Refund { order: order.into(), refund_id: id.into(), amount: amt(amount) }
}
