//! The alliance policy (DESIGN §5): rates and windows, data on the ledger, versioned, changed
//! only by vote. The version in force at an event's time applies to that event.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::keys::PublicKey;
use crate::money::{Amount, Bps};

pub const DAY_MS: u64 = 86_400_000;
pub const HOUR_MS: u64 = 3_600_000;
pub const MINUTE_MS: u64 = 60_000;
/// Pairs and overrides listed in one policy.
pub const POLICY_LIST_MAX: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Increases by one with every published policy; genesis carries version 1.
    pub version: u32,
    /// Block time (Unix ms) from which this version applies to events.
    pub effective_at_ms: u64,
    /// S1: paid to the referring merchant, of the commission base.
    pub referral_rate: Bps,
    /// S2: paid to the promoter a referral names.
    pub promoter_rate: Bps,
    /// S2: paid to that promoter's upstream promoter.
    pub upstream_rate: Bps,
    /// S3: paid to a card's home merchant when the card buys elsewhere.
    pub home_rate: Bps,
    /// S4: all cross-merchant payouts of one sale together, of its base.
    pub share_cap: Bps,
    /// S7: points earned per 1.00 of commission base (rounded down).
    pub earn_points_per_unit: u32,
    /// S7: per-merchant earn rates that replace the default.
    pub earn_overrides: Vec<(PublicKey, u32)>,
    /// S7: what one point is worth when redeemed at a merchant other than its issuer.
    pub point_value: Amount,
    pub points_hold_days: u32,
    pub points_validity_days: u32,
    /// S8: days after which a pending item locks; never less than `refund_window_days`.
    pub lock_days: u32,
    pub refund_window_days: u32,
    /// S6: a redemption can be revoked within this window.
    pub revocation_window_ms: u64,
    /// S10: the settlement period, aligned to local midnight of the alliance's time zone.
    pub period_ms: u64,
    /// S10: nets below this roll over to the next period.
    pub min_payout: Amount,
    /// S11: more sales than this by one card at one merchant within an hour put the referrer on hold.
    pub card_sales_per_hour_max: u32,
    /// S11: a referrer whose referred sales are refunded above this ratio is put on hold.
    pub refund_ratio_max: Bps,
    /// DESIGN §4: a record is accepted only if its created-at is within this of the block time.
    pub record_time_window_ms: u64,
    /// S5: merchant pairs of one category that may nevertheless pay each other.
    pub isolation_exceptions: Vec<(PublicKey, PublicKey)>,
}

impl Policy {
    /// The defaults a new alliance starts from (documented in docs/genesis.example.toml).
    pub fn default_v1(effective_at_ms: u64) -> Policy {
        Policy {
            version: 1,
            effective_at_ms,
            referral_rate: Bps(500),
            promoter_rate: Bps(300),
            upstream_rate: Bps(100),
            home_rate: Bps(200),
            share_cap: Bps(3000),
            earn_points_per_unit: 1,
            earn_overrides: Vec::new(),
            point_value: Amount::from_cents(1).expect("one cent"),
            points_hold_days: 1,
            points_validity_days: 365,
            lock_days: 7,
            refund_window_days: 7,
            revocation_window_ms: HOUR_MS,
            period_ms: DAY_MS,
            min_payout: Amount::from_cents(1000).expect("ten units"),
            card_sales_per_hour_max: 10,
            refund_ratio_max: Bps(5000),
            record_time_window_ms: 10 * MINUTE_MS,
            isolation_exceptions: Vec::new(),
        }
    }

    /// Checks what no single field's type can: sensible relations between fields.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("referral_rate", self.referral_rate),
            ("promoter_rate", self.promoter_rate),
            ("upstream_rate", self.upstream_rate),
            ("home_rate", self.home_rate),
            ("share_cap", self.share_cap),
            ("refund_ratio_max", self.refund_ratio_max),
        ] {
            rate.check(name)?;
        }
        if self.version == 0 {
            return Err("policy version starts at 1".into());
        }
        if self.lock_days < self.refund_window_days {
            return Err(format!(
                "lock_days ({}) must be at least refund_window_days ({}) (S8)",
                self.lock_days, self.refund_window_days
            ));
        }
        if self.period_ms < HOUR_MS || self.period_ms > 31 * DAY_MS || DAY_MS % self.period_ms != 0 && self.period_ms % DAY_MS != 0 {
            return Err("period_ms must be between one hour and 31 days and divide or be a multiple of a day".into());
        }
        if self.points_validity_days <= self.points_hold_days {
            return Err("points_validity_days must exceed points_hold_days (S7)".into());
        }
        if self.record_time_window_ms == 0 || self.record_time_window_ms > DAY_MS {
            return Err("record_time_window_ms must be between 1 ms and one day".into());
        }
        if self.earn_overrides.len() > POLICY_LIST_MAX || self.isolation_exceptions.len() > POLICY_LIST_MAX {
            return Err(format!("at most {POLICY_LIST_MAX} overrides and exceptions"));
        }
        if self.earn_overrides.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err("earn_overrides must be sorted by merchant key, without repeats".into());
        }
        if self.isolation_exceptions.iter().any(|(a, b)| a >= b) || self.isolation_exceptions.windows(2).any(|w| w[0] >= w[1]) {
            return Err("isolation_exceptions must list each pair once, smaller key first, sorted".into());
        }
        Ok(())
    }

    /// The earn rate for points issued by `seller` (S7).
    pub fn earn_rate_for(&self, seller: &PublicKey) -> u32 {
        match self.earn_overrides.binary_search_by(|(k, _)| k.cmp(seller)) {
            Ok(i) => self.earn_overrides[i].1,
            Err(_) => self.earn_points_per_unit,
        }
    }

    /// Whether two merchants of one category are exempt from competitor isolation (S5).
    pub fn isolation_exempt(&self, a: &PublicKey, b: &PublicKey) -> bool {
        let pair = if a < b { (*a, *b) } else { (*b, *a) };
        self.isolation_exceptions.binary_search(&pair).is_ok()
    }
}

impl Encode for Policy {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.version);
        w.u64(self.effective_at_ms);
        for rate in [self.referral_rate, self.promoter_rate, self.upstream_rate, self.home_rate, self.share_cap] {
            rate.encode(w);
        }
        w.u32(self.earn_points_per_unit);
        w.u32(self.earn_overrides.len() as u32);
        for (k, rate) in &self.earn_overrides {
            k.encode(w);
            w.u32(*rate);
        }
        self.point_value.encode(w);
        w.u32(self.points_hold_days);
        w.u32(self.points_validity_days);
        w.u32(self.lock_days);
        w.u32(self.refund_window_days);
        w.u64(self.revocation_window_ms);
        w.u64(self.period_ms);
        self.min_payout.encode(w);
        w.u32(self.card_sales_per_hour_max);
        self.refund_ratio_max.encode(w);
        w.u64(self.record_time_window_ms);
        w.seq(&self.isolation_exceptions);
    }
}

impl Decode for Policy {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u32()?;
        let effective_at_ms = r.u64()?;
        let referral_rate = Bps::decode(r)?;
        let promoter_rate = Bps::decode(r)?;
        let upstream_rate = Bps::decode(r)?;
        let home_rate = Bps::decode(r)?;
        let share_cap = Bps::decode(r)?;
        let earn_points_per_unit = r.u32()?;
        let n = r.len("earn overrides", POLICY_LIST_MAX)?;
        let mut earn_overrides = Vec::with_capacity(n);
        for _ in 0..n {
            earn_overrides.push((PublicKey::decode(r)?, r.u32()?));
        }
        let policy = Policy {
            version,
            effective_at_ms,
            referral_rate,
            promoter_rate,
            upstream_rate,
            home_rate,
            share_cap,
            earn_points_per_unit,
            earn_overrides,
            point_value: Amount::decode(r)?,
            points_hold_days: r.u32()?,
            points_validity_days: r.u32()?,
            lock_days: r.u32()?,
            refund_window_days: r.u32()?,
            revocation_window_ms: r.u64()?,
            period_ms: r.u64()?,
            min_payout: Amount::decode(r)?,
            card_sales_per_hour_max: r.u32()?,
            refund_ratio_max: Bps::decode(r)?,
            record_time_window_ms: r.u64()?,
            isolation_exceptions: r.seq("isolation exceptions", POLICY_LIST_MAX)?,
        };
        policy.validate().map_err(|e| DecodeError::invalid("policy", e))?;
        Ok(policy)
    }
}
