//! Validation and normalisation of labelled addresses, per chain.
//!
//! * EVM: `0x` + 40 hex digits; lower-case, upper-case and valid EIP-55 mixed case are accepted,
//!   a mixed-case string with a wrong checksum is rejected. Printed in EIP-55 form. The key is
//!   the [`Address::Evm`] key, so every EVM chain (and Tron) shares one key space.
//! * Bitcoin: base58check (P2PKH, P2SH) and bech32/bech32m (segwit v0, taproot), mainnet only.
//!   The key is the [`Address::Script`] key (SHA-256 of the output script), the identity the
//!   indexer uses for Bitcoin outputs.
//! * Tron: base58check `T...` or the hex form `41` + 40 hex digits (optionally `0x`-prefixed).
//!   Matched on the 20 account bytes, i.e. the same key as the EVM address with those bytes.
//! * Any other currency code (LTC, BCH, XMR, ZEC, DASH, ...): kept verbatim under its code.

use crate::model::Address;
use bitcoin::hashes::{Hash as _, sha256};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, str::FromStr};

/// Tag byte of keys of addresses of currencies the indexer does not model (after
/// [`Address`]'s tags `0x01` and `0x02`); part of the on-disk format.
const TAG_OTHER: u8 = 0x10;

/// Longest address text accepted for a currency paytrace does not model.
const MAX_OTHER_LEN: usize = 128;

/// The chain family a label's address belongs to.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum LabelChain {
    /// Any EVM chain (the 20 account bytes are the same on every one).
    Evm,
    /// Bitcoin mainnet.
    Bitcoin,
    /// Tron (matched on the EVM 20-byte form).
    Tron,
    /// A currency paytrace does not index; the upper-case currency code (e.g. `LTC`).
    Other(String),
}

impl LabelChain {
    /// The lower-case name: `evm`, `bitcoin`, `tron`, or the currency code in lower case.
    pub fn name(&self) -> String {
        match self {
            Self::Evm => "evm".into(),
            Self::Bitcoin => "bitcoin".into(),
            Self::Tron => "tron".into(),
            Self::Other(code) => code.to_ascii_lowercase(),
        }
    }
}

impl fmt::Display for LabelChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl FromStr for LabelChain {
    type Err = AddressError;

    /// Parses a chain name or currency code: `evm`/`ethereum`/`eth`, `bitcoin`/`btc`/`xbt`,
    /// `tron`/`trx`, anything else alphanumeric as another currency code.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Ok(match lower.as_str() {
            "evm" | "ethereum" | "eth" => Self::Evm,
            "bitcoin" | "btc" | "xbt" => Self::Bitcoin,
            "tron" | "trx" => Self::Tron,
            _ if valid_code(&lower) => Self::Other(lower.to_ascii_uppercase()),
            _ => {
                return Err(AddressError::BadCurrency {
                    currency: s.to_owned(),
                });
            }
        })
    }
}

impl Serialize for LabelChain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for LabelChain {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Why an address string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Empty address field.
    #[error("empty address")]
    Empty,
    /// The currency code is not a plain alphanumeric code.
    #[error("invalid currency code {currency:?}")]
    BadCurrency {
        /// What was given.
        currency: String,
    },
    /// The string does not have the form of its declared currency.
    #[error("address {address:?} is not a valid {currency} address: {reason}")]
    Mismatch {
        /// The address text.
        address: String,
        /// The declared currency code (or `inferred` when none was declared).
        currency: String,
        /// What is wrong.
        reason: String,
    },
    /// No currency was declared and the form matches no supported chain.
    #[error(
        "address {address:?} matches no supported form (evm, bitcoin, tron); declare its currency"
    )]
    Unrecognised {
        /// The address text.
        address: String,
    },
}

/// A validated, normalised address of a label.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum LabelAddress {
    /// EVM account bytes.
    Evm([u8; 20]),
    /// Tron account bytes (without the `0x41` prefix).
    Tron([u8; 20]),
    /// A Bitcoin mainnet address.
    Bitcoin {
        /// SHA-256 of the output script (the indexer's [`Address::Script`] id).
        script_id: [u8; 32],
        /// Canonical text (bech32 in lower case).
        text: String,
    },
    /// An address of a currency paytrace does not index, kept verbatim.
    Other {
        /// Upper-case currency code.
        currency: String,
        /// The address as given (trimmed).
        text: String,
    },
}

/// Currency codes whose addresses are always EVM accounts.
const EVM_CODES: &[&str] = &[
    "ETH", "ETC", "ARB", "BSC", "BEP20", "MATIC", "POL", "OP", "BASE", "AVAX", "AVAXC", "FTM",
    "ERC20",
];

fn valid_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 16 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn mismatch(address: &str, currency: &str, reason: impl Into<String>) -> AddressError {
    AddressError::Mismatch {
        address: address.to_owned(),
        currency: currency.to_owned(),
        reason: reason.into(),
    }
}

impl LabelAddress {
    /// Validates `text` as an address of `currency` (a currency code such as `ETH`, `XBT`,
    /// `USDT`, `LTC`, or a chain name such as `ethereum`), or infers the chain from the form
    /// when `currency` is `None`.
    ///
    /// Multi-chain tokens (USDT, USDC, ...) are placed by the address form: `0x` + 40 hex is
    /// EVM, `T...` is Tron, and for USDT a Bitcoin form is an Omni address.
    pub fn parse(text: &str, currency: Option<&str>) -> Result<Self, AddressError> {
        let s = text.trim();
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        let Some(cur) = currency.map(str::trim).filter(|c| !c.is_empty()) else {
            return Self::infer(s);
        };
        let code = currency_code(cur)?;
        match code.as_str() {
            "XBT" | "BTC" => parse_bitcoin(s).map_err(|r| mismatch(s, &code, r)),
            "TRX" => parse_tron(s)
                .map(Self::Tron)
                .map_err(|r| mismatch(s, &code, r)),
            c if EVM_CODES.contains(&c) => parse_evm(s)
                .map(Self::Evm)
                .map_err(|r| mismatch(s, &code, r)),
            _ => {
                if s.starts_with("0x") || s.starts_with("0X") {
                    return parse_evm(s)
                        .map(Self::Evm)
                        .map_err(|r| mismatch(s, &code, r));
                }
                if s.starts_with('T')
                    && let Ok(b) = parse_tron(s)
                {
                    return Ok(Self::Tron(b));
                }
                if code == "USDT"
                    && let Ok(a) = parse_bitcoin(s)
                {
                    return Ok(a);
                }
                if s.len() > MAX_OTHER_LEN
                    || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':')
                {
                    return Err(mismatch(
                        s,
                        &code,
                        "expected at most 128 letters and digits",
                    ));
                }
                Ok(Self::Other {
                    currency: code,
                    text: s.to_owned(),
                })
            }
        }
    }

    fn infer(s: &str) -> Result<Self, AddressError> {
        if s.starts_with("0x") || s.starts_with("0X") {
            return parse_evm(s)
                .map(Self::Evm)
                .map_err(|r| mismatch(s, "inferred evm", r));
        }
        if s.starts_with('T')
            && let Ok(b) = parse_tron(s)
        {
            return Ok(Self::Tron(b));
        }
        parse_bitcoin(s).map_err(|_| AddressError::Unrecognised {
            address: s.to_owned(),
        })
    }

    /// The chain family.
    pub fn chain(&self) -> LabelChain {
        match self {
            Self::Evm(_) => LabelChain::Evm,
            Self::Tron(_) => LabelChain::Tron,
            Self::Bitcoin { .. } => LabelChain::Bitcoin,
            Self::Other { currency, .. } => LabelChain::Other(currency.clone()),
        }
    }

    /// The indexer address this label matches, when paytrace indexes its chain.
    pub fn indexed(&self) -> Option<Address> {
        match self {
            Self::Evm(b) | Self::Tron(b) => Some(Address::Evm(*b)),
            Self::Bitcoin { script_id, .. } => Some(Address::Script(*script_id)),
            Self::Other { .. } => None,
        }
    }

    /// The store key: the [`Address`] key for indexed chains, else a tag, the currency code,
    /// a zero byte and the address text.
    pub fn key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(40);
        match (self.indexed(), self) {
            (Some(a), _) => a.write_key(&mut k),
            (None, Self::Other { currency, text }) => {
                k.push(TAG_OTHER);
                k.extend_from_slice(currency.as_bytes());
                k.push(0);
                k.extend_from_slice(text.as_bytes());
            }
            (None, _) => {}
        }
        k
    }
}

/// The store key of an indexed address (see [`LabelAddress::key`]).
pub fn address_key(a: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.key_len());
    a.write_key(&mut k);
    k
}

impl fmt::Display for LabelAddress {
    /// EVM in EIP-55 form, Tron as base58check `T...`, Bitcoin canonical, others verbatim.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Evm(b) => f.write_str(&alloy_primitives::Address::from(*b).to_checksum(None)),
            Self::Tron(b) => f.write_str(&tron_text(b)),
            Self::Bitcoin { text, .. } | Self::Other { text, .. } => f.write_str(text),
        }
    }
}

/// Normalises a currency code or chain name to an upper-case code (`ethereum` → `ETH`,
/// `bitcoin`/`btc` → `XBT`, `tron` → `TRX`).
pub fn currency_code(s: &str) -> Result<String, AddressError> {
    let lower = s.trim().to_ascii_lowercase();
    let code = match lower.as_str() {
        "ethereum" | "evm" => "ETH".to_owned(),
        "bitcoin" | "btc" => "XBT".to_owned(),
        "tron" => "TRX".to_owned(),
        _ if valid_code(&lower) => lower.to_ascii_uppercase(),
        _ => {
            return Err(AddressError::BadCurrency {
                currency: s.to_owned(),
            });
        }
    };
    Ok(code)
}

fn parse_evm(s: &str) -> Result<[u8; 20], String> {
    let hexpart = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or("expected 0x followed by 40 hex digits")?;
    if hexpart.len() != 40 {
        return Err(format!(
            "expected 40 hex digits after 0x, found {}",
            hexpart.len()
        ));
    }
    let mut b = [0u8; 20];
    alloy_primitives::hex::decode_to_slice(hexpart, &mut b)
        .map_err(|_| "expected 0x followed by 40 hex digits".to_owned())?;
    let has_upper = hexpart.bytes().any(|c| c.is_ascii_uppercase());
    let has_lower = hexpart.bytes().any(|c| c.is_ascii_lowercase());
    if has_upper && has_lower {
        let checked = alloy_primitives::Address::from(b).to_checksum(None);
        if checked.get(2..) != Some(hexpart) {
            return Err(format!("wrong EIP-55 checksum (expected {checked})"));
        }
    }
    Ok(b)
}

fn parse_tron(s: &str) -> Result<[u8; 20], String> {
    let raw = if s.starts_with('T') {
        bitcoin::base58::decode_check(s).map_err(|e| format!("bad base58check: {e}"))?
    } else {
        let h = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if h.len() != 42 {
            return Err("expected T... base58check or 41 followed by 40 hex digits".into());
        }
        alloy_primitives::hex::decode(h).map_err(|_| "bad hex".to_owned())?
    };
    match raw.split_first() {
        Some((0x41, rest)) => <[u8; 20]>::try_from(rest)
            .map_err(|_| format!("expected 21 bytes, found {}", raw.len())),
        _ => Err("expected a 0x41-prefixed 21-byte account".into()),
    }
}

fn parse_bitcoin(s: &str) -> Result<LabelAddress, String> {
    use bitcoin::{Network, address::NetworkUnchecked};
    let unchecked: bitcoin::Address<NetworkUnchecked> = s.parse().map_err(|e| format!("{e}"))?;
    if !unchecked.is_valid_for_network(Network::Bitcoin) {
        return Err("address of another network (expected bitcoin mainnet)".into());
    }
    let addr = unchecked.assume_checked();
    let script = addr.script_pubkey();
    let script_id = sha256::Hash::hash(script.as_bytes()).to_byte_array();
    Ok(LabelAddress::Bitcoin {
        script_id,
        text: addr.to_string(),
    })
}

/// The base58check `T...` form of a Tron account.
pub fn tron_text(b: &[u8; 20]) -> String {
    let mut raw = Vec::with_capacity(21);
    raw.push(0x41);
    raw.extend_from_slice(b);
    bitcoin::base58::encode_check(&raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;

    #[test]
    fn evm_forms() {
        let a =
            LabelAddress::parse("0x098b716b8aaf21512996dc57eb0615e2383e2f96", Some("ETH")).unwrap();
        let b = LabelAddress::parse("0x098B716B8Aaf21512996dC57EB0615e2383E2f96", None).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "0x098B716B8Aaf21512996dC57EB0615e2383E2f96");
        assert_eq!(
            a.key(),
            address_key(
                &"0x098b716b8aaf21512996dc57eb0615e2383e2f96"
                    .parse()
                    .unwrap()
            )
        );
        // 39 hex digits (the malformed 2021 SDN entry)
        let e = LabelAddress::parse("0xa7e5d5a720f06526557c513402f2e6b5fa20b00", Some("ETH"))
            .unwrap_err();
        assert!(e.to_string().contains("39"), "{e}");
        // bad checksum
        assert!(
            LabelAddress::parse("0x098B716B8Aaf21512996dC57EB0615e2383E2F96", Some("ETH")).is_err()
        );
        // declared ETH, bitcoin form
        assert!(LabelAddress::parse("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", Some("ETH")).is_err());
    }

    #[test]
    fn bitcoin_forms() {
        for s in [
            "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
            "3NDzzVxiLBUs1WPvVGRfCYDTAD2Ua2PvW4",
            "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h",
        ] {
            let a = LabelAddress::parse(s, Some("XBT")).unwrap();
            assert_eq!(a.chain(), LabelChain::Bitcoin);
            assert_eq!(a.to_string(), s);
            assert!(matches!(a.indexed(), Some(Address::Script(_))));
        }
        let upper =
            LabelAddress::parse("BC1QM34LSC65ZPW79LXES69ZKQMK6EE3EWF0J77S3H", Some("BTC")).unwrap();
        assert_eq!(
            upper.to_string(),
            "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h"
        );
        // testnet rejected
        assert!(
            LabelAddress::parse("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", Some("XBT")).is_err()
        );
        // bad checksum
        assert!(LabelAddress::parse("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb", Some("XBT")).is_err());
        // Tron form declared as XBT
        assert!(LabelAddress::parse("TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", Some("XBT")).is_err());
    }

    #[test]
    fn tron_forms() {
        let t = LabelAddress::parse("TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", Some("TRX")).unwrap();
        let LabelAddress::Tron(b) = t else {
            panic!("not tron")
        };
        let hex = format!("41{}", alloy_primitives::hex::encode(b));
        let h = LabelAddress::parse(&hex, Some("TRX")).unwrap();
        assert_eq!(t, h);
        assert_eq!(h.to_string(), "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq");
        assert_eq!(t.indexed(), Some(Address::Evm(b)));
        let usdt = LabelAddress::parse("TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq", Some("USDT")).unwrap();
        assert_eq!(usdt, t);
    }

    #[test]
    fn other_currencies() {
        let l = LabelAddress::parse("LNwgtMxcKUQ51dw7bQL1yPQjBVZh6QEqsd", Some("ltc")).unwrap();
        assert_eq!(l.chain(), LabelChain::Other("LTC".into()));
        assert_eq!(l.indexed(), None);
        assert_eq!(l.key()[0], TAG_OTHER);
        assert!(LabelAddress::parse("abc def", Some("XMR")).is_err());
        assert!(LabelAddress::parse("0x1234", Some("LTC")).is_err());
        assert!(LabelAddress::parse("hello", None).is_err());
        assert!(LabelAddress::parse("", Some("ETH")).is_err());
    }
}
