//! The node's I/O shell around the [`Replica`] (docs/CONSENSUS.md, "The replica"): tokio
//! timers, libp2p, RocksDB and the API's commands in, the replica's effects out.
//!
//! - [`Effect::Persist`]: written to the store's consensus log in one synced batch before
//!   the next effect is performed; a failed write stops consensus.
//! - [`Effect::Broadcast`] / [`Effect::Send`]: published on the consensus gossip topic (a
//!   `Send` reaches every peer too; the others ignore what they do not need).
//! - [`Effect::Relay`]: published on the records topic.
//! - [`Effect::RequestSync`]: sent to one connected member, in turn.
//! - [`Effect::Finalized`] and the other reports: metrics, the API's tip, the peer allow-list.
//!
//! Everything else (what to propose, when to vote, what to store, when to sync) is the
//! replica's, which the simulator runs under faults.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{gossipsub, request_response, Multiaddr, PeerId, Swarm};
use plaza_consensus::Message;
use plaza_ledger::codec::Encode;
use plaza_ledger::store::Store;
use plaza_ledger::{Keypair, PublicKey};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::mempool::Mempool;
use crate::net::{self, Behaviour, BehaviourEvent, SyncRequest, SyncResponse};
use crate::replica::{Effect, Now, Replica, ReplicaConfig};
use crate::{Clock, Command, Home, NodeConfig, Shared, Status};

pub use crate::replica::BLOCK_RECORD_BYTES_MAX;
/// Commands queued from the API.
pub const COMMAND_QUEUE_MAX: usize = 1024;
const REDIAL_INTERVAL_MS: u64 = 2_000;

pub struct Driver {
    shared: Arc<Shared>,
    config: NodeConfig,
    replica: Replica<Store>,
    swarm: Swarm<Behaviour>,
    records_topic: gossipsub::IdentTopic,
    consensus_topic: gossipsub::IdentTopic,
    started: Instant,
    /// Validators' network peer ids → their vote-signing keys.
    validator_peers: BTreeMap<PeerId, PublicKey>,
    member_peers: BTreeSet<PeerId>,
    observer_peers: BTreeSet<PeerId>,
    dial: Vec<(Multiaddr, Option<PeerId>)>,
    /// Sync requests each peer may still make (a flooding peer gets only the tip).
    sync_limiter: net::SyncLimiter<PeerId>,
    tip_tx: watch::Sender<u64>,
    commands: mpsc::Receiver<Command>,
    /// `config.toml`, whose `observers` are re-read when it changes.
    config_path: std::path::PathBuf,
    config_modified: Option<std::time::SystemTime>,
}

/// Starts a node from its home and runs it until Ctrl-C or SIGTERM.
pub async fn run(home: &Path) -> Result<(), String> {
    let home = Home::new(home);
    let config = home.load_config()?;
    let merchant = Keypair::load(&home.merchant_key()).map_err(|e| format!("{}: {e}", home.merchant_key().display()))?;
    let network = Keypair::load(&home.network_key()).map_err(|e| format!("{}: {e}", home.network_key().display()))?;
    let api_token = home.load_token()?;
    let store = Arc::new(Store::open(&home.data()).map_err(|e| e.to_string())?);
    // The testnet clock's jumps are kept in the home, so a restarted demo node does not stall.
    let clock = if config.testnet_clock_api { Clock::persistent(config.clock_offset_ms, home.clock_offset())? } else { Clock::new(config.clock_offset_ms) };
    let started = Instant::now();
    let mempool = Arc::new(Mutex::new(Mempool::new(config.mempool_records_max, config.mempool_records_per_merchant_max)));
    let replica_key = Keypair::from_secret(&merchant.secret_bytes()).map_err(|e| e.to_string())?;
    let now = Now { ms: 1, wall_ms: clock.now_ms() };
    let opening = std::time::Instant::now();
    let replica = Replica::open(store.clone(), replica_key, ReplicaConfig::from_node(&config), mempool.clone(), now)?;
    let alliance = replica.chain().alliance();
    let height = replica.chain().tip().height;
    let snapshot = replica.chain().opened_from_snapshot();
    info!(height, snapshot, reexecuted = height - snapshot, ms = opening.elapsed().as_millis() as u64, "chain opened: the state snapshot at {snapshot} and {} blocks re-executed", height - snapshot);
    let (tip_tx, tip_rx) = watch::channel(height);
    let (command_tx, command_rx) = mpsc::channel(COMMAND_QUEUE_MAX);
    let mut swarm = net::build_swarm(network.secret_bytes(), &alliance)?;
    let listen: Multiaddr = config.listen.parse().map_err(|e| format!("listen address {:?}: {e}", config.listen))?;
    swarm.listen_on(listen).map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let (records_topic, consensus_topic) = net::topics(&alliance);
    let shared = Arc::new(Shared {
        store,
        state: replica.state(),
        mempool,
        metrics: crate::metrics::Metrics::at_height(height),
        clock,
        merchant,
        alliance,
        api_token,
        submit_limits: crate::auth::SignerLimits::default(),
        config: config.clone(),
        tip: tip_rx,
        status: Mutex::new(Status { validator: replica.is_validator(), peer_id: swarm.local_peer_id().to_string(), ..Status::default() }),
        commands: command_tx,
    });
    let api_addr: std::net::SocketAddr = config.api.parse().map_err(|e| format!("api address {:?}: {e}", config.api))?;
    let listener = tokio::net::TcpListener::bind(api_addr).await.map_err(|e| format!("cannot bind the API on {api_addr}: {e}"))?;
    // Port 0 in the config means "any": report what was bound (the local testnet reads it).
    let api_addr = listener.local_addr().map_err(|e| format!("the API's bound address: {e}"))?;
    home.write_api_addr(api_addr)?;
    let router = crate::api::router(shared.clone());
    let (limits, api_shared) = (crate::api_server::Limits::from_config(&config), shared.clone());
    let (api_stop_tx, api_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let api_task = tokio::spawn(crate::api_server::serve(listener, router, limits, api_shared, async move {
        let _ = api_stop_rx.await;
    }));
    info!(api = %api_addr, peer_id = %swarm.local_peer_id(), height, "plaza node started");

    let mut dial = Vec::new();
    for peer in &config.peers {
        let addr: Multiaddr = peer.parse().map_err(|e| format!("peer address {peer:?}: {e}"))?;
        let peer_id = addr.iter().find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        });
        dial.push((addr, peer_id));
    }
    let mut driver = Driver {
        shared,
        config,
        replica,
        swarm,
        records_topic,
        consensus_topic,
        started,
        validator_peers: BTreeMap::new(),
        member_peers: BTreeSet::new(),
        observer_peers: BTreeSet::new(),
        dial,
        sync_limiter: net::SyncLimiter::new(net::SYNC_REQUESTS_PER_PEER_PER_S, net::SYNC_REQUESTS_PER_PEER_BURST),
        tip_tx,
        commands: command_rx,
        config_modified: std::fs::metadata(home.config()).and_then(|m| m.modified()).ok(),
        config_path: home.config(),
    };
    driver.refresh_members();
    driver.perform_effects();
    let result = driver.run_loop().await;
    let _ = api_stop_tx.send(());
    let _ = api_task.await;
    if result.is_ok() {
        // A stopping node snapshots its finalized state, so the next start re-executes no block
        // (docs/NODE.md, "Persistence" and "Operations").
        let started = Instant::now();
        match driver.replica.chain_mut().snapshot_tip() {
            Ok(Some(height)) => info!(height, ms = started.elapsed().as_millis() as u64, "state snapshot written at the tip"),
            Ok(None) => {}
            Err(e) => warn!("{e}; the next start re-executes the blocks after the last snapshot"),
        }
        let flushing = Instant::now();
        match driver.shared.store.flush() {
            Ok(()) => info!(ms = flushing.elapsed().as_millis() as u64, "store flushed"),
            Err(e) => warn!("the store was not flushed ({e}); the next start replays its log"),
        }
    }
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
    fn now(&self) -> Now {
        Now { ms: self.started.elapsed().as_millis() as u64 + 1, wall_ms: self.shared.clock.now_ms() }
    }

    async fn run_loop(&mut self) -> Result<(), String> {
        let mut redial = tokio::time::interval(Duration::from_millis(REDIAL_INTERVAL_MS));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let wake = self.started + Duration::from_millis(self.replica.poll_timeout().saturating_sub(1));
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => {
                    if let Some(Command::Submit { records, reply }) = command {
                        let answers = self.replica.handle_submit(self.now(), records);
                        let _ = reply.send(answers);
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    let now = self.now();
                    self.replica.handle_timeout(now);
                }
                _ = redial.tick() => {
                    self.reload_observers();
                    self.redial();
                }
            }
            self.perform_effects();
        }
    }

    /// Performs the replica's effects, in order.
    fn perform_effects(&mut self) {
        while let Some(effect) = self.replica.poll_effect() {
            match effect {
                Effect::Persist(entries) => {
                    // CONSENSUS.md step 14: durable before anything that follows is sent.
                    if let Err(e) = self.shared.store.put_vote_log(&entries) {
                        tracing::error!("consensus log write failed: {e}");
                        self.replica.persist_failed(&e.to_string());
                    }
                }
                Effect::Broadcast(message) | Effect::Send { message, .. } => self.publish(&message),
                Effect::Relay(records) => {
                    let topic = self.records_topic.clone();
                    if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, net::encode_records(&records)) {
                        debug!("records not gossiped: {e}");
                    }
                }
                Effect::RequestSync { request, attempt } => self.request_sync(request, attempt),
                Effect::Finalized { blocks, synced, latencies_ms } => {
                    let m = &self.shared.metrics;
                    let height = blocks.last().map_or(0, |b| b.height);
                    m.height.set(height as i64);
                    m.finalized_blocks.inc_by(blocks.len() as u64);
                    m.finalized_records.inc_by(blocks.iter().map(|b| b.records.len() as u64).sum());
                    if synced {
                        m.synced_blocks.inc_by(blocks.len() as u64);
                    }
                    for ms in latencies_ms {
                        m.finality_latency.observe(ms as f64 / 1000.0);
                    }
                    let _ = self.tip_tx.send(height);
                    // The set may have changed (an epoch ended): the peers' roles and our own.
                    self.refresh_members();
                    self.shared.status().validator = self.replica.is_validator();
                }
                Effect::InvalidProposal { .. } => {
                    self.shared.metrics.invalid_proposals.inc();
                }
                Effect::Voted { latency_ms } => {
                    self.shared.metrics.vote_latency.observe(latency_ms as f64 / 1000.0);
                }
            }
        }
        let m = &self.shared.metrics;
        m.mempool_records.set(self.replica.mempool_len() as i64);
        if let Some(view) = self.replica.view() {
            m.view.set(view as i64);
            self.shared.status().view = view;
        }
    }

    fn publish(&mut self, message: &Message) {
        let topic = self.consensus_topic.clone();
        if let Err(e) = self.swarm.behaviour_mut().gossip.publish(topic, message.to_bytes()) {
            debug!("consensus message not published: {e}");
        }
    }

    /// Recomputes who may connect from the finalized state and the configured observers.
    fn refresh_members(&mut self) {
        let state = self.replica.state();
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
        self.update_peer_status();
    }

    /// A member admits (or drops) an observer by editing `observers` in its config.toml; the
    /// running node picks the list up within a redial interval. A config that no longer parses
    /// changes nothing (and says so).
    fn reload_observers(&mut self) {
        let modified = std::fs::metadata(&self.config_path).and_then(|m| m.modified()).ok();
        if modified == self.config_modified {
            return;
        }
        self.config_modified = modified;
        let text = match std::fs::read_to_string(&self.config_path) {
            Ok(t) => t,
            Err(e) => {
                warn!("config.toml changed but cannot be read: {e}");
                return;
            }
        };
        match NodeConfig::from_toml(&text) {
            Ok(config) if config.observers != self.config.observers => {
                info!(observers = config.observers.len(), "config.toml changed: observers reloaded");
                self.config.observers = config.observers;
                self.refresh_members();
            }
            Ok(_) => {}
            Err(e) => warn!("config.toml changed but is not used until it parses: {e}"),
        }
    }

    fn redial(&mut self) {
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

    /// One gossip message from the connected peer `via`; the answer decides whether it is
    /// passed on. Only what a member's node sends counts (noise authenticated `via`; observers
    /// are read-only); what does not decode is refused (dropped, not passed on; gossipsub keeps
    /// no peer scores here).
    /// A message's author (`source`) is unsigned: it names the validator a consensus request
    /// comes from, which only decides whom the answer is meant for (answers are published to
    /// every peer and authenticate themselves).
    fn on_gossip(&mut self, via: PeerId, message: gossipsub::Message) -> gossipsub::MessageAcceptance {
        use gossipsub::MessageAcceptance::{Accept, Ignore, Reject};
        if !self.member_peers.contains(&via) {
            return Ignore;
        }
        if message.topic == self.records_topic.hash() {
            match net::decode_records(&message.data) {
                Ok(records) => {
                    self.replica.handle_gossip_records(self.now(), records);
                    Accept
                }
                Err(e) => {
                    debug!(%via, "undecodable records message: {e}");
                    Reject
                }
            }
        } else if message.topic == self.consensus_topic.hash() {
            let Some(from) = message.source.and_then(|source| self.validator_peers.get(&source).copied()) else { return Ignore };
            match Message::decode_bytes(&message.data) {
                Ok(m) => {
                    self.replica.handle_message(self.now(), from, m);
                    Accept
                }
                Err(e) => {
                    debug!(%via, "undecodable consensus message: {e}");
                    Reject
                }
            }
        } else {
            Ignore
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                let acceptance = self.on_gossip(propagation_source, message);
                // Forwarded to the mesh only when accepted (`validate_messages` in net.rs).
                self.swarm.behaviour_mut().gossip.report_message_validation_result(&message_id, &propagation_source, acceptance);
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
                if role != "observer" {
                    self.replica.peer_connected(self.now());
                }
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
        let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        let validator_peers = connected.iter().filter(|p| self.validator_peers.contains_key(p)).count();
        let member_peers = connected.iter().filter(|p| self.member_peers.contains(p)).count();
        self.shared.metrics.peers.set(connected.len() as i64);
        self.shared.metrics.validator_peers.set(validator_peers as i64);
        let mut status = self.shared.status();
        status.peers = connected.iter().map(|p| p.to_string()).collect();
        status.validator_peers = validator_peers;
        status.member_peers = member_peers;
    }

    fn request_sync(&mut self, request: SyncRequest, attempt: u64) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().filter(|p| self.member_peers.contains(p)).copied().collect();
        if peers.is_empty() {
            self.replica.sync_failed();
            return;
        }
        let peer = peers[(attempt % peers.len() as u64) as usize];
        self.swarm.behaviour_mut().sync.send_request(&peer, request);
    }

    fn on_sync_event(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    // A member flooding sync requests gets only the tip once its budget is spent.
                    let response = if self.sync_limiter.allow(&peer, Instant::now().into_std()) {
                        self.replica.handle_sync_request(&request)
                    } else {
                        debug!(%peer, "sync request over the peer's rate limit: answering with the tip only");
                        self.replica.handle_sync_request(&SyncRequest { count: 0, ..request })
                    };
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, response);
                }
                request_response::Message::Response { response, .. } => {
                    // Only members serve sync; the highest tip one reported measures our lag.
                    if self.member_peers.contains(&peer) {
                        let mut status = self.shared.status();
                        status.best_peer_height = status.best_peer_height.max(response.tip);
                    }
                    if let Err(e) = self.replica.handle_sync_response(self.now(), response) {
                        warn!(%peer, "{e}");
                    }
                }
            },
            request_response::Event::OutboundFailure { peer, error, .. } => {
                debug!(%peer, "sync request failed: {error}");
                self.replica.sync_failed();
            }
            _ => {}
        }
    }
}
