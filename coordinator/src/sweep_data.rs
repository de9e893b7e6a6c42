//! Where the results commands read a sweep's data set from: a running coordinator (the
//! `TaskLevels` / `TicketMasks` RPCs) or, read-only, its database. Both give the same
//! [`SweepData`] (the RPCs serve exactly what the store reads), so `--coordinator` and `--db`
//! agree byte for byte.

use analysis::{SweepData, TicketData};
use std::collections::HashMap;

use proto::convert::blob_to_wire;
use proto::mask::decode_layer;
use rusqlite::Connection;

use crate::service::wire;
use crate::store::{masks, results, StoreError};

/// Reads a sweep's data set from a database connection, with every level's kept weights per
/// layer counted from its stored masks (what the random-mask baseline draws at).
pub fn load(conn: &Connection, sweep: &str) -> Result<SweepData, StoreError> {
    let mut data = results::sweep_data(conn, sweep)?;
    let at: HashMap<usize, usize> = data
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.idx, i))
        .collect();
    for (idx, level, blob) in masks::sweep_masks(conn, sweep)? {
        let layers = blob_to_wire(&blob).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let kept = layers
            .iter()
            .map(|m| decode_layer(m).map(|k| k.len()))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("masks of level {level}: {e}")))?;
        let task = at.get(&idx).and_then(|&i| data.tasks.get_mut(i));
        if let Some(l) = task.and_then(|t| t.levels.iter_mut().find(|l| l.level == level)) {
            l.kept_per_layer = kept;
        }
    }
    Ok(data)
}

/// Reads one level with its masks from a database connection.
pub fn load_ticket(
    conn: &Connection,
    sweep: &str,
    task_id: &str,
    level: usize,
) -> Result<TicketData, StoreError> {
    let stored = results::ticket(conn, sweep, task_id, level as u64)?;
    wire::ticket_from_store(stored).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub use wire::{sweep_data_from_wire as from_wire, ticket_from_wire};
