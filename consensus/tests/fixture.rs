//! The pinned encodings of consensus messages (docs/CONSENSUS.md, docs/FORMAT.md §6): a change
//! to any wire format fails here. Re-pin on purpose with
//! `PLAZA_UPDATE_FIXTURE=1 cargo test -p plaza-consensus --test fixture`.

use plaza_consensus::{Message, Proposal, Request, MESSAGE_BYTES_MAX};
use plaza_ledger::cert::{Certificate, VoteTarget};
use plaza_ledger::codec::{Decode, Encode};
use plaza_ledger::{Hash, Keypair};

fn samples() -> Vec<(&'static str, Message)> {
    let alliance = Hash::digest(b"fixture alliance");
    let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(format!("validator {i}").as_bytes())).collect();
    let block = Hash::digest(b"block 7");
    let notarize = VoteTarget::notarize(0, 7, block);
    let leader_vote = notarize.sign(&alliance, &keys[0]);
    let proposal = Proposal {
        view: 7,
        parent_view: 5,
        parent: Hash::digest(b"block 5"),
        height: 4,
        block,
        payload: b"opaque block bytes".to_vec(),
        signature: leader_vote.signature,
    };
    let finalize = VoteTarget::finalize(0, 7, block);
    vec![
        ("proposal", Message::Proposal(proposal)),
        ("vote-notarize", Message::Vote(leader_vote)),
        ("vote-nullify", Message::Vote(VoteTarget::nullify(0, 8).sign(&alliance, &keys[1]))),
        ("certificate-finalize", Message::Certificate(Certificate::from_votes(finalize, keys[..3].iter().map(|k| finalize.sign(&alliance, k))))),
        ("request-block", Message::Request(Request::Block(block))),
        ("request-certificates", Message::Request(Request::Certificates { from_view: 3, to_view: 9 })),
    ]
}

#[test]
fn messages_round_trip_and_match_the_pinned_fixture() {
    let mut lines = Vec::new();
    for (name, message) in samples() {
        let bytes = message.to_bytes();
        assert_eq!(Message::from_bytes(&bytes, MESSAGE_BYTES_MAX).as_ref(), Ok(&message), "{name} round-trips");
        lines.push(format!("{name} {} {}", Hash::digest(&bytes).to_hex(), hex::encode(&bytes)));
    }
    let actual = lines.join("\n") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/messages.txt");
    if std::env::var_os("PLAZA_UPDATE_FIXTURE").is_some() {
        std::fs::write(&path, &actual).expect("write fixture");
    }
    let expected = std::fs::read_to_string(&path).expect("tests/fixtures/messages.txt exists");
    for (a, e) in actual.lines().zip(expected.lines()) {
        let name = a.split(' ').next().unwrap_or("");
        assert_eq!(a, e, "the encoding of {name} changed: if intended, update the docs and re-pin");
    }
    assert_eq!(actual.lines().count(), expected.lines().count());
}
