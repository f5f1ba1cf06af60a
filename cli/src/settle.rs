//! `plaza settle`: recompute a settlement period offline from a node's store (DESIGN §5, S10).

use std::path::PathBuf;

use clap::Args;
use serde_json::{json, Value};

use plaza_ledger::audit::export::FRAME_BYTES_MAX;
use plaza_ledger::codec::Decode;
use plaza_ledger::contract::statement::cents;
use plaza_ledger::contract::{settle_offline, Statement};
use plaza_ledger::record::{Party, Record};

use crate::output::{ctx, print_json, CliError, CliResult};
use crate::render::{print_statement, Names};

/// Recompute a settlement period offline: replay the node's finalized blocks from genesis
/// through the settlement contract and print the period's statement (lines, nets, payment
/// plan). The result is compared with the statement the node stored; a difference exits 3.
///
/// Example: plaza settle --home ./hotpot --period 3 --json
#[derive(Args)]
pub struct SettleArgs {
    /// The node home (its `data` store is read, never written).
    #[arg(long)]
    pub home: PathBuf,
    /// The period number; the latest closed period when absent.
    #[arg(long)]
    pub period: Option<u64>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SettleArgs) -> CliResult {
    let store = crate::audit::open_store(&args.home)?;
    let genesis = store.genesis().clone();
    let tip = store.tip_height().map_err(ctx("reading the store's tip"))?;
    // settle_offline borrows the records: load the blocks (headers' times and records).
    let mut blocks: Vec<(u64, Vec<Record>)> = Vec::with_capacity(tip as usize);
    for h in 1..=tip {
        let block = store.block(h).map_err(ctx("reading the store"))?.ok_or_else(|| CliError::new(format!("block {h} is missing from the store")))?;
        blocks.push((block.block.header.time_ms, block.block.records));
    }
    let statement = settle_offline(&genesis, blocks.iter().map(|(t, r)| (*t, r.as_slice())), args.period)
        .map_err(|(index, e)| CliError::verification(format!("block {} does not re-execute: {e}", index + 1)))?;
    let statement = match (statement, args.period) {
        (Some(s), _) => s,
        (None, Some(p)) => return Err(CliError::new(format!("period {p} has not been closed by the {tip} blocks of this chain"))),
        (None, None) => return Err(CliError::new(format!("no period has been closed yet ({tip} blocks)"))),
    };
    let stored = store.statement(statement.period).map_err(ctx("reading the stored statement"))?;
    let matches = match stored {
        None => None,
        Some(bytes) => Some(Statement::from_bytes(&bytes, FRAME_BYTES_MAX).map(|s| s == statement).unwrap_or(false)),
    };
    if args.json {
        let mut value = statement_json(&statement);
        value["matches_stored"] = json!(matches);
        print_json(&value);
    } else {
        // Names: the genesis members (a member admitted later shows as its key).
        let names = Names::new(genesis.members.iter().map(|m| (m.key.to_hex(), m.name.clone())).collect(), genesis.utc_offset_minutes);
        let mut value = statement_json(&statement);
        value["payment_plan"] = value["transfers"].clone();
        print_statement(&value, &names);
        match matches {
            Some(true) => println!("matches the statement this node stored"),
            Some(false) => {}
            None => println!("this node stored no statement for period {}", statement.period),
        }
    }
    if matches == Some(false) {
        return Err(CliError::verification(format!(
            "the recomputed statement of period {} (hash {}) differs from the one this node stored",
            statement.period,
            statement.hash()
        )));
    }
    Ok(())
}

fn statement_json(s: &Statement) -> Value {
    json!({
        "period": s.period,
        "start_ms": s.start_ms,
        "end_ms": s.end_ms,
        "hash": s.hash().to_string(),
        "lines": s.lines.iter().map(|l| json!({
            "kind": l.kind.name(),
            "debtor": l.debtor.to_string(),
            "creditor": l.creditor.to_string(),
            "amount": cents(l.amount as i128),
            "sources": l.sources.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "nets": s.nets.iter().map(|(p, n)| json!({"party": p.to_string(), "net": cents(*n)})).collect::<Vec<_>>(),
        "bilateral": s.bilateral.iter().map(|b| json!({"a": b.a.to_string(), "b": b.b.to_string(), "net": cents(b.net)})).collect::<Vec<_>>(),
        "transfers": s.transfers.iter().map(|t| json!({"payer": t.payer.to_string(), "payee": t.payee.to_string(), "amount": cents(t.amount as i128)})).collect::<Vec<_>>(),
        "rolled_over": s.rolled_over.iter().map(|t| json!({"payer": t.payer.to_string(), "payee": t.payee.to_string(), "amount": cents(t.amount as i128), "reason": if matches!(t.payer, Party::Promoter(_)) { "promoter-debt" } else { "below-min-payout" }})).collect::<Vec<_>>(),
    })
}
