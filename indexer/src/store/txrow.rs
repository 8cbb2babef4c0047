//! The rows of the `transfers` keyspace (schema version 4): one row per transaction.
//!
//! The key is the first 14 bytes of the transfers' [`TransferKey`] (chain, block, transaction
//! index), so rows sort in canonical order and a block range is still one range scan. The value
//! is a count, then each transfer in canonical order; the hash and time are written only when
//! they differ from the previous transfer's (always for the first). A slot normally holds one
//! transaction, but imports without transaction indexes (`import transfers`) put a whole block
//! at index 0, so several hashes per row are allowed:
//!
//! | field          | bytes                                                          |
//! |----------------|----------------------------------------------------------------|
//! | count          | LEB128 varint                                                  |
//! | per transfer:  |                                                                |
//! | flags          | 1: bit 0 = a tx hash follows, bit 1 = a time follows           |
//! | tx hash        | 32 (when flagged)                                              |
//! | time           | LEB128 varint, seconds (when flagged)                          |
//! | kind           | 1 ([`TransferKind`] as u8)                                     |
//! | position       | LEB128 varint                                                  |
//! | from, to       | address key each (tag + 20 or 32 bytes)                        |
//! | asset          | `0` (native) or `1` + address key of the token contract        |
//! | amount         | length byte (0..=32) + big-endian bytes without leading zeros  |
//! | trace address  | LEB128 count + LEB128 each                                     |
//!
//! One row per transaction instead of one per transfer: a token batch or a Bitcoin transaction
//! with several inputs and outputs is one storage-engine entry, and its hash and time are stored
//! once (see docs/decisions.md).

use super::flow::{Reader, put_value_tail, put_varint};
use crate::model::{BlockNumber, ChainId, Timestamp, Transfer, TransferKey, TransferKind, TxHash};
use alloy_primitives::B256;

/// Length of a row key.
pub(super) const KEY_LEN: usize = 14;

/// The row key of the transaction holding `key`.
pub(super) fn row_key(key: &TransferKey) -> [u8; KEY_LEN] {
    let b = key.to_bytes();
    let mut k = [0u8; KEY_LEN];
    k.copy_from_slice(&b[..KEY_LEN]);
    k
}

/// The first row key of block `block` of `chain`.
pub(super) fn block_start(chain: ChainId, block: BlockNumber) -> [u8; KEY_LEN] {
    row_key(&TransferKey {
        chain,
        block,
        tx_index: 0,
        kind: TransferKind::Native,
        position: 0,
    })
}

const HASH_FOLLOWS: u8 = 1;
const TIME_FOLLOWS: u8 = 2;

/// Appends the row value of `ts`, the transfers of one row key in canonical order.
pub(super) fn encode(out: &mut Vec<u8>, ts: &[&Transfer]) {
    put_varint(out, u64::try_from(ts.len()).unwrap_or(0));
    let mut prev: Option<(TxHash, Timestamp)> = None;
    for t in ts {
        let new_hash = prev.is_none_or(|(h, _)| h != t.tx_hash);
        let new_time = prev.is_none_or(|(_, time)| time != t.time);
        prev = Some((t.tx_hash, t.time));
        out.push(if new_hash { HASH_FOLLOWS } else { 0 } | if new_time { TIME_FOLLOWS } else { 0 });
        if new_hash {
            out.extend_from_slice(t.tx_hash.0.as_slice());
        }
        if new_time {
            put_varint(out, t.time.0);
        }
        out.push(t.key.kind as u8);
        put_varint(out, u64::from(t.key.position));
        t.from.write_key(out);
        t.to.write_key(out);
        put_value_tail(out, t);
    }
}

/// The transfers of row (`key`, `v`), in stored (canonical) order; `None` when malformed.
pub(super) fn decode(key: &[u8], v: &[u8]) -> Option<Vec<Transfer>> {
    let k: &[u8; KEY_LEN] = key.try_into().ok()?;
    let chain = ChainId(u16::from_be_bytes([k[0], k[1]]));
    let block = BlockNumber(u64::from_be_bytes(k[2..10].try_into().ok()?));
    let tx_index = u32::from_be_bytes(k[10..14].try_into().ok()?);
    let mut r = Reader { b: v };
    let count = usize::try_from(r.varint()?).ok()?;
    // Each transfer takes at least 47 bytes: a corrupt count cannot reserve much.
    let mut out: Vec<Transfer> = Vec::with_capacity(count.min(r.b.len() / 47 + 1));
    for _ in 0..count {
        let flags = r.byte()?;
        if flags & !(HASH_FOLLOWS | TIME_FOLLOWS) != 0 {
            return None;
        }
        let tx_hash = match (flags & HASH_FOLLOWS != 0, out.last()) {
            (true, _) => TxHash(B256::from_slice(r.take(32)?)),
            (false, Some(p)) => p.tx_hash,
            (false, None) => return None,
        };
        let time = match (flags & TIME_FOLLOWS != 0, out.last()) {
            (true, _) => Timestamp(r.varint()?),
            (false, Some(p)) => p.time,
            (false, None) => return None,
        };
        let kind = TransferKind::from_u8(r.byte()?)?;
        let position = u32::try_from(r.varint()?).ok()?;
        let from = r.address()?;
        let to = r.address()?;
        let (asset, amount, trace_address) = r.value_tail()?;
        out.push(Transfer {
            key: TransferKey {
                chain,
                block,
                tx_index,
                kind,
                position,
            },
            time,
            tx_hash,
            from,
            to,
            asset,
            amount,
            trace_address,
        });
    }
    r.b.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Address, Amount, Asset};
    use alloy_primitives::U256;

    fn transfer(kind: TransferKind, position: u32) -> Transfer {
        Transfer {
            key: TransferKey {
                chain: ChainId(3),
                block: BlockNumber(1 << 40),
                tx_index: 7,
                kind,
                position,
            },
            time: Timestamp(1_700_000_000),
            tx_hash: TxHash(B256::repeat_byte(0xab)),
            from: Address::Evm([1; 20]),
            to: Address::Script([2; 32]),
            asset: Asset::Native,
            amount: Amount::from_u64(5),
            trace_address: Vec::new(),
        }
    }

    #[test]
    fn rows_round_trip_and_reject_garbage() {
        let mut a = transfer(TransferKind::Native, 0);
        a.amount = Amount::ZERO;
        let mut b = transfer(TransferKind::Internal, 300);
        b.trace_address = vec![0, 200, 70_000];
        b.to = Address::Tx([4; 32]);
        let mut c = transfer(TransferKind::Token, u32::MAX);
        c.asset = Asset::Token(Address::Evm([9; 20]));
        c.amount = Amount::from_raw(U256::MAX);
        c.tx_hash = TxHash(B256::repeat_byte(0xcd));
        c.time = Timestamp(5);
        let mut d = transfer(TransferKind::Token, u32::MAX);
        d.key.position = 1;
        let mut ts = vec![a, b, c, d];
        ts.sort_by_key(|t| t.key);
        let mut v = Vec::new();
        encode(&mut v, &ts.iter().collect::<Vec<_>>());
        let key = row_key(&ts[0].key);
        assert_eq!(decode(&key, &v), Some(ts.clone()));
        assert_eq!(decode(&key, &v[..v.len() - 1]), None);
        let mut longer = v.clone();
        longer.push(0);
        assert_eq!(decode(&key, &longer), None);
        assert_eq!(decode(&key[..13], &v), None);
        assert!(row_key(&ts[0].key) < block_start(ChainId(3), BlockNumber((1 << 40) + 1)));
    }
}
