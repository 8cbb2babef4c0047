//! Store errors.

use super::ChainKind;
use crate::model::{BlockNumber, ChainId, TransferKey};
use std::path::{Path, PathBuf};

/// Where a journal of a store is damaged ([`StoreError::CorruptJournal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalDamage {
    /// The data dir.
    pub path: PathBuf,
    /// The journal file.
    pub file: PathBuf,
    /// Byte offset of the damage.
    pub offset: u64,
    /// The file's size.
    pub bytes: u64,
    /// Bytes from the damage to the end of the file.
    pub lost: u64,
    /// What does not decode.
    pub reason: String,
    /// The last intact checkpoints, readable.
    pub intact: String,
}

impl std::fmt::Display for JournalDamage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the store at {} is damaged: journal {} does not decode at byte {} of {} ({}); the \
             last intact state is {}. Nothing was changed. Run `paytrace store check` for \
             details; `paytrace store repair` cuts the store back to that state (the {} bytes \
             from there on are lost)",
            self.path.display(),
            self.file.display(),
            self.offset,
            self.bytes,
            self.reason,
            self.intact,
            self.lost
        )
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory path names a file.
    #[error("data dir {path} is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the store's lock.
    #[error(
        "the store at {path} is in use by {holder}; wait for it to finish and run this command \
         again"
    )]
    Locked {
        /// The path.
        path: PathBuf,
        /// Who holds it (the command and process id when a writer holds it).
        holder: String,
    },
    /// A command that only reads found no store (nothing was created).
    #[error(
        "no paytrace store at {path} (nothing was created): index a chain into it first \
         (`paytrace index evm --chain NAME --rpc URL`, `paytrace import transfers FILE`, \
         `paytrace index btc ...`) or run `paytrace demo`, or pass the right --data-dir"
    )]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The directory exists but holds no paytrace store.
    #[error(
        "{path} is not a paytrace store ({reason}); pass the data dir of a store with --data-dir"
    )]
    NotAStore {
        /// The path.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// The data dir cannot be written (read-only file system or no permission).
    #[error(
        "cannot write to the store at {path} ({source}): the storage engine needs write access \
         to its data dir even to read (it replays and locks its journal); mount it read-write or \
         copy the data dir to a writable place"
    )]
    ReadOnly {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A journal of the store is damaged: the store is not opened and nothing is changed.
    #[error("{0}")]
    CorruptJournal(Box<JournalDamage>),
    /// A file-system operation on the data dir failed.
    #[error("cannot {op} {path}: {source}")]
    Fs {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// fjall could not open or recover the directory.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// The store was written by another schema version.
    #[error(
        "store at {path} has schema version {found}, this paytrace reads version {expected}; \
         re-index into a new --data-dir"
    )]
    SchemaMismatch {
        /// The path.
        path: PathBuf,
        /// Version on disk.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// An I/O failure of the engine.
    #[error("store i/o error during {op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// An I/O failure of the engine on one keyspace.
    #[error("store i/o error during {op} of keyspace {keyspace}: {source}")]
    KeyspaceIo {
        /// The keyspace.
        keyspace: &'static str,
        /// What was being done.
        op: &'static str,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// A write to a keyspace that a store opened for reading does not have.
    #[error("cannot write to keyspace {keyspace}: the store is open for reading only")]
    ReadOnlyWrite {
        /// The keyspace.
        keyspace: &'static str,
    },
    /// A stored record does not decode.
    #[error("corrupt record in {keyspace} at key {key}: {reason}")]
    Corrupt {
        /// Keyspace.
        keyspace: &'static str,
        /// Key, hex or readable.
        key: String,
        /// Decoder message.
        reason: String,
    },
    /// A record could not be encoded (a bug).
    #[error("cannot encode record: {0}")]
    Encode(String),
    /// A range does not follow the checkpoint.
    #[error(
        "chain {chain:?}: blocks must follow block {checkpoint} contiguously, got block {start}"
    )]
    NotContiguous {
        /// Chain.
        chain: ChainId,
        /// Last block written.
        checkpoint: BlockNumber,
        /// First block offered.
        start: BlockNumber,
    },
    /// A transfer's block or chain lies outside the range being written (a bug in a source).
    #[error("transfer {key:?} lies outside the range being written")]
    TransferOutsideRange {
        /// The transfer.
        key: TransferKey,
    },
    /// Two transfers of a range written in bulk have the same key (a bug in a source).
    #[error("transfer key {key} appears twice in a bulk range")]
    DuplicateTransfer {
        /// The key, hex.
        key: String,
    },
    /// A chain name was registered with another kind.
    #[error("chain {chain:?} is stored as {stored:?}, not {requested:?}")]
    ChainKindMismatch {
        /// Name.
        chain: String,
        /// Kind in the store.
        stored: ChainKind,
        /// Kind asked for.
        requested: ChainKind,
    },
    /// All 65 535 chain ids are taken.
    #[error("too many chains in one store")]
    TooManyChains,
}

impl StoreError {
    /// Whether retrying the same operation may succeed (only transient I/O).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::KeyspaceIo { .. })
    }

    /// Whether another process holds the store (retrying after it finishes may succeed).
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }

    /// Whether the store (or one of its files) is damaged.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Self::CorruptJournal(_) | Self::Corrupt { .. })
    }

    /// A file-system error on `path`: [`StoreError::ReadOnly`] for a read-only file system or
    /// a permission error, else [`StoreError::Fs`].
    pub(crate) fn fs(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        if is_read_only(&source) {
            Self::ReadOnly {
                path: path.to_path_buf(),
                source,
            }
        } else {
            Self::Fs {
                op,
                path: path.to_path_buf(),
                source,
            }
        }
    }

    /// The error of the storage engine failing to open the store in `path`, classified: a
    /// read-only file system or a permission error is [`StoreError::ReadOnly`], not damage.
    pub(crate) fn open(path: &Path, source: fjall::Error) -> Self {
        match source {
            fjall::Error::Io(e) if is_read_only(&e) => Self::ReadOnly {
                path: path.to_path_buf(),
                source: e,
            },
            source => Self::Open {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// Whether an I/O error means "this place cannot be written" (EROFS, EACCES, EPERM).
pub(crate) fn is_read_only(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_file_systems_and_permissions_are_not_corruption() {
        let p = Path::new("/data");
        for errno in [30, 13, 1] {
            // EROFS, EACCES, EPERM
            let e = StoreError::open(
                p,
                fjall::Error::Io(std::io::Error::from_raw_os_error(errno)),
            );
            assert!(matches!(e, StoreError::ReadOnly { .. }), "{errno}: {e}");
            assert!(e.to_string().contains("write access"), "{e}");
            assert!(!e.to_string().contains("corrupt"), "{e}");
            let e = StoreError::fs("create", p, std::io::Error::from_raw_os_error(errno));
            assert!(matches!(e, StoreError::ReadOnly { .. }), "{errno}: {e}");
        }
        let e = StoreError::open(p, fjall::Error::Io(std::io::Error::from_raw_os_error(5)));
        assert!(matches!(e, StoreError::Open { .. }), "{e}");
    }
}
