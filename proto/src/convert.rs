//! The one mapping between the wire messages and the science crate's types, as `From` /
//! `TryFrom` impls (a message in, a `shared` value out, or back), plus the stored form of a
//! network's masks. The coordinator and the workers both convert here and nowhere else.
//!
//! Decoding never trusts the wire: masks are decoded with their indices checked (sorted,
//! distinct, in range of the layer), counts must fit this machine's integers and a status
//! must be one of the three.

use prost::Message;
use shared::graph::{LayerMask as SharedMask, Status};
use shared::metrics::LevelMetrics as SharedMetrics;

use crate::mask::{decode_layer, encode_layer, MaskDecodeError};
use crate::v1::{Coverage, LayerMask, LevelMetrics, NetworkMask, TicketStatus};

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
    #[error("the stored masks do not decode: {0}")]
    Blob(String),
}

impl From<&SharedMask> for LayerMask {
    /// The smaller of the two encodings. Widths beyond 32 bits cannot be valid masks; they
    /// saturate, and the receiver refuses them.
    fn from(m: &SharedMask) -> LayerMask {
        let width = |w: usize| u32::try_from(w).unwrap_or(u32::MAX);
        encode_layer(width(m.fan_in), width(m.fan_out), &m.kept)
    }
}

impl TryFrom<&LayerMask> for SharedMask {
    type Error = MaskDecodeError;

    /// One layer's mask with its indices checked (the network's shape is the caller's to
    /// check).
    fn try_from(m: &LayerMask) -> Result<SharedMask, MaskDecodeError> {
        Ok(SharedMask {
            fan_in: m.fan_in as usize,
            fan_out: m.fan_out as usize,
            kept: decode_layer(m)?,
        })
    }
}

/// Encodes a network's masks, input layer first.
pub fn masks_to_wire(masks: &[SharedMask]) -> Vec<LayerMask> {
    masks.iter().map(LayerMask::from).collect()
}

/// Decodes a network's masks, validating every layer's indices (not the network's shape).
pub fn masks_from_wire(masks: &[LayerMask]) -> Result<Vec<SharedMask>, ConvertError> {
    masks
        .iter()
        .enumerate()
        .map(|(layer, m)| {
            SharedMask::try_from(m).map_err(|source| ConvertError::Mask { layer, source })
        })
        .collect()
}

/// The stored form of a network's masks: an encoded [`NetworkMask`].
pub fn masks_to_blob(masks: &[SharedMask]) -> Vec<u8> {
    NetworkMask {
        layers: masks_to_wire(masks),
    }
    .encode_to_vec()
}

/// A network's masks from their stored form.
pub fn masks_from_blob(blob: &[u8]) -> Result<Vec<SharedMask>, ConvertError> {
    let network = NetworkMask::decode(blob).map_err(|e| ConvertError::Blob(e.to_string()))?;
    masks_from_wire(&network.layers)
}

/// The stored form of a network's masks as wire layers (without decoding the indices).
pub fn blob_to_wire(blob: &[u8]) -> Result<Vec<LayerMask>, ConvertError> {
    Ok(NetworkMask::decode(blob)
        .map_err(|e| ConvertError::Blob(e.to_string()))?
        .layers)
}

impl From<Status> for TicketStatus {
    fn from(status: Status) -> TicketStatus {
        match status {
            Status::Split => TicketStatus::Split,
            Status::Connected => TicketStatus::Connected,
            Status::Degraded => TicketStatus::Degraded,
        }
    }
}

impl TryFrom<TicketStatus> for Status {
    type Error = ConvertError;

    fn try_from(status: TicketStatus) -> Result<Status, ConvertError> {
        match status {
            TicketStatus::Split => Ok(Status::Split),
            TicketStatus::Connected => Ok(Status::Connected),
            TicketStatus::Degraded => Ok(Status::Degraded),
            TicketStatus::Unspecified => Err(ConvertError::UnspecifiedStatus),
        }
    }
}

/// A status as the wire carries it (an `i32` of [`TicketStatus`]).
fn status_from_i32(status: i32) -> Result<Status, ConvertError> {
    TicketStatus::try_from(status)
        .map_err(|_| ConvertError::UnknownStatus(status))
        .and_then(Status::try_from)
}

impl From<&SharedMetrics> for LevelMetrics {
    fn from(m: &SharedMetrics) -> LevelMetrics {
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
            status: TicketStatus::from(m.status) as i32,
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
            arithmetic: m.arithmetic.clone(),
            kept_per_layer: m.kept_per_layer.iter().map(|&k| k as u64).collect(),
        }
    }
}

impl TryFrom<&LevelMetrics> for SharedMetrics {
    type Error = ConvertError;

    fn try_from(m: &LevelMetrics) -> Result<SharedMetrics, ConvertError> {
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
            status: status_from_i32(m.status)?,
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
            arithmetic: m.arithmetic.clone(),
            kept_per_layer: m
                .kept_per_layer
                .iter()
                .map(|&k| size("kept_per_layer", k))
                .collect::<Result<_, _>>()?,
        })
    }
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
                arithmetic: "x86_64-avx2-fma".into(),
            },
        );
        let wire = LevelMetrics::from(&metrics);
        assert_eq!(SharedMetrics::try_from(&wire), Ok(metrics));
        assert_eq!(masks_from_wire(&masks_to_wire(&masks)), Ok(masks.clone()));
        assert_eq!(masks_from_blob(&masks_to_blob(&masks)), Ok(masks));
        assert!(masks_from_blob(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn a_bad_status_is_refused_and_engine_0_is_engine_1() {
        assert_eq!(status_from_i32(0), Err(ConvertError::UnspecifiedStatus));
        assert_eq!(status_from_i32(99), Err(ConvertError::UnknownStatus(99)));
        let mut wire = LevelMetrics {
            status: TicketStatus::Split as i32,
            ..Default::default()
        };
        assert_eq!(SharedMetrics::try_from(&wire).unwrap().engine, 1);
        wire.status = 0;
        assert!(SharedMetrics::try_from(&wire).is_err());
    }
}
