//! Read-only views for browsing the state (the node's explorer): lists the API's point queries
//! do not give. Nothing here changes the state or reaches its root; every list comes out in
//! the order of the sorted tables it reads.

use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::money::Amount;
use crate::record::{Action, CouponValue, Funding, Party, Place};

use super::types::{ProposalStatus, Sale};
use super::statement::LineKind;
use super::sales::OrderId;
use super::State;

/// A payable item not yet in a statement (S8): pending, or on hold (S11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemView {
    pub debtor: Party,
    pub creditor: Party,
    pub amount: Amount,
    pub kind: LineKind,
    /// The record that created it.
    pub source: Hash,
    /// When it locks into a statement (S8).
    pub lock_at_ms: u64,
    /// Held (S11): it neither locks nor pays until a vote releases it.
    pub held: bool,
}

/// A coupon batch (S6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchView {
    /// The IssueCoupons record id.
    pub id: Hash,
    pub issuer: PublicKey,
    /// The issuer's own batch name.
    pub name: String,
    pub value: CouponValue,
    pub min_spend: Amount,
    pub redeemable_at: Vec<Place>,
    pub funding: Funding,
    pub expires_at_ms: u64,
    pub codes: u64,
    pub redeemed: u64,
}

/// A governance proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalView<'a> {
    pub id: Hash,
    pub proposer: PublicKey,
    pub action: &'a Action,
    pub created_at_ms: u64,
    pub votes: &'a [(PublicKey, bool)],
    pub status: ProposalStatus,
}

/// A recorded sale, found by its order id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleView {
    pub seller: PublicKey,
    pub order: String,
    /// The Sale record id.
    pub record: Hash,
    pub gross: Amount,
    pub refunded: Amount,
}

impl State {
    /// Pending and held items that `party` owes or is owed, by item id (creation order).
    pub fn items_of(&self, party: &Party) -> Vec<ItemView> {
        let Some(id) = self.balances.id(party) else { return Vec::new() };
        self.items
            .iter()
            .filter(|(_, item)| item.debtor == id || item.creditor == id)
            .map(|(_, item)| ItemView {
                debtor: self.balances.party(item.debtor).clone(),
                creditor: self.balances.party(item.creditor).clone(),
                amount: item.amount,
                kind: item.kind,
                source: item.source,
                lock_at_ms: item.lock_at_ms,
                held: item.held || self.held.contains(self.balances.party(item.creditor)),
            })
            .collect()
    }

    /// Every coupon batch, by (issuer, batch name).
    pub fn coupon_batches(&self) -> Vec<BatchView> {
        let mut out: Vec<BatchView> = self
            .batch_names
            .iter()
            .filter_map(|(name, id)| {
                let b = self.batches.get(&id.0)?;
                Some(BatchView {
                    id: id.0,
                    issuer: b.issuer,
                    name: name.name.clone(),
                    value: b.value,
                    min_spend: b.min_spend,
                    redeemable_at: b.redeemable_at.clone(),
                    funding: b.funding,
                    expires_at_ms: b.expires_at_ms,
                    codes: 0,
                    redeemed: 0,
                })
            })
            .collect();
        for (_, coupon) in self.coupons.iter() {
            if let Some(b) = out.iter_mut().find(|b| b.id == coupon.batch) {
                b.codes += 1;
                b.redeemed += u64::from(coupon.redeemed_by.is_some());
            }
        }
        out
    }

    /// The code hashes of one batch, sorted, with the (seller, order) that redeemed each.
    pub fn coupons_of_batch(&self, batch: &Hash) -> Vec<(Hash, Option<(PublicKey, String)>)> {
        self.coupons
            .iter()
            .filter(|(_, c)| c.batch == *batch)
            .map(|(h, c)| (*h, c.redeemed_by.as_ref().map(|k| (k.merchant, k.name.clone()))))
            .collect()
    }

    /// Every proposal, by id.
    pub fn proposals(&self) -> Vec<ProposalView<'_>> {
        self.proposals
            .iter()
            .map(|(id, p)| ProposalView {
                id: *id,
                proposer: p.proposer,
                action: &p.action,
                created_at_ms: p.created_at_ms,
                votes: &p.votes,
                status: p.status,
            })
            .collect()
    }

    /// The sales with this order id, at any seller (order ids are unique per seller only).
    pub fn sales_by_order(&self, order: &str) -> Vec<SaleView> {
        if order.is_empty() || order.len() > crate::record::EXTERNAL_ID_MAX {
            return Vec::new();
        }
        let key = OrderId::new(order);
        self.sales
            .sellers()
            .filter_map(|seller| self.sales.get(seller, &key).map(|s: &Sale| (seller, s)))
            .map(|(seller, s)| SaleView { seller: *seller, order: order.to_owned(), record: s.record, gross: s.gross, refunded: s.refunded })
            .collect()
    }
}
