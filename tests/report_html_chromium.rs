//! The HTML payout report in a real headless Chromium, driven through chromedriver's WebDriver
//! HTTP API: no console errors, no network requests, the SVG flow graph present with the
//! report's node count; a screenshot is saved under the target directory
//! (`<target>/test-artifacts/payout-report.png`).
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`scripts/test` installs them);
//! without them the test fails with that advice, it is never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

#[path = "common/webdriver.rs"]
mod webdriver;

use base64::Engine as _;
use common::{paytrace, run_json};
use serde_json::{Value, json};
use webdriver::{Driver, artifacts_dir, console_errors, requested_urls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let s = tokio::task::spawn_blocking({
        let out = out.clone();
        move || {
            run_json(
                paytrace(&out.join("x"))
                    .arg("--json")
                    .arg("demo")
                    .arg("--out")
                    .arg(&out),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(s["truth_mismatches"], json!([]));
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("payout-report.json")).unwrap()).unwrap();
    let want_nodes = report["graph"]["nodes"].as_array().unwrap().len();
    let want_edges = report["graph"]["edges"].as_array().unwrap().len();
    assert!(want_nodes > 20, "graph has {want_nodes} nodes");

    let driver = Driver::start().await;
    let session = driver.session(&dir.path().join("profile")).await;
    let sid = session.id.clone();

    // The detector works: a page with a console error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('planted error')</script></body></html>",
    )
    .unwrap();
    session.goto(&format!("file://{}", bad.display())).await;
    let errs = console_errors(&session.log("browser").await);
    assert!(
        errs.iter().any(|e| e.contains("planted error")),
        "console errors are not detected: {errs:?}"
    );
    let _ = session.log("performance").await;

    session
        .goto(&format!(
            "file://{}",
            out.join("payout-report.html").display()
        ))
        .await;
    let nodes = session
        .script("return document.querySelectorAll('svg#flow-graph g.node').length")
        .await;
    let edges = session
        .script("return document.querySelectorAll('svg#flow-graph path.edge').length")
        .await;
    assert_eq!(nodes, json!(want_nodes));
    assert_eq!(edges, json!(want_edges));
    // The SVG is laid out: non-empty box, nodes inside it.
    let bbox = session
        .script(
            "const r = document.getElementById('flow-graph').getBoundingClientRect(); return [r.width, r.height]",
        )
        .await;
    assert!(
        bbox[0].as_f64().unwrap() > 400.0 && bbox[1].as_f64().unwrap() > 200.0,
        "{bbox}"
    );
    let title = session.script("return document.title").await;
    assert_eq!(title, json!("Payout report: Acme Payroll"));
    let errs = console_errors(&session.log("browser").await);
    assert!(errs.is_empty(), "console errors: {errs:?}");
    // No network: every request the page made is the file itself.
    let perf = session.log("performance").await;
    let requests = requested_urls(&perf);
    assert!(
        requests.iter().all(|u| u.starts_with("file://")),
        "network requests: {requests:?}"
    );
    // The window (checked not blank), then the flow graph alone.
    session.screenshot("payout-report", 20).await;
    let id = session.find("#flow-graph").await;
    let png = driver
        .get(&format!("/session/{sid}/element/{id}/screenshot"))
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    std::fs::write(artifacts_dir().join("flow-graph.png"), &bytes).unwrap();
    session.quit().await;
}
