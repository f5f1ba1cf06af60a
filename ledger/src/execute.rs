//! The one place that re-executes a block and compares the outcome with its header.
//!
//! Every path that takes a block from somewhere else calls [`execute_checked`]: a proposal
//! before the node votes for it, a block fetched by block sync, a stored block re-executed
//! when the node restarts, and the auditor's chain verification. Each of them checks the same
//! things, in this order: the header's epoch is the one its parent implies, its validator-set
//! hash is the set in force before the block, the contract accepts the block at the header's
//! time, the receipts root, the statement hash and the state root the execution produced are
//! the header's, and the header names the next validator set exactly when the execution
//! changed the set (the block then ends its epoch).

use thiserror::Error;

use crate::block::{Block, BlockHeader};
use crate::contract::{BlockOutcome, InvalidBlock, State, Statement};
use crate::hash::Hash;

/// How a block and its re-execution disagree.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Mismatch {
    #[error("epoch {header} in the header, {expected} after its parent")]
    Epoch { header: u64, expected: u64 },
    #[error("validator set hash {header} in the header, {state} in force")]
    ValidatorSet { header: Hash, state: Hash },
    #[error("the contract refuses the block: {0}")]
    Refused(InvalidBlock),
    #[error("receipts root {computed} from execution, {header} in the header")]
    ReceiptsRoot { computed: Hash, header: Hash },
    #[error("statement hash {} from execution, {} in the header", show(.computed), show(.header))]
    StatementHash { computed: Option<Hash>, header: Option<Hash> },
    #[error("state root {computed} from execution, {header} in the header")]
    StateRoot { computed: Hash, header: Hash },
    #[error("next validator set {} from execution, {} in the header", show_set(.computed), show_set(.header))]
    NextValidatorSet { computed: Option<Hash>, header: Option<Hash> },
}

fn show_set(hash: &Option<Hash>) -> String {
    hash.map_or_else(|| "none (the set does not change)".to_owned(), |h| h.to_string())
}

fn show(hash: &Option<Hash>) -> String {
    hash.map_or_else(|| "no statement".to_owned(), |h| h.to_string())
}

/// Applies `block` to `state` (the state after its parent) at the header's time and checks
/// the outcome against the header; `epoch` is the epoch its parent implies
/// ([`BlockHeader::child_epoch`], 0 after genesis). On success `state` is the state after the
/// block; on a mismatch it is unspecified (callers execute on a copy).
pub fn execute_checked(state: &mut State, block: &Block, epoch: u64) -> Result<BlockOutcome, Mismatch> {
    let header: &BlockHeader = &block.header;
    if header.epoch != epoch {
        return Err(Mismatch::Epoch { header: header.epoch, expected: epoch });
    }
    let set_hash = state.validator_set().hash();
    if header.validator_set_hash != set_hash {
        return Err(Mismatch::ValidatorSet { header: header.validator_set_hash, state: set_hash });
    }
    let outcome = state.apply_block(header.time_ms, &block.records).map_err(Mismatch::Refused)?;
    compare(header, &outcome)?;
    let next = next_validator_set_hash(set_hash, state);
    if next != header.next_validator_set_hash {
        return Err(Mismatch::NextValidatorSet { computed: next, header: header.next_validator_set_hash });
    }
    Ok(outcome)
}

/// What a block's header must carry as `next_validator_set_hash`, given the set hash before
/// it and the state after it: the new set's hash when the execution changed the set.
pub fn next_validator_set_hash(before: Hash, after: &State) -> Option<Hash> {
    let after = after.validator_set().hash();
    (after != before).then_some(after)
}

/// Compares an execution's outcome with a header (receipts root, statement hash, state root).
pub fn compare(header: &BlockHeader, outcome: &BlockOutcome) -> Result<(), Mismatch> {
    let receipts_root = Block::compute_receipts_root(&outcome.receipts);
    if receipts_root != header.receipts_root {
        return Err(Mismatch::ReceiptsRoot { computed: receipts_root, header: header.receipts_root });
    }
    let statement_hash = outcome.statement.as_ref().map(Statement::hash);
    if statement_hash != header.statement_hash {
        return Err(Mismatch::StatementHash { computed: statement_hash, header: header.statement_hash });
    }
    if outcome.state_root != header.state_root {
        return Err(Mismatch::StateRoot { computed: outcome.state_root, header: header.state_root });
    }
    Ok(())
}
