//! The store's own lock file, `paytrace.lock` in the data dir, next to the storage engine's.
//!
//! * A write open takes an exclusive lock on it **before** the engine is opened, and records
//!   the holder (process id, command, start time, `open: true`); closing the store rewrites the
//!   record with `open: false`. So a second command is told which command holds the store, and
//!   a record still saying `open: true` when the lock is free means the last writer did not
//!   close the store (a crash): only then is an incomplete batch at the end of the journal a
//!   torn tail rather than damage (`journal.rs`).
//! * The lock also serialises the creation of a new store: three first opens of one new data
//!   dir create it once (the engine alone fails with `InvalidVersion` when one reads the
//!   version file another is still writing).
//! * A read open takes a shared lock on the file when it exists (opened read-only: it writes
//!   nothing), so a writer is refused while a reader runs and the other way round, each with a
//!   message naming the other side.

use super::error::StoreError;
use serde::{Deserialize, Serialize};
use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

/// The lock file's name in the data dir.
pub const LOCK_FILE: &str = "paytrace.lock";

/// Who holds (or last held) the write lock of a store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// The command, e.g. `paytrace index evm` (subcommand words only: no flag values, which
    /// may hold credentials).
    pub command: String,
    /// When it took the lock (RFC 3339).
    pub since: String,
    /// Whether it still had the store open (false once it closed it).
    pub open: bool,
}

impl Holder {
    fn current() -> Self {
        Self {
            pid: std::process::id(),
            command: command_words(std::env::args()),
            since: jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
            open: true,
        }
    }

    /// `pid N, \`command\`, since T`.
    pub fn describe(&self) -> String {
        format!(
            "`{}` (pid {}, since {})",
            self.command, self.pid, self.since
        )
    }
}

/// The program name and up to two subcommand words of `args` (words of lower-case letters,
/// digits and dashes that are not flags), e.g. `paytrace index evm`.
pub fn command_words(args: impl Iterator<Item = String>) -> String {
    let mut args = args;
    let program = args
        .next()
        .and_then(|p| {
            Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "paytrace".to_owned());
    let mut words = vec![program];
    let mut skip_value = false;
    for a in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if a.starts_with('-') {
            // global flags with a separate value
            skip_value = matches!(a.as_str(), "--data-dir" | "--config");
            continue;
        }
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            words.push(a);
            if words.len() == 3 {
                break;
            }
        } else {
            break;
        }
    }
    words.join(" ")
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut s = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut s).ok()?;
    serde_json::from_str(&s).ok()
}

/// Reads the holder record of the store in `dir`, if any.
pub fn holder(dir: &Path) -> Option<Holder> {
    let mut f = File::open(dir.join(LOCK_FILE)).ok()?;
    read_holder(&mut f)
}

fn pid_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.exists() || proc.join(pid.to_string()).exists()
}

/// The `Locked` error for the store in `dir`, naming the holder when a writer holds it.
pub(crate) fn locked_error(dir: &Path) -> StoreError {
    let holder = holder(dir).filter(|h| h.open && pid_alive(h.pid));
    StoreError::Locked {
        path: dir.to_path_buf(),
        holder: match holder {
            // `follow` runs until stopped: waiting is not the answer.
            Some(h) if h.command.contains(" follow") => format!(
                "{} (it runs until stopped: stop it with Ctrl-C or SIGTERM to use the store, \
                 it resumes from its checkpoint when started again)",
                h.describe()
            ),
            Some(h) => h.describe(),
            None => "another paytrace command that reads it".to_owned(),
        },
    }
}

/// An exclusive lock on `paytrace.lock`, held while a store is open for writing.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: File,
    path: PathBuf,
    /// Whether the previous writer left the store open (crashed), or no record existed.
    pub previous_crashed: bool,
}

impl WriterLock {
    /// Takes the lock of the store in `dir` (which must exist) without recording anything.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| StoreError::fs("create the lock file", &path, source))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(locked_error(dir)),
            Err(TryLockError::Error(source)) => {
                return Err(StoreError::fs("lock", &path, source));
            }
        }
        let previous_crashed = read_holder(&mut file).is_none_or(|h| h.open);
        Ok(Self {
            file,
            path,
            previous_crashed,
        })
    }

    fn write(&mut self, h: &Holder) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(h).map_err(|e| StoreError::Encode(e.to_string()))?;
        let io = |source| StoreError::fs("write the lock file", &self.path, source);
        self.file.set_len(0).map_err(io)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.write_all(&bytes).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Records this process as the holder, with the store open.
    pub fn record_open(&mut self) -> Result<(), StoreError> {
        self.write(&Holder::current())
    }
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let mut h = read_holder(&mut self.file).unwrap_or_else(Holder::current);
        h.open = false;
        if let Err(e) = self.write(&h) {
            tracing::warn!(error = %e, "could not record that the store was closed");
        }
    }
}

/// A shared lock on `paytrace.lock` (when the file exists), held while a store is open for
/// reading. Opens the file read-only: writes nothing.
#[derive(Debug)]
pub(crate) struct ReaderLock {
    _file: Option<File>,
    /// Whether the last writer left the store open (crashed), or no record exists.
    pub previous_crashed: bool,
}

impl ReaderLock {
    /// Takes the shared lock of the store in `dir`.
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(LOCK_FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    _file: None,
                    previous_crashed: true,
                });
            }
            Err(source) => return Err(StoreError::fs("open the lock file", &path, source)),
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(locked_error(dir)),
            Err(TryLockError::Error(source)) => {
                return Err(StoreError::fs("lock", &path, source));
            }
        }
        let previous_crashed = read_holder(&mut file).is_none_or(|h| h.open);
        Ok(Self {
            _file: Some(file),
            previous_crashed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(a: &[&str]) -> String {
        command_words(a.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn command_words_keep_subcommands_and_drop_values() {
        assert_eq!(
            words(&[
                "/usr/bin/paytrace",
                "--data-dir",
                "/x",
                "index",
                "evm",
                "--rpc",
                "http://key@node"
            ]),
            "paytrace index evm"
        );
        assert_eq!(words(&["paytrace", "stats"]), "paytrace stats");
        assert_eq!(
            words(&["paytrace", "labels", "import", "file.csv"]),
            "paytrace labels import"
        );
        assert_eq!(words(&["paytrace", "trace", "0xABC"]), "paytrace trace");
    }

    #[test]
    fn a_second_writer_is_told_the_holder_and_a_clean_close_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = WriterLock::acquire(dir.path()).unwrap();
        assert!(w.previous_crashed, "no record yet");
        w.record_open().unwrap();
        let e = WriterLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        assert!(e.contains("wait"), "{e}");
        let e = ReaderLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(w);
        let r = ReaderLock::acquire(dir.path()).unwrap();
        assert!(!r.previous_crashed);
        let e = WriterLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(e.contains("reads it"), "{e}");
        drop(r);
        let w = WriterLock::acquire(dir.path()).unwrap();
        assert!(!w.previous_crashed);
    }
}
