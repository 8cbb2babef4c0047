//! Builders for hand-made transfer graphs.
#![allow(dead_code, clippy::unwrap_used)]

use alloy_primitives::B256;
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind,
    TxHash,
};

/// Address number `n`.
pub fn addr(n: u8) -> Address {
    Address::Evm([n; 20])
}

/// Amount.
pub fn amt(v: u64) -> Amount {
    Amount::from_u64(v)
}

/// A native transfer in `block`, transaction `tx`, time `block * 10`.
pub fn tr(block: u64, tx: u32, from: u8, to: u8, amount: u64) -> Transfer {
    trk(block, tx, TransferKind::Native, 0, from, to, amount)
}

/// A transfer with full control of the key.
pub fn trk(
    block: u64,
    tx: u32,
    kind: TransferKind,
    position: u32,
    from: u8,
    to: u8,
    amount: u64,
) -> Transfer {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    h[8..12].copy_from_slice(&tx.to_be_bytes());
    Transfer {
        key: TransferKey {
            chain: ChainId(1),
            block: BlockNumber(block),
            tx_index: tx,
            kind,
            position,
        },
        time: Timestamp(block * 10),
        tx_hash: TxHash(B256::from(h)),
        from: addr(from),
        to: addr(to),
        asset: Asset::Native,
        amount: amt(amount),
        trace_address: vec![],
    }
}
