//! Esplora REST source (the API of blockstream.info, mempool.space and self-hosted electrs):
//! address-centric crawling without a full node. `/address/:a/txs` (then
//! `/address/:a/txs/chain/:last_seen_txid` for older pages), `/tx/:txid`, and
//! `/block/:hash/txids` for the position of a transaction in its block. Esplora returns every
//! input with its prevout, so inputs resolve without a UTXO set.
//!
//! Crawled transactions are written without a checkpoint ([`UtxoStore::write_loose`]); a crawl
//! refuses a chain that a block source (blk files, RPC) indexes, so the two never mix.

use super::{
    BtcError,
    decode::DecodedOutput,
    script::classify,
    utxo::{FetchedPrevout, LooseTx, UtxoStore},
};
use crate::{labels::LabelAddress, model::ChainId, sync::StopSignal};
use bitcoin::{ScriptBuf, Txid, hashes::Hash as _};
use serde::{Deserialize, Serialize};
use std::{
    collections::{HashMap, HashSet, VecDeque},
    str::FromStr,
    time::Duration,
};

/// One transaction as Esplora returns it (the fields paytrace reads).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EsploraTx {
    /// Txid (display order hex).
    pub txid: String,
    /// Inputs.
    pub vin: Vec<EsploraVin>,
    /// Outputs.
    pub vout: Vec<EsploraVout>,
    /// Confirmation status.
    pub status: EsploraStatus,
}

/// An input.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EsploraVin {
    /// Spent txid.
    pub txid: String,
    /// Spent output index.
    pub vout: u32,
    /// The spent output (absent for the coinbase).
    pub prevout: Option<EsploraVout>,
    /// Whether this is a coinbase input.
    #[serde(default)]
    pub is_coinbase: bool,
}

/// An output.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EsploraVout {
    /// Output script, hex.
    pub scriptpubkey: String,
    /// Value in satoshis.
    pub value: u64,
    /// Address, when standard.
    #[serde(default)]
    pub scriptpubkey_address: Option<String>,
}

/// Confirmation status.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EsploraStatus {
    /// Whether it is in a block.
    pub confirmed: bool,
    /// Block height.
    #[serde(default)]
    pub block_height: Option<u64>,
    /// Block hash.
    #[serde(default)]
    pub block_hash: Option<String>,
    /// Block time.
    #[serde(default)]
    pub block_time: Option<u64>,
}

/// An Esplora HTTP client with retries.
pub struct EsploraSource {
    base: String,
    http: reqwest::Client,
    max_retries: u32,
    page: usize,
    deadline: Duration,
}

/// The total time of one Esplora request, retries included, unless
/// [`EsploraSource::with_deadline`] sets another (as `--deadline-secs` does).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

impl EsploraSource {
    /// A client of the Esplora API at `base` (e.g. `https://blockstream.info/api`).
    pub fn new(base: &str, max_retries: u32, timeout: Duration) -> Result<Self, BtcError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| BtcError::Http {
                url: crate::evm::rpc::redact(base),
                message: e.to_string(),
                retryable: false,
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
            max_retries,
            page: 25,
            deadline: DEFAULT_DEADLINE,
        })
    }

    /// The total time of one request, retries and their waits included: a server that hangs
    /// or keeps failing fails the request after about `deadline`, naming it.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The server's page size of `/address/:a/txs/chain/:last` (25 for Esplora); a shorter
    /// page ends the history.
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }

    /// GETs `path` and parses the JSON body. Retryable failures (transport errors, 408, 429,
    /// 5xx, a truncated or malformed body) are retried with exponential backoff, or after the
    /// server's `Retry-After`, at most `max_retries` times and within the total deadline.
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, BtcError> {
        use backon::BackoffBuilder as _;
        let url = format!("{}{path}", self.base);
        let shown = format!(
            "{}{path}",
            crate::evm::rpc::redact(&self.base).trim_end_matches('/')
        );
        let mut backoff = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(20))
            .with_max_times(usize::try_from(self.max_retries).unwrap_or(usize::MAX))
            .with_jitter()
            .build();
        let mut attempt = 0u32;
        let started = std::time::Instant::now();
        let past_deadline = |attempts: u32, last: &dyn std::fmt::Display| BtcError::Http {
            url: shown.clone(),
            message: format!(
                "no complete answer within the deadline of {}s ({attempts} attempts); last \
                 error: {last}",
                self.deadline.as_secs_f64()
            ),
            retryable: false,
        };
        loop {
            let remaining = self.deadline.saturating_sub(started.elapsed());
            let once = match tokio::time::timeout(remaining, self.get_once(&url, &shown)).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(past_deadline(
                        attempt + 1,
                        &"the server did not answer in time",
                    ));
                }
            };
            let (e, retry_after) = match once {
                Ok(body) => match serde_json::from_slice(&body) {
                    Ok(v) => return Ok(v),
                    // A body cut short or garbled on the way: asking again may help.
                    Err(e) => (
                        BtcError::Http {
                            url: shown.clone(),
                            message: format!("malformed response ({} bytes): {e}", body.len()),
                            retryable: true,
                        },
                        None,
                    ),
                },
                Err(e) => e,
            };
            if !e.is_retryable() {
                return Err(e);
            }
            let Some(wait) = backoff.next() else {
                return Err(e);
            };
            let wait =
                retry_after.map_or(wait, |d: Duration| d.min(crate::evm::rpc::MAX_RETRY_AFTER));
            attempt += 1;
            if started.elapsed() + wait >= self.deadline {
                return Err(past_deadline(attempt, &e));
            }
            tracing::warn!(url = %shown, error = %e, attempt, retry_in_ms = wait.as_millis(), "retrying esplora request");
            tokio::time::sleep(wait).await;
        }
    }

    async fn get_once(
        &self,
        url: &str,
        shown: &str,
    ) -> Result<Vec<u8>, (BtcError, Option<Duration>)> {
        let err = |message: String, retryable| BtcError::Http {
            url: shown.to_owned(),
            message,
            retryable,
        };
        let resp = self.http.get(url).send().await.map_err(|e| {
            (
                err(
                    e.to_string(),
                    e.is_timeout() || e.is_connect() || e.is_request(),
                ),
                None,
            )
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::evm::rpc::parse_retry_after(v, jiff::Timestamp::now()));
        let body = resp
            .bytes()
            .await
            .map_err(|e| (err(e.to_string(), true), None))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            let code = status.as_u16();
            return Err((
                err(
                    format!("http status {code}: {text}"),
                    code == 408 || code == 429 || status.is_server_error(),
                ),
                retry_after,
            ));
        }
        Ok(body.to_vec())
    }

    /// Every confirmed transaction of `address`, newest first, following the
    /// `/txs/chain/:last_seen_txid` pages until a short page.
    pub async fn address_txs(&self, address: &str, max: usize) -> Result<Vec<EsploraTx>, BtcError> {
        let mut out: Vec<EsploraTx> = self.get(&format!("/address/{address}/txs")).await?;
        out.retain(|t| t.status.confirmed);
        let mut page_len = out.len();
        while page_len >= self.page && out.len() < max {
            let Some(last) = out.last().map(|t| t.txid.clone()) else {
                break;
            };
            let page: Vec<EsploraTx> = self
                .get(&format!("/address/{address}/txs/chain/{last}"))
                .await?;
            page_len = page.len();
            out.extend(page.into_iter().filter(|t| t.status.confirmed));
        }
        out.truncate(max);
        Ok(out)
    }

    /// One transaction.
    pub async fn tx(&self, txid: &str) -> Result<EsploraTx, BtcError> {
        self.get(&format!("/tx/{txid}")).await
    }

    /// The txids of a block in block order.
    pub async fn block_txids(&self, hash: &str) -> Result<Vec<String>, BtcError> {
        self.get(&format!("/block/{hash}/txids")).await
    }
}

fn script_of(hex: &str, what: &str) -> Result<ScriptBuf, BtcError> {
    ScriptBuf::from_hex(hex).map_err(|e| BtcError::Malformed {
        what: what.to_owned(),
        message: format!("bad script hex: {e}"),
    })
}

fn txid_of(s: &str, what: &str) -> Result<[u8; 32], BtcError> {
    Txid::from_str(s)
        .map(|t| t.to_byte_array())
        .map_err(|e| BtcError::Malformed {
            what: what.to_owned(),
            message: format!("bad txid {s:?}: {e}"),
        })
}

/// Converts an Esplora transaction at its place in the chain.
pub fn loose_tx(t: &EsploraTx, tx_index: u32) -> Result<LooseTx, BtcError> {
    let what = format!("tx {}", t.txid);
    let coinbase = t.vin.iter().any(|i| i.is_coinbase);
    let mut inputs = Vec::new();
    if !coinbase {
        for i in &t.vin {
            let op = (txid_of(&i.txid, &what)?, i.vout);
            let prev = match &i.prevout {
                Some(p) => {
                    let c = classify(&script_of(&p.scriptpubkey, &what)?);
                    match (c.id, c.canonical) {
                        (Some(id), Some(s)) => Some(FetchedPrevout {
                            id,
                            value: p.value,
                            script: s.into_bytes(),
                        }),
                        _ => None,
                    }
                }
                None => None,
            };
            inputs.push((op, prev));
        }
    }
    let outputs = t
        .vout
        .iter()
        .map(|o| {
            let s = script_of(&o.scriptpubkey, &what)?;
            let c = classify(&s);
            Ok(DecodedOutput {
                value: o.value,
                kind: c.kind,
                id: c.id,
                script: c.canonical.unwrap_or(s),
            })
        })
        .collect::<Result<Vec<_>, BtcError>>()?;
    Ok(LooseTx {
        txid: txid_of(&t.txid, &what)?,
        block: t.status.block_height.unwrap_or(0),
        tx_index,
        time: t.status.block_time.unwrap_or(0),
        coinbase,
        inputs,
        outputs,
    })
}

/// What a crawl did (`--json` of `paytrace index btc --esplora`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct CrawlReport {
    /// Chain name.
    pub chain: String,
    /// Addresses whose history was fetched.
    pub addresses: usize,
    /// Confirmed transactions written.
    pub txs: usize,
    /// New transfers written.
    pub transfers: usize,
    /// Stopped early by a signal or the transaction limit.
    pub truncated: bool,
}

/// A breadth-first crawl from seed addresses, following value forward (to the outputs of
/// transactions the crawled addresses spend from) for a number of hops.
pub struct EsploraCrawl {
    utxo: UtxoStore,
    chain: ChainId,
    src: EsploraSource,
    positions: HashMap<String, Vec<String>>,
}

impl EsploraCrawl {
    /// A crawl writing into `chain`.
    pub fn new(utxo: UtxoStore, chain: ChainId, src: EsploraSource) -> Self {
        Self {
            utxo,
            chain,
            src,
            positions: HashMap::new(),
        }
    }

    async fn tx_index(&mut self, t: &EsploraTx) -> Result<u32, BtcError> {
        let hash = t
            .status
            .block_hash
            .clone()
            .ok_or_else(|| BtcError::Malformed {
                what: format!("tx {}", t.txid),
                message: "confirmed without a block hash".into(),
            })?;
        if !self.positions.contains_key(&hash) {
            let ids = self.src.block_txids(&hash).await?;
            self.positions.insert(hash.clone(), ids);
        }
        let pos = self
            .positions
            .get(&hash)
            .and_then(|ids| ids.iter().position(|x| *x == t.txid))
            .ok_or_else(|| BtcError::Malformed {
                what: format!("block {hash}"),
                message: format!("tx {} is not in the block's txids", t.txid),
            })?;
        u32::try_from(pos).map_err(|_| BtcError::TooLarge {
            what: format!("block {hash}"),
        })
    }

    /// Crawls from `seeds` for `hops` hops, writing at most `max_txs` transactions.
    pub async fn crawl(
        mut self,
        seeds: &[String],
        hops: u32,
        max_txs: usize,
        stop: &StopSignal,
    ) -> Result<CrawlReport, BtcError> {
        let name = self
            .utxo
            .store()
            .chain(self.chain)?
            .map(|c| c.name)
            .unwrap_or_default();
        if self.utxo.store().checkpoint(self.chain)?.is_some() {
            return Err(BtcError::Malformed {
                what: format!("chain {name}"),
                message: "indexed from blocks already; crawl Esplora into another --chain".into(),
            });
        }
        let mut report = CrawlReport {
            chain: name,
            ..Default::default()
        };
        let mut queue: VecDeque<(String, [u8; 32], u32)> = VecDeque::new();
        let mut visited = HashSet::new();
        for s in seeds {
            let a = LabelAddress::parse(s, Some("btc")).map_err(|e| BtcError::Malformed {
                what: format!("seed {s:?}"),
                message: e.to_string(),
            })?;
            if let Some(crate::model::Address::Script(id)) = a.indexed()
                && visited.insert(id)
            {
                queue.push_back((a.to_string(), id, 0));
            }
        }
        let mut written = HashSet::new();
        while let Some((addr, id, depth)) = queue.pop_front() {
            if stop.is_stopped() || report.txs >= max_txs {
                report.truncated = true;
                break;
            }
            let txs = self
                .src
                .address_txs(&addr, max_txs.saturating_sub(report.txs))
                .await?;
            report.addresses += 1;
            let mut loose = Vec::new();
            for t in &txs {
                if !written.insert(t.txid.clone()) {
                    continue;
                }
                let idx = self.tx_index(t).await?;
                let lt = loose_tx(t, idx)?;
                // Follow value forward: the outputs of transactions spending from `addr`.
                let spends = lt
                    .inputs
                    .iter()
                    .any(|(_, p)| p.as_ref().is_some_and(|p| p.id == id));
                if spends && depth < hops {
                    for o in &lt.outputs {
                        if let Some(oid) = o.id
                            && visited.insert(oid)
                        {
                            let text = super::script::display(o.script.as_bytes());
                            if !text.starts_with("script:") {
                                queue.push_back((text, oid, depth + 1));
                            }
                        }
                    }
                }
                loose.push(lt);
            }
            report.txs += loose.len();
            let (u, c) = (self.utxo.clone(), self.chain);
            report.transfers += tokio::task::spawn_blocking(move || u.write_loose(c, &loose))
                .await
                .map_err(|e| BtcError::Malformed {
                    what: "worker task".into(),
                    message: e.to_string(),
                })??;
        }
        self.utxo.store().persist()?;
        Ok(report)
    }
}
