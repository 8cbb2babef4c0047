//! Bitcoin transaction seeds on generated UTXO graphs: forward from a transaction follows its
//! outputs' value, backward explains its inputs' value, and the totals add up to that seed
//! value exactly under haircut, FIFO, LIFO and TIHO. CoinJoins met on the way are mixer exits.
#![allow(clippy::unwrap_used)]

mod common;

use alloy_primitives::B256;
use common::amt;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind,
    TxHash, model::UTXO_OUTPUT_BASE,
};
use paytrace_tracer::*;
use proptest::prelude::*;

const MODELS: [Model; 4] = [Model::Haircut, Model::Fifo, Model::Lifo, Model::Tiho];

fn sc(n: u8) -> Address {
    Address::Script([n; 32])
}

fn txn(id: u8) -> Address {
    Address::Tx([id; 32])
}

/// One UTXO transaction `[id; 32]` in its own block: inputs (spender, value) and outputs
/// (receiver, value).
fn utxo_tx(
    block: u64,
    id: u8,
    inputs: &[(Address, u64)],
    outputs: &[(Address, u64)],
) -> Vec<Transfer> {
    let mk = |position: u32, from: Address, to: Address, v: u64| Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: 0,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(block * 600),
        tx_hash: TxHash(B256::from([id; 32])),
        from,
        to,
        asset: Asset::Native,
        amount: amt(v),
        trace_address: vec![],
    };
    let mut out = Vec::new();
    for (i, (a, v)) in inputs.iter().enumerate() {
        out.push(mk(u32::try_from(i).unwrap(), *a, txn(id), *v));
    }
    for (i, (a, v)) in outputs.iter().enumerate() {
        out.push(mk(
            UTXO_OUTPUT_BASE + u32::try_from(i).unwrap(),
            txn(id),
            *a,
            *v,
        ));
    }
    out
}

/// splitmix64, so one generated seed drives the whole graph.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A UTXO graph: funding outputs (blocks 1..), the seed transaction (id 1, block 11) spending
/// some of them, then `n_txs` transactions each spending random unspent outputs (whole, as
/// UTXOs are) into 1–4 outputs and a fee. Scripts are reused (8 of them), so one script holds
/// several outputs, as reused addresses do. Returns the transfers and the seed's txid.
fn utxo_graph(seed: u64, n_txs: usize) -> Vec<Transfer> {
    let mut rng = Rng(seed);
    let mut ts = Vec::new();
    let mut unspent: Vec<(Address, u64)> = Vec::new();
    let script = |rng: &mut Rng| sc(u8::try_from(1 + rng.below(8)).unwrap());
    // Funding: coinbase-like transactions (no inputs) in blocks 1..=4.
    for i in 0..4u8 {
        let to = script(&mut rng);
        let v = 1 + rng.below(1_000_000);
        ts.extend(utxo_tx(u64::from(i) + 1, 200 + i, &[], &[(to, v)]));
        unspent.push((to, v));
    }
    for (k, next_id) in (0..=n_txs).zip(1u8..) {
        let block = 10 + u64::from(next_id);
        if unspent.is_empty() {
            break;
        }
        let n_in = 1 + rng.below(3.min(unspent.len() as u64));
        let mut inputs = Vec::new();
        for _ in 0..n_in {
            let i = usize::try_from(rng.below(unspent.len() as u64)).unwrap();
            inputs.push(unspent.swap_remove(i));
        }
        let total: u64 = inputs.iter().map(|(_, v)| v).sum();
        let fee = if k == 0 { 0 } else { rng.below(total / 10 + 1) };
        let mut left = total - fee;
        let n_out = 1 + rng.below(4);
        let mut outputs = Vec::new();
        for j in 0..n_out {
            if left == 0 {
                break;
            }
            let v = if j + 1 == n_out {
                left
            } else {
                1 + rng.below(left)
            };
            left -= v;
            let to = script(&mut rng);
            outputs.push((to, v));
        }
        ts.extend(utxo_tx(block, next_id, &inputs, &outputs));
        unspent.extend(outputs);
    }
    ts
}

fn params(model: Model) -> TraceParams {
    TraceParams {
        model,
        max_hops: 100,
        ..TraceParams::default()
    }
}

fn sum_totals(r: &TraceResult) -> Amount {
    r.totals_by_category
        .values()
        .filter_map(|m| m.get("native"))
        .fold(Amount::ZERO, |a, b| a.checked_add(*b).unwrap())
}

fn sum(ts: &[&Transfer]) -> Amount {
    ts.iter()
        .fold(Amount::ZERO, |a, t| a.checked_add(t.amount).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Forward from the seed transaction (its outputs) and backward (its inputs): the seed
    /// value is the outputs' (resp. inputs') value, and the totals add up to it exactly.
    #[test]
    fn transaction_seed_totals_add_up(seed in any::<u64>(), n_txs in 0usize..25) {
        let ts = utxo_graph(seed, n_txs);
        let g = MemoryGraph::from_transfers(ts.clone());
        let node = txn(1);
        let outputs: Vec<&Transfer> = ts.iter().filter(|t| t.from == node).collect();
        let inputs: Vec<&Transfer> = ts.iter().filter(|t| t.to == node).collect();
        let fwd = Seed::Transfers(outputs.iter().map(|t| t.key).collect());
        let back = BackSeed::Transfers(inputs.iter().map(|t| t.key).collect());
        for model in MODELS {
            let r = trace_forward(&g, &MemoryLabels::new(), &fwd, &params(model)).unwrap();
            prop_assert_eq!(r.seed.total["native"], sum(&outputs), "{}", model);
            prop_assert_eq!(sum_totals(&r), sum(&outputs), "forward {}", model);
            let r = trace_backward(&g, &MemoryLabels::new(), &back, &params(model)).unwrap();
            prop_assert_eq!(r.seed.total["native"], sum(&inputs), "{}", model);
            prop_assert_eq!(sum_totals(&r), sum(&inputs), "backward {}", model);
        }
    }
}

/// A peel chain into a CoinJoin: the seed pays 1 and keeps 49; the change peels 1, takes 2
/// clean, peels 2.5 and enters a JoinMarket-shaped CoinJoin (3 inputs, 3 equal outputs of
/// 10, 3 change outputs). Haircut, worked out by hand:
/// * R1 keeps 1 (a receiver of the seed);
/// * K2 holds 48 tainted + 2 clean = 50, so 96 % of what it sends is tainted: R3 gets
///   2.4 of 2.5 and K3 45.6 of 47.5;
/// * the CoinJoin is a mixer exit: 45.6 stop there, nothing reaches its outputs.
///
/// 1 + (1 + 2.4) + 45.6 = 50.
#[test]
fn peel_chain_into_a_coinjoin() {
    const BTC: u64 = 100_000_000;
    let (a, r1, k1, r2, k2, q, q2, r3, k3) = (
        sc(1),
        sc(2),
        sc(3),
        sc(4),
        sc(5),
        sc(6),
        sc(7),
        sc(8),
        sc(9),
    );
    let (p1, p2) = (sc(10), sc(11));
    let mut ts = Vec::new();
    ts.extend(utxo_tx(1, 201, &[], &[(a, 50 * BTC)]));
    ts.extend(utxo_tx(2, 202, &[], &[(p1, 50 * BTC)]));
    ts.extend(utxo_tx(3, 203, &[], &[(p2, 50 * BTC)]));
    ts.extend(utxo_tx(4, 204, &[], &[(q, 50 * BTC)]));
    ts.extend(utxo_tx(
        10,
        1,
        &[(a, 50 * BTC)],
        &[(r1, BTC), (k1, 49 * BTC)],
    ));
    ts.extend(utxo_tx(
        11,
        2,
        &[(k1, 49 * BTC)],
        &[(r2, BTC), (k2, 48 * BTC)],
    ));
    ts.extend(utxo_tx(
        12,
        3,
        &[(q, 50 * BTC)],
        &[(k2, 2 * BTC), (q2, 48 * BTC)],
    ));
    ts.extend(utxo_tx(
        13,
        4,
        &[(k2, 50 * BTC)],
        &[(r3, 250_000_000), (k3, 4_750_000_000)],
    ));
    let cj_out = [
        (sc(20), 10 * BTC),
        (sc(21), 10 * BTC),
        (sc(22), 10 * BTC),
        (sc(23), 3_750_000_000),
        (sc(24), 40 * BTC),
        (sc(25), 40 * BTC),
    ];
    ts.extend(utxo_tx(
        14,
        5,
        &[(k3, 4_750_000_000), (p1, 50 * BTC), (p2, 50 * BTC)],
        &cj_out,
    ));
    let g = MemoryGraph::from_transfers(ts.clone());
    let seed = Seed::Transfers(
        ts.iter()
            .filter(|t| t.from == txn(1))
            .map(|t| t.key)
            .collect(),
    );
    let r = trace_forward(&g, &MemoryLabels::new(), &seed, &params(Model::Haircut)).unwrap();
    let tot = |c: &str| r.totals_by_category.get(c).map(|m| m["native"]);
    assert_eq!(tot("still_at_payee"), Some(amt(BTC)));
    assert_eq!(tot("unattributed"), Some(amt(BTC + 240_000_000)));
    assert_eq!(tot("mixer"), Some(amt(4_560_000_000)));
    assert_eq!(sum_totals(&r), amt(50 * BTC));
    let mixer = r.destinations.iter().find(|d| d.address == txn(5)).unwrap();
    assert_eq!(mixer.status, Status::Exited);
    assert_eq!(mixer.category.as_ref().map(Category::as_str), Some("mixer"));
    let ev = mixer.coinjoin.as_ref().unwrap();
    assert_eq!(ev.kind, "joinmarket");
    assert_eq!(ev.denomination, amt(10 * BTC));
    assert_eq!((ev.equal_outputs, ev.distinct_inputs), (3, 3));
    assert!(
        r.destinations
            .iter()
            .all(|d| !cj_out.iter().any(|(a, _)| *a == d.address))
    );
    let held = |a: Address| {
        r.destinations
            .iter()
            .find(|d| d.address == a)
            .map(|d| d.held)
    };
    assert_eq!(held(r3), Some(amt(240_000_000)));
    assert_eq!(held(r1), Some(amt(BTC)));
    // Every model conserves the seed value and stops at the mixer.
    for model in MODELS {
        let r = trace_forward(&g, &MemoryLabels::new(), &seed, &params(model)).unwrap();
        assert_eq!(sum_totals(&r), amt(50 * BTC), "{model}");
        assert!(r.totals_by_category.contains_key("mixer"), "{model}");
    }
    // TIHO at the peel: the 48 tainted fill the highest output (K3, 47.5) first.
    let r = trace_forward(&g, &MemoryLabels::new(), &seed, &params(Model::Tiho)).unwrap();
    let r3_tiho = r.destinations.iter().find(|d| d.address == r3).unwrap();
    assert_eq!(r3_tiho.held, amt(50_000_000));
    // Backward from a CoinJoin output: its source is the mixer, not the participants.
    let out0 = ts
        .iter()
        .find(|t| t.from == txn(5) && t.key.position == UTXO_OUTPUT_BASE)
        .unwrap();
    let b = trace_backward(
        &g,
        &MemoryLabels::new(),
        &BackSeed::Transfer(out0.key),
        &params(Model::Haircut),
    )
    .unwrap();
    assert_eq!(
        b.totals_by_category.get("mixer").map(|m| m["native"]),
        Some(amt(10 * BTC))
    );
    assert!(
        b.destinations
            .iter()
            .all(|d| d.address != a && d.address != p1)
    );
    // With `mixer` not a stop category the CoinJoin is followed (still labelled `mixer`).
    let mut p = params(Model::Haircut);
    p.stop = StopList::new(["exchange"]);
    let r = trace_forward(&g, &MemoryLabels::new(), &seed, &p).unwrap();
    assert!(r.destinations.iter().any(|d| d.address == sc(20)));
}

/// Two spenders paying two equal amounts (clustering reads it as a two-party JoinMarket) is an
/// ordinary payment to a trace: it is followed, not a mixer exit.
#[test]
fn two_equal_outputs_from_two_spenders_are_followed() {
    let mut ts = Vec::new();
    ts.extend(utxo_tx(1, 201, &[], &[(sc(1), 100)]));
    ts.extend(utxo_tx(2, 202, &[], &[(sc(2), 100)]));
    ts.extend(utxo_tx(3, 1, &[(sc(1), 100)], &[(sc(3), 100)]));
    ts.extend(utxo_tx(
        4,
        2,
        &[(sc(3), 100), (sc(2), 100)],
        &[(sc(4), 100), (sc(5), 100)],
    ));
    let g = MemoryGraph::from_transfers(ts.clone());
    let seed = Seed::Transfers(
        ts.iter()
            .filter(|t| t.from == txn(1))
            .map(|t| t.key)
            .collect(),
    );
    for model in MODELS {
        let r = trace_forward(&g, &MemoryLabels::new(), &seed, &params(model)).unwrap();
        assert!(!r.totals_by_category.contains_key("mixer"), "{model}");
        // (LIFO pays the clean input, last in, to the first output.)
        assert!(
            r.destinations
                .iter()
                .any(|d| d.address == sc(4) || d.address == sc(5)),
            "{model}"
        );
        assert_eq!(sum_totals(&r), amt(100), "{model}");
    }
}
