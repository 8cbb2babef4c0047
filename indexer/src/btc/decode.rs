//! Decoding blocks (bitcoin crate 0.32) into the compact form the UTXO resolver needs.

use super::{
    BtcError,
    script::{ScriptKind, classify},
};
use bitcoin::{Block, ScriptBuf, consensus::Decodable, hashes::Hash as _};

/// One output of a decoded transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedOutput {
    /// Value in satoshis.
    pub value: u64,
    /// Script type.
    pub kind: ScriptKind,
    /// Store id of the receiving script (`None` for OP_RETURN).
    pub id: Option<[u8; 32]>,
    /// The script the id hashes (for display), or the OP_RETURN script.
    pub script: ScriptBuf,
}

/// One decoded transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedTx {
    /// Txid in internal byte order.
    pub txid: [u8; 32],
    /// Whether this is the coinbase.
    pub coinbase: bool,
    /// Whether it carries witness data.
    pub segwit: bool,
    /// Spent outpoints (txid internal order, vout); empty for the coinbase.
    pub inputs: Vec<([u8; 32], u32)>,
    /// Outputs in order.
    pub outputs: Vec<DecodedOutput>,
}

/// One decoded block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBlock {
    /// Height.
    pub height: u64,
    /// Block hash, internal byte order.
    pub hash: [u8; 32],
    /// Parent hash, internal byte order.
    pub prev: [u8; 32],
    /// Header time.
    pub time: u32,
    /// Serialized size in bytes.
    pub size: usize,
    /// Transactions in block order.
    pub txs: Vec<DecodedTx>,
}

impl DecodedBlock {
    /// Number of non-coinbase inputs.
    pub fn inputs(&self) -> usize {
        self.txs.iter().map(|t| t.inputs.len()).sum()
    }
}

/// Parses a serialized block. `what` names it for errors (file and offset, or block hash).
pub fn parse_block(bytes: &[u8], what: &dyn Fn() -> String) -> Result<Block, BtcError> {
    let mut r = bytes;
    let block = Block::consensus_decode(&mut r).map_err(|e| BtcError::Decode {
        what: what(),
        message: e.to_string(),
    })?;
    if !r.is_empty() {
        return Err(BtcError::Decode {
            what: what(),
            message: format!("{} trailing bytes after the block", r.len()),
        });
    }
    Ok(block)
}

/// Decodes a parsed block at `height` (computes txids and classifies every output).
pub fn decode_block(block: &Block, height: u64, size: usize) -> DecodedBlock {
    let txs = block
        .txdata
        .iter()
        .map(|tx| {
            let coinbase = tx.is_coinbase();
            DecodedTx {
                txid: tx.compute_txid().to_byte_array(),
                coinbase,
                segwit: tx.input.iter().any(|i| !i.witness.is_empty()),
                inputs: if coinbase {
                    Vec::new()
                } else {
                    tx.input
                        .iter()
                        .map(|i| {
                            (
                                i.previous_output.txid.to_byte_array(),
                                i.previous_output.vout,
                            )
                        })
                        .collect()
                },
                outputs: tx
                    .output
                    .iter()
                    .map(|o| {
                        let c = classify(&o.script_pubkey);
                        DecodedOutput {
                            value: o.value.to_sat(),
                            kind: c.kind,
                            id: c.id,
                            script: c.canonical.unwrap_or_else(|| o.script_pubkey.clone()),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    DecodedBlock {
        height,
        hash: block.block_hash().to_byte_array(),
        prev: block.header.prev_blockhash.to_byte_array(),
        time: block.header.time,
        size,
        txs,
    }
}

/// Parses and decodes in one step.
pub fn decode_bytes(
    bytes: &[u8],
    height: u64,
    what: &dyn Fn() -> String,
) -> Result<DecodedBlock, BtcError> {
    let block = parse_block(bytes, what)?;
    Ok(decode_block(&block, height, bytes.len()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests only
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn data(name: &str) -> Vec<u8> {
        std::fs::read(
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/btc/").to_owned() + name,
        )
        .unwrap()
    }

    struct Counts {
        txs: usize,
        segwit: usize,
        inputs: usize,
        same_block: usize,
        outputs: usize,
        coinbase_value: u64,
        max_inputs: usize,
        kinds: BTreeMap<&'static str, usize>,
        height: u64,
        hash: String,
    }

    fn counts(name: &str) -> Counts {
        let bytes = data(name);
        let block = parse_block(&bytes, &|| name.to_owned()).unwrap();
        assert!(block.check_merkle_root());
        let height = block.bip34_block_height().unwrap();
        let d = decode_block(&block, height, bytes.len());
        let ids: HashSet<[u8; 32]> = d.txs.iter().map(|t| t.txid).collect();
        let mut kinds = BTreeMap::new();
        for t in &d.txs {
            for o in &t.outputs {
                *kinds.entry(o.kind.as_str()).or_default() += 1;
            }
        }
        Counts {
            txs: d.txs.len(),
            segwit: d.txs.iter().filter(|t| t.segwit).count(),
            inputs: d.inputs(),
            same_block: d
                .txs
                .iter()
                .flat_map(|t| &t.inputs)
                .filter(|(id, _)| ids.contains(id))
                .count(),
            outputs: d.txs.iter().map(|t| t.outputs.len()).sum(),
            coinbase_value: d.txs[0].outputs.iter().map(|o| o.value).sum(),
            max_inputs: d.txs.iter().map(|t| t.inputs.len()).max().unwrap(),
            kinds,
            height,
            hash: bitcoin::BlockHash::from_byte_array(d.hash).to_string(),
        }
    }

    #[test]
    fn block_540107_counts() {
        let c = counts("block-540107.raw");
        assert_eq!(c.height, 540_107);
        assert_eq!(
            c.hash,
            "00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab"
        );
        assert_eq!(
            (c.txs, c.segwit, c.inputs, c.same_block),
            (230, 104, 7032, 35)
        );
        assert_eq!(
            (c.outputs, c.coinbase_value, c.max_inputs),
            (472, 1_254_491_058, 200)
        );
        assert_eq!(c.kinds["p2pkh"], 266);
        assert_eq!(c.kinds["p2sh"], 175);
        assert_eq!(c.kinds["p2wpkh"], 15);
        assert_eq!(c.kinds["op_return"], 15);
        let other: usize = c
            .kinds
            .iter()
            .filter(|(k, _)| !["p2pkh", "p2sh", "p2wpkh", "op_return"].contains(k))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(other, 1);
    }

    #[test]
    fn block_574200_counts() {
        let c = counts("block-574200.raw");
        assert_eq!(c.height, 574_200);
        assert_eq!(
            (c.txs, c.segwit, c.inputs, c.same_block),
            (3315, 1341, 5054, 971)
        );
        assert_eq!(
            (c.outputs, c.coinbase_value, c.max_inputs),
            (8150, 1_300_076_961, 100)
        );
        let want = [
            ("p2pkh", 4035),
            ("p2sh", 2601),
            ("op_return", 976),
            ("p2wpkh", 442),
            ("p2wsh", 58),
            ("p2pk", 38),
        ];
        assert_eq!(c.kinds, want.into_iter().collect());
    }

    #[test]
    fn block_702861_counts() {
        let c = counts("block-702861.raw");
        assert_eq!(c.height, 702_861);
        assert_eq!(
            (c.txs, c.segwit, c.inputs, c.same_block),
            (2500, 2065, 6517, 327)
        );
        assert_eq!(
            (c.outputs, c.coinbase_value, c.max_inputs),
            (6015, 629_948_405, 1012)
        );
        let want = [
            ("p2wpkh", 2383),
            ("p2sh", 1816),
            ("p2pkh", 1660),
            ("p2wsh", 133),
            ("op_return", 23),
        ];
        assert_eq!(c.kinds, want.into_iter().collect());
        assert!(!c.kinds.contains_key("p2tr"));
    }
}
