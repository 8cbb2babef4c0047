//! Payout reports for finance teams: where the salaries a payroll provider paid ended up, and
//! whether "different" payees share a wallet (issue 4).
//!
//! * [`discover_payouts`]: the outgoing transfers of a provider's hot wallets in a time window;
//! * [`batch`]: a payroll batch CSV, parsed and matched to on-chain transfers, with every bad,
//!   duplicate or unmatched row reported by line;
//! * [`build_report`]: one forward taint trace per payout (the existing engine, unchanged),
//!   summarised per payout and per payee (exits to exchanges, sanctioned entities as of the
//!   transfer date, mixers, bridges, unattributed wallets, still held), then the batch view and
//!   the [`convergence`] findings;
//! * [`render`]: the report as self-contained HTML (with an SVG flow graph laid out by
//!   [`graph`]), JSON and CSV.
//!
//! Clustering and as-of sanctions come in through two small traits, [`ClusterLookup`] and
//! [`AsOfLabels`], so the report is pure over in-memory data in tests and runs on the store
//! unchanged.

pub mod batch;
pub mod convergence;
pub mod graph;
pub mod render;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_bitcoin;

use crate::{
    FlowSource, LabelSource, PathHop, Seed, Status, TraceError, TraceParams, TraceResult,
    result::{FlowEdge, ser_display},
    source::Category,
    trace_forward,
};
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, Direction, Timestamp, Transfer, TransferKey, TxHash,
};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use convergence::{
    ConvergenceParams, EvidenceHop, Finding, FindingPayee, MergeEvidence, Onward, PayeeCluster,
};

/// One payout: a transfer from the provider to a payee.
#[derive(Clone, Debug, Serialize)]
pub struct Payout {
    /// Payee name (from the batch file, or the address when discovered on chain).
    pub payee: String,
    /// The payee's receiving address.
    pub address: Address,
    /// The provider address that paid.
    pub from: Address,
    /// Asset paid.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Amount, raw units.
    pub amount: Amount,
    /// Transaction.
    pub tx_hash: TxHash,
    /// Block time.
    pub time: Timestamp,
    /// The transfer.
    #[serde(skip)]
    pub key: TransferKey,
    /// Line of the batch file it came from, if any.
    pub line: Option<u64>,
}

impl Payout {
    /// A payout made of the on-chain transfer `t`, to `payee`.
    pub fn from_transfer(payee: String, t: &Transfer, line: Option<u64>) -> Self {
        Self {
            payee,
            address: t.to,
            from: t.from,
            asset: t.asset,
            amount: t.amount,
            tx_hash: t.tx_hash,
            time: t.time,
            key: t.key,
            line,
        }
    }
}

/// The key of the native coin of Bitcoin-family chains in report maps ([`asset_key`]).
pub const BITCOIN_NATIVE: &str = "bitcoin:native";

/// Whether `a` is an address of a Bitcoin-family chain (an output script or a transaction
/// node): value it holds or moves is in that chain's coin.
pub const fn is_bitcoin_family(a: &Address) -> bool {
    matches!(a, Address::Script(_) | Address::Tx(_))
}

/// The key of `asset` held or moved by `holder` in the report's per-asset maps (`paid`,
/// `totals`, finding `amounts`) and in the [`AssetBook`]: the token address, `native` for an
/// EVM chain's coin, or [`BITCOIN_NATIVE`] for a Bitcoin chain's coin, so a report that pays
/// on both never adds wei to satoshis.
pub fn asset_key(asset: &Asset, holder: &Address) -> String {
    match asset {
        Asset::Native if is_bitcoin_family(holder) => BITCOIN_NATIVE.to_owned(),
        _ => asset.to_string(),
    }
}

/// Symbols and decimals of the assets a report shows (from the config's token list).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AssetBook {
    /// Per asset key (`native`, `bitcoin:native` or a token address, see [`asset_key`]): symbol
    /// and decimals.
    pub assets: BTreeMap<String, AssetInfo>,
    /// Assets whose symbol a contract claimed ([`AssetBook::insert_claimed`]): shown with it,
    /// but a symbol resolves to one of them only when no other asset has that symbol.
    #[serde(skip)]
    claimed: std::collections::BTreeSet<String>,
}

/// How an asset is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssetInfo {
    /// Symbol, e.g. `USDC`.
    pub symbol: String,
    /// Decimals, e.g. 6.
    pub decimals: u8,
    /// The asset.
    #[serde(skip)]
    pub asset: Asset,
}

impl AssetBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an asset whose symbol and decimals a contract claimed (read from the chain): any
    /// contract may call itself `USDC`, so [`AssetBook::resolve`] prefers assets added with
    /// [`AssetBook::insert`] (configured, declared or well known) for a symbol.
    pub fn insert_claimed(&mut self, asset: Asset, symbol: &str, decimals: u8) {
        self.insert(asset, symbol, decimals);
        self.claimed.insert(asset.to_string());
    }

    /// Adds an asset.
    pub fn insert(&mut self, asset: Asset, symbol: &str, decimals: u8) {
        self.claimed.remove(&asset.to_string());
        self.assets.insert(
            asset.to_string(),
            AssetInfo {
                symbol: symbol.to_owned(),
                decimals,
                asset,
            },
        );
    }

    /// Adds the native coin of Bitcoin chains (`BTC`, 8 decimals) under [`BITCOIN_NATIVE`].
    pub fn insert_bitcoin(&mut self) {
        self.assets.insert(
            BITCOIN_NATIVE.to_owned(),
            AssetInfo {
                symbol: "BTC".to_owned(),
                decimals: 8,
                asset: Asset::Native,
            },
        );
    }

    /// The info of `asset`, if known.
    pub fn info(&self, asset: &Asset) -> Option<&AssetInfo> {
        self.assets.get(&asset.to_string())
    }

    /// The info of `asset` held or moved by `holder` (see [`asset_key`]), if known.
    pub fn info_at(&self, asset: &Asset, holder: &Address) -> Option<&AssetInfo> {
        self.assets.get(&asset_key(asset, holder))
    }

    /// `amount` of `asset` held or moved by `holder` in token units with the symbol
    /// (`0.25000000 BTC` for a Bitcoin address's coin), or raw units and the asset key.
    pub fn format_at(&self, asset: &Asset, holder: &Address, amount: Amount) -> String {
        self.format_str(&asset_key(asset, holder), amount)
    }

    /// Resolves a symbol (case-insensitive) or a token contract address. Of several assets with
    /// the symbol, the first one not merely claimed by its contract; `None` when all are.
    pub fn resolve(&self, text: &str) -> Option<&AssetInfo> {
        let t = text.trim();
        if let Ok(a) = t.parse::<Address>() {
            return self.info(&Asset::Token(a));
        }
        if t.eq_ignore_ascii_case("native") {
            return self.info(&Asset::Native);
        }
        let mut matches = self
            .assets
            .iter()
            .filter(|(_, i)| i.symbol.eq_ignore_ascii_case(t));
        let first = matches.next()?;
        let Some(second) = matches.next() else {
            return Some(first.1);
        };
        [first, second]
            .into_iter()
            .chain(matches)
            .find(|(k, _)| !self.claimed.contains(*k))
            .map(|(_, i)| i)
    }

    /// `amount` in token units with the symbol (`5178.15 USDC`), or raw units and the asset
    /// (`2951546925 raw units of 0x5FbD…`) when the asset's symbol or decimals are unknown.
    /// Every text output formats amounts through this (see [`format_amount`]).
    pub fn format(&self, asset: &Asset, amount: Amount) -> String {
        format_amount(self.info(asset), &asset.to_string(), amount)
    }

    /// [`AssetBook::format`] for an asset given as its string (`native` or a token address).
    pub fn format_str(&self, asset: &str, amount: Amount) -> String {
        format_amount(self.assets.get(asset), asset, amount)
    }
}

/// The one text form of an amount: `5178.15 USDC` with the asset's info, else
/// `2951546925 raw units of 0x5FbD…` (never a guessed unit).
/// BTC is written with all 8 decimals (`50.00000000 BTC`), as Bitcoin software does.
pub fn format_amount(info: Option<&AssetInfo>, asset: &str, amount: Amount) -> String {
    match info {
        Some(i) if i.symbol == paytrace_indexer::ChainKind::Bitcoin.native_symbol() => format!(
            "{} {}",
            amount.to_fixed_decimal_string(i.decimals),
            i.symbol
        ),
        Some(i) => format!("{} {}", amount.to_decimal_string(i.decimals), i.symbol),
        None => format!("{amount} raw units of {asset}"),
    }
}

impl Report {
    /// Keeps in [`Report::assets`] only the assets the report shows (a book built from a
    /// store's token metadata may know thousands of tokens).
    pub fn prune_assets(&mut self) {
        let mut used: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        used.extend(self.payouts.iter().map(|p| asset_key(&p.asset, &p.address)));
        used.extend(self.summary.paid.keys().cloned());
        used.extend(self.summary.totals.values().flat_map(|m| m.keys().cloned()));
        for p in &self.payees {
            used.extend(p.paid.keys().cloned());
            used.extend(p.totals.values().flat_map(|m| m.keys().cloned()));
        }
        for f in self.convergence.iter().chain(&self.shared_deposits) {
            used.extend(f.amounts.keys().cloned());
            used.extend(f.payees.iter().flat_map(|p| p.amounts.keys().cloned()));
            used.extend(f.onward.iter().flat_map(|o| o.amounts.keys().cloned()));
            used.extend(f.evidence.iter().map(|e| asset_key(&e.asset, &e.hop.to)));
        }
        used.extend(
            self.graph
                .edges
                .iter()
                .map(|e| asset_key(&e.asset, &self.graph.nodes[e.to].address)),
        );
        self.assets.assets.retain(|k, _| used.contains(k));
    }
}

impl AssetBook {
    /// Per-asset amounts (asset key → raw) in token units with symbols, `; `-separated.
    pub fn format_amounts(&self, m: &BTreeMap<String, Amount>) -> String {
        m.iter()
            .map(|(a, v)| self.format_str(a, *v))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Exchange deposit addresses that clustering attributed to an exchange (`cluster run`).
pub trait DepositLookup {
    /// The exchange `address` is a deposit address of (entity name, or the hot wallet it
    /// sweeps to), if clustering found it to be one.
    fn deposit_of(&self, address: &Address) -> Option<String>;
}

/// No attribution.
impl DepositLookup for NoClusters {
    fn deposit_of(&self, _: &Address) -> Option<String> {
        None
    }
}

impl DepositLookup for HashMap<Address, String> {
    fn deposit_of(&self, address: &Address) -> Option<String> {
        self.get(address).cloned()
    }
}

/// Labels with the deposit addresses attributed by clustering added as `exchange_deposit` of
/// their exchange (where the labels say nothing of the address): what the report's
/// destinations, shared deposits and graph, and screening, see. A label always wins over an
/// attribution.
pub struct WithDeposits<'a, L, D: ?Sized> {
    /// The labels.
    pub labels: L,
    /// The attributions.
    pub deposits: &'a D,
}

impl<L, D: DepositLookup + ?Sized> WithDeposits<'_, L, D> {
    fn attributed(&self, a: &Address) -> Option<String> {
        self.deposits
            .deposit_of(a)
            .map(|x| format!("{x} deposit address (attributed by clustering)"))
    }
}

impl<L: LabelSource, D: DepositLookup + ?Sized> LabelSource for WithDeposits<'_, L, D> {
    fn category(&self, address: &Address) -> Option<Category> {
        self.labels.category(address).or_else(|| {
            self.deposits
                .deposit_of(address)
                .map(|_| Category::new("exchange_deposit"))
        })
    }

    fn labels(&self, address: &Address) -> Vec<String> {
        match self.labels.category(address) {
            Some(_) => self.labels.labels(address),
            None => self.attributed(address).into_iter().collect(),
        }
    }

    fn version(&self) -> Option<String> {
        self.labels.version()
    }

    fn take_failure(&self) -> Option<paytrace_indexer::labels::LabelError> {
        self.labels.take_failure()
    }
}

impl<H: crate::risk::LabelHistory, D: DepositLookup + ?Sized> crate::risk::LabelHistory
    for WithDeposits<'_, H, D>
{
    fn spans(
        &self,
        address: &Address,
    ) -> Result<Vec<crate::risk::LabelSpan>, paytrace_indexer::labels::LabelError> {
        let mut v = self.labels.spans(address)?;
        if v.is_empty()
            && let Some(name) = self.attributed(address)
        {
            v.push(crate::risk::LabelSpan {
                category: Category::new("exchange_deposit"),
                name,
                valid_from: None,
                valid_to: None,
            });
        }
        Ok(v)
    }

    fn version(&self) -> Option<String> {
        self.labels.version()
    }
}

/// Parses an amount in token units (`5178.15`) into raw units with `decimals` places, exactly.
/// Rejects signs, exponents, empty parts and more fractional digits than `decimals`.
pub fn parse_units(text: &str, decimals: u8) -> Result<Amount, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty amount".into());
    }
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{s:?} is not a decimal number of token units"));
    }
    let d = usize::from(decimals);
    if frac.len() > d {
        return Err(format!(
            "{s:?} has {} decimal places, the asset has {decimals}",
            frac.len()
        ));
    }
    let digits = format!("{}{frac:0<d$}", if int.is_empty() { "0" } else { int });
    digits
        .parse::<Amount>()
        .map_err(|_| format!("{s:?} does not fit 256 bits"))
}

/// Cluster membership (the clustering module plugs in here).
pub trait ClusterLookup {
    /// The cluster id of `address`, if it is in a cluster of more than one address.
    fn cluster_of(&self, address: &Address) -> Option<String>;

    /// The merges that joined `addresses` in `cluster` (evidence of a payee cluster).
    fn merge_evidence(&self, cluster: &str, addresses: &[Address]) -> Vec<MergeEvidence> {
        let _ = (cluster, addresses);
        Vec::new()
    }
}

/// No clustering: every address is its own cluster.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClusters;

impl ClusterLookup for NoClusters {
    fn cluster_of(&self, _: &Address) -> Option<String> {
        None
    }
}

impl ClusterLookup for HashMap<Address, String> {
    fn cluster_of(&self, address: &Address) -> Option<String> {
        self.get(address).cloned()
    }
}

/// The entities labels attribute addresses to (the label store plugs in here): what ties an
/// EVM address and a Bitcoin address of one owner when no clustering can (clustering works
/// within one chain).
pub trait EntityLookup {
    /// The entity a label of a [`TIE_CATEGORIES`] category attributes `address` to, if any.
    fn entity_of(&self, address: &Address) -> Option<String>;
}

/// Label categories whose entity ties the addresses it labels into one owner for convergence:
/// a sanctioned person or group, a scammer, a hacker, a ransomware group, a known owner. Shared
/// services (exchanges and their deposit addresses, bridges, DeFi, mixers, wallet services,
/// OTC desks, gambling, miners, payroll providers) are used by unrelated people and tie nothing.
pub const TIE_CATEGORIES: [&str; 5] = ["sanctioned", "scam", "hack", "ransomware", "unknown"];

impl EntityLookup for HashMap<Address, String> {
    fn entity_of(&self, address: &Address) -> Option<String> {
        self.get(address).cloned()
    }
}

/// The label store's entities (labels valid on `as_of`, today when `None`), restricted to
/// [`TIE_CATEGORIES`].
pub struct LabelEntities<'a> {
    /// The label store.
    pub labels: &'a paytrace_indexer::labels::LabelStore,
    /// The day the labels must hold on.
    pub as_of: Option<paytrace_indexer::labels::Date>,
}

impl EntityLookup for LabelEntities<'_> {
    fn entity_of(&self, address: &Address) -> Option<String> {
        match self.labels.labels_for(address, self.as_of) {
            Ok(ls) => ls
                .into_iter()
                .find(|l| TIE_CATEGORIES.contains(&l.category.as_str()))
                .map(|l| l.entity),
            Err(e) => {
                tracing::warn!(address = %address, error = %e, "label look-up failed; no entity tie");
                None
            }
        }
    }
}

/// Clusters, with addresses outside every cluster tied by their labels' entity (cluster
/// `entity:<name>`): a payee paid on an EVM chain and one paid on Bitcoin whose value reaches
/// addresses of one entity on each chain converge there.
pub struct EntityTies<'a, C: ?Sized, E: ?Sized> {
    /// The clustering.
    pub clusters: &'a C,
    /// The label entities.
    pub entities: &'a E,
}

impl<C: ClusterLookup + ?Sized, E: EntityLookup + ?Sized> ClusterLookup for EntityTies<'_, C, E> {
    fn cluster_of(&self, address: &Address) -> Option<String> {
        self.clusters.cluster_of(address).or_else(|| {
            self.entities
                .entity_of(address)
                .map(|e| format!("entity:{e}"))
        })
    }

    fn merge_evidence(&self, cluster: &str, addresses: &[Address]) -> Vec<MergeEvidence> {
        if cluster.starts_with("entity:") {
            return Vec::new();
        }
        self.clusters.merge_evidence(cluster, addresses)
    }
}

/// Sanctions as of a date (labels are valid in time; a payout is judged by the listing in
/// force when the value arrived).
pub trait AsOfLabels {
    /// The sanctioned entity `address` belonged to at time `at`, if it was listed then.
    fn sanctioned_at(&self, address: &Address, at: Timestamp) -> Option<String>;
}

/// No as-of information: the trace's current labels are taken as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct CurrentLabelsOnly;

impl AsOfLabels for CurrentLabelsOnly {
    fn sanctioned_at(&self, _: &Address, _: Timestamp) -> Option<String> {
        None
    }
}

/// In-memory listings: address → (entity, listed from (inclusive), unix seconds).
#[derive(Clone, Debug, Default)]
pub struct MemoryListings(pub HashMap<Address, (String, Timestamp)>);

impl AsOfLabels for MemoryListings {
    fn sanctioned_at(&self, address: &Address, at: Timestamp) -> Option<String> {
        self.0
            .get(address)
            .filter(|(_, from)| *from <= at)
            .map(|(e, _)| e.clone())
    }
}

impl AsOfLabels for paytrace_indexer::labels::LabelStore {
    fn sanctioned_at(&self, address: &Address, at: Timestamp) -> Option<String> {
        let secs = i64::try_from(at.0).ok()?;
        let day = paytrace_indexer::labels::date_of_unix(secs)?;
        let ls = self.labels_for(address, Some(day)).ok()?;
        ls.into_iter()
            .find(|l| l.category == paytrace_indexer::labels::Category::Sanctioned)
            .map(|l| l.entity)
    }
}

/// The payer of transfer `t` into a payee: its sender, or for an output of a Bitcoin
/// transaction node the input address that paid the most into the transaction (of
/// `providers`, when given; ties: the first input). `None` when `providers` are given and none
/// of them paid.
pub fn payer_of<S: FlowSource>(
    source: &S,
    t: &Transfer,
    providers: &[Address],
    chain: Option<ChainId>,
) -> Result<Option<Address>, TraceError> {
    if !t.from.is_tx() {
        return Ok((providers.is_empty() || providers.contains(&t.from)).then_some(t.from));
    }
    let inputs = source
        .address_transfers(&t.from, Direction::Incoming, chain.or(Some(t.key.chain)))
        .map_err(TraceError::source)?;
    let mut best: Option<(Amount, Address)> = None;
    for i in inputs
        .iter()
        .filter(|i| i.key.block == t.key.block && i.key.tx_index == t.key.tx_index)
    {
        if !providers.is_empty() && !providers.contains(&i.from) {
            continue;
        }
        if best.is_none_or(|(v, _)| i.amount > v) {
            best = Some((i.amount, i.from));
        }
    }
    Ok(best.map(|(_, a)| a))
}

/// The outputs of the Bitcoin transactions `provider` spent from: `(output, provider)` for
/// every output of every transaction node `provider` paid into (each transaction once).
fn utxo_outputs<S: FlowSource>(
    source: &S,
    provider: &Address,
    chain: Option<ChainId>,
    seen: &mut BTreeSet<Address>,
) -> Result<Vec<Transfer>, TraceError> {
    let mut out = Vec::new();
    for input in source
        .address_transfers(provider, Direction::Outgoing, chain)
        .map_err(TraceError::source)?
    {
        if !input.to.is_tx() || !seen.insert(input.to) {
            continue;
        }
        out.extend(
            source
                .address_transfers(&input.to, Direction::Outgoing, Some(input.key.chain))
                .map_err(TraceError::source)?,
        );
    }
    Ok(out)
}

/// The outgoing transfers of `providers` in `[since, until]` (in `assets` when given, on
/// `chain` when given), one payout each, in canonical order. Transfers between provider
/// addresses are not payouts. `names` gives payee names by address.
///
/// A Bitcoin provider address pays through transaction nodes: every output of a transaction
/// it spent from is a payout (outputs back to provider addresses are change), paid by the
/// provider address that put the most into the transaction.
pub fn discover_payouts<S: FlowSource>(
    source: &S,
    providers: &[Address],
    assets: Option<&[Asset]>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    chain: Option<ChainId>,
    names: &HashMap<Address, String>,
) -> Result<Vec<Payout>, TraceError> {
    let provider_set: BTreeSet<Address> = providers.iter().copied().collect();
    let provider_list: Vec<Address> = provider_set.iter().copied().collect();
    let mut out = Vec::new();
    let mut txs_seen = BTreeSet::new();
    for p in &provider_set {
        let sent = if is_bitcoin_family(p) {
            utxo_outputs(source, p, chain, &mut txs_seen)?
        } else {
            source
                .address_transfers(p, Direction::Outgoing, chain)
                .map_err(TraceError::source)?
        };
        for t in sent {
            if provider_set.contains(&t.to)
                || t.amount.is_zero()
                || since.is_some_and(|s| t.time < s)
                || until.is_some_and(|u| t.time > u)
                || assets.is_some_and(|a| !a.contains(&t.asset))
            {
                continue;
            }
            let name = names
                .get(&t.to)
                .cloned()
                .unwrap_or_else(|| t.to.to_string());
            let mut payout = Payout::from_transfer(name, &t, None);
            if t.from.is_tx() {
                payout.from = payer_of(source, &t, &provider_list, chain)?.unwrap_or(*p);
            }
            out.push(payout);
        }
    }
    out.sort_by_key(|p| p.key);
    Ok(out)
}

/// Where payout value went, as a report shows it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DestKind {
    /// Reached an address sanctioned as of the arrival.
    Sanctioned,
    /// Reached an address that is sanctioned now but was not listed when the value arrived.
    SanctionedLater,
    /// Reached a mixer.
    Mixer,
    /// Deposited to an exchange deposit address.
    ExchangeDeposit,
    /// Reached an exchange wallet.
    Exchange,
    /// Reached a bridge.
    Bridge,
    /// Held by a labelled address that is followed (e.g. a swap contract, `defi`).
    Labelled,
    /// Held by an unlabelled wallet after at least one hop.
    Unattributed,
    /// Still held by the payee.
    StillHeld,
    /// Left at a Bitcoin transaction node: the fee the transaction paid to the miner.
    Fee,
    /// Not followed further: hop, node or amount limit.
    Limit,
}

impl DestKind {
    /// The stable snake_case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Sanctioned => "sanctioned",
            Self::SanctionedLater => "sanctioned_later",
            Self::Mixer => "mixer",
            Self::ExchangeDeposit => "exchange_deposit",
            Self::Exchange => "exchange",
            Self::Bridge => "bridge",
            Self::Labelled => "labelled",
            Self::Unattributed => "unattributed",
            Self::StillHeld => "still_held",
            Self::Fee => "fee",
            Self::Limit => "limit",
        }
    }
}

/// One place a payout's value reached.
#[derive(Clone, Debug, Serialize)]
pub struct PayoutDestination {
    /// The address.
    pub address: Address,
    /// How the report classes it.
    pub kind: DestKind,
    /// Its label category, if labelled.
    pub category: Option<Category>,
    /// Its labels (entity names).
    pub labels: Vec<String>,
    /// The asset the value is in there: the payout's asset, or the asset a swap converted it
    /// into (amounts are raw units of this asset).
    #[serde(serialize_with = "crate::result::ser_display")]
    pub asset: Asset,
    /// Sanctioned entity as of the arrival (for `sanctioned`).
    pub sanctioned_entity: Option<String>,
    /// The trace status (`exited`, `followed`, ...).
    pub status: Status,
    /// Tainted value that reached it, raw units.
    pub reached: Amount,
    /// Tainted value that ended there (exits: what arrived; wallets: what they still hold).
    pub amount: Amount,
    /// Shortest hop count from the payee (the payee is 0).
    pub hops: u32,
    /// First tainted arrival.
    pub first_arrival: Timestamp,
    /// Transaction of the first tainted arrival.
    pub first_arrival_tx: TxHash,
    /// The transfers that carried the most taint there, payout first.
    pub path: Vec<PathHop>,
}

pub use crate::risk::RiskLevel;

/// The risk of a payout (or a payee, over its payouts; or the payee's screening verdict).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Risk {
    /// Level.
    pub level: RiskLevel,
    /// Score 0..100 (the highest reason's).
    pub score: f64,
    /// The day the verdict is as of (screening verdicts; `None` for payout facts).
    pub as_of: Option<String>,
    /// Why: typed reasons with their evidence addresses, highest score first.
    pub reasons: Vec<crate::risk::Reason>,
    /// Value per report category (`sanctioned`, `mixer`, `exchange`, ...), raw units of the
    /// payout's asset.
    pub exposure: BTreeMap<String, Amount>,
}

impl Risk {
    fn raise(&mut self, r: crate::risk::Reason) {
        self.level = self.level.max(r.level);
        if r.score > self.score {
            self.score = r.score;
        }
        if !self
            .reasons
            .iter()
            .any(|x| x.kind == r.kind && x.text == r.text)
        {
            self.reasons.push(r);
        }
        self.reasons
            .sort_by(|a, b| b.score.total_cmp(&a.score).then(a.text.cmp(&b.text)));
    }
}

/// One payout with where it went.
#[derive(Clone, Debug, Serialize)]
pub struct PayoutReport {
    /// Payee name.
    pub payee: String,
    /// Payee address.
    pub address: Address,
    /// Amount paid, raw units.
    pub amount: Amount,
    /// Asset.
    #[serde(serialize_with = "ser_display")]
    pub asset: Asset,
    /// Payout transaction.
    pub tx_hash: TxHash,
    /// Payout time.
    pub time: Timestamp,
    /// Batch file line, when from a batch.
    pub line: Option<u64>,
    /// Where the value went, exits first, then largest.
    pub destinations: Vec<PayoutDestination>,
    /// Value per report category (`still_held`, `exchange_deposit`, `sanctioned`, ...).
    pub totals: BTreeMap<String, Amount>,
    /// Risk.
    pub risk: Risk,
    /// Some balance went negative on the way: amounts are bounds.
    pub incomplete_history: bool,
}

/// One payee over all its payouts.
#[derive(Clone, Debug, Serialize)]
pub struct PayeeSummary {
    /// Name.
    pub payee: String,
    /// Address.
    pub address: Address,
    /// Number of payouts.
    pub payouts: usize,
    /// Paid per asset.
    pub paid: BTreeMap<String, Amount>,
    /// Category → asset → value.
    pub totals: BTreeMap<String, BTreeMap<String, Amount>>,
    /// The payee's verdict: its screening as of the report's day when the report was
    /// screened ([`apply_verdicts`]), otherwise the highest risk over its payouts and the
    /// convergence findings.
    pub risk: Risk,
    /// Keys of the convergence findings, shared deposits and payee clusters it is part of.
    pub findings: Vec<String>,
}

/// Totals of the whole report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// Payouts traced.
    pub payouts: usize,
    /// Distinct payees.
    pub payees: usize,
    /// Paid per asset.
    pub paid: BTreeMap<String, Amount>,
    /// Category → asset → value.
    pub totals: BTreeMap<String, BTreeMap<String, Amount>>,
    /// Payees per risk level.
    pub payees_by_risk: BTreeMap<String, usize>,
    /// Payees whose money reached sanctioned or high-risk categories.
    pub flagged_payees: Vec<String>,
    /// Batch rows not turned into payouts.
    pub issues: usize,
}

/// Parameters of a report.
#[derive(Clone, Debug)]
pub struct ReportParams {
    /// The trace bounds applied to every payout.
    pub trace: TraceParams,
    /// Convergence detection.
    pub convergence: ConvergenceParams,
    /// At most this many nodes in the flow graph.
    pub max_graph_nodes: usize,
    /// Address histories cached across the payouts' traces, in transfers (0: no cache).
    pub cache_transfers: usize,
    /// Threads tracing payouts in parallel (0: one per core, at most 8; 1: on the calling
    /// thread). The report is the same for any number.
    pub threads: usize,
    /// The scoring of exposures (the same rules as screening).
    pub scoring: crate::risk::Scoring,
    /// The day payout exposures are scored as of (recency); `None`: each as of its arrival.
    pub as_of: Option<paytrace_indexer::labels::Date>,
}

impl Default for ReportParams {
    fn default() -> Self {
        Self {
            trace: TraceParams {
                max_paths: 0,
                ..TraceParams::default()
            },
            convergence: ConvergenceParams::default(),
            max_graph_nodes: 120,
            cache_transfers: 1_000_000,
            threads: 0,
            scoring: crate::risk::Scoring::default(),
            as_of: None,
        }
    }
}

/// Parameters recorded in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ReportParameters {
    /// Taint model.
    pub model: crate::Model,
    /// Hops followed after the payee.
    pub hops: u32,
    /// Stop categories.
    pub stop_categories: Vec<Category>,
    /// Convergence parameters.
    pub convergence: ConvergenceParams,
    /// Label set version.
    pub label_set_version: Option<String>,
    /// Last indexed block per chain.
    pub checkpoints: BTreeMap<u16, paytrace_indexer::BlockNumber>,
}

/// The whole payout report (the JSON output of `paytrace report payouts`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Title (provider name or batch file).
    pub title: String,
    /// Provider addresses.
    pub providers: Vec<Address>,
    /// Parameters.
    pub parameters: ReportParameters,
    /// Assets shown.
    pub assets: AssetBook,
    /// Batch totals.
    pub summary: Summary,
    /// Per payout.
    pub payouts: Vec<PayoutReport>,
    /// Per payee.
    pub payees: Vec<PayeeSummary>,
    /// Addresses and clusters receiving value from several payees, ranked.
    pub convergence: Vec<Finding>,
    /// Payees the clustering puts in one cluster.
    pub payee_clusters: Vec<PayeeCluster>,
    /// Exchange deposit addresses that several payees paid into.
    pub shared_deposits: Vec<Finding>,
    /// Batch rows that are bad, duplicate or unmatched, by line.
    pub issues: Vec<batch::RowIssue>,
    /// The day the payees' verdicts are as of, when they are screening verdicts.
    pub verdicts_as_of: Option<String>,
    /// The flow graph drawn in the HTML report.
    pub graph: graph::FlowGraph,
}

/// Sorts payees by level (highest first) and name, and counts them per level in `summary`.
fn rank_payees(payees: &mut [PayeeSummary], summary: &mut Summary) {
    payees.sort_by(|a, b| b.risk.level.cmp(&a.risk.level).then(a.payee.cmp(&b.payee)));
    summary.payees_by_risk.clear();
    summary.flagged_payees.clear();
    for p in payees.iter() {
        let level = p.risk.level.as_str().to_owned();
        *summary.payees_by_risk.entry(level).or_default() += 1;
        if p.risk.level >= RiskLevel::High {
            summary.flagged_payees.push(p.payee.clone());
        }
    }
}

/// The risk reason of one payout destination, scored by [`crate::risk::Scoring::score`]
/// (category severity, hops after the payee's direct counterparty, share of the payout,
/// listed at the time or later, recency as of [`ReportParams::as_of`]); `None` when the
/// category has no severity.
fn payout_reason(
    d: &crate::Destination,
    kind: DestKind,
    entity: Option<&str>,
    share: f64,
    params: &ReportParams,
) -> Option<crate::risk::Reason> {
    use crate::risk::{ExposureKind, Reason, ReasonKind, hops_text};
    let (category, at_time) = match kind {
        DestKind::Sanctioned => (Category::new("sanctioned"), true),
        DestKind::SanctionedLater => (Category::new("sanctioned"), false),
        DestKind::StillHeld | DestKind::Fee | DestKind::Limit => return None,
        _ => (d.category.clone()?, true),
    };
    let sc = &params.scoring;
    if sc.severity(&category) == 0 || d.amount.is_zero() {
        return None;
    }
    let (ek, hops) = if d.hops <= 1 {
        (ExposureKind::Direct, 0)
    } else {
        (ExposureKind::Indirect, d.hops - 1)
    };
    let now = params
        .as_of
        .map_or(d.first_arrival, crate::risk::end_of_day);
    let score = sc.score(&category, ek, hops, share, at_time, d.first_arrival, now);
    let listed = match (kind, entity) {
        (DestKind::Sanctioned, Some(e)) => format!(" (sanctioned: {e})"),
        (DestKind::SanctionedLater, _) => " (listed as sanctioned only after the arrival)".into(),
        _ => String::new(),
    };
    let floor = if ek == ExposureKind::Indirect && share < sc.min_share {
        format!("; below the {:.2}% materiality floor", sc.min_share * 100.0)
    } else {
        String::new()
    };
    Some(Reason {
        kind: match ek {
            ExposureKind::Direct => ReasonKind::Direct,
            ExposureKind::Indirect => ReasonKind::Indirect,
        },
        category: category.to_string(),
        score,
        level: sc.level(score),
        text: format!(
            "reached {} {}{listed} {} after the payee, {:.2}% of the payout{floor}",
            category,
            d.address,
            hops_text(d.hops),
            share * 100.0
        ),
        addresses: vec![d.address],
        labelled_at_time: at_time,
    })
}

/// Replaces every payee's risk by its verdict: the screening of its address (the one scoring
/// function of `screen`, alerts and the demo) as of `p.as_of`, on `threads` threads; then
/// re-ranks the payees and recounts the summary. The same address, day and parameters give the
/// same level as `paytrace screen`.
pub fn apply_verdicts<S, H>(
    report: &mut Report,
    src: &S,
    history: &H,
    p: &crate::risk::ScreenParams,
    threads: usize,
) -> Result<(), TraceError>
where
    S: FlowSource + Sync,
    H: crate::risk::LabelHistory + Sync,
{
    let addresses: Vec<Address> = report.payees.iter().map(|x| x.address).collect();
    let mut failed = None;
    let mut results = Vec::with_capacity(addresses.len());
    crate::risk::screen_each(src, history, &addresses, p, threads, |_, r| match r {
        Ok(r) => {
            results.push(r);
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    for (payee, r) in report.payees.iter_mut().zip(results) {
        let exposure = std::mem::take(&mut payee.risk.exposure);
        payee.risk = verdict_of(&r);
        payee.risk.exposure = exposure;
    }
    rank_payees(&mut report.payees, &mut report.summary);
    report.verdicts_as_of = Some(p.as_of.to_string());
    Ok(())
}

/// A screening result as a report [`Risk`].
pub fn verdict_of(r: &crate::risk::ScreenResult) -> Risk {
    Risk {
        level: r.level,
        score: r.score,
        as_of: Some(r.as_of.clone()),
        reasons: r.reasons.clone(),
        exposure: BTreeMap::new(),
    }
}

/// Back-chains through the tainted transfers of a trace from `to` to the seed: at each address
/// the incoming edge carrying the most taint before the previous one.
pub(crate) fn back_chain(
    incoming: &HashMap<Address, Vec<&FlowEdge>>,
    seed: TransferKey,
    to: &Address,
    asset: &Asset,
) -> Vec<PathHop> {
    let mut hops = Vec::new();
    let mut at = *to;
    let mut asset = *asset;
    let mut before: Option<TransferKey> = None;
    let mut before_tx: Option<TxHash> = None;
    for _ in 0..64 {
        let edges = incoming.get(&at);
        let same = edges.and_then(|v| {
            v.iter()
                .filter(|e| e.asset == asset && before.is_none_or(|b| e.key < b))
                .max_by_key(|e| (e.tainted, std::cmp::Reverse(e.key)))
        });
        // Taint changes asset only at a swap, within the transaction of the swap's payout:
        // with no arrival in the asset, the path goes on through what the swap was paid with.
        let best = same.or_else(|| {
            edges.and_then(|v| {
                v.iter()
                    .filter(|e| e.asset != asset && before_tx.is_some_and(|t| e.tx_hash == t))
                    .max_by_key(|e| (e.tainted, std::cmp::Reverse(e.key)))
            })
        });
        let Some(best) = best else {
            break;
        };
        asset = best.asset;
        hops.push(PathHop {
            tx_hash: best.tx_hash,
            chain: best.key.chain,
            block: best.key.block,
            time: best.time,
            from: best.from,
            to: best.to,
            amount: best.amount,
            tainted: best.tainted,
        });
        if best.key == seed {
            break;
        }
        at = best.from;
        before = Some(best.key);
        before_tx = Some(best.tx_hash);
    }
    hops.reverse();
    hops
}

fn add(m: &mut BTreeMap<String, Amount>, k: &str, v: Amount) -> Result<(), TraceError> {
    if v.is_zero() {
        return Ok(());
    }
    let e = m.entry(k.to_owned()).or_default();
    *e = e.checked_add(v)?;
    Ok(())
}

fn add2(
    m: &mut BTreeMap<String, BTreeMap<String, Amount>>,
    k: &str,
    asset_key: &str,
    v: Amount,
) -> Result<(), TraceError> {
    add(m.entry(k.to_owned()).or_default(), asset_key, v)
}

/// Classifies a destination of a payout trace.
fn classify<A: AsOfLabels>(d: &crate::Destination, asof: &A) -> (DestKind, Option<String>, Amount) {
    let cat = d.category.as_ref().map(Category::as_str);
    match d.status {
        Status::Payee => (DestKind::StillHeld, None, d.held),
        Status::Exited => match cat {
            Some("sanctioned") => match asof.sanctioned_at(&d.address, d.first_arrival) {
                Some(e) => (DestKind::Sanctioned, Some(e), d.amount),
                None => (DestKind::SanctionedLater, None, d.amount),
            },
            Some("mixer") => (DestKind::Mixer, None, d.amount),
            Some("exchange_deposit") => (DestKind::ExchangeDeposit, None, d.amount),
            Some("exchange") => (DestKind::Exchange, None, d.amount),
            Some("bridge") => (DestKind::Bridge, None, d.amount),
            _ => (DestKind::Labelled, None, d.amount),
        },
        // Converted into other assets at a swap (followed from there in those assets).
        Status::Swapped => (DestKind::Labelled, None, d.amount),
        // What a Bitcoin transaction's outputs did not carry on went to the miner.
        Status::Followed if d.address.is_tx() => (DestKind::Fee, None, d.held),
        Status::Followed if cat.is_some() => (DestKind::Labelled, None, d.held),
        Status::Followed => (DestKind::Unattributed, None, d.held),
        Status::AtDepthLimit | Status::BelowMinAmount | Status::NodeLimit | Status::TimeBudget => {
            (DestKind::Limit, None, d.amount)
        }
    }
}

/// What a payout became in other assets through swaps: per asset, the payout's value that went
/// into swaps (payout asset, `Swapped` destinations) and everything the trace carries in that
/// asset; used to express a converted destination's amount as a share of the payout.
struct Converted {
    /// Payout value held by swap routers (entered a swap).
    swapped: Amount,
    /// Per other asset: the tainted value of all its destinations (what the swaps produced).
    produced: BTreeMap<Asset, Amount>,
}

impl Converted {
    fn new(p: &Payout, r: &TraceResult) -> Result<Self, TraceError> {
        let mut swapped = Amount::ZERO;
        let mut produced: BTreeMap<Asset, Amount> = BTreeMap::new();
        for d in &r.destinations {
            if d.asset == p.asset {
                if d.status == Status::Swapped {
                    swapped = swapped.checked_add(d.amount)?;
                }
            } else if d.hops >= 1 {
                // Where the converted value ended: exits keep what arrived, wallets what they
                // still hold (as `classify` counts it).
                let end = match d.status {
                    Status::Followed | Status::Payee => d.held,
                    _ => d.amount,
                };
                let e = produced.entry(d.asset).or_default();
                *e = e.checked_add(end)?;
            }
        }
        Ok(Self { swapped, produced })
    }

    /// Share of the payout that ended at `d`: in the payout's asset its amount over the payout;
    /// in a converted asset, the swapped share of the payout times `d`'s share of what the swaps
    /// produced in that asset (an upper bound when one payout was swapped into several assets).
    fn share(&self, p: &Payout, d: &crate::Destination) -> f64 {
        use crate::risk::ratio;
        if d.asset == p.asset {
            return ratio(d.amount, p.amount);
        }
        let of = self.produced.get(&d.asset).copied().unwrap_or_default();
        (ratio(self.swapped, p.amount) * ratio(d.amount, of)).min(1.0)
    }
}

/// Turns one payout's trace into its report entry (risk from its own destinations only,
/// scored by the screening rules: severity, hops, share of the payout, listing date).
fn summarise<A: AsOfLabels>(
    p: &Payout,
    r: &TraceResult,
    asof: &A,
    params: &ReportParams,
) -> Result<PayoutReport, TraceError> {
    let mut incoming: HashMap<Address, Vec<&FlowEdge>> = HashMap::new();
    for e in &r.edges {
        incoming.entry(e.to).or_default().push(e);
    }
    let mut destinations = Vec::new();
    let mut totals = BTreeMap::new();
    let mut risk = Risk::default();
    let converted = Converted::new(p, r)?;
    for d in &r.destinations {
        let (kind, entity, amount) = classify(d, asof);
        // Totals are in the payout's asset: value a swap converted is counted once, at the swap
        // (its destinations in other assets are listed and scored, not added again).
        if d.asset == p.asset {
            add(&mut totals, kind.as_str(), amount)?;
        }
        let share = converted.share(p, d);
        if let Some(reason) = payout_reason(d, kind, entity.as_deref(), share, params) {
            risk.raise(reason);
        }
        if kind == DestKind::StillHeld {
            // The payee itself: no path, listed only when it still holds value.
            if amount.is_zero() {
                continue;
            }
        } else if amount.is_zero() && d.status != Status::Exited {
            continue;
        }
        let path = if kind == DestKind::StillHeld {
            Vec::new()
        } else {
            back_chain(&incoming, p.key, &d.address, &d.asset)
        };
        destinations.push(PayoutDestination {
            address: d.address,
            kind,
            category: d.category.clone(),
            labels: d.labels.clone(),
            asset: d.asset,
            sanctioned_entity: entity,
            status: d.status,
            reached: d.amount,
            amount,
            hops: d.hops,
            first_arrival: d.first_arrival,
            first_arrival_tx: d.first_arrival_tx,
            path,
        });
    }
    destinations.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then(b.amount.cmp(&a.amount))
            .then(a.address.cmp(&b.address))
    });
    risk.exposure = totals.clone();
    Ok(PayoutReport {
        payee: p.payee.clone(),
        address: p.address,
        amount: p.amount,
        asset: p.asset,
        tx_hash: p.tx_hash,
        time: p.time,
        line: p.line,
        destinations,
        totals,
        risk,
        incomplete_history: r.incomplete_history,
    })
}

/// Builds the report: one forward trace per payout, the per-payee and batch views, convergence,
/// payee clusters, shared deposit addresses and the flow graph. `issues` (from a batch file)
/// are carried into the report.
///
/// The payouts are traced on [`ReportParams::threads`] threads sharing one history cache
/// (`source`, `labels` and `asof` are shared, hence `Sync`); everything after the traces runs
/// on the calling thread in payout order, so the report does not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn build_report<
    S: FlowSource + Sync,
    L: LabelSource + Sync,
    A: AsOfLabels + Sync,
    C: ClusterLookup,
>(
    source: &S,
    labels: &L,
    asof: &A,
    clusters: &C,
    title: &str,
    providers: &[Address],
    payouts: &[Payout],
    issues: Vec<batch::RowIssue>,
    assets: AssetBook,
    params: &ReportParams,
) -> Result<Report, TraceError> {
    build_report_with_progress(
        source,
        labels,
        asof,
        clusters,
        title,
        providers,
        payouts,
        issues,
        assets,
        params,
        &mut || {},
    )
}

/// [`build_report`], calling `traced` once per payout traced (in payout order), so a caller
/// can show progress.
#[allow(clippy::too_many_arguments)] // build_report's arguments and the progress hook
pub fn build_report_with_progress<
    S: FlowSource + Sync,
    L: LabelSource + Sync,
    A: AsOfLabels + Sync,
    C: ClusterLookup,
>(
    source: &S,
    labels: &L,
    asof: &A,
    clusters: &C,
    title: &str,
    providers: &[Address],
    payouts: &[Payout],
    issues: Vec<batch::RowIssue>,
    assets: AssetBook,
    params: &ReportParams,
    traced: &mut dyn FnMut(),
) -> Result<Report, TraceError> {
    let mut reports = Vec::with_capacity(payouts.len());
    let mut traces = Vec::with_capacity(payouts.len());
    let mut checkpoints = BTreeMap::new();
    let cached = crate::CachedSource::new(source, params.cache_transfers);
    // Each job keeps only what the report needs of its trace: the payout's entry, the digest
    // for convergence and the graph, and the checkpoints (the same for every trace).
    let job = |i: usize| -> Result<_, TraceError> {
        let p = &payouts[i];
        let r = trace_forward(
            &cached,
            labels,
            &Seed::Transfers(vec![p.key]),
            &params.trace,
        )?;
        Ok((
            summarise(p, &r, asof, params)?,
            convergence::TraceDigest::new(p, &r)?,
            r.parameters.checkpoints,
        ))
    };
    let mut failed = None;
    crate::par::for_each_ordered(payouts.len(), params.threads, job, |_, r| match r {
        Ok((report, digest, cp)) => {
            traced();
            reports.push(report);
            traces.push(digest);
            checkpoints = cp;
            true
        }
        Err(e) => {
            failed = Some(e);
            false
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    if payouts.is_empty() {
        checkpoints = source
            .checkpoints()
            .map_err(TraceError::source)?
            .into_iter()
            .map(|(c, b)| (c.0, b))
            .collect();
    }
    let conv = convergence::detect(&traces, payouts, clusters, &params.convergence, &assets)?;
    // Convergence raises the risk of the payouts involved (reports built without screening;
    // screened reports replace the payee's risk by its verdict).
    let sc = &params.scoring;
    let mut part_of: BTreeMap<Address, Vec<String>> = BTreeMap::new();
    for f in conv.findings.iter().chain(&conv.shared_deposits) {
        for payee in &f.payees {
            part_of
                .entry(payee.address)
                .or_default()
                .push(f.key.clone());
            for r in reports.iter_mut().filter(|r| r.address == payee.address) {
                r.risk.raise(crate::risk::Reason {
                    kind: crate::risk::ReasonKind::Convergence,
                    category: "convergence".into(),
                    score: sc.network_score,
                    level: sc.level(sc.network_score),
                    text: format!(
                        "value meets that of {} other payee(s) at {}",
                        f.payees.len().saturating_sub(1),
                        f.key
                    ),
                    addresses: f.payees.iter().map(|x| x.address).take(10).collect(),
                    labelled_at_time: true,
                });
            }
        }
    }
    for c in &conv.payee_clusters {
        for a in &c.payees {
            part_of
                .entry(a.address)
                .or_default()
                .push(format!("cluster:{}", c.cluster));
            for r in reports.iter_mut().filter(|r| r.address == a.address) {
                r.risk.raise(crate::risk::Reason {
                    kind: crate::risk::ReasonKind::Convergence,
                    category: "payee_cluster".into(),
                    score: sc.network_score,
                    level: sc.level(sc.network_score),
                    text: format!(
                        "payee address is in cluster {} with {} other payee(s)",
                        c.cluster,
                        c.payees.len().saturating_sub(1)
                    ),
                    addresses: c.payees.iter().map(|x| x.address).take(10).collect(),
                    labelled_at_time: true,
                });
            }
        }
    }
    // Per payee and batch totals.
    let mut payees: BTreeMap<Address, PayeeSummary> = BTreeMap::new();
    let mut summary = Summary {
        payouts: reports.len(),
        issues: issues.len(),
        ..Summary::default()
    };
    for r in &reports {
        let e = payees.entry(r.address).or_insert_with(|| PayeeSummary {
            payee: r.payee.clone(),
            address: r.address,
            payouts: 0,
            paid: BTreeMap::new(),
            totals: BTreeMap::new(),
            risk: Risk::default(),
            findings: part_of.get(&r.address).cloned().unwrap_or_default(),
        });
        e.payouts += 1;
        let key = asset_key(&r.asset, &r.address);
        add(&mut e.paid, &key, r.amount)?;
        add(&mut summary.paid, &key, r.amount)?;
        for (k, v) in &r.totals {
            add2(&mut e.totals, k, &key, *v)?;
            add2(&mut summary.totals, k, &key, *v)?;
        }
        for reason in &r.risk.reasons {
            e.risk.raise(reason.clone());
        }
        for (k, v) in &r.risk.exposure {
            add(&mut e.risk.exposure, k, *v)?;
        }
    }
    summary.payees = payees.len();
    let mut payees: Vec<PayeeSummary> = payees.into_values().collect();
    rank_payees(&mut payees, &mut summary);
    let graph = graph::FlowGraph::build(
        &traces,
        &conv,
        providers,
        labels,
        clusters,
        params.max_graph_nodes,
    )?;
    Ok(Report {
        title: title.to_owned(),
        providers: providers.to_vec(),
        parameters: ReportParameters {
            model: params.trace.model,
            hops: params.trace.max_hops,
            stop_categories: params.trace.stop.categories().cloned().collect(),
            convergence: params.convergence.clone(),
            label_set_version: labels.version(),
            checkpoints,
        },
        assets,
        summary,
        payouts: reports,
        payees,
        convergence: conv.findings,
        payee_clusters: conv.payee_clusters,
        shared_deposits: conv.shared_deposits,
        issues,
        verdicts_as_of: None,
        graph,
    })
}
