//! Convergence detection: addresses and clusters that receive value from several distinct
//! payees within a hop limit and a time window (the DPRK IT-worker signature: "different"
//! contractors whose salaries end up in one wallet), payees the clustering puts in one
//! cluster, and exchange deposit addresses several payees paid into.
//!
//! Pure over the per-payout trace digests; ranking: number of payees (descending), tainted
//! amount (descending), hops (ascending), then the key.

use super::{ClusterLookup, Payout, back_chain};
use crate::{
    PathHop, Status, TraceError, TraceResult,
    result::{FlowEdge, ser_display},
    source::Category,
};
use paytrace_indexer::{Address, Amount, Asset, Timestamp, TransferKey};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
}

impl Default for ConvergenceParams {
    fn default() -> Self {
        Self {
            min_payees: 2,
            max_hops: 5,
            window_secs: Some(90 * 86_400),
            ignore_categories: vec!["exchange".into(), "bridge".into(), "defi".into()],
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
    /// Addresses reached (hops ≥ 1) in the payout asset.
    pub arrivals: Vec<Arrival>,
    /// Transfers that carried taint.
    pub edges: Vec<FlowEdge>,
}

/// One address a payout reached.
#[derive(Clone, Debug)]
pub struct Arrival {
    /// Address.
    pub address: Address,
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
}

impl TraceDigest {
    /// The digest of the trace `r` of payout `p`.
    pub fn new(p: &Payout, r: &TraceResult) -> Self {
        let arrivals = r
            .destinations
            .iter()
            .filter(|d| d.asset == p.asset && d.hops >= 1 && d.address != p.address)
            .map(|d| Arrival {
                address: d.address,
                category: d.category.clone(),
                labels: d.labels.clone(),
                status: d.status,
                hops: d.hops,
                amount: d.amount,
                time: d.first_arrival,
            })
            .collect();
        Self {
            payee: p.payee.clone(),
            payee_address: p.address,
            seed: p.key,
            asset: p.asset,
            arrivals,
            edges: r.edges.clone(),
        }
    }
}

/// A payee involved in a finding.
#[derive(Clone, Debug, Serialize)]
pub struct FindingPayee {
    /// Name.
    pub payee: String,
    /// Address.
    pub address: Address,
    /// Tainted value of this payee that arrived, raw units.
    pub amount: Amount,
    /// Shortest hops.
    pub hops: u32,
    /// First arrival.
    pub first_arrival: Timestamp,
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
    /// Asset of the amounts.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Tainted value that arrived from these payees, raw units.
    pub amount: Amount,
    /// Shortest hops from any of the payees.
    pub hops: u32,
    /// First arrival.
    pub first_arrival: Timestamp,
    /// Last arrival in the window.
    pub last_arrival: Timestamp,
    /// The evidence subgraph: transfers from the payouts to the finding, in time order.
    pub evidence: Vec<PathHop>,
}

/// Payees that the clustering puts in one cluster.
#[derive(Clone, Debug, Serialize)]
pub struct PayeeCluster {
    /// Cluster id.
    pub cluster: String,
    /// The payees.
    pub payees: Vec<ClusterPayee>,
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

struct Hit<'a> {
    digest: usize,
    arrival: &'a Arrival,
}

/// The arrivals whose times fit the window and that have the most distinct payees (earliest
/// such window on ties).
fn best_window<'a>(
    mut hits: Vec<Hit<'a>>,
    digests: &[TraceDigest],
    window: Option<u64>,
) -> Vec<Hit<'a>> {
    hits.sort_by_key(|h| (h.arrival.time, h.digest));
    let Some(w) = window else { return hits };
    let mut best = (0usize, 0usize, 0usize); // (payees, start, end)
    let mut start = 0;
    for end in 0..hits.len() {
        while hits[end]
            .arrival
            .time
            .0
            .saturating_sub(hits[start].arrival.time.0)
            > w
        {
            start += 1;
        }
        let n = hits[start..=end]
            .iter()
            .map(|h| digests[h.digest].payee_address)
            .collect::<BTreeSet<_>>()
            .len();
        if n > best.0 {
            best = (n, start, end + 1);
        }
    }
    hits.drain(best.1..best.2).collect()
}

fn finding<'d>(
    key: String,
    address: Option<Address>,
    cluster: Option<String>,
    hits: &[Hit<'_>],
    digests: &'d [TraceDigest],
    incoming: &mut HashMap<usize, HashMap<Address, Vec<&'d FlowEdge>>>,
) -> Result<Finding, TraceError> {
    let mut payees: BTreeMap<Address, FindingPayee> = BTreeMap::new();
    let mut amount = Amount::ZERO;
    let mut addresses = BTreeSet::new();
    type HopKey = (
        Timestamp,
        paytrace_indexer::BlockNumber,
        paytrace_indexer::TxHash,
        Address,
        Address,
    );
    let mut evidence: BTreeMap<HopKey, PathHop> = BTreeMap::new();
    for h in hits {
        let d = &digests[h.digest];
        let a = h.arrival;
        amount = amount.checked_add(a.amount)?;
        addresses.insert(a.address);
        let e = payees
            .entry(d.payee_address)
            .or_insert_with(|| FindingPayee {
                payee: d.payee.clone(),
                address: d.payee_address,
                amount: Amount::ZERO,
                hops: a.hops,
                first_arrival: a.time,
            });
        e.amount = e.amount.checked_add(a.amount)?;
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
        for hop in back_chain(inc, d.seed, &a.address, &d.asset) {
            evidence
                .entry((hop.time, hop.block, hop.tx_hash, hop.from, hop.to))
                .or_insert(hop);
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
    let asset = hits
        .first()
        .map(|h| digests[h.digest].asset)
        .unwrap_or(Asset::Native);
    let evidence: Vec<PathHop> = evidence.into_values().collect();
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
        asset,
        amount,
        hops,
        first_arrival: first,
        last_arrival: last,
        evidence,
    })
}

fn rank(v: &mut [Finding]) {
    v.sort_by(|a, b| {
        b.payees
            .len()
            .cmp(&a.payees.len())
            .then(b.amount.cmp(&a.amount))
            .then(a.hops.cmp(&b.hops))
            .then(a.key.cmp(&b.key))
    });
    for (i, f) in v.iter_mut().enumerate() {
        f.rank = i + 1;
    }
}

/// Finds convergence points, shared deposit addresses and payee clusters.
pub fn detect<C: ClusterLookup>(
    digests: &[TraceDigest],
    payouts: &[Payout],
    clusters: &C,
    p: &ConvergenceParams,
) -> Result<Convergence, TraceError> {
    let ignore: BTreeSet<Category> = p
        .ignore_categories
        .iter()
        .map(|c| Category::new(c))
        .collect();
    // (address, asset) -> arrivals
    let mut by_addr: BTreeMap<(Address, Asset), Vec<Hit<'_>>> = BTreeMap::new();
    for (i, d) in digests.iter().enumerate() {
        for a in &d.arrivals {
            if a.hops > p.max_hops
                || a.amount.is_zero()
                || a.category.as_ref().is_some_and(|c| ignore.contains(c))
            {
                continue;
            }
            by_addr.entry((a.address, d.asset)).or_default().push(Hit {
                digest: i,
                arrival: a,
            });
        }
    }
    let mut incoming = HashMap::new();
    let mut findings = Vec::new();
    let mut shared = Vec::new();
    let mut by_cluster: BTreeMap<(String, Asset), Vec<Hit<'_>>> = BTreeMap::new();
    let mut address_payees: BTreeMap<String, Vec<BTreeSet<Address>>> = BTreeMap::new();
    for ((addr, asset), hits) in by_addr {
        let cluster = clusters.cluster_of(&addr);
        if let Some(c) = &cluster {
            by_cluster
                .entry((c.clone(), asset))
                .or_default()
                .extend(hits.iter().map(|h| Hit {
                    digest: h.digest,
                    arrival: h.arrival,
                }));
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
            cluster.clone(),
            &hits,
            digests,
            &mut incoming,
        )?;
        if f.payees.len() < p.min_payees {
            continue;
        }
        if let Some(c) = &cluster {
            address_payees
                .entry(c.clone())
                .or_default()
                .push(f.payees.iter().map(|x| x.address).collect());
        }
        if f.category.as_ref().map(Category::as_str) == Some("exchange_deposit") {
            shared.push(f);
        } else {
            findings.push(f);
        }
    }
    for ((c, _asset), hits) in by_cluster {
        let distinct: BTreeSet<Address> = hits
            .iter()
            .map(|h| digests[h.digest].payee_address)
            .collect();
        let members: BTreeSet<Address> = hits.iter().map(|h| h.arrival.address).collect();
        if distinct.len() < p.min_payees || members.len() < 2 {
            continue;
        }
        let hits = best_window(hits, digests, p.window_secs);
        let f = finding(
            format!("cluster:{c}"),
            None,
            Some(c.clone()),
            &hits,
            digests,
            &mut incoming,
        )?;
        let set: BTreeSet<Address> = f.payees.iter().map(|x| x.address).collect();
        // Only when the cluster joins more payees than any one of its addresses does.
        let covered = address_payees
            .get(&c)
            .is_some_and(|v| v.iter().any(|s| s.is_superset(&set)));
        if f.payees.len() >= p.min_payees && !covered {
            findings.push(f);
        }
    }
    rank(&mut findings);
    rank(&mut shared);
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
