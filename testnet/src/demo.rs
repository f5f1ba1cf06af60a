//! The alliance day played on a local testnet (`plaza testnet --demo`): governance by vote,
//! cards, referrals, coupons, points, a rejected competitor referral and double redemption,
//! an agreement, refunds before and after locking, a policy change, two statements and a
//! confirmed payment. Every step checks the receipt it expects.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plaza_ledger::policy::DAY_MS;
use serde_json::{json, Value};

use crate::api::{self, PolicyAnswer, Proposal, RecordState, Statement};
use crate::local::{LocalNode, LocalTestnet};
use crate::Error;

/// What the demo reports as it goes, for the caller to print.
pub enum DemoEvent<'a> {
    /// A heading ("morning:").
    Section(&'a str),
    /// One record submitted and final.
    Step { number: usize, merchant: &'a str, what: &'a str, receipt: &'a str, height: u64 },
    /// Every node's clock moved forward.
    Clock { hours: f64, why: &'a str },
}

/// The day's outcome: the two statements and the common chain.
pub struct DemoOutcome {
    pub statements: Vec<Statement>,
    pub height: u64,
    pub tip: plaza_ledger::Hash,
    /// Merchant key (hex) → name, to print parties by name.
    pub names: Vec<(String, String)>,
}

impl DemoOutcome {
    /// A party (`merchant:<key>`, `promoter:<id>`, …) by the merchant's name when it is one.
    pub fn name_of(&self, party: &str) -> String {
        let key = party.trim_start_matches("merchant:");
        self.names.iter().find(|(k, _)| k == key).map_or_else(|| party.to_owned(), |(_, n)| n.clone())
    }
}

struct Demo<'a> {
    net: &'a mut LocalTestnet,
    stop: &'a AtomicBool,
    step: usize,
    report: &'a mut dyn FnMut(DemoEvent<'_>),
}

impl Demo<'_> {
    fn node_for(&self, merchant: usize) -> &LocalNode {
        self.net.nodes.iter().find(|n| n.merchant == merchant).unwrap_or(&self.net.nodes[merchant % self.net.nodes.len()])
    }
    fn key(&self, m: usize) -> String {
        self.net.merchants[m].keypair.public().to_hex()
    }
    fn clock(&self) -> Result<u64, Error> {
        Ok(api::status(&self.net.nodes[0].client()?)?.clock_ms)
    }

    /// Signs `payload` as merchant `m` (client-side) and submits it through that merchant's
    /// node (or another for merchants without one), waiting for finality. Returns the state.
    fn submit(&mut self, m: usize, what: &str, payload: Value) -> Result<(String, String), Error> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(Error::failed("interrupted"));
        }
        let client = self.node_for(m).client()?;
        let status = api::status(&client)?;
        let payload = api::with_default_base(&client, payload, &self.net.merchants[m].keypair.public(), status.clock_ms)?;
        let record = api::sign_payload(&payload, &self.net.merchants[m].keypair, status.alliance()?, status.clock_ms)?;
        let answer: RecordState = api::submit_wait(&client, &record).map_err(|e| Error::failed(format!("{what}: {e}")))?;
        let (Some(height), Some(receipt)) = (answer.height.filter(|_| answer.is_final()), answer.receipt.as_ref()) else {
            return Err(Error::failed(format!("{what}: the record is {} after waiting, not final", answer.status)));
        };
        // The record is final on the node it went to; every later step may read any node, so
        // wait until all of them hold that block too.
        self.net.wait_height(height, Duration::from_secs(30), self.stop)?;
        self.step += 1;
        let merchant = self.net.merchants[m].name;
        (self.report)(DemoEvent::Step { number: self.step, merchant, what, receipt: &receipt.name, height });
        Ok((answer.id, receipt.name.clone()))
    }

    fn expect(&mut self, m: usize, what: &str, payload: Value, expected: &str) -> Result<String, Error> {
        let (id, name) = self.submit(m, what, payload)?;
        if name != expected {
            return Err(Error::failed(format!("demo step {what:?}: expected receipt {expected}, got {name}")));
        }
        Ok(id)
    }

    /// Moves every node's clock forward (testnet_clock_api), then waits for a block after it.
    fn advance_clock(&mut self, ms: u64, why: &str) -> Result<(), Error> {
        for n in &self.net.nodes {
            let _: Value = api::post(&n.client()?, "/v1/testnet/clock", &json!({"advance_ms": ms}))?;
        }
        let target = self.clock()?;
        (self.report)(DemoEvent::Clock { hours: ms as f64 / 3_600_000.0, why });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = api::status(&self.net.nodes[0].client()?)?;
            if status.last_block_time_ms >= target.saturating_sub(1_000) {
                return Ok(());
            }
            if Instant::now() > deadline || self.stop.load(Ordering::SeqCst) {
                return Err(Error::failed("no block after the clock moved"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A closed period's statement. The node shows a finalized block's state a moment before
    /// its store holds the block's statement (the state moves first), so a statement that is
    /// not there yet is asked for again, for up to 10 s.
    fn statement(&self, period: u64) -> Result<Statement, Error> {
        let client = self.net.nodes[0].client()?;
        let path = format!("/v1/statements/{period}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match api::get(&client, &path) {
                Ok(statement) => return Ok(statement),
                Err(_) if Instant::now() < deadline && !self.stop.load(Ordering::SeqCst) => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Plays the day on a started testnet made with `demo` merchants; reports each step.
pub fn run_demo(net: &mut LocalTestnet, stop: &AtomicBool, report: &mut dyn FnMut(DemoEvent<'_>)) -> Result<DemoOutcome, Error> {
    const HOTPOT: usize = 0;
    const GYM: usize = 1;
    const SCHOOL: usize = 2;
    const MARKET: usize = 3;
    const NOODLE: usize = 4;
    const CINEMA: usize = 5;
    if net.merchants.len() <= CINEMA {
        return Err(Error::failed("the demo needs a testnet prepared with its six merchants"));
    }
    let mut d = Demo { net, stop, step: 0, report };
    let card_market = hex::encode([0x11u8; 16]);
    let card_hotpot = hex::encode([0x22u8; 16]);
    (d.report)(DemoEvent::Section("morning:"));
    // Governance: promoters are registered by vote (S2); the proposal counts as the proposer's vote.
    let voters = [GYM, SCHOOL, MARKET, CINEMA];
    for (id, name, upstream) in [("agency-sun", "Sun Media Agency", None), ("kol-lily", "Lily (food & fitness KOL)", Some("agency-sun"))] {
        let p = d.expect(
            HOTPOT,
            &format!("propose: register promoter {id}"),
            json!({"kind": "propose", "action": {"type": "register_promoter", "id": id, "name": name, "upstream": upstream}}),
            "accepted",
        )?;
        for v in voters {
            d.expect(v, &format!("vote yes on promoter {id}"), json!({"kind": "vote", "proposal": p, "approve": true}), "accepted")?;
        }
    }
    let now = d.clock()?;
    let expires = now + 20 * DAY_MS;
    d.expect(MARKET, "issue member card (home: FreshMart)", json!({"kind": "issue_card", "card": card_market}), "accepted")?;
    d.expect(HOTPOT, "issue member card (home: Hot Pot Palace)", json!({"kind": "issue_card", "card": card_hotpot}), "accepted")?;
    d.expect(
        MARKET,
        "refer a customer to gyms via kol-lily (S1, S2)",
        json!({"kind": "refer", "code": "REF-MARKET-0001", "card": card_market, "promoter": "kol-lily", "valid_at": ["category:fitness"], "expires_at_ms": expires}),
        "accepted",
    )?;
    let (_, isolation) = d.submit(
        HOTPOT,
        "refer to its competitor Noodle House (S5)",
        json!({"kind": "refer", "code": "REF-HOTPOT-0001", "valid_at": [format!("merchant:{}", d.key(NOODLE))], "expires_at_ms": expires}),
    )?;
    if isolation == "accepted" {
        return Err(Error::failed("competitor isolation (S5) did not reject a referral to a competitor"));
    }
    d.expect(
        HOTPOT,
        "issue 3 coupons 30.00 for the cinema (issuer-funded)",
        json!({"kind": "issue_coupons", "batch": "HOTPOT-MOVIE", "codes": ["CPN-HOT-0001", "CPN-HOT-0002", "CPN-HOT-0003"], "value": {"fixed": "30.00"}, "min_spend": "80.00", "redeemable_at": ["category:entertainment"], "funding": "issuer", "expires_at_ms": expires}),
        "accepted",
    )?;
    d.expect(
        SCHOOL,
        "issue 2 coupons 10% at FreshMart (redeemer-funded)",
        json!({"kind": "issue_coupons", "batch": "SCHOOL-GROCERY", "codes": ["CPN-SCH-0001", "CPN-SCH-0002"], "value": {"percent_bps": 1000}, "redeemable_at": [format!("merchant:{}", d.key(MARKET))], "funding": "redeemer", "expires_at_ms": expires}),
        "accepted",
    )?;
    d.expect(
        GYM,
        "sale 3000.00 to the referred card (S1–S4)",
        json!({"kind": "sale", "order": "GYM-0001", "gross": "3000.00", "card": card_market, "referral_code": "REF-MARKET-0001"}),
        "accepted",
    )?;
    d.expect(HOTPOT, "sale 468.00 to FreshMart's card, earns points (S3, S7)", json!({"kind": "sale", "order": "HP-0001", "gross": "468.00", "card": card_market}), "accepted")?;
    d.expect(HOTPOT, "sale 236.00 to its own card", json!({"kind": "sale", "order": "HP-0002", "gross": "236.00", "card": card_hotpot}), "accepted")?;
    d.expect(
        CINEMA,
        "sale 120.00, coupon CPN-HOT-0001 + 300 points; base: what the rules allow (S6, S7)",
        json!({"kind": "sale", "order": "CIN-0001", "gross": "120.00", "card": card_market, "coupon_codes": ["CPN-HOT-0001"], "points_redeemed": 300}),
        "accepted",
    )?;
    d.expect(MARKET, "sale 85.00 with school coupon CPN-SCH-0001", json!({"kind": "sale", "order": "FM-0001", "gross": "85.00", "base": "76.50", "coupon_codes": ["CPN-SCH-0001"]}), "accepted")?;
    let (_, double) = d.submit(
        NOODLE,
        "redeem CPN-HOT-0001 again (S6: single use)",
        json!({"kind": "sale", "order": "NH-0001", "gross": "99.00", "coupon_codes": ["CPN-HOT-0001"]}),
    )?;
    if double == "accepted" {
        return Err(Error::failed("a coupon was redeemed twice"));
    }
    d.expect(NOODLE, "sale 58.00 (no card)", json!({"kind": "sale", "order": "NH-0002", "gross": "58.00"}), "accepted")?;
    let agreement = d.expect(
        GYM,
        "agreement: gym pays school 50.00 per period (S9)",
        json!({"kind": "agreement", "agreement_id": "GYM-SCHOOL-2026", "counterparty": d.key(SCHOOL), "terms": {"fixed_fee": {"payer": d.key(GYM), "amount": "50.00"}}, "starts_at_ms": now}),
        "accepted",
    )?;
    d.expect(SCHOOL, "accept the agreement", json!({"kind": "accept", "agreement": agreement}), "accepted")?;
    d.expect(HOTPOT, "refund 68.00 of HP-0001 before lock (S8)", json!({"kind": "refund", "order": "HP-0001", "refund_id": "HP-0001-R1", "amount": "68.00"}), "accepted")?;
    // A policy change by vote: a higher referral rate from a minute from now.
    let policy: PolicyAnswer = api::get(&d.net.nodes[0].client()?, "/v1/policy")?;
    let mut v2 = policy.in_force;
    v2.version = 2;
    v2.effective_at_ms = d.clock()? + 60_000;
    v2.referral_rate_bps = 800;
    let p = d.expect(MARKET, "propose policy v2: referral rate 5% → 8%", json!({"kind": "propose", "action": {"type": "publish_policy", "policy": v2}}), "accepted")?;
    for v in [HOTPOT, GYM, SCHOOL, CINEMA] {
        d.expect(v, "vote yes on policy v2", json!({"kind": "vote", "proposal": p, "approve": true}), "accepted")?;
    }
    let proposal: Proposal = api::get(&d.net.nodes[0].client()?, &format!("/v1/proposals/{p}"))?;
    if proposal.status != "passed" {
        return Err(Error::failed(format!("policy v2 did not pass: {}", proposal.status)));
    }

    // Two days later: the morning's items locked; statement 0 closes.
    let now = d.clock()?;
    let offset = 480 * 60_000;
    let next_midnight = ((now + offset) / DAY_MS + 1) * DAY_MS - offset;
    d.advance_clock(next_midnight + DAY_MS + 60_000 - now, "two midnights later: the morning's items have locked")?;
    (d.report)(DemoEvent::Section("two days later:"));
    let now = d.clock()?;
    d.expect(
        MARKET,
        "refer again at the new 8% rate",
        json!({"kind": "refer", "code": "REF-MARKET-0002", "promoter": "kol-lily", "valid_at": ["category:fitness"], "expires_at_ms": now + DAY_MS}),
        "accepted",
    )?;
    d.expect(GYM, "sale 1000.00 with the new referral", json!({"kind": "sale", "order": "GYM-0002", "gross": "1000.00", "referral_code": "REF-MARKET-0002"}), "accepted")?;
    d.expect(GYM, "refund 600.00 of GYM-0001 after lock (clawback)", json!({"kind": "refund", "order": "GYM-0001", "refund_id": "GYM-0001-R1", "amount": "600.00"}), "accepted")?;
    let statement0 = d.statement(0)?;
    // A payee between two merchants confirms it was paid (S12: the money moves outside Plaza).
    let transfer = statement0.payment_plan.iter().find(|t| t.payee.starts_with("merchant:") && t.payer.starts_with("merchant:")).cloned();
    if let Some(t) = transfer {
        let payee = t.payee.trim_start_matches("merchant:");
        let payer = t.payer.trim_start_matches("merchant:");
        if let Some(m) = d.net.merchants.iter().position(|m| m.keypair.public().to_hex() == payee) {
            d.expect(
                m,
                &format!("confirm {} received from the plan", t.amount),
                json!({"kind": "confirm_payment", "period": 0, "payer": payer, "amount": t.amount}),
                "accepted",
            )?;
        }
    }
    d.advance_clock(DAY_MS, "the next midnight: statement 1 with the clawback")?;
    let statement1 = d.statement(1)?;
    // SETTLEMENT decision 17: every transfer of a plan has a merchant payer, so it can be
    // confirmed; promoters' debts are carried, never billed.
    for s in [&statement0, &statement1] {
        if let Some(t) = s.payment_plan.iter().find(|t| !t.payer.starts_with("merchant:")) {
            return Err(Error::failed(format!("statement {} asks a non-merchant to pay: {} pays {} {}", s.period, t.payer, t.payee, t.amount)));
        }
    }
    let (height, tip) = d.net.check_same_chain(Duration::from_secs(60))?;
    let names = d.net.merchants.iter().map(|m| (m.keypair.public().to_hex(), m.name.to_owned())).collect();
    Ok(DemoOutcome { statements: vec![statement0, statement1], height, tip, names })
}
