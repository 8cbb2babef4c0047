//! Test support (feature `test-utils`): a real anvil node, a small JSON-RPC client for driving
//! it, the compiled test contracts, a deterministic chain generator that knows which
//! transfers the indexer must find, and a fault-injecting JSON-RPC proxy.
//!
//! Tests need the anvil binary: run `scripts/install-anvil` once (it installs the pinned
//! version into `<workspace>/.tools/anvil`), or point `PAYTRACE_ANVIL` at a binary. A missing
//! binary is an error, never a skipped test.

mod abi;
mod anvil;
mod contracts;
mod fault_proxy;
mod generator;
mod rpc;

pub use abi::{AbiValue, encode_call, encode_values, selector};
pub use anvil::{ANVIL_ENV, Anvil, AnvilBuilder, anvil_binary, workspace_root};
pub use contracts::{Artifacts, Contract};
pub use fault_proxy::{FailCalls, Fault, FaultProxy, Faults, Seen};
pub use generator::{BulkOptions, ChainGenerator, Deployed, TxSpec};
pub use rpc::{Block, BlockTx, Log, Receipt, Rpc, TxRequest};

use std::path::PathBuf;

/// Failures of the test support code.
///
/// `Debug` prints the message, so that `unwrap()` in a test shows the advice (e.g. to run
/// `scripts/install-anvil`).
#[derive(thiserror::Error)]
pub enum TestUtilError {
    /// The anvil binary is not installed.
    #[error(
        "anvil binary not found at {path}: run scripts/install-anvil (or set PAYTRACE_ANVIL to an anvil binary)"
    )]
    AnvilMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The anvil process could not be started.
    #[error("starting anvil {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anvil exited before it answered.
    #[error("anvil exited during startup ({status}); arguments: {args:?}")]
    Exited {
        /// Exit status.
        status: std::process::ExitStatus,
        /// The arguments it was started with.
        args: Vec<String>,
    },
    /// Anvil did not answer in time.
    #[error("anvil did not answer on {url} within {secs} s")]
    StartTimeout {
        /// Its RPC URL.
        url: String,
        /// How long we waited.
        secs: u64,
    },
    /// The HTTP request failed.
    #[error("JSON-RPC {method}: transport error: {source}")]
    Http {
        /// The RPC method.
        method: String,
        /// The HTTP error.
        source: reqwest::Error,
    },
    /// The node answered with a JSON-RPC error.
    #[error("JSON-RPC {method}: error {code}: {message}")]
    Rpc {
        /// The RPC method.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// Error message.
        message: String,
    },
    /// The node's answer had an unexpected shape.
    #[error("JSON-RPC {method}: unexpected response: {detail}")]
    Decode {
        /// The RPC method.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// The compiled contract artifacts are unreadable.
    #[error("contract artifacts: {0}")]
    Artifacts(String),
    /// The chain did not behave as the generator planned.
    #[error("chain generator: {0}")]
    Generator(String),
    /// The fault proxy could not start.
    #[error("fault proxy: {0}")]
    Proxy(#[source] std::io::Error),
}

impl std::fmt::Debug for TestUtilError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Result alias of the test support code.
pub type Result<T, E = TestUtilError> = std::result::Result<T, E>;
