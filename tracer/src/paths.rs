//! Time-respecting paths between addresses: the subgraph around the source is loaded into a
//! petgraph graph (bounded by hops, window, minimum amount and node count), then searched.
//!
//! A path is time-respecting when every transfer comes after the previous one in canonical
//! order. All transfers of a path move the same asset. Its value is its bottleneck: the smallest
//! transfer amount on it.

use crate::{
    error::TraceError,
    result::{PathHop, ser_display},
    source::{Category, FlowSource, LabelSource, StopList},
};
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, Direction, Timestamp, Transfer, TransferKey,
};
use petgraph::{
    graph::{DiGraph, EdgeIndex, NodeIndex},
    visit::EdgeRef,
};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

/// What a path query looks for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PathTarget {
    /// This address.
    Address(Address),
    /// Any address labelled with this category.
    Category(Category),
}

/// Bounds of a path query.
#[derive(Clone, Debug)]
pub struct PathParams {
    /// Maximum transfers on a path.
    pub max_hops: u32,
    /// Ignore transfers before this time.
    pub since: Option<Timestamp>,
    /// Ignore transfers after this time.
    pub until: Option<Timestamp>,
    /// Ignore transfers smaller than this.
    pub min_amount: Amount,
    /// Load at most this many addresses' outflows.
    pub max_nodes: usize,
    /// How many most valuable paths.
    pub k: usize,
    /// Only this chain.
    pub chain: Option<ChainId>,
    /// Only this asset.
    pub asset: Option<Asset>,
    /// Categories not expanded (hubs such as exchanges), unless they are the target.
    pub stop: StopList,
    /// Budget of edge visits for the k-best search.
    pub search_budget: usize,
}

impl Default for PathParams {
    fn default() -> Self {
        Self {
            max_hops: 4,
            since: None,
            until: None,
            min_amount: Amount::ZERO,
            max_nodes: 5_000,
            k: 5,
            chain: None,
            asset: None,
            stop: StopList::default(),
            search_budget: 2_000_000,
        }
    }
}

/// One path found.
#[derive(Clone, Debug, Serialize)]
pub struct FoundPath {
    /// Bottleneck amount.
    pub value: Amount,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// The transfers, in order.
    pub hops: Vec<PathHop>,
}

/// Result of a path query.
#[derive(Clone, Debug, Serialize)]
pub struct PathResult {
    /// Source address.
    pub from: Address,
    /// Target (address or `category:NAME`).
    pub to: String,
    /// Fewest hops, then earliest arrival.
    pub shortest: Option<FoundPath>,
    /// The k paths with the largest bottleneck, best first, each through a different sequence
    /// of addresses.
    pub most_valuable: Vec<FoundPath>,
    /// Whether the k-best search finished within its budget.
    pub exhaustive: bool,
    /// Addresses in the loaded subgraph.
    pub subgraph_nodes: usize,
    /// Transfers in the loaded subgraph.
    pub subgraph_edges: usize,
}

struct Sub<'l, L> {
    g: DiGraph<Address, Transfer>,
    ix: HashMap<Address, NodeIndex>,
    labels: &'l L,
    target: PathTarget,
}

impl<L: LabelSource> Sub<'_, L> {
    fn is_target(&self, a: &Address) -> bool {
        match &self.target {
            PathTarget::Address(t) => t == a,
            PathTarget::Category(c) => self.labels.category(a).as_ref() == Some(c),
        }
    }
}

fn hop(t: &Transfer) -> PathHop {
    PathHop::of(t, t.amount)
}

/// Finds the shortest and the k most valuable time-respecting paths from `from` to `target`.
pub fn find_paths<S: FlowSource, L: LabelSource>(
    src: &S,
    labels: &L,
    from: &Address,
    target: &PathTarget,
    p: &PathParams,
) -> Result<PathResult, TraceError> {
    let r = paths_of(src, labels, from, target, p);
    // A label that could not be read makes the stops and targets unknown: fail, never
    // "unlabelled".
    match labels.take_failure() {
        Some(e) => Err(TraceError::Labels(e)),
        None => r,
    }
}

fn paths_of<S: FlowSource, L: LabelSource>(
    src: &S,
    labels: &L,
    from: &Address,
    target: &PathTarget,
    p: &PathParams,
) -> Result<PathResult, TraceError> {
    let sub = load(src, labels, from, target, p)?;
    let Some(&start) = sub.ix.get(from) else {
        return Err(TraceError::EmptySeed(format!("{from} has no outflows")));
    };
    let shortest = shortest(&sub, start, p);
    let (most_valuable, exhaustive) = k_best(&sub, start, p);
    Ok(PathResult {
        from: *from,
        to: match target {
            PathTarget::Address(a) => a.to_string(),
            PathTarget::Category(c) => format!("category:{c}"),
        },
        shortest,
        most_valuable,
        exhaustive,
        subgraph_nodes: sub.g.node_count(),
        subgraph_edges: sub.g.edge_count(),
    })
}

fn load<'l, S: FlowSource, L: LabelSource>(
    src: &S,
    labels: &'l L,
    from: &Address,
    target: &PathTarget,
    p: &PathParams,
) -> Result<Sub<'l, L>, TraceError> {
    let mut sub = Sub {
        g: DiGraph::new(),
        ix: HashMap::new(),
        labels,
        target: target.clone(),
    };
    let mut q: VecDeque<(Address, u32)> = VecDeque::new();
    q.push_back((*from, 0));
    let mut expanded = 0usize;
    let start = sub.g.add_node(*from);
    sub.ix.insert(*from, start);
    let mut seen: HashMap<Address, u32> = HashMap::new();
    seen.insert(*from, 0);
    while let Some((a, h)) = q.pop_front() {
        if h >= p.max_hops || expanded >= p.max_nodes {
            continue;
        }
        if a != *from {
            if sub.is_target(&a) {
                continue;
            }
            if labels.category(&a).is_some_and(|c| p.stop.contains(&c)) {
                continue;
            }
        }
        expanded += 1;
        let out = src
            .address_transfers(&a, Direction::Outgoing, p.chain)
            .map_err(TraceError::source)?;
        let ai = sub.ix[&a];
        for t in out {
            if p.since.is_some_and(|s| t.time < s)
                || p.until.is_some_and(|u| t.time > u)
                || t.amount < p.min_amount
                || p.asset.is_some_and(|x| x != t.asset)
            {
                continue;
            }
            let to = t.to;
            let ti = match sub.ix.get(&to) {
                Some(&i) => i,
                None => {
                    let i = sub.g.add_node(to);
                    sub.ix.insert(to, i);
                    i
                }
            };
            if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(to) {
                e.insert(h + 1);
                q.push_back((to, h + 1));
            }
            sub.g.add_edge(ai, ti, t);
        }
    }
    Ok(sub)
}

fn path_of<L>(sub: &Sub<'_, L>, edges: &[EdgeIndex]) -> FoundPath {
    let hops: Vec<PathHop> = edges.iter().map(|&e| hop(&sub.g[e])).collect();
    let value = hops.iter().map(|h| h.amount).min().unwrap_or_default();
    let asset = edges
        .first()
        .map(|&e| sub.g[e].asset)
        .unwrap_or(Asset::Native);
    FoundPath { value, asset, hops }
}

/// Fewest hops, then earliest arrival: layers of (node -> earliest arrival), a node re-entering
/// a layer only when it arrives earlier than in any previous layer.
fn shortest<L: LabelSource>(
    sub: &Sub<'_, L>,
    start: NodeIndex,
    p: &PathParams,
) -> Option<FoundPath> {
    // (node) -> (arrival key, asset, edge that led here, previous layer entry)
    type Entry = (TransferKey, Asset, EdgeIndex, Option<usize>);
    let mut arena: Vec<(NodeIndex, Entry)> = Vec::new();
    let mut best: HashMap<NodeIndex, TransferKey> = HashMap::new();
    // Layer 1 from the start node.
    type Frontier = Vec<(NodeIndex, Option<(TransferKey, Asset)>, Option<usize>)>;
    let mut frontier: Frontier = vec![(start, None, None)];
    for _ in 0..p.max_hops {
        let mut next: HashMap<NodeIndex, Entry> = HashMap::new();
        for (u, arr, slot) in &frontier {
            for e in sub.g.edges(*u) {
                let t = e.weight();
                if let Some((k, asset)) = arr
                    && (t.key <= *k || t.asset != *asset)
                {
                    continue;
                }
                let v = e.target();
                if best.get(&v).is_some_and(|b| *b <= t.key) {
                    continue;
                }
                let better = next.get(&v).is_none_or(|x| t.key < x.0);
                if better {
                    next.insert(v, (t.key, t.asset, e.id(), *slot));
                }
            }
        }
        if next.is_empty() {
            return None;
        }
        let mut new_frontier = Vec::new();
        let mut hit: Option<usize> = None;
        let mut keyed: Vec<_> = next.into_iter().collect();
        keyed.sort_by_key(|(n, e)| (e.0, *n));
        for (v, entry) in keyed {
            best.insert(v, entry.0);
            let slot = arena.len();
            arena.push((v, entry));
            if hit.is_none() && sub.is_target(&sub.g[v]) {
                hit = Some(slot);
            }
            new_frontier.push((v, Some((entry.0, entry.1)), Some(slot)));
        }
        if let Some(mut s) = hit {
            let mut edges = Vec::new();
            loop {
                let (_, (_, _, e, prev)) = arena[s];
                edges.push(e);
                match prev {
                    Some(pv) => s = pv,
                    None => break,
                }
            }
            edges.reverse();
            return Some(path_of(sub, &edges));
        }
        frontier = new_frontier;
    }
    None
}

/// The k simple time-respecting paths with the largest bottleneck (depth-first, largest edges
/// first, pruned by the current k-th best), distinct in their sequence of addresses: of paths
/// through the same addresses in the same order (other transfers of the same hops) only the
/// most valuable is kept.
fn k_best<L: LabelSource>(
    sub: &Sub<'_, L>,
    start: NodeIndex,
    p: &PathParams,
) -> (Vec<FoundPath>, bool) {
    struct St<'a, 'l, L> {
        sub: &'a Sub<'l, L>,
        p: &'a PathParams,
        best: Vec<(Amount, Vec<EdgeIndex>, Vec<NodeIndex>)>,
        stack: Vec<EdgeIndex>,
        on_path: Vec<NodeIndex>,
        budget: usize,
    }
    impl<L: LabelSource> St<'_, '_, L> {
        fn floor(&self) -> Option<Amount> {
            if self.best.len() >= self.p.k {
                self.best.last().map(|b| b.0)
            } else {
                None
            }
        }
        /// The addresses a path passes through, in order.
        fn addresses(&self, edges: &[EdgeIndex]) -> Vec<NodeIndex> {
            let mut v: Vec<NodeIndex> = edges
                .first()
                .and_then(|e| self.sub.g.edge_endpoints(*e))
                .map(|(a, _)| vec![a])
                .unwrap_or_default();
            v.extend(
                edges
                    .iter()
                    .filter_map(|e| self.sub.g.edge_endpoints(*e).map(|(_, b)| b)),
            );
            v
        }
        /// Keeps the current stack as a result when it is among the k best: one path per
        /// address sequence (the most valuable; on a tie, the one found first).
        fn offer(&mut self, b: Amount) {
            let seq = self.addresses(&self.stack);
            if let Some(i) = self.best.iter().position(|x| x.2 == seq) {
                if b > self.best[i].0 {
                    self.best[i] = (b, self.stack.clone(), seq);
                } else {
                    return;
                }
            } else {
                self.best.push((b, self.stack.clone(), seq));
            }
            self.best.sort_by_key(|x| std::cmp::Reverse(x.0));
            self.best.truncate(self.p.k);
        }
        fn dfs(
            &mut self,
            u: NodeIndex,
            after: Option<(TransferKey, Asset)>,
            bottleneck: Option<Amount>,
        ) {
            if self.stack.len() >= usize::try_from(self.p.max_hops).unwrap_or(usize::MAX) {
                return;
            }
            let mut es: Vec<_> = self
                .sub
                .g
                .edges(u)
                .filter(|e| after.is_none_or(|(k, a)| e.weight().key > k && e.weight().asset == a))
                .map(|e| (e.id(), e.target(), e.weight().amount))
                .collect();
            es.sort_by_key(|e| std::cmp::Reverse(e.2));
            for (id, v, amount) in es {
                if self.budget == 0 {
                    return;
                }
                self.budget -= 1;
                let b = bottleneck.map_or(amount, |x| x.min(amount));
                if self.floor().is_some_and(|f| b <= f) {
                    // Sorted by amount: no later edge does better.
                    break;
                }
                if self.on_path.contains(&v) {
                    continue;
                }
                self.stack.push(id);
                if self.sub.is_target(&self.sub.g[v]) {
                    self.offer(b);
                } else {
                    self.on_path.push(v);
                    let t = &self.sub.g[id];
                    self.dfs(v, Some((t.key, t.asset)), Some(b));
                    self.on_path.pop();
                }
                self.stack.pop();
            }
        }
    }
    let mut st = St {
        sub,
        p,
        best: Vec::new(),
        stack: Vec::new(),
        on_path: vec![start],
        budget: p.search_budget,
    };
    st.dfs(start, None, None);
    let exhaustive = st.budget > 0;
    let paths = st
        .best
        .iter()
        .map(|(_, edges, _)| path_of(sub, edges))
        .collect();
    (paths, exhaustive)
}
