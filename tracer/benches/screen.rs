//! Benchmark: risk screening of many addresses on the generated store (`benches/common`).
//!
//! Opens (or generates) the store of the `trace` bench (`PAYTRACE_BENCH_ADDRESSES`, default
//! 1 000 000; `PAYTRACE_BENCH_TRANSFERS`, default 10 000 000; `PAYTRACE_BENCH_DIR`). The 100
//! hubs are labelled `exchange` (a service: tracing stops there); 1 in 1 000 other addresses is
//! `sanctioned`, 1 in 1 000 `mixer`. Screens `PAYTRACE_BENCH_SCREEN` (default 10 000) random
//! non-hub addresses with 3-hop indirect exposure (forward from every outflow, backward from
//! the 2 largest inflows), patterns off: without a history cache (1 000 addresses, one
//! thread), with a history cache of `PAYTRACE_BENCH_CACHE` transfers (default 2 000 000) on one
//! thread (skipped with `PAYTRACE_BENCH_SKIP_SERIAL=1`), and as `screen --file` does it: on
//! `PAYTRACE_BENCH_THREADS` threads (default 0: one per core) sharing one fresh cache; then
//! 1 000 with patterns on. Prints wall and CPU time, addresses/s, the load average, the level
//! distribution and the peak RSS. The store is opened with the query commands' block cache
//! (`PAYTRACE_BENCH_CACHE_MB` overrides it; 0: fjall's default 32 MiB);
//! `PAYTRACE_BENCH_QUICK=1` runs only the warm-up and the parallel cached run.
#![allow(clippy::unwrap_used, missing_docs)]

use paytrace_tracer::{
    FlowSource,
    par::effective_threads,
    risk::{CachedSource, MemoryLabelHistory, RiskLevel, ScreenParams, screen_each},
};
use std::{collections::BTreeMap, time::Instant};

mod common;

/// The allocator of the `paytrace` binary (src/main.rs), so the figures are those of the
/// commands (glibc's malloc cost the screening about a tenth of its CPU time).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::*;

fn run<S: FlowSource + Sync>(
    store: &S,
    labels: &MemoryLabelHistory,
    addrs: &[paytrace_indexer::Address],
    p: &ScreenParams,
    threads: usize,
    what: &str,
) {
    let t0 = Instant::now();
    let c0 = cpu_secs().unwrap_or(0.0);
    let l0 = loadavg();
    let mut levels: BTreeMap<RiskLevel, usize> = BTreeMap::new();
    let (mut traces, mut expanded, mut read) = (0usize, 0usize, 0usize);
    screen_each(store, labels, addrs, p, threads, |_, r| {
        let r = r.unwrap();
        *levels.entry(r.level).or_default() += 1;
        traces += r.stats.traces;
        expanded += r.stats.expanded_addresses;
        read += r.stats.transfers_read + r.stats.own_transfers;
        true
    });
    let secs = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs().unwrap_or(0.0) - c0;
    println!(
        "{what}, {} thread(s): {} addresses in {secs:.1} s wall, {cpu:.1} s CPU = {:.0} addresses/s wall, {:.0} addresses per CPU second; per address: {:.1} traces, {:.0} addresses expanded, {:.0} transfers read; levels {levels:?}; load {l0} -> {}",
        effective_threads(threads, addrs.len()),
        addrs.len(),
        addrs.len() as f64 / secs,
        addrs.len() as f64 / cpu.max(0.01),
        traces as f64 / addrs.len() as f64,
        expanded as f64 / addrs.len() as f64,
        read as f64 / addrs.len() as f64,
        loadavg(),
    );
}

fn main() {
    let n_screen = env("PAYTRACE_BENCH_SCREEN", 10_000);
    // Threads of the parallel runs (0: one per core, at most 8).
    let threads = usize::try_from(env("PAYTRACE_BENCH_THREADS", 0)).unwrap();
    // History cache budget in transfers (as `screen --file`).
    let budget = usize::try_from(env("PAYTRACE_BENCH_CACHE", 2_000_000)).unwrap();
    // Skip the serial cached run (only the parallel one).
    let skip_serial = env("PAYTRACE_BENCH_SKIP_SERIAL", 0) == 1;
    let (store, chain, n_addr, n_tr) = open_or_generate_cached(None, block_cache());
    let store = bench_source(store, chain);
    // Only the warm-up and the parallel cached run.
    let quick = env("PAYTRACE_BENCH_QUICK", 0) == 1;
    let mut labels = MemoryLabelHistory::new();
    for i in 0..HUBS {
        labels.insert(address(i), "exchange", None, None);
    }
    for i in (HUBS..n_addr).step_by(1_000) {
        labels.insert(address(i + 7), "sanctioned", None, None);
        labels.insert(address(i + 500), "mixer", None, None);
    }
    let mut rng = Rng(11);
    let addrs: Vec<_> = (0..n_screen)
        .map(|_| address(HUBS + rng.next() % (n_addr - HUBS)))
        .collect();
    let mut p = ScreenParams::new("2030-01-01".parse().unwrap());
    p.hops = 3;
    p.patterns = None;
    if env("PAYTRACE_BENCH_AB", 0) > 0 {
        // A/B interleaved by chunks of 250 addresses (the machine's load drifts): checkpoints
        // hidden and shown, each chunk on a fresh shared history cache, on `threads` threads.
        run(
            &store,
            &labels,
            &addrs[..addrs.len().min(200)],
            &p,
            1,
            "warm-up",
        );
        let (mut cpu, mut wall, mut n) = ([0f64; 2], [0f64; 2], [0usize; 2]);
        for (ci, chunk) in addrs.chunks(250).enumerate() {
            for k in 0..2usize {
                let plain = (k + ci) % 2 == 0;
                store.set_plain(plain);
                let cached = CachedSource::new(&store, budget);
                let (c0, t0) = (cpu_secs().unwrap_or(0.0), Instant::now());
                screen_each(&cached, &labels, chunk, &p, threads, |_, r| {
                    r.unwrap();
                    true
                });
                let i = usize::from(!plain);
                wall[i] += t0.elapsed().as_secs_f64();
                cpu[i] += cpu_secs().unwrap_or(0.0) - c0;
                n[i] += chunk.len();
            }
        }
        for (i, name) in ["checkpoints hidden", "checkpoints used"]
            .iter()
            .enumerate()
        {
            println!(
                "A/B {name}, {} thread(s): {} addresses, {:.0} addresses/s wall, {:.0} addresses per CPU second",
                effective_threads(threads, 250),
                n[i],
                n[i] as f64 / wall[i],
                n[i] as f64 / cpu[i].max(0.01)
            );
        }
        println!("load {}", loadavg());
        return;
    }
    // Warm-up on a few addresses (the measurement is on a warm store).
    run(
        &store,
        &labels,
        &addrs[..addrs.len().min(200)],
        &p,
        1,
        "warm-up",
    );
    if !quick {
        run(
            &store,
            &labels,
            &addrs[200.min(addrs.len())..addrs.len().min(1_200)],
            &p,
            1,
            "3-hop screening, patterns off, no history cache (1 000 addresses)",
        );
    }
    if !skip_serial && !quick {
        let cached = CachedSource::new(&store, budget);
        run(
            &cached,
            &labels,
            &addrs,
            &p,
            1,
            "3-hop screening, patterns off, history cache",
        );
        println!(
            "history cache (hits, misses): {:?}, {} transfers held",
            cached.stats(),
            cached.held()
        );
    }
    // As `screen --file`: all cores, one shared history cache, results in input order.
    let cached = CachedSource::new(&store, budget);
    run(
        &cached,
        &labels,
        &addrs,
        &p,
        threads,
        "3-hop screening, patterns off, shared history cache (as `screen --file`)",
    );
    println!(
        "history cache (hits, misses): {:?}, {} transfers held",
        cached.stats(),
        cached.held()
    );
    if env("PAYTRACE_BENCH_REPEAT", 0) == 1 {
        // The same addresses again on the now warm cache: the CPU floor of the engine.
        run(
            &cached,
            &labels,
            &addrs,
            &p,
            threads,
            "3-hop screening, patterns off, same addresses again (warm history cache)",
        );
        println!("history cache (hits, misses): {:?}", cached.stats());
    }
    let mut pp = p.clone();
    pp.patterns = Some(Default::default());
    if !quick {
        run(
            &cached,
            &labels,
            &addrs[..addrs.len().min(1_000)],
            &pp,
            threads,
            "3-hop screening, patterns on, shared history cache (1 000 addresses)",
        );
    }
    println!(
        "store: {n_addr} addresses, {n_tr} transfers; peak RSS: {} MiB",
        peak_rss_mib().unwrap_or(0)
    );
}
