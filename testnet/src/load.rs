//! The load generator: realistic signed records (card issues, sales, half of them to another
//! merchant's member card), offered open-loop at a rate (the benchmark) or closed-loop with
//! every acknowledgement kept (the container testnet, which then checks nothing final was lost).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plaza_ledger::codec::Encode;
use plaza_ledger::money::Amount;
use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
use plaza_ledger::{Hash, Keypair};
use plaza_node::client::Client;
use serde_json::json;

use crate::api::{self, SubmitResults};
use crate::local::{clone_key, wall_ms};
use crate::Error;

/// Records in one request of the closed-loop generator.
pub const ACKNOWLEDGED_BATCH_RECORDS: usize = 20;

/// Member cards per merchant in the load's setup, unless told otherwise: an alliance's
/// regulars. Every second sale goes to one of them, in turn, so each card earns a lot of
/// points about once per `2 × cards` sales. Few cards make each one hold thousands of lots
/// (every lot is encoded again when its card is touched: see docs/BENCHMARKS.md).
pub const CARDS_PER_MERCHANT: u16 = 1_000;

/// Card-issue records, `per_merchant` per signer, and the cards they create.
pub fn card_setup(signers: &[Keypair], alliance: Hash, per_merchant: u16) -> (Vec<CardId>, Vec<Record>) {
    let mut cards = Vec::new();
    let mut records = Vec::new();
    for (i, k) in signers.iter().enumerate() {
        for c in 0..per_merchant {
            let [hi, lo] = c.to_be_bytes();
            let card = CardId([i as u8, hi, lo, 0xca, 0xfe, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            cards.push(card);
            let body = RecordBody { alliance, signer: k.public(), created_at_ms: wall_ms(), payload: Payload::IssueCard { card } };
            records.push(Record::sign(body, k));
        }
    }
    (cards, records)
}

/// `count` sales dated `now_ms`, signed by rotating merchants, order numbers from `*order`
/// on (prefixed with `tag`); every second one to a member card.
pub fn sales(signers: &[Keypair], cards: &[CardId], alliance: Hash, tag: &str, order: &mut u64, count: usize, now_ms: u64) -> Vec<Record> {
    (0..count)
        .map(|i| {
            *order += 1;
            let s = &signers[i % signers.len()];
            let card = (i % 2 == 0 && !cards.is_empty()).then(|| cards[(i / 2) % cards.len()]);
            let gross = Amount::from_cents(1_000 + (*order * 7919) % 90_000).unwrap_or(Amount::ZERO);
            let payload =
                Payload::Sale { order: format!("{tag}{order}"), gross, base: gross, card, referral_code: None, coupon_codes: Vec::new(), points_redeemed: 0 };
            Record::sign(RecordBody { alliance, signer: s.public(), created_at_ms: now_ms, payload }, s)
        })
        .collect()
}

pub fn to_hex(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| hex::encode(r.to_bytes())).collect()
}

/// Submits `records` and waits for them to be final; an error unless every one is final.
pub fn submit_all_final(client: &Client, records: &[Record]) -> Result<(), Error> {
    for chunk in records.chunks(plaza_node::api::SUBMIT_RECORDS_MAX) {
        let answer: SubmitResults = api::post(client, "/v1/records?wait=true", &json!({"records": to_hex(chunk)}))?;
        if let Some(r) = answer.results.iter().find(|r| !r.is_final()) {
            return Err(Error::failed(format!("record {} is {} ({})", r.id, r.status, r.reason.as_deref().unwrap_or("no reason given"))));
        }
    }
    Ok(())
}

/// Offers `records` at `rate_per_s`, in batches every 50 ms round-robin over `clients`,
/// without waiting for answers to matter (open loop). Returns how long offering took.
pub fn offer_open_loop(clients: &[Client], records: &[String], rate_per_s: u64) -> Duration {
    let started = Instant::now();
    let batch = ((rate_per_s as f64) * 0.05).ceil().max(1.0) as usize;
    let mut sent = 0;
    let mut k = 0;
    while sent < records.len() {
        let due = started + Duration::from_millis(50 * k as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let end = (sent + batch).min(records.len());
        // Open loop: a refused or failed batch shows up as records that never finalize.
        let _ = clients[k % clients.len()].post("/v1/records", &json!({"records": &records[sent..end]}));
        sent = end;
        k += 1;
    }
    started.elapsed()
}

/// Latency probes: one sale every 100 ms through `client` with `?wait=true`, timed from
/// submission to finality, until stopped.
pub struct Probes {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<f64>>,
}

impl Probes {
    pub fn start(client: Client, signer: &Keypair, alliance: Hash, order_base: u64) -> Result<Probes, Error> {
        let signer = clone_key(signer)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while !flag.load(Ordering::SeqCst) {
                n += 1;
                let gross = Amount::from_cents(2_500).unwrap_or(Amount::ZERO);
                let payload = Payload::Sale {
                    order: format!("P{}", order_base + n),
                    gross,
                    base: gross,
                    card: None,
                    referral_code: None,
                    coupon_codes: Vec::new(),
                    points_redeemed: 0,
                };
                let r = Record::sign(RecordBody { alliance, signer: signer.public(), created_at_ms: wall_ms(), payload }, &signer);
                let t = Instant::now();
                if api::submit_wait(&client, &r).is_ok_and(|a| a.is_final()) {
                    latencies.push(t.elapsed().as_secs_f64());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            latencies
        });
        Ok(Probes { stop, thread })
    }

    /// Stops the probes; the latencies of those that became final, sorted.
    pub fn finish(self) -> Vec<f64> {
        self.stop.store(true, Ordering::SeqCst);
        let mut latencies = self.thread.join().unwrap_or_default();
        latencies.sort_by(|a, b| a.total_cmp(b));
        latencies
    }
}

/// `plaza_finalized_records_total` from a node's metrics (0 when it does not answer).
pub fn finalized_records(client: &Client) -> u64 {
    let Ok(r) = client.get("/metrics") else { return 0 };
    r.body
        .lines()
        .find(|l| l.starts_with("plaza_finalized_records_total"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// What the closed-loop generator saw.
#[derive(Clone, Debug, Default)]
pub struct Acknowledged {
    /// Ids a node answered `final` for (with an accepting receipt or not: final is final).
    pub final_ids: BTreeSet<Hash>,
    /// Records submitted, acknowledged or not.
    pub submitted: u64,
    /// Requests that failed (node down, paused, partitioned, timed out).
    pub failed_requests: u64,
}

/// The closed-loop generator: one thread per target node, each signing batches of sales and
/// submitting each with `?wait=true`, keeping every id a node acknowledged as final. A request
/// that fails is not retried (its records may or may not become final; only acknowledged ones
/// are checked later); a node that is down, paused or cut off only stalls its own thread.
pub struct AcknowledgedLoad {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Acknowledged>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl AcknowledgedLoad {
    /// `targets`: the nodes' API clients (with a timeout: a paused node never answers).
    pub fn start(targets: Vec<Client>, signers: &[Keypair], alliance: Hash, cards: Vec<CardId>, pause: Duration) -> Result<AcknowledgedLoad, Error> {
        if targets.is_empty() || signers.is_empty() {
            return Err(Error::failed("the load generator needs a target and a signer"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Acknowledged::default()));
        let mut threads = Vec::new();
        for (t, target) in targets.into_iter().enumerate() {
            let signers: Vec<Keypair> = signers.iter().map(clone_key).collect::<Result<_, _>>()?;
            let (flag, sink, cards) = (stop.clone(), seen.clone(), cards.clone());
            threads.push(std::thread::spawn(move || {
                let tag = format!("L{t}-");
                let mut order = 0u64;
                while !flag.load(Ordering::SeqCst) {
                    // Date records by the node's own clock, so a testnet clock offset is honoured.
                    let Ok(status) = api::status(&target) else {
                        sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner).failed_requests += 1;
                        std::thread::sleep(pause);
                        continue;
                    };
                    let records = sales(&signers, &cards, alliance, &tag, &mut order, ACKNOWLEDGED_BATCH_RECORDS, status.clock_ms);
                    let answer: Result<SubmitResults, Error> = api::post(&target, "/v1/records?wait=true", &json!({"records": to_hex(&records)}));
                    let mut seen = sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    seen.submitted += records.len() as u64;
                    match answer {
                        Ok(answer) => {
                            for r in answer.results.iter().filter(|r| r.is_final()) {
                                if let Ok(id) = Hash::from_hex(&r.id) {
                                    seen.final_ids.insert(id);
                                }
                            }
                        }
                        Err(_) => seen.failed_requests += 1,
                    }
                    drop(seen);
                    std::thread::sleep(pause);
                }
            }));
        }
        Ok(AcknowledgedLoad { stop, seen, threads })
    }

    /// What has been acknowledged so far.
    pub fn snapshot(&self) -> Acknowledged {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn finish(self) -> Acknowledged {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            let _ = thread.join();
        }
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}
