//! The JSON-RPC response shapes paytrace reads, and nothing more.
//!
//! These are deliberately minimal: unknown fields are ignored so that old recordings, new
//! transaction types and client-specific extras all decode, and only the fields the decoder
//! needs are parsed (full blocks carry calldata we never look at).

use alloy_primitives::{Address, B256, Bytes, U64, U256};
use serde::Deserialize;

/// `eth_getBlockByNumber(n, true)`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcBlock {
    /// Height.
    pub number: U64,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// Unix time.
    pub timestamp: U64,
    /// Full transaction objects (hashes only when asked with `false`).
    #[serde(default)]
    pub transactions: Vec<RpcTransaction>,
}

/// A header-only block, `eth_getBlockByNumber(n, false)`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcHeader {
    /// Height.
    pub number: U64,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// Unix time.
    pub timestamp: U64,
}

/// A block with transaction hashes only, `eth_getBlockByNumber(n, false)`: what paytrace asks
/// for when it reads parity traces (native transfers, positions and failures come from the
/// traces; the hash list checks that every transaction has a top-level trace).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcBlockHashes {
    /// Height.
    pub number: U64,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// Unix time.
    pub timestamp: U64,
    /// Transaction hashes in block order.
    #[serde(default)]
    pub transactions: Vec<B256>,
}

/// A transaction inside a full block.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcTransaction {
    /// Hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Receiver; `None` for a contract creation.
    pub to: Option<Address>,
    /// Value in wei.
    pub value: U256,
    /// Sender nonce (gives the created address of a creation).
    pub nonce: U64,
    /// Index in the block.
    pub transaction_index: Option<U64>,
}

/// An event log from `eth_getLogs` or a receipt.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcLog {
    /// Emitting contract.
    pub address: Address,
    /// Topics.
    pub topics: Vec<B256>,
    /// Data.
    pub data: Bytes,
    /// Block height (absent for pending logs).
    pub block_number: Option<U64>,
    /// Block hash.
    pub block_hash: Option<B256>,
    /// Transaction hash.
    pub transaction_hash: Option<B256>,
    /// Transaction index.
    pub transaction_index: Option<U64>,
    /// Block-level log index.
    pub log_index: Option<U64>,
    /// Removed by a reorg (from filters).
    #[serde(default)]
    pub removed: bool,
}

/// A receipt (`eth_getBlockReceipts` / `eth_getTransactionReceipt`), for the success status.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcReceipt {
    /// Transaction hash.
    pub transaction_hash: B256,
    /// `0x1` success, `0x0` failure; absent before Byzantium.
    pub status: Option<U64>,
    /// Created contract.
    pub contract_address: Option<Address>,
}

/// One entry of parity `trace_block`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParityTrace {
    /// The action (shape depends on `type`).
    pub action: ParityAction,
    /// Result (`address` for creates).
    pub result: Option<ParityResult>,
    /// Error message when the frame failed.
    pub error: Option<String>,
    /// Path of sub-call indexes.
    #[serde(default)]
    pub trace_address: Vec<u32>,
    /// Transaction hash (absent for rewards).
    pub transaction_hash: Option<B256>,
    /// Transaction index (absent for rewards).
    pub transaction_position: Option<u64>,
    /// Block hash.
    pub block_hash: Option<B256>,
    /// Block number.
    pub block_number: Option<u64>,
    /// `call`, `create`, `suicide`, `reward`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// The union of parity action fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParityAction {
    /// `call`, `delegatecall`, `staticcall`, `callcode` (calls only).
    pub call_type: Option<String>,
    /// Caller / creator.
    pub from: Option<Address>,
    /// Callee (calls).
    pub to: Option<Address>,
    /// Value moved (calls and creates).
    pub value: Option<U256>,
    /// Self-destructing contract (suicide).
    pub address: Option<Address>,
    /// Beneficiary (suicide).
    pub refund_address: Option<Address>,
    /// Balance sent (suicide).
    pub balance: Option<U256>,
}

/// The union of parity result fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParityResult {
    /// Created contract (creates).
    pub address: Option<Address>,
}

/// One transaction's result of geth `debug_traceBlockByNumber` with the `callTracer`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GethTxTrace {
    /// Transaction hash (newer geth; absent in older versions).
    pub tx_hash: Option<B256>,
    /// The top-level call frame.
    pub result: Option<GethCallFrame>,
    /// Tracer error for this transaction.
    pub error: Option<String>,
}

/// A geth `callTracer` frame.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GethCallFrame {
    /// `CALL`, `CREATE`, `CREATE2`, `DELEGATECALL`, `STATICCALL`, `CALLCODE`, `SELFDESTRUCT`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Caller. Old geth versions emit bare `SELFDESTRUCT` frames without it (the caller is then
    /// the parent frame's callee).
    pub from: Option<Address>,
    /// Callee / created contract / beneficiary.
    pub to: Option<Address>,
    /// Value moved.
    pub value: Option<U256>,
    /// Error when the frame failed.
    pub error: Option<String>,
    /// Sub-calls in order.
    #[serde(default)]
    pub calls: Vec<GethCallFrame>,
}
