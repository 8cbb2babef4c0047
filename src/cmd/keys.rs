//! `paytrace keys`: API keys of `paytrace serve` (create, list, revoke). Only salted hashes are
//! stored; a created key is printed once.

use super::Context;
use clap::Subcommand;
use paytrace_app::keys::{KeyStore, Role};
use serde::Serialize;
use std::process::ExitCode;

/// API key management.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a key and print it (it cannot be shown again).
    Create {
        /// What the key may do: analyst (reads), compliance (also alerts and watchlist),
        /// admin (also label imports and keys).
        #[arg(long)]
        role: Role,
        /// A name for the key (who or what uses it).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List the keys (ids, roles, names, created and revoked times; never the keys).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key's id (16 hex digits, the part after `ptk_`).
        id: String,
    },
}

#[derive(Serialize)]
struct KeyView {
    id: String,
    role: Role,
    name: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl From<paytrace_app::keys::ApiKey> for KeyView {
    fn from(k: paytrace_app::keys::ApiKey) -> Self {
        Self {
            id: k.id,
            role: k.role,
            name: k.name,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
            key: None,
        }
    }
}

impl KeysCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        match self {
            Self::Create { role, name } => {
                let keys = KeyStore::open(&ctx.open_store()?)?;
                let k = keys.create(*role, name)?;
                if ctx.json {
                    let mut v = KeyView::from(k.record);
                    v.key = Some(k.key);
                    ctx.print_json(&v)?;
                } else {
                    println!("{}", k.key);
                    eprintln!(
                        "created API key {} with role {} (shown once; only its hash is stored)",
                        k.record.id, k.record.role
                    );
                }
            }
            Self::List => {
                let keys = KeyStore::open(&ctx.open_store_read()?)?;
                let list: Vec<KeyView> = keys.list()?.into_iter().map(KeyView::from).collect();
                if ctx.json {
                    ctx.print_json(&list)?;
                } else {
                    if list.is_empty() {
                        println!("no API keys");
                    }
                    for k in &list {
                        println!(
                            "{} {:<10} {} created {}{}",
                            k.id,
                            k.role,
                            if k.name.is_empty() { "-" } else { &k.name },
                            k.created_at,
                            k.revoked_at
                                .as_ref()
                                .map_or(String::new(), |r| format!(", revoked {r}"))
                        );
                    }
                }
            }
            Self::Revoke { id } => {
                let keys = KeyStore::open(&ctx.open_store()?)?;
                let k = keys.revoke(id)?;
                if ctx.json {
                    ctx.print_json(&KeyView::from(k))?;
                } else {
                    println!("revoked API key {}", k.id);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
