//! Fills a running dev node (anvil) with the deterministic test chain: ERC-20, ETH and
//! internal transfers plus the edge cases (failed transactions, reverted sub-calls, ERC-721
//! and malformed logs). Used by `scripts/quickstart` and the benchmarks.
//!
//! `cargo run --release --example devchain -- URL [--bulk N]`

use paytrace_indexer::testutil::{BulkOptions, ChainGenerator, Rpc};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: devchain URL [--bulk N]"))?;
    let bulk = match (args.next().as_deref(), args.next()) {
        (Some("--bulk"), Some(n)) => Some(n.parse::<usize>()?),
        (None, _) => None,
        _ => anyhow::bail!("usage: devchain URL [--bulk N]"),
    };
    let mut generator = ChainGenerator::new(Rpc::new(&url)).await?;
    match bulk {
        Some(transfers) => {
            generator
                .generate_bulk(BulkOptions {
                    transfers,
                    ..BulkOptions::default()
                })
                .await?
        }
        None => generator.generate().await?,
    }
    println!(
        "{}",
        serde_json::json!({ "rpc": url, "head": generator.head().await?, "expected_transfers": generator.expected_len() })
    );
    Ok(())
}
