//! `plaza genesis`: the organiser's TOML into the canonical genesis and the alliance id.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::genesis::{Genesis, GENESIS_BYTES_MAX};

use crate::output::{ctx, print_json, CliError, CliResult};

/// The documented example, with every policy default.
pub const EXAMPLE: &str = include_str!("../../docs/genesis.example.toml");

#[derive(Subcommand)]
pub enum GenesisCommand {
    /// Validate a genesis TOML and write the canonical genesis file.
    #[command(after_help = "Example: plaza genesis new alliance.toml -o genesis.bin")]
    New {
        /// The organiser's TOML (see `plaza genesis example`).
        file: PathBuf,
        /// Where to write the canonical genesis.
        #[arg(short, long, default_value = "genesis.bin")]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the documented example genesis TOML.
    #[command(after_help = "Example: plaza genesis example > alliance.toml")]
    Example,
    /// Show what a canonical genesis file holds.
    #[command(after_help = "Example: plaza genesis show genesis.bin --json")]
    Show {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

pub fn read_genesis_file(path: &Path) -> Result<Genesis, CliError> {
    let bytes = std::fs::read(path).map_err(ctx(format!("reading {}", path.display())))?;
    // The encoding has no magic number (the alliance id hashes it), so say plainly what the
    // decoder's first complaint means.
    Genesis::from_bytes(&bytes, GENESIS_BYTES_MAX)
        .map_err(|e| CliError::new(format!("{} is not a Plaza genesis (not a genesis file made by `plaza genesis new`): {e}", path.display())))
}

fn describe(genesis: &Genesis, json: bool) {
    let validators: Vec<String> = genesis.validators.validators().iter().map(|v| v.key.to_hex()).collect();
    if json {
        let members: Vec<serde_json::Value> = genesis
            .members
            .iter()
            .map(|m| serde_json::json!({ "name": m.name, "key": m.key.to_hex(), "category": m.category, "district": m.district }))
            .collect();
        print_json(&serde_json::json!({
            "alliance_id": genesis.alliance_id().to_hex(),
            "name": genesis.name,
            "currency": genesis.currency,
            "utc_offset_minutes": genesis.utc_offset_minutes,
            "time_ms": genesis.time_ms,
            "members": members,
            "validators": validators,
            "promoters": genesis.promoters.iter().map(|p| serde_json::json!({"id": p.id.as_str(), "name": p.name, "upstream": p.upstream.as_ref().map(|u| u.as_str())})).collect::<Vec<_>>(),
        }));
    } else {
        println!("alliance   {}", genesis.name);
        println!("id         {}", genesis.alliance_id());
        println!("currency   {}   time zone UTC{:+}:{:02}", genesis.currency, genesis.utc_offset_minutes / 60, genesis.utc_offset_minutes.abs() % 60);
        println!("members    {}   validators {}   quorum {}", genesis.members.len(), validators.len(), genesis.validators.quorum());
        for m in &genesis.members {
            let role = if genesis.validators.contains(&m.key) { "validator" } else { "member" };
            println!("  {:<28} {:<12} {:<10} {}", m.name, m.category, role, m.key);
        }
        if !genesis.promoters.is_empty() {
            println!("promoters  {}", genesis.promoters.len());
            for p in &genesis.promoters {
                let upstream = p.upstream.as_ref().map(|u| format!("upstream {u}")).unwrap_or_default();
                println!("  {:<28} {:<16} {}", p.name, p.id, upstream);
            }
        }
    }
}

pub fn run(command: GenesisCommand) -> CliResult {
    match command {
        GenesisCommand::New { file, output, json } => {
            let text = std::fs::read_to_string(&file).map_err(ctx(format!("reading {}", file.display())))?;
            let genesis = Genesis::from_toml(&text).map_err(ctx(file.display().to_string()))?;
            if output.exists() {
                return Err(CliError::new(format!("{} exists already; remove it or choose another -o", output.display())));
            }
            std::fs::write(&output, genesis.to_bytes()).map_err(ctx(format!("writing {}", output.display())))?;
            describe(&genesis, json);
            if !json {
                println!("wrote {}", output.display());
            }
        }
        GenesisCommand::Example => print!("{EXAMPLE}"),
        GenesisCommand::Show { file, json } => describe(&read_genesis_file(&file)?, json),
    }
    Ok(())
}
