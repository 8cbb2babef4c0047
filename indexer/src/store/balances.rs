//! Balance checkpoints: a stage over the address indexes that records, every
//! [`BALANCE_INTERVAL`] history entries of an (address, chain), the replayed balances just
//! before a canonical position, so that a trace resumes an address's replay there instead of
//! at the first transfer (issues #7 and #5).
//!
//! Layout (keyspace `balances`, created empty when absent: an absent or empty keyspace means
//! "no checkpoints", so a store indexed before this stage needs no migration):
//!
//! | key                                   | value                                          |
//! |---------------------------------------|------------------------------------------------|
//! | address key + [`TransferKey`] bytes   | flags u8 (bit 0: clamped before), LEB128 entries before, LEB128 max time, LEB128 count, then per asset: `0` or `1` + token address key, amount length byte + big-endian bytes |
//!
//! The per-chain progress (the block up to which every checkpoint is complete) is in `meta`
//! under `balances_progress` + chain u16. A checkpoint at `P` is only used when `P`'s block is
//! at or below its chain's progress.
//!
//! The replay is the one the tracer does before any tainted arrival: transfers of the
//! (address, chain) in canonical order, a self-transfer once (debit, then credit), per asset a
//! clamped balance (a debit beyond the balance empties it and marks "clamped"). Before any
//! tainted arrival all value is clean, so under every taint model one clean balance per asset
//! is the whole state. Transaction nodes (`Address::Tx`) get no checkpoints: their index
//! entries are partial since schema version 3, and their histories are a few transfers.

use super::{Store, StoreError, chain_end_key, flow, hex};
use crate::model::{
    Address, Amount, Asset, BlockNumber, ChainId, Timestamp, Transfer, TransferKey,
};
use crate::store::Direction;
use std::collections::{BTreeMap, BTreeSet};

/// History entries of an (address, chain) between two checkpoints.
pub const BALANCE_INTERVAL: u64 = 64;

/// Checkpoints written per batch by the builder.
const BATCH_ROWS: usize = 50_000;

const PROGRESS_KEY: &[u8] = b"balances_progress";

/// The replayed state of an address's history on one chain just before position `at`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BalanceCheckpoint {
    /// The position: the state covers every transfer of the (address, chain) strictly before it.
    pub at: TransferKey,
    /// How many history entries (a self-transfer counts once) precede `at`.
    pub entries: u64,
    /// Whether a debit exceeded the known balance before `at` ("incomplete history").
    pub clamped: bool,
    /// The latest transfer time before `at` (a trace with an earlier `until` cannot use it).
    pub max_time: Timestamp,
    /// The non-zero balances per asset, sorted by asset.
    pub balances: Vec<(Asset, Amount)>,
}

/// What a build or an update of the balance stage did.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, serde::Serialize)]
pub struct BalanceStats {
    /// (address, chain) histories replayed.
    pub addresses: u64,
    /// History entries read.
    pub entries: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Checkpoints removed (a rebuild of a chain clears it first).
    pub removed: u64,
    /// Bytes of keys and values written.
    pub bytes: u64,
}

/// The clamped replay of one (address, chain) history.
#[derive(Clone, Debug, Default)]
struct Replay {
    entries: u64,
    clamped: bool,
    max_time: Timestamp,
    balances: BTreeMap<Asset, Amount>,
    /// A balance overflowed 256 bits: no checkpoint from here on.
    broken: bool,
}

impl Replay {
    fn from_checkpoint(cp: &BalanceCheckpoint) -> Self {
        Self {
            entries: cp.entries,
            clamped: cp.clamped,
            max_time: cp.max_time,
            balances: cp.balances.iter().copied().collect(),
            broken: false,
        }
    }

    /// Applies one history entry of `own`.
    fn apply(&mut self, own: &Address, t: &Transfer) {
        self.entries += 1;
        self.max_time = self.max_time.max(t.time);
        if t.from == *own {
            let b = self.balances.entry(t.asset).or_default();
            if t.amount > *b {
                self.clamped = true;
            }
            *b = b.saturating_sub(t.amount);
        }
        if t.to == *own {
            let b = self.balances.entry(t.asset).or_default();
            match b.checked_add(t.amount) {
                Ok(v) => *b = v,
                Err(_) => self.broken = true,
            }
        }
        if self.balances.get(&t.asset).is_some_and(Amount::is_zero) {
            self.balances.remove(&t.asset);
        }
    }

    fn checkpoint(&self, at: TransferKey) -> BalanceCheckpoint {
        BalanceCheckpoint {
            at,
            entries: self.entries,
            clamped: self.clamped,
            max_time: self.max_time,
            balances: self.balances.iter().map(|(a, v)| (*a, *v)).collect(),
        }
    }
}

fn encode_checkpoint(cp: &BalanceCheckpoint) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + cp.balances.len() * 40);
    out.push(u8::from(cp.clamped));
    flow::put_varint(&mut out, cp.entries);
    flow::put_varint(&mut out, cp.max_time.0);
    flow::put_varint(&mut out, u64::try_from(cp.balances.len()).unwrap_or(0));
    for (asset, amount) in &cp.balances {
        match asset {
            Asset::Native => out.push(0),
            Asset::Token(a) => {
                out.push(1);
                a.write_key(&mut out);
            }
        }
        let raw: [u8; 32] = amount.raw().to_be_bytes();
        let first = raw.iter().position(|&x| x != 0).unwrap_or(32);
        out.push(u8::try_from(32 - first).unwrap_or(32));
        out.extend_from_slice(&raw[first..]);
    }
    out
}

fn decode_checkpoint(at: TransferKey, v: &[u8]) -> Option<BalanceCheckpoint> {
    let mut r = flow::Reader { b: v };
    let flags = r.byte()?;
    let entries = r.varint()?;
    let max_time = Timestamp(r.varint()?);
    let n = usize::try_from(r.varint()?).ok()?;
    let mut balances = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let asset = match r.byte()? {
            0 => Asset::Native,
            1 => Asset::Token(r.address()?),
            _ => return None,
        };
        let len = usize::from(r.byte()?);
        balances.push((asset, Amount::from_be_slice(r.take(len)?)?));
    }
    if !r.b.is_empty() || flags > 1 {
        return None;
    }
    Some(BalanceCheckpoint {
        at,
        entries,
        clamped: flags == 1,
        max_time,
        balances,
    })
}

fn progress_key(chain: ChainId) -> Vec<u8> {
    let mut k = PROGRESS_KEY.to_vec();
    k.extend_from_slice(&chain.0.to_be_bytes());
    k
}

/// `address key + chain` and the first key past that chain's entries of the address.
fn chain_bounds(address: &Address, chain: ChainId) -> (Vec<u8>, Vec<u8>) {
    let mut lo = Vec::with_capacity(address.key_len() + 2);
    address.write_key(&mut lo);
    let mut hi = lo.clone();
    lo.extend_from_slice(&chain.0.to_be_bytes());
    hi.extend_from_slice(&chain_end_key(chain));
    (lo, hi)
}

fn at_key(address: &Address, at: &TransferKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(address.key_len() + TransferKey::LEN);
    address.write_key(&mut k);
    k.extend_from_slice(&at.to_bytes());
    k
}

/// What readers need to know about the stage, cached per store (see `Store::balances_view`).
#[derive(Clone, Debug, Default)]
pub(super) struct BalancesView {
    progress: BTreeMap<ChainId, BlockNumber>,
    min_chain: Option<ChainId>,
}

impl Store {
    fn view(&self) -> Result<BalancesView, StoreError> {
        if let Some(v) = self
            .balances_view
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            return Ok(v.clone());
        }
        let chains = self.chains()?;
        let mut v = BalancesView {
            min_chain: chains.iter().map(|c| c.id).min(),
            ..BalancesView::default()
        };
        for c in chains {
            if let Some(p) = self.balances_progress(c.id)? {
                v.progress.insert(c.id, p);
            }
        }
        *self
            .balances_view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v.clone());
        Ok(v)
    }

    /// Compacts the address indexes (`addr_in`, `addr_out`) into one sorted run each and
    /// returns their table counts before and after. After a bulk load the storage engine leaves
    /// level-0 tables that no later write compacts, and a history read (a range scan, which
    /// bloom filters cannot skip) searches every one of them: on the 10M bench store this
    /// halved a trace's CPU time (docs/benchmarks.md). Rewrites both indexes: minutes per
    /// hundred million transfers.
    pub fn compact_address_indexes(&self) -> Result<(usize, usize), StoreError> {
        let mut before = 0;
        let mut after = 0;
        for ks in [&self.addr_in, &self.addr_out] {
            before += ks.table_count();
            ks.major_compact()
                .map_err(|e| self.io("compact address index", e))?;
            after += ks.table_count();
        }
        Ok((before, after))
    }

    /// Forgets the cached progress (after a write that may change it).
    pub(super) fn reset_balances_view(&self) {
        *self
            .balances_view
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// The block up to which the balance checkpoints of `chain` are complete (`None`: the stage
    /// never ran on it).
    pub fn balances_progress(&self, chain: ChainId) -> Result<Option<BlockNumber>, StoreError> {
        let Some(v) = self
            .meta
            .get(progress_key(chain))
            .map_err(|e| self.io("read balances progress", e))?
        else {
            return Ok(None);
        };
        match <[u8; 8]>::try_from(v.as_ref()) {
            Ok(b) => Ok(Some(BlockNumber(u64::from_be_bytes(b)))),
            Err(_) => Err(StoreError::Corrupt {
                keyspace: "meta",
                key: format!("balances_progress/{}", chain.0),
                reason: format!("expected 8 bytes, found {}", v.len()),
            }),
        }
    }

    /// The latest balance checkpoint of `address` at or before `before` on `before`'s chain,
    /// within the stage's progress, as seen by a trace restricted to `chain` (`None`: every
    /// chain). With `chain` `None` an address that also has transfers on an earlier chain gets
    /// none (its replay would include them); with `chain` another chain than `before`'s, none.
    pub fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<BalanceCheckpoint>, StoreError> {
        if address.is_tx() || chain.is_some_and(|c| c != before.chain) {
            return Ok(None);
        }
        let view = self.view()?;
        let Some(&progress) = view.progress.get(&before.chain) else {
            return Ok(None);
        };
        let (lo, _) = chain_bounds(address, before.chain);
        let hi = at_key(address, before);
        let skip = address.key_len();
        let mut found = None;
        for kv in self.balances.range(lo..=hi).rev() {
            let (k, v) = kv
                .into_inner()
                .map_err(|e| self.io("read balance checkpoint", e))?;
            let at = k
                .get(skip..)
                .and_then(TransferKey::from_bytes)
                .ok_or_else(|| StoreError::Corrupt {
                    keyspace: "balances",
                    key: hex(&k),
                    reason: "bad transfer key".into(),
                })?;
            if at.block > progress {
                continue;
            }
            found = Some(
                decode_checkpoint(at, &v).ok_or_else(|| StoreError::Corrupt {
                    keyspace: "balances",
                    key: hex(&k),
                    reason: "bad checkpoint value".into(),
                })?,
            );
            break;
        }
        if found.is_some() && chain.is_none() && view.min_chain.is_some_and(|m| m < before.chain) {
            // Transfers on an earlier chain precede `at` in an all-chain replay.
            let mut a = Vec::with_capacity(address.key_len() + 2);
            address.write_key(&mut a);
            let mut b = a.clone();
            b.extend_from_slice(&before.chain.0.to_be_bytes());
            for ks in [&self.addr_in, &self.addr_out] {
                if ks.range(a.clone()..b.clone()).next().is_some() {
                    return Ok(None);
                }
            }
        }
        Ok(found)
    }

    /// The transfers into (or out of) `address` with keys in `from..before` (either bound
    /// open when `None`), on every chain or on `chain`, in canonical order: one range scan of
    /// the covering index.
    pub fn address_transfers_range(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, StoreError> {
        let inside = |k: &TransferKey| {
            from.is_none_or(|f| k >= f)
                && before.is_none_or(|b| k < b)
                && chain.is_none_or(|c| k.chain == c)
        };
        if address.is_tx() {
            let mut v: Vec<Transfer> = self
                .address_transfers(address, dir, chain)
                .collect::<Result<_, _>>()?;
            v.retain(|t| inside(&t.key));
            v.sort_by_key(|t| t.key);
            return Ok(v);
        }
        let (ks, outgoing) = match dir {
            Direction::Incoming => (&self.addr_in, false),
            Direction::Outgoing => (&self.addr_out, true),
        };
        let mut prefix = Vec::with_capacity(address.key_len() + 2);
        address.write_key(&mut prefix);
        let lo = match (from, chain) {
            (Some(f), Some(c)) if f.chain == c => at_key(address, f),
            (Some(f), None) => at_key(address, f),
            (_, Some(c)) => chain_bounds(address, c).0,
            (None, None) => prefix.clone(),
        };
        let hi = match (before, chain) {
            (Some(b), Some(c)) if b.chain == c => at_key(address, b),
            (Some(b), None) => at_key(address, b),
            (_, Some(c)) => chain_bounds(address, c).1,
            (None, None) => {
                let mut h = prefix.clone();
                h.extend_from_slice(&[0xff; TransferKey::LEN + 1]);
                h
            }
        };
        let skip = address.key_len();
        let mut out = Vec::new();
        if lo >= hi {
            return Ok(out);
        }
        for kv in ks.range(lo..hi) {
            let (k, v) = kv
                .into_inner()
                .map_err(|e| self.io("scan address index", e))?;
            let t = k
                .get(skip..)
                .and_then(TransferKey::from_bytes)
                .and_then(|key| flow::decode(*address, key, outgoing, &v))
                .ok_or_else(|| StoreError::Corrupt {
                    keyspace: "address index",
                    key: hex(&k),
                    reason: "bad transfer key or covering value".into(),
                })?;
            if inside(&t.key) {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Builds the balance checkpoints of `chain` (every chain when `None`) from scratch: clears
    /// that chain's checkpoints, scans both address indexes once in key order, and sets the
    /// progress to the chain's indexed checkpoint. `interval` is the number of history entries
    /// between checkpoints (at least 1).
    pub fn build_balances(
        &self,
        chain: Option<ChainId>,
        interval: u64,
    ) -> Result<BalanceStats, StoreError> {
        self.build_balances_with_progress(chain, interval, &mut |_| {})
    }

    /// [`Store::build_balances`], calling `scanned` with the number of address index entries
    /// read so far (every 65,536 entries and at the end; both indexes together hold about two
    /// entries per transfer), so a caller can show progress.
    pub fn build_balances_with_progress(
        &self,
        chain: Option<ChainId>,
        interval: u64,
        scanned: &mut dyn FnMut(u64),
    ) -> Result<BalanceStats, StoreError> {
        let interval = interval.max(1);
        let mut read: u64 = 0;
        let chains: Vec<ChainId> = match chain {
            Some(c) => vec![c],
            None => self.chains()?.into_iter().map(|c| c.id).collect(),
        };
        let mut heights = BTreeMap::new();
        for c in &chains {
            heights.insert(*c, self.checkpoint(*c)?.map(|b| b.number));
        }
        let mut stats = BalanceStats::default();
        // Clear the chain(s) first: the progress goes away in the same batch, so a crash in
        // the middle leaves "no checkpoints", never stale ones.
        let mut w = Writer::new(self);
        for c in &chains {
            w.batch.remove(&self.meta, progress_key(*c));
        }
        w.flush()?;
        for kv in self.balances.iter() {
            let k = kv.key().map_err(|e| self.io("scan balances", e))?;
            let chain_of = Address::read_key(&k)
                .and_then(|(_, n)| k.get(n..))
                .and_then(TransferKey::from_bytes)
                .map(|t| t.chain);
            if chain_of.is_none_or(|c| heights.contains_key(&c)) {
                w.remove(k.to_vec())?;
                stats.removed += 1;
            }
        }
        w.flush()?;
        let mut group: Option<(Vec<u8>, Address)> = None;
        let mut replay = Replay::default();
        let rows = |ks: &fjall::Keyspace| {
            ks.iter().map(|kv| {
                kv.into_inner().map_err(|e| StoreError::Io {
                    op: "scan address index",
                    source: e,
                })
            })
        };
        let mut outs = rows(&self.addr_out).peekable();
        let mut ins = rows(&self.addr_in).peekable();
        loop {
            // The next entry of the two (address, key)-ordered indexes merged; a key in both (a
            // self-transfer) once.
            let (outgoing, both) = match (outs.peek(), ins.peek()) {
                (None, None) => break,
                (Some(_), None) => (true, false),
                (None, Some(_)) => (false, false),
                (Some(Ok((ko, _))), Some(Ok((ki, _)))) => (ko <= ki, ko == ki),
                // An error: take it from whichever side holds it.
                (Some(Err(_)), _) => (true, false),
                (_, Some(Err(_))) => (false, false),
            };
            if both {
                ins.next();
            }
            let next = if outgoing { outs.next() } else { ins.next() };
            let Some(row) = next else { break };
            let (k, v) = row?;
            read = read.saturating_add(if both { 2 } else { 1 });
            if read % 65_536 < 2 {
                scanned(read);
            }
            let corrupt = || StoreError::Corrupt {
                keyspace: "address index",
                key: hex(&k),
                reason: "bad transfer key or covering value".into(),
            };
            let (own, n) = Address::read_key(&k).ok_or_else(corrupt)?;
            if own.is_tx() {
                continue;
            }
            let key = k
                .get(n..)
                .and_then(TransferKey::from_bytes)
                .ok_or_else(corrupt)?;
            let Some(height) = heights.get(&key.chain) else {
                continue;
            };
            if height.is_none_or(|h| key.block > h) {
                continue;
            }
            let Some(prefix) = k.get(..n + 2) else {
                return Err(corrupt());
            };
            if group.as_ref().is_none_or(|(g, _)| g.as_slice() != prefix) {
                if group.is_some() {
                    stats.addresses += 1;
                }
                group = Some((prefix.to_vec(), own));
                replay = Replay::default();
            }
            let t = flow::decode(own, key, outgoing, &v).ok_or_else(corrupt)?;
            if replay.entries > 0 && replay.entries % interval == 0 && !replay.broken {
                w.put(&own, &replay.checkpoint(key), &mut stats)?;
            }
            replay.apply(&own, &t);
            stats.entries += 1;
        }
        if group.is_some() {
            stats.addresses += 1;
        }
        scanned(read);
        for (c, h) in heights {
            if let Some(h) = h {
                w.set_progress(c, h);
            }
        }
        w.finish()?;
        Ok(stats)
    }
}

/// Batched checkpoint writes.
struct Writer<'a> {
    store: &'a Store,
    batch: fjall::OwnedWriteBatch,
    pending: usize,
}

impl<'a> Writer<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            store,
            batch: store.db.batch(),
            pending: 0,
        }
    }

    fn put(
        &mut self,
        own: &Address,
        cp: &BalanceCheckpoint,
        stats: &mut BalanceStats,
    ) -> Result<(), StoreError> {
        let k = at_key(own, &cp.at);
        let v = encode_checkpoint(cp);
        stats.checkpoints += 1;
        stats.bytes += u64::try_from(k.len() + v.len()).unwrap_or(0);
        self.batch.insert(&self.store.balances, k, v);
        self.bump()
    }

    fn remove(&mut self, k: Vec<u8>) -> Result<(), StoreError> {
        self.batch.remove(&self.store.balances, k);
        self.bump()
    }

    fn bump(&mut self) -> Result<(), StoreError> {
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        let b = std::mem::replace(&mut self.batch, self.store.db.batch());
        self.pending = 0;
        let r = b.commit().map_err(|e| self.store.io("commit balances", e));
        self.store.reset_balances_view();
        r
    }

    fn set_progress(&mut self, chain: ChainId, h: BlockNumber) {
        self.batch.insert(
            &self.store.meta,
            progress_key(chain),
            h.0.to_be_bytes().to_vec(),
        );
    }

    fn finish(mut self) -> Result<(), StoreError> {
        self.flush()
    }
}

impl Store {
    /// Adds to `batch` the removal of every balance checkpoint of each address at or after
    /// its position (on that position's chain): a sparse write changed its
    /// history there.
    pub(super) fn invalidate_balances(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        stale: &BTreeMap<Address, TransferKey>,
    ) -> Result<(), StoreError> {
        for (a, from) in stale {
            if a.is_tx() {
                continue;
            }
            let lo = at_key(a, from);
            let (_, hi) = chain_bounds(a, from.chain);
            for kv in self.balances.range(lo..hi) {
                let k = kv.key().map_err(|e| self.io("scan balances", e))?;
                batch.remove(&self.balances, k);
            }
        }
        Ok(())
    }

    /// The balance stage's unwind of `chain` to block `to`, as writes for the unwind's atomic
    /// batch ([`Store::unwind_with`]): every checkpoint of each address that the blocks above
    /// `to` touch, from the first of those blocks on, removed, and the stage's progress moved
    /// back to `to` if it is beyond. Read before the unwind (the transfers are still there).
    pub fn balance_unwind_ops(
        &self,
        chain: ChainId,
        to: BlockNumber,
    ) -> Result<Vec<super::KeyspaceOp>, StoreError> {
        let mut ops = Vec::new();
        let Some(start) = to.next() else {
            return Ok(ops);
        };
        let stale_from = TransferKey {
            chain,
            block: start,
            tx_index: 0,
            kind: crate::model::TransferKind::Native,
            position: 0,
        };
        let mut stale: BTreeSet<Address> = BTreeSet::new();
        for t in self.range_transfers(chain, start, BlockNumber(u64::MAX)) {
            let t = t?;
            for a in [t.from, t.to] {
                if !a.is_tx() {
                    stale.insert(a);
                }
            }
        }
        for a in &stale {
            let lo = at_key(a, &stale_from);
            let (_, hi) = chain_bounds(a, chain);
            for kv in self.balances.range(lo..hi) {
                let k = kv.key().map_err(|e| self.io("scan balances", e))?;
                ops.push(super::KeyspaceOp {
                    keyspace: super::TableRef::core(&self.balances, &super::keyspaces::BALANCES),
                    key: k.to_vec(),
                    value: None,
                });
            }
        }
        if self.balances_progress(chain)?.is_some_and(|p| p > to) {
            ops.push(super::KeyspaceOp {
                keyspace: super::TableRef::core(&self.meta, &super::keyspaces::META),
                key: progress_key(chain),
                value: Some(to.0.to_be_bytes().to_vec()),
            });
        }
        Ok(ops)
    }

    /// Brings the balance checkpoints of `chain` up to its indexed checkpoint: a full build
    /// ([`Store::build_balances`]) when the stage never ran on it, otherwise only the
    /// addresses that the blocks after the stage's progress touched, each resumed from its
    /// latest checkpoint.
    pub fn update_balances(
        &self,
        chain: ChainId,
        interval: u64,
    ) -> Result<BalanceStats, StoreError> {
        let interval = interval.max(1);
        let Some(height) = self.checkpoint(chain)?.map(|b| b.number) else {
            return Ok(BalanceStats::default());
        };
        let Some(progress) = self.balances_progress(chain)? else {
            return self.build_balances(Some(chain), interval);
        };
        let mut stats = BalanceStats::default();
        if progress >= height {
            return Ok(stats);
        }
        let mut touched = BTreeSet::new();
        let from = BlockNumber(progress.0.saturating_add(1));
        for t in self.range_transfers(chain, from, height) {
            let t = t?;
            for a in [t.from, t.to] {
                if !a.is_tx() {
                    touched.insert(a);
                }
            }
        }
        let mut w = Writer::new(self);
        for a in touched {
            stats.addresses += 1;
            let last = self.latest_checkpoint(&a, chain)?;
            let mut replay = last
                .as_ref()
                .map(Replay::from_checkpoint)
                .unwrap_or_default();
            let start = last.as_ref().map(|c| c.at);
            let inc = self.address_transfers_range(
                &a,
                Direction::Incoming,
                Some(chain),
                start.as_ref(),
                None,
            )?;
            let out = self.address_transfers_range(
                &a,
                Direction::Outgoing,
                Some(chain),
                start.as_ref(),
                None,
            )?;
            let mut hist: Vec<Transfer> = inc.into_iter().chain(out).collect();
            hist.sort_by_key(|t| t.key);
            hist.dedup_by_key(|t| t.key);
            for t in hist {
                if t.key.block > height {
                    break;
                }
                if start.is_none_or(|s| t.key > s)
                    && replay.entries > 0
                    && replay.entries % interval == 0
                    && !replay.broken
                {
                    w.put(&a, &replay.checkpoint(t.key), &mut stats)?;
                }
                replay.apply(&a, &t);
                stats.entries += 1;
            }
        }
        w.set_progress(chain, height);
        w.finish()?;
        Ok(stats)
    }

    /// The latest balance checkpoint of (`address`, `chain`), whatever the progress.
    fn latest_checkpoint(
        &self,
        address: &Address,
        chain: ChainId,
    ) -> Result<Option<BalanceCheckpoint>, StoreError> {
        let (lo, hi) = chain_bounds(address, chain);
        let skip = address.key_len();
        let Some(kv) = self.balances.range(lo..hi).next_back() else {
            return Ok(None);
        };
        let (k, v) = kv
            .into_inner()
            .map_err(|e| self.io("read balance checkpoint", e))?;
        k.get(skip..)
            .and_then(TransferKey::from_bytes)
            .and_then(|at| decode_checkpoint(at, &v))
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                keyspace: "balances",
                key: hex(&k),
                reason: "bad checkpoint".into(),
            })
    }
}

/// The checkpoints the stage writes for `own`'s history on one chain (`hist`: its transfers on
/// that chain in canonical order, a self-transfer once), every `interval` entries: the same
/// replay as [`Store::build_balances`], for in-memory sources and tests.
pub fn balance_checkpoints<'a>(
    own: &Address,
    hist: impl IntoIterator<Item = &'a Transfer>,
    interval: u64,
) -> Vec<BalanceCheckpoint> {
    let interval = interval.max(1);
    let mut out = Vec::new();
    if own.is_tx() {
        return out;
    }
    let mut replay = Replay::default();
    for t in hist {
        if replay.entries > 0 && replay.entries % interval == 0 && !replay.broken {
            out.push(replay.checkpoint(t.key));
        }
        replay.apply(own, t);
    }
    out
}
