//! Every party with money on the ledger (S8, S10, S12), interned as a small integer so the hot
//! paths (items, period close) index vectors instead of searching maps keyed by `Party`.
//!
//! The integers are assigned in first-touch order and never reach output: the snapshot, the
//! state root and every query see the parties sorted by `Party`, exactly as the `balances`
//! table (tag 14) of docs/FORMAT.md defines them.

use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::record::Party;

use super::types::Balance;

/// A party's index in [`Accounts`].
pub(crate) type PartyId = u32;

#[derive(Clone, Debug, Default)]
pub(crate) struct Accounts {
    parties: Vec<Party>,
    balances: Vec<Balance>,
    index: BTreeMap<Party, PartyId>,
    /// Touched since the last root (flag per party, and the list of flagged parties).
    touched: Vec<bool>,
    touched_list: Vec<PartyId>,
}

impl Accounts {
    pub fn len(&self) -> usize {
        self.parties.len()
    }
    pub fn id(&self, party: &Party) -> Option<PartyId> {
        self.index.get(party).copied()
    }
    pub fn party(&self, id: PartyId) -> &Party {
        &self.parties[id as usize]
    }
    pub fn get(&self, party: &Party) -> Option<&Balance> {
        self.id(party).map(|id| &self.balances[id as usize])
    }

    /// The party's id, opening a zero balance (a change for the root) on first touch.
    pub fn open(&mut self, party: &Party) -> PartyId {
        if let Some(id) = self.id(party) {
            return id;
        }
        let id = PartyId::try_from(self.parties.len()).expect("fewer than 2^32 parties");
        self.parties.push(party.clone());
        self.balances.push(Balance::default());
        self.touched.push(false);
        self.index.insert(party.clone(), id);
        self.touch(id);
        id
    }

    /// Marks the balance changed: call only when about to change it.
    pub fn balance_mut(&mut self, id: PartyId) -> &mut Balance {
        self.touch(id);
        &mut self.balances[id as usize]
    }

    fn touch(&mut self, id: PartyId) {
        let flag = &mut self.touched[id as usize];
        if !*flag {
            *flag = true;
            self.touched_list.push(id);
        }
    }

    /// Sorted by party.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&Party, &Balance)> {
        self.index.iter().map(|(p, id)| (p, &self.balances[*id as usize]))
    }

    /// Same bytes as `Table::hash_changes` over a `Table<Party, Balance>`: touched parties in
    /// party order (a balance is never removed).
    pub fn hash_changes(&mut self, tag: u8, hasher: &mut blake3::Hasher) {
        let mut touched = std::mem::take(&mut self.touched_list);
        for id in &touched {
            self.touched[*id as usize] = false;
        }
        touched.sort_unstable_by(|a, b| self.parties[*a as usize].cmp(&self.parties[*b as usize]));
        let mut w = Writer::new();
        for id in touched {
            w.u8(tag);
            self.parties[id as usize].encode(&mut w);
            w.u8(1);
            w.sized(|w| self.balances[id as usize].encode(w));
        }
        hasher.update(&w.into_bytes());
    }

    pub fn decode_accounts(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.len("balances", u32::MAX as usize)?;
        let mut accounts = Accounts::default();
        for _ in 0..len {
            let party = Party::decode(r)?;
            if accounts.parties.last().is_some_and(|last| *last >= party) {
                return Err(DecodeError::invalid("balances", "keys must be sorted and distinct"));
            }
            let balance = Balance::decode(r)?;
            let id = accounts.open(&party);
            accounts.balances[id as usize] = balance;
        }
        accounts.touched_list.clear();
        accounts.touched.iter_mut().for_each(|t| *t = false);
        Ok(accounts)
    }
}

/// The snapshot encoding of the `balances` table: `u32 n ‖ (Party ‖ Balance)×n`, sorted.
impl Encode for Accounts {
    fn encode(&self, w: &mut Writer) {
        w.u32(u32::try_from(self.parties.len()).expect("fewer than 2^32 parties"));
        for (party, balance) in self.iter() {
            party.encode(w);
            balance.encode(w);
        }
    }
}
