//! Balance checkpoints never change a result: on random multi-chain, multi-asset histories
//! with clamps (addresses that send more than they received), for every model, forward and
//! backward, with and without `until`, chain restriction, minimum amount and stop labels, a
//! trace over a source with checkpoints every K entries (K = 1, 2, 3, 64) equals the trace
//! without; and the store's balance stage (full build, incremental update, unwind) gives the
//! same answers as the in-memory graph.
#![allow(clippy::unwrap_used)]

mod common;

use alloy_primitives::B256;
use common::*;
use paytrace_indexer::{
    Address, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind,
};
use paytrace_tracer::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

const MODELS: [Model; 5] = [
    Model::Poison,
    Model::Haircut,
    Model::Fifo,
    Model::Lifo,
    Model::Tiho,
];

/// Random transfers over addresses 1..=7 on chains 1 and 2, two assets, times not monotone.
fn graph() -> impl Strategy<Value = Vec<Transfer>> {
    prop::collection::vec(
        (
            1u16..3,
            1u64..9,
            0u32..3,
            1u8..8,
            1u8..8,
            any::<bool>(),
            1u64..100,
            0u64..100,
        ),
        1..80,
    )
    .prop_map(|v| {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, (chain, block, tx, from, to, token, amount, time)) in v.into_iter().enumerate() {
            let pos = u32::try_from(i).unwrap();
            let mut t = trk(block, tx, TransferKind::Token, pos, from, to, amount);
            t.key.chain = ChainId(chain);
            t.time = Timestamp(time);
            if token {
                t.asset = Asset::Token(addr(200));
            }
            if seen.insert(t.key) {
                out.push(t);
            }
        }
        out
    })
}

#[derive(Clone, Debug)]
struct Case {
    model: Model,
    hops: u32,
    until: Option<u64>,
    min: u64,
    chain: Option<u16>,
    exchange: bool,
    seed: usize,
    outflows: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0usize..5,
        1u32..5,
        prop::option::of(0u64..100),
        prop_oneof![Just(0u64), 1u64..40],
        prop::option::of(1u16..3),
        any::<bool>(),
        any::<usize>(),
        any::<bool>(),
    )
        .prop_map(
            |(m, hops, until, min, chain, exchange, seed, outflows)| Case {
                model: MODELS[m],
                hops,
                until,
                min,
                chain,
                exchange,
                seed,
                outflows,
            },
        )
}

fn params(c: &Case) -> TraceParams {
    TraceParams {
        model: c.model,
        max_hops: c.hops,
        until: c.until.map(Timestamp),
        min_amount: amt(c.min),
        chain: c.chain.map(ChainId),
        ..TraceParams::default()
    }
}

fn labels(c: &Case) -> MemoryLabels {
    let mut l = MemoryLabels::new();
    if c.exchange {
        l.insert(addr(7), "exchange");
    }
    l
}

/// The result without its work counters (they differ by design).
fn comparable(r: Result<TraceResult, TraceError>) -> String {
    match r {
        Ok(r) => {
            let mut v = serde_json::to_value(&r).unwrap();
            if let Some(o) = v.as_object_mut() {
                o.remove("stats");
                // The store records its indexed heights, the graph its last blocks.
                if let Some(p) = o.get_mut("parameters").and_then(|p| p.as_object_mut()) {
                    p.remove("checkpoints");
                }
            }
            v.to_string()
        }
        Err(e) => format!("error: {e}"),
    }
}

fn forward<S: FlowSource>(src: &S, ts: &[Transfer], c: &Case) -> String {
    let t = &ts[c.seed % ts.len()];
    let seed = if c.outflows {
        Seed::Outflows(t.from)
    } else {
        Seed::Transfers(vec![t.key])
    };
    comparable(trace_forward(src, &labels(c), &seed, &params(c)))
}

fn backward<S: FlowSource>(src: &S, ts: &[Transfer], c: &Case) -> String {
    let t = &ts[c.seed % ts.len()];
    let seed = if c.outflows {
        BackSeed::Address(t.to)
    } else {
        BackSeed::Transfer(t.key)
    };
    comparable(trace_backward(src, &labels(c), &seed, &params(c)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn checkpoints_never_change_a_trace(ts in graph(), c in case()) {
        let g = MemoryGraph::from_transfers(ts.clone());
        let want_f = forward(&g, &ts, &c);
        let want_b = backward(&g, &ts, &c);
        for k in [1, 2, 3, 64] {
            let cp = Checkpointed::new(&g, k);
            prop_assert_eq!(&forward(&cp, &ts, &c), &want_f, "forward, K = {}", k);
            prop_assert_eq!(&backward(&cp, &ts, &c), &want_b, "backward, K = {}", k);
        }
    }
}

/// Writes `ts` into a fresh store (chains 1 and 2, blocks 1..=8 each).
fn store_with(ts: &[Transfer], upto: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.register_chain("a", ChainKind::Evm).unwrap(), ChainId(1));
    assert_eq!(s.register_chain("b", ChainKind::Evm).unwrap(), ChainId(2));
    for c in [ChainId(1), ChainId(2)] {
        write_blocks(&s, c, ts, 1, upto);
    }
    (dir, s)
}

fn block_ref(c: ChainId, n: u64) -> BlockRef {
    let salt = u8::try_from(c.0).unwrap();
    BlockRef {
        number: BlockNumber(n),
        hash: B256::repeat_byte(u8::try_from(n).unwrap().wrapping_add(salt * 16)),
        parent: B256::repeat_byte(u8::try_from(n - 1).unwrap().wrapping_add(salt * 16)),
        time: Timestamp(n * 10),
    }
}

fn write_blocks(s: &Store, c: ChainId, ts: &[Transfer], from: u64, to: u64) {
    if from > to {
        return;
    }
    let blocks: Vec<BlockRef> = (from..=to).map(|n| block_ref(c, n)).collect();
    let mine: Vec<Transfer> = ts
        .iter()
        .filter(|t| t.key.chain == c && (from..=to).contains(&t.key.block.0))
        .cloned()
        .collect();
    s.write_range(c, &blocks, &mine).unwrap();
}

/// Every checkpoint of every address of `ts` in the store equals the in-memory computation.
fn assert_checkpoints_exact(s: &Store, ts: &[Transfer], k: u64, upto: u64) {
    let addrs: BTreeSet<Address> = ts.iter().flat_map(|t| [t.from, t.to]).collect();
    for a in addrs {
        for c in [ChainId(1), ChainId(2)] {
            let mut hist: Vec<Transfer> = ts
                .iter()
                .filter(|t| (t.from == a || t.to == a) && t.key.chain == c && t.key.block.0 <= upto)
                .cloned()
                .collect();
            hist.sort_by_key(|t| t.key);
            let want = paytrace_indexer::balance_checkpoints(&a, &hist, k);
            for t in &hist {
                let got = s.balance_checkpoint(&a, Some(c), &t.key).unwrap();
                let exp = want.iter().take_while(|x| x.at <= t.key).last().cloned();
                assert_eq!(got, exp, "{a} at {:?}", t.key);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn store_stage_equals_memory(ts in graph(), cs in prop::collection::vec(case(), 6), k in 1u64..4) {
        let g = MemoryGraph::from_transfers(ts.clone());
        // Build on blocks 1..=5, then index 6..=8 and update incrementally.
        let (_d, s) = store_with(&ts, 5);
        s.build_balances(None, k).unwrap();
        for c in [ChainId(1), ChainId(2)] {
            write_blocks(&s, c, &ts, 6, 8);
            s.update_balances(c, k).unwrap();
            prop_assert_eq!(s.balances_progress(c).unwrap(), Some(BlockNumber(8)));
        }
        assert_checkpoints_exact(&s, &ts, k, 8);
        for c in &cs {
            prop_assert_eq!(forward(&s, &ts, c), forward(&g, &ts, c));
            prop_assert_eq!(backward(&s, &ts, c), backward(&g, &ts, c));
        }
        // Unwind chain 1 to block 3: its checkpoints past block 3 go, the rest stay exact;
        // re-index and update: exact again.
        // The pipeline's unwind: the blocks and the balance stage's output, in one batch.
        paytrace_indexer::stage::Pipeline::unwinding()
            .unwind(&s, ChainId(1), BlockNumber(3))
            .unwrap();
        prop_assert_eq!(s.balances_progress(ChainId(1)).unwrap(), Some(BlockNumber(3)));
        let kept: Vec<Transfer> = ts
            .iter()
            .filter(|t| t.key.chain != ChainId(1) || t.key.block.0 <= 3)
            .cloned()
            .collect();
        assert_checkpoints_exact(&s, &kept, k, 8);
        write_blocks(&s, ChainId(1), &ts, 4, 8);
        s.update_balances(ChainId(1), k).unwrap();
        assert_checkpoints_exact(&s, &ts, k, 8);
        for c in &cs {
            prop_assert_eq!(forward(&s, &ts, c), forward(&g, &ts, c));
        }
    }
}

#[test]
fn sparse_writes_invalidate_later_checkpoints() {
    // Address 2 receives 10 transfers on chain 1 (blocks 1..=8); a checkpoint every 2 entries.
    let ts: Vec<Transfer> = (0..10u32)
        .map(|i| {
            let mut t = trk(u64::from(i % 8) + 1, i, TransferKind::Token, i, 1, 2, 5);
            t.time = Timestamp(u64::from(i));
            t
        })
        .collect();
    let (_d, s) = store_with(&ts, 8);
    let st = s.build_balances(Some(ChainId(1)), 2).unwrap();
    assert_eq!(st.checkpoints, 4 + 4);
    let a = addr(2);
    let last = |s: &Store| {
        s.balance_checkpoint(
            &a,
            Some(ChainId(1)),
            &TransferKey {
                chain: ChainId(1),
                block: BlockNumber(9),
                tx_index: 0,
                kind: TransferKind::Native,
                position: 0,
            },
        )
        .unwrap()
    };
    let before = last(&s).unwrap();
    assert_eq!(before.balances, vec![(Asset::Native, amt(40))]);
    // A sparse insert in block 3 drops address 2's checkpoints after it (and address 9's).
    let mut extra = trk(3, 99, TransferKind::Token, 99, 9, 2, 1000);
    extra.asset = Asset::Token(addr(200));
    assert_eq!(
        s.write_sparse(ChainId(1), &[extra.clone()], Vec::new())
            .unwrap(),
        1
    );
    let after = last(&s).unwrap();
    assert!(after.at < extra.key, "{after:?}");
    // Traces agree with the in-memory graph after the insert.
    let mut all = ts.clone();
    all.push(extra);
    let g = MemoryGraph::from_transfers(all.clone());
    for model in MODELS {
        let c = Case {
            model,
            hops: 3,
            until: None,
            min: 0,
            chain: None,
            exchange: false,
            seed: 0,
            outflows: true,
        };
        assert_eq!(forward(&s, &all, &c), forward(&g, &all, &c));
    }
    // A full rebuild restores them.
    s.build_balances(Some(ChainId(1)), 2).unwrap();
    assert!(last(&s).unwrap().at > after.at);
}
