//! The demo's Bitcoin leg: part of the operator's proceeds leave through Bitcoin.
//!
//! After the operator's peel chain paid into its exchange deposit addresses (USDC on the EVM
//! chain), the operator buys BTC at the same exchange (ExampleX) and withdraws 1.5 BTC to a
//! Bitcoin address of its own. From there it peels: 0.2 BTC to a cash-out wallet and the rest
//! to a new change address; 0.3 BTC of that into an ExampleX Bitcoin deposit address and the
//! rest to another change address; and all of that (less the fee) to a Bitcoin address of the
//! same sanctioned facilitator (listed on the same day as its EVM wallet). Every transaction
//! pays a 0.0001 BTC fee.
//!
//! The leg is real Bitcoin blocks (coinbase first, BIP34 heights, merkle roots), ingested
//! through the Bitcoin indexer's own decode and write path ([`BitcoinLeg::ingest`]); the report
//! and screening find it through transaction nodes like any Bitcoin chain. The labels tie the
//! leg to the EVM story by entity: the exchange and the facilitator are the same entities on
//! both chains.

use bitcoin::{
    Amount as BtcAmount, Block, BlockHash, CompactTarget, OutPoint, PubkeyHash, ScriptBuf,
    ScriptHash, Sequence, Transaction, TxIn, TxMerkleNode, TxOut, WPubkeyHash, Witness,
    absolute::LockTime,
    block::{Header, Version},
    hashes::Hash as _,
    transaction,
};
use paytrace_indexer::{Address, Amount, Timestamp};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Name of the demo's Bitcoin chain in the store.
pub const BTC_CHAIN: &str = "demo-btc";
/// Satoshis per BTC.
const COIN: u64 = 100_000_000;
/// The fee of every transaction of the leg.
pub const FEE: u64 = 10_000;
/// What the operator withdraws from the exchange: 1.5 BTC.
pub const WITHDRAWAL: u64 = 150_000_000;
const CASH_OUT: u64 = 20_000_000;
const DEPOSIT: u64 = 30_000_000;

/// One party of the leg.
#[derive(Clone, Debug, Serialize)]
pub struct BtcParty {
    /// Role in the story.
    pub name: String,
    /// The mainnet address.
    pub address: String,
    /// The indexer's address (the script id).
    pub id: Address,
    /// Its label, if any: (category, entity, valid from `YYYY-MM-DD`).
    pub label: Option<(String, String, Option<String>)>,
    #[serde(skip)]
    script: ScriptBuf,
}

/// One destination the trace of the withdrawal must find.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BtcDestination {
    /// Report destination kind (`unattributed`, `exchange_deposit`, `sanctioned`, `fee`).
    pub kind: String,
    /// Exact value that ended there, satoshis.
    pub amount: Amount,
    /// Hops after the operator's withdrawal address.
    pub hops: u32,
}

/// The Bitcoin leg with its ground truth.
#[derive(Clone, Debug, Serialize)]
pub struct BitcoinLeg {
    /// Chain name in the store.
    pub chain: String,
    /// The parties: `exchange`, `operator`, `change 1`, `change 2`, `cash-out`,
    /// `exchange deposit`, `facilitator`, `miner`.
    pub parties: Vec<BtcParty>,
    /// Time of the exchange's withdrawal to the operator.
    pub withdrawal_time: Timestamp,
    /// The withdrawal transaction's txid.
    pub withdrawal_txid: String,
    /// The withdrawal, satoshis.
    pub withdrawal: Amount,
    /// Where the withdrawal went, by address (fees by the txid of the transaction node,
    /// `tx:<txid>`): what the report of the withdrawal must list, exactly.
    pub destinations: BTreeMap<String, BtcDestination>,
    /// Lowest acceptable screening verdict of the operator's Bitcoin address.
    pub operator_min_risk: crate::risk::RiskLevel,
    #[serde(skip)]
    blocks: Vec<Block>,
}

fn hash20(name: &str) -> [u8; 20] {
    let h = alloy_primitives::keccak256(format!("paytrace demo bitcoin {name}").as_bytes());
    let mut b = [0u8; 20];
    b.copy_from_slice(&h[..20]);
    b
}

fn party(name: &str, kind: u8, label: Option<(&str, &str, Option<String>)>) -> BtcParty {
    let h = hash20(name);
    let script = match kind {
        0 => ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(h)),
        1 => ScriptBuf::new_p2sh(&ScriptHash::from_byte_array(h)),
        _ => ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(h)),
    };
    // Standard scripts always have a mainnet address.
    let address = bitcoin::Address::from_script(&script, bitcoin::Network::Bitcoin)
        .map(|a| a.to_string())
        .unwrap_or_default();
    let id =
        Address::Script(bitcoin::hashes::sha256::Hash::hash(script.as_bytes()).to_byte_array());
    BtcParty {
        name: name.to_owned(),
        address,
        id,
        label: label.map(|(c, e, v)| (c.to_owned(), e.to_owned(), v)),
        script,
    }
}

fn spend(prev: OutPoint, outputs: &[(&ScriptBuf, u64)]) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs
            .iter()
            .map(|(s, v)| TxOut {
                value: BtcAmount::from_sat(*v),
                script_pubkey: (*s).clone(),
            })
            .collect(),
    }
}

fn coinbase(height: u64, to: &ScriptBuf, value: u64) -> Transaction {
    paytrace_indexer::btc::generate::coinbase(height, to.clone(), value)
}

impl BitcoinLeg {
    /// The leg of the scenario starting at `base`: the withdrawal at `withdrawal_time` (after
    /// the facilitator's listing on `listed`, `YYYY-MM-DD`), one transaction per block after
    /// it, two hours apart.
    pub fn generate(base: u64, withdrawal_time: u64, listed: &str) -> Self {
        let exchange = party(
            "exchange hot wallet",
            0,
            Some(("exchange", "ExampleX Exchange", None)),
        );
        let operator = party("operator", 2, None);
        let change1 = party("operator change 1", 2, None);
        let change2 = party("operator change 2", 2, None);
        let cash_out = party("cash-out wallet", 0, None);
        let deposit = party(
            "exchange deposit operator",
            1,
            Some(("exchange_deposit", "ExampleX Exchange", None)),
        );
        let facilitator = party(
            "facilitator",
            2,
            Some((
                "sanctioned",
                "Tetra Facilitation (demo SDN)",
                Some(listed.to_owned()),
            )),
        );
        let miner = party("miner", 0, None);
        let subsidy = 50 * COIN;
        // Block 0, a day after the scenario's start: the exchange's reserve.
        let times = [
            base + 86_400,
            withdrawal_time,
            withdrawal_time + 7_200,
            withdrawal_time + 14_400,
            withdrawal_time + 21_600,
        ];
        let reserve = coinbase(0, &exchange.script, subsidy);
        let w = spend(
            OutPoint::new(reserve.compute_txid(), 0),
            &[
                (&operator.script, WITHDRAWAL),
                (&exchange.script, subsidy - WITHDRAWAL - FEE),
            ],
        );
        let rest1 = WITHDRAWAL - CASH_OUT - FEE;
        let peel1 = spend(
            OutPoint::new(w.compute_txid(), 0),
            &[(&cash_out.script, CASH_OUT), (&change1.script, rest1)],
        );
        let rest2 = rest1 - DEPOSIT - FEE;
        let peel2 = spend(
            OutPoint::new(peel1.compute_txid(), 1),
            &[(&deposit.script, DEPOSIT), (&change2.script, rest2)],
        );
        let to_sdn = rest2 - FEE;
        let last = spend(
            OutPoint::new(peel2.compute_txid(), 1),
            &[(&facilitator.script, to_sdn)],
        );
        let payments = [None, Some(w), Some(peel1), Some(peel2), Some(last)];
        let mut blocks = Vec::new();
        let mut prev = BlockHash::all_zeros();
        for (height, (time, tx)) in (0u64..).zip(times.iter().zip(payments)) {
            let mut txdata = Vec::new();
            match tx {
                None => txdata.push(reserve.clone()),
                Some(tx) => {
                    txdata.push(coinbase(height, &miner.script, subsidy + FEE));
                    txdata.push(tx);
                }
            }
            let mut block = Block {
                header: Header {
                    version: Version::TWO,
                    prev_blockhash: prev,
                    merkle_root: TxMerkleNode::all_zeros(),
                    time: u32::try_from(*time).unwrap_or(u32::MAX),
                    bits: CompactTarget::from_consensus(0x207f_ffff),
                    nonce: 0,
                },
                txdata,
            };
            if let Some(root) = block.compute_merkle_root() {
                block.header.merkle_root = root;
            }
            prev = block.block_hash();
            blocks.push(block);
        }
        let txid_of = |b: &Block| {
            b.txdata
                .get(1)
                .map(|t| t.compute_txid().to_string())
                .unwrap_or_default()
        };
        let mut destinations = BTreeMap::new();
        let mut dest = |a: &str, kind: &str, amount: u64, hops: u32| {
            destinations.insert(
                a.to_owned(),
                BtcDestination {
                    kind: kind.to_owned(),
                    amount: Amount::from_u64(amount),
                    hops,
                },
            );
        };
        dest(&cash_out.address, "unattributed", CASH_OUT, 1);
        dest(&deposit.address, "exchange_deposit", DEPOSIT, 2);
        dest(&facilitator.address, "sanctioned", to_sdn, 3);
        for (hops, b) in (0u32..).zip(&blocks[2..]) {
            dest(&format!("tx:{}", txid_of(b)), "fee", FEE, hops);
        }
        let withdrawal_txid = txid_of(&blocks[1]);
        Self {
            chain: BTC_CHAIN.to_owned(),
            parties: vec![
                exchange,
                operator,
                change1,
                change2,
                cash_out,
                deposit,
                facilitator,
                miner,
            ],
            withdrawal_time: Timestamp(withdrawal_time),
            withdrawal_txid,
            withdrawal: Amount::from_u64(WITHDRAWAL),
            destinations,
            operator_min_risk: crate::risk::RiskLevel::High,
            blocks,
        }
    }

    /// The party named `name` (see [`BitcoinLeg::parties`]).
    pub fn party(&self, name: &str) -> Option<&BtcParty> {
        self.parties.iter().find(|p| p.name == name)
    }

    /// The exchange's hot wallet (the provider of the withdrawal).
    pub fn exchange(&self) -> Address {
        self.party("exchange hot wallet")
            .map_or(Address::Script([0; 32]), |p| p.id)
    }

    /// The operator's Bitcoin address (the withdrawal's receiver).
    pub fn operator(&self) -> Address {
        self.party("operator")
            .map_or(Address::Script([0; 32]), |p| p.id)
    }

    /// The leg's blocks (height 0 first).
    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    /// The mainnet address of an indexer address of the leg, or its usual form (`tx:<txid>`
    /// for transaction nodes).
    pub fn text(&self, a: &Address) -> String {
        self.parties
            .iter()
            .find(|p| p.id == *a)
            .map_or_else(|| a.to_string(), |p| p.address.clone())
    }

    /// The labelled parties as CSV rows `address,category,entity,valid_from`.
    pub fn label_rows(&self) -> Vec<String> {
        self.parties
            .iter()
            .filter_map(|p| {
                let (c, e, v) = p.label.as_ref()?;
                Some(format!(
                    "{},{c},{e},{}",
                    p.address,
                    v.as_deref().unwrap_or("")
                ))
            })
            .collect()
    }

    /// Writes the leg's blocks into `store` through the Bitcoin indexer's decode and write path
    /// (chain [`BTC_CHAIN`], one atomic range); returns the transfers written.
    pub fn ingest(
        &self,
        store: &paytrace_indexer::Store,
    ) -> Result<u64, paytrace_indexer::btc::BtcError> {
        use paytrace_indexer::btc::{decode::decode_block, utxo::UtxoStore};
        let chain = store.register_chain(&self.chain, paytrace_indexer::ChainKind::Bitcoin)?;
        let utxo = UtxoStore::open(store)?;
        let decoded: Vec<_> = (0u64..)
            .zip(&self.blocks)
            .map(|(h, b)| decode_block(b, h, bitcoin::consensus::serialize(b).len()))
            .collect();
        let prepared = utxo.prepare(chain, &decoded, &HashMap::new())?;
        let transfers = u64::try_from(prepared.transfers()).unwrap_or(u64::MAX);
        utxo.commit(prepared)?;
        Ok(transfers)
    }

    /// Compares the report of the withdrawal (one payout: the exchange to the operator's
    /// Bitcoin address) with the leg's ground truth; returns the differences.
    pub fn check(&self, report: &crate::report::Report) -> Vec<String> {
        let mut diffs = Vec::new();
        let [p] = report.payouts.as_slice() else {
            return vec![format!(
                "bitcoin withdrawal: {} payouts, expected 1",
                report.payouts.len()
            )];
        };
        if p.address != self.operator() || p.amount != self.withdrawal {
            diffs.push(format!(
                "bitcoin withdrawal: {} to {}, expected {} to {}",
                p.amount,
                self.text(&p.address),
                self.withdrawal,
                self.text(&self.operator())
            ));
        }
        let got: BTreeMap<String, BtcDestination> = p
            .destinations
            .iter()
            .map(|d| {
                (
                    self.text(&d.address),
                    BtcDestination {
                        kind: d.kind.as_str().to_owned(),
                        amount: d.amount,
                        hops: d.hops,
                    },
                )
            })
            .collect();
        if got != self.destinations {
            diffs.push(format!(
                "bitcoin withdrawal destinations {got:?}, expected {:?}",
                self.destinations
            ));
        }
        diffs
    }

    /// Compares the screening of the operator's Bitcoin address with the ground truth:
    /// indirect exposure sent to the facilitator's Bitcoin address, at least
    /// [`BitcoinLeg::operator_min_risk`].
    pub fn check_screening(&self, r: &crate::risk::ScreenResult) -> Vec<String> {
        use crate::risk::{ExposureKind, Flow};
        let Some(sdn) = self.party("facilitator") else {
            return vec!["bitcoin leg without a facilitator".into()];
        };
        let exposed = r.indirect.iter().any(|e| {
            e.kind == ExposureKind::Indirect
                && e.direction == Flow::Sent
                && e.category.as_str() == "sanctioned"
                && e.counterparties.contains(&sdn.id)
        });
        if exposed && r.level >= self.operator_min_risk {
            Vec::new()
        } else {
            vec![format!(
                "operator's bitcoin address {}: screened {}, expected {} or above with indirect exposure to {}",
                self.text(&r.address),
                r.level,
                self.operator_min_risk,
                sdn.address
            )]
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::demo::{DEFAULT_BASE, Scenario};
    use crate::report::{NoClusters, ReportParams, build_report, discover_payouts};

    #[test]
    fn the_bitcoin_leg_is_indexed_reported_and_screened_as_planted() {
        let s = Scenario::generate(DEFAULT_BASE);
        let leg = &s.bitcoin;
        assert!(
            leg.withdrawal_time < s.end(),
            "withdrawn before the last day"
        );
        let dir = tempfile::tempdir().unwrap();
        let store = paytrace_indexer::Store::open(dir.path()).unwrap();
        // 5 coinbases (the new coins into the transaction, and its output) + the withdrawal
        // (1 in, 2 out) + 2 peels (1 in, 2 out each) + the last spend (1 in, 1 out).
        assert_eq!(leg.ingest(&store).unwrap(), 5 * 2 + 3 + 3 + 3 + 2);
        let chain = store.chain_by_name(super::BTC_CHAIN).unwrap().map(|c| c.id);
        let mut names = std::collections::HashMap::new();
        names.insert(leg.operator(), "operator (bitcoin)".to_owned());
        let payouts =
            discover_payouts(&store, &[leg.exchange()], None, None, None, chain, &names).unwrap();
        let mut book = crate::report::AssetBook::new();
        book.insert_bitcoin();
        let mut params = ReportParams::default();
        params.trace.chain = chain;
        let r = build_report(
            &store,
            &s.memory_labels(),
            &s.memory_listings(),
            &NoClusters,
            "bitcoin",
            &[leg.exchange()],
            &payouts,
            Vec::new(),
            book,
            &params,
        )
        .unwrap();
        let diffs = leg.check(&r);
        assert!(diffs.is_empty(), "{diffs:#?}");
        let as_of =
            paytrace_indexer::labels::date_of_unix(i64::try_from(s.end().0).unwrap()).unwrap();
        let mut p = crate::risk::ScreenParams::new(as_of);
        p.chain = chain;
        let sr =
            crate::risk::screen(&store, &s.memory_label_history(), &leg.operator(), &p).unwrap();
        let diffs = leg.check_screening(&sr);
        assert!(diffs.is_empty(), "{diffs:#?} {:#?}", sr.reasons);
    }
}
