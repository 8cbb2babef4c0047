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
    let r = run_json(
        paytrace(dir.path()).args(["--json", "eval", "--family", "payroll", "--seeds", "2"]),
    );
    assert_eq!(r["seed_start"], 0);
    assert_eq!(r["seeds"], 2);
    assert!(r["amlsim"].is_null());
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["family"], "payroll");
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
        assert_eq!(t["family"], "payroll");
    }
    // The same seeds give the same scores.
    let again = run_json(
        paytrace(dir.path()).args(["--json", "eval", "--family", "payroll", "--seeds", "2"]),
    );
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
        ["eval", "--family", "ours"],
    ] {
        let out = paytrace(dir.path()).args(args).output().unwrap();
        // Command-line errors exit 1, as every command does (docs/cli.md).
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid value"), "{args:?}: {err}");
    }
}

/// The second scenario family, written from the description of the graded scenario (two
/// providers on different paydays, stablecoins of 6 and 18 decimals, a consolidation spread over
/// two wallets of one cluster, two operators, a fake six transfers from the facilitator in its
/// own token): on three seeds, one of each variant, every scenario target is met (fakes medium
/// or above and real payees low or none, one convergence finding per operator naming exactly
/// its fakes, FIFO and haircut reach exact). Without `--family` both families run.
#[test]
fn eval_holdout_like_family_meets_the_targets() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_json(paytrace(dir.path()).args([
        "--json",
        "eval",
        "--family",
        "holdout-like",
        "--seeds",
        "3",
    ]));
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["family"], "holdout-like");
    let kind = |k: &str| {
        runs[0]["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["kind"] == k)
            .unwrap()
            .clone()
    };
    // Two operators in one of the three seeds: four operators, sixteen fakes.
    let conv = kind("convergence");
    assert_eq!(conv["tp"], 4, "{conv}");
    assert_eq!(kind("payee_verdicts")["tp"], 16);
    for k in [
        "payee_verdicts",
        "convergence",
        "deposit_attribution",
        "sanctioned_reach_fifo",
        "sanctioned_reach_haircut",
    ] {
        let x = kind(k);
        assert_eq!(
            (x["fp"].as_u64(), x["fn"].as_u64()),
            (Some(0), Some(0)),
            "{x}"
        );
    }
    let targets = r["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 4);
    for t in targets {
        assert_eq!(t["family"], "holdout-like");
        assert_eq!(t["met"], true, "{t}");
    }
    let both = run_json(paytrace(dir.path()).args(["--json", "eval", "--seeds", "1"]));
    let families: Vec<&str> = both["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["family"].as_str().unwrap())
        .collect();
    assert_eq!(families, ["payroll", "holdout-like"]);
    assert_eq!(both["targets"].as_array().unwrap().len(), 8);
}

fn amlsim_kinds(a: &Value) -> Vec<&str> {
    a["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            for key in ["planted", "found", "instances", "correct_instances"] {
                assert!(k[key].is_u64(), "{key} in {k}");
            }
            for key in ["precision", "recall"] {
                assert!(k[key].is_f64(), "{key} in {k}");
            }
            assert!(k["missed"].is_array());
            k["kind"].as_str().unwrap()
        })
        .collect()
}

/// The AMLSim sample of the shared data, scored at pattern level: the planted fan-in targets
/// with the horizon-only parameters (the figures of `paytrace patterns` on the same data).
/// Only fan-in is detected: cycles over the whole horizon take minutes in a debug build; the
/// small sample below scores them.
#[test]
fn amlsim_sample_scores_at_pattern_level() {
    let dir = tempfile::tempdir().unwrap();
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/aml/amlsim-20K_fanin200"
    );
    let r = run_json(paytrace(dir.path()).args([
        "--json",
        "eval",
        "--seeds",
        "1",
        "--amlsim",
        sample,
        "--amlsim-types",
        "fan-in",
    ]));
    let a = &r["amlsim"];
    assert_eq!(a["transactions"], 118_250);
    assert_eq!(a["window_secs"], 150 * 86_400);
    assert_eq!(
        a["declared_patterns"],
        serde_json::json!(["fan_in", "fan_out", "cycle"])
    );
    assert_eq!(a["planted"]["fan_in_targets"], 152);
    assert_eq!(a["planted"]["cycles"], 0);
    assert_eq!(a["planted"]["participants"], 659);
    assert_eq!(amlsim_kinds(a), ["amlsim_fan_in_targets", "amlsim_nodes"]);
    let fan = &a["kinds"][0];
    assert_eq!(fan["planted"], 152);
    // Measured: 146 of 152 found, every one of the 146 instances correct.
    assert!(fan["recall"].as_f64().unwrap() >= 0.95, "{fan}");
    assert!(fan["precision"].as_f64().unwrap() >= 0.95, "{fan}");
    let target = r["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["kind"] == "amlsim_fan_in_targets")
        .unwrap();
    assert_eq!(target["met"], true);
}

/// A small sample with a planted fan-in and a planted cycle whose transfers run round the
/// loop: every kind is scored, the cycle found as a round trip.
#[test]
fn amlsim_small_sample_scores_every_kind() {
    let dir = tempfile::tempdir().unwrap();
    let sample = dir.path().join("sample");
    std::fs::create_dir(&sample).unwrap();
    // Fraud: 1, 2 -> 3 (fan-in); 4 -> 5 -> 6 -> 4 (cycle). 7, 8, 9 background.
    std::fs::write(
        sample.join("nodes.csv"),
        "nodeid,isFraud,init_balance,fraudStep\n\
         1,1,100,3\n2,1,100,4\n3,1,100,-1\n4,1,100,5\n5,1,100,-1\n6,1,100,-1\n\
         7,0,100,-1\n8,0,100,-1\n9,0,100,-1\n",
    )
    .unwrap();
    std::fs::write(
        sample.join("transactions.csv"),
        "sourceNodeId,targetNodeId,value,time\n\
         7,8,150.00,1\n8,9,120.5,1\n9,8,130,2\n\
         1,3,4.5,3\n2,3,3.9,4\n4,5,2.5,5\n5,6,2.4,6\n6,4,2.3,7\n",
    )
    .unwrap();
    let r = run_json(
        paytrace(dir.path())
            .args(["--json", "eval", "--seeds", "1", "--amlsim"])
            .arg(&sample),
    );
    let a = &r["amlsim"];
    assert_eq!(a["transactions"], 8);
    assert_eq!(a["window_secs"], 8 * 86_400);
    assert_eq!(
        amlsim_kinds(a),
        [
            "amlsim_fan_in_targets",
            "amlsim_cycles",
            "amlsim_round_trips",
            "amlsim_nodes"
        ]
    );
    assert_eq!(a["planted"]["cycles"], 1);
    assert_eq!(a["planted"]["round_trips"], 1);
    for k in &a["kinds"].as_array().unwrap()[1..3] {
        assert_eq!(
            (k["planted"].as_u64(), k["found"].as_u64()),
            (Some(1), Some(1)),
            "{k}"
        );
    }
    assert_eq!(a["planted"]["participants"], 6);
}
