//! Detector tests on small hand-built graphs, one (or more) per typology, with negatives.
#![allow(clippy::unwrap_used)]

use super::*;
use alloy_primitives::B256;
use paytrace_indexer::{BlockNumber, ChainId, TransferKind};

pub(crate) fn addr(n: u8) -> Address {
    Address::Evm([n; 20])
}

fn txn(n: u64) -> Address {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&n.to_be_bytes());
    Address::Tx(b)
}

/// A native transfer at `time` seconds (block = time), one per transaction.
pub(crate) fn t(time: u64, from: u8, to: u8, amount: u64) -> Transfer {
    ta(time, 0, addr(from), addr(to), amount)
}

pub(crate) fn ta(time: u64, pos: u32, from: Address, to: Address, amount: u64) -> Transfer {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&time.to_be_bytes());
    Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(time),
            tx_index: 0,
            kind: TransferKind::Native,
            position: pos,
        },
        time: Timestamp(time),
        tx_hash: TxHash(B256::from(h)),
        from,
        to,
        asset: Asset::Native,
        amount: Amount::from_u64(amount),
        trace_address: vec![],
    }
}

fn params(kind: PatternKind) -> PatternParams {
    PatternParams {
        kinds: vec![kind],
        ..PatternParams::default()
    }
}

fn only(ts: &[Transfer], kind: PatternKind) -> Vec<PatternInstance> {
    detect(ts, &params(kind)).instances
}

#[test]
fn fan_in_needs_enough_distinct_senders_in_the_window() {
    // Senders 1..=5 into 100 within an hour: one instance with 6 members.
    let mut ts: Vec<Transfer> = (1..=5)
        .map(|i| t(1000 + u64::from(i) * 60, i, 100, 50))
        .collect();
    // Sender 6 a week later: outside the window, not part of it.
    ts.push(t(1000 + 8 * DAY, 6, 100, 50));
    let v = only(&ts, PatternKind::FanIn);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].center, addr(100));
    assert_eq!(v[0].members.len(), 6);
    assert_eq!(v[0].transfers.len(), 5);
    assert!((v[0].score - 0.5).abs() < 1e-9);
    // Four senders only: nothing; five from the same sender: nothing.
    assert!(only(&ts[1..], PatternKind::FanIn).is_empty());
    let same: Vec<Transfer> = (1..=5).map(|i| t(1000 + i * 60, 1, 100, 50)).collect();
    assert!(only(&same, PatternKind::FanIn).is_empty());
    // The amount filter drops large transfers.
    let p = PatternParams {
        fan_max_amount: Some(Amount::from_u64(49)),
        ..params(PatternKind::FanIn)
    };
    assert!(detect(&ts, &p).instances.is_empty());
}

#[test]
fn fan_out_mirrors_fan_in() {
    // 100 paid one receiver a month before (its usual degree), then 10 within a minute.
    let mut ts: Vec<Transfer> = (1..=10)
        .map(|i| t(40 * DAY + u64::from(i), 100, i, 5))
        .collect();
    ts.push(t(10 * DAY, 100, 1, 5));
    let v = only(&ts, PatternKind::FanOut);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].center, addr(100));
    assert_eq!(v[0].score, 1.0, "10 receivers = 2 x minimum");
    assert!(only(&ts, PatternKind::FanIn).is_empty());
}

#[test]
fn fan_degree_is_judged_against_the_centers_usual_degree() {
    // Without anything before or after the burst its usual degree is unknown: no instance
    // (a degree cannot be unusual against itself).
    let burst: Vec<Transfer> = (1..=10)
        .map(|i| t(40 * DAY + u64::from(i), i, 100, 5))
        .collect();
    assert!(only(&burst, PatternKind::FanIn).is_empty());
    // A quiet month before: the burst is unusual.
    let mut quiet = burst.clone();
    quiet.push(t(DAY, 1, 100, 5));
    let v = only(&quiet, PatternKind::FanIn);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].summary.contains("usual"), "{}", v[0].summary);
    // A busy center (a service: 8 new senders every day for a month): 10 in a day is usual.
    let mut busy = burst;
    for d in 1..30u64 {
        for k in 0..8u8 {
            busy.push(t(
                d * DAY + u64::from(k),
                20 + k + u8::try_from(d).unwrap() * 8 % 200,
                100,
                5,
            ));
        }
    }
    assert!(only(&busy, PatternKind::FanIn).is_empty());
}

#[test]
fn fan_in_of_amounts_unusual_for_their_senders() {
    // Senders 1..=3 each pay two other receivers 500 every few days; on one day each sends
    // 4 into 100 (a tenth of a percent of their usual payment). No window or amount bound is
    // needed: the whole run is one window.
    let mut ts = Vec::new();
    for s in 1..=3u8 {
        for (k, r) in [(1u64, 200u8), (2, 201), (3, 202)] {
            ts.push(t(k * DAY + u64::from(s), s, r, 500));
        }
        ts.push(t(10 * DAY + u64::from(s) * 60, s, 100, 4));
        ts.push(t(10 * DAY + u64::from(s) * 60 + 1, s, 100, 4));
    }
    // Sender 4 always pays 4: nothing unusual about it.
    for (k, r) in [(1u64, 200u8), (2, 201), (11, 100)] {
        ts.push(t(k * DAY + 9, 4, r, 4));
    }
    let p = PatternParams {
        fan_window_secs: 30 * DAY,
        ..params(PatternKind::FanIn)
    };
    let v = detect(&ts, &p).instances;
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].center, addr(100));
    assert_eq!(v[0].members, vec![addr(1), addr(2), addr(3), addr(100)]);
    assert_eq!(v[0].transfers.len(), 6);
    assert!(v[0].summary.contains("unusual"), "{}", v[0].summary);
    // One such sender is not a fan-in.
    let one: Vec<Transfer> = ts
        .iter()
        .filter(|x| x.from != addr(2) && x.from != addr(3))
        .cloned()
        .collect();
    assert!(detect(&one, &p).instances.is_empty());
}

#[test]
fn identical_instances_are_merged() {
    // Two round trips through the same addresses within one window (the second leg twice):
    // one instance with the union of the evidence.
    let ts = vec![
        t(100, 1, 2, 100),
        ta(200, 0, addr(2), addr(1), 50),
        ta(200, 1, addr(2), addr(1), 50),
    ];
    let v = only(&ts, PatternKind::Cycle);
    assert_eq!(
        v.len(),
        1,
        "same kind, center, members and window listed twice: {v:#?}"
    );
    assert_eq!(v[0].transfers.len(), 3);
    assert_eq!(v[0].members, vec![addr(1), addr(2)]);
}

#[test]
fn scatter_gather_and_gather_scatter() {
    // 1 scatters to 10, 11, 12; they gather into 20.
    let mut ts = vec![t(100, 1, 10, 30), t(110, 1, 11, 30), t(120, 1, 12, 30)];
    ts.extend([t(500, 10, 20, 29), t(510, 11, 20, 29), t(520, 12, 20, 29)]);
    let v = only(&ts, PatternKind::ScatterGather);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].center, addr(1));
    assert_eq!(
        v[0].members,
        vec![addr(1), addr(10), addr(11), addr(12), addr(20)]
    );
    assert_eq!(v[0].transfers.len(), 6);
    // Only two of them gather: no instance.
    assert!(only(&ts[..5], PatternKind::ScatterGather).is_empty());

    // 30, 31, 32 gather into 40, which scatters to 50, 51, 52.
    let mut g = vec![t(100, 30, 40, 10), t(110, 31, 40, 10), t(120, 32, 40, 10)];
    g.extend([t(300, 40, 50, 9), t(310, 40, 51, 9), t(320, 40, 52, 9)]);
    let v = only(&g, PatternKind::GatherScatter);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].center, addr(40));
    assert_eq!(v[0].members.len(), 7);
    // Scatter before the gather does not count.
    let early = vec![
        t(10, 40, 50, 9),
        t(11, 40, 51, 9),
        t(12, 40, 52, 9),
        t(100, 30, 40, 10),
        t(110, 31, 40, 10),
        t(120, 32, 40, 10),
    ];
    assert!(only(&early, PatternKind::GatherScatter).is_empty());
}

#[test]
fn pass_through_requires_fast_forwarding_of_most_of_the_value() {
    // 2 receives 1000, forwards 950 after 10 minutes.
    let ts = vec![t(1000, 1, 2, 1000), t(1600, 2, 3, 950)];
    let v = only(&ts, PatternKind::PassThrough);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].center, addr(2));
    assert!(v[0].score > 0.9, "{}", v[0].score);
    // Forwarded only half: nothing. Forwarded after two hours (window one hour): nothing.
    assert!(
        only(
            &[t(1000, 1, 2, 1000), t(1600, 2, 3, 500)],
            PatternKind::PassThrough
        )
        .is_empty()
    );
    assert!(
        only(
            &[t(1000, 1, 2, 1000), t(8200, 2, 3, 1000)],
            PatternKind::PassThrough
        )
        .is_empty()
    );
}

#[test]
fn peel_chain_on_account_transfers() {
    // 1 funds 10 with 1000; 10 sends 900 to fresh 11 and 100 to 90; 11: 800 to 12, 100 to 91;
    // 12: 700 to 13, 100 to 92.
    let ts = vec![
        t(100, 1, 10, 1000),
        t(200, 10, 11, 900),
        t(201, 10, 90, 100),
        t(300, 11, 12, 800),
        t(301, 11, 91, 100),
        t(400, 12, 13, 700),
        t(401, 12, 92, 100),
    ];
    let v = only(&ts, PatternKind::Peel);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].center, addr(10));
    assert_eq!(v[0].transfers.len(), 7);
    // Two hops only (min 3): nothing.
    assert!(only(&ts[..5], PatternKind::Peel).is_empty());
    // An even split is not a peel.
    let even = vec![
        t(100, 1, 10, 1000),
        t(200, 10, 11, 500),
        t(201, 10, 90, 500),
        t(300, 11, 12, 250),
        t(301, 11, 91, 250),
        t(400, 12, 13, 125),
        t(401, 12, 92, 125),
    ];
    assert!(only(&even, PatternKind::Peel).is_empty());
}

#[test]
fn peel_chain_through_utxo_transaction_nodes() {
    // Bitcoin-style: each hop is a transaction with one input and two outputs.
    let mut ts = vec![ta(100, 0, addr(1), addr(10), 10_000)];
    let mut from = addr(10);
    let mut amount = 10_000u64;
    for hop in 0..4u8 {
        let time = 200 + u64::from(hop) * 100;
        let tx = txn(u64::from(hop));
        let next = addr(11 + hop);
        let mut input = ta(time, 0, from, tx, amount);
        input.key.kind = TransferKind::Utxo;
        let mut major = ta(
            time,
            paytrace_indexer::model::UTXO_OUTPUT_BASE,
            tx,
            next,
            amount - 500,
        );
        major.key.kind = TransferKind::Utxo;
        let mut minor = ta(
            time,
            paytrace_indexer::model::UTXO_OUTPUT_BASE + 1,
            tx,
            addr(90 + hop),
            500,
        );
        minor.key.kind = TransferKind::Utxo;
        ts.extend([input, major, minor]);
        from = next;
        amount -= 500;
    }
    let v = only(&ts, PatternKind::Peel);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].members.iter().all(|a| !a.is_tx()));
    assert_eq!(v[0].center, addr(10));
    assert_eq!(v[0].score, 0.5 + 0.5 / 3.0);
}

#[test]
fn cycle_returns_value_within_the_window() {
    let ts = vec![t(100, 1, 2, 100), t(200, 2, 3, 99), t(300, 3, 1, 98)];
    let v = only(&ts, PatternKind::Cycle);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].members, vec![addr(1), addr(2), addr(3)]);
    assert_eq!(v[0].transfers.len(), 3);
    assert_eq!(v[0].cycle_kind, Some(CycleKind::RoundTrip));
    assert_eq!(v[0].score, 0.5);
    // Time-respecting from 3 (3 -> 1 first): a round trip of 3, not of its smallest address.
    let from3 = vec![t(300, 1, 2, 100), t(400, 2, 3, 99), t(100, 3, 1, 98)];
    let v = only(&from3, PatternKind::Cycle);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].cycle_kind, Some(CycleKind::RoundTrip));
    assert_eq!(v[0].center, addr(3));
    // In no time order from any address (each hop before the previous one): no round trip,
    // but a closed loop of value, scored half.
    let back = vec![t(300, 1, 2, 100), t(200, 2, 3, 99), t(100, 3, 1, 98)];
    let v = only(&back, PatternKind::Cycle);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].cycle_kind, Some(CycleKind::ClosedLoop));
    assert_eq!(v[0].score, 0.25);
    assert_eq!(v[0].center, addr(1));
    assert_eq!(v[0].transfers.len(), 3);
    let json = serde_json::to_value(&v[0]).unwrap();
    assert_eq!(json["cycle_kind"], "closed-loop");
    // Outside the window: neither.
    let late = vec![
        t(100, 1, 2, 100),
        t(200, 2, 3, 99),
        t(100 + 8 * DAY, 3, 1, 98),
    ];
    assert!(only(&late, PatternKind::Cycle).is_empty());
    // A loop in no time order whose edges are used long apart, but with a later repetition
    // of one edge that brings them within the window.
    let rep = vec![
        t(100, 3, 1, 98),
        t(100 + 20 * DAY, 2, 3, 99),
        t(100 + 21 * DAY, 1, 2, 100),
        t(100 + 22 * DAY, 3, 1, 98),
    ];
    let v = only(&rep, PatternKind::Cycle);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].cycle_kind, Some(CycleKind::ClosedLoop));
    assert_eq!(v[0].first_time, Timestamp(100 + 20 * DAY));
}

/// A swap is no round trip: 1 pays the router 5 in one token and the router pays 1 back in
/// another in the same transaction (before, "value left 1 and returned through 2 transfers"
/// made every payee who sold an airdrop at a DEX medium). The same shape in one asset is one.
#[test]
fn a_cycle_moves_one_asset() {
    let token = |mut x: Transfer, tok: u8| {
        x.asset = Asset::Token(addr(tok));
        x.key.kind = TransferKind::Token;
        x
    };
    let swap = vec![
        token(ta(100, 0, addr(1), addr(5), 1_000), 0xa1),
        token(ta(100, 1, addr(5), addr(1), 990), 0xa2),
        // and a loop in no time order, its legs in two assets
        token(t(300, 2, 3, 50), 0xa1),
        token(t(200, 3, 2, 50), 0xa2),
    ];
    assert!(only(&swap, PatternKind::Cycle).is_empty());
    let same = vec![
        token(ta(100, 0, addr(1), addr(5), 1_000), 0xa1),
        token(ta(100, 1, addr(5), addr(1), 990), 0xa1),
        token(t(300, 2, 3, 50), 0xa1),
        token(t(200, 3, 2, 50), 0xa1),
    ];
    let v = only(&same, PatternKind::Cycle);
    assert_eq!(v.len(), 2, "{v:#?}");
}

#[test]
fn structuring_counts_amounts_just_under_the_threshold() {
    let p = PatternParams {
        structuring_threshold: Some(Amount::from_u64(10_000)),
        ..params(PatternKind::Structuring)
    };
    // Three of 9 500 (within 10 % under 10 000) in a day, one of 10 000 (not under).
    let ts = vec![
        t(100, 1, 2, 9_500),
        t(200, 1, 3, 9_900),
        t(300, 1, 4, 9_100),
        t(400, 1, 5, 10_000),
    ];
    let v = detect(&ts, &p).instances;
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].center, addr(1));
    assert_eq!(v[0].transfers.len(), 3);
    // 8 000 is too far under.
    let far = vec![
        t(100, 1, 2, 8_000),
        t(200, 1, 3, 8_000),
        t(300, 1, 4, 8_000),
    ];
    assert!(detect(&far, &p).instances.is_empty());
}

#[test]
fn names_parse_and_max_instances_truncates() {
    for k in PatternKind::ALL {
        assert_eq!(k.as_str().parse::<PatternKind>().unwrap(), k);
    }
    assert_eq!("fan_in".parse::<PatternKind>().unwrap(), PatternKind::FanIn);
    assert!("fanin".parse::<PatternKind>().is_err());
    let mut ts = Vec::new();
    for c in 0..3u8 {
        ts.extend((1..=5).map(|i| t(40 * DAY + u64::from(i), 10 * c + i, 200 + c, 5)));
        ts.push(t(DAY, 1, 200 + c, 5));
    }
    let p = PatternParams {
        max_instances: 2,
        ..params(PatternKind::FanIn)
    };
    let r = detect(&ts, &p);
    assert_eq!(r.instances.len(), 2);
    assert_eq!(r.truncated, 1);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn graph() -> impl Strategy<Value = Vec<Transfer>> {
        prop::collection::vec((0u64..200, 1u8..12, 1u8..12, 1u64..2_000), 0..60).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (time, f, to, amt))| {
                    let mut x = t(time * 600, f, to, amt);
                    x.key.tx_index = u32::try_from(i).unwrap();
                    x
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Instances only use input transfers, members are exactly the evidence endpoints (and
        /// the center), scores are in [0, 1], fan-in evidence all goes to its center from at
        /// least the minimum of distinct senders, and the result does not depend on the input
        /// order.
        #[test]
        fn instances_are_consistent_and_order_independent(ts in graph()) {
            let p = PatternParams {
                fan_min_counterparties: 3,
                sg_min_branches: 2,
                peel_min_hops: 2,
                structuring_threshold: Some(Amount::from_u64(1_000)),
                structuring_min_count: 2,
                ..PatternParams::default()
            };
            let r = detect(&ts, &p);
            let keys: std::collections::HashSet<TransferKey> = ts.iter().map(|t| t.key).collect();
            for i in &r.instances {
                prop_assert!((0.0..=1.0).contains(&i.score));
                let mut m: Vec<Address> = i.transfers.iter().flat_map(|t| [t.from, t.to]).collect();
                m.push(i.center);
                m.sort();
                m.dedup();
                prop_assert_eq!(&m, &i.members);
                prop_assert!(i.transfers.iter().all(|t| keys.contains(&t.key)));
                if i.kind == PatternKind::FanIn {
                    prop_assert!(i.transfers.iter().all(|t| t.to == i.center));
                    let senders: std::collections::BTreeSet<Address> =
                        i.transfers.iter().map(|t| t.from).collect();
                    prop_assert!(senders.len() >= p.fan_min_unusual.min(3));
                }
            }
            let mut rev = ts.clone();
            rev.reverse();
            let r2 = detect(&rev, &p);
            prop_assert_eq!(r.instances, r2.instances);
        }
    }
}
