//! The random-mask baseline: would any mask this sparse split too?
//!
//! For a network of layer widths `shape` and a stored level that keeps `kept[l]` weights of
//! weight matrix `l`, the baseline is the probability that a mask drawn uniformly at random
//! among all masks keeping exactly `kept[l]` weights of every matrix `l` (each matrix's kept
//! positions a uniform `kept[l]`-subset, independently of the other matrices) is split,
//! connected or degraded under [`crate::graph::analyze`] (docs/PROTOCOL.md, "The ticket as a
//! graph": the same active weights, components and task coverage as the ticket's own status).
//!
//! - [`estimate`]: Monte-Carlo over `draws` masks from a ChaCha8 stream seeded by [`seed`]
//!   (the task id and the level), so a level's estimate never changes between queries, and the
//!   first `d` draws of a longer estimate are those of an estimate of `d` draws. Each matrix's
//!   positions are drawn by Floyd's algorithm into a bit set (the smaller of the kept and the
//!   pruned sets is drawn), then read out in order, so a draw costs the matrix's weights / 64
//!   plus `min(kept, pruned)` random numbers, and the graph passes are linear in the kept
//!   weights. A mask with every matrix empty or full has one possible draw: it is analysed once.
//! - [`exact`]: every mask with the given counts enumerated, for tiny shapes (the oracle of the
//!   tests).
//!
//! What it measures: the probability for random masks at the ticket's per-layer counts, a
//! property of sparsity alone. What it does not: random masks that were trained (random
//! pruning, a separate control), nor nested random masks along a trajectory.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::graph::{self, LayerMask, Status, TaskIo};

/// The number of draws when nothing else is asked for.
pub const DEFAULT_DRAWS: usize = 1000;

/// How many random masks were split, connected and degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    pub draws: usize,
    pub split: usize,
    pub connected: usize,
    pub degraded: usize,
}

impl Counts {
    /// Adds one mask of `status`, `times` times.
    fn add(&mut self, status: Status, times: usize) {
        self.draws += times;
        match status {
            Status::Split => self.split += times,
            Status::Connected => self.connected += times,
            Status::Degraded => self.degraded += times,
        }
    }

    /// The fraction split (0 with no draws).
    pub fn split_fraction(&self) -> f64 {
        self.split as f64 / self.draws.max(1) as f64
    }
}

/// Why a baseline cannot be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BaselineError {
    #[error("shape {shape:?} has {expected} weight matrices but {got} kept counts were given")]
    LayerCount {
        shape: Vec<usize>,
        expected: usize,
        got: usize,
    },
    #[error("layer {layer}: {kept} weights kept but the layer has {weights}")]
    TooMany {
        layer: usize,
        kept: usize,
        weights: usize,
    },
    #[error("layer {layer}: {weights} weights do not fit 32-bit indices")]
    TooLarge { layer: usize, weights: usize },
    #[error("{masks:.0} masks are too many to enumerate (at most {limit})")]
    TooManyMasks { masks: f64, limit: usize },
}

/// The seed of a level's draws: SHA-256 of the task id and the level.
pub fn seed(task_id: &str, level: usize) -> [u8; 32] {
    let text = format!("random-mask baseline\0{task_id}\0{level}");
    Sha256::digest(text.as_bytes()).into()
}

/// The kept weights of each weight matrix of `masks`.
pub fn kept_per_layer(masks: &[LayerMask]) -> Vec<usize> {
    masks.iter().map(|m| m.kept.len()).collect()
}

/// The weight count of every matrix of `shape`, checked against `kept`.
fn layer_sizes(shape: &[usize], kept: &[usize]) -> Result<Vec<(usize, usize)>, BaselineError> {
    let layers: Vec<(usize, usize)> = shape.windows(2).map(|w| (w[0], w[1])).collect();
    if layers.len() != kept.len() {
        return Err(BaselineError::LayerCount {
            shape: shape.to_vec(),
            expected: layers.len(),
            got: kept.len(),
        });
    }
    for (layer, (&(fan_in, fan_out), &k)) in layers.iter().zip(kept).enumerate() {
        let weights = fan_in.saturating_mul(fan_out);
        if weights as u64 > u64::from(u32::MAX) + 1 {
            return Err(BaselineError::TooLarge { layer, weights });
        }
        if k > weights {
            return Err(BaselineError::TooMany {
                layer,
                kept: k,
                weights,
            });
        }
    }
    Ok(layers)
}

/// Monte-Carlo estimate over `draws` random masks with `kept[l]` weights in matrix `l`,
/// from the ChaCha8 stream of `seed` (see the module documentation).
pub fn estimate(
    shape: &[usize],
    kept: &[usize],
    tasks: &[TaskIo],
    draws: usize,
    seed: [u8; 32],
) -> Result<Counts, BaselineError> {
    let layers = layer_sizes(shape, kept)?;
    let mut masks: Vec<LayerMask> = layers
        .iter()
        .map(|&(fan_in, fan_out)| LayerMask {
            fan_in,
            fan_out,
            kept: Vec::new(),
        })
        .collect();
    let mut counts = Counts::default();
    if draws == 0 {
        return Ok(counts);
    }
    let fixed = layers
        .iter()
        .zip(kept)
        .all(|(&(i, o), &k)| k == 0 || k == i * o);
    let mut rng = ChaCha8Rng::from_seed(seed);
    let mut bits: Vec<u64> = Vec::new();
    let rounds = if fixed { 1 } else { draws };
    for _ in 0..rounds {
        for (mask, &k) in masks.iter_mut().zip(kept) {
            draw_layer(&mut rng, k, mask, &mut bits);
        }
        let status = graph::analyze(&masks, tasks).status;
        counts.add(status, if fixed { draws } else { 1 });
    }
    Ok(counts)
}

/// Draws `k` of the layer's positions uniformly into `mask.kept` (sorted), with `bits` as
/// scratch: Floyd's algorithm picks the smaller of the kept and the pruned sets.
fn draw_layer(rng: &mut ChaCha8Rng, k: usize, mask: &mut LayerMask, bits: &mut Vec<u64>) {
    let n = mask.fan_in * mask.fan_out;
    let pick = k.min(n - k);
    bits.clear();
    bits.resize(n.div_ceil(64), 0);
    for j in (n - pick)..n {
        let t = rng.gen_range(0..=j);
        let t = if bits[t / 64] >> (t % 64) & 1 == 1 {
            j
        } else {
            t
        };
        bits[t / 64] |= 1 << (t % 64);
    }
    let keep_set = pick == k;
    mask.kept.clear();
    mask.kept.reserve(k);
    for (w, &word) in bits.iter().enumerate() {
        let mut word = if keep_set { word } else { !word };
        if w == bits.len() - 1 && !n.is_multiple_of(64) {
            word &= (1u64 << (n % 64)) - 1;
        }
        while word != 0 {
            mask.kept.push((w * 64) as u32 + word.trailing_zeros());
            word &= word - 1;
        }
    }
}

/// The most masks [`exact`] enumerates.
pub const EXACT_LIMIT: usize = 10_000_000;

/// Every mask with `kept[l]` weights in matrix `l`, analysed: `draws` is their number.
pub fn exact(shape: &[usize], kept: &[usize], tasks: &[TaskIo]) -> Result<Counts, BaselineError> {
    let layers = layer_sizes(shape, kept)?;
    let masks: f64 = layers
        .iter()
        .zip(kept)
        .map(|(&(i, o), &k)| binomial(i * o, k))
        .product();
    if masks > EXACT_LIMIT as f64 {
        return Err(BaselineError::TooManyMasks {
            masks,
            limit: EXACT_LIMIT,
        });
    }
    let mut current: Vec<LayerMask> = Vec::with_capacity(layers.len());
    let mut counts = Counts::default();
    enumerate(&layers, kept, tasks, &mut current, &mut counts);
    Ok(counts)
}

fn binomial(n: usize, k: usize) -> f64 {
    (0..k).map(|j| (n - j) as f64 / (j + 1) as f64).product()
}

/// Fixes the masks of the matrices after `current` in every possible way.
fn enumerate(
    layers: &[(usize, usize)],
    kept: &[usize],
    tasks: &[TaskIo],
    current: &mut Vec<LayerMask>,
    counts: &mut Counts,
) {
    let l = current.len();
    if l == layers.len() {
        counts.add(graph::analyze(current, tasks).status, 1);
        return;
    }
    let (fan_in, fan_out) = layers[l];
    let n = (fan_in * fan_out) as u32;
    let mut subset: Vec<u32> = (0..kept[l] as u32).collect();
    loop {
        current.push(LayerMask {
            fan_in,
            fan_out,
            kept: subset.clone(),
        });
        enumerate(layers, kept, tasks, current, counts);
        current.pop();
        if !next_subset(&mut subset, n) {
            return;
        }
    }
}

/// The next sorted `subset.len()`-subset of `0..n` in lexicographic order; false after the last.
fn next_subset(subset: &mut [u32], n: u32) -> bool {
    let k = subset.len() as u32;
    let Some(i) = (0..subset.len())
        .rev()
        .find(|&i| subset[i] < n - k + i as u32)
    else {
        return false;
    };
    subset[i] += 1;
    for j in i + 1..subset.len() {
        subset[j] = subset[j - 1] + 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_keep_exact_counts_in_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut bits = Vec::new();
        for (fan_in, fan_out) in [(4, 2), (7, 19), (64, 3), (130, 1)] {
            let n = fan_in * fan_out;
            for k in [0, 1, n / 3, n / 2, n - 1, n] {
                let mut mask = LayerMask {
                    fan_in,
                    fan_out,
                    kept: Vec::new(),
                };
                draw_layer(&mut rng, k, &mut mask, &mut bits);
                assert_eq!(mask.kept.len(), k, "{fan_in}x{fan_out} keeping {k}");
                assert!(mask.kept.windows(2).all(|w| w[0] < w[1]));
                assert!(mask.kept.iter().all(|&i| (i as usize) < n));
            }
        }
    }

    #[test]
    fn subsets_are_all_enumerated() {
        let mut s = vec![0, 1];
        let mut seen = 1;
        while next_subset(&mut s, 5) {
            seen += 1;
        }
        assert_eq!((seen, s), (10, vec![3, 4]));
        let mut empty: Vec<u32> = Vec::new();
        assert!(!next_subset(&mut empty, 3));
    }

    #[test]
    fn bad_counts_are_refused() {
        let tasks = TaskIo::two_d_problems(2);
        let e = estimate(&[4, 2, 2], &[9, 1], &tasks, 10, [0; 32]).unwrap_err();
        assert_eq!(e.to_string(), "layer 0: 9 weights kept but the layer has 8");
        let e = estimate(&[4, 2, 2], &[1], &tasks, 10, [0; 32]).unwrap_err();
        assert!(matches!(e, BaselineError::LayerCount { .. }), "{e}");
    }
}
