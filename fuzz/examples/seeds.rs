//! Writes the seed corpus, `fuzz/seeds/<target>/`, from real data: the pinned encoding
//! fixtures (ledger and consensus), a small chain built and executed by the ledger's own
//! `ChainBuilder` (sales with cards, a closed settlement period, certificates), its export
//! file and a record proof, docs/genesis.example.toml and the node's default configuration.
//!
//! `fuzz/run.sh --seeds` runs it; the output is deterministic, so the committed seeds change
//! only when an encoding does. Usage: `cargo run --release --example seeds -- <fuzz dir>`.

use std::fs;
use std::path::{Path, PathBuf};

use plaza_consensus::{Message, Proposal, Request};
use plaza_ledger::audit::chain::ChainBuilder;
use plaza_ledger::audit::export::ExportWriter;
use plaza_ledger::audit::proof::{Anchor, RecordProof};
use plaza_ledger::audit::verify::Checkpoint;
use plaza_ledger::cert::VoteTarget;
use plaza_ledger::codec::{Encode, Writer};
use plaza_ledger::merkle;
use plaza_ledger::record::Payload;
use plaza_ledger::Hash;
use plaza_node::json::{party_json, payload_json, place_json, PolicyJson, ProfileJson};
use plaza_node::net::{encode_records, SyncRequest, SyncResponse};
use plaza_node::NodeConfig;

struct Seeds {
    root: PathBuf,
    written: usize,
}

impl Seeds {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).expect("seed directory");
        fs::write(dir.join(name), bytes).expect("seed file");
        self.written += 1;
    }
    fn put_selected(&mut self, target: &str, selector: u8, name: &str, bytes: &[u8]) {
        let mut with = vec![selector];
        with.extend_from_slice(bytes);
        self.put(target, name, &with);
    }
}

/// `name hash hex` lines of a pinned fixture file.
fn fixture(path: &Path) -> Vec<(String, Vec<u8>)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?;
            let _hash = parts.next()?;
            let bytes = hex::decode(parts.next()?).ok()?;
            Some((name.to_owned(), bytes))
        })
        .collect()
}

fn main() {
    let fuzz = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let repo = fuzz.join("..");
    let root = fuzz.join("seeds");
    let _ = fs::remove_dir_all(&root);
    let mut s = Seeds { root, written: 0 };

    // The pinned fixtures.
    for (name, bytes) in fixture(&repo.join("ledger/tests/fixtures/encodings.txt")) {
        match name.as_str() {
            n if n.starts_with("record-") => s.put("record", n, &bytes),
            "genesis" => s.put("genesis", "fixture", &bytes),
            "block-header" => s.put_selected("block", 0, "fixture-header", &bytes),
            n if n.starts_with("vote-") => s.put_selected("certificate", 2, n, &bytes),
            "certificate" => s.put_selected("certificate", 3, "fixture", &bytes),
            "receipt-rejected" => s.put_selected("ledger_values", 0, "fixture-receipt", &bytes),
            n if n.starts_with("merkle-proof") => s.put_selected("ledger_values", 3, n, &bytes),
            _ => {}
        }
    }
    for (name, bytes) in fixture(&repo.join("consensus/tests/fixtures/messages.txt")) {
        s.put("consensus_message", &format!("fixture-{name}"), &bytes);
    }

    // A small real chain: 4 members, 4 validators, sales with cards, a period closed.
    let mut chain = ChainBuilder::new(4, 4);
    let genesis = chain.genesis().clone();
    let mut entries = Vec::new();
    for _ in 0..3 {
        let records = chain.sales(12);
        entries.push(chain.push(records).expect("a valid block"));
    }
    chain.advance(24 * 3600 * 1000);
    let records = chain.sales(3);
    entries.push(chain.push(records).expect("a block closing a period"));
    let set = genesis.validators.clone();

    s.put("genesis", "chain", &genesis.to_bytes());
    s.put_selected("certificate", 0, "set", &set.to_bytes());
    for (i, entry) in entries.iter().enumerate() {
        let fb = &entry.block;
        s.put_selected("block", 0, &format!("header-{i}"), &fb.block.header.to_bytes());
        s.put_selected("block", 1, &format!("block-{i}"), &fb.block.to_bytes());
        s.put_selected("block", 2, &format!("finalized-{i}"), &fb.to_bytes());
        s.put_selected("block", 3, &format!("entry-{i}"), &entry.to_bytes());
        s.put_selected("certificate", 3, &format!("finalize-{i}"), &fb.certificate.to_bytes());
        s.put_selected("certificate", 1, &format!("target-{i}"), &fb.certificate.target.to_bytes());
        let mut both = Writer::new();
        set.encode(&mut both);
        fb.certificate.encode(&mut both);
        s.put_selected("certificate", 4, &format!("set-and-certificate-{i}"), &both.into_bytes());
        for (j, record) in fb.block.records.iter().enumerate().take(3) {
            s.put("record", &format!("chain-{i}-{j}"), &record.to_bytes());
        }
        for (j, receipt) in entry.receipts.iter().enumerate().take(2) {
            s.put_selected("ledger_values", 0, &format!("receipt-{i}-{j}"), &receipt.to_bytes());
        }
        if let Some(statement) = &entry.statement {
            s.put_selected("ledger_values", 1, &format!("statement-{i}"), &statement.to_bytes());
        }
        let leaves: Vec<Hash> = fb.block.records.iter().map(|r| merkle::leaf_hash(r.id().as_bytes())).collect();
        if let Some(path) = merkle::prove(&leaves, leaves.len() / 2) {
            s.put_selected("ledger_values", 3, &format!("path-{i}"), &path.to_bytes());
        }
        let vote = fb.certificate.target;
        let signed = VoteTarget::notarize(0, vote.view, vote.block).sign(&chain.alliance(), chain.keypair(0));
        s.put_selected("certificate", 2, &format!("vote-{i}"), &signed.to_bytes());
        // Consensus messages carrying this block.
        let proposal = Proposal {
            view: fb.block.header.view,
            parent_view: fb.block.header.view - 1,
            parent: fb.block.header.parent,
            height: fb.block.header.height,
            block: fb.block.id(),
            payload: fb.block.to_bytes(),
            signature: signed.signature,
        };
        s.put("consensus_message", &format!("proposal-{i}"), &Message::Proposal(proposal).to_bytes());
        s.put("consensus_message", &format!("vote-{i}"), &Message::Vote(signed).to_bytes());
        s.put("consensus_message", &format!("certificate-{i}"), &Message::Certificate(fb.certificate.clone()).to_bytes());
        s.put("consensus_message", &format!("request-block-{i}"), &Message::Request(Request::Block(fb.block.id())).to_bytes());
    }
    s.put("consensus_message", "request-certificates", &Message::Request(Request::Certificates { from_view: 3, to_view: 9 }).to_bytes());
    s.put_selected("ledger_values", 2, "policy", &genesis.policy.to_bytes());
    s.put_selected("ledger_values", 4, "state", &chain.state().to_bytes());
    // What the long run found (ledger/tests/data/README.md): kept as a seed, so every run
    // starts from it.
    let found = fs::read(repo.join("ledger/tests/data/snapshot-empty-item-slots.bin")).expect("ledger/tests/data");
    s.put_selected("ledger_values", 4, "found-empty-item-slots", &found);

    // The export file, whole and cut short, and a record proof.
    let mut export = ExportWriter::new(Vec::new(), &genesis, None).expect("export");
    for entry in &entries {
        export.write_block(entry).expect("export block");
    }
    let file = export.finish().expect("export end");
    s.put("export", "chain", &file);
    s.put("export", "truncated", &file[..file.len() * 2 / 3]);
    let last = entries.last().expect("blocks");
    let checkpoint = Checkpoint {
        header: last.block.block.header.clone(),
        certificate: last.block.certificate.clone(),
        suffix: Vec::new(),
        validators: set.clone(),
        state: chain.state().clone(),
    };
    let mut from_checkpoint = ExportWriter::new(Vec::new(), &genesis, Some(&checkpoint)).expect("export");
    from_checkpoint.write_block(&entries[0]).expect("export block");
    s.put("export", "checkpoint", &from_checkpoint.finish().expect("export end"));
    let proof = RecordProof::build(&genesis, Anchor::Genesis, set.clone(), &entries[1], 5).expect("proof");
    s.put("proof", "genesis-anchor", &proof.to_bytes());
    let anchored = RecordProof::build(
        &genesis,
        Anchor::Checkpoint { header: entries[0].block.block.header.clone() },
        set.clone(),
        &entries[2],
        0,
    )
    .expect("proof");
    s.put("proof", "checkpoint-anchor", &anchored.to_bytes());

    // The node's network messages.
    for (name, request) in [("first", SyncRequest { from: 1, count: 64, lag_min: 0 }), ("lagging", SyncRequest { from: 120, count: 256, lag_min: 4 })] {
        s.put("sync_request", name, &request.to_bytes());
    }
    let response = SyncResponse { tip: entries.len() as u64, blocks: entries.iter().map(|e| e.block.to_bytes()).collect() };
    s.put("sync_response", "blocks", &response.to_bytes());
    s.put("sync_response", "empty", &SyncResponse { tip: 0, blocks: Vec::new() }.to_bytes());
    s.put("gossip_records", "block-1", &encode_records(&entries[1].block.block.records));
    s.put("gossip_records", "one", &encode_records(&entries[0].block.block.records[..1]));

    // Text files: the genesis example and the node configuration.
    // The documented example with real keys in place of its placeholders, so it parses.
    let mut example = fs::read_to_string(repo.join("docs/genesis.example.toml")).expect("docs/genesis.example.toml");
    let mut n = 0;
    for placeholder in ["<hex public key>", "<hex network key>"] {
        while example.contains(placeholder) {
            n += 1;
            let key = plaza_ledger::Keypair::from_seed(format!("plaza-fuzz/seed-key/{n}").as_bytes()).public().to_hex();
            example = example.replacen(placeholder, &key, 1);
        }
    }
    s.put("genesis_toml", "example", example.as_bytes());
    s.put("node_config", "default", NodeConfig::default().to_toml().as_bytes());
    let custom = "listen = \"/ip4/0.0.0.0/tcp/7100\"\napi = \"127.0.0.1:7180\"\npeers = [\"/ip4/10.0.0.2/tcp/7100\"]\nlog_format = \"json\"\nblock_records_max = 100\nview_timeout_ms = 2000\n";
    s.put("node_config", "custom", custom.as_bytes());

    // JSON bodies: every record kind of the chain and the fixtures, a policy, a profile.
    let mut kinds = std::collections::BTreeMap::new();
    for entry in &entries {
        for record in &entry.block.block.records {
            kinds.entry(kind_name(record.payload())).or_insert_with(|| record.payload().clone());
        }
    }
    for (name, bytes) in fixture(&repo.join("ledger/tests/fixtures/encodings.txt")) {
        if name.starts_with("record-")
            && let Ok(record) = <plaza_ledger::record::Record as plaza_ledger::codec::Decode>::from_bytes(&bytes, plaza_ledger::record::RECORD_BYTES_MAX)
        {
            kinds.insert(name, record.payload().clone());
        }
    }
    for (name, payload) in &kinds {
        s.put_selected("api_json", 0, &format!("payload-{name}"), payload_json(payload).to_string().as_bytes());
    }
    let policy = serde_json::to_vec(&PolicyJson::from_policy(&genesis.policy)).expect("policy json");
    s.put_selected("api_json", 1, "policy", &policy);
    let profile = serde_json::to_vec(&ProfileJson::from_profile(&genesis.members[0])).expect("profile json");
    s.put_selected("api_json", 2, "profile", &profile);
    let member = plaza_ledger::record::Party::Merchant(genesis.members[0].key);
    s.put_selected("api_json", 3, "party", party_json(&member).as_bytes());
    s.put_selected("api_json", 3, "place", place_json(&plaza_ledger::record::Place::Category("fitness".into())).as_bytes());

    // Text fields.
    for (i, (selector, text)) in [
        (0u8, "12.50"),
        (0, "1000000000000.00"),
        (1, genesis.alliance_id().to_hex().as_str()),
        (2, genesis.members[0].key.to_hex().as_str()),
        (3, "00112233445566778899aabbccddeeff"),
        (4, "31.230416"),
        (5, "promoter-7"),
    ]
    .iter()
    .enumerate()
    {
        s.put_selected("text_fields", *selector, &format!("text-{i}"), text.as_bytes());
    }
    println!("wrote {} seeds under {}", s.written, s.root.display());
}

fn kind_name(payload: &Payload) -> String {
    format!("{payload:?}").split([' ', '{', '(']).next().unwrap_or("payload").to_lowercase()
}
