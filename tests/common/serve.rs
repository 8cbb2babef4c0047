//! Helpers of the HTTP tests: a demo store, API keys, and a running `paytrace serve`.

use super::{Running, paytrace, run_ok};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// Builds the offline demo in `out` and returns its store's data dir.
pub fn demo_store(out: &Path) -> PathBuf {
    run_ok(
        paytrace(&out.join("unused-data-dir"))
            .args(["--json", "demo", "--out"])
            .arg(out),
    );
    out.join("store")
}

/// Creates an API key with `role` in the store at `data_dir` (no server may run on it).
pub fn create_key(data_dir: &Path, role: &str) -> String {
    let out = run_ok(paytrace(data_dir).args(["keys", "create", "--role", role]));
    String::from_utf8(out.stdout)
        .expect("the key is UTF-8")
        .trim()
        .to_owned()
}

/// A running `paytrace serve` on a free port of 127.0.0.1.
pub struct Server {
    /// The process and its log.
    pub running: Running,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `paytrace serve --listen 127.0.0.1:0` on `data_dir` with `extra` flags and
    /// waits for its "listening on" line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut cmd = paytrace(data_dir);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(extra);
        let mut running = Running::spawn(cmd);
        running.wait_until("the server to listen", Duration::from_secs(60), &|r| {
            r.lines().iter().any(|l| l.starts_with("listening on "))
        });
        let base = running
            .lines()
            .iter()
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned))
            .expect("a listening line");
        Self { running, base }
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The committed OpenAPI document (`serve_openapi.rs` checks it equals the served one).
pub fn openapi() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    serde_json::from_slice(&std::fs::read(&path).expect("docs/openapi.json"))
        .expect("docs/openapi.json is JSON")
}

/// The path template of `doc` that `path` matches (`{x}` segments match any segment).
pub fn template<'a>(doc: &'a serde_json::Value, path: &str) -> Option<&'a str> {
    let segs: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .map(String::as_str)
        .find(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            ts.len() == segs.len()
                && ts
                    .iter()
                    .zip(&segs)
                    .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
        })
}

/// Checks an answer against the document: its path and method are documented, its status is
/// one of the operation's, and a JSON body validates against that status's schema (a problem
/// document against `Problem`).
pub fn check_answer(
    doc: &serde_json::Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &str,
) {
    let t = template(doc, path).unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
    let op = &doc["paths"][t][method.to_ascii_lowercase()];
    assert!(
        op.is_object(),
        "{method} {t} is not in the OpenAPI document"
    );
    let resp = &op["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {path}: status {status} is not documented"
    );
    let media = content_type.split(';').next().unwrap_or("").trim();
    let content = resp["content"]
        .as_object()
        .and_then(|c| c.iter().find(|(k, _)| k.split(';').next() == Some(media)))
        .map(|(_, v)| v)
        .unwrap_or_else(|| {
            panic!("{method} {path} {status}: media type {content_type} is not documented")
        });
    if !media.ends_with("json") {
        return;
    }
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: not JSON: {e}"));
    let schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [content["schema"]],
    });
    let v = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the answer does not validate: {errors:?}\n{body}"
    );
}
