//! libp2p on tokio: TCP + noise + yamux, identify, gossipsub for records and consensus
//! messages, request-response for block sync, and a member-only gate.
//!
//! Only the network keys of current alliance members (and configured observers) may connect:
//! the allow-list behaviour denies every other peer at connection time, and the driver logs
//! the refusal. Observers are read-only: their gossip is ignored (the driver accepts a message
//! only from a member peer, and gossipsub forwards only accepted messages); they may sync blocks.

use std::io;
use std::time::Duration;

use libp2p::futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, gossipsub, identify, noise, request_response, tcp, yamux, PeerId, StreamProtocol, Swarm};
use plaza_ledger::codec::{Decode, DecodeError, Encode};
use plaza_ledger::{Hash, PublicKey};

pub use crate::wire::{
    decode_records, encode_records, SyncRequest, SyncResponse, GOSSIP_BYTES_MAX, RECORDS_PER_GOSSIP_MAX, SYNC_BLOCKS_MAX,
    SYNC_REQUEST_BYTES_MAX, SYNC_RESPONSE_BYTES_MAX,
};

/// Sync requests one peer may make per second, sustained (an honest node has one in flight).
pub const SYNC_REQUESTS_PER_PEER_PER_S: u32 = 10;
/// Sync requests one peer may make in a burst (catching up chains requests back to back).
pub const SYNC_REQUESTS_PER_PEER_BURST: u32 = 20;
/// Peers whose sync budget is tracked; beyond this, idle ones are forgotten.
pub const SYNC_LIMIT_PEERS_MAX: usize = 1024;

pub const SYNC_PROTOCOL: &str = "/plaza/sync/1";

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub allowed: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub identify: identify::Behaviour,
    pub gossip: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<SyncCodec>,
}

/// The libp2p peer id of a ledger network key (ed25519).
pub fn peer_id_of(network_key: &PublicKey) -> Option<PeerId> {
    let ed = libp2p::identity::ed25519::PublicKey::try_from_bytes(network_key.as_bytes()).ok()?;
    Some(libp2p::identity::PublicKey::from(ed).to_peer_id())
}

pub fn topics(alliance: &Hash) -> (gossipsub::IdentTopic, gossipsub::IdentTopic) {
    let short = &alliance.to_hex()[..16];
    (gossipsub::IdentTopic::new(format!("plaza/{short}/records")), gossipsub::IdentTopic::new(format!("plaza/{short}/consensus")))
}

pub fn build_swarm(network_secret: [u8; 32], alliance: &Hash) -> Result<Swarm<Behaviour>, String> {
    let mut secret = network_secret;
    let identity = libp2p::identity::Keypair::ed25519_from_bytes(&mut secret).map_err(|e| format!("network key: {e}"))?;
    let (records, consensus) = topics(alliance);
    let swarm = libp2p::SwarmBuilder::with_existing_identity(identity)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| format!("transport: {e}"))?
        .with_behaviour(|key| -> Result<Behaviour, BoxedError> {
            // No libp2p signature per message: every record and every proposal, vote and
            // certificate carries its own signature, checked by the replica, and the peer a
            // message arrives from is authenticated by noise. Messages name their author
            // unsigned (the consensus topic's requests use it), and are forwarded only after
            // the driver accepted them (`validate_messages`), so members do not pass on what
            // an observer publishes.
            let gossip_config = gossipsub::ConfigBuilder::default()
                .max_transmit_size(GOSSIP_BYTES_MAX)
                .heartbeat_interval(Duration::from_millis(700))
                .validation_mode(gossipsub::ValidationMode::Permissive)
                .validate_messages()
                .build()
                .map_err(boxed)?;
            let mut gossip = gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Author(key.public().to_peer_id()), gossip_config)
                .map_err(boxed)?;
            gossip.subscribe(&records).map_err(boxed)?;
            gossip.subscribe(&consensus).map_err(boxed)?;
            let sync = request_response::Behaviour::with_codec(
                SyncCodec,
                [(StreamProtocol::new(SYNC_PROTOCOL), request_response::ProtocolSupport::Full)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
            );
            Ok(Behaviour {
                allowed: allow_block_list::Behaviour::default(),
                identify: identify::Behaviour::new(identify::Config::new("/plaza/1.0.0".into(), key.public())),
                gossip,
                sync,
            })
        })
        .map_err(|e| format!("network behaviour: {e}"))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

type BoxedError = Box<dyn std::error::Error + Send + Sync>;

fn boxed(e: impl ToString) -> BoxedError {
    e.to_string().into()
}

/// A per-peer token bucket for sync requests: a member that floods the node with requests
/// gets only its tip back (no blocks read or sent) once its budget is spent, so one peer
/// cannot keep the node's store and bandwidth busy.
pub struct SyncLimiter<P> {
    buckets: std::collections::HashMap<P, (f64, std::time::Instant)>,
    per_s: f64,
    burst: f64,
}

impl<P: std::hash::Hash + Eq + Clone> SyncLimiter<P> {
    pub fn new(per_s: u32, burst: u32) -> SyncLimiter<P> {
        SyncLimiter { buckets: std::collections::HashMap::new(), per_s: f64::from(per_s), burst: f64::from(burst.max(1)) }
    }

    /// Whether `peer` may make one more request at `now` (and spends it if so).
    pub fn allow(&mut self, peer: &P, now: std::time::Instant) -> bool {
        if self.buckets.len() >= SYNC_LIMIT_PEERS_MAX && !self.buckets.contains_key(peer) {
            let (per_s, burst) = (self.per_s, self.burst);
            self.buckets.retain(|_, (tokens, at)| *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_s < burst);
        }
        let burst = self.burst;
        let (tokens, at) = self.buckets.entry(peer.clone()).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_s).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Length-prefixed canonical encodings over a libp2p stream.
#[derive(Clone, Copy, Default)]
pub struct SyncCodec;

async fn read_frame<T: libp2p::futures::AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes exceeds {max}")));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: libp2p::futures::AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn invalid(e: DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = SyncResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: libp2p::futures::AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, SYNC_REQUEST_BYTES_MAX).await?;
        SyncRequest::from_bytes(&bytes, SYNC_REQUEST_BYTES_MAX).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncResponse>
    where
        T: libp2p::futures::AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, SYNC_RESPONSE_BYTES_MAX + 4096).await?;
        SyncResponse::from_bytes(&bytes, SYNC_RESPONSE_BYTES_MAX + 4096).map_err(invalid)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: SyncRequest) -> io::Result<()>
    where
        T: libp2p::futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.to_bytes()).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: SyncResponse) -> io::Result<()>
    where
        T: libp2p::futures::AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res.to_bytes()).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_sync_request_decodes_to_what_was_sent() {
        // The count used to be capped while decoding (the canonical round trip the
        // sync_request fuzz target asserts failed): now decoding keeps it, the server caps it.
        let request = SyncRequest { from: 5, count: SYNC_BLOCKS_MAX + 1, lag_min: 1 };
        let bytes = request.to_bytes();
        assert_eq!(SyncRequest::from_bytes(&bytes, SYNC_REQUEST_BYTES_MAX), Ok(request));
    }

    #[test]
    fn a_flooding_peer_is_limited_and_others_are_not() {
        let mut limiter = SyncLimiter::new(10, 20);
        let start = Instant::now();
        let allowed = (0..1000).filter(|_| limiter.allow(&1u32, start)).count();
        assert_eq!(allowed, 20, "a burst is allowed, then nothing in the same instant");
        assert!(limiter.allow(&2u32, start), "another peer has its own budget");
        let later = start + Duration::from_millis(500);
        let refilled = (0..1000).filter(|_| limiter.allow(&1u32, later)).count();
        assert_eq!(refilled, 5, "half a second refills five requests");
        let idle = later + Duration::from_secs(60);
        assert_eq!((0..1000).filter(|_| limiter.allow(&1u32, idle)).count(), 20, "the budget never exceeds the burst");
    }

    #[test]
    fn the_limiter_forgets_idle_peers_beyond_its_bound() {
        let mut limiter = SyncLimiter::new(10, 20);
        let start = Instant::now();
        for peer in 0..SYNC_LIMIT_PEERS_MAX as u32 {
            assert!(limiter.allow(&peer, start));
        }
        let later = start + Duration::from_secs(10);
        assert!(limiter.allow(&u32::MAX, later));
        assert!(limiter.buckets.len() <= 2, "idle peers are forgotten: {}", limiter.buckets.len());
    }
}
