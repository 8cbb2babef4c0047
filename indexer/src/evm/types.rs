//! The JSON-RPC response shapes paytrace reads, and nothing more.
//!
//! These are deliberately minimal: unknown fields are ignored so that old recordings, new
//! transaction types and client-specific extras all decode, and only the fields the decoder
//! needs are parsed (full blocks carry calldata we never look at).

use alloy_primitives::{Address, B256, U64, U256, hex};
use serde::{Deserialize, Deserializer, de};
use std::fmt;

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
    /// Topics (read in place, no allocation per log).
    pub topics: Topics,
    /// Data: its length, and the word itself when it is exactly 32 bytes (an ERC-20 amount).
    pub data: LogData,
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
    /// Error message when the frame failed (present only on failed frames).
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
    pub kind: TraceKind,
}

/// The `type` of a parity trace, read without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceKind {
    /// A call of any call type.
    Call,
    /// A contract creation.
    Create,
    /// A self-destruct (`selfdestruct` in some clients).
    #[serde(alias = "selfdestruct")]
    Suicide,
    /// A block or uncle reward (not a transfer).
    Reward,
    /// Any other type (read, never a transfer).
    #[serde(other)]
    Other,
}

impl TraceKind {
    /// The lower-case name (`other` for types paytrace does not know).
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Call => "call",
            Self::Create => "create",
            Self::Suicide => "suicide",
            Self::Reward => "reward",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for TraceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `callType` of a parity call trace, read without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallType {
    /// A plain call (moves value).
    Call,
    /// `delegatecall` (moves no value of its own).
    Delegatecall,
    /// `staticcall`.
    Staticcall,
    /// `callcode`.
    Callcode,
    /// Any other call type.
    #[serde(other)]
    Other,
}

/// The topics of a log: up to four 32-byte words kept in place (the EVM emits at most four),
/// and how many the node sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Topics {
    words: [B256; 4],
    len: usize,
}

impl Topics {
    /// Builds topics from a slice (tests; at most four are kept, all are counted).
    pub fn from_slice(t: &[B256]) -> Self {
        let mut out = Self {
            len: t.len(),
            ..Self::default()
        };
        for (w, x) in out.words.iter_mut().zip(t) {
            *w = *x;
        }
        out
    }

    /// How many topics the node sent.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Topic `i` (only the first four are kept).
    pub fn get(&self, i: usize) -> Option<&B256> {
        self.as_slice().get(i)
    }

    /// The first topic (the event signature).
    pub fn first(&self) -> Option<&B256> {
        self.get(0)
    }

    /// The kept topics.
    pub fn as_slice(&self) -> &[B256] {
        &self.words[..self.len.min(4)]
    }
}

impl<'de> Deserialize<'de> for Topics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Topics;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of 32-byte hex topics")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Topics, A::Error> {
                let mut out = Topics::default();
                loop {
                    if let Some(w) = out.words.get_mut(out.len) {
                        match seq.next_element::<B256>()? {
                            Some(x) => *w = x,
                            None => return Ok(out),
                        }
                    } else if seq.next_element::<de::IgnoredAny>()?.is_none() {
                        return Ok(out);
                    }
                    out.len += 1;
                }
            }
        }
        d.deserialize_seq(V)
    }
}

/// The data of a log: its length in bytes, and the word when it is exactly 32 bytes long
/// (decoded in place: no allocation per log; other lengths are checked and counted only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogData {
    len: usize,
    word: Option<B256>,
}

impl LogData {
    /// Builds the data of a log from its bytes (tests).
    pub fn from_bytes(b: &[u8]) -> Self {
        Self {
            len: b.len(),
            word: B256::try_from(b).ok(),
        }
    }

    /// Length in bytes.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether the data is empty.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The data when it is exactly one 32-byte word.
    pub const fn word(&self) -> Option<B256> {
        self.word
    }
}

impl<'de> Deserialize<'de> for LogData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = LogData;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a hex string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<LogData, E> {
                let h = s.strip_prefix("0x").unwrap_or(s);
                if h.len() == 64 {
                    let mut w = [0u8; 32];
                    hex::decode_to_slice(h, &mut w).map_err(E::custom)?;
                    return Ok(LogData {
                        len: 32,
                        word: Some(B256::from(w)),
                    });
                }
                // Rare shapes (ERC-721 and malformed logs): checked, only the length is kept.
                let b = hex::decode(h).map_err(E::custom)?;
                Ok(LogData::from_bytes(&b))
            }
        }
        d.deserialize_str(V)
    }
}

/// The union of parity action fields.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParityAction {
    /// `call`, `delegatecall`, `staticcall`, `callcode` (calls only).
    pub call_type: Option<CallType>,
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
