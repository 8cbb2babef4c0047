//! TIHO at Bitcoin transaction nodes and cross-asset swaps, on hand-built graphs; every expected
//! number is computed by hand in the comments.
#![allow(clippy::unwrap_used)]

mod common;

use alloy_primitives::B256;
use common::*;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind,
    TxHash, model::UTXO_OUTPUT_BASE,
};
use paytrace_tracer::*;
use proptest::prelude::*;

const N: Asset = Asset::Native;

/// A Bitcoin script address.
fn sc(n: u8) -> Address {
    Address::Script([n; 32])
}

/// Transaction node of txid `[n; 32]`.
fn txn(n: u8) -> Address {
    Address::Tx([n; 32])
}

/// A UTXO transfer of transaction `[id; 32]` (position: input index, or `UTXO_OUTPUT_BASE +
/// vout` for outputs).
fn ut(block: u64, tx: u32, id: u8, position: u32, from: Address, to: Address, v: u64) -> Transfer {
    Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: tx,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(block * 600),
        tx_hash: TxHash(B256::from([id; 32])),
        from,
        to,
        asset: N,
        amount: amt(v),
        trace_address: vec![],
    }
}

fn out(vout: u32) -> u32 {
    UTXO_OUTPUT_BASE + vout
}

fn trace(ts: &[Transfer], seed: usize, model: Model, labels: &MemoryLabels) -> TraceResult {
    let g = MemoryGraph::from_transfers(ts.to_vec());
    let p = TraceParams {
        model,
        max_hops: 10,
        ..TraceParams::default()
    };
    trace_forward(&g, labels, &Seed::Transfers(vec![ts[seed].key]), &p).unwrap()
}

fn at(r: &TraceResult, a: Address, asset: Asset) -> Amount {
    r.destination(&a, &asset)
        .map(|d| d.amount)
        .unwrap_or_default()
}

/// Payer P (1) pays payee A (2) 100 in tx X0 (the seed is X0's output); A also gets 50 clean
/// from F (9) in X1. In X2, A spends everything (150, of which 100 tainted) together with a
/// clean input of 50 from C (3): X2 holds 200, 100 tainted; outputs D 30, E 90, G 60, H 10
/// (fee 10).
fn spend() -> Vec<Transfer> {
    vec![
        ut(1, 0, 0x10, 0, sc(1), txn(0x10), 100),
        ut(1, 0, 0x10, out(0), txn(0x10), sc(2), 100), // seed
        ut(1, 1, 0x11, 0, sc(9), txn(0x11), 50),
        ut(1, 1, 0x11, out(0), txn(0x11), sc(2), 50),
        ut(2, 0, 0x12, 0, sc(2), txn(0x12), 150),
        ut(2, 0, 0x12, 1, sc(3), txn(0x12), 50),
        ut(2, 0, 0x12, out(0), txn(0x12), sc(4), 30),
        ut(2, 0, 0x12, out(1), txn(0x12), sc(5), 90),
        ut(2, 0, 0x12, out(2), txn(0x12), sc(6), 60),
        ut(2, 0, 0x12, out(3), txn(0x12), sc(7), 10),
    ]
}

#[test]
fn tiho_fills_highest_outputs_first() {
    let r = trace(&spend(), 1, Model::Tiho, &MemoryLabels::new());
    // A (haircut at addresses) sends its whole balance: all 100 tainted reach X2.
    assert_eq!(at(&r, txn(0x12), N), amt(100));
    // 100 tainted to E 90 (highest), then G 10 (next highest, 60); D 30 and H 10 clean.
    assert_eq!(at(&r, sc(5), N), amt(90));
    assert_eq!(at(&r, sc(6), N), amt(10));
    assert_eq!(at(&r, sc(4), N), Amount::ZERO);
    assert_eq!(at(&r, sc(7), N), Amount::ZERO);
    // The fee (10) is clean: nothing tainted stays at X2.
    assert_eq!(r.destination(&txn(0x12), &N).unwrap().held, Amount::ZERO);
    // Entering a transaction is not a hop: X2 is at hop 0 with A, its outputs at hop 1.
    assert_eq!(r.destination(&txn(0x12), &N).unwrap().hops, 0);
    assert_eq!(r.destination(&sc(5), &N).unwrap().hops, 1);
}

#[test]
fn haircut_at_transaction_nodes_is_proportional() {
    let r = trace(&spend(), 1, Model::Haircut, &MemoryLabels::new());
    // X2: 200 held, 100 tainted. D 30: floor(30*100/200) = 15 (170, 85 left);
    // E 90: floor(90*85/170) = 45 (80, 40); G 60: floor(60*40/80) = 30 (20, 10);
    // H 10: floor(10*10/20) = 5 (10, 5): the tainted 5 of the fee stays at X2.
    assert_eq!(at(&r, sc(4), N), amt(15));
    assert_eq!(at(&r, sc(5), N), amt(45));
    assert_eq!(at(&r, sc(6), N), amt(30));
    assert_eq!(at(&r, sc(7), N), amt(5));
    assert_eq!(r.destination(&txn(0x12), &N).unwrap().held, amt(5));
}

#[test]
fn tiho_ties_go_to_the_lower_output_index_and_fee_keeps_excess() {
    let ts = vec![
        ut(1, 0, 0x10, 0, sc(1), txn(0x10), 120),
        ut(1, 0, 0x10, out(0), txn(0x10), sc(2), 120), // seed: A holds 120 tainted
        // X3: A's 120 (all tainted) in, 40 + 40 + 30 out: 110 outputs, fee 10.
        ut(2, 0, 0x13, 0, sc(2), txn(0x13), 120),
        ut(2, 0, 0x13, out(0), txn(0x13), sc(4), 30),
        ut(2, 0, 0x13, out(1), txn(0x13), sc(5), 40),
        ut(2, 0, 0x13, out(2), txn(0x13), sc(6), 40),
    ];
    let r = trace(&ts, 1, Model::Tiho, &MemoryLabels::new());
    // Every output is filled (120 tainted >= 110): 40, 40, 30; the tainted fee 10 stays.
    assert_eq!(at(&r, sc(5), N), amt(40));
    assert_eq!(at(&r, sc(6), N), amt(40));
    assert_eq!(at(&r, sc(4), N), amt(30));
    assert_eq!(r.destination(&txn(0x13), &N).unwrap().held, amt(10));
    // With only 50 tainted (A gets 70 clean first), the tie 40/40 goes to vout 1 first:
    // vout 1 40, vout 2 10, vout 0 (30) nothing.
    let mut ts2 = ts.clone();
    ts2[1] = ut(1, 0, 0x10, out(0), txn(0x10), sc(2), 50);
    ts2.insert(0, ut(0, 0, 0x0f, out(0), txn(0x0f), sc(2), 70));
    let r = trace(&ts2, 2, Model::Tiho, &MemoryLabels::new());
    assert_eq!(at(&r, sc(5), N), amt(40));
    assert_eq!(at(&r, sc(6), N), amt(10));
    assert_eq!(at(&r, sc(4), N), Amount::ZERO);
}

proptest! {
    /// At a transaction node, TIHO never sends out more taint than came in, sends exactly
    /// min(tainted in, outputs) when every input is known, and fills outputs from the highest
    /// value down: an output that is not fully tainted has no tainted output below it.
    #[test]
    fn tiho_conserves_and_fills_from_the_top(
        tainted in 1u64..1000,
        clean in 0u64..1000,
        other in 0u64..1000,
        outs in prop::collection::vec(1u64..500, 1..8),
    ) {
        let total_in = tainted + clean + other;
        prop_assume!(outs.iter().sum::<u64>() <= total_in);
        let mut ts = vec![
            ut(1, 0, 0x10, out(0), txn(0x10), sc(2), tainted), // seed
        ];
        if clean > 0 {
            ts.push(ut(0, 0, 0x0f, out(0), txn(0x0f), sc(2), clean));
        }
        ts.push(ut(2, 0, 0x12, 0, sc(2), txn(0x12), tainted + clean));
        if other > 0 {
            ts.push(ut(2, 0, 0x12, 1, sc(3), txn(0x12), other));
        }
        for (i, v) in outs.iter().enumerate() {
            let vout = u32::try_from(i).unwrap();
            let to = sc(u8::try_from(10 + i).unwrap());
            ts.push(ut(2, 0, 0x12, out(vout), txn(0x12), to, *v));
        }
        let r = trace(&ts, 0, Model::Tiho, &MemoryLabels::new());
        let got: Vec<u64> = (0..outs.len())
            .map(|i| {
                let a = at(&r, sc(u8::try_from(10 + i).unwrap()), N);
                u64::try_from(a.raw()).unwrap()
            })
            .collect();
        let sum: u64 = got.iter().sum();
        prop_assert!(sum <= tainted);
        prop_assert_eq!(sum, tainted.min(outs.iter().sum()));
        for i in 0..outs.len() {
            prop_assert!(got[i] <= outs[i]);
            if got[i] < outs[i] {
                for j in 0..outs.len() {
                    let below = outs[j] < outs[i] || (outs[j] == outs[i] && j > i);
                    if below {
                        prop_assert_eq!(got[j], 0, "outputs {:?} got {:?}", outs, got);
                    }
                }
            }
        }
    }
}

// ---- cross-asset swaps (EVM tokens) ----

fn token(n: u8) -> Asset {
    Asset::Token(addr(n))
}

/// A token transfer (log index `pos`) in `block`, transaction `tx`.
fn tok(block: u64, tx: u32, pos: u32, asset: Asset, from: u8, to: u8, v: u64) -> Transfer {
    let mut t = trk(block, tx, TransferKind::Token, pos, from, to, v);
    t.asset = asset;
    t
}

const USDC: u8 = 0xc1;
const WETH: u8 = 0xc2;

/// P (1) pays A (2) 100 USDC. In block 2, A swaps 40 USDC at pool S (20, labelled swap) in
/// one transaction where Q (3) also pays S 60 USDC; S pays B (4) 10 WETH and C (5) 5 USDC.
fn swap_graph() -> Vec<Transfer> {
    let u = token(USDC);
    let w = token(WETH);
    vec![
        tok(1, 0, 0, u, 1, 2, 100), // seed
        tok(2, 0, 0, u, 2, 20, 40),
        tok(2, 0, 1, u, 3, 20, 60),
        tok(2, 0, 2, w, 20, 4, 10),
        tok(2, 0, 3, u, 20, 5, 5),
        // A also pays N (unlabelled) 10 USDC and N pays E (6) 3 WETH in the same transaction:
        // N is no swap, so no taint crosses to WETH there.
        tok(3, 0, 0, u, 2, 7, 10),
        tok(3, 0, 1, w, 7, 6, 3),
    ]
}

#[test]
fn swap_carries_the_tainted_fraction_across_assets() {
    let mut labels = MemoryLabels::new();
    labels.insert(addr(20), "swap");
    let r = trace(&swap_graph(), 0, Model::Haircut, &labels);
    let (u, w) = (token(USDC), token(WETH));
    // S received 100 USDC in the transaction, 40 of it tainted: its WETH payout carries
    // floor(10 * 40 / 100) = 4.
    assert_eq!(at(&r, addr(20), u), amt(40));
    assert_eq!(
        r.destination(&addr(20), &u).unwrap().status,
        Status::Swapped
    );
    assert_eq!(at(&r, addr(4), w), amt(4));
    assert_eq!(r.destination(&addr(4), &w).unwrap().hops, 2);
    // The USDC payout of S is same-asset: taint stays with S's USDC, C gets nothing.
    assert_eq!(at(&r, addr(5), u), Amount::ZERO);
    assert_eq!(r.total("swapped", &u), amt(40));
    // N is not a swap: N gets 10 tainted USDC, E no WETH taint.
    assert_eq!(at(&r, addr(7), u), amt(10));
    assert_eq!(at(&r, addr(6), w), Amount::ZERO);
    // Without a swap label S is an ordinary address and nothing crosses to WETH.
    let r = trace(&swap_graph(), 0, Model::Haircut, &MemoryLabels::new());
    assert_eq!(at(&r, addr(4), w), Amount::ZERO);
    assert_eq!(
        r.destination(&addr(20), &u).unwrap().status,
        Status::Followed
    );
}

#[test]
fn swap_paid_out_before_it_is_paid_in_the_same_transaction() {
    // A pool that pays first (Uniswap v3 style): S (21, defi) pays A 30 WETH at log 0, then A
    // pays S 60 USDC at log 1. A (the payee) holds 100 tainted USDC, so the 60 are all tainted,
    // S received 60 USDC: the 30 WETH are fully tainted. A already took them in as clean, so
    // they are re-coloured; A then pays D (8) 30 WETH, all tainted.
    let (u, w) = (token(USDC), token(WETH));
    let ts = vec![
        tok(1, 0, 0, u, 1, 2, 100), // seed
        tok(2, 0, 0, w, 21, 2, 30),
        tok(2, 0, 1, u, 2, 21, 60),
        tok(3, 0, 0, w, 2, 8, 30),
    ];
    let mut labels = MemoryLabels::new();
    labels.insert(addr(21), "defi");
    let r = trace(&ts, 0, Model::Haircut, &labels);
    assert_eq!(at(&r, addr(21), u), amt(60));
    assert_eq!(at(&r, addr(2), w), amt(30));
    assert_eq!(at(&r, addr(8), w), amt(30));
    // Same with FIFO lots: the re-coloured WETH lot leaves first.
    let r = trace(&ts, 0, Model::Fifo, &labels);
    assert_eq!(at(&r, addr(8), w), amt(30));
}
