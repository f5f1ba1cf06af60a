//! Seeded streams with promoters (issue 18, SETTLEMENT decision 17): referrals naming promoters
//! registered in the genesis, sales, and refunds before and after lock, closed into many
//! statements. Checked on every statement: no transfer has a promoter payer; a promoter with a
//! negative net is paid nothing and its whole debt is carried, and the next statement carries it
//! as rollover lines; every transfer of every plan is confirmed (by its merchant payee, or a
//! witness for a promoter) with receipt `accepted`.

mod settlement_support;

use std::collections::BTreeMap;

use plaza_ledger::contract::{LineKind, Statement};
use plaza_ledger::genesis::GenesisPromoter;
use plaza_ledger::money::Amount;
use plaza_ledger::policy::{DAY_MS, HOUR_MS};
use plaza_ledger::receipt::Code;
use plaza_ledger::record::*;
use settlement_support::*;

struct Gen(u64);
impl Gen {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

const SELLERS: &[&str] = &["hotpot", "gym", "school", "mart"];
const PROMOTERS: &[(&str, Option<&str>)] = &[("kol-a", Some("kol-lead")), ("kol-b", Some("kol-a")), ("kol-lead", None)];

fn sim_with_promoters() -> Sim {
    let mut sim = Sim::new();
    let mut genesis = sim.genesis.clone();
    genesis.promoters = PROMOTERS
        .iter()
        .map(|(id, up)| GenesisPromoter { id: PromoterId::new(id).unwrap(), name: (*id).into(), upstream: up.map(|u| PromoterId::new(u).unwrap()) })
        .collect();
    genesis.validate().expect("valid genesis");
    sim.state = plaza_ledger::contract::State::from_genesis(&genesis);
    sim.genesis = genesis;
    sim
}

/// Checks one statement against the previous one's carried debts; returns this one's.
fn check_statement(s: &Statement, carried_before: &BTreeMap<Party, u128>) -> BTreeMap<Party, u128> {
    assert!(s.transfers.iter().all(|t| matches!(t.payer, Party::Merchant(_))), "a promoter never pays: {:?}", s.transfers);
    let mut carried = BTreeMap::new();
    for t in s.rolled_over.iter().filter(|t| matches!(t.payer, Party::Promoter(_))) {
        *carried.entry(t.payer.clone()).or_insert(0u128) += t.amount;
    }
    for (id, _) in PROMOTERS {
        let p = promoter(id);
        let net = s.net_of(&p);
        let paid: u128 = s.transfers.iter().chain(&s.rolled_over).filter(|t| t.payee == p).map(|t| t.amount).sum();
        let out = carried.get(&p).copied().unwrap_or(0);
        if net < 0 {
            assert_eq!((paid, out), (0, net.unsigned_abs()), "{id}: a debt is carried whole and nothing is paid");
        } else {
            assert_eq!((paid, out), (net as u128, 0), "{id}: a positive net is paid (or rolled over below min payout)");
        }
        // What the last statement carried comes back as rollover lines of this one.
        let back: u128 = s.lines.iter().filter(|l| l.debtor == p && l.kind == LineKind::Rollover).map(|l| l.amount).sum();
        assert_eq!(back, carried_before.get(&p).copied().unwrap_or(0), "{id}: the carried debt reappears");
    }
    carried
}

fn run(seed: u64, records: usize) -> (usize, usize, usize) {
    let mut g = Gen(seed);
    let mut sim = sim_with_promoters();
    let mut orders: Vec<(&str, String, u64, u64)> = Vec::new();
    let mut carried = BTreeMap::new();
    let (mut statements, mut debts, mut confirmations) = (0, 0, 0);
    let mut code = 0u64;
    for i in 0..records {
        let seller = SELLERS[g.below(SELLERS.len() as u64) as usize];
        let payload = match g.below(5) {
            0 | 1 => {
                code += 1;
                let referrer = SELLERS[g.below(SELLERS.len() as u64) as usize];
                let p = PROMOTERS[g.below(PROMOTERS.len() as u64) as usize].0;
                let refer = Payload::Refer {
                    code_hash: secret(&format!("promoter-code-{code:06}")).hash(),
                    card: None,
                    promoter: Some(PromoterId::new(p).unwrap()),
                    upstream: None,
                    valid_at: vec![],
                    expires_at_ms: sim.now + 3 * DAY_MS,
                    multi_use: false,
                };
                assert_eq!(sim.submit(referrer, refer), Code::Accepted);
                let gross = 100 + g.below(50_000);
                let order = format!("o-{i}");
                orders.push((seller, order.clone(), gross, 0));
                Payload::Sale {
                    order,
                    gross: Amount::from_cents(gross).unwrap(),
                    base: Amount::from_cents(gross).unwrap(),
                    card: None,
                    referral_code: Some(secret(&format!("promoter-code-{code:06}"))),
                    coupon_codes: vec![],
                    points_redeemed: 0,
                }
            }
            2 if !orders.is_empty() => {
                // Refunds of older orders: most are past the lock and claw back.
                let k = g.below(orders.len() as u64) as usize;
                let (seller, order, gross, refunded) = orders[k].clone();
                let left = gross - refunded;
                if left == 0 {
                    continue;
                }
                let amount = 1 + g.below(left);
                orders[k].3 += amount;
                let r = sim.submit(seller, refund(&order, &format!("r-{i}"), &Amount::from_cents(amount).unwrap().to_string()));
                assert_eq!(r, Code::Accepted);
                continue;
            }
            _ => {
                sim.advance(g.below(12 * HOUR_MS));
                continue;
            }
        };
        let r = sim.submit(seller, payload);
        assert_eq!(r, Code::Accepted, "sale");
        // Close what is due and confirm every transfer of every new statement.
        while sim.statements.len() > statements {
            let s = sim.statements[statements].clone();
            statements += 1;
            carried = check_statement(&s, &carried);
            debts += carried.len();
            // Merchant payees first: a witness's own outstanding transfer would be closed first.
            let mut transfers: Vec<_> = s.transfers.iter().filter(|t| matches!(t.payee, Party::Merchant(_))).collect();
            transfers.extend(s.transfers.iter().filter(|t| matches!(t.payee, Party::Promoter(_))));
            for t in transfers {
                let Party::Merchant(payer) = &t.payer else { unreachable!("checked") };
                let confirmer = match &t.payee {
                    Party::Merchant(k) => SELLERS.iter().chain(["noodles"].iter()).copied().find(|n| pk(n) == *k).expect("a test merchant"),
                    // Promoters sign nothing: a member other than the payer witnesses it.
                    Party::Promoter(_) => SELLERS.iter().copied().find(|n| pk(n) != *payer).expect("a witness"),
                };
                let confirm = Payload::ConfirmPayment { period: s.period, payer: *payer, amount: Amount::from_cents(t.amount as u64).unwrap() };
                assert_eq!(sim.submit(confirmer, confirm), Code::Accepted, "every transfer is confirmable: {t:?}");
                confirmations += 1;
            }
        }
    }
    (statements, debts, confirmations)
}

#[test]
fn promoters_are_never_billed_and_every_transfer_is_confirmable() {
    let mut totals = (0, 0, 0);
    for seed in [1u64, 2, 3] {
        let (s, d, c) = run(seed, 1500);
        totals = (totals.0 + s, totals.1 + d, totals.2 + c);
    }
    // The streams exercised what they claim: many statements, promoter debts carried, payments.
    assert!(totals.0 > 30, "statements: {totals:?}");
    assert!(totals.1 > 5, "promoter debts carried: {totals:?}");
    assert!(totals.2 > 50, "confirmations: {totals:?}");
}
