//! Merging the incoming and outgoing histories of an address without a full sort.

use std::iter::Peekable;

/// The union of two histories in key order, each key once: the same sequence as a stable sort
/// of `a` followed by `b`, deduplicated keeping the first of equal keys (a self-transfer is in
/// both histories; the incoming copy is kept). Both inputs normally come key-sorted (the
/// `FlowSource` contract), which makes this a linear merge without copying; an input that is
/// not sorted is stably sorted first, so the result does not depend on the contract holding.
pub(crate) fn merge_dedup<T, K, F>(mut a: Vec<T>, mut b: Vec<T>, key: F) -> MergeDedup<T, K, F>
where
    K: Ord + Copy,
    F: Fn(&T) -> K,
{
    if !a.is_sorted_by_key(&key) {
        a.sort_by_key(&key);
    }
    if !b.is_sorted_by_key(&key) {
        b.sort_by_key(&key);
    }
    MergeDedup {
        a: a.into_iter().peekable(),
        b: b.into_iter().peekable(),
        key,
        last: None,
    }
}

/// Iterator returned by [`merge_dedup`].
pub(crate) struct MergeDedup<T, K, F> {
    a: Peekable<std::vec::IntoIter<T>>,
    b: Peekable<std::vec::IntoIter<T>>,
    key: F,
    last: Option<K>,
}

impl<T, K, F> Iterator for MergeDedup<T, K, F>
where
    K: Ord + Copy,
    F: Fn(&T) -> K,
{
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            // Ties go to `a`, as in a stable sort of `a` followed by `b`.
            let take_a = match (self.a.peek(), self.b.peek()) {
                (Some(x), Some(y)) => (self.key)(x) <= (self.key)(y),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return None,
            };
            let next = if take_a { self.a.next() } else { self.b.next() }?;
            let k = (self.key)(&next);
            if self.last == Some(k) {
                continue;
            }
            self.last = Some(k);
            return Some(next);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (_, ha) = self.a.size_hint();
        let (_, hb) = self.b.size_hint();
        (0, ha.zip(hb).and_then(|(x, y)| x.checked_add(y)))
    }
}

#[cfg(test)]
mod tests {
    use super::merge_dedup;
    use proptest::prelude::*;

    /// The behaviour `Engine::expand` had before the merge: concatenate, stable sort, dedup.
    fn reference(a: &[(u8, u32)], b: &[(u8, u32)]) -> Vec<(u8, u32)> {
        let mut v = a.to_vec();
        v.extend_from_slice(b);
        v.sort_by_key(|x| x.0);
        v.dedup_by_key(|x| x.0);
        v
    }

    fn tagged(keys: Vec<u8>, base: u32) -> Vec<(u8, u32)> {
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| (k, base + u32::try_from(i).unwrap_or(u32::MAX)))
            .collect()
    }

    proptest! {
        /// Sorted inputs (the contract), with shared keys and duplicates: same sequence,
        /// including which copy of a duplicated key is kept.
        #[test]
        fn sorted_inputs_match_sort_and_dedup(
            mut a in proptest::collection::vec(0u8..40, 0..60),
            mut b in proptest::collection::vec(0u8..40, 0..60),
        ) {
            a.sort_unstable();
            b.sort_unstable();
            let (a, b) = (tagged(a, 0), tagged(b, 1000));
            let got: Vec<_> = merge_dedup(a.clone(), b.clone(), |x| x.0).collect();
            prop_assert_eq!(got, reference(&a, &b));
        }

        /// Unsorted inputs (a source breaking the contract) give the same result too.
        #[test]
        fn unsorted_inputs_match_sort_and_dedup(
            a in proptest::collection::vec(0u8..40, 0..60),
            b in proptest::collection::vec(0u8..40, 0..60),
        ) {
            let (a, b) = (tagged(a, 0), tagged(b, 1000));
            let got: Vec<_> = merge_dedup(a.clone(), b.clone(), |x| x.0).collect();
            prop_assert_eq!(got, reference(&a, &b));
        }
    }
}
