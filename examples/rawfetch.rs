//! The limit for the indexing benchmark: a minimal concurrent raw fetch of the same data
//! paytrace reads (full blocks, `Transfer` logs, `trace_block` traces), batched like
//! paytrace, with nothing decoded beyond counting bytes and nothing written.
//!
//! `cargo run --release --example rawfetch -- URL FROM TO [BLOCKS_PER_UNIT] [CONCURRENCY] [BATCH] [full|headers]`
//!
//! `full` (the default, the definition of the limit) asks for full blocks with their
//! transactions; `headers` asks for headers only (`eth_getBlockByNumber(n, false)`), which is
//! what paytrace asks for when it reads traces (native transfers come from the traces then).

use futures::{StreamExt, stream};
use serde_json::{Value, json};
use std::time::Instant;

async fn post(client: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<usize> {
    let bytes = client
        .post(url)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(bytes.len())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        a.len() >= 3,
        "usage: rawfetch URL FROM TO [BLOCKS_PER_UNIT] [CONCURRENCY] [BATCH] [full|headers]"
    );
    let url = a[0].clone();
    let (from, to): (u64, u64) = (a[1].parse()?, a[2].parse()?);
    let unit: u64 = a.get(3).map_or(Ok(100), |s| s.parse())?;
    let conc: usize = a.get(4).map_or(Ok(8), |s| s.parse())?;
    let batch: usize = a.get(5).map_or(Ok(25), |s| s.parse())?;
    let full = match a.get(6).map(String::as_str) {
        None | Some("full") => true,
        Some("headers") => false,
        Some(other) => anyhow::bail!("unknown block mode {other}: expected full or headers"),
    };
    let client = reqwest::Client::new();
    let topic = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
    let started = Instant::now();
    let mut requests = Vec::new();
    let mut s = from;
    while s <= to {
        let e = (s + unit - 1).min(to);
        requests.push(json!({"jsonrpc":"2.0","id":0,"method":"eth_getLogs","params":[{"fromBlock":format!("{s:#x}"),"toBlock":format!("{e:#x}"),"topics":[topic]}]}));
        let blocks: Vec<u64> = (s..=e).collect();
        for chunk in blocks.chunks(batch) {
            requests.push(Value::Array(chunk.iter().enumerate().map(|(i, n)| json!({"jsonrpc":"2.0","id":i,"method":"eth_getBlockByNumber","params":[format!("{n:#x}"), full]})).collect()));
            requests.push(Value::Array(chunk.iter().enumerate().map(|(i, n)| json!({"jsonrpc":"2.0","id":i,"method":"trace_block","params":[format!("{n:#x}")]})).collect()));
        }
        s = e + 1;
    }
    let n = requests.len();
    let total: usize = stream::iter(requests)
        .map(|r| post(&client, &url, r))
        .buffer_unordered(conc)
        .map(|r| r.unwrap_or(0))
        .fold(0usize, |acc, b| async move { acc + b })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"blocks": to - from + 1, "requests": n, "bytes": total, "seconds": secs, "full_blocks": full})
    );
    Ok(())
}
