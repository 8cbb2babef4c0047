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

#[test]
fn bitcoin_providers_pay_from_bitcoin_addresses_in_btc() {
    let cfg = "[[providers]]\nname = \"BTC Payroll\"\nchain = \"bitcoin\"\n\
               addresses = [\"bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h\", \"12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h\"]\n\
               assets = [\"BTC\"]\n";
    let c = Config::parse(cfg, Path::new("t.toml")).unwrap();
    assert_eq!(c.provider("BTC Payroll").unwrap().addresses.len(), 2);
    // An EVM address on the Bitcoin chain, and a Bitcoin address on an EVM chain, are refused.
    let evm = cfg.replace(
        "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h",
        "0x1111111111111111111111111111111111111111",
    );
    assert_eq!(invalid_key(&evm), "providers[0].addresses[1]");
    let on_eth = GOOD.replace(
        "0x1111111111111111111111111111111111111111",
        "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h",
    );
    assert_eq!(invalid_key(&on_eth), "providers[0].addresses[0]");
    // A chain section of kind bitcoin under another name.
    let named = format!(
        "[chains.btc-main]\nkind = \"bitcoin\"\n\n{}",
        cfg.replace("chain = \"bitcoin\"", "chain = \"btc-main\"")
    );
    assert!(Config::parse(&named, Path::new("t.toml")).is_ok());
}
