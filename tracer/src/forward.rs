//! The forward taint engine: follows seed value through the store in canonical event order.
//!
//! Only the addresses that receive taint are loaded ("expanded"): their history (in and out,
//! up to `until`) is read through [`FlowSource`], the part before the first tainted arrival
//! (from a balance checkpoint) is replayed to get the balance, and the rest is merged into one
//! global event queue ordered by [`TransferKey`]. Each transfer is processed once, debiting its
//! sender (if followed) and crediting its receiver.
//!
//! After the arrival a history is read in windows of blocks ([`HistoryWindow`]): at the end
//! of a window an address that holds no taint is suspended (reading stops; it only sends clean
//! value) until a tainted arrival resumes it, so a busy address that passed its taint on is not
//! read to the end. See docs/architecture.md, "Balance checkpoints".

use crate::{
    Model,
    error::TraceError,
    merge::merge_dedup,
    model::{Carry, Holding, mul_div_floor},
    result::{
        CoinJoinEvidence, Destination, EvidencePath, FlowEdge, Parameters, PathHop, Seed, SeedInfo,
        Status, TraceParams, TraceResult, TraceStats, Truncation, sort_destinations,
    },
    source::{Category, FlowSource, HistoryWindow, LabelSource, WINDOW_ENTRIES},
};
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Direction, Transfer, TransferKey, TransferKind,
};
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap},
    time::{Duration, Instant},
};

/// The engine's maps hash addresses and transfer keys on every event: foldhash (seeded per
/// process) instead of SipHash, which was a tenth of a wide trace's CPU time.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// How an address takes part in the flow.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Expanded,
    Frontier(Status),
    Stop,
    /// A swap/DEX address: converts tainted value across assets within a transaction.
    Swap,
}

/// A tainted arrival.
#[derive(Clone, Debug)]
pub(crate) struct Credit {
    pub(crate) transfer: Transfer,
    pub(crate) carry: Carry,
    pub(crate) hops: u32,
}

#[derive(Debug)]
struct Node {
    address: Address,
    role: Role,
    category: Option<Category>,
    hops: u32,
    payee: bool,
    holdings: HashMap<Asset, Holding>,
    credits: Vec<Credit>,
    credit_index: HashMap<TransferKey, usize>,
    /// Taint this address sent while it was not followed (found when it was promoted).
    leaked: BTreeMap<(Status, Asset), Amount>,
    incomplete: bool,
    /// TIHO at a transaction node: the outputs (key, asset, amount) from its history.
    outputs: Vec<(TransferKey, Asset, Amount)>,
    /// TIHO at a transaction node: the tainted part decided for each output (per asset, on
    /// the first output of that asset).
    tiho: HashMap<TransferKey, Amount>,
    /// The history (of an expanded node) is read up to this key, exclusive; `None`: all of it.
    read_to: Option<TransferKey>,
    /// Everything held is clean and reading stopped at `read_to`: the node's later events
    /// are ignored until a tainted arrival resumes it; the rest of its history is read at
    /// the end only for its clamps (`incomplete_history`).
    suspended: bool,
    /// The current reading window in blocks (0: whole history).
    window: u64,
    /// A transaction node with a CoinJoin shape (category `mixer`).
    coinjoin: Option<CoinJoinEvidence>,
}

/// Heap entry tags: a node's continuation (its history must be read further before any
/// event at or after the key) sorts before a transfer of the same key.
const CONT: u8 = 0;
const XFER: u8 = 1;

/// Runs a forward trace (no time budget; `params.max_nodes` still bounds it).
pub fn trace_forward<S: FlowSource, L: LabelSource>(
    source: &S,
    labels: &L,
    seed: &Seed,
    params: &TraceParams,
) -> Result<TraceResult, TraceError> {
    trace_forward_within(source, labels, seed, params, None)
}

/// Runs a forward trace that stops expanding addresses once `budget` (counted from this call)
/// has run out: addresses reached after that are reported with status `time_budget` and the
/// result is marked `truncated`. Events of addresses already expanded are still processed, so
/// the amounts stay consistent (a lower bound of the complete trace's reach).
pub fn trace_forward_within<S: FlowSource, L: LabelSource>(
    source: &S,
    labels: &L,
    seed: &Seed,
    params: &TraceParams,
    budget: Option<Duration>,
) -> Result<TraceResult, TraceError> {
    let r = forward_within(source, labels, seed, params, budget);
    // A label that could not be read makes the trace's stops unknown: fail, never "unlabelled".
    match labels.take_failure() {
        Some(e) => Err(TraceError::Labels(e)),
        None => r,
    }
}

fn forward_within<S: FlowSource, L: LabelSource>(
    source: &S,
    labels: &L,
    seed: &Seed,
    params: &TraceParams,
    budget: Option<Duration>,
) -> Result<TraceResult, TraceError> {
    let deadline = budget.map(|b| Instant::now() + b);
    let win = source.history_window();
    let (win_chain, last_block) = if win == HistoryWindow::Off {
        (None, None)
    } else {
        let ends = source.checkpoints().map_err(TraceError::source)?;
        let c = match params.chain {
            Some(c) => Some(c),
            // Windows are per chain: with no chain restriction only on a single-chain source.
            None if ends.len() == 1 => ends.keys().next().copied(),
            None => None,
        };
        (c, c.and_then(|c| ends.get(&c).copied()))
    };
    let mut e = Engine {
        deadline,
        truncated: None,
        win,
        win_chain,
        last_block,
        src: source,
        labels,
        p: params,
        nodes: Vec::new(),
        index: HashMap::default(),
        arena: Vec::new(),
        heap: BinaryHeap::new(),
        seeds: HashSet::default(),
        stats: TraceStats::default(),
        swap_carry: HashMap::default(),
        swap_pushed: HashSet::default(),
        cursor: None,
        tx_hist: HashMap::default(),
    };
    let (seed_info, seeds) = e.resolve_seed(seed)?;
    for t in seeds {
        e.seeds.insert(t.key);
        e.push(t);
    }
    e.run()?;
    e.settle()?;
    e.finish(seed_info)
}

struct Engine<'a, S, L> {
    /// When the time budget runs out.
    deadline: Option<Instant>,
    /// The first limit that stopped an expansion.
    truncated: Option<Truncation>,
    /// How histories are read after the first tainted arrival.
    win: HistoryWindow,
    /// The chain windows apply to (none: histories are read whole).
    win_chain: Option<ChainId>,
    /// Its last block: a window reaching past it reads to the end.
    last_block: Option<BlockNumber>,
    src: &'a S,
    labels: &'a L,
    p: &'a TraceParams,
    nodes: Vec<Node>,
    index: HashMap<Address, usize>,
    /// Queued transfers, taken out when processed (each index is popped once).
    arena: Vec<Option<Transfer>>,
    /// Queued events: (key, tag, arena index for `XFER` / node index for `CONT`).
    heap: BinaryHeap<Reverse<(TransferKey, u8, usize)>>,
    seeds: HashSet<TransferKey>,
    stats: TraceStats,
    /// Tainted value a swap address's cross-asset payout carries (accumulated per payout).
    swap_carry: HashMap<TransferKey, Amount>,
    /// Swap payouts already queued.
    swap_pushed: HashSet<TransferKey>,
    /// The event being processed.
    cursor: Option<TransferKey>,
    /// Histories (incoming, outgoing) of transaction nodes read for the CoinJoin check and
    /// not yet expanded: the expansion takes them instead of reading them again.
    tx_hist: HashMap<Address, (Vec<Transfer>, Vec<Transfer>)>,
}

pub(crate) fn edge(t: &Transfer, tainted: Amount) -> FlowEdge {
    FlowEdge {
        key: t.key,
        tx_hash: t.tx_hash,
        time: t.time,
        from: t.from,
        to: t.to,
        asset: t.asset,
        amount: t.amount,
        tainted,
    }
}

pub(crate) fn add_to(
    m: &mut BTreeMap<String, BTreeMap<String, Amount>>,
    cat: &str,
    asset: &Asset,
    v: Amount,
) -> Result<(), TraceError> {
    if v.is_zero() {
        return Ok(());
    }
    let e = m
        .entry(cat.to_owned())
        .or_default()
        .entry(asset.to_string())
        .or_default();
    *e = e.checked_add(v)?;
    Ok(())
}

impl<S: FlowSource, L: LabelSource> Engine<'_, S, L> {
    fn in_window(&self, t: &Transfer) -> bool {
        self.p.until.is_none_or(|u| t.time <= u) && self.p.chain.is_none_or(|c| t.key.chain == c)
    }

    fn resolve_seed(&mut self, seed: &Seed) -> Result<(SeedInfo, Vec<Transfer>), TraceError> {
        let (kind, address, mut ts) = match seed {
            Seed::Transfers(keys) => {
                let mut ts = Vec::with_capacity(keys.len());
                for k in keys {
                    let t = self
                        .src
                        .transfer(k)
                        .map_err(TraceError::source)?
                        .ok_or(TraceError::SeedNotFound(*k))?;
                    ts.push(t);
                }
                // The outputs of one Bitcoin transaction node are a `transaction` seed.
                let kind = match ts.first() {
                    _ if ts.len() == 1 => "transfer",
                    Some(f) if f.from.is_tx() && ts.iter().all(|t| t.from == f.from) => {
                        "transaction"
                    }
                    _ => "batch",
                };
                let addr = ts.first().map(|t| t.from);
                (kind, addr, ts)
            }
            Seed::Outflows(a) => {
                let ts: Vec<Transfer> = self
                    .src
                    .address_transfers(a, Direction::Outgoing, self.p.chain)
                    .map_err(TraceError::source)?
                    .into_iter()
                    .filter(|t| {
                        self.p.since.is_none_or(|s| t.time >= s)
                            && self.p.until.is_none_or(|u| t.time <= u)
                    })
                    .collect();
                ("address", Some(*a), ts)
            }
        };
        ts.sort_by_key(|t| t.key);
        ts.dedup_by_key(|t| t.key);
        if ts.is_empty() {
            return Err(TraceError::EmptySeed(match seed {
                Seed::Outflows(a) => format!("{a} sent no transfer within the chain and window"),
                Seed::Transfers(_) => "no seed transfer given".to_owned(),
            }));
        }
        let mut total = BTreeMap::new();
        for t in &ts {
            let e: &mut Amount = total.entry(t.asset.to_string()).or_default();
            *e = e.checked_add(t.amount)?;
        }
        let info = SeedInfo {
            kind,
            address,
            transfers: ts.iter().map(|t| edge(t, t.amount)).collect(),
            total,
        };
        Ok((info, ts))
    }

    fn push(&mut self, t: Transfer) {
        let i = self.arena.len();
        self.heap.push(Reverse((t.key, XFER, i)));
        self.arena.push(Some(t));
    }

    fn node(&mut self, a: Address) -> usize {
        if let Some(&i) = self.index.get(&a) {
            return i;
        }
        let i = self.nodes.len();
        self.nodes.push(Node {
            address: a,
            role: Role::Frontier(Status::AtDepthLimit),
            category: self.labels.category(&a),
            hops: u32::MAX,
            payee: false,
            holdings: HashMap::default(),
            credits: Vec::new(),
            credit_index: HashMap::default(),
            leaked: BTreeMap::new(),
            incomplete: false,
            outputs: Vec::new(),
            tiho: HashMap::default(),
            read_to: None,
            suspended: false,
            window: 0,
            coinjoin: None,
        });
        self.index.insert(a, i);
        i
    }

    fn run(&mut self) -> Result<(), TraceError> {
        let mut last: Option<TransferKey> = None;
        while let Some(Reverse((key, tag, i))) = self.heap.pop() {
            if tag == CONT {
                self.cursor = Some(key);
                self.next_window(i, key)?;
                continue;
            }
            if last == Some(key) {
                continue;
            }
            last = Some(key);
            self.cursor = Some(key);
            // Moved out, not cloned: nothing reads a queued transfer after it is processed.
            let Some(t) = self.arena.get_mut(i).and_then(Option::take) else {
                continue;
            };
            self.stats.events += 1;
            self.process(&t)?;
        }
        Ok(())
    }

    fn holding(model: Model, n: &mut Node, asset: Asset) -> &mut Holding {
        n.holdings
            .entry(asset)
            .or_insert_with(|| Holding::new(model))
    }

    fn process(&mut self, t: &Transfer) -> Result<(), TraceError> {
        let is_seed = self.seeds.contains(&t.key);
        let model = self.p.model;
        let mut sender_hops = None;
        let mut carry = Carry::clean();
        if let Some(&s) = self.index.get(&t.from) {
            match self.nodes[s].role {
                // Holds no taint: sends clean value, its state is caught up when it resumes.
                Role::Expanded if self.nodes[s].suspended => {
                    sender_hops = Some(self.nodes[s].hops);
                }
                Role::Expanded => {
                    let d = if model == Model::Tiho && t.from.is_tx() {
                        let tainted = self.tiho_share(s, t)?;
                        let n = &mut self.nodes[s];
                        Self::holding(model, n, t.asset).debit_exact(t.amount, tainted)?
                    } else {
                        let n = &mut self.nodes[s];
                        Self::holding(model, n, t.asset).debit(t.amount)?
                    };
                    let n = &mut self.nodes[s];
                    n.incomplete |= d.clamped;
                    carry = d.carry;
                    sender_hops = Some(n.hops);
                }
                Role::Swap => {
                    if let Some(v) = self.swap_carry.remove(&t.key) {
                        carry = Carry::full(v.min(t.amount));
                        sender_hops = Some(self.nodes[s].hops);
                    }
                }
                Role::Frontier(_) | Role::Stop => {}
            }
        }
        let hops = if is_seed {
            carry = Carry::full(t.amount);
            0
        } else {
            match sender_hops {
                // Entering a transaction node is not a hop: a Bitcoin hop is one transaction.
                Some(h) if t.to.is_tx() => h,
                Some(h) => h.saturating_add(1),
                None => return self.credit_clean(t),
            }
        };
        self.receive(t, carry, hops, is_seed)
    }

    /// The CoinJoin check of transaction node `a`: its whole history (kept for its expansion
    /// when it is not a CoinJoin).
    fn coinjoin(&mut self, a: Address) -> Result<Option<CoinJoinEvidence>, TraceError> {
        let read = |dir| {
            self.src
                .address_transfers_range(&a, dir, self.p.chain, None, None)
                .map_err(TraceError::source)
        };
        let inc = read(Direction::Incoming)?;
        let out = read(Direction::Outgoing)?;
        self.stats.transfers_read += inc.len() + out.len();
        let all: Vec<Transfer> =
            merge_dedup(inc.clone(), out.clone(), |x: &Transfer| x.key).collect();
        let ev = CoinJoinEvidence::of_transfers(&all)?;
        if ev.is_none() {
            self.tx_hist.insert(a, (inc, out));
        }
        Ok(ev)
    }

    /// Clean value into an address: only matters if it is followed.
    fn credit_clean(&mut self, t: &Transfer) -> Result<(), TraceError> {
        if let Some(&r) = self.index.get(&t.to) {
            let model = self.p.model;
            let n = &mut self.nodes[r];
            if n.role == Role::Expanded && !n.suspended {
                Self::holding(model, n, t.asset).credit(t.amount, &Carry::clean())?;
            }
        }
        Ok(())
    }

    fn record(&mut self, r: usize, t: &Transfer, carry: &Carry, hops: u32) {
        let n = &mut self.nodes[r];
        n.hops = n.hops.min(hops);
        n.credit_index.insert(t.key, n.credits.len());
        n.credits.push(Credit {
            transfer: t.clone(),
            carry: carry.clone(),
            hops,
        });
    }

    fn receive(
        &mut self,
        t: &Transfer,
        carry: Carry,
        hops: u32,
        is_seed: bool,
    ) -> Result<(), TraceError> {
        let model = self.p.model;
        if let Some(&r) = self.index.get(&t.to)
            && self.nodes[r].role == Role::Expanded
        {
            if self.nodes[r].suspended {
                if carry.tainted.is_zero() {
                    self.nodes[r].payee |= is_seed;
                    return Ok(());
                }
                self.resume(r, t.key, false)?;
            }
            if !carry.tainted.is_zero() {
                self.record(r, t, &carry, hops);
            }
            let n = &mut self.nodes[r];
            n.payee |= is_seed;
            return Self::holding(model, n, t.asset).credit(t.amount, &carry);
        }
        if carry.tainted.is_zero() {
            return Ok(());
        }
        let r = self.node(t.to);
        self.record(r, t, &carry, hops);
        if self.nodes[r].role == Role::Swap {
            return self.swap(r, t, &carry);
        }
        // A CoinJoin met by the trace is a mixer: an exit (when `mixer` stops the trace, as by
        // default) with the detection as evidence, not an ordinary transaction to follow.
        if t.to.is_tx()
            && self.nodes[r].category.is_none()
            && self.nodes[r].credits.len() == 1
            && matches!(self.nodes[r].role, Role::Frontier(_))
            && let Some(ev) = self.coinjoin(t.to)?
        {
            self.nodes[r].category = Some(Category::new(CoinJoinEvidence::CATEGORY));
            self.nodes[r].coinjoin = Some(ev);
        }
        let cat = self.nodes[r].category.clone();
        if cat.as_ref().is_some_and(|c| self.p.stop.contains(c)) {
            self.nodes[r].role = Role::Stop;
            self.tx_hist.remove(&t.to);
            return Ok(());
        }
        if cat.as_ref().is_some_and(|c| self.p.swap.contains(c))
            && matches!(self.nodes[r].role, Role::Frontier(_))
            && self.nodes[r].credits.len() == 1
        {
            self.nodes[r].role = Role::Swap;
            return self.swap(r, t, &carry);
        }
        let reason = if hops >= self.p.max_hops && !is_seed {
            Some(Status::AtDepthLimit)
        } else if !is_seed && carry.tainted < self.p.min_amount {
            Some(Status::BelowMinAmount)
        } else if self.stats.expanded_addresses >= self.p.max_nodes {
            self.truncated.get_or_insert(Truncation::MaxNodes);
            Some(Status::NodeLimit)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.truncated.get_or_insert(Truncation::TimeBudget);
            Some(Status::TimeBudget)
        } else {
            None
        };
        match reason {
            Some(st) => {
                self.tx_hist.remove(&t.to);
                // A frontier keeps the first reason it was stopped for.
                if self.nodes[r].credits.len() == 1 {
                    self.nodes[r].role = Role::Frontier(st);
                }
                Ok(())
            }
            None => {
                self.nodes[r].payee |= is_seed;
                self.expand(r, t)
            }
        }
    }

    /// Loads the history of node `r`, replays it up to `t` (exclusive), credits `t` (already
    /// recorded) and queues the rest.
    fn expand(&mut self, r: usize, t: &Transfer) -> Result<(), TraceError> {
        let model = self.p.model;
        let addr = self.nodes[r].address;
        let prior = match self.nodes[r].role {
            Role::Frontier(st) => st,
            _ => Status::AtDepthLimit,
        };
        self.nodes[r].role = Role::Expanded;
        self.stats.expanded_addresses += 1;
        // Resume the replay at a balance checkpoint: before the node's first tainted arrival
        // (`t` or an earlier one recorded while it was a frontier) all its value is clean, so
        // the checkpoint's clean balances are the whole state there.
        let cp = self.checkpoint(r, t)?;
        let from = cp.as_ref().map(|c| c.at);
        let cp_density = cp.as_ref().map(|c| (c.entries, c.at.block));
        if let Some(c) = cp {
            let n = &mut self.nodes[r];
            n.incomplete |= c.clamped;
            for (asset, v) in c.balances {
                Self::holding(model, n, asset).credit(v, &Carry::clean())?;
            }
            self.stats.checkpoints_used += 1;
            self.stats.replay_skipped += usize::try_from(c.entries).unwrap_or(usize::MAX);
        }
        let w = self.first_window(&addr, cp_density);
        self.nodes[r].window = w;
        let end = self.window_end(&t.key, w);
        self.read_chunk(r, from, end, Some((t.key, false)), prior)?;
        // Credit the transfer that brought the node in.
        let c = self.nodes[r]
            .credit_index
            .get(&t.key)
            .map(|&i| self.nodes[r].credits[i].carry.clone())
            .unwrap_or_default();
        let n = &mut self.nodes[r];
        Self::holding(model, n, t.asset).credit(t.amount, &c)
    }

    /// The first reading window (blocks) of a node being expanded; 0 reads its whole history.
    /// Adaptive: about `WINDOW_ENTRIES` entries at the density its checkpoint shows (entries
    /// before the checkpoint per block from the chain's start); without a checkpoint the
    /// history is short and read whole.
    fn first_window(&self, addr: &Address, cp: Option<(u64, BlockNumber)>) -> u64 {
        if addr.is_tx() || self.win_chain.is_none() {
            return 0;
        }
        match (self.win, cp) {
            (HistoryWindow::Off, _) | (HistoryWindow::Adaptive, None) => 0,
            (HistoryWindow::Blocks(n), _) => n.max(1),
            (HistoryWindow::Adaptive, Some((entries, at))) => {
                let w = u128::from(WINDOW_ENTRIES) * u128::from(at.0.max(1))
                    / u128::from(entries.max(1));
                u64::try_from(w).unwrap_or(u64::MAX).max(1)
            }
        }
    }

    /// The end (exclusive) of a window of `w` blocks after `k`'s block; `None`: to the end
    /// of the history.
    fn window_end(&self, k: &TransferKey, w: u64) -> Option<TransferKey> {
        let c = self.win_chain?;
        let last = self.last_block?;
        if w == 0 || k.chain != c {
            return None;
        }
        let b = k.block.0.checked_add(w)?;
        (b <= last.0).then_some(TransferKey {
            chain: c,
            block: BlockNumber(b),
            tx_index: 0,
            kind: TransferKind::Native,
            position: 0,
        })
    }

    /// Reads node `r`'s history in `from..end` (open bounds when `None`): entries before
    /// `split` (and at it when `split.1`) are replayed into its state, later ones queued;
    /// the entry at `split` itself (the arrival being processed) is left to the caller. With
    /// an `end`, a continuation is queued there.
    fn read_chunk(
        &mut self,
        r: usize,
        from: Option<TransferKey>,
        end: Option<TransferKey>,
        split: Option<(TransferKey, bool)>,
        prior: Status,
    ) -> Result<(), TraceError> {
        let model = self.p.model;
        let addr = self.nodes[r].address;
        // A transaction node's whole history may have been read by its CoinJoin check.
        let kept = match (from, end) {
            (None, None) => self.tx_hist.remove(&addr),
            _ => None,
        };
        let (inc, out) = match kept {
            Some(h) => h,
            None => {
                let inc = self
                    .src
                    .address_transfers_range(
                        &addr,
                        Direction::Incoming,
                        self.p.chain,
                        from.as_ref(),
                        end.as_ref(),
                    )
                    .map_err(TraceError::source)?;
                let out = self
                    .src
                    .address_transfers_range(
                        &addr,
                        Direction::Outgoing,
                        self.p.chain,
                        from.as_ref(),
                        end.as_ref(),
                    )
                    .map_err(TraceError::source)?;
                self.stats.transfers_read += inc.len() + out.len();
                (inc, out)
            }
        };
        // Both come key-sorted: a linear merge (self-transfers, in both, once) instead of a
        // copy and a sort of the whole history.
        let hist = merge_dedup(inc, out, |x: &Transfer| x.key);
        let keep_outputs = model == Model::Tiho && addr.is_tx();
        for e in hist {
            if !self.in_window(&e) {
                continue;
            }
            if keep_outputs && e.from == addr && e.to != addr {
                self.nodes[r].outputs.push((e.key, e.asset, e.amount));
            }
            let before = split.is_some_and(|(k, incl)| e.key < k || (incl && e.key == k));
            if before {
                let n = &mut self.nodes[r];
                let mut sent = Carry::clean();
                if e.from == addr {
                    let d = Self::holding(model, n, e.asset).debit(e.amount)?;
                    n.incomplete |= d.clamped;
                    if !d.carry.tainted.is_zero() && e.to != addr {
                        let v = n.leaked.entry((prior, e.asset)).or_default();
                        *v = v.checked_add(d.carry.tainted)?;
                    }
                    sent = d.carry;
                }
                if e.to == addr {
                    let c = if e.from == addr {
                        sent
                    } else {
                        n.credit_index
                            .get(&e.key)
                            .map(|&i| n.credits[i].carry.clone())
                            .unwrap_or_default()
                    };
                    Self::holding(model, n, e.asset).credit(e.amount, &c)?;
                }
            } else if split.is_none_or(|(k, _)| e.key > k) {
                self.push(e);
            }
        }
        self.nodes[r].read_to = end;
        if let Some(k) = end {
            self.heap.push(Reverse((k, CONT, r)));
        }
        Ok(())
    }

    /// The continuation of node `r` at `k`: all its events before `k` are processed. If it
    /// holds no taint it is suspended (reading stops); otherwise the next, twice as large,
    /// window is read.
    fn next_window(&mut self, r: usize, k: TransferKey) -> Result<(), TraceError> {
        let n = &self.nodes[r];
        if n.suspended || n.read_to != Some(k) {
            return Ok(());
        }
        if n.holdings.values().all(Holding::is_clean) {
            self.nodes[r].suspended = true;
            return Ok(());
        }
        let w = n.window.saturating_mul(2);
        self.nodes[r].window = w;
        let end = self.window_end(&k, w);
        self.read_chunk(r, Some(k), end, None, Status::AtDepthLimit)
    }

    /// Resumes suspended node `r` at `k`: replays its history from where reading stopped up
    /// to `k` (exclusive, or inclusive when `incl`) as clean value (it held no taint) and
    /// queues the rest of a window.
    fn resume(&mut self, r: usize, k: TransferKey, incl: bool) -> Result<(), TraceError> {
        let from = self.nodes[r].read_to;
        self.nodes[r].suspended = false;
        let w = self.nodes[r].window;
        let end = self.window_end(&k, w);
        self.read_chunk(r, from, end, Some((k, incl)), Status::AtDepthLimit)
    }

    /// At the end: the clamps in the unread rest of each suspended node's history (the only
    /// thing it can still change: `incomplete_history`).
    fn settle(&mut self) -> Result<(), TraceError> {
        let model = self.p.model;
        for r in 0..self.nodes.len() {
            let n = &self.nodes[r];
            let (true, Some(p)) = (n.suspended, n.read_to) else {
                continue;
            };
            let addr = n.address;
            // The rest of the history is replayed from where reading stopped, from the node's
            // exact state there. (Resuming at a later balance checkpoint instead gave a
            // different `incomplete_history` than a whole read when the checkpoint's clamp flag
            // covered history the trace never replays: found by `windows_never_change_a_trace`.)
            let mut state: HashMap<Asset, Holding> = n.holdings.clone();
            let mut clamped = false;
            let from = p;
            let inc = self
                .src
                .address_transfers_range(
                    &addr,
                    Direction::Incoming,
                    self.p.chain,
                    Some(&from),
                    None,
                )
                .map_err(TraceError::source)?;
            let out = self
                .src
                .address_transfers_range(
                    &addr,
                    Direction::Outgoing,
                    self.p.chain,
                    Some(&from),
                    None,
                )
                .map_err(TraceError::source)?;
            self.stats.transfers_read += inc.len() + out.len();
            for e in merge_dedup(inc, out, |x: &Transfer| x.key) {
                if !self.in_window(&e) {
                    continue;
                }
                let h = state.entry(e.asset).or_insert_with(|| Holding::new(model));
                if e.from == addr {
                    clamped |= h.debit(e.amount)?.clamped;
                }
                if e.to == addr {
                    h.credit(e.amount, &Carry::clean())?;
                }
            }
            self.nodes[r].incomplete |= clamped;
        }
        Ok(())
    }

    /// The balance checkpoint node `r` (expanded by tainted arrival `t`) can resume its replay
    /// at: at or before its earliest tainted arrival, covering only transfers the replay would
    /// see (none past `until`), never for a transaction node (TIHO keeps all its outputs).
    fn checkpoint(
        &self,
        r: usize,
        t: &Transfer,
    ) -> Result<Option<paytrace_indexer::BalanceCheckpoint>, TraceError> {
        let n = &self.nodes[r];
        if n.address.is_tx() {
            return Ok(None);
        }
        let first = n
            .credits
            .iter()
            .map(|c| c.transfer.key)
            .chain(std::iter::once(t.key))
            .min()
            .unwrap_or(t.key);
        if self.p.chain.is_some_and(|c| c != first.chain) {
            return Ok(None);
        }
        let cp = self
            .src
            .balance_checkpoint(&n.address, self.p.chain, &first)
            .map_err(TraceError::source)?;
        Ok(cp.filter(|c| {
            c.at <= first
                && c.at.chain == first.chain
                && self.p.until.is_none_or(|u| c.max_time <= u)
        }))
    }

    /// TIHO: the tainted part of output `t` of transaction node `s`. On the first output of an
    /// asset, the node's tainted value (every input precedes every output) is dealt to the
    /// outputs of that asset from the highest value down (ties: lower output index first).
    fn tiho_share(&mut self, s: usize, t: &Transfer) -> Result<Amount, TraceError> {
        let model = self.p.model;
        let n = &mut self.nodes[s];
        if let Some(v) = n.tiho.get(&t.key) {
            return Ok(*v);
        }
        let mut left = Self::holding(model, n, t.asset).tainted()?;
        let mut outs: Vec<(TransferKey, Amount)> = n
            .outputs
            .iter()
            .filter(|(_, a, _)| *a == t.asset)
            .map(|(k, _, v)| (*k, *v))
            .collect();
        if !outs.iter().any(|(k, _)| *k == t.key) {
            // Not in the loaded history (cannot happen on a consistent source): alone.
            outs.push((t.key, t.amount));
        }
        outs.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        for (k, v) in outs {
            let share = v.min(left);
            left = left.checked_sub(share)?;
            n.tiho.insert(k, share);
        }
        Ok(n.tiho.get(&t.key).copied().unwrap_or_default())
    }

    /// A tainted arrival `t` at swap address `r`: the payouts of `r` in other assets within
    /// the same transaction carry the arrival's tainted fraction of everything `r` received
    /// in `t`'s asset in that transaction.
    fn swap(&mut self, r: usize, t: &Transfer, carry: &Carry) -> Result<(), TraceError> {
        let addr = self.nodes[r].address;
        let tx = self
            .src
            .tx_transfers(&t.tx_hash, Some(t.key.chain), Some(t.key.block))
            .map_err(TraceError::source)?;
        self.stats.transfers_read += tx.len();
        let mut received = Amount::ZERO;
        for x in tx.iter().filter(|x| x.to == addr && x.asset == t.asset) {
            received = received.checked_add(x.amount)?;
        }
        let received = received.max(t.amount);
        for o in tx {
            if o.from != addr || o.to == addr || o.asset == t.asset {
                continue;
            }
            let share = mul_div_floor(o.amount, carry.tainted, received)?;
            if share.is_zero() {
                continue;
            }
            let late = self.cursor.is_some_and(|c| o.key < c);
            if late
                && let Some(&q) = self.index.get(&o.to)
                && self.nodes[q].role == Role::Expanded
            {
                if self.nodes[q].suspended
                    && let Some(c) = self.cursor
                {
                    // Catch up with everything up to the event being processed first.
                    self.resume(q, c, true)?;
                }
                // The payout preceded the arrival in the transaction (e.g. a pool that pays out
                // before it is paid) and its receiver already took it in as clean: re-colour.
                let model = self.p.model;
                let c = Carry::full(share.min(o.amount));
                let hops = self.nodes[r].hops.saturating_add(1);
                self.record(q, &o, &c, hops);
                let n = &mut self.nodes[q];
                Self::holding(model, n, o.asset).retaint(c.tainted)?;
                continue;
            }
            let v = self.swap_carry.entry(o.key).or_default();
            *v = v.checked_add(share)?;
            if self.swap_pushed.insert(o.key) {
                self.push(o);
            }
        }
        Ok(())
    }

    fn status(n: &Node) -> Status {
        match n.role {
            Role::Expanded if n.payee => Status::Payee,
            Role::Expanded => Status::Followed,
            Role::Stop => Status::Exited,
            Role::Swap => Status::Swapped,
            Role::Frontier(s) => s,
        }
    }

    fn finish(self, seed: SeedInfo) -> Result<TraceResult, TraceError> {
        // Sized up front: a wide trace has tens of thousands of each.
        let mut destinations = Vec::with_capacity(self.nodes.len());
        let mut totals: BTreeMap<String, BTreeMap<String, Amount>> = BTreeMap::new();
        let mut edges = Vec::with_capacity(self.nodes.iter().map(|n| n.credits.len()).sum());
        let mut incomplete = false;
        for n in &self.nodes {
            incomplete |= n.incomplete;
            let status = Self::status(n);
            let mut per_asset: BTreeMap<Asset, (Amount, u32, &Credit)> = BTreeMap::new();
            for c in &n.credits {
                edges.push(edge(&c.transfer, c.carry.tainted));
                match per_asset.get_mut(&c.transfer.asset) {
                    Some(e) => {
                        e.0 = e.0.checked_add(c.carry.tainted)?;
                        e.1 = e.1.min(c.hops);
                        if c.transfer.key < e.2.transfer.key {
                            e.2 = c;
                        }
                    }
                    None => {
                        per_asset.insert(c.transfer.asset, (c.carry.tainted, c.hops, c));
                    }
                }
            }
            let labels = self.labels.labels(&n.address);
            for (asset, (amount, hops, first)) in per_asset {
                let held = match n.role {
                    Role::Expanded => n
                        .holdings
                        .get(&asset)
                        .map(Holding::tainted)
                        .transpose()?
                        .unwrap_or_default(),
                    _ => amount,
                };
                let cat = match (status, &n.category) {
                    (Status::Exited, Some(c)) => c.as_str().to_owned(),
                    (Status::Followed, Some(c)) => c.as_str().to_owned(),
                    (s, _) => s.category().to_owned(),
                };
                add_to(&mut totals, &cat, &asset, held)?;
                destinations.push(Destination {
                    address: n.address,
                    labels: labels.clone(),
                    category: n.category.clone(),
                    status,
                    asset,
                    amount,
                    held,
                    hops,
                    first_arrival: first.transfer.time,
                    first_arrival_tx: first.transfer.tx_hash,
                    incomplete_history: n.incomplete,
                    coinjoin: n.coinjoin.clone(),
                });
            }
            for ((st, asset), v) in &n.leaked {
                add_to(&mut totals, st.category(), asset, *v)?;
            }
        }
        sort_destinations(&mut destinations);
        edges.sort_by_key(|e| e.key);
        let paths = self.evidence(&destinations);
        Ok(TraceResult {
            model: self.p.model,
            truncated: self.truncated.is_some(),
            truncated_by: self.truncated,
            seed,
            parameters: Parameters::record("forward", self.p, self.src, self.labels)?,
            incomplete_history: incomplete,
            destinations,
            totals_by_category: totals,
            paths,
            edges,
            stats: self.stats,
        })
    }

    /// Evidence paths: for labelled (exited) destinations first, then the largest others that
    /// were not followed, back-chain through the largest tainted arrival that happened before
    /// the transfer it fed.
    fn evidence(&self, dests: &[Destination]) -> Vec<EvidencePath> {
        let mut cands: Vec<&Destination> = dests
            .iter()
            .filter(|d| !matches!(d.status, Status::Payee))
            .collect();
        cands.sort_by_key(|d| (d.status != Status::Exited, Reverse(d.amount)));
        let mut out = Vec::new();
        for d in cands.into_iter().take(self.p.max_paths) {
            let Some(&start) = self.index.get(&d.address) else {
                continue;
            };
            let mut hops = Vec::new();
            let mut at = start;
            let mut before: Option<TransferKey> = None;
            // Keys strictly decrease, so this ends; the bound is a guard.
            for _ in 0..=self.nodes.len() {
                let best = self.nodes[at]
                    .credits
                    .iter()
                    .filter(|c| c.transfer.asset == d.asset)
                    .filter(|c| before.is_none_or(|b| c.transfer.key < b))
                    .max_by_key(|c| (c.carry.tainted, Reverse(c.transfer.key)));
                let Some(c) = best else { break };
                let t = &c.transfer;
                hops.push(PathHop::of(t, c.carry.tainted));
                if self.seeds.contains(&t.key) {
                    break;
                }
                match self.index.get(&t.from) {
                    Some(&p) => {
                        at = p;
                        before = Some(t.key);
                    }
                    None => break,
                }
            }
            hops.reverse();
            let amount = hops.last().map(|h| h.tainted).unwrap_or_default();
            out.push(EvidencePath::to(d, amount, hops));
        }
        out
    }
}
