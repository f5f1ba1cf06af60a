//! The consensus driver: runs the pure Simplex state machine (docs/CONSENSUS.md, "The
//! driver's contract") with tokio timers, libp2p and RocksDB.
//!
//! - `Persist(vote)`: written to the store's vote log, synced, before any later output.
//! - `PersistProposal(proposal)` (the block we are about to vote for) and
//!   `PersistCertificate(cert)` (the notarization behind our finalize vote): consensus emits
//!   each right before the vote that depends on it, so both go to the same log in the vote's
//!   one synced batch (no extra sync per view); read back on restart.
//! - `Broadcast` / `Send`: published on the consensus gossip topic (a `Send` reaches every
//!   peer too; the others ignore what they do not need).
//! - `Propose`: the leader waits `block_interval_ms` for records to batch (or up to
//!   `empty_block_interval_ms` for the first one), then builds and executes a block.
//! - `Verify`: the block is decoded, checked and executed through the contract; the verdict
//!   goes back at once.
//! - `Finalized`: the executed block is stored atomically with its receipts.
//! - Block sync: a node that is behind (restarted, or started late) fetches finalized blocks
//!   from peers, checks each certificate and re-executes each block, stores them, and
//!   restarts consensus from the new finalized tip with its vote log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, request_response, Multiaddr, PeerId, Swarm};
use plaza_consensus::{
    Config as ConsensusConfig, Consensus, FinalizedTip, Input, Message, Output, Proposal, Restart, MESSAGE_BYTES_MAX,
};
use plaza_ledger::block::FinalizedBlock;
use plaza_ledger::cert::{Certificate, Vote, VoteKind};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::keys::{domain, verify_batch, BatchItem};
use plaza_ledger::record::Record;
use plaza_ledger::store::Store;
use plaza_ledger::{Hash, Keypair, PublicKey};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::chain::Chain;
use crate::mempool::{Mempool, Refusal};
use crate::net::{self, Behaviour, BehaviourEvent, SyncRequest, SyncResponse};
use crate::{Admission, Clock, Command, Home, NodeConfig, Rejection, Shared, Status};

/// Bytes of records in one proposed block (below consensus's payload limit).
pub const BLOCK_RECORD_BYTES_MAX: usize = 3 * 1024 * 1024;
/// Commands queued from the API.
pub const COMMAND_QUEUE_MAX: usize = 1024;
const TICK_MS: u64 = 5;
const SYNC_INTERVAL_MS: u64 = 500;
const REDIAL_INTERVAL_MS: u64 = 2_000;
const VOTE_LOG_PRUNE_BLOCKS: u64 = 64;

struct PendingProposal {
    view: u64,
    parent: Hash,
    height: u64,
    since: Instant,
}

pub struct Driver {
    shared: Arc<Shared>,
    config: NodeConfig,
    chain: Chain,
    store: Arc<Store>,
    consensus: Option<Consensus>,
    consensus_config: ConsensusConfig,
    merchant_secret: [u8; 32],
    swarm: Swarm<Behaviour>,
    records_topic: gossipsub::IdentTopic,
    consensus_topic: gossipsub::IdentTopic,
    started: Instant,
    timer: Option<Instant>,
    proposal: Option<PendingProposal>,
    /// Consensus-log entries staged for the next vote's synced batch.
    log_staged: Vec<(Vec<u8>, Vec<u8>)>,
    outbox: Vec<Record>,
    admitted_at: HashMap<Hash, Instant>,
    verify_started: BTreeMap<Hash, Instant>,
    /// Validators' network peer ids → their vote-signing keys.
    validator_peers: BTreeMap<PeerId, PublicKey>,
    member_peers: BTreeSet<PeerId>,
    observer_peers: BTreeSet<PeerId>,
    dial: Vec<(Multiaddr, Option<PeerId>)>,
    last_dial: Instant,
    sync_in_flight: Option<Instant>,
    sync_cursor: usize,
    last_tip_change: Instant,
    last_vote_prune: u64,
    tip_tx: watch::Sender<u64>,
    commands: mpsc::Receiver<Command>,
}

/// The consensus log (the store's vote log) holds votes, proposals and certificates, ordered
/// by view so that one range delete prunes all: a vote's key is `view ‖ kind` (9 bytes, kind
/// 0–2), a certificate's `view ‖ 0xfe ‖ kind` (10 bytes), a proposal's `view ‖ 0xff ‖ block
/// id` (41 bytes).
fn vote_log_key(vote: &Vote) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&vote.target.view.to_be_bytes());
    key[8] = vote.target.kind as u8;
    key
}

const LOG_CERTIFICATE: u8 = 0xfe;
const LOG_PROPOSAL: u8 = 0xff;

fn certificate_log_key(cert: &Certificate) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..8].copy_from_slice(&cert.target.view.to_be_bytes());
    key[8] = LOG_CERTIFICATE;
    key[9] = cert.target.kind as u8;
    key
}

fn proposal_log_key(proposal: &Proposal) -> [u8; 41] {
    let mut key = [0u8; 41];
    key[..8].copy_from_slice(&proposal.view.to_be_bytes());
    key[8] = LOG_PROPOSAL;
    key[9..].copy_from_slice(proposal.block.as_bytes());
    key
}

/// Reads the consensus log back (keys as [`vote_log_key`] describes), for a restart.
fn read_consensus_log(entries: Vec<(Vec<u8>, Vec<u8>)>) -> Result<Restart, String> {
    let mut restart = Restart::default();
    for (key, value) in entries {
        match key.get(8) {
            Some(&LOG_PROPOSAL) => restart
                .proposals
                .push(Proposal::from_bytes(&value, MESSAGE_BYTES_MAX).map_err(|e| format!("proposal log: {e}"))?),
            Some(&LOG_CERTIFICATE) => restart
                .certificates
                .push(Certificate::from_bytes(&value, MESSAGE_BYTES_MAX).map_err(|e| format!("certificate log: {e}"))?),
            _ => restart.votes.push(Vote::from_bytes(&value, 1024).map_err(|e| format!("vote log: {e}"))?),
        }
    }
    Ok(restart)
}

/// Starts a node from its home and runs it until Ctrl-C or SIGTERM.
pub async fn run(home: &Path) -> Result<(), String> {
    let home = Home::new(home);
    let config = home.load_config()?;
    let merchant = Keypair::load(&home.merchant_key()).map_err(|e| format!("{}: {e}", home.merchant_key().display()))?;
    let network = Keypair::load(&home.network_key()).map_err(|e| format!("{}: {e}", home.network_key().display()))?;
    let api_token = home.load_token()?;
    let store = Arc::new(Store::open(&home.data()).map_err(|e| e.to_string())?);
    let chain = Chain::open(store.clone(), config.snapshot_interval_blocks)?;
    let alliance = chain.alliance();
    let (tip_tx, tip_rx) = watch::channel(chain.tip().height);
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
    let mut swarm = net::build_swarm(network.secret_bytes(), &alliance)?;
    let listen: Multiaddr = config.listen.parse().map_err(|e| format!("listen address {:?}: {e}", config.listen))?;
    swarm.listen_on(listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let (records_topic, consensus_topic) = net::topics(&alliance);
    let window = {
        let state = chain.shared_state();
        let s = state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.validator_set().contains(&merchant.public())
    };
    let shared = Arc::new(Shared {
        store: store.clone(),
        state: chain.shared_state(),
        mempool: Mutex::new(Mempool::new(config.mempool_records_max, config.mempool_records_per_merchant_max)),
        metrics: crate::metrics::Metrics::at_height(chain.tip().height),
        clock: Clock::new(config.clock_offset_ms),
        merchant: Keypair::from_secret(&merchant.secret_bytes()).map_err(|e| e.to_string())?,
        alliance,
        api_token,
        config: config.clone(),
        tip: tip_rx,
        status: Mutex::new(Status { validator: window, peer_id: swarm.local_peer_id().to_string(), ..Status::default() }),
        commands: command_tx,
    });
    let api_addr: std::net::SocketAddr = config.api.parse().map_err(|e| format!("api address {:?}: {e}", config.api))?;
    let listener = tokio::net::TcpListener::bind(api_addr).await.map_err(|e| format!("cannot bind the API on {api_addr}: {e}"))?;
    let router = crate::api::router(shared.clone());
    let (limits, api_shared) = (crate::api_server::Limits::from_config(&config), shared.clone());
    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(async move {
        crate::api_server::serve(listener, router, limits, api_shared, async move {
            let _ = api_stop_rx.await;
        })
        .await;
    });
    info!(api = %api_addr, peer_id = %swarm.local_peer_id(), height = chain.tip().height, "plaza node started");

    let mut dial = Vec::new();
    for peer in &config.peers {
        let addr: Multiaddr = peer.parse().map_err(|e| format!("peer address {peer:?}: {e}"))?;
        let peer_id = addr.iter().find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        });
        dial.push((addr, peer_id));
    }
    let consensus_config = ConsensusConfig {
        view_timeout_ms: config.view_timeout_ms,
        rebroadcast_interval_ms: config.rebroadcast_interval_ms,
        ..ConsensusConfig::default()
    };
    let now = Instant::now();
    let mut driver = Driver {
        shared,
        config,
        chain,
        store,
        consensus: None,
        consensus_config,
        merchant_secret: merchant.secret_bytes(),
        swarm,
        records_topic,
        consensus_topic,
        started: now,
        timer: None,
        proposal: None,
        log_staged: Vec::new(),
        outbox: Vec::new(),
        admitted_at: HashMap::new(),
        verify_started: BTreeMap::new(),
        validator_peers: BTreeMap::new(),
        member_peers: BTreeSet::new(),
        observer_peers: BTreeSet::new(),
        dial,
        last_dial: now.checked_sub(Duration::from_secs(60)).unwrap_or(now),
        sync_in_flight: None,
        sync_cursor: 0,
        last_tip_change: now,
        last_vote_prune: 0,
        tip_tx,
        commands: command_rx,
    };
    driver.refresh_members();
    driver.restart_consensus()?;
    let result = driver.run_loop().await;
    let _ = api_stop_tx.send(());
    let _ = api_task.await;
    info!("plaza node stopped");
    result
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Driver {
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64 + 1
    }

    async fn run_loop(&mut self) -> Result<(), String> {
        let mut tick = tokio::time::interval(Duration::from_millis(TICK_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sync_tick = tokio::time::interval(Duration::from_millis(SYNC_INTERVAL_MS));
        sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let timer = self.timer;
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => {
                    if let Some(command) = command {
                        self.on_command(command);
                    }
                }
                _ = async { if let Some(at) = timer { tokio::time::sleep_until(at).await } else { std::future::pending::<()>().await } } => {
                    self.timer = None;
                    self.feed(Input::Timeout);
                }
                _ = tick.tick() => self.on_tick(),
                _ = sync_tick.tick() => self.on_sync_tick(),
            }
        }
    }

    // ------------------------------------------------------------------ membership

    /// Recomputes who may connect from the finalized state and the configured observers.
    fn refresh_members(&mut self) {
        let state = self.chain.shared_state();
        let state = state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut validators = BTreeMap::new();
        for v in state.validator_set().validators() {
            if let Some(peer) = net::peer_id_of(&v.network_key) {
                validators.insert(peer, v.key);
            }
        }
        let mut members = BTreeSet::new();
        for (profile, status) in state.merchants() {
            if status != plaza_ledger::contract::MerchantStatus::Removed
                && let Some(peer) = profile.network_key.as_ref().and_then(net::peer_id_of)
            {
                members.insert(peer);
            }
        }
        members.extend(validators.keys().copied());
        drop(state);
        let mut observers = BTreeSet::new();
        for hex in &self.config.observers {
            match PublicKey::from_hex(hex).ok().as_ref().and_then(net::peer_id_of) {
                Some(peer) => {
                    observers.insert(peer);
                }
                None => warn!(observer = %hex, "configured observer is not a valid network key; ignored"),
            }
        }
        if members == self.member_peers && observers == self.observer_peers && validators == self.validator_peers {
            return;
        }
        let allowed = &mut self.swarm.behaviour_mut().allowed;
        for peer in self.member_peers.iter().chain(&self.observer_peers) {
            allowed.disallow_peer(*peer);
        }
        for peer in members.iter().chain(&observers) {
            allowed.allow_peer(*peer);
        }
        self.member_peers = members;
        self.observer_peers = observers;
        self.validator_peers = validators;
    }

    // ------------------------------------------------------------------ consensus

    fn restart_consensus(&mut self) -> Result<(), String> {
        let set = {
            let state = self.chain.shared_state();
            let s = state.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            s.validator_set().clone()
        };
        let keypair = Keypair::from_secret(&self.merchant_secret).map_err(|e| e.to_string())?;
        if !set.contains(&keypair.public()) {
            self.consensus = None;
            return Ok(());
        }
        let tip = self.chain.tip();
        let finalized = (tip.height > 0).then_some(FinalizedTip { view: tip.view, height: tip.height, block: tip.id });
        let mut restart = read_consensus_log(self.store.vote_log().map_err(|e| e.to_string())?)?;
        restart.finalized = finalized;
        let consensus = Consensus::new(self.consensus_config.clone(), keypair, set, self.chain.alliance(), restart)
            .map_err(|e| format!("consensus: {e}"))?;
        self.consensus = Some(consensus);
        self.chain.forget_executed();
        self.proposal = None;
        self.log_staged.clear();
        self.timer = None;
        self.feed(Input::Start);
        Ok(())
    }

    fn feed(&mut self, input: Input) {
        let mut queue = std::collections::VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let now = self.now_ms();
            let Some(consensus) = self.consensus.as_mut() else { return };
            let outputs = consensus.handle(now, input);
            for output in outputs {
                if let Some(next) = self.output(output) {
                    queue.push_back(next);
                }
                if self.consensus.is_none() {
                    // A failed persist stopped consensus: nothing after it may be sent.
                    return;
                }
            }
        }
        if let Some(c) = &self.consensus {
            self.shared.metrics.view.set(c.view() as i64);
        }
    }

    fn output(&mut self, output: Output) -> Option<Input> {
        match output {
            Output::Persist(vote) => {
                // CONSENSUS.md step 14: durable before anything that follows is sent.
                self.log_staged.push((vote_log_key(&vote).to_vec(), vote.to_bytes()));
                if !self.write_log() {
                    return None;
                }
                if vote.target.kind == VoteKind::Notarize
                    && let Some(at) = self.verify_started.remove(&vote.target.block)
                {
                    self.shared.metrics.vote_latency.observe(at.elapsed().as_secs_f64());
                }
                None
            }
            Output::PersistProposal(proposal) => {
                // CONSENSUS.md step 14: the block outlives a crash of everyone who voted for it.
                self.log_staged.push((proposal_log_key(&proposal).to_vec(), proposal.to_bytes()));
                None
            }
            Output::PersistCertificate(cert) => {
                self.log_staged.push((certificate_log_key(&cert).to_vec(), cert.to_bytes()));
                None
            }
            Output::Broadcast(message) | Output::Send { message, .. } => {
                // Staged entries precede every send (consensus always follows them with a vote).
                if self.write_log() {
                    self.publish_consensus(&message);
                }
                None
            }
            Output::SetTimer { at_ms } => {
                let delay = at_ms.saturating_sub(self.now_ms());
                self.timer = Some(Instant::now() + Duration::from_millis(delay));
                None
            }
            Output::Propose { view, parent, height } => {
                self.proposal = Some(PendingProposal { view, parent, height, since: Instant::now() });
                self.try_propose();
                None
            }
            Output::Verify { view, block, parent, height, payload } => {
                let started = Instant::now();
                let leader = self.consensus.as_ref().map(|c| c.leader(view))?;
                let now = self.shared.clock.now_ms();
                let mempool = self.shared.mempool();
                let known = |id: &Hash| mempool.contains(id);
                let verdict =
                    self.chain.verify(view, block, parent, height, &payload, leader, now, self.config.block_time_skew_ms_max, &known);
                drop(mempool);
                let valid = match verdict {
                    Ok(()) => true,
                    Err(e) => {
                        warn!(view, height, block = %block, "invalid proposal: {e}");
                        self.shared.metrics.invalid_proposals.inc();
                        false
                    }
                };
                if valid {
                    self.verify_started.insert(block, started);
                    if self.verify_started.len() > 1024 {
                        self.verify_started.pop_first();
                    }
                }
                Some(Input::Verdict { block, valid })
            }
            Output::Finalized(finalized) => {
                match self.chain.finalize(&finalized.block, finalized.certificate) {
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

    /// Writes the staged consensus-log entries in one synced batch. Without the log we could
    /// equivocate after a crash, so a failed write stops consensus (and nothing after it is
    /// sent). Returns whether consensus still runs.
    fn write_log(&mut self) -> bool {
        if self.log_staged.is_empty() {
            return true;
        }
        let entries = std::mem::take(&mut self.log_staged);
        if let Err(e) = self.store.put_vote_log(&entries) {
            tracing::error!("cannot persist the consensus log, stopping consensus: {e}");
            self.consensus = None;
            return false;
        }
        true
    }

    fn publish_consensus(&mut self, message: &Message) {
        let topic = self.consensus_topic.clone();
        if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, message.to_bytes()) {
            debug!("consensus message not published: {e}");
        }
    }

    /// The leader builds its block once records are batched or the empty-block interval passed.
    fn try_propose(&mut self) {
        let Some(p) = &self.proposal else { return };
        let Some(consensus) = &self.consensus else { return };
        if consensus.view() != p.view {
            self.proposal = None;
            return;
        }
        let waited = p.since.elapsed().as_millis() as u64;
        let has_records = !self.shared.mempool().is_empty();
        if !(has_records && waited >= self.config.block_interval_ms || waited >= self.config.empty_block_interval_ms) {
            return;
        }
        let Some(p) = self.proposal.take() else { return };
        let exclude = self.chain.in_flight(&p.parent);
        let candidates = {
            let mut mempool = self.shared.mempool();
            let mut picked = mempool.select(self.config.block_records_max, &exclude);
            let mut bytes = 0;
            picked.retain(|r| {
                bytes += r.to_bytes().len();
                bytes <= BLOCK_RECORD_BYTES_MAX
            });
            picked
        };
        let proposer = consensus.public_key();
        let now = self.shared.clock.now_ms();
        match self.chain.build(p.view, p.parent, p.height, now, proposer, candidates) {
            Ok((block, payload, dropped)) => {
                if !dropped.is_empty() {
                    debug!(count = dropped.len(), "records the contract refused at this block time were dropped");
                    self.shared.mempool().remove(&dropped);
                }
                self.feed(Input::Proposed { view: p.view, block, payload });
            }
            Err(e) => warn!(view = p.view, "cannot build a block: {e}"),
        }
    }

    fn after_finalized(&mut self, infos: Vec<crate::chain::FinalizedInfo>, synced: bool) {
        let Some(last) = infos.last() else { return };
        let (height, time_ms) = (last.height, last.time_ms);
        let ids: Vec<Hash> = infos.iter().flat_map(|i| i.records.iter().copied()).collect();
        for id in &ids {
            if let Some(at) = self.admitted_at.remove(id) {
                self.shared.metrics.finality_latency.observe(at.elapsed().as_secs_f64());
            }
        }
        let window = {
            let state = self.shared.state();
            state.policy_at(time_ms).record_time_window_ms
        };
        {
            let mut mempool = self.shared.mempool();
            mempool.remove(&ids);
            mempool.expire(time_ms, window);
            self.shared.metrics.mempool_records.set(mempool.len() as i64);
        }
        let m = &self.shared.metrics;
        m.height.set(height as i64);
        m.finalized_blocks.inc_by(infos.len() as u64);
        m.finalized_records.inc_by(ids.len() as u64);
        if synced {
            m.synced_blocks.inc_by(infos.len() as u64);
        }
        self.last_tip_change = Instant::now();
        let _ = self.tip_tx.send(height);
        self.refresh_members();
        if height >= self.last_vote_prune + VOTE_LOG_PRUNE_BLOCKS {
            self.last_vote_prune = height;
            let view = self.chain.tip().view;
            let mut key = [0u8; 9];
            key[..8].copy_from_slice(&view.to_be_bytes());
            if let Err(e) = self.store.delete_vote_log_below(&key) {
                warn!("cannot prune the vote log: {e}");
            }
        }
        if self.admitted_at.len() > 200_000 {
            self.admitted_at.clear();
        }
    }

    // ------------------------------------------------------------------ records

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Submit { records, reply } => {
                let now_instant = Instant::now();
                let now = self.shared.clock.now_ms();
                let window = self.shared.state().policy_at(now).record_time_window_ms;
                let mut answers = Vec::with_capacity(records.len());
                let mut mempool = self.shared.mempool();
                for record in records {
                    let id = record.id();
                    if matches!(self.store.record_location(&id), Ok(Some(_))) {
                        answers.push(Admission::Final);
                        continue;
                    }
                    match mempool.insert(record.clone(), now, window) {
                        Ok(()) => {
                            self.admitted_at.insert(id, now_instant);
                            self.outbox.push(record);
                            answers.push(Admission::Accepted);
                        }
                        Err(Refusal::Duplicate) => answers.push(Admission::Pending),
                        Err(Refusal::Full) => answers.push(Admission::Refused(Rejection::MempoolFull)),
                        Err(Refusal::MerchantFull) => answers.push(Admission::Refused(Rejection::MerchantQueueFull)),
                        Err(Refusal::OutsideWindow) => answers.push(Admission::Refused(Rejection::OutsideTimeWindow)),
                    }
                }
                self.shared.metrics.mempool_records.set(mempool.len() as i64);
                drop(mempool);
                let _ = reply.send(answers);
                if self.outbox.len() >= net::RECORDS_PER_GOSSIP_MAX {
                    self.flush_outbox();
                }
                self.try_propose();
            }
        }
    }

    fn flush_outbox(&mut self) {
        while !self.outbox.is_empty() {
            let take = self.outbox.len().min(net::RECORDS_PER_GOSSIP_MAX);
            let chunk: Vec<Record> = self.outbox.drain(..take).collect();
            let topic = self.records_topic.clone();
            if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, net::encode_records(&chunk)) {
                debug!("records not gossiped: {e}");
            }
        }
    }

    /// Records from a peer: stateless checks and one batched signature check, then the mempool.
    fn on_gossip_records(&mut self, bytes: &[u8]) {
        let records = match net::decode_records(bytes) {
            Ok(r) => r,
            Err(e) => {
                debug!("undecodable records message: {e}");
                return;
            }
        };
        let alliance = self.chain.alliance();
        let fresh: Vec<Record> = {
            let mempool = self.shared.mempool();
            records
                .into_iter()
                .filter(|r| !mempool.contains(&r.id()))
                .filter(|r| !matches!(self.store.record_location(&r.id()), Ok(Some(_))))
                .filter(|r| r.check_without_signature(&alliance).is_ok())
                .collect()
        };
        // A non-member's record never enters the mempool, however it arrived.
        let fresh: Vec<Record> = {
            let state = self.shared.state();
            fresh.into_iter().filter(|r| state.merchant(r.signer()).is_some()).collect()
        };
        if fresh.is_empty() {
            return;
        }
        let messages: Vec<Vec<u8>> = fresh.iter().map(Record::signing_bytes).collect();
        let items: Vec<BatchItem<'_>> = fresh
            .iter()
            .zip(&messages)
            .map(|(r, m)| BatchItem { key: r.signer(), domain: domain::RECORD, message: m, signature: r.signature() })
            .collect();
        let verdicts = verify_batch(&items);
        let now = self.shared.clock.now_ms();
        let window = self.shared.state().policy_at(now).record_time_window_ms;
        let now_instant = Instant::now();
        let mut mempool = self.shared.mempool();
        for (record, ok) in fresh.into_iter().zip(verdicts) {
            if ok {
                let id = record.id();
                if mempool.insert(record, now, window).is_ok() {
                    self.admitted_at.insert(id, now_instant);
                }
            }
        }
        self.shared.metrics.mempool_records.set(mempool.len() as i64);
    }

    // ------------------------------------------------------------------ network

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message { message, .. })) => {
                let Some(source) = message.source else { return };
                if !self.member_peers.contains(&source) {
                    return; // observers are read-only
                }
                if message.topic == self.records_topic.hash() {
                    self.on_gossip_records(&message.data);
                } else if message.topic == self.consensus_topic.hash() {
                    let Some(from) = self.validator_peers.get(&source).copied() else { return };
                    match Message::decode_bytes(&message.data) {
                        Ok(m) => self.feed(Input::Message { from, message: m }),
                        Err(e) => debug!(%source, "undecodable consensus message: {e}"),
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                let peers = self.swarm.connected_peers().count();
                if peers > self.config.peers_max as usize {
                    warn!(%peer_id, "too many peers; disconnecting");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                let role = if self.validator_peers.contains_key(&peer_id) {
                    "validator"
                } else if self.member_peers.contains(&peer_id) {
                    "member"
                } else {
                    "observer"
                };
                info!(%peer_id, role, "peer connected");
                self.update_peer_status();
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established, .. } => {
                if num_established == 0 {
                    info!(%peer_id, "peer disconnected");
                }
                self.update_peer_status();
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                if matches!(error, libp2p::swarm::ListenError::Denied { .. }) {
                    self.shared.metrics.refused_peers.inc();
                    warn!(from = %send_back_addr, "refused a connection: the peer's network key is not a member's or an observer's");
                } else {
                    debug!(from = %send_back_addr, "incoming connection failed: {error}");
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if matches!(error, libp2p::swarm::DialError::Denied { .. }) {
                    self.shared.metrics.refused_peers.inc();
                    warn!(?peer_id, "refused to connect: the peer's network key is not a member's or an observer's");
                } else {
                    debug!(?peer_id, "dial failed: {error}");
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.shared.status().listen.push(address.to_string());
            }
            _ => {}
        }
    }

    fn update_peer_status(&mut self) {
        let peers: Vec<String> = self.swarm.connected_peers().map(|p| p.to_string()).collect();
        self.shared.metrics.peers.set(peers.len() as i64);
        self.shared.status().peers = peers;
    }

    fn on_tick(&mut self) {
        self.try_propose();
        if !self.outbox.is_empty() {
            self.flush_outbox();
        }
        if self.last_dial.elapsed() >= Duration::from_millis(REDIAL_INTERVAL_MS) {
            self.last_dial = Instant::now();
            let connected = self.swarm.connected_peers().count();
            for (addr, peer) in self.dial.clone() {
                let needed = match peer {
                    Some(p) => !self.swarm.is_connected(&p),
                    None => connected == 0,
                };
                if needed && let Err(e) = self.swarm.dial(addr.clone()) {
                    debug!(%addr, "dial: {e}");
                }
            }
        }
        if let Some(c) = &self.consensus {
            let view = c.view();
            self.shared.status().view = view;
        }
    }

    // ------------------------------------------------------------------ block sync

    fn on_sync_tick(&mut self) {
        // Ask for everything when the tip has not moved for a while, otherwise only when
        // clearly behind: in steady state consensus itself finalizes each block.
        let stale = self.last_tip_change.elapsed() > Duration::from_millis(2 * self.config.view_timeout_ms) || self.consensus.is_none();
        self.request_sync(if stale { 1 } else { 3 });
    }

    fn request_sync(&mut self, lag_min: u64) {
        if let Some(at) = self.sync_in_flight
            && at.elapsed() < Duration::from_secs(25)
        {
            return;
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().filter(|p| self.member_peers.contains(p)).copied().collect();
        if peers.is_empty() {
            return;
        }
        self.sync_cursor = self.sync_cursor.wrapping_add(1);
        let peer = peers[self.sync_cursor % peers.len()];
        let request = SyncRequest { from: self.chain.tip().height + 1, count: net::SYNC_BLOCKS_MAX, lag_min };
        self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.sync_in_flight = Some(Instant::now());
    }

    fn on_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    let tip = self.chain.tip().height;
                    let blocks = if tip + 1 >= request.from.saturating_add(request.lag_min) {
                        self.chain.blocks_for_sync(request.from, request.count, net::SYNC_RESPONSE_BYTES_MAX)
                    } else {
                        Vec::new()
                    };
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, SyncResponse { tip, blocks });
                }
                request_response::Message::Response { response, .. } => {
                    self.sync_in_flight = None;
                    self.on_sync_response(peer, response);
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, "sync request failed: {error}");
                self.sync_in_flight = None;
            }
            _ => {}
        }
    }

    fn on_sync_response(&mut self, peer: PeerId, response: SyncResponse) {
        if response.blocks.is_empty() {
            return;
        }
        let mut blocks = Vec::with_capacity(response.blocks.len());
        for bytes in &response.blocks {
            match FinalizedBlock::from_bytes(bytes, plaza_ledger::block::BLOCK_BYTES_MAX + 64 * 1024) {
                Ok(b) => blocks.push(b),
                Err(e) => {
                    warn!(%peer, "sync: undecodable block: {e}");
                    return;
                }
            }
        }
        let before = self.chain.tip().height;
        let result = self.chain.apply_synced(blocks);
        let stored = match result {
            Ok(stored) => stored,
            Err(e) => {
                warn!(%peer, "sync: refused blocks: {e}");
                return;
            }
        };
        if stored.is_empty() {
            return;
        }
        let after = stored.last().map_or(before, |i| i.height);
        info!(%peer, from = before + 1, to = after, peer_tip = response.tip, "synced finalized blocks");
        self.after_finalized(stored, true);
        let consensus_behind = self.consensus.as_ref().is_some_and(|c| c.finalized().height < after);
        if consensus_behind && let Err(e) = self.restart_consensus() {
            warn!("cannot restart consensus after sync: {e}");
        }
        if response.tip > after {
            self.request_sync(1);
        }
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
        let notarize = vote(VoteTarget::notarize(4, block));
        let finalize = vote(VoteTarget::finalize(4, block));
        let older = vote(VoteTarget::nullify(3));
        let cert = Certificate::from_votes(notarize.target, [notarize]);
        let proposal =
            Proposal { view: 4, parent_view: 3, parent: alliance, height: 1, block, payload: b"p".to_vec(), signature: notarize.signature };
        let mut log = std::collections::BTreeMap::new();
        log.insert(vote_log_key(&notarize).to_vec(), notarize.to_bytes());
        log.insert(vote_log_key(&finalize).to_vec(), finalize.to_bytes());
        log.insert(vote_log_key(&older).to_vec(), older.to_bytes());
        log.insert(certificate_log_key(&cert).to_vec(), cert.to_bytes());
        log.insert(proposal_log_key(&proposal).to_vec(), proposal.to_bytes());
        // One range delete below `view ‖ 0` prunes every kind of entry of the views before.
        let boundary = [4u64.to_be_bytes().as_slice(), &[0]].concat();
        let below: Vec<&Vec<u8>> = log.keys().filter(|k| **k < boundary).collect();
        assert_eq!(below, vec![&vote_log_key(&older).to_vec()]);

        let restart = read_consensus_log(log.clone().into_iter().collect()).expect("a well-formed log");
        assert_eq!(restart.votes, vec![older, notarize, finalize]);
        assert_eq!(restart.proposals, vec![proposal.clone()]);
        assert_eq!(restart.certificates, vec![cert]);

        // A damaged entry is a clear error naming the log it came from, not a panic.
        log.insert(proposal_log_key(&proposal).to_vec(), vec![1, 2, 3]);
        let error = read_consensus_log(log.into_iter().collect()).expect_err("damaged");
        assert!(error.starts_with("proposal log:"), "{error}");
    }
}
