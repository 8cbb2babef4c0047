//! One sync for every chain family: a [`ChainSource`] says what its chain looks like (tip,
//! the hash at a height) and fetches a range into the prepared form the store writes,
//! committing it; [`ChainSync`] drives it: resume after the checkpoint, reconcile the
//! checkpoint with the chain and walk back to the newest common block on a reorg, index up to
//! a target, follow the head with retries and backoff (after reth's pipeline and ord's reorg
//! handling).
//!
//! [`crate::sync::EvmSync`] (EVM JSON-RPC) and [`crate::btc::BtcSync`] (blk files, Bitcoin
//! Core RPC, Esplora) are this sync over their family's source. Adding a chain family means
//! implementing [`ChainSource`]; the loops below stay as they are.

use crate::{
    model::{BlockNumber, BlockRef, ChainId},
    stage::Pipeline,
    store::{KeyspaceOp, Store, StoreError, UnwindStats},
    sync::{Commit, FOLLOW_MAX_BACKOFF, StopSignal, follow_backoff},
};
use alloy_primitives::B256;
use std::{
    future::Future,
    time::{Duration, Instant},
};

/// How a range ended: written to the target (or stopped), or cut short by a parent-hash
/// mismatch (a reorg while indexing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeEnd {
    /// Everything fetched was committed.
    Done,
    /// The next range does not build on the checkpoint: reconcile before going on.
    Reorg,
}

/// What the walk back on a reorg found wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReorgFailure {
    /// The store does not remember this block (its data or undo data is gone).
    NotRemembered(u64),
    /// Every block down to height 0 differs: the source is another chain.
    NoCommonAncestor,
}

/// What to do when the source has no block at a height the store holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absent {
    /// Count the block as different and walk further back.
    Differs,
    /// Leave the store as it is (the source does not reach the checkpoint yet).
    Keep,
}

/// The run summary a [`ChainSource`] fills while it commits.
pub trait RunSummary: Send {
    /// Blocks committed so far.
    fn blocks(&self) -> u64;
    /// Counts a handled reorg that removed `st`.
    fn reorged(&mut self, st: &UnwindStats);
    /// Fills wall time, rates, the checkpoint after the run and the interruption flag.
    fn finish(&mut self, started: Instant, checkpoint: Option<BlockRef>, interrupted: bool);
}

/// A chain family's source of blocks, with what it takes to write them.
pub trait ChainSource: Send + Sync {
    /// Why it failed.
    type Error: std::error::Error + From<StoreError> + Send + 'static;
    /// What a run did.
    type Summary: RunSummary;

    /// The store written to.
    fn store(&self) -> &Store;
    /// The chain written.
    fn chain(&self) -> ChainId;
    /// The chain's name (logs, summaries).
    fn name(&self) -> &str;
    /// A fresh summary for a run.
    fn new_summary(&self) -> Self::Summary;
    /// Whether trying again later may succeed.
    fn is_retryable(e: &Self::Error) -> bool;
    /// Whether `index` compares the checkpoint with the source before it starts (otherwise a
    /// reorg shows up as a parent-hash mismatch of the first range).
    fn reconciles_on_start(&self) -> bool;

    /// The height of the best tip (`None` when the source has no block).
    fn tip(&self) -> impl Future<Output = Result<Option<BlockNumber>, Self::Error>> + Send;
    /// The hash (as stored) of the source's block at `n`, if it has one.
    fn hash_at(
        &self,
        n: BlockNumber,
    ) -> impl Future<Output = Result<Option<B256>, Self::Error>> + Send;
    /// The first block to index after checkpoint `cp`, or at `from` when given.
    fn start(
        &self,
        cp: Option<BlockRef>,
        from: Option<BlockNumber>,
    ) -> Result<BlockNumber, Self::Error>;
    /// Fetches `start..=to` into the store's prepared form and commits it range by range in
    /// order, each atomically with its checkpoint, calling `on_commit` after each; stops early
    /// on `stop` or at a range whose parent is not `checkpoint`'s (a reorg).
    fn execute(
        &self,
        start: BlockNumber,
        to: BlockNumber,
        checkpoint: Option<BlockRef>,
        summary: &mut Self::Summary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> impl Future<Output = Result<RangeEnd, Self::Error>> + Send;
    /// Removes everything above block `to` (restoring what the family needs restored), with
    /// `extra` (the stages' unwind) in the same atomic batch.
    fn unwind(
        &self,
        to: BlockNumber,
        extra: Vec<KeyspaceOp>,
    ) -> impl Future<Output = Result<UnwindStats, Self::Error>> + Send;
    /// What a block the store holds but the source lacks means.
    fn on_absent(&self, n: BlockNumber, at_checkpoint: bool) -> Result<Absent, Self::Error>;
    /// The error of a walk back that cannot find a common block.
    fn reorg_failure(&self, f: ReorgFailure) -> Self::Error;
    /// The error when a range does not build on the checkpoint yet the checkpoint block is
    /// still on the source's chain (`None`: reconcile and try again).
    fn unresolved_reorg(&self) -> Option<Self::Error>;
}

/// The one sync loop: resume, reconcile, reorg walk-back, follow, retries; after each commit
/// it runs its [`Pipeline`] of stages.
pub struct ChainSync<S> {
    source: S,
    stop: StopSignal,
    pipeline: Pipeline,
}

impl<S: ChainSource> ChainSync<S> {
    /// A sync of `source`, stopped by `stop`, that runs no stage after commits but unwinds the
    /// stored ones ([`Pipeline::unwinding`]).
    pub fn new(source: S, stop: StopSignal) -> Self {
        Self {
            source,
            stop,
            pipeline: Pipeline::unwinding(),
        }
    }

    /// Runs `pipeline`'s stages in order after each commit (before `on_commit`) and unwinds
    /// them on reorgs. It must hold every stage whose output the store keeps (see
    /// [`Pipeline::unwinding`]).
    pub fn with_pipeline(mut self, pipeline: Pipeline) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// `on_commit` after the pipeline's stages.
    fn staged<'a>(&'a self, on_commit: &'a (dyn Fn(Commit) + Sync)) -> impl Fn(Commit) + Sync + 'a {
        move |c| {
            self.pipeline.after_commit(
                self.source.store(),
                self.source.chain(),
                self.source.name(),
            );
            on_commit(c);
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The source, to tune it before a run.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// Indexes `from..=to` (resuming after the checkpoint); `to` defaults to the source's tip.
    pub async fn index(
        &self,
        from: Option<BlockNumber>,
        to: Option<BlockNumber>,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<S::Summary, S::Error> {
        let started = Instant::now();
        let staged = self.staged(on_commit);
        let on_commit = &staged;
        let mut summary = self.source.new_summary();
        if self.source.reconciles_on_start() {
            self.reconcile_into(&mut summary).await?;
        }
        let to = match to {
            Some(t) => Some(t),
            None => self.source.tip().await?,
        };
        if let Some(to) = to {
            self.run_to(from, to, &mut summary, on_commit).await?;
        }
        let persist_started = Instant::now();
        self.source.store().persist()?;
        tracing::debug!(
            persist_ms = persist_started.elapsed().as_millis(),
            "synced the journal"
        );
        self.finish(started, &mut summary, self.stop.is_stopped())?;
        Ok(summary)
    }

    /// Follows the tip: each step reconciles the checkpoint with the source (unwinding orphaned
    /// blocks), then indexes up to tip − `confirmations`; polls every `poll` until stopped.
    /// Retryable failures (node down, rate limits, a block not served yet) back off and retry;
    /// the others end the run.
    pub async fn follow(
        &self,
        from: Option<BlockNumber>,
        confirmations: u64,
        poll: Duration,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<S::Summary, S::Error> {
        let started = Instant::now();
        let staged = self.staged(on_commit);
        let on_commit = &staged;
        let mut summary = self.source.new_summary();
        let mut backoff = follow_backoff(poll);
        let mut failures = 0u32;
        while !self.stop.is_stopped() {
            let blocks_before = summary.blocks();
            let step = self
                .follow_step(from, confirmations, &mut summary, on_commit)
                .await;
            if summary.blocks() > blocks_before {
                // A step that committed blocks before it failed: the node works, mostly.
                failures = 0;
                backoff = follow_backoff(poll);
            }
            match step {
                Ok(()) => {
                    failures = 0;
                    backoff = follow_backoff(poll);
                    self.source.store().persist()?;
                    self.stop.sleep(poll).await;
                }
                Err(e) if S::is_retryable(&e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff.next().unwrap_or(FOLLOW_MAX_BACKOFF);
                    tracing::warn!(
                        chain = %self.source.name(),
                        error = %e,
                        failures,
                        retry_in_ms = wait.as_millis(),
                        "follow step failed; retrying"
                    );
                    self.stop.sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
        self.source.store().persist()?;
        self.finish(started, &mut summary, true)?;
        Ok(summary)
    }

    fn finish(
        &self,
        started: Instant,
        summary: &mut S::Summary,
        interrupted: bool,
    ) -> Result<(), S::Error> {
        let cp = self.source.store().checkpoint(self.source.chain())?;
        summary.finish(started, cp, interrupted);
        Ok(())
    }

    async fn follow_step(
        &self,
        from: Option<BlockNumber>,
        confirmations: u64,
        summary: &mut S::Summary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<(), S::Error> {
        self.reconcile_into(summary).await?;
        let Some(tip) = self.source.tip().await? else {
            return Ok(());
        };
        let Some(target) = tip.0.checked_sub(confirmations).map(BlockNumber) else {
            return Ok(());
        };
        self.run_to(from, target, summary, on_commit).await
    }

    /// [`Self::reconcile`], counted in the summary.
    async fn reconcile_into(&self, summary: &mut S::Summary) -> Result<(), S::Error> {
        if let Some((fork, st)) = self.reconcile().await? {
            summary.reorged(&st);
            tracing::info!(chain = %self.source.name(), fork = fork.0, unwound_blocks = st.blocks, unwound_transfers = st.transfers, "reorg handled");
        }
        Ok(())
    }

    /// Indexes from the checkpoint (or `from`) up to `to`, unwinding and going on when a reorg
    /// shows up on the way.
    async fn run_to(
        &self,
        from: Option<BlockNumber>,
        to: BlockNumber,
        summary: &mut S::Summary,
        on_commit: &(dyn Fn(Commit) + Sync),
    ) -> Result<(), S::Error> {
        loop {
            let cp = self.source.store().checkpoint(self.source.chain())?;
            let start = self.source.start(cp, from)?;
            if start > to || self.stop.is_stopped() {
                return Ok(());
            }
            match self
                .source
                .execute(start, to, cp, summary, on_commit)
                .await?
            {
                RangeEnd::Done => return Ok(()),
                RangeEnd::Reorg => match self.reconcile().await? {
                    Some((_, st)) => summary.reorged(&st),
                    None => {
                        if let Some(e) = self.source.unresolved_reorg() {
                            return Err(e);
                        }
                    }
                },
            }
        }
    }

    /// Compares the checkpoint block with the source; on a difference walks back to the newest
    /// common block and unwinds to it. Returns the fork point and what was removed.
    pub async fn reconcile(&self) -> Result<Option<(BlockNumber, UnwindStats)>, S::Error> {
        let store = self.source.store();
        let chain = self.source.chain();
        let Some(cp) = store.checkpoint(chain)? else {
            return Ok(None);
        };
        let mut n = cp.number;
        loop {
            let Some(stored) = store.block(chain, n)? else {
                return Err(self.source.reorg_failure(ReorgFailure::NotRemembered(n.0)));
            };
            let same = match self.source.hash_at(n).await? {
                Some(remote) => remote == stored.hash,
                None => match self.source.on_absent(n, n == cp.number)? {
                    Absent::Differs => false,
                    Absent::Keep => return Ok(None),
                },
            };
            if same {
                if n == cp.number {
                    return Ok(None);
                }
                // The stages' unwind is read before the blocks go, and committed with them.
                let extra = self.pipeline.unwind_ops(store, chain, n)?;
                let st = self.source.unwind(n, extra).await?;
                tracing::info!(chain = %self.source.name(), fork = n.0, removed_blocks = st.blocks, removed_transfers = st.transfers, "unwound orphaned blocks");
                return Ok(Some((n, st)));
            }
            n = match n.0.checked_sub(1) {
                Some(p) => BlockNumber(p),
                None => return Err(self.source.reorg_failure(ReorgFailure::NoCommonAncestor)),
            };
        }
    }
}
