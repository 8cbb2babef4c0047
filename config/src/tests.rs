//! Unit tests: every error path, the example file, and precedence defaults < file < env.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use super::*;
use std::collections::HashMap;

fn origin() -> &'static Path {
    Path::new("test.toml")
}

/// An `env` closure over fixed pairs.
fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses `text`, expecting a [`ConfigError::Parse`]; returns (line, column, key, message,
/// display).
fn parse_err(text: &str) -> (Option<usize>, Option<usize>, Option<String>, String, String) {
    let err = Config::parse(text, origin()).unwrap_err();
    let shown = err.to_string();
    match err {
        ConfigError::Parse {
            path,
            line,
            column,
            key,
            message,
        } => {
            assert_eq!(path, origin());
            (line, column, key, message, shown)
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

/// Parses `text`, expecting a [`ConfigError::Invalid`]; returns (key, expected, display).
fn invalid(text: &str) -> (String, String, String) {
    let err = Config::parse(text, origin()).unwrap_err();
    let shown = err.to_string();
    match err {
        ConfigError::Invalid {
            path,
            key,
            expected,
        } => {
            assert_eq!(path, origin());
            assert!(shown.starts_with("config file test.toml: key `"), "{shown}");
            (key, expected, shown)
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- example and defaults

#[test]
fn example_parses_and_validates() {
    let cfg = Config::parse(EXAMPLE, Path::new("example.toml")).unwrap();
    assert_eq!(cfg.data_dir, None);
    assert_eq!(cfg.chains.len(), 1);
    let eth = cfg.chain("ethereum").unwrap();
    assert_eq!(eth.rpc_url.as_deref(), Some("${ETH_RPC_URL}"));
    assert_eq!(eth.tokens.len(), 2);
    assert_eq!(eth.tokens[0].symbol, "USDC");
    assert_eq!(eth.tokens[0].decimals, 6);
    assert_eq!(eth.tokens[1].symbol, "USDT");
    // The example claims to show the defaults: apart from the URL and tokens, it must equal
    // them.
    let mut shown = eth.clone();
    shown.rpc_url = None;
    shown.tokens.clear();
    assert_eq!(shown, ChainConfig::default());
}

#[test]
fn example_resolves_its_rpc_url_from_the_environment() {
    let cfg = Config::parse(EXAMPLE, Path::new("example.toml")).unwrap();
    let eth = cfg.chain_or_default("ethereum");
    let env = env_of(&[("ETH_RPC_URL", "https://eth.example/v2/KEY")]);
    assert_eq!(
        eth.resolved_rpc_url("ethereum", env).unwrap().as_deref(),
        Some("https://eth.example/v2/KEY")
    );
    let err = eth.resolved_rpc_url("ethereum", no_env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key `chains.ethereum.rpc_url`: environment variable ETH_RPC_URL is not set \
         (referenced as `${ETH_RPC_URL}`)"
    );
}

#[test]
fn example_round_trips_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paytrace.toml");
    std::fs::write(&path, EXAMPLE).unwrap();
    assert_eq!(
        Config::load(&path).unwrap(),
        Config::parse(EXAMPLE, &path).unwrap()
    );
}

#[test]
fn empty_file_gives_defaults() {
    let cfg = Config::parse("", origin()).unwrap();
    assert_eq!(cfg, Config::default());
    assert_eq!(cfg.data_dir_or_default(), Path::new(DEFAULT_DATA_DIR));
}

#[test]
fn empty_chain_section_gives_chain_defaults() {
    let cfg = Config::parse("[chains.dev]\n", origin()).unwrap();
    assert_eq!(cfg.chain("dev"), Some(&ChainConfig::default()));
}

#[test]
fn defaults_are_within_limits() {
    let d = ChainConfig::default();
    assert!(d.validate("x", origin()).is_ok());
    assert_eq!(d.confirmations, 12);
    assert_eq!(d.trace_mode, TraceMode::Auto);
    assert_eq!(d.kind, ChainKind::Evm);
    assert!(d.all_tokens);
    assert_eq!(
        (
            d.concurrency,
            d.batch_size,
            d.blocks_per_commit,
            d.logs_range
        ),
        (8, 25, 100, 1_000)
    );
    assert_eq!(
        (
            d.rps,
            d.timeout_secs,
            d.deadline_secs,
            d.max_retries,
            d.poll_interval_ms
        ),
        (None, 30, 60, 8, 1_000)
    );
}

#[test]
fn every_key_parses() {
    let text = r#"
data_dir = "/var/lib/paytrace"
[chains.polygon-pos]
kind = "evm"
rpc_url = "wss://polygon.example:8546/ws"
confirmations = 0
trace_mode = "none"
all_tokens = false
concurrency = 1024
batch_size = 1000
blocks_per_commit = 1
logs_range = 1000000
rps = 1
timeout_secs = 3600
deadline_secs = 86400
max_retries = 0
poll_interval_ms = 10
tokens = [{ address = "0x2791bca1f2de4661ed88a30c99a7a9449aa84174", symbol = "USDC.e", decimals = 77 }]
"#;
    let cfg = Config::parse(text, origin()).unwrap();
    assert_eq!(
        cfg.data_dir.as_deref(),
        Some(Path::new("/var/lib/paytrace"))
    );
    let c = cfg.chain("polygon-pos").unwrap();
    assert_eq!(c.trace_mode, TraceMode::None);
    assert!(!c.all_tokens);
    assert_eq!(c.rps, Some(1));
    assert_eq!(c.tokens[0].decimals, 77);
    for (mode, want) in [
        ("auto", TraceMode::Auto),
        ("parity", TraceMode::Parity),
        ("geth", TraceMode::Geth),
        ("none", TraceMode::None),
    ] {
        let cfg = Config::parse(&format!("[chains.x]\ntrace_mode = \"{mode}\"\n"), origin());
        assert_eq!(cfg.unwrap().chains["x"].trace_mode, want);
    }
}

// ---------------------------------------------------------------- file errors

#[test]
fn missing_file_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.starts_with("cannot read config file "), "{shown}");
    assert!(shown.contains("nope.toml"), "{shown}");
    assert!(Config::load_with_env(Some(&path), no_env).is_err());
}

#[test]
fn syntax_error_has_line_and_column_and_no_secret() {
    let (line, column, key, message, shown) =
        parse_err("[chains.eth]\nrpc_url = \"https://user:s3cret@host/KEY\n");
    assert_eq!((line, column), (Some(2), Some(40)));
    assert_eq!(key, None);
    assert!(message.contains("expected `\"`"), "{message}");
    assert!(
        shown.starts_with("config file test.toml, line 2, column 40: "),
        "{shown}"
    );
    assert!(
        !shown.contains("s3cret") && !shown.contains("KEY"),
        "{shown}"
    );
}

#[test]
fn syntax_error_in_table_header() {
    let (line, column, _, _, shown) = parse_err("data_dir = \"x\"\n[chains.eth\n");
    assert_eq!((line, column), (Some(2), Some(12)));
    assert!(shown.contains("line 2, column 12"), "{shown}");
}

#[test]
fn duplicate_key_is_a_parse_error() {
    let (line, _, _, message, _) = parse_err("[chains.eth]\nconcurrency = 1\nconcurrency = 2\n");
    assert_eq!(line, Some(3));
    assert!(message.contains("duplicate key"), "{message}");
}

#[test]
fn unknown_top_level_key_names_it_and_the_allowed_ones() {
    let (line, column, key, message, shown) = parse_err("data_dir = \"d\"\ndatadir = \"x\"\n");
    assert_eq!((line, column), (Some(2), Some(1)));
    assert_eq!(key.as_deref(), Some("datadir"));
    // The list of allowed keys grows as sections are added; it starts with these.
    assert!(
        message.starts_with("unknown field `datadir`, expected one of `data_dir`, `chains`"),
        "{message}"
    );
    assert!(
        shown.starts_with(
            "config file test.toml, line 2, column 1: key `datadir`: unknown field `datadir`, \
             expected one of `data_dir`, `chains`"
        ),
        "{shown}"
    );
}

#[test]
fn unknown_chain_key_names_it_and_the_allowed_ones() {
    let (line, column, key, message, _) =
        parse_err("[chains.eth]\nconcurrency = 2\nconcurency = 3\n");
    assert_eq!((line, column), (Some(3), Some(1)));
    assert_eq!(key.as_deref(), Some("chains.eth.concurency"));
    assert!(message.starts_with("unknown field `concurency`, expected one of "));
    for allowed in [
        "kind",
        "rpc_url",
        "confirmations",
        "trace_mode",
        "tokens",
        "all_tokens",
        "concurrency",
        "batch_size",
        "blocks_per_commit",
        "logs_range",
        "rps",
        "timeout_secs",
        "deadline_secs",
        "max_retries",
        "poll_interval_ms",
    ] {
        assert!(
            message.contains(&format!("`{allowed}`")),
            "{allowed}: {message}"
        );
    }
}

#[test]
fn unknown_token_key_names_it_and_the_allowed_ones() {
    let text = "[[chains.eth.tokens]]\naddress = \"0xdAC17F958D2ee523a2206206994597C13D831ec7\"\n\
                symbol = \"USDT\"\ndecimals = 6\nname = \"Tether\"\n";
    let (line, column, key, message, _) = parse_err(text);
    assert_eq!((line, column), (Some(5), Some(1)));
    assert_eq!(key.as_deref(), Some("chains.eth.tokens.name"));
    assert_eq!(
        message,
        "unknown field `name`, expected one of `address`, `symbol`, `decimals`"
    );
}

#[test]
fn missing_token_field_names_it() {
    let (line, _, key, message, _) =
        parse_err("[[chains.eth.tokens]]\naddress = \"0x\"\nsymbol = \"X\"\n");
    assert_eq!(line, Some(1));
    assert_eq!(key.as_deref(), Some("chains.eth.tokens"));
    assert_eq!(message, "missing field `decimals`");
}

#[test]
fn wrong_types_name_the_key_and_expectation() {
    let cases = [
        (
            "[chains.eth]\nconcurrency = \"x\"\n",
            "chains.eth.concurrency",
            (2, 15),
            "invalid type: string \"x\", expected a non-negative integer",
        ),
        (
            "[chains.eth]\nconfirmations = -1\n",
            "chains.eth.confirmations",
            (2, 17),
            "invalid value: integer `-1`, expected a non-negative integer",
        ),
        (
            "[chains.eth]\nrps = 5000000000\n",
            "chains.eth.rps",
            (2, 7),
            "invalid value: integer `5000000000`, expected an integer from 0 to 4294967295",
        ),
        (
            "[chains.eth]\nall_tokens = \"yes\"\n",
            "chains.eth.all_tokens",
            (2, 14),
            "invalid type: string \"yes\", expected a boolean",
        ),
        (
            "[[chains.eth.tokens]]\naddress = \"0x\"\nsymbol = \"X\"\ndecimals = 300\n",
            "chains.eth.tokens.decimals",
            (4, 12),
            "invalid value: integer `300`, expected an integer from 0 to 255",
        ),
        (
            "data_dir = 5\n",
            "data_dir",
            (1, 12),
            "invalid type: integer `5`, expected a path string",
        ),
        (
            "chains = 5\n",
            "chains",
            (1, 10),
            "invalid type: integer `5`, expected a map",
        ),
        (
            "[chains.eth]\ntimeout_secs = 1.5\n",
            "chains.eth.timeout_secs",
            (2, 16),
            "invalid type: floating point `1.5`, expected a non-negative integer",
        ),
    ];
    for (text, want_key, (want_line, want_col), want_message) in cases {
        let (line, column, key, message, shown) = parse_err(text);
        assert_eq!(key.as_deref(), Some(want_key), "{text}");
        assert_eq!((line, column), (Some(want_line), Some(want_col)), "{text}");
        assert_eq!(message, want_message, "{text}");
        assert!(shown.contains(&format!("key `{want_key}`")), "{shown}");
    }
}

#[test]
fn unknown_enum_values_list_the_allowed_ones() {
    let (_, _, key, message, _) = parse_err("[chains.eth]\ntrace_mode = \"debug\"\n");
    assert_eq!(key.as_deref(), Some("chains.eth.trace_mode"));
    assert_eq!(
        message,
        "unknown variant `debug`, expected one of `auto`, `parity`, `geth`, `none`"
    );
    let (_, _, key, message, _) = parse_err("[chains.btc]\nkind = \"dogecoin\"\n");
    assert_eq!(key.as_deref(), Some("chains.btc.kind"));
    assert_eq!(
        message,
        "unknown variant `dogecoin`, expected `evm` or `bitcoin`"
    );
}

#[test]
fn wrong_type_message_redacts_urls() {
    let (_, _, key, message, shown) =
        parse_err("[chains.eth]\nconfirmations = \"https://u:s3cret@host/v3/KEY?k=KEY2\"\n");
    assert_eq!(key.as_deref(), Some("chains.eth.confirmations"));
    assert!(message.contains("https://***@host/***?***"), "{message}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("KEY"),
        "{shown}"
    );
}

// ---------------------------------------------------------------- validation errors

#[test]
fn out_of_range_numbers_name_the_key_and_range() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "confirmations",
            "100001",
            "an integer from 0 to 100000 (found 100001)",
        ),
        ("concurrency", "0", "an integer from 1 to 1024 (found 0)"),
        (
            "concurrency",
            "1025",
            "an integer from 1 to 1024 (found 1025)",
        ),
        ("batch_size", "0", "an integer from 1 to 1000 (found 0)"),
        (
            "batch_size",
            "1001",
            "an integer from 1 to 1000 (found 1001)",
        ),
        (
            "blocks_per_commit",
            "0",
            "an integer from 1 to 100000 (found 0)",
        ),
        (
            "blocks_per_commit",
            "100001",
            "an integer from 1 to 100000 (found 100001)",
        ),
        ("logs_range", "0", "an integer from 1 to 1000000 (found 0)"),
        (
            "logs_range",
            "1000001",
            "an integer from 1 to 1000000 (found 1000001)",
        ),
        (
            "rps",
            "0",
            "an integer from 1 to 1000000 (found 0), or no key for no limit",
        ),
        (
            "rps",
            "1000001",
            "an integer from 1 to 1000000 (found 1000001), or no key for no limit",
        ),
        ("timeout_secs", "0", "an integer from 1 to 3600 (found 0)"),
        (
            "timeout_secs",
            "3601",
            "an integer from 1 to 3600 (found 3601)",
        ),
        ("deadline_secs", "0", "an integer from 1 to 86400 (found 0)"),
        ("max_retries", "101", "an integer from 0 to 100 (found 101)"),
        (
            "poll_interval_ms",
            "9",
            "an integer from 10 to 3600000 (found 9)",
        ),
        (
            "poll_interval_ms",
            "3600001",
            "an integer from 10 to 3600000 (found 3600001)",
        ),
    ];
    for (field, value, want) in cases {
        let (key, expected, shown) = invalid(&format!("[chains.eth]\n{field} = {value}\n"));
        assert_eq!(key, format!("chains.eth.{field}"));
        assert_eq!(&expected, want, "{field} = {value}");
        assert_eq!(
            shown,
            format!("config file test.toml: key `chains.eth.{field}`: expected {want}")
        );
    }
}

#[test]
fn range_bounds_are_accepted() {
    for (field, lo, hi) in [
        ("confirmations", 0u64, 100_000u64),
        ("concurrency", 1, 1_024),
        ("batch_size", 1, 1_000),
        ("blocks_per_commit", 1, 100_000),
        ("logs_range", 1, 1_000_000),
        ("rps", 1, 1_000_000),
        ("timeout_secs", 1, 3_600),
        ("deadline_secs", 1, 86_400),
        ("max_retries", 0, 100),
        ("poll_interval_ms", 10, 3_600_000),
    ] {
        for v in [lo, hi] {
            let text = format!("[chains.eth]\n{field} = {v}\n");
            assert!(Config::parse(&text, origin()).is_ok(), "{field} = {v}");
        }
    }
}

#[test]
fn bad_chain_names() {
    let long = "a".repeat(65);
    for name in ["\"a b\"", "\"\"", "\"é\"", "\"x.y\"", long.as_str()] {
        let (key, expected, _) = invalid(&format!("[chains.{name}]\n"));
        assert_eq!(key, format!("chains.{}", name.trim_matches('"')));
        assert_eq!(
            expected,
            "a chain name of 1 to 64 letters, digits, '-' or '_'"
        );
    }
    assert!(Config::parse(&format!("[chains.{}]\n", "a".repeat(64)), origin()).is_ok());
    assert!(Config::parse("[chains.Eth_main-2]\n", origin()).is_ok());
}

#[test]
fn chain_names_with_the_same_override_variable_are_rejected() {
    let (key, expected, _) = invalid("[chains.eth-main]\n[chains.eth_main]\n");
    assert_eq!(key, "chains.eth_main");
    assert_eq!(
        expected,
        "a chain name whose override variable differs from that of chain `eth-main` (both are \
         PAYTRACE_RPC_ETH_MAIN)"
    );
    let (key, _, _) = invalid("[chains.ETH]\n[chains.eth]\n");
    assert_eq!(key, "chains.eth");
}

#[test]
fn empty_data_dir_is_rejected() {
    let (key, expected, _) = invalid("data_dir = \"\"\n");
    assert_eq!(key, "data_dir");
    assert_eq!(expected, "a non-empty path, or no key for the default");
}

fn token(address: &str, symbol: &str, decimals: u8) -> String {
    format!(
        "[[chains.eth.tokens]]\naddress = \"{address}\"\nsymbol = \"{symbol}\"\ndecimals = \
         {decimals}\n"
    )
}

const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
const USDT: &str = "0xdAC17F958D2ee523a2206206994597C13D831ec7";

#[test]
fn bad_token_addresses() {
    for addr in [
        "",
        "0x",
        "A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB4",
        "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB488",
        "0xG0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
        "0XA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
        " 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
    ] {
        let text = format!("{}{}", token(USDT, "USDT", 6), token(addr, "X", 6));
        let (key, expected, _) = invalid(&text);
        assert_eq!(key, "chains.eth.tokens[1].address", "{addr}");
        assert_eq!(
            expected,
            format!("0x followed by 40 hex digits (found `{addr}`)")
        );
    }
    let (key, expected, _) = invalid(&token(&format!("0x{}", "0".repeat(40)), "Z", 0));
    assert_eq!(key, "chains.eth.tokens[0].address");
    assert_eq!(expected, "a token contract address, not the zero address");
}

#[test]
fn duplicate_token_addresses_are_rejected_case_insensitively() {
    let text = format!(
        "{}{}{}",
        token(USDC, "USDC", 6),
        token(USDT, "USDT", 6),
        token(&USDC.to_lowercase(), "USDC2", 6)
    );
    let (key, expected, _) = invalid(&text);
    assert_eq!(key, "chains.eth.tokens[2].address");
    assert_eq!(
        expected,
        "each token address listed once (tokens[0] has the same address, compared \
         case-insensitively)"
    );
    // The same token on two chains is fine.
    let two_chains = format!(
        "{}[[chains.other.tokens]]\naddress = \"{USDC}\"\nsymbol = \"USDC\"\ndecimals = 6\n",
        token(USDC, "USDC", 6)
    );
    assert!(Config::parse(&two_chains, origin()).is_ok());
}

#[test]
fn bad_token_symbols_and_decimals() {
    let long = "S".repeat(33);
    for symbol in ["", " USDC", "USDC ", "US\\tDC", long.as_str()] {
        let (key, expected, _) = invalid(&token(USDC, symbol, 6));
        assert_eq!(key, "chains.eth.tokens[0].symbol", "{symbol:?}");
        assert_eq!(
            expected,
            "a symbol of 1 to 32 characters, without control characters or surrounding spaces"
        );
    }
    assert!(Config::parse(&token(USDC, &"S".repeat(32), 6), origin()).is_ok());
    assert!(Config::parse(&token(USDC, "USD Coin", 6), origin()).is_ok());

    let (key, expected, _) = invalid(&token(USDC, "USDC", 78));
    assert_eq!(key, "chains.eth.tokens[0].decimals");
    assert_eq!(expected, "an integer from 0 to 77 (found 78)");
    assert!(Config::parse(&token(USDC, "USDC", 77), origin()).is_ok());
    assert!(Config::parse(&token(USDC, "USDC", 0), origin()).is_ok());
}

#[test]
fn bad_literal_rpc_urls() {
    for (url, shown) in [
        ("ftp://host/x", "ftp://host/***"),
        ("https://", "https://"),
        ("https://:8545", "https://:8545"),
        ("https://host:port", "https://host:port"),
        ("https://host:", "https://host:"),
        ("http//host", "***"),
        ("localhost:8545", "***"),
        ("https://u:s3cret@ho st/KEY", "https://***@ho st/***"),
        ("", "***"),
    ] {
        let text = format!("[chains.eth]\nrpc_url = \"{url}\"\n");
        let (key, expected, full) = invalid(&text);
        assert_eq!(key, "chains.eth.rpc_url", "{url}");
        assert_eq!(
            expected,
            format!(
                "an http://, https://, ws:// or wss:// URL with a host, without spaces \
                 (found `{shown}`)"
            )
        );
        assert!(!full.contains("s3cret") && !full.contains("KEY"), "{full}");
    }
}

#[test]
fn good_literal_rpc_urls() {
    for url in [
        "http://127.0.0.1:8545",
        "HTTPS://eth.example/v3/abc",
        "ws://localhost:8546",
        "wss://eth.example/ws?key=1",
        "http://[::1]:8545/",
        "https://user:pw@eth.example",
    ] {
        let text = format!("[chains.eth]\nrpc_url = \"{url}\"\n");
        let cfg = Config::parse(&text, origin()).unwrap();
        let got = cfg.chains["eth"].resolved_rpc_url("eth", no_env).unwrap();
        assert_eq!(got.as_deref(), Some(url));
    }
}

#[test]
fn malformed_placeholders_are_rejected_at_load() {
    let cases = [
        (
            "https://${HOST/x",
            "`${VAR}` placeholders closed by `}` (the `${` at character 9 is not closed)",
        ),
        (
            "https://${}/x",
            "`${VAR}` placeholders whose VAR is letters, digits and '_', not starting with a \
             digit (found `${}`)",
        ),
        (
            "https://${1X}/x",
            "`${VAR}` placeholders whose VAR is letters, digits and '_', not starting with a \
             digit (found `${1X}`)",
        ),
        (
            "https://${A-B}",
            "`${VAR}` placeholders whose VAR is letters, digits and '_', not starting with a \
             digit (found `${A-B}`)",
        ),
    ];
    for (url, want) in cases {
        let (key, expected, _) = invalid(&format!("[chains.eth]\nrpc_url = \"{url}\"\n"));
        assert_eq!(key, "chains.eth.rpc_url");
        assert_eq!(expected, want, "{url}");
    }
}

#[test]
fn first_invalid_chain_in_name_order_is_reported() {
    let (key, _, _) = invalid("[chains.b]\nconcurrency = 0\n[chains.a]\nbatch_size = 0\n");
    assert_eq!(key, "chains.a.batch_size");
}

// ---------------------------------------------------------------- environment

#[test]
fn rpc_env_var_names() {
    assert_eq!(rpc_env_var("eth"), "PAYTRACE_RPC_ETH");
    assert_eq!(rpc_env_var("eth-main"), "PAYTRACE_RPC_ETH_MAIN");
    assert_eq!(rpc_env_var("Base_Sepolia-2"), "PAYTRACE_RPC_BASE_SEPOLIA_2");
}

#[test]
fn apply_env_overrides_data_dir_and_rpc_urls() {
    let mut cfg = Config::parse(
        "data_dir = \"/from/file\"\n[chains.eth-main]\nrpc_url = \"http://file:8545\"\n\
         [chains.other]\nrpc_url = \"http://other:8545\"\n",
        origin(),
    )
    .unwrap();
    cfg.apply_env(env_of(&[
        ("PAYTRACE_DATA_DIR", "/from/env"),
        ("PAYTRACE_RPC_ETH_MAIN", "https://env.example"),
    ]));
    assert_eq!(cfg.data_dir_or_default(), Path::new("/from/env"));
    assert_eq!(
        cfg.chains["eth-main"].rpc_url.as_deref(),
        Some("https://env.example")
    );
    assert_eq!(
        cfg.chains["other"].rpc_url.as_deref(),
        Some("http://other:8545")
    );
}

#[test]
fn empty_env_values_count_as_unset() {
    let mut cfg = Config::parse(
        "data_dir = \"/from/file\"\n[chains.eth]\nrpc_url = \"http://file:8545\"\n",
        origin(),
    )
    .unwrap();
    let env = env_of(&[("PAYTRACE_DATA_DIR", ""), ("PAYTRACE_RPC_ETH", "")]);
    cfg.apply_env(&env);
    assert_eq!(cfg.data_dir_or_default(), Path::new("/from/file"));
    let eth = cfg.chain_or_default("eth");
    assert_eq!(eth.rpc_url.as_deref(), Some("http://file:8545"));
    assert_eq!(
        eth.resolved_rpc_url("eth", &env).unwrap().as_deref(),
        Some("http://file:8545")
    );
}

#[test]
fn precedence_defaults_then_file_then_env() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("paytrace.toml");
    std::fs::write(
        &path,
        "data_dir = \"/file\"\n[chains.eth]\nrpc_url = \"http://file:8545\"\nconcurrency = 3\n",
    )
    .unwrap();
    let env = env_of(&[
        ("PAYTRACE_DATA_DIR", "/env"),
        ("PAYTRACE_RPC_ETH", "http://env:8545"),
    ]);

    // Defaults only.
    let cfg = Config::load_with_env(None, no_env).unwrap();
    assert_eq!(cfg.data_dir_or_default(), Path::new(DEFAULT_DATA_DIR));
    let eth = cfg.chain_or_default("eth");
    assert_eq!(eth.concurrency, defaults::concurrency());
    assert_eq!(eth.resolved_rpc_url("eth", no_env).unwrap(), None);

    // Defaults < env, without a file.
    let cfg = Config::load_with_env(None, &env).unwrap();
    assert_eq!(cfg.data_dir_or_default(), Path::new("/env"));
    assert_eq!(
        cfg.chain_or_default("eth")
            .resolved_rpc_url("eth", &env)
            .unwrap()
            .as_deref(),
        Some("http://env:8545")
    );

    // Defaults < file.
    let cfg = Config::load_with_env(Some(&path), no_env).unwrap();
    assert_eq!(cfg.data_dir_or_default(), Path::new("/file"));
    let eth = cfg.chain_or_default("eth");
    assert_eq!(eth.concurrency, 3);
    assert_eq!(eth.batch_size, defaults::batch_size());
    assert_eq!(
        eth.resolved_rpc_url("eth", no_env).unwrap().as_deref(),
        Some("http://file:8545")
    );

    // File < env; keys the env does not override keep their file or default value.
    let cfg = Config::load_with_env(Some(&path), &env).unwrap();
    assert_eq!(cfg.data_dir_or_default(), Path::new("/env"));
    let eth = cfg.chain_or_default("eth");
    assert_eq!(eth.rpc_url.as_deref(), Some("http://env:8545"));
    assert_eq!(eth.concurrency, 3);
    assert_eq!(eth.batch_size, defaults::batch_size());
    // Resolving against the original file section also lets the env win.
    let file_only = Config::load(&path).unwrap();
    assert_eq!(
        file_only.chains["eth"]
            .resolved_rpc_url("eth", &env)
            .unwrap()
            .as_deref(),
        Some("http://env:8545")
    );
}

#[test]
fn apply_process_env_reads_the_process_environment() {
    // Setting variables is `unsafe` in edition 2024 (other test threads may read the
    // environment), so this only checks that an unset variable reads as `None` and a set one
    // (PATH) as `Some`.
    assert_eq!(process_env("PAYTRACE_RPC_CFG_UNIT_TEST_PROCESS_ENV"), None);
    let mut cfg = Config::parse("[chains.cfg-unit-test-process-env]\n", origin()).unwrap();
    cfg.apply_process_env();
    assert_eq!(cfg.chains["cfg-unit-test-process-env"].rpc_url, None);
    // PATH is set on every test machine and is not empty.
    assert!(process_env("PATH").is_some());
}

#[test]
fn chain_or_default_gives_the_section_or_defaults() {
    let cfg = Config::parse("[chains.eth]\nconfirmations = 64\n", origin()).unwrap();
    assert_eq!(cfg.chain_or_default("eth").confirmations, 64);
    assert_eq!(cfg.chain_or_default("foo"), ChainConfig::default());
    assert!(cfg.chain("foo").is_none());
}

#[test]
fn absent_chain_gets_its_url_from_the_environment() {
    let cfg = Config::default();
    let foo = cfg.chain_or_default("foo-bar");
    let env = env_of(&[("PAYTRACE_RPC_FOO_BAR", "http://127.0.0.1:8545")]);
    assert_eq!(
        foo.resolved_rpc_url("foo-bar", env).unwrap().as_deref(),
        Some("http://127.0.0.1:8545")
    );
    assert_eq!(foo.resolved_rpc_url("foo-bar", no_env).unwrap(), None);
}

#[test]
fn placeholders_expand_at_resolution() {
    let c = ChainConfig {
        rpc_url: Some("https://${HOST}:${PORT}/v3/${KEY}$x".to_owned()),
        ..ChainConfig::default()
    };
    let env = env_of(&[
        ("HOST", "eth.example"),
        ("PORT", "443"),
        ("KEY", "abc${NOT_EXPANDED}"),
    ]);
    assert_eq!(
        c.resolved_rpc_url("eth", env).unwrap().as_deref(),
        Some("https://eth.example:443/v3/abc${NOT_EXPANDED}$x")
    );
}

#[test]
fn placeholders_in_the_env_override_expand_too() {
    let c = ChainConfig::default();
    let env = env_of(&[
        ("PAYTRACE_RPC_ETH", "https://eth.example/v3/${INFURA_KEY}"),
        ("INFURA_KEY", "k"),
    ]);
    assert_eq!(
        c.resolved_rpc_url("eth", env).unwrap().as_deref(),
        Some("https://eth.example/v3/k")
    );
    let env = env_of(&[("PAYTRACE_RPC_ETH", "https://eth.example/v3/${INFURA_KEY}")]);
    let err = c.resolved_rpc_url("eth", env).unwrap_err();
    assert!(
        matches!(&err, ConfigError::MissingVar { key, source_var: Some(v), var }
            if key == "chains.eth.rpc_url" && v == "PAYTRACE_RPC_ETH" && var == "INFURA_KEY"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "key `chains.eth.rpc_url` (from environment variable PAYTRACE_RPC_ETH): environment \
         variable INFURA_KEY is not set (referenced as `${INFURA_KEY}`)"
    );
}

#[test]
fn missing_or_empty_placeholder_variable_is_an_error() {
    let c = ChainConfig {
        rpc_url: Some("https://${HOST}/${KEY}".to_owned()),
        ..ChainConfig::default()
    };
    for env in [
        env_of(&[("HOST", "h")]),
        env_of(&[("HOST", "h"), ("KEY", "")]),
    ] {
        let err = c.resolved_rpc_url("eth", env).unwrap_err();
        assert!(
            matches!(&err, ConfigError::MissingVar { key, source_var: None, var }
                if key == "chains.eth.rpc_url" && var == "KEY"),
            "{err:?}"
        );
    }
}

#[test]
fn malformed_placeholder_in_env_override_is_an_error() {
    let env = env_of(&[("PAYTRACE_RPC_ETH", "https://${HOST")]);
    let err = ChainConfig::default()
        .resolved_rpc_url("eth", env)
        .unwrap_err();
    assert!(matches!(&err, ConfigError::Placeholder { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "key `chains.eth.rpc_url` (from environment variable PAYTRACE_RPC_ETH): expected \
         `${VAR}` placeholders closed by `}` (the `${` at character 9 is not closed)"
    );
}

#[test]
fn invalid_url_after_expansion_is_an_error_without_secrets() {
    let cfg = Config::parse("[chains.eth]\nrpc_url = \"${ETH_RPC_URL}\"\n", origin()).unwrap();
    let env = env_of(&[("ETH_RPC_URL", "ftp://user:s3cret@host/KEY?x=KEY")]);
    let err = cfg.chains["eth"].resolved_rpc_url("eth", env).unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        shown,
        "key `chains.eth.rpc_url` after expanding ${ETH_RPC_URL}: expected an http://, \
         https://, ws:// or wss:// URL with a host, without spaces (found \
         `ftp://***@host/***?***`)"
    );
    assert!(matches!(err, ConfigError::InvalidUrl { .. }));

    let env = env_of(&[("PAYTRACE_RPC_ETH", "eth.example:8545")]);
    let err = cfg.chains["eth"].resolved_rpc_url("eth", env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "key `chains.eth.rpc_url` (from environment variable PAYTRACE_RPC_ETH): expected an \
         http://, https://, ws:// or wss:// URL with a host, without spaces (found `***`)"
    );
}

// ---------------------------------------------------------------- redaction

#[test]
fn redact_url_hides_credentials_paths_and_queries() {
    for (url, want) in [
        ("https://eth.example", "https://eth.example"),
        ("https://eth.example/", "https://eth.example/"),
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        (
            "https://mainnet.infura.io/v3/KEY",
            "https://mainnet.infura.io/***",
        ),
        ("https://u:p@h:1/a?b#c", "https://***@h:1/***?***#***"),
        ("wss://h?apikey=KEY", "wss://h?***"),
        ("${ETH_RPC_URL}", "${ETH_RPC_URL}"),
        ("https://${HOST}/${KEY}", "https://${HOST}/***"),
        ("KEY@host", "***"),
        ("${A}KEY", "***"),
    ] {
        assert_eq!(redact_url(url), want, "{url}");
    }
}

#[test]
fn debug_output_redacts_the_rpc_url() {
    let mut cfg = Config::default();
    cfg.chains.insert(
        "eth".to_owned(),
        ChainConfig {
            rpc_url: Some("https://u:s3cret@eth.example/v3/KEY".to_owned()),
            ..ChainConfig::default()
        },
    );
    let shown = format!("{cfg:?}");
    assert!(shown.contains("https://***@eth.example/***"), "{shown}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("KEY"),
        "{shown}"
    );
    assert!(shown.contains("confirmations: 12"), "{shown}");
}

#[test]
fn bitcoin_chain_section() {
    let text = "[chains.btc]\nkind = \"bitcoin\"\nblocks_dir = \"/data/blocks\"\nrpc_cookie = \"/data/.cookie\"\nesplora_url = \"https://blockstream.info/api\"\n";
    let cfg = Config::parse(text, origin()).unwrap();
    let c = cfg.chain("btc").unwrap();
    assert_eq!(c.kind, ChainKind::Bitcoin);
    assert_eq!(c.blocks_dir.as_deref(), Some(Path::new("/data/blocks")));
    assert_eq!(c.rpc_cookie.as_deref(), Some(Path::new("/data/.cookie")));
    assert_eq!(
        c.esplora_url.as_deref(),
        Some("https://blockstream.info/api")
    );
    assert!(Config::parse("[chains.btc]\nkind = \"dogecoin\"\n", origin()).is_err());
}

#[test]
fn labels_section() {
    let c = Config::parse(
        "[labels]\nofac_url = \"http://127.0.0.1:8080/ofac\"\n",
        Path::new("c.toml"),
    )
    .unwrap();
    assert_eq!(
        c.labels.ofac_url.as_deref(),
        Some("http://127.0.0.1:8080/ofac")
    );
    let e = Config::parse("[labels]\nofac_url = \"ftp://x\"\n", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("labels.ofac_url"), "{e}");
    let e = Config::parse("[labels]\nofac = 1\n", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("ofac"), "{e}");
    assert_eq!(c.labels.max_shrink_pct, None);
    let c = Config::parse("[labels]\nmax_shrink_pct = 25\n", Path::new("c.toml")).unwrap();
    assert_eq!(c.labels.max_shrink_pct, Some(25));
    let e = Config::parse("[labels]\nmax_shrink_pct = 101\n", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("labels.max_shrink_pct") && e.contains("0 to 100"),
        "{e}"
    );
    let e = Config::parse("[labels]\nmax_shrink_pct = -1\n", Path::new("c.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("max_shrink_pct"), "{e}");
}
