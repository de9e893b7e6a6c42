//! The coordinator's conversions: wire messages to `shared` types (delegating to
//! `proto::convert`), stored names of statuses, mask blobs, and aggregate rows.

use prost::Message;
use proto::v1 as pb;
use shared::graph::{LayerMask, Status};
use shared::metrics::LevelMetrics;

use crate::aggregate::Row;
use crate::store::StoreError;

/// The wire value of a ticket status.
pub fn status_to_proto(status: Status) -> pb::TicketStatus {
    proto::convert::status_to_wire(status)
}

/// A ticket status from the wire; `None` for unspecified or unknown values.
pub fn status_from_proto(value: i32) -> Option<Status> {
    proto::convert::status_from_wire(value).ok()
}

/// The stored (and printed) name of a status.
pub fn status_str(status: Status) -> &'static str {
    match status {
        Status::Split => "split",
        Status::Connected => "connected",
        Status::Degraded => "degraded",
    }
}

/// A status from its stored name.
pub fn status_from_str(name: &str) -> Result<Status, StoreError> {
    match name {
        "split" => Ok(Status::Split),
        "connected" => Ok(Status::Connected),
        "degraded" => Ok(Status::Degraded),
        other => Err(StoreError::Corrupt(format!(
            "unknown ticket status {other:?}"
        ))),
    }
}

/// The wire form of a level's metrics.
pub fn metrics_to_proto(m: &LevelMetrics) -> pb::LevelMetrics {
    proto::convert::metrics_to_wire(m)
}

/// A level's metrics from the wire. Fails on an unspecified status or counts beyond `usize`.
pub fn metrics_from_proto(m: &pb::LevelMetrics) -> Result<LevelMetrics, String> {
    proto::convert::metrics_from_wire(m).map_err(|e| format!("metrics: {e}"))
}

/// The wire form of one layer's mask (the smaller encoding).
pub fn mask_to_proto(mask: &LayerMask) -> pb::LayerMask {
    proto::encode_layer(
        u32::try_from(mask.fan_in).unwrap_or(u32::MAX),
        u32::try_from(mask.fan_out).unwrap_or(u32::MAX),
        &mask.kept,
    )
}

/// One layer's mask from the wire (kept indices sorted, distinct and in range).
pub fn mask_from_proto(mask: &pb::LayerMask) -> Result<LayerMask, proto::MaskDecodeError> {
    Ok(LayerMask {
        fan_in: mask.fan_in as usize,
        fan_out: mask.fan_out as usize,
        kept: proto::decode_layer(mask)?,
    })
}

/// The stored blob of a network's masks: an encoded [`pb::NetworkMask`].
pub fn masks_to_blob(masks: &[LayerMask]) -> Vec<u8> {
    pb::NetworkMask {
        layers: masks.iter().map(mask_to_proto).collect(),
    }
    .encode_to_vec()
}

/// The wire masks of a stored blob.
pub fn blob_to_proto(blob: &[u8]) -> Result<Vec<pb::LayerMask>, StoreError> {
    pb::NetworkMask::decode(blob)
        .map(|n| n.layers)
        .map_err(|e| StoreError::Corrupt(format!("mask blob: {e}")))
}

/// The masks of a stored blob.
pub fn blob_to_masks(blob: &[u8]) -> Result<Vec<LayerMask>, StoreError> {
    blob_to_proto(blob)?
        .iter()
        .map(|m| mask_from_proto(m).map_err(|e| StoreError::Corrupt(format!("mask blob: {e}"))))
        .collect()
}

/// The wire form of an aggregate row.
pub fn row_to_proto(row: &Row) -> pb::AggregateRow {
    pb::AggregateRow {
        point: row.point.clone(),
        shape: row.shape.iter().map(|&w| w as u64).collect(),
        extension_level: row.extension_level.map(|l| l as u64),
        levels: row.levels as u64,
        rate: row.rate,
        target: row.target as u64,
        scope: row.scope.clone(),
        seeds_total: row.seeds_total as u64,
        seeds_done: row.seeds_done as u64,
        frac_split: row.frac_split,
        frac_ever_split: row.frac_ever_split,
        frac_connected: row.frac_connected,
        frac_degraded: row.frac_degraded,
        active_at_split_median: row.active_at_split_median,
        first_split_level_median: row.first_split_level_median,
        test_accuracy: row.test_accuracy.clone(),
        weights: row.weights as u64,
        engines: row.engines.clone(),
    }
}

/// An aggregate row from the wire.
pub fn row_from_proto(row: &pb::AggregateRow) -> Row {
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Row {
        point: row.point.clone(),
        shape: row.shape.iter().map(|&w| size(w)).collect(),
        extension_level: row.extension_level.map(size),
        weights: size(row.weights),
        levels: size(row.levels),
        rate: row.rate,
        target: size(row.target),
        scope: row.scope.clone(),
        seeds_total: size(row.seeds_total),
        seeds_done: size(row.seeds_done),
        frac_split: row.frac_split,
        frac_ever_split: row.frac_ever_split,
        frac_connected: row.frac_connected,
        frac_degraded: row.frac_degraded,
        active_at_split_median: row.active_at_split_median,
        first_split_level_median: row.first_split_level_median,
        test_accuracy: row.test_accuracy.clone(),
        engines: row.engines.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_survive_the_blob() {
        let masks = vec![
            LayerMask::dense(4, 8),
            LayerMask {
                fan_in: 8,
                fan_out: 2,
                kept: vec![0, 3, 15],
            },
        ];
        assert_eq!(blob_to_masks(&masks_to_blob(&masks)).unwrap(), masks);
    }

    #[test]
    fn metrics_survive_the_wire() {
        let m = LevelMetrics {
            level: 3,
            remaining_weights: 50,
            active_weights: 40,
            zombie_weights: 4,
            inactive_weights: 6,
            active_neurons: 12,
            zombie_neurons: 1,
            inactive_neurons: 2,
            components: 2,
            status: Status::Split,
            coverage: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            test_accuracy: vec![0.99, 0.97],
            test_loss: 0.1,
            train_loss: 0.05,
            epochs: 120,
            seconds: 1.5,
            engine: 2,
        };
        assert_eq!(metrics_from_proto(&metrics_to_proto(&m)).unwrap(), m);
        let mut bad = metrics_to_proto(&m);
        bad.status = 0;
        assert!(metrics_from_proto(&bad).is_err());
    }
}
