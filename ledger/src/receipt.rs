//! Receipts: the replicated answer to every record in a block (DESIGN §4).
//!
//! A receipt names its record and a code: 0 for accepted, otherwise the specific rule the
//! record broke. The codes are [`Code`]; their numbers are stable (they are hashed into the
//! receipts root) and listed with their meaning in docs/SETTLEMENT.md.
//!
//! Canonical encoding: record id (32 bytes) ‖ code (`u16`, big-endian).

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;

/// The receipt code for an accepted record.
pub const ACCEPTED: u16 = 0;

macro_rules! codes {
    ($($name:ident = $value:literal, $text:literal, $desc:literal;)*) => {
        /// Every receipt code, with a stable number, a stable name and a description.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u16)]
        pub enum Code {
            $(#[doc = $desc] $name = $value,)*
        }

        impl Code {
            /// All codes, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            pub fn from_u16(value: u16) -> Option<Code> {
                match value {
                    $($value => Some(Code::$name),)*
                    _ => None,
                }
            }
            /// The stable kebab-case name (used in JSON and the CLI).
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)*
                }
            }
            /// One sentence for humans.
            pub fn description(self) -> &'static str {
                match self {
                    $(Code::$name => $desc,)*
                }
            }
        }
    };
}

codes! {
    Accepted = 0, "accepted", "The record was applied.";
    Duplicate = 1, "duplicate", "A record with this id was already ordered; the first result stands and nothing changes.";
    // Signer status and governance.
    SignerSuspended = 10, "signer-suspended", "The signing merchant is suspended; its new records are rejected (except refunds and payment confirmations).";
    SignerRemoved = 11, "signer-removed", "The signing merchant was removed earlier in this block.";
    UnknownProposal = 12, "unknown-proposal", "The vote names no known proposal.";
    ProposalClosed = 13, "proposal-closed", "The proposal has already passed or failed.";
    DuplicateVote = 14, "duplicate-vote", "This member already voted on the proposal (the proposer's proposal counts as its vote).";
    AlreadyMember = 15, "already-member", "The merchant to admit is already a member (or was removed: keys are never reused).";
    UnknownMerchant = 16, "unknown-merchant", "The merchant named is not a member, or has been removed.";
    UnknownCategory = 17, "unknown-category", "The category is not one of the alliance's categories.";
    WrongStatus = 18, "wrong-status", "The merchant's status does not allow this action (e.g. suspending a suspended merchant).";
    DuplicatePromoter = 19, "duplicate-promoter", "A promoter with this id is already registered.";
    UnknownPromoter = 20, "unknown-promoter", "The promoter is not registered.";
    AlreadyValidator = 21, "already-validator", "The merchant is already a validator (or will be at the next boundary), or the network key is in use.";
    NotValidator = 22, "not-validator", "The merchant is not a validator, or removing it would leave no validator.";
    PolicyVersion = 23, "policy-version", "A published policy must carry the next version number.";
    PolicyInPast = 24, "policy-in-past", "A published policy cannot take effect before the proposal's block time.";
    NotOnHold = 25, "not-on-hold", "The party to release is not on fraud hold.";
    // Cards and referrals.
    CardExists = 30, "card-exists", "The card id is already issued.";
    UnknownCard = 31, "unknown-card", "The card id was never issued.";
    DuplicateCode = 32, "duplicate-code", "The code hash is already used by a referral or coupon.";
    CompetitorIsolation = 33, "competitor-isolation", "S5: merchants of one category cannot refer to, list or honour each other's codes.";
    UpstreamMismatch = 34, "upstream-mismatch", "S2: the upstream named is not the promoter's registered upstream.";
    UnknownReferral = 35, "unknown-referral", "S1: the referral code presented matches no referral.";
    ReferralExpired = 36, "referral-expired", "S1: the referral code has expired.";
    ReferralUsed = 37, "referral-used", "S1: the single-use referral code was already used by a sale.";
    ReferralNotValidHere = 38, "referral-not-valid-here", "S1: the referral is not valid at this merchant.";
    // Coupons.
    DuplicateBatch = 40, "duplicate-batch", "This merchant already issued a coupon batch with this name.";
    UnknownCoupon = 41, "unknown-coupon", "S6: a coupon code presented matches no coupon.";
    CouponRedeemed = 42, "coupon-redeemed", "S6: a coupon presented was already redeemed.";
    CouponExpired = 43, "coupon-expired", "S6: a coupon presented has expired.";
    CouponNotRedeemableHere = 44, "coupon-not-redeemable-here", "S6: a coupon presented is not redeemable at this merchant.";
    BelowMinSpend = 45, "below-min-spend", "S6: the sale's gross is below a coupon's minimum spend.";
    CouponsExceedOrder = 46, "coupons-exceed-order", "S6: the coupons' total value exceeds the sale's gross.";
    BaseTooHigh = 47, "base-too-high", "The commission base exceeds gross less the coupon value funded by other merchants.";
    UnknownRedemption = 48, "unknown-redemption", "S6: no sale of this merchant redeemed this coupon (or it was already revoked).";
    RevocationWindowClosed = 49, "revocation-window-closed", "S6: the revocation window after the redemption has closed.";
    // Sales, refunds, points.
    DuplicateOrder = 50, "duplicate-order", "This merchant already recorded a sale with this order id.";
    PointsWithoutCard = 51, "points-without-card", "S7: points can only be redeemed by a sale with a card.";
    PointsOverdrawn = 52, "points-overdrawn", "S7: the card has fewer spendable points (less any negative balance) than redeemed.";
    UnknownOrder = 53, "unknown-order", "S8: the refund names no sale of this merchant.";
    DuplicateRefund = 54, "duplicate-refund", "S8: this refund id was already used for the order.";
    OverRefund = 55, "over-refund", "S8: cumulative refunds would exceed the sale's gross.";
    AmountOverflow = 56, "amount-overflow", "A computed amount or points count would exceed the maximum.";
    BaseIncludesPoints = 57, "base-includes-points", "S7: the commission base exceeds gross less the value funded by others: their issuer-funded coupons and the points of other merchants redeemed.";
    // Agreements.
    DuplicateAgreement = 60, "duplicate-agreement", "S9: this merchant already proposed an agreement with this id.";
    UnknownAgreement = 61, "unknown-agreement", "S9: the accepted agreement does not exist.";
    NotCounterparty = 62, "not-counterparty", "S9: only the agreement's counterparty can accept it.";
    AlreadyAccepted = 63, "already-accepted", "S9: the agreement was already accepted.";
    // Payments.
    UnknownStatement = 70, "unknown-statement", "S12: no statement has this period number.";
    NoSuchTransfer = 71, "no-such-transfer", "S12: the statement has no outstanding transfer from this payer that the signer may confirm.";
    OverConfirmation = 72, "over-confirmation", "S12: the amount exceeds what is outstanding on the transfer.";
}

impl Code {
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub record: Hash,
    pub code: u16,
}

impl Receipt {
    pub fn accepted(record: Hash) -> Receipt {
        Receipt { record, code: ACCEPTED }
    }
    pub fn new(record: Hash, code: Code) -> Receipt {
        Receipt { record, code: code.as_u16() }
    }
    pub fn is_accepted(&self) -> bool {
        self.code == ACCEPTED
    }
    /// The code as an enum; `None` for a number this version does not know.
    pub fn code(&self) -> Option<Code> {
        Code::from_u16(self.code)
    }
}

impl Encode for Receipt {
    fn encode(&self, w: &mut Writer) {
        self.record.encode(w);
        w.u16(self.code);
    }
}
impl Decode for Receipt {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Receipt { record: Hash::decode(r)?, code: r.u16()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        let mut names = std::collections::BTreeSet::new();
        for &code in Code::ALL {
            assert_eq!(Code::from_u16(code.as_u16()), Some(code));
            assert!(names.insert(code.name()), "name {} repeats", code.name());
        }
        assert_eq!(Code::Accepted.as_u16(), ACCEPTED);
        assert_eq!(Code::from_u16(9999), None);
    }
}
