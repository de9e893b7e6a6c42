//! The grid axes tasks are grouped by (`coordinator results --by`, the figures' x axes), and
//! the value of an axis for a task.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};
use shared::spec::TaskSpec;

/// A grid axis tasks can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Axis {
    /// The layer widths, e.g. (4,85,85,2).
    Shape,
    /// The widest hidden layer (0 without hidden layers).
    Width,
    /// The number of hidden layers.
    Depth,
    /// Weights of the dense network.
    Weights,
    /// The model extension level (none when the sweep gave shapes directly).
    ExtensionLevel,
    /// Pruning levels.
    Levels,
    /// Pruning rate.
    Rate,
    /// Pruning target (weights left after the last level).
    Target,
    /// Global or layer-wise pruning.
    Scope,
    /// Magnitude or random pruning (`pruning.method`, the random-pruning control).
    Method,
    /// Degrees of coupling between the problems (`data.coupling`, the coupled-problems control).
    Coupling,
    /// Epochs of the dense level the later levels rewind to (`train.rewind_epochs`; 0: theta_0).
    RewindEpochs,
    /// The data seed (`data.seed`): which draw of the data set.
    DataSeed,
    /// The model seed.
    Seed,
}

impl Axis {
    /// Every axis, in the order grid points list them.
    pub const ALL: [Axis; 14] = [
        Axis::Shape,
        Axis::Width,
        Axis::Depth,
        Axis::Weights,
        Axis::ExtensionLevel,
        Axis::Levels,
        Axis::Rate,
        Axis::Target,
        Axis::Scope,
        Axis::Method,
        Axis::Coupling,
        Axis::RewindEpochs,
        Axis::DataSeed,
        Axis::Seed,
    ];

    /// The axes that make a grid point: what the sweep file sets, every axis but the seed.
    pub const GRID: [Axis; 10] = [
        Axis::Shape,
        Axis::ExtensionLevel,
        Axis::Levels,
        Axis::Rate,
        Axis::Target,
        Axis::Scope,
        Axis::Method,
        Axis::Coupling,
        Axis::RewindEpochs,
        Axis::DataSeed,
    ];

    /// The control axes (issue 22): at their defaults (magnitude, 0, 0) a task is the
    /// protocol's, and tables show them only where a task leaves a default.
    pub const CONTROLS: [Axis; 3] = [Axis::Method, Axis::Coupling, Axis::RewindEpochs];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Axis::Shape => "shape",
            Axis::Width => "width",
            Axis::Depth => "depth",
            Axis::Weights => "weights",
            Axis::ExtensionLevel => "extension_level",
            Axis::Levels => "levels",
            Axis::Rate => "rate",
            Axis::Target => "target",
            Axis::Scope => "scope",
            Axis::Method => "method",
            Axis::Coupling => "coupling",
            Axis::RewindEpochs => "rewind_epochs",
            Axis::DataSeed => "data_seed",
            Axis::Seed => "seed",
        }
    }

    /// A human label with its unit, for figure axes.
    pub fn label(self) -> &'static str {
        match self {
            Axis::Shape => "shape",
            Axis::Width => "hidden width (neurons per hidden layer)",
            Axis::Depth => "hidden layers",
            Axis::Weights => "available weights (dense network)",
            Axis::ExtensionLevel => "model extension level",
            Axis::Levels => "pruning levels",
            Axis::Rate => "pruning rate per level",
            Axis::Target => "pruning target (weights)",
            Axis::Scope => "pruning scope",
            Axis::Method => "pruning method",
            Axis::Coupling => "coupling between the problems (degrees)",
            Axis::RewindEpochs => "rewind point (epochs of the dense level)",
            Axis::DataSeed => "data seed",
            Axis::Seed => "model seed",
        }
    }

    /// An axis by name (also `ext`, `extension`, `level_count`, `hidden`, `data`, `rewind`).
    pub fn parse(name: &str) -> Result<Axis, String> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        let axis = match name.as_str() {
            "shape" => Axis::Shape,
            "width" | "hidden" => Axis::Width,
            "depth" => Axis::Depth,
            "weights" => Axis::Weights,
            "extension_level" | "extension" | "ext" => Axis::ExtensionLevel,
            "levels" | "level_count" => Axis::Levels,
            "rate" => Axis::Rate,
            "target" => Axis::Target,
            "scope" => Axis::Scope,
            "method" => Axis::Method,
            "coupling" => Axis::Coupling,
            "rewind_epochs" | "rewind" => Axis::RewindEpochs,
            "data_seed" | "data" => Axis::DataSeed,
            "seed" => Axis::Seed,
            other => {
                let names: Vec<&str> = Axis::ALL.iter().map(|a| a.name()).collect();
                return Err(format!(
                    "unknown axis {other:?}: use one of {}",
                    names.join(", ")
                ));
            }
        };
        Ok(axis)
    }

    /// A comma-separated list of axes, e.g. `shape,rate`; repeated axes count once.
    pub fn parse_list(list: &str) -> Result<Vec<Axis>, String> {
        let mut axes = Vec::new();
        for name in list.split(',').filter(|s| !s.trim().is_empty()) {
            let axis = Axis::parse(name)?;
            if !axes.contains(&axis) {
                axes.push(axis);
            }
        }
        if axes.is_empty() {
            return Err("no axis given".to_string());
        }
        Ok(axes)
    }

    /// The value of this axis for a task.
    pub fn value(self, spec: &TaskSpec) -> AxisValue {
        let hidden = spec
            .shape
            .get(1..spec.shape.len().saturating_sub(1))
            .unwrap_or(&[]);
        match self {
            Axis::Shape => AxisValue::Shape(spec.shape.clone()),
            Axis::Width => AxisValue::Int(hidden.iter().copied().max().unwrap_or(0) as i64),
            Axis::Depth => AxisValue::Int(hidden.len() as i64),
            Axis::Weights => AxisValue::Int(spec.weights() as i64),
            Axis::ExtensionLevel => match spec.extension_level {
                Some(l) => AxisValue::Int(l as i64),
                None => AxisValue::None,
            },
            Axis::Levels => AxisValue::Int(spec.prune.levels as i64),
            Axis::Rate => AxisValue::Float(spec.prune.rate),
            Axis::Target => AxisValue::Int(spec.prune.target as i64),
            Axis::Scope => AxisValue::Text(spec.prune.scope.as_str().to_string()),
            Axis::Method => AxisValue::Text(spec.prune.method.as_str().to_string()),
            Axis::Coupling => AxisValue::Float(spec.data.coupling),
            Axis::RewindEpochs => AxisValue::Int(spec.train.rewind_epochs as i64),
            Axis::DataSeed => AxisValue::Int(spec.data.seed as i64),
            Axis::Seed => AxisValue::Int(spec.seed as i64),
        }
    }
}

/// Whether a task leaves the protocol's value of a control axis ([`Axis::CONTROLS`]).
pub fn is_control_set(axis: Axis, spec: &TaskSpec) -> bool {
    match axis {
        Axis::Method => !spec.prune.method.is_magnitude(),
        Axis::Coupling => spec.data.coupling != 0.0,
        Axis::RewindEpochs => spec.train.rewind_epochs != 0,
        _ => false,
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value of an axis for a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisValue {
    None,
    Int(i64),
    Float(f64),
    Text(String),
    Shape(Vec<usize>),
}

impl AxisValue {
    /// The value as a number, for figure axes (a shape: its widest hidden layer).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AxisValue::Int(v) => Some(*v as f64),
            AxisValue::Float(v) => Some(*v),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            AxisValue::None => 0,
            AxisValue::Int(_) | AxisValue::Float(_) => 1,
            AxisValue::Text(_) => 2,
            AxisValue::Shape(_) => 3,
        }
    }
}

impl Eq for AxisValue {}

impl PartialOrd for AxisValue {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AxisValue {
    /// Missing values first, numbers by value, shapes by depth then widths.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (AxisValue::Int(a), AxisValue::Int(b)) => a.cmp(b),
            (
                a @ (AxisValue::Int(_) | AxisValue::Float(_)),
                b @ (AxisValue::Int(_) | AxisValue::Float(_)),
            ) => a
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.as_f64().unwrap_or(0.0)),
            (AxisValue::Text(a), AxisValue::Text(b)) => a.cmp(b),
            (AxisValue::Shape(a), AxisValue::Shape(b)) => {
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            }
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl fmt::Display for AxisValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AxisValue::None => f.write_str("-"),
            AxisValue::Int(v) => write!(f, "{v}"),
            AxisValue::Float(v) => write!(f, "{}", format_float(*v)),
            AxisValue::Text(v) => f.write_str(v),
            AxisValue::Shape(s) => write!(f, "{}", shape_name(s)),
        }
    }
}

/// A shape as `(4,8,8,2)`.
pub fn shape_name(shape: &[usize]) -> String {
    let widths: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("({})", widths.join(","))
}

/// A float with at most 4 decimals and no trailing zeros (0.32, 0.2654, 1).
pub fn format_float(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_string()
    } else {
        s.to_string()
    }
}
