//! Tests of the test support itself against a real anvil: process management, and the chain
//! generator's expectations cross-checked with anvil's own parity traces.
//!
//! Needs anvil: run `scripts/install-anvil` (the tests fail, not skip, without it).
#![cfg(feature = "test-utils")]
#![allow(clippy::unwrap_used)] // tests

use alloy_primitives::U256;
use paytrace_indexer::testutil::{Anvil, ChainGenerator};
use paytrace_indexer::{Asset, ChainId, Transfer, TransferKind};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

#[tokio::test]
async fn anvil_starts_answers_and_stops() {
    let anvil = Anvil::builder().no_mining().spawn().await.unwrap();
    let rpc = anvil.rpc();
    assert_eq!(rpc.chain_id().await.unwrap(), 31337);
    assert_eq!(rpc.block_number().await.unwrap(), 0);
    rpc.mine().await.unwrap();
    assert_eq!(rpc.block_number().await.unwrap(), 1);
    assert_eq!(rpc.accounts().await.unwrap().len(), 10);
    let url = anvil.url().to_owned();
    drop(anvil);
    // the process is gone: the port no longer answers
    let gone = paytrace_indexer::testutil::Rpc::new(&url).chain_id().await;
    assert!(gone.is_err(), "anvil still answers after drop");
}

/// Internal transfers as anvil's `trace_block` reports them, keyed like the generator's:
/// (block, tx index, position in the tx's flat trace list) -> (from, to, value, traceAddress).
type TraceKey = (u64, u32, u32);
type TraceVal = (String, String, U256, Vec<u32>);

async fn internal_from_traces(
    rpc: &paytrace_indexer::testutil::Rpc,
    head: u64,
) -> BTreeMap<TraceKey, TraceVal> {
    let mut out = BTreeMap::new();
    for number in 1..=head {
        let traces = rpc.trace_block(number).await.unwrap();
        let traces = traces.as_array().unwrap();
        let mut pos_in_tx: BTreeMap<u64, u32> = BTreeMap::new();
        // trace addresses of errored frames per tx
        let mut failed: BTreeMap<u64, Vec<Vec<u64>>> = BTreeMap::new();
        for t in traces {
            let Some(txpos) = t.get("transactionPosition").and_then(Value::as_u64) else {
                continue; // block rewards
            };
            let pos = *pos_in_tx.entry(txpos).and_modify(|p| *p += 1).or_insert(0);
            let ta: Vec<u64> = t["traceAddress"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let errored = t.get("error").is_some_and(|e| !e.is_null());
            let f = failed.entry(txpos).or_default();
            let in_failed = f.iter().any(|p| ta.starts_with(p));
            if errored {
                f.push(ta.clone());
            }
            if ta.is_empty() || errored || in_failed {
                continue;
            }
            let action = &t["action"];
            let value: U256 = serde_json::from_value(action["value"].clone()).unwrap_or_default();
            if value.is_zero() {
                continue;
            }
            let call_type = action.get("callType").and_then(Value::as_str).unwrap_or("");
            if call_type == "delegatecall" || call_type == "staticcall" {
                continue;
            }
            let to = action
                .get("to")
                .and_then(Value::as_str)
                .or_else(|| t["result"].get("address").and_then(Value::as_str))
                .unwrap()
                .to_lowercase();
            out.insert(
                (number, u32::try_from(txpos).unwrap(), pos),
                (
                    action["from"].as_str().unwrap().to_lowercase(),
                    to,
                    value,
                    ta.iter().map(|x| u32::try_from(*x).unwrap()).collect(),
                ),
            );
        }
    }
    out
}

#[tokio::test]
async fn generator_expectations_match_anvil_traces() {
    let anvil = Anvil::builder().no_mining().spawn().await.unwrap();
    let mut g = ChainGenerator::new(anvil.rpc()).await.unwrap();
    let started = std::time::Instant::now();
    g.generate().await.unwrap();
    let head = g.head().await.unwrap();
    let expected = g.expected(ChainId(7));
    eprintln!(
        "generated {} transfers in {head} blocks in {:?}",
        expected.len(),
        started.elapsed()
    );
    assert!(expected.len() >= 1_000, "only {} transfers", expected.len());
    let mut by_kind: BTreeMap<TransferKind, usize> = BTreeMap::new();
    for t in &expected {
        *by_kind.entry(t.key.kind).or_default() += 1;
        assert_eq!(t.key.chain, ChainId(7));
    }
    eprintln!("by kind: {by_kind:?}");
    for kind in [
        TransferKind::Native,
        TransferKind::Token,
        TransferKind::Internal,
    ] {
        assert!(
            by_kind.get(&kind).copied().unwrap_or(0) >= 50,
            "few {kind}: {by_kind:?}"
        );
    }
    // canonical order, unique keys
    assert!(expected.windows(2).all(|w| w[0].key < w[1].key));
    // edge cases present
    assert!(
        expected
            .iter()
            .any(|t| t.from == t.to && t.kind() == TransferKind::Native)
    );
    assert!(
        expected
            .iter()
            .any(|t| t.from == t.to && t.kind() == TransferKind::Token)
    );
    assert!(
        expected
            .iter()
            .any(|t| t.from == t.to && t.kind() == TransferKind::Internal)
    );
    assert!(
        expected
            .iter()
            .any(|t| t.amount.is_zero() && t.kind() == TransferKind::Token)
    );
    assert!(
        expected
            .iter()
            .all(|t| t.kind() == TransferKind::Token || !t.amount.is_zero())
    );
    let d = g.deployed().unwrap();
    let odd = paytrace_indexer::Address::evm(d.odd_logs);
    assert!(expected.iter().any(|t| t.asset == Asset::Token(odd)));
    // several transactions per block
    let txs_per_block: BTreeMap<_, BTreeSet<u32>> =
        expected.iter().fold(BTreeMap::new(), |mut m, t| {
            m.entry(t.key.block).or_default().insert(t.key.tx_index);
            m
        });
    assert!(txs_per_block.values().filter(|s| s.len() >= 5).count() >= 30);

    // Cross-check the internal transfers with anvil's parity traces (conventions check; the
    // expectations themselves never come from traces).
    let traced = internal_from_traces(g.rpc(), head).await;
    let planned: BTreeMap<TraceKey, TraceVal> = expected
        .iter()
        .filter(|t| t.kind() == TransferKind::Internal)
        .map(|t: &Transfer| {
            (
                (t.key.block.0, t.key.tx_index, t.key.position),
                (
                    t.from.to_string().to_lowercase(),
                    t.to.to_string().to_lowercase(),
                    t.amount.raw(),
                    t.trace_address.clone(),
                ),
            )
        })
        .collect();
    let only_planned: Vec<_> = planned
        .iter()
        .filter(|(k, v)| traced.get(k) != Some(v))
        .take(5)
        .collect();
    let only_traced: Vec<_> = traced
        .iter()
        .filter(|(k, v)| planned.get(k) != Some(v))
        .take(5)
        .collect();
    assert!(
        only_planned.is_empty() && only_traced.is_empty(),
        "planned but not traced: {only_planned:?}\ntraced but not planned: {only_traced:?}"
    );
    assert_eq!(planned.len(), traced.len());
}

#[tokio::test]
async fn generator_follows_a_reorg() {
    let anvil = Anvil::builder().no_mining().spawn().await.unwrap();
    let mut g = ChainGenerator::new(anvil.rpc()).await.unwrap();
    g.deploy().await.unwrap();
    let a = g.accounts().to_vec();
    for i in 0..6u64 {
        let spec = g.native(a[1], a[2], U256::from(1000 + i));
        g.send(spec).await.unwrap();
        let spec = g.token_transfer(a[0], a[3], U256::from(i)).unwrap();
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let head = g.head().await.unwrap();
    let before = g.expected(ChainId(1));
    let old_hash = g.rpc().block(head).await.unwrap().unwrap().hash;
    let d = g.deployed().unwrap();
    let txs = vec![
        (g.native(a[4], a[5], U256::from(4242u64)), 0),
        (g.token_transfer(a[0], a[6], U256::from(99u64)).unwrap(), 0),
        (
            g.forward(
                a[7],
                U256::from(30u64),
                &[(a[8], U256::from(10u64)), (a[9], U256::from(20u64))],
            )
            .unwrap(),
            2,
        ),
    ];
    g.reorg(3, txs).await.unwrap();
    assert_eq!(g.head().await.unwrap(), head);
    assert_ne!(g.rpc().block(head).await.unwrap().unwrap().hash, old_hash);
    let after = g.expected(ChainId(1));
    let kept: Vec<_> = before
        .iter()
        .filter(|t| t.key.block.0 + 3 <= head)
        .cloned()
        .collect();
    assert_eq!(&after[..kept.len()], &kept[..]);
    let new: Vec<_> = after[kept.len()..].to_vec();
    assert_eq!(new.len(), 5, "{new:#?}");
    assert!(new.iter().all(|t| t.key.block.0 + 3 > head));
    assert!(new.iter().any(|t| t.kind() == TransferKind::Internal
        && t.to == paytrace_indexer::Address::evm(a[9])
        && t.key.position == 2));
    let _ = d;
}

/// `PAYTRACE_BULK_TRANSFERS=50000` checks (and times) the benchmark-sized chain.
#[tokio::test]
async fn bulk_generator_makes_many_transfers() {
    let transfers = std::env::var("PAYTRACE_BULK_TRANSFERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000usize);
    let opts = paytrace_indexer::testutil::BulkOptions {
        transfers,
        ..Default::default()
    };
    let mut b = Anvil::builder().no_mining();
    for a in opts.anvil_args() {
        b = b.arg(a);
    }
    let anvil = b.spawn().await.unwrap();
    let mut g = ChainGenerator::new(anvil.rpc()).await.unwrap();
    let t = std::time::Instant::now();
    g.generate_bulk(opts).await.unwrap();
    let expected = g.expected(ChainId(1));
    eprintln!(
        "bulk: {} transfers, head {}, {:?}",
        expected.len(),
        g.head().await.unwrap(),
        t.elapsed()
    );
    assert!(expected.len() >= transfers);
    assert!(expected.windows(2).all(|w| w[0].key < w[1].key));
}
