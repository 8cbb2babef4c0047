//! Exact token amounts in raw integer units.

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::{fmt, str::FromStr};

/// An exact amount of some asset in its smallest unit (wei, token base units, satoshi).
///
/// Arithmetic is checked: an overflow is an error, never a wrap. Amounts are never floats; in
/// JSON they are decimal strings of the raw integer, in the store compact big-endian bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(U256);

/// Arithmetic or parse failure of an [`Amount`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    /// The sum does not fit in 256 bits.
    #[error("amount overflow: {0} + {1}")]
    Overflow(Amount, Amount),
    /// The difference would be negative.
    #[error("amount underflow: {0} - {1}")]
    Underflow(Amount, Amount),
    /// Not a decimal integer.
    #[error("invalid amount {0:?}: expected a decimal integer of raw units")]
    Parse(String),
}

impl Amount {
    /// Zero.
    pub const ZERO: Self = Self(U256::ZERO);

    /// Wraps a raw 256-bit value.
    pub const fn from_raw(v: U256) -> Self {
        Self(v)
    }

    /// The raw 256-bit value.
    pub const fn raw(&self) -> U256 {
        self.0
    }

    /// Builds an amount from a `u64`.
    pub fn from_u64(v: u64) -> Self {
        Self(U256::from(v))
    }

    /// Whether this is zero.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// `self + rhs`, or an error on overflow.
    pub fn checked_add(self, rhs: Self) -> Result<Self, AmountError> {
        self.0
            .checked_add(rhs.0)
            .map(Self)
            .ok_or(AmountError::Overflow(self, rhs))
    }

    /// `self - rhs`, or an error if `rhs > self`.
    pub fn checked_sub(self, rhs: Self) -> Result<Self, AmountError> {
        self.0
            .checked_sub(rhs.0)
            .map(Self)
            .ok_or(AmountError::Underflow(self, rhs))
    }

    /// `self - rhs`, clamped at zero.
    pub fn saturating_sub(self, rhs: Self) -> Self {
        Self(self.0.saturating_sub(rhs.0))
    }

    /// Formats with `decimals` decimal places (e.g. `5178.15` for 5178150000 with 6 decimals),
    /// trailing zeros trimmed. For display only; JSON carries raw units.
    pub fn to_decimal_string(&self, decimals: u8) -> String {
        let s = self.0.to_string();
        let d = usize::from(decimals);
        if d == 0 {
            return s;
        }
        let (int, frac) = if s.len() > d {
            let (i, f) = s.split_at(s.len() - d);
            (i.to_owned(), f.to_owned())
        } else {
            ("0".to_owned(), format!("{s:0>d$}"))
        };
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            int
        } else {
            format!("{int}.{frac}")
        }
    }

    /// Formats with exactly `decimals` decimal places, trailing zeros kept (`50.00000000` for
    /// 5000000000 with 8 decimals: Bitcoin amounts are written this way).
    pub fn to_fixed_decimal_string(&self, decimals: u8) -> String {
        let s = self.to_decimal_string(decimals);
        let d = usize::from(decimals);
        if d == 0 {
            return s;
        }
        match s.split_once('.') {
            Some((i, f)) => format!("{i}.{f:0<d$}"),
            None => format!("{s}.{}", "0".repeat(d)),
        }
    }

    /// Compact big-endian bytes (no leading zeros); empty for zero.
    pub fn to_be_trimmed(&self) -> Vec<u8> {
        let b: [u8; 32] = self.0.to_be_bytes();
        let first = b.iter().position(|&x| x != 0).unwrap_or(32);
        b[first..].to_vec()
    }

    /// Inverse of [`Amount::to_be_trimmed`]; `None` if longer than 32 bytes.
    pub fn from_be_slice(b: &[u8]) -> Option<Self> {
        if b.len() > 32 {
            return None;
        }
        let mut full = [0u8; 32];
        full[32 - b.len()..].copy_from_slice(b);
        Some(Self(U256::from_be_bytes(full)))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Amount {
    type Err = AmountError;
    /// Parses a decimal integer of raw units.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(AmountError::Parse(s.to_owned()));
        }
        U256::from_str_radix(s, 10)
            .map(Self)
            .map_err(|_| AmountError::Parse(s.to_owned()))
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&self.0)
        } else {
            s.serialize_bytes(&self.to_be_trimmed())
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            s.parse().map_err(de::Error::custom)
        } else {
            let b = <std::borrow::Cow<'de, [u8]>>::deserialize(d)?;
            Self::from_be_slice(&b).ok_or_else(|| de::Error::custom("amount longer than 32 bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checked_arithmetic() {
        let a = Amount::from_u64(5);
        let b = Amount::from_u64(7);
        assert_eq!(a.checked_add(b).unwrap(), Amount::from_u64(12));
        assert!(matches!(a.checked_sub(b), Err(AmountError::Underflow(..))));
        let max = Amount::from_raw(U256::MAX);
        assert!(matches!(max.checked_add(a), Err(AmountError::Overflow(..))));
        assert_eq!(a.saturating_sub(b), Amount::ZERO);
    }

    #[test]
    fn decimal_display() {
        assert_eq!(
            Amount::from_u64(5_178_150_000).to_decimal_string(6),
            "5178.15"
        );
        assert_eq!(Amount::from_u64(15).to_decimal_string(6), "0.000015");
        assert_eq!(Amount::from_u64(1_000_000).to_decimal_string(6), "1");
        assert_eq!(Amount::ZERO.to_decimal_string(18), "0");
    }

    #[test]
    fn fixed_decimal_display() {
        let f = |v: u64| Amount::from_u64(v).to_fixed_decimal_string(8);
        assert_eq!(f(5_000_000_000), "50.00000000");
        assert_eq!(f(4_560_000_000), "45.60000000");
        assert_eq!(f(1), "0.00000001");
        assert_eq!(f(0), "0.00000000");
        assert_eq!(Amount::from_u64(7).to_fixed_decimal_string(0), "7");
    }

    #[test]
    fn json_is_a_decimal_string() {
        let a: Amount =
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
                .parse()
                .unwrap();
        let j = serde_json::to_string(&a).unwrap();
        assert_eq!(j, format!("\"{a}\""));
        assert_eq!(serde_json::from_str::<Amount>(&j).unwrap(), a);
        assert!("-1".parse::<Amount>().is_err());
        assert!("1e5".parse::<Amount>().is_err());
    }

    proptest! {
        #[test]
        fn postcard_roundtrip(limbs in any::<[u64; 4]>()) {
            let a = Amount::from_raw(U256::from_limbs(limbs));
            let bytes = postcard::to_allocvec(&a).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Amount>(&bytes).unwrap(), a);
        }
    }
}
