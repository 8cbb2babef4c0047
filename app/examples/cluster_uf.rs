//! Union-find throughput benchmark: generated multi-input links over dense address ids, then
//! the structure persisted into a store's cluster keyspaces and loaded back.
//!
//! ```text
//! cargo run --release -p paytrace-tracer --example cluster_uf -- [LINKS] [IDS] [uniform|recent] [DIR]
//! ```
//!
//! Defaults: 100 000 000 links over 50 000 000 ids, `uniform`, store in a temporary
//! directory. Links are generated like the inputs of transactions with 2–4 inputs (each input
//! linked to the transaction's first input). `uniform`: input ids uniform at random (the worst
//! case for locality). `recent`: ids are numbered in order of first appearance, as the engine
//! assigns them, and inputs are drawn from the last 1 000 000 ids before a frontier that moves
//! through the id space (coins are mostly spent some time after they were received).
//!
//! Wall time and CPU time (the thread's on-CPU time from `/proc/self/schedstat`) are both
//! printed: on a shared machine the wall time mostly measures the other processes.
//! Results go to docs/benchmarks.md ("Clustering").
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // benchmark driver

use paytrace_app::clusters::ClusterStore;
use paytrace_indexer::Store;
use paytrace_tracer::cluster::UnionFind;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let links: u64 = args.get(1).map_or(100_000_000, |s| s.parse().unwrap());
    let ids: u32 = args.get(2).map_or(50_000_000, |s| s.parse().unwrap());
    let recent = args.get(3).is_some_and(|m| m == "recent");
    let tmp = tempfile::tempdir().unwrap();
    let dir = args
        .get(4)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);

    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };

    let t = Instant::now();
    let mut uf = UnionFind::with_len(ids);
    let alloc = t.elapsed();

    let n = u64::from(ids);
    let window = n.min(1_000_000);
    let mut frontier = 0u64;
    let mut pick = |r: u64| {
        if recent {
            // advance the frontier by one id per draw on average
            frontier = (frontier + 1) % n;
            ((frontier + n - r % window) % n) as u32
        } else {
            (r % n) as u32
        }
    };
    let t = Instant::now();
    let c = cpu();
    let (mut done, mut merges, mut txs) = (0u64, 0u64, 0u64);
    while done < links {
        let k = 1 + rnd() % 3; // 2..=4 inputs: 1..=3 links
        let first = pick(rnd());
        for _ in 0..k.min(links - done) {
            let other = pick(rnd());
            if uf.union(first, other).is_some() {
                merges += 1;
            }
            done += 1;
        }
        txs += 1;
    }
    let union_time = t.elapsed();
    let union_cpu = cpu() - c;
    let biggest = {
        let r = uf.find(0);
        uf.set_size(r)
    };

    let t = Instant::now();
    let c = cpu();
    let store = Store::open(&dir).unwrap();
    let cs = ClusterStore::open(&store).unwrap();
    cs.save_uf(&mut uf, 256).unwrap();
    let save_time = t.elapsed();
    let save_cpu = cpu() - c;

    let t = Instant::now();
    let loaded = cs.load_uf().unwrap();
    let load_time = t.elapsed();
    assert_eq!(loaded.len(), uf.len());
    for i in (0..ids).step_by(9_973) {
        assert_eq!(loaded.find_const(i), uf.find_const(i));
    }

    let secs = union_time.as_secs_f64();
    println!(
        "id model            {}",
        if recent { "recent" } else { "uniform" }
    );
    println!("ids                 {ids}");
    println!("transactions        {txs}");
    println!("links (unions)      {done}");
    println!("merges (joined)     {merges}");
    println!("cluster of id 0     {biggest} ids");
    println!("allocate            {:.2} s", alloc.as_secs_f64());
    println!(
        "unions              {secs:.2} s = {:.1} M links/s, {:.1} M merges/s",
        done as f64 / secs / 1e6,
        merges as f64 / secs / 1e6
    );
    println!(
        "unions, CPU time    {union_cpu:.2} s = {:.1} M links/s, {:.1} M merges/s",
        done as f64 / union_cpu / 1e6,
        merges as f64 / union_cpu / 1e6
    );
    println!(
        "persist (compress + write {} chunks, sync) {:.2} s wall, {save_cpu:.2} s CPU",
        uf.len().div_ceil(4096),
        save_time.as_secs_f64()
    );
    println!("load back           {:.2} s", load_time.as_secs_f64());
    println!(
        "end to end (unions + persist) {:.2} s wall = {:.1} M links/s; CPU {:.2} s = {:.1} M links/s",
        secs + save_time.as_secs_f64(),
        done as f64 / (secs + save_time.as_secs_f64()) / 1e6,
        union_cpu + save_cpu,
        done as f64 / (union_cpu + save_cpu) / 1e6
    );
}

/// On-CPU time of the main thread in seconds (`/proc/self/schedstat`, nanoseconds), 0 where
/// unavailable.
fn cpu() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}
