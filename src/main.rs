//! `image-layered`: parse the command line, load the configuration, start logging, run the
//! command. Errors are one line on stderr; exit 0 ok, 1 runtime failure, 2 bad usage or input.

use clap::Parser;
use image_layered::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let listen = match &cli.command {
        Some(Command::Serve(args)) => args.listen,
        _ => None,
    };
    let config = match cli::load_config(&cli.global, listen) {
        Ok(c) => c,
        Err(e) => exit(e),
    };
    init_logging(&config.log.level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => exit(cli::CliError::runtime(format!(
            "cannot start the runtime: {e}"
        ))),
    };
    let result = runtime.block_on(cli::run(config, cli.command));
    // Blocking work (a job on its way out) gets a moment, not forever: it reruns next start.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    if let Err(e) = result {
        exit(e);
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMAGE_LAYERED_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn exit(e: cli::CliError) -> ! {
    eprintln!("error: {}", e.message);
    std::process::exit(e.code)
}
