//! End-to-end on the offline demo store: every time option takes `YYYY-MM-DD`, RFC 3339 or
//! Unix seconds; text outputs show ISO 8601 UTC times and no Rust debug formatting; empty
//! results say what was searched and what the store holds instead.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{paytrace, run_json, run_ok};
use std::path::{Path, PathBuf};

/// The demo's payroll provider and its operator (see `paytrace demo`).
const PROVIDER: &str = "0x9E35B01C15A4Dc0dcA929b819d2a9711614c7Ab1";
const OPERATOR: &str = "0xFB912BA54551CFA96518b1D93fC7188067Eb6A80";

fn demo(dir: &Path) -> PathBuf {
    let out = dir.join("demo");
    run_ok(
        paytrace(&dir.join("unused"))
            .args(["--json", "demo", "--out"])
            .arg(&out),
    );
    out.join("store")
}

fn text(store: &Path, args: &[&str]) -> (bool, String, String) {
    let out = paytrace(store).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn report_and_labels_take_days_rfc3339_and_unix_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo(dir.path());
    // The demo pays on 2025-01-01, 2025-01-31, 2025-03-02, ...: one payday, 12 payouts, in
    // each form (the old `report` refused RFC 3339).
    for (since, until) in [
        ("2025-01-31", "2025-01-31"),
        ("2025-01-31T00:00:00Z", "2025-01-31T23:59:59Z"),
        ("1738281600", "1738367999"),
        ("2025-01-31T01:00:00+01:00", "1738367999"),
    ] {
        let r = run_json(paytrace(&store).args([
            "--json",
            "report",
            "payouts",
            "--provider-address",
            PROVIDER,
            "--since",
            since,
            "--until",
            until,
            "--labels-as-of",
            "2025-06-25T12:00:00Z",
        ]));
        assert_eq!(r["summary"]["payouts"], 12, "{since}..{until}");
        assert_eq!(r["verdicts_as_of"], "2025-06-25");
    }
    // `labels show --as-of` takes a Unix second (the old parser wanted YYYY-MM-DD only).
    let (ok, _, err) = text(
        &store,
        &["labels", "show", OPERATOR, "--as-of", "1740830400"],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = text(
        &store,
        &[
            "report",
            "payouts",
            "--provider-address",
            PROVIDER,
            "--since",
            "soon",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("--since") && err.contains("RFC 3339") && err.contains("Unix seconds"),
        "{err}"
    );
}

#[test]
fn text_outputs_show_iso_times_and_no_debug_formatting() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo(dir.path());
    let (ok, trace, err) = text(&store, &["trace", OPERATOR, "--hops", "2"]);
    assert!(ok, "{err}");
    let (ok, path, err) = text(&store, &["path", PROVIDER, OPERATOR, "-k", "1"]);
    assert!(ok, "{err}");
    assert!(path.contains("2025-01-01T09:16:00Z"), "{path}");
    for out in [&trace, &path] {
        for debug in ["BlockNumber(", "ChainId(", "Outflows(", "t=17", "{1:"] {
            assert!(!out.contains(debug), "{debug} in:\n{out}");
        }
    }
    assert!(trace.contains("read up to block 427"), "{trace}");
    // The first arrival of each destination is an ISO 8601 date-time, not Unix seconds.
    let rows: Vec<&str> = trace
        .lines()
        .skip_while(|l| !l.starts_with("Destinations:"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(!rows.is_empty(), "{trace}");
    for row in rows {
        assert!(
            row.split_whitespace()
                .any(|w| w.len() == 20 && w.ends_with('Z') && w.as_bytes()[10] == b'T'),
            "no ISO 8601 time in {row:?}"
        );
    }
}

#[test]
fn empty_results_say_what_was_searched_and_what_exists() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo(dir.path());
    // No payday in this window: the nearest paydays on both sides and the chains indexed.
    let out = paytrace(&store)
        .args([
            "--json",
            "report",
            "payouts",
            "--provider-address",
            PROVIDER,
        ])
        .args(["--since", "2025-02-05", "--until", "2025-02-20"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["payouts"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "no payouts from",
        "2025-02-05T00:00:00Z",
        "2025-01-31 (before",
        "2025-03-02 (after",
        "chains indexed: demo (last block 427)",
    ] {
        assert!(err.contains(want), "{want:?} missing in:\n{err}");
    }
    // A trace whose window selects nothing names what the address did send.
    let (ok, _, err) = text(&store, &["trace", OPERATOR, "--since", "2025-07-01"]);
    assert!(!ok);
    for want in [
        "sent no transfer on any chain since 2025-07-01T00:00:00Z",
        "sent 18 on chain demo",
        "2025-01-05T09:00:00Z to 2025-06-04T09:03:00Z",
        "chains indexed: demo",
    ] {
        assert!(err.contains(want), "{want:?} missing in:\n{err}");
    }
    assert!(!err.contains("Outflows("), "{err}");
    // An address the store never saw.
    let nobody = "0x00000000000000000000000000000000000000ab";
    let (ok, out, err) = text(&store, &["screen", nobody]);
    assert!(ok, "{err}");
    assert!(
        out.contains("no exposure found") && out.contains("holds no transfer of"),
        "{out}"
    );
    let (ok, out, err) = text(&store, &["patterns", "--type", "cycle", "--to-block", "3"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("searched cycle") && out.contains("blocks 0..=3") && out.contains("demo"),
        "{out}"
    );
    let (ok, out, err) = text(&store, &["alerts", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("no alerts"), "{out}");
}
