//! The test vectors published in `docs/vectors/` for implementers without the Rust sources
//! (issue 12): ed25519 signatures on which libraries disagree, with Plaza's verdict and those
//! of the plain cofactorless and cofactored equations; and a small real chain export with its
//! expected ids, roots, receipts and statements.
//!
//! Everything is generated here from seeds and pinned: the test fails when the files differ
//! from what the code produces. `PLAZA_WRITE_VECTORS=1` rewrites them (an explicit decision,
//! like changing the encoding fixture).

use std::path::PathBuf;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::IsIdentity;
use curve25519_dalek::Scalar;
use plaza_ledger::audit::chain::{finalize_through, ChainBuilder};
use plaza_ledger::audit::export::{ExportReader, ExportWriter};
use plaza_ledger::audit::{verify_chain, BlockEntry, VerifyOptions};
use plaza_ledger::codec::Encode;
use plaza_ledger::keys::{PublicKey, Signature};
use plaza_ledger::policy::DAY_MS;
use plaza_ledger::record::{Action, Party, Payload};
use plaza_ledger::Keypair;
use serde_json::{json, Value};
use sha2::{Digest, Sha512};

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors")
}

/// Compares `bytes` with the pinned file, or writes it when asked to.
fn pinned(name: &str, bytes: &[u8]) {
    let path = vectors_dir().join(name);
    if std::env::var_os("PLAZA_WRITE_VECTORS").is_some() {
        std::fs::create_dir_all(vectors_dir()).expect("docs/vectors");
        std::fs::write(&path, bytes).expect("write the vector file");
        return;
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (PLAZA_WRITE_VECTORS=1 writes it)", path.display()));
    assert!(stored == bytes, "{} differs from what the code produces (PLAZA_WRITE_VECTORS=1 rewrites it, deliberately)", path.display());
}

fn challenge(r: &[u8; 32], a: &[u8; 32], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(message);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn scalar(seed: &str) -> Scalar {
    Scalar::from_bytes_mod_order(*blake3::hash(seed.as_bytes()).as_bytes())
}

/// A point of order 8 (speccheck vector 0's public key).
fn order_8_point() -> EdwardsPoint {
    let bytes: [u8; 32] = hex::decode("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa").expect("hex").try_into().expect("32");
    let t = CompressedEdwardsY(bytes).decompress().expect("a point");
    assert!(t.is_small_order() && !(t * Scalar::from(4u8)).is_identity());
    t
}

/// [S]B = R + [k]A exactly, with R and A canonical points and S < ℓ: what libsodium, OpenSSL
/// and ed25519-dalek's `verify_strict` compute (they add checks of their own on top).
fn cofactorless(a: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
    equation(a, message, sig).is_some_and(|(lhs, rhs)| lhs == rhs)
}

/// [8]([S]B − R − [k]A) = 0 with R and A canonical points and S < ℓ (ZIP-215's equation).
fn cofactored(a: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
    equation(a, message, sig).is_some_and(|(lhs, rhs)| (lhs - rhs).mul_by_cofactor().is_identity())
}

fn equation(a: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> Option<(EdwardsPoint, EdwardsPoint)> {
    let canonical = |bytes: [u8; 32]| CompressedEdwardsY(bytes).decompress().filter(|p| p.compress().0 == bytes);
    let r_bytes: [u8; 32] = sig[..32].try_into().ok()?;
    let s_bytes: [u8; 32] = sig[32..].try_into().ok()?;
    let point_a = canonical(*a)?;
    let point_r = canonical(r_bytes)?;
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
    let k = challenge(&r_bytes, a, message);
    Some((B * s, point_r + point_a * k))
}

/// A signature (R, S = r + k·a) by secret scalar `a` under public key `a_point`, with R = [r]B + `extra`.
fn sign_raw(a: Scalar, a_point: EdwardsPoint, r: Scalar, extra: EdwardsPoint, message: &[u8]) -> ([u8; 32], [u8; 64]) {
    let a_bytes = a_point.compress().0;
    let r_point = B * r + extra;
    let r_bytes = r_point.compress().0;
    let k = challenge(&r_bytes, &a_bytes, message);
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    (a_bytes, sig)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "accept"
    } else {
        "reject"
    }
}

fn ed25519_vectors() -> Value {
    let t = order_8_point();
    let a = scalar("plaza/vectors/key");
    let a_point = B * a;
    let mut cases: Vec<(&str, &str, [u8; 32], Vec<u8>, [u8; 64])> = Vec::new();

    let message = b"plaza vector: ordinary".to_vec();
    let k = Keypair::from_seed(b"plaza/vectors/ordinary");
    cases.push(("ordinary", "a signature made by RFC 8032's signing algorithm", *k.public().as_bytes(), message.clone(), k.sign(b"", &message).0));

    let message = b"plaza vector: torsioned R".to_vec();
    let (key, sig) = sign_raw(a, a_point, scalar("plaza/vectors/nonce-1"), t, &message);
    cases.push(("torsioned-r", "R = [r]B + T with T of order 8, S = r + k·a: the signer's own R carries a small-order component", key, message, sig));

    let message = b"plaza vector: identity R".to_vec();
    let (key, sig) = sign_raw(a, a_point, Scalar::ZERO, EdwardsPoint::default(), &message);
    cases.push(("identity-r", "R is the identity (order 1), S = k·a", key, message, sig));

    let message = b"plaza vector: order-8 R".to_vec();
    let (key, sig) = sign_raw(a, a_point, Scalar::ZERO, t, &message);
    cases.push(("order-8-r", "R = T, a point of order 8, S = k·a", key, message, sig));

    let message = b"plaza vector: mixed-order key".to_vec();
    let (key, sig) = sign_raw(a, a_point + t, scalar("plaza/vectors/nonce-2"), EdwardsPoint::default(), &message);
    cases.push(("mixed-order-key", "A = [a]B + T (a key with a small-order component), R = [r]B, S = r + k·a", key, message, sig));

    let message = b"plaza vector: non-canonical S".to_vec();
    let k = Keypair::from_seed(b"plaza/vectors/non-canonical-s");
    let mut sig = k.sign(b"", &message).0;
    // S + ℓ still fits 256 bits when S < 2^253 − ℓ, as here.
    let l: [u8; 32] = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010").expect("hex").try_into().expect("32");
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(sig[32 + i]) + u16::from(l[i]) + carry;
        sig[32 + i] = v as u8;
        carry = v >> 8;
    }
    assert_eq!(carry, 0);
    cases.push(("non-canonical-s", "an ordinary signature with ℓ added to S (S ≥ ℓ)", *k.public().as_bytes(), message, sig));

    let items: Vec<Value> = cases
        .into_iter()
        .map(|(name, how, key, message, sig)| {
            let plaza = PublicKey::from_bytes(&key).map_err(|e| e.to_string()).and_then(|pk| pk.verify(b"", &message, &Signature(sig)).map_err(|e| e.to_string()));
            json!({
                "name": name,
                "construction": how,
                "public_key": hex::encode(key),
                "message": hex::encode(&message),
                "signature": hex::encode(sig),
                "plaza": verdict(plaza.is_ok()),
                "plaza_reason": plaza.err(),
                "cofactorless_equation": verdict(cofactorless(&key, &message, &sig)),
                "cofactored_equation": verdict(cofactored(&key, &message, &sig)),
            })
        })
        .collect();
    json!({
        "about": "ed25519 (RFC 8032, pure) over the message bytes as given (Plaza's own messages are a domain tag followed by the signed bytes, docs/FORMAT.md §3). `plaza` is Plaza's acceptance rule; the two equations are checked with canonical R, A and S only, without any other check. Libraries that compute the cofactorless equation (libsodium, OpenSSL, ed25519-dalek's verify_strict) reject torsioned-r, which every Plaza node accepts.",
        "vectors": items,
    })
}

#[test]
fn the_signature_vectors_are_current_and_show_where_rules_differ() {
    let value = ed25519_vectors();
    let by_name = |name: &str| value["vectors"].as_array().expect("vectors").iter().find(|v| v["name"] == name).expect("vector").clone();
    // The cases the vectors exist for: each differs from Plaza's rule in one of the equations.
    let torsioned = by_name("torsioned-r");
    assert_eq!((torsioned["plaza"].as_str(), torsioned["cofactorless_equation"].as_str()), (Some("accept"), Some("reject")));
    let identity = by_name("identity-r");
    assert_eq!((identity["plaza"].as_str(), identity["cofactorless_equation"].as_str()), (Some("reject"), Some("accept")));
    assert!(identity["plaza_reason"].as_str().expect("reason").contains("small order"), "{identity}");
    let mixed = by_name("mixed-order-key");
    assert_eq!((mixed["plaza"].as_str(), mixed["cofactored_equation"].as_str()), (Some("reject"), Some("accept")));
    let ordinary = by_name("ordinary");
    assert_eq!((ordinary["plaza"].as_str(), ordinary["cofactorless_equation"].as_str(), ordinary["cofactored_equation"].as_str()), (Some("accept"), Some("accept"), Some("accept")));
    assert_eq!(by_name("non-canonical-s")["plaza"], "reject");
    let text = serde_json::to_string_pretty(&value).expect("json") + "\n";
    pinned("ed25519.json", text.as_bytes());
}

/// A small alliance day: five members, four validating; sales with cards; in block 2 the
/// members vote the fifth in as a validator; block 4 closes a period (statement lines) and so
/// ends epoch 0 (it names the five-validator set), and blocks 3 and 4 are final through two
/// suffix blocks above block 4 signed by the four; blocks 5–7 are epoch 1, certified by the five.
fn small_chain() -> (ChainBuilder, Vec<BlockEntry>) {
    let mut b = ChainBuilder::new(5, 4);
    let genesis_set = b.genesis().validators.clone();
    let mut blocks = Vec::new();
    for h in 1..=7 {
        if h == 4 {
            b.skip_views(1);
            b.advance(DAY_MS);
        }
        if h == 6 {
            b.advance(8 * DAY_MS);
        }
        let mut records = b.sales(if h % 2 == 0 { 3 } else { 11 });
        if h == 2 {
            let proposal = b.record(0, Payload::Propose { action: Action::AddValidator { merchant: b.member(4), network_key: b.network_key(4) } });
            let id = proposal.id();
            records.push(proposal);
            for voter in 1..=3 {
                records.push(b.record(voter, Payload::Vote { proposal: id, approve: true }));
            }
        }
        blocks.push(b.push(records).expect("valid block"));
    }
    let view = blocks[3].block.block.header.view;
    b.finalize_through_suffix(&mut blocks[2..4], &[view + 1, view + 3], &genesis_set);
    finalize_through(&mut blocks[4..7]);
    (b, blocks)
}

fn chain_summary(b: &ChainBuilder, blocks: &[BlockEntry]) -> Value {
    let block_json = |e: &BlockEntry| {
        let h = &e.block.block.header;
        json!({
            "height": h.height,
            "epoch": h.epoch,
            "view": h.view,
            "id": e.block.block.id().to_string(),
            "parent": h.parent.to_string(),
            "time_ms": h.time_ms,
            "records_root": h.records_root.to_string(),
            "receipts_root": h.receipts_root.to_string(),
            "state_root": h.state_root.to_string(),
            "validator_set_hash": h.validator_set_hash.to_string(),
            "statement_hash": h.statement_hash.map(|s| s.to_string()),
            "next_validator_set_hash": h.next_validator_set_hash.map(|s| s.to_string()),
            "epoch_end": e.block.epoch_end.as_ref().map(|end| json!({
                "next_validators": end.next_validators.validators().iter().map(|v| json!({"key": v.key.to_string(), "network_key": v.network_key.to_string()})).collect::<Vec<_>>(),
                "suffix_views": end.suffix,
                "suffix_end": e.block.suffix_end(&b.alliance()).to_string(),
            })),
            "certificate": { "kind": e.block.certificate.target.kind.name(), "epoch": e.block.certificate.target.epoch, "view": e.block.certificate.target.view, "block": e.block.certificate.target.block.to_string(), "signers": e.block.certificate.signatures.len() },
            "receipts": e.receipts.iter().map(|r| json!({"record": r.record.to_string(), "code": r.code, "name": r.code().map(|c| c.name())})).collect::<Vec<_>>(),
            "statement": e.statement.as_ref().map(|s| json!({
                "period": s.period,
                "start_ms": s.start_ms,
                "end_ms": s.end_ms,
                "hash": s.hash().to_string(),
                "lines": s.lines.iter().map(|l| json!({"kind": l.kind.name(), "debtor": l.debtor.to_string(), "creditor": l.creditor.to_string(), "amount_cents": l.amount.to_string(), "sources": l.sources.len()})).collect::<Vec<_>>(),
                "nets": s.nets.iter().map(|(p, n)| json!({"party": p.to_string(), "net_cents": n.to_string()})).collect::<Vec<_>>(),
                "transfers": s.transfers.iter().map(|t| json!({"payer": t.payer.to_string(), "payee": t.payee.to_string(), "amount_cents": t.amount.to_string()})).collect::<Vec<_>>(),
            })),
        })
    };
    json!({
        "about": "chain.plaza-export: a small real export (docs/FORMAT.md, \"Proofs and exports\") and what verifying it must give. Block 2 votes a fifth validator in; block 4 closes a period and ends epoch 0; blocks 3 and 4 are final through the certificate of block 4's second suffix block (signed by the four of epoch 0); blocks 5 and 6 through block 7's (signed by the five of epoch 1). Amounts are in cents, as decimal strings.",
        "alliance": b.alliance().to_string(),
        "genesis_validator_set_hash": b.genesis().validators.hash().to_string(),
        "genesis_bytes": b.genesis().to_bytes().len(),
        "blocks": blocks.iter().map(block_json).collect::<Vec<_>>(),
        "tip": { "height": blocks.len(), "id": blocks.last().map(|e| e.block.block.id().to_string()), "state_root": blocks.last().map(|e| e.block.block.header.state_root.to_string()) },
        "tip_state": tip_state(b),
    })
}

/// The state after the tip (docs/FORMAT.md, "State root"): the 18 hashes the state root is
/// the hash of, and one balance entry with its slot and path, as a state proof carries them.
fn tip_state(b: &ChainBuilder) -> Value {
    let state = b.state();
    let roots = state.roots();
    let party = Party::Merchant(b.member(1));
    let item = state.prove(14, &party.to_bytes()).expect("a key of the balances table").expect("the member has a balance");
    json!({
        "about": "state_root = H(\"plaza/state-root/v2\\0\" ‖ globals ‖ seen ‖ tables[0..16]); the balance of member 1: leaf = H(0x00 ‖ key ‖ value), its path to tables[13] (RFC 9162, bottom-up)",
        "state_root": state.state_root().to_string(),
        "globals": roots.globals.to_string(),
        "seen": roots.seen.to_string(),
        "tables": roots.tables.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "balance_item": {
            "table": 14,
            "key": hex::encode(&item.key),
            "value": hex::encode(&item.value),
            "slot": item.path.index,
            "tree_size": item.path.tree_size,
            "path": item.path.path.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        },
    })
}

#[test]
fn the_small_real_export_is_current_and_verifies() {
    let (b, blocks) = small_chain();
    assert!(blocks.iter().any(|e| e.statement.as_ref().is_some_and(|s| !s.lines.is_empty())), "a statement with lines");
    let mut writer = ExportWriter::new(Vec::new(), b.genesis(), None).expect("memory");
    for entry in &blocks {
        writer.write_block(entry).expect("memory");
    }
    let bytes = writer.finish().expect("memory");
    let mut reader = ExportReader::open(bytes.as_slice()).expect("opens");
    let genesis = reader.genesis().clone();
    let start = reader.take_start();
    let report = verify_chain(&genesis, start, reader, &VerifyOptions::default(), &mut |_| {});
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.tip_height, report.tip_id), (7, blocks[6].block.block.id()));
    pinned("chain.plaza-export", &bytes);
    let text = serde_json::to_string_pretty(&chain_summary(&b, &blocks)).expect("json") + "\n";
    pinned("chain.json", text.as_bytes());
}
