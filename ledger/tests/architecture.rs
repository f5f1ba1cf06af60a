//! The architecture invariants of docs/ARCHITECTURE.md that a machine can check.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the ledger crate sits in the workspace").to_owned()
}

fn manifest(krate: &str) -> toml::Table {
    let text = std::fs::read_to_string(workspace().join(krate).join("Cargo.toml")).expect("crate manifest");
    text.parse().expect("manifest parses")
}

/// The plaza crates a crate depends on (normal dependencies only).
fn plaza_dependencies(krate: &str) -> Vec<String> {
    let m = manifest(krate);
    let mut deps: Vec<String> = m
        .get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().filter(|k| k.starts_with("plaza-")).cloned().collect())
        .unwrap_or_default();
    deps.sort();
    deps
}

fn dependencies(krate: &str) -> Vec<String> {
    let m = manifest(krate);
    m.get("dependencies").and_then(|d| d.as_table()).map(|t| t.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn crate_graph_follows_the_design() {
    assert_eq!(plaza_dependencies("ledger"), vec!["plaza-hash-many"]);
    assert_eq!(dependencies("ledger/hash-many"), vec!["blake3"]);
    assert_eq!(plaza_dependencies("consensus"), vec!["plaza-ledger"]);
    assert_eq!(plaza_dependencies("node"), vec!["plaza-consensus", "plaza-ledger"]);
}

#[test]
fn pure_crates_pull_in_no_io() {
    for krate in ["ledger", "consensus"] {
        for dep in dependencies(krate) {
            assert!(
                !["tokio", "libp2p", "axum", "tracing-subscriber"].contains(&dep.as_str()),
                "{krate} must not depend on {dep}"
            );
        }
    }
    // RocksDB only behind the ledger's `store` feature.
    let m = manifest("ledger");
    let rocksdb = m["dependencies"]["rocksdb"].as_table().expect("rocksdb entry");
    assert_eq!(rocksdb.get("optional").and_then(|v| v.as_bool()), Some(true));
    // The node's I/O (tokio, libp2p, axum, RocksDB) only behind its `io` feature.
    let node = manifest("node");
    for dep in ["tokio", "libp2p", "axum"] {
        assert_eq!(node["dependencies"][dep].get("optional").and_then(|v| v.as_bool()), Some(true), "node's {dep}");
    }
    let testnet = manifest("testnet");
    assert_eq!(
        testnet["dependencies"]["plaza-node"].get("default-features").and_then(|v| v.as_bool()),
        Some(false),
        "the simulator runs the replica without the node's I/O"
    );
    let consensus = manifest("consensus");
    let ledger_dep = &consensus["dependencies"]["plaza-ledger"];
    assert!(ledger_dep.get("features").is_none(), "consensus uses the ledger without the store");
}

/// The workspace forbids unsafe code (its `[workspace.lints]`), and every crate but one takes
/// the workspace's lints. The one is `plaza-hash-many`, whose SIMD intrinsics need a few
/// unsafe blocks; it must say why each is sound (clippy's `undocumented_unsafe_blocks`).
#[test]
fn unsafe_code_is_forbidden_but_in_the_hashing_crate() {
    let root: toml::Table = std::fs::read_to_string(workspace().join("Cargo.toml")).expect("workspace manifest").parse().expect("parses");
    assert_eq!(root["workspace"]["lints"]["rust"]["unsafe_code"].as_str(), Some("forbid"));
    let members = root["workspace"]["members"].as_array().expect("members");
    for member in members {
        let member = member.as_str().expect("a path");
        let m = manifest(member);
        if member == "ledger/hash-many" {
            assert!(m["lints"].get("workspace").is_none(), "{member} has its own lints");
            assert_eq!(m["lints"]["clippy"]["undocumented_unsafe_blocks"].as_str(), Some("deny"));
            assert_eq!(m["lints"]["rust"]["unsafe_op_in_unsafe_fn"].as_str(), Some("deny"));
        } else {
            assert_eq!(m["lints"]["workspace"].as_bool(), Some(true), "{member} takes the workspace's lints");
        }
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Clocks, randomness and hash maps never appear in consensus or the contract. The contract's
/// set of seen record ids (membership only, sorted before encoding; its type alias `SeenIds`,
/// hashed by the keyless `IdHasher`) is the one exception.
#[test]
fn deterministic_code_uses_no_clock_randomness_or_hash_maps() {
    let banned = ["SystemTime", "Instant", "rand::", "thread_rng", "HashMap", "HashSet", "std::fs", "std::net", "tokio"];
    let allowed = ["use std::collections::{BTreeSet, HashSet};", "type SeenIds = HashSet<Hash, BuildHasherDefault<IdHasher>>;"];
    let mut offences = Vec::new();
    // The node's replica and what it runs are the same deterministic code the simulator runs.
    let pure = [
        "consensus/src",
        "ledger/src/contract",
        "ledger/src/execute.rs",
        "ledger/hash-many/src",
        "node/src/replica.rs",
        "node/src/chain.rs",
        "node/src/mempool.rs",
        "node/src/wire.rs",
    ];
    for dir in pure {
        let path = workspace().join(dir);
        let files = if path.is_file() { vec![path] } else { rust_files(&path) };
        assert!(!files.is_empty(), "{dir} has sources");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if allowed.iter().any(|a| line.trim() == *a) {
                    continue;
                }
                for word in banned {
                    if code.contains(word) {
                        offences.push(format!("{}:{}: {word}", file.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(offences.is_empty(), "nondeterminism in pure code:\n{}", offences.join("\n"));
}

/// Distances and the nearby queries are integers only (issue 19): no float type, no float
/// literal suffix, no float method, and nothing nondeterministic, outside their tests.
#[test]
fn distance_code_uses_no_floats() {
    let banned = ["f32", "f64", "as_f", "to_radians", ".sqrt()", "HashMap", "HashSet", "SystemTime", "Instant", "rand::"];
    let mut offences = Vec::new();
    for file in ["ledger/src/geo.rs", "ledger/src/nearby.rs"] {
        let text = std::fs::read_to_string(workspace().join(file)).expect("source");
        let code_part = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code_part.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for word in banned {
                if code.contains(word) {
                    offences.push(format!("{file}:{}: {word}", n + 1));
                }
            }
        }
    }
    assert!(offences.is_empty(), "floats or nondeterminism in the distance code:\n{}", offences.join("\n"));
}
