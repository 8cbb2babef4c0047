//! `serve --follow CHAIN`: the configured chains' followers run inside the server on its one
//! store handle (each commit is one atomic batch, so readers never see half a block), with
//! their progress shared with `/readyz` and `/metrics`.

use crate::cmd::{
    Context,
    index::{EvmChainArgs, FollowOptions, follow_evm},
};
use paytrace_indexer::{
    Store,
    evm::{RpcClient, RpcConfig},
    sync::{Commit, StopSignal},
};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Unknown, for the atomics below.
const NONE: u64 = u64::MAX;

/// What one follower has done so far.
#[derive(Debug)]
pub struct FollowerStatus {
    /// The chain's name.
    pub chain: String,
    indexed: AtomicU64,
    head: AtomicU64,
    commits: AtomicU64,
    reorgs: AtomicU64,
    failure: Mutex<Option<String>>,
}

fn get(a: &AtomicU64) -> Option<u64> {
    Some(a.load(Ordering::SeqCst)).filter(|v| *v != NONE)
}

impl FollowerStatus {
    /// A follower of `chain` that has done nothing yet (its indexed height from the store).
    pub fn new(chain: &str, indexed: Option<u64>) -> Self {
        Self {
            chain: chain.to_owned(),
            indexed: AtomicU64::new(indexed.unwrap_or(NONE)),
            head: AtomicU64::new(NONE),
            commits: AtomicU64::new(0),
            reorgs: AtomicU64::new(0),
            failure: Mutex::new(None),
        }
    }

    /// Last indexed block.
    pub fn indexed(&self) -> Option<u64> {
        get(&self.indexed)
    }

    /// The node's head when last asked.
    pub fn head(&self) -> Option<u64> {
        get(&self.head)
    }

    /// Head minus indexed, when both are known.
    pub fn lag(&self) -> Option<u64> {
        Some(self.head()?.saturating_sub(self.indexed()?))
    }

    /// Ranges committed.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Reorgs unwound (a commit starting at or below the previous checkpoint).
    pub fn reorgs(&self) -> u64 {
        self.reorgs.load(Ordering::SeqCst)
    }

    /// Why the follower stopped, if it failed.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn on_commit(&self, c: Commit) {
        let prev = self.indexed.swap(c.last.0, Ordering::SeqCst);
        if prev != NONE && c.first.0 <= prev {
            self.reorgs.fetch_add(1, Ordering::SeqCst);
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
    }
}

/// The followers of a server: their status and tasks.
pub struct Followers {
    /// Their status, in the order given.
    pub status: Vec<Arc<FollowerStatus>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts a follower per chain in `chains` (EVM chains of the config) on `store`, stopped by
/// `stop`. A Bitcoin chain is refused: following Bitcoin inside the server is not built yet.
pub fn start(
    ctx: &Context,
    store: &Store,
    chains: &[String],
    stop: &StopSignal,
) -> anyhow::Result<Followers> {
    let mut status = Vec::new();
    let mut tasks = Vec::new();
    for name in chains {
        let cfg = ctx.config.chain_or_default(name);
        anyhow::ensure!(
            cfg.kind == paytrace_config::ChainKind::Evm,
            "--follow {name}: following a Bitcoin chain inside the server is not supported; run \
             `paytrace follow btc` in its own process (with the server stopped)"
        );
        let args = EvmChainArgs::for_chain(name);
        let (chain_cfg, url) = args.resolve(ctx)?;
        let indexed = match store.chain_by_name(name)? {
            Some(c) => store.checkpoint(c.id)?.map(|b| b.number.0),
            None => None,
        };
        let st = Arc::new(FollowerStatus::new(name, indexed));
        let own_ctx = Context {
            config: ctx.config.clone(),
            data_dir: ctx.data_dir.clone(),
            json: false,
        };
        let (s2, store2, stop2) = (Arc::clone(&st), store.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let (summary, _) = follow_evm(
                &own_ctx,
                &args,
                Some(store2),
                FollowOptions::default(),
                stop2,
                &|c| s2.on_commit(c),
            )
            .await;
            match summary {
                Ok(s) => tracing::info!(chain = %s.chain, checkpoint = ?s.checkpoint, "follower stopped"),
                Err(e) => {
                    tracing::error!(chain = %s2.chain, error = %format!("{e:#}"), "follower failed");
                    *s2.failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(format!("{e:#}"));
                }
            }
        }));
        // The node's head, asked every poll interval, for the lag.
        let rpc = RpcClient::new(RpcConfig {
            url,
            concurrency: 1,
            rps: chain_cfg.rps,
            timeout: Duration::from_secs(chain_cfg.timeout_secs),
            deadline: Duration::from_secs(chain_cfg.deadline_secs),
            max_retries: 0,
            min_backoff: Duration::from_millis(100),
        })?;
        let poll = Duration::from_millis(chain_cfg.poll_interval_ms.max(10));
        let (s3, stop3) = (Arc::clone(&st), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop3.is_stopped() {
                match rpc
                    .call::<_, alloy_primitives::U64>("eth_blockNumber", [(); 0], "the head")
                    .await
                {
                    Ok(h) => s3.head.store(h.to::<u64>(), Ordering::SeqCst),
                    Err(e) => {
                        tracing::debug!(chain = %s3.chain, error = %e, "asking the head failed")
                    }
                }
                stop3.sleep(poll).await;
            }
        }));
        status.push(st);
    }
    Ok(Followers { status, tasks })
}

impl Followers {
    /// No followers.
    pub fn none() -> Self {
        Self {
            status: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// Waits for every follower to finish its current commit and stop (after `stop`).
    pub async fn join(self) {
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "follower task failed");
            }
        }
    }
}
