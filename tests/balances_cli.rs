//! End-to-end: `paytrace index balances` builds the balance checkpoints of a store and
//! `paytrace trace` then resumes replays at them, with results identical to the traces run
//! before the stage (the store is written through the indexer library: the point is the
//! stage and the tracer, not a chain source).

#![allow(clippy::unwrap_used)] // tests

mod common;

use alloy_primitives::B256;
use common::*;
use paytrace_indexer::{BlockNumber, BlockRef, ChainKind, Store, Timestamp};
use serde_json::Value;
use std::path::Path;

/// Payee 2 and its counterparty 3 have long clean histories (with clamps: 3 sends more than
/// it received) before the seed (1 -> 2, block 100); afterwards 2 pays 3 and the exchange 9.
fn write_store(dir: &Path) {
    let s = Store::open(dir).unwrap();
    let c = s.register_chain(CHAIN, ChainKind::Evm).unwrap();
    let mut ts = Vec::new();
    for b in 1..100u64 {
        let i = u32::try_from(b).unwrap();
        ts.push(t(b, 0, 10 + u8::try_from(b % 7).unwrap(), 2, 100 + b));
        ts.push(t(b, 1, 2, 20 + u8::try_from(b % 5).unwrap(), 50));
        ts.push(t(b, 2, 3, 30, 7 * u64::from(i % 3)));
        ts.push(t(b, 3, 40, 3, 5));
    }
    ts.push(t(100, 0, 1, 2, 1_000));
    for b in 101..120u64 {
        ts.push(t(b, 0, 2, 3, 90));
        ts.push(t(b, 1, 3, 9, 40));
        ts.push(t(b, 2, 3, 50, 30));
    }
    let blocks: Vec<BlockRef> = (1..=120u64)
        .map(|n| BlockRef {
            number: BlockNumber(n),
            hash: B256::repeat_byte(u8::try_from(n).unwrap()),
            parent: B256::repeat_byte(u8::try_from(n - 1).unwrap()),
            time: Timestamp(n * 12),
        })
        .collect();
    s.write_range(c, &blocks, &ts).unwrap();
    s.persist().unwrap();
}

fn trace(dir: &Path, args: &[&str]) -> Value {
    let mut cmd = paytrace(dir);
    cmd.args(["--json", "trace"])
        .args(args)
        .args(["--stop", &format!("{}=exchange", a(9))]);
    run_json(&mut cmd)
}

fn without_stats(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("stats");
    v
}

#[test]
fn index_balances_then_trace_gives_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let seed = a(1).to_string();
    let back = a(3).to_string();
    let models = ["poison", "haircut", "fifo", "lifo"];
    let before: Vec<(Value, Value)> = models
        .iter()
        .map(|m| {
            (
                trace(dir.path(), &[&seed, "--model", m, "--hops", "3"]),
                trace(dir.path(), &[&back, "--backward", "--model", m]),
            )
        })
        .collect();
    assert_eq!(before[1].0["stats"]["checkpoints_used"], 0);

    let built =
        run_json(paytrace(dir.path()).args(["--json", "index", "balances", "--interval", "8"]));
    let r = &built["chains"][0];
    assert_eq!(r["chain"], CHAIN);
    assert_eq!(r["mode"], "build");
    assert_eq!(r["progress"], 120);
    assert!(r["checkpoints"].as_u64().unwrap() > 40, "{built}");
    assert!(r["bytes"].as_u64().unwrap() > 0);
    // A full build compacts the address indexes first.
    assert!(r["compaction"]["tables_after"].is_u64(), "{built}");

    for (m, (fwd, bwd)) in models.iter().zip(&before) {
        let f = trace(dir.path(), &[&seed, "--model", m, "--hops", "3"]);
        assert!(
            f["stats"]["checkpoints_used"].as_u64().unwrap() >= 1,
            "{m}: {}",
            f["stats"]
        );
        assert!(
            f["stats"]["transfers_read"].as_u64().unwrap()
                < fwd["stats"]["transfers_read"].as_u64().unwrap()
        );
        assert_eq!(without_stats(f), without_stats(fwd.clone()), "forward {m}");
        let b = trace(dir.path(), &[&back, "--backward", "--model", m]);
        assert_eq!(without_stats(b), without_stats(bwd.clone()), "backward {m}");
    }
    assert_eq!(
        before[1].0["incomplete_history"], true,
        "address 3 sends more than it received"
    );

    // Nothing new indexed: an update writes nothing.
    let again = run_json(paytrace(dir.path()).args(["--json", "index", "balances"]));
    assert_eq!(again["chains"][0]["mode"], "update");
    assert_eq!(again["chains"][0]["checkpoints"], 0);
    assert!(again["chains"][0]["compaction"].is_null());
    // Text output names the chain and the counts.
    let out =
        run_ok(paytrace(dir.path()).args(["index", "balances", "--rebuild", "--chain", CHAIN]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("balance checkpoints build"), "{text}");
    // An unknown chain is a clear error.
    let out = paytrace(dir.path())
        .args(["index", "balances", "--chain", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no chain \"nope\""));
}
