//! The one parser of address arguments, shared by every command (trace, path, screen and
//! `screen --file`, cluster, labels, watch, alerts, address, report `--provider-address`).
//!
//! Accepted forms:
//! * EVM: `0x` + 40 hex digits (mixed case must be the EIP-55 checksum);
//! * Bitcoin mainnet: base58 P2PKH (`1...`) and P2SH (`3...`), bech32 segwit v0 (`bc1q...`) and
//!   bech32m v1+ (`bc1p...`), through `bitcoin::Address::from_str` and `require_network`. A P2PK
//!   output is found under the P2PKH address of its key, as the store keys it;
//! * Tron `T...` (the same 20 account bytes as an EVM address);
//! * the store's own ids: `script:` + 64 hex digits, `tx:` + a txid;
//! * for seeds ([`parse_target`]): a transaction hash (64 hex digits, `0x` optional) and
//!   `TX:INDEX`.
//!
//! Errors name the argument (`seed`, `--provider-address`, `FILE:LINE`, ...), the input and what
//! is wrong: an address of another Bitcoin network, a bad checksum, a bech32 checksum on a
//! witness version that needs bech32m (or the reverse).

use paytrace_indexer::{Address, TxHash, labels::LabelAddress, model::AddressParseError};

/// What every address argument accepts, for error messages.
pub const ADDRESS_FORMS: &str = "expected 0x + 40 hex digits (EVM), a Bitcoin mainnet address \
(1..., 3..., bc1...), a Tron address (T...), or script:/tx: + 64 hex digits";

/// What a seed may be besides an address, for error messages.
pub const TX_FORMS: &str = "a transaction hash (64 hex digits, 0x optional), or TX:INDEX";

/// Why an address argument was rejected. Every message names the argument and the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressArgError {
    /// An EVM-form (`0x`) or store-id string that is malformed.
    #[error("{arg}: {input:?}: {reason}")]
    Evm {
        /// The argument (e.g. `seed`, `--provider-address`, `file.txt:3`).
        arg: String,
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A valid address of another Bitcoin network (testnet, signet, regtest).
    #[error("{arg}: {input:?} is a Bitcoin {network} address; paytrace indexes Bitcoin mainnet")]
    WrongNetwork {
        /// The argument.
        arg: String,
        /// What was given.
        input: String,
        /// The network it belongs to.
        network: &'static str,
    },
    /// A Bitcoin-form string that does not decode (checksum, length, witness version).
    #[error("{arg}: {input:?} is not a valid Bitcoin address: {reason}")]
    Bitcoin {
        /// The argument.
        arg: String,
        /// What was given.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// `TX:INDEX` with a bad index.
    #[error("{arg}: {input:?}: INDEX after ':' must be a number (TX:INDEX)")]
    BadIndex {
        /// The argument.
        arg: String,
        /// What was given.
        input: String,
    },
    /// Matches no accepted form.
    #[error("{arg}: {input:?} is not an address; {forms}")]
    Unrecognised {
        /// The argument.
        arg: String,
        /// What was given.
        input: String,
        /// The accepted forms.
        forms: String,
    },
}

impl AddressArgError {
    /// The argument the error is about.
    pub fn arg(&self) -> &str {
        match self {
            Self::Evm { arg, .. }
            | Self::WrongNetwork { arg, .. }
            | Self::Bitcoin { arg, .. }
            | Self::BadIndex { arg, .. }
            | Self::Unrecognised { arg, .. } => arg,
        }
    }
}

/// What a seed argument names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// An address (EVM account, Bitcoin script id, or a Bitcoin transaction node).
    Address(Address),
    /// A transaction; with `TX:INDEX`, one of its transfers (on Bitcoin: output INDEX).
    Tx {
        /// The hash as shown by explorers (Bitcoin: the txid in display order).
        hash: TxHash,
        /// The INDEX of `TX:INDEX`.
        index: Option<u32>,
    },
}

/// Parses an address argument named `arg` (see the module doc for the forms).
pub fn parse_address(arg: &str, input: &str) -> Result<Address, AddressArgError> {
    let s = input.trim();
    if is_hex_like(s) {
        return s.parse::<Address>().map_err(|e| AddressArgError::Evm {
            arg: arg.to_owned(),
            input: s.to_owned(),
            reason: match e {
                AddressParseError::BadChecksum { .. } => {
                    "mixed-case address with a wrong EIP-55 checksum".into()
                }
                AddressParseError::Invalid { .. } => {
                    format!("{}; expected 0x + 40 hex digits", hex_problem(s, false))
                }
            },
        });
    }
    if s.starts_with("script:") || s.starts_with("tx:") {
        return s.parse::<Address>().map_err(|_| AddressArgError::Evm {
            arg: arg.to_owned(),
            input: s.to_owned(),
            reason: "expected 64 hex digits after the prefix".into(),
        });
    }
    if s.starts_with('T')
        && let Ok(a) = LabelAddress::parse(s, Some("TRX"))
        && let Some(a) = a.indexed()
    {
        return Ok(a);
    }
    parse_bitcoin(arg, s)
}

/// Parses a seed argument: an address, a transaction hash or `TX:INDEX`.
pub fn parse_target(arg: &str, input: &str) -> Result<Target, AddressArgError> {
    let s = input.trim();
    let bad_hash = |tx: &str| AddressArgError::Evm {
        arg: arg.to_owned(),
        input: s.to_owned(),
        reason: format!(
            "{}; expected an address (0x + 40 hex digits, a Bitcoin address, or script:/tx: + \
             64 hex digits) or a transaction hash (0x + 64 hex digits, 0x optional, or TX:INDEX)",
            hex_problem(tx, true)
        ),
    };
    if !s.starts_with("script:")
        && !s.starts_with("tx:")
        && let Some((tx, idx)) = s.rsplit_once(':')
    {
        let index = idx.parse::<u32>().map_err(|_| AddressArgError::BadIndex {
            arg: arg.to_owned(),
            input: s.to_owned(),
        })?;
        let hash = tx_hash(tx).ok_or_else(|| bad_hash(tx))?;
        return Ok(Target::Tx {
            hash,
            index: Some(index),
        });
    }
    if let Some(hash) = tx_hash(s) {
        return Ok(Target::Tx { hash, index: None });
    }
    match parse_address(arg, s) {
        Ok(a) => Ok(Target::Address(a)),
        Err(AddressArgError::Unrecognised { arg, input, .. }) => {
            Err(AddressArgError::Unrecognised {
                arg,
                input,
                forms: format!("{ADDRESS_FORMS}; or {TX_FORMS}"),
            })
        }
        Err(AddressArgError::Evm { .. })
            if is_hex_like(s)
                && !(s.len() == 42 && s[2..].bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            Err(bad_hash(s))
        }
        Err(e) => Err(e),
    }
}

/// What is wrong with a `0x` string that is not an address (nor, when `or_tx`, a transaction
/// hash).
fn hex_problem(s: &str, or_tx: bool) -> String {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if let Some((i, c)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        let pos = i + s.len() - hex.len();
        return format!("{c:?} at position {pos} is not a hex digit");
    }
    match (hex.len(), or_tx) {
        (40, _) => "not a valid address (mixed case must be the EIP-55 checksum)".to_owned(),
        (n, true) => format!("{n} hex digits is neither 40 (address) nor 64 (transaction hash)"),
        (n, false) => format!("{n} hex digits, not 40"),
    }
}

fn is_hex_like(s: &str) -> bool {
    s.starts_with("0x") || s.starts_with("0X")
}

/// A transaction hash: 64 hex digits, `0x` optional.
fn tx_hash(s: &str) -> Option<TxHash> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    h.parse().ok().map(TxHash)
}

/// Whether `s` is written in the base58 alphabet.
fn parse_bitcoin(arg: &str, s: &str) -> Result<Address, AddressArgError> {
    use paytrace_indexer::btc::address::{BitcoinAddressError, parse_mainnet};
    parse_mainnet(s).map_err(|e| match e {
        BitcoinAddressError::NotBitcoin => AddressArgError::Unrecognised {
            arg: arg.to_owned(),
            input: s.to_owned(),
            forms: ADDRESS_FORMS.to_owned(),
        },
        BitcoinAddressError::WrongNetwork { network } => AddressArgError::WrongNetwork {
            arg: arg.to_owned(),
            input: s.to_owned(),
            network,
        },
        BitcoinAddressError::Invalid { reason } => AddressArgError::Bitcoin {
            arg: arg.to_owned(),
            input: s.to_owned(),
            reason,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        parse_address("ADDRESS", s).unwrap_err().to_string()
    }

    #[test]
    fn bitcoin_forms_map_to_script_ids() {
        for s in [
            "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S",
            "3NDzzVxiLBUs1WPvVGRfCYDTAD2Ua2PvW4",
            "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h",
            "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        ] {
            let a = parse_address("ADDRESS", s).unwrap();
            assert!(matches!(a, Address::Script(_)), "{s}");
            // The same id the label store uses.
            let l = LabelAddress::parse(s, Some("XBT")).unwrap();
            assert_eq!(l.indexed(), Some(a), "{s}");
        }
        // bech32 is case-insensitive
        assert_eq!(
            parse_address("A", "BC1QM34LSC65ZPW79LXES69ZKQMK6EE3EWF0J77S3H").unwrap(),
            parse_address("A", "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h").unwrap()
        );
    }

    #[test]
    fn evm_and_store_ids() {
        let a = parse_address("A", "0x098b716b8aaf21512996dc57eb0615e2383e2f96").unwrap();
        assert!(matches!(a, Address::Evm(_)));
        let e = err("0x098B716B8Aaf21512996dC57EB0615e2383E2F96");
        assert!(e.contains("ADDRESS") && e.contains("EIP-55"), "{e}");
        let s = format!("script:{}", "ab".repeat(32));
        assert!(matches!(
            parse_address("A", &s).unwrap(),
            Address::Script(_)
        ));
        assert!(err("script:abc").contains("64 hex digits"));
        let t = parse_address("A", "TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq").unwrap();
        assert!(matches!(t, Address::Evm(_)));
    }

    #[test]
    fn testnet_on_mainnet_names_the_network() {
        for s in [
            "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
            "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc",
            "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
        ] {
            let e = parse_address("--provider-address", s).unwrap_err();
            assert!(
                matches!(e, AddressArgError::WrongNetwork { .. }),
                "{s}: {e}"
            );
            let m = e.to_string();
            assert!(m.starts_with("--provider-address: "), "{m}");
            assert!(m.contains("testnet"), "{m}");
        }
        let e = err("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080");
        assert!(e.contains("regtest"), "{e}");
    }

    #[test]
    fn bad_checksums() {
        // last character changed
        let e = err("12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3T");
        assert!(
            e.contains("not a valid Bitcoin address") && e.contains("checksum"),
            "{e}"
        );
        let e = err("bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3j");
        assert!(e.contains("checksum"), "{e}");
    }

    #[test]
    fn wrong_witness_version_checksum() {
        // BIP 350 vectors: v1 with a bech32 checksum, v0 with a bech32m checksum.
        let e = err("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd");
        assert!(
            e.contains("witness version 1 with a bech32 checksum"),
            "{e}"
        );
        let e = err("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh");
        assert!(
            e.contains("witness version 0 with a bech32m checksum"),
            "{e}"
        );
        let e = err("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R");
        assert!(e.contains("witness version 17"), "{e}");
    }

    #[test]
    fn unrecognised() {
        let e = err("hello");
        assert!(e.contains("not an address") && e.contains("bc1"), "{e}");
    }

    #[test]
    fn targets() {
        let h = "f4184fc596403b9d638783cf57adfe4c75c605f6356fbc91338530e9831e9e16";
        let Target::Tx { hash, index } = parse_target("seed", h).unwrap() else {
            panic!()
        };
        assert_eq!(index, None);
        assert_eq!(format!("{:x}", hash.0), h);
        assert_eq!(
            parse_target("seed", &format!("0x{h}:1")).unwrap(),
            Target::Tx {
                hash,
                index: Some(1)
            }
        );
        let e = parse_target("seed", &format!("{h}:x")).unwrap_err();
        assert!(matches!(e, AddressArgError::BadIndex { .. }), "{e}");
        assert!(matches!(
            parse_target("seed", "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S").unwrap(),
            Target::Address(Address::Script(_))
        ));
        assert!(matches!(
            parse_target("seed", &format!("tx:{h}")).unwrap(),
            Target::Address(Address::Tx(_))
        ));
        let e = parse_target("seed", "0x1234").unwrap_err().to_string();
        assert!(
            e.starts_with("seed: ") && e.contains("4 hex digits is neither 40"),
            "{e}"
        );
        let e = parse_target("seed", "0xabc:x").unwrap_err().to_string();
        assert!(e.contains("INDEX after ':' must be a number"), "{e}");
        let e = parse_target("seed", &format!("0x{}", "Z".repeat(40)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'Z' at position 2 is not a hex digit"), "{e}");
        let e = parse_target("seed", "nope").unwrap_err().to_string();
        assert!(e.contains("TX:INDEX"), "{e}");
    }
}
