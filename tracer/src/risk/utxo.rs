//! Screening a Bitcoin address through its transaction nodes.
//!
//! The store keeps Bitcoin value flowing `input address → Tx → output address`, so a Bitcoin
//! address's own transfers all have a transaction node as counterparty. Screening looks
//! through it:
//!
//! * direct exposure: the counterparties of the address are the output addresses of the
//!   transactions it spent from (sent) and the input addresses of the transactions that paid
//!   it (received). The value is split by the address's share of the transaction's inputs
//!   (sent: `output × own inputs / all inputs`; received: `own output × input / all inputs`,
//!   rounded down), so a co-signer's inputs are not counted as the address's. Outputs back to
//!   the address itself (change) and coinbase transactions (no input address) give none;
//! * indirect exposure: the trace engines count transaction nodes in their hops (forward: the
//!   seed's transaction is hop 0 and its outputs hop 1; backward: a transaction and its inputs
//!   are one hop each), so [`indirect_hops`] turns them into the hops of an EVM trace, where
//!   the direct counterparty is hop 0.

use super::Flow;
use crate::{TraceError, model::mul_div_floor, source::FlowSource};
use paytrace_indexer::{Address, Amount, ChainId, Direction, Transfer};

/// Whether `a` is a Bitcoin-family address (an output script), screened through its
/// transaction nodes.
pub(crate) const fn is_utxo_holder(a: &Address) -> bool {
    matches!(a, Address::Script(_))
}

/// `list` (the address's own transfers in direction `flow`) with every transfer into (sent) or
/// out of (received) a transaction node replaced by the address's share of the transaction's
/// outputs or inputs, as transfers between the address and its real counterparties (see the
/// module docs). Other transfers are kept. `keep` filters the counterparty transfers read (the
/// screening's time bound).
pub(crate) fn through_tx_nodes<S: FlowSource>(
    src: &S,
    address: &Address,
    list: &[Transfer],
    flow: Flow,
    chain: Option<ChainId>,
    keep: &dyn Fn(&Transfer) -> bool,
) -> Result<Vec<Transfer>, TraceError> {
    let mut out = Vec::with_capacity(list.len());
    for t in list {
        let node = match flow {
            Flow::Sent => t.to,
            Flow::Received => t.from,
        };
        if !node.is_tx() {
            out.push(t.clone());
            continue;
        }
        let chain = chain.or(Some(t.key.chain));
        let same_tx = |x: &Transfer| x.key.block == t.key.block && x.key.tx_index == t.key.tx_index;
        let inputs: Vec<Transfer> = src
            .address_transfers(&node, Direction::Incoming, chain)
            .map_err(TraceError::source)?
            .into_iter()
            .filter(|x| same_tx(x) && keep(x))
            .collect();
        let mut total_in = Amount::ZERO;
        for i in &inputs {
            total_in = total_in.checked_add(i.amount)?;
        }
        if total_in.is_zero() {
            // A coinbase: no counterparty.
            continue;
        }
        match flow {
            Flow::Sent => {
                // Once per transaction (at its first input from the address).
                if inputs.iter().any(|i| i.from == *address && i.key < t.key) {
                    continue;
                }
                let mut own = Amount::ZERO;
                for i in inputs.iter().filter(|i| i.from == *address) {
                    own = own.checked_add(i.amount)?;
                }
                let outputs = src
                    .address_transfers(&node, Direction::Outgoing, chain)
                    .map_err(TraceError::source)?;
                for o in outputs
                    .iter()
                    .filter(|o| same_tx(o) && keep(o) && o.to != *address)
                {
                    let share = mul_div_floor(o.amount, own, total_in)?;
                    if share.is_zero() {
                        continue;
                    }
                    let mut v = o.clone();
                    v.from = *address;
                    v.amount = share;
                    out.push(v);
                }
            }
            Flow::Received => {
                for i in inputs.iter().filter(|i| i.from != *address) {
                    let share = mul_div_floor(t.amount, i.amount, total_in)?;
                    if share.is_zero() {
                        continue;
                    }
                    let mut v = i.clone();
                    v.to = *address;
                    v.amount = share;
                    out.push(v);
                }
            }
        }
    }
    out.sort_by_key(|t| t.key);
    Ok(out)
}

/// The hops of an indirect exposure as an EVM trace counts them (the direct counterparty is 0),
/// of a destination the engine reached at `engine_hops` from a Bitcoin address's transfers in
/// direction `flow`; `None` for the direct counterparties (already direct exposure).
pub(crate) fn indirect_hops(flow: Flow, engine_hops: u32) -> Option<u32> {
    let h = match flow {
        // Forward: the transaction the address spent in is hop 0, its outputs hop 1, ...
        Flow::Sent => engine_hops.checked_sub(1)?,
        // Backward: the paying transaction is hop 0, its inputs hop 1, the transaction that
        // paid them hop 2, their inputs hop 3, ...
        Flow::Received => {
            if engine_hops.is_multiple_of(2) {
                // A transaction node (holds nothing).
                return None;
            }
            (engine_hops - 1) / 2
        }
    };
    (h > 0).then_some(h)
}

/// The engine's hop limit that reaches as far (in addresses) from a Bitcoin address as `hops`
/// reaches from an EVM one.
pub(crate) fn engine_max_hops(flow: Flow, hops: u32) -> u32 {
    match flow {
        Flow::Sent => hops.saturating_add(1),
        Flow::Received => hops.saturating_mul(2).saturating_add(1),
    }
}
