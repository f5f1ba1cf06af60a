//! What every fuzz target checks, in one place.
//!
//! A target feeds arbitrary bytes to one decoder or parser and asserts three things:
//! - it returns (an error or a value) and never panics — libFuzzer reports a panic as a crash;
//! - the size limit holds: input over the limit is refused as too large, before decoding;
//! - decode∘encode is the identity: a decoded value encodes back to exactly the input bytes
//!   (the encoding is canonical, so a decoder that accepts two spellings of one value is a
//!   bug), and decoding that encoding gives the same value again.

use std::fmt::Debug;

use plaza_ledger::codec::{Decode, DecodeError, Encode};

/// Decodes `data` as a `T` under the limit `max`; on success asserts the canonical round trip.
/// Also decodes under a limit one byte too small and asserts it is refused as too large.
pub fn canonical<T: Decode + Encode + PartialEq + Debug>(data: &[u8], max: usize) -> Option<T> {
    if let Some(tight) = data.len().checked_sub(1).filter(|t| *t < max) {
        assert!(
            matches!(T::from_bytes(data, tight), Err(DecodeError::TooLarge { .. })),
            "{} bytes decoded under a limit of {tight}",
            data.len()
        );
    }
    let decoded = T::from_bytes(data, max);
    if data.len() > max {
        assert!(matches!(decoded, Err(DecodeError::TooLarge { .. })), "input over the limit was not refused as too large");
        return None;
    }
    let value = decoded.ok()?;
    round_trip(&value, max);
    let bytes = value.to_bytes();
    assert!(bytes == data, "a non-canonical encoding was accepted:\n input {}\n canonical {}", hex(data), hex(&bytes));
    Some(value)
}

/// The encoding of `value` is within `max` and decodes to `value` again.
pub fn round_trip<T: Decode + Encode + PartialEq + Debug>(value: &T, max: usize) {
    let bytes = value.to_bytes();
    assert!(bytes.len() <= max, "a decoded value encodes to {} bytes, over its limit {max}", bytes.len());
    match T::from_bytes(&bytes, max) {
        Ok(again) => assert_eq!(&again, value, "decoding the encoding gives another value"),
        Err(e) => panic!("the encoding of a decoded value does not decode: {e}"),
    }
}

/// Selects a sub-decoder by the first byte; the rest is its input.
pub fn split_selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(s, rest)| (*s, rest))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let shown = &bytes[..bytes.len().min(256)];
    let mut out = String::with_capacity(shown.len() * 2);
    for b in shown {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    if bytes.len() > shown.len() {
        out.push('…');
    }
    out
}
