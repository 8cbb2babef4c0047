//! The RPC source against a mock node (no bitcoind can run on the test machines): real
//! recorded Bitcoin Core answers (bitcoin-etl), and generated chains for reorgs and errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests only

use super::{
    BtcError, BtcSummary, BtcSync, UtxoStore,
    generate::ChainGen,
    mock::{Fault, MockNode, MockState},
    rpc::RpcSource,
};
use crate::{
    Address, ChainKind, Store, Transfer,
    evm::{RpcClient, RpcConfig},
    model::{BlockNumber, ChainId, UTXO_OUTPUT_BASE},
    sync::{StopSignal, SyncOptions},
};
use bitcoin::hashes::Hash as _;
use serde_json::Value;
use std::{path::Path, str::FromStr, time::Duration};

const ETL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/btc/bitcoin-etl"
);

fn client(url: &str) -> RpcClient {
    RpcClient::new(RpcConfig {
        max_retries: 0,
        min_backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        ..RpcConfig::new(url)
    })
    .unwrap()
}

async fn index_rpc(
    store: &Store,
    url: &str,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<BtcSummary, BtcError> {
    let chain = store.register_chain("btc", ChainKind::Bitcoin)?;
    let sync = BtcSync::new(
        UtxoStore::open(store)?,
        RpcSource::new(client(url), 0),
        chain,
        "btc",
        SyncOptions {
            blocks_per_commit: 3,
            in_flight: 3,
            unit_retries: 0,
        },
        StopSignal::new(),
    );
    sync.index(from, to, &|_| {}).await
}

fn transfers(store: &Store, chain: ChainId) -> Vec<Transfer> {
    store
        .range_transfers(chain, BlockNumber(0), BlockNumber(u64::MAX))
        .map(Result::unwrap)
        .collect()
}

/// Indexes a recorded case and compares every transaction with bitcoin-etl's expected output.
async fn check_case(case: &str, from: u64, to: u64) -> (BtcSummary, usize) {
    let dir = Path::new(ETL).join(case);
    let mut st = MockState::default();
    st.load_recordings(&dir);
    let node = MockNode::start(st).await;
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let s = index_rpc(&store, &node.url, Some(from), Some(to))
        .await
        .unwrap();
    let chain = store.chain_by_name("btc").unwrap().unwrap().id;
    let utxo = UtxoStore::open(&store).unwrap();
    let all = transfers(&store, chain);
    let expected = std::fs::read_to_string(dir.join("expected_transactions.json")).unwrap();
    let mut n = 0;
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let e: Value = serde_json::from_str(line).unwrap();
        n += 1;
        let txid = bitcoin::Txid::from_str(e["hash"].as_str().unwrap())
            .unwrap()
            .to_byte_array();
        let meta = utxo.tx_meta(chain, &txid).unwrap().expect("tx indexed");
        assert_eq!(meta.block, e["block_number"].as_u64().unwrap(), "{case}");
        assert_eq!(u64::from(meta.tx_index), e["index"].as_u64().unwrap());
        assert_eq!(meta.coinbase, e["is_coinbase"].as_bool().unwrap());
        assert_eq!(meta.output_value, e["output_value"].as_u64().unwrap());
        let node_addr = Address::Tx(txid);
        let of_tx: Vec<&Transfer> = all
            .iter()
            .filter(|t| t.from == node_addr || t.to == node_addr)
            .collect();
        for o in e["outputs"].as_array().unwrap() {
            let pos = UTXO_OUTPUT_BASE + u32::try_from(o["index"].as_u64().unwrap()).unwrap();
            let t = of_tx.iter().find(|t| t.key.position == pos).unwrap();
            assert_eq!(
                t.amount.to_string(),
                o["value"].as_u64().unwrap().to_string()
            );
            assert_eq!(utxo.display(&t.to), o["addresses"][0].as_str().unwrap());
        }
        for i in e["inputs"].as_array().unwrap() {
            let pos = u32::try_from(i["index"].as_u64().unwrap()).unwrap();
            let spent = bitcoin::Txid::from_str(i["spent_transaction_hash"].as_str().unwrap())
                .unwrap()
                .to_byte_array();
            match i["addresses"].as_array().and_then(|a| a.first()) {
                Some(addr) => {
                    let t = of_tx
                        .iter()
                        .find(|t| t.key.position == pos && t.to == node_addr)
                        .unwrap();
                    assert_eq!(utxo.display(&t.from), addr.as_str().unwrap());
                    assert_eq!(
                        t.amount.to_string(),
                        i["value"].as_u64().unwrap().to_string()
                    );
                }
                None => {
                    // Not enriched upstream: unresolved here too, explicitly.
                    assert!(meta.unresolved.contains(&(
                        pos,
                        spent,
                        u32::try_from(i["spent_output_index"].as_u64().unwrap()).unwrap()
                    )));
                }
            }
        }
        if e["is_coinbase"] == false && meta.unresolved.is_empty() {
            assert_eq!(meta.fee, e["fee"].as_u64());
            assert_eq!(meta.input_value, e["input_value"].as_u64().unwrap());
        }
    }
    (s, n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_bitcoin_core_answers_match_bitcoin_etl() {
    let (s, n) = check_case("block_0", 0, 0).await;
    assert_eq!((s.stats.txs, n), (1, 1));
    let (s, n) = check_case("block_1", 1, 1).await;
    assert_eq!((s.stats.txs, n), (1, 1));
    let (s, _) = check_case("block_without_transactions", 50_000, 50_000).await;
    assert_eq!(s.stats.txs, 1);
    // Without getrawtransaction recordings the 3 inputs stay unresolved (and are counted).
    let (s, n) = check_case("block_with_transactions", 50_001, 50_002).await;
    assert_eq!((s.stats.txs, n, s.stats.unresolved_inputs), (4, 4, 3));
    // With them, every input resolves through getrawtransaction.
    let (s, n) = check_case("stream_50001_50002", 50_001, 50_002).await;
    assert_eq!((s.stats.txs, n), (4, 4));
    assert_eq!((s.stats.fetched_inputs, s.stats.unresolved_inputs), (3, 0));
}

fn chain_with_fork() -> (Vec<bitcoin::Block>, Vec<bitcoin::Block>) {
    let mut g = ChainGen::new(11, 10);
    let common = g.blocks(20);
    let mut b = g.clone();
    let mut a = common.clone();
    a.extend(g.blocks(5));
    b.txs_per_block = 6;
    let mut fork = common;
    fork.extend(b.blocks(8));
    (a, fork)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_through_rpc_unwinds_and_matches_a_fresh_index() {
    let (a, b) = chain_with_fork();
    let node = MockNode::start(MockState::with_blocks(a)).await;
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let s = index_rpc(&store, &node.url, None, None).await.unwrap();
    assert_eq!(s.checkpoint, Some(24));
    // Balance checkpoints every 2 entries, built before the reorg: the sync's pipeline unwinds
    // them with the orphaned blocks.
    let c = store.chain_by_name("btc").unwrap().unwrap().id;
    store.build_balances(Some(c), 2).unwrap();
    assert_eq!(store.balances_progress(c).unwrap(), Some(BlockNumber(24)));
    node.set_blocks(b.clone());
    let s = index_rpc(&store, &node.url, None, None).await.unwrap();
    assert_eq!((s.reorgs, s.unwound_blocks, s.checkpoint), (1, 5, Some(27)));
    assert_eq!(s.from, Some(20));
    assert_eq!(
        store.balances_progress(c).unwrap(),
        Some(BlockNumber(19)),
        "the balance stage's progress went back to the fork"
    );
    store.update_balances(c, 2).unwrap();

    let fresh_node = MockNode::start(MockState::with_blocks(b)).await;
    let d2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(d2.path()).unwrap();
    index_rpc(&store2, &fresh_node.url, None, None)
        .await
        .unwrap();
    assert_eq!(transfers(&store, c), transfers(&store2, c));
    assert_eq!(
        UtxoStore::open(&store).unwrap().utxo_set(c).unwrap(),
        UtxoStore::open(&store2).unwrap().utxo_set(c).unwrap()
    );
    assert_eq!(store.counters(c).unwrap(), store2.counters(c).unwrap());
    // The checkpoints kept through the reorg and updated after it equal a fresh build.
    store2.build_balances(Some(c), 2).unwrap();
    let end = crate::TransferKey {
        chain: c,
        block: BlockNumber(u64::MAX),
        tx_index: u32::MAX,
        kind: crate::TransferKind::Utxo,
        position: u32::MAX,
    };
    let mut checked = 0;
    for t in transfers(&store2, c) {
        for a in [t.from, t.to] {
            let got = store.balance_checkpoint(&a, Some(c), &end).unwrap();
            checked += usize::from(got.is_some());
            assert_eq!(got, store2.balance_checkpoint(&a, Some(c), &end).unwrap());
        }
    }
    assert!(checked > 0, "some address has a checkpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_errors_and_malformed_hex_name_the_block() {
    let mut g = ChainGen::new(5, 3);
    let st = MockState {
        fault: Some(Fault::BadHex),
        ..MockState::with_blocks(g.blocks(4))
    };
    let node = MockNode::start(st).await;
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let e = index_rpc(&store, &node.url, None, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("block 0 (") && e.contains("bad hex"), "{e}");
    node.state.lock().unwrap().fault = Some(Fault::GetblockError);
    let e = index_rpc(&store, &node.url, None, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("getblock") && e.contains("block 0") && e.contains("injected"),
        "{e}"
    );
    // Nothing was written.
    let c = store.chain_by_name("btc").unwrap().unwrap().id;
    assert_eq!(store.checkpoint(c).unwrap(), None);
    node.state.lock().unwrap().fault = None;
    let s = index_rpc(&store, &node.url, None, None).await.unwrap();
    assert_eq!(s.checkpoint, Some(3));
}

/// The same `UtxoStore` (and so the same UTXO cache) through a reorg, and through an unwind
/// by another handle followed by a fork: the store ends as a fresh index of the fork.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorg_with_one_utxo_cache_matches_a_fresh_index() {
    let (a, b) = chain_with_fork();
    let fresh_node = MockNode::start(MockState::with_blocks(b.clone())).await;
    let d2 = tempfile::tempdir().unwrap();
    let fresh = Store::open(d2.path()).unwrap();
    index_rpc(&fresh, &fresh_node.url, None, None)
        .await
        .unwrap();
    let c = fresh.chain_by_name("btc").unwrap().unwrap().id;
    for unwind_elsewhere in [false, true] {
        let node = MockNode::start(MockState::with_blocks(a.clone())).await;
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(d.path()).unwrap();
        let chain = store.register_chain("btc", ChainKind::Bitcoin).unwrap();
        let sync = BtcSync::new(
            UtxoStore::open(&store).unwrap(),
            RpcSource::new(client(&node.url), 0),
            chain,
            "btc",
            SyncOptions {
                blocks_per_commit: 2,
                in_flight: 3,
                unit_retries: 0,
            },
            StopSignal::new(),
        );
        let s = sync.index(None, None, &|_| {}).await.unwrap();
        assert_eq!(s.checkpoint, Some(24));
        if unwind_elsewhere {
            UtxoStore::open(&store)
                .unwrap()
                .unwind(chain, BlockNumber(19))
                .unwrap();
        }
        node.set_blocks(b.clone());
        let s = sync.index(None, None, &|_| {}).await.unwrap();
        assert_eq!(s.checkpoint, Some(27));
        assert_eq!(s.reorgs, u64::from(!unwind_elsewhere));
        assert_eq!(s.stats.unresolved_inputs, 0);
        assert_eq!(transfers(&store, c), transfers(&fresh, c));
        assert_eq!(
            UtxoStore::open(&store).unwrap().utxo_set(c).unwrap(),
            UtxoStore::open(&fresh).unwrap().utxo_set(c).unwrap()
        );
        assert_eq!(store.counters(c).unwrap(), fresh.counters(c).unwrap());
    }
}

/// `follow` survives truncated answers that exhaust the request's retries (none here): it
/// logs, backs off and goes on to the tip instead of ending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_survives_truncated_answers() {
    let mut g = ChainGen::new(5, 3);
    let st = MockState {
        truncate_next: 4,
        ..MockState::with_blocks(g.blocks(6))
    };
    let node = MockNode::start(st).await;
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let chain = store.register_chain("btc", ChainKind::Bitcoin).unwrap();
    let stop = StopSignal::new();
    let sync = BtcSync::new(
        UtxoStore::open(&store).unwrap(),
        RpcSource::new(client(&node.url), 0),
        chain,
        "btc",
        SyncOptions {
            blocks_per_commit: 3,
            in_flight: 3,
            unit_retries: 0,
        },
        stop.clone(),
    );
    let watcher = {
        let store = store.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                if store.checkpoint(chain).unwrap().map(|b| b.number.0) == Some(5) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            stop.stop();
        })
    };
    let s = sync
        .follow(None, 0, Duration::from_millis(10), &|_| {})
        .await
        .unwrap();
    watcher.await.unwrap();
    assert_eq!(s.checkpoint, Some(5), "{s:?}");
    assert_eq!(
        node.state.lock().unwrap().truncate_next,
        0,
        "all truncations served"
    );
}
