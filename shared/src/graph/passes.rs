//! The passes over a ticket's masks that every classification shares: which neurons are fed
//! (reached from an input) and useful (reaching an output), and the connected components of
//! the active weights. [`super::analyze`] counts with them; [`super::ticket`] keeps the
//! per-neuron and per-weight detail. Linear in the kept weights plus the neurons.

use super::LayerMask;

/// Fed and useful neurons of a network, by flat neuron id (`offsets[l] + i` for neuron `i` of
/// layer `l`).
pub(super) struct Passes {
    /// `offsets[l]`: the id of the first neuron of layer `l`; the last entry is the count.
    pub offsets: Vec<usize>,
    pub fed: Vec<bool>,
    pub useful: Vec<bool>,
}

/// The kept weights and neurons that are active or zombie.
pub(super) struct ActiveCounts {
    pub active_weights: usize,
    pub zombie_weights: usize,
    pub active_neurons: usize,
    pub zombie_neurons: usize,
}

/// The component of every active neuron, numbered by smallest neuron id.
pub(super) struct Labels {
    dsu: Dsu,
    label: Vec<u32>,
    fed_useful: Vec<bool>,
    pub count: usize,
}

const NONE: u32 = u32::MAX;

impl Labels {
    /// The component of neuron `x`, if it is active.
    pub fn of(&self, x: usize) -> Option<usize> {
        self.fed_useful[x].then(|| self.label[self.dsu.root(x)] as usize)
    }
}

impl Passes {
    /// The two sweeps over non-empty `masks` whose consecutive widths agree.
    ///
    /// # Panics
    /// If consecutive masks disagree on a layer width or there are more than 2^32 neurons.
    pub fn new(masks: &[LayerMask]) -> Passes {
        let mut offsets = Vec::with_capacity(masks.len() + 2);
        offsets.push(0usize);
        offsets.push(masks[0].fan_in);
        for (l, m) in masks.iter().enumerate() {
            if l > 0 {
                assert_eq!(
                    m.fan_in,
                    masks[l - 1].fan_out,
                    "layer {l}: fan_in differs from the fan_out of layer {}",
                    l - 1
                );
            }
            offsets.push(offsets[l + 1] + m.fan_out);
        }
        let n = *offsets.last().expect("offsets are not empty");
        assert!(n <= u32::MAX as usize, "too many neurons for 32-bit ids");
        let n_in = masks[0].fan_in;
        let out_start = offsets[masks.len()];

        // Fed: forward sweep. A row stops at its first fed source.
        let mut fed = vec![false; n];
        fed[..n_in].fill(true);
        for (l, m) in masks.iter().enumerate() {
            let (lo, hi) = fed.split_at_mut(offsets[l + 1]);
            let src = &lo[offsets[l]..];
            let dst = &mut hi[..m.fan_out];
            for_each_row(m, |o, base, row| {
                dst[o] = row.iter().any(|&k| src[k as usize - base]);
            });
        }

        // Useful: backward sweep. Rows into useless neurons are skipped, and so is the rest of
        // a layer once all its neurons are known to be useful.
        let mut useful = vec![false; n];
        useful[out_start..].fill(true);
        for (l, m) in masks.iter().enumerate().rev() {
            let (lo, hi) = useful.split_at_mut(offsets[l + 1]);
            let src = &mut lo[offsets[l]..];
            let dst = &hi[..m.fan_out];
            let mut unset = m.fan_in;
            for_each_row(m, |o, base, row| {
                if dst[o] && unset > 0 {
                    for &k in row {
                        let s = &mut src[k as usize - base];
                        unset -= usize::from(!*s);
                        *s = true;
                    }
                }
            });
        }
        Passes {
            offsets,
            fed,
            useful,
        }
    }

    /// Number of neurons.
    pub fn neurons(&self) -> usize {
        *self.offsets.last().expect("offsets are not empty")
    }

    /// Neuron `x` is active (fed and useful).
    pub fn active(&self, x: usize) -> bool {
        self.fed[x] && self.useful[x]
    }

    /// The union of the active weights: their components, numbered by smallest neuron id, and
    /// the counts of active and zombie weights and neurons.
    pub fn components(&self, masks: &[LayerMask]) -> (Labels, ActiveCounts) {
        let n = self.neurons();
        let (fed, useful, offsets) = (&self.fed, &self.useful, &self.offsets);
        let mut dsu = Dsu::new(n);
        let (mut active_weights, mut zombie_weights) = (0usize, 0usize);
        for (l, m) in masks.iter().enumerate() {
            let (src_off, dst_off) = (offsets[l], offsets[l + 1]);
            let src_fed = &fed[src_off..dst_off];
            for_each_row(m, |o, base, row| {
                let v = dst_off + o;
                if !useful[v] {
                    return; // inactive weights: counted by difference
                }
                let mut rv = dsu.find(v);
                for &k in row {
                    let i = k as usize - base;
                    if !src_fed[i] {
                        zombie_weights += 1;
                        continue;
                    }
                    active_weights += 1;
                    let u = src_off + i;
                    if dsu.parent[u] as usize == rv {
                        continue;
                    }
                    let ru = dsu.find(u);
                    if ru != rv {
                        rv = dsu.link(ru, rv);
                    }
                }
            });
        }

        // Neurons, and component numbers in (layer, index) order.
        let mut label = vec![NONE; n];
        let mut count = 0usize;
        let (mut active_neurons, mut zombie_neurons) = (0usize, 0usize);
        for x in 0..n {
            if !useful[x] {
                continue;
            }
            if !fed[x] {
                zombie_neurons += 1;
                continue;
            }
            active_neurons += 1;
            let r = dsu.find(x);
            if label[r] == NONE {
                label[r] = count as u32;
                count += 1;
            }
        }
        let fed_useful = (0..n).map(|x| self.active(x)).collect();
        let labels = Labels {
            dsu,
            label,
            fed_useful,
            count,
        };
        let counts = ActiveCounts {
            active_weights,
            zombie_weights,
            active_neurons,
            zombie_neurons,
        };
        (labels, counts)
    }
}

/// Calls `f(o, base, row)` for every non-empty row of `mask`: `row` holds the kept indices of
/// the weights into neuron `o` of the next layer, `base = o * fan_in`, so weight `k` of the row
/// comes from neuron `k - base`. Needs the sorted indices of a valid mask. Each row boundary is
/// found by galloping, so the cost is logarithmic in the row's length.
#[inline(always)]
pub(super) fn for_each_row(mask: &LayerMask, mut f: impl FnMut(usize, usize, &[u32])) {
    let kept = &mask.kept[..];
    let fan_in = mask.fan_in;
    debug_assert!(
        kept.windows(2).all(|w| w[0] < w[1]),
        "kept indices must be sorted"
    );
    let mut start = 0;
    while start < kept.len() {
        let o = kept[start] as usize / fan_in;
        let base = o * fan_in;
        let end_value = base + fan_in;
        let in_row = |k: &u32| (*k as usize) < end_value;
        // Gallop: the row ends somewhere in (start + step / 2, start + step].
        let rest = &kept[start..];
        let mut step = 1;
        while step < rest.len() && in_row(&rest[step]) {
            step *= 2;
        }
        let lo = step / 2 + 1;
        let hi = step.min(rest.len());
        let len = if lo >= hi {
            hi
        } else {
            lo + rest[lo..hi].partition_point(in_row)
        };
        f(o, base, &rest[..len]);
        start += len;
    }
}

/// Union-find over neuron ids: union by size, path halving.
struct Dsu {
    parent: Vec<u32>,
    size: Vec<u32>,
}

impl Dsu {
    fn new(n: usize) -> Self {
        Dsu {
            parent: (0..n as u32).collect(),
            size: vec![1; n],
        }
    }

    #[inline(always)]
    fn find(&mut self, mut x: usize) -> usize {
        loop {
            let p = self.parent[x] as usize;
            if p == x {
                return x;
            }
            let g = self.parent[p];
            self.parent[x] = g;
            x = g as usize;
        }
    }

    /// The root of `x` without shortening paths (union by size keeps them logarithmic).
    fn root(&self, mut x: usize) -> usize {
        while self.parent[x] as usize != x {
            x = self.parent[x] as usize;
        }
        x
    }

    /// Joins the sets of roots `a` and `b` (distinct) and returns the new root.
    #[inline(always)]
    fn link(&mut self, a: usize, b: usize) -> usize {
        let (big, small) = if self.size[a] >= self.size[b] {
            (a, b)
        } else {
            (b, a)
        };
        self.parent[small] = big as u32;
        self.size[big] += self.size[small];
        big
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(m: &LayerMask) -> Vec<(usize, Vec<usize>)> {
        let mut got = Vec::new();
        for_each_row(m, |o, base, row| {
            got.push((o, row.iter().map(|&k| k as usize - base).collect()))
        });
        got
    }

    #[test]
    fn for_each_row_splits_rows() {
        let m = LayerMask {
            fan_in: 3,
            fan_out: 4,
            kept: vec![0, 2, 7, 8, 9],
        };
        assert_eq!(
            rows(&m),
            vec![(0, vec![0, 2]), (2, vec![1, 2]), (3, vec![0])]
        );
        assert_eq!(rows(&LayerMask::dense(1, 3)).len(), 3);
        // Rows of every length, to exercise the galloping bounds.
        for fan_in in 1..40 {
            let m = LayerMask::dense(fan_in, 3);
            let r = rows(&m);
            assert_eq!(r.len(), 3);
            for (o, (ro, row)) in r.iter().enumerate() {
                assert_eq!(*ro, o);
                assert_eq!(*row, (0..fan_in).collect::<Vec<_>>());
            }
            let m = LayerMask {
                fan_in,
                fan_out: 2,
                kept: (0..fan_in as u32)
                    .step_by(2)
                    .chain([fan_in as u32 + 1])
                    .filter(|&k| (k as usize) < 2 * fan_in)
                    .collect(),
            };
            let r = rows(&m);
            assert_eq!(r[0].1, (0..fan_in).step_by(2).collect::<Vec<_>>());
        }
        assert!(rows(&LayerMask {
            fan_in: 2,
            fan_out: 2,
            kept: vec![]
        })
        .is_empty());
    }

    #[test]
    fn dsu_joins() {
        let mut d = Dsu::new(5);
        let r = d.link(0, 1);
        let r3 = d.find(3);
        let r2 = d.link(r3, r);
        assert_eq!(d.find(3), r2);
        assert_eq!(d.find(0), d.find(1));
        assert_ne!(d.find(4), d.find(0));
    }
}
