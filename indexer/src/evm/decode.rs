//! Decoding of JSON-RPC responses into [`Transfer`]s. Pure functions, no I/O.
//!
//! - native: the value of every successful transaction with value > 0 (creations pay the
//!   created address);
//! - token: ERC-20 `Transfer(address,address,uint256)` logs with exactly 3 topics and 32 data
//!   bytes; ERC-721 transfers (4 topics) and malformed logs are counted and skipped;
//! - internal: value-moving call frames below the top level (parity `trace_block` or geth
//!   `callTracer`) outside any failed frame; `position` is the frame's depth-first pre-order
//!   index within its transaction (the top-level call is 0).

use crate::model::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, Timestamp, Transfer, TransferKey,
    TransferKind, TxHash,
};
use alloy_primitives::{B256, U64, U256, b256};
use serde::Serialize;
use std::collections::HashSet;

use super::types::{
    CallType, GethCallFrame, GethTxTrace, ParityTrace, RpcBlock, RpcBlockHashes, RpcHeader, RpcLog,
    TraceKind,
};

/// `keccak256("Transfer(address,address,uint256)")`.
pub const TRANSFER_TOPIC: B256 =
    b256!("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

/// Things the decoder skipped, by reason. Nothing is skipped silently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DecodeStats {
    /// `Transfer` logs with 4 topics (ERC-721), not ERC-20.
    pub erc721_logs: u64,
    /// `Transfer` logs of any other malformed shape.
    pub malformed_logs: u64,
    /// Logs flagged `removed`.
    pub removed_logs: u64,
    /// Transactions that failed (their value and internal transfers are dropped).
    pub failed_txs: u64,
    /// Call frames that failed or sit inside a failed frame and would have moved value.
    pub reverted_value_frames: u64,
    /// Calls below the top level that moved no value.
    pub zero_value_calls: u64,
    /// Transactions whose calls were not traced (trace mode `none`): their internal
    /// transfers are not indexed.
    pub untraced_txs: u64,
}

impl DecodeStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        self.erc721_logs += other.erc721_logs;
        self.malformed_logs += other.malformed_logs;
        self.removed_logs += other.removed_logs;
        self.failed_txs += other.failed_txs;
        self.reverted_value_frames += other.reverted_value_frames;
        self.zero_value_calls += other.zero_value_calls;
        self.untraced_txs += other.untraced_txs;
    }
}

/// A response that does not have the shape the decoder needs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// A required field is absent or out of range.
    #[error("malformed {what} in block {block}{}: {reason}", tx.map(|t| format!(", tx {t:#x}")).unwrap_or_default())]
    Malformed {
        /// What was being read (`log`, `trace`, `transaction`, `block`).
        what: &'static str,
        /// Block height.
        block: u64,
        /// Transaction, when known.
        tx: Option<B256>,
        /// What is wrong.
        reason: String,
    },
}

fn malformed(
    what: &'static str,
    block: u64,
    tx: Option<B256>,
    reason: impl Into<String>,
) -> DecodeError {
    DecodeError::Malformed {
        what,
        block,
        tx,
        reason: reason.into(),
    }
}

fn u32_of(
    v: u64,
    what: &'static str,
    block: u64,
    tx: Option<B256>,
    field: &str,
) -> Result<u32, DecodeError> {
    u32::try_from(v).map_err(|_| {
        malformed(
            what,
            block,
            tx,
            format!("{field} {v} does not fit in 32 bits"),
        )
    })
}

/// The [`BlockRef`] of a header.
pub fn header_ref(h: &RpcHeader) -> BlockRef {
    BlockRef {
        number: BlockNumber(h.number.to()),
        hash: h.hash,
        parent: h.parent_hash,
        time: Timestamp(h.timestamp.to()),
    }
}

/// The [`BlockRef`] of a full block.
pub fn block_ref(b: &RpcBlock) -> BlockRef {
    BlockRef {
        number: BlockNumber(b.number.to()),
        hash: b.hash,
        parent: b.parent_hash,
        time: Timestamp(b.timestamp.to()),
    }
}

/// The [`BlockRef`] of a block read with transaction hashes only.
pub fn hashes_ref(b: &RpcBlockHashes) -> BlockRef {
    BlockRef {
        number: BlockNumber(b.number.to()),
        hash: b.hash,
        parent: b.parent_hash,
        time: Timestamp(b.timestamp.to()),
    }
}

/// Appends the native transfers of a block to `out`, read from its parity `trace_block`
/// output instead of the full block: the value of every top-level call or create (empty trace
/// address) that did not fail, paid to the callee or the created contract.
///
/// `tx_hashes` is the block's transaction list (`eth_getBlockByNumber(n, false)`). Every
/// transaction must have exactly one top-level trace at its position, so a node that leaves a
/// transaction out of its traces is an error rather than a silently missing transfer. Gives
/// the same transfers as [`native_transfers`] of the full block with the failed transactions
/// of [`parity_internal_transfers`].
pub fn parity_native_transfers(
    chain: ChainId,
    block: BlockRef,
    tx_hashes: &[B256],
    traces: &[ParityTrace],
    out: &mut Vec<Transfer>,
) -> Result<(), DecodeError> {
    let number = block.number.0;
    let mut seen = vec![false; tx_hashes.len()];
    for t in traces {
        if t.kind == TraceKind::Reward || !t.trace_address.is_empty() {
            continue;
        }
        let (Some(tx), Some(pos)) = (t.transaction_hash, t.transaction_position) else {
            return Err(malformed(
                "trace",
                number,
                t.transaction_hash,
                format!("top-level {} trace without a transaction", t.kind),
            ));
        };
        let tx_index = u32_of(pos, "trace", number, Some(tx), "transactionPosition")?;
        let slot = usize::try_from(pos)
            .ok()
            .filter(|i| tx_hashes.get(*i) == Some(&tx));
        let Some(slot) = slot else {
            return Err(malformed(
                "trace",
                number,
                Some(tx),
                format!("transaction position {pos} does not match the block's transaction list"),
            ));
        };
        if std::mem::replace(&mut seen[slot], true) {
            return Err(malformed(
                "trace",
                number,
                Some(tx),
                "two top-level traces for one transaction",
            ));
        }
        if t.error.is_some() {
            continue;
        }
        let a = &t.action;
        let (from, to) = match t.kind {
            TraceKind::Call => (a.from, a.to),
            TraceKind::Create => (a.from, t.result.as_ref().and_then(|r| r.address)),
            other => {
                return Err(malformed(
                    "trace",
                    number,
                    Some(tx),
                    format!("top-level {other} trace"),
                ));
            }
        };
        let value = a.value.unwrap_or_default();
        if value.is_zero() {
            continue;
        }
        let (Some(from), Some(to)) = (from, to) else {
            return Err(malformed(
                "trace",
                number,
                Some(tx),
                "value-moving top-level trace without a sender or receiver",
            ));
        };
        out.push(Transfer {
            key: TransferKey {
                chain,
                block: block.number,
                tx_index,
                kind: TransferKind::Native,
                position: 0,
            },
            time: block.time,
            tx_hash: TxHash(tx),
            from: from.into(),
            to: to.into(),
            asset: Asset::Native,
            amount: Amount::from_raw(value),
            trace_address: Vec::new(),
        });
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(malformed(
            "trace",
            number,
            tx_hashes.get(i).copied(),
            "transaction without a top-level trace",
        ));
    }
    Ok(())
}

/// Appends the native transfers of `block` to `out`, skipping transactions in `failed`.
pub fn native_transfers(
    chain: ChainId,
    block: &RpcBlock,
    failed: &HashSet<B256>,
    out: &mut Vec<Transfer>,
) -> Result<(), DecodeError> {
    let number: u64 = block.number.to();
    for (i, tx) in block.transactions.iter().enumerate() {
        if tx.value.is_zero() || failed.contains(&tx.hash) {
            continue;
        }
        let index = match tx.transaction_index {
            Some(ix) => ix.to::<u64>(),
            None => u64::try_from(i).unwrap_or(u64::MAX),
        };
        let tx_index = u32_of(
            index,
            "transaction",
            number,
            Some(tx.hash),
            "transactionIndex",
        )?;
        let to = tx.to.unwrap_or_else(|| tx.from.create(tx.nonce.to()));
        out.push(Transfer {
            key: TransferKey {
                chain,
                block: BlockNumber(number),
                tx_index,
                kind: TransferKind::Native,
                position: 0,
            },
            time: Timestamp(block.timestamp.to()),
            tx_hash: TxHash(tx.hash),
            from: tx.from.into(),
            to: to.into(),
            asset: Asset::Native,
            amount: Amount::from_raw(tx.value),
            trace_address: Vec::new(),
        });
    }
    Ok(())
}

/// Appends the ERC-20 transfers among `logs` to `out`. `time_of` gives the time of a block
/// of the range; a log of a block outside the range is an error.
pub fn token_transfers(
    chain: ChainId,
    logs: &[RpcLog],
    time_of: impl Fn(u64) -> Option<Timestamp>,
    stats: &mut DecodeStats,
    out: &mut Vec<Transfer>,
) -> Result<(), DecodeError> {
    for log in logs {
        if log.topics.first() != Some(&TRANSFER_TOPIC) {
            continue;
        }
        let block = log.block_number.map(|b| b.to::<u64>()).unwrap_or_default();
        if log.removed {
            stats.removed_logs += 1;
            continue;
        }
        if log.topics.len() == 4 {
            stats.erc721_logs += 1;
            continue;
        }
        let amount = match log.data.word() {
            Some(w) if log.topics.len() == 3 => U256::from_be_bytes(w.0),
            _ => {
                stats.malformed_logs += 1;
                tracing::debug!(
                    block,
                    tx = ?log.transaction_hash,
                    log_index = ?log.log_index,
                    contract = %log.address,
                    topics = log.topics.len(),
                    data_len = log.data.len(),
                    "skipping malformed Transfer log"
                );
                continue;
            }
        };
        let tx = log.transaction_hash;
        let need = |v: Option<U64>, field: &str| {
            v.map(|x| x.to::<u64>())
                .ok_or_else(|| malformed("log", block, tx, format!("missing {field}")))
        };
        let block = need(log.block_number, "blockNumber")?;
        let tx_hash = tx.ok_or_else(|| malformed("log", block, None, "missing transactionHash"))?;
        let tx_index = u32_of(
            need(log.transaction_index, "transactionIndex")?,
            "log",
            block,
            tx,
            "transactionIndex",
        )?;
        let log_index = u32_of(
            need(log.log_index, "logIndex")?,
            "log",
            block,
            tx,
            "logIndex",
        )?;
        let time = time_of(block).ok_or_else(|| {
            malformed("log", block, tx, "log of a block outside the fetched range")
        })?;
        out.push(Transfer {
            key: TransferKey {
                chain,
                block: BlockNumber(block),
                tx_index,
                kind: TransferKind::Token,
                position: log_index,
            },
            time,
            tx_hash: TxHash(tx_hash),
            from: topic_address(log.topics.get(1)),
            to: topic_address(log.topics.get(2)),
            asset: Asset::Token(log.address.into()),
            amount: Amount::from_raw(amount),
            trace_address: Vec::new(),
        });
    }
    Ok(())
}

fn topic_address(t: Option<&B256>) -> Address {
    Address::evm(alloy_primitives::Address::from_word(
        t.copied().unwrap_or_default(),
    ))
}

/// Tracks, over frames in depth-first pre-order, whether the current frame lies inside a
/// failed frame.
#[derive(Default)]
struct FailureScope {
    failed_depth: Option<usize>,
}

impl FailureScope {
    /// Enters a frame at `depth`; returns whether it (or an ancestor) failed.
    fn enter(&mut self, depth: usize, errored: bool) -> bool {
        if self.failed_depth.is_some_and(|fd| depth <= fd) {
            self.failed_depth = None;
        }
        if self.failed_depth.is_none() && errored {
            self.failed_depth = Some(depth);
        }
        self.failed_depth.is_some()
    }
}

/// A value-moving frame, independent of the trace format.
struct Frame<'a> {
    depth: usize,
    errored: bool,
    trace_address: &'a [u32],
    movement: Option<(
        alloy_primitives::Address,
        Option<alloy_primitives::Address>,
        U256,
    )>,
    is_call: bool,
}

/// The per-transaction state of internal-transfer extraction.
struct TxFrames {
    chain: ChainId,
    block: BlockRef,
    tx: B256,
    tx_index: u32,
    ordinal: u32,
    scope: FailureScope,
}

impl TxFrames {
    fn new(chain: ChainId, block: BlockRef, tx: B256, tx_index: u32) -> Self {
        Self {
            chain,
            block,
            tx,
            tx_index,
            ordinal: 0,
            scope: FailureScope::default(),
        }
    }

    /// Handles one frame; returns whether the top-level call failed (depth 0 only).
    fn visit(
        &mut self,
        f: &Frame<'_>,
        stats: &mut DecodeStats,
        out: &mut Vec<Transfer>,
    ) -> Result<bool, DecodeError> {
        let position = self.ordinal;
        self.ordinal = self.ordinal.saturating_add(1);
        let failed = self.scope.enter(f.depth, f.errored);
        if f.depth == 0 {
            return Ok(failed);
        }
        let Some((from, to, value)) = f.movement else {
            return Ok(false);
        };
        if value.is_zero() {
            if f.is_call {
                stats.zero_value_calls += 1;
            }
            return Ok(false);
        }
        if failed {
            stats.reverted_value_frames += 1;
            return Ok(false);
        }
        let block = self.block.number.0;
        let to = to.ok_or_else(|| {
            malformed(
                "trace",
                block,
                Some(self.tx),
                "value-moving frame without a receiver",
            )
        })?;
        out.push(Transfer {
            key: TransferKey {
                chain: self.chain,
                block: self.block.number,
                tx_index: self.tx_index,
                kind: TransferKind::Internal,
                position,
            },
            time: self.block.time,
            tx_hash: TxHash(self.tx),
            from: from.into(),
            to: to.into(),
            asset: Asset::Native,
            amount: Amount::from_raw(value),
            trace_address: f.trace_address.to_vec(),
        });
        Ok(false)
    }
}

/// Appends the internal transfers of parity `trace_block` output to `out` and returns the
/// hashes of failed transactions (errored top-level call).
pub fn parity_internal_transfers(
    chain: ChainId,
    block: BlockRef,
    traces: &[ParityTrace],
    stats: &mut DecodeStats,
    out: &mut Vec<Transfer>,
) -> Result<HashSet<B256>, DecodeError> {
    let number = block.number.0;
    let mut failed = HashSet::new();
    let mut cur: Option<TxFrames> = None;
    let mut local = DecodeStats::default();
    for t in traces {
        if t.kind == TraceKind::Reward {
            continue;
        }
        let (Some(tx), Some(pos)) = (t.transaction_hash, t.transaction_position) else {
            return Err(malformed(
                "trace",
                number,
                t.transaction_hash,
                format!("{} trace without a transaction", t.kind),
            ));
        };
        if let Some(bh) = t.block_hash
            && bh != block.hash
        {
            return Err(malformed(
                "trace",
                number,
                Some(tx),
                format!("trace of block hash {bh:#x}, expected {:#x}", block.hash),
            ));
        }
        if cur.as_ref().is_none_or(|c| c.tx != tx) {
            let tx_index = u32_of(pos, "trace", number, Some(tx), "transactionPosition")?;
            cur = Some(TxFrames::new(chain, block, tx, tx_index));
        }
        let Some(frames) = cur.as_mut() else { continue };
        let a = &t.action;
        let (movement, is_call) = match t.kind {
            TraceKind::Call => match a.call_type {
                Some(CallType::Call) | None => {
                    (a.from.map(|f| (f, a.to, a.value.unwrap_or_default())), true)
                }
                _ => (None, false),
            },
            TraceKind::Create => (
                a.from.map(|f| {
                    (
                        f,
                        t.result.as_ref().and_then(|r| r.address),
                        a.value.unwrap_or_default(),
                    )
                }),
                false,
            ),
            TraceKind::Suicide => (
                a.address
                    .map(|f| (f, a.refund_address, a.balance.unwrap_or_default())),
                false,
            ),
            _ => (None, false),
        };
        if movement.is_none()
            && t.kind == TraceKind::Call
            && a.call_type.is_none_or(|c| c == CallType::Call)
        {
            return Err(malformed("trace", number, Some(tx), "call without `from`"));
        }
        let frame = Frame {
            depth: t.trace_address.len(),
            errored: t.error.is_some(),
            trace_address: &t.trace_address,
            movement,
            is_call,
        };
        if frames.visit(&frame, &mut local, out)? {
            failed.insert(tx);
        }
    }
    local.failed_txs = u64::try_from(failed.len()).unwrap_or(u64::MAX);
    stats.merge(&local);
    Ok(failed)
}

/// Appends the internal transfers of geth `debug_traceBlockByNumber` (`callTracer`) output to
/// `out` and returns the hashes of failed transactions. `block` gives the transaction hashes
/// when the node's output lacks `txHash`.
pub fn geth_internal_transfers(
    chain: ChainId,
    block: &RpcBlock,
    traces: &[GethTxTrace],
    stats: &mut DecodeStats,
    out: &mut Vec<Transfer>,
) -> Result<HashSet<B256>, DecodeError> {
    let bref = block_ref(block);
    let number = bref.number.0;
    if traces.len() != block.transactions.len() {
        return Err(malformed(
            "trace",
            number,
            None,
            format!(
                "{} transaction traces for {} transactions",
                traces.len(),
                block.transactions.len()
            ),
        ));
    }
    let mut failed = HashSet::new();
    let mut local = DecodeStats::default();
    for (i, (tt, btx)) in traces.iter().zip(&block.transactions).enumerate() {
        let tx = tt.tx_hash.unwrap_or(btx.hash);
        if tx != btx.hash {
            return Err(malformed(
                "trace",
                number,
                Some(tx),
                format!("trace {i} is for another transaction than {:#x}", btx.hash),
            ));
        }
        let Some(root) = &tt.result else {
            return Err(malformed(
                "trace",
                number,
                Some(tx),
                format!(
                    "tracer error: {}",
                    tt.error.as_deref().unwrap_or("no result")
                ),
            ));
        };
        let index = btx
            .transaction_index
            .map(|x| x.to::<u64>())
            .unwrap_or(u64::try_from(i).unwrap_or(u64::MAX));
        let tx_index = u32_of(index, "trace", number, Some(tx), "transactionIndex")?;
        let mut frames = TxFrames::new(chain, bref, tx, tx_index);
        // Explicit stack: call depth can reach 1024. Each entry carries the parent's callee,
        // the implicit sender of a bare `SELFDESTRUCT` frame.
        let mut stack: Vec<(&GethCallFrame, Vec<u32>, Option<alloy_primitives::Address>)> =
            vec![(root, Vec::new(), None)];
        while let Some((f, addr, parent_to)) = stack.pop() {
            let kind = f.kind.to_ascii_uppercase();
            let from = f.from.or(if kind == "SELFDESTRUCT" {
                parent_to
            } else {
                None
            });
            let (movement, is_call) = match kind.as_str() {
                "CALL" | "CREATE" | "CREATE2" | "SELFDESTRUCT" => {
                    let value = f.value.unwrap_or_default();
                    let movement = match from {
                        Some(from) => Some((from, f.to, value)),
                        // A frame that moves nothing needs no sender.
                        None if value.is_zero() => None,
                        None => {
                            return Err(malformed(
                                "trace",
                                number,
                                Some(tx),
                                format!("{kind} frame without `from`"),
                            ));
                        }
                    };
                    (movement, kind == "CALL")
                }
                _ => (None, false),
            };
            let frame = Frame {
                depth: addr.len(),
                errored: f.error.is_some(),
                trace_address: &addr,
                movement,
                is_call,
            };
            if frames.visit(&frame, &mut local, out)? {
                failed.insert(tx);
            }
            for (ci, c) in f.calls.iter().enumerate().rev() {
                let mut a = addr.clone();
                a.push(u32::try_from(ci).unwrap_or(u32::MAX));
                stack.push((c, a, f.to));
            }
        }
    }
    local.failed_txs = u64::try_from(failed.len()).unwrap_or(u64::MAX);
    stats.merge(&local);
    Ok(failed)
}
