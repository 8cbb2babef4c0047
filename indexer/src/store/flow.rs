//! The covering value of the address indexes (`addr_out`, `addr_in`, schema version 2).
//!
//! An index entry's key already holds the indexed address and the [`TransferKey`]; its value
//! holds the rest of the transfer, so that reading an address's history is one range scan with
//! no point read per transfer (the tracer's hot path). The encoding is hand-rolled and compact:
//!
//! | field          | bytes                                                          |
//! |----------------|----------------------------------------------------------------|
//! | counterparty   | address key (tag + 20 or 32 bytes)                             |
//! | time           | LEB128 varint (seconds)                                        |
//! | tx hash        | 32                                                             |
//! | asset          | `0` (native) or `1` + address key of the token contract        |
//! | amount         | length byte (0..=32) + big-endian bytes without leading zeros  |
//! | trace address  | LEB128 count + LEB128 each (internal transfers; usually `0`)   |

use crate::model::{Address, Amount, Asset, Timestamp, Transfer, TransferKey, TxHash};
use alloy_primitives::B256;

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let low = u8::try_from(v & 0x7f).unwrap_or(0);
        v >>= 7;
        if v == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Appends the covering value of `t` for the index of `own` (its sender for `addr_out`, its
/// receiver for `addr_in`): everything but the key and `own`.
pub(super) fn encode(out: &mut Vec<u8>, t: &Transfer, outgoing: bool) {
    let other = if outgoing { &t.to } else { &t.from };
    other.write_key(out);
    put_varint(out, t.time.0);
    out.extend_from_slice(t.tx_hash.0.as_slice());
    put_value_tail(out, t);
}

/// Appends `t`'s asset, amount (its significant big-endian bytes after their count) and trace
/// address: the tail shared by the covering index values and the transaction rows (`txrow.rs`).
pub(super) fn put_value_tail(out: &mut Vec<u8>, t: &Transfer) {
    match &t.asset {
        Asset::Native => out.push(0),
        Asset::Token(a) => {
            out.push(1);
            a.write_key(out);
        }
    }
    let amount: [u8; 32] = t.amount.raw().to_be_bytes();
    let first = amount.iter().position(|&x| x != 0).unwrap_or(32);
    out.push(u8::try_from(32 - first).unwrap_or(32));
    out.extend_from_slice(&amount[first..]);
    put_varint(out, u64::try_from(t.trace_address.len()).unwrap_or(0));
    for x in &t.trace_address {
        put_varint(out, u64::from(*x));
    }
}

/// A cursor over an encoded value.
pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (h, t) = self.b.split_at_checked(n)?;
        self.b = t;
        Some(h)
    }

    pub(super) fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    pub(super) fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    /// Reads what [`put_value_tail`] wrote: asset, amount and trace address.
    pub(super) fn value_tail(&mut self) -> Option<(Asset, Amount, Vec<u32>)> {
        let asset = match self.byte()? {
            0 => Asset::Native,
            1 => Asset::Token(self.address()?),
            _ => return None,
        };
        let n = usize::from(self.byte()?);
        let amount = Amount::from_be_slice(self.take(n)?)?;
        let count = usize::try_from(self.varint()?).ok()?;
        let mut trace_address = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            trace_address.push(u32::try_from(self.varint()?).ok()?);
        }
        Some((asset, amount, trace_address))
    }

    pub(super) fn address(&mut self) -> Option<Address> {
        let (a, n) = Address::read_key(self.b)?;
        self.take(n)?;
        Some(a)
    }
}

/// Rebuilds the transfer of index entry (`own`, `key`) from its covering value; `None` when the
/// value is malformed.
pub(super) fn decode(own: Address, key: TransferKey, outgoing: bool, v: &[u8]) -> Option<Transfer> {
    let mut r = Reader { b: v };
    let other = r.address()?;
    let time = Timestamp(r.varint()?);
    let tx_hash = TxHash(B256::from_slice(r.take(32)?));
    let (asset, amount, trace_address) = r.value_tail()?;
    if !r.b.is_empty() {
        return None;
    }
    let (from, to) = if outgoing { (own, other) } else { (other, own) };
    Some(Transfer {
        key,
        time,
        tx_hash,
        from,
        to,
        asset,
        amount,
        trace_address,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BlockNumber, ChainId, TransferKind};

    #[test]
    fn round_trips_and_rejects_garbage() {
        let t = Transfer {
            key: TransferKey {
                chain: ChainId(3),
                block: BlockNumber(1 << 40),
                tx_index: 7,
                kind: TransferKind::Internal,
                position: 300,
            },
            time: Timestamp(1_700_000_000),
            tx_hash: TxHash(B256::repeat_byte(0xab)),
            from: Address::Evm([1; 20]),
            to: Address::Script([2; 32]),
            asset: Asset::Token(Address::Evm([9; 20])),
            amount: Amount::from_raw(alloy_primitives::U256::MAX),
            trace_address: vec![0, 200, 70_000],
        };
        for outgoing in [true, false] {
            let mut v = Vec::new();
            encode(&mut v, &t, outgoing);
            let own = if outgoing { t.from } else { t.to };
            assert_eq!(decode(own, t.key, outgoing, &v), Some(t.clone()));
            assert_eq!(decode(own, t.key, outgoing, &v[..v.len() - 1]), None);
            let mut longer = v.clone();
            longer.push(0);
            assert_eq!(decode(own, t.key, outgoing, &longer), None);
        }
        let mut small = t.clone();
        small.asset = Asset::Native;
        small.amount = Amount::ZERO;
        small.trace_address.clear();
        let mut v = Vec::new();
        encode(&mut v, &small, true);
        // counterparty 33 + time 5 + hash 32 + asset 1 + amount 1 + trace 1
        assert_eq!(v.len(), 73);
        assert_eq!(decode(small.from, small.key, true, &v), Some(small));
    }
}
