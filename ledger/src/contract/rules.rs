//! The state rules, one handler per record kind. Every handler checks everything first and
//! only then changes the state, so a rejected record changes nothing but its receipt.

use std::collections::BTreeMap;

use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::money::{split_largest_remainder, Amount, Bps, AMOUNT_MAX_CENTS};
use crate::policy::HOUR_MS;
use crate::receipt::Code;
use crate::record::{Action, CardId, CodeSecret, CouponValue, Funding, Party, Payload, Place, PromoterId, Record, Terms};

use super::sales::OrderId;
use super::statement::LineKind;
use super::types::{
    Agreement, Batch, Card, Coupon, HashValue, Lot, Merchant, MerchantStatus, NamedKey, Promoter, Proposal, ProposalStatus,
    Referral, Sale, SaleItem, ValidatorChange,
};
use super::{days_ms, State};

type Rule = Result<(), Code>;

/// `value × numerator / denominator`, rounded half-to-even (DESIGN §5), exact in integers.
fn pro_rata_half_even(value: u64, numerator: u64, denominator: u64) -> u64 {
    if denominator == 0 {
        return 0;
    }
    let n = u128::from(value) * u128::from(numerator);
    let d = u128::from(denominator);
    let (q, r) = (n / d, n % d);
    let rounded = match (2 * r).cmp(&d) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    u64::try_from(rounded).unwrap_or(u64::MAX)
}

/// `amount × rate`, rounded half-to-even to cents: exactly `Bps::of` (the decimal product
/// `cents × bps / 10^6` is exact, so rounding it equals rounding the integer quotient), without
/// the decimal arithmetic on the per-sale path.
fn rate_of(rate: Bps, amount: Amount) -> Amount {
    let cents = pro_rata_half_even(amount.cents(), u64::from(rate.0), u64::from(crate::money::BPS_ONE));
    Amount::from_cents(cents).expect("a rate of at most 100% never exceeds the amount")
}

/// `value × numerator / denominator`, rounded up (cancelled points: rounding never leaves points
/// a refund should have removed, S7).
fn pro_rata_ceil(value: u64, numerator: u64, denominator: u64) -> u64 {
    if denominator == 0 {
        return 0;
    }
    let n = u128::from(value) * u128::from(numerator);
    u64::try_from(n.div_ceil(u128::from(denominator))).unwrap_or(u64::MAX)
}

/// [`State::sale_base_limit`]: the largest base a sale may declare, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaleBaseLimit {
    /// Gross less both values below.
    pub base: Amount,
    /// S6: issuer-funded coupons of other merchants.
    pub coupons_funded_by_others: Amount,
    /// S7: points of other merchants redeemed, at the point value.
    pub points_funded_by_others: Amount,
}

/// What a sale will do, computed before anything changes.
struct SalePlan {
    coupons: Vec<(Hash, Option<(PublicKey, Amount)>)>,
    consume: Vec<(u64, u64)>,
    points_clearing: Vec<(PublicKey, Amount)>,
    referral: Option<Hash>,
    payouts: Vec<(Party, LineKind, Amount)>,
    earned: u64,
    hold: Vec<Party>,
    referrers: Vec<Party>,
}

impl State {
    pub(super) fn dispatch(&mut self, block_ms: u64, record: &Record) -> Rule {
        let body = record.body();
        let signer = body.signer;
        let status = self.merchants.get(&signer).map(|m| m.status).ok_or(Code::SignerRemoved)?;
        match status {
            MerchantStatus::Removed => return Err(Code::SignerRemoved),
            // Decision: a suspended merchant may still refund its customers and confirm payments.
            MerchantStatus::Suspended if !matches!(body.payload, Payload::Refund { .. } | Payload::ConfirmPayment { .. }) => {
                return Err(Code::SignerSuspended);
            }
            _ => {}
        }
        let id = record.id();
        let te = body.created_at_ms;
        match &body.payload {
            Payload::Propose { action } => self.propose(id, signer, te, block_ms, action),
            Payload::Vote { proposal, approve } => self.vote(signer, block_ms, proposal, *approve),
            Payload::IssueCard { card } => self.issue_card(signer, card),
            Payload::Refer { code_hash, card, promoter, upstream, valid_at, expires_at_ms, multi_use } => {
                self.refer(id, signer, te, *code_hash, *card, promoter, upstream, valid_at, *expires_at_ms, *multi_use)
            }
            Payload::IssueCoupons { batch, code_hashes, value, min_spend, redeemable_at, funding, expires_at_ms } => self
                .issue_coupons(id, signer, te, batch, code_hashes, *value, *min_spend, redeemable_at, *funding, *expires_at_ms),
            Payload::Sale { order, gross, base, card, referral_code, coupon_codes, points_redeemed } => self.sale(
                id,
                signer,
                te,
                block_ms,
                order,
                *gross,
                *base,
                *card,
                referral_code.as_ref(),
                coupon_codes,
                *points_redeemed,
            ),
            Payload::Refund { order, refund_id, amount } => self.refund(id, signer, te, block_ms, order, refund_id, *amount),
            Payload::RevokeRedemption { order, code_hash } => self.revoke(id, signer, te, block_ms, order, code_hash),
            Payload::Agreement { agreement_id, counterparty, terms, starts_at_ms, ends_at_ms } => {
                self.agreement(id, signer, agreement_id, *counterparty, *terms, *starts_at_ms, *ends_at_ms)
            }
            Payload::Accept { agreement } => self.accept(signer, agreement),
            Payload::ConfirmPayment { period, payer, amount } => self.confirm_payment(signer, *period, *payer, *amount),
        }
    }

    // ----- helpers -----

    fn category(&self, merchant: &PublicKey) -> Option<&str> {
        self.merchants.get(merchant).map(|m| m.profile.category.as_str())
    }

    fn is_member(&self, merchant: &PublicKey) -> bool {
        self.merchants.get(merchant).is_some_and(|m| m.status != MerchantStatus::Removed)
    }

    /// S5: two different merchants of one category, not exempted by the policy at `te`.
    fn competitors(&self, a: &PublicKey, b: &PublicKey, te: u64) -> bool {
        self.competitors_known(a, self.merchants.get(a), b, self.category(b), te)
    }

    /// [`State::competitors`] with `a`'s entry and `b`'s category already looked up (a sale
    /// checks the seller against its referrer and its card's home: one lookup each).
    fn competitors_known(&self, a: &PublicKey, a_merchant: Option<&Merchant>, b: &PublicKey, b_category: Option<&str>, te: u64) -> bool {
        if a == b {
            return false;
        }
        match (a_merchant.map(|m| m.profile.category.as_str()), b_category) {
            (Some(x), Some(y)) if x == y => !self.policy_at(te).isolation_exempt(a, b),
            _ => false,
        }
    }

    fn place_matches(&self, places: &[Place], merchant: &PublicKey) -> bool {
        places.is_empty() || self.place_matches_known(places, merchant, self.category(merchant))
    }

    /// [`State::place_matches`] with the merchant's category already looked up.
    fn place_matches_known(&self, places: &[Place], merchant: &PublicKey, category: Option<&str>) -> bool {
        places.is_empty()
            || places.iter().any(|p| match p {
                Place::Merchant(k) => k == merchant,
                Place::Category(c) => Some(c.as_str()) == category,
            })
    }

    /// Places named by a Refer or IssueCoupons: known, and never a competitor of `signer` (S5).
    fn check_places(&self, signer: &PublicKey, te: u64, places: &[Place]) -> Rule {
        let own = self.category(signer).map(str::to_owned);
        for place in places {
            match place {
                Place::Merchant(k) => {
                    if !self.is_member(k) {
                        return Err(Code::UnknownMerchant);
                    }
                    if self.competitors(signer, k, te) {
                        return Err(Code::CompetitorIsolation);
                    }
                }
                Place::Category(c) => {
                    if !self.categories.iter().any(|x| x == c) {
                        return Err(Code::UnknownCategory);
                    }
                    if own.as_deref() == Some(c.as_str()) {
                        return Err(Code::CompetitorIsolation);
                    }
                }
            }
        }
        Ok(())
    }

    fn code_in_use(&self, code: &Hash) -> bool {
        self.referrals.contains(code) || self.coupons.contains(code)
    }

    /// S9: the rate override between `a` and `b` in force at `te`, if any.
    fn override_rates(&self, a: &PublicKey, b: &PublicKey, te: u64) -> (Option<Bps>, Option<Bps>) {
        let pair = if a < b { (*a, *b) } else { (*b, *a) };
        let Some(HashValue(id)) = self.overrides.get(&pair) else { return (None, None) };
        match self.agreements.get(id) {
            Some(ag) if ag.in_force(te, te.saturating_add(1)) => match ag.terms {
                Terms::RateOverride { referral_rate, home_rate } => (referral_rate, home_rate),
                Terms::FixedFee { .. } => (None, None),
            },
            _ => (None, None),
        }
    }

    /// S1: whether a referral is live and usable at `seller` (of `seller_category`) at `te`;
    /// `Err` says why not. `referrer` is the referrer's entry in the merchants table.
    fn referral_usable(&self, referral: &Referral, referrer: Option<&Merchant>, seller: &PublicKey, seller_category: Option<&str>, te: u64) -> Rule {
        if te >= referral.expires_at_ms {
            return Err(Code::ReferralExpired);
        }
        if !referral.multi_use && referral.uses > 0 {
            return Err(Code::ReferralUsed);
        }
        if !self.place_matches_known(&referral.valid_at, seller, seller_category) {
            return Err(Code::ReferralNotValidHere);
        }
        if self.competitors_known(&referral.referrer, referrer, seller, seller_category, te) {
            return Err(Code::CompetitorIsolation);
        }
        Ok(())
    }

    // ----- governance (§4) -----

    fn check_action(&self, action: &Action, block_ms: u64) -> Rule {
        let known_category = |c: &str| self.categories.iter().any(|x| x == c);
        let status = |k: &PublicKey| self.merchants.get(k).map(|m| m.status);
        match action {
            Action::AdmitMerchant(p) => {
                if self.merchants.contains(&p.key) {
                    return Err(Code::AlreadyMember);
                }
                if !known_category(&p.category) {
                    return Err(Code::UnknownCategory);
                }
            }
            Action::UpdateMerchant(p) => {
                if !self.is_member(&p.key) {
                    return Err(Code::UnknownMerchant);
                }
                if !known_category(&p.category) {
                    return Err(Code::UnknownCategory);
                }
            }
            Action::SuspendMerchant(k) => match status(k) {
                None | Some(MerchantStatus::Removed) => return Err(Code::UnknownMerchant),
                Some(MerchantStatus::Suspended) => return Err(Code::WrongStatus),
                Some(MerchantStatus::Active) => {}
            },
            Action::ReinstateMerchant(k) => match status(k) {
                None | Some(MerchantStatus::Removed) => return Err(Code::UnknownMerchant),
                Some(MerchantStatus::Active) => return Err(Code::WrongStatus),
                Some(MerchantStatus::Suspended) => {}
            },
            Action::RemoveMerchant(k) => {
                if !self.is_member(k) {
                    return Err(Code::UnknownMerchant);
                }
            }
            Action::RegisterPromoter { id, upstream, .. } => {
                if self.promoters.contains(id) {
                    return Err(Code::DuplicatePromoter);
                }
                if let Some(u) = upstream {
                    if !self.promoters.contains(u) {
                        return Err(Code::UnknownPromoter);
                    }
                }
            }
            Action::AddValidator { merchant, network_key } => {
                if status(merchant) != Some(MerchantStatus::Active) {
                    return Err(Code::UnknownMerchant);
                }
                if self.pending_validators().iter().any(|v| v.key == *merchant || v.network_key == *network_key) {
                    return Err(Code::AlreadyValidator);
                }
            }
            Action::RemoveValidator { merchant } => {
                let set = self.pending_validators();
                if !set.iter().any(|v| v.key == *merchant) || set.len() == 1 {
                    return Err(Code::NotValidator);
                }
            }
            Action::PublishPolicy(p) => {
                let latest = self.policies.last().map_or(0, |p| p.version);
                if Some(p.version) != latest.checked_add(1) {
                    return Err(Code::PolicyVersion);
                }
                if p.effective_at_ms < block_ms {
                    return Err(Code::PolicyInPast);
                }
            }
            Action::ReleaseHold(party) => {
                if !self.held.contains(party) {
                    return Err(Code::NotOnHold);
                }
            }
        }
        Ok(())
    }

    fn execute(&mut self, action: &Action, block_ms: u64) {
        match action {
            Action::AdmitMerchant(p) => self.merchants.insert(p.key, Merchant { profile: p.clone(), status: MerchantStatus::Active }),
            Action::UpdateMerchant(p) => {
                if let Some(m) = self.merchants.get_mut(&p.key) {
                    m.profile = p.clone();
                }
            }
            Action::SuspendMerchant(k) => self.set_status(k, MerchantStatus::Suspended),
            Action::ReinstateMerchant(k) => self.set_status(k, MerchantStatus::Active),
            Action::RemoveMerchant(k) => {
                self.set_status(k, MerchantStatus::Removed);
                if self.pending_validators().iter().any(|v| v.key == *k) {
                    self.validator_changes.push(ValidatorChange::Remove { merchant: *k });
                }
            }
            Action::RegisterPromoter { id, name, upstream } => {
                self.promoters.insert(id.clone(), Promoter { name: name.clone(), upstream: upstream.clone() });
            }
            Action::AddValidator { merchant, network_key } => {
                self.validator_changes.push(ValidatorChange::Add { merchant: *merchant, network_key: *network_key });
            }
            Action::RemoveValidator { merchant } => self.validator_changes.push(ValidatorChange::Remove { merchant: *merchant }),
            Action::PublishPolicy(p) => {
                let mut p = p.clone();
                p.effective_at_ms = p.effective_at_ms.max(block_ms);
                self.policies.push(p);
            }
            Action::ReleaseHold(party) => self.release(party),
        }
    }

    fn set_status(&mut self, k: &PublicKey, status: MerchantStatus) {
        if let Some(m) = self.merchants.get_mut(k) {
            m.status = status;
        }
    }

    fn propose(&mut self, id: Hash, signer: PublicKey, te: u64, block_ms: u64, action: &Action) -> Rule {
        self.check_action(action, block_ms)?;
        // The proposal counts as the proposer's approving vote.
        self.proposals.insert(
            id,
            Proposal { proposer: signer, action: action.clone(), created_at_ms: te, votes: vec![(signer, true)], status: ProposalStatus::Open },
        );
        self.tally(&id, block_ms);
        Ok(())
    }

    fn vote(&mut self, signer: PublicKey, block_ms: u64, proposal: &Hash, approve: bool) -> Rule {
        let p = self.proposals.get(proposal).ok_or(Code::UnknownProposal)?;
        if p.status != ProposalStatus::Open {
            return Err(Code::ProposalClosed);
        }
        let Err(at) = p.votes.binary_search_by(|(k, _)| k.cmp(&signer)) else { return Err(Code::DuplicateVote) };
        if let Some(p) = self.proposals.get_mut(proposal) {
            p.votes.insert(at, (signer, approve));
        }
        self.tally(proposal, block_ms);
        Ok(())
    }

    /// §4: passes with approvals of more than 2/3 of the active members; fails once that can
    /// no longer happen. Only currently active members' votes count.
    fn tally(&mut self, id: &Hash, block_ms: u64) {
        let Some(p) = self.proposals.get(id) else { return };
        let active = self.active_members() as u64;
        let is_active = |k: &PublicKey| self.merchants.get(k).is_some_and(|m| m.status == MerchantStatus::Active);
        let approvals = p.votes.iter().filter(|(k, v)| *v && is_active(k)).count() as u64;
        let rejections = p.votes.iter().filter(|(k, v)| !*v && is_active(k)).count() as u64;
        let action = p.action.clone();
        let status = if approvals * 3 > active * 2 {
            // Re-checked at pass time: the state may have moved since the proposal.
            if self.check_action(&action, block_ms).is_ok() {
                self.execute(&action, block_ms);
                ProposalStatus::Passed
            } else {
                ProposalStatus::Failed
            }
        } else if (active - rejections.min(active)) * 3 <= active * 2 {
            ProposalStatus::Failed
        } else {
            return;
        };
        if let Some(p) = self.proposals.get_mut(id) {
            p.status = status;
        }
    }

    // ----- cards, referrals, coupons -----

    fn issue_card(&mut self, signer: PublicKey, card: &CardId) -> Rule {
        if self.cards.contains(card) {
            return Err(Code::CardExists);
        }
        self.cards.insert(*card, Card { home: signer, lots: Vec::new(), debt: Vec::new(), last_referral: None, recent: Vec::new() });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn refer(
        &mut self,
        id: Hash,
        signer: PublicKey,
        te: u64,
        code_hash: Hash,
        card: Option<CardId>,
        promoter: &Option<PromoterId>,
        upstream: &Option<PromoterId>,
        valid_at: &[Place],
        expires_at_ms: u64,
        multi_use: bool,
    ) -> Rule {
        if self.code_in_use(&code_hash) {
            return Err(Code::DuplicateCode);
        }
        if let Some(c) = &card {
            if !self.cards.contains(c) {
                return Err(Code::UnknownCard);
            }
        }
        // S2: the promoter is registered; its upstream is the registered one, never a third level.
        let resolved_upstream = match promoter {
            None => None,
            Some(p) => {
                let registered = self.promoters.get(p).ok_or(Code::UnknownPromoter)?.upstream.clone();
                if upstream.is_some() && *upstream != registered {
                    return Err(Code::UpstreamMismatch);
                }
                registered
            }
        };
        // S5: a referral to a competitor is rejected.
        self.check_places(&signer, te, valid_at)?;
        self.referrals.insert(
            code_hash,
            Referral {
                record: id,
                referrer: signer,
                card,
                promoter: promoter.clone(),
                upstream: resolved_upstream,
                valid_at: valid_at.to_vec(),
                expires_at_ms,
                multi_use,
                uses: 0,
            },
        );
        // S1: last touch — the card's latest referral is the one that counts.
        if let Some(c) = &card {
            if let Some(card) = self.cards.get_mut(c) {
                card.last_referral = Some(code_hash);
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_coupons(
        &mut self,
        id: Hash,
        signer: PublicKey,
        te: u64,
        batch: &str,
        code_hashes: &[Hash],
        value: CouponValue,
        min_spend: Amount,
        redeemable_at: &[Place],
        funding: Funding,
        expires_at_ms: u64,
    ) -> Rule {
        let name = NamedKey { merchant: signer, name: batch.to_owned() };
        if self.batch_names.contains(&name) {
            return Err(Code::DuplicateBatch);
        }
        if code_hashes.iter().any(|h| self.code_in_use(h)) {
            return Err(Code::DuplicateCode);
        }
        // S5: a coupon cannot list a competitor as a redemption place.
        self.check_places(&signer, te, redeemable_at)?;
        self.batch_names.insert(name, HashValue(id));
        self.batches.insert(id, Batch { issuer: signer, value, min_spend, redeemable_at: redeemable_at.to_vec(), funding, expires_at_ms });
        for h in code_hashes {
            self.coupons.insert(*h, Coupon { batch: id, redeemed_by: None });
        }
        Ok(())
    }

    // ----- sales (S1–S7, S11) -----

    /// S6: the coupons a sale presents (by code hash): each coupon's claim, and the value of
    /// issuer-funded coupons of other merchants (cents). Checks redeemability, min spend and that
    /// the coupons' total does not exceed the gross.
    #[allow(clippy::type_complexity)]
    fn sale_coupons(
        &self,
        signer: &PublicKey,
        te: u64,
        gross: Amount,
        code_hashes: impl ExactSizeIterator<Item = Hash>,
    ) -> Result<(Vec<(Hash, Option<(PublicKey, Amount)>)>, u64), Code> {
        let mut coupons = Vec::with_capacity(code_hashes.len());
        let mut discount_total: u64 = 0;
        let mut funded_by_others: u64 = 0;
        for code in code_hashes {
            let coupon = self.coupons.get(&code).ok_or(Code::UnknownCoupon)?;
            if coupon.redeemed_by.is_some() {
                return Err(Code::CouponRedeemed);
            }
            let batch = self.batches.get(&coupon.batch).ok_or(Code::UnknownCoupon)?;
            if te >= batch.expires_at_ms {
                return Err(Code::CouponExpired);
            }
            if !self.place_matches(&batch.redeemable_at, signer) {
                return Err(Code::CouponNotRedeemableHere);
            }
            if self.competitors(&batch.issuer, signer, te) {
                return Err(Code::CompetitorIsolation);
            }
            if gross < batch.min_spend {
                return Err(Code::BelowMinSpend);
            }
            // Decision: a percentage coupon is a percentage of the gross.
            let value = match batch.value {
                CouponValue::Fixed(a) => a,
                CouponValue::Percent(rate) => rate_of(rate, gross),
            };
            discount_total = discount_total.saturating_add(value.cents());
            let claim = if batch.funding == Funding::Issuer && batch.issuer != *signer {
                funded_by_others = funded_by_others.saturating_add(value.cents());
                Some((batch.issuer, value))
            } else {
                None
            };
            coupons.push((code, claim));
        }
        if discount_total > gross.cents() {
            return Err(Code::CouponsExceedOrder);
        }
        Ok((coupons, funded_by_others))
    }

    /// S7: the points a sale redeems, earliest-expiring spendable lots first: the lots consumed
    /// (lot id, points) and what each other issuer owes the seller for its points.
    #[allow(clippy::type_complexity)]
    fn sale_points(
        &self,
        signer: &PublicKey,
        te: u64,
        card_state: Option<&Card>,
        points_redeemed: u64,
    ) -> Result<(Vec<(u64, u64)>, Vec<(PublicKey, Amount)>), Code> {
        let mut consume = Vec::new();
        if points_redeemed == 0 {
            return Ok((consume, Vec::new()));
        }
        let mut points_clearing: BTreeMap<PublicKey, u64> = BTreeMap::new();
        let card_state = card_state.ok_or(Code::PointsWithoutCard)?;
        let spendable = card_state
            .lots
            .iter()
            .filter(|l| l.spendable_at_ms <= te && l.expires_at_ms > te)
            .map(|l| l.points)
            .fold(0u64, u64::saturating_add);
        if spendable < points_redeemed.saturating_add(card_state.debt_total()) {
            return Err(Code::PointsOverdrawn);
        }
        let mut left = points_redeemed;
        for lot in card_state.lots.iter().filter(|l| l.spendable_at_ms <= te && l.expires_at_ms > te) {
            if left == 0 {
                break;
            }
            let take = lot.points.min(left);
            left -= take;
            consume.push((lot.id, take));
            if lot.issuer != *signer {
                let e = points_clearing.entry(lot.issuer).or_insert(0);
                *e = e.saturating_add(take);
            }
        }
        assert_eq!(left, 0, "S7: spendable points cover the redemption");
        let point_value = self.policy_at(te).point_value.cents();
        let mut points_amounts = Vec::with_capacity(points_clearing.len());
        for (issuer, points) in points_clearing {
            let cents = u128::from(points) * u128::from(point_value);
            if cents > u128::from(AMOUNT_MAX_CENTS) {
                return Err(Code::AmountOverflow);
            }
            points_amounts.push((issuer, Amount::from_cents(cents as u64).map_err(|_| Code::AmountOverflow)?));
        }
        Ok((consume, points_amounts))
    }

    /// The largest commission base a sale may declare (decision 6, 7): the gross less the value
    /// funded by others — issuer-funded coupons of other merchants (S6) and points of other
    /// merchants redeemed (S7). `Err` is the receipt the sale would get for its coupons or
    /// points. What `plaza submit sale` and the API use when no base is given.
    pub fn sale_base_limit(
        &self,
        seller: &PublicKey,
        te: u64,
        gross: Amount,
        card: Option<&CardId>,
        coupon_hashes: &[Hash],
        points_redeemed: u64,
    ) -> Result<SaleBaseLimit, Code> {
        let card_state = match card {
            Some(c) => Some(self.cards.get(c).ok_or(Code::UnknownCard)?),
            None => None,
        };
        let (_, coupons_funded) = self.sale_coupons(seller, te, gross, coupon_hashes.iter().copied())?;
        let (_, points) = self.sale_points(seller, te, card_state, points_redeemed)?;
        let points_funded = points.iter().map(|(_, a)| a.cents()).fold(0u64, u64::saturating_add);
        let base = gross.cents().saturating_sub(coupons_funded).saturating_sub(points_funded);
        let cents = |c: u64| Amount::from_cents(c).map_err(|_| Code::AmountOverflow);
        Ok(SaleBaseLimit { base: cents(base)?, coupons_funded_by_others: cents(coupons_funded)?, points_funded_by_others: cents(points_funded)? })
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_sale(
        &self,
        signer: &PublicKey,
        te: u64,
        gross: Amount,
        base: Amount,
        card: Option<CardId>,
        referral_code: Option<&CodeSecret>,
        coupon_codes: &[CodeSecret],
        points_redeemed: u64,
    ) -> Result<SalePlan, Code> {
        let policy = self.policy_at(te);
        let card_state = match &card {
            Some(c) => Some(self.cards.get(c).ok_or(Code::UnknownCard)?),
            None => None,
        };

        // S6: coupons; the base excludes the value of other merchants' issuer-funded coupons.
        let (coupons, funded_by_others) = self.sale_coupons(signer, te, gross, coupon_codes.iter().map(CodeSecret::hash))?;
        if base.cents() > gross.cents() - funded_by_others {
            return Err(Code::BaseTooHigh);
        }

        // S7: points redeemed; the base also excludes the points of other merchants (their
        // issuers pay for them, like a coupon funded by others).
        let (consume, points_amounts) = self.sale_points(signer, te, card_state, points_redeemed)?;
        let points_funded: u64 = points_amounts.iter().map(|(_, a)| a.cents()).fold(0u64, u64::saturating_add);
        if base.cents() > (gross.cents() - funded_by_others).saturating_sub(points_funded) {
            return Err(Code::BaseIncludesPoints);
        }

        // S1: the code presented wins; otherwise the card's last touch, if usable here. Each
        // merchant involved (seller, referrer, card home) is looked up once.
        let seller_category = self.category(signer);
        let referral = match referral_code {
            Some(secret) => {
                let code = secret.hash();
                let r = self.referrals.get(&code).ok_or(Code::UnknownReferral)?;
                let referrer = self.merchants.get(&r.referrer);
                self.referral_usable(r, referrer, signer, seller_category, te)?;
                Some((code, r, referrer))
            }
            None => card_state.and_then(|c| c.last_referral).and_then(|code| {
                let r = self.referrals.get(&code)?;
                let referrer = self.merchants.get(&r.referrer);
                self.referral_usable(r, referrer, signer, seller_category, te).ok().map(|()| (code, r, referrer))
            }),
        };

        // At most referrer, promoter, upstream and home merchant; the referrers (kept with the
        // sale) at most the referrer and the promoter.
        let mut payouts: Vec<(Party, LineKind, Amount)> = Vec::with_capacity(4);
        let mut referrers = Vec::with_capacity(usize::from(referral.is_some()) * 2);
        if let Some((_, r, referrer)) = referral {
            // S11: a self-referral earns the referrer nothing.
            if r.referrer != *signer && referrer.is_some_and(|m| m.status != MerchantStatus::Removed) {
                let rate = self.override_rates(&r.referrer, signer, te).0.unwrap_or(policy.referral_rate);
                payouts.push((Party::Merchant(r.referrer), LineKind::Referral, rate_of(rate, base)));
                referrers.push(Party::Merchant(r.referrer));
            }
            // S2: promoter and at most one upstream.
            if let Some(p) = &r.promoter {
                payouts.push((Party::Promoter(p.clone()), LineKind::Promoter, rate_of(policy.promoter_rate, base)));
                referrers.push(Party::Promoter(p.clone()));
                if let Some(u) = &r.upstream {
                    payouts.push((Party::Promoter(u.clone()), LineKind::Upstream, rate_of(policy.upstream_rate, base)));
                }
            }
        }
        // S3: the card's home merchant, unless it is the seller or a competitor (S5).
        if let Some(c) = card_state {
            let home = self.merchants.get(&c.home);
            if c.home != *signer
                && !self.competitors_known(&c.home, home, signer, seller_category, te)
                && home.is_some_and(|m| m.status != MerchantStatus::Removed)
            {
                let rate = self.override_rates(&c.home, signer, te).1.unwrap_or(policy.home_rate);
                payouts.push((Party::Merchant(c.home), LineKind::HomeShare, rate_of(rate, base)));
            }
        }
        // S4: all cross-merchant payouts together at most share_cap of the base, scaled down
        // proportionally by largest remainder in party order.
        let cap = rate_of(policy.share_cap, base);
        let total: u64 = payouts.iter().map(|(_, _, a)| a.cents()).sum();
        if total > cap.cents() {
            payouts.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            let weights: Vec<u64> = payouts.iter().map(|(_, _, a)| a.cents()).collect();
            let parts = split_largest_remainder(cap, &weights);
            for (payout, part) in payouts.iter_mut().zip(parts) {
                payout.2 = part;
            }
            assert_eq!(payouts.iter().map(|(_, _, a)| a.cents()).sum::<u64>(), cap.cents(), "S4: scaled payouts sum to the cap");
        }

        // S7: points earned on the base, rounded down.
        let earned = if card.is_some() {
            let points = u128::from(base.cents()) * u128::from(policy.earn_rate_for(signer)) / 100;
            u64::try_from(points).map_err(|_| Code::AmountOverflow)?
        } else {
            0
        };

        // S11: a card buying more than card_sales_per_hour_max at one merchant within an hour
        // puts the sale's referrers on hold.
        let mut hold = Vec::new();
        if let Some(c) = card_state {
            let recent = c.recent.iter().filter(|(m, t)| m == signer && t.saturating_add(HOUR_MS) > te).count() as u64;
            if recent + 1 > u64::from(policy.card_sales_per_hour_max) {
                hold = referrers.clone();
            }
        }
        Ok(SalePlan { coupons, consume, points_clearing: points_amounts, referral: referral.map(|(code, _, _)| code), payouts, earned, hold, referrers })
    }

    #[allow(clippy::too_many_arguments)]
    fn sale(
        &mut self,
        id: Hash,
        signer: PublicKey,
        te: u64,
        block_ms: u64,
        order: &str,
        gross: Amount,
        base: Amount,
        card: Option<CardId>,
        referral_code: Option<&CodeSecret>,
        coupon_codes: &[CodeSecret],
        points_redeemed: u64,
    ) -> Rule {
        let order_id = OrderId::new(order);
        if self.sales.contains(&signer, &order_id) {
            return Err(Code::DuplicateOrder);
        }
        let plan = self.plan_sale(&signer, te, gross, base, card, referral_code, coupon_codes, points_redeemed)?;
        let policy = self.policy_at(te);
        let lock_at = block_ms.saturating_add(days_ms(policy.lock_days));
        let hold_ms = days_ms(policy.points_hold_days);
        let validity_ms = days_ms(policy.points_validity_days);
        let card_sales_max = policy.card_sales_per_hour_max as usize;

        // --- from here on the sale is accepted ---
        let me = Party::Merchant(signer);
        let mut me_id = None;
        // Kept with the sale: allocated at its final size.
        let mut items = Vec::with_capacity(plan.coupons.iter().filter(|(_, claim)| claim.is_some()).count() + plan.points_clearing.len() + plan.payouts.len());
        let mut sale_coupons = Vec::with_capacity(plan.coupons.len());
        for (code, claim) in &plan.coupons {
            if let Some(c) = self.coupons.get_mut(code) {
                c.redeemed_by = Some(NamedKey { merchant: signer, name: order.to_owned() });
            }
            let index = match claim {
                Some((issuer, value)) => {
                    let debtor = Party::Merchant(*issuer);
                    match self.add_seller_item(&me, &mut me_id, &debtor, false, *value, LineKind::CouponClearing, id, lock_at) {
                        Some((item, debtor, creditor)) => {
                            items.push(SaleItem { item, debtor, creditor, kind: LineKind::CouponClearing, original: *value, reversed: Amount::ZERO });
                            Some((items.len() - 1) as u32)
                        }
                        None => None,
                    }
                }
                None => None,
            };
            sale_coupons.push((*code, index));
        }
        for (issuer, amount) in &plan.points_clearing {
            let debtor = Party::Merchant(*issuer);
            if let Some((item, debtor, creditor)) = self.add_seller_item(&me, &mut me_id, &debtor, false, *amount, LineKind::PointsClearing, id, lock_at) {
                items.push(SaleItem { item, debtor, creditor, kind: LineKind::PointsClearing, original: *amount, reversed: Amount::ZERO });
            }
        }
        for (creditor, kind, amount) in &plan.payouts {
            if let Some((item, debtor, creditor)) = self.add_seller_item(&me, &mut me_id, creditor, true, *amount, *kind, id, lock_at) {
                items.push(SaleItem { item, debtor, creditor, kind: *kind, original: *amount, reversed: Amount::ZERO });
            }
        }
        if let Some(code) = &plan.referral {
            if let Some(r) = self.referrals.get_mut(code) {
                r.uses = r.uses.saturating_add(1);
            }
        }
        let mut earned = None;
        if let Some(card_id) = card {
            let lot_id = self.next_lot;
            let mut new_lot = None;
            if let Some(c) = self.cards.get_mut(&card_id) {
                // Breakage (S7): expired lots lapse when the card is next touched. The lots are
                // sorted by expiry and none is empty (every change below removes an emptied
                // lot; the decoder refuses either), so the expired ones are a prefix: a card
                // with thousands of lots is not scanned on every sale. Counted from the front,
                // not by binary search: usually none has expired, and a search's dependent
                // loads into a card's cold lots cost more than the one they replace
                // (docs/BENCHMARKS.md: apply 1.10x).
                let expired = c.lots.iter().take_while(|l| l.expires_at_ms <= te).count();
                c.lots.drain(..expired);
                for (lot, take) in &plan.consume {
                    if let Some(l) = c.lots.iter_mut().find(|l| l.id == *lot) {
                        l.points -= *take;
                    }
                }
                if !plan.consume.is_empty() {
                    // Only a redemption can have emptied a lot since the line above.
                    c.lots.retain(|l| l.points > 0);
                }
                let mut points = plan.earned;
                // A negative balance with this issuer is paid off first (S8).
                if let Some(i) = c.debt.iter().position(|(k, _)| *k == signer) {
                    let pay = c.debt[i].1.min(points);
                    c.debt[i].1 -= pay;
                    points -= pay;
                    if c.debt[i].1 == 0 {
                        c.debt.remove(i);
                    }
                }
                let expires = te.saturating_add(validity_ms);
                if points > 0 {
                    let lot = Lot { id: lot_id, issuer: signer, points, spendable_at_ms: te.saturating_add(hold_ms), expires_at_ms: expires };
                    // A new lot expires last as a rule (the validity is one policy's): appended
                    // without a search unless an older policy gave a later expiry.
                    let key = (lot.expires_at_ms, lot.id);
                    let at = match c.lots.last() {
                        Some(last) if (last.expires_at_ms, last.id) > key => c.lots.partition_point(|l| (l.expires_at_ms, l.id) <= key),
                        _ => c.lots.len(),
                    };
                    c.lots.insert(at, lot);
                }
                // The sale remembers every point it earned, those that paid off a debt too, so
                // a refund cancels them all: what its lot no longer holds becomes debt again
                // (S8). The lot id is taken even when the debt absorbed every point.
                if plan.earned > 0 {
                    new_lot = Some((lot_id, plan.earned, 0, expires));
                }
                c.recent.retain(|(_, t)| t.saturating_add(HOUR_MS) > te);
                c.recent.push((signer, te));
                let mine = c.recent.iter().filter(|(m, _)| *m == signer).count();
                if mine > card_sales_max + 1 {
                    if let Some(i) = c.recent.iter().position(|(m, _)| *m == signer) {
                        c.recent.remove(i);
                    }
                }
            }
            if new_lot.is_some() {
                self.next_lot += 1;
                earned = new_lot;
            }
        }
        for party in &plan.referrers {
            let stats = if let Some(s) = self.referrer_stats.get_mut(party) {
                s
            } else {
                self.referrer_stats.insert(party.clone(), Default::default());
                self.referrer_stats.get_mut(party).expect("just inserted")
            };
            stats.referred += u128::from(gross.cents());
        }
        for party in plan.hold {
            self.hold(party);
        }
        self.sales.insert(
            signer,
            order_id,
            Sale {
                record: id,
                event_ms: te,
                gross,
                base,
                refunded: Amount::ZERO,
                refund_ids: Vec::new(),
                card,
                items,
                earned,
                coupons: sale_coupons,
                referrers: plan.referrers,
            },
        );
        Ok(())
    }

    // ----- refunds and revocations (S6, S8, S11) -----

    #[allow(clippy::too_many_arguments)]
    fn refund(&mut self, id: Hash, signer: PublicKey, te: u64, block_ms: u64, order: &str, refund_id: &str, amount: Amount) -> Rule {
        let order_id = OrderId::new(order);
        let sale = self.sales.get(&signer, &order_id).ok_or(Code::UnknownOrder)?;
        if sale.refund_ids.iter().any(|r| r == refund_id) {
            return Err(Code::DuplicateRefund);
        }
        let cumulative = sale.refunded.checked_add(amount).filter(|c| *c <= sale.gross).ok_or(Code::OverRefund)?;
        let gross = sale.gross.cents();
        let card = sale.card;
        let referrers = sale.referrers.clone();
        let earned = sale.earned;

        // S8: commissions are reversed pro rata, cumulatively (a full refund reverses exactly all).
        let mut reversals = Vec::new();
        for (index, item) in sale.items.iter().enumerate() {
            if !item.kind.is_commission() {
                continue;
            }
            let target = pro_rata_half_even(item.original.cents(), cumulative.cents(), gross);
            let delta = target.saturating_sub(item.reversed.cents());
            if delta > 0 {
                reversals.push((index, item.item, item.debtor, item.creditor, delta));
            }
        }
        // S8: earned points are cancelled pro rata (rounded up); what was already spent drives
        // the card negative. Points of an expired lot lapsed already and cancel nothing.
        let mut cancel = None;
        if let (Some(card_id), Some((lot, points, cancelled, expires))) = (card, earned) {
            let target = pro_rata_ceil(points, cumulative.cents(), gross).min(points);
            let delta = target.saturating_sub(cancelled);
            if delta > 0 {
                cancel = Some((card_id, lot, delta, target, te < expires));
            }
        }

        // --- accepted ---
        for (index, item_id, debtor, creditor, delta) in &reversals {
            let delta_amount = Amount::from_cents(*delta).map_err(|_| Code::AmountOverflow)?;
            self.reverse_item(*item_id, *debtor, *creditor, delta_amount, id, block_ms);
            if let Some(sale) = self.sales.get_mut(&signer, &order_id) {
                let item = &mut sale.items[*index];
                item.reversed = item.reversed.checked_add(delta_amount).unwrap_or(item.original);
            }
        }
        if let Some((card_id, lot, delta, target, live)) = cancel {
            if let Some(c) = self.cards.get_mut(&card_id) {
                let mut shortfall = delta;
                if let Some(i) = c.lots.iter().position(|l| l.id == lot) {
                    let take = c.lots[i].points.min(shortfall);
                    c.lots[i].points -= take;
                    shortfall -= take;
                    if c.lots[i].points == 0 {
                        c.lots.remove(i);
                    }
                }
                if live && shortfall > 0 {
                    match c.debt.iter().position(|(k, _)| *k == signer) {
                        Some(i) => c.debt[i].1 = c.debt[i].1.saturating_add(shortfall),
                        None => {
                            let at = c.debt.partition_point(|(k, _)| *k < signer);
                            c.debt.insert(at, (signer, shortfall));
                        }
                    }
                }
            }
            if let Some(sale) = self.sales.get_mut(&signer, &order_id) {
                if let Some(e) = sale.earned.as_mut() {
                    e.2 = target;
                }
            }
        }
        if let Some(sale) = self.sales.get_mut(&signer, &order_id) {
            sale.refunded = cumulative;
            sale.refund_ids.push(refund_id.to_owned());
        }
        // S11: a referrer whose referred sales are refunded above refund_ratio_max goes on hold.
        let ratio_max = u128::from(self.policy_at(te).refund_ratio_max.0);
        for party in referrers {
            if let Some(s) = self.referrer_stats.get_mut(&party) {
                s.refunded += u128::from(amount.cents());
                if s.refunded * 10_000 > ratio_max * s.referred {
                    self.hold(party);
                }
            }
        }
        Ok(())
    }

    fn revoke(&mut self, id: Hash, signer: PublicKey, te: u64, block_ms: u64, order: &str, code_hash: &Hash) -> Rule {
        let order_id = OrderId::new(order);
        let sale = self.sales.get(&signer, &order_id).ok_or(Code::UnknownRedemption)?;
        let position = sale.coupons.iter().position(|(c, _)| c == code_hash).ok_or(Code::UnknownRedemption)?;
        if te.saturating_sub(sale.event_ms) > self.policy_at(te).revocation_window_ms {
            return Err(Code::RevocationWindowClosed);
        }
        let item_index = sale.coupons[position].1;
        let reversal = item_index.and_then(|i| sale.items.get(i as usize)).map(|item| {
            (item.item, item.debtor, item.creditor, item.original.saturating_sub(item.reversed))
        });
        // --- accepted: the coupon can be redeemed again ---
        if let Some((item, debtor, creditor, delta)) = reversal {
            self.reverse_item(item, debtor, creditor, delta, id, block_ms);
        }
        if let Some(sale) = self.sales.get_mut(&signer, &order_id) {
            sale.coupons.remove(position);
            if let Some(i) = item_index {
                if let Some(item) = sale.items.get_mut(i as usize) {
                    item.reversed = item.original;
                }
            }
        }
        if let Some(c) = self.coupons.get_mut(code_hash) {
            c.redeemed_by = None;
        }
        Ok(())
    }

    // ----- agreements (S9) -----

    #[allow(clippy::too_many_arguments)]
    fn agreement(
        &mut self,
        id: Hash,
        signer: PublicKey,
        agreement_id: &str,
        counterparty: PublicKey,
        terms: Terms,
        starts_at_ms: u64,
        ends_at_ms: Option<u64>,
    ) -> Rule {
        let name = NamedKey { merchant: signer, name: agreement_id.to_owned() };
        if self.agreement_names.contains(&name) {
            return Err(Code::DuplicateAgreement);
        }
        if self.merchants.get(&counterparty).map(|m| m.status) != Some(MerchantStatus::Active) {
            return Err(Code::UnknownMerchant);
        }
        self.agreement_names.insert(name, HashValue(id));
        self.agreements.insert(id, Agreement { proposer: signer, counterparty, terms, starts_at_ms, ends_at_ms, accepted: false });
        Ok(())
    }

    fn accept(&mut self, signer: PublicKey, agreement: &Hash) -> Rule {
        let a = self.agreements.get(agreement).ok_or(Code::UnknownAgreement)?;
        if a.counterparty != signer {
            return Err(Code::NotCounterparty);
        }
        if a.accepted {
            return Err(Code::AlreadyAccepted);
        }
        let (proposer, terms) = (a.proposer, a.terms);
        if let Some(a) = self.agreements.get_mut(agreement) {
            a.accepted = true;
        }
        // S9: the latest accepted override between a pair replaces earlier ones.
        if let Terms::RateOverride { .. } = terms {
            let pair = if proposer < signer { (proposer, signer) } else { (signer, proposer) };
            self.overrides.insert(pair, HashValue(*agreement));
        }
        Ok(())
    }

    // ----- payments (S12) -----

    fn confirm_payment(&mut self, signer: PublicKey, period: u64, payer: PublicKey, amount: Amount) -> Rule {
        let summary = self.statements.get(&period).ok_or(Code::UnknownStatement)?;
        let payer_party = Party::Merchant(payer);
        let me = Party::Merchant(signer);
        // The signer's own transfer first; otherwise (decision: promoters sign nothing) any
        // member other than the payer may witness the payer's payment to a promoter.
        let index = summary
            .obligations
            .iter()
            .position(|o| o.payer == payer_party && o.payee == me && o.outstanding > 0)
            .or_else(|| {
                summary
                    .obligations
                    .iter()
                    .position(|o| o.payer == payer_party && matches!(o.payee, Party::Promoter(_)) && o.outstanding > 0)
            })
            .ok_or(Code::NoSuchTransfer)?;
        let cents = u128::from(amount.cents());
        if cents > summary.obligations[index].outstanding {
            return Err(Code::OverConfirmation);
        }
        let payee = summary.obligations[index].payee.clone();
        if let Some(s) = self.statements.get_mut(&period) {
            s.obligations[index].outstanding -= cents;
        }
        let b = self.balance_mut(&payee);
        b.locked_in -= cents;
        b.paid_in += cents;
        let b = self.balance_mut(&payer_party);
        b.locked_out -= cents;
        b.paid_out += cents;
        Ok(())
    }
}

/// Where a coupon can be used (issue 19, ledger/src/nearby.rs), answered by the rules above so
/// the query and the contract never disagree.
impl State {
    /// The batch a coupon belongs to (its terms and places).
    pub fn coupon_batch(&self, batch: &Hash) -> Option<&Batch> {
        self.batches.get(batch)
    }

    /// S5, S6: whether a Sale by `merchant` created at `time_ms` passes the place checks of a
    /// coupon of `batch`: the merchant is active, listed by the batch (or the batch lists no
    /// place), and not a competitor of the issuer. The coupon's expiry, use and minimum spend
    /// are the coupon's, not the place's, and are not checked here.
    pub fn coupon_place_ok(&self, batch: &Hash, merchant: &PublicKey, time_ms: u64) -> bool {
        let Some(b) = self.batches.get(batch) else { return false };
        self.merchants.get(merchant).is_some_and(|m| m.status == MerchantStatus::Active)
            && self.place_matches(&b.redeemable_at, merchant)
            && !self.competitors(&b.issuer, merchant, time_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pro_rata_rounds_half_to_even_and_is_exact_at_the_whole() {
        assert_eq!(pro_rata_half_even(500, 1, 2), 250);
        assert_eq!(pro_rata_half_even(5, 1, 2), 2); // 2.5 → 2
        assert_eq!(pro_rata_half_even(7, 1, 2), 4); // 3.5 → 4
        assert_eq!(pro_rata_half_even(123_457, 999, 999), 123_457);
        assert_eq!(pro_rata_ceil(10, 1, 3), 4);
        assert_eq!(pro_rata_ceil(10, 3, 3), 10);
    }

    #[test]
    fn rate_of_matches_the_decimal_product() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let cents = match i % 4 {
                0 => x % 1_000,
                1 => x % 1_000_000,
                2 => x % AMOUNT_MAX_CENTS,
                _ => (x % 20_000) * 50 + 25,
            };
            let rate = Bps(((x >> 40) % 10_001) as u32);
            let amount = Amount::from_cents(cents).unwrap_or(Amount::ZERO);
            assert_eq!(rate_of(rate, amount), rate.of(amount), "{rate:?} of {cents}");
        }
        for (bps, cents) in [(5_000, 1), (5_000, 3), (500, 10), (500, 30), (10_000, AMOUNT_MAX_CENTS), (1, 5_000), (1, 15_000)] {
            let amount = Amount::from_cents(cents).unwrap_or(Amount::ZERO);
            assert_eq!(rate_of(Bps(bps), amount), Bps(bps).of(amount));
        }
    }
}
