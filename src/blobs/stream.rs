//! The on-disk blob format: an age-style STREAM construction over AES-256-GCM.
//!
//! A file is a 61-byte header — magic `ILBLOB\0\x01`, format version (1), KEK generation
//! (u32 BE, informational: which master key wrapped the data key when the file was
//! written), owner id, object id, a random 16-byte nonce — followed by chunks of at most
//! 64 KiB of plaintext, each sealed with its 16-byte tag. The file key is
//! HKDF-SHA256(ikm = member data key, salt = nonce, info = version ‖ object id); chunk `i`
//! uses the nonce `i` (11 bytes big-endian) ‖ last-chunk flag, and the whole header is the
//! associated data of every chunk.
//!
//! Invariants: the writer buffers one chunk, never the file, and only the final chunk
//! carries the last flag; the final chunk is empty only for an empty plaintext. The reader
//! never hands out a byte that did not authenticate and turns truncation, trailing data,
//! reordered or duplicated chunks, bit flips, a header naming another owner or object, and a
//! wrong data key into [`BlobError::Integrity`] (carried inside the `io::Error` of `read`).

use std::io::{self, Read, Write};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::keyring::DataKey;
use super::BlobError;
use crate::ids::{BlobId, UserId};

/// File magic: identifies an image-layered blob.
const MAGIC: &[u8; 8] = b"ILBLOB\x00\x01";
/// Format version, also bound into the file key.
const VERSION: u8 = 1;
/// Header length: magic, version, generation, owner, object, nonce.
pub(crate) const HEADER_LEN: usize = 8 + 1 + 4 + 16 + 16 + 16;
/// Plaintext bytes per chunk.
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// A full chunk as stored.
const SEALED_CHUNK: usize = CHUNK_SIZE + TAG_LEN;

fn header_bytes(
    generation: u32,
    owner: UserId,
    object: BlobId,
    nonce: &[u8; 16],
) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8] = VERSION;
    h[9..13].copy_from_slice(&generation.to_be_bytes());
    h[13..29].copy_from_slice(owner.as_bytes());
    h[29..45].copy_from_slice(object.as_bytes());
    h[45..61].copy_from_slice(nonce);
    h
}

/// The per-file AES-256-GCM cipher derived from the member's data key.
fn file_cipher(key: &DataKey, nonce: &[u8], object: BlobId) -> Aes256Gcm {
    let mut info = [0u8; 17];
    info[0] = VERSION;
    info[1..].copy_from_slice(object.as_bytes());
    let mut okm = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(nonce), key.expose())
        .expand(&info, okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Aes256Gcm::new(okm.as_ref().into())
}

fn chunk_nonce(counter: u64, last: bool) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    n.into()
}

fn integrity(msg: impl Into<String>) -> BlobError {
    BlobError::Integrity(msg.into())
}

/// Encrypts a plaintext stream into the blob format. Call [`EncryptWriter::finish`] to
/// write the final chunk; a writer dropped without it leaves a file the reader rejects.
pub struct EncryptWriter<W: Write> {
    inner: W,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    /// Plaintext of the pending chunk; sealed in place, so capacity covers the tag too.
    buf: Vec<u8>,
    counter: u64,
    /// Set while a chunk is being written; a failed write leaves the stream unusable.
    poisoned: bool,
}

impl<W: Write> EncryptWriter<W> {
    /// Writes the header for `(owner, object)` and returns a writer for the plaintext.
    /// `kek_generation` is recorded in the header for diagnostics only.
    pub fn new(
        mut inner: W,
        key: &DataKey,
        kek_generation: u32,
        owner: UserId,
        object: BlobId,
    ) -> io::Result<Self> {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let header = header_bytes(kek_generation, owner, object, &nonce);
        inner.write_all(&header)?;
        Ok(Self {
            inner,
            cipher: file_cipher(key, &nonce, object),
            header,
            buf: Vec::with_capacity(SEALED_CHUNK),
            counter: 0,
            poisoned: false,
        })
    }

    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other("blob writer failed earlier"));
        }
        self.poisoned = true;
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                &chunk_nonce(self.counter, last),
                &self.header,
                &mut self.buf,
            )
            .map_err(|_| io::Error::other("chunk encryption failed"))?;
        self.buf.extend_from_slice(&tag);
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| io::Error::other("blob too large"))?;
        self.poisoned = false;
        Ok(())
    }

    /// Seals the final chunk, flushes and returns the inner writer (not synced to disk).
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for EncryptWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data arrives, so it is known not to be last.
        if self.buf.len() == CHUNK_SIZE {
            self.seal_chunk(false)?;
        }
        let n = data.len().min(CHUNK_SIZE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Flushes the inner writer; the pending chunk stays buffered until more data or
    /// `finish`.
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum ReadState {
    Reading,
    Done,
    Integrity(String),
    IoFailed,
}

/// Decrypts a blob stream, one chunk at a time, verifying each chunk before any of its
/// bytes are returned.
pub struct DecryptReader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    header: [u8; HEADER_LEN],
    generation: u32,
    counter: u64,
    /// Sealed chunk, decrypted in place; `buf[pos..end]` is plaintext not yet returned.
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// The byte read to learn that a full chunk was not the last one.
    carry: Option<u8>,
    state: ReadState,
}

impl<R: Read> DecryptReader<R> {
    /// Reads and checks the header: it must be a version-1 blob of `owner`'s `object`.
    pub fn new(
        mut inner: R,
        key: &DataKey,
        owner: UserId,
        object: BlobId,
    ) -> Result<Self, BlobError> {
        let mut header = [0u8; HEADER_LEN];
        if read_full(&mut inner, &mut header)? < HEADER_LEN {
            return Err(integrity("truncated header"));
        }
        if &header[..8] != MAGIC {
            return Err(integrity("not a blob file (bad magic)"));
        }
        if header[8] != VERSION {
            return Err(integrity(format!(
                "unsupported format version {}",
                header[8]
            )));
        }
        if &header[13..29] != owner.as_bytes() || &header[29..45] != object.as_bytes() {
            return Err(integrity("header names another owner or object"));
        }
        let generation = u32::from_be_bytes([header[9], header[10], header[11], header[12]]);
        Ok(Self {
            cipher: file_cipher(key, &header[45..61], object),
            inner,
            header,
            generation,
            counter: 0,
            buf: vec![0u8; SEALED_CHUNK],
            pos: 0,
            end: 0,
            carry: None,
            state: ReadState::Reading,
        })
    }

    /// The KEK generation recorded in the header when the blob was written.
    pub fn kek_generation(&self) -> u32 {
        self.generation
    }

    /// Reads, authenticates and decrypts the next chunk into `buf`.
    fn next_chunk(&mut self) -> Result<(), BlobError> {
        let mut n = 0;
        if let Some(b) = self.carry.take() {
            self.buf[0] = b;
            n = 1;
        }
        n += read_full(&mut self.inner, &mut self.buf[n..])?;
        let last = if n < SEALED_CHUNK {
            true
        } else {
            let mut one = [0u8; 1];
            match read_full(&mut self.inner, &mut one)? {
                0 => true,
                _ => {
                    self.carry = Some(one[0]);
                    false
                }
            }
        };
        if n < TAG_LEN {
            return Err(integrity(format!("chunk {} is truncated", self.counter)));
        }
        let (body, tag) = self.buf[..n].split_at_mut(n - TAG_LEN);
        self.cipher
            .decrypt_in_place_detached(
                &chunk_nonce(self.counter, last),
                &self.header,
                body,
                Tag::from_slice(tag),
            )
            .map_err(|_| {
                integrity(format!(
                    "chunk {} failed authentication (wrong key, or the file is corrupted, \
                     truncated, reordered or extended)",
                    self.counter
                ))
            })?;
        if last && body.is_empty() && self.counter > 0 {
            return Err(integrity("empty final chunk"));
        }
        self.pos = 0;
        self.end = n - TAG_LEN;
        self.counter += 1;
        if last {
            self.state = ReadState::Done;
        }
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.end {
                let n = out.len().min(self.end - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            match &self.state {
                ReadState::Done => return Ok(0),
                ReadState::Integrity(msg) => return Err(integrity(msg.clone()).into_io()),
                ReadState::IoFailed => return Err(io::Error::other("blob reader failed earlier")),
                ReadState::Reading => {}
            }
            if out.is_empty() {
                return Ok(0);
            }
            if let Err(e) = self.next_chunk() {
                self.pos = 0;
                self.end = 0;
                self.buf.fill(0);
                self.state = match &e {
                    BlobError::Integrity(msg) => ReadState::Integrity(msg.clone()),
                    _ => ReadState::IoFailed,
                };
                return Err(e.into_io());
            }
        }
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ctx {
        key: DataKey,
        owner: UserId,
        object: BlobId,
    }

    fn ctx() -> Ctx {
        Ctx {
            key: DataKey::generate(),
            owner: UserId::new(),
            object: BlobId::new(),
        }
    }

    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    /// Encrypts `pt`, writing it in pieces of `piece` bytes.
    fn encrypt(c: &Ctx, pt: &[u8], piece: usize) -> Vec<u8> {
        let mut w = EncryptWriter::new(Vec::new(), &c.key, 7, c.owner, c.object).unwrap();
        for part in pt.chunks(piece.max(1)) {
            w.write_all(part).unwrap();
        }
        w.finish().unwrap()
    }

    fn decrypt_as(
        key: &DataKey,
        owner: UserId,
        object: BlobId,
        file: &[u8],
    ) -> Result<Vec<u8>, BlobError> {
        let mut r = DecryptReader::new(file, key, owner, object)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out).map_err(BlobError::from_io)?;
        Ok(out)
    }

    fn decrypt(c: &Ctx, file: &[u8]) -> Result<Vec<u8>, BlobError> {
        decrypt_as(&c.key, c.owner, c.object, file)
    }

    fn assert_integrity(r: Result<Vec<u8>, BlobError>, what: &str) {
        match r {
            Err(BlobError::Integrity(_)) => {}
            other => panic!(
                "{what}: expected an integrity error, got {:?}",
                other.map(|v| v.len())
            ),
        }
    }

    /// Byte range of sealed chunk `i` in a file.
    fn chunk(i: usize) -> std::ops::Range<usize> {
        HEADER_LEN + i * SEALED_CHUNK..HEADER_LEN + (i + 1) * SEALED_CHUNK
    }

    const SIZES: [usize; 7] = [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        2 * CHUNK_SIZE + 7,
        3 * CHUNK_SIZE,
    ];

    #[test]
    fn round_trips_at_chunk_boundaries() {
        let c = ctx();
        for len in SIZES {
            let pt = plaintext(len);
            for piece in [len.max(1), 7_000, CHUNK_SIZE] {
                let file = encrypt(&c, &pt, piece);
                let chunks = len.div_ceil(CHUNK_SIZE).max(1);
                assert_eq!(file.len(), HEADER_LEN + len + chunks * TAG_LEN, "len {len}");
                assert_eq!(decrypt(&c, &file).unwrap(), pt, "len {len} piece {piece}");
            }
            // Small reads through the streaming reader.
            let file = encrypt(&c, &pt, len.max(1));
            let mut r = DecryptReader::new(&file[..], &c.key, c.owner, c.object).unwrap();
            assert_eq!(r.kek_generation(), 7);
            let (mut out, mut buf) = (Vec::new(), [0u8; 1000]);
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, pt);
        }
    }

    #[test]
    fn same_plaintext_encrypts_differently() {
        let c = ctx();
        let pt = plaintext(100);
        assert_ne!(encrypt(&c, &pt, 100), encrypt(&c, &pt, 100));
    }

    #[test]
    fn chunk_nonce_layout() {
        let n = chunk_nonce(0x0102, true);
        assert_eq!(n.as_slice(), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_eq!(chunk_nonce(0, false).as_slice(), &[0u8; 12]);
    }

    #[test]
    fn bit_flips_anywhere_are_detected() {
        let c = ctx();
        for len in [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 7] {
            let file = encrypt(&c, &plaintext(len), CHUNK_SIZE);
            // Every header byte (magic, version, generation, owner, object, nonce), the first
            // and last body bytes, and the tag bytes at the end.
            let mut positions: Vec<usize> = (0..HEADER_LEN).collect();
            positions.extend([
                HEADER_LEN,
                file.len() / 2,
                file.len() - TAG_LEN - 1,
                file.len() - 1,
            ]);
            if len > CHUNK_SIZE {
                positions.extend([chunk(0).end - 1, chunk(0).end - TAG_LEN, chunk(1).start]);
            }
            for pos in positions {
                let mut bad = file.clone();
                bad[pos] ^= 0x01;
                assert_integrity(decrypt(&c, &bad), &format!("len {len} flip at {pos}"));
            }
        }
    }

    #[test]
    fn truncation_is_detected() {
        let c = ctx();
        for len in [1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE] {
            let file = encrypt(&c, &plaintext(len), CHUNK_SIZE);
            let mut cuts = vec![
                0,
                10,
                HEADER_LEN,
                HEADER_LEN + 1,
                HEADER_LEN + TAG_LEN,
                file.len() - 1,
            ];
            // At each chunk boundary, and mid-chunk.
            for i in 0..len / CHUNK_SIZE {
                cuts.extend([chunk(i).end, chunk(i).start + 100]);
            }
            for cut in cuts.into_iter().filter(|&c| c < file.len()) {
                assert_integrity(
                    decrypt(&c, &file[..cut]),
                    &format!("len {len} cut at {cut}"),
                );
            }
        }
    }

    #[test]
    fn reordered_duplicated_and_appended_chunks_are_detected() {
        let c = ctx();
        let file = encrypt(&c, &plaintext(3 * CHUNK_SIZE + 1), CHUNK_SIZE);
        let head = &file[..HEADER_LEN];
        let ch = |i: usize| &file[chunk(i)];
        let last = &file[chunk(3).start..];

        let swapped = [head, ch(1), ch(0), ch(2), last].concat();
        assert_integrity(decrypt(&c, &swapped), "swap 0/1");
        let duplicated = [head, ch(0), ch(0), ch(1), ch(2), last].concat();
        assert_integrity(decrypt(&c, &duplicated), "duplicate 0");
        let dropped = [head, ch(0), ch(2), last].concat();
        assert_integrity(decrypt(&c, &dropped), "drop 1");
        let appended = [&file[..], ch(1)].concat();
        assert_integrity(decrypt(&c, &appended), "append chunk");
        let trailing = [&file[..], &[0u8][..]].concat();
        assert_integrity(decrypt(&c, &trailing), "append byte");
        let last_dropped = &file[..chunk(2).end];
        assert_integrity(decrypt(&c, last_dropped), "drop last");

        // A full last chunk followed by more data, and an empty file extended.
        let full = encrypt(&c, &plaintext(2 * CHUNK_SIZE), CHUNK_SIZE);
        assert_integrity(
            decrypt(&c, &[&full[..], &full[chunk(0)]].concat()),
            "full last + chunk",
        );
        let empty = encrypt(&c, &[], 1);
        assert_integrity(
            decrypt(&c, &[&empty[..], &empty[HEADER_LEN..]].concat()),
            "empty + chunk",
        );
    }

    #[test]
    fn wrong_key_owner_object_or_header_is_detected() {
        let c = ctx();
        let pt = plaintext(CHUNK_SIZE + 5);
        let file = encrypt(&c, &pt, CHUNK_SIZE);
        let other = DataKey::generate();
        assert_integrity(decrypt_as(&other, c.owner, c.object, &file), "wrong key");
        assert_integrity(
            decrypt_as(&c.key, UserId::new(), c.object, &file),
            "wrong owner",
        );
        assert_integrity(
            decrypt_as(&c.key, c.owner, BlobId::new(), &file),
            "wrong object",
        );

        // Another file's header (same owner and object, other nonce) on this body.
        let file2 = encrypt(&c, &pt, CHUNK_SIZE);
        let spliced = [&file2[..HEADER_LEN], &file[HEADER_LEN..]].concat();
        assert_integrity(decrypt(&c, &spliced), "spliced header");

        // A file of another member, header rewritten to name this member: key differs.
        let m = Ctx {
            key: DataKey::generate(),
            owner: UserId::new(),
            object: c.object,
        };
        let mut foreign = encrypt(&m, &pt, CHUNK_SIZE);
        foreign[13..29].copy_from_slice(c.owner.as_bytes());
        assert_integrity(decrypt(&c, &foreign), "cross-member swap");
        assert_integrity(
            decrypt(
                &c,
                b"\x89PNG\r\n\x1a\n not a blob at all, just some bytes of text......",
            ),
            "magic",
        );
    }

    #[test]
    fn reader_stays_failed_and_never_returns_unauthenticated_bytes() {
        let c = ctx();
        let pt = plaintext(2 * CHUNK_SIZE + 10);
        let mut file = encrypt(&c, &pt, CHUNK_SIZE);
        file[chunk(1).start + 3] ^= 0x80;
        let mut r = DecryptReader::new(&file[..], &c.key, c.owner, c.object).unwrap();
        let mut out = vec![0u8; 3 * CHUNK_SIZE];
        let mut got = 0;
        let err = loop {
            match r.read(&mut out[got..]) {
                Ok(0) => panic!("corruption not detected"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        // Only the authentic first chunk was handed out.
        assert_eq!(&out[..got], &pt[..CHUNK_SIZE]);
        assert!(matches!(BlobError::from_io(err), BlobError::Integrity(_)));
        let again = r.read(&mut out).unwrap_err();
        assert!(matches!(BlobError::from_io(again), BlobError::Integrity(_)));
    }

    #[test]
    fn empty_final_chunk_after_data_is_rejected() {
        // Authentic but non-canonical: a full chunk sealed as not-last, then an empty last one.
        let c = ctx();
        let pt = plaintext(CHUNK_SIZE);
        let mut w = EncryptWriter::new(Vec::new(), &c.key, 1, c.owner, c.object).unwrap();
        w.write_all(&pt).unwrap();
        w.seal_chunk(false).unwrap();
        let file = w.finish().unwrap();
        assert_eq!(file.len(), HEADER_LEN + SEALED_CHUNK + TAG_LEN);
        assert_integrity(decrypt(&c, &file), "empty final chunk");
    }

    #[test]
    fn unfinished_writer_leaves_an_invalid_file() {
        let c = ctx();
        let mut file = Vec::new();
        {
            let mut w = EncryptWriter::new(&mut file, &c.key, 1, c.owner, c.object).unwrap();
            w.write_all(&plaintext(2 * CHUNK_SIZE + 1)).unwrap();
        }
        assert_integrity(decrypt(&c, &file), "no finish");
    }
}
