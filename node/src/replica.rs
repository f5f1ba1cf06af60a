//! The replica: one validator's (or member's) whole logic, sans I/O (docs/CONSENSUS.md,
//! "The replica").
//!
//! Inputs come in through `handle_*` with the time ([`Now`]); what must happen outside comes
//! out of [`Replica::poll_effect`] as [`Effect`]s, in order, and [`Replica::poll_timeout`]
//! says when to call [`Replica::handle_timeout`] next. The replica owns the Simplex state
//! machine, mempool admission, proposal building, the execution of every proposal through
//! the contract before voting, the consensus log, finalization (through its [`Chain`] over a
//! [`ChainStore`]) and the block-sync policy. It reads no clock, does no network I/O, uses
//! no randomness and iterates no hash map: the node's driver (tokio, libp2p, RocksDB) and
//! the simulator (simulated network, clock and [`plaza_ledger::store::MemStore`]) are two
//! shells around this same code.
//!
//! The shell's contract:
//! - [`Effect::Persist`]: write the entries in one synced batch before performing any later
//!   effect; if the write fails, call [`Replica::persist_failed`] (consensus stops: nothing
//!   after it may be sent).
//! - [`Effect::Broadcast`] / [`Effect::Send`]: consensus messages to validators.
//! - [`Effect::Relay`]: records newly admitted here, to gossip to members.
//! - [`Effect::RequestSync`]: ask one member (the `attempt`-th in turn) for finalized blocks
//!   and hand the answer to [`Replica::handle_sync_response`], or call
//!   [`Replica::sync_failed`].
//! - [`Effect::Finalized`], [`Effect::InvalidProposal`], [`Effect::Voted`]: facts for
//!   metrics, logs and the API; the blocks are already stored.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use plaza_consensus::{
    Config as ConsensusConfig, Consensus, FinalizedTip, Input, Message, Output, Proposal, Restart, MESSAGE_BYTES_MAX,
};
use plaza_ledger::block::{FinalizedBlock, BLOCK_BYTES_MAX};
use plaza_ledger::cert::{Certificate, Vote, VoteKind};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::contract::{MerchantStatus, State};
use plaza_ledger::record::Record;
use plaza_ledger::store::ChainStore;
use plaza_ledger::{Hash, Keypair, PublicKey};
use tracing::{debug, info, warn};

use crate::chain::{Chain, FinalizedInfo};
use crate::config::NodeConfig;
use crate::mempool::{Mempool, Refusal};
use crate::wire::{SyncRequest, SyncResponse, RECORDS_PER_GOSSIP_MAX, SYNC_BLOCKS_MAX, SYNC_RESPONSE_BYTES_MAX};
use crate::{Admission, Rejection};

/// Bytes of records in one proposed block (below consensus's payload limit).
pub const BLOCK_RECORD_BYTES_MAX: usize = 3 * 1024 * 1024;
/// How often the replica considers block sync.
pub const SYNC_INTERVAL_MS: u64 = 500;
/// The node's sync request timeout (the network gives up on a request after 20 s).
pub const SYNC_TIMEOUT_MS: u64 = 25_000;
/// The consensus log is pruned below the finalized view every this many blocks (one range
/// delete each; what is below the finalized view, its proposals' whole blocks among it, is
/// never read again, and every block it is kept longer is disk the store holds twice).
pub const LOG_PRUNE_BLOCKS: u64 = 8;
/// Admission times remembered for the finality-latency figure, at most.
const ADMITTED_MAX: usize = 200_000;

/// The time, as the shell's clocks show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// A monotonic clock: consensus timers, batching, sync pacing.
    pub ms: u64,
    /// The wall clock: block times and records' time windows.
    pub wall_ms: u64,
}

/// What the replica needs from the node's configuration.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub consensus: ConsensusConfig,
    pub block_interval_ms: u64,
    pub empty_block_interval_ms: u64,
    pub block_records_max: usize,
    pub block_time_skew_ms_max: u64,
    pub snapshot_interval_blocks: u64,
    pub mempool_records_max: usize,
    pub mempool_records_per_merchant_max: usize,
    /// A sync request without an answer for this long is given up.
    pub sync_timeout_ms: u64,
    /// Deliberate bugs (the simulator's injected-bug test); refused without the
    /// `inject-bugs` feature.
    #[doc(hidden)]
    pub bugs: ReplicaBugs,
}

impl ReplicaConfig {
    pub fn from_node(config: &NodeConfig) -> ReplicaConfig {
        ReplicaConfig {
            consensus: ConsensusConfig {
                view_timeout_ms: config.view_timeout_ms,
                rebroadcast_interval_ms: config.rebroadcast_interval_ms,
                ..ConsensusConfig::default()
            },
            block_interval_ms: config.block_interval_ms,
            empty_block_interval_ms: config.empty_block_interval_ms,
            block_records_max: config.block_records_max,
            block_time_skew_ms_max: config.block_time_skew_ms_max,
            snapshot_interval_blocks: config.snapshot_interval_blocks,
            mempool_records_max: config.mempool_records_max,
            mempool_records_per_merchant_max: config.mempool_records_per_merchant_max,
            sync_timeout_ms: SYNC_TIMEOUT_MS,
            bugs: ReplicaBugs::default(),
        }
    }
}

/// Deliberate bugs, for the simulator's injected-bug test only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaBugs {
    /// Hands out a vote before the consensus-log batch it depends on (the driver's rule
    /// "write before you speak" broken).
    pub send_before_persist: bool,
    /// Executes proposals at the node's own clock (see [`crate::chain::ChainBugs`]).
    pub execute_at_local_time: bool,
}

/// Something the shell must do or may report, in the order given.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Effect {
    /// Consensus-log entries: write them in one synced batch before any later effect.
    Persist(Vec<(Vec<u8>, Vec<u8>)>),
    /// A consensus message for every other validator.
    Broadcast(Message),
    /// A consensus message for one validator.
    Send { to: PublicKey, message: Message },
    /// Records admitted here, to gossip to the members (at most [`RECORDS_PER_GOSSIP_MAX`]).
    Relay(Vec<Record>),
    /// Ask a member for finalized blocks: the `attempt`-th connected member, in turn.
    RequestSync { request: SyncRequest, attempt: u64 },
    /// Blocks stored as final (in height order), by consensus or by block sync; with the
    /// monotonic milliseconds from admission here to finality of the records admitted here.
    Finalized { blocks: Vec<FinalizedInfo>, synced: bool, latencies_ms: Vec<u64> },
    /// A proposal this replica refused to vote for.
    InvalidProposal { view: u64, height: u64, block: Hash, reason: String },
    /// A notarize vote, this long after its proposal arrived for verification.
    Voted { latency_ms: u64 },
}

struct PendingProposal {
    view: u64,
    parent: Hash,
    height: u64,
    since_ms: u64,
}

/// The consensus log holds votes, proposals and certificates, ordered by epoch and view so
/// that one range delete prunes all: a vote's key is `epoch ‖ view ‖ kind` (17 bytes, kind
/// 1–3), a certificate's `epoch ‖ view ‖ 0xfe ‖ kind` (18 bytes), a proposal's
/// `epoch ‖ view ‖ 0xff ‖ block id` (49 bytes).
pub fn vote_log_key(vote: &Vote) -> [u8; 17] {
    let mut key = [0u8; 17];
    key[..8].copy_from_slice(&vote.target.epoch.to_be_bytes());
    key[8..16].copy_from_slice(&vote.target.view.to_be_bytes());
    key[16] = vote.target.kind as u8;
    key
}

const LOG_CERTIFICATE: u8 = 0xfe;
const LOG_PROPOSAL: u8 = 0xff;

pub fn certificate_log_key(cert: &Certificate) -> [u8; 18] {
    let mut key = [0u8; 18];
    key[..8].copy_from_slice(&cert.target.epoch.to_be_bytes());
    key[8..16].copy_from_slice(&cert.target.view.to_be_bytes());
    key[16] = LOG_CERTIFICATE;
    key[17] = cert.target.kind as u8;
    key
}

/// A proposal carries no epoch: it is logged under the epoch of the instance that voted for it.
pub fn proposal_log_key(epoch: u64, proposal: &Proposal) -> [u8; 49] {
    let mut key = [0u8; 49];
    key[..8].copy_from_slice(&epoch.to_be_bytes());
    key[8..16].copy_from_slice(&proposal.view.to_be_bytes());
    key[16] = LOG_PROPOSAL;
    key[17..].copy_from_slice(proposal.block.as_bytes());
    key
}

/// The first log key of `view` in `epoch`: everything below it belongs to earlier views.
pub fn log_position_key(epoch: u64, view: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&epoch.to_be_bytes());
    key[8..].copy_from_slice(&view.to_be_bytes());
    key
}

/// Reads the consensus log of `epoch` back (keys as [`vote_log_key`] describes; entries of
/// other epochs are skipped), for a restart.
pub fn read_consensus_log<'a>(entries: impl IntoIterator<Item = (&'a Vec<u8>, &'a Vec<u8>)>, epoch: u64) -> Result<Restart, String> {
    let mut restart = Restart::default();
    for (key, value) in entries {
        if key.get(..8) != Some(epoch.to_be_bytes().as_slice()) {
            continue;
        }
        match key.get(16) {
            Some(&LOG_PROPOSAL) => restart
                .proposals
                .push(Proposal::from_bytes(value, MESSAGE_BYTES_MAX).map_err(|e| format!("proposal log: {e}"))?),
            Some(&LOG_CERTIFICATE) => restart
                .certificates
                .push(Certificate::from_bytes(value, MESSAGE_BYTES_MAX).map_err(|e| format!("certificate log: {e}"))?),
            _ => restart.votes.push(Vote::from_bytes(value, 1024).map_err(|e| format!("vote log: {e}"))?),
        }
    }
    Ok(restart)
}

pub struct Replica<S: ChainStore> {
    config: ReplicaConfig,
    keypair: Keypair,
    chain: Chain<S>,
    mempool: Arc<Mutex<Mempool>>,
    consensus: Option<Consensus>,
    /// The consensus log as this process wrote it (the store's log at open, plus every
    /// batch handed out since): a restart of consensus inside the process reads this, since
    /// a batch handed out may not have reached the disk yet.
    log: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Entries staged for the next vote's batch.
    staged: Vec<(Vec<u8>, Vec<u8>)>,
    effects: VecDeque<Effect>,
    timer_ms: Option<u64>,
    proposal: Option<PendingProposal>,
    relay: Vec<Record>,
    admitted_at: BTreeMap<Hash, u64>,
    verify_started: BTreeMap<Hash, u64>,
    sync_in_flight: Option<u64>,
    /// Consensus stopped for good (the log could not be written): never restarted.
    stopped: bool,
    sync_attempt: u64,
    next_sync_ms: u64,
    tip_changed_ms: u64,
    last_log_prune: u64,
    now: Now,
}

/// Where in the snapshot interval this node writes its periodic state snapshot, from its
/// key: nodes that all wrote theirs at the same height paused together (encoding and writing
/// the whole state takes a node tens to hundreds of milliseconds), and the block after it
/// waited for the slowest of a quorum; spread over the interval, one node pauses at a time
/// and the others still make a quorum. Which heights a node snapshots at changes no answer.
pub fn snapshot_phase(key: &PublicKey) -> u64 {
    let bytes = key.as_bytes();
    u64::from_be_bytes(bytes[..8].try_into().expect("a key has 32 bytes"))
}

fn lock(mempool: &Mutex<Mempool>) -> MutexGuard<'_, Mempool> {
    mempool.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S: ChainStore> Replica<S> {
    /// Opens the replica on its store (re-executing stored blocks after the last snapshot)
    /// and starts consensus from the finalized tip and the consensus log. `mempool` is shared
    /// with whatever reads it (the API).
    pub fn open(store: Arc<S>, keypair: Keypair, config: ReplicaConfig, mempool: Arc<Mutex<Mempool>>, now: Now) -> Result<Replica<S>, String> {
        let log: BTreeMap<Vec<u8>, Vec<u8>> = store.vote_log().map_err(|e| e.to_string())?.into_iter().collect();
        if config.bugs != ReplicaBugs::default() && !cfg!(feature = "inject-bugs") {
            return Err("deliberate bugs need the inject-bugs feature".into());
        }
        let mut chain = Chain::open(store, config.snapshot_interval_blocks, snapshot_phase(&keypair.public()))?;
        chain.bugs.execute_at_local_time = config.bugs.execute_at_local_time;
        let last_log_prune = chain.tip().height;
        let mut replica = Replica {
            config,
            keypair,
            chain,
            mempool,
            consensus: None,
            log,
            staged: Vec::new(),
            effects: VecDeque::new(),
            timer_ms: None,
            proposal: None,
            relay: Vec::new(),
            admitted_at: BTreeMap::new(),
            verify_started: BTreeMap::new(),
            sync_in_flight: None,
            stopped: false,
            sync_attempt: 0,
            next_sync_ms: now.ms + SYNC_INTERVAL_MS,
            tip_changed_ms: now.ms,
            last_log_prune,
            now,
        };
        replica.restart_consensus()?;
        Ok(replica)
    }

    // ------------------------------------------------------------------ reading

    pub fn chain(&self) -> &Chain<S> {
        &self.chain
    }
    pub fn state(&self) -> Arc<std::sync::RwLock<State>> {
        self.chain.shared_state()
    }
    /// The chain, for the simulator's Byzantine mocks (an equivocator builds a second block).
    #[doc(hidden)]
    pub fn chain_mut(&mut self) -> &mut Chain<S> {
        &mut self.chain
    }
    pub fn public_key(&self) -> PublicKey {
        self.keypair.public()
    }
    /// Whether this replica takes part in consensus (its key is in the validator set).
    pub fn is_validator(&self) -> bool {
        self.consensus.is_some()
    }
    pub fn view(&self) -> Option<u64> {
        self.consensus.as_ref().map(Consensus::view)
    }
    pub fn consensus(&self) -> Option<&Consensus> {
        self.consensus.as_ref()
    }
    pub fn mempool_len(&self) -> usize {
        lock(&self.mempool).len()
    }

    /// The next effect to perform, in order.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Replica::handle_timeout`] should be called next (monotonic ms).
    pub fn poll_timeout(&self) -> u64 {
        let mut at = self.next_sync_ms;
        if let Some(t) = self.timer_ms {
            at = at.min(t);
        }
        if let Some(p) = &self.proposal
            && self.consensus.is_some()
        {
            let wait = if lock(&self.mempool).is_empty() { self.config.empty_block_interval_ms } else { self.config.block_interval_ms };
            at = at.min(p.since_ms + wait);
        }
        at
    }

    // ------------------------------------------------------------------ inputs

    /// The time passed [`Replica::poll_timeout`] (early calls do nothing harmful).
    pub fn handle_timeout(&mut self, now: Now) {
        self.now = now;
        if self.timer_ms.is_some_and(|t| t <= now.ms) {
            self.timer_ms = None;
            self.feed(Input::Timeout);
        }
        self.try_propose();
        if now.ms >= self.next_sync_ms {
            self.next_sync_ms = now.ms + SYNC_INTERVAL_MS;
            // Ask for everything when the tip has not moved for a while, otherwise only when
            // clearly behind: in steady state consensus itself finalizes each block.
            let stale = now.ms > self.tip_changed_ms + 2 * self.config.consensus.view_timeout_ms || self.consensus.is_none();
            self.request_sync(if stale { 1 } else { 3 });
        }
    }

    /// A consensus message from the validator with vote key `from`.
    pub fn handle_message(&mut self, now: Now, from: PublicKey, message: Message) {
        self.now = now;
        // A vote or certificate of a later epoch: the others finalized an epoch-ending block
        // we lack; block sync brings it (consensus ignores messages of other epochs).
        let epoch = match &message {
            Message::Vote(vote) => Some(vote.target.epoch),
            Message::Certificate(cert) => Some(cert.target.epoch),
            _ => None,
        };
        if epoch.is_some_and(|e| e > self.chain.tip().next_epoch()) {
            self.request_sync(1);
        }
        self.feed(Input::Message { from, message });
    }

    /// Records submitted through the API (already checked: fields and signature). Returns
    /// what became of each.
    pub fn handle_submit(&mut self, now: Now, records: Vec<Record>) -> Vec<Admission> {
        self.now = now;
        let answers = self.admit(records, true, false);
        self.flush_relay();
        self.try_propose();
        answers
    }

    /// Records gossiped by a member: stateless checks and one batched signature check, then
    /// admission (the relay of what is new is left to the gossip layer, which already
    /// forwards what it delivered).
    pub fn handle_gossip_records(&mut self, now: Now, records: Vec<Record>) {
        self.now = now;
        let alliance = self.chain.alliance();
        let fresh: Vec<Record> = {
            let mempool = lock(&self.mempool);
            let store = self.chain.store();
            records
                .into_iter()
                .filter(|r| !mempool.contains(&r.id()))
                .filter(|r| !matches!(store.record_location(&r.id()), Ok(Some(_))))
                .collect()
        };
        if fresh.is_empty() {
            return;
        }
        let verdicts = Record::check_all(&fresh, &alliance);
        let good: Vec<Record> = fresh.into_iter().zip(verdicts).filter(|(_, verdict)| verdict.is_ok()).map(|(r, _)| r).collect();
        // Looked up in the store above, and nothing was stored since.
        self.admit(good, false, true);
        self.try_propose();
    }

    /// A peer's sync request: our finalized blocks from `request.from`, when we are at
    /// least `lag_min` ahead.
    pub fn handle_sync_request(&self, request: &SyncRequest) -> SyncResponse {
        let tip = self.chain.tip().height;
        let blocks = if tip + 1 >= request.from.saturating_add(request.lag_min) {
            self.chain.blocks_for_sync(request.from, request.count.min(SYNC_BLOCKS_MAX), SYNC_RESPONSE_BYTES_MAX)
        } else {
            Vec::new()
        };
        SyncResponse { tip, blocks }
    }

    /// The answer to our [`Effect::RequestSync`]: each block's certificate is checked and
    /// each block re-executed and compared with its header before it is stored; consensus
    /// restarts from the new tip when it fell behind.
    pub fn handle_sync_response(&mut self, now: Now, response: SyncResponse) -> Result<(), String> {
        self.now = now;
        self.sync_in_flight = None;
        if response.blocks.is_empty() {
            return Ok(());
        }
        let mut blocks = Vec::with_capacity(response.blocks.len());
        for bytes in &response.blocks {
            blocks.push(
                FinalizedBlock::from_bytes(bytes, BLOCK_BYTES_MAX + 64 * 1024).map_err(|e| format!("sync: undecodable block: {e}"))?,
            );
        }
        let before = self.chain.tip().height;
        let outcome = self.chain.apply_synced(blocks);
        let refused = outcome.refused.map(|e| format!("sync: refused blocks: {e}"));
        let stored = outcome.stored;
        if stored.is_empty() {
            return refused.map_or(Ok(()), Err);
        }
        let after = stored.last().map_or(before, |i| i.height);
        info!(from = before + 1, to = after, peer_tip = response.tip, "synced finalized blocks");
        self.after_finalized(stored, true);
        // Behind, or a new epoch (which may make this node a validator or end its role).
        let restart = match &self.consensus {
            Some(c) => c.finalized().height < after || c.epoch() != self.chain.tip().next_epoch(),
            None => !self.stopped,
        };
        if restart {
            self.restart_consensus()?;
        }
        if let Some(e) = refused {
            // What was stored before the refused block counts; the rest comes from another peer.
            return Err(e);
        }
        if response.tip > after {
            self.request_sync(1);
        }
        Ok(())
    }

    /// A member peer connected (this node started, or a link came back): a node that was
    /// away is behind, so it asks for blocks at once rather than at the next sync tick (the
    /// peer answers with nothing when it is not ahead).
    pub fn peer_connected(&mut self, now: Now) {
        self.now = now;
        self.request_sync(1);
    }

    /// Our sync request got no answer (no peer, a failed stream).
    pub fn sync_failed(&mut self) {
        self.sync_in_flight = None;
    }

    /// The shell could not write an [`Effect::Persist`] batch: without the log this replica
    /// could equivocate after a crash, so consensus stops and nothing queued is performed.
    pub fn persist_failed(&mut self, reason: &str) {
        warn!("cannot persist the consensus log, stopping consensus: {reason}");
        self.stopped = true;
        self.consensus = None;
        self.proposal = None;
        self.timer_ms = None;
        self.effects.retain(|e| !matches!(e, Effect::Persist(_) | Effect::Broadcast(_) | Effect::Send { .. }));
    }

    // ------------------------------------------------------------------ admission

    /// Mempool admission for records that passed the stateless checks and the signature
    /// check. Records from a signer who is not a member (never was, or was removed) are
    /// dropped here: no block could carry them, so they are neither kept nor relayed.
    /// `looked_up`: the caller found none of them in the store (each lookup of a new record
    /// is a miss that costs a memtable search, so it is not made twice).
    fn admit(&mut self, records: Vec<Record>, relay: bool, looked_up: bool) -> Vec<Admission> {
        let now = self.now;
        let state = self.chain.shared_state();
        let state = state.read().unwrap_or_else(PoisonError::into_inner);
        let window = state.policy_at(now.wall_ms).record_time_window_ms;
        let mut answers = Vec::with_capacity(records.len());
        let mut mempool = lock(&self.mempool);
        for record in records {
            let id = record.id();
            if !looked_up && matches!(self.chain.store().record_location(&id), Ok(Some(_))) {
                answers.push(Admission::Final);
                continue;
            }
            match state.merchant(record.signer()) {
                Some((_, status)) if status != MerchantStatus::Removed => {}
                _ => {
                    answers.push(Admission::Refused(Rejection::NotAMember(*record.signer())));
                    continue;
                }
            }
            match mempool.insert(record.clone(), now.wall_ms, window) {
                Ok(()) => {
                    if self.admitted_at.len() < ADMITTED_MAX {
                        self.admitted_at.insert(id, now.ms);
                    }
                    if relay {
                        self.relay.push(record);
                    }
                    answers.push(Admission::Accepted);
                }
                Err(Refusal::Duplicate) => answers.push(Admission::Pending),
                Err(Refusal::Full) => answers.push(Admission::Refused(Rejection::MempoolFull)),
                Err(Refusal::MerchantFull) => answers.push(Admission::Refused(Rejection::MerchantQueueFull)),
                Err(Refusal::OutsideWindow) => answers.push(Admission::Refused(Rejection::OutsideTimeWindow)),
            }
        }
        answers
    }

    fn flush_relay(&mut self) {
        while !self.relay.is_empty() {
            let take = self.relay.len().min(RECORDS_PER_GOSSIP_MAX);
            let chunk: Vec<Record> = self.relay.drain(..take).collect();
            self.effects.push_back(Effect::Relay(chunk));
        }
    }

    // ------------------------------------------------------------------ consensus

    /// Starts consensus for the epoch the finalized tip leads to (CONSENSUS.md, "Epochs"):
    /// after an epoch-ending tip, the next epoch with the new set from view 1; otherwise the
    /// tip's epoch from the tip's view. A node whose key is not in the set is no validator
    /// (a removed validator stays a member, syncing; a new one starts voting here).
    fn restart_consensus(&mut self) -> Result<(), String> {
        if self.stopped {
            return Ok(());
        }
        let set = self.chain.shared_state().read().unwrap_or_else(PoisonError::into_inner).validator_set().clone();
        let previous = self.consensus.take().map(|c| (c.epoch(), c.validator_set().clone()));
        let tip = self.chain.tip();
        let epoch = tip.next_epoch();
        if previous.as_ref().is_some_and(|(e, _)| *e != epoch) || (previous.is_none() && tip.ends_epoch) {
            // The earlier epochs' log can never matter again.
            self.prune_log(epoch, 0);
        }
        if !set.contains(&self.keypair.public()) {
            if previous.is_some() {
                info!(epoch, "no longer a validator: following the chain as a member");
            }
            self.proposal = None;
            self.timer_ms = None;
            return Ok(());
        }
        let mut restart = read_consensus_log(&self.log, epoch)?;
        restart.finalized = match (tip.height, tip.ends_epoch) {
            (0, _) => None,
            // The first view of the new epoch extends the block that ended the last one.
            (_, true) => Some(FinalizedTip { view: 0, height: tip.height, block: tip.id }),
            (_, false) => Some(FinalizedTip { view: tip.view, height: tip.height, block: tip.id }),
        };
        let keypair = Keypair::from_secret(&self.keypair.secret_bytes()).map_err(|e| e.to_string())?;
        let mut consensus = Consensus::new(self.config.consensus.clone(), keypair, set, self.chain.alliance(), epoch, restart)
            .map_err(|e| format!("consensus: {e}"))?;
        match previous {
            Some((e, old)) if e + 1 == epoch => {
                info!(epoch, validators = consensus.validator_set().len(), "a new epoch: validating with its set");
                consensus.inject_previous_set(old);
            }
            None if tip.ends_epoch => info!(epoch, validators = consensus.validator_set().len(), "validating from this epoch on"),
            _ => {}
        }
        self.consensus = Some(consensus);
        self.chain.forget_executed();
        self.proposal = None;
        self.staged.clear();
        self.timer_ms = None;
        self.feed(Input::Start);
        Ok(())
    }

    fn feed(&mut self, input: Input) {
        let mut queue = VecDeque::from([input]);
        let first_effect = self.effects.len();
        while let Some(input) = queue.pop_front() {
            let Some(consensus) = self.consensus.as_mut() else { break };
            let outputs = consensus.handle(self.now.ms, input);
            for output in outputs {
                if let Some(next) = self.output(output) {
                    queue.push_back(next);
                }
            }
        }
        // CONSENSUS.md, "Epochs": the epoch-ending block is final; the next epoch starts on it
        // once this step's outputs are done (from the old tip again, should storing it have
        // failed: then block sync brings it).
        if self.consensus.as_ref().is_some_and(Consensus::ended)
            && let Err(e) = self.restart_consensus()
        {
            warn!("cannot start the next epoch's consensus: {e}");
        }
        if self.config.bugs.send_before_persist {
            // The bug: every batch of this step goes out after the messages that needed it.
            let (persists, rest): (Vec<Effect>, Vec<Effect>) =
                self.effects.drain(first_effect..).partition(|e| matches!(e, Effect::Persist(_)));
            self.effects.extend(rest);
            self.effects.extend(persists);
        }
    }

    /// Hands out the staged log entries as one batch (consensus always follows them with
    /// the vote that needs them).
    fn write_log(&mut self) {
        if self.staged.is_empty() {
            return;
        }
        let entries = std::mem::take(&mut self.staged);
        for (key, value) in &entries {
            self.log.insert(key.clone(), value.clone());
        }
        self.effects.push_back(Effect::Persist(entries));
    }

    fn output(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Persist(vote) => {
                // CONSENSUS.md step 14: durable before anything that follows is sent.
                self.staged.push((vote_log_key(&vote).to_vec(), vote.to_bytes()));
                self.write_log();
                if vote.target.kind == VoteKind::Notarize
                    && let Some(at) = self.verify_started.remove(&vote.target.block)
                {
                    self.effects.push_back(Effect::Voted { latency_ms: self.now.ms.saturating_sub(at) });
                }
                None
            }
            Output::PersistProposal(proposal) => {
                // The block outlives a crash of everyone who voted for it.
                let epoch = self.consensus.as_ref().map_or(0, Consensus::epoch);
                self.staged.push((proposal_log_key(epoch, &proposal).to_vec(), proposal.to_bytes()));
                None
            }
            Output::PersistCertificate(cert) => {
                self.staged.push((certificate_log_key(&cert).to_vec(), cert.to_bytes()));
                None
            }
            Output::Broadcast(message) => {
                self.write_log();
                self.effects.push_back(Effect::Broadcast(message));
                None
            }
            Output::Send { to, message } => {
                self.write_log();
                self.effects.push_back(Effect::Send { to, message });
                None
            }
            Output::SetTimer { at_ms } => {
                self.timer_ms = Some(at_ms);
                None
            }
            Output::Propose { view, parent, height } => {
                self.proposal = Some(PendingProposal { view, parent, height, since_ms: self.now.ms });
                None
            }
            Output::Verify { view, block, parent, height, payload } => {
                let leader = self.consensus.as_ref().map(|c| c.leader(view))?;
                let verdict = {
                    let mempool = lock(&self.mempool);
                    let known = |id: &Hash| mempool.contains(id);
                    self.chain.verify(view, block, parent, height, &payload, leader, self.now.wall_ms, self.config.block_time_skew_ms_max, &known)
                };
                let ends_epoch = self.chain.ends_epoch(&block);
                let valid = match verdict {
                    Ok(()) => {
                        self.verify_started.insert(block, self.now.ms);
                        if self.verify_started.len() > 1024 {
                            self.verify_started.pop_first();
                        }
                        true
                    }
                    Err(reason) => {
                        warn!(view, height, block = %block, "invalid proposal: {reason}");
                        self.effects.push_back(Effect::InvalidProposal { view, height, block, reason });
                        false
                    }
                };
                Some(Input::Verdict { block, valid, ends_epoch })
            }
            Output::Finalized(finalized) => {
                match self.chain.finalize(&finalized.block, finalized.certificate, finalized.suffix) {
                    Ok(Some(info)) => self.after_finalized(vec![info], false),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(height = finalized.height, "cannot store a finalized block ({e}); will sync");
                        self.request_sync(1);
                    }
                }
                None
            }
        }
    }

    /// The leader builds its block once records are batched or the empty-block interval
    /// passed: records from the mempool, executed through the contract at the wall clock.
    fn try_propose(&mut self) {
        let Some(p) = &self.proposal else { return };
        let Some(consensus) = &self.consensus else { return };
        if consensus.view() != p.view {
            self.proposal = None;
            return;
        }
        let waited = self.now.ms.saturating_sub(p.since_ms);
        let has_records = !lock(&self.mempool).is_empty();
        if !(has_records && waited >= self.config.block_interval_ms || waited >= self.config.empty_block_interval_ms) {
            return;
        }
        let Some(p) = self.proposal.take() else { return };
        let exclude = self.chain.in_flight(&p.parent);
        let candidates = {
            let mut mempool = lock(&self.mempool);
            let mut picked = mempool.select(self.config.block_records_max, &exclude);
            let mut bytes = 0;
            picked.retain(|r| {
                bytes += r.to_bytes().len();
                bytes <= BLOCK_RECORD_BYTES_MAX
            });
            picked
        };
        let proposer = consensus.public_key();
        match self.chain.build(p.view, p.parent, p.height, self.now.wall_ms, proposer, candidates) {
            Ok((block, payload, dropped)) => {
                if !dropped.is_empty() {
                    debug!(count = dropped.len(), "records the contract refused at this block time were dropped");
                    lock(&self.mempool).remove(&dropped);
                }
                let ends_epoch = self.chain.ends_epoch(&block);
                self.feed(Input::Proposed { view: p.view, block, payload, ends_epoch });
            }
            Err(e) => warn!(view = p.view, "cannot build a block: {e}"),
        }
    }

    fn after_finalized(&mut self, infos: Vec<FinalizedInfo>, synced: bool) {
        let Some(last) = infos.last() else { return };
        let (height, time_ms) = (last.height, last.time_ms);
        let mut latencies_ms = Vec::new();
        let ids: Vec<Hash> = infos.iter().flat_map(|i| i.records.iter().copied()).collect();
        for id in &ids {
            if let Some(at) = self.admitted_at.remove(id) {
                latencies_ms.push(self.now.ms.saturating_sub(at));
            }
        }
        let window = self.chain.shared_state().read().unwrap_or_else(PoisonError::into_inner).policy_at(time_ms).record_time_window_ms;
        {
            let mut mempool = lock(&self.mempool);
            mempool.remove(&ids);
            mempool.expire(time_ms, window);
        }
        self.tip_changed_ms = self.now.ms;
        if height >= self.last_log_prune + LOG_PRUNE_BLOCKS {
            self.last_log_prune = height;
            let tip = self.chain.tip();
            let view = if tip.ends_epoch { 0 } else { tip.view };
            self.prune_log(tip.next_epoch(), view);
        }
        if self.admitted_at.len() >= ADMITTED_MAX {
            self.admitted_at.clear();
        }
        self.effects.push_back(Effect::Finalized { blocks: infos, synced, latencies_ms });
    }

    /// Drops the consensus log below `view` of `epoch`, here and on disk.
    fn prune_log(&mut self, epoch: u64, view: u64) {
        let key = log_position_key(epoch, view);
        self.log = self.log.split_off(key.as_slice());
        if let Err(e) = self.chain.store().delete_vote_log_below(&key) {
            warn!("cannot prune the consensus log: {e}");
        }
    }

    fn request_sync(&mut self, lag_min: u64) {
        if let Some(at) = self.sync_in_flight
            && self.now.ms < at + self.config.sync_timeout_ms
        {
            return;
        }
        self.sync_attempt = self.sync_attempt.wrapping_add(1);
        let request = SyncRequest { from: self.chain.tip().height + 1, count: SYNC_BLOCKS_MAX, lag_min };
        self.effects.push_back(Effect::RequestSync { request, attempt: self.sync_attempt });
        self.sync_in_flight = Some(self.now.ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_ledger::cert::VoteTarget;

    #[test]
    fn the_consensus_log_orders_by_view_and_reads_back_every_kind() {
        let key = Keypair::from_seed(b"driver-log");
        let alliance = Hash::digest(b"driver-log alliance");
        let block = Hash::digest(b"block");
        let vote = |target: VoteTarget| target.sign(&alliance, &key);
        let notarize = vote(VoteTarget::notarize(2, 4, block));
        let finalize = vote(VoteTarget::finalize(2, 4, block));
        let older = vote(VoteTarget::nullify(2, 3));
        let earlier_epoch = vote(VoteTarget::nullify(1, 9));
        let cert = Certificate::from_votes(notarize.target, [notarize]);
        let proposal =
            Proposal { view: 4, parent_view: 3, parent: alliance, height: 1, block, payload: b"p".to_vec(), signature: notarize.signature };
        let mut log = BTreeMap::new();
        log.insert(vote_log_key(&notarize).to_vec(), notarize.to_bytes());
        log.insert(vote_log_key(&finalize).to_vec(), finalize.to_bytes());
        log.insert(vote_log_key(&older).to_vec(), older.to_bytes());
        log.insert(certificate_log_key(&cert).to_vec(), cert.to_bytes());
        log.insert(proposal_log_key(2, &proposal).to_vec(), proposal.to_bytes());
        log.insert(vote_log_key(&earlier_epoch).to_vec(), earlier_epoch.to_bytes());
        // One range delete below `epoch ‖ view` prunes every kind of entry of the views and
        // epochs before.
        let boundary = log_position_key(2, 4);
        let below: Vec<&Vec<u8>> = log.keys().filter(|k| k.as_slice() < boundary.as_slice()).collect();
        assert_eq!(below, vec![&vote_log_key(&earlier_epoch).to_vec(), &vote_log_key(&older).to_vec()]);

        // Only the epoch asked for is read back.
        let restart = read_consensus_log(&log, 2).expect("a well-formed log");
        assert_eq!(restart.votes, vec![older, notarize, finalize]);
        assert_eq!(restart.proposals, vec![proposal.clone()]);
        assert_eq!(restart.certificates, vec![cert]);

        // A damaged entry is a clear error naming the log it came from, not a panic.
        assert_eq!(read_consensus_log(&log, 1).expect("well-formed").votes, vec![earlier_epoch]);
        log.insert(proposal_log_key(2, &proposal).to_vec(), vec![1, 2, 3]);
        let error = read_consensus_log(&log, 2).expect_err("damaged");
        assert!(error.starts_with("proposal log:"), "{error}");
    }
}
