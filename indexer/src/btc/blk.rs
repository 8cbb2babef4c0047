//! Bitcoin Core `blk*.dat` files: `[magic][u32 LE length][block]` records, optionally
//! XOR-obfuscated with the 8-byte key of `blocks/xor.dat` (Bitcoin Core 28+), blocks in arrival
//! order rather than height order.
//!
//! [`BlkIndex::scan`] reads only the 80-byte headers and remembers where each block lies;
//! [`BlkIndex::best_chain`] orders them by following prev-hash links from the root (the genesis,
//! a block whose parent is not in the files, or the block after a checkpoint) to the highest
//! tip, skipping side branches; [`BlkIndex::read`] reads one block back.

use super::BtcError;
use bitcoin::{
    block::Header,
    consensus::Decodable,
    hashes::{Hash as _, sha256d},
};
use std::{
    collections::HashMap,
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

/// The mainnet magic bytes.
pub const MAINNET_MAGIC: [u8; 4] = [0xf9, 0xbe, 0xb4, 0xd9];

/// The mainnet genesis hash in internal byte order.
pub fn mainnet_genesis() -> [u8; 32] {
    bitcoin::constants::genesis_block(bitcoin::Network::Bitcoin)
        .block_hash()
        .to_byte_array()
}

/// Where a block lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkLocation {
    /// Index into [`BlkIndex::files`].
    pub file: usize,
    /// Byte offset of the block (after magic and length).
    pub offset: u64,
    /// Block length in bytes.
    pub len: u32,
}

/// One block of the best chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainEntry {
    /// Hash, internal byte order.
    pub hash: [u8; 32],
    /// Parent hash, internal byte order.
    pub prev: [u8; 32],
    /// Location.
    pub loc: BlkLocation,
}

/// The best chain found in the files: the block at height `first_height + i` is `blocks[i]`.
#[derive(Clone, Debug, Default)]
pub struct BestChain {
    /// Height of `blocks[0]`.
    pub first_height: u64,
    /// Blocks in height order.
    pub blocks: Vec<ChainEntry>,
    /// Blocks in the files that are not on this chain (side branches, other roots).
    pub skipped: usize,
}

impl BestChain {
    /// The entry at `height`.
    pub fn at(&self, height: u64) -> Option<&ChainEntry> {
        let i = usize::try_from(height.checked_sub(self.first_height)?).ok()?;
        self.blocks.get(i)
    }

    /// Height of the last block, if any.
    pub fn tip(&self) -> Option<u64> {
        let n = u64::try_from(self.blocks.len()).ok()?;
        (self.first_height + n).checked_sub(1)
    }
}

/// Headers and locations of every block in a set of blk files.
#[derive(Debug)]
pub struct BlkIndex {
    /// The files, in scan order.
    pub files: Vec<PathBuf>,
    xor: Option<[u8; 8]>,
    magic: [u8; 4],
    headers: HashMap<[u8; 32], ([u8; 32], BlkLocation)>,
    total_bytes: u64,
}

fn io_err(path: &Path, source: std::io::Error) -> BtcError {
    BtcError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads `blocks/xor.dat` of a blocks directory: `None` when absent or all zero.
pub fn read_xor_key(dir: &Path) -> Result<Option<[u8; 8]>, BtcError> {
    let p = dir.join("xor.dat");
    match std::fs::read(&p) {
        Ok(b) => {
            let key: [u8; 8] = b.as_slice().try_into().map_err(|_| BtcError::BadXorKey {
                path: p.clone(),
                len: b.len(),
            })?;
            Ok((key != [0; 8]).then_some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&p, e)),
    }
}

/// The `blk*.dat` files of a directory in numeric order.
pub fn list_blk_files(dir: &Path) -> Result<Vec<PathBuf>, BtcError> {
    let rd = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    let mut files = Vec::new();
    for e in rd {
        let e = e.map_err(|e| io_err(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(num) = name
            .strip_prefix("blk")
            .and_then(|r| r.strip_suffix(".dat"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            files.push((num, e.path()));
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(BtcError::NoBlkFiles {
            dir: dir.to_path_buf(),
        });
    }
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

/// XORs `buf`, read at byte `offset` of a file, with `key` (in place).
pub fn xor_at(buf: &mut [u8], offset: u64, key: &[u8; 8]) {
    let start = usize::try_from(offset % 8).unwrap_or(0);
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(start + i) % 8];
    }
}

struct Reader {
    f: std::io::BufReader<File>,
    path: PathBuf,
    xor: Option<[u8; 8]>,
}

impl Reader {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BtcError> {
        self.f
            .seek(SeekFrom::Start(offset))
            .map_err(|e| io_err(&self.path, e))?;
        self.f.read_exact(buf).map_err(|e| io_err(&self.path, e))?;
        if let Some(k) = &self.xor {
            xor_at(buf, offset, k);
        }
        Ok(())
    }
}

impl BlkIndex {
    /// Scans the headers of `files` (mainnet magic), de-obfuscating with `xor`.
    pub fn scan(files: Vec<PathBuf>, xor: Option<[u8; 8]>) -> Result<Self, BtcError> {
        Self::scan_with_magic(files, xor, MAINNET_MAGIC)
    }

    /// [`BlkIndex::scan`] for another network's magic.
    pub fn scan_with_magic(
        files: Vec<PathBuf>,
        xor: Option<[u8; 8]>,
        magic: [u8; 4],
    ) -> Result<Self, BtcError> {
        let mut idx = Self {
            files: Vec::new(),
            xor,
            magic,
            headers: HashMap::new(),
            total_bytes: 0,
        };
        for (i, path) in files.iter().enumerate() {
            idx.scan_file(i, path)?;
        }
        idx.files = files;
        Ok(idx)
    }

    fn scan_file(&mut self, file: usize, path: &Path) -> Result<(), BtcError> {
        let f = File::open(path).map_err(|e| io_err(path, e))?;
        let file_len = f.metadata().map_err(|e| io_err(path, e))?.len();
        let mut r = Reader {
            f: std::io::BufReader::with_capacity(1 << 16, f),
            path: path.to_path_buf(),
            xor: self.xor,
        };
        let mut pos = 0u64;
        let mut blocks = 0u64;
        while pos < file_len {
            let left = file_len - pos;
            if left < 8 {
                let mut rest = vec![0u8; usize::try_from(left).unwrap_or(0)];
                r.read_at(pos, &mut rest)?;
                if rest.iter().all(|b| *b == 0) {
                    break;
                }
                return Err(BtcError::Truncated {
                    file: path.to_path_buf(),
                    offset: pos,
                    message: format!("{left} bytes left, too short for a record header"),
                });
            }
            let mut head = [0u8; 8];
            r.read_at(pos, &mut head)?;
            if head[..4] == [0; 4] {
                // Bitcoin Core pre-allocates files with zeros: the rest is unused space.
                break;
            }
            if head[..4] != self.magic {
                return Err(BtcError::WrongMagic {
                    file: path.to_path_buf(),
                    offset: pos,
                    found: alloy_primitives::hex::encode(&head[..4]),
                    expected: alloy_primitives::hex::encode(self.magic),
                });
            }
            let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            let body = pos + 8;
            if len < 80 || body + u64::from(len) > file_len {
                return Err(BtcError::Truncated {
                    file: path.to_path_buf(),
                    offset: pos,
                    message: format!(
                        "record length {len} but {} bytes left in the file",
                        file_len - body
                    ),
                });
            }
            let mut hb = [0u8; 80];
            r.read_at(body, &mut hb)?;
            let header = Header::consensus_decode(&mut &hb[..]).map_err(|e| BtcError::Decode {
                what: format!("{} offset {body}", path.display()),
                message: e.to_string(),
            })?;
            let hash = sha256d::Hash::hash(&hb).to_byte_array();
            self.headers.insert(
                hash,
                (
                    header.prev_blockhash.to_byte_array(),
                    BlkLocation {
                        file,
                        offset: body,
                        len,
                    },
                ),
            );
            self.total_bytes += u64::from(len);
            blocks += 1;
            pos = body + u64::from(len);
        }
        if blocks == 0 {
            return Err(BtcError::EmptyBlkFile {
                file: path.to_path_buf(),
                bytes: file_len,
            });
        }
        Ok(())
    }

    /// Number of blocks found.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether no block was found.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Total block bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Where block `hash` lies.
    pub fn location(&self, hash: &[u8; 32]) -> Option<BlkLocation> {
        self.headers.get(hash).map(|(_, l)| *l)
    }

    /// Reads block bytes (de-obfuscated).
    pub fn read(&self, loc: BlkLocation) -> Result<Vec<u8>, BtcError> {
        let path = self.files.get(loc.file).ok_or_else(|| BtcError::Decode {
            what: format!("blk file #{}", loc.file),
            message: "no such file".into(),
        })?;
        let mut f = File::open(path).map_err(|e| io_err(path, e))?;
        f.seek(SeekFrom::Start(loc.offset))
            .map_err(|e| io_err(path, e))?;
        let mut buf = vec![0u8; usize::try_from(loc.len).unwrap_or(0)];
        f.read_exact(&mut buf).map_err(|e| io_err(path, e))?;
        if let Some(k) = &self.xor {
            xor_at(&mut buf, loc.offset, k);
        }
        Ok(buf)
    }

    /// A description of a block's place for errors (`file offset N`).
    pub fn describe(&self, loc: BlkLocation) -> String {
        format!(
            "{} offset {}",
            self.files
                .get(loc.file)
                .map_or_else(|| "?".to_owned(), |p| p.display().to_string()),
            loc.offset
        )
    }

    /// Distance of every block from its root (a block whose parent is not in the files).
    fn depths(&self) -> HashMap<[u8; 32], u64> {
        let mut depth: HashMap<[u8; 32], u64> = HashMap::with_capacity(self.headers.len());
        let mut stack = Vec::new();
        for h in self.headers.keys() {
            let mut cur = *h;
            // Walk up to a block of known depth or a root, then assign on the way back.
            let base = loop {
                if let Some(d) = depth.get(&cur) {
                    break Some(*d);
                }
                stack.push(cur);
                match self.headers.get(&cur) {
                    Some((prev, _)) if self.headers.contains_key(prev) => cur = *prev,
                    _ => break None,
                }
            };
            let mut d = base.map_or(0, |b| b + 1);
            while let Some(x) = stack.pop() {
                depth.insert(x, d);
                d += 1;
            }
        }
        depth
    }

    /// The best chain: from the root of the highest tip to that tip.
    ///
    /// The height of the root comes from, in order: `known` (a block hash at a known height,
    /// e.g. the store's checkpoint, when it is in the files), the parent being all zeros
    /// (genesis, height 0) or the mainnet genesis (height 1), `start_height`, and the BIP34
    /// height in the root's coinbase.
    pub fn best_chain(
        &self,
        known: Option<([u8; 32], u64)>,
        start_height: Option<u64>,
    ) -> Result<BestChain, BtcError> {
        let depth = self.depths();
        let Some((tip, _)) = depth
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
        else {
            return Ok(BestChain::default());
        };
        let mut blocks = Vec::new();
        let mut cur = *tip;
        while let Some((prev, loc)) = self.headers.get(&cur) {
            blocks.push(ChainEntry {
                hash: cur,
                prev: *prev,
                loc: *loc,
            });
            cur = *prev;
        }
        blocks.reverse();
        let skipped = self.headers.len() - blocks.len();
        let root = blocks[0];
        let first_height = if let Some(h) = known.and_then(|(hash, height)| {
            let d = depth.get(&hash)?;
            // Only when the known block is on this chain's root path.
            let i = usize::try_from(*d).ok()?;
            (blocks.get(i)?.hash == hash).then(|| height.checked_sub(*d))?
        }) {
            h
        } else if root.prev == [0; 32] {
            0
        } else if root.prev == mainnet_genesis() {
            1
        } else if let Some(h) = start_height {
            h
        } else {
            let bytes = self.read(root.loc)?;
            let block = super::decode::parse_block(&bytes, &|| self.describe(root.loc))?;
            block
                .bip34_block_height()
                .map_err(|_| BtcError::UnknownStartHeight {
                    hash: bitcoin::BlockHash::from_byte_array(root.hash).to_string(),
                })?
        };
        Ok(BestChain {
            first_height,
            blocks,
            skipped,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests only
mod tests {
    use super::*;

    const BLOCKS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/btc/blocks1-256.dat"
    );

    #[test]
    fn scans_blocks_1_to_255() {
        let idx = BlkIndex::scan(vec![BLOCKS.into()], None).unwrap();
        assert_eq!(idx.len(), 255);
        let chain = idx.best_chain(None, None).unwrap();
        assert_eq!(chain.first_height, 1);
        assert_eq!(chain.tip(), Some(255));
        assert_eq!(chain.skipped, 0);
        let h255 = bitcoin::BlockHash::from_byte_array(chain.at(255).unwrap().hash);
        assert_eq!(
            h255.to_string(),
            "00000000d0a75c861fabf9ff7b92022f60e4afeed9331fe5aa073d8e4706fe3c"
        );
    }

    #[test]
    fn refuses_an_empty_blk_file() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [("blk00000.dat", 0usize), ("blk00001.dat", 4096)] {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![0u8; bytes]).unwrap();
            let err = BlkIndex::scan(vec![p.clone()], None).unwrap_err();
            assert!(
                matches!(&err, BtcError::EmptyBlkFile { file, bytes: b } if *file == p && *b == u64::try_from(bytes).unwrap()),
                "{err:?}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn xor_roundtrip() {
        let key = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut b = vec![0u8; 20];
        xor_at(&mut b, 5, &key);
        assert_eq!(&b[..4], &[6, 7, 8, 1]);
        xor_at(&mut b, 5, &key);
        assert!(b.iter().all(|x| *x == 0));
    }
}
