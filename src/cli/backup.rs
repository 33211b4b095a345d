//! `backup --out FILE` and `restore --from FILE` (the archive is `crate::backup`'s). A
//! backup of a stopped studio opens the store itself; while `serve` holds the store it asks
//! the running studio through its control socket, `<data_dir>/control.sock` (mode 0600, so
//! only the service's user, or root, can ask), which streams the archive back. The file is
//! written to `FILE.partial`, fsynced and renamed, so an interrupted backup never leaves a
//! file that looks whole. `restore` fills a fresh data dir; the master key goes back in place
//! separately (a backup never holds it).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::CliError;
use crate::app::{open_store, require_store, App, StartError};
use crate::backup::{self, Manifest};
use crate::config::Config;
use crate::store::StoreError;

/// The control socket of a data dir.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// The request line that asks for a backup.
const BACKUP: &str = "backup\n";

/// Serves the control socket of `app` until the process ends: each connection that sends
/// `backup` gets `+` and the archive, or `-` and the reason.
pub fn listen(app: Arc<App>) -> Result<(), CliError> {
    let path = socket_path(&app.config.server.data_dir);
    // a socket left by a killed process; we hold the store, so no other studio uses it
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| CliError::runtime(format!("cannot create {}: {e}", path.display())))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(CliError::runtime)?;
    tokio::spawn(async move {
        loop {
            let conn = match listener.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    // out of descriptors, say: wait rather than spin
                    tracing::warn!("control socket: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let app = app.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = answer(&app, conn) {
                    tracing::warn!("control socket: {e}");
                }
            });
        }
    });
    Ok(())
}

fn answer(app: &App, conn: tokio::net::UnixStream) -> std::io::Result<()> {
    let conn = conn.into_std()?;
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(&conn).take(64).read_line(&mut line)?;
    let mut out = std::io::BufWriter::new(&conn);
    if line != BACKUP {
        return writeln!(out, "-unknown request {:?}", line.trim());
    }
    out.write_all(b"+")?;
    match backup::write(&app.store, &app.config.server.data_dir, &mut out) {
        Ok(m) => {
            tracing::info!(records = m.records, files = m.blobs, "backup sent");
            out.flush()
        }
        // the client sees the archive end early and keeps nothing
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// `backup --out FILE`.
pub fn backup(config: Config, out: &Path) -> Result<(), CliError> {
    require_store(&config)?;
    let partial = PathBuf::from(format!("{}.partial", out.display()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .map_err(|e| CliError::runtime(format!("cannot write {}: {e}", partial.display())))?;
    let result = write_backup(&config, &file).and_then(|m| {
        file.sync_all().map_err(CliError::runtime)?;
        std::fs::rename(&partial, out).map_err(CliError::runtime)?;
        Ok(m)
    });
    let m = result.inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    println!(
        "backed up {} records and {} encrypted files ({} bytes) to {}; the master key is not in it: keep it apart",
        m.records,
        m.blobs,
        m.blob_bytes,
        out.display()
    );
    Ok(())
}

/// The archive, from the store when it is free, else from the running studio.
fn write_backup(config: &Config, file: &std::fs::File) -> Result<Manifest, CliError> {
    match open_store(config) {
        Ok(store) => backup::write(
            &store,
            &config.server.data_dir,
            std::io::BufWriter::new(file),
        )
        .map_err(CliError::runtime),
        Err(StartError::Store(StoreError::Locked(_))) => from_server(config, file),
        Err(e) => Err(e.into()),
    }
}

fn from_server(config: &Config, file: &std::fs::File) -> Result<Manifest, CliError> {
    let path = socket_path(&config.server.data_dir);
    let mut conn = std::os::unix::net::UnixStream::connect(&path).map_err(|e| {
        CliError::runtime(format!(
            "the studio is running but its control socket {} does not answer ({e}); run this as the service's user",
            path.display()
        ))
    })?;
    conn.write_all(BACKUP.as_bytes())
        .map_err(CliError::runtime)?;
    let mut first = [0u8; 1];
    conn.read_exact(&mut first).map_err(CliError::runtime)?;
    if first[0] != b'+' {
        let mut why = String::new();
        let _ = conn.take(1024).read_to_string(&mut why);
        return Err(CliError::runtime(format!(
            "the studio refused: {}",
            why.trim()
        )));
    }
    let mut tee = Tee {
        inner: conn,
        copy: std::io::BufWriter::new(file),
    };
    // read the archive through: this checks it is whole while it is written
    let manifest = backup::check(&mut tee).map_err(CliError::runtime)?;
    std::io::copy(&mut tee, &mut std::io::sink()).map_err(CliError::runtime)?;
    tee.copy.flush().map_err(CliError::runtime)?;
    Ok(manifest)
}

/// Copies what is read to `copy`.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// `restore --from FILE`.
pub fn restore(config: Config, from: &Path) -> Result<(), CliError> {
    let file = std::fs::File::open(from)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", from.display())))?;
    let data_dir = &config.server.data_dir;
    let m = backup::restore(BufReader::new(file), data_dir).map_err(|e| match e {
        backup::BackupError::NotEmpty(_) => CliError::usage(e.to_string()),
        other => CliError::runtime(other),
    })?;
    let key = config.master_key_path();
    println!(
        "restored {} records and {} encrypted files (schema {}, image-layered {}) into {}",
        m.records,
        m.blobs,
        m.schema,
        m.release,
        data_dir.display()
    );
    if !key.exists() {
        println!(
            "now put the studio's master key at {} (mode 0600) before `serve`",
            key.display()
        );
    }
    Ok(())
}
