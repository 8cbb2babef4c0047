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

use alloy_primitives::B256;
use criterion::Criterion;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash,
};
use paytrace_tracer::{MemoryLabels, Model, Seed, TraceParams, trace_forward};
use std::{
    io::Write,
    time::{Duration, Instant},
};

const HUBS: u64 = 100;
const PER_BLOCK: u64 = 10;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Power-law skewed index in [0, n): index = n * u^3 for u uniform in [0, 1) (small
    /// indexes are hubs). Integer arithmetic: u has 21 bits, u^3 has 63.
    fn skewed(&mut self, n: u64) -> u64 {
        let u = self.next() >> 43;
        let cube = u * u * u;
        u64::try_from((u128::from(n) * u128::from(cube)) >> 63).unwrap_or(0) % n
    }
}

fn address(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[0] = 0xaa;
    b[12..].copy_from_slice(&i.to_be_bytes());
    Address::Evm(b)
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn transfer(
    chain: ChainId,
    rng: &mut Rng,
    n_addr: u64,
    block: u64,
    tx: u32,
) -> (Transfer, u64, u64) {
    // Senders and receivers are skewed independently; half of the receivers uniform so that
    // most addresses have a few transfers and hubs have very many.
    let from = rng.skewed(n_addr);
    let to = if rng.next().is_multiple_of(2) {
        rng.skewed(n_addr)
    } else {
        rng.next() % n_addr
    };
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    h[8..12].copy_from_slice(&tx.to_be_bytes());
    let t = Transfer {
        key: TransferKey {
            chain,
            block: BlockNumber(block),
            tx_index: tx,
            kind: TransferKind::Native,
            position: 0,
        },
        time: Timestamp(1_600_000_000 + block * 12),
        tx_hash: TxHash(B256::from(h)),
        from: address(from),
        to: address(to),
        asset: Asset::Native,
        amount: Amount::from_u64(1 + rng.next() % 1_000_000_000_000_000_000),
        trace_address: vec![],
    };
    (t, from, to)
}

fn generate(store: &Store, n_addr: u64, n_tr: u64, csv: Option<&mut std::fs::File>) {
    let chain = store.register_chain("bench", ChainKind::Evm).unwrap();
    let mut rng = Rng(42);
    let blocks = n_tr / PER_BLOCK;
    let batch_blocks = 10_000u64;
    let start = Instant::now();
    let mut csv = csv.map(std::io::BufWriter::new);
    if let Some(w) = csv.as_mut() {
        writeln!(w, "src,dst,block,tx,amount,time").unwrap();
    }
    let mut b = 1u64;
    while b <= blocks {
        let end = (b + batch_blocks - 1).min(blocks);
        let mut refs = Vec::new();
        let mut ts = Vec::new();
        for n in b..=end {
            refs.push(BlockRef {
                number: BlockNumber(n),
                hash: B256::from(alloy_primitives::U256::from(n)),
                parent: B256::from(alloy_primitives::U256::from(n - 1)),
                time: Timestamp(1_600_000_000 + n * 12),
            });
            for tx in 0..PER_BLOCK {
                let (t, f, to) = transfer(chain, &mut rng, n_addr, n, u32::try_from(tx).unwrap());
                if let Some(w) = csv.as_mut() {
                    writeln!(w, "{f},{to},{n},{tx},{},{}", t.amount, t.time.0).unwrap();
                }
                ts.push(t);
            }
        }
        store.write_range(chain, &refs, &ts).unwrap();
        if (end / batch_blocks).is_multiple_of(10) {
            eprintln!(
                "generated {} transfers in {:.0?}",
                end * PER_BLOCK,
                start.elapsed()
            );
        }
        b = end + 1;
    }
    store.persist().unwrap();
    eprintln!("generation done in {:.1?}", start.elapsed());
}

fn peak_rss_mib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The `p`-th percentile (p in 0..=100), nearest rank.
fn pct(sorted: &[Duration], p: usize) -> Duration {
    let i = (sorted.len().saturating_sub(1) * p).div_ceil(100);
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let n_addr = env("PAYTRACE_BENCH_ADDRESSES", 1_000_000);
    let n_tr = env("PAYTRACE_BENCH_TRANSFERS", 10_000_000);
    let dir = std::env::var("PAYTRACE_BENCH_DIR").map_or_else(
        |_| std::env::temp_dir().join(format!("paytrace-bench-{n_addr}-{n_tr}")),
        std::path::PathBuf::from,
    );
    let store = Store::open(&dir).unwrap();
    let mut csv_file = std::env::var("PAYTRACE_BENCH_CSV")
        .ok()
        .map(|p| std::fs::File::create(p).unwrap());
    let chain = match store.chain_by_name("bench").unwrap() {
        Some(c) if store.checkpoint(c.id).unwrap().is_some() => {
            eprintln!("reusing store in {}", dir.display());
            c.id
        }
        _ => {
            eprintln!(
                "generating {n_addr} addresses, {n_tr} transfers in {}",
                dir.display()
            );
            generate(&store, n_addr, n_tr, csv_file.as_mut());
            store.chain_by_name("bench").unwrap().unwrap().id
        }
    };
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
    let run = |t: &Transfer| {
        trace_forward(&store, &labels, &Seed::Transfers(vec![t.key]), &params).unwrap()
    };
    // Warm-up pass (the benchmark is on a warm store).
    for s in &seeds {
        run(s);
    }
    let mut times = Vec::new();
    let mut expanded = 0usize;
    let mut read = 0usize;
    let mut dests = 0usize;
    for s in &seeds {
        let t0 = Instant::now();
        let r = run(s);
        times.push(t0.elapsed());
        expanded += r.stats.expanded_addresses;
        read += r.stats.transfers_read;
        dests += r.destinations.len();
    }
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
    println!("peak RSS: {} MiB", peak_rss_mib().unwrap_or(0));

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

fn index_of(a: &Address) -> u64 {
    match a {
        Address::Evm(b) => u64::from_be_bytes(b[12..].try_into().unwrap()),
        Address::Script(_) | Address::Tx(_) => u64::MAX,
    }
}

fn labels_hub(a: &Address) -> bool {
    index_of(a) < HUBS
}
