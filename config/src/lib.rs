//! paytrace-config: the TOML configuration schema, its defaults, environment overrides and
//! validation.
//!
//! Precedence, lowest first: built-in defaults < config file < environment < command-line flags
//! (flags are applied by the binary). Every key is documented in `docs/config.md`.
//!
//! * [`Config::load`] / [`Config::parse`] read a file and [`Config::validate`] it;
//! * [`Config::apply_env`] (or [`Config::apply_process_env`]) applies `PAYTRACE_DATA_DIR` and
//!   `PAYTRACE_RPC_<NAME>`;
//! * [`ChainConfig::resolved_rpc_url`] gives the URL to connect to, with `${VAR}` expanded and
//!   checked;
//! * [`Config::chain_or_default`] gives a chain's settings even when the file has no section for
//!   it.
//!
//! ```
//! use paytrace_config::{Config, TraceMode};
//! use std::path::Path;
//!
//! let text = "[chains.eth]\nrpc_url = \"https://${HOST}/rpc\"\ntrace_mode = \"geth\"\n";
//! let mut cfg = Config::parse(text, Path::new("paytrace.toml"))?;
//! let env = |var: &str| match var {
//!     "PAYTRACE_DATA_DIR" => Some("/var/lib/paytrace".to_owned()),
//!     "HOST" => Some("node.example".to_owned()),
//!     _ => None,
//! };
//! cfg.apply_env(env);
//! assert_eq!(cfg.data_dir_or_default(), Path::new("/var/lib/paytrace"));
//! let eth = cfg.chain_or_default("eth");
//! assert_eq!(eth.trace_mode, TraceMode::Geth);
//! assert_eq!(
//!     eth.resolved_rpc_url("eth", env)?.as_deref(),
//!     Some("https://node.example/rpc")
//! );
//! // A chain absent from the file gets the defaults.
//! assert_eq!(cfg.chain_or_default("dev").confirmations, 12);
//! # Ok::<(), paytrace_config::ConfigError>(())
//! ```

use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

mod cluster;
mod compliance;
mod env;
mod error;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_providers;

pub use cluster::{
    AirdropConfig, CHANGE_HEURISTICS, ChangeConfig, ClusterConfig, CoinJoinConfig, DepositConfig,
    ExchangeWallet,
};
pub use compliance::{
    AlertsConfig, DEFAULT_SERVICES, ExposureScope, FlowScope, RiskConfig, RuleConfig, RuleKind,
    Thresholds, WebhookConfig, WebhookFormat,
};
pub use env::{ENV_DATA_DIR, ENV_RPC_PREFIX, process_env, redact_url, rpc_env_var};
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
    /// Address clustering (`[cluster]`).
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// Payroll providers whose payouts `paytrace report payouts` traces.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Risk screening and scoring (`[risk]`).
    #[serde(default)]
    pub risk: RiskConfig,
    /// Alert rules, payout sources and webhooks (`[alerts]`).
    #[serde(default)]
    pub alerts: AlertsConfig,
    /// Label sources (`[labels]`).
    #[serde(default)]
    pub labels: LabelsConfig,
    /// Typology detectors (`[patterns]`).
    #[serde(default)]
    pub patterns: PatternsConfig,
}

/// The `[patterns]` section of the typology detectors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternsConfig {
    /// Reporting thresholds for the structuring detector, one per asset
    /// (`[[patterns.structuring]]`). Without any, structuring is not detected.
    #[serde(default)]
    pub structuring: Vec<StructuringConfig>,
}

/// One structuring threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StructuringConfig {
    /// The chain (a name as in `chains`).
    pub chain: String,
    /// `native`, a token symbol of the chain's `tokens`, or a token contract address
    /// (then `decimals` is required unless the chain's `tokens` declares it).
    pub asset: String,
    /// The reporting threshold in token units (e.g. `"10000"` for 10 000 USDC).
    pub threshold: String,
    /// Decimals of the asset when `tokens` does not declare them (native: 18 on EVM chains,
    /// 8 on Bitcoin).
    #[serde(default)]
    pub decimals: Option<u8>,
}

/// A payroll provider: its hot wallets on one chain and the assets it pays in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name used with `--provider` (1 to 64 characters).
    pub name: String,
    /// The chain (a name as in `chains`; it need not have a section).
    pub chain: String,
    /// Hot-wallet addresses, `0x` + 40 hex digits; at least one.
    pub addresses: Vec<String>,
    /// Assets paid: `native`, a token symbol of the chain's `tokens`, or a token contract
    /// address. Empty: every asset.
    #[serde(default)]
    pub assets: Vec<String>,
}

/// The `[labels]` section: where label sources are downloaded from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsConfig {
    /// Base URL of OFAC's SDN files (`sdn.csv`, `sdn_comments.csv`, `sdn_advanced.xml`) for
    /// `labels fetch ofac`; the flag `--url` and `PAYTRACE_OFAC_URL` override it. Default: the
    /// binary's built-in OFAC address.
    #[serde(default)]
    pub ofac_url: Option<String>,
    /// Largest share (percent, 0 to 100) of a source's active labels that one new version may
    /// delist before `labels import` / `labels fetch` refuse it (the flag `--max-shrink`
    /// overrides it; `--allow-shrink` accepts any shrink). Default: 10.
    #[serde(default)]
    pub max_shrink_pct: Option<u8>,
}

/// What kind of chain a section describes, and what kind of chain the store registered under a
/// chain id (the one definition; the store encodes it by variant order: keep `Evm` first).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// An EVM chain over JSON-RPC.
    #[default]
    Evm,
    /// A Bitcoin chain (blk files, Bitcoin Core RPC or Esplora; see docs/bitcoin.md).
    Bitcoin,
}

impl ChainKind {
    /// The symbol of the chain's native asset: `ETH` on EVM chains, `BTC` on Bitcoin.
    pub const fn native_symbol(&self) -> &'static str {
        match self {
            Self::Evm => "ETH",
            Self::Bitcoin => "BTC",
        }
    }

    /// The decimals of the chain's native asset: 18 (wei) on EVM chains, 8 (satoshi) on
    /// Bitcoin.
    pub const fn native_decimals(&self) -> u8 {
        match self {
            Self::Evm => 18,
            Self::Bitcoin => 8,
        }
    }
}

/// How internal transfers are read from an EVM node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceMode {
    /// Try parity `trace_block`, then geth `debug_traceBlockByNumber`, on a recent block with
    /// transactions; an error when neither works (never a silent fallback to `None`).
    #[default]
    Auto,
    /// Parity/OpenEthereum/Erigon/reth/anvil `trace_block`.
    Parity,
    /// geth `debug_traceBlockByNumber` with the `callTracer`.
    Geth,
    /// No traces: no internal transfers; failed transactions found through receipts.
    None,
}

/// One chain. Its `Debug` output shows `rpc_url` redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Chain kind (`evm` or `bitcoin`).
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
    /// Total time for one request in seconds, retries and waits included: a node that hangs
    /// or keeps failing fails the run after about this long, naming the request.
    #[serde(default = "defaults::deadline_secs")]
    pub deadline_secs: u64,
    /// Retries of a retryable failure before giving up.
    #[serde(default = "defaults::max_retries")]
    pub max_retries: u32,
    /// Follow-mode poll interval in milliseconds.
    #[serde(default = "defaults::poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Bitcoin: a Bitcoin Core `blocks/` directory (blk*.dat, xor.dat) to index from.
    #[serde(default)]
    pub blocks_dir: Option<PathBuf>,
    /// Bitcoin: the `.cookie` file of the node at `rpc_url` (else user:password in the URL).
    #[serde(default)]
    pub rpc_cookie: Option<PathBuf>,
    /// Bitcoin: an Esplora REST base URL (e.g. `https://blockstream.info/api`).
    #[serde(default)]
    pub esplora_url: Option<String>,
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

/// Accepted ranges of numeric values, inclusive (checked by [`Config::validate`]).
pub mod limits {
    use std::ops::RangeInclusive;

    /// `confirmations`.
    pub const CONFIRMATIONS: RangeInclusive<u64> = 0..=100_000;
    /// `concurrency`.
    pub const CONCURRENCY: RangeInclusive<usize> = 1..=1_024;
    /// `batch_size`.
    pub const BATCH_SIZE: RangeInclusive<usize> = 1..=1_000;
    /// `blocks_per_commit`.
    pub const BLOCKS_PER_COMMIT: RangeInclusive<u64> = 1..=100_000;
    /// `logs_range`.
    pub const LOGS_RANGE: RangeInclusive<u64> = 1..=1_000_000;
    /// `rps`, when present.
    pub const RPS: RangeInclusive<u32> = 1..=1_000_000;
    /// `timeout_secs`.
    pub const TIMEOUT_SECS: RangeInclusive<u64> = 1..=3_600;
    /// `deadline_secs`.
    pub const DEADLINE_SECS: RangeInclusive<u64> = 1..=86_400;
    /// `max_retries`.
    pub const MAX_RETRIES: RangeInclusive<u32> = 0..=100;
    /// `poll_interval_ms`.
    pub const POLL_INTERVAL_MS: RangeInclusive<u64> = 10..=3_600_000;
    /// `tokens[].decimals`: 10^77 is the largest power of ten below 2^256.
    pub const DECIMALS: RangeInclusive<u8> = 0..=77;
    /// Length of a chain name, in characters.
    pub const CHAIN_NAME_LEN: RangeInclusive<usize> = 1..=64;
    /// Length of `tokens[].symbol`, in characters.
    pub const SYMBOL_LEN: RangeInclusive<usize> = 1..=32;
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
    /// 60 seconds.
    pub const fn deadline_secs() -> u64 {
        60
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
            deadline_secs: defaults::deadline_secs(),
            max_retries: defaults::max_retries(),
            poll_interval_ms: defaults::poll_interval_ms(),
            blocks_dir: None,
            rpc_cookie: None,
            esplora_url: None,
        }
    }
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("kind", &self.kind)
            .field("rpc_url", &self.rpc_url.as_deref().map(redact_url))
            .field("confirmations", &self.confirmations)
            .field("trace_mode", &self.trace_mode)
            .field("tokens", &self.tokens)
            .field("all_tokens", &self.all_tokens)
            .field("concurrency", &self.concurrency)
            .field("batch_size", &self.batch_size)
            .field("blocks_per_commit", &self.blocks_per_commit)
            .field("logs_range", &self.logs_range)
            .field("rps", &self.rps)
            .field("timeout_secs", &self.timeout_secs)
            .field("deadline_secs", &self.deadline_secs)
            .field("max_retries", &self.max_retries)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("blocks_dir", &self.blocks_dir)
            .field("rpc_cookie", &self.rpc_cookie)
            .field("esplora_url", &self.esplora_url.as_deref().map(redact_url))
            .finish()
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

    /// The layered configuration: the file at `path` (built-in defaults when `None`), then the
    /// environment overrides read through `env` (see [`Config::apply_env`]). Command-line flags
    /// come on top and are applied by the caller.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut cfg = match path {
            Some(p) => Self::load(p)?,
            None => Self::default(),
        };
        cfg.apply_env(env);
        Ok(cfg)
    }

    /// Parses and validates config text; `origin` names the file in errors.
    ///
    /// TOML syntax errors, unknown keys and values of the wrong type give
    /// [`ConfigError::Parse`] with the line, column and key; out-of-range values give
    /// [`ConfigError::Invalid`].
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| parse_error(&e, text, origin))?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Applies the environment overrides, reading variables through `env` (pass
    /// [`process_env`] for the process environment, or a closure in tests):
    ///
    /// * `PAYTRACE_DATA_DIR` replaces `data_dir`;
    /// * `PAYTRACE_RPC_<NAME>` (see [`rpc_env_var`]) replaces `rpc_url` of each configured
    ///   chain `NAME`. For chains absent from the file, [`ChainConfig::resolved_rpc_url`]
    ///   reads the variable itself.
    ///
    /// Empty values count as unset. Nothing is validated here: `data_dir` takes any path and
    /// URLs are checked by [`ChainConfig::resolved_rpc_url`] once `${VAR}` is expanded.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        let env = non_empty(&env);
        if let Some(dir) = env(ENV_DATA_DIR) {
            self.data_dir = Some(PathBuf::from(dir));
        }
        for (name, chain) in &mut self.chains {
            if let Some(url) = env(&rpc_env_var(name)) {
                chain.rpc_url = Some(url);
            }
        }
    }

    /// [`Config::apply_env`] with the process environment.
    pub fn apply_process_env(&mut self) {
        self.apply_env(process_env);
    }

    /// The data directory: `data_dir`, else [`DEFAULT_DATA_DIR`].
    pub fn data_dir_or_default(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// Checks value ranges and forms; errors name the file and the key. The first error found
    /// is returned.
    pub fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        let bad = |key: String, expected: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key,
            expected,
        };
        if self
            .data_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(bad(
                "data_dir".to_owned(),
                "a non-empty path, or no key for the default".to_owned(),
            ));
        }
        if let Some(u) = &self.labels.ofac_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            return Err(bad(
                "labels.ofac_url".to_owned(),
                "an http:// or https:// URL".to_owned(),
            ));
        }
        if let Some(p) = self.labels.max_shrink_pct
            && p > 100
        {
            return Err(bad(
                "labels.max_shrink_pct".to_owned(),
                format!("a percentage from 0 to 100, found {p}"),
            ));
        }
        let mut env_vars: BTreeMap<String, &str> = BTreeMap::new();
        for (name, c) in &self.chains {
            let len = name.chars().count();
            if !limits::CHAIN_NAME_LEN.contains(&len)
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    format!("chains.{name}"),
                    format!(
                        "a chain name of {} to {} letters, digits, '-' or '_'",
                        limits::CHAIN_NAME_LEN.start(),
                        limits::CHAIN_NAME_LEN.end()
                    ),
                ));
            }
            let var = rpc_env_var(name);
            if let Some(other) = env_vars.insert(var.clone(), name) {
                return Err(bad(
                    format!("chains.{name}"),
                    format!(
                        "a chain name whose override variable differs from that of chain \
                         `{other}` (both are {var})"
                    ),
                ));
            }
            c.validate(name, origin)?;
        }
        self.cluster.validate(origin)?;
        compliance::validate(&self.risk, &self.alerts, origin)?;
        self.validate_providers(origin)
    }

    /// Checks `[[providers]]`: unique non-empty names, valid addresses, known asset symbols.
    fn validate_providers(&self, origin: &Path) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let bad = |field: &str, expected: String| ConfigError::Invalid {
                path: origin.to_path_buf(),
                key: format!("providers[{i}].{field}"),
                expected,
            };
            let len = p.name.chars().count();
            if !limits::CHAIN_NAME_LEN.contains(&len) || p.name.chars().any(char::is_control) {
                return Err(bad(
                    "name",
                    "a name of 1 to 64 characters without control characters".to_owned(),
                ));
            }
            if !names.insert(p.name.clone()) {
                return Err(bad(
                    "name",
                    format!("a unique provider name (`{}` is used twice)", p.name),
                ));
            }
            if p.chain.is_empty()
                || !p
                    .chain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(bad(
                    "chain",
                    "a chain name of letters, digits, '-' or '_'".to_owned(),
                ));
            }
            if p.addresses.is_empty() {
                return Err(bad(
                    "addresses",
                    "at least one hot-wallet address".to_owned(),
                ));
            }
            // A provider on a Bitcoin chain (a `bitcoin` chain section, or the chain named
            // `bitcoin`/`btc` without one) pays from Bitcoin addresses in BTC; the binary checks
            // each address fully (checksum, network) when it reads it.
            let bitcoin = match self.chains.get(&p.chain) {
                Some(c) => c.kind == ChainKind::Bitcoin,
                None => p.chain == "bitcoin" || p.chain == "btc",
            };
            for (j, a) in p.addresses.iter().enumerate() {
                if bitcoin && !is_bitcoin_address_form(a) {
                    return Err(bad(
                        &format!("addresses[{j}]"),
                        format!(
                            "a Bitcoin address (base58 or bech32) on the Bitcoin chain `{}` (found `{a}`)",
                            p.chain
                        ),
                    ));
                }
                if !bitcoin && !is_hex_address(a) {
                    return Err(bad(
                        &format!("addresses[{j}]"),
                        format!("0x followed by 40 hex digits (found `{a}`)"),
                    ));
                }
            }
            let tokens = self.chains.get(&p.chain).map(|c| &c.tokens);
            for (j, a) in p.assets.iter().enumerate() {
                let known = a == "native"
                    || (bitcoin && a.eq_ignore_ascii_case("BTC"))
                    || is_hex_address(a)
                    || tokens.is_some_and(|t| t.iter().any(|t| t.symbol.eq_ignore_ascii_case(a)));
                if !known {
                    return Err(bad(
                        &format!("assets[{j}]"),
                        format!(
                            "`native`, a token contract address, or a symbol listed in \
                             chains.{}.tokens (found `{a}`)",
                            p.chain
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The chain section `name`, if configured.
    pub fn chain(&self, name: &str) -> Option<&ChainConfig> {
        self.chains.get(name)
    }

    /// The chain section `name`, or the defaults when the file has none (so a chain can be
    /// indexed with only `--rpc` or `PAYTRACE_RPC_<NAME>`).
    pub fn chain_or_default(&self, name: &str) -> ChainConfig {
        self.chains.get(name).cloned().unwrap_or_default()
    }
}

impl ChainConfig {
    /// Checks this section's values; `name` is the chain's name in `chains`.
    fn validate(&self, name: &str, origin: &Path) -> Result<(), ConfigError> {
        let bad = |field: &str, expected: String| ConfigError::Invalid {
            path: origin.to_path_buf(),
            key: format!("chains.{name}.{field}"),
            expected,
        };
        in_range(self.confirmations, &limits::CONFIRMATIONS)
            .map_err(|e| bad("confirmations", e))?;
        in_range(self.concurrency, &limits::CONCURRENCY).map_err(|e| bad("concurrency", e))?;
        in_range(self.batch_size, &limits::BATCH_SIZE).map_err(|e| bad("batch_size", e))?;
        in_range(self.blocks_per_commit, &limits::BLOCKS_PER_COMMIT)
            .map_err(|e| bad("blocks_per_commit", e))?;
        in_range(self.logs_range, &limits::LOGS_RANGE).map_err(|e| bad("logs_range", e))?;
        if let Some(rps) = self.rps {
            in_range(rps, &limits::RPS)
                .map_err(|e| bad("rps", format!("{e}, or no key for no limit")))?;
        }
        in_range(self.timeout_secs, &limits::TIMEOUT_SECS).map_err(|e| bad("timeout_secs", e))?;
        in_range(self.deadline_secs, &limits::DEADLINE_SECS)
            .map_err(|e| bad("deadline_secs", e))?;
        in_range(self.max_retries, &limits::MAX_RETRIES).map_err(|e| bad("max_retries", e))?;
        in_range(self.poll_interval_ms, &limits::POLL_INTERVAL_MS)
            .map_err(|e| bad("poll_interval_ms", e))?;
        if let Some(url) = &self.rpc_url {
            match env::check_placeholders(url) {
                Err(e) => return Err(bad("rpc_url", e.expected())),
                // Checked once expanded, by `resolved_rpc_url`.
                Ok(true) => {}
                Ok(false) => env::check_rpc_url(url).map_err(|e| bad("rpc_url", e))?,
            }
        }
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, t) in self.tokens.iter().enumerate() {
            let tok = |field: &str| format!("tokens[{i}].{field}");
            let hex = t.address.strip_prefix("0x").unwrap_or("");
            if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(
                    &tok("address"),
                    format!("0x followed by 40 hex digits (found `{}`)", t.address),
                ));
            }
            if hex.bytes().all(|b| b == b'0') {
                return Err(bad(
                    &tok("address"),
                    "a token contract address, not the zero address".to_owned(),
                ));
            }
            if let Some(first) = seen.insert(hex.to_ascii_lowercase(), i) {
                return Err(bad(
                    &tok("address"),
                    format!(
                        "each token address listed once (tokens[{first}] has the same address, \
                         compared case-insensitively)"
                    ),
                ));
            }
            let len = t.symbol.chars().count();
            if !limits::SYMBOL_LEN.contains(&len)
                || t.symbol.chars().any(char::is_control)
                || t.symbol.trim() != t.symbol
            {
                return Err(bad(
                    &tok("symbol"),
                    format!(
                        "a symbol of {} to {} characters, without control characters or \
                         surrounding spaces",
                        limits::SYMBOL_LEN.start(),
                        limits::SYMBOL_LEN.end()
                    ),
                ));
            }
            in_range(t.decimals, &limits::DECIMALS).map_err(|e| bad(&tok("decimals"), e))?;
        }
        Ok(())
    }

    /// The URL to connect to for chain `chain_name`, or `None` when neither the environment
    /// nor the config names one (the caller may still have a `--rpc` flag).
    ///
    /// `PAYTRACE_RPC_<NAME>` (see [`rpc_env_var`]) wins over `rpc_url`. Then every `${VAR}` is
    /// replaced by the value of `VAR` read through `env` (pass [`process_env`] for the process
    /// environment), and the result must be an `http`, `https`, `ws` or `wss` URL with a host.
    /// Errors name the key, the overriding variable if any, and the missing variable; URLs in
    /// them are redacted.
    pub fn resolved_rpc_url(
        &self,
        chain_name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, ConfigError> {
        let env = non_empty(&env);
        let key = format!("chains.{chain_name}.rpc_url");
        let override_var = rpc_env_var(chain_name);
        let (template, source_var) = match env(&override_var) {
            Some(url) => (url, Some(override_var)),
            None => match &self.rpc_url {
                Some(url) => (url.clone(), None),
                None => return Ok(None),
            },
        };
        let url = env::expand(&template, &|var: &str| env(var)).map_err(|e| match e {
            env::ExpandError::Missing(var) => ConfigError::MissingVar {
                key: key.clone(),
                source_var: source_var.clone(),
                var,
            },
            other => ConfigError::Placeholder {
                key: key.clone(),
                source_var: source_var.clone(),
                expected: other.expected(),
            },
        })?;
        env::check_rpc_url(&url).map_err(|expected| ConfigError::InvalidUrl {
            key: key.clone(),
            source_var: source_var.clone(),
            placeholders: placeholder_names(&template),
            expected,
        })?;
        Ok(Some(url))
    }
}

/// Wraps `env` so that empty values read as unset.
fn non_empty(env: &impl Fn(&str) -> Option<String>) -> impl Fn(&str) -> Option<String> + '_ {
    move |var| env(var).filter(|v| !v.is_empty())
}

/// The `${VAR}` names in `template`, for errors about expanded values.
fn placeholder_names(template: &str) -> Vec<String> {
    template
        .split("${")
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// `Ok` when `value` is in `range`, else what is expected and what was found.
/// The form of a Bitcoin address: base58 (`1…`, `3…`) or bech32/bech32m (`bc1…`), 26 to 90
/// characters of their alphabets. Checksums and networks are checked where the address is read.
fn is_bitcoin_address_form(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    (26..=90).contains(&s.len())
        && if lower.starts_with("bc1") {
            s.bytes().all(|b| b.is_ascii_alphanumeric())
        } else {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() && !b"0OIl".contains(&b))
        }
}

fn is_hex_address(s: &str) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    value: T,
    range: &std::ops::RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "an integer from {} to {} (found {value})",
            range.start(),
            range.end()
        ))
    }
}

/// Turns a TOML error into [`ConfigError::Parse`] with a 1-based line and column, the dotted
/// key, and a message without the offending source line (it could hold an API key).
fn parse_error(e: &toml::de::Error, text: &str, origin: &Path) -> ConfigError {
    let (line, column) = match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    };
    // Without its input, the error renders its key path as "in `a.b.c`".
    let mut bare = e.clone();
    bare.set_input(None);
    let rendered = bare.to_string();
    let mut key = rendered
        .lines()
        .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`'))
        .map(str::to_owned);
    let message = humanize(e.message());
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .map(|(f, _)| f)
    {
        key = Some(match key {
            Some(table) => format!("{table}.{field}"),
            None => field.to_owned(),
        });
    }
    ConfigError::Parse {
        path: origin.to_path_buf(),
        line,
        column,
        key,
        message,
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Replaces Rust type names in serde messages by words, and redacts quoted strings that look
/// like URLs with credentials.
fn humanize(message: &str) -> String {
    let mut out = message
        .replace("expected usize", "expected a non-negative integer")
        .replace("expected u64", "expected a non-negative integer")
        .replace("expected u32", "expected an integer from 0 to 4294967295")
        .replace("expected u8", "expected an integer from 0 to 255")
        .replace("expected path string", "expected a path string");
    // `invalid type: string "https://user:key@host/...", expected ...`
    if let Some(start) = out.find("string \"") {
        let from = start + "string \"".len();
        if let Some(len) = out[from..].find('"') {
            let quoted = out[from..from + len].to_owned();
            if quoted.contains("://") || quoted.contains('@') || quoted.contains('?') {
                out.replace_range(from..from + len, &redact_url(&quoted));
            }
        }
    }
    out
}

/// A commented example configuration, written by `paytrace init`.
pub const EXAMPLE: &str = include_str!("example.toml");
