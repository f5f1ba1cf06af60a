//! A deterministic chain builder for tests and benchmarks: no node, no consensus.
//!
//! Members and validators are derived from seeds; every block is executed through the
//! settlement contract (so receipts, statements and state roots are the real ones) and
//! finalized by a certificate signed by every validator of the set in force (its own, or a
//! descendant's with [`finalize_through`]). The same arguments always give the same chain,
//! byte for byte.

use std::collections::BTreeMap;

use crate::audit::BlockEntry;
use crate::block::{Block, BlockHeader, EpochEnd, FinalizedBlock};
use crate::cert::{Certificate, Validator, ValidatorSet, VoteTarget};
use crate::contract::{InvalidBlock, State};
use crate::genesis::{Genesis, Named};
use crate::hash::Hash;
use crate::keys::{Keypair, PublicKey};
use crate::money::Amount;
use crate::policy::Policy;
use crate::record::{CardId, MerchantProfile, Payload, Record, RecordBody};

/// 2026-11-23 00:00 at UTC+8: period 0 is that local day.
pub const GENESIS_TIME_MS: u64 = 1_795_363_200_000;
const CATEGORIES: [&str; 4] = ["education", "fitness", "grocery", "restaurant"];

/// The merchant key of member `i` (also its validator key when it validates).
pub fn member_key(i: usize) -> Keypair {
    Keypair::from_seed(format!("plaza-audit/member/{i}").as_bytes())
}
fn network_key(i: usize) -> Keypair {
    Keypair::from_seed(format!("plaza-audit/network/{i}").as_bytes())
}

/// Builds a chain block by block.
pub struct ChainBuilder {
    genesis: Genesis,
    alliance: Hash,
    /// Member keys by public key (the validators are among them).
    keys: BTreeMap<PublicKey, Keypair>,
    members: Vec<PublicKey>,
    state: State,
    parent: Hash,
    height: u64,
    /// The view of the last block built (views skipped by [`ChainBuilder::skip_views`] stay empty).
    view: u64,
    /// The epoch of the next block (views start again after an epoch-ending block).
    epoch: u64,
    time_ms: u64,
    next_order: u64,
}

impl ChainBuilder {
    /// An alliance of `members` merchants whose first `validators` (in seed order) validate.
    pub fn new(members: usize, validators: usize) -> ChainBuilder {
        assert!(validators >= 1 && validators <= members, "1 ≤ validators ≤ members");
        let mut profiles = Vec::new();
        let mut keys = BTreeMap::new();
        let mut order = Vec::new();
        let mut set = Vec::new();
        for i in 0..members {
            let key = member_key(i);
            let net = network_key(i).public();
            profiles.push(MerchantProfile {
                key: key.public(),
                name: format!("merchant-{i}"),
                category: CATEGORIES[i % CATEGORIES.len()].to_owned(),
                district: "riverside".to_owned(),
                latitude_e6: 31_230_416,
                longitude_e6: 121_473_701,
                network_key: Some(net),
            });
            if i < validators {
                set.push(Validator { key: key.public(), network_key: net });
            }
            order.push(key.public());
            keys.insert(key.public(), key);
        }
        profiles.sort_by_key(|p| p.key);
        let genesis = Genesis {
            name: "Audit Test Alliance".into(),
            currency: "CNY".into(),
            utc_offset_minutes: 480,
            time_ms: GENESIS_TIME_MS,
            categories: CATEGORIES.iter().map(|c| Named { code: (*c).into(), name: (*c).into() }).collect(),
            districts: vec![Named { code: "riverside".into(), name: "Riverside".into() }],
            members: profiles,
            validators: ValidatorSet::new(set).expect("seeded validator keys are distinct"),
            policy: Policy::default_v1(GENESIS_TIME_MS),
            promoters: Vec::new(),
        };
        let alliance = genesis.alliance_id();
        let state = State::from_genesis(&genesis);
        ChainBuilder { genesis, alliance, keys, members: order, state, parent: alliance, height: 0, view: 0, epoch: 0, time_ms: GENESIS_TIME_MS, next_order: 0 }
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    pub fn alliance(&self) -> Hash {
        self.alliance
    }
    /// The public key of member `i` (seed order).
    pub fn member(&self, i: usize) -> PublicKey {
        self.members[i]
    }
    pub fn members(&self) -> usize {
        self.members.len()
    }
    /// The state after the last block built.
    pub fn state(&self) -> &State {
        &self.state
    }
    /// The time the next block will carry.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }
    /// Moves block time forward (e.g. past a period boundary).
    pub fn advance(&mut self, ms: u64) {
        self.time_ms += ms;
    }

    /// A record signed by member `i`, created at the next block's time.
    pub fn record(&self, i: usize, payload: Payload) -> Record {
        let key = &self.keys[&self.members[i]];
        Record::sign(RecordBody { alliance: self.alliance, signer: key.public(), created_at_ms: self.time_ms, payload }, key)
    }

    /// `n` sales spread over the members: every tenth with a card issued by the seller's
    /// neighbour (so home-merchant shares and points reach the statements), each with a fresh
    /// order id. Cards are issued on first use, in the same block.
    pub fn sales(&mut self, n: usize) -> Vec<Record> {
        let mut records = Vec::with_capacity(n + n / 10 + 1);
        for _ in 0..n {
            let k = self.next_order;
            self.next_order += 1;
            let seller = (k as usize) % self.members.len();
            let cents = 1_000 + (k % 50_000);
            let amount = Amount::from_cents(cents).expect("small amounts are valid");
            let card = if k.is_multiple_of(10) {
                // One card per sale: far from the per-hour sales limit (S11).
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&k.to_be_bytes());
                let card = CardId(id);
                let home = (seller + 1) % self.members.len();
                records.push(self.record(home, Payload::IssueCard { card }));
                Some(card)
            } else {
                None
            };
            records.push(self.record(
                seller,
                Payload::Sale {
                    order: format!("order-{k}"),
                    gross: amount,
                    base: amount,
                    card,
                    referral_code: None,
                    coupon_codes: Vec::new(),
                    points_redeemed: 0,
                },
            ));
        }
        records
    }

    /// Leaves `n` views without a block (as nullified views would), so views and heights differ.
    pub fn skip_views(&mut self, n: u64) {
        self.view += n;
    }

    /// Executes `records` as the next block, finalizes it with a certificate of every
    /// validator in force, and returns it with its receipts and statement.
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, records: Vec<Record>) -> Result<BlockEntry, InvalidBlock> {
        let set = self.state.validator_set().clone();
        let outcome = self.state.apply_block(self.time_ms, &records)?;
        self.height += 1;
        self.view += 1;
        let view = self.view;
        let epoch = self.epoch;
        let next_validator_set_hash = crate::execute::next_validator_set_hash(set.hash(), &self.state);
        let header = BlockHeader {
            height: self.height,
            epoch,
            view,
            parent: self.parent,
            time_ms: self.time_ms,
            proposer: set.validators()[(view % set.len() as u64) as usize].key,
            records_root: Block::compute_records_root(&records),
            receipts_root: Block::compute_receipts_root(&outcome.receipts),
            state_root: outcome.state_root,
            validator_set_hash: set.hash(),
            statement_hash: outcome.statement.as_ref().map(|s| s.hash()),
            next_validator_set_hash,
        };
        let block = Block { header, records };
        let certificate = self.certify(&set, VoteTarget::finalize(epoch, view, block.id()));
        self.parent = block.id();
        self.time_ms += 1;
        let epoch_end = next_validator_set_hash.map(|_| {
            // The next block is the first of the next epoch, whose views start again.
            self.epoch += 1;
            self.view = 0;
            EpochEnd { next_validators: self.state.validator_set().clone(), suffix: Vec::new() }
        });
        Ok(BlockEntry { block: FinalizedBlock { block, certificate, epoch_end }, receipts: outcome.receipts, statement: outcome.statement })
    }

    /// A certificate on `target` signed by every validator of `set` whose key this builder holds.
    pub fn certify(&self, set: &ValidatorSet, target: VoteTarget) -> Certificate {
        let votes = set.validators().iter().filter_map(|v| self.keys.get(&v.key)).map(|k| target.sign(&self.alliance, k));
        Certificate::from_votes(target, votes)
    }

    /// The network key member `i` was given (for governance records adding validators).
    pub fn network_key(&self, i: usize) -> PublicKey {
        network_key(i).public()
    }

    /// Signs with member `i`'s key (for tests that forge things).
    pub fn keypair(&self, i: usize) -> &Keypair {
        &self.keys[&self.members[i]]
    }
}

/// Makes every block of `blocks` final through the last one, as consensus does when the last
/// block's finalize certificate arrives before the others': each carries the last block's
/// certificate. (The blocks must be of one epoch.)
pub fn finalize_through(blocks: &mut [BlockEntry]) {
    if let Some(last) = blocks.last() {
        let certificate = last.block.certificate.clone();
        for entry in blocks.iter_mut() {
            entry.block.certificate = certificate.clone();
        }
    }
}

impl ChainBuilder {
    /// Makes `blocks` (the last of which ends its epoch) final through suffix blocks at
    /// `views` above the last one, as consensus does when the epoch-ending block is not
    /// finalized in its own view (docs/CONSENSUS.md, "Epochs"): the last block carries the
    /// views, and every block the last suffix block's certificate, signed by the old set.
    pub fn finalize_through_suffix(&self, blocks: &mut [BlockEntry], views: &[u64], set: &ValidatorSet) {
        let Some(last) = blocks.last_mut() else { return };
        let header = last.block.block.header.clone();
        let end = last.block.epoch_end.as_mut().expect("the last block ends its epoch");
        end.suffix = views.to_vec();
        let target = crate::cert::suffix_target(&self.alliance, header.epoch, header.id(), header.height, views);
        let view = views.last().copied().unwrap_or(header.view);
        let certificate = self.certify(set, VoteTarget::finalize(header.epoch, view, target));
        for entry in blocks.iter_mut() {
            entry.block.certificate = certificate.clone();
        }
    }
}
