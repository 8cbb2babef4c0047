//! The fjall-backed store: transfers, per-address indexes, checkpoints and recent block hashes.
//!
//! Layout (all integers big-endian so that byte order is numeric order). Every keyspace is
//! registered once in [`keyspaces`] (name, key, value, writer, readers); modules reach theirs
//! through typed [`Table`]s ([`Store::table`]), never through the storage engine:
//!
//! | keyspace               | key                                             | value                      | writer | readers |
//! |------------------------|-------------------------------------------------|----------------------------|--------|---------|
//! | `meta`                 | `schema_version`                                | u32                        | store | store |
//! | `meta`                 | `bulk:` + chain u16 (a bulk range in progress)  | first u64 + last u64 block | store | store |
//! | `meta`                 | `bulk_undo:` + chain u16 (its extra writes still to undo) | first u64 + last u64 block | store | the owner of the extra writes (`btc::utxo`) |
//! | `chains`               | chain name                                      | postcard [`ChainInfo`]     | store | store |
//! | `transfers`            | chain u16 + block u64 + tx index u32            | the transaction's transfers (`txrow.rs`) | store | store |
//! | `addr_out`             | address key + [`TransferKey`] bytes             | covering value (`flow.rs`) | store | store |
//! | `addr_in`              | address key + [`TransferKey`] bytes             | covering value (`flow.rs`) | store | store |
//! | `tx_index`             | chain u16 + tx hash (32)                        | block u64 + tx index u32   | store | store |
//! | `blocks`               | chain u16 + block u64                           | postcard [`BlockRef`]      | store | store |
//! | `checkpoints`          | chain u16                                       | postcard [`BlockRef`]      | store | store |
//! | `counters`             | chain u16 + kind u8                             | u64                        | store | store |
//! | `balances`             | address key + [`TransferKey`] bytes             | balance checkpoint (`balances.rs`) | balance stage | tracer |
//! | `token_meta`           | chain u16 + address key                         | postcard [`TokenMeta`] (`tokens.rs`) | EVM sync | units, reports |
//! | `labels`               | label address key                               | postcard `Vec<Label>`      | `labels::store` | `labels::store` |
//! | `label_sources`        | source name                                     | postcard `SourceInfo`      | `labels::store` | `labels::store` |
//! | `label_by_source`      | source name + `0x00` + address key              | empty                      | `labels::store` | `labels::store` |
//! | `label_staging`        | label address key                               | postcard staged entry      | `labels::store` | `labels::store` |
//! | `label_apply`          | `plan`                                          | postcard apply plan        | `labels::store` | `labels::store` |
//! | `btc_utxo`             | chain u16 + txid + vout                         | script id, amount          | `btc::utxo` | `btc::utxo` |
//! | `btc_undo`             | chain u16 + block u64                           | postcard block undo        | `btc::utxo` | `btc::utxo` |
//! | `btc_tx`               | chain u16 + txid                                | transaction metadata       | `btc::utxo` | `btc::utxo` |
//! | `btc_scripts`          | script id (32)                                  | the script                 | `btc::utxo` | `btc::utxo`, [`Store::btc_script`] (clustering) |
//! | `cluster_ids`          | address key                                     | id u32                     | `paytrace-app` clusters | same |
//! | `cluster_addrs`        | id u32                                          | address key                | `paytrace-app` clusters | same |
//! | `cluster_uf`           | chunk u32                                       | (parent u32, size u32) x 4096 | `paytrace-app` clusters | same |
//! | `cluster_members`      | root u32 + id u32                               | empty                      | `paytrace-app` clusters | same |
//! | `cluster_merges`       | sequence u64                                    | postcard `MergeRecord`     | `paytrace-app` clusters | same |
//! | `cluster_merge_index`  | id u32 + sequence u64                           | empty                      | `paytrace-app` clusters | same |
//! | `cluster_refused`      | sequence u64                                    | postcard `RefusedMerge`    | `paytrace-app` clusters | same |
//! | `cluster_coinjoins`    | tx hash (32)                                    | postcard `CoinJoinFlag`    | `paytrace-app` clusters | same |
//! | `cluster_deposits`     | address key                                     | postcard `DepositRecord`   | `paytrace-app` clusters | same |
//! | `cluster_airdrop_hits` | token key + recipient key                       | postcard `AirdropHit`      | `paytrace-app` clusters | same |
//! | `cluster_airdrop_fwd`  | token key + aggregator key + from key           | postcard `AirdropForward`  | `paytrace-app` clusters | same |
//! | `cluster_meta`         | `n_ids`, `merge_seq`, `refused_seq`, `cp` + chain u16 | u32 / u64 / postcard `BlockRef` | `paytrace-app` clusters | same |
//! | `alerts`               | id u64                                          | alert JSON                 | `paytrace-app` alerts | same |
//! | `alert_keys`           | deduplication key                               | id u64                     | `paytrace-app` alerts | same |
//! | `alert_meta`           | `next_id`                                       | u64                        | `paytrace-app` alerts | same |
//! | `watchlist`            | address key                                     | entry JSON                 | `paytrace-app` alerts | same |
//! | `webhook_outbox`       | alert id u64 + `0x00` + webhook name            | entry JSON                 | `paytrace-app` alerts | same |
//! | `api_keys`             | key id (16 hex)                                 | key record JSON (salted hash) | `paytrace-app` keys | same |
//! | `audit_log`            | time ns u64 + 8 random bytes                    | entry JSON                 | `paytrace-app` keys | same |
//!
//! Keyspaces are opened on first use ([`Store::table`]) and created by their first write: a
//! keyspace a store lacks reads as empty, and a read never creates one.
//!
//! The address indexes are covering (since schema version 2): their values hold the rest of
//! the transfer (counterparty, time, tx hash, asset, amount), so an address's history is one
//! range scan without a point read per transfer.
//!
//! Since schema version 3 a Bitcoin-style transaction node (`Address::Tx(txid)`) gets no index
//! entries for the transfers of its own transaction (a third of a UTXO chain's index entries):
//! those transfers are exactly that transaction's, found with one `tx_index` look-up and one
//! scan of its key range in `transfers`. The first transaction of a block (a Bitcoin coinbase,
//! whose txid can repeat, BIP30) keeps its entries so that every occurrence stays reachable;
//! [`Store::address_transfers`] merges both sources, so its results are unchanged.
//!
//! Since schema version 4 `transfers` holds one row per transaction slot (chain, block,
//! transaction index: all of its transfers in canonical order, the hash and time stored once
//! per run of equal values) instead of one per transfer: a token batch or a
//! Bitcoin transaction is one storage-engine entry. Readers ([`Store::transfer`],
//! [`Store::range_transfers`], [`Store::transaction_transfers`]) are unchanged.
//!
//! Every block range is written by [`Store::write_range`] in one atomic batch together with its
//! checkpoint, so a crash never leaves half a range or a checkpoint ahead of its data.

mod balances;
mod bulk;
mod check;
mod error;
mod flow;
pub mod journal;
pub mod keyspaces;
pub mod lock;
mod tokens;
mod txrow;

pub use balances::{BALANCE_INTERVAL, BalanceCheckpoint, BalanceStats, balance_checkpoints};
pub use bulk::BulkMarker;
#[cfg(test)]
pub(crate) use bulk::BulkStop;
pub use check::{
    ChainCheckpoint, CheckReport, DamagedTable, JournalCheck, KeyspaceCheck, RepairReport,
};
pub use error::{JournalDamage, StoreError};
pub use keyspaces::{Batch, Codec, Keyspace, KeyspaceDef, Table, TableRef};
pub use tokens::{MetaSource, TokenMeta};

use crate::model::{
    Address, BlockNumber, BlockRef, ChainId, Transfer, TransferKey, TransferKind, TxHash,
};
use fjall::{Database, Keyspace as EngineKeyspace, KeyspaceCreateOptions, PersistMode, Slice};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// The on-disk schema version this build reads and writes.
///
/// History: 1 = empty address-index values; 2 = covering address-index values (`flow.rs`) and
/// the `tx_index` keyspace (transaction hash → block and index); 3 = a transaction node
/// (`Address::Tx`) is no longer indexed for its own transaction's transfers (see
/// [`Store::address_transfers`]); 4 = one `transfers` row per transaction (`txrow.rs`).
pub const SCHEMA_VERSION: u32 = 4;

/// The block cache of stores opened for queries ([`Store::open_with_cache`]): 256 MiB. It
/// fills only with blocks actually read (a 3-hop trace benchmark on a 10M-transfer store
/// peaks at about 100 MiB RSS).
pub const QUERY_CACHE_BYTES: u64 = 256 << 20;

/// How many recent block hashes per chain are kept for reorg detection.
pub const REORG_WINDOW: u64 = 2048;

/// What kind of chain a [`ChainId`] names: the config's kind, defined once (its variant order
/// is the store's encoding).
pub use paytrace_config::ChainKind;

/// A chain registered in the store.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChainInfo {
    /// Dense id used in keys.
    pub id: ChainId,
    /// Configured name (e.g. `ethereum`).
    pub name: String,
    /// Kind.
    pub kind: ChainKind,
}

/// Direction of a transfer relative to an address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// Transfers the address received.
    Incoming,
    /// Transfers the address sent.
    Outgoing,
}

/// One write to a keyspace owned by another module (the Bitcoin UTXO set, undo data), carried
/// in the same atomic batch as a range or an unwind. Made by [`Table::put_op`] and
/// [`Table::remove_op`] (the value already encoded with the keyspace's codec).
#[derive(Clone)]
pub struct KeyspaceOp {
    /// The keyspace.
    pub keyspace: TableRef,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to remove the key.
    pub value: Option<Vec<u8>>,
}

impl std::fmt::Debug for KeyspaceOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyspaceOp")
            .field("key", &hex(&self.key))
            .field("remove", &self.value.is_none())
            .finish()
    }
}

fn apply_ops(batch: &mut fjall::OwnedWriteBatch, ops: Vec<KeyspaceOp>) -> Result<(), StoreError> {
    for op in ops {
        let ks = op.keyspace.writable()?;
        match op.value {
            Some(v) => batch.insert(ks, op.key, v),
            None => batch.remove(ks, op.key),
        }
    }
    Ok(())
}

/// A [`KeyspaceOp`] with its key and value already in the storage engine's buffer type
/// (converted in the parallel part of a sync, so the serial commit only moves them).
struct PreparedOp {
    keyspace: TableRef,
    key: Slice,
    value: Option<Slice>,
}

impl std::fmt::Debug for PreparedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedOp")
            .field("key", &hex(&self.key))
            .field("remove", &self.value.is_none())
            .finish()
    }
}

/// Whether `a` is the transaction node of the transfer's own transaction (`Address::Tx` of its
/// txid in internal byte order: the hash reversed), outside the first transaction of a block.
/// Such index entries are not written (schema version 3): [`Store::address_transfers`] finds
/// them through `tx_index`.
fn own_tx_node(a: &Address, t: &Transfer) -> bool {
    match a {
        Address::Tx(b) => t.key.tx_index != 0 && b.iter().eq(t.tx_hash.0.iter().rev()),
        _ => false,
    }
}

/// The transaction hash a transaction node stands for (its txid reversed into display order).
fn node_tx_hash(node: &[u8; 32]) -> TxHash {
    let mut h = *node;
    h.reverse();
    TxHash(alloy_primitives::B256::from(h))
}

/// What [`Store::unwind`] removed.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct UnwindStats {
    /// Blocks removed.
    pub blocks: u64,
    /// Transfers removed.
    pub transfers: u64,
}

/// The paytrace store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    db: Database,
    meta: EngineKeyspace,
    chains: EngineKeyspace,
    transfers: EngineKeyspace,
    addr_out: EngineKeyspace,
    addr_in: EngineKeyspace,
    tx_index: EngineKeyspace,
    blocks: EngineKeyspace,
    checkpoints: EngineKeyspace,
    counters: EngineKeyspace,
    /// Balance checkpoints (`balances.rs`); empty when the stage never ran.
    balances: EngineKeyspace,
    /// The other registered keyspaces ([`keyspaces::ALL`]), opened on first use by
    /// [`Store::table`] (empty while the keyspace does not exist: a writer creates it at its
    /// first write).
    tables: std::sync::Arc<[keyspaces::Slot]>,
    /// The balance stage's progress and the lowest chain id, read once and cached for the
    /// tracer's look-ups (reset by every write that changes them).
    balances_view: std::sync::Arc<std::sync::RwLock<Option<balances::BalancesView>>>,
    /// Opened for reading only ([`Store::open_read`]).
    read_only: bool,
    /// The store's own lock (`lock.rs`); released (and, for a writer, the close recorded) when
    /// the last clone drops. Declared last: fields drop in order, so the engine closes first.
    _lock: std::sync::Arc<StoreLock>,
}

/// The lock a [`Store`] holds on its data dir.
#[derive(Debug)]
enum StoreLock {
    Writer(#[allow(dead_code)] lock::WriterLock),
    Reader(#[allow(dead_code)] lock::ReaderLock),
}

/// How [`Store::open_with`] opens a store.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OpenMode {
    /// For writing: creates the data dir and the store when missing, takes the write lock.
    Write,
    /// For reading: fails when there is no store, creates nothing, and writes nothing to a
    /// store that its last writer closed with [`Store::persist_for_reopen`] (the storage
    /// engine runs no background flush or compaction).
    Read,
}

/// The storage engine's version marker: present in every store it created.
const ENGINE_VERSION_FILE: &str = "version";

const SCHEMA_KEY: &[u8] = b"schema_version";

/// Memtable size of every keyspace (fixed when a keyspace is created). The engine's default
/// is 64 MiB; with eight keyspaces written by a Bitcoin sync, each holding an active memtable
/// and up to four sealed ones waiting for their flush, that let the write buffers reach
/// gigabytes.
const MEMTABLE_BYTES: u64 = 32 * 1024 * 1024;

/// Level-0 tables that trigger a compaction into level 1, and the table size. With half the
/// default memtable size, twice the default threshold keeps each L0→L1 compaction as large as
/// the engine's defaults make it (256 MiB of flushed data against an L1 of 256 MiB): random
/// keys (address indexes, UTXO set) overlap all of L1, so smaller batches would rewrite L1
/// more often.
const L0_THRESHOLD: u8 = 8;
const TABLE_BYTES: u64 = 32 * 1024 * 1024;

/// Memtable bytes (active and sealed, all keyspaces) above which a range commit waits for the
/// engine's flushes before returning: bounds memory when flushes and compactions fall behind
/// a fast writer (the engine's own write-buffer limit is not enforced in fjall 3.1).
const WRITE_BUFFER_LIMIT: u64 = 384 * 1024 * 1024;

/// The longest a commit waits for [`WRITE_BUFFER_LIMIT`] (then it goes on: a slow disk makes
/// a sync slower, never stuck).
const WRITE_BUFFER_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn opts() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default()
        .max_memtable_size(MEMTABLE_BYTES)
        .compaction_strategy(std::sync::Arc::new(
            fjall::compaction::Leveled::default()
                .with_l0_threshold(L0_THRESHOLD)
                .with_table_target_size(TABLE_BYTES),
        ))
}

/// [`opts`] without bloom filters, for keyspaces that are only scanned by prefix.
fn scan_only_opts() -> KeyspaceCreateOptions {
    opts().filter_policy(fjall::config::FilterPolicy::disabled())
}

/// The creation options of a registered keyspace: the address indexes are only ever scanned
/// by prefix, never read by point, so their tables need no bloom filters (building one hashes
/// every key of every flush and compaction). Fixed when a keyspace is created: older stores
/// keep theirs.
fn create_options(def: &KeyspaceDef) -> fn() -> KeyspaceCreateOptions {
    if def.scan_only { scan_only_opts } else { opts }
}

impl Store {
    /// Opens (or creates) the store in `path` for writing.
    ///
    /// Fails with a clear error when the directory is locked by another process (naming it),
    /// is not a paytrace store, has a damaged journal, is on a read-only file system, or has
    /// another schema version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), None, None, OpenMode::Write)
    }

    /// [`Store::open`] with a block cache of `cache_bytes` instead of the storage engine's
    /// default (32 MiB). Query commands (trace, path, screening) use [`QUERY_CACHE_BYTES`]: a
    /// trace seeks in the address indexes of many addresses, and with the default cache the
    /// index blocks of a store of millions of transfers do not stay cached, so every seek
    /// re-reads and re-checksums them (see docs/benchmarks.md, "Tracer benchmark").
    pub fn open_with_cache(
        path: impl AsRef<Path>,
        cache_bytes: Option<u64>,
    ) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), cache_bytes, None, OpenMode::Write)
    }

    /// Opens the existing store in `path` for reading (see [`OpenMode::Read`]): a missing
    /// store is [`StoreError::Missing`] and nothing is created.
    pub fn open_read(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), None, None, OpenMode::Read)
    }

    /// Opens the store in `path` in `mode`, with a block cache of `cache_bytes` (see
    /// [`Store::open_with_cache`]).
    pub fn open_with(
        path: impl AsRef<Path>,
        mode: OpenMode,
        cache_bytes: Option<u64>,
    ) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), cache_bytes, None, mode)
    }

    /// [`Store::open`] for a bulk writer ([`Store::write_prepared_bulk`], `index btc`): the
    /// storage engine gets **one** background worker. With two, worker 0 leaves compactions to
    /// worker 1 and, while worker 1 compacts, takes the compaction message off the queue and
    /// puts it back in a busy loop (fjall 3.1 `worker_tick`): a whole core spinning, 17 % of
    /// all samples of a Bitcoin sync (docs/benchmarks.md). A bulk writer needs no memtable
    /// flushes, so one worker that compacts is all it needs.
    pub fn open_for_bulk(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_inner(path.as_ref(), None, Some(1), OpenMode::Write)
    }

    /// Whether this store was opened for reading only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Checks the journals of the store in `path` before the engine opens (and would silently
    /// truncate) them: damage is [`StoreError::CorruptJournal`]; a torn tail left by a
    /// crashed writer is logged and left to the engine, which drops it.
    fn check_journals(path: &Path, writer_crashed: bool) -> Result<(), StoreError> {
        let files = journal::check_journals(path, writer_crashed)?;
        if let Some((f, d)) = journal::first_damage(&files) {
            return Err(StoreError::CorruptJournal(Box::new(JournalDamage {
                path: path.to_path_buf(),
                file: f.path.clone(),
                offset: d.offset,
                bytes: f.bytes,
                lost: d.bytes,
                reason: d.reason.clone(),
                intact: describe_intact(&files),
            })));
        }
        for f in &files {
            if let Some(d) = &f.damage {
                tracing::warn!(
                    file = %f.path.display(),
                    offset = d.offset,
                    bytes = d.bytes,
                    "the last writer did not close the store (crash): the incomplete batch at \
                     the end of its journal is dropped"
                );
            }
        }
        Ok(())
    }

    fn open_inner(
        path: &Path,
        cache_bytes: Option<u64>,
        workers: Option<usize>,
        mode: OpenMode,
    ) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        if path.exists() && !path.is_dir() {
            return Err(StoreError::NotADirectory { path });
        }
        let lock = match mode {
            OpenMode::Write => {
                std::fs::create_dir_all(&path)
                    .map_err(|e| StoreError::fs("create the data dir", &path, e))?;
                // Taken before the engine looks at the directory: creation of a new store is
                // serialised, and nothing is written before the journals are checked.
                let mut lock = lock::WriterLock::acquire(&path)?;
                if path.join(ENGINE_VERSION_FILE).exists() {
                    Self::check_journals(&path, lock.previous_crashed)?;
                }
                lock.record_open()?;
                StoreLock::Writer(lock)
            }
            OpenMode::Read => {
                if !path.exists() {
                    return Err(StoreError::Missing { path });
                }
                if !path.join(ENGINE_VERSION_FILE).exists() {
                    let empty = std::fs::read_dir(&path)
                        .map_err(|e| StoreError::fs("read", &path, e))?
                        .next()
                        .is_none();
                    if empty {
                        return Err(StoreError::Missing { path });
                    }
                    return Err(StoreError::NotAStore {
                        path,
                        reason: "no storage engine version file".into(),
                    });
                }
                let lock = lock::ReaderLock::acquire(&path)?;
                Self::check_journals(&path, lock.previous_crashed)?;
                StoreLock::Reader(lock)
            }
        };
        // No journal compression: the engine's default compresses every value of 4 KiB or
        // more with LZ4 inside the serial commit (5 % of `index evm`'s instructions for the
        // transaction rows of batch payouts); the journal is short-lived (dropped once its
        // memtables are flushed), and its bytes only reach the page cache until a sync.
        let mut builder =
            Database::builder(&path).journal_compression(fjall::CompressionType::None);
        if let Some(bytes) = cache_bytes {
            builder = builder.cache_size(bytes);
        }
        if mode == OpenMode::Read {
            // No background worker: a reader needs no flush, and a compaction the last writer
            // left pending must not write to the store while it only reads it.
            builder = builder.worker_threads_unchecked(0);
        } else if let Some(n) = workers {
            builder = builder.worker_threads(n);
        }
        let db = builder.open().map_err(|source| match source {
            fjall::Error::Locked => lock::locked_error(&path),
            source => StoreError::open(&path, source),
        })?;
        let ks = |def: &KeyspaceDef| {
            db.keyspace(def.name, create_options(def))
                .map_err(|source| StoreError::open(&path, source))
        };
        let store = Self {
            meta: ks(&keyspaces::META)?,
            chains: ks(&keyspaces::CHAINS)?,
            transfers: ks(&keyspaces::TRANSFERS)?,
            addr_out: ks(&keyspaces::ADDR_OUT)?,
            addr_in: ks(&keyspaces::ADDR_IN)?,
            tx_index: ks(&keyspaces::TX_INDEX)?,
            blocks: ks(&keyspaces::BLOCKS)?,
            checkpoints: ks(&keyspaces::CHECKPOINTS)?,
            counters: ks(&keyspaces::COUNTERS)?,
            balances: ks(&keyspaces::BALANCES)?,
            tables: keyspaces::ALL
                .iter()
                .map(|d| keyspaces::Slot::new(d, (mode == OpenMode::Write).then(|| db.clone())))
                .collect(),
            balances_view: std::sync::Arc::default(),
            read_only: mode == OpenMode::Read,
            _lock: std::sync::Arc::new(lock),
            db,
            path,
        };
        store.check_schema()?;
        if mode == OpenMode::Write {
            store.record_keyspace_ids()?;
        }
        // A bulk range a crash interrupted is discarded before anything reads the store (the
        // extra writes of the range are left to their owner: see [`Store::pending_bulk_undo`]).
        for m in store.bulk_markers()? {
            store.discard_bulk(m)?;
        }
        Ok(store)
    }

    /// Writes [`journal::KeyspaceIds`] next to the store when they changed (so that a check of
    /// a damaged journal can name the checkpoints it holds).
    fn record_keyspace_ids(&self) -> Result<(), StoreError> {
        let ids = journal::KeyspaceIds {
            checkpoints: self.checkpoints.id(),
        };
        if journal::KeyspaceIds::read(&self.path) == Some(ids) {
            return Ok(());
        }
        let file = self.path.join(journal::KeyspaceIds::FILE);
        let tmp = self
            .path
            .join(format!("{}.tmp", journal::KeyspaceIds::FILE));
        let bytes = serde_json::to_vec(&ids).map_err(|e| StoreError::Encode(e.to_string()))?;
        std::fs::write(&tmp, bytes).map_err(|e| StoreError::fs("write", &tmp, e))?;
        std::fs::rename(&tmp, &file).map_err(|e| StoreError::fs("write", &file, e))
    }

    /// Waits (at most a minute) until the storage engine has run no compaction for 100 ms:
    /// the flushes of [`Store::persist_for_reopen`] queue compaction checks, and a compaction
    /// finishing later leaves an old version file behind for the next open to delete.
    fn wait_for_compactions(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut quiet = 0;
        let mut done = self.db.compactions_completed();
        while quiet < 5 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let now = self.db.compactions_completed();
            if self.db.active_compactions() == 0 && now == done {
                quiet += 1;
            } else {
                quiet = 0;
            }
            done = now;
        }
    }

    /// Deletes the version files of every keyspace older than its current one (`v<N>` below
    /// the id in `current`): the storage engine deletes them when it next opens the keyspace,
    /// which would make that open a write. Their content is superseded; the engine keeps the
    /// versions it still uses in memory, and a later failure of its own clean-up to find one
    /// is only logged by it.
    fn remove_old_versions(&self) -> Result<(), StoreError> {
        let root = self.path.join("keyspaces");
        let io = |p: &Path, e| StoreError::fs("clean up old versions in", p, e);
        for dir in std::fs::read_dir(&root).map_err(|e| io(&root, e))? {
            let dir = dir.map_err(|e| io(&root, e))?.path();
            let Ok(current) = std::fs::read(dir.join("current")) else {
                continue;
            };
            let Some(current) = current.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)) else {
                continue;
            };
            for f in std::fs::read_dir(&dir).map_err(|e| io(&dir, e))? {
                let f = f.map_err(|e| io(&dir, e))?;
                let name = f.file_name();
                let old = name
                    .to_str()
                    .and_then(|n| n.strip_prefix('v'))
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|v| v < current);
                if old {
                    match std::fs::remove_file(f.path()) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io(&f.path(), e)),
                    }
                }
            }
        }
        Ok(())
    }

    /// Makes the next open of the store fast and write-free: flushes every keyspace's memtable
    /// to tables, syncs, and empties the journal (all of whose batches are then in tables), so
    /// the next open replays nothing. Bulk writers (index, import, balances, cluster run,
    /// labels import) call it when they finish.
    ///
    /// Call it as the last write of this process, when every other handle has stopped writing.
    /// **No write may follow it in the same process**: the engine keeps its position in the
    /// emptied journal, so a later batch lands past a hole of zeros and the next open rejects the
    /// journal as damaged (a process that must write again reopens the store first, as
    /// `demo --serve` does). The journal is left as it is when anything is still unflushed.
    /// Does nothing on a store opened for reading.
    pub fn persist_for_reopen(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Ok(());
        }
        let keyspaces = self
            .db
            .list_keyspace_names()
            .iter()
            .map(|name| self.db.keyspace(name, opts))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.io("open keyspace", e))?;
        for ks in &keyspaces {
            ks.rotate_memtable_and_wait()
                .map_err(|e| self.io("flush memtable", e))?;
        }
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.io("persist", e))?;
        self.wait_for_compactions();
        self.remove_old_versions()?;
        // Every memtable empty (a rotation finds nothing to seal) and none waiting for its
        // flush: every journaled batch is in tables.
        let mut unflushed = 0usize;
        for ks in &keyspaces {
            if ks
                .rotate_memtable()
                .map_err(|e| self.io("flush memtable", e))?
                || ks.sealed_memtable_count() > 0
            {
                unflushed += 1;
            }
        }
        // Sealed journals are deleted by the engine's worker after the flushes that empty
        // them: wait for that (briefly; a journal left behind only costs a replay).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut journals = journal::journal_files(&self.path)?;
        while journals.len() > 1 && unflushed == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            journals = journal::journal_files(&self.path)?;
        }
        let (Some(active), 1, 0) = (journals.last(), journals.len(), unflushed) else {
            tracing::debug!(
                journals = journals.len(),
                unflushed,
                "journal kept: not everything is flushed yet"
            );
            return Ok(());
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(active)
            .map_err(|e| StoreError::fs("open the journal", active, e))?;
        f.set_len(0)
            .and_then(|()| f.sync_all())
            .map_err(|e| StoreError::fs("empty the journal", active, e))?;
        tracing::debug!(journal = %active.display(), "journal emptied: every batch is in tables");
        Ok(())
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        match self
            .meta
            .get(SCHEMA_KEY)
            .map_err(|e| self.io("read schema version", e))?
        {
            None if self.read_only => Err(StoreError::NotAStore {
                path: self.path.clone(),
                reason: "no schema version".into(),
            }),
            None => {
                self.meta
                    .insert(SCHEMA_KEY, SCHEMA_VERSION.to_be_bytes().to_vec())
                    .map_err(|e| self.io("write schema version", e))?;
                self.db
                    .persist(PersistMode::SyncAll)
                    .map_err(|e| self.io("persist", e))?;
                Ok(())
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt {
                        keyspace: "meta",
                        key: "schema_version".into(),
                        reason: format!("expected 4 bytes, found {}", v.len()),
                    })?;
                if found == SCHEMA_VERSION {
                    Ok(())
                } else {
                    Err(StoreError::SchemaMismatch {
                        path: self.path.clone(),
                        found,
                        expected: SCHEMA_VERSION,
                    })
                }
            }
        }
    }

    fn io(&self, op: &'static str, source: fjall::Error) -> StoreError {
        StoreError::Io { op, source }
    }

    /// The directory of this store.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registered keyspace `ks`, opened on first use with its codecs.
    ///
    /// A keyspace the store does not have is not created here: the table reads as empty, and
    /// on a store opened for writing its first write creates it (a store holds only the
    /// keyspaces its commands wrote to); on one opened for reading writes fail.
    pub fn table<K: Codec, V: Codec>(&self, ks: Keyspace<K, V>) -> Result<Table<K, V>, StoreError> {
        let def = ks.def();
        let slot = self
            .tables
            .get(def.index)
            .ok_or(StoreError::Encode(format!(
                "keyspace {} is not registered",
                def.name
            )))?;
        if slot.get().is_none() && self.db.keyspace_exists(def.name) {
            slot.set(
                self.db
                    .keyspace(def.name, create_options(def))
                    .map_err(|e| self.io("open keyspace", e))?,
            );
        }
        Ok(Table::new(slot.clone()))
    }

    /// A batch of writes to registered keyspaces, committed atomically by [`Batch::commit`].
    pub fn batch(&self) -> Batch {
        Batch {
            inner: self.db.batch(),
        }
    }

    /// [`Store::batch`] synced to disk when committed.
    pub fn batch_synced(&self) -> Batch {
        Batch {
            inner: self.db.batch().durability(Some(PersistMode::SyncAll)),
        }
    }

    /// The id of chain `name`, registering it with `kind` on first use.
    ///
    /// A chain registered with another kind is an error.
    pub fn register_chain(&self, name: &str, kind: ChainKind) -> Result<ChainId, StoreError> {
        if let Some(info) = self.chain_by_name(name)? {
            if info.kind != kind {
                return Err(StoreError::ChainKindMismatch {
                    chain: name.to_owned(),
                    stored: info.kind,
                    requested: kind,
                });
            }
            return Ok(info.id);
        }
        let next = self
            .chains()?
            .iter()
            .map(|c| c.id.0)
            .max()
            .map_or(Some(1), |m| m.checked_add(1));
        let id = ChainId(next.ok_or(StoreError::TooManyChains)?);
        let info = ChainInfo {
            id,
            name: name.to_owned(),
            kind,
        };
        self.chains
            .insert(name.as_bytes(), encode(&info)?)
            .map_err(|e| self.io("register chain", e))?;
        self.reset_balances_view();
        Ok(id)
    }

    /// The chain registered under `name`.
    pub fn chain_by_name(&self, name: &str) -> Result<Option<ChainInfo>, StoreError> {
        self.chains
            .get(name.as_bytes())
            .map_err(|e| self.io("read chain", e))?
            .map(|v| decode("chains", name, &v))
            .transpose()
    }

    /// All registered chains, ordered by id.
    pub fn chains(&self) -> Result<Vec<ChainInfo>, StoreError> {
        let mut out = Vec::new();
        for kv in self.chains.iter() {
            let (k, v) = kv.into_inner().map_err(|e| self.io("list chains", e))?;
            out.push(decode::<ChainInfo>(
                "chains",
                &String::from_utf8_lossy(&k),
                &v,
            )?);
        }
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// The chain with id `id`.
    pub fn chain(&self, id: ChainId) -> Result<Option<ChainInfo>, StoreError> {
        Ok(self.chains()?.into_iter().find(|c| c.id == id))
    }

    /// The last indexed block of `chain`.
    pub fn checkpoint(&self, chain: ChainId) -> Result<Option<BlockRef>, StoreError> {
        self.checkpoints
            .get(chain.0.to_be_bytes())
            .map_err(|e| self.io("read checkpoint", e))?
            .map(|v| decode("checkpoints", &chain.0.to_string(), &v))
            .transpose()
    }

    /// The remembered block `number` of `chain` (kept for the last [`REORG_WINDOW`] blocks).
    pub fn block(
        &self,
        chain: ChainId,
        number: BlockNumber,
    ) -> Result<Option<BlockRef>, StoreError> {
        self.blocks
            .get(block_key(chain, number))
            .map_err(|e| self.io("read block", e))?
            .map(|v| decode("blocks", &number.to_string(), &v))
            .transpose()
    }

    /// Writes the transfers of a contiguous run of blocks and moves the checkpoint to the last
    /// of them, atomically.
    ///
    /// `blocks` must be ascending and contiguous and start right after the current checkpoint
    /// (or anywhere when the chain has none); `transfers` must belong to those blocks.
    pub fn write_range(
        &self,
        chain: ChainId,
        blocks: &[BlockRef],
        transfers: &[Transfer],
    ) -> Result<(), StoreError> {
        self.write_prepared(PreparedRange::new(chain, blocks.to_vec(), transfers)?)
    }

    /// Writes a range encoded beforehand with [`PreparedRange::new`] (which needs no store, so
    /// the sync loop encodes ranges in parallel and only this commit is serial).
    pub fn write_prepared(&self, p: PreparedRange) -> Result<(), StoreError> {
        let chain = p.chain;
        if p.blocks.is_empty() {
            return Ok(());
        }
        if let Some(first) = p.blocks.first() {
            self.check_next(chain, first.number)?;
        }
        // The journal write reaches the OS before commit returns (a killed process loses
        // nothing); `persist` syncs to disk at the end of a run. Either way the batch is atomic.
        // Sized up front: a range is hundreds of thousands of items, and growing the batch
        // by doubling copies it and touches fresh memory several times.
        let items =
            p.rows.len() + p.outs.len() + p.ins.len() + p.txs.len() + p.extra.len() + p.tail.len();
        let mut batch = fjall::OwnedWriteBatch::with_capacity(self.db.clone(), items + 64)
            .durability(Some(PersistMode::Buffer));
        // Keys arrive sorted per keyspace (sorted in the parallel `PreparedRange::new`), so
        // consecutive memtable inserts land next to each other; keys and values are already
        // engine buffers, so this serial part only moves them.
        for (k, v) in p.rows {
            batch.insert(&self.transfers, k, v);
        }
        for (k, v) in p.outs {
            batch.insert(&self.addr_out, k, v);
        }
        for (k, v) in p.ins {
            batch.insert(&self.addr_in, k, v);
        }
        for (k, v) in p.txs {
            batch.insert(&self.tx_index, k, v);
        }
        for op in p.extra {
            match op.value {
                Some(v) => batch.insert(op.keyspace.writable()?, op.key, v),
                None => batch.remove(op.keyspace.writable()?, op.key),
            }
        }
        self.range_tail(
            &mut batch,
            chain,
            &p.blocks,
            p.block_values,
            &p.by_kind,
            p.tail,
        )?;
        batch.commit().map_err(|e| self.io("commit range", e))?;
        self.wait_for_flushes();
        Ok(())
    }

    /// Fails unless `first` is the block right after the checkpoint of `chain` (any block
    /// when it has none).
    fn check_next(&self, chain: ChainId, first: BlockNumber) -> Result<(), StoreError> {
        if let Some(cp) = self.checkpoint(chain)?
            && cp.number.next() != Some(first)
        {
            return Err(StoreError::NotContiguous {
                chain,
                checkpoint: cp.number,
                start: first,
            });
        }
        Ok(())
    }

    /// The end of a range's batch: block hashes (pruning those that leave the reorg window),
    /// counters, checkpoint and the range's final writes.
    fn range_tail(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        chain: ChainId,
        blocks: &[BlockRef],
        block_values: Vec<Vec<u8>>,
        by_kind: &BTreeMap<TransferKind, u64>,
        tail: Vec<PreparedOp>,
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
            return Ok(());
        };
        let mut counts = self.counters(chain)?;
        for (kind, n) in by_kind {
            *counts.entry(*kind).or_default() += n;
        }
        for (b, v) in blocks.iter().zip(block_values) {
            batch.insert(&self.blocks, block_key(chain, b.number).to_vec(), v);
        }
        // Forget the block hashes that this range pushes out of the reorg window.
        if let Some(cutoff) = last.number.0.checked_sub(REORG_WINDOW) {
            let lo = block_key(
                chain,
                BlockNumber(first.number.0.saturating_sub(REORG_WINDOW)),
            );
            let hi = block_key(chain, BlockNumber(cutoff));
            for kv in self.blocks.range(lo..=hi) {
                let k = kv.key().map_err(|e| self.io("prune blocks", e))?;
                batch.remove(&self.blocks, k);
            }
        }
        for (kind, n) in counts {
            batch.insert(
                &self.counters,
                counter_key(chain, kind).to_vec(),
                n.to_be_bytes().to_vec(),
            );
        }
        batch.insert(
            &self.checkpoints,
            chain.0.to_be_bytes().to_vec(),
            encode(last)?,
        );
        for op in tail {
            match op.value {
                Some(v) => batch.insert(op.keyspace.writable()?, op.key, v),
                None => batch.remove(op.keyspace.writable()?, op.key),
            }
        }
        Ok(())
    }

    /// Waits (up to [`WRITE_BUFFER_WAIT`]) while the engine's memtables hold more than
    /// [`WRITE_BUFFER_LIMIT`] bytes and flushes are queued, i.e. until its flushes catch up with
    /// the writer.
    fn wait_for_flushes(&self) {
        let start = std::time::Instant::now();
        let mut waited = false;
        // Only sealed memtables waiting for a flush free memory: with none queued there is
        // nothing to wait for.
        while self.db.write_buffer_size() > WRITE_BUFFER_LIMIT
            && self.db.outstanding_flushes() > 0
            && start.elapsed() < WRITE_BUFFER_WAIT
        {
            waited = true;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if waited {
            tracing::debug!(
                waited_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
                write_buffer = self.db.write_buffer_size(),
                "waited for memtable flushes"
            );
        }
    }

    /// Writes transfers of scattered blocks without moving any checkpoint (address-centric
    /// sources such as Esplora), with `extra` writes, atomically. Transfers already stored are
    /// skipped, so writing the same transaction twice counts it once. Returns how many were new.
    pub fn write_sparse(
        &self,
        chain: ChainId,
        transfers: &[Transfer],
        extra: Vec<KeyspaceOp>,
    ) -> Result<usize, StoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        let mut counts = self.counters(chain)?;
        let mut ikey = Vec::with_capacity(64);
        let mut new = 0usize;
        // Per address, the earliest inserted position: its balance checkpoints after it are
        // stale (the new transfer lands before them).
        let mut stale: BTreeMap<Address, TransferKey> = BTreeMap::new();
        // The transaction rows touched, as stored plus what this call adds.
        let mut rows: BTreeMap<[u8; txrow::KEY_LEN], (Vec<Transfer>, bool)> = BTreeMap::new();
        for t in transfers {
            if t.key.chain != chain {
                return Err(StoreError::TransferOutsideRange { key: t.key });
            }
            let rk = txrow::row_key(&t.key);
            let row = match rows.entry(rk) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert((self.read_row(&rk)?.unwrap_or_default(), false))
                }
            };
            if row.0.iter().any(|x| x.key == t.key) {
                continue;
            }
            row.0.push(t.clone());
            row.1 = true;
            let tk = t.key.to_bytes();
            let mut value = Vec::with_capacity(96);
            if !own_tx_node(&t.from, t) {
                index_key(&mut ikey, &t.from, &tk);
                flow::encode(&mut value, t, true);
                batch.insert(&self.addr_out, ikey.clone(), std::mem::take(&mut value));
            }
            if !own_tx_node(&t.to, t) {
                index_key(&mut ikey, &t.to, &tk);
                flow::encode(&mut value, t, false);
                batch.insert(&self.addr_in, ikey.clone(), value);
            }
            batch.insert(
                &self.tx_index,
                tx_key(chain, &t.tx_hash).to_vec(),
                tx_location_value(&t.key).to_vec(),
            );
            *counts.entry(t.kind()).or_default() += 1;
            new += 1;
            for a in [t.from, t.to] {
                let e = stale.entry(a).or_insert(t.key);
                *e = (*e).min(t.key);
            }
        }
        self.invalidate_balances(&mut batch, &stale)?;
        for (rk, (mut row, changed)) in rows {
            if !changed {
                continue;
            }
            row.sort_by_key(|t| t.key);
            let mut v = Vec::with_capacity(64 + 100 * row.len());
            txrow::encode(&mut v, &row.iter().collect::<Vec<_>>());
            batch.insert(&self.transfers, rk.to_vec(), v);
        }
        for (kind, n) in counts {
            batch.insert(
                &self.counters,
                counter_key(chain, kind).to_vec(),
                n.to_be_bytes().to_vec(),
            );
        }
        apply_ops(&mut batch, extra)?;
        batch.commit().map_err(|e| self.io("commit sparse", e))?;
        Ok(new)
    }

    /// The transfers of transaction row `rk` (`None` when there is none).
    fn read_row(&self, rk: &[u8; txrow::KEY_LEN]) -> Result<Option<Vec<Transfer>>, StoreError> {
        self.transfers
            .get(rk)
            .map_err(|e| self.io("read transfers", e))?
            .map(|v| decode_row(rk, &v))
            .transpose()
    }

    /// Removes every block above `to` with its transfers and index entries, and moves the
    /// checkpoint back to `to` (or removes it when `to` is below the first remembered block),
    /// atomically. Derived data (the stages' output, such as balance checkpoints) is the
    /// pipeline's to unwind: [`crate::stage::Pipeline::unwind`] passes its writes to
    /// [`Store::unwind_with`].
    pub fn unwind(&self, chain: ChainId, to: BlockNumber) -> Result<UnwindStats, StoreError> {
        self.unwind_with(chain, to, Vec::new())
    }

    /// [`Store::unwind`] plus `extra` writes to other keyspaces (e.g. the Bitcoin UTXO set
    /// restored from undo data, the stages' unwinds), in the same atomic batch.
    pub fn unwind_with(
        &self,
        chain: ChainId,
        to: BlockNumber,
        extra: Vec<KeyspaceOp>,
    ) -> Result<UnwindStats, StoreError> {
        let mut stats = UnwindStats::default();
        let Some(start) = to.next() else {
            return Ok(stats);
        };
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        let mut counts = self.counters(chain)?;
        let mut ikey = Vec::with_capacity(64);
        let lo = txrow::block_start(chain, start);
        let hi = chain_end_key(chain);
        for kv in self.transfers.range(lo.to_vec()..hi) {
            let (k, v) = kv
                .into_inner()
                .map_err(|e| self.io("unwind transfers", e))?;
            let row = decode_row(&k, &v)?;
            batch.remove(&self.transfers, k);
            for t in row {
                let tk = t.key.to_bytes();
                if !own_tx_node(&t.from, &t) {
                    index_key(&mut ikey, &t.from, &tk);
                    batch.remove(&self.addr_out, ikey.clone());
                }
                if !own_tx_node(&t.to, &t) {
                    index_key(&mut ikey, &t.to, &tk);
                    batch.remove(&self.addr_in, ikey.clone());
                }
                batch.remove(&self.tx_index, tx_key(chain, &t.tx_hash).to_vec());
                let c = counts.entry(t.kind()).or_default();
                *c = c.saturating_sub(1);
                stats.transfers += 1;
            }
        }
        for kv in self.blocks.range(
            block_key(chain, start).to_vec()..=block_key(chain, BlockNumber(u64::MAX)).to_vec(),
        ) {
            let k = kv.key().map_err(|e| self.io("unwind blocks", e))?;
            batch.remove(&self.blocks, k);
            stats.blocks += 1;
        }
        for (kind, n) in counts {
            batch.insert(
                &self.counters,
                counter_key(chain, kind).to_vec(),
                n.to_be_bytes().to_vec(),
            );
        }
        match self.block(chain, to)? {
            Some(b) => batch.insert(
                &self.checkpoints,
                chain.0.to_be_bytes().to_vec(),
                encode(&b)?,
            ),
            None => batch.remove(&self.checkpoints, chain.0.to_be_bytes().to_vec()),
        }
        apply_ops(&mut batch, extra)?;
        batch.commit().map_err(|e| self.io("commit unwind", e))?;
        self.reset_balances_view();
        Ok(stats)
    }

    /// Where transaction `tx` of `chain` is: its block and index in the block (`None` when it
    /// moved nothing indexed). One point read of the `tx_index` keyspace.
    pub fn tx_location(
        &self,
        chain: ChainId,
        tx: &TxHash,
    ) -> Result<Option<(BlockNumber, u32)>, StoreError> {
        let Some(v) = self
            .tx_index
            .get(tx_key(chain, tx))
            .map_err(|e| self.io("read tx index", e))?
        else {
            return Ok(None);
        };
        let block = v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok());
        let idx = v.get(8..12).and_then(|b| <[u8; 4]>::try_from(b).ok());
        match (block, idx, v.len()) {
            (Some(b), Some(i), 12) => Ok(Some((
                BlockNumber(u64::from_be_bytes(b)),
                u32::from_be_bytes(i),
            ))),
            _ => Err(StoreError::Corrupt {
                keyspace: "tx_index",
                key: tx.to_string(),
                reason: format!("expected 12 bytes, found {}", v.len()),
            }),
        }
    }

    /// The transfers of transaction `tx` of `chain`, in canonical order: a `tx_index` look-up
    /// and a scan of that one transaction's key range.
    pub fn transaction_transfers(
        &self,
        chain: ChainId,
        tx: &TxHash,
    ) -> Result<Vec<Transfer>, StoreError> {
        let Some((block, idx)) = self.tx_location(chain, tx)? else {
            return Ok(Vec::new());
        };
        let rk = txrow::row_key(&TransferKey {
            chain,
            block,
            tx_index: idx,
            kind: TransferKind::Native,
            position: 0,
        });
        let mut out = self.read_row(&rk)?.unwrap_or_default();
        out.retain(|t| t.tx_hash == *tx);
        Ok(out)
    }

    /// Transfer counts per kind for `chain`.
    pub fn counters(&self, chain: ChainId) -> Result<BTreeMap<TransferKind, u64>, StoreError> {
        let mut out = BTreeMap::new();
        for kv in self.counters.prefix(chain.0.to_be_bytes()) {
            let (k, v) = kv.into_inner().map_err(|e| self.io("read counters", e))?;
            let kind = k.get(2).copied().and_then(TransferKind::from_u8);
            let n = <[u8; 8]>::try_from(v.as_ref()).ok().map(u64::from_be_bytes);
            match (kind, n) {
                (Some(kind), Some(n)) => {
                    out.insert(kind, n);
                }
                _ => {
                    return Err(StoreError::Corrupt {
                        keyspace: "counters",
                        key: hex(&k),
                        reason: "bad counter record".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// One transfer by key.
    pub fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, StoreError> {
        Ok(self
            .read_row(&txrow::row_key(key))?
            .and_then(|row| row.into_iter().find(|t| t.key == *key)))
    }

    /// The keys of the transfers into (or out of) `address`, on every chain or one, in
    /// canonical order per chain.
    pub fn address_keys(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Box<dyn Iterator<Item = Result<TransferKey, StoreError>> + '_> {
        if let Address::Tx(node) = address {
            let all = self.tx_node_transfers(node, dir, chain);
            return Box::new(
                all.unwrap_or_else(|e| vec![Err(e)])
                    .into_iter()
                    .map(|t| t.map(|t| t.key)),
            );
        }
        Box::new(self.index_keys(address, dir, chain))
    }

    fn index_keys(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> impl Iterator<Item = Result<TransferKey, StoreError>> + '_ {
        let ks = match dir {
            Direction::Incoming => &self.addr_in,
            Direction::Outgoing => &self.addr_out,
        };
        let mut prefix = Vec::with_capacity(address.key_len() + 2);
        address.write_key(&mut prefix);
        if let Some(c) = chain {
            prefix.extend_from_slice(&c.0.to_be_bytes());
        }
        let skip = address.key_len();
        ks.prefix(prefix).map(move |kv| {
            let k = kv.key().map_err(|e| StoreError::Io {
                op: "scan address index",
                source: e,
            })?;
            TransferKey::from_bytes(&k[skip..]).ok_or_else(|| StoreError::Corrupt {
                keyspace: "address index",
                key: hex(&k),
                reason: "bad transfer key".into(),
            })
        })
    }

    /// The transfers into (or out of) `address`, like [`Store::address_keys`] but loaded: one
    /// range scan of the covering address index, no point read per transfer.
    ///
    /// A transaction node (`Address::Tx`) is read from its transaction instead (schema version
    /// 3): one `tx_index` look-up per chain and one scan of the transaction's transfers, merged
    /// with whatever the index holds for it (coinbases, or transfers that are not its own).
    pub fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Box<dyn Iterator<Item = Result<Transfer, StoreError>> + '_> {
        if let Address::Tx(node) = address {
            let all = self.tx_node_transfers(node, dir, chain);
            return Box::new(all.unwrap_or_else(|e| vec![Err(e)]).into_iter());
        }
        Box::new(self.index_transfers(address, dir, chain))
    }

    /// The transfers of transaction node `node` in direction `dir`: the index entries merged
    /// with the node's own transaction (through `tx_index`), in canonical order, each once.
    fn tx_node_transfers(
        &self,
        node: &[u8; 32],
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Result<Transfer, StoreError>>, StoreError> {
        let address = Address::Tx(*node);
        let mut out: Vec<Transfer> = self
            .index_transfers(&address, dir, chain)
            .collect::<Result<_, _>>()?;
        let chains = match chain {
            Some(c) => vec![c],
            None => self.chains()?.into_iter().map(|c| c.id).collect(),
        };
        let hash = node_tx_hash(node);
        for c in chains {
            for t in self.transaction_transfers(c, &hash)? {
                let side = match dir {
                    Direction::Incoming => &t.to,
                    Direction::Outgoing => &t.from,
                };
                if *side == address && own_tx_node(side, &t) {
                    out.push(t);
                }
            }
        }
        out.sort_by_key(|t| t.key.to_bytes());
        out.dedup_by_key(|t| t.key);
        Ok(out.into_iter().map(Ok).collect())
    }

    fn index_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> impl Iterator<Item = Result<Transfer, StoreError>> + '_ {
        let (ks, outgoing) = match dir {
            Direction::Incoming => (&self.addr_in, false),
            Direction::Outgoing => (&self.addr_out, true),
        };
        let mut prefix = Vec::with_capacity(address.key_len() + 2);
        address.write_key(&mut prefix);
        if let Some(c) = chain {
            prefix.extend_from_slice(&c.0.to_be_bytes());
        }
        let skip = address.key_len();
        let own = *address;
        ks.prefix(prefix).map(move |kv| {
            let (k, v) = kv.into_inner().map_err(|e| StoreError::Io {
                op: "scan address index",
                source: e,
            })?;
            k.get(skip..)
                .and_then(TransferKey::from_bytes)
                .and_then(|key| flow::decode(own, key, outgoing, &v))
                .ok_or_else(|| StoreError::Corrupt {
                    keyspace: "address index",
                    key: hex(&k),
                    reason: "bad transfer key or covering value".into(),
                })
        })
    }

    /// All transfers of `chain` in blocks `from..=to`, in canonical order.
    pub fn range_transfers(
        &self,
        chain: ChainId,
        from: BlockNumber,
        to: BlockNumber,
    ) -> impl Iterator<Item = Result<Transfer, StoreError>> + '_ {
        let lo = txrow::block_start(chain, from);
        let hi = match to.next() {
            Some(n) => txrow::block_start(chain, n).to_vec(),
            None => chain_end_key(chain),
        };
        self.transfers.range(lo.to_vec()..hi).flat_map(|kv| {
            let row = kv
                .into_inner()
                .map_err(|e| StoreError::Io {
                    op: "scan transfers",
                    source: e,
                })
                .and_then(|(k, v)| decode_row(&k, &v));
            match row {
                Ok(ts) => ts.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            }
        })
    }

    /// Flushes everything to disk.
    pub fn persist(&self) -> Result<(), StoreError> {
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.io("persist", e))
    }
}

/// A block range encoded for the store: keys and values built (as the storage engine's
/// buffers, sorted per keyspace), nothing written yet.
#[derive(Debug)]
pub struct PreparedRange {
    chain: ChainId,
    blocks: Vec<BlockRef>,
    block_values: Vec<Vec<u8>>,
    /// `transfers` rows, one per transaction (key, value), sorted by key.
    rows: Vec<(Slice, Slice)>,
    /// Number of transfers.
    transfers: usize,
    /// `tx_index` entries, sorted by key.
    txs: Vec<(Slice, Slice)>,
    /// Address index entries (key, covering value), sorted by key.
    outs: Vec<(Slice, Slice)>,
    ins: Vec<(Slice, Slice)>,
    by_kind: BTreeMap<TransferKind, u64>,
    extra: Vec<PreparedOp>,
    /// Writes that always go into the batch with the checkpoint (also in bulk mode).
    tail: Vec<PreparedOp>,
}

impl PreparedRange {
    /// Encodes `transfers` of the contiguous ascending `blocks` of `chain`.
    pub fn new(
        chain: ChainId,
        blocks: Vec<BlockRef>,
        transfers: &[Transfer],
    ) -> Result<Self, StoreError> {
        for w in blocks.windows(2) {
            if w[0].number.next() != Some(w[1].number) {
                return Err(StoreError::NotContiguous {
                    chain,
                    checkpoint: w[0].number,
                    start: w[1].number,
                });
            }
        }
        let (lo, hi) = match (blocks.first(), blocks.last()) {
            (Some(f), Some(l)) => (f.number, l.number),
            _ => (BlockNumber(1), BlockNumber(0)),
        };
        let mut by_kind = BTreeMap::new();
        let mut txs = BTreeMap::new();
        let mut last_tx: Option<(TxHash, BlockNumber, u32)> = None;
        // Transfers grouped by transaction in canonical order (sorted here when the caller did
        // not); of two transfers with one key the later wins, as it did as a later insert.
        let mut order: Vec<&Transfer> = transfers.iter().collect();
        if !order.is_sorted_by_key(|t| t.key) {
            order.sort_by_key(|t| t.key);
        }
        let mut sorted: Vec<&Transfer> = Vec::with_capacity(order.len());
        for t in order {
            match sorted.last_mut() {
                Some(last) if last.key == t.key => *last = t,
                _ => sorted.push(t),
            }
        }
        // Index entries as (address key prefix, position in `sorted`): an index key is the
        // address's key encoding followed by the transfer key, `Address`'s order is the byte
        // order of its key encodings, and `sorted` is in transfer-key order, so ordering by
        // prefix, address and position orders the keys without building or comparing them.
        let mut out_order = Vec::with_capacity(sorted.len());
        let mut in_order = Vec::with_capacity(sorted.len());
        let mut kinds = [0u64; TransferKind::ALL.len()];
        for (i, t) in sorted.iter().enumerate() {
            if t.key.chain != chain || t.key.block < lo || t.key.block > hi {
                return Err(StoreError::TransferOutsideRange { key: t.key });
            }
            let i = u32::try_from(i).map_err(|_| StoreError::Encode("range too large".into()))?;
            if !own_tx_node(&t.from, t) {
                out_order.push((t.from.key_prefix(), i));
            }
            if !own_tx_node(&t.to, t) {
                in_order.push((t.to.key_prefix(), i));
            }
            if let Some(n) = kinds.get_mut(t.kind() as usize) {
                *n += 1;
            }
        }
        for (kind, n) in TransferKind::ALL.iter().zip(kinds) {
            if n > 0 {
                by_kind.insert(*kind, n);
            }
        }
        // One scratch buffer per kind of entry: each key and value is copied once, straight
        // into its engine buffer, in key order.
        let (mut kbuf, mut vbuf) = (Vec::with_capacity(64), Vec::with_capacity(128));
        let mut entries = |order: &mut Vec<(u64, u32)>, outgoing: bool| {
            let own = |i: u32| {
                let t = sorted[i as usize];
                if outgoing { t.from } else { t.to }
            };
            // Stable: the positions of one address stay ascending (and runs of entries of one
            // address, as in batch payouts, are found and kept rather than sorted again).
            order.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| own(a.1).cmp(&own(b.1))));
            order
                .iter()
                .map(|(_, i)| {
                    let t = sorted[*i as usize];
                    index_key(&mut kbuf, &own(*i), &t.key.to_bytes());
                    vbuf.clear();
                    flow::encode(&mut vbuf, t, outgoing);
                    (Slice::new(&kbuf), Slice::new(&vbuf))
                })
                .collect::<Vec<_>>()
        };
        let outs = entries(&mut out_order, true);
        let ins = entries(&mut in_order, false);
        for t in &sorted {
            let here = (t.tx_hash, t.key.block, t.key.tx_index);
            if last_tx != Some(here) {
                last_tx = Some(here);
                txs.insert(tx_key(chain, &t.tx_hash), tx_location_value(&t.key));
            }
        }
        // One `transfers` row per transaction (already in key order).
        let mut rows = Vec::new();
        for group in sorted.chunk_by(|a, b| txrow::row_key(&a.key) == txrow::row_key(&b.key)) {
            vbuf.clear();
            txrow::encode(&mut vbuf, group);
            rows.push((
                Slice::new(&txrow::row_key(&group[0].key)),
                Slice::new(&vbuf),
            ));
        }
        let block_values = blocks.iter().map(encode).collect::<Result<_, _>>()?;
        let txs = txs
            .into_iter()
            .map(|(k, v)| (Slice::new(&k), Slice::new(&v)))
            .collect();
        Ok(Self {
            chain,
            blocks,
            block_values,
            rows,
            transfers: sorted.len(),
            txs,
            outs,
            ins,
            by_kind,
            extra: Vec::new(),
            tail: Vec::new(),
        })
    }

    /// Adds writes to other keyspaces that commit in the same batch as the range.
    pub fn with_extra(mut self, ops: Vec<KeyspaceOp>) -> Self {
        self.extra.extend(ops.into_iter().map(|o| PreparedOp {
            keyspace: o.keyspace,
            key: Slice::from(o.key),
            value: o.value.map(Slice::from),
        }));
        self
    }

    /// Adds writes that commit in the batch with the checkpoint even when the range is
    /// ingested ([`Store::write_prepared_bulk`]): e.g. removals of data older than the range,
    /// which a discarded bulk range could not bring back.
    pub fn with_final(mut self, ops: Vec<KeyspaceOp>) -> Self {
        self.tail.extend(ops.into_iter().map(|o| PreparedOp {
            keyspace: o.keyspace,
            key: Slice::from(o.key),
            value: o.value.map(Slice::from),
        }));
        self
    }

    /// The blocks.
    pub fn blocks(&self) -> &[BlockRef] {
        &self.blocks
    }

    /// Number of transfers.
    pub fn len(&self) -> usize {
        self.transfers
    }

    /// Whether there are no transfers.
    pub fn is_empty(&self) -> bool {
        self.transfers == 0
    }

    /// Transfers per kind.
    pub fn by_kind(&self) -> &BTreeMap<TransferKind, u64> {
        &self.by_kind
    }
}

/// The last intact checkpoints of a journal check, readable.
fn describe_intact(files: &[journal::JournalFile]) -> String {
    let cps = journal::intact_checkpoints(files);
    let upto = files
        .iter()
        .position(|f| f.damage.as_ref().is_some_and(|d| !d.torn_tail))
        .map_or(files.len(), |i| i + 1);
    let seqno = files
        .get(..upto)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f.last_seqno)
        .max();
    let batch = match seqno {
        Some(s) => format!("journal batch {s}"),
        None => "no intact batch in the damaged journal".to_owned(),
    };
    if cps.is_empty() {
        format!("{batch} (no checkpoint in the intact part of the journal: the flushed tables)")
    } else {
        let list: Vec<String> = cps
            .iter()
            .map(|(c, b)| format!("chain id {c} at block {b}"))
            .collect();
        format!("{} ({batch})", list.join(", "))
    }
}

/// The first 8 bytes of `k` as a big-endian integer (zero-padded): comparing these first and
/// the whole keys only on a tie gives byte order with one integer comparison for most pairs of
/// random keys.
pub(crate) fn key_prefix(k: &[u8]) -> u64 {
    // Keys are nearly always longer: one load, no length-dependent copy (a `memmove` call in
    // every comparison of the sorts).
    if let Some(b) = k.first_chunk::<8>() {
        return u64::from_be_bytes(*b);
    }
    let mut b = [0u8; 8];
    let n = k.len().min(8);
    b[..n].copy_from_slice(&k[..n]);
    u64::from_be_bytes(b)
}

fn block_key(chain: ChainId, n: BlockNumber) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[..2].copy_from_slice(&chain.0.to_be_bytes());
    k[2..].copy_from_slice(&n.0.to_be_bytes());
    k
}

fn tx_key(chain: ChainId, tx: &TxHash) -> [u8; 34] {
    let mut k = [0u8; 34];
    k[..2].copy_from_slice(&chain.0.to_be_bytes());
    k[2..].copy_from_slice(tx.0.as_slice());
    k
}

fn counter_key(chain: ChainId, kind: TransferKind) -> [u8; 3] {
    let c = chain.0.to_be_bytes();
    [c[0], c[1], kind as u8]
}

/// The first key past every transfer key of `chain`.
fn chain_end_key(chain: ChainId) -> Vec<u8> {
    match chain.0.checked_add(1) {
        Some(n) => n.to_be_bytes().to_vec(),
        None => vec![0xff; TransferKey::LEN + 1],
    }
}

/// The `tx_index` value of a transaction: its block and index in the block.
fn tx_location_value(key: &TransferKey) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(&key.block.0.to_be_bytes());
    v[8..].copy_from_slice(&key.tx_index.to_be_bytes());
    v
}

fn index_key(buf: &mut Vec<u8>, addr: &Address, tk: &[u8; TransferKey::LEN]) {
    buf.clear();
    addr.write_key(buf);
    buf.extend_from_slice(tk);
}

/// Decodes a `transfers` row (see `txrow.rs`).
fn decode_row(k: &[u8], v: &[u8]) -> Result<Vec<Transfer>, StoreError> {
    txrow::decode(k, v).ok_or_else(|| StoreError::Corrupt {
        keyspace: "transfers",
        key: hex(k),
        reason: "bad transaction row".into(),
    })
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(v).map_err(|e| StoreError::Encode(e.to_string()))
}

fn decode<T: for<'a> Deserialize<'a>>(
    keyspace: &'static str,
    key: &str,
    v: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(v).map_err(|e| StoreError::Corrupt {
        keyspace,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn hex(b: &[u8]) -> String {
    alloy_primitives::hex::encode(b)
}

#[cfg(test)]
mod tests;
