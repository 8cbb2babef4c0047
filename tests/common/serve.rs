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
