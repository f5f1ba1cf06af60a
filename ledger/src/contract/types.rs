//! What the contract stores, with canonical encodings (docs/FORMAT.md, "State root and
//! statements"). Every decoder checks limits and rejects non-canonical values.

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::money::Amount;
use crate::record::{
    Action, CardId, CouponValue, Funding, MerchantProfile, Party, Place, PromoterId, Terms, EXTERNAL_ID_MAX, NAME_MAX,
    PLACES_MAX,
};

use super::accounts::{Accounts, PartyId};
use super::statement::LineKind;

/// Bounds used when decoding a snapshot (nothing the contract builds comes near them).
pub const LIST_MAX: usize = 1 << 24;

/// A merchant's status (DESIGN §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MerchantStatus {
    Active = 1,
    Suspended = 2,
    Removed = 3,
}
impl MerchantStatus {
    pub fn name(self) -> &'static str {
        match self {
            MerchantStatus::Active => "active",
            MerchantStatus::Suspended => "suspended",
            MerchantStatus::Removed => "removed",
        }
    }
}
impl Encode for MerchantStatus {
    fn encode(&self, w: &mut Writer) {
        w.u8(*self as u8);
    }
}
impl Decode for MerchantStatus {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(MerchantStatus::Active),
            2 => Ok(MerchantStatus::Suspended),
            3 => Ok(MerchantStatus::Removed),
            tag => Err(DecodeError::InvalidTag { what: "merchant status", tag }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merchant {
    pub profile: MerchantProfile,
    pub status: MerchantStatus,
}
impl Encode for Merchant {
    fn encode(&self, w: &mut Writer) {
        self.profile.encode(w);
        self.status.encode(w);
    }
}
impl Decode for Merchant {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Merchant { profile: MerchantProfile::decode(r)?, status: MerchantStatus::decode(r)? })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promoter {
    pub name: String,
    /// S2: the one upstream promoter that earns `upstream_rate` on this promoter's referrals.
    pub upstream: Option<PromoterId>,
}
impl Encode for Promoter {
    fn encode(&self, w: &mut Writer) {
        w.str(&self.name);
        w.option(&self.upstream);
    }
}
impl Decode for Promoter {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Promoter { name: r.string("promoter name", NAME_MAX)?, upstream: r.option("upstream")? })
    }
}

/// S7: points earned by one sale, owned by a card, an IOU of `issuer`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lot {
    pub id: u64,
    pub issuer: PublicKey,
    /// Points left in the lot.
    pub points: u64,
    pub spendable_at_ms: u64,
    pub expires_at_ms: u64,
}
impl Encode for Lot {
    /// `u64 id ‖ issuer ‖ u64 points ‖ u64 spendable at ‖ u64 expires at`, written as one
    /// 64-byte piece: a touched card's lots are all encoded again for the state root.
    fn encode(&self, w: &mut Writer) {
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&self.id.to_be_bytes());
        bytes[8..40].copy_from_slice(self.issuer.as_bytes());
        bytes[40..48].copy_from_slice(&self.points.to_be_bytes());
        bytes[48..56].copy_from_slice(&self.spendable_at_ms.to_be_bytes());
        bytes[56..].copy_from_slice(&self.expires_at_ms.to_be_bytes());
        w.raw(&bytes);
    }
}
impl Decode for Lot {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Lot { id: r.u64()?, issuer: PublicKey::decode(r)?, points: r.u64()?, spendable_at_ms: r.u64()?, expires_at_ms: r.u64()? })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    pub home: PublicKey,
    /// Sorted by (expires_at_ms, id): redemption takes from the front (S7).
    pub lots: Vec<Lot>,
    /// S8: points spent that a refund cancelled, per issuer: the card's negative balance.
    pub debt: Vec<(PublicKey, u64)>,
    /// S1: the code hash of the card's latest referral (last touch).
    pub last_referral: Option<Hash>,
    /// S11: recent sales (merchant, event time), within the last hour.
    pub recent: Vec<(PublicKey, u64)>,
}
impl Card {
    pub fn debt_total(&self) -> u64 {
        self.debt.iter().map(|(_, p)| *p).fold(0u64, u64::saturating_add)
    }
}
impl Encode for Card {
    fn encode(&self, w: &mut Writer) {
        self.home.encode(w);
        w.seq(&self.lots);
        w.seq(&self.debt);
        w.option(&self.last_referral);
        w.seq(&self.recent);
    }
}
impl Decode for Card {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let home = PublicKey::decode(r)?;
        let lots: Vec<Lot> = r.seq("lots", LIST_MAX)?;
        // What execution keeps (rules.rs relies on it): sorted by (expiry, id), no empty lot.
        if lots.iter().any(|l| l.points == 0) || lots.windows(2).any(|w| (w[0].expires_at_ms, w[0].id) >= (w[1].expires_at_ms, w[1].id)) {
            return Err(DecodeError::invalid("lots", "a card's lots must hold points and be sorted by (expires at, id)"));
        }
        Ok(Card {
            home,
            lots,
            debt: r.seq("debt", LIST_MAX)?,
            last_referral: r.option("last referral")?,
            recent: r.seq("recent sales", LIST_MAX)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    pub record: Hash,
    pub referrer: PublicKey,
    pub card: Option<CardId>,
    pub promoter: Option<PromoterId>,
    /// Resolved at Refer time from the promoter's registration (S2).
    pub upstream: Option<PromoterId>,
    pub valid_at: Vec<Place>,
    pub expires_at_ms: u64,
    pub multi_use: bool,
    pub uses: u64,
}
impl Encode for Referral {
    fn encode(&self, w: &mut Writer) {
        self.record.encode(w);
        self.referrer.encode(w);
        w.option(&self.card);
        w.option(&self.promoter);
        w.option(&self.upstream);
        w.seq(&self.valid_at);
        w.u64(self.expires_at_ms);
        w.bool(self.multi_use);
        w.u64(self.uses);
    }
}
impl Decode for Referral {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Referral {
            record: Hash::decode(r)?,
            referrer: PublicKey::decode(r)?,
            card: r.option("card")?,
            promoter: r.option("promoter")?,
            upstream: r.option("upstream")?,
            valid_at: r.seq("valid_at", PLACES_MAX)?,
            expires_at_ms: r.u64()?,
            multi_use: r.bool("multi_use")?,
            uses: r.u64()?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub issuer: PublicKey,
    pub value: CouponValue,
    pub min_spend: Amount,
    pub redeemable_at: Vec<Place>,
    pub funding: Funding,
    pub expires_at_ms: u64,
}
impl Encode for Batch {
    fn encode(&self, w: &mut Writer) {
        self.issuer.encode(w);
        self.value.encode(w);
        self.min_spend.encode(w);
        w.seq(&self.redeemable_at);
        self.funding.encode(w);
        w.u64(self.expires_at_ms);
    }
}
impl Decode for Batch {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Batch {
            issuer: PublicKey::decode(r)?,
            value: CouponValue::decode(r)?,
            min_spend: Amount::decode(r)?,
            redeemable_at: r.seq("redeemable_at", PLACES_MAX)?,
            funding: Funding::decode(r)?,
            expires_at_ms: r.u64()?,
        })
    }
}

/// A merchant and one of its own identifiers (order, batch, agreement id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NamedKey {
    pub merchant: PublicKey,
    pub name: String,
}
impl Encode for NamedKey {
    fn encode(&self, w: &mut Writer) {
        self.merchant.encode(w);
        w.str(&self.name);
    }
}
impl Decode for NamedKey {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(NamedKey { merchant: PublicKey::decode(r)?, name: r.string("external id", EXTERNAL_ID_MAX)? })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coupon {
    /// The IssueCoupons record id.
    pub batch: Hash,
    /// The sale (seller, order) that redeemed it.
    pub redeemed_by: Option<NamedKey>,
}
impl Encode for Coupon {
    fn encode(&self, w: &mut Writer) {
        self.batch.encode(w);
        w.option(&self.redeemed_by);
    }
}
impl Decode for Coupon {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Coupon { batch: Hash::decode(r)?, redeemed_by: r.option("redeemed by")? })
    }
}

/// One payable item a sale created (S1–S3, S6, S7), kept for refunds (S8). Its parties are
/// interned ([`PartyId`]: every item's parties have an account); encoded with full `Party`
/// values, as docs/FORMAT.md defines the sales table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaleItem {
    /// Its id in the items table while pending or on hold.
    pub item: u64,
    pub(crate) debtor: PartyId,
    pub(crate) creditor: PartyId,
    pub kind: LineKind,
    pub original: Amount,
    pub reversed: Amount,
}
impl SaleItem {
    /// `u64 item ‖ Party debtor ‖ Party creditor ‖ u8 kind ‖ original ‖ reversed`.
    fn encode_with(&self, w: &mut Writer, accounts: &Accounts) {
        w.u64(self.item);
        accounts.party(self.debtor).encode(w);
        accounts.party(self.creditor).encode(w);
        self.kind.encode(w);
        self.original.encode(w);
        self.reversed.encode(w);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sale {
    pub record: Hash,
    pub event_ms: u64,
    pub gross: Amount,
    pub base: Amount,
    pub refunded: Amount,
    pub refund_ids: Vec<String>,
    pub card: Option<CardId>,
    pub items: Vec<SaleItem>,
    /// The lot this sale earned: (lot id, points earned, points cancelled by refunds, lot expiry).
    pub earned: Option<(u64, u64, u64, u64)>,
    /// Coupons redeemed: code hash and, for issuer-funded ones, the index in `items`.
    pub coupons: Vec<(Hash, Option<u32>)>,
    /// S11: the referring parties whose refund ratio this sale counts toward.
    pub referrers: Vec<Party>,
}

/// A sale's items' parties as a snapshot names them, before the `balances` table (later in the
/// snapshot) lets them be resolved to [`PartyId`]s.
pub(crate) type RawSaleParties = Vec<(Party, Party)>;

impl Sale {
    pub(crate) fn encode_with(&self, w: &mut Writer, accounts: &Accounts) {
        self.record.encode(w);
        w.u64(self.event_ms);
        self.gross.encode(w);
        self.base.encode(w);
        self.refunded.encode(w);
        w.seq(&self.refund_ids);
        w.option(&self.card);
        w.u32(u32::try_from(self.items.len()).expect("a sale has few items"));
        for item in &self.items {
            item.encode_with(w, accounts);
        }
        match self.earned {
            None => w.u8(0),
            Some((lot, points, cancelled, expires)) => {
                w.u8(1);
                w.u64(lot);
                w.u64(points);
                w.u64(cancelled);
                w.u64(expires);
            }
        }
        w.u32(self.coupons.len() as u32);
        for (code, index) in &self.coupons {
            code.encode(w);
            w.option(index);
        }
        w.seq(&self.referrers);
    }

    /// Decodes a sale whose items' party ids are placeholders; the parties come back in order.
    pub(crate) fn decode_raw(r: &mut Reader<'_>) -> Result<(Sale, RawSaleParties), DecodeError> {
        let record = Hash::decode(r)?;
        let event_ms = r.u64()?;
        let gross = Amount::decode(r)?;
        let base = Amount::decode(r)?;
        let refunded = Amount::decode(r)?;
        let n = r.len("refund ids", LIST_MAX)?;
        let mut refund_ids = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            refund_ids.push(r.string("refund id", EXTERNAL_ID_MAX)?);
        }
        let card = r.option("card")?;
        let n = r.len("sale items", LIST_MAX)?;
        let mut items = Vec::with_capacity(n.min(r.remaining()));
        let mut parties = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            let item = r.u64()?;
            parties.push((Party::decode(r)?, Party::decode(r)?));
            items.push(SaleItem {
                item,
                debtor: 0,
                creditor: 0,
                kind: LineKind::decode(r)?,
                original: Amount::decode(r)?,
                reversed: Amount::decode(r)?,
            });
        }
        let earned = match r.u8()? {
            0 => None,
            1 => Some((r.u64()?, r.u64()?, r.u64()?, r.u64()?)),
            tag => return Err(DecodeError::InvalidTag { what: "earned", tag }),
        };
        let n = r.len("coupons", LIST_MAX)?;
        let mut coupons = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            coupons.push((Hash::decode(r)?, r.option("coupon item")?));
        }
        let sale = Sale { record, event_ms, gross, base, refunded, refund_ids, card, items, earned, coupons, referrers: r.seq("referrers", LIST_MAX)? };
        Ok((sale, parties))
    }

    /// Fills in the party ids of [`Sale::decode_raw`].
    pub(crate) fn resolve(&mut self, parties: RawSaleParties, accounts: &Accounts) -> Result<(), DecodeError> {
        let id = |p: &Party| accounts.id(p).ok_or_else(|| DecodeError::invalid("sales", "a sale item's party has no balance"));
        for (item, (debtor, creditor)) in self.items.iter_mut().zip(parties) {
            item.debtor = id(&debtor)?;
            item.creditor = id(&creditor)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalStatus {
    Open = 1,
    Passed = 2,
    Failed = 3,
}
impl ProposalStatus {
    pub fn name(self) -> &'static str {
        match self {
            ProposalStatus::Open => "open",
            ProposalStatus::Passed => "passed",
            ProposalStatus::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub proposer: PublicKey,
    pub action: Action,
    pub created_at_ms: u64,
    /// Sorted by voter.
    pub votes: Vec<(PublicKey, bool)>,
    pub status: ProposalStatus,
}
impl Encode for Proposal {
    fn encode(&self, w: &mut Writer) {
        self.proposer.encode(w);
        self.action.encode(w);
        w.u64(self.created_at_ms);
        w.u32(self.votes.len() as u32);
        for (k, v) in &self.votes {
            k.encode(w);
            w.bool(*v);
        }
        w.u8(self.status as u8);
    }
}
impl Decode for Proposal {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let proposer = PublicKey::decode(r)?;
        let action = Action::decode(r)?;
        let created_at_ms = r.u64()?;
        let n = r.len("votes", LIST_MAX)?;
        let mut votes = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            votes.push((PublicKey::decode(r)?, r.bool("approve")?));
        }
        let status = match r.u8()? {
            1 => ProposalStatus::Open,
            2 => ProposalStatus::Passed,
            3 => ProposalStatus::Failed,
            tag => return Err(DecodeError::InvalidTag { what: "proposal status", tag }),
        };
        Ok(Proposal { proposer, action, created_at_ms, votes, status })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    pub proposer: PublicKey,
    pub counterparty: PublicKey,
    pub terms: Terms,
    pub starts_at_ms: u64,
    pub ends_at_ms: Option<u64>,
    pub accepted: bool,
}
impl Agreement {
    pub fn in_force(&self, from_ms: u64, to_ms: u64) -> bool {
        self.accepted && self.starts_at_ms < to_ms && self.ends_at_ms.is_none_or(|end| end > from_ms)
    }
}
impl Encode for Agreement {
    fn encode(&self, w: &mut Writer) {
        self.proposer.encode(w);
        self.counterparty.encode(w);
        self.terms.encode(w);
        w.u64(self.starts_at_ms);
        w.option(&self.ends_at_ms);
        w.bool(self.accepted);
    }
}
impl Decode for Agreement {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Agreement {
            proposer: PublicKey::decode(r)?,
            counterparty: PublicKey::decode(r)?,
            terms: Terms::decode(r)?,
            starts_at_ms: r.u64()?,
            ends_at_ms: r.option("ends_at")?,
            accepted: r.bool("accepted")?,
        })
    }
}

/// Per-party money, in cents (u128: sums of many amounts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Balance {
    /// Pending items owed to the party (not yet locked; on hold when the party is held).
    pub pending_in: u128,
    /// Pending items the party owes.
    pub pending_out: u128,
    /// Stated in a statement's payment plan, not yet confirmed paid, owed to the party.
    pub locked_in: u128,
    /// Stated, not yet confirmed, owed by the party.
    pub locked_out: u128,
    pub paid_in: u128,
    pub paid_out: u128,
}
fn u128_enc(w: &mut Writer, v: u128) {
    w.raw(&v.to_be_bytes());
}
fn u128_dec(r: &mut Reader<'_>) -> Result<u128, DecodeError> {
    Ok(u128::from_be_bytes(r.array()?))
}
pub(crate) fn encode_u128(w: &mut Writer, v: u128) {
    u128_enc(w, v);
}
pub(crate) fn decode_u128(r: &mut Reader<'_>) -> Result<u128, DecodeError> {
    u128_dec(r)
}
impl Encode for Balance {
    fn encode(&self, w: &mut Writer) {
        for v in [self.pending_in, self.pending_out, self.locked_in, self.locked_out, self.paid_in, self.paid_out] {
            u128_enc(w, v);
        }
    }
}
impl Decode for Balance {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Balance {
            pending_in: u128_dec(r)?,
            pending_out: u128_dec(r)?,
            locked_in: u128_dec(r)?,
            locked_out: u128_dec(r)?,
            paid_in: u128_dec(r)?,
            paid_out: u128_dec(r)?,
        })
    }
}

/// S11: the referred gross and the refunded amount of a referring party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReferrerStats {
    pub referred: u128,
    pub refunded: u128,
}
impl Encode for ReferrerStats {
    fn encode(&self, w: &mut Writer) {
        u128_enc(w, self.referred);
        u128_enc(w, self.refunded);
    }
}
impl Decode for ReferrerStats {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ReferrerStats { referred: u128_dec(r)?, refunded: u128_dec(r)? })
    }
}

/// A transfer of a statement's payment plan and what is still unconfirmed of it (S10, S12).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Obligation {
    pub payer: Party,
    pub payee: Party,
    pub amount: u128,
    pub outstanding: u128,
}
impl Encode for Obligation {
    fn encode(&self, w: &mut Writer) {
        self.payer.encode(w);
        self.payee.encode(w);
        u128_enc(w, self.amount);
        u128_enc(w, self.outstanding);
    }
}
impl Decode for Obligation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Obligation { payer: Party::decode(r)?, payee: Party::decode(r)?, amount: u128_dec(r)?, outstanding: u128_dec(r)? })
    }
}

/// What the state keeps of a closed period: the full statement goes to the node's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementSummary {
    pub hash: Hash,
    pub start_ms: u64,
    pub end_ms: u64,
    pub nets: Vec<(Party, i128)>,
    pub obligations: Vec<Obligation>,
}
impl Encode for StatementSummary {
    fn encode(&self, w: &mut Writer) {
        self.hash.encode(w);
        w.u64(self.start_ms);
        w.u64(self.end_ms);
        w.u32(self.nets.len() as u32);
        for (p, n) in &self.nets {
            p.encode(w);
            w.raw(&n.to_be_bytes());
        }
        w.seq(&self.obligations);
    }
}
impl Decode for StatementSummary {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let hash = Hash::decode(r)?;
        let start_ms = r.u64()?;
        let end_ms = r.u64()?;
        let n = r.len("nets", LIST_MAX)?;
        let mut nets = Vec::with_capacity(n.min(r.remaining()));
        for _ in 0..n {
            nets.push((Party::decode(r)?, i128::from_be_bytes(r.array()?)));
        }
        Ok(StatementSummary { hash, start_ms, end_ms, nets, obligations: r.seq("obligations", LIST_MAX)? })
    }
}

/// A rolled-over transfer carried into the next statement (S10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carry {
    pub debtor: Party,
    pub creditor: Party,
    pub amount: u128,
    /// The statement it was rolled over from.
    pub from_statement: Hash,
}
impl Encode for Carry {
    fn encode(&self, w: &mut Writer) {
        self.debtor.encode(w);
        self.creditor.encode(w);
        u128_enc(w, self.amount);
        self.from_statement.encode(w);
    }
}
impl Decode for Carry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Carry { debtor: Party::decode(r)?, creditor: Party::decode(r)?, amount: u128_dec(r)?, from_statement: Hash::decode(r)? })
    }
}

/// A validator change waiting for the next period boundary (§4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValidatorChange {
    Add { merchant: PublicKey, network_key: PublicKey },
    Remove { merchant: PublicKey },
}
impl Encode for ValidatorChange {
    fn encode(&self, w: &mut Writer) {
        match self {
            ValidatorChange::Add { merchant, network_key } => {
                w.u8(1);
                merchant.encode(w);
                network_key.encode(w);
            }
            ValidatorChange::Remove { merchant } => {
                w.u8(2);
                merchant.encode(w);
            }
        }
    }
}
impl Decode for ValidatorChange {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            1 => Ok(ValidatorChange::Add { merchant: PublicKey::decode(r)?, network_key: PublicKey::decode(r)? }),
            2 => Ok(ValidatorChange::Remove { merchant: PublicKey::decode(r)? }),
            tag => Err(DecodeError::InvalidTag { what: "validator change", tag }),
        }
    }
}

/// A unit value for set-like tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unit;
impl Encode for Unit {
    fn encode(&self, _w: &mut Writer) {}
}
impl Decode for Unit {
    fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Unit)
    }
}

/// Helper so `Hash` values can be table values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashValue(pub Hash);
impl Encode for HashValue {
    fn encode(&self, w: &mut Writer) {
        self.0.encode(w);
    }
}
impl Decode for HashValue {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HashValue(Hash::decode(r)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    #[test]
    fn a_lot_is_its_fields_in_order() {
        let lot = Lot { id: 7, issuer: Keypair::from_seed(b"lot/issuer").public(), points: 1 << 40, spendable_at_ms: 3, expires_at_ms: u64::MAX };
        let mut w = Writer::new();
        w.u64(lot.id);
        lot.issuer.encode(&mut w);
        w.u64(lot.points);
        w.u64(lot.spendable_at_ms);
        w.u64(lot.expires_at_ms);
        assert_eq!(lot.to_bytes(), w.into_bytes());
        assert_eq!(Lot::from_bytes(&lot.to_bytes(), 64), Ok(lot));
    }

    #[test]
    fn a_card_decodes_only_with_sorted_lots_that_hold_points() {
        let issuer = Keypair::from_seed(b"lot/issuer").public();
        let lot = |id, points, expires_at_ms| Lot { id, issuer, points, spendable_at_ms: 0, expires_at_ms };
        let card = |lots| Card { home: issuer, lots, debt: Vec::new(), last_referral: None, recent: Vec::new() };
        let good = card(vec![lot(2, 5, 10), lot(1, 5, 20), lot(3, 5, 20)]);
        assert_eq!(Card::from_bytes(&good.to_bytes(), 1 << 16), Ok(good));
        for bad in [
            card(vec![lot(1, 5, 20), lot(2, 5, 10)]),
            card(vec![lot(3, 5, 20), lot(1, 5, 20)]),
            card(vec![lot(1, 5, 20), lot(1, 5, 20)]),
            card(vec![lot(1, 0, 20)]),
        ] {
            assert!(matches!(Card::from_bytes(&bad.to_bytes(), 1 << 16), Err(DecodeError::Invalid { what: "lots", .. })), "{bad:?}");
        }
    }

    #[test]
    fn sales_round_trip_through_their_party_ids() {
        let k = Keypair::from_seed(b"len/a").public();
        let promoter = Party::Promoter(PromoterId::new("kol-123").expect("id"));
        let mut accounts = Accounts::default();
        let (km, kp) = (accounts.open(&Party::Merchant(k)), accounts.open(&promoter));
        let item = |d: PartyId, c: PartyId| SaleItem { item: 7, debtor: d, creditor: c, kind: LineKind::Promoter, original: Amount::ZERO, reversed: Amount::ZERO };
        let check_sale = |sale: &Sale| {
            let mut w = Writer::new();
            sale.encode_with(&mut w, &accounts);
            let bytes = w.into_bytes();
            let (mut back, parties) = Sale::decode_raw(&mut Reader::new(&bytes)).expect("decodes");
            back.resolve(parties, &accounts).expect("resolves");
            assert_eq!(&back, sale);
        };
        let mut sale = Sale {
            record: Hash::digest(b"s"),
            event_ms: 1,
            gross: Amount::ZERO,
            base: Amount::ZERO,
            refunded: Amount::ZERO,
            refund_ids: Vec::new(),
            card: None,
            items: Vec::new(),
            earned: None,
            coupons: Vec::new(),
            referrers: Vec::new(),
        };
        check_sale(&sale);
        sale.refund_ids = vec!["r-1".into(), "refund-long-id".into()];
        sale.card = Some(CardId([3; 16]));
        sale.items = vec![item(km, kp), item(kp, km)];
        sale.earned = Some((1, 2, 3, 4));
        sale.coupons = vec![(Hash::digest(b"c1"), None), (Hash::digest(b"c2"), Some(0))];
        sale.referrers = vec![Party::Merchant(k), promoter];
        check_sale(&sale);
    }
}
