//! The UTXO set and per-transaction metadata in the store, and the conversion of decoded blocks
//! into transfers with every input resolved.
//!
//! Keyspaces (integers big-endian, `chain` = u16 [`ChainId`], txids in internal byte order):
//!
//! | keyspace      | key                              | value                                  |
//! |---------------|----------------------------------|----------------------------------------|
//! | `btc_utxo`    | chain + txid + vout u32          | script id (32) + value u64             |
//! | `btc_undo`    | chain + height u64               | postcard [`BlockUndo`]                 |
//! | `btc_tx`      | chain + txid                     | postcard [`TxMeta`]                    |
//! | `btc_scripts` | script id                        | canonical script bytes (for display)   |
//!
//! A range is written with [`Store::write_prepared`] in one batch with its transfers and its
//! checkpoint; outputs created and spent inside the range never touch `btc_utxo`. Undo data is
//! kept for the last [`REORG_WINDOW`] blocks, like Bitcoin Core's rev files, so
//! [`UtxoStore::unwind`] restores spent outputs atomically with the removal of the blocks.

use super::{
    BtcError,
    decode::DecodedBlock,
    script::{ScriptKind, burn_sink, coinbase_source, display, synthetic_name},
};
use crate::store::{
    Table,
    keyspaces::{self, Codec, Keyspace, Postcard, Raw},
};
use crate::{
    model::{
        Address, Amount, Asset, BlockNumber, BlockRef, ChainId, Timestamp, Transfer, TransferKey,
        TransferKind, TxHash, UTXO_OUTPUT_BASE,
    },
    store::{KeyspaceOp, PreparedRange, REORG_WINDOW, Store, StoreError, UnwindStats},
};
use alloy_primitives::B256;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An outpoint: txid (internal byte order) and output index.
pub type OutPoint = ([u8; 32], u32);

/// A resolved prevout: script id and value in satoshis.
pub type Prevout = ([u8; 32], u64);

/// A prevout a source fetched (the store did not hold it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedPrevout {
    /// Script id.
    pub id: [u8; 32],
    /// Value in satoshis.
    pub value: u64,
    /// Canonical script (kept for display).
    pub script: Vec<u8>,
}

/// What the store remembers of one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxMeta {
    /// Block height.
    pub block: u64,
    /// Index in the block.
    pub tx_index: u32,
    /// Block time.
    pub time: u64,
    /// Whether it is the coinbase.
    pub coinbase: bool,
    /// Number of inputs (0 for the coinbase).
    pub inputs: u32,
    /// Number of outputs.
    pub outputs: u32,
    /// Sum of resolved input values.
    pub input_value: u64,
    /// Sum of output values.
    pub output_value: u64,
    /// Fee: inputs − outputs, when every input resolved (none for the coinbase).
    pub fee: Option<u64>,
    /// Inputs whose prevout is not indexed: (input index, spent txid, vout).
    pub unresolved: Vec<(u32, [u8; 32], u32)>,
    /// OP_RETURN outputs: (output index, value burnt, data script bytes).
    pub op_returns: Vec<(u32, u64, Vec<u8>)>,
}

/// Undo data of one block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockUndo {
    /// Outputs this block spent (restored on unwind, before its own creations are removed).
    pub spent: Vec<(OutPoint, Prevout)>,
    /// Outputs this block created (removed on unwind).
    pub created: Vec<OutPoint>,
    /// Txids of the block (their metadata is removed on unwind).
    pub txids: Vec<[u8; 32]>,
}

/// Counts of one prepared range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeStats {
    /// Blocks.
    pub blocks: u64,
    /// Transactions.
    pub txs: u64,
    /// Non-coinbase inputs.
    pub inputs: u64,
    /// Inputs resolved from the store or the range itself.
    pub resolved_inputs: u64,
    /// Inputs resolved by asking the source for the spent transaction.
    pub fetched_inputs: u64,
    /// Inputs whose prevout is not known (explicit, see [`TxMeta::unresolved`]).
    pub unresolved_inputs: u64,
    /// Outputs.
    pub outputs: u64,
    /// OP_RETURN outputs.
    pub op_returns: u64,
    /// Serialized block bytes.
    pub bytes: u64,
}

impl RangeStats {
    /// Adds `o`.
    pub fn merge(&mut self, o: &Self) {
        self.blocks += o.blocks;
        self.txs += o.txs;
        self.inputs += o.inputs;
        self.resolved_inputs += o.resolved_inputs;
        self.fetched_inputs += o.fetched_inputs;
        self.unresolved_inputs += o.unresolved_inputs;
        self.outputs += o.outputs;
        self.op_returns += o.op_returns;
        self.bytes += o.bytes;
    }
}

/// How many script ids [`UtxoStore`] remembers as already written to `btc_scripts` (32 bytes
/// each plus the set's overhead: about 50 MB); the set is cleared when full.
const SCRIPTS_SEEN_MAX: usize = 1 << 20;

/// How many unspent outputs [`UtxoStore`] keeps in memory in front of `btc_utxo` (about
/// 100–170 MB at 80 bytes per entry plus the table's overhead). Oldest ranges' outputs are
/// evicted first: real spends are biased to recent outputs, and every entry is also in the
/// store, so an evicted output is only one point read away.
pub const UTXO_CACHE_MAX: usize = 1 << 20;

/// Ranges with at least this many transfers are written with
/// [`Store::write_prepared_bulk`] (sorted runs ingested as tables, no journal, no memtable):
/// a sync far behind the tip (200 blocks per commit). A range near the tip (one block of a few
/// thousand transactions) goes through the ordinary write batch.
pub const BULK_MIN_TRANSFERS: usize = 65_536;

/// The Bitcoin keyspaces of a store.
#[derive(Clone)]
pub struct UtxoStore {
    /// Ranges with at least this many transfers are ingested ([`BULK_MIN_TRANSFERS`]).
    bulk_min_transfers: usize,
    /// Script ids whose `btc_scripts` entry a prepared range already writes: addresses are
    /// reused a lot on the real chain, and each skipped write is one random key less. Scripts
    /// are never removed (not even by an unwind), so a remembered id stays stored once its
    /// range is committed; a failed commit clears the set.
    scripts_seen: std::sync::Arc<std::sync::Mutex<HashSet<[u8; 32]>>>,
    /// Unspent outputs created by the ranges prepared so far (bounded), in front of the
    /// store's point reads ([`UtxoCache`]).
    cache: std::sync::Arc<std::sync::Mutex<UtxoCache>>,
    store: Store,
    utxo: Table<Raw, UtxoValue>,
    undo: Table<Raw, Postcard<BlockUndo>>,
    tx: Table<Raw, Postcard<TxMeta>>,
    scripts: Table<Raw, Raw>,
}

/// The UTXO set: chain u16 + txid + vout u32 → script id + value u64.
const UTXO: Keyspace<Raw, UtxoValue> = Keyspace::new(&keyspaces::BTC_UTXO);
/// Undo data: chain u16 + height u64 → postcard [`BlockUndo`].
const UNDO: Keyspace<Raw, Postcard<BlockUndo>> = Keyspace::new(&keyspaces::BTC_UNDO);
/// Transaction metadata: chain u16 + txid → postcard [`TxMeta`].
const TX: Keyspace<Raw, Postcard<TxMeta>> = Keyspace::new(&keyspaces::BTC_TX);
/// Scripts: script id → the script.
const SCRIPTS: Keyspace<Raw, Raw> = Keyspace::new(&keyspaces::BTC_SCRIPTS);

/// The codec of a `btc_utxo` value: script id (32 bytes) and value u64.
#[derive(Debug)]
pub struct UtxoValue;

impl Codec for UtxoValue {
    type Value = Prevout;
    fn encode(p: &Prevout) -> Result<Vec<u8>, String> {
        Ok(utxo_value(p))
    }
    fn decode(b: &[u8]) -> Result<Prevout, String> {
        parse_utxo_value(b).ok_or_else(|| "bad utxo record".to_owned())
    }
}

/// A bounded map of the unspent outputs that the ranges prepared so far created, valid for the
/// chain ending at `tip` (the hash of the last block prepared). Every entry is in the store
/// once the range that created it is committed (or in `pending` until then), so a hit saves
/// a point read and a miss falls back to the store. A range whose first block does not
/// extend `tip` (a reorg, an unwind, a range prepared but never committed) clears the cache
/// first; so do a failed prepare or commit and an unwind.
#[derive(Default)]
pub(crate) struct UtxoCache {
    /// Output → (prevout, generation of the range that created it).
    map: HashMap<OutPoint, (Prevout, u64)>,
    /// Live entries per generation (for eviction of the oldest).
    live: std::collections::VecDeque<(u64, usize)>,
    /// The last block prepared (internal byte order).
    tip: Option<[u8; 32]>,
    /// Generation of the next range.
    next_gen: u64,
    /// Maximum number of entries.
    max: usize,
}

impl UtxoCache {
    fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.live.clear();
        self.tip = None;
    }

    /// Removes and returns an output (it is being spent).
    fn take(&mut self, op: &OutPoint) -> Option<Prevout> {
        let (p, generation) = self.map.remove(op)?;
        if let Some(front) = self.live.front().map(|l| l.0)
            && let Some(l) = generation
                .checked_sub(front)
                .and_then(|i| usize::try_from(i).ok())
                .and_then(|i| self.live.get_mut(i))
        {
            l.1 = l.1.saturating_sub(1);
        }
        Some(p)
    }

    /// Adds the unspent outputs a range created, as the newest generation, and evicts the
    /// oldest generations while the cache is over its bound.
    fn add(&mut self, tip: [u8; 32], created: &HashMap<OutPoint, Prevout>) {
        let generation = self.next_gen;
        self.next_gen += 1;
        if self.max == 0 {
            self.tip = Some(tip);
            return;
        }
        // Generations are contiguous in `live` (see `take`).
        self.live.push_back((generation, created.len()));
        self.map.reserve(created.len().min(self.max));
        for (o, p) in created {
            self.map.insert(*o, (*p, generation));
        }
        self.tip = Some(tip);
        if self.map.len() > self.max {
            // Down to three quarters, so eviction passes stay rare.
            let target = self.max / 4 * 3;
            let mut total: usize = self.live.iter().map(|l| l.1).sum();
            let mut keep_from = generation;
            while total > target {
                match self.live.pop_front() {
                    Some((g, n)) => {
                        total -= n;
                        keep_from = g + 1;
                    }
                    None => break,
                }
            }
            if self.live.is_empty() {
                self.map.clear();
            } else {
                self.map.retain(|_, (_, g)| *g >= keep_from);
            }
        }
    }
}

fn utxo_key(chain: ChainId, op: &OutPoint) -> Vec<u8> {
    let mut k = Vec::with_capacity(38);
    k.extend_from_slice(&chain.0.to_be_bytes());
    k.extend_from_slice(&op.0);
    k.extend_from_slice(&op.1.to_be_bytes());
    k
}

fn utxo_value(p: &Prevout) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&p.0);
    v.extend_from_slice(&p.1.to_be_bytes());
    v
}

fn parse_utxo_value(v: &[u8]) -> Option<Prevout> {
    let id: [u8; 32] = v.get(..32)?.try_into().ok()?;
    let value = u64::from_be_bytes(v.get(32..40)?.try_into().ok()?);
    Some((id, value))
}

fn tx_key(chain: ChainId, txid: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(34);
    k.extend_from_slice(&chain.0.to_be_bytes());
    k.extend_from_slice(txid);
    k
}

fn undo_key(chain: ChainId, height: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&chain.0.to_be_bytes());
    k.extend_from_slice(&height.to_be_bytes());
    k
}

/// A hash in internal byte order as the usual display-order [`B256`].
pub fn display_b256(internal: &[u8; 32]) -> B256 {
    let mut r = *internal;
    r.reverse();
    B256::from(r)
}

/// A range with every input resolved, ready for [`UtxoStore::commit`]: its transfers and
/// the Bitcoin keyspaces' records, not yet encoded. The encoding ([`PreparedBtcRange::encode`])
/// is left to the commit, so that it runs beside the resolution of the next range (which
/// depends on this one's outputs and so cannot start earlier).
#[derive(Debug)]
pub struct PreparedBtcRange {
    chain: ChainId,
    blocks: Vec<BlockRef>,
    transfers: Vec<Transfer>,
    /// Undo data per block height.
    undo: Vec<(u64, BlockUndo)>,
    /// Transaction metadata per txid.
    metas: Vec<([u8; 32], TxMeta)>,
    /// New `btc_scripts` entries: script id and canonical script.
    scripts: Vec<([u8; 32], Vec<u8>)>,
    /// Outputs spent from the store (removed from `btc_utxo`).
    spent: Vec<OutPoint>,
    /// Outputs created and still unspent at the end of the range (added to `btc_utxo`).
    unspent: Vec<(OutPoint, Prevout)>,
    /// Heights whose undo data leaves the reorg window (removed with the checkpoint).
    expired_undo: Vec<u64>,
    /// Counts.
    pub stats: RangeStats,
    /// Outputs the range creates that are still unspent at its end: the `pending` of the next
    /// range, prepared while this one commits.
    pub created: HashMap<OutPoint, Prevout>,
}

/// A range encoded for the store ([`UtxoStore::encode`]), ready for [`UtxoStore::write`].
#[derive(Debug)]
pub struct EncodedBtcRange {
    range: PreparedRange,
    stats: RangeStats,
}

impl EncodedBtcRange {
    /// Number of transfers.
    pub fn transfers(&self) -> usize {
        self.range.len()
    }
}

impl PreparedBtcRange {
    /// Number of transfers.
    pub fn transfers(&self) -> usize {
        self.transfers.len()
    }

    /// Encodes the range for the store: transfers, indexes and checkpoint
    /// ([`PreparedRange::new`], on a second thread) and the Bitcoin keyspaces' writes, one
    /// sorted run per keyspace, undo data first (see [`Store::write_prepared_bulk`]).
    pub fn encode(self, u: &UtxoStore) -> Result<PreparedRange, BtcError> {
        let Self {
            chain,
            blocks,
            transfers,
            undo,
            metas,
            scripts,
            spent,
            unspent,
            expired_undo,
            ..
        } = self;
        let (range, ops) = std::thread::scope(|s| {
            let range = s.spawn(|| PreparedRange::new(chain, blocks, &transfers));
            let ops = (|| -> Result<Vec<KeyspaceOp>, BtcError> {
                let mut ops = Vec::with_capacity(
                    undo.len() + metas.len() + scripts.len() + spent.len() + unspent.len(),
                );
                // Undo data first: a bulk range ([`Store::write_prepared_bulk`]) ingests the
                // keyspaces in this order, and a crash after the undo data is discarded with
                // its help. Heights ascend: already sorted.
                for (h, b) in &undo {
                    ops.push(u.undo.put_op(undo_key(chain, *h), b)?);
                }
                let mut tx_ops = Vec::with_capacity(metas.len());
                for (txid, meta) in &metas {
                    tx_ops.push(u.tx.put_op(tx_key(chain, txid), meta)?);
                }
                let mut script_ops: Vec<KeyspaceOp> = scripts
                    .into_iter()
                    .map(|(id, script)| u.scripts.put_encoded_op(id.to_vec(), script))
                    .collect();
                for run in [&mut tx_ops, &mut script_ops] {
                    run.sort_by(|a, b| key_order(&a.key, &b.key));
                }
                ops.append(&mut tx_ops);
                ops.append(&mut script_ops);
                // Removals first, then creations; stable: a removal and a re-creation of one
                // outpoint keep their order.
                let mut utxo_ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = spent
                    .iter()
                    .map(|o| (utxo_key(chain, o), None))
                    .chain(
                        unspent
                            .iter()
                            .map(|(o, p)| (utxo_key(chain, o), Some(utxo_value(p)))),
                    )
                    .collect();
                utxo_ops.sort_by(|a, b| key_order(&a.0, &b.0));
                ops.extend(utxo_ops.into_iter().map(|(k, v)| match v {
                    Some(v) => u.utxo.put_encoded_op(k, v),
                    None => u.utxo.remove_op(k),
                }));
                Ok(ops)
            })();
            let range = range.join().unwrap_or_else(|_| {
                Err(StoreError::Encode("range encoding thread panicked".into()))
            });
            (range, ops)
        });
        // Undo data leaving the reorg window goes with the checkpoint (a discarded bulk
        // range must not have removed it).
        let final_ops = expired_undo
            .iter()
            .map(|h| u.undo.remove_op(undo_key(chain, *h)))
            .collect();
        Ok(range?.with_extra(ops?).with_final(final_ops))
    }
}

impl UtxoStore {
    /// Opens the Bitcoin keyspaces of `store`.
    ///
    /// On a store opened for writing, the UTXO side of a bulk range that a crash interrupted
    /// (the store discarded its transfers when it opened, [`Store::pending_bulk_undo`]) is
    /// undone here from the range's undo data, before anything reads the UTXO set.
    pub fn open(store: &Store) -> Result<Self, StoreError> {
        let u = Self {
            utxo: store.table(UTXO)?,
            undo: store.table(UNDO)?,
            tx: store.table(TX)?,
            scripts: store.table(SCRIPTS)?,
            scripts_seen: std::sync::Arc::default(),
            cache: std::sync::Arc::new(std::sync::Mutex::new(UtxoCache::new(UTXO_CACHE_MAX))),
            bulk_min_transfers: BULK_MIN_TRANSFERS,
            store: store.clone(),
        };
        if !store.is_read_only() {
            for c in store.chains()? {
                if let Some(m) = store.pending_bulk_undo(c.id)? {
                    let ops =
                        u.undo_ops(m.chain, m.first.0, m.last.0, false)
                            .map_err(|e| match e {
                                BtcError::Store(s) => s,
                                other => StoreError::Corrupt {
                                    keyspace: "btc_undo",
                                    key: format!("blocks {}..={}", m.first.0, m.last.0),
                                    reason: other.to_string(),
                                },
                            })?;
                    store.finish_bulk_undo(m, ops)?;
                    tracing::warn!(
                        chain = m.chain.0,
                        first = m.first.0,
                        last = m.last.0,
                        "restored the UTXO set of a bulk range interrupted by a crash"
                    );
                }
            }
        }
        Ok(u)
    }

    /// Writes ranges of at least `n` transfers in bulk ([`Store::write_prepared_bulk`];
    /// default [`BULK_MIN_TRANSFERS`]; `usize::MAX` never, `0` always).
    pub fn with_bulk_min_transfers(mut self, n: usize) -> Self {
        self.bulk_min_transfers = n;
        self
    }

    /// Keeps at most `n` unspent outputs in memory in front of the store (default
    /// [`UTXO_CACHE_MAX`]; `0` none).
    pub fn with_utxo_cache(self, n: usize) -> Self {
        self.cache_lock().max = n;
        self.cache_lock().clear();
        self
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, UtxoCache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets what a failed prepare or commit may have left in the in-memory sets.
    fn forget(&self) {
        self.scripts_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.cache_lock().clear();
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// An unspent output, if indexed.
    pub fn utxo(&self, chain: ChainId, op: &OutPoint) -> Result<Option<Prevout>, BtcError> {
        let k = utxo_key(chain, op);
        Ok(self.utxo.get(&k)?)
    }

    /// Number of unspent outputs of `chain` and their total value (a full scan).
    pub fn utxo_totals(&self, chain: ChainId) -> Result<(u64, u128), BtcError> {
        let (mut n, mut sum) = (0u64, 0u128);
        for kv in self.utxo.prefix(chain.0.to_be_bytes()) {
            let (_, (_, value)) = kv?;
            n += 1;
            sum += u128::from(value);
        }
        Ok((n, sum))
    }

    /// Every unspent output of `chain`, in key order (a full scan; for tests and audits).
    pub fn utxo_set(&self, chain: ChainId) -> Result<Vec<(OutPoint, Prevout)>, BtcError> {
        let mut out = Vec::new();
        for kv in self.utxo.prefix(chain.0.to_be_bytes()) {
            let (k, p) = kv?;
            let txid: Option<[u8; 32]> = k.get(2..34).and_then(|b| b.try_into().ok());
            let vout = k
                .get(34..38)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            match (txid, vout) {
                (Some(t), Some(o)) => out.push(((t, o), p)),
                _ => {
                    return Err(BtcError::Store(StoreError::Corrupt {
                        keyspace: "btc_utxo",
                        key: alloy_primitives::hex::encode(&k),
                        reason: "bad utxo record".into(),
                    }));
                }
            }
        }
        Ok(out)
    }

    /// The metadata of transaction `txid` (internal byte order).
    pub fn tx_meta(&self, chain: ChainId, txid: &[u8; 32]) -> Result<Option<TxMeta>, BtcError> {
        let k = tx_key(chain, txid);
        Ok(self.tx.get(&k)?)
    }

    /// The readable form of an address: the base58/bech32 address of a script id, `coinbase`
    /// or `op_return` for the synthetic ids, else the default (`script:<id>`, `tx:<txid>`, EVM).
    pub fn display(&self, a: &Address) -> String {
        if let Some(n) = synthetic_name(a) {
            return n.to_owned();
        }
        if let Address::Script(id) = a
            && let Ok(Some(s)) = self.scripts.get(id)
        {
            return display(&s);
        }
        a.to_string()
    }

    /// Prevouts of `blocks` that neither the store nor the blocks themselves hold (for a
    /// source that can fetch them).
    pub fn missing(
        &self,
        chain: ChainId,
        blocks: &[DecodedBlock],
        pending: &HashMap<OutPoint, Prevout>,
    ) -> Result<Vec<OutPoint>, BtcError> {
        let mut created = HashSet::new();
        let mut out = Vec::new();
        for b in blocks {
            for t in &b.txs {
                for i in &t.inputs {
                    if !created.contains(i)
                        && !pending.contains_key(i)
                        && self.utxo(chain, i)?.is_none()
                    {
                        out.push(*i);
                    }
                }
                for v in 0..t.outputs.len() {
                    created.insert((t.txid, u32::try_from(v).unwrap_or(u32::MAX)));
                }
            }
        }
        Ok(out)
    }

    /// Converts `blocks` (ascending, contiguous) into transfers and store writes. `fetched`
    /// holds prevouts the source fetched for inputs the store cannot resolve.
    pub fn prepare(
        &self,
        chain: ChainId,
        blocks: &[DecodedBlock],
        fetched: &HashMap<OutPoint, FetchedPrevout>,
    ) -> Result<PreparedBtcRange, BtcError> {
        self.prepare_after(chain, blocks, fetched, &HashMap::new())
    }

    /// [`UtxoStore::prepare`] for the range after one that is still being committed:
    /// `pending` holds the unspent outputs that range creates ([`PreparedBtcRange::created`]);
    /// spending one of them removes it after the previous commit has added it.
    pub fn prepare_after(
        &self,
        chain: ChainId,
        blocks: &[DecodedBlock],
        fetched: &HashMap<OutPoint, FetchedPrevout>,
        pending: &HashMap<OutPoint, Prevout>,
    ) -> Result<PreparedBtcRange, BtcError> {
        let r = self.prepare_inner(chain, blocks, fetched, pending);
        if r.is_err() {
            // The failed range's scripts and outputs were remembered but will not be written.
            self.forget();
        }
        r
    }

    fn prepare_inner(
        &self,
        chain: ChainId,
        blocks: &[DecodedBlock],
        fetched: &HashMap<OutPoint, FetchedPrevout>,
        pending: &HashMap<OutPoint, Prevout>,
    ) -> Result<PreparedBtcRange, BtcError> {
        let mut stats = RangeStats::default();
        let mut overlay: HashMap<OutPoint, Prevout> = HashMap::new();
        // The Bitcoin keyspaces' records, encoded by the commit.
        let mut scripts: Vec<([u8; 32], Vec<u8>)> = Vec::new();
        let mut metas: Vec<([u8; 32], TxMeta)> = Vec::new();
        let mut undos: Vec<(u64, BlockUndo)> = Vec::with_capacity(blocks.len());
        let mut expired_undo: Vec<u64> = Vec::new();
        let mut spent: Vec<OutPoint> = Vec::new();
        let mut scripts_seen = self
            .scripts_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if scripts_seen.len() > SCRIPTS_SEEN_MAX {
            scripts_seen.clear();
        }
        let mut cache = self.cache_lock();
        if let Some(first) = blocks.first()
            && cache.tip.is_some_and(|t| t != first.prev)
        {
            // Not the range after the last one prepared: what the cache holds may not be
            // (or not stay) in the store.
            cache.clear();
        }
        let mut transfers = Vec::with_capacity(
            blocks
                .iter()
                .flat_map(|b| &b.txs)
                .map(|t| t.inputs.len() + t.outputs.len() + 1)
                .sum(),
        );
        metas.reserve(blocks.iter().map(|b| b.txs.len()).sum());
        let mut refs = Vec::with_capacity(blocks.len());
        for b in blocks {
            stats.blocks += 1;
            stats.bytes += u64::try_from(b.size).unwrap_or(u64::MAX);
            let number = BlockNumber(b.height);
            let time = Timestamp(u64::from(b.time));
            refs.push(BlockRef {
                number,
                hash: display_b256(&b.hash),
                parent: display_b256(&b.prev),
                time,
            });
            let mut undo = BlockUndo::default();
            for (ti, t) in b.txs.iter().enumerate() {
                stats.txs += 1;
                let tx_index = u32::try_from(ti).map_err(|_| BtcError::TooLarge {
                    what: format!("block {}", b.height),
                })?;
                let node = Address::Tx(t.txid);
                let tx_hash = TxHash(display_b256(&t.txid));
                let key = |position: u32| TransferKey {
                    chain,
                    block: number,
                    tx_index,
                    kind: TransferKind::Utxo,
                    position,
                };
                let mut meta = TxMeta {
                    block: b.height,
                    tx_index,
                    time: time.0,
                    coinbase: t.coinbase,
                    inputs: u32::try_from(t.inputs.len()).unwrap_or(u32::MAX),
                    outputs: u32::try_from(t.outputs.len()).unwrap_or(u32::MAX),
                    input_value: 0,
                    output_value: 0,
                    fee: None,
                    unresolved: Vec::new(),
                    op_returns: Vec::new(),
                };
                let mut input_sum: u128 = 0;
                for (ii, inp) in t.inputs.iter().enumerate() {
                    stats.inputs += 1;
                    let position = u32::try_from(ii).unwrap_or(u32::MAX);
                    let prev = if let Some(p) = overlay.remove(inp) {
                        stats.resolved_inputs += 1;
                        undo.spent.push((*inp, p));
                        Some(p)
                    } else if let Some(p) =
                        match cache.take(inp).or_else(|| pending.get(inp).copied()) {
                            Some(p) => Some(p),
                            None => self.utxo(chain, inp)?,
                        }
                    {
                        stats.resolved_inputs += 1;
                        spent.push(*inp);
                        undo.spent.push((*inp, p));
                        Some(p)
                    } else if let Some(f) = fetched.get(inp) {
                        stats.fetched_inputs += 1;
                        if scripts_seen.insert(f.id) {
                            scripts.push((f.id, f.script.clone()));
                        }
                        Some((f.id, f.value))
                    } else {
                        None
                    };
                    match prev {
                        Some((id, value)) => {
                            input_sum += u128::from(value);
                            transfers.push(Transfer {
                                key: key(position),
                                time,
                                tx_hash,
                                from: Address::Script(id),
                                to: node,
                                asset: Asset::Native,
                                amount: Amount::from_u64(value),
                                trace_address: Vec::new(),
                            });
                        }
                        None => {
                            stats.unresolved_inputs += 1;
                            meta.unresolved.push((position, inp.0, inp.1));
                        }
                    }
                }
                let output_sum: u128 = t.outputs.iter().map(|o| u128::from(o.value)).sum();
                if t.coinbase && output_sum > 0 {
                    // New coins (subsidy + fees) enter through the synthetic coinbase source,
                    // so the transaction node balances like any other.
                    transfers.push(Transfer {
                        key: key(0),
                        time,
                        tx_hash,
                        from: coinbase_source(),
                        to: node,
                        asset: Asset::Native,
                        amount: Amount::from_raw(alloy_primitives::U256::from(output_sum)),
                        trace_address: Vec::new(),
                    });
                }
                for (vi, o) in t.outputs.iter().enumerate() {
                    stats.outputs += 1;
                    let vout = u32::try_from(vi).map_err(|_| BtcError::TooLarge {
                        what: format!("tx {}", tx_hash),
                    })?;
                    let position =
                        UTXO_OUTPUT_BASE
                            .checked_add(vout)
                            .ok_or_else(|| BtcError::TooLarge {
                                what: format!("tx {}", tx_hash),
                            })?;
                    let to = match (o.kind, o.id) {
                        (ScriptKind::OpReturn, _) | (_, None) => {
                            stats.op_returns += 1;
                            meta.op_returns
                                .push((vout, o.value, o.script.as_bytes().to_vec()));
                            burn_sink()
                        }
                        (_, Some(id)) => {
                            overlay.insert((t.txid, vout), (id, o.value));
                            undo.created.push((t.txid, vout));
                            if scripts_seen.insert(id) {
                                scripts.push((id, o.script.as_bytes().to_vec()));
                            }
                            Address::Script(id)
                        }
                    };
                    if o.value > 0 {
                        transfers.push(Transfer {
                            key: key(position),
                            time,
                            tx_hash,
                            from: node,
                            to,
                            asset: Asset::Native,
                            amount: Amount::from_u64(o.value),
                            trace_address: Vec::new(),
                        });
                    }
                }
                meta.input_value = u64::try_from(input_sum).unwrap_or(u64::MAX);
                meta.output_value = u64::try_from(output_sum).unwrap_or(u64::MAX);
                if !t.coinbase && meta.unresolved.is_empty() {
                    meta.fee = u64::try_from(input_sum.saturating_sub(output_sum)).ok();
                }
                undo.txids.push(t.txid);
                metas.push((t.txid, meta));
            }
            undos.push((b.height, undo));
            if let Some(old) = b.height.checked_sub(REORG_WINDOW) {
                expired_undo.push(old);
            }
        }
        if let Some(last) = blocks.last() {
            cache.add(last.hash, &overlay);
        }
        drop(cache);
        Ok(PreparedBtcRange {
            chain,
            blocks: refs,
            transfers,
            undo: undos,
            metas,
            scripts,
            spent,
            unspent: overlay.iter().map(|(o, p)| (*o, *p)).collect(),
            expired_undo,
            stats,
            created: overlay,
        })
    }

    /// Writes a prepared range (atomically with its checkpoint): [`UtxoStore::encode`], then
    /// [`UtxoStore::write`].
    pub fn commit(&self, p: PreparedBtcRange) -> Result<RangeStats, BtcError> {
        self.write(self.encode(p)?)
    }

    /// Encodes a prepared range for [`UtxoStore::write`] (it needs nothing of the store, so a
    /// sync encodes a range while the previous one is still being written).
    pub fn encode(&self, p: PreparedBtcRange) -> Result<EncodedBtcRange, BtcError> {
        let stats = p.stats;
        match p.encode(self) {
            Ok(range) => Ok(EncodedBtcRange { range, stats }),
            Err(e) => {
                // Its scripts and outputs (and those of a range prepared after it) will not
                // be written.
                self.forget();
                Err(e)
            }
        }
    }

    /// Writes an encoded range (atomically with its checkpoint; ranges of at least the bulk
    /// threshold's transfers are ingested, [`UtxoStore::with_bulk_min_transfers`]).
    pub fn write(&self, e: EncodedBtcRange) -> Result<RangeStats, BtcError> {
        let written = if e.range.len() >= self.bulk_min_transfers {
            self.store.write_prepared_bulk(e.range)
        } else {
            self.store.write_prepared(e.range)
        };
        if let Err(err) = written {
            // Its scripts and outputs (and those of a range prepared after it) may now be
            // missing.
            self.forget();
            return Err(err.into());
        }
        Ok(e.stats)
    }

    /// Removes every block above `to`, restoring the outputs they spent, atomically (derived
    /// data such as balance checkpoints is the pipeline's: see [`UtxoStore::unwind_with`]).
    pub fn unwind(&self, chain: ChainId, to: BlockNumber) -> Result<UnwindStats, BtcError> {
        self.unwind_with(chain, to, Vec::new())
    }

    /// [`UtxoStore::unwind`] plus `extra` writes (the stages' unwind, from
    /// [`crate::stage::Pipeline::unwind_ops`]) in the same atomic batch.
    pub fn unwind_with(
        &self,
        chain: ChainId,
        to: BlockNumber,
        extra: Vec<KeyspaceOp>,
    ) -> Result<UnwindStats, BtcError> {
        let Some(cp) = self.store.checkpoint(chain)? else {
            return Ok(UnwindStats::default());
        };
        self.cache_lock().clear();
        let mut ops = self.undo_ops(chain, to.0.saturating_add(1), cp.number.0, true)?;
        ops.extend(extra);
        Ok(self.store.unwind_with(chain, to, ops)?)
    }

    /// The writes that undo blocks `lo..=hi` from their undo data, newest block first: spent
    /// outputs restored, created ones removed, the blocks' metadata and undo records removed.
    /// A block without undo data is an error when `required`, else skipped (a discarded bulk
    /// range whose undo data was never ingested wrote nothing after it either).
    fn undo_ops(
        &self,
        chain: ChainId,
        lo: u64,
        hi: u64,
        required: bool,
    ) -> Result<Vec<KeyspaceOp>, BtcError> {
        let mut net: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut ops = Vec::new();
        for h in (lo..=hi).rev() {
            let k = undo_key(chain, h);
            let Some(undo) = self.undo.get(&k)? else {
                if required {
                    return Err(BtcError::NoUndo { block: h });
                }
                continue;
            };
            // Newest block first; inside a block, restore spends before removing creations.
            for (o, p) in &undo.spent {
                net.insert(utxo_key(chain, o), Some(utxo_value(p)));
            }
            for o in &undo.created {
                net.insert(utxo_key(chain, o), None);
            }
            for t in &undo.txids {
                ops.push(self.tx.remove_op(tx_key(chain, t)));
            }
            ops.push(self.undo.remove_op(k));
        }
        for (key, value) in net {
            ops.push(match value {
                Some(v) => self.utxo.put_encoded_op(key, v),
                None => self.utxo.remove_op(key),
            });
        }
        Ok(ops)
    }
}

/// Groups the extra writes of a range by keyspace (the order inside a keyspace is by key).
/// Byte order of two keys, deciding on their first 8 bytes as one integer first (random
/// keys: one comparison instead of a `memcmp` call).
fn key_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    crate::store::key_prefix(a)
        .cmp(&crate::store::key_prefix(b))
        .then_with(|| a.cmp(b))
}

/// A transaction from an address-centric source (Esplora) that comes with its prevouts.
#[derive(Clone, Debug)]
pub struct LooseTx {
    /// Txid, internal byte order.
    pub txid: [u8; 32],
    /// Block height.
    pub block: u64,
    /// Index in the block.
    pub tx_index: u32,
    /// Block time.
    pub time: u64,
    /// Whether it is the coinbase.
    pub coinbase: bool,
    /// Inputs: the spent outpoint and, when the source gave it, the prevout.
    pub inputs: Vec<(OutPoint, Option<FetchedPrevout>)>,
    /// Outputs.
    pub outputs: Vec<super::decode::DecodedOutput>,
}

impl UtxoStore {
    /// Writes transactions of scattered blocks (no checkpoint, no UTXO set: the source gives the
    /// prevouts) with their metadata and scripts. Returns the number of new transfers.
    pub fn write_loose(&self, chain: ChainId, txs: &[LooseTx]) -> Result<usize, BtcError> {
        let mut transfers = Vec::new();
        let mut ops = Vec::new();
        let mut seen = HashSet::new();
        let mut script_op = |id: [u8; 32], script: &[u8], ops: &mut Vec<KeyspaceOp>| {
            if seen.insert(id) {
                ops.push(self.scripts.put_encoded_op(id.to_vec(), script.to_vec()));
            }
        };
        for t in txs {
            let node = Address::Tx(t.txid);
            let tx_hash = TxHash(display_b256(&t.txid));
            let time = Timestamp(t.time);
            let key = |position: u32| TransferKey {
                chain,
                block: BlockNumber(t.block),
                tx_index: t.tx_index,
                kind: TransferKind::Utxo,
                position,
            };
            let mk = |position, from, to, amount: Amount| Transfer {
                key: key(position),
                time,
                tx_hash,
                from,
                to,
                asset: Asset::Native,
                amount,
                trace_address: Vec::new(),
            };
            let mut meta = TxMeta {
                block: t.block,
                tx_index: t.tx_index,
                time: t.time,
                coinbase: t.coinbase,
                inputs: u32::try_from(t.inputs.len()).unwrap_or(u32::MAX),
                outputs: u32::try_from(t.outputs.len()).unwrap_or(u32::MAX),
                input_value: 0,
                output_value: 0,
                fee: None,
                unresolved: Vec::new(),
                op_returns: Vec::new(),
            };
            let mut input_sum = 0u128;
            for (i, (op, prev)) in t.inputs.iter().enumerate() {
                let position = u32::try_from(i).unwrap_or(u32::MAX);
                match prev {
                    Some(p) => {
                        script_op(p.id, &p.script, &mut ops);
                        input_sum += u128::from(p.value);
                        transfers.push(mk(
                            position,
                            Address::Script(p.id),
                            node,
                            Amount::from_u64(p.value),
                        ));
                    }
                    None => meta.unresolved.push((position, op.0, op.1)),
                }
            }
            let output_sum: u128 = t.outputs.iter().map(|o| u128::from(o.value)).sum();
            if t.coinbase && output_sum > 0 {
                transfers.push(mk(
                    0,
                    coinbase_source(),
                    node,
                    Amount::from_raw(alloy_primitives::U256::from(output_sum)),
                ));
            }
            for (v, o) in t.outputs.iter().enumerate() {
                let vout = u32::try_from(v).unwrap_or(u32::MAX);
                let to = match o.id {
                    Some(id) if o.kind != ScriptKind::OpReturn => {
                        script_op(id, o.script.as_bytes(), &mut ops);
                        Address::Script(id)
                    }
                    _ => {
                        meta.op_returns
                            .push((vout, o.value, o.script.as_bytes().to_vec()));
                        burn_sink()
                    }
                };
                if o.value > 0 {
                    transfers.push(mk(
                        UTXO_OUTPUT_BASE.saturating_add(vout),
                        node,
                        to,
                        Amount::from_u64(o.value),
                    ));
                }
            }
            meta.input_value = u64::try_from(input_sum).unwrap_or(u64::MAX);
            meta.output_value = u64::try_from(output_sum).unwrap_or(u64::MAX);
            if !t.coinbase && meta.unresolved.is_empty() {
                meta.fee = u64::try_from(input_sum.saturating_sub(output_sum)).ok();
            }
            ops.push(self.tx.put_op(tx_key(chain, &t.txid), &meta)?);
        }
        Ok(self.store.write_sparse(chain, &transfers, ops)?)
    }
}

impl Store {
    /// The canonical output script of Bitcoin script id `id` (an [`Address::Script`] id), when
    /// indexed: the typed read of `btc_scripts` for modules outside the Bitcoin indexer
    /// (clustering).
    pub fn btc_script(&self, id: &[u8; 32]) -> Result<Option<Vec<u8>>, StoreError> {
        self.table(SCRIPTS)?.get(id)
    }
}
