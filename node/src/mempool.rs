//! The mempool: records that passed every stateless check (alliance, fields, signature) and
//! wait for a block.
//!
//! Bounded in total and per merchant; deduplicated by record id; fair between merchants (a
//! block takes records round-robin over signers, each signer's in arrival order); records
//! whose created-at time has left the window around the current block time are dropped,
//! since no block could carry them any more.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use plaza_ledger::record::Record;
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

pub struct Mempool {
    records: BTreeMap<Hash, Record>,
    queues: BTreeMap<PublicKey, VecDeque<Hash>>,
    records_max: usize,
    per_merchant_max: usize,
    /// Rotates the first signer served, so no merchant is always first.
    cursor: u64,
}

impl Mempool {
    pub fn new(records_max: usize, per_merchant_max: usize) -> Mempool {
        Mempool { records: BTreeMap::new(), queues: BTreeMap::new(), records_max, per_merchant_max, cursor: 0 }
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
        self.records.get(id)
    }
    /// The records one signer has waiting, in arrival order.
    pub fn of_signer<'a>(&'a self, signer: &PublicKey) -> impl Iterator<Item = &'a Record> + 'a {
        self.queues.get(signer).into_iter().flatten().filter_map(|id| self.records.get(id))
    }

    /// Admits a record that already passed [`Record::check`]. `now_ms` is the node's block
    /// clock and `window_ms` the policy's record time window.
    pub fn insert(&mut self, record: Record, now_ms: u64, window_ms: u64) -> Result<(), Refusal> {
        let id = record.id();
        if self.records.contains_key(&id) {
            return Err(Refusal::Duplicate);
        }
        if record.body().created_at_ms.abs_diff(now_ms) > window_ms {
            return Err(Refusal::OutsideWindow);
        }
        if self.records.len() >= self.records_max {
            return Err(Refusal::Full);
        }
        let signer = *record.signer();
        let queue = self.queues.entry(signer).or_default();
        if queue.len() >= self.per_merchant_max {
            return Err(Refusal::MerchantFull);
        }
        queue.push_back(id);
        self.records.insert(id, record);
        Ok(())
    }

    /// Up to `max` records for a block, round-robin over signers, skipping `exclude`.
    pub fn select(&mut self, max: usize, exclude: &BTreeSet<Hash>) -> Vec<Record> {
        let signers: Vec<PublicKey> = self.queues.keys().copied().collect();
        if signers.is_empty() {
            return Vec::new();
        }
        let start = (self.cursor % signers.len() as u64) as usize;
        self.cursor = self.cursor.wrapping_add(1);
        let mut positions = vec![0usize; signers.len()];
        let mut out = Vec::new();
        loop {
            let mut progressed = false;
            for k in 0..signers.len() {
                let s = (start + k) % signers.len();
                let Some(queue) = self.queues.get(&signers[s]) else { continue };
                while positions[s] < queue.len() {
                    let id = queue[positions[s]];
                    positions[s] += 1;
                    if exclude.contains(&id) {
                        continue;
                    }
                    if let Some(r) = self.records.get(&id) {
                        out.push(r.clone());
                        progressed = true;
                        break;
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
        let mut touched = BTreeSet::new();
        for id in ids {
            if let Some(r) = self.records.remove(id) {
                touched.insert(*r.signer());
            }
        }
        for signer in touched {
            if let Some(queue) = self.queues.get_mut(&signer) {
                queue.retain(|id| self.records.contains_key(id));
                if queue.is_empty() {
                    self.queues.remove(&signer);
                }
            }
        }
    }

    /// Drops records created more than `window_ms` before `block_time_ms`. Returns how many.
    pub fn expire(&mut self, block_time_ms: u64, window_ms: u64) -> usize {
        let stale: Vec<Hash> = self
            .records
            .iter()
            .filter(|(_, r)| r.body().created_at_ms.saturating_add(window_ms) < block_time_ms)
            .map(|(id, _)| *id)
            .collect();
        self.remove(&stale);
        stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plaza_ledger::record::{CardId, Payload, RecordBody};
    use plaza_ledger::Keypair;

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
}
