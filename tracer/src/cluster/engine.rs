//! The clustering run over a block range: reads transfers through [`ClusterSource`], applies
//! the heuristics of the chain's kind, and leaves the results in a [`ClusterState`].

use super::{
    ClusterError, ClusterParams, ClusterSource, ClusterState, Persisted,
    change::{ChangeContext, ScriptType},
    evm, utxo,
};
use paytrace_indexer::{Address, BlockNumber, ChainId, ChainKind, Direction};
use std::collections::{HashMap, HashSet};

/// Known exchange hot wallets (with their entity) and other service addresses that are never
/// treated as a user's address by the Ethereum heuristics.
#[derive(Clone, Debug, Default)]
pub struct Exchanges {
    hot: HashMap<Address, Option<String>>,
    services: HashSet<Address>,
}

impl Exchanges {
    /// None known.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a hot wallet of `entity`.
    pub fn insert(&mut self, wallet: Address, entity: Option<String>) {
        self.services.insert(wallet);
        match self.hot.get_mut(&wallet) {
            Some(e @ None) => *e = entity,
            Some(Some(_)) => {}
            None => {
                self.hot.insert(wallet, entity);
            }
        }
    }

    /// Adds a labelled service address (payroll provider, bridge, ...) that must not be merged
    /// as a depositing user.
    pub fn insert_service(&mut self, address: Address) {
        self.services.insert(address);
    }

    /// Whether `a` is a hot wallet.
    pub fn is_hot_wallet(&self, a: &Address) -> bool {
        self.hot.contains_key(a)
    }

    /// Whether `a` is a hot wallet or a service.
    pub fn skips(&self, a: &Address) -> bool {
        self.services.contains(a)
    }

    /// The entity of hot wallet `a`.
    pub fn entity(&self, a: &Address) -> Option<&str> {
        self.hot.get(a).and_then(|e| e.as_deref())
    }

    /// No hot wallets.
    pub fn is_empty(&self) -> bool {
        self.hot.is_empty()
    }

    /// Number of hot wallets.
    pub fn len(&self) -> usize {
        self.hot.len()
    }
}

/// Change context answering "seen before" from the source's address history.
struct SourceContext<'a, S: ?Sized> {
    src: &'a S,
    chain: ChainId,
}

impl<S: ClusterSource + ?Sized> ChangeContext for SourceContext<'_, S> {
    fn seen_before(&self, address: &Address, block: u64, tx_index: u32) -> bool {
        match self
            .src
            .history(address, Direction::Incoming, self.chain, 1)
        {
            Ok(h) => h
                .first()
                .is_some_and(|t| (t.key.block.0, t.key.tx_index) < (block, tx_index)),
            // Unknown history: not fresh (the heuristic then does not fire).
            Err(_) => true,
        }
    }
    fn script_type(&self, address: &Address) -> Option<ScriptType> {
        // Unknown script (not indexed, or a read error): the heuristic does not fire.
        self.src
            .script(address)
            .ok()
            .flatten()
            .map(|s| paytrace_indexer::btc::script::classify(bitcoin::Script::from_bytes(&s)).kind)
    }
}

/// Clusters blocks `from..=to` of `chain` into `state`, batch by batch.
#[allow(clippy::too_many_arguments)]
pub fn run_range<S: ClusterSource + ?Sized>(
    src: &S,
    state: &mut ClusterState,
    p: &dyn Persisted,
    params: &ClusterParams,
    exchanges: &Exchanges,
    chain: ChainId,
    kind: ChainKind,
    from: BlockNumber,
    to: BlockNumber,
) -> Result<(), ClusterError> {
    let ctx = SourceContext { src, chain };
    let step = params.batch_blocks.max(1);
    let mut lo = from;
    while lo <= to {
        let hi = BlockNumber(lo.0.saturating_add(step - 1).min(to.0));
        let transfers = src.range(chain, lo, hi).map_err(ClusterError::source)?;
        state.stats.transfers += u64::try_from(transfers.len()).unwrap_or(u64::MAX);
        match kind {
            ChainKind::Bitcoin => {
                for tx in utxo::group(&transfers)? {
                    utxo::process_tx(state, p, params, &tx, &ctx)?;
                }
            }
            ChainKind::Evm => evm::process(state, p, src, params, exchanges, chain, &transfers)?,
        }
        tracing::debug!(
            chain = chain.0,
            from = lo.0,
            to = hi.0,
            merges = state.stats.merges,
            "clustered batch"
        );
        match hi.next() {
            Some(n) => lo = n,
            None => break,
        }
    }
    Ok(())
}
