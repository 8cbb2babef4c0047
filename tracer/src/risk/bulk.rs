//! Bulk screening: many addresses screened on several threads against one shared history
//! cache and label cache, results in input order and identical to screening them one by one.

use super::{LabelHistory, ScreenParams, ScreenResult, screen};
use crate::{FlowSource, TraceError, par::for_each_ordered};
use paytrace_indexer::Address;

/// Screens `addresses` on `threads` threads (0: one per core, at most 8; 1: on the calling
/// thread) and calls `sink(i, result)` for every address in input order on the calling thread.
/// When `sink` returns `false` the remaining addresses are not screened.
///
/// `src` and `history` are shared by the threads: wrap the store in a
/// [`CachedSource`](crate::CachedSource) so that histories read by one screening serve the
/// others. Each result is exactly what [`screen`] returns for the address alone.
pub fn screen_each<S, H, K>(
    src: &S,
    history: &H,
    addresses: &[Address],
    p: &ScreenParams,
    threads: usize,
    sink: K,
) where
    S: FlowSource + Sync,
    H: LabelHistory + Sync,
    K: FnMut(usize, Result<ScreenResult, TraceError>) -> bool,
{
    for_each_ordered(
        addresses.len(),
        threads,
        |i| screen(src, history, &addresses[i], p),
        sink,
    );
}

/// [`screen_each`] collected: one result per address, in input order.
pub fn screen_all<S, H>(
    src: &S,
    history: &H,
    addresses: &[Address],
    p: &ScreenParams,
    threads: usize,
) -> Vec<Result<ScreenResult, TraceError>>
where
    S: FlowSource + Sync,
    H: LabelHistory + Sync,
{
    let mut out = Vec::with_capacity(addresses.len());
    screen_each(src, history, addresses, p, threads, |_, r| {
        out.push(r);
        true
    });
    out
}
