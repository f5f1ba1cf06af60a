//! The node API's answers the testnets read, as types: a field that is missing or of the
//! wrong type is an error naming the endpoint, never a silent default.

use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use plaza_node::json::PolicyJson;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::Error;

/// `GET /v1/status`.
#[derive(Clone, Debug, Deserialize)]
pub struct Status {
    pub alliance_id: String,
    pub peer_id: String,
    pub listen: Vec<String>,
    pub peers: Vec<String>,
    pub height: u64,
    pub last_block_time_ms: u64,
    pub state_root: String,
    pub clock_ms: u64,
}

impl Status {
    pub fn alliance(&self) -> Result<Hash, Error> {
        Hash::from_hex(&self.alliance_id).map_err(|e| Error::failed(format!("the node's status has a bad alliance id: {e}")))
    }
}

/// A receipt as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Receipt {
    pub code: u32,
    pub name: String,
    pub accepted: bool,
}

/// One record's state: `final` (with height and receipt), `pending`, `refused` or `error`.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordState {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub height: Option<u64>,
    #[serde(default)]
    pub receipt: Option<Receipt>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl RecordState {
    pub fn is_final(&self) -> bool {
        self.status == "final"
    }
}

/// `POST /v1/records` with `records`: one state per record, in order.
#[derive(Clone, Debug, Deserialize)]
pub struct SubmitResults {
    pub results: Vec<RecordState>,
}

/// One block of `GET /v1/blocks`.
#[derive(Clone, Debug, Deserialize)]
pub struct BlockSummary {
    pub height: u64,
    pub id: String,
    pub state_root: String,
    #[serde(default)]
    pub statement_hash: Option<String>,
    pub records: u64,
}

/// `GET /v1/blocks?from=&limit=`.
#[derive(Clone, Debug, Deserialize)]
pub struct BlocksPage {
    pub tip: u64,
    pub blocks: Vec<BlockSummary>,
}

/// A block with its records, `GET /v1/blocks/{height}` (only the record ids are read).
#[derive(Clone, Debug, Deserialize)]
pub struct BlockWithRecords {
    pub height: u64,
    pub id: String,
    pub record_list: Vec<RecordInBlock>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RecordInBlock {
    pub id: String,
}

/// A statement line, net, transfer: `GET /v1/statements/{period}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StatementLine {
    pub debtor: String,
    pub creditor: String,
    pub kind: String,
    pub amount: String,
    pub sources: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Net {
    pub party: String,
    pub net: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bilateral {
    pub a: String,
    pub b: String,
    pub net: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Transfer {
    pub payer: String,
    pub payee: String,
    pub amount: String,
    /// Only in `rolled_over`: why it was not paid (`below-min-payout`, `promoter-debt`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Statement {
    pub period: u64,
    pub hash: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub lines: Vec<StatementLine>,
    pub nets: Vec<Net>,
    pub bilateral: Vec<Bilateral>,
    pub payment_plan: Vec<Transfer>,
    pub rolled_over: Vec<Transfer>,
    pub text: String,
}

/// `GET /v1/statements`: the closed periods' summaries (only their numbers and hashes are read).
#[derive(Clone, Debug, Deserialize)]
pub struct StatementList {
    pub statements: Vec<StatementSummary>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct StatementSummary {
    pub period: u64,
    pub hash: String,
}

/// `GET /v1/proposals/{id}`.
#[derive(Clone, Debug, Deserialize)]
pub struct Proposal {
    pub id: String,
    pub status: String,
}

/// `GET /v1/policy`.
#[derive(Clone, Debug, Deserialize)]
pub struct PolicyAnswer {
    pub in_force: PolicyJson,
}

/// Reads a 2xx JSON answer of `path` as `T`.
pub fn get<T: DeserializeOwned>(client: &Client, path: &str) -> Result<T, Error> {
    let value = client.get(path).map_err(Error::failed)?.ok_json().map_err(|e| Error::failed(format!("GET {path}: {e}")))?;
    typed(path, value)
}

/// Posts `body` to `path` and reads the 2xx JSON answer as `T`.
pub fn post<T: DeserializeOwned>(client: &Client, path: &str, body: &Value) -> Result<T, Error> {
    let value = client.post(path, body).map_err(Error::failed)?.ok_json().map_err(|e| Error::failed(format!("POST {path}: {e}")))?;
    typed(path, value)
}

fn typed<T: DeserializeOwned>(path: &str, value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| Error::failed(format!("the node's answer to {path} is not what the API documents: {e}")))
}

/// `POST /v1/sales/base`: the commission base the rules allow for a sale not yet signed.
#[derive(Clone, Debug, Deserialize)]
pub struct SaleBase {
    pub base: String,
}

/// A client-signed sale without a base gets the largest the rules allow (SETTLEMENT decisions
/// 6 and 7), as `plaza submit sale` does: the node computes it from code hashes, never secrets.
pub fn with_default_base(client: &Client, mut payload: Value, seller: &plaza_ledger::PublicKey, now_ms: u64) -> Result<Value, Error> {
    let Some(question) = plaza_node::sale_base::base_question(&payload, seller, now_ms).map_err(Error::failed)? else {
        return Ok(payload);
    };
    // A sale the rules will reject anyway (a redeemed coupon, overdrawn points …) keeps the
    // gross as its base, as the node does for the sales it signs: its receipt says why.
    if let Ok(answer) = post::<SaleBase>(client, "/v1/sales/base", &question) {
        payload["base"] = json!(answer.base);
    }
    Ok(payload)
}

pub fn status(client: &Client) -> Result<Status, Error> {
    get(client, "/v1/status")
}

/// Signs a JSON payload (the API's payload form) as `keypair`, dated `now_ms`.
pub fn sign_payload(payload: &Value, keypair: &Keypair, alliance: Hash, now_ms: u64) -> Result<plaza_ledger::record::Record, Error> {
    use plaza_ledger::record::{Record, RecordBody};
    let parsed: plaza_node::json::PayloadJson =
        serde_json::from_value(payload.clone()).map_err(|e| Error::failed(format!("payload: {e}")))?;
    let payload = parsed.to_payload().map_err(Error::failed)?;
    let record = Record::sign(RecordBody { alliance, signer: keypair.public(), created_at_ms: now_ms, payload }, keypair);
    record.check(&alliance).map_err(|e| Error::failed(format!("the record: {e}")))?;
    Ok(record)
}

/// Submits one signed record and waits (up to the node's limit) for it to be final.
pub fn submit_wait(client: &Client, record: &plaza_ledger::record::Record) -> Result<RecordState, Error> {
    use plaza_ledger::codec::Encode;
    post(client, "/v1/records?wait=true", &json!({"record": hex::encode(record.to_bytes())}))
}
