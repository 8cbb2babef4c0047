//! Screening as the command-line tool (`screen`, the demo, the alert rules) and the server run
//! it: the label history with the deposit attributions of `cluster run`, the `[risk]`
//! parameters with the request's overrides, and one or many addresses screened over one cache.

use crate::clusters::ClusterStore;
use paytrace_config::Config;
use paytrace_indexer::{Address, Store, StoreError, labels::Date};
use paytrace_tracer::{
    report::{ClusterLookup, MergeEvidence, WithDeposits},
    risk::{CachedSource, ScreenParams, ScreenResult, StoreLabelHistory, screen_each},
};
use std::collections::HashMap;

/// Transfers of address histories kept in memory across the screenings of one run.
pub const HISTORY_CACHE: usize = 1_000_000;

/// Why a screening failed.
#[derive(Debug, thiserror::Error)]
pub enum ScreenError {
    /// The cluster keyspaces failed to open.
    #[error("opening the cluster keyspaces: {0}")]
    Clusters(Box<paytrace_tracer::cluster::ClusterError>),
    /// The label store failed to open.
    #[error("opening the label store: {0}")]
    Labels(paytrace_indexer::labels::LabelError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A chain name or config parameter.
    #[error(transparent)]
    Params(#[from] crate::params::ParamsError),
    /// Token units could not be loaded.
    #[error(transparent)]
    Units(#[from] crate::units::UnitsError),
    /// A request field with a bad value (`reason` is the whole message, naming the field).
    #[error("{reason}")]
    Input {
        /// The field (`--hops`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Screening address `address` failed.
    #[error("screening {address}: {source}")]
    Screen {
        /// The address.
        address: Box<Address>,
        /// Why.
        source: paytrace_tracer::TraceError,
    },
}

impl ScreenError {
    /// Whether the request (not the store) is at fault.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Input { .. } | Self::Params(crate::params::ParamsError::UnknownChain(_))
        )
    }
}

/// [`ClusterLookup`] and [`DepositLookup`](paytrace_tracer::report::DepositLookup) over the
/// clusters and deposit attributions `paytrace cluster run` left in the store (addresses never
/// clustered, or alone in their cluster, have none).
pub struct StoreClusters(
    ClusterStore,
    /// Deposit attributions read so far (traces ask for the same addresses many times).
    std::sync::RwLock<HashMap<Address, Option<String>>>,
);

impl StoreClusters {
    /// Opens the cluster keyspaces of `store`.
    pub fn open(store: &Store) -> Result<Self, ScreenError> {
        Ok(Self(
            ClusterStore::open(store).map_err(|e| ScreenError::Clusters(Box::new(e)))?,
            std::sync::RwLock::new(HashMap::new()),
        ))
    }
}

/// The label history screening reads: the label store, plus the deposit addresses `cluster run`
/// attributed (as `exchange_deposit` of their exchange).
pub type ScreenHistory<'a> = WithDeposits<'a, StoreLabelHistory, StoreClusters>;

/// [`ScreenHistory`] of `store` over `clusters`.
pub fn screen_history<'a>(
    store: &Store,
    clusters: &'a StoreClusters,
) -> Result<ScreenHistory<'a>, ScreenError> {
    Ok(WithDeposits {
        labels: StoreLabelHistory::open(store).map_err(ScreenError::Labels)?,
        deposits: clusters,
    })
}

impl paytrace_tracer::report::DepositLookup for StoreClusters {
    fn deposit_of(&self, a: &Address) -> Option<String> {
        // A poisoned lock only means a thread panicked while holding it; the map is intact.
        if let Some(v) = self
            .1
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(a)
        {
            return v.clone();
        }
        let v = match self.0.deposit(a) {
            Ok(d) => d.map(|d| d.entity.unwrap_or_else(|| d.exchange.to_string())),
            Err(e) => {
                tracing::warn!(address = %a, error = %e, "deposit look-up failed; treated as not attributed");
                None
            }
        };
        self.1
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*a, v.clone());
        v
    }
}

impl ClusterLookup for StoreClusters {
    fn merge_evidence(&self, _cluster: &str, addresses: &[Address]) -> Vec<MergeEvidence> {
        let look = || -> Result<Vec<MergeEvidence>, paytrace_tracer::cluster::ClusterError> {
            let Some(first) = addresses.first() else {
                return Ok(Vec::new());
            };
            let Some(c) = self.0.cluster_of(first)? else {
                return Ok(Vec::new());
            };
            let mut merges = self.0.merges_of_limit(c, 500)?;
            // The merges that touch the payees first.
            merges.sort_by_key(|m| !(addresses.contains(&m.a) || addresses.contains(&m.b)));
            Ok(merges
                .into_iter()
                .take(20)
                .map(|m| MergeEvidence {
                    a: m.a,
                    b: m.b,
                    heuristic: m.heuristic.name(),
                    tx: m.tx,
                    related_tx: m.related_tx,
                })
                .collect())
        };
        look().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cluster merge evidence look-up failed; listed without it");
            Vec::new()
        })
    }

    fn cluster_of(&self, a: &Address) -> Option<String> {
        let look = || -> Result<Option<String>, paytrace_tracer::cluster::ClusterError> {
            let Some(c) = self.0.cluster_of(a)? else {
                return Ok(None);
            };
            Ok((self.0.size(c)? > 1).then(|| c.to_string()))
        };
        look().unwrap_or_else(|e| {
            tracing::warn!(address = %a, error = %e, "cluster look-up failed; treated as unclustered");
            None
        })
    }
}

/// One screening request (the options of `paytrace screen`).
#[derive(Debug, Clone, Default)]
pub struct ScreenRequest {
    /// Only this chain (by name).
    pub chain: Option<String>,
    /// As of this day [default: today].
    pub as_of: Option<Date>,
    /// Hops of indirect exposure (1 to 10) [default: from the config].
    pub hops: Option<u32>,
    /// Skip pattern detection.
    pub no_patterns: bool,
}

/// The screening parameters of `req` over the `[risk]` section of `config`.
pub fn params(
    store: &Store,
    config: &Config,
    req: &ScreenRequest,
) -> Result<ScreenParams, ScreenError> {
    let chain = crate::params::chain_id(store, req.chain.as_deref())?;
    let as_of = req.as_of.unwrap_or_else(paytrace_indexer::labels::today);
    let mut p = crate::params::screen_params(&config.risk, as_of, chain);
    p.assets = crate::units::Units::load(store, config)?.book(chain);
    if let Some(pp) = p.patterns.as_mut() {
        pp.assets = p.assets.clone();
    }
    if let Some(h) = req.hops {
        if !(1..=10).contains(&h) {
            return Err(ScreenError::Input {
                field: "--hops".into(),
                reason: format!("--hops {h}: expected 1 to 10"),
            });
        }
        p.hops = h;
    }
    if req.no_patterns {
        p.patterns = None;
    }
    Ok(p)
}

/// Screens `addresses` with `p` on `threads` threads (0: one per core, at most 8) over one
/// history cache; results in the order of `addresses`.
pub fn screen_many(
    store: &Store,
    addresses: &[Address],
    p: &ScreenParams,
    threads: usize,
) -> Result<Vec<ScreenResult>, ScreenError> {
    let clusters = StoreClusters::open(store)?;
    let history = screen_history(store, &clusters)?;
    let src = CachedSource::new(store, HISTORY_CACHE);
    let mut out = Vec::with_capacity(addresses.len());
    let mut failed = None;
    screen_each(&src, &history, addresses, p, threads, |i, r| match r {
        Ok(r) => {
            out.push(r);
            true
        }
        Err(source) => {
            failed = Some(ScreenError::Screen {
                address: Box::new(addresses[i]),
                source,
            });
            false
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
