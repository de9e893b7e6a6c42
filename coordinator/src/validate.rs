//! Validation of a level report against the task it belongs to. Pure: no store, no clock.
//!
//! A report is accepted only if its level is the next one the task expects (and within its
//! plan), its masks decode, fit the task's shape, keep exactly `prune.remaining[level]`
//! weights and none that the previous level had pruned, its metrics are finite, and the
//! graph figures it claims are those the coordinator recomputes from the masks with
//! `shared::graph::analyze`.

use proto::v1 as pb;
use shared::graph::{self, GraphReport, LayerMask, MaskError, Status};
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;

/// Why a report is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReportError {
    #[error("level {level} is beyond the task's plan (levels 0..={last})")]
    LevelOutOfRange { level: u32, last: usize },
    #[error("level {level} reported but level {expected} is the next one expected")]
    UnexpectedLevel { level: u32, expected: u64 },
    #[error("the run stopped at level {stopped_at} ({status}, as its spec asks); level {level} is not expected")]
    AfterStop {
        level: u32,
        stopped_at: u64,
        status: &'static str,
    },
    #[error("metrics are missing")]
    MissingMetrics,
    #[error("metrics are of level {claimed} but the report is of level {level}")]
    MetricsLevel { claimed: u64, level: u32 },
    #[error("{0}")]
    Metrics(String),
    #[error("{got} masks given but shape {shape:?} has {expected} weight matrices")]
    LayerCount {
        got: usize,
        expected: usize,
        shape: Vec<usize>,
    },
    #[error(
        "layer {layer}: mask is {fan_out}x{fan_in} (fan_out x fan_in) but the shape needs \
         {expected_fan_out}x{expected_fan_in}"
    )]
    LayerShape {
        layer: usize,
        fan_in: u32,
        fan_out: u32,
        expected_fan_in: usize,
        expected_fan_out: usize,
    },
    #[error("layer {layer}: {source}")]
    Decode {
        layer: usize,
        source: proto::MaskDecodeError,
    },
    #[error("{0}")]
    Mask(#[from] MaskError),
    #[error("masks keep {kept} weights but level {level} of this task keeps exactly {expected}")]
    KeptCount {
        kept: usize,
        expected: usize,
        level: u32,
    },
    #[error("layer {layer}: weight {index} is kept but level {previous_level} had pruned it")]
    Regrown {
        layer: usize,
        index: u32,
        previous_level: u32,
    },
    #[error("metrics.{field} is not finite ({value})")]
    NotFinite { field: String, value: f64 },
    #[error("metrics.{field} is {value}, outside [0, 1]")]
    OutOfUnitRange { field: String, value: f64 },
    #[error("metrics.{field} is negative ({value})")]
    Negative { field: &'static str, value: f64 },
    #[error("metrics.test_accuracy has {got} entries but the task has {expected} problems")]
    AccuracyCount { got: usize, expected: usize },
    #[error("claimed {field} {claimed} but the masks give {actual}")]
    Figure {
        field: &'static str,
        claimed: String,
        actual: String,
    },
    #[error(
        "the task's shape {shape:?} has too few inputs or outputs for its {problems} problems"
    )]
    TaskShape { shape: Vec<usize>, problems: usize },
}

/// The task-side facts a report is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Expectation<'a> {
    pub spec: &'a TaskSpec,
    /// Levels already stored (`0..stored`): the next expected level is `stored`.
    pub stored: u64,
    /// Masks and status of level `stored - 1`, when `stored > 0`.
    pub previous: Option<(&'a [LayerMask], Status)>,
}

/// A report that passed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidLevel {
    pub metrics: LevelMetrics,
    pub masks: Vec<LayerMask>,
}

/// Checks a new level (`level == expected.stored`) completely.
pub fn validate_report(
    expected: Expectation<'_>,
    level: u32,
    metrics: Option<&pb::LevelMetrics>,
    masks: &[pb::LayerMask],
) -> Result<ValidLevel, ReportError> {
    let spec = expected.spec;
    if level as usize > spec.prune.levels {
        return Err(ReportError::LevelOutOfRange {
            level,
            last: spec.prune.levels,
        });
    }
    if u64::from(level) != expected.stored {
        return Err(ReportError::UnexpectedLevel {
            level,
            expected: expected.stored,
        });
    }
    if let Some((_, status)) = expected.previous {
        if spec.prune.stops_after(status) {
            return Err(ReportError::AfterStop {
                level,
                stopped_at: expected.stored - 1,
                status: status.as_str(),
            });
        }
    }
    let metrics = metrics.ok_or(ReportError::MissingMetrics)?;
    if metrics.level != u64::from(level) {
        return Err(ReportError::MetricsLevel {
            claimed: metrics.level,
            level,
        });
    }
    let masks = decode_masks(&spec.shape, masks)?;
    graph::validate_masks(&spec.shape, &masks)?;

    let kept: usize = masks.iter().map(|m| m.kept.len()).sum();
    let target = spec
        .prune
        .remaining
        .get(level as usize)
        .copied()
        .unwrap_or(0);
    if kept != target {
        return Err(ReportError::KeptCount {
            kept,
            expected: target,
            level,
        });
    }
    if let Some((previous, _)) = expected.previous {
        check_nested(&masks, previous, level.saturating_sub(1))?;
    }

    let metrics = LevelMetrics::try_from(metrics)
        .map_err(|e| ReportError::Metrics(format!("metrics: {e}")))?;
    check_finite(&metrics, spec.data.problems.len())?;

    let tasks = spec.task_io();
    let inputs = tasks
        .iter()
        .flat_map(|t| &t.inputs)
        .max()
        .map_or(0, |&i| i + 1);
    let outputs = tasks
        .iter()
        .flat_map(|t| &t.outputs)
        .max()
        .map_or(0, |&o| o + 1);
    let (Some(&first), Some(&last)) = (spec.shape.first(), spec.shape.last()) else {
        return Err(ReportError::TaskShape {
            shape: spec.shape.clone(),
            problems: tasks.len(),
        });
    };
    if first < inputs || last < outputs {
        return Err(ReportError::TaskShape {
            shape: spec.shape.clone(),
            problems: tasks.len(),
        });
    }
    let report = graph::analyze(&masks, &tasks);
    check_figures(&metrics, &report)?;
    Ok(ValidLevel { metrics, masks })
}

/// Decodes masks after checking their number and dimensions against the shape (so a bogus
/// size cannot make decoding allocate more than the task's own matrices).
pub fn decode_masks(
    shape: &[usize],
    masks: &[pb::LayerMask],
) -> Result<Vec<LayerMask>, ReportError> {
    let expected = shape.len().saturating_sub(1);
    if masks.len() != expected {
        return Err(ReportError::LayerCount {
            got: masks.len(),
            expected,
            shape: shape.to_vec(),
        });
    }
    masks
        .iter()
        .zip(shape.windows(2))
        .enumerate()
        .map(|(layer, (mask, widths))| {
            if mask.fan_in as usize != widths[0] || mask.fan_out as usize != widths[1] {
                return Err(ReportError::LayerShape {
                    layer,
                    fan_in: mask.fan_in,
                    fan_out: mask.fan_out,
                    expected_fan_in: widths[0],
                    expected_fan_out: widths[1],
                });
            }
            LayerMask::try_from(mask).map_err(|source| ReportError::Decode { layer, source })
        })
        .collect()
}

/// Every kept weight of `masks` must be kept in `previous` (pruned weights stay pruned).
fn check_nested(
    masks: &[LayerMask],
    previous: &[LayerMask],
    previous_level: u32,
) -> Result<(), ReportError> {
    for (layer, (mask, before)) in masks.iter().zip(previous).enumerate() {
        let mut allowed = before.kept.iter().peekable();
        for &index in &mask.kept {
            while allowed.next_if(|&&a| a < index).is_some() {}
            if allowed.next_if(|&&a| a == index).is_none() {
                return Err(ReportError::Regrown {
                    layer,
                    index,
                    previous_level,
                });
            }
        }
    }
    Ok(())
}

fn check_finite(m: &LevelMetrics, problems: usize) -> Result<(), ReportError> {
    let finite = |field: String, value: f64| {
        if value.is_finite() {
            Ok(())
        } else {
            Err(ReportError::NotFinite { field, value })
        }
    };
    let unit = |field: String, value: f64| {
        finite(field.clone(), value)?;
        if (0.0..=1.0).contains(&value) {
            Ok(())
        } else {
            Err(ReportError::OutOfUnitRange { field, value })
        }
    };
    if m.test_accuracy.len() != problems {
        return Err(ReportError::AccuracyCount {
            got: m.test_accuracy.len(),
            expected: problems,
        });
    }
    for (t, &a) in m.test_accuracy.iter().enumerate() {
        unit(format!("test_accuracy[{t}]"), a)?;
    }
    for (c, row) in m.coverage.iter().enumerate() {
        for (t, &v) in row.iter().enumerate() {
            unit(format!("coverage[{c}][{t}]"), v)?;
        }
    }
    for (field, value) in [
        ("test_loss", m.test_loss),
        ("train_loss", m.train_loss),
        ("seconds", m.seconds),
    ] {
        finite(field.to_string(), value)?;
        if value < 0.0 {
            return Err(ReportError::Negative { field, value });
        }
    }
    Ok(())
}

fn check_figures(m: &LevelMetrics, g: &GraphReport) -> Result<(), ReportError> {
    let counts = [
        (
            "remaining_weights",
            m.remaining_weights,
            g.remaining_weights,
        ),
        ("active_weights", m.active_weights, g.active_weights),
        ("zombie_weights", m.zombie_weights, g.zombie_weights),
        ("inactive_weights", m.inactive_weights, g.inactive_weights),
        ("active_neurons", m.active_neurons, g.active_neurons),
        ("zombie_neurons", m.zombie_neurons, g.zombie_neurons),
        ("inactive_neurons", m.inactive_neurons, g.inactive_neurons),
        ("components", m.components, g.components),
    ];
    for (field, claimed, actual) in counts {
        if claimed != actual {
            return Err(ReportError::Figure {
                field,
                claimed: claimed.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    if m.status != g.status {
        return Err(ReportError::Figure {
            field: "status",
            claimed: m.status.as_str().to_string(),
            actual: g.status.as_str().to_string(),
        });
    }
    let same_coverage = m.coverage.len() == g.coverage.len()
        && m.coverage.iter().zip(&g.coverage).all(|(a, b)| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-9)
        });
    if !same_coverage {
        return Err(ReportError::Figure {
            field: "coverage",
            claimed: format!("{:?}", m.coverage),
            actual: format!("{:?}", g.coverage),
        });
    }
    Ok(())
}

/// Whether a re-report of a stored level has the same content: identical masks and metrics,
/// the wall-clock `seconds` aside.
pub fn same_level(
    stored_metrics_json: &str,
    stored_seconds: f64,
    stored_masks: &[LayerMask],
    metrics: &LevelMetrics,
    masks: &[LayerMask],
) -> bool {
    let mut metrics = metrics.clone();
    metrics.seconds = stored_seconds;
    stored_masks == masks
        && serde_json::to_string(&metrics).is_ok_and(|json| json == stored_metrics_json)
}
