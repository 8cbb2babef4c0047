//! Clustering errors.

use paytrace_indexer::{StoreError, labels::LabelError};

/// Why clustering or a cluster query failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Reading transfers failed.
    #[error("reading transfers: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The label store failed.
    #[error(transparent)]
    Labels(#[from] LabelError),
    /// A stored cluster record is unreadable.
    #[error("corrupt cluster record in keyspace {keyspace}, key {key}: {reason}")]
    Corrupt {
        /// Keyspace.
        keyspace: &'static str,
        /// Key (hex).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// Encoding a record failed.
    #[error("encoding a cluster record: {0}")]
    Encode(String),
    /// More addresses than `u32` ids.
    #[error("more than 4294967294 clustered addresses: the u32 id space is full")]
    IdSpaceFull,
    /// The chain is not registered in the store.
    #[error("chain {0:?} is not indexed in this store")]
    UnknownChain(String),
    /// Blocks already clustered were replaced by a reorg.
    #[error(
        "chain {chain}: block {block} was clustered with hash {clustered} but the store now has {stored}: clusters are derived from replaced blocks; rebuild them with `paytrace cluster run --rebuild`"
    )]
    Reorged {
        /// Chain name.
        chain: String,
        /// Block.
        block: u64,
        /// Hash when clustered.
        clustered: String,
        /// Hash in the store.
        stored: String,
    },
    /// Amount arithmetic overflowed (corrupt amounts).
    #[error("amount arithmetic in tx {tx}: {reason}")]
    Arithmetic {
        /// Transaction.
        tx: String,
        /// What overflowed.
        reason: String,
    },
}

impl ClusterError {
    /// Wraps an error of a [`super::ClusterSource`].
    pub fn source<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        Self::Source(Box::new(e))
    }
}
