//! `plaza init`: a node home with its config, keys, genesis and an empty store.
//!
//! Everything that can be checked is checked before anything is written (the genesis, both
//! keys, membership, addresses); whatever `init` created is removed again if a later step
//! fails, so a corrected retry starts from a clean slate.
//!
//! Membership: a merchant in the genesis, or one admitted later by a passed vote, read from a
//! synced member node's API (`--members-from-node`) or from a chain export
//! (`--members-from-export`, verified and replayed here).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clap::Args;
use plaza_ledger::audit::export::ExportReader;
use plaza_ledger::audit::verify::{verify_chain, Start, VerifyOptions};
use plaza_ledger::audit::BlockEntry;
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::{MerchantStatus, State};
use plaza_ledger::genesis::Genesis;
use plaza_ledger::store::Store;
use plaza_ledger::{Keypair, PublicKey};
use plaza_node::client::Client;
use plaza_node::config::NodeConfig;
use serde_json::Value;

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
    /// The node's network key file: the key whose public key the genesis lists as this
    /// member's `network_key` (checked); generated when the alliance lists none.
    #[arg(long)]
    pub network_key: Option<PathBuf>,
    /// Take the --network-key given (or a new one) although the alliance lists another for
    /// this merchant: the other nodes will refuse this node (tests of exactly that).
    #[arg(long)]
    pub unlisted_network_key: bool,
    /// A read-only observer node (an auditor's): `--key` is the observer's own key, no member's;
    /// it syncs and serves blocks but never votes or accepts submissions. Each member admits
    /// its network key by listing it under `observers` in its config.toml (docs/AUDIT.md).
    #[arg(long, conflicts_with_all = ["members_from_node", "members_from_export"])]
    pub observer: bool,
    /// The libp2p listen address.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/7100")]
    pub listen: String,
    /// The HTTP API address (loopback by default; any other address serves the network, with a warning).
    #[arg(long, default_value = "127.0.0.1:7180")]
    pub api: String,
    /// Peers to dial, as multiaddrs; repeat the flag for several.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// A merchant admitted after genesis: read the current membership from this synced node's API (host:port).
    #[arg(long, value_name = "ADDR", conflicts_with = "members_from_export")]
    pub members_from_node: Option<String>,
    /// A merchant admitted after genesis: read the current membership from a chain export (`plaza export`), verified here.
    #[arg(long, value_name = "FILE")]
    pub members_from_export: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

/// What `init` created.
pub struct InitOutcome {
    pub home: PathBuf,
    pub merchant: plaza_ledger::PublicKey,
    pub network: plaza_ledger::PublicKey,
    /// The libp2p peer id of the network key: what other nodes' `--peer` needs.
    pub peer_id: String,
    /// The listen address with the peer id: give it to the others as `--peer`.
    pub peer_address: String,
    pub observer: bool,
}

/// Paths `init` created, removed in reverse order unless [`Created::keep`] is called.
struct Created {
    paths: Vec<PathBuf>,
    kept: bool,
}

impl Created {
    fn dir(&mut self, path: &Path) -> Result<(), CliError> {
        if path.is_dir() {
            return Ok(());
        }
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            self.dir(parent)?;
        }
        std::fs::create_dir(path).map_err(ctx(format!("creating {}", path.display())))?;
        self.paths.push(path.to_owned());
        Ok(())
    }
    /// Writes `path` (which did not exist); registered even when the write failed halfway.
    fn file(&mut self, path: &Path, write: impl FnOnce(&Path) -> Result<(), CliError>) -> Result<(), CliError> {
        let result = write(path);
        if std::fs::symlink_metadata(path).is_ok() {
            self.paths.push(path.to_owned());
        }
        result
    }
    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for path in self.paths.iter().rev() {
            let _ = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
        }
    }
}

/// Where the alliance's current membership comes from.
fn membership_source(args: &InitArgs) -> &'static str {
    match (&args.members_from_node, &args.members_from_export) {
        (Some(_), _) => "the node's current membership",
        (None, Some(_)) => "the export's current membership",
        (None, None) => "this alliance's genesis",
    }
}

/// An active member per the chosen source, with the network key it lists for the member
/// (`Some(None)`: a member with no network key listed); `None` when `key` is no active member.
fn member_network_key(args: &InitArgs, genesis: &Genesis, key: &PublicKey) -> Result<Option<Option<PublicKey>>, CliError> {
    if let Some(addr) = &args.members_from_node {
        return member_per_node(addr, genesis, key);
    }
    if let Some(path) = &args.members_from_export {
        let state = state_from_export(path, genesis)?;
        return Ok(match state.merchant(key) {
            Some((profile, MerchantStatus::Active)) => Some(profile.network_key),
            _ => None,
        });
    }
    Ok(genesis.members.iter().find(|m| m.key == *key).map(|m| m.network_key))
}

fn member_per_node(addr: &str, genesis: &Genesis, key: &PublicKey) -> Result<Option<Option<PublicKey>>, CliError> {
    let socket = addr.parse().map_err(|e| CliError::new(format!("--members-from-node {addr:?}: not a host:port address: {e}")))?;
    let client = Client::new(socket, None);
    let status = client.get("/v1/status")?.ok_json()?;
    let alliance = status.get("alliance_id").and_then(Value::as_str).unwrap_or("");
    if alliance != genesis.alliance_id().to_hex() {
        return Err(CliError::new(format!("the node at {addr} serves alliance {alliance}, not this genesis's {}", genesis.alliance_id())));
    }
    let merchants = client.get("/v1/merchants")?.ok_json()?;
    let list = merchants.get("merchants").and_then(Value::as_array).ok_or_else(|| CliError::new(format!("the node at {addr} listed no merchants")))?;
    let hex = key.to_hex();
    let Some(entry) = list.iter().find(|m| m.get("key").and_then(Value::as_str) == Some(hex.as_str()) && m.get("status").and_then(Value::as_str) == Some("active"))
    else {
        return Ok(None);
    };
    let network = match entry.get("network_key").and_then(Value::as_str) {
        Some(h) => Some(PublicKey::from_hex(h).map_err(|e| CliError::new(format!("the node at {addr} lists a bad network key for {key}: {e}")))?),
        None => None,
    };
    Ok(Some(network))
}

/// The node's network key: the one the alliance lists for this merchant, checked; a new one
/// when it lists none (or `--unlisted-network-key` says to take whatever is given).
fn choose_network_key(args: &InitArgs, listed: Option<PublicKey>, merchant: &PublicKey) -> Result<Keypair, CliError> {
    let source = membership_source(args);
    let how = "a network key is made like any key, `plaza keys new -o network.key`, and `plaza keys show network.key` prints the public key the organiser lists as the member's network_key in the genesis TOML";
    match (&args.network_key, listed) {
        (Some(path), listed) => {
            let network = Keypair::load(path).map_err(ctx("init"))?;
            if let Some(listed) = listed
                && network.public() != listed
                && !args.unlisted_network_key
            {
                return Err(CliError::new(format!(
                    "the network key in {} is {}, but {source} lists {listed} for merchant {merchant}: the other nodes would refuse this node; give the key file whose public key is {listed} ({how})",
                    path.display(),
                    network.public()
                )));
            }
            Ok(network)
        }
        (None, Some(listed)) if !args.unlisted_network_key => Err(CliError::new(format!(
            "{source} lists network key {listed} for merchant {merchant}: give --network-key FILE, the key file with that public key ({how})"
        ))),
        (None, _) => Ok(Keypair::generate()),
    }
}

/// Verifies an export of this alliance's chain and replays it to its final state.
fn state_from_export(path: &Path, genesis: &Genesis) -> Result<State, CliError> {
    let open = || -> Result<ExportReader<BufReader<File>>, CliError> {
        let file = File::open(path).map_err(ctx(format!("opening {}", path.display())))?;
        ExportReader::open(BufReader::new(file)).map_err(|f| CliError::new(format!("{} is not a usable export: {f}", path.display())))
    };
    let mut reader = open()?;
    if reader.genesis().alliance_id() != genesis.alliance_id() {
        return Err(CliError::new(format!("{} is an export of alliance {}, not of this genesis's {}", path.display(), reader.genesis().alliance_id(), genesis.alliance_id())));
    }
    let start = reader.take_start();
    let report = verify_chain(genesis, start, reader, &VerifyOptions::default(), &mut |_| {});
    if let Some(failure) = report.failure {
        return Err(CliError::verification(format!("{} does not verify: {failure}", path.display())));
    }
    // Verified: replay it for the state (the verifier keeps none).
    let mut reader = open()?;
    let mut state = match reader.take_start() {
        Start::Genesis => State::from_genesis(genesis),
        Start::Checkpoint(checkpoint) => checkpoint.state,
    };
    while let Some(item) = reader.next_block_bytes() {
        let (bytes, at) = item.map_err(|f| CliError::new(f.to_string()))?;
        let entry = BlockEntry::from_bytes(&bytes, bytes.len()).map_err(|e| CliError::new(format!("block frame at export byte {at}: {e}")))?;
        let block = &entry.block.block;
        state.apply_block(block.header.time_ms, &block.records).map_err(|e| CliError::new(format!("replaying block {}: {e}", block.header.height)))?;
    }
    Ok(state)
}

/// Creates a node home. Refuses a directory that already holds one.
///
/// Example: plaza init --home ./hotpot --genesis genesis.bin --key merchant.key --peer /ip4/127.0.0.1/tcp/7101
pub fn init_home(args: &InitArgs) -> Result<InitOutcome, CliError> {
    // 1. Check everything before writing anything.
    let genesis = read_genesis_file(&args.genesis)?;
    let home = &args.home;
    if home.join("config.toml").exists() {
        return Err(CliError::new(format!("{} is already a node home (config.toml exists)", home.display())));
    }
    for existing in ["keys/merchant.key", "keys/network.key", "api-token", "genesis.bin", "data"] {
        if home.join(existing).exists() {
            return Err(CliError::new(format!("{} already holds {existing}; give an empty or new directory", home.display())));
        }
    }
    let merchant = Keypair::load(&args.key).map_err(ctx("init"))?;
    let network = if args.observer {
        // An observer (an auditor) signs nothing the alliance accepts: its own key, any network
        // key; the members admit its network key read-only (`observers` in their config).
        match &args.network_key {
            Some(path) => Keypair::load(path).map_err(ctx("init"))?,
            None => Keypair::generate(),
        }
    } else {
        let Some(listed) = member_network_key(args, &genesis, &merchant.public())? else {
            return Err(CliError::new(format!(
                "the merchant key {} is not an active member in {} (an auditor's node without membership: plaza init --observer)",
                merchant.public(),
                membership_source(args)
            )));
        };
        choose_network_key(args, listed, &merchant.public())?
    };
    let config = NodeConfig {
        listen: args.listen.clone(),
        api: args.api.clone(),
        peers: args.peers.clone(),
        observer: args.observer,
        ..NodeConfig::default()
    };
    config.validate().map_err(|e| CliError::new(e.replace("config.toml: ", "")))?;
    if let Some(warning) = plaza_node::limits::public_api_warning(&config.api) {
        eprintln!("warning: {warning}");
    }
    // 2. Write; on any failure remove what was written.
    let mut created = Created { paths: Vec::new(), kept: false };
    let keys_dir = home.join("keys");
    created.dir(&keys_dir)?;
    created.file(&keys_dir.join("merchant.key"), |path| save_key(&merchant, path))?;
    created.file(&keys_dir.join("network.key"), |path| save_key(&network, path))?;
    let api_token = hex::encode(Keypair::generate().secret_bytes());
    created.file(&home.join("api-token"), |p| write_private(p, api_token.as_bytes()))?;
    created.file(&home.join("genesis.bin"), |p| std::fs::write(p, genesis.to_bytes()).map_err(ctx("writing genesis.bin")))?;
    created.file(&home.join("data"), |p| Store::create(p, &genesis).map(drop).map_err(ctx("creating the store")))?;
    // The config last: its presence marks a finished home.
    created.file(&home.join("config.toml"), |p| std::fs::write(p, config.to_toml()).map_err(ctx("writing config.toml")))?;
    created.keep();
    let peer_id = plaza_node::net::peer_id_of(&network.public()).map(|p| p.to_string()).unwrap_or_default();
    let peer_address = format!("{}/p2p/{peer_id}", args.listen.trim_end_matches('/'));
    Ok(InitOutcome { home: home.clone(), merchant: merchant.public(), network: network.public(), peer_id, peer_address, observer: args.observer })
}

fn save_key(keypair: &Keypair, path: &Path) -> Result<(), CliError> {
    Keypair::from_secret(&keypair.secret_bytes()).map_err(ctx("init"))?.save(path).map_err(ctx("init"))
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
            "peer_id": outcome.peer_id,
            "peer_address": outcome.peer_address,
            "observer": outcome.observer,
        }));
    } else {
        let kind = if outcome.observer { "observer node home" } else { "node home" };
        println!("{kind} {} ready", outcome.home.display());
        println!("merchant  {}", outcome.merchant);
        println!("network   {}", outcome.network);
        println!("peer id   {}", outcome.peer_id);
        println!("the other nodes dial it with: --peer {}", outcome.peer_address);
        if outcome.peer_address.contains("/0.0.0.0/") || outcome.peer_address.contains("/tcp/0/") {
            println!("  (put this machine's address and the real port in place of 0.0.0.0 or port 0)");
        }
        if outcome.observer {
            println!("each member admits it read-only by adding to its config.toml: observers = [\"{}\"]", outcome.network.to_hex());
        }
        println!("start it with: plaza start --home {}", outcome.home.display());
    }
    Ok(())
}
