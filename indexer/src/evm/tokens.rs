//! Token metadata of EVM chains: a built-in list of the main stablecoins per chain id, and
//! `symbol()` / `decimals()` read from a contract by `eth_call`.
//!
//! Contracts answer these optional ERC-20 functions in every way: a `string`, a `bytes32`
//! (early tokens such as MKR), a revert, nothing at all (no such function), or garbage. Only an
//! answer that decodes is kept; anything else leaves the field empty, and such a token is shown
//! by address and raw units, never with a guessed symbol or decimals.

use super::rpc::{RpcClient, RpcError};
use crate::{
    model::Address,
    store::{MetaSource, TokenMeta},
};
use alloy_primitives::Bytes;
use alloy_sol_types::SolCall;
use serde_json::json;

mod abi {
    alloy_sol_types::sol! {
        /// ERC-20 `symbol()` (optional in the standard).
        function symbol() external view returns (string);
        /// ERC-20 `decimals()` (optional in the standard).
        function decimals() external view returns (uint8);
    }

    /// The `bytes32` form of `symbol()` some early tokens use.
    pub mod legacy {
        alloy_sol_types::sol! {
            /// `symbol()` returning `bytes32`.
            function symbol() external view returns (bytes32);
        }
    }
}

/// The longest symbol kept (a longer answer is not a symbol).
pub const MAX_SYMBOL_CHARS: usize = 32;

/// A well-known token of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownToken {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Contract address (EIP-55).
    pub address: &'static str,
    /// Symbol.
    pub symbol: &'static str,
    /// Decimals.
    pub decimals: u8,
}

const fn known(
    chain_id: u64,
    address: &'static str,
    symbol: &'static str,
    decimals: u8,
) -> KnownToken {
    KnownToken {
        chain_id,
        address,
        symbol,
        decimals,
    }
}

/// The main stablecoins of the main EVM chains, by EIP-155 chain id.
pub const KNOWN_TOKENS: &[KnownToken] = &[
    // Ethereum mainnet.
    known(1, "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "USDC", 6),
    known(1, "0xdAC17F958D2ee523a2206206994597C13D831ec7", "USDT", 6),
    known(1, "0x6B175474E89094C44Da98b954EedeAC495271d0F", "DAI", 18),
    // Optimism.
    known(10, "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85", "USDC", 6),
    known(10, "0x94b008aA00579c1307B0EF2c499aD98a8ce58e58", "USDT", 6),
    known(10, "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1", "DAI", 18),
    // BNB Smart Chain (18-decimal stablecoins).
    known(56, "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", "USDC", 18),
    known(56, "0x55d398326f99059fF775485246999027B3197955", "USDT", 18),
    // Polygon PoS.
    known(137, "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "USDC", 6),
    known(
        137,
        "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174",
        "USDC.e",
        6,
    ),
    known(137, "0xc2132D05D31c914a87C6611C10748AEb04B58e8F", "USDT", 6),
    known(137, "0x8f3Cf7ad23Cd3CaDbD9735AFf958023239c6A063", "DAI", 18),
    // Base.
    known(
        8453,
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
        "USDC",
        6,
    ),
    // Arbitrum One.
    known(
        42161,
        "0xaf88d065e77c8cC2239327C5EDb3A432268e5831",
        "USDC",
        6,
    ),
    known(
        42161,
        "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9",
        "USDT",
        6,
    ),
    known(
        42161,
        "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1",
        "DAI",
        18,
    ),
];

/// The built-in metadata of `token` on chain `chain_id`, if it is a well-known token.
pub fn builtin(chain_id: u64, token: &Address) -> Option<TokenMeta> {
    KNOWN_TOKENS
        .iter()
        .filter(|k| k.chain_id == chain_id)
        .find(|k| k.address.parse::<Address>().is_ok_and(|a| a == *token))
        .map(|k| TokenMeta {
            symbol: Some(k.symbol.to_owned()),
            decimals: Some(k.decimals),
            source: MetaSource::Builtin,
        })
}

/// Decodes a `symbol()` answer: an ABI `string`, else a `bytes32` (NUL-padded). Kept only when
/// it is 1..=[`MAX_SYMBOL_CHARS`] characters without control characters.
pub fn decode_symbol(data: &[u8]) -> Option<String> {
    let text = match abi::symbolCall::abi_decode_returns_validate(data) {
        Ok(s) => s,
        Err(_) if data.len() == 32 => {
            let b = abi::legacy::symbolCall::abi_decode_returns_validate(data).ok()?;
            let end = b.iter().position(|c| *c == 0).unwrap_or(32);
            if b[end..].iter().any(|c| *c != 0) {
                return None;
            }
            String::from_utf8(b[..end].to_vec()).ok()?
        }
        Err(_) => return None,
    };
    let text = text.trim().to_owned();
    let ok = !text.is_empty()
        && text.chars().count() <= MAX_SYMBOL_CHARS
        && !text.chars().any(char::is_control);
    ok.then_some(text)
}

/// Decodes a `decimals()` answer (a `uint8`; a larger value does not decode).
pub fn decode_decimals(data: &[u8]) -> Option<u8> {
    abi::decimalsCall::abi_decode_returns_validate(data).ok()
}

/// Calls `data` on `token` at the latest block. `Ok(None)`: the contract gave no answer (a
/// revert or another non-retryable node error about this call); transport failures and the
/// node's retryable errors are errors.
async fn call(
    rpc: &RpcClient,
    token: &Address,
    data: Vec<u8>,
    what: &str,
) -> Result<Option<Bytes>, RpcError> {
    let Some(to) = token.as_evm() else {
        return Ok(None);
    };
    let params = json!([{ "to": to, "data": Bytes::from(data) }, "latest"]);
    match rpc.call::<_, Bytes>("eth_call", params, what).await {
        Ok(b) => Ok(Some(b)),
        Err(e @ RpcError::Node { .. }) => {
            let revert = matches!(&e, RpcError::Node { message, .. } if message.to_ascii_lowercase().contains("revert"));
            if revert || !e.is_retryable() {
                tracing::debug!(token = %token, error = %e, "token metadata call failed");
                Ok(None)
            } else {
                Err(e)
            }
        }
        Err(e) => Err(e),
    }
}

/// The metadata of `token` on the chain with EIP-155 id `chain_id`: the built-in entry of a
/// well-known token, else `symbol()` and `decimals()` read from the contract.
pub async fn fetch_meta(
    rpc: &RpcClient,
    chain_id: Option<u64>,
    token: &Address,
) -> Result<TokenMeta, RpcError> {
    if let Some(m) = chain_id.and_then(|id| builtin(id, token)) {
        return Ok(m);
    }
    let what = format!("token {token}");
    let (symbol, decimals) = futures::try_join!(
        call(rpc, token, abi::symbolCall {}.abi_encode(), &what),
        call(rpc, token, abi::decimalsCall {}.abi_encode(), &what),
    )?;
    let meta = TokenMeta {
        symbol: symbol.and_then(|b| decode_symbol(&b)),
        decimals: decimals.and_then(|b| decode_decimals(&b)),
        source: MetaSource::Chain,
    };
    tracing::info!(token = %token, symbol = ?meta.symbol, decimals = ?meta.decimals, "token metadata read");
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{B256, U256};
    use alloy_sol_types::SolValue;

    #[test]
    fn every_known_token_parses_with_its_checksum() {
        for k in KNOWN_TOKENS {
            let a: Address = k.address.parse().expect(k.address);
            assert_eq!(
                builtin(k.chain_id, &a).and_then(|m| m.decimals),
                Some(k.decimals)
            );
        }
        let usdc: Address = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
            .parse()
            .expect("usdc");
        assert_eq!(builtin(137, &usdc), None, "known on mainnet only");
    }

    #[test]
    fn symbols_decode_from_string_and_bytes32_and_reject_garbage() {
        assert_eq!(
            decode_symbol(&"USDC".to_owned().abi_encode()).as_deref(),
            Some("USDC")
        );
        let mut b = [0u8; 32];
        b[..3].copy_from_slice(b"MKR");
        assert_eq!(
            decode_symbol(B256::from(b).as_slice()).as_deref(),
            Some("MKR")
        );
        assert_eq!(decode_symbol(&[]), None, "no answer");
        assert_eq!(decode_symbol(&[0u8; 32]), None, "empty bytes32");
        assert_eq!(
            decode_symbol(&"".to_owned().abi_encode()),
            None,
            "empty string"
        );
        assert_eq!(
            decode_symbol(&"A\nB".to_owned().abi_encode()),
            None,
            "control character"
        );
        assert_eq!(
            decode_symbol(&"X".repeat(33).abi_encode()),
            None,
            "too long"
        );
        assert_eq!(decode_symbol(&[1, 2, 3]), None);
    }

    #[test]
    fn decimals_decode_only_as_uint8() {
        assert_eq!(decode_decimals(&U256::from(6).abi_encode()), Some(6));
        assert_eq!(decode_decimals(&U256::from(300).abi_encode()), None);
        assert_eq!(decode_decimals(&[]), None);
    }
}
