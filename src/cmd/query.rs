//! `paytrace address` and `paytrace stats`.

use super::Context;
use anyhow::Context as _;
use clap::Args;
use paytrace_app::address::parse_address;
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, ChainInfo, Direction, Store, Transfer, TransferKind,
};
use serde::Serialize;
use std::{collections::BTreeMap, process::ExitCode};

/// Transfers in and out of an address.
#[derive(Debug, Args)]
pub struct AddressCmd {
    /// The address (0x + 40 hex digits, EIP-55 checksum checked when mixed case; a Bitcoin
    /// address; `script:<id>` or `tx:<txid>`).
    pub address: String,
    /// Only this chain.
    #[arg(long)]
    pub chain: Option<String>,
    /// At most this many transfers per direction (newest dropped first) [default: all].
    #[arg(long)]
    pub limit: Option<usize>,
}

/// A transfer as printed by the CLI (`--json` keys are stable).
#[derive(Debug, Serialize)]
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
    units: paytrace_app::units::Units,
    btc: Option<paytrace_indexer::btc::UtxoStore>,
}

impl Namer {
    /// Loads chain names and token units (the store's token metadata, the config's token
    /// lists) from the store.
    pub fn new(ctx: &Context, store: &Store) -> anyhow::Result<Self> {
        let chains: BTreeMap<ChainId, ChainInfo> =
            store.chains()?.into_iter().map(|c| (c.id, c)).collect();
        let units = paytrace_app::units::Units::load(store, &ctx.config)?;
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

/// Totals of one asset for an address.
#[derive(Debug, Serialize)]
struct AssetTotal {
    chain: String,
    asset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decimals: Option<u8>,
    incoming: Amount,
    outgoing: Amount,
    incoming_count: u64,
    outgoing_count: u64,
    #[serde(skip)]
    shown_incoming: String,
    #[serde(skip)]
    shown_outgoing: String,
}

#[derive(Debug, Serialize)]
struct AddressOut {
    address: String,
    incoming: Vec<TransferView>,
    outgoing: Vec<TransferView>,
    totals: Vec<AssetTotal>,
}

impl AddressCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let address = parse_address("ADDRESS", &self.address)?;
        let store = ctx.open_store_read()?;
        let chain = match &self.chain {
            Some(name) => Some(
                store
                    .chain_by_name(name)?
                    .with_context(|| format!("chain {name:?} is not in the store"))?
                    .id,
            ),
            None => None,
        };
        let namer = Namer::new(ctx, &store)?;
        let mut totals: BTreeMap<(ChainId, Asset), (Amount, Amount, u64, u64)> = BTreeMap::new();
        let mut load = |dir: Direction| -> anyhow::Result<Vec<TransferView>> {
            let mut out = Vec::new();
            for t in store.address_transfers(&address, dir, chain) {
                let t = t?;
                let e = totals.entry((t.key.chain, t.asset)).or_insert((
                    Amount::ZERO,
                    Amount::ZERO,
                    0,
                    0,
                ));
                match dir {
                    Direction::Incoming => {
                        e.0 = e.0.checked_add(t.amount)?;
                        e.2 += 1;
                    }
                    Direction::Outgoing => {
                        e.1 = e.1.checked_add(t.amount)?;
                        e.3 += 1;
                    }
                }
                if self.limit.is_none_or(|l| out.len() < l) {
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
        let out = AddressOut {
            address: namer.address(&address),
            incoming,
            outgoing,
            totals,
        };
        if ctx.json {
            ctx.print_json(&out)?;
            return Ok(ExitCode::SUCCESS);
        }
        println!("{}", out.address);
        if out.totals.is_empty() {
            println!("  no transfers indexed");
        }
        for t in &out.totals {
            let name = t.symbol.clone().unwrap_or_else(|| t.asset.clone());
            // Text shows token units when the decimals are known; JSON keeps raw units.
            println!(
                "  {} {}: in {} ({} transfers), out {} ({} transfers)",
                t.chain,
                name,
                t.shown_incoming,
                t.incoming_count,
                t.shown_outgoing,
                t.outgoing_count
            );
        }
        for (title, list) in [("incoming", &out.incoming), ("outgoing", &out.outgoing)] {
            if list.is_empty() {
                continue;
            }
            println!("{title}:");
            for t in list {
                let other = if title == "incoming" { &t.from } else { &t.to };
                println!(
                    "  {} block {} {} {} {} {}",
                    t.chain,
                    t.block,
                    t.kind,
                    t.shown,
                    if title == "incoming" { "from" } else { "to" },
                    other
                );
                println!("      tx {}", t.tx);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Store statistics.
#[derive(Debug, Args)]
pub struct StatsCmd {}

impl StatsCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = ctx.open_store_read()?;
        let out = paytrace_app::query::stats(&store)?;
        if ctx.json {
            ctx.print_json(&out)?;
            return Ok(ExitCode::SUCCESS);
        }
        println!("store {} (schema {})", out.data_dir, out.schema_version);
        if out.chains.is_empty() {
            println!("  no chains indexed yet");
        }
        for c in &out.chains {
            let kinds: Vec<String> = c.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!(
                "  {}: last block {}, {} transfers ({})",
                c.chain,
                c.last_block.map_or("none".into(), |b| b.to_string()),
                c.transfers,
                kinds.join(", ")
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
