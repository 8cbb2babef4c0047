//! End to end: a small payout chain built on a real anvil node, indexed with the binary, then
//! traced with `paytrace trace TX --json`; the destinations are asserted exactly against
//! amounts computed by hand (haircut, exact integer arithmetic).
//!
//! Needs the anvil binary (`scripts/install-anvil`).
#![allow(clippy::unwrap_used)]

mod common;

use alloy_primitives::U256;
use common::*;
use paytrace_indexer::testutil::{Anvil, ChainGenerator};
use serde_json::Value;
use std::collections::BTreeSet;

/// (address lower-case, asset, amount, hops, status) of every destination.
fn destinations(v: &Value) -> BTreeSet<(String, String, String, u64, String)> {
    v["destinations"]
        .as_array()
        .unwrap_or_else(|| panic!("no destinations in {v}"))
        .iter()
        .map(|d| {
            (
                d["address"].as_str().unwrap().to_ascii_lowercase(),
                d["asset"].as_str().unwrap().to_owned(),
                d["amount"].as_str().unwrap().to_owned(),
                d["hops"].as_u64().unwrap(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn haircut_trace_of_an_anvil_payout() {
    let anvil = Anvil::builder()
        .no_mining()
        .spawn()
        .await
        .expect("start anvil (run scripts/install-anvil)");
    let mut g = ChainGenerator::new(anvil.rpc()).await.unwrap();
    let a = g.accounts().to_vec();
    let (payer, payee, funder, b, c, exchange) = (a[1], a[2], a[3], a[4], a[5], a[6]);
    // Block 1: the payee gets 3000 wei clean. Block 2: the payout, 1000 wei (the seed).
    let spec = g.native(funder, payee, U256::from(3_000u64));
    g.send(spec).await.unwrap();
    g.mine().await.unwrap();
    let spec = g.native(payer, payee, U256::from(1_000u64));
    let seed = g.send(spec).await.unwrap();
    g.mine().await.unwrap();
    // The payee holds 4000, 1000 tainted. It sends 2000 to B: floor(2000*1000/4000) = 500
    // tainted (2000 left, 500 tainted), then 2000 to C: the rest, 500 tainted.
    let spec = g.native(payee, b, U256::from(2_000u64));
    g.send(spec).await.unwrap();
    g.mine().await.unwrap();
    let spec = g.native(payee, c, U256::from(2_000u64));
    g.send(spec).await.unwrap();
    g.mine().await.unwrap();
    // B (2000, 500 tainted) pays the exchange 500: floor(500*500/2000) = 125 tainted exits.
    let spec = g.native(b, exchange, U256::from(500u64));
    g.send(spec).await.unwrap();
    g.mine().await.unwrap();
    let head = g.head().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    run_json(&mut index_cmd(dir.path(), anvil.url(), head, &[]));

    let stop = format!("{exchange}=exchange");
    let seed = format!("{seed:#x}");
    let lc = |x: alloy_primitives::Address| format!("{x:#x}");
    let want: BTreeSet<(String, String, String, u64, String)> = [
        (lc(payee), "1000", 0, "payee"),
        (lc(b), "500", 1, "followed"),
        (lc(c), "500", 1, "followed"),
        (lc(exchange), "125", 2, "exited"),
    ]
    .into_iter()
    .map(|(x, v, h, s)| (x, "native".to_owned(), v.to_owned(), h, s.to_owned()))
    .collect();
    // TX (every transfer of the transaction: one here) and TX:0, found through the tx index.
    for s in [seed.clone(), format!("{seed}:0")] {
        let v = run_json(
            paytrace(dir.path())
                .args(["--json", "trace", &s, "--model", "haircut", "--stop", &stop]),
        );
        assert_eq!(destinations(&v), want, "{v}");
        assert_eq!(v["model"], "haircut");
        assert_eq!(v["totals_by_category"]["exchange"]["native"], "125", "{v}");
        // still at the payee 0, B holds 375, C 500
        assert_eq!(
            v["totals_by_category"]["unattributed"]["native"], "875",
            "{v}"
        );
        let path = v["paths"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["to"].as_str().map(str::to_ascii_lowercase) == Some(lc(exchange)))
            .unwrap_or_else(|| panic!("no evidence path to the exchange in {v}"));
        assert_eq!(path["hops"].as_array().unwrap().len(), 3, "{path}");
        assert_eq!(path["hops"][0]["tx_hash"], seed.as_str());
    }
    // Poison: everything the payee sent after the payout is tainted, and so is B's payment.
    let v = run_json(paytrace(dir.path()).args([
        "--json", "trace", &seed, "--model", "poison", "--stop", &stop,
    ]));
    let amounts: BTreeSet<(String, String)> = destinations(&v)
        .into_iter()
        .map(|(x, _, v, _, _)| (x, v))
        .collect();
    assert!(amounts.contains(&(lc(b), "2000".to_owned())), "{v}");
    assert!(amounts.contains(&(lc(exchange), "500".to_owned())), "{v}");
    // An unknown transaction is a clear error.
    let out = paytrace(dir.path())
        .args(["--json", "trace", &format!("0x{}", "ab".repeat(32))])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no indexed transfer"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
