//! Tracer errors.

use paytrace_indexer::{TransferKey, model::AmountError};

/// Why a trace or path query failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The read source failed (store I/O, corruption).
    #[error("reading transfers: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// A seed transfer is not in the store.
    #[error("seed transfer {0:?} is not indexed")]
    SeedNotFound(TransferKey),
    /// The seed selects no transfer.
    #[error("the seed selects no transfer: {0}")]
    EmptySeed(String),
    /// A label read failed (store I/O, a corrupt label record): the address's labels are
    /// unknown, which is never read as "unlabelled".
    #[error("reading labels: {0}")]
    Labels(#[from] paytrace_indexer::labels::LabelError),
    /// Exact arithmetic failed (an overflow means corrupt amounts).
    #[error("amount arithmetic: {0}")]
    Arithmetic(String),
}

impl From<AmountError> for TraceError {
    fn from(e: AmountError) -> Self {
        Self::Arithmetic(e.to_string())
    }
}

impl TraceError {
    /// Wraps an error of a [`crate::FlowSource`].
    pub fn source<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        Self::Source(Box::new(e))
    }
}
