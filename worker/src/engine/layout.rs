//! What a level trains: the neurons that can matter, and for every weight matrix whether it
//! runs dense (dfdx's matrix product under the mask) or sparse (only its kept weights).
//!
//! A hidden neuron that reaches no output through kept weights cannot change the loss, and
//! neither can any weight into or out of it (docs/PROTOCOL.md: inactive): such neurons are left
//! out, so their weights get no gradient and keep their initial values, exactly as training
//! the full masked network would leave them (their gradient there is exactly zero). Inputs and
//! outputs are always kept. Zombie neurons (reaching an output but no input) stay: they pass
//! relu(bias) on.
//!
//! Thin matrices (the output layer, of one row a problem, and the first layer, of two columns
//! a problem) train sparse at any density; the others below a density threshold.
//!
//! The choice of path is a function of the masks alone, and the masks of a level are a
//! function of the task's settings, so a task takes the same path on every machine, run and
//! thread count.

use crate::prune::BoolMasks;

/// Weight matrices whose kept share (after leaving out neurons that cannot matter) is below
/// this train sparse. Chosen by measurement (`worker bench --densities 0.6,0.5,0.46,0.4,0.35
/// --path dense|sparse`), where it matters most: the widest matrices, two tasks training at
/// once as `coordinator run` does on two cores. At width 1310 the paths tie at 40% there
/// (sparse 30% faster at 35%, dense 10-25% faster at 46%); one task alone ties at 50%, and
/// width 410 is faster sparse up to 60% (its activations stay in cache). See
/// docs/performance.md.
pub const SPARSE_BELOW: f64 = 0.4;

/// Weight matrices with at most this many rows (the output layer: one row per problem) train
/// sparse whatever their density: a matrix product of so few rows costs gemm's fixed overhead
/// per call, the sparse kernels only their multiply-adds. Measured as one layer of 410 inputs
/// and batch 64, forward and backward (`cargo run -p worker --example rows`): sparse is
/// 25-30% faster at 2 and 4 rows, even at 8, 20-40% slower from 16. Inside a run of sparse
/// layers it saves more (the activations it reads stay out of dfdx).
pub const SPARSE_ROWS: usize = 4;

/// Weight matrices with at most this many columns (the first layer: two inputs a problem)
/// train sparse whatever their density. As dfdx's matrix product such a layer costs the
/// matrix product's and dfdx's fixed overheads over a `[rows, batch]` output; sparse, four
/// multiply-adds a row, and it joins the run of sparse layers after it. Measured as one layer
/// of 410 rows through a ReLU, batch 64, forward and backward (`cargo run -p worker --example
/// rows`): sparse is 4-5x faster at 2 to 8 columns and still 2.3x at 32.
pub const SPARSE_COLS: usize = 4;

/// A level whose dense matrices hold at least this many weights (kept or not) gains from more
/// than one thread; below it a second thread costs more in synchronisation than it saves.
/// Measured with `worker bench --threads 1|2 --widths 104,229,337,498,733,1310 --densities
/// 1,0.3,0.1` on the 2-core machine (docs/performance.md, "Threads per task"): dense width 337
/// (115,591 weights) is 6% slower on two threads, 498 (250,992) 20% faster, 1310 1.5x.
pub const THREADS_PAY_DENSE_FROM: usize = 200_000;

/// A level whose sparse matrices keep at least this many weights gains from more than one
/// thread (the same measurement: 35,149 kept at width 337 ties, 55,488 at width 733 is 17%
/// faster, 25,995 at 498 13% slower, 5,794 at 229 44% slower).
pub const THREADS_PAY_SPARSE_FROM: usize = 50_000;

/// How one weight matrix trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The compacted `[rows, cols]` matrix as one dense dfdx tensor; pruned entries stay zero.
    Dense,
    /// Only the kept weights, as a vector of values over a fixed sparse structure.
    Sparse,
}

/// One weight matrix of the compacted network.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerPlan {
    /// Kept neurons of the layer this matrix reads (indices into the full layer).
    pub cols: Vec<usize>,
    /// Kept neurons of the layer this matrix writes.
    pub rows: Vec<usize>,
    /// Kept weights between kept neurons.
    pub kept: usize,
    pub path: Path,
}

impl LayerPlan {
    /// Kept weights over the compacted matrix's size (0 for an empty matrix).
    pub fn density(&self) -> f64 {
        let size = self.rows.len() * self.cols.len();
        if size == 0 {
            0.0
        } else {
            self.kept as f64 / size as f64
        }
    }
}

/// The compacted network of one level.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub layers: Vec<LayerPlan>,
}

impl Plan {
    /// The plan for `masks` (one per weight matrix, `[fan_out, fan_in]` row-major) of an MLP
    /// of layer widths `shape`, with the density threshold of this engine.
    pub fn new(shape: &[usize], masks: &BoolMasks) -> Plan {
        Plan::with_threshold(shape, masks, SPARSE_BELOW)
    }

    /// As [`Plan::new`] with another density threshold (`0.0`: always dense, even the
    /// matrices of at most [`SPARSE_ROWS`] rows or [`SPARSE_COLS`] columns; above `1.0`:
    /// always sparse), for tests and benchmarks.
    pub fn with_threshold(shape: &[usize], masks: &BoolMasks, sparse_below: f64) -> Plan {
        let live = live_neurons(shape, masks);
        let layers = (0..masks.len())
            .map(|l| {
                let (fan_in, mask) = (shape[l], &masks[l]);
                let cols: Vec<usize> = (0..fan_in).filter(|&i| live[l][i]).collect();
                let rows: Vec<usize> = (0..shape[l + 1]).filter(|&o| live[l + 1][o]).collect();
                let kept = rows
                    .iter()
                    .map(|&o| cols.iter().filter(|&&i| mask[o * fan_in + i]).count())
                    .sum();
                let mut plan = LayerPlan {
                    cols,
                    rows,
                    kept,
                    path: Path::Dense,
                };
                let thin = plan.rows.len() <= SPARSE_ROWS || plan.cols.len() <= SPARSE_COLS;
                if kept == 0 || (thin && sparse_below > 0.0) || plan.density() < sparse_below {
                    plan.path = Path::Sparse;
                }
                plan
            })
            .collect();
        Plan { layers }
    }

    /// Multiply-adds per sample of one forward pass over the kept weights.
    pub fn kept_weights(&self) -> usize {
        self.layers.iter().map(|l| l.kept).sum()
    }

    /// Whether training this level on more than one thread pays ([`THREADS_PAY_DENSE_FROM`],
    /// [`THREADS_PAY_SPARSE_FROM`]): the weights of its dense matrices, or the kept weights of
    /// its sparse ones, reach their threshold.
    pub fn threads_pay(&self) -> bool {
        let (mut dense, mut sparse) = (0, 0);
        for l in &self.layers {
            match l.path {
                Path::Dense => dense += l.rows.len() * l.cols.len(),
                Path::Sparse => sparse += l.kept,
            }
        }
        dense >= THREADS_PAY_DENSE_FROM || sparse >= THREADS_PAY_SPARSE_FROM
    }
}

/// `live[l][j]`: neuron `j` of layer `l` is trained. Inputs and outputs always are; a hidden
/// neuron is when a kept weight leads from it to a trained neuron of the next layer.
pub fn live_neurons(shape: &[usize], masks: &BoolMasks) -> Vec<Vec<bool>> {
    let depth = shape.len();
    let mut live: Vec<Vec<bool>> = shape.iter().map(|&w| vec![false; w]).collect();
    live[0].fill(true);
    live[depth - 1].fill(true);
    for l in (1..depth - 1).rev() {
        let (fan_in, fan_out) = (shape[l], shape[l + 1]);
        let mask = &masks[l];
        for o in 0..fan_out {
            if !live[l + 1][o] {
                continue;
            }
            let row = &mask[o * fan_in..(o + 1) * fan_in];
            for (i, &keep) in row.iter().enumerate() {
                if keep {
                    live[l][i] = true;
                }
            }
        }
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coordinators_cost_model_knows_where_layers_turn_sparse() {
        assert_eq!(SPARSE_BELOW, shared::cost::DENSE_FROM);
    }

    #[test]
    fn neurons_without_a_path_to_an_output_are_left_out() {
        // 2 inputs, 3 hidden, 1 output. Hidden 1 reaches the output; hidden 0 only has an
        // input weight; hidden 2 reaches the output with no input (a zombie).
        let shape = [2, 3, 1];
        let masks = vec![
            vec![true, true, false, true, false, false], // [3, 2]
            vec![false, true, true],                     // [1, 3]
        ];
        let live = live_neurons(&shape, &masks);
        assert_eq!(live[1], vec![false, true, true]);
        let plan = Plan::with_threshold(&shape, &masks, 0.0);
        assert_eq!(plan.layers[0].rows, vec![1, 2]);
        assert_eq!(plan.layers[0].cols, vec![0, 1]);
        assert_eq!(plan.layers[0].kept, 1);
        assert_eq!(plan.layers[1].cols, vec![1, 2]);
        assert_eq!(plan.layers[1].kept, 2);
        assert_eq!(plan.kept_weights(), 3);
        assert_eq!(plan.layers[1].path, Path::Dense);
    }

    #[test]
    fn the_path_follows_the_density_of_the_compacted_matrix() {
        let shape = [6, 5, 5];
        let mut masks = vec![vec![true; 30], vec![true; 25]];
        let plan = Plan::with_threshold(&shape, &masks, 0.5);
        assert!(plan.layers.iter().all(|l| l.path == Path::Dense));
        masks[0] = vec![false; 30];
        masks[0][0] = true;
        let plan = Plan::with_threshold(&shape, &masks, 0.5);
        assert_eq!(plan.layers[0].path, Path::Sparse);
        assert_eq!(plan.layers[1].path, Path::Dense);
        // Always dense means always.
        let plan = Plan::with_threshold(&shape, &masks, 0.0);
        assert!(plan.layers.iter().all(|l| l.path == Path::Dense));
        // Nothing reaches the output: every hidden neuron is left out.
        let plan = Plan::with_threshold(&shape, &vec![vec![true; 30], vec![false; 25]], 0.5);
        assert!(plan.layers[0].rows.is_empty());
        assert_eq!(plan.layers[1].path, Path::Sparse);
    }

    #[test]
    fn thin_matrices_are_sparse_at_any_density() {
        // The thesis's networks: four inputs and two outputs, every weight kept. The first
        // layer (four columns) and the output layer (two rows) are thin.
        let shape = [4, 6, 6, 2];
        let masks = vec![vec![true; 24], vec![true; 36], vec![true; 12]];
        let plan = Plan::new(&shape, &masks);
        let paths: Vec<Path> = plan.layers.iter().map(|l| l.path).collect();
        assert_eq!(paths, vec![Path::Sparse, Path::Dense, Path::Sparse]);
        assert_eq!(plan.layers[0].density(), 1.0);
        assert_eq!(plan.layers[2].density(), 1.0);
        // Five rows and five columns are enough for the dense path again.
        let shape = [5, 6, 5];
        let plan = Plan::new(&shape, &vec![vec![true; 30], vec![true; 30]]);
        assert_eq!(plan.layers[0].path, Path::Dense);
        assert_eq!(plan.layers[1].path, Path::Dense);
        // Always dense means always, thin or not.
        let plan = Plan::with_threshold(&[4, 6, 6, 2], &masks, 0.0);
        assert!(plan.layers.iter().all(|l| l.path == Path::Dense));
    }
}
