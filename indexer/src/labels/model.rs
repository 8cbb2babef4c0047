//! The label model: categories, labels with provenance and validity, sources and versions.

use super::address::LabelChain;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, fmt, str::FromStr};

/// The fixed category taxonomy.
///
/// Stored by variant index: append new variants at the end only.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Payroll / payout provider.
    PayrollProvider,
    /// Exchange (hot, cold or reserve wallet).
    Exchange,
    /// Deposit address of an exchange customer.
    ExchangeDeposit,
    /// On a sanctions list.
    Sanctioned,
    /// Mixer / tumbler.
    Mixer,
    /// Cross-chain bridge.
    Bridge,
    /// DeFi protocol (DEX, lending, ...).
    Defi,
    /// Scam or phishing.
    Scam,
    /// Hack, exploit or theft.
    Hack,
    /// Darknet market.
    DarknetMarket,
    /// Ransomware.
    Ransomware,
    /// Gambling.
    Gambling,
    /// OTC desk.
    Otc,
    /// Mining pool or miner.
    Miner,
    /// Hosted wallet service.
    WalletService,
    /// Frozen / blocklisted by a token issuer (e.g. the USDT blacklist).
    Blocklisted,
    /// Known to belong to someone, nothing more.
    Unknown,
}

impl Category {
    /// Every category, in taxonomy order.
    pub const ALL: [Self; 17] = [
        Self::PayrollProvider,
        Self::Exchange,
        Self::ExchangeDeposit,
        Self::Sanctioned,
        Self::Mixer,
        Self::Bridge,
        Self::Defi,
        Self::Scam,
        Self::Hack,
        Self::DarknetMarket,
        Self::Ransomware,
        Self::Gambling,
        Self::Otc,
        Self::Miner,
        Self::WalletService,
        Self::Blocklisted,
        Self::Unknown,
    ];

    /// The snake_case name used in JSON and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::PayrollProvider => "payroll_provider",
            Self::Exchange => "exchange",
            Self::ExchangeDeposit => "exchange_deposit",
            Self::Sanctioned => "sanctioned",
            Self::Mixer => "mixer",
            Self::Bridge => "bridge",
            Self::Defi => "defi",
            Self::Scam => "scam",
            Self::Hack => "hack",
            Self::DarknetMarket => "darknet_market",
            Self::Ransomware => "ransomware",
            Self::Gambling => "gambling",
            Self::Otc => "otc",
            Self::Miner => "miner",
            Self::WalletService => "wallet_service",
            Self::Blocklisted => "blocklisted",
            Self::Unknown => "unknown",
        }
    }

    /// Maps a category word of a common source (GraphSense, Etherscan, OFAC, ...) to the
    /// taxonomy. Case, `-` and spaces are ignored (`hot-wallet` = `hot_wallet`). `None` for
    /// a word with no mapping: the caller reports it rather than guessing.
    pub fn from_word(word: &str) -> Option<Self> {
        let w: String = word
            .trim()
            .chars()
            .map(|c| match c {
                '-' | ' ' | '/' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        if let Some(c) = Self::ALL.iter().find(|c| c.as_str() == w) {
            return Some(*c);
        }
        Some(match w.as_str() {
            "payroll" | "payroll_service" | "payout_provider" => Self::PayrollProvider,
            "exchange_hot_wallet"
            | "hot_wallet"
            | "exchange_cold_wallet"
            | "cold_wallet"
            | "exchange_wallet"
            | "cex"
            | "centralized_exchange"
            | "reserve" => Self::Exchange,
            "deposit" | "deposit_address" | "exchange_deposit_address" => Self::ExchangeDeposit,
            "sanction" | "sanctions" | "ofac" | "sdn" => Self::Sanctioned,
            "mixing_service" | "mixing" | "tumbler" | "coinjoin" | "privacy_protocol" => {
                Self::Mixer
            }
            "bridges" | "cross_chain_bridge" => Self::Bridge,
            "dex" | "defi_dex" | "defi_lending" | "lending" | "amm" | "defi_protocol" => Self::Defi,
            "phishing" | "phish" | "phish_hack" | "fake_phishing" | "scam_phishing"
            | "ponzi_scheme" | "ponzi" | "honeypot" | "fraud" | "scammer" => Self::Scam,
            "service_hack" | "hacker" | "heist" | "exploit" | "exploiter" | "theft"
            | "hack_theft" | "stolen_funds" => Self::Hack,
            "market" | "darknet" | "darkweb" | "darkweb_market" | "marketplace" => {
                Self::DarknetMarket
            }
            "casino" | "gaming" => Self::Gambling,
            "otc_desk" | "otc_broker" => Self::Otc,
            "mining_pool" | "mining" | "pool" => Self::Miner,
            "wallet" | "hosted_wallet" | "custodial_wallet" => Self::WalletService,
            "black_list" | "blacklist" | "blacklisted" | "blocklist" | "frozen" => {
                Self::Blocklisted
            }
            "user" | "entity" | "organization" | "individual" | "none" => Self::Unknown,
            _ => return None,
        })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A category word with no mapping to the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown category {word:?} (known: payroll_provider, exchange, exchange_deposit, sanctioned, mixer, bridge, defi, scam, hack, darknet_market, ransomware, gambling, otc, miner, wallet_service, blocklisted, unknown)"
)]
pub struct UnknownCategory {
    /// The word.
    pub word: String,
}

impl FromStr for Category {
    type Err = UnknownCategory;

    /// Parses a taxonomy name or a known synonym (see [`Category::from_word`]).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_word(s).ok_or_else(|| UnknownCategory { word: s.to_owned() })
    }
}

/// One attribution of an address, with provenance and validity in time.
///
/// Stored with postcard: fields are never skipped, and new fields go at the end.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Label {
    /// The address in canonical form (EIP-55, base58 `T...`, bitcoin canonical, verbatim).
    pub address: String,
    /// Chain family of the address.
    pub chain: LabelChain,
    /// Currency code declared by the source (`ETH`, `XBT`, `USDT`, ...), if any.
    pub currency: Option<String>,
    /// Entity / actor the address belongs to.
    pub entity: String,
    /// The source's own label text, if it differs from the entity.
    pub name: Option<String>,
    /// Category in the taxonomy.
    pub category: Category,
    /// Source name (e.g. `ofac-sdn`).
    pub source: String,
    /// Source version the label first appeared in.
    pub source_version: String,
    /// Confidence 0–100.
    pub confidence: u8,
    /// First day the label holds, when known (`None`: since before the source knew).
    pub valid_from: Option<Date>,
    /// First day the label no longer holds (exclusive), when it ended.
    pub valid_to: Option<Date>,
    /// Source version that no longer lists the address (delisting), if any.
    pub removed_in: Option<String>,
    /// Sanctions programme(s), for OFAC entries.
    pub program: Option<String>,
    /// URL of the evidence, when the source gives one per entry.
    pub url: Option<String>,
    /// Other fields of the source row, by column name.
    pub notes: BTreeMap<String, String>,
}

impl Label {
    /// Whether the label holds on `day`.
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_to.is_none_or(|t| day < t)
    }

    /// Whether two labels say the same thing (same source, entity, name, category,
    /// currency), regardless of dates and versions.
    pub fn same_claim(&self, other: &Self) -> bool {
        self.source == other.source
            && self.entity == other.entity
            && self.name == other.name
            && self.category == other.category
            && self.currency == other.currency
            && self.chain == other.chain
    }
}

/// One imported version of a source.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SourceVersion {
    /// Version string (a date `YYYY-MM-DD` when known).
    pub version: String,
    /// The version's date, if the version is a date.
    pub date: Option<Date>,
    /// Import time, RFC 3339 UTC.
    pub imported_at: String,
    /// Files (or URLs) the version was read from.
    pub files: Vec<String>,
    /// Labels of this source active after the import.
    pub active: u64,
    /// Labels added by this version.
    pub added: u64,
    /// Labels delisted by this version.
    pub removed: u64,
}

/// A label source with its imported versions, oldest first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SourceInfo {
    /// Source name.
    pub name: String,
    /// Importer format (`ofac-csv`, `tagpack`, ...).
    pub format: String,
    /// URL of the source, when known.
    pub url: Option<String>,
    /// Imported versions, oldest first.
    pub versions: Vec<SourceVersion>,
}

impl SourceInfo {
    /// The newest imported version.
    pub fn latest(&self) -> Option<&SourceVersion> {
        self.versions.last()
    }
}

/// Parses a date `YYYY-MM-DD`, `YYYY-MM` (first of the month) or an RFC 3339 / ISO date-time
/// (its date part).
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    if let Ok(d) = s.parse::<Date>() {
        return Some(d);
    }
    if s.len() == 7 {
        return format!("{s}-01").parse::<Date>().ok();
    }
    match s.as_bytes().get(10) {
        Some(b'T' | b't' | b' ') => s.get(..10).and_then(|d| d.parse::<Date>().ok()),
        _ => None,
    }
}

/// Today's date in UTC.
pub fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// The UTC date of a unix timestamp in seconds (e.g. a block time), for as-of look-ups.
pub fn date_of_unix(secs: i64) -> Option<Date> {
    jiff::Timestamp::from_second(secs)
        .ok()
        .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;

    #[test]
    fn category_names_roundtrip() {
        for c in Category::ALL {
            assert_eq!(c.as_str().parse::<Category>(), Ok(c));
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn synonyms() {
        assert_eq!(
            Category::from_word("exchange_hot_wallet"),
            Some(Category::Exchange)
        );
        assert_eq!(Category::from_word("Hot-Wallet"), Some(Category::Exchange));
        assert_eq!(Category::from_word("mixing_service"), Some(Category::Mixer));
        assert_eq!(Category::from_word("sanction"), Some(Category::Sanctioned));
        assert_eq!(Category::from_word("service_hack"), Some(Category::Hack));
        assert_eq!(Category::from_word("phishing"), Some(Category::Scam));
        assert_eq!(
            Category::from_word("black_list"),
            Some(Category::Blocklisted)
        );
        assert_eq!(Category::from_word("weird"), None);
        assert!("weird".parse::<Category>().is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("2022-08-08"),
            Some(jiff::civil::date(2022, 8, 8))
        );
        assert_eq!(parse_date("2026-05"), Some(jiff::civil::date(2026, 5, 1)));
        assert_eq!(
            parse_date("2022-08-08T10:00:00Z"),
            Some(jiff::civil::date(2022, 8, 8))
        );
        assert_eq!(parse_date("2022-13-08"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(date_of_unix(0), Some(jiff::civil::date(1970, 1, 1)));
    }

    #[test]
    fn postcard_roundtrip() {
        let l = Label {
            address: "0x0".into(),
            chain: LabelChain::Evm,
            currency: Some("ETH".into()),
            entity: "E".into(),
            name: None,
            category: Category::Mixer,
            source: "s".into(),
            source_version: "v".into(),
            confidence: 100,
            valid_from: Some(jiff::civil::date(2022, 8, 8)),
            valid_to: None,
            removed_in: None,
            program: None,
            url: None,
            notes: BTreeMap::from([("k".into(), "v".into())]),
        };
        let b = postcard::to_allocvec(&l).unwrap();
        assert_eq!(postcard::from_bytes::<Label>(&b).unwrap(), l);
        assert!(l.valid_on(jiff::civil::date(2023, 1, 1)));
        assert!(!l.valid_on(jiff::civil::date(2022, 1, 1)));
    }
}
