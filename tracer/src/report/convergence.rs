//! Convergence detection: addresses and clusters that receive value from several distinct
//! payees within a hop limit and a time window (the DPRK IT-worker signature: "different"
//! contractors whose salaries end up in one wallet), payees the clustering puts in one
//! cluster, and exchange deposit addresses several payees paid into.
//!
//! Pure over the per-payout trace digests. Rules (docs/heuristics.md, "Convergence"):
//!
//! * one finding per destination address or cluster (the arrivals at a cluster's addresses
//!   count for the cluster, with the merges that join them), whatever asset the payees were
//!   paid in or the value arrived in, with per-asset amounts;
//! * a payout counts toward an address only when most of it (`salary_share`) reached it: a
//!   common counterparty of parts of salaries is no consolidation;
//! * a finding that only fed a larger one (its payees among the larger one's, its value all
//!   gone on there: a forwarder contract) is that finding's `upstream`;
//! * the window: of the windows of `window_secs` that hold the most distinct payees (then the
//!   most value, then the earliest), every arrival inside it counts, and its first and last
//!   arrival are the finding's;
//! * a finding whose payees all belong to an upstream finding, and whose every arrival came
//!   through that finding's addresses (no tainted path from the payee avoids them), is that
//!   finding's continuation: listed in its `onward` path, not as a finding of its own;
//! * ranking: number of payees (descending), value (descending, amounts scaled to 18 decimals
//!   where the asset's decimals are known), hops (ascending), then the key.

use super::{AssetBook, ClusterLookup, Payout, back_chain};
use crate::{
    PathHop, Status, TraceError, TraceResult,
    result::{FlowEdge, ser_display},
    source::Category,
};
use paytrace_indexer::{Address, Amount, Asset, Timestamp, TransferKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

/// Bounds of convergence detection.
#[derive(Clone, Debug, Serialize)]
pub struct ConvergenceParams {
    /// Minimum distinct payees for a finding (default 2).
    pub min_payees: usize,
    /// Only arrivals within this many hops of the payee count (the payee is 0, so 1 = paid
    /// directly by the payee).
    pub max_hops: u32,
    /// All arrivals of a finding lie within this many seconds (`None`: no limit). Default 90
    /// days.
    pub window_secs: Option<u64>,
    /// Categories that are common meeting points and not findings (exchange hot wallets,
    /// bridges, DeFi contracts).
    pub ignore_categories: Vec<String>,
    /// A payout counts toward an address only when at least this share of it reached the
    /// address (default 0.001, the materiality floor of risk scoring): a payee whose merchant
    /// later paid a sliver of its business to an address does not meet other payees there.
    pub min_share: f64,
    /// A payout counts toward a finding only when at least this share of it reached the
    /// address (default 0.5): a wallet that received most of several payees' salaries holds
    /// their income; one that received a part of each (a landlord, a shop, a friend several
    /// colleagues pay) is a common counterparty, which ordinary payees have.
    pub salary_share: f64,
}

impl Default for ConvergenceParams {
    fn default() -> Self {
        Self {
            min_payees: 2,
            max_hops: 5,
            window_secs: Some(90 * 86_400),
            ignore_categories: vec!["exchange".into(), "bridge".into(), "defi".into()],
            min_share: 0.001,
            salary_share: 0.5,
        }
    }
}

/// What convergence needs of one payout's trace.
#[derive(Clone, Debug)]
pub struct TraceDigest {
    /// Payee name.
    pub payee: String,
    /// Payee address.
    pub payee_address: Address,
    /// The payout transfer.
    pub seed: TransferKey,
    /// The payout asset.
    pub asset: Asset,
    /// Addresses reached (hops ≥ 1), in every asset the value took (swaps included).
    pub arrivals: Vec<Arrival>,
    /// Transfers that carried taint.
    pub edges: Vec<FlowEdge>,
}

/// One address a payout reached, in one asset.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// Address.
    pub address: Address,
    /// Asset the value arrived in.
    pub asset: Asset,
    /// Label category.
    pub category: Option<Category>,
    /// Labels.
    pub labels: Vec<String>,
    /// Trace status there.
    pub status: Status,
    /// Shortest hops from the payee.
    pub hops: u32,
    /// Tainted value that reached it.
    pub amount: Amount,
    /// First tainted arrival.
    pub time: Timestamp,
    /// Share of the payout that reached it, 0..1 (across a swap: the swapped share of the
    /// payout times the arrival's part of what the swaps produced in its asset).
    pub share: f64,
}

impl TraceDigest {
    /// The digest of the trace `r` of payout `p`.
    pub fn new(p: &Payout, r: &TraceResult) -> Result<Self, TraceError> {
        let converted = super::Converted::new(p, r)?;
        let arrivals = r
            .destinations
            .iter()
            .filter(|d| d.hops >= 1 && d.address != p.address)
            .map(|d| Arrival {
                address: d.address,
                asset: d.asset,
                category: d.category.clone(),
                labels: d.labels.clone(),
                status: d.status,
                hops: d.hops,
                amount: d.amount,
                time: d.first_arrival,
                share: converted.share(p, d),
            })
            .collect();
        Ok(Self {
            payee: p.payee.clone(),
            payee_address: p.address,
            seed: p.key,
            asset: p.asset,
            arrivals,
            edges: r
                .edges
                .iter()
                .filter(|e| !e.tainted.is_zero())
                .cloned()
                .collect(),
        })
    }
}

/// A payee involved in a finding.
#[derive(Clone, Debug, Serialize)]
pub struct FindingPayee {
    /// Name.
    pub payee: String,
    /// Address.
    pub address: Address,
    /// Tainted value of this payee that arrived, per asset, raw units.
    pub amounts: BTreeMap<String, Amount>,
    /// Shortest hops.
    pub hops: u32,
    /// First arrival.
    pub first_arrival: Timestamp,
}

/// One transfer of a finding's evidence.
#[derive(Clone, Debug, Serialize)]
pub struct EvidenceHop {
    /// The transfer.
    #[serde(flatten)]
    pub hop: PathHop,
    /// Its asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
}

/// A downstream address whose payees and value all came through a finding (its onward path).
#[derive(Clone, Debug, Serialize)]
pub struct Onward {
    /// The address, or `cluster:<id>`.
    pub key: String,
    /// The address (address continuations).
    pub address: Option<Address>,
    /// The addresses the payees' value reached (one for an address; those of a cluster).
    pub addresses: Vec<Address>,
    /// Label category.
    pub category: Option<Category>,
    /// Labels.
    pub labels: Vec<String>,
    /// Payees whose value reached it.
    pub payees: usize,
    /// Value that reached it from these payees, per asset, raw units.
    pub amounts: BTreeMap<String, Amount>,
    /// Shortest hops from any of the payees.
    pub hops: u32,
    /// First arrival in the window.
    pub first_arrival: Timestamp,
    /// Last arrival in the window.
    pub last_arrival: Timestamp,
}

/// An address (or cluster) that received value from several payees.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Rank, from 1.
    pub rank: usize,
    /// The address, or `cluster:<id>`.
    pub key: String,
    /// The address (address findings).
    pub address: Option<Address>,
    /// The cluster (cluster findings, or the address's cluster).
    pub cluster: Option<String>,
    /// Addresses of the finding that the payees reached.
    pub addresses: Vec<Address>,
    /// Label category of the address.
    pub category: Option<Category>,
    /// Labels.
    pub labels: Vec<String>,
    /// The payees, by address.
    pub payees: Vec<FindingPayee>,
    /// Tainted value that arrived from these payees within the window, per asset, raw units.
    pub amounts: BTreeMap<String, Amount>,
    /// Arrivals counted (one per payout and asset reaching the finding in the window).
    pub arrivals: usize,
    /// Shortest hops from any of the payees.
    pub hops: u32,
    /// First arrival in the window.
    pub first_arrival: Timestamp,
    /// Last arrival in the window.
    pub last_arrival: Timestamp,
    /// The evidence subgraph: transfers from the payouts to the finding, in time order.
    pub evidence: Vec<EvidenceHop>,
    /// Downstream addresses whose payees and value all came through this finding, nearest
    /// first.
    pub onward: Vec<Onward>,
    /// Meeting points before this finding that fed it: addresses where some of its payees'
    /// value met first (a forwarder contract, a shared intermediate wallet) and from which all
    /// that value went on to this finding. Not findings of their own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<Onward>,
    /// Cluster findings: the merges that joined the finding's addresses (why they are one
    /// owner), at most 20.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merges: Vec<MergeEvidence>,
    /// Payees of which most of a payout (`salary_share`) reached the finding.
    #[serde(skip)]
    pub salary_payees: usize,
}

/// One merge behind a payee cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MergeEvidence {
    /// One address.
    pub a: Address,
    /// The other address.
    pub b: Address,
    /// The clustering heuristic (`deposit_address`, `multi_input`, ...).
    pub heuristic: String,
    /// The evidence transaction.
    pub tx: paytrace_indexer::TxHash,
    /// A second transaction the evidence rests on (the deposit sweep, the airdrop).
    pub related_tx: Option<paytrace_indexer::TxHash>,
}

/// Payees that the clustering puts in one cluster.
#[derive(Clone, Debug, Serialize)]
pub struct PayeeCluster {
    /// Cluster id.
    pub cluster: String,
    /// The payees.
    pub payees: Vec<ClusterPayee>,
    /// The merges that joined the cluster (at most 20).
    pub evidence: Vec<MergeEvidence>,
}

/// A payee in a cluster.
#[derive(Clone, Debug, Serialize)]
pub struct ClusterPayee {
    /// Name.
    pub payee: String,
    /// Address.
    pub address: Address,
}

/// Everything convergence detection found.
#[derive(Clone, Debug, Default)]
pub struct Convergence {
    /// Ranked address and cluster findings (exchange deposit addresses excluded).
    pub findings: Vec<Finding>,
    /// Exchange deposit addresses several payees paid into, ranked.
    pub shared_deposits: Vec<Finding>,
    /// Payees in one cluster.
    pub payee_clusters: Vec<PayeeCluster>,
}

#[derive(Clone, Copy)]
struct Hit<'a> {
    digest: usize,
    arrival: &'a Arrival,
}

/// The window of at most `window` seconds with the most distinct payees (then the most
/// arrivals, then the earliest), and every arrival inside it.
fn best_window<'a>(
    mut hits: Vec<Hit<'a>>,
    digests: &[TraceDigest],
    window: Option<u64>,
) -> Vec<Hit<'a>> {
    hits.sort_by_key(|h| (h.arrival.time, h.digest, h.arrival.asset));
    let Some(w) = window else { return hits };
    let mut count: HashMap<Address, usize> = HashMap::new();
    let mut best = (0usize, 0usize, 0usize, 0usize); // (payees, arrivals, start, end)
    let mut end = 0;
    for start in 0..hits.len() {
        while end < hits.len()
            && hits[end]
                .arrival
                .time
                .0
                .saturating_sub(hits[start].arrival.time.0)
                <= w
        {
            *count
                .entry(digests[hits[end].digest].payee_address)
                .or_default() += 1;
            end += 1;
        }
        let n = count.len();
        if (n, end - start) > (best.0, best.1) {
            best = (n, end - start, start, end);
        }
        let a = digests[hits[start].digest].payee_address;
        if let Some(c) = count.get_mut(&a) {
            *c -= 1;
            if *c == 0 {
                count.remove(&a);
            }
        }
    }
    hits.drain(best.2..best.3).collect()
}

/// Adds `v` of `asset` arrived at `holder` under its [`super::asset_key`] (a Bitcoin
/// address's coin is not an EVM chain's).
fn add_amount(
    m: &mut BTreeMap<String, Amount>,
    asset: &Asset,
    holder: &Address,
    v: Amount,
) -> Result<(), TraceError> {
    let e = m.entry(super::asset_key(asset, holder)).or_default();
    *e = e.checked_add(v)?;
    Ok(())
}

type Incoming<'d> = HashMap<usize, HashMap<Address, Vec<&'d FlowEdge>>>;

fn finding<'d>(
    key: String,
    address: Option<Address>,
    cluster: Option<String>,
    hits: &[Hit<'_>],
    digests: &'d [TraceDigest],
    incoming: &mut Incoming<'d>,
) -> Result<Finding, TraceError> {
    let mut payees: BTreeMap<Address, FindingPayee> = BTreeMap::new();
    let mut amounts = BTreeMap::new();
    let mut addresses = BTreeSet::new();
    type HopKey = (
        Timestamp,
        paytrace_indexer::BlockNumber,
        paytrace_indexer::TxHash,
        Address,
        Address,
        String,
    );
    let mut evidence: BTreeMap<HopKey, EvidenceHop> = BTreeMap::new();
    for h in hits {
        let d = &digests[h.digest];
        let a = h.arrival;
        add_amount(&mut amounts, &a.asset, &a.address, a.amount)?;
        addresses.insert(a.address);
        let e = payees
            .entry(d.payee_address)
            .or_insert_with(|| FindingPayee {
                payee: d.payee.clone(),
                address: d.payee_address,
                amounts: BTreeMap::new(),
                hops: a.hops,
                first_arrival: a.time,
            });
        add_amount(&mut e.amounts, &a.asset, &a.address, a.amount)?;
        e.hops = e.hops.min(a.hops);
        e.first_arrival = e.first_arrival.min(a.time);
        let inc = incoming.entry(h.digest).or_insert_with(|| {
            // Built once per digest: back-chaining needs the incoming edges by address.
            let mut m: HashMap<Address, Vec<&FlowEdge>> = HashMap::new();
            for e in &digests[h.digest].edges {
                m.entry(e.to).or_default().push(e);
            }
            m
        });
        for hop in back_chain(inc, d.seed, &a.address, &a.asset) {
            let asset = inc
                .get(&hop.to)
                .and_then(|v| {
                    v.iter()
                        .find(|e| e.tx_hash == hop.tx_hash && e.from == hop.from)
                })
                .map_or(a.asset, |e| e.asset);
            evidence
                .entry((
                    hop.time,
                    hop.block,
                    hop.tx_hash,
                    hop.from,
                    hop.to,
                    asset.to_string(),
                ))
                .or_insert(EvidenceHop { hop, asset });
        }
    }
    let first = hits
        .iter()
        .map(|h| h.arrival.time)
        .min()
        .unwrap_or_default();
    let last = hits
        .iter()
        .map(|h| h.arrival.time)
        .max()
        .unwrap_or_default();
    let hops = hits
        .iter()
        .map(|h| h.arrival.hops)
        .min()
        .unwrap_or_default();
    let (category, labels) = hits
        .first()
        .map(|h| (h.arrival.category.clone(), h.arrival.labels.clone()))
        .unwrap_or_default();
    Ok(Finding {
        rank: 0,
        key,
        address,
        cluster,
        addresses: addresses.into_iter().collect(),
        category: if address.is_some() { category } else { None },
        labels: if address.is_some() {
            labels
        } else {
            Vec::new()
        },
        payees: payees.into_values().collect(),
        amounts,
        arrivals: hits.len(),
        hops,
        first_arrival: first,
        last_arrival: last,
        evidence: evidence.into_values().collect(),
        onward: Vec::new(),
        upstream: Vec::new(),
        merges: Vec::new(),
        salary_payees: 0,
    })
}

/// The value of per-asset amounts for ranking: each scaled to 18 decimals when the asset's
/// decimals are known (raw otherwise), summed (saturating).
fn value(amounts: &BTreeMap<String, Amount>, assets: &AssetBook) -> Amount {
    let mut total = Amount::ZERO;
    for (a, v) in amounts {
        let scaled = match assets.assets.get(a) {
            Some(i) if i.decimals < 18 => {
                let f = alloy_primitives::U256::from(10u64)
                    .saturating_pow(alloy_primitives::U256::from(18 - i.decimals));
                Amount::from_raw(v.raw().saturating_mul(f))
            }
            _ => *v,
        };
        total = Amount::from_raw(total.raw().saturating_add(scaled.raw()));
    }
    total
}

fn rank(v: &mut [Finding], assets: &AssetBook) {
    v.sort_by(|a, b| {
        b.payees
            .len()
            .cmp(&a.payees.len())
            .then(value(&b.amounts, assets).cmp(&value(&a.amounts, assets)))
            .then(a.hops.cmp(&b.hops))
            .then(a.key.cmp(&b.key))
    });
    for (i, f) in v.iter_mut().enumerate() {
        f.rank = i + 1;
    }
}

/// Whether `target` is reachable from `from` over the tainted edges of digest `d` without
/// passing through any address of `through`.
fn reachable_avoiding(
    d: &TraceDigest,
    from: Address,
    target: Address,
    through: &BTreeSet<Address>,
) -> bool {
    if through.contains(&from) {
        return false;
    }
    let mut out: HashMap<Address, Vec<Address>> = HashMap::new();
    for e in &d.edges {
        out.entry(e.from).or_default().push(e.to);
    }
    let mut seen = HashSet::from([from]);
    let mut queue = VecDeque::from([from]);
    while let Some(a) = queue.pop_front() {
        if a == target {
            return true;
        }
        for n in out.get(&a).into_iter().flatten() {
            if !through.contains(n) && seen.insert(*n) {
                queue.push_back(*n);
            }
        }
    }
    false
}

/// A candidate with the number of its payees of which most of a payout reached it.
fn candidate<'a>(
    mut f: Finding,
    hits: Vec<Hit<'a>>,
    digests: &[TraceDigest],
    p: &ConvergenceParams,
) -> Candidate<'a> {
    let salary: BTreeSet<Address> = hits
        .iter()
        .filter(|h| h.arrival.share >= p.salary_share)
        .map(|h| digests[h.digest].payee_address)
        .collect();
    f.salary_payees = salary.len();
    Candidate { f, hits }
}

/// A finding with the hits it was built from.
struct Candidate<'a> {
    f: Finding,
    hits: Vec<Hit<'a>>,
}

/// Whether every hit of `b` came through the addresses of `a` (and `b`'s payees are `a`'s).
fn continues(a: &Candidate<'_>, b: &Candidate<'_>, digests: &[TraceDigest]) -> bool {
    let pa: BTreeSet<Address> = a.f.payees.iter().map(|p| p.address).collect();
    if b.f.key == a.f.key
        || !b.f.payees.iter().all(|p| pa.contains(&p.address))
        || a.f.hops > b.f.hops
    {
        return false;
    }
    let through: BTreeSet<Address> = a.f.addresses.iter().copied().collect();
    if b.f.addresses.iter().any(|x| through.contains(x)) {
        return false;
    }
    b.hits.iter().all(|h| {
        let d = &digests[h.digest];
        !reachable_avoiding(d, d.payee_address, h.arrival.address, &through)
    })
}

/// The findings whose addresses every hit of `b` came through, each hit through a finding
/// that names its payee (value of several findings meeting downstream, e.g. two operators'
/// consolidation wallets paying one facilitator); empty when some hit did not.
fn continues_several(j: usize, cands: &[Candidate<'_>], digests: &[TraceDigest]) -> Vec<usize> {
    let b = &cands[j];
    let mine: BTreeSet<Address> = b.f.addresses.iter().copied().collect();
    // Per upstream finding: its payees with their hops, and its addresses.
    type Up = (usize, BTreeMap<Address, u32>, BTreeSet<Address>);
    let ups: Vec<Up> = cands
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            *i != j && a.f.key != b.f.key && !a.f.addresses.iter().any(|x| mine.contains(x))
        })
        .map(|(i, a)| {
            (
                i,
                a.f.payees.iter().map(|p| (p.address, p.hops)).collect(),
                a.f.addresses.iter().copied().collect(),
            )
        })
        .collect();
    let mut used = BTreeSet::new();
    for h in &b.hits {
        let d = &digests[h.digest];
        // The payee's value met the upstream finding first (no more hops than here) and
        // cannot reach this address without passing through it.
        let through = ups.iter().find(|(_, payees, through)| {
            payees
                .get(&d.payee_address)
                .is_some_and(|&hops| hops <= h.arrival.hops)
                && !reachable_avoiding(d, d.payee_address, h.arrival.address, through)
        });
        match through {
            Some((i, _, _)) => {
                used.insert(*i);
            }
            None => return Vec::new(),
        }
    }
    // One upstream finding alone is the single-root rule's case.
    if used.len() < 2 {
        return Vec::new();
    }
    used.into_iter().collect()
}

/// Whether most of arrival `a` (at least `share` of it) left its address again, and every
/// tainted transfer out of it in digest `d` leads (over `d`'s tainted transfers) to an
/// address of `into`.
fn all_goes_on(d: &TraceDigest, a: &Arrival, into: &BTreeSet<Address>, share: f64) -> bool {
    let from = a.address;
    let mut out: HashMap<Address, Vec<Address>> = HashMap::new();
    let mut left = Amount::ZERO;
    for e in &d.edges {
        out.entry(e.from).or_default().push(e.to);
        if e.from == from && e.asset == a.asset {
            left = Amount::from_raw(left.raw().saturating_add(e.tainted.raw()));
        }
    }
    if crate::risk::ratio(left, a.amount) < share {
        return false;
    }
    let Some(first) = out.get(&from) else {
        return false;
    };
    first.iter().all(|&start| {
        // `from` may be passed again (a forwarder used twice on one path).
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(a) = queue.pop_front() {
            if into.contains(&a) {
                return true;
            }
            for n in out.get(&a).into_iter().flatten() {
                if seen.insert(*n) {
                    queue.push_back(*n);
                }
            }
        }
        false
    })
}

/// The finding candidate `j` feeds: one with more payees, all of `j`'s among them, to which
/// everything of `j`'s payees' value that reached `j` went on (in every payout's trace).
fn feeds(j: usize, cands: &[Candidate<'_>], digests: &[TraceDigest], share: f64) -> Option<usize> {
    let b = &cands[j];
    let mine: BTreeSet<Address> = b.f.payees.iter().map(|p| p.address).collect();
    cands
        .iter()
        .enumerate()
        .filter(|(i, a)| {
            *i != j
                && a.f.payees.len() > mine.len()
                && a.f.salary_payees >= 2
                && mine
                    .iter()
                    .all(|x| a.f.payees.iter().any(|p| p.address == *x))
        })
        .filter(|(_, a)| {
            let into: BTreeSet<Address> = a.f.addresses.iter().copied().collect();
            !b.f.addresses.iter().any(|x| into.contains(x))
                && b.hits
                    .iter()
                    .all(|h| all_goes_on(&digests[h.digest], h.arrival, &into, share))
        })
        // The one with the most payees, then the key.
        .min_by(|(_, x), (_, y)| {
            y.f.payees
                .len()
                .cmp(&x.f.payees.len())
                .then(x.f.key.cmp(&y.f.key))
        })
        .map(|(i, _)| i)
}

fn onward_of(f: &Finding) -> Onward {
    Onward {
        key: f.key.clone(),
        address: f.address,
        addresses: f.addresses.clone(),
        category: f.category.clone(),
        labels: f.labels.clone(),
        payees: f.payees.len(),
        amounts: f.amounts.clone(),
        hops: f.hops,
        first_arrival: f.first_arrival,
        last_arrival: f.last_arrival,
    }
}

/// Takes the candidates that only fed a larger finding out of `cands`: they become the
/// `upstream` of the finding they fed (by key).
fn take_feeders<'a>(
    cands: Vec<Candidate<'a>>,
    digests: &[TraceDigest],
    share: f64,
) -> (Vec<Candidate<'a>>, BTreeMap<String, Vec<Onward>>) {
    let fed: Vec<Option<usize>> = (0..cands.len())
        .map(|j| feeds(j, &cands, digests, share))
        .collect();
    let mut upstream: BTreeMap<String, Vec<Onward>> = BTreeMap::new();
    let mut keep = Vec::new();
    for (j, c) in cands.iter().enumerate() {
        // A feeder of a feeder feeds the same finding further down.
        let mut target = fed[j];
        let mut guard = 0;
        while let Some(t) = target.and_then(|t| fed[t]) {
            target = Some(t);
            guard += 1;
            if guard > cands.len() {
                break;
            }
        }
        match target {
            Some(t) => upstream
                .entry(cands[t].f.key.clone())
                .or_default()
                .push(onward_of(&c.f)),
            None => keep.push(j),
        }
    }
    let keep: BTreeSet<usize> = keep.into_iter().collect();
    let cands = cands
        .into_iter()
        .enumerate()
        .filter(|(j, _)| keep.contains(j))
        .map(|(_, c)| c)
        .collect();
    (cands, upstream)
}

/// Folds continuations into the onward path of their root finding; returns the roots.
fn fold(cands: Vec<Candidate<'_>>, digests: &[TraceDigest]) -> Vec<Finding> {
    let n = cands.len();
    // upstream[j]: the findings j continues.
    let mut upstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    // several[j]: j continues several findings together (each of its payees' value came
    // through one of them); it is listed on the onward path of each.
    let mut several: Vec<bool> = vec![false; n];
    for (j, b) in cands.iter().enumerate() {
        for (i, a) in cands.iter().enumerate() {
            if i != j && continues(a, b, digests) {
                upstream[j].push(i);
            }
        }
        if upstream[j].is_empty() {
            upstream[j] = continues_several(j, &cands, digests);
            several[j] = !upstream[j].is_empty();
        }
    }
    // Roots continue nothing (of two that continue each other, which only happens when they
    // reach the payees' value at the same hops, the smaller key is the root).
    let is_root: Vec<bool> = (0..n)
        .map(|j| {
            upstream[j]
                .iter()
                .all(|&i| upstream[i].contains(&j) && cands[j].f.key < cands[i].f.key)
        })
        .collect();
    let mut onward: BTreeMap<usize, Vec<Onward>> = BTreeMap::new();
    for j in (0..n).filter(|&j| !is_root[j]) {
        let roots: Vec<usize> = if several[j] {
            upstream[j]
                .iter()
                .copied()
                .filter(|&i| is_root[i])
                .collect()
        } else {
            // The root it continues with the most payees, then the fewest hops, then the key.
            upstream[j]
                .iter()
                .copied()
                .filter(|&i| is_root[i])
                .min_by(|&x, &y| {
                    let (a, b) = (&cands[x].f, &cands[y].f);
                    b.payees
                        .len()
                        .cmp(&a.payees.len())
                        .then(a.hops.cmp(&b.hops))
                        .then(a.key.cmp(&b.key))
                })
                .into_iter()
                .collect()
        };
        let f = &cands[j].f;
        for root in roots {
            onward.entry(root).or_default().push(Onward {
                key: f.key.clone(),
                address: f.address,
                addresses: f.addresses.clone(),
                category: f.category.clone(),
                labels: f.labels.clone(),
                payees: f.payees.len(),
                amounts: f.amounts.clone(),
                hops: f.hops,
                first_arrival: f.first_arrival,
                last_arrival: f.last_arrival,
            });
        }
    }
    cands
        .into_iter()
        .enumerate()
        .filter(|(j, _)| is_root[*j])
        .map(|(j, c)| {
            let mut f = c.f;
            let mut on = onward.remove(&j).unwrap_or_default();
            on.sort_by(|a, b| a.hops.cmp(&b.hops).then(a.key.cmp(&b.key)));
            f.onward = on;
            f
        })
        .collect()
}

/// Finds convergence points, shared deposit addresses and payee clusters; `assets` gives the
/// decimals that rank findings of different assets by value.
pub fn detect<C: ClusterLookup>(
    digests: &[TraceDigest],
    payouts: &[Payout],
    clusters: &C,
    p: &ConvergenceParams,
    assets: &AssetBook,
) -> Result<Convergence, TraceError> {
    let ignore: BTreeSet<Category> = p
        .ignore_categories
        .iter()
        .map(|c| Category::new(c))
        .collect();
    // address -> arrivals (every asset)
    let mut by_addr: BTreeMap<Address, Vec<Hit<'_>>> = BTreeMap::new();
    for (i, d) in digests.iter().enumerate() {
        for a in &d.arrivals {
            if a.hops > p.max_hops
                || a.amount.is_zero()
                || a.share < p.min_share
                || a.category.as_ref().is_some_and(|c| ignore.contains(c))
            {
                continue;
            }
            by_addr.entry(a.address).or_default().push(Hit {
                digest: i,
                arrival: a,
            });
        }
    }
    let mut incoming = HashMap::new();
    let mut cands = Vec::new();
    // One finding per address or cluster: the arrivals at addresses of a cluster count for
    // the cluster.
    let mut by_cluster: BTreeMap<String, Vec<Hit<'_>>> = BTreeMap::new();
    for (addr, hits) in by_addr {
        if let Some(c) = clusters.cluster_of(&addr) {
            by_cluster.entry(c).or_default().extend(hits);
            continue;
        }
        let distinct: BTreeSet<Address> = hits
            .iter()
            .map(|h| digests[h.digest].payee_address)
            .collect();
        if distinct.len() < p.min_payees {
            continue;
        }
        let hits = best_window(hits, digests, p.window_secs);
        let f = finding(
            addr.to_string(),
            Some(addr),
            None,
            &hits,
            digests,
            &mut incoming,
        )?;
        if f.payees.len() >= p.min_payees {
            cands.push(candidate(f, hits, digests, p));
        }
    }
    for (c, hits) in by_cluster {
        let distinct: BTreeSet<Address> = hits
            .iter()
            .map(|h| digests[h.digest].payee_address)
            .collect();
        if distinct.len() < p.min_payees {
            continue;
        }
        let hits = best_window(hits, digests, p.window_secs);
        let members: BTreeSet<Address> = hits.iter().map(|h| h.arrival.address).collect();
        // A cluster reached at one address only is that address's finding.
        let single = (members.len() == 1)
            .then(|| members.first().copied())
            .flatten();
        let key = single.map_or_else(|| format!("cluster:{c}"), |a| a.to_string());
        let mut f = finding(key, single, Some(c.clone()), &hits, digests, &mut incoming)?;
        if f.payees.len() < p.min_payees {
            continue;
        }
        if single.is_none() {
            // Every address reached is an exchange deposit address: a shared deposit.
            let deposit = Category::new("exchange_deposit");
            if hits
                .iter()
                .all(|h| h.arrival.category.as_ref() == Some(&deposit))
            {
                f.category = Some(deposit);
            }
            let mut merges =
                clusters.merge_evidence(&c, &members.iter().copied().collect::<Vec<_>>());
            merges.truncate(20);
            f.merges = merges;
        }
        cands.push(candidate(f, hits, digests, p));
    }
    // "Most of it went on": the same share that makes a payout count toward an address.
    let (cands, mut fed) = take_feeders(cands, digests, p.salary_share.max(0.5));
    let (mut shared, mut findings): (Vec<Finding>, Vec<Finding>) = fold(cands, digests)
        .into_iter()
        .map(|mut f| {
            if let Some(mut up) = fed.remove(&f.key) {
                up.sort_by(|a, b| a.hops.cmp(&b.hops).then(a.key.cmp(&b.key)));
                f.upstream = up;
            }
            f
        })
        // Salaries meet where most of them went: a finding (not a shared deposit: one exchange
        // account is one customer, whatever part of a salary went in) needs `min_payees` payees
        // of which most of a payout reached it. The others were candidates only so that their
        // downstream addresses are continuations, not findings.
        .filter(|f| {
            f.category.as_ref().map(Category::as_str) == Some("exchange_deposit")
                || f.salary_payees >= p.min_payees
        })
        .partition(|f| f.category.as_ref().map(Category::as_str) == Some("exchange_deposit"));
    rank(&mut findings, assets);
    rank(&mut shared, assets);
    // Payees in one cluster.
    let mut pc: BTreeMap<String, BTreeMap<Address, String>> = BTreeMap::new();
    for x in payouts {
        if let Some(c) = clusters.cluster_of(&x.address) {
            pc.entry(c)
                .or_default()
                .entry(x.address)
                .or_insert_with(|| x.payee.clone());
        }
    }
    let payee_clusters = pc
        .into_iter()
        .filter(|(_, m)| m.len() >= 2)
        .map(|(cluster, m)| PayeeCluster {
            evidence: clusters.merge_evidence(&cluster, &m.keys().copied().collect::<Vec<_>>()),
            cluster,
            payees: m
                .into_iter()
                .map(|(address, payee)| ClusterPayee { payee, address })
                .collect(),
        })
        .collect();
    Ok(Convergence {
        findings,
        shared_deposits: shared,
        payee_clusters,
    })
}
