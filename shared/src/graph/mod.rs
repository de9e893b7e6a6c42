//! The ticket as a graph (docs/PROTOCOL.md, "The ticket as a graph").
//!
//! Nodes are neurons, layer 0 the inputs and the last layer the outputs; the directed edges are
//! the kept weights: flat index `o * fan_in + i` of matrix `l` goes from neuron `i` of layer `l`
//! to neuron `o` of layer `l + 1`. [`analyze`] works from the masks alone, for any depth and any
//! number of tasks, in time linear in the kept weights plus the neurons.
//!
//! - A neuron is *fed* if some input reaches it by a directed path (inputs are fed), *useful* if
//!   it reaches some output (outputs are useful).
//! - Weight `u -> v`: *active* if `u` is fed and `v` useful; *zombie* if `v` is useful but `u`
//!   not fed; *inactive* if `v` is not useful.
//! - Neuron: *active* if fed and useful, *zombie* if useful but not fed, *inactive* if not useful.
//!   All neurons are counted: inputs (fed, so active or inactive), hidden units and outputs
//!   (useful, so active or zombie).
//! - Components: the connected components of the active weights, edges taken as undirected, over
//!   the neurons they touch (exactly the active neurons). Every component holds at least one
//!   input and one output, so there are at most `min(inputs, outputs)` of them. They are numbered
//!   by their smallest `(layer, index)` neuron.

use serde::{Deserialize, Serialize};

mod passes;
pub mod ticket;

use passes::{ActiveCounts, Passes};
pub use ticket::{Class, Edge, Neuron, Ticket};

/// The kept weights of one weight matrix of shape `[fan_out, fan_in]`.
///
/// `kept` holds the sorted, distinct flat indices `o * fan_in + i` of the unpruned weights
/// (`o` the neuron of the next layer, `i` the neuron of this layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMask {
    pub fan_in: usize,
    pub fan_out: usize,
    pub kept: Vec<u32>,
}

impl LayerMask {
    /// Every weight kept: the dense level 0.
    pub fn dense(fan_in: usize, fan_out: usize) -> Self {
        LayerMask {
            fan_in,
            fan_out,
            kept: (0..(fan_in * fan_out) as u32).collect(),
        }
    }

    /// The dense masks of a network of layer widths `shape`, input layer first.
    pub fn dense_network(shape: &[usize]) -> Vec<LayerMask> {
        shape
            .windows(2)
            .map(|w| LayerMask::dense(w[0], w[1]))
            .collect()
    }
}

/// The input columns and output columns that belong to one problem (one "task" of the graph).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskIo {
    pub inputs: Vec<usize>,
    pub outputs: Vec<usize>,
}

impl TaskIo {
    /// `n` two-dimensional binary problems concatenated column-wise: problem `k` owns inputs
    /// `2k, 2k+1` and output `k`.
    pub fn two_d_problems(n: usize) -> Vec<TaskIo> {
        (0..n)
            .map(|k| TaskIo {
                inputs: vec![2 * k, 2 * k + 1],
                outputs: vec![k],
            })
            .collect()
    }
}

/// The status of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every task fully covered, one component per task.
    Split,
    /// Every task fully covered, but some component serves several tasks.
    Connected,
    /// Some input or output of a task is cut off, or there are more components than tasks.
    Degraded,
}

impl Status {
    /// The name in tables, exports and the database (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Split => "split",
            Status::Connected => "connected",
            Status::Degraded => "degraded",
        }
    }

    /// A status by its name.
    pub fn parse(name: &str) -> Option<Status> {
        [Status::Split, Status::Connected, Status::Degraded]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// What the masks alone say about a ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphReport {
    pub remaining_weights: usize,
    pub active_weights: usize,
    pub zombie_weights: usize,
    pub inactive_weights: usize,
    pub active_neurons: usize,
    pub zombie_neurons: usize,
    pub inactive_neurons: usize,
    /// Connected components of the active weights, edges taken as undirected.
    pub components: usize,
    /// `coverage[c][t]` = (inputs of t in c / inputs of t) * (outputs of t in c / outputs of t).
    pub coverage: Vec<Vec<f64>>,
    pub status: Status,
}

/// Why masks do not describe a network of a given shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    #[error("shape {shape:?} needs at least two layers")]
    ShapeTooShort { shape: Vec<usize> },
    #[error("shape has {expected} weight matrices but {got} masks were given")]
    LayerCount { expected: usize, got: usize },
    #[error(
        "layer {layer}: mask has fan_in {fan_in} and fan_out {fan_out}, the shape needs fan_in \
         {expected_fan_in} and fan_out {expected_fan_out}"
    )]
    Dimensions {
        layer: usize,
        fan_in: usize,
        fan_out: usize,
        expected_fan_in: usize,
        expected_fan_out: usize,
    },
    #[error("layer {layer}: {weights} weights do not fit 32-bit indices")]
    TooLarge { layer: usize, weights: usize },
    #[error(
        "layer {layer}: kept index {index} at position {position} is not greater than the \
         previous index {previous}"
    )]
    NotIncreasing {
        layer: usize,
        position: usize,
        index: u32,
        previous: u32,
    },
    #[error(
        "layer {layer}: kept index {index} at position {position} is out of range (the layer has \
         {weights} weights)"
    )]
    OutOfRange {
        layer: usize,
        position: usize,
        index: u32,
        weights: usize,
    },
}

/// Checks that `masks` fit a network of layer widths `shape`: one mask per weight matrix,
/// `fan_in`/`fan_out` equal to the widths, kept indices strictly increasing and below
/// `fan_in * fan_out`. Reports the first bad layer and, within it, the first bad index.
pub fn validate_masks(shape: &[usize], masks: &[LayerMask]) -> Result<(), MaskError> {
    if shape.len() < 2 {
        return Err(MaskError::ShapeTooShort {
            shape: shape.to_vec(),
        });
    }
    if masks.len() != shape.len() - 1 {
        return Err(MaskError::LayerCount {
            expected: shape.len() - 1,
            got: masks.len(),
        });
    }
    for (layer, (m, w)) in masks.iter().zip(shape.windows(2)).enumerate() {
        if m.fan_in != w[0] || m.fan_out != w[1] {
            return Err(MaskError::Dimensions {
                layer,
                fan_in: m.fan_in,
                fan_out: m.fan_out,
                expected_fan_in: w[0],
                expected_fan_out: w[1],
            });
        }
        let weights = m.fan_in.saturating_mul(m.fan_out);
        if weights as u64 > u64::from(u32::MAX) + 1 {
            return Err(MaskError::TooLarge { layer, weights });
        }
        let mut previous: Option<u32> = None;
        for (position, &index) in m.kept.iter().enumerate() {
            if let Some(previous) = previous.filter(|&p| index <= p) {
                return Err(MaskError::NotIncreasing {
                    layer,
                    position,
                    index,
                    previous,
                });
            }
            if index as usize >= weights {
                return Err(MaskError::OutOfRange {
                    layer,
                    position,
                    index,
                    weights,
                });
            }
            previous = Some(index);
        }
    }
    Ok(())
}

/// Analyses a ticket from its masks (see the module documentation for the definitions).
///
/// `masks[l]` is the mask of weight matrix `l` (input layer first); `tasks` give the input
/// columns (neurons of layer 0) and output columns (neurons of the last layer) of each problem.
///
/// - `coverage[c][t]` = (inputs of `t` in `c` / inputs of `t`) * (outputs of `t` in `c` /
///   outputs of `t`); a task with no inputs or no outputs has coverage 0 everywhere.
/// - Status: `Degraded` if some task has no component with coverage 1 or there are more
///   components than tasks; `Split` if there are exactly as many components as tasks and each
///   task is fully covered by a different component; `Connected` otherwise (every task fully
///   covered, some component serving several tasks). With the tasks of
///   [`TaskIo::two_d_problems`], which own every column, `Split` is simply
///   "components == tasks".
/// - Masks are expected to pass [`validate_masks`]; an empty `masks` gives an empty, degraded
///   report (`Split` if there are no tasks either).
///
/// # Panics
/// If consecutive masks disagree on a layer width, a kept index is out of range, or a task
/// names an input or output column that does not exist.
pub fn analyze(masks: &[LayerMask], tasks: &[TaskIo]) -> GraphReport {
    let remaining_weights: usize = masks.iter().map(|m| m.kept.len()).sum();
    if masks.is_empty() {
        return GraphReport {
            remaining_weights,
            active_weights: 0,
            zombie_weights: 0,
            inactive_weights: 0,
            active_neurons: 0,
            zombie_neurons: 0,
            inactive_neurons: 0,
            components: 0,
            coverage: Vec::new(),
            status: if tasks.is_empty() {
                Status::Split
            } else {
                Status::Degraded
            },
        };
    }

    let passes = Passes::new(masks);
    let (n, n_in) = (passes.neurons(), masks[0].fan_in);
    let out_start = passes.offsets[masks.len()];
    let n_out = n - out_start;
    let (labels, counts) = passes.components(masks);
    let ActiveCounts {
        active_weights,
        zombie_weights,
        active_neurons,
        zombie_neurons,
    } = counts;
    let inactive_weights = remaining_weights - active_weights - zombie_weights;
    let inactive_neurons = n - active_neurons - zombie_neurons;
    let component_of = |x: usize| labels.of(x);
    let components = labels.count;

    // Coverage, from counts so that "fully covered" is exact.
    let n_tasks = tasks.len();
    let mut coverage = vec![vec![0.0f64; n_tasks]; components];
    let mut full: Vec<Option<usize>> = vec![None; n_tasks];
    let mut in_count = vec![0usize; components];
    let mut out_count = vec![0usize; components];
    for (t, task) in tasks.iter().enumerate() {
        in_count.fill(0);
        out_count.fill(0);
        for &i in &task.inputs {
            assert!(
                i < n_in,
                "task {t}: input {i} does not exist ({n_in} inputs)"
            );
            if let Some(c) = component_of(i) {
                in_count[c] += 1;
            }
        }
        for &o in &task.outputs {
            assert!(
                o < n_out,
                "task {t}: output {o} does not exist ({n_out} outputs)"
            );
            if let Some(c) = component_of(out_start + o) {
                out_count[c] += 1;
            }
        }
        if task.inputs.is_empty() || task.outputs.is_empty() {
            continue;
        }
        let (ni, no) = (task.inputs.len(), task.outputs.len());
        for c in 0..components {
            coverage[c][t] = (in_count[c] as f64 / ni as f64) * (out_count[c] as f64 / no as f64);
            if in_count[c] == ni && out_count[c] == no {
                full[t] = Some(c);
            }
        }
    }

    let status = if components > n_tasks || full.iter().any(Option::is_none) {
        Status::Degraded
    } else {
        let mut serving = vec![false; components];
        let distinct = full
            .iter()
            .flatten()
            .all(|&c| !std::mem::replace(&mut serving[c], true));
        if components == n_tasks && distinct {
            Status::Split
        } else {
            Status::Connected
        }
    };

    GraphReport {
        remaining_weights,
        active_weights,
        zombie_weights,
        inactive_weights,
        active_neurons,
        zombie_neurons,
        inactive_neurons,
        components,
        coverage,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_reports_first_bad_index() {
        let mut m = LayerMask::dense_network(&[2, 2, 1]);
        assert_eq!(validate_masks(&[2, 2, 1], &m), Ok(()));
        m[1].kept = vec![1, 1];
        let e = validate_masks(&[2, 2, 1], &m).unwrap_err();
        assert_eq!(
            e,
            MaskError::NotIncreasing {
                layer: 1,
                position: 1,
                index: 1,
                previous: 1
            }
        );
        assert!(e
            .to_string()
            .starts_with("layer 1: kept index 1 at position 1"));
    }
}
