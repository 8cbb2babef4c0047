//! paytrace-config: the TOML configuration schema, its defaults, environment overrides and
//! validation.
//!
//! Precedence, lowest first: built-in defaults < config file < environment < command-line flags
//! (flags are applied by the binary).

use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

mod error;

pub use error::ConfigError;

/// The default data directory when neither config, env nor flag names one.
pub const DEFAULT_DATA_DIR: &str = "./paytrace-data";

/// The whole configuration file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the store lives (default `./paytrace-data`).
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
    /// Chains by name.
    #[serde(default)]
    pub chains: BTreeMap<String, ChainConfig>,
}

/// What kind of chain a section describes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// An EVM chain over JSON-RPC.
    #[default]
    Evm,
}

/// How internal transfers are read from an EVM node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceMode {
    /// Try parity `trace_block`, then geth `debug_traceBlockByNumber`, else no traces.
    #[default]
    Auto,
    /// Parity/OpenEthereum/Erigon/reth/anvil `trace_block`.
    Parity,
    /// geth `debug_traceBlockByNumber` with the `callTracer`.
    Geth,
    /// No traces: no internal transfers; failed transactions found through receipts.
    None,
}

/// One chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Chain kind (`evm`).
    #[serde(default)]
    pub kind: ChainKind,
    /// JSON-RPC URL. `${VAR}` is replaced by the environment variable `VAR`, so API keys
    /// stay out of files; `PAYTRACE_RPC_<NAME>` overrides it.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// Blocks behind head that `follow` stays (0 for dev nodes).
    #[serde(default = "defaults::confirmations")]
    pub confirmations: u64,
    /// How internal transfers are read.
    #[serde(default)]
    pub trace_mode: TraceMode,
    /// Tokens with their symbol and decimals. With `all_tokens = false`, only these are indexed.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Index `Transfer` events of every contract (default) or only of `tokens`.
    #[serde(default = "defaults::yes")]
    pub all_tokens: bool,
    /// Requests (or batches) in flight at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Calls per JSON-RPC batch request.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    /// Blocks fetched per work unit and written per atomic commit.
    #[serde(default = "defaults::blocks_per_commit")]
    pub blocks_per_commit: u64,
    /// Initial block span of one `eth_getLogs` call (halved when the node refuses).
    #[serde(default = "defaults::logs_range")]
    pub logs_range: u64,
    /// Requests per second limit (none when absent).
    #[serde(default)]
    pub rps: Option<u32>,
    /// Per-request timeout in seconds.
    #[serde(default = "defaults::timeout_secs")]
    pub timeout_secs: u64,
    /// Retries of a retryable failure before giving up.
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    /// Follow-mode poll interval in milliseconds.
    #[serde(default = "defaults::poll_interval_ms")]
    pub poll_interval_ms: u64,
}

/// A token the user names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Contract address, `0x` + 40 hex digits.
    pub address: String,
    /// Symbol (e.g. `USDC`).
    pub symbol: String,
    /// Decimals (e.g. 6).
    pub decimals: u8,
}

/// Default values of [`ChainConfig`] fields.
pub mod defaults {
    /// 12 blocks.
    pub const fn confirmations() -> u64 {
        12
    }
    /// `true`.
    pub const fn yes() -> bool {
        true
    }
    /// 8 requests in flight.
    pub const fn concurrency() -> usize {
        8
    }
    /// 25 calls per batch.
    pub const fn batch_size() -> usize {
        25
    }
    /// 100 blocks per commit.
    pub const fn blocks_per_commit() -> u64 {
        100
    }
    /// 1,000 blocks per `eth_getLogs`.
    pub const fn logs_range() -> u64 {
        1_000
    }
    /// 30 seconds.
    pub const fn timeout_secs() -> u64 {
        30
    }
    /// 8 retries.
    pub const fn max_retries() -> u32 {
        8
    }
    /// 1 second.
    pub const fn poll_interval_ms() -> u64 {
        1_000
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            kind: ChainKind::Evm,
            rpc_url: None,
            confirmations: defaults::confirmations(),
            trace_mode: TraceMode::Auto,
            tokens: Vec::new(),
            all_tokens: true,
            concurrency: defaults::concurrency(),
            batch_size: defaults::batch_size(),
            blocks_per_commit: defaults::blocks_per_commit(),
            logs_range: defaults::logs_range(),
            rps: None,
            timeout_secs: defaults::timeout_secs(),
            max_retries: defaults::max_retries(),
            poll_interval_ms: defaults::poll_interval_ms(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates config text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Checks value ranges and forms; errors name the file and the key.
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |key: String, expected: &str| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key,
            expected: expected.to_owned(),
        };
        for (name, c) in &self.chains {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    format!("chains.{name}"),
                    "a chain name of letters, digits, '-' or '_'",
                ));
            }
            if c.concurrency == 0 {
                return Err(bad(format!("chains.{name}.concurrency"), "an integer >= 1"));
            }
            if c.batch_size == 0 {
                return Err(bad(format!("chains.{name}.batch_size"), "an integer >= 1"));
            }
            if c.blocks_per_commit == 0 {
                return Err(bad(
                    format!("chains.{name}.blocks_per_commit"),
                    "an integer >= 1",
                ));
            }
            if c.logs_range == 0 {
                return Err(bad(format!("chains.{name}.logs_range"), "an integer >= 1"));
            }
            if c.rps == Some(0) {
                return Err(bad(
                    format!("chains.{name}.rps"),
                    "an integer >= 1, or no key for no limit",
                ));
            }
            for (i, t) in c.tokens.iter().enumerate() {
                let h = t.address.strip_prefix("0x").unwrap_or("");
                if h.len() != 40 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(
                        format!("chains.{name}.tokens[{i}].address"),
                        "0x followed by 40 hex digits",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The chain section `name`, if configured.
    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains.get(name)
    }
}

/// A commented example configuration, written by `paytrace init`.
pub const EXAMPLE: &str = include_str!("example.toml");
