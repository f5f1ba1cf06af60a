//! `plaza`: the command line of a Plaza merchant node, for merchants, auditors and integrators.
//!
//! Every command prints a one-line error and exits non-zero on failure, never a panic or a
//! backtrace; data-printing commands take `--json`.

mod audit;
mod backup;
mod genesis;
mod init;
mod keys;
mod nearby;
mod node;
mod node_docker;
mod node_testnet;
mod output;
mod render;
mod settle;
mod sim;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use output::CliError;

#[derive(Parser)]
#[command(
    name = "plaza",
    version,
    about = "Plaza: a shared ledger for merchant alliances",
    propagate_version = true,
    after_help = "Example: plaza testnet --nodes 1 --dir /tmp/plaza-dev"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, show or import ed25519 keys.
    #[command(subcommand, after_help = "Example: plaza keys new -o merchant.key")]
    Keys(keys::KeysCommand),
    /// Turn an organiser's genesis TOML into the alliance's genesis.
    #[command(subcommand, after_help = "Example: plaza genesis new alliance.toml -o genesis.bin")]
    Genesis(genesis::GenesisCommand),
    /// Create a node home: config, keys, genesis and an empty store.
    #[command(after_help = "Examples:\n  plaza init --home ./hotpot --genesis genesis.bin --key hotpot.key --network-key hotpot-network.key --peer /ip4/10.0.0.2/tcp/7100/p2p/12D3KooW…\n  plaza init --observer --home ./observer --genesis genesis.bin --key auditor.key --peer /ip4/10.0.0.2/tcp/7100/p2p/12D3KooW…")]
    Init(init::InitArgs),
    /// Run a node.
    #[command(after_help = "Example: plaza start --home ./hotpot")]
    Start(node::StartArgs),
    /// Sign and submit a record to a node.
    Submit(node::SubmitArgs),
    /// Ask a node about records, blocks, merchants, cards, balances, statements.
    Query(node::QueryArgs),
    /// Start N local nodes on loopback; with --demo, play an alliance day on them.
    #[command(after_help = "Example: plaza testnet --nodes 4 --demo --dir /tmp/alliance")]
    Testnet(node::TestnetArgs),
    /// Benchmark a local testnet against the ed25519 verification ceiling.
    #[command(after_help = "Examples:\n  plaza bench --nodes 4 --json\n  plaza bench --catch-up --records 50000     # block sync of a node that missed them\n  plaza bench --restart --nodes 1 --records 1000000\n  plaza bench --rates 8000,12000 --node-binary ./plaza-before   # the same load on an earlier build")]
    Bench(node::BenchArgs),
    /// Recompute a settlement period offline from a node's store.
    #[command(after_help = "Example: plaza settle --home ./hotpot --period 3 --json")]
    Settle(settle::SettleArgs),
    /// Verify a whole chain from a node's store or an export file, with no network.
    #[command(after_help = "Example: plaza verify --export alliance.export --json")]
    Verify(audit::VerifyArgs),
    /// Write a self-contained export of the chain.
    #[command(after_help = "Example: plaza export --home ./hotpot -o alliance.export")]
    Export(audit::ExportArgs),
    /// Write a self-contained inclusion proof of one record.
    #[command(after_help = "Example: plaza proof 3f1c…e9 --home ./hotpot -o record.proof")]
    Proof(audit::ProofArgs),
    /// Check a proof written by `plaza proof`, offline.
    #[command(after_help = "Example: plaza verify-proof record.proof")]
    VerifyProof(audit::VerifyProofArgs),
    /// Back up a node home, its store as a consistent checkpoint (the node may be running).
    Backup(backup::BackupArgs),
    /// Restore a backup into a new node home.
    Restore(backup::RestoreArgs),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    #[command(after_help = "Examples:\n  plaza completions bash > ~/.local/share/bash-completion/completions/plaza\n  plaza completions zsh > ~/.zfunc/_plaza\n  plaza completions fish > ~/.config/fish/completions/plaza.fish")]
    Completions {
        shell: clap_complete::Shell,
    },
    /// Run the seeded consensus simulator over many seeds.
    #[command(after_help = "Example: plaza sim --seeds 100000 --from 0")]
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    output::install_panic_hook();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(c) => keys::run(c),
        Command::Genesis(c) => genesis::run(c),
        Command::Init(a) => init::run(a),
        Command::Start(a) => node::start(a),
        Command::Submit(c) => node::submit(c),
        Command::Query(c) => node::query(c),
        Command::Testnet(a) => node::testnet(a),
        Command::Bench(a) => node::bench(a),
        Command::Settle(a) => settle::run(a),
        Command::Verify(a) => audit::verify(a),
        Command::Export(a) => audit::export(a),
        Command::Proof(a) => audit::proof(a),
        Command::VerifyProof(a) => audit::verify_proof(a),
        Command::Backup(a) => backup::backup(a),
        Command::Restore(a) => backup::restore(a),
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "plaza", &mut out);
            output::print_bytes(&out);
            Ok(())
        }
        Command::Sim(a) => sim::run_command(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
