//! Union-find (disjoint sets) over dense `u32` ids, with path halving and union by size.

/// Disjoint sets over the ids `0..len()`.
///
/// `find` uses path halving (a form of path compression) and `union` links the smaller set
/// under the larger, so a sequence of `m` operations on `n` ids costs `O(m α(n))`. Each id's
/// parent and set size sit next to each other (`[parent, size]`, size meaningful at roots), so
/// a union touches one cache line per root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnionFind {
    nodes: Vec<[u32; 2]>,
}

impl UnionFind {
    /// An empty structure.
    pub fn new() -> Self {
        Self::default()
    }

    /// `n` singleton sets.
    pub fn with_len(n: u32) -> Self {
        Self {
            nodes: (0..n).map(|i| [i, 1]).collect(),
        }
    }

    /// Rebuilds the structure from stored `[parent, size]` entries. Ids whose parent is out of
    /// range are made their own roots, so a damaged array cannot loop.
    pub fn from_nodes(mut nodes: Vec<[u32; 2]>) -> Self {
        let n = nodes.len();
        for (i, e) in nodes.iter_mut().enumerate() {
            if (e[0] as usize) >= n {
                e[0] = u32::try_from(i).unwrap_or(u32::MAX);
            }
        }
        Self { nodes }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Adds a singleton set and returns its id, or `None` when the `u32` id space is full.
    pub fn push(&mut self) -> Option<u32> {
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&i| i < u32::MAX)?;
        self.nodes.push([id, 1]);
        Some(id)
    }

    /// The representative of `x`'s set (compressing the path on the way).
    ///
    /// `x` must be `< len()`; an out-of-range id is its own representative.
    pub fn find(&mut self, mut x: u32) -> u32 {
        loop {
            let Some(&[p, _]) = self.nodes.get(x as usize) else {
                return x;
            };
            if p == x {
                return x;
            }
            let gp = self.nodes[p as usize][0];
            self.nodes[x as usize][0] = gp;
            x = gp;
        }
    }

    /// The representative of `x`'s set without modifying the structure.
    pub fn find_const(&self, mut x: u32) -> u32 {
        while let Some(&[p, _]) = self.nodes.get(x as usize) {
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
        self.nodes.get(r as usize).map_or(1, |e| e[1])
    }

    /// Joins the sets of `a` and `b`. Returns `(root, absorbed_root)` when they were apart, or
    /// `None` when they already were one set.
    pub fn union(&mut self, a: u32, b: u32) -> Option<(u32, u32)> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb || ra as usize >= self.len() || rb as usize >= self.len() {
            return None;
        }
        let (sa, sb) = (self.nodes[ra as usize][1], self.nodes[rb as usize][1]);
        let (big, small) = if sa >= sb { (ra, rb) } else { (rb, ra) };
        self.nodes[small as usize][0] = big;
        self.nodes[big as usize][1] = sa.saturating_add(sb);
        Some((big, small))
    }

    /// Points every id directly at its representative (so that the stored array answers
    /// `cluster_of` with one read).
    pub fn compress_all(&mut self) {
        for i in 0..self.nodes.len() {
            let p = self.nodes[i][0];
            let r = self.find(p);
            self.nodes[i][0] = r;
        }
    }

    /// The `[parent, size]` entries, by id.
    pub fn nodes(&self) -> &[[u32; 2]] {
        &self.nodes
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
            uf.nodes()
                .iter()
                .enumerate()
                .all(|(i, &[p, _])| i == 3 || i == 4 || p == r)
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
