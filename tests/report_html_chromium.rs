//! The HTML payout report in a real headless Chromium, driven through chromedriver's WebDriver
//! HTTP API: no console errors, no network requests, the SVG flow graph present with the
//! report's node count; a screenshot is saved under the target directory
//! (`<target>/test-artifacts/payout-report.png`).
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`scripts/test` installs them);
//! without them the test fails with that advice, it is never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use base64::Engine as _;
use common::{paytrace, run_json};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Self {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(bin).is_file(),
                "{bin} is missing: install it with `apt-get install -y chromium chromium-driver` (scripts/test does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let start = Instant::now();
        loop {
            if let Ok(r) = d.http.get(format!("{}/status", d.url)).send().await
                && r.status().is_success()
            {
                return d;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let v: Value = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v:#}");
        v["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let v: Value = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v:#}");
        v["value"].clone()
    }

    async fn session(&self, profile: &Path) -> String {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1600,1800",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let v = self
            .post(
                "/session",
                json!({"capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                    "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"}
                }}}),
            )
            .await;
        v["sessionId"].as_str().unwrap().to_owned()
    }

    async fn open(&self, s: &str, file: &Path) {
        self.post(
            &format!("/session/{s}/url"),
            json!({"url": format!("file://{}", file.display())}),
        )
        .await;
    }

    async fn script(&self, s: &str, js: &str) -> Value {
        self.post(
            &format!("/session/{s}/execute/sync"),
            json!({"script": js, "args": []}),
        )
        .await
    }

    async fn log(&self, s: &str, kind: &str) -> Vec<Value> {
        self.post(&format!("/session/{s}/se/log"), json!({"type": kind}))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

fn artifacts_dir() -> PathBuf {
    // <target>/debug/deps/<test exe> -> <target>/test-artifacts
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let d = target.join("test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn console_errors(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

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
    let profile = dir.path().join("profile");
    let sid = driver.session(&profile).await;

    // The detector works: a page with a console error is caught.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('planted error')</script></body></html>",
    )
    .unwrap();
    driver.open(&sid, &bad).await;
    let errs = console_errors(&driver.log(&sid, "browser").await);
    assert!(
        errs.iter().any(|e| e.contains("planted error")),
        "console errors are not detected: {errs:?}"
    );
    let _ = driver.log(&sid, "performance").await;

    driver.open(&sid, &out.join("payout-report.html")).await;
    let nodes = driver
        .script(
            &sid,
            "return document.querySelectorAll('svg#flow-graph g.node').length",
        )
        .await;
    let edges = driver
        .script(
            &sid,
            "return document.querySelectorAll('svg#flow-graph path.edge').length",
        )
        .await;
    assert_eq!(nodes, json!(want_nodes));
    assert_eq!(edges, json!(want_edges));
    // The SVG is laid out: non-empty box, nodes inside it.
    let bbox = driver
        .script(
            &sid,
            "const r = document.getElementById('flow-graph').getBoundingClientRect(); return [r.width, r.height]",
        )
        .await;
    assert!(
        bbox[0].as_f64().unwrap() > 400.0 && bbox[1].as_f64().unwrap() > 200.0,
        "{bbox}"
    );
    let title = driver.script(&sid, "return document.title").await;
    assert_eq!(title, json!("Payout report: Acme Payroll"));
    let errs = console_errors(&driver.log(&sid, "browser").await);
    assert!(errs.is_empty(), "console errors: {errs:?}");
    // No network: every request the page made is the file itself.
    let perf = driver.log(&sid, "performance").await;
    let requests: Vec<String> = perf
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
        .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
        .map(|m| {
            m["message"]["params"]["request"]["url"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert!(
        requests.iter().all(|u| u.starts_with("file://")),
        "network requests: {requests:?}"
    );
    let png = driver.get(&format!("/session/{sid}/screenshot")).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    let path = artifacts_dir().join("payout-report.png");
    std::fs::write(&path, &bytes).unwrap();
    eprintln!("screenshot: {}", path.display());
    // And the flow graph alone.
    let el = driver
        .post(
            &format!("/session/{sid}/element"),
            json!({"using": "css selector", "value": "#flow-graph"}),
        )
        .await;
    let id = el
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let png = driver
        .get(&format!("/session/{sid}/element/{id}/screenshot"))
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    std::fs::write(artifacts_dir().join("flow-graph.png"), &bytes).unwrap();
    let _ = driver
        .http
        .delete(format!("{}/session/{sid}", driver.url))
        .send()
        .await;
}
