//! The ethereum-etl CSV source: token transfers from a `token_transfers` export (the BigQuery
//! `crypto_ethereum.token_transfers` table), written through the store's normal path
//! ([`Store::write_prepared`]: blocks, transfers, indexes and checkpoint atomically per range).
//!
//! Streaming with bounded memory: the file is read twice, row by row (checked, then written),
//! and memory holds one commit whatever its size. Bad rows are skipped and reported with their
//! line and field (or fail the whole import with `strict`); a refused file writes nothing. A
//! chain that another source indexes (a node, blk files, the demo) is refused: imported blocks
//! are synthetic.

use crate::{
    Address, Amount, Asset, BlockNumber, BlockRef, ChainId, ChainKind, Store, StoreError,
    Timestamp, Transfer, TransferKey, TransferKind, TxHash, store::PreparedRange,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why an import failed (nothing was imported, unless the file changed while it was read).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The file cannot be opened.
    #[error("cannot read {file}")]
    Read {
        /// The file.
        file: String,
        /// The reader's error.
        #[source]
        source: csv::Error,
    },
    /// The header cannot be read.
    #[error("{file}:1: cannot read the header")]
    Header {
        /// The file.
        file: String,
        /// The reader's error.
        #[source]
        source: csv::Error,
    },
    /// A required column is missing.
    #[error(
        "{file}:1: missing column {column:?} (expected the ethereum-etl token_transfers schema: {expected}); nothing was imported"
    )]
    MissingColumn {
        /// The file.
        file: String,
        /// The column.
        column: &'static str,
        /// The required columns.
        expected: String,
    },
    /// A bad row with `strict`.
    #[error("{file}:{line}: field {field}: {reason}; nothing was imported")]
    BadField {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// The column.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// An unreadable row, or a duplicate (block, log index), with `strict`.
    #[error("{file}:{line}: {reason}; nothing was imported")]
    BadRow {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Rows out of block order.
    #[error(
        "{file}:{line}: block_number {block} comes after block {previous} (line {previous_line}): rows must be in block order (sort the file by block_number, e.g. `(head -n 1 FILE; tail -n +2 FILE | sort -t, -k N,N -n) > sorted.csv` with N the block_number column); nothing was imported"
    )]
    OutOfOrder {
        /// The file.
        file: String,
        /// 1-based line.
        line: u64,
        /// Its block.
        block: u64,
        /// The block before it.
        previous: u64,
        /// The first line of that block.
        previous_line: u64,
    },
    /// The chain is a Bitcoin-style chain.
    #[error(
        "chain {chain:?} is a {kind:?} chain indexed by `index btc`: `import transfers` only writes EVM token transfers; import into another --chain (default \"imported\"); nothing was imported"
    )]
    NotEvm {
        /// The chain.
        chain: String,
        /// Its kind.
        kind: ChainKind,
    },
    /// The chain is indexed from a node (or by the demo).
    #[error(
        "chain {chain:?} is indexed from a node (by `index evm`/`follow`, or by the demo: its last block {block} has hash {hash}, not an imported block): importing a file into it would write synthetic blocks into that chain and break `follow`; import into another --chain (default \"imported\"); nothing was imported"
    )]
    NodeIndexed {
        /// The chain.
        chain: String,
        /// Its last block.
        block: BlockNumber,
        /// That block's hash.
        hash: alloy_primitives::B256,
    },
    /// The file's first block is not after the chain's checkpoint.
    #[error(
        "{file}: block {first} is not after the checkpoint {checkpoint} of chain {chain:?}: import files in block order (or into another --chain); nothing was imported"
    )]
    NotAfterCheckpoint {
        /// The file.
        file: String,
        /// Its first block.
        first: u64,
        /// The chain's checkpoint.
        checkpoint: BlockNumber,
        /// The chain.
        chain: String,
    },
    /// The file changed between the two passes.
    #[error(
        "{file} changed while it was imported ({before} rows, then {after}): blocks {start}..={end} were written; check the chain with `paytrace stats`"
    )]
    Changed {
        /// The file.
        file: String,
        /// Rows of the first pass.
        before: u64,
        /// Rows of the second.
        after: u64,
        /// First block written.
        start: u64,
        /// Last block written.
        end: u64,
    },
}

/// Which pass over the file a [`Progress`] event is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pass {
    /// The first pass: checks the file, writes nothing.
    Check,
    /// The second pass: writes the blocks.
    Import,
}

/// Progress of an import, for a progress bar.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Progress {
    /// A pass starts over a file of `bytes` bytes.
    Start {
        /// The pass.
        pass: Pass,
        /// The file's size.
        bytes: u64,
    },
    /// The pass has read `bytes` bytes.
    At {
        /// Bytes read.
        bytes: u64,
    },
    /// The pass is done.
    Done,
}

/// A rejected row.
#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    /// 1-based line in the file.
    pub line: u64,
    /// Column.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// What an import did (`import transfers --json`).
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
            crate::time::parse_instant_utc(get("block_timestamp")).map_err(|e| {
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
fn check_importable(store: &Store, chain_name: &str) -> Result<(), ImportError> {
    let Some(info) = store.chain_by_name(chain_name)? else {
        return Ok(());
    };
    if info.kind != ChainKind::Evm {
        return Err(ImportError::NotEvm {
            chain: chain_name.to_owned(),
            kind: info.kind,
        });
    }
    match store.checkpoint(info.id)? {
        Some(cp) if !is_imported_hash(&cp.hash) => Err(ImportError::NodeIndexed {
            chain: chain_name.to_owned(),
            block: cp.number,
            hash: cp.hash,
        }),
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
    progress: &mut dyn FnMut(Progress),
    mut on_block: impl FnMut(u64, Vec<Row>) -> Result<(), ImportError>,
) -> Result<Scan, ImportError> {
    let file = path.display().to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|source| ImportError::Read {
            file: file.clone(),
            source,
        })?;
    let headers = rdr
        .headers()
        .map_err(|source| ImportError::Header {
            file: file.clone(),
            source,
        })?
        .clone();
    let col: BTreeMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    for r in REQUIRED {
        if !col.contains_key(r) {
            return Err(ImportError::MissingColumn {
                file,
                column: r,
                expected: REQUIRED.join(","),
            });
        }
    }
    let mut scan = Scan::default();
    // The file is read twice (checked, then written): one bar per pass, in bytes.
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    progress(Progress::Start {
        pass: if log { Pass::Import } else { Pass::Check },
        bytes: size,
    });
    // The rows of the current block and the line of its first row.
    let mut block: Vec<Row> = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    let mut rec = csv::StringRecord::new();
    let mut flush = |rows: &mut Vec<Row>, scan: &mut Scan| -> Result<(), ImportError> {
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
                    return Err(ImportError::BadRow {
                        file: file.clone(),
                        line: rj.line,
                        reason: rj.reason,
                    });
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
        if scan.rows % 4096 == 0 {
            progress(Progress::At {
                bytes: rdr.position().byte(),
            });
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
                    return Err(ImportError::BadRow {
                        file,
                        line,
                        reason: rj.reason,
                    });
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
                    return Err(ImportError::BadField {
                        file,
                        line: rj.line,
                        field: rj.field,
                        reason: rj.reason,
                    });
                }
                scan.reject(rj, log, &file);
                continue;
            }
        };
        match current {
            Some((b, _)) if row.block == b => {}
            Some((b, first_line)) if row.block < b => {
                return Err(ImportError::OutOfOrder {
                    file,
                    line,
                    block: row.block,
                    previous: b,
                    previous_line: first_line,
                });
            }
            _ => {
                flush(&mut block, &mut scan)?;
                current = Some((row.block, line));
            }
        }
        block.push(row);
    }
    flush(&mut block, &mut scan)?;
    progress(Progress::Done);
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
    fn push_block(&mut self, n: u64, time: u64, rows: Vec<Row>) -> Result<(), ImportError> {
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
    fn fill_to(&mut self, n: u64) -> Result<(), ImportError> {
        while self.next < n {
            let t = self.last_time;
            self.push_block(self.next, t, Vec::new())?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ImportError> {
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
/// whole import with `strict`). `progress` hears of each pass (for a progress bar).
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
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
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
        progress,
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
        Some(cp) if cp.number.0 >= first => {
            return Err(ImportError::NotAfterCheckpoint {
                file,
                first,
                checkpoint: cp.number,
                chain: chain_name.to_owned(),
            });
        }
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
    let scan = scan_file(path, chain, strict, true, progress, |n, rows| {
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
        return Err(ImportError::Changed {
            file,
            before: check.rows,
            after: scan.rows,
            start,
            end: pending.next.saturating_sub(1),
        });
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const HEADER: &str = "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n";

    fn row(i: u64, block: u64, value: &str) -> String {
        format!(
            "0x{:040x},0x{:040x},0x{:040x},{value},0x{i:064x},{i},{block},{}\n",
            0xeeee,
            0x1000 + i,
            0x2000 + i,
            1_700_000_000 + block * 12
        )
    }

    #[test]
    fn a_bad_field_with_strict_names_file_line_and_field_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("t.csv");
        std::fs::write(
            &csv,
            format!("{HEADER}{}{}", row(1, 10, "5"), row(2, 11, "x")),
        )
        .unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let e = import_transfers(&store, &csv, "x", true, &mut |_| {}).unwrap_err();
        assert!(
            matches!(&e, ImportError::BadField { line: 3, field, .. } if field == "value"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("{}:3: field value:", csv.display()))
        );
        assert!(store.chain_by_name("x").unwrap().is_none());
        // Without `strict` the row is skipped and reported.
        let mut passes = Vec::new();
        let r = import_transfers(&store, &csv, "x", false, &mut |p| {
            if let Progress::Start { pass, .. } = p {
                passes.push(pass);
            }
        })
        .unwrap();
        assert_eq!((r.rows, r.imported, r.rejected_count), (2, 1, 1));
        assert_eq!(r.rejected[0].line, 3);
        assert_eq!(passes, vec![Pass::Check, Pass::Import]);
    }
}
