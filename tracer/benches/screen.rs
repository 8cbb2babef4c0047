//! Benchmark: risk screening of many addresses on the generated store (see `benchgen`).
//!
//! Opens (or generates) the store of the `trace` bench (`PAYTRACE_BENCH_ADDRESSES`, default
//! 1 000 000; `PAYTRACE_BENCH_TRANSFERS`, default 10 000 000; `PAYTRACE_BENCH_DIR`). The 100
//! hubs are labelled `exchange` (a service: tracing stops there); 1 in 1 000 other addresses is
//! `sanctioned`, 1 in 1 000 `mixer`. Screens `PAYTRACE_BENCH_SCREEN` (default 10 000) random
//! non-hub addresses with 3-hop indirect exposure (forward from every outflow, backward from
//! the 2 largest inflows), patterns off, then 1 000 with patterns on; prints addresses/s,
//! the level distribution and the peak RSS.
#![allow(clippy::unwrap_used, missing_docs)]

use paytrace_tracer::{
    FlowSource,
    risk::{CachedSource, MemoryLabelHistory, RiskLevel, ScreenParams, screen},
};
use std::{collections::BTreeMap, time::Instant};

mod common;
use common::*;

fn run<S: FlowSource>(
    store: &S,
    labels: &MemoryLabelHistory,
    addrs: &[paytrace_indexer::Address],
    p: &ScreenParams,
    what: &str,
) {
    let t0 = Instant::now();
    let mut levels: BTreeMap<RiskLevel, usize> = BTreeMap::new();
    let (mut traces, mut expanded, mut read) = (0usize, 0usize, 0usize);
    for a in addrs {
        let r = screen(store, labels, a, p).unwrap();
        *levels.entry(r.level).or_default() += 1;
        traces += r.stats.traces;
        expanded += r.stats.expanded_addresses;
        read += r.stats.transfers_read + r.stats.own_transfers;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{what}: {} addresses in {secs:.1} s = {:.0} addresses/s; per address: {:.1} traces, {:.0} addresses expanded, {:.0} transfers read; levels {levels:?}",
        addrs.len(),
        addrs.len() as f64 / secs,
        traces as f64 / addrs.len() as f64,
        expanded as f64 / addrs.len() as f64,
        read as f64 / addrs.len() as f64,
    );
}

fn main() {
    let n_screen = env("PAYTRACE_BENCH_SCREEN", 10_000);
    let (store, _chain, n_addr, n_tr) = open_or_generate(None);
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
    // Warm-up on a few addresses (the measurement is on a warm store).
    run(
        &store,
        &labels,
        &addrs[..addrs.len().min(200)],
        &p,
        "warm-up",
    );
    run(
        &store,
        &labels,
        &addrs[200.min(addrs.len())..addrs.len().min(1_200)],
        &p,
        "3-hop screening, patterns off, no history cache (1 000 addresses)",
    );
    let cached = CachedSource::new(&store, 2_000_000);
    run(
        &cached,
        &labels,
        &addrs,
        &p,
        "3-hop screening, patterns off, history cache (as `screen --file`)",
    );
    println!("history cache (hits, misses): {:?}", cached.stats());
    let mut pp = p.clone();
    pp.patterns = Some(Default::default());
    run(
        &cached,
        &labels,
        &addrs[..addrs.len().min(1_000)],
        &pp,
        "3-hop screening, patterns on, history cache (1 000 addresses)",
    );
    println!(
        "store: {n_addr} addresses, {n_tr} transfers; peak RSS: {} MiB",
        peak_rss_mib().unwrap_or(0)
    );
}
