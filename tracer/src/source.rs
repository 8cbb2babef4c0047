//! The small read interface the tracer's algorithms use, with an implementation for the fjall
//! [`Store`] and one for in-memory graphs (tests, benchmarks, fixtures).
//!
//! The algorithms never see the store: they read transfers through [`FlowSource`] and label
//! categories through [`LabelSource`], so the same code runs on a hand-built graph in a unit test
//! and on a store with billions of rows.

use paytrace_indexer::{
    Address, BalanceCheckpoint, BlockNumber, ChainId, Direction, Store, StoreError, Transfer,
    TransferKey, TxHash,
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
};

/// How the forward engine reads the history of an address it follows after the first
/// tainted arrival (see `forward.rs`): in windows of blocks, so that it stops reading once
/// the address holds no taint. Results never depend on it; only the amount read does.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum HistoryWindow {
    /// Windows sized from the address's density (its balance checkpoint before the arrival):
    /// about [`WINDOW_ENTRIES`] entries, doubling; addresses without a checkpoint (short
    /// histories) are read whole.
    Adaptive,
    /// Windows of this many blocks (at least 1) for every address (tests).
    Blocks(u64),
    /// Whole histories (as before windows existed): the default, because the unread rest of
    /// a suspended address is still replayed at the end for its clamp flag, so windows save no
    /// reads yet.
    #[default]
    Off,
}

/// The number of history entries the first adaptive window aims at.
pub const WINDOW_ENTRIES: u64 = 256;

/// Read access to indexed transfers: everything a trace needs.
pub trait FlowSource {
    /// How the forward engine windows history reads (default: whole histories).
    fn history_window(&self) -> HistoryWindow {
        HistoryWindow::Off
    }

    /// The error of the underlying storage.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The transfers into (`Incoming`) or out of (`Outgoing`) `address`, on every chain or on
    /// `chain`, in canonical [`TransferKey`] order.
    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, Self::Error>;

    /// One transfer by key.
    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, Self::Error>;

    /// The transfers of transaction `tx`, in canonical order. `chain` and `block` narrow the
    /// search; without a block an implementation may have to scan.
    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, Self::Error>;

    /// The last indexed block of every chain (recorded in results for reproducibility).
    fn checkpoints(&self) -> Result<BTreeMap<ChainId, BlockNumber>, Self::Error>;

    /// The transfers of [`FlowSource::address_transfers`] with keys in `from..before` (a
    /// bound is open when `None`), in canonical order. The default filters the whole history.
    fn address_transfers_range(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, Self::Error> {
        let mut v = self.address_transfers(address, dir, chain)?;
        v.retain(|t| from.is_none_or(|f| t.key >= *f) && before.is_none_or(|b| t.key < *b));
        Ok(v)
    }

    /// A balance checkpoint of `address` at a position `at <= before`: the clamped replay of
    /// every transfer of its history strictly before `at`, as [`FlowSource::address_transfers`]
    /// with `chain` returns it (every chain when `None`). `None` when there is none (the
    /// default); a trace then replays from the first transfer.
    fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<BalanceCheckpoint>, Self::Error> {
        let _ = (address, chain, before);
        Ok(None)
    }
}

/// The category of a labelled address (`exchange`, `mixer`, `sanctioned`, `swap`, ...), lower
/// case. Kept as a string so that the label module can add categories without a tracer change.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize)]
#[serde(transparent)]
pub struct Category(String);

impl Category {
    /// Builds a category; the name is trimmed and lower-cased.
    pub fn new(name: &str) -> Self {
        Self(name.trim().to_ascii_lowercase())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<paytrace_indexer::labels::Category> for Category {
    /// A label store category (the fixed taxonomy) by its snake_case name.
    fn from(c: paytrace_indexer::labels::Category) -> Self {
        Self(c.as_str().to_owned())
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The categories where a trace stops by default.
pub const DEFAULT_STOP_CATEGORIES: [&str; 5] = [
    "exchange",
    "exchange_deposit",
    "bridge",
    "mixer",
    "sanctioned",
];

/// The categories of swap/DEX addresses through which value crosses assets by default.
pub const DEFAULT_SWAP_CATEGORIES: [&str; 2] = ["defi", "swap"];

/// The set of categories at which value is reported as exited and not followed further.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StopList(BTreeSet<Category>);

impl Default for StopList {
    fn default() -> Self {
        Self(
            DEFAULT_STOP_CATEGORIES
                .iter()
                .map(|c| Category::new(c))
                .collect(),
        )
    }
}

impl StopList {
    /// A stop list of exactly these categories.
    pub fn new<'a>(cats: impl IntoIterator<Item = &'a str>) -> Self {
        Self(cats.into_iter().map(Category::new).collect())
    }

    /// Whether `cat` stops a trace.
    pub fn contains(&self, cat: &Category) -> bool {
        self.0.contains(cat)
    }

    /// The categories, sorted.
    pub fn categories(&self) -> impl Iterator<Item = &Category> {
        self.0.iter()
    }
}

/// Label look-ups the tracer needs. The label store (`paytrace_indexer::labels`) plugs in here;
/// until then callers pass a [`MemoryLabels`].
pub trait LabelSource {
    /// The category of `address`, if it is labelled.
    fn category(&self, address: &Address) -> Option<Category>;

    /// Human-readable labels of `address` (entity names, tags); empty when unlabelled.
    fn labels(&self, address: &Address) -> Vec<String> {
        self.category(address)
            .map(|c| vec![c.as_str().to_owned()])
            .unwrap_or_default()
    }

    /// The version of the label set, recorded in results so a trace can be reproduced.
    fn version(&self) -> Option<String> {
        None
    }

    /// The first label read that failed since the last call, if any. A source that reads
    /// labels from storage answers a failed read as "no label" to the engines above and keeps
    /// the error here; a caller for which a failed read must not pass as unlabelled
    /// (screening) takes it and fails. In-memory sources never fail.
    fn take_failure(&self) -> Option<paytrace_indexer::labels::LabelError> {
        None
    }
}

/// Labels held in memory: a category and optional names per address.
#[derive(Clone, Default, Debug)]
pub struct MemoryLabels {
    map: HashMap<Address, (Category, Vec<String>), foldhash::fast::RandomState>,
    version: Option<String>,
}

impl MemoryLabels {
    /// No labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Labels `address` with `category` (and the category name as its label).
    pub fn insert(&mut self, address: Address, category: &str) {
        let c = Category::new(category);
        let names = vec![c.as_str().to_owned()];
        self.map.insert(address, (c, names));
    }

    /// Labels `address` with `category` and the given names.
    pub fn insert_named(&mut self, address: Address, category: &str, names: Vec<String>) {
        self.map.insert(address, (Category::new(category), names));
    }

    /// Sets the version string reported in results.
    pub fn set_version(&mut self, version: impl Into<String>) {
        self.version = Some(version.into());
    }

    /// Number of labelled addresses.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no address is labelled.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl LabelSource for MemoryLabels {
    fn category(&self, address: &Address) -> Option<Category> {
        self.map.get(address).map(|(c, _)| c.clone())
    }

    fn labels(&self, address: &Address) -> Vec<String> {
        self.map
            .get(address)
            .map(|(_, n)| n.clone())
            .unwrap_or_default()
    }

    fn version(&self) -> Option<String> {
        self.version.clone()
    }
}

impl<L: LabelSource + ?Sized> LabelSource for &L {
    fn category(&self, address: &Address) -> Option<Category> {
        (**self).category(address)
    }
    fn labels(&self, address: &Address) -> Vec<String> {
        (**self).labels(address)
    }
    fn take_failure(&self) -> Option<paytrace_indexer::labels::LabelError> {
        (**self).take_failure()
    }
    fn version(&self) -> Option<String> {
        (**self).version()
    }
}

impl FlowSource for Store {
    type Error = StoreError;

    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, StoreError> {
        let mut v: Vec<Transfer> =
            Store::address_transfers(self, address, dir, chain).collect::<Result<_, _>>()?;
        // The index is ordered per chain; across chains the key (chain first) orders them too.
        v.sort_by_key(|t| t.key);
        Ok(v)
    }

    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, StoreError> {
        Store::transfer(self, key)
    }

    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, StoreError> {
        let chains: Vec<ChainId> = match chain {
            Some(c) => vec![c],
            None => self.chains()?.into_iter().map(|c| c.id).collect(),
        };
        let mut out = Vec::new();
        for c in chains {
            // The tx index gives the block and transaction index: one point read and a scan of
            // that transaction's key range, never a chain scan.
            out.extend(
                Store::transaction_transfers(self, c, tx)?
                    .into_iter()
                    .filter(|t| block.is_none_or(|b| t.key.block == b)),
            );
        }
        Ok(out)
    }

    fn address_transfers_range(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, StoreError> {
        Store::address_transfers_range(self, address, dir, chain, from, before)
    }

    fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<BalanceCheckpoint>, StoreError> {
        Store::balance_checkpoint(self, address, chain, before)
    }

    fn checkpoints(&self) -> Result<BTreeMap<ChainId, BlockNumber>, StoreError> {
        let mut out = BTreeMap::new();
        for c in self.chains()? {
            if let Some(cp) = self.checkpoint(c.id)? {
                out.insert(c.id, cp.number);
            }
        }
        Ok(out)
    }
}

impl<S: FlowSource + ?Sized> FlowSource for &S {
    type Error = S::Error;
    fn history_window(&self) -> HistoryWindow {
        (**self).history_window()
    }
    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, S::Error> {
        (**self).address_transfers(address, dir, chain)
    }
    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, S::Error> {
        (**self).transfer(key)
    }
    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, S::Error> {
        (**self).tx_transfers(tx, chain, block)
    }
    fn checkpoints(&self) -> Result<BTreeMap<ChainId, BlockNumber>, S::Error> {
        (**self).checkpoints()
    }
    fn address_transfers_range(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, S::Error> {
        (**self).address_transfers_range(address, dir, chain, from, before)
    }
    fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<BalanceCheckpoint>, S::Error> {
        (**self).balance_checkpoint(address, chain, before)
    }
}

/// An in-memory transfer graph implementing [`FlowSource`] (tests, benchmarks, fixtures).
#[derive(Clone, Default, Debug)]
pub struct MemoryGraph {
    transfers: BTreeMap<TransferKey, Transfer>,
    out: HashMap<Address, Vec<TransferKey>>,
    inc: HashMap<Address, Vec<TransferKey>>,
}

/// In-memory sources never fail.
#[derive(Debug, thiserror::Error)]
#[error("in-memory graph error (never happens)")]
pub struct Infallible;

impl MemoryGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a graph from transfers in any order.
    pub fn from_transfers(ts: impl IntoIterator<Item = Transfer>) -> Self {
        let mut g = Self::new();
        for t in ts {
            g.insert(t);
        }
        g
    }

    /// Adds (or replaces) one transfer.
    pub fn insert(&mut self, t: Transfer) {
        let k = t.key;
        if let Some(old) = self.transfers.insert(k, t.clone()) {
            if let Some(v) = self.out.get_mut(&old.from) {
                v.retain(|x| *x != k);
            }
            if let Some(v) = self.inc.get_mut(&old.to) {
                v.retain(|x| *x != k);
            }
        }
        for (map, a) in [(&mut self.out, t.from), (&mut self.inc, t.to)] {
            let v = map.entry(a).or_default();
            let pos = v.partition_point(|x| *x < k);
            v.insert(pos, k);
        }
    }

    /// Number of transfers.
    pub fn len(&self) -> usize {
        self.transfers.len()
    }

    /// Whether the graph has no transfer.
    pub fn is_empty(&self) -> bool {
        self.transfers.is_empty()
    }

    /// All transfers in canonical order.
    pub fn transfers(&self) -> impl Iterator<Item = &Transfer> {
        self.transfers.values()
    }
}

impl FlowSource for MemoryGraph {
    type Error = Infallible;

    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, Infallible> {
        let map = match dir {
            Direction::Incoming => &self.inc,
            Direction::Outgoing => &self.out,
        };
        Ok(map
            .get(address)
            .map(|keys| {
                keys.iter()
                    .filter(|k| chain.is_none_or(|c| k.chain == c))
                    .filter_map(|k| self.transfers.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn transfer(&self, key: &TransferKey) -> Result<Option<Transfer>, Infallible> {
        Ok(self.transfers.get(key).cloned())
    }

    fn tx_transfers(
        &self,
        tx: &TxHash,
        chain: Option<ChainId>,
        block: Option<BlockNumber>,
    ) -> Result<Vec<Transfer>, Infallible> {
        Ok(self
            .transfers
            .values()
            .filter(|t| {
                t.tx_hash == *tx
                    && chain.is_none_or(|c| t.key.chain == c)
                    && block.is_none_or(|b| t.key.block == b)
            })
            .cloned()
            .collect())
    }

    fn checkpoints(&self) -> Result<BTreeMap<ChainId, BlockNumber>, Infallible> {
        let mut out = BTreeMap::new();
        for k in self.transfers.keys() {
            let e = out.entry(k.chain).or_insert(k.block);
            if k.block > *e {
                *e = k.block;
            }
        }
        Ok(out)
    }
}

/// A category with its display labels.
type Labelled = (Category, Vec<String>);

/// The label store ([`paytrace_indexer::labels::LabelStore`]) as a [`LabelSource`], with
/// caller-given labels (`--stop ADDR=CATEGORY`) taking precedence.
///
/// Labels are those valid on `as_of` (today when `None`). When an address has several, the
/// category reported is the most severe one (sanctioned, mixer, exchange, exchange deposit,
/// bridge, then the rest by confidence). Look-ups are cached; a read error is never cached: it
/// is counted in [`StoreLabels::errors`] and kept for [`LabelSource::take_failure`], so the
/// trace engines fail instead of reading the address as unlabelled. `Sync`: the cache is
/// behind a lock.
pub struct StoreLabels {
    store: paytrace_indexer::labels::LabelStore,
    as_of: Option<paytrace_indexer::labels::Date>,
    overrides: MemoryLabels,
    // Lock and atomic (not `RefCell`/`Cell`): one instance serves the threads of a report.
    // foldhash: looked up for every address a trace meets (SipHash was a few per cent of a
    // wide trace).
    cache: std::sync::RwLock<HashMap<Address, Option<Labelled>, foldhash::fast::RandomState>>,
    errors: std::sync::atomic::AtomicU64,
    failure: std::sync::Mutex<Option<paytrace_indexer::labels::LabelError>>,
    version: Option<String>,
}

impl StoreLabels {
    /// Opens the label store of `store`.
    pub fn open(
        store: &Store,
        as_of: Option<paytrace_indexer::labels::Date>,
        overrides: MemoryLabels,
    ) -> Result<Self, paytrace_indexer::labels::LabelError> {
        let ls = paytrace_indexer::labels::LabelStore::open(store)?;
        let mut versions: Vec<String> = ls
            .sources()?
            .iter()
            .filter_map(|s| s.latest().map(|v| format!("{}@{}", s.name, v.version)))
            .collect();
        versions.sort();
        let mut version = versions.join(",");
        if let Some(v) = overrides.version().filter(|_| !overrides.is_empty()) {
            version = format!("{version}+{v}");
        }
        Ok(Self {
            store: ls,
            as_of,
            overrides,
            cache: std::sync::RwLock::new(HashMap::default()),
            errors: std::sync::atomic::AtomicU64::new(0),
            failure: std::sync::Mutex::new(None),
            version: Some(version),
        })
    }

    /// Number of label reads that failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn lookup(&self, address: &Address) -> Option<(Category, Vec<String>)> {
        if let Some(c) = self.overrides.category(address) {
            return Some((c, self.overrides.labels(address)));
        }
        if let Some(v) = self
            .cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(address)
        {
            return v.clone();
        }
        let v = match self.store.labels_for(address, self.as_of) {
            Ok(mut ls) if !ls.is_empty() => {
                use paytrace_indexer::labels::Category as C;
                let rank = |c: C| match c {
                    C::Sanctioned => 0,
                    C::Mixer => 1,
                    C::Exchange => 2,
                    C::ExchangeDeposit => 3,
                    C::Bridge => 4,
                    _ => 5,
                };
                ls.sort_by_key(|l| (rank(l.category), std::cmp::Reverse(l.confidence)));
                let cat = ls.first().map(|l| Category::from(l.category));
                let names = ls
                    .iter()
                    .map(|l| format!("{} ({}, {})", l.entity, l.category, l.source))
                    .collect();
                cat.map(|c| (c, names))
            }
            Ok(_) => None,
            Err(e) => {
                self.errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_or_insert(e);
                return None;
            }
        };
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*address, v.clone());
        v
    }
}

impl LabelSource for StoreLabels {
    fn category(&self, address: &Address) -> Option<Category> {
        self.lookup(address).map(|(c, _)| c)
    }

    fn labels(&self, address: &Address) -> Vec<String> {
        self.lookup(address).map(|(_, n)| n).unwrap_or_default()
    }

    fn take_failure(&self) -> Option<paytrace_indexer::labels::LabelError> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn version(&self) -> Option<String> {
        self.version.clone()
    }
}

/// A [`FlowSource`] with balance checkpoints every `interval` history entries computed from
/// the wrapped source, exactly as the store's balance stage writes them (per address and
/// chain; for an all-chain query only when the address has no transfer on an earlier chain).
/// For tests and benchmarks of in-memory graphs.
pub struct Checkpointed<S> {
    src: S,
    interval: u64,
}

impl<S: FlowSource> Checkpointed<S> {
    /// Checkpoints every `interval` (at least 1) entries over `src`.
    pub fn new(src: S, interval: u64) -> Self {
        Self {
            src,
            interval: interval.max(1),
        }
    }
}

impl<S: FlowSource> FlowSource for Checkpointed<S> {
    type Error = S::Error;
    fn history_window(&self) -> HistoryWindow {
        self.src.history_window()
    }
    fn address_transfers(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
    ) -> Result<Vec<Transfer>, S::Error> {
        self.src.address_transfers(address, dir, chain)
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
    fn address_transfers_range(
        &self,
        address: &Address,
        dir: Direction,
        chain: Option<ChainId>,
        from: Option<&TransferKey>,
        before: Option<&TransferKey>,
    ) -> Result<Vec<Transfer>, S::Error> {
        self.src
            .address_transfers_range(address, dir, chain, from, before)
    }
    fn balance_checkpoint(
        &self,
        address: &Address,
        chain: Option<ChainId>,
        before: &TransferKey,
    ) -> Result<Option<BalanceCheckpoint>, S::Error> {
        if address.is_tx() || chain.is_some_and(|c| c != before.chain) {
            return Ok(None);
        }
        let mut hist = Vec::new();
        for dir in [Direction::Incoming, Direction::Outgoing] {
            let v = self.src.address_transfers(address, dir, None)?;
            if chain.is_none() && v.iter().any(|t| t.key.chain < before.chain) {
                return Ok(None);
            }
            hist.extend(v.into_iter().filter(|t| t.key.chain == before.chain));
        }
        hist.sort_by_key(|t| t.key);
        hist.dedup_by_key(|t| t.key);
        Ok(
            paytrace_indexer::balance_checkpoints(address, &hist, self.interval)
                .into_iter()
                .take_while(|c| c.at <= *before)
                .last(),
        )
    }
}

#[cfg(test)]
mod category_tests {
    use super::Category;

    #[test]
    fn label_store_categories_convert_to_their_names() {
        for c in paytrace_indexer::labels::Category::ALL {
            assert_eq!(Category::from(c), Category::new(c.as_str()));
        }
    }
}
