//! The settlement contract: the alliance state machine of DESIGN §4–§5 (rules S1–S12).
//!
//! A pure function of (state, block time, ordered records): it reads no clock, uses no
//! randomness, and only sorted maps reach its output or its root. docs/SETTLEMENT.md explains
//! every rule with a worked scenario; docs/FORMAT.md ("State root and statements") defines the
//! state root and the statement hash byte by byte.
//!
//! # Interface
//!
//! - [`State::from_genesis`]`(&Genesis) -> State`.
//! - [`State::apply_block`]`(&mut self, block_time_ms, &[Record]) -> Result<BlockOutcome, InvalidBlock>`:
//!   one receipt per record, in order; a statement when the block's time lies in a later
//!   period than the previous block's (the boundary is closed *before* the block's records
//!   are applied); the new state root. On `Err` the state is unchanged. Records must already
//!   have passed [`Record::check`]: signatures are not re-verified here.
//! - [`State::state_root`]: a commitment to the whole state (a Merkle tree per table, kept
//!   up to date along the paths a block changed), and [`State::prove`] for one item of it.
//! - `State: Encode + Decode` for snapshots ([`State::decode_snapshot`] checks a size limit).
//! - [`State::validator_set`], [`State::alliance_id`], [`State::policy_at`].
//! - Queries: [`State::merchant`], [`State::merchants`], [`State::promoters`], [`State::card`],
//!   [`State::points_balance`], [`State::coupon`], [`State::balance`], [`State::statement`],
//!   [`State::latest_statement`], [`State::proposal`], [`State::period`].
//! - [`settle_offline`]: recompute a period from genesis and the ordered blocks (`plaza settle`).
//!
//! # Periods (S10)
//!
//! Period 0 starts at genesis time. A period ends at the first local midnight-aligned
//! boundary after its start: `b` is a boundary when `(b + utc_offset) mod period_ms == 0`
//! (`period_ms` of the policy in force at the period's start). The first block whose time is
//! at or after the period's end closes it; if the block skipped several boundaries, the one
//! statement covers them all (it ends at the last boundary at or before the block time) and
//! fixed fees accrue once per boundary crossed. Statements are numbered 0, 1, 2, … .

mod accounts;
mod items;
mod rules;
mod sales;
pub mod statement;
mod table;
mod tree;
pub mod types;
mod views;

use std::collections::{BTreeSet, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use thiserror::Error;

use crate::cert::{Validator, ValidatorSet};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::money::Amount;
use crate::policy::{Policy, DAY_MS};
use crate::receipt::{Code, Receipt};
use crate::record::{check_time_window, CardId, MerchantProfile, Party, PromoterId, Record, CODE_MAX};

pub use rules::SaleBaseLimit;
pub use statement::{BilateralNet, Line, LineKind, Statement, Transfer};
pub use types::{Balance, Lot, MerchantStatus, Obligation, ProposalStatus, StatementSummary};
pub use views::{BatchView, ItemView, ProposalView, SaleView};
/// The state trees' inner node, for the state proof's path check.
pub(crate) use tree::node as tree_node;

use accounts::{Accounts, PartyId};
use items::{Item, Items, RawItems};
use sales::{RawSales, Sales};
use statement::StatementBuilder;
use table::Table;
use types::{
    Agreement, Batch, Card, Carry, Coupon, HashValue, Merchant, NamedKey, Promoter, Proposal, Referral, ReferrerStats,
    ValidatorChange,
};

/// The snapshot encoding's version: 2 carries each entry's slot and the record ids in
/// application order (1, before the whole-state root, is not read); 3 has 2's bytes, but the
/// root it must match hashes the tables' inner nodes with a keyed hash, so 2 is not read.
pub const SNAPSHOT_VERSION: u8 = 3;
/// The largest snapshot `decode_snapshot` accepts.
pub const STATE_BYTES_MAX: usize = 1 << 34;
/// Domain of the state root.
pub const ROOT_DOMAIN: &[u8] = b"plaza/state-root/v3\0";
/// Domain of the globals' hash.
pub const GLOBALS_DOMAIN: &[u8] = b"plaza/state-globals/v2\0";
/// The state tables, by tag: the order of the table roots in the state root.
pub const TABLES: [&str; 16] = [
    "merchants",
    "promoters",
    "cards",
    "referrals",
    "batches",
    "batch-names",
    "coupons",
    "sales",
    "items",
    "proposals",
    "agreements",
    "agreement-names",
    "overrides",
    "balances",
    "referrer-stats",
    "statements",
];

/// What the state root is the hash of (docs/FORMAT.md, "State root"):
/// `root = H(ROOT_DOMAIN ‖ globals ‖ seen ‖ table root 1 ‖ … ‖ table root 16)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateRoots {
    /// `H(GLOBALS_DOMAIN ‖ alliance ‖ i32 utc offset ‖ seq(category) ‖ G)`.
    pub globals: Hash,
    /// The record ids applied so far, folded in application order: `s = H(s ‖ id)` from zero.
    pub seen: Hash,
    /// The Merkle root of each table, by tag − 1.
    pub tables: [Hash; 16],
}

impl StateRoots {
    pub fn root(&self) -> Hash {
        let mut h = blake3::Hasher::new();
        h.update(ROOT_DOMAIN);
        h.update(self.globals.as_bytes());
        h.update(self.seen.as_bytes());
        for t in &self.tables {
            h.update(t.as_bytes());
        }
        Hash(*h.finalize().as_bytes())
    }
}

impl Encode for StateRoots {
    fn encode(&self, w: &mut Writer) {
        self.globals.encode(w);
        self.seen.encode(w);
        for t in &self.tables {
            t.encode(w);
        }
    }
}
impl Decode for StateRoots {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let globals = Hash::decode(r)?;
        let seen = Hash::decode(r)?;
        let mut tables = [Hash::ZERO; 16];
        for t in &mut tables {
            *t = Hash::decode(r)?;
        }
        Ok(StateRoots { globals, seen, tables })
    }
}

/// One state item with the path of its leaf to its table's root, and the roots that make the
/// state root (docs/FORMAT.md, "State proof").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateItem {
    /// The table's tag, 1 … 16.
    pub table: u8,
    /// The key's and the value's encodings (the table's, docs/FORMAT.md "State tables").
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub path: crate::merkle::InclusionProof,
    pub roots: StateRoots,
}
/// Records in one block (the block format's bound, checked again here).
pub const RECORDS_PER_BLOCK_MAX: usize = crate::block::RECORDS_PER_BLOCK_MAX;
/// Policy versions kept.
pub const POLICIES_MAX: usize = 4096;

/// Why a block cannot be applied at all (DESIGN §4: these records never enter a block).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidBlock {
    #[error("block time {found} is before the previous block's time {previous}")]
    TimeBackwards { previous: u64, found: u64 },
    #[error("block carries {count} records, the limit is {max}")]
    TooManyRecords { count: usize, max: usize },
    #[error("record {index} ({record}) is for another alliance")]
    WrongAlliance { index: usize, record: Hash },
    #[error("record {index} ({record}) is signed by {signer}, who is not a member")]
    NotAMember { index: usize, record: Hash, signer: PublicKey },
    #[error("record {index} ({record}) is signed by {signer}, who was removed")]
    SignerRemoved { index: usize, record: Hash, signer: PublicKey },
    #[error("record {index} ({record}) was created at {created_at_ms}, outside ±{window_ms} ms of block time {block_time_ms}")]
    OutsideTimeWindow { index: usize, record: Hash, created_at_ms: u64, block_time_ms: u64, window_ms: u64 },
}

/// What applying one block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutcome {
    /// One per record, in block order.
    pub receipts: Vec<Receipt>,
    /// The statement of the period this block closed, if any.
    pub statement: Option<Statement>,
    pub state_root: Hash,
}

/// A card as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    pub home: PublicKey,
    /// Lots not expired at the query time, earliest expiry first.
    pub lots: Vec<Lot>,
    /// Points of those lots.
    pub points: u64,
    /// Of those, spendable now.
    pub spendable: u64,
    /// S8: points spent that refunds cancelled (the card's negative part).
    pub debt: u64,
}

/// A coupon's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponView {
    pub issuer: PublicKey,
    pub batch: Hash,
    pub expires_at_ms: u64,
    /// The (seller, order) that redeemed it.
    pub redeemed_by: Option<(PublicKey, String)>,
}

/// A party's money as the API shows it (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalanceView {
    /// Items owed to the party that have not locked yet.
    pub pending: u128,
    /// Stated in a payment plan, not yet confirmed paid.
    pub locked: u128,
    /// S11: pending items held because the party is on fraud hold.
    pub on_hold: u128,
    /// Confirmed paid to the party.
    pub paid: u128,
    /// What the party owes: pending items, and stated transfers not yet confirmed.
    pub pending_payable: u128,
    pub locked_payable: u128,
    pub paid_out: u128,
    /// S10, decision 17: owed by the party but carried into the next statement (a promoter's
    /// debt, or a transfer below `min_payout`).
    pub carried_payable: u128,
    /// Owed to the party, carried into the next statement.
    pub carried_receivable: u128,
}

/// The alliance state: everything the contract needs to apply the next block.
#[derive(Debug, Clone)]
pub struct State {
    alliance: Hash,
    utc_offset_minutes: i32,
    categories: Vec<String>,
    last_block_ms: u64,
    period: u64,
    period_start_ms: u64,
    period_end_ms: u64,
    next_item: u64,
    next_lot: u64,
    /// Sorted by version.
    policies: Vec<Policy>,
    validators: ValidatorSet,
    validator_changes: Vec<ValidatorChange>,
    held: BTreeSet<Party>,
    carry: Vec<Carry>,
    root: Hash,
    roots: StateRoots,

    merchants: Table<PublicKey, Merchant>,
    promoters: Table<PromoterId, Promoter>,
    cards: Table<CardId, Card>,
    referrals: Table<Hash, Referral>,
    batches: Table<Hash, Batch>,
    batch_names: Table<NamedKey, HashValue>,
    coupons: Table<Hash, Coupon>,
    sales: Sales,
    items: Items,
    proposals: Table<Hash, Proposal>,
    agreements: Table<Hash, Agreement>,
    agreement_names: Table<NamedKey, HashValue>,
    overrides: Table<(PublicKey, PublicKey), HashValue>,
    balances: Accounts,
    referrer_stats: Table<Party, ReferrerStats>,
    statements: Table<u64, StatementSummary>,
    /// Every record id ever ordered (membership only).
    seen: SeenIds,
    /// The same ids in application order (the snapshot's and the root's order).
    seen_order: Vec<Hash>,

    // Derived from `items`, rebuilt on decode, never encoded.
    lock_queue: BTreeSet<(u64, u64)>,
    held_items: BTreeSet<(PartyId, u64)>,
    block_seen: Vec<Hash>,
}

thread_local! {
    /// The buffer a block's touched entries are encoded into for hashing, kept from block to
    /// block: a fresh one per block grew to megabytes again each time (every touched card's
    /// lots), in pages the kernel had to zero first, about a tenth of a loaded node's CPU at
    /// 300,000 records. Only its capacity is kept; it holds nothing between blocks.
    static LEAF_BUFFER: std::cell::Cell<Writer> = std::cell::Cell::new(Writer::new());
}

/// A larger buffer (a block that touched very many large entries) is not kept.
const LEAF_BUFFER_KEPT_MAX: usize = 64 << 20;

/// The set of record ids seen: membership only, never iterated into output (the snapshot
/// sorts it). The one hash set of the contract (ledger/tests/architecture.rs allows this line).
type SeenIds = HashSet<Hash, BuildHasherDefault<IdHasher>>;

/// Hashes a record id by folding its four 64-bit words with a multiply: ids are blake3 digests,
/// already uniform, so SipHash's rounds add nothing. Fixed and keyless, so the same ids give the
/// same table on every node — not that its layout could reach output. Keyless means a member
/// could grind records whose ids land in one bucket, paying about as many blake3 evaluations
/// per such record as the set has slots (millions); that would slow this set's probes and
/// never change a result. Only `Hash` values are hashed with it (32 bytes, after the
/// length prefix that slices write first).
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let (words, rest) = bytes.as_chunks::<8>();
        for word in words {
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(*word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for byte in rest {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    #[inline]
    fn write_usize(&mut self, _length_prefix: usize) {}
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Two states are equal when their snapshots are: interned party ids and the touched sets
/// (empty between blocks) are not part of the state.
impl PartialEq for State {
    fn eq(&self, other: &State) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}
impl Eq for State {}

/// The first boundary strictly after `t`.
fn boundary_after(t: u64, period_ms: u64, offset_minutes: i32) -> u64 {
    let offset = i128::from(offset_minutes) * 60_000;
    let p = i128::from(period_ms.max(1));
    let local = i128::from(t) + offset;
    let next = (local.div_euclid(p) + 1) * p - offset;
    u64::try_from(next.max(0)).unwrap_or(u64::MAX)
}

impl State {
    pub fn from_genesis(genesis: &Genesis) -> State {
        let mut merchants = Table::new();
        for m in &genesis.members {
            merchants.insert(m.key, Merchant { profile: m.clone(), status: MerchantStatus::Active });
        }
        let start = genesis.time_ms;
        let mut state = State {
            alliance: genesis.alliance_id(),
            utc_offset_minutes: genesis.utc_offset_minutes,
            categories: genesis.categories.iter().map(|c| c.code.clone()).collect(),
            last_block_ms: start,
            period: 0,
            period_start_ms: start,
            period_end_ms: boundary_after(start, genesis.policy.period_ms, genesis.utc_offset_minutes),
            next_item: 0,
            next_lot: 0,
            policies: vec![genesis.policy.clone()],
            validators: genesis.validators.clone(),
            validator_changes: Vec::new(),
            held: BTreeSet::new(),
            carry: Vec::new(),
            root: Hash::ZERO,
            roots: StateRoots::default(),
            merchants,
            promoters: Table::new(),
            cards: Table::new(),
            referrals: Table::new(),
            batches: Table::new(),
            batch_names: Table::new(),
            coupons: Table::new(),
            sales: Sales::default(),
            items: Items::default(),
            proposals: Table::new(),
            agreements: Table::new(),
            agreement_names: Table::new(),
            overrides: Table::new(),
            balances: Accounts::default(),
            referrer_stats: Table::new(),
            statements: Table::new(),
            seen: SeenIds::default(),
            seen_order: Vec::new(),
            lock_queue: BTreeSet::new(),
            held_items: BTreeSet::new(),
            block_seen: Vec::new(),
        };
        // S2: promoters the genesis registers, as if by passed votes.
        for p in &genesis.promoters {
            state.promoters.insert(p.id.clone(), Promoter { name: p.name.clone(), upstream: p.upstream.clone() });
        }
        state.commit_root(false);
        state
    }

    pub fn alliance_id(&self) -> Hash {
        self.alliance
    }
    pub fn state_root(&self) -> Hash {
        self.root
    }
    /// The validator set in force now; changes voted in apply at the next period boundary.
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.validators
    }
    /// The time of the last applied block (genesis time before the first).
    pub fn last_block_time_ms(&self) -> u64 {
        self.last_block_ms
    }
    /// The alliance's time zone (genesis): minutes east of UTC, for local dates and periods.
    pub fn utc_offset_minutes(&self) -> i32 {
        self.utc_offset_minutes
    }
    /// The open period: (number, start, end).
    pub fn period(&self) -> (u64, u64, u64) {
        (self.period, self.period_start_ms, self.period_end_ms)
    }

    /// The policy in force at `time_ms`: the highest version whose effective time is not after it.
    pub fn policy_at(&self, time_ms: u64) -> &Policy {
        self.policies.iter().rev().find(|p| p.effective_at_ms <= time_ms).unwrap_or(&self.policies[0])
    }
    /// Every policy version, by version.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Applies one block (see the module docs). A block refused with [`InvalidBlock`] leaves
    /// the state as it was: those checks run before anything changes.
    pub fn apply_block(&mut self, block_time_ms: u64, records: &[Record]) -> Result<BlockOutcome, InvalidBlock> {
        self.check_block(block_time_ms, records)?;
        // S10: the first block in a later period closes the earlier one before its records apply.
        let statement = if block_time_ms >= self.period_end_ms { Some(self.close_period(block_time_ms)) } else { None };
        self.last_block_ms = block_time_ms;
        let mut receipts = Vec::with_capacity(records.len());
        for record in records {
            receipts.push(self.apply_record(block_time_ms, record));
        }
        let state_root = self.commit_root(statement.is_some());
        Ok(BlockOutcome { receipts, statement, state_root })
    }

    /// DESIGN §4: what keeps a record out of a block. Judged on the state before the block.
    fn check_block(&self, block_time_ms: u64, records: &[Record]) -> Result<(), InvalidBlock> {
        if block_time_ms < self.last_block_ms {
            return Err(InvalidBlock::TimeBackwards { previous: self.last_block_ms, found: block_time_ms });
        }
        if records.len() > RECORDS_PER_BLOCK_MAX {
            return Err(InvalidBlock::TooManyRecords { count: records.len(), max: RECORDS_PER_BLOCK_MAX });
        }
        let window_ms = self.policy_at(block_time_ms).record_time_window_ms;
        for (index, record) in records.iter().enumerate() {
            let body = record.body();
            if body.alliance != self.alliance {
                return Err(InvalidBlock::WrongAlliance { index, record: record.id() });
            }
            match self.merchants.get(&body.signer) {
                None => return Err(InvalidBlock::NotAMember { index, record: record.id(), signer: body.signer }),
                Some(m) if m.status == MerchantStatus::Removed => {
                    return Err(InvalidBlock::SignerRemoved { index, record: record.id(), signer: body.signer });
                }
                Some(_) => {}
            }
            if check_time_window(body.created_at_ms, block_time_ms, window_ms).is_err() {
                return Err(InvalidBlock::OutsideTimeWindow {
                    index,
                    record: record.id(),
                    created_at_ms: body.created_at_ms,
                    block_time_ms,
                    window_ms,
                });
            }
        }
        Ok(())
    }

    fn apply_record(&mut self, block_ms: u64, record: &Record) -> Receipt {
        let id = record.id();
        // DESIGN §4: the same record twice is a no-op; the first result stands.
        if !self.seen.insert(id) {
            return Receipt::new(id, Code::Duplicate);
        }
        self.block_seen.push(id);
        match self.dispatch(block_ms, record) {
            Ok(()) => Receipt::accepted(id),
            Err(code) => Receipt::new(id, code),
        }
    }

    // ----- items, balances, holds (S8, S11) -----

    fn balance_mut(&mut self, party: &Party) -> &mut Balance {
        let id = self.balances.open(party);
        self.balances.balance_mut(id)
    }

    /// Creates a pending item of a sale (S8), opening the parties' accounts: its id and the
    /// parties'; zero amounts create nothing. One side is always the seller (`me`), whose
    /// account is opened at its first item and its id kept in `me_id`, so a sale looks the
    /// seller up once, not once per item. `seller_pays`: the seller is the debtor.
    #[allow(clippy::too_many_arguments)]
    fn add_seller_item(
        &mut self,
        me: &Party,
        me_id: &mut Option<PartyId>,
        other: &Party,
        seller_pays: bool,
        amount: Amount,
        kind: LineKind,
        source: Hash,
        lock_at_ms: u64,
    ) -> Option<(u64, PartyId, PartyId)> {
        if amount.is_zero() || other == me {
            return None;
        }
        let me = *me_id.get_or_insert_with(|| self.balances.open(me));
        let other = self.balances.open(other);
        let (debtor, creditor) = if seller_pays { (me, other) } else { (other, me) };
        self.add_item_ids(debtor, creditor, amount, kind, source, lock_at_ms).map(|id| (id, debtor, creditor))
    }

    /// A pending item between parties that have accounts.
    fn add_item_ids(&mut self, debtor: PartyId, creditor: PartyId, amount: Amount, kind: LineKind, source: Hash, lock_at_ms: u64) -> Option<u64> {
        if amount.is_zero() || debtor == creditor {
            return None;
        }
        let id = self.next_item;
        self.next_item += 1;
        let cents = u128::from(amount.cents());
        self.balances.balance_mut(creditor).pending_in += cents;
        self.balances.balance_mut(debtor).pending_out += cents;
        self.lock_queue.insert((lock_at_ms, id));
        self.items.insert(id, Item { debtor, creditor, amount, kind, source, lock_at_ms, held: false });
        Some(id)
    }

    /// Takes `delta` off a live item; removes it when nothing is left.
    fn reduce_item(&mut self, id: u64, delta: Amount) {
        let Some(item) = self.items.get_mut(&id) else { return };
        assert!(item.amount >= delta, "S8: a reversal never exceeds what is pending");
        item.amount = item.amount.checked_sub(delta).expect("checked above");
        let (debtor, creditor, left, lock_at, held) = (item.debtor, item.creditor, item.amount, item.lock_at_ms, item.held);
        let cents = u128::from(delta.cents());
        self.balances.balance_mut(creditor).pending_in -= cents;
        self.balances.balance_mut(debtor).pending_out -= cents;
        if left.is_zero() {
            self.items.remove(&id);
            if held {
                self.held_items.remove(&(creditor, id));
            } else {
                self.lock_queue.remove(&(lock_at, id));
            }
        }
    }

    /// S8: reverses `delta` of a sale's item: pending items shrink, locked ones get a clawback.
    fn reverse_item(&mut self, item_id: u64, debtor: PartyId, creditor: PartyId, delta: Amount, source: Hash, block_ms: u64) {
        if delta.is_zero() {
            return;
        }
        let pending = self.items.get(&item_id).is_some_and(|item| item.held || block_ms < item.lock_at_ms);
        if pending {
            self.reduce_item(item_id, delta);
        } else {
            // Locked items are never edited: the creditor pays back in the next statement.
            self.add_item_ids(creditor, debtor, delta, LineKind::Clawback, source, block_ms);
        }
    }

    /// S11: put a party on hold; its pending items stop locking at the next close.
    fn hold(&mut self, party: Party) {
        self.held.insert(party);
    }

    fn release(&mut self, party: &Party) {
        self.held.remove(party);
        // A party without an account has no items.
        let Some(party) = self.balances.id(party) else { return };
        let ids: Vec<u64> = self.held_items.range((party, 0)..=(party, u64::MAX)).map(|(_, id)| *id).collect();
        for id in ids {
            self.held_items.remove(&(party, id));
            if let Some(item) = self.items.get_mut(&id) {
                item.held = false;
                let lock_at = item.lock_at_ms;
                self.lock_queue.insert((lock_at, id));
            }
        }
    }

    // ----- period close (S8, S9, S10) -----

    fn close_period(&mut self, block_ms: u64) -> Statement {
        let policy = self.policy_at(self.period_start_ms).clone();
        let p = policy.period_ms.max(1);
        // The last boundary at or before the block time.
        let new_start = boundary_after(block_ms, p, self.utc_offset_minutes).saturating_sub(p).max(self.period_end_ms);
        let boundaries = 1 + (new_start - self.period_end_ms) / p;
        let (start, end) = (self.period_start_ms, new_start);
        let mut builder = StatementBuilder::new(&self.balances);

        // S10: transfers below min_payout rolled over from the previous statement.
        for c in std::mem::take(&mut self.carry) {
            builder.add_parties(&self.balances, &c.debtor, &c.creditor, LineKind::Rollover, c.amount, c.from_statement);
        }
        // S9: fixed fees accrue once per period (per boundary crossed) while in force.
        let fees: Vec<(Hash, PublicKey, PublicKey, Amount)> = self
            .agreements
            .iter()
            .filter(|(_, a)| a.in_force(start, end))
            .filter_map(|(id, a)| match a.terms {
                crate::record::Terms::FixedFee { payer, amount } => {
                    let payee = if payer == a.proposer { a.counterparty } else { a.proposer };
                    Some((*id, payer, payee, amount))
                }
                _ => None,
            })
            .collect();
        for (id, payer, payee, amount) in fees {
            let removed = |k: &PublicKey| self.merchants.get(k).is_none_or(|m| m.status == MerchantStatus::Removed);
            if removed(&payer) || removed(&payee) {
                continue;
            }
            let total = u128::from(amount.cents()) * u128::from(boundaries);
            builder.add_parties(&self.balances, &Party::Merchant(payer), &Party::Merchant(payee), LineKind::FixedFee, total, id);
        }
        // S8: every item whose lock time fell in the period locks into this statement, unless
        // its creditor is on hold (S11).
        let mut on_hold = vec![false; self.balances.len()];
        for party in &self.held {
            if let Some(id) = self.balances.id(party) {
                on_hold[id as usize] = true;
            }
        }
        // The queue entries before `end`, in (lock time, id) order, split off in one step.
        let later = self.lock_queue.split_off(&(end, 0));
        let due = std::mem::replace(&mut self.lock_queue, later);
        for (_, id) in due {
            let Some(creditor) = self.items.get(&id).map(|item| item.creditor) else { continue };
            if on_hold[creditor as usize] {
                // Stays pending, on hold (the root sees the item changed, as for an edit), in
                // its slot.
                if let Some(item) = self.items.get_mut(&id) {
                    item.held = true;
                }
                self.held_items.insert((creditor, id));
                continue;
            }
            let Some(item) = self.items.remove(&id) else { continue };
            let cents = u128::from(item.amount.cents());
            builder.add(item.debtor, item.creditor, item.kind, cents, item.source);
            self.balances.balance_mut(item.creditor).pending_in -= cents;
            self.balances.balance_mut(item.debtor).pending_out -= cents;
        }
        let min_payout = u128::from(policy.min_payout.cents());
        let statement = builder.finish(&self.balances, self.alliance, self.period, start, end, min_payout);
        let hash = statement.hash();
        for t in &statement.transfers {
            self.balance_mut(&t.payee).locked_in += t.amount;
            self.balance_mut(&t.payer).locked_out += t.amount;
        }
        self.carry = statement
            .rolled_over
            .iter()
            .map(|t| Carry { debtor: t.payer.clone(), creditor: t.payee.clone(), amount: t.amount, from_statement: hash })
            .collect();
        self.statements.insert(
            self.period,
            StatementSummary {
                hash,
                start_ms: start,
                end_ms: end,
                nets: statement.nets.clone(),
                obligations: statement
                    .transfers
                    .iter()
                    .map(|t| Obligation { payer: t.payer.clone(), payee: t.payee.clone(), amount: t.amount, outstanding: t.amount })
                    .collect(),
            },
        );
        // §4: validator changes take effect at the period boundary.
        self.apply_validator_changes();
        self.period += 1;
        self.period_start_ms = end;
        let next_p = self.policy_at(end).period_ms;
        self.period_end_ms = boundary_after(end, next_p, self.utc_offset_minutes);
        statement
    }

    fn pending_validators(&self) -> Vec<Validator> {
        let mut set: Vec<Validator> = self.validators.validators().to_vec();
        for change in &self.validator_changes {
            match change {
                ValidatorChange::Add { merchant, network_key } => {
                    if !set.iter().any(|v| v.key == *merchant || v.network_key == *network_key) {
                        set.push(Validator { key: *merchant, network_key: *network_key });
                    }
                }
                ValidatorChange::Remove { merchant } => {
                    if set.len() > 1 {
                        set.retain(|v| v.key != *merchant);
                    }
                }
            }
        }
        set
    }

    fn apply_validator_changes(&mut self) {
        if self.validator_changes.is_empty() {
            return;
        }
        let set = self.pending_validators();
        self.validator_changes.clear();
        if let Ok(set) = ValidatorSet::new(set) {
            self.validators = set;
        }
    }

    // ----- state root -----

    fn encode_globals(&self, w: &mut Writer) {
        w.u64(self.last_block_ms);
        w.u64(self.period);
        w.u64(self.period_start_ms);
        w.u64(self.period_end_ms);
        w.u64(self.next_item);
        w.u64(self.next_lot);
        w.seq(&self.policies);
        self.validators.encode(w);
        w.seq(&self.validator_changes);
        let held: Vec<Party> = self.held.iter().cloned().collect();
        w.seq(&held);
        w.seq(&self.carry);
    }

    /// Brings every table's tree up to date along the paths this block changed (a block that
    /// closed a period also compacts the items' tree), folds the block's new record ids into
    /// the seen digest, and returns the new root.
    fn commit_root(&mut self, closed_period: bool) -> Hash {
        let mut buffer = LEAF_BUFFER.take();
        let mut globals = Writer::new();
        globals.raw(GLOBALS_DOMAIN);
        self.alliance.encode(&mut globals);
        globals.i32(self.utc_offset_minutes);
        globals.seq(&self.categories);
        self.encode_globals(&mut globals);
        let mut seen = self.roots.seen;
        self.seen_order.reserve(self.block_seen.len());
        let mut pair = [0u8; 64];
        for id in self.block_seen.drain(..) {
            // `H(s ‖ id)`, one 64-byte block.
            pair[..32].copy_from_slice(seen.as_bytes());
            pair[32..].copy_from_slice(id.as_bytes());
            seen = Hash::digest(&pair);
            self.seen_order.push(id);
        }
        self.roots = StateRoots {
            globals: Hash::digest(globals.as_slice()),
            seen,
            tables: [
                self.merchants.commit(&mut buffer),
                self.promoters.commit(&mut buffer),
                self.cards.commit(&mut buffer),
                self.referrals.commit(&mut buffer),
                self.batches.commit(&mut buffer),
                self.batch_names.commit(&mut buffer),
                self.coupons.commit(&mut buffer),
                self.sales.commit(&mut buffer, &self.balances),
                self.items.commit(&mut buffer, &self.balances, closed_period),
                self.proposals.commit(&mut buffer),
                self.agreements.commit(&mut buffer),
                self.agreement_names.commit(&mut buffer),
                self.overrides.commit(&mut buffer),
                self.balances.commit(&mut buffer),
                self.referrer_stats.commit(&mut buffer),
                self.statements.commit(&mut buffer),
            ],
        };
        if buffer.capacity() <= LEAF_BUFFER_KEPT_MAX {
            buffer.clear();
            LEAF_BUFFER.set(buffer);
        }
        self.root = self.roots.root();
        self.root
    }

    /// The roots the state root is the hash of.
    pub fn roots(&self) -> &StateRoots {
        &self.roots
    }

    /// The item of table `table` (tag 1 … 16) under the encoded key `key`, with its path to
    /// the table root. `Err` when the key does not decode as the table's key type, `Ok(None)`
    /// when the table has no such key.
    pub fn prove(&self, table: u8, key: &[u8]) -> Result<Option<StateItem>, DecodeError> {
        fn k<K: Decode>(key: &[u8]) -> Result<K, DecodeError> {
            K::from_bytes(key, key.len())
        }
        let found = match table {
            1 => self.merchants.prove(&k(key)?),
            2 => self.promoters.prove(&k(key)?),
            3 => self.cards.prove(&k(key)?),
            4 => self.referrals.prove(&k(key)?),
            5 => self.batches.prove(&k(key)?),
            6 => self.batch_names.prove(&k(key)?),
            7 => self.coupons.prove(&k(key)?),
            8 => {
                let named: NamedKey = k(key)?;
                self.sales.prove(&named.merchant, &sales::OrderId::new(&named.name), &self.balances)
            }
            9 => self.items.prove(k(key)?, &self.balances),
            10 => self.proposals.prove(&k(key)?),
            11 => self.agreements.prove(&k(key)?),
            12 => self.agreement_names.prove(&k(key)?),
            13 => self.overrides.prove(&k(key)?),
            14 => self.balances.prove(&k(key)?),
            15 => self.referrer_stats.prove(&k(key)?),
            16 => self.statements.prove(&k(key)?),
            _ => return Err(DecodeError::invalid("state key", "tables are numbered 1 to 16")),
        };
        Ok(found.map(|(key, value, path)| StateItem { table, key, value, path, roots: self.roots }))
    }

    // ----- queries -----

    pub fn merchant(&self, key: &PublicKey) -> Option<(&MerchantProfile, MerchantStatus)> {
        self.merchants.get(key).map(|m| (&m.profile, m.status))
    }
    pub fn merchants(&self) -> impl Iterator<Item = (&MerchantProfile, MerchantStatus)> {
        self.merchants.iter().map(|(_, m)| (&m.profile, m.status))
    }
    /// Active members (the electorate of §4).
    pub fn active_members(&self) -> usize {
        self.merchants.iter().filter(|(_, m)| m.status == MerchantStatus::Active).count()
    }
    /// Registered promoters: id, name, upstream.
    pub fn promoters(&self) -> impl Iterator<Item = (&PromoterId, &str, Option<&PromoterId>)> {
        self.promoters.iter().map(|(id, p)| (id, p.name.as_str(), p.upstream.as_ref()))
    }
    /// S7: a card at `now_ms`: lots not yet expired (breakage excluded).
    pub fn card(&self, card: &CardId, now_ms: u64) -> Option<CardView> {
        let c = self.cards.get(card)?;
        let lots: Vec<Lot> = c.lots.iter().filter(|l| l.expires_at_ms > now_ms && l.points > 0).cloned().collect();
        let points = lots.iter().map(|l| l.points).fold(0u64, u64::saturating_add);
        let spendable = lots.iter().filter(|l| l.spendable_at_ms <= now_ms).map(|l| l.points).fold(0u64, u64::saturating_add);
        Some(CardView { home: c.home, lots, points, spendable, debt: c.debt_total() })
    }
    /// S7: spendable points less the card's negative part, at `now_ms` (may be negative).
    pub fn points_balance(&self, card: &CardId, now_ms: u64) -> Option<i128> {
        let view = self.card(card, now_ms)?;
        Some(i128::from(view.points) - i128::from(view.debt))
    }
    pub fn coupon(&self, code_hash: &Hash) -> Option<CouponView> {
        let c = self.coupons.get(code_hash)?;
        let b = self.batches.get(&c.batch)?;
        Some(CouponView {
            issuer: b.issuer,
            batch: c.batch,
            expires_at_ms: b.expires_at_ms,
            redeemed_by: c.redeemed_by.as_ref().map(|k| (k.merchant, k.name.clone())),
        })
    }
    pub fn is_on_hold(&self, party: &Party) -> bool {
        self.held.contains(party)
    }
    /// S8, S11, S12: a party's pending, locked, on-hold and paid money.
    pub fn balance(&self, party: &Party) -> BalanceView {
        let b = self.balances.get(party).copied().unwrap_or_default();
        let held = self.held.contains(party);
        BalanceView {
            pending: if held { 0 } else { b.pending_in },
            on_hold: if held { b.pending_in } else { 0 },
            locked: b.locked_in,
            paid: b.paid_in,
            pending_payable: b.pending_out,
            locked_payable: b.locked_out,
            paid_out: b.paid_out,
            carried_payable: self.carry.iter().filter(|c| c.debtor == *party).map(|c| c.amount).sum(),
            carried_receivable: self.carry.iter().filter(|c| c.creditor == *party).map(|c| c.amount).sum(),
        }
    }
    /// Every party with money on the ledger, sorted.
    pub fn parties(&self) -> impl Iterator<Item = &Party> {
        self.balances.iter().map(|(p, _)| p)
    }
    /// A closed period's summary: hash, nets, and the payment plan with what is unconfirmed.
    /// The full statement (lines) is in the [`BlockOutcome`] that closed it; [`settle_offline`]
    /// recomputes it.
    pub fn statement(&self, period: u64) -> Option<&StatementSummary> {
        self.statements.get(&period)
    }
    pub fn latest_statement(&self) -> Option<(u64, &StatementSummary)> {
        self.statements.iter().next_back().map(|(p, s)| (*p, s))
    }
    /// A proposal: action, proposer, votes, status.
    pub fn proposal(&self, id: &Hash) -> Option<(&crate::record::Action, &PublicKey, &[(PublicKey, bool)], ProposalStatus)> {
        self.proposals.get(id).map(|p| (&p.action, &p.proposer, p.votes.as_slice(), p.status))
    }
    /// Number of items pending or on hold.
    pub fn pending_items(&self) -> usize {
        self.items.len()
    }

    /// Decodes a snapshot written with `Encode`, checking the size limit and rebuilding indexes.
    pub fn decode_snapshot(bytes: &[u8]) -> Result<State, DecodeError> {
        State::from_bytes(bytes, STATE_BYTES_MAX)
    }
}

impl Encode for State {
    fn encode(&self, w: &mut Writer) {
        w.raw(b"PLZS");
        w.u8(SNAPSHOT_VERSION);
        self.alliance.encode(w);
        w.i32(self.utc_offset_minutes);
        w.seq(&self.categories);
        self.encode_globals(w);
        self.merchants.encode(w);
        self.promoters.encode(w);
        self.cards.encode(w);
        self.referrals.encode(w);
        self.batches.encode(w);
        self.batch_names.encode(w);
        self.coupons.encode(w);
        self.sales.encode(w, &self.balances);
        self.items.encode(w, &self.balances);
        self.proposals.encode(w);
        self.agreements.encode(w);
        self.agreement_names.encode(w);
        self.overrides.encode(w);
        self.balances.encode(w);
        self.referrer_stats.encode(w);
        self.statements.encode(w);
        w.seq(&self.seen_order);
    }
}

impl Decode for State {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.take(4)? != b"PLZS" {
            return Err(DecodeError::invalid("state", "not a Plaza state snapshot"));
        }
        let version = r.u8()?;
        if version != SNAPSHOT_VERSION {
            return Err(DecodeError::invalid("state", format!("snapshot version {version}, this plaza reads version {SNAPSHOT_VERSION} (a store or export written by an earlier Plaza, whose state roots hashed differently: export it again from genesis)")));
        }
        let alliance = Hash::decode(r)?;
        let utc_offset_minutes = r.i32()?;
        let n = r.len("categories", crate::genesis::GENESIS_LIST_MAX)?;
        let mut categories = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            categories.push(r.string("category", CODE_MAX)?);
        }
        let last_block_ms = r.u64()?;
        let period = r.u64()?;
        let period_start_ms = r.u64()?;
        let period_end_ms = r.u64()?;
        let next_item = r.u64()?;
        let next_lot = r.u64()?;
        let policies: Vec<Policy> = r.seq("policies", POLICIES_MAX)?;
        if policies.is_empty() || policies.windows(2).any(|w| w[0].version >= w[1].version) {
            return Err(DecodeError::invalid("state", "policies must be non-empty and sorted by version"));
        }
        let validators = ValidatorSet::decode(r)?;
        let validator_changes = r.seq("validator changes", types::LIST_MAX)?;
        let held_list: Vec<Party> = r.seq("held parties", types::LIST_MAX)?;
        if held_list.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DecodeError::invalid("state", "held parties must be sorted"));
        }
        let carry = r.seq("carry", types::LIST_MAX)?;
        let merchants = Table::decode_table(r, "merchants")?;
        let promoters = Table::decode_table(r, "promoters")?;
        let cards = Table::decode_table(r, "cards")?;
        let referrals = Table::decode_table(r, "referrals")?;
        let batches = Table::decode_table(r, "batches")?;
        let batch_names = Table::decode_table(r, "batch names")?;
        let coupons = Table::decode_table(r, "coupons")?;
        let raw_sales = RawSales::decode(r)?;
        let raw_items = RawItems::decode(r)?;
        let proposals = Table::decode_table(r, "proposals")?;
        let agreements = Table::decode_table(r, "agreements")?;
        let agreement_names = Table::decode_table(r, "agreement names")?;
        let overrides = Table::decode_table(r, "overrides")?;
        let balances = Accounts::decode_accounts(r)?;
        let items = raw_items.resolve(&balances)?;
        let sales = raw_sales.resolve(&balances)?;
        let mut state = State {
            alliance,
            utc_offset_minutes,
            categories,
            last_block_ms,
            period,
            period_start_ms,
            period_end_ms,
            next_item,
            next_lot,
            policies,
            validators,
            validator_changes,
            held: held_list.into_iter().collect(),
            carry,
            root: Hash::ZERO,
            roots: StateRoots::default(),
            merchants,
            promoters,
            cards,
            referrals,
            batches,
            batch_names,
            coupons,
            sales,
            items,
            proposals,
            agreements,
            agreement_names,
            overrides,
            balances,
            referrer_stats: Table::decode_table(r, "referrer stats")?,
            statements: Table::decode_table(r, "statements")?,
            seen: SeenIds::default(),
            seen_order: Vec::new(),
            lock_queue: BTreeSet::new(),
            held_items: BTreeSet::new(),
            block_seen: Vec::new(),
        };
        let seen: Vec<Hash> = r.seq("seen records", u32::MAX as usize)?;
        state.seen.reserve(seen.len());
        for id in &seen {
            if !state.seen.insert(*id) {
                return Err(DecodeError::invalid("state", "a record id listed twice"));
            }
        }
        // The fold of the ids before this snapshot: `commit_root` below folds `block_seen`.
        state.block_seen = seen;
        if period_start_ms >= period_end_ms || state.items.last_id().is_some_and(|last| last >= next_item) {
            return Err(DecodeError::invalid("state", "inconsistent period or item counter"));
        }
        for (id, item) in state.items.iter() {
            if item.held {
                state.held_items.insert((item.creditor, id));
            } else {
                state.lock_queue.insert((item.lock_at_ms, id));
            }
        }
        // The trees were rebuilt from the entries; the root follows from them.
        state.commit_root(false);
        Ok(state)
    }
}

/// Decodes one state entry of table `table` (its key and value encodings, docs/FORMAT.md
/// "State tables") and describes both as text; `Err` unless both decode exactly.
pub fn describe_state_item(table: u8, key: &[u8], value: &[u8]) -> Result<(String, String), DecodeError> {
    fn d<T: Decode + std::fmt::Debug>(bytes: &[u8]) -> Result<String, DecodeError> {
        T::from_bytes(bytes, bytes.len()).map(|v| format!("{v:?}"))
    }
    fn raw<T>(bytes: &[u8], read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>) -> Result<T, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = read(&mut r)?;
        r.finish()?;
        Ok(v)
    }
    Ok(match table {
        1 => (d::<PublicKey>(key)?, d::<Merchant>(value)?),
        2 => (d::<PromoterId>(key)?, d::<Promoter>(value)?),
        3 => (d::<CardId>(key)?, d::<types::Card>(value)?),
        4 => (d::<Hash>(key)?, d::<Referral>(value)?),
        5 => (d::<Hash>(key)?, d::<Batch>(value)?),
        6 | 12 => (d::<NamedKey>(key)?, d::<HashValue>(value)?),
        7 => (d::<Hash>(key)?, d::<Coupon>(value)?),
        8 => (d::<NamedKey>(key)?, format!("{:?}", raw(value, types::Sale::decode_raw)?)),
        9 => {
            let item = raw(value, |r| {
                Ok((Party::decode(r)?, Party::decode(r)?, Amount::decode(r)?, LineKind::decode(r)?, Hash::decode(r)?, r.u64()?, r.bool("held")?))
            })?;
            (d::<u64>(key)?, format!("{item:?}"))
        }
        10 => (d::<Hash>(key)?, d::<Proposal>(value)?),
        11 => (d::<Hash>(key)?, d::<Agreement>(value)?),
        13 => (d::<(PublicKey, PublicKey)>(key)?, d::<HashValue>(value)?),
        14 => (d::<Party>(key)?, d::<Balance>(value)?),
        15 => (d::<Party>(key)?, d::<ReferrerStats>(value)?),
        16 => (d::<u64>(key)?, d::<StatementSummary>(value)?),
        _ => return Err(DecodeError::invalid("state key", "tables are numbered 1 to 16")),
    })
}

/// `plaza settle`: replays blocks from genesis and returns the statement of `period` (or, with
/// `None`, the last statement the blocks closed). `Err` names the first block (by index) that
/// could not be applied.
pub fn settle_offline<'a, I>(genesis: &Genesis, blocks: I, period: Option<u64>) -> Result<Option<Statement>, (usize, InvalidBlock)>
where
    I: IntoIterator<Item = (u64, &'a [Record])>,
{
    let mut state = State::from_genesis(genesis);
    let mut last = None;
    for (index, (time_ms, records)) in blocks.into_iter().enumerate() {
        let outcome = state.apply_block(time_ms, records).map_err(|e| (index, e))?;
        if let Some(s) = outcome.statement {
            if period == Some(s.period) {
                return Ok(Some(s));
            }
            last = Some(s);
        }
    }
    Ok(if period.is_none() { last } else { None })
}

/// Milliseconds in `days` days, saturating.
pub(crate) fn days_ms(days: u32) -> u64 {
    u64::from(days).saturating_mul(DAY_MS)
}
