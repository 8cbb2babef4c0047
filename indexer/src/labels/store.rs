//! The label store: labels by normalised address key (one point read per look-up), sources
//! with their versions, and a per-source index used to record delistings.
//!
//! | keyspace          | key                                   | value                        |
//! |-------------------|---------------------------------------|------------------------------|
//! | `labels`          | address key ([`LabelAddress::key`])   | postcard `Vec<`[`Label`]`>`  |
//! | `label_sources`   | source name                           | postcard [`SourceInfo`]      |
//! | `label_by_source` | source name, `0x00`, address key      | empty                        |
//!
//! An import is one atomic write batch: a crash or an error leaves the store as it was.

use super::{
    LabelError,
    address::{LabelAddress, address_key},
    model::{Category, Label, SourceInfo, SourceVersion, parse_date, today},
};
use crate::{model::Address, store::Store};
use fjall::{Database, Keyspace, PersistMode};
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, hash_map::Entry};

const KS_LABELS: &str = "labels";
const KS_SOURCES: &str = "label_sources";
const KS_BY_SOURCE: &str = "label_by_source";

/// Where an input row came from.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Location {
    /// File name (or URL).
    pub file: String,
    /// 1-based line.
    pub line: u64,
}

/// A rejected input row: where, and why.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Reject {
    /// File name (or URL).
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Why it was rejected.
    pub reason: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// One label as read from a source, before validation of the address.
#[derive(Clone, Debug, Default)]
pub struct Candidate {
    /// Where it was read.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// Address text.
    pub address: String,
    /// Declared currency code or chain name.
    pub currency: Option<String>,
    /// Entity / actor.
    pub entity: Option<String>,
    /// Source's label text.
    pub name: Option<String>,
    /// Category.
    pub category: Option<Category>,
    /// Confidence 0–100.
    pub confidence: Option<u8>,
    /// Start of validity.
    pub valid_from: Option<Date>,
    /// End of validity (exclusive).
    pub valid_to: Option<Date>,
    /// Sanctions programme.
    pub program: Option<String>,
    /// Evidence URL.
    pub url: Option<String>,
    /// Other fields.
    pub notes: BTreeMap<String, String>,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    /// Source name.
    pub source: String,
    /// Version imported.
    pub version: String,
    /// Input rows read (accepted, duplicate or rejected).
    pub read: u64,
    /// New labels written.
    pub imported: u64,
    /// Rows that repeat a label already present (in the store or earlier in the input).
    pub duplicates: u64,
    /// Rows rejected (see `rejects`).
    pub rejected: u64,
    /// Labels of this source delisted by this version.
    pub removed: u64,
    /// Every rejected row with file, line and reason.
    pub rejects: Vec<Reject>,
}

/// Defaults applied to candidates that lack a field.
#[derive(Clone, Debug, Default)]
pub struct Defaults {
    /// Category for rows without one.
    pub category: Option<Category>,
    /// Entity for rows without one.
    pub entity: Option<String>,
    /// Currency for rows without one.
    pub currency: Option<String>,
    /// Confidence for rows without one (else 100).
    pub confidence: Option<u8>,
}

/// Handle on the label keyspaces of a [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct LabelStore {
    db: Database,
    labels: Keyspace,
    sources: Keyspace,
    by_source: Keyspace,
}

fn io(op: &'static str) -> impl FnOnce(fjall::Error) -> LabelError {
    move |source| LabelError::Io { op, source }
}

fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, LabelError> {
    postcard::to_allocvec(v).map_err(|e| LabelError::Encode(e.to_string()))
}

fn decode_labels(key: &[u8], v: &[u8]) -> Result<Vec<Label>, LabelError> {
    postcard::from_bytes(v).map_err(|e| LabelError::Corrupt {
        keyspace: KS_LABELS,
        key: alloy_primitives::hex::encode(key),
        reason: e.to_string(),
    })
}

impl LabelStore {
    /// Opens (or creates) the label keyspaces in `store`.
    pub fn open(store: &Store) -> Result<Self, LabelError> {
        Ok(Self {
            db: store.database().clone(),
            labels: store.keyspace(KS_LABELS)?,
            sources: store.keyspace(KS_SOURCES)?,
            by_source: store.keyspace(KS_BY_SOURCE)?,
        })
    }

    /// Every label ever recorded for the key, current and past, in insertion order.
    pub fn history_by_key(&self, key: &[u8]) -> Result<Vec<Label>, LabelError> {
        match self.labels.get(key).map_err(io("read labels"))? {
            Some(v) => decode_labels(key, &v),
            None => Ok(Vec::new()),
        }
    }

    /// Labels of `address` that hold on `as_of` (today when `None`): one point read.
    pub fn labels_for(
        &self,
        address: &Address,
        as_of: Option<Date>,
    ) -> Result<Vec<Label>, LabelError> {
        let day = as_of.unwrap_or_else(today);
        let mut v = self.history_by_key(&address_key(address))?;
        v.retain(|l| l.valid_on(day));
        Ok(v)
    }

    /// Labels of a label address (any chain, including currencies paytrace does not index)
    /// that hold on `as_of` (today when `None`).
    pub fn lookup(
        &self,
        address: &LabelAddress,
        as_of: Option<Date>,
    ) -> Result<Vec<Label>, LabelError> {
        let day = as_of.unwrap_or_else(today);
        let mut v = self.history_by_key(&address.key())?;
        v.retain(|l| l.valid_on(day));
        Ok(v)
    }

    /// Every stored label (current and past), in key order.
    pub fn iter(&self) -> impl Iterator<Item = Result<Label, LabelError>> + '_ {
        self.labels.iter().flat_map(|kv| {
            let labels = kv
                .into_inner()
                .map_err(io("scan labels"))
                .and_then(|(k, v)| decode_labels(&k, &v));
            match labels {
                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            }
        })
    }

    /// All sources, by name.
    pub fn sources(&self) -> Result<Vec<SourceInfo>, LabelError> {
        self.sources
            .iter()
            .map(|kv| {
                let (k, v) = kv.into_inner().map_err(io("scan sources"))?;
                postcard::from_bytes(&v).map_err(|e| LabelError::Corrupt {
                    keyspace: KS_SOURCES,
                    key: String::from_utf8_lossy(&k).into_owned(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// One source by name.
    pub fn source(&self, name: &str) -> Result<Option<SourceInfo>, LabelError> {
        self.sources
            .get(name.as_bytes())
            .map_err(io("read source"))?
            .map(|v| {
                postcard::from_bytes(&v).map_err(|e| LabelError::Corrupt {
                    keyspace: KS_SOURCES,
                    key: name.to_owned(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Starts an import of one version of a source. Nothing is written before
    /// [`ImportSession::finish`].
    pub fn begin_import(
        &self,
        source: &str,
        format: &str,
        url: Option<String>,
        files: Vec<String>,
        defaults: Defaults,
    ) -> Result<ImportSession<'_>, LabelError> {
        if source.is_empty() || source.len() > 200 || source.contains('\0') {
            return Err(LabelError::BadSourceName {
                name: source.to_owned(),
            });
        }
        let info = self.source(source)?;
        let first_version = info.as_ref().is_none_or(|i| i.versions.is_empty());
        Ok(ImportSession {
            info,
            store: self,
            source: source.to_owned(),
            format: format.to_owned(),
            url,
            files,
            defaults,
            version: None,
            frozen: None,
            first_version,
            pending: HashMap::new(),
            report: ImportReport {
                source: source.to_owned(),
                ..ImportReport::default()
            },
        })
    }
}

/// Labels of one address touched by an import.
enum Pending {
    /// The address had no labels before this import: its new labels, already encoded
    /// (compact, so that imports of millions of addresses stay small in memory).
    Fresh {
        /// postcard `Vec<Label>`.
        bytes: Vec<u8>,
        /// Number of labels.
        count: u64,
    },
    /// The address had labels: all of them, with what this import did to each.
    Merged {
        labels: Vec<Label>,
        /// Per label: seen in this import.
        seen: Vec<bool>,
        /// Per label: created by this import.
        new: Vec<bool>,
    },
}

/// An import in progress: rows are validated and merged in memory, then written in one
/// atomic batch by [`ImportSession::finish`].
pub struct ImportSession<'a> {
    store: &'a LabelStore,
    source: String,
    format: String,
    url: Option<String>,
    files: Vec<String>,
    defaults: Defaults,
    info: Option<SourceInfo>,
    version: Option<String>,
    /// The version and its date, fixed at the first row.
    frozen: Option<(String, Option<Date>)>,
    first_version: bool,
    pending: HashMap<Vec<u8>, Pending>,
    report: ImportReport,
}

impl ImportSession<'_> {
    /// Sets the version when none was set yet (explicit versions first, then hints read
    /// from the data, e.g. an XML `DateOfIssue`).
    pub fn set_version_if_unset(&mut self, version: &str) {
        if self.version.is_none() && !version.trim().is_empty() {
            self.version = Some(version.trim().to_owned());
        }
    }

    /// Records a rejected row.
    pub fn reject(&mut self, file: &str, line: u64, reason: impl Into<String>) {
        self.report.read += 1;
        self.report.rejected += 1;
        self.report.rejects.push(Reject {
            file: file.to_owned(),
            line,
            reason: reason.into(),
        });
    }

    /// Validates and merges one row.
    pub fn add(&mut self, c: Candidate) -> Result<(), LabelError> {
        let currency = c
            .currency
            .clone()
            .or_else(|| self.defaults.currency.clone());
        let addr = match LabelAddress::parse(&c.address, currency.as_deref()) {
            Ok(a) => a,
            Err(e) => {
                self.reject(&c.file, c.line, e.to_string());
                return Ok(());
            }
        };
        let Some(category) = c.category.or(self.defaults.category) else {
            self.reject(
                &c.file,
                c.line,
                "no category (give a category column or --category)",
            );
            return Ok(());
        };
        let name = c.name.filter(|n| !n.trim().is_empty());
        let entity = c
            .entity
            .filter(|e| !e.trim().is_empty())
            .or_else(|| self.defaults.entity.clone())
            .or_else(|| name.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let name = name.filter(|n| *n != entity);
        let currency = match currency {
            Some(cur) => match super::address::currency_code(&cur) {
                Ok(code) => Some(code),
                Err(e) => {
                    self.reject(&c.file, c.line, e.to_string());
                    return Ok(());
                }
            },
            None => None,
        };
        let label = Label {
            address: addr.to_string(),
            chain: addr.chain(),
            currency,
            entity,
            name,
            category,
            source: self.source.clone(),
            source_version: String::new(),
            confidence: c
                .confidence
                .or(self.defaults.confidence)
                .unwrap_or(100)
                .min(100),
            valid_from: c.valid_from,
            valid_to: c.valid_to,
            removed_in: None,
            program: c.program,
            url: c.url,
            notes: c.notes,
        };
        let mut label = label;
        let (version, version_date) = self.frozen_version();
        label.source_version = version;
        if label.valid_from.is_none() && !self.first_version {
            label.valid_from = version_date;
        }
        self.report.read += 1;
        let key = addr.key();
        let p = match self.pending.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let labels = self.store.history_by_key(v.key())?;
                if labels.is_empty() {
                    self.report.imported += 1;
                    v.insert(Pending::Fresh {
                        bytes: encode(std::slice::from_ref(&label))?,
                        count: 1,
                    });
                    return Ok(());
                }
                let n = labels.len();
                v.insert(Pending::Merged {
                    labels,
                    seen: vec![false; n],
                    new: vec![false; n],
                })
            }
        };
        match p {
            Pending::Fresh { bytes, count } => {
                let mut labels: Vec<Label> = decode_labels(b"pending", bytes)?;
                if labels.iter().any(|l| l.same_claim(&label)) {
                    self.report.duplicates += 1;
                } else {
                    self.report.imported += 1;
                    labels.push(label);
                    *bytes = encode(&labels)?;
                    *count += 1;
                }
            }
            Pending::Merged { labels, seen, new } => {
                let existing = labels
                    .iter()
                    .position(|l| l.removed_in.is_none() && l.same_claim(&label));
                match existing {
                    Some(i) => {
                        self.report.duplicates += 1;
                        if let Some(s) = seen.get_mut(i) {
                            *s = true;
                        }
                    }
                    None => {
                        self.report.imported += 1;
                        labels.push(label);
                        seen.push(true);
                        new.push(true);
                    }
                }
            }
        }
        Ok(())
    }

    /// The version of this import, fixed at the first row: the explicit version or the first
    /// hint, else today.
    fn frozen_version(&mut self) -> (String, Option<Date>) {
        let version = self.version.clone();
        self.frozen
            .get_or_insert_with(|| {
                let v = version.unwrap_or_else(|| today().to_string());
                let d = parse_date(&v);
                (v, d)
            })
            .clone()
    }

    /// Rows read so far.
    pub fn read(&self) -> u64 {
        self.report.read
    }

    /// Writes the import in one atomic batch: new labels, delistings (labels of this source
    /// not seen in this version get `valid_to` = the version's date and `removed_in`), and the
    /// source version record. Re-importing the latest version changes nothing.
    pub fn finish(mut self) -> Result<ImportReport, LabelError> {
        let (version, version_date) = self.frozen_version();
        self.report.version = version.clone();
        let mut info = self.info.take().unwrap_or_else(|| SourceInfo {
            name: self.source.clone(),
            format: self.format.clone(),
            url: self.url.clone(),
            versions: Vec::new(),
        });
        let same_as_latest = info.latest().is_some_and(|v| v.version == version);
        if !same_as_latest && let Some(latest) = info.latest() {
            let older = info.versions.iter().any(|v| v.version == version)
                || matches!((version_date, latest.date), (Some(a), Some(b)) if a < b);
            if older {
                return Err(LabelError::OlderVersion {
                    source_name: self.source.clone(),
                    version,
                    latest: latest.version.clone(),
                });
            }
        }
        let end_day = version_date.unwrap_or_else(today);
        let mut batch = self
            .store
            .db
            .batch()
            .durability(Some(PersistMode::SyncData));
        let mut removed = 0u64;
        let mut added = 0u64;
        // Labels of this source at addresses not touched by this import: delisted.
        let mut prefix = self.source.as_bytes().to_vec();
        prefix.push(0);
        for kv in self.store.by_source.prefix(&prefix) {
            let k = kv.key().map_err(io("scan source index"))?;
            let akey = k.get(prefix.len()..).unwrap_or_default();
            if self.pending.contains_key(akey) {
                continue;
            }
            let mut labels = self.store.history_by_key(akey)?;
            let mut changed = false;
            for l in labels.iter_mut() {
                if l.source == self.source && l.removed_in.is_none() {
                    close(l, &version, end_day);
                    removed += 1;
                    changed = true;
                }
            }
            if changed {
                batch.insert(&self.store.labels, akey.to_vec(), encode(&labels)?);
            }
        }
        let mut index_key = Vec::with_capacity(prefix.len() + 40);
        for (key, p) in self.pending.drain() {
            let value = match p {
                Pending::Fresh { bytes, count } => {
                    added += count;
                    bytes
                }
                Pending::Merged {
                    mut labels,
                    seen,
                    new,
                } => {
                    for (i, l) in labels.iter_mut().enumerate() {
                        let is_new = new.get(i).copied().unwrap_or(false);
                        let is_seen = seen.get(i).copied().unwrap_or(false);
                        if is_new {
                            added += 1;
                        } else if !is_seen && l.source == self.source && l.removed_in.is_none() {
                            close(l, &version, end_day);
                            removed += 1;
                        }
                    }
                    encode(&labels)?
                }
            };
            index_key.clear();
            index_key.extend_from_slice(&prefix);
            index_key.extend_from_slice(&key);
            batch.insert(&self.store.by_source, index_key.clone(), Vec::new());
            batch.insert(&self.store.labels, key, value);
        }
        self.report.removed = removed;
        let previously_active = info.latest().map_or(0, |v| v.active);
        let active = (previously_active + added).saturating_sub(removed);
        if same_as_latest && added == 0 && removed == 0 {
            // idempotent re-import: keep the version record as it is
        } else if same_as_latest {
            if let Some(v) = info.versions.last_mut() {
                v.active = active;
                v.added += added;
                v.removed += removed;
            }
        } else {
            info.versions.push(SourceVersion {
                version: version.clone(),
                date: version_date,
                imported_at: jiff::Timestamp::now().to_string(),
                files: self.files.clone(),
                active,
                added,
                removed,
            });
        }
        if info.url.is_none() {
            info.url = self.url.clone();
        }
        batch.insert(
            &self.store.sources,
            self.source.as_bytes().to_vec(),
            encode(&info)?,
        );
        batch.commit().map_err(io("commit label import"))?;
        Ok(self.report)
    }
}

fn close(l: &mut Label, version: &str, day: Date) {
    l.removed_in = Some(version.to_owned());
    if l.valid_to.is_none_or(|t| t > day) {
        l.valid_to = Some(day);
    }
}
