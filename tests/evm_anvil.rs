//! End-to-end tests of `paytrace index evm` / `follow evm` / `address` against a real anvil node
//! and a generated chain whose transfers are known in advance (see
//! `paytrace_indexer::testutil::ChainGenerator`).
//!
//! Needs anvil: run `scripts/install-anvil` once (the tests fail, not skip, without it).

#![allow(clippy::unwrap_used)] // tests

mod common;

use alloy_primitives::U256;
use common::*;
use paytrace_indexer::{Address, Amount, Asset, Transfer, TransferKind};
use serde_json::Value;
use std::{collections::BTreeMap, time::Duration, time::Instant};

/// Index the whole generated chain, compare exactly; a second run changes nothing; `address`
/// shows the right transfers and totals.
#[tokio::test]
async fn index_matches_generated_chain() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    let t = Instant::now();
    let summary = run_json(&mut index_cmd(dir.path(), anvil.url(), head, &[]));
    eprintln!("indexed {head} blocks in {:?}: {summary}", t.elapsed());
    let (chain, stored, checkpoint) = read_store(dir.path());
    let expected = g.expected(chain);
    assert!(expected.len() >= 1_000);
    assert_transfers_eq(&stored, &expected);
    assert_summary(&summary, &expected, head);
    assert_eq!(checkpoint.map(|b| b.0), Some(head));

    // Re-run: resumes at the checkpoint, nothing to do, nothing changes.
    let again = run_json(&mut index_cmd(dir.path(), anvil.url(), head, &[]));
    assert_eq!(again["transfers"].as_u64(), Some(0), "second run: {again}");
    let (_, stored_again, _) = read_store(dir.path());
    assert_transfers_eq(&stored_again, &expected);
    let head_hash = format!("{:#x}", g.rpc().block(head).await.unwrap().unwrap().hash);
    assert_stats(dir.path(), &expected, head, &head_hash);

    // `address --json` of a dev account that sends and receives all kinds.
    let who = Address::evm(g.accounts()[7]);
    let out = run_json(
        paytrace(dir.path())
            .args(["--json", "address"])
            .arg(who.to_string()),
    );
    check_address_output(&out, who, &expected);
}

fn check_address_output(out: &Value, who: Address, expected: &[Transfer]) {
    let incoming: Vec<&Transfer> = expected.iter().filter(|t| t.to == who).collect();
    let outgoing: Vec<&Transfer> = expected.iter().filter(|t| t.from == who).collect();
    assert!(!incoming.is_empty() && !outgoing.is_empty());
    let row = |t: &Transfer| {
        (
            t.key.block.0,
            t.tx_hash.to_string(),
            t.key.kind.as_str().to_owned(),
            t.from.to_string(),
            t.to.to_string(),
            t.asset.to_string(),
            t.amount.to_string(),
        )
    };
    let rows = |v: &Value| {
        let mut r: Vec<_> = v
            .as_array()
            .unwrap_or_else(|| panic!("not an array: {v}"))
            .iter()
            .map(|x| {
                (
                    x["block"].as_u64().unwrap(),
                    x["tx"].as_str().unwrap().to_owned(),
                    x["kind"].as_str().unwrap().to_owned(),
                    x["from"].as_str().unwrap().to_owned(),
                    x["to"].as_str().unwrap().to_owned(),
                    x["asset"].as_str().unwrap().to_owned(),
                    x["amount"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        r.sort();
        r
    };
    let mut want_in: Vec<_> = incoming.iter().map(|t| row(t)).collect();
    want_in.sort();
    let mut want_out: Vec<_> = outgoing.iter().map(|t| row(t)).collect();
    want_out.sort();
    assert_eq!(out["address"].as_str(), Some(who.to_string().as_str()));
    assert_eq!(rows(&out["incoming"]), want_in);
    assert_eq!(rows(&out["outgoing"]), want_out);

    // totals per asset: (incoming, outgoing, counts)
    let mut want: BTreeMap<String, (Amount, Amount, u64, u64)> = BTreeMap::new();
    for t in &incoming {
        let e = want.entry(t.asset.to_string()).or_default();
        e.0 = e.0.checked_add(t.amount).unwrap();
        e.2 += 1;
    }
    for t in &outgoing {
        let e = want.entry(t.asset.to_string()).or_default();
        e.1 = e.1.checked_add(t.amount).unwrap();
        e.3 += 1;
    }
    let got: BTreeMap<String, (Amount, Amount, u64, u64)> = out["totals"]
        .as_array()
        .unwrap_or_else(|| panic!("totals: {}", out["totals"]))
        .iter()
        .map(|x| {
            (
                x["asset"].as_str().unwrap().to_owned(),
                (
                    x["incoming"].as_str().unwrap().parse().unwrap(),
                    x["outgoing"].as_str().unwrap().parse().unwrap(),
                    x["incoming_count"].as_u64().unwrap(),
                    x["outgoing_count"].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(got, want, "totals of {who}");
    assert!(want.contains_key(&Asset::Native.to_string()));
    assert!(want.len() >= 2, "native and token totals expected");
}

/// `follow` indexes to the head, then survives a 3-block reorg with different transactions.
#[tokio::test]
async fn follow_handles_reorg() {
    let (anvil, mut g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut follow = paytrace(dir.path());
    follow.args([
        "follow",
        "evm",
        "--chain",
        CHAIN,
        "--rpc",
        anvil.url(),
        "--confirmations",
        "0",
        "--poll-interval-ms",
        "200",
    ]);
    let t = Instant::now();
    let mut p = Running::spawn(follow);
    p.wait_until("follow to reach the head", Duration::from_secs(120), &|p| {
        p.last_committed().is_some_and(|l| l >= head)
    });
    eprintln!("follow caught up to {head} in {:?}", t.elapsed());

    // Replace the last 3 blocks: new transactions at offsets 0 and 2, offset 1 empty.
    let a = g.accounts().to_vec();
    let d = g.deployed().unwrap();
    let reorg_txs = vec![
        (g.native(a[4], a[5], U256::from(4_242u64)), 0),
        (g.token_transfer(a[0], a[6], U256::from(99u64)).unwrap(), 0),
        (
            g.forward(
                a[7],
                U256::from(30u64),
                &[(a[8], U256::from(10u64)), (d.forwarder, U256::from(20u64))],
            )
            .unwrap(),
            2,
        ),
        (g.token_transfer(a[0], a[0], U256::ZERO).unwrap(), 2),
    ];
    g.reorg(3, reorg_txs).await.unwrap();
    // New blocks on top, so that the follower sees a parent-hash mismatch.
    for i in 0..2u64 {
        let spec = g.native(a[1], a[2], U256::from(77 + i));
        g.send(spec).await.unwrap();
        let spec = g.token_transfer(a[0], a[3], U256::from(i)).unwrap();
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let new_head = g.head().await.unwrap();
    p.wait_until(
        "follow to index past the reorg",
        Duration::from_secs(120),
        &|p| p.last_committed().is_some_and(|l| l >= new_head),
    );
    let status = p.signal_and_wait("-INT", Duration::from_secs(30));
    assert!(
        status.success(),
        "follow exit status {status}; log:\n{}",
        p.lines().join("\n")
    );
    let log = p.lines().join("\n");
    assert!(
        log.contains("reorg"),
        "no reorg reported in the log:\n{log}"
    );
    drop(p);

    // The store now holds the canonical chain; indexing to the head is a no-op.
    let (chain, stored, checkpoint) = read_store(dir.path());
    let expected = g.expected(chain);
    assert_eq!(checkpoint.map(|b| b.0), Some(new_head));
    assert_transfers_eq(&stored, &expected);
    let summary = run_json(&mut index_cmd(dir.path(), anvil.url(), new_head, &[]));
    assert_eq!(summary["transfers"].as_u64(), Some(0), "{summary}");
    let (_, stored, _) = read_store(dir.path());
    assert_transfers_eq(&stored, &expected);
    // counters were unwound too, and the checkpoint is the canonical head
    let head_hash = format!(
        "{:#x}",
        g.rpc().block(new_head).await.unwrap().unwrap().hash
    );
    assert_stats(dir.path(), &expected, new_head, &head_hash);
    // the reorged-in forward paid the Forwarder itself (an internal self-payment)
    assert!(expected.iter().any(|t| t.kind() == TransferKind::Internal
        && t.key.block.0 + 2 == new_head
        && t.amount == Amount::from_u64(20)));
}

/// `kill -9` in the middle of an index run with small commits, then re-run: nothing lost,
/// nothing duplicated, and the partial store is consistent with its checkpoint.
#[tokio::test]
async fn index_survives_kill_9() {
    let (anvil, g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A request-rate limit makes the run slow enough to be killed mid-range.
    let cmd = index_cmd(
        dir.path(),
        anvil.url(),
        head,
        &["--blocks-per-commit", "5", "--rps", "10"],
    );
    let mut p = Running::spawn(cmd);
    p.wait_until("the first commit", Duration::from_secs(120), &|p| {
        p.last_committed().is_some()
    });
    let still_running = matches!(p.child.try_wait(), Ok(None));
    let status = p.signal_and_wait("-KILL", Duration::from_secs(30));
    assert!(
        still_running,
        "index finished before it could be killed; log:\n{}",
        p.lines().join("\n")
    );
    assert!(!status.success());
    drop(p);

    let (chain, partial, checkpoint) = read_store(dir.path());
    let expected = g.expected(chain);
    let cp = checkpoint.expect("a checkpoint after the first commit").0;
    assert!(cp < head, "checkpoint {cp} already at the head {head}");
    let expected_partial: Vec<Transfer> = expected
        .iter()
        .filter(|t| t.key.block.0 <= cp)
        .cloned()
        .collect();
    assert_transfers_eq(&partial, &expected_partial);

    let summary = run_json(&mut index_cmd(
        dir.path(),
        anvil.url(),
        head,
        &["--blocks-per-commit", "5"],
    ));
    let (_, stored, checkpoint) = read_store(dir.path());
    assert_transfers_eq(&stored, &expected);
    assert_eq!(checkpoint.map(|b| b.0), Some(head));
    let head_hash = format!("{:#x}", g.rpc().block(head).await.unwrap().unwrap().hash);
    assert_stats(dir.path(), &expected, head, &head_hash);
    let rest: Vec<Transfer> = expected
        .iter()
        .filter(|t| t.key.block.0 > cp)
        .cloned()
        .collect();
    assert_summary(&summary, &rest, head);
}

/// `follow` stops cleanly (exit 0) on SIGTERM, with everything up to the head committed;
/// `--json` given after the subcommand's flags prints its summary.
#[tokio::test]
async fn follow_stops_on_sigterm() {
    let anvil = paytrace_indexer::testutil::Anvil::builder()
        .no_mining()
        .spawn()
        .await
        .unwrap();
    let mut g = paytrace_indexer::testutil::ChainGenerator::new(anvil.rpc())
        .await
        .unwrap();
    g.deploy().await.unwrap();
    let a = g.accounts().to_vec();
    for i in 0..5u64 {
        let spec = g.native(a[1], a[2], U256::from(1 + i));
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let head = g.head().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut follow = paytrace(dir.path());
    follow.args([
        "follow",
        "evm",
        "--chain",
        CHAIN,
        "--rpc",
        anvil.url(),
        "--confirmations",
        "0",
        "--poll-interval-ms",
        "200",
        "--json",
    ]);
    let mut p = Running::spawn(follow);
    p.wait_until("follow to reach the head", Duration::from_secs(120), &|p| {
        p.last_committed().is_some_and(|l| l >= head)
    });
    let status = p.signal_and_wait("-TERM", Duration::from_secs(30));
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        p.lines().join("\n")
    );
    let mut stdout = String::new();
    if let Some(mut s) = p.child.stdout.take() {
        std::io::Read::read_to_string(&mut s, &mut stdout).unwrap();
    }
    let summary: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("follow --json summary is not JSON ({e}): {stdout}"));
    assert_eq!(summary["chain"], CHAIN, "{summary}");
    drop(p);
    let (chain, stored, checkpoint) = read_store(dir.path());
    assert_eq!(checkpoint.map(|b| b.0), Some(head));
    assert_transfers_eq(&stored, &g.expected(chain));
}
