//! Output scripts: their identity in the store ([`Address::Script`]), their type, and their
//! readable form.
//!
//! * Every spendable output is identified by the SHA-256 of its output script, except P2PK
//!   outputs, which are identified by the P2PKH script of their public key (so a payment to a
//!   public key and one to its P2PKH address land on the same address, as block explorers and
//!   bitcoin-etl show them).
//! * OP_RETURN outputs are data (or burns of their value), never addresses.
//! * Non-standard scripts (bare multisig, odd scripts) keep the SHA-256 of their script as a
//!   stable id; they print as `script:<id>`, which the CLI parses back.
//!
//! Addresses are formatted only for display, from the canonical script kept in the store.

use crate::model::Address;
use bitcoin::{
    Network, Script, ScriptBuf,
    hashes::{Hash as _, hash160, sha256},
};
use serde::{Deserialize, Serialize};

/// The type of an output script.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptKind {
    /// Pay to public key (identified as the P2PKH address of the key).
    P2pk,
    /// Pay to public-key hash (`1...`).
    P2pkh,
    /// Pay to script hash (`3...`).
    P2sh,
    /// Segwit v0 key hash (`bc1q...`, 20 bytes).
    P2wpkh,
    /// Segwit v0 script hash (`bc1q...`, 32 bytes).
    P2wsh,
    /// Taproot (`bc1p...`).
    P2tr,
    /// Another witness version or program size (`bc1...`, still an address).
    WitnessUnknown,
    /// `OP_RETURN` data (not an address).
    OpReturn,
    /// Bare multisig (`m <keys> n OP_CHECKMULTISIG`), a non-standard address.
    Multisig,
    /// Any other script.
    NonStandard,
}

impl ScriptKind {
    /// The stable lower-case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::P2pk => "p2pk",
            Self::P2pkh => "p2pkh",
            Self::P2sh => "p2sh",
            Self::P2wpkh => "p2wpkh",
            Self::P2wsh => "p2wsh",
            Self::P2tr => "p2tr",
            Self::WitnessUnknown => "witness_unknown",
            Self::OpReturn => "op_return",
            Self::Multisig => "multisig",
            Self::NonStandard => "nonstandard",
        }
    }
}

/// The classification of one output script.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ClassifiedScript {
    /// Its type.
    pub kind: ScriptKind,
    /// The store identity ([`Address::Script`] id), `None` for OP_RETURN.
    pub id: Option<[u8; 32]>,
    /// The script the id is the hash of (the P2PKH script for P2PK), kept for display.
    pub canonical: Option<ScriptBuf>,
}

/// The id of the synthetic source of newly mined coins (the input side of a coinbase).
pub fn coinbase_source() -> Address {
    Address::Script(sha256::Hash::hash(b"paytrace:bitcoin:coinbase").to_byte_array())
}

/// The id of the synthetic sink of value sent to `OP_RETURN` outputs (burns).
pub fn burn_sink() -> Address {
    Address::Script(sha256::Hash::hash(b"paytrace:bitcoin:op_return").to_byte_array())
}

/// The SHA-256 id of a script.
pub fn script_id(script: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(script).to_byte_array()
}

/// The raw public key of a P2PK script (possibly not a valid curve point).
fn p2pk_key(s: &[u8]) -> Option<&[u8]> {
    match s.len() {
        67 if s[0] == 0x41 && s[66] == 0xac => Some(&s[1..66]),
        35 if s[0] == 0x21 && s[34] == 0xac => Some(&s[1..34]),
        _ => None,
    }
}

/// Classifies an output script and derives its identity.
pub fn classify(script: &Script) -> ClassifiedScript {
    let b = script.as_bytes();
    if let Some(key) = p2pk_key(b) {
        let hash = bitcoin::PubkeyHash::from_raw_hash(hash160::Hash::hash(key));
        let p2pkh = ScriptBuf::new_p2pkh(&hash);
        return ClassifiedScript {
            kind: ScriptKind::P2pk,
            id: Some(script_id(p2pkh.as_bytes())),
            canonical: Some(p2pkh),
        };
    }
    let kind = if script.is_p2pkh() {
        ScriptKind::P2pkh
    } else if script.is_p2sh() {
        ScriptKind::P2sh
    } else if script.is_p2wpkh() {
        ScriptKind::P2wpkh
    } else if script.is_p2wsh() {
        ScriptKind::P2wsh
    } else if script.is_p2tr() {
        ScriptKind::P2tr
    } else if script.is_witness_program() {
        ScriptKind::WitnessUnknown
    } else if script.is_op_return() {
        return ClassifiedScript {
            kind: ScriptKind::OpReturn,
            id: None,
            canonical: None,
        };
    } else if script.is_multisig() {
        ScriptKind::Multisig
    } else {
        ScriptKind::NonStandard
    };
    ClassifiedScript {
        kind,
        id: Some(script_id(b)),
        canonical: Some(script.to_owned()),
    }
}

/// The readable form of a canonical script kept in the store: the mainnet address for
/// standard scripts, else `script:<sha256 id>`.
pub fn display(canonical: &[u8]) -> String {
    let script = Script::from_bytes(canonical);
    match bitcoin::Address::from_script(script, Network::Bitcoin) {
        Ok(a) => a.to_string(),
        Err(_) => Address::Script(script_id(canonical)).to_string(),
    }
}

/// The readable form of a synthetic id, if `a` is one (`coinbase`, `op_return`).
pub fn synthetic_name(a: &Address) -> Option<&'static str> {
    if *a == coinbase_source() {
        Some("coinbase")
    } else if *a == burn_sink() {
        Some("op_return")
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests only
mod tests {
    use super::*;
    use crate::labels::LabelAddress;

    #[test]
    fn p2pk_is_its_p2pkh_address() {
        // Block 9 coinbase output: the key of 12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S.
        let hex = "410411db93e1dcdb8a016b49840f8c53bc1eb68a382e97b1482ecad7b148a6909a5cb2e0eaddfb84ccf9744464f82e160bfa9b8b64f9d4c03f999b8643f656b412a3ac";
        let s = ScriptBuf::from_hex(hex).unwrap();
        let c = classify(&s);
        assert_eq!(c.kind, ScriptKind::P2pk);
        let text = display(c.canonical.as_ref().unwrap().as_bytes());
        assert_eq!(text, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S");
        let label = LabelAddress::parse(&text, None).unwrap();
        assert_eq!(label.indexed(), Some(Address::Script(c.id.unwrap())));
    }

    #[test]
    fn op_return_and_nonstandard() {
        let op = ScriptBuf::from_hex("6a0474657374").unwrap();
        let c = classify(&op);
        assert_eq!((c.kind, c.id), (ScriptKind::OpReturn, None));
        let odd = ScriptBuf::from_hex("51").unwrap(); // OP_TRUE
        let c = classify(&odd);
        assert_eq!(c.kind, ScriptKind::NonStandard);
        let text = display(c.canonical.as_ref().unwrap().as_bytes());
        assert_eq!(
            text.parse::<Address>().unwrap(),
            Address::Script(c.id.unwrap())
        );
        assert_ne!(coinbase_source(), burn_sink());
        assert_eq!(synthetic_name(&coinbase_source()), Some("coinbase"));
    }
}
