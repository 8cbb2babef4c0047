//! paytrace-indexer: the chain-agnostic model, the fjall store, chain sources and the sync loop.
//!
//! Data flows one way: a source (EVM JSON-RPC, Bitcoin) fetches blocks and decodes them into
//! [`model::Transfer`]s; the sync loop writes each range atomically into the [`store::Store`]
//! with its checkpoint; the tracer reads the store.

pub mod btc;
pub mod chain;
pub mod etl;
pub mod evm;
pub mod labels;
pub mod model;
pub mod stage;
pub mod store;
pub mod sync;
#[cfg(feature = "test-utils")]
pub mod testutil;
pub mod time;

pub use model::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, Timestamp, Transfer, TransferKey,
    TransferKind, TxHash,
};
pub use store::{
    BALANCE_INTERVAL, BalanceCheckpoint, BalanceStats, ChainInfo, ChainKind, Direction, KeyspaceOp,
    OpenMode, QUERY_CACHE_BYTES, Store, StoreError, balance_checkpoints,
};
