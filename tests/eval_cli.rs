//! End-to-end tests of `paytrace eval`: the JSON shape on two seeds, and clear errors for bad
//! input (a missing AMLSim sample file, an unknown option value).

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

mod common;

use common::{paytrace, run_json};
use serde_json::Value;

const KINDS: [&str; 7] = [
    "payee_verdicts",
    "convergence",
    "deposit_attribution",
    "sanctioned_reach_fifo",
    "sanctioned_reach_haircut",
    "patterns_fan_in",
    "patterns_peel",
];

fn check_kind(k: &Value, per_seed: bool) {
    for key in ["tp", "fp", "fn"] {
        assert!(k[key].is_u64(), "{key} in {k}");
    }
    for key in ["precision", "recall"] {
        assert!(k[key].is_null() || k[key].is_f64(), "{key} in {k}");
    }
    assert!(k["failing_seeds"].is_array());
    // A seed fails a kind exactly when the kind has a miss or a false alarm.
    let wrong = k["fp"].as_u64().unwrap() + k["fn"].as_u64().unwrap();
    let listed = !k["failing_seeds"].as_array().unwrap().is_empty();
    assert_eq!(per_seed && wrong > 0, listed, "{k}");
}

#[test]
fn eval_two_seeds_json() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_json(paytrace(dir.path()).args(["--json", "eval", "--seeds", "2"]));
    assert_eq!(r["seed_start"], 0);
    assert_eq!(r["seeds"], 2);
    assert!(r["amlsim"].is_null());
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["scale"], 1);
    assert_eq!(runs[0]["scenarios"], 2);
    assert!(runs[0]["transfers"].as_u64().unwrap() > 100);
    let kinds: Vec<&str> = runs[0]["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            check_kind(k, true);
            k["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(kinds, KINDS);
    // Deposit addresses, their sweeps and the labelled hot wallets are all there is to
    // attribute them: every one has a truth entry, so recall is defined.
    let dep = &runs[0]["kinds"][2];
    assert!(dep["tp"].as_u64().unwrap() + dep["fn"].as_u64().unwrap() > 0);
    // Every fake payee is a positive of the verdicts: two seeds have at least four.
    let v = &runs[0]["kinds"][0];
    assert!(v["tp"].as_u64().unwrap() + v["fn"].as_u64().unwrap() >= 4);
    let targets = r["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    for t in targets {
        assert!(t["met"].is_boolean() && t["target"].is_string() && t["kind"].is_string());
        assert_eq!(t["scale"], 1);
    }
    // The same seeds give the same scores.
    let again = run_json(paytrace(dir.path()).args(["--json", "eval", "--seeds", "2"]));
    assert_eq!(again["runs"], r["runs"]);
}

#[test]
fn missing_amlsim_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    std::fs::create_dir(&sample).unwrap();
    std::fs::write(
        sample.join("alertPatterns-1K.csv"),
        "count,type\n1,fan_in\n",
    )
    .unwrap();
    std::fs::write(
        sample.join("nodes.csv"),
        "nodeid,isFraud,init_balance,fraudStep\n0,0,1.0,-1\n",
    )
    .unwrap();
    let out = paytrace(dir.path())
        .args(["eval", "--seeds", "1", "--amlsim"])
        .arg(&sample)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("transactions.csv: no such file"), "{err}");
    // Nothing ran before the sample was checked.
    assert!(out.stdout.is_empty());
    let out = paytrace(dir.path())
        .args(["eval", "--seeds", "1", "--amlsim"])
        .arg(dir.path().join("nowhere"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere: no such file"));
}

#[test]
fn bad_option_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        ["eval", "--scale", "0"],
        ["eval", "--scale", "big"],
        ["eval", "--seeds", "0"],
    ] {
        let out = paytrace(dir.path()).args(args).output().unwrap();
        // Command-line errors exit 1, as every command does (docs/cli.md).
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
}

/// The AMLSim sample of the shared data, scored at pattern level.
#[test]
fn amlsim_sample_scores_at_pattern_level() {
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/aml/amlsim-20K_fanin200"
    );
    let r =
        run_json(paytrace(dir.path()).args(["--json", "eval", "--seeds", "1", "--amlsim", sample]));
    let a = &r["amlsim"];
    assert_eq!(a["transactions"], 118_250);
    assert_eq!(a["window_secs"], 149 * 86_400);
    assert_eq!(a["planted"]["fan_in_targets"], 151);
    let kinds: Vec<&str> = a["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            check_kind(k, false);
            k["kind"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "amlsim_fan_in_targets",
            "amlsim_cycles_time_ordered",
            "amlsim_cycles_any_order",
            "amlsim_nodes"
        ]
    );
    let fan = &a["kinds"][0];
    assert_eq!(
        fan["tp"].as_u64().unwrap() + fan["fn"].as_u64().unwrap(),
        151
    );
    assert!(
        r["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "amlsim_fan_in_targets")
    );
}
