//! What the clustering engine reads: the transfers of a block range, and the history of one
//! address. Implemented by the store and by [`MemoryTransfers`] (tests).

use paytrace_indexer::{Address, BlockNumber, ChainId, Direction, Store, StoreError, Transfer};
use std::convert::Infallible;

/// Read access to indexed transfers for clustering.
pub trait ClusterSource {
    /// The error of the underlying storage.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The transfers of `chain` in blocks `from..=to`, in canonical order.
    fn range(
        &self,
        chain: ChainId,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Transfer>, Self::Error>;

    /// The first `limit` transfers into (or out of) `address` on `chain`, in canonical order.
    fn history(
        &self,
        address: &Address,
        dir: Direction,
        chain: ChainId,
        limit: usize,
    ) -> Result<Vec<Transfer>, Self::Error>;

    /// The output script of a Bitcoin-style `address` (an [`Address::Script`] id), when the
    /// source knows it; `None` by default.
    fn script(&self, address: &Address) -> Result<Option<Vec<u8>>, Self::Error> {
        let _ = address;
        Ok(None)
    }
}

impl ClusterSource for Store {
    type Error = StoreError;

    fn range(
        &self,
        chain: ChainId,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Transfer>, StoreError> {
        self.range_transfers(chain, from, to).collect()
    }

    fn history(
        &self,
        address: &Address,
        dir: Direction,
        chain: ChainId,
        limit: usize,
    ) -> Result<Vec<Transfer>, StoreError> {
        self.address_transfers(address, dir, Some(chain))
            .take(limit)
            .collect()
    }

    fn script(&self, address: &Address) -> Result<Option<Vec<u8>>, StoreError> {
        let Address::Script(id) = address else {
            return Ok(None);
        };
        self.btc_script(id)
    }
}

/// Transfers held in memory (tests, fixtures), kept in canonical order.
#[derive(Clone, Debug, Default)]
pub struct MemoryTransfers {
    transfers: Vec<Transfer>,
}

impl MemoryTransfers {
    /// From any transfers (sorted here).
    pub fn new(mut transfers: Vec<Transfer>) -> Self {
        transfers.sort_by_key(|t| t.key);
        Self { transfers }
    }

    /// Adds transfers.
    pub fn extend(&mut self, more: impl IntoIterator<Item = Transfer>) {
        self.transfers.extend(more);
        self.transfers.sort_by_key(|t| t.key);
    }

    /// The highest block of `chain`.
    pub fn head(&self, chain: ChainId) -> Option<BlockNumber> {
        self.transfers
            .iter()
            .filter(|t| t.key.chain == chain)
            .map(|t| t.key.block)
            .max()
    }
}

impl ClusterSource for MemoryTransfers {
    type Error = Infallible;

    fn range(
        &self,
        chain: ChainId,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Transfer>, Infallible> {
        Ok(self
            .transfers
            .iter()
            .filter(|t| t.key.chain == chain && t.key.block >= from && t.key.block <= to)
            .cloned()
            .collect())
    }

    fn history(
        &self,
        address: &Address,
        dir: Direction,
        chain: ChainId,
        limit: usize,
    ) -> Result<Vec<Transfer>, Infallible> {
        Ok(self
            .transfers
            .iter()
            .filter(|t| {
                t.key.chain == chain
                    && match dir {
                        Direction::Incoming => t.to == *address,
                        Direction::Outgoing => t.from == *address,
                    }
            })
            .take(limit)
            .cloned()
            .collect())
    }
}

impl<S: ClusterSource + ?Sized> ClusterSource for &S {
    type Error = S::Error;

    fn range(
        &self,
        chain: ChainId,
        from: BlockNumber,
        to: BlockNumber,
    ) -> Result<Vec<Transfer>, S::Error> {
        (**self).range(chain, from, to)
    }

    fn history(
        &self,
        address: &Address,
        dir: Direction,
        chain: ChainId,
        limit: usize,
    ) -> Result<Vec<Transfer>, S::Error> {
        (**self).history(address, dir, chain, limit)
    }
}
