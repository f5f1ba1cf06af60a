//! Distances between members' fixed-point locations, in integers (issue 19).
//!
//! A location is latitude and longitude in microdegrees (`i32`, as `MerchantProfile` holds
//! them). [`distance_m`] is the great-circle distance on the mean Earth sphere (IUGG radius
//! 6,371,008.8 m), computed with integer arithmetic only: sines and cosines by their Taylor
//! series in 10^-18 fixed point, the chord between the two points' unit vectors by an integer
//! square root, and the arc from the chord by the arcsine series. No float is used, so every
//! node, on every machine, gives the same metres for the same two points.
//!
//! Accuracy (docs/NODE.md, "Nearby members"): the integer computation is within 1 m of the
//! exact great-circle distance on that sphere at any distance (the result is rounded to the
//! metre; the fixed-point error is below a millimetre), tested against a floating-point
//! haversine oracle and published distances. The sphere itself differs from the WGS-84
//! ellipsoid by at most about 0.56 % (north–south near the equator), so "2 km" here is within
//! about 11 m of a geodesic survey; a microdegree of input is at most 0.11 m.

use std::fmt;

use crate::genesis::parse_microdegrees;

/// The mean Earth radius (IUGG), in millimetres.
pub const EARTH_RADIUS_MM: i128 = 6_371_008_800;
/// The largest radius a query may ask for: half the Earth's circumference on the mean sphere
/// (20,015,114 m), which already contains every point.
pub const RADIUS_M_MAX: u64 = 20_015_114;
pub const LATITUDE_E6_MAX: i32 = 90_000_000;
pub const LONGITUDE_E6_MAX: i32 = 180_000_000;

/// The fixed-point scale of the trigonometry: 1.0 is 10^18.
const ONE: i128 = 1_000_000_000_000_000_000;
/// π × 10^18, rounded.
const PI: i128 = 3_141_592_653_589_793_238;
/// Microdegrees in 180°.
const HALF_TURN_E6: i128 = 180_000_000;

/// A location: latitude within ±90°, longitude within ±180°, in microdegrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    latitude_e6: i32,
    longitude_e6: i32,
}

/// Why a location or radius is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GeoError {
    /// Not `LAT,LON` in decimal degrees.
    BadPoint(String),
    LatitudeOutOfRange(i64),
    LongitudeOutOfRange(i64),
    /// Not a whole number of metres (or a `km`/`m` length on the CLI).
    BadRadius(String),
    ZeroRadius,
    RadiusTooLarge(u64),
}

impl GeoError {
    /// A short stable code for APIs (`bad-point`, `latitude-out-of-range`, …).
    pub fn code(&self) -> &'static str {
        match self {
            GeoError::BadPoint(_) => "bad-point",
            GeoError::LatitudeOutOfRange(_) => "latitude-out-of-range",
            GeoError::LongitudeOutOfRange(_) => "longitude-out-of-range",
            GeoError::BadRadius(_) => "bad-radius",
            GeoError::ZeroRadius => "zero-radius",
            GeoError::RadiusTooLarge(_) => "radius-too-large",
        }
    }
}

impl fmt::Display for GeoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeoError::BadPoint(e) => write!(f, "{e}"),
            GeoError::LatitudeOutOfRange(v) => write!(f, "latitude {} is outside -90..90 degrees", Micro(*v)),
            GeoError::LongitudeOutOfRange(v) => write!(f, "longitude {} is outside -180..180 degrees", Micro(*v)),
            GeoError::BadRadius(e) => write!(f, "{e}"),
            GeoError::ZeroRadius => write!(f, "the radius must be at least 1 m"),
            GeoError::RadiusTooLarge(m) => {
                write!(f, "radius {m} m is more than {RADIUS_M_MAX} m (half the Earth's circumference, which contains every point)")
            }
        }
    }
}

impl std::error::Error for GeoError {}

/// Microdegrees shown as decimal degrees, without floats.
struct Micro(i64);
impl fmt::Display for Micro {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let v = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:06}", v / 1_000_000, v % 1_000_000)
    }
}

/// Decimal degrees with six places from microdegrees, e.g. `31.230416` (no floats).
pub fn degrees_text(e6: i32) -> String {
    Micro(i64::from(e6)).to_string()
}

impl Point {
    pub fn new(latitude_e6: i32, longitude_e6: i32) -> Result<Point, GeoError> {
        if !(-LATITUDE_E6_MAX..=LATITUDE_E6_MAX).contains(&latitude_e6) {
            return Err(GeoError::LatitudeOutOfRange(i64::from(latitude_e6)));
        }
        if !(-LONGITUDE_E6_MAX..=LONGITUDE_E6_MAX).contains(&longitude_e6) {
            return Err(GeoError::LongitudeOutOfRange(i64::from(longitude_e6)));
        }
        Ok(Point { latitude_e6, longitude_e6 })
    }

    /// `LAT,LON` in decimal degrees with at most six decimals, e.g. `31.2304,121.4737`.
    pub fn parse(text: &str) -> Result<Point, GeoError> {
        let t = text.trim();
        let (lat, lon) = t
            .split_once(',')
            .ok_or_else(|| GeoError::BadPoint(format!("{t:?} must be LAT,LON in decimal degrees, like 31.230416,121.473701")))?;
        let lat = parse_microdegrees("latitude", lat).map_err(GeoError::BadPoint)?;
        let lon = parse_microdegrees("longitude", lon).map_err(GeoError::BadPoint)?;
        Point::new(lat, lon)
    }

    pub fn latitude_e6(self) -> i32 {
        self.latitude_e6
    }
    pub fn longitude_e6(self) -> i32 {
        self.longitude_e6
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", Micro(i64::from(self.latitude_e6)), Micro(i64::from(self.longitude_e6)))
    }
}

/// A radius in whole metres from a query string: digits only, 1 to [`RADIUS_M_MAX`].
pub fn parse_radius_m(text: &str) -> Result<u64, GeoError> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GeoError::BadRadius(format!("radius {t:?} must be a whole number of metres, like 2000")));
    }
    let m: u64 = t.parse().map_err(|_| GeoError::RadiusTooLarge(u64::MAX))?;
    check_radius_m(m)
}

/// A radius written as a length: `2km`, `1.5km`, `800m` or plain metres (`800`); the result
/// is whole metres (a length finer than a metre is refused).
pub fn parse_length_m(text: &str) -> Result<u64, GeoError> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || GeoError::BadRadius(format!("radius {text:?} must be a length like 2km, 1.5km or 800m"));
    let (number, scale): (&str, u64) = if let Some(n) = t.strip_suffix("km") {
        (n.trim(), 1000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n.trim(), 1)
    } else {
        (t.as_str(), 1)
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) || whole.len() > 12 || frac.len() > 3 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let mut frac_value: u64 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad())? };
    for _ in frac.len()..3 {
        frac_value *= 10;
    }
    // In millimetres first, so "1.5km" and "0.8km" are exact.
    let mm = whole.checked_mul(scale * 1000).and_then(|w| w.checked_add(frac_value * scale)).ok_or(GeoError::RadiusTooLarge(u64::MAX))?;
    if mm % 1000 != 0 {
        return Err(GeoError::BadRadius(format!("radius {text:?} is finer than a metre")));
    }
    check_radius_m(mm / 1000)
}

fn check_radius_m(m: u64) -> Result<u64, GeoError> {
    match m {
        0 => Err(GeoError::ZeroRadius),
        m if m > RADIUS_M_MAX => Err(GeoError::RadiusTooLarge(m)),
        m => Ok(m),
    }
}

/// The great-circle distance between two points on the mean Earth sphere, in whole metres
/// (rounded half up). Integer arithmetic only; symmetric; zero for equal points.
pub fn distance_m(a: Point, b: Point) -> u64 {
    let mm = distance_mm(a, b);
    ((mm + 500) / 1000) as u64
}

/// The same distance in millimetres (not rounded to the metre).
fn distance_mm(a: Point, b: Point) -> i128 {
    if a == b {
        return 0;
    }
    let (ax, ay, az) = unit_vector(a);
    let (bx, by, bz) = unit_vector(b);
    let (dx, dy, dz) = (ax - bx, ay - by, az - bz);
    // The chord's square at scale 10^36: at most 4 × 10^36, within i128.
    let chord_sq = (dx * dx + dy * dy + dz * dz) as u128;
    let chord = chord_sq.isqrt() as i128;
    // The central angle: 2·asin(chord / 2).
    let angle = 2 * asin((chord / 2).min(ONE));
    (angle * EARTH_RADIUS_MM + ONE / 2) / ONE
}

/// Microdegrees to radians at scale 10^18.
fn radians(e6: i32) -> i128 {
    i128::from(e6) * PI / HALF_TURN_E6
}

/// The point on the unit sphere at scale 10^18: (cos φ cos λ, cos φ sin λ, sin φ).
fn unit_vector(p: Point) -> (i128, i128, i128) {
    let phi = radians(p.latitude_e6);
    let lambda = radians(p.longitude_e6);
    let (sin_phi, cos_phi) = (sin(phi), cos(phi));
    let (sin_lambda, cos_lambda) = (sin(lambda), cos(lambda));
    (cos_phi * cos_lambda / ONE, cos_phi * sin_lambda / ONE, sin_phi)
}

/// sin x for |x| ≤ π at scale 10^18, by its Taylor series (terms stay below 6 × 10^18, their
/// products with x² below 6 × 10^37, within i128).
fn sin(x: i128) -> i128 {
    debug_assert!(x.abs() <= PI);
    let x2 = x * x / ONE;
    let mut term = x;
    let mut sum = x;
    let mut n: i128 = 1;
    while term != 0 {
        term = -term * x2 / ONE / ((2 * n) * (2 * n + 1));
        sum += term;
        n += 1;
    }
    sum
}

/// cos x for |x| ≤ π at scale 10^18, by its Taylor series.
fn cos(x: i128) -> i128 {
    debug_assert!(x.abs() <= PI);
    let x2 = x * x / ONE;
    let mut term = ONE;
    let mut sum = ONE;
    let mut n: i128 = 1;
    while term != 0 {
        term = -term * x2 / ONE / ((2 * n - 1) * (2 * n));
        sum += term;
        n += 1;
    }
    sum
}

/// asin s for 0 ≤ s ≤ 1 at scale 10^18. The series converges fast only for small s, so above
/// ½ it uses asin s = π/2 − 2·asin √((1 − s)/2), whose argument is at most ½.
fn asin(s: i128) -> i128 {
    debug_assert!((0..=ONE).contains(&s));
    if s <= ONE / 2 {
        return asin_series(s);
    }
    let half_rest = (ONE - s) / 2;
    let root = ((half_rest * ONE) as u128).isqrt() as i128;
    PI / 2 - 2 * asin_series(root)
}

/// Σ (2n)! / (4ⁿ (n!)² (2n+1)) · s^(2n+1) for 0 ≤ s ≤ ½: each term is at most a quarter of
/// the one before, so about 30 terms reach the scale's last digit.
fn asin_series(s: i128) -> i128 {
    let s2 = s * s / ONE;
    // a = (2n)!/(4ⁿ (n!)²) · s^(2n+1)
    let mut a = s;
    let mut sum = s;
    let mut n: i128 = 1;
    while a != 0 {
        a = a * s2 / ONE * (2 * n - 1) / (2 * n);
        sum += a / (2 * n + 1);
        n += 1;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: i32, lon: i32) -> Point {
        Point::new(lat, lon).expect("valid point")
    }

    #[test]
    fn trigonometry_matches_known_values() {
        // sin, cos and asin at 10^-18: within 64 units of the last place (6 × 10^-17 rad).
        let close = |a: i128, b: i128| (a - b).abs() <= 64;
        assert_eq!(sin(0), 0);
        assert_eq!(cos(0), ONE);
        assert!(close(sin(PI / 6), ONE / 2), "{}", sin(PI / 6));
        assert!(close(sin(PI / 2), ONE), "{}", sin(PI / 2));
        assert!(close(cos(PI / 2), 0), "{}", cos(PI / 2));
        assert!(close(cos(PI), -ONE), "{}", cos(PI));
        assert!(close(sin(-PI / 2), -ONE));
        assert!(close(asin(ONE / 2), PI / 6), "{}", asin(ONE / 2));
        assert!(close(asin(ONE), PI / 2), "{}", asin(ONE));
        // √2/2 → π/4, through the reflected branch.
        assert!(close(asin(707_106_781_186_547_524), PI / 4), "{}", asin(707_106_781_186_547_524));
    }

    #[test]
    fn distances_are_symmetric_and_zero_only_for_equal_points() {
        let a = p(31_230_416, 121_473_701);
        let b = p(31_239_700, 121_499_700);
        assert_eq!(distance_m(a, a), 0);
        assert_eq!(distance_m(a, b), distance_m(b, a));
        assert!(distance_m(a, b) > 0);
        // One microdegree of latitude is 0.11 m: rounds to 0 m, two thousand of them to 222 m.
        assert_eq!(distance_m(a, p(31_230_417, 121_473_701)), 0);
        assert_eq!(distance_m(a, p(31_232_416, 121_473_701)), 222);
    }

    #[test]
    fn points_and_radii_are_checked() {
        assert_eq!(Point::parse("31.230416,121.473701"), Ok(p(31_230_416, 121_473_701)));
        assert_eq!(Point::parse(" -33.9,-118.4 "), Ok(p(-33_900_000, -118_400_000)));
        assert_eq!(Point::parse("90,180"), Ok(p(90_000_000, 180_000_000)));
        assert_eq!(Point::parse("90.000001,0"), Err(GeoError::LatitudeOutOfRange(90_000_001)));
        assert_eq!(Point::parse("0,-180.5"), Err(GeoError::LongitudeOutOfRange(-180_500_000)));
        for bad in ["", "31.2", "31.2;121.4", "a,b", "31.2304161,121", "31,121,5", "1e3,4", "nan,nan"] {
            assert_eq!(Point::parse(bad).map_err(|e| e.code()), Err("bad-point"), "{bad:?}");
        }
        assert_eq!(Point::parse("91,0").map_err(|e| e.to_string()), Err("latitude 91.000000 is outside -90..90 degrees".into()));
        assert_eq!(p(-1_500_000, 7).to_string(), "-1.500000,0.000007");
        assert_eq!(degrees_text(-500_000), "-0.500000");

        assert_eq!(parse_radius_m("2000"), Ok(2000));
        assert_eq!(parse_radius_m("1"), Ok(1));
        assert_eq!(parse_radius_m("20015114"), Ok(RADIUS_M_MAX));
        assert_eq!(parse_radius_m("20015115"), Err(GeoError::RadiusTooLarge(20_015_115)));
        assert_eq!(parse_radius_m("99999999999999999999999"), Err(GeoError::RadiusTooLarge(u64::MAX)));
        assert_eq!(parse_radius_m("0"), Err(GeoError::ZeroRadius));
        for bad in ["", "-5", "2.5", "2km", "1e3", " "] {
            assert_eq!(parse_radius_m(bad).map_err(|e| e.code()), Err("bad-radius"), "{bad:?}");
        }
        assert_eq!(parse_length_m("2km"), Ok(2000));
        assert_eq!(parse_length_m("1.5km"), Ok(1500));
        assert_eq!(parse_length_m("0.001km"), Ok(1));
        assert_eq!(parse_length_m("800m"), Ok(800));
        assert_eq!(parse_length_m("800"), Ok(800));
        assert_eq!(parse_length_m("2 KM"), Ok(2000));
        assert_eq!(parse_length_m("0km"), Err(GeoError::ZeroRadius));
        assert_eq!(parse_length_m("30000km"), Err(GeoError::RadiusTooLarge(30_000_000)));
        for bad in ["", "km", "-2km", "2.5m", "1.0001km", "2 miles", "2kmm", ".5km"] {
            assert!(matches!(parse_length_m(bad), Err(GeoError::BadRadius(_))), "{bad:?}: {:?}", parse_length_m(bad));
        }
    }
}
