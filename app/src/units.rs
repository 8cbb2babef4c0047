//! Token units for display: which symbol and decimals every asset of every chain has.
//!
//! Sources, the later overriding the earlier: the native asset of each chain kind (ETH/18 on
//! EVM chains, BTC/8 on Bitcoin), the store's token metadata (built-in list, read from the
//! contract, or declared by the demo), the config's `[[chains.NAME.tokens]]`, and `--token
//! ADDR=SYMBOL:DECIMALS` flags. An asset without a symbol and decimals is shown by address
//! and raw units, never with a guessed unit. The text itself comes from one function,
//! [`paytrace_tracer::report::format_amount`], through the [`AssetBook`]s built here.

use paytrace_config::Config;
use paytrace_indexer::{
    Address, Amount, Asset, ChainId, ChainInfo, ChainKind, Store, StoreError, store::MetaSource,
};
use paytrace_tracer::report::{AssetBook, AssetInfo, format_amount};
use std::collections::BTreeMap;

/// Why units could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum UnitsError {
    /// The store failed.
    #[error("reading token metadata: {0}")]
    Store(#[from] StoreError),
    /// A `--token` flag or a config token entry is malformed.
    #[error("{what} {input:?}: {reason}")]
    Bad {
        /// Where it came from (`--token`, `config chains.NAME.tokens`).
        what: String,
        /// The text.
        input: String,
        /// What is wrong.
        reason: String,
    },
}

/// Parses a `--token ADDR=SYMBOL:DECIMALS` flag.
pub fn parse_token_flag(s: &str) -> Result<(Address, String, u8), UnitsError> {
    let bad = |reason: &str| UnitsError::Bad {
        what: "--token".into(),
        input: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (a, rest) = s
        .split_once('=')
        .ok_or_else(|| bad("expected ADDR=SYMBOL:DECIMALS"))?;
    let (sym, dec) = rest
        .rsplit_once(':')
        .ok_or_else(|| bad("expected ADDR=SYMBOL:DECIMALS"))?;
    let a: Address = a.trim().parse().map_err(|e| bad(&format!("{e}")))?;
    let dec: u8 = dec
        .trim()
        .parse()
        .map_err(|_| bad("decimals must be an integer from 0 to 255"))?;
    let sym = sym.trim();
    if sym.is_empty() {
        return Err(bad("empty symbol"));
    }
    Ok((a, sym.to_owned(), dec))
}

/// Symbols and decimals of the assets of a store's chains.
#[derive(Clone, Debug, Default)]
pub struct Units {
    chains: BTreeMap<ChainId, ChainInfo>,
    /// Per chain and token: symbol and decimals, and whether only the contract claims them
    /// (read from the chain rather than configured, declared or well known).
    tokens: BTreeMap<(ChainId, Address), (String, u8, bool)>,
    /// `--token` flags: every chain.
    flags: BTreeMap<Address, (String, u8)>,
}

impl Units {
    /// Loads the chains and token metadata of `store` and the config's token lists.
    pub fn load(store: &Store, config: &Config) -> Result<Self, UnitsError> {
        let chains: BTreeMap<ChainId, ChainInfo> =
            store.chains()?.into_iter().map(|c| (c.id, c)).collect();
        let mut tokens = BTreeMap::new();
        for (chain, a, meta) in store.token_metas()? {
            if let Some((s, d)) = meta.units() {
                let claimed = meta.source == MetaSource::Chain;
                tokens.insert((chain, a), (s.to_owned(), d, claimed));
            }
        }
        for c in chains.values() {
            let Some(cfg) = config.chains.get(&c.name) else {
                continue;
            };
            for t in &cfg.tokens {
                let a: Address =
                    t.address
                        .to_ascii_lowercase()
                        .parse()
                        .map_err(|e| UnitsError::Bad {
                            what: format!("config chains.{}.tokens address", c.name),
                            input: t.address.clone(),
                            reason: format!("{e}"),
                        })?;
                tokens.insert((c.id, a), (t.symbol.clone(), t.decimals, false));
            }
        }
        Ok(Self {
            chains,
            tokens,
            flags: BTreeMap::new(),
        })
    }

    /// Adds `--token ADDR=SYMBOL:DECIMALS` flags (for every chain; they override the store
    /// and the config).
    pub fn with_flags(mut self, flags: &[String]) -> Result<Self, UnitsError> {
        for f in flags {
            let (a, s, d) = parse_token_flag(f)?;
            self.flags.insert(a, (s, d));
        }
        Ok(self)
    }

    /// Symbol and decimals of `asset` on `chain`, when known.
    pub fn info(&self, chain: ChainId, asset: &Asset) -> Option<(String, u8)> {
        match asset {
            Asset::Native => self.chains.get(&chain).map(|c| {
                let (s, d) = (c.kind.native_symbol(), c.kind.native_decimals());
                (s.to_owned(), d)
            }),
            Asset::Token(a) => self.flags.get(a).cloned().or_else(|| {
                self.tokens
                    .get(&(chain, *a))
                    .map(|(s, d, _)| (s.clone(), *d))
            }),
        }
    }

    /// The assets of `chain` as a book for reports and text outputs; `None`: of every chain
    /// (the native asset only when all chains share one kind, tokens of every chain).
    pub fn book(&self, chain: Option<ChainId>) -> AssetBook {
        let mut b = AssetBook::new();
        let kinds: Vec<ChainKind> = match chain {
            Some(c) => self.chains.get(&c).map(|c| c.kind).into_iter().collect(),
            None => self.chains.values().map(|c| c.kind).collect(),
        };
        if let Some(k) = kinds.first()
            && kinds.iter().all(|x| x == k)
        {
            let (s, d) = (k.native_symbol(), k.native_decimals());
            b.insert(Asset::Native, s, d);
        }
        for ((c, a), (s, d, claimed)) in &self.tokens {
            if chain.is_none_or(|x| x == *c) {
                if *claimed {
                    b.insert_claimed(Asset::Token(*a), s, *d);
                } else {
                    b.insert(Asset::Token(*a), s, *d);
                }
            }
        }
        for (a, (s, d)) in &self.flags {
            b.insert(Asset::Token(*a), s, *d);
        }
        b
    }

    /// [`Units::book`] for output about `address`: without a chain, in a store of EVM and
    /// Bitcoin chains, the native asset is the one of the address's kind (an EVM account or a
    /// Bitcoin script or transaction node).
    pub fn book_for(&self, chain: Option<ChainId>, address: &Address) -> AssetBook {
        let mut b = self.book(chain);
        if chain.is_none() && b.info(&Asset::Native).is_none() {
            let kind = match address {
                Address::Evm(_) => ChainKind::Evm,
                Address::Script(_) | Address::Tx(_) => ChainKind::Bitcoin,
            };
            if self.chains.values().any(|c| c.kind == kind) {
                let (s, d) = (kind.native_symbol(), kind.native_decimals());
                b.insert(Asset::Native, s, d);
            }
        }
        b
    }

    /// `amount` of `asset` on `chain` as text (`5178.15 USDC`, or raw units of the address).
    pub fn format(&self, chain: ChainId, asset: &Asset, amount: Amount) -> String {
        let info = self.info(chain, asset).map(|(symbol, decimals)| AssetInfo {
            symbol,
            decimals,
            asset: *asset,
        });
        format_amount(info.as_ref(), &asset.to_string(), amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paytrace_indexer::store::TokenMeta;

    #[test]
    fn store_metadata_config_and_flags_override_in_that_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let eth = store.register_chain("eth", ChainKind::Evm).expect("chain");
        let btc = store
            .register_chain("btc", ChainKind::Bitcoin)
            .expect("chain");
        let t1 = Address::Evm([1; 20]);
        let t2 = Address::Evm([2; 20]);
        let t3 = Address::Evm([3; 20]);
        let meta = |s: Option<&str>, d: Option<u8>| TokenMeta {
            symbol: s.map(str::to_owned),
            decimals: d,
            source: MetaSource::Chain,
        };
        store
            .put_token_meta(eth, &t1, &meta(Some("AAA"), Some(6)))
            .expect("put");
        store
            .put_token_meta(eth, &t2, &meta(Some("BBB"), None))
            .expect("put");
        store
            .put_token_meta(eth, &t3, &meta(Some("CCC"), Some(2)))
            .expect("put");
        let toml = format!(
            "[chains.eth]\nkind = \"evm\"\n[[chains.eth.tokens]]\naddress = \"{t3}\"\nsymbol = \"CFG\"\ndecimals = 3\n"
        );
        let config = Config::parse(&toml, std::path::Path::new("t.toml")).expect("config");
        let u = Units::load(&store, &config)
            .expect("load")
            .with_flags(&[format!("{t1}=FLAG:1")])
            .expect("flags");
        let amt = Amount::from_u64(123_456);
        assert_eq!(u.format(eth, &Asset::Token(t1), amt), "12345.6 FLAG");
        assert_eq!(
            u.format(eth, &Asset::Token(t2), amt),
            format!("123456 raw units of {t2}"),
            "no decimals: raw units, never a guess"
        );
        assert_eq!(u.format(btc, &Asset::Native, amt), "0.00123456 BTC");
        assert_eq!(
            u.book(Some(eth)).format(&Asset::Native, amt),
            "0.000000000000123456 ETH"
        );
        assert_eq!(
            u.book(None).format(&Asset::Native, amt),
            "123456 raw units of native",
            "two kinds of chain: the native unit is ambiguous"
        );
        assert_eq!(u.format(eth, &Asset::Token(t3), amt), "123.456 CFG");
        assert_eq!(
            u.book_for(None, &Address::Script([7; 32]))
                .format(&Asset::Native, amt),
            "0.00123456 BTC",
            "a Bitcoin address: the native unit of the Bitcoin chain"
        );
        // A contract calling itself what a declared token is called does not take its symbol.
        let real = Address::Evm([4; 20]);
        let fake = Address::Evm([0; 20]);
        let declared = TokenMeta {
            source: MetaSource::Declared,
            ..meta(Some("USDC"), Some(6))
        };
        store.put_token_meta(eth, &real, &declared).expect("put");
        store
            .put_token_meta(eth, &fake, &meta(Some("USDC"), Some(6)))
            .expect("put");
        let u = Units::load(&store, &config).expect("load");
        assert_eq!(
            u.book(Some(eth)).resolve("usdc").map(|i| i.asset),
            Some(Asset::Token(real))
        );
        assert_eq!(
            u.book(Some(eth)).format(&Asset::Token(fake), amt),
            "0.123456 USDC",
            "still shown with the symbol it claims; its address is in every JSON output"
        );
        assert!(parse_token_flag("0x12=X:1").is_err());
        assert!(parse_token_flag(&format!("{t1}=X:300")).is_err());
    }
}
