//! The registry of every keyspace in a paytrace store, and the typed handles through which
//! the rest of the code base reads and writes them.
//!
//! Each keyspace is registered here **once**, as a [`KeyspaceDef`] (its name, what its keys
//! and values are, which module writes it and which read it). A module that owns a keyspace
//! declares a typed [`Keyspace<K, V>`] over the definition, with the [`Codec`]s of its keys
//! and values, and gets a [`Table`] from [`Store::table`](super::Store::table): reads decode
//! the values, writes encode them, and no storage-engine handle leaves the store module.
//!
//! The store's own keyspaces (`meta` to `balances`) are held from the open; every other one is
//! opened on first use ([`Store::table`](super::Store::table)). A keyspace that a store opened
//! for reading does not have (the module never wrote to this store) reads as empty and is not
//! created, so a read never writes; a writer creates it on first use, so a store holds only the
//! keyspaces its commands used. (The storage engine itself recovers every keyspace on disk
//! when the database opens.)
//!
//! The full layout (keys and values, all integers big-endian) is [`ALL`]; the module docs of
//! [`super`] render it as a table.

use super::StoreError;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

/// One registered keyspace: its name on disk and its documentation.
#[derive(Debug)]
pub struct KeyspaceDef {
    /// The keyspace's name in the storage engine.
    pub name: &'static str,
    /// What a key is.
    pub key: &'static str,
    /// What a value is.
    pub value: &'static str,
    /// The module that writes it.
    pub writer: &'static str,
    /// The modules that read it.
    pub readers: &'static str,
    /// Position in [`ALL`].
    pub(crate) index: usize,
    /// Only ever scanned by prefix (no bloom filters on its tables).
    pub(crate) scan_only: bool,
}

macro_rules! registry {
    ($( $(#[$doc:meta])* $id:ident = $index:literal, $name:literal, scan_only: $scan:literal,
        key: $key:literal, value: $value:literal, writer: $writer:literal, readers: $readers:literal; )*) => {
        $(
            $(#[$doc])*
            pub static $id: KeyspaceDef = KeyspaceDef {
                name: $name,
                key: $key,
                value: $value,
                writer: $writer,
                readers: $readers,
                index: $index,
                scan_only: $scan,
            };
        )*
        /// Every registered keyspace, in layout order (`ALL[d.index]` is `d`).
        pub static ALL: &[&KeyspaceDef] = &[$(&$id),*];
    };
}

registry! {
    /// Schema version, bulk-range markers, the balance stage's progress.
    META = 0, "meta", scan_only: false,
        key: "`schema_version`; `bulk:` + chain u16; `bulk_undo:` + chain u16; balance progress key",
        value: "u32; first u64 + last u64 block; u64",
        writer: "store", readers: "store";
    /// Registered chains.
    CHAINS = 1, "chains", scan_only: false,
        key: "chain name", value: "postcard `ChainInfo`", writer: "store", readers: "store";
    /// One row per transaction.
    TRANSFERS = 2, "transfers", scan_only: false,
        key: "chain u16 + block u64 + tx index u32",
        value: "the transaction's transfers (`txrow.rs`)", writer: "store", readers: "store";
    /// Outgoing address index.
    ADDR_OUT = 3, "addr_out", scan_only: true,
        key: "address key + transfer key", value: "covering value (`flow.rs`)",
        writer: "store", readers: "store";
    /// Incoming address index.
    ADDR_IN = 4, "addr_in", scan_only: true,
        key: "address key + transfer key", value: "covering value (`flow.rs`)",
        writer: "store", readers: "store";
    /// Transaction hash to location.
    TX_INDEX = 5, "tx_index", scan_only: false,
        key: "chain u16 + tx hash (32)", value: "block u64 + tx index u32",
        writer: "store", readers: "store";
    /// Recent block hashes (reorg window).
    BLOCKS = 6, "blocks", scan_only: false,
        key: "chain u16 + block u64", value: "postcard `BlockRef`", writer: "store", readers: "store";
    /// Per-chain checkpoints.
    CHECKPOINTS = 7, "checkpoints", scan_only: false,
        key: "chain u16", value: "postcard `BlockRef`", writer: "store", readers: "store";
    /// Transfer counters.
    COUNTERS = 8, "counters", scan_only: false,
        key: "chain u16 + kind u8", value: "u64", writer: "store", readers: "store";
    /// Balance checkpoints.
    BALANCES = 9, "balances", scan_only: false,
        key: "address key + transfer key", value: "balance checkpoint (`balances.rs`)",
        writer: "store (balance stage)", readers: "store, tracer";
    /// Token metadata.
    TOKEN_META = 10, "token_meta", scan_only: false,
        key: "chain u16 + address key", value: "postcard `TokenMeta` (`tokens.rs`)",
        writer: "evm sync, `tokens`", readers: "units, reports";
    /// Labels by address.
    LABELS = 11, "labels", scan_only: false,
        key: "label address key", value: "postcard `Vec<Label>`",
        writer: "labels::store", readers: "labels::store";
    /// Label sources and versions.
    LABEL_SOURCES = 12, "label_sources", scan_only: false,
        key: "source name", value: "postcard `SourceInfo`",
        writer: "labels::store", readers: "labels::store";
    /// Per-source index of labelled addresses.
    LABEL_BY_SOURCE = 13, "label_by_source", scan_only: false,
        key: "source name + 0x00 + address key", value: "empty",
        writer: "labels::store", readers: "labels::store";
    /// Staged entries of an import in progress.
    LABEL_STAGING = 14, "label_staging", scan_only: false,
        key: "label address key", value: "postcard staged entry",
        writer: "labels::store", readers: "labels::store (apply)";
    /// The apply plan of an import.
    LABEL_APPLY = 15, "label_apply", scan_only: false,
        key: "`plan`", value: "postcard apply plan",
        writer: "labels::store", readers: "labels::store (open)";
    /// The Bitcoin UTXO set.
    BTC_UTXO = 16, "btc_utxo", scan_only: false,
        key: "chain u16 + txid (32) + vout u32", value: "script id, amount (`btc::utxo`)",
        writer: "btc::utxo", readers: "btc::utxo";
    /// Bitcoin undo data per block.
    BTC_UNDO = 17, "btc_undo", scan_only: false,
        key: "chain u16 + block u64", value: "postcard `BlockUndo`",
        writer: "btc::utxo", readers: "btc::utxo";
    /// Bitcoin transaction metadata.
    BTC_TX = 18, "btc_tx", scan_only: false,
        key: "chain u16 + txid (32)", value: "transaction metadata (`btc::utxo`)",
        writer: "btc::utxo", readers: "btc::utxo";
    /// Canonical script of each script id.
    BTC_SCRIPTS = 19, "btc_scripts", scan_only: false,
        key: "script id (32)", value: "the script's bytes",
        writer: "btc::utxo", readers: "btc::utxo, `Store::btc_script` (clustering)";
    /// Address to cluster id.
    CLUSTER_IDS = 20, "cluster_ids", scan_only: false,
        key: "address key", value: "id u32", writer: "app::clusters", readers: "app::clusters";
    /// Cluster id to address.
    CLUSTER_ADDRS = 21, "cluster_addrs", scan_only: false,
        key: "id u32", value: "address key", writer: "app::clusters", readers: "app::clusters";
    /// Union-find chunks.
    CLUSTER_UF = 22, "cluster_uf", scan_only: false,
        key: "chunk u32", value: "(parent u32, size u32) x 4096",
        writer: "app::clusters", readers: "app::clusters";
    /// Members by root.
    CLUSTER_MEMBERS = 23, "cluster_members", scan_only: false,
        key: "root u32 + id u32", value: "empty", writer: "app::clusters", readers: "app::clusters";
    /// Merge records.
    CLUSTER_MERGES = 24, "cluster_merges", scan_only: false,
        key: "sequence u64", value: "postcard `MergeRecord`",
        writer: "app::clusters", readers: "app::clusters";
    /// Merges by id.
    CLUSTER_MERGE_INDEX = 25, "cluster_merge_index", scan_only: false,
        key: "id u32 + sequence u64", value: "empty",
        writer: "app::clusters", readers: "app::clusters";
    /// Merges the collapse guard refused.
    CLUSTER_REFUSED = 26, "cluster_refused", scan_only: false,
        key: "sequence u64", value: "postcard `RefusedMerge`",
        writer: "app::clusters", readers: "app::clusters";
    /// CoinJoin flags.
    CLUSTER_COINJOINS = 27, "cluster_coinjoins", scan_only: false,
        key: "tx hash (32)", value: "postcard `CoinJoinFlag`",
        writer: "app::clusters", readers: "app::clusters";
    /// Deposit addresses found by clustering.
    CLUSTER_DEPOSITS = 28, "cluster_deposits", scan_only: false,
        key: "address key", value: "postcard `DepositRecord`",
        writer: "app::clusters", readers: "app::clusters";
    /// Airdrop hits.
    CLUSTER_AIRDROP_HITS = 29, "cluster_airdrop_hits", scan_only: false,
        key: "token key + recipient key", value: "postcard `AirdropHit`",
        writer: "app::clusters", readers: "app::clusters";
    /// Airdrop forwards.
    CLUSTER_AIRDROP_FWD = 30, "cluster_airdrop_fwd", scan_only: false,
        key: "token key + aggregator key + from key", value: "postcard `AirdropForward`",
        writer: "app::clusters", readers: "app::clusters";
    /// Clustering counters and per-chain progress.
    CLUSTER_META = 31, "cluster_meta", scan_only: false,
        key: "`n_ids`, `merge_seq`, `refused_seq`, `cp` + chain u16",
        value: "u32 / u64 / postcard `BlockRef`",
        writer: "app::clusters", readers: "app::clusters";
    /// Alerts.
    ALERTS = 32, "alerts", scan_only: false,
        key: "id u64", value: "alert JSON", writer: "app::alerts", readers: "app::alerts";
    /// Alert deduplication keys.
    ALERT_KEYS = 33, "alert_keys", scan_only: false,
        key: "deduplication key", value: "id u64", writer: "app::alerts", readers: "app::alerts";
    /// Alert counters.
    ALERT_META = 34, "alert_meta", scan_only: false,
        key: "`next_id`", value: "u64", writer: "app::alerts", readers: "app::alerts";
    /// The watchlist.
    WATCHLIST = 35, "watchlist", scan_only: false,
        key: "address key", value: "entry JSON", writer: "app::alerts", readers: "app::alerts";
    /// Pending webhook deliveries.
    WEBHOOK_OUTBOX = 36, "webhook_outbox", scan_only: false,
        key: "alert id u64 + 0x00 + webhook name", value: "entry JSON",
        writer: "app::alerts", readers: "app::alerts";
    /// The server's API keys (salted hashes only).
    API_KEYS = 37, "api_keys", scan_only: false,
        key: "key id (16 hex)", value: "key record JSON (role, salt, SHA-256 of salt + secret)",
        writer: "app::keys", readers: "app::keys";
    /// The audit log of every mutation made through the server.
    AUDIT_LOG = 38, "audit_log", scan_only: false,
        key: "time ns u64 + 8 random bytes", value: "entry JSON (key id, role, action, target, status)",
        writer: "app::keys", readers: "app::keys";
}

/// How the keys or values of a keyspace are encoded.
pub trait Codec: 'static {
    /// The decoded type.
    type Value;
    /// Encodes `v`.
    fn encode(v: &Self::Value) -> Result<Vec<u8>, String>;
    /// Decodes `b`.
    fn decode(b: &[u8]) -> Result<Self::Value, String>;
}

/// Bytes as they are (keys composed by their module, opaque values).
#[derive(Debug)]
pub struct Raw;

impl Codec for Raw {
    type Value = Vec<u8>;
    fn encode(v: &Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(v.clone())
    }
    fn decode(b: &[u8]) -> Result<Vec<u8>, String> {
        Ok(b.to_vec())
    }
}

/// An empty value (an index entry whose key is all the information).
#[derive(Debug)]
pub struct Unit;

impl Codec for Unit {
    type Value = ();
    fn encode(_: &()) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
    fn decode(_: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

/// A big-endian `u32`.
#[derive(Debug)]
pub struct U32Be;

impl Codec for U32Be {
    type Value = u32;
    fn encode(v: &u32) -> Result<Vec<u8>, String> {
        Ok(v.to_be_bytes().to_vec())
    }
    fn decode(b: &[u8]) -> Result<u32, String> {
        <[u8; 4]>::try_from(b)
            .map(u32::from_be_bytes)
            .map_err(|_| format!("expected 4 bytes, found {}", b.len()))
    }
}

/// A big-endian `u64`.
#[derive(Debug)]
pub struct U64Be;

impl Codec for U64Be {
    type Value = u64;
    fn encode(v: &u64) -> Result<Vec<u8>, String> {
        Ok(v.to_be_bytes().to_vec())
    }
    fn decode(b: &[u8]) -> Result<u64, String> {
        <[u8; 8]>::try_from(b)
            .map(u64::from_be_bytes)
            .map_err(|_| format!("expected 8 bytes, found {}", b.len()))
    }
}

/// A `T` in postcard.
#[derive(Debug)]
pub struct Postcard<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + 'static> Codec for Postcard<T> {
    type Value = T;
    fn encode(v: &T) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(v).map_err(|e| e.to_string())
    }
    fn decode(b: &[u8]) -> Result<T, String> {
        postcard::from_bytes(b).map_err(|e| e.to_string())
    }
}

/// A `T` in JSON.
#[derive(Debug)]
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T: Serialize + DeserializeOwned + 'static> Codec for Json<T> {
    type Value = T;
    fn encode(v: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(v).map_err(|e| e.to_string())
    }
    fn decode(b: &[u8]) -> Result<T, String> {
        serde_json::from_slice(b).map_err(|e| e.to_string())
    }
}

/// A registered keyspace with the codecs of its keys (`K`) and values (`V`), declared by the
/// module that owns it (`const LABELS: Keyspace<Raw, Postcard<Vec<Label>>> = ...`).
#[derive(Debug)]
pub struct Keyspace<K, V> {
    def: &'static KeyspaceDef,
    _codec: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Keyspace<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, V> Copy for Keyspace<K, V> {}

impl<K: Codec, V: Codec> Keyspace<K, V> {
    /// The typed view of the registered keyspace `def`.
    pub const fn new(def: &'static KeyspaceDef) -> Self {
        Self {
            def,
            _codec: PhantomData,
        }
    }

    /// The registered definition.
    pub const fn def(&self) -> &'static KeyspaceDef {
        self.def
    }
}

/// Where a registered keyspace is held once it exists, shared by the store and its tables.
#[derive(Clone)]
pub(super) struct Slot {
    cell: std::sync::Arc<std::sync::OnceLock<fjall::Keyspace>>,
    /// The database, to create the keyspace at its first write; `None` on a store opened for
    /// reading (which never creates one).
    db: Option<fjall::Database>,
    def: &'static KeyspaceDef,
}

impl Slot {
    /// An empty slot of `def`; `db` for a writable store.
    pub(super) fn new(def: &'static KeyspaceDef, db: Option<fjall::Database>) -> Self {
        Self {
            cell: std::sync::Arc::default(),
            db,
            def,
        }
    }

    /// A slot holding `ks` already.
    pub(super) fn opened(def: &'static KeyspaceDef, ks: &fjall::Keyspace) -> Self {
        let s = Self::new(def, None);
        let _ = s.cell.set(ks.clone());
        s
    }

    /// The keyspace, if it exists (opened by the store or created by a write).
    pub(super) fn get(&self) -> Option<&fjall::Keyspace> {
        self.cell.get()
    }

    /// Holds `ks` (the existing keyspace, opened by [`Store::table`](super::Store::table)).
    pub(super) fn set(&self, ks: fjall::Keyspace) {
        let _ = self.cell.set(ks);
    }

    /// The keyspace for a write: created on the first write to a writable store.
    pub(super) fn writable(&self) -> Result<&fjall::Keyspace, StoreError> {
        if let Some(ks) = self.cell.get() {
            return Ok(ks);
        }
        let read_only = StoreError::ReadOnlyWrite {
            keyspace: self.def.name,
        };
        let Some(db) = &self.db else {
            return Err(read_only);
        };
        let ks = db
            .keyspace(self.def.name, super::create_options(self.def))
            .map_err(|source| StoreError::KeyspaceIo {
                keyspace: self.def.name,
                op: "create",
                source,
            })?;
        self.set(ks);
        self.cell.get().ok_or(read_only)
    }
}

/// An opened keyspace: typed reads and writes. Cheap to clone.
///
/// A keyspace the store does not have yet reads as empty; on a store opened for writing its
/// first write creates it, on one opened for reading every write fails.
pub struct Table<K, V> {
    pub(super) slot: Slot,
    pub(super) def: &'static KeyspaceDef,
    _codec: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Self {
            slot: self.slot.clone(),
            def: self.def,
            _codec: PhantomData,
        }
    }
}

impl<K, V> std::fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("keyspace", &self.def.name)
            .field("present", &self.slot.get().is_some())
            .finish()
    }
}

/// One decoded entry of a scan, or the error that stopped it.
pub type Entry<K, V> = Result<(<K as Codec>::Value, <V as Codec>::Value), StoreError>;

impl<K: Codec, V: Codec> Table<K, V> {
    pub(super) fn new(slot: Slot) -> Self {
        Self {
            def: slot.def,
            slot,
            _codec: PhantomData,
        }
    }

    /// The keyspace's name.
    pub fn name(&self) -> &'static str {
        self.def.name
    }

    fn io(&self, op: &'static str, source: fjall::Error) -> StoreError {
        StoreError::KeyspaceIo {
            keyspace: self.def.name,
            op,
            source,
        }
    }

    fn corrupt(&self, key: &[u8], reason: String) -> StoreError {
        StoreError::Corrupt {
            keyspace: self.def.name,
            key: alloy_primitives::hex::encode(key),
            reason,
        }
    }

    pub(super) fn writable(&self) -> Result<&fjall::Keyspace, StoreError> {
        self.slot.writable()
    }

    fn decode_value(&self, key: &[u8], v: &[u8]) -> Result<V::Value, StoreError> {
        V::decode(v).map_err(|r| self.corrupt(key, r))
    }

    fn decode_entry(&self, k: &[u8], v: &[u8]) -> Entry<K, V> {
        let key = K::decode(k).map_err(|r| self.corrupt(k, format!("bad key: {r}")))?;
        Ok((key, self.decode_value(k, v)?))
    }

    /// Encodes a value of this keyspace.
    pub fn encode_value(&self, v: &V::Value) -> Result<Vec<u8>, StoreError> {
        V::encode(v).map_err(|e| StoreError::Encode(format!("{}: {e}", self.def.name)))
    }

    /// The value at `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<V::Value>, StoreError> {
        let Some(ks) = self.slot.get() else {
            return Ok(None);
        };
        let key = key.as_ref();
        match ks.get(key).map_err(|e| self.io("read", e))? {
            Some(v) => self.decode_value(key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        match self.slot.get() {
            Some(ks) => ks.contains_key(key).map_err(|e| self.io("read", e)),
            None => Ok(false),
        }
    }

    /// Writes `value` at `key` (its own atomic write).
    pub fn insert(&self, key: impl AsRef<[u8]>, value: &V::Value) -> Result<(), StoreError> {
        let v = self.encode_value(value)?;
        self.writable()?
            .insert(key.as_ref(), v)
            .map_err(|e| self.io("write", e))
    }

    /// Removes `key` (its own atomic write; nothing to do in a keyspace that does not exist).
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        match self.slot.get() {
            Some(ks) => ks.remove(key.as_ref()).map_err(|e| self.io("remove", e)),
            None if self.slot.db.is_some() => Ok(()),
            None => Err(StoreError::ReadOnlyWrite {
                keyspace: self.def.name,
            }),
        }
    }

    /// Whether the keyspace holds no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        match self.slot.get() {
            Some(ks) => ks.is_empty().map_err(|e| self.io("read", e)),
            None => Ok(true),
        }
    }

    /// The first entry in key order.
    pub fn first(&self) -> Option<Entry<K, V>> {
        self.iter().next()
    }

    /// The last entry in key order.
    pub fn last(&self) -> Option<Entry<K, V>> {
        let ks = self.slot.get()?;
        let kv = ks.last_key_value()?;
        Some(
            kv.into_inner()
                .map_err(|e| self.io("read", e))
                .and_then(|(k, v)| self.decode_entry(&k, &v)),
        )
    }

    /// Removes every entry.
    pub fn clear(&self) -> Result<(), StoreError> {
        match self.slot.get() {
            Some(ks) => ks.clear().map_err(|e| self.io("clear", e)),
            None => Ok(()),
        }
    }

    fn scan<'a>(
        &'a self,
        it: Option<impl DoubleEndedIterator<Item = fjall::Guard> + 'a>,
    ) -> impl DoubleEndedIterator<Item = Entry<K, V>> + 'a {
        it.into_iter().flatten().map(move |kv| {
            let (k, v) = kv.into_inner().map_err(|e| self.io("scan", e))?;
            self.decode_entry(&k, &v)
        })
    }

    fn scan_keys<'a>(
        &'a self,
        it: Option<impl DoubleEndedIterator<Item = fjall::Guard> + 'a>,
    ) -> impl DoubleEndedIterator<Item = Result<K::Value, StoreError>> + 'a {
        it.into_iter().flatten().map(move |kv| {
            let k = kv.key().map_err(|e| self.io("scan", e))?;
            K::decode(&k).map_err(|r| self.corrupt(&k, format!("bad key: {r}")))
        })
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Entry<K, V>> + '_ {
        self.scan(self.slot.get().map(|ks| ks.iter()))
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub fn prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = Entry<K, V>> + '_ {
        let p = prefix.as_ref().to_vec();
        self.scan(self.slot.get().map(move |ks| ks.prefix(p)))
    }

    /// The entries in the key range `range`, in key order.
    pub fn range<R: std::ops::RangeBounds<Vec<u8>>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Entry<K, V>> + '_ {
        self.scan(self.slot.get().map(move |ks| ks.range(range)))
    }

    /// The keys (values not decoded) starting with `prefix`, in key order.
    pub fn prefix_keys(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> impl DoubleEndedIterator<Item = Result<K::Value, StoreError>> + '_ {
        let p = prefix.as_ref().to_vec();
        self.scan_keys(self.slot.get().map(move |ks| ks.prefix(p)))
    }

    /// The keys (values not decoded) in the key range `range`, in key order.
    pub fn range_keys<R: std::ops::RangeBounds<Vec<u8>>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Result<K::Value, StoreError>> + '_ {
        self.scan_keys(self.slot.get().map(move |ks| ks.range(range)))
    }

    /// Every key (values not decoded), in key order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = Result<K::Value, StoreError>> + '_ {
        self.scan_keys(self.slot.get().map(|ks| ks.iter()))
    }

    /// A write of `value` at `key`, for an atomic batch of the store
    /// ([`Store::unwind_with`](super::Store::unwind_with),
    /// [`PreparedRange::with_extra`](super::PreparedRange::with_extra)).
    pub fn put_op(
        &self,
        key: impl Into<Vec<u8>>,
        value: &V::Value,
    ) -> Result<super::KeyspaceOp, StoreError> {
        Ok(self.put_encoded_op(key, self.encode_value(value)?))
    }

    /// [`Table::put_op`] of a value already encoded with this keyspace's codec (by the
    /// parallel part of a sync).
    pub fn put_encoded_op(&self, key: impl Into<Vec<u8>>, value: Vec<u8>) -> super::KeyspaceOp {
        super::KeyspaceOp {
            keyspace: self.untyped(),
            key: key.into(),
            value: Some(value),
        }
    }

    /// A removal of `key`, for an atomic batch of the store.
    pub fn remove_op(&self, key: impl Into<Vec<u8>>) -> super::KeyspaceOp {
        super::KeyspaceOp {
            keyspace: self.untyped(),
            key: key.into(),
            value: None,
        }
    }

    fn untyped(&self) -> TableRef {
        TableRef {
            slot: self.slot.clone(),
        }
    }
}

/// The keyspace of a [`KeyspaceOp`](super::KeyspaceOp) (its codecs already applied).
#[derive(Clone)]
pub struct TableRef {
    pub(super) slot: Slot,
}

impl TableRef {
    /// A core keyspace of the store (opened with it).
    pub(super) fn core(ks: &fjall::Keyspace, def: &'static KeyspaceDef) -> Self {
        Self {
            slot: Slot::opened(def, ks),
        }
    }

    /// The keyspace's name.
    pub fn name(&self) -> &'static str {
        self.slot.def.name
    }

    pub(super) fn writable(&self) -> Result<&fjall::Keyspace, StoreError> {
        self.slot.writable()
    }
}

impl std::fmt::Debug for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.slot.def.name)
    }
}

/// An atomic write to several keyspaces ([`Store::batch`](super::Store::batch)).
pub struct Batch {
    pub(super) inner: fjall::OwnedWriteBatch,
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("len", &self.len()).finish()
    }
}

impl Batch {
    /// Writes `value` at `key` of `table`.
    pub fn insert<K: Codec, V: Codec>(
        &mut self,
        table: &Table<K, V>,
        key: impl AsRef<[u8]>,
        value: &V::Value,
    ) -> Result<(), StoreError> {
        let v = table.encode_value(value)?;
        self.inner.insert(table.writable()?, key.as_ref(), v);
        Ok(())
    }

    /// Writes `value`, already encoded with the codec of `table` (e.g. by a parallel
    /// encoder), at `key` of `table`.
    pub fn insert_encoded<K: Codec, V: Codec>(
        &mut self,
        table: &Table<K, V>,
        key: impl AsRef<[u8]>,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.inner.insert(table.writable()?, key.as_ref(), value);
        Ok(())
    }

    /// Removes `key` of `table` (nothing to do in a keyspace that does not exist).
    pub fn remove<K: Codec, V: Codec>(
        &mut self,
        table: &Table<K, V>,
        key: impl AsRef<[u8]>,
    ) -> Result<(), StoreError> {
        if table.slot.get().is_some() || table.slot.db.is_none() {
            self.inner.remove(table.writable()?, key.as_ref());
        }
        Ok(())
    }

    /// Adds prepared writes.
    pub fn apply(&mut self, ops: Vec<super::KeyspaceOp>) -> Result<(), StoreError> {
        super::apply_ops(&mut self.inner, ops)
    }

    /// Number of writes.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether the batch holds no write.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Commits the batch atomically.
    pub fn commit(self) -> Result<(), StoreError> {
        self.inner.commit().map_err(|source| StoreError::Io {
            op: "commit a batch",
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_keyspace_is_registered_once_at_its_index() {
        let mut names = std::collections::HashSet::new();
        for (i, d) in ALL.iter().enumerate() {
            assert_eq!(d.index, i, "{}", d.name);
            assert!(names.insert(d.name), "{} registered twice", d.name);
        }
    }

    #[test]
    fn a_keyspace_is_created_by_its_first_write_never_by_a_read() {
        const T: Keyspace<Raw, U64Be> = Keyspace::new(&ALERT_META);
        let dir = tempfile::tempdir().unwrap();
        {
            let store = super::super::Store::open(dir.path()).unwrap();
            let t = store.table(T).unwrap();
            assert_eq!(t.get(b"k").unwrap(), None);
            assert!(t.iter().next().is_none());
            t.remove(b"k").unwrap();
            assert!(
                !store.db.keyspace_exists(ALERT_META.name),
                "a read created it"
            );
            t.insert(b"k", &7).unwrap();
            assert!(store.db.keyspace_exists(ALERT_META.name));
            // Every table of the keyspace sees it.
            assert_eq!(store.table(T).unwrap().get(b"k").unwrap(), Some(7));
            store.persist_for_reopen().unwrap();
        }
        let store = super::super::Store::open_read(dir.path()).unwrap();
        assert_eq!(store.table(T).unwrap().get(b"k").unwrap(), Some(7));
        let other: Keyspace<Raw, U64Be> = Keyspace::new(&ALERT_KEYS);
        let t = store.table(other).unwrap();
        assert_eq!(t.get(b"k").unwrap(), None);
        assert!(matches!(
            t.insert(b"k", &1),
            Err(StoreError::ReadOnlyWrite {
                keyspace: "alert_keys"
            })
        ));
    }

    #[test]
    fn the_store_module_doc_lists_every_keyspace() {
        let doc = include_str!("mod.rs");
        for d in ALL {
            assert!(
                doc.contains(&format!("| `{}`", d.name)),
                "{} is missing from the layout table of store/mod.rs",
                d.name
            );
        }
    }
}
