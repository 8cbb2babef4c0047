//! Transfers: one movement of one asset from one address to another.

use super::{Address, Amount};
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Dense store-assigned identifier of a configured chain (see `Store::chain_id`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct ChainId(pub u16);

/// A block height.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BlockNumber(pub u64);

impl BlockNumber {
    /// The next block, or `None` at `u64::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for BlockNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Seconds since the Unix epoch (block time).
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

/// A transaction hash (EVM) or txid (Bitcoin, in RPC byte order).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TxHash(pub B256);

impl fmt::Display for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Debug for TxHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A block as the sync loop remembers it: enough to detect a reorg by parent hash.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockRef {
    /// Height.
    pub number: BlockNumber,
    /// Block hash.
    pub hash: B256,
    /// Parent block hash.
    pub parent: B256,
    /// Block time.
    pub time: Timestamp,
}

/// What moved: the chain's native coin or a token contract.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum Asset {
    /// ETH on Ethereum, BTC on Bitcoin.
    Native,
    /// A token contract (ERC-20).
    Token(Address),
}

impl fmt::Display for Asset {
    /// `native` or the token contract address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Native => f.write_str("native"),
            Self::Token(a) => fmt::Display::fmt(a, f),
        }
    }
}

/// How value moved.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum TransferKind {
    /// The value of a successful top-level transaction.
    Native = 0,
    /// Value moved by a call inside a transaction (from traces).
    Internal = 1,
    /// An ERC-20 `Transfer` event.
    Token = 2,
    /// A Bitcoin-style value movement through a transaction node: an input (input address →
    /// [`Address::Tx`](crate::model::Address::Tx), position = input index) or an output
    /// (`Tx` → output address, position = [`UTXO_OUTPUT_BASE`] + output index).
    Utxo = 3,
}

impl TransferKind {
    /// All kinds, in canonical order.
    pub const ALL: [Self; 4] = [Self::Native, Self::Internal, Self::Token, Self::Utxo];

    /// The stable lower-case name used in JSON and the CLI.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Internal => "internal",
            Self::Token => "token",
            Self::Utxo => "utxo",
        }
    }

    /// Inverse of `self as u8`.
    pub const fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Native),
            1 => Some(Self::Internal),
            2 => Some(Self::Token),
            3 => Some(Self::Utxo),
            _ => None,
        }
    }
}

impl fmt::Display for TransferKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Position offset of a transaction's outputs among its UTXO transfers: inputs take positions
/// `0..n_inputs`, outputs `UTXO_OUTPUT_BASE + vout`, so every input of a transaction is ordered
/// before every output and a transaction node is always credited before it is debited.
pub const UTXO_OUTPUT_BASE: u32 = 1 << 31;

/// The unique, canonically ordered identity of a transfer within its chain.
///
/// Order: block, transaction index, kind (native before internal before token), position
/// (0 for native; the trace ordinal in depth-first call order for internal; the block-level
/// log index for token; the input index or [`UTXO_OUTPUT_BASE`] + output index for UTXO). This is the event order the tracer uses.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TransferKey {
    /// Chain.
    pub chain: ChainId,
    /// Block height.
    pub block: BlockNumber,
    /// Transaction index in the block.
    pub tx_index: u32,
    /// Kind.
    pub kind: TransferKind,
    /// Position inside the transaction (see the type's docs).
    pub position: u32,
}

impl TransferKey {
    /// Length of [`TransferKey::to_bytes`].
    pub const LEN: usize = 2 + 8 + 4 + 1 + 4;

    /// Big-endian encoding whose byte order equals the canonical order.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        b[0..2].copy_from_slice(&self.chain.0.to_be_bytes());
        b[2..10].copy_from_slice(&self.block.0.to_be_bytes());
        b[10..14].copy_from_slice(&self.tx_index.to_be_bytes());
        b[14] = self.kind as u8;
        b[15..19].copy_from_slice(&self.position.to_be_bytes());
        b
    }

    /// Inverse of [`TransferKey::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != Self::LEN {
            return None;
        }
        Some(Self {
            chain: ChainId(u16::from_be_bytes(b[0..2].try_into().ok()?)),
            block: BlockNumber(u64::from_be_bytes(b[2..10].try_into().ok()?)),
            tx_index: u32::from_be_bytes(b[10..14].try_into().ok()?),
            kind: TransferKind::from_u8(b[14])?,
            position: u32::from_be_bytes(b[15..19].try_into().ok()?),
        })
    }
}

/// One movement of value.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Transfer {
    /// Identity and canonical order.
    pub key: TransferKey,
    /// Block time.
    pub time: Timestamp,
    /// Transaction hash.
    pub tx_hash: TxHash,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Address,
    /// What moved.
    pub asset: Asset,
    /// How much, in raw units.
    pub amount: Amount,
    /// For internal transfers: the call's trace address (path of sub-call indexes).
    pub trace_address: Vec<u32>,
}

impl Transfer {
    /// The kind.
    pub fn kind(&self) -> TransferKind {
        self.key.kind
    }

    /// The block.
    pub fn block(&self) -> BlockNumber {
        self.key.block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bytes_order_matches_canonical_order() {
        let k = |block, tx, kind, pos| TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: tx,
            kind,
            position: pos,
        };
        let mut keys = vec![
            k(2, 0, TransferKind::Native, 0),
            k(1, 5, TransferKind::Token, 3),
            k(1, 5, TransferKind::Internal, 9),
            k(1, 0, TransferKind::Token, 1),
            k(300, 1, TransferKind::Native, 0),
        ];
        let mut by_bytes = keys.clone();
        keys.sort();
        by_bytes.sort_by_key(TransferKey::to_bytes);
        assert_eq!(keys, by_bytes);
        for key in keys {
            assert_eq!(TransferKey::from_bytes(&key.to_bytes()), Some(key));
        }
    }

    #[test]
    fn transfer_postcard_roundtrip() {
        let t = Transfer {
            key: TransferKey {
                chain: ChainId(3),
                block: BlockNumber(17),
                tx_index: 2,
                kind: TransferKind::Internal,
                position: 4,
            },
            time: Timestamp(1_700_000_000),
            tx_hash: TxHash(B256::repeat_byte(0xab)),
            from: Address::Evm([1; 20]),
            to: Address::Evm([2; 20]),
            asset: Asset::Native,
            amount: Amount::from_u64(10),
            trace_address: vec![0, 1],
        };
        let b = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Transfer>(&b).unwrap(), t);
    }
}
