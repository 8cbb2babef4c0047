//! Token units: metadata read from the chain when `index evm` first sees a token (against a
//! real anvil node), the demo store's declared metadata, and every text output, the CSV and
//! the HTML showing amounts in token units with symbols while JSON keeps raw units.
//!
//! The anvil test needs anvil: run `scripts/install-anvil` once (it fails, not skips, without).

#![allow(clippy::unwrap_used)] // tests

mod common;

use alloy_primitives::U256;
use common::*;
use paytrace_indexer::{Address, Store, store::MetaSource};
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Output,
    sync::OnceLock,
};

/// One offline demo shared by the tests of this file (its report, ground truth and store).
fn demo_dir() -> &'static Path {
    static DEMO: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, out) = DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        run_ok(
            paytrace(&dir.path().join("unused"))
                .args(["--json", "demo", "--out"])
                .arg(&out),
        );
        (dir, out)
    });
    out
}

fn truth() -> Value {
    serde_json::from_slice(&std::fs::read(demo_dir().join("ground-truth.json")).unwrap()).unwrap()
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn on_demo(args: &[&str]) -> String {
    text(&run_ok(paytrace(&demo_dir().join("store")).args(args)))
}

/// Before: `trace`, `path`, `screen` and `address` printed raw integers (`116311392000 0x5FbD…`,
/// `2951546925 raw units of 0x5FbD…`, `5178150000 USDC`) although the demo deployed the token
/// with its symbol and decimals.
#[test]
fn demo_text_outputs_show_token_units_with_symbols() {
    let t = truth();
    let operator = t["truth"]["operator"].as_str().unwrap();
    let usdc = t["tokens"][0]["address"].as_str().unwrap();
    let kai = t["payees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Kai Morgan")
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();

    let trace = on_demo(&["trace", operator, "--hops", "3"]);
    assert!(trace.contains("seed value: 116311.392 USDC"), "{trace}");
    assert!(
        trace.contains("sanctioned           11631.1392 USDC"),
        "{trace}"
    );
    assert!(!trace.contains("raw units"), "{trace}");

    // --token overrides the store's metadata.
    let trace = on_demo(&[
        "trace",
        operator,
        "--hops",
        "1",
        "--token",
        &format!("{usdc}=CENTS:4"),
    ]);
    assert!(trace.contains("seed value: 11631139.2 CENTS"), "{trace}");
    let bad = paytrace(&demo_dir().join("store"))
        .args(["trace", operator, "--token", "0x12=X:1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--token \"0x12=X:1\""));

    let address = on_demo(&["address", &kai]);
    assert!(
        address.contains("demo USDC: in 31068.915 USDC"),
        "{address}"
    );
    assert!(address.contains("token 5178.15 USDC from"), "{address}");

    let screen = on_demo(&["screen", operator, "--as-of", "2025-06-25"]);
    assert!(screen.contains("11631.1392 USDC"), "{screen}");
    assert!(!screen.contains("raw units"), "{screen}");

    let sanctioned = t["labels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["category"] == "sanctioned")
        .unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = on_demo(&["path", operator, &sanctioned]);
    assert!(path.contains(" USDC"), "{path}");
    assert!(!path.contains("raw units"), "{path}");

    // JSON keeps raw units and adds the symbol and decimals.
    let j: Value = serde_json::from_str(&on_demo(&["--json", "address", &kai])).unwrap();
    let first = &j["incoming"][0];
    assert_eq!(first["amount"], "5178150000");
    assert_eq!(first["symbol"], "USDC");
    assert_eq!(first["decimals"], 6);
}

/// Before: a hand-written CSV with raw integers, the contract address as the asset and Unix
/// seconds (`4200000000,0x5FbD…,1735722000`).
#[test]
fn payout_csv_is_spreadsheet_ready() {
    let bytes = std::fs::read(demo_dir().join("payout-report.csv")).unwrap();
    let body = bytes
        .strip_prefix("\u{feff}".as_bytes())
        .expect("UTF-8 byte-order mark");
    let mut r = csv::Reader::from_reader(body);
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    for col in [
        "payee",
        "payout_time",
        "asset",
        "payout_amount",
        "payout_amount_raw",
        "destination",
        "amount",
        "amount_raw",
        "decimals",
    ] {
        assert!(header.iter().any(|h| h == col), "no {col} in {header:?}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    let report: Value =
        serde_json::from_slice(&std::fs::read(demo_dir().join("payout-report.json")).unwrap())
            .unwrap();
    // One row per payout and destination (a payout without destinations: one row).
    let expected: usize = report["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["destinations"].as_array().unwrap().len().max(1))
        .sum();
    assert_eq!(rows.len(), expected);
    for row in &rows {
        assert_eq!(&row[col("asset")], "USDC");
        assert_eq!(&row[col("decimals")], "6");
        let time = &row[col("payout_time")];
        assert!(
            time.len() == 20 && time.as_bytes()[10] == b'T' && time.ends_with('Z'),
            "not ISO 8601 UTC: {time}"
        );
        // Token units and raw units agree.
        let units = &row[col("payout_amount")];
        let raw = &row[col("payout_amount_raw")];
        let (int, frac) = units.split_once('.').unwrap_or((units, ""));
        assert!(frac.len() <= 6);
        let joined = format!("{int}{frac:0<6}");
        assert_eq!(joined.trim_start_matches('0'), raw.trim_start_matches('0'));
    }
    let alice = rows
        .iter()
        .find(|r| &r[col("payee")] == "Alice Martin")
        .unwrap();
    assert_eq!(&alice[col("payout_amount")], "4200");
    assert_eq!(&alice[col("payout_amount_raw")], "4200000000");
}

/// Before: nothing read a token's symbol or decimals; the store had no token metadata.
/// `TestToken` answers `symbol()`/`decimals()`; `OddLogs` (which emits one well-formed
/// `Transfer`) has neither function, so its calls revert: shown by address and raw units.
#[tokio::test]
async fn index_reads_token_metadata_from_the_chain() {
    let anvil = paytrace_indexer::testutil::Anvil::builder()
        .no_mining()
        .spawn()
        .await
        .expect("start anvil (run scripts/install-anvil)");
    let mut g = paytrace_indexer::testutil::ChainGenerator::new(anvil.rpc())
        .await
        .unwrap();
    let d = g.deploy().await.unwrap();
    let acc = g.accounts().to_vec();
    let one_and_half = U256::from(15u64) * U256::from(10u64).pow(U256::from(17u64));
    let spec = g.token_transfer(acc[0], acc[5], one_and_half).unwrap();
    g.send(spec).await.unwrap();
    let spec = g
        .odd_logs(acc[2], acc[3], acc[5], U256::from(777u64))
        .unwrap();
    g.send(spec).await.unwrap();
    g.mine().await.unwrap();
    let head = g.head().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    run_json(&mut index_cmd(dir.path(), anvil.url(), head, &[]));
    {
        let store = Store::open_read(dir.path()).unwrap();
        let chain = store.chain_by_name(CHAIN).unwrap().unwrap().id;
        let token = store
            .token_meta(chain, &Address::evm(d.token))
            .unwrap()
            .expect("token metadata");
        assert_eq!(token.symbol.as_deref(), Some("PTT"));
        assert_eq!(token.decimals, Some(18));
        assert_eq!(token.source, MetaSource::Chain);
        let odd = store
            .token_meta(chain, &Address::evm(d.odd_logs))
            .unwrap()
            .expect("a token without metadata is recorded as such");
        assert_eq!((odd.symbol, odd.decimals), (None, None));
    }

    let out = text(&run_ok(
        paytrace(dir.path())
            .arg("address")
            .arg(Address::evm(acc[5]).to_string()),
    ));
    assert!(out.contains("token 1.5 PTT from"), "{out}");
    let odd = Address::evm(d.odd_logs);
    assert!(
        out.contains(&format!("token 777 raw units of {odd} from")),
        "{out}"
    );
}

/// Copies a store that other tests of this file are reading: the reader lock files those
/// processes create and remove may vanish while the copy runs (and are not needed).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        match e.file_type() {
            Ok(t) if t.is_dir() => copy_dir(&e.path(), &target),
            Ok(_) => match std::fs::copy(e.path(), &target) {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => panic!("copying {}: {err}", e.path().display()),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => panic!("{}: {err}", e.path().display()),
        }
    }
}

/// Before: `alerts evaluate` wrote `… within 2 hops, 2951546925 raw units of 0x5FbD… (9.50%)`.
#[test]
fn demo_alerts_show_token_units() {
    let dir = tempfile::tempdir().unwrap();
    // A copy: evaluating writes the alerts into the store, which the other tests read.
    let store = dir.path().join("store");
    copy_dir(&demo_dir().join("store"), &store);
    let cfg = dir.path().join("paytrace.toml");
    let provider = truth()["provider"].as_str().unwrap().to_owned();
    std::fs::write(&cfg, format!("[alerts]\npayers = [\"{provider}\"]\n")).unwrap();
    let out = text(&run_ok(
        paytrace(&store)
            .arg("--config")
            .arg(&cfg)
            .args(["alerts", "evaluate"]),
    ));
    assert!(out.contains(" USDC ("), "{out}");
    assert!(!out.contains("raw units"), "{out}");
}
