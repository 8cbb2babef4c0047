//! Bulk ranges: a large block range written as sorted runs straight into table files (the
//! storage engine's ingestion), without the journal and the memtables.
//!
//! A sync far behind the tip writes ranges of hundreds of thousands of keys, most of them
//! random (address indexes, UTXO set, transaction ids). Through a write batch every key is
//! written twice before its first compaction (journal, then memtable flush) and inserted into a
//! skiplist; ingested, the sorted keys of each keyspace become one table directly.
//!
//! Ingestion is atomic per keyspace but not across keyspaces, and ingested data is visible at
//! once. The crash guarantee of [`Store::write_prepared`] ("a crash never leaves half a range
//! or a checkpoint ahead of its data") is kept by a **marker**:
//!
//! 1. `bulk:<chain>` → first and last block of the range is written to `meta` and synced to
//!    disk before anything is ingested;
//! 2. the keyspaces are ingested, one sorted run each, in two phases of parallel ingestions:
//!    `transfers` and the caller's first extra keyspace (the Bitcoin undo data), then all
//!    the others (address indexes, `tx_index`, the rest of the extra writes);
//! 3. one ordinary atomic batch writes the block hashes, counters, checkpoint and the range's
//!    final writes, and removes the marker.
//!
//! A marker found when the store is opened means the process died between 1 and 3: whatever
//! was ingested past the checkpoint is removed again ([`Store::discard_bulk`], with the
//! Bitcoin UTXO set restored from the range's undo data), before anything else reads the
//! store. Ingested tables are synced to disk by the engine before they become visible.

use super::{
    KeyspaceOp, PreparedOp, PreparedRange, Store, StoreError, UnwindStats, chain_end_key, hex,
    index_key, own_tx_node, tx_key,
};
use crate::model::{BlockNumber, ChainId};
use fjall::{Keyspace, PersistMode, Slice};

/// Prefix of the bulk-range markers in the `meta` keyspace (followed by the chain id).
const MARKER_PREFIX: &[u8] = b"bulk:";

fn marker_key(chain: ChainId) -> Vec<u8> {
    let mut k = MARKER_PREFIX.to_vec();
    k.extend_from_slice(&chain.0.to_be_bytes());
    k
}

/// A bulk range that was started but not committed (found on open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkMarker {
    /// The chain.
    pub chain: ChainId,
    /// First block of the range.
    pub first: BlockNumber,
    /// Last block of the range.
    pub last: BlockNumber,
}

/// Where [`Store::write_bulk_steps`] stops (tests simulate a crash after `n` ingestions).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BulkStop {
    /// Write everything.
    Never,
    /// Stop after this many keyspace ingestions, before the checkpoint (a simulated crash).
    #[cfg_attr(not(test), allow(dead_code))]
    AfterIngestions(usize),
}

/// A keyspace's writes: key and value (`None` = remove).
type Rows = Vec<(Slice, Option<Slice>)>;

/// Ingests `rows` (a keyspace's writes, `None` = remove) as one sorted run. Equal keys keep
/// the last write, as in a write batch. `unique_sorted` rows (the core keyspaces of a
/// [`PreparedRange`], sorted and unique by construction) skip the sort and the check.
fn ingest(ks: &Keyspace, mut rows: Rows, unique_sorted: bool) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    if !unique_sorted {
        // Stable and linear on the already sorted input.
        rows.sort_by(|a, b| {
            super::key_prefix(&a.0)
                .cmp(&super::key_prefix(&b.0))
                .then_with(|| a.0.cmp(&b.0))
        });
    }
    let io = |source| StoreError::Io {
        op: "bulk ingestion",
        source,
    };
    let mut ing = ks.start_ingestion().map_err(io)?;
    let mut it = rows.into_iter().peekable();
    while let Some((k, v)) = it.next() {
        if !unique_sorted && it.peek().is_some_and(|(next, _)| *next == k) {
            continue;
        }
        match v {
            Some(v) => ing.write(k, v).map_err(io)?,
            None => ing.write_tombstone(k).map_err(io)?,
        }
    }
    ing.finish().map_err(io)
}

/// A keyspace, its writes and whether they are sorted and unique already.
type Run = (Keyspace, Rows, bool);

/// Ingests every run on its own thread (each keyspace once), returning the first error.
fn ingest_parallel(runs: Vec<Run>) -> Result<(), StoreError> {
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|(ks, rows, sorted)| s.spawn(move || ingest(&ks, rows, sorted)))
            .collect();
        let mut result = Ok(());
        for h in handles {
            let r = h.join().unwrap_or_else(|_| {
                Err(StoreError::Encode("bulk ingestion thread panicked".into()))
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

fn values(rows: Vec<(Slice, Slice)>) -> Rows {
    rows.into_iter().map(|(k, v)| (k, Some(v))).collect()
}

impl Store {
    /// [`Store::write_prepared`] for a large range far behind the tip: every keyspace's writes
    /// are ingested as one sorted run (no journal, no memtable), under a durable marker that
    /// makes the next open discard a range a crash interrupted (see the module docs). Small
    /// ranges are cheaper through [`Store::write_prepared`] (each ingestion makes one table
    /// per keyspace).
    pub fn write_prepared_bulk(&self, p: PreparedRange) -> Result<(), StoreError> {
        self.write_bulk_steps(p, BulkStop::Never)
    }

    pub(crate) fn write_bulk_steps(
        &self,
        p: PreparedRange,
        stop: BulkStop,
    ) -> Result<(), StoreError> {
        let chain = p.chain;
        let (Some(first), Some(last)) = (p.blocks.first(), p.blocks.last()) else {
            return Ok(());
        };
        let (first, last) = (first.number, last.number);
        self.check_next(chain, first)?;
        // Sorted by construction; unique transfer keys make every core run unique (the index
        // keys embed them), which ingestion requires.
        if let Some(w) = p.rows.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(StoreError::DuplicateTransfer { key: hex(&w[0].0) });
        }
        let started = std::time::Instant::now();
        // 1. The marker, on disk before any table of the range can be.
        let marker = marker_value(BulkMarker { chain, first, last });
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        batch.insert(&self.meta, marker_key(chain), marker);
        batch
            .commit()
            .map_err(|e| self.io("write bulk marker", e))?;
        // 2. One ingestion per keyspace, in two parallel phases (ingestion waits on fsyncs):
        //    `transfers` and the first extra keyspace (the caller's undo data), then all the
        //    others. The discard finds the index and `tx_index` entries again from `transfers`
        //    and the caller's writes from its undo data, so both are in before the rest.
        let mut runs: Vec<Run> = vec![
            (self.transfers.clone(), values(p.rows), true),
            (self.addr_out.clone(), values(p.outs), true),
            (self.addr_in.clone(), values(p.ins), true),
            (self.tx_index.clone(), values(p.txs), true),
        ];
        let mut first_extra = None;
        for PreparedOp {
            keyspace,
            key,
            value,
        } in p.extra
        {
            // One run per keyspace (later writes stay after earlier ones: the ingestion's sort
            // is stable and keeps the last write of a key).
            match runs
                .iter_mut()
                .position(|r| r.0.name().as_ref() == keyspace.name())
            {
                Some(i) => {
                    runs[i].1.push((key, value));
                    runs[i].2 = false;
                }
                None => {
                    first_extra.get_or_insert(runs.len());
                    runs.push((keyspace.writable()?.clone(), vec![(key, value)], false));
                }
            }
        }
        // Phase order: transfers, the first extra run, then the rest.
        if let Some(i) = first_extra {
            let r = runs.remove(i);
            runs.insert(1, r);
        }
        let phase1 = runs.len().min(if first_extra.is_some() { 2 } else { 1 });
        if let BulkStop::AfterIngestions(n) = stop {
            // A simulated crash: the first `n` runs in phase order, one after the other.
            for (ks, rows, sorted) in runs.into_iter().take(n) {
                ingest(&ks, rows, sorted)?;
            }
            return Ok(());
        }
        let rest = runs.split_off(phase1);
        let marked = started.elapsed();
        ingest_parallel(runs)?;
        let phase1_done = started.elapsed();
        ingest_parallel(rest)?;
        let phase2_done = started.elapsed();
        // 3. Blocks, counters, checkpoint and final writes atomically, and the marker removed.
        let mut batch = self.db.batch().durability(Some(PersistMode::Buffer));
        self.range_tail(
            &mut batch,
            chain,
            &p.blocks,
            p.block_values,
            &p.by_kind,
            p.tail,
        )?;
        batch.remove(&self.meta, marker_key(chain));
        batch
            .commit()
            .map_err(|e| self.io("commit bulk range", e))?;
        tracing::debug!(
            chain = chain.0,
            first = first.0,
            last = last.0,
            marker_ms = marked.as_millis(),
            phase1_ms = (phase1_done - marked).as_millis(),
            phase2_ms = (phase2_done - phase1_done).as_millis(),
            total_ms = started.elapsed().as_millis(),
            "bulk range written"
        );
        Ok(())
    }

    /// The bulk ranges a crash interrupted (markers left in `meta`).
    pub fn bulk_markers(&self) -> Result<Vec<BulkMarker>, StoreError> {
        let mut out = Vec::new();
        for kv in self.meta.prefix(MARKER_PREFIX) {
            let (k, v) = kv
                .into_inner()
                .map_err(|e| self.io("read bulk markers", e))?;
            let chain = k
                .get(MARKER_PREFIX.len()..)
                .and_then(|c| <[u8; 2]>::try_from(c).ok())
                .map(u16::from_be_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    keyspace: "meta",
                    key: hex(&k),
                    reason: "bad bulk marker".into(),
                })?;
            out.push(parse_marker(&k, ChainId(chain), &v)?);
        }
        Ok(out)
    }

    /// Discards what an interrupted bulk range ingested: every transfer of the chain from
    /// `m.first` on (none is committed: the checkpoint is below it) with its index and
    /// `tx_index` entries, and replaces the marker by a `bulk_undo:` record, atomically and
    /// synced: the range's extra writes (e.g. the Bitcoin UTXO set) are undone by their owner
    /// the next time it opens the store for writing ([`Store::pending_bulk_undo`],
    /// [`Store::finish_bulk_undo`]); the store knows nothing of their meaning. Counters and
    /// checkpoint are untouched: the range never reached them.
    pub fn discard_bulk(&self, m: BulkMarker) -> Result<UnwindStats, StoreError> {
        let mut stats = UnwindStats::default();
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        if self
            .checkpoint(m.chain)?
            .is_none_or(|cp| cp.number < m.first)
        {
            let mut ikey = Vec::with_capacity(64);
            let lo = super::txrow::block_start(m.chain, m.first);
            for kv in self.transfers.range(lo.to_vec()..chain_end_key(m.chain)) {
                let (k, v) = kv
                    .into_inner()
                    .map_err(|e| self.io("discard bulk transfers", e))?;
                let row = super::decode_row(&k, &v)?;
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
                    batch.remove(&self.tx_index, tx_key(m.chain, &t.tx_hash).to_vec());
                    stats.transfers += 1;
                }
            }
            batch.insert(&self.meta, undo_key(m.chain), marker_value(m));
        }
        batch.remove(&self.meta, marker_key(m.chain));
        batch
            .commit()
            .map_err(|e| self.io("discard bulk range", e))?;
        tracing::warn!(
            chain = m.chain.0,
            first = m.first.0,
            last = m.last.0,
            transfers = stats.transfers,
            "discarded a bulk range interrupted by a crash"
        );
        Ok(stats)
    }

    /// The discarded bulk ranges whose extra writes (written by the caller of
    /// [`Store::write_prepared_bulk`] through [`PreparedRange::with_extra`]) are still to be
    /// undone by their owner, for `chain`.
    pub fn pending_bulk_undo(&self, chain: ChainId) -> Result<Option<BulkMarker>, StoreError> {
        let Some(v) = self
            .meta
            .get(undo_key(chain))
            .map_err(|e| self.io("read bulk undo record", e))?
        else {
            return Ok(None);
        };
        parse_marker(&undo_key(chain), chain, &v).map(Some)
    }

    /// Commits the owner's undo of a discarded bulk range's extra writes (`ops`) and removes
    /// the `bulk_undo:` record, atomically and synced.
    pub fn finish_bulk_undo(&self, m: BulkMarker, ops: Vec<KeyspaceOp>) -> Result<(), StoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        super::apply_ops(&mut batch, ops)?;
        batch.remove(&self.meta, undo_key(m.chain));
        batch
            .commit()
            .map_err(|e| self.io("undo a discarded bulk range", e))
    }
}

/// Prefix of the records of discarded bulk ranges whose extra writes are still to be undone.
const UNDO_PREFIX: &[u8] = b"bulk_undo:";

fn undo_key(chain: ChainId) -> Vec<u8> {
    let mut k = UNDO_PREFIX.to_vec();
    k.extend_from_slice(&chain.0.to_be_bytes());
    k
}

fn marker_value(m: BulkMarker) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&m.first.0.to_be_bytes());
    v.extend_from_slice(&m.last.0.to_be_bytes());
    v
}

fn parse_marker(k: &[u8], chain: ChainId, v: &[u8]) -> Result<BulkMarker, StoreError> {
    let first = v.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok());
    let last = v.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok());
    match (first, last, v.len()) {
        (Some(f), Some(l), 16) => Ok(BulkMarker {
            chain,
            first: BlockNumber(u64::from_be_bytes(f)),
            last: BlockNumber(u64::from_be_bytes(l)),
        }),
        _ => Err(StoreError::Corrupt {
            keyspace: "meta",
            key: hex(k),
            reason: "bad bulk marker".into(),
        }),
    }
}
