//! Config-to-parameter mapping: the one place where a config section (`[risk]`, `[cluster]`)
//! becomes the tracer's parameters, and the small argument helpers every command shares
//! (taint model names, `--chain` names).
//!
//! Defaults live in one place, the config's `Default` impls (`paytrace_config::RiskConfig`,
//! `ClusterConfig`); the command-line defaults of the trace and report bounds are the tracer's
//! `TraceParams`/`ConvergenceParams` defaults, read through [`trace_defaults`] and
//! [`convergence_defaults`].

use paytrace_config::{ClusterConfig, RiskConfig};
use paytrace_indexer::{ChainId, Store, StoreError, labels::Date};
use paytrace_tracer::{
    Model, StopList, TraceParams,
    cluster::{
        AirdropParams, ChangeHeuristic, ChangeRule, ClusterParams, CoinJoinParams, CollapseGuard,
        DepositParams,
    },
    patterns::PatternParams,
    report::{AssetBook, ConvergenceParams, ReportParams},
    risk::{Scoring, ScreenParams},
};

/// Counterparties whose transfers are included in a screening's pattern neighbourhood.
pub const PATTERN_NEIGHBOURS: usize = 10;

/// A parameter that cannot be built from the config or the arguments.
#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    /// `cluster.change.merge` names a heuristic that does not exist.
    #[error("cluster.change.merge: unknown heuristic `{0}`")]
    UnknownHeuristic(String),
    /// `--chain NAME` names a chain the store has not indexed.
    #[error("chain {0:?} is not in the store")]
    UnknownChain(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The screening parameters of a `[risk]` section, as of `as_of`, on `chain` (all chains:
/// `None`). Token units (`assets`) start empty; the caller sets the store's.
pub fn screen_params(cfg: &RiskConfig, as_of: Date, chain: Option<ChainId>) -> ScreenParams {
    ScreenParams {
        as_of,
        hops: cfg.hops,
        chain,
        services: StopList::new(cfg.services.iter().map(String::as_str)),
        max_nodes: cfg.max_nodes,
        max_backward_seeds: cfg.max_backward_seeds,
        patterns: cfg.patterns.then(PatternParams::default),
        pattern_neighbours: PATTERN_NEIGHBOURS,
        scoring: Scoring::from_config(cfg),
        assets: AssetBook::new(),
    }
}

/// The options of a payout report that a user chooses (`paytrace report payouts` flags; the
/// demo uses [`ReportOptions::default`]).
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Taint model.
    pub model: Model,
    /// Hops followed after each payee (also the convergence hop limit).
    pub hops: u32,
    /// Minimum distinct payees of a convergence finding (at least 2).
    pub min_payees: usize,
    /// Convergence time window in days (0: no limit).
    pub window_days: u64,
    /// Threads tracing the payouts (0: one per core).
    pub threads: usize,
    /// Only this chain.
    pub chain: Option<ChainId>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        let trace = trace_defaults();
        let convergence = convergence_defaults();
        let report = ReportParams::default();
        Self {
            model: trace.model,
            hops: trace.max_hops,
            min_payees: convergence.min_payees,
            window_days: convergence.window_secs.map_or(0, |s| s / 86_400),
            threads: report.threads,
            chain: None,
        }
    }
}

/// The parameters of a payout report and of its payee verdicts (the screening as of
/// `verdict_day` with the `[risk]` scoring, as `paytrace screen --as-of` gives them); both
/// use the token units `book`.
pub fn report_params(
    risk: &RiskConfig,
    opts: &ReportOptions,
    verdict_day: Date,
    book: AssetBook,
) -> (ReportParams, ScreenParams) {
    let mut params = ReportParams::default();
    params.trace.model = opts.model;
    params.trace.max_hops = opts.hops;
    params.trace.chain = opts.chain;
    params.convergence.min_payees = opts.min_payees.max(2);
    params.convergence.max_hops = opts.hops;
    params.convergence.window_secs = (opts.window_days > 0).then(|| opts.window_days * 86_400);
    params.threads = opts.threads;
    params.as_of = Some(verdict_day);
    let mut verdicts = screen_params(risk, verdict_day, opts.chain);
    verdicts.assets = book;
    params.scoring = verdicts.scoring.clone();
    (params, verdicts)
}

/// The clustering parameters of a `[cluster]` section.
pub fn cluster_params(c: &ClusterConfig) -> Result<ClusterParams, ParamsError> {
    let mut change = Vec::new();
    for name in &c.change.merge {
        let heuristic = ChangeHeuristic::from_name(name)
            .ok_or_else(|| ParamsError::UnknownHeuristic(name.clone()))?;
        let confidence = c.change.confidence(name).unwrap_or(50);
        change.push(ChangeRule {
            heuristic,
            confidence,
        });
    }
    let usize_of = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
    Ok(ClusterParams {
        multi_input: c.multi_input,
        multi_input_confidence: c.multi_input_confidence,
        coinjoin: CoinJoinParams {
            generic_min_equal_outputs: usize_of(c.coinjoin.generic_min_equal_outputs),
            wasabi1_min_equal_outputs: usize_of(c.coinjoin.wasabi1_min_equal_outputs),
            wasabi2_min_inputs: usize_of(c.coinjoin.wasabi2_min_inputs),
        },
        change,
        round_unit_sat: c.change.round_unit_sat,
        guard: CollapseGuard {
            min_confidence: c.collapse_min_confidence,
            size_threshold: c.collapse_size_threshold,
        },
        deposit: DepositParams {
            enabled: c.deposit.enabled,
            window_blocks: c.deposit.window_blocks,
            gas_tolerance_wei: u128::from(c.deposit.gas_tolerance_wei),
            max_residual_bps: c.deposit.max_residual_bps,
            confidence: c.deposit.confidence,
            ..Default::default()
        },
        airdrop: AirdropParams {
            enabled: c.airdrop.enabled,
            min_recipients: usize_of(c.airdrop.min_recipients),
            min_forwarders: usize_of(c.airdrop.min_forwarders),
            window_blocks: c.airdrop.window_blocks,
            confidence: c.airdrop.confidence,
        },
        batch_blocks: c.batch_blocks,
        ..ClusterParams::default()
    })
}

/// The default trace bounds (the command-line defaults of `trace` and `report payouts`).
pub fn trace_defaults() -> TraceParams {
    TraceParams::default()
}

/// The default convergence parameters (the command-line defaults of `report payouts`).
pub fn convergence_defaults() -> ConvergenceParams {
    ConvergenceParams::default()
}

/// A taint model name (`poison`, `haircut`, `fifo`, `lifo`) as a clap value parser.
pub fn parse_model(s: &str) -> Result<Model, String> {
    s.parse()
        .map_err(|e: paytrace_tracer::ModelParseError| e.to_string())
}

/// The id of the chain named `name` (a `--chain` argument), if given; an unknown name is an
/// error.
pub fn chain_id(store: &Store, name: Option<&str>) -> Result<Option<ChainId>, ParamsError> {
    match name {
        None => Ok(None),
        Some(n) => Ok(Some(
            store
                .chain_by_name(n)?
                .ok_or_else(|| ParamsError::UnknownChain(n.to_owned()))?
                .id,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_screening_follows_the_risk_defaults() {
        let cfg = RiskConfig::default();
        let day = paytrace_indexer::labels::date_of_unix(1_735_689_600).unwrap();
        let p = screen_params(&cfg, day, None);
        assert_eq!(p.hops, cfg.hops);
        assert_eq!(p.max_nodes, cfg.max_nodes);
        assert_eq!(p.max_backward_seeds, cfg.max_backward_seeds);
        assert!(p.patterns.is_some());
        let tracer_default = ScreenParams::new(day);
        assert_eq!(p.hops, tracer_default.hops);
        assert_eq!(p.max_nodes, tracer_default.max_nodes);
        assert_eq!(p.services, tracer_default.services);
    }

    #[test]
    fn report_options_default_to_the_tracer_defaults() {
        let o = ReportOptions::default();
        assert_eq!(
            (o.model, o.hops, o.min_payees, o.window_days),
            (Model::Haircut, 5, 2, 90)
        );
        let day = paytrace_indexer::labels::date_of_unix(1_735_689_600).unwrap();
        let (p, v) = report_params(&RiskConfig::default(), &o, day, AssetBook::new());
        let d = ReportParams::default();
        assert_eq!(p.trace.max_hops, d.trace.max_hops);
        assert_eq!(p.convergence.window_secs, d.convergence.window_secs);
        assert_eq!(p.as_of, Some(day));
        assert_eq!(v.as_of, day);
    }

    #[test]
    fn unknown_heuristic_and_model_are_errors() {
        let mut c = ClusterConfig::default();
        c.change.merge = vec!["nope".to_owned()];
        let e = cluster_params(&c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cluster.change.merge: unknown heuristic `nope`"
        );
        assert!(parse_model("fifo").is_ok());
        assert!(parse_model("nope").is_err());
    }
}
