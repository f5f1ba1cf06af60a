//! Every party with money on the ledger (S8, S10, S12), interned as a small integer so the hot
//! paths (items, period close) index vectors instead of searching maps keyed by `Party`.
//!
//! The integers are assigned in first-touch order and never reach output: the snapshot, the
//! state root and every query see the parties sorted by `Party`, exactly as the `balances`
//! table (tag 14) of docs/FORMAT.md defines them.

use std::collections::BTreeMap;

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::record::Party;

use super::table::{leaf_of, Leaves, NO_SLOT};
use super::tree::{SlotTree, EMPTY};
use super::types::Balance;
use crate::hash::Hash;
use crate::merkle::InclusionProof;

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
    /// Each party's slot in the tree (`NO_SLOT` until its block ends).
    slots: Vec<u64>,
    tree: SlotTree,
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
        self.slots.push(NO_SLOT);
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

    /// Writes the leaves of the touched balances (new parties take the next slots, in party
    /// order) and returns the table's root. A balance is never removed.
    pub fn commit(&mut self, buffer: &mut Writer) -> Hash {
        let mut touched = std::mem::take(&mut self.touched_list);
        for id in &touched {
            self.touched[*id as usize] = false;
        }
        touched.sort_unstable_by(|a, b| self.parties[*a as usize].cmp(&self.parties[*b as usize]));
        let mut leaves = Leaves::new(&mut self.tree, buffer);
        for id in &touched {
            let i = *id as usize;
            let (party, balance) = (&self.parties[i], &self.balances[i]);
            leaves.queue(&mut self.slots[i], |w| {
                party.encode(w);
                balance.encode(w);
            });
        }
        leaves.write();
        touched.clear();
        self.touched_list = touched;
        self.tree.root()
    }

    /// The encoded key and value of a party's balance and its leaf's path (committed tree).
    pub fn prove(&self, party: &Party) -> Option<(Vec<u8>, Vec<u8>, InclusionProof)> {
        let i = self.id(party)? as usize;
        let path = self.tree.prove(self.slots[i])?;
        Some((party.to_bytes(), self.balances[i].to_bytes(), path))
    }

    /// `u64 slots ‖ u32 n ‖ (Party ‖ Balance ‖ u64 slot)×n`, sorted; the slots are exactly
    /// 0 … n−1.
    pub fn decode_accounts(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let slots = r.u64()?;
        let len = r.len("balances", u32::MAX as usize)?;
        if slots != len as u64 {
            return Err(DecodeError::invalid("balances", "a table's slots are exactly its entries"));
        }
        let mut accounts = Accounts::default();
        let mut leaves = vec![EMPTY; len.min(r.remaining())];
        let mut buffer = Writer::new();
        for _ in 0..len {
            let party = Party::decode(r)?;
            if accounts.parties.last().is_some_and(|last| *last >= party) {
                return Err(DecodeError::invalid("balances", "keys must be sorted and distinct"));
            }
            let balance = Balance::decode(r)?;
            let slot = r.u64()?;
            let Some(at) = leaves.get_mut(usize::try_from(slot).unwrap_or(usize::MAX)).filter(|l| **l == EMPTY) else {
                return Err(DecodeError::invalid("balances", "a slot out of range or taken twice"));
            };
            *at = leaf_of(&mut buffer, |w| {
                party.encode(w);
                balance.encode(w);
            });
            let id = accounts.open(&party);
            accounts.balances[id as usize] = balance;
            accounts.slots[id as usize] = slot;
        }
        accounts.touched_list.clear();
        accounts.touched.iter_mut().for_each(|t| *t = false);
        accounts.tree = SlotTree::from_leaves(leaves);
        Ok(accounts)
    }
}

/// The snapshot encoding of the `balances` table: `u64 slots ‖ u32 n ‖ (Party ‖ Balance ‖ u64
/// slot)×n`, sorted.
impl Encode for Accounts {
    fn encode(&self, w: &mut Writer) {
        debug_assert!(self.touched_list.is_empty(), "a snapshot is taken between blocks");
        w.u64(self.tree.len());
        w.u32(u32::try_from(self.parties.len()).expect("fewer than 2^32 parties"));
        for (party, id) in &self.index {
            party.encode(w);
            self.balances[*id as usize].encode(w);
            w.u64(self.slots[*id as usize]);
        }
    }
}
