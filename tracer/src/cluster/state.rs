//! The in-memory side of a clustering run: the union-find, new ids, and everything the run
//! found, waiting to be committed (or inspected, in tests).

use super::{
    AirdropForward, AirdropHit, ClusterError, CoinJoinFlag, CollapseGuard, DepositRecord,
    MergeRecord, RefusedMerge, RunStats, UnionFind,
};
use paytrace_indexer::{Address, BlockRef, ChainId};
use std::collections::{BTreeMap, HashMap};

/// What earlier runs stored, as the engine needs it. the cluster store (`paytrace_app::clusters`) implements it on
/// the store; [`NoPersisted`] is the empty history (in-memory runs).
pub trait Persisted {
    /// The id of `address`, if it has one.
    fn id(&self, address: &Address) -> Result<Option<u32>, ClusterError>;
    /// The deposit record of `address`.
    fn deposit(&self, address: &Address) -> Result<Option<DepositRecord>, ClusterError>;
    /// The airdrop of `token` that `recipient` received.
    fn airdrop_hit(
        &self,
        token: &Address,
        recipient: &Address,
    ) -> Result<Option<AirdropHit>, ClusterError>;
    /// The recorded forwards of airdrops of `token` to `aggregator`.
    fn airdrop_forwards(
        &self,
        token: &Address,
        aggregator: &Address,
    ) -> Result<Vec<AirdropForward>, ClusterError>;
}

/// Nothing stored before.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPersisted;

impl Persisted for NoPersisted {
    fn id(&self, _: &Address) -> Result<Option<u32>, ClusterError> {
        Ok(None)
    }
    fn deposit(&self, _: &Address) -> Result<Option<DepositRecord>, ClusterError> {
        Ok(None)
    }
    fn airdrop_hit(&self, _: &Address, _: &Address) -> Result<Option<AirdropHit>, ClusterError> {
        Ok(None)
    }
    fn airdrop_forwards(
        &self,
        _: &Address,
        _: &Address,
    ) -> Result<Vec<AirdropForward>, ClusterError> {
        Ok(Vec::new())
    }
}

/// The result of one merge attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Two clusters became one.
    Merged,
    /// The addresses already were in one cluster.
    AlreadyJoined,
    /// The collapse guard refused it.
    Refused,
}

/// The union-find and the pending results of a run.
#[derive(Debug, Default)]
pub struct ClusterState {
    /// The union-find over every id (stored and new).
    pub uf: UnionFind,
    /// Ids below this are stored already.
    pub base_len: u32,
    /// Ids given in this run.
    pub new_ids: HashMap<Address, u32>,
    /// Addresses given an id in this run, in id order from `base_len`.
    pub new_addrs: Vec<Address>,
    /// Merges of this run.
    pub merges: Vec<MergeRecord>,
    /// Merges the collapse guard refused in this run.
    pub refused: Vec<RefusedMerge>,
    /// CoinJoins flagged in this run.
    pub coinjoins: Vec<CoinJoinFlag>,
    /// Deposit addresses found in this run.
    pub deposits: HashMap<Address, DepositRecord>,
    /// Airdrop receipts by (token, recipient).
    pub airdrop_hits: HashMap<(Address, Address), AirdropHit>,
    /// Airdrop forwards by (token, aggregator).
    pub airdrop_forwards: BTreeMap<(Address, Address), Vec<AirdropForward>>,
    /// The last block clustered per chain, as of this run.
    pub checkpoints: BTreeMap<ChainId, BlockRef>,
    pub(crate) guard: CollapseGuard,
    /// Counts of this run.
    pub stats: RunStats,
    /// The stored `[parent, size]` entries as loaded (to find what changed at commit).
    pub orig: Vec<[u32; 2]>,
}

impl ClusterState {
    /// An empty state (nothing stored) with `guard`.
    pub fn new(guard: CollapseGuard) -> Self {
        Self {
            guard,
            ..Self::default()
        }
    }

    /// A state continuing from a stored union-find of `uf.len()` ids.
    pub fn resume(uf: UnionFind, guard: CollapseGuard) -> Result<Self, ClusterError> {
        let base_len = u32::try_from(uf.len()).map_err(|_| ClusterError::IdSpaceFull)?;
        Ok(Self {
            orig: uf.nodes().to_vec(),
            uf,
            base_len,
            guard,
            ..Self::default()
        })
    }

    /// The id of `address`, assigning a new one on first sight.
    pub(crate) fn id_of(
        &mut self,
        address: &Address,
        p: &dyn Persisted,
    ) -> Result<u32, ClusterError> {
        if let Some(&id) = self.new_ids.get(address) {
            return Ok(id);
        }
        if let Some(id) = p.id(address)? {
            return Ok(id);
        }
        let id = self.uf.push().ok_or(ClusterError::IdSpaceFull)?;
        self.new_ids.insert(*address, id);
        self.new_addrs.push(*address);
        Ok(id)
    }

    /// The id of `address` if it has one (stored or new), without assigning.
    pub fn lookup(
        &self,
        address: &Address,
        p: &dyn Persisted,
    ) -> Result<Option<u32>, ClusterError> {
        match self.new_ids.get(address) {
            Some(&id) => Ok(Some(id)),
            None => p.id(address),
        }
    }

    /// Merges the clusters of `r.a` and `r.b` unless the collapse guard refuses; records the
    /// evidence of a merge that joined two clusters, and of a refused one.
    pub fn merge(
        &mut self,
        r: MergeRecord,
        p: &dyn Persisted,
    ) -> Result<MergeOutcome, ClusterError> {
        if r.a == r.b {
            return Ok(MergeOutcome::AlreadyJoined);
        }
        let a = self.id_of(&r.a, p)?;
        let b = self.id_of(&r.b, p)?;
        let (ra, rb) = (self.uf.find(a), self.uf.find(b));
        if ra == rb {
            return Ok(MergeOutcome::AlreadyJoined);
        }
        let (size_a, size_b) = (self.uf.set_size(ra), self.uf.set_size(rb));
        if r.confidence < self.guard.min_confidence
            && size_a >= self.guard.size_threshold
            && size_b >= self.guard.size_threshold
        {
            tracing::debug!(a = %r.a, b = %r.b, heuristic = %r.heuristic, size_a, size_b, "collapse guard refused a merge");
            self.refused.push(RefusedMerge {
                record: r,
                size_a,
                size_b,
            });
            self.stats.refused += 1;
            return Ok(MergeOutcome::Refused);
        }
        self.uf.union(ra, rb);
        self.merges.push(r);
        self.stats.merges += 1;
        Ok(MergeOutcome::Merged)
    }

    /// Whether `a` and `b` are in one cluster (in this state).
    pub fn same_cluster(
        &mut self,
        a: &Address,
        b: &Address,
        p: &dyn Persisted,
    ) -> Result<bool, ClusterError> {
        if a == b {
            return Ok(true);
        }
        match (self.lookup(a, p)?, self.lookup(b, p)?) {
            (Some(x), Some(y)) => Ok(self.uf.find(x) == self.uf.find(y)),
            _ => Ok(false),
        }
    }

    /// The non-singleton clusters among the addresses that got an id in this state (for
    /// in-memory runs: all of them), each sorted, the list sorted.
    pub fn clusters(&mut self) -> Vec<Vec<Address>> {
        let mut by_root: BTreeMap<u32, Vec<Address>> = BTreeMap::new();
        let addrs = self.new_addrs.clone();
        for a in addrs {
            if let Some(&id) = self.new_ids.get(&a) {
                let r = self.uf.find(id);
                by_root.entry(r).or_default().push(a);
            }
        }
        let mut out: Vec<Vec<Address>> = by_root
            .into_values()
            .filter(|v| v.len() > 1)
            .map(|mut v| {
                v.sort();
                v
            })
            .collect();
        out.sort();
        out
    }

    /// Merges recorded so far.
    pub fn merges(&self) -> &[MergeRecord] {
        &self.merges
    }

    /// Refused merges recorded so far.
    pub fn refused(&self) -> &[RefusedMerge] {
        &self.refused
    }

    /// CoinJoins flagged so far.
    pub fn coinjoins(&self) -> &[CoinJoinFlag] {
        &self.coinjoins
    }

    /// Deposit addresses found so far.
    pub fn deposits(&self) -> impl Iterator<Item = &DepositRecord> {
        self.deposits.values()
    }

    /// Records waiting to be committed.
    pub fn pending(&self) -> usize {
        self.new_addrs.len()
            + self.merges.len()
            + self.refused.len()
            + self.coinjoins.len()
            + self.deposits.len()
            + self.airdrop_hits.len()
            + self.airdrop_forwards.len()
    }

    /// Counts so far.
    pub fn stats(&self) -> RunStats {
        self.stats
    }
}
