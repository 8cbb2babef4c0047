//! Ethereum clustering on hand-built transfers: deposit addresses sweeping to labelled
//! exchange hot wallets, users sharing a deposit address, an airdrop forwarded to one
//! aggregation address; inherited labels and conflicts; incremental runs.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests

mod cluster_util;

use cluster_util::*;
use paytrace_app::clusters::{ClusterStore, exchanges_from_labels};
use paytrace_indexer::{
    Address, Asset, BlockNumber, ChainId, ChainKind, Transfer, TransferKind,
    labels::{Candidate, Category, Defaults, LabelStore},
};
use paytrace_tracer::cluster::{
    ClusterParams, ClusterState, Exchanges, Heuristic, MemoryTransfers, NoPersisted, run_range,
};
use std::collections::BTreeSet;

const ETH: u64 = 1_000_000_000_000_000_000;
const GAS: u64 = 21_000 * 2_000_000_000;

fn native(block: u64, tx: u32, from: Address, to: Address, v: u64) -> Transfer {
    evm(
        block,
        tx,
        TransferKind::Native,
        0,
        from,
        to,
        Asset::Native,
        v,
    )
}

fn token(
    block: u64,
    tx: u32,
    pos: u32,
    tok: Address,
    from: Address,
    to: Address,
    v: u64,
) -> Transfer {
    evm(
        block,
        tx,
        TransferKind::Token,
        pos,
        from,
        to,
        Asset::Token(tok),
        v,
    )
}

struct World {
    ts: Vec<Transfer>,
    expected: BTreeSet<Vec<Address>>,
}

fn sorted(mut v: Vec<Address>) -> Vec<Address> {
    v.sort();
    v
}

/// Hot wallets e(1) (Binance) and e(2) (Kraken).
fn world() -> World {
    let (hot1, hot2) = (e(1), e(2));
    let (d1, d2, d3) = (e(10), e(11), e(12));
    let (u1, u2, u3) = (e(20), e(21), e(22));
    let usdt = e(60);
    let drop_token = e(41);
    let mut ts = vec![
        // two users deposit to d1, which sweeps everything minus gas to hot1
        native(1, 0, u1, d1, ETH),
        native(2, 0, u2, d1, 2 * ETH),
        native(3, 0, d1, hot1, 3 * ETH - GAS),
        // a token deposit swept in full to hot2
        token(2, 1, 0, usdt, u3, d2, 100_000_000),
        token(4, 0, 0, usdt, d2, hot2, 100_000_000),
        // u1 uses a second deposit address
        native(5, 0, u1, d3, 5 * ETH),
        native(6, 0, d3, hot1, 5 * ETH - GAS),
        // forwards only half to an exchange: not a deposit address
        native(2, 2, e(23), e(13), ETH),
        native(3, 1, e(13), hot1, ETH / 2),
        // sends elsewhere first: not a deposit address
        native(2, 3, e(24), e(14), ETH),
        native(3, 2, e(14), e(30), ETH / 5),
        native(4, 1, e(14), hot1, ETH * 4 / 5 - GAS),
        // sent after the last sweep: not merged (no sweep proves it reached the exchange)
        native(11, 0, e(25), d1, ETH),
    ];
    // airdrop of 13 recipients in one transaction
    for i in 0..13u32 {
        ts.push(token(7, 0, i, drop_token, e(40), e(100 + i), 1_000));
    }
    // three recipients forward to one aggregation address, one elsewhere, one to an exchange
    ts.push(token(8, 0, 0, drop_token, e(100), e(50), 1_000));
    ts.push(token(9, 0, 0, drop_token, e(101), e(50), 1_000));
    ts.push(token(10, 0, 0, drop_token, e(102), e(50), 990));
    ts.push(token(10, 1, 0, drop_token, e(103), e(51), 1_000));
    ts.push(token(10, 2, 0, drop_token, e(104), hot1, 1_000));
    ts.sort_by_key(|t| t.key);
    let expected = BTreeSet::from([
        sorted(vec![u1, u2, d1, d3]),
        sorted(vec![u3, d2]),
        sorted(vec![e(100), e(101), e(102), e(50)]),
    ]);
    World { ts, expected }
}

fn exchanges() -> Exchanges {
    let mut ex = Exchanges::new();
    ex.insert(e(1), Some("Binance".into()));
    ex.insert(e(2), Some("Kraken".into()));
    ex
}

#[test]
fn deposit_and_airdrop_clusters_in_memory() {
    let w = world();
    let src = MemoryTransfers::new(w.ts.clone());
    let params = ClusterParams::default();
    let mut state = ClusterState::new(params.guard);
    run_range(
        &src,
        &mut state,
        &NoPersisted,
        &params,
        &exchanges(),
        ChainId(1),
        ChainKind::Evm,
        BlockNumber(0),
        BlockNumber(11),
    )
    .unwrap();
    assert_eq!(
        state.clusters().into_iter().collect::<BTreeSet<_>>(),
        w.expected
    );
    let mut deps: Vec<(Address, Address, Option<String>)> = state
        .deposits()
        .map(|d| (d.deposit, d.exchange, d.entity.clone()))
        .collect();
    deps.sort();
    assert_eq!(
        deps,
        vec![
            (e(10), e(1), Some("Binance".into())),
            (e(11), e(2), Some("Kraken".into())),
            (e(12), e(1), Some("Binance".into())),
            // an airdrop recipient that sold everything on the exchange looks like one (its
            // distributor is not merged with it: an airdrop is not a deposit)
            (e(104), e(1), Some("Binance".into())),
        ]
    );
    // evidence: the deposit merges carry the deposit tx and the sweep tx
    let m = state.merges().iter().find(|m| m.a == e(21)).unwrap();
    assert_eq!(m.heuristic, Heuristic::DepositAddress);
    assert_eq!(m.block.0, 2);
    assert_eq!(
        m.related_tx,
        Some(w.ts.iter().find(|t| t.from == e(10)).unwrap().tx_hash)
    );
    assert!(
        state
            .merges()
            .iter()
            .filter(|m| m.heuristic == Heuristic::Airdrop)
            .count()
            == 3
    );
}

fn import_labels(
    store: &paytrace_indexer::Store,
    rows: &[(Address, Category, &str)],
) -> LabelStore {
    let labels = LabelStore::open(store).unwrap();
    let mut s = labels
        .begin_import("test", "test", None, vec!["t".into()], Defaults::default())
        .unwrap();
    s.set_version_if_unset("2020-01-01");
    for (i, (a, c, entity)) in rows.iter().enumerate() {
        s.add(Candidate {
            file: "t".into(),
            line: i as u64 + 1,
            address: a.to_string(),
            currency: Some("ETH".into()),
            entity: Some((*entity).into()),
            category: Some(*c),
            ..Candidate::default()
        })
        .unwrap();
    }
    s.finish().unwrap();
    labels
}

#[test]
fn incremental_runs_on_the_store_equal_one_run_and_labels_are_inherited() {
    let w = world();
    let addrs: BTreeSet<Address> = w.ts.iter().flat_map(|t| [t.from, t.to]).collect();
    let mut parts = Vec::new();
    for cuts in [vec![], vec![3, 8], vec![1, 2, 4, 5, 6, 7, 9, 10]] {
        let (_dir, store, chain) = new_store("dev", ChainKind::Evm);
        let labels = import_labels(
            &store,
            &[
                (e(1), Category::Exchange, "Binance"),
                (e(2), Category::Exchange, "Kraken"),
                (e(21), Category::PayrollProvider, "Acme Payroll"),
            ],
        );
        let ex = exchanges_from_labels(&labels).unwrap();
        assert_eq!(ex.len(), 2);
        let cs = ClusterStore::open(&store).unwrap();
        let mut lo = 1;
        for hi in cuts.iter().copied().chain([11]) {
            write_blocks(&store, chain, &w.ts, lo, hi);
            cs.run(&store, "dev", &ClusterParams::default(), &ex)
                .unwrap();
            lo = hi + 1;
        }
        let p = partition(&cs, addrs.iter().copied());
        // e(21) is labelled as a service (payroll provider), so it is not merged as a user.
        let mut expected = w.expected.clone();
        let first = expected
            .iter()
            .find(|c| c.contains(&e(20)))
            .unwrap()
            .clone();
        expected.remove(&first);
        expected.insert(first.into_iter().filter(|a| *a != e(21)).collect());
        assert_eq!(p, expected, "cuts {cuts:?}");
        // labels: the users' cluster inherits the deposit attributions of d1 and d3
        let c = cs.cluster_of(&e(20)).unwrap().unwrap();
        let l = cs.labels(c, &labels).unwrap();
        assert_eq!(l.labels.len(), 2);
        assert!(
            l.labels
                .iter()
                .all(|x| x.category == "exchange_deposit" && x.entity == "Binance")
        );
        assert!(l.conflicts.is_empty());
        assert_eq!(
            cs.deposit(&e(11)).unwrap().unwrap().entity.as_deref(),
            Some("Kraken")
        );
        parts.push(p);
    }
    assert!(parts.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn conflicting_labels_are_reported() {
    let w = world();
    let (_dir, store, chain) = new_store("dev", ChainKind::Evm);
    // the aggregation address is labelled as a Kraken hot wallet... after the fact, and a
    // recipient as a wallet service: two entities in one cluster.
    let labels = import_labels(
        &store,
        &[
            (e(100), Category::WalletService, "SomeWallet"),
            (e(50), Category::Otc, "Desk"),
        ],
    );
    write_blocks(&store, chain, &w.ts, 1, 11);
    let cs = ClusterStore::open(&store).unwrap();
    cs.run(&store, "dev", &ClusterParams::default(), &exchanges())
        .unwrap();
    let c = cs.cluster_of(&e(50)).unwrap().unwrap();
    let l = cs.labels(c, &labels).unwrap();
    assert_eq!(l.conflicts.len(), 1);
    assert_eq!(
        l.conflicts[0].entities,
        vec!["Desk".to_owned(), "SomeWallet".to_owned()]
    );
    let members: BTreeSet<Address> = l.labels.iter().map(|x| x.member).collect();
    assert_eq!(members, BTreeSet::from([e(50), e(100)]));
}

/// Airdrop recipients that sell through a labelled DEX router are not merged with it (nor,
/// through it, with each other): a service they all use is no aggregation address. Before the
/// rule only hot wallets were excluded, so every seller joined the router's cluster.
#[test]
fn airdrop_forwards_to_a_labelled_service_merge_nothing() {
    let drop_token = e(41);
    let router = e(70);
    let mut ts = Vec::new();
    for i in 0..12u32 {
        ts.push(token(7, 0, i, drop_token, e(40), e(100 + i), 1_000));
    }
    for i in 0..4u32 {
        ts.push(token(
            8 + u64::from(i),
            0,
            0,
            drop_token,
            e(100 + i),
            router,
            1_000,
        ));
    }
    ts.sort_by_key(|t| t.key);
    let src = MemoryTransfers::new(ts);
    let params = ClusterParams::default();
    let mut ex = exchanges();
    ex.insert_service(router);
    let mut state = ClusterState::new(params.guard);
    run_range(
        &src,
        &mut state,
        &NoPersisted,
        &params,
        &ex,
        ChainId(1),
        ChainKind::Evm,
        BlockNumber(0),
        BlockNumber(20),
    )
    .unwrap();
    assert!(state.clusters().is_empty(), "{:?}", state.clusters());
    assert!(state.merges().is_empty());
}
