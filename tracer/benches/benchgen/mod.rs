//! The generated benchmark store shared by the tracer benches (`trace`, `screen`): power-law
//! skewed degrees, 10 native transfers per block, written with `Store::write_range` in ranges of
//! 10 000 blocks; the 100 busiest addresses (indexes 0..100) are the hubs.
#![allow(dead_code, clippy::unwrap_used)]

use alloy_primitives::B256;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash,
};
use std::{io::Write, time::Instant};

/// Hubs: the 100 busiest addresses.
pub const HUBS: u64 = 100;
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

/// The address of index `a` (`u64::MAX` for non-EVM addresses).
pub fn index_of(a: &Address) -> u64 {
    match a {
        Address::Evm(b) => u64::from_be_bytes(b[12..].try_into().unwrap()),
        Address::Script(_) | Address::Tx(_) => u64::MAX,
    }
}

/// Opens the store of `PAYTRACE_BENCH_DIR` (default `$TMPDIR/paytrace-bench-A-T`), generating it
/// when it has no `bench` chain yet; returns the store and the chain.
pub fn open_or_generate(n_addr: u64, n_tr: u64) -> (Store, ChainId) {
    let dir = std::env::var("PAYTRACE_BENCH_DIR").map_or_else(
        |_| std::env::temp_dir().join(format!("paytrace-bench-{n_addr}-{n_tr}")),
        std::path::PathBuf::from,
    );
    let store = Store::open(&dir).unwrap();
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
            generate(&store, n_addr, n_tr, None);
            store.chain_by_name("bench").unwrap().unwrap().id
        }
    };
    (store, chain)
}
