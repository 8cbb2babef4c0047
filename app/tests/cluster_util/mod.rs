//! Builders for clustering tests: UTXO transactions following the store convention
//! (inputs `address → Tx(txid)`, outputs `Tx → address` at `UTXO_OUTPUT_BASE + vout`), block
//! refs, stores, and partitions read back from a `ClusterStore`.
#![allow(dead_code, clippy::unwrap_used)]

use alloy_primitives::B256;
use paytrace_app::clusters::ClusterStore;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash, model::UTXO_OUTPUT_BASE,
};
use std::collections::{BTreeMap, BTreeSet};

/// Script address number `n`.
pub fn s(n: u32) -> Address {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[31] = 0x5c;
    Address::Script(b)
}

/// EVM address number `n`.
pub fn e(n: u32) -> Address {
    let mut b = [0u8; 20];
    b[..4].copy_from_slice(&n.to_be_bytes());
    b[19] = 0xee;
    Address::Evm(b)
}

/// A transaction id derived from block and index.
pub fn txid(block: u64, tx: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    h[8..12].copy_from_slice(&tx.to_be_bytes());
    h[31] = 0x77;
    h
}

/// The transfers of one UTXO transaction.
pub fn utxo_tx(
    chain: ChainId,
    block: u64,
    tx: u32,
    id: [u8; 32],
    inputs: &[(Address, u64)],
    outputs: &[(Address, u64)],
) -> Vec<Transfer> {
    let node = Address::Tx(id);
    let mk = |position: u32, from: Address, to: Address, v: u64| Transfer {
        key: TransferKey {
            chain,
            block: BlockNumber(block),
            tx_index: tx,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(block * 600),
        tx_hash: TxHash(B256::from(id)),
        from,
        to,
        asset: Asset::Native,
        amount: Amount::from_u64(v),
        trace_address: Vec::new(),
    };
    let mut out = Vec::new();
    for (i, (a, v)) in inputs.iter().enumerate() {
        out.push(mk(u32::try_from(i).unwrap(), *a, node, *v));
    }
    for (i, (a, v)) in outputs.iter().enumerate() {
        out.push(mk(
            UTXO_OUTPUT_BASE + u32::try_from(i).unwrap(),
            node,
            *a,
            *v,
        ));
    }
    out
}

/// An EVM transfer.
#[allow(clippy::too_many_arguments)]
pub fn evm(
    block: u64,
    tx: u32,
    kind: TransferKind,
    pos: u32,
    from: Address,
    to: Address,
    asset: Asset,
    v: u64,
) -> Transfer {
    let mut h = txid(block, tx);
    h[31] = 0xe1;
    Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: tx,
            kind,
            position: pos,
        },
        time: Timestamp(block * 12),
        tx_hash: TxHash(B256::from(h)),
        from,
        to,
        asset,
        amount: Amount::from_u64(v),
        trace_address: Vec::new(),
    }
}

/// Block refs `lo..=hi` with hashes derived from the number.
pub fn blocks(lo: u64, hi: u64) -> Vec<BlockRef> {
    (lo..=hi)
        .map(|n| BlockRef {
            number: BlockNumber(n),
            hash: B256::left_padding_from(&n.to_be_bytes()),
            parent: B256::left_padding_from(&n.saturating_sub(1).to_be_bytes()),
            time: Timestamp(n * 600),
        })
        .collect()
}

/// A fresh store with chain `name` of `kind` registered.
pub fn new_store(name: &str, kind: ChainKind) -> (tempfile::TempDir, Store, ChainId) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let chain = store.register_chain(name, kind).unwrap();
    (dir, store, chain)
}

/// Writes the transfers of blocks `lo..=hi` (taken from `all`).
pub fn write_blocks(store: &Store, chain: ChainId, all: &[Transfer], lo: u64, hi: u64) {
    let ts: Vec<Transfer> = all
        .iter()
        .filter(|t| t.key.block.0 >= lo && t.key.block.0 <= hi)
        .cloned()
        .collect();
    store.write_range(chain, &blocks(lo, hi), &ts).unwrap();
}

/// The non-singleton clusters of `addrs` as the store sees them, each sorted.
pub fn partition(
    cs: &ClusterStore,
    addrs: impl IntoIterator<Item = Address>,
) -> BTreeSet<Vec<Address>> {
    let mut by: BTreeMap<u32, BTreeSet<Address>> = BTreeMap::new();
    for a in addrs {
        if let Some(c) = cs.cluster_of(&a).unwrap() {
            by.entry(c.0).or_default().insert(a);
        }
    }
    by.into_values()
        .filter(|v| v.len() > 1)
        .map(|v| v.into_iter().collect())
        .collect()
}

/// Naive reference clustering: repeatedly merge overlapping groups until nothing changes.
pub fn naive_clusters(groups: &[Vec<Address>]) -> BTreeSet<Vec<Address>> {
    let mut sets: Vec<BTreeSet<Address>> = groups
        .iter()
        .filter(|g| g.len() > 1)
        .map(|g| g.iter().copied().collect())
        .collect();
    loop {
        let mut changed = false;
        'outer: for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                if !sets[i].is_disjoint(&sets[j]) {
                    let other = sets.remove(j);
                    sets[i].extend(other);
                    changed = true;
                    break 'outer;
                }
            }
        }
        if !changed {
            break;
        }
    }
    sets.into_iter()
        .filter(|s| s.len() > 1)
        .map(|s| s.into_iter().collect())
        .collect()
}
