//! Store queries the command-line tool and the server share: store statistics (`stats`).

use paytrace_indexer::{ChainKind, Store, StoreError, TransferKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// One chain's counts (`stats --json` keys).
#[derive(Debug, Clone, Serialize)]
pub struct ChainStats {
    /// Chain name.
    pub chain: String,
    /// `evm` or `bitcoin`.
    pub kind: ChainKind,
    /// Last indexed block.
    pub last_block: Option<u64>,
    /// Its hash (`0x` + 64 hex digits).
    pub last_block_hash: Option<String>,
    /// Transfers indexed.
    pub transfers: u64,
    /// Transfers per kind.
    pub by_kind: BTreeMap<TransferKind, u64>,
}

/// The store's statistics (`stats --json`).
#[derive(Debug, Clone, Serialize)]
pub struct StatsOut {
    /// The data directory.
    pub data_dir: String,
    /// The store's schema version.
    pub schema_version: u32,
    /// Per chain, ordered by id.
    pub chains: Vec<ChainStats>,
}

/// Counts per chain and kind, and the last indexed block of each chain.
pub fn stats(store: &Store) -> Result<StatsOut, StoreError> {
    let mut chains = Vec::new();
    for c in store.chains()? {
        let by_kind = store.counters(c.id)?;
        let cp = store.checkpoint(c.id)?;
        chains.push(ChainStats {
            chain: c.name,
            kind: c.kind,
            last_block: cp.map(|b| b.number.0),
            last_block_hash: cp.map(|b| format!("{:#x}", b.hash)),
            transfers: by_kind.values().sum(),
            by_kind,
        });
    }
    Ok(StatsOut {
        data_dir: store.path().display().to_string(),
        schema_version: paytrace_indexer::store::SCHEMA_VERSION,
        chains,
    })
}
