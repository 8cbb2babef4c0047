//! End-to-end on a Bitcoin chain built from real blocks' rules (coinbases with BIP34 heights,
//! merkle roots, blk*.dat framing) that pays real OFAC-listed XBT addresses, indexed with
//! `paytrace index btc --blk-file`:
//!
//! * the real mainnet blocks 1–255 screened through their transactions (a test listing);
//! * OFAC sanctions on Bitcoin: the SDN CSV (XBT remarks, joined with the comments file) and
//!   the XBT list import as `bitcoin` labels; `screen` finds direct and indirect exposure
//!   through transaction nodes, as of a date;
//! * a Bitcoin payroll: `report payouts --batch` with `chain = bitcoin` rows in BTC, exact
//!   destinations in satoshis, BTC units in HTML;
//! * a batch mixing an EVM token payroll (imported with `paytrace import transfers`) and the
//!   Bitcoin one, with exact per-asset totals;
//! * bad Bitcoin rows (testnet, bad checksum, EVM address, wrong witness version) reported with
//!   their line and field.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use bitcoin::{
    Amount as BtcAmount, Block, BlockHash, CompactTarget, Network, OutPoint, PubkeyHash, ScriptBuf,
    Sequence, Transaction, TxIn, TxMerkleNode, TxOut, WPubkeyHash, Witness,
    absolute::LockTime,
    address::NetworkUnchecked,
    block::{Header, Version},
    hashes::Hash as _,
    transaction,
};
use common::{paytrace, run_json, run_ok};
use serde_json::Value;
use std::path::Path;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/labels/ofac");
const COIN: u64 = 100_000_000;
const FEE: u64 = 10_000;
/// SECONDEYE SOLUTION (ent_num 30518): its address is cut across sdn-2021.csv and
/// sdn_comments-2021.csv.
const SDN: &str = "1GqChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr";
/// 2021-03-01T00:00:00Z; block h is mined h days later at noon.
const T0: u32 = 1_614_556_800;

fn script_of(addr: &str) -> ScriptBuf {
    addr.parse::<bitcoin::Address<NetworkUnchecked>>()
        .unwrap()
        .require_network(Network::Bitcoin)
        .unwrap()
        .script_pubkey()
}

/// A fresh mainnet address (P2WPKH or P2PKH) of `name`.
fn fresh(name: &str, segwit: bool) -> String {
    let mut h = [0u8; 20];
    for (i, b) in name.bytes().enumerate() {
        h[i % 20] ^= b.rotate_left(u32::try_from(i % 7).unwrap());
    }
    h[19] ^= 0x5a;
    let s = if segwit {
        ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h))
    } else {
        ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(h))
    };
    bitcoin::Address::from_script(&s, Network::Bitcoin)
        .unwrap()
        .to_string()
}

/// The indexer's id of a Bitcoin address (what `script:` names).
fn id(addr: &str) -> String {
    paytrace_indexer::labels::LabelAddress::parse(addr, Some("XBT"))
        .unwrap()
        .indexed()
        .unwrap()
        .to_string()
}

fn coinbase(height: u64, to: &str, value: u64) -> Transaction {
    paytrace_indexer::btc::generate::coinbase(height, script_of(to), value)
}

fn spend(prev: OutPoint, outputs: &[(&str, u64)]) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs
            .iter()
            .map(|(a, v)| TxOut {
                value: BtcAmount::from_sat(*v),
                script_pubkey: script_of(a),
            })
            .collect(),
    }
}

struct Chain {
    provider: String,
    ben: String,
    cat: String,
    dan: String,
    eve: String,
    /// An address of the 0xB10C XBT list (not in the 2021 SDN file).
    listed: String,
    miner: String,
}

impl Chain {
    fn new() -> Self {
        let list = std::fs::read_to_string(format!("{DATA}/sanctioned_addresses_XBT.txt")).unwrap();
        Self {
            provider: fresh("provider", true),
            ben: fresh("ben", true),
            cat: fresh("cat", false),
            dan: fresh("dan", true),
            eve: fresh("eve", false),
            listed: list
                .lines()
                .find(|l| l.starts_with("bc1q"))
                .unwrap()
                .to_owned(),
            miner: fresh("miner", false),
        }
    }

    /// h0: 50 BTC mined by the provider; h1: 50 BTC mined by the listed address; h2: the
    /// provider pays Ben 0.25 and Cat 0.5 BTC; h3: Ben pays the SDN 0.2 BTC; h4: the listed
    /// address pays Dan 1 BTC; h5: Dan pays Eve 0.5 BTC. Every spend pays a 0.0001 BTC fee.
    fn blocks(&self) -> Vec<Block> {
        let c0 = coinbase(0, &self.provider, 50 * COIN);
        let c1 = coinbase(1, &self.listed, 50 * COIN);
        let pay = spend(
            OutPoint::new(c0.compute_txid(), 0),
            &[
                (&self.ben, COIN / 4),
                (&self.cat, COIN / 2),
                (&self.provider, 50 * COIN - COIN * 3 / 4 - FEE),
            ],
        );
        let ben = spend(
            OutPoint::new(pay.compute_txid(), 0),
            &[(SDN, COIN / 5), (&self.ben, COIN / 4 - COIN / 5 - FEE)],
        );
        let listed = spend(
            OutPoint::new(c1.compute_txid(), 0),
            &[(&self.dan, COIN), (&self.listed, 49 * COIN - FEE)],
        );
        let dan = spend(
            OutPoint::new(listed.compute_txid(), 0),
            &[(&self.eve, COIN / 2), (&self.dan, COIN / 2 - FEE)],
        );
        let mut out = Vec::new();
        let mut prev = BlockHash::all_zeros();
        let txs = [
            vec![c0],
            vec![c1],
            vec![coinbase(2, &self.miner, 50 * COIN + FEE), pay],
            vec![coinbase(3, &self.miner, 50 * COIN + FEE), ben],
            vec![coinbase(4, &self.miner, 50 * COIN + FEE), listed],
            vec![coinbase(5, &self.miner, 50 * COIN + FEE), dan],
        ];
        for (h, txdata) in (0u32..).zip(txs) {
            let mut b = Block {
                header: Header {
                    version: Version::TWO,
                    prev_blockhash: prev,
                    merkle_root: TxMerkleNode::all_zeros(),
                    time: T0 + h * 86_400 + 43_200,
                    bits: CompactTarget::from_consensus(0x207f_ffff),
                    nonce: 0,
                },
                txdata,
            };
            b.header.merkle_root = b.compute_merkle_root().unwrap();
            prev = b.block_hash();
            out.push(b);
        }
        out
    }
}

/// A store with the chain indexed and the 2021 SDN file and the XBT list imported.
fn setup(dir: &Path) -> Chain {
    let chain = Chain::new();
    let blk = dir.join("blk");
    let files =
        paytrace_indexer::btc::generate::write_blk_files(&blk, &chain.blocks(), None, u64::MAX)
            .unwrap();
    let data = dir.join("data");
    let r = run_json(
        paytrace(&data)
            .args(["--json", "index", "btc", "--blk-file"])
            .arg(&files[0]),
    );
    assert_eq!(r["to"].as_u64(), Some(5), "{r:#}");
    let r = run_json(paytrace(&data).args([
        "--json",
        "labels",
        "import",
        "--format",
        "ofac-csv",
        "--version",
        "2021-07-07",
        &format!("{DATA}/sdn-2021.csv"),
        &format!("{DATA}/sdn_comments-2021.csv"),
    ]));
    assert_eq!(r["rejected"], 1, "{r:#}"); // the malformed ETH address of LIFSHITS
    // The XBT list: 434 Bitcoin addresses; the one TRON-form string OFAC lists as XBT is
    // rejected with its line, not imported.
    let r = run_json(paytrace(&data).args([
        "--json",
        "labels",
        "import",
        "--format",
        "list",
        "--chain",
        "XBT",
        "--category",
        "sanctioned",
        "--entity",
        "OFAC SDN (XBT list)",
        "--version",
        "2024-09-27",
        &format!("{DATA}/sanctioned_addresses_XBT.txt"),
    ]));
    assert_eq!(r["rejected"], 1, "{r:#}");
    for a in [SDN, chain.listed.as_str()] {
        let s = run_json(paytrace(&data).args(["--json", "labels", "show", a]));
        assert_eq!(s["chain"], "bitcoin", "{s:#}");
        assert_eq!(s["labels"][0]["category"], "sanctioned", "{s:#}");
    }
    chain
}

fn screen(data: &Path, addr: &str, day: &str) -> Value {
    run_json(paytrace(data).args(["--json", "screen", &id(addr), "--as-of", day]))
}

/// The sanctioned exposures of a screening: (kind, direction, amount, hops, counterparty).
fn sanctioned(r: &Value) -> Vec<(String, String, String, u64, String)> {
    let mut v: Vec<_> = ["direct", "indirect"]
        .iter()
        .flat_map(|k| r[*k].as_array().unwrap().iter())
        .filter(|e| e["category"] == "sanctioned")
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["direction"].as_str().unwrap().to_owned(),
                e["amount"].as_str().unwrap().to_owned(),
                e["hops"].as_u64().unwrap(),
                e["counterparties"][0].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn xbt_sanctions_screen_bitcoin_addresses_through_transactions_as_of_a_date() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let data = dir.path().join("data");
    let t = |k: &str, d: &str, amount: u64, hops: u64, cp: &str| {
        (
            k.to_owned(),
            d.to_owned(),
            amount.to_string(),
            hops,
            cp.to_owned(),
        )
    };
    // Ben sent 0.2 BTC to the SDN in one transaction: direct.
    let ben = screen(&data, &c.ben, "2021-03-31");
    assert_eq!(
        sanctioned(&ben),
        vec![t("direct", "sent", COIN / 5, 0, SDN)],
        "{ben:#}"
    );
    assert_eq!(ben["level"], "severe");
    // As of the day before Ben's payment, nothing.
    let before = screen(&data, &c.ben, "2021-03-03");
    assert!(sanctioned(&before).is_empty(), "{before:#}");
    // The provider paid Ben, who paid the SDN: indirect, one address further.
    let p = screen(&data, &c.provider, "2021-03-31");
    assert_eq!(
        sanctioned(&p),
        vec![t("indirect", "sent", COIN / 5, 1, SDN)],
        "{p:#}"
    );
    // Dan received 1 BTC from the listed address: direct; Eve, paid by Dan, indirect.
    let dan = screen(&data, &c.dan, "2021-03-31");
    assert_eq!(
        sanctioned(&dan),
        vec![t("direct", "received", COIN, 0, &c.listed)],
        "{dan:#}"
    );
    let eve = screen(&data, &c.eve, "2021-03-31");
    assert_eq!(
        sanctioned(&eve),
        vec![t("indirect", "received", COIN / 2, 1, &c.listed)],
        "{eve:#}"
    );
    // Cat never touched a sanctioned address.
    assert!(sanctioned(&screen(&data, &c.cat, "2021-03-31")).is_empty());
}

fn report(data: &Path, batch: &Path, extra: &[&str]) -> std::process::Output {
    run_ok(
        paytrace(data)
            .args(["report", "payouts", "--batch"])
            .arg(batch)
            .args(extra),
    )
}

#[test]
fn bitcoin_only_batch_report_in_btc() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let data = dir.path().join("data");
    let batch = dir.path().join("btc.csv");
    std::fs::write(
        &batch,
        format!(
            "payee,address,chain,asset,amount,date\n\
             Ben,{},bitcoin,BTC,0.25,2021-03-03\n\
             Cat,{},bitcoin,BTC,0.50000000,\n",
            c.ben, c.cat
        ),
    )
    .unwrap();
    let out = report(
        &data,
        &batch,
        &[
            "--json",
            "--provider-address",
            &c.provider,
            "--labels-as-of",
            "2021-03-31",
        ],
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        r["issues"].as_array().unwrap().is_empty(),
        "{:#}",
        r["issues"]
    );
    assert_eq!(r["summary"]["payouts"], 2);
    assert_eq!(
        r["summary"]["paid"],
        serde_json::json!({"bitcoin:native": "75000000"})
    );
    assert_eq!(r["providers"][0], c.provider.as_str());
    let ben = &r["payouts"][0];
    assert_eq!(
        (&ben["payee"], &ben["amount"]),
        (&"Ben".into(), &"25000000".into())
    );
    // Exactly where Ben's 0.25 BTC went: 0.2 to the SDN, 0.0001 fee, 0.0499 still his.
    let totals = &ben["totals"];
    assert_eq!(
        totals,
        &serde_json::json!({"sanctioned": "20000000", "fee": "10000", "still_held": "4990000"})
    );
    let sdn = ben["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "sanctioned")
        .unwrap();
    assert_eq!(sdn["address"], SDN);
    assert_eq!(sdn["sanctioned_entity"], "SECONDEYE SOLUTION");
    assert_eq!(r["summary"]["flagged_payees"], serde_json::json!(["Ben"]));
    // The same payroll found on chain from a config provider paying in BTC: the outputs of
    // its transaction except its change.
    let cfg = dir.path().join("paytrace.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[providers]]\nname = \"BTC Payroll\"\nchain = \"bitcoin\"\naddresses = [\"{}\"]\nassets = [\"BTC\"]\n",
            c.provider
        ),
    )
    .unwrap();
    let found = run_json(paytrace(&data).arg("--config").arg(&cfg).args([
        "--json",
        "report",
        "payouts",
        "--provider",
        "BTC Payroll",
    ]));
    let got: Vec<(&str, &str)> = found["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap(),
                p["amount"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [(c.ben.as_str(), "25000000"), (c.cat.as_str(), "50000000")]
    );
    // HTML in BTC units.
    let out = report(
        &data,
        &batch,
        &["--format", "html", "--provider-address", &c.provider],
    );
    let html = String::from_utf8(out.stdout).unwrap();
    let btc = |sat: u64| {
        format!(
            "{} BTC",
            paytrace_indexer::Amount::from_u64(sat).to_fixed_decimal_string(8)
        )
    };
    for sat in [75_000_000, 25_000_000, 50_000_000, 20_000_000] {
        assert!(html.contains(&btc(sat)), "{} missing", btc(sat));
    }
}

#[test]
fn mixed_evm_and_bitcoin_batch_report_with_exact_amounts_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let c = setup(dir.path());
    let data = dir.path().join("data");
    // The EVM leg: an ERC-20 payroll imported from an ethereum-etl token_transfers CSV.
    let usdc = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48";
    // Asset keys are EIP-55.
    let usdc_key = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let provider = "0x1111111111111111111111111111111111111111";
    let ann = "0x2222222222222222222222222222222222222222";
    let wallet = "0x3333333333333333333333333333333333333333";
    let etl = dir.path().join("token_transfers.csv");
    std::fs::write(
        &etl,
        format!(
            "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n\
             {usdc},{provider},{ann},2500000000,0x{},0,100,1614772800\n\
             {usdc},{ann},{wallet},1500000000,0x{},0,101,1614859200\n",
            "a".repeat(64),
            "b".repeat(64)
        ),
    )
    .unwrap();
    let r = run_json(
        paytrace(&data)
            .args(["--json", "import", "transfers", "--chain", "eth"])
            .arg(&etl),
    );
    assert_eq!(r["imported"], 2, "{r:#}");
    let batch = dir.path().join("mixed.csv");
    std::fs::write(
        &batch,
        format!(
            "payee,address,chain,asset,amount\n\
             Ann,{ann},eth,USDC,2500\n\
             Ben,{ben},bitcoin,BTC,0.25\n\
             Cat,{cat},bitcoin,BTC,0.5\n\
             Tess,tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx,bitcoin,BTC,0.1\n\
             Chuck,1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb,bitcoin,BTC,0.1\n\
             Eva,{ann},bitcoin,BTC,0.1\n\
             Vic,bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du,bitcoin,BTC,0.1\n",
            ben = c.ben,
            cat = c.cat
        ),
    )
    .unwrap();
    let token = format!("{usdc}=USDC:6");
    let out = report(
        &data,
        &batch,
        &[
            "--json",
            "--provider-address",
            provider,
            "--provider-address",
            &c.provider,
            "--token",
            &token,
        ],
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["payouts"], 3, "{:#}", r["issues"]);
    assert_eq!(
        r["summary"]["paid"],
        serde_json::json!({usdc_key: "2500000000", "bitcoin:native": "75000000"})
    );
    let ann_p = r["payees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["payee"] == "Ann")
        .unwrap();
    assert_eq!(
        ann_p["totals"],
        serde_json::json!({"unattributed": {usdc_key: "1500000000"}, "still_held": {usdc_key: "1000000000"}})
    );
    // Bad rows: each names its line and field; the rest of the report is produced.
    let issues: Vec<(u64, String, String)> = r["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["line"].as_u64().unwrap(),
                i["kind"].as_str().unwrap().to_owned(),
                i["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        issues
            .iter()
            .map(|i| (i.0, i.1.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (5, "bad_address"),
            (6, "bad_address"),
            (7, "bad_address"),
            (8, "bad_address"),
        ]
    );
    assert!(issues.iter().all(|i| i.2.starts_with("field `address`: ")));
    assert!(issues[0].2.contains("testnet"), "{}", issues[0].2);
    assert!(issues[1].2.contains("checksum"), "{}", issues[1].2);
    assert!(issues[2].2.contains("EVM address"), "{}", issues[2].2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in 5..=8 {
        assert!(
            stderr.contains(&format!("mixed.csv:{l}: field `address`: ")),
            "{stderr}"
        );
    }
    // Convergence across chains: once a label attributes Ann's receiver (EVM) to the entity
    // whose Bitcoin address Ben paid, the two payees meet at that entity (each sent it most of
    // the salary: 60 % and 80 %; a smaller part would be a common counterparty, not a meeting).
    let labels = dir.path().join("tie.csv");
    std::fs::write(
        &labels,
        format!("address,category,entity\n{wallet},sanctioned,SECONDEYE SOLUTION\n"),
    )
    .unwrap();
    run_json(
        paytrace(&data)
            .args([
                "--json",
                "labels",
                "import",
                "--format",
                "csv",
                "--version",
                "2021-07-08",
            ])
            .arg(&labels),
    );
    let out = report(
        &data,
        &batch,
        &[
            "--json",
            "--provider-address",
            provider,
            "--provider-address",
            &c.provider,
            "--token",
            &token,
        ],
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = r["convergence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "cluster:entity:SECONDEYE SOLUTION")
        .unwrap_or_else(|| panic!("{:#}", r["convergence"]));
    let payees: Vec<&str> = f["payees"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["payee"].as_str().unwrap())
        .collect();
    assert_eq!(payees, ["Ann", "Ben"], "{f:#}");
    assert_eq!(
        f["amounts"],
        serde_json::json!({usdc_key: "1500000000", "bitcoin:native": "20000000"})
    );
    // CSV: one asset key per chain family.
    let out = report(
        &data,
        &batch,
        &[
            "--format",
            "csv",
            "--provider-address",
            provider,
            "--provider-address",
            &c.provider,
            "--token",
            &token,
        ],
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Ann,") && l.contains(&format!(",{usdc_key},2500,"))),
        "{csv}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Cat,") && l.contains(",BTC,bitcoin:native,0.5,")),
        "{csv}"
    );
}

/// The real mainnet blocks 1–255: with a test listing of 15NUwyBYrZcnUgTagsm1A7M2yL2GntpuaZ
/// (which received, in block 187, the 1 BTC that 12cbQ… paid 13HtsYzn… in block 183), 13Htsy…
/// sent to it directly and 12cbQ… indirectly, one address further, 1 BTC each; as of the day
/// before those blocks, neither.
#[test]
fn real_blocks_screened_through_their_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let blocks = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/btc/blocks1-256.dat"
    );
    run_json(paytrace(&data).args(["--json", "index", "btc", "--blk-file", blocks]));
    let listed = "15NUwyBYrZcnUgTagsm1A7M2yL2GntpuaZ";
    let csv = dir.path().join("listing.csv");
    std::fs::write(
        &csv,
        format!(
            "address,category,entity,valid_from\n{listed},sanctioned,test listing,2009-01-01\n"
        ),
    )
    .unwrap();
    run_json(
        paytrace(&data)
            .args(["--json", "labels", "import", "--format", "csv"])
            .arg(&csv),
    );
    let t = |k: &str, hops: u64| {
        (
            k.to_owned(),
            "sent".to_owned(),
            COIN.to_string(),
            hops,
            listed.to_owned(),
        )
    };
    let hts = screen(&data, "13HtsYzne8xVPdGDnmJX8gHgBZerAfJGEf", "2009-01-31");
    assert_eq!(sanctioned(&hts), vec![t("direct", 0)], "{hts:#}");
    assert_eq!(hts["level"], "severe");
    let payer = screen(&data, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "2009-01-31");
    assert_eq!(sanctioned(&payer), vec![t("indirect", 1)], "{payer:#}");
    // 1 of the 32 BTC 12cbQ… paid others (10 + 10 + 1 + 1 + 10; its change is not a payment).
    let share = payer["indirect"][0]["share"].as_f64().unwrap();
    assert!((share - 1.0 / 32.0).abs() < 1e-12, "{payer:#}");
    let early = screen(&data, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", "2009-01-11");
    assert!(sanctioned(&early).is_empty(), "{early:#}");
}
