//! Records: every fact on the ledger is a body signed by one merchant (DESIGN §4,
//! docs/FORMAT.md §4).
//!
//! This module holds everything about a record that needs no state: its canonical bytes, its
//! id, its signature, field limits, money rules and the time-window check. State rules
//! (coupon already used, unknown card, …) belong to the settlement contract, which answers a
//! well-formed record that breaks one with a rejection receipt.

use std::fmt;

use thiserror::Error;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::keys::{domain, verify_batch_reasons, BatchItem, Keypair, PublicKey, Signature, SignatureError};
use crate::money::{Amount, Bps};
use crate::policy::Policy;

/// The largest encoded record.
pub const RECORD_BYTES_MAX: usize = 64 * 1024;
/// A merchant's own order, batch or agreement number.
pub const EXTERNAL_ID_MAX: usize = 64;
/// Display names.
pub const NAME_MAX: usize = 64;
/// Category, district and promoter codes: `[a-z0-9_-]`, 1 to 32 characters.
pub const CODE_MAX: usize = 32;
/// Referral and coupon code secrets, in bytes.
pub const SECRET_MIN: usize = 8;
pub const SECRET_MAX: usize = 64;
pub const COUPON_BATCH_MAX: usize = 1000;
pub const COUPONS_PER_SALE_MAX: usize = 16;
pub const PLACES_MAX: usize = 64;
/// Points in one redemption; far beyond any real basket.
pub const POINTS_MAX: u64 = 1_000_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("record is for alliance {found}, this is alliance {expected}")]
    WrongAlliance { expected: Hash, found: Hash },
    #[error("record signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("record field {field}: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("record created at {created_at_ms} is outside ±{window_ms} ms of block time {block_time_ms}")]
    OutsideTimeWindow { created_at_ms: u64, block_time_ms: u64, window_ms: u64 },
    #[error("malformed record: {0}")]
    Malformed(#[from] DecodeError),
}

fn field(field: &'static str, reason: impl Into<String>) -> RecordError {
    RecordError::Field { field, reason: reason.into() }
}

/// Checks a code: 1–32 characters of `[a-z0-9_-]`.
pub fn check_code(what: &'static str, code: &str) -> Result<(), String> {
    if code.is_empty() || code.len() > CODE_MAX {
        return Err(format!("{what} {code:?} must be 1 to {CODE_MAX} characters"));
    }
    if !code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-') {
        return Err(format!("{what} {code:?} may use only a-z, 0-9, '_' and '-'"));
    }
    Ok(())
}

pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), String> {
    if name.trim().is_empty() || name.len() > NAME_MAX {
        return Err(format!("{what} must be 1 to {NAME_MAX} bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

fn check_external_id(what: &'static str, id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > EXTERNAL_ID_MAX {
        return Err(format!("{what} must be 1 to {EXTERNAL_ID_MAX} bytes"));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("{what} must not contain spaces or control characters"));
    }
    Ok(())
}

fn decode_code(r: &mut Reader<'_>, what: &'static str) -> Result<String, DecodeError> {
    let code = r.string(what, CODE_MAX)?;
    check_code(what, &code).map_err(|e| DecodeError::invalid(what, e))?;
    Ok(code)
}

/// A member card number: 128 random bits issued by the card's home merchant (DESIGN §3).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CardId(pub [u8; 16]);

impl PartialOrd for CardId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CardId {
    /// The order of the 16 bytes.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        crate::hash::cmp_bytes(&self.0, &other.0)
    }
}

impl CardId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn from_hex(text: &str) -> Result<CardId, String> {
        let bytes = hex::decode(text.trim()).map_err(|e| format!("card id is not hex: {e}"))?;
        let array: [u8; 16] =
            bytes.try_into().map_err(|b: Vec<u8>| format!("a card id is 16 bytes (32 hex digits), this is {} bytes", b.len()))?;
        Ok(CardId(array))
    }
}
impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardId({})", self.to_hex())
    }
}
impl Encode for CardId {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}
impl Decode for CardId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CardId(r.array()?))
    }
}

/// A promoter (推广者), registered by vote; named by a code.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PromoterId(String);

impl PromoterId {
    pub fn new(code: &str) -> Result<PromoterId, String> {
        check_code("promoter id", code)?;
        Ok(PromoterId(code.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for PromoterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl Encode for PromoterId {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.0);
    }
}
impl Decode for PromoterId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PromoterId(decode_code(r, "promoter id")?))
    }
}

/// A referral or coupon code as the customer holds it; the ledger stores only its hash.
///
/// The hash is taken once, when the secret is made or decoded: a record is decoded where work
/// runs in parallel (admission, the verifier's decoding threads), while the contract, which
/// looks the code up by its hash, runs one record after another, and a node applies each
/// block twice (on the head and on the finalized state).
#[derive(Clone, PartialEq, Eq)]
pub struct CodeSecret {
    bytes: Vec<u8>,
    hash: Hash,
}

impl CodeSecret {
    pub fn new(bytes: &[u8]) -> Result<CodeSecret, String> {
        if bytes.len() < SECRET_MIN || bytes.len() > SECRET_MAX {
            return Err(format!("a code is {SECRET_MIN} to {SECRET_MAX} bytes, this is {}", bytes.len()));
        }
        Ok(CodeSecret { bytes: bytes.to_vec(), hash: Hash::digest(bytes) })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// blake3 of the secret's bytes: what `Refer` and `IssueCoupons` record.
    #[inline]
    pub fn hash(&self) -> Hash {
        self.hash
    }
}
impl fmt::Debug for CodeSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeSecret(hash {})", &self.hash().to_hex()[..16])
    }
}
impl Encode for CodeSecret {
    fn encode(&self, w: &mut Writer) {
        w.bytes(&self.bytes);
    }
}
impl Decode for CodeSecret {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes = r.bytes("code secret", SECRET_MAX)?;
        CodeSecret::new(bytes).map_err(|e| DecodeError::invalid("code secret", e))
    }
}

/// Where a referral is valid or a coupon redeemable: a merchant, or every merchant of a category.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Place {
    Merchant(PublicKey),
    Category(String),
}
impl Encode for Place {
    fn encode(&self, w: &mut Writer) {
        match self {
            Place::Merchant(k) => {
                w.u8(1);
                k.encode(w);
            }
            Place::Category(c) => {
                w.u8(2);
                w.str(c);
            }
        }
    }
}
impl Decode for Place {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Place::Merchant(PublicKey::decode(r)?)),
            2 => Ok(Place::Category(decode_code(r, "category")?)),
            tag => Err(DecodeError::InvalidTag { what: "place", tag }),
        }
    }
}

/// Who can be owed money: a merchant or a promoter.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Party {
    Merchant(PublicKey),
    Promoter(PromoterId),
}
impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Merchant(k) => write!(f, "merchant:{}", k.to_hex()),
            Party::Promoter(p) => write!(f, "promoter:{p}"),
        }
    }
}
impl Encode for Party {
    fn encode(&self, w: &mut Writer) {
        match self {
            Party::Merchant(k) => {
                w.u8(1);
                k.encode(w);
            }
            Party::Promoter(p) => {
                w.u8(2);
                p.encode(w);
            }
        }
    }
}
impl Decode for Party {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Party::Merchant(PublicKey::decode(r)?)),
            2 => Ok(Party::Promoter(PromoterId::decode(r)?)),
            tag => Err(DecodeError::InvalidTag { what: "party", tag }),
        }
    }
}

/// A merchant's profile on the ledger (DESIGN §3). Status lives in the alliance state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MerchantProfile {
    pub key: PublicKey,
    pub name: String,
    /// Industry code, e.g. `restaurant` (S5 compares these).
    pub category: String,
    /// 商圈 code.
    pub district: String,
    /// Microdegrees: fixed-point, no floats in state.
    pub latitude_e6: i32,
    pub longitude_e6: i32,
    /// The libp2p identity of the merchant's node, if it runs one.
    pub network_key: Option<PublicKey>,
}

impl MerchantProfile {
    pub fn validate(&self) -> Result<(), String> {
        check_name("merchant name", &self.name)?;
        check_code("category", &self.category)?;
        check_code("district", &self.district)?;
        if !(-90_000_000..=90_000_000).contains(&self.latitude_e6) {
            return Err("latitude must be within ±90 degrees".into());
        }
        if !(-180_000_000..=180_000_000).contains(&self.longitude_e6) {
            return Err("longitude must be within ±180 degrees".into());
        }
        Ok(())
    }
}
impl Encode for MerchantProfile {
    fn encode(&self, w: &mut Writer) {
        self.key.encode(w);
        w.str(&self.name);
        w.str(&self.category);
        w.str(&self.district);
        w.i32(self.latitude_e6);
        w.i32(self.longitude_e6);
        w.option(&self.network_key);
    }
}
impl Decode for MerchantProfile {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let profile = MerchantProfile {
            key: PublicKey::decode(r)?,
            name: r.string("merchant name", NAME_MAX)?,
            category: r.string("category", CODE_MAX)?,
            district: r.string("district", CODE_MAX)?,
            latitude_e6: r.i32()?,
            longitude_e6: r.i32()?,
            network_key: r.option("network key")?,
        };
        profile.validate().map_err(|e| DecodeError::invalid("merchant profile", e))?;
        Ok(profile)
    }
}

/// What a governance proposal would do (DESIGN §4, `Propose`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    AdmitMerchant(MerchantProfile),
    UpdateMerchant(MerchantProfile),
    SuspendMerchant(PublicKey),
    ReinstateMerchant(PublicKey),
    RemoveMerchant(PublicKey),
    RegisterPromoter { id: PromoterId, name: String, upstream: Option<PromoterId> },
    AddValidator { merchant: PublicKey, network_key: PublicKey },
    RemoveValidator { merchant: PublicKey },
    PublishPolicy(Policy),
    /// S11: release a party's items from fraud hold.
    ReleaseHold(Party),
}

impl Encode for Action {
    fn encode(&self, w: &mut Writer) {
        match self {
            Action::AdmitMerchant(p) => {
                w.u8(1);
                p.encode(w);
            }
            Action::UpdateMerchant(p) => {
                w.u8(2);
                p.encode(w);
            }
            Action::SuspendMerchant(k) => {
                w.u8(3);
                k.encode(w);
            }
            Action::ReinstateMerchant(k) => {
                w.u8(4);
                k.encode(w);
            }
            Action::RemoveMerchant(k) => {
                w.u8(5);
                k.encode(w);
            }
            Action::RegisterPromoter { id, name, upstream } => {
                w.u8(6);
                id.encode(w);
                w.str(name);
                w.option(upstream);
            }
            Action::AddValidator { merchant, network_key } => {
                w.u8(7);
                merchant.encode(w);
                network_key.encode(w);
            }
            Action::RemoveValidator { merchant } => {
                w.u8(8);
                merchant.encode(w);
            }
            Action::PublishPolicy(p) => {
                w.u8(9);
                p.encode(w);
            }
            Action::ReleaseHold(party) => {
                w.u8(10);
                party.encode(w);
            }
        }
    }
}
impl Decode for Action {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Action::AdmitMerchant(MerchantProfile::decode(r)?),
            2 => Action::UpdateMerchant(MerchantProfile::decode(r)?),
            3 => Action::SuspendMerchant(PublicKey::decode(r)?),
            4 => Action::ReinstateMerchant(PublicKey::decode(r)?),
            5 => Action::RemoveMerchant(PublicKey::decode(r)?),
            6 => {
                let id = PromoterId::decode(r)?;
                let name = r.string("promoter name", NAME_MAX)?;
                check_name("promoter name", &name).map_err(|e| DecodeError::invalid("promoter", e))?;
                let upstream: Option<PromoterId> = r.option("upstream promoter")?;
                if upstream.as_ref() == Some(&id) {
                    return Err(DecodeError::invalid("promoter", "a promoter cannot be its own upstream"));
                }
                Action::RegisterPromoter { id, name, upstream }
            }
            7 => Action::AddValidator { merchant: PublicKey::decode(r)?, network_key: PublicKey::decode(r)? },
            8 => Action::RemoveValidator { merchant: PublicKey::decode(r)? },
            9 => Action::PublishPolicy(Policy::decode(r)?),
            10 => Action::ReleaseHold(Party::decode(r)?),
            tag => return Err(DecodeError::InvalidTag { what: "governance action", tag }),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CouponValue {
    /// A fixed face value off the order.
    Fixed(Amount),
    /// A percentage off the order, in basis points (1..=10000).
    Percent(Bps),
}

/// S6: who bears a coupon's discount.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Funding {
    /// The issuer owes the redeeming merchant the discount.
    Issuer,
    /// The redeeming merchant bears it; no claim arises.
    Redeemer,
}

impl Encode for CouponValue {
    fn encode(&self, w: &mut Writer) {
        match self {
            CouponValue::Fixed(a) => {
                w.u8(1);
                a.encode(w);
            }
            CouponValue::Percent(b) => {
                w.u8(2);
                b.encode(w);
            }
        }
    }
}
impl Decode for CouponValue {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(CouponValue::Fixed(Amount::decode(r)?)),
            2 => Ok(CouponValue::Percent(Bps::decode(r)?)),
            tag => Err(DecodeError::InvalidTag { what: "coupon value", tag }),
        }
    }
}

impl Encode for Funding {
    fn encode(&self, w: &mut Writer) {
        w.u8(match self {
            Funding::Issuer => 1,
            Funding::Redeemer => 2,
        });
    }
}
impl Decode for Funding {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Funding::Issuer),
            2 => Ok(Funding::Redeemer),
            tag => Err(DecodeError::InvalidTag { what: "funding", tag }),
        }
    }
}

/// S9: what an agreement binds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Terms {
    /// `payer` (one of the two parties) pays the other `amount` once per period (补足差额).
    FixedFee { payer: PublicKey, amount: Amount },
    /// Replaces the policy's referral and/or home-merchant rate between the two.
    RateOverride { referral_rate: Option<Bps>, home_rate: Option<Bps> },
}

impl Encode for Terms {
    fn encode(&self, w: &mut Writer) {
        match self {
            Terms::FixedFee { payer, amount } => {
                w.u8(1);
                payer.encode(w);
                amount.encode(w);
            }
            Terms::RateOverride { referral_rate, home_rate } => {
                w.u8(2);
                w.option(referral_rate);
                w.option(home_rate);
            }
        }
    }
}
impl Decode for Terms {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Terms::FixedFee { payer: PublicKey::decode(r)?, amount: Amount::decode(r)? }),
            2 => Ok(Terms::RateOverride { referral_rate: r.option("referral_rate")?, home_rate: r.option("home_rate")? }),
            tag => Err(DecodeError::InvalidTag { what: "agreement terms", tag }),
        }
    }
}

/// The record kinds of DESIGN §4.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Payload {
    Propose { action: Action },
    Vote { proposal: Hash, approve: bool },
    IssueCard { card: CardId },
    Refer {
        code_hash: Hash,
        /// Binds the referral to a card, for last-touch attribution (S1).
        card: Option<CardId>,
        promoter: Option<PromoterId>,
        upstream: Option<PromoterId>,
        /// Empty: valid at every member (competitor isolation still applies).
        valid_at: Vec<Place>,
        expires_at_ms: u64,
        multi_use: bool,
    },
    IssueCoupons {
        batch: String,
        code_hashes: Vec<Hash>,
        value: CouponValue,
        min_spend: Amount,
        /// Empty: redeemable at every member (competitor isolation still applies).
        redeemable_at: Vec<Place>,
        funding: Funding,
        expires_at_ms: u64,
    },
    Sale {
        order: String,
        gross: Amount,
        /// Net paid, excluding coupon value funded by others; commissions are rates of this.
        base: Amount,
        card: Option<CardId>,
        referral_code: Option<CodeSecret>,
        coupon_codes: Vec<CodeSecret>,
        points_redeemed: u64,
    },
    Refund { order: String, refund_id: String, amount: Amount },
    RevokeRedemption { order: String, code_hash: Hash },
    Agreement { agreement_id: String, counterparty: PublicKey, terms: Terms, starts_at_ms: u64, ends_at_ms: Option<u64> },
    Accept { agreement: Hash },
    ConfirmPayment { period: u64, payer: PublicKey, amount: Amount },
}

impl Payload {
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Propose { .. } => "propose",
            Payload::Vote { .. } => "vote",
            Payload::IssueCard { .. } => "issue-card",
            Payload::Refer { .. } => "refer",
            Payload::IssueCoupons { .. } => "issue-coupons",
            Payload::Sale { .. } => "sale",
            Payload::Refund { .. } => "refund",
            Payload::RevokeRedemption { .. } => "revoke-redemption",
            Payload::Agreement { .. } => "agreement",
            Payload::Accept { .. } => "accept",
            Payload::ConfirmPayment { .. } => "confirm-payment",
        }
    }

    /// Checks every rule that needs no state. `signer` and `created_at_ms` come from the body.
    pub fn validate(&self, signer: &PublicKey, created_at_ms: u64) -> Result<(), RecordError> {
        let places = |name: &'static str, list: &[Place]| -> Result<(), RecordError> {
            if list.len() > PLACES_MAX {
                return Err(field(name, format!("at most {PLACES_MAX} places")));
            }
            if list.windows(2).any(|w| w[0] >= w[1]) {
                return Err(field(name, "places must be sorted and distinct"));
            }
            Ok(())
        };
        match self {
            Payload::Propose { action } => match action {
                Action::AdmitMerchant(p) | Action::UpdateMerchant(p) => p.validate().map_err(|e| field("profile", e)),
                Action::PublishPolicy(p) => p.validate().map_err(|e| field("policy", e)),
                _ => Ok(()),
            },
            Payload::Vote { .. } | Payload::IssueCard { .. } | Payload::Accept { .. } => Ok(()),
            Payload::Refer { promoter, upstream, valid_at, expires_at_ms, .. } => {
                if upstream.is_some() && promoter.is_none() {
                    return Err(field("upstream", "an upstream promoter needs a promoter (S2)"));
                }
                if upstream.is_some() && upstream == promoter {
                    return Err(field("upstream", "the upstream must differ from the promoter (S2)"));
                }
                places("valid_at", valid_at)?;
                if *expires_at_ms <= created_at_ms {
                    return Err(field("expires_at", "must be after the record's creation time"));
                }
                Ok(())
            }
            Payload::IssueCoupons { batch, code_hashes, value, redeemable_at, expires_at_ms, .. } => {
                check_external_id("batch", batch).map_err(|e| field("batch", e))?;
                if code_hashes.is_empty() || code_hashes.len() > COUPON_BATCH_MAX {
                    return Err(field("code_hashes", format!("1 to {COUPON_BATCH_MAX} codes per batch")));
                }
                if code_hashes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(field("code_hashes", "code hashes must be sorted and distinct"));
                }
                match value {
                    CouponValue::Fixed(a) if a.is_zero() => return Err(field("value", "a coupon's face value must be positive")),
                    CouponValue::Percent(Bps(0)) => return Err(field("value", "a coupon's percentage must be positive")),
                    _ => {}
                }
                places("redeemable_at", redeemable_at)?;
                if *expires_at_ms <= created_at_ms {
                    return Err(field("expires_at", "must be after the record's creation time"));
                }
                Ok(())
            }
            Payload::Sale { order, gross, base, coupon_codes, points_redeemed, .. } => {
                check_external_id("order", order).map_err(|e| field("order", e))?;
                if gross.is_zero() {
                    return Err(field("gross", "a sale's gross amount must be positive"));
                }
                if base > gross {
                    return Err(field("base", format!("commission base {base} exceeds gross {gross}")));
                }
                if coupon_codes.len() > COUPONS_PER_SALE_MAX {
                    return Err(field("coupon_codes", format!("at most {COUPONS_PER_SALE_MAX} coupons per sale")));
                }
                let mut hashes: Vec<Hash> = coupon_codes.iter().map(CodeSecret::hash).collect();
                hashes.sort();
                if hashes.windows(2).any(|w| w[0] == w[1]) {
                    return Err(field("coupon_codes", "the same coupon is listed twice"));
                }
                if *points_redeemed > POINTS_MAX {
                    return Err(field("points_redeemed", format!("at most {POINTS_MAX}")));
                }
                Ok(())
            }
            Payload::Refund { order, refund_id, amount } => {
                check_external_id("order", order).map_err(|e| field("order", e))?;
                check_external_id("refund_id", refund_id).map_err(|e| field("refund_id", e))?;
                if amount.is_zero() {
                    return Err(field("amount", "a refund must be positive"));
                }
                Ok(())
            }
            Payload::RevokeRedemption { order, .. } => check_external_id("order", order).map_err(|e| field("order", e)),
            Payload::Agreement { agreement_id, counterparty, terms, starts_at_ms, ends_at_ms } => {
                check_external_id("agreement_id", agreement_id).map_err(|e| field("agreement_id", e))?;
                if counterparty == signer {
                    return Err(field("counterparty", "an agreement needs two different merchants"));
                }
                match terms {
                    Terms::FixedFee { payer, amount } => {
                        if payer != signer && payer != counterparty {
                            return Err(field("payer", "the payer must be one of the two parties"));
                        }
                        if amount.is_zero() {
                            return Err(field("amount", "a fixed fee must be positive"));
                        }
                    }
                    Terms::RateOverride { referral_rate, home_rate } => {
                        if referral_rate.is_none() && home_rate.is_none() {
                            return Err(field("terms", "an override must replace at least one rate"));
                        }
                    }
                }
                if let Some(end) = ends_at_ms {
                    if end <= starts_at_ms {
                        return Err(field("ends_at", "must be after starts_at"));
                    }
                }
                Ok(())
            }
            Payload::ConfirmPayment { amount, payer, .. } => {
                if amount.is_zero() {
                    return Err(field("amount", "a confirmed payment must be positive"));
                }
                if payer == signer {
                    return Err(field("payer", "a merchant cannot confirm a payment to itself"));
                }
                Ok(())
            }
        }
    }
}

impl Encode for Payload {
    fn encode(&self, w: &mut Writer) {
        match self {
            Payload::Propose { action } => {
                w.u8(1);
                action.encode(w);
            }
            Payload::Vote { proposal, approve } => {
                w.u8(2);
                proposal.encode(w);
                w.bool(*approve);
            }
            Payload::IssueCard { card } => {
                w.u8(3);
                card.encode(w);
            }
            Payload::Refer { code_hash, card, promoter, upstream, valid_at, expires_at_ms, multi_use } => {
                w.u8(4);
                code_hash.encode(w);
                w.option(card);
                w.option(promoter);
                w.option(upstream);
                w.seq(valid_at);
                w.u64(*expires_at_ms);
                w.bool(*multi_use);
            }
            Payload::IssueCoupons { batch, code_hashes, value, min_spend, redeemable_at, funding, expires_at_ms } => {
                w.u8(5);
                w.str(batch);
                w.seq(code_hashes);
                value.encode(w);
                min_spend.encode(w);
                w.seq(redeemable_at);
                funding.encode(w);
                w.u64(*expires_at_ms);
            }
            Payload::Sale { order, gross, base, card, referral_code, coupon_codes, points_redeemed } => {
                w.u8(6);
                w.str(order);
                gross.encode(w);
                base.encode(w);
                w.option(card);
                w.option(referral_code);
                w.seq(coupon_codes);
                w.u64(*points_redeemed);
            }
            Payload::Refund { order, refund_id, amount } => {
                w.u8(7);
                w.str(order);
                w.str(refund_id);
                amount.encode(w);
            }
            Payload::RevokeRedemption { order, code_hash } => {
                w.u8(8);
                w.str(order);
                code_hash.encode(w);
            }
            Payload::Agreement { agreement_id, counterparty, terms, starts_at_ms, ends_at_ms } => {
                w.u8(9);
                w.str(agreement_id);
                counterparty.encode(w);
                terms.encode(w);
                w.u64(*starts_at_ms);
                w.option(ends_at_ms);
            }
            Payload::Accept { agreement } => {
                w.u8(10);
                agreement.encode(w);
            }
            Payload::ConfirmPayment { period, payer, amount } => {
                w.u8(11);
                w.u64(*period);
                payer.encode(w);
                amount.encode(w);
            }
        }
    }
}

impl Decode for Payload {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            1 => Payload::Propose { action: Action::decode(r)? },
            2 => Payload::Vote { proposal: Hash::decode(r)?, approve: r.bool("approve")? },
            3 => Payload::IssueCard { card: CardId::decode(r)? },
            4 => Payload::Refer {
                code_hash: Hash::decode(r)?,
                card: r.option("card")?,
                promoter: r.option("promoter")?,
                upstream: r.option("upstream")?,
                valid_at: r.seq("valid_at", PLACES_MAX)?,
                expires_at_ms: r.u64()?,
                multi_use: r.bool("multi_use")?,
            },
            5 => Payload::IssueCoupons {
                batch: r.string("batch", EXTERNAL_ID_MAX)?,
                code_hashes: r.seq("code_hashes", COUPON_BATCH_MAX)?,
                value: CouponValue::decode(r)?,
                min_spend: Amount::decode(r)?,
                redeemable_at: r.seq("redeemable_at", PLACES_MAX)?,
                funding: Funding::decode(r)?,
                expires_at_ms: r.u64()?,
            },
            6 => Payload::Sale {
                order: r.string("order", EXTERNAL_ID_MAX)?,
                gross: Amount::decode(r)?,
                base: Amount::decode(r)?,
                card: r.option("card")?,
                referral_code: r.option("referral code")?,
                coupon_codes: r.seq("coupon codes", COUPONS_PER_SALE_MAX)?,
                points_redeemed: r.u64()?,
            },
            7 => Payload::Refund {
                order: r.string("order", EXTERNAL_ID_MAX)?,
                refund_id: r.string("refund_id", EXTERNAL_ID_MAX)?,
                amount: Amount::decode(r)?,
            },
            8 => Payload::RevokeRedemption { order: r.string("order", EXTERNAL_ID_MAX)?, code_hash: Hash::decode(r)? },
            9 => Payload::Agreement {
                agreement_id: r.string("agreement_id", EXTERNAL_ID_MAX)?,
                counterparty: PublicKey::decode(r)?,
                terms: Terms::decode(r)?,
                starts_at_ms: r.u64()?,
                ends_at_ms: r.option("ends_at")?,
            },
            10 => Payload::Accept { agreement: Hash::decode(r)? },
            11 => Payload::ConfirmPayment { period: r.u64()?, payer: PublicKey::decode(r)?, amount: Amount::decode(r)? },
            tag => return Err(DecodeError::InvalidTag { what: "record kind", tag }),
        })
    }
}

/// The signed part of a record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordBody {
    /// The genesis hash: a record can never be replayed into another alliance.
    pub alliance: Hash,
    pub signer: PublicKey,
    /// The signer's clock, Unix ms.
    pub created_at_ms: u64,
    pub payload: Payload,
}

impl Encode for RecordBody {
    fn encode(&self, w: &mut Writer) {
        self.alliance.encode(w);
        self.signer.encode(w);
        w.u64(self.created_at_ms);
        self.payload.encode(w);
    }
}
impl Decode for RecordBody {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RecordBody { alliance: Hash::decode(r)?, signer: PublicKey::decode(r)?, created_at_ms: r.u64()?, payload: Payload::decode(r)? })
    }
}

/// A signed record. Its id is the blake3 hash of its canonical encoding (body ‖ signature).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    body: RecordBody,
    signature: Signature,
    id: Hash,
}

impl Record {
    /// Signs `body` with `keypair`, which must be the body's signer.
    pub fn sign(body: RecordBody, keypair: &Keypair) -> Record {
        assert_eq!(body.signer, keypair.public(), "a record is signed by its signer");
        let signature = keypair.sign(domain::RECORD, &body.to_bytes());
        Record::from_parts(body, signature)
    }

    pub fn from_parts(body: RecordBody, signature: Signature) -> Record {
        let mut w = Writer::new();
        body.encode(&mut w);
        signature.encode(&mut w);
        let id = Hash::digest(&w.into_bytes());
        Record { body, signature, id }
    }

    pub fn id(&self) -> Hash {
        self.id
    }
    pub fn body(&self) -> &RecordBody {
        &self.body
    }
    pub fn signer(&self) -> &PublicKey {
        &self.body.signer
    }
    pub fn payload(&self) -> &Payload {
        &self.body.payload
    }
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The bytes the signature covers (after `domain::RECORD`).
    pub fn signing_bytes(&self) -> Vec<u8> {
        self.body.to_bytes()
    }

    /// Everything that needs no state: the alliance, the fields, the signature.
    pub fn check(&self, alliance: &Hash) -> Result<(), RecordError> {
        self.check_without_signature(alliance)?;
        self.body.signer.verify(domain::RECORD, &self.signing_bytes(), &self.signature)?;
        Ok(())
    }

    /// [`Record::check`] of each record, with the signatures of those whose fields pass checked
    /// in one batch ([`verify_batch_reasons`]: about half the cost of checking them one by
    /// one). The answers, reasons included, are exactly those of `check`, record by record.
    pub fn check_all(records: &[Record], alliance: &Hash) -> Vec<Result<(), RecordError>> {
        let mut results: Vec<Result<(), RecordError>> = records.iter().map(|r| r.check_without_signature(alliance)).collect();
        let passed: Vec<usize> = (0..records.len()).filter(|&i| results[i].is_ok()).collect();
        let messages: Vec<Vec<u8>> = passed.iter().map(|&i| records[i].signing_bytes()).collect();
        let items: Vec<BatchItem<'_>> = passed
            .iter()
            .zip(&messages)
            .map(|(&i, message)| BatchItem { key: records[i].signer(), domain: domain::RECORD, message, signature: records[i].signature() })
            .collect();
        for (&i, answer) in passed.iter().zip(verify_batch_reasons(&items)) {
            results[i] = answer.map_err(RecordError::Signature);
        }
        results
    }

    /// [`Record::check`] less the signature, for callers that batch signature checks.
    pub fn check_without_signature(&self, alliance: &Hash) -> Result<(), RecordError> {
        if self.body.alliance != *alliance {
            return Err(RecordError::WrongAlliance { expected: *alliance, found: self.body.alliance });
        }
        self.body.payload.validate(&self.body.signer, self.body.created_at_ms)
    }

    /// Decodes and checks a record from untrusted bytes.
    pub fn decode_checked(bytes: &[u8], alliance: &Hash) -> Result<Record, RecordError> {
        let record = Record::from_bytes(bytes, RECORD_BYTES_MAX)?;
        record.check(alliance)?;
        Ok(record)
    }
}

/// DESIGN §4: a record is accepted only if created within `window_ms` of the block time.
pub fn check_time_window(created_at_ms: u64, block_time_ms: u64, window_ms: u64) -> Result<(), RecordError> {
    if created_at_ms.abs_diff(block_time_ms) > window_ms {
        return Err(RecordError::OutsideTimeWindow { created_at_ms, block_time_ms, window_ms });
    }
    Ok(())
}

impl Encode for Record {
    fn encode(&self, w: &mut Writer) {
        self.body.encode(w);
        self.signature.encode(w);
    }
}
impl Decode for Record {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let body = RecordBody::decode(r)?;
        let signature = Signature::decode(r)?;
        // The decoder is canonical (a value has one encoding and any other is refused; every
        // fuzz target checks the round trip), so the bytes just read are the record's
        // encoding: hashed as they are, not encoded again (an allocation and a copy per
        // record decoded from the network, a block or an export).
        let id = Hash::digest(r.since(start));
        let record = Record { body, signature, id };
        debug_assert_eq!(record.id, Record::from_parts(record.body.clone(), record.signature).id, "the record decoder is canonical");
        Ok(record)
    }
}
