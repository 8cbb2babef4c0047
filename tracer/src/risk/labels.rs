//! Labels with validity in time, for screening as of a date.

use crate::source::{Category, LabelSource};
use paytrace_indexer::{
    Address, Store,
    labels::{Date, LabelError, LabelStore, date_of_unix},
};
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

/// One label of an address with its validity (`valid_from` inclusive, `valid_to` exclusive;
/// `None` is open).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LabelSpan {
    /// Category.
    pub category: Category,
    /// Display name (entity, source).
    pub name: String,
    /// First valid day.
    pub valid_from: Option<Date>,
    /// First day no longer valid.
    pub valid_to: Option<Date>,
}

impl LabelSpan {
    /// Whether the label holds on `day`.
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_to.is_none_or(|t| day < t)
    }
}

/// Every label an address ever had, with validity: what screening as of a date needs.
pub trait LabelHistory {
    /// The labels of `address`, current and past; a failed read is an error, never an empty
    /// list.
    fn spans(&self, address: &Address) -> Result<Vec<LabelSpan>, LabelError>;

    /// The version of the label set (reported in results).
    fn version(&self) -> Option<String> {
        None
    }
}

impl<H: LabelHistory + ?Sized> LabelHistory for &H {
    fn spans(&self, address: &Address) -> Result<Vec<LabelSpan>, LabelError> {
        (**self).spans(address)
    }
    fn version(&self) -> Option<String> {
        (**self).version()
    }
}

/// Label history held in memory (tests, fixtures).
#[derive(Clone, Default, Debug)]
pub struct MemoryLabelHistory {
    map: HashMap<Address, Vec<LabelSpan>>,
}

impl MemoryLabelHistory {
    /// No labels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Labels `address` with `category`, valid from `from` (inclusive) to `to` (exclusive).
    pub fn insert(
        &mut self,
        address: Address,
        category: &str,
        from: Option<Date>,
        to: Option<Date>,
    ) {
        self.map.entry(address).or_default().push(LabelSpan {
            category: Category::new(category),
            name: category.to_owned(),
            valid_from: from,
            valid_to: to,
        });
    }
}

impl LabelHistory for MemoryLabelHistory {
    fn spans(&self, address: &Address) -> Result<Vec<LabelSpan>, LabelError> {
        Ok(self.map.get(address).cloned().unwrap_or_default())
    }
}

/// The label store as a [`LabelHistory`], with a cache (one point read per address). A read
/// error is returned (and counted in [`StoreLabelHistory::errors`]), never cached. `Sync`: one
/// instance (and its cache) serves the threads of a parallel screening.
pub struct StoreLabelHistory {
    store: LabelStore,
    cache: RwLock<HashMap<Address, Vec<LabelSpan>>>,
    errors: AtomicU64,
    version: Option<String>,
}

impl StoreLabelHistory {
    /// Opens the label store of `store`.
    pub fn open(store: &Store) -> Result<Self, LabelError> {
        let ls = LabelStore::open(store)?;
        let mut versions: Vec<String> = ls
            .sources()?
            .iter()
            .filter_map(|s| s.latest().map(|v| format!("{}@{}", s.name, v.version)))
            .collect();
        versions.sort();
        Ok(Self {
            store: ls,
            cache: RwLock::new(HashMap::new()),
            errors: AtomicU64::new(0),
            version: Some(versions.join(",")),
        })
    }

    /// Label reads that failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

impl LabelHistory for StoreLabelHistory {
    fn spans(&self, address: &Address) -> Result<Vec<LabelSpan>, LabelError> {
        // A poisoned lock only means a thread panicked while holding it; the map is intact.
        if let Some(v) = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(address)
        {
            return Ok(v.clone());
        }
        let key = paytrace_indexer::labels::address::address_key(address);
        let v: Vec<LabelSpan> = match self.store.history_by_key(&key) {
            Ok(ls) => ls
                .into_iter()
                .map(|l| LabelSpan {
                    category: Category::from(l.category),
                    name: format!("{} ({}, {})", l.entity, l.category.as_str(), l.source),
                    valid_from: l.valid_from,
                    valid_to: l.valid_to,
                })
                .collect(),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*address, v.clone());
        Ok(v)
    }

    fn version(&self) -> Option<String> {
        self.version.clone()
    }
}

/// A [`LabelHistory`] seen on one day: a [`LabelSource`] for the trace engines. Of several
/// labels valid that day the most severe category (by `severity`) is reported. A failed read
/// through the [`LabelSource`] methods is kept ([`LabelSource::take_failure`]) so the caller
/// fails instead of reading the address as unlabelled.
pub struct AsOfLabels<'a, H> {
    history: &'a H,
    day: Date,
    severity: &'a BTreeMap<String, u32>,
    failure: Mutex<Option<LabelError>>,
}

impl<'a, H: LabelHistory> AsOfLabels<'a, H> {
    /// The labels of `history` valid on `day`.
    pub fn new(history: &'a H, day: Date, severity: &'a BTreeMap<String, u32>) -> Self {
        Self {
            history,
            day,
            severity,
            failure: Mutex::new(None),
        }
    }

    /// The valid labels of `address`, most severe first.
    pub fn valid(&self, address: &Address) -> Result<Vec<LabelSpan>, LabelError> {
        let mut v: Vec<LabelSpan> = self
            .history
            .spans(address)?
            .into_iter()
            .filter(|s| s.valid_on(self.day))
            .collect();
        v.sort_by(|a, b| {
            let sa = self.severity.get(a.category.as_str()).copied().unwrap_or(0);
            let sb = self.severity.get(b.category.as_str()).copied().unwrap_or(0);
            sb.cmp(&sa).then(a.category.cmp(&b.category))
        });
        Ok(v)
    }

    /// The valid labels of `address` for the infallible [`LabelSource`] methods: a failed
    /// read keeps its error (the first one) for [`LabelSource::take_failure`].
    fn valid_or_keep(&self, address: &Address) -> Vec<LabelSpan> {
        self.valid(address).unwrap_or_else(|e| {
            let mut f = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
            f.get_or_insert(e);
            Vec::new()
        })
    }
}

impl<H: LabelHistory> LabelSource for AsOfLabels<'_, H> {
    fn category(&self, address: &Address) -> Option<Category> {
        self.valid_or_keep(address)
            .into_iter()
            .next()
            .map(|s| s.category)
    }

    fn labels(&self, address: &Address) -> Vec<String> {
        self.valid_or_keep(address)
            .into_iter()
            .map(|s| s.name)
            .collect()
    }

    fn version(&self) -> Option<String> {
        self.history.version()
    }

    fn take_failure(&self) -> Option<LabelError> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The UTC day of a block time.
pub fn day_of(t: paytrace_indexer::Timestamp) -> Option<Date> {
    date_of_unix(i64::try_from(t.0).ok()?)
}

/// Whether a label of `category` held on the day of `t`, and the first day such a label
/// started (for "listed since" in reasons).
pub fn held_at(
    spans: &[LabelSpan],
    category: &Category,
    t: paytrace_indexer::Timestamp,
) -> (bool, Option<Date>) {
    let day = day_of(t);
    let of_cat: Vec<&LabelSpan> = spans.iter().filter(|s| &s.category == category).collect();
    let held = day.is_some_and(|d| of_cat.iter().any(|s| s.valid_on(d)));
    let since = of_cat.iter().filter_map(|s| s.valid_from).min();
    (held, since)
}
