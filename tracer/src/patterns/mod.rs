//! Typology detectors: peeling chains, rapid pass-through, fan-in / fan-out, scatter-gather,
//! gather-scatter, cycles and structuring.
//!
//! Every detector is a pure function over a slice of transfers (from a [`crate::MemoryGraph`],
//! a store range, an imported file, or the neighbourhood of a screened address) and its
//! parameters. An instance carries its type, a score in `[0, 1]`, the member addresses and the
//! evidence transfers. Bitcoin-style transaction nodes ([`Address::Tx`]) are collapsed first
//! (see [`collapse_utxo`]) so that the same detectors work on UTXO chains and on token
//! transfers. The exact rules are in docs/heuristics.md ("Typology detectors").

mod detect;

pub use detect::{
    collapse_utxo, detect, detect_cycles, detect_fan, detect_gather_scatter, detect_pass_through,
    detect_peel_chains, detect_scatter_gather, detect_structuring,
};

use crate::result::ser_display;
use paytrace_indexer::{Address, Amount, Asset, Timestamp, Transfer, TransferKey, TxHash};
use serde::Serialize;
use std::{fmt, str::FromStr};

/// The typologies.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatternKind {
    /// A run of hops each sending most of the value to a fresh address and a little elsewhere.
    Peel,
    /// Received and forwarded within a short time, little left behind.
    PassThrough,
    /// Many sources into one address within a window.
    FanIn,
    /// One address to many receivers within a window.
    FanOut,
    /// One source scatters to intermediates that gather into one receiver.
    ScatterGather,
    /// Many sources gather into one address that then scatters to many receivers.
    GatherScatter,
    /// Value returning to an earlier address within a window.
    Cycle,
    /// Many amounts just under a reporting threshold.
    Structuring,
}

impl PatternKind {
    /// Every kind, in display order.
    pub const ALL: [Self; 8] = [
        Self::Peel,
        Self::PassThrough,
        Self::FanIn,
        Self::FanOut,
        Self::ScatterGather,
        Self::GatherScatter,
        Self::Cycle,
        Self::Structuring,
    ];

    /// The stable name used by the CLI and in JSON.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Peel => "peel",
            Self::PassThrough => "pass-through",
            Self::FanIn => "fan-in",
            Self::FanOut => "fan-out",
            Self::ScatterGather => "scatter-gather",
            Self::GatherScatter => "gather-scatter",
            Self::Cycle => "cycle",
            Self::Structuring => "structuring",
        }
    }
}

impl fmt::Display for PatternKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown pattern name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown pattern type {0:?}: expected peel, pass-through, fan-in, fan-out, scatter-gather, gather-scatter, cycle or structuring"
)]
pub struct UnknownPattern(pub String);

impl FromStr for PatternKind {
    type Err = UnknownPattern;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = s.trim().to_ascii_lowercase().replace('_', "-");
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == n)
            .ok_or_else(|| UnknownPattern(s.to_owned()))
    }
}

/// One transfer of an instance's evidence.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct EvidenceTransfer {
    /// Canonical key (not serialised; `tx_hash` and `block` identify it).
    #[serde(skip)]
    pub key: TransferKey,
    /// Transaction hash.
    pub tx_hash: TxHash,
    /// Block.
    pub block: u64,
    /// Block time (Unix seconds).
    pub time: Timestamp,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Asset (`native` or the token contract).
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Raw amount.
    pub amount: Amount,
}

impl From<&Transfer> for EvidenceTransfer {
    fn from(t: &Transfer) -> Self {
        Self {
            key: t.key,
            tx_hash: t.tx_hash,
            block: t.key.block.0,
            time: t.time,
            from: t.from,
            to: t.to,
            asset: t.asset,
            amount: t.amount,
        }
    }
}

/// One detected instance of a typology.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct PatternInstance {
    /// The typology.
    #[serde(rename = "type")]
    pub kind: PatternKind,
    /// Strength in `[0, 1]` (rules in docs/heuristics.md).
    pub score: f64,
    /// The central address (receiver of a fan-in, sender of a fan-out, hub, first hop, ...).
    pub center: Address,
    /// Every address taking part, sorted.
    pub members: Vec<Address>,
    /// The transfers that make up the instance, in canonical order.
    pub transfers: Vec<EvidenceTransfer>,
    /// First and last evidence time.
    pub first_time: Timestamp,
    /// Last evidence time.
    pub last_time: Timestamp,
    /// One line saying what was seen.
    pub summary: String,
}

impl PatternInstance {
    pub(crate) fn new(
        kind: PatternKind,
        score: f64,
        center: Address,
        ts: &[&Transfer],
        summary: String,
    ) -> Self {
        let mut transfers: Vec<EvidenceTransfer> =
            ts.iter().map(|t| EvidenceTransfer::from(*t)).collect();
        transfers.sort_by_key(|t| t.key);
        transfers.dedup_by_key(|t| t.key);
        let mut members: Vec<Address> = transfers.iter().flat_map(|t| [t.from, t.to]).collect();
        members.push(center);
        members.sort();
        members.dedup();
        let first_time = transfers.iter().map(|t| t.time).min().unwrap_or_default();
        let last_time = transfers.iter().map(|t| t.time).max().unwrap_or_default();
        Self {
            kind,
            score: score.clamp(0.0, 1.0),
            center,
            members,
            transfers,
            first_time,
            last_time,
            summary,
        }
    }
}

/// Parameters of every detector (defaults tuned for minutes-to-days laundering on EVM chains).
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct PatternParams {
    /// Which detectors run (all when empty).
    pub kinds: Vec<PatternKind>,
    /// Fan-in / fan-out: window in seconds.
    pub fan_window_secs: u64,
    /// Fan-in / fan-out: at least this many distinct counterparties in the window.
    pub fan_min_counterparties: usize,
    /// Fan-in / fan-out / scatter / gather: only transfers of at most this amount count.
    pub fan_max_amount: Option<Amount>,
    /// Fan-in / fan-out / scatter / gather: only transfers of at least this amount count.
    pub fan_min_amount: Amount,
    /// Scatter-gather / gather-scatter: the second phase starts within this many seconds of
    /// the first phase's end.
    pub sg_window_secs: u64,
    /// Scatter-gather / gather-scatter: at least this many intermediates (or sources and
    /// receivers).
    pub sg_min_branches: usize,
    /// Pass-through: forwarded within this many seconds.
    pub pass_window_secs: u64,
    /// Pass-through: at least this share of the received amount forwarded, in millionths.
    pub pass_min_forwarded_ppm: u32,
    /// Peel chain: at least this many consecutive peel hops.
    pub peel_min_hops: usize,
    /// Peel chain: the main output carries at least this share of the hop's outputs, ppm.
    pub peel_min_major_ppm: u32,
    /// Peel chain: the next hop is sent within this many seconds of the arrival.
    pub peel_window_secs: u64,
    /// Cycle: value returns within this many seconds of leaving.
    pub cycle_window_secs: u64,
    /// Cycle: at most this many transfers in the cycle.
    pub cycle_max_len: usize,
    /// Structuring: the reporting threshold (raw units of the asset).
    pub structuring_threshold: Amount,
    /// Structuring: amounts in `[threshold × (1 − margin), threshold)` count, margin in ppm.
    pub structuring_margin_ppm: u32,
    /// Structuring: at least this many such amounts by one sender in the window.
    pub structuring_min_count: usize,
    /// Structuring: window in seconds.
    pub structuring_window_secs: u64,
    /// Stop after this many instances per detector (the rest are counted, not listed).
    pub max_instances: usize,
}

/// One day in seconds.
pub const DAY: u64 = 86_400;

impl Default for PatternParams {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            fan_window_secs: DAY,
            fan_min_counterparties: 5,
            fan_max_amount: None,
            fan_min_amount: Amount::ZERO,
            sg_window_secs: 3 * DAY,
            sg_min_branches: 3,
            pass_window_secs: 3_600,
            pass_min_forwarded_ppm: 900_000,
            peel_min_hops: 3,
            peel_min_major_ppm: 700_000,
            peel_window_secs: 7 * DAY,
            cycle_window_secs: 7 * DAY,
            cycle_max_len: 5,
            // 10 000 units of a 6-decimals stablecoin.
            structuring_threshold: Amount::from_u64(10_000_000_000),
            structuring_margin_ppm: 100_000,
            structuring_min_count: 3,
            structuring_window_secs: 7 * DAY,
            max_instances: 10_000,
        }
    }
}

impl PatternParams {
    /// Whether detector `k` runs.
    pub fn runs(&self, k: PatternKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&k)
    }
}

/// Detected instances and how many were cut by `max_instances`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PatternReport {
    /// Instances, strongest first within each type.
    pub instances: Vec<PatternInstance>,
    /// Instances found beyond `max_instances` per type (not listed).
    pub truncated: usize,
    /// Transfers examined (after UTXO collapsing).
    pub transfers_examined: usize,
}

#[cfg(test)]
mod tests;
