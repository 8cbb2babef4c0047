//! Trace parameters and results (serialised as the `paytrace trace --format json` output).

use crate::{
    Model, StopList, TraceError,
    source::{Category, FlowSource, LabelSource},
};
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TxHash,
};
use serde::{Serialize, Serializer};
use std::{collections::BTreeMap, fmt::Display};

/// Serialises with `Display` (assets as `native` or the token address).
pub(crate) fn ser_display<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The bounds and rules of one trace.
#[derive(Clone, Debug)]
pub struct TraceParams {
    /// Taint model.
    pub model: Model,
    /// Maximum hops after the payee (the seed's receiver is hop 0).
    pub max_hops: u32,
    /// Seeds before this time are ignored (address seeds).
    pub since: Option<Timestamp>,
    /// Transfers after this time are not followed.
    pub until: Option<Timestamp>,
    /// Transfers whose tainted part is below this are not followed to new addresses.
    pub min_amount: Amount,
    /// At most this many addresses are expanded (their history loaded).
    pub max_nodes: usize,
    /// Categories at which value exits.
    pub stop: StopList,
    /// Categories of swap/DEX addresses through which value crosses assets (default: `defi`,
    /// `swap`); see docs/heuristics.md.
    pub swap: StopList,
    /// At most this many evidence paths.
    pub max_paths: usize,
    /// Only this chain.
    pub chain: Option<ChainId>,
}

impl Default for TraceParams {
    fn default() -> Self {
        Self {
            model: Model::Haircut,
            max_hops: 5,
            since: None,
            until: None,
            min_amount: Amount::ZERO,
            max_nodes: 10_000,
            stop: StopList::default(),
            swap: StopList::new(crate::source::DEFAULT_SWAP_CATEGORIES),
            max_paths: 20,
            chain: None,
        }
    }
}

/// Where a trace starts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Seed {
    /// These transfers (one payout, or a payroll batch), fully tainted at their receivers.
    Transfers(Vec<TransferKey>),
    /// Every outflow of this address within the parameters' time window.
    Outflows(Address),
}

/// Why an address that received taint was not followed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A seed's receiver, followed.
    Payee,
    /// An intermediate address, followed; the value still there is unattributed.
    Followed,
    /// A stop-category address: value exited there.
    Exited,
    /// At the hop limit: not followed.
    AtDepthLimit,
    /// Reached only by transfers below the minimum amount.
    BelowMinAmount,
    /// The node limit was reached: not followed.
    NodeLimit,
    /// The trace's time budget ran out: not followed.
    TimeBudget,
    /// A swap/DEX address: tainted value in one asset was converted to the other assets it
    /// paid out in the same transaction (followed from there); the value in is not followed.
    Swapped,
}

impl Status {
    /// The totals category of value that stopped at an address of this status (for followed
    /// addresses, of value still held there).
    pub const fn category(&self) -> &'static str {
        match self {
            Self::Payee => "still_at_payee",
            Self::Followed => "unattributed",
            Self::Exited => "exited",
            Self::AtDepthLimit => "at_depth_limit",
            Self::BelowMinAmount => "below_min_amount",
            Self::NodeLimit => "node_limit",
            Self::TimeBudget => "time_budget",
            Self::Swapped => "swapped",
        }
    }
}

/// One address (and asset) the traced value reached (forward) or came from (backward).
#[derive(Clone, Debug, Serialize)]
pub struct Destination {
    /// The address.
    pub address: Address,
    /// Its labels (empty when unlabelled).
    pub labels: Vec<String>,
    /// Its label category.
    pub category: Option<Category>,
    /// Followed, exited, or why not followed.
    pub status: Status,
    /// The asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Tainted value that reached it (backward: value it contributed), raw units.
    pub amount: Amount,
    /// Tainted value still held there at the end of the trace (forward, followed addresses).
    pub held: Amount,
    /// Minimum number of hops from the payee (the payee is 0).
    pub hops: u32,
    /// Time of the first tainted arrival.
    pub first_arrival: Timestamp,
    /// Transaction of the first tainted arrival.
    pub first_arrival_tx: TxHash,
    /// Its history before the index is missing (a balance went negative).
    pub incomplete_history: bool,
    /// A Bitcoin transaction with a CoinJoin shape: the evidence of its `mixer` category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinjoin: Option<CoinJoinEvidence>,
}

/// Why a transaction node met by a trace is a mixer: the CoinJoin shape clustering detects
/// (Whirlpool, Wasabi 1.x/2.0, JoinMarket, or many equal outputs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CoinJoinEvidence {
    /// The shape (`whirlpool`, `wasabi1`, `wasabi2`, `joinmarket`, ...).
    pub kind: String,
    /// The most frequent output value, raw units (satoshi).
    pub denomination: Amount,
    /// Outputs with that value.
    pub equal_outputs: u32,
    /// Distinct input addresses.
    pub distinct_inputs: u32,
}

impl CoinJoinEvidence {
    /// The category of value that meets a CoinJoin.
    pub const CATEGORY: &'static str = "mixer";

    /// The fewest equal outputs of a CoinJoin that stops a trace. Clustering also flags two
    /// equal outputs from two spenders (`joinmarket`, n = 2), which costs it one merge at most,
    /// but an ordinary payment of two equal amounts from two inputs has that shape too and
    /// would end a trace.
    pub const MIN_EQUAL_OUTPUTS: u32 = 3;

    /// The evidence of a detection.
    pub fn of(m: &crate::cluster::coinjoin::CoinJoinMatch) -> Self {
        Self {
            kind: m.kind.to_string(),
            denomination: Amount::from_u64(m.denomination),
            equal_outputs: m.equal_outputs,
            distinct_inputs: m.distinct_inputs,
        }
    }

    /// Whether transaction node `node` (on `chain`) is a CoinJoin, from its transfers.
    pub(crate) fn detect<S: FlowSource>(
        src: &S,
        node: &Address,
        chain: ChainId,
        read: &mut usize,
    ) -> Result<Option<Self>, TraceError> {
        if !node.is_tx() {
            return Ok(None);
        }
        let mut ts = src
            .address_transfers(node, paytrace_indexer::Direction::Incoming, Some(chain))
            .map_err(TraceError::source)?;
        ts.extend(
            src.address_transfers(node, paytrace_indexer::Direction::Outgoing, Some(chain))
                .map_err(TraceError::source)?,
        );
        *read += ts.len();
        ts.sort_by_key(|t| t.key);
        Self::of_transfers(&ts)
    }

    /// Whether the transfers of one transaction node (sorted by key) are a CoinJoin.
    pub(crate) fn of_transfers(ts: &[Transfer]) -> Result<Option<Self>, TraceError> {
        let txs = crate::cluster::utxo::group(ts).map_err(TraceError::source)?;
        let params = crate::cluster::coinjoin::CoinJoinParams::default();
        Ok(txs
            .first()
            .and_then(|tx| crate::cluster::utxo::coinjoin_of(tx, &params))
            .filter(|m| m.equal_outputs >= Self::MIN_EQUAL_OUTPUTS)
            .map(|m| Self::of(&m)))
    }
}

/// Sorts destinations: largest amount first, then fewer hops, then by address.
pub(crate) fn sort_destinations(d: &mut [Destination]) {
    // A stable sort of positions, then one permutation: sorting the (large) destinations
    // themselves moved each of them a dozen times, most of the sort's cost on a wide trace.
    let mut order: Vec<usize> = (0..d.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&d[i], &d[j]);
        b.amount
            .cmp(&a.amount)
            .then(a.hops.cmp(&b.hops))
            .then(a.address.cmp(&b.address))
    });
    // Apply the permutation in place, cycle by cycle: position `k` receives `d[order[k]]`.
    let mut done = vec![false; d.len()];
    for start in 0..d.len() {
        if done[start] {
            continue;
        }
        let mut k = start;
        loop {
            done[k] = true;
            let next = order[k];
            if next == start {
                break;
            }
            d.swap(k, next);
            k = next;
        }
    }
}

impl Parameters {
    /// The reproduction parameters of a trace in `direction` with `p`, recording the store
    /// checkpoints of `src` and the label set version of `labels` now.
    pub(crate) fn record<S: FlowSource, L: LabelSource>(
        direction: &'static str,
        p: &TraceParams,
        src: &S,
        labels: &L,
    ) -> Result<Self, TraceError> {
        let checkpoints = src
            .checkpoints()
            .map_err(TraceError::source)?
            .into_iter()
            .map(|(c, b)| (c.0, b))
            .collect();
        Ok(Self {
            direction,
            model: p.model,
            max_hops: p.max_hops,
            since: p.since,
            until: p.until,
            min_amount: p.min_amount,
            max_nodes: p.max_nodes,
            stop_categories: p.stop.categories().cloned().collect(),
            swap_categories: p.swap.categories().cloned().collect(),
            chain: p.chain,
            checkpoints,
            label_set_version: labels.version(),
        })
    }
}

/// One transfer on an evidence path.
#[derive(Clone, Debug, Serialize)]
pub struct PathHop {
    /// Transaction hash.
    pub tx_hash: TxHash,
    /// Chain.
    pub chain: ChainId,
    /// Block.
    pub block: BlockNumber,
    /// Block time.
    pub time: Timestamp,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Whole transfer amount.
    pub amount: Amount,
    /// Its tainted part.
    pub tainted: Amount,
}

impl PathHop {
    /// The hop of transfer `t`, `tainted` of it traced.
    pub(crate) fn of(t: &paytrace_indexer::Transfer, tainted: Amount) -> Self {
        Self {
            tx_hash: t.tx_hash,
            chain: t.key.chain,
            block: t.key.block,
            time: t.time,
            from: t.from,
            to: t.to,
            amount: t.amount,
            tainted,
        }
    }
}

impl From<&FlowEdge> for PathHop {
    fn from(e: &FlowEdge) -> Self {
        Self {
            tx_hash: e.tx_hash,
            chain: e.key.chain,
            block: e.key.block,
            time: e.time,
            from: e.from,
            to: e.to,
            amount: e.amount,
            tainted: e.tainted,
        }
    }
}

/// The transfers that carried the most taint to one destination, seed first.
#[derive(Clone, Debug, Serialize)]
pub struct EvidencePath {
    /// The destination.
    pub to: Address,
    /// Its category.
    pub category: Option<Category>,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Tainted amount of the last hop.
    pub amount: Amount,
    /// The transfers, in time order.
    pub hops: Vec<PathHop>,
}

impl EvidencePath {
    /// The evidence path `hops` to destination `d`, `amount` being the tainted part of its
    /// hop nearest `d`.
    pub(crate) fn to(d: &Destination, amount: Amount, hops: Vec<PathHop>) -> Self {
        Self {
            to: d.address,
            category: d.category.clone(),
            asset: d.asset,
            amount,
            hops,
        }
    }
}

/// A transfer that carried taint (an edge of the flow graph).
#[derive(Clone, Debug, Serialize)]
pub struct FlowEdge {
    /// Transfer key.
    #[serde(skip)]
    pub key: TransferKey,
    /// Transaction.
    pub tx_hash: TxHash,
    /// Block time.
    pub time: Timestamp,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Whole amount.
    pub amount: Amount,
    /// Tainted part.
    pub tainted: Amount,
}

/// What the trace started from.
#[derive(Clone, Debug, Serialize)]
pub struct SeedInfo {
    /// `transfer`, `batch`, `address` (forward) or `address`, `transfer` (backward);
    /// `transaction` for the outputs (forward) or inputs (backward) of a Bitcoin transaction.
    pub kind: &'static str,
    /// The seed's address (payer or target).
    pub address: Option<Address>,
    /// The seed transfers.
    pub transfers: Vec<FlowEdge>,
    /// Seed value per asset.
    pub total: BTreeMap<String, Amount>,
}

/// Everything needed to reproduce a trace.
#[derive(Clone, Debug, Serialize)]
pub struct Parameters {
    /// `forward` or `backward`.
    pub direction: &'static str,
    /// Model.
    pub model: Model,
    /// Hop limit.
    pub max_hops: u32,
    /// Window start.
    pub since: Option<Timestamp>,
    /// Window end.
    pub until: Option<Timestamp>,
    /// Minimum followed amount.
    pub min_amount: Amount,
    /// Node limit.
    pub max_nodes: usize,
    /// Stop categories.
    pub stop_categories: Vec<Category>,
    /// Swap categories (value crosses assets only there).
    pub swap_categories: Vec<Category>,
    /// Chain restriction.
    pub chain: Option<ChainId>,
    /// Last indexed block per chain when the trace ran.
    pub checkpoints: BTreeMap<u16, BlockNumber>,
    /// Label set version.
    pub label_set_version: Option<String>,
}

/// Work counters.
#[derive(Clone, Copy, Default, Debug, Serialize)]
pub struct TraceStats {
    /// Addresses whose history was loaded.
    pub expanded_addresses: usize,
    /// Transfers read from the source.
    pub transfers_read: usize,
    /// Transfer events processed in order.
    pub events: usize,
    /// Expanded addresses whose replay resumed at a balance checkpoint.
    pub checkpoints_used: usize,
    /// History entries those checkpoints stood for (not read).
    pub replay_skipped: usize,
}

/// Why a trace stopped expanding before it was complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Truncation {
    /// `max_nodes` addresses were expanded; later ones were not followed (status
    /// `node_limit`).
    MaxNodes,
    /// The time budget ran out; addresses reached later were not followed (status
    /// `time_budget`).
    TimeBudget,
}

impl Truncation {
    /// The name used in JSON and text (`max_nodes`, `time_budget`).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::MaxNodes => "max_nodes",
            Self::TimeBudget => "time_budget",
        }
    }
}

/// A complete trace result.
#[derive(Clone, Debug, Serialize)]
pub struct TraceResult {
    /// Taint model.
    pub model: Model,
    /// A limit stopped the trace from expanding every address it reached: the result is a
    /// lower bound of the flow (see `truncated_by` and the `node_limit` / `time_budget`
    /// destinations).
    pub truncated: bool,
    /// The first limit that was hit (`max_nodes` or `time_budget`), `null` when complete.
    pub truncated_by: Option<Truncation>,
    /// The seed.
    pub seed: SeedInfo,
    /// Reproduction parameters.
    pub parameters: Parameters,
    /// Some balance went negative: history before the index is missing, amounts are bounds.
    pub incomplete_history: bool,
    /// Per address and asset, largest amount first.
    pub destinations: Vec<Destination>,
    /// Category -> asset -> amount. Categories: stop categories (`exchange`, `sanctioned`, ...),
    /// `still_at_payee`, `unattributed`, `at_depth_limit`, `below_min_amount`, `node_limit`,
    /// `swapped` (backward adds `origin` and `before_index`).
    pub totals_by_category: BTreeMap<String, BTreeMap<String, Amount>>,
    /// Evidence paths to labelled (then largest) destinations.
    pub paths: Vec<EvidencePath>,
    /// Every transfer that carried taint (the flow graph's edges).
    pub edges: Vec<FlowEdge>,
    /// Work counters.
    pub stats: TraceStats,
}

impl TraceResult {
    /// The destination entry of `(address, asset)`.
    pub fn destination(&self, address: &Address, asset: &Asset) -> Option<&Destination> {
        self.destinations
            .iter()
            .find(|d| d.address == *address && d.asset == *asset)
    }

    /// The total of `category` in `asset` (zero when absent).
    pub fn total(&self, category: &str, asset: &Asset) -> Amount {
        self.totals_by_category
            .get(category)
            .and_then(|m| m.get(&asset.to_string()))
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod sort_tests {
    use super::*;

    #[test]
    fn sorting_positions_is_the_stable_sort_of_the_destinations() {
        // Few distinct amounts, hops and addresses: many ties, which must keep their order
        // (told apart by `held`, unique).
        let mut x = 7u64;
        let mut next = move |m: u64| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) % m
        };
        let dests: Vec<Destination> = (0..300u64)
            .map(|i| {
                let mut a = [0u8; 20];
                a[19] = u8::try_from(next(4)).unwrap();
                Destination {
                    address: Address::Evm(a),
                    labels: vec![],
                    category: None,
                    status: Status::Followed,
                    asset: Asset::Native,
                    amount: Amount::from_u64(next(5)),
                    held: Amount::from_u64(i),
                    hops: u32::try_from(next(3)).unwrap(),
                    first_arrival: Timestamp(0),
                    first_arrival_tx: TxHash(alloy_primitives::B256::ZERO),
                    incomplete_history: false,
                    coinjoin: None,
                }
            })
            .collect();
        let mut want = dests.clone();
        want.sort_by(|a, b| {
            b.amount
                .cmp(&a.amount)
                .then(a.hops.cmp(&b.hops))
                .then(a.address.cmp(&b.address))
        });
        let mut got = dests;
        sort_destinations(&mut got);
        let key = |v: &[Destination]| v.iter().map(|d| (d.address, d.held)).collect::<Vec<_>>();
        assert_eq!(key(&got), key(&want));
    }
}
