//! Bitcoin clustering: multi-input clusters of the early main chain against an independent
//! computation, CoinJoin shapes that must not merge, the collapse guard, and incremental runs.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)] // tests

mod cluster_util;

use bitcoin::hashes::{Hash, sha256};
use cluster_util::*;
use paytrace_app::clusters::ClusterStore;
use paytrace_indexer::{
    Address, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
};
use paytrace_tracer::cluster::{
    ChangeHeuristic, ChangeRule, ClusterParams, ClusterState, CoinJoinKind, CollapseGuard,
    Exchanges, Heuristic, MemoryTransfers, NoPersisted, run_range,
};
use std::collections::{BTreeSet, HashMap};

const BLK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/btc/blocks1-256.dat"
);

/// The store's script id: sha256 of the output script, P2PK outputs as the P2PKH script of
/// their public key (so they share an identity with the later P2PKH form of the same key).
fn script_id(script: &bitcoin::Script) -> Address {
    let canonical = match script.p2pk_public_key() {
        Some(pk) => bitcoin::ScriptBuf::new_p2pkh(&pk.pubkey_hash()),
        None => script.to_owned(),
    };
    Address::Script(sha256::Hash::hash(canonical.as_bytes()).to_byte_array())
}

fn read_blk(path: &str) -> Vec<bitcoin::Block> {
    let data = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        assert_eq!(
            &data[at..at + 4],
            &[0xf9, 0xbe, 0xb4, 0xd9],
            "magic at {at}"
        );
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        let raw = &data[at + 8..at + 8 + len];
        out.push(bitcoin::consensus::deserialize(raw).unwrap());
        at += 8 + len;
    }
    out
}

/// A spend the test adds after the file: inputs are outpoints (txid, vout).
struct Spend {
    inputs: Vec<(bitcoin::Txid, u32)>,
    to: Address,
}

#[test]
fn blocks_1_256_multi_input_clusters_match_an_independent_computation() {
    let blocks = read_blk(BLK);
    assert_eq!(blocks.len(), 255);
    let (_dir, store, chain) = new_store("btc", ChainKind::Bitcoin);
    let mut utxos: HashMap<(bitcoin::Txid, u32), (Address, u64)> = HashMap::new();
    let mut transfers: Vec<Transfer> = Vec::new();
    let mut refs: Vec<BlockRef> = Vec::new();
    // Input address groups per transaction, for the reference computation.
    let mut groups: Vec<Vec<Address>> = Vec::new();
    let (mut txs, mut spends) = (0, 0);
    let mut coinbase_of: Vec<bitcoin::Txid> = Vec::new();
    let mut add_tx = |height: u64,
                      index: u32,
                      txid: bitcoin::Txid,
                      inputs: Vec<(Address, u64)>,
                      outputs: Vec<(Address, u64)>,
                      transfers: &mut Vec<Transfer>| {
        let mut distinct: Vec<Address> = Vec::new();
        for (a, _) in &inputs {
            if !distinct.contains(a) {
                distinct.push(*a);
            }
        }
        groups.push(distinct);
        transfers.extend(utxo_tx(
            chain,
            height,
            index,
            txid.to_byte_array(),
            &inputs,
            &outputs,
        ));
    };
    for (i, b) in blocks.iter().enumerate() {
        let height = i as u64 + 1;
        refs.push(BlockRef {
            number: BlockNumber(height),
            hash: alloy_primitives::B256::from(b.block_hash().to_byte_array()),
            parent: alloy_primitives::B256::from(b.header.prev_blockhash.to_byte_array()),
            time: Timestamp(u64::from(b.header.time)),
        });
        for (ti, tx) in b.txdata.iter().enumerate() {
            txs += 1;
            let txid = tx.compute_txid();
            let mut inputs = Vec::new();
            if !tx.is_coinbase() {
                spends += 1;
                assert_eq!(tx.input.len(), 1);
                for inp in &tx.input {
                    let prev = (inp.previous_output.txid, inp.previous_output.vout);
                    inputs.push(utxos.remove(&prev).expect("prevout inside the file"));
                }
            } else {
                coinbase_of.push(txid);
            }
            let mut outputs = Vec::new();
            for (vout, o) in tx.output.iter().enumerate() {
                let a = script_id(&o.script_pubkey);
                utxos.insert((txid, vout as u32), (a, o.value.to_sat()));
                outputs.push((a, o.value.to_sat()));
            }
            add_tx(height, ti as u32, txid, inputs, outputs, &mut transfers);
        }
    }
    // Facts from shared/data/README.md.
    assert_eq!((txs, spends), (262, 7));
    assert_eq!(utxos.len(), 260);
    // The early chain has no multi-input transaction: add two blocks of spends of its
    // coinbases so that the clusters are not trivially empty.
    let x = s(900_001);
    let y = s(900_002);
    let z = s(900_003);
    let synth = |bi: u8, ti: u8| {
        bitcoin::Txid::from_byte_array(sha256::Hash::hash(&[bi, ti]).to_byte_array())
    };
    let extra: Vec<Vec<Spend>> = vec![
        vec![
            Spend {
                inputs: vec![
                    (coinbase_of[0], 0),
                    (coinbase_of[1], 0),
                    (coinbase_of[2], 0),
                ],
                to: x,
            },
            Spend {
                inputs: vec![(coinbase_of[3], 0), (coinbase_of[4], 0)],
                to: y,
            },
        ],
        // spends x (the output of the first added tx) with another coinbase
        vec![Spend {
            inputs: vec![(synth(0, 0), 0), (coinbase_of[20], 0)],
            to: z,
        }],
    ];
    let mut prev_hash = refs.last().unwrap().hash;
    for (bi, block) in extra.iter().enumerate() {
        let height = 256 + bi as u64;
        let hash = alloy_primitives::B256::repeat_byte(0xa0 + bi as u8);
        refs.push(BlockRef {
            number: BlockNumber(height),
            hash,
            parent: prev_hash,
            time: Timestamp(1_231_800_000 + height),
        });
        prev_hash = hash;
        for (ti, sp) in block.iter().enumerate() {
            let inputs: Vec<(Address, u64)> =
                sp.inputs.iter().map(|p| utxos.remove(p).unwrap()).collect();
            let total = inputs.iter().map(|(_, v)| v).sum();
            let txid = synth(bi as u8, ti as u8);
            utxos.insert((txid, 0), (sp.to, total));
            add_tx(
                height,
                ti as u32,
                txid,
                inputs,
                vec![(sp.to, total)],
                &mut transfers,
            );
        }
    }
    store.write_range(chain, &refs, &transfers).unwrap();

    let cs = ClusterStore::open(&store).unwrap();
    let report = cs
        .run(&store, "btc", &ClusterParams::default(), &Exchanges::new())
        .unwrap();
    assert_eq!(report.stats.utxo_txs, 262 + 3);
    assert_eq!(report.to, Some(257));

    let expected = naive_clusters(&groups);
    // {coinbase 1, 2, 3}, {coinbase 4, 5}, {x, coinbase 21}: x is joined with the address it
    // was spent with, not with the inputs of the transaction that paid it.
    assert_eq!(
        expected
            .iter()
            .map(Vec::len)
            .collect::<Vec<_>>()
            .iter()
            .sum::<usize>(),
        7,
        "{expected:?}"
    );
    let all: BTreeSet<Address> = transfers
        .iter()
        .flat_map(|t| [t.from, t.to])
        .filter(|a| !a.is_tx())
        .collect();
    assert_eq!(partition(&cs, all.iter().copied()), expected);
    // Evidence: every merge is multi-input, in one of the added transactions.
    assert_eq!(
        cs.cluster_of(&z).unwrap(),
        None,
        "an output is not merged by multi-input"
    );
    assert_eq!(cs.cluster_of(&y).unwrap(), None);
    let first = expected.iter().find(|v| v.len() == 3).unwrap();
    let c = cs.cluster_of(&first[0]).unwrap().unwrap();
    assert_eq!(cs.size(c).unwrap(), 3);
    assert_eq!(cs.members(c).unwrap(), *first);
    let cx = cs.cluster_of(&x).unwrap().unwrap();
    assert_eq!(cs.members(cx).unwrap().len(), 2);
    assert_ne!(c, cx);
    let merges = cs.merges_of(c).unwrap();
    assert_eq!(merges.len(), 2);
    assert!(
        merges
            .iter()
            .all(|m| m.heuristic == Heuristic::MultiInput && m.block.0 >= 256)
    );
    // A second run has nothing to do.
    let again = cs
        .run(&store, "btc", &ClusterParams::default(), &Exchanges::new())
        .unwrap();
    assert_eq!(again.from, None);
}

/// The transfers of CoinJoin-shaped transactions and of ordinary multi-input spends; returns
/// them with the clusters the ordinary spends must form.
fn coinjoin_chain(chain: ChainId) -> (Vec<Transfer>, BTreeSet<Vec<Address>>, Vec<CoinJoinKind>) {
    let mut ts = Vec::new();
    let mut n = 0u32;
    let mut fresh = || {
        n += 1;
        s(n)
    };
    let mut kinds = Vec::new();
    // Whirlpool 0.01 BTC pool: 5 inputs slightly above the denomination, 5 equal outputs.
    let ins: Vec<_> = (0..5).map(|_| (fresh(), 1_000_000 + 170)).collect();
    let outs: Vec<_> = (0..5).map(|_| (fresh(), 1_000_000)).collect();
    ts.extend(utxo_tx(chain, 1, 0, txid(1, 0), &ins, &outs));
    kinds.push(CoinJoinKind::Whirlpool);
    // Wasabi 1.0: 60 inputs, 50 outputs of ~0.1 BTC, change outputs, a coordinator fee.
    let ins: Vec<_> = (0..60).map(|i| (fresh(), 11_000_000 + i * 1_000)).collect();
    let mut outs: Vec<_> = (0..50).map(|_| (fresh(), 10_003_000)).collect();
    outs.extend((0..40).map(|i| (fresh(), 900_000 + i * 7)));
    outs.push((fresh(), 1_500_000));
    ts.extend(utxo_tx(chain, 1, 1, txid(1, 1), &ins, &outs));
    kinds.push(CoinJoinKind::Wasabi1);
    // Wasabi 2.0: 80 inputs, 90 outputs in a few standard values.
    let ins: Vec<_> = (0..80).map(|i| (fresh(), 300_000 + i * 13)).collect();
    let std = [5_000u64, 10_000, 50_000, 100_000, 200_000, 262_144];
    let outs: Vec<_> = (0..90).map(|i| (fresh(), std[i % std.len()])).collect();
    ts.extend(utxo_tx(chain, 2, 0, txid(2, 0), &ins, &outs));
    kinds.push(CoinJoinKind::Wasabi2);
    // JoinMarket: taker + 3 makers, 4 equal outputs, one maker with two inputs, 3 changes.
    let maker = fresh();
    let ins = vec![
        (fresh(), 3_000_000),
        (maker, 1_500_000),
        (maker, 1_500_000),
        (fresh(), 4_000_000),
        (fresh(), 2_600_000),
    ];
    let mut outs: Vec<_> = (0..4).map(|_| (fresh(), 2_500_000)).collect();
    outs.extend([(fresh(), 499_000), (fresh(), 1_500_300), (fresh(), 100_200)]);
    ts.extend(utxo_tx(chain, 2, 1, txid(2, 1), &ins, &outs));
    kinds.push(CoinJoinKind::JoinMarket);
    // Ordinary spends: 3 inputs → payment + change; 2 inputs → one output; a consolidation
    // sharing an input address with the first.
    let (a, b, c, d, e) = (fresh(), fresh(), fresh(), fresh(), fresh());
    ts.extend(utxo_tx(
        chain,
        3,
        0,
        txid(3, 0),
        &[(a, 50_000), (b, 70_000), (c, 10_000)],
        &[(fresh(), 100_000), (fresh(), 29_000)],
    ));
    ts.extend(utxo_tx(
        chain,
        3,
        1,
        txid(3, 1),
        &[(d, 5_000), (e, 6_000)],
        &[(fresh(), 10_500)],
    ));
    let f = fresh();
    ts.extend(utxo_tx(
        chain,
        4,
        0,
        txid(4, 0),
        &[(c, 1_000), (f, 2_000)],
        &[(fresh(), 2_900)],
    ));
    let expected = BTreeSet::from([
        {
            let mut v = vec![a, b, c, f];
            v.sort();
            v
        },
        {
            let mut v = vec![d, e];
            v.sort();
            v
        },
    ]);
    (ts, expected, kinds)
}

#[test]
fn coinjoin_shapes_are_not_merged_ordinary_spends_are() {
    let chain = ChainId(1);
    let (ts, expected, kinds) = coinjoin_chain(chain);
    // In memory.
    let src = MemoryTransfers::new(ts.clone());
    let params = ClusterParams::default();
    let mut state = ClusterState::new(params.guard);
    run_range(
        &src,
        &mut state,
        &NoPersisted,
        &params,
        &Exchanges::new(),
        chain,
        ChainKind::Bitcoin,
        BlockNumber(0),
        BlockNumber(4),
    )
    .unwrap();
    assert_eq!(
        state.clusters().into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    let found: Vec<CoinJoinKind> = state.coinjoins().iter().map(|f| f.detected.kind).collect();
    assert_eq!(found, kinds);
    // On the store: same clusters, CoinJoins flagged on their transactions.
    let (_dir, store, chain) = new_store("btc", ChainKind::Bitcoin);
    write_blocks(&store, chain, &ts, 1, 4);
    let cs = ClusterStore::open(&store).unwrap();
    cs.run(&store, "btc", &params, &Exchanges::new()).unwrap();
    let addrs: BTreeSet<Address> = ts
        .iter()
        .flat_map(|t| [t.from, t.to])
        .filter(|a| !a.is_tx())
        .collect();
    assert_eq!(partition(&cs, addrs), expected);
    let flagged = cs.coinjoins().unwrap();
    assert_eq!(flagged.len(), 4);
    let whirl = cs.coinjoin(&ts[0].tx_hash).unwrap().unwrap();
    assert_eq!(whirl.detected.kind, CoinJoinKind::Whirlpool);
    assert_eq!(whirl.detected.denomination, 1_000_000);
    assert!(cs.coinjoin(&ts.last().unwrap().tx_hash).unwrap().is_none());
}

#[test]
fn collapse_guard_refuses_low_confidence_merge_of_two_large_clusters() {
    let chain_txs = |chain| {
        let mut ts = Vec::new();
        // cluster A = s(1..=4), cluster B = s(11..=14), by multi-input
        ts.extend(utxo_tx(
            chain,
            1,
            0,
            txid(1, 0),
            &[(s(1), 10), (s(2), 10), (s(3), 10), (s(4), 10)],
            &[(s(50), 35)],
        ));
        ts.extend(utxo_tx(
            chain,
            1,
            1,
            txid(1, 1),
            &[(s(11), 10), (s(12), 10), (s(13), 10), (s(14), 10)],
            &[(s(51), 35)],
        ));
        // a round payment from A with its change to B's s(11): a low-confidence change merge
        ts.extend(utxo_tx(
            chain,
            2,
            0,
            txid(2, 0),
            &[(s(1), 1_000_000)],
            &[(s(60), 500_000), (s(11), 499_123)],
        ));
        // the same with a small cluster C = s(21..=22): allowed
        ts.extend(utxo_tx(
            chain,
            2,
            1,
            txid(2, 1),
            &[(s(21), 5), (s(22), 5)],
            &[(s(61), 9)],
        ));
        ts.extend(utxo_tx(
            chain,
            3,
            0,
            txid(3, 0),
            &[(s(21), 1_000_000)],
            &[(s(62), 500_000), (s(2), 499_321)],
        ));
        ts
    };
    let params = ClusterParams {
        change: vec![ChangeRule {
            heuristic: ChangeHeuristic::RoundPayment,
            confidence: 40,
        }],
        guard: CollapseGuard {
            min_confidence: 90,
            size_threshold: 3,
        },
        ..ClusterParams::default()
    };
    let (_dir, store, chain) = new_store("btc", ChainKind::Bitcoin);
    let ts = chain_txs(chain);
    write_blocks(&store, chain, &ts, 1, 3);
    let cs = ClusterStore::open(&store).unwrap();
    let r = cs.run(&store, "btc", &params, &Exchanges::new()).unwrap();
    assert_eq!(r.stats.refused, 1);
    let refused = cs.refused_merges().unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].size_a, refused[0].size_b), (4, 4));
    assert_eq!(
        refused[0].record.heuristic,
        Heuristic::Change(ChangeHeuristic::RoundPayment)
    );
    assert_eq!(refused[0].record.confidence, 40);
    let (ca, cb) = (
        cs.cluster_of(&s(1)).unwrap().unwrap(),
        cs.cluster_of(&s(11)).unwrap().unwrap(),
    );
    assert_ne!(ca, cb);
    assert_eq!(cs.size(ca).unwrap(), 6, "A took in the small cluster C");
    assert_eq!(cs.size(cb).unwrap(), 4);
    let why_not = cs.explain(&s(3), &s(12)).unwrap();
    assert!(!why_not.joined && why_not.path.is_empty());
    assert_eq!(why_not.refused.len(), 1);
    // s(22) reaches s(3) through C's multi-input, the change merge into A, A's multi-input.
    let why = cs.explain(&s(22), &s(3)).unwrap();
    assert!(why.joined);
    let hs: Vec<String> = why.path.iter().map(|m| m.heuristic.name()).collect();
    assert_eq!(
        hs,
        [
            "multi_input",
            "change_round_payment",
            "multi_input",
            "multi_input"
        ]
        .map(String::from)
    );
    // Each step shares an address with the next.
    let mut at = s(22);
    for m in &why.path {
        assert!(m.a == at || m.b == at);
        at = if m.a == at { m.b } else { m.a };
    }
    assert_eq!(at, s(3));
}

/// A deterministic pseudo-random UTXO chain of `blocks` blocks.
fn random_chain(chain: ChainId, blocks: u64) -> Vec<Transfer> {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let mut ts = Vec::new();
    for b in 1..=blocks {
        for t in 0..4u32 {
            if t == 3 && b % 5 == 0 {
                // a JoinMarket-like CoinJoin among pool addresses: never merged
                let ins: Vec<_> = (0..3).map(|_| (s(rnd(150) as u32), 2_000_000)).collect();
                let outs: Vec<_> = (0..3)
                    .map(|_| (s(1_000 + rnd(100_000) as u32), 1_000_000))
                    .collect();
                ts.extend(utxo_tx(chain, b, t, txid(b, t), &ins, &outs));
                continue;
            }
            let k = 1 + rnd(3);
            let ins: Vec<_> = (0..k)
                .map(|_| (s(rnd(150) as u32), 1 + rnd(1_000_000)))
                .collect();
            let outs = vec![
                (s(rnd(150) as u32), 1 + rnd(900_000)),
                (s(1_000 + rnd(100_000) as u32), 1 + rnd(50_000)),
            ];
            ts.extend(utxo_tx(chain, b, t, txid(b, t), &ins, &outs));
        }
    }
    ts
}

fn cluster_in_steps(
    ts: &[Transfer],
    cuts: &[u64],
    last: u64,
    params: &ClusterParams,
) -> (tempfile::TempDir, Store) {
    let (dir, store, chain) = new_store("btc", ChainKind::Bitcoin);
    let cs = ClusterStore::open(&store).unwrap();
    let mut lo = 1;
    for &hi in cuts.iter().chain([&last]) {
        write_blocks(&store, chain, ts, lo, hi);
        cs.run(&store, "btc", params, &Exchanges::new()).unwrap();
        lo = hi + 1;
    }
    (dir, store)
}

#[test]
fn incremental_runs_equal_one_run() {
    let chain = ChainId(1);
    let ts = random_chain(chain, 60);
    let addrs: BTreeSet<Address> = ts
        .iter()
        .flat_map(|t| [t.from, t.to])
        .filter(|a| !a.is_tx())
        .collect();
    let defaults = ClusterParams::default();
    let (_d1, once) = cluster_in_steps(&ts, &[], 60, &defaults);
    let (_d2, steps) = cluster_in_steps(&ts, &[1, 17, 18, 40], 60, &defaults);
    // a commit after every 3-block batch inside each run
    let small = ClusterParams {
        batch_blocks: 3,
        commit_pending: 1,
        ..ClusterParams::default()
    };
    let (_d3, commits) = cluster_in_steps(&ts, &[20], 60, &small);
    let (c1, c2) = (
        ClusterStore::open(&once).unwrap(),
        ClusterStore::open(&steps).unwrap(),
    );
    let c3 = ClusterStore::open(&commits).unwrap();
    let p1 = partition(&c1, addrs.iter().copied());
    assert!(p1.len() >= 2 && p1.iter().any(|c| c.len() >= 10), "{p1:?}");
    assert_eq!(p1, partition(&c2, addrs.iter().copied()));
    assert_eq!(p1, partition(&c3, addrs.iter().copied()));
    assert_eq!(c1.coinjoins().unwrap(), c2.coinjoins().unwrap());
    assert_eq!(c1.coinjoins().unwrap(), c3.coinjoins().unwrap());
    assert_eq!(c1.coinjoins().unwrap().len(), 12);
    for c in &p1 {
        let id = c1.cluster_of(&c[0]).unwrap().unwrap();
        assert_eq!(c1.members(id).unwrap(), *c);
        assert_eq!(
            c1.merges_of(id).unwrap().len(),
            c.len() - 1,
            "spanning forest"
        );
        let few = c1.members_limit(id, 3).unwrap();
        assert_eq!(few.len(), c.len().min(3));
        assert!(few.iter().all(|a| c.contains(a)));
        assert_eq!(
            c1.merges_of_limit(id, 2).unwrap().len(),
            (c.len() - 1).min(2)
        );
        let id2 = c2.cluster_of(&c[0]).unwrap().unwrap();
        assert_eq!(c2.members(id2).unwrap(), *c);
        assert_eq!(c2.size(id2).unwrap() as usize, c.len());
    }
    // And the in-memory engine agrees with the reference computation.
    let mut groups = Vec::new();
    let src = MemoryTransfers::new(ts.clone());
    let params = ClusterParams::default();
    let mut state = ClusterState::new(params.guard);
    run_range(
        &src,
        &mut state,
        &NoPersisted,
        &params,
        &Exchanges::new(),
        chain,
        ChainKind::Bitcoin,
        BlockNumber(1),
        BlockNumber(60),
    )
    .unwrap();
    for tx in paytrace_tracer::cluster::utxo::group(&ts).unwrap() {
        if tx.tx_index == 3 && tx.block.0 % 5 == 0 {
            continue;
        }
        groups.push(
            tx.inputs
                .iter()
                .map(|(a, _)| *a)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        );
    }
    assert_eq!(naive_clusters(&groups), p1);
    assert_eq!(state.clusters().into_iter().collect::<BTreeSet<_>>(), p1);
}

#[test]
fn a_reorg_below_the_clustered_height_is_refused_until_rebuilt() {
    let (_dir, store, chain) = new_store("btc", ChainKind::Bitcoin);
    let ts = utxo_tx(
        chain,
        2,
        0,
        txid(2, 0),
        &[(s(1), 5), (s(2), 5)],
        &[(s(3), 9)],
    );
    write_blocks(&store, chain, &ts, 1, 3);
    let cs = ClusterStore::open(&store).unwrap();
    let params = ClusterParams::default();
    cs.run(&store, "btc", &params, &Exchanges::new()).unwrap();
    assert!(cs.cluster_of(&s(1)).unwrap().is_some());
    // replace block 3 by another block 3
    store.unwind(chain, BlockNumber(2)).unwrap();
    let mut other = blocks(3, 3);
    other[0].hash = alloy_primitives::B256::repeat_byte(0xee);
    store.write_range(chain, &other, &[]).unwrap();
    let e = cs
        .run(&store, "btc", &params, &Exchanges::new())
        .unwrap_err();
    assert!(e.to_string().contains("--rebuild"), "{e}");
    // a rebuild starts over from the indexed data
    cs.reset().unwrap();
    assert_eq!(cs.cluster_of(&s(1)).unwrap(), None);
    let r = cs.run(&store, "btc", &params, &Exchanges::new()).unwrap();
    assert_eq!((r.from, r.to), (Some(0), Some(3)));
    assert_eq!(
        partition(&cs, [s(1), s(2), s(3)]),
        BTreeSet::from([vec![s(1), s(2)]])
    );
}

#[test]
fn synthetic_coinbase_and_burn_addresses_are_never_merged() {
    let chain = ChainId(1);
    let [coinbase, burn] = paytrace_tracer::cluster::utxo::synthetic_addresses();
    let mut ts = Vec::new();
    // coinbases as the Bitcoin indexer writes them: one input from the synthetic source
    ts.extend(utxo_tx(
        chain,
        1,
        0,
        txid(1, 0),
        &[(coinbase, 5_000_000_000)],
        &[(s(1), 4_999_000_000), (s(2), 1_000_000)],
    ));
    ts.extend(utxo_tx(
        chain,
        2,
        0,
        txid(2, 0),
        &[(coinbase, 5_000_000_000)],
        &[(s(3), 4_999_999_000), (s(4), 1_000)],
    ));
    // a spend whose smallest output is a burn
    ts.extend(utxo_tx(
        chain,
        2,
        1,
        txid(2, 1),
        &[(s(1), 4_999_000_000), (s(5), 1_000_000)],
        &[(s(6), 5_000_000_000), (burn, 10)],
    ));
    let params = ClusterParams {
        change: vec![ChangeRule {
            heuristic: ChangeHeuristic::OptimalChange,
            confidence: 99,
        }],
        ..ClusterParams::default()
    };
    let src = MemoryTransfers::new(ts);
    let mut state = ClusterState::new(params.guard);
    run_range(
        &src,
        &mut state,
        &NoPersisted,
        &params,
        &Exchanges::new(),
        chain,
        ChainKind::Bitcoin,
        BlockNumber(0),
        BlockNumber(2),
    )
    .unwrap();
    let mut expected = vec![s(1), s(5)];
    expected.sort();
    assert_eq!(state.clusters(), vec![expected]);
}
