//! systemd's readiness and watchdog protocol (`sd_notify(3)`), for `Type=notify` with
//! `WatchdogSec=`: `READY=1` once the studio listens, `STOPPING=1` when it begins to shut
//! down, and `WATCHDOG=1` every half `WATCHDOG_USEC` from a task on the server's runtime, so a
//! runtime that stops making progress is restarted. Without `NOTIFY_SOCKET` nothing is sent.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` to systemd if it asked for notifications; `Ok(false)` when it did not.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path.to_string_lossy(), state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the notification socket at `path` (`@name` for an abstract socket).
pub fn notify_to(path: &str, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            socket.send_to(state.as_bytes(), path)?;
        }
    }
    Ok(())
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is set for this process.
pub fn watchdog_interval() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_string_lossy().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Pings the watchdog from the runtime until the process ends.
pub fn spawn_watchdog() {
    let Some(every) = watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        loop {
            if let Err(e) = notify("WATCHDOG=1") {
                tracing::warn!("systemd watchdog ping failed: {e}");
            }
            tokio::time::sleep(every).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reaches_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        notify_to(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("il-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(&format!("@{name}"), "WATCHDOG=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }
}
