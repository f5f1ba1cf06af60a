//! The HTTP API (DESIGN §8): JSON, loopback by default; every write needs the node's API
//! token (`Authorization: Bearer <token>`). Errors are `{"code": "...", "message": "..."}`
//! with a 4xx status for a client's mistake; 5xx only for the node's own failures.
//! The OpenAPI description is served at `/openapi.json` (node/openapi.json).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxumState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use plaza_ledger::codec::Decode;
use plaza_ledger::contract::{Statement, StatementSummary};
use plaza_ledger::merkle;
use plaza_ledger::record::{CardId, Party, Payload, Record, RecordBody, RECORD_BYTES_MAX};
use plaza_ledger::{Hash, PublicKey};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::json::{cents, party_json, payload_json, record_json, signed_cents, PayloadJson, PolicyJson, ProfileJson};
use crate::{Admission, Command, Rejection, Shared};

pub const OPENAPI: &str = include_str!("../openapi.json");
/// Records in one submission.
pub const SUBMIT_RECORDS_MAX: usize = 4096;
/// How long `?wait=true` waits for finality.
pub const WAIT_MS_MAX: u64 = 60_000;
/// Blocks in one listing.
pub const BLOCKS_PAGE_MAX: u64 = 100;

type S = AxumState<Arc<Shared>>;

/// A client-facing error.
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.into() }
    }
    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, code: "not-found", message: message.into() }
    }
    fn internal(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal", message: message.into() }
    }
    /// A refused record: the status follows the refusal's kind (429 when the node is full,
    /// so the client may retry; 400 otherwise).
    fn from_rejection(rejection: &Rejection) -> ApiError {
        let status = if rejection.is_retryable() {
            StatusCode::TOO_MANY_REQUESTS
        } else if matches!(rejection, Rejection::ConflictingOrder { .. }) {
            StatusCode::CONFLICT
        } else {
            StatusCode::BAD_REQUEST
        };
        ApiError { status, code: rejection.code(), message: rejection.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"code": self.code, "message": self.message}))).into_response()
    }
}

type ApiResult = Result<axum::Json<Value>, ApiError>;

pub fn router(shared: Arc<Shared>) -> Router {
    let body_max = shared.config.api_body_bytes_max;
    let explorer = crate::explorer::router(shared.clone());
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/v1/status", get(status))
        .route("/v1/records", post(submit))
        .route("/v1/records/{id}", get(record_status))
        .route("/v1/sales/base", post(crate::sale_base::handler))
        .route("/v1/proofs/{id}", get(proof))
        .route("/v1/proofs/state/{table}/{key}", get(state_proof))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/blocks", get(blocks))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/merchants", get(crate::nearby::merchants))
        .route("/v1/districts", get(crate::nearby::districts))
        .route("/v1/merchants/{key}", get(merchant))
        .route("/v1/promoters", get(promoters))
        .route("/v1/cards/{card}", get(card))
        .route("/v1/coupons/{code_hash}", get(coupon))
        .route("/v1/balances", get(balances))
        .route("/v1/balances/{party}", get(balance))
        .route("/v1/statements", get(statements))
        .route("/v1/statements/latest", get(latest_statement))
        .route("/v1/statements/{period}", get(statement))
        .route("/v1/proposals/{id}", get(proposal))
        .route("/v1/policy", get(policy))
        .route("/v1/testnet/clock", post(advance_clock))
        .route("/v1/admin/backup", post(backup))
        .fallback(|| async { ApiError::not_found("no such endpoint; see /openapi.json") })
        .layer(DefaultBodyLimit::max(body_max))
        .with_state(shared)
        .merge(explorer)
        .layer(axum::middleware::map_response(crate::api_server::json_error_form))
}

fn check_token(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    match given {
        None => Err(ApiError { status: StatusCode::UNAUTHORIZED, code: "unauthorized", message: "this endpoint needs the node's API token (Authorization: Bearer <token>)".into() }),
        Some(t) if constant_time_eq(t.trim().as_bytes(), shared.api_token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError { status: StatusCode::FORBIDDEN, code: "forbidden", message: "wrong API token".into() }),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hash(what: &str, text: &str) -> Result<Hash, ApiError> {
    Hash::from_hex(text).map_err(|e| ApiError::bad("bad-hash", format!("{what}: {e}")))
}
fn parse_key(text: &str) -> Result<PublicKey, ApiError> {
    PublicKey::from_hex(text).map_err(|e| ApiError::bad("bad-key", format!("merchant key: {e}")))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(AxumState(shared): S) -> impl IntoResponse {
    // The gauges that depend on the clock or on peers' reports are brought up to date here.
    let height = *shared.tip.borrow();
    let lag = shared.status().best_peer_height.saturating_sub(height);
    shared.metrics.sync_lag_blocks.set(i64::try_from(lag).unwrap_or(i64::MAX));
    shared.metrics.last_block_age_seconds.set(last_block_age_ms(&shared) as f64 / 1000.0);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], shared.metrics.render())
}

/// The node's build version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Milliseconds from the last finalized block's time to the node's clock (0 if in the future).
fn last_block_age_ms(shared: &Shared) -> u64 {
    let last = shared.state().last_block_time_ms();
    shared.clock.now_ms().saturating_sub(last)
}

fn readiness(shared: &Shared) -> crate::Readiness {
    let height = *shared.tip.borrow();
    let quorum = shared.state().validator_set().quorum();
    shared.status().readiness(height, quorum)
}

/// The process is up and its API answers.
async fn healthz() -> ApiResult {
    Ok(axum::Json(json!({"status": "ok", "version": VERSION})))
}

/// Ready to serve: connected to a quorum (a validator) or to a member (any other node), and
/// synced; otherwise 503 with the reason.
async fn readyz(AxumState(shared): S) -> Response {
    let r = readiness(&shared);
    let height = *shared.tip.borrow();
    match r.reason {
        None => axum::Json(json!({"status": "ready", "height": height, "sync": r.sync_state, "lag_blocks": r.lag_blocks, "validators_reachable": r.validators_reachable, "quorum": r.quorum})).into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"code": "not-ready", "message": reason, "height": height, "sync": r.sync_state, "lag_blocks": r.lag_blocks, "validators_reachable": r.validators_reachable, "quorum": r.quorum})),
        )
            .into_response(),
    }
}

async fn status(AxumState(shared): S) -> ApiResult {
    let status = shared.status().clone();
    let height = *shared.tip.borrow();
    let readiness = readiness(&shared);
    let state = shared.state();
    let (period, period_start, period_end) = state.period();
    let value = json!({
        "version": VERSION,
        "alliance_id": shared.alliance.to_hex(),
        "utc_offset_minutes": state.utc_offset_minutes(),
        "merchant": shared.merchant.public().to_hex(),
        "validator": status.validator,
        "peer_id": status.peer_id,
        "listen": status.listen,
        "peers": status.peers,
        "peer_count": status.peers.len(),
        "validator_peers": status.validator_peers,
        "sync": {
            "state": readiness.sync_state,
            "lag_blocks": readiness.lag_blocks,
            "best_peer_height": status.best_peer_height,
            "ready": readiness.reason.is_none(),
            "not_ready_reason": readiness.reason,
        },
        "height": height,
        "view": status.view,
        "last_block_time_ms": state.last_block_time_ms(),
        "last_block_age_ms": shared.clock.now_ms().saturating_sub(state.last_block_time_ms()),
        "state_root": state.state_root().to_hex(),
        "period": {"number": period, "start_ms": period_start, "end_ms": period_end},
        "validators": state.validator_set().validators().iter().map(|v| v.key.to_hex()).collect::<Vec<_>>(),
        "mempool_records": shared.mempool().len(),
        "clock_ms": shared.clock.now_ms(),
        "clock_offset_ms": shared.clock.offset_ms(),
    });
    Ok(axum::Json(value))
}

#[derive(Deserialize, Default)]
struct SubmitQuery {
    #[serde(default)]
    wait: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitBody {
    /// One client-signed record, canonical bytes in hex.
    #[serde(default)]
    record: Option<String>,
    /// Several client-signed records.
    #[serde(default)]
    records: Option<Vec<String>>,
    /// A payload for the node to sign with its own merchant key.
    #[serde(default)]
    payload: Option<PayloadJson>,
}

impl From<crate::auth::Refusal> for ApiError {
    fn from(r: crate::auth::Refusal) -> ApiError {
        ApiError { status: r.status, code: r.code, message: r.message }
    }
}

async fn submit(AxumState(shared): S, headers: HeaderMap, Query(q): Query<SubmitQuery>, body: Bytes) -> ApiResult {
    if shared.config.observer {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "observer-read-only",
            message: "this node is a read-only observer: it accepts no records; submit to a member's node".into(),
        });
    }
    // Client-signed records need a guest token (or none, if open); node-signed ones the node's.
    let authority = crate::auth::submit_authority(&shared, &headers)?;
    let mut body: SubmitBody = serde_json::from_slice(&body).map_err(|e| ApiError::bad("bad-json", format!("request body: {e}")))?;
    let mut hexes = Vec::new();
    let single = body.records.is_none();
    if let Some(r) = body.record {
        hexes.push(r);
    }
    if let Some(rs) = body.records {
        hexes.extend(rs);
    }
    if hexes.len() > SUBMIT_RECORDS_MAX {
        return Err(ApiError::bad("too-many-records", format!("at most {SUBMIT_RECORDS_MAX} records per request")));
    }
    let mut records = Vec::with_capacity(hexes.len() + 1);
    for (i, h) in hexes.iter().enumerate() {
        let bytes = hex::decode(h.trim()).map_err(|e| ApiError::bad("bad-hex", format!("record {i}: not hex: {e}")))?;
        let record = Record::from_bytes(&bytes, RECORD_BYTES_MAX)
            .map_err(|e| ApiError::bad("malformed-record", format!("record {i}: {e}")))?;
        records.push(record);
    }
    // A node-signed sale without a base gets the rules' base now, which may differ from what
    // the original got: a retry of it is compared without the base.
    let retry_ignores_base = matches!(&body.payload, Some(PayloadJson::Sale { base: None, .. }));
    if let Some(payload) = body.payload.as_mut() {
        crate::auth::require_node(authority)?;
        // Without a base, a sale's base is the largest the rules allow (decision 6, 7).
        crate::sale_base::fill_default_base(payload, &shared.state(), &shared.merchant.public(), shared.clock.now_ms());
    }
    let body_had_payload = body.payload.is_some();
    if let Some(payload) = body.payload {
        let payload = payload.to_payload().map_err(|e| ApiError::bad("bad-payload", e))?;
        let body = RecordBody { alliance: shared.alliance, signer: shared.merchant.public(), created_at_ms: shared.clock.now_ms(), payload };
        records.push(Record::sign(body, &shared.merchant));
    }
    if records.is_empty() {
        return Err(ApiError::bad("empty", "give `record`, `records` or `payload`"));
    }
    // Stateless checks and signatures, here in the handler (in parallel with the driver); a
    // batch's signatures are checked together, at about half the cost of one by one.
    let alliance = shared.alliance;
    let checked = tokio::task::spawn_blocking(move || {
        let results: Vec<Result<(), Rejection>> =
            Record::check_all(&records, &alliance).into_iter().map(|r| r.map_err(|e| Rejection::Invalid(e.to_string()))).collect();
        (records, results)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (records, mut results) = checked;
    // Records from merchants the alliance does not know never enter the mempool, single or
    // batched. A guest's records are counted per (member) signer.
    let mut counts = std::collections::BTreeMap::new();
    {
        let state = shared.state();
        for (record, result) in records.iter().zip(results.iter_mut()) {
            if state.merchant(record.signer()).is_none() {
                if result.is_ok() {
                    *result = Err(Rejection::NotAMember(*record.signer()));
                }
            } else {
                *counts.entry(*record.signer()).or_insert(0u64) += 1;
            }
        }
    }
    // POS retries: a sale whose order id this signer already used answers with the original
    // sale (the same sale) or is refused as `conflicting-order` (a different one).
    let node_signed_index = body_had_payload.then(|| records.len() - 1);
    let mut originals: Vec<Option<Hash>> = vec![None; records.len()];
    for (i, (record, result)) in records.iter().zip(results.iter_mut()).enumerate() {
        if result.is_err() {
            continue;
        }
        match order_match(&shared, record, retry_ignores_base && node_signed_index == Some(i))? {
            OrderMatch::New => {}
            OrderMatch::Same(original) => originals[i] = Some(original),
            OrderMatch::Conflict { order, original } => *result = Err(Rejection::ConflictingOrder { order, original }),
        }
    }
    if authority != crate::auth::Authority::Node {
        shared.submit_limits.take(&counts, shared.config.api_guest_records_per_signer_per_minute, std::time::Instant::now())?;
    }
    if single && records.len() == 1
        && let Err(rejection) = &results[0]
    {
        return Err(ApiError::from_rejection(rejection));
    }
    let mut admissions: Vec<Option<Admission>> = results
        .iter()
        .zip(&originals)
        .map(|(r, original)| match (r, original) {
            (Err(e), _) => Some(Admission::Refused(e.clone())),
            (Ok(()), Some(_)) => Some(Admission::Final),
            (Ok(()), None) => None,
        })
        .collect();
    let to_submit: Vec<Record> =
        records.iter().zip(&results).zip(&originals).filter(|((_, r), o)| r.is_ok() && o.is_none()).map(|((rec, _), _)| rec.clone()).collect();
    if !to_submit.is_empty() {
        let (tx, rx) = oneshot::channel();
        shared
            .commands
            .send(Command::Submit { records: to_submit, reply: tx })
            .await
            .map_err(|_| ApiError::internal("the node is shutting down"))?;
        let answers = rx.await.map_err(|_| ApiError::internal("the node is shutting down"))?;
        let mut it = answers.into_iter();
        for slot in admissions.iter_mut().filter(|a| a.is_none()) {
            *slot = it.next();
        }
    }
    if single
        && let [Some(Admission::Refused(rejection))] = admissions.as_slice()
    {
        return Err(ApiError::from_rejection(rejection));
    }
    if q.wait {
        // Within the request timeout, so the answer arrives before the server gives up.
        let wait_ms = WAIT_MS_MAX.min(shared.config.api_request_timeout_ms.saturating_sub(1_000));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(wait_ms);
        let mut tip = shared.tip.clone();
        loop {
            let all_final = records.iter().zip(&admissions).zip(&originals).all(|((r, a), original)| {
                let id = original.unwrap_or_else(|| r.id());
                matches!(a, Some(Admission::Refused(_))) || matches!(shared.store.record_location(&id), Ok(Some(_)))
            });
            if all_final {
                break;
            }
            if tokio::time::timeout_at(deadline, tip.changed()).await.is_err() {
                break;
            }
        }
    }
    let results: Vec<Value> = records
        .iter()
        .zip(admissions)
        .zip(originals)
        .map(|((r, a), original)| match a {
            Some(Admission::Refused(rejection)) => {
                let mut v = json!({"id": r.id().to_hex(), "status": "refused", "code": rejection.code(), "reason": rejection.to_string()});
                if let Rejection::ConflictingOrder { original, .. } = &rejection {
                    v["original"] = json!(original.to_hex());
                }
                v
            }
            a => {
                // An answer about a record the node already had: the same record resent, or
                // the original sale of a retried order (`original: true`, with its id).
                let id = original.unwrap_or_else(|| r.id());
                let mut v = record_state(&shared, &id).unwrap_or_else(|e| json!({"id": id.to_hex(), "status": "error", "code": e.code, "reason": e.message}));
                let earlier = original.is_some() || matches!(a, Some(Admission::Pending | Admission::Final));
                if let Some(o) = v.as_object_mut() {
                    o.insert("original".into(), json!(earlier));
                    if original.is_some() {
                        o.insert("submitted".into(), json!(r.id().to_hex()));
                    }
                }
                v
            }
        })
        .collect();
    if single && results.len() == 1 {
        return Ok(axum::Json(results.into_iter().next().unwrap_or(Value::Null)));
    }
    Ok(axum::Json(json!({"results": results})))
}

/// What a submitted record's order id already is, for its signer.
enum OrderMatch {
    /// Not a sale, or an order id not used yet (or this very record).
    New,
    /// The same sale as the original record, final or pending.
    Same(Hash),
    /// A different sale under the same order id.
    Conflict { order: String, original: Hash },
}

/// Whether two sale payloads are the same sale (the base left out when `ignore_base`).
fn same_sale(a: &Payload, b: &Payload, ignore_base: bool) -> bool {
    match (a, b) {
        (
            Payload::Sale { order, gross, base, card, referral_code, coupon_codes, points_redeemed },
            Payload::Sale { order: o2, gross: g2, base: b2, card: c2, referral_code: r2, coupon_codes: cc2, points_redeemed: p2 },
        ) => order == o2 && gross == g2 && (ignore_base || base == b2) && card == c2 && referral_code == r2 && coupon_codes == cc2 && points_redeemed == p2,
        _ => false,
    }
}

/// Looks for an earlier sale with this record's order id by the same signer: final (in the
/// state) or pending (in the mempool).
fn order_match(shared: &Shared, record: &Record, ignore_base: bool) -> Result<OrderMatch, ApiError> {
    let Payload::Sale { order, .. } = record.payload() else { return Ok(OrderMatch::New) };
    let signer = *record.signer();
    let id = record.id();
    let verdict = |original: &Record| {
        if same_sale(original.payload(), record.payload(), ignore_base) {
            OrderMatch::Same(original.id())
        } else {
            OrderMatch::Conflict { order: order.clone(), original: original.id() }
        }
    };
    let final_original = shared.state().sales_by_order(order).into_iter().find(|s| s.seller == signer).map(|s| s.record);
    if let Some(original_id) = final_original {
        if original_id == id {
            return Ok(OrderMatch::New);
        }
        let location = shared.store.record_location(&original_id).map_err(|e| ApiError::internal(e.to_string()))?;
        let block = match location {
            Some(l) => shared.store.block(l.height).map_err(|e| ApiError::internal(e.to_string()))?,
            None => None,
        };
        let original = block.and_then(|b| b.block.records.into_iter().find(|r| r.id() == original_id));
        return Ok(match original {
            Some(original) => verdict(&original),
            None => OrderMatch::Conflict { order: order.clone(), original: original_id },
        });
    }
    let mempool = shared.mempool();
    Ok(mempool.sale_by_order(&signer, order, &id).map_or(OrderMatch::New, verdict))
}

/// A record's status: final (height, index, receipt), pending (in the mempool), or unknown.
fn record_state(shared: &Shared, id: &Hash) -> Result<Value, ApiError> {
    if let Some(location) = shared.store.record_location(id).map_err(|e| ApiError::internal(e.to_string()))? {
        let receipt = shared.store.receipt(id).map_err(|e| ApiError::internal(e.to_string()))?;
        let receipt = receipt.map(|r| {
            json!({
                "code": r.code,
                "name": r.code().map_or("unknown", |c| c.name()),
                "accepted": r.is_accepted(),
                "description": r.code().map_or("", |c| c.description()),
            })
        });
        return Ok(json!({"id": id.to_hex(), "status": "final", "height": location.height, "index": location.index, "receipt": receipt}));
    }
    if shared.mempool().contains(id) {
        return Ok(json!({"id": id.to_hex(), "status": "pending"}));
    }
    Err(ApiError::not_found(format!("record {id} is neither pending here nor in a finalized block")))
}

async fn record_status(AxumState(shared): S, Path(id): Path<String>) -> ApiResult {
    let id = parse_hash("record id", &id)?;
    let mut value = record_state(&shared, &id)?;
    // Include the record itself.
    if let Some(h) = value.get("height").and_then(Value::as_u64)
        && let Ok(Some(block)) = shared.store.block(h)
        && let Some(r) = block.block.records.iter().find(|r| r.id() == id)
        && let Some(object) = value.as_object_mut()
    {
        object.insert("record".into(), record_json(r));
    } else if let Some(r) = shared.mempool().get(&id)
        && let Some(object) = value.as_object_mut()
    {
        object.insert("record".into(), record_json(r));
    }
    Ok(axum::Json(value))
}

async fn proof(AxumState(shared): S, Path(id): Path<String>) -> ApiResult {
    let id = parse_hash("record id", &id)?;
    // The same self-contained proof `plaza proof` writes (docs/FORMAT.md, "Record proof"),
    // as hex, with its main facts alongside; `plaza verify-proof` reads this JSON as it is.
    let proof = plaza_ledger::audit::proof::RecordProof::from_store(&*shared.store, &id)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("record {id} is not in a finalized block")))?;
    let index = proof.record_path.index;
    let leaf = merkle::leaf_hash(id.as_bytes());
    let header = &proof.certified.header;
    let certified = proof.certified.descendants.last().unwrap_or(header);
    Ok(axum::Json(json!({
        "record": id.to_hex(),
        "height": header.height,
        "block": header.id().to_hex(),
        "records_root": header.records_root.to_hex(),
        "index": index,
        "tree_size": proof.record_path.tree_size,
        "path": proof.record_path.path.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
        "certificate_signers": proof.certified.certificate.signers().map(|k| k.to_hex()).collect::<Vec<_>>(),
        "certificate_block": proof.certified.certificate.target.block.to_hex(),
        "certificate_height": certified.height,
        "verified": proof.record_path.verify(&leaf, &header.records_root),
        "proof_version": plaza_ledger::audit::proof::VERSION,
        "proof": hex::encode(plaza_ledger::codec::Encode::to_bytes(&proof)),
        "note": "`proof` is the self-contained proof `plaza proof` writes, in hex; save this JSON and check it offline with `plaza verify-proof FILE`",
    })))
}

/// A state item's proof against the current tip (docs/AUDIT.md, "State proofs"): `{table}`
/// is a kind (`card`, `coupon`, `balance`, … with `{key}` as text) or a table name or tag
/// (with `{key}` the key's encoding in hex).
async fn state_proof(AxumState(shared): S, Path((table, key)): Path<(String, String)>) -> ApiResult {
    use plaza_ledger::audit::state_proof::{parse_state_key, table_name, table_tag, StateProof, VERSION};
    let text = if table_tag(&table).is_some() { format!("{table}/{key}") } else { format!("{table}:{key}") };
    let (tag, key) = parse_state_key(&text).map_err(|e| ApiError::bad("bad-state-key", e))?;
    let item = {
        let state = shared.state();
        state.prove(tag, &key).map_err(|e| ApiError::bad("bad-state-key", format!("not a key of table {}: {e}", table_name(tag))))?
    };
    let item = item.ok_or_else(|| ApiError::not_found(format!("table {} has no entry {text}", table_name(tag))))?;
    let store = shared.store.clone();
    let proof = tokio::task::spawn_blocking(move || StateProof::certify(&*store, item))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(ApiError::internal)?;
    let proven = proof.verify(&proof.certified.own_trust()).map_err(|f| ApiError::internal(f.to_string()))?;
    Ok(axum::Json(json!({
        "table": table_name(tag),
        "key": hex::encode(&proven.key),
        "value": hex::encode(&proven.value),
        "key_text": proven.key_text,
        "value_text": proven.value_text,
        "height": proven.height,
        "block": proven.block.to_hex(),
        "state_root": proof.certified.header.state_root.to_hex(),
        "proof_version": VERSION,
        "proof": hex::encode(plaza_ledger::codec::Encode::to_bytes(&proof)),
        "note": "`proof` is the self-contained state proof `plaza proof --state` writes, in hex; save this JSON and check it offline with `plaza verify-proof FILE`",
    })))
}

/// The signed checkpoint (ledger `audit::tip`): the latest finalized block whose certificate
/// is its own (the tip, unless it is final through a descendant not stored yet), with that
/// certificate and the set that signed it. `plaza verify --against` compares a chain with it.
async fn checkpoint(AxumState(shared): S) -> ApiResult {
    use plaza_ledger::audit::tip::SignedTip;
    let store = &shared.store;
    let tip = store.tip_height().map_err(|e| ApiError::internal(e.to_string()))?;
    let mut height = tip;
    let block = loop {
        if height == 0 || tip - height > plaza_ledger::audit::DESCENDANT_DISTANCE_MAX {
            return Err(ApiError::not_found("no finalized block with its own certificate yet"));
        }
        let block = store.block(height).map_err(|e| ApiError::internal(e.to_string()))?.ok_or_else(|| ApiError::internal(format!("block {height} missing")))?;
        if block.certificate.target.block == block.block.id() {
            break block;
        }
        height -= 1;
    };
    let header = block.block.header;
    // The set of the block's epoch: the genesis set, or the one the last epoch change names.
    let changes = plaza_ledger::audit::proof::epoch_changes_in_store(&**store, &header).map_err(ApiError::internal)?;
    let validators = changes.last().map_or_else(|| store.genesis().validators.clone(), |c| c.end.next_validators.clone());
    if validators.hash() != header.validator_set_hash {
        return Err(ApiError::internal(format!("the validator set {} of block {height} is not the one its epoch changes give", header.validator_set_hash)));
    }
    let id = header.id();
    let signed = SignedTip { header, certificate: block.certificate, validators };
    Ok(axum::Json(json!({
        "alliance": shared.alliance.to_hex(),
        "height": height,
        "block": id.to_hex(),
        "view": signed.header.view,
        "time_ms": signed.header.time_ms,
        "state_root": signed.header.state_root.to_hex(),
        "certificate_signers": signed.certificate.signers().map(|k| k.to_hex()).collect::<Vec<_>>(),
        "checkpoint": hex::encode(plaza_ledger::codec::Encode::to_bytes(&signed)),
        "note": "`checkpoint` is header ‖ certificate ‖ validator set in hex (docs/FORMAT.md, \"Signed checkpoint\"); compare a chain with it: plaza verify --against URL",
    })))
}

fn block_json(fb: &plaza_ledger::block::FinalizedBlock, with_records: bool) -> Value {
    let h = &fb.block.header;
    let mut v = json!({
        "height": h.height,
        "epoch": h.epoch,
        "id": fb.block.id().to_hex(),
        "view": h.view,
        "parent": h.parent.to_hex(),
        "time_ms": h.time_ms,
        "proposer": h.proposer.to_hex(),
        "records_root": h.records_root.to_hex(),
        "receipts_root": h.receipts_root.to_hex(),
        "state_root": h.state_root.to_hex(),
        "validator_set_hash": h.validator_set_hash.to_hex(),
        "next_validator_set_hash": h.next_validator_set_hash.map(|n| n.to_hex()),
        "statement_hash": h.statement_hash.map(|s| s.to_hex()),
        "records": fb.block.records.len(),
        "certificate": {
            "kind": fb.certificate.target.kind.name(),
            "view": fb.certificate.target.view,
            "block": fb.certificate.target.block.to_hex(),
            "signers": fb.certificate.signers().map(|k| k.to_hex()).collect::<Vec<_>>(),
        },
    });
    if with_records && let Some(o) = v.as_object_mut() {
        o.insert("record_list".into(), Value::Array(fb.block.records.iter().map(record_json).collect()));
    }
    v
}

#[derive(Deserialize)]
struct BlocksQuery {
    from: Option<u64>,
    limit: Option<u64>,
}

async fn blocks(AxumState(shared): S, Query(q): Query<BlocksQuery>) -> ApiResult {
    let tip = *shared.tip.borrow();
    let limit = q.limit.unwrap_or(20);
    if !(1..=BLOCKS_PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad("bad-limit", format!("limit {limit} is out of range: 1 to {BLOCKS_PAGE_MAX} blocks per page")));
    }
    let from = q.from.unwrap_or_else(|| tip.saturating_sub(limit - 1).max(1));
    let mut out = Vec::new();
    for h in from.max(1)..from.max(1).saturating_add(limit) {
        match shared.store.block(h).map_err(|e| ApiError::internal(e.to_string()))? {
            Some(b) => out.push(block_json(&b, false)),
            None => break,
        }
    }
    Ok(axum::Json(json!({"tip": tip, "blocks": out})))
}

async fn block(AxumState(shared): S, Path(height): Path<String>) -> ApiResult {
    let fb = if height.len() == 64 {
        let id = parse_hash("block id", &height)?;
        let h = shared.store.height_of_block(&id).map_err(|e| ApiError::internal(e.to_string()))?;
        match h {
            Some(h) => shared.store.block(h).map_err(|e| ApiError::internal(e.to_string()))?,
            None => None,
        }
    } else {
        let h: u64 = height.parse().map_err(|_| ApiError::bad("bad-height", format!("{height:?} is neither a height nor a block id")))?;
        shared.store.block(h).map_err(|e| ApiError::internal(e.to_string()))?
    };
    let fb = fb.ok_or_else(|| ApiError::not_found(format!("no finalized block {height}")))?;
    let receipts = shared.store.receipts_of(&fb).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut v = block_json(&fb, true);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "receipts".into(),
            Value::Array(receipts.iter().map(|r| json!({"record": r.record.to_hex(), "code": r.code, "name": r.code().map_or("unknown", |c| c.name())})).collect()),
        );
    }
    Ok(axum::Json(v))
}

fn merchant_json(p: &plaza_ledger::record::MerchantProfile, status: plaza_ledger::contract::MerchantStatus) -> Value {
    let mut v = serde_json::to_value(ProfileJson::from_profile(p)).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("status".into(), json!(status.name()));
    }
    v
}

async fn merchant(AxumState(shared): S, Path(key): Path<String>) -> ApiResult {
    let key = parse_key(&key)?;
    let state = shared.state();
    let (p, s) = state.merchant(&key).ok_or_else(|| ApiError::not_found(format!("{key} is not a member")))?;
    let mut v = merchant_json(p, s);
    let balance = balance_json(&state.balance(&Party::Merchant(key)));
    if let Some(o) = v.as_object_mut() {
        o.insert("balance".into(), balance);
    }
    Ok(axum::Json(v))
}

async fn promoters(AxumState(shared): S) -> ApiResult {
    let state = shared.state();
    let list: Vec<Value> = state
        .promoters()
        .map(|(id, name, up)| json!({"id": id.as_str(), "name": name, "upstream": up.map(|u| u.as_str())}))
        .collect();
    Ok(axum::Json(json!({"promoters": list})))
}

async fn card(AxumState(shared): S, Path(card): Path<String>) -> ApiResult {
    let card = CardId::from_hex(&card).map_err(|e| ApiError::bad("bad-card", e))?;
    let now = shared.clock.now_ms();
    let state = shared.state();
    let view = state.card(&card, now).ok_or_else(|| ApiError::not_found(format!("no card {card}")))?;
    Ok(axum::Json(json!({
        "card": card.to_hex(),
        "home": view.home.to_hex(),
        "points": view.points,
        "spendable": view.spendable,
        "debt": view.debt,
        "balance": state.points_balance(&card, now),
        "lots": view.lots.iter().map(|l| json!({"id": l.id, "issuer": l.issuer.to_hex(), "points": l.points, "spendable_at_ms": l.spendable_at_ms, "expires_at_ms": l.expires_at_ms})).collect::<Vec<_>>(),
    })))
}

async fn coupon(AxumState(shared): S, Path(code_hash): Path<String>) -> ApiResult {
    let h = parse_hash("coupon code hash", &code_hash)?;
    let state = shared.state();
    let c = state.coupon(&h).ok_or_else(|| ApiError::not_found(format!("no coupon with code hash {h}")))?;
    Ok(axum::Json(json!({
        "code_hash": h.to_hex(),
        "issuer": c.issuer.to_hex(),
        "batch": c.batch.to_hex(),
        "expires_at_ms": c.expires_at_ms,
        "redeemed_by": c.redeemed_by.map(|(m, order)| json!({"merchant": m.to_hex(), "order": order})),
    })))
}

fn balance_json(b: &plaza_ledger::contract::BalanceView) -> Value {
    json!({
        "pending": cents(b.pending),
        "locked": cents(b.locked),
        "on_hold": cents(b.on_hold),
        "paid": cents(b.paid),
        "pending_payable": cents(b.pending_payable),
        "locked_payable": cents(b.locked_payable),
        "paid_out": cents(b.paid_out),
        "carried_payable": cents(b.carried_payable),
        "carried_receivable": cents(b.carried_receivable),
    })
}

async fn balances(AxumState(shared): S) -> ApiResult {
    let state = shared.state();
    let list: Vec<Value> = state
        .parties()
        .map(|p| {
            let mut v = balance_json(&state.balance(p));
            if let Some(o) = v.as_object_mut() {
                o.insert("party".into(), json!(party_json(p)));
            }
            v
        })
        .collect();
    Ok(axum::Json(json!({"balances": list})))
}

async fn balance(AxumState(shared): S, Path(party): Path<String>) -> ApiResult {
    let party = if party.len() == 64 {
        Party::Merchant(parse_key(&party)?)
    } else {
        crate::json::parse_party(&party).map_err(|e| ApiError::bad("bad-party", e))?
    };
    let state = shared.state();
    let mut v = balance_json(&state.balance(&party));
    if let Some(o) = v.as_object_mut() {
        o.insert("party".into(), json!(party_json(&party)));
        o.insert("on_hold_flag".into(), json!(state.is_on_hold(&party)));
    }
    Ok(axum::Json(v))
}

fn summary_json(period: u64, s: &StatementSummary) -> Value {
    json!({
        "period": period,
        "hash": s.hash.to_hex(),
        "start_ms": s.start_ms,
        "end_ms": s.end_ms,
        "nets": s.nets.iter().map(|(p, n)| json!({"party": party_json(p), "net": signed_cents(*n)})).collect::<Vec<_>>(),
        "payment_plan": s.obligations.iter().map(|o| json!({"payer": party_json(&o.payer), "payee": party_json(&o.payee), "amount": cents(o.amount), "outstanding": cents(o.outstanding)})).collect::<Vec<_>>(),
    })
}

pub fn statement_json(s: &Statement) -> Value {
    json!({
        "period": s.period,
        "hash": s.hash().to_hex(),
        "start_ms": s.start_ms,
        "end_ms": s.end_ms,
        "lines": s.lines.iter().map(|l| json!({"debtor": party_json(&l.debtor), "creditor": party_json(&l.creditor), "kind": l.kind.name(), "amount": cents(l.amount), "sources": l.sources.iter().map(|h| h.to_hex()).collect::<Vec<_>>()})).collect::<Vec<_>>(),
        "nets": s.nets.iter().map(|(p, n)| json!({"party": party_json(p), "net": signed_cents(*n)})).collect::<Vec<_>>(),
        "bilateral": s.bilateral.iter().map(|b| json!({"a": party_json(&b.a), "b": party_json(&b.b), "net": signed_cents(b.net)})).collect::<Vec<_>>(),
        "payment_plan": s.transfers.iter().map(|t| json!({"payer": party_json(&t.payer), "payee": party_json(&t.payee), "amount": cents(t.amount)})).collect::<Vec<_>>(),
        "rolled_over": s.rolled_over.iter().map(|t| json!({"payer": party_json(&t.payer), "payee": party_json(&t.payee), "amount": cents(t.amount), "reason": if matches!(t.payer, Party::Promoter(_)) { "promoter-debt" } else { "below-min-payout" }})).collect::<Vec<_>>(),
        "text": s.render(),
    })
}

async fn statements(AxumState(shared): S) -> ApiResult {
    let state = shared.state();
    let mut list = Vec::new();
    let mut period = 0;
    while let Some(s) = state.statement(period) {
        list.push(summary_json(period, s));
        period += 1;
    }
    let (open, start, end) = state.period();
    Ok(axum::Json(json!({"statements": list, "open_period": {"number": open, "start_ms": start, "end_ms": end}})))
}

fn full_statement(shared: &Shared, period: u64) -> Result<Value, ApiError> {
    let bytes = shared
        .store
        .statement(period)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no statement for period {period} yet")))?;
    let s = Statement::from_bytes(&bytes, plaza_ledger::contract::STATE_BYTES_MAX)
        .map_err(|e| ApiError::internal(format!("stored statement: {e}")))?;
    let mut v = statement_json(&s);
    let state = shared.state();
    if let (Some(summary), Some(o)) = (state.statement(period), v.as_object_mut()) {
        o.insert(
            "outstanding".into(),
            Value::Array(summary.obligations.iter().map(|ob| json!({"payer": party_json(&ob.payer), "payee": party_json(&ob.payee), "outstanding": cents(ob.outstanding)})).collect()),
        );
    }
    Ok(v)
}

async fn statement(AxumState(shared): S, Path(period): Path<String>) -> ApiResult {
    let period: u64 = period.parse().map_err(|_| ApiError::bad("bad-period", format!("{period:?} is not a period number")))?;
    Ok(axum::Json(full_statement(&shared, period)?))
}

async fn latest_statement(AxumState(shared): S) -> ApiResult {
    let period = shared.state().latest_statement().map(|(p, _)| p).ok_or_else(|| ApiError::not_found("no statement yet"))?;
    Ok(axum::Json(full_statement(&shared, period)?))
}

async fn proposal(AxumState(shared): S, Path(id): Path<String>) -> ApiResult {
    let id = parse_hash("proposal id", &id)?;
    let state = shared.state();
    let (action, proposer, votes, status) = state.proposal(&id).ok_or_else(|| ApiError::not_found(format!("no proposal {id}")))?;
    let payload = payload_json(&plaza_ledger::record::Payload::Propose { action: action.clone() });
    Ok(axum::Json(json!({
        "id": id.to_hex(),
        "proposer": proposer.to_hex(),
        "action": payload.get("action").cloned().unwrap_or(Value::Null),
        "votes": votes.iter().map(|(k, a)| json!({"merchant": k.to_hex(), "approve": a})).collect::<Vec<_>>(),
        "status": status.name(),
    })))
}

async fn policy(AxumState(shared): S) -> ApiResult {
    let now = shared.clock.now_ms();
    let state = shared.state();
    Ok(axum::Json(json!({
        "in_force": PolicyJson::from_policy(state.policy_at(now)),
        "versions": state.policies().iter().map(PolicyJson::from_policy).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    advance_ms: i64,
}

async fn advance_clock(AxumState(shared): S, headers: HeaderMap, body: Bytes) -> ApiResult {
    check_token(&shared, &headers)?;
    if !shared.config.testnet_clock_api {
        return Err(ApiError { status: StatusCode::FORBIDDEN, code: "testnet-only", message: "the clock API is enabled only on testnet nodes (testnet_clock_api)".into() });
    }
    let body: ClockBody = serde_json::from_slice(&body).map_err(|e| ApiError::bad("bad-json", format!("request body: {e}")))?;
    let offset = shared.clock.advance_persisted(body.advance_ms).map_err(|e| match e {
        crate::ClockError::Write(message) => ApiError::internal(message),
        refused => ApiError::bad("bad-clock", refused.to_string()),
    })?;
    Ok(axum::Json(json!({"clock_offset_ms": offset, "clock_ms": shared.clock.now_ms()})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    /// Where to write the store's checkpoint: an absolute path that does not exist yet.
    dir: String,
}

/// A consistent copy of the running node's store (a RocksDB checkpoint) in `dir`; `plaza
/// backup` adds the home's other files around it. The node's token only.
async fn backup(AxumState(shared): S, headers: HeaderMap, body: Bytes) -> ApiResult {
    check_token(&shared, &headers)?;
    let body: BackupBody = serde_json::from_slice(&body).map_err(|e| ApiError::bad("bad-json", format!("request body: {e}")))?;
    let dir = std::path::PathBuf::from(&body.dir);
    if !dir.is_absolute() {
        return Err(ApiError::bad("bad-backup-dir", format!("{:?} is not an absolute path", body.dir)));
    }
    if std::fs::symlink_metadata(&dir).is_ok() {
        return Err(ApiError::bad("bad-backup-dir", format!("{} exists already; give a new directory", dir.display())));
    }
    if !dir.parent().is_some_and(std::path::Path::is_dir) {
        return Err(ApiError::bad("bad-backup-dir", format!("the parent directory of {} does not exist", dir.display())));
    }
    let store = shared.store.clone();
    let target = dir.clone();
    let height = tokio::task::spawn_blocking(move || -> Result<u64, String> {
        store.checkpoint(&target).map_err(|e| e.to_string())?;
        // What the copy holds (the node may have finalized more since).
        let copy = plaza_ledger::store::Store::open(&target).map_err(|e| e.to_string())?;
        copy.tip_height().map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("backup into {}: {e}", dir.display())))?;
    Ok(axum::Json(json!({"dir": dir.display().to_string(), "height": height})))
}
