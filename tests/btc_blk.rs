//! End-to-end: `paytrace index btc --blk-file` on real mainnet blocks 1–255, then
//! `paytrace address` on the first person-to-person payment (block 170).

mod common;

use common::{paytrace, run_json};
use serde_json::Value;

const BLOCKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/btc/blocks1-256.dat"
);
const TX170: &str = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16";

#[test]
fn blk_file_block_170_pays_10_btc() {
    let dir = tempfile::tempdir().unwrap();
    let s = run_json(paytrace(dir.path()).args(["--json", "index", "btc", "--blk-file", BLOCKS]));
    assert_eq!(s["chain"], "bitcoin");
    assert_eq!((s["from"].as_u64(), s["to"].as_u64()), (Some(1), Some(255)));
    assert_eq!(s["txs"], 262);
    assert_eq!(s["inputs"], 7);
    assert_eq!(s["resolved_inputs"], 7);
    assert_eq!(s["unresolved_inputs"], 0);

    let to = run_json(paytrace(dir.path()).args([
        "--json",
        "address",
        "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3",
    ]));
    assert_eq!(to["address"], "1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3");
    let inc = to["incoming"].as_array().unwrap();
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0]["block"], 170);
    assert_eq!(inc[0]["tx"], TX170);
    assert_eq!(inc[0]["kind"], "utxo");
    assert_eq!(inc[0]["from"], format!("tx:{TX170}"));
    assert_eq!(inc[0]["amount"], "1000000000");
    assert_eq!(to["totals"][0]["symbol"], "BTC");
    assert_eq!(to["totals"][0]["decimals"], 8);

    // The payer: mined block 9 (50 BTC from the coinbase), spent it all into tx 170 and got
    // 40 BTC change back.
    let from = run_json(paytrace(dir.path()).args([
        "--json",
        "address",
        "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S",
    ]));
    let out: Vec<&Value> = from["outgoing"].as_array().unwrap().iter().collect();
    let spend = out
        .iter()
        .find(|t| t["tx"] == TX170)
        .expect("12cbQ... spends into tx 170");
    assert_eq!(spend["to"], format!("tx:{TX170}"));
    assert_eq!(spend["amount"], "5000000000");
    let inc = from["incoming"].as_array().unwrap();
    assert_eq!(inc[0]["block"], 9);
    assert!(inc[0]["from"].as_str().unwrap().starts_with("tx:0437cd7f"));
    assert!(
        inc.iter()
            .any(|t| t["tx"] == TX170 && t["amount"] == "4000000000"),
        "{inc:?}"
    );

    // The tx node itself: one input, two outputs, fee 0.
    let node = run_json(paytrace(dir.path()).args(["--json", "address", &format!("tx:{TX170}")]));
    assert_eq!(
        node["incoming"][0]["from"],
        "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"
    );
    assert_eq!(node["outgoing"].as_array().unwrap().len(), 2);

    // Re-running resumes after the checkpoint and does nothing.
    let again =
        run_json(paytrace(dir.path()).args(["--json", "index", "btc", "--blk-file", BLOCKS]));
    assert_eq!(again["blocks"], 0);
    assert_eq!(again["checkpoint"], 255);
}
