//! Golden outputs: the offline demo (its JSON summary, report JSON/CSV, screening, ground truth
//! and Bitcoin leg), `report payouts --format json` with the demo's batch, `screen --json` on
//! the demo's payees, `trace --format json` with every taint model (the payroll provider's
//! payouts, and the demo's Bitcoin withdrawal through transaction nodes), `cluster show --json`, and
//! `index btc` / `stats --json` after indexing the real Bitcoin blocks of the shared data, and
//! `eval --json` on two seeds, each compared byte for byte with the files in `tests/golden/`.
//!
//! Only the temporary directory's path and timings (`elapsed_ms`, `*_per_sec`) are masked; the
//! commands use fixed dates (`--as-of`, `--labels-as-of`) so today's date never enters. A
//! refactor that must not change behaviour keeps these files as they are. After an intended
//! change, regenerate with `PAYTRACE_BLESS=1 cargo test --test goldens` and review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{paytrace, run_ok};
use std::path::{Path, PathBuf};

/// The demo's payroll provider wallet (fixed by the scenario's seed).
const PROVIDER: &str = "0x9E35B01C15A4Dc0dcA929b819d2a9711614c7Ab1";
/// A fake payee of the demo whose cluster holds another fake payee and their shared deposit.
const FAKE_PAYEE: &str = "0x3433ab8Ee29B8b896a4b7e7d5F669595D7F24C5D";
/// The day labels and screening are judged at (after the scenario's last payout).
const AS_OF: &str = "2025-03-01";
/// The real Bitcoin blocks 0..=255 of the shared data.
const BLOCKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/btc/blocks1-256.dat"
);
/// Keys whose numeric values are timings (masked to 0 before comparing).
const TIMING_KEYS: &[&str] = &["elapsed_ms", "bytes_per_sec", "txs_per_sec"];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Replaces the temporary directory's path with `<tmp>` and the number after each timing key
/// with `0`, leaving every other byte as printed.
fn normalize(text: &str, tmp: &Path) -> String {
    let mut s = text.replace(tmp.to_str().unwrap(), "<tmp>");
    for key in TIMING_KEYS {
        let pat = format!("\"{key}\":");
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(i) = rest.find(&pat) {
            let after = i + pat.len();
            out.push_str(&rest[..after]);
            let tail = &rest[after..];
            let ws = tail.len() - tail.trim_start_matches(' ').len();
            out.push_str(&tail[..ws]);
            let num = tail[ws..]
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
                .unwrap_or(tail.len() - ws);
            out.push('0');
            rest = &tail[ws + num..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

fn stdout(cmd: &mut std::process::Command) -> String {
    String::from_utf8(run_ok(cmd).stdout).unwrap()
}

/// Runs every command and returns `(golden file name, normalized output)`.
fn outputs(tmp: &Path) -> Vec<(String, String)> {
    let mut got = Vec::new();
    let out = tmp.join("demo");
    let store = out.join("store");
    let demo = stdout(
        paytrace(&tmp.join("unused"))
            .args(["--json", "demo", "--out"])
            .arg(&out),
    );
    got.push(("demo.json".to_owned(), demo));
    for f in [
        "payout-report.json",
        "payout-report.csv",
        "screening.json",
        "ground-truth.json",
        "scenario-labels.csv",
        "payroll-batch.csv",
        "bitcoin-report.json",
    ] {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        got.push((format!("demo-{f}"), text));
    }
    let report = stdout(paytrace(&store).args([
        "--json",
        "report",
        "payouts",
        "--provider-address",
        PROVIDER,
        "--labels-as-of",
        AS_OF,
        "--format",
        "json",
        "--batch",
        out.join("payroll-batch.csv").to_str().unwrap(),
    ]));
    got.push(("report-payouts.json".to_owned(), report));

    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("ground-truth.json")).unwrap())
            .unwrap();
    let payees: String = truth["payees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}\n", p["address"].as_str().unwrap()))
        .collect();
    let payees_file = tmp.join("payees.txt");
    std::fs::write(&payees_file, payees).unwrap();
    let screen = stdout(
        paytrace(&store)
            .args(["--json", "screen", "--as-of", AS_OF, "--file"])
            .arg(&payees_file),
    );
    got.push(("screen-payees.jsonl".to_owned(), screen));

    for model in ["poison", "haircut", "fifo", "lifo"] {
        let trace = stdout(
            paytrace(&store).args(["trace", PROVIDER, "--model", model, "--format", "json"]),
        );
        got.push((format!("trace-{model}.json"), trace));
    }
    // The demo's Bitcoin leg: the operator's withdrawal traced through transaction nodes with
    // every model (`tiho` is the Bitcoin transaction-node model).
    let txid = truth["bitcoin"]["withdrawal_txid"].as_str().unwrap();
    let seed = format!("tx:{txid}");
    let btc_chain = truth["bitcoin"]["chain"].as_str().unwrap();
    for model in ["poison", "haircut", "fifo", "lifo", "tiho"] {
        let trace = stdout(paytrace(&store).args([
            "trace", &seed, "--model", model, "--chain", btc_chain, "--format", "json",
        ]));
        got.push((format!("trace-btc-{model}.json"), trace));
    }
    let cluster = stdout(paytrace(&store).args(["--json", "cluster", "show", FAKE_PAYEE]));
    got.push(("cluster-show.json".to_owned(), cluster));
    let stats = stdout(paytrace(&store).args(["--json", "stats"]));
    got.push(("stats-demo.json".to_owned(), stats));

    let btc = tmp.join("btc");
    let index = stdout(paytrace(&btc).args(["--json", "index", "btc", "--blk-file", BLOCKS]));
    got.push(("index-btc.json".to_owned(), index));
    let stats = stdout(paytrace(&btc).args(["--json", "stats"]));
    got.push(("stats-btc.json".to_owned(), stats));

    // The findings quality harness on two seeded scenarios: its scores per finding kind.
    let eval = stdout(paytrace(&tmp.join("eval")).args(["--json", "eval", "--seeds", "2"]));
    got.push(("eval-2-seeds.json".to_owned(), eval));

    got.into_iter()
        .map(|(name, text)| (name, normalize(&text, tmp)))
        .collect()
}

/// The first differing line of two texts, for a readable failure.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a != b {
            let cut = |s: Option<&&str>| -> String {
                s.map_or("<none>".to_owned(), |s| s.chars().take(400).collect())
            };
            return format!("line {}:\n  golden {}\n  now    {}", i + 1, cut(a), cut(b));
        }
    }
    "only the final newline differs".to_owned()
}

#[test]
fn outputs_match_the_goldens_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let bless = std::env::var_os("PAYTRACE_BLESS").is_some();
    let dir = golden_dir();
    let mut problems = Vec::new();
    for (name, text) in outputs(tmp.path()) {
        let path = dir.join(&name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == text => {}
            Ok(want) => problems.push(format!(
                "{name} differs, {}",
                first_difference(&want, &text)
            )),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n\nAfter an intended change: PAYTRACE_BLESS=1 cargo test --test goldens, then review the diff",
        problems.join("\n\n")
    );
}

#[test]
fn normalize_masks_paths_and_timings_only() {
    let tmp = Path::new("/tmp/x1");
    let s = "{\"elapsed_ms\": 19, \"store\": \"/tmp/x1/store\", \"txs_per_sec\":8187,\"n\": 5}";
    assert_eq!(
        normalize(s, tmp),
        "{\"elapsed_ms\": 0, \"store\": \"<tmp>/store\", \"txs_per_sec\":0,\"n\": 5}"
    );
}
