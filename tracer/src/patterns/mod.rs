//! Typology detectors: peeling chains, rapid pass-through, fan-in / fan-out, scatter-gather,
//! gather-scatter, cycles and structuring.
//!
//! Every detector is a pure function over a slice of transfers (from a [`crate::MemoryGraph`],
//! a store range, an imported file, or the neighbourhood of a screened address) and its
//! parameters. An instance carries its type, a score in `[0, 1]`, the member addresses and the
//! evidence transfers. Bitcoin-style transaction nodes ([`Address::Tx`]) are collapsed first
//! (see [`collapse_utxo`]) so that the same detectors work on UTXO chains and on token
//! transfers. The exact rules are in docs/heuristics.md ("Typology detectors").
//!
//! No detector needs an amount bound read off the data: amounts are judged against the
//! accounts' own usual amounts ([`usual`]), degrees against the center's usual degree, and
//! structuring against a reporting threshold the user sets in token units. [`amlsim`] scores
//! the detectors against the patterns planted in an IBM AMLSim sample.

pub mod amlsim;
mod detect;
pub mod usual;

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
    /// Value returning to an earlier address within a window (see [`CycleKind`]).
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

/// How the transfers of a cycle are ordered in time.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CycleKind {
    /// Each transfer after the previous one: value left an address and came back.
    RoundTrip,
    /// Every edge of a closed loop carries a transfer within the window, in any time order:
    /// a closed loop of value, weaker evidence than a round trip (the return may precede the
    /// departure, so it need not be the same money).
    ClosedLoop,
}

impl CycleKind {
    /// The stable name used in JSON and text.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::RoundTrip => "round-trip",
            Self::ClosedLoop => "closed-loop",
        }
    }
}

impl fmt::Display for CycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// Cycles only: round trip (time-ordered) or closed loop (any order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_kind: Option<CycleKind>,
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
            cycle_kind: None,
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

/// Parameters of every detector. Only the horizon (`fan_window_secs`, `cycle_window_secs`,
/// ...) is a user's choice; every other default comes from how accounts behave on chain and is
/// explained in docs/heuristics.md ("Typology detectors").
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct PatternParams {
    /// Which detectors run (all when empty).
    pub kinds: Vec<PatternKind>,
    /// Fan-in / fan-out: window in seconds.
    pub fan_window_secs: u64,
    /// Fan-in / fan-out, degree rule: at least this many distinct counterparties in the window
    /// (and `fan_burst_factor` times the center's usual number).
    pub fan_min_counterparties: usize,
    /// Fan-in / fan-out, amount rule: at least this many distinct counterparties in the window
    /// whose transfers with the center are unusual for them (see [`usual`]).
    pub fan_min_unusual: usize,
    /// Fan-in / fan-out, degree rule: the window's distinct counterparties are at least this
    /// many times the center's usual number for a window of that length.
    pub fan_burst_factor: u32,
    /// Fan-in / fan-out / scatter / gather: only transfers of at most this amount count
    /// (none by default; the detectors need no amount bound).
    pub fan_max_amount: Option<Amount>,
    /// Fan-in / fan-out / scatter / gather: only transfers of at least this amount count.
    pub fan_min_amount: Amount,
    /// Usual amounts: an account's usual amount is known from at least this many other
    /// counterparties.
    pub usual_min_counterparties: usize,
    /// Usual amounts: an amount is unusual only when it differs from the account's median by at
    /// least this factor (and lies outside Tukey's far-out fences of its amounts).
    pub usual_min_ratio: u32,
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
    /// Cycle: value returns within this many seconds of leaving (round trip), or every edge of
    /// the loop carries a transfer within this many seconds (closed loop).
    pub cycle_window_secs: u64,
    /// Cycle: at most this many transfers in the cycle.
    pub cycle_max_len: usize,
    /// Structuring: the reporting threshold in raw units for every asset without its own entry
    /// in `structuring_asset_thresholds` (none: structuring looks only at those assets).
    pub structuring_threshold: Option<Amount>,
    /// Structuring: reporting thresholds per asset, raw units (from the config's token-unit
    /// threshold and the tokens' decimals).
    pub structuring_asset_thresholds: Vec<AssetThreshold>,
    /// Structuring: amounts in `[threshold × (1 − margin), threshold)` count, margin in ppm.
    pub structuring_margin_ppm: u32,
    /// Structuring: at least this many such amounts by one sender in the window.
    pub structuring_min_count: usize,
    /// Structuring: window in seconds.
    pub structuring_window_secs: u64,
    /// Stop after this many instances per detector (the rest are counted, not listed).
    pub max_instances: usize,
    /// Token units of the amounts in the instances' summaries (not a detector parameter; an
    /// asset missing from it is shown in raw units with its address).
    #[serde(skip)]
    pub assets: crate::report::AssetBook,
}

/// A structuring threshold for one asset.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct AssetThreshold {
    /// The asset (`native` or the token contract).
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Threshold in raw units.
    pub threshold: Amount,
}

/// One day in seconds.
pub const DAY: u64 = 86_400;

impl Default for PatternParams {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            fan_window_secs: DAY,
            fan_min_counterparties: 5,
            fan_min_unusual: 2,
            fan_burst_factor: 4,
            fan_max_amount: None,
            fan_min_amount: Amount::ZERO,
            usual_min_counterparties: 2,
            usual_min_ratio: 10,
            sg_window_secs: 3 * DAY,
            sg_min_branches: 3,
            pass_window_secs: 3_600,
            pass_min_forwarded_ppm: 900_000,
            peel_min_hops: 3,
            peel_min_major_ppm: 700_000,
            peel_window_secs: 7 * DAY,
            cycle_window_secs: 7 * DAY,
            cycle_max_len: 5,
            structuring_threshold: None,
            structuring_asset_thresholds: Vec::new(),
            structuring_margin_ppm: 100_000,
            structuring_min_count: 3,
            structuring_window_secs: 7 * DAY,
            max_instances: 10_000,
            assets: crate::report::AssetBook::new(),
        }
    }
}

impl PatternParams {
    /// Whether detector `k` runs.
    pub fn runs(&self, k: PatternKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&k)
    }

    /// Sets the horizon of every windowed typology (fan-in / fan-out, scatter-gather phases,
    /// cycles, structuring) to `secs`.
    pub fn set_horizon(&mut self, secs: u64) {
        self.fan_window_secs = secs;
        self.sg_window_secs = secs;
        self.cycle_window_secs = secs;
        self.structuring_window_secs = secs;
    }

    /// The structuring threshold of `asset`, if any.
    pub fn structuring_threshold_of(&self, asset: &Asset) -> Option<Amount> {
        self.structuring_asset_thresholds
            .iter()
            .find(|t| t.asset == *asset)
            .map(|t| t.threshold)
            .or(self.structuring_threshold)
    }

    /// Whether structuring has a threshold for any asset.
    pub fn has_structuring_threshold(&self) -> bool {
        self.structuring_threshold.is_some() || !self.structuring_asset_thresholds.is_empty()
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
