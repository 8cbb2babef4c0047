//! Forward traces on hand-built graphs; every expected number is computed by hand in the
//! comments.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use paytrace_indexer::{Amount, Asset, TransferKind};
use paytrace_tracer::*;

const N: Asset = Asset::Native;

fn run(ts: Vec<paytrace_indexer::Transfer>, seed: usize, model: Model) -> TraceResult {
    run_with(
        ts,
        seed,
        model,
        &MemoryLabels::new(),
        TraceParams::default(),
    )
}

fn run_with(
    ts: Vec<paytrace_indexer::Transfer>,
    seed: usize,
    model: Model,
    labels: &MemoryLabels,
    mut p: TraceParams,
) -> TraceResult {
    let key = ts[seed].key;
    let g = MemoryGraph::from_transfers(ts);
    p.model = model;
    trace_forward(&g, labels, &Seed::Transfers(vec![key]), &p).unwrap()
}

fn amount_at(r: &TraceResult, a: u8) -> Amount {
    r.destination(&addr(a), &N)
        .map(|d| d.amount)
        .unwrap_or_default()
}

fn held_at(r: &TraceResult, a: u8) -> Amount {
    r.destination(&addr(a), &N)
        .map(|d| d.held)
        .unwrap_or_default()
}

/// Addresses: 1 = payer P, 2 = payee A, 3.. others, 9 = outside funder.
#[test]
fn haircut_rounds_down_and_conserves() {
    let ts = vec![
        tr(1, 0, 9, 2, 20), // A: 20 clean
        tr(2, 0, 1, 2, 10), // seed: A 30, 10 tainted
        tr(3, 0, 2, 3, 7),  // floor(7*10/30) = 2 -> B; A 23, 8 tainted
        tr(4, 0, 2, 4, 23), // all the rest: 8 -> C
    ];
    let r = run(ts, 1, Model::Haircut);
    assert_eq!(amount_at(&r, 2), amt(10));
    assert_eq!(held_at(&r, 2), amt(0));
    assert_eq!(amount_at(&r, 3), amt(2));
    assert_eq!(amount_at(&r, 4), amt(8));
    assert_eq!(r.destination(&addr(3), &N).unwrap().hops, 1);
    assert_eq!(r.total("unattributed", &N), amt(10));
    assert_eq!(r.total("still_at_payee", &N), amt(0));
    assert!(!r.incomplete_history);
}

#[test]
fn fifo_and_lifo_split_lots() {
    let ts = vec![
        tr(1, 0, 9, 2, 5), // clean lot 5
        tr(2, 0, 1, 2, 3), // seed: tainted lot 3
        tr(3, 0, 9, 2, 4), // clean lot 4
        tr(4, 0, 2, 3, 6), // FIFO: 5 clean + 1 tainted; LIFO: 4 clean + 2 tainted
        tr(5, 0, 2, 4, 4), // FIFO: 2 tainted + 2 clean; LIFO: 1 tainted + 3 clean
    ];
    let f = run(ts.clone(), 1, Model::Fifo);
    assert_eq!((amount_at(&f, 3), amount_at(&f, 4)), (amt(1), amt(2)));
    let l = run(ts, 1, Model::Lifo);
    assert_eq!((amount_at(&l, 3), amount_at(&l, 4)), (amt(2), amt(1)));
    assert_eq!(held_at(&l, 2), amt(0));
    assert_eq!(l.total("unattributed", &N), amt(3));
}

#[test]
fn fifo_lot_order_survives_a_hop() {
    // B receives a mixed transfer (1 clean then 2 tainted units, in A's queue order) and
    // forwards its oldest 1 unit first under FIFO: clean.
    let ts = vec![
        tr(1, 0, 9, 2, 1), // A: clean 1
        tr(2, 0, 1, 2, 2), // seed: A tainted 2
        tr(3, 0, 2, 3, 3), // B gets [1 clean, 2 tainted]
        tr(4, 0, 3, 4, 1), // C gets the clean unit
        tr(5, 0, 3, 5, 2), // D gets the 2 tainted
    ];
    let f = run(ts, 1, Model::Fifo);
    assert_eq!(amount_at(&f, 3), amt(2));
    assert_eq!(amount_at(&f, 4), amt(0));
    assert_eq!(amount_at(&f, 5), amt(2));
    assert_eq!(f.destination(&addr(5), &N).unwrap().hops, 2);
}

#[test]
fn poison_taints_everything_after_and_reaches_more_than_haircut() {
    let ts = vec![
        tr(1, 0, 9, 2, 100), // A: 100 clean
        tr(1, 1, 2, 6, 10),  // before the seed: clean
        tr(2, 0, 1, 2, 1),   // seed: 1 tainted; A 91
        tr(3, 0, 2, 3, 50),  // poison: 50; haircut floor(50*1/91) = 0
        tr(4, 0, 3, 4, 20),  // poison: 20
    ];
    let p = run(ts.clone(), 2, Model::Poison);
    assert_eq!(amount_at(&p, 6), amt(0));
    assert_eq!(amount_at(&p, 3), amt(50));
    assert_eq!(amount_at(&p, 4), amt(20));
    let h = run(ts, 2, Model::Haircut);
    assert_eq!(h.destination(&addr(3), &N).map(|d| d.amount), None);
    assert_eq!(held_at(&h, 2), amt(1));
    assert_eq!(h.total("still_at_payee", &N), amt(1));
}

#[test]
fn address_that_receives_after_it_sends() {
    let ts = vec![
        tr(1, 0, 9, 3, 10), // B: 10 clean
        tr(2, 0, 1, 2, 10), // seed to A
        tr(3, 0, 3, 4, 5),  // B sends before it is tainted: C clean; B 5
        tr(4, 0, 2, 3, 10), // A -> B: B 15, 10 tainted
        tr(5, 0, 3, 5, 6),  // floor(6*10/15) = 4 -> D; B 9, 6 tainted
    ];
    let r = run(ts, 1, Model::Haircut);
    assert_eq!(amount_at(&r, 4), amt(0));
    assert_eq!(amount_at(&r, 5), amt(4));
    assert_eq!(held_at(&r, 3), amt(6));
    assert_eq!(r.destination(&addr(5), &N).unwrap().hops, 2);
    assert_eq!(
        r.destination(&addr(5), &N).unwrap().first_arrival,
        paytrace_indexer::Timestamp(50)
    );
}

#[test]
fn same_block_order_is_tx_index_then_position() {
    let ts = vec![
        tr(1, 0, 1, 2, 10),                            // seed to A
        tr(5, 0, 3, 4, 5), // tx 0: B -> C before B is tainted (B has nothing: clamped)
        tr(5, 1, 2, 3, 10), // tx 1: A -> B
        trk(5, 2, TransferKind::Internal, 1, 3, 6, 4), // tx 2, second call: B -> E
        trk(5, 2, TransferKind::Internal, 0, 3, 5, 6), // tx 2, first call: B -> D
    ];
    let r = run(ts, 0, Model::Fifo);
    assert_eq!(amount_at(&r, 4), amt(0));
    assert_eq!(amount_at(&r, 5), amt(6));
    assert_eq!(amount_at(&r, 6), amt(4));
    // B's send at tx 0 exceeded its (empty) known balance.
    assert!(r.incomplete_history);
}

#[test]
fn cycles_and_depth_limit() {
    let ts = vec![
        tr(1, 0, 1, 2, 10), // seed to A
        tr(2, 0, 2, 3, 10), // A -> B
        tr(3, 0, 3, 2, 10), // B -> A
        tr(4, 0, 2, 3, 10), // A -> B again
    ];
    let r = run(ts.clone(), 0, Model::Haircut);
    assert_eq!(held_at(&r, 3), amt(10));
    assert_eq!(amount_at(&r, 3), amt(20)); // arrived twice
    assert_eq!(amount_at(&r, 2), amt(20)); // seed + the round trip
    assert_eq!(r.destination(&addr(2), &N).unwrap().hops, 0);
    assert_eq!(r.total("unattributed", &N), amt(10));
    // Hop limit 1: B is not followed, its send back is not seen as tainted.
    let p = TraceParams {
        max_hops: 1,
        ..TraceParams::default()
    };
    let r = run_with(ts, 0, Model::Haircut, &MemoryLabels::new(), p);
    assert_eq!(amount_at(&r, 3), amt(10));
    assert_eq!(
        r.destination(&addr(3), &N).unwrap().status,
        Status::AtDepthLimit
    );
    assert_eq!(r.total("at_depth_limit", &N), amt(10));
    assert_eq!(r.total("still_at_payee", &N), amt(0));
}

#[test]
fn promotion_when_a_shorter_path_arrives_later() {
    let ts = vec![
        tr(1, 0, 1, 2, 10), // seed to A
        tr(2, 0, 2, 3, 4),  // A -> B: 4 (hop 1)
        tr(3, 0, 3, 4, 4),  // B -> C: 4 (hop 2 = limit: frontier)
        tr(4, 0, 4, 8, 2),  // C -> Z: 2 tainted that went past the limit
        tr(5, 0, 2, 4, 6),  // A -> C: 6 (hop 1): C is now followed; C 8, 8 tainted
        tr(6, 0, 4, 7, 8),  // C -> W: 8 (hop 2: frontier)
    ];
    let p = TraceParams {
        max_hops: 2,
        ..TraceParams::default()
    };
    let r = run_with(ts, 0, Model::Haircut, &MemoryLabels::new(), p);
    let c = r.destination(&addr(4), &N).unwrap();
    assert_eq!(
        (c.status, c.hops, c.amount, c.held),
        (Status::Followed, 1, amt(10), amt(0))
    );
    assert_eq!(amount_at(&r, 8), amt(0));
    assert_eq!(amount_at(&r, 7), amt(8));
    assert_eq!(r.total("at_depth_limit", &N), amt(10));
}

#[test]
fn stop_at_exchange_with_evidence_path() {
    let ts = vec![
        tr(1, 0, 1, 2, 10),  // seed to A
        tr(2, 0, 2, 3, 6),   // A -> B
        tr(2, 1, 2, 4, 4),   // A -> C
        tr(3, 0, 3, 50, 6),  // B -> X (exchange)
        tr(3, 1, 4, 50, 4),  // C -> X
        tr(4, 0, 50, 5, 10), // X pays out: not followed
    ];
    let mut labels = MemoryLabels::new();
    labels.insert_named(addr(50), "exchange", vec!["Exchange X".into()]);
    let r = run_with(ts, 0, Model::Haircut, &labels, TraceParams::default());
    let x = r.destination(&addr(50), &N).unwrap();
    assert_eq!((x.status, x.amount, x.hops), (Status::Exited, amt(10), 2));
    assert_eq!(x.labels, vec!["Exchange X".to_owned()]);
    assert_eq!(amount_at(&r, 5), amt(0));
    assert_eq!(r.total("exchange", &N), amt(10));
    let path = r.paths.iter().find(|p| p.to == addr(50)).unwrap();
    let hops: Vec<_> = path
        .hops
        .iter()
        .map(|h| (h.from, h.to, h.tainted))
        .collect();
    assert_eq!(
        hops,
        vec![
            (addr(1), addr(2), amt(10)),
            (addr(2), addr(3), amt(6)),
            (addr(3), addr(50), amt(6))
        ]
    );
}

#[test]
fn incomplete_history_is_flagged() {
    let ts = vec![tr(1, 0, 1, 2, 10), tr(2, 0, 2, 3, 15)];
    let r = run(ts, 0, Model::Haircut);
    assert!(r.incomplete_history);
    assert_eq!(amount_at(&r, 3), amt(10));
    assert!(r.destination(&addr(2), &N).unwrap().incomplete_history);
}

#[test]
fn min_amount_and_node_limit() {
    let ts = vec![tr(1, 0, 1, 2, 10), tr(2, 0, 2, 3, 3), tr(3, 0, 2, 4, 7)];
    let p = TraceParams {
        min_amount: amt(5),
        ..TraceParams::default()
    };
    let r = run_with(ts.clone(), 0, Model::Haircut, &MemoryLabels::new(), p);
    assert_eq!(
        r.destination(&addr(3), &N).unwrap().status,
        Status::BelowMinAmount
    );
    assert_eq!(r.total("below_min_amount", &N), amt(3));
    assert_eq!(r.total("unattributed", &N), amt(7));
    let p = TraceParams {
        max_nodes: 1,
        ..TraceParams::default()
    };
    let r = run_with(ts, 0, Model::Haircut, &MemoryLabels::new(), p);
    assert_eq!(r.total("node_limit", &N), amt(10));
}

#[test]
fn address_and_batch_seeds() {
    let ts = vec![
        tr(1, 0, 9, 1, 100),
        tr(2, 0, 1, 2, 10),
        tr(3, 0, 1, 3, 20),
        tr(9, 0, 1, 4, 30),
        tr(10, 0, 2, 3, 10),
    ];
    let g = MemoryGraph::from_transfers(ts.clone());
    let p = TraceParams {
        until: Some(paytrace_indexer::Timestamp(50)),
        ..TraceParams::default()
    };
    let r = trace_forward(&g, &MemoryLabels::new(), &Seed::Outflows(addr(1)), &p).unwrap();
    assert_eq!(r.seed.transfers.len(), 2);
    assert_eq!(amount_at(&r, 2), amt(10));
    assert_eq!(amount_at(&r, 3), amt(20)); // A -> B at block 10 is after `until`
    assert_eq!(r.total("still_at_payee", &N), amt(30));
    let batch = Seed::Transfers(vec![ts[1].key, ts[2].key]);
    let r = trace_forward(&g, &MemoryLabels::new(), &batch, &TraceParams::default()).unwrap();
    assert_eq!(r.seed.kind, "batch");
    assert_eq!(amount_at(&r, 3), amt(30));
    assert_eq!(r.destination(&addr(3), &N).unwrap().hops, 0);
}
