//! Running under systemd: the unit's sandbox as `systemd-analyze security` scores it, and the
//! readiness and watchdog notifications (`Type=notify`, `WatchdogSec=`) the real binary sends
//! to the socket systemd names.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::*;

/// Every notification the socket gets within `wait`, stopping early once `until` arrived.
fn collect(rx: &UnixDatagram, until: &str, wait: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while started.elapsed() < wait && !got.iter().any(|m| m == until) {
        if let Ok(n) = rx.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got
}

#[tokio::test]
async fn the_studio_tells_systemd_it_is_ready_pings_the_watchdog_and_says_when_it_stops() {
    let env = Env::new();
    let socket = env.root.path().join("notify.sock");
    let rx = UnixDatagram::bind(&socket).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let opts = ServerOpts {
        env: vec![
            ("NOTIFY_SOCKET".into(), socket.display().to_string()),
            ("WATCHDOG_USEC".into(), "400000".into()),
        ],
        ..ServerOpts::default()
    };
    let mut server = Server::start_with(&env, opts).await;
    let got = collect(&rx, "WATCHDOG=1", Duration::from_secs(10));
    assert_eq!(got.first().map(String::as_str), Some("READY=1"), "{got:?}");
    assert!(got.iter().any(|m| m == "WATCHDOG=1"), "{got:?}");
    // pinged every 0.2 s while it runs
    let more = collect(&rx, "never", Duration::from_secs(1));
    assert!(
        more.iter().filter(|m| *m == "WATCHDOG=1").count() >= 3,
        "{more:?}"
    );
    let status = server.terminate(Duration::from_secs(30)).await;
    assert!(status.success(), "{status:?}");
    let rest = collect(&rx, "STOPPING=1", Duration::from_secs(2));
    assert!(rest.iter().any(|m| m == "STOPPING=1"), "{rest:?}");
}

#[test]
fn the_unit_scores_as_hardened_in_systemd_analyze() {
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/image-layered.service");
    let out = match std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager", unit])
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("systemd-analyze is not installed ({e}); the unit's score is not checked");
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no score in: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unreadable score: {line}"));
    assert!(score <= 2.5, "exposure {score} (target ≤ 2.5):\n{text}");
}
