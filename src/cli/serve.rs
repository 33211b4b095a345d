//! `serve`: open the app, make the first admin on a fresh data dir (a generated one-time
//! password goes to a 0600 file whose path is printed, never to the log or the terminal), load the models, listen, print the bound
//! address (`… listening on http://ADDR`, which is how a caller learns the port when it asked
//! for port 0), tell systemd it is ready (`crate::cli::systemd`) and run until SIGTERM or
//! Ctrl-C.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::watch;

use super::CliError;
use crate::app::App;
use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::http::Server;

/// `serve`: runs until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> Result<(), CliError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let app = App::open(config, clock)?;
    let server = Server::new(app.clone()).map_err(CliError::runtime)?;
    match app.bootstrap_admin().await? {
        Some(admin) => match admin.password_file {
            Some(file) => println!(
                "created admin {} with a one-time password, written to {} (readable by this user only); sign in with it and choose a new one",
                admin.user.email,
                file.display()
            ),
            None => println!("created admin {} with the configured password", admin.user.email),
        },
        None => crate::auth::forget_one_time_password(&app.store, &app.config.server.data_dir)
            .map_err(CliError::runtime)?,
    }
    let loader = app.clone();
    tokio::task::spawn_blocking(move || {
        let progress = crate::models::ConsoleProgress::new();
        loader.load_models(&progress)
    })
    .await
    .map_err(CliError::runtime)??;
    // `backup` while serving asks through this socket
    super::backup::listen(app.clone())?;
    let listen = app.config.server.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| CliError::runtime(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(CliError::runtime)?;
    println!(
        "image-layered {} listening on {}://{addr}",
        env!("CARGO_PKG_VERSION"),
        server.scheme()
    );
    let _ = std::io::stdout().flush();
    // under systemd (Type=notify): ready now, and the watchdog pinged from this runtime
    if let Err(e) = super::systemd::notify("READY=1") {
        tracing::warn!("could not tell systemd the studio is ready: {e}");
    }
    super::systemd::spawn_watchdog();
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown signal received");
        let _ = super::systemd::notify("STOPPING=1");
        let _ = tx.send(true);
    });
    crate::http::run(server, listener, rx).await;
    let _ = std::fs::remove_file(super::backup::socket_path(&app.config.server.data_dir));
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
