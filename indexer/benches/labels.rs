//! Label store benchmark: import of N generated addresses (default 1 000 000) from a CSV file,
//! peak RSS, then point look-ups per second (hits and misses).
//!
//! `cargo bench -p paytrace-indexer --bench labels [-- N]`

#![allow(clippy::cast_precision_loss)] // rates are printed, not computed on

use paytrace_indexer::{
    Address, Store,
    labels::{Category, Defaults, Format, ImportOptions, LabelStore, import_files},
};
use std::{io::Write, time::Instant};

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Deterministic pseudo-random addresses (splitmix64).
fn addr(i: u64, salt: u64) -> [u8; 20] {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
    let mut out = [0u8; 20];
    for chunk in out.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let b = z.to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(&b[..n]);
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    let csv_path = dir.path().join("labels.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
        writeln!(w, "address,category,entity,date_added")?;
        let cats = [
            "exchange",
            "sanctioned",
            "mixer",
            "scam",
            "hack_theft",
            "gambling",
        ];
        for i in 0..n {
            let a = alloy_primitives::Address::from(addr(i, 1));
            let c = cats[usize::try_from(i % 6)?];
            writeln!(w, "{a:#x},{c},entity-{},2024-01-01", i % 1000)?;
        }
    }
    let store = Store::open(dir.path().join("store"))?;
    let labels = LabelStore::open(&store)?;
    let rss_before = peak_rss_mib();
    let t = Instant::now();
    let r = import_files(
        &labels,
        Format::Csv,
        &[csv_path],
        &ImportOptions {
            source: Some("bench".into()),
            version: Some("2024-01-01".into()),
            url: None,
            defaults: Defaults {
                category: Some(Category::Unknown),
                ..Defaults::default()
            },
            ..ImportOptions::default()
        },
    )?;
    let import_s = t.elapsed().as_secs_f64();
    println!(
        "import: {} rows read, {} imported, {} rejected in {:.2} s ({:.0} rows/s)",
        r.read,
        r.imported,
        r.rejected,
        import_s,
        r.read as f64 / import_s
    );
    println!(
        "peak RSS: {:.0} MiB (before import {:.0} MiB)",
        peak_rss_mib().unwrap_or(f64::NAN),
        rss_before.unwrap_or(f64::NAN)
    );
    // look-ups: half hits, half misses
    let lookups = n.min(1_000_000);
    let t = Instant::now();
    let mut hits = 0u64;
    for i in 0..lookups {
        let a = if i % 2 == 0 {
            Address::Evm(addr(i, 1))
        } else {
            Address::Evm(addr(i, 2))
        };
        hits += u64::from(!labels.labels_for(&a, None)?.is_empty());
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "lookups: {lookups} in {s:.2} s = {:.0} lookups/s ({hits} hits)",
        lookups as f64 / s
    );
    // re-import of the same version (idempotent)
    let t = Instant::now();
    let r2 = import_files(
        &labels,
        Format::Csv,
        &[dir.path().join("labels.csv")],
        &ImportOptions {
            source: Some("bench".into()),
            version: Some("2024-01-01".into()),
            ..ImportOptions::default()
        },
    )?;
    println!(
        "re-import same version: {} duplicates, {} imported in {:.2} s",
        r2.duplicates,
        r2.imported,
        t.elapsed().as_secs_f64()
    );
    println!(
        "peak RSS at end: {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}
