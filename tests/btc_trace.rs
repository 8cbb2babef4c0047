//! End-to-end: the analysis commands on Bitcoin. The real mainnet blocks 1–255 (block 170 traced
//! forward and backward, screened by address), a generated chain with a peel chain into a
//! CoinJoin (exact taint), and bad Bitcoin addresses rejected with an error naming the argument.
#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

mod common;

use common::{paytrace, run_json, run_ok};
use serde_json::Value;
use std::path::Path;

const BLOCKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/btc/blocks1-256.dat"
);
const TX170: &str = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16";
const PAYER: &str = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S";
const PAYEE: &str = "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3";

fn index_real(dir: &Path) {
    run_json(paytrace(dir).args(["--json", "index", "btc", "--blk-file", BLOCKS]));
}

fn text(cmd: &mut std::process::Command) -> String {
    String::from_utf8(run_ok(cmd).stdout).unwrap()
}

fn total(v: &Value) -> u128 {
    v["totals_by_category"]
        .as_object()
        .unwrap()
        .values()
        .map(|m| m["native"].as_str().unwrap_or("0").parse::<u128>().unwrap())
        .sum()
}

/// Block 170: 50 BTC in from 12cbQ…, 10 BTC to 1Q2T… and 40 BTC change (all P2PK outputs,
/// found under their P2PKH addresses).
#[test]
fn block_170_traced_and_screened_by_address() {
    let dir = tempfile::tempdir().unwrap();
    index_real(dir.path());

    // Forward from the transaction: its outputs' value, 50 BTC (not inputs + outputs).
    let v = run_json(paytrace(dir.path()).args(["--json", "trace", TX170]));
    assert_eq!(v["seed"]["total"]["native"], "5000000000", "{}", v["seed"]);
    assert_eq!(v["seed"]["transfers"].as_array().unwrap().len(), 2);
    assert_eq!(v["seed"]["kind"], "transaction");
    assert_eq!(total(&v), 5_000_000_000);
    let d = |a: &str| {
        v["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["address"] == a)
            .cloned()
            .unwrap_or_else(|| panic!("{a} not among {}", v["destinations"]))
    };
    assert_eq!(d(PAYEE)["amount"], "1000000000");
    assert_eq!(d(PAYEE)["status"], "payee");
    assert_eq!(d(PAYEE)["first_arrival_tx"], TX170);
    // The change is followed to the README's peels (e.g. 10 BTC in block 181).
    assert_eq!(
        d("1DUDsfc23Dv9sPMEk5RsrtfzCw5ofi5sVW")["amount"],
        "1000000000"
    );
    let s = v.to_string();
    assert!(!s.contains("script:"), "{s}");
    assert!(!s.contains(&format!("0x{TX170}")), "{s}");

    // Text: BTC units, addresses, txids without 0x, neutral words.
    let t = text(paytrace(dir.path()).args(["trace", TX170]));
    assert!(t.contains("seed value: 50.00000000 BTC"), "{t}");
    assert!(t.contains(PAYEE) && t.contains(PAYER), "{t}");
    assert!(t.contains(&format!("tx {TX170} block 170")), "{t}");
    assert!(t.contains("receiver") && !t.contains("payee"), "{t}");
    assert!(!t.contains("script:") && !t.contains(" native"), "{t}");

    // TX:INDEX names an output: output 0 is the 10 BTC payment.
    let v = run_json(paytrace(dir.path()).args(["--json", "trace", &format!("{TX170}:0")]));
    assert_eq!(v["seed"]["total"]["native"], "1000000000");
    assert_eq!(v["seed"]["transfers"][0]["to"], PAYEE);
    let out = paytrace(dir.path())
        .args(["trace", &format!("{TX170}:2")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no output 2"), "{err}");

    // Backward from the transaction: its inputs' value, from the block-9 coinbase.
    let v = run_json(paytrace(dir.path()).args(["--json", "trace", "--backward", TX170]));
    assert_eq!(v["seed"]["total"]["native"], "5000000000");
    assert_eq!(total(&v), 5_000_000_000);
    assert_eq!(v["totals_by_category"]["origin"]["native"], "5000000000");

    // Forward from the payer address, by its base58 form.
    let v = run_json(paytrace(dir.path()).args(["--json", "trace", PAYER]));
    assert_eq!(v["seed"]["address"], PAYER);

    // Screening by address, text and JSON.
    let v =
        run_json(paytrace(dir.path()).args(["--json", "screen", PAYER, "--as-of", "2009-02-01"]));
    assert_eq!(v["address"], PAYER);
    assert!(!v.to_string().contains("script:"), "{v}");
    let t = text(paytrace(dir.path()).args(["screen", PAYER, "--as-of", "2009-02-01"]));
    assert!(t.starts_with(PAYER), "{t}");
    let file = dir.path().join("addresses.txt");
    std::fs::write(&file, format!("# payer and payee\n{PAYER}\n{PAYEE}\n")).unwrap();
    let t = text(paytrace(dir.path()).args(["screen", "--file", file.to_str().unwrap()]));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2, "{t}");
    assert!(
        lines[0].starts_with(PAYER) && lines[1].starts_with(PAYEE),
        "{t}"
    );

    // The transaction node in text: BTC amounts (50, not 5000000000 BTC).
    let t = text(paytrace(dir.path()).args(["address", &format!("tx:{TX170}")]));
    assert!(t.contains("utxo 50.00000000 BTC from 12cbQ"), "{t}");

    // Path and cluster show name Bitcoin addresses.
    let t = text(paytrace(dir.path()).args(["path", PAYER, PAYEE]));
    assert!(
        t.contains(PAYEE) && t.contains("value 10.00000000 BTC"),
        "{t}"
    );
    assert!(!t.contains("script:"), "{t}");
    let t = text(paytrace(dir.path()).args(["cluster", "show", PAYEE]));
    assert!(t.contains(PAYEE) && !t.contains("script:"), "{t}");
}

/// Bad Bitcoin addresses: each error names the argument, the input and what is wrong.
#[test]
fn bad_bitcoin_addresses_name_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    index_real(dir.path());
    let fails = |args: &[&str], says: &[&str]| {
        let out = paytrace(dir.path()).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for s in says {
            assert!(err.contains(s), "{args:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    // A testnet address on mainnet.
    fails(
        &["screen", "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"],
        &[
            "ADDRESS: \"mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn\"",
            "testnet",
            "mainnet",
        ],
    );
    fails(
        &["trace", "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"],
        &["seed: ", "testnet"],
    );
    // A bad checksum (last character of 12cbQ… changed).
    fails(
        &["trace", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3T"],
        &["seed: ", "not a valid Bitcoin address", "checksum"],
    );
    fails(
        &["path", PAYER, "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm4"],
        &["TO: ", "checksum"],
    );
    // A bech32 (not bech32m) checksum on a witness version 1 program, and the reverse.
    fails(
        &[
            "cluster",
            "show",
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd",
        ],
        &["ADDRESS: ", "witness version 1 with a bech32 checksum"],
    );
    fails(
        &["watch", "add", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh"],
        &["ADDRESS: ", "witness version 0 with a bech32m checksum"],
    );
    fails(
        &[
            "report",
            "payouts",
            "--provider-address",
            "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
        ],
        &["--provider-address: ", "testnet"],
    );
    fails(
        &["labels", "show", "3NDzzVxiLBUs1WPvVGRfCYDTAD2Ua2PvW5"],
        &["ADDRESS: ", "checksum"],
    );
    // A bad line of `screen --file` names the file and the line.
    let file = dir.path().join("list.txt");
    std::fs::write(
        &file,
        format!("{PAYER}\n\n12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3T\n"),
    )
    .unwrap();
    fails(
        &["screen", "--file", file.to_str().unwrap()],
        &["list.txt:3: ", "checksum"],
    );
}

mod generated {
    //! A hand-made chain written as a blk file: a peel chain into a JoinMarket-shaped CoinJoin.
    use bitcoin::{
        Amount, Block, BlockHash, CompactTarget, OutPoint, PubkeyHash, ScriptBuf, Sequence,
        Transaction, TxIn, TxMerkleNode, TxOut, Txid, Witness,
        absolute::LockTime,
        block::{Header, Version},
        hashes::Hash as _,
        transaction,
    };

    pub const BTC: u64 = 100_000_000;

    /// The P2PKH script of key hash `[n; 20]`.
    pub fn script(n: u8) -> ScriptBuf {
        ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array([n; 20]))
    }

    /// Its mainnet address.
    pub fn address(n: u8) -> String {
        bitcoin::Address::from_script(&script(n), bitcoin::Network::Bitcoin)
            .unwrap()
            .to_string()
    }

    pub fn tx(inputs: &[OutPoint], outputs: &[(u8, u64)]) -> Transaction {
        Transaction {
            version: transaction::Version::TWO,
            lock_time: LockTime::ZERO,
            input: inputs
                .iter()
                .map(|op| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|(n, v)| TxOut {
                    value: Amount::from_sat(*v),
                    script_pubkey: script(*n),
                })
                .collect(),
        }
    }

    pub fn op(t: &Transaction, vout: u32) -> OutPoint {
        OutPoint::new(t.compute_txid(), vout)
    }

    /// Blocks 0.. with a 50 BTC coinbase to `miners[h]` and the given transactions.
    pub fn chain(miners: &[u8], txs: Vec<Vec<Transaction>>) -> (Vec<Block>, Vec<Txid>) {
        let mut prev = BlockHash::all_zeros();
        let mut blocks = Vec::new();
        let mut coinbases = Vec::new();
        for (h, (m, rest)) in miners.iter().zip(txs).enumerate() {
            let cb = paytrace_indexer::btc::generate::coinbase(
                u64::try_from(h).unwrap(),
                script(*m),
                50 * BTC,
            );
            coinbases.push(cb.compute_txid());
            let mut txdata = vec![cb];
            txdata.extend(rest);
            let mut block = Block {
                header: Header {
                    version: Version::TWO,
                    prev_blockhash: prev,
                    merkle_root: TxMerkleNode::all_zeros(),
                    time: 1_600_000_000 + u32::try_from(h).unwrap() * 600,
                    bits: CompactTarget::from_consensus(0x207f_ffff),
                    nonce: 0,
                },
                txdata,
            };
            block.header.merkle_root = block.compute_merkle_root().unwrap();
            prev = block.block_hash();
            blocks.push(block);
        }
        (blocks, coinbases)
    }
}

/// A peel chain into a CoinJoin, indexed from a blk file and traced with the CLI. Haircut by
/// hand: the seed pays R1 1 BTC and keeps 49 (K1); K1 peels 1 to R2, keeps 48 (K2); K2 gets 2
/// clean BTC, so 96 % of its 50 is tainted: R3 gets 2.4 of 2.5 and K3 45.6 of 47.5; K3 enters a
/// CoinJoin (3 inputs, 3 × 10 BTC equal outputs, 3 change outputs) where 45.6 BTC exit as
/// `mixer`. 1 + 1 + 2.4 + 45.6 = 50.
#[test]
fn peel_chain_into_a_coinjoin_exact_taint() {
    use generated::*;
    // Scripts: 1 payer A, 2 R1, 3 K1, 4 R2, 5 K2, 6 Q (clean funder), 7 Q2, 8 R3, 9 K3,
    // 10 and 11 CoinJoin participants, 20.. CoinJoin outputs, 30 miner of later blocks.
    let (_, cbs) = chain(&[1, 10, 11, 6], vec![vec![], vec![], vec![], vec![]]);
    let a = bitcoin::OutPoint::new(cbs[0], 0);
    let (p1, p2, q) = (
        bitcoin::OutPoint::new(cbs[1], 0),
        bitcoin::OutPoint::new(cbs[2], 0),
        bitcoin::OutPoint::new(cbs[3], 0),
    );
    let seed = tx(&[a], &[(2, BTC), (3, 49 * BTC)]);
    let peel1 = tx(&[op(&seed, 1)], &[(4, BTC), (5, 48 * BTC)]);
    let fund = tx(&[q], &[(5, 2 * BTC), (7, 48 * BTC)]);
    let peel2 = tx(
        &[op(&peel1, 1), op(&fund, 0)],
        &[(8, 250_000_000), (9, 4_750_000_000)],
    );
    let cj = tx(
        &[op(&peel2, 1), p1, p2],
        &[
            (20, 10 * BTC),
            (21, 10 * BTC),
            (22, 10 * BTC),
            (23, 3_750_000_000),
            (24, 40 * BTC),
            (25, 40 * BTC),
        ],
    );
    let seed_id = seed.compute_txid().to_string();
    let cj_id = cj.compute_txid().to_string();
    let (blocks, _) = chain(
        &[1, 10, 11, 6, 30, 30, 30, 30],
        vec![
            vec![],
            vec![],
            vec![],
            vec![],
            vec![seed],
            vec![peel1, fund],
            vec![peel2],
            vec![cj],
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let files = paytrace_indexer::btc::generate::write_blk_files(
        &dir.path().join("blocks"),
        &blocks,
        None,
        1 << 30,
    )
    .unwrap();
    let data = dir.path().join("data");
    run_json(paytrace(&data).args([
        "--json",
        "index",
        "btc",
        "--blk-file",
        files[0].to_str().unwrap(),
    ]));

    let v = run_json(paytrace(&data).args(["--json", "trace", &seed_id]));
    assert_eq!(v["seed"]["total"]["native"], "5000000000");
    let cat = |c: &str| v["totals_by_category"][c]["native"].clone();
    assert_eq!(
        cat("still_at_payee"),
        "100000000",
        "{}",
        v["totals_by_category"]
    );
    assert_eq!(cat("unattributed"), "340000000");
    assert_eq!(cat("mixer"), "4560000000");
    assert_eq!(total(&v), 5_000_000_000);
    let dests = v["destinations"].as_array().unwrap();
    let mixer = dests
        .iter()
        .find(|d| d["address"] == format!("tx:{cj_id}"))
        .unwrap_or_else(|| panic!("{dests:?}"));
    assert_eq!(mixer["status"], "exited");
    assert_eq!(mixer["category"], "mixer");
    assert_eq!(mixer["amount"], "4560000000");
    assert_eq!(mixer["coinjoin"]["kind"], "joinmarket");
    assert_eq!(mixer["coinjoin"]["denomination"], "1000000000");
    assert_eq!(mixer["coinjoin"]["equal_outputs"], 3);
    let r3 = dests.iter().find(|d| d["address"] == address(8)).unwrap();
    assert_eq!(r3["held"], "240000000");
    // Nothing is followed through the CoinJoin.
    for n in 20..=25 {
        assert!(dests.iter().all(|d| d["address"] != address(n)), "{n}");
    }
    // Text: the mixer exit with BTC amounts.
    let t = text(paytrace(&data).args(["trace", &seed_id]));
    assert!(t.contains("mixer                45.60000000 BTC"), "{t}");
    assert!(t.contains(&address(8)), "{t}");
}
