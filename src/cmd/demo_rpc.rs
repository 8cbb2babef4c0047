//! `paytrace demo --rpc`: starts its own dev node (anvil) on a free port, deploys the demo
//! scenario on it and indexes it with the real EVM sync, then stops the node.
//!
//! The node is always one this process started and saw listen: transactions are never sent to
//! a node the demo did not start.
//!
//! The two tokens are the committed `TestToken` artifact (`contracts/artifacts.json`, embedded),
//! deployed by anvil's first dev account; every scenario step is one ERC-20 `transfer` sent
//! from the (impersonated) sender, mined in its own block at the step's timestamp.

use super::demo::DEMO_CHAIN;
use anyhow::{Context as _, bail};
use paytrace_config::TraceMode;
use paytrace_indexer::{
    Address, ChainKind, Store,
    evm::{EvmSource, RpcClient, RpcConfig},
    sync::{EvmSync, StopSignal, SyncOptions},
};
use paytrace_tracer::demo::{DEFAULT_BASE, Scenario};
use serde_json::{Value, json};
use std::{collections::BTreeSet, time::Duration};

/// Environment variable naming the anvil binary (as `scripts/install-anvil` prints it).
pub const ANVIL_ENV: &str = "PAYTRACE_ANVIL";
/// How long the dev node may take to report its listening address.
const NODE_START: Duration = Duration::from_secs(20);

/// A dev node (anvil) started by this process on a free loopback port, stopped on drop.
pub struct DevNode {
    child: std::process::Child,
    url: String,
}

impl DevNode {
    /// The anvil binary: `explicit`, else `$PAYTRACE_ANVIL`, else `anvil` on the `PATH`.
    pub fn binary(explicit: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
        let from_env = std::env::var_os(ANVIL_ENV).filter(|v| !v.is_empty());
        if let Some(p) = explicit
            .map(std::path::Path::to_path_buf)
            .or(from_env.map(Into::into))
        {
            if p.is_file() {
                return Ok(p);
            }
            bail!("anvil binary {} does not exist", p.display());
        }
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|d| d.join("anvil"))
            .find(|p| p.is_file())
            .context(
                "no anvil binary found: `paytrace demo --rpc` starts its own anvil node; install \
                 it (`scripts/install-anvil` prints its path) and pass --anvil PATH or set \
                 PAYTRACE_ANVIL",
            )
    }

    /// Starts `bin` on 127.0.0.1 with a port the system picks, its clock at `timestamp`, and
    /// waits until it reports where it listens. Fails if it exits first (its output is in the
    /// error).
    pub fn start(bin: &std::path::Path, timestamp: u64) -> anyhow::Result<Self> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", "0", "--timestamp"])
            .arg(timestamp.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("anvil's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads every line for the node's whole life, so its logging never blocks on a full
        // pipe; the first `Listening on` line is the address.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        match rx.recv_timeout(NODE_START) {
            Ok(addr) => Ok(Self {
                child,
                url: format!("http://{addr}"),
            }),
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().ok();
                let stderr = out
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_default();
                bail!(
                    "the dev node {} did not start within {}s: {stderr}",
                    bin.display(),
                    NODE_START.as_secs()
                )
            }
        }
    }

    /// The node's JSON-RPC URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ARTIFACTS: &str = include_str!("../../contracts/artifacts.json");
const DAY: u64 = 86_400;

struct Node {
    http: reqwest::Client,
    url: String,
}

impl Node {
    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let v: Value = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("{method}: cannot reach {}", self.url))?
            .json()
            .await
            .with_context(|| format!("{method}: the answer is not JSON"))?;
        if let Some(e) = v.get("error") {
            bail!("{method}: node error {e}");
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn send(
        &self,
        from: Address,
        to: Option<Address>,
        data: String,
        time: u64,
    ) -> anyhow::Result<Value> {
        self.call("evm_setNextBlockTimestamp", json!([time]))
            .await?;
        let mut tx = json!({"from": from.to_string(), "data": data, "gas": "0x2dc6c0"});
        if let Some(t) = to {
            tx["to"] = json!(t.to_string());
        }
        let hash = self.call("eth_sendTransaction", json!([tx])).await?;
        let mut receipt = Value::Null;
        for _ in 0..200 {
            receipt = self
                .call("eth_getTransactionReceipt", json!([hash]))
                .await?;
            if !receipt.is_null() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if receipt.get("status").and_then(Value::as_str) != Some("0x1") {
            bail!("transaction {hash} from {from} failed: {receipt}");
        }
        Ok(receipt)
    }
}

fn hex_u64(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().context("expected a hex quantity")?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).context("bad hex quantity")
}

fn word(b: &[u8]) -> String {
    let mut w = [0u8; 32];
    let n = b.len().min(32);
    w[32 - n..].copy_from_slice(&b[b.len() - n..]);
    alloy_primitives::hex::encode(w)
}

fn word_u256(v: alloy_primitives::U256) -> String {
    alloy_primitives::hex::encode(v.to_be_bytes::<32>())
}

/// ABI encoding of `(string, string, uint8, uint256)`.
fn ctor_args(name: &str, symbol: &str, decimals: u8, supply: alloy_primitives::U256) -> String {
    let enc_str = |s: &str| {
        let b = s.as_bytes();
        let mut out = word(&(b.len() as u64).to_be_bytes());
        let mut padded = b.to_vec();
        padded.resize(b.len().div_ceil(32) * 32, 0);
        out.push_str(&alloy_primitives::hex::encode(padded));
        out
    };
    let a = enc_str(name);
    let b = enc_str(symbol);
    let head = 4 * 32;
    let off_a = head;
    let off_b = head + a.len() / 2;
    format!(
        "{}{}{}{}{a}{b}",
        word(&(off_a as u64).to_be_bytes()),
        word(&(off_b as u64).to_be_bytes()),
        word(&[decimals]),
        word_u256(supply)
    )
}

/// `transfer(address,uint256)` call data.
fn transfer_data(to: &Address, amount: alloy_primitives::U256) -> anyhow::Result<String> {
    let a = to.as_evm().context("demo addresses are EVM addresses")?;
    Ok(format!(
        "0xa9059cbb{}{}",
        word(a.as_slice()),
        word_u256(amount)
    ))
}

/// Deploys and plays the scenario on `url`, then indexes the node into `store` with the EVM
/// sync. Returns the scenario (shifted after the node's clock if needed; token addresses as
/// deployed) and the number of transfers indexed.
pub async fn deploy_and_index(url: &str, store: &Store) -> anyhow::Result<(Scenario, u64)> {
    let node = Node {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        url: url.to_owned(),
    };
    let head = node
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .await?;
    let head_time = hex_u64(head.get("timestamp").context("block without timestamp")?)?;
    // Start at least two days after the node's clock, on a midnight.
    let base = DEFAULT_BASE.max((head_time / DAY + 2) * DAY);
    let mut s = Scenario::generate(base);
    let artifacts: Value = serde_json::from_str(ARTIFACTS).context("contracts/artifacts.json")?;
    let code = artifacts["contracts"]["TestToken"]["bytecode"]
        .as_str()
        .context("artifacts.json: no TestToken bytecode")?
        .to_owned();
    let senders: BTreeSet<Address> = s
        .steps
        .iter()
        .map(|st| st.from)
        .chain([s.deployer])
        .collect();
    for a in &senders {
        node.call("anvil_impersonateAccount", json!([a.to_string()]))
            .await?;
        node.call(
            "anvil_setBalance",
            json!([a.to_string(), "0x56bc75e2d63100000"]),
        )
        .await?;
    }
    let start = s.steps.first().map_or(base, |st| st.time.0);
    let mut t = start - 3_600;
    let tokens = s.tokens.clone();
    for (i, tok) in tokens.iter().enumerate() {
        t += 1;
        let data = format!(
            "{code}{}",
            ctor_args(&tok.name, &tok.symbol, tok.decimals, tok.supply.raw())
        );
        let r = node.send(s.deployer, None, data, t).await?;
        let addr: Address = r
            .get("contractAddress")
            .and_then(Value::as_str)
            .context("deployment without contract address")?
            .parse()?;
        s.tokens[i].address = addr;
    }
    for st in &s.steps {
        let token = s.tokens[st.token].address;
        let data = transfer_data(&st.to, st.amount.raw())?;
        node.send(st.from, Some(token), data, st.time.0).await?;
    }
    // Index everything through the real sync.
    let chain = store.register_chain(DEMO_CHAIN, ChainKind::Evm)?;
    let rpc = RpcClient::new(RpcConfig {
        url: url.to_owned(),
        concurrency: 4,
        rps: None,
        timeout: Duration::from_secs(30),
        deadline: Duration::from_secs(60),
        max_retries: 3,
        min_backoff: Duration::from_millis(100),
    })?;
    let source = EvmSource::new(rpc, chain, TraceMode::Auto, None, 25, 1_000)
        .await
        .context("connecting to the node")?;
    let sync = EvmSync::new(
        store.clone(),
        source,
        chain,
        DEMO_CHAIN,
        SyncOptions::default(),
        StopSignal::new(),
    );
    let summary = sync
        .index(None, None, &|_| {})
        .await
        .context("indexing the demo chain")?;
    Ok((s, summary.transfers))
}
