//! The resolved settings of one task: everything a worker needs to run one IMP trajectory,
//! with no defaults left to fill and no grid left to expand.
//!
//! A [`TaskSpec`] is plain data. It travels from the coordinator to workers as JSON and its
//! [`TaskSpec::id`] is a hash of that JSON, so two sweep files that resolve to the same settings
//! give the same id, whatever the task's position in the grid.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::graph::Status;

/// One independent 2-D binary problem of the data set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Problem {
    /// Two concentric noisy circles; `factor` is the inner radius relative to the outer one.
    Circles { noise: f64, factor: f64 },
    /// Two interleaving half-moons.
    Moons { noise: f64 },
    /// Four Gaussian-free quadrants of the square, labelled by the sign of x*y, with noise.
    Xor { noise: f64 },
    /// Two interleaved spirals of `turns` turns.
    Spirals { noise: f64, turns: f64 },
    /// Two isotropic Gaussian blobs of standard deviation `std` around (-1,-1) and (1,1)... see `data`.
    Blobs { std: f64 },
}

/// The data set: `problems` each draw `samples` points, concatenated column-wise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub problems: Vec<Problem>,
    /// Points drawn per problem (the thesis: 2000).
    pub samples: usize,
    /// Fraction of the points held out for testing (the thesis: 0.5).
    pub test_fraction: f64,
    /// Seed of the data; independent of the model seed (the thesis kept it at 0).
    pub seed: u64,
    /// The coupling control: degrees by which each problem's inputs are rotated into the next
    /// problem's before standardising ([`crate::data::couple`]); 0 (the protocol, left out of
    /// the JSON so the task ids of uncoupled data stay what they were) keeps them independent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub coupling: f64,
}

/// Whether a coupling is the default, uncoupled 0.
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Whether a count is its default, 0.
fn is_zero_count(v: &usize) -> bool {
    *v == 0
}

impl DataSpec {
    /// The protocol's data: circles (noise 0.1, factor 0.35) and moons (noise 0.1), 2000
    /// points each, half held out, data seed 0.
    pub fn protocol() -> DataSpec {
        DataSpec {
            problems: vec![
                Problem::Circles {
                    noise: 0.1,
                    factor: 0.35,
                },
                Problem::Moons { noise: 0.1 },
            ],
            samples: 2000,
            test_fraction: 0.5,
            seed: 0,
            coupling: 0.0,
        }
    }
}

/// Weight initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Kaiming normal: N(0, 2 / fan_in) for weights, zero biases (the protocol).
    KaimingNormal,
    /// Kaiming uniform: U(-sqrt(6 / fan_in), sqrt(6 / fan_in)), zero biases.
    KaimingUniform,
}

/// Adam and the training loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    pub init: Init,
    pub learning_rate: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Early stopping: epochs without an improvement of the held-out loss (the thesis: 30).
    pub patience: usize,
    /// Smallest decrease of the held-out loss that counts as an improvement (the thesis: 0).
    pub min_delta: f64,
    /// Late resetting (Frankle et al. 2020): every level after the dense one starts from the
    /// weights and biases the dense level had after this many epochs instead of theta_0 (the
    /// dense level's last epoch when it stopped earlier); Adam starts afresh at every level
    /// either way. 0 (the protocol, left out of the JSON) resets to theta_0.
    #[serde(default, skip_serializing_if = "is_zero_count")]
    pub rewind_epochs: usize,
}

impl TrainSpec {
    /// The protocol's training: Kaiming-normal init, Adam with learning rate 1e-3, batch 64,
    /// at most 3000 epochs, early stopping with patience 30 and delta 0.
    pub fn protocol() -> TrainSpec {
        TrainSpec {
            init: Init::KaimingNormal,
            learning_rate: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            batch_size: 64,
            max_epochs: 3000,
            patience: 30,
            min_delta: 0.0,
            rewind_epochs: 0,
        }
    }
}

/// Which weights one pruning threshold is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One magnitude threshold over all weight matrices (the protocol's default).
    Global,
    /// Every weight matrix loses the same fraction of its remaining weights.
    Layerwise,
}

impl Scope {
    /// The name in sweep files, tables and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Layerwise => "layerwise",
        }
    }
}

/// Which kept weights a level removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The smallest magnitudes (the protocol).
    #[default]
    Magnitude,
    /// The same number of weights (per layer under layer-wise scope) at random positions
    /// among the kept ones, seeded by the task's seed and the level: the random-pruning
    /// control.
    Random,
}

impl Method {
    /// Every method, in the order sweep files and tables list them.
    pub const ALL: [Method; 2] = [Method::Magnitude, Method::Random];

    /// The name in sweep files, tables and exports.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Magnitude => "magnitude",
            Method::Random => "random",
        }
    }

    /// Whether this is the protocol's magnitude pruning (left out of a task's JSON).
    pub fn is_magnitude(&self) -> bool {
        *self == Method::Magnitude
    }
}

/// The pruning trajectory of one task, resolved to exact counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneSpec {
    pub scope: Scope,
    /// Magnitude (the protocol, left out of the JSON so existing task ids stay) or random.
    #[serde(default, skip_serializing_if = "Method::is_magnitude")]
    pub method: Method,
    /// Fraction of the remaining weights removed per level (descriptive when `remaining` comes
    /// from an extension trajectory, where the effective rate varies slightly per level).
    pub rate: f64,
    /// Number of prune-reset-train rounds after the dense level 0.
    pub levels: usize,
    /// Weights left after the last level.
    pub target: usize,
    /// Weights remaining at each level, `levels + 1` entries: `remaining[0]` is the dense weight
    /// count, `remaining[levels] == target`, never increasing (a schedule whose target equals
    /// the dense count, or a very small rate, repeats counts).
    pub remaining: Vec<usize>,
    /// Stop after the first level whose ticket is degraded.
    pub stop_at_first_degraded: bool,
    /// Stop after the first level whose ticket is split.
    pub stop_at_first_split: bool,
}

impl PruneSpec {
    /// Whether a level whose ticket has `status` ends the run early (the stop rules of
    /// docs/PROTOCOL.md: at the first degraded level, or at the first split level, each optional).
    pub fn stops_after(&self, status: Status) -> bool {
        (status == Status::Split && self.stop_at_first_split)
            || (status == Status::Degraded && self.stop_at_first_degraded)
    }
}

/// Why a [`TaskSpec`] cannot be trained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTask(pub String);

/// Everything one IMP run needs. Built by [`crate::sweep`]; never edited afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub data: DataSpec,
    /// Layer widths, inputs first and outputs last, e.g. `[4, 410, 410, 2]`.
    pub shape: Vec<usize>,
    /// The extension level this shape came from, when the sweep used a base shape.
    pub extension_level: Option<usize>,
    pub train: TrainSpec,
    pub prune: PruneSpec,
    /// Model seed: initialisation and batch order.
    pub seed: u64,
}

impl TaskSpec {
    /// Stable id: the first 16 hex digits of the SHA-256 of the canonical JSON of the settings.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).expect("task specs always serialise");
        let digest = Sha256::digest(&json);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Number of weights (biases excluded) of the dense network.
    pub fn weights(&self) -> usize {
        crate::schedule::weight_count(&self.shape)
    }

    /// Which input columns and output columns belong to each problem.
    pub fn task_io(&self) -> Vec<crate::graph::TaskIo> {
        crate::graph::TaskIo::two_d_problems(self.data.problems.len())
    }

    /// The invariants training relies on: a shape of two or more non-zero layers with two
    /// inputs per problem and one output per problem, a schedule of `levels + 1` counts that
    /// starts at the dense count and never increases, a batch of at least one. Specs from a
    /// sweep file always pass; a spec from elsewhere (a coordinator's database, a lease) is
    /// checked before it trains.
    pub fn check(&self) -> Result<(), InvalidTask> {
        let bad = |msg: String| Err(InvalidTask(msg));
        let problems = self.data.problems.len();
        if self.shape.len() < 2 || self.shape.contains(&0) {
            return bad(format!(
                "shape {:?} needs at least two non-zero layers",
                self.shape
            ));
        }
        if self.shape[0] != 2 * problems || self.shape[self.shape.len() - 1] != problems {
            return bad(format!(
                "shape {:?} does not fit {problems} two-dimensional problems",
                self.shape
            ));
        }
        let remaining = &self.prune.remaining;
        if remaining.len() != self.prune.levels + 1 {
            return bad(format!(
                "the schedule has {} counts for {} levels",
                remaining.len(),
                self.prune.levels
            ));
        }
        if remaining[0] != self.weights() {
            return bad(format!(
                "the schedule starts at {} weights, the network has {}",
                remaining[0],
                self.weights()
            ));
        }
        if remaining.windows(2).any(|w| w[1] > w[0]) {
            return bad("the schedule's remaining counts increase".into());
        }
        if self.train.batch_size == 0 {
            return bad("batch size 0".into());
        }
        if self.train.rewind_epochs > self.train.max_epochs {
            return bad(format!(
                "rewind_epochs {} is more than max_epochs {}",
                self.train.rewind_epochs, self.train.max_epochs
            ));
        }
        Ok(())
    }
}
