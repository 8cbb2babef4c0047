//! Address clustering: which addresses one person or organisation controls.
//!
//! * [`UnionFind`] over dense `u32` address ids (path halving, union by size);
//! * Bitcoin heuristics over UTXO transfers (`Address::Tx` nodes, see
//!   `paytrace_indexer::model::UTXO_OUTPUT_BASE`): multi-input (common input ownership) except
//!   CoinJoins ([`coinjoin`]), and switchable change heuristics ([`change`]);
//! * Ethereum heuristics (Victor 2020): exchange deposit addresses and airdrop
//!   multi-participation ([`evm`]);
//! * an engine ([`run_range`]) that is pure over the small read trait [`ClusterSource`] and a
//!   [`ClusterState`] (tested on in-memory data);
//! * the persisted state the engine reads as a trait ([`Persisted`]); the cluster store itself
//!   (keyspaces, queries, `run`) is the application layer's (`paytrace_app::clusters`).
//!
//! Clusters are derived data: indexing never reads them. Every merge keeps its evidence
//! ([`MergeRecord`]: heuristic, transaction, confidence); a merge that would join two large
//! clusters through a low-confidence heuristic is refused and recorded ([`CollapseGuard`]).
//! The heuristics and their failure modes are described in `docs/heuristics.md`
//! ("Clustering").

pub mod change;
pub mod coinjoin;
mod engine;
mod error;
pub mod evm;
mod source;
mod state;
mod uf;
pub mod utxo;

pub use change::{ChangeContext, ChangeHeuristic, NoContext, ScriptType, script_type_of};
pub use coinjoin::{CoinJoinKind, CoinJoinMatch, CoinJoinParams};
pub use engine::{Exchanges, run_range};
pub use error::ClusterError;
pub use source::{ClusterSource, MemoryTransfers};
pub use state::{ClusterState, MergeOutcome, NoPersisted, Persisted};
pub use uf::UnionFind;

use paytrace_indexer::{Address, BlockNumber, ChainId, TxHash};
use serde::{Deserialize, Serialize};

/// A cluster: the dense id of its representative address.
///
/// Stable between runs of `cluster run`; a run that merges this cluster into a larger one
/// gives its members the larger cluster's id (ask the cluster store's `cluster_of` again).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClusterId(pub u32);

impl std::fmt::Display for ClusterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Why two addresses were merged.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Heuristic {
    /// Bitcoin: inputs of one (non-CoinJoin) transaction.
    MultiInput,
    /// Bitcoin: a change output joined to the inputs.
    Change(ChangeHeuristic),
    /// Ethereum: a sender to an exchange deposit address, joined to the deposit address.
    DepositAddress,
    /// Ethereum: an airdrop recipient that forwarded the airdrop to an aggregation address.
    Airdrop,
}

impl Heuristic {
    /// Stable name (JSON, CLI): `multi_input`, `change_<name>`, `deposit_address`, `airdrop`.
    pub fn name(&self) -> String {
        match self {
            Self::MultiInput => "multi_input".into(),
            Self::Change(c) => format!("change_{}", c.as_str()),
            Self::DepositAddress => "deposit_address".into(),
            Self::Airdrop => "airdrop".into(),
        }
    }
}

impl std::fmt::Display for Heuristic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The evidence of one merge (or refused merge): the two addresses, the heuristic, where it
/// was seen and how sure it is.
///
/// Stored with postcard: append new fields at the end only.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MergeRecord {
    /// One address.
    pub a: Address,
    /// The other address.
    pub b: Address,
    /// The heuristic.
    pub heuristic: Heuristic,
    /// Confidence 0–100.
    pub confidence: u8,
    /// Chain of the evidence.
    pub chain: ChainId,
    /// Block of the evidence transaction.
    pub block: BlockNumber,
    /// The evidence transaction.
    pub tx: TxHash,
    /// A second transaction the evidence rests on (the deposit sweep, the airdrop).
    pub related_tx: Option<TxHash>,
}

/// A merge the collapse guard refused.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RefusedMerge {
    /// What would have been merged.
    pub record: MergeRecord,
    /// Size of `a`'s cluster at the time.
    pub size_a: u32,
    /// Size of `b`'s cluster at the time.
    pub size_b: u32,
}

/// The collapse guard: a merge with confidence below `min_confidence` that would join two
/// clusters of at least `size_threshold` addresses each is refused (and recorded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CollapseGuard {
    /// Merges below this confidence are "low confidence".
    pub min_confidence: u8,
    /// Both clusters at least this large: refuse a low-confidence merge.
    pub size_threshold: u32,
}

impl Default for CollapseGuard {
    fn default() -> Self {
        Self {
            min_confidence: 90,
            size_threshold: 1_000,
        }
    }
}

/// A change heuristic switched on, with its confidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeRule {
    /// Which heuristic.
    pub heuristic: ChangeHeuristic,
    /// Confidence of its merges.
    pub confidence: u8,
}

/// Ethereum deposit-address parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DepositParams {
    /// Run the heuristic.
    pub enabled: bool,
    /// A sweep counts the deposits of at most this many blocks before it.
    pub window_blocks: u64,
    /// Native coin: at most this many wei may stay behind (the sweep's gas).
    pub gas_tolerance_wei: u128,
    /// Tokens: at most this share, in basis points, may stay behind.
    pub max_residual_bps: u32,
    /// Confidence of the merges.
    pub confidence: u8,
    /// An address with more incoming or outgoing transfers than this is not examined as a
    /// deposit address (bounds the work per sweep).
    pub max_history: usize,
}

impl Default for DepositParams {
    fn default() -> Self {
        Self {
            enabled: true,
            window_blocks: 10_000,
            gas_tolerance_wei: 10_000_000_000_000_000,
            max_residual_bps: 100,
            confidence: 80,
            max_history: 10_000,
        }
    }
}

/// Ethereum airdrop multi-participation parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AirdropParams {
    /// Run the heuristic.
    pub enabled: bool,
    /// A transaction sending one token to at least this many distinct addresses is an airdrop.
    pub min_recipients: usize,
    /// At least this many recipients must forward to one address before they are merged.
    pub min_forwarders: usize,
    /// Forwards count within this many blocks after the airdrop.
    pub window_blocks: u64,
    /// Confidence of the merges.
    pub confidence: u8,
}

impl Default for AirdropParams {
    fn default() -> Self {
        Self {
            enabled: true,
            min_recipients: 10,
            min_forwarders: 2,
            window_blocks: 100_000,
            confidence: 70,
        }
    }
}

/// Every clustering parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterParams {
    /// Run the multi-input heuristic.
    pub multi_input: bool,
    /// Confidence of multi-input merges.
    pub multi_input_confidence: u8,
    /// CoinJoin thresholds.
    pub coinjoin: CoinJoinParams,
    /// Change heuristics switched on for merging (none by default).
    pub change: Vec<ChangeRule>,
    /// A round payment is a positive multiple of this many satoshi.
    pub round_unit_sat: u64,
    /// The collapse guard.
    pub guard: CollapseGuard,
    /// Deposit addresses.
    pub deposit: DepositParams,
    /// Airdrops.
    pub airdrop: AirdropParams,
    /// Blocks read per batch.
    pub batch_blocks: u64,
    /// A run on the store commits after a batch once this many records (ids, merges,
    /// flags, ...) are pending, and at the end (bounds memory; an interrupted run resumes
    /// from the last commit).
    pub commit_pending: usize,
}

impl Default for ClusterParams {
    fn default() -> Self {
        Self {
            multi_input: true,
            multi_input_confidence: 95,
            coinjoin: CoinJoinParams::default(),
            change: Vec::new(),
            round_unit_sat: 100_000,
            guard: CollapseGuard::default(),
            deposit: DepositParams::default(),
            airdrop: AirdropParams::default(),
            batch_blocks: 1_000,
            commit_pending: 2_000_000,
        }
    }
}

/// A CoinJoin flagged on a transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CoinJoinFlag {
    /// Chain.
    pub chain: ChainId,
    /// Block.
    pub block: BlockNumber,
    /// Transaction.
    pub tx: TxHash,
    /// What matched.
    pub detected: CoinJoinMatch,
}

/// An address found to be an exchange deposit address.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DepositRecord {
    /// The deposit address.
    pub deposit: Address,
    /// The hot wallet it sweeps to.
    pub exchange: Address,
    /// The exchange's entity name, when labelled.
    pub entity: Option<String>,
    /// Chain.
    pub chain: ChainId,
    /// Block of the first sweep seen.
    pub block: BlockNumber,
    /// The first sweep seen.
    pub sweep_tx: TxHash,
}

/// A recipient of an airdrop.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AirdropHit {
    /// The distributing address.
    pub distributor: Address,
    /// Block of the airdrop.
    pub block: BlockNumber,
    /// Transaction index of the airdrop.
    pub tx_index: u32,
    /// The airdrop transaction.
    pub tx: TxHash,
}

/// A recipient forwarding an airdropped token to an aggregation address.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AirdropForward {
    /// The recipient that forwarded.
    pub from: Address,
    /// Block of the forward.
    pub block: BlockNumber,
    /// The forward transaction.
    pub tx: TxHash,
    /// The airdrop transaction.
    pub airdrop_tx: TxHash,
}

/// Counts of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    /// Transfers read.
    pub transfers: u64,
    /// UTXO transactions examined.
    pub utxo_txs: u64,
    /// Merges that joined two clusters.
    pub merges: u64,
    /// Merges refused by the collapse guard.
    pub refused: u64,
    /// CoinJoins flagged.
    pub coinjoins: u64,
    /// Deposit addresses found.
    pub deposits: u64,
    /// Airdrop recipients recorded.
    pub airdrop_recipients: u64,
}

impl RunStats {
    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &Self) {
        self.transfers += o.transfers;
        self.utxo_txs += o.utxo_txs;
        self.merges += o.merges;
        self.refused += o.refused;
        self.coinjoins += o.coinjoins;
        self.deposits += o.deposits;
        self.airdrop_recipients += o.airdrop_recipients;
    }
}
