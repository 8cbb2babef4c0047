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
pub use store::{
    Candidate, DEFAULT_MAX_SHRINK_PCT, Defaults, ImportReport, ImportSession, LabelStore, Reject,
    ShrinkGuard,
};

use std::path::PathBuf;

/// Why a label operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// The paytrace store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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
    /// The new version would delist more than the allowed share of the source's active labels,
    /// or it read no row while the source has active labels: nothing was imported.
    #[error(
        "source {source_name}: version {version} would remove {removed} of its {active} active labels ({}), more than the limit of {max_pct} %{}; nothing was imported; pass --allow-shrink if this is intended",
        share(*.removed, *.active),
        if *.read == 0 { " (no row was read)" } else { "" }
    )]
    Shrink {
        /// Source.
        source_name: String,
        /// Version refused.
        version: String,
        /// Rows read from the input (accepted, duplicate or rejected).
        read: u64,
        /// Labels this version would delist.
        removed: u64,
        /// Active labels of the source before this version.
        active: u64,
        /// The limit, in percent of `active`.
        max_pct: u8,
    },
    /// An input is not in the format it was given as (e.g. a CSV given as XML): nothing was
    /// imported.
    #[error("{file}: not {expected} input: {found}; nothing was imported")]
    WrongFormat {
        /// File name.
        file: String,
        /// The format the input was given as, in words.
        expected: &'static str,
        /// What was found instead (and what to use).
        found: String,
    },
}

impl LabelError {
    /// True when the input was refused as a whole (malformed, wrong format, older version, or
    /// a guarded shrink): fixing the input or the flags, not retrying, is the remedy.
    pub fn is_input_refused(&self) -> bool {
        matches!(
            self,
            Self::Parse { .. }
                | Self::WrongFormat { .. }
                | Self::OlderVersion { .. }
                | Self::Shrink { .. }
        )
    }
}

/// `removed` as a share of `active`, in percent with one decimal (`"90.6 %"`).
fn share(removed: u64, active: u64) -> String {
    if active == 0 {
        return "all".to_owned();
    }
    let tenths = u128::from(removed) * 1000 / u128::from(active);
    format!("{}.{} %", tenths / 10, tenths % 10)
}
