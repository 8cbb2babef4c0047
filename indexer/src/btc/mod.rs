//! Bitcoin: blk*.dat files, Bitcoin Core JSON-RPC and Esplora sources, the UTXO set in the
//! store, and a sync with checkpoints and reorgs.
//!
//! Model (see docs/bitcoin.md): a transaction is a node `Address::Tx(txid)`; every resolved
//! input is a [`TransferKind::Utxo`](crate::model::TransferKind::Utxo) transfer input address →
//! tx node (position = input index, amount = prevout value) and every output with a value is a
//! transfer tx node → output address (position = `UTXO_OUTPUT_BASE + vout`). The fee is what
//! stays at the tx node. The coinbase is credited by a transfer from the synthetic
//! [`script::coinbase_source`]; OP_RETURN values go to the synthetic [`script::burn_sink`].

pub mod address;
pub mod blk;
pub mod decode;
pub mod esplora;
pub mod generate;
#[cfg(any(test, feature = "test-utils"))]
pub mod mock;
pub mod rpc;
pub mod script;
pub mod sync;
pub mod utxo;

use crate::{evm::RpcError, store::StoreError};
use std::path::PathBuf;

pub use decode::{DecodedBlock, DecodedOutput, DecodedTx};
pub use script::ScriptKind;
pub use sync::{BtcSource, BtcSummary, BtcSync};
pub use utxo::{RangeStats, TxMeta, UtxoStore};

/// Why a Bitcoin source or the Bitcoin indexer failed.
#[derive(Debug, thiserror::Error)]
pub enum BtcError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A directory holds no `blk*.dat` file.
    #[error("{}: no blk*.dat files", dir.display())]
    NoBlkFiles {
        /// The directory.
        dir: PathBuf,
    },
    /// `xor.dat` is not 8 bytes.
    #[error("{}: xor key must be 8 bytes, found {len}", path.display())]
    BadXorKey {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// A record does not start with the network magic.
    #[error("{} offset {offset}: wrong magic {found} (expected {expected}; wrong network, or a corrupt or obfuscated file without its xor.dat?)", file.display())]
    WrongMagic {
        /// The file.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// Bytes found (hex).
        found: String,
        /// Magic expected (hex).
        expected: String,
    },
    /// A blk file holds no block at all (zero bytes, or only zero padding).
    #[error("{}: empty blk file: no block in its {bytes} bytes (a blk file holds at least one block: truncated, or still being copied?); remove it or pass the complete file", file.display())]
    EmptyBlkFile {
        /// The file.
        file: PathBuf,
        /// Its length in bytes.
        bytes: u64,
    },
    /// A record runs past the end of its file.
    #[error("{} offset {offset}: truncated record: {message}", file.display())]
    Truncated {
        /// The file.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// Details.
        message: String,
    },
    /// Bytes that do not decode as a block or transaction.
    #[error("{what}: cannot decode: {message}")]
    Decode {
        /// Where (file and offset, or block).
        what: String,
        /// Details.
        message: String,
    },
    /// The height of the first block cannot be known.
    #[error(
        "cannot tell the height of block {hash} (no BIP34 height, parent unknown): pass --start-height"
    )]
    UnknownStartHeight {
        /// The block.
        hash: String,
    },
    /// A count does not fit the store's key layout.
    #[error("{what}: too many transactions, inputs or outputs for the key layout")]
    TooLarge {
        /// Where.
        what: String,
    },
    /// A reorg reaches a block whose undo data is gone.
    #[error("no undo data for block {block}: the reorg is deeper than the kept window")]
    NoUndo {
        /// The block.
        block: u64,
    },
    /// A JSON-RPC call failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// An HTTP (Esplora) request failed.
    #[error("{url}: {message}")]
    Http {
        /// The URL (redacted).
        url: String,
        /// Details.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
    /// A node answered something that is not what was asked.
    #[error("{what}: malformed answer: {message}")]
    Malformed {
        /// What was asked.
        what: String,
        /// Details.
        message: String,
    },
    /// The node has no block at a height.
    #[error("the node has no block at height {height}")]
    MissingBlock {
        /// The height.
        height: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BtcError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rpc(e) => e.is_retryable(),
            Self::Http { retryable, .. } => *retryable,
            Self::Store(e) => e.is_retryable(),
            Self::MissingBlock { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_esplora;
#[cfg(test)]
mod tests_rpc;
