//! Benchmark: 3-hop haircut forward traces on a generated store.
//!
//! Generates (once, then reuses) a fjall store with `PAYTRACE_BENCH_ADDRESSES` addresses
//! (default 1 000 000) and `PAYTRACE_BENCH_TRANSFERS` transfers (default 10 000 000), with
//! power-law skewed degrees; the 100 busiest addresses are hubs labelled `exchange`, where traces
//! stop. Then traces 100 random payout-like transfers (non-hub to non-hub) and prints p50/p99
//! latency on the warm store and the peak RSS. Store directory: `PAYTRACE_BENCH_DIR` (default
//! `$TMPDIR/paytrace-bench-A-T`). `PAYTRACE_BENCH_CSV=path` also writes the transfers and seeds
//! as CSV for the DuckDB comparison (`tracer/benches/duckdb_compare.py`).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

/// The allocator of the `paytrace` binary (src/main.rs), so the figures are those of the
/// commands (glibc's malloc cost the screening about a tenth of its CPU time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::{
    HUBS, PER_BLOCK, Rng, address, bench_source, block_cache, cpu_secs, env, index_of, labels_hub,
    loadavg, open_or_generate_cached, peak_rss_mib, thread_cpu_ns,
};
use criterion::Criterion;
use paytrace_indexer::{BlockNumber, Transfer};
use paytrace_tracer::{MemoryLabels, Model, Seed, TraceParams, trace_forward};
use std::{
    io::Write,
    time::{Duration, Instant},
};

/// The `p`-th percentile (p in 0..=100), nearest rank.
fn pct(sorted: &[Duration], p: usize) -> Duration {
    let i = (sorted.len().saturating_sub(1) * p).div_ceil(100);
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut csv_file = std::env::var("PAYTRACE_BENCH_CSV")
        .ok()
        .map(|p| std::fs::File::create(p).unwrap());
    // Opened like the query commands open it (`paytrace trace`: a 256 MiB block cache);
    // `PAYTRACE_BENCH_CACHE_MB` overrides the size (`0`: the storage engine's default, 32 MiB).
    let (store, chain, n_addr, n_tr) = open_or_generate_cached(csv_file.as_mut(), block_cache());
    let mut labels = MemoryLabels::new();
    for i in 0..HUBS {
        labels.insert(address(i), "exchange");
    }
    // 100 payout-like seeds: random transfers between non-hub addresses.
    let mut rng = Rng(7);
    let blocks = n_tr / PER_BLOCK;
    let mut seeds = Vec::new();
    while seeds.len() < 100 {
        let b = 1 + rng.next() % blocks;
        for t in store.range_transfers(chain, BlockNumber(b), BlockNumber(b)) {
            let t = t.unwrap();
            if labels_hub(&t.from) || labels_hub(&t.to) {
                continue;
            }
            seeds.push(t);
            break;
        }
    }
    if let Ok(p) = std::env::var("PAYTRACE_BENCH_SEEDS_CSV") {
        let mut w = std::fs::File::create(p).unwrap();
        writeln!(w, "dst,block,tx").unwrap();
        for s in &seeds {
            writeln!(
                w,
                "{},{},{}",
                index_of(&s.to),
                s.key.block.0,
                s.key.tx_index
            )
            .unwrap();
        }
    }
    let params = TraceParams {
        model: Model::Haircut,
        max_hops: 3,
        ..TraceParams::default()
    };
    let src = bench_source(store.clone(), chain);
    let run = |t: &Transfer| {
        trace_forward(&src, &labels, &Seed::Transfers(vec![t.key]), &params).unwrap()
    };
    // Warm-up pass (the benchmark is on a warm store).
    for s in &seeds {
        run(s);
    }
    let mut times = Vec::new();
    let mut expanded = 0usize;
    let mut read = 0usize;
    let mut dests = 0usize;
    let (mut used, mut skipped) = (0usize, 0usize);
    let mut slow = Vec::new();
    let c0 = cpu_secs().unwrap_or(0.0);
    let l0 = loadavg();
    for s in &seeds {
        let t0 = Instant::now();
        let r = run(s);
        times.push(t0.elapsed());
        slow.push((t0.elapsed(), r.stats));
        expanded += r.stats.expanded_addresses;
        read += r.stats.transfers_read;
        dests += r.destinations.len();
        used += r.stats.checkpoints_used;
        skipped += r.stats.replay_skipped;
    }
    let cpu = cpu_secs().unwrap_or(0.0) - c0;
    times.sort();
    let mean = times.iter().sum::<Duration>() / u32::try_from(times.len()).unwrap();
    println!("store: {n_addr} addresses, {n_tr} transfers, {HUBS} hubs labelled exchange");
    println!(
        "3-hop haircut forward trace, {} seeds: p50 {:.3?}  p90 {:.3?}  p99 {:.3?}  max {:.3?}  mean {:.3?}",
        times.len(),
        pct(&times, 50),
        pct(&times, 90),
        pct(&times, 99),
        times[times.len() - 1],
        mean
    );
    println!(
        "per trace (mean): {} addresses followed, {} transfers read, {} destinations",
        expanded / seeds.len(),
        read / seeds.len(),
        dests / seeds.len()
    );
    println!(
        "per trace (mean): {:.2} ms CPU, {} checkpoints used, {} replayed entries skipped; load {l0} -> {}",
        cpu * 1000.0 / seeds.len() as f64,
        used / seeds.len(),
        skipped / seeds.len(),
        loadavg()
    );
    slow.sort_by_key(|x| std::cmp::Reverse(x.0));
    for (d, st) in slow.iter().take(3) {
        println!("slowest: {d:.3?} {st:?}");
    }
    println!("peak RSS: {} MiB", peak_rss_mib().unwrap_or(0));

    if std::env::var("PAYTRACE_BENCH_AB").is_ok() {
        // A/B in one process, interleaved per seed (the machine's load drifts): thread CPU
        // time and wall time of every trace with the checkpoints hidden and shown.
        let rounds = env("PAYTRACE_BENCH_AB", 5);
        let (mut cpu, mut wall) = ([0u64; 2], [Vec::new(), Vec::new()]);
        let mut read = [0usize; 2];
        for round in 0..rounds {
            for s in &seeds {
                for k in 0..2usize {
                    let plain = (k + usize::try_from(round).unwrap()) % 2 == 0;
                    src.set_plain(plain);
                    let (c0, t0) = (thread_cpu_ns(), Instant::now());
                    let r = run(s);
                    let i = usize::from(!plain);
                    wall[i].push(t0.elapsed());
                    cpu[i] += thread_cpu_ns() - c0;
                    read[i] += r.stats.transfers_read;
                }
            }
        }
        for (i, name) in ["checkpoints hidden", "checkpoints used"]
            .iter()
            .enumerate()
        {
            wall[i].sort();
            let n = wall[i].len();
            println!(
                "A/B {name}: {n} traces, CPU {:.3} ms/trace, p50 {:.3?} p90 {:.3?} p99 {:.3?}, {} transfers read/trace",
                cpu[i] as f64 / n as f64 / 1e6,
                pct(&wall[i], 50),
                pct(&wall[i], 90),
                pct(&wall[i], 99),
                read[i] / n
            );
        }
        return;
    }

    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut i = 0usize;
    c.bench_function("haircut_3hop_forward", |b| {
        b.iter(|| {
            i = (i + 1) % seeds.len();
            run(&seeds[i])
        })
    });
    c.final_summary();
}
