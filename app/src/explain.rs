//! Empty results that explain themselves: what a query searched and what the store holds
//! instead (the chains indexed, an address's transfers outside the window, the nearest days
//! with payouts).

use paytrace_indexer::{Address, Direction, Store, StoreError, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// A block time as ISO 8601 UTC (`2025-03-01T12:00:00Z`); the raw seconds when out of range.
pub use paytrace_indexer::time::iso;

/// `chains indexed: demo (last block 427), ethereum (last block 19000000)`, or that none is.
pub fn chains_indexed(store: &Store) -> Result<String, StoreError> {
    let chains = store.chains()?;
    if chains.is_empty() {
        return Ok("no chain is indexed in this store yet".to_owned());
    }
    let mut v = Vec::with_capacity(chains.len());
    for c in chains {
        let at = store.checkpoint(c.id)?.map_or_else(
            || "nothing indexed".to_owned(),
            |b| format!("last block {}", b.number),
        );
        v.push(format!("{} ({at})", c.name));
    }
    Ok(format!("chains indexed: {}", v.join(", ")))
}

/// `"since 2025-03-01T00:00:00Z until 2025-03-31T23:59:59Z"`, or `"at any time"`.
pub fn window(since: Option<u64>, until: Option<u64>) -> String {
    match (since, until) {
        (None, None) => "at any time".to_owned(),
        (Some(s), None) => format!("since {}", iso(Timestamp(s))),
        (None, Some(u)) => format!("until {}", iso(Timestamp(u))),
        (Some(s), Some(u)) => format!("from {} to {}", iso(Timestamp(s)), iso(Timestamp(u))),
    }
}

/// The UTC day of a block time, `2025-03-01`.
pub fn day(t: Timestamp) -> String {
    iso(t)
        .get(..10)
        .map_or_else(|| t.0.to_string(), str::to_owned)
}

/// What the store holds of `address` in direction `dir`, on every chain and at any time:
/// per chain the number of transfers, their assets and their first and last time.
pub fn address_activity(
    store: &Store,
    address: &Address,
    dir: Direction,
) -> Result<String, StoreError> {
    struct Seen {
        n: u64,
        first: Timestamp,
        last: Timestamp,
        assets: BTreeSet<String>,
    }
    let names: BTreeMap<_, _> = store
        .chains()?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let mut by: BTreeMap<String, Seen> = BTreeMap::new();
    for t in store.address_transfers(address, dir, None) {
        let t = t?;
        let name = names
            .get(&t.key.chain)
            .cloned()
            .unwrap_or_else(|| format!("#{}", t.key.chain.0));
        let e = by.entry(name).or_insert(Seen {
            n: 0,
            first: t.time,
            last: t.time,
            assets: BTreeSet::new(),
        });
        e.n += 1;
        e.first = e.first.min(t.time);
        e.last = e.last.max(t.time);
        e.assets.insert(t.asset.to_string());
    }
    let what = match dir {
        Direction::Outgoing => "sent",
        Direction::Incoming => "received",
    };
    if by.is_empty() {
        return Ok(format!("the store holds no transfer {address} {what}"));
    }
    let parts: Vec<String> = by
        .iter()
        .map(|(chain, s)| {
            format!(
                "{} on chain {chain} ({}; {} to {})",
                s.n,
                s.assets.iter().cloned().collect::<Vec<_>>().join(", "),
                iso(s.first),
                iso(s.last)
            )
        })
        .collect();
    Ok(format!("{address} {what} {}", parts.join("; ")))
}
