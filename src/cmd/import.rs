//! `paytrace import transfers FILE`: token transfers from an ethereum-etl `token_transfers` CSV
//! (the BigQuery `crypto_ethereum.token_transfers` export), written through the store's normal
//! path (`Store::write_prepared`: blocks, transfers, indexes and checkpoint atomically per
//! range).

use super::Context;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use paytrace_indexer::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, Timestamp, Transfer,
    TransferKey, TransferKind, TxHash, store::PreparedRange,
};
use serde::Serialize;
use std::{collections::BTreeMap, path::PathBuf, process::ExitCode};

/// Import data from files.
#[derive(Debug, Subcommand)]
pub enum ImportCmd {
    /// Token transfers in the ethereum-etl `token_transfers` CSV schema: `token_address,
    /// from_address,to_address,value,transaction_hash,log_index,block_number` and optionally
    /// `block_timestamp` (Unix seconds or `YYYY-MM-DD HH:MM:SS[ UTC]`), in any column order.
    Transfers(TransfersArgs),
}

/// `import transfers`.
#[derive(Debug, Args)]
pub struct TransfersArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// Chain name to import into (registered as an EVM chain on first use).
    #[arg(long, default_value = "imported")]
    pub chain: String,
    /// Fail on the first bad row (nothing imported) instead of skipping bad rows.
    #[arg(long)]
    pub strict: bool,
}

/// A rejected row.
#[derive(Debug, Serialize)]
pub struct Rejected {
    /// 1-based line in the file.
    pub line: u64,
    /// Column.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// What `import transfers` did (`--json`).
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// Chain name.
    pub chain: String,
    /// File.
    pub file: String,
    /// Data rows read.
    pub rows: u64,
    /// Transfers written.
    pub imported: u64,
    /// Rows skipped, with line, field and reason (at most 100 listed).
    pub rejected: Vec<Rejected>,
    /// Number of rejected rows.
    pub rejected_count: u64,
    /// First block written.
    pub first_block: Option<u64>,
    /// Last block written (the new checkpoint).
    pub last_block: Option<u64>,
}

const REQUIRED: [&str; 7] = [
    "token_address",
    "from_address",
    "to_address",
    "value",
    "transaction_hash",
    "log_index",
    "block_number",
];

/// Parses a block timestamp: Unix seconds, or a UTC date-time.
fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u64>() {
        return Ok(v);
    }
    let t = s
        .trim_end_matches(" UTC")
        .trim_end_matches('Z')
        .replace(' ', "T");
    let dt: jiff::civil::DateTime = t
        .parse()
        .map_err(|e| format!("not Unix seconds or a UTC date-time: {e}"))?;
    let ts = dt
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())?
        .timestamp()
        .as_second();
    u64::try_from(ts).map_err(|_| "before 1970".to_owned())
}

/// One parsed row.
struct Row {
    line: u64,
    block: u64,
    log_index: u32,
    time: Option<u64>,
    transfer: Transfer,
}

fn parse_row(
    chain: ChainId,
    rec: &csv::StringRecord,
    col: &BTreeMap<&str, usize>,
    line: u64,
) -> Result<Row, Rejected> {
    let get = |name: &str| col.get(name).and_then(|&i| rec.get(i)).unwrap_or("").trim();
    let bad = |field: &str, reason: String| Rejected {
        line,
        field: field.to_owned(),
        reason,
    };
    let addr = |field: &str| -> Result<Address, Rejected> {
        let s = get(field);
        s.parse::<Address>()
            .map_err(|e| bad(field, format!("{s:?}: {e}")))
            .and_then(|a| match a {
                Address::Evm(_) => Ok(a),
                _ => Err(bad(field, format!("{s:?}: not an EVM address"))),
            })
    };
    let token = addr("token_address")?;
    let from = addr("from_address")?;
    let to = addr("to_address")?;
    let v = get("value");
    let amount: Amount = v.parse().map_err(|e| bad("value", format!("{v:?}: {e}")))?;
    let h = get("transaction_hash");
    let hash: alloy_primitives::B256 = h
        .parse()
        .map_err(|e| bad("transaction_hash", format!("{h:?}: {e}")))?;
    let li = get("log_index");
    let log_index: u32 = li
        .parse()
        .map_err(|e| bad("log_index", format!("{li:?}: {e}")))?;
    let bn = get("block_number");
    let block: u64 = bn
        .parse()
        .map_err(|e| bad("block_number", format!("{bn:?}: {e}")))?;
    let time = match col.get("block_timestamp") {
        Some(_) if !get("block_timestamp").is_empty() => {
            Some(parse_time(get("block_timestamp")).map_err(|e| {
                bad(
                    "block_timestamp",
                    format!("{:?}: {e}", get("block_timestamp")),
                )
            })?)
        }
        _ => None,
    };
    Ok(Row {
        line,
        block,
        log_index,
        time,
        transfer: Transfer {
            key: TransferKey {
                chain,
                block: BlockNumber(block),
                // The schema has no transaction index; the block-level log index orders the
                // transfers of a block.
                tx_index: 0,
                kind: TransferKind::Token,
                position: log_index,
            },
            time: Timestamp(time.unwrap_or(0)),
            tx_hash: TxHash(hash),
            from,
            to,
            asset: Asset::Token(token),
            amount,
            trace_address: Vec::new(),
        },
    })
}

/// A synthetic block hash for imported blocks (the file has none): the chain's name hash is
/// not needed, only uniqueness per number within the chain.
fn block_hash(n: u64) -> alloy_primitives::B256 {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(b"impt");
    b[24..].copy_from_slice(&n.to_be_bytes());
    alloy_primitives::B256::from(b)
}

/// Imports `path` into chain `chain_name`; bad rows are skipped and reported (or fail the
/// whole import with `strict`).
pub fn import_transfers(
    store: &Store,
    path: &std::path::Path,
    chain_name: &str,
    strict: bool,
) -> anyhow::Result<ImportReport> {
    let chain = store.register_chain(chain_name, ChainKind::Evm)?;
    let file = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("cannot read {file}"))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("{file}:1: cannot read the header"))?
        .clone();
    let col: BTreeMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    for r in REQUIRED {
        if !col.contains_key(r) {
            bail!(
                "{file}:1: missing column {r:?} (expected the ethereum-etl token_transfers schema: {}); nothing was imported",
                REQUIRED.join(",")
            );
        }
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut rejected = Vec::new();
    let mut rejected_count = 0u64;
    let mut n = 0u64;
    for rec in rdr.records() {
        n += 1;
        let line = n + 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let rj = Rejected {
                    line,
                    field: "row".into(),
                    reason: e.to_string(),
                };
                if strict {
                    bail!("{file}:{line}: {}; nothing was imported", rj.reason);
                }
                rejected_count += 1;
                if rejected.len() < 100 {
                    rejected.push(rj);
                }
                continue;
            }
        };
        match parse_row(chain, &rec, &col, line) {
            Ok(r) => rows.push(r),
            Err(rj) => {
                if strict {
                    bail!(
                        "{file}:{}: field {}: {}; nothing was imported",
                        rj.line,
                        rj.field,
                        rj.reason
                    );
                }
                tracing::warn!(file = %file, line = rj.line, field = %rj.field, reason = %rj.reason, "bad row skipped");
                rejected_count += 1;
                if rejected.len() < 100 {
                    rejected.push(rj);
                }
            }
        }
    }
    rows.sort_by_key(|r| (r.block, r.log_index, r.line));
    // Duplicate (block, log_index): keep the first, reject the others.
    let mut dedup: Vec<Row> = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(prev) = dedup.last()
            && prev.block == r.block
            && prev.log_index == r.log_index
        {
            let rj = Rejected {
                line: r.line,
                field: "log_index".into(),
                reason: format!(
                    "duplicate log_index {} in block {} (first on line {})",
                    r.log_index, r.block, prev.line
                ),
            };
            if strict {
                bail!("{file}:{}: {}; nothing was imported", rj.line, rj.reason);
            }
            rejected_count += 1;
            if rejected.len() < 100 {
                rejected.push(rj);
            }
            continue;
        }
        dedup.push(r);
    }
    let rows = dedup;
    let (Some(first), Some(last)) = (rows.first().map(|r| r.block), rows.last().map(|r| r.block))
    else {
        return Ok(ImportReport {
            chain: chain_name.to_owned(),
            file,
            rows: n,
            imported: 0,
            rejected,
            rejected_count,
            first_block: None,
            last_block: None,
        });
    };
    let start = match store.checkpoint(chain)? {
        Some(cp) if cp.number.0 >= first => bail!(
            "{file}: block {first} is not after the checkpoint {} of chain {chain_name:?}: import files in block order (or into another --chain); nothing was imported",
            cp.number
        ),
        Some(cp) => cp.number.0 + 1,
        None => first,
    };
    let mut parent = match store.checkpoint(chain)? {
        Some(cp) => cp.hash,
        None => block_hash(start.wrapping_sub(1)),
    };
    let mut time_of: BTreeMap<u64, u64> = BTreeMap::new();
    for r in &rows {
        if let Some(t) = r.time {
            let e = time_of.entry(r.block).or_insert(t);
            *e = (*e).max(t);
        }
    }
    let mut it = rows.into_iter().peekable();
    let mut imported = 0u64;
    let mut last_time = 0u64;
    let mut b = start;
    const PER_COMMIT: u64 = 10_000;
    while b <= last {
        let end = b.saturating_add(PER_COMMIT - 1).min(last);
        let mut refs = Vec::new();
        let mut ts = Vec::new();
        for n in b..=end {
            let time = time_of.get(&n).copied().unwrap_or(last_time);
            last_time = time;
            let hash = block_hash(n);
            refs.push(BlockRef {
                number: BlockNumber(n),
                hash,
                parent,
                time: Timestamp(time),
            });
            parent = hash;
            while let Some(r) = it.next_if(|r| r.block == n) {
                let mut t = r.transfer;
                t.time = Timestamp(time);
                ts.push(t);
            }
        }
        imported += u64::try_from(ts.len()).unwrap_or(u64::MAX);
        store.write_prepared(PreparedRange::new(chain, refs, &ts)?)?;
        b = end + 1;
    }
    store.persist()?;
    Ok(ImportReport {
        chain: chain_name.to_owned(),
        file,
        rows: n,
        imported,
        rejected,
        rejected_count,
        first_block: Some(start),
        last_block: Some(last),
    })
}

impl ImportCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let Self::Transfers(a) = self;
        let store = ctx.open_store()?;
        let r = import_transfers(&store, &a.file, &a.chain, a.strict)?;
        store.persist_for_reopen()?;
        if ctx.json {
            ctx.print_json(&r)?;
        } else {
            println!(
                "{}: imported {} of {} rows into chain {} (blocks {}..={})",
                r.file,
                r.imported,
                r.rows,
                r.chain,
                r.first_block.map_or("-".into(), |b| b.to_string()),
                r.last_block.map_or("-".into(), |b| b.to_string())
            );
            for x in &r.rejected {
                println!("  {}:{}: field {}: {}", r.file, x.line, x.field, x.reason);
            }
            if r.rejected_count > u64::try_from(r.rejected.len()).unwrap_or(0) {
                println!("  ... {} rejected rows in all", r.rejected_count);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
