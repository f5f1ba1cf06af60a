//! Plaza's ledger: everything that is signed, hashed, stored or recomputed.
//!
//! - [`codec`]: the one canonical binary encoding (docs/FORMAT.md §1).
//! - [`hash`], [`keys`], [`merkle`]: blake3, ed25519 with one acceptance rule, RFC 9162 trees.
//! - [`money`]: amounts in cents and rates in basis points (DESIGN §5).
//! - [`cert`]: validator sets, consensus votes and certificates.
//!
//! Architecture invariant: nothing here but the `store` module (feature `store`) does I/O
//! other than reading and writing key files; nothing reads a clock or uses randomness except
//! key generation.

pub mod cert;
pub mod codec;
pub mod hash;
pub mod keys;
pub mod merkle;
pub mod money;

pub use hash::Hash;
pub use keys::{Keypair, PublicKey, Signature};
