//! The graph explorer behind the web UI: around a seed address, the transfers of the addresses
//! the user expanded (outflows and inflows, aggregated per counterparty and asset), each edge
//! with the part of it that a forward trace from the seed marks as tainted, nodes with their
//! labels and category, a seed-centred layered layout (senders to the left, receivers to the
//! right), and the paths from the seed to sanctioned addresses (in the drawn graph, and the
//! trace's evidence paths to sanctioned addresses not drawn yet).
//!
//! The state of an exploration is only its parameters ([`ExploreParams`]): the same parameters
//! give the same graph, so a page can be reloaded, shared or exported.

use paytrace_indexer::{
    Address, Amount, Asset, ChainId, Direction, Store, StoreError, Timestamp, TransferKey, TxHash,
};
use paytrace_tracer::{
    LabelSource, Model, Seed, TraceError, TraceParams, source::Category, trace_forward_within,
};
use serde::Serialize;
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    time::Duration,
};

/// Why the explorer could not build a graph.
#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    /// Reading the store failed.
    #[error("reading the transfers of {address}: {source}")]
    Store {
        /// The address being read.
        address: Address,
        /// The store error (boxed: it is large).
        source: Box<StoreError>,
    },
    /// The forward trace from the seed failed.
    #[error("tracing from {seed}: {source}")]
    Trace {
        /// The seed.
        seed: Address,
        /// The trace error (boxed: it is large).
        source: Box<TraceError>,
    },
    /// A label read failed: the nodes' categories (and the highlighted paths) would be wrong.
    #[error("reading the labels of the drawn addresses: {0}")]
    Labels(paytrace_indexer::labels::LabelError),
    /// Summing amounts overflowed.
    #[error("summing the transfers between {from} and {to}: {reason}")]
    Amount {
        /// Sender.
        from: Address,
        /// Receiver.
        to: Address,
        /// What overflowed.
        reason: String,
    },
}

impl ExploreError {
    /// A store read that may succeed when retried (the store is busy).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store { source, .. } => source.is_retryable(),
            Self::Trace { .. } | Self::Labels(_) | Self::Amount { .. } => false,
        }
    }
}

/// What to draw.
#[derive(Clone, Debug)]
pub struct ExploreParams {
    /// The address the exploration starts from (the trace's seed).
    pub seed: Address,
    /// Addresses whose outflows are drawn (the seed's always are).
    pub expand_out: BTreeSet<Address>,
    /// Addresses whose inflows are drawn (the seed's always are).
    pub expand_in: BTreeSet<Address>,
    /// Taint model of the forward trace from the seed.
    pub model: Model,
    /// Hops of the forward trace from the seed (the seed's receivers are hop 0).
    pub hops: u32,
    /// At most this many counterparties per expanded address and direction (largest taint,
    /// then most transfers, first); the rest is counted in [`ExploreNode::omitted_out`] /
    /// [`ExploreNode::omitted_in`].
    pub max_neighbours: usize,
    /// At most this many transfers read per expanded address and direction; an address with
    /// more is marked [`ExploreNode::partial`].
    pub max_reads: usize,
    /// Transfers listed per edge (all are counted and summed).
    pub max_edge_transfers: usize,
    /// The forward trace expands at most this many addresses.
    pub max_nodes: usize,
    /// Wall-time budget of the forward trace.
    pub trace_budget: Option<Duration>,
    /// Only this chain.
    pub chain: Option<ChainId>,
}

impl ExploreParams {
    /// The defaults around `seed`: haircut, 6 hops, 20 counterparties, 20,000 transfers read
    /// per address and direction, a 2,000-address trace within 5 seconds.
    pub fn new(seed: Address) -> Self {
        Self {
            seed,
            expand_out: BTreeSet::new(),
            expand_in: BTreeSet::new(),
            model: Model::Haircut,
            hops: 6,
            max_neighbours: 20,
            max_reads: 20_000,
            max_edge_transfers: 25,
            max_nodes: 2_000,
            trace_budget: Some(Duration::from_secs(5)),
            chain: None,
        }
    }
}

/// What a node is, for its colour (the categories of the label taxonomy, plus the seed).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeClass {
    /// The exploration's seed.
    Seed,
    /// Sanctioned.
    Sanctioned,
    /// Mixer.
    Mixer,
    /// Exchange wallet.
    Exchange,
    /// Exchange deposit address.
    ExchangeDeposit,
    /// Bridge.
    Bridge,
    /// Payroll provider.
    Provider,
    /// Another labelled address (DeFi, swap, ...).
    Labelled,
    /// An unlabelled wallet.
    Wallet,
}

impl NodeClass {
    /// The class of an address of `category`.
    pub fn of(category: Option<&Category>) -> Self {
        match category.map(Category::as_str) {
            Some("sanctioned") => Self::Sanctioned,
            Some("mixer") => Self::Mixer,
            Some("exchange") => Self::Exchange,
            Some("exchange_deposit") => Self::ExchangeDeposit,
            Some("bridge") => Self::Bridge,
            Some("payroll_provider") => Self::Provider,
            Some(_) => Self::Labelled,
            None => Self::Wallet,
        }
    }

    /// The name shown in legends and used as a CSS class.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Seed => "seed",
            Self::Sanctioned => "sanctioned",
            Self::Mixer => "mixer",
            Self::Exchange => "exchange",
            Self::ExchangeDeposit => "exchange_deposit",
            Self::Bridge => "bridge",
            Self::Provider => "provider",
            Self::Labelled => "labelled",
            Self::Wallet => "wallet",
        }
    }

    /// Every class, in legend order.
    pub const ALL: [Self; 9] = [
        Self::Seed,
        Self::Provider,
        Self::Wallet,
        Self::ExchangeDeposit,
        Self::Exchange,
        Self::Sanctioned,
        Self::Mixer,
        Self::Bridge,
        Self::Labelled,
    ];
}

/// A drawn address.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreNode {
    /// The address.
    pub address: Address,
    /// Its labels (entity names), as the label store gives them today.
    pub labels: Vec<String>,
    /// Its category.
    pub category: Option<String>,
    /// Colour class.
    pub class: NodeClass,
    /// Its outflows are drawn.
    pub expanded_out: bool,
    /// Its inflows are drawn.
    pub expanded_in: bool,
    /// Counterparties of its outflows not drawn (over [`ExploreParams::max_neighbours`]).
    pub omitted_out: usize,
    /// Counterparties of its inflows not drawn.
    pub omitted_in: usize,
    /// More than [`ExploreParams::max_reads`] transfers in an expanded direction: only the
    /// first ones (oldest) are drawn.
    pub partial: bool,
    /// On a drawn path from the seed to a sanctioned address.
    pub on_sanctioned_path: bool,
    /// Column: 0 is the seed's, negative to the left (senders), positive to the right.
    pub layer: i32,
    /// Row within the column.
    pub row: usize,
}

/// One transfer of an edge.
#[derive(Clone, Debug, Serialize)]
pub struct EdgeTransfer {
    /// Transaction hash.
    pub tx_hash: TxHash,
    /// Block height.
    pub block: u64,
    /// Block time.
    pub time: Timestamp,
    /// Amount, raw units.
    pub amount: Amount,
    /// Its tainted part (forward trace from the seed), raw units.
    pub tainted: Amount,
}

/// Transfers of one asset from one drawn address to another, summed.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreEdge {
    /// Index of the sender in [`ExploreGraph::nodes`].
    pub from: usize,
    /// Index of the receiver.
    pub to: usize,
    /// Chain.
    pub chain: ChainId,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Sum of the amounts, raw units.
    pub amount: Amount,
    /// Sum of the tainted parts, raw units.
    pub tainted: Amount,
    /// Number of transfers.
    pub count: usize,
    /// The first transfers (at most [`ExploreParams::max_edge_transfers`]), oldest first.
    pub transfers: Vec<EdgeTransfer>,
    /// On a drawn path from the seed to a sanctioned address.
    pub on_sanctioned_path: bool,
}

impl ExploreEdge {
    /// Tainted share in basis points (0..=10,000), in integers.
    pub fn taint_bps(&self) -> u32 {
        if self.amount.is_zero() {
            return 0;
        }
        let bps = self
            .tainted
            .raw()
            .saturating_mul(alloy_primitives::U256::from(10_000u32))
            / self.amount.raw();
        u32::try_from(bps).unwrap_or(10_000).min(10_000)
    }
}

fn ser_display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// A sanctioned address the trace from the seed reaches, with the addresses on its evidence
/// path (expanding them draws the path).
#[derive(Clone, Debug, Serialize)]
pub struct SanctionedReach {
    /// The sanctioned address.
    pub address: Address,
    /// Its labels.
    pub labels: Vec<String>,
    /// The senders along the evidence path, seed first.
    pub via: Vec<Address>,
    /// Tainted amount of the path's last hop, raw units.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Tainted amount of the last hop.
    pub amount: Amount,
}

/// The drawn graph.
#[derive(Clone, Debug, Serialize)]
pub struct ExploreGraph {
    /// The seed.
    pub seed: Address,
    /// Nodes (the seed first).
    pub nodes: Vec<ExploreNode>,
    /// Edges.
    pub edges: Vec<ExploreEdge>,
    /// Sanctioned addresses the forward trace reaches (drawn or not).
    pub sanctioned: Vec<SanctionedReach>,
    /// The forward trace hit a limit (`max_nodes` or `time_budget`): taint shares are lower
    /// bounds.
    pub trace_truncated_by: Option<&'static str>,
    /// Taint model.
    pub model: Model,
    /// Trace hops.
    pub hops: u32,
}

/// Per (counterparty, chain, asset): the summed edge being built.
type Agg = BTreeMap<(Address, ChainId, Asset), ExploreEdge>;

/// Builds the explorer's graph: one forward trace from the seed (for the taint of every
/// transfer), then the transfers of each expanded address from the store.
pub fn explore<L: LabelSource>(
    store: &Store,
    labels: &L,
    p: &ExploreParams,
) -> Result<ExploreGraph, ExploreError> {
    let seed = p.seed;
    let tp = TraceParams {
        model: p.model,
        max_hops: p.hops,
        max_nodes: p.max_nodes,
        chain: p.chain,
        ..TraceParams::default()
    };
    let r = trace_forward_within(store, labels, &Seed::Outflows(seed), &tp, p.trace_budget)
        .map_err(|source| ExploreError::Trace {
            seed,
            source: Box::new(source),
        })?;
    let tainted: HashMap<TransferKey, Amount> = r
        .seed
        .transfers
        .iter()
        .chain(r.edges.iter())
        .map(|e| (e.key, e.tainted))
        .collect();

    let mut out_set = p.expand_out.clone();
    out_set.insert(seed);
    let mut in_set = p.expand_in.clone();
    in_set.insert(seed);

    // Node order: seed, then as discovered (expanded addresses in their order, then their
    // counterparties).
    let mut order: Vec<Address> = vec![seed];
    let mut index: HashMap<Address, usize> = HashMap::from([(seed, 0)]);
    let mut add = |a: Address, order: &mut Vec<Address>| -> usize {
        *index.entry(a).or_insert_with(|| {
            order.push(a);
            order.len() - 1
        })
    };
    for a in out_set.iter().chain(in_set.iter()) {
        add(*a, &mut order);
    }
    let mut partial: BTreeSet<Address> = BTreeSet::new();
    // (address, outgoing) → counterparties not drawn.
    let mut omitted: HashMap<(Address, bool), usize> = HashMap::new();
    // (from, to, chain, asset) → edge (from/to filled in after indexing).
    let mut edges: BTreeMap<(Address, Address, ChainId, Asset), ExploreEdge> = BTreeMap::new();
    for (set, dir) in [
        (&out_set, Direction::Outgoing),
        (&in_set, Direction::Incoming),
    ] {
        for a in set {
            let mut agg: Agg = BTreeMap::new();
            for (n, t) in store.address_transfers(a, dir, p.chain).enumerate() {
                if n >= p.max_reads {
                    partial.insert(*a);
                    break;
                }
                let t = t.map_err(|source| ExploreError::Store {
                    address: *a,
                    source: Box::new(source),
                })?;
                let other = match dir {
                    Direction::Outgoing => t.to,
                    Direction::Incoming => t.from,
                };
                if other == *a {
                    continue;
                }
                let taint = tainted.get(&t.key).copied().unwrap_or_default();
                let e = agg
                    .entry((other, t.key.chain, t.asset))
                    .or_insert_with(|| ExploreEdge {
                        from: 0,
                        to: 0,
                        chain: t.key.chain,
                        asset: t.asset,
                        amount: Amount::ZERO,
                        tainted: Amount::ZERO,
                        count: 0,
                        transfers: Vec::new(),
                        on_sanctioned_path: false,
                    });
                let overflow = |reason: String| ExploreError::Amount {
                    from: t.from,
                    to: t.to,
                    reason,
                };
                e.amount = e
                    .amount
                    .checked_add(t.amount)
                    .map_err(|x| overflow(x.to_string()))?;
                e.tainted = e
                    .tainted
                    .checked_add(taint)
                    .map_err(|x| overflow(x.to_string()))?;
                e.count += 1;
                if e.transfers.len() < p.max_edge_transfers {
                    e.transfers.push(EdgeTransfer {
                        tx_hash: t.tx_hash,
                        block: t.key.block.0,
                        time: t.time,
                        amount: t.amount,
                        tainted: taint,
                    });
                }
            }
            // The largest taint, then the most transfers, then address order.
            let mut ranked: Vec<_> = agg.into_iter().collect();
            ranked.sort_by(|(ka, a), (kb, b)| {
                b.tainted
                    .cmp(&a.tainted)
                    .then(b.count.cmp(&a.count))
                    .then(ka.cmp(kb))
            });
            let mut kept_parties: BTreeSet<Address> = BTreeSet::new();
            let mut dropped_parties: BTreeSet<Address> = BTreeSet::new();
            for ((other, chain, asset), e) in ranked {
                if kept_parties.len() >= p.max_neighbours && !kept_parties.contains(&other) {
                    dropped_parties.insert(other);
                    continue;
                }
                kept_parties.insert(other);
                let (from, to) = match dir {
                    Direction::Outgoing => (*a, other),
                    Direction::Incoming => (other, *a),
                };
                // Drawn once when both ends are expanded towards each other.
                edges.entry((from, to, chain, asset)).or_insert(e);
            }
            if !dropped_parties.is_empty() {
                omitted.insert((*a, dir == Direction::Outgoing), dropped_parties.len());
            }
        }
    }
    for (from, to, _, _) in edges.keys() {
        add(*from, &mut order);
        add(*to, &mut order);
    }
    let mut edges: Vec<ExploreEdge> = edges
        .into_iter()
        .map(|((f, t, _, _), mut e)| {
            e.from = index.get(&f).copied().unwrap_or(0);
            e.to = index.get(&t).copied().unwrap_or(0);
            e
        })
        .collect();

    let mut nodes: Vec<ExploreNode> = order
        .iter()
        .map(|a| {
            let category = labels.category(a);
            let class = if *a == seed {
                NodeClass::Seed
            } else {
                NodeClass::of(category.as_ref())
            };
            ExploreNode {
                address: *a,
                labels: labels.labels(a),
                category: category.map(|c| c.as_str().to_owned()),
                class,
                expanded_out: out_set.contains(a),
                expanded_in: in_set.contains(a),
                omitted_out: omitted.get(&(*a, true)).copied().unwrap_or(0),
                omitted_in: omitted.get(&(*a, false)).copied().unwrap_or(0),
                partial: partial.contains(a),
                on_sanctioned_path: false,
                layer: 0,
                row: 0,
            }
        })
        .collect();
    // A label that could not be read must not pass as "unlabelled".
    if let Some(e) = labels.take_failure() {
        return Err(ExploreError::Labels(e));
    }
    mark_sanctioned_paths(&mut nodes, &mut edges);
    layout(&mut nodes, &edges);

    let sanctioned = r
        .paths
        .iter()
        .filter(|x| x.category.as_ref().map(Category::as_str) == Some("sanctioned"))
        .map(|x| {
            let mut via: Vec<Address> = Vec::new();
            for h in &x.hops {
                if !via.contains(&h.from) {
                    via.push(h.from);
                }
            }
            SanctionedReach {
                address: x.to,
                labels: labels.labels(&x.to),
                via,
                asset: x.asset,
                amount: x.amount,
            }
        })
        .collect();
    if let Some(e) = labels.take_failure() {
        return Err(ExploreError::Labels(e));
    }
    Ok(ExploreGraph {
        seed,
        nodes,
        edges,
        sanctioned,
        trace_truncated_by: r.truncated_by.map(|t| t.as_str()),
        model: p.model,
        hops: p.hops,
    })
}

/// Marks the nodes and edges on shortest drawn paths (following the edges' direction) from the
/// seed (node 0) to every sanctioned node.
fn mark_sanctioned_paths(nodes: &mut [ExploreNode], edges: &mut [ExploreEdge]) {
    let n = nodes.len();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, e) in edges.iter().enumerate() {
        out[e.from].push(i);
    }
    // BFS from the seed; parent edge of each reached node.
    let mut parent: Vec<Option<usize>> = vec![None; n];
    let mut seen = vec![false; n];
    let mut q = VecDeque::from([0usize]);
    if n > 0 {
        seen[0] = true;
    }
    while let Some(i) = q.pop_front() {
        for &ei in &out[i] {
            let j = edges[ei].to;
            if !seen[j] {
                seen[j] = true;
                parent[j] = Some(ei);
                q.push_back(j);
            }
        }
    }
    for t in 0..n {
        if nodes[t].class != NodeClass::Sanctioned || !seen[t] {
            continue;
        }
        nodes[t].on_sanctioned_path = true;
        let mut cur = t;
        while let Some(ei) = parent[cur] {
            edges[ei].on_sanctioned_path = true;
            cur = edges[ei].from;
            nodes[cur].on_sanctioned_path = true;
        }
    }
}

/// Seed-centred layers: receivers reached from the seed along the edges to the right (by
/// hops), senders reaching it to the left, anything else next to its first drawn neighbour;
/// rows ordered by a few barycenter sweeps (integers only).
fn layout(nodes: &mut [ExploreNode], edges: &[ExploreEdge]) {
    let n = nodes.len();
    if n == 0 {
        return;
    }
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut inc: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in edges {
        out[e.from].push(e.to);
        inc[e.to].push(e.from);
    }
    let mut layer: Vec<Option<i32>> = vec![None; n];
    layer[0] = Some(0);
    let mut q = VecDeque::from([0usize]);
    while let Some(i) = q.pop_front() {
        let l = layer[i].unwrap_or(0);
        for &j in &out[i] {
            if layer[j].is_none() {
                layer[j] = Some(l + 1);
                q.push_back(j);
            }
        }
    }
    let mut q = VecDeque::from([0usize]);
    while let Some(i) = q.pop_front() {
        let l = layer[i].unwrap_or(0);
        for &j in &inc[i] {
            if layer[j].is_none() {
                layer[j] = Some(l - 1);
                q.push_back(j);
            }
        }
    }
    // Anything else (reached through a mix of directions): next to a placed neighbour.
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if layer[i].is_some() {
                continue;
            }
            if let Some(l) = inc[i].iter().find_map(|&j| layer[j]) {
                layer[i] = Some(l + 1);
                changed = true;
            } else if let Some(l) = out[i].iter().find_map(|&j| layer[j]) {
                layer[i] = Some(l - 1);
                changed = true;
            }
        }
    }
    let layer: Vec<i32> = layer.into_iter().map(|l| l.unwrap_or(1)).collect();
    let mut cols: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
    for (i, l) in layer.iter().enumerate() {
        cols.entry(*l).or_default().push(i);
    }
    let mut pos = vec![0usize; n];
    let set_pos = |cols: &BTreeMap<i32, Vec<usize>>, pos: &mut Vec<usize>| {
        for c in cols.values() {
            for (k, &i) in c.iter().enumerate() {
                pos[i] = k;
            }
        }
    };
    set_pos(&cols, &mut pos);
    let keys: Vec<i32> = cols.keys().copied().collect();
    for sweep in 0..4 {
        let forward = sweep % 2 == 0;
        let seq: Vec<i32> = if forward {
            keys.clone()
        } else {
            keys.iter().rev().copied().collect()
        };
        for l in seq {
            let Some(col) = cols.get(&l) else { continue };
            let mut keyed: Vec<(usize, usize, usize)> = col
                .iter()
                .map(|&i| {
                    let nb: Vec<usize> = inc[i]
                        .iter()
                        .chain(out[i].iter())
                        .copied()
                        .filter(|&j| layer[j] != l)
                        .collect();
                    let bary = if nb.is_empty() {
                        pos[i] * 1000
                    } else {
                        nb.iter().map(|&j| pos[j] * 1000).sum::<usize>() / nb.len()
                    };
                    (bary, pos[i], i)
                })
                .collect();
            keyed.sort_unstable();
            cols.insert(l, keyed.into_iter().map(|(_, _, i)| i).collect());
            set_pos(&cols, &mut pos);
        }
    }
    for (l, c) in &cols {
        for (k, &i) in c.iter().enumerate() {
            nodes[i].layer = *l;
            nodes[i].row = k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(class: NodeClass) -> ExploreNode {
        ExploreNode {
            address: Address::Evm([0; 20]),
            labels: Vec::new(),
            category: None,
            class,
            expanded_out: false,
            expanded_in: false,
            omitted_out: 0,
            omitted_in: 0,
            partial: false,
            on_sanctioned_path: false,
            layer: 0,
            row: 0,
        }
    }

    fn edge(from: usize, to: usize, amount: u64, tainted: u64) -> ExploreEdge {
        ExploreEdge {
            from,
            to,
            chain: ChainId(1),
            asset: Asset::Native,
            amount: Amount::from_u64(amount),
            tainted: Amount::from_u64(tainted),
            count: 1,
            transfers: Vec::new(),
            on_sanctioned_path: false,
        }
    }

    #[test]
    fn sanctioned_path_is_marked_from_the_seed_and_layers_follow_the_flow() {
        // 3 -> seed(0) -> 1 -> 2 (sanctioned); 1 -> 4 (wallet).
        let mut nodes = vec![
            node(NodeClass::Seed),
            node(NodeClass::Wallet),
            node(NodeClass::Sanctioned),
            node(NodeClass::Provider),
            node(NodeClass::Wallet),
        ];
        let mut edges = vec![
            edge(0, 1, 100, 100),
            edge(1, 2, 40, 10),
            edge(3, 0, 100, 0),
            edge(1, 4, 60, 15),
        ];
        mark_sanctioned_paths(&mut nodes, &mut edges);
        layout(&mut nodes, &edges);
        let on: Vec<bool> = edges.iter().map(|e| e.on_sanctioned_path).collect();
        assert_eq!(on, [true, true, false, false]);
        let on: Vec<bool> = nodes.iter().map(|n| n.on_sanctioned_path).collect();
        assert_eq!(on, [true, true, true, false, false]);
        let layers: Vec<i32> = nodes.iter().map(|n| n.layer).collect();
        assert_eq!(layers, [0, 1, 2, -1, 2]);
        assert_eq!(edges[1].taint_bps(), 2_500);
        assert_eq!(edge(0, 1, 0, 0).taint_bps(), 0);
    }

    #[test]
    fn no_path_without_a_reachable_sanctioned_node() {
        // The sanctioned node only sends to the seed: no path from the seed.
        let mut nodes = vec![node(NodeClass::Seed), node(NodeClass::Sanctioned)];
        let mut edges = vec![edge(1, 0, 5, 0)];
        mark_sanctioned_paths(&mut nodes, &mut edges);
        assert!(!edges[0].on_sanctioned_path);
        assert!(!nodes[1].on_sanctioned_path);
    }
}
