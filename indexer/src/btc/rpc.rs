//! Bitcoin Core JSON-RPC source: `getblockcount`, `getblockhash`, `getblock HASH 0` (raw hex,
//! decoded locally) or, when a node or recording only answers verbosity 2, `getblock HASH 2`
//! (the header fields and each transaction's `hex` are decoded locally as well, and the block
//! hash is checked). Prevouts the store does not hold are fetched with `getrawtransaction`.
//!
//! Transport, retries and rate limits are the EVM indexer's [`RpcClient`]. Authentication:
//! `user:password@` in the URL, or Bitcoin Core's `.cookie` file (see [`url_with_cookie`]).

use super::{
    BtcError,
    decode::{DecodedBlock, decode_block},
    script::classify,
    sync::BtcSource,
    utxo::{FetchedPrevout, OutPoint},
};
use crate::evm::{RpcClient, RpcError};
use bitcoin::{
    Block, BlockHash, CompactTarget, Transaction, TxMerkleNode,
    block::{Header, Version},
    consensus::encode::deserialize_hex,
    hashes::Hash as _,
};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    path::Path,
    str::FromStr,
    sync::atomic::{AtomicU8, Ordering},
};

/// Builds the node URL with the credentials of a Bitcoin Core cookie file (`user:password`).
pub fn url_with_cookie(url: &str, cookie: &Path) -> Result<String, BtcError> {
    let text = std::fs::read_to_string(cookie).map_err(|source| BtcError::Io {
        path: cookie.to_path_buf(),
        source,
    })?;
    let (user, pass) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| BtcError::Malformed {
            what: cookie.display().to_string(),
            message: "expected user:password".into(),
        })?;
    url_with_auth(url, user, pass)
}

/// Builds the node URL with `user` and `password` (sent as HTTP basic auth).
pub fn url_with_auth(url: &str, user: &str, password: &str) -> Result<String, BtcError> {
    let mut u = reqwest::Url::parse(url).map_err(|e| BtcError::Malformed {
        what: crate::evm::rpc::redact(url),
        message: format!("invalid URL: {e}"),
    })?;
    let bad = |_| BtcError::Malformed {
        what: crate::evm::rpc::redact(url),
        message: "URL cannot carry credentials".into(),
    };
    u.set_username(user).map_err(bad)?;
    u.set_password(Some(password)).map_err(bad)?;
    Ok(u.to_string())
}

const VERBOSITY_UNKNOWN: u8 = 255;

/// A Bitcoin Core node over JSON-RPC.
pub struct RpcSource {
    rpc: RpcClient,
    verbosity: AtomicU8,
    first_height: u64,
}

fn malformed(what: &str, message: impl Into<String>) -> BtcError {
    BtcError::Malformed {
        what: what.to_owned(),
        message: message.into(),
    }
}

fn hash_from_hex(s: &str, what: &str) -> Result<[u8; 32], BtcError> {
    BlockHash::from_str(s)
        .map(|h| h.to_byte_array())
        .map_err(|e| malformed(what, format!("bad hash {s:?}: {e}")))
}

/// Rebuilds a block from a `getblock HASH 2` answer (header fields and each tx's `hex`).
pub fn block_from_verbose(v: &Value, what: &str) -> Result<Block, BtcError> {
    let field = |k: &str| v.get(k).ok_or_else(|| malformed(what, format!("no {k:?}")));
    let str_field = |k: &str| {
        field(k)?
            .as_str()
            .ok_or_else(|| malformed(what, format!("{k:?} is not a string")))
    };
    let int = |k: &str| {
        field(k)?
            .as_i64()
            .ok_or_else(|| malformed(what, format!("{k:?} is not an integer")))
    };
    let prev = match v.get("previousblockhash").and_then(Value::as_str) {
        Some(s) => hash_from_hex(s, what)?,
        None => [0; 32],
    };
    let merkle = hash_from_hex(str_field("merkleroot")?, what)?;
    let bits = u32::from_str_radix(str_field("bits")?, 16)
        .map_err(|e| malformed(what, format!("bad bits: {e}")))?;
    let version = i32::try_from(int("version")?).map_err(|_| malformed(what, "bad version"))?;
    let header = Header {
        version: Version::from_consensus(version),
        prev_blockhash: BlockHash::from_byte_array(prev),
        merkle_root: TxMerkleNode::from_byte_array(merkle),
        time: u32::try_from(int("time")?).map_err(|_| malformed(what, "bad time"))?,
        bits: CompactTarget::from_consensus(bits),
        nonce: u32::try_from(int("nonce")?).map_err(|_| malformed(what, "bad nonce"))?,
    };
    let txs = field("tx")?
        .as_array()
        .ok_or_else(|| malformed(what, "\"tx\" is not an array"))?;
    let mut txdata = Vec::with_capacity(txs.len());
    for (i, t) in txs.iter().enumerate() {
        let hex = t
            .get("hex")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(what, format!("tx {i} has no hex (verbosity 2 needed)")))?;
        let tx: Transaction =
            deserialize_hex(hex).map_err(|e| malformed(what, format!("tx {i}: bad hex: {e}")))?;
        txdata.push(tx);
    }
    let block = Block { header, txdata };
    let want = hash_from_hex(str_field("hash")?, what)?;
    if block.block_hash().to_byte_array() != want {
        return Err(malformed(
            what,
            "the header fields do not hash to the block hash",
        ));
    }
    if !block.check_merkle_root() {
        return Err(malformed(
            what,
            "the transactions do not match the merkle root",
        ));
    }
    Ok(block)
}

impl RpcSource {
    /// A source over `rpc`; `first_height` is where an empty store starts (0 by default).
    pub fn new(rpc: RpcClient, first_height: u64) -> Self {
        Self {
            rpc,
            verbosity: AtomicU8::new(VERBOSITY_UNKNOWN),
            first_height,
        }
    }

    async fn block_hash(&self, height: u64) -> Result<Option<String>, BtcError> {
        match self
            .rpc
            .call::<_, String>("getblockhash", [height], &format!("block {height}"))
            .await
        {
            Ok(h) => Ok(Some(h)),
            // -8: block height out of range.
            Err(RpcError::Node { code: -8, .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_block(&self, height: u64, hash: &str) -> Result<DecodedBlock, BtcError> {
        let what = format!("block {height} ({hash})");
        let mode = self.verbosity.load(Ordering::Relaxed);
        if mode != 2 {
            match self
                .rpc
                .call::<_, Value>("getblock", json!([hash, 0]), &what)
                .await
            {
                Ok(v) => {
                    self.verbosity.store(0, Ordering::Relaxed);
                    return self.decode_answer(&v, height, hash, &what);
                }
                Err(e @ RpcError::Node { .. }) if mode == VERBOSITY_UNKNOWN => {
                    tracing::info!(error = %e, "getblock verbosity 0 refused; using verbosity 2");
                    self.verbosity.store(2, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let v: Value = self.rpc.call("getblock", json!([hash, 2]), &what).await?;
        self.decode_answer(&v, height, hash, &what)
    }

    fn decode_answer(
        &self,
        v: &Value,
        height: u64,
        hash: &str,
        what: &str,
    ) -> Result<DecodedBlock, BtcError> {
        let (block, size) = match v {
            Value::String(hex) => {
                let bytes = alloy_primitives::hex::decode(hex)
                    .map_err(|e| malformed(what, format!("bad hex: {e}")))?;
                let b = super::decode::parse_block(&bytes, &|| what.to_owned())?;
                (b, bytes.len())
            }
            Value::Object(_) => {
                let b = block_from_verbose(v, what)?;
                let size = v
                    .get("size")
                    .and_then(Value::as_u64)
                    .and_then(|s| usize::try_from(s).ok())
                    .unwrap_or(0);
                (b, size)
            }
            _ => return Err(malformed(what, "expected a hex string or a block object")),
        };
        let d = decode_block(&block, height, size);
        if d.hash != hash_from_hex(hash, what)? {
            return Err(malformed(what, "block hash differs from the one asked for"));
        }
        Ok(d)
    }
}

impl BtcSource for RpcSource {
    fn first_height(&self) -> u64 {
        self.first_height
    }

    async fn tip(&self) -> Result<Option<u64>, BtcError> {
        let n: u64 = self
            .rpc
            .call("getblockcount", json!([]), "chain tip")
            .await?;
        Ok(Some(n))
    }

    async fn hash_at(&self, height: u64) -> Result<Option<[u8; 32]>, BtcError> {
        match self.block_hash(height).await? {
            Some(h) => Ok(Some(hash_from_hex(&h, &format!("block {height}"))?)),
            None => Ok(None),
        }
    }

    async fn blocks(&self, from: u64, to: u64) -> Result<Vec<DecodedBlock>, BtcError> {
        let mut out = Vec::new();
        for h in from..=to {
            let hash = self
                .block_hash(h)
                .await?
                .ok_or(BtcError::MissingBlock { height: h })?;
            out.push(self.get_block(h, &hash).await?);
        }
        Ok(out)
    }

    fn fetches_prevouts(&self) -> bool {
        true
    }

    async fn prevouts(
        &self,
        missing: Vec<OutPoint>,
    ) -> Result<HashMap<OutPoint, FetchedPrevout>, BtcError> {
        let mut by_tx: HashMap<[u8; 32], Vec<u32>> = HashMap::new();
        for (t, v) in missing {
            by_tx.entry(t).or_default().push(v);
        }
        let mut out = HashMap::new();
        for (txid, vouts) in by_tx {
            let id = bitcoin::Txid::from_byte_array(txid).to_string();
            let what = format!("tx {id}");
            let v: Value = match self
                .rpc
                .call("getrawtransaction", json!([id, true]), &what)
                .await
            {
                Ok(v) => v,
                // -5: no such transaction (a node without -txindex): stays unresolved.
                Err(RpcError::Node { code: -5, .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let hex = match &v {
                Value::String(s) => s.as_str(),
                _ => v
                    .get("hex")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(&what, "no hex"))?,
            };
            let tx: Transaction =
                deserialize_hex(hex).map_err(|e| malformed(&what, format!("bad hex: {e}")))?;
            if tx.compute_txid().to_byte_array() != txid {
                return Err(malformed(&what, "transaction hashes to another txid"));
            }
            for vout in vouts {
                let o = usize::try_from(vout)
                    .ok()
                    .and_then(|i| tx.output.get(i))
                    .ok_or_else(|| malformed(&what, format!("no output {vout}")))?;
                let c = classify(&o.script_pubkey);
                if let (Some(id), Some(script)) = (c.id, c.canonical) {
                    out.insert(
                        (txid, vout),
                        FetchedPrevout {
                            id,
                            value: o.value.to_sat(),
                            script: script.into_bytes(),
                        },
                    );
                }
            }
        }
        Ok(out)
    }
}
