//! The expected cost of training, the one model the coordinator leases by: the task with the
//! most expected work left goes first, so that a sweep's widest tasks do not start last and
//! keep one core busy while the others idle.
//!
//! A level's cost, in weights trained per epoch, is what the engine's epoch costs: a matrix
//! at [`DENSE_FROM`] density or more trains dense (all of the network's weights, whatever was
//! pruned), a sparser one only its kept weights, and every epoch pays a fixed part that does
//! not grow with the network ([`FIXED_PER_EPOCH`]: the held-out pass, the batch loop, the
//! optimiser's calls), which dominates the smallest shapes. Epochs per level are taken as equal:
//! early stopping makes them vary from level to level, not systematically with the shape. The
//! units cancel in the ordering; measured seconds per unit turn them into time.

use crate::spec::TaskSpec;

/// The density from which the engine trains a weight matrix dense (`worker::engine::layout::
/// SPARSE_BELOW`; a worker test keeps the two equal).
pub const DENSE_FROM: f64 = 0.4;

/// The part of an epoch's time that does not grow with the weights, in weights: about 3.6 ms
/// an epoch at width 8 against 81 ns a weight at width 1310 (engine 4, README "Performance").
pub const FIXED_PER_EPOCH: f64 = 44_000.0;

/// The cost of one level of a network of `dense` weights with `remaining` kept.
pub fn level_cost(dense: usize, remaining: usize) -> f64 {
    let density = remaining as f64 / dense.max(1) as f64;
    let trained = if density >= DENSE_FROM {
        dense
    } else {
        remaining
    };
    FIXED_PER_EPOCH + trained as f64
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
        assert_eq!(level_cost(w, 399_999), FIXED_PER_EPOCH + 399_999.0);
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
