//! End-to-end: `paytrace index btc --rpc` against a mock Bitcoin Core node (no bitcoind can
//! run on the test machines, so a small local server replays generated blocks; see
//! `paytrace_indexer::btc::mock`): cookie authentication, and kill -9 in the middle of a run
//! followed by a resume, which must give exactly the store of an uninterrupted run.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns
mod common;

use common::{Running, paytrace, run_json};
use paytrace_indexer::{
    BlockNumber, Store, Transfer,
    btc::{
        UtxoStore,
        generate::ChainGen,
        mock::{MockNode, MockState, basic_auth},
    },
};
use std::{path::Path, process::Command, time::Duration};

fn index(data: &Path, url: &str, cookie: &Path) -> Command {
    let mut c = paytrace(data);
    c.args(["--json", "index", "btc", "--rpc", url, "--rpc-cookie"]);
    c.arg(cookie);
    c.args([
        "--blocks-per-commit",
        "3",
        "--concurrency",
        "2",
        "--max-retries",
        "0",
    ]);
    c
}

type Snapshot = (
    Vec<Transfer>,
    Vec<(([u8; 32], u32), ([u8; 32], u64))>,
    Option<BlockNumber>,
);

fn snapshot(data: &Path) -> Snapshot {
    let store = Store::open(data).unwrap();
    let c = store.chain_by_name("bitcoin").unwrap().unwrap().id;
    let t = store
        .range_transfers(c, BlockNumber(0), BlockNumber(u64::MAX))
        .collect::<Result<_, _>>()
        .unwrap();
    let u = UtxoStore::open(&store).unwrap().utxo_set(c).unwrap();
    (t, u, store.checkpoint(c).unwrap().map(|b| b.number))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_equals_an_uninterrupted_run() {
    let blocks = ChainGen::new(21, 25).blocks(120);
    let st = MockState {
        auth: Some(basic_auth("__cookie__", "s3cret")),
        delay: Duration::from_millis(4),
        ..MockState::with_blocks(blocks)
    };
    let node = MockNode::start(st).await;
    let tmp = tempfile::tempdir().unwrap();
    let cookie = tmp.path().join(".cookie");
    std::fs::write(&cookie, "__cookie__:s3cret").unwrap();

    // A wrong cookie is a clear error.
    let bad = tmp.path().join("bad.cookie");
    std::fs::write(&bad, "__cookie__:nope").unwrap();
    let out = index(&tmp.path().join("x"), &node.url, &bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("401"), "{err}");

    let killed = tmp.path().join("killed");
    let mut run = Running::spawn(index(&killed, &node.url, &cookie));
    run.wait_until("a first commit", Duration::from_secs(60), &|r| {
        r.last_committed().is_some_and(|l| l >= 8)
    });
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();
    let (_, _, cp) = snapshot(&killed);
    let cp = cp.expect("some ranges were committed before the kill").0;
    assert!(cp < 119, "killed after the end ({cp})");

    let s = run_json(&mut index(&killed, &node.url, &cookie));
    assert_eq!(s["from"].as_u64(), Some(cp + 1));
    assert_eq!(s["checkpoint"], 119);
    assert_eq!(s["unresolved_inputs"], 0);

    let fresh = tmp.path().join("fresh");
    let s = run_json(&mut index(&fresh, &node.url, &cookie));
    assert_eq!(s["checkpoint"], 119);
    let (a, b) = (snapshot(&killed), snapshot(&fresh));
    assert_eq!(a.0.len(), b.0.len());
    assert!(a.0 == b.0, "transfers differ after kill -9 and resume");
    assert!(a.1 == b.1, "UTXO sets differ after kill -9 and resume");
    assert_eq!(a.2, b.2);
}

/// `follow btc` indexes up to the tip minus the confirmations, keeps up with new blocks, handles
/// a reorg (the node switches to a longer fork of the last blocks) and stops cleanly on SIGINT
/// with its summary; the store then equals a fresh `index btc` of the new chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_tracks_the_tip_through_a_reorg() {
    let mut g = ChainGen::new(31, 8);
    let common = g.blocks(30);
    let (mut ga, mut gb) = (g.clone(), g);
    gb.txs_per_block = 5;
    let mut a = common.clone();
    a.extend(ga.blocks(6)); // tip 35
    let mut b = common;
    b.extend(gb.blocks(10)); // tip 39, different blocks from height 30
    let st = MockState {
        auth: Some(basic_auth("__cookie__", "s3cret")),
        ..MockState::with_blocks(a)
    };
    let node = MockNode::start(st).await;
    let tmp = tempfile::tempdir().unwrap();
    let cookie = tmp.path().join(".cookie");
    std::fs::write(&cookie, "__cookie__:s3cret").unwrap();

    let data = tmp.path().join("followed");
    let mut follow = paytrace(&data);
    follow.args([
        "--json",
        "follow",
        "btc",
        "--rpc",
        &node.url,
        "--rpc-cookie",
    ]);
    follow.arg(&cookie);
    follow.args([
        "--confirmations",
        "1",
        "--poll-interval-ms",
        "100",
        "--blocks-per-commit",
        "4",
        "--concurrency",
        "2",
    ]);
    let mut p = Running::spawn(follow);
    p.wait_until("follow to reach tip - 1", Duration::from_secs(60), &|r| {
        r.last_committed().is_some_and(|l| l >= 34)
    });
    assert!(
        p.last_committed() == Some(34),
        "follow went past tip - confirmations"
    );
    node.set_blocks(b.clone());
    p.wait_until(
        "follow to index the new chain",
        Duration::from_secs(60),
        &|r| r.last_committed().is_some_and(|l| l >= 38),
    );
    let status = p.signal_and_wait("-INT", Duration::from_secs(30));
    assert!(
        status.success(),
        "exit {status}; log:\n{}",
        p.lines().join("\n")
    );
    let mut stdout = String::new();
    if let Some(mut s) = p.child.stdout.take() {
        std::io::Read::read_to_string(&mut s, &mut stdout).unwrap();
    }
    let s: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("follow --json summary is not JSON ({e}): {stdout}"));
    assert_eq!(s["checkpoint"], 38, "{s}");
    assert_eq!(s["reorgs"], 1, "{s}");
    assert_eq!(s["unwound_blocks"], 5, "{s}"); // blocks 30..=34 of the old chain
    assert_eq!(s["interrupted"], true, "{s}");
    assert_eq!(s["unresolved_inputs"], 0, "{s}");
    drop(p);

    let fresh = tmp.path().join("fresh");
    let mut idx = index(&fresh, &node.url, &cookie);
    idx.args(["--to", "38"]);
    assert_eq!(run_json(&mut idx)["checkpoint"], 38);
    let (x, y) = (snapshot(&data), snapshot(&fresh));
    assert!(
        x.0 == y.0,
        "transfers differ from a fresh index of the new chain"
    );
    assert!(
        x.1 == y.1,
        "UTXO sets differ from a fresh index of the new chain"
    );
    assert_eq!(x.2, y.2);

    // Without a node there is a clear error.
    let out = paytrace(&tmp.path().join("none"))
        .args(["follow", "btc", "--chain", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--rpc"), "{err}");
}
