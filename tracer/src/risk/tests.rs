//! Screening on hand-built graphs: direct and indirect exposure, as-of labels, scoring.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::MemoryGraph;
use alloy_primitives::B256;
use paytrace_indexer::{BlockNumber, TransferKey, TransferKind, TxHash};

fn addr(n: u8) -> Address {
    Address::Evm([n; 20])
}

fn d(s: &str) -> Date {
    s.parse().unwrap()
}

/// Unix seconds of noon on `day`.
fn at(day: &str) -> u64 {
    end_of_day(d(day)).0 - 43_200
}

fn t(block: u64, day: &str, from: u8, to: u8, amount: u64) -> Transfer {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: 0,
            kind: TransferKind::Native,
            position: 0,
        },
        time: Timestamp(at(day)),
        tx_hash: TxHash(B256::from(h)),
        from: addr(from),
        to: addr(to),
        asset: Asset::Native,
        amount: Amount::from_u64(amount),
        trace_address: vec![],
    }
}

const PAYER: u8 = 1;
const WORKER: u8 = 2;
const HOP: u8 = 3;
const SANCTIONED: u8 = 9;
const MIXER: u8 = 8;

/// Payer pays the worker 1000 on 2025-01-10; the worker sends 600 to HOP on 01-11, which sends
/// 500 to SANCTIONED on 01-12; the worker also sends 100 to a mixer on 01-13.
fn graph() -> MemoryGraph {
    MemoryGraph::from_transfers([
        t(1, "2025-01-10", PAYER, WORKER, 1000),
        t(2, "2025-01-11", WORKER, HOP, 600),
        t(3, "2025-01-12", HOP, SANCTIONED, 500),
        t(4, "2025-01-13", WORKER, MIXER, 100),
    ])
}

fn params(day: &str) -> ScreenParams {
    let mut p = ScreenParams::new(d(day));
    p.patterns = None;
    p
}

#[test]
fn indirect_exposure_to_a_counterparty_sanctioned_at_the_time() {
    let mut h = MemoryLabelHistory::new();
    h.insert(addr(SANCTIONED), "sanctioned", Some(d("2024-06-01")), None);
    h.insert(addr(MIXER), "mixer", None, None);
    let r = screen(&graph(), &h, &addr(WORKER), &params("2025-02-01")).unwrap();
    // Direct: 100 of 700 sent to a mixer.
    assert_eq!(r.direct.len(), 1, "{:#?}", r.direct);
    let m = &r.direct[0];
    assert_eq!((m.category.as_str(), m.direction), ("mixer", Flow::Sent));
    assert_eq!(m.amount, Amount::from_u64(100));
    assert!((m.share - 100.0 / 700.0).abs() < 1e-9);
    assert!(m.labelled_at_time);
    // Indirect: HOP (hop 0) received 600 and sent 500 to SANCTIONED (hop 1).
    let s = r
        .indirect
        .iter()
        .find(|e| e.category.as_str() == "sanctioned")
        .unwrap();
    assert_eq!(s.direction, Flow::Sent);
    assert_eq!(s.hops, 1);
    assert_eq!(s.amount, Amount::from_u64(500));
    assert!(s.labelled_at_time);
    assert_eq!(s.counterparties, vec![addr(SANCTIONED)]);
    assert_eq!(s.paths.len(), 1);
    // 500/700 = 71 % ≥ 10 %: 100 × 0.8 = 80 → severe.
    assert!((s.score - 80.0).abs() < 1e-9, "{}", s.score);
    assert_eq!(r.level, RiskLevel::Severe);
    assert_eq!(r.reasons[0].kind, "indirect");
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == "direct" && x.category == "mixer")
    );
    // The payer: received nothing; its payout reached the sanctioned address two hops on.
    let p = screen(&graph(), &h, &addr(PAYER), &params("2025-02-01")).unwrap();
    let s = p
        .indirect
        .iter()
        .find(|e| e.category.as_str() == "sanctioned")
        .unwrap();
    assert_eq!(s.hops, 2);
}

#[test]
fn a_counterparty_sanctioned_after_the_transfers_is_reported_as_such() {
    let mut h = MemoryLabelHistory::new();
    h.insert(addr(SANCTIONED), "sanctioned", Some(d("2025-06-01")), None);
    // Screened before the listing: nothing.
    let before = screen(&graph(), &h, &addr(WORKER), &params("2025-03-01")).unwrap();
    assert_eq!(before.level, RiskLevel::None, "{:#?}", before.reasons);
    assert!(before.indirect.is_empty());
    // Screened after: exposure, flagged as labelled after the transfers, half weight.
    let after = screen(&graph(), &h, &addr(WORKER), &params("2025-07-01")).unwrap();
    let s = &after.indirect[0];
    assert_eq!(s.category.as_str(), "sanctioned");
    assert!(!s.labelled_at_time);
    assert_eq!(s.listed_since.as_deref(), Some("2025-06-01"));
    assert!((s.score - 40.0).abs() < 1e-9, "{}", s.score);
    assert_eq!(after.level, RiskLevel::Medium);
    assert!(!after.reasons[0].labelled_at_time);
    assert!(
        after.reasons[0].text.contains("only since 2025-06-01"),
        "{}",
        after.reasons[0].text
    );
    // Direct exposure of HOP itself.
    let hop = screen(&graph(), &h, &addr(HOP), &params("2025-07-01")).unwrap();
    assert_eq!(hop.direct[0].category.as_str(), "sanctioned");
    assert!(!hop.direct[0].labelled_at_time);
    assert_eq!(hop.level, RiskLevel::Medium);
    // Delisted before the as-of day: not sanctioned any more.
    let mut h2 = MemoryLabelHistory::new();
    h2.insert(
        addr(SANCTIONED),
        "sanctioned",
        Some(d("2024-01-01")),
        Some(d("2025-05-01")),
    );
    let r = screen(&graph(), &h2, &addr(HOP), &params("2025-07-01")).unwrap();
    assert_eq!(r.level, RiskLevel::None);
}

#[test]
fn indirect_exposure_with_a_later_arrival_after_the_listing_counts_as_labelled_at_time() {
    // The worker's first payment reaches the (later) sanctioned address before its listing on
    // 2025-01-20; a second one after it. The exposure is one, labelled at the time (as for
    // direct exposure, where any transfer while the label held counts).
    let g = MemoryGraph::from_transfers([
        t(1, "2025-01-10", PAYER, WORKER, 1000),
        t(2, "2025-01-11", WORKER, HOP, 600),
        t(3, "2025-01-12", HOP, SANCTIONED, 500),
        t(4, "2025-02-10", WORKER, HOP, 300),
        t(5, "2025-02-11", HOP, SANCTIONED, 350),
    ]);
    let mut h = MemoryLabelHistory::new();
    h.insert(addr(SANCTIONED), "sanctioned", Some(d("2025-01-20")), None);
    let r = screen(&g, &h, &addr(WORKER), &params("2025-03-01")).unwrap();
    let s = r
        .indirect
        .iter()
        .find(|e| e.category.as_str() == "sanctioned")
        .unwrap();
    assert!(s.labelled_at_time, "{s:#?}");
    assert_eq!(s.listed_since.as_deref(), Some("2025-01-20"));
    // Only the first arrival, before the listing: labelled afterwards.
    let early = MemoryGraph::from_transfers([
        t(1, "2025-01-10", PAYER, WORKER, 1000),
        t(2, "2025-01-11", WORKER, HOP, 600),
        t(3, "2025-01-12", HOP, SANCTIONED, 500),
    ]);
    let r = screen(&early, &h, &addr(WORKER), &params("2025-03-01")).unwrap();
    assert!(!r.indirect[0].labelled_at_time);
}

#[test]
fn transfers_after_the_as_of_day_are_ignored_and_received_exposure_is_found() {
    let mut h = MemoryLabelHistory::new();
    h.insert(addr(PAYER), "hack", None, None);
    // The sanctioned address receives from HOP, whose funds came from the worker, whose funds
    // came from a hacker: received-side indirect exposure of SANCTIONED to hack at hop 2.
    let r = screen(&graph(), &h, &addr(SANCTIONED), &params("2025-02-01")).unwrap();
    let e = r
        .indirect
        .iter()
        .find(|e| e.direction == Flow::Received)
        .unwrap();
    assert_eq!(e.category.as_str(), "hack");
    assert_eq!(e.hops, 2);
    assert_eq!(e.amount, Amount::from_u64(500));
    // As of 2025-01-11 the transfer to SANCTIONED (01-12) has not happened.
    let early = screen(&graph(), &h, &addr(SANCTIONED), &params("2025-01-11")).unwrap();
    assert_eq!(early.stats.own_transfers, 0);
    assert_eq!(early.level, RiskLevel::None);
}

#[test]
fn own_label_and_scoring_rules() {
    let mut h = MemoryLabelHistory::new();
    h.insert(addr(WORKER), "sanctioned", None, None);
    let r = screen(&graph(), &h, &addr(WORKER), &params("2025-02-01")).unwrap();
    assert_eq!(r.level, RiskLevel::Severe);
    assert_eq!(r.reasons[0].kind, "label");
    let s = Scoring::default();
    assert_eq!(s.level(0.0), RiskLevel::None);
    assert_eq!(s.level(10.0), RiskLevel::Low);
    assert_eq!(s.level(35.0), RiskLevel::Medium);
    assert_eq!(s.level(60.0), RiskLevel::High);
    assert_eq!(s.level(100.0), RiskLevel::Severe);
    assert!(RiskLevel::High > RiskLevel::Medium);
    assert_eq!("HIGH".parse::<RiskLevel>().unwrap(), RiskLevel::High);
    assert!((ratio(Amount::from_u64(1), Amount::from_u64(3)) - 1.0 / 3.0).abs() < 1e-12);
    let big = Amount::from_raw(alloy_primitives::U256::MAX);
    assert!((ratio(big, big) - 1.0).abs() < 1e-12);
    assert_eq!(ratio(big, Amount::ZERO), 0.0);
}

#[test]
fn patterns_around_the_address_are_reasons() {
    let mut ts: Vec<Transfer> = (10..16)
        .map(|i| t(u64::from(i), "2025-01-10", i, 50, 10))
        .collect();
    ts.push(t(100, "2025-01-11", 50, 60, 55));
    let g = MemoryGraph::from_transfers(ts);
    let mut p = params("2025-02-01");
    p.patterns = Some(PatternParams::default());
    let r = screen(&g, &MemoryLabelHistory::new(), &addr(50), &p).unwrap();
    assert!(
        r.patterns
            .iter()
            .any(|i| i.kind == crate::patterns::PatternKind::FanIn)
    );
    assert!(
        r.reasons
            .iter()
            .any(|x| x.kind == "pattern" && x.category == "fan-in")
    );
    assert!(r.level >= RiskLevel::Low);
    let texts: BTreeSet<_> = r.reasons.iter().map(|x| (x.kind, &x.text)).collect();
    assert_eq!(texts.len(), r.reasons.len(), "a reason is listed twice");
}

/// A random graph of 120 addresses and 1 000 transfers over ~40 days, with a few labelled
/// services, sanctioned addresses and mixers (some listed only later).
fn random_graph() -> (MemoryGraph, MemoryLabelHistory) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = at("2025-01-01");
    let ts: Vec<Transfer> = (1..=1_000u64)
        .map(|b| {
            let from = u8::try_from(1 + next() % 120).unwrap();
            let to = u8::try_from(1 + next() % 120).unwrap();
            let mut tr = t(b, "2025-01-01", from, to, 1 + next() % 1_000_000);
            tr.time = Timestamp(base + b * 3_600);
            tr
        })
        .collect();
    let mut h = MemoryLabelHistory::new();
    for n in [3u8, 40] {
        h.insert(addr(n), "exchange", None, None);
    }
    h.insert(addr(17), "sanctioned", Some(d("2024-01-01")), None);
    h.insert(addr(71), "sanctioned", Some(d("2025-02-15")), None);
    h.insert(addr(99), "mixer", None, None);
    (MemoryGraph::from_transfers(ts), h)
}

#[test]
fn parallel_bulk_screening_equals_serial_screening() {
    let (g, h) = random_graph();
    let addrs: Vec<Address> = (1..=120u8).step_by(2).map(addr).collect();
    let mut p = params("2025-04-01");
    p.patterns = Some(PatternParams::default());
    let serial: Vec<ScreenResult> = addrs
        .iter()
        .map(|a| screen(&g, &h, a, &p).unwrap())
        .collect();
    assert!(serial.iter().any(|r| !r.indirect.is_empty()));
    assert!(serial.iter().any(|r| r.level >= RiskLevel::Medium));
    // Shared cache small enough to evict during the run.
    for threads in [1, 4] {
        let src = CachedSource::new(&g, 200);
        let par = screen_all(&src, &h, &addrs, &p, threads);
        assert_eq!(par.len(), serial.len());
        for (s, r) in serial.iter().zip(par) {
            let r = r.unwrap();
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::to_value(&r).unwrap(),
                "{} with {threads} threads",
                s.address
            );
            assert_eq!(s.reached, r.reached);
        }
        let (hits, _) = src.stats();
        assert!(hits > 0);
    }
}

#[test]
fn bulk_screening_stops_when_asked() {
    let (g, h) = random_graph();
    let addrs: Vec<Address> = (1..=120u8).map(addr).collect();
    let mut seen = Vec::new();
    screen_each(&g, &h, &addrs, &params("2025-04-01"), 3, |i, r| {
        assert_eq!(r.unwrap().address, addrs[i]);
        seen.push(i);
        i < 4
    });
    assert_eq!(seen, vec![0, 1, 2, 3, 4]);
}
