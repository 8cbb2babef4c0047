//! Address labels and sanctions: an attribution store with provenance and validity in time.
//!
//! * [`address`]: per-chain validation and normalisation ([`LabelAddress`]).
//! * [`model`]: the [`Label`], the [`Category`] taxonomy with its synonyms, sources.
//! * [`store`]: the [`LabelStore`] in the paytrace store (point-read look-ups, atomic imports,
//!   delisting history, as-of queries).
//! * [`import`]: one importer per format (OFAC legacy CSV, OFAC advanced XML, GraphSense
//!   TagPack, plain lists, CSV with a header).
//!
//! See docs/labels.md.

pub mod address;
pub mod import;
pub mod model;
pub mod store;

pub use address::{AddressError, LabelAddress, LabelChain};
pub use import::{Format, ImportOptions, Input, Sink, import_files, import_inputs};
/// Calendar date (UTC day) used for validity and as-of queries.
pub use jiff::civil::Date;
pub use model::{Category, Label, SourceInfo, SourceVersion, date_of_unix, parse_date, today};
pub use store::{Candidate, Defaults, ImportReport, ImportSession, LabelStore, Reject};

use std::path::PathBuf;

/// Why a label operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The paytrace store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// An I/O failure of the engine.
    #[error("label store i/o error during {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// A stored record does not decode.
    #[error("corrupt label record in {keyspace} at key {key}: {reason}")]
    Corrupt {
        /// Keyspace.
        keyspace: &'static str,
        /// Key (hex or text).
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// A record does not encode.
    #[error("cannot encode label record: {0}")]
    Encode(String),
    /// An input file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An input is malformed as a whole (not one bad row): nothing was imported.
    #[error("{file}:{line}: {reason}; nothing was imported")]
    Parse {
        /// File name.
        file: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The source name is empty, too long or contains a NUL byte.
    #[error("invalid source name {name:?}")]
    BadSourceName {
        /// The name.
        name: String,
    },
    /// The version is older than the newest imported version of the source.
    #[error(
        "source {source_name}: version {version} is not newer than the imported version {latest}; nothing was imported"
    )]
    OlderVersion {
        /// Source.
        source_name: String,
        /// Version given.
        version: String,
        /// Newest imported version.
        latest: String,
    },
}
