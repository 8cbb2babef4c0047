//! Fetching a block range from an EVM node and decoding it into transfers.
//!
//! For a range the source asks, concurrently: blocks (batched `eth_getBlockByNumber`),
//! `Transfer` logs (`eth_getLogs`, split adaptively when the node refuses a span) and call
//! traces (batched parity `trace_block` or geth `debug_traceBlockByNumber`). With traces,
//! failed transactions show as an errored top-level call, so no receipts are needed; only
//! without traces are receipts fetched, and only for blocks with value-carrying transactions.
//! With parity traces the blocks are read without transaction objects (headers and
//! transaction hashes): native transfers come from the top-level traces, and the hash list
//! checks that every transaction has one. geth and trace-less modes read full blocks.

use super::{
    decode::{self, DecodeError, DecodeStats, TRANSFER_TOPIC},
    rpc::{Call, RpcClient, RpcError},
    types::{GethTxTrace, ParityTrace, RpcBlock, RpcBlockHashes, RpcHeader, RpcLog, RpcReceipt},
};
use crate::model::{BlockNumber, BlockRef, ChainId, Timestamp, Transfer};
use alloy_primitives::{Address, B256, U64};
use futures::future::try_join_all;
use serde_json::json;
use std::{
    collections::{HashMap, HashSet},
    sync::atomic::{AtomicU64, Ordering},
};

/// How internal transfers are read, once resolved against the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceMode {
    /// parity `trace_block`.
    Parity,
    /// geth `debug_traceBlockByNumber` with `callTracer`.
    Geth,
    /// No traces (no internal transfers; receipts for failures).
    None,
}

/// Why fetching a range failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The node call failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node's answer does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The node has no such block (yet).
    #[error("block {number} not found on the node")]
    MissingBlock {
        /// Height.
        number: u64,
    },
    /// Answers of one range disagree (a reorg happened while fetching).
    #[error("inconsistent answers for block {block}: {reason}")]
    Inconsistent {
        /// Height.
        block: u64,
        /// What disagreed.
        reason: String,
    },
    /// Trace mode `parity` or `geth` was asked for but the node lacks the method.
    #[error("the node does not support {method}; set trace_mode to another value")]
    TracesUnsupported {
        /// The missing method.
        method: &'static str,
    },
    /// Trace mode `auto`: neither trace method works on the node, so internal transfers
    /// cannot be read. Never a silent fallback to no traces: the user must choose it.
    #[error(
        "trace mode auto: the node traces block {block} neither with trace_block ({parity}) nor \
         with debug_traceBlockByNumber ({geth}); internal transfers cannot be indexed from this \
         node: pass --trace-mode none (or set trace_mode = \"none\" for the chain) to index \
         without internal transfers, or use a node with parity or geth traces"
    )]
    NoTraceMethod {
        /// The block probed.
        block: u64,
        /// What `trace_block` answered.
        parity: String,
        /// What `debug_traceBlockByNumber` answered.
        geth: String,
    },
}

impl SourceError {
    /// Whether fetching the same range again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rpc(e) => e.is_retryable(),
            Self::MissingBlock { .. } | Self::Inconsistent { .. } => true,
            Self::Decode(_) | Self::TracesUnsupported { .. } | Self::NoTraceMethod { .. } => false,
        }
    }
}

/// A fetched and decoded range.
#[derive(Clone, Debug, Default)]
pub struct FetchedRange {
    /// The blocks, ascending and linked by parent hash.
    pub blocks: Vec<BlockRef>,
    /// Transfers in canonical order.
    pub transfers: Vec<Transfer>,
    /// What was skipped.
    pub stats: DecodeStats,
}

/// An EVM chain source.
#[derive(Debug)]
pub struct EvmSource {
    rpc: RpcClient,
    chain: ChainId,
    trace_mode: TraceMode,
    tokens: Option<Vec<Address>>,
    batch_size: usize,
    logs_range: AtomicU64,
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

impl EvmSource {
    /// Builds a source. `trace` is the configured mode; `auto` probes the node at a recent
    /// block with transactions (parity `trace_block` first, then geth
    /// `debug_traceBlockByNumber`) and fails with [`SourceError::NoTraceMethod`] when neither
    /// works. `tokens`: `None` reads `Transfer` logs of every contract.
    pub async fn new(
        rpc: RpcClient,
        chain: ChainId,
        trace: paytrace_config::TraceMode,
        tokens: Option<Vec<Address>>,
        batch_size: usize,
        logs_range: u64,
    ) -> Result<Self, SourceError> {
        let trace_mode = resolve_trace_mode(&rpc, trace).await?;
        Ok(Self::with_trace_mode(
            rpc, chain, trace_mode, tokens, batch_size, logs_range,
        ))
    }

    /// Builds a source with a trace mode already resolved (see [`resolve_trace_mode`]).
    pub fn with_trace_mode(
        rpc: RpcClient,
        chain: ChainId,
        trace_mode: TraceMode,
        tokens: Option<Vec<Address>>,
        batch_size: usize,
        logs_range: u64,
    ) -> Self {
        tracing::info!(node = %rpc.url(), trace_mode = ?trace_mode, "evm source ready");
        Self {
            rpc,
            chain,
            trace_mode,
            tokens,
            batch_size: batch_size.max(1),
            logs_range: AtomicU64::new(logs_range.max(1)),
        }
    }

    /// The resolved trace mode.
    pub fn trace_mode(&self) -> TraceMode {
        self.trace_mode
    }

    /// The node's latest block number.
    pub async fn head(&self) -> Result<BlockNumber, SourceError> {
        let n: U64 = self.rpc.call("eth_blockNumber", json!([]), "head").await?;
        Ok(BlockNumber(n.to()))
    }

    /// The node's EIP-155 chain id (`eth_chainId`), or `None` when the node does not answer it
    /// (a node error that is not retryable): only the built-in token list depends on it.
    pub async fn evm_chain_id(&self) -> Result<Option<u64>, SourceError> {
        match self
            .rpc
            .call::<_, U64>("eth_chainId", json!([]), "chain id")
            .await
        {
            Ok(id) => Ok(Some(id.to())),
            Err(e @ RpcError::Node { .. }) if !e.is_retryable() => {
                tracing::warn!(error = %e, "the node has no chain id: the built-in token list is not used");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The metadata of token `token` (see [`super::tokens::fetch_meta`]); `chain_id` from
    /// [`EvmSource::evm_chain_id`].
    pub async fn token_meta(
        &self,
        chain_id: Option<u64>,
        token: &crate::model::Address,
    ) -> Result<crate::store::TokenMeta, SourceError> {
        Ok(super::tokens::fetch_meta(&self.rpc, chain_id, token).await?)
    }

    /// Header of block `n`.
    pub async fn header(&self, n: BlockNumber) -> Result<BlockRef, SourceError> {
        let h: Option<RpcHeader> = self
            .rpc
            .call(
                "eth_getBlockByNumber",
                json!([hex(n.0), false]),
                &format!("block {n}"),
            )
            .await?;
        h.map(|h| decode::header_ref(&h))
            .ok_or(SourceError::MissingBlock { number: n.0 })
    }

    /// Fetches and decodes blocks `from..=to`.
    pub async fn fetch_range(
        &self,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<FetchedRange, SourceError> {
        let numbers: Vec<u64> = (from.0..=to.0).collect();
        let fetch_started = std::time::Instant::now();
        let (blocks, logs, traces) = tokio::try_join!(
            self.blocks(&numbers),
            self.logs(from.0, to.0),
            self.traces(&numbers)
        )?;
        let refs: Vec<BlockRef> = match &blocks {
            Blocks::Full(v) => v.iter().map(decode::block_ref).collect(),
            Blocks::Hashes(v) => v.iter().map(decode::hashes_ref).collect(),
        };

        // Consistency: contiguous, linked, and logs/traces from the same blocks.
        let mut by_number: HashMap<u64, (B256, Timestamp)> = HashMap::with_capacity(refs.len());
        for (i, b) in refs.iter().enumerate() {
            let n = b.number.0;
            if n != numbers[i] {
                return Err(SourceError::Inconsistent {
                    block: numbers[i],
                    reason: format!("node returned block {n}"),
                });
            }
            if i > 0 && b.parent != refs[i - 1].hash {
                return Err(SourceError::Inconsistent {
                    block: n,
                    reason: "parent hash does not link to the previous block".into(),
                });
            }
            by_number.insert(n, (b.hash, b.time));
        }
        for l in &logs {
            if let (Some(n), Some(h)) = (l.block_number, l.block_hash) {
                let n: u64 = n.to();
                if by_number.get(&n).is_some_and(|(bh, _)| *bh != h) {
                    return Err(SourceError::Inconsistent {
                        block: n,
                        reason: "log from another block hash".into(),
                    });
                }
            }
        }

        let fetch_ms = fetch_started.elapsed().as_millis();
        let decode_started = std::time::Instant::now();
        let chain = self.chain;
        let mut stats = DecodeStats::default();
        // Every trace and log gives at most one transfer (plus one native per transaction
        // without traces): one allocation instead of repeated growth.
        let expected = logs.len()
            + match &traces {
                Traces::Parity(v) => v.iter().map(Vec::len).sum(),
                Traces::Geth(v) => v.iter().map(Vec::len).sum(),
                Traces::None => 0,
            }
            + match &blocks {
                Blocks::Full(v) => v.iter().map(|b| b.transactions.len()).sum(),
                Blocks::Hashes(_) => 0,
            };
        let mut transfers = Vec::with_capacity(expected);
        let mut failed: HashSet<B256> = HashSet::new();
        match (traces, &blocks) {
            (Traces::Parity(per_block), _) => {
                for (i, (b, t)) in refs.iter().zip(&per_block).enumerate() {
                    if let Some(h) = t.iter().find_map(|t| t.block_hash.filter(|h| *h != b.hash)) {
                        return Err(SourceError::Inconsistent {
                            block: b.number.0,
                            reason: format!("trace from block hash {h:#x}"),
                        });
                    }
                    failed.extend(decode::parity_internal_transfers(
                        chain,
                        *b,
                        t,
                        &mut stats,
                        &mut transfers,
                    )?);
                    // Native transfers from the top-level traces (the full block is not read).
                    if let Blocks::Hashes(v) = &blocks {
                        decode::parity_native_transfers(
                            chain,
                            *b,
                            &v[i].transactions,
                            t,
                            &mut transfers,
                        )?;
                    }
                }
            }
            (Traces::Geth(per_block), Blocks::Full(full)) => {
                for (b, t) in full.iter().zip(&per_block) {
                    failed.extend(decode::geth_internal_transfers(
                        chain,
                        b,
                        t,
                        &mut stats,
                        &mut transfers,
                    )?);
                }
            }
            (Traces::None, Blocks::Full(full)) => {
                failed = self.failed_from_receipts(full).await?;
                stats.failed_txs += u64::try_from(failed.len()).unwrap_or(u64::MAX);
                let txs: usize = full.iter().map(|b| b.transactions.len()).sum();
                stats.untraced_txs += u64::try_from(txs).unwrap_or(u64::MAX);
            }
            (Traces::Geth(_) | Traces::None, Blocks::Hashes(_)) => {
                // `blocks` asks for full blocks in these modes.
                return Err(SourceError::Inconsistent {
                    block: from.0,
                    reason: "full blocks are needed without parity traces".into(),
                });
            }
        }
        if let Blocks::Full(full) = &blocks {
            for b in full {
                decode::native_transfers(chain, b, &failed, &mut transfers)?;
            }
        }
        decode::token_transfers(
            chain,
            &logs,
            |n| by_number.get(&n).map(|(_, t)| *t),
            &mut stats,
            &mut transfers,
        )?;
        transfers.sort_unstable_by_key(|t| t.key);
        let blocks = refs;
        tracing::debug!(
            from = from.0,
            to = to.0,
            fetch_ms,
            decode_ms = decode_started.elapsed().as_millis(),
            transfers = transfers.len(),
            "fetched range"
        );
        Ok(FetchedRange {
            blocks,
            transfers,
            stats,
        })
    }

    /// Full blocks, or with parity traces only headers and transaction hashes (natives,
    /// positions and failures then come from the traces; full blocks are the node's most
    /// expensive answer after receipts).
    async fn blocks(&self, numbers: &[u64]) -> Result<Blocks, SourceError> {
        if self.trace_mode == TraceMode::Parity {
            Ok(Blocks::Hashes(self.blocks_as(numbers, false).await?))
        } else {
            Ok(Blocks::Full(self.blocks_as(numbers, true).await?))
        }
    }

    async fn blocks_as<T: serde::de::DeserializeOwned>(
        &self,
        numbers: &[u64],
        full: bool,
    ) -> Result<Vec<T>, SourceError> {
        let chunks = numbers.chunks(self.batch_size).map(|chunk| async move {
            let calls: Vec<Call> = chunk
                .iter()
                .map(|n| Call {
                    method: "eth_getBlockByNumber",
                    params: json!([hex(*n), full]),
                })
                .collect();
            let what = format!("blocks {}..={}", chunk[0], chunk[chunk.len() - 1]);
            let got: Vec<Option<T>> = self.rpc.batch(&calls, &what).await?;
            got.into_iter()
                .zip(chunk)
                .map(|(b, n)| b.ok_or(SourceError::MissingBlock { number: *n }))
                .collect::<Result<Vec<_>, _>>()
        });
        Ok(try_join_all(chunks).await?.into_iter().flatten().collect())
    }

    async fn logs(&self, from: u64, to: u64) -> Result<Vec<RpcLog>, SourceError> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let span = self.logs_range.load(Ordering::Relaxed).max(1);
            let end = to.min(start.saturating_add(span - 1));
            let mut filter =
                json!({ "fromBlock": hex(start), "toBlock": hex(end), "topics": [TRANSFER_TOPIC] });
            if let Some(tokens) = &self.tokens {
                filter["address"] = json!(tokens);
            }
            match self
                .rpc
                .call::<_, Vec<RpcLog>>(
                    "eth_getLogs",
                    json!([filter]),
                    &format!("blocks {start}..={end}"),
                )
                .await
            {
                Ok(v) => {
                    out.extend(v);
                    start = end + 1;
                }
                Err(e) if e.is_range_too_large() && end > start => {
                    let half = (end - start).div_ceil(2).max(1);
                    tracing::info!(from = start, to = end, new_span = half, error = %e, "eth_getLogs span refused; splitting");
                    self.logs_range.store(half, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }

    async fn traces(&self, numbers: &[u64]) -> Result<Traces, SourceError> {
        match self.trace_mode {
            TraceMode::None => Ok(Traces::None),
            TraceMode::Parity => {
                let chunks = numbers.chunks(self.batch_size).map(|chunk| async move {
                    let calls: Vec<Call> = chunk
                        .iter()
                        .map(|n| Call {
                            method: "trace_block",
                            params: json!([hex(*n)]),
                        })
                        .collect();
                    let what = format!("blocks {}..={}", chunk[0], chunk[chunk.len() - 1]);
                    let v: Vec<Option<Vec<ParityTrace>>> = self.rpc.batch(&calls, &what).await?;
                    Ok::<_, SourceError>(
                        v.into_iter()
                            .map(Option::unwrap_or_default)
                            .collect::<Vec<_>>(),
                    )
                });
                Ok(Traces::Parity(
                    try_join_all(chunks).await?.into_iter().flatten().collect(),
                ))
            }
            TraceMode::Geth => {
                let chunks = numbers.chunks(self.batch_size).map(|chunk| async move {
                    // geth refuses to trace genesis ("genesis is not traceable"); it has no
                    // transactions, so its traces are empty by definition.
                    let traced: Vec<u64> = chunk.iter().copied().filter(|n| *n != 0).collect();
                    let calls: Vec<Call> = traced
                        .iter()
                        .map(|n| Call {
                            method: "debug_traceBlockByNumber",
                            params: json!([hex(*n), { "tracer": "callTracer" }]),
                        })
                        .collect();
                    let what = format!("blocks {}..={}", chunk[0], chunk[chunk.len() - 1]);
                    let mut v: Vec<Vec<GethTxTrace>> = self.rpc.batch(&calls, &what).await?;
                    if traced.len() < chunk.len() {
                        v.insert(0, Vec::new());
                    }
                    Ok::<_, SourceError>(v)
                });
                Ok(Traces::Geth(
                    try_join_all(chunks).await?.into_iter().flatten().collect(),
                ))
            }
        }
    }

    /// Failed transactions among value-carrying ones, from receipts.
    async fn failed_from_receipts(
        &self,
        blocks: &[RpcBlock],
    ) -> Result<HashSet<B256>, SourceError> {
        let with_value: Vec<&RpcBlock> = blocks
            .iter()
            .filter(|b| b.transactions.iter().any(|t| !t.value.is_zero()))
            .collect();
        let mut failed = HashSet::new();
        if with_value.is_empty() {
            return Ok(failed);
        }
        let calls: Vec<Call> = with_value
            .iter()
            .map(|b| Call {
                method: "eth_getBlockReceipts",
                params: json!([hex(b.number.to())]),
            })
            .collect();
        let what = format!("receipts of {} blocks", calls.len());
        match self.rpc.batch::<Vec<RpcReceipt>>(&calls, &what).await {
            Ok(per_block) => {
                for r in per_block.into_iter().flatten() {
                    if r.status.is_some_and(|s| s.is_zero()) {
                        failed.insert(r.transaction_hash);
                    }
                }
            }
            Err(e) if e.is_method_not_found() => {
                let calls: Vec<Call> = with_value
                    .iter()
                    .flat_map(|b| b.transactions.iter())
                    .filter(|t| !t.value.is_zero())
                    .map(|t| Call {
                        method: "eth_getTransactionReceipt",
                        params: json!([t.hash]),
                    })
                    .collect();
                for chunk in calls.chunks(self.batch_size) {
                    let rs: Vec<Option<RpcReceipt>> = self.rpc.batch(chunk, &what).await?;
                    for r in rs.into_iter().flatten() {
                        if r.status.is_some_and(|s| s.is_zero()) {
                            failed.insert(r.transaction_hash);
                        }
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(failed)
    }
}

enum Blocks {
    Full(Vec<RpcBlock>),
    Hashes(Vec<RpcBlockHashes>),
}

enum Traces {
    Parity(Vec<Vec<ParityTrace>>),
    Geth(Vec<Vec<GethTxTrace>>),
    None,
}

/// Blocks below the head searched for one with transactions to probe the trace methods on.
const PROBE_SEARCH_BLOCKS: u64 = 64;

/// The block the trace methods are probed on: the newest of the last
/// [`PROBE_SEARCH_BLOCKS`] blocks that has transactions (tracing it needs the node's state,
/// as indexing will), else the head. Never genesis unless the chain has nothing else (geth
/// refuses to trace genesis).
async fn probe_block(rpc: &RpcClient) -> Result<u64, SourceError> {
    let head: U64 = rpc
        .call("eth_blockNumber", json!([]), "trace mode probe: head")
        .await?;
    let head: u64 = head.to();
    let low = head.saturating_sub(PROBE_SEARCH_BLOCKS - 1).max(1);
    if head == 0 {
        return Ok(0);
    }
    let numbers: Vec<u64> = (low..=head).rev().collect();
    for chunk in numbers.chunks(16) {
        let calls: Vec<Call> = chunk
            .iter()
            .map(|n| Call {
                method: "eth_getBlockByNumber",
                params: json!([hex(*n), false]),
            })
            .collect();
        let what = format!(
            "trace mode probe: blocks {}..={}",
            chunk[chunk.len() - 1],
            chunk[0]
        );
        let blocks: Vec<Option<RpcBlockHashes>> = rpc.batch(&calls, &what).await?;
        if let Some(b) = blocks.iter().flatten().find(|b| !b.transactions.is_empty()) {
            return Ok(b.number.to());
        }
    }
    Ok(head)
}

/// The trace mode to use for the configured one: `auto` probes the node (see
/// [`EvmSource::new`]); the others are taken as they are.
pub async fn resolve_trace_mode(
    rpc: &RpcClient,
    configured: paytrace_config::TraceMode,
) -> Result<TraceMode, SourceError> {
    Ok(match configured {
        paytrace_config::TraceMode::Parity => TraceMode::Parity,
        paytrace_config::TraceMode::Geth => TraceMode::Geth,
        paytrace_config::TraceMode::None => TraceMode::None,
        paytrace_config::TraceMode::Auto => detect_trace_mode(rpc).await?,
    })
}

/// Probes `trace_block`, then `debug_traceBlockByNumber` with the `callTracer`, on
/// [`probe_block`]. Retryable failures are retried by the client (and end the run when they
/// persist); a node error of both methods is [`SourceError::NoTraceMethod`].
async fn detect_trace_mode(rpc: &RpcClient) -> Result<TraceMode, SourceError> {
    let block = probe_block(rpc).await?;
    let what = format!("trace mode probe: block {block}");
    let parity = match rpc
        .call::<_, serde_json::Value>("trace_block", json!([hex(block)]), &what)
        .await
    {
        Ok(serde_json::Value::Array(_)) => {
            tracing::debug!(block, "trace_block works");
            return Ok(TraceMode::Parity);
        }
        Ok(other) => format!("answered {}", short(&other)),
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => {
            tracing::debug!(block, error = %e, "trace_block unavailable");
            answer(&e)
        }
    };
    let geth = match rpc
        .call::<_, serde_json::Value>(
            "debug_traceBlockByNumber",
            json!([hex(block), { "tracer": "callTracer" }]),
            &what,
        )
        .await
    {
        Ok(serde_json::Value::Array(_)) => {
            tracing::debug!(block, "debug_traceBlockByNumber works");
            return Ok(TraceMode::Geth);
        }
        Ok(other) => format!("answered {}", short(&other)),
        Err(e) if e.is_retryable() => return Err(e.into()),
        Err(e) => answer(&e),
    };
    Err(SourceError::NoTraceMethod {
        block,
        parity,
        geth,
    })
}

/// A node's failure as shown in [`SourceError::NoTraceMethod`]: the error code and message.
fn answer(e: &RpcError) -> String {
    match e {
        RpcError::Node { code, message, .. } => format!("error {code}: {message}"),
        RpcError::Status { status, body, .. } => format!("http status {status}: {body}"),
        other => other.to_string(),
    }
}

/// The start of a JSON value, for messages.
fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}
