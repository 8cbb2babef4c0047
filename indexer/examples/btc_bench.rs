//! Bitcoin indexing benchmark helper (docs/benchmarks.md, "Bitcoin indexing").
//!
//! ```text
//! cargo run --release -p paytrace-indexer --example btc_bench -- generate DIR BLOCKS TXS_PER_BLOCK [--xor]
//! cargo run --release -p paytrace-indexer --example btc_bench -- decode DIR [THREADS]
//! ```
//!
//! `generate` writes a synthetic chain (coinbase + payments with 1–3 inputs, payment + change,
//! P2PKH/P2WPKH/P2SH/P2WSH/P2TR/P2PK outputs, some OP_RETURN, in-block spend chains) as
//! 128 MiB blk*.dat files, XOR-obfuscated with `--xor`. `decode` measures the decode-only rate
//! of the same files (scan, read, de-obfuscate, parse, txids, script classification), the
//! upper bound of indexing.

use paytrace_indexer::btc::{
    blk::{BlkIndex, list_blk_files, read_xor_key},
    generate::{ChainGen, write_blk_files},
    sync::BlkSource,
};
use std::{error::Error, path::PathBuf, time::Instant};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Result<&String, Box<dyn Error>> {
        args.get(i)
            .ok_or_else(|| "missing argument (see the example's docs)".into())
    };
    match arg(0)?.as_str() {
        "generate" => {
            let dir = PathBuf::from(arg(1)?);
            let blocks: usize = arg(2)?.parse()?;
            let per: usize = arg(3)?.parse()?;
            let xor = args
                .iter()
                .any(|a| a == "--xor")
                .then_some([0x3c, 0x91, 0x07, 0xa5, 0x5e, 0x12, 0xf0, 0x88]);
            let t = Instant::now();
            let mut g = ChainGen::new(2026, per);
            let mut all = Vec::new();
            let mut written = Vec::new();
            let mut txs = 0usize;
            // Generate in chunks so memory stays bounded; each chunk starts a new file.
            let chunk = (128 << 20) / (per * 260).max(1);
            let mut file_no = 0usize;
            for _ in 0..blocks {
                let b = g.next_block();
                txs += b.txdata.len();
                all.push(b);
                if all.len() >= chunk {
                    let sub = dir.join(format!("part{file_no:03}"));
                    written.extend(write_blk_files(&sub, &all, xor, 128 << 20)?);
                    file_no += 1;
                    all.clear();
                }
            }
            if !all.is_empty() {
                let sub = dir.join(format!("part{file_no:03}"));
                written.extend(write_blk_files(&sub, &all, xor, 128 << 20)?);
            }
            // Flatten into one blocks dir with consecutive numbers.
            std::fs::create_dir_all(&dir)?;
            let mut bytes = 0u64;
            for (i, f) in written.iter().enumerate() {
                let to = dir.join(format!("blk{i:05}.dat"));
                std::fs::rename(f, &to)?;
                bytes += std::fs::metadata(&to)?.len();
            }
            if let Some(k) = xor {
                std::fs::write(dir.join("xor.dat"), k)?;
            }
            for i in 0..=file_no {
                let sub = dir.join(format!("part{i:03}"));
                let _ = std::fs::remove_file(sub.join("xor.dat"));
                let _ = std::fs::remove_dir(sub);
            }
            println!(
                "generated {blocks} blocks, {txs} txs, {} files, {:.1} MB in {:.1}s",
                written.len(),
                bytes as f64 / 1e6,
                t.elapsed().as_secs_f64()
            );
        }
        "decode" => {
            let dir = PathBuf::from(arg(1)?);
            let threads: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
            let t = Instant::now();
            let idx = BlkIndex::scan(list_blk_files(&dir)?, read_xor_key(&dir)?)?;
            let chain = idx.best_chain(None, None)?;
            let scan = t.elapsed();
            let tip = chain.tip().ok_or("no blocks")?;
            let first = chain.first_height;
            let t = Instant::now();
            let n = tip - first + 1;
            let per = n.div_ceil(threads as u64);
            let (txs, bytes) = std::thread::scope(|s| {
                let hs: Vec<_> = (0..threads as u64)
                    .map(|i| {
                        let (idx, chain) = (&idx, &chain);
                        s.spawn(move || -> Result<(u64, u64), String> {
                            let a = first + i * per;
                            let b = (a + per - 1).min(tip);
                            let (mut txs, mut bytes) = (0u64, 0u64);
                            let mut h = a;
                            while h <= b {
                                let e = (h + 99).min(b);
                                for d in BlkSource::read_blocks(idx, chain, h, e)
                                    .map_err(|e| e.to_string())?
                                {
                                    txs += d.txs.len() as u64;
                                    bytes += d.size as u64;
                                }
                                h = e + 1;
                            }
                            Ok((txs, bytes))
                        })
                    })
                    .collect();
                hs.into_iter().try_fold((0u64, 0u64), |acc, h| {
                    let (t, b) = h.join().map_err(|_| "thread panicked".to_owned())??;
                    Ok::<_, String>((acc.0 + t, acc.1 + b))
                })
            })?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "scan {:.2}s ({} blocks); decode {threads} thread(s): {txs} txs, {:.1} MB in {secs:.2}s = {:.0} tx/s, {:.1} MB/s",
                scan.as_secs_f64(),
                idx.len(),
                bytes as f64 / 1e6,
                txs as f64 / secs,
                bytes as f64 / 1e6 / secs
            );
        }
        other => return Err(format!("unknown mode {other:?}: generate or decode").into()),
    }
    Ok(())
}
