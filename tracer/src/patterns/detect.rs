//! The detectors (rules in docs/heuristics.md, "Typology detectors").

use super::{
    CycleKind, PatternInstance, PatternKind, PatternParams, PatternReport,
    usual::{Side, UsualAmounts},
};
use crate::model::mul_div_floor;
use paytrace_indexer::{Address, Amount, Asset, Transfer, TransferKind, TxHash};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// `0.5` at `n == min`, rising linearly to `1.0` at `n == 2 × min`.
fn strength(n: usize, min: usize) -> f64 {
    let min = min.max(1);
    let extra = n.saturating_sub(min) as f64 / min as f64;
    0.5 + 0.5 * extra.min(1.0)
}

/// Replaces Bitcoin-style transaction nodes by direct transfers: every output of a transaction
/// node becomes a transfer from the transaction's largest input address (ties: first input)
/// to the output address, with the output's key, time and amount. Inputs are dropped; other
/// transfers are kept as they are. Outputs of a transaction whose inputs are not in `ts` are
/// dropped.
pub fn collapse_utxo(ts: &[Transfer]) -> Vec<Transfer> {
    let mut payer: HashMap<Address, (Amount, Address)> = HashMap::new();
    for t in ts {
        if t.key.kind == TransferKind::Utxo && t.to.is_tx() {
            let e = payer.entry(t.to).or_insert((t.amount, t.from));
            if t.amount > e.0 {
                *e = (t.amount, t.from);
            }
        }
    }
    let mut out = Vec::with_capacity(ts.len());
    for t in ts {
        if t.to.is_tx() {
            continue;
        }
        if t.from.is_tx() {
            if let Some((_, from)) = payer.get(&t.from) {
                let mut c = t.clone();
                c.from = *from;
                out.push(c);
            }
            continue;
        }
        out.push(t.clone());
    }
    out.sort_by_key(|t| t.key);
    out
}

/// Runs every detector selected in `p` over `ts` (any order).
pub fn detect(ts: &[Transfer], p: &PatternParams) -> PatternReport {
    let ts = collapse_utxo(ts);
    let mut report = PatternReport {
        transfers_examined: ts.len(),
        ..PatternReport::default()
    };
    let ix = Index::new(&ts);
    for kind in PatternKind::ALL {
        if !p.runs(kind) {
            continue;
        }
        let v = match kind {
            PatternKind::Peel => peel(&ix, p),
            PatternKind::PassThrough => pass_through(&ix, p),
            PatternKind::FanIn => fan(&ix, p, true),
            PatternKind::FanOut => fan(&ix, p, false),
            PatternKind::ScatterGather => scatter_gather(&ix, p),
            PatternKind::GatherScatter => gather_scatter(&ix, p),
            PatternKind::Cycle => cycles(&ix, p),
            PatternKind::Structuring => structuring(&ix, p),
        };
        let mut v = merge_identical(v);
        v.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then(
                a.transfers
                    .first()
                    .map(|t| t.key)
                    .cmp(&b.transfers.first().map(|t| t.key)),
            )
        });
        if v.len() > p.max_instances {
            report.truncated += v.len() - p.max_instances;
            v.truncate(p.max_instances);
        }
        report.instances.extend(v);
    }
    report
}

/// Merges instances of one kind that are the same finding: same cycle kind, center, members
/// and window (first and last time). The merged instance has the union of the evidence and the
/// highest score (its summary is that of the strongest).
fn merge_identical(v: Vec<PatternInstance>) -> Vec<PatternInstance> {
    type Key = (
        Option<CycleKind>,
        Address,
        Vec<Address>,
        paytrace_indexer::Timestamp,
        paytrace_indexer::Timestamp,
    );
    let mut by: HashMap<Key, usize> = HashMap::new();
    let mut out: Vec<PatternInstance> = Vec::with_capacity(v.len());
    for i in v {
        let key: Key = (
            i.cycle_kind,
            i.center,
            i.members.clone(),
            i.first_time,
            i.last_time,
        );
        match by.get(&key) {
            Some(&at) => {
                let m = &mut out[at];
                if i.score > m.score {
                    m.score = i.score;
                    m.summary = i.summary;
                }
                m.transfers.extend(i.transfers);
                m.transfers.sort_by_key(|t| t.key);
                m.transfers.dedup_by_key(|t| t.key);
            }
            None => {
                by.insert(key, out.len());
                out.push(i);
            }
        }
    }
    out
}

macro_rules! single {
    ($(#[$m:meta])* $name:ident, $kind:expr) => {
        $(#[$m])*
        pub fn $name(ts: &[Transfer], p: &PatternParams) -> Vec<PatternInstance> {
            let p = PatternParams { kinds: vec![$kind], ..p.clone() };
            detect(ts, &p).instances
        }
    };
}

single!(
    /// Peeling chains only.
    detect_peel_chains,
    PatternKind::Peel
);
single!(
    /// Rapid pass-through only.
    detect_pass_through,
    PatternKind::PassThrough
);
single!(
    /// Scatter-gather only.
    detect_scatter_gather,
    PatternKind::ScatterGather
);
single!(
    /// Gather-scatter only.
    detect_gather_scatter,
    PatternKind::GatherScatter
);
single!(
    /// Cycles only.
    detect_cycles,
    PatternKind::Cycle
);
single!(
    /// Structuring only.
    detect_structuring,
    PatternKind::Structuring
);

/// Fan-in (`incoming`) or fan-out only.
pub fn detect_fan(ts: &[Transfer], p: &PatternParams, incoming: bool) -> Vec<PatternInstance> {
    let kind = if incoming {
        PatternKind::FanIn
    } else {
        PatternKind::FanOut
    };
    let p = PatternParams {
        kinds: vec![kind],
        ..p.clone()
    };
    detect(ts, &p).instances
}

/// Transfers by sender and by receiver, each list in canonical order; self-transfers dropped.
struct Index<'a> {
    out: BTreeMap<Address, Vec<&'a Transfer>>,
    inc: BTreeMap<Address, Vec<&'a Transfer>>,
    /// Every transfer (self-transfers included).
    all: &'a [Transfer],
    /// Earliest and latest time of the examined transfers.
    span: (u64, u64),
}

impl<'a> Index<'a> {
    fn new(ts: &'a [Transfer]) -> Self {
        let mut out: BTreeMap<Address, Vec<&Transfer>> = BTreeMap::new();
        let mut inc: BTreeMap<Address, Vec<&Transfer>> = BTreeMap::new();
        for t in ts {
            if t.from == t.to {
                continue;
            }
            out.entry(t.from).or_default().push(t);
            inc.entry(t.to).or_default().push(t);
        }
        let lo = ts.iter().map(|t| t.time.0).min().unwrap_or(0);
        let hi = ts.iter().map(|t| t.time.0).max().unwrap_or(0);
        Self {
            out,
            inc,
            all: ts,
            span: (lo, hi),
        }
    }

    fn outgoing(&self, a: &Address) -> &[&'a Transfer] {
        self.out.get(a).map(Vec::as_slice).unwrap_or_default()
    }

    fn incoming(&self, a: &Address) -> &[&'a Transfer] {
        self.inc.get(a).map(Vec::as_slice).unwrap_or_default()
    }
}

fn amount_ok(t: &Transfer, p: &PatternParams) -> bool {
    t.amount >= p.fan_min_amount && p.fan_max_amount.is_none_or(|m| t.amount <= m)
}

/// Maximal runs of `list` (time-ordered) where some window of `window` seconds holds at least
/// `min` distinct keys; overlapping qualifying windows are merged. Returns index ranges.
fn windows<T>(
    list: &[T],
    time: impl Fn(&T) -> u64,
    key: impl Fn(&T) -> Address,
    window: u64,
    min: usize,
) -> Vec<(usize, usize)> {
    windows_where(list, time, key, window, min, |_, _, _| true)
}

/// As [`windows`], counting only the windows `(l, r, distinct keys)` that `accept` takes.
fn windows_where<T>(
    list: &[T],
    time: impl Fn(&T) -> u64,
    key: impl Fn(&T) -> Address,
    window: u64,
    min: usize,
    mut accept: impl FnMut(usize, usize, &HashMap<Address, usize>) -> bool,
) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut counts: HashMap<Address, usize> = HashMap::new();
    let mut l = 0;
    for r in 0..list.len() {
        *counts.entry(key(&list[r])).or_default() += 1;
        while time(&list[r]).saturating_sub(time(&list[l])) > window {
            let k = key(&list[l]);
            if let Some(c) = counts.get_mut(&k) {
                *c -= 1;
                if *c == 0 {
                    counts.remove(&k);
                }
            }
            l += 1;
        }
        if counts.len() >= min && accept(l, r, &counts) {
            match out.last_mut() {
                Some(last) if l <= last.1 => last.1 = r,
                _ => out.push((l, r)),
            }
        }
    }
    out
}

/// Fan-in (`incoming`) or fan-out instances of every address, by two rules (docs/heuristics.md):
///
/// * amount rule: at least `fan_min_unusual` distinct counterparties within a window whose
///   transfers with the center are unusual for **them** (judged against their other
///   counterparties, [`UsualAmounts`]);
/// * degree rule: at least `fan_min_counterparties` distinct counterparties within a window and
///   at least `fan_burst_factor` times the center's usual number for a window of that length,
///   learnt from the center's transfers outside the window. When the examined transfers cover
///   less than one window outside it, the center's usual degree is unknown and the rule does
///   not fire (a degree cannot be unusual against itself).
fn fan(ix: &Index<'_>, p: &PatternParams, incoming: bool) -> Vec<PatternInstance> {
    let mut out = Vec::new();
    let usual = UsualAmounts::new(ix.all, if incoming { Side::Sent } else { Side::Received });
    let map = if incoming { &ix.inc } else { &ix.out };
    let (kind, word) = if incoming {
        (PatternKind::FanIn, "senders into")
    } else {
        (PatternKind::FanOut, "receivers from")
    };
    let w = p.fan_window_secs;
    let span = ix.span.1.saturating_sub(ix.span.0);
    for (center, list) in map {
        let list: Vec<&Transfer> = list.iter().copied().filter(|t| amount_ok(t, p)).collect();
        let other = |t: &&Transfer| if incoming { t.from } else { t.to };
        // Amount rule.
        let odd: Vec<&Transfer> = list
            .iter()
            .copied()
            .filter(|t| usual.is_unusual(&other(t), &t.asset, center, t.amount, p) == Some(true))
            .collect();
        let min_odd = p.fan_min_unusual.max(1);
        for (l, r) in windows(&odd, |t| t.time.0, other, w, min_odd) {
            let ts = &odd[l..=r];
            let n = ts.iter().map(other).collect::<HashSet<_>>().len();
            let summary = format!(
                "{n} distinct {word} {center} within {w}s with amounts unusual for them ({} transfers)",
                ts.len()
            );
            out.push(PatternInstance::new(
                kind,
                strength(n, min_odd),
                *center,
                ts,
                summary,
            ));
        }
        // Degree rule: each window is compared with the center's usual degree.
        let min_n = p.fan_min_counterparties.max(1);
        if list.len() < min_n {
            continue;
        }
        // Counterparty -> (first, last) time with the center.
        let mut seen: HashMap<Address, (u64, u64)> = HashMap::new();
        for t in &list {
            let e = seen.entry(other(t)).or_insert((t.time.0, t.time.0));
            e.0 = e.0.min(t.time.0);
            e.1 = e.1.max(t.time.0);
        }
        let total = seen.len();
        let factor = f64::from(p.fan_burst_factor);
        // The usual number of distinct counterparties in a window [tl, tr], from the
        // center's transfers outside it; `None` when less than a window lies outside.
        let usual_of = |tl: u64, tr: u64, inside: &HashMap<Address, usize>| -> Option<f64> {
            let outside_time = span.saturating_sub(tr.saturating_sub(tl));
            if outside_time < w || outside_time == 0 {
                return None;
            }
            // Counterparties with a transfer outside the window.
            let only_inside = inside
                .keys()
                .filter(|a| seen.get(a).is_some_and(|(f, l)| *f >= tl && *l <= tr))
                .count();
            let outside = total - only_inside;
            let len = tr.saturating_sub(tl).max(w);
            Some(outside as f64 * len as f64 / outside_time as f64)
        };
        let mut worst: Option<(usize, f64)> = None;
        let runs = windows_where(
            &list,
            |t| t.time.0,
            other,
            w,
            min_n,
            |l, r, inside| {
                let (tl, tr) = (list[l].time.0, list[r].time.0);
                let n = inside.len();
                // Quick reject: at least `total - n` counterparties are outside.
                let outside_time = span.saturating_sub(tr.saturating_sub(tl)).max(1);
                let floor =
                    (total - n) as f64 * tr.saturating_sub(tl).max(w) as f64 / outside_time as f64;
                if (n as f64) < factor * floor {
                    return false;
                }
                let Some(usual) = usual_of(tl, tr, inside) else {
                    return false;
                };
                let ok = n as f64 >= factor * usual;
                if ok && worst.is_none_or(|(m, _)| n > m) {
                    worst = Some((n, usual));
                }
                ok
            },
        );
        for (l, r) in runs {
            let ts = &list[l..=r];
            let n = ts.iter().map(other).collect::<HashSet<_>>().len();
            let usual = worst.map_or(0.0, |x| x.1);
            let summary = format!(
                "{n} distinct {word} {center} within {w}s against a usual {usual:.1} per window ({} transfers)",
                ts.len()
            );
            // The bar: the minimum, or the burst factor times the usual degree.
            let bar = (min_n..=n.max(min_n))
                .find(|k| *k as f64 >= factor * usual)
                .unwrap_or(n)
                .max(min_n);
            out.push(PatternInstance::new(
                kind,
                strength(n, bar),
                *center,
                ts,
                summary,
            ));
        }
    }
    out
}

fn scatter_gather(ix: &Index<'_>, p: &PatternParams) -> Vec<PatternInstance> {
    let mut out = Vec::new();
    let min = p.sg_min_branches;
    for (src, list) in &ix.out {
        let list: Vec<&Transfer> = list.iter().copied().filter(|t| amount_ok(t, p)).collect();
        for (l, r) in windows(&list, |t| t.time.0, |t| t.to, p.fan_window_secs, min) {
            let scatter = &list[l..=r];
            let mids: BTreeSet<Address> = scatter.iter().map(|t| t.to).collect();
            let start = scatter.first().map(|t| t.key);
            let end = scatter
                .last()
                .map(|t| t.time.0.saturating_add(p.sg_window_secs))
                .unwrap_or(0);
            // receiver -> (intermediates, transfers)
            let mut gather: BTreeMap<Address, (BTreeSet<Address>, Vec<&Transfer>)> =
                BTreeMap::new();
            for m in &mids {
                for t in ix.outgoing(m) {
                    if Some(t.key) > start
                        && t.time.0 <= end
                        && t.to != *src
                        && !mids.contains(&t.to)
                        && amount_ok(t, p)
                    {
                        let e = gather.entry(t.to).or_default();
                        e.0.insert(*m);
                        e.1.push(t);
                    }
                }
            }
            for (dst, (via, gts)) in gather {
                if via.len() < min {
                    continue;
                }
                let mut ev: Vec<&Transfer> = scatter
                    .iter()
                    .copied()
                    .filter(|t| via.contains(&t.to))
                    .collect();
                ev.extend(gts);
                let summary = format!(
                    "{src} scattered to {} addresses that gathered into {dst}",
                    via.len()
                );
                out.push(PatternInstance::new(
                    PatternKind::ScatterGather,
                    strength(via.len(), min),
                    *src,
                    &ev,
                    summary,
                ));
            }
        }
    }
    out
}

fn gather_scatter(ix: &Index<'_>, p: &PatternParams) -> Vec<PatternInstance> {
    let mut out = Vec::new();
    let min = p.sg_min_branches;
    for (hub, list) in &ix.inc {
        let list: Vec<&Transfer> = list.iter().copied().filter(|t| amount_ok(t, p)).collect();
        for (l, r) in windows(&list, |t| t.time.0, |t| t.from, p.fan_window_secs, min) {
            let gather = &list[l..=r];
            let (Some(first), Some(last)) = (gather.first(), gather.last()) else {
                continue;
            };
            let end = last.time.0.saturating_add(p.sg_window_secs);
            let scatter: Vec<&Transfer> = ix
                .outgoing(hub)
                .iter()
                .copied()
                .filter(|t| t.key > first.key && t.time.0 <= end && amount_ok(t, p))
                .collect();
            let receivers: BTreeSet<Address> = scatter.iter().map(|t| t.to).collect();
            if receivers.len() < min {
                continue;
            }
            let senders: BTreeSet<Address> = gather.iter().map(|t| t.from).collect();
            let mut ev: Vec<&Transfer> = gather.to_vec();
            ev.extend(scatter);
            let n = senders.len().min(receivers.len());
            let summary = format!(
                "{} senders gathered into {hub}, which scattered to {} receivers",
                senders.len(),
                receivers.len()
            );
            out.push(PatternInstance::new(
                PatternKind::GatherScatter,
                strength(n, min),
                *hub,
                &ev,
                summary,
            ));
        }
    }
    out
}

fn pass_through(ix: &Index<'_>, p: &PatternParams) -> Vec<PatternInstance> {
    let mut out = Vec::new();
    let ppm = Amount::from_u64(u64::from(p.pass_min_forwarded_ppm.min(1_000_000)));
    let over = Amount::from_u64(
        2_000_000u64.saturating_sub(u64::from(p.pass_min_forwarded_ppm.min(1_000_000))),
    );
    let million = Amount::from_u64(1_000_000);
    let sum = |v: &[&Transfer]| {
        v.iter()
            .try_fold(Amount::ZERO, |a, t| a.checked_add(t.amount))
            .ok()
    };
    for (addr, all_in) in &ix.inc {
        let all_out = ix.outgoing(addr);
        if all_out.is_empty() {
            continue;
        }
        let assets: BTreeSet<paytrace_indexer::Asset> = all_in.iter().map(|t| t.asset).collect();
        let mut ev: Vec<&Transfer> = Vec::new();
        let mut matched = 0usize;
        let mut episodes = 0usize;
        let mut speed = 0.0f64;
        for asset in assets {
            let ins: Vec<&Transfer> = all_in
                .iter()
                .copied()
                .filter(|t| t.asset == asset)
                .collect();
            let outs: Vec<&Transfer> = all_out
                .iter()
                .copied()
                .filter(|t| t.asset == asset)
                .collect();
            let mut i = 0;
            while i < ins.len() {
                let start = ins[i];
                let end = start.time.0.saturating_add(p.pass_window_secs);
                let outs_w: Vec<&Transfer> = outs
                    .iter()
                    .copied()
                    .filter(|t| t.key > start.key && t.time.0 <= end)
                    .collect();
                let Some(last) = outs_w.last() else {
                    i += 1;
                    continue;
                };
                let ins_w: Vec<&Transfer> = ins[i..]
                    .iter()
                    .copied()
                    .take_while(|t| t.key < last.key)
                    .collect();
                let (Some(received), Some(forwarded)) = (sum(&ins_w), sum(&outs_w)) else {
                    i += 1;
                    continue;
                };
                let lo = mul_div_floor(received, ppm, million).unwrap_or(received);
                let hi = mul_div_floor(received, over, million).unwrap_or(received);
                if !received.is_zero() && forwarded >= lo && forwarded <= hi {
                    matched += ins_w.len();
                    episodes += 1;
                    let elapsed = last.time.0.saturating_sub(start.time.0);
                    speed += 1.0 - elapsed as f64 / p.pass_window_secs.max(1) as f64;
                    i += ins_w.len().max(1);
                    ev.extend(ins_w);
                    ev.extend(outs_w);
                } else {
                    i += 1;
                }
            }
        }
        if episodes == 0 {
            continue;
        }
        let share = matched as f64 / all_in.len() as f64;
        let score = 0.5 * share + 0.5 * (speed / episodes as f64);
        let summary = format!(
            "{addr} forwarded {matched} of {} receipts within {}s, little left behind",
            all_in.len(),
            p.pass_window_secs
        );
        out.push(PatternInstance::new(
            PatternKind::PassThrough,
            score,
            *addr,
            &ev,
            summary,
        ));
    }
    out
}

/// The peel step at the receiver of `t`: its outflows of the same asset within the window
/// after `t`, if one of them (to an address first funded by it) carries at least the major
/// share and there is at least one other output. Returns (major, minors).
fn peel_step<'a>(
    ix: &Index<'a>,
    p: &PatternParams,
    t: &'a Transfer,
) -> Option<(&'a Transfer, Vec<&'a Transfer>)> {
    let b = t.to;
    // Fresh: `t` is the first transfer into b.
    if ix.incoming(&b).first().map(|x| x.key) != Some(t.key) {
        return None;
    }
    let end = t.time.0.saturating_add(p.peel_window_secs);
    let outs: Vec<&Transfer> = ix
        .outgoing(&b)
        .iter()
        .copied()
        .filter(|o| o.key > t.key && o.time.0 <= end && o.asset == t.asset)
        .collect();
    // One spend: the outflows of the first transaction (UTXO), or up to the received amount.
    let first_tx: Option<TxHash> = outs.first().map(|o| o.tx_hash);
    let same_tx: Vec<&Transfer> = outs
        .iter()
        .copied()
        .filter(|o| Some(o.tx_hash) == first_tx)
        .collect();
    let spend: Vec<&Transfer> = if same_tx.len() >= 2 {
        same_tx
    } else {
        let mut sum = Amount::ZERO;
        let mut v = Vec::new();
        for o in outs {
            v.push(o);
            sum = sum.checked_add(o.amount).ok()?;
            if sum >= t.amount {
                break;
            }
        }
        v
    };
    if spend.len() < 2 {
        return None;
    }
    let total = spend
        .iter()
        .try_fold(Amount::ZERO, |a, o| a.checked_add(o.amount))
        .ok()?;
    let major = spend
        .iter()
        .copied()
        .max_by_key(|o| (o.amount, std::cmp::Reverse(o.key)))?;
    let need = mul_div_floor(
        total,
        Amount::from_u64(u64::from(p.peel_min_major_ppm)),
        Amount::from_u64(1_000_000),
    )
    .ok()?;
    if major.amount < need || major.to == t.from {
        return None;
    }
    let minors = spend
        .into_iter()
        .filter(|o| o.key != major.key)
        .collect::<Vec<_>>();
    Some((major, minors))
}

fn peel(ix: &Index<'_>, p: &PatternParams) -> Vec<PatternInstance> {
    // next[t] = the peel step at t's receiver.
    let mut next: HashMap<paytrace_indexer::TransferKey, (&Transfer, Vec<&Transfer>)> =
        HashMap::new();
    let mut is_major: HashSet<paytrace_indexer::TransferKey> = HashSet::new();
    let mut starts: Vec<&Transfer> = Vec::new();
    for list in ix.inc.values() {
        if let Some(t) = list.first()
            && let Some(step) = peel_step(ix, p, t)
        {
            is_major.insert(step.0.key);
            next.insert(t.key, step);
            starts.push(t);
        }
    }
    starts.sort_by_key(|t| t.key);
    let mut out = Vec::new();
    for s in starts {
        if is_major.contains(&s.key) {
            continue; // inside a chain, not its start
        }
        let mut ev: Vec<&Transfer> = vec![s];
        let mut hops = 0usize;
        let mut cur = s;
        let mut seen = HashSet::new();
        while let Some((major, minors)) = next.get(&cur.key) {
            if !seen.insert(major.key) {
                break;
            }
            hops += 1;
            ev.push(major);
            ev.extend(minors.iter().copied());
            cur = major;
        }
        if hops >= p.peel_min_hops {
            let summary = format!(
                "peeling chain of {hops} hops from {} ({} small outputs peeled off)",
                s.to,
                ev.len().saturating_sub(hops + 1)
            );
            out.push(PatternInstance::new(
                PatternKind::Peel,
                strength(hops, p.peel_min_hops),
                s.to,
                &ev,
                summary,
            ));
        }
    }
    out
}

/// At most this many DFS steps per start transfer of the cycle search.
const CYCLE_STEPS: usize = 5_000;

fn cycles(ix: &Index<'_>, p: &PatternParams) -> Vec<PatternInstance> {
    let mut out = Vec::new();
    let mut seen: HashSet<Vec<paytrace_indexer::TransferKey>> = HashSet::new();
    // Address sequences (from the smallest address) of the round trips found.
    let mut loops: HashSet<Vec<Address>> = HashSet::new();
    for (a, list) in &ix.out {
        for t0 in list {
            let end = t0.time.0.saturating_add(p.cycle_window_secs);
            let mut path: Vec<&Transfer> = vec![t0];
            let mut steps = 0usize;
            dfs(ix, p, *a, end, &mut path, &mut steps, &mut |cyc| {
                // Report each cycle once: its transfers in time order have exactly one
                // rotation that respects time, found from the address where it starts.
                let keys: Vec<_> = cyc.iter().map(|t| t.key).collect();
                if seen.insert(keys) {
                    // The address sequence from its smallest address (as closed loops name it).
                    let mut seq: Vec<Address> = cyc.iter().map(|t| t.from).collect();
                    if let Some(i) = seq.iter().enumerate().min_by_key(|x| x.1).map(|x| x.0) {
                        seq.rotate_left(i);
                    }
                    loops.insert(seq);
                    let summary = format!(
                        "round trip: value left {a} and returned through {} transfers",
                        cyc.len()
                    );
                    let mut i = PatternInstance::new(
                        PatternKind::Cycle,
                        1.0 / (cyc.len() as f64 - 1.0).max(1.0),
                        *a,
                        cyc,
                        summary,
                    );
                    i.cycle_kind = Some(CycleKind::RoundTrip);
                    out.push(i);
                }
            });
        }
    }
    out.extend(closed_loops(ix, p, &loops));
    out
}

/// Closed loops of value: a simple directed cycle of addresses `a → v1 → … → a` (`a` its
/// smallest address, at most `cycle_max_len` edges) in which every edge carries a transfer
/// within one window of `cycle_window_secs`, in any time order. Loops whose address sequence
/// is also a round trip are not repeated. Score: half the round trip's.
fn closed_loops(
    ix: &Index<'_>,
    p: &PatternParams,
    round_trips: &HashSet<Vec<Address>>,
) -> Vec<PatternInstance> {
    // One asset at a time: a loop moves one asset (see the round trips).
    let assets: BTreeSet<Asset> = ix.out.values().flatten().map(|t| t.asset).collect();
    let mut out = Vec::new();
    for asset in assets {
        out.extend(closed_loops_of(ix, p, round_trips, asset));
    }
    out
}

/// [`closed_loops`] of the transfers of one asset.
fn closed_loops_of(
    ix: &Index<'_>,
    p: &PatternParams,
    round_trips: &HashSet<Vec<Address>>,
    asset: Asset,
) -> Vec<PatternInstance> {
    let mut pairs: HashMap<(Address, Address), Vec<&Transfer>> = HashMap::new();
    let mut succ: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    for (a, list) in &ix.out {
        for t in list.iter().filter(|t| t.asset == asset) {
            let e = pairs.entry((*a, t.to)).or_default();
            if e.is_empty() {
                succ.entry(*a).or_default().push(t.to);
            }
            e.push(t);
        }
    }
    for v in succ.values_mut() {
        v.sort();
    }
    let mut out = Vec::new();
    for &a in succ.keys() {
        let mut path = vec![a];
        let mut steps = 0usize;
        let mut found: Vec<Vec<Address>> = Vec::new();
        loop_dfs(&succ, p.cycle_max_len, &mut path, &mut steps, &mut found);
        for nodes in found {
            if round_trips.contains(&nodes) {
                continue;
            }
            let edges: Vec<&Vec<&Transfer>> = nodes
                .iter()
                .zip(nodes.iter().cycle().skip(1))
                .filter_map(|(f, t)| pairs.get(&(*f, *t)))
                .collect();
            if edges.len() != nodes.len() {
                continue;
            }
            let Some(ev) = covering_window(&edges, p.cycle_window_secs) else {
                continue;
            };
            let summary = format!(
                "closed loop: {} addresses from {a} passed value around within {}s, in no time order",
                nodes.len(),
                p.cycle_window_secs
            );
            let mut i = PatternInstance::new(
                PatternKind::Cycle,
                0.5 / (nodes.len() as f64 - 1.0).max(1.0),
                a,
                &ev,
                summary,
            );
            i.cycle_kind = Some(CycleKind::ClosedLoop);
            out.push(i);
        }
    }
    out
}

/// Simple cycles through `path[0]` whose other addresses are all larger than it.
fn loop_dfs(
    succ: &BTreeMap<Address, Vec<Address>>,
    max_len: usize,
    path: &mut Vec<Address>,
    steps: &mut usize,
    found: &mut Vec<Vec<Address>>,
) {
    let (Some(&start), Some(&last)) = (path.first(), path.last()) else {
        return;
    };
    for &v in succ.get(&last).map(Vec::as_slice).unwrap_or_default() {
        *steps += 1;
        if *steps > CYCLE_STEPS {
            return;
        }
        if v == start {
            if path.len() >= 2 {
                found.push(path.clone());
            }
            continue;
        }
        if v < start || path.len() >= max_len || path.contains(&v) {
            continue;
        }
        path.push(v);
        loop_dfs(succ, max_len, path, steps, found);
        path.pop();
    }
}

/// The shortest time span holding a transfer of every edge, if at most `window` long: one
/// transfer per edge (the earliest of that edge inside the span).
fn covering_window<'a>(edges: &[&Vec<&'a Transfer>], window: u64) -> Option<Vec<&'a Transfer>> {
    let mut all: Vec<(u64, usize, &'a Transfer)> = edges
        .iter()
        .enumerate()
        .flat_map(|(i, v)| v.iter().map(move |t| (t.time.0, i, *t)))
        .collect();
    all.sort_by_key(|x| (x.0, x.2.key));
    let k = edges.len();
    let mut count = vec![0usize; k];
    let mut covered = 0usize;
    let mut best: Option<(u64, usize, usize)> = None;
    let mut l = 0usize;
    for r in 0..all.len() {
        let e = all[r].1;
        if count[e] == 0 {
            covered += 1;
        }
        count[e] += 1;
        while covered == k {
            let span = all[r].0.saturating_sub(all[l].0);
            if best.is_none_or(|b| span < b.0) {
                best = Some((span, l, r));
            }
            let e = all[l].1;
            count[e] -= 1;
            if count[e] == 0 {
                covered -= 1;
            }
            l += 1;
        }
    }
    let (span, l, r) = best?;
    if span > window {
        return None;
    }
    let mut pick: Vec<Option<&Transfer>> = vec![None; k];
    for x in &all[l..=r] {
        if pick[x.1].is_none() {
            pick[x.1] = Some(x.2);
        }
    }
    pick.into_iter().collect()
}

fn dfs<'a>(
    ix: &Index<'a>,
    p: &PatternParams,
    start: Address,
    end: u64,
    path: &mut Vec<&'a Transfer>,
    steps: &mut usize,
    found: &mut dyn FnMut(&[&'a Transfer]),
) {
    let Some(last) = path.last().copied() else {
        return;
    };
    let asset = path.first().map_or(last.asset, |t| t.asset);
    for t in ix.outgoing(&last.to) {
        if t.key <= last.key {
            continue;
        }
        if t.time.0 > end {
            break;
        }
        // A cycle moves one asset: value that leaves in one asset and comes back in another
        // was traded (a swap at a DEX, goods paid back in kind), it did not return.
        if t.asset != asset {
            continue;
        }
        *steps += 1;
        if *steps > CYCLE_STEPS {
            return;
        }
        if t.to == start {
            path.push(t);
            found(path);
            path.pop();
            continue;
        }
        if path.len() + 1 >= p.cycle_max_len || path.iter().any(|x| x.from == t.to) {
            continue;
        }
        path.push(t);
        dfs(ix, p, start, end, path, steps, found);
        path.pop();
    }
}

fn structuring(ix: &Index<'_>, p: &PatternParams) -> Vec<PatternInstance> {
    let mut out = Vec::new();
    if !p.has_structuring_threshold() {
        return out;
    }
    // (lower bound, threshold) per asset.
    let mut bounds: HashMap<Asset, Option<(Amount, Amount)>> = HashMap::new();
    let mut bound = |a: &Asset| {
        *bounds.entry(*a).or_insert_with(|| {
            let thr = p.structuring_threshold_of(a)?;
            let margin = mul_div_floor(
                thr,
                Amount::from_u64(u64::from(p.structuring_margin_ppm.min(1_000_000))),
                Amount::from_u64(1_000_000),
            )
            .unwrap_or(Amount::ZERO);
            Some((thr.saturating_sub(margin), thr))
        })
    };
    for (sender, all) in &ix.out {
        let mut by_asset: BTreeMap<Asset, Vec<&Transfer>> = BTreeMap::new();
        for t in all {
            if let Some((lo, thr)) = bound(&t.asset)
                && t.amount >= lo
                && t.amount < thr
            {
                by_asset.entry(t.asset).or_default().push(t);
            }
        }
        for (asset, list) in by_asset {
            let Some((lo, thr)) = bound(&asset) else {
                continue;
            };
            // Count transfers, not distinct receivers: key each by its own position.
            let keyed: Vec<(usize, &Transfer)> = list.iter().copied().enumerate().collect();
            let key = |x: &(usize, &Transfer)| {
                let mut b = [0u8; 20];
                b[12..].copy_from_slice(&u64::try_from(x.0).unwrap_or(u64::MAX).to_be_bytes());
                Address::Evm(b)
            };
            for (l, r) in windows(
                &keyed,
                |x| x.1.time.0,
                key,
                p.structuring_window_secs,
                p.structuring_min_count,
            ) {
                let ts: Vec<&Transfer> = keyed[l..=r].iter().map(|x| x.1).collect();
                let summary = format!(
                    "{sender} sent {} amounts in [{}, {}) within {}s",
                    ts.len(),
                    p.assets.format(&asset, lo),
                    p.assets.format(&asset, thr),
                    p.structuring_window_secs
                );
                out.push(PatternInstance::new(
                    PatternKind::Structuring,
                    strength(ts.len(), p.structuring_min_count),
                    *sender,
                    &ts,
                    summary,
                ));
            }
        }
    }
    out
}
