//! Magnitude pruning of weights (never biases) to an exact remaining count.
//!
//! Global scope ranks every kept weight of every matrix by magnitude and removes the smallest;
//! layer-wise scope shares the removals among the matrices in proportion to what each keeps
//! (largest remainder, so the total is exact) and ranks within each matrix. Ties are broken by
//! (layer, flat index), so pruning is a deterministic function of the weights.

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
            let mut candidates: Vec<(f32, u32, u32)> = Vec::with_capacity(kept(masks));
            for (l, (w, m)) in weights.iter().zip(masks.iter()).enumerate() {
                for (j, (&w, &keep)) in w.iter().zip(m).enumerate() {
                    if keep {
                        candidates.push((w.abs(), l as u32, j as u32));
                    }
                }
            }
            for (_, l, j) in smallest(&mut candidates, remove) {
                masks[*l as usize][*j as usize] = false;
            }
        }
        Scope::Layerwise => {
            let per_layer: Vec<usize> = masks
                .iter()
                .map(|m| kept(std::slice::from_ref(m)))
                .collect();
            let shares = share(&per_layer, remove);
            for (l, (w, m)) in weights.iter().zip(masks.iter_mut()).enumerate() {
                let mut candidates: Vec<(f32, u32, u32)> = w
                    .iter()
                    .zip(m.iter())
                    .enumerate()
                    .filter(|(_, (_, &keep))| keep)
                    .map(|(j, (&w, _))| (w.abs(), l as u32, j as u32))
                    .collect();
                for (_, _, j) in smallest(&mut candidates, shares[l]) {
                    m[*j as usize] = false;
                }
            }
        }
    }
}

/// The `k` smallest candidates by (magnitude, layer, index).
fn smallest(candidates: &mut [(f32, u32, u32)], k: usize) -> &[(f32, u32, u32)] {
    assert!(
        k <= candidates.len(),
        "cannot remove {k} of {} weights",
        candidates.len()
    );
    let cmp = |a: &(f32, u32, u32), b: &(f32, u32, u32)| {
        a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
    };
    if k == 0 {
        return &candidates[..0];
    }
    if k < candidates.len() {
        candidates.select_nth_unstable_by(k - 1, cmp);
    }
    &candidates[..k]
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
            kept: m
                .iter()
                .enumerate()
                .filter(|(_, &k)| k)
                .map(|(j, _)| j as u32)
                .collect(),
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
