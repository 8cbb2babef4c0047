//! A headless Chromium driven through chromedriver's WebDriver HTTP API, for the browser tests
//! of the web UI: start, open pages, find elements, real clicks and key input, scripts, logs,
//! screenshots (checked non-blank by decoding the PNG and counting its colours).
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`scripts/test` installs them);
//! without them a test fails with that advice, it is never skipped.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use serde_json::{Value, json};
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The WebDriver element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver (killed on drop).
pub struct Driver {
    child: Child,
    pub url: String,
    pub http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session.
pub struct Session<'a> {
    pub driver: &'a Driver,
    pub id: String,
}

impl Driver {
    pub async fn start() -> Self {
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

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let v = self.call(reqwest::Method::POST, path, Some(body)).await;
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v:#}");
        v["value"].clone()
    }

    pub async fn get(&self, path: &str) -> Value {
        let v = self.call(reqwest::Method::GET, path, None).await;
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v:#}");
        v["value"].clone()
    }

    /// A new headless session with its own profile directory.
    pub async fn session(&self, profile: &Path) -> Session<'_> {
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
            "--window-size=1500,1000",
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
        Session {
            driver: self,
            id: v["sessionId"].as_str().unwrap().to_owned(),
        }
    }
}

impl Session<'_> {
    fn p(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    pub async fn goto(&self, url: &str) {
        self.driver
            .post(&self.p("/url"), json!({ "url": url }))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.driver
            .get(&self.p("/url"))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn script(&self, js: &str) -> Value {
        self.driver
            .post(&self.p("/execute/sync"), json!({"script": js, "args": []}))
            .await
    }

    /// The element matching `css`, waiting up to 20 s for it.
    pub async fn find(&self, css: &str) -> String {
        let start = Instant::now();
        loop {
            let v = self
                .driver
                .call(
                    reqwest::Method::POST,
                    &self.p("/element"),
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no element {css} on {}: {v}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real click (WebDriver element click: scrolls it into view, clicks its centre).
    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.driver
            .post(&self.p(&format!("/element/{id}/click")), json!({}))
            .await;
    }

    /// A real mouse click (WebDriver actions: move to the element's centre, press, release)
    /// without the element-click command's interactability check, which refuses an SVG path
    /// whose box has no height (a horizontal edge) even though its stroke is clickable.
    pub async fn click_at(&self, css: &str) {
        let id = self.find(css).await;
        let origin = json!({ ELEMENT: id });
        self.driver
            .post(
                &self.p("/actions"),
                json!({"actions": [{
                    "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                    "actions": [
                        {"type": "pointerMove", "duration": 0, "origin": origin, "x": 0, "y": 0},
                        {"type": "pointerDown", "button": 0},
                        {"type": "pointerUp", "button": 0}
                    ]
                }]}),
            )
            .await;
        let _ = self
            .driver
            .call(reqwest::Method::DELETE, &self.p("/actions"), None)
            .await;
    }

    /// Types `text` into the element (a file input takes a path).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.driver
            .post(
                &self.p(&format!("/element/{id}/value")),
                json!({ "text": text }),
            )
            .await;
    }

    /// Waits up to 20 s until `js` (an expression) is true.
    pub async fn wait_for(&self, what: &str, js: &str) {
        let start = Instant::now();
        loop {
            if self.script(&format!("return !!({js})")).await == json!(true) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what} ({js}) on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Downloads go to `dir` (Chrome DevTools `Browser.setDownloadBehavior`).
    pub async fn downloads_to(&self, dir: &Path) {
        self.driver
            .post(
                &self.p("/goog/cdp/execute"),
                json!({"cmd": "Browser.setDownloadBehavior", "params": {
                    "behavior": "allow", "downloadPath": dir.display().to_string()
                }}),
            )
            .await;
    }

    pub async fn log(&self, kind: &str) -> Vec<Value> {
        self.driver
            .post(&self.p("/se/log"), json!({ "type": kind }))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn cookies(&self) -> Vec<Value> {
        self.driver
            .get(&self.p("/cookie"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Saves a screenshot of the window as `<target>/test-artifacts/NAME.png` and checks it is
    /// not blank: the decoded image has at least `min_colours` distinct colours. Returns the
    /// path and the number of colours.
    pub async fn screenshot(&self, name: &str, min_colours: usize) -> (PathBuf, usize) {
        let png = self.driver.get(&self.p("/screenshot")).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let path = artifacts_dir().join(format!("{name}.png"));
        std::fs::write(&path, &bytes).unwrap();
        let colours = distinct_colours(&bytes);
        assert!(
            colours >= min_colours,
            "screenshot {} looks blank: {colours} distinct colours",
            path.display()
        );
        eprintln!("screenshot: {} ({colours} colours)", path.display());
        (path, colours)
    }

    pub async fn quit(&self) {
        let _ = self
            .driver
            .call(reqwest::Method::DELETE, &self.p(""), None)
            .await;
    }
}

/// The number of distinct RGBA colours of a PNG image.
pub fn distinct_colours(png_bytes: &[u8]) -> usize {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let px = match info.color_type {
        png::ColorType::Rgba => 4,
        png::ColorType::Rgb => 3,
        png::ColorType::GrayscaleAlpha => 2,
        _ => 1,
    };
    buf[..info.buffer_size()]
        .chunks_exact(px)
        .map(<[u8]>::to_vec)
        .collect::<HashSet<_>>()
        .len()
}

/// `<target>/test-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    // <target>/debug/deps/<test exe> -> <target>/test-artifacts
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    let d = target.join("test-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The SEVERE entries of a browser log.
pub fn console_errors(log: &[Value]) -> Vec<String> {
    log.iter()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The URLs a page requested (from the performance log).
pub fn requested_urls(perf: &[Value]) -> Vec<String> {
    perf.iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
        .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
        .map(|m| {
            m["message"]["params"]["request"]["url"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}
