//! Property tests: conservation, tainted-out <= tainted-in, poison reaches a superset of
//! haircut, and equality with a naive whole-graph reference simulation.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use paytrace_indexer::{Address, Amount, Asset, Transfer, TransferKind};
use paytrace_tracer::{
    model::{Carry, Holding},
    *,
};
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};

const N: Asset = Asset::Native;

/// Random graphs over 6 addresses; transfer 0 is the seed (from address 1).
fn graph() -> impl Strategy<Value = Vec<Transfer>> {
    prop::collection::vec((1u64..8, 0u32..3, 1u8..7, 1u8..7, 1u64..100), 1..40).prop_map(|v| {
        let mut seen = BTreeSet::new();
        let mut out = vec![tr(0, 0, 1, 2, 50)];
        for (i, (block, tx, from, to, amount)) in v.into_iter().enumerate() {
            let pos = u32::try_from(i).unwrap();
            if seen.insert((block, tx, pos)) {
                out.push(trk(
                    block,
                    tx,
                    TransferKind::Internal,
                    pos,
                    from,
                    to,
                    amount,
                ));
            }
        }
        out
    })
}

fn run(ts: &[Transfer], model: Model) -> TraceResult {
    let g = MemoryGraph::from_transfers(ts.to_vec());
    let p = TraceParams {
        model,
        max_hops: 100,
        ..TraceParams::default()
    };
    trace_forward(
        &g,
        &MemoryLabels::new(),
        &Seed::Transfers(vec![ts[0].key]),
        &p,
    )
    .unwrap()
}

/// Every address tracks its state from the start; the seed is tainted at its receiver.
fn reference(ts: &[Transfer], model: Model) -> HashMap<Address, (Amount, Amount)> {
    let mut sorted = ts.to_vec();
    sorted.sort_by_key(|t| t.key);
    let mut st: HashMap<Address, Holding> = HashMap::new();
    let mut recv: HashMap<Address, Amount> = HashMap::new();
    for t in &sorted {
        let carry = if t.key == ts[0].key {
            st.entry(t.from)
                .or_insert_with(|| Holding::new(model))
                .debit(t.amount)
                .unwrap();
            Carry::full(t.amount)
        } else {
            st.entry(t.from)
                .or_insert_with(|| Holding::new(model))
                .debit(t.amount)
                .unwrap()
                .carry
        };
        if !carry.tainted.is_zero() {
            let r = recv.entry(t.to).or_default();
            *r = r.checked_add(carry.tainted).unwrap();
        }
        st.entry(t.to)
            .or_insert_with(|| Holding::new(model))
            .credit(t.amount, &carry)
            .unwrap();
    }
    recv.into_iter()
        .map(|(a, r)| (a, (r, st[&a].tainted().unwrap())))
        .collect()
}

fn sum_totals(r: &TraceResult) -> Amount {
    r.totals_by_category
        .values()
        .filter_map(|m| m.get("native"))
        .fold(Amount::ZERO, |a, b| a.checked_add(*b).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn conserving_models_add_up(ts in graph()) {
        for model in [Model::Haircut, Model::Fifo, Model::Lifo] {
            let r = run(&ts, model);
            prop_assert_eq!(sum_totals(&r), amt(50), "{}", model);
            for d in &r.destinations {
                prop_assert!(d.held <= d.amount);
            }
        }
    }

    #[test]
    fn tainted_out_never_exceeds_tainted_in(ts in graph()) {
        for model in [Model::Haircut, Model::Fifo, Model::Lifo] {
            let r = run(&ts, model);
            let mut inflow: HashMap<Address, Amount> = HashMap::new();
            let mut outflow: HashMap<Address, Amount> = HashMap::new();
            for e in &r.edges {
                prop_assert!(e.tainted <= e.amount);
                let i = inflow.entry(e.to).or_default();
                *i = i.checked_add(e.tainted).unwrap();
                let o = outflow.entry(e.from).or_default();
                *o = o.checked_add(e.tainted).unwrap();
            }
            for (a, o) in outflow {
                if a == addr(1) { continue; } // the seed sender
                prop_assert!(o <= inflow.get(&a).copied().unwrap_or_default(), "{} {}", model, a);
            }
        }
    }

    #[test]
    fn poison_reaches_a_superset(ts in graph()) {
        let reached = |r: &TraceResult| -> BTreeSet<Address> {
            r.destinations.iter().map(|d| d.address).collect()
        };
        let p = reached(&run(&ts, Model::Poison));
        for model in [Model::Haircut, Model::Fifo, Model::Lifo] {
            let h = reached(&run(&ts, model));
            prop_assert!(h.is_subset(&p), "{}: {:?} not within {:?}", model, h, p);
        }
    }

    #[test]
    fn lazy_engine_equals_whole_graph_reference(ts in graph()) {
        for model in [Model::Haircut, Model::Fifo, Model::Lifo, Model::Poison] {
            let r = run(&ts, model);
            let reference = reference(&ts, model);
            for (a, (recv, held)) in &reference {
                let d = r.destination(a, &N);
                prop_assert_eq!(d.map(|d| d.amount), Some(*recv), "{} {}", model, a);
                prop_assert_eq!(d.map(|d| d.held), Some(*held), "{} {}", model, a);
            }
            prop_assert_eq!(r.destinations.len(), reference.len());
        }
    }

    #[test]
    fn backward_of_a_forward_destination_finds_the_seed(ts in graph()) {
        // Backward from every transfer: attributed value never exceeds the transfer.
        for model in [Model::Haircut, Model::Fifo, Model::Lifo] {
            let g = MemoryGraph::from_transfers(ts.clone());
            for t in &ts {
                let p = TraceParams { model, max_hops: 100, ..TraceParams::default() };
                let r = trace_backward(&g, &MemoryLabels::new(), &BackSeed::Transfer(t.key), &p).unwrap();
                prop_assert_eq!(sum_totals(&r), t.amount, "{}", model);
            }
        }
    }
}
