//! Validator sets, consensus votes and certificates (DESIGN §6–§7, docs/FORMAT.md §6).
//!
//! Consensus orders opaque block ids; these types are all it needs from the ledger. A vote is
//! signed over `domain::VOTE ‖ alliance id ‖ kind ‖ epoch ‖ view ‖ block id`, so a vote can
//! never be replayed into another alliance, another epoch (validator set) or as another kind.

use std::collections::BTreeSet;

use thiserror::Error;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::keys::{self, domain, BatchItem, Keypair, PublicKey, Signature};

/// More validators than this is not a consortium of local merchants.
pub const VALIDATORS_MAX: usize = 256;

/// One validating member: its merchant key signs votes; its network key is its libp2p identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validator {
    pub key: PublicKey,
    pub network_key: PublicKey,
}

impl Encode for Validator {
    fn encode(&self, w: &mut Writer) {
        self.key.encode(w);
        self.network_key.encode(w);
    }
}
impl Decode for Validator {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Validator { key: PublicKey::decode(r)?, network_key: PublicKey::decode(r)? })
    }
}

/// The validators in force, sorted by key, without duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidatorSetError {
    #[error("a validator set needs at least one validator")]
    Empty,
    #[error("at most {VALIDATORS_MAX} validators")]
    TooMany,
    #[error("validator {0} appears twice")]
    Duplicate(PublicKey),
}

impl ValidatorSet {
    pub fn new(mut validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > VALIDATORS_MAX {
            return Err(ValidatorSetError::TooMany);
        }
        validators.sort_by(|a, b| a.key.cmp(&b.key));
        for pair in validators.windows(2) {
            if pair[0].key == pair[1].key {
                return Err(ValidatorSetError::Duplicate(pair[0].key));
            }
        }
        let networks: BTreeSet<PublicKey> = validators.iter().map(|v| v.network_key).collect();
        if networks.len() != validators.len() {
            let dup = validators
                .iter()
                .find(|v| validators.iter().filter(|o| o.network_key == v.network_key).count() > 1)
                .map(|v| v.network_key)
                .expect("a duplicate exists");
            return Err(ValidatorSetError::Duplicate(dup));
        }
        Ok(ValidatorSet { validators })
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// f: the most faulty validators the set tolerates, n ≥ 3f + 1.
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// n − f distinct signers: 2f + 1 when n = 3f + 1, and always enough that two quorums
    /// share at least f + 1 validators, one of them honest.
    pub fn quorum(&self) -> usize {
        self.len() - self.max_faulty()
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.validators.binary_search_by(|v| v.key.cmp(key)).ok()
    }

    pub fn contains(&self, key: &PublicKey) -> bool {
        self.index_of(key).is_some()
    }

    pub fn hash(&self) -> Hash {
        Hash::digest(&self.to_bytes())
    }
}

impl Encode for ValidatorSet {
    fn encode(&self, w: &mut Writer) {
        w.seq(&self.validators);
    }
}
impl Decode for ValidatorSet {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let validators: Vec<Validator> = r.seq("validators", VALIDATORS_MAX)?;
        let set = ValidatorSet::new(validators.clone()).map_err(|e| DecodeError::invalid("validator set", e.to_string()))?;
        if set.validators != validators {
            return Err(DecodeError::invalid("validator set", "validators must be sorted by key"));
        }
        Ok(set)
    }
}

/// The three Simplex votes (docs/CONSENSUS.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteKind {
    Notarize = 1,
    Nullify = 2,
    Finalize = 3,
}

impl VoteKind {
    pub fn name(self) -> &'static str {
        match self {
            VoteKind::Notarize => "notarize",
            VoteKind::Nullify => "nullify",
            VoteKind::Finalize => "finalize",
        }
    }
}

/// What a vote is about: a kind, an epoch, a view in that epoch, and a block id (zero for
/// nullify). Views start again at 1 in every epoch (docs/CONSENSUS.md, "Epochs"); the epoch
/// in the signed bytes keeps a vote of one epoch from ever counting in another, even when
/// both epochs have the same validator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VoteTarget {
    pub kind: VoteKind,
    pub epoch: u64,
    pub view: u64,
    pub block: Hash,
}

impl VoteTarget {
    pub fn notarize(epoch: u64, view: u64, block: Hash) -> Self {
        VoteTarget { kind: VoteKind::Notarize, epoch, view, block }
    }
    pub fn nullify(epoch: u64, view: u64) -> Self {
        VoteTarget { kind: VoteKind::Nullify, epoch, view, block: Hash::ZERO }
    }
    pub fn finalize(epoch: u64, view: u64, block: Hash) -> Self {
        VoteTarget { kind: VoteKind::Finalize, epoch, view, block }
    }

    /// The bytes a validator signs (after `domain::VOTE`).
    pub fn signing_bytes(&self, alliance: &Hash) -> Vec<u8> {
        let mut w = Writer::new();
        alliance.encode(&mut w);
        self.encode(&mut w);
        w.into_bytes()
    }

    pub fn sign(&self, alliance: &Hash, keypair: &Keypair) -> Vote {
        Vote { target: *self, signer: keypair.public(), signature: keypair.sign(domain::VOTE, &self.signing_bytes(alliance)) }
    }
}

impl Encode for VoteTarget {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.kind as u8);
        w.u64(self.epoch);
        w.u64(self.view);
        self.block.encode(w);
    }
}
impl Decode for VoteTarget {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = match r.u8()? {
            1 => VoteKind::Notarize,
            2 => VoteKind::Nullify,
            3 => VoteKind::Finalize,
            tag => return Err(DecodeError::InvalidTag { what: "vote kind", tag }),
        };
        let epoch = r.u64()?;
        let view = r.u64()?;
        let block = Hash::decode(r)?;
        if (kind == VoteKind::Nullify) != (block == Hash::ZERO) {
            return Err(DecodeError::invalid("vote", "a nullify vote names no block; the others name one"));
        }
        Ok(VoteTarget { kind, epoch, view, block })
    }
}

/// One validator's signed vote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    pub target: VoteTarget,
    pub signer: PublicKey,
    pub signature: Signature,
}

impl Vote {
    pub fn verify(&self, alliance: &Hash) -> Result<(), keys::SignatureError> {
        self.signer.verify(domain::VOTE, &self.target.signing_bytes(alliance), &self.signature)
    }
}

impl Encode for Vote {
    fn encode(&self, w: &mut Writer) {
        self.target.encode(w);
        self.signer.encode(w);
        self.signature.encode(w);
    }
}
impl Decode for Vote {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Vote { target: VoteTarget::decode(r)?, signer: PublicKey::decode(r)?, signature: Signature::decode(r)? })
    }
}

/// Domain of an epoch-suffix block id (docs/CONSENSUS.md, "Epochs").
pub const SUFFIX_DOMAIN: &[u8] = b"plaza/epoch-suffix/v1\0";
/// Suffix blocks after one epoch-ending block, at most (views of its suffix kept with it).
pub const SUFFIX_VIEWS_MAX: usize = 1024;

/// The id of an epoch-suffix block: the empty block that consensus builds in `view` of `epoch`
/// on `parent` (the epoch-ending block or a suffix block above it) at `height`, only so that
/// the epoch-ending block can be finalized by its own validator set. It carries no records,
/// changes no state and is not part of the ledger; its id is
/// `blake3(SUFFIX_DOMAIN ‖ alliance ‖ epoch ‖ view ‖ parent ‖ height)`.
pub fn suffix_block_id(alliance: &Hash, epoch: u64, view: u64, parent: &Hash, height: u64) -> Hash {
    let mut w = Writer::new();
    w.raw(SUFFIX_DOMAIN);
    alliance.encode(&mut w);
    w.u64(epoch);
    w.u64(view);
    parent.encode(&mut w);
    w.u64(height);
    Hash::digest(&w.into_bytes())
}

/// The id a certificate must name to finalize `block` (id, height, the views of its suffix
/// blocks in order): the block itself, or the last of its suffix blocks.
pub fn suffix_target(alliance: &Hash, epoch: u64, block: Hash, height: u64, suffix: &[u64]) -> Hash {
    let mut id = block;
    for (i, view) in suffix.iter().enumerate() {
        id = suffix_block_id(alliance, epoch, *view, &id, height + 1 + i as u64);
    }
    id
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("certificate has {found} signers, the quorum is {needed}")]
    TooFewSigners { found: usize, needed: usize },
    #[error("certificate signers must be sorted and distinct (signer {0} repeats or is out of order)")]
    DuplicateOrUnsorted(PublicKey),
    #[error("certificate signer {0} is not a validator of the set in force")]
    NotAValidator(PublicKey),
    #[error("certificate signature of {0} does not verify")]
    BadSignature(PublicKey),
}

/// A quorum of signatures on one vote target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    pub target: VoteTarget,
    /// Sorted by signer key, distinct.
    pub signatures: Vec<(PublicKey, Signature)>,
}

impl Certificate {
    /// Assembles a certificate from votes on one target; duplicates by signer are dropped.
    pub fn from_votes(target: VoteTarget, votes: impl IntoIterator<Item = Vote>) -> Certificate {
        let mut signatures: Vec<(PublicKey, Signature)> =
            votes.into_iter().filter(|v| v.target == target).map(|v| (v.signer, v.signature)).collect();
        signatures.sort_by(|a, b| a.0.cmp(&b.0));
        signatures.dedup_by(|a, b| a.0 == b.0);
        Certificate { target, signatures }
    }

    pub fn signers(&self) -> impl Iterator<Item = &PublicKey> {
        self.signatures.iter().map(|(k, _)| k)
    }

    /// Checks the structure only: quorum size, sorted distinct signers, all in the set.
    pub fn check_signers(&self, set: &ValidatorSet) -> Result<(), CertificateError> {
        for pair in self.signatures.windows(2) {
            if pair[0].0 >= pair[1].0 {
                return Err(CertificateError::DuplicateOrUnsorted(pair[1].0));
            }
        }
        for (key, _) in &self.signatures {
            if !set.contains(key) {
                return Err(CertificateError::NotAValidator(*key));
            }
        }
        if self.signatures.len() < set.quorum() {
            return Err(CertificateError::TooFewSigners { found: self.signatures.len(), needed: set.quorum() });
        }
        Ok(())
    }

    /// Full verification against the validator set in force: structure and every signature.
    pub fn verify(&self, alliance: &Hash, set: &ValidatorSet) -> Result<(), CertificateError> {
        self.check_signers(set)?;
        let message = self.target.signing_bytes(alliance);
        let items: Vec<BatchItem<'_>> = self
            .signatures
            .iter()
            .map(|(key, signature)| BatchItem { key, domain: domain::VOTE, message: &message, signature })
            .collect();
        let accepted = keys::verify_batch(&items);
        if let Some(i) = accepted.iter().position(|ok| !ok) {
            return Err(CertificateError::BadSignature(self.signatures[i].0));
        }
        Ok(())
    }
}

impl Encode for Certificate {
    fn encode(&self, w: &mut Writer) {
        self.target.encode(w);
        w.u32(self.signatures.len() as u32);
        for (key, sig) in &self.signatures {
            key.encode(w);
            sig.encode(w);
        }
    }
}
impl Decode for Certificate {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let target = VoteTarget::decode(r)?;
        let n = r.len("certificate signers", VALIDATORS_MAX)?;
        let mut signatures = Vec::with_capacity(n);
        for _ in 0..n {
            signatures.push((PublicKey::decode(r)?, Signature::decode(r)?));
        }
        Ok(Certificate { target, signatures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> (Vec<Keypair>, ValidatorSet) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(format!("v{i}").as_bytes())).collect();
        let nets: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(format!("net{i}").as_bytes())).collect();
        let set = ValidatorSet::new(
            keys.iter().zip(&nets).map(|(k, n)| Validator { key: k.public(), network_key: n.public() }).collect(),
        )
        .expect("valid set");
        (keys, set)
    }

    #[test]
    fn quorum_is_two_f_plus_one_for_three_f_plus_one() {
        for (n, q) in [(1, 1), (4, 3), (5, 4), (6, 5), (7, 5), (10, 7), (16, 11)] {
            assert_eq!(set(n).1.quorum(), q, "n = {n}");
        }
    }

    #[test]
    fn certificates_need_a_quorum_of_distinct_validators() {
        let alliance = Hash::digest(b"alliance");
        let (keys, set) = set(4);
        let target = VoteTarget::notarize(0, 3, Hash::digest(b"block"));
        let votes: Vec<Vote> = keys.iter().map(|k| target.sign(&alliance, k)).collect();
        let cert = Certificate::from_votes(target, votes[..3].iter().copied());
        assert_eq!(cert.verify(&alliance, &set), Ok(()));
        assert_eq!(Certificate::from_bytes(&cert.to_bytes(), 1 << 16), Ok(cert.clone()));

        let short = Certificate::from_votes(target, votes[..2].iter().copied());
        assert_eq!(short.verify(&alliance, &set), Err(CertificateError::TooFewSigners { found: 2, needed: 3 }));

        let mut dup = cert.clone();
        dup.signatures[2] = dup.signatures[1];
        assert!(matches!(dup.verify(&alliance, &set), Err(CertificateError::DuplicateOrUnsorted(_))));

        let outsider = Keypair::from_seed(b"outsider");
        let mut foreign = Certificate::from_votes(target, votes[..2].iter().copied().chain([target.sign(&alliance, &outsider)]));
        foreign.signatures.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(foreign.verify(&alliance, &set), Err(CertificateError::NotAValidator(outsider.public())));

        let other_alliance = Certificate::from_votes(target, keys.iter().map(|k| target.sign(&Hash::digest(b"other"), k)));
        assert!(matches!(other_alliance.verify(&alliance, &set), Err(CertificateError::BadSignature(_))));

        // The same votes in another epoch (even with the same set) are other signed bytes.
        let mut other_epoch = cert.clone();
        other_epoch.target.epoch = 1;
        assert!(matches!(other_epoch.verify(&alliance, &set), Err(CertificateError::BadSignature(_))));
    }
}
