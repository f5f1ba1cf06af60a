//! The signature-acceptance rule (docs/FORMAT.md §3) against published edge cases, and batch
//! verification agreeing with single verification.

use plaza_ledger::keys::{verify_batch, verify_batch_reasons, BatchItem, KeyError, PublicKey, Signature, SignatureError};
use plaza_ledger::Keypair;
use proptest::prelude::*;

#[derive(serde::Deserialize)]
struct Case {
    message: String,
    pub_key: String,
    signature: String,
}

fn cases() -> Vec<(Vec<u8>, [u8; 32], Signature)> {
    let text = include_str!("data/ed25519_speccheck_cases.json");
    let cases: Vec<Case> = serde_json::from_str(text).expect("vector file parses");
    cases
        .into_iter()
        .map(|c| {
            let key: [u8; 32] = hex::decode(c.pub_key).expect("hex").try_into().expect("32 bytes");
            let sig: [u8; 64] = hex::decode(c.signature).expect("hex").try_into().expect("64 bytes");
            (hex::decode(c.message).expect("hex"), key, Signature(sig))
        })
        .collect()
}

/// The published vectors are raw ed25519 over the message, so they are checked with an empty
/// domain, through the same code path as every Plaza signature.
const NO_DOMAIN: &[u8] = b"";

#[test]
fn every_speccheck_vector_is_rejected_single_and_batch() {
    let cases = cases();
    assert_eq!(cases.len(), 10, "the ten published vectors");
    // Vectors 0–5 and 8–9 use small- or mixed-order keys: such keys never enter at all.
    // Vectors 6–7 have a prime-order key and S ≥ ℓ.
    for (i, (message, key, sig)) in cases.iter().enumerate() {
        match PublicKey::from_bytes(key) {
            Err(e) => {
                assert!(matches!(i, 0..=5 | 8 | 9), "vector {i}: key unexpectedly rejected: {e}");
                assert_eq!(e, KeyError::Weak, "vector {i}");
            }
            Ok(pk) => {
                assert!(matches!(i, 6 | 7), "vector {i}: key unexpectedly accepted");
                assert_eq!(pk.verify(NO_DOMAIN, message, sig), Err(SignatureError::NonCanonicalS), "vector {i}");
                let batch = verify_batch(&[BatchItem { key: &pk, domain: NO_DOMAIN, message, signature: sig }]);
                assert_eq!(batch, vec![false], "vector {i}: batch must agree with single");
            }
        }
    }
}

#[test]
fn non_canonical_r_of_vectors_8_and_9_is_rejected_under_a_prime_order_key() {
    let cases = cases();
    let pk = Keypair::from_seed(b"prime order").public();
    for i in [8, 9] {
        let (message, _, sig) = &cases[i];
        assert_eq!(pk.verify(NO_DOMAIN, message, sig), Err(SignatureError::NonCanonicalR), "vector {i}");
        let batch = verify_batch(&[BatchItem { key: &pk, domain: NO_DOMAIN, message, signature: sig }]);
        assert_eq!(batch, vec![false]);
    }
}

#[test]
fn a_valid_signature_passes_alone_and_in_a_batch_with_bad_ones() {
    let kp = Keypair::from_seed(b"signer");
    let pk = kp.public();
    let good = kp.sign(NO_DOMAIN, b"message");
    assert!(pk.verify(NO_DOMAIN, b"message", &good).is_ok());
    // Vectors 6–7 have prime-order keys with bad signatures; 8–9's R under our key: mix them in.
    let cases = cases();
    let v6 = PublicKey::from_bytes(&cases[6].1).expect("prime order");
    let v7 = PublicKey::from_bytes(&cases[7].1).expect("prime order");
    let items = vec![
        BatchItem { key: &pk, domain: NO_DOMAIN, message: b"message", signature: &good },
        BatchItem { key: &v6, domain: NO_DOMAIN, message: &cases[6].0, signature: &cases[6].2 },
        BatchItem { key: &pk, domain: NO_DOMAIN, message: &cases[8].0, signature: &cases[8].2 },
        BatchItem { key: &pk, domain: NO_DOMAIN, message: b"message", signature: &good },
        BatchItem { key: &v7, domain: NO_DOMAIN, message: &cases[7].0, signature: &cases[7].2 },
    ];
    assert_eq!(verify_batch(&items), vec![true, false, false, true, false]);
}

#[test]
fn non_canonical_s_is_rejected() {
    let kp = Keypair::from_seed(b"signer");
    let mut sig = kp.sign(NO_DOMAIN, b"m");
    // Add ℓ to S: same value mod ℓ, a second encoding of one signature.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0x10,
    ];
    let mut carry = 0u16;
    for i in 0..32 {
        let sum = u16::from(sig.0[32 + i]) + u16::from(L[i]) + carry;
        sig.0[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert!(kp.public().verify(NO_DOMAIN, b"m", &sig).is_err());
    let batch = verify_batch(&[BatchItem { key: &kp.public(), domain: NO_DOMAIN, message: b"m", signature: &sig }]);
    assert_eq!(batch, vec![false]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Batch verification answers exactly what single verification answers, item by item.
    #[test]
    fn batch_agrees_with_single(n in 1usize..12, corrupt in proptest::collection::vec(any::<(bool, u8, u8)>(), 12)) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(&[i as u8])).collect();
        let publics: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; i + 1]).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(b"d", m)).collect();
        for (i, sig) in sigs.iter_mut().enumerate() {
            let (flip, byte, bit) = corrupt[i];
            if flip {
                sig.0[usize::from(byte) % 64] ^= 1 << (bit % 8);
            }
        }
        let items: Vec<BatchItem<'_>> = (0..n)
            .map(|i| BatchItem { key: &publics[i], domain: b"d", message: &messages[i], signature: &sigs[i] })
            .collect();
        let single: Vec<bool> = (0..n).map(|i| publics[i].verify(b"d", &messages[i], &sigs[i]).is_ok()).collect();
        prop_assert_eq!(verify_batch(&items), single);
        let reasons: Vec<Result<(), SignatureError>> = (0..n).map(|i| publics[i].verify(b"d", &messages[i], &sigs[i])).collect();
        prop_assert_eq!(verify_batch_reasons(&items), reasons);
    }
}

/// The case where cofactorless and cofactored verification differ: a signer who puts a
/// small-order component into its own R. Plaza's rule is cofactored, so single and batch
/// verification both accept it — the point is that they agree, on every node.
#[test]
fn a_torsioned_r_gets_the_same_answer_single_and_batch() {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
    use curve25519_dalek::edwards::CompressedEdwardsY;
    use curve25519_dalek::Scalar;
    use sha2::{Digest, Sha512};

    let a = Scalar::from_bytes_mod_order(*blake3::hash(b"secret").as_bytes());
    let public_point = B * a;
    let pk = PublicKey::from_bytes(public_point.compress().as_bytes()).expect("a prime-order key");
    // T: a point of order 8 (the small-order key of speccheck vector 0).
    let t_bytes: [u8; 32] = hex::decode(&cases()[0].1.map(|b| format!("{b:02x}")).concat()).expect("hex").try_into().expect("32");
    let t = CompressedEdwardsY(t_bytes).decompress().expect("a point");
    assert!(t.is_small_order());
    let r = Scalar::from_bytes_mod_order(*blake3::hash(b"nonce").as_bytes());
    let big_r = B * r + t;
    let message = b"torsion";
    let mut h = Sha512::new();
    h.update(big_r.compress().as_bytes());
    h.update(pk.as_bytes());
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.compress().as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    let sig = Signature(sig);

    let single = pk.verify(NO_DOMAIN, message, &sig).is_ok();
    assert!(single, "the cofactored rule accepts a signer's own torsioned R");
    let good = Keypair::from_seed(b"other").sign(NO_DOMAIN, b"x");
    let other = Keypair::from_seed(b"other").public();
    for _ in 0..8 {
        let batch = verify_batch(&[
            BatchItem { key: &pk, domain: NO_DOMAIN, message, signature: &sig },
            BatchItem { key: &other, domain: NO_DOMAIN, message: b"x", signature: &good },
        ]);
        assert_eq!(batch, vec![single, true], "batch agrees with single");
    }
    // Anyone else changing R (even by a torsion point) breaks the signature: no malleability.
    let mut tampered = sig;
    tampered.0[..32].copy_from_slice((big_r + t).compress().as_bytes());
    assert!(pk.verify(NO_DOMAIN, message, &tampered).is_err());
}

/// The API checks a submitted batch's records with `Record::check_all`: every answer, error
/// text included, is what `Record::check` gives record by record.
#[test]
fn a_batch_of_records_is_checked_exactly_as_one_by_one() {
    use plaza_ledger::codec::{Decode, Encode};
    use plaza_ledger::record::{CardId, Payload, Record, RecordBody};
    use plaza_ledger::Hash;

    let alliance = Hash::digest(b"alliance");
    let kp = Keypair::from_seed(b"merchant");
    let card = |n: u8, alliance: Hash| RecordBody { alliance, signer: kp.public(), created_at_ms: 1_000 + u64::from(n), payload: Payload::IssueCard { card: CardId([n; 16]) } };
    let good = |n: u8| Record::sign(card(n, alliance), &kp);
    let mut forged = good(2).to_bytes();
    let at = forged.len() - 1;
    forged[at] ^= 0x01; // the signature's last byte
    let forged = Record::from_bytes(&forged, 1 << 16).expect("still decodes");
    let other_alliance = Record::sign(card(3, Hash::digest(b"another")), &kp);
    let signed_by_another = Record::from_parts(card(4, alliance), Keypair::from_seed(b"someone").sign(b"", b"x"));
    for records in [
        vec![good(0), forged.clone(), other_alliance.clone(), good(1), signed_by_another.clone()],
        vec![forged.clone()],
        vec![good(5)],
        vec![good(6), good(7), good(8)],
        vec![],
    ] {
        let one_by_one: Vec<Result<(), String>> = records.iter().map(|r| r.check(&alliance).map_err(|e| e.to_string())).collect();
        let batched: Vec<Result<(), String>> = Record::check_all(&records, &alliance).into_iter().map(|r| r.map_err(|e| e.to_string())).collect();
        assert_eq!(batched, one_by_one);
    }
    let answers = Record::check_all(&[good(0), forged, other_alliance, signed_by_another], &alliance);
    assert!(answers[0].is_ok());
    assert!(answers[1].is_err() && answers[2].is_err() && answers[3].is_err(), "{answers:?}");
}
