//! End-to-end tests of `paytrace demo` and `paytrace report payouts`: the offline demo and the
//! same scenario deployed on a real anvil node and indexed over JSON-RPC find exactly the
//! scenario's ground truth, and both give the same report; a payroll batch CSV with bad rows
//! reports each with its line and still produces the report.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::{paytrace, run_json};
use paytrace_indexer::testutil::anvil_binary;
use serde_json::Value;
use std::{collections::BTreeSet, path::Path};

/// The clock `paytrace demo --rpc` starts its node with (8 days before the demo's base).
const DEMO_NODE_CLOCK: u64 = 1_735_689_600 - 8 * 86_400;

fn demo(out: &Path, rpc: bool) -> Value {
    let mut c = paytrace(&out.join("unused-data-dir"));
    c.arg("--json").arg("demo").arg("--out").arg(out);
    if rpc {
        // The demo starts (and stops) its own anvil from this binary.
        c.arg("--rpc").arg("--anvil").arg(anvil_binary().unwrap());
    }
    run_json(&mut c)
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The findings of a report JSON without transaction hashes and times (which differ between
/// the offline store and a real chain): per payout its payee, amount and destinations; the
/// convergence points and shared deposits with their payees and amounts; payee risks.
fn findings(r: &Value) -> Value {
    let payouts: Vec<Value> = r["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            serde_json::json!({
                "payee": p["payee"], "address": p["address"], "amount": p["amount"],
                "risk": p["risk"]["level"], "totals": p["totals"],
                "destinations": p["destinations"].as_array().unwrap().iter().map(|d| serde_json::json!({
                    "address": d["address"], "kind": d["kind"], "amount": d["amount"],
                    "reached": d["reached"], "hops": d["hops"], "path_len": d["path"].as_array().unwrap().len(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let list = |k: &str| -> Vec<Value> {
        r[k].as_array()
            .unwrap()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "key": f["key"], "amount": f["amount"], "hops": f["hops"],
                    "payees": f["payees"].as_array().unwrap().iter().map(|p| p["payee"].clone()).collect::<Vec<_>>(),
                    "evidence": f["evidence"].as_array().unwrap().len(),
                })
            })
            .collect()
    };
    serde_json::json!({
        "payouts": payouts, "convergence": list("convergence"),
        "shared_deposits": list("shared_deposits"), "summary": r["summary"],
        "graph_nodes": r["graph"]["nodes"].as_array().unwrap().len(),
    })
}

fn assert_truth(out: &Path, summary: &Value) {
    assert_eq!(
        summary["truth_mismatches"],
        serde_json::json!([]),
        "{summary:#}"
    );
    let report = read_json(&out.join("payout-report.json"));
    let truth = read_json(&out.join("ground-truth.json"))["truth"].clone();
    // Clustering (run by the demo) puts exactly the planted payees in one cluster.
    let clusters: BTreeSet<BTreeSet<String>> = report["payee_clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["payees"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["payee"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    let want: BTreeSet<BTreeSet<String>> =
        serde_json::from_value(truth["payee_clusters"].clone()).unwrap();
    assert_eq!(clusters, want);
    assert!(!want.is_empty(), "the scenario plants a payee cluster");
    // Screening (run by the demo): exactly the fake payees have exposure to the sanctioned
    // facilitator, and they are the payees screened medium or above.
    let screening = read_json(&out.join("screening.json"));
    let scenario = read_json(&out.join("ground-truth.json"));
    let fakes: BTreeSet<String> = scenario["payees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["fake"].as_bool().unwrap())
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fakes.len(), 4);
    let sanctioned = truth["sanctioned"].as_str().unwrap();
    let mut exposed = BTreeSet::new();
    let mut raised = BTreeSet::new();
    for x in screening.as_array().unwrap() {
        let name = x["name"].as_str().unwrap().to_owned();
        if name == "operator" {
            assert_eq!(x["result"]["level"], "severe", "{x:#}");
            continue;
        }
        if name == "operator (bitcoin)" {
            // Screened on the Bitcoin chain through its transaction nodes: the facilitator's
            // Bitcoin address is two addresses after its direct counterparties.
            let r = &x["result"];
            assert!(
                matches!(r["level"].as_str().unwrap(), "high" | "severe"),
                "{x:#}"
            );
            let btc_sdn = scenario["bitcoin"]["parties"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "facilitator")
                .unwrap()["id"]
                .clone();
            assert!(
                r["indirect"].as_array().unwrap().iter().any(|e| {
                    e["category"] == "sanctioned"
                        && e["direction"] == "sent"
                        && e["hops"] == 2
                        && e["counterparties"].as_array().unwrap().contains(&btc_sdn)
                }),
                "{x:#}"
            );
            continue;
        }
        let r = &x["result"];
        if r["indirect"].as_array().unwrap().iter().any(|e| {
            e["category"] == "sanctioned"
                && e["direction"] == "sent"
                && e["counterparties"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c.as_str() == Some(sanctioned))
        }) {
            exposed.insert(name.clone());
        }
        if !matches!(r["level"].as_str().unwrap(), "none" | "low") {
            raised.insert(name);
        }
    }
    assert_eq!(exposed, fakes);
    assert_eq!(raised, fakes);
    assert_eq!(summary["screening"].as_array().unwrap().len(), 14);
    assert_bitcoin_leg(out, summary, &scenario);
    // Independently of the binary's own check: the convergence points and shared deposit
    // addresses are exactly the planted ones, with the planted payees.
    for (rk, tk) in [
        ("convergence", "convergence"),
        ("shared_deposits", "shared_deposits"),
    ] {
        let got: BTreeSet<(String, BTreeSet<String>)> = report[rk]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["address"].as_str().unwrap().to_owned(),
                    f["payees"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p["payee"].as_str().unwrap().to_owned())
                        .collect(),
                )
            })
            .collect();
        let want: BTreeSet<(String, BTreeSet<String>)> = truth[tk]
            .as_object()
            .unwrap()
            .iter()
            .map(|(a, ps)| {
                (
                    a.clone(),
                    ps.as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect(),
                )
            })
            .collect();
        assert_eq!(got, want, "{rk}");
    }
    // Exposures: the fake payees (and only they) reached the sanctioned facilitator.
    let flagged: BTreeSet<&str> = report["summary"]["flagged_payees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let fakes: BTreeSet<&str> = truth["payees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["fake"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(flagged, fakes);
    assert_eq!(report["summary"]["payouts"], 72);
}

/// The Bitcoin leg: the operator's 1.5 BTC withdrawal from the exchange, traced on the demo's
/// Bitcoin chain, ends exactly where the scenario put it (cash-out wallet, exchange deposit,
/// the facilitator's Bitcoin address, three fees), in satoshis in JSON and BTC in HTML.
fn assert_bitcoin_leg(out: &Path, summary: &Value, scenario: &Value) {
    let b = &summary["bitcoin"];
    let leg = &scenario["bitcoin"];
    assert_eq!(b["chain"], "demo-btc");
    assert_eq!(b["withdrawal"], "150000000");
    assert_eq!(b["withdrawal_tx"], leg["withdrawal_txid"]);
    assert!(b["operator"].as_str().unwrap().starts_with("bc1q"), "{b:#}");
    let got: BTreeSet<(String, String, String, u64)> = b["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["address"].as_str().unwrap().to_owned(),
                d["kind"].as_str().unwrap().to_owned(),
                d["amount"].as_str().unwrap().to_owned(),
                d["hops"].as_u64().unwrap(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String, u64)> = leg["destinations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(a, d)| {
            (
                a.clone(),
                d["kind"].as_str().unwrap().to_owned(),
                d["amount"].as_str().unwrap().to_owned(),
                d["hops"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    let amounts: Vec<u64> = want.iter().map(|d| d.2.parse().unwrap()).collect();
    assert_eq!(
        amounts.iter().sum::<u64>(),
        150_000_000,
        "all of it accounted for"
    );
    // One fee of 0.0001 BTC per peel transaction after the withdrawal.
    let fees: Vec<&str> = want
        .iter()
        .filter(|d| d.1 == "fee")
        .map(|d| d.2.as_str())
        .collect();
    assert_eq!(fees, ["10000"; 3]);
    let r = read_json(&out.join("bitcoin-report.json"));
    assert_eq!(r["summary"]["paid"]["bitcoin:native"], "150000000");
    assert_eq!(r["assets"]["assets"]["bitcoin:native"]["symbol"], "BTC");
    let html = std::fs::read_to_string(out.join("bitcoin-report.html")).unwrap();
    assert!(
        html.contains("1.5 BTC") || html.contains("1.50000000 BTC"),
        "BTC units"
    );
    assert!(html.contains(" BTC") && !html.contains(" ETH"));
}

#[test]
fn demo_offline_finds_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let s = demo(&out, false);
    assert_eq!(s["mode"], "offline");
    assert_truth(&out, &s);
    // The HTML is self-contained: no scripts, no external references.
    let html = std::fs::read_to_string(out.join("payout-report.html")).unwrap();
    assert!(!html.contains("<script"), "no scripts");
    assert!(
        !html.contains("http://")
            || html.matches("http://").count()
                == html.matches("http://www.w3.org/2000/svg").count()
    );
    assert!(!html.contains("https://"));
    assert!(html.contains("<svg"));
    // A second run replaces the demo's store.
    let s2 = demo(&out, false);
    assert_eq!(s2["truth_mismatches"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_on_anvil_finds_the_ground_truth_and_matches_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (on, off) = (dir.path().join("rpc"), dir.path().join("offline"));
    let on2 = on.clone();
    let s = tokio::task::spawn_blocking(move || demo(&on2, true))
        .await
        .unwrap();
    assert_eq!(s["mode"], "rpc");
    // The demo stopped the node it started.
    let node_args = format!("--timestamp\0{}", DEMO_NODE_CLOCK);
    let still_running = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .any(|c| String::from_utf8_lossy(&c).contains(&node_args));
    assert!(!still_running, "the demo's anvil is still running");
    // Every planned transfer plus the two token mints was indexed through the real sync.
    let truth = read_json(&on.join("ground-truth.json"));
    let steps = truth["steps"].as_array().unwrap().len();
    assert!(
        s["transfers"].as_u64().unwrap() >= u64::try_from(steps + 2).unwrap(),
        "{s:#}"
    );
    assert_truth(&on, &s);
    let off2 = off.clone();
    let s_off = tokio::task::spawn_blocking(move || demo(&off2, false))
        .await
        .unwrap();
    assert_truth(&off, &s_off);
    let a = findings(&read_json(&on.join("payout-report.json")));
    let b = findings(&read_json(&off.join("payout-report.json")));
    assert_eq!(a, b, "the rpc and offline demos report different findings");
}

/// The addresses on a finding's onward path (an entry is an address or a cluster).
fn onward_addresses(f: &Value) -> usize {
    f["onward"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["addresses"].as_array().unwrap().len())
        .sum()
}

#[test]
fn batch_csv_bad_rows_are_reported_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    demo(&out, false);
    let truth = read_json(&out.join("ground-truth.json"));
    let usdc = truth["tokens"][0]["address"].as_str().unwrap().to_owned();
    let mut csv = std::fs::read_to_string(out.join("payroll-batch.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    let dup = lines[3].to_owned();
    let good_rows = lines.len() - 1;
    // line numbers of the appended rows: good_rows + 2 ...
    let first = good_rows + 2;
    csv.push_str(&dup); // duplicate of line 4
    csv.push('\n');
    csv.push_str("Zed Unknown,0x000000000000000000000000000000000000dEaD,demo,USDC,100,,\n");
    csv.push_str("Bad Amount,0x273aBc3a9acBeD6e83C3b7F5D0391b99EED760c8,demo,USDC,12.5x,,\n");
    csv.push_str("Too Precise,0x273aBc3a9acBeD6e83C3b7F5D0391b99EED760c8,demo,USDC,1.0000001,,\n");
    csv.push_str("Bad Address,0x1234,demo,USDC,10,,\n");
    csv.push_str("Wrong Amount,0x273aBc3a9acBeD6e83C3b7F5D0391b99EED760c8,demo,USDC,4200.01,,\n");
    csv.push_str("Odd Asset,0x273aBc3a9acBeD6e83C3b7F5D0391b99EED760c8,demo,DOGE,1,,\n");
    let batch = dir.path().join("batch.csv");
    std::fs::write(&batch, csv).unwrap();
    let r = run_json(
        paytrace(&out.join("store"))
            .arg("--json")
            .arg("report")
            .arg("payouts")
            .arg("--batch")
            .arg(&batch)
            .arg("--token")
            .arg(format!("{usdc}=USDC:6")),
    );
    let issues: Vec<(u64, String)> = r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["line"].as_u64().unwrap(),
                i["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let l = |k: usize| u64::try_from(first + k).unwrap();
    assert_eq!(
        issues,
        vec![
            (l(0), "duplicate".to_owned()),
            (l(1), "unknown_address".to_owned()),
            (l(2), "bad_amount".to_owned()),
            (l(3), "bad_amount".to_owned()),
            (l(4), "bad_address".to_owned()),
            (l(5), "unmatched".to_owned()),
            (l(6), "unknown_asset".to_owned()),
        ],
        "{:#}",
        r["issues"]
    );
    assert!(
        r["issues"][0]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate of line 4")
    );
    // The rest of the report is produced: every good row matched its payout.
    assert_eq!(r["summary"]["payouts"], u64::try_from(good_rows).unwrap());
    assert_eq!(r["payouts"][0]["line"], 2);
    // One finding for the operator; the peel chain, the facilitator and the deposit
    // addresses downstream are its onward path (a peel address and the deposit address it
    // pays into are one cluster: one entry with both addresses).
    assert_eq!(r["convergence"].as_array().unwrap().len(), 1);
    assert_eq!(onward_addresses(&r["convergence"][0]), 7);
    // --since/--until select the batch's payouts by their on-chain time (the scenario pays
    // monthly, January to June 2025: March and April are 24 of the 72 payouts).
    let r = run_json(
        paytrace(&out.join("store"))
            .arg("--json")
            .args(["report", "payouts", "--batch"])
            .arg(out.join("payroll-batch.csv"))
            .args(["--since", "2025-03-01", "--until", "2025-04-30"])
            .arg("--token")
            .arg(format!("{usdc}=USDC:6")),
    );
    let payouts = r["payouts"].as_array().unwrap();
    assert_eq!(payouts.len(), 24, "{:#}", r["summary"]);
    assert!(r["issues"].as_array().unwrap().is_empty());
}

#[test]
fn provider_from_the_config_with_a_date_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    demo(&out, false);
    let truth = read_json(&out.join("ground-truth.json"));
    let usdc = truth["tokens"][0]["address"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let provider = truth["provider"].as_str().unwrap().to_lowercase();
    let cfg = dir.path().join("paytrace.toml");
    std::fs::write(
        &cfg,
        format!(
            "[chains.demo]\n[[chains.demo.tokens]]\naddress = \"{usdc}\"\nsymbol = \"USDC\"\ndecimals = 6\n\n\
             [[providers]]\nname = \"Acme Payroll\"\nchain = \"demo\"\naddresses = [\"{provider}\"]\nassets = [\"USDC\"]\n"
        ),
    )
    .unwrap();
    let files = dir.path().join("may");
    let s = run_json(
        paytrace(&out.join("store"))
            .arg("--config")
            .arg(&cfg)
            .arg("--json")
            .arg("report")
            .arg("payouts")
            .arg("--provider")
            .arg("Acme Payroll")
            .arg("--since")
            .arg("2025-05-01")
            .arg("--until")
            .arg("2025-05-31")
            .arg("--out")
            .arg(&files),
    );
    // Paydays 2025-05-01 and 2025-05-31: two payouts to each of the twelve payees.
    assert_eq!(s["payouts"], 24, "{s:#}");
    assert_eq!(s["payees"], 12);
    assert_eq!(s["flagged_payees"].as_array().unwrap().len(), 4);
    for f in ["html", "json", "csv"] {
        assert!(std::path::Path::new(s["files"][f].as_str().unwrap()).is_file());
    }
    let r = read_json(&files.join("payout-report.json"));
    assert_eq!(
        r["assets"]["assets"][&truth["tokens"][0]["address"].as_str().unwrap().to_string()]["symbol"],
        "USDC"
    );
}

/// One verdict: the report's payee verdicts are the screening of each payee as of the report's
/// day (printed with it), `paytrace screen --as-of` that day gives the same level, and the
/// report holds one convergence finding for the operator with the rest as its onward path.
/// One alert per finding: `alerts evaluate` over the provider's payees raises one convergence
/// alert naming the four fake payees (no alert for the DEX router or downstream addresses).
#[test]
fn one_verdict_everywhere_and_one_alert_per_finding() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let s = demo(&out, false);
    assert_eq!(s["truth_mismatches"], serde_json::json!([]), "{s:#}");
    let report = read_json(&out.join("payout-report.json"));
    let scenario = read_json(&out.join("ground-truth.json"));
    let store = out.join("store");
    let day = report["verdicts_as_of"].as_str().unwrap().to_owned();
    assert_eq!(report["convergence"].as_array().unwrap().len(), 1);
    let f = &report["convergence"][0];
    assert_eq!(f["payees"].as_array().unwrap().len(), 4);
    assert_eq!(onward_addresses(f), 7, "{f:#}");
    // Every arrival of the window: more than one month's forwarding.
    assert!(f["arrivals"].as_u64().unwrap() > 4, "{f:#}");
    let screening = read_json(&out.join("screening.json"));
    for p in report["payees"].as_array().unwrap() {
        let addr = p["address"].as_str().unwrap();
        assert_eq!(p["risk"]["as_of"], day.as_str(), "{p:#}");
        let r = run_json(paytrace(&store).args(["--json", "screen", addr, "--as-of", &day]));
        assert_eq!(r["level"], p["risk"]["level"], "{addr}: {r:#}");
        assert_eq!(r["as_of"], day.as_str());
        let demo_level = screening
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["result"]["address"] == p["address"])
            .map(|x| x["result"]["level"].clone())
            .unwrap();
        assert_eq!(demo_level, p["risk"]["level"], "{addr}");
    }
    // Alerts.
    let cfg = dir.path().join("alerts.toml");
    let provider = scenario["provider"].as_str().unwrap();
    std::fs::write(&cfg, format!("[alerts]\npayers = [\"{provider}\"]\n")).unwrap();
    let o = common::run_ok(
        paytrace(&store)
            .arg("--config")
            .arg(&cfg)
            .args(["--json", "alerts", "evaluate"]),
    );
    let alerts: Vec<Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let conv: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule"] == "payee-convergence")
        .collect();
    assert_eq!(conv.len(), 1, "{alerts:#?}");
    assert_eq!(conv[0]["subject"], scenario["truth"]["operator"]);
    assert_eq!(conv[0]["addresses"].as_array().unwrap().len(), 4);
    let ids: BTreeSet<u64> = alerts.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), alerts.len(), "each alert once");
}
