//! Ethereum heuristics after Victor, "Address clustering heuristics for Ethereum" (FC 2020):
//!
//! * **deposit address**: an address D that forwards (almost) all it received within a window
//!   to a known exchange hot wallet E is E's deposit address; every sender whose funds D swept
//!   is merged with D (one exchange account = one user);
//! * **airdrop multi-participation**: recipients of one token airdrop (a transaction sending
//!   the token to many addresses) that forward it to one aggregation address are merged with
//!   that address once at least `min_forwarders` of them did.

use super::{
    AirdropForward, AirdropHit, ClusterError, ClusterParams, ClusterSource, ClusterState,
    DepositRecord, Heuristic, MergeRecord, Persisted, engine::Exchanges,
};
use alloy_primitives::U256;
use paytrace_indexer::{Address, Asset, ChainId, Direction, Transfer, TransferKind};
use std::collections::{BTreeMap, BTreeSet};

/// Applies the deposit and airdrop heuristics to `transfers` (canonical order, one chain).
pub fn process<S: ClusterSource + ?Sized>(
    state: &mut ClusterState,
    p: &dyn Persisted,
    src: &S,
    params: &ClusterParams,
    exchanges: &Exchanges,
    chain: ChainId,
    transfers: &[Transfer],
) -> Result<(), ClusterError> {
    // Airdrops first: a sweep must know which of its deposits were airdrops.
    if params.airdrop.enabled {
        let mut start = 0;
        while start < transfers.len() {
            let k = transfers[start].key;
            let end = transfers[start..]
                .iter()
                .position(|t| t.key.block != k.block || t.key.tx_index != k.tx_index)
                .map_or(transfers.len(), |n| start + n);
            airdrop_tx(state, p, params, exchanges, &transfers[start..end])?;
            start = end;
        }
    }
    if params.deposit.enabled && !exchanges.is_empty() {
        for t in transfers {
            if t.kind() != TransferKind::Utxo
                && exchanges.is_hot_wallet(&t.to)
                && !exchanges.skips(&t.from)
                && t.from != Address::ZERO_EVM
                && !t.from.is_tx()
                && t.from != t.to
            {
                sweep(state, p, src, params, exchanges, chain, t)?;
            }
        }
    }
    Ok(())
}

/// A transfer `t` from D to a hot wallet: check it sweeps D's recent deposits; if so record D
/// and merge the senders of the swept deposits with D.
fn sweep<S: ClusterSource + ?Sized>(
    state: &mut ClusterState,
    p: &dyn Persisted,
    src: &S,
    params: &ClusterParams,
    exchanges: &Exchanges,
    chain: ChainId,
    t: &Transfer,
) -> Result<(), ClusterError> {
    let d = t.from;
    // Deposit addresses are small: a busy address (more history than the limit) is not one,
    // and reading its whole history for every transfer would be quadratic.
    let limit = params.deposit.max_history;
    let outgoing = src
        .history(&d, Direction::Outgoing, chain, limit.saturating_add(1))
        .map_err(ClusterError::source)?;
    if outgoing.len() > limit {
        return Ok(());
    }
    // A deposit address sends only to exchange hot wallets.
    if outgoing
        .iter()
        .any(|o| o.key < t.key && !exchanges.is_hot_wallet(&o.to))
    {
        return Ok(());
    }
    let prev = outgoing
        .iter()
        .filter(|o| o.asset == t.asset && o.key < t.key)
        .map(|o| o.key)
        .max();
    let lo = t.key.block.0.saturating_sub(params.deposit.window_blocks);
    let incoming = src
        .history(&d, Direction::Incoming, chain, limit.saturating_add(1))
        .map_err(ClusterError::source)?;
    if incoming.len() > limit {
        return Ok(());
    }
    let swept: Vec<&Transfer> = incoming
        .iter()
        .filter(|i| {
            i.asset == t.asset
                && i.key < t.key
                && i.key.block.0 >= lo
                && prev.is_none_or(|p| i.key > p)
        })
        .collect();
    let mut received = U256::ZERO;
    for i in &swept {
        received =
            received
                .checked_add(i.amount.raw())
                .ok_or_else(|| ClusterError::Arithmetic {
                    tx: i.tx_hash.to_string(),
                    reason: "deposit sum overflows".into(),
                })?;
    }
    let sent = t.amount.raw();
    if received.is_zero() || sent > received {
        return Ok(());
    }
    let residual = received - sent;
    let ok = match t.asset {
        Asset::Native => residual <= U256::from(params.deposit.gas_tolerance_wei),
        Asset::Token(_) => match (
            residual.checked_mul(U256::from(10_000u32)),
            received.checked_mul(U256::from(params.deposit.max_residual_bps)),
        ) {
            (Some(l), Some(r)) => l <= r,
            _ => false,
        },
    };
    if !ok {
        return Ok(());
    }
    if !state.deposits.contains_key(&d) && p.deposit(&d)?.is_none() {
        tracing::debug!(deposit = %d, exchange = %t.to, tx = %t.tx_hash, "deposit address found");
        state.deposits.insert(
            d,
            DepositRecord {
                deposit: d,
                exchange: t.to,
                entity: exchanges.entity(&t.to).map(str::to_owned),
                chain,
                block: t.key.block,
                sweep_tx: t.tx_hash,
            },
        );
        state.stats.deposits += 1;
    }
    for i in swept {
        let s = i.from;
        if s == d || s == Address::ZERO_EVM || s.is_tx() || exchanges.skips(&s) {
            continue;
        }
        // An airdrop is not a deposit by its distributor.
        if let Asset::Token(tok) = i.asset {
            let hit = match state.airdrop_hits.get(&(tok, d)) {
                Some(h) => Some(h.tx),
                None => p.airdrop_hit(&tok, &d)?.map(|h| h.tx),
            };
            if hit == Some(i.tx_hash) {
                continue;
            }
        }
        state.merge(
            MergeRecord {
                a: s,
                b: d,
                heuristic: Heuristic::DepositAddress,
                confidence: params.deposit.confidence,
                chain,
                block: i.key.block,
                tx: i.tx_hash,
                related_tx: Some(t.tx_hash),
            },
            p,
        )?;
    }
    Ok(())
}

/// One transaction's token transfers: record airdrop recipients, then forwards of airdrops.
fn airdrop_tx(
    state: &mut ClusterState,
    p: &dyn Persisted,
    params: &ClusterParams,
    exchanges: &Exchanges,
    tx: &[Transfer],
) -> Result<(), ClusterError> {
    let tokens = || {
        tx.iter().filter_map(|t| match (t.kind(), t.asset) {
            (TransferKind::Token, Asset::Token(token)) if !t.amount.is_zero() => Some((token, t)),
            _ => None,
        })
    };
    let mut fanout: BTreeMap<(Address, Address), BTreeSet<Address>> = BTreeMap::new();
    for (token, t) in tokens() {
        if t.to != Address::ZERO_EVM && t.to != t.from {
            fanout.entry((token, t.from)).or_default().insert(t.to);
        }
    }
    for ((token, distributor), recipients) in fanout {
        // Batched payouts of exchanges and labelled services are not airdrops.
        if recipients.len() < params.airdrop.min_recipients || exchanges.skips(&distributor) {
            continue;
        }
        let Some(first) = tx.first() else { continue };
        for r in recipients {
            let key = (token, r);
            if state.airdrop_hits.contains_key(&key) || p.airdrop_hit(&token, &r)?.is_some() {
                continue;
            }
            state.airdrop_hits.insert(
                key,
                AirdropHit {
                    distributor,
                    block: first.key.block,
                    tx_index: first.key.tx_index,
                    tx: first.tx_hash,
                },
            );
            state.stats.airdrop_recipients += 1;
        }
    }
    for (token, t) in tokens() {
        let hit = match state.airdrop_hits.get(&(token, t.from)) {
            Some(h) => Some(h.clone()),
            None => p.airdrop_hit(&token, &t.from)?,
        };
        let Some(hit) = hit else { continue };
        let after = (hit.block, hit.tx_index) < (t.key.block, t.key.tx_index);
        let within = t.key.block.0.saturating_sub(hit.block.0) <= params.airdrop.window_blocks;
        let agg = t.to;
        if !after
            || !within
            || agg == Address::ZERO_EVM
            || agg == t.from
            || agg == hit.distributor
            || exchanges.is_hot_wallet(&agg)
            // A labelled service (a DEX router or pool, a bridge) that recipients sell or
            // move their airdrop through serves unrelated people: no aggregation.
            || exchanges.skips(&agg)
        {
            continue;
        }
        let key = (token, agg);
        let mut all = p.airdrop_forwards(&token, &agg)?;
        let pending = state.airdrop_forwards.entry(key).or_default();
        if !all.iter().chain(pending.iter()).any(|f| f.from == t.from) {
            pending.push(AirdropForward {
                from: t.from,
                block: t.key.block,
                tx: t.tx_hash,
                airdrop_tx: hit.tx,
            });
        }
        all.extend(pending.iter().cloned());
        if all.len() < params.airdrop.min_forwarders {
            continue;
        }
        for f in all {
            state.merge(
                MergeRecord {
                    a: f.from,
                    b: agg,
                    heuristic: Heuristic::Airdrop,
                    confidence: params.airdrop.confidence,
                    chain: t.key.chain,
                    block: f.block,
                    tx: f.tx,
                    related_tx: Some(f.airdrop_tx),
                },
                p,
            )?;
        }
    }
    Ok(())
}
