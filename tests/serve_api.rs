//! HTTP tests of `paytrace serve` on the offline demo store: health, the auth matrix (401,
//! 403, 429), problem documents (404, 413), and each `/v1` endpoint against the CLI's
//! `--json` output.

mod common;

use common::{
    paytrace, run_json,
    serve::{Server, create_key, demo_store},
};
use reqwest::{Client, StatusCode};
use serde_json::Value;

fn is_problem(r: &reqwest::Response) -> bool {
    r.headers()
        .get("content-type")
        .is_some_and(|v| v == "application/problem+json")
}

#[tokio::test(flavor = "multi_thread")]
async fn health_auth_and_problems() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(&dir.path().join("demo"));
    let analyst = create_key(&store, "analyst");
    let admin = create_key(&store, "admin");
    let cli_stats = run_json(paytrace(&store).args(["stats", "--json"]));
    let srv = Server::start(&store, &["--max-body-bytes", "1000"]);
    let c = Client::new();

    // Health needs no key.
    let r = c.get(srv.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));

    // 401 without a key and with a wrong one, as problem documents.
    let r = c.get(srv.url("/v1/stats")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(is_problem(&r));
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], 401);
    let wrong = format!("{}0", &analyst[..analyst.len() - 1]);
    let wrong = if wrong == analyst {
        format!("{}1", &analyst[..analyst.len() - 1])
    } else {
        wrong
    };
    let r = c
        .get(srv.url("/v1/stats"))
        .bearer_auth(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The key in each of the three places.
    for req in [
        c.get(srv.url("/v1/me")).bearer_auth(&analyst),
        c.get(srv.url("/v1/me")).header("x-api-key", &analyst),
        c.get(srv.url("/v1/me"))
            .header("cookie", format!("paytrace_key={analyst}")),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let me: Value = r.json().await.unwrap();
        assert_eq!(me["role"], "analyst");
    }

    // Stats: the CLI's JSON.
    let r = c
        .get(srv.url("/v1/stats"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let s: Value = r.json().await.unwrap();
    assert_eq!(s, cli_stats);

    // 403: the audit log is for admins.
    let r = c
        .get(srv.url("/v1/audit"))
        .bearer_auth(&analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(is_problem(&r));
    let r = c
        .get(srv.url("/v1/audit?limit=x"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["field"], "limit");

    // 404 for an unknown route, as a problem document.
    let r = c.get(srv.url("/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(is_problem(&r));

    // 413 for a body over the limit.
    let r = c
        .post(srv.url("/v1/me"))
        .bearer_auth(&admin)
        .body(vec![b'x'; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(is_problem(&r));
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(&dir.path().join("demo"));
    let key = create_key(&store, "analyst");
    let other = create_key(&store, "analyst");
    let srv = Server::start(&store, &["--rate-per-second", "1"]);
    let c = Client::new();
    let mut limited = None;
    for _ in 0..5 {
        let r = c
            .get(srv.url("/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("no 429 after 5 requests at 1 per second");
    assert!(is_problem(&r));
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // The limit is per key: another key still gets through.
    let r = c
        .get(srv.url("/v1/me"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
