//! `labels show` and `labels list` as the command-line tool and the server answer them.

use paytrace_indexer::Store;
use paytrace_indexer::labels::{Category, Date, Label, LabelAddress, LabelError, LabelStore};
use serde::Serialize;

/// Why a label query failed.
#[derive(Debug, thiserror::Error)]
pub enum LabelQueryError {
    /// The address does not parse (the shared parser's message).
    #[error(transparent)]
    Address(#[from] crate::address::AddressArgError),
    /// The address does not parse as a label address of the given chain.
    #[error(transparent)]
    LabelAddress(paytrace_indexer::labels::AddressError),
    /// The label store failed.
    #[error(transparent)]
    Labels(#[from] LabelError),
}

impl LabelQueryError {
    /// Whether the request (not the store) is at fault.
    pub fn is_input(&self) -> bool {
        matches!(self, Self::Address(_) | Self::LabelAddress(_))
    }
}

/// `labels show --json`.
#[derive(Debug, Clone, Serialize)]
pub struct ShowOut {
    /// The address as labels key it.
    pub address: String,
    /// Its chain (currency) name.
    pub chain: String,
    /// The day the labels hold on (absent with `history`).
    pub as_of: Option<String>,
    /// The labels.
    pub labels: Vec<Label>,
}

/// The labels of `address` (`chain`: a currency code or chain for addresses of chains that
/// are not indexed), valid on `as_of` (default today), or every label ever recorded
/// (`history`). `field` names the address in errors.
pub fn show(
    store: &Store,
    field: &str,
    address: &str,
    chain: Option<&str>,
    as_of: Option<Date>,
    history: bool,
) -> Result<ShowOut, LabelQueryError> {
    // Without a chain the address must be of an indexed chain: the shared parser says what is
    // wrong with it (network, checksum, witness version).
    if chain.is_none() {
        crate::address::parse_address(field, address)?;
    }
    let addr = LabelAddress::parse(address, chain).map_err(LabelQueryError::LabelAddress)?;
    let labels = LabelStore::open(store)?;
    let list = if history {
        labels.history_by_key(&addr.key())?
    } else {
        labels.lookup(&addr, as_of)?
    };
    Ok(ShowOut {
        address: addr.to_string(),
        chain: addr.chain().name(),
        as_of: if history {
            None
        } else {
            Some(
                as_of
                    .unwrap_or_else(paytrace_indexer::labels::today)
                    .to_string(),
            )
        },
        labels: list,
    })
}

/// The labels of `category` and `source` (when given), valid today unless `all`; at most
/// `limit` after skipping `offset`.
pub fn list(
    store: &Store,
    category: Option<Category>,
    source: Option<&str>,
    all: bool,
    offset: usize,
    limit: usize,
) -> Result<Vec<Label>, LabelQueryError> {
    let labels = LabelStore::open(store)?;
    let today = paytrace_indexer::labels::today();
    let mut out = Vec::new();
    let mut skipped = 0;
    for l in labels.iter() {
        let l = l?;
        if category.is_some_and(|c| c != l.category)
            || source.is_some_and(|s| s != l.source)
            || (!all && !l.valid_on(today))
        {
            continue;
        }
        if skipped < offset {
            skipped += 1;
            continue;
        }
        if out.len() >= limit {
            break;
        }
        out.push(l);
    }
    Ok(out)
}
