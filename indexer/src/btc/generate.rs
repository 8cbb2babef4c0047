//! A generator of realistic synthetic Bitcoin chains (for tests and benchmarks): coinbases,
//! payments with 1–3 inputs (mostly spending old outputs, so the UTXO set grows) and a payment
//! plus change output, a mix of P2PKH, P2WPKH, P2SH,
//! P2WSH, P2TR and P2PK outputs, some OP_RETURN outputs, and in-block spend chains. Proof of
//! work is not valid (paytrace does not check it); merkle roots are.
//!
//! [`write_blk_files`] writes blocks in Bitcoin Core's blk*.dat framing, optionally XOR
//! obfuscated with an xor.dat key.

use super::blk::{MAINNET_MAGIC, xor_at};
use bitcoin::{
    Amount, Block, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Txid, Witness,
    absolute::LockTime,
    block::{Header, Version},
    consensus::Encodable,
    hashes::Hash as _,
    transaction,
};
use std::{io::Write, path::Path};

/// A small deterministic PRNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        for c in b.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            c.copy_from_slice(&r[..c.len()]);
        }
        b
    }
}

/// State of a generated chain; `Clone` to branch off a side chain.
#[derive(Clone, Debug)]
pub struct ChainGen {
    rng: Rng,
    pool: Vec<(OutPoint, u64, bool)>,
    /// Height of the next block.
    pub height: u64,
    /// Hash of the last block (all zeros before the genesis).
    pub prev: BlockHash,
    time: u32,
    /// Transactions per block (including the coinbase).
    pub txs_per_block: usize,
}

impl ChainGen {
    /// A new chain; the first block is a genesis (parent all zeros, height 0).
    pub fn new(seed: u64, txs_per_block: usize) -> Self {
        Self {
            rng: Rng::new(seed),
            pool: Vec::new(),
            height: 0,
            prev: BlockHash::all_zeros(),
            time: 1_600_000_000,
            txs_per_block: txs_per_block.max(1),
        }
    }

    fn script(&mut self) -> ScriptBuf {
        let k = self.rng.below(100);
        let mut s = Vec::with_capacity(40);
        match k {
            0..=29 => {
                s.extend_from_slice(&[0x76, 0xa9, 0x14]);
                s.extend_from_slice(&self.rng.bytes::<20>());
                s.extend_from_slice(&[0x88, 0xac]);
            }
            30..=64 => {
                s.extend_from_slice(&[0x00, 0x14]);
                s.extend_from_slice(&self.rng.bytes::<20>());
            }
            65..=79 => {
                s.extend_from_slice(&[0xa9, 0x14]);
                s.extend_from_slice(&self.rng.bytes::<20>());
                s.push(0x87);
            }
            80..=87 => {
                s.extend_from_slice(&[0x51, 0x20]);
                s.extend_from_slice(&self.rng.bytes::<32>());
            }
            88..=95 => {
                s.extend_from_slice(&[0x00, 0x20]);
                s.extend_from_slice(&self.rng.bytes::<32>());
            }
            _ => {
                s.push(0x21);
                s.push(0x02);
                s.extend_from_slice(&self.rng.bytes::<32>());
                s.push(0xac);
            }
        }
        ScriptBuf::from_bytes(s)
    }

    fn input(&mut self, op: OutPoint, segwit: bool) -> TxIn {
        let sig = self.rng.bytes::<72>();
        let key = self.rng.bytes::<33>();
        let (script_sig, witness) = if segwit {
            (ScriptBuf::new(), Witness::from_slice(&[&sig[..], &key[..]]))
        } else {
            let mut s = vec![72u8];
            s.extend_from_slice(&sig);
            s.push(33);
            s.extend_from_slice(&key);
            (ScriptBuf::from_bytes(s), Witness::new())
        };
        TxIn {
            previous_output: op,
            script_sig,
            sequence: Sequence::MAX,
            witness,
        }
    }

    fn push_outputs(&mut self, tx: &Transaction) {
        let txid = tx.compute_txid();
        for (i, o) in tx.output.iter().enumerate() {
            if !o.script_pubkey.is_op_return() && o.value.to_sat() > 0 {
                let segwit = o.script_pubkey.is_witness_program();
                self.pool.push((
                    OutPoint::new(txid, u32::try_from(i).unwrap_or(0)),
                    o.value.to_sat(),
                    segwit,
                ));
            }
        }
    }

    /// The next block: a coinbase and `txs_per_block − 1` payments spending random unspent
    /// outputs (including outputs of earlier transactions of the same block).
    pub fn next_block(&mut self) -> Block {
        let height = self.height;
        let mut txs = Vec::with_capacity(self.txs_per_block);
        let mut fees = 0u64;
        let mut payments = Vec::new();
        for _ in 1..self.txs_per_block {
            if self.pool.is_empty() {
                break;
            }
            // 1, 2 or 3 inputs (60/30/10 %), so the UTXO set grows by about half an output
            // per transaction and most inputs spend old outputs, as on the real chain.
            let want = match self.rng.below(10) {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            let n_in = want.min(self.pool.len() as u64);
            let mut input = Vec::new();
            let mut total = 0u64;
            for _ in 0..n_in {
                let i = usize::try_from(self.rng.below(self.pool.len() as u64)).unwrap_or(0);
                let (op, v, segwit) = self.pool.swap_remove(i);
                total += v;
                input.push(self.input(op, segwit));
            }
            let fee = 1_000.min(total);
            let spend = total - fee;
            let pay = if spend > 1 {
                1 + self.rng.below(spend - 1)
            } else {
                spend
            };
            let mut output = vec![TxOut {
                value: Amount::from_sat(pay),
                script_pubkey: self.script(),
            }];
            if spend > pay {
                output.push(TxOut {
                    value: Amount::from_sat(spend - pay),
                    script_pubkey: self.script(),
                });
            }
            if self.rng.below(20) == 0 {
                let mut s = vec![0x6a, 0x14];
                s.extend_from_slice(&self.rng.bytes::<20>());
                output.push(TxOut {
                    value: Amount::ZERO,
                    script_pubkey: ScriptBuf::from_bytes(s),
                });
            }
            let tx = Transaction {
                version: transaction::Version::TWO,
                lock_time: LockTime::ZERO,
                input,
                output,
            };
            fees += fee;
            // In-block chains: outputs are spendable by the next transactions.
            self.push_outputs(&tx);
            payments.push(tx);
        }
        let coinbase = coinbase(height, self.script(), 50 * 100_000_000 + fees);
        self.push_outputs(&coinbase);
        txs.push(coinbase);
        txs.extend(payments);
        let mut block = Block {
            header: Header {
                version: Version::TWO,
                prev_blockhash: self.prev,
                merkle_root: TxMerkleNode::all_zeros(),
                time: self.time,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: u32::try_from(self.rng.below(u64::from(u32::MAX))).unwrap_or(0),
            },
            txdata: txs,
        };
        if let Some(root) = block.compute_merkle_root() {
            block.header.merkle_root = root;
        }
        self.prev = block.block_hash();
        self.height += 1;
        self.time += 600;
        block
    }

    /// `n` more blocks.
    pub fn blocks(&mut self, n: usize) -> Vec<Block> {
        (0..n).map(|_| self.next_block()).collect()
    }

    /// Unspent outputs the generator knows.
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }
}

/// A coinbase transaction of block `height` paying `value` satoshi to `script_pubkey` (the
/// height pushed in its input script, so every block's coinbase has its own txid).
pub fn coinbase(height: u64, script_pubkey: ScriptBuf, value: u64) -> Transaction {
    let mut push = vec![0x08];
    push.extend_from_slice(&height.to_le_bytes());
    Transaction {
        version: transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(push),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(value),
            script_pubkey,
        }],
    }
}

/// The txid of a generated transaction (display helper for tests).
pub fn txid(tx: &Transaction) -> Txid {
    tx.compute_txid()
}

/// Serializes a block.
pub fn block_bytes(b: &Block) -> Vec<u8> {
    let mut v = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = b.consensus_encode(&mut v);
    v
}

/// Writes `blocks` (in the given order) as `blk00000.dat`, `blk00001.dat`, ... of at most
/// `max_file_bytes` each, XOR-obfuscated with `xor` (and its `xor.dat`) when given.
pub fn write_blk_files(
    dir: &Path,
    blocks: &[Block],
    xor: Option<[u8; 8]>,
    max_file_bytes: u64,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    if let Some(k) = xor {
        std::fs::write(dir.join("xor.dat"), k)?;
    }
    let mut files = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let flush = |buf: &mut Vec<u8>, files: &mut Vec<std::path::PathBuf>| -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(k) = &xor {
            xor_at(buf, 0, k);
        }
        let p = dir.join(format!("blk{:05}.dat", files.len()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p)?);
        f.write_all(buf)?;
        f.flush()?;
        files.push(p);
        buf.clear();
        Ok(())
    };
    for b in blocks {
        let bytes = block_bytes(b);
        if !buf.is_empty() && (buf.len() + bytes.len() + 8) as u64 > max_file_bytes {
            flush(&mut buf, &mut files)?;
        }
        buf.extend_from_slice(&MAINNET_MAGIC);
        buf.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(0).to_le_bytes());
        buf.extend_from_slice(&bytes);
    }
    flush(&mut buf, &mut files)?;
    Ok(files)
}
