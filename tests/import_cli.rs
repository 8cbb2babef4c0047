//! End-to-end: `paytrace import transfers` streams a file in block order and refuses what it
//! cannot import without damage (rows out of block order, a chain indexed from a node), and
//! `paytrace index btc` refuses an empty blk file.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

mod common;

use common::{paytrace, run_json};
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash,
};
use std::path::Path;

const HEADER: &str = "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n";

/// A row of token 0xaa from address `from` to `to` (one-byte ids), in `block` at `log_index`.
fn row(n: u64, from: u8, to: u8, block: u64, log_index: u32) -> String {
    format!(
        "0x{:040x},0x{:040x},0x{:040x},{},0x{n:064x},{log_index},{block},{}\n",
        0xaa,
        from,
        to,
        100 + n,
        1_700_000_000 + block * 12
    )
}

fn write_csv(path: &Path, rows: &[String]) {
    let mut s = HEADER.to_owned();
    for r in rows {
        s.push_str(r);
    }
    std::fs::write(path, s).unwrap();
}

/// What the store holds for `chain`: transfers and checkpoint.
fn chain_state(dir: &Path, chain: &str) -> Option<(usize, Option<u64>)> {
    let store = Store::open(dir).unwrap();
    let info = store.chain_by_name(chain).unwrap()?;
    let n = store
        .range_transfers(info.id, BlockNumber(0), BlockNumber(u64::MAX))
        .count();
    let cp = store.checkpoint(info.id).unwrap().map(|b| b.number.0);
    Some((n, cp))
}

#[test]
fn rows_out_of_block_order_are_refused_naming_the_line_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("unsorted.csv");
    // Line 2: block 7, line 3: block 7, line 4: block 9, line 5: block 8 (out of order).
    write_csv(
        &csv,
        &[
            row(1, 1, 2, 7, 0),
            row(2, 2, 3, 7, 1),
            row(3, 3, 4, 9, 0),
            row(4, 4, 5, 8, 0),
        ],
    );
    let out = paytrace(&d.join("store"))
        .args(["import", "transfers", "--chain", "imp"])
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("unsorted.csv:5"), "{err}");
    assert!(err.contains("block order"), "{err}");
    assert!(err.contains("after block 9 (line 4)"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(chain_state(&d.join("store"), "imp"), None);

    // Rows of one block in any log-index order are fine; a later file continues the chain.
    let sorted = d.join("sorted.csv");
    write_csv(
        &sorted,
        &[row(1, 1, 2, 7, 1), row(2, 2, 3, 7, 0), row(3, 3, 4, 9, 0)],
    );
    let r = run_json(
        paytrace(&d.join("store"))
            .args(["--json", "import", "transfers", "--chain", "imp"])
            .arg(&sorted),
    );
    assert_eq!(r["imported"], 3, "{r}");
    assert_eq!(
        (r["first_block"].as_u64(), r["last_block"].as_u64()),
        (Some(7), Some(9))
    );
    let next = d.join("next.csv");
    write_csv(&next, &[row(4, 4, 5, 12, 0)]);
    let r = run_json(
        paytrace(&d.join("store"))
            .args(["--json", "import", "transfers", "--chain", "imp"])
            .arg(&next),
    );
    assert_eq!(
        (r["first_block"].as_u64(), r["last_block"].as_u64()),
        (Some(10), Some(12))
    );
    assert_eq!(chain_state(&d.join("store"), "imp"), Some((4, Some(12))));
}

#[test]
fn a_file_larger_than_one_commit_is_imported_whole() {
    // 120,000 rows in 60 blocks of 2,000: several commits of at most 20,000 transfers.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv = d.join("big.csv");
    let mut s = HEADER.to_owned();
    for i in 0..120_000u64 {
        let from = u8::try_from(i % 200).unwrap() + 1;
        let to = u8::try_from((i * 7) % 200).unwrap() + 1;
        s.push_str(&row(
            i + 1,
            from,
            to,
            100 + i / 2_000,
            u32::try_from(i % 2_000).unwrap(),
        ));
    }
    std::fs::write(&csv, s).unwrap();
    let r = run_json(
        paytrace(&d.join("store"))
            .args(["--json", "import", "transfers"])
            .arg(&csv),
    );
    assert_eq!(r["rows"], 120_000, "{r}");
    assert_eq!(r["imported"], 120_000, "{r}");
    assert_eq!(r["rejected_count"], 0, "{r}");
    assert_eq!(
        (r["first_block"].as_u64(), r["last_block"].as_u64()),
        (Some(100), Some(159))
    );
    assert_eq!(
        chain_state(&d.join("store"), "imported"),
        Some((120_000, Some(159)))
    );
}

/// A chain as `index evm` leaves it: blocks with the node's hashes and a checkpoint.
fn node_indexed_chain(dir: &Path) {
    let store = Store::open(dir).unwrap();
    let chain = store.register_chain("mainnet", ChainKind::Evm).unwrap();
    let hash = |n: u8| alloy_primitives::B256::from([n; 32]);
    let blocks: Vec<BlockRef> = (1..=3u8)
        .map(|n| BlockRef {
            number: BlockNumber(u64::from(n)),
            hash: hash(n),
            parent: hash(n - 1),
            time: Timestamp(1_700_000_000 + u64::from(n) * 12),
        })
        .collect();
    let t = Transfer {
        key: TransferKey {
            chain,
            block: BlockNumber(2),
            tx_index: 0,
            kind: TransferKind::Native,
            position: 0,
        },
        time: Timestamp(1_700_000_024),
        tx_hash: TxHash(hash(0x77)),
        from: Address::Evm([1; 20]),
        to: Address::Evm([2; 20]),
        asset: Asset::Native,
        amount: "1000".parse::<Amount>().unwrap(),
        trace_address: Vec::new(),
    };
    store.write_range(chain, &blocks, &[t]).unwrap();
    store.persist().unwrap();
}

#[test]
fn importing_into_a_chain_indexed_from_a_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store_dir = d.join("store");
    node_indexed_chain(&store_dir);
    let csv = d.join("t.csv");
    // Far beyond the checkpoint: accepted, this would write ~1M empty blocks into the chain.
    write_csv(&csv, &[row(1, 1, 2, 1_000_000, 0)]);
    let out = paytrace(&store_dir)
        .args(["import", "transfers", "--chain", "mainnet"])
        .arg(&csv)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("chain \"mainnet\""), "{err}");
    assert!(err.contains("indexed from a node"), "{err}");
    assert!(err.contains("index evm"), "{err}");
    assert!(err.contains("another --chain"), "{err}");
    assert_eq!(chain_state(&store_dir, "mainnet"), Some((1, Some(3))));
    // The same file into its own chain is fine.
    let r = run_json(
        paytrace(&store_dir)
            .args(["--json", "import", "transfers", "--chain", "mainnet-import"])
            .arg(&csv),
    );
    assert_eq!(r["imported"], 1, "{r}");
}

#[test]
fn index_btc_refuses_an_empty_blk_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let blocks = d.join("blocks");
    std::fs::create_dir(&blocks).unwrap();
    let blk = blocks.join("blk00000.dat");
    std::fs::write(&blk, b"").unwrap();
    for args in [
        vec!["--blocks-dir".to_owned(), blocks.display().to_string()],
        vec!["--blk-file".to_owned(), blk.display().to_string()],
    ] {
        let out = paytrace(&d.join("store"))
            .args(["index", "btc"])
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(&blk.display().to_string()), "{err}");
        assert!(err.contains("empty blk file"), "{err}");
    }
}
