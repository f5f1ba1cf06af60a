//! `plaza testnet` and `plaza bench`: their arguments and what they print. The testnets, the
//! demo, the load generator and the benchmark themselves live in the `plaza-testnet` crate.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use plaza_testnet::bench::{bench as run_bench, recovery as run_recovery, BenchPlan, Recovery, RecoveryPlan};
use plaza_testnet::demo::{run_demo, DemoEvent};
use plaza_testnet::local::{default_dir, interrupt_flag, Layout, LocalTestnet};
use serde_json::{json, Value};

use crate::output::{ctx, print_json, CliError, CliResult};
use crate::render::{pad, Table};

#[derive(Args)]
#[command(after_help = "Examples:\n  plaza testnet --nodes 4 --demo --dir /tmp/alliance\n  plaza testnet --nodes 4            # runs until Ctrl-C")]
pub struct TestnetArgs {
    /// Validating nodes to start (at least 1; 4 tolerates one fault). Default 4, or the manifest's.
    #[arg(long)]
    pub nodes: Option<usize>,
    /// Play a realistic alliance day, print the statement and payment plan, check the chains and stop (see --keep-running).
    #[arg(long)]
    pub demo: bool,
    /// With --demo: leave the alliance running after the demo day (its explorer URL is
    /// printed) until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
    /// Directory for keys, genesis and node homes (created; must be empty or absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Write the homes and `testnet.json`, start nothing.
    #[arg(long)]
    pub prepare_only: bool,
    #[arg(long)]
    pub json: bool,
    /// Run the nodes as containers under perturbations (see testnet/docker/run, docs/NODE.md).
    #[arg(long, requires = "image")]
    pub docker: bool,
    /// With --docker: the image holding plaza (testnet/docker/build-image).
    #[arg(long)]
    pub image: Option<String>,
    /// With --docker: the run's manifest (TOML); defaults apply without one.
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// With --docker: the schedule's seed, instead of the manifest's.
    #[arg(long)]
    pub seed: Option<u64>,
    /// With --docker: the label value everything the run makes carries (plaza.run=ID).
    #[arg(long)]
    pub run_id: Option<String>,
}

#[derive(Args)]
#[command(after_help = "Example: plaza bench --nodes 4 --step-seconds 6 --rates 200,500,1000,2000")]
pub struct BenchArgs {
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Offered loads, records per second, in order.
    #[arg(long, value_delimiter = ',', default_value = "200,500,1000,2000,4000")]
    pub rates: Vec<u64>,
    /// Seconds per rate step.
    #[arg(long, default_value_t = 6)]
    pub step_seconds: u64,
    #[arg(long)]
    pub dir: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// Sample node 0 with perf during the last rate step and print where its CPU went.
    #[arg(long, conflicts_with_all = ["catch_up", "restart"])]
    pub profile: bool,
    /// Time block sync instead: the last node misses a chain of --records sales, then catches up.
    #[arg(long, conflicts_with = "restart")]
    pub catch_up: bool,
    /// Time a restart instead: the last node stops after a chain of --records sales and starts again.
    #[arg(long)]
    pub restart: bool,
    /// Sales in the chain for --catch-up and --restart.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub records: u64,
    /// The rate those sales are offered at, records per second.
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub load_rate: u64,
    /// Member cards each merchant issues before the load (every second sale goes to one, in
    /// turn): fewer cards, more points lots on each.
    #[arg(long, default_value_t = plaza_testnet::load::CARDS_PER_MERCHANT, value_parser = clap::value_parser!(u16).range(1..))]
    pub cards: u16,
    /// The plaza binary the nodes run (default: this one), to compare a build with another
    /// under the same load generator.
    #[arg(long, value_name = "PATH")]
    pub node_binary: Option<PathBuf>,
}

/// The binary the bench's nodes run: `--node-binary`, checked to be a file, or this one.
fn node_binary(args: &BenchArgs) -> Result<PathBuf, CliError> {
    match &args.node_binary {
        Some(path) if path.is_file() => Ok(path.clone()),
        Some(path) => Err(CliError::new(format!("--node-binary {}: no such file", path.display()))),
        None => this_binary(),
    }
}

/// The testnet's errors keep their meaning: a divergence exits with the verification code.
pub fn from_testnet(e: plaza_testnet::Error) -> CliError {
    match e {
        plaza_testnet::Error::Failed(m) => CliError::new(m),
        plaza_testnet::Error::Diverged(m) => CliError::verification(m),
    }
}

pub fn this_binary() -> Result<PathBuf, CliError> {
    std::env::current_exe().map_err(ctx("finding the plaza binary"))
}

pub fn testnet(args: TestnetArgs) -> CliResult {
    if args.docker {
        return crate::node_docker::run(args);
    }
    let dir = args.dir.clone().unwrap_or_else(|| default_dir("testnet"));
    let nodes = args.nodes.unwrap_or(4);
    let mut net = LocalTestnet::prepare(&dir, nodes, args.demo, &this_binary()?, Layout::Loopback).map_err(from_testnet)?;
    if args.prepare_only {
        if args.json {
            print_json(&net.describe());
        } else {
            println!("testnet prepared in {} ({} nodes); see testnet.json", dir.display(), nodes);
        }
        return Ok(());
    }
    let stop = interrupt_flag();
    if !args.json {
        println!("starting {nodes} nodes in {}", dir.display());
    }
    net.start_all().map_err(from_testnet)?;
    net.wait_height(1, Duration::from_secs(60), &stop).map_err(from_testnet)?;
    if !args.json {
        for n in &net.nodes {
            let api = n.api.map_or_else(|| "?".to_owned(), |a| a.to_string());
            println!("  node{} {:<22} api http://{api}  token {}", n.merchant, net.merchants[n.merchant].name, n.token);
        }
    }
    let mut demo_json = None;
    if args.demo {
        let result = demo(&mut net, &stop, args.json);
        if result.is_err() || !args.keep_running {
            net.stop_all();
            if let Some(outcome) = result? {
                print_json(&outcome);
            }
            if !args.json {
                println!("nodes stopped cleanly; the data stays in {}", dir.display());
            }
            return Ok(());
        }
        demo_json = result?;
    }
    let explorer = net.nodes.first().and_then(|n| n.api).map(|api| format!("http://{api}/"));
    if args.json {
        // One JSON document: the testnet (addresses, tokens), the explorer, the demo's outcome.
        let mut description = net.describe();
        description["explorer"] = json!(explorer);
        if let Some(outcome) = demo_json {
            description["demo"] = outcome;
        }
        print_json(&description);
    } else {
        if let Some(url) = &explorer {
            println!("explorer: {url}");
        }
        println!("the alliance is running; Ctrl-C stops it");
    }
    while !stop.load(Ordering::SeqCst) {
        for i in 0..net.nodes.len() {
            net.check_alive(i).map_err(from_testnet)?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !args.json {
        println!("stopping the nodes");
    }
    net.stop_all();
    Ok(())
}

/// Plays the demo day; prints it for people, or returns its outcome as JSON (`json_out`).
fn demo(net: &mut LocalTestnet, stop: &std::sync::atomic::AtomicBool, json_out: bool) -> Result<Option<Value>, CliError> {
    if !json_out {
        println!("an alliance day: six merchants, two of them competing restaurants");
    }
    let mut print = |event: DemoEvent<'_>| {
        if json_out {
            return;
        }
        match event {
            DemoEvent::Section(heading) => println!("{heading}"),
            DemoEvent::Step { number, merchant, what, receipt, height } => {
                println!("  {number:>2}. {} {} → {receipt} (height {height})", pad(merchant, 22), pad(what, 58));
            }
            DemoEvent::Clock { hours, why } => println!("  -- clocks moved forward {hours:.1} h: {why}"),
        }
    };
    let outcome = run_demo(net, stop, &mut print).map_err(from_testnet)?;
    if json_out {
        let statements = serde_json::to_value(&outcome.statements).map_err(ctx("statements"))?;
        return Ok(Some(json!({"statements": statements, "height": outcome.height, "tip": outcome.tip.to_hex(), "nodes": net.nodes.len()})));
    }
    for s in &outcome.statements {
        println!();
        println!("statement {} (hash {}):", s.period, &s.hash[..16.min(s.hash.len())]);
        let mut lines = Table::new(&["kind", "debtor", "creditor", "amount"]).right(&[3]);
        for l in &s.lines {
            lines.row([l.kind.clone(), outcome.name_of(&l.debtor), outcome.name_of(&l.creditor), l.amount.clone()]);
        }
        lines.print("  ");
        println!("  nets:");
        let mut nets = Table::new(&["party", "net"]).right(&[1]);
        for n in &s.nets {
            nets.row([outcome.name_of(&n.party), n.net.clone()]);
        }
        nets.print("    ");
        println!("  payment plan:");
        let mut plan = Table::new(&["payer", "payee", "amount", "note"]).right(&[2]);
        for t in &s.payment_plan {
            plan.row([outcome.name_of(&t.payer), outcome.name_of(&t.payee), t.amount.clone(), String::new()]);
        }
        for t in &s.rolled_over {
            let why = if t.reason == "promoter-debt" { "carried (netted against its next commissions)" } else { "rolled over (below the minimum payout)" };
            plan.row([outcome.name_of(&t.payer), outcome.name_of(&t.payee), t.amount.clone(), why.to_owned()]);
        }
        plan.print("    ");
    }
    println!();
    println!("all {} nodes hold the same finalized chain: {} blocks, tip {}", net.nodes.len(), outcome.height, outcome.tip);
    Ok(None)
}

pub fn bench(args: BenchArgs) -> CliResult {
    if args.catch_up || args.restart {
        return recovery(args);
    }
    let plan = BenchPlan {
        nodes: args.nodes,
        rates: args.rates.clone(),
        step_seconds: args.step_seconds,
        dir: args.dir.clone().unwrap_or_else(|| default_dir("bench")),
        binary: node_binary(&args)?,
        profile: args.profile,
        cards_per_merchant: args.cards,
    };
    let report = run_bench(&plan, &mut |line| eprintln!("{line}")).map_err(from_testnet)?;
    if args.json {
        print_json(&serde_json::to_value(&report).map_err(ctx("the report"))?);
        return Ok(());
    }
    println!(
        "{} nodes, {} member cards per merchant (every second sale to one)",
        report.nodes, report.cards_per_merchant
    );
    println!("ed25519 batch verification: {:.0}/s on one core (the mean of before and after the load)", report.ed25519_batch_verifications_per_s);
    println!("{:>10} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8}", "offered/s", "committed/s", "p50 s", "p95 s", "p99 s", "cpu", "ratio");
    for r in &report.steps {
        println!(
            "{:>10} {:>12.1} {:>9.3} {:>9.3} {:>9.3} {:>9.2} {:>8.3}",
            r.offered_per_s, r.committed_per_s, r.latency_p50_s, r.latency_p95_s, r.latency_p99_s, r.cpu_cores_busy, r.efficiency_ratio
        );
    }
    println!("bytes on disk per record per node: {}", report.bytes_on_disk_per_record_per_node);
    let s = &report.store;
    println!(
        "node 0's store after compaction: {:.1} MB for {:.1} MB of canonical blocks ({} records, {} blocks): {:.2}x",
        s.disk_bytes as f64 / 1e6,
        s.canonical_bytes as f64 / 1e6,
        s.records,
        s.blocks,
        s.ratio
    );
    let families: Vec<String> = s.families.iter().map(|(name, bytes)| format!("{name} {:.1} MB", *bytes as f64 / 1e6)).collect();
    println!("  by column family: {}", families.join(", "));
    println!(
        "  without the state snapshot (taken at height {}): {:.2}x the canonical blocks",
        s.snapshot_height, s.ratio_without_snapshot
    );
    if let Some(p) = &report.profile {
        println!(
            "node 0 at {}/s offered: {:.1} µs of CPU per committed record ({:.2}x one batched verification, {:.1} µs); {} samples",
            p.offered_per_s,
            p.cpu_us_per_record,
            p.cpu_us_per_record / p.verification_us,
            p.verification_us,
            p.samples
        );
        for (stage, share, us) in &p.stages {
            println!("  {:<36} {:>5.1} %  {:>7.1} µs", stage, share * 100.0, us);
        }
        println!("  hottest functions:");
        for (share, f) in &p.top {
            println!("  {:>5.1} %  {}", share * 100.0, f.chars().take(110).collect::<String>());
        }
    }
    Ok(())
}

fn recovery(args: BenchArgs) -> CliResult {
    let plan = RecoveryPlan {
        kind: if args.catch_up { Recovery::CatchUp } else { Recovery::Restart },
        nodes: args.nodes,
        records: args.records,
        rate: args.load_rate,
        dir: args.dir.clone().unwrap_or_else(|| default_dir("bench")),
        binary: node_binary(&args)?,
        cards_per_merchant: args.cards,
    };
    let r = run_recovery(&plan, &mut |line| eprintln!("{line}")).map_err(from_testnet)?;
    if args.json {
        print_json(&serde_json::to_value(&r).map_err(ctx("the report"))?);
        return Ok(());
    }
    let what = if args.catch_up { "catch-up by block sync" } else { "restart" };
    println!(
        "{what} of node {} of {}: a chain of {} records, height {} ({} member cards per merchant)",
        r.nodes - 1,
        r.nodes,
        r.chain_records,
        r.chain_height,
        r.cards_per_merchant
    );
    if r.store_bytes > 0 {
        println!("  store on disk          {:>10.1} MB", r.store_bytes as f64 / 1e6);
    }
    println!("  API serving after      {:>10.3} s", r.serving_s);
    println!("  at the chain's height  {:>10.3} s  ({:.0} blocks/s, {:.0} records/s, {:.2} CPU s)", r.caught_up_s, r.blocks_per_s, r.records_per_s, r.cpu_s);
    println!("  next block after       {:>10.3} s", r.resumed_s);
    if let Some(n) = r.reexecuted_blocks {
        println!("  blocks re-executed on opening: {n}");
    }
    Ok(())
}
