//! End-to-end: read commands never write to the store. The store directory (every file's
//! path and bytes) is the same before and after each read command, on the demo's store as the
//! demo leaves it and after the writing commands of the alerts (`watch add`, `alerts
//! evaluate`, `alerts ack`) ran on it.
//!
//! Regressions: the alert keyspaces (and those of clusters and the Bitcoin UTXO set) were
//! created by the first read open that looked at them; `alerts list` and `watch list` opened
//! the store for writing; the demo and the alert commands left their last writes in the
//! journal, which the next read open replayed.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{Running, paytrace, run_ok};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

const PROVIDER: &str = "0x9E35B01C15A4Dc0dcA929b819d2a9711614c7Ab1";
const OPERATOR: &str = "0xFB912BA54551CFA96518b1D93fC7188067Eb6A80";
const PAYEE: &str = "0x3433ab8Ee29B8b896a4b7e7d5F669595D7F24C5D";

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn diff(a: &BTreeMap<PathBuf, Vec<u8>>, b: &BTreeMap<PathBuf, Vec<u8>>) -> Vec<String> {
    let mut d = Vec::new();
    for (p, v) in a {
        match b.get(p) {
            None => d.push(format!("removed {}", p.display())),
            Some(w) if w != v => d.push(format!("changed {}", p.display())),
            Some(_) => {}
        }
    }
    for p in b.keys().filter(|p| !a.contains_key(*p)) {
        d.push(format!("created {}", p.display()));
    }
    d
}

const READS: &[&[&str]] = &[
    &["stats"],
    &["address", OPERATOR],
    &["trace", OPERATOR, "--hops", "3"],
    &["trace", PAYEE, "--backward"],
    &["path", PROVIDER, OPERATOR],
    &["screen", PAYEE, "--as-of", "2025-06-25"],
    &["patterns"],
    &["labels", "show", OPERATOR],
    &["labels", "list"],
    &["labels", "sources"],
    &["cluster", "show", PAYEE],
    &["alerts"],
    &["alerts", "list"],
    &["watch", "list"],
    &[
        "report",
        "payouts",
        "--provider-address",
        PROVIDER,
        "--json",
    ],
    &["store", "check"],
];

fn reads_write_nothing(store: &Path, when: &str) {
    for args in READS {
        let before = snapshot(store);
        let out = paytrace(store).args(*args).output().unwrap();
        assert!(
            out.status.success(),
            "{when}: {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = diff(&before, &snapshot(store));
        assert!(
            d.is_empty(),
            "{when}: `paytrace {}` wrote: {d:?}",
            args.join(" ")
        );
    }
}

#[test]
fn read_commands_leave_the_store_directory_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    run_ok(
        paytrace(&dir.path().join("unused"))
            .args(["--json", "demo", "--out"])
            .arg(&out),
    );
    let store = out.join("store");
    reads_write_nothing(&store, "after the demo");
    run_ok(paytrace(&store).args(["watch", "add", PROVIDER, "--payer"]));
    reads_write_nothing(&store, "after watch add");
    run_ok(paytrace(&store).args(["alerts", "evaluate"]));
    reads_write_nothing(&store, "after alerts evaluate");
    run_ok(paytrace(&store).args(["alerts", "ack", "1"]));
    reads_write_nothing(&store, "after alerts ack");
}

/// After `follow evm` stopped (its alert task stopped first, then the store persisted), the
/// next read commands write nothing. Runs against a real anvil node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_commands_after_follow_write_nothing() {
    let anvil = paytrace_indexer::testutil::Anvil::spawn().await.unwrap();
    anvil
        .rpc()
        .call_raw("anvil_mine", serde_json::json!(["0x14"]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let url = anvil.url().to_owned();
    let store2 = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = paytrace(&store2);
        c.args(["follow", "evm", "--chain", "dev", "--rpc", &url])
            .args(["--confirmations", "0", "--poll-interval-ms", "50"]);
        let mut f = Running::spawn(c);
        f.wait_until(
            "blocks 0..=20 committed",
            std::time::Duration::from_secs(60),
            &|r| r.last_committed().is_some_and(|b| b >= 20),
        );
        let st = f.signal_and_wait("-INT", std::time::Duration::from_secs(30));
        assert!(st.success(), "follow exited with {st}");
        for args in [
            &["stats"][..],
            &["alerts", "list"],
            &["watch", "list"],
            &[
                "trace",
                "0x0000000000000000000000000000000000000001",
                "--backward",
            ],
        ] {
            let before = snapshot(&store2);
            let out = paytrace(&store2).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let d = diff(&before, &snapshot(&store2));
            assert!(
                d.is_empty(),
                "after follow: `paytrace {}` wrote: {d:?}",
                args.join(" ")
            );
        }
    })
    .await
    .unwrap();
    drop(store);
}
