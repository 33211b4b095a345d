//! The first admin: on a fresh data dir, an admin with the configured password, or with a
//! generated one-time password written to a 0600 file under the data dir (never to the
//! terminal or the log) that must be replaced at the first sign-in; the file goes once no
//! member still has to change a generated password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{create_user, tokens, AccountError, NewUser};
use crate::blobs::Keyring;
use crate::config::BootstrapConfig;
use crate::store::{Plan, Role, Store, StoreError, UserRecord};

/// Where the first admin's generated one-time password is written (0600), never the log.
pub fn one_time_password_file(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-password.txt")
}

/// Removes the one-time password file once no member still has to change a generated
/// password (a missing file is fine).
pub fn forget_one_time_password(store: &Store, data_dir: &Path) -> Result<(), StoreError> {
    let file = one_time_password_file(data_dir);
    if file.exists() && !store.list_users()?.iter().any(|u| u.must_change_password) {
        if let Err(e) = std::fs::remove_file(&file) {
            tracing::warn!(path = %file.display(), "cannot remove the one-time password file: {e}");
        }
    }
    Ok(())
}

/// Writes `password` to `path` atomically, readable by the owner only.
fn write_secret_file(path: &Path, password: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{password}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The admin made on first start.
pub struct Bootstrapped {
    pub user: UserRecord,
    /// The file holding the generated one-time password, when none was configured.
    pub password_file: Option<PathBuf>,
}

/// Creates the first admin when the store has no members, with the configured password or
/// a generated one-time password. `Ok(None)` when there are members already.
pub async fn bootstrap_admin(
    store: &Store,
    keyring: &Arc<Keyring>,
    config: &BootstrapConfig,
    data_dir: &Path,
    now: i64,
) -> Result<Option<Bootstrapped>, AccountError> {
    if store.count_users() > 0 {
        return Ok(None);
    }
    let configured = config.admin_password.expose().to_string();
    let generated = configured.is_empty();
    let password = if generated {
        tokens::random_token()
    } else {
        configured
    };
    // the file first: a crash before the admin exists only means a new password next time
    let password_file = generated.then(|| one_time_password_file(data_dir));
    if let Some(file) = &password_file {
        write_secret_file(file, &password)
            .map_err(|e| AccountError::Internal(format!("cannot write {}: {e}", file.display())))?;
    }
    let email = config.admin_email.clone();
    let (store2, keyring, pw) = (store.clone(), keyring.clone(), password.clone());
    let user = tokio::task::spawn_blocking(move || {
        create_user(
            &store2,
            &keyring,
            now,
            NewUser {
                email: &email,
                name: "Administrator",
                role: Role::Admin,
                plan: Plan::Studio,
                password: &pw,
            },
        )
    })
    .await
    .map_err(|e| AccountError::Internal(e.to_string()))??;
    let mut user = user;
    if generated {
        user.must_change_password = true;
        store.put_user(&user)?;
    }
    store.flush().await?;
    Ok(Some(Bootstrapped {
        user,
        password_file,
    }))
}
