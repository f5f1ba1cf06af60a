//! Node commands: `start`, `submit`, `query` (and `testnet`, `bench` in node_testnet.rs).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use plaza_ledger::record::{CodeSecret, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use plaza_node::json::PayloadJson;
use plaza_node::Home;
use serde_json::{json, Value};

use crate::output::{ctx, print_json, CliError, CliResult};
use crate::render::{self, Names};

pub use crate::node_testnet::{bench, testnet, BenchArgs, TestnetArgs};

#[derive(Args)]
#[command(after_help = "Example: plaza start --home ./hotpot")]
pub struct StartArgs {
    /// The node home made by `plaza init`.
    #[arg(long)]
    pub home: PathBuf,
    /// Log as JSON lines instead of the config's log_format.
    #[arg(long)]
    pub log_json: bool,
}

/// Starts the node and runs it until Ctrl-C or SIGTERM.
pub fn start(args: StartArgs) -> CliResult {
    let home = Home::new(&args.home);
    let config = home.load_config().map_err(CliError::new)?;
    let _lock = home.lock().map_err(CliError::new)?;
    if let Some(warning) = plaza_node::limits::public_api_warning(&config.api) {
        eprintln!("warning: {warning}");
    }
    let json_logs = args.log_json || config.log_format == "json";
    let filter = tracing_subscriber::EnvFilter::try_from_env("PLAZA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn,libp2p_gossipsub=error"));
    // Colour codes only for a person at a terminal: a log file or a pipe gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let installed = if json_logs { builder.json().try_init() } else { builder.try_init() };
    if let Err(e) = installed {
        eprintln!("warning: logging not installed: {e}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ctx("starting the runtime"))?;
    runtime.block_on(plaza_node::driver::run(&args.home)).map_err(CliError::new)
}

/// How to reach a node's API.
#[derive(Args, Clone)]
pub struct Connection {
    /// A node home: its config gives the API address and its api-token the token.
    #[arg(long, global = true)]
    pub home: Option<PathBuf>,
    /// The node's API address (when not using --home).
    #[arg(long, global = true, default_value = "127.0.0.1:7180")]
    pub api: String,
    /// The node's API token (when not using --home); also read from PLAZA_API_TOKEN.
    #[arg(long, global = true, env = "PLAZA_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Connection {
    pub fn client(&self) -> Result<Client, CliError> {
        if let Some(home) = &self.home {
            let home = Home::new(home);
            let config = home.load_config().map_err(CliError::new)?;
            let mut addr: SocketAddr = config.api.parse().map_err(ctx("api address"))?;
            // Port 0 in the config: the running node wrote the port it bound into `api.addr`.
            if addr.port() == 0 {
                let bound = std::fs::read_to_string(home.api_addr())
                    .map_err(|e| CliError::new(format!("{}: {e} (the config's api port is 0: is the node running?)", home.api_addr().display())))?;
                addr = bound.trim().parse().map_err(ctx(format!("{}", home.api_addr().display())))?;
            }
            let token = home.load_token().ok();
            return Ok(Client::new(addr, token));
        }
        let addr: SocketAddr = self.api.parse().map_err(ctx(format!("--api {:?}", self.api)))?;
        Ok(Client::new(addr, self.token.clone()))
    }
}

#[derive(Args)]
#[command(after_help = "Examples:\n  plaza submit --home ./hotpot sale --order T-1001 --gross 128.00 --card 00112233445566778899aabbccddeeff --wait\n  plaza submit --api 127.0.0.1:7180 --token $TOKEN --key gym.key refund --order G-7 --refund-id R-1 --amount 20.00")]
pub struct SubmitArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Sign with this merchant key file here (client-signed); without it the node signs with its own merchant key.
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Wait until the record is final and print its receipt.
    #[arg(long, global = true)]
    pub wait: bool,
    #[command(subcommand)]
    pub kind: SubmitKind,
}

#[derive(Subcommand)]
pub enum SubmitKind {
    /// A sale (S1–S7): external order id, gross, commission base, card, codes, points.
    #[command(after_help = "Example: plaza submit --home ./gym sale --order G-1 --gross 300.00 --base 280.00 --card 0011…eeff --referral-code REF-SUPER-0001")]
    #[command(allow_negative_numbers = true)]
    Sale {
        #[arg(long)]
        order: String,
        #[arg(long)]
        gross: String,
        /// Commission base. Defaults to the largest the rules allow: the gross less other
        /// merchants' issuer-funded coupons and other merchants' points redeemed (asked of the node).
        #[arg(long)]
        base: Option<String>,
        #[arg(long)]
        card: Option<String>,
        #[arg(long)]
        referral_code: Option<String>,
        /// A coupon code secret redeemed; repeat for several.
        #[arg(long = "coupon")]
        coupons: Vec<String>,
        #[arg(long, default_value_t = 0)]
        points: u64,
    },
    /// A full or partial refund of an earlier sale (S8).
    #[command(after_help = "Example: plaza submit --home ./hotpot refund --order T-1001 --refund-id R-1 --amount 28.00")]
    #[command(allow_negative_numbers = true)]
    Refund {
        #[arg(long)]
        order: String,
        #[arg(long)]
        refund_id: String,
        #[arg(long)]
        amount: String,
    },
    /// Issue a member card (random card id unless given).
    #[command(after_help = "Example: plaza submit --home ./market issue-card")]
    IssueCard {
        #[arg(long)]
        card: Option<String>,
    },
    /// A referral (S1, S2): the code's secret is hashed here, only the hash is recorded.
    #[command(after_help = "Examples:\n  plaza submit --home ./market refer --code REF-0001 --promoter kol-lily --valid-at category:fitness\n  plaza submit --home ./market refer --code REF-0002 --expires-at 2026-12-31T23:59:59+08:00")]
    Refer {
        #[arg(long)]
        code: String,
        #[arg(long)]
        card: Option<String>,
        #[arg(long)]
        promoter: Option<String>,
        #[arg(long)]
        upstream: Option<String>,
        /// `merchant:<key>` or `category:<code>`; repeat for several.
        #[arg(long = "valid-at")]
        valid_at: Vec<String>,
        /// Expiry relative to the node's clock.
        #[arg(long, default_value_t = 720, conflicts_with = "expires_at")]
        expires_in_hours: u64,
        /// Absolute expiry: `2026-12-31T23:59:59+08:00` or Unix milliseconds.
        #[arg(long)]
        expires_at: Option<String>,
        #[arg(long)]
        multi_use: bool,
    },
    /// A batch of single-use coupons (S6).
    #[command(after_help = "Example: plaza submit --home ./hotpot issue-coupons --batch SPRING --code CPN-0001 --code CPN-0002 --fixed 20.00 --min-spend 100.00 --redeemable-at category:entertainment --funding issuer")]
    #[command(allow_negative_numbers = true)]
    IssueCoupons {
        #[arg(long)]
        batch: String,
        /// A coupon code secret; repeat for several.
        #[arg(long = "code", required = true)]
        codes: Vec<String>,
        /// Fixed face value.
        #[arg(long, conflicts_with = "percent_bps")]
        fixed: Option<String>,
        /// Percentage off, in basis points.
        #[arg(long)]
        percent_bps: Option<u32>,
        #[arg(long, default_value = "0.00")]
        min_spend: String,
        #[arg(long = "redeemable-at")]
        redeemable_at: Vec<String>,
        /// issuer or redeemer.
        #[arg(long, default_value = "issuer")]
        funding: String,
        /// Expiry relative to the node's clock.
        #[arg(long, default_value_t = 720, conflicts_with = "expires_at")]
        expires_in_hours: u64,
        /// Absolute expiry: `2026-12-31T23:59:59+08:00` or Unix milliseconds.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Undo a coupon redemption within the revocation window (S6).
    #[command(after_help = "Example: plaza submit --home ./cinema revoke-redemption --order C-9 --code CPN-0001")]
    RevokeRedemption {
        #[arg(long)]
        order: String,
        #[arg(long)]
        code: String,
    },
    /// A bilateral agreement (S9): a fixed fee per period, or a rate override.
    #[command(after_help = "Example: plaza submit --home ./gym agreement --id GYM-SCHOOL-1 --counterparty <key> --fixed-fee 50.00 --payer <key>")]
    #[command(allow_negative_numbers = true)]
    Agreement {
        #[arg(long)]
        id: String,
        #[arg(long)]
        counterparty: String,
        #[arg(long, requires = "payer")]
        fixed_fee: Option<String>,
        #[arg(long)]
        payer: Option<String>,
        #[arg(long)]
        referral_rate_bps: Option<u32>,
        #[arg(long)]
        home_rate_bps: Option<u32>,
        /// Defaults to now.
        #[arg(long)]
        starts_at_ms: Option<u64>,
        #[arg(long)]
        ends_at_ms: Option<u64>,
    },
    /// Accept an agreement (its Agreement record's id).
    #[command(after_help = "Example: plaza submit --home ./school accept --agreement <record id>")]
    Accept {
        #[arg(long)]
        agreement: String,
    },
    /// Confirm a payment received off-chain (S12).
    #[command(after_help = "Example: plaza submit --home ./gym confirm-payment --period 0 --payer <key> --amount 57.60")]
    #[command(allow_negative_numbers = true)]
    ConfirmPayment {
        #[arg(long)]
        period: u64,
        #[arg(long)]
        payer: String,
        #[arg(long)]
        amount: String,
    },
    /// A governance proposal; the action as JSON (docs/NODE.md).
    #[command(after_help = "Example: plaza submit --home ./hotpot propose --action '{\"type\":\"register_promoter\",\"id\":\"kol-lily\",\"name\":\"Lily\"}'")]
    Propose {
        #[arg(long)]
        action: String,
    },
    /// Vote on a proposal (its Propose record's id).
    #[command(after_help = "Example: plaza submit --home ./gym vote --proposal <record id> --approve")]
    Vote {
        #[arg(long)]
        proposal: String,
        #[arg(long, conflicts_with = "reject")]
        approve: bool,
        #[arg(long)]
        reject: bool,
    },
    /// Any record kind as a JSON payload (the API's `payload`).
    #[command(after_help = "Example: plaza submit --home ./hotpot raw '{\"kind\":\"issue_card\",\"card\":\"00112233445566778899aabbccddeeff\"}'")]
    Raw { payload: String },
}

fn random_card() -> String {
    hex::encode(&Keypair::generate().secret_bytes()[..16])
}

fn code_hash(secret: &str) -> Result<String, CliError> {
    Ok(CodeSecret::new(secret.as_bytes()).map_err(CliError::new)?.hash().to_hex())
}

fn payload_for(kind: SubmitKind, now_ms: u64) -> Result<Value, CliError> {
    let hours = |h: u64| now_ms.saturating_add(h.saturating_mul(3_600_000));
    let expiry = |at: Option<String>, h: u64| -> Result<u64, CliError> {
        match at {
            Some(text) => plaza_ledger::genesis::parse_time_ms(&text).map_err(|e| CliError::new(format!("--expires-at: {e}"))),
            None => Ok(hours(h)),
        }
    };
    Ok(match kind {
        SubmitKind::Sale { order, gross, base, card, referral_code, coupons, points } => json!({
            "kind": "sale", "order": order, "gross": gross, "base": base, "card": card,
            "referral_code": referral_code, "coupon_codes": coupons, "points_redeemed": points,
        }),
        SubmitKind::Refund { order, refund_id, amount } => json!({"kind": "refund", "order": order, "refund_id": refund_id, "amount": amount}),
        SubmitKind::IssueCard { card } => json!({"kind": "issue_card", "card": card.unwrap_or_else(random_card)}),
        SubmitKind::Refer { code, card, promoter, upstream, valid_at, expires_in_hours, expires_at, multi_use } => json!({
            "kind": "refer", "code": code, "card": card, "promoter": promoter, "upstream": upstream,
            "valid_at": valid_at, "expires_at_ms": expiry(expires_at, expires_in_hours)?, "multi_use": multi_use,
        }),
        SubmitKind::IssueCoupons { batch, codes, fixed, percent_bps, min_spend, redeemable_at, funding, expires_in_hours, expires_at } => {
            let value = match (fixed, percent_bps) {
                (Some(f), None) => json!({"fixed": f}),
                (None, Some(p)) => json!({"percent_bps": p}),
                _ => return Err(CliError::new("give --fixed AMOUNT or --percent-bps N")),
            };
            json!({
                "kind": "issue_coupons", "batch": batch, "codes": codes, "value": value, "min_spend": min_spend,
                "redeemable_at": redeemable_at, "funding": funding, "expires_at_ms": expiry(expires_at, expires_in_hours)?,
            })
        }
        SubmitKind::RevokeRedemption { order, code } => json!({"kind": "revoke_redemption", "order": order, "code_hash": code_hash(&code)?}),
        SubmitKind::Agreement { id, counterparty, fixed_fee, payer, referral_rate_bps, home_rate_bps, starts_at_ms, ends_at_ms } => {
            let terms = match (fixed_fee, payer) {
                (Some(amount), Some(payer)) => json!({"fixed_fee": {"payer": payer, "amount": amount}}),
                _ => json!({"rate_override": {"referral_rate_bps": referral_rate_bps, "home_rate_bps": home_rate_bps}}),
            };
            json!({"kind": "agreement", "agreement_id": id, "counterparty": counterparty, "terms": terms,
                   "starts_at_ms": starts_at_ms.unwrap_or(now_ms), "ends_at_ms": ends_at_ms})
        }
        SubmitKind::Accept { agreement } => json!({"kind": "accept", "agreement": agreement}),
        SubmitKind::ConfirmPayment { period, payer, amount } => json!({"kind": "confirm_payment", "period": period, "payer": payer, "amount": amount}),
        SubmitKind::Propose { action } => {
            let action: Value = serde_json::from_str(&action).map_err(ctx("--action is not JSON"))?;
            json!({"kind": "propose", "action": action})
        }
        SubmitKind::Vote { proposal, approve, reject } => {
            if approve == reject {
                return Err(CliError::new("give --approve or --reject"));
            }
            json!({"kind": "vote", "proposal": proposal, "approve": approve})
        }
        SubmitKind::Raw { payload } => serde_json::from_str(&payload).map_err(ctx("the payload is not JSON"))?,
    })
}

/// A client-signed sale without `--base`: the base is the largest the rules allow, which the
/// node computes from the coupons and points (`POST /v1/sales/base`; only code hashes are sent).
/// A node-signed sale needs nothing: the node fills it in.
fn with_default_base(client: &Client, mut payload: Value, seller: &plaza_ledger::PublicKey, now_ms: u64) -> Result<Value, CliError> {
    let Some(question) = plaza_node::sale_base::base_question(&payload, seller, now_ms).map_err(CliError::new)? else {
        return Ok(payload);
    };
    let answer = client
        .post("/v1/sales/base", &question)
        .and_then(|r| r.ok_json())
        .map_err(|e| CliError::from(e).context("the sale's commission base"))?;
    let base = answer.get("base").and_then(Value::as_str).ok_or_else(|| CliError::new("the node did not say the sale's base"))?;
    payload["base"] = json!(base);
    Ok(payload)
}

/// Signs a JSON payload with `keypair` for the alliance, dated `now_ms`.
pub fn sign_payload(payload: &Value, keypair: &Keypair, alliance: Hash, now_ms: u64) -> Result<Record, CliError> {
    let parsed: PayloadJson = serde_json::from_value(payload.clone()).map_err(ctx("payload"))?;
    let payload = parsed.to_payload().map_err(CliError::new)?;
    let body = RecordBody { alliance, signer: keypair.public(), created_at_ms: now_ms, payload };
    let record = Record::sign(body, keypair);
    record.check(&alliance).map_err(ctx("the record"))?;
    Ok(record)
}

/// The node's status (alliance id and clock).
pub fn node_status(client: &Client) -> Result<Value, CliError> {
    Ok(client.get("/v1/status")?.ok_json()?)
}

pub fn status_clock(status: &Value) -> Result<(Hash, u64), CliError> {
    let alliance = status
        .get("alliance_id")
        .and_then(Value::as_str)
        .and_then(|h| Hash::from_hex(h).ok())
        .ok_or_else(|| CliError::new("the node's status has no alliance id"))?;
    let now = status.get("clock_ms").and_then(Value::as_u64).ok_or_else(|| CliError::new("the node's status has no clock"))?;
    Ok((alliance, now))
}

pub fn submit(args: SubmitArgs) -> CliResult {
    let client = args.conn.client()?;
    let status = node_status(&client)?;
    let (alliance, now_ms) = status_clock(&status)?;
    let payload = payload_for(args.kind, now_ms)?;
    let body = match &args.key {
        Some(path) => {
            let keypair = Keypair::load(path).map_err(ctx(format!("{}", path.display())))?;
            let payload = with_default_base(&client, payload, &keypair.public(), now_ms)?;
            let record = sign_payload(&payload, &keypair, alliance, now_ms)?;
            json!({"record": hex::encode(plaza_ledger::codec::Encode::to_bytes(&record))})
        }
        None => json!({"payload": payload}),
    };
    let path = if args.wait { "/v1/records?wait=true" } else { "/v1/records" };
    let answer = client.post(path, &body)?.ok_json()?;
    if args.conn.json {
        print_json(&answer);
    } else {
        print_record_status(&answer);
    }
    rejection_exit(&answer)
}

/// A final record the ledger rejected (its receipt is not `accepted`) exits 4, a record the
/// node refused 5, so scripts need not parse the output.
fn rejection_exit(answer: &Value) -> CliResult {
    let id = answer.get("id").and_then(Value::as_str).unwrap_or("?");
    match answer.get("status").and_then(Value::as_str) {
        Some("final") if answer.pointer("/receipt/accepted").and_then(Value::as_bool) != Some(true) => {
            let name = answer.pointer("/receipt/name").and_then(Value::as_str).unwrap_or("unknown");
            Err(CliError::rejected(format!("record {id} is final but the ledger rejected it: {name}")))
        }
        Some("refused") => Err(CliError::from(plaza_node::client::ClientError::Api {
            status: 400,
            code: answer.get("code").and_then(Value::as_str).unwrap_or("refused").to_owned(),
            message: format!("record {id} refused: {}", answer.get("reason").and_then(Value::as_str).unwrap_or("")),
        })),
        _ => Ok(()),
    }
}

fn print_record_status(v: &Value) {
    let id = v.get("id").and_then(Value::as_str).unwrap_or("?");
    if v.get("original").and_then(Value::as_bool) == Some(true) {
        match v.get("submitted").and_then(Value::as_str) {
            Some(_) => println!("this order is already on the ledger: the original record {id} is answered (nothing new was submitted)"),
            None => println!("record {id} was already known to the node (resent): its status follows"),
        }
    }
    match v.get("status").and_then(Value::as_str) {
        Some("final") => {
            let receipt = v.get("receipt").cloned().unwrap_or(Value::Null);
            let name = receipt.get("name").and_then(Value::as_str).unwrap_or("?");
            println!(
                "record {id} final at height {} (index {}): {name}",
                v.get("height").and_then(Value::as_u64).unwrap_or(0),
                v.get("index").and_then(Value::as_u64).unwrap_or(0)
            );
            if let Some(d) = receipt.get("description").and_then(Value::as_str)
                && name != "accepted"
            {
                println!("  {d}");
            }
        }
        Some("pending") => println!("record {id} pending (query it with: plaza query record {id})"),
        Some(other) => println!("record {id} {other}: {}", v.get("reason").and_then(Value::as_str).unwrap_or("")),
        None => print_json(v),
    }
}

#[derive(Args)]
#[command(after_help = "Examples:\n  plaza query --home ./hotpot status\n  plaza query --home ./hotpot statement latest --json\n  plaza query --api 127.0.0.1:7180 record <id>")]
pub struct QueryArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub what: QueryWhat,
}

#[derive(Subcommand)]
pub enum QueryWhat {
    /// Version, height, view, peers, sync state, period, clock.
    #[command(after_help = "Example: plaza query --home ./hotpot status --json")]
    Status,
    /// A record's status: pending, or final with its receipt.
    #[command(after_help = "Example: plaza query --home ./hotpot record 3f1c…e9")]
    Record { id: String },
    /// A finalized block by height or id.
    #[command(after_help = "Example: plaza query --home ./hotpot block 42 --json")]
    Block { block: String },
    /// Recent blocks.
    #[command(after_help = "Example: plaza query --home ./hotpot blocks --from 100 --limit 20")]
    Blocks {
        #[arg(long)]
        from: Option<u64>,
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Every merchant; or members near a point, nearest first, and where a coupon, an
    /// issuer's points or a card can be used.
    #[command(after_help = "Examples:\n  plaza query --home ./hotpot merchants --near 31.2239,121.4460 --within 2km\n  plaza query --home ./hotpot merchants --near 31.2239,121.4460 --within 1.5km --category restaurant --json\n  plaza query --home ./hotpot merchants --near 31.2239,121.4460 --within 2km --coupon SECRET\n  plaza query --home ./hotpot merchants --near 31.2239,121.4460 --card <card id>")]
    Merchants(crate::nearby::MerchantFilters),
    /// Districts (商圈) with their members.
    #[command(after_help = "Example: plaza query --home ./hotpot districts")]
    Districts,
    /// One merchant and its balance.
    #[command(after_help = "Example: plaza query --home ./hotpot merchant <merchant key>")]
    Merchant { key: String },
    /// Registered promoters.
    #[command(after_help = "Example: plaza query --home ./hotpot promoters --json")]
    Promoters,
    /// A member card and its points.
    #[command(after_help = "Example: plaza query --home ./hotpot card 00112233445566778899aabbccddeeff")]
    Card { card: String },
    /// A coupon by its code (hashed here) or code hash.
    #[command(after_help = "Example: plaza query --home ./hotpot coupon --code CPN-0001")]
    Coupon {
        #[arg(long, conflicts_with = "hash")]
        code: Option<String>,
        #[arg(long)]
        hash: Option<String>,
    },
    /// Every party's balance.
    #[command(after_help = "Example: plaza query --home ./hotpot balances")]
    Balances,
    /// One party's balance: merchant key, merchant:<key> or promoter:<id>.
    #[command(after_help = "Example: plaza query --home ./hotpot balance promoter:kol-lily")]
    Balance { party: String },
    /// Statement summaries.
    #[command(after_help = "Example: plaza query --home ./hotpot statements --json")]
    Statements,
    /// One statement in full (a period number or `latest`) with its payment plan.
    #[command(after_help = "Example: plaza query --home ./hotpot statement 3")]
    Statement {
        #[arg(default_value = "latest")]
        period: String,
    },
    /// A record's Merkle inclusion proof.
    #[command(after_help = "Example: plaza query --home ./hotpot proof 3f1c…e9 --json > record.proof.json")]
    Proof { id: String },
    /// A governance proposal.
    #[command(after_help = "Example: plaza query --home ./hotpot proposal <record id>")]
    Proposal { id: String },
    /// The policy in force and every version.
    #[command(after_help = "Example: plaza query --home ./hotpot policy --json")]
    Policy,
}

pub fn query(args: QueryArgs) -> CliResult {
    let client = args.conn.client()?;
    let path = match &args.what {
        QueryWhat::Status => "/v1/status".to_owned(),
        QueryWhat::Record { id } => format!("/v1/records/{id}"),
        QueryWhat::Block { block } => format!("/v1/blocks/{block}"),
        QueryWhat::Blocks { from, limit } => match from {
            Some(f) => format!("/v1/blocks?from={f}&limit={limit}"),
            None => format!("/v1/blocks?limit={limit}"),
        },
        QueryWhat::Merchants(filters) => crate::nearby::merchants_path(filters)?,
        QueryWhat::Districts => "/v1/districts".into(),
        QueryWhat::Merchant { key } => format!("/v1/merchants/{key}"),
        QueryWhat::Promoters => "/v1/promoters".into(),
        QueryWhat::Card { card } => format!("/v1/cards/{card}"),
        QueryWhat::Coupon { code, hash } => match (code, hash) {
            (Some(c), _) => format!("/v1/coupons/{}", code_hash(c)?),
            (None, Some(h)) => format!("/v1/coupons/{h}"),
            (None, None) => return Err(CliError::new("give --code SECRET or --hash HASH")),
        },
        QueryWhat::Balances => "/v1/balances".into(),
        QueryWhat::Balance { party } => format!("/v1/balances/{party}"),
        QueryWhat::Statements => "/v1/statements".into(),
        QueryWhat::Statement { period } => format!("/v1/statements/{period}"),
        QueryWhat::Proof { id } => format!("/v1/proofs/{id}"),
        QueryWhat::Proposal { id } => format!("/v1/proposals/{id}"),
        QueryWhat::Policy => "/v1/policy".into(),
    };
    if path.contains(char::is_whitespace) || path.contains('#') || path.contains("..") {
        return Err(CliError::new("arguments must not contain spaces, '#' or '..'"));
    }
    let answer = client.get(&path)?.ok_json()?;
    if args.conn.json {
        print_json(&answer);
        return Ok(());
    }
    // Names and the time zone cost two more requests: only the renderings that use them ask.
    let names = || Names::fetch(&client);
    match &args.what {
        QueryWhat::Record { .. } => print_record_status(&answer),
        QueryWhat::Merchants(_) => crate::nearby::print_merchants(&answer, &names()),
        QueryWhat::Districts => crate::nearby::print_districts(&answer),
        QueryWhat::Statement { .. } => render::print_statement(&answer, &names()),
        QueryWhat::Statements => render::print_statements(&answer, &names()),
        QueryWhat::Balances => render::print_balances(&answer, &names()),
        QueryWhat::Blocks { .. } => render::print_blocks(&answer, &names()),
        QueryWhat::Promoters => render::print_promoters(&answer),
        _ => print_human(&names().humanize(&answer), 0),
    }
    Ok(())
}

/// A plain, indented rendering of a JSON answer.
pub fn print_human(v: &Value, indent: usize) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                match val {
                    Value::Object(_) | Value::Array(_) if !is_flat(val) => {
                        println!("{pad}{k}:");
                        print_human(val, indent + 1);
                    }
                    _ => println!("{pad}{k}: {}", scalar(val)),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if is_flat(item) {
                    println!("{pad}- {}", scalar(item));
                } else {
                    println!("{pad}-");
                    print_human(item, indent + 1);
                }
            }
        }
        other => println!("{pad}{}", scalar(other)),
    }
}

fn is_flat(v: &Value) -> bool {
    match v {
        Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()) && items.len() <= 8,
        Value::Object(_) => false,
        _ => true,
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
