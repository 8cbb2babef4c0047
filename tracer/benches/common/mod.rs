//! Shared by the benches: the generated 10M-transfer store (power-law degrees, hubs), its
//! deterministic RNG and helpers. Used by `trace.rs` and `report.rs` through `mod common;`.
#![allow(clippy::unwrap_used, missing_docs, dead_code)]

use alloy_primitives::B256;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash,
};
use std::{io::Write, time::Instant};

/// Addresses `0..HUBS` are the busiest and labelled `exchange` by the benches.
pub const HUBS: u64 = 100;
/// Transfers per block.
pub const PER_BLOCK: u64 = 10;

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Power-law skewed index in [0, n): index = n * u^3 for u uniform in [0, 1) (small
    /// indexes are hubs). Integer arithmetic: u has 21 bits, u^3 has 63.
    pub fn skewed(&mut self, n: u64) -> u64 {
        let u = self.next() >> 43;
        let cube = u * u * u;
        u64::try_from((u128::from(n) * u128::from(cube)) >> 63).unwrap_or(0) % n
    }
}

pub fn address(i: u64) -> Address {
    let mut b = [0u8; 20];
    b[0] = 0xaa;
    b[12..].copy_from_slice(&i.to_be_bytes());
    Address::Evm(b)
}

pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn transfer(
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

pub fn generate(store: &Store, n_addr: u64, n_tr: u64, csv: Option<&mut std::fs::File>) {
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

pub fn peak_rss_mib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

pub fn index_of(a: &Address) -> u64 {
    match a {
        Address::Evm(b) => u64::from_be_bytes(b[12..].try_into().unwrap()),
        Address::Script(_) | Address::Tx(_) => u64::MAX,
    }
}

pub fn labels_hub(a: &Address) -> bool {
    index_of(a) < HUBS
}

/// Opens the bench store (`PAYTRACE_BENCH_DIR`, default `$TMPDIR/paytrace-bench-A-T`),
/// generating it first when it has no checkpoint. Returns the store, its chain, the address
/// and transfer counts.
pub fn open_or_generate(csv: Option<&mut std::fs::File>) -> (Store, ChainId, u64, u64) {
    open_or_generate_cached(csv, None)
}

/// [`open_or_generate`] with the store's block cache set to `cache_bytes` (the query commands
/// use `paytrace_indexer::QUERY_CACHE_BYTES`); the generated data is the same.
pub fn open_or_generate_cached(
    csv: Option<&mut std::fs::File>,
    cache_bytes: Option<u64>,
) -> (Store, ChainId, u64, u64) {
    let n_addr = env("PAYTRACE_BENCH_ADDRESSES", 1_000_000);
    let n_tr = env("PAYTRACE_BENCH_TRANSFERS", 10_000_000);
    let dir = std::env::var("PAYTRACE_BENCH_DIR").map_or_else(
        |_| std::env::temp_dir().join(format!("paytrace-bench-{n_addr}-{n_tr}")),
        std::path::PathBuf::from,
    );
    let store = Store::open_with_cache(&dir, cache_bytes).unwrap();
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
            generate(&store, n_addr, n_tr, csv);
            store.chain_by_name("bench").unwrap().unwrap().id
        }
    };
    (store, chain, n_addr, n_tr)
}

/// CPU time (user + system) of this process so far, in seconds (Linux `/proc/self/stat`,
/// 100 ticks per second).
pub fn cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let u: u64 = f.get(11)?.parse().ok()?;
    let k: u64 = f.get(12)?.parse().ok()?;
    Some((u + k) as f64 / 100.0)
}

/// The store's block cache: `PAYTRACE_BENCH_CACHE_MB` (`0`: the storage engine's default,
/// 32 MiB), else what the query commands use (`paytrace_indexer::QUERY_CACHE_BYTES`).
pub fn block_cache() -> Option<u64> {
    match std::env::var("PAYTRACE_BENCH_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(0) => None,
        Some(mb) => Some(mb << 20),
        None => Some(paytrace_indexer::QUERY_CACHE_BYTES),
    }
}

/// The load averages (1, 5, 15 minutes) from `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The store as the benches trace it. `PAYTRACE_BENCH_BALANCES=off` hides the balance
/// checkpoints and the range reads (the engines then read whole histories and filter them, as
/// before the balance stage existed); `build` first brings the checkpoints up to date
/// (`index balances`: a full build, after a compaction of the address indexes, when the stage
/// never ran or `PAYTRACE_BENCH_BALANCE_REBUILD=1`; interval `PAYTRACE_BENCH_BALANCE_INTERVAL`,
/// default 64) and prints its time and counts; anything
/// else uses whatever checkpoints the store has.
pub struct BenchSource {
    pub store: Store,
    plain: std::sync::atomic::AtomicBool,
}

impl BenchSource {
    /// Hides (`true`) or shows the checkpoints and range reads from now on.
    pub fn set_plain(&self, plain: bool) {
        self.plain
            .store(plain, std::sync::atomic::Ordering::Relaxed);
    }

    fn is_plain(&self) -> bool {
        self.plain.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// CPU time of the calling thread in nanoseconds (`/proc/thread-self/schedstat`, exact).
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

pub fn bench_source(store: Store, chain: ChainId) -> BenchSource {
    let mode = std::env::var("PAYTRACE_BENCH_BALANCES").unwrap_or_default();
    if mode == "build" {
        let k = env(
            "PAYTRACE_BENCH_BALANCE_INTERVAL",
            paytrace_indexer::BALANCE_INTERVAL,
        );
        let t0 = Instant::now();
        let s = if store.balances_progress(chain).unwrap().is_some()
            && env("PAYTRACE_BENCH_BALANCE_REBUILD", 0) == 0
        {
            store.update_balances(chain, k).unwrap()
        } else {
            // As `paytrace index balances` does before a full build (`PAYTRACE_BENCH_COMPACT=0`:
            // not).
            if env("PAYTRACE_BENCH_COMPACT", 1) == 1 {
                let t0 = Instant::now();
                let (before, after) = store.compact_address_indexes().unwrap();
                println!(
                    "address indexes compacted: {before} -> {after} tables in {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
            }
            let t0 = Instant::now();
            let s = store.build_balances(Some(chain), k).unwrap();
            println!("full build: {:.1} s", t0.elapsed().as_secs_f64());
            s
        };
        store.persist().unwrap();
        println!(
            "balance stage (interval {k}): {:.1} s wall, {:?}",
            t0.elapsed().as_secs_f64(),
            s
        );
    }
    println!(
        "balance checkpoints: {} (progress {:?})",
        if mode == "off" { "hidden" } else { "used" },
        store.balances_progress(chain).unwrap()
    );
    BenchSource {
        store,
        plain: std::sync::atomic::AtomicBool::new(mode == "off"),
    }
}

impl paytrace_tracer::FlowSource for BenchSource {
    type Error = paytrace_indexer::StoreError;
    fn history_window(&self) -> paytrace_tracer::HistoryWindow {
        if self.is_plain() {
            paytrace_tracer::HistoryWindow::Off
        } else {
            paytrace_tracer::HistoryWindow::Adaptive
        }
    }
    fn address_transfers(
        &self,
        address: &Address,
        dir: paytrace_indexer::Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, Self::Error> {
        paytrace_tracer::FlowSource::address_transfers(&self.store, address, dir, chain)
    }
    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, Self::Error> {
        self.store.transfer(key)
    }
    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, Self::Error> {
        paytrace_tracer::FlowSource::tx_transfers(&self.store, tx, chain, block)
    }
    fn checkpoints(&self) -> Result<std::collections::BTreeMap<ChainId, BlockNumber>, Self::Error> {
        paytrace_tracer::FlowSource::checkpoints(&self.store)
    }
    fn address_transfers_range(
        &self,
        address: &Address,
        dir: paytrace_indexer::Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, Self::Error> {
        if self.is_plain() {
            let mut v = self.address_transfers(address, dir, chain)?;
            v.retain(|t| from.is_none_or(|f| t.key >= *f) && before.is_none_or(|b| t.key < *b));
            return Ok(v);
        }
        self.store
            .address_transfers_range(address, dir, chain, from, before)
    }
    fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<paytrace_indexer::BalanceCheckpoint>, Self::Error> {
        if self.is_plain() {
            return Ok(None);
        }
        self.store.balance_checkpoint(address, chain, before)
    }
}
