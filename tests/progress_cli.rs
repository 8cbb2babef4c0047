//! Progress bars on a terminal have a fixed total.
//!
//! Regression: `index evm` without `--to` showed a spinner whose total grew with its position
//! (`17/17 blocks, eta 0s` all along). The bar is only drawn on a terminal, so the command runs
//! under `script` (util-linux), which gives it a pseudo-terminal.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use paytrace_indexer::testutil::Anvil;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_without_to_shows_a_fixed_total_from_the_head_at_start() {
    let anvil = Anvil::spawn().await.unwrap();
    anvil
        .rpc()
        .call_raw("anvil_mine", serde_json::json!(["0x28"]))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cmd = format!(
        "{} --data-dir {} index evm --chain dev --rpc {}",
        env!("CARGO_BIN_EXE_paytrace"),
        dir.path().join("store").display(),
        anvil.url()
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("PAYTRACE_CONFIG")
            .env_remove("PAYTRACE_DATA_DIR")
            .env("TERM", "xterm")
            .output()
            .expect("run `script` (util-linux) to give paytrace a terminal")
    })
    .await
    .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(out.status.success(), "index failed:\n{screen}");
    // Blocks 0..=40: one total, from the first frame to the last (the balance stage that
    // follows has its own bar, in entries).
    let words: Vec<&str> = screen.split_whitespace().collect();
    let totals: std::collections::BTreeSet<&str> = words
        .windows(2)
        .filter(|w| w[1] == "blocks")
        .filter_map(|w| w[0].split_once('/'))
        .filter(|(pos, len)| pos.parse::<u64>().is_ok() && len.parse::<u64>().is_ok())
        .map(|(_, len)| len)
        .collect();
    assert_eq!(
        totals,
        std::collections::BTreeSet::from(["41"]),
        "the bar's total must be fixed at the head at start:\n{screen}"
    );
}

/// Runs `paytrace ARGS` on a pseudo-terminal (under `script`) and returns what it showed.
fn on_terminal(data_dir: &std::path::Path, args: &str) -> String {
    let cmd = format!(
        "{} --data-dir {} {args}",
        env!("CARGO_BIN_EXE_paytrace"),
        data_dir.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("PAYTRACE_CONFIG")
        .env_remove("PAYTRACE_DATA_DIR")
        .env("TERM", "xterm")
        .output()
        .expect("run `script` (util-linux) to give paytrace a terminal");
    let screen = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(out.status.success(), "{args} failed:\n{screen}");
    screen
}

/// Regression: `import transfers`, `screen --file` and `cluster run` showed no progress; they share
/// the bar style of `index evm` (fixed total, rate, ETA).
#[test]
fn import_and_bulk_screening_show_a_bar_with_a_fixed_total() {
    let dir = tempfile::tempdir().unwrap();
    let addr = |n: u64| format!("0x{n:040x}");
    let mut csv = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    for i in 0..20_000u64 {
        csv.push_str(&format!(
            "{},{},{},{},0x{i:064x},{},{},{}\n",
            addr(0xaa),
            addr(0x10 + i % 50),
            addr(0x100 + i % 70),
            1000 + i,
            i % 10,
            i / 10,
            1_740_787_200 + i
        ));
    }
    let file = dir.path().join("t.csv");
    std::fs::write(&file, csv).unwrap();
    let store = dir.path().join("store");
    let screen = on_terminal(&store, &format!("import transfers {}", file.display()));
    assert!(screen.contains("importing"), "{screen}");
    assert!(screen.contains("eta"), "{screen}");
    let list = dir.path().join("addresses.txt");
    std::fs::write(
        &list,
        (0..40u64)
            .map(|i| addr(0x10 + i))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let screen = on_terminal(
        &store,
        &format!("screen --file {} --as-of 2025-03-02", list.display()),
    );
    assert!(screen.contains("/40 addresses"), "{screen}");
    let totals: std::collections::BTreeSet<&str> = screen
        .split_whitespace()
        .filter_map(|w| w.split_once('/'))
        .filter(|(pos, len)| pos.parse::<u64>().is_ok() && len.parse::<u64>().is_ok())
        .map(|(_, len)| len)
        .collect();
    assert_eq!(totals, std::collections::BTreeSet::from(["40"]), "{screen}");
    // `cluster run`: blocks 0..=1999, one total from the start.
    let screen = on_terminal(&store, "cluster run");
    assert!(screen.contains("/2000 blocks"), "{screen}");
    // `report payouts`: the provider's 400 payouts, one total from the start.
    let out = dir.path().join("report");
    let screen = on_terminal(
        &store,
        &format!(
            "report payouts --provider-address {} --labels-as-of 2025-03-02 --out {}",
            addr(0x10),
            out.display()
        ),
    );
    assert!(screen.contains("/400 payouts"), "{screen}");
    // `index balances --rebuild`: both address indexes, 2 x 20,000 entries.
    let screen = on_terminal(&store, "index balances --rebuild");
    assert!(screen.contains("/40000 entries"), "{screen}");
    assert!(out.join("payout-report.json").exists(), "{screen}");
}
