//! `paytrace serve --follow CHAIN` against a live anvil chain: the follower indexes inside the
//! server while clients query it concurrently; every answer is consistent with one committed
//! block (no half-applied block is ever visible), `/readyz` and `/metrics` report the
//! follower, and SIGTERM stops it cleanly. Needs anvil (`scripts/install-anvil`).

mod common;

use alloy_primitives::U256;
use common::{
    CHAIN, paytrace, run_ok,
    serve::{Server, create_key},
    standard_chain,
};
use paytrace_indexer::{ChainId, Transfer};
use reqwest::Client;
use serde_json::Value;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// Whether `n` transfers are exactly the transfers of blocks up to some block boundary of
/// `expected` (sorted by key), or of the generated chain and some of the (one-transfer)
/// blocks the test adds after it.
fn at_block_boundary(expected: &[Transfer], n: usize) -> bool {
    n == 0
        || (expected.len()..=expected.len() + ADDED).contains(&n)
        || (n < expected.len() && expected[n].key.block > expected[n - 1].key.block)
}

/// Blocks of one native transfer each that the test adds once the follower is at the head.
const ADDED: usize = 3;

async fn get(c: &Client, url: &str, key: &str) -> Value {
    let r = c.get(url).bearer_auth(key).send().await.expect("request");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_stay_consistent_while_the_server_follows_a_chain() {
    let (anvil, mut g) = standard_chain().await;
    let head = g.head().await.unwrap();
    let expected = g.expected(ChainId(1));
    let receiver = g.accounts()[2];
    let incoming: Vec<Transfer> = expected
        .iter()
        .filter(|t| t.to == paytrace_indexer::Address::Evm(receiver.0.0))
        .cloned()
        .collect();
    assert!(!incoming.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("paytrace.toml");
    std::fs::write(
        &config,
        format!(
            "[chains.{CHAIN}]\nkind = \"evm\"\nrpc_url = \"{}\"\nconfirmations = 0\npoll_interval_ms = 200\n",
            anvil.url()
        ),
    )
    .unwrap();
    let key = create_key(&data, "analyst");
    let srv = Server::start(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "--follow",
            CHAIN,
            "--rate-per-second",
            "1000000",
        ],
    );
    let c = Client::new();
    let stats_url = srv.url("/v1/stats");
    let addr_url = srv.url(&format!("/v1/address/{receiver}"));

    // Eight clients query while the follower indexes; each answer must be a block boundary.
    let done = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..8 {
        let (c, key, done, answers) = (c.clone(), key.clone(), done.clone(), answers.clone());
        let (stats_url, addr_url) = (stats_url.clone(), addr_url.clone());
        let (expected, incoming) = (expected.clone(), incoming.clone());
        clients.push(tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                if i % 2 == 0 {
                    let s = get(&c, &stats_url, &key).await;
                    if let Some(ch) = s["chains"].as_array().and_then(|a| a.first()) {
                        let n = usize::try_from(ch["transfers"].as_u64().unwrap()).unwrap();
                        assert!(
                            at_block_boundary(&expected, n),
                            "stats show {n} transfers: not a block boundary"
                        );
                        // Registered, nothing committed yet: nothing counted either.
                        let Some(last) = ch["last_block"].as_u64() else {
                            assert_eq!(n, 0, "transfers counted before any checkpoint");
                            answers.fetch_add(1, Ordering::SeqCst);
                            continue;
                        };
                        assert!(
                            expected.iter().take(n).all(|t| t.key.block.0 <= last),
                            "stats count transfers above the checkpoint {last}"
                        );
                    }
                } else {
                    let a = get(&c, &addr_url, &key).await;
                    let got = a["incoming"].as_array().unwrap();
                    assert!(
                        at_block_boundary(&incoming, got.len()),
                        "address shows {} incoming transfers: not a block boundary",
                        got.len()
                    );
                    for (t, e) in got.iter().zip(&incoming) {
                        assert_eq!(t["block"].as_u64().unwrap(), e.key.block.0);
                        assert_eq!(t["amount"].as_str().unwrap(), e.amount.to_string());
                    }
                }
                answers.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }

    // Until the follower reaches the head.
    let start = Instant::now();
    loop {
        let s = get(&c, &stats_url, &key).await;
        if s["chains"][0]["last_block"].as_u64() >= Some(head) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the follower did not reach {head}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // New blocks while it follows.
    let a = g.accounts().to_vec();
    for i in 0..u64::try_from(ADDED).unwrap() {
        let spec = g.native(a[1], a[2], U256::from(1_000 + i));
        g.send(spec).await.unwrap();
        g.mine().await.unwrap();
    }
    let new_head = g.head().await.unwrap();
    loop {
        let s = get(&c, &stats_url, &key).await;
        if s["chains"][0]["last_block"].as_u64() >= Some(new_head) {
            assert_eq!(
                s["chains"][0]["transfers"].as_u64().unwrap(),
                u64::try_from(expected.len() + ADDED).unwrap(),
                "{s}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(240), "{s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done.store(true, Ordering::SeqCst);
    for t in clients {
        t.await.expect("a client's answer was inconsistent");
    }
    eprintln!(
        "{} concurrent answers checked",
        answers.load(Ordering::SeqCst)
    );
    assert!(answers.load(Ordering::SeqCst) > 8);

    // Ready (the follower is at the head), and the metrics say so.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.get(srv.url("/readyz")).send().await.unwrap();
        let ok = r.status().is_success();
        let body: Value = r.json().await.unwrap();
        if ok {
            assert_eq!(body["followers"][0]["chain"], CHAIN);
            break;
        }
        assert!(Instant::now() < deadline, "not ready: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = c
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains(&format!(
            "paytrace_indexed_height{{chain=\"{CHAIN}\"}} {new_head}"
        )),
        "{m}"
    );
    assert!(m.contains("paytrace_commits{chain=\"dev\"}"), "{m}");
    assert!(m.contains("paytrace_http_requests_total{"), "{m}");
    assert!(m.contains("route=\"/v1/stats\""), "{m}");

    // SIGTERM: the follower and the server stop cleanly; the store is complete.
    let mut running = srv.running;
    let status = running.signal_and_wait("-TERM", Duration::from_secs(60));
    assert!(status.success(), "{status}: {}", running.lines().join("\n"));
    drop(running);
    let s = common::run_json(paytrace(&data).args(["stats", "--json"]));
    assert_eq!(s["chains"][0]["last_block"].as_u64(), Some(new_head));
    run_ok(paytrace(&data).args(["store", "check"]));
}
