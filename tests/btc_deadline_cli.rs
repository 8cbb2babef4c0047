//! End-to-end: `index btc` and `follow btc` take `--timeout-secs` and `--deadline-secs` like
//! `index evm`, and a node (or Esplora server) that accepts connections and never answers
//! fails the run after about the deadline, naming the request. (No node can be made to hang
//! on purpose here: a TCP listener that never answers stands for it.)

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Running, paytrace};
use std::time::{Duration, Instant};

/// A listener that accepts connections and holds them open without answering.
fn hung_server() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in l.incoming() {
            open.push(s);
        }
    });
    url
}

#[test]
fn a_hung_bitcoin_source_fails_after_the_deadline() {
    let url = hung_server();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for args in [
        vec!["index", "btc", "--rpc", &url],
        vec![
            "index",
            "btc",
            "--esplora",
            &url,
            "--seed",
            "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S",
        ],
    ] {
        let started = Instant::now();
        let out = paytrace(&store)
            .args(&args)
            .args(["--timeout-secs", "30", "--deadline-secs", "2"])
            .output()
            .unwrap();
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            took < Duration::from_secs(20),
            "{args:?} took {took:?}: {err}"
        );
        assert!(
            err.contains("within 2s") || err.contains("deadline of 2s"),
            "{args:?}: {err}"
        );
    }
    // `follow` retries a failed step instead of exiting: each attempt gives up after the
    // deadline and says so in its log.
    let mut f = Running::spawn({
        let mut c = paytrace(&store);
        c.args(["follow", "btc", "--rpc", &url]).args([
            "--timeout-secs",
            "30",
            "--deadline-secs",
            "2",
        ]);
        c
    });
    f.wait_until(
        "a step that gave up after the deadline",
        Duration::from_secs(20),
        &|r| r.lines().iter().any(|l| l.contains("within 2s")),
    );
    f.signal_and_wait("-INT", Duration::from_secs(20));
}
