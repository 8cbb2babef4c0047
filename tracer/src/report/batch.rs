//! Payroll batch CSV: parsing and matching rows to on-chain transfers.
//!
//! Header `payee,address,chain,asset,amount,tx_hash,date` (`tx_hash` and `date` optional,
//! `asset` a symbol or a token contract address, `amount` in token units such as `5178.15`;
//! extra columns are ignored, column order is free). Every row that cannot become a payout is
//! reported with its line and the reason; the others are matched to indexed transfers.
//!
//! A row whose `chain` is `bitcoin` (or `btc`, or the name of a Bitcoin chain of the store)
//! pays BTC (`asset` `BTC` or `native`, `amount` in BTC with up to 8 decimals) to a Bitcoin
//! mainnet address (base58 P2PKH/P2SH, bech32, bech32m); its payout is the output of the
//! provider's transaction to that address.

use super::{AssetBook, AssetInfo, Payout, parse_units, payer_of};
use crate::{FlowSource, TraceError};
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, Direction, Timestamp, TransferKey, TxHash,
};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};

/// Why a row is not a payout.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// A required field is empty or missing.
    MissingField,
    /// The address does not parse.
    BadAddress,
    /// The asset is neither a known symbol nor a token address with known decimals.
    UnknownAsset,
    /// The amount does not parse (or has too many decimals).
    BadAmount,
    /// The transaction hash does not parse.
    BadTxHash,
    /// The date does not parse.
    BadDate,
    /// The row repeats an earlier row.
    Duplicate,
    /// The address has no indexed incoming transfer at all.
    UnknownAddress,
    /// No indexed transfer matches the row.
    Unmatched,
    /// The CSV record itself is malformed.
    BadRecord,
}

/// A batch row that did not become a payout.
#[derive(Clone, Debug, Serialize)]
pub struct RowIssue {
    /// File name.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Kind.
    pub kind: IssueKind,
    /// Details.
    pub message: String,
    /// Payee name, when the row had one.
    pub payee: Option<String>,
}

impl std::fmt::Display for RowIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A parsed batch row.
#[derive(Clone, Debug)]
pub struct BatchRow {
    /// 1-based line.
    pub line: u64,
    /// Payee name.
    pub payee: String,
    /// Payee address.
    pub address: Address,
    /// The address as written in the file.
    pub address_text: String,
    /// The amount as written, with the asset's symbol (`0.25 BTC`).
    pub amount_text: String,
    /// Chain name, if given.
    pub chain: Option<String>,
    /// Asset.
    pub asset: Asset,
    /// Amount, raw units.
    pub amount: Amount,
    /// Transaction hash, if given.
    pub tx_hash: Option<TxHash>,
    /// Date (UTC day) of the payout, if given.
    pub date: Option<paytrace_indexer::labels::Date>,
}

/// The batch file is unusable as a whole.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The header lacks a required column.
    #[error(
        "{file}:1: the header has no `{column}` column (expected payee,address,chain,asset,amount[,tx_hash,date])"
    )]
    MissingColumn {
        /// File.
        file: String,
        /// Column.
        column: &'static str,
    },
    /// The header cannot be read.
    #[error("{file}:1: cannot read the header: {reason}")]
    Header {
        /// File.
        file: String,
        /// Why.
        reason: String,
    },
}

/// Whether a batch row's `chain` names a Bitcoin chain: `bitcoin`, `btc`, or one of
/// `bitcoin_chains` (names of the store's Bitcoin chains), case-insensitively.
pub fn is_bitcoin_chain(chain: &str, bitcoin_chains: &[String]) -> bool {
    let c = chain.trim();
    c.eq_ignore_ascii_case("bitcoin")
        || c.eq_ignore_ascii_case("btc")
        || bitcoin_chains.iter().any(|b| b.eq_ignore_ascii_case(c))
}

/// The payee address of a `chain = bitcoin` batch row: a Bitcoin mainnet address (base58
/// P2PKH/P2SH with a valid checksum, or bech32/bech32m of a valid witness version), as the
/// indexer's address of its output script. The message says what is wrong (another network,
/// a bad checksum, an EVM address).
pub fn parse_bitcoin_address(text: &str) -> Result<Address, String> {
    let t = text.trim();
    if t.starts_with("0x") || t.starts_with("0X") {
        return Err(format!("{t:?} is an EVM address, not a Bitcoin address"));
    }
    paytrace_indexer::btc::address::parse_mainnet(t).map_err(|e| format!("{t:?} is {e}"))
}

/// What a `chain = bitcoin` row pays: BTC, 8 decimals.
fn btc_info() -> AssetInfo {
    AssetInfo {
        symbol: "BTC".to_owned(),
        decimals: 8,
        asset: Asset::Native,
    }
}

/// Parses a batch CSV; returns the good rows and the issues (bad rows and duplicates). Rows
/// whose `chain` is `bitcoin` or `btc` are Bitcoin rows (see [`parse_with_chains`]).
pub fn parse(
    file: &str,
    reader: impl std::io::Read,
    assets: &AssetBook,
) -> Result<(Vec<BatchRow>, Vec<RowIssue>), BatchError> {
    parse_with_chains(file, reader, assets, &[])
}

/// [`parse`], where a row whose `chain` is one of `bitcoin_chains` (the store's Bitcoin chain
/// names) is also a Bitcoin row.
pub fn parse_with_chains(
    file: &str,
    reader: impl std::io::Read,
    assets: &AssetBook,
    bitcoin_chains: &[String],
) -> Result<(Vec<BatchRow>, Vec<RowIssue>), BatchError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(reader);
    let header = rdr.headers().map_err(|e| BatchError::Header {
        file: file.to_owned(),
        reason: e.to_string(),
    })?;
    let col = |name: &str| {
        header.iter().position(|h| {
            h.trim()
                .trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case(name)
        })
    };
    let need = |name: &'static str| {
        col(name).ok_or(BatchError::MissingColumn {
            file: file.to_owned(),
            column: name,
        })
    };
    let (c_payee, c_addr, c_asset, c_amount) = (
        need("payee")?,
        need("address")?,
        need("asset")?,
        need("amount")?,
    );
    let (c_chain, c_tx, c_date) = (col("chain"), col("tx_hash"), col("date"));
    let mut rows = Vec::new();
    let mut issues = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                issues.push(RowIssue {
                    file: file.to_owned(),
                    line,
                    kind: IssueKind::BadRecord,
                    message: format!("malformed CSV record: {e}"),
                    payee: None,
                });
                continue;
            }
        }
        let line = rec.position().map_or(line, |p| p.line());
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).filter(|s| !s.is_empty());
        let payee = get(Some(c_payee)).map(str::to_owned);
        let issue = |kind, message: String| RowIssue {
            file: file.to_owned(),
            line,
            kind,
            message,
            payee: payee.clone(),
        };
        let row = (|| {
            let name = payee
                .clone()
                .ok_or_else(|| issue(IssueKind::MissingField, "empty `payee`".into()))?;
            let addr_text = get(Some(c_addr))
                .ok_or_else(|| issue(IssueKind::MissingField, "empty `address`".into()))?;
            let chain_text = get(c_chain);
            let bitcoin = chain_text.is_some_and(|c| is_bitcoin_chain(c, bitcoin_chains));
            let address: Address = if bitcoin {
                parse_bitcoin_address(addr_text)
                    .map_err(|e| issue(IssueKind::BadAddress, format!("field `address`: {e}")))?
            } else {
                addr_text.parse().map_err(|e| {
                    let hint = if parse_bitcoin_address(addr_text).is_ok() {
                        " (a Bitcoin address: set the row's `chain` to bitcoin)"
                    } else {
                        ""
                    };
                    issue(IssueKind::BadAddress, format!("field `address`: {e}{hint}"))
                })?
            };
            let asset_text = get(Some(c_asset))
                .ok_or_else(|| issue(IssueKind::MissingField, "empty `asset`".into()))?;
            let btc = btc_info();
            let info = if bitcoin {
                if !(asset_text.eq_ignore_ascii_case("btc")
                    || asset_text.eq_ignore_ascii_case("native"))
                {
                    return Err(issue(
                        IssueKind::UnknownAsset,
                        format!(
                            "field `asset`: {asset_text:?} on a bitcoin row (bitcoin rows pay BTC)"
                        ),
                    ));
                }
                &btc
            } else {
                assets.resolve(asset_text).ok_or_else(|| {
                    issue(
                        IssueKind::UnknownAsset,
                        format!(
                            "field `asset`: {asset_text:?} is not a configured token (symbol or contract address with decimals)"
                        ),
                    )
                })?
            };
            let amount_text = get(Some(c_amount))
                .ok_or_else(|| issue(IssueKind::MissingField, "empty `amount`".into()))?;
            let amount = parse_units(amount_text, info.decimals)
                .map_err(|e| issue(IssueKind::BadAmount, format!("field `amount`: {e}")))?;
            if amount.is_zero() {
                return Err(issue(IssueKind::BadAmount, "field `amount`: zero".into()));
            }
            let tx_hash = match get(c_tx) {
                None => None,
                Some(t) => Some(TxHash(t.parse().map_err(|_| {
                    issue(
                        IssueKind::BadTxHash,
                        if bitcoin {
                            format!("field `tx_hash`: {t:?} is not a txid (64 hex digits)")
                        } else {
                            format!("field `tx_hash`: {t:?} is not a 0x-prefixed 32-byte hash")
                        },
                    )
                })?)),
            };
            let date = match get(c_date) {
                None => None,
                Some(d) => Some(paytrace_indexer::labels::parse_date(d).ok_or_else(|| {
                    issue(
                        IssueKind::BadDate,
                        format!("field `date`: {d:?} is not a date (YYYY-MM-DD)"),
                    )
                })?),
            };
            Ok(BatchRow {
                line,
                payee: name,
                address,
                address_text: addr_text.to_owned(),
                amount_text: format!("{amount_text} {}", info.symbol),
                chain: chain_text.map(str::to_owned),
                asset: info.asset,
                amount,
                tx_hash,
                date,
            })
        })();
        match row {
            Ok(r) => {
                let key = format!(
                    "{}|{}|{}|{}|{:?}|{:?}",
                    r.payee.to_lowercase(),
                    r.address,
                    r.asset,
                    r.amount,
                    r.tx_hash,
                    r.date
                );
                if let Some(first) = seen.get(&key) {
                    issues.push(RowIssue {
                        file: file.to_owned(),
                        line,
                        kind: IssueKind::Duplicate,
                        message: format!("duplicate of line {first}"),
                        payee: Some(r.payee),
                    });
                } else {
                    seen.insert(key, line);
                    rows.push(r);
                }
            }
            Err(i) => issues.push(i),
        }
    }
    Ok((rows, issues))
}

/// Matches rows to indexed transfers into the row's address of the row's asset and amount
/// (and transaction and UTC day when given; from one of `providers` when given). Each transfer
/// matches one row at most, the earliest first. Rows without a match become issues.
pub fn match_rows<S: FlowSource>(
    source: &S,
    file: &str,
    rows: &[BatchRow],
    providers: &[Address],
    chain: Option<ChainId>,
) -> Result<(Vec<Payout>, Vec<RowIssue>), TraceError> {
    let mut used: BTreeSet<TransferKey> = BTreeSet::new();
    let mut payouts = Vec::new();
    let mut issues = Vec::new();
    for r in rows {
        let incoming = source
            .address_transfers(&r.address, Direction::Incoming, chain)
            .map_err(TraceError::source)?;
        let day_of = |t: Timestamp| {
            i64::try_from(t.0)
                .ok()
                .and_then(paytrace_indexer::labels::date_of_unix)
        };
        let mut found = None;
        for t in incoming.iter().filter(|t| {
            !used.contains(&t.key)
                && t.asset == r.asset
                && t.amount == r.amount
                && r.tx_hash.is_none_or(|h| h == t.tx_hash)
                && r.date.is_none_or(|d| day_of(t.time) == Some(d))
        }) {
            // The payer: the sender, or a Bitcoin transaction's largest (provider) input.
            if let Some(from) = payer_of(source, t, providers, chain)? {
                found = Some((t, from));
                break;
            }
        }
        match found {
            Some((t, from)) => {
                used.insert(t.key);
                let mut p = Payout::from_transfer(r.payee.clone(), t, Some(r.line));
                p.from = from;
                payouts.push(p);
            }
            None => {
                let (kind, message) = if incoming.is_empty() {
                    (
                        IssueKind::UnknownAddress,
                        format!(
                            "address {} has no indexed incoming transfer",
                            r.address_text
                        ),
                    )
                } else {
                    (
                        IssueKind::Unmatched,
                        format!(
                            "no indexed transfer of {} to {}{}{}{}",
                            r.amount_text,
                            r.address_text,
                            if providers.is_empty() {
                                ""
                            } else {
                                " from the provider"
                            },
                            r.tx_hash.map(|h| format!(" in {h}")).unwrap_or_default(),
                            r.date.map(|d| format!(" on {d}")).unwrap_or_default()
                        ),
                    )
                };
                issues.push(RowIssue {
                    file: file.to_owned(),
                    line: r.line,
                    kind,
                    message,
                    payee: Some(r.payee.clone()),
                });
            }
        }
    }
    payouts.sort_by_key(|p| p.key);
    Ok((payouts, issues))
}
