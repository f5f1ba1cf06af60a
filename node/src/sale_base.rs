//! The commission base a sale may declare (SETTLEMENT decisions 6 and 7): the gross less the
//! value others pay for — issuer-funded coupons of other merchants and points of other
//! merchants redeemed. The contract rejects a higher base (receipts 47 `base-too-high` and 57
//! `base-includes-points`); the API and `plaza submit sale` use this limit when no base is given.
//!
//! `POST /v1/sales/base` answers it for a sale not yet signed (read-only, no token): a client
//! that signs its own records asks here first. Coupon codes are given as hashes, so no secret
//! leaves the till for this question.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use plaza_ledger::contract::{SaleBaseLimit, State};
use plaza_ledger::money::Amount;
use plaza_ledger::record::{CardId, CodeSecret};
use plaza_ledger::{Hash, PublicKey};
use serde::Deserialize;
use serde_json::json;

use crate::json::PayloadJson;
use crate::Shared;

/// The body of `POST /v1/sales/base` for a sale payload (JSON, as `PayloadJson` takes it) that
/// names no base: coupon secrets become their hashes, absent fields their defaults. `None` for
/// any other payload, or a sale that already names its base. Used by the clients that sign
/// their own records (`plaza submit`, the demo).
pub fn base_question(payload: &serde_json::Value, seller: &PublicKey, now_ms: u64) -> Result<Option<serde_json::Value>, String> {
    use serde_json::Value;
    if payload.get("kind").and_then(Value::as_str) != Some("sale") || !payload.get("base").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let mut hashes = Vec::new();
    for code in payload.get("coupon_codes").and_then(Value::as_array).into_iter().flatten() {
        let secret = code.as_str().ok_or("a coupon code is not a string")?;
        hashes.push(CodeSecret::new(secret.as_bytes())?.hash().to_hex());
    }
    let present = |field: &str, default: Value| payload.get(field).filter(|v| !v.is_null()).cloned().unwrap_or(default);
    Ok(Some(json!({
        "seller": seller.to_hex(), "gross": payload["gross"], "card": present("card", Value::Null),
        "coupon_code_hashes": hashes, "points_redeemed": present("points_redeemed", json!(0)), "at_ms": now_ms,
    })))
}

/// Coupons in one question (a sale carries at most this many anyway).
pub const COUPONS_MAX: usize = 64;

/// Sets a sale payload's missing base to the limit at `now_ms`. A sale the rules will reject
/// anyway (unknown coupon, overdrawn points …) keeps the gross: its receipt says why.
pub fn fill_default_base(payload: &mut PayloadJson, state: &State, seller: &PublicKey, now_ms: u64) {
    let PayloadJson::Sale { gross, base, card, coupon_codes, points_redeemed, .. } = payload else { return };
    if base.is_some() {
        return;
    }
    let Ok(gross_amount) = Amount::parse(gross) else { return };
    let Ok(card) = card.as_deref().map(CardId::from_hex).transpose() else { return };
    let Ok(hashes) = coupon_codes.iter().map(|c| CodeSecret::new(c.as_bytes()).map(|s| s.hash())).collect::<Result<Vec<Hash>, _>>() else {
        return;
    };
    if let Ok(limit) = state.sale_base_limit(seller, now_ms, gross_amount, card.as_ref(), &hashes, *points_redeemed) {
        *base = Some(limit.base.to_string());
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Question {
    /// The selling merchant (hex); defaults to this node's merchant.
    #[serde(default)]
    seller: Option<String>,
    gross: String,
    #[serde(default)]
    card: Option<String>,
    /// blake3 hashes (hex) of the coupon codes presented.
    #[serde(default)]
    coupon_code_hashes: Vec<String>,
    #[serde(default)]
    points_redeemed: u64,
    /// The sale's created-at time; defaults to the node's clock.
    #[serde(default)]
    at_ms: Option<u64>,
}

fn bad(code: &'static str, message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"code": code, "message": message.into()}))).into_response()
}

/// `POST /v1/sales/base`.
pub async fn handler(AxumState(shared): AxumState<Arc<Shared>>, body: Bytes) -> Response {
    let q: Question = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => return bad("bad-json", format!("request body: {e}")),
    };
    let seller = match &q.seller {
        Some(k) => match PublicKey::from_hex(k.strip_prefix("merchant:").unwrap_or(k)) {
            Ok(k) => k,
            Err(e) => return bad("bad-key", format!("seller: {e}")),
        },
        None => shared.merchant.public(),
    };
    let gross = match Amount::parse(&q.gross) {
        Ok(a) => a,
        Err(e) => return bad("bad-amount", format!("gross: {e}")),
    };
    let card = match q.card.as_deref().map(CardId::from_hex).transpose() {
        Ok(c) => c,
        Err(e) => return bad("bad-card", format!("card: {e}")),
    };
    if q.coupon_code_hashes.len() > COUPONS_MAX {
        return bad("too-many-coupons", format!("at most {COUPONS_MAX} coupons"));
    }
    let mut hashes = Vec::with_capacity(q.coupon_code_hashes.len());
    for h in &q.coupon_code_hashes {
        match Hash::from_hex(h) {
            Ok(h) => hashes.push(h),
            Err(e) => return bad("bad-hash", format!("coupon_code_hashes: {e}")),
        }
    }
    let at_ms = q.at_ms.unwrap_or_else(|| shared.clock.now_ms());
    let answer = shared.state().sale_base_limit(&seller, at_ms, gross, card.as_ref(), &hashes, q.points_redeemed);
    match answer {
        Ok(SaleBaseLimit { base, coupons_funded_by_others, points_funded_by_others }) => axum::Json(json!({
            "gross": gross.to_string(),
            "base": base.to_string(),
            "coupons_funded_by_others": coupons_funded_by_others.to_string(),
            "points_funded_by_others": points_funded_by_others.to_string(),
        }))
        .into_response(),
        Err(code) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"code": code.name(), "message": format!("the sale would be rejected: {}", code.description())})),
        )
            .into_response(),
    }
}
