//! Pruning of weights (never biases) to an exact remaining count: by magnitude (the protocol)
//! or at random positions (the random-pruning control).
//!
//! Global scope ranks every kept weight of every matrix by magnitude and removes the smallest;
//! layer-wise scope shares the removals among the matrices in proportion to what each keeps
//! (largest remainder, so the total is exact) and ranks within each matrix. Ties are broken by
//! (layer, flat index), so pruning is a deterministic function of the weights.
//!
//! Random pruning ([`prune_random`]) removes the same number of weights, globally uniformly
//! among all kept weights or, layer-wise, each matrix's same share uniformly among its kept
//! weights; it is a deterministic function of the masks and the random stream it is given.

use rand::Rng;
use shared::graph::LayerMask;
use shared::spec::Scope;

/// Masks as booleans, one vector per weight matrix in `[fan_out, fan_in]` row-major order.
pub type BoolMasks = Vec<Vec<bool>>;

/// Every weight kept.
pub fn dense(shape: &[usize]) -> BoolMasks {
    shape.windows(2).map(|w| vec![true; w[0] * w[1]]).collect()
}

/// Number of kept weights.
pub fn kept(masks: &[Vec<bool>]) -> usize {
    masks.iter().map(|m| m.iter().filter(|&&k| k).count()).sum()
}

/// Removes exactly `remove` of the kept weights with the smallest magnitude.
///
/// Panics if `remove` exceeds the kept count (a schedule bug, checked by the caller).
pub fn prune(weights: &[Vec<f32>], masks: &mut [Vec<bool>], remove: usize, scope: Scope) {
    if remove == 0 {
        return;
    }
    match scope {
        Scope::Global => {
            let cut = Cut::find(remove, |visit| {
                for (w, m) in weights.iter().zip(masks.iter()) {
                    kept_keys(w, m, &mut *visit);
                }
            });
            let mut ties = cut.ties;
            for (w, m) in weights.iter().zip(masks.iter_mut()) {
                cut.apply(w, m, &mut ties);
            }
        }
        Scope::Layerwise => {
            let per_layer: Vec<usize> = masks
                .iter()
                .map(|m| kept(std::slice::from_ref(m)))
                .collect();
            let shares = share(&per_layer, remove);
            for ((w, m), &share) in weights.iter().zip(masks.iter_mut()).zip(&shares) {
                if share == 0 {
                    continue;
                }
                let cut = Cut::find(share, |visit| kept_keys(w, m, visit));
                let mut ties = cut.ties;
                cut.apply(w, m, &mut ties);
            }
        }
    }
}

/// Removes exactly `remove` of the kept weights at random positions, without looking at the
/// weights: under global scope a uniformly random subset of all kept weights (only the total
/// is fixed), under layer-wise scope each matrix's [`share`] (the counts magnitude pruning
/// removes there) as a uniformly random subset of its kept weights.
///
/// Panics if `remove` exceeds the kept count (a schedule bug, checked by the caller).
pub fn prune_random(masks: &mut [Vec<bool>], remove: usize, scope: Scope, rng: &mut impl Rng) {
    match scope {
        Scope::Global => {
            let total = kept(masks);
            remove_uniformly(masks.iter_mut(), total, remove, rng);
        }
        Scope::Layerwise => {
            let per_layer: Vec<usize> = masks
                .iter()
                .map(|m| kept(std::slice::from_ref(m)))
                .collect();
            let shares = share(&per_layer, remove);
            for ((m, &share), &total) in masks.iter_mut().zip(&shares).zip(&per_layer) {
                remove_uniformly(std::iter::once(m), total, share, rng);
            }
        }
    }
}

/// Clears `remove` of the `total` kept entries of `masks`, a uniformly random subset, by
/// selection sampling (Knuth's algorithm S): one pass in (layer, index) order, each kept
/// entry removed with probability (still to remove) / (still to see), drawn as an integer so
/// the count is exact. Allocates nothing.
fn remove_uniformly<'a>(
    masks: impl Iterator<Item = &'a mut Vec<bool>>,
    total: usize,
    remove: usize,
    rng: &mut impl Rng,
) {
    assert!(remove <= total, "cannot remove {remove} of {total} weights");
    let (mut seen, mut removed) = (0usize, 0usize);
    for m in masks {
        for keep in m.iter_mut().filter(|k| **k) {
            if removed == remove {
                return;
            }
            let left = (total - seen) as u64;
            if rng.gen_range(0..left) < (remove - removed) as u64 {
                *keep = false;
                removed += 1;
            }
            seen += 1;
        }
    }
    assert_eq!(removed, remove, "the masks keep fewer than {total} weights");
}

/// The order pruning ranks a weight by: its magnitude's bits. For a non-negative float
/// (and `abs` clears the sign, of a NaN too) the bits as an integer order exactly as
/// [`f32::total_cmp`] orders the values.
fn key(w: f32) -> u32 {
    w.abs().to_bits()
}

/// Calls `visit` with the key of every kept weight of one matrix, in index order.
fn kept_keys(w: &[f32], m: &[bool], visit: &mut dyn FnMut(u32)) {
    for (&w, &keep) in w.iter().zip(m) {
        if keep {
            visit(key(w));
        }
    }
}

/// Where the `k` smallest kept weights by (magnitude, layer, index) end: every kept weight
/// whose key is below `key`, and the first `ties` of those whose key equals it, in (layer,
/// index) order. Found by a radix selection over the keys' two 16-bit halves, two passes over
/// the weights with a histogram of 2^16 counts, so that pruning a network allocates nothing
/// the size of the network (sorting candidates took 12 bytes a weight, 20.7 MB at width 1310,
/// at the moment of a level's end when the most is in memory).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cut {
    key: u32,
    ties: usize,
}

impl Cut {
    /// `keys` calls its argument with every candidate key, the same ones on every call.
    fn find(k: usize, keys: impl Fn(&mut dyn FnMut(u32))) -> Cut {
        let mut counts = vec![0usize; 1 << 16];
        let mut total = 0usize;
        keys(&mut |key| {
            counts[(key >> 16) as usize] += 1;
            total += 1;
        });
        assert!(k <= total, "cannot remove {k} of {total} weights");
        let (high, below_high) = bucket_of(&counts, k);
        counts.fill(0);
        keys(&mut |key| {
            if key >> 16 == high {
                counts[(key & 0xffff) as usize] += 1;
            }
        });
        let (low, below_low) = bucket_of(&counts, k - below_high);
        Cut {
            key: (high << 16) | low,
            ties: k - below_high - below_low,
        }
    }

    /// Prunes one matrix's share of the cut; `ties` counts down over the matrices in order.
    fn apply(&self, w: &[f32], m: &mut [bool], ties: &mut usize) {
        for (&w, keep) in w.iter().zip(m.iter_mut()) {
            if !*keep {
                continue;
            }
            let key = key(w);
            if key < self.key {
                *keep = false;
            } else if key == self.key && *ties > 0 {
                *keep = false;
                *ties -= 1;
            }
        }
    }
}

/// The bucket that holds the `k`-th smallest (1-based) of the counted keys, and how many keys
/// lie in the buckets below it.
fn bucket_of(counts: &[usize], k: usize) -> (u32, usize) {
    let mut below = 0;
    for (bucket, &count) in counts.iter().enumerate() {
        if below + count >= k {
            return (bucket as u32, below);
        }
        below += count;
    }
    unreachable!("k is at most the number of keys counted")
}

/// Splits `remove` over layers in proportion to their kept counts (largest remainder).
fn share(kept: &[usize], remove: usize) -> Vec<usize> {
    let total: usize = kept.iter().sum();
    let mut shares: Vec<usize> = kept.iter().map(|&k| k * remove / total).collect();
    let mut rest = remove - shares.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..kept.len()).collect();
    // Largest fractional part first; ties to the earlier layer.
    order.sort_by_key(|&l| std::cmp::Reverse((kept[l] * remove) % total));
    for &l in order.iter().cycle() {
        if rest == 0 {
            break;
        }
        if shares[l] < kept[l] {
            shares[l] += 1;
            rest -= 1;
        }
    }
    shares
}

/// The boolean masks as the exchange format (sorted flat indices of kept weights).
pub fn to_layer_masks(shape: &[usize], masks: &[Vec<bool>]) -> Vec<LayerMask> {
    shape
        .windows(2)
        .zip(masks)
        .map(|(s, m)| LayerMask {
            fan_in: s[0],
            fan_out: s[1],
            kept: {
                // Sized once: growing it would pass through sizes never asked for again.
                let mut indices = Vec::with_capacity(kept(std::slice::from_ref(m)));
                indices.extend(
                    m.iter()
                        .enumerate()
                        .filter(|(_, &k)| k)
                        .map(|(j, _)| j as u32),
                );
                indices
            },
        })
        .collect()
}

/// The exchange format back to boolean masks; `None` if a mask does not fit `shape`.
pub fn from_layer_masks(shape: &[usize], masks: &[LayerMask]) -> Option<BoolMasks> {
    if masks.len() + 1 != shape.len() {
        return None;
    }
    let mut out = Vec::with_capacity(masks.len());
    for (s, m) in shape.windows(2).zip(masks) {
        if m.fan_in != s[0] || m.fan_out != s[1] {
            return None;
        }
        let mut bits = vec![false; s[0] * s[1]];
        for &j in &m.kept {
            *bits.get_mut(j as usize)? = true;
        }
        out.push(bits);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_removes_smallest_over_all_layers() {
        let weights = vec![vec![0.5, -0.1, 0.3, 0.9], vec![-0.2, 0.05]];
        let mut masks = vec![vec![true; 4], vec![true; 2]];
        prune(&weights, &mut masks, 3, Scope::Global);
        assert_eq!(
            masks,
            vec![vec![true, false, true, true], vec![false, false]]
        );
    }

    #[test]
    fn global_ignores_already_pruned_weights() {
        let weights = vec![vec![0.0, 0.4, 0.3, 0.9]];
        let mut masks = vec![vec![false, true, true, true]];
        prune(&weights, &mut masks, 1, Scope::Global);
        assert_eq!(masks, vec![vec![false, true, false, true]]);
    }

    #[test]
    fn layerwise_removes_proportionally() {
        let weights = vec![(0..8).map(|i| i as f32).collect(), vec![3.0, 1.0, 2.0, 0.5]];
        let mut masks = vec![vec![true; 8], vec![true; 4]];
        prune(&weights, &mut masks, 6, Scope::Layerwise);
        assert_eq!(kept(&masks[..1]), 4);
        assert_eq!(kept(&masks[1..]), 2);
        assert_eq!(masks[1], vec![true, false, true, false]);
    }

    #[test]
    fn ties_break_by_layer_then_index() {
        let weights = vec![vec![1.0, 1.0, 1.0], vec![1.0]];
        let mut masks = vec![vec![true; 3], vec![true]];
        prune(&weights, &mut masks, 2, Scope::Global);
        assert_eq!(masks, vec![vec![false, false, true], vec![true]]);
    }

    /// The definition, by sorting: the `remove` smallest kept weights by (magnitude, layer,
    /// index), globally or within each layer's share.
    fn reference(weights: &[Vec<f32>], masks: &mut [Vec<bool>], remove: usize, scope: Scope) {
        let ranked = |layers: &[usize], k: usize, masks: &mut [Vec<bool>]| {
            let mut c: Vec<(f32, usize, usize)> = layers
                .iter()
                .flat_map(|&l| {
                    let m = &masks[l];
                    weights[l]
                        .iter()
                        .enumerate()
                        .filter(move |(j, _)| m[*j])
                        .map(move |(j, w)| (w.abs(), l, j))
                })
                .collect();
            c.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            for &(_, l, j) in &c[..k] {
                masks[l][j] = false;
            }
        };
        let layers: Vec<usize> = (0..masks.len()).collect();
        match scope {
            Scope::Global => ranked(&layers, remove, masks),
            Scope::Layerwise => {
                let per_layer: Vec<usize> = masks
                    .iter()
                    .map(|m| kept(std::slice::from_ref(m)))
                    .collect();
                for (l, k) in share(&per_layer, remove).into_iter().enumerate() {
                    ranked(&[l], k, masks);
                }
            }
        }
    }

    #[test]
    fn pruning_removes_what_sorting_would_remove() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for case in 0..300 {
            let layers = rng.gen_range(1..4);
            let weights: Vec<Vec<f32>> = (0..layers)
                .map(|_| {
                    let n = rng.gen_range(1..200);
                    (0..n)
                        .map(|_| match rng.gen_range(0..8) {
                            // Ties, zeros of both signs, equal magnitudes of both signs,
                            // values that share their high 16 bits, and the odd ones out.
                            0 => 0.25,
                            1 => -0.25,
                            2 => {
                                if rng.gen() {
                                    0.0
                                } else {
                                    -0.0
                                }
                            }
                            3 => f32::from_bits(0x3e80_0000 | rng.gen_range(0..4u32)),
                            4 => [f32::INFINITY, f32::NAN, -f32::NAN, f32::MIN_POSITIVE]
                                [rng.gen_range(0..4)],
                            _ => rng.gen_range(-2.0f32..2.0),
                        })
                        .collect()
                })
                .collect();
            let masks: Vec<Vec<bool>> = weights
                .iter()
                .map(|w| w.iter().map(|_| rng.gen_bool(0.8)).collect())
                .collect();
            let total = kept(&masks);
            let remove = rng.gen_range(0..=total);
            for scope in [Scope::Global, Scope::Layerwise] {
                let (mut ours, mut sorted) = (masks.clone(), masks.clone());
                prune(&weights, &mut ours, remove, scope);
                reference(&weights, &mut sorted, remove, scope);
                assert_eq!(
                    ours, sorted,
                    "case {case}, {scope:?}, removing {remove} of {total}"
                );
                assert_eq!(kept(&ours), total - remove);
            }
        }
    }

    #[test]
    #[should_panic(expected = "cannot remove 3 of 2 weights")]
    fn removing_more_than_is_kept_is_a_bug() {
        let mut masks = vec![vec![true, false, true]];
        prune(&[vec![1.0, 2.0, 3.0]], &mut masks, 3, Scope::Global);
    }

    fn random_masks(rng: &mut rand_chacha::ChaCha8Rng) -> Vec<Vec<bool>> {
        use rand::Rng;
        (0..rng.gen_range(1..4))
            .map(|_| {
                let n = rng.gen_range(1..200);
                (0..n).map(|_| rng.gen_bool(0.7)).collect()
            })
            .collect()
    }

    #[test]
    fn random_pruning_keeps_exact_counts_and_prunes_only_kept_weights() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for case in 0..300 {
            let masks = random_masks(&mut rng);
            let total = kept(&masks);
            let remove = rng.gen_range(0..=total);
            for scope in [Scope::Global, Scope::Layerwise] {
                let mut ours = masks.clone();
                prune_random(&mut ours, remove, scope, &mut rng);
                assert_eq!(kept(&ours), total - remove, "case {case}, {scope:?}");
                // Only kept weights go: nothing pruned comes back.
                for (before, after) in masks.iter().zip(&ours) {
                    assert!(before.iter().zip(after).all(|(&b, &a)| b || !a));
                }
                if scope == Scope::Layerwise {
                    // Per layer, exactly the counts magnitude pruning removes there.
                    let weights: Vec<Vec<f32>> = masks
                        .iter()
                        .map(|m| (0..m.len()).map(|j| j as f32).collect())
                        .collect();
                    let mut by_magnitude = masks.clone();
                    prune(&weights, &mut by_magnitude, remove, scope);
                    for (a, b) in ours.iter().zip(&by_magnitude) {
                        assert_eq!(kept(std::slice::from_ref(a)), kept(std::slice::from_ref(b)));
                    }
                }
            }
        }
    }

    #[test]
    fn random_pruning_is_seeded_and_uniform() {
        use rand::SeedableRng;
        let draw = |seed: u64, scope: Scope| {
            let mut masks = vec![vec![true; 6], vec![true; 2]];
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            prune_random(&mut masks, 4, scope, &mut rng);
            masks
        };
        assert_eq!(draw(3, Scope::Global), draw(3, Scope::Global));
        assert_ne!(draw(3, Scope::Global), draw(4, Scope::Global));
        // Global: every weight is removed with probability 4/8, the small layer too (only the
        // total is fixed; magnitude-proportional shares would take exactly 1 of its 2).
        let draws = 4000;
        let mut removed = [0usize; 8];
        let mut small_layer_counts = [0usize; 3];
        for seed in 0..draws {
            let masks = draw(seed, Scope::Global);
            for (j, &k) in masks.concat().iter().enumerate() {
                removed[j] += usize::from(!k);
            }
            small_layer_counts[masks[1].iter().filter(|&&k| !k).count()] += 1;
        }
        for (j, &r) in removed.iter().enumerate() {
            let p = r as f64 / draws as f64;
            assert!(
                (p - 0.5).abs() < 0.03,
                "weight {j} removed in {p} of the draws"
            );
        }
        // Hypergeometric: both of the small layer's kept with probability C(6,4)/C(8,4) = 15/70.
        let none = small_layer_counts[0] as f64 / draws as f64;
        assert!((none - 15.0 / 70.0).abs() < 0.03, "{none}");
        assert!(draw(3, Scope::Layerwise)
            .iter()
            .map(|m| m.iter().filter(|&&k| !k).count())
            .eq([3, 1]));
    }

    #[test]
    #[should_panic(expected = "cannot remove 3 of 2 weights")]
    fn removing_more_than_is_kept_at_random_is_a_bug() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        prune_random(&mut [vec![true, false, true]], 3, Scope::Global, &mut rng);
    }

    #[test]
    fn share_is_exact() {
        assert_eq!(share(&[10, 10, 10], 7).iter().sum::<usize>(), 7);
        assert_eq!(share(&[1, 0, 100], 101), vec![1, 0, 100]);
    }

    #[test]
    fn layer_masks_round_trip() {
        let shape = [3, 2, 1];
        let masks = vec![
            vec![true, false, true, false, false, true],
            vec![false, true],
        ];
        let exchanged = to_layer_masks(&shape, &masks);
        assert_eq!(exchanged[0].kept, vec![0, 2, 5]);
        assert_eq!(from_layer_masks(&shape, &exchanged), Some(masks));
        assert_eq!(from_layer_masks(&[3, 3, 1], &exchanged), None);
    }
}
