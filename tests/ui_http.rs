//! The web UI over HTTP (no browser) on the demo's store served by `paytrace serve`: login and
//! the cookie's flags, the redirect without a key, the embedded assets, the security headers,
//! search errors and Bitcoin addresses, the transfers' pages and cursor, bad input (400), budgets
//! (422), the GraphML export, report uploads good and bad, the alert actions by role (403 for an
//! analyst, the compliance role acknowledges and closes, each change in the audit log).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "common/demo_serve.rs"]
mod demo_serve;

use common::{
    paytrace, run_ok,
    serve::{Server, create_key, demo_store},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn cookie(key: &str) -> String {
    format!("paytrace_key={key}")
}

/// A `multipart/form-data` body with one file field `batch`.
fn multipart(name: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----paytrace-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"batch\"; filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let (data, truth, analyst, compliance, admin) = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            let data = demo_store(&out);
            let truth: Value =
                serde_json::from_slice(&std::fs::read(out.join("ground-truth.json")).unwrap())
                    .unwrap();
            let provider = truth["provider"].as_str().unwrap().to_owned();
            run_ok(paytrace(&data).args(["watch", "add", &provider, "--payer"]));
            run_ok(paytrace(&data).args(["alerts", "evaluate"]));
            let keys = (
                create_key(&data, "analyst"),
                create_key(&data, "compliance"),
                create_key(&data, "admin"),
            );
            (data, truth, keys.0, keys.1, keys.2)
        }
    })
    .await
    .unwrap();
    let server = tokio::task::spawn_blocking(move || Server::start(&data, &[]))
        .await
        .unwrap();
    let http = client();
    let get = |path: &str, key: &str| {
        http.get(server.url(path))
            .header(header::COOKIE, cookie(key))
            .send()
    };

    // Without a key every page leads to the login page; assets need no key.
    let r = http.get(server.url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/ui/login");
    for (path, ty) in [
        ("/ui/assets/ui.js", "text/javascript"),
        ("/ui/assets/ui.css", "text/css"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let ct = r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(ct.starts_with(ty), "{path}: {ct}");
    }

    // Login: a bad key is refused on the page, a good one is kept in an HttpOnly cookie.
    let r = http
        .post(server.url("/ui/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("key=ptk_0000_bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("not valid"));
    let r = http
        .post(server.url("/ui/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("key={analyst}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/ui");
    let set = r.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.starts_with(&format!("paytrace_key={analyst};")),
        "{set}"
    );
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set} lacks {flag}");
    }

    // Pages carry the security headers.
    let r = get("/ui", &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );

    // Search: a bad input gets the parser's message; a Bitcoin address opens its page.
    let r = get("/ui/search?q=0xzz", &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("search: &quot;0xzz&quot;"));
    let screening: Value =
        serde_json::from_slice(&std::fs::read(out.join("screening.json")).unwrap()).unwrap();
    let btc = screening
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "operator (bitcoin)")
        .and_then(|x| x["result"]["address"].as_str())
        .expect("the operator's Bitcoin address")
        .to_owned();
    assert!(btc.starts_with("bc1"), "{btc}");
    let r = get(&format!("/ui/search?q={btc}"), &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert_eq!(loc, format!("/ui/address/{btc}"));
    let page = get(&loc, &analyst).await.unwrap().text().await.unwrap();
    assert!(
        page.contains(&format!("<code id=\"address\">{btc}</code>")),
        "{page}"
    );
    assert!(page.contains("BTC"), "amounts in BTC: {page}");

    // A sanctioned address: its label with the day its listing starts.
    let sanctioned = truth["truth"]["sanctioned"].as_str().unwrap();
    let page = get(&format!("/ui/address/{sanctioned}"), &analyst)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let history = page
        .split("id=\"label-history\"")
        .nth(1)
        .expect("the label table");
    assert!(
        history.contains("sanctioned") && history.contains("2025-04-01 – …"),
        "{history}"
    );

    // The provider's 72 payouts: 50 on the first page, the rest after the cursor.
    let provider = truth["provider"].as_str().unwrap();
    let page = get(&format!("/ui/address/{provider}?dir=out"), &analyst)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(page.matches("href=\"/ui/tx/").count(), 50);
    let next = page
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a next page")
        .replace("&amp;", "&");
    let page = get(&next, &analyst).await.unwrap().text().await.unwrap();
    assert_eq!(page.matches("href=\"/ui/tx/").count(), 22);
    assert!(!page.contains("id=\"next-page\""));
    // A transaction from the page, and the search of its hash.
    let tx = page
        .split("href=\"/ui/tx/")
        .nth(1)
        .and_then(|s| s.split('?').next())
        .expect("a transaction link")
        .to_owned();
    let t = get(&format!("/ui/tx/{tx}?chain=demo"), &analyst)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        t.contains("id=\"tx-transfers\"") && t.contains(provider),
        "{t}"
    );
    let r = get(&format!("/ui/search?q={tx}"), &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[header::LOCATION],
        format!("/ui/tx/{tx}").as_str()
    );
    let r = get(&format!("/ui/address/{provider}?after=zz"), &analyst)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("is not a cursor"));
    let r = get("/ui/address/0x12", &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Graph: the hop budget, and the GraphML export with the sanctioned path.
    let fake = truth["payees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fake"] == Value::Bool(true))
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let operator = truth["truth"]["operator"].as_str().unwrap();
    let r = get(&format!("/ui/graph?seed={fake}&hops=99"), &analyst)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("--max-hops"));
    let r = get(
        &format!("/ui/graph.graphml?seed={fake}&out={operator}"),
        &analyst,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/graphml+xml")
    );
    let g = r.text().await.unwrap();
    assert!(g.trim_end().ends_with("</graphml>"));
    assert_eq!(
        g.matches("<data key=\"d10\">true</data>").count(),
        2,
        "two edges on the path to the sanctioned address: {g}"
    );

    // Report: a file none of whose rows matches is refused naming its line; the demo's batch
    // gives the report page.
    let (ct, body) = multipart(
        "bad.csv",
        b"payee,address,chain,asset,amount,tx_hash,date\nX,0xzz,demo,USDC,abc,,2025-01-01\n",
    );
    let r = http
        .post(server.url("/ui/report"))
        .header(header::COOKIE, cookie(&analyst))
        .header(header::CONTENT_TYPE, ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let t = r.text().await.unwrap();
    assert!(t.contains("bad.csv:2"), "{t}");
    let csv = std::fs::read(out.join("payroll-batch.csv")).unwrap();
    let (ct, body) = multipart("payroll-batch.csv", &csv);
    let r = http
        .post(server.url("/ui/report"))
        .header(header::COOKIE, cookie(&analyst))
        .header(header::CONTENT_TYPE, ct)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t = r.text().await.unwrap();
    assert!(t.contains("<title>Payout report: payroll-batch.csv</title>"));
    assert!(t.contains("Kai Morgan"));

    // Alerts: an analyst reads but may not acknowledge; the compliance role acknowledges and
    // closes, and both changes are in the audit log.
    let page = get("/ui/alerts", &analyst)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-state=\"new\""));
    assert!(!page.contains("button class=\"ack\""));
    let post = |path: &str, key: &str| {
        http.post(server.url(path))
            .header(header::COOKIE, cookie(key))
            .send()
    };
    let r = post("/ui/alerts/1/ack", &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post("/ui/alerts/1/ack", &compliance).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = get("/ui/alerts", &compliance)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-id=\"1\" data-state=\"acknowledged\""));
    let r = post("/ui/alerts/1/close", &compliance).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = get("/ui/alerts?state=closed", &compliance)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-id=\"1\" data-state=\"closed\""));
    assert_eq!(
        post("/ui/alerts/99999/ack", &compliance)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        post("/ui/alerts/1/reopen", &compliance)
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let audit: Value = http
        .get(server.url("/v1/audit"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["POST /ui/alerts/1/ack", "POST /ui/alerts/1/close"] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }

    // Logout clears the cookie.
    let r = post("/ui/logout", &analyst).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

/// `paytrace demo --serve` stops on SIGTERM with its exit status, and what the server wrote (an
/// acknowledged alert, its audit record, the demo's key) is in a store the next command opens.
/// (The server used to write through the demo's own store handle after that handle had emptied
/// the journal; the next open found the journal damaged.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_stops_on_sigterm_and_keeps_what_it_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let mut demo = tokio::task::spawn_blocking({
        let out = out.clone();
        move || demo_serve::start_demo(&out)
    })
    .await
    .unwrap();
    let key = demo.key();
    let r = client()
        .post(format!("{}/ui/alerts/1/ack", demo.base))
        .header(header::COOKIE, cookie(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let status = tokio::task::spawn_blocking(move || {
        let s = demo.terminate();
        drop(demo);
        s
    })
    .await
    .unwrap();
    assert!(status.success(), "demo --serve exited with {status}");
    let data = out.join("store");
    let listed =
        run_ok(paytrace(&data).args(["--json", "alerts", "list", "--state", "acknowledged"]));
    let text = String::from_utf8(listed.stdout).unwrap();
    let ids: Vec<u64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(ids, [1], "{text}");
    let keys = run_ok(paytrace(&data).args(["--json", "keys", "list"]));
    let keys: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == "demo" && k["role"] == "admin"),
        "{keys}"
    );
}
