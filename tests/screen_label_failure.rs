//! A label read that fails fails the command: the demo's store with the sanctioned address's
//! label record made unreadable screens the operator (who paid the sanctioned address) as an
//! error naming the label read, never as "unlabelled" with a lower level and exit status 0;
//! a trace reaching an address whose label record is unreadable fails the same way.
//!
//! The unreadable record is written through the label keyspace viewed as raw bytes (a garbage
//! value under the address's key): the real decode path of the label store fails on it, as it would
//! on a damaged disk.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{paytrace, run_ok};
use paytrace_indexer::{
    Address, Store,
    labels::address::address_key,
    store::keyspaces::{self, Keyspace, Raw},
};
use std::path::Path;

/// Writes a value under `address`'s key in the label keyspace that no label record decodes
/// from.
fn corrupt_label(store_dir: &Path, address: &Address) {
    let store = Store::open(store_dir).unwrap();
    let raw: Keyspace<Raw, Raw> = Keyspace::new(&keyspaces::LABELS);
    store
        .table(raw)
        .unwrap()
        .insert(address_key(address), &b"not a label record".to_vec())
        .unwrap();
    store.persist_for_reopen().unwrap();
}

#[test]
fn a_failed_label_read_fails_the_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    run_ok(
        paytrace(&tmp.path().join("unused"))
            .args(["--json", "demo", "--out"])
            .arg(&out),
    );
    let store_dir = out.join("store");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("ground-truth.json")).unwrap()).unwrap();
    let provider = truth["provider"].as_str().unwrap().to_owned();
    let payee: Address = truth["payees"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let args = ["trace", provider.as_str(), "--format", "json"];
    run_ok(paytrace(&store_dir).args(args));
    corrupt_label(&store_dir, &payee);
    let bad = paytrace(&store_dir).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success(),
        "a trace through an unreadable label must fail; stderr:\n{stderr}"
    );
    assert!(bad.stdout.is_empty(), "no result is printed");
    assert!(stderr.contains("reading labels"), "{stderr}");
}

#[test]
fn a_failed_label_read_fails_the_screening() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    run_ok(
        paytrace(&tmp.path().join("unused"))
            .args(["--json", "demo", "--out"])
            .arg(&out),
    );
    let store_dir = out.join("store");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("ground-truth.json")).unwrap()).unwrap();
    let sanctioned: Address = truth["truth"]["sanctioned"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let operator = truth["truth"]["operator"].as_str().unwrap().to_owned();

    // Intact labels: the operator is severe (it paid the sanctioned address directly).
    let ok =
        run_ok(paytrace(&store_dir).args(["--json", "screen", &operator, "--as-of", "2025-06-01"]));
    let r: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(r["level"], "severe", "{r:#}");

    corrupt_label(&store_dir, &sanctioned);

    let bad = paytrace(&store_dir)
        .args(["--json", "screen", &operator, "--as-of", "2025-06-01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success(),
        "screening with an unreadable label must fail; stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&bad.stdout)
    );
    assert!(bad.stdout.is_empty(), "no result is printed");
    assert!(stderr.contains("reading labels"), "{stderr}");
}
