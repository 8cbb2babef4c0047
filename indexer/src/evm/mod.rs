//! EVM chains over JSON-RPC: response types, pure decoding, the RPC client and the source
//! that fetches a block range.

pub mod decode;
pub mod rpc;
pub mod source;
pub mod tokens;
pub mod types;

pub use decode::{DecodeError, DecodeStats, TRANSFER_TOPIC};
pub use rpc::{RpcClient, RpcConfig, RpcError};
pub use source::{EvmSource, FetchedRange, SourceError, TraceMode, resolve_trace_mode};
