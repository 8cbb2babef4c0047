//! The alert store: alerts, the watchlist and the webhook outbox in their own keyspaces of the
//! paytrace store (the rules that produce the findings are the tracer's, pure:
//! [`paytrace_tracer::alerts`]).
//!
//! Keyspaces: `alerts` (id, big-endian u64 → alert JSON), `alert_keys` (deduplication key → id),
//! `alert_meta` (`next_id`), `watchlist` (address key → entry JSON), `webhook_outbox`
//! (id + `0x00` + webhook name → entry JSON). Raising an alert writes the alert, its key and
//! its outbox entries in one atomic batch synced to disk, so a delivery can never be lost
//! between raising and sending.

use paytrace_indexer::{
    Address, Store, StoreError,
    store::{
        Table,
        keyspaces::{self, Json, Keyspace, Raw, U64Be},
    },
};
use paytrace_tracer::{
    alerts::{Finding, Role},
    risk::RiskLevel,
};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an alert-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The paytrace store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No alert with this id.
    #[error("no alert with id {0}")]
    NotFound(u64),
    /// A record does not encode.
    #[error("cannot encode alert record: {0}")]
    Encode(String),
}

/// State of an alert.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Raised, not looked at.
    New,
    /// Acknowledged by an analyst.
    Acknowledged,
    /// Closed.
    Closed,
}

impl AlertState {
    /// The lower-case name.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Acknowledged => "acknowledged",
            Self::Closed => "closed",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AlertState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "new" => Ok(Self::New),
            "acknowledged" | "ack" => Ok(Self::Acknowledged),
            "closed" => Ok(Self::Closed),
            _ => Err(format!(
                "unknown alert state {s:?}: expected new, acknowledged or closed"
            )),
        }
    }
}

/// A stored alert (also the JSON webhook payload and the `paytrace alerts --json` element).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    /// Id (increasing).
    pub id: u64,
    /// Deduplication key.
    pub key: String,
    /// Rule name.
    pub rule: String,
    /// Severity.
    pub severity: RiskLevel,
    /// State.
    pub state: AlertState,
    /// The address the alert is about.
    pub subject: Address,
    /// Why it was screened.
    pub role: Role,
    /// Category or pattern type.
    pub category: Option<String>,
    /// What was found.
    pub text: String,
    /// Addresses behind it.
    pub addresses: Vec<Address>,
    /// Evidence.
    pub evidence: serde_json::Value,
    /// When it was raised (RFC 3339 UTC).
    pub created_at: String,
    /// Last state change (RFC 3339 UTC).
    pub updated_at: String,
    /// Webhooks it was delivered to.
    pub delivered_to: Vec<String>,
}

/// A watchlist entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WatchEntry {
    /// The address.
    pub address: Address,
    /// Free text.
    pub note: Option<String>,
    /// Its outflows are payouts: their receivers are screened as payees.
    pub payer: bool,
    /// When it was added (RFC 3339 UTC).
    pub added_at: String,
}

/// A pending webhook delivery.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Alert id.
    pub alert: u64,
    /// Webhook name.
    pub webhook: String,
    /// Idempotency key sent with every attempt (stable for this alert and webhook).
    pub idempotency_key: String,
    /// Attempts so far (all runs).
    pub attempts: u32,
    /// Last error, if any.
    pub last_error: Option<String>,
}

const ALERTS: Keyspace<Raw, Json<Alert>> = Keyspace::new(&keyspaces::ALERTS);
const KEYS: Keyspace<Raw, U64Be> = Keyspace::new(&keyspaces::ALERT_KEYS);
const META: Keyspace<Raw, U64Be> = Keyspace::new(&keyspaces::ALERT_META);
const WATCH: Keyspace<Raw, Json<WatchEntry>> = Keyspace::new(&keyspaces::WATCHLIST);
const OUTBOX: Keyspace<Raw, Json<OutboxEntry>> = Keyspace::new(&keyspaces::WEBHOOK_OUTBOX);

/// The alert keyspaces.
#[derive(Clone)]
pub struct AlertStore {
    store: Store,
    alerts: Table<Raw, Json<Alert>>,
    keys: Table<Raw, U64Be>,
    meta: Table<Raw, U64Be>,
    watch: Table<Raw, Json<WatchEntry>>,
    outbox: Table<Raw, Json<OutboxEntry>>,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn outbox_key(alert: u64, webhook: &str) -> Vec<u8> {
    let mut k = alert.to_be_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(webhook.as_bytes());
    k
}

/// The idempotency key of `alert_key` delivered to `webhook`: hex keccak-256 of both, so the
/// same finding sent to the same webhook always carries the same key.
pub fn idempotency_key(alert_key: &str, webhook: &str) -> String {
    let mut b = alert_key.as_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(webhook.as_bytes());
    alloy_primitives::hex::encode(alloy_primitives::keccak256(&b))
}

impl AlertStore {
    /// Opens (or creates) the keyspaces in `store`.
    pub fn open(store: &Store) -> Result<Self, AlertError> {
        Ok(Self {
            store: store.clone(),
            alerts: store.table(ALERTS)?,
            keys: store.table(KEYS)?,
            meta: store.table(META)?,
            watch: store.table(WATCH)?,
            outbox: store.table(OUTBOX)?,
        })
    }

    fn next_id(&self) -> Result<u64, AlertError> {
        Ok(self.meta.get(b"next_id")?.unwrap_or(1))
    }

    /// Stores the findings never raised before (by key) as new alerts, with one outbox entry
    /// per webhook in `webhooks` (name, minimum severity) the alert qualifies for; returns the
    /// new alerts. Atomic and synced.
    pub fn raise(
        &self,
        findings: &[Finding],
        webhooks: &[(String, RiskLevel)],
    ) -> Result<Vec<Alert>, AlertError> {
        let mut id = self.next_id()?;
        let mut batch = self.store.batch_synced();
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for f in findings {
            if !seen.insert(f.key.clone()) || self.keys.contains_key(f.key.as_bytes())? {
                continue;
            }
            let t = now();
            let a = Alert {
                id,
                key: f.key.clone(),
                rule: f.rule.clone(),
                severity: f.severity,
                state: AlertState::New,
                subject: f.subject,
                role: f.role,
                category: f.category.clone(),
                text: f.text.clone(),
                addresses: f.addresses.clone(),
                evidence: f.evidence.clone(),
                created_at: t.clone(),
                updated_at: t,
                delivered_to: Vec::new(),
            };
            batch.insert(&self.alerts, id.to_be_bytes(), &a)?;
            batch.insert(&self.keys, f.key.as_bytes(), &id)?;
            for (name, min) in webhooks {
                if a.severity >= *min {
                    let e = OutboxEntry {
                        alert: id,
                        webhook: name.clone(),
                        idempotency_key: idempotency_key(&a.key, name),
                        attempts: 0,
                        last_error: None,
                    };
                    batch.insert(&self.outbox, outbox_key(id, name), &e)?;
                }
            }
            out.push(a);
            id = id.saturating_add(1);
        }
        if out.is_empty() {
            return Ok(out);
        }
        batch.insert(&self.meta, b"next_id", &id)?;
        batch.commit()?;
        Ok(out)
    }

    /// One alert.
    pub fn get(&self, id: u64) -> Result<Option<Alert>, AlertError> {
        Ok(self.alerts.get(id.to_be_bytes())?)
    }

    fn put(&self, a: &Alert) -> Result<(), AlertError> {
        self.alerts.insert(a.id.to_be_bytes(), a)?;
        Ok(self.store.persist()?)
    }

    /// Alerts in id order, optionally only those in `state`.
    pub fn list(&self, state: Option<AlertState>) -> Result<Vec<Alert>, AlertError> {
        let mut out = Vec::new();
        for kv in self.alerts.iter() {
            let (_, a) = kv?;
            if state.is_none_or(|s| a.state == s) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Sets the state of alert `id`; returns the updated alert.
    pub fn set_state(&self, id: u64, state: AlertState) -> Result<Alert, AlertError> {
        let mut a = self.get(id)?.ok_or(AlertError::NotFound(id))?;
        a.state = state;
        a.updated_at = now();
        self.put(&a)?;
        Ok(a)
    }

    /// Adds (or updates) a watchlist entry.
    pub fn watch(
        &self,
        address: Address,
        note: Option<String>,
        payer: bool,
    ) -> Result<WatchEntry, AlertError> {
        let e = WatchEntry {
            address,
            note,
            payer,
            added_at: now(),
        };
        self.watch
            .insert(paytrace_indexer::labels::address::address_key(&address), &e)?;
        self.store.persist()?;
        Ok(e)
    }

    /// Removes a watchlist entry; whether it was there.
    pub fn unwatch(&self, address: &Address) -> Result<bool, AlertError> {
        let k = paytrace_indexer::labels::address::address_key(address);
        let had = self.watch.contains_key(&k)?;
        self.watch.remove(k)?;
        Ok(had)
    }

    /// The watchlist.
    pub fn watchlist(&self) -> Result<Vec<WatchEntry>, AlertError> {
        let mut out = Vec::new();
        for kv in self.watch.iter() {
            out.push(kv?.1);
        }
        Ok(out)
    }

    /// Pending deliveries, oldest alert first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, AlertError> {
        let mut out = Vec::new();
        for kv in self.outbox.iter() {
            out.push(kv?.1);
        }
        Ok(out)
    }

    /// Records a failed attempt (kept for the next run).
    pub fn delivery_failed(
        &self,
        e: &OutboxEntry,
        attempts: u32,
        error: &str,
    ) -> Result<(), AlertError> {
        let mut e = e.clone();
        e.attempts = e.attempts.saturating_add(attempts);
        e.last_error = Some(error.to_owned());
        self.outbox.insert(outbox_key(e.alert, &e.webhook), &e)?;
        Ok(self.store.persist()?)
    }

    /// Records a successful delivery: the outbox entry goes, the alert notes the webhook.
    pub fn delivered(&self, e: &OutboxEntry) -> Result<(), AlertError> {
        let mut batch = self.store.batch_synced();
        if let Some(mut a) = self.get(e.alert)? {
            if !a.delivered_to.contains(&e.webhook) {
                a.delivered_to.push(e.webhook.clone());
            }
            batch.insert(&self.alerts, a.id.to_be_bytes(), &a)?;
        }
        batch.remove(&self.outbox, outbox_key(e.alert, &e.webhook))?;
        Ok(batch.commit()?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn addr(n: u8) -> Address {
        Address::Evm([n; 20])
    }

    fn finding(n: u8, severity: RiskLevel) -> Finding {
        Finding {
            key: format!("rule:{n}"),
            rule: "rule".into(),
            severity,
            subject: addr(n),
            role: Role::Payee,
            category: Some("sanctioned".into()),
            text: format!("finding {n}"),
            addresses: vec![addr(n + 100)],
            evidence: serde_json::json!({ "n": n }),
        }
    }

    #[test]
    fn store_deduplicates_and_keeps_outbox_until_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let store = paytrace_indexer::Store::open(dir.path()).unwrap();
        let a = AlertStore::open(&store).unwrap();
        let f = vec![
            finding(1, RiskLevel::High),
            finding(2, RiskLevel::High),
            finding(3, RiskLevel::Medium),
        ];
        let hooks = vec![
            ("ops".to_owned(), RiskLevel::High),
            ("all".to_owned(), RiskLevel::Low),
        ];
        let new = a.raise(&f, &hooks).unwrap();
        assert_eq!(new.len(), 3);
        assert_eq!(new.iter().map(|x| x.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        // Raising the same findings again: nothing new.
        assert!(a.raise(&f, &hooks).unwrap().is_empty());
        // Outbox: high alerts to both hooks, the medium one only to `all`.
        let ob = a.outbox().unwrap();
        assert_eq!(ob.len(), 5, "{ob:#?}");
        assert!(ob.iter().all(|e| e.idempotency_key.len() == 64));
        a.delivery_failed(&ob[0], 3, "503").unwrap();
        let ob2 = a.outbox().unwrap();
        assert_eq!(ob2[0].attempts, 3);
        a.delivered(&ob2[0]).unwrap();
        assert_eq!(a.outbox().unwrap().len(), 4);
        assert_eq!(
            a.get(ob2[0].alert).unwrap().unwrap().delivered_to,
            vec![ob2[0].webhook.clone()]
        );
        // States.
        let x = a.set_state(2, AlertState::Acknowledged).unwrap();
        assert_eq!(x.state, AlertState::Acknowledged);
        assert_eq!(a.list(Some(AlertState::New)).unwrap().len(), 2);
        assert!(matches!(
            a.set_state(99, AlertState::Closed),
            Err(AlertError::NotFound(99))
        ));
        // Watchlist.
        a.watch(addr(7), Some("vip".into()), false).unwrap();
        a.watch(addr(1), None, true).unwrap();
        let w = a.watchlist().unwrap();
        assert_eq!(w.len(), 2);
        assert!(a.unwatch(&addr(7)).unwrap());
        assert_eq!(a.watchlist().unwrap().len(), 1);
        // Everything survives a reopen.
        drop(a);
        drop(store);
        let store = paytrace_indexer::Store::open(dir.path()).unwrap();
        let a = AlertStore::open(&store).unwrap();
        assert_eq!(a.list(None).unwrap().len(), 3);
        assert_eq!(a.outbox().unwrap().len(), 4);
        assert!(a.raise(&f, &hooks).unwrap().is_empty());
    }

    #[test]
    fn a_read_open_of_a_store_without_alerts_reads_nothing_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        drop(paytrace_indexer::Store::open(dir.path()).unwrap());
        let store = paytrace_indexer::Store::open_read(dir.path()).unwrap();
        let a = AlertStore::open(&store).unwrap();
        assert!(a.list(None).unwrap().is_empty());
        assert!(a.watchlist().unwrap().is_empty());
        let dirs = std::fs::read_dir(dir.path().join("keyspaces"))
            .unwrap()
            .count();
        drop(a);
        drop(store);
        assert_eq!(
            std::fs::read_dir(dir.path().join("keyspaces"))
                .unwrap()
                .count(),
            dirs
        );
    }
}
