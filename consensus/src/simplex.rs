//! The Simplex state machine. Comments `CONSENSUS.md step N` cite docs/CONSENSUS.md.

use std::collections::{BTreeMap, BTreeSet};

use plaza_ledger::cert::{suffix_block_id, Certificate, ValidatorSet, Vote, VoteKind, VoteTarget};
use plaza_ledger::keys::{domain, verify_batch, BatchItem};
use plaza_ledger::{Hash, Keypair, PublicKey, Signature};
use thiserror::Error;

use crate::message::{Message, Proposal, Request, CERTIFICATE_REQUEST_VIEWS_MAX, PAYLOAD_BYTES_MAX};

/// Votes and proposals more than this many views ahead of the current view are dropped
/// (they would let a peer fill our memory); certificates are accepted from any view.
pub const VIEWS_AHEAD_MAX: u64 = 256;
/// Views kept below the last finalized view, to answer peers' certificate requests.
const VIEWS_RETAINED: u64 = 64;
/// Finalized blocks kept below the finalized tip, to answer peers' block requests.
/// Catching up further is the node's block sync, not consensus.
const BLOCKS_RETAINED: u64 = 256;
/// Proposals received but not yet verified (waiting for a parent or a verdict).
const PENDING_MAX: usize = 512;

/// Tuning. Durations are in the driver's milliseconds; consensus only compares them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// A view that has not produced a notarization this long after we entered it is nullified.
    pub view_timeout_ms: u64,
    /// While stuck after nullifying, re-send our votes and latest certificates this often.
    pub rebroadcast_interval_ms: u64,
    /// A leader from whom we heard nothing (no vote, no proposal) for this many views is
    /// skipped at once: we nullify its view without waiting for the timeout.
    pub silent_leader_views: u64,
    /// Largest payload accepted in a proposal (at most [`PAYLOAD_BYTES_MAX`]).
    pub payload_bytes_max: usize,
    /// Deliberate protocol bugs, for the simulator's own tests only (see [`InjectedBugs`]).
    #[doc(hidden)]
    pub injected_bugs: InjectedBugs,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            view_timeout_ms: 2_000,
            rebroadcast_interval_ms: 1_000,
            silent_leader_views: 10,
            payload_bytes_max: PAYLOAD_BYTES_MAX,
            injected_bugs: InjectedBugs::default(),
        }
    }
}

/// Known-wrong rules that the simulator must catch. [`Consensus::new`] refuses any of them
/// unless this crate is built with the `inject-bugs` feature, which only testnet's tests enable.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InjectedBugs {
    /// Certificates at 2f votes instead of n − f.
    pub quorum_too_small: bool,
    /// Send finalize together with notarize, before any notarization was seen.
    pub finalize_without_notarization: bool,
    /// Ignore the vote log on restart.
    pub forget_vote_log: bool,
    /// In the first view of a new epoch, keep using the previous epoch's validator set
    /// (leader, quorum, who may vote), as given by [`Consensus::inject_previous_set`].
    pub old_set_one_view_too_long: bool,
}

/// Why a consensus instance could not be created.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConsensusError {
    #[error("this validator's key is not in the validator set")]
    NotAValidator,
    #[error("the restart vote log holds a vote not signed by this validator for this alliance (view {0})")]
    ForeignVote(u64),
    #[error("the restart proposal log holds a proposal not signed by its view's leader (view {0})")]
    ForeignProposal(u64),
    #[error("the restart log holds a certificate that does not verify (view {0})")]
    InvalidCertificate(u64),
    #[error("bug injection needs the `inject-bugs` feature of plaza-consensus (testnet tests only)")]
    BugsNotEnabled,
    #[error("payload_bytes_max {0} exceeds the protocol limit {PAYLOAD_BYTES_MAX}")]
    PayloadLimit(usize),
}

/// The last block this validator finalized, read back from the node's durable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalizedTip {
    pub view: u64,
    pub height: u64,
    pub block: Hash,
}

/// What a restarting validator read back from disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restart {
    /// Every vote of [`Output::Persist`] since (at least) the finalized tip's view (votes of
    /// other epochs are ignored).
    pub votes: Vec<Vote>,
    /// Every proposal of [`Output::PersistProposal`] above the finalized tip (older ones are
    /// ignored). They are verified again through [`Output::Verify`] after [`Input::Start`].
    pub proposals: Vec<Proposal>,
    /// Every certificate of [`Output::PersistCertificate`] above the finalized tip.
    pub certificates: Vec<Certificate>,
    /// None: nothing finalized yet (the chain starts at the alliance id).
    pub finalized: Option<FinalizedTip>,
}

/// Something that happened to this validator.
// Inputs and outputs are moved once, never stored in bulk: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// First input after [`Consensus::new`]: arms the timer, re-sends logged votes.
    Start,
    /// A message from the validator with this (vote-signing) key.
    Message { from: PublicKey, message: Message },
    /// The timer of the latest [`Output::SetTimer`] expired (early or stale calls are ignored).
    Timeout,
    /// The application's block for [`Output::Propose`]; `ends_epoch` when executing it
    /// made a different validator set effective (CONSENSUS.md, "Epochs").
    Proposed { view: u64, block: Hash, payload: Vec<u8>, ends_epoch: bool },
    /// The application's verdict on [`Output::Verify`], after executing the block;
    /// `ends_epoch` as for [`Input::Proposed`].
    Verdict { block: Hash, valid: bool, ends_epoch: bool },
}

/// A finalized block. Blocks are finalized in height order, each exactly once. The
/// certificate is the finalization of this block or of a descendant (then this block is final
/// because the certified one extends it: `certificate.target.block != block`). Epoch-suffix
/// blocks are never output: the epoch-ending block is, with `suffix` the views of the suffix
/// blocks from its child to the certified one (empty otherwise), and it is the last output of
/// this instance (CONSENSUS.md, "Epochs").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finalized {
    pub view: u64,
    pub height: u64,
    pub block: Hash,
    pub certificate: Certificate,
    pub suffix: Vec<u64>,
}

/// Something the driver must do, in the order given.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write this own vote durably; only then perform the outputs that follow.
    Persist(Vote),
    /// Write this proposal durably, before the notarize vote for it that follows: a notarized
    /// block must survive the crash of every validator that holds it (CONSENSUS.md step 14).
    /// It may be dropped once its height is finalized.
    PersistProposal(Proposal),
    /// Write this notarization durably, before the finalize vote that follows: a validator
    /// that finalized a view can always show the notarization that justified it, even after
    /// a crash (CONSENSUS.md step 14). It may be dropped once its view is finalized.
    PersistCertificate(Certificate),
    /// Send to every other validator.
    Broadcast(Message),
    /// Send to one validator.
    Send { to: PublicKey, message: Message },
    /// Call `handle(now, Input::Timeout)` once `now >= at_ms`; replaces any earlier timer.
    SetTimer { at_ms: u64 },
    /// Build a block on `parent` at `height` and answer with [`Input::Proposed`].
    Propose { view: u64, parent: Hash, height: u64 },
    /// Execute this block (its parent was verified before) and answer with [`Input::Verdict`].
    /// The verdict must also check that `block` is the id of a block with this parent and height.
    Verify { view: u64, block: Hash, parent: Hash, height: u64, payload: Vec<u8> },
    /// A block is final.
    Finalized(Finalized),
}

#[derive(Clone, Copy, Debug)]
struct BlockInfo {
    view: u64,
    height: u64,
    parent: Hash,
    /// The block ends the epoch, or is a suffix block above one: its children are suffix blocks.
    closes: bool,
    /// An epoch-suffix block (built by consensus, not part of the ledger).
    suffix: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerKind {
    View,
    Rebroadcast,
}

#[derive(Default, Debug)]
struct ViewState {
    /// The first authentic proposal of this view's leader.
    proposal: Option<Hash>,
    /// As leader: the parent we asked the application to build on.
    building: Option<(u64, Hash, u64)>,
    notarize: BTreeMap<PublicKey, (Hash, Signature)>,
    nullify: BTreeMap<PublicKey, Signature>,
    finalize: BTreeMap<PublicKey, (Hash, Signature)>,
    notarization: Option<Certificate>,
    nullification: Option<Certificate>,
    finalization: Option<Certificate>,
    sent_notarize: Option<Vote>,
    sent_nullify: Option<Vote>,
    sent_finalize: Option<Vote>,
    certificates_requested_ms: Option<u64>,
}

/// One validator's Simplex instance.
pub struct Consensus {
    config: Config,
    keypair: Keypair,
    me: PublicKey,
    set: ValidatorSet,
    /// The previous epoch's set, only for the `old_set_one_view_too_long` injected bug.
    previous_set: Option<ValidatorSet>,
    alliance: Hash,
    /// The epoch this instance runs: one validator set, views from 1.
    epoch: u64,
    /// The epoch-ending block is final: this instance is done (the driver starts the next).
    ended: bool,
    view: u64,
    timer: Option<(u64, TimerKind)>,
    views: BTreeMap<u64, ViewState>,
    /// Verified blocks (and the finalized tip), with the proposals that carried them.
    blocks: BTreeMap<Hash, BlockInfo>,
    proposals: BTreeMap<Hash, Proposal>,
    /// Authentic proposals waiting for their parent or for the application's verdict.
    pending: BTreeMap<Hash, Proposal>,
    verifying: BTreeSet<Hash>,
    requested_ms: BTreeMap<Hash, u64>,
    finalized: FinalizedTip,
    /// Per validator index: the highest view in which we heard from it.
    last_heard: Vec<u64>,
    /// Per validator index: when we last sent it catch-up certificates.
    helped_ms: Vec<Option<u64>>,
    now_ms: u64,
    out: Vec<Output>,
}

impl Consensus {
    /// A validator's instance for `epoch` with that epoch's `set`: new (`Restart::default()`)
    /// or restarted from its durable state. The finalized tip is the epoch's last finalized
    /// block, or (view 0) the block that ended the previous epoch, or genesis.
    pub fn new(
        config: Config,
        keypair: Keypair,
        set: ValidatorSet,
        alliance: Hash,
        epoch: u64,
        restart: Restart,
    ) -> Result<Consensus, ConsensusError> {
        if config.injected_bugs != InjectedBugs::default() && !cfg!(feature = "inject-bugs") {
            return Err(ConsensusError::BugsNotEnabled);
        }
        if config.payload_bytes_max > PAYLOAD_BYTES_MAX {
            return Err(ConsensusError::PayloadLimit(config.payload_bytes_max));
        }
        let me = keypair.public();
        if !set.contains(&me) {
            return Err(ConsensusError::NotAValidator);
        }
        let finalized = restart.finalized.unwrap_or(FinalizedTip { view: 0, height: 0, block: alliance });
        let mut blocks = BTreeMap::new();
        blocks.insert(
            finalized.block,
            BlockInfo { view: finalized.view, height: finalized.height, parent: Hash::ZERO, closes: false, suffix: false },
        );
        let mut consensus = Consensus {
            last_heard: vec![finalized.view; set.len()],
            helped_ms: vec![None; set.len()],
            config,
            keypair,
            me,
            set,
            previous_set: None,
            alliance,
            epoch,
            ended: false,
            view: finalized.view + 1,
            timer: None,
            views: BTreeMap::new(),
            blocks,
            proposals: BTreeMap::new(),
            pending: BTreeMap::new(),
            verifying: BTreeSet::new(),
            requested_ms: BTreeMap::new(),
            finalized,
            now_ms: 0,
            out: Vec::new(),
        };
        // CONSENSUS.md step 14: the vote log tells what we already signed in each view.
        let restart = if consensus.config.injected_bugs.forget_vote_log { Restart::default() } else { restart };
        for vote in restart.votes {
            if vote.target.epoch != epoch {
                continue;
            }
            if vote.signer != me || vote.verify(&alliance).is_err() {
                return Err(ConsensusError::ForeignVote(vote.target.view));
            }
            let view = vote.target.view;
            if view <= finalized.view {
                continue;
            }
            consensus.view = consensus.view.max(view);
            let state = consensus.views.entry(view).or_default();
            // Our logged votes count towards certificates again, as they did before the crash.
            match vote.target.kind {
                VoteKind::Notarize => {
                    state.sent_notarize = Some(vote);
                    state.notarize.insert(me, (vote.target.block, vote.signature));
                }
                VoteKind::Nullify => {
                    state.sent_nullify = Some(vote);
                    state.nullify.insert(me, vote.signature);
                }
                VoteKind::Finalize => {
                    state.sent_finalize = Some(vote);
                    state.finalize.insert(me, (vote.target.block, vote.signature));
                }
            }
        }
        // CONSENSUS.md step 14: proposals we persisted before voting for them are verified
        // again (after Start) and served to peers, so no notarized block is lost in a crash.
        for proposal in restart.proposals {
            if proposal.view <= finalized.view || proposal.height <= finalized.height || proposal.parent_view >= proposal.view {
                continue;
            }
            let leader = consensus.leader(proposal.view);
            let vote =
                Vote { target: VoteTarget::notarize(epoch, proposal.view, proposal.block), signer: leader, signature: proposal.signature };
            if vote.verify(&alliance).is_err() {
                return Err(ConsensusError::ForeignProposal(proposal.view));
            }
            if consensus.pending.len() >= PENDING_MAX {
                break;
            }
            let state = consensus.views.entry(proposal.view).or_default();
            state.proposal.get_or_insert(proposal.block);
            consensus.pending.insert(proposal.block, proposal);
        }
        // CONSENSUS.md step 14: the notarizations that justified our finalize votes.
        for cert in restart.certificates {
            let view = cert.target.view;
            if view <= finalized.view || cert.target.epoch != epoch {
                continue;
            }
            if !consensus.certificate_is_valid(&cert) {
                return Err(ConsensusError::InvalidCertificate(view));
            }
            consensus.view = consensus.view.max(view + 1);
            let state = consensus.views.entry(view).or_default();
            match cert.target.kind {
                VoteKind::Notarize => state.notarization = Some(cert),
                VoteKind::Nullify => state.nullification = Some(cert),
                VoteKind::Finalize => state.finalization = Some(cert),
            }
        }
        // Nobody counts as silent before we have watched them for a while.
        let view = consensus.view;
        consensus.last_heard.iter_mut().for_each(|v| *v = view);
        Ok(consensus)
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn finalized(&self) -> FinalizedTip {
        self.finalized
    }

    /// A one-line description of a view's state, for debugging simulations.
    #[doc(hidden)]
    pub fn describe_view(&self, view: u64) -> String {
        match self.views.get(&view) {
            None => format!("view {view}: nothing (finalized {:?}, timer {:?})", self.finalized, self.timer),
            Some(s) => format!(
                "view {view}: proposal {:?} votes n/x/f {}/{}/{} certs n/x/f {}/{}/{} sent n/x/f {}/{}/{} timer {:?} finalized {:?} pending {} verifying {}",
                s.proposal,
                s.notarize.len(),
                s.nullify.len(),
                s.finalize.len(),
                s.notarization.is_some(),
                s.nullification.is_some(),
                s.finalization.is_some(),
                s.sent_notarize.is_some(),
                s.sent_nullify.is_some(),
                s.sent_finalize.is_some(),
                self.timer,
                self.finalized,
                self.pending.len(),
                self.verifying.len()
            ),
        }
    }

    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether this epoch's ending block is final (the instance does nothing more).
    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    /// For the `old_set_one_view_too_long` injected bug only: the set of the epoch before.
    #[doc(hidden)]
    pub fn inject_previous_set(&mut self, set: ValidatorSet) {
        if self.config.injected_bugs.old_set_one_view_too_long {
            self.last_heard = vec![self.view; self.set.len().max(set.len())];
            self.helped_ms = vec![None; self.set.len().max(set.len())];
            self.previous_set = Some(set);
        }
    }

    /// The validator set in force at `view`: the epoch's, in every view (an instance runs
    /// one epoch; CONSENSUS.md, "Epochs").
    fn set_for_view(&self, view: u64) -> &ValidatorSet {
        match &self.previous_set {
            // The injected bug: the first view of the epoch still on the old set.
            Some(old) if view == 1 => old,
            _ => &self.set,
        }
    }

    /// CONSENSUS.md step 1: round-robin leader rotation over the sorted validator set.
    pub fn leader(&self, view: u64) -> PublicKey {
        let set = self.set_for_view(view);
        set.validators()[(view % set.len() as u64) as usize].key
    }

    fn quorum(&self, view: u64) -> usize {
        let quorum = self.set_for_view(view).quorum();
        if self.config.injected_bugs.quorum_too_small {
            2 * self.set_for_view(view).max_faulty()
        } else {
            quorum
        }
    }

    /// Feeds one input; returns what the driver must do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        self.now_ms = now_ms;
        if self.ended {
            // The epoch is over: the next epoch's instance takes over.
            return Vec::new();
        }
        match input {
            Input::Start => self.start(),
            Input::Message { from, message } => self.on_message(from, message),
            Input::Timeout => self.on_timeout(),
            Input::Proposed { view, block, payload, ends_epoch } => self.on_proposed(view, block, payload, ends_epoch),
            Input::Verdict { block, valid, ends_epoch } => self.on_verdict(block, valid, ends_epoch),
        }
        if !self.ended {
            self.progress();
        }
        std::mem::take(&mut self.out)
    }

    fn start(&mut self) {
        let view = self.view;
        self.arm_view_timer(view);
        // Re-send what we signed in the current view: peers may have missed it before the crash.
        // (This also re-verifies the proposals read back from the proposal log.)
        self.rebroadcast();
    }

    fn state(&mut self, view: u64) -> &mut ViewState {
        self.views.entry(view).or_default()
    }

    fn set_timer(&mut self, at_ms: u64, kind: TimerKind) {
        self.timer = Some((at_ms, kind));
        self.out.push(Output::SetTimer { at_ms });
    }

    fn arm_view_timer(&mut self, view: u64) {
        let at = self.now_ms + self.config.view_timeout_ms;
        self.set_timer(at, TimerKind::View);
        // CONSENSUS.md step 2: a leader silent for many views is skipped without waiting.
        let leader = self.leader(view);
        if let Some(index) = self.set.index_of(&leader)
            && view > self.last_heard[index] + self.config.silent_leader_views
            && leader != self.me
        {
            self.nullify(view);
        }
    }

    /// CONSENSUS.md step 2: enter a view (only ever forward).
    fn enter_view(&mut self, view: u64) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.arm_view_timer(view);
        self.prune();
    }

    /// After every input: the current view's leader proposes, the others vote when they can.
    fn progress(&mut self) {
        let view = self.view;
        self.try_propose(view);
        self.try_notarize(view);
    }

    // ---------------------------------------------------------------- proposing

    /// The block a proposal in `view` must extend: the notarized block of the highest earlier
    /// view, provided every view between was nullified (CONSENSUS.md step 3).
    fn parent_for(&self, view: u64) -> Option<(u64, Hash)> {
        let mut w = view.checked_sub(1)?;
        loop {
            if w == self.finalized.view {
                return Some((w, self.finalized.block));
            }
            if w < self.finalized.view {
                return None;
            }
            let state = self.views.get(&w)?;
            if let Some(cert) = &state.notarization {
                return Some((w, cert.target.block));
            }
            state.nullification.as_ref()?;
            w -= 1;
        }
    }

    /// CONSENSUS.md step 3: the leader asks the application for a block.
    fn try_propose(&mut self, view: u64) {
        if self.leader(view) != self.me {
            return;
        }
        let state = self.views.get(&view);
        if state.is_some_and(|s| s.building.is_some() || s.sent_notarize.is_some() || s.sent_nullify.is_some()) {
            return;
        }
        let Some((parent_view, parent)) = self.parent_for(view) else { return };
        let Some(info) = self.blocks.get(&parent).copied() else {
            self.request_block(parent);
            return;
        };
        let height = info.height + 1;
        self.state(view).building = Some((parent_view, parent, height));
        if info.closes {
            // CONSENSUS.md, "Epochs": above the epoch-ending block only empty suffix blocks,
            // which consensus makes itself, so that the ending block can be finalized.
            let block = suffix_block_id(&self.alliance, self.epoch, view, &parent, height);
            self.propose_block(view, block, Vec::new(), true, true);
            return;
        }
        self.out.push(Output::Propose { view, parent, height });
    }

    fn on_proposed(&mut self, view: u64, block: Hash, payload: Vec<u8>, ends_epoch: bool) {
        self.propose_block(view, block, payload, ends_epoch, false);
    }

    fn propose_block(&mut self, view: u64, block: Hash, payload: Vec<u8>, closes: bool, suffix: bool) {
        if view != self.view || payload.len() > self.config.payload_bytes_max {
            return;
        }
        let state = self.state(view);
        let Some((parent_view, parent, height)) = state.building else { return };
        if state.sent_notarize.is_some() || state.sent_nullify.is_some() || state.proposal.is_some() {
            return;
        }
        state.proposal = Some(block);
        let vote = VoteTarget::notarize(self.epoch, view, block).sign(&self.alliance, &self.keypair);
        let proposal = Proposal { view, parent_view, parent, height, block, payload, signature: vote.signature };
        // Our own block needs no verdict: the application (or, for a suffix block, this
        // instance) just built it.
        self.blocks.insert(block, BlockInfo { view, height, parent, closes, suffix });
        self.proposals.insert(block, proposal.clone());
        self.state(view).sent_notarize = Some(vote);
        // CONSENSUS.md step 14: persist before sending.
        self.out.push(Output::PersistProposal(proposal.clone()));
        self.out.push(Output::Persist(vote));
        self.out.push(Output::Broadcast(Message::Proposal(proposal)));
        if self.config.injected_bugs.finalize_without_notarization {
            self.send_finalize(view, block);
        }
        self.record_vote(vote);
    }

    // ---------------------------------------------------------------- receiving

    fn on_message(&mut self, from: PublicKey, message: Message) {
        match message {
            Message::Proposal(proposal) => self.on_proposal(proposal),
            Message::Vote(vote) => self.on_vote(vote),
            Message::Certificate(cert) => self.on_certificate(cert),
            Message::Request(request) => self.on_request(from, request),
        }
    }

    /// CONSENSUS.md step 4: authenticate and keep a proposal (live, or the answer to a fetch).
    fn on_proposal(&mut self, proposal: Proposal) {
        let view = proposal.view;
        if view <= self.finalized.view
            || view > self.view + VIEWS_AHEAD_MAX
            || proposal.parent_view >= view
            || proposal.parent_view < self.finalized.view
            || proposal.height <= self.finalized.height
            || proposal.payload.len() > self.config.payload_bytes_max
        {
            return;
        }
        let block = proposal.block;
        if self.blocks.contains_key(&block) || self.pending.contains_key(&block) {
            return;
        }
        let leader = self.leader(view);
        let vote = Vote { target: VoteTarget::notarize(self.epoch, view, block), signer: leader, signature: proposal.signature };
        if vote.verify(&self.alliance).is_err() {
            return;
        }
        if self.pending.len() >= PENDING_MAX {
            return;
        }
        self.heard_from(&leader, view);
        let state = self.state(view);
        if state.proposal.is_none() {
            state.proposal = Some(block);
        }
        self.pending.insert(block, proposal);
        // The proposal carries the leader's notarize vote.
        self.record_vote(vote);
        self.try_verify(block);
    }

    /// CONSENSUS.md step 5: the application verifies blocks parent first.
    fn try_verify(&mut self, block: Hash) {
        if self.verifying.contains(&block) {
            return;
        }
        let Some(proposal) = self.pending.get(&block) else { return };
        let (parent, parent_view, height, view) = (proposal.parent, proposal.parent_view, proposal.height, proposal.view);
        match self.blocks.get(&parent) {
            // The parent's own verdict will come back to its children. (Views strictly
            // decrease along this recursion, so it ends.)
            None if self.pending.get(&parent).is_some_and(|p| p.view == parent_view) => self.try_verify(parent),
            None => self.request_block(parent),
            Some(info) if info.view != parent_view || info.height + 1 != height => {
                // Claims a parent position the parent does not have: not a block of this chain.
                self.pending.remove(&block);
            }
            Some(info) if info.closes => {
                // CONSENSUS.md, "Epochs": above an epoch-ending block only the suffix block
                // this view's leader must build, which we check ourselves.
                let valid = proposal.payload.is_empty() && block == suffix_block_id(&self.alliance, self.epoch, view, &parent, height);
                self.verified(block, valid, true, true);
            }
            Some(_) => {
                let payload = proposal.payload.clone();
                self.verifying.insert(block);
                self.out.push(Output::Verify { view, block, parent, height, payload });
            }
        }
    }

    fn on_verdict(&mut self, block: Hash, valid: bool, ends_epoch: bool) {
        if !self.verifying.remove(&block) {
            return;
        }
        self.verified(block, valid, ends_epoch, false);
    }

    /// A pending proposal was verified (by the application, or a suffix block by us).
    fn verified(&mut self, block: Hash, valid: bool, closes: bool, suffix: bool) {
        let Some(proposal) = self.pending.remove(&block) else { return };
        let view = proposal.view;
        if !valid {
            // CONSENSUS.md step 9: an invalid proposal is nullified at once.
            if view == self.view && self.views.get(&view).and_then(|s| s.proposal) == Some(block) {
                self.nullify(view);
            }
            return;
        }
        self.blocks.insert(block, BlockInfo { view, height: proposal.height, parent: proposal.parent, closes, suffix });
        self.proposals.insert(block, proposal);
        self.requested_ms.remove(&block);
        let children: Vec<Hash> = self.pending.values().filter(|p| p.parent == block).map(|p| p.block).collect();
        for child in children {
            self.try_verify(child);
        }
        self.try_finalize();
    }

    /// CONSENSUS.md step 6: vote notarize for the leader's verified block when its parent is
    /// the notarized block of its parent view and every view between was nullified.
    fn try_notarize(&mut self, view: u64) {
        let Some(state) = self.views.get(&view) else { return };
        if state.sent_notarize.is_some() || state.sent_nullify.is_some() {
            return;
        }
        let Some(block) = state.proposal else { return };
        let Some(info) = self.blocks.get(&block).copied() else { return };
        let Some(proposal) = self.proposals.get(&block) else { return };
        let parent_view = proposal.parent_view;
        let parent_ok = if parent_view == self.finalized.view {
            proposal.parent == self.finalized.block
        } else {
            match self.views.get(&parent_view).and_then(|s| s.notarization.as_ref()) {
                Some(cert) => cert.target.block == info.parent,
                None => {
                    self.request_certificates(view, parent_view, view - 1);
                    return;
                }
            }
        };
        if !parent_ok {
            return;
        }
        for w in parent_view + 1..view {
            if self.views.get(&w).and_then(|s| s.nullification.as_ref()).is_none() {
                self.request_certificates(view, w, view - 1);
                return;
            }
        }
        let proposal = self.proposals[&block].clone();
        let vote = VoteTarget::notarize(self.epoch, view, block).sign(&self.alliance, &self.keypair);
        self.state(view).sent_notarize = Some(vote);
        // CONSENSUS.md step 14: the block, then the vote, are durable before the vote is sent.
        self.out.push(Output::PersistProposal(proposal));
        self.out.push(Output::Persist(vote));
        self.out.push(Output::Broadcast(Message::Vote(vote)));
        if self.config.injected_bugs.finalize_without_notarization {
            self.send_finalize(view, block);
        }
        self.record_vote(vote);
    }

    /// CONSENSUS.md step 7: check a vote, keep the first per signer, kind and view.
    fn on_vote(&mut self, vote: Vote) {
        let view = vote.target.view;
        // A vote of another epoch never counts here (CONSENSUS.md, "Epochs").
        if vote.target.epoch != self.epoch || view <= self.finalized.view || view > self.view + VIEWS_AHEAD_MAX {
            return;
        }
        let Some(index) = self.set_for_view(view).index_of(&vote.signer) else { return };
        if view < self.view {
            // Rate-limited per peer, and it only re-sends what we hold: no need to verify first.
            self.help_laggard(index, vote.signer, view);
        }
        if let Some(state) = self.views.get(&view) {
            let seen = match vote.target.kind {
                VoteKind::Notarize => state.notarize.contains_key(&vote.signer),
                VoteKind::Nullify => state.nullify.contains_key(&vote.signer),
                VoteKind::Finalize => state.finalize.contains_key(&vote.signer),
            };
            if seen {
                return;
            }
        }
        if vote.verify(&self.alliance).is_err() {
            return;
        }
        if let Some(heard) = self.last_heard.get_mut(index) {
            *heard = (*heard).max(view);
        }
        self.record_vote(vote);
    }

    /// CONSENSUS.md step 12: a peer voting in a view we have left is stuck there: send it the
    /// certificates that moved us on (at most once per rebroadcast interval per peer).
    /// Our own votes of the laggard's view go too: after a restart we may have lost the
    /// certificates, but our logged votes can still complete one for the laggard.
    fn help_laggard(&mut self, index: usize, peer: PublicKey, view: u64) {
        if peer == self.me || index >= self.helped_ms.len() || self.helped_ms[index].is_some_and(|at| self.now_ms < at + self.config.rebroadcast_interval_ms) {
            return;
        }
        self.helped_ms[index] = Some(self.now_ms);
        let mut messages = self.catch_up_certificates();
        messages.extend(self.votes_to_resend(view));
        for message in messages {
            self.out.push(Output::Send { to: peer, message });
        }
    }

    /// CONSENSUS.md step 12: what we signed in `view`, and the leader's notarize vote for the
    /// block we notarized. The leader's vote travels inside its proposal only; a peer that
    /// missed the proposal (or a withholding leader's other votes) may need exactly that vote
    /// to complete the notarization, and it costs a vote rather than a block.
    fn votes_to_resend(&self, view: u64) -> Vec<Message> {
        let Some(state) = self.views.get(&view) else { return Vec::new() };
        let mut messages: Vec<Message> =
            [state.sent_notarize, state.sent_nullify, state.sent_finalize].into_iter().flatten().map(Message::Vote).collect();
        if let Some(ours) = state.sent_notarize {
            let block = ours.target.block;
            let leader = self.leader(view);
            if leader != self.me
                && let Some(proposal) = self.proposals.get(&block).or_else(|| self.pending.get(&block))
            {
                let vote = Vote { target: ours.target, signer: leader, signature: proposal.signature };
                messages.push(Message::Vote(vote));
            }
        }
        messages
    }

    /// The certificate that brought us into the current view and the latest finalization.
    fn catch_up_certificates(&self) -> Vec<Message> {
        let mut messages = Vec::new();
        if let Some(state) = self.view.checked_sub(1).and_then(|w| self.views.get(&w)) {
            for cert in [&state.notarization, &state.nullification].into_iter().flatten() {
                messages.push(Message::Certificate(cert.clone()));
            }
        }
        if let Some(cert) = self.views.values().rev().find_map(|s| s.finalization.as_ref()) {
            messages.push(Message::Certificate(cert.clone()));
        }
        messages
    }

    fn heard_from(&mut self, key: &PublicKey, view: u64) {
        if let Some(index) = self.set.index_of(key) {
            self.last_heard[index] = self.last_heard[index].max(view);
        }
    }

    /// Counts an authentic vote; a quorum on one target becomes a certificate.
    fn record_vote(&mut self, vote: Vote) {
        let target = vote.target;
        let view = target.view;
        let quorum = self.quorum(view);
        let state = self.state(view);
        let count = match target.kind {
            VoteKind::Notarize => {
                state.notarize.entry(vote.signer).or_insert((target.block, vote.signature));
                state.notarize.values().filter(|(b, _)| *b == target.block).count()
            }
            VoteKind::Nullify => {
                state.nullify.entry(vote.signer).or_insert(vote.signature);
                state.nullify.len()
            }
            VoteKind::Finalize => {
                state.finalize.entry(vote.signer).or_insert((target.block, vote.signature));
                state.finalize.values().filter(|(b, _)| *b == target.block).count()
            }
        };
        if count < quorum {
            return;
        }
        let signatures: Vec<(PublicKey, Signature)> = match target.kind {
            VoteKind::Notarize if state.notarization.is_none() => {
                state.notarize.iter().filter(|(_, (b, _))| *b == target.block).map(|(k, (_, s))| (*k, *s)).collect()
            }
            VoteKind::Nullify if state.nullification.is_none() => state.nullify.iter().map(|(k, s)| (*k, *s)).collect(),
            VoteKind::Finalize if state.finalization.is_none() => {
                state.finalize.iter().filter(|(_, (b, _))| *b == target.block).map(|(k, (_, s))| (*k, *s)).collect()
            }
            _ => return,
        };
        // BTreeMap iteration: signers are sorted and distinct, as a certificate requires.
        let cert = Certificate { target, signatures };
        self.on_verified_certificate(cert);
    }

    /// A certificate from a peer: checked with the ledger's rule (quorum of distinct members,
    /// every signature, batch-verified) before it is used.
    fn on_certificate(&mut self, cert: Certificate) {
        let view = cert.target.view;
        if cert.target.epoch != self.epoch || view <= self.finalized.view {
            return;
        }
        if let Some(state) = self.views.get(&view) {
            let have = match cert.target.kind {
                VoteKind::Notarize => state.notarization.is_some(),
                VoteKind::Nullify => state.nullification.is_some(),
                VoteKind::Finalize => state.finalization.is_some(),
            };
            if have {
                return;
            }
        }
        if !self.certificate_is_valid(&cert) {
            return;
        }
        for key in cert.signers().copied().collect::<Vec<_>>() {
            self.heard_from(&key, view);
        }
        self.on_verified_certificate(cert);
    }

    fn certificate_is_valid(&self, cert: &Certificate) -> bool {
        if cert.target.epoch != self.epoch {
            return false;
        }
        let set = self.set_for_view(cert.target.view);
        if cert.signatures.len() < self.quorum(cert.target.view) || cert.signatures.len() > set.len() {
            return false;
        }
        if cert.signatures.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return false;
        }
        if cert.signers().any(|key| !set.contains(key)) {
            return false;
        }
        let message = cert.target.signing_bytes(&self.alliance);
        let items: Vec<BatchItem<'_>> = cert
            .signatures
            .iter()
            .map(|(key, signature)| BatchItem { key, domain: domain::VOTE, message: &message, signature })
            .collect();
        verify_batch(&items).iter().all(|ok| *ok)
    }

    fn on_verified_certificate(&mut self, cert: Certificate) {
        let view = cert.target.view;
        let block = cert.target.block;
        match cert.target.kind {
            VoteKind::Notarize => {
                // CONSENSUS.md step 8: finalize unless we nullified, move to the next view.
                self.state(view).notarization = Some(cert);
                if !self.blocks.contains_key(&block) && !self.pending.contains_key(&block) {
                    self.request_block(block);
                }
                self.send_finalize(view, block);
                self.enter_view(view + 1);
            }
            VoteKind::Nullify => {
                // CONSENSUS.md step 10: move to the next view.
                self.state(view).nullification = Some(cert);
                self.enter_view(view + 1);
            }
            VoteKind::Finalize => {
                // CONSENSUS.md step 11: a finalization implies the notarization.
                self.state(view).finalization = Some(cert);
                self.enter_view(view + 1);
                self.try_finalize();
            }
        }
    }

    /// CONSENSUS.md step 8: a finalize vote only from a validator that did not nullify the view
    /// (so a finalized view can never also be nullified).
    fn send_finalize(&mut self, view: u64, block: Hash) {
        if view <= self.finalized.view {
            return;
        }
        let state = self.state(view);
        if state.sent_nullify.is_some() || state.sent_finalize.is_some() {
            return;
        }
        let vote = VoteTarget::finalize(self.epoch, view, block).sign(&self.alliance, &self.keypair);
        self.state(view).sent_finalize = Some(vote);
        // CONSENSUS.md step 14: the notarization first, so that after a crash we can still
        // show peers why we finalized (our finalize vote rules out nullifying this view).
        if let Some(cert) = self.state(view).notarization.clone() {
            self.out.push(Output::PersistCertificate(cert));
        }
        self.out.push(Output::Persist(vote));
        self.out.push(Output::Broadcast(Message::Vote(vote)));
        self.record_vote(vote);
    }

    /// CONSENSUS.md step 9: nullify a view, at most once, never after finalizing in it.
    fn nullify(&mut self, view: u64) {
        let state = self.state(view);
        if state.sent_nullify.is_some() || state.sent_finalize.is_some() {
            return;
        }
        let vote = VoteTarget::nullify(self.epoch, view).sign(&self.alliance, &self.keypair);
        self.state(view).sent_nullify = Some(vote);
        self.out.push(Output::Persist(vote));
        self.out.push(Output::Broadcast(Message::Vote(vote)));
        self.record_vote(vote);
    }

    fn on_timeout(&mut self) {
        let Some((at_ms, kind)) = self.timer else { return };
        if self.now_ms < at_ms {
            // Early: the driver's timer and our clock disagree. Ask again rather than stall.
            self.out.push(Output::SetTimer { at_ms });
            return;
        }
        let view = self.view;
        // CONSENSUS.md step 9: no notarization in time. (A rebroadcast timer only runs after
        // the view timer of the same view expired, so nullifying then is a no-op or overdue.)
        debug_assert!(kind == TimerKind::View || self.views.get(&view).is_some_and(|s| s.sent_nullify.is_some() || s.sent_finalize.is_some()));
        self.nullify(view);
        if self.view != view {
            // Our nullify completed a nullification: the next view's timer is already set.
            return;
        }
        // CONSENSUS.md step 12: stuck in this view: re-send, and try again later.
        self.rebroadcast();
        let at = self.now_ms + self.config.rebroadcast_interval_ms;
        self.set_timer(at, TimerKind::Rebroadcast);
    }

    /// CONSENSUS.md step 12: our votes of the current view, the certificate that brought us
    /// here and the latest finalization, so peers behind or ahead can join us.
    fn rebroadcast(&mut self) {
        let view = self.view;
        let mut messages = self.votes_to_resend(view);
        messages.extend(self.catch_up_certificates());
        for message in messages {
            self.out.push(Output::Broadcast(message));
        }
        // Re-ask for what we still miss: whatever the retries below find still missing.
        self.requested_ms.clear();
        let waiting: Vec<Hash> =
            self.pending.keys().filter(|b| !self.verifying.contains(*b)).copied().collect();
        for block in waiting {
            self.try_verify(block);
        }
        let notarized: Vec<Hash> = self
            .views
            .range(self.finalized.view + 1..)
            .filter_map(|(_, s)| s.notarization.as_ref().map(|c| c.target.block))
            .filter(|b| !self.blocks.contains_key(b) && !self.pending.contains_key(b))
            .collect();
        for block in notarized {
            self.request_block(block);
        }
        self.request_missing_certificates();
        self.try_finalize();
    }

    /// CONSENSUS.md step 13: without a certificate for every view back to the highest
    /// notarized one, we cannot find the parent a proposal must extend, neither to vote for
    /// one nor, as leader, to make one. Peers who moved past that view hold the certificate
    /// (the view's leader may not, and asking the leader only helps when it proposes), so
    /// while stuck we ask everyone, for the views below and at the gap.
    fn request_missing_certificates(&mut self) {
        let mut w = self.view.saturating_sub(1);
        let gap = loop {
            if w <= self.finalized.view {
                return;
            }
            match self.views.get(&w) {
                Some(s) if s.notarization.is_some() || s.finalization.is_some() => return,
                Some(s) if s.nullification.is_some() => w -= 1,
                _ => break w,
            }
        };
        let from_view = gap.saturating_sub(CERTIFICATE_REQUEST_VIEWS_MAX - 1).max(self.finalized.view + 1);
        self.out.push(Output::Broadcast(Message::Request(Request::Certificates { from_view, to_view: gap })));
    }

    // ---------------------------------------------------------------- finalizing

    /// CONSENSUS.md step 11: finalize the chain up to every finalized block we can reach.
    fn try_finalize(&mut self) {
        // Within the step that ended the epoch, later calls find nothing more to finalize.
        if self.ended {
            return;
        }
        loop {
            let next = self
                .views
                .range(self.finalized.view + 1..)
                .find_map(|(v, s)| s.finalization.as_ref().map(|c| (*v, c.clone())));
            let Some((view, cert)) = next else { return };
            // Walk back from the certified block to our finalized tip.
            let mut chain = Vec::new();
            let mut cursor = cert.target.block;
            let reached = loop {
                if cursor == self.finalized.block {
                    break true;
                }
                let Some(info) = self.blocks.get(&cursor).copied() else {
                    self.request_block(cursor);
                    return;
                };
                if info.height <= self.finalized.height {
                    break false;
                }
                chain.push((cursor, info));
                cursor = info.parent;
            };
            if !reached {
                // Conflicts with what we finalized: impossible with at most f faulty validators.
                // Dropping it keeps our own chain consistent; the simulator reports the conflict.
                self.state(view).finalization = None;
                continue;
            }
            chain.reverse();
            // CONSENSUS.md, "Epochs": the blocks above an epoch-ending block are its suffix,
            // which is not output; the ending block carries their views and ends this epoch.
            let ending = chain.iter().position(|(_, info)| info.closes && !info.suffix);
            let suffix: Vec<u64> = ending.map(|i| chain[i + 1..].iter().map(|(_, info)| info.view).collect()).unwrap_or_default();
            if let Some(i) = ending {
                assert!(chain[i + 1..].iter().all(|(_, info)| info.suffix), "only suffix blocks extend an epoch-ending block");
                chain.truncate(i + 1);
            }
            for (block, info) in chain {
                assert!(!info.suffix, "suffix blocks descend from an epoch-ending block");
                assert_eq!(info.height, self.finalized.height + 1, "finalized heights are consecutive");
                self.finalized = FinalizedTip { view: info.view, height: info.height, block };
                let suffix = if info.closes { suffix.clone() } else { Vec::new() };
                self.out.push(Output::Finalized(Finalized {
                    view: info.view,
                    height: info.height,
                    block,
                    certificate: cert.clone(),
                    suffix,
                }));
            }
            if ending.is_some() {
                self.ended = true;
                self.timer = None;
                return;
            }
            self.finalized.view = view.max(self.finalized.view);
            self.prune();
        }
    }

    // ---------------------------------------------------------------- fetching

    /// CONSENSUS.md step 13: ask every peer for a block we need, at most once per interval.
    fn request_block(&mut self, block: Hash) {
        if let Some(at) = self.requested_ms.get(&block)
            && self.now_ms < at + self.config.rebroadcast_interval_ms
        {
            return;
        }
        self.requested_ms.insert(block, self.now_ms);
        self.out.push(Output::Broadcast(Message::Request(Request::Block(block))));
    }

    /// CONSENSUS.md step 13: ask the leader of `view` for the certificates its proposal needs.
    fn request_certificates(&mut self, view: u64, from_view: u64, to_view: u64) {
        let now = self.now_ms;
        let interval = self.config.rebroadcast_interval_ms;
        let state = self.state(view);
        if state.certificates_requested_ms.is_some_and(|at| now < at + interval) {
            return;
        }
        state.certificates_requested_ms = Some(now);
        let from_view = from_view.max(to_view.saturating_sub(CERTIFICATE_REQUEST_VIEWS_MAX - 1));
        let to = self.leader(view);
        self.out.push(Output::Send { to, message: Message::Request(Request::Certificates { from_view, to_view }) });
    }

    /// CONSENSUS.md step 13: answer a peer from what we keep.
    fn on_request(&mut self, from: PublicKey, request: Request) {
        if from == self.me || !self.set.contains(&from) {
            return;
        }
        match request {
            Request::Block(block) => {
                // Pending proposals are authentic too (the requester verifies them itself).
                if let Some(proposal) = self.proposals.get(&block).or_else(|| self.pending.get(&block)) {
                    self.out.push(Output::Send { to: from, message: Message::Proposal(proposal.clone()) });
                }
            }
            Request::Certificates { from_view, to_view } => {
                if to_view < from_view || to_view - from_view >= CERTIFICATE_REQUEST_VIEWS_MAX {
                    return;
                }
                let mut certs = Vec::new();
                for (_, state) in self.views.range(from_view..=to_view) {
                    for cert in [&state.notarization, &state.nullification, &state.finalization].into_iter().flatten() {
                        certs.push(cert.clone());
                    }
                }
                for cert in certs {
                    self.out.push(Output::Send { to: from, message: Message::Certificate(cert) });
                }
            }
        }
    }

    /// CONSENSUS.md step 15: forget what can no longer matter, so memory stays bounded.
    fn prune(&mut self) {
        let keep_view = self.finalized.view.saturating_sub(VIEWS_RETAINED);
        self.views = self.views.split_off(&keep_view);
        let finalized = self.finalized;
        let keep_height = finalized.height.saturating_sub(BLOCKS_RETAINED);
        self.blocks.retain(|id, info| {
            *id == finalized.block || (info.height >= keep_height && (info.height > finalized.height || info.view <= finalized.view))
        });
        let blocks = &self.blocks;
        self.proposals.retain(|id, _| blocks.contains_key(id));
        self.pending.retain(|_, p| p.view > finalized.view && p.height > finalized.height);
        let pending = &self.pending;
        self.verifying.retain(|id| pending.contains_key(id));
        self.requested_ms.retain(|id, _| !blocks.contains_key(id));
    }
}
