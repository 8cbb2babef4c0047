//! Payout reports as the command-line tool (`report payouts`, the demo, the alert rules) and
//! the server (an uploaded batch CSV) build them: the batch's rows matched to on-chain
//! payouts, one trace per payout, convergence, and the payees' screening verdicts.

use crate::screen::{ScreenError, StoreClusters, screen_history};
use paytrace_config::Config;
use paytrace_indexer::{Address, Asset, ChainId, Store, StoreError, Timestamp, labels::Date};
use paytrace_tracer::{
    MemoryLabels, Model, StoreLabels, TraceError,
    report::{
        AssetBook, EntityTies, LabelEntities, Payout, Report, ReportParams, WithDeposits,
        apply_verdicts, batch, build_report_with_progress,
    },
    risk::{CachedSource, ScreenParams},
};

/// Why a report failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The batch CSV cannot be read (its message names the file, line and column).
    #[error(transparent)]
    Batch(#[from] batch::BatchError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Token units could not be loaded.
    #[error(transparent)]
    Units(#[from] crate::units::UnitsError),
    /// A chain name.
    #[error(transparent)]
    Params(#[from] crate::params::ParamsError),
    /// The label store failed.
    #[error("opening the label store: {0}")]
    Labels(#[from] paytrace_indexer::labels::LabelError),
    /// Opening the clusters or the label history failed.
    #[error(transparent)]
    Screen(#[from] ScreenError),
    /// A trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

impl ReportError {
    /// Whether the request (the batch file, a chain name) is at fault.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Batch(_) | Self::Params(crate::params::ParamsError::UnknownChain(_))
        )
    }
}

/// A step of a report run, for progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// One payout traced.
    Payout,
    /// The payees' screening starts.
    Screening,
}

/// The names of the store's Bitcoin chains (batch rows naming one are Bitcoin rows).
fn bitcoin_chains(store: &Store) -> Result<Vec<String>, StoreError> {
    Ok(store
        .chains()?
        .into_iter()
        .filter(|c| c.kind == paytrace_indexer::ChainKind::Bitcoin)
        .map(|c| c.name)
        .collect())
}

/// The payouts of a batch CSV (`file` names it in messages): its rows parsed and matched to
/// on-chain transfers (from `providers` when given, on `chain` when given), those between
/// `since` and `until`; and the rows with issues, by line.
#[allow(clippy::too_many_arguments)]
pub fn batch_payouts(
    store: &Store,
    file: &str,
    reader: impl std::io::Read,
    assets: &AssetBook,
    providers: &[Address],
    chain: Option<ChainId>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<(Vec<Payout>, Vec<batch::RowIssue>), ReportError> {
    let (rows, mut issues) =
        batch::parse_with_chains(file, reader, assets, &bitcoin_chains(store)?)?;
    let (payouts, unmatched) = batch::match_rows(store, file, &rows, providers, chain)?;
    issues.extend(unmatched);
    issues.sort_by_key(|i| i.line);
    // --since/--until select the batch's payouts by their on-chain time.
    let n = payouts.len();
    let payouts: Vec<_> = payouts
        .into_iter()
        .filter(|p| since.is_none_or(|s| p.time >= s) && until.is_none_or(|u| p.time <= u))
        .collect();
    if payouts.len() < n {
        tracing::info!(
            kept = payouts.len(),
            outside = n - payouts.len(),
            "batch payouts outside --since/--until left out"
        );
    }
    Ok((payouts, issues))
}

/// Runs a report on the store: deposit addresses attributed by `cluster run` count as
/// `exchange_deposit` of their exchange, and with `verdicts` every payee's risk is its
/// screening verdict as of that day (the same as `paytrace screen --as-of`). `progress` hears
/// of each payout traced and of the screening's start.
#[allow(clippy::too_many_arguments)]
pub fn run_on_store(
    store: &Store,
    title: &str,
    providers: &[Address],
    payouts: &[Payout],
    issues: Vec<batch::RowIssue>,
    assets: AssetBook,
    params: &ReportParams,
    labels_as_of: Option<Date>,
    verdicts: Option<&ScreenParams>,
    progress: &mut dyn FnMut(Step),
) -> Result<Report, ReportError> {
    let clusters = StoreClusters::open(store)?;
    let labels = WithDeposits {
        labels: StoreLabels::open(store, labels_as_of, MemoryLabels::new())?,
        deposits: &clusters,
    };
    let asof = paytrace_indexer::labels::LabelStore::open(store)?;
    // Clusters, and label entities tying addresses across chains.
    let ties = EntityTies {
        clusters: &clusters,
        entities: &LabelEntities {
            labels: &asof,
            as_of: labels_as_of,
        },
    };
    let mut r = build_report_with_progress(
        store,
        &labels,
        &asof,
        &ties,
        title,
        providers,
        payouts,
        issues,
        assets,
        params,
        &mut || progress(Step::Payout),
    )?;
    r.prune_assets();
    if let Some(p) = verdicts {
        progress(Step::Screening);
        let history = screen_history(store, &clusters)?;
        let src = CachedSource::new(store, crate::screen::HISTORY_CACHE);
        apply_verdicts(&mut r, &src, &history, p, params.threads)?;
    }
    Ok(r)
}

/// The options of a report on an uploaded batch (those of `report payouts --batch`).
#[derive(Debug, Clone)]
pub struct BatchReportRequest {
    /// Taint model.
    pub model: Model,
    /// Hops followed after each payee.
    pub hops: u32,
    /// Minimum distinct payees of a convergence finding.
    pub min_payees: usize,
    /// Convergence window in days (0: no limit).
    pub window_days: u64,
    /// Only this chain (by name).
    pub chain: Option<String>,
    /// Labels valid on this day decide where traces stop (default today).
    pub labels_as_of: Option<Date>,
    /// Payouts from this time on (Unix seconds).
    pub since: Option<u64>,
    /// Payouts up to this time (Unix seconds, inclusive).
    pub until: Option<u64>,
    /// Threads tracing the payouts (0: one per core).
    pub threads: usize,
}

impl Default for BatchReportRequest {
    fn default() -> Self {
        let d = crate::params::ReportOptions::default();
        Self {
            model: d.model,
            hops: d.hops,
            min_payees: d.min_payees,
            window_days: d.window_days,
            chain: None,
            labels_as_of: None,
            since: None,
            until: None,
            threads: 1,
        }
    }
}

/// The report of a batch CSV (`file` names it in messages), as `report payouts --batch FILE`
/// builds it without provider addresses or `--token` flags.
pub fn batch_report(
    store: &Store,
    config: &Config,
    file: &str,
    reader: impl std::io::Read,
    req: &BatchReportRequest,
) -> Result<Report, ReportError> {
    let units = crate::units::Units::load(store, config)?;
    let mut assets = units.book(None);
    if assets.info(&Asset::Native).is_none() {
        let k = paytrace_indexer::ChainKind::Evm;
        assets.insert(Asset::Native, k.native_symbol(), k.native_decimals());
    }
    assets.insert_bitcoin();
    let chain = crate::params::chain_id(store, req.chain.as_deref())?;
    let (payouts, issues) = batch_payouts(
        store,
        file,
        reader,
        &assets,
        &[],
        chain,
        req.since.map(Timestamp),
        req.until.map(Timestamp),
    )?;
    let opts = crate::params::ReportOptions {
        model: req.model,
        hops: req.hops,
        min_payees: req.min_payees,
        window_days: req.window_days,
        threads: req.threads,
        chain,
    };
    let mut providers: Vec<Address> = payouts.iter().map(|p| p.from).collect();
    providers.sort();
    providers.dedup();
    let verdict_day = req
        .labels_as_of
        .unwrap_or_else(paytrace_indexer::labels::today);
    let (params, sp) =
        crate::params::report_params(&config.risk, &opts, verdict_day, units.book(chain));
    run_on_store(
        store,
        file,
        &providers,
        &payouts,
        issues,
        if chain.is_some() {
            units.book(chain)
        } else {
            assets
        },
        &params,
        req.labels_as_of,
        Some(&sp),
        &mut |_| {},
    )
}
