//! The per-level record of an IMP run: what a worker prints with `worker train`, reports to the
//! coordinator, and what the coordinator stores and aggregates.

use serde::{Deserialize, Serialize};

use crate::graph::{GraphReport, Status};

/// One level of one task: the ticket's graph figures, its accuracy and the cost of training it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelMetrics {
    pub level: usize,
    pub remaining_weights: usize,
    pub active_weights: usize,
    pub zombie_weights: usize,
    pub inactive_weights: usize,
    pub active_neurons: usize,
    pub zombie_neurons: usize,
    pub inactive_neurons: usize,
    pub components: usize,
    pub status: Status,
    /// `coverage[c][t]`: coverage of task `t` by component `c`.
    pub coverage: Vec<Vec<f64>>,
    /// Test accuracy per task (problem), in [0, 1].
    pub test_accuracy: Vec<f64>,
    /// Mean binary cross-entropy on the test split at the end of training.
    pub test_loss: f64,
    /// Mean binary cross-entropy on the train split at the end of training.
    pub train_loss: f64,
    /// Epochs trained at this level (early stopping included).
    pub epochs: usize,
    /// Wall-clock seconds spent training this level.
    pub seconds: f64,
    /// Version of the worker's training engine. Engines differ in the rounding of every
    /// number, so results of different engines are never mixed silently. Levels stored
    /// before the version was recorded come from engine 1.
    #[serde(default = "first_engine")]
    pub engine: u32,
    /// The arithmetic of the worker that trained the level (`shared::cpu::arithmetic`, e.g.
    /// `x86_64-avx2-fma`); empty for levels stored before it was recorded.
    #[serde(default)]
    pub arithmetic: String,
    /// The kept weights of each weight matrix, input layer first: what the random-mask
    /// baseline (`crate::baseline`) draws at. Not reported by workers nor stored in the
    /// metrics: the coordinator fills it from the stored masks when it reads a sweep's data
    /// set, a long CSV carries it; empty where unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_per_layer: Vec<usize>,
}

/// The engine of levels recorded before engines were versioned.
pub fn first_engine() -> u32 {
    1
}

impl LevelMetrics {
    /// Combines a graph analysis with the training figures of the same level.
    #[allow(clippy::too_many_arguments)]
    pub fn new(level: usize, graph: &GraphReport, training: TrainingFigures) -> Self {
        LevelMetrics {
            level,
            remaining_weights: graph.remaining_weights,
            active_weights: graph.active_weights,
            zombie_weights: graph.zombie_weights,
            inactive_weights: graph.inactive_weights,
            active_neurons: graph.active_neurons,
            zombie_neurons: graph.zombie_neurons,
            inactive_neurons: graph.inactive_neurons,
            components: graph.components,
            status: graph.status,
            coverage: graph.coverage.clone(),
            test_accuracy: training.test_accuracy,
            test_loss: training.test_loss,
            train_loss: training.train_loss,
            epochs: training.epochs,
            seconds: training.seconds,
            engine: training.engine,
            arithmetic: training.arithmetic,
            kept_per_layer: Vec::new(),
        }
    }
}

/// What training one level produced, apart from the mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingFigures {
    pub test_accuracy: Vec<f64>,
    pub test_loss: f64,
    pub train_loss: f64,
    pub epochs: usize,
    pub seconds: f64,
    /// Version of the engine that trained the level.
    pub engine: u32,
    /// The arithmetic it trained with (`shared::cpu::arithmetic`).
    pub arithmetic: String,
}
