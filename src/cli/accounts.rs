//! The commands over a studio's stored data, run while `serve` is stopped (the store says
//! so when it is held): `user add|list|delete|set-password`, `keys init|rotate`, and the retention
//! `sweep` (with `--dry-run` and `--as-of` to preview a date), and `audit verify`. Every
//! change they make is appended to the audit log as done by `cli`.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{CliError, SweepArgs, UserAddArgs, UserCommand};
use crate::app::{open_store, require_store, App};
use crate::audit::{Actor, AuditLog};
use crate::auth::{create_user, tokens::random_token, NewUser};
use crate::blobs::{open_keyring, rotate_keys, BlobStore, Keyring};
use crate::clock::{rfc3339, unix, ManualClock, SharedClock, SystemClock};
use crate::config::Config;
use crate::ids::UserId;
use crate::store::{Role, Store};

/// `user add|list|delete`.
pub async fn user(config: Config, cmd: UserCommand) -> Result<(), CliError> {
    if !matches!(cmd, UserCommand::Add(_)) {
        require_store(&config)?;
    }
    if let UserCommand::SetPlan { id, plan } = &cmd {
        return user_set_plan(config, id, plan).await;
    }
    let store = open_store(&config)?;
    match cmd {
        UserCommand::Add(args) => user_add(&config, &store, args).await,
        UserCommand::List => {
            println!(
                "{:<36}  {:<6}  {:<6}  {:<20}  EMAIL / NAME",
                "ID", "ROLE", "PLAN", "CREATED"
            );
            for u in store.list_users()? {
                println!(
                    "{:<36}  {:<6}  {:<6}  {:<20}  {} / {}",
                    u.id,
                    format!("{:?}", u.role).to_lowercase(),
                    u.plan.as_str(),
                    rfc3339(u.created_at),
                    u.email,
                    u.name
                );
            }
            Ok(())
        }
        UserCommand::SetPassword { id, .. } => {
            let id = parse_user_id(&id)?;
            let password = read_password_line()?;
            crate::auth::set_password(&store, id, &password, None)?;
            audit_log(&store).record(
                Actor::Cli,
                "user.set_password",
                format!("user:{id}"),
                serde_json::Value::Null,
            )?;
            store.flush().await?;
            crate::auth::forget_one_time_password(&store, &config.server.data_dir)?;
            println!("password set for user {id}; their sessions have ended");
            Ok(())
        }
        // it opens the whole app, so it ran above, before the store was opened here
        UserCommand::SetPlan { .. } => unreachable!("set-plan returns before this match"),
        UserCommand::Delete { id } => {
            let id = parse_user_id(&id)?;
            let n = delete_user(&config, &store, id).await?;
            println!("deleted user {id} and {n} images; their data key is destroyed");
            Ok(())
        }
    }
}

fn parse_user_id(id: &str) -> Result<UserId, CliError> {
    id.parse()
        .map_err(|_| CliError::usage(format!("{id:?} is not a user id (see `user list`)")))
}

/// The first line of standard input, without its line ending.
fn read_password_line() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::runtime)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn user_add(config: &Config, store: &Store, args: UserAddArgs) -> Result<(), CliError> {
    let keyring = open_keyring(config, store).map_err(CliError::runtime)?;
    let (password, generated) = if args.password_stdin {
        (read_password_line()?, false)
    } else {
        (random_token(), true)
    };
    let role = if args.admin {
        Role::Admin
    } else {
        Role::Member
    };
    let user = create_user(
        store,
        &keyring,
        unix(OffsetDateTime::now_utc()),
        NewUser {
            email: &args.email,
            name: &args.name,
            role,
            plan: args.plan,
            password: &password,
        },
    )?;
    store.flush().await?;
    audit_log(store).record(
        Actor::Cli,
        "user.create",
        format!("user:{}", user.id),
        serde_json::json!({"role": role, "plan": user.plan}),
    )?;
    store.flush().await?;
    println!("{}", user.id);
    if generated {
        eprintln!("password for {}: {password} (shown once)", user.email);
    }
    Ok(())
}

/// Deletes a member: data key first (crypto-shred, flushed), then metadata, then files.
pub async fn delete_user(config: &Config, store: &Store, id: UserId) -> Result<usize, CliError> {
    if store.get_user(id)?.is_none() {
        return Err(CliError::usage(format!("no user with id {id}")));
    }
    let images = store.list_images(id)?;
    store.delete_user(id)?;
    store.flush().await?;
    for img in &images {
        for doc in store.documents_of_image(img.id)? {
            store.delete_document(doc.id)?;
        }
        store.delete_image(img.id)?;
    }
    for job in store.jobs_of(id)? {
        store.delete_job(job.id)?;
    }
    audit_log(store).record(
        Actor::Cli,
        "user.delete",
        format!("user:{id}"),
        serde_json::json!({"images": images.len()}),
    )?;
    store.flush().await?;
    let blobs =
        BlobStore::open(&config.server.data_dir.join("blobs")).map_err(CliError::runtime)?;
    blobs.delete_owner(id).map_err(CliError::runtime)?;
    Ok(images.len())
}

/// `keys init`: a fresh master key file; never overwrites one.
pub fn keys_init(config: Config, key_file: Option<PathBuf>) -> Result<(), CliError> {
    let path = key_file.unwrap_or_else(|| config.master_key_path());
    if path.exists() {
        return Err(CliError::usage(format!(
            "{} already exists; a master key is never overwritten",
            path.display()
        )));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(CliError::runtime)?;
    }
    Keyring::open(&path, true).map_err(CliError::runtime)?;
    println!(
        "created master key generation 1 at {}; back it up offline — without it the data cannot be read",
        path.display()
    );
    Ok(())
}

/// `keys rotate`.
pub fn keys_rotate(config: Config) -> Result<(), CliError> {
    require_store(&config)?;
    let store = open_store(&config)?;
    let keyring = open_keyring(&config, &store).map_err(CliError::runtime)?;
    let (old, new, n) = rotate_keys(&store, &keyring, unix(OffsetDateTime::now_utc()))
        .map_err(CliError::runtime)?;
    audit_log(&store).record(
        Actor::Cli,
        "keys.rotate",
        "master_key",
        serde_json::json!({"from": old, "to": new, "rewrapped": n}),
    )?;
    store.flush_blocking()?;
    println!(
        "master key rotated: generation {old} -> {new}; {n} data keys re-wrapped; the generation {old} key file is gone"
    );
    Ok(())
}

/// The audit log of a store opened by a command (by the wall clock).
fn audit_log(store: &Store) -> AuditLog {
    AuditLog::new(store.clone(), Arc::new(SystemClock))
}

/// `audit verify`: exit 0 with the number of entries when the chain is intact; exit 1
/// naming the first broken entry.
pub fn audit_verify(config: Config) -> Result<(), CliError> {
    require_store(&config)?;
    let store = open_store(&config)?;
    let n = audit_log(&store).verify().map_err(CliError::runtime)?;
    println!("audit log intact: {n} entries");
    Ok(())
}

/// `user set-plan ID PLAN`: as an admin's plan change, recorded as done at the command line.
async fn user_set_plan(config: Config, id: &str, plan: &str) -> Result<(), CliError> {
    let id = parse_user_id(id)?;
    let plan: crate::store::Plan = plan.parse().map_err(CliError::usage)?;
    let app = App::open(config, Arc::new(SystemClock))?;
    let user = app
        .store
        .get_user(id)?
        .ok_or_else(|| CliError::usage(format!("no user with id {id}")))?;
    let from = user.plan;
    let admin = app.admin.clone();
    tokio::task::spawn_blocking(move || admin.change_plan(Actor::Cli, user, plan, None))
        .await
        .map_err(CliError::runtime)?
        .map_err(CliError::runtime)?;
    app.store.flush().await?;
    println!(
        "user {id}: plan {} -> {}; the expiry of their results moved with it",
        from.as_str(),
        plan.as_str()
    );
    Ok(())
}

/// `training export --out DIR`: the originals of consenting members only.
pub fn training_export(config: Config, out: &std::path::Path) -> Result<(), CliError> {
    require_store(&config)?;
    let app = App::open(config, Arc::new(SystemClock))?;
    let done = app
        .privacy
        .training_export(out)
        .map_err(CliError::runtime)?;
    println!(
        "{} images of {} consenting members written to {}",
        done.images,
        done.members,
        out.display()
    );
    Ok(())
}

/// `outbox list`: one line per message waiting or failed, then a total.
pub fn outbox_list(config: Config) -> Result<(), CliError> {
    require_store(&config)?;
    let store = open_store(&config)?;
    let messages = store.outbox()?;
    println!(
        "{:<36}  {:<14}  {:<8}  {:>8}  {:<20}  TO / LAST ERROR",
        "ID", "NOTICE", "STATE", "ATTEMPTS", "NEXT ATTEMPT"
    );
    for m in &messages {
        println!(
            "{:<36}  {:<14}  {:<8}  {:>8}  {:<20}  {} / {}",
            m.id,
            m.notice,
            if m.failed { "failed" } else { "waiting" },
            m.attempts,
            rfc3339(m.next_attempt_at),
            m.to,
            m.last_error.as_deref().unwrap_or("-")
        );
    }
    println!("{} messages", messages.len());
    Ok(())
}

/// `sweep [--dry-run] [--as-of T]`: one line per object, then a total.
pub async fn sweep(config: Config, args: SweepArgs) -> Result<(), CliError> {
    let at = match args.as_of {
        Some(s) => OffsetDateTime::parse(&s, &Rfc3339).map_err(|e| {
            CliError::usage(format!(
                "--as-of {s:?} is not an RFC 3339 time (e.g. 2026-12-31T00:00:00Z): {e}"
            ))
        })?,
        None => OffsetDateTime::now_utc(),
    };
    require_store(&config)?;
    let clock: SharedClock = Arc::new(ManualClock::new(at));
    let app = App::open(config, clock)?;
    let now = unix(at);
    let items = if args.dry_run {
        app.sweeper.due(now)?
    } else {
        app.sweeper.sweep(now).await?
    };
    let verb = if args.dry_run { "due" } else { "removed" };
    for i in &items {
        println!(
            "{verb} {} {} (expired {}{})",
            i.kind,
            i.id,
            rfc3339(i.expired_at),
            i.owner
                .as_ref()
                .map(|o| format!(", owner {o}"))
                .unwrap_or_default()
        );
    }
    println!("{} objects {verb}", items.len());
    match app.sweeper.failures() {
        0 => Ok(()),
        n => Err(CliError::runtime(format!(
            "{n} due entr{} could not be removed (the log above says why); they are kept and \
             the next sweep tries again",
            if n == 1 { "y" } else { "ies" }
        ))),
    }
}
