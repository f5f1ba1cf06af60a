//! The state machine through its public surface: encodings, restarts, bad input.

use plaza_consensus::{Config, Consensus, ConsensusError, Input, Message, Output, Proposal, Request, Restart};
use plaza_ledger::cert::{Certificate, Validator, ValidatorSet, Vote, VoteKind, VoteTarget};
use plaza_ledger::codec::Encode;
use plaza_ledger::{Hash, Keypair};
use proptest::prelude::*;

fn keys(n: usize) -> (Vec<Keypair>, ValidatorSet) {
    let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(format!("core-v{i}").as_bytes())).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| Validator { key: k.public(), network_key: Keypair::from_seed(format!("core-n{i}").as_bytes()).public() })
            .collect(),
    )
    .expect("distinct keys");
    let mut sorted = keys;
    sorted.sort_by_key(|k| k.public());
    (sorted, set)
}

fn alliance() -> Hash {
    Hash::digest(b"core alliance")
}

fn copy(key: &Keypair) -> Keypair {
    Keypair::from_secret(&key.secret_bytes()).expect("an existing key")
}

fn proposal(leader: &Keypair, view: u64, payload: &[u8]) -> Proposal {
    let block = Hash::digest_parts(&[&view.to_be_bytes(), payload]);
    let signature = VoteTarget::notarize(0, view, block).sign(&alliance(), leader).signature;
    Proposal { view, parent_view: 0, parent: alliance(), height: 1, block, payload: payload.to_vec(), signature }
}

/// Feeds inputs, answering the application's requests with "valid"; returns every output.
fn feed(consensus: &mut Consensus, inputs: Vec<Input>) -> Vec<Output> {
    let mut all = Vec::new();
    let mut queue: std::collections::VecDeque<Input> = inputs.into();
    while let Some(input) = queue.pop_front() {
        for output in consensus.handle(1_000, input) {
            if let Output::Verify { block, .. } = &output {
                queue.push_back(Input::Verdict { block: *block, valid: true, ends_epoch: false });
            }
            all.push(output);
        }
    }
    all
}

fn persisted(outputs: &[Output]) -> Vec<Vote> {
    outputs.iter().filter_map(|o| if let Output::Persist(v) = o { Some(*v) } else { None }).collect()
}

#[test]
fn messages_round_trip() {
    let (keys, _) = keys(4);
    let vote = VoteTarget::nullify(0, 7).sign(&alliance(), &keys[0]);
    let cert = Certificate::from_votes(vote.target, keys.iter().map(|k| vote.target.sign(&alliance(), k)));
    for message in [
        Message::Proposal(proposal(&keys[1], 1, b"block")),
        Message::Vote(vote),
        Message::Certificate(cert),
        Message::Request(Request::Block(Hash::digest(b"x"))),
        Message::Request(Request::Certificates { from_view: 3, to_view: 9 }),
    ] {
        assert_eq!(Message::decode_bytes(&message.to_bytes()), Ok(message.clone()));
        let mut longer = message.to_bytes();
        longer.push(0);
        assert!(Message::decode_bytes(&longer).is_err(), "trailing bytes are rejected");
    }
    let bad_range = Message::Request(Request::Certificates { from_view: 9, to_view: 3 }).to_bytes();
    assert!(Message::decode_bytes(&bad_range).is_err());
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::decode_bytes(&bytes);
    }
}

#[test]
fn a_restarted_validator_never_signs_a_second_notarize_in_one_view() {
    let (keys, set) = keys(4);
    // View 1's leader is validators[1].
    let leader = &keys[1];
    let from = leader.public();
    let mut first = Consensus::new(Config::default(), copy(&keys[0]), set.clone(), alliance(), 0, Restart::default()).expect("validator");
    let outputs = feed(&mut first, vec![Input::Start, Input::Message { from, message: Message::Proposal(proposal(leader, 1, b"a")) }]);
    let log = persisted(&outputs);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].target.kind, VoteKind::Notarize);

    let restart = Restart { votes: log.clone(), finalized: None, ..Restart::default() };
    let mut restarted = Consensus::new(Config::default(), copy(&keys[0]), set, alliance(), 0, restart).expect("validator");
    let outputs = feed(&mut restarted, vec![Input::Start, Input::Message { from, message: Message::Proposal(proposal(leader, 1, b"b")) }]);
    assert!(persisted(&outputs).is_empty(), "no second vote in view 1: {outputs:?}");
    assert!(outputs.contains(&Output::Broadcast(Message::Vote(log[0]))), "the logged vote is re-sent");
    // The view timer still nullifies view 1 (nullify after notarize is allowed).
    let outputs = restarted.handle(1_000_000, Input::Timeout);
    assert_eq!(persisted(&outputs).iter().map(|v| v.target).collect::<Vec<_>>(), vec![VoteTarget::nullify(0, 1)]);
}

#[test]
fn a_notarized_block_is_persisted_before_the_vote_and_survives_a_restart() {
    let (keys, set) = keys(4);
    let leader = &keys[1];
    let from = leader.public();
    let block = proposal(leader, 1, b"a");
    let mut first = Consensus::new(Config::default(), copy(&keys[0]), set.clone(), alliance(), 0, Restart::default()).expect("validator");
    let outputs = feed(&mut first, vec![Input::Start, Input::Message { from, message: Message::Proposal(block.clone()) }]);
    let position = |wanted: &dyn Fn(&Output) -> bool| outputs.iter().position(wanted);
    let stored = position(&|o| *o == Output::PersistProposal(block.clone())).expect("the proposal is persisted");
    let voted = position(&|o| matches!(o, Output::Persist(v) if v.target == VoteTarget::notarize(0, 1, block.block))).expect("a notarize vote");
    let sent = position(&|o| matches!(o, Output::Broadcast(Message::Vote(v)) if v.target.kind == VoteKind::Notarize)).expect("the vote is sent");
    assert!(stored < voted && voted < sent, "block, then vote, then message: {outputs:?}");

    // Restarted from its logs only, the validator verifies the block again and serves it.
    let restart = Restart { votes: persisted(&outputs), proposals: vec![block.clone()], ..Restart::default() };
    let mut restarted = Consensus::new(Config::default(), copy(&keys[0]), set.clone(), alliance(), 0, restart).expect("validator");
    let outputs = restarted.handle(1_000, Input::Start);
    assert!(outputs.iter().any(|o| matches!(o, Output::Verify { block: b, .. } if *b == block.block)), "{outputs:?}");
    let asker = keys[2].public();
    let outputs = restarted.handle(1_000, Input::Message { from: asker, message: Message::Request(Request::Block(block.block)) });
    assert_eq!(outputs, vec![Output::Send { to: asker, message: Message::Proposal(block.clone()) }]);
    // With the leader's vote inside it, a stuck validator re-sends that vote beside its own:
    // a peer that missed the proposal may need exactly it for the notarization.
    let outputs = restarted.handle(1_000_000, Input::Timeout);
    let leader_vote = Vote { target: VoteTarget::notarize(0, 1, block.block), signer: from, signature: block.signature };
    assert!(outputs.contains(&Output::Broadcast(Message::Vote(leader_vote))), "{outputs:?}");

    // A logged proposal that its view's leader did not sign is refused.
    let forged = Proposal { signature: VoteTarget::notarize(0, 1, block.block).sign(&alliance(), &keys[3]).signature, ..block };
    let restart = Restart { proposals: vec![forged], ..Restart::default() };
    assert!(matches!(
        Consensus::new(Config::default(), copy(&keys[0]), set, alliance(), 0, restart),
        Err(ConsensusError::ForeignProposal(1))
    ));
}

#[test]
fn the_notarization_behind_a_finalize_vote_is_persisted_first_and_restored() {
    let (keys, set) = keys(4);
    let leader = &keys[1];
    let block = proposal(leader, 1, b"a");
    let mut first = Consensus::new(Config::default(), copy(&keys[0]), set.clone(), alliance(), 0, Restart::default()).expect("validator");
    let third = VoteTarget::notarize(0, 1, block.block).sign(&alliance(), &keys[2]);
    let outputs = feed(
        &mut first,
        vec![
            Input::Start,
            Input::Message { from: leader.public(), message: Message::Proposal(block.clone()) },
            Input::Message { from: keys[2].public(), message: Message::Vote(third) },
        ],
    );
    let cert = outputs
        .iter()
        .find_map(|o| if let Output::PersistCertificate(c) = o { Some(c.clone()) } else { None })
        .expect("the notarization is persisted");
    assert_eq!(cert.target, VoteTarget::notarize(0, 1, block.block));
    let stored = outputs.iter().position(|o| matches!(o, Output::PersistCertificate(_))).expect("persisted");
    let finalize = outputs.iter().position(|o| matches!(o, Output::Persist(v) if v.target.kind == VoteKind::Finalize)).expect("a finalize vote");
    assert!(stored < finalize, "{outputs:?}");
    assert_eq!(first.view(), 2);

    // Restarted from its logs, it is in view 2 again and shows peers the notarization.
    let restart = Restart { votes: persisted(&outputs), proposals: vec![block.clone()], certificates: vec![cert.clone()], finalized: None };
    let mut restarted = Consensus::new(Config::default(), copy(&keys[0]), set.clone(), alliance(), 0, restart).expect("validator");
    assert_eq!(restarted.view(), 2);
    let outputs = restarted.handle(1_000, Input::Start);
    assert!(outputs.contains(&Output::Broadcast(Message::Certificate(cert.clone()))), "{outputs:?}");

    // A logged certificate that does not verify is refused.
    let mut broken = cert;
    broken.signatures.pop();
    let restart = Restart { certificates: vec![broken], ..Restart::default() };
    assert!(matches!(
        Consensus::new(Config::default(), copy(&keys[0]), set, alliance(), 0, restart),
        Err(ConsensusError::InvalidCertificate(1))
    ));
}

#[test]
fn a_stuck_validator_asks_every_peer_for_the_certificate_it_lacks() {
    let (keys, set) = keys(4);
    let mut consensus = Consensus::new(Config::default(), copy(&keys[0]), set, alliance(), 0, Restart::default()).expect("validator");
    // View 2 was nullified; we never saw what happened in view 1.
    let target = VoteTarget::nullify(0, 2);
    let cert = Certificate::from_votes(target, keys[1..].iter().map(|k| target.sign(&alliance(), k)));
    let outputs = feed(&mut consensus, vec![Input::Start, Input::Message { from: keys[1].public(), message: Message::Certificate(cert) }]);
    assert_eq!(consensus.view(), 3);
    let ask = Output::Broadcast(Message::Request(Request::Certificates { from_view: 1, to_view: 1 }));
    assert!(!outputs.contains(&ask), "not before we are stuck");
    let outputs = consensus.handle(1_000_000, Input::Timeout);
    assert!(outputs.contains(&ask), "{outputs:?}");
}

#[test]
fn bad_input_is_refused() {
    let (keys, set) = keys(4);
    let outsider = Keypair::from_seed(b"outsider");
    assert!(matches!(
        Consensus::new(Config::default(), outsider, set.clone(), alliance(), 0, Restart::default()),
        Err(ConsensusError::NotAValidator)
    ));
    let foreign = VoteTarget::nullify(0, 1).sign(&alliance(), &keys[2]);
    assert!(matches!(
        Consensus::new(Config::default(), copy(&keys[0]), set.clone(), alliance(), 0, Restart { votes: vec![foreign], ..Restart::default() }),
        Err(ConsensusError::ForeignVote(1))
    ));
    // A proposal signed by someone other than the view's leader is ignored.
    let mut consensus = Consensus::new(Config::default(), copy(&keys[0]), set, alliance(), 0, Restart::default()).expect("validator");
    let message = Message::Proposal(proposal(&keys[2], 1, b"x"));
    let outputs = feed(&mut consensus, vec![Input::Start, Input::Message { from: keys[2].public(), message }]);
    assert!(persisted(&outputs).is_empty() && !outputs.iter().any(|o| matches!(o, Output::Verify { .. })));
}

#[cfg(not(feature = "inject-bugs"))]
#[test]
fn bugs_cannot_be_injected_without_the_feature() {
    let (keys, set) = keys(4);
    let bugs = plaza_consensus::InjectedBugs { quorum_too_small: true, ..Default::default() };
    let config = Config { injected_bugs: bugs, ..Config::default() };
    assert!(matches!(
        Consensus::new(config, copy(&keys[0]), set, alliance(), 0, Restart::default()),
        Err(ConsensusError::BugsNotEnabled)
    ));
}
