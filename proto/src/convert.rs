//! Conversions between the wire messages and the science crate's types, in one place for the
//! coordinator and the workers.

use shared::graph::{LayerMask as SharedMask, Status};
use shared::metrics::LevelMetrics as SharedMetrics;

use crate::mask::{decode_layer, encode_layer, MaskDecodeError};
use crate::v1::{Coverage, LayerMask, LevelMetrics, TicketStatus};

/// Why a wire message does not convert to the science crate's type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    #[error("layer {layer}: {source}")]
    Mask {
        layer: usize,
        #[source]
        source: MaskDecodeError,
    },
    #[error("status is unspecified")]
    UnspecifiedStatus,
    #[error("unknown status {0}")]
    UnknownStatus(i32),
    #[error("{field} = {value} does not fit this machine's integers")]
    TooLarge { field: &'static str, value: u64 },
}

/// Encodes a network's masks, input layer first.
pub fn masks_to_wire(masks: &[SharedMask]) -> Vec<LayerMask> {
    masks
        .iter()
        .map(|m| encode_layer(m.fan_in as u32, m.fan_out as u32, &m.kept))
        .collect()
}

/// Decodes a network's masks, validating every layer's indices (not the network's shape).
pub fn masks_from_wire(masks: &[LayerMask]) -> Result<Vec<SharedMask>, ConvertError> {
    masks
        .iter()
        .enumerate()
        .map(|(layer, m)| {
            Ok(SharedMask {
                fan_in: m.fan_in as usize,
                fan_out: m.fan_out as usize,
                kept: decode_layer(m).map_err(|source| ConvertError::Mask { layer, source })?,
            })
        })
        .collect()
}

pub fn status_to_wire(status: Status) -> TicketStatus {
    match status {
        Status::Split => TicketStatus::Split,
        Status::Connected => TicketStatus::Connected,
        Status::Degraded => TicketStatus::Degraded,
    }
}

pub fn status_from_wire(status: i32) -> Result<Status, ConvertError> {
    match TicketStatus::try_from(status) {
        Ok(TicketStatus::Split) => Ok(Status::Split),
        Ok(TicketStatus::Connected) => Ok(Status::Connected),
        Ok(TicketStatus::Degraded) => Ok(Status::Degraded),
        Ok(TicketStatus::Unspecified) => Err(ConvertError::UnspecifiedStatus),
        Err(_) => Err(ConvertError::UnknownStatus(status)),
    }
}

pub fn metrics_to_wire(m: &SharedMetrics) -> LevelMetrics {
    LevelMetrics {
        level: m.level as u64,
        remaining_weights: m.remaining_weights as u64,
        active_weights: m.active_weights as u64,
        zombie_weights: m.zombie_weights as u64,
        inactive_weights: m.inactive_weights as u64,
        active_neurons: m.active_neurons as u64,
        zombie_neurons: m.zombie_neurons as u64,
        inactive_neurons: m.inactive_neurons as u64,
        components: m.components as u64,
        status: status_to_wire(m.status) as i32,
        coverage: m
            .coverage
            .iter()
            .map(|c| Coverage { tasks: c.clone() })
            .collect(),
        test_accuracy: m.test_accuracy.clone(),
        test_loss: m.test_loss,
        train_loss: m.train_loss,
        epochs: m.epochs as u64,
        seconds: m.seconds,
        engine: m.engine,
    }
}

pub fn metrics_from_wire(m: &LevelMetrics) -> Result<SharedMetrics, ConvertError> {
    let size = |field: &'static str, value: u64| {
        usize::try_from(value).map_err(|_| ConvertError::TooLarge { field, value })
    };
    Ok(SharedMetrics {
        level: size("level", m.level)?,
        remaining_weights: size("remaining_weights", m.remaining_weights)?,
        active_weights: size("active_weights", m.active_weights)?,
        zombie_weights: size("zombie_weights", m.zombie_weights)?,
        inactive_weights: size("inactive_weights", m.inactive_weights)?,
        active_neurons: size("active_neurons", m.active_neurons)?,
        zombie_neurons: size("zombie_neurons", m.zombie_neurons)?,
        inactive_neurons: size("inactive_neurons", m.inactive_neurons)?,
        components: size("components", m.components)?,
        status: status_from_wire(m.status)?,
        coverage: m.coverage.iter().map(|c| c.tasks.clone()).collect(),
        test_accuracy: m.test_accuracy.clone(),
        test_loss: m.test_loss,
        train_loss: m.train_loss,
        epochs: size("epochs", m.epochs)?,
        seconds: m.seconds,
        // 0: a worker from before engines were versioned, which ran the first engine.
        engine: if m.engine == 0 {
            shared::metrics::first_engine()
        } else {
            m.engine
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::graph::{analyze, TaskIo};
    use shared::metrics::TrainingFigures;

    #[test]
    fn metrics_and_masks_round_trip() {
        let masks = SharedMask::dense_network(&[4, 3, 2]);
        let graph = analyze(&masks, &TaskIo::two_d_problems(2));
        let metrics = SharedMetrics::new(
            2,
            &graph,
            TrainingFigures {
                test_accuracy: vec![0.5, 0.75],
                test_loss: 0.3,
                train_loss: 0.2,
                epochs: 17,
                seconds: 1.5,
                engine: 2,
            },
        );
        assert_eq!(metrics_from_wire(&metrics_to_wire(&metrics)), Ok(metrics));
        assert_eq!(masks_from_wire(&masks_to_wire(&masks)), Ok(masks));
    }

    #[test]
    fn unspecified_status_is_refused() {
        assert_eq!(status_from_wire(0), Err(ConvertError::UnspecifiedStatus));
        assert_eq!(status_from_wire(99), Err(ConvertError::UnknownStatus(99)));
    }
}
