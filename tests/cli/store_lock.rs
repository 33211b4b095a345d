//! While `serve` holds the store, the other store commands refuse clearly and at once.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn second_process_is_told_the_store_is_in_use() {
    let env = Env::new();
    let mut server = Server::start(&env).await;

    for args in [
        &["user", "list"][..],
        &[
            "user",
            "add",
            "--email",
            "x@y.z",
            "--name",
            "X",
            "--password-stdin",
        ],
        &["keys", "rotate"],
        &["sweep", "--dry-run"],
    ] {
        let out = env.run_with(args, &[], Some("a long enough password\n"));
        assert_eq!(out.code, Some(1), "{args:?}: {}", out.describe());
        assert!(
            out.stderr.contains("in use"),
            "{args:?} should say the store is in use: {}",
            out.describe()
        );
        assert!(
            out.elapsed < Duration::from_secs(10),
            "{args:?} waited instead of failing: {}",
            out.describe()
        );
        assert_eq!(
            out.stderr
                .trim()
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1,
            "one error line: {}",
            out.describe()
        );
    }

    // A second server is refused the same way.
    match Server::try_start(&env, ServerOpts::default()).await {
        Err(f) => {
            assert_eq!(f.status.code(), Some(1), "{f:?}");
            assert!(f.stderr.contains("in use"), "{}", f.stderr);
        }
        Ok(mut second) => {
            second.kill();
            panic!("a second server started on a store in use");
        }
    }

    // The server did not notice, and the store is usable once it stops.
    let health = server.client.get("/healthz").send().await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    server.stop().await;
    let out = env.run(&["user", "list"]);
    assert!(out.ok().contains(ADMIN_EMAIL), "{}", out.describe());
    assert!(
        !out.stdout.contains("x@y.z"),
        "a refused `user add` still created the user: {}",
        out.describe()
    );
}

#[test]
fn commands_never_create_a_store_at_a_mistyped_data_dir() {
    let env = Env::new();
    for args in [
        &["user", "list"][..],
        &["user", "delete", "01a22497-5531-7178-9a7c-9213a702a8a5"],
        &["keys", "rotate"],
        &["sweep", "--dry-run"],
    ] {
        let out = env.run(args);
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.describe());
        assert!(
            out.stderr.contains("no image-layered store"),
            "{}",
            out.describe()
        );
        assert!(!env.data.join("db").exists(), "{args:?} created a store");
        assert!(!env.master_key().exists(), "{args:?} created a master key");
    }
}
