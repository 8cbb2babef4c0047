//! The print-friendly HTML payout report of the demo: the flow graph scales to the page width,
//! carries the amounts on its edges and colours payees by their verdict; addresses and hashes
//! are shortened with the full value as hover text; print styles; token units throughout.

#![allow(clippy::unwrap_used)] // tests

mod common;

use common::*;
use serde_json::Value;

/// Before: a fixed-width SVG in a scrolling box (cut off when printed), amounts only in edge
/// hover titles, payee nodes all one colour whatever their verdict, full 42-character
/// addresses and 66-character hashes in the tables, no print styles.
#[test]
fn demo_html_report_is_print_friendly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    run_ok(
        paytrace(&dir.path().join("unused"))
            .args(["--json", "demo", "--out"])
            .arg(&out),
    );
    let html = std::fs::read_to_string(out.join("payout-report.html")).unwrap();
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("payout-report.json")).unwrap()).unwrap();

    // Print styles, and a graph that scales down to the page (and the printed page) width.
    assert!(html.contains("@media print{"), "no print styles");
    assert!(html.contains(".flow-graph{display:block;max-width:100%;height:auto}"));
    assert!(
        !html.contains(".graph{overflow:auto"),
        "the graph no longer scrolls"
    );
    assert!(html.contains("preserveAspectRatio=\"xMinYMin meet\""));

    // Every edge has its amount written on it, in token units.
    let edges = report["graph"]["edges"].as_array().unwrap().len();
    assert!(edges > 0);
    assert_eq!(html.matches("<path class=\"edge\"").count(), edges);
    assert_eq!(html.matches("<text class=\"edge-amount\"").count(), edges);
    let i = html.find("<text class=\"edge-amount\"").unwrap();
    let label = &html[i..i + html[i..].find("</text>").unwrap()];
    assert!(label.ends_with(" USDC"), "{label}");

    // Payee nodes are filled by their verdict (the report's payee risk).
    for p in report["payees"].as_array().unwrap() {
        let a = p["address"].as_str().unwrap();
        let level = p["risk"]["level"].as_str().unwrap();
        let node = format!("data-address=\"{a}\" data-risk=\"{level}\"");
        let at = html.find(&node).unwrap_or_else(|| panic!("no node {node}"));
        let rect = &html[at..at
            + html[at..]
                .find("/>")
                .or_else(|| html[at..].find("</rect>"))
                .unwrap()];
        let want = match level {
            "severe" => Some("#d62728"),
            "high" => Some("#ff7f0e"),
            "medium" => Some("#ffdd57"),
            "low" => Some("#cde8cd"),
            _ => None,
        };
        if let Some(c) = want {
            assert!(rect.contains(&format!("fill=\"{c}\"")), "{level}: {rect}");
        }
    }

    // Short addresses with the full one as hover text, in the tables and in the graph.
    let op = "0xFB912BA54551CFA96518b1D93fC7188067Eb6A80";
    assert!(html.contains(&format!("<code title=\"{op}\">0xFB91…6A80</code>")));
    assert!(!html.contains(&format!("<code>{op}</code>")));
    let tx = report["payouts"][0]["tx_hash"].as_str().unwrap();
    assert!(html.contains(&format!("<code title=\"{tx}\">{}…", &tx[..8])));

    // Amounts in token units.
    let paid = html.find("<th>Paid</th><td class=\"num\">").unwrap();
    assert!(
        html[paid..paid + 80].contains(" USDC</td>"),
        "{}",
        &html[paid..paid + 80]
    );
    assert!(!html.contains("raw units"));
}
