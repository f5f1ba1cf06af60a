//! `plaza query merchants --near LAT,LON --within 2km …` and `plaza query districts` (issue
//! 19): arguments checked here (so a bad point or radius fails before any request), the query
//! path for `GET /v1/merchants`, and the human rendering of both answers.

use clap::Args;
use plaza_ledger::geo::{parse_length_m, Point};
use plaza_ledger::record::{check_code, CardId, CodeSecret};
use plaza_ledger::{Hash, PublicKey};
use serde_json::Value;

use crate::output::CliError;
use crate::render::{abbreviate, Names, Table};

/// Filters of `plaza query merchants`; with none, every member and its status.
#[derive(Args, Clone, Debug, Default)]
pub struct MerchantFilters {
    /// Measure distances from this point (decimal degrees), and sort by distance.
    #[arg(long, value_name = "LAT,LON", allow_hyphen_values = true)]
    pub near: Option<String>,
    /// Only members within this distance of --near: 2km, 1.5km, 800m.
    #[arg(long, value_name = "LENGTH", requires = "near")]
    pub within: Option<String>,
    /// Only members of this category (e.g. restaurant).
    #[arg(long)]
    pub category: Option<String>,
    /// Only members of this district (商圈 code).
    #[arg(long)]
    pub district: Option<String>,
    /// Only where this coupon can be redeemed: its code secret (hashed here, never sent).
    #[arg(long, value_name = "SECRET", group = "accepts")]
    pub coupon: Option<String>,
    /// Only where this coupon can be redeemed: its code hash.
    #[arg(long, value_name = "CODE_HASH", group = "accepts")]
    pub coupon_hash: Option<String>,
    /// Only where points issued by this merchant can be redeemed.
    #[arg(long, value_name = "ISSUER_KEY", group = "accepts")]
    pub points_of: Option<String>,
    /// Only where this card's spendable points can be redeemed (shows them per issuer).
    #[arg(long, value_name = "CARD", group = "accepts")]
    pub card: Option<String>,
}

/// The `/v1/merchants` path for these filters; every value is checked first.
pub fn merchants_path(f: &MerchantFilters) -> Result<String, CliError> {
    let mut params: Vec<(&str, String)> = Vec::new();
    if let Some(near) = &f.near {
        let p = Point::parse(near).map_err(|e| CliError::new(format!("--near: {e}")))?;
        params.push(("near", p.to_string()));
    }
    if let Some(within) = &f.within {
        let m = parse_length_m(within).map_err(|e| CliError::new(format!("--within: {e}")))?;
        params.push(("within_m", m.to_string()));
    }
    if let Some(c) = &f.category {
        check_code("category", c).map_err(|e| CliError::new(format!("--category: {e}")))?;
        params.push(("category", c.clone()));
    }
    if let Some(d) = &f.district {
        check_code("district", d).map_err(|e| CliError::new(format!("--district: {e}")))?;
        params.push(("district", d.clone()));
    }
    if let Some(secret) = &f.coupon {
        let h = CodeSecret::new(secret.as_bytes()).map_err(|e| CliError::new(format!("--coupon: {e}")))?.hash();
        params.push(("accepts_coupon", h.to_hex()));
    }
    if let Some(h) = &f.coupon_hash {
        let h = Hash::from_hex(h).map_err(|e| CliError::new(format!("--coupon-hash: {e}")))?;
        params.push(("accepts_coupon", h.to_hex()));
    }
    if let Some(k) = &f.points_of {
        let k = PublicKey::from_hex(k).map_err(|e| CliError::new(format!("--points-of: {e}")))?;
        params.push(("accepts_points_of", k.to_hex()));
    }
    if let Some(c) = &f.card {
        let c = CardId::from_hex(c).map_err(|e| CliError::new(format!("--card: {e}")))?;
        params.push(("accepts_card", c.to_hex()));
    }
    if params.is_empty() {
        return Ok("/v1/merchants".into());
    }
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Ok(format!("/v1/merchants?{}", query.join("&")))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

/// A distance for people: `850 m`, `1.27 km` (integer arithmetic, rounded down to 10 m).
pub fn distance_text(m: u64) -> String {
    if m < 1000 { format!("{m} m") } else { format!("{}.{:02} km", m / 1000, (m % 1000) / 10) }
}

/// One row per merchant (nearest first when a point was given), then what the filter said
/// about the coupon or card.
pub fn print_merchants(answer: &Value, names: &Names) {
    let list = answer.get("merchants").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if let Some(near) = answer.get("near") {
        let within = answer.get("within_m").and_then(Value::as_u64).map(|m| format!(" within {}", distance_text(m))).unwrap_or_default();
        println!("{} member(s) near {},{}{within}:", list.len(), text(near, "latitude"), text(near, "longitude"));
    } else {
        println!("{} member(s):", list.len());
    }
    let near = answer.get("near").is_some();
    let mut header = vec!["name", "category", "district", "status", "key"];
    if near {
        header.insert(0, "distance");
    }
    let mut t = Table::new(&header).right(if near { &[0] } else { &[] });
    for m in list {
        let mut row = vec![text(m, "name").to_owned(), text(m, "category").to_owned(), text(m, "district").to_owned(), text(m, "status").to_owned(), abbreviate(text(m, "key"))];
        if near {
            row.insert(0, m.get("distance_m").and_then(Value::as_u64).map(distance_text).unwrap_or_default());
        }
        t.row(row);
    }
    if !t.is_empty() {
        t.print("  ");
    }
    if let Some(c) = answer.get("coupon") {
        match c.get("unusable_because").and_then(Value::as_str) {
            Some(why) => println!("coupon {}: {why}, usable nowhere", abbreviate(text(c, "code_hash"))),
            None => {
                let expires = c.get("expires_at_ms").and_then(Value::as_u64).map(|ms| format!("{} ({})", names.time(ms), names.zone())).unwrap_or_else(|| "-".into());
                println!("coupon {} of {}: expires {expires}", abbreviate(text(c, "code_hash")), names.key(text(c, "issuer")));
            }
        }
    }
    if let Some(c) = answer.get("card") {
        let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
        println!("card {}: {} points redeemable ({} spendable, {} debt)", text(c, "card"), n("redeemable"), n("spendable"), n("debt"));
        let mut t = Table::new(&["points", "issuer", "worth elsewhere"]).right(&[0, 2]);
        for i in c.get("spendable_by_issuer").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            t.row([i.get("points").and_then(Value::as_u64).unwrap_or(0).to_string(), names.key(text(i, "issuer")), text(i, "value_elsewhere").to_owned()]);
        }
        if !t.is_empty() {
            t.print("  ");
        }
    }
}

/// Each district with its members.
pub fn print_districts(answer: &Value) {
    for d in answer.get("districts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let members = d.get("members").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let name = d.get("name").and_then(Value::as_str).map(|n| format!(" {n}")).unwrap_or_default();
        println!("{}{name}: {} member(s), {} active", text(d, "code"), members.len(), d.get("active_members").and_then(Value::as_u64).unwrap_or(0));
        let mut t = Table::new(&["name", "category", "status", "location", "key"]);
        for m in members {
            t.row([text(m, "name").to_owned(), text(m, "category").to_owned(), text(m, "status").to_owned(), format!("{},{}", text(m, "latitude"), text(m, "longitude")), abbreviate(text(m, "key"))]);
        }
        if !t.is_empty() {
            t.print("  ");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_a_checked_query() {
        let f = MerchantFilters { near: Some("31.2239,121.446".into()), within: Some("2km".into()), category: Some("restaurant".into()), ..Default::default() };
        assert_eq!(merchants_path(&f).map_err(|e| e.to_string()).expect("path"), "/v1/merchants?near=31.223900,121.446000&within_m=2000&category=restaurant");
        assert_eq!(merchants_path(&MerchantFilters::default()).map_err(|e| e.to_string()).expect("path"), "/v1/merchants");
        let bad = |f: MerchantFilters| merchants_path(&f).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(bad(MerchantFilters { near: Some("95,1".into()), ..Default::default() }).starts_with("--near: latitude"));
        assert!(bad(MerchantFilters { near: Some("1,1".into()), within: Some("2 miles".into()), ..Default::default() }).starts_with("--within:"));
        assert!(bad(MerchantFilters { category: Some("Food & Drink".into()), ..Default::default() }).starts_with("--category:"));
        assert!(bad(MerchantFilters { card: Some("xyz".into()), ..Default::default() }).starts_with("--card:"));
        assert_eq!(distance_text(850), "850 m");
        assert_eq!(distance_text(1_275), "1.27 km");
        assert_eq!(distance_text(12_000), "12.00 km");
    }
}
