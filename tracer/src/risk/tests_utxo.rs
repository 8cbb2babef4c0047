//! Screening Bitcoin addresses through transaction nodes: direct exposure to the real
//! counterparties of the transactions (split by input share), indirect exposure with hops
//! counted in addresses as on EVM chains.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::MemoryGraph;
use paytrace_indexer::{BlockNumber, TransferKey, TransferKind, TxHash, model::UTXO_OUTPUT_BASE};

const COIN: u64 = 100_000_000;

/// Real addresses of the OFAC XBT list (the first is sanctioned here) and other mainnet ones.
const S: &str = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h";
const A: &str = "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h";
const B: &str = "3NDzzVxiLBUs1WPvVGRfCYDTAD2Ua2PvW4";
const C: &str = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";
const D: &str = "12c6DSiU4Rq3P4ZxziKxzrL5LmMBrzjrJX";
const E: &str = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3";
const F: &str = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S";

fn a(s: &str) -> Address {
    crate::report::batch::parse_bitcoin_address(s).unwrap()
}

/// Transaction of `block` (day = block in January 2025): `inputs` into its node, `outputs` out.
fn tx(block: u64, inputs: &[(&str, u64)], outputs: &[(&str, u64)]) -> Vec<Transfer> {
    let mut txid = [0u8; 32];
    txid[..8].copy_from_slice(&block.to_be_bytes());
    txid[31] = 0x7c;
    let node = Address::Tx(txid);
    let time = end_of_day(Date::new(2025, 1, i8::try_from(block).unwrap()).unwrap()).0 - 43_200;
    let mk = |position: u32, from: Address, to: Address, v: u64| Transfer {
        key: TransferKey {
            chain: ChainId(3),
            block: BlockNumber(block),
            tx_index: 1,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(time),
        tx_hash: TxHash(txid.into()),
        from,
        to,
        asset: Asset::Native,
        amount: Amount::from_u64(v),
        trace_address: Vec::new(),
    };
    let mut v = Vec::new();
    for (i, (x, amount)) in (0u32..).zip(inputs) {
        v.push(mk(i, a(x), node, *amount));
    }
    for (o, (x, amount)) in (0u32..).zip(outputs) {
        v.push(mk(UTXO_OUTPUT_BASE + o, node, a(x), *amount));
    }
    v
}

/// S is mined 1 BTC and pays A 0.6 (fee 0.0001); A pays B 0.5. D is mined 1 BTC and pays it
/// all to C; C pays S 0.2. E is mined 0.3 BTC; S (0.1) and E (0.3) pay F 0.4 together.
fn chain() -> MemoryGraph {
    let mut ts = Vec::new();
    ts.extend(tx(1, &[], &[(S, COIN)]));
    ts.extend(tx(2, &[(S, COIN)], &[(A, 60_000_000), (S, 39_990_000)]));
    ts.extend(tx(3, &[(A, 60_000_000)], &[(B, COIN / 2), (A, 9_990_000)]));
    ts.extend(tx(4, &[], &[(D, COIN)]));
    ts.extend(tx(5, &[(D, COIN)], &[(C, COIN)]));
    ts.extend(tx(6, &[(C, COIN)], &[(S, COIN / 5), (C, COIN * 4 / 5)]));
    ts.extend(tx(7, &[], &[(E, 30_000_000)]));
    ts.extend(tx(
        8,
        &[(S, 10_000_000), (E, 30_000_000)],
        &[(F, 40_000_000)],
    ));
    MemoryGraph::from_transfers(ts)
}

fn screen_of(x: &str) -> ScreenResult {
    let mut h = MemoryLabelHistory::new();
    h.insert(
        a(S),
        "sanctioned",
        Some("2024-06-01".parse().unwrap()),
        None,
    );
    let mut p = ScreenParams::new("2025-02-01".parse().unwrap());
    p.patterns = None;
    screen(&chain(), &h, &a(x), &p).unwrap()
}

fn only(list: &[Exposure], flow: Flow) -> &Exposure {
    let v: Vec<&Exposure> = list
        .iter()
        .filter(|e| e.category.as_str() == "sanctioned" && e.direction == flow)
        .collect();
    assert_eq!(v.len(), 1, "{list:#?}");
    v[0]
}

#[test]
fn received_from_a_sanctioned_address_through_a_transaction_is_direct() {
    let r = screen_of(A);
    let e = only(&r.direct, Flow::Received);
    assert_eq!(e.amount, Amount::from_u64(60_000_000));
    assert_eq!(e.counterparties, vec![a(S)]);
    assert!((e.share - 1.0).abs() < 1e-12);
    assert!(e.labelled_at_time);
    assert_eq!(e.hops, 0);
    // Not counted again as indirect.
    assert!(
        r.indirect
            .iter()
            .all(|x| x.category.as_str() != "sanctioned" || x.direction != Flow::Received),
        "{:#?}",
        r.indirect
    );
    assert_eq!(r.level, RiskLevel::Severe, "{:#?}", r.reasons);
    assert!(
        r.reasons[0]
            .text
            .starts_with("directly received from 1 sanctioned")
    );
}

#[test]
fn received_one_address_further_is_indirect_at_hop_one() {
    let r = screen_of(B);
    assert!(r.direct.is_empty(), "{:#?}", r.direct);
    let e = only(&r.indirect, Flow::Received);
    assert_eq!(e.hops, 1);
    assert_eq!(e.amount, Amount::from_u64(COIN / 2));
    assert_eq!(e.counterparties, vec![a(S)]);
}

#[test]
fn sent_to_a_sanctioned_address_directly_and_indirectly() {
    // C's spend paid S 0.2 BTC (its change is no counterparty).
    let c = screen_of(C);
    let e = only(&c.direct, Flow::Sent);
    assert_eq!(e.amount, Amount::from_u64(COIN / 5));
    assert!((e.share - 1.0).abs() < 1e-12);
    // D paid C, which paid S: indirect at hop 1, 0.2 of D's 1 BTC.
    let d = screen_of(D);
    assert!(d.direct.is_empty(), "{:#?}", d.direct);
    let e = only(&d.indirect, Flow::Sent);
    assert_eq!(e.hops, 1);
    assert_eq!(e.amount, Amount::from_u64(COIN / 5));
    assert!((e.share - 0.2).abs() < 1e-12, "{}", e.share);
    // B received 0.5 BTC from A (and no change): all of it traces back to S.
    let b = only(&screen_of(B).indirect, Flow::Received).share;
    assert!((b - 1.0).abs() < 1e-12, "{b}");
}

#[test]
fn a_co_spent_input_counts_by_its_share_of_the_inputs() {
    // F got 0.4 BTC from a transaction S put 0.1 of 0.4 into: 0.1 from S.
    let r = screen_of(F);
    let e = only(&r.direct, Flow::Received);
    assert_eq!(e.amount, Amount::from_u64(10_000_000));
    assert!((e.share - 0.25).abs() < 1e-12);
    // E, the co-signer, sent to F (unlabelled): no exposure of its own spend.
    let e = screen_of(E);
    assert!(e.direct.is_empty(), "{:#?}", e.direct);
}
