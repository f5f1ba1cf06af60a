//! `plaza keys`: merchant and network keys in owner-only files.

use std::io::Read;
use std::path::PathBuf;

use clap::Subcommand;
use plaza_ledger::Keypair;

use crate::output::{ctx, print_json, CliError, CliResult};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a new ed25519 key pair into a file readable only by you (0600): a merchant key,
    /// or a node's network key (the same kind of key; the genesis lists its public key as the
    /// member's `network_key`).
    #[command(after_help = "Examples:\n  plaza keys new -o merchant.key\n  plaza keys new -o network.key    # a node's network key")]
    New {
        /// Where to write the key; never overwrites an existing file.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Show the public key of a key file.
    #[command(after_help = "Example: plaza keys show merchant.key --json")]
    Show {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Import a secret key (64 hex digits) read from standard input.
    #[command(after_help = "Example: plaza keys import -o merchant.key < secret.hex")]
    Import {
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Any key can be a merchant key or a network key; as a network key its libp2p peer id is
/// what other nodes' `--peer /ip4/…/tcp/…/p2p/<peer id>` names.
fn print_key(keypair: &Keypair, file: &std::path::Path, json: bool) {
    let peer_id = plaza_node::net::peer_id_of(&keypair.public()).map(|p| p.to_string()).unwrap_or_default();
    if json {
        print_json(&serde_json::json!({ "public_key": keypair.public().to_hex(), "file": file.display().to_string(), "peer_id": peer_id }));
    } else {
        println!("public key {}  ({})", keypair.public().to_hex(), file.display());
        println!("peer id    {peer_id}  (as a network key)");
    }
}

pub fn run(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::New { output, json } => {
            let keypair = Keypair::generate();
            keypair.save(&output).map_err(ctx("keys new"))?;
            print_key(&keypair, &output, json);
        }
        KeysCommand::Show { file, json } => {
            let keypair = Keypair::load(&file).map_err(ctx("keys show"))?;
            print_key(&keypair, &file, json);
        }
        KeysCommand::Import { output, json } => {
            let mut text = String::new();
            std::io::stdin().take(1024).read_to_string(&mut text).map_err(ctx("reading the secret key from standard input"))?;
            let secret: [u8; 32] = hex::decode(text.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| CliError::new("keys import: standard input must hold a 32-byte secret key as 64 hex digits"))?;
            let keypair = Keypair::from_secret(&secret).map_err(ctx("keys import"))?;
            keypair.save(&output).map_err(ctx("keys import"))?;
            print_key(&keypair, &output, json);
        }
    }
    Ok(())
}
