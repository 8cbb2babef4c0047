//! The JSON-RPC response shapes paytrace reads, and nothing more.
//!
//! These are deliberately minimal: unknown fields are ignored so that old recordings, new
//! transaction types and client-specific extras all decode, and only the fields the decoder
//! needs are parsed (full blocks carry calldata we never look at).

use alloy_primitives::{Address, B256, U64, U256, hex};
use serde::{Deserialize, Deserializer, de};
use std::fmt;

/// Fast readers for the hex fields of the hot responses (traces and logs, tens of thousands per
/// range): addresses and hashes are read as raw string bytes (`deserialize_bytes`: no UTF-8
/// validation of strings that must be ASCII hex anyway, no detour through a generic visitor),
/// quantities with a fixed-width hex decode. They accept what alloy's and ruint's
/// deserializers accept for JSON strings (hex with or without `0x`; quantities also as decimal
/// strings and JSON numbers), and reject the rest with a message naming the value.
mod hexde {
    use super::{Address, B256, U256, fmt, hex};
    use serde::{Deserializer, de};

    /// A short, lossy rendering of a rejected value for error messages.
    fn shown(v: &[u8]) -> String {
        let s = String::from_utf8_lossy(&v[..v.len().min(80)]).into_owned();
        if v.len() > 80 { format!("{s}…") } else { s }
    }

    fn strip_0x(v: &[u8]) -> &[u8] {
        v.strip_prefix(b"0x")
            .or_else(|| v.strip_prefix(b"0X"))
            .unwrap_or(v)
    }

    /// `N` bytes from hex, with or without `0x`.
    pub(super) fn fixed<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
        let h = strip_0x(v);
        let mut out = [0u8; N];
        (h.len() == 2 * N && hex::decode_to_slice(h, &mut out).is_ok()).then_some(out)
    }

    /// A quantity: `0x` and up to 64 hex digits, or a decimal string (as ruint parses them).
    pub(super) fn quantity(v: &[u8]) -> Option<U256> {
        match v.strip_prefix(b"0x").or_else(|| v.strip_prefix(b"0X")) {
            Some(h) if !h.is_empty() && h.len() <= 64 => {
                let mut digits = [b'0'; 64];
                digits[64 - h.len()..].copy_from_slice(h);
                let mut out = [0u8; 32];
                hex::decode_to_slice(digits, &mut out).ok()?;
                Some(U256::from_be_bytes(out))
            }
            _ => std::str::from_utf8(v).ok()?.parse().ok(),
        }
    }

    struct Fixed<const N: usize>;

    impl<const N: usize> de::Visitor<'_> for Fixed<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{N} bytes as a hex string of length {}", 2 * N)
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<[u8; N], E> {
            fixed(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(&shown(v)), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<[u8; N], E> {
            self.visit_bytes(v.as_bytes())
        }
    }

    struct Quantity;

    impl de::Visitor<'_> for Quantity {
        type Value = U256;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a 256-bit quantity (0x-prefixed hex or decimal)")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<U256, E> {
            Ok(U256::from(v))
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<U256, E> {
            Ok(U256::from(v))
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<U256, E> {
            quantity(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(&shown(v)), &self))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<U256, E> {
            self.visit_bytes(v.as_bytes())
        }
    }

    /// An address read from hex bytes (so that `Option<A>` reads `null` too).
    pub(super) struct A(pub(super) Address);
    /// A 32-byte hash or word read from hex bytes.
    pub(super) struct H(pub(super) B256);
    /// A quantity (hex or decimal string, or a JSON number).
    pub(super) struct Q(pub(super) U256);

    impl<'de> de::Deserialize<'de> for A {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_bytes(Fixed::<20>)
                .map(|b| A(Address::from(b)))
        }
    }

    impl<'de> de::Deserialize<'de> for H {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_bytes(Fixed::<32>).map(|b| H(B256::from(b)))
        }
    }

    impl<'de> de::Deserialize<'de> for Q {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Quantity).map(Q)
        }
    }
}

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
#[derive(Clone, Debug)]
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
#[derive(Clone, Debug)]
pub struct ParityTrace {
    /// The action (shape depends on `type`).
    pub action: ParityAction,
    /// Result (`address` for creates).
    pub result: Option<ParityResult>,
    /// Error message when the frame failed (present only on failed frames).
    pub error: Option<String>,
    /// Path of sub-call indexes.
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
    pub kind: TraceKind,
}

/// The `type` of a parity trace, read without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceKind {
    /// A call of any call type.
    Call,
    /// A contract creation.
    Create,
    /// A self-destruct (`selfdestruct` in some clients).
    Suicide,
    /// A block or uncle reward (not a transfer).
    Reward,
    /// Any other type (read, never a transfer).
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
                        match seq.next_element::<hexde::H>()? {
                            Some(x) => *w = x.0,
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
                self.visit_bytes(s.as_bytes())
            }
            fn visit_bytes<E: de::Error>(self, s: &[u8]) -> Result<LogData, E> {
                let h = s.strip_prefix(b"0x").unwrap_or(s);
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
        d.deserialize_bytes(V)
    }
}

/// The union of parity action fields.
#[derive(Clone, Debug, Default)]
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
#[derive(Clone, Debug, Default)]
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

/// A map key read as raw bytes and sorted into one of a struct's fields (`Self::Other` for the
/// keys the struct ignores): no allocation and no UTF-8 check per key.
trait Keys: Sized {
    /// The field a key names.
    fn of(key: &[u8]) -> Self;
}

/// A map key read through [`Keys`].
struct KeyOf<K>(K);

impl<'de, K: Keys> Deserialize<'de> for KeyOf<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<K>(std::marker::PhantomData<K>);
        impl<K: Keys> de::Visitor<'_> for V<K> {
            type Value = KeyOf<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<KeyOf<K>, E> {
                Ok(KeyOf(K::of(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyOf<K>, E> {
                self.visit_bytes(v.as_bytes())
            }
        }
        d.deserialize_bytes(V(std::marker::PhantomData))
    }
}

/// Stores the value of a field seen for the first time (a repeated key is an error, as with
/// derived deserializers).
fn once<T, E: de::Error>(slot: &mut Option<T>, v: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(v);
    Ok(())
}

/// A unit-variant enum read from a string's raw bytes.
macro_rules! bytes_enum {
    ($ty:ident, $expecting:literal, |$v:ident| $body:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_bytes<E: de::Error>(self, $v: &[u8]) -> Result<$ty, E> {
                        Ok($body)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        self.visit_bytes(v.as_bytes())
                    }
                }
                d.deserialize_bytes(V)
            }
        }
    };
}

bytes_enum!(TraceKind, "a trace type", |v| match v {
    b"call" => TraceKind::Call,
    b"create" => TraceKind::Create,
    b"suicide" | b"selfdestruct" => TraceKind::Suicide,
    b"reward" => TraceKind::Reward,
    _ => TraceKind::Other,
});

bytes_enum!(CallType, "a call type", |v| match v {
    b"call" => CallType::Call,
    b"delegatecall" => CallType::Delegatecall,
    b"staticcall" => CallType::Staticcall,
    b"callcode" => CallType::Callcode,
    _ => CallType::Other,
});

/// Implements `Deserialize` for a struct read as a map (`$body` reads it from `$map`).
macro_rules! map_struct {
    ($ty:ident, $expecting:literal, |$map:ident| $body:block) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_map<M: de::MapAccess<'de>>(
                        self,
                        mut $map: M,
                    ) -> Result<$ty, M::Error> {
                        $body
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
}

enum LogKey {
    Address,
    Topics,
    Data,
    BlockNumber,
    BlockHash,
    TransactionHash,
    TransactionIndex,
    LogIndex,
    Removed,
    Other,
}

impl Keys for LogKey {
    fn of(k: &[u8]) -> Self {
        match k {
            b"address" => Self::Address,
            b"topics" => Self::Topics,
            b"data" => Self::Data,
            b"blockNumber" => Self::BlockNumber,
            b"blockHash" => Self::BlockHash,
            b"transactionHash" => Self::TransactionHash,
            b"transactionIndex" => Self::TransactionIndex,
            b"logIndex" => Self::LogIndex,
            b"removed" => Self::Removed,
            _ => Self::Other,
        }
    }
}

map_struct!(RpcLog, "a log object", |map| {
    let (mut address, mut topics, mut data) = (None, None, None);
    let (mut block_number, mut block_hash, mut transaction_hash) = (None, None, None);
    let (mut transaction_index, mut log_index, mut removed) = (None, None, None);
    while let Some(KeyOf(k)) = map.next_key::<KeyOf<LogKey>>()? {
        match k {
            LogKey::Address => once(&mut address, map.next_value::<hexde::A>()?.0, "address")?,
            LogKey::Topics => once(&mut topics, map.next_value::<Topics>()?, "topics")?,
            LogKey::Data => once(&mut data, map.next_value::<LogData>()?, "data")?,
            LogKey::BlockNumber => once(
                &mut block_number,
                map.next_value::<Option<U64>>()?,
                "blockNumber",
            )?,
            LogKey::BlockHash => once(
                &mut block_hash,
                map.next_value::<Option<hexde::H>>()?.map(|h| h.0),
                "blockHash",
            )?,
            LogKey::TransactionHash => once(
                &mut transaction_hash,
                map.next_value::<Option<hexde::H>>()?.map(|h| h.0),
                "transactionHash",
            )?,
            LogKey::TransactionIndex => once(
                &mut transaction_index,
                map.next_value::<Option<U64>>()?,
                "transactionIndex",
            )?,
            LogKey::LogIndex => once(&mut log_index, map.next_value::<Option<U64>>()?, "logIndex")?,
            LogKey::Removed => once(&mut removed, map.next_value::<bool>()?, "removed")?,
            LogKey::Other => {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
    }
    Ok(RpcLog {
        address: address.ok_or_else(|| de::Error::missing_field("address"))?,
        topics: topics.ok_or_else(|| de::Error::missing_field("topics"))?,
        data: data.ok_or_else(|| de::Error::missing_field("data"))?,
        block_number: block_number.flatten(),
        block_hash: block_hash.flatten(),
        transaction_hash: transaction_hash.flatten(),
        transaction_index: transaction_index.flatten(),
        log_index: log_index.flatten(),
        removed: removed.unwrap_or(false),
    })
});

enum TraceKey {
    Action,
    Result,
    Error,
    TraceAddress,
    TransactionHash,
    TransactionPosition,
    BlockHash,
    BlockNumber,
    Type,
    Other,
}

impl Keys for TraceKey {
    fn of(k: &[u8]) -> Self {
        match k {
            b"action" => Self::Action,
            b"result" => Self::Result,
            b"error" => Self::Error,
            b"traceAddress" => Self::TraceAddress,
            b"transactionHash" => Self::TransactionHash,
            b"transactionPosition" => Self::TransactionPosition,
            b"blockHash" => Self::BlockHash,
            b"blockNumber" => Self::BlockNumber,
            b"type" => Self::Type,
            _ => Self::Other,
        }
    }
}

map_struct!(ParityTrace, "a parity trace object", |map| {
    let (mut action, mut result, mut error) = (None, None, None);
    let (mut trace_address, mut transaction_hash, mut transaction_position) = (None, None, None);
    let (mut block_hash, mut block_number, mut kind) = (None, None, None);
    while let Some(KeyOf(k)) = map.next_key::<KeyOf<TraceKey>>()? {
        match k {
            TraceKey::Action => once(&mut action, map.next_value::<ParityAction>()?, "action")?,
            TraceKey::Result => once(
                &mut result,
                map.next_value::<Option<ParityResult>>()?,
                "result",
            )?,
            TraceKey::Error => once(&mut error, map.next_value::<Option<String>>()?, "error")?,
            TraceKey::TraceAddress => once(
                &mut trace_address,
                map.next_value::<Vec<u32>>()?,
                "traceAddress",
            )?,
            TraceKey::TransactionHash => once(
                &mut transaction_hash,
                map.next_value::<Option<hexde::H>>()?.map(|h| h.0),
                "transactionHash",
            )?,
            TraceKey::TransactionPosition => once(
                &mut transaction_position,
                map.next_value::<Option<u64>>()?,
                "transactionPosition",
            )?,
            TraceKey::BlockHash => once(
                &mut block_hash,
                map.next_value::<Option<hexde::H>>()?.map(|h| h.0),
                "blockHash",
            )?,
            TraceKey::BlockNumber => once(
                &mut block_number,
                map.next_value::<Option<u64>>()?,
                "blockNumber",
            )?,
            TraceKey::Type => once(&mut kind, map.next_value::<TraceKind>()?, "type")?,
            TraceKey::Other => {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
    }
    Ok(ParityTrace {
        action: action.ok_or_else(|| de::Error::missing_field("action"))?,
        result: result.flatten(),
        error: error.flatten(),
        trace_address: trace_address.unwrap_or_default(),
        transaction_hash: transaction_hash.flatten(),
        transaction_position: transaction_position.flatten(),
        block_hash: block_hash.flatten(),
        block_number: block_number.flatten(),
        kind: kind.ok_or_else(|| de::Error::missing_field("type"))?,
    })
});

enum ActionKey {
    CallType,
    From,
    To,
    Value,
    Address,
    RefundAddress,
    Balance,
    Other,
}

impl Keys for ActionKey {
    fn of(k: &[u8]) -> Self {
        match k {
            b"callType" => Self::CallType,
            b"from" => Self::From,
            b"to" => Self::To,
            b"value" => Self::Value,
            b"address" => Self::Address,
            b"refundAddress" => Self::RefundAddress,
            b"balance" => Self::Balance,
            _ => Self::Other,
        }
    }
}

map_struct!(ParityAction, "a parity action object", |map| {
    let (mut call_type, mut from, mut to, mut value) = (None, None, None, None);
    let (mut address, mut refund_address, mut balance) = (None, None, None);
    while let Some(KeyOf(k)) = map.next_key::<KeyOf<ActionKey>>()? {
        match k {
            ActionKey::CallType => once(
                &mut call_type,
                map.next_value::<Option<CallType>>()?,
                "callType",
            )?,
            ActionKey::From => once(
                &mut from,
                map.next_value::<Option<hexde::A>>()?.map(|a| a.0),
                "from",
            )?,
            ActionKey::To => once(
                &mut to,
                map.next_value::<Option<hexde::A>>()?.map(|a| a.0),
                "to",
            )?,
            ActionKey::Value => once(
                &mut value,
                map.next_value::<Option<hexde::Q>>()?.map(|q| q.0),
                "value",
            )?,
            ActionKey::Address => once(
                &mut address,
                map.next_value::<Option<hexde::A>>()?.map(|a| a.0),
                "address",
            )?,
            ActionKey::RefundAddress => once(
                &mut refund_address,
                map.next_value::<Option<hexde::A>>()?.map(|a| a.0),
                "refundAddress",
            )?,
            ActionKey::Balance => once(
                &mut balance,
                map.next_value::<Option<hexde::Q>>()?.map(|q| q.0),
                "balance",
            )?,
            ActionKey::Other => {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
    }
    Ok(ParityAction {
        call_type: call_type.flatten(),
        from: from.flatten(),
        to: to.flatten(),
        value: value.flatten(),
        address: address.flatten(),
        refund_address: refund_address.flatten(),
        balance: balance.flatten(),
    })
});

enum ResultKey {
    Address,
    Other,
}

impl Keys for ResultKey {
    fn of(k: &[u8]) -> Self {
        match k {
            b"address" => Self::Address,
            _ => Self::Other,
        }
    }
}

map_struct!(ParityResult, "a parity result object", |map| {
    let mut address = None;
    while let Some(KeyOf(k)) = map.next_key::<KeyOf<ResultKey>>()? {
        match k {
            ResultKey::Address => once(
                &mut address,
                map.next_value::<Option<hexde::A>>()?.map(|a| a.0),
                "address",
            )?,
            ResultKey::Other => {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
    }
    Ok(ParityResult {
        address: address.flatten(),
    })
});

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast readers agree with alloy's and ruint's deserializers on what they accept and
    /// on the values.
    #[test]
    fn hex_readers_agree_with_alloy_and_ruint() {
        let long = format!("0x{}", "f".repeat(64));
        let too_long = format!("0x1{}", "0".repeat(64));
        let quantities = [
            "0x0",
            "0x",
            "0x00",
            "0xabc",
            "0xABC",
            "0X1f",
            "123",
            "",
            "0xg",
            "00ff",
            " 0x1",
            "0x0000000000000000000000000000000000000000000000000000000000000001",
            &long,
            &too_long,
            "-1",
            "1e3",
        ];
        for q in quantities {
            let json = serde_json::to_string(q).unwrap();
            let old = serde_json::from_str::<U256>(&json).ok();
            let new = serde_json::from_str::<hexde::Q>(&json).ok().map(|q| q.0);
            assert_eq!(old, new, "quantity {q:?}");
        }
        for n in [
            "0",
            "17",
            "18446744073709551615",
            "340282366920938463463374607431768211455",
        ] {
            let old = serde_json::from_str::<U256>(n).ok();
            let new = serde_json::from_str::<hexde::Q>(n).ok().map(|q| q.0);
            assert_eq!(old, new, "number {n}");
        }
        let addr = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
        let hash = "0x4dd588e326395b531727a1bfcf5d24fbff72bac3da1ce727e389c2786ff8fd8f";
        for h in [
            addr,
            &addr[2..],
            &addr.to_uppercase().replace("0X", "0x"),
            hash,
            &hash[..65],
            "0x",
            "",
            "0xzz",
        ] {
            let json = serde_json::to_string(h).unwrap();
            let old = serde_json::from_str::<Address>(&json).ok();
            let new = serde_json::from_str::<hexde::A>(&json).ok().map(|a| a.0);
            assert_eq!(old, new, "address {h:?}");
            let old = serde_json::from_str::<B256>(&json).ok();
            let new = serde_json::from_str::<hexde::H>(&json).ok().map(|h| h.0);
            assert_eq!(old, new, "hash {h:?}");
        }
    }

    #[test]
    fn traces_and_logs_read_known_fields_and_skip_the_rest() {
        let t: ParityTrace = serde_json::from_str(
            r#"{"action":{"from":"0x8464135c8f25da09e49bc8782676a84730c318bc","callType":"delegatecall",
                "gas":"0xa7b5e6","input":"0x\u0041","to":"0x7ffe8f33e53e849c3ddb5c7aeccd7825f87bb7da",
                "value":"0x31bbb","extra":{"nested":[1,2,{"a":null}]}},
               "blockHash":"0x4dd588e326395b531727a1bfcf5d24fbff72bac3da1ce727e389c2786ff8fd8f",
               "blockNumber":10,"result":{"gasUsed":"0x0","output":"0x"},"subtraces":0,
               "traceAddress":[0,3],"transactionHash":null,"transactionPosition":2,
               "type":"selfdestruct","error":"Reverted"}"#,
        )
        .unwrap();
        assert_eq!(t.kind, TraceKind::Suicide);
        assert_eq!(t.action.call_type, Some(CallType::Delegatecall));
        assert_eq!(t.action.value, Some(U256::from(0x31bbb)));
        assert_eq!(t.trace_address, vec![0, 3]);
        assert_eq!(t.transaction_hash, None);
        assert_eq!(t.transaction_position, Some(2));
        assert_eq!(t.block_number, Some(10));
        assert_eq!(t.error.as_deref(), Some("Reverted"));
        assert!(t.result.is_some_and(|r| r.address.is_none()));
        let unknown: ParityTrace =
            serde_json::from_str(r#"{"action":{},"type":"staticcall2"}"#).unwrap();
        assert_eq!(unknown.kind, TraceKind::Other);
        assert!(unknown.trace_address.is_empty());
        for bad in [
            r#"{"type":"call"}"#,
            r#"{"action":{},"type":"call","type":"call"}"#,
            r#"{"action":{"from":"0x12"},"type":"call"}"#,
            r#"{"action":{"value":"0xzz"},"type":"call"}"#,
            r#"{"action":{},"type":"call","traceAddress":null}"#,
        ] {
            assert!(serde_json::from_str::<ParityTrace>(bad).is_err(), "{bad}");
        }
        let l: RpcLog = serde_json::from_str(
            r#"{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3",
                "topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"],
                "data":"0x","blockNumber":"0xa","logIndex":null,"removed":true,"other":"x"}"#,
        )
        .unwrap();
        assert_eq!(l.topics.len(), 1);
        assert!(l.data.is_empty());
        assert_eq!(l.block_number, Some(U64::from(10)));
        assert_eq!(l.log_index, None);
        assert!(l.removed);
        for bad in [
            r#"{"topics":[],"data":"0x"}"#,
            r#"{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":[]}"#,
            r#"{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["0x1"],"data":"0x"}"#,
        ] {
            assert!(serde_json::from_str::<RpcLog>(bad).is_err(), "{bad}");
        }
    }
}
