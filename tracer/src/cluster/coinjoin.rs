//! CoinJoin detection on the shape of a UTXO transaction: a generic rule (many equal-value
//! outputs with at least as many distinct inputs) and the known shapes of Whirlpool, Wasabi
//! 1.0/1.1, Wasabi 2.0 and JoinMarket. Values are in satoshi.
//!
//! Detected CoinJoins are never merged by the multi-input heuristic and are flagged on the
//! transaction (see the cluster store's `coinjoin`). The rules and their failure modes are
//! written out in `docs/heuristics.md` ("Clustering").

use paytrace_indexer::Address;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which CoinJoin shape a transaction matches.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CoinJoinKind {
    /// Samourai/Sparrow Whirlpool mix: 5 inputs, 5 equal outputs of a pool denomination.
    Whirlpool,
    /// Wasabi 1.0 (one ~0.1 BTC denomination) or 1.1 (mixing levels 0.1 × 2^k BTC).
    Wasabi1,
    /// Wasabi 2.0 (WabiSabi): many inputs and outputs in several repeated standard values.
    Wasabi2,
    /// JoinMarket: n equal outputs, n or more inputs, at most n change outputs.
    JoinMarket,
    /// Many equal-value outputs with at least as many distinct input addresses.
    Generic,
}

impl CoinJoinKind {
    /// Stable lower-case name (JSON, CLI).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Whirlpool => "whirlpool",
            Self::Wasabi1 => "wasabi1",
            Self::Wasabi2 => "wasabi2",
            Self::JoinMarket => "joinmarket",
            Self::Generic => "generic",
        }
    }
}

impl std::fmt::Display for CoinJoinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whirlpool pool denominations in satoshi (0.001, 0.01, 0.05 and 0.5 BTC).
pub const WHIRLPOOL_POOLS: [u64; 4] = [100_000, 1_000_000, 5_000_000, 50_000_000];

/// Thresholds of the CoinJoin rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoinJoinParams {
    /// Generic rule: the least number of equal-value outputs (default 3).
    pub generic_min_equal_outputs: usize,
    /// Wasabi 1.x: the least number of equal outputs at the main denomination (default 10).
    pub wasabi1_min_equal_outputs: usize,
    /// Wasabi 2.0: the least number of inputs and of outputs (default 50).
    pub wasabi2_min_inputs: usize,
}

impl Default for CoinJoinParams {
    fn default() -> Self {
        Self {
            generic_min_equal_outputs: 3,
            wasabi1_min_equal_outputs: 10,
            wasabi2_min_inputs: 50,
        }
    }
}

/// A detected CoinJoin: its shape, the equal-output value and how many outputs have it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CoinJoinMatch {
    /// The shape.
    pub kind: CoinJoinKind,
    /// The most frequent output value (satoshi).
    pub denomination: u64,
    /// Outputs with that value.
    pub equal_outputs: u32,
    /// Distinct input addresses.
    pub distinct_inputs: u32,
}

/// Classifies a transaction by its inputs and outputs (address, satoshi). `None`: not a
/// CoinJoin by any rule.
pub fn detect(
    inputs: &[(Address, u64)],
    outputs: &[(Address, u64)],
    p: &CoinJoinParams,
) -> Option<CoinJoinMatch> {
    let distinct_inputs: BTreeSet<&Address> = inputs.iter().map(|(a, _)| a).collect();
    let n_in = distinct_inputs.len();
    // value -> count of outputs (ignoring zero-value outputs such as OP_RETURN)
    let mut groups: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, v) in outputs.iter().filter(|(_, v)| *v > 0) {
        *groups.entry(*v).or_default() += 1;
    }
    // the largest group; on ties the larger value
    let (&denom, &n_eq) = groups.iter().max_by_key(|(v, n)| (**n, **v))?;
    let mk = |kind| {
        Some(CoinJoinMatch {
            kind,
            denomination: denom,
            equal_outputs: u32::try_from(n_eq).unwrap_or(u32::MAX),
            distinct_inputs: u32::try_from(n_in).unwrap_or(u32::MAX),
        })
    };
    let distinct_outputs: BTreeSet<&Address> = outputs.iter().map(|(a, _)| a).collect();
    let unique_outputs = distinct_outputs.len() == outputs.len();
    // Whirlpool: exactly 5 inputs and 5 outputs, all of one pool denomination, inputs at least
    // the denomination (premix/postmix UTXOs), distinct output addresses.
    if inputs.len() == 5
        && n_in == 5
        && outputs.len() == 5
        && n_eq == 5
        && unique_outputs
        && WHIRLPOOL_POOLS.contains(&denom)
        && inputs.iter().all(|(_, v)| *v >= denom)
    {
        return mk(CoinJoinKind::Whirlpool);
    }
    if n_eq < 2 || n_in < n_eq {
        // fewer distinct inputs than equal outputs: one wallet can do that (batch payment)
        return None;
    }
    // Wasabi 2.0: large rounds with several repeated values and no address reuse.
    let repeated_values = groups.values().filter(|&&n| n >= 2).count();
    if n_in >= p.wasabi2_min_inputs
        && outputs.len() >= p.wasabi2_min_inputs
        && repeated_values >= 2
        && unique_outputs
    {
        return mk(CoinJoinKind::Wasabi2);
    }
    // Wasabi 1.x: at least `wasabi1_min_equal_outputs` equal outputs near 0.1 BTC × 2^k.
    if n_eq >= p.wasabi1_min_equal_outputs && near_wasabi1_level(denom) {
        return mk(CoinJoinKind::Wasabi1);
    }
    // JoinMarket: n equal outputs to distinct addresses, the rest (change) at most n outputs.
    let change_outputs = outputs
        .iter()
        .filter(|(_, v)| *v != denom && *v > 0)
        .count();
    let eq_addrs: BTreeSet<&Address> = outputs
        .iter()
        .filter(|(_, v)| *v == denom)
        .map(|(a, _)| a)
        .collect();
    if eq_addrs.len() == n_eq
        && change_outputs <= n_eq
        && eq_addrs.iter().all(|a| !distinct_inputs.contains(a))
    {
        return mk(CoinJoinKind::JoinMarket);
    }
    if n_eq >= p.generic_min_equal_outputs {
        return mk(CoinJoinKind::Generic);
    }
    None
}

/// Whether `v` is within ±10 % of 0.1 BTC × 2^k for some k in 0..=7 (Wasabi 1.x levels).
fn near_wasabi1_level(v: u64) -> bool {
    (0..=7u32).any(|k| {
        let level = 10_000_000u64 << k;
        let tol = level / 10;
        v >= level - tol && v <= level + tol
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn a(i: u32) -> Address {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        Address::Script(b)
    }

    #[test]
    fn whirlpool() {
        let ins: Vec<_> = (0..5).map(|i| (a(i), 1_000_170)).collect();
        let outs: Vec<_> = (10..15).map(|i| (a(i), 1_000_000)).collect();
        assert_eq!(
            detect(&ins, &outs, &CoinJoinParams::default())
                .unwrap()
                .kind,
            CoinJoinKind::Whirlpool
        );
        // not a pool denomination: still a CoinJoin, but not Whirlpool
        let outs: Vec<_> = (10..15).map(|i| (a(i), 1_234_567)).collect();
        let ins: Vec<_> = (0..5).map(|i| (a(i), 2_000_000)).collect();
        let m = detect(&ins, &outs, &CoinJoinParams::default()).unwrap();
        assert_ne!(m.kind, CoinJoinKind::Whirlpool);
    }

    #[test]
    fn ordinary_spends_are_not_coinjoins() {
        let p = CoinJoinParams::default();
        // 3 inputs, payment + change
        let ins: Vec<_> = (0..3).map(|i| (a(i), 5_000)).collect();
        assert!(detect(&ins, &[(a(9), 12_000), (a(10), 2_500)], &p).is_none());
        // batch payout of equal amounts from fewer inputs
        let ins = vec![(a(0), 1_000_000)];
        let outs: Vec<_> = (10..20).map(|i| (a(i), 50_000)).collect();
        assert!(detect(&ins, &outs, &p).is_none());
    }
}
