//! Just enough Solidity ABI encoding for the test contracts' calls and constructors.

use alloy_primitives::{Address, U256, keccak256};

/// A value to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbiValue {
    /// `address`.
    Address(Address),
    /// `uint256` (and smaller unsigned types, which encode the same).
    Uint(U256),
    /// `address[]`.
    Addresses(Vec<Address>),
    /// `uint256[]`.
    Uints(Vec<U256>),
    /// `string`.
    String(String),
}

/// The 4-byte selector of a function signature such as `transfer(address,uint256)`.
pub fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

fn word_u256(v: U256) -> [u8; 32] {
    v.to_be_bytes::<32>()
}

fn word_address(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

fn word_usize(n: usize) -> [u8; 32] {
    word_u256(U256::from(n))
}

/// ABI-encodes a tuple of values (head and tail), without a selector.
pub fn encode_values(values: &[AbiValue]) -> Vec<u8> {
    let head_len = 32 * values.len();
    let mut head = Vec::with_capacity(head_len);
    let mut tail: Vec<u8> = Vec::new();
    for v in values {
        match v {
            AbiValue::Address(a) => head.extend_from_slice(&word_address(*a)),
            AbiValue::Uint(u) => head.extend_from_slice(&word_u256(*u)),
            AbiValue::Addresses(list) => {
                head.extend_from_slice(&word_usize(head_len + tail.len()));
                tail.extend_from_slice(&word_usize(list.len()));
                for a in list {
                    tail.extend_from_slice(&word_address(*a));
                }
            }
            AbiValue::Uints(list) => {
                head.extend_from_slice(&word_usize(head_len + tail.len()));
                tail.extend_from_slice(&word_usize(list.len()));
                for u in list {
                    tail.extend_from_slice(&word_u256(*u));
                }
            }
            AbiValue::String(s) => {
                head.extend_from_slice(&word_usize(head_len + tail.len()));
                tail.extend_from_slice(&word_usize(s.len()));
                tail.extend_from_slice(s.as_bytes());
                let pad = (32 - s.len() % 32) % 32;
                tail.extend(std::iter::repeat_n(0u8, pad));
            }
        }
    }
    head.extend_from_slice(&tail);
    head
}

/// Selector of `signature` followed by the encoded arguments.
pub fn encode_call(signature: &str, args: &[AbiValue]) -> Vec<u8> {
    let mut out = selector(signature).to_vec();
    out.extend_from_slice(&encode_values(args));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;

    #[test]
    fn known_selectors() {
        assert_eq!(
            selector("transfer(address,uint256)"),
            [0xa9, 0x05, 0x9c, 0xbb]
        );
        assert_eq!(
            selector("approve(address,uint256)"),
            [0x09, 0x5e, 0xa7, 0xb3]
        );
    }

    #[test]
    fn dynamic_arrays_use_offsets() {
        let a = Address::repeat_byte(0x11);
        let enc = encode_values(&[
            AbiValue::Addresses(vec![a]),
            AbiValue::Uints(vec![U256::from(5u8), U256::from(6u8)]),
        ]);
        // head: two offsets (0x40, 0x80); tail: [1, a], [2, 5, 6]
        assert_eq!(enc.len(), 32 * 7);
        assert_eq!(enc[31], 0x40);
        assert_eq!(enc[63], 0x80);
        assert_eq!(enc[95], 1);
        assert_eq!(&enc[108..128], a.as_slice());
        assert_eq!(enc[159], 2);
        assert_eq!(enc[191], 5);
        assert_eq!(enc[223], 6);
    }

    #[test]
    fn strings_are_padded() {
        let enc = encode_values(&[AbiValue::String("abc".into())]);
        assert_eq!(enc.len(), 96);
        assert_eq!(enc[31], 0x20);
        assert_eq!(enc[63], 3);
        assert_eq!(&enc[64..67], b"abc");
    }
}
