//! Schemathesis (property-based tests generated from the OpenAPI document) against
//! `paytrace serve` on the offline demo store: every operation, its coverage, fuzzing and
//! stateful phases, with 0 server errors and 0 answers that do not conform to the document.
//! The pinned schemathesis is installed by `scripts/install-schemathesis` (`scripts/test` runs
//! it and sets `PAYTRACE_SCHEMATHESIS`); without it this test installs it, and fails loudly
//! when it cannot.

#![allow(clippy::unwrap_used)] // tests

mod common;

use common::serve::{Server, create_key, demo_store};
use std::process::Command;

fn schemathesis() -> String {
    if let Some(p) = std::env::var_os("PAYTRACE_SCHEMATHESIS") {
        return p.to_string_lossy().into_owned();
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-schemathesis");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/install-schemathesis failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(&dir.path().join("demo"));
    let admin = create_key(&store, "admin");
    let srv = Server::start(&store, &["--rate-per-second", "1000000"]);
    let out = Command::new(&st)
        .current_dir(dir.path())
        .args(["run", &srv.url("/v1/openapi.json")])
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args(["-c", "not_a_server_error,response_schema_conformance"])
        .args(["-n", "20", "--seed", "1", "--no-color"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {st}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(" failed"), "{stdout}");
}
