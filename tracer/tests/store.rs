//! The same algorithms on the fjall store give the same answers as on the in-memory graph.
#![allow(clippy::unwrap_used)]

mod common;

use alloy_primitives::B256;
use common::*;
use paytrace_indexer::{BlockNumber, BlockRef, ChainKind, Store, Timestamp, Transfer};
use paytrace_tracer::*;

fn graph() -> Vec<Transfer> {
    vec![
        tr(1, 0, 9, 2, 20),
        tr(2, 0, 1, 2, 10), // seed
        tr(3, 0, 2, 3, 7),
        tr(3, 1, 2, 50, 5),
        tr(4, 0, 3, 4, 9),
        tr(5, 0, 4, 2, 3),
        tr(6, 0, 2, 5, 11),
    ]
}

fn store_with(ts: &[Transfer]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let c = s.register_chain("dev", ChainKind::Evm).unwrap();
    assert_eq!(c, ts[0].key.chain);
    let blocks: Vec<BlockRef> = (1..=6u8)
        .map(|n| BlockRef {
            number: BlockNumber(u64::from(n)),
            hash: B256::repeat_byte(n),
            parent: B256::repeat_byte(n - 1),
            time: Timestamp(u64::from(n) * 10),
        })
        .collect();
    s.write_range(c, &blocks, ts).unwrap();
    (dir, s)
}

#[test]
fn store_and_memory_agree() {
    let ts = graph();
    let (_dir, store) = store_with(&ts);
    let mem = MemoryGraph::from_transfers(ts.clone());
    let mut labels = MemoryLabels::new();
    labels.insert(addr(50), "exchange");
    for model in [Model::Poison, Model::Haircut, Model::Fifo, Model::Lifo] {
        let p = TraceParams {
            model,
            ..TraceParams::default()
        };
        let seed = Seed::Transfers(vec![ts[1].key]);
        let a = trace_forward(&store, &labels, &seed, &p).unwrap();
        let b = trace_forward(&mem, &labels, &seed, &p).unwrap();
        assert_eq!(
            serde_json::to_value(&a.destinations).unwrap(),
            serde_json::to_value(&b.destinations).unwrap()
        );
        assert_eq!(a.totals_by_category, b.totals_by_category);
        assert_eq!(a.parameters.checkpoints.get(&1), Some(&BlockNumber(6)));
        let back = BackSeed::Transfer(ts[6].key);
        let a = trace_backward(&store, &labels, &back, &p).unwrap();
        let b = trace_backward(&mem, &labels, &back, &p).unwrap();
        assert_eq!(a.totals_by_category, b.totals_by_category);
    }
    // The JSON has the documented keys.
    let r = trace_forward(
        &store,
        &labels,
        &Seed::Transfers(vec![ts[1].key]),
        &TraceParams::default(),
    )
    .unwrap();
    let j = serde_json::to_value(&r).unwrap();
    for k in [
        "model",
        "seed",
        "destinations",
        "totals_by_category",
        "paths",
    ] {
        assert!(j.get(k).is_some(), "{k}");
    }
    let d = &j["destinations"][0];
    for k in ["address", "labels", "asset", "amount", "hops"] {
        assert!(d.get(k).is_some(), "{k}");
    }
    assert!(d["amount"].is_string());
    // haircut by hand: A 30 (10 tainted); A->B 7: floor(70/30)=2; A->X 5: floor(5*8/23)=1 exits;
    // B 7 (2) -> C 9 (clamped: all 2); C -> A 3: floor(3*2/9)... C has 9 (2): 0 back to A.
    assert_eq!(
        r.total("exchange", &paytrace_indexer::Asset::Native),
        amt(1)
    );
    // tx-hash lookup through the store
    let found = store.tx_transfers(&ts[1].tx_hash, None, None).unwrap();
    assert_eq!(found.len(), 1);
}
