//! Keys, signatures and the one signature-acceptance rule (docs/FORMAT.md §3).
//!
//! Acceptance is the same for single and batch verification, on every node:
//! - the public key is a canonical encoding of a point of prime order (no small-order or
//!   mixed-order keys: "weak" keys are rejected where keys enter, in [`PublicKey::from_bytes`]);
//! - the signature's R is a canonical encoding of a point that is not of small order;
//! - the signature's S is a canonical scalar (S < ℓ);
//! - the cofactored equation [8][S]B = [8]R + [8][k]A holds, k = SHA-512(R ‖ A ‖ M) mod ℓ.
//!
//! The cofactored equation is what batch verification checks too (a random linear combination
//! multiplied by the cofactor), so a node that batches for speed accepts exactly what a node
//! verifying one by one accepts (up to the batch's 2^-128 soundness error) — the property the
//! cofactorless `verify_strict` of ed25519-dalek does not have, and the reason verification is
//! written here on curve25519-dalek's primitives (the same choice as ZIP-215). Signing and key
//! generation are ed25519-dalek's.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use curve25519_dalek::Scalar;
use ed25519_dalek::{Signer, SigningKey};
use sha2::{Digest, Sha512};
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
    #[error("signature R is itself a point of small order (one of the 8 points of order 1, 2, 4 or 8)")]
    WeakR,
    #[error("signature S is not canonical (S >= l)")]
    NonCanonicalS,
    #[error("signature does not verify")]
    Mismatch,
}

/// Decompresses 32 bytes that must be the canonical encoding of a point: the encoding that
/// compressing the point gives back (docs/FORMAT.md §3).
fn canonical_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
    let point = CompressedEdwardsY(*bytes).decompress().ok_or(KeyError::NotAPoint)?;
    if !is_canonical_encoding(bytes) {
        return Err(KeyError::NonCanonical);
    }
    Ok(point)
}

/// Whether 32 bytes that decompress to a point are the point's own compression, decided from
/// the bytes instead of compressing the point again (a field inversion, a fifth of a batch
/// verification's time). Decompression reads y modulo p = 2^255 − 19 and picks the x whose
/// low bit is the sign bit, except that x = 0 has no negative: so compression gives the same
/// bytes back exactly when y < p, and the sign bit is clear wherever x = 0. The curve
/// −x² + y² = 1 + d·x²·y² has x = 0 only at y = 1 and y = p − 1. (The unit test checks this
/// against compressing again, on every encoding near those edges and on random ones.)
fn is_canonical_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    let sign = y[31] >> 7;
    y[31] &= 0x7f;
    // p − 1 in little-endian: 0xec, thirty 0xff, 0x7f; y ≥ p has p's top 31 bytes and a low
    // byte of at least 0xed.
    let top_of_p = y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff);
    let below_p = !(top_of_p && y[0] >= 0xed);
    let one = y[0] == 1 && y[1..].iter().all(|b| *b == 0);
    let minus_one = top_of_p && y[0] == 0xec;
    below_p && !(sign == 1 && (one || minus_one))
}

/// Checks that 32 bytes canonically encode a point of prime order.
fn prime_order_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
    let point = canonical_point(bytes)?;
    if point.is_small_order() || !point.is_torsion_free() {
        return Err(KeyError::Weak);
    }
    Ok(point)
}

/// Keys already validated, so the torsion check (a full scalar multiplication) runs once per
/// key per process, not once per message. It memoises a pure function: no answer depends on it.
const KEY_CACHE_MAX: usize = 1 << 16;
static KEY_CACHE: OnceLock<Mutex<BTreeMap<[u8; 32], EdwardsPoint>>> = OnceLock::new();

fn validated_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
    let cache = KEY_CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Ok(map) = cache.lock() {
        if let Some(point) = map.get(bytes) {
            return Ok(*point);
        }
    }
    let point = prime_order_point(bytes)?;
    if let Ok(mut map) = cache.lock() {
        if map.len() >= KEY_CACHE_MAX {
            map.clear();
        }
        map.insert(*bytes, point);
    }
    Ok(point)
}

/// A validated ed25519 public key: merchants, validators, network identities.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    /// Only the 32 bytes: keys are copied into every party, order and lot of the contract's
    /// state, so the decompressed point lives in the validated-key cache instead.
    bytes: [u8; 32],
}

impl PublicKey {
    /// The only way keys enter: rejects non-points, non-canonical encodings and weak keys.
    /// The prime-order check costs a scalar multiplication and a few merchant keys sign
    /// almost everything, so accepted keys are remembered process-wide ([`validated_point`]).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        validated_point(bytes)?;
        Ok(PublicKey { bytes: *bytes })
    }

    /// The curve point; the bytes were validated when this key was made.
    fn point(&self) -> EdwardsPoint {
        validated_point(&self.bytes).expect("a PublicKey holds validated bytes")
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
        let (r, s) = signature.checked()?;
        let k = challenge(&signature.0[..32], &self.bytes, domain, message);
        // [8]([S]B − [k]A − R) = 0
        let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&-k, &self.point(), &s);
        if (sb_minus_ka - r).mul_by_cofactor().is_identity() {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PublicKey {
    /// The order of the 32 bytes.
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        crate::hash::cmp_bytes(&self.bytes, &other.bytes)
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

/// k = SHA-512(R ‖ A ‖ domain ‖ message) mod ℓ (RFC 8032 §5.1.7, the message being domain ‖ message).
fn challenge(r: &[u8], a: &[u8; 32], domain: &[u8], message: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(domain);
    h.update(message);
    let digest: [u8; 64] = h.finalize().into();
    Scalar::from_bytes_mod_order_wide(&digest)
}

impl Signature {
    /// R as a canonical, not-small-order point and S as a canonical scalar.
    fn checked(&self) -> Result<(EdwardsPoint, Scalar), SignatureError> {
        let r_bytes: [u8; 32] = self.0[..32].try_into().expect("64 = 32 + 32");
        let r = canonical_point(&r_bytes).map_err(|_| SignatureError::NonCanonicalR)?;
        if r.is_small_order() {
            return Err(SignatureError::WeakR);
        }
        let s_bytes: [u8; 32] = self.0[32..].try_into().expect("64 = 32 + 32");
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(SignatureError::NonCanonicalS)?;
        Ok((r, s))
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
    verify_batch_reasons(items).iter().map(Result::is_ok).collect()
}

/// [`verify_batch`] with each refusal's reason: exactly what [`PublicKey::verify`] answers
/// item by item.
///
/// One multiscalar multiplication checks
/// [8]( [Σ zᵢSᵢ]B − Σ zᵢRᵢ − Σ (zᵢkᵢ)Aᵢ ) = 0 with 128-bit zᵢ derived by blake3 from every
/// input (deterministic, and unpredictable to whoever made the signatures). When it fails,
/// the items are checked one by one to say which.
pub fn verify_batch_reasons(items: &[BatchItem<'_>]) -> Vec<Result<(), SignatureError>> {
    let mut answers: Vec<Result<(), SignatureError>> = Vec::with_capacity(items.len());
    let mut candidates: Vec<usize> = Vec::with_capacity(items.len());
    let mut rs = Vec::with_capacity(items.len());
    let mut ss = Vec::with_capacity(items.len());
    let mut ks = Vec::with_capacity(items.len());
    let mut transcript = blake3::Hasher::new();
    transcript.update(b"plaza/batch-verify/v1");
    for (i, item) in items.iter().enumerate() {
        match item.signature.checked() {
            Ok((r, s)) => {
                let k = challenge(&item.signature.0[..32], &item.key.bytes, item.domain, item.message);
                transcript.update(&item.signature.0);
                transcript.update(&item.key.bytes);
                transcript.update(k.as_bytes());
                candidates.push(i);
                rs.push(r);
                ss.push(s);
                ks.push(k);
                // Decided below, with the others.
                answers.push(Ok(()));
            }
            Err(e) => answers.push(Err(e)),
        }
    }
    let alone = |i: usize| items[i].key.verify(items[i].domain, items[i].message, items[i].signature);
    match candidates.len() {
        0 => return answers,
        1 => {
            let i = candidates[0];
            answers[i] = alone(i);
            return answers;
        }
        _ => {}
    }
    let mut rng = transcript.finalize_xof();
    let zs: Vec<Scalar> = (0..candidates.len())
        .map(|_| {
            let mut z = [0u8; 32];
            rng.fill(&mut z[..16]);
            Scalar::from_bytes_mod_order(z)
        })
        .collect();
    let b_coefficient: Scalar = zs.iter().zip(&ss).map(|(z, s)| z * s).sum();
    let scalars = std::iter::once(b_coefficient)
        .chain(zs.iter().map(|z| -z))
        .chain(zs.iter().zip(&ks).map(|(z, k)| -(z * k)));
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(rs.iter().copied())
        .chain(candidates.iter().map(|&i| items[i].key.point()));
    if !EdwardsPoint::vartime_multiscalar_mul(scalars, points).mul_by_cofactor().is_identity() {
        for &i in &candidates {
            answers[i] = alone(i);
        }
    }
    answers
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
        if !metadata.is_file() {
            let what = if metadata.is_dir() { "a directory" } else { "not a regular file" };
            return Err(KeyError::Format(format!("{shown} is {what}, not a key file (give the file `plaza keys new` wrote)")));
        }
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
        let bytes = fs::read(path).map_err(|e| KeyError::Format(format!("cannot read key file {shown}: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| KeyError::Format(format!("key file {shown} is not a Plaza key: it is not text (a key file is the TOML `plaza keys new` writes)")))?;
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
    use proptest::prelude::*;

    /// The definition: the point's compression gives the same bytes back.
    fn canonical_by_compressing(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
        let point = CompressedEdwardsY(*bytes).decompress().ok_or(KeyError::NotAPoint)?;
        if point.compress().as_bytes() != bytes {
            return Err(KeyError::NonCanonical);
        }
        Ok(point)
    }

    fn same_answer(bytes: &[u8; 32]) {
        assert_eq!(canonical_point(bytes), canonical_by_compressing(bytes), "{}", hex::encode(bytes));
    }

    /// Every encoding whose y is within 300 of 0 or of p (both sign bits), where the
    /// non-canonical ones live, and x = 0's two points.
    #[test]
    fn the_canonical_check_agrees_with_compressing_again_at_the_edges() {
        let mut non_canonical = 0;
        for low in 0u16..300 {
            for sign in [0u8, 0x80] {
                // y = low
                let mut small = [0u8; 32];
                small[..2].copy_from_slice(&low.to_le_bytes());
                small[31] |= sign;
                same_answer(&small);
                // y = 2^255 − 1 − low, which covers p − 1 … p + 18 and the values below p − 1
                let mut large = [0xffu8; 32];
                large[31] = 0x7f | sign;
                let v = u16::from_le_bytes([0xff, 0xff]) - low;
                large[..2].copy_from_slice(&v.to_le_bytes());
                same_answer(&large);
                non_canonical += usize::from(canonical_by_compressing(&small) == Err(KeyError::NonCanonical));
                non_canonical += usize::from(canonical_by_compressing(&large) == Err(KeyError::NonCanonical));
            }
        }
        // Some of those encodings decompress and are refused, so the comparison meant something.
        assert!(non_canonical >= 4, "{non_canonical} non-canonical encodings among the edges");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn the_canonical_check_agrees_with_compressing_again(bytes in any::<[u8; 32]>()) {
            same_answer(&bytes);
        }

        #[test]
        fn every_point_s_compression_is_canonical(seed in any::<[u8; 32]>()) {
            let point = EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(seed));
            let bytes = point.compress().to_bytes();
            prop_assert!(is_canonical_encoding(&bytes));
            same_answer(&bytes);
        }
    }

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
