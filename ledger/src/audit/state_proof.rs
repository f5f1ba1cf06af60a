//! One state item, proven (docs/FORMAT.md, "State proof"): a card's points lots, a merchant's
//! balance, a coupon's status, a period's statement summary — any entry of the 16 state
//! tables — with the path of its leaf to the state root of a certified header.
//!
//! ```text
//! StateProof = "PLAZA-STATE\0" ‖ version: u16 (= 3) ‖ u32 len ‖ Genesis ‖ Anchor ‖ seq<EpochChange> ‖ ValidatorSet
//!              ‖ BlockHeader ‖ seq<BlockHeader> (descendants) ‖ seq<u64> (suffix views) ‖ Certificate
//!              ‖ table: u8 ‖ key: bytes ‖ value: bytes ‖ InclusionProof (leaf in the table root)
//!              ‖ StateRoots (globals ‖ seen ‖ 16 table roots)
//! ```
//!
//! The header, its descendants, the certificate and the anchor are checked exactly as a
//! record proof's (`proof.rs`); the item by `H(0x00 ‖ key ‖ value)` → the table's root
//! (RFC 9162 §2.1.3.2), and the roots by their hash, which must be the header's state root.

use crate::audit::proof::{CertifiedHeader, Finality};
use crate::audit::{Check, Failure};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::contract::{describe_state_item, State, StateItem, StateRoots, TABLES};
use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::merkle::{self, InclusionProof};
use crate::record::{CardId, Party, PromoterId};
use crate::store::ChainStore;

pub const MAGIC: &[u8; 12] = b"PLAZA-STATE\0";
/// 3: the table path is checked with the state trees' keyed inner node; 2: the certified header of
/// record proof version 4 (epoch changes); 1: before epochs.
pub const VERSION: u16 = 3;
/// A state proof file: genesis (≤ 1 MiB), descendant headers, epoch changes, one state entry.
pub const PROOF_BYTES_MAX: usize = 8 * 1024 * 1024;
/// The bytes of one key or value a proof may carry.
pub const ITEM_BYTES_MAX: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateProof {
    pub certified: CertifiedHeader,
    pub item: StateItem,
}

/// What a valid state proof establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenState {
    pub alliance: Hash,
    pub height: u64,
    pub block: Hash,
    pub table: u8,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// The key and value decoded, as text.
    pub key_text: String,
    pub value_text: String,
    pub checkpoint: Option<(u64, Hash)>,
    pub finalized_through: Option<(u64, Hash)>,
}

/// The table named `name`: its name in [`TABLES`] or its tag.
pub fn table_tag(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return (1..=16).contains(&n).then_some(n);
    }
    TABLES.iter().position(|t| *t == name).map(|i| i as u8 + 1)
}

/// A state key as text (docs/AUDIT.md, "State proofs"): either `KIND:VALUE` —
/// `merchant:<key hex>`, `promoter:<id>`, `card:<32 hex>`, `referral:<code hash>`,
/// `batch:<record id>`, `coupon:<code hash>`, `sale:<merchant hex>/<order id>`, `item:<n>`,
/// `proposal:<record id>`, `agreement:<record id>`, `balance:<party>`, `stats:<party>`,
/// `statement:<period>` (a party is `merchant:<hex>` or `promoter:<id>`) — or `TABLE/HEX`, a
/// table's name or tag and its key's encoding in hex. Returns the tag and the encoded key.
pub fn parse_state_key(text: &str) -> Result<(u8, Vec<u8>), String> {
    let text = text.trim();
    let colon = text.find(':');
    let slash = text.find('/');
    if let Some(c) = colon.filter(|c| slash.is_none_or(|s| *c < s)) {
        return parse_friendly(&text[..c], &text[c + 1..]);
    }
    let Some(s) = slash else {
        return Err(format!("state key {text:?} must be KIND:VALUE (e.g. coupon:<code hash>, balance:merchant:<hex>) or TABLE/HEX (e.g. cards/<hex>)"));
    };
    let (table, hex_key) = (&text[..s], &text[s + 1..]);
    let tag = table_tag(table).ok_or_else(|| format!("unknown table {table:?}: the tables are {} (or 1 to 16)", TABLES.join(", ")))?;
    let key = hex::decode(hex_key).map_err(|e| format!("the key of {table}/… is not hex: {e}"))?;
    Ok((tag, key))
}

fn hash(what: &str, text: &str) -> Result<Hash, String> {
    Hash::from_hex(text).map_err(|e| format!("{what}: {e}"))
}
fn key(what: &str, text: &str) -> Result<PublicKey, String> {
    PublicKey::from_hex(text.trim()).map_err(|e| format!("{what}: {e}"))
}
fn party(text: &str) -> Result<Party, String> {
    if let Some(hex) = text.strip_prefix("merchant:") {
        return Ok(Party::Merchant(key("party", hex)?));
    }
    if let Some(code) = text.strip_prefix("promoter:") {
        return Ok(Party::Promoter(PromoterId::new(code)?));
    }
    Err(format!("party {text:?} must be \"merchant:<hex key>\" or \"promoter:<id>\""))
}

fn parse_friendly(kind: &str, value: &str) -> Result<(u8, Vec<u8>), String> {
    let mut w = Writer::new();
    let tag = match kind {
        "merchant" => {
            key("merchant", value)?.encode(&mut w);
            1
        }
        "promoter" => {
            PromoterId::new(value)?.encode(&mut w);
            2
        }
        "card" => {
            CardId::from_hex(value)?.encode(&mut w);
            3
        }
        "referral" => {
            hash("referral code hash", value)?.encode(&mut w);
            4
        }
        "batch" => {
            hash("batch (IssueCoupons record id)", value)?.encode(&mut w);
            5
        }
        "coupon" => {
            hash("coupon code hash", value)?.encode(&mut w);
            7
        }
        "sale" => {
            let (seller, order) = value.split_once('/').ok_or("a sale is sale:<merchant hex>/<order id>")?;
            if order.is_empty() || order.len() > 64 {
                return Err("a sale's order id is 1 to 64 bytes".into());
            }
            key("seller", seller)?.encode(&mut w);
            w.str(order);
            8
        }
        "item" => {
            w.u64(value.parse::<u64>().map_err(|e| format!("item number: {e}"))?);
            9
        }
        "proposal" => {
            hash("proposal (Propose record id)", value)?.encode(&mut w);
            10
        }
        "agreement" => {
            hash("agreement (Agreement record id)", value)?.encode(&mut w);
            11
        }
        "balance" => {
            party(value)?.encode(&mut w);
            14
        }
        "stats" => {
            party(value)?.encode(&mut w);
            15
        }
        "statement" => {
            w.u64(value.parse::<u64>().map_err(|e| format!("statement period: {e}"))?);
            16
        }
        _ => {
            return Err(format!(
                "unknown kind {kind:?}: use merchant, promoter, card, referral, batch, coupon, sale, item, proposal, agreement, balance, stats or statement (or TABLE/HEX)"
            ))
        }
    };
    Ok((tag, w.into_bytes()))
}

/// The store's state snapshot decoded, when it is at or below `tip` (decoded from the store's
/// buffer, not a copy).
pub fn snapshot_at_or_below<S: ChainStore + ?Sized>(store: &S, tip: u64) -> Result<Option<(u64, State)>, String> {
    let mut decoded = None;
    store
        .read_state_snapshot(&mut |h, bytes| {
            if h <= tip {
                decoded = Some(State::decode_snapshot(bytes).map(|state| (h, state)).map_err(|e| format!("state snapshot at height {h}: {e}")));
            }
        })
        .map_err(|e| e.to_string())?;
    decoded.transpose()
}

/// The state after the store's tip: its latest snapshot, then the blocks after it re-executed
/// (each state root checked against its header).
pub fn state_at_tip<S: ChainStore + ?Sized>(store: &S) -> Result<State, String> {
    let tip = store.tip_height().map_err(|e| e.to_string())?;
    let (mut height, mut state) = match snapshot_at_or_below(store, tip)? {
        Some((h, state)) => (h, state),
        None => (0, State::from_genesis(store.genesis())),
    };
    loop {
        if height > 0 {
            let block = store.block(height).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {height} is missing from the store"))?;
            if block.block.header.state_root != state.state_root() {
                return Err(format!("the state after block {height} does not match its header's state root"));
            }
        }
        if height == tip {
            return Ok(state);
        }
        height += 1;
        let block = store.block(height).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {height} is missing from the store"))?;
        state.apply_block(block.block.header.time_ms, &block.block.records).map_err(|e| format!("re-executing block {height}: {e}"))?;
    }
}

impl StateProof {
    /// Builds the proof of one item of `state`, which must be the state after one of the
    /// store's last blocks (the node's current state, or [`state_at_tip`]). `Ok(None)` when the
    /// table has no such key.
    pub fn build<S: ChainStore + ?Sized>(store: &S, state: &State, table: u8, key: &[u8]) -> Result<Option<StateProof>, String> {
        let Some(item) = state.prove(table, key).map_err(|e| format!("the key is not a key of table {}: {e}", table_name(table)))? else {
            return Ok(None);
        };
        StateProof::certify(store, item).map(Some)
    }

    /// Completes the proof of `item` (from [`State::prove`]) with the certified header whose
    /// state root its roots hash to, found among the store's last blocks.
    pub fn certify<S: ChainStore + ?Sized>(store: &S, item: StateItem) -> Result<StateProof, String> {
        // The block whose state root is this state's (the state may be a block ahead of the
        // store's tip or behind it while a block is written).
        let tip = store.tip_height().map_err(|e| e.to_string())?;
        let root = item.roots.root();
        let mut found = None;
        for h in (tip.saturating_sub(3).max(1)..=tip).rev() {
            let b = store.block(h).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {h} is missing from the store"))?;
            if b.block.header.state_root == root {
                found = Some(b);
                break;
            }
        }
        let block = found.ok_or_else(|| {
            if tip == 0 {
                "no block is final yet: a state proof needs a certified header".to_owned()
            } else {
                format!("no block among the last ones (tip {tip}) has this state's root {root}; try again")
            }
        })?;
        Ok(StateProof { certified: CertifiedHeader::from_store(store, &block)?, item })
    }

    /// Checks the proof offline (`trusted`: checkpoint block ids the auditor trusts).
    pub fn verify(&self, trusted: &[Hash]) -> Result<ProvenState, Failure> {
        let header = &self.certified.header;
        let h = header.height;
        let fail = |check: Check, item: &str, expected: String, found: String| Err(Failure::at(check, h, item.to_owned(), expected, found));
        let item = &self.item;
        let (key_text, value_text) = match describe_state_item(item.table, &item.key, &item.value) {
            Ok(texts) => texts,
            Err(e) => return fail(Check::StateRoot, "state item", format!("a key and value of table {}", table_name(item.table)), e.to_string()),
        };
        let leaf = merkle::leaf_hash(&[item.key.as_slice(), item.value.as_slice()].concat());
        let table_root = item.roots.tables[usize::from(item.table - 1)];
        if !item.path.verify_with(&leaf, &table_root, crate::contract::tree_node) {
            return fail(
                Check::StateRoot,
                "state path",
                format!("a path from the item to the {} table's root {table_root}", table_name(item.table)),
                "a path that does not lead there".into(),
            );
        }
        let root = item.roots.root();
        if root != header.state_root {
            return fail(Check::StateRoot, "state roots", format!("roots hashing to the header's state root {}", header.state_root), format!("roots hashing to {root}"));
        }
        let Finality { alliance, checkpoint, finalized_through, .. } = self.certified.verify(trusted)?;
        Ok(ProvenState {
            alliance,
            height: h,
            block: header.id(),
            table: item.table,
            key: item.key.clone(),
            value: item.value.clone(),
            key_text,
            value_text,
            checkpoint,
            finalized_through,
        })
    }
}

/// The table's name ("?" outside 1 … 16).
pub fn table_name(tag: u8) -> &'static str {
    TABLES.get(usize::from(tag).wrapping_sub(1)).copied().unwrap_or("?")
}

impl Encode for StateProof {
    fn encode(&self, w: &mut Writer) {
        w.raw(MAGIC);
        w.u16(VERSION);
        self.certified.encode(w);
        w.u8(self.item.table);
        w.bytes(&self.item.key);
        w.bytes(&self.item.value);
        self.item.path.encode(w);
        self.item.roots.encode(w);
    }
}
impl Decode for StateProof {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.take(12)? != MAGIC {
            return Err(DecodeError::invalid("state proof", "not a Plaza state proof"));
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(DecodeError::invalid("state proof", format!("version {version}, this plaza reads version {VERSION}")));
        }
        let certified = CertifiedHeader::decode(r)?;
        let table = r.u8()?;
        if !(1..=16).contains(&table) {
            return Err(DecodeError::InvalidTag { what: "state table", tag: table });
        }
        let key = r.bytes("state key", ITEM_BYTES_MAX)?.to_vec();
        let value = r.bytes("state value", ITEM_BYTES_MAX)?.to_vec();
        let path = InclusionProof::decode(r)?;
        let roots = StateRoots::decode(r)?;
        Ok(StateProof { certified, item: StateItem { table, key, value, path, roots } })
    }
}
