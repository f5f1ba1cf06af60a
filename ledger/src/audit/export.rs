//! The export file (docs/FORMAT.md, "Proofs and exports").
//!
//! ```text
//! Export = "PLAZA-EXPORT" ‖ version: u16 (= 3) ‖ Frame* ‖ End frame
//! Frame  = kind: u8 ‖ length: u32 ‖ payload (length bytes)
//!   1 Genesis     Genesis                                   first, exactly once
//!   2 Checkpoint  BlockHeader ‖ Certificate ‖ seq<u64> (suffix views) ‖ ValidatorSet ‖ bytes (state snapshot)
//!                                                           optional, right after genesis
//!   3 Block       BlockEntry = FinalizedBlock ‖ seq<Receipt> ‖ option<Statement>
//!   4 End         blocks: u64 ‖ checksum: Hash              last; nothing may follow
//! checksum = H("plaza/export/v1\0" ‖ every byte of the file before the End frame)
//! ```
//!
//! Every frame has a size limit checked before anything is allocated; a file that ends early,
//! carries an unknown frame kind, exceeds a limit, has bytes after the End frame or a wrong
//! checksum is rejected with the byte offset where it went wrong.

use std::io::{self, Read, Write};

use crate::audit::verify::{Checkpoint, Source, Start};
use crate::audit::{BlockEntry, Check, Failure};
use crate::block::{BlockHeader, FinalizedBlock, RECORDS_PER_BLOCK_MAX};
use crate::cert::{Certificate, ValidatorSet};
use crate::codec::{Decode, DecodeError, Encode, Reader, Writer};
use crate::contract::{State, Statement};
use crate::genesis::{Genesis, GENESIS_BYTES_MAX};
use crate::hash::Hash;
use crate::receipt::Receipt;

pub const MAGIC: &[u8; 12] = b"PLAZA-EXPORT";
/// 2: headers carry the epoch and the next validator set's hash, votes the epoch, and an
/// epoch-ending block its next set and suffix views (1: before epochs). 3: the state roots its
/// headers carry hash the tables' inner nodes with a keyed hash. Older versions are not read.
pub const VERSION: u16 = 3;
pub const CHECKSUM_DOMAIN: &[u8] = b"plaza/export/v1\0";
/// A block frame: a full block (16 MiB), its receipts and its statement.
pub const FRAME_BYTES_MAX: usize = 256 * 1024 * 1024;
/// A checkpoint frame, mostly the state snapshot.
pub const CHECKPOINT_BYTES_MAX: usize = 1024 * 1024 * 1024;

const KIND_GENESIS: u8 = 1;
const KIND_CHECKPOINT: u8 = 2;
const KIND_BLOCK: u8 = 3;
const KIND_END: u8 = 4;

impl Encode for BlockEntry {
    fn encode(&self, w: &mut Writer) {
        self.block.encode(w);
        w.seq(&self.receipts);
        w.option(&self.statement);
    }
}
impl Decode for BlockEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let block = FinalizedBlock::decode(r)?;
        let receipts: Vec<Receipt> = r.seq("receipts", RECORDS_PER_BLOCK_MAX)?;
        let statement: Option<Statement> = r.option("statement")?;
        Ok(BlockEntry { block, receipts, statement })
    }
}

impl Encode for Checkpoint {
    fn encode(&self, w: &mut Writer) {
        self.header.encode(w);
        self.certificate.encode(w);
        w.seq(&self.suffix);
        self.validators.encode(w);
        w.bytes(&self.state.to_bytes());
    }
}
impl Decode for Checkpoint {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode(r)?;
        let certificate = Certificate::decode(r)?;
        let suffix: Vec<u64> = r.seq("suffix views", crate::cert::SUFFIX_VIEWS_MAX)?;
        let validators = ValidatorSet::decode(r)?;
        let snapshot = r.bytes("state snapshot", CHECKPOINT_BYTES_MAX)?;
        let state = State::decode_snapshot(snapshot)?;
        Ok(Checkpoint { header, certificate, suffix, validators, state })
    }
}

/// Writes everything it is given to `inner` and into the running checksum.
struct Hashing<W> {
    inner: W,
    hasher: blake3::Hasher,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        Ok(())
    }
    fn frame(&mut self, kind: u8, payload: &[u8]) -> io::Result<()> {
        let len = u32::try_from(payload.len()).map_err(|_| io::Error::other("an export frame is at most 4 GiB"))?;
        self.put(&[kind])?;
        self.put(&len.to_be_bytes())?;
        self.put(payload)
    }
}

/// Streams an export: genesis (and a checkpoint), then blocks in height order, then `finish`.
pub struct ExportWriter<W: Write> {
    out: Hashing<W>,
    blocks: u64,
}

impl<W: Write> ExportWriter<W> {
    pub fn new(inner: W, genesis: &Genesis, checkpoint: Option<&Checkpoint>) -> io::Result<ExportWriter<W>> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(CHECKSUM_DOMAIN);
        let mut out = Hashing { inner, hasher, bytes: 0 };
        out.put(MAGIC)?;
        out.put(&VERSION.to_be_bytes())?;
        out.frame(KIND_GENESIS, &genesis.to_bytes())?;
        if let Some(c) = checkpoint {
            let bytes = c.to_bytes();
            if bytes.len() > CHECKPOINT_BYTES_MAX {
                return Err(io::Error::other(format!("the checkpoint is {} bytes, the limit is {CHECKPOINT_BYTES_MAX}", bytes.len())));
            }
            out.frame(KIND_CHECKPOINT, &bytes)?;
        }
        Ok(ExportWriter { out, blocks: 0 })
    }

    pub fn write_block(&mut self, entry: &BlockEntry) -> io::Result<()> {
        let bytes = entry.to_bytes();
        if bytes.len() > FRAME_BYTES_MAX {
            return Err(io::Error::other(format!(
                "block {} encodes to {} bytes, the limit is {FRAME_BYTES_MAX}",
                entry.block.block.header.height,
                bytes.len()
            )));
        }
        self.out.frame(KIND_BLOCK, &bytes)?;
        self.blocks += 1;
        Ok(())
    }

    /// Writes the End frame and returns the inner writer (flushed).
    pub fn finish(self) -> io::Result<W> {
        let Hashing { mut inner, hasher, .. } = self.out;
        let mut payload = self.blocks.to_be_bytes().to_vec();
        payload.extend_from_slice(hasher.finalize().as_bytes());
        inner.write_all(&[KIND_END])?;
        inner.write_all(&(payload.len() as u32).to_be_bytes())?;
        inner.write_all(&payload)?;
        inner.flush()?;
        Ok(inner)
    }
}

/// Reads an export frame by frame. `open` reads the header, the genesis and the checkpoint;
/// iterating yields the block frames (undecoded: the verifier decodes them in parallel) and
/// checks the End frame, the checksum and that nothing follows.
pub struct ExportReader<R: Read> {
    frames: Frames<R>,
    genesis: Genesis,
    checkpoint: Option<Checkpoint>,
    /// A frame read ahead while looking for the checkpoint.
    peeked: Option<(u8, Vec<u8>, u64)>,
    blocks: u64,
    done: bool,
}

fn file_failure(item: String, expected: impl Into<String>, found: impl Into<String>) -> Failure {
    Failure::new(Check::File, None, item, expected, found)
}

/// The byte level: exact reads with offsets, frames with limits, the running checksum.
struct Frames<R> {
    input: R,
    hasher: blake3::Hasher,
    offset: u64,
}

impl<R: Read> Frames<R> {
    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), Failure> {
        let at = self.offset;
        let mut filled = 0;
        while filled < buf.len() {
            match self.input.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(file_failure(
                        format!("export byte {}", at + filled as u64),
                        format!("{} more bytes of {what}", buf.len() - filled),
                        "the end of the file: the export is truncated",
                    ));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(file_failure(format!("export byte {}", at + filled as u64), "readable bytes", e.to_string())),
            }
        }
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// Reads one frame, hashing everything but an End frame. Returns (kind, payload, offset).
    fn frame(&mut self) -> Result<(u8, Vec<u8>, u64), Failure> {
        let at = self.offset;
        let mut head = [0u8; 5];
        self.read_exact(&mut head, "a frame header")?;
        let kind = head[0];
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let max = match kind {
            KIND_GENESIS => GENESIS_BYTES_MAX,
            KIND_CHECKPOINT => CHECKPOINT_BYTES_MAX,
            KIND_BLOCK => FRAME_BYTES_MAX,
            KIND_END => 40,
            other => {
                return Err(file_failure(format!("export byte {at}"), "a frame of kind 1 to 4", format!("kind {other}: garbage or a newer format")));
            }
        };
        if len > max {
            return Err(file_failure(format!("frame at export byte {at}"), format!("at most {max} bytes"), format!("a length of {len} bytes")));
        }
        let mut payload = vec![0u8; len];
        self.read_exact(&mut payload, "a frame")?;
        if kind != KIND_END {
            self.hasher.update(&head);
            self.hasher.update(&payload);
        }
        Ok((kind, payload, at))
    }
}

impl<R: Read> ExportReader<R> {
    pub fn open(input: R) -> Result<ExportReader<R>, Failure> {
        let mut hasher = blake3::Hasher::new();
        hasher.update(CHECKSUM_DOMAIN);
        let mut frames = Frames { input, hasher, offset: 0 };
        let mut magic = [0u8; 12];
        frames.read_exact(&mut magic, "the export header")?;
        if &magic != MAGIC {
            return Err(file_failure("export byte 0".into(), "the magic bytes PLAZA-EXPORT", format!("{:?}: not a Plaza export", String::from_utf8_lossy(&magic))));
        }
        let mut version = [0u8; 2];
        frames.read_exact(&mut version, "the export version")?;
        frames.hasher.update(&magic);
        frames.hasher.update(&version);
        let version = u16::from_be_bytes(version);
        if version != VERSION {
            return Err(file_failure("export byte 12".into(), format!("format version {VERSION}"), format!("version {version}, which this plaza cannot read")));
        }
        let (kind, payload, at) = frames.frame()?;
        if kind != KIND_GENESIS {
            return Err(file_failure(format!("export byte {at}"), "the genesis frame", format!("a frame of kind {kind}")));
        }
        let genesis = Genesis::from_bytes(&payload, GENESIS_BYTES_MAX)
            .map_err(|e| file_failure(format!("genesis frame at export byte {at}"), "a valid genesis", e.to_string()))?;
        let mut reader = ExportReader { frames, genesis, checkpoint: None, peeked: None, blocks: 0, done: false };
        let next = reader.frames.frame()?;
        if next.0 == KIND_CHECKPOINT {
            let checkpoint = Checkpoint::from_bytes(&next.1, CHECKPOINT_BYTES_MAX)
                .map_err(|e| file_failure(format!("checkpoint frame at export byte {}", next.2), "a valid checkpoint", e.to_string()))?;
            reader.checkpoint = Some(checkpoint);
        } else {
            reader.peeked = Some(next);
        }
        Ok(reader)
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Where verification starts; takes the checkpoint out of the reader.
    pub fn take_start(&mut self) -> Start {
        match self.checkpoint.take() {
            Some(c) => Start::Checkpoint(Box::new(c)),
            None => Start::Genesis,
        }
    }

    /// The checkpoint, if the export starts from one.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref()
    }

    fn next_frame(&mut self) -> Result<(u8, Vec<u8>, u64), Failure> {
        match self.peeked.take() {
            Some(f) => Ok(f),
            None => self.frames.frame(),
        }
    }

    /// Checks the End frame: block count, checksum, nothing after it.
    fn end(&mut self, payload: &[u8], at: u64) -> Result<(), Failure> {
        if payload.len() != 40 {
            return Err(file_failure(format!("end frame at export byte {at}"), "40 bytes", format!("{} bytes", payload.len())));
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&payload[..8]);
        let count = u64::from_be_bytes(count);
        if count != self.blocks {
            return Err(file_failure(format!("end frame at export byte {at}"), format!("{} blocks (as counted)", self.blocks), format!("{count} blocks announced")));
        }
        let computed = Hash(*self.frames.hasher.finalize().as_bytes());
        let mut stored = [0u8; 32];
        stored.copy_from_slice(&payload[8..]);
        if computed != Hash(stored) {
            return Err(file_failure("export checksum".into(), format!("{computed} (computed over the file)"), format!("{} (stored): the file was altered", Hash(stored))));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.frames.input.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    return Err(file_failure(format!("export byte {}", self.frames.offset), "the end of the file after the end frame", "more bytes"));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(file_failure(format!("export byte {}", self.frames.offset), "readable bytes", e.to_string())),
            }
        }
    }

    /// Reads the next block frame's bytes; `None` after a valid End frame.
    pub fn next_block_bytes(&mut self) -> Option<Result<(Vec<u8>, u64), Failure>> {
        if self.done {
            return None;
        }
        let result = self.next_frame().and_then(|(kind, payload, at)| match kind {
            KIND_BLOCK => {
                self.blocks += 1;
                Ok(Some((payload, at)))
            }
            KIND_END => self.end(&payload, at).map(|()| None),
            other => Err(file_failure(format!("export byte {at}"), "a block or end frame", format!("a frame of kind {other} out of place"))),
        });
        match result {
            Ok(Some(block)) => Some(Ok(block)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(f) => {
                self.done = true;
                Some(Err(f))
            }
        }
    }

    /// Reads the whole rest of the file without decoding blocks: structure, limits, checksum.
    /// Returns the number of blocks. Cheap next to verification (no signatures).
    pub fn check_integrity(mut self) -> Result<u64, Failure> {
        while let Some(item) = self.next_block_bytes() {
            item?;
        }
        Ok(self.blocks)
    }
}

impl<R: Read> Iterator for ExportReader<R> {
    type Item = Result<Source, Failure>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_block_bytes().map(|item| item.map(|(bytes, at)| Source::Encoded { bytes, at: format!("block frame at export byte {at}") }))
    }
}

/// Decodes every block of an export (for tools that want entries rather than verification).
pub fn read_entries<R: Read>(reader: &mut ExportReader<R>) -> Result<Vec<BlockEntry>, Failure> {
    let mut out = Vec::new();
    while let Some(item) = reader.next_block_bytes() {
        let (bytes, at) = item?;
        out.push(
            BlockEntry::from_bytes(&bytes, FRAME_BYTES_MAX)
                .map_err(|e| file_failure(format!("block frame at export byte {at}"), "a block entry", e.to_string()))?,
        );
    }
    Ok(out)
}
