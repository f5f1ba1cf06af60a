//! Who may write through the API (docs/NODE.md, "API authority").
//!
//! Two powers, two credentials:
//! - **Submitting a record already signed by its merchant** moves nothing the node owns: the
//!   signature is the merchant's authority. A *guest token* (`api_guest_tokens` in config.toml,
//!   one per merchant without a node of its own) allows exactly this, and so does no token at
//!   all when `api_open_submit = true`. These submissions are rate-limited per signer
//!   (`api_guest_records_per_signer_per_minute`).
//! - **Asking the node to sign** (`payload`) and the testnet clock use the node's merchant key
//!   or its clock: they need the node's own token (the `api-token` file).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use plaza_ledger::PublicKey;

use crate::Shared;

/// How long one rate window lasts.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// What the request's credential allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authority {
    /// The node's own token: everything, unlimited.
    Node,
    /// A guest token: client-signed records only, rate-limited per signer.
    Guest,
    /// No token, and the node accepts client-signed records from anyone (`api_open_submit`).
    Open,
}

/// Why a request may not write: HTTP status, error code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The authority of a request that submits records.
pub fn submit_authority(shared: &Shared, headers: &HeaderMap) -> Result<Authority, Refusal> {
    match bearer(headers) {
        Some(t) if constant_time_eq(t.as_bytes(), shared.api_token.as_bytes()) => Ok(Authority::Node),
        Some(t) if shared.config.api_guest_tokens.iter().any(|g| constant_time_eq(t.as_bytes(), g.as_bytes())) => Ok(Authority::Guest),
        Some(_) => Err(Refusal { status: StatusCode::FORBIDDEN, code: "forbidden", message: "wrong API token".into() }),
        None if shared.config.api_open_submit => Ok(Authority::Open),
        None => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: "submitting needs a token (Authorization: Bearer <token>): the node's API token, or a guest token for records signed by their merchant".into(),
        }),
    }
}

/// Signing as the node's merchant needs the node's own token.
pub fn require_node(authority: Authority) -> Result<(), Refusal> {
    if authority == Authority::Node {
        return Ok(());
    }
    Err(Refusal {
        status: StatusCode::FORBIDDEN,
        code: "node-token-required",
        message: "only the node's own API token can make the node sign (`payload`); a guest may submit records signed by their merchant (`record`, `records`)".into(),
    })
}

/// Per-signer submission counts in the current window, for guest and open submissions. Only
/// members' keys are counted (others are refused before), so the map is bounded by the
/// membership.
#[derive(Default)]
pub struct SignerLimits {
    windows: Mutex<BTreeMap<PublicKey, (Instant, u64)>>,
}

impl SignerLimits {
    /// Takes `count` records of `signer` from its allowance of `per_minute`; refuses the whole
    /// request when that would go over.
    pub fn take(&self, signers: &BTreeMap<PublicKey, u64>, per_minute: u64, now: Instant) -> Result<(), Refusal> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (signer, count) in signers {
            let used = match windows.get(signer) {
                Some((start, used)) if now.duration_since(*start) < RATE_WINDOW => *used,
                _ => 0,
            };
            if used.saturating_add(*count) > per_minute {
                return Err(Refusal {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "rate-limited",
                    message: format!("{signer} may submit {per_minute} records a minute through this node without its token; try again later"),
                });
            }
        }
        for (signer, count) in signers {
            let entry = windows.entry(*signer).or_insert((now, 0));
            if now.duration_since(entry.0) >= RATE_WINDOW {
                *entry = (now, 0);
            }
            entry.1 = entry.1.saturating_add(*count);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_per_signer_and_per_window() {
        let limits = SignerLimits::default();
        let (a, b) = (plaza_ledger::Keypair::generate().public(), plaza_ledger::Keypair::generate().public());
        let t0 = Instant::now();
        let one = |k: PublicKey, n: u64| BTreeMap::from([(k, n)]);
        assert!(limits.take(&one(a, 3), 5, t0).is_ok());
        assert!(limits.take(&one(b, 5), 5, t0).is_ok(), "another signer has its own allowance");
        let refused = limits.take(&one(a, 3), 5, t0).expect_err("3 + 3 > 5");
        assert_eq!((refused.status, refused.code), (StatusCode::TOO_MANY_REQUESTS, "rate-limited"));
        assert!(limits.take(&one(a, 2), 5, t0).is_ok(), "a refused request took nothing");
        assert!(limits.take(&one(a, 5), 5, t0 + RATE_WINDOW).is_ok(), "a new window starts afresh");
    }
}
