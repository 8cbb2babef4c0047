//! The cluster store: clusters persisted in their registered keyspaces of the paytrace store,
//! the query API, and `run`, which drives the tracer's clustering engine (pure over
//! [`ClusterSource`](paytrace_tracer::cluster::ClusterSource) and [`Persisted`]) over the
//! indexed blocks and commits its results.
//!
//! | keyspace               | key                                   | value                          |
//! |------------------------|---------------------------------------|--------------------------------|
//! | `cluster_ids`          | address key                           | id u32                         |
//! | `cluster_addrs`        | id u32                                | address key                    |
//! | `cluster_uf`           | chunk u32 (ids `chunk*4096..`)        | (parent u32, size u32) × 4096  |
//! | `cluster_members`      | root u32 + id u32                     | empty                          |
//! | `cluster_merges`       | sequence u64                          | postcard [`MergeRecord`]       |
//! | `cluster_merge_index`  | id u32 + sequence u64                 | empty                          |
//! | `cluster_refused`      | sequence u64                          | postcard [`RefusedMerge`]      |
//! | `cluster_coinjoins`    | tx hash (32 bytes)                    | postcard [`CoinJoinFlag`]      |
//! | `cluster_deposits`     | address key                           | postcard [`DepositRecord`]     |
//! | `cluster_airdrop_hits` | token key + recipient key             | postcard [`AirdropHit`]        |
//! | `cluster_airdrop_fwd`  | token key + aggregator key + from key | postcard [`AirdropForward`]    |
//! | `cluster_meta`         | `n_ids`, `merge_seq`, `refused_seq`, `cp` + chain u16 | u32/u64/postcard `BlockRef` |
//!
//! Integers are big-endian. After every run each stored parent is the root, so
//! [`ClusterStore::cluster_of`] is two point reads. A run is committed in one atomic batch.

use paytrace_indexer::{
    Address, BlockNumber, BlockRef, ChainId, Store, TxHash,
    labels::{Category, LabelAddress, LabelStore, today},
    store::{
        Table,
        keyspaces::{self as ks, Keyspace, Postcard, Raw, U32Be, Unit},
    },
};
use paytrace_tracer::cluster::{
    AirdropForward, AirdropHit, ClusterError, ClusterId, ClusterParams, ClusterState, CoinJoinFlag,
    DepositRecord, Exchanges, MergeRecord, Persisted, RefusedMerge, RunStats, UnionFind, run_range,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, VecDeque};

const CHUNK: u32 = 4096;
const IDS: Keyspace<Raw, U32Be> = Keyspace::new(&ks::CLUSTER_IDS);
const ADDRS: Keyspace<Raw, Raw> = Keyspace::new(&ks::CLUSTER_ADDRS);
const UF: Keyspace<Raw, Raw> = Keyspace::new(&ks::CLUSTER_UF);
const MEMBERS: Keyspace<Raw, Unit> = Keyspace::new(&ks::CLUSTER_MEMBERS);
const MERGES: Keyspace<Raw, Postcard<MergeRecord>> = Keyspace::new(&ks::CLUSTER_MERGES);
const MERGE_INDEX: Keyspace<Raw, Unit> = Keyspace::new(&ks::CLUSTER_MERGE_INDEX);
const REFUSED: Keyspace<Raw, Postcard<RefusedMerge>> = Keyspace::new(&ks::CLUSTER_REFUSED);
const COINJOINS: Keyspace<Raw, Postcard<CoinJoinFlag>> = Keyspace::new(&ks::CLUSTER_COINJOINS);
const DEPOSITS: Keyspace<Raw, Postcard<DepositRecord>> = Keyspace::new(&ks::CLUSTER_DEPOSITS);
const AIRDROP_HITS: Keyspace<Raw, Postcard<AirdropHit>> = Keyspace::new(&ks::CLUSTER_AIRDROP_HITS);
const AIRDROP_FWD: Keyspace<Raw, Postcard<AirdropForward>> =
    Keyspace::new(&ks::CLUSTER_AIRDROP_FWD);
const META: Keyspace<Raw, Raw> = Keyspace::new(&ks::CLUSTER_META);

/// Handle on the cluster keyspaces of a [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct ClusterStore {
    store: Store,
    ids: Table<Raw, U32Be>,
    addrs: Table<Raw, Raw>,
    uf: Table<Raw, Raw>,
    members: Table<Raw, Unit>,
    merges: Table<Raw, Postcard<MergeRecord>>,
    merge_index: Table<Raw, Unit>,
    refused: Table<Raw, Postcard<RefusedMerge>>,
    coinjoins: Table<Raw, Postcard<CoinJoinFlag>>,
    deposits: Table<Raw, Postcard<DepositRecord>>,
    airdrop_hits: Table<Raw, Postcard<AirdropHit>>,
    airdrop_fwd: Table<Raw, Postcard<AirdropForward>>,
    meta: Table<Raw, Raw>,
}

/// A label a cluster inherits from one of its members.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ClusterLabel {
    /// The member carrying the label (the evidence).
    pub member: Address,
    /// Category (`exchange`, `exchange_deposit`, ...).
    pub category: String,
    /// Entity.
    pub entity: String,
    /// Source (`cluster:deposit_address` for deposit addresses found by clustering).
    pub source: String,
    /// Confidence 0–100.
    pub confidence: u8,
}

/// Two or more entities claiming one cluster (e.g. two exchanges).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct LabelConflict {
    /// The entities, sorted.
    pub entities: Vec<String>,
    /// The labels involved.
    pub labels: Vec<ClusterLabel>,
}

/// The labels of a cluster and their conflicts.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct ClusterLabels {
    /// Every label of every member.
    pub labels: Vec<ClusterLabel>,
    /// Conflicting attributions (more than one service entity).
    pub conflicts: Vec<LabelConflict>,
}

/// Why two addresses are (or are not) in one cluster.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Explanation {
    /// First address.
    pub a: Address,
    /// Second address.
    pub b: Address,
    /// Cluster of `a` (`None`: in no merge).
    pub cluster_a: Option<ClusterId>,
    /// Cluster of `b`.
    pub cluster_b: Option<ClusterId>,
    /// Whether they are in one cluster.
    pub joined: bool,
    /// The merges joining them, in order from `a` to `b` (empty when not joined).
    pub path: Vec<MergeRecord>,
    /// Merges between their two clusters that the collapse guard refused.
    pub refused: Vec<RefusedMerge>,
}

/// What `run` did on one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// Chain name.
    pub chain: String,
    /// First block clustered (`None`: nothing new).
    pub from: Option<u64>,
    /// Last block clustered (the new checkpoint).
    pub to: Option<u64>,
    /// Counts.
    pub stats: RunStats,
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, ClusterError> {
    postcard::to_allocvec(v).map_err(|e| ClusterError::Encode(e.to_string()))
}

fn decode<T: for<'a> Deserialize<'a>>(
    keyspace: &'static str,
    key: &[u8],
    v: &[u8],
) -> Result<T, ClusterError> {
    postcard::from_bytes(v).map_err(|e| ClusterError::Corrupt {
        keyspace,
        key: alloy_primitives::hex::encode(key),
        reason: e.to_string(),
    })
}

fn akey(a: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.key_len());
    a.write_key(&mut k);
    k
}

fn u32_of(keyspace: &'static str, key: &[u8], v: &[u8]) -> Result<u32, ClusterError> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| ClusterError::Corrupt {
            keyspace,
            key: alloy_primitives::hex::encode(key),
            reason: format!("expected 4 bytes, found {}", v.len()),
        })
}

fn u64_of(keyspace: &'static str, key: &[u8], v: &[u8]) -> Result<u64, ClusterError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| ClusterError::Corrupt {
            keyspace,
            key: alloy_primitives::hex::encode(key),
            reason: format!("expected 8 bytes, found {}", v.len()),
        })
}

fn pair(a: u32, b: impl AsRef<[u8]>) -> Vec<u8> {
    let mut k = a.to_be_bytes().to_vec();
    k.extend_from_slice(b.as_ref());
    k
}

fn cp_key(chain: ChainId) -> Vec<u8> {
    let mut k = b"cp".to_vec();
    k.extend_from_slice(&chain.0.to_be_bytes());
    k
}

/// Encodes the union-find entries of chunk `c` (ids `c*CHUNK..`).
fn chunk_bytes(nodes: &[[u32; 2]], c: u32) -> Vec<u8> {
    let lo = ((c as usize) * (CHUNK as usize)).min(nodes.len());
    let hi = (lo + CHUNK as usize).min(nodes.len());
    let mut v = Vec::with_capacity((hi - lo) * 8);
    for [p, s] in &nodes[lo..hi] {
        v.extend_from_slice(&p.to_be_bytes());
        v.extend_from_slice(&s.to_be_bytes());
    }
    v
}

impl ClusterStore {
    /// Opens the cluster keyspaces of `store` (created by the first run that writes them).
    pub fn open(store: &Store) -> Result<Self, ClusterError> {
        Ok(Self {
            store: store.clone(),
            ids: store.table(IDS)?,
            addrs: store.table(ADDRS)?,
            uf: store.table(UF)?,
            members: store.table(MEMBERS)?,
            merges: store.table(MERGES)?,
            merge_index: store.table(MERGE_INDEX)?,
            refused: store.table(REFUSED)?,
            coinjoins: store.table(COINJOINS)?,
            deposits: store.table(DEPOSITS)?,
            airdrop_hits: store.table(AIRDROP_HITS)?,
            airdrop_fwd: store.table(AIRDROP_FWD)?,
            meta: store.table(META)?,
        })
    }

    /// Removes every key of `t`, 100,000 per batch.
    fn clear<V: paytrace_indexer::store::Codec>(
        &self,
        t: &Table<Raw, V>,
    ) -> Result<(), ClusterError> {
        let mut batch = self.store.batch();
        for k in t.keys() {
            batch.remove(t, k?)?;
            if batch.len() >= 100_000 {
                std::mem::replace(&mut batch, self.store.batch()).commit()?;
            }
        }
        Ok(batch.commit()?)
    }

    /// Deletes every cluster record (before a rebuild from block 0). Indexed data is untouched.
    pub fn reset(&self) -> Result<(), ClusterError> {
        self.clear(&self.ids)?;
        self.clear(&self.addrs)?;
        self.clear(&self.uf)?;
        self.clear(&self.members)?;
        self.clear(&self.merges)?;
        self.clear(&self.merge_index)?;
        self.clear(&self.refused)?;
        self.clear(&self.coinjoins)?;
        self.clear(&self.deposits)?;
        self.clear(&self.airdrop_hits)?;
        self.clear(&self.airdrop_fwd)?;
        self.clear(&self.meta)?;
        Ok(self.store.persist()?)
    }

    fn meta_u64(&self, key: &[u8]) -> Result<u64, ClusterError> {
        match self.meta.get(key)? {
            Some(v) if v.len() == 4 => u32_of("cluster_meta", key, &v).map(u64::from),
            Some(v) => u64_of("cluster_meta", key, &v),
            None => Ok(0),
        }
    }

    /// Number of addresses with an id.
    pub fn len(&self) -> Result<u32, ClusterError> {
        u32::try_from(self.meta_u64(b"n_ids")?).map_err(|_| ClusterError::IdSpaceFull)
    }

    /// Whether no address has been clustered yet.
    pub fn is_empty(&self) -> Result<bool, ClusterError> {
        Ok(self.len()? == 0)
    }

    /// The last block of `chain` clustered so far.
    pub fn checkpoint(&self, chain: ChainId) -> Result<Option<BlockRef>, ClusterError> {
        let k = cp_key(chain);
        self.meta
            .get(&k)?
            .map(|v| decode("cluster_meta", &k, &v))
            .transpose()
    }

    fn uf_entry(&self, id: u32) -> Result<Option<(u32, u32)>, ClusterError> {
        let c = id / CHUNK;
        let Some(v) = self.uf.get(c.to_be_bytes())? else {
            return Ok(None);
        };
        let off = ((id % CHUNK) as usize) * 8;
        match (v.get(off..off + 4), v.get(off + 4..off + 8)) {
            (Some(p), Some(s)) => Ok(Some((
                u32_of("cluster_uf", &c.to_be_bytes(), p)?,
                u32_of("cluster_uf", &c.to_be_bytes(), s)?,
            ))),
            _ => Ok(None),
        }
    }

    /// The address with dense id `id`.
    pub fn address_of(&self, id: u32) -> Result<Option<Address>, ClusterError> {
        let k = id.to_be_bytes();
        match self.addrs.get(k)? {
            None => Ok(None),
            Some(v) => match Address::read_key(&v) {
                Some((a, n)) if n == v.len() => Ok(Some(a)),
                _ => Err(ClusterError::Corrupt {
                    keyspace: "cluster_addrs",
                    key: alloy_primitives::hex::encode(k),
                    reason: "bad address key".into(),
                }),
            },
        }
    }

    /// The cluster of `address`, or `None` when no heuristic ever merged it with anything
    /// (it is a cluster of its own).
    pub fn cluster_of(&self, address: &Address) -> Result<Option<ClusterId>, ClusterError> {
        let Some(id) = Persisted::id(self, address)? else {
            return Ok(None);
        };
        Ok(Some(ClusterId(
            self.uf_entry(id)?.map_or(id, |(parent, _)| parent),
        )))
    }

    /// Number of addresses in cluster `c`.
    pub fn size(&self, c: ClusterId) -> Result<u32, ClusterError> {
        Ok(self.uf_entry(c.0)?.map_or(1, |(_, s)| s))
    }

    /// The members of cluster `c`, sorted.
    pub fn members(&self, c: ClusterId) -> Result<Vec<Address>, ClusterError> {
        self.members_limit(c, usize::MAX)
    }

    /// At most `limit` members of cluster `c` (those with the lowest ids: the first seen),
    /// sorted; for showing a part of a large cluster without reading all of it.
    pub fn members_limit(&self, c: ClusterId, limit: usize) -> Result<Vec<Address>, ClusterError> {
        let mut out = Vec::new();
        for k in self.members.prefix_keys(c.0.to_be_bytes()).take(limit) {
            let k = k?;
            let id = u32_of("cluster_members", &k, k.get(4..).unwrap_or_default())?;
            if let Some(a) = self.address_of(id)? {
                out.push(a);
            }
        }
        out.sort();
        Ok(out)
    }

    fn merge_seqs(&self, id: u32) -> Result<Vec<u64>, ClusterError> {
        let mut out = Vec::new();
        for k in self.merge_index.prefix_keys(id.to_be_bytes()) {
            let k = k?;
            out.push(u64_of(
                "cluster_merge_index",
                &k,
                k.get(4..).unwrap_or_default(),
            )?);
        }
        Ok(out)
    }

    fn merge_record(&self, seq: u64) -> Result<Option<MergeRecord>, ClusterError> {
        Ok(self.merges.get(seq.to_be_bytes())?)
    }

    /// The evidence of every merge inside cluster `c`, in the order they happened.
    pub fn merges_of(&self, c: ClusterId) -> Result<Vec<MergeRecord>, ClusterError> {
        self.merges_of_limit(c, usize::MAX)
    }

    /// The merges touching the first members of cluster `c` (by id), at most `limit` records
    /// (the cluster has `size - 1` merges in all: only merges that joined two clusters are
    /// recorded).
    pub fn merges_of_limit(
        &self,
        c: ClusterId,
        limit: usize,
    ) -> Result<Vec<MergeRecord>, ClusterError> {
        let mut seqs = BTreeSet::new();
        for k in self.members.prefix_keys(c.0.to_be_bytes()) {
            if seqs.len() >= limit {
                break;
            }
            let k = k?;
            let id = u32_of("cluster_members", &k, k.get(4..).unwrap_or_default())?;
            seqs.extend(self.merge_seqs(id)?);
        }
        let seqs: Vec<u64> = seqs.into_iter().take(limit).collect();
        let mut out = Vec::with_capacity(seqs.len());
        for s in seqs {
            if let Some(r) = self.merge_record(s)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Every merge the collapse guard refused, oldest first.
    pub fn refused_merges(&self) -> Result<Vec<RefusedMerge>, ClusterError> {
        self.refused.iter().map(|kv| Ok(kv?.1)).collect()
    }

    /// The CoinJoin flag of transaction `tx`, if clustering detected one.
    pub fn coinjoin(&self, tx: &TxHash) -> Result<Option<CoinJoinFlag>, ClusterError> {
        Ok(self.coinjoins.get(tx.0.as_slice())?)
    }

    /// Every flagged CoinJoin.
    pub fn coinjoins(&self) -> Result<Vec<CoinJoinFlag>, ClusterError> {
        self.coinjoins.iter().map(|kv| Ok(kv?.1)).collect()
    }

    /// Why `a` and `b` are in one cluster (the merges on the path between them), or why not
    /// (their clusters, and merges between them that were refused).
    pub fn explain(&self, a: &Address, b: &Address) -> Result<Explanation, ClusterError> {
        let (ca, cb) = (self.cluster_of(a)?, self.cluster_of(b)?);
        let joined = a == b || (ca.is_some() && ca == cb);
        let mut path = Vec::new();
        if joined && a != b {
            path = self.path(a, b)?;
        }
        let mut refused = Vec::new();
        if !joined {
            for r in self.refused_merges()? {
                let (x, y) = (self.cluster_of(&r.record.a)?, self.cluster_of(&r.record.b)?);
                let hits_a =
                    |c: Option<ClusterId>, addr: &Address| addr == a || (ca.is_some() && c == ca);
                let hits_b =
                    |c: Option<ClusterId>, addr: &Address| addr == b || (cb.is_some() && c == cb);
                if (hits_a(x, &r.record.a) && hits_b(y, &r.record.b))
                    || (hits_b(x, &r.record.a) && hits_a(y, &r.record.b))
                {
                    refused.push(r);
                }
            }
        }
        Ok(Explanation {
            a: *a,
            b: *b,
            cluster_a: ca,
            cluster_b: cb,
            joined,
            path,
            refused,
        })
    }

    /// Breadth-first search over the merge records (a spanning forest) from `a` to `b`.
    fn path(&self, a: &Address, b: &Address) -> Result<Vec<MergeRecord>, ClusterError> {
        let mut prev: HashMap<Address, Option<(Address, MergeRecord)>> = HashMap::new();
        prev.insert(*a, None);
        let mut queue = VecDeque::from([*a]);
        while let Some(x) = queue.pop_front() {
            if x == *b {
                break;
            }
            let Some(id) = Persisted::id(self, &x)? else {
                continue;
            };
            for s in self.merge_seqs(id)? {
                let Some(r) = self.merge_record(s)? else {
                    continue;
                };
                let y = if r.a == x { r.b } else { r.a };
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(y) {
                    e.insert(Some((x, r)));
                    queue.push_back(y);
                }
            }
        }
        let mut out = Vec::new();
        let mut at = *b;
        while let Some(Some((from, r))) = prev.get(&at) {
            out.push(r.clone());
            at = *from;
        }
        out.reverse();
        Ok(out)
    }

    /// The labels cluster `c` inherits from its members (label store entries valid today and
    /// deposit addresses found by clustering), with conflicts: more than one entity among
    /// service categories (exchange, exchange_deposit, payroll provider, wallet service, ...).
    pub fn labels(&self, c: ClusterId, labels: &LabelStore) -> Result<ClusterLabels, ClusterError> {
        let members = self.members(c)?;
        self.labels_of_members(&members, labels)
    }

    /// [`ClusterStore::labels`] for an explicit member list (a singleton address, say).
    pub fn labels_of_members(
        &self,
        members: &[Address],
        labels: &LabelStore,
    ) -> Result<ClusterLabels, ClusterError> {
        let mut out = ClusterLabels::default();
        for m in members {
            for l in labels.labels_for(m, None)? {
                out.labels.push(ClusterLabel {
                    member: *m,
                    category: l.category.as_str().to_owned(),
                    entity: l.entity.clone(),
                    source: l.source.clone(),
                    confidence: l.confidence,
                });
            }
            if let Some(d) = Persisted::deposit(self, m)? {
                out.labels.push(ClusterLabel {
                    member: *m,
                    category: Category::ExchangeDeposit.as_str().to_owned(),
                    entity: d.entity.clone().unwrap_or_else(|| d.exchange.to_string()),
                    source: "cluster:deposit_address".to_owned(),
                    confidence: 100,
                });
            }
        }
        let service: Vec<&ClusterLabel> = out
            .labels
            .iter()
            .filter(|l| {
                Category::from_word(&l.category).is_some_and(|c| SERVICE_CATEGORIES.contains(&c))
            })
            .collect();
        let entities: BTreeSet<String> = service.iter().map(|l| l.entity.clone()).collect();
        if entities.len() > 1 {
            out.conflicts.push(LabelConflict {
                entities: entities.into_iter().collect(),
                labels: service.into_iter().cloned().collect(),
            });
        }
        Ok(out)
    }

    /// Clusters the blocks of chain `chain_name` indexed since the last run (incremental: the
    /// result equals clustering everything at once), and commits atomically.
    ///
    /// Fails with [`ClusterError::Reorged`] when blocks already clustered were replaced.
    pub fn run(
        &self,
        store: &Store,
        chain_name: &str,
        params: &ClusterParams,
        exchanges: &Exchanges,
    ) -> Result<RunReport, ClusterError> {
        self.run_with_progress(store, chain_name, params, exchanges, &mut |_, _| {})
    }

    /// [`ClusterStore::run`], calling `progress(blocks_done, blocks_total)` after each range
    /// (the total is fixed when the run starts: the blocks from the cluster checkpoint to the
    /// chain's checkpoint).
    pub fn run_with_progress(
        &self,
        store: &Store,
        chain_name: &str,
        params: &ClusterParams,
        exchanges: &Exchanges,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<RunReport, ClusterError> {
        let info = store
            .chain_by_name(chain_name)?
            .ok_or_else(|| ClusterError::UnknownChain(chain_name.to_owned()))?;
        let mut report = RunReport {
            chain: chain_name.to_owned(),
            from: None,
            to: None,
            stats: RunStats::default(),
        };
        let Some(head) = store.checkpoint(info.id)? else {
            return Ok(report);
        };
        let done = self.checkpoint(info.id)?;
        if let Some(cp) = &done {
            let stored = store.block(info.id, cp.number)?;
            let replaced = cp.number > head.number || stored.is_some_and(|b| b.hash != cp.hash);
            if replaced {
                return Err(ClusterError::Reorged {
                    chain: chain_name.to_owned(),
                    block: cp.number.0,
                    clustered: format!("{:#x}", cp.hash),
                    stored: stored
                        .map_or_else(|| "no such block".into(), |b| format!("{:#x}", b.hash)),
                });
            }
        }
        let from = match &done {
            Some(cp) => match cp.number.next() {
                Some(n) => n,
                None => return Ok(report),
            },
            None => BlockNumber(0),
        };
        if from > head.number {
            return Ok(report);
        }
        // Commit every `commit_pending` pending records (bounded memory; an interrupted run
        // resumes from the last commit) and at the end.
        let mut state = ClusterState::resume(self.load_uf()?, params.guard)?;
        let step = params.batch_blocks.max(1);
        let mut lo = from;
        loop {
            let hi = BlockNumber(lo.0.saturating_add(step - 1).min(head.number.0));
            run_range(
                store, &mut state, self, params, exchanges, info.id, info.kind, lo, hi,
            )?;
            progress(
                hi.0 - from.0 + 1,
                head.number.0.saturating_sub(from.0).saturating_add(1),
            );
            let last = hi >= head.number;
            if last || state.pending() >= params.commit_pending {
                let cp = if last {
                    head
                } else {
                    store.block(info.id, hi)?.unwrap_or(BlockRef {
                        number: hi,
                        hash: Default::default(),
                        parent: Default::default(),
                        time: Default::default(),
                    })
                };
                state.checkpoints.insert(info.id, cp);
                report.stats.add(&state.stats);
                let uf = self.commit(state)?;
                tracing::debug!(chain = chain_name, to = hi.0, "cluster commit");
                if last {
                    break;
                }
                state = ClusterState::resume(uf, params.guard)?;
            }
            match hi.next() {
                Some(n) => lo = n,
                None => break,
            }
        }
        report.from = Some(from.0);
        report.to = Some(head.number.0);
        // `cluster run` and the demo print their own summaries.
        tracing::debug!(
            chain = chain_name,
            from = from.0,
            to = head.number.0,
            merges = report.stats.merges,
            refused = report.stats.refused,
            coinjoins = report.stats.coinjoins,
            deposits = report.stats.deposits,
            "clustered"
        );
        Ok(report)
    }

    /// Loads the stored union-find.
    pub fn load_uf(&self) -> Result<UnionFind, ClusterError> {
        let n = self.len()?;
        let mut nodes: Vec<[u32; 2]> = Vec::with_capacity(n as usize);
        for kv in self.uf.iter() {
            let (k, v) = kv?;
            let c = u32_of("cluster_uf", &k, &k)?;
            let lo = (c as usize) * (CHUNK as usize);
            if lo != nodes.len() || v.len() % 8 != 0 {
                return Err(ClusterError::Corrupt {
                    keyspace: "cluster_uf",
                    key: alloy_primitives::hex::encode(&k),
                    reason: "union-find chunks are not contiguous".into(),
                });
            }
            for e in v.chunks_exact(8) {
                nodes.push([
                    u32_of("cluster_uf", &k, &e[..4])?,
                    u32_of("cluster_uf", &k, &e[4..])?,
                ]);
            }
        }
        nodes.truncate(n as usize);
        if nodes.len() != n as usize {
            return Err(ClusterError::Corrupt {
                keyspace: "cluster_uf",
                key: String::new(),
                reason: format!("{} union-find entries for {n} ids", nodes.len()),
            });
        }
        Ok(UnionFind::from_nodes(nodes))
    }

    /// Writes a union-find (fully compressed first) as chunks, `chunks_per_batch` per commit;
    /// used by the benchmark for a bulk save of a fresh structure.
    pub fn save_uf(&self, uf: &mut UnionFind, chunks_per_batch: usize) -> Result<(), ClusterError> {
        uf.compress_all();
        let n = u32::try_from(uf.len()).map_err(|_| ClusterError::IdSpaceFull)?;
        let chunks = n.div_ceil(CHUNK);
        let mut batch = self.store.batch();
        for c in 0..chunks {
            batch.insert(&self.uf, c.to_be_bytes(), &chunk_bytes(uf.nodes(), c))?;
            if (c as usize + 1).is_multiple_of(chunks_per_batch.max(1)) {
                std::mem::replace(&mut batch, self.store.batch()).commit()?;
            }
        }
        batch.insert(&self.meta, b"n_ids", &n.to_be_bytes().to_vec())?;
        batch.commit()?;
        Ok(self.store.persist()?)
    }

    /// Commits a run: new ids, changed union-find chunks and member entries, evidence, flags,
    /// heuristic state and checkpoints, in one atomic batch.
    fn commit(&self, mut state: ClusterState) -> Result<UnionFind, ClusterError> {
        let mut batch = self.store.batch_synced();
        let base = state.base_len;
        for (i, a) in state.new_addrs.iter().enumerate() {
            let id = base
                .checked_add(u32::try_from(i).map_err(|_| ClusterError::IdSpaceFull)?)
                .ok_or(ClusterError::IdSpaceFull)?;
            batch.insert(&self.ids, akey(a), &id)?;
            batch.insert(&self.addrs, id.to_be_bytes(), &akey(a))?;
        }
        state.uf.compress_all();
        let nodes = state.uf.nodes();
        let mut dirty: BTreeSet<u32> = BTreeSet::new();
        for (i, &[p, size]) in nodes.iter().enumerate() {
            let id = u32::try_from(i).map_err(|_| ClusterError::IdSpaceFull)?;
            let old = state.orig.get(i).copied();
            if old.map(|o| o[0]) != Some(p) {
                if let Some([o, _]) = old {
                    batch.remove(&self.members, pair(o, id.to_be_bytes()))?;
                }
                batch.insert(&self.members, pair(p, id.to_be_bytes()), &())?;
                dirty.insert(id / CHUNK);
            } else if old.map(|o| o[1]) != Some(size) {
                dirty.insert(id / CHUNK);
            }
        }
        for c in dirty {
            batch.insert(&self.uf, c.to_be_bytes(), &chunk_bytes(nodes, c))?;
        }
        let mut seq = self.meta_u64(b"merge_seq")?;
        for r in &state.merges {
            let k = seq.to_be_bytes();
            batch.insert(&self.merges, k, r)?;
            for a in [&r.a, &r.b] {
                if let Some(id) = state.lookup(a, self)? {
                    batch.insert(&self.merge_index, pair(id, k), &())?;
                }
            }
            seq += 1;
        }
        batch.insert(&self.meta, b"merge_seq", &seq.to_be_bytes().to_vec())?;
        let mut rseq = self.meta_u64(b"refused_seq")?;
        for r in &state.refused {
            batch.insert(&self.refused, rseq.to_be_bytes(), r)?;
            rseq += 1;
        }
        batch.insert(&self.meta, b"refused_seq", &rseq.to_be_bytes().to_vec())?;
        for f in &state.coinjoins {
            batch.insert(&self.coinjoins, f.tx.0.as_slice(), f)?;
        }
        for (a, d) in &state.deposits {
            batch.insert(&self.deposits, akey(a), d)?;
        }
        for ((token, r), h) in &state.airdrop_hits {
            let mut k = akey(token);
            k.extend_from_slice(&akey(r));
            batch.insert(&self.airdrop_hits, k, h)?;
        }
        for ((token, agg), fs) in &state.airdrop_forwards {
            for f in fs {
                let mut k = akey(token);
                k.extend_from_slice(&akey(agg));
                k.extend_from_slice(&akey(&f.from));
                batch.insert(&self.airdrop_fwd, k, f)?;
            }
        }
        for (chain, b) in &state.checkpoints {
            batch.insert(&self.meta, cp_key(*chain), &encode(b)?)?;
        }
        let n = u32::try_from(state.uf.len()).map_err(|_| ClusterError::IdSpaceFull)?;
        batch.insert(&self.meta, b"n_ids", &n.to_be_bytes().to_vec())?;
        batch.commit()?;
        Ok(state.uf)
    }
}

/// Categories whose entity claims ownership of an address: two of them in one cluster conflict.
const SERVICE_CATEGORIES: [Category; 11] = [
    Category::Exchange,
    Category::ExchangeDeposit,
    Category::PayrollProvider,
    Category::WalletService,
    Category::Mixer,
    Category::Bridge,
    Category::Otc,
    Category::Miner,
    Category::Gambling,
    Category::DarknetMarket,
    Category::Defi,
];

impl Persisted for ClusterStore {
    fn id(&self, address: &Address) -> Result<Option<u32>, ClusterError> {
        let k = akey(address);
        Ok(self.ids.get(&k)?)
    }

    fn deposit(&self, address: &Address) -> Result<Option<DepositRecord>, ClusterError> {
        let k = akey(address);
        Ok(self.deposits.get(&k)?)
    }

    fn airdrop_hit(
        &self,
        token: &Address,
        recipient: &Address,
    ) -> Result<Option<AirdropHit>, ClusterError> {
        let mut k = akey(token);
        k.extend_from_slice(&akey(recipient));
        Ok(self.airdrop_hits.get(&k)?)
    }

    fn airdrop_forwards(
        &self,
        token: &Address,
        aggregator: &Address,
    ) -> Result<Vec<AirdropForward>, ClusterError> {
        let mut k = akey(token);
        k.extend_from_slice(&akey(aggregator));
        self.airdrop_fwd.prefix(k).map(|kv| Ok(kv?.1)).collect()
    }
}

impl ClusterStore {
    /// The deposit record of `address`, if clustering found it to be an exchange deposit
    /// address.
    pub fn deposit(&self, address: &Address) -> Result<Option<DepositRecord>, ClusterError> {
        Persisted::deposit(self, address)
    }
}

/// Exchange hot wallets (category `exchange`, valid today) and other service addresses from
/// the label store, for the Ethereum heuristics.
pub fn exchanges_from_labels(labels: &LabelStore) -> Result<Exchanges, ClusterError> {
    let day = today();
    let mut ex = Exchanges::new();
    for l in labels.iter() {
        let l = l?;
        if !l.valid_on(day) {
            continue;
        }
        let Some(addr) = LabelAddress::parse(&l.address, l.currency.as_deref())
            .ok()
            .and_then(|a| a.indexed())
        else {
            continue;
        };
        if l.category == Category::Exchange {
            ex.insert(addr, Some(l.entity.clone()));
        } else if l.category != Category::ExchangeDeposit
            && SERVICE_CATEGORIES.contains(&l.category)
        {
            // A known deposit address stays a deposit candidate: the senders it sweeps to the
            // exchange are still one user.
            ex.insert_service(addr);
        }
    }
    Ok(ex)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_store_that_never_clustered_reads_as_unclustered_and_a_read_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let count = || {
            std::fs::read_dir(dir.path().join("keyspaces"))
                .unwrap()
                .count()
        };
        let before = count();
        let store = Store::open_read(dir.path()).unwrap();
        let cs = ClusterStore::open(&store).unwrap();
        assert!(cs.is_empty().unwrap());
        assert_eq!(cs.cluster_of(&Address::Evm([1; 20])).unwrap(), None);
        assert!(cs.refused_merges().unwrap().is_empty());
        drop(cs);
        drop(store);
        assert_eq!(count(), before, "a read open created a keyspace");
    }
}
