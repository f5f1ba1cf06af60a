//! The canonical binary encoding (docs/FORMAT.md §1).
//!
//! Every signed, hashed or stored value has exactly one encoding: integers are fixed-width
//! big-endian, booleans are 0 or 1, byte strings and sequences carry a `u32` length prefix,
//! options a one-byte tag. Decoders take explicit limits, reject anything non-canonical and
//! must consume the whole input.

use thiserror::Error;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("input ends early: needed {needed} more bytes at offset {offset}")]
    UnexpectedEnd { offset: usize, needed: usize },
    #[error("{trailing} trailing bytes after the value")]
    TrailingBytes { trailing: usize },
    #[error("input is {len} bytes, the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("{what}: length {len} exceeds the limit {max}")]
    LengthLimit { what: &'static str, len: usize, max: usize },
    #[error("{what}: invalid tag {tag}")]
    InvalidTag { what: &'static str, tag: u8 },
    #[error("{what}: not valid UTF-8")]
    InvalidUtf8 { what: &'static str },
    #[error("{what}: {reason}")]
    Invalid { what: &'static str, reason: String },
}

impl DecodeError {
    pub fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        DecodeError::Invalid { what, reason: reason.into() }
    }
}

/// A value with one canonical encoding.
pub trait Encode {
    fn encode(&self, w: &mut Writer);

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }
}

/// A value that can be read back from its canonical encoding.
pub trait Decode: Sized {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    /// Decodes a whole buffer of at most `max_len` bytes; trailing bytes are an error.
    fn from_bytes(bytes: &[u8], max_len: usize) -> Result<Self, DecodeError> {
        if bytes.len() > max_len {
            return Err(DecodeError::TooLarge { len: bytes.len(), max: max_len });
        }
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// Appends canonical bytes.
#[derive(Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { bytes: Vec::new() }
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.bytes.push(u8::from(v));
    }
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.bytes.extend_from_slice(&v.to_be_bytes());
    }
    /// Fixed-size bytes, no prefix.
    pub fn raw(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }
    /// Variable-size bytes: `u32` length then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        let len = u32::try_from(v.len()).expect("encoded byte strings are bounded far below 4 GiB");
        self.u32(len);
        self.bytes.extend_from_slice(v);
    }
    /// `u32 len ‖ what `encode` writes`: the bytes of `self.bytes(&value.to_bytes())`, written
    /// in one pass (the length is filled in afterwards) without encoding into a copy first.
    pub fn sized(&mut self, encode: impl FnOnce(&mut Writer)) {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 4]);
        encode(self);
        let len = u32::try_from(self.bytes.len() - at - 4).expect("encoded byte strings are bounded far below 4 GiB");
        self.bytes[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
    /// The bytes written so far, as a slice.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }
    /// Forgets what was written, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
    }
    /// The bytes it can hold without growing.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
    /// The bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    pub fn seq<T: Encode>(&mut self, items: &[T]) {
        let len = u32::try_from(items.len()).expect("encoded sequences are bounded far below 4 Gi items");
        self.u32(len);
        for item in items {
            item.encode(self);
        }
    }
    pub fn option<T: Encode>(&mut self, v: &Option<T>) {
        match v {
            None => self.u8(0),
            Some(value) => {
                self.u8(1);
                value.encode(self);
            }
        }
    }
}

/// Reads canonical bytes, checking every limit.
pub struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, offset: 0 }
    }
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    /// The bytes read since offset `start` (an earlier [`Reader::offset`]).
    pub fn since(&self, start: usize) -> &'a [u8] {
        &self.bytes[start.min(self.offset)..self.offset]
    }
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(DecodeError::TrailingBytes { trailing }),
        }
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd { offset: self.offset, needed: n - self.remaining() });
        }
        let slice = &self.bytes[self.offset..self.offset + n];
        self.offset += n;
        Ok(slice)
    }
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// A length prefix, checked against `max` before anything is allocated.
    pub fn len(&mut self, what: &'static str, max: usize) -> Result<usize, DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::LengthLimit { what, len, max });
        }
        Ok(len)
    }
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.len(what, max)?;
        self.take(len)
    }
    pub fn string(&mut self, what: &'static str, max: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes(what, max)?;
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8 { what })
    }
    pub fn seq<T: Decode>(&mut self, what: &'static str, max: usize) -> Result<Vec<T>, DecodeError> {
        let len = self.len(what, max)?;
        // Each item takes at least one byte: never reserve more than the input could hold.
        let mut items = Vec::with_capacity(len.min(self.remaining()));
        for _ in 0..len {
            items.push(T::decode(self)?);
        }
        Ok(items)
    }
    pub fn option<T: Decode>(&mut self, what: &'static str) -> Result<Option<T>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(self)?)),
            tag => Err(DecodeError::InvalidTag { what, tag }),
        }
    }
}

impl Encode for u64 {
    fn encode(&self, w: &mut Writer) {
        w.u64(*self);
    }
}
impl Decode for u64 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64()
    }
}
impl Encode for u32 {
    fn encode(&self, w: &mut Writer) {
        w.u32(*self);
    }
}
impl Decode for u32 {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u32()
    }
}

/// Strings are length-prefixed UTF-8; the limit is the field's.
impl Encode for String {
    fn encode(&self, w: &mut Writer) {
        w.str(self);
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, w: &mut Writer) {
        self.0.encode(w);
        self.1.encode(w);
    }
}
impl<A: Decode, B: Decode> Decode for (A, B) {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode(r)?, B::decode(r)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_and_limits_are_rejected() {
        let bytes = 7u64.to_bytes();
        assert_eq!(u64::from_bytes(&bytes, 8), Ok(7));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(u64::from_bytes(&longer, 16), Err(DecodeError::TrailingBytes { trailing: 1 }));
        assert_eq!(u64::from_bytes(&bytes, 4), Err(DecodeError::TooLarge { len: 8, max: 4 }));
        assert!(matches!(u64::from_bytes(&bytes[..5], 8), Err(DecodeError::UnexpectedEnd { .. })));
    }

    #[test]
    fn oversized_length_prefix_fails_before_allocating() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        let bytes = w.into_bytes();
        let mut r = Reader::new(&bytes);
        assert!(matches!(r.bytes("field", 64), Err(DecodeError::LengthLimit { len, .. }) if len == u32::MAX as usize));
    }

    #[test]
    fn sized_writes_what_bytes_of_the_encoding_writes() {
        for value in ["", "a", "several words of text"] {
            let mut one_pass = Writer::new();
            one_pass.u8(9);
            one_pass.sized(|w| value.to_owned().encode(w));
            let mut copied = Writer::new();
            copied.u8(9);
            copied.bytes(&value.to_owned().to_bytes());
            assert_eq!(one_pass.into_bytes(), copied.into_bytes());
        }
    }

    #[test]
    fn booleans_and_options_accept_only_their_tags() {
        let mut r = Reader::new(&[2]);
        assert_eq!(r.bool("flag"), Err(DecodeError::InvalidTag { what: "flag", tag: 2 }));
        let mut r = Reader::new(&[3]);
        assert!(matches!(r.option::<u64>("opt"), Err(DecodeError::InvalidTag { tag: 3, .. })));
    }
}
