//! JSON at the edge (STYLE 7): record payloads as the HTTP API and the CLI write them,
//! converted by hand to and from the ledger's types. Signed bytes never come from JSON
//! directly: a JSON payload is turned into a [`Payload`] and signed in canonical form.
//!
//! Conventions: keys and hashes are lower-case hex; amounts are decimal strings with at most
//! two decimals ("12.50"); rates are basis points (`*_bps`); times are Unix ms (`*_ms`);
//! places are `"merchant:<hex>"` or `"category:<code>"`; code secrets are text (8–64 bytes).

use plaza_ledger::money::{Amount, Bps};
use plaza_ledger::policy::Policy;
use plaza_ledger::record::{
    Action, CardId, CodeSecret, CouponValue, Funding, MerchantProfile, Party, Payload, Place, PromoterId, Record, Terms,
};
use plaza_ledger::{Hash, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

fn key(what: &str, text: &str) -> Result<PublicKey, String> {
    PublicKey::from_hex(text).map_err(|e| format!("{what}: {e}"))
}
fn hash(what: &str, text: &str) -> Result<Hash, String> {
    Hash::from_hex(text).map_err(|e| format!("{what}: {e}"))
}
fn amount(what: &str, text: &str) -> Result<Amount, String> {
    Amount::parse(text).map_err(|e| format!("{what}: {e}"))
}
fn card(text: &str) -> Result<CardId, String> {
    CardId::from_hex(text)
}
fn secret(what: &str, text: &str) -> Result<CodeSecret, String> {
    CodeSecret::new(text.as_bytes()).map_err(|e| format!("{what}: {e}"))
}
fn bps(what: &'static str, value: u32) -> Result<Bps, String> {
    Bps(value).check(what)
}

/// `"merchant:<hex>"` or `"category:<code>"`.
pub fn parse_place(text: &str) -> Result<Place, String> {
    if let Some(hex) = text.strip_prefix("merchant:") {
        return Ok(Place::Merchant(key("place", hex)?));
    }
    if let Some(code) = text.strip_prefix("category:") {
        plaza_ledger::record::check_code("category", code)?;
        return Ok(Place::Category(code.to_owned()));
    }
    Err(format!("place {text:?} must be \"merchant:<hex key>\" or \"category:<code>\""))
}
pub fn place_json(place: &Place) -> String {
    match place {
        Place::Merchant(k) => format!("merchant:{}", k.to_hex()),
        Place::Category(c) => format!("category:{c}"),
    }
}
fn places(list: &[String]) -> Result<Vec<Place>, String> {
    let mut out: Vec<Place> = list.iter().map(|p| parse_place(p)).collect::<Result<_, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}
/// `"merchant:<hex>"` or `"promoter:<code>"`.
pub fn parse_party(text: &str) -> Result<Party, String> {
    if let Some(hex) = text.strip_prefix("merchant:") {
        return Ok(Party::Merchant(key("party", hex)?));
    }
    if let Some(code) = text.strip_prefix("promoter:") {
        return Ok(Party::Promoter(PromoterId::new(code)?));
    }
    Err(format!("party {text:?} must be \"merchant:<hex key>\" or \"promoter:<code>\""))
}
/// A payment's payer as a statement shows it (`"merchant:<hex>"`) or as a bare hex key. A
/// promoter never pays (SETTLEMENT decision 17), so no transfer has a promoter payer.
pub fn payer_key(text: &str) -> Result<PublicKey, String> {
    let text = text.trim();
    if let Some(code) = text.strip_prefix("promoter:") {
        return Err(format!(
            "payer {code:?} is a promoter: promoters never pay, their debt is carried into the next statement and netted against their commissions"
        ));
    }
    key("payer", text.strip_prefix("merchant:").unwrap_or(text))
}
pub fn party_json(party: &Party) -> String {
    match party {
        Party::Merchant(k) => format!("merchant:{}", k.to_hex()),
        Party::Promoter(p) => format!("promoter:{p}"),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileJson {
    pub key: String,
    pub name: String,
    pub category: String,
    pub district: String,
    #[serde(default)]
    pub latitude_e6: i32,
    #[serde(default)]
    pub longitude_e6: i32,
    #[serde(default)]
    pub network_key: Option<String>,
}

impl ProfileJson {
    fn to_profile(&self) -> Result<MerchantProfile, String> {
        let profile = MerchantProfile {
            key: key("key", &self.key)?,
            name: self.name.clone(),
            category: self.category.clone(),
            district: self.district.clone(),
            latitude_e6: self.latitude_e6,
            longitude_e6: self.longitude_e6,
            network_key: self.network_key.as_deref().map(|k| key("network_key", k)).transpose()?,
        };
        profile.validate()?;
        Ok(profile)
    }
    pub fn from_profile(p: &MerchantProfile) -> ProfileJson {
        ProfileJson {
            key: p.key.to_hex(),
            name: p.name.clone(),
            category: p.category.clone(),
            district: p.district.clone(),
            latitude_e6: p.latitude_e6,
            longitude_e6: p.longitude_e6,
            network_key: p.network_key.map(|k| k.to_hex()),
        }
    }
}

/// Every policy field (DESIGN §5); `publish_policy` carries a whole policy version.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyJson {
    pub version: u32,
    pub effective_at_ms: u64,
    pub referral_rate_bps: u32,
    pub promoter_rate_bps: u32,
    pub upstream_rate_bps: u32,
    pub home_rate_bps: u32,
    pub share_cap_bps: u32,
    pub earn_points_per_unit: u32,
    #[serde(default)]
    pub earn_overrides: Vec<(String, u32)>,
    pub point_value: String,
    pub points_hold_days: u32,
    pub points_validity_days: u32,
    pub lock_days: u32,
    pub refund_window_days: u32,
    pub revocation_window_ms: u64,
    pub period_ms: u64,
    pub min_payout: String,
    pub card_sales_per_hour_max: u32,
    pub refund_ratio_max_bps: u32,
    pub record_time_window_ms: u64,
    #[serde(default)]
    pub isolation_exceptions: Vec<(String, String)>,
}

impl PolicyJson {
    pub fn from_policy(p: &Policy) -> PolicyJson {
        PolicyJson {
            version: p.version,
            effective_at_ms: p.effective_at_ms,
            referral_rate_bps: p.referral_rate.0,
            promoter_rate_bps: p.promoter_rate.0,
            upstream_rate_bps: p.upstream_rate.0,
            home_rate_bps: p.home_rate.0,
            share_cap_bps: p.share_cap.0,
            earn_points_per_unit: p.earn_points_per_unit,
            earn_overrides: p.earn_overrides.iter().map(|(k, r)| (k.to_hex(), *r)).collect(),
            point_value: p.point_value.to_string(),
            points_hold_days: p.points_hold_days,
            points_validity_days: p.points_validity_days,
            lock_days: p.lock_days,
            refund_window_days: p.refund_window_days,
            revocation_window_ms: p.revocation_window_ms,
            period_ms: p.period_ms,
            min_payout: p.min_payout.to_string(),
            card_sales_per_hour_max: p.card_sales_per_hour_max,
            refund_ratio_max_bps: p.refund_ratio_max.0,
            record_time_window_ms: p.record_time_window_ms,
            isolation_exceptions: p.isolation_exceptions.iter().map(|(a, b)| (a.to_hex(), b.to_hex())).collect(),
        }
    }
    pub fn to_policy(&self) -> Result<Policy, String> {
        let policy = Policy {
            version: self.version,
            effective_at_ms: self.effective_at_ms,
            referral_rate: bps("referral_rate_bps", self.referral_rate_bps)?,
            promoter_rate: bps("promoter_rate_bps", self.promoter_rate_bps)?,
            upstream_rate: bps("upstream_rate_bps", self.upstream_rate_bps)?,
            home_rate: bps("home_rate_bps", self.home_rate_bps)?,
            share_cap: bps("share_cap_bps", self.share_cap_bps)?,
            earn_points_per_unit: self.earn_points_per_unit,
            earn_overrides: self
                .earn_overrides
                .iter()
                .map(|(k, r)| Ok((key("earn_overrides", k)?, *r)))
                .collect::<Result<_, String>>()?,
            point_value: amount("point_value", &self.point_value)?,
            points_hold_days: self.points_hold_days,
            points_validity_days: self.points_validity_days,
            lock_days: self.lock_days,
            refund_window_days: self.refund_window_days,
            revocation_window_ms: self.revocation_window_ms,
            period_ms: self.period_ms,
            min_payout: amount("min_payout", &self.min_payout)?,
            card_sales_per_hour_max: self.card_sales_per_hour_max,
            refund_ratio_max: bps("refund_ratio_max_bps", self.refund_ratio_max_bps)?,
            record_time_window_ms: self.record_time_window_ms,
            isolation_exceptions: self
                .isolation_exceptions
                .iter()
                .map(|(a, b)| Ok((key("isolation_exceptions", a)?, key("isolation_exceptions", b)?)))
                .collect::<Result<_, String>>()?,
        };
        policy.validate()?;
        Ok(policy)
    }
}

/// A governance action.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionJson {
    Admit { profile: ProfileJson },
    Update { profile: ProfileJson },
    Suspend { merchant: String },
    Reinstate { merchant: String },
    Remove { merchant: String },
    RegisterPromoter { id: String, name: String, #[serde(default)] upstream: Option<String> },
    AddValidator { merchant: String, network_key: String },
    RemoveValidator { merchant: String },
    PublishPolicy { policy: PolicyJson },
    ReleaseHold { party: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouponValueJson {
    Fixed(String),
    PercentBps(u32),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TermsJson {
    FixedFee { payer: String, amount: String },
    RateOverride {
        #[serde(default)]
        referral_rate_bps: Option<u32>,
        #[serde(default)]
        home_rate_bps: Option<u32>,
    },
}

/// A record payload in JSON, tagged by `kind`. Where a code is involved, the issuer may give
/// either the secrets (`codes`, hashed here, never sent to the ledger) or their hashes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PayloadJson {
    Propose {
        action: ActionJson,
    },
    Vote {
        proposal: String,
        approve: bool,
    },
    IssueCard {
        card: String,
    },
    Refer {
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        code_hash: Option<String>,
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        promoter: Option<String>,
        #[serde(default)]
        upstream: Option<String>,
        #[serde(default)]
        valid_at: Vec<String>,
        expires_at_ms: u64,
        #[serde(default)]
        multi_use: bool,
    },
    IssueCoupons {
        batch: String,
        #[serde(default)]
        codes: Vec<String>,
        #[serde(default)]
        code_hashes: Vec<String>,
        value: CouponValueJson,
        #[serde(default = "zero_amount")]
        min_spend: String,
        #[serde(default)]
        redeemable_at: Vec<String>,
        /// `issuer` or `redeemer`.
        funding: String,
        expires_at_ms: u64,
    },
    Sale {
        order: String,
        gross: String,
        /// Defaults to the largest base the rules allow (gross less the coupons and points others
        /// fund) when the node signs; a record signed elsewhere always carries its base.
        #[serde(default)]
        base: Option<String>,
        #[serde(default)]
        card: Option<String>,
        #[serde(default)]
        referral_code: Option<String>,
        #[serde(default)]
        coupon_codes: Vec<String>,
        #[serde(default)]
        points_redeemed: u64,
    },
    Refund {
        order: String,
        refund_id: String,
        amount: String,
    },
    RevokeRedemption {
        order: String,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        code_hash: Option<String>,
    },
    Agreement {
        agreement_id: String,
        counterparty: String,
        terms: TermsJson,
        starts_at_ms: u64,
        #[serde(default)]
        ends_at_ms: Option<u64>,
    },
    Accept {
        agreement: String,
    },
    ConfirmPayment {
        period: u64,
        payer: String,
        amount: String,
    },
}

fn zero_amount() -> String {
    "0.00".into()
}

fn code_hash_of(code: &Option<String>, code_hash: &Option<String>, what: &str) -> Result<Hash, String> {
    match (code, code_hash) {
        (Some(c), None) => Ok(secret(what, c)?.hash()),
        (None, Some(h)) => hash(what, h),
        _ => Err(format!("give exactly one of {what} (the secret) or {what}_hash")),
    }
}

impl PayloadJson {
    /// The ledger payload; the stateless rules are checked when the record is built.
    pub fn to_payload(&self) -> Result<Payload, String> {
        Ok(match self {
            PayloadJson::Propose { action } => Payload::Propose { action: action.to_action()? },
            PayloadJson::Vote { proposal, approve } => Payload::Vote { proposal: hash("proposal", proposal)?, approve: *approve },
            PayloadJson::IssueCard { card: c } => Payload::IssueCard { card: card(c)? },
            PayloadJson::Refer { code, code_hash, card: c, promoter, upstream, valid_at, expires_at_ms, multi_use } => Payload::Refer {
                code_hash: code_hash_of(code, code_hash, "code")?,
                card: c.as_deref().map(card).transpose()?,
                promoter: promoter.as_deref().map(PromoterId::new).transpose()?,
                upstream: upstream.as_deref().map(PromoterId::new).transpose()?,
                valid_at: places(valid_at)?,
                expires_at_ms: *expires_at_ms,
                multi_use: *multi_use,
            },
            PayloadJson::IssueCoupons { batch, codes, code_hashes, value, min_spend, redeemable_at, funding, expires_at_ms } => {
                let mut hashes: Vec<Hash> = codes.iter().map(|c| secret("codes", c).map(|s| s.hash())).collect::<Result<_, _>>()?;
                for h in code_hashes {
                    hashes.push(hash("code_hashes", h)?);
                }
                hashes.sort();
                hashes.dedup();
                Payload::IssueCoupons {
                    batch: batch.clone(),
                    code_hashes: hashes,
                    value: match value {
                        CouponValueJson::Fixed(a) => CouponValue::Fixed(amount("value", a)?),
                        CouponValueJson::PercentBps(b) => CouponValue::Percent(bps("value", *b)?),
                    },
                    min_spend: amount("min_spend", min_spend)?,
                    redeemable_at: places(redeemable_at)?,
                    funding: match funding.as_str() {
                        "issuer" => Funding::Issuer,
                        "redeemer" => Funding::Redeemer,
                        other => return Err(format!("funding {other:?} must be \"issuer\" or \"redeemer\"")),
                    },
                    expires_at_ms: *expires_at_ms,
                }
            }
            PayloadJson::Sale { order, gross, base, card: c, referral_code, coupon_codes, points_redeemed } => {
                let gross = amount("gross", gross)?;
                Payload::Sale {
                    order: order.clone(),
                    gross,
                    base: match base {
                        Some(b) => amount("base", b)?,
                        None => gross,
                    },
                    card: c.as_deref().map(card).transpose()?,
                    referral_code: referral_code.as_deref().map(|s| secret("referral_code", s)).transpose()?,
                    coupon_codes: coupon_codes.iter().map(|s| secret("coupon_codes", s)).collect::<Result<_, _>>()?,
                    points_redeemed: *points_redeemed,
                }
            }
            PayloadJson::Refund { order, refund_id, amount: a } => {
                Payload::Refund { order: order.clone(), refund_id: refund_id.clone(), amount: amount("amount", a)? }
            }
            PayloadJson::RevokeRedemption { order, code, code_hash } => {
                Payload::RevokeRedemption { order: order.clone(), code_hash: code_hash_of(code, code_hash, "code")? }
            }
            PayloadJson::Agreement { agreement_id, counterparty, terms, starts_at_ms, ends_at_ms } => Payload::Agreement {
                agreement_id: agreement_id.clone(),
                counterparty: key("counterparty", counterparty)?,
                terms: match terms {
                    TermsJson::FixedFee { payer, amount: a } => Terms::FixedFee { payer: key("payer", payer)?, amount: amount("amount", a)? },
                    TermsJson::RateOverride { referral_rate_bps, home_rate_bps } => Terms::RateOverride {
                        referral_rate: referral_rate_bps.map(|b| bps("referral_rate_bps", b)).transpose()?,
                        home_rate: home_rate_bps.map(|b| bps("home_rate_bps", b)).transpose()?,
                    },
                },
                starts_at_ms: *starts_at_ms,
                ends_at_ms: *ends_at_ms,
            },
            PayloadJson::Accept { agreement } => Payload::Accept { agreement: hash("agreement", agreement)? },
            PayloadJson::ConfirmPayment { period, payer, amount: a } => {
                Payload::ConfirmPayment { period: *period, payer: payer_key(payer)?, amount: amount("amount", a)? }
            }
        })
    }
}

impl ActionJson {
    fn to_action(&self) -> Result<Action, String> {
        Ok(match self {
            ActionJson::Admit { profile } => Action::AdmitMerchant(profile.to_profile()?),
            ActionJson::Update { profile } => Action::UpdateMerchant(profile.to_profile()?),
            ActionJson::Suspend { merchant } => Action::SuspendMerchant(key("merchant", merchant)?),
            ActionJson::Reinstate { merchant } => Action::ReinstateMerchant(key("merchant", merchant)?),
            ActionJson::Remove { merchant } => Action::RemoveMerchant(key("merchant", merchant)?),
            ActionJson::RegisterPromoter { id, name, upstream } => Action::RegisterPromoter {
                id: PromoterId::new(id)?,
                name: name.clone(),
                upstream: upstream.as_deref().map(PromoterId::new).transpose()?,
            },
            ActionJson::AddValidator { merchant, network_key } => {
                Action::AddValidator { merchant: key("merchant", merchant)?, network_key: key("network_key", network_key)? }
            }
            ActionJson::RemoveValidator { merchant } => Action::RemoveValidator { merchant: key("merchant", merchant)? },
            ActionJson::PublishPolicy { policy } => Action::PublishPolicy(policy.to_policy()?),
            ActionJson::ReleaseHold { party } => Action::ReleaseHold(parse_party(party)?),
        })
    }
}

/// The kind name of a payload, as used in JSON and metrics.
pub fn kind_name(payload: &Payload) -> &'static str {
    match payload {
        Payload::Propose { .. } => "propose",
        Payload::Vote { .. } => "vote",
        Payload::IssueCard { .. } => "issue_card",
        Payload::Refer { .. } => "refer",
        Payload::IssueCoupons { .. } => "issue_coupons",
        Payload::Sale { .. } => "sale",
        Payload::Refund { .. } => "refund",
        Payload::RevokeRedemption { .. } => "revoke_redemption",
        Payload::Agreement { .. } => "agreement",
        Payload::Accept { .. } => "accept",
        Payload::ConfirmPayment { .. } => "confirm_payment",
    }
}

fn action_json(action: &Action) -> Value {
    match action {
        Action::AdmitMerchant(p) => json!({"type": "admit", "profile": ProfileJson::from_profile(p)}),
        Action::UpdateMerchant(p) => json!({"type": "update", "profile": ProfileJson::from_profile(p)}),
        Action::SuspendMerchant(k) => json!({"type": "suspend", "merchant": k.to_hex()}),
        Action::ReinstateMerchant(k) => json!({"type": "reinstate", "merchant": k.to_hex()}),
        Action::RemoveMerchant(k) => json!({"type": "remove", "merchant": k.to_hex()}),
        Action::RegisterPromoter { id, name, upstream } => {
            json!({"type": "register_promoter", "id": id.as_str(), "name": name, "upstream": upstream.as_ref().map(|u| u.as_str())})
        }
        Action::AddValidator { merchant, network_key } => {
            json!({"type": "add_validator", "merchant": merchant.to_hex(), "network_key": network_key.to_hex()})
        }
        Action::RemoveValidator { merchant } => json!({"type": "remove_validator", "merchant": merchant.to_hex()}),
        Action::PublishPolicy(p) => json!({"type": "publish_policy", "policy": PolicyJson::from_policy(p)}),
        Action::ReleaseHold(party) => json!({"type": "release_hold", "party": party_json(party)}),
    }
}

/// A payload for display. Code secrets a sale presents are shown only as their hashes.
pub fn payload_json(payload: &Payload) -> Value {
    let mut v = match payload {
        Payload::Propose { action } => json!({"action": action_json(action)}),
        Payload::Vote { proposal, approve } => json!({"proposal": proposal.to_hex(), "approve": approve}),
        Payload::IssueCard { card } => json!({"card": card.to_hex()}),
        Payload::Refer { code_hash, card, promoter, upstream, valid_at, expires_at_ms, multi_use } => json!({
            "code_hash": code_hash.to_hex(),
            "card": card.map(|c| c.to_hex()),
            "promoter": promoter.as_ref().map(|p| p.as_str()),
            "upstream": upstream.as_ref().map(|p| p.as_str()),
            "valid_at": valid_at.iter().map(place_json).collect::<Vec<_>>(),
            "expires_at_ms": expires_at_ms,
            "multi_use": multi_use,
        }),
        Payload::IssueCoupons { batch, code_hashes, value, min_spend, redeemable_at, funding, expires_at_ms } => json!({
            "batch": batch,
            "code_hashes": code_hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
            "value": match value { CouponValue::Fixed(a) => json!({"fixed": a.to_string()}), CouponValue::Percent(b) => json!({"percent_bps": b.0}) },
            "min_spend": min_spend.to_string(),
            "redeemable_at": redeemable_at.iter().map(place_json).collect::<Vec<_>>(),
            "funding": match funding { Funding::Issuer => "issuer", Funding::Redeemer => "redeemer" },
            "expires_at_ms": expires_at_ms,
        }),
        Payload::Sale { order, gross, base, card, referral_code, coupon_codes, points_redeemed } => json!({
            "order": order,
            "gross": gross.to_string(),
            "base": base.to_string(),
            "card": card.map(|c| c.to_hex()),
            "referral_code_hash": referral_code.as_ref().map(|c| c.hash().to_hex()),
            "coupon_code_hashes": coupon_codes.iter().map(|c| c.hash().to_hex()).collect::<Vec<_>>(),
            "points_redeemed": points_redeemed,
        }),
        Payload::Refund { order, refund_id, amount } => json!({"order": order, "refund_id": refund_id, "amount": amount.to_string()}),
        Payload::RevokeRedemption { order, code_hash } => json!({"order": order, "code_hash": code_hash.to_hex()}),
        Payload::Agreement { agreement_id, counterparty, terms, starts_at_ms, ends_at_ms } => json!({
            "agreement_id": agreement_id,
            "counterparty": counterparty.to_hex(),
            "terms": match terms {
                Terms::FixedFee { payer, amount } => json!({"fixed_fee": {"payer": payer.to_hex(), "amount": amount.to_string()}}),
                Terms::RateOverride { referral_rate, home_rate } => json!({"rate_override": {"referral_rate_bps": referral_rate.map(|b| b.0), "home_rate_bps": home_rate.map(|b| b.0)}}),
            },
            "starts_at_ms": starts_at_ms,
            "ends_at_ms": ends_at_ms,
        }),
        Payload::Accept { agreement } => json!({"agreement": agreement.to_hex()}),
        Payload::ConfirmPayment { period, payer, amount } => {
            json!({"period": period, "payer": payer.to_hex(), "amount": amount.to_string()})
        }
    };
    if let Some(object) = v.as_object_mut() {
        object.insert("kind".into(), json!(kind_name(payload)));
    }
    v
}

/// A whole record for display.
pub fn record_json(record: &Record) -> Value {
    json!({
        "id": record.id().to_hex(),
        "signer": record.signer().to_hex(),
        "created_at_ms": record.body().created_at_ms,
        "payload": payload_json(record.payload()),
    })
}

/// A cents amount (possibly larger than one `Amount`) as a decimal string.
pub fn cents(value: u128) -> String {
    format!("{}.{:02}", value / 100, value % 100)
}
/// Signed cents.
pub fn signed_cents(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    format!("{sign}{}", cents(value.unsigned_abs()))
}
