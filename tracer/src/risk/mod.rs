//! Risk screening of an address: direct exposure (its own counterparties by category),
//! indirect exposure (value from/to categories within N hops under the haircut taint model,
//! stopping at services), typology patterns around it, and its own labels, all as of a date;
//! scored into a level (severe/high/medium/low/none) with reasons and evidence.
//!
//! Pure over [`FlowSource`] and [`LabelHistory`]; the scoring rules are in
//! docs/heuristics.md ("Risk scoring").

mod bulk;
mod labels;
mod score;
mod utxo;

pub use crate::cache::CachedSource;

pub use bulk::{screen_all, screen_each};

pub use labels::{
    AsOfLabels, LabelHistory, LabelSpan, MemoryLabelHistory, StoreLabelHistory, day_of, held_at,
};
pub use score::{RiskLevel, Scoring, UnknownLevel};

use crate::{
    BackSeed, EvidencePath, Model, Seed, StopList, TraceError, TraceParams,
    patterns::{EvidenceTransfer, PatternInstance, PatternKind, PatternParams, detect},
    result::ser_display,
    source::{Category, FlowSource, LabelSource},
    trace_backward, trace_forward,
};
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, Direction, Timestamp, Transfer, labels::Date,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// What a screening looks at.
#[derive(Clone, Debug)]
pub struct ScreenParams {
    /// The day the screening is as of: transfers up to the end of that day, labels valid that
    /// day.
    pub as_of: Date,
    /// Indirect exposure: hops after the direct counterparty (the direct counterparty is hop 0).
    pub hops: u32,
    /// Only this chain.
    pub chain: Option<ChainId>,
    /// Categories where indirect tracing stops (services).
    pub services: StopList,
    /// Indirect: at most this many addresses expanded per trace.
    pub max_nodes: usize,
    /// Indirect received exposure: backward traces of at most this many incoming transfers
    /// (the largest).
    pub max_backward_seeds: usize,
    /// Detect patterns around the address (its own transfers and those of up to
    /// `pattern_neighbours` counterparties).
    pub patterns: Option<PatternParams>,
    /// Counterparties whose transfers are included in the pattern neighbourhood.
    pub pattern_neighbours: usize,
    /// Scoring.
    pub scoring: Scoring,
    /// Token units of the amounts in the reasons' text (an asset missing from it is shown
    /// in raw units with its address).
    pub assets: crate::report::AssetBook,
}

/// Default service (stop) categories of indirect exposure (`[risk] services`).
pub use paytrace_config::DEFAULT_SERVICES;

impl ScreenParams {
    /// The defaults of `[risk]` (`paytrace_config::RiskConfig::default`, the one place they
    /// are set) as of `as_of`; the binary maps a config through `paytrace_app::params`.
    pub fn new(as_of: Date) -> Self {
        let d = paytrace_config::RiskConfig::default();
        Self {
            as_of,
            hops: d.hops,
            chain: None,
            services: StopList::new(d.services.iter().map(String::as_str)),
            max_nodes: d.max_nodes,
            max_backward_seeds: d.max_backward_seeds,
            patterns: d.patterns.then(PatternParams::default),
            pattern_neighbours: 10,
            scoring: Scoring::default(),
            assets: crate::report::AssetBook::new(),
        }
    }
}

/// Sent or received.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Value the address sent (to the category).
    Sent,
    /// Value the address received (from the category).
    Received,
}

/// Direct or indirect.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureKind {
    /// The address's own counterparty.
    Direct,
    /// Reached within N hops.
    Indirect,
}

/// Exposure of the address to one category, in one direction and asset.
#[derive(Clone, Debug, Serialize)]
pub struct Exposure {
    /// Direct or indirect.
    pub kind: ExposureKind,
    /// Sent or received.
    pub direction: Flow,
    /// Category of the counterparties (as of the screening date).
    pub category: Category,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Raw amount (direct: whole transfers; indirect: taint under the haircut model).
    pub amount: Amount,
    /// Share of the address's sent (or received) total of the asset, 0..1.
    pub share: f64,
    /// Number of transfers (direct) or destinations (indirect).
    pub transfers: usize,
    /// The counterparties (at most 10), sorted.
    pub counterparties: Vec<Address>,
    /// Minimum hops (0 for direct).
    pub hops: u32,
    /// First transfer time.
    pub first_time: Timestamp,
    /// Last transfer time.
    pub last_time: Timestamp,
    /// Whether the counterparty already had this category at the time of the (first)
    /// transfer. `false`: it was labelled later (e.g. sanctioned after the payout).
    pub labelled_at_time: bool,
    /// Earliest day a label of this category on a counterparty starts, when known.
    pub listed_since: Option<String>,
    /// Score contribution 0..100.
    pub score: f64,
    /// Evidence transfers (direct; at most 5).
    pub evidence: Vec<EvidenceTransfer>,
    /// Evidence paths (indirect; at most 3).
    pub paths: Vec<EvidencePath>,
    /// Indirect sent exposure to a category of at least `network_min_severity`: the amount the
    /// same trace under FIFO gives (shown with the haircut amount when they disagree; the
    /// smaller is the weaker signal). `None` when not computed.
    pub fifo_amount: Option<Amount>,
}

impl Exposure {
    /// An exposure with nothing added yet.
    fn empty(
        kind: ExposureKind,
        direction: Flow,
        category: Category,
        asset: Asset,
        hops: u32,
        time: Timestamp,
    ) -> Self {
        Self {
            kind,
            direction,
            category,
            asset,
            amount: Amount::ZERO,
            share: 0.0,
            transfers: 0,
            counterparties: Vec::new(),
            hops,
            first_time: time,
            last_time: time,
            labelled_at_time: false,
            listed_since: None,
            score: 0.0,
            evidence: Vec::new(),
            paths: Vec::new(),
            fifo_amount: None,
        }
    }

    /// Adds one transfer (or trace destination) of `amount` at `time`; `held` says whether the
    /// label held then, `since` when it started to (if later).
    fn add(
        &mut self,
        amount: Amount,
        time: Timestamp,
        held: bool,
        since: Option<impl ToString>,
    ) -> Result<(), TraceError> {
        self.amount = self.amount.checked_add(amount)?;
        self.transfers += 1;
        self.first_time = self.first_time.min(time);
        self.last_time = self.last_time.max(time);
        self.labelled_at_time |= held;
        if let Some(s) = since {
            let s = s.to_string();
            if self.listed_since.as_ref().is_none_or(|x| s < *x) {
                self.listed_since = Some(s);
            }
        }
        Ok(())
    }
}

/// What kind of fact a reason is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// The address's own label.
    Label,
    /// Direct exposure (its own counterparty).
    Direct,
    /// Indirect exposure (within the hop limit, haircut taint).
    Indirect,
    /// A pattern the address itself performs.
    Pattern,
    /// Network context: a counterparty wallet that consolidates several payees' salaries or
    /// sends a material share of its funds to high-risk addresses.
    Network,
    /// A payout report's convergence finding or payee cluster (reports built without
    /// screening only).
    Convergence,
}

impl ReasonKind {
    /// The stable snake_case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Label => "label",
            Self::Direct => "direct",
            Self::Indirect => "indirect",
            Self::Pattern => "pattern",
            Self::Network => "network",
            Self::Convergence => "convergence",
        }
    }
}

impl PartialEq<&str> for ReasonKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// "1 hop", "3 hops": the one wording of distances in every output. A hop is one transfer: an
/// address's direct counterparty is 1 hop away.
pub fn hops_text(n: u32) -> String {
    if n == 1 {
        "1 hop".to_owned()
    } else {
        format!("{n} hops")
    }
}

/// One reason for the level.
#[derive(Clone, Debug, Serialize)]
pub struct Reason {
    /// What kind of fact it is.
    pub kind: ReasonKind,
    /// Category (labels and exposures) or pattern type.
    pub category: String,
    /// Score 0..100.
    pub score: f64,
    /// Level of this reason alone.
    pub level: RiskLevel,
    /// What was found, in words.
    pub text: String,
    /// Counterparty or destination addresses behind it (at most 10).
    pub addresses: Vec<Address>,
    /// Whether the labels behind it held at the time of the transfers (`false` when the
    /// counterparty was labelled afterwards).
    pub labelled_at_time: bool,
}

/// Work counters.
#[derive(Clone, Copy, Default, Debug, Serialize)]
pub struct ScreenStats {
    /// Transfers of the address read.
    pub own_transfers: usize,
    /// Traces run (forward + backward).
    pub traces: usize,
    /// Addresses expanded by the traces.
    pub expanded_addresses: usize,
    /// Transfers read by the traces.
    pub transfers_read: usize,
}

/// The result of screening one address.
#[derive(Clone, Debug, Serialize)]
pub struct ScreenResult {
    /// The address.
    pub address: Address,
    /// Day the screening is as of.
    pub as_of: String,
    /// Risk level.
    pub level: RiskLevel,
    /// Score 0..100 (the highest reason).
    pub score: f64,
    /// Reasons, highest score first.
    pub reasons: Vec<Reason>,
    /// The address's own labels valid on `as_of`.
    pub labels: Vec<String>,
    /// Direct exposures.
    pub direct: Vec<Exposure>,
    /// Indirect exposures.
    pub indirect: Vec<Exposure>,
    /// Patterns the address itself performs (and is no service doing what services do).
    pub patterns: Vec<PatternInstance>,
    /// Network context: counterparty wallets that consolidate payees' salaries or send a
    /// material share to high-risk addresses.
    pub network: Vec<NetworkFinding>,
    /// Hop limit of indirect exposure.
    pub hops: u32,
    /// Label set version.
    pub label_set_version: Option<String>,
    /// Work counters.
    pub stats: ScreenStats,
    /// Every address the address's outflows reached within the hop limit, with its hops (the
    /// direct receiver is 0), services left out; used by convergence rules, not serialised.
    #[serde(skip)]
    pub reached: Vec<(Address, u32)>,
}

/// The last second of `day` (UTC) as a block time.
pub fn end_of_day(day: Date) -> Timestamp {
    let secs = day
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp().as_second())
        .unwrap_or(0);
    Timestamp(u64::try_from(secs).unwrap_or(0).saturating_add(86_399))
}

/// `a / b` as a float (0 when `b` is zero), exact enough for shares.
pub fn ratio(a: Amount, b: Amount) -> f64 {
    if b.is_zero() {
        return 0.0;
    }
    let shift = b.raw().bit_len().saturating_sub(100);
    let a: u128 = (a.raw() >> shift).saturating_to();
    let b: u128 = (b.raw() >> shift).saturating_to();
    if b == 0 {
        return 0.0;
    }
    a as f64 / b as f64
}

/// Screens `address`.
pub fn screen<S: FlowSource, H: LabelHistory>(
    src: &S,
    history: &H,
    address: &Address,
    p: &ScreenParams,
) -> Result<ScreenResult, TraceError> {
    let sev = &p.scoring.severities;
    let labels = AsOfLabels::new(history, p.as_of, sev);
    let until = end_of_day(p.as_of);
    let mut stats = ScreenStats::default();
    let read = |dir| -> Result<Vec<Transfer>, TraceError> {
        Ok(src
            .address_transfers(address, dir, p.chain)
            .map_err(TraceError::source)?
            .into_iter()
            .filter(|t| t.time <= until)
            .collect())
    };
    let ins = read(Direction::Incoming)?;
    let outs = read(Direction::Outgoing)?;
    stats.own_transfers = ins.len() + outs.len();

    let mut reasons = Vec::new();
    // Own labels.
    let own = labels.valid(address)?;
    for s in &own {
        let score = f64::from(p.scoring.severity(&s.category));
        if score > 0.0 {
            reasons.push(Reason {
                kind: ReasonKind::Label,
                category: s.category.to_string(),
                score,
                level: p.scoring.level(score),
                text: format!("the address itself is labelled {}: {}", s.category, s.name),
                addresses: vec![*address],
                labelled_at_time: true,
            });
        }
    }

    // A Bitcoin address is screened through its transaction nodes (risk/utxo.rs).
    // Its transfers with its real counterparties are what it sent and received: shares of
    // exposures are of their totals (change excluded).
    let utxo = utxo::is_utxo_holder(address);
    let (sent, received) = if utxo {
        let keep = |t: &Transfer| t.time <= until;
        (
            utxo::through_tx_nodes(src, address, &outs, Flow::Sent, p.chain, &keep)?,
            utxo::through_tx_nodes(src, address, &ins, Flow::Received, p.chain, &keep)?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let (sent, received): (&[Transfer], &[Transfer]) = if utxo {
        (&sent, &received)
    } else {
        (&outs, &ins)
    };
    let mut direct = Vec::new();
    for (flow, list) in [(Flow::Sent, sent), (Flow::Received, received)] {
        direct.extend(direct_exposure(history, &labels, p, flow, list)?);
    }
    let mut indirect = Vec::new();
    let mut reached = Vec::new();
    let mut network = Vec::new();
    if p.hops > 0 {
        let (fwd, r, wallets) = forward_exposure(
            src, history, &labels, p, address, &outs, sent, until, utxo, &mut stats,
        )?;
        indirect.extend(fwd);
        reached = r;
        network = network_context(
            src, history, &labels, p, address, &ins, &wallets, until, &mut stats,
        )?;
        reasons.extend(network.iter().map(|n| n.reason(p)));
        // A Bitcoin address's change (outputs of transactions it spent in) is its own value,
        // not value received: no backward seed.
        let seeds: std::borrow::Cow<'_, [Transfer]> = if utxo {
            ins.iter()
                .filter(|t| !outs.iter().any(|o| o.to == t.from))
                .cloned()
                .collect()
        } else {
            std::borrow::Cow::Borrowed(&ins)
        };
        indirect.extend(backward_exposure(
            src, history, &labels, p, &seeds, received, until, utxo, &mut stats,
        )?);
    }
    for e in direct.iter_mut().chain(indirect.iter_mut()) {
        e.score = p.scoring.exposure_score(e, until);
        if e.score > 0.0 {
            reasons.push(exposure_reason(e, p));
        }
    }

    let mut patterns = Vec::new();
    if let Some(pp) = &p.patterns {
        let mut hood: Vec<Transfer> = ins.iter().chain(outs.iter()).cloned().collect();
        // The largest counterparties' own transfers (peel chains, cycles, scatter-gather).
        let mut cps: Vec<(Amount, Address)> = ins
            .iter()
            .map(|t| (t.amount, t.from))
            .chain(outs.iter().map(|t| (t.amount, t.to)))
            .collect();
        cps.sort_by(|a, b| b.cmp(a));
        let mut seen = BTreeSet::new();
        for (_, c) in cps {
            if seen.len() >= p.pattern_neighbours {
                break;
            }
            if c == *address || labels.category(&c).is_some() || !seen.insert(c) {
                continue;
            }
            for dir in [Direction::Incoming, Direction::Outgoing] {
                hood.extend(
                    src.address_transfers(&c, dir, p.chain)
                        .map_err(TraceError::source)?
                        .into_iter()
                        .filter(|t| t.time <= until),
                );
            }
        }
        hood.sort_by_key(|t| t.key);
        hood.dedup_by_key(|t| t.key);
        let rep = detect(&hood, pp);
        for inst in rep.instances {
            if !counts_for(&inst, address, &labels, &p.services) {
                continue;
            }
            let score = inst.score * p.scoring.pattern_weight;
            reasons.push(Reason {
                kind: ReasonKind::Pattern,
                category: inst.kind.to_string(),
                score,
                level: p.scoring.level(score),
                text: inst.summary.clone(),
                addresses: inst.members.iter().take(10).copied().collect(),
                labelled_at_time: true,
            });
            patterns.push(inst);
        }
    }

    // A label read that failed inside the trace engines (they see "no label") fails the
    // screening: an unreadable sanctions label must never pass as unlabelled.
    if let Some(e) = labels.take_failure() {
        return Err(TraceError::Labels(e));
    }
    reasons.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.text.cmp(&b.text)));
    // Several instances of one pattern (e.g. the same gather-scatter in overlapping windows) read
    // the same in words: keep the highest-scored reason of each text once (the instances
    // themselves stay in `patterns`).
    let mut seen = BTreeSet::new();
    reasons.retain(|r| seen.insert((r.kind, r.category.clone(), r.text.clone())));
    let score = reasons.first().map(|r| r.score).unwrap_or(0.0);
    Ok(ScreenResult {
        address: *address,
        as_of: p.as_of.to_string(),
        level: p.scoring.level(score),
        score,
        reasons,
        labels: own.into_iter().map(|s| s.name).collect(),
        direct,
        indirect,
        patterns,
        network,
        hops: p.hops,
        label_set_version: history.version(),
        stats,
        reached,
    })
}

fn exposure_reason(e: &Exposure, p: &ScreenParams) -> Reason {
    let dir = match e.direction {
        Flow::Sent => "sent to",
        Flow::Received => "received from",
    };
    let when = if e.labelled_at_time {
        String::new()
    } else {
        format!(
            "; labelled {} only since {} (after the transfers)",
            e.category,
            e.listed_since.as_deref().unwrap_or("a later date")
        )
    };
    let models = match e.fifo_amount {
        Some(f) if f != e.amount => format!(
            "; FIFO gives {}, haircut {}: {} is the weaker signal",
            p.assets.format(&e.asset, f),
            p.assets.format(&e.asset, e.amount),
            if f < e.amount { "FIFO" } else { "haircut" }
        ),
        _ => String::new(),
    };
    let floor = if e.kind == ExposureKind::Indirect && e.share < p.scoring.min_share {
        format!(
            "; below the {:.2}% materiality floor",
            p.scoring.min_share * 100.0
        )
    } else {
        String::new()
    };
    let text = match e.kind {
        ExposureKind::Direct => format!(
            "directly {dir} {} {} ({}, {} transfers, {}, {:.2}% of the total){when}",
            e.counterparties.len(),
            e.category,
            hops_text(1),
            e.transfers,
            p.assets.format(&e.asset, e.amount),
            e.share * 100.0
        ),
        ExposureKind::Indirect => format!(
            "indirectly {dir} {} within {} ({}, {:.2}% of the total){when}{floor}{models}",
            e.category,
            hops_text(e.hops.saturating_add(1)),
            p.assets.format(&e.asset, e.amount),
            e.share * 100.0
        ),
    };
    Reason {
        kind: match e.kind {
            ExposureKind::Direct => ReasonKind::Direct,
            ExposureKind::Indirect => ReasonKind::Indirect,
        },
        category: e.category.to_string(),
        score: e.score,
        level: p.scoring.level(e.score),
        text,
        addresses: e.counterparties.clone(),
        labelled_at_time: e.labelled_at_time,
    }
}

fn totals(list: &[Transfer]) -> Result<BTreeMap<Asset, Amount>, TraceError> {
    let mut m: BTreeMap<Asset, Amount> = BTreeMap::new();
    for t in list {
        let e = m.entry(t.asset).or_default();
        *e = e.checked_add(t.amount)?;
    }
    Ok(m)
}

fn direct_exposure<H: LabelHistory>(
    history: &H,
    labels: &AsOfLabels<'_, H>,
    p: &ScreenParams,
    flow: Flow,
    list: &[Transfer],
) -> Result<Vec<Exposure>, TraceError> {
    let tot = totals(list)?;
    let mut by: BTreeMap<(Category, Asset), Exposure> = BTreeMap::new();
    for t in list {
        let cp = match flow {
            Flow::Sent => t.to,
            Flow::Received => t.from,
        };
        let Some(cat) = labels.category(&cp) else {
            continue;
        };
        let (held, since) = held_at(&history.spans(&cp)?, &cat, t.time);
        let e = by.entry((cat.clone(), t.asset)).or_insert_with(|| {
            Exposure::empty(ExposureKind::Direct, flow, cat, t.asset, 0, t.time)
        });
        e.add(t.amount, t.time, held, since)?;
        if !e.counterparties.contains(&cp) && e.counterparties.len() < 10 {
            e.counterparties.push(cp);
        }
        if e.evidence.len() < 5 {
            e.evidence.push(EvidenceTransfer::from(t));
        }
    }
    let _ = p;
    Ok(by
        .into_values()
        .map(|mut e| {
            e.share = ratio(e.amount, tot.get(&e.asset).copied().unwrap_or_default());
            e.counterparties.sort();
            e
        })
        .collect())
}

/// `min_share` of `total`, rounded down: taint below it cannot make an exposure that counts,
/// so traces do not follow it (docs/heuristics.md, "Risk scoring").
fn share_of(total: Amount, min_share: f64) -> Amount {
    let ppm = (min_share.clamp(0.0, 1.0) * 1_000_000.0).floor();
    // ppm is in 0..=1e6, exact in f64; the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ppm = ppm as u64;
    crate::model::mul_div_floor(total, Amount::from_u64(ppm), Amount::from_u64(1_000_000))
        .unwrap_or(Amount::ZERO)
}

/// [`trace_params`] of an indirect trace in direction `flow`, from a Bitcoin address when
/// `utxo` (whose transaction nodes the engines count as hops: the limit reaches as far in
/// addresses as from an EVM address).
fn trace_params_for(
    p: &ScreenParams,
    until: Timestamp,
    min_amount: Amount,
    flow: Flow,
    utxo: bool,
) -> TraceParams {
    let mut tp = trace_params(p, until, min_amount);
    if utxo {
        tp.max_hops = utxo::engine_max_hops(flow, p.hops);
    }
    tp
}

fn trace_params(p: &ScreenParams, until: Timestamp, min_amount: Amount) -> TraceParams {
    let swap = StopList::new(crate::source::DEFAULT_SWAP_CATEGORIES);
    // A swap contract is a service, but the value it converts is the screened party's: the
    // trace crosses it (its payouts in other assets within the same transaction carry the
    // value) instead of stopping there, as the payout report does.
    let stop = StopList::new(
        p.services
            .categories()
            .filter(|c| !swap.contains(c))
            .map(Category::as_str),
    );
    TraceParams {
        model: Model::Haircut,
        max_hops: p.hops,
        since: None,
        until: Some(until),
        min_amount,
        max_nodes: p.max_nodes,
        stop,
        max_paths: 10,
        chain: p.chain,
        swap,
    }
}

/// Shares of a forward trace's destinations in the screened address's outflow, across swaps:
/// in an asset the address sent, the amount over what it sent of that asset; in an asset a
/// swap converted its value into, the share of its outflow that entered swaps times the
/// destination's part of everything the trace carried in that asset (an upper bound when
/// value was swapped into several assets).
struct OutShares {
    sent: BTreeMap<Asset, Amount>,
    swapped: f64,
    produced: BTreeMap<Asset, Amount>,
}

impl OutShares {
    fn new(sent: BTreeMap<Asset, Amount>, r: &crate::TraceResult) -> Result<Self, TraceError> {
        let mut swapped = 0.0f64;
        let mut into: BTreeMap<Asset, Amount> = BTreeMap::new();
        let mut produced: BTreeMap<Asset, Amount> = BTreeMap::new();
        for d in &r.destinations {
            if sent.contains_key(&d.asset) {
                if d.status == crate::Status::Swapped {
                    let e = into.entry(d.asset).or_default();
                    *e = e.checked_add(d.amount)?;
                }
            } else if d.hops >= 1 {
                let end = match d.status {
                    crate::Status::Followed | crate::Status::Payee => d.held,
                    _ => d.amount,
                };
                let e = produced.entry(d.asset).or_default();
                *e = e.checked_add(end)?;
            }
        }
        for (a, v) in &into {
            swapped = swapped.max(ratio(*v, sent.get(a).copied().unwrap_or_default()));
        }
        Ok(Self {
            sent,
            swapped,
            produced,
        })
    }

    fn share(&self, asset: &Asset, amount: Amount) -> f64 {
        match self.sent.get(asset) {
            Some(t) => ratio(amount, *t),
            None => (self.swapped
                * ratio(
                    amount,
                    self.produced.get(asset).copied().unwrap_or_default(),
                ))
            .min(1.0),
        }
    }
}

/// Adds indirect destinations of a trace result (hops >= 1, labelled) into `by`.
#[allow(clippy::too_many_arguments)]
fn collect_indirect<H: LabelHistory>(
    history: &H,
    r: &crate::TraceResult,
    flow: Flow,
    utxo: bool,
    by: &mut BTreeMap<(Category, Asset), Exposure>,
) -> Result<(), TraceError> {
    for d in &r.destinations {
        let Some(cat) = &d.category else { continue };
        if d.amount.is_zero() {
            continue;
        }
        // Hops as from an EVM address (the direct counterparty is 0 and is direct exposure).
        let hops = if utxo {
            match utxo::indirect_hops(flow, d.hops) {
                Some(h) => h,
                None => continue,
            }
        } else if d.hops == 0 {
            continue;
        } else {
            d.hops
        };
        let spans = history.spans(&d.address)?;
        let (mut held, since) = held_at(&spans, cat, d.first_arrival);
        // As for direct exposure, the label counts as held at the time when any tainted
        // arrival (not only the first) happened while it held.
        if !held {
            held = r.edges.iter().any(|x| {
                let end = match flow {
                    Flow::Sent => x.to,
                    Flow::Received => x.from,
                };
                end == d.address
                    && x.asset == d.asset
                    && !x.tainted.is_zero()
                    && held_at(&spans, cat, x.time).0
            });
        }
        let e = by.entry((cat.clone(), d.asset)).or_insert_with(|| {
            Exposure::empty(
                ExposureKind::Indirect,
                flow,
                cat.clone(),
                d.asset,
                hops,
                d.first_arrival,
            )
        });
        e.hops = e.hops.min(hops);
        e.add(d.amount, d.first_arrival, held, since)?;
        if !e.counterparties.contains(&d.address) && e.counterparties.len() < 10 {
            e.counterparties.push(d.address);
        }
        for path in r.paths.iter().filter(|x| x.to == d.address) {
            if e.paths.len() < 3 {
                e.paths.push(path.clone());
            }
        }
    }
    Ok(())
}

/// Addresses reached with their hops.
type Reached = Vec<(Address, u32)>;

#[allow(clippy::too_many_arguments)]
fn forward_exposure<S: FlowSource, H: LabelHistory>(
    src: &S,
    history: &H,
    labels: &AsOfLabels<'_, H>,
    p: &ScreenParams,
    address: &Address,
    outs: &[Transfer],
    sent: &[Transfer],
    until: Timestamp,
    utxo: bool,
    stats: &mut ScreenStats,
) -> Result<(Vec<Exposure>, Reached, Vec<Wallet>), TraceError> {
    if outs.is_empty() {
        return Ok((Vec::new(), Vec::new(), Vec::new()));
    }
    // Shares are of what the address sent to its counterparties (`sent`: for a Bitcoin
    // address, the outputs it paid, change excluded).
    let tot = totals(sent)?;
    // The pruning floor is in raw units of the assets sent; value a swap converts arrives in
    // another asset whose raw units can be 10^12 times smaller or larger (a stablecoin of 18
    // decimals swapped into ETH: 0.01 % of the stablecoin sent is more raw units than the
    // whole swap output), so an address that swapped is traced without the floor.
    let swap = StopList::new(crate::source::DEFAULT_SWAP_CATEGORIES);
    let swapped = outs
        .iter()
        .any(|t| labels.category(&t.to).is_some_and(|c| swap.contains(&c)));
    let min = if swapped {
        Amount::ZERO
    } else {
        tot.values()
            .map(|t| share_of(*t, p.scoring.min_share / 10.0))
            .min()
            .unwrap_or(Amount::ZERO)
    };
    let mut r = trace_forward(
        src,
        labels,
        &Seed::Outflows(*address),
        &trace_params_for(p, until, min, Flow::Sent, utxo),
    )?;
    stats.traces += 1;
    stats.expanded_addresses += r.stats.expanded_addresses;
    stats.transfers_read += r.stats.transfers_read;
    // The value met a swap further on (the address paid its own wallets, which swapped): what
    // the swap paid out is in other raw units, and the floor may have cut it. Traced again
    // without the floor.
    let mut min = min;
    if !min.is_zero()
        && r.destinations
            .iter()
            .any(|d| d.status == crate::Status::Swapped)
    {
        min = Amount::ZERO;
        r = trace_forward(
            src,
            labels,
            &Seed::Outflows(*address),
            &trace_params_for(p, until, min, Flow::Sent, utxo),
        )?;
        stats.traces += 1;
        stats.expanded_addresses += r.stats.expanded_addresses;
        stats.transfers_read += r.stats.transfers_read;
    }
    let swapped = swapped || min.is_zero();
    let mut by = BTreeMap::new();
    collect_indirect(history, &r, Flow::Sent, utxo, &mut by)?;
    let shares = OutShares::new(tot.clone(), &r)?;
    let mut reached: Vec<(Address, u32)> = r
        .destinations
        .iter()
        .filter(|d| {
            !d.amount.is_zero()
                && d.address != *address
                && !d.address.is_tx()
                && d.category.as_ref().is_none_or(|c| !p.services.contains(c))
        })
        .map(|d| (d.address, d.hops))
        .collect();
    reached.sort();
    reached.dedup_by_key(|x| x.0);
    // Unlabelled wallets that received a material share of the outflow (network context).
    let wallets_of = |r: &crate::TraceResult, shares: &OutShares| -> Vec<Wallet> {
        r.destinations
            .iter()
            .filter(|d| d.category.is_none() && d.address != *address && !d.address.is_tx())
            .filter_map(|d| {
                let share = shares.share(&d.asset, d.amount);
                (share >= p.scoring.network_min_share).then(|| Wallet {
                    address: d.address,
                    asset: d.asset,
                    converted: !tot.contains_key(&d.asset),
                    amount: d.amount,
                    share,
                    hops: d.hops,
                    path: r.paths.iter().find(|x| x.to == d.address).cloned(),
                })
            })
            .collect()
    };
    let mut wallets: Vec<Wallet> = wallets_of(&r, &shares);
    // The network context follows the money, not a transfer count: while a material share of
    // the outflow is still moving at the hop limit (it reached an unlabelled wallet there, which
    // was not followed), the trace goes on up to NETWORK_MAX_HOPS, following only transfers that
    // carry at least `network_min_share` of the outflow (no floor when a swap converted the
    // value: its units are another asset's).
    let moving = r.destinations.iter().any(|d| {
        d.status == crate::Status::AtDepthLimit
            && d.category.is_none()
            && shares.share(&d.asset, d.amount) >= p.scoring.network_min_share
    });
    if moving && NETWORK_MAX_HOPS > p.hops && !utxo {
        let mut tp = trace_params_for(p, until, min, Flow::Sent, utxo);
        tp.max_hops = NETWORK_MAX_HOPS;
        tp.min_amount = if swapped {
            Amount::ZERO
        } else {
            tot.values()
                .map(|t| share_of(*t, p.scoring.network_min_share))
                .min()
                .unwrap_or(Amount::ZERO)
        };
        let deep = trace_forward(src, labels, &Seed::Outflows(*address), &tp)?;
        stats.traces += 1;
        stats.expanded_addresses += deep.stats.expanded_addresses;
        stats.transfers_read += deep.stats.transfers_read;
        let deep_shares = OutShares::new(tot.clone(), &deep)?;
        wallets.extend(
            wallets_of(&deep, &deep_shares)
                .into_iter()
                .filter(|w| w.hops > p.hops),
        );
    }
    // Largest shares first; of equal shares the farthest (a chain of pass-through wallets
    // ends where the value meets other value).
    wallets.sort_by(|a, b| {
        b.share
            .total_cmp(&a.share)
            .then(b.hops.cmp(&a.hops))
            .then(a.address.cmp(&b.address))
    });
    wallets.dedup_by_key(|w| w.address);
    wallets.truncate(NETWORK_WALLETS);
    // Where haircut finds high-risk exposure, the same trace under FIFO: both are shown when
    // they disagree (the smaller is the weaker signal).
    if by
        .keys()
        .any(|(c, _)| p.scoring.severity(c) >= p.scoring.network_min_severity)
    {
        let mut tp = trace_params_for(p, until, min, Flow::Sent, utxo);
        tp.model = Model::Fifo;
        let f = trace_forward(src, labels, &Seed::Outflows(*address), &tp)?;
        stats.traces += 1;
        stats.expanded_addresses += f.stats.expanded_addresses;
        stats.transfers_read += f.stats.transfers_read;
        let mut fifo: BTreeMap<(Category, Asset), Amount> = BTreeMap::new();
        for d in f.destinations.iter().filter(|d| {
            if utxo {
                utxo::indirect_hops(Flow::Sent, d.hops).is_some()
            } else {
                d.hops > 0
            }
        }) {
            if let Some(c) = &d.category {
                let e = fifo.entry((c.clone(), d.asset)).or_default();
                *e = e.checked_add(d.amount)?;
            }
        }
        for ((c, a), e) in by.iter_mut() {
            if p.scoring.severity(c) >= p.scoring.network_min_severity {
                e.fifo_amount = Some(fifo.get(&(c.clone(), *a)).copied().unwrap_or_default());
            }
        }
    }
    let exp = by
        .into_values()
        .map(|mut e| {
            e.share = shares.share(&e.asset, e.amount);
            e.counterparties.sort();
            e
        })
        .collect();
    Ok((exp, reached, wallets))
}

#[allow(clippy::too_many_arguments)]
fn backward_exposure<S: FlowSource, H: LabelHistory>(
    src: &S,
    history: &H,
    labels: &AsOfLabels<'_, H>,
    p: &ScreenParams,
    ins: &[Transfer],
    received: &[Transfer],
    until: Timestamp,
    utxo: bool,
    stats: &mut ScreenStats,
) -> Result<Vec<Exposure>, TraceError> {
    // The largest incoming transfers from unlabelled senders (labelled ones are direct).
    let mut seeds: Vec<&Transfer> = ins
        .iter()
        .filter(|t| labels.category(&t.from).is_none())
        .collect();
    seeds.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.key.cmp(&b.key)));
    seeds.truncate(p.max_backward_seeds);
    let mut by = BTreeMap::new();
    for t in seeds {
        let tp = trace_params_for(
            p,
            until,
            share_of(t.amount, p.scoring.min_share / 10.0),
            Flow::Received,
            utxo,
        );
        let r = trace_backward(src, labels, &BackSeed::Transfer(t.key), &tp)?;
        stats.traces += 1;
        stats.expanded_addresses += r.stats.expanded_addresses;
        stats.transfers_read += r.stats.transfers_read;
        collect_indirect(history, &r, Flow::Received, utxo, &mut by)?;
    }
    // Shares are of what the address received from its counterparties.
    let tot = totals(received)?;
    Ok(by
        .into_values()
        .map(|mut e| {
            e.share = ratio(e.amount, tot.get(&e.asset).copied().unwrap_or_default());
            e.counterparties.sort();
            e
        })
        .collect())
}

/// Network context: at most this many counterparty wallets are examined per screening (the
/// largest shares of the outflow).
const NETWORK_WALLETS: usize = 6;
/// Network context: how far (in hops after the direct receiver) a material share of the
/// outflow is followed to the wallets where it meets other value, when it is still moving at
/// the screening's hop limit. Eight hops cover the longest layering chains seen before value
/// is consolidated (fresh per-payday wallets, forwarder contracts and swaps, each one or two
/// hops); the materiality floor keeps the walk to the value's main path.
const NETWORK_MAX_HOPS: u32 = 8;
/// Network context: the upstream walk from a wallet visits at most this many addresses.
const UPSTREAM_NODES: usize = 64;
/// Network context: at most this many payers of the address (its largest unlabelled or
/// payroll senders) define "payees".
const PAYERS: usize = 3;

/// Whether a pattern instance counts toward `address`'s risk: the address performs it (is its
/// center, or a link of a peel chain or cycle), and the acting address is no service doing
/// what services do (labelled service category, or a sweep of everything it moved to
/// exchange wallets).
pub fn counts_for<H: LabelHistory>(
    inst: &PatternInstance,
    address: &Address,
    labels: &AsOfLabels<'_, H>,
    services: &StopList,
) -> bool {
    let performs = inst.center == *address
        || (matches!(inst.kind, PatternKind::Peel | PatternKind::Cycle)
            && inst.transfers.iter().any(|t| t.from == *address));
    if !performs {
        return false;
    }
    if labels
        .category(&inst.center)
        .is_some_and(|c| services.contains(&c))
    {
        return false;
    }
    let outs: Vec<&EvidenceTransfer> = inst
        .transfers
        .iter()
        .filter(|t| t.from == inst.center)
        .collect();
    let sweep = !outs.is_empty()
        && outs.iter().all(|t| {
            labels
                .category(&t.to)
                .is_some_and(|c| c.as_str() == "exchange")
        });
    !sweep
}

/// A counterparty wallet that received a material share of the address's outflow.
#[derive(Clone, Debug)]
struct Wallet {
    address: Address,
    asset: Asset,
    /// The value reached it in an asset a swap converted it into (the address sent none).
    converted: bool,
    amount: Amount,
    share: f64,
    hops: u32,
    path: Option<EvidencePath>,
}

/// A material share of a wallet's sends that went to high-risk addresses.
#[derive(Clone, Debug, Serialize)]
pub struct HighRiskSends {
    /// Category (severity at least `network_min_severity`).
    pub category: Category,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// What the wallet sent there, raw units.
    pub amount: Amount,
    /// Share of what the wallet sent of the asset, 0..1.
    pub share: f64,
    /// The receivers (at most 10).
    pub counterparties: Vec<Address>,
    /// Whether the category held at the time of at least one of these sends (`false`: the
    /// receivers were labelled only later).
    pub labelled_at_time: bool,
}

/// Network context of a screening: a wallet that received a material share of the address's
/// funds and consolidates several payees' salaries, or sends a material share of its own
/// funds to high-risk addresses.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkFinding {
    /// The wallet.
    pub wallet: Address,
    /// Hops from the screened address (1: its direct receiver).
    pub hops: u32,
    /// Asset of the screened address's value that reached it.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Whether that asset is one a swap converted the address's value into (it sent none of it).
    pub converted: bool,
    /// The screened address's value that reached it (haircut), raw units.
    pub amount: Amount,
    /// Share of the screened address's outflow of the asset, 0..1.
    pub share: f64,
    /// The payer whose payees' salaries meet there, if the wallet consolidates.
    pub payer: Option<Address>,
    /// The payees whose salaries meet there (the screened address included), sorted.
    pub payees: Vec<Address>,
    /// Share of the wallet's receipts (of its most consolidated asset) that came from those
    /// payees, 0..1.
    pub consolidated_share: f64,
    /// Its material sends to high-risk addresses, in any asset.
    pub high_risk: Vec<HighRiskSends>,
    /// Score 0..100.
    pub score: f64,
    /// Level of this finding alone.
    pub level: RiskLevel,
    /// The transfers from the screened address to the wallet, when recorded.
    pub path: Option<EvidencePath>,
}

impl NetworkFinding {
    /// Whether the wallet consolidates several payees' salaries.
    pub fn consolidates(&self) -> bool {
        self.payees.len() >= 2
    }

    fn reason(&self, p: &ScreenParams) -> Reason {
        let mut parts = Vec::new();
        if self.consolidates() {
            parts.push(format!(
                "consolidates the salaries of {} payees of {} ({:.0}% of what it received)",
                self.payees.len(),
                self.payer.map(|a| a.to_string()).unwrap_or_default(),
                self.consolidated_share * 100.0
            ));
        }
        for h in &self.high_risk {
            parts.push(format!(
                "sent {:.2}% of its {} to {} {}",
                h.share * 100.0,
                h.asset,
                h.counterparties.len(),
                h.category
            ));
        }
        let mut addresses = vec![self.wallet];
        addresses.extend(self.high_risk.iter().flat_map(|h| h.counterparties.clone()));
        addresses.truncate(10);
        Reason {
            kind: ReasonKind::Network,
            category: if self.consolidates() && !self.high_risk.is_empty() {
                "salary_consolidation_to_high_risk".into()
            } else if self.consolidates() {
                "salary_consolidation".into()
            } else {
                "counterparty_sends_to_high_risk".into()
            },
            score: self.score,
            level: p.scoring.level(self.score),
            text: format!(
                "sent {:.2}% of its {} to wallet {} ({} away), which {}",
                self.share * 100.0,
                if self.converted {
                    format!("outflow (swapped into {})", self.asset)
                } else {
                    self.asset.to_string()
                },
                self.wallet,
                hops_text(self.hops),
                parts.join(" and ")
            ),
            addresses,
            labelled_at_time: self.high_risk.is_empty()
                || self.high_risk.iter().any(|h| h.labelled_at_time),
        }
    }
}

/// The network context of `address` over the wallets its outflow reached materially.
#[allow(clippy::too_many_arguments)]
fn network_context<S: FlowSource, H: LabelHistory>(
    src: &S,
    history: &H,
    labels: &AsOfLabels<'_, H>,
    p: &ScreenParams,
    address: &Address,
    ins: &[Transfer],
    wallets: &[Wallet],
    until: Timestamp,
    stats: &mut ScreenStats,
) -> Result<Vec<NetworkFinding>, TraceError> {
    if wallets.is_empty() {
        return Ok(Vec::new());
    }
    let sc = &p.scoring;
    let read = |a: &Address, dir| -> Result<Vec<Transfer>, TraceError> {
        Ok(src
            .address_transfers(a, dir, p.chain)
            .map_err(TraceError::source)?
            .into_iter()
            .filter(|t| t.time <= until && !t.amount.is_zero())
            .collect())
    };
    // The payers: the largest senders of the address that are no services.
    let mut by_sender: BTreeMap<Address, Amount> = BTreeMap::new();
    for t in ins {
        if labels
            .category(&t.from)
            .is_some_and(|c| p.services.contains(&c))
        {
            continue;
        }
        let e = by_sender.entry(t.from).or_default();
        *e = e.checked_add(t.amount)?;
    }
    let mut payers: Vec<(Amount, Address)> = by_sender.into_iter().map(|(a, v)| (v, a)).collect();
    payers.sort_by(|a, b| b.cmp(a));
    payers.truncate(PAYERS);
    let mut payees_of: Vec<(Address, BTreeSet<Address>)> = Vec::new();
    for (_, payer) in &payers {
        let outs = read(payer, Direction::Outgoing)?;
        stats.transfers_read += outs.len();
        let set: BTreeSet<Address> = outs.iter().map(|t| t.to).filter(|a| a != payer).collect();
        // A payer pays several addresses (the screened one among them).
        if set.len() >= 2 && set.contains(address) {
            payees_of.push((*payer, set));
        }
    }
    let mut out = Vec::new();
    for w in wallets {
        let w_outs = read(&w.address, Direction::Outgoing)?;
        let w_ins = read(&w.address, Direction::Incoming)?;
        stats.transfers_read += w_outs.len() + w_ins.len();
        // Material sends to high-risk categories, per (category, asset).
        let sent = totals(&w_outs)?;
        let mut risky: BTreeMap<(Category, Asset), HighRiskSends> = BTreeMap::new();
        for t in &w_outs {
            let Some(cat) = labels.category(&t.to) else {
                continue;
            };
            if sc.severity(&cat) < sc.network_min_severity {
                continue;
            }
            let e = risky
                .entry((cat.clone(), t.asset))
                .or_insert_with(|| HighRiskSends {
                    category: cat,
                    asset: t.asset,
                    amount: Amount::ZERO,
                    share: 0.0,
                    counterparties: Vec::new(),
                    labelled_at_time: false,
                });
            e.labelled_at_time |= held_at(&history.spans(&t.to)?, &e.category, t.time).0;
            e.amount = e.amount.checked_add(t.amount)?;
            if !e.counterparties.contains(&t.to) && e.counterparties.len() < 10 {
                e.counterparties.push(t.to);
            }
        }
        let high_risk: Vec<HighRiskSends> = risky
            .into_values()
            .map(|mut h| {
                h.share = ratio(h.amount, sent.get(&h.asset).copied().unwrap_or_default());
                h.counterparties.sort();
                h
            })
            .filter(|h| h.share >= sc.network_min_share)
            .collect();
        // Consolidation: the wallet's direct senders whose upstream (within the hop limit)
        // holds payees of one of the address's payers (only a wallet with several senders
        // can consolidate).
        let mut best: (usize, f64, Option<Address>, Vec<Address>) = (0, 0.0, None, Vec::new());
        // Distinct senders, a swap router's payouts counted by who paid the router.
        let mut senders: BTreeSet<Address> = BTreeSet::new();
        for t in &w_ins {
            senders.extend(senders_behind(src, labels, t, stats)?);
        }
        // Only a wallet that took most of the address's outflow (of an asset) holds its
        // salary; one that got a part of it (a landlord, a shop, a friend several colleagues
        // pay) is a common counterparty, not a consolidation.
        let holds_salary = w.share >= sc.consolidation_min_share;
        for (payer, payees) in payees_of
            .iter()
            .filter(|_| senders.len() >= 2 && holds_salary)
        {
            // The walk back reaches as far as the wallet is from the address.
            let depth = p.hops.max(w.hops.saturating_add(1));
            let (found, derived) = upstream_payees(
                src, labels, p, depth, &w.address, &w_ins, payer, payees, until, stats,
            )?;
            let mut found = found;
            found.insert(*address);
            let received = totals(&w_ins)?;
            let mut from_payees: BTreeMap<Asset, Amount> = BTreeMap::new();
            for t in w_ins.iter().filter(|t| derived.contains(&t.from)) {
                let e = from_payees.entry(t.asset).or_default();
                *e = e.checked_add(t.amount)?;
            }
            let share = from_payees
                .iter()
                .map(|(a, v)| ratio(*v, received.get(a).copied().unwrap_or_default()))
                .fold(0.0, f64::max);
            if found.len() >= 2
                && share >= sc.consolidation_min_share
                && (found.len(), share) > (best.0, best.1)
            {
                best = (
                    found.len(),
                    share,
                    Some(*payer),
                    found.into_iter().collect(),
                );
            }
        }
        let consolidates = best.0 >= 2;
        if !consolidates && high_risk.is_empty() {
            continue;
        }
        let mut score = if consolidates && !high_risk.is_empty() {
            sc.signature_score
        } else {
            sc.network_score
        };
        // High-risk receivers labelled only after the sends weigh as in exposure scoring.
        if !consolidates && high_risk.iter().all(|h| !h.labelled_at_time) {
            score *= sc.before_listing_weight;
        }
        out.push(NetworkFinding {
            wallet: w.address,
            hops: w.hops.saturating_add(1),
            asset: w.asset,
            converted: w.converted,
            amount: w.amount,
            share: w.share,
            payer: best.2,
            payees: best.3,
            consolidated_share: best.1,
            high_risk,
            score,
            level: sc.level(score),
            path: w.path.clone(),
        });
    }
    Ok(out)
}

/// The senders behind a transfer: its sender, or, for a swap router's payout, whoever paid the
/// router in other assets in that transaction (the value it converted; the router itself when
/// nobody did).
fn senders_behind<S: FlowSource, H: LabelHistory>(
    src: &S,
    labels: &AsOfLabels<'_, H>,
    t: &Transfer,
    stats: &mut ScreenStats,
) -> Result<Vec<Address>, TraceError> {
    let swap = StopList::new(crate::source::DEFAULT_SWAP_CATEGORIES);
    if !labels.category(&t.from).is_some_and(|c| swap.contains(&c)) {
        return Ok(vec![t.from]);
    }
    let tx = src
        .tx_transfers(&t.tx_hash, Some(t.key.chain), Some(t.key.block))
        .map_err(TraceError::source)?;
    stats.transfers_read += tx.len();
    let mut v: Vec<Address> = tx
        .iter()
        .filter(|x| x.to == t.from && x.from != t.from && x.asset != t.asset)
        .map(|x| x.from)
        .collect();
    v.sort();
    v.dedup();
    // Nobody paid the router in that transaction (no swap there): the router is the sender.
    if v.is_empty() {
        v.push(t.from);
    }
    Ok(v)
}

/// Walks the senders of `wallet` upstream (at most `max_depth + 1` levels and [`UPSTREAM_NODES`]
/// addresses, stopping at labelled addresses, the payer and payees) and returns the payees
/// found and the wallet's direct senders through which a payee was reached.
#[allow(clippy::too_many_arguments)]
fn upstream_payees<S: FlowSource, H: LabelHistory>(
    src: &S,
    labels: &AsOfLabels<'_, H>,
    p: &ScreenParams,
    max_depth: u32,
    wallet: &Address,
    w_ins: &[Transfer],
    payer: &Address,
    payees: &BTreeSet<Address>,
    until: Timestamp,
    stats: &mut ScreenStats,
) -> Result<(BTreeSet<Address>, BTreeSet<Address>), TraceError> {
    let mut found = BTreeSet::new();
    let mut derived = BTreeSet::new();
    let senders = |t: &Transfer, stats: &mut ScreenStats| senders_behind(src, labels, t, stats);
    // node -> the wallet's direct sender it was first reached through.
    let mut root: HashMap<Address, Address> = HashMap::new();
    let mut queue: VecDeque<(Address, u32)> = VecDeque::new();
    for t in w_ins {
        let direct = t.from;
        for from in senders(t, stats)? {
            if from == *wallet || from == *payer || root.contains_key(&from) {
                continue;
            }
            root.insert(from, direct);
            queue.push_back((from, 0));
        }
    }
    while let Some((a, depth)) = queue.pop_front() {
        let r = root.get(&a).copied().unwrap_or(a);
        if payees.contains(&a) {
            found.insert(a);
            derived.insert(r);
            continue;
        }
        if depth >= max_depth || labels.category(&a).is_some() || root.len() >= UPSTREAM_NODES {
            continue;
        }
        let ins = src
            .address_transfers(&a, Direction::Incoming, p.chain)
            .map_err(TraceError::source)?;
        stats.transfers_read += ins.len();
        for t in ins
            .iter()
            .filter(|t| t.time <= until && !t.amount.is_zero())
        {
            for from in senders(t, stats)? {
                if from == *wallet || from == *payer || root.contains_key(&from) {
                    continue;
                }
                if root.len() >= UPSTREAM_NODES {
                    break;
                }
                root.insert(from, r);
                queue.push_back((from, depth + 1));
            }
        }
    }
    Ok((found, derived))
}

#[cfg(test)]
mod rule_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_utxo;
