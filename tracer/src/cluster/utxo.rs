//! Bitcoin-style heuristics over UTXO transfers: multi-input (common input ownership) except
//! CoinJoins, and the change heuristics switched on for merging.
//!
//! A transaction in the store is a set of [`TransferKind::Utxo`] transfers through its node
//! `Address::Tx(txid)`: inputs `address → Tx` at positions `0..n`, outputs `Tx → address` at
//! [`UTXO_OUTPUT_BASE`] + vout. Nothing here depends on a Bitcoin parser.

use super::{
    ClusterError, ClusterParams, ClusterState, CoinJoinFlag, Heuristic, MergeRecord, Persisted,
    change::{ChangeContext, TxShape, change_output},
    coinjoin,
};
use paytrace_indexer::{
    Address, BlockNumber, ChainId, Transfer, TransferKind, TxHash, model::UTXO_OUTPUT_BASE,
};

/// One UTXO transaction rebuilt from its transfers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtxoTx {
    /// Chain.
    pub chain: ChainId,
    /// Block.
    pub block: BlockNumber,
    /// Index in the block.
    pub tx_index: u32,
    /// Transaction id.
    pub tx: TxHash,
    /// Inputs (address, satoshi), in input order.
    pub inputs: Vec<(Address, u64)>,
    /// Outputs (address, satoshi), in output order.
    pub outputs: Vec<(Address, u64)>,
}

/// The synthetic addresses of the Bitcoin indexer (`docs/bitcoin.md`): the source of newly
/// mined coins (`coinbase`, the input side of every coinbase) and the sink of burns
/// (`op_return`). They belong to nobody and are never merged.
pub fn synthetic_addresses() -> [Address; 2] {
    use bitcoin::hashes::{Hash, sha256};
    [
        Address::Script(sha256::Hash::hash(b"paytrace:bitcoin:coinbase").to_byte_array()),
        Address::Script(sha256::Hash::hash(b"paytrace:bitcoin:op_return").to_byte_array()),
    ]
}

/// Groups the UTXO transfers of `transfers` (canonical order) into transactions; other kinds
/// are skipped.
pub fn group(transfers: &[Transfer]) -> Result<Vec<UtxoTx>, ClusterError> {
    let mut out: Vec<UtxoTx> = Vec::new();
    for t in transfers.iter().filter(|t| t.kind() == TransferKind::Utxo) {
        let sats = u64::try_from(t.amount.raw()).map_err(|_| ClusterError::Arithmetic {
            tx: t.tx_hash.to_string(),
            reason: format!("utxo amount {} does not fit in u64 satoshi", t.amount),
        })?;
        let same = out.last().is_some_and(|u| {
            u.chain == t.key.chain && u.block == t.key.block && u.tx_index == t.key.tx_index
        });
        if !same {
            out.push(UtxoTx {
                chain: t.key.chain,
                block: t.key.block,
                tx_index: t.key.tx_index,
                tx: t.tx_hash,
                inputs: Vec::new(),
                outputs: Vec::new(),
            });
        }
        let Some(u) = out.last_mut() else { continue };
        if t.key.position >= UTXO_OUTPUT_BASE {
            u.outputs.push((t.to, sats));
        } else {
            u.inputs.push((t.from, sats));
        }
    }
    Ok(out)
}

/// The CoinJoin shape of `tx`, if it has one: at least two distinct spenders (the synthetic
/// coinbase source does not count) and a shape [`coinjoin::detect`] recognises. Clustering
/// refuses to merge its inputs; traces stop there (`mixer`).
pub fn coinjoin_of(tx: &UtxoTx, p: &coinjoin::CoinJoinParams) -> Option<coinjoin::CoinJoinMatch> {
    let synthetic = synthetic_addresses();
    let mut distinct: Vec<&Address> = Vec::with_capacity(tx.inputs.len());
    for (a, _) in &tx.inputs {
        if !distinct.contains(&a) && !synthetic.contains(a) {
            distinct.push(a);
        }
    }
    if distinct.len() < 2 {
        return None;
    }
    coinjoin::detect(&tx.inputs, &tx.outputs, p)
}

/// Applies the UTXO heuristics to one transaction.
pub fn process_tx(
    state: &mut ClusterState,
    p: &dyn Persisted,
    params: &ClusterParams,
    tx: &UtxoTx,
    ctx: &dyn ChangeContext,
) -> Result<(), ClusterError> {
    state.stats.utxo_txs += 1;
    // A coinbase's only input is the synthetic `coinbase` source: no spender to cluster.
    let synthetic = synthetic_addresses();
    let mut distinct: Vec<Address> = Vec::with_capacity(tx.inputs.len());
    for (a, _) in &tx.inputs {
        if !distinct.contains(a) && !synthetic.contains(a) {
            distinct.push(*a);
        }
    }
    let Some(&first) = distinct.first() else {
        return Ok(()); // coinbase: no input, or only the synthetic source
    };
    if let Some(m) = coinjoin_of(tx, &params.coinjoin) {
        tracing::debug!(tx = %tx.tx, kind = %m.kind, equal_outputs = m.equal_outputs, "coinjoin flagged");
        state.coinjoins.push(CoinJoinFlag {
            chain: tx.chain,
            block: tx.block,
            tx: tx.tx,
            detected: m,
        });
        state.stats.coinjoins += 1;
        return Ok(());
    }
    let record = |b: Address, heuristic, confidence| MergeRecord {
        a: first,
        b,
        heuristic,
        confidence,
        chain: tx.chain,
        block: tx.block,
        tx: tx.tx,
        related_tx: None,
    };
    if params.multi_input {
        for b in distinct.iter().skip(1) {
            state.merge(
                record(*b, Heuristic::MultiInput, params.multi_input_confidence),
                p,
            )?;
        }
    }
    if !params.change.is_empty() {
        let shape = TxShape {
            block: tx.block.0,
            tx_index: tx.tx_index,
            inputs: &tx.inputs,
            outputs: &tx.outputs,
        };
        for rule in &params.change {
            if let Some(i) = change_output(rule.heuristic, &shape, ctx, params.round_unit_sat)
                && let Some((addr, _)) = tx.outputs.get(i)
                && !synthetic.contains(addr)
            {
                state.merge(
                    record(*addr, Heuristic::Change(rule.heuristic), rule.confidence),
                    p,
                )?;
            }
        }
    }
    Ok(())
}
