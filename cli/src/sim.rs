//! `plaza sim`: the seeded consensus simulator over any number of seeds.

use clap::Args;
use plaza_testnet::sim::{run, run_seeds, SimOptions};

use crate::output::{print_json, CliError, CliResult};

#[derive(Args)]
pub struct SimArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed (a failure prints its seed; `--from S --seeds 1` replays it).
    #[arg(long, default_value_t = 0)]
    from: u64,
    /// Replay exactly one seed and print what it found.
    #[arg(long, conflicts_with_all = ["seeds", "from"])]
    seed: Option<u64>,
    /// The validator-change scenario: members vote three validators in and out again (n = 4 → 7 → 4).
    #[arg(long)]
    epochs: bool,
    #[arg(long)]
    json: bool,
}

/// Example: plaza sim --seeds 100000
pub fn run_command(args: SimArgs) -> CliResult {
    let options = if args.epochs { SimOptions::epochs() } else { SimOptions::default() };
    if let Some(seed) = args.seed {
        let report = run(seed, &options);
        if args.json {
            print_json(&serde_json::json!({
                "seed": seed,
                "scenario": report.scenario.to_string(),
                "trace_hash": report.trace_hash.to_hex(),
                "finalized_height_min": report.finalized_height_min,
                "views_max": report.views_max,
                "messages": report.messages,
                "epoch_min": report.epoch_min,
                "violations": report.violations,
            }));
        } else {
            println!("{}", report.scenario);
            println!(
                "trace {}  finalized height ≥ {}  views ≤ {}  messages {}  epoch ≥ {}",
                report.trace_hash, report.finalized_height_min, report.views_max, report.messages, report.epoch_min
            );
            for v in &report.violations {
                println!("VIOLATION {v}");
            }
        }
        return if report.violations.is_empty() {
            Ok(())
        } else {
            Err(CliError::verification(format!("seed {seed} violates {} check(s)", report.violations.len())))
        };
    }
    let end = args.from.checked_add(args.seeds).ok_or_else(|| CliError::new("--from + --seeds overflows"))?;
    let summary = run_seeds(&options, args.from..end, !args.json);
    if args.json {
        let failures: Vec<serde_json::Value> =
            summary.failures.iter().map(|f| serde_json::json!({ "seed": f.scenario.seed, "scenario": f.scenario.to_string(), "violations": f.violations })).collect();
        print_json(&serde_json::json!({
            "runs": summary.runs,
            "failures": failures,
            "finalized_blocks": summary.finalized_blocks,
            "messages": summary.messages,
            "elapsed_ms": summary.elapsed.as_millis() as u64,
        }));
    }
    if summary.passed() {
        Ok(())
    } else {
        Err(CliError::verification(format!("{} of {} seeded runs failed; the first failing seed is {}", summary.failures.len(), summary.runs, summary.failures[0].scenario.seed)))
    }
}
