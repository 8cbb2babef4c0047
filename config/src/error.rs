//! Configuration errors.

use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Not valid TOML, an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// The TOML parser's message, with line, column and key.
        message: String,
    },
    /// A value out of range or of the wrong form.
    #[error("config file {path}: key `{key}`: expected {expected}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Dotted key.
        key: String,
        /// What is expected.
        expected: String,
    },
}
