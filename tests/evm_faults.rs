//! End-to-end tests of `paytrace index evm` / `follow evm` against a real anvil node behind
//! the fault-injecting JSON-RPC proxy (`paytrace_indexer::testutil::FaultProxy`): trace-mode
//! probing on a geth-like node, nodes without trace methods, truncated bodies, dropped batch
//! elements, connection resets, `Retry-After`, a hanging node, and `follow` through faults.
//!
//! The proxy stands in for misbehaving nodes and for geth's tracing API (no geth binary can
//! run here); the chain data itself always comes from a real anvil.
//!
//! Needs anvil: run `scripts/install-anvil` once (the tests fail, not skip, without it).

#![allow(clippy::unwrap_used)] // tests

mod common;

use common::*;
use paytrace_indexer::{
    TransferKind,
    evm::{RpcClient, RpcConfig, rpc::Call},
    testutil::{FailCalls, Fault, FaultProxy, Faults},
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn geth() -> Faults {
    Faults {
        geth: true,
        ..Faults::default()
    }
}

fn fail(method: &str, count: u32, code: i64, message: &str) -> FailCalls {
    FailCalls {
        method: method.to_owned(),
        count,
        code,
        message: message.to_owned(),
    }
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A geth-like node (no `trace_block`, genesis not traceable) is indexed through
/// `debug_traceBlockByNumber` with the callTracer: the same transfers, internal ones included,
/// as a parity-mode index of the same chain. A transient `-32603` on the first probe is
/// retried (the node is still found to have parity traces).
#[tokio::test]
async fn geth_like_node_indexes_internal_transfers_like_parity() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();

    let parity_dir = tempfile::tempdir().unwrap();
    let s = run_json(&mut index_cmd(
        parity_dir.path(),
        anvil.url(),
        head,
        &["--trace-mode", "parity"],
    ));
    assert_eq!(s["trace_mode"], "parity", "{s}");
    let (chain, parity, _) = read_store(parity_dir.path());
    let internal = parity
        .iter()
        .filter(|t| t.kind() == TransferKind::Internal)
        .count();
    assert!(internal > 0, "the standard chain has internal transfers");
    assert_transfers_eq(&parity, &g.expected(chain));

    let proxy = FaultProxy::start(anvil.url(), 1).unwrap();
    proxy.set(geth());
    let dir = tempfile::tempdir().unwrap();
    let s = run_json(&mut index_cmd(dir.path(), proxy.url(), head, &[]));
    assert_eq!(s["trace_mode"], "geth", "{s}");
    assert_eq!(s["internal_transfers"], "indexed", "{s}");
    let (_, via_geth, _) = read_store(dir.path());
    assert_transfers_eq(&via_geth, &parity);
    let probes: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|r| r.methods.iter().any(|m| m == "trace_block"))
        .collect();
    assert_eq!(probes.len(), 1, "one trace_block probe: {probes:?}");

    // A transient internal error on the first probe is retried, not taken for "no traces".
    let proxy = FaultProxy::start(anvil.url(), 2).unwrap();
    proxy.set(Faults {
        fail_calls: vec![fail("trace_block", 1, -32603, "internal error")],
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let s = run_json(&mut index_cmd(dir.path(), proxy.url(), head, &[]));
    assert_eq!(s["trace_mode"], "parity", "{s}");
    assert_eq!(proxy.count(|f| *f == Fault::NodeError), 1);
    let (_, stored, _) = read_store(dir.path());
    assert_transfers_eq(&stored, &parity);
}

/// With `trace_mode = auto`, a node where both trace probes fail stops the run with an error
/// naming both answers and `--trace-mode none`, exit non-zero, nothing written. With
/// `--trace-mode none` the run works and its summary (text and JSON) says internal transfers
/// were skipped, counting the untraced transactions.
#[tokio::test]
async fn no_trace_method_fails_loudly_unless_trace_mode_none() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let proxy = FaultProxy::start(anvil.url(), 3).unwrap();
    proxy.set(Faults {
        fail_calls: vec![fail(
            "debug_traceBlockByNumber",
            u32::MAX,
            -32000,
            "historical state is not available",
        )],
        ..geth()
    });
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = index_cmd(&data, proxy.url(), head, &[]).output().unwrap();
    let err = stderr_of(&out);
    assert!(!out.status.success(), "must fail: {err}");
    for want in [
        "trace_block",
        "does not exist",
        "debug_traceBlockByNumber",
        "historical state is not available",
        "--trace-mode none",
    ] {
        assert!(
            err.contains(want),
            "{want:?} missing from the error:\n{err}"
        );
    }
    assert!(
        !data.exists(),
        "nothing may be written when the trace probe fails"
    );

    // The user's choice: no internal transfers, and the summary says so.
    let out = run_ok(paytrace(&data).args([
        "index",
        "evm",
        "--chain",
        CHAIN,
        "--rpc",
        proxy.url(),
        "--from",
        "0",
        "--to",
        &head.to_string(),
        "--trace-mode",
        "none",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("internal transfers: skipped (trace mode none)"),
        "{text}"
    );
    let (chain, stored, _) = read_store(&data);
    let without_internal: Vec<_> = g
        .expected(chain)
        .into_iter()
        .filter(|t| t.kind() != TransferKind::Internal)
        .collect();
    assert_transfers_eq(&stored, &without_internal);

    let dir = tempfile::tempdir().unwrap();
    let s = run_json(&mut index_cmd(
        dir.path(),
        proxy.url(),
        head,
        &["--trace-mode", "none"],
    ));
    assert_eq!(s["trace_mode"], "none", "{s}");
    assert_eq!(s["internal_transfers"], "skipped (trace mode none)", "{s}");
    assert!(s["skipped"]["untraced_txs"].as_u64().unwrap() > 0, "{s}");
}

/// Truncated bodies, dropped batch elements and reset connections (10-30 %) are retried: one
/// run indexes exactly the clean chain.
#[tokio::test]
async fn index_through_faults_completes_in_one_run() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let proxy = FaultProxy::start(anvil.url(), 4).unwrap();
    proxy.set(Faults {
        truncate_pct: 15,
        drop_element_pct: 20,
        reset_pct: 10,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let s = run_json(&mut index_cmd(
        dir.path(),
        proxy.url(),
        head,
        &["--batch-size", "10"],
    ));
    eprintln!("indexed through faults in {:?}: {s}", t.elapsed());
    let (chain, stored, checkpoint) = read_store(dir.path());
    assert_eq!(checkpoint.map(|b| b.0), Some(head));
    assert_transfers_eq(&stored, &g.expected(chain));
    assert_eq!(s["trace_mode"], "parity", "{s}");
    let truncated = proxy.count(|f| *f == Fault::Truncated);
    let dropped = proxy.count(|f| matches!(f, Fault::Dropped(_)));
    let resets = proxy.count(|f| *f == Fault::Reset);
    eprintln!(
        "{} requests: {truncated} truncated, {dropped} with dropped elements, {resets} resets",
        proxy.seen().len()
    );
    assert!(truncated > 0 && dropped > 0 && resets > 0);
}

/// A batch reply missing elements keeps the answered calls and asks again only for the
/// missing ones.
#[tokio::test]
async fn batch_reasks_only_missing_calls() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let proxy = FaultProxy::start(anvil.url(), 5).unwrap();
    proxy.set(Faults {
        drop_element_pct: 50,
        ..Faults::default()
    });
    let rpc = RpcClient::new(RpcConfig {
        min_backoff: Duration::from_millis(10),
        max_retries: 20,
        ..RpcConfig::new(proxy.url())
    })
    .unwrap();
    let n = head.min(20);
    let calls: Vec<Call> = (1..=n)
        .map(|b| Call {
            method: "eth_getBlockByNumber",
            params: json!([format!("{b:#x}"), false]),
        })
        .collect();
    let blocks: Vec<Value> = rpc.batch(&calls, "test blocks").await.unwrap();
    let numbers: Vec<u64> = blocks
        .iter()
        .map(|b| {
            u64::from_str_radix(b["number"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
        })
        .collect();
    assert_eq!(numbers, (1..=n).collect::<Vec<_>>());
    let seen = proxy.seen();
    assert!(seen.len() >= 2, "some elements were dropped: {seen:?}");
    let asked: usize = seen.iter().map(|r| r.methods.len()).sum();
    let dropped: usize = seen
        .iter()
        .filter_map(|r| match r.fault {
            Some(Fault::Dropped(k)) => Some(k),
            _ => None,
        })
        .sum();
    assert_eq!(
        asked,
        usize::try_from(n).unwrap() + dropped,
        "each retry asks only for the calls still missing: {seen:?}"
    );
}

/// `Retry-After` on a 429 is honoured (in seconds here; HTTP dates are unit-tested).
#[tokio::test]
async fn retry_after_is_honoured() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let proxy = FaultProxy::start(anvil.url(), 6).unwrap();
    proxy.set(Faults {
        rate_limited: 1,
        retry_after: Some("2".to_owned()),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    run_json(&mut index_cmd(dir.path(), proxy.url(), head.min(3), &[]));
    let seen = proxy.seen();
    let limited = seen
        .iter()
        .position(|r| r.fault == Some(Fault::RateLimited))
        .expect("a 429 answer");
    let next = seen.get(limited + 1).expect("a request after the 429");
    let waited = next.at.duration_since(seen[limited].at);
    eprintln!("retried {waited:?} after a 429 with Retry-After: 2");
    assert!(
        waited >= Duration::from_millis(1_950),
        "retried after {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "retried after {waited:?}");
}

/// A node that accepts requests and never answers fails the run within the deadline, with
/// a message naming the request.
#[tokio::test]
async fn hanging_node_fails_within_the_deadline() {
    let anvil = paytrace_indexer::testutil::Anvil::builder()
        .spawn()
        .await
        .unwrap();
    let proxy = FaultProxy::start(anvil.url(), 7).unwrap();
    proxy.set(Faults {
        hang: true,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = index_cmd(
        dir.path(),
        proxy.url(),
        5,
        &["--timeout-secs", "1", "--deadline-secs", "3"],
    )
    .output()
    .unwrap();
    let took = t.elapsed();
    let err = stderr_of(&out);
    eprintln!("a hanging node failed the run after {took:?}");
    assert!(!out.status.success(), "must fail: {err}");
    assert!(took < Duration::from_secs(15), "took {took:?}: {err}");
    assert!(
        err.contains("eth_blockNumber") && err.contains("no complete answer within 3s"),
        "the error names the request and the deadline:\n{err}"
    );
}

/// `follow` keeps going through truncated bodies, resets and node errors that exhaust the
/// per-request retries (`--max-retries 0`): it logs a warning, backs off, and ends with
/// exactly the chain's transfers.
#[tokio::test]
async fn follow_survives_injected_faults() {
    let (anvil, mut g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let proxy = FaultProxy::start(anvil.url(), 8).unwrap();
    proxy.set(Faults {
        truncate_pct: 20,
        reset_pct: 10,
        fail_calls: vec![fail("eth_blockNumber", 2, -32603, "internal error")],
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let mut follow = paytrace(dir.path());
    follow.args([
        "follow",
        "evm",
        "--chain",
        CHAIN,
        "--rpc",
        proxy.url(),
        "--confirmations",
        "0",
        "--poll-interval-ms",
        "100",
        "--max-retries",
        "0",
    ]);
    let mut p = Running::spawn(follow);
    p.wait_until(
        "follow to retry failed steps",
        Duration::from_secs(120),
        &|p| {
            p.lines()
                .iter()
                .filter(|l| l.contains("follow step failed; retrying") && l.contains("WARN"))
                .count()
                >= 3
        },
    );
    assert!(
        p.lines()
            .iter()
            .any(|l| l.contains("cannot reach the node; retrying")),
        "a failing first question is retried too"
    );
    // Milder faults from here on, so that the steps' backoff stays short.
    proxy.update(|f| {
        f.truncate_pct = 5;
        f.reset_pct = 0;
    });
    p.wait_until("follow to reach the head", Duration::from_secs(180), &|p| {
        p.last_committed().is_some_and(|l| l >= head)
    });
    // New blocks while the faults go on.
    let a = g.accounts().to_vec();
    for i in 0..3u64 {
        let spec = g.native(a[1], a[2], alloy_primitives::U256::from(500 + i));
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let new_head = g.head().await.unwrap();
    p.wait_until(
        "follow to index new blocks",
        Duration::from_secs(180),
        &|p| p.last_committed().is_some_and(|l| l >= new_head),
    );
    let status = p.signal_and_wait("-TERM", Duration::from_secs(60));
    assert!(
        status.success(),
        "follow exit status {status}; log:\n{}",
        p.lines().join("\n")
    );
    drop(p);
    assert!(proxy.count(|f| *f == Fault::Truncated) > 0);
    let (chain, stored, checkpoint) = read_store(dir.path());
    assert_eq!(checkpoint.map(|b| b.0), Some(new_head));
    assert_transfers_eq(&stored, &g.expected(chain));
}
