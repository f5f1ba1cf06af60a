//! The worked scenarios of docs/SETTLEMENT.md, one test each, named after their rule.

mod settlement_support;

use plaza_ledger::codec::Encode;
use plaza_ledger::contract::{InvalidBlock, LineKind, State};
use plaza_ledger::money::{Amount, Bps};
use plaza_ledger::policy::{DAY_MS, HOUR_MS};
use plaza_ledger::receipt::Code;
use plaza_ledger::record::*;
use settlement_support::*;

fn issue_card(sim: &mut Sim, home: &str, c: CardId) {
    assert_eq!(sim.submit(home, Payload::IssueCard { card: c }), Code::Accepted);
}

fn register_promoters(sim: &mut Sim) {
    sim.pass(Action::RegisterPromoter { id: PromoterId::new("kol-lead").unwrap(), name: "Lead".into(), upstream: None });
    sim.pass(Action::RegisterPromoter {
        id: PromoterId::new("kol-a").unwrap(),
        name: "A".into(),
        upstream: Some(PromoterId::new("kol-lead").unwrap()),
    });
    sim.pass(Action::RegisterPromoter {
        id: PromoterId::new("kol-b").unwrap(),
        name: "B".into(),
        upstream: Some(PromoterId::new("kol-a").unwrap()),
    });
}

#[test]
fn s1_referral_inside_the_window_pays_once() {
    let mut sim = Sim::new();
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![Place::Merchant(pk("hotpot"))], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").referral("gym-ref-0001").submit(&mut sim), Code::Accepted);
    // One sale per code: the window closed at the first sale.
    assert_eq!(sim.sale("hotpot", "o-2", "50.00", "50.00").referral("gym-ref-0001").submit(&mut sim), Code::ReferralUsed);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), cents("10.00")); // 5% of 200.00
    assert_eq!(s.net_of(&m("gym")), 1000);
    assert_eq!(s.net_of(&m("hotpot")), -1000);
    assert_eq!(s.transfers.len(), 1);
}

#[test]
fn s1_referral_after_the_window_is_rejected() {
    let mut sim = Sim::new();
    assert_eq!(sim.refer("gym", "gym-ref-0002", None, None, vec![], 1), Code::Accepted);
    sim.advance(DAY_MS + 1);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("gym-ref-0002").submit(&mut sim), Code::ReferralExpired);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("no-such-code").submit(&mut sim), Code::UnknownReferral);
    assert_eq!(
        sim.refer("gym", "gym-ref-0003", None, None, vec![Place::Merchant(pk("school"))], 1),
        Code::Accepted
    );
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("gym-ref-0003").submit(&mut sim), Code::ReferralNotValidHere);
}

#[test]
fn s1_last_touch_binds_the_cards_latest_referral() {
    let mut sim = Sim::new();
    issue_card(&mut sim, "school", card(1));
    assert_eq!(sim.refer("gym", "gym-touch-01", Some(card(1)), None, vec![], 7), Code::Accepted);
    assert_eq!(sim.refer("mart", "mart-touch-1", Some(card(1)), None, vec![], 7), Code::Accepted);
    // No code presented: the card's last touch (mart) earns the referral.
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").card(card(1)).submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("mart"), LineKind::Referral), cents("5.00"));
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), 0);
    assert_eq!(line(&s, &m("hotpot"), &m("school"), LineKind::HomeShare), cents("2.00"));
}

#[test]
fn s2_promoter_and_upstream_two_levels_never_three() {
    let mut sim = Sim::new();
    register_promoters(&mut sim);
    assert_eq!(sim.refer("gym", "kol-a-code-1", None, Some("kol-a"), vec![], 7), Code::Accepted);
    assert_eq!(sim.refer("gym", "kol-b-code-1", None, Some("kol-b"), vec![], 7), Code::Accepted);
    assert_eq!(sim.refer("gym", "kol-x-code-1", None, Some("kol-x"), vec![], 7), Code::UnknownPromoter);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("kol-a-code-1").submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-2", "100.00", "100.00").referral("kol-b-code-1").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), cents("10.00"));
    // o-1: kol-a 3% and its upstream kol-lead 1%. o-2: kol-b 3%, upstream kol-a 1%, kol-lead nothing.
    assert_eq!(line(&s, &m("hotpot"), &promoter("kol-a"), LineKind::Promoter), cents("3.00"));
    assert_eq!(line(&s, &m("hotpot"), &promoter("kol-lead"), LineKind::Upstream), cents("1.00"));
    assert_eq!(line(&s, &m("hotpot"), &promoter("kol-b"), LineKind::Promoter), cents("3.00"));
    assert_eq!(line(&s, &m("hotpot"), &promoter("kol-a"), LineKind::Upstream), cents("1.00"));
    assert_eq!(s.net_of(&promoter("kol-lead")), 100);
}

#[test]
fn s2_upstream_named_must_match_the_registration() {
    let mut sim = Sim::new();
    register_promoters(&mut sim);
    let payload = Payload::Refer {
        code_hash: secret("mismatch-01").hash(),
        card: None,
        promoter: Some(PromoterId::new("kol-b").unwrap()),
        upstream: Some(PromoterId::new("kol-lead").unwrap()),
        valid_at: vec![],
        expires_at_ms: sim.now + DAY_MS,
        multi_use: false,
    };
    assert_eq!(sim.submit("gym", payload), Code::UpstreamMismatch);
}

#[test]
fn s3_home_merchant_share() {
    let mut sim = Sim::new();
    issue_card(&mut sim, "school", card(2));
    assert_eq!(sim.sale("hotpot", "o-1", "80.00", "80.00").card(card(2)).submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("school", "o-1", "80.00", "80.00").card(card(2)).submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("school"), LineKind::HomeShare), cents("1.60")); // 2% of 80.00
    assert_eq!(s.lines.iter().filter(|l| l.kind == LineKind::HomeShare).count(), 1);
}

#[test]
fn s4_cap_scales_payouts_by_largest_remainder() {
    let mut policy = test_policy();
    policy.referral_rate = Bps(2000);
    policy.promoter_rate = Bps(1000);
    policy.upstream_rate = Bps(500);
    policy.home_rate = Bps(500);
    let mut sim = Sim::with_policy(policy);
    register_promoters(&mut sim);
    issue_card(&mut sim, "school", card(3));
    assert_eq!(sim.refer("gym", "cap-code-01", None, Some("kol-a"), vec![], 7), Code::Accepted);
    // base 33.33: 6.67 + 3.33 + 1.67 + 1.67 = 13.34 > cap 30% = 10.00 (9.999 rounded).
    assert_eq!(sim.sale("hotpot", "o-1", "33.33", "33.33").card(card(3)).referral("cap-code-01").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    let gym = line(&s, &m("hotpot"), &m("gym"), LineKind::Referral);
    let school = line(&s, &m("hotpot"), &m("school"), LineKind::HomeShare);
    let kol_a = line(&s, &m("hotpot"), &promoter("kol-a"), LineKind::Promoter);
    let lead = line(&s, &m("hotpot"), &promoter("kol-lead"), LineKind::Upstream);
    assert_eq!(gym + school + kol_a + lead, cents("10.00"));
    // 1000 × 667/1334 = 500; 333 → 249.625; 167 → 125.187 twice; the one cent left goes to 0.625.
    assert_eq!((gym, kol_a, school, lead), (500, 250, 125, 125));
}

#[test]
fn s5_competitor_isolation() {
    let mut sim = Sim::new();
    // Referral to a competitor rejected; listing a competitor's category rejected.
    assert_eq!(sim.refer("noodles", "noodle-ref-1", None, None, vec![Place::Merchant(pk("hotpot"))], 7), Code::CompetitorIsolation);
    assert_eq!(
        sim.refer("noodles", "noodle-ref-2", None, None, vec![Place::Category("restaurant".into())], 7),
        Code::CompetitorIsolation
    );
    let coupons = Payload::IssueCoupons {
        batch: "nd-1".into(),
        code_hashes: vec![secret("noodle-coupon").hash()],
        value: CouponValue::Fixed(amt("5.00")),
        min_spend: Amount::ZERO,
        redeemable_at: vec![Place::Merchant(pk("hotpot"))],
        funding: Funding::Issuer,
        expires_at_ms: sim.now + DAY_MS,
    };
    assert_eq!(sim.submit("noodles", coupons), Code::CompetitorIsolation);
    // An open referral by a competitor is refused at the sale.
    assert_eq!(sim.refer("noodles", "noodle-ref-3", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "10.00", "10.00").referral("noodle-ref-3").submit(&mut sim), Code::CompetitorIsolation);
    // No home share between competitors.
    issue_card(&mut sim, "noodles", card(4));
    assert_eq!(sim.sale("hotpot", "o-2", "100.00", "100.00").card(card(4)).submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert!(s.lines.is_empty());
}

fn issue_coupon(sim: &mut Sim, issuer: &str, batch: &str, code: &str, value: CouponValue, min: &str, funding: Funding) -> Code {
    let payload = Payload::IssueCoupons {
        batch: batch.into(),
        code_hashes: vec![secret(code).hash()],
        value,
        min_spend: amt(min),
        redeemable_at: vec![Place::Merchant(pk("hotpot"))],
        funding,
        expires_at_ms: sim.now + 30 * DAY_MS,
    };
    sim.submit(issuer, payload)
}

#[test]
fn s6_issuer_and_redeemer_funded_coupons_and_double_redemption() {
    let mut sim = Sim::new();
    assert_eq!(issue_coupon(&mut sim, "gym", "b1", "gym-coupon-1", CouponValue::Fixed(amt("20.00")), "100.00", Funding::Issuer), Code::Accepted);
    assert_eq!(issue_coupon(&mut sim, "gym", "b2", "gym-coupon-2", CouponValue::Percent(Bps(1000)), "0", Funding::Redeemer), Code::Accepted);
    assert_eq!(issue_coupon(&mut sim, "gym", "b1", "gym-coupon-3", CouponValue::Fixed(amt("1.00")), "0", Funding::Issuer), Code::DuplicateBatch);
    assert_eq!(sim.sale("hotpot", "o-0", "99.99", "79.99").coupon("gym-coupon-1").submit(&mut sim), Code::BelowMinSpend);
    assert_eq!(sim.sale("hotpot", "o-0", "150.00", "150.00").coupon("gym-coupon-1").submit(&mut sim), Code::BaseTooHigh);
    assert_eq!(sim.sale("hotpot", "o-1", "150.00", "130.00").coupon("gym-coupon-1").submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-2", "150.00", "130.00").coupon("gym-coupon-1").submit(&mut sim), Code::CouponRedeemed);
    assert_eq!(sim.sale("hotpot", "o-3", "50.00", "45.00").coupon("gym-coupon-2").submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("school", "o-4", "50.00", "45.00").coupon("unknown-coupon").submit(&mut sim), Code::UnknownCoupon);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("gym"), &m("hotpot"), LineKind::CouponClearing), cents("20.00"));
    assert_eq!(s.lines.len(), 1, "a redeemer-funded coupon creates no claim");
    let view = sim.state.coupon(&secret("gym-coupon-1").hash()).unwrap();
    assert_eq!(view.redeemed_by, Some((pk("hotpot"), "o-1".to_owned())));
}

#[test]
fn s6_revocation_inside_and_outside_the_window() {
    let mut sim = Sim::new();
    issue_coupon(&mut sim, "gym", "b1", "gym-coupon-1", CouponValue::Fixed(amt("20.00")), "0", Funding::Issuer);
    issue_coupon(&mut sim, "gym", "b2", "gym-coupon-2", CouponValue::Fixed(amt("20.00")), "0", Funding::Issuer);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "80.00").coupon("gym-coupon-1").submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-2", "100.00", "80.00").coupon("gym-coupon-2").submit(&mut sim), Code::Accepted);
    sim.advance(30 * 60_000);
    let revoke = |c: &str, o: &str| Payload::RevokeRedemption { order: o.into(), code_hash: secret(c).hash() };
    assert_eq!(sim.submit("hotpot", revoke("gym-coupon-1", "o-1")), Code::Accepted);
    assert_eq!(sim.submit("hotpot", revoke("gym-coupon-1", "o-1")), Code::UnknownRedemption);
    sim.advance(HOUR_MS);
    assert_eq!(sim.submit("hotpot", revoke("gym-coupon-2", "o-2")), Code::RevocationWindowClosed);
    // The revoked coupon can be redeemed again.
    assert_eq!(sim.sale("hotpot", "o-3", "100.00", "80.00").coupon("gym-coupon-1").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("gym"), &m("hotpot"), LineKind::CouponClearing), cents("40.00"));
    let l = s.lines.iter().find(|l| l.kind == LineKind::CouponClearing).unwrap();
    assert_eq!(l.sources.len(), 2, "o-2 and o-3; o-1's claim was revoked");
}

#[test]
fn s7_points_earn_hold_fifo_redeem_elsewhere_and_breakage() {
    let mut sim = Sim::new();
    issue_card(&mut sim, "school", card(5));
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").card(card(5)).submit(&mut sim), Code::Accepted); // 100 pts from hotpot
    // Held for a day.
    assert_eq!(sim.sale("gym", "g-1", "10.00", "10.00").card(card(5)).points(10).submit(&mut sim), Code::PointsOverdrawn);
    assert_eq!(sim.sale("gym", "g-1", "10.00", "10.00").points(10).submit(&mut sim), Code::PointsWithoutCard);
    sim.advance(DAY_MS / 2);
    assert_eq!(sim.sale("mart", "m-1", "50.99", "50.99").card(card(5)).submit(&mut sim), Code::Accepted); // 50 pts from mart (rounded down)
    sim.advance(DAY_MS);
    let view = sim.state.card(&card(5), sim.now).unwrap();
    assert_eq!((view.points, view.spendable), (150, 150));
    // 120 at gym: the hotpot lot expires first, so 100 from hotpot, then 20 from mart. Their
    // issuers pay for them (1.20), so the base is at most 10.00 − 1.20 (decision 7).
    assert_eq!(sim.sale("gym", "g-2", "10.00", "10.00").card(card(5)).points(120).submit(&mut sim), Code::BaseIncludesPoints);
    assert_eq!(sim.sale("gym", "g-2", "10.00", "8.80").card(card(5)).points(120).submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("gym", "g-3", "10.00", "8.80").card(card(5)).points(41).submit(&mut sim), Code::PointsOverdrawn);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::PointsClearing), cents("1.00"));
    assert_eq!(line(&s, &m("mart"), &m("gym"), LineKind::PointsClearing), cents("0.20"));
    // Breakage: a year later every lot has lapsed; nobody is paid for them.
    let later = sim.now + 366 * DAY_MS;
    assert_eq!(sim.state.card(&card(5), later).unwrap().points, 0);
}

#[test]
fn s8_refund_before_lock_is_pro_rata_and_spent_points_go_negative() {
    let mut sim = Sim::new();
    issue_card(&mut sim, "school", card(6));
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").card(card(6)).referral("gym-ref-0001").submit(&mut sim), Code::Accepted);
    sim.advance(DAY_MS + 1);
    // Spend 180 of the 200 points at mart.
    assert_eq!(sim.sale("mart", "m-1", "10.00", "8.20").card(card(6)).points(180).submit(&mut sim), Code::Accepted);
    // Refund 50.00 of 200.00 (25%): referral 10.00 → 7.50, home 4.00 → 3.00; 50 points cancelled: 20 left, 30 short.
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-1", "50.00")), Code::Accepted);
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-1", "1.00")), Code::DuplicateRefund);
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-2", "150.01")), Code::OverRefund);
    assert_eq!(sim.submit("hotpot", refund("o-9", "r-1", "1.00")), Code::UnknownOrder);
    let view = sim.state.card(&card(6), sim.now).unwrap();
    // mart's sale (base 8.20: hotpot pays for the 1.80 of points) earned 8 points (held),
    // hotpot's lot was spent down to 20, then cancelled.
    assert_eq!(view.debt, 30);
    assert_eq!(sim.state.points_balance(&card(6), sim.now), Some(8 - 30));
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), cents("7.50"));
    assert_eq!(line(&s, &m("hotpot"), &m("school"), LineKind::HomeShare), cents("3.00"));
    assert_eq!(line(&s, &m("hotpot"), &m("mart"), LineKind::PointsClearing), cents("1.80"), "spent points stay paid");
}

#[test]
fn s8_a_refunded_sale_that_paid_off_a_points_debt_restores_the_debt() {
    let mut sim = Sim::new();
    issue_card(&mut sim, "school", card(16));
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").card(card(16)).submit(&mut sim), Code::Accepted); // 100 pts
    sim.advance(DAY_MS + 1);
    assert_eq!(sim.sale("mart", "m-1", "10.00", "9.00").card(card(16)).points(100).submit(&mut sim), Code::Accepted);
    // Refunding hotpot's sale in full cancels its 100 points, all spent: the card owes 100.
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-1", "100.00")), Code::Accepted);
    assert_eq!(sim.state.card(&card(16), sim.now).unwrap().debt, 100);
    // A new hotpot sale earns 30 points, all of which pay off the debt (no lot)...
    assert_eq!(sim.sale("hotpot", "o-2", "30.00", "30.00").card(card(16)).submit(&mut sim), Code::Accepted);
    assert_eq!(sim.state.card(&card(16), sim.now).unwrap().debt, 70);
    // ...and refunding that sale cancels those 30 points again: the debt is back to 100.
    assert_eq!(sim.submit("hotpot", refund("o-2", "r-2", "30.00")), Code::Accepted);
    assert_eq!(sim.state.card(&card(16), sim.now).unwrap().debt, 100, "a sale and its full refund leave the card as it was");
    // Partly: a debt of 100 absorbs all 50 points of a sale; refunding half of it brings 25 back.
    assert_eq!(sim.sale("hotpot", "o-3", "50.00", "50.00").card(card(16)).submit(&mut sim), Code::Accepted);
    assert_eq!(sim.state.card(&card(16), sim.now).unwrap().debt, 50);
    assert_eq!(sim.submit("hotpot", refund("o-3", "r-3", "25.00")), Code::Accepted);
    assert_eq!(sim.state.card(&card(16), sim.now).unwrap().debt, 75);
}

#[test]
fn s8_refund_after_lock_claws_back_in_the_next_statement() {
    let mut sim = Sim::new();
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").referral("gym-ref-0001").submit(&mut sim), Code::Accepted);
    let first = sim.close_after(8);
    assert_eq!(line(&first, &m("hotpot"), &m("gym"), LineKind::Referral), cents("10.00"));
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-1", "200.00")), Code::Accepted);
    let next = sim.close_after(1);
    assert_eq!(line(&next, &m("gym"), &m("hotpot"), LineKind::Clawback), cents("10.00"));
    assert_eq!(next.net_of(&m("gym")), -1000);
}

#[test]
fn s9_agreements_fixed_fee_and_rate_override() {
    let mut sim = Sim::new();
    let fee = Payload::Agreement {
        agreement_id: "fee-1".into(),
        counterparty: pk("school"),
        terms: Terms::FixedFee { payer: pk("hotpot"), amount: amt("50.00") },
        starts_at_ms: T0,
        ends_at_ms: None,
    };
    let (fee_id, code) = sim.submit_id("hotpot", fee);
    assert_eq!(code, Code::Accepted);
    assert_eq!(sim.submit("gym", Payload::Accept { agreement: fee_id }), Code::NotCounterparty);
    assert_eq!(sim.submit("school", Payload::Accept { agreement: fee_id }), Code::Accepted);
    assert_eq!(sim.submit("school", Payload::Accept { agreement: fee_id }), Code::AlreadyAccepted);
    let over = Payload::Agreement {
        agreement_id: "rate-1".into(),
        counterparty: pk("gym"),
        terms: Terms::RateOverride { referral_rate: Some(Bps(1000)), home_rate: None },
        starts_at_ms: T0,
        ends_at_ms: None,
    };
    let (over_id, _) = sim.submit_id("hotpot", over);
    assert_eq!(sim.submit("gym", Payload::Accept { agreement: over_id }), Code::Accepted);
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").referral("gym-ref-0001").submit(&mut sim), Code::Accepted);
    let first = sim.close_after(1);
    assert_eq!(line(&first, &m("hotpot"), &m("school"), LineKind::FixedFee), cents("50.00"));
    let s = sim.close_after(7);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), cents("20.00"), "override 10% of 200.00");
    assert_eq!(line(&s, &m("hotpot"), &m("school"), LineKind::FixedFee), cents("350.00"), "7 periods crossed");
}

#[test]
fn s10_statement_nets_bilateral_plan_and_rollover() {
    let mut policy = test_policy();
    policy.min_payout = amt("5.00");
    let mut sim = Sim::with_policy(policy);
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.refer("school", "sch-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.refer("hotpot", "hot-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").referral("gym-ref-0001").submit(&mut sim), Code::Accepted); // hotpot owes gym 10.00
    assert_eq!(sim.sale("mart", "o-1", "60.00", "60.00").referral("sch-ref-0001").submit(&mut sim), Code::Accepted); // mart owes school 3.00
    assert_eq!(sim.sale("gym", "o-1", "40.00", "40.00").referral("hot-ref-0001").submit(&mut sim), Code::Accepted); // gym owes hotpot 2.00
    let s = sim.close_after(8);
    assert_eq!(s.nets.iter().map(|(_, n)| n).sum::<i128>(), 0);
    assert_eq!(s.net_of(&m("gym")), 800);
    let bilateral = s.bilateral.iter().find(|b| (b.a == m("gym") || b.b == m("gym")) && (b.a == m("hotpot") || b.b == m("hotpot"))).unwrap();
    assert_eq!(bilateral.net.abs(), 800);
    // hotpot pays gym 8.00; mart's 3.00 to school is below min_payout and rolls over.
    assert_eq!(s.transfers.len(), 1);
    assert_eq!((s.transfers[0].payer.clone(), s.transfers[0].payee.clone(), s.transfers[0].amount), (m("hotpot"), m("gym"), 800));
    assert_eq!(s.rolled_over.len(), 1);
    let next = sim.close_after(1);
    assert_eq!(line(&next, &m("mart"), &m("school"), LineKind::Rollover), 300);
    assert_eq!(sim.state.statement(s.period).unwrap().hash, s.hash());
}

#[test]
fn s12_confirm_payment_closes_the_obligation() {
    let mut sim = Sim::new();
    register_promoters(&mut sim);
    assert_eq!(sim.refer("gym", "kol-a-code-1", None, Some("kol-a"), vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").referral("kol-a-code-1").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    let period = ConfirmPayment_period(&s);
    let confirm = |payer: &str, a: &str| Payload::ConfirmPayment { period, payer: pk(payer), amount: amt(a) };
    assert_eq!(sim.state.balance(&m("gym")).locked, cents("10.00"));
    assert_eq!(sim.submit("gym", confirm("hotpot", "10.01")), Code::OverConfirmation);
    assert_eq!(sim.submit("gym", confirm("hotpot", "4.00")), Code::Accepted);
    assert_eq!(sim.submit("gym", confirm("hotpot", "6.00")), Code::Accepted);
    assert_eq!(sim.state.balance(&m("gym")).paid, cents("10.00"));
    assert_eq!(sim.state.balance(&m("gym")).locked, 0);
    // Promoters sign nothing: another member witnesses the payment to kol-a (6.00) and kol-lead (2.00).
    assert_eq!(sim.submit("school", confirm("hotpot", "6.00")), Code::Accepted);
    assert_eq!(sim.state.balance(&promoter("kol-a")).paid, cents("6.00"));
    assert_eq!(sim.submit("hotpot", confirm("gym", "1.00")), Code::NoSuchTransfer);
    let bad = Payload::ConfirmPayment { period: 99, payer: pk("hotpot"), amount: amt("1.00") };
    assert_eq!(sim.submit("gym", bad), Code::UnknownStatement);
}

#[allow(non_snake_case)]
fn ConfirmPayment_period(s: &plaza_ledger::contract::Statement) -> u64 {
    s.period
}

#[test]
fn s11_self_referral_earns_nothing_and_refunds_put_the_referrer_on_hold_until_a_vote() {
    let mut sim = Sim::new();
    assert_eq!(sim.refer("hotpot", "self-ref-001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-0", "100.00", "100.00").referral("self-ref-001").submit(&mut sim), Code::Accepted);
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.refer("gym", "gym-ref-0002", None, None, vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("gym-ref-0001").submit(&mut sim), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-2", "100.00", "100.00").referral("gym-ref-0002").submit(&mut sim), Code::Accepted);
    // 120.00 of 200.00 referred is refunded: 60% > 50% puts gym on hold.
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-1", "100.00")), Code::Accepted);
    assert_eq!(sim.submit("hotpot", refund("o-2", "r-1", "20.00")), Code::Accepted);
    assert!(sim.state.is_on_hold(&m("gym")));
    assert_eq!(sim.state.balance(&m("gym")).on_hold, cents("4.00"));
    let s = sim.close_after(8);
    assert!(s.lines.is_empty(), "self-referral earns nothing; held items do not lock");
    sim.pass(Action::ReleaseHold(m("gym")));
    assert!(!sim.state.is_on_hold(&m("gym")));
    let s = sim.close_after(1);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), cents("4.00"));
}

#[test]
fn s11_card_velocity_puts_the_referrer_on_hold() {
    let mut policy = test_policy();
    policy.card_sales_per_hour_max = 2;
    let mut sim = Sim::with_policy(policy);
    issue_card(&mut sim, "hotpot", card(7));
    assert_eq!(sim.refer("gym", "gym-ref-0001", Some(card(7)), None, vec![], 7), Code::Accepted);
    let mut r = Payload::Refer {
        code_hash: secret("gym-multi-01").hash(),
        card: Some(card(7)),
        promoter: None,
        upstream: None,
        valid_at: vec![],
        expires_at_ms: sim.now + DAY_MS,
        multi_use: true,
    };
    assert_eq!(sim.submit("gym", r.clone()), Code::Accepted);
    for i in 0..3 {
        assert_eq!(sim.sale("school", &format!("o-{i}"), "10.00", "10.00").card(card(7)).submit(&mut sim), Code::Accepted);
    }
    assert!(sim.state.is_on_hold(&m("gym")), "the third sale within an hour exceeds 2");
    if let Payload::Refer { code_hash, .. } = &mut r {
        *code_hash = secret("gym-multi-02").hash();
    }
}

#[test]
fn governance_policy_change_applies_by_event_time() {
    let mut sim = Sim::new();
    let mut v2 = test_policy();
    v2.version = 2;
    v2.referral_rate = Bps(1000);
    v2.effective_at_ms = T0 + 2 * DAY_MS;
    let mut v2_bad = v2.clone();
    v2_bad.version = 3;
    assert_eq!(sim.submit("hotpot", Payload::Propose { action: Action::PublishPolicy(v2_bad) }), Code::PolicyVersion);
    let id = sim.pass(Action::PublishPolicy(v2));
    assert_eq!(sim.state.proposal(&id).unwrap().3.name(), "passed");
    assert_eq!(sim.refer("gym", "gym-ref-0001", None, None, vec![], 30), Code::Accepted);
    assert_eq!(sim.refer("gym", "gym-ref-0002", None, None, vec![], 30), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("gym-ref-0001").submit(&mut sim), Code::Accepted);
    sim.close_after(2); // now past T0 + 2 days
    assert_eq!(sim.sale("hotpot", "o-2", "100.00", "100.00").referral("gym-ref-0002").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    // o-1 at 5% (v1), o-2 at 10% (v2).
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::Referral), cents("15.00"));
}

#[test]
fn governance_admission_suspension_removal_and_votes() {
    let mut sim = Sim::new();
    let newcomer = profile("bakery", "restaurant");
    let (id, code) = sim.submit_id("hotpot", Payload::Propose { action: Action::AdmitMerchant(newcomer.clone()) });
    assert_eq!(code, Code::Accepted);
    assert_eq!(sim.submit("hotpot", Payload::Vote { proposal: id, approve: true }), Code::DuplicateVote);
    assert_eq!(sim.submit("gym", Payload::Vote { proposal: Hash::digest(b"nothing"), approve: true }), Code::UnknownProposal);
    for v in ["gym", "school"] {
        assert_eq!(sim.submit(v, Payload::Vote { proposal: id, approve: true }), Code::Accepted);
    }
    assert!(sim.state.merchant(&pk("bakery")).is_none(), "3 of 5 is not more than 2/3");
    assert_eq!(sim.submit("mart", Payload::Vote { proposal: id, approve: true }), Code::Accepted);
    assert_eq!(sim.state.merchant(&pk("bakery")).unwrap().1.name(), "active");
    assert_eq!(sim.submit("noodles", Payload::Vote { proposal: id, approve: true }), Code::ProposalClosed);
    assert_eq!(sim.submit("hotpot", Payload::Propose { action: Action::AdmitMerchant(newcomer) }), Code::AlreadyMember);
    // A failed proposal: 2 rejections of 6 active members make > 2/3 impossible.
    let (id2, _) = sim.submit_id("hotpot", Payload::Propose { action: Action::SuspendMerchant(pk("gym")) });
    sim.submit("gym", Payload::Vote { proposal: id2, approve: false });
    sim.submit("school", Payload::Vote { proposal: id2, approve: false });
    assert_eq!(sim.state.proposal(&id2).unwrap().3.name(), "failed");

    // Suspension: new records are rejected.
    let (sid, _) = sim.submit_id("hotpot", Payload::Propose { action: Action::SuspendMerchant(pk("mart")) });
    for v in ["gym", "school", "bakery", "noodles"] {
        sim.submit(v, Payload::Vote { proposal: sid, approve: true });
    }
    assert_eq!(sim.state.merchant(&pk("mart")).unwrap().1.name(), "suspended");
    assert_eq!(sim.sale("mart", "o-1", "10.00", "10.00").submit(&mut sim), Code::SignerSuspended);
    // Removal: the removed merchant's records can no longer enter a block.
    let (rid, _) = sim.submit_id("hotpot", Payload::Propose { action: Action::RemoveMerchant(pk("noodles")) });
    for v in ["gym", "school", "bakery"] {
        sim.submit(v, Payload::Vote { proposal: rid, approve: true });
    }
    let r = sim.record("noodles", Payload::IssueCard { card: card(9) });
    let root = sim.state.state_root();
    assert!(matches!(sim.state.apply_block(sim.now, &[r]), Err(InvalidBlock::SignerRemoved { .. })));
    assert_eq!(sim.state.state_root(), root);
}

#[test]
fn governance_validator_changes_take_effect_at_the_period_boundary() {
    let mut sim = Sim::new();
    let net = key("mart/net").public();
    sim.pass(Action::AddValidator { merchant: pk("mart"), network_key: net });
    assert!(!sim.state.validator_set().contains(&pk("mart")));
    sim.close_after(1);
    assert!(sim.state.validator_set().contains(&pk("mart")));
    sim.pass(Action::RemoveValidator { merchant: pk("gym") });
    assert!(sim.state.validator_set().contains(&pk("gym")));
    sim.close_after(1);
    assert!(!sim.state.validator_set().contains(&pk("gym")));
    assert_eq!(sim.submit("hotpot", Payload::Propose { action: Action::RemoveValidator { merchant: pk("gym") } }), Code::NotValidator);
}

#[test]
fn invalid_blocks_change_nothing_and_duplicates_are_no_ops() {
    let mut sim = Sim::new();
    let r = sim.record("hotpot", Payload::IssueCard { card: card(1) });
    let out = sim.block(vec![r.clone(), r.clone()]);
    assert_eq!(out.receipts[1].code(), Some(Code::Duplicate));
    let root = sim.state.state_root();
    let out = sim.block(vec![r.clone()]);
    assert_eq!(out.receipts[0].code(), Some(Code::Duplicate));
    assert_ne!(out.state_root, root, "the root chains every block");
    let root = sim.state.state_root();
    let before = sim.state.to_bytes();
    // Time going backwards.
    assert!(matches!(sim.state.apply_block(sim.now - 10, &[]), Err(InvalidBlock::TimeBackwards { .. })));
    // Outside the ±10 minute window.
    let late = sim.record("gym", Payload::IssueCard { card: card(2) });
    assert!(matches!(sim.state.apply_block(sim.now + 11 * 60_000, &[late]), Err(InvalidBlock::OutsideTimeWindow { .. })));
    // A non-member.
    let body = RecordBody { alliance: sim.alliance(), signer: pk("stranger"), created_at_ms: sim.now, payload: Payload::IssueCard { card: card(3) } };
    let stranger = Record::sign(body, &key("stranger"));
    assert!(matches!(sim.state.apply_block(sim.now, &[stranger]), Err(InvalidBlock::NotAMember { .. })));
    assert_eq!(sim.state.state_root(), root);
    assert_eq!(sim.state.to_bytes(), before);
}

#[test]
fn snapshots_round_trip_and_replay_is_byte_identical() {
    let run = || {
        let mut sim = Sim::new();
        issue_card(&mut sim, "school", card(1));
        sim.refer("gym", "gym-ref-0001", Some(card(1)), None, vec![], 7);
        sim.sale("hotpot", "o-1", "100.00", "100.00").card(card(1)).submit(&mut sim);
        let s = sim.close_after(8);
        (sim, s)
    };
    let (a, sa) = run();
    let (b, sb) = run();
    assert_eq!(a.state.state_root(), b.state.state_root());
    assert_eq!(sa.to_bytes(), sb.to_bytes());
    let bytes = a.state.to_bytes();
    let decoded = State::decode_snapshot(&bytes).expect("decodes");
    assert_eq!(decoded.to_bytes(), bytes);
    assert!(State::decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
    assert!(State::decode_snapshot(b"garbage").is_err());
    // Settling offline from the same blocks gives the same statement.
    let mut blocks: Vec<(u64, Vec<Record>)> = Vec::new();
    let mut sim = Sim::new();
    let mut push = |sim: &mut Sim, recs: Vec<Record>| {
        blocks.push((sim.now, recs.clone()));
        sim.block(recs);
    };
    let r = sim.record("school", Payload::IssueCard { card: card(1) });
    push(&mut sim, vec![r]);
    let r = sim.record("hotpot", sim_sale());
    push(&mut sim, vec![r]);
    sim.advance(8 * DAY_MS);
    push(&mut sim, vec![]);
    let stmt = plaza_ledger::contract::settle_offline(&sim.genesis, blocks.iter().map(|(t, r)| (*t, r.as_slice())), Some(0)).unwrap().unwrap();
    assert_eq!(stmt.hash(), sim.statements[0].hash());
    assert_eq!(line(&stmt, &m("hotpot"), &m("school"), LineKind::HomeShare), cents("2.00"));
}

fn sim_sale() -> Payload {
    Payload::Sale {
        order: "o-1".into(),
        gross: amt("100.00"),
        base: amt("100.00"),
        card: Some(card(1)),
        referral_code: None,
        coupon_codes: vec![],
        points_redeemed: 0,
    }
}

use plaza_ledger::Hash;

/// Decision 17 (issue 18): a promoter is never billed. A refund after lock claws its commission
/// back; its negative net is carried into the next statement (as a rollover line to the merchant
/// it owes) and netted against its later commissions; it is paid again only once positive.
/// Every transfer of every plan has a merchant payer, so its payee can confirm it.
#[test]
fn s2_promoter_debt_is_carried_forward_and_netted_against_future_commissions() {
    // A full refund would otherwise put gym and kol-a on fraud hold (S11, ratio 100% > 50%).
    let mut policy = settlement_support::test_policy();
    policy.refund_ratio_max = Bps(10_000);
    let mut sim = Sim::with_policy(policy);
    register_promoters(&mut sim);
    let plans_have_merchant_payers = |s: &plaza_ledger::contract::Statement| {
        assert!(s.transfers.iter().all(|t| matches!(t.payer, Party::Merchant(_))), "a promoter never pays: {:?}", s.transfers);
    };
    // Statement 1: hotpot's 200.00 sale with gym's code for kol-a → gym 10.00, kol-a 6.00, kol-lead 2.00.
    assert_eq!(sim.refer("gym", "kol-a-code-1", None, Some("kol-a"), vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").referral("kol-a-code-1").submit(&mut sim), Code::Accepted);
    let first = sim.close_after(8);
    assert_eq!(line(&first, &m("hotpot"), &promoter("kol-a"), LineKind::Promoter), cents("6.00"));
    plans_have_merchant_payers(&first);

    // Full refund after lock: clawbacks kol-a → hotpot 6.00, kol-lead → hotpot 2.00, gym → hotpot 10.00.
    assert_eq!(sim.submit("hotpot", refund("o-1", "r-1", "200.00")), Code::Accepted);
    let second = sim.close_after(1);
    assert_eq!(line(&second, &promoter("kol-a"), &m("hotpot"), LineKind::Clawback), cents("6.00"));
    assert_eq!(second.net_of(&promoter("kol-a")), -600);
    // Gym pays its 10.00; the promoters pay nothing: their debts are carried.
    let pays = |s: &plaza_ledger::contract::Statement| -> Vec<(Party, Party, u128)> {
        s.transfers.iter().map(|t| (t.payer.clone(), t.payee.clone(), t.amount)).collect()
    };
    assert_eq!(pays(&second), vec![(m("gym"), m("hotpot"), 1000)]);
    let carried: Vec<(Party, Party, u128)> = second.rolled_over.iter().map(|t| (t.payer.clone(), t.payee.clone(), t.amount)).collect();
    assert_eq!(carried, vec![(promoter("kol-a"), m("hotpot"), 600), (promoter("kol-lead"), m("hotpot"), 200)]);
    plans_have_merchant_payers(&second);
    assert_eq!(sim.state.balance(&promoter("kol-a")).carried_payable, 600);
    assert_eq!(sim.state.balance(&m("hotpot")).carried_receivable, 800);
    assert!(second.render().contains("carried (a promoter's debt"), "{}", second.render());
    // The receiver confirms the only transfer there is.
    let period = second.period;
    assert_eq!(sim.submit("hotpot", Payload::ConfirmPayment { period, payer: pk("gym"), amount: amt("10.00") }), Code::Accepted);

    // Statement 3: mart sells 100.00 with a new kol-a code → kol-a 3.00, kol-lead 1.00, gym 5.00.
    // kol-a: 3.00 − 6.00 carried = −3.00, still carried; kol-lead −1.00; nothing to either.
    assert_eq!(sim.refer("gym", "kol-a-code-2", None, Some("kol-a"), vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("mart", "m-1", "100.00", "100.00").referral("kol-a-code-2").submit(&mut sim), Code::Accepted);
    let third = sim.close_after(8);
    assert_eq!(line(&third, &promoter("kol-a"), &m("hotpot"), LineKind::Rollover), cents("6.00"));
    assert_eq!(line(&third, &m("mart"), &promoter("kol-a"), LineKind::Promoter), cents("3.00"));
    assert_eq!(third.net_of(&promoter("kol-a")), -300);
    assert_eq!(third.net_of(&promoter("kol-lead")), -100);
    assert!(third.transfers.iter().all(|t| !matches!(t.payee, Party::Promoter(_))), "nothing is paid to a promoter in debt");
    let mut plan = pays(&third);
    plan.sort();
    let mut expected = vec![(m("mart"), m("gym"), 500), (m("mart"), m("hotpot"), 400)];
    expected.sort();
    assert_eq!(plan, expected, "hotpot receives the 4.00 the promoters earned towards their debts");
    plans_have_merchant_payers(&third);

    // Statement 4: mart sells 300.00 with a third code → kol-a 9.00 − 3.00 = +6.00, kol-lead
    // 3.00 − 1.00 = +2.00: positive again, so paid; hotpot gets the rest of its 8.00.
    assert_eq!(sim.refer("gym", "kol-a-code-3", None, Some("kol-a"), vec![], 7), Code::Accepted);
    assert_eq!(sim.sale("mart", "m-2", "300.00", "300.00").referral("kol-a-code-3").submit(&mut sim), Code::Accepted);
    let fourth = sim.close_after(8);
    let mut plan = pays(&fourth);
    plan.sort();
    let mut expected = vec![(m("mart"), m("gym"), 1500), (m("mart"), promoter("kol-a"), 600), (m("mart"), m("hotpot"), 400), (m("mart"), promoter("kol-lead"), 200)];
    expected.sort();
    assert_eq!(plan, expected);
    assert!(fourth.rolled_over.is_empty(), "the debts are settled");
    assert_eq!(sim.state.balance(&promoter("kol-a")).carried_payable, 0);
    plans_have_merchant_payers(&fourth);
    // Every transfer is confirmable: by its merchant payee, or (promoters sign nothing) a witness.
    let period = fourth.period;
    assert_eq!(sim.submit("hotpot", Payload::ConfirmPayment { period, payer: pk("mart"), amount: amt("4.00") }), Code::Accepted);
    assert_eq!(sim.submit("gym", Payload::ConfirmPayment { period, payer: pk("mart"), amount: amt("15.00") }), Code::Accepted);
    assert_eq!(sim.submit("school", Payload::ConfirmPayment { period, payer: pk("mart"), amount: amt("6.00") }), Code::Accepted);
    assert_eq!(sim.state.balance(&promoter("kol-a")).paid, cents("6.00"));
}

/// Decision 7 (issue 18): points of other merchants redeemed are paid for by their issuers, so
/// the base excludes them, as it excludes coupons funded by others; the seller's own points do
/// not reduce it. `State::sale_base_limit` gives the largest base the rules allow.
#[test]
fn s7_points_of_other_merchants_are_excluded_from_the_base() {
    let mut sim = Sim::new();
    issue_card(&mut sim, "school", card(9));
    assert_eq!(sim.sale("hotpot", "o-1", "200.00", "200.00").card(card(9)).submit(&mut sim), Code::Accepted); // 200 points of hotpot
    sim.advance(DAY_MS + 1);
    // A 100.00 sale at gym paid partly with 2.00 of hotpot's points: the base is at most 98.00.
    let limit = sim.state.sale_base_limit(&pk("gym"), sim.now, amt("100.00"), Some(&card(9)), &[], 200).expect("a valid sale");
    assert_eq!((limit.base, limit.points_funded_by_others, limit.coupons_funded_by_others), (amt("98.00"), amt("2.00"), amt("0.00")));
    assert_eq!(sim.sale("gym", "g-1", "100.00", "100.00").card(card(9)).points(200).submit(&mut sim), Code::BaseIncludesPoints);
    assert_eq!(sim.state.card(&card(9), sim.now).unwrap().spendable, 200, "a rejected sale changes nothing");
    assert_eq!(sim.sale("gym", "g-1", "100.00", "98.01").card(card(9)).points(200).submit(&mut sim), Code::BaseIncludesPoints);
    assert_eq!(sim.sale("gym", "g-1", "100.00", "98.00").card(card(9)).points(200).submit(&mut sim), Code::Accepted);
    sim.advance(DAY_MS + 1);
    // The seller's own points (gym's 98 from that sale) are its own discount: base = gross is allowed.
    let own = sim.state.sale_base_limit(&pk("gym"), sim.now, amt("50.00"), Some(&card(9)), &[], 50).expect("valid");
    assert_eq!((own.base, own.points_funded_by_others), (amt("50.00"), amt("0.00")));
    assert_eq!(sim.sale("gym", "g-2", "50.00", "50.00").card(card(9)).points(50).submit(&mut sim), Code::Accepted);
    // Coupons and points together: mart's issuer-funded 10.00 coupon and 48 of gym's points at hotpot.
    let coupons = Payload::IssueCoupons {
        batch: "mart-10".into(),
        code_hashes: vec![secret("mart-coupon-1").hash()],
        value: CouponValue::Fixed(amt("10.00")),
        min_spend: Amount::ZERO,
        redeemable_at: vec![],
        funding: Funding::Issuer,
        expires_at_ms: sim.now + 7 * DAY_MS,
    };
    assert_eq!(sim.submit("mart", coupons), Code::Accepted);
    let both = sim.state.sale_base_limit(&pk("hotpot"), sim.now, amt("100.00"), Some(&card(9)), &[secret("mart-coupon-1").hash()], 48).expect("valid");
    assert_eq!((both.base, both.coupons_funded_by_others, both.points_funded_by_others), (amt("89.52"), amt("10.00"), amt("0.48")));
    let sale = |base: &str| sim_sale_with_coupon(base);
    assert_eq!(sale("90.01").submit(&mut sim), Code::BaseTooHigh, "over the coupon limit: 47 as before");
    assert_eq!(sale("90.00").submit(&mut sim), Code::BaseIncludesPoints, "within the coupon limit, over the points one");
    assert_eq!(sale("89.52").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &m("gym"), LineKind::PointsClearing), cents("2.00"));
    assert_eq!(line(&s, &m("gym"), &m("school"), LineKind::HomeShare), cents("1.96") + cents("1.00"), "2% of 98.00 and of 50.00");
    assert_eq!(line(&s, &m("gym"), &m("hotpot"), LineKind::PointsClearing), cents("0.48"));
    assert_eq!(line(&s, &m("hotpot"), &m("school"), LineKind::HomeShare), cents("4.00") + cents("1.79"), "2% of 200.00 and of 89.52");
    // Unknown coupons or overdrawn points: the limit is the receipt the sale would get.
    assert_eq!(sim.state.sale_base_limit(&pk("hotpot"), sim.now, amt("1.00"), Some(&card(9)), &[Hash::ZERO], 0), Err(Code::UnknownCoupon));
    assert_eq!(sim.state.sale_base_limit(&pk("hotpot"), sim.now, amt("1.00"), Some(&card(9)), &[], 1_000_000), Err(Code::PointsOverdrawn));
}

fn sim_sale_with_coupon(base: &str) -> SaleBuilder {
    SaleBuilder {
        seller: "hotpot".into(),
        payload: Payload::Sale {
            order: "h-2".into(),
            gross: amt("100.00"),
            base: amt(base),
            card: Some(card(9)),
            referral_code: None,
            coupon_codes: vec![secret("mart-coupon-1")],
            points_redeemed: 48,
        },
    }
}

/// Issue 18: promoters listed in the genesis are registered from the start (no vote needed).
#[test]
fn genesis_promoters_are_registered_from_the_start() {
    let mut genesis = genesis_with(test_policy());
    let id = |s: &str| PromoterId::new(s).unwrap();
    genesis.promoters = vec![
        plaza_ledger::genesis::GenesisPromoter { id: id("kol-lily"), name: "Lily".into(), upstream: None },
        plaza_ledger::genesis::GenesisPromoter { id: id("kol-max"), name: "Max".into(), upstream: Some(id("kol-lily")) },
    ];
    genesis.validate().expect("valid");
    let bytes = genesis.to_bytes();
    assert_eq!(<plaza_ledger::genesis::Genesis as plaza_ledger::codec::Decode>::from_bytes(&bytes, 1 << 20).unwrap(), genesis);
    let without = genesis_with(test_policy());
    assert_eq!(&bytes[..without.to_bytes().len()], without.to_bytes().as_slice(), "the promoters follow the old encoding");
    assert_ne!(genesis.alliance_id(), without.alliance_id());
    let mut sim = Sim::new();
    sim.genesis = genesis.clone();
    sim.state = State::from_genesis(&genesis);
    let listed: Vec<(String, Option<String>)> = sim.state.promoters().map(|(p, _, u)| (p.to_string(), u.map(|u| u.to_string()))).collect();
    assert_eq!(listed, vec![("kol-lily".into(), None), ("kol-max".into(), Some("kol-lily".into()))]);
    let refer = Payload::Refer {
        code_hash: secret("max-code").hash(),
        card: None,
        promoter: Some(id("kol-max")),
        upstream: Some(id("kol-lily")),
        valid_at: vec![],
        expires_at_ms: sim.now + DAY_MS,
        multi_use: false,
    };
    assert_eq!(sim.submit("gym", refer), Code::Accepted);
    assert_eq!(sim.sale("hotpot", "o-1", "100.00", "100.00").referral("max-code").submit(&mut sim), Code::Accepted);
    let s = sim.close_after(8);
    assert_eq!(line(&s, &m("hotpot"), &promoter("kol-max"), LineKind::Promoter), cents("3.00"));
    assert_eq!(line(&s, &m("hotpot"), &promoter("kol-lily"), LineKind::Upstream), cents("1.00"));
    // Bad lists are refused: unsorted, an unknown upstream, a cycle.
    let mut bad = genesis.clone();
    bad.promoters.reverse();
    assert!(bad.validate().is_err());
    let mut bad = genesis.clone();
    bad.promoters[1].upstream = Some(id("kol-nobody"));
    assert!(bad.validate().unwrap_err().0.contains("not a promoter of the genesis"));
    let mut bad = genesis.clone();
    bad.promoters[0].upstream = Some(id("kol-max"));
    assert!(bad.validate().unwrap_err().0.contains("comes back"));
}
