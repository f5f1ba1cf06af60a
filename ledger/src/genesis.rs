//! Genesis: the alliance's first members, categories, districts, policy and validators,
//! written by the organiser as TOML (docs/genesis.example.toml). Its hash is the alliance id.

use std::collections::BTreeSet;

use serde::Deserialize;
use thiserror::Error;

use crate::cert::{Validator, ValidatorSet};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::money::{Amount, Bps};
use crate::policy::Policy;
use crate::record::{check_code, check_name, MerchantProfile, PromoterId, NAME_MAX};

pub const GENESIS_BYTES_MAX: usize = 1024 * 1024;
pub const GENESIS_LIST_MAX: usize = 1024;
/// The domain in front of the genesis bytes when hashing them into the alliance id.
pub const GENESIS_DOMAIN: &[u8] = b"plaza/genesis/v1\0";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("genesis: {0}")]
pub struct GenesisError(pub String);

fn err(message: impl Into<String>) -> GenesisError {
    GenesisError(message.into())
}

/// A code and its display name (categories, districts).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    pub code: String,
    pub name: String,
}
impl Encode for Named {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.code);
        w.str(&self.name);
    }
}
impl Decode for Named {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let code = r.string("code", crate::record::CODE_MAX)?;
        check_code("code", &code).map_err(|e| DecodeError::invalid("code", e))?;
        Ok(Named { code, name: r.string("name", NAME_MAX)? })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    pub name: String,
    /// ISO 4217 code, e.g. CNY.
    pub currency: String,
    /// The alliance's time zone as a fixed offset; periods close at local midnight.
    pub utc_offset_minutes: i32,
    /// Unix ms; the first block's time is never earlier.
    pub time_ms: u64,
    pub categories: Vec<Named>,
    pub districts: Vec<Named>,
    /// Sorted by key.
    pub members: Vec<MerchantProfile>,
    pub validators: ValidatorSet,
    pub policy: Policy,
    /// S2: promoters registered from the start, sorted by id; an upstream is one of them.
    pub promoters: Vec<GenesisPromoter>,
}

/// A promoter registered by the genesis (as if by a passed `RegisterPromoter` vote).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisPromoter {
    pub id: PromoterId,
    pub name: String,
    pub upstream: Option<PromoterId>,
}
impl Encode for GenesisPromoter {
    fn encode(&self, w: &mut Writer) {
        self.id.encode(w);
        w.str(&self.name);
        w.option(&self.upstream);
    }
}
impl Decode for GenesisPromoter {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GenesisPromoter { id: PromoterId::decode(r)?, name: r.string("promoter name", NAME_MAX)?, upstream: r.option("upstream promoter")? })
    }
}

impl Genesis {
    /// The alliance id: blake3 of the domain and the canonical genesis bytes.
    pub fn alliance_id(&self) -> Hash {
        Hash::digest_parts(&[GENESIS_DOMAIN, &self.to_bytes()])
    }

    /// Checks the relations between parts (members' categories exist, validators are members …).
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.name.trim().is_empty() || self.name.len() > NAME_MAX {
            return Err(err(format!("alliance name must be 1 to {NAME_MAX} bytes")));
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(format!("currency {:?} must be a three-letter ISO 4217 code like CNY", self.currency)));
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return Err(err("utc_offset_minutes must be within ±14 hours"));
        }
        for (what, list) in [("category", &self.categories), ("district", &self.districts)] {
            if list.is_empty() {
                return Err(err(format!("at least one {what} is needed")));
            }
            if list.len() > GENESIS_LIST_MAX {
                return Err(err(format!("at most {GENESIS_LIST_MAX} of each list")));
            }
            for n in list {
                check_code(what, &n.code).map_err(err)?;
                if n.name.trim().is_empty() || n.name.len() > NAME_MAX {
                    return Err(err(format!("{what} {} needs a name of 1 to {NAME_MAX} bytes", n.code)));
                }
            }
            if list.windows(2).any(|w| w[0].code >= w[1].code) {
                return Err(err(format!("{what} codes must be sorted and distinct")));
            }
        }
        if self.members.is_empty() || self.members.len() > GENESIS_LIST_MAX {
            return Err(err(format!("between 1 and {GENESIS_LIST_MAX} members")));
        }
        if self.members.windows(2).any(|w| w[0].key >= w[1].key) {
            return Err(err("members must be sorted by key and distinct"));
        }
        let categories: BTreeSet<&str> = self.categories.iter().map(|c| c.code.as_str()).collect();
        let districts: BTreeSet<&str> = self.districts.iter().map(|c| c.code.as_str()).collect();
        for m in &self.members {
            m.validate().map_err(|e| err(format!("member {}: {e}", m.name)))?;
            if !categories.contains(m.category.as_str()) {
                return Err(err(format!("member {}: unknown category {:?}", m.name, m.category)));
            }
            if !districts.contains(m.district.as_str()) {
                return Err(err(format!("member {}: unknown district {:?}", m.name, m.district)));
            }
        }
        for v in self.validators.validators() {
            let member = self
                .members
                .iter()
                .find(|m| m.key == v.key)
                .ok_or_else(|| err(format!("validator {} is not a member", v.key)))?;
            if member.network_key != Some(v.network_key) {
                return Err(err(format!("validator {}: network key differs from the member's", member.name)));
            }
        }
        if self.promoters.len() > GENESIS_LIST_MAX {
            return Err(err(format!("at most {GENESIS_LIST_MAX} promoters")));
        }
        if self.promoters.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(err("promoters must be sorted by id and distinct"));
        }
        let find = |id: &PromoterId| self.promoters.binary_search_by(|p| p.id.cmp(id)).ok().map(|i| &self.promoters[i]);
        for p in &self.promoters {
            check_name("promoter name", &p.name).map_err(|e| err(format!("promoter {}: {e}", p.id)))?;
            // An upstream is a promoter of the genesis, and following upstreams never comes back
            // (as with votes, where an upstream must be registered first).
            let mut at = p;
            for _ in 0..=self.promoters.len() {
                let Some(up) = &at.upstream else { break };
                if *up == p.id {
                    return Err(err(format!("promoter {}: its upstream chain comes back to it", p.id)));
                }
                at = find(up).ok_or_else(|| err(format!("promoter {}: upstream {up} is not a promoter of the genesis", at.id)))?;
            }
        }
        self.policy.validate().map_err(|e| err(format!("policy: {e}")))?;
        if self.policy.version != 1 {
            return Err(err("the genesis policy has version 1"));
        }
        Ok(())
    }

    /// Parses and validates the organiser's TOML file.
    pub fn from_toml(text: &str) -> Result<Genesis, GenesisError> {
        let file: GenesisFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            match line {
                Some(l) => err(format!("line {l}: {}", e.message())),
                None => err(e.message().to_owned()),
            }
        })?;
        file.into_genesis()
    }
}

impl Encode for Genesis {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.name);
        w.str(&self.currency);
        w.i32(self.utc_offset_minutes);
        w.u64(self.time_ms);
        w.seq(&self.categories);
        w.seq(&self.districts);
        w.seq(&self.members);
        self.validators.encode(w);
        self.policy.encode(w);
        // Present only when the genesis registers promoters, so a genesis without them keeps
        // the bytes (and alliance id) it had before promoters could be listed (docs/FORMAT.md).
        if !self.promoters.is_empty() {
            w.seq(&self.promoters);
        }
    }
}
impl Decode for Genesis {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let genesis = Genesis {
            name: r.string("alliance name", NAME_MAX)?,
            currency: r.string("currency", 3)?,
            utc_offset_minutes: r.i32()?,
            time_ms: r.u64()?,
            categories: r.seq("categories", GENESIS_LIST_MAX)?,
            districts: r.seq("districts", GENESIS_LIST_MAX)?,
            members: r.seq("members", GENESIS_LIST_MAX)?,
            validators: ValidatorSet::decode(r)?,
            policy: Policy::decode(r)?,
            promoters: Vec::new(),
        };
        let mut genesis = genesis;
        // Fewer bytes than a count are left for the caller to reject as trailing.
        if r.remaining() >= 4 {
            genesis.promoters = r.seq("promoters", GENESIS_LIST_MAX)?;
            if genesis.promoters.is_empty() {
                return Err(DecodeError::invalid("genesis", "an empty promoter list is not encoded"));
            }
        }
        genesis.validate().map_err(|e| DecodeError::invalid("genesis", e.0))?;
        Ok(genesis)
    }
}

// ---- The TOML file -------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    alliance: AllianceSection,
    categories: Vec<NamedEntry>,
    districts: Vec<NamedEntry>,
    members: Vec<MemberEntry>,
    #[serde(default)]
    policy: PolicyEntry,
    #[serde(default)]
    promoters: Vec<PromoterEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoterEntry {
    id: String,
    name: String,
    upstream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllianceSection {
    name: String,
    #[serde(default = "default_currency")]
    currency: String,
    #[serde(default = "default_offset")]
    utc_offset_minutes: i32,
    genesis_time: toml::value::Datetime,
}

fn default_currency() -> String {
    "CNY".into()
}
fn default_offset() -> i32 {
    480
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedEntry {
    code: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberEntry {
    name: String,
    key: String,
    category: String,
    district: String,
    latitude: String,
    longitude: String,
    network_key: Option<String>,
    #[serde(default)]
    validator: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    referral_rate_bps: Option<u32>,
    promoter_rate_bps: Option<u32>,
    upstream_rate_bps: Option<u32>,
    home_rate_bps: Option<u32>,
    share_cap_bps: Option<u32>,
    earn_points_per_unit: Option<u32>,
    point_value: Option<String>,
    points_hold_days: Option<u32>,
    points_validity_days: Option<u32>,
    lock_days: Option<u32>,
    refund_window_days: Option<u32>,
    revocation_window_minutes: Option<u64>,
    period_hours: Option<u64>,
    min_payout: Option<String>,
    card_sales_per_hour_max: Option<u32>,
    refund_ratio_max_bps: Option<u32>,
    record_time_window_minutes: Option<u64>,
}

/// Parses a decimal degree string with at most six decimals into microdegrees.
pub fn parse_microdegrees(what: &str, text: &str) -> Result<i32, String> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || whole.len() > 3 || frac.len() > 6 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {t:?} must be decimal degrees with at most six decimals, like \"31.230416\""));
    }
    let whole: i64 = whole.parse().map_err(|_| format!("{what} {t:?} is not a number"))?;
    let mut frac_value: i64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| format!("{what} {t:?} is not a number"))? };
    for _ in frac.len()..6 {
        frac_value *= 10;
    }
    let value = whole * 1_000_000 + frac_value;
    let value = if negative { -value } else { value };
    i32::try_from(value).map_err(|_| format!("{what} {t:?} is out of range"))
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn datetime_to_unix_ms(dt: &toml::value::Datetime) -> Result<u64, String> {
    let (Some(date), Some(time), Some(offset)) = (dt.date, dt.time, dt.offset) else {
        return Err("genesis_time needs a date, a time and an offset, like 2026-11-23T00:00:00+08:00".into());
    };
    let offset_minutes: i64 = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    let days = days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day));
    let seconds = days * 86_400 + i64::from(time.hour) * 3600 + i64::from(time.minute) * 60 + i64::from(time.second.unwrap_or(0))
        - offset_minutes * 60;
    let ms = seconds * 1000 + i64::from(time.nanosecond.unwrap_or(0) / 1_000_000);
    u64::try_from(ms).map_err(|_| "genesis_time must be after 1970".to_string())
}

/// An absolute time as the CLI accepts it: RFC 3339 with an offset
/// (`2026-12-31T23:59:59+08:00`) or Unix milliseconds.
pub fn parse_time_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| format!("{t:?} is too large for Unix milliseconds"));
    }
    let dt: toml::value::Datetime =
        t.parse().map_err(|_| format!("{t:?} is neither Unix milliseconds nor a time like 2026-12-31T23:59:59+08:00"))?;
    datetime_to_unix_ms(&dt).map_err(|e| e.replace("genesis_time", "the time"))
}

impl GenesisFile {
    fn into_genesis(self) -> Result<Genesis, GenesisError> {
        let time_ms = datetime_to_unix_ms(&self.alliance.genesis_time).map_err(err)?;
        let mut categories: Vec<Named> = self.categories.into_iter().map(|n| Named { code: n.code, name: n.name }).collect();
        let mut districts: Vec<Named> = self.districts.into_iter().map(|n| Named { code: n.code, name: n.name }).collect();
        for (what, list) in [("category", &categories), ("district", &districts)] {
            let codes: BTreeSet<&str> = list.iter().map(|n| n.code.as_str()).collect();
            if codes.len() != list.len() {
                return Err(err(format!("a {what} code is listed twice")));
            }
        }
        categories.sort();
        districts.sort();

        let mut members = Vec::new();
        let mut validators = Vec::new();
        for m in self.members {
            let who = format!("member {:?}", m.name);
            let key = PublicKey::from_hex(&m.key).map_err(|e| err(format!("{who}: key: {e}")))?;
            let network_key = match &m.network_key {
                Some(k) => Some(PublicKey::from_hex(k).map_err(|e| err(format!("{who}: network_key: {e}")))?),
                None => None,
            };
            if m.validator {
                let network_key = network_key.ok_or_else(|| err(format!("{who}: a validator needs a network_key")))?;
                validators.push(Validator { key, network_key });
            }
            members.push(MerchantProfile {
                key,
                name: m.name.clone(),
                category: m.category,
                district: m.district,
                latitude_e6: parse_microdegrees("latitude", &m.latitude).map_err(|e| err(format!("{who}: {e}")))?,
                longitude_e6: parse_microdegrees("longitude", &m.longitude).map_err(|e| err(format!("{who}: {e}")))?,
                network_key,
            });
        }
        members.sort_by(|a, b| a.key.cmp(&b.key));
        if let Some(w) = members.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(err(format!("members {:?} and {:?} have the same key", w[0].name, w[1].name)));
        }
        if validators.is_empty() {
            return Err(err("at least one member must be a validator (validator = true with a network_key)"));
        }
        let validators = ValidatorSet::new(validators).map_err(|e| err(format!("validators: {e}")))?;

        let p = self.policy;
        let mut policy = Policy::default_v1(time_ms);
        let bps = |v: Option<u32>, d: Bps| v.map(Bps).unwrap_or(d);
        policy.referral_rate = bps(p.referral_rate_bps, policy.referral_rate);
        policy.promoter_rate = bps(p.promoter_rate_bps, policy.promoter_rate);
        policy.upstream_rate = bps(p.upstream_rate_bps, policy.upstream_rate);
        policy.home_rate = bps(p.home_rate_bps, policy.home_rate);
        policy.share_cap = bps(p.share_cap_bps, policy.share_cap);
        policy.refund_ratio_max = bps(p.refund_ratio_max_bps, policy.refund_ratio_max);
        policy.earn_points_per_unit = p.earn_points_per_unit.unwrap_or(policy.earn_points_per_unit);
        if let Some(v) = p.point_value {
            policy.point_value = Amount::parse(&v).map_err(|e| err(format!("policy.point_value: {e}")))?;
        }
        if let Some(v) = p.min_payout {
            policy.min_payout = Amount::parse(&v).map_err(|e| err(format!("policy.min_payout: {e}")))?;
        }
        policy.points_hold_days = p.points_hold_days.unwrap_or(policy.points_hold_days);
        policy.points_validity_days = p.points_validity_days.unwrap_or(policy.points_validity_days);
        policy.lock_days = p.lock_days.unwrap_or(policy.lock_days);
        policy.refund_window_days = p.refund_window_days.unwrap_or(policy.refund_window_days);
        let minutes = |v: Option<u64>, d: u64| -> Result<u64, GenesisError> {
            match v {
                Some(m) => m.checked_mul(crate::policy::MINUTE_MS).ok_or_else(|| err("policy: a window is too long")),
                None => Ok(d),
            }
        };
        policy.revocation_window_ms = minutes(p.revocation_window_minutes, policy.revocation_window_ms)?;
        policy.record_time_window_ms = minutes(p.record_time_window_minutes, policy.record_time_window_ms)?;
        if let Some(h) = p.period_hours {
            policy.period_ms = h.checked_mul(crate::policy::HOUR_MS).ok_or_else(|| err("policy.period_hours is too long"))?;
        }
        policy.card_sales_per_hour_max = p.card_sales_per_hour_max.unwrap_or(policy.card_sales_per_hour_max);

        let mut promoters = Vec::with_capacity(self.promoters.len());
        for p in self.promoters {
            let id = PromoterId::new(&p.id).map_err(|e| err(format!("promoter {:?}: {e}", p.id)))?;
            let upstream = match &p.upstream {
                Some(u) => Some(PromoterId::new(u).map_err(|e| err(format!("promoter {:?}: upstream: {e}", p.id)))?),
                None => None,
            };
            promoters.push(GenesisPromoter { id, name: p.name, upstream });
        }
        promoters.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = promoters.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(err(format!("promoter {} is listed twice", w[0].id)));
        }

        let genesis = Genesis {
            name: self.alliance.name,
            currency: self.alliance.currency,
            utc_offset_minutes: self.alliance.utc_offset_minutes,
            time_ms,
            categories,
            districts,
            members,
            validators,
            policy,
            promoters,
        };
        genesis.validate()?;
        Ok(genesis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_convert_to_unix_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let dt: toml::value::Datetime = "2026-11-23T00:00:00+08:00".parse().expect("datetime");
        // 2026-11-22T16:00:00Z
        assert_eq!(datetime_to_unix_ms(&dt), Ok(1_763_827_200_000 + 365 * 86_400_000));
    }

    #[test]
    fn absolute_times_are_rfc3339_with_an_offset_or_unix_ms() {
        assert_eq!(parse_time_ms("2026-11-23T00:00:00+08:00"), Ok(1_763_827_200_000 + 365 * 86_400_000));
        assert_eq!(parse_time_ms("2026-11-22T16:00:00Z"), Ok(1_763_827_200_000 + 365 * 86_400_000));
        assert_eq!(parse_time_ms(" 1795363200000 "), Ok(1_795_363_200_000));
        assert!(parse_time_ms("2026-11-23").unwrap_err().contains("offset"));
        assert!(parse_time_ms("tomorrow").unwrap_err().contains("neither"));
        assert!(parse_time_ms("99999999999999999999999").is_err());
    }

    #[test]
    fn microdegrees_are_exact() {
        assert_eq!(parse_microdegrees("lat", "31.230416"), Ok(31_230_416));
        assert_eq!(parse_microdegrees("lat", "-0.5"), Ok(-500_000));
        assert!(parse_microdegrees("lat", "31.2304161").is_err());
        assert!(parse_microdegrees("lat", "1e5").is_err());
    }
}
