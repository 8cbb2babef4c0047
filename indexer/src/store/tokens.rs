//! Token metadata: the symbol and decimals of each token contract, per chain.
//!
//! Written by `index evm`/`follow evm` when a token is first seen (from the built-in list of
//! well-known tokens, else read from the contract by `eth_call`), and by tools that create
//! tokens themselves (the demo). Read by every output that shows amounts in token units.
//!
//! Key: chain u16 (big-endian) + address key ([`Address::write_key`]). Value: postcard
//! [`TokenMeta`].

use super::{
    KeyspaceOp, Store, StoreError, Table, hex,
    keyspaces::{self, Keyspace, Postcard, Raw},
};
use crate::model::{Address, ChainId};
use serde::{Deserialize, Serialize};

/// The keyspace holding token metadata.
const TOKENS: Keyspace<Raw, Postcard<TokenMeta>> = Keyspace::new(&keyspaces::TOKEN_META);

/// Where a token's metadata came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetaSource {
    /// The built-in list of well-known tokens (stablecoins) of the chain.
    Builtin,
    /// Read from the contract (`symbol()`, `decimals()`).
    Chain,
    /// Declared by the tool that deployed the token (the demo).
    Declared,
}

/// A token's metadata. A field the contract does not answer (no such function, a revert, an
/// undecodable answer) is `None`: such a token is shown by address and raw units.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TokenMeta {
    /// Symbol (`USDC`), when known.
    pub symbol: Option<String>,
    /// Decimals (6), when known.
    pub decimals: Option<u8>,
    /// Where it came from.
    pub source: MetaSource,
}

impl TokenMeta {
    /// Symbol and decimals when both are known (what amounts in token units need).
    pub fn units(&self) -> Option<(&str, u8)> {
        Some((self.symbol.as_deref()?, self.decimals?))
    }
}

/// The store key of a token of a chain.
fn key(chain: ChainId, token: &Address) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + token.key_len());
    k.extend_from_slice(&chain.0.to_be_bytes());
    token.write_key(&mut k);
    k
}

/// Decodes a key of the keyspace.
fn decode_key(k: &[u8]) -> Result<(ChainId, Address), StoreError> {
    let bad = || StoreError::Corrupt {
        keyspace: keyspaces::TOKEN_META.name,
        key: hex(k),
        reason: "bad token metadata key".into(),
    };
    let chain = k.first_chunk::<2>().ok_or_else(bad)?;
    let (a, used) = Address::read_key(&k[2..]).ok_or_else(bad)?;
    if 2 + used != k.len() {
        return Err(bad());
    }
    Ok((ChainId(u16::from_be_bytes(*chain)), a))
}

impl Store {
    fn tokens(&self) -> Result<Table<Raw, Postcard<TokenMeta>>, StoreError> {
        self.table(TOKENS)
    }

    /// The metadata of `token` on `chain`, if recorded.
    pub fn token_meta(
        &self,
        chain: ChainId,
        token: &Address,
    ) -> Result<Option<TokenMeta>, StoreError> {
        self.tokens()?.get(key(chain, token))
    }

    /// Every recorded token metadata, ordered by chain and address.
    pub fn token_metas(&self) -> Result<Vec<(ChainId, Address, TokenMeta)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tokens()?.iter() {
            let (k, meta) = kv?;
            let (chain, a) = decode_key(&k)?;
            out.push((chain, a, meta));
        }
        Ok(out)
    }

    /// Records the metadata of `token` on `chain` (replacing what was there).
    pub fn put_token_meta(
        &self,
        chain: ChainId,
        token: &Address,
        meta: &TokenMeta,
    ) -> Result<(), StoreError> {
        self.tokens()?.insert(key(chain, token), meta)
    }

    /// The write of [`Store::put_token_meta`] as an operation for a range's batch
    /// ([`PreparedRange::with_extra`](super::PreparedRange::with_extra)), so that the metadata
    /// of a token is committed together with its first transfers.
    pub fn token_meta_op(
        &self,
        chain: ChainId,
        token: &Address,
        meta: &TokenMeta,
    ) -> Result<KeyspaceOp, StoreError> {
        self.tokens()?.put_op(key(chain, token), meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_lists_in_key_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let a = Address::Evm([0xaa; 20]);
        let b = Address::Evm([0x01; 20]);
        let usdc = TokenMeta {
            symbol: Some("USDC".into()),
            decimals: Some(6),
            source: MetaSource::Builtin,
        };
        let unknown = TokenMeta {
            symbol: None,
            decimals: None,
            source: MetaSource::Chain,
        };
        store.put_token_meta(ChainId(2), &a, &usdc).expect("put");
        store.put_token_meta(ChainId(1), &b, &unknown).expect("put");
        assert_eq!(
            store.token_meta(ChainId(2), &a).expect("get"),
            Some(usdc.clone())
        );
        assert_eq!(store.token_meta(ChainId(1), &a).expect("get"), None);
        let all = store.token_metas().expect("list");
        assert_eq!(
            all,
            vec![
                (ChainId(1), b, unknown.clone()),
                (ChainId(2), a, usdc.clone())
            ]
        );
        assert_eq!(usdc.units(), Some(("USDC", 6)));
        assert_eq!(unknown.units(), None);
    }

    #[test]
    fn a_read_open_without_the_keyspace_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(Store::open(dir.path()).expect("open"));
        let store = Store::open_read(dir.path()).expect("open read");
        assert!(store.token_metas().expect("list").is_empty());
        assert!(!store.db.keyspace_exists(keyspaces::TOKEN_META.name));
    }
}
