//! A bounded cache of address histories shared by many traces (the payouts of one report, the
//! addresses of a bulk screening).
//!
//! On a real graph many traces reach the same busy addresses, and each trace would read their
//! whole history from the store again. The cache keeps the most recently loaded histories up to
//! a total number of transfers (memory stays bounded: about 250 bytes per cached transfer) and
//! evicts the oldest first; a history larger than a quarter of the capacity is read through.

use crate::FlowSource;
use paytrace_indexer::{Address, BlockNumber, ChainId, Direction, Transfer, TransferKey, TxHash};
use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap, VecDeque},
    rc::Rc,
};

type Key = (Address, bool, Option<ChainId>);

struct Inner {
    map: HashMap<Key, Rc<Vec<Transfer>>>,
    order: VecDeque<Key>,
    held: usize,
    hits: u64,
    misses: u64,
}

/// A [`FlowSource`] that caches `address_transfers` of `S`, holding at most `capacity`
/// transfers (`S` may be a reference: `&Store` is a `FlowSource`).
pub struct CachedSource<S> {
    src: S,
    capacity: usize,
    inner: RefCell<Inner>,
}

impl<S: FlowSource> CachedSource<S> {
    /// Caches up to `capacity` transfers of `src`.
    pub fn new(src: S, capacity: usize) -> Self {
        Self {
            src,
            capacity,
            inner: RefCell::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
                held: 0,
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// (hits, misses) of address look-ups.
    pub fn stats(&self) -> (u64, u64) {
        let i = self.inner.borrow();
        (i.hits, i.misses)
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
        let hit = self.inner.borrow().map.get(&key).cloned();
        if let Some(v) = hit {
            self.inner.borrow_mut().hits += 1;
            return Ok(v.as_ref().clone());
        }
        let v = self.src.address_transfers(address, dir, chain)?;
        let mut i = self.inner.borrow_mut();
        i.misses += 1;
        if v.len() <= self.capacity / 4 {
            while i.held + v.len() > self.capacity {
                let Some(old) = i.order.pop_front() else {
                    break;
                };
                if let Some(o) = i.map.remove(&old) {
                    i.held = i.held.saturating_sub(o.len());
                }
            }
            i.held += v.len();
            i.order.push_back(key);
            i.map.insert(key, Rc::new(v.clone()));
        }
        Ok(v)
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
        self.src.checkpoints()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::MemoryGraph;
    use paytrace_indexer::{Amount, Asset, Timestamp, TransferKind};

    #[test]
    fn caches_and_evicts_within_capacity() {
        let a = Address::Evm([1; 20]);
        let ts = (0..10u64).map(|i| Transfer {
            key: TransferKey {
                chain: ChainId(0),
                block: BlockNumber(i),
                tx_index: 0,
                kind: TransferKind::Native,
                position: 0,
            },
            time: Timestamp(i),
            tx_hash: TxHash::default(),
            from: a,
            to: Address::Evm([u8::try_from(i).unwrap() + 2; 20]),
            asset: Asset::Native,
            amount: Amount::from_u64(1),
            trace_address: Vec::new(),
        });
        let g = MemoryGraph::from_transfers(ts);
        let c = CachedSource::new(&g, 40);
        let x = c.address_transfers(&a, Direction::Outgoing, None).unwrap();
        let y = c.address_transfers(&a, Direction::Outgoing, None).unwrap();
        assert_eq!(x.len(), 10);
        assert_eq!(x.len(), y.len());
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
        assert!(small.inner.borrow().held <= 20);
    }
}
