//! Benchmark: a payout report for 1,000 payees on the generated 10M-transfer store.
//!
//! Reuses the store of the trace bench (`benches/common`, same `PAYTRACE_BENCH_*` variables).
//! The provider is made of the first non-hub addresses (by index, the busiest ones after the
//! hubs) whose outgoing transfers reach `PAYTRACE_BENCH_PAYEES` (default 1,000) distinct
//! payees: their outgoing transfers are the payouts, one per payee. The 100 hubs are labelled
//! `exchange`. Prints the time of payout discovery, of the report (one forward trace per payout,
//! convergence, flow graph) and of rendering HTML/JSON/CSV, the findings, and the peak RSS.
//! `PAYTRACE_BENCH_HOPS` sets the hop limit (default 3), `PAYTRACE_BENCH_THREADS` the threads
//! tracing the payouts (default 0: one per core, at most 8; 1: serial). The store is opened with
//! the query commands' block cache, as `report payouts` does (`PAYTRACE_BENCH_CACHE_MB`
//! overrides it; 0: fjall's default 32 MiB).
//!
//! `PAYTRACE_BENCH_MODE=batch` instead takes 1,000 random payout-like transfers between non-hub
//! addresses (as the trace bench does) as a matched payroll batch, one per payee.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::{
    HUBS, PER_BLOCK, Rng, address, block_cache, cpu_secs, env, labels_hub, loadavg,
    open_or_generate_cached, peak_rss_mib,
};
use paytrace_indexer::{Address, BlockNumber, Direction};
use paytrace_tracer::{
    FlowSource, MemoryLabels,
    report::{
        AssetBook, CurrentLabelsOnly, NoClusters, Payout, ReportParams, build_report,
        discover_payouts, render,
    },
};
use std::{
    collections::{BTreeSet, HashMap},
    time::Instant,
};

fn main() {
    let (store, chain, n_addr, n_tr) = open_or_generate_cached(None, block_cache());
    let want = usize::try_from(env("PAYTRACE_BENCH_PAYEES", 1_000)).unwrap();
    let hops = u32::try_from(env("PAYTRACE_BENCH_HOPS", 3)).unwrap();
    let mut labels = MemoryLabels::new();
    for i in 0..HUBS {
        labels.insert(address(i), "exchange");
    }
    let batch = std::env::var("PAYTRACE_BENCH_MODE").is_ok_and(|m| m == "batch");
    let t0 = Instant::now();
    let mut providers: Vec<Address> = Vec::new();
    let payouts: Vec<Payout> = if batch {
        let mut rng = Rng(11);
        let blocks = n_tr / PER_BLOCK;
        let mut seen = BTreeSet::new();
        let mut v = Vec::new();
        while v.len() < want {
            let b = 1 + rng.next() % blocks;
            for t in store.range_transfers(chain, BlockNumber(b), BlockNumber(b)) {
                let t = t.unwrap();
                if labels_hub(&t.from) || labels_hub(&t.to) || !seen.insert(t.to) {
                    continue;
                }
                providers.push(t.from);
                v.push(Payout::from_transfer(t.to.to_string(), &t, None));
                break;
            }
        }
        providers.sort();
        providers.dedup();
        v
    } else {
        // Provider hot wallets: the busiest non-hub senders until `want` distinct payees.
        let mut payees: BTreeSet<Address> = BTreeSet::new();
        let mut k = HUBS;
        while payees.len() < want {
            let a = address(k);
            providers.push(a);
            for t in
                FlowSource::address_transfers(&store, &a, Direction::Outgoing, Some(chain)).unwrap()
            {
                payees.insert(t.to);
            }
            k += 1;
        }
        let all = discover_payouts(
            &store,
            &providers,
            None,
            None,
            None,
            Some(chain),
            &HashMap::new(),
        )
        .unwrap();
        // One payout per payee (the first), `want` payees.
        let mut seen = BTreeSet::new();
        all.into_iter()
            .filter(|p| !providers.contains(&p.address) && seen.insert(p.address))
            .take(want)
            .collect()
    };
    let discovery = t0.elapsed();
    let mut params = ReportParams::default();
    params.trace.max_hops = hops;
    params.convergence.max_hops = hops;
    params.convergence.window_secs = None;
    // Threads tracing the payouts (0: one per core, at most 8), as `report payouts` does.
    params.threads = usize::try_from(env("PAYTRACE_BENCH_THREADS", 0)).unwrap();
    let load0 = loadavg();
    let t1 = Instant::now();
    let c1 = cpu_secs().unwrap_or(0.0);
    let r = build_report(
        &store,
        &labels,
        &CurrentLabelsOnly,
        &NoClusters,
        "bench",
        &providers,
        &payouts,
        Vec::new(),
        AssetBook::new(),
        &params,
    )
    .unwrap();
    let report = t1.elapsed();
    let report_cpu = cpu_secs().unwrap_or(0.0) - c1;
    let load1 = loadavg();
    let t2 = Instant::now();
    let html = render::to_html(&r);
    let json = serde_json::to_string(&r).unwrap();
    let csv = render::to_csv(&r).expect("csv");
    let rendering = t2.elapsed();
    println!("store: {n_addr} addresses, {n_tr} transfers, {HUBS} hubs labelled exchange");
    println!(
        "{}: {} sender(s), {} payouts to {} payees, haircut, {hops} hops",
        if batch { "batch" } else { "provider" },
        providers.len(),
        r.summary.payouts,
        r.summary.payees
    );
    println!("payout discovery: {discovery:.2?}");
    println!(
        "report (traces, convergence, graph), {} thread(s): {report:.2?} wall, {report_cpu:.1} s CPU ({:.2?} wall per payout); load average {load0} -> {load1}",
        paytrace_tracer::par::effective_threads(params.threads, payouts.len()),
        report / u32::try_from(payouts.len().max(1)).unwrap()
    );
    println!(
        "rendering: {rendering:.2?} (html {} KiB, json {} KiB, csv {} KiB)",
        html.len() / 1024,
        json.len() / 1024,
        csv.len() / 1024
    );
    println!(
        "findings: {} convergence points, {} shared deposits; graph {} nodes ({} omitted)",
        r.convergence.len(),
        r.shared_deposits.len(),
        r.graph.nodes.len(),
        r.graph.omitted_nodes
    );
    println!(
        "total: {:.2?} wall, {:.1} s CPU",
        t0.elapsed(),
        cpu_secs().unwrap_or(0.0)
    );
    println!("peak RSS: {} MiB", peak_rss_mib().unwrap_or(0));
}
