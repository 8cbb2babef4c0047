//! A bounded cache of address histories shared by many traces (the payouts of one report, the
//! addresses of a bulk screening), safe to share between threads.
//!
//! On a real graph many traces reach the same busy addresses, and each trace would read their
//! whole history from the store again. The cache keeps the most recently *used* histories up to
//! a total number of transfers (memory stays bounded: about 250 bytes per cached transfer) and
//! evicts the least recently used first; a history larger than a quarter of the capacity (or
//! of one shard) is read through. It is split into shards, each behind its own lock, so that
//! the threads of a parallel screening or report share one cache without queueing on one lock;
//! an address always maps to the same shard.

use crate::FlowSource;
use paytrace_indexer::{Address, BlockNumber, ChainId, Direction, Transfer, TransferKey, TxHash};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    hash::{BuildHasher, RandomState},
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

type Key = (Address, bool, Option<ChainId>);

/// A cached history and the tick of its last use.
struct Slot {
    v: Arc<Vec<Transfer>>,
    tick: u64,
}

/// One shard: a map and a use-ordered queue. The queue holds one entry per use; an entry whose
/// tick is no longer the slot's is stale and skipped (compacted when the queue grows).
#[derive(Default)]
struct Shard {
    map: HashMap<Key, Slot>,
    order: VecDeque<(Key, u64)>,
    held: usize,
    tick: u64,
}

impl Shard {
    fn get(&mut self, key: &Key) -> Option<Arc<Vec<Transfer>>> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.map.get_mut(key)?;
        slot.tick = tick;
        let v = Arc::clone(&slot.v);
        self.order.push_back((*key, tick));
        if self.order.len() > 2 * self.map.len() + 64 {
            self.compact();
        }
        Some(v)
    }

    /// Rebuilds the queue with one entry per cached key, least recently used first.
    fn compact(&mut self) {
        let mut live: Vec<(u64, Key)> = self.map.iter().map(|(k, s)| (s.tick, *k)).collect();
        live.sort_unstable_by_key(|x| x.0);
        self.order = live.into_iter().map(|(t, k)| (k, t)).collect();
    }

    fn insert(&mut self, key: Key, v: Arc<Vec<Transfer>>, capacity: usize) {
        if self.map.contains_key(&key) {
            return;
        }
        while self.held + v.len() > capacity {
            let Some((old, tick)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|s| s.tick == tick)
                && let Some(o) = self.map.remove(&old)
            {
                self.held = self.held.saturating_sub(o.v.len());
            }
        }
        self.tick += 1;
        self.held += v.len();
        self.order.push_back((key, self.tick));
        self.map.insert(key, Slot { v, tick: self.tick });
    }
}

/// Shards of caches of at least this many transfers (smaller caches have one shard).
const SHARD_MIN: usize = 1 << 16;
/// At most this many shards.
const SHARDS: usize = 16;

/// A [`FlowSource`] that caches `address_transfers` of `S`, holding at most `capacity`
/// transfers, least recently used evicted first (`S` may be a reference: `&Store` is a
/// `FlowSource`). It is `Sync` when `S` is: one cache can serve the threads of a parallel
/// screening or report. The checkpoints are read once.
pub struct CachedSource<S> {
    src: S,
    /// Transfers per shard.
    shard_capacity: usize,
    /// Largest history cached.
    max_entry: usize,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
    checkpoints: OnceLock<BTreeMap<ChainId, BlockNumber>>,
}

impl<S: FlowSource> CachedSource<S> {
    /// Caches up to `capacity` transfers of `src`.
    pub fn new(src: S, capacity: usize) -> Self {
        let n = (capacity / SHARD_MIN).clamp(1, SHARDS);
        let shard_capacity = capacity / n;
        Self {
            src,
            shard_capacity,
            max_entry: (capacity / 4).min(shard_capacity),
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            checkpoints: OnceLock::new(),
        }
    }

    /// (hits, misses) of address look-ups.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Transfers held now.
    pub fn held(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).held)
            .sum()
    }

    fn shard(&self, key: &Key) -> &Mutex<Shard> {
        let h = self.hasher.hash_one(key);
        // The modulus is below `SHARDS`: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let i = (h % self.shards.len() as u64) as usize;
        &self.shards[i]
    }
}

impl<S: FlowSource> FlowSource for CachedSource<S> {
    type Error = S::Error;

    fn history_window(&self) -> crate::source::HistoryWindow {
        self.src.history_window()
    }

    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, S::Error> {
        let key = (*address, dir == Direction::Incoming, chain);
        let shard = self.shard(&key);
        // A poisoned shard only means another thread panicked while holding it; its contents
        // are still consistent (every update completes before unlocking).
        let hit = shard
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key);
        if let Some(v) = hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v.as_ref().clone());
        }
        let v = self.src.address_transfers(address, dir, chain)?;
        self.misses.fetch_add(1, Ordering::Relaxed);
        if v.len() <= self.max_entry {
            let cached = Arc::new(v.clone());
            shard.lock().unwrap_or_else(PoisonError::into_inner).insert(
                key,
                cached,
                self.shard_capacity,
            );
        }
        Ok(v)
    }

    /// A cached whole history is sliced; otherwise the range is read through (not cached: a
    /// checkpointed replay reads a small part of a history, cheaper than loading all of it).
    fn address_transfers_range(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, S::Error> {
        if from.is_none() && before.is_none() {
            return self.address_transfers(address, dir, chain);
        }
        let key = (*address, dir == Direction::Incoming, chain);
        let hit = self
            .shard(&key)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key);
        if let Some(v) = hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            let lo = from.map_or(0, |f| v.partition_point(|t| t.key < *f));
            let hi = before.map_or(v.len(), |b| v.partition_point(|t| t.key < *b));
            return Ok(v
                .get(lo..hi.max(lo))
                .map(<[Transfer]>::to_vec)
                .unwrap_or_default());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.src
            .address_transfers_range(address, dir, chain, from, before)
    }

    fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<paytrace_indexer::BalanceCheckpoint>, S::Error> {
        self.src.balance_checkpoint(address, chain, before)
    }

    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, S::Error> {
        self.src.transfer(key)
    }

    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, S::Error> {
        self.src.tx_transfers(tx, chain, block)
    }

    fn checkpoints(&self) -> Result<BTreeMap<ChainId, BlockNumber>, S::Error> {
        if let Some(c) = self.checkpoints.get() {
            return Ok(c.clone());
        }
        let c = self.src.checkpoints()?;
        Ok(self.checkpoints.get_or_init(|| c).clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::MemoryGraph;
    use paytrace_indexer::{Amount, Asset, Timestamp, TransferKind};

    fn t(from: u8, to: u8, i: u64) -> Transfer {
        Transfer {
            key: TransferKey {
                chain: ChainId(0),
                block: BlockNumber(i),
                tx_index: 0,
                kind: TransferKind::Native,
                position: 0,
            },
            time: Timestamp(i),
            tx_hash: TxHash::default(),
            from: Address::Evm([from; 20]),
            to: Address::Evm([to; 20]),
            asset: Asset::Native,
            amount: Amount::from_u64(1),
            trace_address: Vec::new(),
        }
    }

    #[test]
    fn caches_and_evicts_within_capacity() {
        let a = Address::Evm([1; 20]);
        let ts = (0..10u64).map(|i| t(1, u8::try_from(i).unwrap() + 2, i));
        let g = MemoryGraph::from_transfers(ts);
        let c = CachedSource::new(&g, 40);
        let x = c.address_transfers(&a, Direction::Outgoing, None).unwrap();
        let y = c.address_transfers(&a, Direction::Outgoing, None).unwrap();
        assert_eq!(x.len(), 10);
        assert_eq!(x, y);
        assert_eq!(c.stats(), (1, 1));
        // Too big for a quarter of the capacity: read through, not cached.
        let small = CachedSource::new(&g, 20);
        small
            .address_transfers(&a, Direction::Outgoing, None)
            .unwrap();
        small
            .address_transfers(&a, Direction::Outgoing, None)
            .unwrap();
        assert_eq!(small.stats(), (0, 2));
        assert!(small.held() <= 20);
    }

    #[test]
    fn evicts_the_least_recently_used() {
        // Addresses 1..=5 send 4 transfers each; the cache holds 16 (four histories).
        let ts = (1..=5u8).flat_map(|a| (0..4u64).map(move |i| t(a, 9, u64::from(a) * 10 + i)));
        let g = MemoryGraph::from_transfers(ts);
        let c = CachedSource::new(&g, 16);
        let get = |a: u8| {
            c.address_transfers(&Address::Evm([a; 20]), Direction::Outgoing, None)
                .unwrap()
        };
        for a in 1..=4 {
            get(a);
        }
        get(1); // hit: 1 is now the most recently used, 2 the least
        get(5); // evicts 2, not 1
        assert_eq!(c.stats(), (1, 5));
        get(1);
        get(3);
        assert_eq!(c.stats(), (3, 5));
        get(2);
        assert_eq!(c.stats(), (3, 6));
        assert!(c.held() <= 16);
    }

    #[test]
    fn shared_between_threads() {
        let ts = (1..=50u8).flat_map(|a| (0..20u64).map(move |i| t(a, 99, u64::from(a) * 100 + i)));
        let g = MemoryGraph::from_transfers(ts);
        let c = CachedSource::new(&g, 1 << 20);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for a in 1..=50u8 {
                        let v = c
                            .address_transfers(&Address::Evm([a; 20]), Direction::Outgoing, None)
                            .unwrap();
                        assert_eq!(v.len(), 20);
                    }
                });
            }
        });
        let (hits, misses) = c.stats();
        assert_eq!(hits + misses, 200);
        assert!(misses >= 50);
        assert_eq!(c.held(), 1_000);
        assert_eq!(c.checkpoints().unwrap(), g.checkpoints().unwrap());
    }
}
