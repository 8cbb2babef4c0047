//! Configuration errors.
//!
//! Every message names where the bad value came from (the config file, or the environment
//! variable that overrode it), the dotted key (e.g. `chains.eth.concurrency`) and what is
//! expected. RPC URLs are shown redacted (see [`crate::redact_url`]) so API keys never reach
//! logs or terminals through an error.

use std::path::PathBuf;

/// Why a configuration could not be loaded, validated or resolved.
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
    #[error(
        "config file {path}{}: {}{message}",
        position(*.line, *.column),
        key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default()
    )]
    Parse {
        /// File.
        path: PathBuf,
        /// 1-based line of the error, when the parser knows it.
        line: Option<usize>,
        /// 1-based column (in characters) of the error, when the parser knows it.
        column: Option<usize>,
        /// Dotted key the error is about (for an unknown key, the unknown key itself), when
        /// known.
        key: Option<String>,
        /// The TOML parser's message (for unknown keys it lists the allowed ones).
        message: String,
    },
    /// A value in the file out of range or of the wrong form.
    #[error("config file {path}: key `{key}`: expected {expected}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Dotted key.
        key: String,
        /// What is expected (and, where useful, what was found, redacted).
        expected: String,
    },
    /// A resolved RPC URL (after the environment override and `${VAR}` expansion) is not an
    /// http, https, ws or wss URL.
    #[error(
        "key `{key}`{}{}: expected {expected}",
        from_var(.source_var.as_deref()),
        expanded(placeholders)
    )]
    InvalidUrl {
        /// Dotted key.
        key: String,
        /// When the value came from an overriding environment variable, its name.
        source_var: Option<String>,
        /// The variables whose values were substituted.
        placeholders: Vec<String>,
        /// What is expected, with the redacted URL found.
        expected: String,
    },
    /// A `${VAR}` placeholder names a variable that is not set.
    #[error("key `{key}`{}: environment variable {var} is not set (referenced as `${{{var}}}`)", from_var(.source_var.as_deref()))]
    MissingVar {
        /// Dotted key whose value holds the placeholder.
        key: String,
        /// When the value came from an overriding environment variable, its name.
        source_var: Option<String>,
        /// The variable that is not set.
        var: String,
    },
    /// A `${...}` placeholder is malformed (unterminated, empty or not a variable name).
    #[error("key `{key}`{}: expected {expected}", from_var(.source_var.as_deref()))]
    Placeholder {
        /// Dotted key whose value holds the placeholder.
        key: String,
        /// When the value came from an overriding environment variable, its name.
        source_var: Option<String>,
        /// What is expected.
        expected: String,
    },
}

/// `, line L, column C` or nothing.
fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(", line {l}, column {c}"),
        (Some(l), None) => format!(", line {l}"),
        _ => String::new(),
    }
}

/// ` (from environment variable V)` or nothing.
fn from_var(var: Option<&str>) -> String {
    var.map(|v| format!(" (from environment variable {v})"))
        .unwrap_or_default()
}

/// ` after expanding ${A}, ${B}` or nothing.
fn expanded(placeholders: &[String]) -> String {
    if placeholders.is_empty() {
        return String::new();
    }
    let list: Vec<String> = placeholders.iter().map(|p| format!("${{{p}}}")).collect();
    format!(" after expanding {}", list.join(", "))
}
