//! Backward tracing (source of funds): the mirror of the forward models.
//!
//! A demand is "this much of transfer k must be explained". Demands are processed in descending
//! [`TransferKey`] order, so every demand on a transfer is complete before it is explained: the
//! sender's history before the transfer is replayed with provenance (each incoming transfer is
//! its own colour), the transfer's composition is computed under the model, and the demand is
//! split over the incoming transfers that made it up, each becoming a demand on its sender.

use crate::{
    Model,
    error::TraceError,
    forward::{add_to, edge},
    merge::merge_dedup,
    model::{mul_div_floor, mul_div_rem},
    result::{
        CoinJoinEvidence, Destination, EvidencePath, FlowEdge, Parameters, PathHop, SeedInfo,
        Status, TraceParams, TraceResult, TraceStats, Truncation, sort_destinations,
    },
    source::{Category, FlowSource, LabelSource},
};
use paytrace_indexer::{Address, Amount, Asset, Direction, Transfer, TransferKey};
use std::{
    cmp::Reverse,
    collections::{BTreeMap, HashMap, VecDeque},
    rc::Rc,
    time::{Duration, Instant},
};

/// What a backward trace explains.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BackSeed {
    /// The sources of this transfer's value.
    Transfer(TransferKey),
    /// The sources of these transfers' value together (the inputs of a Bitcoin transaction).
    Transfers(Vec<TransferKey>),
    /// The sources of this address's balance at the end of the window (every asset).
    Address(Address),
}

/// The provenance state of one (address, asset): which incoming transfer (by index into the
/// address's history) the value came from.
enum Prov {
    Haircut {
        balance: Amount,
        parts: Vec<(usize, Amount)>,
    },
    Lots {
        segs: VecDeque<(Option<usize>, Amount)>,
        lifo: bool,
    },
    Poison {
        ins: Vec<usize>,
    },
}

/// A composition: (history index, amount) parts and whether the balance was short.
struct Composition {
    parts: Vec<(usize, Amount)>,
    clamped: bool,
}

impl Prov {
    fn new(model: Model) -> Self {
        match model {
            // TIHO is a forward rule of transaction nodes; backward it apportions like haircut.
            Model::Haircut | Model::Tiho => Self::Haircut {
                balance: Amount::ZERO,
                parts: Vec::new(),
            },
            Model::Fifo | Model::Lifo => Self::Lots {
                segs: VecDeque::new(),
                lifo: model == Model::Lifo,
            },
            Model::Poison => Self::Poison { ins: Vec::new() },
        }
    }

    fn credit(&mut self, i: usize, amount: Amount) -> Result<(), TraceError> {
        match self {
            Self::Haircut { balance, parts } => {
                *balance = balance.checked_add(amount)?;
                if !amount.is_zero() {
                    parts.push((i, amount));
                }
            }
            Self::Lots { segs, .. } => {
                if !amount.is_zero() {
                    segs.push_back((Some(i), amount));
                }
            }
            Self::Poison { ins } => ins.push(i),
        }
        Ok(())
    }

    fn debit(&mut self, amount: Amount) -> Result<Composition, TraceError> {
        match self {
            Self::Haircut { balance, parts } => {
                if amount >= *balance {
                    let clamped = amount > *balance;
                    *balance = Amount::ZERO;
                    return Ok(Composition {
                        parts: std::mem::take(parts),
                        clamped,
                    });
                }
                // Each colour gets floor(a * r / B); the units lost to rounding go one each to
                // the largest remainders (ties: oldest), so the composition adds up to `a`.
                let mut shares = Vec::with_capacity(parts.len());
                let mut given = Amount::ZERO;
                for (j, (_, r)) in parts.iter().enumerate() {
                    let (q, rem) = mul_div_rem(amount, *r, *balance)?;
                    given = given.checked_add(q)?;
                    shares.push((q, rem, j));
                }
                let mut left = amount.checked_sub(given)?;
                let mut order: Vec<usize> = (0..shares.len()).collect();
                order.sort_by(|&x, &y| shares[y].1.cmp(&shares[x].1).then(x.cmp(&y)));
                for j in order {
                    if left.is_zero() {
                        break;
                    }
                    if shares[j].1.is_zero() {
                        break;
                    }
                    shares[j].0 = shares[j].0.checked_add(Amount::from_u64(1))?;
                    left = left.checked_sub(Amount::from_u64(1))?;
                }
                let mut out = Vec::new();
                for (q, _, j) in shares {
                    if !q.is_zero() {
                        let (i, r) = &mut parts[j];
                        *r = r.checked_sub(q)?;
                        out.push((*i, q));
                    }
                }
                parts.retain(|(_, r)| !r.is_zero());
                *balance = balance.checked_sub(amount)?;
                Ok(Composition {
                    parts: out,
                    clamped: false,
                })
            }
            Self::Lots { segs, lifo } => {
                let mut need = amount;
                let mut out = Vec::new();
                while !need.is_zero() {
                    let next = if *lifo {
                        segs.pop_back()
                    } else {
                        segs.pop_front()
                    };
                    let Some((i, mut a)) = next else { break };
                    if a > need {
                        let rest = (i, a.checked_sub(need)?);
                        if *lifo {
                            segs.push_back(rest);
                        } else {
                            segs.push_front(rest);
                        }
                        a = need;
                    }
                    need = need.checked_sub(a)?;
                    if let Some(i) = i {
                        out.push((i, a));
                    }
                }
                Ok(Composition {
                    parts: out,
                    clamped: !need.is_zero(),
                })
            }
            Self::Poison { ins } => Ok(Composition {
                parts: ins.iter().map(|&i| (i, Amount::ZERO)).collect(),
                clamped: false,
            }),
        }
    }

    /// The composition of what is still held.
    fn held(&self) -> Vec<(usize, Amount)> {
        match self {
            Self::Haircut { parts, .. } => parts.clone(),
            Self::Lots { segs, .. } => segs
                .iter()
                .filter_map(|(i, a)| i.map(|i| (i, *a)))
                .collect(),
            Self::Poison { ins } => ins.iter().map(|&i| (i, Amount::ZERO)).collect(),
        }
    }
}

#[derive(Default)]
struct BNode {
    category: Option<Category>,
    /// A transaction node with a CoinJoin shape (category `mixer`).
    coinjoin: Option<CoinJoinEvidence>,
    status: Option<Status>,
    per_asset: BTreeMap<Asset, (Amount, u32, Option<Transfer>)>,
    incomplete: bool,
}

struct Demand {
    amount: Amount,
    hops: u32,
}

/// Runs a backward (source of funds) trace (no time budget; `p.max_nodes` still bounds it).
pub fn trace_backward<S: FlowSource, L: LabelSource>(
    source: &S,
    labels: &L,
    seed: &BackSeed,
    p: &TraceParams,
) -> Result<TraceResult, TraceError> {
    trace_backward_within(source, labels, seed, p, None)
}

/// Runs a backward trace that stops loading new addresses once `budget` (counted from this
/// call) has run out: demands on addresses not loaded by then are reported with status
/// `time_budget` (totals category `time_budget`) and the result is marked `truncated`.
pub fn trace_backward_within<S: FlowSource, L: LabelSource>(
    source: &S,
    labels: &L,
    seed: &BackSeed,
    p: &TraceParams,
    budget: Option<Duration>,
) -> Result<TraceResult, TraceError> {
    let r = backward_within(source, labels, seed, p, budget);
    // A label that could not be read makes the trace's stops unknown: fail, never "unlabelled".
    match labels.take_failure() {
        Some(e) => Err(TraceError::Labels(e)),
        None => r,
    }
}

fn backward_within<S: FlowSource, L: LabelSource>(
    source: &S,
    labels: &L,
    seed: &BackSeed,
    p: &TraceParams,
    budget: Option<Duration>,
) -> Result<TraceResult, TraceError> {
    let mut b = Back {
        deadline: budget.map(|d| Instant::now() + d),
        truncated: None,
        src: source,
        labels,
        p,
        hist: HashMap::new(),
        nodes: HashMap::new(),
        demands: BTreeMap::new(),
        edges: Vec::new(),
        totals: BTreeMap::new(),
        stats: TraceStats::default(),
        incomplete: false,
    };
    let seed_info = match seed {
        BackSeed::Transfer(k) => b.seed_transfers(std::slice::from_ref(k))?,
        BackSeed::Transfers(keys) => b.seed_transfers(keys)?,
        BackSeed::Address(a) => b.seed_address(a)?,
    };
    while let Some((_, (t, d))) = b.demands.pop_last() {
        b.stats.events += 1;
        b.explain(&t, d)?;
    }
    b.finish(seed_info)
}

struct Back<'a, S, L> {
    /// When the time budget runs out.
    deadline: Option<Instant>,
    /// The first limit that stopped a load.
    truncated: Option<Truncation>,
    src: &'a S,
    labels: &'a L,
    p: &'a TraceParams,
    /// Loaded histories and the key they were loaded before (`None`: all of it).
    hist: HashMap<Address, (Rc<Vec<Transfer>>, Option<TransferKey>)>,
    nodes: HashMap<Address, BNode>,
    demands: BTreeMap<TransferKey, (Transfer, Demand)>,
    edges: Vec<FlowEdge>,
    totals: BTreeMap<String, BTreeMap<String, Amount>>,
    stats: TraceStats,
    incomplete: bool,
}

impl<S: FlowSource, L: LabelSource> Back<'_, S, L> {
    /// Demands for the whole of each seed transfer (`transfer` for one, `transaction` for
    /// several, e.g. the inputs of a Bitcoin transaction).
    fn seed_transfers(&mut self, keys: &[TransferKey]) -> Result<SeedInfo, TraceError> {
        let mut transfers = Vec::with_capacity(keys.len());
        let mut total = BTreeMap::new();
        let mut address = None;
        for k in keys {
            let t = self
                .src
                .transfer(k)
                .map_err(TraceError::source)?
                .ok_or(TraceError::SeedNotFound(*k))?;
            if self.demands.contains_key(&t.key) {
                continue;
            }
            address.get_or_insert(if keys.len() == 1 { t.from } else { t.to });
            let e: &mut Amount = total.entry(t.asset.to_string()).or_default();
            *e = e.checked_add(t.amount)?;
            self.edges.push(edge(&t, t.amount));
            transfers.push(edge(&t, t.amount));
            let amount = t.amount;
            self.demands.insert(t.key, (t, Demand { amount, hops: 0 }));
        }
        if transfers.is_empty() {
            return Err(TraceError::EmptySeed(format!("{keys:?}")));
        }
        Ok(SeedInfo {
            kind: if keys.len() == 1 {
                "transfer"
            } else {
                "transaction"
            },
            address,
            transfers,
            total,
        })
    }

    /// `a`'s history before `before` (all of it when `None`). Demands are explained in
    /// descending key order and only look at transfers before their own, so the first load of
    /// an address (at its latest demand) holds everything later demands on it need; it is
    /// read again only if a later call needs more.
    fn history(
        &mut self,
        a: &Address,
        before: Option<TransferKey>,
    ) -> Result<Rc<Vec<Transfer>>, TraceError> {
        let first = match self.hist.get(a) {
            Some((h, loaded)) => {
                let covers = match (loaded, before) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(l), Some(b)) => b <= *l,
                };
                if covers {
                    return Ok(h.clone());
                }
                false
            }
            None => true,
        };
        let inc = self
            .src
            .address_transfers_range(a, Direction::Incoming, self.p.chain, None, before.as_ref())
            .map_err(TraceError::source)?;
        let out = self
            .src
            .address_transfers_range(a, Direction::Outgoing, self.p.chain, None, before.as_ref())
            .map_err(TraceError::source)?;
        self.stats.transfers_read += inc.len() + out.len();
        if first {
            self.stats.expanded_addresses += 1;
        }
        // Both lists come in key order: one linear merge (self-transfers appear in both and are
        // kept once), as in the forward engine.
        let h: Vec<Transfer> = merge_dedup(inc, out, |t: &Transfer| t.key)
            .filter(|t| self.p.until.is_none_or(|u| t.time <= u))
            .collect();
        let h = Rc::new(h);
        self.hist.insert(*a, (h.clone(), before));
        Ok(h)
    }

    /// Replays `a`'s history in `asset` before `before` (all of it when `None`).
    fn replay(
        &self,
        a: &Address,
        h: &[Transfer],
        asset: Asset,
        before: Option<TransferKey>,
    ) -> Result<(Prov, bool), TraceError> {
        let mut prov = Prov::new(self.p.model);
        let mut clamped = false;
        for (i, t) in h.iter().enumerate() {
            if before.is_some_and(|b| t.key >= b) {
                break;
            }
            if t.asset != asset {
                continue;
            }
            if t.from == *a {
                clamped |= prov.debit(t.amount)?.clamped;
            }
            if t.to == *a {
                prov.credit(i, t.amount)?;
            }
        }
        Ok((prov, clamped))
    }

    fn touch(&mut self, a: Address, asset: Asset, amount: Amount, hops: u32, via: &Transfer) {
        let labels = self.labels;
        let n = self.nodes.entry(a).or_insert_with(|| BNode {
            category: labels.category(&a),
            ..BNode::default()
        });
        let e = n
            .per_asset
            .entry(asset)
            .or_insert((Amount::ZERO, hops, None));
        e.0 = e.0.checked_add(amount).unwrap_or(e.0);
        e.1 = e.1.min(hops);
        if e.2.as_ref().is_none_or(|t| via.key < t.key) {
            e.2 = Some(via.clone());
        }
    }

    fn seed_address(&mut self, a: &Address) -> Result<SeedInfo, TraceError> {
        let h = self.history(a, None)?;
        let assets: std::collections::BTreeSet<Asset> = h.iter().map(|t| t.asset).collect();
        let mut total = BTreeMap::new();
        for asset in assets {
            let (prov, clamped) = self.replay(a, &h, asset, None)?;
            let mut sum = Amount::ZERO;
            for (i, part) in prov.held() {
                let t = &h[i];
                let c = if self.p.model == Model::Poison {
                    t.amount
                } else {
                    part
                };
                sum = sum.checked_add(c)?;
                self.add_demand(t, c, 1);
            }
            if clamped {
                self.incomplete = true;
            }
            total.insert(asset.to_string(), sum);
        }
        self.nodes.entry(*a).or_default().status = Some(Status::Payee);
        Ok(SeedInfo {
            kind: "address",
            address: Some(*a),
            transfers: Vec::new(),
            total,
        })
    }

    fn add_demand(&mut self, t: &Transfer, amount: Amount, hops: u32) {
        if amount.is_zero() {
            return;
        }
        self.edges.push(edge(t, amount));
        let e = self.demands.entry(t.key).or_insert_with(|| {
            (
                t.clone(),
                Demand {
                    amount: Amount::ZERO,
                    hops,
                },
            )
        });
        e.1.amount = e.1.amount.checked_add(amount).unwrap_or(e.1.amount);
        e.1.hops = e.1.hops.min(hops);
    }

    fn stop(
        &mut self,
        x: Address,
        st: Status,
        cat: &str,
        asset: &Asset,
        d: Amount,
    ) -> Result<(), TraceError> {
        let n = self.nodes.entry(x).or_default();
        if n.status.is_none() {
            n.status = Some(st);
        }
        add_to(&mut self.totals, cat, asset, d)
    }

    /// Explains demand `d` on transfer `t` at its sender.
    fn explain(&mut self, t: &Transfer, d: Demand) -> Result<(), TraceError> {
        let x = t.from;
        let first_visit = !self.nodes.contains_key(&x);
        self.touch(x, t.asset, d.amount, d.hops, t);
        // Value that came out of a CoinJoin has a mixer as its source (not followed further
        // when `mixer` stops the trace, as by default).
        if first_visit
            && x.is_tx()
            && self.nodes.get(&x).is_some_and(|n| n.category.is_none())
            && let Some(ev) =
                CoinJoinEvidence::detect(self.src, &x, t.key.chain, &mut self.stats.transfers_read)?
        {
            let n = self.nodes.entry(x).or_default();
            n.category = Some(Category::new(CoinJoinEvidence::CATEGORY));
            n.coinjoin = Some(ev);
        }
        let cat = self.nodes.get(&x).and_then(|n| n.category.clone());
        if let Some(c) = cat.filter(|c| self.p.stop.contains(c)) {
            return self.stop(x, Status::Exited, c.as_str(), &t.asset, d.amount);
        }
        if d.hops >= self.p.max_hops {
            return self.stop(
                x,
                Status::AtDepthLimit,
                "at_depth_limit",
                &t.asset,
                d.amount,
            );
        }
        if self.p.since.is_some_and(|s| t.time < s) {
            return self.stop(x, Status::AtDepthLimit, "before_window", &t.asset, d.amount);
        }
        if !self.hist.contains_key(&x) && self.stats.expanded_addresses >= self.p.max_nodes {
            self.truncated.get_or_insert(Truncation::MaxNodes);
            return self.stop(x, Status::NodeLimit, "node_limit", &t.asset, d.amount);
        }
        if !self.hist.contains_key(&x) && self.deadline.is_some_and(|dl| Instant::now() >= dl) {
            self.truncated.get_or_insert(Truncation::TimeBudget);
            return self.stop(x, Status::TimeBudget, "time_budget", &t.asset, d.amount);
        }
        let h = self.history(&x, Some(t.key))?;
        let (mut prov, mut clamped) = self.replay(&x, &h, t.asset, Some(t.key))?;
        let comp = prov.debit(t.amount)?;
        clamped |= comp.clamped;
        let has_incoming = h
            .iter()
            .any(|e| e.to == x && e.asset == t.asset && e.key < t.key);
        let mut explained = Amount::ZERO;
        for (i, part) in comp.parts {
            let src = &h[i];
            let c = if self.p.model == Model::Poison {
                src.amount
            } else if d.amount == t.amount {
                part
            } else {
                mul_div_floor(d.amount, part, t.amount)?
            };
            if c.is_zero() {
                continue;
            }
            if self.p.model != Model::Poison && c < self.p.min_amount {
                add_to(&mut self.totals, "below_min_amount", &t.asset, c)?;
                explained = explained.checked_add(c)?;
                continue;
            }
            explained = explained.checked_add(c)?;
            self.add_demand(src, c, d.hops.saturating_add(1));
        }
        let n = self.nodes.entry(x).or_default();
        if n.status.is_none() {
            n.status = Some(Status::Followed);
        }
        if self.p.model == Model::Poison {
            if !has_incoming {
                n.status = Some(Status::Payee);
                add_to(&mut self.totals, "origin", &t.asset, d.amount)?;
            }
            return Ok(());
        }
        let rest = d.amount.saturating_sub(explained);
        if !has_incoming {
            // Nothing ever came in: the value originates here (mint, coinbase, genesis).
            n.status = Some(Status::Payee);
            add_to(&mut self.totals, "origin", &t.asset, rest)
        } else if clamped {
            n.incomplete = true;
            self.incomplete = true;
            add_to(&mut self.totals, "before_index", &t.asset, rest)
        } else {
            add_to(&mut self.totals, "unattributed", &t.asset, rest)
        }
    }

    fn finish(self, seed: SeedInfo) -> Result<TraceResult, TraceError> {
        let mut destinations = Vec::new();
        for (a, n) in &self.nodes {
            let status = n.status.unwrap_or(Status::Followed);
            for (asset, (amount, hops, first)) in &n.per_asset {
                let Some(first) = first else { continue };
                destinations.push(Destination {
                    address: *a,
                    labels: self.labels.labels(a),
                    category: n.category.clone(),
                    status,
                    asset: *asset,
                    amount: *amount,
                    held: Amount::ZERO,
                    hops: *hops,
                    first_arrival: first.time,
                    first_arrival_tx: first.tx_hash,
                    incomplete_history: n.incomplete,
                    coinjoin: n.coinjoin.clone(),
                });
            }
        }
        sort_destinations(&mut destinations);
        let mut edges = self.edges;
        edges.sort_by_key(|e| Reverse(e.key));
        let paths = evidence_back(&destinations, &edges, self.p.max_paths);
        Ok(TraceResult {
            model: self.p.model,
            truncated: self.truncated.is_some(),
            truncated_by: self.truncated,
            seed,
            parameters: Parameters::record("backward", self.p, self.src, self.labels)?,
            incomplete_history: self.incomplete,
            destinations,
            totals_by_category: self.totals,
            paths,
            edges,
            stats: self.stats,
        })
    }
}

/// Evidence for a backward trace: from each labelled source, the transfers that carried the
/// largest attributed amounts towards the target (source first).
fn evidence_back(dests: &[Destination], edges: &[FlowEdge], max: usize) -> Vec<EvidencePath> {
    let mut cands: Vec<&Destination> = dests
        .iter()
        .filter(|d| matches!(d.status, Status::Exited | Status::AtDepthLimit))
        .collect();
    cands.sort_by_key(|d| (d.status != Status::Exited, Reverse(d.amount)));
    let mut out = Vec::new();
    for d in cands.into_iter().take(max) {
        let mut hops = Vec::new();
        let mut at = d.address;
        let mut after: Option<TransferKey> = None;
        for _ in 0..=edges.len() {
            let best = edges
                .iter()
                .filter(|e| e.from == at && e.asset == d.asset)
                .filter(|e| after.is_none_or(|a| e.key > a))
                .max_by_key(|e| (e.tainted, Reverse(e.key)));
            let Some(e) = best else { break };
            hops.push(PathHop::from(e));
            at = e.to;
            after = Some(e.key);
        }
        let amount = hops.first().map(|h| h.tainted).unwrap_or_default();
        out.push(EvidencePath::to(d, amount, hops));
    }
    out
}
