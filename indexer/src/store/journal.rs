//! A read-only check of the storage engine's journals, run before the engine opens them.
//!
//! fjall 3.1 replays its journals (`<id>.jnl` in the data dir) on every open and, when an
//! entry does not decode (an unknown tag, a bad trailer, a length past the end of the file), it
//! **truncates the journal there without an error**: it cannot tell a batch cut short by a
//! crash from a damaged journal, and it has no recovery-mode option (`RecoveryMode` has one
//! variant, `TolerateCorruptTail`, not read by 3.1). Bytes flipped in the middle of a journal
//! so silently rolled a store back by thousands of transfers.
//!
//! This module reads the same format (a batch is a start entry with its item count and
//! sequence number, the items, and an end entry with the xxh3 checksum of the items' bytes and
//! the trailer `FJL\x03`) and classifies what follows the last intact batch of each file:
//!
//! * nothing, or only zeros (a new journal is pre-allocated with zeros): clean;
//! * anything else in the active (newest) journal after a writer that did not close the store
//!   (a crash): a torn tail, dropped by the engine as before;
//! * anything else: damage. The store is not opened, nothing is written, and the error names
//!   the file, the byte offset and the last intact checkpoints (`paytrace store check`,
//!   `paytrace store repair`).

use super::error::StoreError;
use crate::model::BlockRef;
use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufReader, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

/// The trailer of a batch's end entry.
const MAGIC: [u8; 4] = [b'F', b'J', b'L', 3];

const TAG_START: u8 = 1;
const TAG_ITEM: u8 = 2;
const TAG_END: u8 = 3;
const TAG_CLEAR: u8 = 4;

/// What was found in one journal file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalFile {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Complete batches with a valid checksum.
    pub batches: u64,
    /// The end of the last intact batch (the byte offset a repair truncates to).
    pub intact_bytes: u64,
    /// The sequence number of the last intact batch.
    pub last_seqno: Option<u64>,
    /// Checkpoints (chain id → block) written by the intact batches, when the store's
    /// keyspace ids are known (see [`KeyspaceIds`]).
    pub checkpoints: BTreeMap<u16, u64>,
    /// What follows the intact batches, when it is not empty or zeros.
    pub damage: Option<Damage>,
}

/// Bytes after the last intact batch of a journal that are neither empty nor zeros.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset where the undecodable part starts.
    pub offset: u64,
    /// Bytes from there to the end of the file.
    pub bytes: u64,
    /// What does not decode.
    pub reason: String,
    /// Whether this is the tail a crashed writer leaves (tolerated) rather than damage.
    pub torn_tail: bool,
}

/// The engine ids of the keyspaces whose journal entries the check decodes (written next to
/// the store by write opens, see [`KeyspaceIds::FILE`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyspaceIds {
    /// Id of `checkpoints`.
    pub checkpoints: u64,
}

impl KeyspaceIds {
    /// The file in the data dir that holds them.
    pub const FILE: &'static str = "paytrace-keyspaces.json";

    /// Reads them (`None` when the file is absent or unreadable: checkpoints are then not
    /// decoded, nothing else changes).
    pub fn read(dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(dir.join(Self::FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The journal files of `dir`, oldest first (the last one is the active journal).
pub fn journal_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let io = |source| StoreError::Fs {
        op: "list journals",
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((id, entry.path()));
    }
    out.sort();
    Ok(out.into_iter().map(|(_, p)| p).collect())
}

/// Checks every journal of `dir`. `writer_crashed`: the last writer did not close the store,
/// so undecodable bytes at the end of the active journal are a torn tail, not damage.
pub fn check_journals(dir: &Path, writer_crashed: bool) -> Result<Vec<JournalFile>, StoreError> {
    let files = journal_files(dir)?;
    let ids = KeyspaceIds::read(dir);
    let n = files.len();
    let mut out = Vec::with_capacity(n);
    for (i, path) in files.into_iter().enumerate() {
        let active = i + 1 == n;
        out.push(check_file(&path, active && writer_crashed, ids)?);
    }
    Ok(out)
}

/// The first damaged file of a check, if any (torn tails excluded).
pub fn first_damage(files: &[JournalFile]) -> Option<(&JournalFile, &Damage)> {
    files
        .iter()
        .find_map(|f| f.damage.as_ref().filter(|d| !d.torn_tail).map(|d| (f, d)))
}

/// The checkpoints of the intact part of the journals up to the first damage, merged over the
/// files in order (later batches win).
pub fn intact_checkpoints(files: &[JournalFile]) -> BTreeMap<u16, u64> {
    let mut out = BTreeMap::new();
    for f in files {
        out.extend(f.checkpoints.iter().map(|(k, v)| (*k, *v)));
        if f.damage.as_ref().is_some_and(|d| !d.torn_tail) {
            break;
        }
    }
    out
}

/// A reader that counts its position.
struct Counting<R> {
    inner: R,
    pos: u64,
}

impl<R: Read> Counting<R> {
    /// Reads exactly `buf.len()` bytes (an `UnexpectedEof` error when the file ends first).
    fn fill(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }
}

/// Why an entry did not decode.
enum Bad {
    /// The file ends inside the entry (or batch).
    Eof,
    /// A field has an impossible value.
    Invalid(String),
    /// Reading failed.
    Io(std::io::Error),
}

impl From<std::io::Error> for Bad {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Self::Eof
        } else {
            Self::Io(e)
        }
    }
}

fn check_file(
    path: &Path,
    crash_tolerant: bool,
    ids: Option<KeyspaceIds>,
) -> Result<JournalFile, StoreError> {
    let fs_err = |source| StoreError::Fs {
        op: "read journal",
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(fs_err)?;
    let bytes = file.metadata().map_err(fs_err)?.len();
    let mut r = Counting {
        inner: BufReader::with_capacity(1 << 16, file),
        pos: 0,
    };
    let mut report = JournalFile {
        path: path.to_path_buf(),
        bytes,
        batches: 0,
        intact_bytes: 0,
        last_seqno: None,
        checkpoints: BTreeMap::new(),
        damage: None,
    };
    let mut pending: Vec<(u16, u64)> = Vec::new();
    loop {
        let start = r.pos;
        if start >= bytes {
            break;
        }
        pending.clear();
        match read_batch(&mut r, ids, &mut pending) {
            Ok(seqno) => {
                report.batches += 1;
                report.intact_bytes = r.pos;
                report.last_seqno = Some(seqno);
                report.checkpoints.extend(pending.iter().copied());
            }
            Err(Bad::Io(e)) => return Err(fs_err(e)),
            Err(bad) => {
                let reason = match bad {
                    Bad::Eof => "the file ends inside a batch".to_owned(),
                    Bad::Invalid(s) => s,
                    Bad::Io(_) => String::new(),
                };
                let rest = bytes - start;
                if only_zeros(path, start).map_err(fs_err)? {
                    break;
                }
                report.damage = Some(Damage {
                    offset: start,
                    bytes: rest,
                    reason,
                    torn_tail: crash_tolerant,
                });
                break;
            }
        }
    }
    Ok(report)
}

/// Reads one batch; returns its sequence number. Checkpoint writes it carries go to `cps`.
fn read_batch<R: Read>(
    r: &mut Counting<R>,
    ids: Option<KeyspaceIds>,
    cps: &mut Vec<(u16, u64)>,
) -> Result<u64, Bad> {
    let mut tag = [0u8; 1];
    r.fill(&mut tag)?;
    if tag[0] != TAG_START {
        return Err(Bad::Invalid(format!(
            "expected a batch start, found tag {}",
            tag[0]
        )));
    }
    let mut head = [0u8; 12];
    r.fill(&mut head)?;
    let count = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&head[4..]);
    let seqno = u64::from_le_bytes(seq);
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = Vec::new();
    for _ in 0..count {
        r.fill(&mut tag)?;
        buf.clear();
        buf.push(tag[0]);
        match tag[0] {
            TAG_ITEM => {
                let mut h = [0u8; 1 + 1 + 8 + 2 + 4 + 4];
                r.fill(&mut h)?;
                if !matches!(h[0], 0 | 1 | 2 | 4) {
                    return Err(Bad::Invalid(format!("unknown value type {}", h[0])));
                }
                if h[1] > 1 {
                    return Err(Bad::Invalid(format!("unknown compression {}", h[1])));
                }
                let ks = u64::from_le_bytes(h[2..10].try_into().unwrap_or_default());
                let key_len = usize::from(u16::from_le_bytes([h[10], h[11]]));
                let value_len = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
                let disk_len = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
                if h[1] == 0 && value_len != disk_len {
                    return Err(Bad::Invalid(format!(
                        "value length {value_len} differs from its stored length {disk_len}"
                    )));
                }
                let disk_len = usize::try_from(disk_len)
                    .map_err(|_| Bad::Invalid("value too large".to_owned()))?;
                buf.extend_from_slice(&h);
                let at = buf.len();
                buf.resize(at + key_len + disk_len, 0);
                r.fill(&mut buf[at..])?;
                if let Some(ids) = ids
                    && ks == ids.checkpoints
                    && h[0] == 0
                    && key_len == 2
                    && h[1] == 0
                {
                    let key = u16::from_be_bytes([buf[at], buf[at + 1]]);
                    if let Ok(b) = postcard::from_bytes::<BlockRef>(&buf[at + 2..]) {
                        cps.push((key, b.number.0));
                    }
                }
            }
            TAG_CLEAR => {
                let mut id = [0u8; 8];
                r.fill(&mut id)?;
                buf.extend_from_slice(&id);
            }
            t => {
                return Err(Bad::Invalid(format!(
                    "expected a batch item, found tag {t}"
                )));
            }
        }
        hasher.update(&buf);
    }
    r.fill(&mut tag)?;
    if tag[0] != TAG_END {
        return Err(Bad::Invalid(format!(
            "expected the end of a batch of {count} items, found tag {}",
            tag[0]
        )));
    }
    let mut end = [0u8; 12];
    r.fill(&mut end)?;
    let expected = u64::from_le_bytes(end[..8].try_into().unwrap_or_default());
    if end[8..] != MAGIC {
        return Err(Bad::Invalid("bad batch trailer".to_owned()));
    }
    let got = hasher.digest();
    if got != expected {
        return Err(Bad::Invalid(format!(
            "checksum mismatch (stored {expected:016x}, computed {got:016x})"
        )));
    }
    Ok(seqno)
}

/// Whether `path` holds only zero bytes from `from` to its end (holes are skipped).
fn only_zeros(path: &Path, from: u64) -> std::io::Result<bool> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let mut pos = from;
    let mut buf = vec![0u8; 1 << 16];
    while pos < len {
        // Skip a hole of the pre-allocated file without reading it.
        match rustix::fs::seek(&f, rustix::fs::SeekFrom::Data(pos)) {
            Ok(p) => pos = p,
            Err(e) if e == rustix::io::Errno::NXIO => return Ok(true),
            Err(_) => {}
        }
        if pos >= len {
            break;
        }
        f.seek(SeekFrom::Start(pos))?;
        let want = usize::try_from((len - pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = f.read(&mut buf[..want])?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            return Ok(false);
        }
        pos += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(ks: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut b = vec![TAG_ITEM, 0, 0];
        b.extend_from_slice(&ks.to_le_bytes());
        b.extend_from_slice(&u16::try_from(key.len()).unwrap().to_le_bytes());
        let vl = u32::try_from(value.len()).unwrap().to_le_bytes();
        b.extend_from_slice(&vl);
        b.extend_from_slice(&vl);
        b.extend_from_slice(key);
        b.extend_from_slice(value);
        b
    }

    fn batch(seqno: u64, items: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![TAG_START];
        b.extend_from_slice(&u32::try_from(items.len()).unwrap().to_le_bytes());
        b.extend_from_slice(&seqno.to_le_bytes());
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for i in items {
            b.extend_from_slice(i);
            h.update(i);
        }
        b.push(TAG_END);
        b.extend_from_slice(&h.digest().to_le_bytes());
        b.extend_from_slice(&MAGIC);
        b
    }

    fn journal(dir: &Path, bytes: &[u8]) -> PathBuf {
        let p = dir.join("1.jnl");
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn clean_journal_with_zero_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = batch(1, &[item(3, b"k", b"v")]);
        b.extend(batch(2, &[item(3, b"k2", b"v2"), item(4, b"x", b"")]));
        let intact = b.len() as u64;
        b.extend(vec![0u8; 10_000]);
        journal(dir.path(), &b);
        let r = check_journals(dir.path(), false).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].batches, 2);
        assert_eq!(r[0].intact_bytes, intact);
        assert_eq!(r[0].last_seqno, Some(2));
        assert_eq!(r[0].damage, None);
    }

    #[test]
    fn flipped_value_byte_is_a_checksum_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let first = batch(1, &[item(3, b"k", b"value")]);
        let mut b = first.clone();
        b.extend(batch(2, &[item(3, b"k2", b"value2")]));
        let at = b.len() - 20;
        b[at] ^= 0xff;
        journal(dir.path(), &b);
        let r = check_journals(dir.path(), false).unwrap();
        let d = r[0].damage.as_ref().unwrap();
        assert_eq!(d.offset, first.len() as u64);
        assert!(d.reason.contains("checksum"), "{}", d.reason);
        assert!(!d.torn_tail);
        assert!(first_damage(&r).is_some());
    }

    #[test]
    fn flipped_tag_and_inflated_length_are_damage_unless_a_writer_crashed() {
        for flip in [0usize, 20] {
            let dir = tempfile::tempdir().unwrap();
            let first = batch(1, &[item(3, b"k", b"value")]);
            let mut b = first.clone();
            b.extend(batch(2, &[item(3, b"k2", b"value2")]));
            b.extend(batch(3, &[item(3, b"k3", b"value3")]));
            // 0: the start tag of batch 2; 20: inside the lengths of its item
            b[first.len() + flip] = 0xee;
            b[first.len() + flip + 1] = 0xee;
            journal(dir.path(), &b);
            let r = check_journals(dir.path(), false).unwrap();
            let d = r[0].damage.as_ref().unwrap();
            assert_eq!(d.offset, first.len() as u64, "flip at {flip}");
            assert!(!d.torn_tail);
            let r = check_journals(dir.path(), true).unwrap();
            assert!(r[0].damage.as_ref().unwrap().torn_tail);
            assert!(first_damage(&r).is_none());
        }
    }

    #[test]
    fn checkpoints_of_intact_batches_are_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let block = BlockRef {
            number: crate::model::BlockNumber(168),
            hash: Default::default(),
            parent: Default::default(),
            time: crate::model::Timestamp(0),
        };
        let v = postcard::to_allocvec(&block).unwrap();
        let mut b = batch(1, &[item(9, &1u16.to_be_bytes(), &v)]);
        b.extend(batch(2, &[item(9, &1u16.to_be_bytes(), b"garbage")]));
        let n = b.len();
        b[n - 14] ^= 1;
        journal(dir.path(), &b);
        std::fs::write(
            dir.path().join(KeyspaceIds::FILE),
            serde_json::to_vec(&KeyspaceIds { checkpoints: 9 }).unwrap(),
        )
        .unwrap();
        let r = check_journals(dir.path(), false).unwrap();
        assert_eq!(intact_checkpoints(&r), BTreeMap::from([(1, 168)]));
    }
}
