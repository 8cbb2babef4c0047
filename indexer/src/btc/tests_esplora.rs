//! The Esplora crawl against a mock Esplora server (no Esplora/electrs can run on the test
//! machines). The JSON the mock serves is written from real block data: the transactions of
//! mainnet blocks 1–255 (`blocks1-256.dat`) in Esplora's `/tx` layout, with prevouts, listed
//! per address newest first and paginated with `/txs/chain/:last_seen_txid`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests only

use super::{
    UtxoStore,
    blk::BlkIndex,
    decode::parse_block,
    esplora::{EsploraCrawl, EsploraSource},
    mock::{MockNode, MockState},
    script::{classify, display},
};
use crate::{Amount, ChainKind, Direction, Store, sync::StopSignal};
use bitcoin::{Block, Transaction};
use serde_json::{Value, json};
use std::{collections::HashMap, time::Duration};

const BLOCKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/btc/blocks1-256.dat"
);

fn address_of(script: &bitcoin::Script) -> Option<String> {
    let c = classify(script);
    c.canonical
        .map(|s| display(s.as_bytes()))
        .filter(|t| !t.starts_with("script:"))
}

/// Esplora's mock answers for the real blocks: `/tx/:id`, `/block/:hash/txids`,
/// `/address/:a/txs` (first page) and `/address/:a/txs/chain/:last` (next pages) of `page`.
fn esplora_answers(blocks: &[(u64, Block)], page: usize) -> HashMap<String, String> {
    let mut outs: HashMap<(bitcoin::Txid, u32), bitcoin::TxOut> = HashMap::new();
    let mut rest = HashMap::new();
    let mut by_addr: HashMap<String, Vec<(u64, usize, Value)>> = HashMap::new();
    for (h, b) in blocks {
        let hash = b.block_hash().to_string();
        let ids: Vec<String> = b
            .txdata
            .iter()
            .map(|t| t.compute_txid().to_string())
            .collect();
        rest.insert(format!("/block/{hash}/txids"), json!(ids).to_string());
        for (i, t) in b.txdata.iter().enumerate() {
            let j = tx_json(t, &outs, *h, &hash, b.header.time);
            let mut addrs: Vec<String> = Vec::new();
            for v in j["vin"].as_array().unwrap() {
                if let Some(a) = v["prevout"]["scriptpubkey_address"].as_str() {
                    addrs.push(a.to_owned());
                }
            }
            for v in j["vout"].as_array().unwrap() {
                if let Some(a) = v["scriptpubkey_address"].as_str() {
                    addrs.push(a.to_owned());
                }
            }
            addrs.sort();
            addrs.dedup();
            for a in addrs {
                by_addr.entry(a).or_default().push((*h, i, j.clone()));
            }
            rest.insert(format!("/tx/{}", ids[i]), j.to_string());
            for (v, o) in t.output.iter().enumerate() {
                outs.insert((t.compute_txid(), u32::try_from(v).unwrap()), o.clone());
            }
        }
    }
    for (a, mut txs) in by_addr {
        txs.sort_by_key(|t| std::cmp::Reverse((t.0, t.1))); // newest first
        let list: Vec<Value> = txs.into_iter().map(|t| t.2).collect();
        let mut chunks = list.chunks(page);
        let first = chunks.next().unwrap_or(&[]);
        rest.insert(format!("/address/{a}/txs"), json!(first).to_string());
        let mut last = first.last().map(|t| t["txid"].as_str().unwrap().to_owned());
        for c in chunks {
            rest.insert(
                format!("/address/{a}/txs/chain/{}", last.clone().unwrap()),
                json!(c).to_string(),
            );
            last = c.last().map(|t| t["txid"].as_str().unwrap().to_owned());
        }
        if let Some(l) = last {
            rest.insert(format!("/address/{a}/txs/chain/{l}"), "[]".into());
        }
    }
    rest
}

fn tx_json(
    t: &Transaction,
    outs: &HashMap<(bitcoin::Txid, u32), bitcoin::TxOut>,
    height: u64,
    hash: &str,
    time: u32,
) -> Value {
    let out_json = |o: &bitcoin::TxOut| {
        let mut v = json!({
            "scriptpubkey": o.script_pubkey.to_hex_string(),
            "value": o.value.to_sat(),
        });
        if let Some(a) = address_of(&o.script_pubkey) {
            v["scriptpubkey_address"] = json!(a);
        }
        v
    };
    let vin: Vec<Value> = t
        .input
        .iter()
        .map(|i| {
            let coinbase = t.is_coinbase();
            json!({
                "txid": i.previous_output.txid.to_string(),
                "vout": i.previous_output.vout,
                "prevout": if coinbase { Value::Null } else {
                    out_json(&outs[&(i.previous_output.txid, i.previous_output.vout)])
                },
                "is_coinbase": coinbase,
            })
        })
        .collect();
    json!({
        "txid": t.compute_txid().to_string(),
        "vin": vin,
        "vout": t.output.iter().map(out_json).collect::<Vec<_>>(),
        "status": {"confirmed": true, "block_height": height, "block_hash": hash, "block_time": time},
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_from_a_seed_follows_payments_with_pagination() {
    let idx = BlkIndex::scan(vec![BLOCKS.into()], None).unwrap();
    let chain = idx.best_chain(None, None).unwrap();
    let blocks: Vec<(u64, Block)> = (1..=255)
        .map(|h| {
            let e = chain.at(h).unwrap();
            (
                h,
                parse_block(&idx.read(e.loc).unwrap(), &|| String::new()).unwrap(),
            )
        })
        .collect();
    let st = MockState {
        rest: esplora_answers(&blocks, 2),
        ..MockState::default()
    };
    let node = MockNode::start(st).await;
    let d = tempfile::tempdir().unwrap();
    let store = Store::open(d.path()).unwrap();
    let c = store
        .register_chain("btc-esplora", ChainKind::Bitcoin)
        .unwrap();
    let utxo = UtxoStore::open(&store).unwrap();
    let src = EsploraSource::new(node.url.trim_end_matches('/'), 0, Duration::from_secs(10))
        .unwrap()
        .with_page_size(2);
    let report = EsploraCrawl::new(utxo.clone(), c, src)
        .crawl(
            &["12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S".to_owned()],
            1,
            1000,
            &StopSignal::new(),
        )
        .await
        .unwrap();
    // 12cbQ...: the block-9 coinbase and the 5 payments it made (170, 181, 182, 183, 248);
    // one hop out, the payees' own spends (187 and 221) and their coinbases, if any.
    let gets = node.state.lock().unwrap().gets.clone();
    assert!(
        gets.iter()
            .any(|g| g.starts_with("/address/12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S/txs/chain/")),
        "{gets:?}"
    );
    assert_eq!(report.txs, 8, "{report:?}");
    let payee = crate::labels::LabelAddress::parse("1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", None)
        .unwrap()
        .indexed()
        .unwrap();
    let inc: Vec<_> = store
        .address_transfers(&payee, Direction::Incoming, Some(c))
        .map(Result::unwrap)
        .collect();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].amount, Amount::from_u64(1_000_000_000));
    assert_eq!(inc[0].key.block.0, 170);
    assert_eq!(inc[0].key.tx_index, 1);
    let crate::Address::Tx(txid) = inc[0].from else {
        panic!("from a tx node")
    };
    let meta = utxo.tx_meta(c, &txid).unwrap().unwrap();
    assert_eq!((meta.fee, meta.input_value), (Some(0), 5_000_000_000));
    // Second hop: 13HtsYzn... moved its 1 BTC to 15NUwyBY... in block 187.
    let far = crate::labels::LabelAddress::parse("15NUwyBYrZcnUgTagsm1A7M2yL2GntpuaZ", None)
        .unwrap()
        .indexed()
        .unwrap();
    let inc: Vec<_> = store
        .address_transfers(&far, Direction::Incoming, Some(c))
        .map(Result::unwrap)
        .collect();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].key.block.0, 187);
    // Crawling again writes nothing new.
    let src = EsploraSource::new(&node.url, 0, Duration::from_secs(10))
        .unwrap()
        .with_page_size(2);
    let again = EsploraCrawl::new(utxo, c, src)
        .crawl(
            &["12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S".to_owned()],
            1,
            1000,
            &StopSignal::new(),
        )
        .await
        .unwrap();
    assert_eq!(again.transfers, 0);
}

/// A server that accepts connections and never answers: with a 30 s per-request timeout and
/// retries left, the request still fails after the 1 s deadline, naming the request (before,
/// it waited for the timeout of every attempt).
#[tokio::test]
async fn a_hung_server_fails_within_the_deadline() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            open.push(sock);
        }
    });
    let src = EsploraSource::new(&url, 5, Duration::from_secs(30))
        .unwrap()
        .with_deadline(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let e = src
        .address_txs("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", 10)
        .await
        .unwrap_err();
    let took = started.elapsed();
    hold.abort();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("deadline of 1s")
            && msg.contains("/address/12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S/txs"),
        "{msg}"
    );
    assert!(!e.is_retryable());
}
