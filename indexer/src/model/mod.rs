//! The chain-agnostic data model: chains, addresses, assets, exact amounts and transfers.

mod address;
mod amount;
mod transfer;

pub use address::{Address, AddressParseError};
pub use amount::{Amount, AmountError};
pub use transfer::{
    Asset, BlockNumber, BlockRef, ChainId, Timestamp, Transfer, TransferKey, TransferKind, TxHash,
    UTXO_OUTPUT_BASE,
};
