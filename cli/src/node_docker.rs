//! `plaza testnet --docker`: the container testnet's arguments and what it prints; the runner
//! is `plaza_testnet::docker` (and `testnet/docker/run` builds the image and calls this).

use plaza_testnet::docker::{run as run_docker, DockerPlan, Manifest};
use plaza_testnet::local::{default_dir, interrupt_flag};

use crate::node_testnet::{from_testnet, this_binary, TestnetArgs};
use crate::output::{ctx, print_json, CliError, CliResult};

pub fn run(args: TestnetArgs) -> CliResult {
    if args.demo {
        return Err(CliError::new("--demo runs on the local testnet, not with --docker"));
    }
    let image = args.image.clone().ok_or_else(|| CliError::new("--docker needs --image (see testnet/docker/run)"))?;
    let mut manifest = match &args.manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(ctx(format!("reading {}", path.display())))?;
            Manifest::from_toml(&text).map_err(from_testnet)?
        }
        None => Manifest::default(),
    };
    if let Some(n) = args.nodes {
        manifest.nodes = n;
    }
    if let Some(seed) = args.seed {
        manifest.seed = seed;
    }
    if let Some(id) = &args.run_id
        && (id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(CliError::new("--run-id must be 1 to 32 letters or digits"));
    }
    let plan = DockerPlan {
        manifest,
        image,
        binary: this_binary()?,
        dir: args.dir.clone().unwrap_or_else(|| default_dir("docker")),
        run_id: args.run_id.clone(),
    };
    let stop = interrupt_flag();
    let json_out = args.json;
    let report = run_docker(&plan, &stop, &mut |line| if !json_out { println!("{line}") } else { eprintln!("{line}") }).map_err(from_testnet)?;
    if json_out {
        print_json(&serde_json::to_value(&report).map_err(ctx("the report"))?);
        return Ok(());
    }
    println!();
    println!("records acknowledged final: {} (of {} submitted; {} requests failed during perturbations)", report.records_acknowledged, report.records_submitted, report.failed_requests);
    println!("records lost:               {}", report.records_lost);
    let kinds: Vec<String> = report.perturbations_by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!("perturbations survived:     {} ({})", report.perturbations.len(), kinds.join(", "));
    println!("time to recover:            median {:.2} s, max {:.2} s", report.recover_ms_median as f64 / 1000.0, report.recover_ms_max as f64 / 1000.0);
    println!("all {} nodes: same chain to height {} (tip {}), same state roots and {} statements", report.nodes, report.height, report.tip, report.statements);
    println!("no panic in any log; plaza verify passed on node 0's export ({} blocks); {:.0} s in all (seed {})", report.verified_export_blocks, report.run_seconds, report.seed);
    Ok(())
}
