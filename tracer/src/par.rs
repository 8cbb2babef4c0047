//! Independent jobs (the screenings of a bulk screening, the traces of a payout report) run on
//! several threads, with their results handed back in input order on the calling thread.
//!
//! Jobs are taken in input order from a shared counter (a slow job does not hold up a whole
//! stripe of the input), and at most a few results wait to be handed back, so memory does not
//! grow with the input. With one thread the jobs run on the calling thread, one after the
//! other: the results are the same either way.

use std::{
    collections::BTreeMap,
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
};

/// Default number of worker threads: one per core, at most 8.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(NonZeroUsize::get)
        .unwrap_or(1)
        .clamp(1, 8)
}

/// `threads` with 0 meaning [`default_threads`], never more than `jobs` (at least 1).
pub fn effective_threads(threads: usize, jobs: usize) -> usize {
    let t = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    t.min(jobs).max(1)
}

/// Runs `work(i)` for every `i` in `0..jobs` on `threads` threads (0: [`default_threads`]) and
/// calls `sink(i, result)` on the calling thread in order of `i`. When `sink` returns `false`
/// no further result is handed back and the jobs not yet started are skipped.
pub fn for_each_ordered<R, W, K>(jobs: usize, threads: usize, work: W, mut sink: K)
where
    R: Send,
    W: Fn(usize) -> R + Sync,
    K: FnMut(usize, R) -> bool,
{
    let threads = effective_threads(threads, jobs);
    if threads <= 1 {
        for i in 0..jobs {
            if !sink(i, work(i)) {
                return;
            }
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Small bound: workers wait rather than pile up results behind a slow job.
        let (tx, rx) = mpsc::sync_channel::<(usize, R)>(threads * 2);
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, work) = (&next, &stop, &work);
            scope.spawn(move || {
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        return;
                    }
                    if tx.send((i, work(i))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0usize;
        'recv: for (i, r) in rx.iter() {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                if !sink(want, r) {
                    stop.store(true, Ordering::Relaxed);
                    break 'recv;
                }
                want += 1;
            }
        }
        // Dropping the receiver (here, before the scope joins the workers) makes their
        // pending sends fail, so they stop.
        drop(rx);
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn results_in_input_order_on_any_thread_count() {
        for threads in [0, 1, 2, 3, 8] {
            let mut got = Vec::new();
            for_each_ordered(
                100,
                threads,
                |i| {
                    // Uneven job lengths, so workers finish out of order.
                    std::thread::sleep(std::time::Duration::from_micros(
                        ((i * 37) % 7) as u64 * 50,
                    ));
                    i * 2
                },
                |i, r| {
                    got.push((i, r));
                    true
                },
            );
            let want: Vec<(usize, usize)> = (0..100).map(|i| (i, i * 2)).collect();
            assert_eq!(got, want, "threads {threads}");
        }
    }

    #[test]
    fn stops_when_the_sink_says_so() {
        let started = AtomicUsize::new(0);
        let mut got = Vec::new();
        for_each_ordered(
            10_000,
            4,
            |i| {
                started.fetch_add(1, Ordering::Relaxed);
                i
            },
            |i, _| {
                got.push(i);
                i < 9
            },
        );
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert!(started.load(Ordering::Relaxed) < 10_000);
    }

    #[test]
    fn no_jobs() {
        for_each_ordered(0, 4, |i| i, |_, _| panic!("no job"));
        assert_eq!(effective_threads(0, 0), 1);
        assert_eq!(effective_threads(5, 3), 3);
    }
}
