//! The audit log from the outside: a served studio and the account commands append to it,
//! `audit verify` says it is intact (exit 0, with the count), and after one entry is changed
//! in the store behind the binary's back it names that entry and exits 1.

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn audit_verify_passes_an_intact_chain_and_names_a_tampered_entry() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let c = server.with_key(&server.admin_key().await);
    let meta = c.upload(noisy_png(64, 48, 7)).await;
    let id = meta["id"].as_str().unwrap();
    let r = c
        .delete(&format!("/api/v1/images/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    server.stop().await;
    env.run(&["user", "add", "--email", "c@example.com", "--name", "C"])
        .ok();

    // the bootstrap admin, the image deletion, the new member
    let out = env.run(&["audit", "verify"]);
    assert!(
        out.ok().contains("audit log intact: 3 entries"),
        "{}",
        out.describe()
    );

    // change the second entry's target as stored, keeping its hash
    {
        let db = sled::open(env.data.join("db")).expect("open the store");
        let tree = db.open_tree("audit").expect("audit tree");
        let key = 2u64.to_be_bytes();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&tree.get(key).unwrap().expect("entry 2")).unwrap();
        assert_eq!(entry["action"], "image.delete", "{entry}");
        entry["target"] = "image:00000000-0000-0000-0000-000000000000".into();
        tree.insert(key, serde_json::to_vec(&entry).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.code, Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("audit log entry 2 is broken"),
        "{}",
        out.describe()
    );
}
