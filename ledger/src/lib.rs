//! Plaza's ledger: everything that is signed, hashed, stored or recomputed.
//!
//! - [`codec`]: the one canonical binary encoding (docs/FORMAT.md §1).
//! - [`hash`], [`keys`], [`merkle`]: blake3, ed25519 with one acceptance rule, RFC 9162 trees.
//! - [`money`]: amounts in cents and rates in basis points (DESIGN §5).
//! - [`record`], [`receipt`], [`block`], [`cert`], [`genesis`], [`policy`]: the data model.
//! - [`geo`], [`nearby`]: integer distances between members' locations, and the queries
//!   "which members are near" and "where can this coupon or card be used" (issue 19).
//! - [`execute`]: the one re-execute-a-block-and-compare-with-its-header check.
//! - [`store`]: the store trait, the in-memory store, and (feature `store`) the RocksDB store.
//!
//! Architecture invariant: nothing here but the RocksDB store does I/O other than reading and writing
//! key files; nothing reads a clock or uses randomness except key generation.

pub mod audit;
pub mod block;
pub mod cert;
pub mod codec;
pub mod contract;
pub mod execute;
pub mod genesis;
pub mod geo;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod money;
pub mod nearby;
pub mod policy;
pub mod receipt;
pub mod record;
pub mod store;

pub use hash::Hash;
pub use keys::{Keypair, PublicKey, Signature};
