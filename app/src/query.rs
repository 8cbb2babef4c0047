//! Store queries the command-line tool and the server share: store statistics (`stats`), an
//! address's transfers and totals (`address`), and its transfers page by page (the server).

use paytrace_config::Config;
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, ChainInfo, ChainKind, Direction, Store, StoreError, Transfer,
    TransferKey, TransferKind,
};
use serde::Serialize;
use std::collections::BTreeMap;

/// Why an address query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Token units could not be loaded.
    #[error(transparent)]
    Units(#[from] crate::units::UnitsError),
    /// A chain name that is not in the store.
    #[error(transparent)]
    Params(#[from] crate::params::ParamsError),
    /// Amount arithmetic overflowed (corrupt amounts).
    #[error("amount arithmetic: {0}")]
    Amount(String),
    /// A page cursor that this server did not hand out.
    #[error("cursor {0:?} is not a cursor of this list")]
    BadCursor(String),
}

impl QueryError {
    /// Whether the request (not the store) is at fault.
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Self::BadCursor(_) | Self::Params(crate::params::ParamsError::UnknownChain(_))
        )
    }
}

/// One chain's counts (`stats --json` keys).
#[derive(Debug, Clone, Serialize)]
pub struct ChainStats {
    /// Chain name.
    pub chain: String,
    /// `evm` or `bitcoin`.
    pub kind: ChainKind,
    /// Last indexed block.
    pub last_block: Option<u64>,
    /// Its hash (`0x` + 64 hex digits).
    pub last_block_hash: Option<String>,
    /// Transfers indexed.
    pub transfers: u64,
    /// Transfers per kind.
    pub by_kind: BTreeMap<TransferKind, u64>,
}

/// The store's statistics (`stats --json`).
#[derive(Debug, Clone, Serialize)]
pub struct StatsOut {
    /// The data directory.
    pub data_dir: String,
    /// The store's schema version.
    pub schema_version: u32,
    /// Per chain, ordered by id.
    pub chains: Vec<ChainStats>,
}

/// Counts per chain and kind, and the last indexed block of each chain.
pub fn stats(store: &Store) -> Result<StatsOut, StoreError> {
    let mut chains = Vec::new();
    for c in store.chains()? {
        let by_kind = store.counters(c.id)?;
        let cp = store.checkpoint(c.id)?;
        chains.push(ChainStats {
            chain: c.name,
            kind: c.kind,
            last_block: cp.map(|b| b.number.0),
            last_block_hash: cp.map(|b| format!("{:#x}", b.hash)),
            transfers: by_kind.values().sum(),
            by_kind,
        });
    }
    Ok(StatsOut {
        data_dir: store.path().display().to_string(),
        schema_version: paytrace_indexer::store::SCHEMA_VERSION,
        chains,
    })
}

/// A transfer as printed by the CLI (`--json` keys are stable).
#[derive(Debug, Clone, Serialize)]
pub struct TransferView {
    /// Chain name.
    pub chain: String,
    /// Block height.
    pub block: u64,
    /// Block time (Unix seconds).
    pub time: u64,
    /// Transaction hash.
    pub tx: String,
    /// Transaction index in the block.
    pub tx_index: u32,
    /// `native`, `internal`, `token`, `utxo`.
    pub kind: TransferKind,
    /// Log index (token), trace ordinal (internal), 0 (native).
    pub position: u32,
    /// Trace address of an internal transfer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trace_address: Vec<u32>,
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// `native` or the token contract.
    pub asset: String,
    /// Asset symbol when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// Decimals of the asset when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
    /// Raw integer units, as a decimal string.
    pub amount: Amount,
    /// The amount as text output shows it (token units with the symbol).
    #[serde(skip)]
    pub shown: String,
}

/// Names chains and assets for display.
pub struct Namer {
    chains: BTreeMap<ChainId, ChainInfo>,
    units: crate::units::Units,
    btc: Option<paytrace_indexer::btc::UtxoStore>,
}

impl Namer {
    /// Loads chain names and token units (the store's token metadata, the config's token
    /// lists) from the store.
    pub fn new(store: &Store, config: &Config) -> Result<Self, QueryError> {
        let chains: BTreeMap<ChainId, ChainInfo> =
            store.chains()?.into_iter().map(|c| (c.id, c)).collect();
        let units = crate::units::Units::load(store, config)?;
        let has_btc = chains
            .values()
            .any(|c: &ChainInfo| c.kind == paytrace_indexer::ChainKind::Bitcoin);
        let btc = if has_btc {
            Some(paytrace_indexer::btc::UtxoStore::open(store)?)
        } else {
            None
        };
        Ok(Self { chains, units, btc })
    }

    fn is_bitcoin(&self, chain: ChainId) -> bool {
        self.chains
            .get(&chain)
            .is_some_and(|c| c.kind == paytrace_indexer::ChainKind::Bitcoin)
    }

    /// The readable form of an address (Bitcoin script ids as base58/bech32 addresses).
    pub fn address(&self, a: &Address) -> String {
        match (&self.btc, a) {
            (Some(b), Address::Script(_)) => b.display(a),
            _ => a.to_string(),
        }
    }

    /// The chain's name.
    pub fn chain(&self, id: ChainId) -> String {
        self.chains
            .get(&id)
            .map_or_else(|| format!("chain-{}", id.0), |c| c.name.clone())
    }

    /// Symbol and decimals of an asset on a chain, when known.
    pub fn asset(&self, chain: ChainId, asset: &Asset) -> Option<(String, u8)> {
        self.units.info(chain, asset)
    }

    /// `amount` of `asset` on `chain` as text output shows it.
    pub fn amount(&self, chain: ChainId, asset: &Asset, amount: Amount) -> String {
        self.units.format(chain, asset, amount)
    }

    /// The printable view of a transfer.
    pub fn view(&self, t: &Transfer) -> TransferView {
        TransferView {
            chain: self.chain(t.key.chain),
            block: t.key.block.0,
            time: t.time.0,
            tx: if self.is_bitcoin(t.key.chain) {
                format!("{:x}", t.tx_hash.0)
            } else {
                t.tx_hash.to_string()
            },
            tx_index: t.key.tx_index,
            kind: t.key.kind,
            position: t.key.position,
            trace_address: t.trace_address.clone(),
            from: self.address(&t.from),
            to: self.address(&t.to),
            asset: t.asset.to_string(),
            symbol: self.asset(t.key.chain, &t.asset).map(|(s, _)| s),
            decimals: self.asset(t.key.chain, &t.asset).map(|(_, d)| d),
            amount: t.amount,
            shown: self.amount(t.key.chain, &t.asset, t.amount),
        }
    }
}

/// Totals of one asset for an address (`shown_*`: the text form, not in JSON).
#[derive(Debug, Clone, Serialize)]
pub struct AssetTotal {
    /// `chain`.
    pub chain: String,
    /// `asset`.
    pub asset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `symbol`.
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// `decimals`.
    pub decimals: Option<u8>,
    /// `incoming`.
    pub incoming: Amount,
    /// `outgoing`.
    pub outgoing: Amount,
    /// `incoming_count`.
    pub incoming_count: u64,
    /// `outgoing_count`.
    pub outgoing_count: u64,
    #[serde(skip)]
    /// `shown_incoming`.
    pub shown_incoming: String,
    #[serde(skip)]
    /// `shown_outgoing`.
    pub shown_outgoing: String,
}

/// `address --json`.
#[derive(Debug, Clone, Serialize)]
pub struct AddressOut {
    /// `address`.
    pub address: String,
    /// `incoming`.
    pub incoming: Vec<TransferView>,
    /// `outgoing`.
    pub outgoing: Vec<TransferView>,
    /// `totals`.
    pub totals: Vec<AssetTotal>,
}

/// The transfers and per-asset totals of `address` (only `chain` when given); at most
/// `limit` transfers per direction listed.
pub fn address(
    store: &Store,
    config: &Config,
    address: &Address,
    chain: Option<&str>,
    limit: Option<usize>,
) -> Result<AddressOut, QueryError> {
    let chain = crate::params::chain_id(store, chain)?;
    let namer = Namer::new(store, config)?;
    let mut totals: BTreeMap<(ChainId, Asset), (Amount, Amount, u64, u64)> = BTreeMap::new();
    let mut load = |dir: Direction| -> Result<Vec<TransferView>, QueryError> {
        let mut out = Vec::new();
        for t in store.address_transfers(address, dir, chain) {
            let t = t?;
            let e =
                totals
                    .entry((t.key.chain, t.asset))
                    .or_insert((Amount::ZERO, Amount::ZERO, 0, 0));
            let add = |x: Amount| {
                x.checked_add(t.amount)
                    .map_err(|e| QueryError::Amount(e.to_string()))
            };
            match dir {
                Direction::Incoming => {
                    e.0 = add(e.0)?;
                    e.2 += 1;
                }
                Direction::Outgoing => {
                    e.1 = add(e.1)?;
                    e.3 += 1;
                }
            }
            if limit.is_none_or(|l| out.len() < l) {
                out.push(namer.view(&t));
            }
        }
        Ok(out)
    };
    let incoming = load(Direction::Incoming)?;
    let outgoing = load(Direction::Outgoing)?;
    let totals: Vec<AssetTotal> = totals
        .into_iter()
        .map(|((c, a), (i, o, ni, no))| AssetTotal {
            chain: namer.chain(c),
            asset: a.to_string(),
            symbol: namer.asset(c, &a).map(|(s, _)| s),
            decimals: namer.asset(c, &a).map(|(_, d)| d),
            incoming: i,
            outgoing: o,
            incoming_count: ni,
            outgoing_count: no,
            shown_incoming: namer.amount(c, &a, i),
            shown_outgoing: namer.amount(c, &a, o),
        })
        .collect();
    Ok(AddressOut {
        address: namer.address(address),
        incoming,
        outgoing,
        totals,
    })
}

/// One page of an address's transfers in one direction.
#[derive(Debug, Clone, Serialize)]
pub struct TransfersPage {
    /// The address.
    pub address: String,
    /// `incoming` or `outgoing`.
    pub direction: String,
    /// The transfers, oldest first.
    pub transfers: Vec<TransferView>,
    /// The cursor of the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The transfers of `address` in `dir` after `cursor` (a `next_cursor` of an earlier page),
/// at most `limit`. A cursor names the last transfer of its page, so pages stay in place
/// while new blocks are indexed.
pub fn transfers_page(
    store: &Store,
    config: &Config,
    address: &Address,
    dir: Direction,
    chain: Option<&str>,
    cursor: Option<&str>,
    limit: usize,
) -> Result<TransfersPage, QueryError> {
    let chain = crate::params::chain_id(store, chain)?;
    let after = match cursor {
        None => None,
        Some(c) => Some(
            alloy_primitives::hex::decode(c)
                .ok()
                .and_then(|b| TransferKey::from_bytes(&b))
                .ok_or_else(|| QueryError::BadCursor(c.to_owned()))?,
        ),
    };
    let namer = Namer::new(store, config)?;
    let mut transfers = Vec::new();
    let mut last = None;
    let mut more = false;
    for t in store.address_transfers(address, dir, chain) {
        let t = t?;
        if after.is_some_and(|a| t.key <= a) {
            continue;
        }
        if transfers.len() == limit {
            more = true;
            break;
        }
        last = Some(t.key);
        transfers.push(namer.view(&t));
    }
    Ok(TransfersPage {
        address: namer.address(address),
        direction: match dir {
            Direction::Incoming => "incoming",
            Direction::Outgoing => "outgoing",
        }
        .to_owned(),
        transfers,
        next_cursor: if more {
            last.map(|k| alloy_primitives::hex::encode(k.to_bytes()))
        } else {
            None
        },
    })
}
