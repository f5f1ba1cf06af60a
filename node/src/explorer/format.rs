//! Text forms for people: amounts with the currency and thousands separators, times in the
//! alliance's time zone (a fixed UTC offset from genesis), short keys.

/// Cents as `1,234.50` (no currency).
pub fn cents_grouped(value: u128) -> String {
    let units = (value / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3 + 3);
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped}.{:02}", value % 100)
}

/// Cents with the currency: `1,234.50 CNY`.
pub fn money(value: u128, currency: &str) -> String {
    format!("{} {currency}", cents_grouped(value))
}

/// Signed cents with the currency: `-12.00 CNY`, `+12.00 CNY`.
pub fn signed_money(value: i128, currency: &str) -> String {
    let sign = if value < 0 { "−" } else if value > 0 { "+" } else { "" };
    format!("{sign}{}", money(value.unsigned_abs(), currency))
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (the civil-from-days algorithm of Howard Hinnant's date library).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Unix ms as `2026-12-02 14:05:09` in the zone `utc_offset_minutes` east of UTC.
pub fn datetime(ms: u64, utc_offset_minutes: i32) -> String {
    let local_s = (ms / 1000) as i64 + i64::from(utc_offset_minutes) * 60;
    let (days, secs) = (local_s.div_euclid(86_400), local_s.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The zone's name: `UTC+08:00`.
pub fn zone(utc_offset_minutes: i32) -> String {
    let sign = if utc_offset_minutes < 0 { '−' } else { '+' };
    let m = utc_offset_minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

/// The first 8 hex digits and an ellipsis, for ids that have no name.
pub fn short(hex: &str) -> String {
    match hex.get(..8) {
        Some(head) if hex.len() > 8 => format!("{head}…"),
        _ => hex.to_owned(),
    }
}

/// Basis points as a percentage: `5%`, `12.5%`.
pub fn percent(bps: u32) -> String {
    if bps % 100 == 0 { format!("{}%", bps / 100) } else { format!("{}%", f64::from(bps) / 100.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_and_carry_the_currency() {
        assert_eq!(money(0, "CNY"), "0.00 CNY");
        assert_eq!(money(5, "CNY"), "0.05 CNY");
        assert_eq!(money(99_999, "CNY"), "999.99 CNY");
        assert_eq!(money(123_456_789, "CNY"), "1,234,567.89 CNY");
        assert_eq!(signed_money(-1_200, "CNY"), "−12.00 CNY");
        assert_eq!(signed_money(1_200, "EUR"), "+12.00 EUR");
    }

    #[test]
    fn times_are_in_the_alliance_zone() {
        // 2026-12-02T00:00:00Z
        let ms = 1_796_169_600_000;
        assert_eq!(datetime(ms, 0), "2026-12-02 00:00:00");
        assert_eq!(datetime(ms, 480), "2026-12-02 08:00:00");
        assert_eq!(datetime(ms - 1_000, 480), "2026-12-02 07:59:59");
        assert_eq!(datetime(ms, -300), "2026-12-01 19:00:00");
        assert_eq!(datetime(951_782_400_000, 0), "2000-02-29 00:00:00");
        assert_eq!(datetime(0, 0), "1970-01-01 00:00:00");
        assert_eq!(zone(480), "UTC+08:00");
        assert_eq!(zone(-330), "UTC−05:30");
    }

    #[test]
    fn short_ids_and_rates() {
        assert_eq!(short("0123456789abcdef"), "01234567…");
        assert_eq!(short("abc"), "abc");
        assert_eq!(percent(500), "5%");
        assert_eq!(percent(1250), "12.5%");
    }
}
