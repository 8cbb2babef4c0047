//! End-to-end tests of `paytrace cluster` on a store holding UTXO transactions (written through
//! the indexer library in the store convention, since the Bitcoin indexer is a separate
//! module): the `[cluster]` config reaches the heuristics (a change heuristic switched on, the
//! collapse guard's threshold), CoinJoins are not merged, `explain` reports refusals, and bad
//! input gives clear errors.

#![allow(clippy::unwrap_used)] // tests

mod common;

use alloy_primitives::B256;
use common::*;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash, model::UTXO_OUTPUT_BASE,
};
use std::path::Path;

fn s(n: u8) -> Address {
    Address::Script([n; 32])
}

fn tx(block: u64, index: u32, ins: &[(Address, u64)], outs: &[(Address, u64)]) -> Vec<Transfer> {
    let mut id = [0u8; 32];
    id[0] = u8::try_from(block).unwrap();
    id[1] = u8::try_from(index).unwrap();
    let node = Address::Tx(id);
    let mk = |position, from, to, v| Transfer {
        key: TransferKey {
            chain: paytrace_indexer::ChainId(1),
            block: BlockNumber(block),
            tx_index: index,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(block * 600),
        tx_hash: TxHash(B256::from(id)),
        from,
        to,
        asset: Asset::Native,
        amount: Amount::from_u64(v),
        trace_address: Vec::new(),
    };
    let mut out = Vec::new();
    for (i, (a, v)) in ins.iter().enumerate() {
        out.push(mk(u32::try_from(i).unwrap(), *a, node, *v));
    }
    for (i, (a, v)) in outs.iter().enumerate() {
        out.push(mk(
            UTXO_OUTPUT_BASE + u32::try_from(i).unwrap(),
            node,
            *a,
            *v,
        ));
    }
    out
}

fn write_store(dir: &Path) {
    let store = Store::open(dir).unwrap();
    let chain = store.register_chain("btc", ChainKind::Bitcoin).unwrap();
    let mut ts = Vec::new();
    // two clusters of three by multi-input
    ts.extend(tx(
        1,
        0,
        &[(s(1), 10), (s(2), 10), (s(3), 10)],
        &[(s(90), 29)],
    ));
    ts.extend(tx(
        1,
        1,
        &[(s(11), 10), (s(12), 10), (s(13), 10)],
        &[(s(91), 29)],
    ));
    // a round payment from s(1) whose change goes to s(11): a low-confidence change merge
    ts.extend(tx(
        2,
        0,
        &[(s(1), 1_000_000)],
        &[(s(92), 500_000), (s(11), 499_123)],
    ));
    // a Whirlpool mix of five other addresses
    let ins: Vec<_> = (40..45).map(|i| (s(i), 1_000_170)).collect();
    let outs: Vec<_> = (50..55).map(|i| (s(i), 1_000_000)).collect();
    ts.extend(tx(3, 0, &ins, &outs));
    ts.sort_by_key(|t| t.key);
    let blocks: Vec<BlockRef> = (1..=3u64)
        .map(|n| BlockRef {
            number: BlockNumber(n),
            hash: B256::left_padding_from(&n.to_be_bytes()),
            parent: B256::left_padding_from(&(n - 1).to_be_bytes()),
            time: Timestamp(n * 600),
        })
        .collect();
    store.write_range(chain, &blocks, &ts).unwrap();
    store.persist().unwrap();
}

fn members(v: &serde_json::Value) -> Vec<String> {
    v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn config_reaches_the_heuristics_and_explain_reports_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    write_store(&data);
    let cfg = dir.path().join("paytrace.toml");
    std::fs::write(
        &cfg,
        "[cluster]\ncollapse_size_threshold = 3\n[cluster.change]\nmerge = [\"round_payment\"]\nround_payment_confidence = 40\n",
    )
    .unwrap();
    let with_cfg = |args: &[&str]| {
        let mut c = paytrace(&data);
        c.arg("--config").arg(&cfg).args(args);
        c
    };
    let r = run_json(&mut with_cfg(&["--json", "cluster", "run"]));
    let stats = &r["runs"][0]["stats"];
    assert_eq!(stats["merges"].as_u64(), Some(4), "{r}");
    assert_eq!(stats["refused"].as_u64(), Some(1), "{r}");
    assert_eq!(stats["coinjoins"].as_u64(), Some(1), "{r}");
    let a = s(1).to_string();
    let b = s(11).to_string();
    let v = run_json(&mut with_cfg(&["--json", "cluster", "show", &a]));
    assert_eq!(v["size"].as_u64(), Some(3));
    assert_eq!(members(&v), [s(1), s(2), s(3)].map(|x| x.to_string()));
    assert_eq!(v["merges_total"].as_u64(), Some(2));
    assert!(
        v["merges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["heuristic"] == "multi_input" && m["chain"] == "btc")
    );
    let e = run_json(&mut with_cfg(&["--json", "cluster", "explain", &a, &b]));
    assert_eq!(e["joined"], false);
    assert_eq!(e["refused"][0]["heuristic"], "change_round_payment");
    assert_eq!(e["refused"][0]["confidence"].as_u64(), Some(40));
    assert_eq!(
        (
            e["refused"][0]["size_a"].as_u64(),
            e["refused"][0]["size_b"].as_u64()
        ),
        (Some(3), Some(3))
    );
    let text = run_ok(&mut with_cfg(&["cluster", "explain", &a, &b]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("refused by the collapse guard"), "{text}");
    // CoinJoin inputs stay apart.
    let v = run_json(&mut with_cfg(&[
        "--json",
        "cluster",
        "show",
        &s(40).to_string(),
    ]));
    assert_eq!(v["cluster"], serde_json::Value::Null);

    // Without the config the change heuristic is off: nothing refused, same clusters.
    let again = tempfile::tempdir().unwrap();
    write_store(again.path());
    let r = run_json(paytrace(again.path()).args(["--json", "cluster", "run", "--chain", "btc"]));
    assert_eq!(r["runs"][0]["stats"]["refused"].as_u64(), Some(0), "{r}");
    assert_eq!(r["runs"][0]["stats"]["merges"].as_u64(), Some(4), "{r}");
    // --rebuild starts over and gives the same.
    let r = run_json(paytrace(again.path()).args(["--json", "cluster", "run", "--rebuild"]));
    assert_eq!(r["runs"][0]["from"].as_u64(), Some(0), "{r}");
    assert_eq!(r["runs"][0]["stats"]["merges"].as_u64(), Some(4), "{r}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    write_store(&data);
    let out = paytrace(&data)
        .args(["cluster", "show", "not-an-address"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"not-an-address\" is not an address"),
        "{err}"
    );
    let out = paytrace(&data)
        .args(["cluster", "run", "--chain", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chain \"nope\" is not indexed"), "{err}");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[cluster.change]\nmerge = [\"psychic\"]\n").unwrap();
    let out = paytrace(&data)
        .arg("--config")
        .arg(&cfg)
        .args(["cluster", "run"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster.change.merge[0]"), "{err}");
    // nothing stored was lost
    let v = run_json(paytrace(&data).args(["--json", "stats"]));
    assert!(v["chains"][0]["transfers"].as_u64().unwrap_or(0) > 0, "{v}");
}
