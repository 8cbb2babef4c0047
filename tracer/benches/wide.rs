//! Benchmark: wide address traces on an existing store, in process, as `paytrace trace ADDRESS
//! --format json` runs them (the store opened for reading with the query block cache, the
//! hubs labelled `exchange` as `--stop ADDR=exchange` labels them, compact JSON written to a
//! file). It never writes to the store, so it can run on a shared bench store.
//!
//! ```sh
//! PAYTRACE_BENCH_DIR=/work/bench10m/store PAYTRACE_WIDE_SEEDS=300000:2,10000:2 \
//!   PAYTRACE_WIDE_MODELS=poison,haircut PAYTRACE_WIDE_RUNS=5 \
//!   cargo bench -p paytrace-tracer --bench wide
//! ```
//!
//! Seeds are `INDEX:HOPS` (address index of the bench generator, `--hops`); every seed is
//! traced once to warm the caches, then `PAYTRACE_WIDE_RUNS` times. Printed per seed and
//! model: the median and the minimum of the trace's wall time, of the JSON's, and of the
//! process CPU time per run (user + system, all threads), with the load average.
//! Transparent huge pages are off as in the binary's read commands (`PAYTRACE_WIDE_THP=1`:
//! on). `PAYTRACE_WIDE_OUT` (default
//! `/dev/null`) receives the JSON of the last run.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

/// The allocator of the `paytrace` binary (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::{HUBS, address, cpu_secs, loadavg, peak_rss_mib};
use paytrace_indexer::{OpenMode, Store};
use paytrace_tracer::{MemoryLabels, Model, Seed, StoreLabels, TraceParams, trace_forward};
use std::{io::Write, time::Instant};

/// `median / min` of `v`.
fn median_min(v: &mut [f64]) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.1} / {:.1}", v[v.len() / 2], v[0])
}

fn main() {
    let dir = std::env::var("PAYTRACE_BENCH_DIR").expect("PAYTRACE_BENCH_DIR: the store");
    let seeds = std::env::var("PAYTRACE_WIDE_SEEDS").unwrap_or_else(|_| "300000:2".into());
    let models = std::env::var("PAYTRACE_WIDE_MODELS").unwrap_or_else(|_| "poison".into());
    let runs: usize = std::env::var("PAYTRACE_WIDE_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let out_path = std::env::var("PAYTRACE_WIDE_OUT").unwrap_or_else(|_| "/dev/null".into());
    // As the binary does for its read commands (src/main.rs): no transparent huge pages.
    if std::env::var("PAYTRACE_WIDE_THP").is_err() {
        rustix::thread::disable_transparent_huge_pages(true).unwrap();
    }
    let t0 = Instant::now();
    let store = Store::open_with(
        &dir,
        OpenMode::Read,
        Some(paytrace_indexer::QUERY_CACHE_BYTES),
    )
    .unwrap();
    let mut stops = MemoryLabels::new();
    for i in 0..HUBS {
        stops.insert(address(i), "exchange");
    }
    stops.set_version("cli");
    let labels = StoreLabels::open(&store, None, stops).unwrap();
    println!(
        "store opened in {:.1} ms; load average {}",
        t0.elapsed().as_secs_f64() * 1e3,
        loadavg()
    );
    for spec in seeds.split(',') {
        let (i, hops) = spec.split_once(':').unwrap_or((spec, "2"));
        let (i, hops): (u64, u32) = (i.parse().unwrap(), hops.parse().unwrap());
        for m in models.split(',') {
            let model: Model = m.parse().unwrap();
            let params = TraceParams {
                model,
                max_hops: hops,
                // `paytrace trace`'s defaults (5 hops, 10,000 followed addresses).
                ..TraceParams::default()
            };
            let seed = Seed::Outflows(address(i));
            let mut trace_ms = Vec::new();
            let mut json_ms = Vec::new();
            let mut cpu_ms = Vec::new();
            let mut last = None;
            for run in 0..=runs {
                let c0 = cpu_secs().unwrap_or(0.0);
                let t = Instant::now();
                let r = trace_forward(&store, &labels, &seed, &params).unwrap();
                let traced = t.elapsed();
                let mut out = std::io::BufWriter::with_capacity(
                    1 << 16,
                    std::fs::File::create(&out_path).unwrap(),
                );
                serde_json::to_writer(&mut out, &r).unwrap();
                out.write_all(b"\n").unwrap();
                out.flush().unwrap();
                let total = t.elapsed();
                let c1 = cpu_secs().unwrap_or(0.0);
                if run > 0 {
                    trace_ms.push(traced.as_secs_f64() * 1e3);
                    json_ms.push((total - traced).as_secs_f64() * 1e3);
                    cpu_ms.push((c1 - c0) * 1e3);
                }
                last = Some(r);
            }
            let r = last.unwrap();
            println!(
                "seed {i} hops {hops} {m}: {} destinations, {} followed, {} transfers read, \
                 {} edges; trace {} ms + JSON {} ms, CPU {} ms per run (median / min of \
                 {runs}); load average {}",
                r.destinations.len(),
                r.stats.expanded_addresses,
                r.stats.transfers_read,
                r.edges.len(),
                median_min(&mut trace_ms),
                median_min(&mut json_ms),
                median_min(&mut cpu_ms),
                loadavg()
            );
        }
    }
    println!("peak RSS {} MiB", peak_rss_mib().unwrap_or(0));
}
