//! `paytrace store check` and `paytrace store repair`: the explicit ways to look at a damaged
//! store and to cut it back to its last intact state (opening a store never does either).

use super::{
    OpenMode, Store, StoreError, describe_intact, journal,
    lock::{ReaderLock, WriterLock},
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One journal file as `store check` reports it.
#[derive(Clone, Debug, Serialize)]
pub struct JournalCheck {
    /// The file.
    pub file: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Intact batches.
    pub batches: u64,
    /// The end of the last intact batch.
    pub intact_bytes: u64,
    /// Sequence number of the last intact batch.
    pub last_seqno: Option<u64>,
    /// `intact`, `torn_tail` (left by a crashed writer; dropped when the store opens) or
    /// `damaged`.
    pub state: &'static str,
    /// Byte offset of the damage or torn tail.
    pub damage_offset: Option<u64>,
    /// What does not decode there.
    pub damage_reason: Option<String>,
}

impl From<&journal::JournalFile> for JournalCheck {
    fn from(f: &journal::JournalFile) -> Self {
        Self {
            file: f.path.clone(),
            bytes: f.bytes,
            batches: f.batches,
            intact_bytes: f.intact_bytes,
            last_seqno: f.last_seqno,
            state: match &f.damage {
                None => "intact",
                Some(d) if d.torn_tail => "torn_tail",
                Some(_) => "damaged",
            },
            damage_offset: f.damage.as_ref().map(|d| d.offset),
            damage_reason: f.damage.as_ref().map(|d| d.reason.clone()),
        }
    }
}

/// One keyspace read from end to end (every table block's checksum verified).
#[derive(Clone, Debug, Serialize)]
pub struct KeyspaceCheck {
    /// Name.
    pub name: String,
    /// Its folder.
    pub folder: PathBuf,
    /// Entries read.
    pub entries: u64,
    /// The first read error (a table block's checksum, a missing file), if any.
    pub error: Option<String>,
    /// The table files of the keyspace that fail to read, each with its error (found by
    /// reading every table on its own once the keyspace failed).
    pub damaged_tables: Vec<DamagedTable>,
}

/// A table file that fails to read.
#[derive(Clone, Debug, Serialize)]
pub struct DamagedTable {
    /// The file.
    pub file: PathBuf,
    /// Entries read from it before the error.
    pub entries_before: u64,
    /// The read error.
    pub error: String,
}

/// Every table file of `ks` read on its own: those that fail, with their first error.
fn damaged_tables(ks: &fjall::Keyspace) -> Vec<DamagedTable> {
    use fjall::AbstractTree as _;
    let version = ks.tree.current_version();
    let mut out = Vec::new();
    for t in version.iter_tables() {
        let mut n = 0u64;
        for kv in t.iter() {
            match kv {
                Ok(_) => n += 1,
                Err(e) => {
                    out.push(DamagedTable {
                        file: ks.path().join("tables").join(t.id().to_string()),
                        entries_before: n,
                        error: e.to_string(),
                    });
                    break;
                }
            }
        }
    }
    out
}

/// A chain's checkpoint.
#[derive(Clone, Debug, Serialize)]
pub struct ChainCheckpoint {
    /// Chain name.
    pub chain: String,
    /// Last indexed block.
    pub last_block: Option<u64>,
}

/// What `store check` found.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Whether everything is intact (torn tails of a crash are not damage).
    pub intact: bool,
    /// The journals, oldest first.
    pub journals: Vec<JournalCheck>,
    /// The last intact state when a journal is damaged (readable), else `null`.
    pub last_intact: Option<String>,
    /// The keyspaces (empty when a damaged journal kept the store closed).
    pub keyspaces: Vec<KeyspaceCheck>,
    /// Chains and their checkpoints (empty when a damaged journal kept the store closed).
    pub chains: Vec<ChainCheckpoint>,
}

/// What `store repair` did.
#[derive(Clone, Debug, Serialize)]
pub struct RepairReport {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Whether anything was cut.
    pub repaired: bool,
    /// The journal cut, and the offset it was cut at.
    pub cut_file: Option<PathBuf>,
    /// Byte offset of the cut.
    pub cut_offset: Option<u64>,
    /// Bytes removed from the store (kept in `*.cut` files next to the journals).
    pub lost_bytes: u64,
    /// Files the removed bytes were saved to.
    pub saved_to: Vec<PathBuf>,
    /// Chains and their checkpoints after the repair.
    pub chains: Vec<ChainCheckpoint>,
}

fn require_store(path: &Path) -> Result<(), StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing {
            path: path.to_path_buf(),
        });
    }
    if !path.is_dir() {
        return Err(StoreError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    if !path.join(super::ENGINE_VERSION_FILE).exists() {
        return Err(StoreError::NotAStore {
            path: path.to_path_buf(),
            reason: "no storage engine version file".into(),
        });
    }
    Ok(())
}

fn chain_checkpoints(store: &Store) -> Result<Vec<ChainCheckpoint>, StoreError> {
    store
        .chains()?
        .into_iter()
        .map(|c| {
            Ok(ChainCheckpoint {
                last_block: store.checkpoint(c.id)?.map(|b| b.number.0),
                chain: c.name,
            })
        })
        .collect()
}

impl Store {
    /// Verifies the store in `path` without changing it: its journals (before the engine
    /// opens them), then, when they are intact, every keyspace read from end to end.
    pub fn check(path: impl AsRef<Path>) -> Result<CheckReport, StoreError> {
        let path = path.as_ref();
        require_store(path)?;
        let lock = ReaderLock::acquire(path)?;
        let files = journal::check_journals(path, lock.previous_crashed)?;
        let mut report = CheckReport {
            data_dir: path.to_path_buf(),
            intact: true,
            journals: files.iter().map(JournalCheck::from).collect(),
            last_intact: None,
            keyspaces: Vec::new(),
            chains: Vec::new(),
        };
        if journal::first_damage(&files).is_some() {
            report.intact = false;
            report.last_intact = Some(describe_intact(&files));
            return Ok(report);
        }
        drop(lock);
        let store = Store::open_with(path, OpenMode::Read, None)?;
        let mut names: Vec<String> = store
            .db
            .list_keyspace_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        for name in names {
            let ks = store
                .db
                .keyspace(&name, super::opts)
                .map_err(|e| store.io("open keyspace", e))?;
            let mut check = KeyspaceCheck {
                name,
                folder: ks.path().to_path_buf(),
                entries: 0,
                error: None,
                damaged_tables: Vec::new(),
            };
            for kv in ks.iter() {
                match kv.into_inner() {
                    Ok(_) => check.entries += 1,
                    Err(e) => {
                        check.error = Some(e.to_string());
                        check.damaged_tables = damaged_tables(&ks);
                        report.intact = false;
                        break;
                    }
                }
            }
            report.keyspaces.push(check);
        }
        report.chains = chain_checkpoints(&store)?;
        Ok(report)
    }

    /// Cuts the store in `path` back to its last intact state: a damaged journal is truncated
    /// at its first undecodable batch, and later journals are set aside (their batches come
    /// after the damage); the removed bytes are saved to `<journal>.cut` files, which the
    /// storage engine ignores. Then the store is opened, flushed and closed. Damaged tables
    /// cannot be repaired (re-index into a new data dir); they are reported by
    /// [`Store::check`].
    pub fn repair(path: impl AsRef<Path>) -> Result<RepairReport, StoreError> {
        let path = path.as_ref();
        require_store(path)?;
        let lock = WriterLock::acquire(path)?;
        let files = journal::check_journals(path, lock.previous_crashed)?;
        let mut report = RepairReport {
            data_dir: path.to_path_buf(),
            repaired: false,
            cut_file: None,
            cut_offset: None,
            lost_bytes: 0,
            saved_to: Vec::new(),
            chains: Vec::new(),
        };
        if let Some(i) = files
            .iter()
            .position(|f| f.damage.as_ref().is_some_and(|d| !d.torn_tail))
        {
            for (j, f) in files.iter().enumerate().skip(i) {
                let cut_at = if j == i { f.intact_bytes } else { 0 };
                let saved = cut_journal(&f.path, cut_at)?;
                report.lost_bytes += f.bytes.saturating_sub(cut_at);
                report.saved_to.push(saved);
                if j == i {
                    report.cut_file = Some(f.path.clone());
                    report.cut_offset = Some(cut_at);
                }
            }
            report.repaired = true;
            tracing::warn!(
                data_dir = %path.display(),
                lost_bytes = report.lost_bytes,
                "store cut back to its last intact state"
            );
        }
        drop(lock);
        let store = Store::open(path)?;
        report.chains = chain_checkpoints(&store)?;
        store.persist_for_reopen()?;
        Ok(report)
    }
}

/// Saves the bytes of `file` from `at` on to `<file>.cut`, then truncates (or, at 0, removes)
/// `file`. Returns the saved file.
fn cut_journal(file: &Path, at: u64) -> Result<PathBuf, StoreError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut name = file.as_os_str().to_owned();
    name.push(".cut");
    let saved = PathBuf::from(name);
    let io = |p: &Path, e| StoreError::fs("cut the journal", p, e);
    let mut src = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .map_err(|e| io(file, e))?;
    src.seek(SeekFrom::Start(at)).map_err(|e| io(file, e))?;
    let mut dst = std::fs::File::create(&saved).map_err(|e| io(&saved, e))?;
    std::io::copy(&mut (&mut src).take(u64::MAX), &mut dst).map_err(|e| io(&saved, e))?;
    dst.sync_all().map_err(|e| io(&saved, e))?;
    if at == 0 {
        drop(src);
        std::fs::remove_file(file).map_err(|e| io(file, e))?;
    } else {
        src.set_len(at).map_err(|e| io(file, e))?;
        src.sync_all().map_err(|e| io(file, e))?;
    }
    Ok(saved)
}
