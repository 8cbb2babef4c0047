//! Traces and paths as the command-line tool (`trace`, `path`) and the server run them: the
//! seed forms (an address, a transaction, `TX:INDEX`, a Bitcoin transaction node), the labels
//! and stop rules given with the request, the parameters, and errors that explain an empty
//! seed.

use crate::address::{Target, parse_address, parse_target};
use crate::params::{ParamsError, chain_id};
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Direction, Store, StoreError, Timestamp,
    Transfer, TransferKey, TxHash, model::UTXO_OUTPUT_BASE,
};
use paytrace_tracer::{
    BackSeed, FlowSource, MemoryLabels, Model, PathParams, PathResult, PathTarget, Seed, StopList,
    StoreLabels, TraceError, TraceParams, TraceResult, find_paths, trace_backward_within,
    trace_forward_within,
};
use std::time::Duration;

/// Why a trace or path request failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// An address or seed that does not parse.
    #[error(transparent)]
    Address(#[from] crate::address::AddressArgError),
    /// A request field with a bad value (`field` names it as the CLI flag or API field;
    /// `reason` is the whole message).
    #[error("{reason}")]
    Input {
        /// The field, e.g. `--min-amount` or `seed`.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The seed names nothing in the store (a transaction without indexed transfers, an
    /// address that sent nothing in the window); the message says what was searched.
    #[error("{0}")]
    NotFound(String),
    /// A chain name or config parameter.
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The label store failed.
    #[error("opening the label store: {0}")]
    Labels(#[from] paytrace_indexer::labels::LabelError),
    /// The trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

impl QueryError {
    /// Whether the request (not the store) is at fault: bad input or nothing to find.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::Address(_) | Self::Input { .. } | Self::Params(ParamsError::UnknownChain(_))
        )
    }

    /// Whether the seed names nothing in the store.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::NotFound(_) | Self::Trace(TraceError::SeedNotFound(_))
        )
    }
}

/// Labels and stop rules given with a request (`--stop ADDR=CATEGORY`, `--stop-category`,
/// `--swap-category`).
#[derive(Debug, Clone, Default)]
pub struct LabelRules {
    /// `ADDR=CATEGORY` labels that take precedence over the label store.
    pub stop: Vec<String>,
    /// Categories that stop a trace (empty: the default list).
    pub stop_categories: Vec<String>,
    /// Categories of swap addresses (empty: the default list).
    pub swap_categories: Vec<String>,
}

impl LabelRules {
    /// The `stop` labels as an in-memory label set; `field` names them in errors.
    pub fn labels(&self, field: &str) -> Result<MemoryLabels, QueryError> {
        let mut l = MemoryLabels::new();
        for s in &self.stop {
            let (a, c) = s.split_once('=').ok_or_else(|| QueryError::Input {
                field: field.to_owned(),
                reason: format!("{field} {s:?}: expected ADDR=CATEGORY"),
            })?;
            l.insert(parse_address(field, a)?, c);
        }
        l.set_version("cli");
        Ok(l)
    }

    /// The categories through which taint crosses assets.
    pub fn swap_list(&self) -> StopList {
        if self.swap_categories.is_empty() {
            StopList::new(paytrace_tracer::source::DEFAULT_SWAP_CATEGORIES)
        } else {
            StopList::new(self.swap_categories.iter().map(String::as_str))
        }
    }

    /// The categories that stop a trace.
    pub fn stop_list(&self) -> StopList {
        if self.stop_categories.is_empty() {
            StopList::default()
        } else {
            StopList::new(self.stop_categories.iter().map(String::as_str))
        }
    }
}

/// One trace request (the options of `paytrace trace`).
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// An address, a transaction hash or `TX:INDEX`.
    pub seed: String,
    /// Source of funds instead of destination of funds.
    pub backward: bool,
    /// Taint model.
    pub model: Model,
    /// Maximum hops.
    pub hops: u32,
    /// Window start (Unix seconds).
    pub since: Option<u64>,
    /// Window end (Unix seconds, inclusive).
    pub until: Option<u64>,
    /// Transfers carrying less are not followed.
    pub min_amount: Amount,
    /// Most addresses followed (beyond: `truncated`).
    pub max_nodes: usize,
    /// Time budget (beyond: `truncated`).
    pub budget: Option<Duration>,
    /// Most evidence paths.
    pub max_paths: usize,
    /// Only this chain (by name).
    pub chain: Option<String>,
    /// Block of the seed transaction.
    pub block: Option<u64>,
    /// Labels and stop rules.
    pub rules: LabelRules,
}

impl TraceRequest {
    /// A request for `seed` with the tracer's defaults.
    pub fn new(seed: impl Into<String>) -> Self {
        let d = crate::params::trace_defaults();
        Self {
            seed: seed.into(),
            backward: false,
            model: d.model,
            hops: d.max_hops,
            since: None,
            until: None,
            min_amount: Amount::ZERO,
            max_nodes: d.max_nodes,
            budget: None,
            max_paths: d.max_paths,
            chain: None,
            block: None,
            rules: LabelRules::default(),
        }
    }

    fn params(&self, chain: Option<ChainId>) -> TraceParams {
        TraceParams {
            model: self.model,
            max_hops: self.hops,
            since: self.since.map(Timestamp),
            until: self.until.map(Timestamp),
            min_amount: self.min_amount,
            max_nodes: self.max_nodes,
            stop: self.rules.stop_list(),
            swap: self.rules.swap_list(),
            max_paths: self.max_paths,
            chain,
        }
    }

    /// Why an address seed selects nothing: what was searched and what the store holds.
    fn no_outflows(&self, store: &Store, a: &Address) -> Result<String, StoreError> {
        use crate::explain;
        let chain = self
            .chain
            .as_deref()
            .map_or_else(|| "any chain".to_owned(), |c| format!("chain {c}"));
        Ok(format!(
            "nothing to trace: {a} sent no transfer on {chain} {}; {}; {}",
            explain::window(self.since, self.until),
            explain::address_activity(store, a, Direction::Outgoing)?,
            explain::chains_indexed(store)?
        ))
    }

    /// A trace from a transaction. On Bitcoin (a transaction node between inputs and
    /// outputs) forward follows its outputs' value and backward explains its inputs' value;
    /// `TX:INDEX` names output INDEX. On EVM chains the seed is the transaction's transfers
    /// (`TX:INDEX`: the INDEX-th in canonical order).
    fn tx_seed(
        &self,
        store: &Store,
        chain: Option<ChainId>,
        tx: TxHash,
        idx: Option<u32>,
        back: impl Fn(&BackSeed) -> Result<TraceResult, TraceError>,
        fwd: impl Fn(&Seed) -> Result<TraceResult, TraceError>,
    ) -> Result<TraceResult, QueryError> {
        let ts = store.tx_transfers(&tx, chain, self.block.map(BlockNumber))?;
        let shown = |t: &Transfer| {
            if [t.from, t.to].iter().any(Address::is_tx) {
                format!("{:x}", tx.0)
            } else {
                tx.to_string()
            }
        };
        let Some(first) = ts.first() else {
            return Err(QueryError::NotFound(format!(
                "transaction {tx} has no indexed transfer"
            )));
        };
        let name = shown(first);
        let input = |reason: String| QueryError::Input {
            field: "seed".into(),
            reason,
        };
        let node = ts.iter().flat_map(|t| [t.from, t.to]).find(Address::is_tx);
        if let Some(node) = node {
            let outputs: Vec<&Transfer> = ts.iter().filter(|t| t.from == node).collect();
            let inputs: Vec<TransferKey> =
                ts.iter().filter(|t| t.to == node).map(|t| t.key).collect();
            return Ok(match idx {
                Some(i) => {
                    let pos = UTXO_OUTPUT_BASE.checked_add(i);
                    let out = outputs
                        .iter()
                        .find(|t| Some(t.key.position) == pos)
                        .ok_or_else(|| {
                            input(format!(
                                "transaction {name} has no output {i} carrying value (outputs: {})",
                                outputs
                                    .iter()
                                    .map(|t| t
                                        .key
                                        .position
                                        .saturating_sub(UTXO_OUTPUT_BASE)
                                        .to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        })?;
                    if self.backward {
                        back(&BackSeed::Transfer(out.key))?
                    } else {
                        fwd(&Seed::Transfers(vec![out.key]))?
                    }
                }
                None if self.backward => {
                    if inputs.is_empty() {
                        return Err(QueryError::NotFound(format!(
                            "transaction {name} has no indexed input"
                        )));
                    }
                    back(&BackSeed::Transfers(inputs))?
                }
                None => {
                    if outputs.is_empty() {
                        return Err(QueryError::NotFound(format!(
                            "transaction {name} has no output carrying value"
                        )));
                    }
                    fwd(&Seed::Transfers(outputs.iter().map(|t| t.key).collect()))?
                }
            });
        }
        let keys: Vec<TransferKey> = match idx {
            Some(i) => vec![
                usize::try_from(i)
                    .ok()
                    .and_then(|i| ts.get(i))
                    .ok_or_else(|| {
                        input(format!(
                            "transaction {tx} has {} transfers, no index {i}",
                            ts.len()
                        ))
                    })?
                    .key,
            ],
            None => ts.iter().map(|t| t.key).collect(),
        };
        Ok(if self.backward {
            let [k] = keys.as_slice() else {
                return Err(input(format!(
                    "transaction {tx} has {} transfers: pick one with {tx}:INDEX",
                    keys.len()
                )));
            };
            back(&BackSeed::Transfer(*k))?
        } else {
            fwd(&Seed::Transfers(keys))?
        })
    }
}

/// Runs a trace on `store`.
pub fn trace(store: &Store, req: &TraceRequest) -> Result<TraceResult, QueryError> {
    let chain = chain_id(store, req.chain.as_deref())?;
    let params = req.params(chain);
    let labels = StoreLabels::open(store, None, req.rules.labels("--stop")?)?;
    let back = |seed: &BackSeed| trace_backward_within(store, &labels, seed, &params, req.budget);
    let fwd = |seed: &Seed| trace_forward_within(store, &labels, seed, &params, req.budget);
    Ok(match parse_target("seed", &req.seed)? {
        Target::Address(Address::Tx(internal)) => {
            let tx = TxHash(paytrace_indexer::btc::utxo::display_b256(&internal));
            req.tx_seed(store, chain, tx, None, back, fwd)?
        }
        Target::Address(a) => {
            if req.backward {
                back(&BackSeed::Address(a))?
            } else {
                match fwd(&Seed::Outflows(a)) {
                    Err(TraceError::EmptySeed(_)) => {
                        return Err(QueryError::NotFound(req.no_outflows(store, &a)?));
                    }
                    r => r?,
                }
            }
        }
        Target::Tx { hash, index } => req.tx_seed(store, chain, hash, index, back, fwd)?,
    })
}

/// The address a trace result is about (its seed address, or its first seed transfer's
/// sender): decides whether it is shown as Bitcoin.
pub fn subject(r: &TraceResult) -> Address {
    r.seed
        .address
        .or_else(|| r.seed.transfers.first().map(|e| e.from))
        .unwrap_or(Address::ZERO_EVM)
}

/// One path request (the options of `paytrace path`).
#[derive(Debug, Clone)]
pub struct PathRequest {
    /// Source address.
    pub from: String,
    /// Target address (or `to_category`).
    pub to: Option<String>,
    /// Any address of this category.
    pub to_category: Option<String>,
    /// Most transfers on a path.
    pub hops: u32,
    /// How many most valuable paths.
    pub k: usize,
    /// Window start (Unix seconds).
    pub since: Option<u64>,
    /// Window end (Unix seconds, inclusive).
    pub until: Option<u64>,
    /// Smaller transfers are ignored.
    pub min_amount: Amount,
    /// Most addresses loaded.
    pub max_nodes: usize,
    /// Only this asset (`native` or a token address).
    pub asset: Option<String>,
    /// Only this chain (by name).
    pub chain: Option<String>,
    /// Labels and stop rules.
    pub rules: LabelRules,
}

impl PathRequest {
    /// A request from `from` with the CLI's defaults (4 hops, k 5, 5,000 addresses).
    pub fn new(from: impl Into<String>) -> Self {
        Self {
            from: from.into(),
            to: None,
            to_category: None,
            hops: 4,
            k: 5,
            since: None,
            until: None,
            min_amount: Amount::ZERO,
            max_nodes: 5_000,
            asset: None,
            chain: None,
            rules: LabelRules::default(),
        }
    }
}

/// Time-respecting paths on `store`; the source address comes back for the caller's view.
pub fn path(store: &Store, req: &PathRequest) -> Result<(Address, PathResult), QueryError> {
    let from = parse_address("FROM", &req.from)?;
    let target = match (&req.to, &req.to_category) {
        (Some(t), None) => PathTarget::Address(parse_address("TO", t)?),
        (None, Some(c)) => PathTarget::Category(paytrace_tracer::Category::new(c)),
        _ => {
            return Err(QueryError::Input {
                field: "TO".into(),
                reason: "give either TO or --to-category".into(),
            });
        }
    };
    let asset = match req.asset.as_deref() {
        None => None,
        Some("native") => Some(Asset::Native),
        Some(a) => Some(Asset::Token(a.parse().map_err(|e| QueryError::Input {
            field: "--asset".into(),
            reason: format!("--asset: {e}"),
        })?)),
    };
    let p = PathParams {
        max_hops: req.hops,
        since: req.since.map(Timestamp),
        until: req.until.map(Timestamp),
        min_amount: req.min_amount,
        max_nodes: req.max_nodes,
        k: req.k,
        chain: chain_id(store, req.chain.as_deref())?,
        asset,
        stop: req.rules.stop_list(),
        ..PathParams::default()
    };
    let labels = StoreLabels::open(store, None, req.rules.labels("--stop")?)?;
    Ok((from, find_paths(store, &labels, &from, &target, &p)?))
}
