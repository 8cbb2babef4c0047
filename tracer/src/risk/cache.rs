//! A caching [`FlowSource`] for bulk screening: address histories read once are kept in memory
//! (up to a budget of transfers), so the mid-degree addresses that many screenings' traces pass
//! through are read from the store once.

use crate::source::FlowSource;
use paytrace_indexer::{Address, BlockNumber, ChainId, Direction, Transfer, TransferKey, TxHash};
use std::{
    cell::{Cell, RefCell},
    collections::{BTreeMap, HashMap},
    rc::Rc,
};

type Key = (Address, bool, Option<ChainId>);

/// Wraps a [`FlowSource`] and caches `address_transfers` results. When more than `budget`
/// transfers are cached the whole cache is dropped (cheap and bounded; hot entries come back at
/// once).
pub struct CachedSource<S> {
    inner: S,
    cache: RefCell<HashMap<Key, Rc<Vec<Transfer>>>>,
    held: Cell<usize>,
    budget: usize,
    hits: Cell<u64>,
    misses: Cell<u64>,
}

impl<S: FlowSource> CachedSource<S> {
    /// Caches at most `budget` transfers (about 200 bytes each).
    pub fn new(inner: S, budget: usize) -> Self {
        Self {
            inner,
            cache: RefCell::new(HashMap::new()),
            held: Cell::new(0),
            budget,
            hits: Cell::new(0),
            misses: Cell::new(0),
        }
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.get(), self.misses.get())
    }
}

impl<S: FlowSource> FlowSource for CachedSource<S> {
    type Error = S::Error;

    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, S::Error> {
        let key = (*address, dir == Direction::Incoming, chain);
        if let Some(v) = self.cache.borrow().get(&key) {
            self.hits.set(self.hits.get() + 1);
            return Ok(v.as_ref().clone());
        }
        self.misses.set(self.misses.get() + 1);
        let v = self.inner.address_transfers(address, dir, chain)?;
        if v.len() <= self.budget {
            if self.held.get() + v.len() > self.budget {
                self.cache.borrow_mut().clear();
                self.held.set(0);
            }
            self.held.set(self.held.get() + v.len());
            self.cache.borrow_mut().insert(key, Rc::new(v.clone()));
        }
        Ok(v)
    }

    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, S::Error> {
        self.inner.transfer(key)
    }

    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, S::Error> {
        self.inner.tx_transfers(tx, chain, block)
    }

    fn checkpoints(&self) -> Result<BTreeMap<ChainId, BlockNumber>, S::Error> {
        self.inner.checkpoints()
    }
}
