//! Money and rates (DESIGN §5, "Money and numbers").
//!
//! An [`Amount`] is a non-negative number of the alliance currency with exactly two decimal
//! places, at most 10^12, held as integer cents. Arithmetic in the contract converts to
//! `rust_decimal` where products are rounded; the stored and signed form is always cents.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

/// The largest amount: 10^12 currency units.
pub const AMOUNT_MAX_CENTS: u64 = 1_000_000_000_000 * 100;

/// 100% in basis points.
pub const BPS_ONE: u32 = 10_000;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);

    pub fn from_cents(cents: u64) -> Result<Amount, String> {
        if cents > AMOUNT_MAX_CENTS {
            return Err(format!("amount {} exceeds the maximum 1000000000000.00", Amount(cents)));
        }
        Ok(Amount(cents))
    }

    pub fn cents(self) -> u64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0 as i64, 2)
    }

    /// Rounds a decimal half-to-even to cents (DESIGN §5). Negative or out-of-range values are
    /// programmer errors in the contract, which never produces them.
    pub fn from_decimal_rounded(value: Decimal) -> Amount {
        let rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
        let cents = (rounded * Decimal::ONE_HUNDRED).trunc();
        let cents = u64::try_from(cents).expect("contract amounts are non-negative and bounded");
        assert!(cents <= AMOUNT_MAX_CENTS, "contract amounts never exceed the maximum");
        Amount(cents)
    }

    /// Parses "12", "12.3" or "12.34"; rejects negatives, more than two decimals, exponents,
    /// and anything over the maximum.
    pub fn parse(text: &str) -> Result<Amount, String> {
        let t = text.trim();
        let err = |why: &str| format!("invalid amount {t:?}: {why}");
        if t.is_empty() {
            return Err(err("empty"));
        }
        if t.starts_with('-') {
            return Err(err("amounts are never negative"));
        }
        let (whole, frac) = match t.split_once('.') {
            Some((w, f)) => (w, f),
            None => (t, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected digits with at most two decimal places, like 12.34"));
        }
        if t.contains('.') && frac.is_empty() {
            return Err(err("a decimal point must be followed by digits"));
        }
        if frac.len() > 2 {
            return Err(err("at most two decimal places"));
        }
        if whole.len() > 13 {
            return Err(err("exceeds the maximum 1000000000000.00"));
        }
        let whole: u64 = whole.parse().map_err(|_| err("not a number"))?;
        let mut frac_cents: u64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| err("not a number"))? };
        if frac.len() == 1 {
            frac_cents *= 10;
        }
        let cents = whole.checked_mul(100).and_then(|c| c.checked_add(frac_cents)).ok_or_else(|| err("too large"))?;
        Amount::from_cents(cents).map_err(|_| err("exceeds the maximum 1000000000000.00"))
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    pub fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}
impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({self})")
    }
}

impl Encode for Amount {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
}
impl Decode for Amount {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cents = r.u64()?;
        Amount::from_cents(cents).map_err(|e| DecodeError::invalid("amount", e))
    }
}

/// A rate in basis points: 10000 = 100%.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Bps(pub u32);

impl Bps {
    pub fn check(self, what: &'static str) -> Result<Bps, String> {
        if self.0 > BPS_ONE {
            return Err(format!("{what}: {} basis points is more than 100%", self.0));
        }
        Ok(self)
    }

    /// `amount × rate`, rounded half-to-even to cents.
    pub fn of(self, amount: Amount) -> Amount {
        let product = amount.to_decimal() * Decimal::from(self.0) / Decimal::from(BPS_ONE);
        Amount::from_decimal_rounded(product)
    }
}

impl fmt::Display for Bps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}%", self.0 / 100, self.0 % 100)
    }
}

impl Encode for Bps {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.0);
    }
}
impl Decode for Bps {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Bps(r.u32()?).check("rate").map_err(|e| DecodeError::invalid("rate", e))
    }
}

/// Splits `whole` into parts proportional to `weights` that sum exactly to `whole`
/// (DESIGN §5: largest remainder, ties broken by position, which callers order by merchant id).
pub fn split_largest_remainder(whole: Amount, weights: &[u64]) -> Vec<Amount> {
    let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if total == 0 {
        return vec![Amount::ZERO; weights.len()];
    }
    let whole_cents = u128::from(whole.0);
    let mut parts: Vec<u64> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (i, &w) in weights.iter().enumerate() {
        let numerator = whole_cents * u128::from(w);
        parts.push(u64::try_from(numerator / total).expect("a part never exceeds the whole"));
        remainders.push((numerator % total, i));
    }
    let assigned: u64 = parts.iter().sum();
    let mut left = whole.0 - assigned;
    // Largest remainder first; equal remainders go to the earlier position.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in &remainders {
        if left == 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    assert_eq!(parts.iter().sum::<u64>(), whole.0, "a split sums exactly to its whole");
    parts.into_iter().map(Amount).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_accepts_exact_cents_only() {
        assert_eq!(Amount::parse("12.34").map(Amount::cents), Ok(1234));
        assert_eq!(Amount::parse("12.3").map(Amount::cents), Ok(1230));
        assert_eq!(Amount::parse("12").map(Amount::cents), Ok(1200));
        assert_eq!(Amount::parse("1000000000000").map(Amount::cents), Ok(AMOUNT_MAX_CENTS));
        for bad in ["", "-1", "1.234", "1e3", "1.", ".5", "1000000000000.01", "abc", "1,5", "+1"] {
            assert!(Amount::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn rates_round_half_to_even() {
        // 0.25 × 50% = 0.125 → 0.12 (even); 0.35 × 50% = 0.175 → 0.18 (even).
        assert_eq!(Bps(5000).of(Amount(25)), Amount(12));
        assert_eq!(Bps(5000).of(Amount(35)), Amount(18));
        assert_eq!(Bps(1000).of(Amount(10000)), Amount(1000));
    }

    #[test]
    fn largest_remainder_ties_go_to_the_earlier_position() {
        let parts = split_largest_remainder(Amount(100), &[1, 1, 1]);
        assert_eq!(parts, vec![Amount(34), Amount(33), Amount(33)]);
    }

    proptest! {
        #[test]
        fn splits_sum_to_the_whole(cents in 0u64..AMOUNT_MAX_CENTS, weights in proptest::collection::vec(0u64..1_000_000, 1..20)) {
            let parts = split_largest_remainder(Amount(cents), &weights);
            let total: u64 = parts.iter().map(|a| a.0).sum();
            if weights.iter().all(|&w| w == 0) {
                prop_assert_eq!(total, 0);
            } else {
                prop_assert_eq!(total, cents);
            }
        }

        #[test]
        fn display_parse_round_trip(cents in 0u64..=AMOUNT_MAX_CENTS) {
            prop_assert_eq!(Amount::parse(&Amount(cents).to_string()), Ok(Amount(cents)));
        }
    }
}
