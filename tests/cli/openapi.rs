//! `GET /api/v1/openapi.json` from the real binary: public, and a valid OpenAPI 3.1 document
//! by an independent validator (`openapi-spec-validator` from PyPI). That every route is in
//! it, and nothing else, is checked against the router's source by a unit test
//! (`src/http/openapi.rs`).

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
#[ignore = "needs openapi-spec-validator (scripts/test installs it)"]
async fn the_openapi_document_is_public_and_valid() {
    let env = Env::new();
    let mut server = Server::start(&env).await;
    let (status, doc) = server.client.json("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/images/{id}/decompose"]["post"].is_object());
    let file = env.root.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        file.to_str().unwrap(),
    ]);
    let run = tokio::task::spawn_blocking(move || run_command(cmd, None, Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(run.code, Some(0), "{}", run.describe());
    assert!(run.stdout.contains("valid"));
    server.stop().await;
}
