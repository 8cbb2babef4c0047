//! Every call of the evaluation into the analysis (clustering, the payout report, screening,
//! pattern detection) lives in this module, so that changes of those interfaces meet the
//! harness in one place. The rest of the harness sees only the plain findings below.

use super::EvalError;
use crate::clusters::{ClusterStore, exchanges_from_labels};
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Store, Transfer, labels::Date, labels::LabelStore,
};
use paytrace_tracer::{
    MemoryLabels, Model, StoreLabels,
    cluster::ClusterParams,
    patterns::{
        PatternKind, PatternParams,
        amlsim::{AmlSim, AmlSimScore},
        detect,
    },
    report::{AssetBook, ClusterLookup, DestKind, ReportParams, batch, build_report},
    risk::{RiskLevel, StoreLabelHistory, screen},
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The analysis parameters, as the configuration gives them.
pub struct AnalysisConfig {
    /// Clustering (`[cluster]`).
    pub cluster: ClusterParams,
    /// Screening (`[risk]`), mapped per day and chain by [`crate::params::screen_params`].
    pub risk: paytrace_config::RiskConfig,
}

impl AnalysisConfig {
    /// The analysis parameters of a configuration (`[cluster]`, `[risk]`).
    pub fn from_config(c: &paytrace_config::Config) -> Result<Self, crate::params::ParamsError> {
        Ok(Self {
            cluster: crate::params::cluster_params(&c.cluster)?,
            risk: c.risk.clone(),
        })
    }
}

/// A token the report shows with its symbol and decimals.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    /// Contract.
    pub address: Address,
    /// Symbol (as the batch names the asset).
    pub symbol: String,
    /// Decimals.
    pub decimals: u8,
}

/// What a payout report found, reduced to what the harness scores.
#[derive(Clone, Debug, Default)]
pub struct ReportFindings {
    /// Payees named by each convergence finding (by address).
    pub convergence: Vec<BTreeSet<Address>>,
    /// Per payee: value of its payouts that reached sanctioned addresses, raw units summed
    /// over assets.
    pub sanctioned: BTreeMap<Address, u128>,
    /// Batch rows the report could not use.
    pub issues: usize,
}

/// A detected pattern instance.
#[derive(Clone, Debug)]
pub struct FoundPattern {
    /// Kind (`fan-in`, `peel`, `cycle`, ...).
    pub kind: String,
    /// Center.
    pub center: Address,
    /// Members.
    pub members: BTreeSet<Address>,
}

fn err(step: &'static str) -> impl Fn(String) -> EvalError {
    move |message| EvalError::Analysis { step, message }
}

fn units(a: Amount) -> u128 {
    u128::try_from(a.raw()).unwrap_or(u128::MAX)
}

/// `cluster run` on `chain`, with the hot wallets of the label store.
pub fn cluster_run(store: &Store, chain: &str, cfg: &AnalysisConfig) -> Result<(), EvalError> {
    let e = err("cluster run");
    let labels = LabelStore::open(store).map_err(|x| e(x.to_string()))?;
    let ex = exchanges_from_labels(&labels).map_err(|x| e(x.to_string()))?;
    let cs = ClusterStore::open(store).map_err(|x| e(x.to_string()))?;
    cs.run(store, chain, &cfg.cluster, &ex)
        .map_err(|x| e(x.to_string()))?;
    Ok(())
}

/// The exchange hot wallet clustering attributed each of `addresses` to as a deposit address.
pub fn deposits(
    store: &Store,
    addresses: &BTreeSet<Address>,
) -> Result<BTreeMap<Address, Address>, EvalError> {
    let e = err("deposit attribution");
    let cs = ClusterStore::open(store).map_err(|x| e(x.to_string()))?;
    let mut out = BTreeMap::new();
    for a in addresses {
        if let Some(d) = cs.deposit(a).map_err(|x| e(x.to_string()))? {
            out.insert(*a, d.exchange);
        }
    }
    Ok(out)
}

/// The persisted clusters, as `report payouts` reads them.
struct Clusters(ClusterStore);

impl ClusterLookup for Clusters {
    fn cluster_of(&self, a: &Address) -> Option<String> {
        let c = self.0.cluster_of(a).ok().flatten()?;
        (self.0.size(c).ok()? > 1).then(|| c.to_string())
    }
}

/// `report payouts --batch FILE --model MODEL` with the report's defaults otherwise.
pub fn payout_report(
    store: &Store,
    batch_file: &Path,
    tokens: &[TokenInfo],
    chain: ChainId,
    model: Model,
) -> Result<ReportFindings, EvalError> {
    let e = err("report payouts");
    let mut assets = AssetBook::new();
    assets.insert(Asset::Native, "ETH", 18);
    for t in tokens {
        assets.insert(Asset::Token(t.address), &t.symbol, t.decimals);
    }
    let file = batch_file.display().to_string();
    let f = std::fs::File::open(batch_file).map_err(|source| EvalError::Io {
        path: batch_file.to_path_buf(),
        source,
    })?;
    let (rows, mut issues) = batch::parse(&file, f, &assets).map_err(|x| e(x.to_string()))?;
    let (payouts, unmatched) =
        batch::match_rows(store, &file, &rows, &[], Some(chain)).map_err(|x| e(x.to_string()))?;
    issues.extend(unmatched);
    let mut providers: Vec<Address> = payouts.iter().map(|p| p.from).collect();
    providers.sort();
    providers.dedup();
    let mut params = ReportParams::default();
    params.trace.model = model;
    params.trace.chain = Some(chain);
    params.threads = 1;
    let labels =
        StoreLabels::open(store, None, MemoryLabels::new()).map_err(|x| e(x.to_string()))?;
    let asof = LabelStore::open(store).map_err(|x| e(x.to_string()))?;
    let clusters = Clusters(ClusterStore::open(store).map_err(|x| e(x.to_string()))?);
    let r = build_report(
        store, &labels, &asof, &clusters, &file, &providers, &payouts, issues, assets, &params,
    )
    .map_err(|x| e(x.to_string()))?;
    let mut sanctioned: BTreeMap<Address, u128> = BTreeMap::new();
    for p in &r.payouts {
        let v: u128 = p
            .destinations
            .iter()
            .filter(|d| matches!(d.kind, DestKind::Sanctioned | DestKind::SanctionedLater))
            .map(|d| units(d.amount))
            .sum();
        *sanctioned.entry(p.address).or_default() += v;
    }
    Ok(ReportFindings {
        convergence: r
            .convergence
            .iter()
            .map(|f| f.payees.iter().map(|p| p.address).collect())
            .collect(),
        sanctioned,
        issues: r.issues.len(),
    })
}

/// `screen ADDRESS --as-of DAY` for each address; returns its level's name and whether the
/// level is medium or above.
pub fn screen_levels(
    store: &Store,
    addresses: &[Address],
    as_of: Date,
    chain: ChainId,
    cfg: &AnalysisConfig,
) -> Result<Vec<(&'static str, bool)>, EvalError> {
    let e = err("screen");
    let p = crate::params::screen_params(&cfg.risk, as_of, Some(chain));
    let history = StoreLabelHistory::open(store).map_err(|x| e(x.to_string()))?;
    addresses
        .iter()
        .map(|a| {
            let r = screen(store, &history, a, &p).map_err(|x| e(format!("{a}: {x}")))?;
            Ok((r.level.as_str(), r.level >= RiskLevel::Medium))
        })
        .collect()
}

fn found(r: paytrace_tracer::patterns::PatternReport) -> Vec<FoundPattern> {
    r.instances
        .into_iter()
        .map(|i| FoundPattern {
            kind: i.kind.as_str().to_owned(),
            center: i.center,
            members: i.members.into_iter().collect(),
        })
        .collect()
}

/// `patterns --window-secs HORIZON` over every transfer of `chain`: every window is the
/// data's horizon (first to last transfer, as `PatternParams::set_horizon` sets it), the rest
/// are the detectors' defaults, every instance kept.
pub fn patterns(store: &Store, chain: ChainId) -> Result<Vec<FoundPattern>, EvalError> {
    let e = err("patterns");
    let ts: Vec<Transfer> = store
        .range_transfers(chain, BlockNumber(0), BlockNumber(u64::MAX))
        .collect::<Result<_, _>>()
        .map_err(|x| e(x.to_string()))?;
    let mut p = PatternParams {
        max_instances: 1_000_000,
        ..PatternParams::default()
    };
    p.set_horizon(horizon_of(&ts));
    Ok(found(detect(&ts, &p)))
}

/// The horizon of `transfers`: from the first to the last transfer, in seconds (at least 1).
pub fn horizon_of(transfers: &[Transfer]) -> u64 {
    let first = transfers.iter().map(|t| t.time.0).min().unwrap_or(0);
    let last = transfers.iter().map(|t| t.time.0).max().unwrap_or(0);
    last.saturating_sub(first).max(1)
}

/// The horizon-only detector parameters, as `patterns --type fan-in,cycle --window-secs
/// HORIZON --min-counterparties 2` sets them (every window is the horizon, 2 counterparties
/// for the degree and the amount rule), no amount bound, every instance kept; the rest are
/// the detectors' defaults.
pub fn horizon_params(horizon_secs: u64) -> PatternParams {
    let mut p = PatternParams {
        kinds: vec![PatternKind::FanIn, PatternKind::Cycle],
        fan_min_counterparties: 2,
        fan_min_unusual: 2,
        fan_max_amount: None,
        max_instances: usize::MAX,
        ..PatternParams::default()
    };
    p.set_horizon(horizon_secs);
    p
}

/// Detects fan-ins and cycles (or only `kinds` of them, when given) in an AMLSim sample with
/// the horizon-only parameters (the window is the sample's horizon) and scores them against
/// its executed planted patterns.
pub fn amlsim_score(sample: &AmlSim, kinds: &[PatternKind]) -> AmlSimScore {
    let transfers = sample.transfers(ChainId(1));
    let mut p = horizon_params(sample.horizon_secs());
    if !kinds.is_empty() {
        p.kinds = kinds.to_vec();
    }
    let report = detect(&transfers, &p);
    tracing::debug!(
        instances = report.instances.len(),
        truncated = report.truncated,
        "AMLSim patterns detected"
    );
    sample.score(&report.instances)
}

/// The taint models scored.
pub fn models() -> [(Model, &'static str); 2] {
    [(Model::Fifo, "fifo"), (Model::Haircut, "haircut")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use paytrace_indexer::{Timestamp, TransferKey, TransferKind, TxHash};

    fn at(time: u64) -> Transfer {
        Transfer {
            key: TransferKey {
                chain: ChainId(1),
                block: BlockNumber(time),
                tx_index: 0,
                kind: TransferKind::Token,
                position: 0,
            },
            time: Timestamp(time),
            tx_hash: TxHash::default(),
            from: Address::Evm([1; 20]),
            to: Address::Evm([2; 20]),
            asset: Asset::Native,
            amount: Amount::from_u64(1),
            trace_address: Vec::new(),
        }
    }

    /// The patterns step's windows are the data's horizon: first to last transfer.
    #[test]
    fn the_horizon_runs_from_the_first_to_the_last_transfer() {
        assert_eq!(horizon_of(&[at(500), at(100), at(9_100)]), 9_000);
        assert_eq!(horizon_of(&[at(7)]), 1);
        assert_eq!(horizon_of(&[]), 1);
    }
}
