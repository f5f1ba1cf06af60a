//! Nearby members (issue 19): which members are near a point, by district and distance, and
//! where a coupon or a card's points can be used. Pure queries over the [`State`]: the time is
//! an argument, distances are integers ([`crate::geo`]), every list is sorted by distance and
//! then merchant key, so every node gives the same answer for the same state and time.
//!
//! The "can be used here" answers are the contract's own rules: a coupon's places are checked
//! by [`State::coupon_place_ok`] (S5, S6), and points of any issuer can be redeemed at any
//! active member (S7: the issuer then owes the redeeming merchant their value).

use std::fmt;

use crate::contract::{MerchantStatus, State};
use crate::genesis::Named;
use crate::geo::{distance_m, GeoError, Point};
use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::record::{check_code, CardId, MerchantProfile};

/// What the listed merchants must accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepts {
    /// A coupon, by its code hash: the batch's active, non-competing places (S5, S6).
    Coupon(Hash),
    /// Points issued by this merchant (S7).
    PointsOf(PublicKey),
    /// The spendable points of this card, whoever issued them (S7).
    Card(CardId),
}

/// A merchant query. Without `near` the list is in key order and carries no distance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub near: Option<Point>,
    /// Only members at most this many metres from `near` (needs `near`).
    pub within_m: Option<u64>,
    pub category: Option<String>,
    pub district: Option<String>,
    pub accepts: Option<Accepts>,
    /// Only active members (suspended and removed members cannot sign sales).
    pub active_only: bool,
}

/// One listed merchant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed<'a> {
    pub profile: &'a MerchantProfile,
    pub status: MerchantStatus,
    /// From the query's point, in whole metres.
    pub distance_m: Option<u64>,
}

/// Why a coupon can be used nowhere now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CouponUnusable {
    Redeemed,
    Expired,
}
impl CouponUnusable {
    pub fn name(self) -> &'static str {
        match self {
            CouponUnusable::Redeemed => "redeemed",
            CouponUnusable::Expired => "expired",
        }
    }
}

/// The coupon a query asked about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CouponFacts {
    pub code_hash: Hash,
    pub batch: Hash,
    pub issuer: PublicKey,
    pub expires_at_ms: u64,
    /// `None` when it can be redeemed now (at the listed places).
    pub unusable: Option<CouponUnusable>,
}

/// The card a query asked about, at the query time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardFacts {
    pub card: CardId,
    pub home: PublicKey,
    /// Spendable points per issuer (held and expired lots excluded), sorted by issuer.
    pub spendable_by_issuer: Vec<(PublicKey, u64)>,
    pub spendable: u64,
    /// S8: points a refund cancelled after they were spent; they are repaid first.
    pub debt: u64,
    /// What one sale can redeem now: spendable less debt (the contract's overdraft rule).
    pub redeemable: u64,
}

/// A query's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer<'a> {
    pub merchants: Vec<Listed<'a>>,
    pub coupon: Option<CouponFacts>,
    pub card: Option<CardFacts>,
}

/// Why a query is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryError {
    Geo(GeoError),
    RadiusWithoutPoint,
    BadCode(String),
    UnknownCoupon(Hash),
    UnknownIssuer(PublicKey),
    UnknownCard(CardId),
}

impl QueryError {
    /// A short stable code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::Geo(e) => e.code(),
            QueryError::RadiusWithoutPoint => "radius-without-point",
            QueryError::BadCode(_) => "bad-code",
            QueryError::UnknownCoupon(_) => "unknown-coupon",
            QueryError::UnknownIssuer(_) => "unknown-issuer",
            QueryError::UnknownCard(_) => "unknown-card",
        }
    }
    /// Whether the query named something the ledger does not have (rather than being malformed).
    pub fn is_not_found(&self) -> bool {
        matches!(self, QueryError::UnknownCoupon(_) | QueryError::UnknownIssuer(_) | QueryError::UnknownCard(_))
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Geo(e) => write!(f, "{e}"),
            QueryError::RadiusWithoutPoint => write!(f, "a radius needs a point to measure from (near=LAT,LON)"),
            QueryError::BadCode(e) => write!(f, "{e}"),
            QueryError::UnknownCoupon(h) => write!(f, "no coupon with code hash {h}"),
            QueryError::UnknownIssuer(k) => write!(f, "{k} is not a member, so it issued no points"),
            QueryError::UnknownCard(c) => write!(f, "no card {c}"),
        }
    }
}

impl std::error::Error for QueryError {}

impl From<GeoError> for QueryError {
    fn from(e: GeoError) -> QueryError {
        QueryError::Geo(e)
    }
}

/// A member's location, if its profile holds a valid one (profiles are validated on entry, so
/// this is `None` only for a state built by hand).
pub fn location(profile: &MerchantProfile) -> Option<Point> {
    Point::new(profile.latitude_e6, profile.longitude_e6).ok()
}

/// Runs a query against the state at `now_ms` (the node's clock; coupon expiry and points
/// holds are judged at it, as a sale created then would be).
pub fn find<'a>(state: &'a State, query: &Query, now_ms: u64) -> Result<Answer<'a>, QueryError> {
    if query.within_m.is_some() && query.near.is_none() {
        return Err(QueryError::RadiusWithoutPoint);
    }
    if let Some(c) = &query.category {
        check_code("category", c).map_err(QueryError::BadCode)?;
    }
    if let Some(d) = &query.district {
        check_code("district", d).map_err(QueryError::BadCode)?;
    }
    let mut coupon = None;
    let mut card = None;
    // Whether anything can be used at all; then which merchant accepts it.
    let mut usable = true;
    match &query.accepts {
        None => {}
        Some(Accepts::Coupon(code_hash)) => {
            let view = state.coupon(code_hash).ok_or(QueryError::UnknownCoupon(*code_hash))?;
            let unusable = if view.redeemed_by.is_some() {
                Some(CouponUnusable::Redeemed)
            } else if now_ms >= view.expires_at_ms {
                Some(CouponUnusable::Expired)
            } else {
                None
            };
            usable = unusable.is_none();
            coupon = Some(CouponFacts { code_hash: *code_hash, batch: view.batch, issuer: view.issuer, expires_at_ms: view.expires_at_ms, unusable });
        }
        Some(Accepts::PointsOf(issuer)) => {
            state.merchant(issuer).ok_or(QueryError::UnknownIssuer(*issuer))?;
        }
        Some(Accepts::Card(id)) => {
            let facts = card_facts(state, id, now_ms)?;
            usable = facts.redeemable > 0;
            card = Some(facts);
        }
    }
    let mut merchants = Vec::new();
    if usable {
        for (profile, status) in state.merchants() {
            if (query.active_only || query.accepts.is_some()) && status != MerchantStatus::Active {
                continue;
            }
            if query.category.as_ref().is_some_and(|c| *c != profile.category) || query.district.as_ref().is_some_and(|d| *d != profile.district) {
                continue;
            }
            if let Some(Accepts::Coupon(_)) = &query.accepts
                && let Some(c) = &coupon
                && !state.coupon_place_ok(&c.batch, &profile.key, now_ms)
            {
                continue;
            }
            let distance_m = match (query.near, location(profile)) {
                (Some(from), Some(at)) => Some(distance_m(from, at)),
                (Some(_), None) => continue,
                (None, _) => None,
            };
            if let (Some(d), Some(r)) = (distance_m, query.within_m)
                && d > r
            {
                continue;
            }
            merchants.push(Listed { profile, status, distance_m });
        }
    }
    merchants.sort_by(|a, b| a.distance_m.cmp(&b.distance_m).then_with(|| a.profile.key.cmp(&b.profile.key)));
    Ok(Answer { merchants, coupon, card })
}

/// A card's spendable points per issuer at `now_ms` (S7, S8).
pub fn card_facts(state: &State, card: &CardId, now_ms: u64) -> Result<CardFacts, QueryError> {
    let view = state.card(card, now_ms).ok_or(QueryError::UnknownCard(*card))?;
    let mut by_issuer: Vec<(PublicKey, u64)> = Vec::new();
    for lot in view.lots.iter().filter(|l| l.spendable_at_ms <= now_ms) {
        match by_issuer.iter_mut().find(|(k, _)| *k == lot.issuer) {
            Some((_, p)) => *p = p.saturating_add(lot.points),
            None => by_issuer.push((lot.issuer, lot.points)),
        }
    }
    by_issuer.sort();
    Ok(CardFacts {
        card: *card,
        home: view.home,
        spendable_by_issuer: by_issuer,
        spendable: view.spendable,
        debt: view.debt,
        redeemable: view.spendable.saturating_sub(view.debt),
    })
}

/// One district and its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct District<'a> {
    pub code: String,
    /// The genesis display name; `None` for a code only admitted members use.
    pub name: Option<&'a str>,
    /// Sorted by key; every status (each member says its own).
    pub members: Vec<(&'a MerchantProfile, MerchantStatus)>,
}

/// Every district of the genesis, and any other code a member's profile names, sorted by code.
pub fn districts<'a>(named: &'a [Named], state: &'a State) -> Vec<District<'a>> {
    let mut out: Vec<District<'a>> = named.iter().map(|n| District { code: n.code.clone(), name: Some(n.name.as_str()), members: Vec::new() }).collect();
    for (profile, status) in state.merchants() {
        match out.iter_mut().find(|d| d.code == profile.district) {
            Some(d) => d.members.push((profile, status)),
            None => out.push(District { code: profile.district.clone(), name: None, members: vec![(profile, status)] }),
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    for d in &mut out {
        d.members.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    }
    out
}
