//! `plaza init`: a node home with its config, keys, genesis and an empty store.

use std::path::{Path, PathBuf};

use clap::Args;
use plaza_ledger::codec::Encode;
use plaza_ledger::store::Store;
use plaza_ledger::Keypair;
use plaza_node::config::NodeConfig;

use crate::genesis::read_genesis_file;
use crate::output::{ctx, print_json, CliError, CliResult};

#[derive(Args)]
pub struct InitArgs {
    /// The node home to create.
    #[arg(long)]
    pub home: PathBuf,
    /// The alliance's canonical genesis (from `plaza genesis new`).
    #[arg(long)]
    pub genesis: PathBuf,
    /// The merchant's key file (from `plaza keys new`); the node signs records and votes with it.
    #[arg(long)]
    pub key: PathBuf,
    /// The node's network key; generated when absent.
    #[arg(long)]
    pub network_key: Option<PathBuf>,
    /// The libp2p listen address.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/7100")]
    pub listen: String,
    /// The HTTP API address (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7180")]
    pub api: String,
    /// Peers to dial, as multiaddrs; repeat the flag for several.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

/// What `init` created.
pub struct InitOutcome {
    pub home: PathBuf,
    pub merchant: plaza_ledger::PublicKey,
    pub network: plaza_ledger::PublicKey,
}

fn copy_key(from: &Path, to: &Path) -> Result<Keypair, CliError> {
    let keypair = Keypair::load(from).map_err(ctx("init"))?;
    Keypair::from_secret(&keypair.secret_bytes()).map_err(ctx("init"))?.save(to).map_err(ctx("init"))?;
    Ok(keypair)
}

/// Creates a node home. Refuses a directory that already holds one.
///
/// Example: plaza init --home ./hotpot --genesis genesis.bin --key merchant.key --peer /ip4/127.0.0.1/tcp/7101
pub fn init_home(args: &InitArgs) -> Result<InitOutcome, CliError> {
    let genesis = read_genesis_file(&args.genesis)?;
    let home = &args.home;
    if home.join("config.toml").exists() {
        return Err(CliError::new(format!("{} is already a node home (config.toml exists)", home.display())));
    }
    let keys_dir = home.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(ctx(format!("creating {}", keys_dir.display())))?;
    let merchant = copy_key(&args.key, &keys_dir.join("merchant.key"))?;
    if !genesis.members.iter().any(|m| m.key == merchant.public()) {
        return Err(CliError::new(format!("the merchant key {} is not a member of this alliance's genesis", merchant.public())));
    }
    let network = match &args.network_key {
        Some(path) => copy_key(path, &keys_dir.join("network.key"))?,
        None => {
            let kp = Keypair::generate();
            kp.save(&keys_dir.join("network.key")).map_err(ctx("init"))?;
            kp
        }
    };
    let api_token = hex::encode(Keypair::generate().secret_bytes());
    write_private(&home.join("api-token"), api_token.as_bytes())?;
    std::fs::write(home.join("genesis.bin"), genesis.to_bytes()).map_err(ctx("writing genesis.bin"))?;
    let config = NodeConfig { listen: args.listen.clone(), api: args.api.clone(), peers: args.peers.clone(), ..NodeConfig::default() };
    std::fs::write(home.join("config.toml"), config.to_toml()).map_err(ctx("writing config.toml"))?;
    Store::create(&home.join("data"), &genesis).map_err(ctx("creating the store"))?;
    Ok(InitOutcome { home: home.clone(), merchant: merchant.public(), network: network.public() })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(ctx(format!("creating {}", path.display())))?;
    file.write_all(bytes).map_err(ctx(format!("writing {}", path.display())))
}

pub fn run(args: InitArgs) -> CliResult {
    let outcome = init_home(&args)?;
    if args.json {
        print_json(&serde_json::json!({
            "home": outcome.home.display().to_string(),
            "merchant": outcome.merchant.to_hex(),
            "network_key": outcome.network.to_hex(),
        }));
    } else {
        println!("node home {} ready", outcome.home.display());
        println!("merchant  {}", outcome.merchant);
        println!("network   {}", outcome.network);
        println!("start it with: plaza start --home {}", outcome.home.display());
    }
    Ok(())
}
