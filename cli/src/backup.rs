//! `plaza backup` and `plaza restore`: a node home copied whole, its store as a consistent
//! RocksDB checkpoint taken while the node runs (docs/NODE.md, "Backup and restore").
//!
//! A backup holds the home's secrets (the merchant and network keys, the API token): it is
//! created owner-only (0700). Both commands write a directory that did not exist and remove
//! it again if they fail halfway.

use std::path::{Path, PathBuf};

use clap::Args;
use plaza_ledger::store::Store;
use plaza_node::Home;
use serde_json::json;

use crate::output::{ctx, print_json, CliError, CliResult};

#[derive(Args)]
#[command(after_help = "Example: plaza backup --home ./hotpot -o /backups/hotpot-2026-12-02")]
pub struct BackupArgs {
    /// The node home to back up; its node may be running.
    #[arg(long)]
    pub home: PathBuf,
    /// The backup directory to create (it must not exist).
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
#[command(after_help = "Example: plaza restore /backups/hotpot-2026-12-02 --home ./hotpot-restored")]
pub struct RestoreArgs {
    /// A directory written by `plaza backup`.
    pub backup: PathBuf,
    /// The node home to create (it must not exist, or be empty).
    #[arg(long)]
    pub home: PathBuf,
    #[arg(long)]
    pub json: bool,
}

/// The home's files a backup carries besides the store (`data/`); the optional ones may be absent.
const FILES: [(&str, bool); 6] =
    [("config.toml", true), ("genesis.bin", true), ("api-token", true), ("keys/merchant.key", true), ("keys/network.key", true), ("clock-offset-ms", false)];

/// Removes a directory this command created unless it finished.
struct Made {
    dir: PathBuf,
    done: bool,
}

impl Drop for Made {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(ctx(format!("creating {}", dir.display())))
}

fn copy_files(from: &Path, to: &Path) -> Result<(), CliError> {
    create_private_dir(&to.join("keys"))?;
    for (name, required) in FILES {
        let source = from.join(name);
        if !source.exists() {
            if required {
                return Err(CliError::new(format!("{} has no {name}: not a whole node home (or backup)", from.display())));
            }
            continue;
        }
        // `fs::copy` keeps the permission bits: the keys and the token stay 0600.
        std::fs::copy(&source, to.join(name)).map_err(ctx(format!("copying {}", source.display())))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path).map_err(ctx(format!("{}", path.display())))
}

pub fn backup(args: BackupArgs) -> CliResult {
    let home = Home::new(&args.home);
    if !home.config().exists() {
        return Err(CliError::new(format!("{} is not a node home (no config.toml)", args.home.display())));
    }
    if std::fs::symlink_metadata(&args.output).is_ok() {
        return Err(CliError::new(format!("{} exists already; give a new directory", args.output.display())));
    }
    let output = absolute(&args.output)?;
    create_private_dir(&output)?;
    let mut made = Made { dir: output.clone(), done: false };
    copy_files(&args.home, &output)?;
    let data = output.join("data");
    // A stopped node: take its lock and checkpoint the store here. A running one holds the
    // lock: it checkpoints its open store itself, through its API (node token).
    let (height, running) = match home.lock() {
        Ok(_lock) => {
            let store = Store::open(&home.data()).map_err(ctx(format!("opening the store of {}", args.home.display())))?;
            store.checkpoint(&data).map_err(ctx("checkpoint"))?;
            (store.tip_height().map_err(ctx("the store's tip"))?, false)
        }
        Err(_) => {
            let conn = crate::node::Connection { home: Some(args.home.clone()), api: String::new(), token: None, json: false };
            let client = conn.client()?;
            let answer = client.post("/v1/admin/backup", &json!({"dir": data.display().to_string()}))?.ok_json()?;
            (answer.get("height").and_then(serde_json::Value::as_u64).unwrap_or(0), true)
        }
    };
    made.done = true;
    if args.json {
        print_json(&json!({"backup": output.display().to_string(), "height": height, "node_was_running": running}));
    } else {
        let how = if running { "taken from the running node" } else { "of the stopped node" };
        println!("backup of {} at height {height} ({how}) in {}", args.home.display(), output.display());
        println!("it holds the node's keys and API token: keep it as safe as the home itself");
    }
    Ok(())
}

pub fn restore(args: RestoreArgs) -> CliResult {
    let backup = &args.backup;
    if !backup.join("data").join("CURRENT").exists() {
        return Err(CliError::new(format!("{} is not a backup made by `plaza backup` (no data/CURRENT)", backup.display())));
    }
    if let Ok(mut entries) = std::fs::read_dir(&args.home) {
        if entries.next().is_some() {
            return Err(CliError::new(format!("{} exists and is not empty; give a new directory", args.home.display())));
        }
        std::fs::remove_dir(&args.home).map_err(ctx(format!("{}", args.home.display())))?;
    }
    let genesis = crate::genesis::read_genesis_file(&backup.join("genesis.bin"))?;
    create_private_dir(&args.home)?;
    let mut made = Made { dir: args.home.clone(), done: false };
    copy_files(backup, &args.home)?;
    // The store through a checkpoint of the backup's: the backup stays untouched.
    let source = Store::open(&backup.join("data")).map_err(ctx(format!("opening the store of the backup {}", backup.display())))?;
    if source.alliance_id() != genesis.alliance_id() {
        return Err(CliError::new(format!("the backup's store is of alliance {}, its genesis.bin of {}", source.alliance_id(), genesis.alliance_id())));
    }
    source.checkpoint(&args.home.join("data")).map_err(ctx("copying the store"))?;
    drop(source);
    let store = Store::open(&args.home.join("data")).map_err(ctx("opening the restored store"))?;
    let height = store.tip_height().map_err(ctx("the restored store's tip"))?;
    let tip = store.tip_id().map_err(ctx("the restored store's tip"))?;
    drop(store);
    made.done = true;
    if args.json {
        print_json(&json!({"home": args.home.display().to_string(), "alliance_id": genesis.alliance_id().to_hex(), "height": height, "tip": tip.to_hex()}));
    } else {
        println!("restored {} into {}: alliance {}, height {height}, tip {tip}", backup.display(), args.home.display(), genesis.alliance_id());
        println!("start it with: plaza start --home {} (never while the original node runs: it has the same keys)", args.home.display());
    }
    Ok(())
}
