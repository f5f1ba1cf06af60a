//! The nearby-members API (issue 19): `GET /v1/merchants` with a point, a radius, category and
//! district filters and "accepts" filters (a coupon, points of an issuer, a card), and
//! `GET /v1/districts`. The queries themselves are `plaza_ledger::nearby` (pure, integer
//! distances); this module parses the query string, gives each bad parameter its own error and
//! turns the answer into JSON. Errors have the API's form: `{"code": "...", "message": "..."}`.

use std::sync::Arc;

use axum::extract::{Query, State as AxumState};
use axum::http::StatusCode;
use plaza_ledger::contract::MerchantStatus;
use plaza_ledger::geo::{degrees_text, parse_radius_m, Point};
use plaza_ledger::nearby::{self, Accepts, CardFacts, CouponFacts, Listed, QueryError};
use plaza_ledger::record::{CardId, MerchantProfile};
use plaza_ledger::{Hash, PublicKey};
use serde_json::{json, Value};

use crate::json::{cents, ProfileJson};
use crate::Shared;

/// Query parameters of `GET /v1/merchants`.
pub const MERCHANT_PARAMETERS: &[&str] = &["near", "within_m", "category", "district", "accepts_coupon", "accepts_points_of", "accepts_card"];
/// How the distances are computed, said in every answer that has them.
pub const DISTANCE_NOTE: &str = "great-circle metres on the mean Earth sphere, computed in integers (docs/NODE.md, Nearby members)";

/// A refused query (the API's one error form): 400 for a malformed one, 404 for one naming
/// what the ledger lacks.
pub type NearbyError = crate::api::ApiError;

impl From<QueryError> for NearbyError {
    fn from(e: QueryError) -> NearbyError {
        let status = if e.is_not_found() { StatusCode::NOT_FOUND } else { StatusCode::BAD_REQUEST };
        NearbyError { status, code: e.code(), message: e.to_string() }
    }
}

type NearbyResult = Result<axum::Json<Value>, NearbyError>;

/// The parsed parameters of `GET /v1/merchants`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MerchantParams {
    pub query: nearby::Query,
}

/// Parses the query string's pairs: each parameter at most once, no unknown ones, at most one
/// `accepts_*`.
pub fn parse_params(pairs: &[(String, String)]) -> Result<MerchantParams, NearbyError> {
    let mut q = nearby::Query::default();
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in pairs {
        let Some(known) = MERCHANT_PARAMETERS.iter().find(|p| **p == name.as_str()) else {
            return Err(NearbyError::bad(
                "unknown-parameter",
                format!("unknown query parameter {name:?}; /v1/merchants takes {}", MERCHANT_PARAMETERS.join(", ")),
            ));
        };
        if seen.contains(known) {
            return Err(NearbyError::bad("repeated-parameter", format!("query parameter {name} is given more than once")));
        }
        seen.push(known);
        let accepts = |a: Accepts, q: &mut nearby::Query| -> Result<(), NearbyError> {
            if q.accepts.is_some() {
                return Err(NearbyError::bad("conflicting-parameters", "give at most one of accepts_coupon, accepts_points_of and accepts_card"));
            }
            q.accepts = Some(a);
            Ok(())
        };
        match *known {
            "near" => q.near = Some(Point::parse(value).map_err(QueryError::from)?),
            "within_m" => q.within_m = Some(parse_radius_m(value).map_err(QueryError::from)?),
            "category" => q.category = Some(value.clone()),
            "district" => q.district = Some(value.clone()),
            "accepts_coupon" => {
                let h = Hash::from_hex(value).map_err(|e| NearbyError::bad("bad-hash", format!("accepts_coupon (a coupon code hash): {e}")))?;
                accepts(Accepts::Coupon(h), &mut q)?;
            }
            "accepts_points_of" => {
                let k = PublicKey::from_hex(value).map_err(|e| NearbyError::bad("bad-key", format!("accepts_points_of (the issuing merchant's key): {e}")))?;
                accepts(Accepts::PointsOf(k), &mut q)?;
            }
            _ => {
                let c = CardId::from_hex(value).map_err(|e| NearbyError::bad("bad-card", format!("accepts_card: {e}")))?;
                accepts(Accepts::Card(c), &mut q)?;
            }
        }
    }
    // Any filter lists only active members; the plain listing shows every member and status.
    q.active_only = !pairs.is_empty();
    Ok(MerchantParams { query: q })
}

/// A merchant as the nearby answers show it: its profile, status and (with a point) distance.
pub fn merchant_json(profile: &MerchantProfile, status: MerchantStatus, distance_m: Option<u64>) -> Value {
    let mut v = serde_json::to_value(ProfileJson::from_profile(profile)).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("status".into(), json!(status.name()));
        o.insert("latitude".into(), json!(degrees_text(profile.latitude_e6)));
        o.insert("longitude".into(), json!(degrees_text(profile.longitude_e6)));
        if let Some(d) = distance_m {
            o.insert("distance_m".into(), json!(d));
        }
    }
    v
}

fn listed_json(l: &Listed<'_>) -> Value {
    merchant_json(l.profile, l.status, l.distance_m)
}

fn coupon_json(c: &CouponFacts) -> Value {
    json!({
        "code_hash": c.code_hash.to_hex(),
        "batch": c.batch.to_hex(),
        "issuer": c.issuer.to_hex(),
        "expires_at_ms": c.expires_at_ms,
        "usable": c.unusable.is_none(),
        "unusable_because": c.unusable.map(|u| u.name()),
    })
}

fn card_json(c: &CardFacts, point_value_cents: u64) -> Value {
    json!({
        "card": c.card.to_hex(),
        "home": c.home.to_hex(),
        "spendable": c.spendable,
        "debt": c.debt,
        "redeemable": c.redeemable,
        "spendable_by_issuer": c.spendable_by_issuer.iter().map(|(k, p)| json!({
            "issuer": k.to_hex(),
            "points": p,
            "value_elsewhere": cents(u128::from(*p) * u128::from(point_value_cents)),
        })).collect::<Vec<_>>(),
    })
}

/// `GET /v1/merchants[?near=LAT,LON[&within_m=M]][&category=…][&district=…][&accepts_…=…]`.
pub async fn merchants(AxumState(shared): AxumState<Arc<Shared>>, Query(pairs): Query<Vec<(String, String)>>) -> NearbyResult {
    let params = parse_params(&pairs)?;
    let now = shared.clock.now_ms();
    let state = shared.state();
    let answer = nearby::find(&state, &params.query, now)?;
    let mut o = serde_json::Map::new();
    o.insert("merchants".into(), Value::Array(answer.merchants.iter().map(listed_json).collect()));
    if let Some(p) = params.query.near {
        o.insert(
            "near".into(),
            json!({"latitude": degrees_text(p.latitude_e6()), "longitude": degrees_text(p.longitude_e6()), "latitude_e6": p.latitude_e6(), "longitude_e6": p.longitude_e6()}),
        );
        o.insert("within_m".into(), json!(params.query.within_m));
        o.insert("distance".into(), json!(DISTANCE_NOTE));
    }
    if let Some(c) = &answer.coupon {
        o.insert("coupon".into(), coupon_json(c));
    }
    let point_value = state.policy_at(now).point_value.cents();
    if let Some(c) = &answer.card {
        o.insert("card".into(), card_json(c, point_value));
    }
    if let Some(Accepts::PointsOf(k)) = &params.query.accepts {
        o.insert("points_of".into(), json!({"issuer": k.to_hex(), "point_value": cents(u128::from(point_value))}));
    }
    Ok(axum::Json(Value::Object(o)))
}

/// `GET /v1/districts`: every district (genesis names, plus any code a member uses) with its
/// members, sorted by code and then key.
pub async fn districts(AxumState(shared): AxumState<Arc<Shared>>) -> NearbyResult {
    let genesis = shared.store.genesis();
    let state = shared.state();
    let list: Vec<Value> = nearby::districts(&genesis.districts, &state)
        .iter()
        .map(|d| {
            json!({
                "code": d.code,
                "name": d.name,
                "active_members": d.members.iter().filter(|(_, s)| *s == MerchantStatus::Active).count(),
                "members": d.members.iter().map(|(p, s)| merchant_json(p, *s, None)).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(axum::Json(json!({"districts": list})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }
    fn code(list: &[(&str, &str)]) -> &'static str {
        parse_params(&pairs(list)).map(|_| ()).err().map_or("ok", |e| e.code)
    }

    #[test]
    fn parameters_are_parsed_and_bad_ones_named() {
        let p = parse_params(&pairs(&[("near", "31.2239,121.446"), ("within_m", "2000"), ("category", "restaurant")])).map_err(|e| e.message).expect("parses");
        assert_eq!(p.query.near, Point::new(31_223_900, 121_446_000).ok());
        assert_eq!(p.query.within_m, Some(2000));
        assert!(p.query.active_only);
        assert!(!parse_params(&[]).map_err(|e| e.message).expect("empty").query.active_only);
        assert_eq!(code(&[("near", "31.2,121.4"), ("within_m", "2km")]), "bad-radius");
        assert_eq!(code(&[("near", "31.2,121.4"), ("within_m", "0")]), "zero-radius");
        assert_eq!(code(&[("near", "31.2,121.4"), ("within_m", "30000000")]), "radius-too-large");
        assert_eq!(code(&[("near", "91,121.4")]), "latitude-out-of-range");
        assert_eq!(code(&[("near", "31,181")]), "longitude-out-of-range");
        assert_eq!(code(&[("near", "31.2")]), "bad-point");
        assert_eq!(code(&[("radius", "5")]), "unknown-parameter");
        assert_eq!(code(&[("near", "1,1"), ("near", "2,2")]), "repeated-parameter");
        assert_eq!(code(&[("accepts_coupon", "zz")]), "bad-hash");
        assert_eq!(code(&[("accepts_points_of", "00")]), "bad-key");
        assert_eq!(code(&[("accepts_card", "abc")]), "bad-card");
        let h = "11".repeat(32);
        assert_eq!(code(&[("accepts_coupon", &h), ("accepts_card", &"22".repeat(16))]), "conflicting-parameters");
    }
}
