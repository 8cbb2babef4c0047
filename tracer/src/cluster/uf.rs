//! Union-find (disjoint sets) over dense `u32` ids, with path halving and union by size.

/// Disjoint sets over the ids `0..len()`.
///
/// `find` uses path halving (a form of path compression) and `union` links the smaller set
/// under the larger, so a sequence of `m` operations on `n` ids costs `O(m α(n))`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnionFind {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl UnionFind {
    /// An empty structure.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` singleton sets.
    pub fn with_len(n: u32) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n as usize],
        }
    }

    /// Rebuilds the structure from stored parent and size arrays (of equal length). Ids whose
    /// parent is out of range are made their own roots, so a damaged array cannot loop.
    pub fn from_parts(mut parent: Vec<u32>, mut size: Vec<u32>) -> Self {
        size.resize(parent.len(), 1);
        let n = parent.len();
        for (i, p) in parent.iter_mut().enumerate() {
            if (*p as usize) >= n {
                *p = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
        Self { parent, size }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    /// Adds a singleton set and returns its id, or `None` when the `u32` id space is full.
    pub fn push(&mut self) -> Option<u32> {
        let id = u32::try_from(self.parent.len())
            .ok()
            .filter(|&i| i < u32::MAX)?;
        self.parent.push(id);
        self.size.push(1);
        Some(id)
    }

    /// The representative of `x`'s set (compressing the path on the way).
    ///
    /// `x` must be `< len()`; an out-of-range id is its own representative.
    pub fn find(&mut self, mut x: u32) -> u32 {
        loop {
            let Some(&p) = self.parent.get(x as usize) else {
                return x;
            };
            if p == x {
                return x;
            }
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
    }

    /// The representative of `x`'s set without modifying the structure.
    pub fn find_const(&self, mut x: u32) -> u32 {
        while let Some(&p) = self.parent.get(x as usize) {
            if p == x {
                break;
            }
            x = p;
        }
        x
    }

    /// Size of the set of `x`.
    pub fn set_size(&mut self, x: u32) -> u32 {
        let r = self.find(x);
        self.size.get(r as usize).copied().unwrap_or(1)
    }

    /// Joins the sets of `a` and `b`. Returns `(root, absorbed_root)` when they were apart, or
    /// `None` when they already were one set.
    pub fn union(&mut self, a: u32, b: u32) -> Option<(u32, u32)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb || ra as usize >= self.len() || rb as usize >= self.len() {
            return None;
        }
        let (big, small) = if self.size[ra as usize] >= self.size[rb as usize] {
            (ra, rb)
        } else {
            (rb, ra)
        };
        self.parent[small as usize] = big;
        self.size[big as usize] = self.size[big as usize].saturating_add(self.size[small as usize]);
        Some((big, small))
    }

    /// Points every id directly at its representative (so that the stored array answers
    /// `cluster_of` with one read).
    pub fn compress_all(&mut self) {
        for i in 0..self.parent.len() {
            let p = self.parent[i];
            // Parents always have lower or higher ids; two passes are not needed because
            // `find` returns the final root.
            let r = self.find(p);
            self.parent[i] = r;
        }
    }

    /// The parent array.
    pub fn parents(&self) -> &[u32] {
        &self.parent
    }

    /// The size array (meaningful at roots).
    pub fn sizes(&self) -> &[u32] {
        &self.size
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unions_and_sizes() {
        let mut uf = UnionFind::with_len(6);
        assert_eq!(uf.union(0, 1), Some((0, 1)));
        assert_eq!(uf.union(2, 1), Some((0, 2)));
        assert_eq!(uf.union(0, 2), None);
        assert_eq!(uf.set_size(2), 3);
        assert_eq!(uf.find(5), 5);
        assert_eq!(uf.push(), Some(6));
        uf.union(6, 5);
        uf.union(5, 1);
        assert_eq!(uf.set_size(6), 5);
        uf.compress_all();
        let r = uf.find_const(0);
        assert!(
            uf.parents()
                .iter()
                .enumerate()
                .all(|(i, &p)| i == 3 || i == 4 || p == r)
        );
    }

    proptest! {
        /// The partition equals that of a naive label-propagation reference.
        #[test]
        fn same_partition_as_naive(n in 1u32..60, pairs in proptest::collection::vec((0u32..60, 0u32..60), 0..120)) {
            let mut uf = UnionFind::with_len(n);
            let mut label: Vec<u32> = (0..n).collect();
            for (a, b) in pairs {
                let (a, b) = (a % n, b % n);
                uf.union(a, b);
                let (la, lb) = (label[a as usize], label[b as usize]);
                for l in &mut label {
                    if *l == lb { *l = la; }
                }
            }
            for i in 0..n {
                for j in 0..n {
                    prop_assert_eq!(uf.find_const(i) == uf.find_const(j), label[i as usize] == label[j as usize]);
                }
            }
            let r = uf.find(0);
            prop_assert_eq!(uf.set_size(0) as usize, label.iter().filter(|&&l| l == label[0]).count());
            prop_assert_eq!(uf.find_const(0), r);
        }
    }
}
