//! `paytrace demo --serve` as a child process of a test: started on a free port, its printed
//! `Web UI:` line read, killed on drop (or stopped with SIGTERM by the test).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use super::common::paytrace;
use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc,
    time::Duration,
};

/// `paytrace demo --serve` running (killed on drop).
pub struct Demo {
    /// The process.
    pub child: Child,
    /// The printed login URL (`…/ui/login#key=KEY`).
    pub login_url: String,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `paytrace demo --out OUT --serve --listen 127.0.0.1:0` and waits for its URL.
pub fn start_demo(out: &std::path::Path) -> Demo {
    let mut child = paytrace(&out.join("unused"))
        .arg("demo")
        .arg("--out")
        .arg(out)
        .arg("--serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .env("PAYTRACE_NO_BROWSER", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start paytrace demo --serve");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Web UI: ") {
                let _ = tx.send(url.trim().to_owned());
            }
        }
    });
    let login_url = rx
        .recv_timeout(Duration::from_secs(240))
        .expect("paytrace demo --serve printed no `Web UI:` line");
    let base = login_url
        .split("/ui/")
        .next()
        .expect("a URL with /ui/")
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{login_url}");
    assert!(login_url.contains("/ui/login#key="), "{login_url}");
    Demo {
        child,
        login_url,
        base,
    }
}

impl Demo {
    /// The admin key of the login URL.
    pub fn key(&self) -> String {
        self.login_url
            .split("#key=")
            .nth(1)
            .expect("a key in the URL")
            .to_owned()
    }

    /// Sends SIGTERM and waits for the exit (at most 30 s); the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -TERM {pid}");
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("wait for the demo") {
                return s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "paytrace demo --serve did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
