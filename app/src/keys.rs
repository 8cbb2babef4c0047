//! API keys of the HTTP server and its audit log, kept in the store (`api_keys`, `audit_log`).
//!
//! A key is `ptk_<id>_<secret>`: `id` is 16 hex digits (8 random bytes) naming the key, `secret`
//! 64 hex digits (32 random bytes). Only the id, the role, a random 16-byte salt and
//! SHA-256(salt ‖ secret) are stored; the key itself is shown once, when it is created. For a
//! random 256-bit secret a single salted hash is enough (nothing to brute-force), so no slow
//! password hash is needed.
//!
//! | keyspace    | key                                   | value                      |
//! |-------------|---------------------------------------|----------------------------|
//! | `api_keys`  | id (16 hex digits)                    | JSON [`ApiKey`]            |
//! | `audit_log` | time ns u64 BE + 8 random bytes       | JSON [`AuditEntry`]        |
//!
//! Both keyspaces are written by writers only (`paytrace keys`, the server on a store it opened
//! for writing); a reader opening the store finds them empty or as written.

use paytrace_indexer::{
    Store, StoreError,
    store::{
        Table,
        keyspaces::{self, Keyspace, Raw},
    },
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fmt;

/// What a key may do. Ordered: each role may do what the roles before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: addresses, traces, paths, screening, clusters, labels, reports, alerts.
    Analyst,
    /// Also acknowledges and closes alerts and edits the watchlist.
    Compliance,
    /// Also imports labels and manages keys.
    Admin,
}

impl Role {
    /// The role's name (`analyst`, `compliance`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Compliance => "compliance",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "analyst" => Ok(Role::Analyst),
            "compliance" => Ok(Role::Compliance),
            "admin" => Ok(Role::Admin),
            _ => Err(KeyError::UnknownRole(s.to_owned())),
        }
    }
}

/// Errors of the key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record does not decode.
    #[error("{keyspace} {key}: corrupt record: {reason}")]
    Corrupt {
        /// The keyspace.
        keyspace: &'static str,
        /// The record's key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// A role name that is none of `analyst`, `compliance`, `admin`.
    #[error("unknown role {0:?}: expected analyst, compliance or admin")]
    UnknownRole(String),
    /// `keys revoke` of an id that is not stored.
    #[error("no API key with id {0:?}")]
    NotFound(String),
    /// The system's random number generator failed.
    #[error("reading random bytes: {0}")]
    Random(String),
    /// A write on a store opened for reading.
    #[error("the store is open for reading only: {0} needs a writable store")]
    ReadOnly(&'static str),
}

/// A stored key (never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The key's id (16 hex digits), the part of the key that names it.
    pub id: String,
    /// Its role.
    pub role: Role,
    /// A free-text name given at creation (who or what uses it).
    #[serde(default)]
    pub name: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// Random salt, hex.
    #[serde(rename = "salt")]
    salt_hex: String,
    /// SHA-256(salt ‖ secret), hex.
    #[serde(rename = "hash")]
    hash_hex: String,
}

/// A key just created: the only time the full key is known.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// The stored record.
    pub record: ApiKey,
    /// The full key to hand to the user (`ptk_<id>_<secret>`).
    pub key: String,
}

/// One mutation done through the server: who, what, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (RFC 3339).
    pub time: String,
    /// The key's id (`-` for a mutation without a key, e.g. a CLI run).
    pub key_id: String,
    /// The key's role.
    pub role: Role,
    /// What was done, e.g. `POST /v1/alerts/3/ack`.
    pub action: String,
    /// The object of the action (an alert id, an address, a label source).
    pub target: String,
    /// The HTTP status of the answer.
    pub status: u16,
}

const KEYS: Keyspace<Raw, Raw> = Keyspace::new(&keyspaces::API_KEYS);
const AUDIT: Keyspace<Raw, Raw> = Keyspace::new(&keyspaces::AUDIT_LOG);

/// The key and audit keyspaces of a store.
#[derive(Clone)]
pub struct KeyStore {
    store: Store,
    keys: Table<Raw, Raw>,
    audit: Table<Raw, Raw>,
    read_only: bool,
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(b)
}

fn hex(b: &[u8]) -> String {
    alloy_primitives::hex::encode(b)
}

fn digest(salt: &[u8], secret: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret);
    h.finalize().into()
}

/// Equality without an early exit on the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Splits `ptk_<16 hex>_<64 hex>` into id and secret bytes.
fn split_key(key: &str) -> Option<(&str, Vec<u8>)> {
    let rest = key.strip_prefix("ptk_")?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() != 64 {
        return None;
    }
    let secret = alloy_primitives::hex::decode(secret).ok()?;
    Some((id, secret))
}

impl KeyStore {
    /// Opens the keyspaces of `store` (created by every write open).
    pub fn open(store: &Store) -> Result<Self, KeyError> {
        Ok(Self {
            store: store.clone(),
            keys: store.table(KEYS)?,
            audit: store.table(AUDIT)?,
            read_only: store.is_read_only(),
        })
    }

    fn writable(&self, what: &'static str) -> Result<(), KeyError> {
        if self.read_only {
            Err(KeyError::ReadOnly(what))
        } else {
            Ok(())
        }
    }

    /// Creates a key with `role` and a free-text `name`; stored synced.
    pub fn create(&self, role: Role, name: &str) -> Result<NewKey, KeyError> {
        self.writable("creating an API key")?;
        let id = hex(&random::<8>()?);
        let secret = random::<32>()?;
        let salt = random::<16>()?;
        let record = ApiKey {
            id: id.clone(),
            role,
            name: name.to_owned(),
            created_at: jiff::Timestamp::now().to_string(),
            revoked_at: None,
            salt_hex: hex(&salt),
            hash_hex: hex(&digest(&salt, &secret)),
        };
        self.put(&record)?;
        Ok(NewKey {
            key: format!("ptk_{id}_{}", hex(&secret)),
            record,
        })
    }

    fn put(&self, record: &ApiKey) -> Result<(), KeyError> {
        let v = serde_json::to_vec(record).map_err(|e| KeyError::Corrupt {
            keyspace: "api_keys",
            key: record.id.clone(),
            reason: e.to_string(),
        })?;
        let mut batch = self.store.batch_synced();
        batch.insert(&self.keys, record.id.as_bytes(), &v)?;
        Ok(batch.commit()?)
    }

    fn decode(id: &[u8], v: &[u8]) -> Result<ApiKey, KeyError> {
        serde_json::from_slice(v).map_err(|e| KeyError::Corrupt {
            keyspace: "api_keys",
            key: String::from_utf8_lossy(id).into_owned(),
            reason: e.to_string(),
        })
    }

    /// Every stored key (revoked ones included), ordered by id.
    pub fn list(&self) -> Result<Vec<ApiKey>, KeyError> {
        let mut out = Vec::new();
        for kv in self.keys.iter() {
            let (k, v) = kv?;
            out.push(Self::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Revokes key `id` (idempotent: a revoked key stays revoked with its first time).
    pub fn revoke(&self, id: &str) -> Result<ApiKey, KeyError> {
        self.writable("revoking an API key")?;
        let v = self
            .keys
            .get(id.as_bytes())?
            .ok_or_else(|| KeyError::NotFound(id.to_owned()))?;
        let mut record = Self::decode(id.as_bytes(), &v)?;
        if record.revoked_at.is_none() {
            record.revoked_at = Some(jiff::Timestamp::now().to_string());
            self.put(&record)?;
        }
        Ok(record)
    }

    /// The record of `key` when it is a stored, unrevoked key whose secret matches.
    pub fn verify(&self, key: &str) -> Result<Option<ApiKey>, KeyError> {
        let Some((id, secret)) = split_key(key) else {
            return Ok(None);
        };
        let Some(v) = self.keys.get(id.as_bytes())? else {
            return Ok(None);
        };
        let record = Self::decode(id.as_bytes(), &v)?;
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        let (Ok(salt), Ok(hash)) = (
            alloy_primitives::hex::decode(&record.salt_hex),
            alloy_primitives::hex::decode(&record.hash_hex),
        ) else {
            return Err(KeyError::Corrupt {
                keyspace: "api_keys",
                key: record.id,
                reason: "salt or hash is not hex".into(),
            });
        };
        Ok(same(&digest(&salt, &secret), &hash).then_some(record))
    }

    /// Appends `entry` to the audit log (synced).
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), KeyError> {
        self.writable("writing the audit log")?;
        let nanos = u64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(u64::MAX);
        let mut k = nanos.to_be_bytes().to_vec();
        k.extend_from_slice(&random::<8>()?);
        let v = serde_json::to_vec(entry).map_err(|e| KeyError::Corrupt {
            keyspace: "audit_log",
            key: entry.time.clone(),
            reason: e.to_string(),
        })?;
        let mut batch = self.store.batch_synced();
        batch.insert(&self.audit, k, &v)?;
        Ok(batch.commit()?)
    }

    /// The audit log, oldest first; at most `limit` entries, the newest ones.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, KeyError> {
        let mut out = Vec::new();
        for kv in self.audit.iter().rev().take(limit) {
            let (k, v) = kv?;
            out.push(serde_json::from_slice(&v).map_err(|e| KeyError::Corrupt {
                keyspace: "audit_log",
                key: hex(&k),
                reason: e.to_string(),
            })?);
        }
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_verify_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ks = KeyStore::open(&store).unwrap();
        let k = ks.create(Role::Compliance, "ops").unwrap();
        assert!(k.key.starts_with("ptk_"));
        assert_eq!(ks.verify(&k.key).unwrap().unwrap().role, Role::Compliance);
        // The key itself is nowhere in the stored record.
        let stored = serde_json::to_string(&ks.list().unwrap()).unwrap();
        assert!(!stored.contains(&k.key[21..]));
        // A wrong secret, a malformed key and an unknown id are all rejected.
        let mut wrong = k.key.clone();
        let last = if wrong.ends_with('0') { "1" } else { "0" };
        wrong.replace_range(wrong.len() - 1.., last);
        assert!(ks.verify(&wrong).unwrap().is_none());
        assert!(ks.verify("nonsense").unwrap().is_none());
        assert!(
            ks.verify(&format!("ptk_0000000000000000_{}", "0".repeat(64)))
                .unwrap()
                .is_none()
        );
        ks.revoke(&k.record.id).unwrap();
        assert!(ks.verify(&k.key).unwrap().is_none());
        assert!(matches!(ks.revoke("ffff"), Err(KeyError::NotFound(_))));
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Analyst < Role::Compliance && Role::Compliance < Role::Admin);
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn audit_log_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ks = KeyStore::open(&store).unwrap();
        for i in 0..3 {
            ks.audit(&AuditEntry {
                time: jiff::Timestamp::now().to_string(),
                key_id: "k".into(),
                role: Role::Admin,
                action: format!("POST /v1/x/{i}"),
                target: i.to_string(),
                status: 200,
            })
            .unwrap();
        }
        let log = ks.audit_log(2).unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].target, "2");
    }
}
