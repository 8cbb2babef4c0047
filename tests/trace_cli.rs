//! End-to-end: `paytrace trace` output as a pipe sees it (compact JSON), its limits
//! (`--max-nodes`, `--budget-ms`) marked as `truncated` in JSON and text, and clear messages
//! for malformed seeds. The store is written through the indexer library: the point is the
//! command, not a chain source.

#![allow(clippy::unwrap_used)] // tests

mod common;

use alloy_primitives::B256;
use common::*;
use paytrace_indexer::{BlockNumber, BlockRef, ChainKind, Store, Timestamp};
use serde_json::Value;
use std::path::Path;

/// A fan-out: 1 pays 2 (block 1), 2 pays 10..=29 (block 2), each of them pays 40 + its
/// index (block 3): 41 addresses to follow.
fn write_store(dir: &Path) {
    let s = Store::open(dir).unwrap();
    let c = s.register_chain(CHAIN, ChainKind::Evm).unwrap();
    let mut ts = vec![t(1, 0, 1, 2, 20_000)];
    for i in 0..20u8 {
        ts.push(t(2, u32::from(i), 2, 10 + i, 1_000));
        ts.push(t(3, u32::from(i), 10 + i, 40 + i, 500));
    }
    let blocks: Vec<BlockRef> = (1..=3u64)
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

fn trace_json(dir: &Path, args: &[&str]) -> (Value, String) {
    let out = run_ok(paytrace(dir).args(["trace", "--format", "json"]).args(args));
    let text = String::from_utf8(out.stdout).unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

#[test]
fn json_is_compact_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let seed = a(1).to_string();
    // stdout is a pipe here: one line of compact JSON, no indentation.
    let (v, text) = trace_json(dir.path(), &[&seed]);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.ends_with('\n'));
    assert!(!text.contains("\n  "), "{text}");
    assert!(!text.contains("\": "), "compact separators: {text}");
    assert_eq!(v["truncated"], false);
    assert!(v["truncated_by"].is_null());
    assert_eq!(v["stats"]["expanded_addresses"], 41);
    // The global --json is the same output.
    let out = run_ok(paytrace(dir.path()).args(["--json", "trace", &seed]));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
}

#[test]
fn max_nodes_marks_the_result_truncated() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let seed = a(1).to_string();
    let (v, _) = trace_json(dir.path(), &[&seed, "--max-nodes", "5"]);
    assert_eq!(v["truncated"], true, "{v}");
    assert_eq!(v["truncated_by"], "max_nodes");
    assert_eq!(v["stats"]["expanded_addresses"], 5);
    let limited = v["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "node_limit")
        .count();
    assert_eq!(limited, 20, "{v}");
    assert!(v["totals_by_category"]["node_limit"]["native"].is_string());
    // Exactly at the limit nothing is cut: not truncated.
    let (v, _) = trace_json(dir.path(), &[&seed, "--max-nodes", "41"]);
    assert_eq!(v["truncated"], false, "{v}");
    // Backward too.
    let back = a(40).to_string();
    let (v, _) = trace_json(dir.path(), &[&back, "--backward", "--max-nodes", "1"]);
    assert_eq!(v["truncated"], true, "{v}");
    assert_eq!(v["truncated_by"], "max_nodes");
    // Text says so.
    let out = run_ok(paytrace(dir.path()).args(["trace", &seed, "--max-nodes", "5"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("TRUNCATED (max_nodes)"), "{text}");
    let out = run_ok(paytrace(dir.path()).args(["trace", &seed]));
    assert!(!String::from_utf8(out.stdout).unwrap().contains("TRUNCATED"));
}

#[test]
fn time_budget_marks_the_result_truncated() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let seed = a(1).to_string();
    // A budget of 0 ms is spent before the first address is followed.
    let (v, _) = trace_json(dir.path(), &[&seed, "--budget-ms", "0"]);
    assert_eq!(v["truncated"], true, "{v}");
    assert_eq!(v["truncated_by"], "time_budget");
    assert_eq!(v["stats"]["expanded_addresses"], 0);
    assert_eq!(v["destinations"][0]["status"], "time_budget");
    assert_eq!(v["totals_by_category"]["time_budget"]["native"], "20000");
    let back = a(40).to_string();
    let (v, _) = trace_json(dir.path(), &[&back, "--backward", "--budget-ms", "0"]);
    assert_eq!(v["truncated_by"], "time_budget", "{v}");
    // A generous budget changes nothing.
    let (v, _) = trace_json(dir.path(), &[&seed, "--budget-ms", "600000"]);
    assert_eq!(v["truncated"], false);
    let out = run_ok(paytrace(dir.path()).args(["trace", &seed, "--budget-ms", "0"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("TRUNCATED (time_budget)"), "{text}");
}

#[test]
fn malformed_seeds_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    write_store(dir.path());
    let bad = format!("0x{}", "Z".repeat(40));
    for (seed, says) in [
        (bad.as_str(), "'Z' at position 2 is not a hex digit"),
        ("0x1234", "4 hex digits is neither 40 (address) nor 64"),
        ("0xabc:x", "INDEX after ':' must be a number"),
    ] {
        let out = paytrace(dir.path()).args(["trace", seed]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{seed}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{seed}: {err}");
        assert!(!err.contains("invalid string length"), "{err}");
        if !seed.contains(':') {
            assert!(err.contains("0x + 40 hex digits"), "{err}");
            assert!(err.contains("0x + 64 hex digits"), "{err}");
        }
    }
}
