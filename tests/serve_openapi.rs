//! The OpenAPI document: the served `/v1/openapi.json` equals the committed docs/openapi.json
//! (`PAYTRACE_BLESS=1` rewrites it), and the router serves every operation it lists (the
//! answers of the other HTTP tests are validated against it, see `common::serve`).

mod common;

use common::serve::{Server, check_answer, create_key, demo_store};
use reqwest::{Client, Method};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn served_document_equals_the_committed_one_and_every_operation_is_routed() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(&dir.path().join("demo"));
    let admin = create_key(&store, "admin");
    let srv = Server::start(&store, &[]);
    let c = Client::new();
    let served: Value = c
        .get(srv.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let text = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var_os("PAYTRACE_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/openapi.json differs from the served document; regenerate it with \
         PAYTRACE_BLESS=1 cargo test --test serve_openapi"
    );

    // Every operation is routed: with placeholder parameters, never "no such route" or 405.
    for (p, item) in served["paths"].as_object().unwrap() {
        for (m, _) in item.as_object().unwrap() {
            let url = p
                .replace("{address}", "0x3433ab8Ee29B8b896a4b7e7d5F669595D7F24C5D")
                .replace("{id}", "1");
            let method: Method = m.to_uppercase().parse().unwrap();
            let r = c
                .request(method.clone(), srv.url(&url))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let ct = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = r.text().await.unwrap();
            assert!(
                st != 405 && !body.contains("no such route: "),
                "{m} {p}: {st} {}",
                body.chars().take(300).collect::<String>()
            );
            check_answer(&served, m, &url, st, &ct, &body);
        }
    }
}
