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
    // Blocks 0..=40: one total, from the first frame to the last.
    let totals: std::collections::BTreeSet<&str> = screen
        .split_whitespace()
        .filter_map(|w| w.split_once('/'))
        .filter(|(pos, len)| pos.parse::<u64>().is_ok() && len.parse::<u64>().is_ok())
        .map(|(_, len)| len)
        .collect();
    assert_eq!(
        totals,
        std::collections::BTreeSet::from(["41"]),
        "the bar's total must be fixed at the head at start:\n{screen}"
    );
}
