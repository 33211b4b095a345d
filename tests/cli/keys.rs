//! The master key: a wrong or missing key refuses to start, naming the key; rotation keeps
//! data readable and retires the previous generation.

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::*;

/// Starts expecting a refusal: returns the failure (panics if the server came up).
async fn refused_start(env: &Env) -> StartFailure {
    match Server::try_start(env, ServerOpts::default()).await {
        Err(f) => f,
        Ok(mut s) => {
            s.kill();
            panic!(
                "the server started with a bad master key; log:\n{}",
                s.stderr()
            );
        }
    }
}

fn assert_refused_for_master_key(f: &StartFailure, what: &str) {
    assert_eq!(f.status.code(), Some(1), "{what}: {f:?}");
    assert!(
        f.elapsed < Duration::from_secs(10),
        "{what}: took {:?} to refuse",
        f.elapsed
    );
    assert!(
        f.stderr.contains("master key"),
        "{what}: stderr should name the master key: {}",
        f.stderr
    );
    assert!(
        !f.stdout.contains("listening on"),
        "{what}: it listened before refusing: {}",
        f.stdout
    );
}

#[tokio::test]
async fn wrong_master_key_fails_clearly() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let png = noisy_png(64, 48, 11);
    let id = server.with_key(&key).upload(png.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.stop().await;

    let other = Env::new();
    Server::start(&other).await.stop().await;

    let right = std::fs::read(env.master_key()).expect("master key");
    let wrong = std::fs::read(other.master_key()).expect("other master key");
    assert_ne!(right, wrong);
    write_key(&env.master_key(), &wrong);
    let f = refused_start(&env).await;
    assert_refused_for_master_key(&f, "another data dir's key");

    std::fs::remove_file(env.master_key()).unwrap();
    let f = refused_start(&env).await;
    assert_refused_for_master_key(&f, "missing key");
    assert!(
        !env.master_key().exists(),
        "a missing master key was silently replaced by a new one"
    );

    write_key(&env.master_key(), &right);
    let server = Server::start(&env).await;
    let (status, bytes) = server
        .with_key(&key)
        .bytes(&format!("/api/v1/images/{id}/original"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        bytes == png,
        "the upload is not readable with the right key"
    );
}

fn key_generation(env: &Env) -> String {
    let text = std::fs::read_to_string(env.master_key()).expect("master key");
    text.lines()
        .find(|l| l.trim_start().starts_with("generation"))
        .unwrap_or_else(|| panic!("no generation line in {text:?}"))
        .split('=')
        .nth(1)
        .expect("generation value")
        .trim()
        .to_string()
}

#[tokio::test]
async fn keys_rotate_keeps_data_readable_and_retires_old_key() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let key = server.admin_key().await;
    let png = noisy_png(80, 60, 21);
    let id = server.with_key(&key).upload(png.clone()).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.stop().await;
    let original = format!("/api/v1/images/{id}/original");
    assert_eq!(key_generation(&env), "1");
    let gen1 = std::fs::read(env.master_key()).unwrap();

    let out = env.run(&["keys", "rotate"]);
    assert!(out.ok().contains("generation 1 -> 2"), "{}", out.describe());
    assert_eq!(key_generation(&env), "2");
    let gen2 = std::fs::read(env.master_key()).unwrap();
    let keys_dir = env.master_key().parent().unwrap().to_path_buf();
    let leftovers: Vec<_> = files_under(&keys_dir)
        .into_iter()
        .filter(|p| file_name(p) != "master.key")
        .collect();
    assert!(
        leftovers.is_empty(),
        "rotation left files behind: {leftovers:?}"
    );

    let mut server = Server::start(&env).await;
    let (status, bytes) = server.with_key(&key).bytes(&original).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == png, "not byte-identical after rotation");
    server.stop().await;

    // The generation-1 key is retired: with it the data dir no longer opens.
    write_key(&env.master_key(), &gen1);
    let f = match Server::try_start(&env, ServerOpts::default()).await {
        Err(f) => f,
        Ok(mut s) => {
            s.kill();
            panic!("the retired generation-1 key still opens the data dir");
        }
    };
    assert_eq!(f.status.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("master key"), "{}", f.stderr);
    write_key(&env.master_key(), &gen2);

    let out = env.run(&["keys", "rotate"]);
    assert!(out.ok().contains("generation 2 -> 3"), "{}", out.describe());
    assert_eq!(key_generation(&env), "3");
    let mut server = Server::start(&env).await;
    let (status, bytes) = server.with_key(&key).bytes(&original).await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == png, "not byte-identical after the second rotation");
    server.stop().await;

    // A rotation interrupted after its first step (the next key file is durable, nothing
    // re-wrapped yet) is completed at the next start.
    let next = keys_dir.join("master.key.next");
    let mut rng = Rng::new(7);
    let random_key = format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64(),
        rng.next_u64()
    );
    let next_text = format!("image-layered master key v1\ngeneration = 4\nkey = {random_key}\n");
    write_key(&next, next_text.as_bytes());
    let mut server = Server::start(&env).await;
    assert_eq!(
        key_generation(&env),
        "4",
        "the interrupted rotation was not finished"
    );
    assert!(!next.exists(), "master.key.next is still there");
    assert!(
        std::fs::read_to_string(env.master_key())
            .unwrap()
            .contains(&random_key),
        "master.key is not the planted next key"
    );
    let (status, bytes) = server.with_key(&key).bytes(&original).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        bytes == png,
        "not byte-identical after a completed interrupted rotation"
    );
    server.stop().await;

    // A next key whose generation does not follow is refused, naming the file.
    let bad_next = next_text.replace("generation = 4", "generation = 9");
    write_key(&next, bad_next.as_bytes());
    let f = match Server::try_start(&env, ServerOpts::default()).await {
        Err(f) => f,
        Ok(mut s) => {
            s.kill();
            panic!("started with a master.key.next of the wrong generation");
        }
    };
    assert_eq!(f.status.code(), Some(1), "{f:?}");
    assert!(f.stderr.contains("master.key.next"), "{}", f.stderr);
}

/// Puts a master key file in place as an operator would (0600: other modes are refused).
fn write_key(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}
