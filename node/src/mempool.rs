//! The mempool: records that passed every stateless check (alliance, fields, signature) and
//! wait for a block.
//!
//! Bounded in total and per merchant; deduplicated by record id; fair between merchants (a
//! block takes records round-robin over signers, each signer's in arrival order); records
//! whose created-at time has left the window around the current block time are dropped,
//! since no block could carry them any more.

use std::collections::{BTreeMap, BTreeSet};

use plaza_ledger::record::{Payload, Record};
use plaza_ledger::{Hash, PublicKey};

/// Why a record was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Already waiting (not an error: submission is idempotent).
    Duplicate,
    Full,
    MerchantFull,
    /// Created too far from the node's clock.
    OutsideWindow,
}

/// A waiting record and where the indexes hold it.
struct Waiting {
    record: Record,
    /// Its place in its signer's queue: the mempool's admission counter when it came.
    arrival: u64,
}

/// Every operation costs a logarithm of the records waiting, not their number: under
/// overload the pool is full (`records_max`), and a removal or an expiry after each block
/// that walked the whole pool made the node slower the more it was offered.
pub struct Mempool {
    records: BTreeMap<Hash, Waiting>,
    /// Each signer's records by arrival.
    queues: BTreeMap<PublicKey, BTreeMap<u64, Hash>>,
    /// Every record by its created-at time, for expiry.
    by_created: BTreeSet<(u64, Hash)>,
    /// Every sale by its signer and order id, then arrival (the API's duplicate-order check).
    orders: BTreeSet<(PublicKey, String, u64)>,
    arrivals: u64,
    records_max: usize,
    per_merchant_max: usize,
    /// Rotates the first signer served, so no merchant is always first.
    cursor: u64,
}

impl Mempool {
    pub fn new(records_max: usize, per_merchant_max: usize) -> Mempool {
        Mempool {
            records: BTreeMap::new(),
            queues: BTreeMap::new(),
            by_created: BTreeSet::new(),
            orders: BTreeSet::new(),
            arrivals: 0,
            records_max,
            per_merchant_max,
            cursor: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    pub fn contains(&self, id: &Hash) -> bool {
        self.records.contains_key(id)
    }
    pub fn get(&self, id: &Hash) -> Option<&Record> {
        self.records.get(id).map(|w| &w.record)
    }
    /// The records one signer has waiting, in arrival order.
    pub fn of_signer<'a>(&'a self, signer: &PublicKey) -> impl Iterator<Item = &'a Record> + 'a {
        self.queues.get(signer).into_iter().flat_map(BTreeMap::values).filter_map(|id| self.get(id))
    }

    /// The first sale to arrive, of those waiting, that `signer` signed with this order id,
    /// other than the record `except`.
    pub fn sale_by_order(&self, signer: &PublicKey, order: &str, except: &Hash) -> Option<&Record> {
        let from = (*signer, order.to_owned(), 0);
        let to = (*signer, order.to_owned(), u64::MAX);
        let queue = self.queues.get(signer)?;
        self.orders.range(from..=to).filter_map(|(_, _, arrival)| queue.get(arrival)).find(|id| *id != except).and_then(|id| self.get(id))
    }

    /// Admits a record that already passed [`Record::check`]. `now_ms` is the node's block
    /// clock and `window_ms` the policy's record time window.
    pub fn insert(&mut self, record: Record, now_ms: u64, window_ms: u64) -> Result<(), Refusal> {
        let id = record.id();
        if self.records.contains_key(&id) {
            return Err(Refusal::Duplicate);
        }
        let created = record.body().created_at_ms;
        if created.abs_diff(now_ms) > window_ms {
            return Err(Refusal::OutsideWindow);
        }
        if self.records.len() >= self.records_max {
            return Err(Refusal::Full);
        }
        let queue = self.queues.entry(*record.signer()).or_default();
        if queue.len() >= self.per_merchant_max {
            return Err(Refusal::MerchantFull);
        }
        let arrival = self.arrivals;
        self.arrivals += 1;
        queue.insert(arrival, id);
        self.by_created.insert((created, id));
        if let Payload::Sale { order, .. } = record.payload() {
            self.orders.insert((*record.signer(), order.clone(), arrival));
        }
        self.records.insert(id, Waiting { record, arrival });
        Ok(())
    }

    /// Up to `max` records for a block, round-robin over signers, skipping `exclude`.
    pub fn select(&mut self, max: usize, exclude: &BTreeSet<Hash>) -> Vec<Record> {
        if self.queues.is_empty() || max == 0 {
            return Vec::new();
        }
        let start = (self.cursor % self.queues.len() as u64) as usize;
        self.cursor = self.cursor.wrapping_add(1);
        // Each signer's queue from its oldest, starting the round at the cursor's signer.
        let mut queues: Vec<_> = self.queues.values().map(BTreeMap::values).collect();
        queues.rotate_left(start);
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            for queue in &mut queues {
                if let Some(id) = queue.find(|id| !exclude.contains(id)) {
                    if let Some(w) = self.records.get(id) {
                        out.push(w.record.clone());
                        progressed = true;
                    }
                }
                if out.len() >= max {
                    return out;
                }
            }
            if !progressed {
                return out;
            }
        }
    }

    /// Drops records (finalized, or refused by the contract).
    pub fn remove(&mut self, ids: &[Hash]) {
        for id in ids {
            self.remove_one(id);
        }
    }

    fn remove_one(&mut self, id: &Hash) {
        let Some(w) = self.records.remove(id) else { return };
        let signer = w.record.signer();
        if let Some(queue) = self.queues.get_mut(signer) {
            queue.remove(&w.arrival);
            if queue.is_empty() {
                self.queues.remove(signer);
            }
        }
        self.by_created.remove(&(w.record.body().created_at_ms, *id));
        if let Payload::Sale { order, .. } = w.record.payload() {
            self.orders.remove(&(*signer, order.clone(), w.arrival));
        }
    }

    /// Drops records created more than `window_ms` before `block_time_ms`. Returns how many.
    pub fn expire(&mut self, block_time_ms: u64, window_ms: u64) -> usize {
        let mut dropped = 0;
        while let Some(&(created, id)) = self.by_created.first() {
            if created.saturating_add(window_ms) >= block_time_ms {
                break;
            }
            self.by_created.pop_first();
            self.remove_one(&id);
            dropped += 1;
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_ledger::record::{CardId, Payload, RecordBody};
    use plaza_ledger::Keypair;

    /// A sale when `n` is odd, its order id one of four (so orders repeat), else a card issue.
    fn record_of_either_kind(key: &Keypair, n: u8, at: u64) -> Record {
        if n % 2 == 0 {
            return record(key, n, at);
        }
        let gross = plaza_ledger::money::Amount::from_cents(100 + u64::from(n)).expect("amount");
        let payload = Payload::Sale {
            order: format!("o{}", n % 8 / 2),
            gross,
            base: gross,
            card: None,
            referral_code: None,
            coupon_codes: Vec::new(),
            points_redeemed: 0,
        };
        Record::sign(RecordBody { alliance: Hash::ZERO, signer: key.public(), created_at_ms: at, payload }, key)
    }

    fn record(key: &Keypair, n: u8, at: u64) -> Record {
        let body = RecordBody {
            alliance: Hash::ZERO,
            signer: key.public(),
            created_at_ms: at,
            payload: Payload::IssueCard { card: CardId([n; 16]) },
        };
        Record::sign(body, key)
    }

    #[test]
    fn dedups_bounds_and_is_fair() {
        let a = Keypair::from_seed(b"a");
        let b = Keypair::from_seed(b"b");
        let mut pool = Mempool::new(100, 3);
        for n in 0..3 {
            pool.insert(record(&a, n, 1000), 1000, 10).expect("room");
        }
        assert_eq!(pool.insert(record(&a, 0, 1000), 1000, 10), Err(Refusal::Duplicate));
        assert_eq!(pool.insert(record(&a, 9, 1000), 1000, 10), Err(Refusal::MerchantFull));
        assert_eq!(pool.insert(record(&b, 9, 5000), 1000, 10), Err(Refusal::OutsideWindow));
        pool.insert(record(&b, 1, 1000), 1000, 10).expect("room");
        let picked = pool.select(2, &BTreeSet::new());
        let signers: BTreeSet<PublicKey> = picked.iter().map(|r| *r.signer()).collect();
        assert_eq!(signers.len(), 2, "one record from each merchant first");
        assert_eq!(pool.expire(2000, 10), 4);
        assert!(pool.is_empty());
    }

    /// The obvious mempool: a list in arrival order, every operation a walk over all of it.
    /// The real one must answer exactly as it does.
    #[derive(Default)]
    struct Model {
        waiting: Vec<Record>,
        cursor: u64,
    }

    impl Model {
        fn insert(&mut self, r: Record, now: u64, window: u64, max: usize, per: usize) -> Result<(), Refusal> {
            if self.waiting.iter().any(|w| w.id() == r.id()) {
                return Err(Refusal::Duplicate);
            }
            if r.body().created_at_ms.abs_diff(now) > window {
                return Err(Refusal::OutsideWindow);
            }
            if self.waiting.len() >= max {
                return Err(Refusal::Full);
            }
            if self.waiting.iter().filter(|w| w.signer() == r.signer()).count() >= per {
                return Err(Refusal::MerchantFull);
            }
            self.waiting.push(r);
            Ok(())
        }
        fn select(&mut self, max: usize, exclude: &BTreeSet<Hash>) -> Vec<Hash> {
            let signers: Vec<PublicKey> = self.waiting.iter().map(|r| *r.signer()).collect::<BTreeSet<_>>().into_iter().collect();
            if signers.is_empty() || max == 0 {
                return Vec::new();
            }
            let start = (self.cursor % signers.len() as u64) as usize;
            self.cursor += 1;
            let mut queues: Vec<Vec<Hash>> = signers
                .iter()
                .map(|s| self.waiting.iter().filter(|r| r.signer() == s && !exclude.contains(&r.id())).map(Record::id).collect())
                .collect();
            queues.rotate_left(start);
            let mut out = Vec::new();
            for round in 0.. {
                let mut progressed = false;
                for q in &queues {
                    if let Some(id) = q.get(round) {
                        out.push(*id);
                        progressed = true;
                    }
                    if out.len() >= max {
                        return out;
                    }
                }
                if !progressed {
                    break;
                }
            }
            out
        }
        fn remove(&mut self, ids: &[Hash]) {
            self.waiting.retain(|r| !ids.contains(&r.id()));
        }
        fn expire(&mut self, time: u64, window: u64) -> usize {
            let before = self.waiting.len();
            self.waiting.retain(|r| r.body().created_at_ms.saturating_add(window) >= time);
            before - self.waiting.len()
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert { signer: usize, n: u8, at: u64 },
        Select { max: usize, exclude_mod: u8 },
        Remove { every: usize },
        Expire { time: u64 },
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (0..3usize, any::<u8>(), 900..1100u64).prop_map(|(signer, n, at)| Op::Insert { signer, n, at }),
            2 => (0..8usize, 0..4u8).prop_map(|(max, exclude_mod)| Op::Select { max, exclude_mod }),
            1 => (1..4usize).prop_map(|every| Op::Remove { every }),
            1 => (950..1200u64).prop_map(|time| Op::Expire { time }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn answers_as_the_obvious_mempool(ops in proptest::collection::vec(op(), 1..120)) {
            let keys = [Keypair::from_seed(b"a"), Keypair::from_seed(b"b"), Keypair::from_seed(b"c")];
            let (max, per, window) = (12, 5, 60);
            let mut pool = Mempool::new(max, per);
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Insert { signer, n, at } => {
                        let r = record_of_either_kind(&keys[signer], n, at);
                        proptest::prop_assert_eq!(pool.insert(r.clone(), 1000, window), model.insert(r, 1000, window, max, per));
                    }
                    Op::Select { max, exclude_mod } => {
                        // Exclude every record whose id's first byte falls in one residue class.
                        let exclude: BTreeSet<Hash> =
                            model.waiting.iter().map(Record::id).filter(|id| exclude_mod > 0 && id.as_bytes()[0] % 4 == exclude_mod).collect();
                        let got: Vec<Hash> = pool.select(max, &exclude).iter().map(Record::id).collect();
                        proptest::prop_assert_eq!(got, model.select(max, &exclude));
                    }
                    Op::Remove { every } => {
                        let ids: Vec<Hash> = model.waiting.iter().step_by(every).map(Record::id).collect();
                        pool.remove(&ids);
                        model.remove(&ids);
                    }
                    Op::Expire { time } => proptest::prop_assert_eq!(pool.expire(time, window), model.expire(time, window)),
                }
                proptest::prop_assert_eq!(pool.len(), model.waiting.len());
                for key in &keys {
                    let got: Vec<Hash> = pool.of_signer(&key.public()).map(Record::id).collect();
                    let want: Vec<Hash> = model.waiting.iter().filter(|r| *r.signer() == key.public()).map(Record::id).collect();
                    proptest::prop_assert_eq!(&got, &want);
                    // The duplicate-order lookup, for each order id and either exception.
                    for order in ["o0", "o1", "o2", "o3"] {
                        for except in [Hash::ZERO, want.first().copied().unwrap_or(Hash::ZERO)] {
                            let found = pool.sale_by_order(&key.public(), order, &except).map(Record::id);
                            let expected = model
                                .waiting
                                .iter()
                                .filter(|r| *r.signer() == key.public() && r.id() != except)
                                .find(|r| matches!(r.payload(), Payload::Sale { order: o, .. } if o == order))
                                .map(Record::id);
                            proptest::prop_assert_eq!(found, expected);
                        }
                    }
                }
            }
        }
    }
}
