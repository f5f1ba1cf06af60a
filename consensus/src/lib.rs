//! Simplex BFT consensus (DESIGN §7, docs/CONSENSUS.md) as a pure state machine.
//!
//! [`Consensus::handle`] takes the time and one [`Input`] and returns the [`Output`]s the
//! driver must perform, in order. The driver (the node, or the simulator in `testnet`) owns
//! the network, the clock, the disk and the application.
//!
//! Architecture invariants: this crate does no I/O, reads no clock, uses no randomness and
//! iterates no hash map into output; it orders opaque block ids and never looks inside a
//! block's payload. Everything it needs from the ledger is ids, keys, signatures, votes and
//! certificates.

mod message;
mod simplex;

pub use message::{Message, Proposal, Request, CERTIFICATE_REQUEST_VIEWS_MAX, MESSAGE_BYTES_MAX, PAYLOAD_BYTES_MAX};
pub use simplex::{
    Config, Consensus, ConsensusError, Finalized, FinalizedTip, Input, InjectedBugs, Output, Restart, VIEWS_AHEAD_MAX,
};
