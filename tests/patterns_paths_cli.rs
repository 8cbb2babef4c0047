//! End-to-end tests of `paytrace patterns` and `paytrace path` on transfers imported from an
//! ethereum-etl CSV written here: each instance printed once with its times, cycle kinds,
//! structuring thresholds in token units from the config, and `path -k` returning paths through
//! distinct address sequences.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

mod common;

use common::*;
use serde_json::Value;
use std::{collections::BTreeSet, path::Path};

const TOKEN: &str = "0x00000000000000000000000000000000000000aa";

fn a(n: u8) -> String {
    format!("0x{}", format!("{n:02x}").repeat(20))
}

/// Imports `(from, to, amount, block, time)` rows, one transfer per transaction.
fn import(d: &Path, rows: &[(u8, u8, u64, u64, u64)]) {
    let csv = d.join("t.csv");
    let mut s = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    for (i, (f, t, v, b, time)) in rows.iter().enumerate() {
        s.push_str(&format!(
            "{TOKEN},{},{},{v},0x{:064x},{i},{b},{time}\n",
            a(*f),
            a(*t),
            i + 1
        ));
    }
    std::fs::write(&csv, s).unwrap();
    run_json(
        paytrace(d)
            .args(["--json", "import", "transfers"])
            .arg(&csv),
    );
}

const T0: u64 = 1_741_338_180; // 2025-03-07T09:03:00Z

#[test]
fn patterns_prints_each_instance_once_with_iso_times_and_cycle_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 0x01 pays 0x02, which pays it back in two transfers of one block: two round trips through
    // the same addresses in the same window, one instance. 0x03 -> 0x04 -> 0x05 -> 0x03 with
    // no order in time (0x05 -> 0x03 last but before 0x04 -> 0x05): a closed loop, not a round
    // trip.
    import(
        d,
        &[
            (0x05, 0x03, 30, 1, T0),
            (0x04, 0x05, 30, 2, T0 + 30),
            (0x01, 0x02, 100, 3, T0 + 60),
            (0x02, 0x01, 50, 4, T0 + 120),
            (0x02, 0x01, 50, 4, T0 + 120),
            (0x03, 0x04, 30, 5, T0 + 180),
        ],
    );
    let r = run_json(paytrace(d).args(["--json", "patterns", "--type", "cycle"]));
    let inst = r["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 2, "{r:#}");
    let rt = inst.iter().find(|i| i["center"] == a(0x01)).unwrap();
    assert_eq!(rt["cycle_kind"], "round-trip");
    assert_eq!(rt["transfers"].as_array().unwrap().len(), 3);
    let cl = inst.iter().find(|i| i["center"] == a(0x03)).unwrap();
    assert_eq!(cl["cycle_kind"], "closed-loop");
    assert!(cl["score"].as_f64().unwrap() < rt["score"].as_f64().unwrap());
    let out = run_ok(paytrace(d).args(["patterns", "--type", "cycle"]));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("cycle")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let unique: BTreeSet<&str> = lines.iter().copied().collect();
    assert_eq!(unique.len(), 2, "{text}");
    assert!(
        text.contains("2025-03-07T09:04:00Z .. 2025-03-07T09:05:00Z"),
        "{text}"
    );
    assert!(text.contains("cycle (closed-loop)"), "{text}");
    assert!(!text.contains(&format!("{}", T0 + 60)), "{text}");
}

fn structuring_rows() -> Vec<(u8, u8, u64, u64, u64)> {
    // 0x09 sends 9 800, 9 900 and 9 500 USDC (6 decimals) within a day; 0x0a sends 10 000.
    vec![
        (0x09, 0x11, 9_800_000_000, 1, T0),
        (0x09, 0x12, 9_900_000_000, 2, T0 + 3_600),
        (0x09, 0x13, 9_500_000_000, 3, T0 + 7_200),
        (0x0a, 0x14, 10_000_000_000, 4, T0 + 7_300),
    ]
}

#[test]
fn structuring_threshold_comes_from_the_config_in_token_units() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    import(d, &structuring_rows());
    // Without a threshold: a clear error, not a silent nothing.
    let out = paytrace(d)
        .args(["patterns", "--type", "structuring"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("threshold"), "{err}");
    let cfg = d.join("paytrace.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[chains.imported.tokens]]\naddress = \"{TOKEN}\"\nsymbol = \"USDC\"\ndecimals = 6\n\n\
             [[patterns.structuring]]\nchain = \"imported\"\nasset = \"USDC\"\nthreshold = \"10000\"\n"
        ),
    )
    .unwrap();
    let r = run_json(paytrace(d).arg("--config").arg(&cfg).args([
        "--json",
        "patterns",
        "--type",
        "structuring",
    ]));
    let inst = r["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 1, "{r:#}");
    assert_eq!(inst[0]["center"], a(0x09));
    assert_eq!(inst[0]["transfers"].as_array().unwrap().len(), 3);
    assert_eq!(
        r["parameters"]["structuring_asset_thresholds"][0]["threshold"],
        "10000000000"
    );
    // An unknown token symbol names the config entry.
    std::fs::write(
        &cfg,
        "[[patterns.structuring]]\nchain = \"imported\"\nasset = \"USDX\"\nthreshold = \"10000\"\n",
    )
    .unwrap();
    let out = paytrace(d)
        .arg("--config")
        .arg(&cfg)
        .args(["patterns", "--type", "structuring"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[[patterns.structuring]] #1"), "{err}");
}

fn addresses(p: &Value) -> Vec<String> {
    let hops = p["hops"].as_array().unwrap();
    let mut v = vec![hops[0]["from"].as_str().unwrap().to_owned()];
    v.extend(hops.iter().map(|h| h["to"].as_str().unwrap().to_owned()));
    v
}

#[test]
fn path_k_returns_paths_through_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 0x01 -> 0x02 three times, then 0x02 -> 0x03 three times: nine transfer combinations
    // through the same three addresses. 0x01 -> 0x04 -> 0x03 is the only other way.
    import(
        d,
        &[
            (0x01, 0x02, 100, 1, T0),
            (0x01, 0x02, 90, 2, T0 + 60),
            (0x01, 0x02, 80, 3, T0 + 120),
            (0x01, 0x04, 40, 4, T0 + 180),
            (0x02, 0x03, 100, 5, T0 + 240),
            (0x02, 0x03, 90, 6, T0 + 300),
            (0x02, 0x03, 80, 7, T0 + 360),
            (0x04, 0x03, 40, 8, T0 + 420),
        ],
    );
    let r = run_json(paytrace(d).args(["--json", "path", &a(0x01), &a(0x03), "-k", "5"]));
    let paths = r["most_valuable"].as_array().unwrap();
    assert_eq!(paths.len(), 2, "{r:#}");
    assert_eq!(addresses(&paths[0]), vec![a(0x01), a(0x02), a(0x03)]);
    assert_eq!(paths[0]["value"], "100");
    assert_eq!(addresses(&paths[1]), vec![a(0x01), a(0x04), a(0x03)]);
    assert_eq!(paths[1]["value"], "40");
}
