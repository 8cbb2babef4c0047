//! End-to-end clustering on a real anvil chain indexed with the EVM sync: labelled exchange
//! hot wallets, deposit addresses sweeping to them, users sharing a deposit address, and a
//! token airdrop forwarded to one aggregation address. Clustering in two steps (cluster, index
//! more, cluster again) equals clustering once.
//!
//! Needs anvil: run `scripts/install-anvil` once (the test fails, not skips, without it).

#![allow(clippy::unwrap_used)] // tests

mod common;

use alloy_primitives::{Address as EvmAddress, U256};
use common::*;
use paytrace_indexer::{
    Address,
    testutil::{Anvil, ChainGenerator},
};
use serde_json::Value;
use std::{collections::BTreeSet, path::Path};

const MILLI: u64 = 1_000_000_000_000_000;

fn eth_milli(m: u64) -> U256 {
    U256::from(m) * U256::from(MILLI)
}

fn a(x: EvmAddress) -> String {
    Address::evm(x).to_string()
}

fn import_labels(dir: &Path, hot1: EvmAddress, hot2: EvmAddress) {
    let f = dir.join("exchanges.csv");
    std::fs::write(
        &f,
        format!(
            "address,category,entity,chain\n{},exchange,Binance,ethereum\n{},exchange,Kraken,ethereum\n",
            a(hot1),
            a(hot2)
        ),
    )
    .unwrap();
    run_ok(
        paytrace(&dir.join("store"))
            .args([
                "labels",
                "import",
                "--format",
                "csv",
                "--source",
                "test-exchanges",
                "--version",
                "2020-01-01",
            ])
            .arg(&f),
    );
}

fn index_to(dir: &Path, url: &str, head: u64) {
    run_json(&mut index_cmd(&dir.join("store"), url, head, &[]));
}

fn cluster_run(dir: &Path) -> Value {
    run_json(paytrace(&dir.join("store")).args(["--json", "cluster", "run"]))
}

fn show(dir: &Path, who: EvmAddress) -> Value {
    run_json(paytrace(&dir.join("store")).args(["--json", "cluster", "show", &a(who)]))
}

fn members(dir: &Path, who: EvmAddress) -> BTreeSet<String> {
    show(dir, who)["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

fn set(xs: &[EvmAddress]) -> BTreeSet<String> {
    xs.iter().map(|x| a(*x)).collect()
}

#[tokio::test]
async fn deposit_and_airdrop_clusters_on_anvil_incrementally() {
    let anvil = Anvil::builder()
        .no_mining()
        .arg("--accounts")
        .arg("30")
        .spawn()
        .await
        .expect("start anvil (run scripts/install-anvil)");
    let mut g = ChainGenerator::new(anvil.rpc()).await.unwrap();
    let acc: Vec<EvmAddress> = g.accounts().to_vec();
    assert!(acc.len() >= 30);
    g.deploy().await.unwrap();
    let (distributor, hot1, hot2) = (acc[0], acc[1], acc[2]);
    let (d1, d2) = (acc[3], acc[4]);
    let (u1, u2, u3) = (acc[5], acc[6], acc[7]);
    let recipients: Vec<EvmAddress> = acc[10..22].to_vec();
    let (agg, lone) = (acc[25], acc[26]);

    // Phase 1: two users deposit to d1, which sweeps (minus a gas allowance) to hot1; u3
    // gets tokens and deposits them to d2, which sweeps them to hot2; an airdrop to 12
    // addresses, three of which forward it to `agg`, one to `lone`.
    g.send(g.native(u1, d1, eth_milli(1_000))).await.unwrap();
    g.send(g.native(u2, d1, eth_milli(2_000))).await.unwrap();
    g.send(g.token_transfer(distributor, u3, eth_milli(500)).unwrap())
        .await
        .unwrap();
    let drop: Vec<(EvmAddress, U256)> = recipients.iter().map(|r| (*r, eth_milli(10))).collect();
    g.send(g.token_batch(distributor, &drop).unwrap())
        .await
        .unwrap();
    g.mine().await.unwrap();
    g.send(g.native(d1, hot1, eth_milli(2_999))).await.unwrap();
    g.send(g.token_transfer(u3, d2, eth_milli(500)).unwrap())
        .await
        .unwrap();
    for r in &recipients[..3] {
        g.send(g.token_transfer(*r, agg, eth_milli(10)).unwrap())
            .await
            .unwrap();
    }
    g.send(
        g.token_transfer(recipients[3], lone, eth_milli(10))
            .unwrap(),
    )
    .await
    .unwrap();
    g.mine().await.unwrap();
    g.send(g.token_transfer(d2, hot2, eth_milli(500)).unwrap())
        .await
        .unwrap();
    g.mine().await.unwrap();
    let head1 = g.head().await.unwrap();

    let steps = tempfile::tempdir().unwrap();
    import_labels(steps.path(), hot1, hot2);
    index_to(steps.path(), anvil.url(), head1);
    let r1 = cluster_run(steps.path());
    assert_eq!(r1["hot_wallets"].as_u64(), Some(2), "{r1}");
    assert_eq!(r1["runs"][0]["stats"]["deposits"].as_u64(), Some(2), "{r1}");
    assert_eq!(members(steps.path(), u1), set(&[u1, u2, d1]));
    assert_eq!(members(steps.path(), u3), set(&[u3, d2]));
    assert_eq!(
        members(steps.path(), agg),
        set(&[agg, recipients[0], recipients[1], recipients[2]])
    );
    assert_eq!(show(steps.path(), lone)["cluster"], Value::Null);

    // Phase 2: u3 also uses d1 (so both deposit addresses are one user), and a fourth
    // recipient forwards to `agg`.
    g.send(g.native(u3, d1, eth_milli(700))).await.unwrap();
    g.send(g.token_transfer(recipients[4], agg, eth_milli(10)).unwrap())
        .await
        .unwrap();
    g.mine().await.unwrap();
    g.send(g.native(d1, hot1, eth_milli(699))).await.unwrap();
    g.mine().await.unwrap();
    let head2 = g.head().await.unwrap();
    index_to(steps.path(), anvil.url(), head2);
    let r2 = cluster_run(steps.path());
    assert_eq!(r2["runs"][0]["from"].as_u64(), Some(head1 + 1), "{r2}");

    let once = tempfile::tempdir().unwrap();
    import_labels(once.path(), hot1, hot2);
    index_to(once.path(), anvil.url(), head2);
    cluster_run(once.path());

    let users = set(&[u1, u2, u3, d1, d2]);
    let farm = set(&[
        agg,
        recipients[0],
        recipients[1],
        recipients[2],
        recipients[4],
    ]);
    for dir in [steps.path(), once.path()] {
        for who in [u1, u2, u3, d1, d2] {
            assert_eq!(members(dir, who), users);
        }
        for who in [agg, recipients[0], recipients[4]] {
            assert_eq!(members(dir, who), farm);
        }
        for who in [hot1, hot2, lone, recipients[3], recipients[5], distributor] {
            assert_eq!(show(dir, who)["cluster"], Value::Null, "{}", a(who));
        }
    }
    // The users' cluster carries the deposit attributions of d1 (Binance) and d2 (Kraken):
    // two exchanges, reported as a conflict.
    let v = show(steps.path(), u1);
    assert_eq!(v["size"].as_u64(), Some(5));
    let labels: BTreeSet<(String, String)> = v["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["category"].as_str().unwrap().to_owned(),
                l["entity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        BTreeSet::from([
            ("exchange_deposit".to_owned(), "Binance".to_owned()),
            ("exchange_deposit".to_owned(), "Kraken".to_owned())
        ])
    );
    assert_eq!(
        v["conflicts"][0]["entities"],
        serde_json::json!(["Binance", "Kraken"])
    );
    assert!(
        v["merges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["heuristic"] == "deposit_address")
    );
    assert_eq!(v["merges_total"].as_u64(), Some(4));
    let d = show(steps.path(), d1);
    assert_eq!(d["deposit"]["entity"], "Binance");
    assert_eq!(d["deposit"]["exchange"].as_str(), Some(a(hot1).as_str()));

    // explain: u1 and d2 are joined through d1 and u3; u1 and agg are not.
    let e = run_json(paytrace(&steps.path().join("store")).args([
        "--json",
        "cluster",
        "explain",
        &a(u1),
        &a(d2),
    ]));
    assert_eq!(e["joined"], true);
    let path = e["path"].as_array().unwrap();
    assert_eq!(path.len(), 3, "{e}");
    assert!(
        path.iter()
            .all(|m| m["heuristic"] == "deposit_address" && m["related_tx"].is_string())
    );
    let e = run_json(paytrace(&steps.path().join("store")).args([
        "--json",
        "cluster",
        "explain",
        &a(u1),
        &a(agg),
    ]));
    assert_eq!(e["joined"], false);
    assert_eq!(e["path"].as_array().unwrap().len(), 0);
    // Nothing new: a third run does nothing.
    let r3 = cluster_run(steps.path());
    assert_eq!(r3["runs"][0]["from"], Value::Null);
    // Text output works too.
    let out = run_ok(paytrace(&steps.path().join("store")).args(["cluster", "show", &a(u1)]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cluster") && text.contains("deposit_address"),
        "{text}"
    );
}
