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
        Some(_) if !get("block_timestamp").is_empty() => Some(
            super::time_arg::parse_instant_utc(get("block_timestamp")).map_err(|e| {
                bad(
                    "block_timestamp",
                    format!("{:?}: {e}", get("block_timestamp")),
                )
            })?,
        ),
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

/// Prefix of the synthetic block hashes of imported blocks (`impt`, then zeros, then the block
/// number): how `import transfers` recognises a chain it wrote itself.
const IMPORTED_HASH_PREFIX: [u8; 24] = {
    let mut p = [0u8; 24];
    p[0] = b'i';
    p[1] = b'm';
    p[2] = b'p';
    p[3] = b't';
    p
};

/// A synthetic block hash for imported blocks (the file has none): only uniqueness per number
/// within the chain is needed.
fn block_hash(n: u64) -> alloy_primitives::B256 {
    let mut b = [0u8; 32];
    b[..24].copy_from_slice(&IMPORTED_HASH_PREFIX);
    b[24..].copy_from_slice(&n.to_be_bytes());
    alloy_primitives::B256::from(b)
}

/// Whether `hash` is a synthetic hash of an imported block.
fn is_imported_hash(hash: &alloy_primitives::B256) -> bool {
    hash.as_slice().starts_with(&IMPORTED_HASH_PREFIX)
}

/// Refuses a chain whose blocks come from another source (a node through `index evm`/`follow`,
/// blk files, the demo): imported blocks would fill every block number from its checkpoint to
/// the file's blocks with synthetic empty blocks and break the hash chain `follow` compares
/// with the node.
fn check_importable(store: &Store, chain_name: &str) -> anyhow::Result<()> {
    let Some(info) = store.chain_by_name(chain_name)? else {
        return Ok(());
    };
    if info.kind != ChainKind::Evm {
        bail!(
            "chain {chain_name:?} is a {:?} chain indexed by `index btc`: `import transfers` only writes EVM token transfers; import into another --chain (default \"imported\"); nothing was imported",
            info.kind
        );
    }
    match store.checkpoint(info.id)? {
        Some(cp) if !is_imported_hash(&cp.hash) => bail!(
            "chain {chain_name:?} is indexed from a node (by `index evm`/`follow`, or by the demo: its last block {} has hash {}, not an imported block): importing a file into it would write synthetic blocks into that chain and break `follow`; import into another --chain (default \"imported\"); nothing was imported",
            cp.number,
            cp.hash
        ),
        _ => Ok(()),
    }
}

/// Most transfers held before a commit (a block with more is committed whole).
const TRANSFERS_PER_COMMIT: usize = 20_000;
/// Most blocks (empty ones included) per commit.
const BLOCKS_PER_COMMIT: u64 = 10_000;

/// What one pass over the file saw.
#[derive(Default)]
struct Scan {
    /// Data rows read.
    rows: u64,
    /// Rejected rows (at most 100 kept).
    rejected: Vec<Rejected>,
    /// Number of rejected rows.
    rejected_count: u64,
    /// First and last block of an accepted row.
    blocks: Option<(u64, u64)>,
}

impl Scan {
    fn reject(&mut self, rj: Rejected, log: bool, file: &str) {
        if log {
            tracing::warn!(file = %file, line = rj.line, field = %rj.field, reason = %rj.reason, "bad row skipped");
        }
        self.rejected_count += 1;
        if self.rejected.len() < 100 {
            self.rejected.push(rj);
        }
    }
}

/// Reads `path` once, row by row, and hands the accepted rows of each block to `on_block` in
/// block order (sorted by log index, duplicates of a (block, log index) rejected). Only one
/// block's rows are held. A row whose block is lower than the previous row's is an error
/// naming both lines: the file must be in block order.
fn scan_file(
    path: &std::path::Path,
    chain: ChainId,
    strict: bool,
    log: bool,
    mut on_block: impl FnMut(u64, Vec<Row>) -> anyhow::Result<()>,
) -> anyhow::Result<Scan> {
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
    let mut scan = Scan::default();
    // The file is read twice (checked, then written): one bar per pass, in bytes.
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let bar = super::progress::bar(if log { "importing" } else { "checking" }, size, "bytes");
    // The rows of the current block and the line of its first row.
    let mut block: Vec<Row> = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    let mut rec = csv::StringRecord::new();
    let mut flush = |rows: &mut Vec<Row>, scan: &mut Scan| -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_by_key(|r| (r.log_index, r.line));
        let mut kept: Vec<Row> = Vec::with_capacity(rows.len());
        for r in rows.drain(..) {
            if let Some(prev) = kept.last()
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
                scan.reject(rj, log, &file);
                continue;
            }
            kept.push(r);
        }
        let b = kept.first().map_or(0, |r| r.block);
        scan.blocks = Some(scan.blocks.map_or((b, b), |(f, _)| (f, b)));
        on_block(b, kept)
    };
    loop {
        let line = scan.rows + 2;
        if let Some(b) = &bar
            && scan.rows % 4096 == 0
        {
            b.set_position(rdr.position().byte());
        }
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                scan.rows += 1;
                let rj = Rejected {
                    line,
                    field: "row".into(),
                    reason: e.to_string(),
                };
                if strict {
                    bail!("{file}:{line}: {}; nothing was imported", rj.reason);
                }
                scan.reject(rj, log, &file);
                continue;
            }
        }
        scan.rows += 1;
        let row = match parse_row(chain, &rec, &col, line) {
            Ok(r) => r,
            Err(rj) => {
                if strict {
                    bail!(
                        "{file}:{}: field {}: {}; nothing was imported",
                        rj.line,
                        rj.field,
                        rj.reason
                    );
                }
                scan.reject(rj, log, &file);
                continue;
            }
        };
        match current {
            Some((b, _)) if row.block == b => {}
            Some((b, first_line)) if row.block < b => bail!(
                "{file}:{line}: block_number {} comes after block {b} (line {first_line}): rows must be in block order (sort the file by block_number, e.g. `(head -n 1 FILE; tail -n +2 FILE | sort -t, -k N,N -n) > sorted.csv` with N the block_number column); nothing was imported",
                row.block
            ),
            _ => {
                flush(&mut block, &mut scan)?;
                current = Some((row.block, line));
            }
        }
        block.push(row);
    }
    flush(&mut block, &mut scan)?;
    super::progress::finish(bar.as_ref());
    Ok(scan)
}

/// Blocks and transfers waiting for the next commit.
struct Pending<'a> {
    store: &'a Store,
    chain: ChainId,
    refs: Vec<BlockRef>,
    transfers: Vec<Transfer>,
    parent: alloy_primitives::B256,
    /// The next block number to write.
    next: u64,
    /// Timestamp of the last block written (blocks without a timestamp inherit it).
    last_time: u64,
    imported: u64,
}

impl Pending<'_> {
    fn push_block(&mut self, n: u64, time: u64, rows: Vec<Row>) -> anyhow::Result<()> {
        let hash = block_hash(n);
        self.refs.push(BlockRef {
            number: BlockNumber(n),
            hash,
            parent: self.parent,
            time: Timestamp(time),
        });
        self.parent = hash;
        self.last_time = time;
        self.next = n + 1;
        for r in rows {
            let mut t = r.transfer;
            t.time = Timestamp(time);
            self.transfers.push(t);
        }
        if self.transfers.len() >= TRANSFERS_PER_COMMIT
            || u64::try_from(self.refs.len()).unwrap_or(u64::MAX) >= BLOCKS_PER_COMMIT
        {
            self.commit()?;
        }
        Ok(())
    }

    /// Writes the blocks up to `n` (exclusive) that have no rows.
    fn fill_to(&mut self, n: u64) -> anyhow::Result<()> {
        while self.next < n {
            let t = self.last_time;
            self.push_block(self.next, t, Vec::new())?;
        }
        Ok(())
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        if self.refs.is_empty() {
            return Ok(());
        }
        let refs = std::mem::take(&mut self.refs);
        let ts = std::mem::take(&mut self.transfers);
        self.imported += u64::try_from(ts.len()).unwrap_or(u64::MAX);
        self.store
            .write_prepared(PreparedRange::new(self.chain, refs, &ts)?)?;
        Ok(())
    }
}

/// Imports `path` into chain `chain_name`; bad rows are skipped and reported (or fail the
/// whole import with `strict`).
///
/// The file is read twice, row by row: a first pass checks the header, the block order and
/// (with `strict`) every row, so that a refused file writes nothing; the second writes the
/// blocks as they come, committing every [`TRANSFERS_PER_COMMIT`] transfers or
/// [`BLOCKS_PER_COMMIT`] blocks. Memory holds one commit, whatever the file's size.
pub fn import_transfers(
    store: &Store,
    path: &std::path::Path,
    chain_name: &str,
    strict: bool,
) -> anyhow::Result<ImportReport> {
    check_importable(store, chain_name)?;
    let file = path.display().to_string();
    let existing = store.chain_by_name(chain_name)?.map(|c| c.id);
    // The first pass needs no chain id (its rows are dropped); a new chain is registered only
    // once the file is accepted.
    let check = scan_file(
        path,
        existing.unwrap_or(ChainId(0)),
        strict,
        false,
        |_, _| Ok(()),
    )?;
    let Some((first, last)) = check.blocks else {
        return Ok(ImportReport {
            chain: chain_name.to_owned(),
            file,
            rows: check.rows,
            imported: 0,
            rejected: check.rejected,
            rejected_count: check.rejected_count,
            first_block: None,
            last_block: None,
        });
    };
    let chain = store.register_chain(chain_name, ChainKind::Evm)?;
    let checkpoint = store.checkpoint(chain)?;
    let start = match &checkpoint {
        Some(cp) if cp.number.0 >= first => bail!(
            "{file}: block {first} is not after the checkpoint {} of chain {chain_name:?}: import files in block order (or into another --chain); nothing was imported",
            cp.number
        ),
        Some(cp) => cp.number.0 + 1,
        None => first,
    };
    let mut pending = Pending {
        store,
        chain,
        refs: Vec::new(),
        transfers: Vec::new(),
        parent: checkpoint.map_or_else(|| block_hash(start.wrapping_sub(1)), |cp| cp.hash),
        next: start,
        last_time: 0,
        imported: 0,
    };
    let scan = scan_file(path, chain, strict, true, |n, rows| {
        pending.fill_to(n)?;
        let time = rows
            .iter()
            .filter_map(|r| r.time)
            .max()
            .unwrap_or(pending.last_time);
        pending.push_block(n, time, rows)
    })?;
    pending.commit()?;
    if scan.blocks != check.blocks || scan.rows != check.rows {
        bail!(
            "{file} changed while it was imported ({} rows, then {}): blocks {start}..={} were written; check the chain with `paytrace stats`",
            check.rows,
            scan.rows,
            pending.next.saturating_sub(1)
        );
    }
    store.persist()?;
    Ok(ImportReport {
        chain: chain_name.to_owned(),
        file,
        rows: scan.rows,
        imported: pending.imported,
        rejected: scan.rejected,
        rejected_count: scan.rejected_count,
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
