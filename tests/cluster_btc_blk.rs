//! End-to-end: `paytrace index btc --blk-file` on real mainnet blocks 1–255, then
//! `paytrace cluster run`: the early chain has no multi-input transaction (every one of its 7
//! spends has one input), so no address is merged and no CoinJoin is flagged; a second run has
//! nothing to do.

#![allow(clippy::unwrap_used)] // tests

mod common;

use common::{paytrace, run_json};
use serde_json::Value;

const BLOCKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/btc/blocks1-256.dat"
);

#[test]
fn blocks_1_255_indexed_then_clustered() {
    let dir = tempfile::tempdir().unwrap();
    run_json(paytrace(dir.path()).args(["--json", "index", "btc", "--blk-file", BLOCKS]));
    let r = run_json(paytrace(dir.path()).args(["--json", "cluster", "run"]));
    let run = &r["runs"][0];
    assert_eq!(run["chain"], "bitcoin", "{r}");
    assert_eq!(run["to"].as_u64(), Some(255), "{r}");
    assert_eq!(run["stats"]["utxo_txs"].as_u64(), Some(262), "{r}");
    assert_eq!(run["stats"]["merges"].as_u64(), Some(0), "{r}");
    assert_eq!(run["stats"]["coinjoins"].as_u64(), Some(0), "{r}");
    // The payer of block 170 is a cluster of its own.
    let v = run_json(paytrace(dir.path()).args([
        "--json",
        "cluster",
        "show",
        "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S",
    ]));
    assert_eq!(v["cluster"], Value::Null);
    assert_eq!(v["size"].as_u64(), Some(1));
    let again = run_json(paytrace(dir.path()).args(["--json", "cluster", "run"]));
    assert_eq!(again["runs"][0]["from"], Value::Null, "{again}");
    // The change heuristics see the script types the Bitcoin indexer stored (P2PK outputs in
    // their P2PKH form).
    use paytrace_indexer::labels::LabelAddress;
    use paytrace_tracer::cluster::{ClusterSource, ScriptType, script_type_of};
    let store = paytrace_indexer::Store::open(dir.path()).unwrap();
    let payee = LabelAddress::parse("1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3", None)
        .unwrap()
        .indexed()
        .unwrap();
    let script = store.script(&payee).unwrap().unwrap();
    assert_eq!(script_type_of(&script), ScriptType::P2pkh);
    assert_eq!(
        store
            .script(&paytrace_indexer::Address::Evm([1; 20]))
            .unwrap(),
        None
    );
}

/// Generated chain (the Bitcoin indexer's generator: 1–3 inputs per transaction) written as
/// blk files: indexing and clustering in two steps gives the same clusters as indexing and
/// clustering once, and those clusters are the input groups of the chain merged naively.
#[test]
fn generated_chain_clustered_in_steps_equals_once_and_the_reference() {
    use paytrace_indexer::{
        Address, BlockNumber, Store,
        btc::generate::{ChainGen, write_blk_files},
    };
    use std::collections::{BTreeMap, BTreeSet};
    let blocks = ChainGen::new(7, 20).blocks(80);
    let tmp = tempfile::tempdir().unwrap();
    let files = write_blk_files(&tmp.path().join("blocks"), &blocks, None, 1 << 30).unwrap();
    let file = files[0].to_str().unwrap().to_owned();
    let steps = tmp.path().join("steps");
    let once = tmp.path().join("once");
    run_json(paytrace(&steps).args(["--json", "index", "btc", "--blk-file", &file, "--to", "39"]));
    run_json(paytrace(&steps).args(["--json", "cluster", "run"]));
    run_json(paytrace(&steps).args(["--json", "index", "btc", "--blk-file", &file]));
    let r = run_json(paytrace(&steps).args(["--json", "cluster", "run"]));
    assert_eq!(r["runs"][0]["from"].as_u64(), Some(40), "{r}");
    run_json(paytrace(&once).args(["--json", "index", "btc", "--blk-file", &file]));
    run_json(paytrace(&once).args(["--json", "cluster", "run"]));

    // Reference: the input addresses of each transaction, merged naively.
    let store = Store::open(&once).unwrap();
    let c = store.chain_by_name("bitcoin").unwrap().unwrap().id;
    let mut groups: BTreeMap<(u64, u32), BTreeSet<Address>> = BTreeMap::new();
    let mut all = BTreeSet::new();
    for t in store.range_transfers(c, BlockNumber(0), BlockNumber(u64::MAX)) {
        let t = t.unwrap();
        if t.to.is_tx() && t.key.tx_index > 0 {
            groups
                .entry((t.key.block.0, t.key.tx_index))
                .or_default()
                .insert(t.from);
            all.insert(t.from);
        }
    }
    drop(store);
    let mut sets: Vec<BTreeSet<Address>> = groups.into_values().filter(|g| g.len() > 1).collect();
    loop {
        let mut merged = false;
        'o: for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                if !sets[i].is_disjoint(&sets[j]) {
                    let o = sets.remove(j);
                    sets[i].extend(o);
                    merged = true;
                    break 'o;
                }
            }
        }
        if !merged {
            break;
        }
    }
    assert!(
        !sets.is_empty(),
        "the generated chain has multi-input transactions"
    );
    // read back through the library API (one process per address would be slow)
    let partition = |data: &std::path::Path| {
        let store = Store::open(data).unwrap();
        let cs = paytrace_app::clusters::ClusterStore::open(&store).unwrap();
        let mut by: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for a in &all {
            if let Some(id) = cs.cluster_of(a).unwrap() {
                by.entry(id.0).or_default().insert(a.to_string());
            }
        }
        by.into_values()
            .filter(|s| s.len() > 1)
            .collect::<BTreeSet<_>>()
    };
    let expected: BTreeSet<BTreeSet<String>> = sets
        .into_iter()
        .map(|s| s.into_iter().map(|a| a.to_string()).collect())
        .collect();
    assert_eq!(partition(&steps), expected);
    assert_eq!(partition(&once), expected);
}
