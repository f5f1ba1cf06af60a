//! S10: the settlement statement of one period — lines, nets, bilateral nets, the payment
//! plan and what rolls over — with its canonical encoding and hash.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::record::Party;

use super::accounts::{Accounts, PartyId};
use super::types::{decode_u128, encode_u128, LIST_MAX};

/// The domain in front of a statement's canonical bytes when hashing it.
pub const STATEMENT_DOMAIN: &[u8] = b"plaza/statement/v1\0";

/// What a line is for. Numbers are stable (they are encoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LineKind {
    /// S1: the referring merchant's commission.
    Referral = 1,
    /// S2: the promoter's commission.
    Promoter = 2,
    /// S2: the upstream promoter's commission.
    Upstream = 3,
    /// S3: the card's home merchant's share.
    HomeShare = 4,
    /// S6: an issuer-funded coupon's face value, owed to the redeeming merchant.
    CouponClearing = 5,
    /// S7: points issued by one merchant and redeemed at another.
    PointsClearing = 6,
    /// S8: a refund after lock claws back part of a locked item.
    Clawback = 7,
    /// S9: an agreement's fixed fee for the period.
    FixedFee = 8,
    /// S10: a transfer below `min_payout` carried over from the previous statement.
    Rollover = 9,
}
impl LineKind {
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Referral => "referral",
            LineKind::Promoter => "promoter",
            LineKind::Upstream => "upstream",
            LineKind::HomeShare => "home-share",
            LineKind::CouponClearing => "coupon-clearing",
            LineKind::PointsClearing => "points-clearing",
            LineKind::Clawback => "clawback",
            LineKind::FixedFee => "fixed-fee",
            LineKind::Rollover => "rollover",
        }
    }
    /// S1–S3: the commissions that S4 caps and S8 refunds reverse.
    pub fn is_commission(self) -> bool {
        matches!(self, LineKind::Referral | LineKind::Promoter | LineKind::Upstream | LineKind::HomeShare)
    }
}
impl Encode for LineKind {
    fn encode(&self, w: &mut Writer) {
        w.u8(*self as u8);
    }
}
impl Decode for LineKind {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => LineKind::Referral,
            2 => LineKind::Promoter,
            3 => LineKind::Upstream,
            4 => LineKind::HomeShare,
            5 => LineKind::CouponClearing,
            6 => LineKind::PointsClearing,
            7 => LineKind::Clawback,
            8 => LineKind::FixedFee,
            9 => LineKind::Rollover,
            tag => return Err(DecodeError::InvalidTag { what: "line kind", tag }),
        })
    }
}

fn signed_enc(w: &mut Writer, v: i128) {
    w.raw(&v.to_be_bytes());
}
fn signed_dec(r: &mut Reader<'_>) -> Result<i128, DecodeError> {
    Ok(i128::from_be_bytes(r.array()?))
}

/// One line: everything of one kind that `debtor` owes `creditor` this period, with the ids
/// of the records (or, for rollovers, the statement) it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub debtor: Party,
    pub creditor: Party,
    pub kind: LineKind,
    /// Cents.
    pub amount: u128,
    /// Sorted, distinct.
    pub sources: Vec<Hash>,
}
impl Encode for Line {
    fn encode(&self, w: &mut Writer) {
        self.debtor.encode(w);
        self.creditor.encode(w);
        self.kind.encode(w);
        encode_u128(w, self.amount);
        w.seq(&self.sources);
    }
}
impl Decode for Line {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Line {
            debtor: Party::decode(r)?,
            creditor: Party::decode(r)?,
            kind: LineKind::decode(r)?,
            amount: decode_u128(r)?,
            sources: r.seq("line sources", LIST_MAX)?,
        })
    }
}

/// The net between two parties: positive when `a` owes `b`. `a < b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BilateralNet {
    pub a: Party,
    pub b: Party,
    pub net: i128,
}
impl Encode for BilateralNet {
    fn encode(&self, w: &mut Writer) {
        self.a.encode(w);
        self.b.encode(w);
        signed_enc(w, self.net);
    }
}
impl Decode for BilateralNet {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BilateralNet { a: Party::decode(r)?, b: Party::decode(r)?, net: signed_dec(r)? })
    }
}

/// A payment the plan asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub payer: Party,
    pub payee: Party,
    pub amount: u128,
}
impl Encode for Transfer {
    fn encode(&self, w: &mut Writer) {
        self.payer.encode(w);
        self.payee.encode(w);
        encode_u128(w, self.amount);
    }
}
impl Decode for Transfer {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Transfer { payer: Party::decode(r)?, payee: Party::decode(r)?, amount: decode_u128(r)? })
    }
}

/// S10: the statement of one settlement period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub alliance: Hash,
    /// The period number: 0 for the period that starts at genesis, then one per statement.
    pub period: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Sorted by (debtor, creditor, kind).
    pub lines: Vec<Line>,
    /// Every party of a line with its net (positive: receives), sorted by party. Sums to 0.
    pub nets: Vec<(Party, i128)>,
    /// Sorted by (a, b); pairs whose lines cancel exactly are listed with net 0.
    pub bilateral: Vec<BilateralNet>,
    /// The payment plan, in the order the greedy matching produced it; at most n − 1 transfers.
    pub transfers: Vec<Transfer>,
    /// What is not paid now but carried as rollover lines into the next statement: first the
    /// debts of promoters with a negative net (decision 17: a promoter is never billed; its debt
    /// nets against its future commissions), then plan transfers below `min_payout`.
    pub rolled_over: Vec<Transfer>,
}

impl Statement {
    /// `blake3(STATEMENT_DOMAIN ‖ canonical bytes)`, fed line by line so a statement of
    /// millions of sources is never copied into one buffer.
    pub fn hash(&self) -> Hash {
        let mut hasher = blake3::Hasher::new();
        hasher.update(STATEMENT_DOMAIN);
        let mut w = Writer::new();
        self.encode_head(&mut w);
        hasher.update(&w.into_bytes());
        for line in &self.lines {
            hasher.update(&line.to_bytes());
        }
        let mut w = Writer::new();
        self.encode_tail(&mut w);
        hasher.update(&w.into_bytes());
        Hash(*hasher.finalize().as_bytes())
    }
    /// Everything before the lines, up to and including their count.
    fn encode_head(&self, w: &mut Writer) {
        self.alliance.encode(w);
        w.u64(self.period);
        w.u64(self.start_ms);
        w.u64(self.end_ms);
        w.u32(u32::try_from(self.lines.len()).expect("encoded sequences are bounded far below 4 Gi items"));
    }
    /// Everything after the lines.
    fn encode_tail(&self, w: &mut Writer) {
        w.u32(self.nets.len() as u32);
        for (p, n) in &self.nets {
            p.encode(w);
            signed_enc(w, *n);
        }
        w.seq(&self.bilateral);
        w.seq(&self.transfers);
        w.seq(&self.rolled_over);
    }
    pub fn net_of(&self, party: &Party) -> i128 {
        self.nets.binary_search_by(|(p, _)| p.cmp(party)).map(|i| self.nets[i].1).unwrap_or(0)
    }
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// A plain-text table for humans.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Statement of period {} [{} .. {}) ms, hash {}", self.period, self.start_ms, self.end_ms, self.hash());
        let _ = writeln!(out, "Lines:");
        for l in &self.lines {
            let _ = writeln!(out, "  {:<16} {} -> {}  {}  ({} sources)", l.kind.name(), l.debtor, l.creditor, cents(l.amount as i128), l.sources.len());
        }
        let _ = writeln!(out, "Nets:");
        for (p, n) in &self.nets {
            let _ = writeln!(out, "  {p}  {}", cents(*n));
        }
        let _ = writeln!(out, "Payment plan:");
        for t in &self.transfers {
            let _ = writeln!(out, "  {} pays {}  {}", t.payer, t.payee, cents(t.amount as i128));
        }
        for t in &self.rolled_over {
            let why = if matches!(t.payer, Party::Promoter(_)) { "carried (a promoter's debt, netted against its next commissions)" } else { "rolled over" };
            let _ = writeln!(out, "  {why}: {} owes {}  {}", t.payer, t.payee, cents(t.amount as i128));
        }
        out
    }
}

/// Formats signed cents as `-12.34`.
pub fn cents(v: i128) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

impl Encode for Statement {
    fn encode(&self, w: &mut Writer) {
        self.encode_head(w);
        for line in &self.lines {
            line.encode(w);
        }
        self.encode_tail(w);
    }
}
impl Decode for Statement {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let alliance = Hash::decode(r)?;
        let period = r.u64()?;
        let start_ms = r.u64()?;
        let end_ms = r.u64()?;
        let lines = r.seq("lines", LIST_MAX)?;
        let n = r.len("nets", LIST_MAX)?;
        let mut nets = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            nets.push((Party::decode(r)?, signed_dec(r)?));
        }
        Ok(Statement {
            alliance,
            period,
            start_ms,
            end_ms,
            lines,
            nets,
            bilateral: r.seq("bilateral nets", LIST_MAX)?,
            transfers: r.seq("transfers", LIST_MAX)?,
            rolled_over: r.seq("rolled over", LIST_MAX)?,
        })
    }
}

/// A hash as four big-endian words: ordering them orders the bytes.
fn hash_words(h: &Hash) -> [u64; 4] {
    let b = h.as_bytes();
    let word = |i: usize| u64::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
    [word(0), word(8), word(16), word(24)]
}

/// Collects lines during a period close, then derives nets, bilateral nets and the plan.
///
/// Parties are the interned ids of [`Accounts`] (which must not change until `finish`), or,
/// for a party without an account yet (a fixed fee's merchants), a builder-local id after them.
/// Ids never reach the statement: `finish` sorts everything by `Party`.
pub(crate) struct StatementBuilder {
    /// Each line's index in `totals`.
    lines: BTreeMap<(PartyId, PartyId, LineKind), usize>,
    /// Per line: amount, and number of parts.
    totals: Vec<(u128, usize)>,
    /// Every part's (line index, source), in arrival order: appending here is sequential, where
    /// growing one source vector per line (tens of thousands of lines, two million parts on a
    /// busy day) reallocated and missed the cache on every part. `finish` gives each line a
    /// vector of exactly its size.
    parts: Vec<(u32, Hash)>,
    known: usize,
    extras: Vec<Party>,
}

impl StatementBuilder {
    pub fn new(accounts: &Accounts) -> Self {
        StatementBuilder { lines: BTreeMap::new(), totals: Vec::new(), parts: Vec::new(), known: accounts.len(), extras: Vec::new() }
    }

    fn id_of(&mut self, accounts: &Accounts, party: &Party) -> PartyId {
        if let Some(id) = accounts.id(party) {
            return id;
        }
        let at = match self.extras.iter().position(|p| p == party) {
            Some(i) => i,
            None => {
                self.extras.push(party.clone());
                self.extras.len() - 1
            }
        };
        PartyId::try_from(self.known + at).expect("fewer than 2^32 parties")
    }

    /// A line part between two parties named in full (rollovers, fixed fees).
    pub fn add_parties(&mut self, accounts: &Accounts, debtor: &Party, creditor: &Party, kind: LineKind, amount: u128, source: Hash) {
        let (d, c) = (self.id_of(accounts, debtor), self.id_of(accounts, creditor));
        self.add(d, c, kind, amount, source);
    }

    /// A line part between two interned parties (a locking item).
    pub fn add(&mut self, debtor: PartyId, creditor: PartyId, kind: LineKind, amount: u128, source: Hash) {
        if amount == 0 || debtor == creditor {
            return;
        }
        let index = *self.lines.entry((debtor, creditor, kind)).or_insert_with(|| {
            self.totals.push((0, 0));
            self.totals.len() - 1
        });
        let total = &mut self.totals[index];
        total.0 = total.0.checked_add(amount).expect("u128 cents never overflow: amounts are ≤ 10^14 each");
        total.1 += 1;
        self.parts.push((u32::try_from(index).expect("fewer than 2^32 lines"), source));
    }

    /// S10: builds the statement. `min_payout` in cents.
    pub fn finish(self, accounts: &Accounts, alliance: Hash, period: u64, start_ms: u64, end_ms: u64, min_payout: u128) -> Statement {
        let (known, extras) = (self.known, self.extras);
        let party = |id: PartyId| -> Party {
            let i = id as usize;
            if i < known { accounts.party(id).clone() } else { extras[i - known].clone() }
        };
        let mut sources: Vec<Vec<Hash>> = self.totals.iter().map(|(_, parts)| Vec::with_capacity(*parts)).collect();
        for (index, source) in self.parts {
            sources[index as usize].push(source);
        }
        let totals = self.totals;
        let mut lines: Vec<Line> = self
            .lines
            .into_iter()
            .map(|((debtor, creditor, kind), index)| {
                let amount = totals[index].0;
                let mut sources = std::mem::take(&mut sources[index]);
                // Byte order, compared as four big-endian words (no memcmp call per comparison).
                sources.sort_unstable_by_key(|h| hash_words(h));
                sources.dedup();
                Line { debtor: party(debtor), creditor: party(creditor), kind, amount, sources }
            })
            .collect();
        // Keys are distinct, so an unstable sort is deterministic.
        lines.sort_unstable_by(|a, b| (&a.debtor, &a.creditor, a.kind).cmp(&(&b.debtor, &b.creditor, b.kind)));
        let mut nets: BTreeMap<Party, i128> = BTreeMap::new();
        let mut bilateral: BTreeMap<(Party, Party), i128> = BTreeMap::new();
        for Line { debtor, creditor, amount, .. } in &lines {
            let (debtor, creditor, amount) = (debtor.clone(), creditor.clone(), *amount);
            let signed = i128::try_from(amount).expect("line amounts fit i128");
            *nets.entry(debtor.clone()).or_insert(0) -= signed;
            *nets.entry(creditor.clone()).or_insert(0) += signed;
            if debtor < creditor {
                *bilateral.entry((debtor, creditor)).or_insert(0) += signed;
            } else {
                *bilateral.entry((creditor, debtor)).or_insert(0) -= signed;
            }
        }
        // Double entry (DESIGN §5): every line moves money from one party to another.
        assert_eq!(nets.values().sum::<i128>(), 0, "S10: the nets of a statement sum to zero");
        // Decision 17: a promoter is never billed. Its negative net is carried forward to the
        // parties it owes and netted against its future commissions; the plan settles the rest.
        let carried = promoter_debts(&lines, &nets);
        let mut payable = nets.clone();
        for t in &carried {
            let a = i128::try_from(t.amount).expect("fits");
            *payable.get_mut(&t.payer).expect("a debtor has a net") += a;
            *payable.get_mut(&t.payee).expect("a creditor has a net") -= a;
        }
        let (transfers, plan_rolled_over) = payment_plan(&payable, min_payout);
        // The plan (paid and rolled over together) settles every payable net exactly, and with
        // the carried debts every net.
        let mut check: BTreeMap<&Party, i128> = BTreeMap::new();
        for t in transfers.iter().chain(&plan_rolled_over) {
            let a = i128::try_from(t.amount).expect("fits");
            *check.entry(&t.payer).or_insert(0) -= a;
            *check.entry(&t.payee).or_insert(0) += a;
        }
        for (party, net) in &payable {
            assert_eq!(check.get(party).copied().unwrap_or(0), *net, "S10: the payment plan settles every net");
        }
        for t in &carried {
            let a = i128::try_from(t.amount).expect("fits");
            *check.entry(&t.payer).or_insert(0) -= a;
            *check.entry(&t.payee).or_insert(0) += a;
        }
        for (party, net) in &nets {
            assert_eq!(check.get(party).copied().unwrap_or(0), *net, "S10: plan and carried debts settle every net");
        }
        assert!(transfers.iter().all(|t| !matches!(t.payer, Party::Promoter(_))), "decision 17: a promoter never pays");
        let parties = payable.values().filter(|n| **n != 0).count();
        assert!(transfers.len() + plan_rolled_over.len() <= parties.saturating_sub(1), "S10: at most n − 1 transfers");
        let mut rolled_over = carried;
        rolled_over.extend(plan_rolled_over);
        Statement {
            alliance,
            period,
            start_ms,
            end_ms,
            lines,
            nets: nets.into_iter().collect(),
            bilateral: bilateral.into_iter().map(|((a, b), net)| BilateralNet { a, b, net }).collect(),
            transfers,
            rolled_over,
        }
    }
}

/// Decision 17: for each promoter with a negative net (in party order), its debt allocated to
/// the parties its lines of this statement owe, largest amount owed first (ties by party), each
/// at most what it is owed. These transfers are not paid: they are carried into the next
/// statement as rollover lines, where the promoter's new commissions net against them.
fn promoter_debts(lines: &[Line], nets: &BTreeMap<Party, i128>) -> Vec<Transfer> {
    let mut carried = Vec::new();
    for (party, net) in nets {
        if *net >= 0 || !matches!(party, Party::Promoter(_)) {
            continue;
        }
        // Lines are sorted by debtor: this promoter's are one run.
        let from = lines.partition_point(|l| l.debtor < *party);
        let to = from + lines[from..].partition_point(|l| l.debtor == *party);
        let mut owed: BTreeMap<&Party, u128> = BTreeMap::new();
        for l in &lines[from..to] {
            *owed.entry(&l.creditor).or_insert(0) += l.amount;
        }
        let mut owed: Vec<(&Party, u128)> = owed.into_iter().collect();
        owed.sort_by(|a, b| (Reverse(a.1), a.0).cmp(&(Reverse(b.1), b.0)));
        let mut left = net.unsigned_abs();
        for (creditor, amount) in owed {
            if left == 0 {
                break;
            }
            let take = amount.min(left);
            left -= take;
            carried.push(Transfer { payer: party.clone(), payee: creditor.clone(), amount: take });
        }
        assert_eq!(left, 0, "a negative net is at most what the party's lines owe");
    }
    carried
}

/// S10: greedy matching of the largest debtor to the largest creditor, ties by party order.
/// Each step settles at least one party, so there are at most n − 1 transfers. Transfers below
/// `min_payout` are rolled over instead of paid.
pub fn payment_plan(nets: &BTreeMap<Party, i128>, min_payout: u128) -> (Vec<Transfer>, Vec<Transfer>) {
    let mut debtors: BTreeSet<(Reverse<u128>, Party)> = BTreeSet::new();
    let mut creditors: BTreeSet<(Reverse<u128>, Party)> = BTreeSet::new();
    for (party, net) in nets {
        if *net < 0 {
            debtors.insert((Reverse(net.unsigned_abs()), party.clone()));
        } else if *net > 0 {
            creditors.insert((Reverse(net.unsigned_abs()), party.clone()));
        }
    }
    let mut paid = Vec::new();
    let mut rolled = Vec::new();
    while let (Some(d), Some(c)) = (debtors.pop_first(), creditors.pop_first()) {
        let (Reverse(owes), debtor) = d;
        let (Reverse(due), creditor) = c;
        let amount = owes.min(due);
        let transfer = Transfer { payer: debtor.clone(), payee: creditor.clone(), amount };
        if amount < min_payout {
            rolled.push(transfer);
        } else {
            paid.push(transfer);
        }
        if owes > amount {
            debtors.insert((Reverse(owes - amount), debtor));
        }
        if due > amount {
            creditors.insert((Reverse(due - amount), creditor));
        }
    }
    assert!(debtors.is_empty() && creditors.is_empty(), "S10: nets summing to zero leave nobody unmatched");
    (paid, rolled)
}
