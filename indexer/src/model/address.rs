//! Addresses of every chain paytrace indexes, in one compact `Copy` type.

use alloy_primitives::hex;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, str::FromStr};

/// An address on some chain.
///
/// The derived order is the byte order of the key encodings ([`Address::write_key`]: the tag
/// bytes ascend with the variants, and each variant has one length), which the store relies on
/// to order index keys without building them.
///
/// EVM addresses are the 20 account bytes. Bitcoin outputs are identified by the SHA-256 of their
/// output script (`Script`), so that every script type, standard or not, has a fixed-size identity
/// that is cheap to index; the readable form lives beside it in the store.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    /// A 20-byte EVM account (also Tron, whose base58 form maps onto the same bytes).
    Evm([u8; 20]),
    /// The SHA-256 of a Bitcoin-style output script.
    Script([u8; 32]),
    /// A Bitcoin-style transaction node (its txid, in internal byte order): value flows
    /// input address → `Tx` → output address, so the tracer can follow UTXO value exactly.
    /// See [`crate::model::UTXO_OUTPUT_BASE`] for the positions of the two sides.
    Tx([u8; 32]),
}

/// Tag bytes used in store keys; part of the on-disk format.
const TAG_EVM: u8 = 0x01;
const TAG_SCRIPT: u8 = 0x02;
const TAG_TX: u8 = 0x03;

impl Address {
    /// The zero EVM address (mints and burns of tokens).
    pub const ZERO_EVM: Self = Self::Evm([0; 20]);

    /// Builds an EVM address from alloy's type.
    pub const fn evm(addr: alloy_primitives::Address) -> Self {
        Self::Evm(addr.into_array())
    }

    /// The EVM address, if this is one.
    pub fn as_evm(&self) -> Option<alloy_primitives::Address> {
        match self {
            Self::Evm(b) => Some(alloy_primitives::Address::from(*b)),
            Self::Script(_) | Self::Tx(_) => None,
        }
    }

    /// Whether this is a transaction node rather than a holder of value.
    pub const fn is_tx(&self) -> bool {
        matches!(self, Self::Tx(_))
    }

    /// The first 8 bytes of the key encoding ([`Address::write_key`]) as a big-endian integer:
    /// ordering by it, then by the address, is the byte order of the encodings with one
    /// integer comparison for most pairs.
    pub fn key_prefix(&self) -> u64 {
        let (tag, b): (u8, &[u8]) = match self {
            Self::Evm(b) => (TAG_EVM, b),
            Self::Script(b) => (TAG_SCRIPT, b),
            Self::Tx(b) => (TAG_TX, b),
        };
        let mut k = [0u8; 8];
        k[0] = tag;
        k[1..].copy_from_slice(&b[..7]);
        u64::from_be_bytes(k)
    }

    /// Appends the key encoding (tag byte, then the bytes) to `out`.
    pub fn write_key(&self, out: &mut Vec<u8>) {
        match self {
            Self::Evm(b) => {
                out.push(TAG_EVM);
                out.extend_from_slice(b);
            }
            Self::Script(b) => {
                out.push(TAG_SCRIPT);
                out.extend_from_slice(b);
            }
            Self::Tx(b) => {
                out.push(TAG_TX);
                out.extend_from_slice(b);
            }
        }
    }

    /// Length of the key encoding.
    pub const fn key_len(&self) -> usize {
        match self {
            Self::Evm(_) => 21,
            Self::Script(_) | Self::Tx(_) => 33,
        }
    }

    /// Reads an address from the front of a key; returns it and the bytes consumed.
    pub fn read_key(key: &[u8]) -> Option<(Self, usize)> {
        match *key.first()? {
            TAG_EVM => Some((Self::Evm(key.get(1..21)?.try_into().ok()?), 21)),
            TAG_SCRIPT => Some((Self::Script(key.get(1..33)?.try_into().ok()?), 33)),
            TAG_TX => Some((Self::Tx(key.get(1..33)?.try_into().ok()?), 33)),
            _ => None,
        }
    }
}

/// Why a string is not an address.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressParseError {
    /// Not `0x` followed by 40 hex digits (or 64 for a script id).
    #[error("invalid address {input:?}: expected 0x followed by 40 hex digits")]
    Invalid {
        /// What was given.
        input: String,
    },
    /// Mixed case that is not a valid EIP-55 checksum.
    #[error("invalid address {input:?}: mixed-case address with a wrong EIP-55 checksum")]
    BadChecksum {
        /// What was given.
        input: String,
    },
}

impl FromStr for Address {
    type Err = AddressParseError;

    /// Parses `0x` + 40 hex digits (EVM; mixed case must be a valid EIP-55 checksum) or
    /// `script:` + 64 hex digits (a script id) or `tx:` + 64 hex digits (a transaction node, txid
    /// in the usual display order).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || AddressParseError::Invalid {
            input: s.to_owned(),
        };
        if let Some(rest) = s.strip_prefix("script:") {
            let mut b = [0u8; 32];
            hex::decode_to_slice(rest, &mut b).map_err(|_| invalid())?;
            return Ok(Self::Script(b));
        }
        if let Some(rest) = s.strip_prefix("tx:") {
            let mut b = [0u8; 32];
            hex::decode_to_slice(rest, &mut b).map_err(|_| invalid())?;
            b.reverse();
            return Ok(Self::Tx(b));
        }
        let hexpart = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .ok_or_else(invalid)?;
        if hexpart.len() != 40 {
            return Err(invalid());
        }
        let mut b = [0u8; 20];
        hex::decode_to_slice(hexpart, &mut b).map_err(|_| invalid())?;
        let has_upper = hexpart.bytes().any(|c| c.is_ascii_uppercase());
        let has_lower = hexpart.bytes().any(|c| c.is_ascii_lowercase());
        if has_upper && has_lower {
            let checked = alloy_primitives::Address::from(b).to_checksum(None);
            if checked[2..] != *hexpart {
                return Err(AddressParseError::BadChecksum {
                    input: s.to_owned(),
                });
            }
        }
        Ok(Self::Evm(b))
    }
}

impl fmt::Display for Address {
    /// EVM addresses print in EIP-55 checksum form; script ids as `script:` + hex; transaction
    /// nodes as `tx:` + the txid in display (reversed) order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Evm(b) => checksummed(b, |s| f.write_str(s)),
            Self::Script(b) => write!(f, "script:{}", hex::encode(b)),
            Self::Tx(b) => {
                let mut r = *b;
                r.reverse();
                write!(f, "tx:{}", hex::encode(r))
            }
        }
    }
}

/// At most this many EIP-55 forms are cached per thread (about 70 bytes each); a full cache
/// starts again empty.
const CHECKSUM_CACHE: usize = 1 << 17;

type ChecksumCache = std::collections::HashMap<[u8; 20], [u8; 42], foldhash::fast::RandomState>;

thread_local! {
    /// The EIP-55 forms printed on this thread: a trace or report prints each address
    /// several times (as a destination and in the edges and paths around it), and the
    /// checksum is a Keccak-256 of its hex, which was half of writing a wide trace's JSON.
    static CHECKSUMS: std::cell::RefCell<ChecksumCache> =
        std::cell::RefCell::new(ChecksumCache::default());
}

/// Calls `f` with the EIP-55 checksum form of `b` (`0x` and 40 mixed-case hex digits).
fn checksummed<R>(b: &[u8; 20], f: impl FnOnce(&str) -> R) -> R {
    let form = CHECKSUMS.with_borrow_mut(|c| {
        if let Some(s) = c.get(b) {
            return *s;
        }
        let mut s = [0u8; 42];
        let _ = alloy_primitives::Address::from(*b).to_checksum_raw(&mut s, None);
        if c.len() >= CHECKSUM_CACHE {
            c.clear();
        }
        c.insert(*b, s);
        s
    });
    match std::str::from_utf8(&form) {
        Ok(s) => f(s),
        // Never: the form is ASCII.
        Err(_) => f(&alloy_primitives::Address::from(*b).to_checksum(None)),
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Address {
    /// JSON: the display string; binary formats: the key encoding.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            let mut k = Vec::with_capacity(self.key_len());
            self.write_key(&mut k);
            s.serialize_bytes(&k)
        }
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            let b = <std::borrow::Cow<'de, [u8]>>::deserialize(d)?;
            match Self::read_key(&b) {
                Some((a, n)) if n == b.len() => Ok(a),
                _ => Err(de::Error::custom("invalid address key bytes")),
            }
        }
    }
}

impl From<alloy_primitives::Address> for Address {
    fn from(a: alloy_primitives::Address) -> Self {
        Self::evm(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_checksums_are_the_checksums_of_each_address() {
        // More addresses than cache slots, printed twice in two orders: every form (from the
        // cache or not, after a slot was taken by another address) is that address's own.
        let addrs: Vec<[u8; 20]> = (0u64..10_000)
            .map(|i| {
                let mut b = [0u8; 20];
                b[0] = 0xaa;
                b[12..].copy_from_slice(&(i * 7919).to_be_bytes());
                b[3] = u8::try_from(i % 251).unwrap();
                b
            })
            .collect();
        for b in addrs.iter().chain(addrs.iter().rev()) {
            assert_eq!(
                Address::Evm(*b).to_string(),
                alloy_primitives::Address::from(*b).to_checksum(None)
            );
        }
    }

    #[test]
    fn parses_lower_and_checksummed() {
        let a: Address = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
            .parse()
            .unwrap();
        assert_eq!(a.to_string(), "0x098B716B8Aaf21512996dC57EB0615e2383E2f96");
        let b: Address = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
            .parse()
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_bad_checksum_and_length() {
        assert!(matches!(
            "0x098B716B8Aaf21512996dC57EB0615e2383E2F96".parse::<Address>(),
            Err(AddressParseError::BadChecksum { .. })
        ));
        assert!(
            "0x098b716b8aaf21512996dc57eb0615e2383e2f9"
                .parse::<Address>()
                .is_err()
        );
        assert!("hello".parse::<Address>().is_err());
    }

    #[test]
    fn order_is_the_byte_order_of_the_key_encodings() {
        let mut addrs = vec![
            Address::Tx([0; 32]),
            Address::Script([0xff; 32]),
            Address::Script([0; 32]),
            Address::Evm([0xff; 20]),
            Address::Evm([0; 20]),
            Address::Evm([1; 20]),
            Address::Script([1; 32]),
            Address::Tx([0xff; 32]),
        ];
        for i in 0u8..=255 {
            let mut e = [i.wrapping_mul(37); 20];
            e[19] = i;
            addrs.push(Address::Evm(e));
            let mut s = [i.wrapping_mul(101); 32];
            s[0] = i;
            addrs.push(Address::Script(s));
            addrs.push(Address::Tx(s));
        }
        let key = |a: &Address| {
            let mut k = Vec::new();
            a.write_key(&mut k);
            k
        };
        for a in &addrs {
            assert_eq!(a.key_prefix().to_be_bytes(), key(a)[..8]);
        }
        let mut by_order = addrs.clone();
        by_order.sort();
        let mut by_key = addrs;
        by_key.sort_by_key(key);
        assert_eq!(by_order, by_key);
    }

    #[test]
    fn key_roundtrip() {
        let mut txid = [0u8; 32];
        txid[0] = 1;
        for a in [
            Address::Evm([7; 20]),
            Address::Script([9; 32]),
            Address::Tx(txid),
        ] {
            let mut k = Vec::new();
            a.write_key(&mut k);
            assert_eq!(k.len(), a.key_len());
            assert_eq!(Address::read_key(&k), Some((a, k.len())));
        }
        assert_eq!(Address::read_key(&[3, 1, 2]), None);
        assert_eq!(Address::read_key(&[4; 40]), None);
        let shown = Address::Tx(txid).to_string();
        assert!(shown.starts_with("tx:") && shown.ends_with("01"), "{shown}");
        assert_eq!(shown.parse::<Address>(), Ok(Address::Tx(txid)));
        assert_eq!(Address::read_key(&[1, 1, 2]), None);
    }
}
