//! Throughput of the whole clustering path on a store: generated UTXO transactions are written
//! with `Store::write_range`, then one `ClusterStore::run` reads them back, assigns and persists
//! address ids, unions, and commits evidence and the union-find.
//!
//! ```text
//! cargo run --release -p paytrace-tracer --example cluster_pipeline -- [TXS] [ADDRESSES] [DIR]
//! ```
//!
//! Defaults: 500 000 transactions of 2–4 inputs and 2 outputs over 1 000 000 addresses
//! (inputs uniform at random), 1 000 transactions per block. Results in docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // benchmark driver

use alloy_primitives::B256;
use paytrace_app::clusters::ClusterStore;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash, model::UTXO_OUTPUT_BASE,
};
use paytrace_tracer::cluster::{ClusterParams, Exchanges};
use std::time::Instant;

fn script(n: u64) -> Address {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    b[31] = 0x5c;
    Address::Script(b)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let txs: u64 = args.get(1).map_or(500_000, |s| s.parse().unwrap());
    let addrs: u64 = args.get(2).map_or(1_000_000, |s| s.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(3)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    let per_block = 1_000u64;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let store = Store::open(&dir).unwrap();
    let chain = store.register_chain("bench", ChainKind::Bitcoin).unwrap();
    let t = Instant::now();
    let (mut links, mut transfers) = (0u64, 0u64);
    let blocks = txs.div_ceil(per_block);
    for b in 1..=blocks {
        let mut ts = Vec::new();
        for i in 0..per_block.min(txs - (b - 1) * per_block) {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&b.to_be_bytes());
            h[8..16].copy_from_slice(&i.to_be_bytes());
            let node = Address::Tx(h);
            let k = 2 + rnd() % 3;
            links += k - 1;
            let mk = |position: u32, from, to, v: u64| Transfer {
                key: TransferKey {
                    chain,
                    block: BlockNumber(b),
                    tx_index: i as u32,
                    kind: TransferKind::Utxo,
                    position,
                },
                time: Timestamp(b * 600),
                tx_hash: TxHash(B256::from(h)),
                from,
                to,
                asset: Asset::Native,
                amount: Amount::from_u64(v),
                trace_address: Vec::new(),
            };
            for j in 0..k {
                ts.push(mk(
                    j as u32,
                    script(rnd() % addrs),
                    node,
                    10_000 + rnd() % 1_000_000,
                ));
            }
            ts.push(mk(
                UTXO_OUTPUT_BASE,
                node,
                script(rnd() % addrs),
                5_000 + rnd() % 900_000,
            ));
            ts.push(mk(
                UTXO_OUTPUT_BASE + 1,
                node,
                script(rnd() % addrs),
                1_000 + rnd() % 90_000,
            ));
        }
        transfers += ts.len() as u64;
        let r = BlockRef {
            number: BlockNumber(b),
            hash: B256::left_padding_from(&b.to_be_bytes()),
            parent: B256::left_padding_from(&(b - 1).to_be_bytes()),
            time: Timestamp(b * 600),
        };
        store.write_range(chain, &[r], &ts).unwrap();
    }
    store.persist().unwrap();
    let write = t.elapsed();

    let cs = ClusterStore::open(&store).unwrap();
    let t = Instant::now();
    let c = cpu();
    let r = cs
        .run(
            &store,
            "bench",
            &ClusterParams::default(),
            &Exchanges::new(),
        )
        .unwrap();
    let run = t.elapsed().as_secs_f64();
    let run_cpu = cpu() - c;
    println!("transactions        {txs} in {blocks} blocks");
    println!(
        "transfers           {transfers} (written in {:.1} s)",
        write.as_secs_f64()
    );
    println!("input links         {links}");
    println!("addresses with ids  {}", cs.len().unwrap());
    println!("merges (joined)     {}", r.stats.merges);
    println!("coinjoins flagged   {}", r.stats.coinjoins);
    println!(
        "cluster run         {run:.1} s = {:.0} k transfers/s, {:.0} k links/s, {:.0} k merges/s",
        transfers as f64 / run / 1e3,
        links as f64 / run / 1e3,
        r.stats.merges as f64 / run / 1e3
    );
    println!(
        "cluster run, CPU    {run_cpu:.1} s = {:.0} k transfers/s, {:.0} k links/s, {:.0} k merges/s",
        transfers as f64 / run_cpu / 1e3,
        links as f64 / run_cpu / 1e3,
        r.stats.merges as f64 / run_cpu / 1e3
    );
}

/// On-CPU time of the main thread in seconds (`/proc/self/schedstat`), 0 where unavailable.
fn cpu() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}
