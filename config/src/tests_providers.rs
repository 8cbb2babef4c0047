//! Unit tests of `[[providers]]`.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use super::*;

fn invalid_key(text: &str) -> String {
    match Config::parse(text, Path::new("t.toml")).unwrap_err() {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

const GOOD: &str = r#"
[chains.eth]
tokens = [{ address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", symbol = "USDC", decimals = 6 }]

[[providers]]
name = "Acme Payroll"
chain = "eth"
addresses = ["0x1111111111111111111111111111111111111111"]
assets = ["USDC", "native"]
"#;

#[test]
fn providers_parse_and_are_found_by_name() {
    let c = Config::parse(GOOD, Path::new("t.toml")).unwrap();
    let p = c.provider("Acme Payroll").unwrap();
    assert_eq!(p.chain, "eth");
    assert_eq!(p.assets, ["USDC", "native"]);
    assert!(c.provider("other").is_none());
}

#[test]
fn bad_providers_name_the_key() {
    let dup = format!(
        "{GOOD}\n[[providers]]\nname = \"Acme Payroll\"\nchain = \"eth\"\naddresses = [\"0x1111111111111111111111111111111111111111\"]\n"
    );
    assert_eq!(invalid_key(&dup), "providers[1].name");
    let bad_addr = GOOD.replace("0x1111111111111111111111111111111111111111", "0x12");
    assert_eq!(invalid_key(&bad_addr), "providers[0].addresses[0]");
    let unknown_asset = GOOD.replace("\"USDC\", \"native\"", "\"DAI\"");
    assert_eq!(invalid_key(&unknown_asset), "providers[0].assets[0]");
    let none = GOOD.replace(
        "addresses = [\"0x1111111111111111111111111111111111111111\"]",
        "addresses = []",
    );
    assert_eq!(invalid_key(&none), "providers[0].addresses");
    let unknown_key = GOOD.replace("assets =", "wallets =");
    assert!(Config::parse(&unknown_key, Path::new("t.toml")).is_err());
}
