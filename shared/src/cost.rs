//! The expected cost of training, the one model the coordinator leases by: the task with the
//! most expected work left goes first, so that a sweep's widest tasks do not start last and
//! keep one core busy while the others idle.
//!
//! A level's cost, in dense weights trained per epoch, is what the engine's epoch costs: a
//! network at [`DENSE_FROM`] density or more trains dense (all of its weights, whatever was
//! pruned), a sparser one only its kept weights, each costing [`SPARSE_PER_WEIGHT`] dense
//! ones, and every epoch pays a fixed part that does not grow with the network
//! ([`FIXED_PER_EPOCH`]: the held-out pass, the batch loop, the optimiser's calls), which
//! dominates the smallest shapes.
//!
//! The two constants are fitted to engine 4's measured seconds (`python3 bench/cost_fit.py
//! LONG.csv` on the long export of experiment 1, 1,141 levels trained one thread a task):
//! 0.150 ms an epoch fixed, 136 ns a dense weight, 184 ns a sparse one. The model predicts a
//! level's seconds per epoch within 12% (median; 47% at the 90th percentile), where the one
//! constant it replaced (44,000, from an older engine's 3.6 ms fixed part) was 82% off. Epochs per level are taken as equal:
//! early stopping makes them vary from level to level, not systematically with the shape. The
//! units cancel in the ordering; measured seconds per unit turn them into time.

use crate::spec::TaskSpec;

/// The density from which the engine trains a weight matrix dense (`worker::engine::layout::
/// SPARSE_BELOW`; a worker test keeps the two equal).
pub const DENSE_FROM: f64 = 0.4;

/// The part of an epoch's time that does not grow with the weights, in dense weights: 0.150 ms
/// against 136 ns a weight (engine 4, fitted as the module says).
pub const FIXED_PER_EPOCH: f64 = 1_100.0;

/// What a weight of a sparse level costs, in dense weights (184 ns against 136 ns: the sparse
/// kernels do less work in all, but more per weight).
pub const SPARSE_PER_WEIGHT: f64 = 1.35;

/// The cost of one level of a network of `dense` weights with `remaining` kept.
pub fn level_cost(dense: usize, remaining: usize) -> f64 {
    let density = remaining as f64 / dense.max(1) as f64;
    let trained = if density >= DENSE_FROM {
        dense as f64
    } else {
        SPARSE_PER_WEIGHT * remaining as f64
    };
    FIXED_PER_EPOCH + trained
}

/// The cost of the levels of `spec` from `from_level` on (0 when all are done).
pub fn remaining_cost(spec: &TaskSpec, from_level: usize) -> f64 {
    let dense = spec.weights();
    spec.prune
        .remaining
        .iter()
        .skip(from_level)
        .map(|&r| level_cost(dense, r))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::Sweep;

    #[test]
    fn dense_levels_cost_the_whole_network_and_sparse_ones_their_weights() {
        let w = 1_000_000;
        assert_eq!(level_cost(w, w), FIXED_PER_EPOCH + 1e6);
        assert_eq!(level_cost(w, 400_000), FIXED_PER_EPOCH + 1e6);
        assert_eq!(
            level_cost(w, 399_999),
            FIXED_PER_EPOCH + SPARSE_PER_WEIGHT * 399_999.0
        );
        assert_eq!(level_cost(0, 0), FIXED_PER_EPOCH + 0.0);
    }

    #[test]
    fn wider_tasks_of_experiment_one_cost_more_and_progress_lowers_the_cost() {
        let sweep = Sweep::from_yaml("name: x\nseeds: 1\n", "x.yaml").unwrap();
        let tasks = sweep.expand().unwrap();
        let costs: Vec<f64> = tasks.iter().map(|t| remaining_cost(t, 0)).collect();
        assert!(costs.windows(2).all(|w| w[0] < w[1]), "{costs:?}");
        let widest = tasks.last().unwrap();
        assert!(remaining_cost(widest, 1) < remaining_cost(widest, 0));
        assert_eq!(remaining_cost(widest, widest.prune.levels + 1), 0.0);
        // The width-1310 task costs about as much as the 17 narrowest together, or more.
        let narrow: f64 = costs[..17].iter().sum();
        assert!(costs[25] > narrow, "{} against {narrow}", costs[25]);
    }
}
