//! Pruning arithmetic: weight counts, the rate / levels / target triangle, the exact number of
//! weights remaining at every level, and the widths of the model-extension experiment.
//!
//! All functions are pure. Conventions (docs/PROTOCOL.md, "Iterative magnitude pruning"):
//!
//! - `W` is the number of weights (biases excluded) of the dense network, `p` the pruning rate
//!   (fraction of the *remaining* weights removed per level), `L` the number of pruning levels
//!   after the dense level 0, and `T` the target (weights left after the last level).
//! - Any two of `p`, `L`, `T` fix the third: `T = W (1-p)^L`, `p = 1 - (T/W)^(1/L)`,
//!   `L = round(ln(T/W) / ln(1-p))` ([`target_for`], [`rate_for`], [`levels_for`], and
//!   [`resolve`] for the checked version).
//! - The weights remaining after level `l` are `round(W (1-p)^l)`, and the last level leaves
//!   exactly `T` ([`remaining_counts`]).
//! - `L == 0` means the dense network is trained once and never pruned: the remaining counts are
//!   `[W]`, the target is `W` and the rate is reported as 0. (Poster experiment 3 sweeps the level
//!   count over `0..=20` with target 112; level count 0 is the unpruned network.)
//! - Model extension (the poster's main experiment): from a base shape with `m` hidden layers of
//!   equal width, extension level `i` is the shape whose weight count is closest to
//!   `W_base / (1-p)^i` ([`extension_width`], [`extension_shape`]); the thesis then prunes it
//!   through the weight counts of the smaller shapes of the same trajectory
//!   ([`trajectory_counts`]).

use thiserror::Error;

/// Most pruning levels (and extension levels) one task may have. One level is a full training
/// run, so this is far beyond any useful experiment; it exists to bound memory on bad input.
pub const MAX_LEVELS: usize = 1000;

/// Most weights one network may have (biases excluded). Larger shapes are rejected so that
/// weight counts never overflow and a typo cannot ask a worker for terabytes.
pub const MAX_WEIGHTS: usize = 1_000_000_000;

/// Why a pruning schedule or an extension shape cannot be computed. Messages are lowercase and
/// say what is allowed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScheduleError {
    /// The rate is not strictly between 0 and 1.
    #[error("{0} is outside (0, 1): the rate is the fraction of the remaining weights removed per level")]
    RateOutOfRange(f64),
    /// Rate, levels and target were all given.
    #[error("rate, levels and target are all given; give exactly two of them (T = W (1-p)^L fixes the third)")]
    AllThree,
    /// Fewer than two of rate, levels and target were given; `given` names those that were.
    #[error("{}; give two of rate, levels and target (T = W (1-p)^L fixes the third)", describe_given(.given))]
    TooFew { given: Vec<&'static str> },
    /// The target is zero.
    #[error("target 0 leaves no weights; the target must be at least 1")]
    TargetZero,
    /// The target exceeds the dense weight count.
    #[error("target {target} is larger than the network's {weights} weights; the target must be at most the weight count")]
    TargetTooLarge { target: usize, weights: usize },
    /// The network has no weights at all.
    #[error("the network has no weights")]
    NoWeights,
    /// `round(W (1-p)^L)` is zero.
    #[error("rate {rate} over {levels} levels leaves no weights of {weights} (round(W (1-p)^L) = 0); use fewer levels or a smaller rate")]
    NoWeightsLeft {
        rate: f64,
        levels: usize,
        weights: usize,
    },
    /// `round(ln(T/W) / ln(1-p))` is zero although the target is below the weight count.
    #[error("rate {rate} reaches target {target} of {weights} weights in 0 levels (ln(T/W) / ln(1-p) rounds to 0); use a larger rate or a smaller target")]
    ZeroLevels {
        rate: f64,
        target: usize,
        weights: usize,
    },
    /// More levels than [`MAX_LEVELS`].
    #[error("{levels} levels is more than the limit of {max}")]
    TooManyLevels { levels: usize, max: usize },
    /// A base shape whose hidden layers are not all of one width, or that has none.
    #[error("base shape {shape:?} must have at least one hidden layer, all of the same width")]
    UnequalHidden { shape: Vec<usize> },
    /// A shape (or an extension level) with more than [`MAX_WEIGHTS`] weights.
    #[error("{what} has more than the limit of {max} weights", max = MAX_WEIGHTS)]
    TooManyWeights { what: String },
}

fn describe_given(given: &[&'static str]) -> String {
    match given {
        [] => "none of rate, levels and target is given".to_string(),
        [one] => format!("only {one} is given"),
        more => format!("only {} are given", more.join(" and ")),
    }
}

/// Weights (biases excluded) of a network of layer widths `shape`.
///
/// Wraps on absurd shapes whose count overflows `usize`; use [`checked_weight_count`] for
/// untrusted input.
pub fn weight_count(shape: &[usize]) -> usize {
    shape.windows(2).map(|w| w[0] * w[1]).sum()
}

/// Weights (biases excluded) of `shape`, or `None` when the count overflows `usize`.
pub fn checked_weight_count(shape: &[usize]) -> Option<usize> {
    shape
        .windows(2)
        .try_fold(0usize, |acc, w| acc.checked_add(w[0].checked_mul(w[1])?))
}

/// `T = round(W (1-p)^L)`: the target reached from `weights` after `levels` levels at `rate`.
pub fn target_for(weights: usize, rate: f64, levels: usize) -> usize {
    count_at(weights, rate, levels)
}

/// `p = 1 - (T/W)^(1/L)`: the rate that takes `weights` to `target` in `levels` levels.
/// Returns 0 when `levels == 0` or `target >= weights`.
pub fn rate_for(weights: usize, levels: usize, target: usize) -> f64 {
    if levels == 0 || target >= weights || weights == 0 {
        return 0.0;
    }
    1.0 - (target as f64 / weights as f64).powf(1.0 / levels as f64)
}

/// `L = round(ln(T/W) / ln(1-p))`: the levels that take `weights` to `target` at `rate`.
/// Returns 0 when `target >= weights`, and saturates on degenerate input (rate outside (0, 1),
/// target 0); use [`resolve`] for checked input.
pub fn levels_for(weights: usize, rate: f64, target: usize) -> usize {
    if target >= weights || weights == 0 {
        return 0;
    }
    let x = (target as f64 / weights as f64).ln() / (1.0 - rate).ln();
    if x.is_finite() && x > 0.0 {
        // `as` saturates, so a huge x cannot wrap.
        x.round() as usize
    } else if x.is_nan() || x <= 0.0 {
        0
    } else {
        usize::MAX
    }
}

/// `round(W (1-p)^l)`.
fn count_at(weights: usize, rate: f64, level: usize) -> usize {
    let x = weights as f64 * (1.0 - rate).powf(level as f64);
    if x.is_finite() && x > 0.0 {
        x.round() as usize
    } else {
        0
    }
}

/// A resolved point of the rate / levels / target triangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolved {
    /// Fraction of the remaining weights removed per level; 0 when `levels == 0` or when
    /// `target == W` (every level keeps all weights).
    pub rate: f64,
    /// Pruning levels after the dense level 0.
    pub levels: usize,
    /// Weights left after the last level (`W` when `levels == 0`).
    pub target: usize,
}

/// Resolves two of (rate, levels, target) for a network of `weights` weights into all three.
///
/// Rules:
/// - exactly two must be given ([`ScheduleError::AllThree`], [`ScheduleError::TooFew`]);
/// - a given rate must lie in (0, 1); a given target in `1..=weights`; levels at most
///   [`MAX_LEVELS`];
/// - `levels == 0` resolves to dense training only: rate 0, target `weights`, whatever the
///   other value (a level count of 0 is the unpruned network);
/// - levels + target with `target == weights` is allowed and gives rate 0 (every level keeps
///   all weights, e.g. the base shape in poster experiment 2);
/// - rate + levels: `T = round(W (1-p)^L)` must be at least 1;
/// - rate + target: `L = round(ln(T/W) / ln(1-p))`; `target == weights` gives `L = 0`, while a
///   target below `weights` that rounds to 0 levels is an error.
pub fn resolve(
    weights: usize,
    rate: Option<f64>,
    levels: Option<usize>,
    target: Option<usize>,
) -> Result<Resolved, ScheduleError> {
    let mut given = Vec::new();
    if rate.is_some() {
        given.push("rate");
    }
    if levels.is_some() {
        given.push("levels");
    }
    if target.is_some() {
        given.push("target");
    }
    match given.len() {
        3 => return Err(ScheduleError::AllThree),
        0 | 1 => return Err(ScheduleError::TooFew { given }),
        _ => {}
    }
    if weights == 0 {
        return Err(ScheduleError::NoWeights);
    }
    if let Some(r) = rate {
        if !(r > 0.0 && r < 1.0) {
            return Err(ScheduleError::RateOutOfRange(r));
        }
    }
    if let Some(t) = target {
        if t == 0 {
            return Err(ScheduleError::TargetZero);
        }
        if t > weights {
            return Err(ScheduleError::TargetTooLarge { target: t, weights });
        }
    }
    if let Some(l) = levels {
        if l > MAX_LEVELS {
            return Err(ScheduleError::TooManyLevels {
                levels: l,
                max: MAX_LEVELS,
            });
        }
        if l == 0 {
            return Ok(Resolved {
                rate: 0.0,
                levels: 0,
                target: weights,
            });
        }
    }
    match (rate, levels, target) {
        (Some(rate), Some(levels), None) => {
            let target = target_for(weights, rate, levels);
            if target == 0 {
                return Err(ScheduleError::NoWeightsLeft {
                    rate,
                    levels,
                    weights,
                });
            }
            Ok(Resolved {
                rate,
                levels,
                target,
            })
        }
        (None, Some(levels), Some(target)) => Ok(Resolved {
            rate: rate_for(weights, levels, target),
            levels,
            target,
        }),
        (Some(rate), None, Some(target)) => {
            if target == weights {
                return Ok(Resolved {
                    rate: 0.0,
                    levels: 0,
                    target,
                });
            }
            let levels = levels_for(weights, rate, target);
            if levels == 0 {
                return Err(ScheduleError::ZeroLevels {
                    rate,
                    target,
                    weights,
                });
            }
            if levels > MAX_LEVELS {
                return Err(ScheduleError::TooManyLevels {
                    levels,
                    max: MAX_LEVELS,
                });
            }
            Ok(Resolved {
                rate,
                levels,
                target,
            })
        }
        _ => unreachable!("exactly two of rate, levels and target are given here"),
    }
}

/// Weights remaining at each level: `levels + 1` entries, `[0] == weights`,
/// `[l] == round(W (1-p)^l)` for `0 < l < levels`, and `[levels] == target` exactly.
///
/// `levels == 0` gives `[weights]` (dense training only; `target` is then ignored).
///
/// The counts never increase (each is clamped to `previous` and to at least `target`). With a
/// positive rate each level removes `W (1-p)^(l-1) p` weights before rounding; when that is below
/// one, rounding can make two consecutive counts equal: the exact formula is kept anyway, so such
/// a level prunes nothing. With rate 0 (target == weights) every level keeps all weights.
pub fn remaining_counts(weights: usize, rate: f64, levels: usize, target: usize) -> Vec<usize> {
    let mut counts = Vec::with_capacity(levels + 1);
    counts.push(weights);
    if levels == 0 {
        return counts;
    }
    let target = target.min(weights);
    let mut previous = weights;
    for level in 1..levels {
        let count = count_at(weights, rate, level).clamp(target, previous);
        counts.push(count);
        previous = count;
    }
    counts.push(target);
    counts
}

/// Validates a base shape for the extension experiment and returns
/// `(hidden width, hidden layers m, d_in + d_out)`.
fn base_parts(base: &[usize]) -> Result<(usize, usize, usize), ScheduleError> {
    let unequal = || ScheduleError::UnequalHidden {
        shape: base.to_vec(),
    };
    if base.len() < 3 {
        return Err(unequal());
    }
    let hidden = &base[1..base.len() - 1];
    let width = hidden[0];
    if width == 0 || hidden.iter().any(|&h| h != width) {
        return Err(unequal());
    }
    let io = base[0]
        .checked_add(base[base.len() - 1])
        .ok_or_else(unequal)?;
    Ok((width, hidden.len(), io))
}

fn too_many_weights(base: &[usize], level: usize) -> ScheduleError {
    ScheduleError::TooManyWeights {
        what: format!("extension level {level} of base {base:?}"),
    }
}

/// Hidden width of extension level `level` of `base` at `rate`: the `h` solving
/// `(m-1) h^2 + (d_in + d_out) h = W_base / (1-p)^level` (linear when `m == 1`), rounded to the
/// nearest integer. Level 0 gives the base width.
///
/// With base `[4, 8, 8, 2]` and rate 0.32, levels 0..=25 give
/// 8, 10, 13, 16, 20, 25, 31, 38, 47, 57, 70, 85, 104, 127, 154, 188, 229, 278, 337, 410, 498,
/// 604, 733, 890, 1080, 1310.
///
/// Errors: the base must have at least one hidden layer, all of one nonzero width; the rate must
/// lie in (0, 1); the extended network must have at most [`MAX_WEIGHTS`] weights.
pub fn extension_width(base: &[usize], rate: f64, level: usize) -> Result<usize, ScheduleError> {
    let (width, m, io) = base_parts(base)?;
    if !(rate > 0.0 && rate < 1.0) {
        return Err(ScheduleError::RateOutOfRange(rate));
    }
    if level == 0 {
        return Ok(width);
    }
    if level > MAX_LEVELS {
        return Err(too_many_weights(base, level));
    }
    let base_weights = checked_weight_count(base).ok_or_else(|| too_many_weights(base, 0))?;
    let wanted = base_weights as f64 / (1.0 - rate).powf(level as f64);
    if !wanted.is_finite() || wanted > MAX_WEIGHTS as f64 {
        return Err(too_many_weights(base, level));
    }
    let a = (m - 1) as f64;
    let b = io as f64;
    // Positive root of a h^2 + b h - wanted = 0, in the form that is stable and also covers
    // a == 0 (h = wanted / b).
    let h = 2.0 * wanted / (b + (b * b + 4.0 * a * wanted).sqrt());
    let h = h.round();
    if !h.is_finite() || h < 1.0 || h > MAX_WEIGHTS as f64 {
        return Err(too_many_weights(base, level));
    }
    Ok(h as usize)
}

/// Shape of extension level `level` of `base` at `rate`: the base's inputs and outputs, with
/// every hidden layer of width [`extension_width`]. Errors as [`extension_width`], and when the
/// shape has more than [`MAX_WEIGHTS`] weights.
pub fn extension_shape(
    base: &[usize],
    rate: f64,
    level: usize,
) -> Result<Vec<usize>, ScheduleError> {
    let width = extension_width(base, rate, level)?;
    let mut shape = base.to_vec();
    let last = shape.len() - 1;
    for h in &mut shape[1..last] {
        *h = width;
    }
    match checked_weight_count(&shape) {
        Some(w) if w <= MAX_WEIGHTS => Ok(shape),
        _ => Err(too_many_weights(base, level)),
    }
}

/// The thesis's trajectory schedule for extension level `level`: the weights remaining at each
/// pruning level are the weight counts of the extension shapes `level, level-1, ..., 0`, so each
/// level lands on the next smaller shape's count and the last on the base's count:
/// `[W(shape_level), W(shape_level-1), ..., W(shape_0) = W_base]` (`level + 1` entries).
///
/// The counts never increase (the widths grow with the level); at small rates two neighbouring
/// extension levels can round to the same width, and then that pruning level removes nothing.
pub fn trajectory_counts(
    base: &[usize],
    rate: f64,
    level: usize,
) -> Result<Vec<usize>, ScheduleError> {
    let mut counts = Vec::with_capacity(level + 1);
    for i in (0..=level).rev() {
        let shape = extension_shape(base, rate, i)?;
        let w = weight_count(&shape);
        // Widths are non-decreasing in the level; clamp anyway so counts never increase.
        let w = counts.last().map_or(w, |&prev: &usize| w.min(prev));
        counts.push(w);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POSTER_WIDTHS: [usize; 26] = [
        8, 10, 13, 16, 20, 25, 31, 38, 47, 57, 70, 85, 104, 127, 154, 188, 229, 278, 337, 410, 498,
        604, 733, 890, 1080, 1310,
    ];

    #[test]
    fn poster_widths_are_exact() {
        let widths: Vec<usize> = (0..=25)
            .map(|i| extension_width(&[4, 8, 8, 2], 0.32, i).unwrap())
            .collect();
        assert_eq!(widths, POSTER_WIDTHS);
        let shape = extension_shape(&[4, 8, 8, 2], 0.32, 25).unwrap();
        assert_eq!(shape, vec![4, 1310, 1310, 2]);
        assert_eq!(weight_count(&shape), 1_723_960);
    }

    #[test]
    fn other_bases_start_at_their_width() {
        assert_eq!(extension_width(&[4, 20, 2], 0.32, 0).unwrap(), 20);
        assert_eq!(extension_width(&[4, 4, 4, 4, 2], 0.32, 0).unwrap(), 4);
        // One hidden layer: linear, 6 h = 120 / 0.68.
        assert_eq!(
            extension_width(&[4, 20, 2], 0.32, 1).unwrap(),
            (120.0f64 / 0.68 / 6.0).round() as usize
        );
        // Every level's weight count is the closest to W_base / (1-p)^i among its neighbours.
        for base in [&[4usize, 20, 2][..], &[4, 4, 4, 4, 2], &[4, 8, 8, 2]] {
            for i in 0..=20 {
                let shape = extension_shape(base, 0.32, i).unwrap();
                let h = shape[1];
                let wanted = weight_count(base) as f64 / 0.68f64.powi(i as i32);
                let err = |h: usize| {
                    let mut s = shape.clone();
                    let n = s.len() - 1;
                    s[1..n].iter_mut().for_each(|x| *x = h);
                    (weight_count(&s) as f64 - wanted).abs()
                };
                assert!(err(h) <= err(h + 1) && err(h) <= err(h - 1), "{base:?} {i}");
            }
        }
    }

    #[test]
    fn extension_errors() {
        assert!(matches!(
            extension_width(&[4, 8, 9, 2], 0.32, 1),
            Err(ScheduleError::UnequalHidden { .. })
        ));
        assert!(matches!(
            extension_width(&[4, 2], 0.32, 1),
            Err(ScheduleError::UnequalHidden { .. })
        ));
        assert!(matches!(
            extension_width(&[4, 8, 8, 2], 1.0, 1),
            Err(ScheduleError::RateOutOfRange(_))
        ));
        assert!(matches!(
            extension_width(&[4, 8, 8, 2], 0.32, 200),
            Err(ScheduleError::TooManyWeights { .. })
        ));
        assert!(matches!(
            extension_shape(&[4, 8, 8, 2], 0.32, usize::MAX),
            Err(ScheduleError::TooManyWeights { .. })
        ));
    }

    #[test]
    fn trajectory_lands_on_smaller_shapes() {
        let counts = trajectory_counts(&[4, 8, 8, 2], 0.32, 25).unwrap();
        assert_eq!(counts.len(), 26);
        assert_eq!(counts[0], 1_723_960);
        assert_eq!(*counts.last().unwrap(), 112);
        for (j, &c) in counts.iter().enumerate() {
            let h = POSTER_WIDTHS[25 - j];
            assert_eq!(c, h * h + 6 * h);
        }
        assert!(counts.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(
            trajectory_counts(&[4, 8, 8, 2], 0.32, 0).unwrap(),
            vec![112]
        );
        assert_eq!(
            trajectory_counts(&[4, 8, 8, 2], 0.32, 2).unwrap(),
            vec![13 * 13 + 78, 160, 112]
        );
    }

    #[test]
    fn arithmetic_both_ways() {
        let w = 170_560; // [4, 410, 410, 2]
        assert_eq!(weight_count(&[4, 410, 410, 2]), w);
        let p = rate_for(w, 20, 112);
        assert_eq!(target_for(w, p, 20), 112);
        assert_eq!(levels_for(w, p, 112), 20);
        assert!((rate_for(112 * 100, 2, 112) - 0.9).abs() < 1e-12);
        assert_eq!(target_for(1000, 0.5, 3), 125);
        assert_eq!(levels_for(1000, 0.5, 125), 3);
        assert_eq!(levels_for(1000, 0.5, 130), 3);
    }

    #[test]
    fn resolve_all_ways() {
        let r = resolve(1000, Some(0.5), Some(3), None).unwrap();
        assert_eq!((r.levels, r.target), (3, 125));
        let r = resolve(1000, None, Some(3), Some(125)).unwrap();
        assert!((r.rate - 0.5).abs() < 1e-12);
        let r = resolve(1000, Some(0.5), None, Some(125)).unwrap();
        assert_eq!(r.levels, 3);
        // Dense only.
        let r = resolve(170_560, None, Some(0), Some(112)).unwrap();
        assert_eq!(
            r,
            Resolved {
                rate: 0.0,
                levels: 0,
                target: 170_560
            }
        );
        assert_eq!(
            remaining_counts(170_560, r.rate, r.levels, r.target),
            vec![170_560]
        );
        // target == W with levels: rate 0, nothing pruned.
        let r = resolve(112, None, Some(20), Some(112)).unwrap();
        assert_eq!(r.rate, 0.0);
        assert_eq!(
            remaining_counts(112, r.rate, r.levels, r.target),
            vec![112; 21]
        );
        // rate + target == W: dense.
        assert_eq!(resolve(112, Some(0.32), None, Some(112)).unwrap().levels, 0);
    }

    #[test]
    fn resolve_errors() {
        use ScheduleError::*;
        assert_eq!(resolve(100, Some(0.3), Some(2), Some(4)), Err(AllThree));
        assert_eq!(
            resolve(100, Some(0.3), None, None),
            Err(TooFew {
                given: vec!["rate"]
            })
        );
        assert_eq!(
            resolve(100, None, None, None),
            Err(TooFew { given: vec![] })
        );
        assert_eq!(
            resolve(100, Some(1.5), Some(2), None),
            Err(RateOutOfRange(1.5))
        );
        assert_eq!(
            resolve(100, Some(0.0), Some(2), None),
            Err(RateOutOfRange(0.0))
        );
        assert!(matches!(
            resolve(100, Some(f64::NAN), Some(2), None),
            Err(RateOutOfRange(_))
        ));
        assert_eq!(
            resolve(100, None, Some(2), Some(101)),
            Err(TargetTooLarge {
                target: 101,
                weights: 100
            })
        );
        assert_eq!(resolve(100, None, Some(2), Some(0)), Err(TargetZero));
        assert!(matches!(
            resolve(100, Some(0.9), Some(20), None),
            Err(NoWeightsLeft { .. })
        ));
        assert!(matches!(
            resolve(100, Some(0.5), None, Some(90)),
            Err(ZeroLevels { .. })
        ));
        assert!(matches!(
            resolve(100, None, Some(MAX_LEVELS + 1), Some(1)),
            Err(TooManyLevels { .. })
        ));
        assert!(matches!(
            resolve(1_000_000_000, Some(1e-9), None, Some(1)),
            Err(TooManyLevels { .. })
        ));
        let msg = resolve(100, Some(0.3), None, None).unwrap_err().to_string();
        assert!(msg.starts_with("only rate is given; give two"), "{msg}");
        assert!(RateOutOfRange(1.5)
            .to_string()
            .starts_with("1.5 is outside (0, 1)"));
    }

    #[test]
    fn remaining_counts_are_exact() {
        let w = weight_count(&[4, 410, 410, 2]);
        for levels in 1..=20 {
            let r = resolve(w, None, Some(levels), Some(112)).unwrap();
            let c = remaining_counts(w, r.rate, r.levels, r.target);
            assert_eq!(c.len(), levels + 1);
            assert_eq!(c[0], w);
            assert_eq!(c[levels], 112);
            assert!(c.windows(2).all(|x| x[0] > x[1]), "{levels}: {c:?}");
            for (l, &n) in c.iter().enumerate().take(levels) {
                assert_eq!(
                    n,
                    (w as f64 * (1.0 - r.rate).powi(l as i32)).round() as usize
                );
            }
        }
        assert_eq!(
            remaining_counts(1000, 0.5, 3, 125),
            vec![1000, 500, 250, 125]
        );
        // Rounding ties at tiny rates: equal neighbours allowed, never increasing.
        let c = remaining_counts(10, 0.01, 5, 10 - 1);
        assert!(c.windows(2).all(|x| x[0] >= x[1]), "{c:?}");
        assert_eq!(c, vec![10, 10, 10, 10, 10, 9]);
    }

    #[test]
    fn checked_count_overflows_to_none() {
        assert_eq!(checked_weight_count(&[4, 8, 8, 2]), Some(112));
        assert_eq!(checked_weight_count(&[usize::MAX, 2]), None);
    }
}
