//! Keys, signatures and the one signature-acceptance rule (docs/FORMAT.md §3).
//!
//! Acceptance is the same for single and batch verification, on every node:
//! - the public key is a canonical encoding of a point of prime order (no small-order or
//!   mixed-order keys: "weak" keys are rejected where keys enter, in [`PublicKey::from_bytes`]);
//! - the signature's R is a canonical encoding of a point of prime order;
//! - the signature's S is a canonical scalar (S < ℓ);
//! - the cofactorless equation [S]B = R + [k]A holds.
//!
//! Because A and R lie in the prime-order subgroup, the cofactorless equation and the random
//! linear combination that batch verification checks accept exactly the same signatures
//! (up to the batch's 2^-128 soundness error), which is what lets a node batch for speed
//! without ever disagreeing with a node that verifies one by one.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};

/// Domain tags put in front of every signed message, so that a signature made for one purpose
/// can never be replayed as another.
pub mod domain {
    pub const RECORD: &[u8] = b"plaza/record/v1\0";
    pub const VOTE: &[u8] = b"plaza/vote/v1\0";
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("public key is not a valid point encoding")]
    NotAPoint,
    #[error("public key is not canonically encoded")]
    NonCanonical,
    #[error("public key is weak (small or mixed order)")]
    Weak,
    #[error("{0}")]
    Format(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error("signature R is not a canonical encoding of a point")]
    NonCanonicalR,
    #[error("signature R has a small-order component")]
    WeakR,
    #[error("signature S is not canonical (S >= l)")]
    NonCanonicalS,
    #[error("signature does not verify")]
    Mismatch,
}

/// Checks that 32 bytes canonically encode a point of prime order.
fn check_prime_order_point(bytes: &[u8; 32]) -> Result<(), KeyError> {
    let compressed = CompressedEdwardsY(*bytes);
    let point = compressed.decompress().ok_or(KeyError::NotAPoint)?;
    if point.compress().as_bytes() != bytes {
        return Err(KeyError::NonCanonical);
    }
    if point.is_small_order() || !point.is_torsion_free() {
        return Err(KeyError::Weak);
    }
    Ok(())
}

/// Accepted key encodings remembered per thread by [`PublicKey::from_bytes`] (direct-mapped
/// by the first byte; only keys that passed the check are stored, so the cache can never
/// accept a key the check would reject).
const ACCEPTED_KEYS_CACHED: usize = 256;
thread_local! {
    static ACCEPTED_KEYS: std::cell::RefCell<[Option<[u8; 32]>; ACCEPTED_KEYS_CACHED]> =
        const { std::cell::RefCell::new([None; ACCEPTED_KEYS_CACHED]) };
}

/// A validated ed25519 public key: merchants, validators, network identities.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    bytes: [u8; 32],
    key: VerifyingKey,
}

impl PublicKey {
    /// The only way keys enter: rejects non-points, non-canonical encodings and weak keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        // The prime-order check costs a scalar multiplication; the same few merchant keys
        // sign almost every record, so accepted keys are remembered (per thread).
        let slot = usize::from(bytes[0]) % ACCEPTED_KEYS_CACHED;
        let known = ACCEPTED_KEYS.with(|cache| cache.borrow()[slot] == Some(*bytes));
        if !known {
            check_prime_order_point(bytes)?;
            ACCEPTED_KEYS.with(|cache| cache.borrow_mut()[slot] = Some(*bytes));
        }
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::NotAPoint)?;
        Ok(PublicKey { bytes: *bytes, key })
    }

    pub fn from_hex(text: &str) -> Result<PublicKey, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|e| KeyError::Format(format!("public key is not hex: {e}")))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyError::Format(format!("a public key is 32 bytes (64 hex digits), this is {} bytes", b.len())))?;
        PublicKey::from_bytes(&array)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Verifies `signature` over `domain ‖ message` under the acceptance rule above.
    pub fn verify(&self, domain: &[u8], message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let sig = signature.checked()?;
        let mut full = Vec::with_capacity(domain.len() + message.len());
        full.extend_from_slice(domain);
        full.extend_from_slice(message);
        self.key.verify_strict(&full, &sig).map_err(|_| SignatureError::Mismatch)
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}
impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", &self.to_hex()[..16])
    }
}

impl Encode for PublicKey {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.bytes);
    }
}
impl Decode for PublicKey {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let bytes: [u8; 32] = r.array()?;
        PublicKey::from_bytes(&bytes).map_err(|e| DecodeError::invalid("public key", e.to_string()))
    }
}

/// 64 signature bytes (R ‖ S); checked only when verified.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    fn checked(&self) -> Result<ed25519_dalek::Signature, SignatureError> {
        let r: [u8; 32] = self.0[..32].try_into().expect("64 = 32 + 32");
        check_prime_order_point(&r).map_err(|e| match e {
            KeyError::Weak => SignatureError::WeakR,
            _ => SignatureError::NonCanonicalR,
        })?;
        // S < l: the top three bits must be clear and the value below l.
        let s: [u8; 32] = self.0[32..].try_into().expect("64 = 32 + 32");
        if curve25519_dalek::Scalar::from_canonical_bytes(s).is_none().into() {
            return Err(SignatureError::NonCanonicalS);
        }
        Ok(ed25519_dalek::Signature::from_bytes(&self.0))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", &hex::encode(&self.0[..8]))
    }
}

impl Encode for Signature {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}
impl Decode for Signature {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(r.array()?))
    }
}

/// One item of a batch: who signed what under which domain.
pub struct BatchItem<'a> {
    pub key: &'a PublicKey,
    pub domain: &'static [u8],
    pub message: &'a [u8],
    pub signature: &'a Signature,
}

/// Verifies many signatures at once. Returns, for each item, whether it is accepted; the
/// answers are exactly those of [`PublicKey::verify`] item by item.
pub fn verify_batch(items: &[BatchItem<'_>]) -> Vec<bool> {
    let mut accepted = vec![false; items.len()];
    let mut candidates = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Ok(sig) = item.signature.checked() {
            let mut full = Vec::with_capacity(item.domain.len() + item.message.len());
            full.extend_from_slice(item.domain);
            full.extend_from_slice(item.message);
            candidates.push(i);
            sigs.push(sig);
            messages.push(full);
        }
    }
    if candidates.is_empty() {
        return accepted;
    }
    let keys: Vec<VerifyingKey> = candidates.iter().map(|&i| items[i].key.key).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&message_refs, &sigs, &keys).is_ok() {
        for &i in &candidates {
            accepted[i] = true;
        }
        return accepted;
    }
    // Some signature is bad: find which, one by one.
    for (slot, &i) in candidates.iter().enumerate() {
        accepted[i] = keys[slot].verify_strict(message_refs[slot], &sigs[slot]).is_ok();
    }
    accepted
}

/// A merchant's (or a node's) secret key.
pub struct Keypair {
    signing: SigningKey,
    public: PublicKey,
}

impl Keypair {
    pub fn generate() -> Keypair {
        loop {
            let signing = SigningKey::generate(&mut rand::rng());
            if let Ok(kp) = Keypair::from_secret(&signing.to_bytes()) {
                return kp;
            }
        }
    }

    /// A key derived from a seed: for tests, simulations and the demo only.
    pub fn from_seed(seed: &[u8]) -> Keypair {
        let secret = *blake3::hash(seed).as_bytes();
        Keypair::from_secret(&secret).expect("a hashed seed gives a prime-order public key")
    }

    pub fn from_secret(secret: &[u8; 32]) -> Result<Keypair, KeyError> {
        let signing = SigningKey::from_bytes(secret);
        let public = PublicKey::from_bytes(signing.verifying_key().as_bytes())?;
        Ok(Keypair { signing, public })
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Signature {
        let mut full = Vec::with_capacity(domain.len() + message.len());
        full.extend_from_slice(domain);
        full.extend_from_slice(message);
        Signature(self.signing.sign(&full).to_bytes())
    }

    /// Writes the key as a small TOML file readable only by its owner (0600).
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let text = format!(
            "# Plaza ed25519 key. Keep this file secret.\npublic = \"{}\"\nsecret = \"{}\"\n",
            self.public.to_hex(),
            hex::encode(self.secret_bytes())
        );
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options
            .open(path)
            .map_err(|e| KeyError::Format(format!("cannot create key file {}: {e}", path.display())))?;
        file.write_all(text.as_bytes())
            .map_err(|e| KeyError::Format(format!("cannot write key file {}: {e}", path.display())))
    }

    /// Reads a key file written by [`Keypair::save`]; refuses files others can read.
    pub fn load(path: &Path) -> Result<Keypair, KeyError> {
        let shown = path.display();
        let metadata = fs::metadata(path).map_err(|e| KeyError::Format(format!("cannot read key file {shown}: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Format(format!(
                    "key file {shown} is readable by others (mode {mode:o}); run: chmod 600 {shown}"
                )));
            }
        }
        let _ = metadata;
        let text = fs::read_to_string(path).map_err(|e| KeyError::Format(format!("cannot read key file {shown}: {e}")))?;
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct KeyFile {
            public: String,
            secret: String,
        }
        let parsed: KeyFile =
            toml::from_str(&text).map_err(|e| KeyError::Format(format!("key file {shown} is not a Plaza key: {}", e.message())))?;
        let secret = hex::decode(parsed.secret.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| KeyError::Format(format!("key file {shown}: secret must be 64 hex digits")))?;
        let keypair = Keypair::from_secret(&secret)?;
        let claimed = PublicKey::from_hex(&parsed.public)?;
        if claimed != keypair.public {
            return Err(KeyError::Format(format!("key file {shown}: public key does not match the secret key")));
        }
        Ok(keypair)
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({:?})", self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_and_domain_separation() {
        let kp = Keypair::from_seed(b"alice");
        let sig = kp.sign(domain::RECORD, b"hello");
        assert_eq!(kp.public().verify(domain::RECORD, b"hello", &sig), Ok(()));
        assert_eq!(kp.public().verify(domain::VOTE, b"hello", &sig), Err(SignatureError::Mismatch));
        assert_eq!(kp.public().verify(domain::RECORD, b"hellO", &sig), Err(SignatureError::Mismatch));
    }

    #[test]
    fn identity_and_small_order_keys_are_weak() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Weak));
        assert_eq!(PublicKey::from_bytes(&[0u8; 32]), Err(KeyError::Weak));
    }

    #[test]
    fn key_files_are_private_and_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.toml");
        let kp = Keypair::generate();
        kp.save(&path).expect("save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            assert_eq!(Keypair::load(&path).expect("load").public(), kp.public());
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(Keypair::load(&path).unwrap_err().to_string().contains("readable by others"));
        }
        assert!(kp.save(&path).is_err(), "an existing key file is never overwritten");
    }
}
