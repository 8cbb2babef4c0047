//! The screening rules of findings, one small named graph per rule: false positives (a payee's
//! own deposit address sweeping, an airdrop scatter, a merchant that later pays a sanctioned
//! address, a 0.02 % haircut share) and false negatives (fake payees whose salaries meet at a
//! consolidation wallet in different tokens, 1 to 4 hops after payday).
#![allow(clippy::unwrap_used)]

use super::*;
use crate::MemoryGraph;
use alloy_primitives::B256;
use paytrace_indexer::{BlockNumber, TransferKey, TransferKind, TxHash};

fn addr(n: u8) -> Address {
    Address::Evm([n; 20])
}

const USDC: u8 = 0xa1;
const USDT: u8 = 0xa2;

/// One transfer per row: (block, from, to, token, amount); block `b` is `b` minutes after
/// 2025-01-10 00:00 UTC.
fn table(rows: &[(u64, u8, u8, u8, u64)]) -> MemoryGraph {
    let base = end_of_day("2025-01-09".parse().unwrap()).0 + 1;
    MemoryGraph::from_transfers(rows.iter().map(|&(b, from, to, token, amount)| {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&b.to_be_bytes());
        Transfer {
            key: TransferKey {
                chain: ChainId(1),
                block: BlockNumber(b),
                tx_index: 0,
                kind: TransferKind::Token,
                position: 0,
            },
            time: Timestamp(base + b * 60),
            tx_hash: TxHash(B256::from(h)),
            from: addr(from),
            to: addr(to),
            asset: Asset::Token(addr(token)),
            amount: Amount::from_u64(amount),
            trace_address: vec![],
        }
    }))
}

fn params() -> ScreenParams {
    ScreenParams::new("2025-03-01".parse().unwrap())
}

fn history(labels: &[(u8, &str)]) -> MemoryLabelHistory {
    let mut h = MemoryLabelHistory::new();
    for (a, c) in labels {
        h.insert(addr(*a), c, None, None);
    }
    h
}

const PROVIDER: u8 = 1;
const HOT: u8 = 2;
const SANCTIONED: u8 = 3;

/// A real payee (10) cashes out four salaries at its own deposit address (20), which forwards
/// each receipt to the exchange's hot wallet within minutes (a pass-through by design).
#[test]
fn own_deposit_address_sweeps_do_not_count_against_the_payee() {
    let mut rows = Vec::new();
    for m in 0..4u64 {
        let b = m * 10_000;
        // Paid on day 0, cashed out on day 3, swept within minutes.
        rows.push((b + 1, PROVIDER, 10, USDC, 5_000_000_000));
        rows.push((b + 4_320, 10, 20, USDC, 5_000_000_000));
        rows.push((b + 4_321, 20, HOT, USDC, 5_000_000_000));
    }
    let g = table(&rows);
    let h = history(&[(HOT, "exchange")]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    assert!(r.patterns.is_empty(), "{:#?}", r.patterns);
    assert!(r.level <= RiskLevel::Low, "{:#?}", r.reasons);
    // The deposit address itself sweeps what it receives to an exchange: a service doing
    // what services do.
    let d = screen(&g, &h, &addr(20), &params()).unwrap();
    assert!(
        d.reasons.iter().all(|x| x.kind != ReasonKind::Pattern),
        "{:#?}",
        d.reasons
    );
}

/// An airdrop distributor (30) sends one token to 24 receivers, two of them payees (10, 11):
/// the scatter never counts against the receivers.
#[test]
fn airdrop_scatter_counts_for_the_distributor_not_its_receivers() {
    let mut rows = vec![
        (1, PROVIDER, 10, USDC, 4_000_000_000),
        (2, PROVIDER, 11, USDC, 4_000_000_000),
    ];
    for (i, to) in (10u8..34).enumerate() {
        rows.push((100 + i as u64, 30, to, USDT, 1_000_000));
    }
    let g = table(&rows);
    let h = history(&[]);
    for payee in [10, 11] {
        let r = screen(&g, &h, &addr(payee), &params()).unwrap();
        assert!(
            r.reasons.iter().all(|x| x.kind != ReasonKind::Pattern),
            "{:#?}",
            r.reasons
        );
        assert_eq!(r.level, RiskLevel::None, "{:#?}", r.reasons);
    }
    // Whether the distributor itself is a fan-out depends on its own history: the fan
    // detectors judge a degree against the center's usual degree, which a distributor with no
    // earlier activity does not have, so nothing is asserted about it here.
}

/// A real payee (10) pays a merchant (40) 5 % of its salary; the merchant has much larger other
/// business (from 41..=45) and later pays the sanctioned address once, a sliver of its sends.
#[test]
fn a_merchant_paying_a_sanctioned_address_once_does_not_taint_its_customers() {
    let mut rows = vec![
        (1, PROVIDER, 10, USDC, 4_000_000_000),
        (2, 10, 40, USDC, 200_000_000),
    ];
    for (i, c) in (41u8..=45).enumerate() {
        rows.push((10 + i as u64, c, 40, USDC, 20_000_000_000));
    }
    rows.push((100, 40, 50, USDC, 60_000_000_000));
    rows.push((101, 40, SANCTIONED, USDC, 20_000_000));
    let g = table(&rows);
    let h = history(&[(SANCTIONED, "sanctioned")]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    assert!(r.network.is_empty(), "{:#?}", r.network);
    assert!(r.level <= RiskLevel::Low, "{:#?}", r.reasons);
}

/// A 0.02 % haircut share of a payee's funds reaching a sanctioned address through a third
/// party is reported, below the materiality floor, and low.
#[test]
fn a_tiny_haircut_share_is_low_not_severe() {
    let s = Scoring::default();
    let cat = Category::new("sanctioned");
    let now = Timestamp(1_000);
    let tiny = s.score(&cat, ExposureKind::Indirect, 1, 0.0002, true, now, now);
    assert_eq!(s.level(tiny), RiskLevel::Low);
    let material = s.score(&cat, ExposureKind::Indirect, 1, 0.2, true, now, now);
    assert!(s.level(material) >= RiskLevel::High);
    // On a graph: the payee (10) pays a merchant (40) that mixes it with 4,999x other money
    // and pays the sanctioned address 0.02 % of its funds: 0.02 % of the payee's outflow
    // under haircut.
    let g = table(&[
        (1, PROVIDER, 10, USDC, 1_000_000),
        (4_320, 10, 40, USDC, 1_000_000),
        (4_321, 41, 40, USDC, 4_999_000_000),
        (4_400, 40, SANCTIONED, USDC, 1_000_000),
        (4_401, 40, 50, USDC, 4_999_000_000),
    ]);
    let h = history(&[(SANCTIONED, "sanctioned")]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    let e = r
        .indirect
        .iter()
        .find(|e| e.category.as_str() == "sanctioned")
        .expect("the sliver is reported");
    assert!(e.share < 0.001, "{}", e.share);
    assert_eq!(r.level, RiskLevel::Low, "{:#?}", r.reasons);
    assert!(r.reasons[0].text.contains("materiality floor"));
    // FIFO disagrees (the merchant's first receipt was the payee's, and FIFO sends it first):
    // both amounts are shown, and which is the weaker signal.
    assert_eq!(e.fifo_amount, Some(Amount::from_u64(1_000_000)));
    // (No units given: raw units with the token's address.)
    let t = &r.reasons[0].text;
    assert!(t.contains("FIFO gives 1000000 raw units of 0x"), "{t}");
    assert!(t.contains(" raw units of 0x"), "{t}");
    assert!(
        t.ends_with("haircut 200 raw units of 0xA1A1a1a1A1A1A1A1A1a1a1a1a1a1A1A1a1A1a1a1: haircut is the weaker signal"),
        "{t}"
    );
}

const W: u8 = 60;

/// Three fake payees (10 in USDC, 11 in USDT, 12 in USDC) of one provider, next to a real one
/// (13). Their salaries meet at the consolidation wallet W after 1, 2 and 4 hops; W pays the
/// sanctioned facilitator 10 % in USDT and the rest to an unlabelled wallet (61).
fn consolidation() -> MemoryGraph {
    table(&[
        (1, PROVIDER, 10, USDC, 5_000_000_000),
        (2, PROVIDER, 11, USDT, 5_000_000_000),
        (3, PROVIDER, 12, USDC, 5_000_000_000),
        (4, PROVIDER, 13, USDC, 5_000_000_000),
        (10, 10, W, USDC, 5_000_000_000),
        (11, 11, 70, USDT, 5_000_000_000),
        (12, 70, W, USDT, 5_000_000_000),
        (13, 12, 71, USDC, 5_000_000_000),
        (14, 71, 72, USDC, 5_000_000_000),
        (15, 72, 73, USDC, 5_000_000_000),
        (16, 73, W, USDC, 5_000_000_000),
        (20, W, SANCTIONED, USDT, 500_000_000),
        (21, W, 61, USDT, 4_500_000_000),
        (22, W, 61, USDC, 10_000_000_000),
        (30, 13, 80, USDC, 5_000_000_000),
    ])
}

#[test]
fn salaries_meeting_at_a_wallet_that_pays_a_sanctioned_address_are_the_signature() {
    let g = consolidation();
    let h = history(&[(SANCTIONED, "sanctioned")]);
    for fake in [10u8, 11, 12] {
        let r = screen(&g, &h, &addr(fake), &params()).unwrap();
        assert!(r.level >= RiskLevel::Medium, "{fake}: {:#?}", r.reasons);
        let n = r
            .network
            .iter()
            .find(|n| n.wallet == addr(W))
            .unwrap_or_else(|| panic!("{fake}: {:#?} {:#?}", r.network, r.reached));
        assert_eq!(n.payees, vec![addr(10), addr(11), addr(12)], "{fake}");
        assert_eq!(n.payer, Some(addr(PROVIDER)));
        assert_eq!(n.high_risk.len(), 1);
        assert_eq!(n.high_risk[0].asset, Asset::Token(addr(USDT)));
        assert!(n.level >= RiskLevel::High, "{fake}: {n:#?}");
        assert!(
            r.reasons
                .iter()
                .any(|x| x.kind == ReasonKind::Network && x.addresses.contains(&addr(W)))
        );
    }
    // The real payee sent its salary elsewhere: no network finding, at most low (it forwarded
    // its salary within minutes itself).
    let real = screen(&g, &h, &addr(13), &params()).unwrap();
    assert!(real.network.is_empty());
    assert!(real.level <= RiskLevel::Low, "{:#?}", real.reasons);
}

#[test]
fn a_consolidation_wallet_alone_makes_its_payees_medium() {
    // The same without the sanctioned payment: consolidation alone is medium.
    let g = table(&[
        (1, PROVIDER, 10, USDC, 5_000_000_000),
        (2, PROVIDER, 11, USDT, 5_000_000_000),
        (10, 10, W, USDC, 5_000_000_000),
        (11, 11, 70, USDT, 5_000_000_000),
        (12, 70, W, USDT, 5_000_000_000),
    ]);
    let r = screen(&g, &history(&[]), &addr(11), &params()).unwrap();
    assert_eq!(r.level, RiskLevel::Medium, "{:#?}", r.reasons);
    assert_eq!(r.network[0].payees, vec![addr(10), addr(11)]);
    assert!(r.network[0].high_risk.is_empty());
}

/// Transfers with their transaction position: (block, position, from, to, token, amount); the
/// rows of one block are one transaction (a swap pays out in the transaction it is paid in).
fn txs(rows: &[(u64, u32, u8, u8, u8, u64)]) -> MemoryGraph {
    let base = end_of_day("2025-01-09".parse().unwrap()).0 + 1;
    MemoryGraph::from_transfers(rows.iter().map(|&(b, pos, from, to, token, amount)| {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&b.to_be_bytes());
        Transfer {
            key: TransferKey {
                chain: ChainId(1),
                block: BlockNumber(b),
                tx_index: 0,
                kind: TransferKind::Token,
                position: pos,
            },
            time: Timestamp(base + b * 60),
            tx_hash: TxHash(B256::from(h)),
            from: addr(from),
            to: addr(to),
            asset: Asset::Token(addr(token)),
            amount: Amount::from_u64(amount),
            trace_address: vec![],
        }
    }))
}

const ROUTER: u8 = 50;

/// Fake payee 10 swaps its USDC salary at a DEX router (labelled `defi`) into USDT, which its
/// own wallet 13 forwards to the consolidation wallet 30; fake 11 sends its USDC there directly;
/// 30 pays the sanctioned facilitator. Real payee 12 swaps the same way a day later and cashes
/// out at its own exchange deposit address (21).
fn swapped_salaries() -> MemoryGraph {
    txs(&[
        (0, 0, 60, ROUTER, USDT, 100_000_000_000),
        (1, 0, PROVIDER, 10, USDC, 5_000_000_000),
        (2, 0, PROVIDER, 11, USDC, 5_000_000_000),
        (3, 0, PROVIDER, 12, USDC, 5_000_000_000),
        // Fake 10: swap, then its own wallet forwards the proceeds.
        (10, 0, 10, ROUTER, USDC, 5_000_000_000),
        (10, 1, ROUTER, 13, USDT, 4_990_000_000),
        (11, 0, 13, 30, USDT, 4_990_000_000),
        (12, 0, 11, 30, USDC, 5_000_000_000),
        // The consolidation wallet pays the facilitator in both tokens, keeps the rest.
        (20, 0, 30, SANCTIONED, USDC, 1_000_000_000),
        (21, 0, 30, SANCTIONED, USDT, 1_000_000_000),
        // Real 12: swap, then its own deposit address, swept to the hot wallet.
        (2_000, 0, 12, ROUTER, USDC, 5_000_000_000),
        (2_000, 1, ROUTER, 14, USDT, 4_990_000_000),
        (3_000, 0, 14, 21, USDT, 4_990_000_000),
        (3_001, 0, 21, HOT, USDT, 4_990_000_000),
    ])
}

/// A swap is no end of the screened party's funds: the fake payee that swapped before its
/// salary met another payee's at a wallet paying a sanctioned address is medium or above with
/// that wallet as evidence (the trace used to stop at the router, a `defi` service), and the
/// real payee that swapped and cashed out at its own deposit address stays low.
#[test]
fn a_swap_before_the_consolidation_wallet_does_not_hide_it() {
    let g = swapped_salaries();
    let h = history(&[
        (ROUTER, "defi"),
        (SANCTIONED, "sanctioned"),
        (21, "exchange_deposit"),
        (HOT, "exchange"),
    ]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    assert!(r.level >= RiskLevel::Medium, "{:#?}", r.reasons);
    let n = r
        .network
        .iter()
        .find(|n| n.wallet == addr(30))
        .unwrap_or_else(|| panic!("{:#?}", r.network));
    assert_eq!(n.asset, Asset::Token(addr(USDT)));
    assert!(n.converted);
    assert!(n.share > 0.99, "{}", n.share);
    assert!(
        r.reasons[0].text.contains("outflow (swapped into"),
        "{}",
        r.reasons[0].text
    );
    assert!(n.payees.contains(&addr(11)), "{:?}", n.payees);
    assert!(!n.high_risk.is_empty());
    // The path (in the converted asset) runs from the router's payout through the payee's own
    // wallet.
    let path = n.path.as_ref().unwrap();
    let ends: Vec<(Address, Address)> = path.hops.iter().map(|x| (x.from, x.to)).collect();
    assert_eq!(
        ends,
        vec![(addr(ROUTER), addr(13)), (addr(13), addr(30))],
        "{path:#?}"
    );
    let real = screen(&g, &h, &addr(12), &params()).unwrap();
    assert!(real.level <= RiskLevel::Low, "{:#?}", real.reasons);
    assert!(real.network.is_empty(), "{:#?}", real.network);
}

/// Fakes 10 and 11 both swap their USDC salaries at the router, which pays the USDT straight
/// into the consolidation wallet 30 (one transaction each); 30 pays nobody high-risk, it only
/// consolidates. Looking upstream from 30, the router's payouts lead back to whoever paid the
/// router in those transactions: both payees, so 30 is a consolidation wallet and each fake is
/// medium. Real payee 12 keeps its salary.
#[test]
fn salaries_swapped_straight_into_the_wallet_still_consolidate() {
    let g = txs(&[
        (0, 0, 60, ROUTER, USDT, 100_000_000_000),
        (1, 0, PROVIDER, 10, USDC, 5_000_000_000),
        (2, 0, PROVIDER, 11, USDC, 5_000_000_000),
        (3, 0, PROVIDER, 12, USDC, 5_000_000_000),
        (10, 0, 10, ROUTER, USDC, 5_000_000_000),
        (10, 1, ROUTER, 30, USDT, 4_990_000_000),
        (11, 0, 11, ROUTER, USDC, 5_000_000_000),
        (11, 1, ROUTER, 30, USDT, 4_990_000_000),
        (20, 0, 30, 61, USDT, 9_980_000_000),
    ]);
    let h = history(&[(ROUTER, "defi")]);
    for fake in [10, 11] {
        let r = screen(&g, &h, &addr(fake), &params()).unwrap();
        assert!(r.level >= RiskLevel::Medium, "{:#?}", r.reasons);
        let n = r
            .network
            .iter()
            .find(|n| n.wallet == addr(30))
            .unwrap_or_else(|| panic!("{fake}: {:#?} {:#?}", r.network, r.reasons));
        assert_eq!(n.payees, vec![addr(10), addr(11)]);
        assert!(n.consolidated_share > 0.99, "{}", n.consolidated_share);
    }
    let real = screen(&g, &h, &addr(12), &params()).unwrap();
    assert_eq!(real.level, RiskLevel::None, "{:#?}", real.reasons);
}

/// Colleagues 10, 11 and 12 of one provider each pay a friend (40) a tenth of their salary and
/// cash the rest out at their own deposit addresses. 40 received mostly salaries of the
/// provider's payees, but only a part of each: a common counterparty, not a consolidation
/// wallet (before, each colleague was medium for "consolidates the salaries of 3 payees").
#[test]
fn a_friend_several_colleagues_pay_is_no_consolidation_wallet() {
    let mut rows = Vec::new();
    for (i, p) in [10u8, 11, 12].into_iter().enumerate() {
        // Hours apart (a block is a minute): spending, not passing through.
        let b = 1_000 * i as u64;
        rows.push((b + 1, PROVIDER, p, USDC, 5_000_000_000));
        rows.push((b + 300, p, 40, USDC, 500_000_000));
        rows.push((b + 600, p, p + 10, USDC, 4_500_000_000));
        rows.push((b + 650, p + 10, HOT, USDC, 4_500_000_000));
    }
    let g = table(&rows);
    let h = history(&[
        (HOT, "exchange"),
        (20, "exchange_deposit"),
        (21, "exchange_deposit"),
        (22, "exchange_deposit"),
    ]);
    for p in [10u8, 11, 12] {
        let r = screen(&g, &h, &addr(p), &params()).unwrap();
        assert!(r.level <= RiskLevel::Low, "{p}: {:#?}", r.reasons);
        assert!(
            r.network.iter().all(|n| !n.consolidates()),
            "{:#?}",
            r.network
        );
    }
}

const DAI18: u8 = 0xa3;
const WETH: u8 = 0xa4;

/// Fake payee 10 is paid 10 units of an 18-decimal stablecoin (10^19 raw) and swaps them at the
/// router for 0.004 of another asset (4 × 10^15 raw); its own wallet 13 forwards that to wallet
/// 30, which pays a sanctioned address. The pruning floor (0.01 % of what the payee sent, in
/// the stablecoin's raw units: 10^15) is larger than nothing in the other asset's units, but
/// the swap output is the payee's whole salary: it is followed and 30 is found (before, the
/// output was "below the minimum amount" and the payee was rated none).
#[test]
fn value_swapped_into_an_asset_of_other_raw_units_is_not_pruned() {
    let g = txs(&[
        (0, 0, 60, ROUTER, WETH, 1_000_000_000_000_000_000),
        (1, 0, PROVIDER, 10, DAI18, 10_000_000_000_000_000_000),
        (10, 0, 10, ROUTER, DAI18, 10_000_000_000_000_000_000),
        (10, 1, ROUTER, 13, WETH, 400_000_000_000_000),
        (11, 0, 13, 30, WETH, 400_000_000_000_000),
        (20, 0, 30, SANCTIONED, WETH, 100_000_000_000_000),
        (21, 0, 30, 61, WETH, 300_000_000_000_000),
    ]);
    let h = history(&[(ROUTER, "defi"), (SANCTIONED, "sanctioned")]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    assert!(r.level >= RiskLevel::Medium, "{:#?}", r.reasons);
    assert!(
        r.network.iter().any(|n| n.wallet == addr(30)),
        "{:#?}",
        r.network
    );
}

/// Fake 10's salary passes through five wallets of its own (71..75, hours apart) before it
/// reaches wallet W, which pays the sanctioned facilitator; W is six transfers away, beyond
/// the screening's three hops. The whole salary is still moving at the hop limit, so the
/// network context follows it on (material value only) and finds W (before, the payee was
/// rated none: the context ended about four transfers from the payee).
#[test]
fn the_network_context_follows_material_value_past_the_hop_limit() {
    let g = table(&[
        (1, PROVIDER, 10, USDC, 5_000_000_000),
        (100, 10, 71, USDC, 5_000_000_000),
        (200, 71, 72, USDC, 5_000_000_000),
        (300, 72, 73, USDC, 5_000_000_000),
        (400, 73, 74, USDC, 5_000_000_000),
        (500, 74, 75, USDC, 5_000_000_000),
        (600, 75, W, USDC, 5_000_000_000),
        (700, W, SANCTIONED, USDC, 1_000_000_000),
        (800, W, 61, USDC, 4_000_000_000),
    ]);
    let h = history(&[(SANCTIONED, "sanctioned")]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    assert!(r.level >= RiskLevel::Medium, "{:#?}", r.reasons);
    let n = r
        .network
        .iter()
        .find(|n| n.wallet == addr(W))
        .unwrap_or_else(|| panic!("{:#?}", r.network));
    assert_eq!(n.hops, 6);
    assert!(!n.high_risk.is_empty());
}

/// As above, but the payee first pays its own wallet 13, which does the swap: the payee paid
/// no swap service itself, yet its value met one further on. The floor (in the stablecoin's
/// raw units) would cut the swap's output; the trace is run again without it.
#[test]
fn value_swapped_further_on_into_other_raw_units_is_not_pruned() {
    let g = txs(&[
        (0, 0, 60, ROUTER, WETH, 1_000_000_000_000_000_000),
        (1, 0, PROVIDER, 10, DAI18, 10_000_000_000_000_000_000),
        (5, 0, 10, 13, DAI18, 10_000_000_000_000_000_000),
        (10, 0, 13, ROUTER, DAI18, 10_000_000_000_000_000_000),
        (10, 1, ROUTER, 14, WETH, 400_000_000_000_000),
        (11, 0, 14, 30, WETH, 400_000_000_000_000),
        (20, 0, 30, SANCTIONED, WETH, 100_000_000_000_000),
        (21, 0, 30, 61, WETH, 300_000_000_000_000),
    ]);
    let h = history(&[(ROUTER, "defi"), (SANCTIONED, "sanctioned")]);
    let r = screen(&g, &h, &addr(10), &params()).unwrap();
    assert!(r.level >= RiskLevel::Medium, "{:#?}", r.reasons);
}
