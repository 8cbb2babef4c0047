//! Change-output heuristics for UTXO transactions. Each names at most one output as the
//! change (returned to the spender); when a heuristic is switched on for merging, the change
//! address joins the cluster of the inputs. All are off for merging by default: their failure
//! modes (listed in `docs/heuristics.md`, "Clustering") make them unsafe to apply blindly.

use paytrace_indexer::Address;
use serde::{Deserialize, Serialize};

/// The change heuristics.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeHeuristic {
    /// Exactly one output address has never received anything before this transaction.
    Fresh,
    /// Exactly one output has the script type of all inputs.
    SameScriptType,
    /// Two outputs, one a round payment amount: the other is the change.
    RoundPayment,
    /// Exactly one output is smaller than every input (a wallet would not add an input it
    /// did not need).
    OptimalChange,
    /// An output pays back to one of the input addresses.
    AddressReuse,
}

impl ChangeHeuristic {
    /// Every change heuristic.
    pub const ALL: [Self; 5] = [
        Self::Fresh,
        Self::SameScriptType,
        Self::RoundPayment,
        Self::OptimalChange,
        Self::AddressReuse,
    ];

    /// Stable lower-case name (config, JSON).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::SameScriptType => "same_script_type",
            Self::RoundPayment => "round_payment",
            Self::OptimalChange => "optimal_change",
            Self::AddressReuse => "address_reuse",
        }
    }

    /// Parses [`ChangeHeuristic::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// The script type of an output: the Bitcoin indexer's classification (the change heuristics
/// get it from the indexer's `btc_scripts` keyspace; a context without script data answers
/// `None` and the heuristic never fires).
pub use paytrace_indexer::btc::ScriptKind as ScriptType;

/// The type of raw output script bytes (the indexer's classifier).
pub fn script_type_of(script: &[u8]) -> ScriptType {
    paytrace_indexer::btc::script::classify(bitcoin::Script::from_bytes(script)).kind
}

/// Facts about addresses the change heuristics need beyond the transaction itself.
pub trait ChangeContext {
    /// Whether `address` received anything before the transaction at `(block, tx_index)`.
    fn seen_before(&self, address: &Address, block: u64, tx_index: u32) -> bool;
    /// The script type of `address`, if known.
    fn script_type(&self, address: &Address) -> Option<ScriptType>;
}

/// A context that knows nothing: `Fresh` treats every address as fresh and `SameScriptType`
/// never fires.
pub struct NoContext;

impl ChangeContext for NoContext {
    fn seen_before(&self, _: &Address, _: u64, _: u32) -> bool {
        false
    }
    fn script_type(&self, _: &Address) -> Option<ScriptType> {
        None
    }
}

/// A UTXO transaction as the heuristics see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxShape<'a> {
    /// Block height.
    pub block: u64,
    /// Index in the block.
    pub tx_index: u32,
    /// Inputs (address, satoshi).
    pub inputs: &'a [(Address, u64)],
    /// Outputs (address, satoshi).
    pub outputs: &'a [(Address, u64)],
}

/// The index of the change output according to `h`, if exactly one output qualifies.
/// `round_unit` is the satoshi unit a round payment is a multiple of (e.g. 100 000).
pub fn change_output(
    h: ChangeHeuristic,
    tx: &TxShape<'_>,
    ctx: &dyn ChangeContext,
    round_unit: u64,
) -> Option<usize> {
    if tx.inputs.is_empty() || tx.outputs.len() < 2 {
        return None;
    }
    let only = |pred: &dyn Fn(&(Address, u64)) -> bool| {
        let mut hits = tx.outputs.iter().enumerate().filter(|(_, o)| pred(o));
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    };
    let is_input = |a: &Address| tx.inputs.iter().any(|(i, _)| i == a);
    match h {
        ChangeHeuristic::Fresh => {
            only(&|(a, _)| !is_input(a) && !ctx.seen_before(a, tx.block, tx.tx_index))
        }
        ChangeHeuristic::SameScriptType => {
            let first = ctx.script_type(&tx.inputs[0].0)?;
            if !tx
                .inputs
                .iter()
                .all(|(a, _)| ctx.script_type(a) == Some(first))
            {
                return None;
            }
            only(&|(a, _)| ctx.script_type(a) == Some(first))
        }
        ChangeHeuristic::RoundPayment => {
            if tx.outputs.len() != 2 || round_unit == 0 {
                return None;
            }
            let round = |v: u64| v > 0 && v.is_multiple_of(round_unit);
            match (round(tx.outputs[0].1), round(tx.outputs[1].1)) {
                (true, false) => Some(1),
                (false, true) => Some(0),
                _ => None,
            }
        }
        ChangeHeuristic::OptimalChange => {
            let min_in = tx.inputs.iter().map(|(_, v)| *v).min()?;
            only(&|(_, v)| *v < min_in)
        }
        ChangeHeuristic::AddressReuse => only(&|(a, _)| is_input(a)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a(i: u8) -> Address {
        Address::Script([i; 32])
    }

    struct Seen(Vec<Address>);
    impl ChangeContext for Seen {
        fn seen_before(&self, a: &Address, _: u64, _: u32) -> bool {
            self.0.contains(a)
        }
        fn script_type(&self, a: &Address) -> Option<ScriptType> {
            Some(if a.to_string().ends_with("0909") {
                ScriptType::P2sh
            } else {
                ScriptType::P2wpkh
            })
        }
    }

    #[test]
    fn each_heuristic() {
        let ins = [(a(1), 60_000), (a(2), 50_000)];
        let outs = [(a(3), 100_000), (a(4), 9_000)];
        let tx = TxShape {
            block: 5,
            tx_index: 1,
            inputs: &ins,
            outputs: &outs,
        };
        let ctx = Seen(vec![a(3)]);
        assert_eq!(
            change_output(ChangeHeuristic::Fresh, &tx, &ctx, 100_000),
            Some(1)
        );
        assert_eq!(
            change_output(ChangeHeuristic::RoundPayment, &tx, &ctx, 100_000),
            Some(1)
        );
        assert_eq!(
            change_output(ChangeHeuristic::OptimalChange, &tx, &ctx, 100_000),
            Some(1)
        );
        assert_eq!(
            change_output(ChangeHeuristic::AddressReuse, &tx, &ctx, 100_000),
            None
        );
        assert_eq!(
            change_output(ChangeHeuristic::SameScriptType, &tx, &ctx, 100_000),
            None
        );
        let outs = [(a(9), 100_000), (a(4), 9_000)];
        let tx = TxShape {
            outputs: &outs,
            ..tx
        };
        assert_eq!(
            change_output(ChangeHeuristic::SameScriptType, &tx, &ctx, 100_000),
            Some(1)
        );
        let outs = [(a(9), 100_000), (a(2), 9_000)];
        let tx = TxShape {
            outputs: &outs,
            ..tx
        };
        assert_eq!(
            change_output(ChangeHeuristic::AddressReuse, &tx, &ctx, 100_000),
            Some(1)
        );
        assert_eq!(
            change_output(ChangeHeuristic::Fresh, &tx, &NoContext, 1),
            Some(0)
        );
    }
}
