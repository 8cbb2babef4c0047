//! Indexing tests on real blocks 1–255 and on generated blk directories.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests only

use super::{
    BtcError, BtcSync, UtxoStore,
    blk::{BlkIndex, list_blk_files, read_xor_key},
    generate::{ChainGen, write_blk_files},
    sync::BlkSource,
};
use crate::{
    Address, Amount, ChainKind, Direction, Store, Transfer,
    model::{BlockNumber, ChainId, TransferKind},
    sync::{StopSignal, SyncOptions},
};
use bitcoin::hashes::Hash as _;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const BLOCKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/btc/blocks1-256.dat"
);

fn opts(per_commit: u64) -> SyncOptions {
    SyncOptions {
        blocks_per_commit: per_commit,
        in_flight: 4,
        unit_retries: 0,
    }
}

async fn index_files(
    store: &Store,
    files: Vec<PathBuf>,
    xor: Option<[u8; 8]>,
    to: Option<u64>,
    per_commit: u64,
) -> Result<super::BtcSummary, BtcError> {
    index_files_bulk(
        store,
        files,
        xor,
        to,
        per_commit,
        super::utxo::BULK_MIN_TRANSFERS,
    )
    .await
}

/// [`index_files`] writing ranges of at least `bulk_min` transfers in bulk.
async fn index_files_bulk(
    store: &Store,
    files: Vec<PathBuf>,
    xor: Option<[u8; 8]>,
    to: Option<u64>,
    per_commit: u64,
    bulk_min: usize,
) -> Result<super::BtcSummary, BtcError> {
    let chain = store.register_chain("btc", ChainKind::Bitcoin)?;
    let utxo = UtxoStore::open(store)?.with_bulk_min_transfers(bulk_min);
    let idx = BlkIndex::scan(files, xor)?;
    let known = store.checkpoint(chain)?.map(|c| {
        let mut h = c.hash.0;
        h.reverse();
        (h, c.number.0)
    });
    let best = idx.best_chain(known, None)?;
    let sync = BtcSync::new(
        utxo,
        BlkSource::new(idx, best),
        chain,
        "btc",
        opts(per_commit),
        StopSignal::new(),
    );
    sync.index(None, to, &|_| {}).await
}

fn all_transfers(store: &Store, chain: ChainId) -> Vec<Transfer> {
    store
        .range_transfers(chain, BlockNumber(0), BlockNumber(u64::MAX))
        .map(Result::unwrap)
        .collect()
}

fn btc_addr(s: &str) -> Address {
    crate::labels::LabelAddress::parse(s, Some("btc"))
        .unwrap()
        .indexed()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_1_to_255_resolve_every_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let s = index_files(&store, vec![BLOCKS.into()], None, None, 50)
        .await
        .unwrap();
    assert_eq!(
        (s.from, s.to, s.checkpoint),
        (Some(1), Some(255), Some(255))
    );
    assert_eq!(
        (s.stats.txs, s.stats.inputs, s.stats.outputs),
        (262, 7, 267)
    );
    assert_eq!((s.stats.resolved_inputs, s.stats.unresolved_inputs), (7, 0));
    let chain = store.chain_by_name("btc").unwrap().unwrap().id;
    let utxo = UtxoStore::open(&store).unwrap();
    let (n, sum) = utxo.utxo_totals(chain).unwrap();
    assert_eq!((n, sum), (260, 1_275_000_000_000));
    let distinct: std::collections::HashSet<_> = utxo
        .utxo_set(chain)
        .unwrap()
        .into_iter()
        .map(|(_, (id, _))| id)
        .collect();
    assert_eq!(distinct.len(), 260);

    // Block 170: 12cbQ... → tx f4184fc5... → 10 BTC to 1Q2TWHE3..., 40 BTC back.
    let txid = bitcoin::Txid::from_slice(
        &alloy_primitives::hex::decode(
            "169e1e83e930853391bc6f35f605c6754cfead57cf8387639d3b4096c54f18f4",
        )
        .unwrap(),
    )
    .unwrap()
    .to_byte_array();
    let meta = utxo.tx_meta(chain, &txid).unwrap().unwrap();
    assert_eq!(
        (meta.block, meta.tx_index, meta.inputs, meta.outputs),
        (170, 1, 1, 2)
    );
    assert_eq!((meta.input_value, meta.fee), (5_000_000_000, Some(0)));
    let from = btc_addr("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S");
    let to = btc_addr("1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3");
    let node = Address::Tx(txid);
    let out: Vec<Transfer> = store
        .address_transfers(&from, Direction::Outgoing, None)
        .map(Result::unwrap)
        .collect();
    assert_eq!(out[0].to, node);
    assert_eq!(out[0].amount, Amount::from_u64(5_000_000_000));
    assert_eq!(out[0].key.kind, TransferKind::Utxo);
    let inc: Vec<Transfer> = store
        .address_transfers(&to, Direction::Incoming, None)
        .map(Result::unwrap)
        .collect();
    assert_eq!(inc.len(), 1);
    assert_eq!(
        (inc[0].from, inc[0].amount),
        (node, Amount::from_u64(1_000_000_000))
    );
    assert_eq!(utxo.display(&to), "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3");
    assert_eq!(utxo.display(&super::script::coinbase_source()), "coinbase");

    // Every tx node balances: inputs (or the coinbase source) = outputs (no fees here).
    let mut bal: std::collections::HashMap<Address, i128> = Default::default();
    for t in all_transfers(&store, chain) {
        let v = i128::try_from(t.amount.raw().to::<u128>()).unwrap();
        if t.to.is_tx() {
            *bal.entry(t.to).or_default() += v;
        }
        if t.from.is_tx() {
            *bal.entry(t.from).or_default() -= v;
        }
    }
    assert_eq!(bal.len(), 262);
    assert!(bal.values().all(|v| *v == 0));
}

/// Main chain of 40 blocks, a 3-block side branch forking at height 30; blocks shuffled and
/// spread over three XOR-obfuscated files.
fn generated_dir(dir: &Path) -> (Vec<bitcoin::Block>, usize) {
    let mut g = ChainGen::new(7, 12);
    let mut main = g.blocks(31);
    let mut side_gen = g.clone();
    side_gen.txs_per_block = 5;
    let side = side_gen.blocks(3);
    main.extend(g.blocks(9));
    let mut all: Vec<bitcoin::Block> = main.iter().chain(side.iter()).cloned().collect();
    // Deterministic shuffle.
    let mut r = super::generate::Rng::new(99);
    for i in (1..all.len()).rev() {
        let j = usize::try_from(r.below(u64::try_from(i + 1).unwrap())).unwrap();
        all.swap(i, j);
    }
    let total: usize = all
        .iter()
        .map(|b| super::generate::block_bytes(b).len() + 8)
        .sum();
    write_blk_files(
        dir,
        &all,
        Some([0x5a, 0x11, 0x03, 0xc4, 0x9e, 0x00, 0x7b, 0xe2]),
        (total / 3 + 1) as u64,
    )
    .unwrap();
    (main, side.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_dir_with_xor_out_of_order_and_side_branch() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = dir.path().join("blocks");
    let (main, side) = generated_dir(&blocks);
    let files = list_blk_files(&blocks).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    let xor = read_xor_key(&blocks).unwrap();
    assert!(xor.is_some());
    // Without the key the first record has a wrong magic.
    let err = BlkIndex::scan(files.clone(), None).unwrap_err().to_string();
    assert!(err.contains("blk00000.dat offset 0: wrong magic"), "{err}");

    let idx = BlkIndex::scan(files.clone(), xor).unwrap();
    let best = idx.best_chain(None, None).unwrap();
    assert_eq!(
        (best.first_height, best.tip(), best.skipped),
        (0, Some(39), side)
    );
    for (h, b) in main.iter().enumerate() {
        assert_eq!(
            best.at(u64::try_from(h).unwrap()).unwrap().hash,
            b.block_hash().to_byte_array()
        );
    }

    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let s = index_files(&store, files, xor, None, 7).await.unwrap();
    let want_txs: usize = main.iter().map(|b| b.txdata.len()).sum();
    assert_eq!(s.stats.txs, u64::try_from(want_txs).unwrap());
    assert_eq!(s.stats.unresolved_inputs, 0);
    assert!(s.stats.inputs > 300, "{}", s.stats.inputs);

    // Same result as the blocks in order, in one plain file.
    let plain = tempfile::tempdir().unwrap();
    let pf = write_blk_files(plain.path(), &main, None, u64::MAX).unwrap();
    let store2_dir = tempfile::tempdir().unwrap();
    let store2 = Store::open(store2_dir.path()).unwrap();
    index_files(&store2, pf, None, None, 100).await.unwrap();
    let c = store.chain_by_name("btc").unwrap().unwrap().id;
    assert_eq!(all_transfers(&store, c), all_transfers(&store2, c));
    let (u1, u2) = (
        UtxoStore::open(&store).unwrap(),
        UtxoStore::open(&store2).unwrap(),
    );
    assert_eq!(u1.utxo_set(c).unwrap(), u2.utxo_set(c).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwind_restores_spent_outputs_and_resume_continues() {
    let mut g = ChainGen::new(3, 15);
    let blocks = g.blocks(30);
    let d = tempfile::tempdir().unwrap();
    let f = write_blk_files(d.path(), &blocks, None, u64::MAX).unwrap();
    let s1 = tempfile::tempdir().unwrap();
    let store = Store::open(s1.path()).unwrap();
    index_files(&store, f.clone(), None, Some(29), 4)
        .await
        .unwrap();
    let c = store.chain_by_name("btc").unwrap().unwrap().id;
    let utxo = UtxoStore::open(&store).unwrap();
    let st = utxo.unwind(c, BlockNumber(17)).unwrap();
    assert_eq!(st.blocks, 12);
    // Reference: index only up to 17.
    let s2 = tempfile::tempdir().unwrap();
    let store2 = Store::open(s2.path()).unwrap();
    index_files(&store2, f.clone(), None, Some(17), 5)
        .await
        .unwrap();
    let u2 = UtxoStore::open(&store2).unwrap();
    assert_eq!(utxo.utxo_set(c).unwrap(), u2.utxo_set(c).unwrap());
    assert_eq!(all_transfers(&store, c), all_transfers(&store2, c));
    assert_eq!(store.counters(c).unwrap(), store2.counters(c).unwrap());
    let last_tx = blocks[20].txdata[1].compute_txid().to_byte_array();
    assert!(utxo.tx_meta(c, &last_tx).unwrap().is_none());
    // Resume both to the end: identical.
    index_files(&store, f.clone(), None, None, 3).await.unwrap();
    index_files(&store2, f, None, None, 6).await.unwrap();
    assert_eq!(utxo.utxo_set(c).unwrap(), u2.utxo_set(c).unwrap());
    assert_eq!(all_transfers(&store, c), all_transfers(&store2, c));
    assert!(utxo.tx_meta(c, &last_tx).unwrap().is_some());
    // Fewer blocks in the files than in the store: nothing is unwound.
    let short = tempfile::tempdir().unwrap();
    let sf = write_blk_files(short.path(), &blocks[..20], None, u64::MAX).unwrap();
    let s = index_files(&store, sf, None, None, 3).await.unwrap();
    assert_eq!((s.reorgs, s.checkpoint), (0, Some(29)));
    assert_eq!(all_transfers(&store, c), all_transfers(&store2, c));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn bad_blk_files_name_file_and_offset() {
    let d = tempfile::tempdir().unwrap();
    let good = std::fs::read(BLOCKS).unwrap();
    // Truncated inside the third record.
    let rec = |at: usize| {
        8 + usize::try_from(u32::from_le_bytes(good[at + 4..at + 8].try_into().unwrap())).unwrap()
    };
    let first_len = rec(0);
    let third = first_len + rec(first_len);
    let p = write(d.path(), "trunc.dat", &good[..third + 100]);
    let e = BlkIndex::scan(vec![p], None).unwrap_err().to_string();
    assert!(
        e.contains(&format!("trunc.dat offset {third}: truncated record")),
        "{e}"
    );
    // Garbage after one good record.
    let mut g = good[..first_len].to_vec();
    g.extend_from_slice(b"this is not a block at all");
    let p = write(d.path(), "garbage.dat", &g);
    let e = BlkIndex::scan(vec![p], None).unwrap_err().to_string();
    assert!(
        e.contains(&format!("garbage.dat offset {first_len}: wrong magic")),
        "{e}"
    );
    // Testnet magic.
    let mut t = good[..first_len].to_vec();
    t[..4].copy_from_slice(&[0x0b, 0x11, 0x09, 0x07]);
    let p = write(d.path(), "testnet.dat", &t);
    let e = BlkIndex::scan(vec![p], None).unwrap_err().to_string();
    assert!(
        e.contains("testnet.dat offset 0: wrong magic 0b110907"),
        "{e}"
    );
    // A record whose block does not decode: found when reading, named by file and offset.
    let mut bad = good[..first_len].to_vec();
    bad[8 + 80] ^= 0xff; // tx count varint
    let p = write(d.path(), "bad.dat", &bad);
    let idx = BlkIndex::scan(vec![p], None).unwrap();
    let chain = idx.best_chain(None, None).unwrap();
    let e = BlkSource::read_blocks(&idx, &chain, 1, 1)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.dat offset 8: cannot decode"), "{e}");
    // Zero padding (Bitcoin Core pre-allocation) ends a file cleanly.
    let mut z = good[..first_len].to_vec();
    z.extend_from_slice(&[0; 1000]);
    let p = write(d.path(), "padded.dat", &z);
    assert_eq!(BlkIndex::scan(vec![p], None).unwrap().len(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), magic in any::<bool>()) {
        let d = tempfile::tempdir().unwrap();
        let mut b = bytes.clone();
        if magic && b.len() >= 8 {
            b[..4].copy_from_slice(&super::blk::MAINNET_MAGIC);
        }
        let p = write(d.path(), "blk00000.dat", &b);
        if let Ok(idx) = BlkIndex::scan(vec![p], None)
            && let Ok(chain) = idx.best_chain(None, Some(0))
            && let Some(tip) = chain.tip()
        {
            let _ = BlkSource::read_blocks(&idx, &chain, chain.first_height, tip);
        }
        let _ = super::decode::decode_bytes(&bytes, 0, &|| "x".into());
    }
}

/// Everything a range writes, for comparing two stores: transfers, UTXO set, counters,
/// checkpoint, tx metadata and locations, both address indexes of every address.
fn snapshot(store: &Store, c: ChainId, txids: &[[u8; 32]]) -> String {
    let u = UtxoStore::open(store).unwrap();
    let transfers = all_transfers(store, c);
    let mut out = format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n",
        transfers,
        u.utxo_set(c).unwrap(),
        store.counters(c).unwrap(),
        store.checkpoint(c).unwrap()
    );
    for t in txids {
        let hash = crate::model::TxHash(super::utxo::display_b256(t));
        out += &format!(
            "{:?} {:?}\n",
            u.tx_meta(c, t).unwrap(),
            store.tx_location(c, &hash).unwrap()
        );
    }
    let mut addrs: Vec<Address> = transfers.iter().flat_map(|t| [t.from, t.to]).collect();
    addrs.sort_by_key(|a| a.to_string());
    addrs.dedup();
    for a in addrs {
        for d in [Direction::Incoming, Direction::Outgoing] {
            let h: Vec<_> = store
                .address_transfers(&a, d, Some(c))
                .map(Result::unwrap)
                .map(|t| t.key)
                .collect();
            out += &format!("{a} {d:?} {h:?}\n");
        }
    }
    out
}

fn all_txids(blocks: &[bitcoin::Block]) -> Vec<[u8; 32]> {
    blocks
        .iter()
        .flat_map(|b| b.txdata.iter().map(|t| t.compute_txid().to_byte_array()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_ranges_index_like_write_batches() {
    let mut g = ChainGen::new(5, 20);
    let blocks = g.blocks(40);
    let txids = all_txids(&blocks);
    let d = tempfile::tempdir().unwrap();
    let f = write_blk_files(d.path(), &blocks, None, u64::MAX).unwrap();
    let (s1, s2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (bulk, plain) = (
        Store::open_for_bulk(s1.path()).unwrap(),
        Store::open(s2.path()).unwrap(),
    );
    let a = index_files_bulk(&bulk, f.clone(), None, None, 7, 0)
        .await
        .unwrap();
    let b = index_files_bulk(&plain, f.clone(), None, None, 7, usize::MAX)
        .await
        .unwrap();
    assert_eq!((a.stats, a.transfers), (b.stats, b.transfers));
    assert_eq!(a.stats.unresolved_inputs, 0);
    let c = bulk.chain_by_name("btc").unwrap().unwrap().id;
    assert!(all_transfers(&bulk, c).len() > 1000);
    assert_eq!(snapshot(&bulk, c, &txids), snapshot(&plain, c, &txids));
    assert!(bulk.bulk_markers().unwrap().is_empty());
    // The undo data written in bulk unwinds like the batch's.
    let (u1, u2) = (
        UtxoStore::open(&bulk).unwrap(),
        UtxoStore::open(&plain).unwrap(),
    );
    assert_eq!(
        u1.unwind(c, BlockNumber(17)).unwrap(),
        u2.unwind(c, BlockNumber(17)).unwrap()
    );
    assert_eq!(snapshot(&bulk, c, &txids), snapshot(&plain, c, &txids));
    // And a bulk resume after the unwind gives the batch's result again.
    index_files_bulk(&bulk, f.clone(), None, None, 9, 0)
        .await
        .unwrap();
    index_files_bulk(&plain, f, None, None, 9, usize::MAX)
        .await
        .unwrap();
    assert_eq!(snapshot(&bulk, c, &txids), snapshot(&plain, c, &txids));
}

/// A crash after any number of a bulk range's ingestions (simulated: the writer stops there
/// and the store is dropped) leaves, once the store is opened again, exactly the store before
/// the range; the resumed sync then ends like an uninterrupted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_bulk_range_is_discarded_on_open() {
    use crate::store::BulkStop;
    let mut g = ChainGen::new(11, 15);
    let blocks = g.blocks(30);
    let txids = all_txids(&blocks);
    let d = tempfile::tempdir().unwrap();
    let f = write_blk_files(d.path(), &blocks, None, u64::MAX).unwrap();
    // References: up to block 14, and the whole chain.
    let (r1, r2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (before, after) = {
        let s = Store::open(r1.path()).unwrap();
        index_files(&s, f.clone(), None, Some(14), 5).await.unwrap();
        let c = s.chain_by_name("btc").unwrap().unwrap().id;
        let s2 = Store::open(r2.path()).unwrap();
        index_files(&s2, f.clone(), None, None, 5).await.unwrap();
        (snapshot(&s, c, &txids), snapshot(&s2, c, &txids))
    };
    let idx = BlkIndex::scan(f.clone(), None).unwrap();
    let best = idx.best_chain(None, None).unwrap();
    let range = BlkSource::read_blocks(&idx, &best, 15, 24).unwrap();
    // In phase order: transfers, undo, addr_out, addr_in, tx_index, tx metadata, scripts,
    // UTXO set: 8 ingestions; 8 = all of them but not the checkpoint. (Each case builds a
    // store: the states between are left out to keep the test short.)
    for n in [0, 1, 2, 5, 8] {
        let dir = tempfile::tempdir().unwrap();
        let c = {
            let store = Store::open_for_bulk(dir.path()).unwrap();
            index_files(&store, f.clone(), None, Some(14), 15)
                .await
                .unwrap();
            let c = store.chain_by_name("btc").unwrap().unwrap().id;
            let u = UtxoStore::open(&store).unwrap();
            let p = u
                .prepare(c, &range, &std::collections::HashMap::new())
                .unwrap();
            store
                .write_bulk_steps(p.encode(&u).unwrap(), BulkStop::AfterIngestions(n))
                .unwrap();
            assert_eq!(store.bulk_markers().unwrap().len(), 1);
            // Past the checkpoint (14) once the transfers are ingested.
            let past = store
                .range_transfers(c, BlockNumber(15), BlockNumber(u64::MAX))
                .count();
            assert_eq!(past > 0, n > 0, "after {n} ingestions");
            c
        };
        let store = Store::open(dir.path()).unwrap();
        assert!(store.bulk_markers().unwrap().is_empty());
        // The store discarded its own part; the UTXO side waits for the Bitcoin store (opening
        // the store runs no Bitcoin code), which restores it when it opens.
        assert!(store.pending_bulk_undo(c).unwrap().is_some());
        drop(UtxoStore::open(&store).unwrap());
        assert!(store.pending_bulk_undo(c).unwrap().is_none());
        assert_eq!(
            snapshot(&store, c, &txids),
            before,
            "crash after {n} ingestions"
        );
        index_files(&store, f.clone(), None, None, 15)
            .await
            .unwrap();
        assert_eq!(
            snapshot(&store, c, &txids),
            after,
            "resume after {n} ingestions"
        );
    }
}

/// [`index_files`] through a given [`UtxoStore`] (and so its in-memory UTXO cache).
async fn index_with(
    utxo: &UtxoStore,
    files: Vec<PathBuf>,
    to: Option<u64>,
    per_commit: u64,
) -> super::BtcSummary {
    let store = utxo.store();
    let chain = store.register_chain("btc", ChainKind::Bitcoin).unwrap();
    let idx = BlkIndex::scan(files, None).unwrap();
    let known = store.checkpoint(chain).unwrap().map(|c| {
        let mut h = c.hash.0;
        h.reverse();
        (h, c.number.0)
    });
    let best = idx.best_chain(known, None).unwrap();
    let sync = BtcSync::new(
        utxo.clone(),
        BlkSource::new(idx, best),
        chain,
        "btc",
        opts(per_commit),
        StopSignal::new(),
    );
    sync.index(None, to, &|_| {}).await.unwrap()
}

/// The UTXO cache (evicting, kept across an unwind by the same or another `UtxoStore`) gives
/// the store a sync without the cache gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utxo_cache_matches_the_store_across_unwinds_and_eviction() {
    let mut g = ChainGen::new(5, 15);
    let blocks = g.blocks(40);
    let d = tempfile::tempdir().unwrap();
    let f = write_blk_files(d.path(), &blocks, None, u64::MAX).unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    let reference = UtxoStore::open(&Store::open(reference_dir.path()).unwrap())
        .unwrap()
        .with_utxo_cache(0);
    let want = index_with(&reference, f.clone(), None, 5).await;
    let c = reference.store().chain_by_name("btc").unwrap().unwrap().id;
    for max in [usize::MAX, 40, 7] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let utxo = UtxoStore::open(&store).unwrap().with_utxo_cache(max);
        index_with(&utxo, f.clone(), Some(29), 4).await;
        // Unwound by this UtxoStore (the cache is cleared) ...
        utxo.unwind(c, BlockNumber(17)).unwrap();
        index_with(&utxo, f.clone(), Some(33), 3).await;
        // ... and by another one (the cache's tip no longer matches the next range).
        UtxoStore::open(&store)
            .unwrap()
            .unwind(c, BlockNumber(25))
            .unwrap();
        let got = index_with(&utxo, f.clone(), None, 4).await;
        assert_eq!(got.checkpoint, want.checkpoint);
        assert_eq!(got.stats.unresolved_inputs, 0, "cache {max}");
        assert_eq!(
            utxo.utxo_set(c).unwrap(),
            reference.utxo_set(c).unwrap(),
            "cache {max}"
        );
        assert_eq!(
            all_transfers(&store, c),
            all_transfers(reference.store(), c),
            "cache {max}"
        );
        assert_eq!(
            store.counters(c).unwrap(),
            reference.store().counters(c).unwrap()
        );
    }
}

/// A stage counting its runs (and failing when asked), to see the pipeline's order and
/// that a failed stage stops neither the sync nor the stages after it.
struct Counting {
    runs: std::sync::Arc<std::sync::atomic::AtomicU64>,
    fail: bool,
}

impl crate::stage::Stage for Counting {
    fn id(&self) -> &'static str {
        "counting"
    }

    fn progress(
        &self,
        _store: &Store,
        _chain: ChainId,
    ) -> Result<Option<BlockNumber>, crate::StoreError> {
        Ok(None)
    }

    fn execute(
        &self,
        _store: &Store,
        _chain: ChainId,
        _name: &str,
    ) -> Result<(), crate::StoreError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail {
            return Err(crate::StoreError::Corrupt {
                keyspace: "meta",
                key: "counting stage".into(),
                reason: "asked to fail".into(),
            });
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_runs_its_stages_after_each_commit_and_matches_a_build() {
    use crate::stage::{BalanceStage, Pipeline};
    use std::sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    };
    const INTERVAL: u64 = 4;
    // Staged: the balance stage after every commit, between a failing and a counting stage.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let chain = store.register_chain("btc", ChainKind::Bitcoin).unwrap();
    let idx = BlkIndex::scan(vec![BLOCKS.into()], None).unwrap();
    let best = idx.best_chain(None, None).unwrap();
    let (failed, after) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let pipeline = Pipeline::new()
        .with_stage(Counting {
            runs: Arc::clone(&failed),
            fail: true,
        })
        .with_stage(BalanceStage { interval: INTERVAL })
        .with_stage(Counting {
            runs: Arc::clone(&after),
            fail: false,
        });
    assert_eq!(pipeline.ids(), ["counting", "balances", "counting"]);
    let sync = BtcSync::new(
        UtxoStore::open(&store).unwrap(),
        BlkSource::new(idx, best),
        chain,
        "btc",
        opts(50),
        StopSignal::new(),
    )
    .with_pipeline(pipeline);
    let commits = AtomicU64::new(0);
    let s = sync
        .index(None, None, &|_| {
            commits.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    let commits = commits.load(Ordering::SeqCst);
    assert!(commits >= 5, "blocks 0..=255 by 50: {commits} commits");
    assert_eq!(failed.load(Ordering::SeqCst), commits);
    assert_eq!(
        after.load(Ordering::SeqCst),
        commits,
        "a failed stage stops no other"
    );
    assert_eq!(
        store.balances_progress(chain).unwrap(),
        s.checkpoint.map(BlockNumber),
        "the balance stage keeps pace with the checkpoint"
    );
    // Reference: the same blocks without stages, checkpoints built once at the end.
    let dir2 = tempfile::tempdir().unwrap();
    let reference = Store::open(dir2.path()).unwrap();
    index_files(&reference, vec![BLOCKS.into()], None, None, 50)
        .await
        .unwrap();
    reference.build_balances(Some(chain), INTERVAL).unwrap();
    let end = crate::TransferKey {
        chain,
        block: BlockNumber(u64::MAX),
        tx_index: u32::MAX,
        kind: TransferKind::Utxo,
        position: u32::MAX,
    };
    let mut addresses: Vec<Address> = all_transfers(&store, chain)
        .into_iter()
        .flat_map(|t| [t.from, t.to])
        .collect();
    addresses.sort();
    addresses.dedup();
    let mut with_checkpoints = 0;
    for a in &addresses {
        let got = store.balance_checkpoint(a, Some(chain), &end).unwrap();
        with_checkpoints += usize::from(got.is_some());
        assert_eq!(
            got,
            reference.balance_checkpoint(a, Some(chain), &end).unwrap(),
            "{a:?}"
        );
    }
    assert!(with_checkpoints > 0, "some address has a checkpoint");
}
