//! Block building, execution and persistence: the application side of consensus.
//!
//! Blocks are executed through the settlement contract before they are voted on (DESIGN §6):
//! a proposal is valid only if its records pass the stateless checks, the contract accepts
//! the block at the header's time, and every root in the header matches what execution
//! produced. Executed-but-not-final blocks are kept, so a chain of notarized blocks can be
//! extended before the first of them is final. A finalized block is written in one atomic,
//! synced batch with its receipts (and a statement and a state snapshot when due); the
//! finalized state is what the API reads.
//!
//! Two states are kept, not one per executed block: the finalized state, and the *head*, the
//! state after the block executed last. A state holds every record id and every order ever
//! applied, so a copy costs time and memory in proportion to the whole chain; a block costs
//! only its own records to execute. So the next block on the head's block executes on the
//! head in place; a finalized block is executed a second time, in place on the finalized
//! state; and a block on any other parent (a fork, a re-proposal after a view change) starts
//! from a copy of the finalized state with the executed blocks between re-applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use plaza_ledger::block::{Block, BlockHeader, EpochEnd, FinalizedBlock, BLOCK_BYTES_MAX};
use plaza_ledger::cert::{Certificate, ValidatorSet, VoteKind};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::{InvalidBlock, State, Statement};
use plaza_ledger::keys::{domain, verify_batch, BatchItem};
use plaza_ledger::receipt::Receipt;
use plaza_ledger::record::Record;
use plaza_ledger::audit::state_proof::snapshot_at_or_below;
use plaza_ledger::execute::execute_checked;
use plaza_ledger::store::{BlockWrite, ChainStore};
use plaza_ledger::{Hash, PublicKey};

/// The finalized tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    pub height: u64,
    /// The tip's epoch (0 at genesis).
    pub epoch: u64,
    pub view: u64,
    pub id: Hash,
    pub time_ms: u64,
    /// The tip ends its epoch: the next block is the first of epoch `epoch + 1`.
    pub ends_epoch: bool,
}

impl Tip {
    fn of(header: &BlockHeader) -> Tip {
        Tip {
            height: header.height,
            epoch: header.epoch,
            view: header.view,
            id: header.id(),
            time_ms: header.time_ms,
            ends_epoch: header.ends_epoch(),
        }
    }

    /// The epoch of the next block, the one consensus runs now.
    pub fn next_epoch(&self) -> u64 {
        self.epoch + u64::from(self.ends_epoch)
    }
}

/// A block this node executed (built or verified) that is not final yet.
pub struct Executed {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    pub statement: Option<Statement>,
}

/// What block sync stored.
#[derive(Debug, Default)]
pub struct SyncOutcome {
    /// The blocks stored, in height order (they stay stored whatever followed).
    pub stored: Vec<FinalizedInfo>,
    /// Why the rest of the answer was refused, if it was.
    pub refused: Option<String>,
}

/// A final block and what is written with it.
struct FinalWrite {
    block: Block,
    receipts: Vec<Receipt>,
    statement: Option<Statement>,
    certificate: Certificate,
    suffix: Vec<u64>,
    /// The set after the block, when it ends its epoch.
    next_validators: Option<ValidatorSet>,
    /// The state after the block, encoded, when a snapshot is due.
    snapshot: Option<Vec<u8>>,
}

/// What finalizing a block changed, for the driver's bookkeeping.
#[derive(Clone, Debug)]
pub struct FinalizedInfo {
    pub height: u64,
    pub time_ms: u64,
    pub records: Vec<Hash>,
}

/// The chain over any [`ChainStore`]: RocksDB in the node, memory in the simulator.
pub struct Chain<S: ChainStore> {
    store: Arc<S>,
    state: Arc<RwLock<State>>,
    tip: Tip,
    executed: BTreeMap<Hash, Executed>,
    /// The state after block `.0` (an executed block or the tip), when one is kept.
    head: Option<(Hash, State)>,
    snapshot_interval_blocks: u64,
    /// Periodic snapshots are written at the heights `h` with `h % interval == phase`.
    snapshot_phase: u64,
    /// The height of the stored state snapshot (0: none).
    snapshot_height: u64,
    /// The snapshot's height when the chain was opened: the blocks above it were re-executed.
    opened_from: u64,
    /// Deliberate bugs (the simulator shows it catches them); only the replica sets them.
    #[doc(hidden)]
    pub bugs: ChainBugs,
}

/// Deliberate execution bugs, for the simulator's injected-bug test only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChainBugs {
    /// Executes a proposal at the verifying node's own clock instead of the header's time: a
    /// nondeterministic contract input (nodes' clocks differ).
    pub execute_at_local_time: bool,
}

fn state_read(state: &RwLock<State>) -> std::sync::RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S: ChainStore> Chain<S> {
    /// Opens the chain at the store's tip: the latest snapshot, then the blocks after it
    /// re-executed (each state root checked against its header). A periodic snapshot is
    /// written every `snapshot_interval_blocks` blocks, at the heights that leave `phase`
    /// (reduced modulo the interval) as the remainder.
    pub fn open(store: Arc<S>, snapshot_interval_blocks: u64, phase: u64) -> Result<Chain<S>, String> {
        let (state, tip, snapshot_height) = Self::load(&store)?;
        Ok(Chain {
            store,
            state: Arc::new(RwLock::new(state)),
            tip,
            executed: BTreeMap::new(),
            head: None,
            snapshot_interval_blocks,
            snapshot_phase: phase % snapshot_interval_blocks.max(1),
            snapshot_height,
            opened_from: snapshot_height,
            bugs: ChainBugs::default(),
        })
    }

    /// The finalized state and tip from the store alone, and the snapshot's height.
    fn load(store: &Arc<S>) -> Result<(State, Tip, u64), String> {
        let genesis = store.genesis().clone();
        let tip_height = store.tip_height().map_err(|e| e.to_string())?;
        let (mut height, mut state) = match snapshot_at_or_below(store.as_ref(), tip_height)? {
            Some((h, state)) => (h, state),
            None => (0, State::from_genesis(&genesis)),
        };
        let snapshot_height = height;
        if height > 0 {
            let block = store.block(height).map_err(|e| e.to_string())?.ok_or("snapshot block missing")?;
            if block.block.header.state_root != state.state_root() {
                return Err(format!("state snapshot at height {height} does not match the block's state root"));
            }
        }
        while height < tip_height {
            height += 1;
            let block = store.block(height).map_err(|e| e.to_string())?.ok_or_else(|| format!("block {height} missing"))?;
            let outcome = state
                .apply_block(block.block.header.time_ms, &block.block.records)
                .map_err(|e| format!("re-executing stored block {height}: {e}"))?;
            if outcome.state_root != block.block.header.state_root {
                return Err(format!("re-executing stored block {height}: state root differs from its header"));
            }
        }
        let tip = match store.block(tip_height).map_err(|e| e.to_string())? {
            Some(b) => Tip::of(&b.block.header),
            None => Tip { height: 0, epoch: 0, view: 0, id: store.alliance_id(), time_ms: genesis.time_ms, ends_epoch: false },
        };
        Ok((state, tip, snapshot_height))
    }

    /// After a failed write: the finalized state and tip are read back from the store, so
    /// memory never runs ahead of the disk.
    fn reload(&mut self) -> Result<(), String> {
        let (state, tip, snapshot_height) = Self::load(&self.store)?;
        *self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
        self.tip = tip;
        self.snapshot_height = snapshot_height;
        self.head = None;
        Ok(())
    }

    /// The height of the snapshot the chain was opened from (0: from genesis); the blocks
    /// from there to the tip were re-executed then.
    pub fn opened_from_snapshot(&self) -> u64 {
        self.opened_from
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
    /// The finalized state, shared with the API.
    pub fn shared_state(&self) -> Arc<RwLock<State>> {
        self.state.clone()
    }
    pub fn tip(&self) -> Tip {
        self.tip
    }
    pub fn alliance(&self) -> Hash {
        self.store.alliance_id()
    }
    pub fn executed(&self, id: &Hash) -> Option<&Executed> {
        self.executed.get(id)
    }
    pub fn forget_executed(&mut self) {
        self.executed.clear();
        if self.head.as_ref().is_some_and(|(id, _)| *id != self.tip.id) {
            self.head = None;
        }
    }

    /// The epoch of a block built on `parent` (the finalized tip or an executed block).
    fn child_epoch(&self, parent: &Hash) -> Option<u64> {
        if *parent == self.tip.id {
            return Some(self.tip.next_epoch());
        }
        self.executed.get(parent).map(|e| e.block.header.child_epoch())
    }

    /// Whether the executed (not yet final) block `id` ends its epoch.
    pub fn ends_epoch(&self, id: &Hash) -> bool {
        self.executed.get(id).is_some_and(|e| e.block.header.ends_epoch())
    }

    /// The state after `parent` (the finalized tip or an executed block), to execute a child
    /// on: the head itself when it is that block's (the head is then gone), else a copy of the
    /// finalized state with the executed blocks from the tip to `parent` applied again.
    fn state_after(&mut self, parent: &Hash) -> Result<State, String> {
        if self.head.as_ref().is_some_and(|(id, _)| id == parent)
            && let Some((_, state)) = self.head.take()
        {
            return Ok(state);
        }
        let mut path = Vec::new();
        let mut cursor = *parent;
        while cursor != self.tip.id {
            let e = self.executed.get(&cursor).ok_or_else(|| format!("parent {parent} was not executed here"))?;
            path.push(&e.block);
            cursor = e.block.header.parent;
        }
        self.replayed(path.into_iter().rev())
    }

    /// A copy of the finalized state with `blocks` (the tip's descendants, in order, all
    /// executed here before) applied again, each checked against its header's state root.
    fn replayed<'a>(&self, blocks: impl IntoIterator<Item = &'a Block>) -> Result<State, String> {
        let mut state = state_read(&self.state).clone();
        for block in blocks {
            let h = &block.header;
            let outcome = state.apply_block(h.time_ms, &block.records).map_err(|e| format!("re-applying block {}: {e}", h.height))?;
            if outcome.state_root != h.state_root {
                return Err(format!("re-applying block {} gave another state root", h.height));
            }
        }
        Ok(state)
    }

    /// Record ids in the executed, not yet final blocks from `parent` back to the tip: a new
    /// block on `parent` must not carry them again.
    pub fn in_flight(&self, parent: &Hash) -> BTreeSet<Hash> {
        let mut out = BTreeSet::new();
        let mut cursor = *parent;
        while let Some(e) = self.executed.get(&cursor) {
            out.extend(e.block.records.iter().map(Record::id));
            cursor = e.block.header.parent;
        }
        out
    }

    /// Builds the next block on `parent` from `candidates` (already checked and signature
    /// verified). Records the contract would refuse at this block time are left out and
    /// returned so the mempool can drop them.
    pub fn build(
        &mut self,
        view: u64,
        parent: Hash,
        height: u64,
        now_ms: u64,
        proposer: PublicKey,
        mut candidates: Vec<Record>,
    ) -> Result<(Hash, Vec<u8>, Vec<Hash>), String> {
        let epoch = self.child_epoch(&parent).ok_or_else(|| format!("cannot build on unknown parent {parent}"))?;
        let mut state = self.state_after(&parent).map_err(|e| format!("cannot build on {parent}: {e}"))?;
        let validator_set_hash = state.validator_set().hash();
        let time_ms = now_ms.max(state.last_block_time_ms());
        let mut dropped = Vec::new();
        let outcome = loop {
            // A refused block leaves the state as it was (`State::apply_block`).
            match state.apply_block(time_ms, &candidates) {
                Ok(outcome) => break outcome,
                Err(e) => {
                    let index = match e {
                        InvalidBlock::WrongAlliance { index, .. }
                        | InvalidBlock::NotAMember { index, .. }
                        | InvalidBlock::SignerRemoved { index, .. }
                        | InvalidBlock::OutsideTimeWindow { index, .. } => index,
                        InvalidBlock::TooManyRecords { max, .. } => {
                            candidates.truncate(max);
                            continue;
                        }
                        InvalidBlock::TimeBackwards { .. } => return Err(e.to_string()),
                    };
                    dropped.push(candidates.remove(index).id());
                }
            }
        };
        let header = BlockHeader {
            height,
            epoch,
            view,
            parent,
            time_ms,
            proposer,
            records_root: Block::compute_records_root(&candidates),
            receipts_root: Block::compute_receipts_root(&outcome.receipts),
            state_root: outcome.state_root,
            validator_set_hash,
            statement_hash: outcome.statement.as_ref().map(Statement::hash),
            // CONSENSUS.md, "Epochs": the block whose execution changes the set ends the epoch.
            next_validator_set_hash: plaza_ledger::execute::next_validator_set_hash(validator_set_hash, &state),
        };
        let block = Block { header, records: candidates };
        let id = block.id();
        let payload = block.to_bytes();
        self.executed.insert(id, Executed { block, receipts: outcome.receipts, statement: outcome.statement });
        self.head = Some((id, state));
        Ok((id, payload, dropped))
    }

    /// Checks and executes a proposed block (CONSENSUS.md's `Verify`). `known` tells which
    /// record ids already passed signature verification (the mempool's), the rest are
    /// verified here in one batch.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        &mut self,
        view: u64,
        id: Hash,
        parent: Hash,
        height: u64,
        payload: &[u8],
        leader: PublicKey,
        now_ms: u64,
        skew_ms_max: u64,
        known: &dyn Fn(&Hash) -> bool,
    ) -> Result<(), String> {
        if self.executed.contains_key(&id) {
            return Ok(());
        }
        let block = Block::from_bytes(payload, BLOCK_BYTES_MAX).map_err(|e| format!("block does not decode: {e}"))?;
        let h = &block.header;
        if block.id() != id || h.view != view || h.parent != parent || h.height != height {
            return Err("block id, view, parent or height differ from the proposal".into());
        }
        if h.proposer != leader {
            return Err("the block's proposer is not the view's leader".into());
        }
        // Only a time ahead of our clock is refused: a block from the past is re-verified late
        // (after a restart, a late delivery, a clock step) and must stay valid, or no node
        // that missed it in time could ever extend it once it is notarized. The contract keeps
        // block times from going backwards.
        if h.time_ms > now_ms.saturating_add(skew_ms_max) {
            return Err(format!("block time {} is more than {skew_ms_max} ms ahead of our clock {now_ms}", h.time_ms));
        }
        if !block.records_match_header() {
            return Err("records root differs from the records carried".into());
        }
        let alliance = self.alliance();
        for r in &block.records {
            r.check_without_signature(&alliance).map_err(|e| format!("record {}: {e}", r.id()))?;
        }
        let unknown: Vec<&Record> = block.records.iter().filter(|r| !known(&r.id())).collect();
        if !unknown.is_empty() {
            let messages: Vec<Vec<u8>> = unknown.iter().map(|r| r.signing_bytes()).collect();
            let items: Vec<BatchItem<'_>> = unknown
                .iter()
                .zip(&messages)
                .map(|(r, m)| BatchItem { key: r.signer(), domain: domain::RECORD, message: m, signature: r.signature() })
                .collect();
            if let Some(bad) = verify_batch(&items).iter().position(|ok| !ok) {
                return Err(format!("record {} has a bad signature", unknown[bad].id()));
            }
        }
        let epoch = self.child_epoch(&parent).ok_or_else(|| format!("parent {parent} was not executed here"))?;
        let mut state = self.state_after(&parent)?;
        let block = if self.bugs.execute_at_local_time {
            // The bug: the contract's input is this node's clock, not the agreed header.
            let mut local = block;
            local.header.time_ms = now_ms.max(state.last_block_time_ms());
            local
        } else {
            block
        };
        // A refused proposal leaves `state` unspecified: it is dropped, and the next block on
        // this parent starts from the finalized state.
        let outcome = execute_checked(&mut state, &block, epoch).map_err(|e| format!("proposal: {e}"))?;
        self.executed.insert(id, Executed { block, receipts: outcome.receipts, statement: outcome.statement });
        self.head = Some((id, state));
        Ok(())
    }

    /// Stores an executed block as final with `certificate` (of it or of a descendant; for an
    /// epoch-ending block, of it or of its last suffix block, whose views are `suffix`).
    pub fn finalize(&mut self, id: &Hash, certificate: Certificate, suffix: Vec<u64>) -> Result<Option<FinalizedInfo>, String> {
        let Some(executed) = self.executed.get(id) else {
            return Err(format!("finalized block {id} was not executed here"));
        };
        if executed.block.header.height <= self.tip.height {
            return Ok(None);
        }
        if executed.block.header.parent != self.tip.id {
            return Err(format!("finalized block {id} does not extend the tip"));
        }
        let Some(executed) = self.executed.remove(id) else { return Ok(None) };
        let Executed { block, receipts, statement } = executed;
        // The finalized state moves forward by executing the block again, in place: it was
        // executed on this same state before, so it must give the header's roots again.
        let h = &block.header;
        let again = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner).apply_block(h.time_ms, &block.records);
        if again.map(|o| o.state_root).as_ref() != Ok(&h.state_root) {
            self.reload()?;
            return Err(format!("finalized block {} executed differently on the finalized state", h.height));
        }
        // Encoded under a read lock: the API keeps reading while a snapshot is written out.
        let (next_validators, snapshot) = {
            let state = state_read(&self.state);
            (h.ends_epoch().then(|| state.validator_set().clone()), self.snapshot_due(h.height).then(|| state.to_bytes()))
        };
        let write = FinalWrite { block, receipts, statement, certificate, suffix, next_validators, snapshot };
        match self.store_final(write) {
            Ok(info) => Ok(Some(info)),
            Err(e) => {
                self.reload()?;
                Err(e)
            }
        }
    }

    fn snapshot_due(&self, height: u64) -> bool {
        height % self.snapshot_interval_blocks == self.snapshot_phase
    }

    /// Writes a snapshot of the finalized state when the stored one is older than the tip, so
    /// the next start re-executes no block (a stopping node calls it). Returns the height
    /// written, if one was.
    pub fn snapshot_tip(&mut self) -> Result<Option<u64>, String> {
        if self.tip.height == self.snapshot_height {
            return Ok(None);
        }
        let bytes = state_read(&self.state).to_bytes();
        self.store.put_state_snapshot(self.tip.height, &bytes).map_err(|e| format!("writing the state snapshot at {}: {e}", self.tip.height))?;
        self.snapshot_height = self.tip.height;
        Ok(Some(self.tip.height))
    }

    /// Writes a final block with its receipts (and statement when due) in one synced batch and
    /// moves the tip, then the state snapshot when due; the caller has the finalized state
    /// follow.
    fn store_final(&mut self, write: FinalWrite) -> Result<FinalizedInfo, String> {
        let FinalWrite { block, receipts, statement, certificate, suffix, next_validators, snapshot } = write;
        let height = block.header.height;
        // The epoch-ending block carries the next set in full (FORMAT.md, "Blocks").
        let epoch_end = next_validators.map(|next_validators| EpochEnd { next_validators, suffix });
        let finalized = FinalizedBlock { block, certificate, epoch_end };
        let statement_bytes = statement.as_ref().map(|s| (s.period, s.to_bytes()));
        self.store
            .append(BlockWrite {
                block: &finalized,
                receipts: &receipts,
                statement: statement_bytes.as_ref().map(|(p, b)| (*p, b.as_slice())),
                state_snapshot: None,
            })
            .map_err(|e| format!("storing block {height}: {e}"))?;
        let header = &finalized.block.header;
        self.tip = Tip::of(header);
        // After the block, not in its batch: the block's commit does not wait for the whole
        // state to be written, and a snapshot that fails costs only a longer next start.
        if let Some(bytes) = snapshot {
            match self.store.put_periodic_snapshot(height, &bytes) {
                Ok(()) => self.snapshot_height = height,
                Err(e) => tracing::warn!(height, "state snapshot not written (the next start re-executes from an earlier one): {e}"),
            }
        }
        // Executed blocks at or below the tip can never be final now; nor can the head's,
        // unless it is the tip.
        self.executed.retain(|_, e| e.block.header.height > height);
        if self.head.as_ref().is_some_and(|(id, _)| *id != self.tip.id && !self.executed.contains_key(id)) {
            self.head = None;
        }
        Ok(FinalizedInfo { height, time_ms: header.time_ms, records: finalized.block.records.iter().map(Record::id).collect() })
    }

    /// Block sync: checks, executes and stores blocks fetched from a peer, in height order.
    /// A block whose certificate names a descendant is stored once that descendant arrives
    /// in the same answer.
    ///
    /// A block's finalize certificate is checked against the validator set its parent's state
    /// gives, and the block is re-executed and compared with every root of its header. Its
    /// records pass the stateless checks, but their signatures are not verified again: the
    /// certificate's 2f+1 validators, at least f+1 of them honest, verified and executed them
    /// before voting, and the records root the certificate signs covers every signature
    /// (CONSENSUS.md, "Block sync"; the auditor's `plaza verify` still checks them all). The
    /// blocks execute forward on one state; what was stored stays stored when a later block
    /// is refused.
    pub fn apply_synced(&mut self, blocks: Vec<FinalizedBlock>) -> SyncOutcome {
        let alliance = self.alliance();
        let tip_id = self.tip.id;
        let mut state = match self.state_after(&tip_id) {
            Ok(state) => state,
            Err(e) => return SyncOutcome { stored: Vec::new(), refused: Some(e) },
        };
        // Checked and executed: `ready` can be stored, `waiting` needs a later certificate.
        let mut ready: Vec<FinalWrite> = Vec::new();
        let mut waiting: Vec<FinalWrite> = Vec::new();
        let mut refused = None;
        let mut parent_id = tip_id;
        let mut next_height = self.tip.height + 1;
        let mut epoch = self.tip.next_epoch();
        for fb in blocks {
            if fb.block.header.height < next_height {
                continue;
            }
            match self.check_synced(&alliance, &mut state, fb, parent_id, next_height, epoch) {
                Ok((write, final_here)) => {
                    let h = &write.block.header;
                    parent_id = h.id();
                    next_height += 1;
                    epoch = h.child_epoch();
                    waiting.push(write);
                    if final_here {
                        ready.append(&mut waiting);
                    }
                }
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if refused.is_some() || !waiting.is_empty() {
            // `state` is past what can be stored, or unspecified after a refused block: the
            // state after `ready` again from the finalized one. Only a faulty answer, or one
            // that ends before a certificate it needs, comes here.
            state = match self.replayed(ready.iter().map(|w| &w.block)) {
                Ok(state) => state,
                Err(e) => return SyncOutcome { stored: Vec::new(), refused: Some(e) },
            };
        }
        let count = ready.len();
        let mut stored = Vec::new();
        for write in ready {
            match self.store_final(write) {
                Ok(info) => stored.push(info),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if stored.len() < count {
            // A write failed part-way: what is on disk decides.
            if let Err(e) = self.reload() {
                refused = Some(e);
            }
        } else if !stored.is_empty() {
            *self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
        } else {
            self.head = Some((tip_id, state));
        }
        SyncOutcome { stored, refused }
    }

    /// One synced block's checks and execution on `state` (the state after its parent):
    /// the block's write, and whether it can be stored now (its certificate names it, or for
    /// an epoch-ending block the end of its suffix).
    fn check_synced(
        &self,
        alliance: &Hash,
        state: &mut State,
        fb: FinalizedBlock,
        parent_id: Hash,
        next_height: u64,
        epoch: u64,
    ) -> Result<(FinalWrite, bool), String> {
        let end = fb.suffix_end(alliance);
        let FinalizedBlock { block, certificate, epoch_end } = fb;
        let h = &block.header;
        if h.height != next_height || h.parent != parent_id {
            return Err(format!("synced block {} does not extend height {}", h.height, next_height - 1));
        }
        if certificate.target.kind != VoteKind::Finalize {
            return Err(format!("synced block {} carries no finalization", h.height));
        }
        if certificate.target.epoch != h.epoch {
            return Err(format!("synced block {} of epoch {} carries a certificate of epoch {}", h.height, h.epoch, certificate.target.epoch));
        }
        if h.ends_epoch() && certificate.target.block != end {
            return Err(format!("synced block {} ends its epoch but is not final within it (its own or its suffix's certificate)", h.height));
        }
        certificate.verify(alliance, state.validator_set()).map_err(|e| format!("synced block {}: certificate: {e}", h.height))?;
        if !block.records_match_header() {
            return Err(format!("synced block {}: records root differs", h.height));
        }
        for r in &block.records {
            r.check_without_signature(alliance).map_err(|e| format!("synced block {}: record {}: {e}", h.height, r.id()))?;
        }
        let outcome = execute_checked(state, &block, epoch).map_err(|e| format!("synced block {}: {e}", h.height))?;
        if let Some(carried) = &epoch_end
            && carried.next_validators != *state.validator_set()
        {
            return Err(format!("synced block {}: the next validator set carried is not the one execution gives", h.height));
        }
        let next_validators = h.ends_epoch().then(|| state.validator_set().clone());
        let snapshot = self.snapshot_due(h.height).then(|| state.to_bytes());
        let final_here = certificate.target.block == end;
        let suffix = epoch_end.map(|e| e.suffix).unwrap_or_default();
        let write = FinalWrite { block, receipts: outcome.receipts, statement: outcome.statement, certificate, suffix, next_validators, snapshot };
        Ok((write, final_here))
    }

    /// Blocks `from..` for a peer's sync request, up to `bytes_max` in total.
    pub fn blocks_for_sync(&self, from: u64, count_max: u64, bytes_max: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut total = 0;
        let end = from.saturating_add(count_max).min(self.tip.height + 1);
        for height in from.max(1)..end {
            let Ok(Some(block)) = self.store.block(height) else { break };
            let bytes = block.to_bytes();
            if total + bytes.len() > bytes_max && !out.is_empty() {
                break;
            }
            total += bytes.len();
            out.push(bytes);
        }
        out
    }
}
