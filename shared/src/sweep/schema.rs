//! The sweep file as written: the serde schema of the YAML (keys, defaults, unknown keys
//! refused), before any validation. [`super::plan`] turns it into a validated plan.

use crate::spec::{Init, Scope, TrainSpec};
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

/// A key written as `null` (or with no value) takes its default, like an absent one.
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The whole file; `name` is the only required key.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of sweep settings (name, description, data, model, train, pruning, seeds)"
)]
pub(super) struct SweepFile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default, deserialize_with = "or_default")]
    pub(super) data: DataFile,
    #[serde(default, deserialize_with = "or_default")]
    pub(super) model: ModelFile,
    #[serde(default, deserialize_with = "or_default")]
    pub(super) train: TrainFile,
    #[serde(default, deserialize_with = "or_default")]
    pub(super) pruning: PruningFile,
    #[serde(default)]
    pub(super) seeds: Option<Value>,
}

/// `data`; absent keys take the protocol's values.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of data settings (problems, samples, test_fraction, seed, coupling)"
)]
pub(super) struct DataFile {
    pub(super) problems: Option<Vec<ProblemFile>>,
    pub(super) samples: usize,
    pub(super) test_fraction: f64,
    /// A data seed, a list of them, or an inclusive range `"a..b"`: a grid axis.
    pub(super) seed: Option<Value>,
    /// Degrees of coupling between the problems, or a list of them: a grid axis.
    pub(super) coupling: Option<Value>,
}

impl Default for DataFile {
    fn default() -> Self {
        DataFile {
            problems: None,
            samples: 2000,
            test_fraction: 0.5,
            seed: None,
            coupling: None,
        }
    }
}

/// `kind` of a `data.problems` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ProblemKind {
    Circles,
    Moons,
    Xor,
    Spirals,
    Blobs,
}

/// One `data.problems` entry; which parameters apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a problem mapping like { kind: circles, noise: 0.1, factor: 0.35 }"
)]
pub(super) struct ProblemFile {
    pub(super) kind: ProblemKind,
    #[serde(default)]
    pub(super) noise: Option<f64>,
    #[serde(default)]
    pub(super) factor: Option<f64>,
    #[serde(default)]
    pub(super) turns: Option<f64>,
    #[serde(default)]
    pub(super) std: Option<f64>,
}

/// `model`; which keys may go together is checked by the plan.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of model settings (shape, shapes, hidden, depth, base, extension_rate, extension_levels)"
)]
pub(super) struct ModelFile {
    pub(super) shape: Option<Vec<usize>>,
    pub(super) shapes: Option<Vec<Vec<usize>>>,
    pub(super) hidden: Option<Vec<usize>>,
    pub(super) depth: Option<usize>,
    pub(super) base: Option<Value>,
    pub(super) extension_rate: Option<f64>,
    pub(super) extension_levels: Option<Value>,
}

/// `train`; absent keys take the protocol's values ([`TrainSpec::protocol`]).
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of training settings"
)]
pub(super) struct TrainFile {
    pub(super) init: Init,
    pub(super) learning_rate: f64,
    pub(super) beta1: f64,
    pub(super) beta2: f64,
    pub(super) epsilon: f64,
    pub(super) batch_size: usize,
    pub(super) max_epochs: usize,
    pub(super) patience: usize,
    pub(super) min_delta: f64,
    /// Epochs of the dense level to rewind to, or a list of them: a grid axis.
    pub(super) rewind_epochs: Option<Value>,
}

impl Default for TrainFile {
    fn default() -> Self {
        let p = TrainSpec::protocol();
        TrainFile {
            init: p.init,
            learning_rate: p.learning_rate,
            beta1: p.beta1,
            beta2: p.beta2,
            epsilon: p.epsilon,
            batch_size: p.batch_size,
            max_epochs: p.max_epochs,
            patience: p.patience,
            min_delta: p.min_delta,
            rewind_epochs: None,
        }
    }
}

/// `pruning.schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum ScheduleKind {
    Exact,
    Trajectory,
}

/// `pruning`; the axes stay YAML values until the plan parses them.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    default,
    expecting = "a mapping of pruning settings (scope, method, rate, levels, target, schedule, trajectory_to, stop_at_first_degraded, stop_at_first_split)"
)]
pub(super) struct PruningFile {
    pub(super) scope: Scope,
    /// `magnitude`, `random`, or a list of them: a grid axis.
    pub(super) method: Option<Value>,
    pub(super) rate: Option<Value>,
    pub(super) levels: Option<Value>,
    pub(super) target: Option<Value>,
    pub(super) schedule: Option<ScheduleKind>,
    pub(super) trajectory_to: Option<usize>,
    pub(super) stop_at_first_degraded: bool,
    pub(super) stop_at_first_split: bool,
}

impl Default for PruningFile {
    fn default() -> Self {
        PruningFile {
            scope: Scope::Global,
            method: None,
            rate: None,
            levels: None,
            target: None,
            schedule: None,
            trajectory_to: None,
            stop_at_first_degraded: false,
            stop_at_first_split: false,
        }
    }
}
