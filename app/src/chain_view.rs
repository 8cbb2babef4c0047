//! How analysis outputs show Bitcoin: script ids as their base58/bech32 addresses
//! (`script:<sha256>` only for non-standard scripts), txids without `0x`, and native amounts
//! in BTC in text (8 decimals). JSON keeps raw satoshi strings.
//!
//! The tracer's results name addresses by their store identity; this view rewrites the
//! rendered text or JSON of one result, so every command (trace, path, screen, cluster show)
//! shows Bitcoin the same way without each renderer knowing about scripts.

use paytrace_indexer::{Address, Amount, ChainKind, Store, StoreError, btc::UtxoStore};
use std::{cell::RefCell, collections::HashMap};

/// Renders Bitcoin identities of one output readably.
pub struct ChainView {
    utxo: Option<UtxoStore>,
    /// Whether the output is about Bitcoin (txids lose their `0x`, amounts are in BTC).
    bitcoin: bool,
    names: RefCell<HashMap<[u8; 32], String>>,
}

impl ChainView {
    /// A view for an output about `subject` (its address decides the chain family).
    pub fn open(store: &Store, subject: &Address) -> Result<Self, StoreError> {
        Self::new(store, !matches!(subject, Address::Evm(_)))
    }

    /// A view for an output about Bitcoin (`bitcoin`) or not.
    pub fn new(store: &Store, bitcoin: bool) -> Result<Self, StoreError> {
        let has_btc = store.chains()?.iter().any(|c| c.kind == ChainKind::Bitcoin);
        Ok(Self {
            utxo: if has_btc {
                Some(UtxoStore::open(store)?)
            } else {
                None
            },
            bitcoin: bitcoin && has_btc,
            names: RefCell::new(HashMap::new()),
        })
    }

    /// Whether the output is about Bitcoin.
    pub fn is_bitcoin(&self) -> bool {
        self.bitcoin
    }

    /// The readable form of an address.
    pub fn address(&self, a: &Address) -> String {
        match (a, &self.utxo) {
            (Address::Script(id), Some(u)) => self
                .names
                .borrow_mut()
                .entry(*id)
                .or_insert_with(|| u.display(a))
                .clone(),
            _ => a.to_string(),
        }
    }

    /// Rewrites rendered output (text or JSON): every `script:<64 hex>` becomes its address
    /// when the script is standard, and on Bitcoin every `0x<64 hex>` (a txid) loses its `0x`.
    pub fn rewrite(&self, s: &str) -> String {
        self.rewrite_as(s, self.bitcoin)
    }

    /// [`ChainView::rewrite`] for an output about Bitcoin (`bitcoin`) or not.
    pub fn rewrite_as(&self, s: &str, bitcoin: bool) -> String {
        if self.utxo.is_none() {
            return s.to_owned();
        }
        rewrite_tokens(s, bitcoin, &|a| self.address(a))
    }
}

/// Replaces each `script:<64 hex>` token of `s` by `name` of its address and, when `bitcoin`,
/// drops the `0x` of each `0x<64 hex>` token. Tokens start and end at non-alphanumeric
/// characters, so longer hex strings and words that merely contain them are left alone.
fn rewrite_tokens(s: &str, bitcoin: bool, name: &dyn Fn(&Address) -> String) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    let hex64 = |at: usize| {
        b.get(at..at + 64)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            && !b.get(at + 64).is_some_and(u8::is_ascii_alphanumeric)
    };
    while i < b.len() {
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if boundary && b[i..].starts_with(b"script:") && hex64(i + 7) {
            // ASCII from `i` to `i + 71`: both are character boundaries.
            if let Ok(a) = s[i..i + 71].parse::<Address>() {
                out.push_str(&s[copied..i]);
                out.push_str(&name(&a));
                i += 71;
                copied = i;
                continue;
            }
        }
        if bitcoin && boundary && b[i..].starts_with(b"0x") && hex64(i + 2) {
            out.push_str(&s[copied..i]);
            i += 2;
            copied = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// A native amount in text: the chain's symbol with all its decimals (e.g. `50.00000000 BTC`).
pub fn native_text(kind: ChainKind, v: &Amount) -> String {
    let d = usize::from(kind.native_decimals());
    let s = v.to_decimal_string(kind.native_decimals());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    format!("{int}.{frac:0<d$} {}", kind.native_symbol())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_script_ids_and_txids_as_tokens_only() {
        let id = "ab".repeat(32);
        let tx = "cd".repeat(32);
        let name = |a: &Address| match a {
            Address::Script(b) if b[0] == 0xab => "1Standard".to_owned(),
            _ => a.to_string(),
        };
        let s = format!(
            "{{\"to\":\"script:{id}\",\"tx_hash\":\"0x{tx}\",\"x\":\"0x{tx}00\",\"w\":\"ascript:{id}\"}} é"
        );
        assert_eq!(
            rewrite_tokens(&s, true, &name),
            format!(
                "{{\"to\":\"1Standard\",\"tx_hash\":\"{tx}\",\"x\":\"0x{tx}00\",\"w\":\"ascript:{id}\"}} é"
            )
        );
        // Not Bitcoin: txids keep their 0x; EVM addresses (40 hex digits) are never touched.
        let evm = format!("0x{} tx 0x{tx}", "12".repeat(20));
        assert_eq!(rewrite_tokens(&evm, false, &name), evm);
        assert_eq!(
            rewrite_tokens(&evm, true, &name),
            format!("0x{} tx {tx}", "12".repeat(20))
        );
    }

    #[test]
    fn btc_amounts_have_eight_decimals() {
        let t = |v: u64| native_text(ChainKind::Bitcoin, &Amount::from_u64(v));
        assert_eq!(t(5_000_000_000), "50.00000000 BTC");
        assert_eq!(t(1), "0.00000001 BTC");
        assert_eq!(t(0), "0.00000000 BTC");
        assert_eq!(t(123_450_000), "1.23450000 BTC");
    }
}
