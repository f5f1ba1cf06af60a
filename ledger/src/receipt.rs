//! Receipts: the replicated answer to every record in a block (DESIGN §4).
//!
//! A receipt names its record and a code: 0 for accepted, otherwise the specific rule the
//! record broke (the codes are listed in docs/SETTLEMENT.md and defined by the contract).

use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::hash::Hash;

/// The receipt code for an accepted record.
pub const ACCEPTED: u16 = 0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub record: Hash,
    pub code: u16,
}

impl Receipt {
    pub fn accepted(record: Hash) -> Receipt {
        Receipt { record, code: ACCEPTED }
    }
    pub fn is_accepted(&self) -> bool {
        self.code == ACCEPTED
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
