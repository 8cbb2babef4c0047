//! Shared helpers of the end-to-end tests: run the `paytrace` binary, watch its JSON log lines,
//! read the store and compare transfer lists with readable failures.
//!
//! The anvil-based tests need the anvil binary: `scripts/install-anvil` (see docs/testing.md).

#![allow(dead_code)] // each test binary uses a different subset

pub mod serve;

use paytrace_indexer::testutil::{Anvil, ChainGenerator};
use paytrace_indexer::{BlockNumber, ChainId, Store, Transfer, TransferKind};
use serde_json::Value;
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

/// The chain name the tests index under.
pub const CHAIN: &str = "dev";

/// A `paytrace` command on `data_dir`, logs as JSON lines (stderr is not a terminal).
pub fn paytrace(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paytrace"));
    c.arg("--data-dir").arg(data_dir);
    c.env_remove("PAYTRACE_CONFIG")
        .env_remove("PAYTRACE_DATA_DIR");
    c.env("RUST_LOG", "info");
    c.stdin(Stdio::null());
    c
}

/// Runs `cmd`, fails the test on a non-zero exit, and returns the output.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run paytrace");
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` (which must include `--json`) and parses its stdout.
pub fn run_json(cmd: &mut Command) -> Value {
    let out = run_ok(cmd);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?}: stdout is not JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `paytrace --json index evm --chain dev --rpc URL --from 0 --to HEAD` plus `extra` flags.
pub fn index_cmd(data_dir: &Path, rpc: &str, to: u64, extra: &[&str]) -> Command {
    let mut c = paytrace(data_dir);
    c.args([
        "--json", "index", "evm", "--chain", CHAIN, "--rpc", rpc, "--from", "0",
    ]);
    c.args(["--to", &to.to_string()]);
    c.args(extra);
    c
}

/// Starts anvil (mining off) and generates the standard chain (≥ 1,000 transfers).
pub async fn standard_chain() -> (Anvil, ChainGenerator) {
    let anvil = Anvil::builder()
        .no_mining()
        .spawn()
        .await
        .expect("start anvil (run scripts/install-anvil)");
    let mut g = ChainGenerator::new(anvil.rpc()).await.expect("generator");
    let t = Instant::now();
    g.generate().await.expect("generate the chain");
    eprintln!(
        "generated {} transfers up to block {} in {:?}",
        g.expected_len(),
        g.head().await.expect("head"),
        t.elapsed()
    );
    (anvil, g)
}

/// Opens the store (the process using it must have exited) and reads every transfer of `dev`.
pub fn read_store(data_dir: &Path) -> (ChainId, Vec<Transfer>, Option<BlockNumber>) {
    let store = Store::open(data_dir).expect("open the store");
    let chain = store
        .chain_by_name(CHAIN)
        .expect("read chains")
        .expect("chain dev registered");
    let transfers: Vec<Transfer> = store
        .range_transfers(chain.id, BlockNumber(0), BlockNumber(u64::MAX))
        .collect::<Result<_, _>>()
        .expect("read transfers");
    let checkpoint = store
        .checkpoint(chain.id)
        .expect("checkpoint")
        .map(|b| b.number);
    (chain.id, transfers, checkpoint)
}

/// Per-kind counts.
pub fn by_kind(ts: &[Transfer]) -> BTreeMap<TransferKind, usize> {
    let mut m = BTreeMap::new();
    for t in ts {
        *m.entry(t.key.kind).or_insert(0) += 1;
    }
    m
}

/// Asserts two canonical-order transfer lists are equal, showing the first differences.
pub fn assert_transfers_eq(actual: &[Transfer], expected: &[Transfer]) {
    if actual == expected {
        return;
    }
    let mut msg = format!(
        "transfer lists differ: {} indexed {:?}, {} expected {:?}\n",
        actual.len(),
        by_kind(actual),
        expected.len(),
        by_kind(expected)
    );
    let a: BTreeMap<_, _> = actual.iter().map(|t| (t.key, t)).collect();
    let e: BTreeMap<_, _> = expected.iter().map(|t| (t.key, t)).collect();
    if a.len() != actual.len() {
        msg.push_str("indexed list has duplicate keys\n");
    }
    let mut shown = 0;
    for (k, t) in &e {
        match a.get(k) {
            None => msg.push_str(&format!("missing: {t:?}\n")),
            Some(x) if x != t => {
                msg.push_str(&format!("differs:\n  indexed  {x:?}\n  expected {t:?}\n"))
            }
            Some(_) => continue,
        }
        shown += 1;
        if shown >= 8 {
            break;
        }
    }
    shown = 0;
    for (k, t) in &a {
        if !e.contains_key(k) {
            msg.push_str(&format!("unexpected: {t:?}\n"));
            shown += 1;
            if shown >= 8 {
                break;
            }
        }
    }
    panic!("{msg}");
}

/// Asserts an `index --json` summary's counters.
pub fn assert_summary(summary: &Value, transfers: &[Transfer], to: u64) {
    assert_eq!(summary["chain"], CHAIN, "summary: {summary}");
    assert_eq!(summary["to"].as_u64(), Some(to), "summary: {summary}");
    assert_eq!(
        summary["transfers"].as_u64(),
        u64::try_from(transfers.len()).ok(),
        "summary: {summary}"
    );
    for (kind, n) in by_kind(transfers) {
        assert_eq!(
            summary["by_kind"][kind.as_str()].as_u64(),
            u64::try_from(n).ok(),
            "by_kind.{kind} in summary: {summary}"
        );
    }
}

/// A running `paytrace` process whose stderr lines are collected.
pub struct Running {
    /// The process.
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Spawns `cmd` with stderr piped and collected (stdout too, for the summary).
    pub fn spawn(mut cmd: Command) -> Self {
        cmd.stderr(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn paytrace");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("log lock").push(line);
            }
        });
        Self { child, lines }
    }

    /// The stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("log lock").clone()
    }

    /// Whether some JSON log line satisfies `pred` (on its `fields` object).
    pub fn saw(&self, pred: &dyn Fn(&Value) -> bool) -> bool {
        self.lines().iter().any(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .is_some_and(|v| pred(v.get("fields").unwrap_or(&v)))
        })
    }

    /// The highest `last` of a "committed range" log line.
    pub fn last_committed(&self) -> Option<u64> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                let f = v.get("fields")?;
                let msg = f.get("message")?.as_str()?;
                if msg.contains("commit") {
                    f.get("last")?.as_u64()
                } else {
                    None
                }
            })
            .max()
    }

    /// Waits until `cond` holds, failing the test (with the log) after `timeout` or if the
    /// process exits.
    pub fn wait_until(&mut self, what: &str, timeout: Duration, cond: &dyn Fn(&Self) -> bool) {
        let start = Instant::now();
        loop {
            if cond(self) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "paytrace exited ({status}) while waiting for {what}; log:\n{}",
                    self.lines().join("\n")
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; log:\n{}",
                    self.lines().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. `-INT`) with `kill(1)` and waits for the exit.
    pub fn signal_and_wait(&mut self, signal: &str, timeout: Duration) -> ExitStatus {
        let st = Command::new("kill")
            .arg(signal)
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill {signal} failed");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "paytrace did not exit within {timeout:?} after {signal}; log:\n{}",
                    self.lines().join("\n")
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checks `paytrace --json stats` (with `--json` after the subcommand): the `dev` chain's
/// counters equal the expected per-kind counts, and its last block is `head` with `head_hash`.
pub fn assert_stats(data_dir: &Path, expected: &[Transfer], head: u64, head_hash: &str) {
    let out = run_json(paytrace(data_dir).args(["stats", "--json"]));
    let chains = out["chains"]
        .as_array()
        .unwrap_or_else(|| panic!("stats: {out}"));
    let dev = chains
        .iter()
        .find(|c| c["chain"] == CHAIN)
        .unwrap_or_else(|| panic!("no chain dev in stats: {out}"));
    assert_eq!(dev["last_block"].as_u64(), Some(head), "stats: {out}");
    assert_eq!(
        dev["last_block_hash"].as_str(),
        Some(head_hash),
        "stats: {out}"
    );
    assert_eq!(
        dev["transfers"].as_u64(),
        u64::try_from(expected.len()).ok(),
        "stats: {out}"
    );
    for (kind, n) in by_kind(expected) {
        assert_eq!(
            dev["by_kind"][kind.as_str()].as_u64(),
            u64::try_from(n).ok(),
            "stats by_kind.{kind}: {out}"
        );
    }
}

/// The EVM address whose 20 bytes are all `n`.
pub fn a(n: u8) -> paytrace_indexer::Address {
    paytrace_indexer::Address::Evm([n; 20])
}

/// A native transfer on chain 1 from `a(from)` to `a(to)` of `v` units at block `block`,
/// transaction `i` (time `block * 12`; the hash encodes block and index).
pub fn t(block: u64, i: u32, from: u8, to: u8, v: u64) -> Transfer {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    h[8..12].copy_from_slice(&i.to_be_bytes());
    Transfer {
        key: paytrace_indexer::TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: i,
            kind: TransferKind::Native,
            position: 0,
        },
        time: paytrace_indexer::Timestamp(block * 12),
        tx_hash: paytrace_indexer::TxHash(alloy_primitives::B256::from(h)),
        from: a(from),
        to: a(to),
        asset: paytrace_indexer::Asset::Native,
        amount: paytrace_indexer::Amount::from_u64(v),
        trace_address: Vec::new(),
    }
}
