//! Bitcoin mainnet addresses as the store keys them: the one decoder behind every place that
//! reads a Bitcoin address from a user (command arguments, payroll batch rows).
//!
//! Base58 P2PKH (`1...`) and P2SH (`3...`), bech32 segwit v0 (`bc1q...`) and bech32m v1+
//! (`bc1p...`) through `bitcoin::Address::from_str` and `require_network`; the result is the
//! script id of the address's output script (a P2PK output is found under its P2PKH address,
//! as the store keys it). Errors say what is wrong: another network, a bad checksum, a bech32
//! checksum on a witness version that needs bech32m (or the reverse, BIP 350).
use crate::Address;
use bitcoin::{
    Network,
    address::NetworkUnchecked,
    bech32::{Bech32, Bech32m, Fe32, primitives::decode::UncheckedHrpstring},
};

/// Why a string is not a Bitcoin mainnet address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitcoinAddressError {
    /// Not in a Bitcoin address form at all (no known prefix, not base58 of the right length).
    #[error("not in a Bitcoin address form")]
    NotBitcoin,
    /// A valid address of another Bitcoin network.
    #[error("a Bitcoin {network} address; paytrace indexes Bitcoin mainnet")]
    WrongNetwork {
        /// `testnet/signet` or `regtest`.
        network: &'static str,
    },
    /// A Bitcoin-form string that does not decode (checksum, length, witness version).
    #[error("not a valid Bitcoin address: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

/// Decodes a Bitcoin mainnet address into the store's script id.
pub fn parse_mainnet(s: &str) -> Result<Address, BitcoinAddressError> {
    let unchecked: bitcoin::Address<NetworkUnchecked> = match s.parse() {
        Ok(a) => a,
        Err(e) => {
            if segwit_hrp(s).is_some() {
                return Err(BitcoinAddressError::Invalid {
                    reason: bech32_problem(s).unwrap_or_else(|| chain_text(&e)),
                });
            }
            if is_base58(s)
                && (25..=36).contains(&s.len())
                && matches!(s.as_bytes().first(), Some(b'1' | b'3' | b'm' | b'n' | b'2'))
            {
                return Err(BitcoinAddressError::Invalid {
                    reason: chain_text(&e),
                });
            }
            return Err(BitcoinAddressError::NotBitcoin);
        }
    };
    let network = if unchecked.is_valid_for_network(Network::Bitcoin) {
        None
    } else if unchecked.is_valid_for_network(Network::Regtest) && segwit_hrp(s) == Some("bcrt1") {
        Some("regtest")
    } else {
        Some("testnet/signet")
    };
    if let Some(network) = network {
        return Err(BitcoinAddressError::WrongNetwork { network });
    }
    let addr =
        unchecked
            .require_network(Network::Bitcoin)
            .map_err(|e| BitcoinAddressError::Invalid {
                reason: chain_text(&e),
            })?;
    Ok(Address::Script(super::script::script_id(
        addr.script_pubkey().as_bytes(),
    )))
}

fn is_base58(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() && !matches!(b, b'0' | b'O' | b'I' | b'l'))
}

/// The human-readable part of a bech32 segwit string, lower case, when it has one we know.
fn segwit_hrp(s: &str) -> Option<&'static str> {
    let lower = s.to_ascii_lowercase();
    ["bcrt1", "bc1", "tb1"]
        .into_iter()
        .find(|p| lower.starts_with(p))
}

/// A segwit string whose checksum is valid for the other bech32 variant than its witness
/// version requires (BIP 350): v0 needs bech32, v1 and later bech32m.
fn bech32_problem(s: &str) -> Option<String> {
    let u = UncheckedHrpstring::new(s).ok()?;
    let first = *u.data_part_ascii().first()?;
    let version = Fe32::from_char(char::from(first)).ok()?.to_u8();
    let (is32, is32m) = (
        u.has_valid_checksum::<Bech32>(),
        u.has_valid_checksum::<Bech32m>(),
    );
    if version > 16 {
        return Some(format!(
            "witness version {version} does not exist (0 to 16)"
        ));
    }
    match (version, is32, is32m) {
        (0, false, true) => Some(
            "witness version 0 with a bech32m checksum (version 0 needs bech32, BIP 350)".into(),
        ),
        (v, true, false) if v > 0 => Some(format!(
            "witness version {v} with a bech32 checksum (version 1 and later need bech32m, BIP 350)"
        )),
        (_, false, false) => Some("bad bech32 checksum".into()),
        _ => None,
    }
}

/// An error and its sources, joined with `: `.
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;

    #[test]
    fn forms_and_errors() {
        assert!(matches!(
            parse_mainnet("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"),
            Ok(Address::Script(_))
        ));
        assert_eq!(
            parse_mainnet("mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),
            Err(BitcoinAddressError::WrongNetwork {
                network: "testnet/signet"
            })
        );
        assert!(matches!(
            parse_mainnet("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3T"),
            Err(BitcoinAddressError::Invalid { .. })
        ));
        assert_eq!(parse_mainnet("hello"), Err(BitcoinAddressError::NotBitcoin));
    }
}
