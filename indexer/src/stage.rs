//! Stages derived from the indexed transfers, run in order by a [`Pipeline`] after each commit
//! of the sync (after reth's stages): each has an id and its own progress per chain, `execute`
//! brings it up to the chain's indexed checkpoint and `unwind` gives the writes that undo it
//! above a block, committed in the same atomic batch as the unwound blocks. The pipeline owns
//! reorg unwinds: the store's unwind removes the blocks only.

use crate::{
    model::{BlockNumber, ChainId},
    store::{BALANCE_INTERVAL, BalanceStats, KeyspaceOp, Store, StoreError, UnwindStats},
};

/// A stage run after the sync commits blocks.
pub trait Stage: Send + Sync {
    /// The stage's id (logs, reports).
    fn id(&self) -> &'static str;
    /// The block up to which the stage is complete on `chain` (`None`: it never ran there).
    fn progress(&self, store: &Store, chain: ChainId) -> Result<Option<BlockNumber>, StoreError>;
    /// Brings the stage up to `chain`'s indexed checkpoint (`name`: the chain's name, for logs).
    fn execute(&self, store: &Store, chain: ChainId, name: &str) -> Result<(), StoreError>;
    /// The writes that undo the stage's output on `chain` above block `to` and move its
    /// progress back, for the unwind's atomic batch (read before the blocks are removed).
    fn unwind(
        &self,
        store: &Store,
        chain: ChainId,
        to: BlockNumber,
    ) -> Result<Vec<KeyspaceOp>, StoreError> {
        let _ = (store, chain, to);
        Ok(Vec::new())
    }
}

/// The balance checkpoint stage (`store/balances.rs`): a full build on a chain it never ran
/// on, otherwise only the addresses the new blocks touched. It never compacts the address
/// indexes (a follower must not stall for a rewrite; `paytrace index balances` does that).
/// Its unwind removes the checkpoints of every address the unwound blocks touch, from the
/// unwind height on, and moves its progress back.
#[derive(Clone, Copy, Debug)]
pub struct BalanceStage {
    /// History entries between two checkpoints of an (address, chain).
    pub interval: u64,
}

impl Default for BalanceStage {
    fn default() -> Self {
        Self {
            interval: BALANCE_INTERVAL,
        }
    }
}

impl BalanceStage {
    /// Runs the stage on `chain` and returns what it did.
    pub fn run(&self, store: &Store, chain: ChainId) -> Result<BalanceStats, StoreError> {
        if store.balances_progress(chain)?.is_none() {
            store.build_balances(Some(chain), self.interval)
        } else {
            store.update_balances(chain, self.interval)
        }
    }
}

impl Stage for BalanceStage {
    fn id(&self) -> &'static str {
        "balances"
    }

    fn progress(&self, store: &Store, chain: ChainId) -> Result<Option<BlockNumber>, StoreError> {
        store.balances_progress(chain)
    }

    fn execute(&self, store: &Store, chain: ChainId, name: &str) -> Result<(), StoreError> {
        let build = store.balances_progress(chain)?.is_none();
        let start = std::time::Instant::now();
        let stats = self.run(store, chain)?;
        let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            chain = name,
            build,
            addresses = stats.addresses,
            checkpoints = stats.checkpoints,
            elapsed_ms,
            "balance checkpoints"
        );
        Ok(())
    }

    fn unwind(
        &self,
        store: &Store,
        chain: ChainId,
        to: BlockNumber,
    ) -> Result<Vec<KeyspaceOp>, StoreError> {
        store.balance_unwind_ops(chain, to)
    }
}

/// Stages run in order after each commit of a sync, and unwound (last first) with the blocks
/// on a reorg.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
    unwind_only: bool,
}

impl Pipeline {
    /// A pipeline without stages (the sync alone).
    pub fn new() -> Self {
        Self::default()
    }

    /// The stages whose output the store keeps (the balance checkpoints), unwound with the
    /// blocks but not run after commits: the pipeline of a sync whose caller runs them once
    /// after the run (`index`). A sync without a pipeline of its own has this one, so that no
    /// unwind leaves stale derived data behind.
    pub fn unwinding() -> Self {
        Self {
            stages: vec![Box::new(BalanceStage::default())],
            unwind_only: true,
        }
    }

    /// Adds `stage` after the stages already there.
    pub fn with_stage(mut self, stage: impl Stage + 'static) -> Self {
        self.stages.push(Box::new(stage));
        self
    }

    /// The stages' ids, in order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.id()).collect()
    }

    /// Runs every stage on `chain` in order after a commit. A failed stage is logged and
    /// never stops the sync (its progress stays behind, so readers ignore what it did not
    /// write and the next commit catches it up); the stages after it still run.
    pub fn after_commit(&self, store: &Store, chain: ChainId, name: &str) {
        if self.unwind_only {
            return;
        }
        for s in &self.stages {
            if let Err(e) = s.execute(store, chain, name) {
                tracing::warn!(chain = name, stage = s.id(), error = %e, "stage not updated");
            }
        }
    }

    /// The writes that unwind every stage on `chain` to block `to`, last stage first, for the
    /// unwind's atomic batch.
    pub fn unwind_ops(
        &self,
        store: &Store,
        chain: ChainId,
        to: BlockNumber,
    ) -> Result<Vec<KeyspaceOp>, StoreError> {
        let mut ops = Vec::new();
        for s in self.stages.iter().rev() {
            ops.extend(s.unwind(store, chain, to)?);
        }
        Ok(ops)
    }

    /// Unwinds `chain` to block `to`: the blocks above it with their transfers
    /// ([`Store::unwind_with`]) and every stage's output, in one atomic batch. (A Bitcoin chain
    /// also restores its UTXO set: its sync passes [`Pipeline::unwind_ops`] to
    /// `UtxoStore::unwind_with`.)
    pub fn unwind(
        &self,
        store: &Store,
        chain: ChainId,
        to: BlockNumber,
    ) -> Result<UnwindStats, StoreError> {
        let ops = self.unwind_ops(store, chain, to)?;
        store.unwind_with(chain, to, ops)
    }
}
