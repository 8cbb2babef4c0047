//! A small JSON-RPC client for driving anvil in tests.

use super::{Result, TestUtilError};
use alloy_primitives::{Address, B256, Bytes, U256};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// A JSON-RPC client (cheap to clone).
#[derive(Clone, Debug)]
pub struct Rpc {
    client: reqwest::Client,
    url: Arc<str>,
    next_id: Arc<AtomicU64>,
}

/// A transaction for `eth_sendTransaction` from one of anvil's unlocked dev accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRequest {
    /// Sender (an unlocked account).
    pub from: Address,
    /// Receiver; `None` creates a contract.
    pub to: Option<Address>,
    /// Wei sent.
    pub value: U256,
    /// Call data or creation code.
    pub input: Bytes,
    /// Gas limit (always explicit: estimation fails for reverting calls and is slow).
    pub gas: u64,
    /// Nonce; `None` lets the node choose.
    pub nonce: Option<u64>,
}

impl TxRequest {
    /// The JSON object for `eth_sendTransaction` and `anvil_reorg`.
    pub fn to_json(&self) -> Value {
        let mut o = json!({
            "from": self.from,
            "value": self.value,
            "input": self.input,
            "gas": format!("{:#x}", self.gas),
        });
        if let Some(to) = self.to {
            o["to"] = json!(to);
        }
        if let Some(n) = self.nonce {
            o["nonce"] = json!(format!("{n:#x}"));
        }
        o
    }
}

/// A log of a receipt.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// Emitting contract.
    pub address: Address,
    /// Topics.
    pub topics: Vec<B256>,
    /// Data.
    pub data: Bytes,
    /// Index in the block, as the node reports it.
    #[serde(deserialize_with = "quantity")]
    pub log_index: u64,
}

/// A transaction receipt.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    /// Transaction hash.
    pub transaction_hash: B256,
    /// Index in the block.
    #[serde(deserialize_with = "quantity")]
    pub transaction_index: u64,
    /// Block number.
    #[serde(deserialize_with = "quantity")]
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Sender.
    pub from: Address,
    /// Receiver (`None` for a creation).
    pub to: Option<Address>,
    /// 1 success, 0 failure.
    #[serde(deserialize_with = "quantity")]
    pub status: u64,
    /// Created contract.
    pub contract_address: Option<Address>,
    /// Logs.
    pub logs: Vec<Log>,
}

/// A transaction inside a block fetched with full transactions.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct BlockTx {
    /// Hash.
    pub hash: B256,
    /// Sender.
    pub from: Address,
    /// Receiver.
    pub to: Option<Address>,
    /// Wei sent.
    pub value: U256,
    /// Call data.
    pub input: Bytes,
    /// Nonce.
    #[serde(deserialize_with = "quantity")]
    pub nonce: u64,
}

/// A block with full transactions.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// Height.
    #[serde(deserialize_with = "quantity")]
    pub number: u64,
    /// Hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// Unix time.
    #[serde(deserialize_with = "quantity")]
    pub timestamp: u64,
    /// Transactions in block order.
    pub transactions: Vec<BlockTx>,
}

fn parse_quantity(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("0x")?;
    u64::from_str_radix(hex, 16).ok()
}

fn quantity<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse_quantity(&s).ok_or_else(|| serde::de::Error::custom(format!("not a hex quantity: {s:?}")))
}

impl Rpc {
    /// A client for `url`.
    pub fn new(url: &str) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: Arc::from(url),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` and returns the raw `result`.
    pub async fn call_raw(&self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let http = |source| TestUtilError::Http {
            method: method.to_owned(),
            source,
        };
        let resp: Value = self
            .client
            .post(&*self.url)
            .json(&body)
            .send()
            .await
            .map_err(http)?
            .error_for_status()
            .map_err(http)?
            .json()
            .await
            .map_err(http)?;
        if let Some(err) = resp.get("error") {
            return Err(TestUtilError::Rpc {
                method: method.to_owned(),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        resp.get("result")
            .cloned()
            .ok_or_else(|| TestUtilError::Decode {
                method: method.to_owned(),
                detail: format!("no result in {resp}"),
            })
    }

    /// Calls `method` and decodes the `result`.
    pub async fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T> {
        let v = self.call_raw(method, params).await?;
        serde_json::from_value(v).map_err(|e| TestUtilError::Decode {
            method: method.to_owned(),
            detail: e.to_string(),
        })
    }

    async fn call_quantity(&self, method: &str, params: Value) -> Result<u64> {
        let s: String = self.call(method, params).await?;
        parse_quantity(&s).ok_or_else(|| TestUtilError::Decode {
            method: method.to_owned(),
            detail: format!("not a hex quantity: {s:?}"),
        })
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64> {
        self.call_quantity("eth_chainId", json!([])).await
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64> {
        self.call_quantity("eth_blockNumber", json!([])).await
    }

    /// `eth_accounts`: anvil's unlocked dev accounts.
    pub async fn accounts(&self) -> Result<Vec<Address>> {
        self.call("eth_accounts", json!([])).await
    }

    /// `eth_getTransactionCount` at `block` (`latest`, `pending`, or a hex number).
    pub async fn nonce(&self, addr: Address, block: &str) -> Result<u64> {
        self.call_quantity("eth_getTransactionCount", json!([addr, block]))
            .await
    }

    /// `eth_getBalance` at the latest block.
    pub async fn balance(&self, addr: Address) -> Result<U256> {
        self.call("eth_getBalance", json!([addr, "latest"])).await
    }

    /// `eth_sendTransaction`; returns the transaction hash.
    pub async fn send_transaction(&self, tx: &TxRequest) -> Result<B256> {
        self.call("eth_sendTransaction", json!([tx.to_json()]))
            .await
    }

    /// `eth_getTransactionReceipt`; `None` while pending.
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>> {
        self.call("eth_getTransactionReceipt", json!([hash])).await
    }

    /// `eth_getBlockByNumber` with full transactions.
    pub async fn block(&self, number: u64) -> Result<Option<Block>> {
        self.call(
            "eth_getBlockByNumber",
            json!([format!("{number:#x}"), true]),
        )
        .await
    }

    /// `evm_setAutomine`.
    pub async fn set_automine(&self, on: bool) -> Result<()> {
        self.call_raw("evm_setAutomine", json!([on])).await?;
        Ok(())
    }

    /// `evm_mine`: mines one block with the pending transactions.
    pub async fn mine(&self) -> Result<()> {
        self.call_raw("evm_mine", json!([])).await?;
        Ok(())
    }

    /// `anvil_mine`: mines `blocks` blocks.
    pub async fn mine_blocks(&self, blocks: u64) -> Result<()> {
        self.call_raw("anvil_mine", json!([format!("{blocks:#x}")]))
            .await?;
        Ok(())
    }

    /// `evm_setNextBlockTimestamp`.
    pub async fn set_next_block_timestamp(&self, time: u64) -> Result<()> {
        self.call_raw("evm_setNextBlockTimestamp", json!([time]))
            .await?;
        Ok(())
    }

    /// `anvil_reorg`: replaces the last `depth` blocks by `depth` new ones holding `txs`, each
    /// with its block offset (0 = the first replaced height).
    pub async fn reorg(&self, depth: u64, txs: &[(TxRequest, u64)]) -> Result<()> {
        let list: Vec<Value> = txs
            .iter()
            .map(|(tx, offset)| json!([tx.to_json(), offset]))
            .collect();
        self.call_raw("anvil_reorg", json!([depth, list])).await?;
        Ok(())
    }

    /// `trace_block` (parity traces), raw.
    pub async fn trace_block(&self, number: u64) -> Result<Value> {
        self.call_raw("trace_block", json!([format!("{number:#x}")]))
            .await
    }
}
