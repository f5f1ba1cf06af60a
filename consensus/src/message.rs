//! What crosses the network between validators, with its canonical encoding.
//!
//! Every message has one encoding (the ledger's codec): a one-byte tag, then the fields.
//! Decoding takes a size limit, consumes the whole buffer and never panics on garbage.

use plaza_ledger::cert::{Certificate, Vote};
use plaza_ledger::codec::{Decode, DecodeError, Encode, Reader, Writer};
use plaza_ledger::{Hash, Signature};

/// The largest opaque block payload consensus carries (the app's block bytes).
pub const PAYLOAD_BYTES_MAX: usize = 4 << 20;
/// The largest encoded message: a proposal with the largest payload plus its fixed fields.
pub const MESSAGE_BYTES_MAX: usize = PAYLOAD_BYTES_MAX + 1024;
/// At most this many views are covered by one certificate request.
pub const CERTIFICATE_REQUEST_VIEWS_MAX: u64 = 64;

/// A leader's block for one view. The leader's notarize vote on (view, block) is its
/// signature, so a proposal is authenticated by the same rule as every vote.
///
/// Consensus never looks inside `payload`; the application must check, in its verdict, that
/// `block` is the id of a block whose parent is `parent` at `height` (the id commits to them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub view: u64,
    /// The view in which `parent` was proposed (0 for the genesis parent).
    pub parent_view: u64,
    /// The parent block id; the alliance id for the first block.
    pub parent: Hash,
    /// 1 for the first block.
    pub height: u64,
    pub block: Hash,
    pub payload: Vec<u8>,
    /// The leader's signature of `VoteTarget::notarize(epoch, view, block)` (the epoch is the
    /// receiver's: a proposal of another epoch does not verify).
    pub signature: Signature,
}

/// Asks peers for something this validator is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// The proposal that carried this block id.
    Block(Hash),
    /// Every certificate the peer holds for views `from_view..=to_view`
    /// (at most [`CERTIFICATE_REQUEST_VIEWS_MAX`] views).
    Certificates { from_view: u64, to_view: u64 },
}

/// One consensus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A leader's proposal, or the answer to [`Request::Block`].
    Proposal(Proposal),
    Vote(Vote),
    /// A notarization, nullification or finalization: a quorum of votes on one target.
    Certificate(Certificate),
    Request(Request),
}

impl Encode for Proposal {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.view);
        w.u64(self.parent_view);
        self.parent.encode(w);
        w.u64(self.height);
        self.block.encode(w);
        w.bytes(&self.payload);
        self.signature.encode(w);
    }
}

impl Decode for Proposal {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let view = r.u64()?;
        let parent_view = r.u64()?;
        let parent = Hash::decode(r)?;
        let height = r.u64()?;
        let block = Hash::decode(r)?;
        let payload = r.bytes("proposal payload", PAYLOAD_BYTES_MAX)?.to_vec();
        let signature = Signature::decode(r)?;
        if parent_view >= view {
            return Err(DecodeError::invalid("proposal", "the parent's view must precede the proposal's view"));
        }
        if height == 0 {
            return Err(DecodeError::invalid("proposal", "height 1 is the first block"));
        }
        Ok(Proposal { view, parent_view, parent, height, block, payload, signature })
    }
}

impl Encode for Request {
    fn encode(&self, w: &mut Writer) {
        match self {
            Request::Block(block) => {
                w.u8(1);
                block.encode(w);
            }
            Request::Certificates { from_view, to_view } => {
                w.u8(2);
                w.u64(*from_view);
                w.u64(*to_view);
            }
        }
    }
}

impl Decode for Request {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Request::Block(Hash::decode(r)?)),
            2 => {
                let from_view = r.u64()?;
                let to_view = r.u64()?;
                if to_view < from_view || to_view - from_view >= CERTIFICATE_REQUEST_VIEWS_MAX {
                    return Err(DecodeError::invalid(
                        "certificate request",
                        format!("a request covers 1 to {CERTIFICATE_REQUEST_VIEWS_MAX} views"),
                    ));
                }
                Ok(Request::Certificates { from_view, to_view })
            }
            tag => Err(DecodeError::InvalidTag { what: "request", tag }),
        }
    }
}

impl Encode for Message {
    fn encode(&self, w: &mut Writer) {
        match self {
            Message::Proposal(p) => {
                w.u8(1);
                p.encode(w);
            }
            Message::Vote(v) => {
                w.u8(2);
                v.encode(w);
            }
            Message::Certificate(c) => {
                w.u8(3);
                c.encode(w);
            }
            Message::Request(q) => {
                w.u8(4);
                q.encode(w);
            }
        }
    }
}

impl Decode for Message {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(Message::Proposal(Proposal::decode(r)?)),
            2 => Ok(Message::Vote(Vote::decode(r)?)),
            3 => Ok(Message::Certificate(Certificate::decode(r)?)),
            4 => Ok(Message::Request(Request::decode(r)?)),
            tag => Err(DecodeError::InvalidTag { what: "consensus message", tag }),
        }
    }
}

impl Message {
    /// Decodes one message of at most [`MESSAGE_BYTES_MAX`] bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Message, DecodeError> {
        Message::from_bytes(bytes, MESSAGE_BYTES_MAX)
    }
}
