//! Where the results commands read a sweep's data set from: a running coordinator (the
//! `TaskLevels` / `TicketMasks` RPCs) or, read-only, its database. Both give the same
//! [`SweepData`] (the RPCs serve exactly what the store reads), so `--coordinator` and `--db`
//! agree byte for byte.

use analysis::{SweepData, TicketData};
use rusqlite::Connection;

use crate::service::wire;
use crate::store::{results, StoreError};

/// Reads a sweep's data set from a database connection.
pub fn load(conn: &Connection, sweep: &str) -> Result<SweepData, StoreError> {
    results::sweep_data(conn, sweep)
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
