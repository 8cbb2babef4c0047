//! `cluster show` and `cluster explain` as the command-line tool and the server answer them:
//! the views (`--json` keys, docs/cli.md) built from the cluster keyspaces and the labels.

use crate::clusters::{ClusterLabel, ClusterStore, LabelConflict};
use paytrace_indexer::{Address, ChainId, Store, StoreError, labels::LabelStore};
use paytrace_tracer::cluster::{ClusterError, DepositRecord, MergeRecord, RefusedMerge};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why a cluster query failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterQueryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster keyspaces failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The label store failed.
    #[error("opening the label store: {0}")]
    Labels(#[from] paytrace_indexer::labels::LabelError),
}

/// One merge as shown in JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MergeView {
    /// One side.
    pub a: Address,
    /// The other side.
    pub b: Address,
    /// The heuristic's name.
    pub heuristic: String,
    /// Its confidence (0-100).
    pub confidence: u8,
    /// Chain name.
    pub chain: String,
    /// Block of the evidence.
    pub block: u64,
    /// Transaction of the evidence.
    pub tx: String,
    /// A second transaction of the evidence, if any.
    pub related_tx: Option<String>,
}

/// A merge the collapse guard refused.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedView {
    /// The merge.
    #[serde(flatten)]
    pub merge: MergeView,
    /// Size of the first cluster.
    pub size_a: u32,
    /// Size of the second cluster.
    pub size_b: u32,
}

/// The exchange a deposit address sweeps to.
#[derive(Debug, Clone, Serialize)]
pub struct DepositView {
    /// The exchange's hot wallet.
    pub exchange: Address,
    /// Its entity, when known.
    pub entity: Option<String>,
    /// Chain name.
    pub chain: String,
    /// Block of the first sweep.
    pub block: u64,
    /// The first sweep.
    pub sweep_tx: String,
}

/// `cluster show --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ShowView {
    /// The address asked about.
    pub address: Address,
    /// Its cluster id (none: no heuristic merged it).
    pub cluster: Option<u32>,
    /// Members.
    pub size: u32,
    /// The members listed (at most the limit).
    pub members: Vec<Address>,
    /// Labels of all members.
    pub labels: Vec<ClusterLabel>,
    /// Entities that disagree.
    pub conflicts: Vec<LabelConflict>,
    /// The exchange it deposits to, when it is a deposit address.
    pub deposit: Option<DepositView>,
    /// All merges of the cluster.
    pub merges_total: usize,
    /// The merges listed (at most the limit).
    pub merges: Vec<MergeView>,
}

/// `cluster explain --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainView {
    /// First address.
    pub a: Address,
    /// Second address.
    pub b: Address,
    /// Its cluster.
    pub cluster_a: Option<u32>,
    /// Its cluster.
    pub cluster_b: Option<u32>,
    /// Whether they are in one cluster.
    pub joined: bool,
    /// The merges joining them.
    pub path: Vec<MergeView>,
    /// Merges between their clusters the collapse guard refused.
    pub refused: Vec<RefusedView>,
}

fn chain_names(store: &Store) -> Result<BTreeMap<ChainId, String>, StoreError> {
    Ok(store
        .chains()?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect())
}

fn name(names: &BTreeMap<ChainId, String>, c: ChainId) -> String {
    names.get(&c).cloned().unwrap_or_else(|| c.0.to_string())
}

fn view(m: &MergeRecord, names: &BTreeMap<ChainId, String>) -> MergeView {
    MergeView {
        a: m.a,
        b: m.b,
        heuristic: m.heuristic.name(),
        confidence: m.confidence,
        chain: name(names, m.chain),
        block: m.block.0,
        tx: m.tx.to_string(),
        related_tx: m.related_tx.map(|t| t.to_string()),
    }
}

fn refused_view(r: &RefusedMerge, names: &BTreeMap<ChainId, String>) -> RefusedView {
    RefusedView {
        merge: view(&r.record, names),
        size_a: r.size_a,
        size_b: r.size_b,
    }
}

/// The cluster of `address`: at most `limit` members and merges listed.
pub fn show(store: &Store, address: Address, limit: usize) -> Result<ShowView, ClusterQueryError> {
    let cs = ClusterStore::open(store)?;
    let names = chain_names(store)?;
    let labels = LabelStore::open(store)?;
    let cluster = cs.cluster_of(&address)?;
    let (members, size, merges) = match cluster {
        Some(c) => (
            cs.members_limit(c, limit)?,
            cs.size(c)?,
            cs.merges_of_limit(c, limit)?,
        ),
        None => (vec![address], 1, Vec::new()),
    };
    // Labels of every member (not only the listed ones).
    let inherited = match cluster {
        Some(c) => cs.labels(c, &labels)?,
        None => cs.labels_of_members(&members, &labels)?,
    };
    let deposit = cs.deposit(&address)?.map(|d: DepositRecord| DepositView {
        exchange: d.exchange,
        entity: d.entity,
        chain: name(&names, d.chain),
        block: d.block.0,
        sweep_tx: d.sweep_tx.to_string(),
    });
    Ok(ShowView {
        address,
        cluster: cluster.map(|c| c.0),
        size,
        members,
        labels: inherited.labels,
        conflicts: inherited.conflicts,
        deposit,
        merges_total: usize::try_from(size.saturating_sub(1)).unwrap_or(usize::MAX),
        merges: merges.iter().map(|m| view(m, &names)).collect(),
    })
}

/// The merges joining `x` and `y`, or why they are not joined.
pub fn explain(store: &Store, x: Address, y: Address) -> Result<ExplainView, ClusterQueryError> {
    let cs = ClusterStore::open(store)?;
    let names = chain_names(store)?;
    let e = cs.explain(&x, &y)?;
    Ok(ExplainView {
        a: e.a,
        b: e.b,
        cluster_a: e.cluster_a.map(|c| c.0),
        cluster_b: e.cluster_b.map(|c| c.0),
        joined: e.joined,
        path: e.path.iter().map(|m| view(m, &names)).collect(),
        refused: e.refused.iter().map(|r| refused_view(r, &names)).collect(),
    })
}
