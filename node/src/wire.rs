//! What nodes send each other besides consensus messages, as bytes: gossiped records and
//! block sync's request and answer. Pure (no I/O): the replica and the simulator use these
//! types, the libp2p shell (`net`) carries them.

use plaza_ledger::codec::{Decode, DecodeError, Encode, Reader, Writer};
use plaza_ledger::record::Record;

/// Largest gossip message: a consensus message with the largest payload, with room to spare.
pub const GOSSIP_BYTES_MAX: usize = plaza_consensus::MESSAGE_BYTES_MAX + 64 * 1024;
/// Records carried in one gossip message.
pub const RECORDS_PER_GOSSIP_MAX: usize = 1024;
/// A sync request.
pub const SYNC_REQUEST_BYTES_MAX: usize = 1024;
/// A sync response (blocks are added while they fit).
pub const SYNC_RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Blocks in one sync response.
pub const SYNC_BLOCKS_MAX: u64 = 256;

/// Encodes records for one gossip message.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut w = Writer::new();
    w.seq(records);
    w.into_bytes()
}

/// Decodes a gossip message of records (size-limited, whole buffer).
pub fn decode_records(bytes: &[u8]) -> Result<Vec<Record>, DecodeError> {
    if bytes.len() > GOSSIP_BYTES_MAX {
        return Err(DecodeError::invalid("records message", "too large"));
    }
    let mut r = Reader::new(bytes);
    let records = r.seq("records", RECORDS_PER_GOSSIP_MAX)?;
    r.finish()?;
    Ok(records)
}

/// Asks a peer for finalized blocks from `from`, if it is at least `lag_min` blocks ahead of
/// `from - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRequest {
    pub from: u64,
    pub count: u64,
    pub lag_min: u64,
}

/// The peer's tip and the encoded `FinalizedBlock`s it sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncResponse {
    pub tip: u64,
    pub blocks: Vec<Vec<u8>>,
}

impl Encode for SyncRequest {
    fn encode(&self, w: &mut Writer) {
        w.u8(1);
        w.u64(self.from);
        w.u64(self.count);
        w.u64(self.lag_min);
    }
}
impl Decode for SyncRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            // The count is kept as sent (one canonical encoding); the server caps it.
            1 => Ok(SyncRequest { from: r.u64()?, count: r.u64()?, lag_min: r.u64()? }),
            tag => Err(DecodeError::InvalidTag { what: "sync request", tag }),
        }
    }
}
impl Encode for SyncResponse {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.tip);
        w.u32(self.blocks.len() as u32);
        for b in &self.blocks {
            w.bytes(b);
        }
    }
}
impl Decode for SyncResponse {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tip = r.u64()?;
        let n = r.len("sync blocks", SYNC_BLOCKS_MAX as usize)?;
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            blocks.push(r.bytes("sync block", SYNC_RESPONSE_BYTES_MAX)?.to_vec());
        }
        Ok(SyncResponse { tip, blocks })
    }
}

