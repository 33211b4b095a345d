//! The whole store as one stream of records, for backups: [`Store::dump`] writes every tree
//! while no transaction can commit (so the dump is one consistent state: a transaction is
//! in it whole or not at all) and calls back, still inside, so the caller can pin what the
//! dump refers to; [`load`] writes a dump into a new store. Values are written as stored:
//! sealed fields stay sealed, data keys stay wrapped by the master key.
//!
//! The format: `b"ILDUMP1\n"`, then per tree `b'T'`, a length-prefixed name, and per record
//! `b'K'`, a length-prefixed key and value (lengths u32 big-endian), and `b'E'` at the end.

use std::io::{self, Read, Write};
use std::path::Path;

use super::{Result, Store, StoreError};

const MAGIC: &[u8] = b"ILDUMP1\n";

/// What a dump held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpStats {
    pub trees: u64,
    pub records: u64,
}

fn put(out: &mut impl Write, tag: u8, parts: &[&[u8]]) -> io::Result<()> {
    out.write_all(&[tag])?;
    for p in parts {
        let len = u32::try_from(p.len()).map_err(io::Error::other)?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(p)?;
    }
    Ok(())
}

fn get(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    let mut buf = Vec::new();
    // read what is there rather than trusting the length with an allocation
    input.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "dump ends early",
        ));
    }
    Ok(buf)
}

fn io_err(e: io::Error) -> StoreError {
    StoreError::Corrupt {
        tree: "dump",
        reason: e.to_string(),
    }
}

impl Store {
    /// Writes every tree to `out` while transactions wait, then runs `pin` (still inside).
    pub fn dump<T>(&self, out: &mut impl Write, pin: impl FnOnce() -> T) -> Result<(DumpStats, T)> {
        let _gate = self.gate.write().unwrap_or_else(|e| e.into_inner());
        let mut stats = DumpStats::default();
        out.write_all(MAGIC).map_err(io_err)?;
        for name in self.db.tree_names() {
            let tree = self.db.open_tree(&name)?;
            put(out, b'T', &[&name]).map_err(io_err)?;
            stats.trees += 1;
            for kv in tree.iter() {
                let (k, v) = kv?;
                put(out, b'K', &[&k, &v]).map_err(io_err)?;
                stats.records += 1;
            }
        }
        out.write_all(b"E").map_err(io_err)?;
        Ok((stats, pin()))
    }
}

/// Writes the dump in `input` into a new store at `dir` (which must not hold one), flushed.
pub fn load(input: &mut impl Read, dir: &Path) -> Result<DumpStats> {
    if dir.exists() {
        return Err(StoreError::Conflict(format!(
            "{} already exists; restore only into a fresh data dir",
            dir.display()
        )));
    }
    let mut magic = [0u8; MAGIC.len()];
    input.read_exact(&mut magic).map_err(io_err)?;
    if magic != MAGIC {
        return Err(io_err(io::Error::other("not an image-layered store dump")));
    }
    let db = sled::Config::new().path(dir).open()?;
    let mut stats = DumpStats::default();
    let mut tree: Option<sled::Tree> = None;
    loop {
        let mut tag = [0u8; 1];
        input.read_exact(&mut tag).map_err(io_err)?;
        match tag[0] {
            b'T' => {
                let name = get(input).map_err(io_err)?;
                tree = Some(db.open_tree(name)?);
                stats.trees += 1;
            }
            b'K' => {
                let (k, v) = (get(input).map_err(io_err)?, get(input).map_err(io_err)?);
                let Some(t) = &tree else {
                    return Err(io_err(io::Error::other("a record before any tree")));
                };
                t.insert(k, v)?;
                stats.records += 1;
            }
            b'E' => break,
            other => {
                return Err(io_err(io::Error::other(format!(
                    "unexpected tag {other:#x} in dump"
                ))))
            }
        }
    }
    db.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_loads_into_a_new_store_record_for_record() {
        let (_d, store) = crate::store::temp_store();
        store.meta.insert(b"k1", b"v1".as_slice()).unwrap();
        store.images.insert(b"img", vec![7u8; 100_000]).unwrap();
        let mut buf = Vec::new();
        let (stats, pinned) = store.dump(&mut buf, || 42).unwrap();
        assert_eq!(pinned, 42);
        assert!(stats.records >= 3, "{stats:?}");

        let dir = tempfile::tempdir().unwrap();
        let loaded = load(&mut buf.as_slice(), &dir.path().join("db")).unwrap();
        assert_eq!(loaded, stats);
        let back = Store::open(&dir.path().join("db"), &Default::default()).unwrap();
        assert_eq!(back.meta.get(b"k1").unwrap().unwrap(), b"v1".as_slice());
        assert_eq!(back.images.get(b"img").unwrap().unwrap().len(), 100_000);

        // loading twice, or a damaged dump, is refused
        assert!(load(&mut buf.as_slice(), &dir.path().join("db")).is_err());
        let cut = &buf[..buf.len() - 10];
        assert!(load(&mut &cut[..], &dir.path().join("db2")).is_err());
    }
}
