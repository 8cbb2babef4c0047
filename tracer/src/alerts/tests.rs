//! Rule evaluation: findings and their deduplication keys.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::{
    MemoryGraph,
    risk::{MemoryLabelHistory, ScreenParams, end_of_day, screen},
};
use alloy_primitives::B256;
use paytrace_config::AlertsConfig;
use paytrace_indexer::{
    Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind, TxHash,
    labels::Date,
};

fn addr(n: u8) -> Address {
    Address::Evm([n; 20])
}

fn t(block: u64, from: u8, to: u8, amount: u64) -> Transfer {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    let day: Date = "2025-01-10".parse().unwrap();
    Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: 0,
            kind: TransferKind::Native,
            position: 0,
        },
        time: Timestamp(end_of_day(day).0 - 80_000 + block),
        tx_hash: TxHash(B256::from(h)),
        from: addr(from),
        to: addr(to),
        asset: Asset::Native,
        amount: Amount::from_u64(amount),
        trace_address: vec![],
    }
}

/// Payer 1 pays payees 10, 11, 12; each forwards to 50 (convergence); 10's funds reach 9
/// (sanctioned) through 20; 11 received from a mixer 8.
fn setup() -> (MemoryGraph, MemoryLabelHistory) {
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 1000),
        t(2, 1, 11, 1000),
        t(3, 1, 12, 1000),
        t(4, 8, 11, 50),
        t(5, 10, 20, 500),
        t(6, 20, 9, 400),
        t(7, 10, 50, 400),
        t(8, 11, 50, 900),
        t(9, 12, 50, 900),
    ]);
    let mut h = MemoryLabelHistory::new();
    h.insert(addr(9), "sanctioned", None, None);
    h.insert(addr(8), "mixer", None, None);
    (g, h)
}

fn results(g: &MemoryGraph, h: &MemoryLabelHistory) -> Vec<(Role, crate::risk::ScreenResult)> {
    let mut p = ScreenParams::new("2025-02-01".parse().unwrap());
    p.patterns = None;
    p.hops = 3;
    [10u8, 11, 12]
        .iter()
        .map(|a| (Role::Payee, screen(g, h, &addr(*a), &p).unwrap()))
        .collect()
}

#[test]
fn default_rules_find_sanctioned_reach_mixer_receipt_and_convergence() {
    let (g, h) = setup();
    let rules = AlertsConfig::default().rules_or_default();
    let f = evaluate(&rules, &results(&g, &h));
    let by_rule = |r: &str| f.iter().filter(|x| x.rule == r).collect::<Vec<_>>();
    let s = by_rule("reaches-sanctioned");
    assert_eq!(s.len(), 1, "{f:#?}");
    assert_eq!(s[0].subject, addr(10));
    assert_eq!(s[0].severity, RiskLevel::High);
    assert_eq!(s[0].addresses, vec![addr(9)]);
    let m = by_rule("direct-from-mixer");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].subject, addr(11));
    assert_eq!(m[0].severity, RiskLevel::Medium);
    let c = by_rule("payee-convergence");
    assert_eq!(c.len(), 1, "{c:#?}");
    assert_eq!(c[0].subject, addr(50));
    assert_eq!(c[0].role, Role::Destination);
    assert_eq!(c[0].addresses, vec![addr(10), addr(11), addr(12)]);
    // Keys are stable across evaluations.
    let again = evaluate(&rules, &results(&g, &h));
    let k1: Vec<_> = f.iter().map(|x| &x.key).collect();
    let k2: Vec<_> = again.iter().map(|x| &x.key).collect();
    assert_eq!(k1, k2);
}

#[test]
fn min_share_and_hop_limits_apply() {
    let (g, h) = setup();
    let mut rules = AlertsConfig::default().rules_or_default();
    rules.truncate(1);
    rules[0].max_hops = 1; // direct only: the sanctioned address is 2 transfers away
    assert!(evaluate(&rules, &results(&g, &h)).is_empty());
    rules[0].max_hops = 4;
    rules[0].min_share = 0.5; // 400 of 900 sent = 44 %
    assert!(evaluate(&rules, &results(&g, &h)).is_empty());
}
