//! Signed checkpoints (DESIGN §6): a node's latest finalized block with its own finalize
//! certificate, like Certificate Transparency's signed tree heads. An export or a store can
//! only show the chain it holds; compared with a tip certified by the validators, a verified
//! chain that stops short (a withheld tail) or holds another block at that height (a fork) is
//! an error.
//!
//! ```text
//! SignedTip = BlockHeader ‖ Certificate (finalize, for the header's view, naming its id)
//!             ‖ ValidatorSet (the set that certifies the header)
//! ```
//!
//! The node serves it at `GET /v1/checkpoint` (hex, field `checkpoint`); `plaza verify
//! --against URL` fetches it before reading the chain, and `plaza verify --expect-tip ID`
//! compares with a block id the auditor got elsewhere.

use crate::audit::{Check, Failure, Report};
use crate::block::BlockHeader;
use crate::cert::{Certificate, ValidatorSet, VoteKind};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;

/// A signed checkpoint's encoding: a header, a certificate and a validator set.
pub const SIGNED_TIP_BYTES_MAX: usize = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTip {
    pub header: BlockHeader,
    /// The block's own finalize certificate.
    pub certificate: Certificate,
    /// The set that certifies the block.
    pub validators: ValidatorSet,
}

impl Encode for SignedTip {
    fn encode(&self, w: &mut Writer) {
        self.header.encode(w);
        self.certificate.encode(w);
        self.validators.encode(w);
    }
}
impl Decode for SignedTip {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedTip { header: BlockHeader::decode(r)?, certificate: Certificate::decode(r)?, validators: ValidatorSet::decode(r)? })
    }
}

/// How a verified chain stands to the tip it was compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TipAgreement {
    /// The chain ends at that tip.
    Ends,
    /// The chain holds that tip and goes on `beyond` blocks after it.
    Beyond { beyond: u64 },
}

impl SignedTip {
    /// The certificate finalizes this header (its view, its id) and holds for the set the
    /// header names.
    pub fn verify(&self, alliance: &Hash) -> Result<(), Failure> {
        let h = self.header.height;
        let id = self.header.id();
        if self.validators.hash() != self.header.validator_set_hash {
            return Err(Failure::at(
                Check::Tip,
                h,
                "signed checkpoint validator set",
                format!("{} (named by its header)", self.header.validator_set_hash),
                format!("{} (carried)", self.validators.hash()),
            ));
        }
        let t = self.certificate.target;
        if t.kind != VoteKind::Finalize || t.block != id || t.view != self.header.view || t.epoch != self.header.epoch {
            return Err(Failure::at(
                Check::Tip,
                h,
                "signed checkpoint certificate",
                format!("a finalize certificate for view {} naming block {id}", self.header.view),
                format!("a {} certificate for view {} naming {}", t.kind.name(), t.view, t.block),
            ));
        }
        self.certificate.verify(alliance, &self.validators).map_err(|e| {
            Failure::at(Check::Tip, h, "signed checkpoint certificate", format!("a quorum of the {} validators' valid signatures", self.validators.len()), e.to_string())
        })
    }

    /// Compares a verified chain with this tip. `report` must come from a verification that
    /// watched this tip's height ([`crate::audit::Watch`]) and found no divergence. The tip's
    /// validator set must be the genesis set (`genesis_set`) or one the chain put in force.
    pub fn check(&self, report: &Report, genesis_set: &Hash) -> Result<TipAgreement, Failure> {
        let h = self.header.height;
        let id = self.header.id();
        let set = self.header.validator_set_hash;
        if set != *genesis_set && !report.epochs.iter().any(|e| e.set_hash == set) {
            return Err(Failure::at(
                Check::Tip,
                h,
                "signed checkpoint validator set",
                "the genesis set or a set the verified chain put in force".to_owned(),
                format!("set {set}"),
            ));
        }
        if h > report.tip_height {
            return Err(Failure::at(
                Check::Tip,
                h,
                "chain tail",
                format!("the chain to reach height {h}, where the validators certified block {id}"),
                format!(
                    "it ends at height {} (block {}): the {} blocks after it are withheld, or this copy is older than that tip",
                    report.tip_height,
                    report.tip_id,
                    h - report.tip_height
                ),
            ));
        }
        if h <= report.start_height {
            return Err(Failure::at(
                Check::Tip,
                h,
                "chain tail",
                format!("a verified block at height {h}"),
                format!("the chain starts after it, at height {} (compare with a later tip)", report.start_height + 1),
            ));
        }
        match report.watched.iter().find(|(wh, _)| *wh == h) {
            Some((_, found)) if *found == id => {
                Ok(if report.tip_height == h { TipAgreement::Ends } else { TipAgreement::Beyond { beyond: report.tip_height - h } })
            }
            Some((_, found)) => Err(Failure::at(
                Check::Tip,
                h,
                "chain tail",
                format!("block {id}, which the validators certified at height {h}"),
                format!("block {found}: the chain forks from the certified one at or below this height"),
            )),
            None => Err(Failure::at(Check::Tip, h, "chain tail", format!("the id of the verified block at height {h}"), "none was recorded".to_owned())),
        }
    }
}

/// Compares a verified chain with a block id the auditor expects it to hold (its tip, as told
/// by a member). `report` must come from a verification that watched the id.
pub fn check_expected(report: &Report, expected: &Hash) -> Result<TipAgreement, Failure> {
    match report.watched.iter().find(|(_, id)| id == expected) {
        Some((h, _)) if *h == report.tip_height => Ok(TipAgreement::Ends),
        Some((h, _)) => Ok(TipAgreement::Beyond { beyond: report.tip_height - h }),
        None => Err(Failure::new(
            Check::Tip,
            None,
            "chain tail",
            format!("block {expected} in the verified chain"),
            format!(
                "a chain from height {} to {} (tip {}) without it: its tail is withheld, or it forks from the expected chain",
                report.start_height + 1,
                report.tip_height,
                report.tip_id
            ),
        )),
    }
}
