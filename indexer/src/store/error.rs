//! Store errors.

use super::ChainKind;
use crate::model::{BlockNumber, ChainId, TransferKey};
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory path names a file.
    #[error("data dir {path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the store's lock.
    #[error("store at {path} is locked by another process (is another paytrace running?)")]
    Locked {
        /// The path.
        path: PathBuf,
    },
    /// fjall could not open or recover the directory.
    #[error("cannot open store at {path} (corrupt, or not a paytrace store): {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// The store was written by another schema version.
    #[error(
        "store at {path} has schema version {found}, this paytrace reads version {expected}; \
         re-index into a new --data-dir"
    )]
    SchemaMismatch {
        /// The path.
        path: PathBuf,
        /// Version on disk.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// An I/O failure of the engine.
    #[error("store i/o error during {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// A stored record does not decode.
    #[error("corrupt record in {keyspace} at key {key}: {reason}")]
    Corrupt {
        /// Keyspace.
        keyspace: &'static str,
        /// Key, hex or readable.
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// A record could not be encoded (a bug).
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// A range does not follow the checkpoint.
    #[error(
        "chain {chain:?}: blocks must follow block {checkpoint} contiguously, got block {start}"
    )]
    NotContiguous {
        /// Chain.
        chain: ChainId,
        /// Last block written.
        checkpoint: BlockNumber,
        /// First block offered.
        start: BlockNumber,
    },
    /// A transfer's block or chain lies outside the range being written (a bug in a source).
    #[error("transfer {key:?} lies outside the range being written")]
    TransferOutsideRange {
        /// The transfer.
        key: TransferKey,
    },
    /// Two transfers of a range written in bulk have the same key (a bug in a source).
    #[error("transfer key {key} appears twice in a bulk range")]
    DuplicateTransfer {
        /// The key, hex.
        key: String,
    },
    /// A chain name was registered with another kind.
    #[error("chain {chain:?} is stored as {stored:?}, not {requested:?}")]
    ChainKindMismatch {
        /// Name.
        chain: String,
        /// Kind in the store.
        stored: ChainKind,
        /// Kind asked for.
        requested: ChainKind,
    },
    /// All 65 535 chain ids are taken.
    #[error("too many chains in one store")]
    TooManyChains,
}

impl StoreError {
    /// Whether retrying the same operation may succeed (only transient I/O).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. })
    }
}
