//! The tables, pragmas and schema version (`PRAGMA user_version`) of the store.
//!
//! Version 1 is the only one so far. A database of an unknown (newer) version is refused with
//! a clear error rather than misread; a future version 2 adds a migration step here.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The schema version this coordinator reads and writes.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = r#"
CREATE TABLE sweeps (
    name        TEXT PRIMARY KEY,
    yaml        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
) STRICT;

CREATE TABLE tasks (
    key             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL,
    sweep           TEXT NOT NULL REFERENCES sweeps(name),
    idx             INTEGER NOT NULL,
    spec_json       TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'leased', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    levels_planned  INTEGER NOT NULL,
    finished_ms     INTEGER,
    UNIQUE (sweep, id)
) STRICT;
CREATE INDEX tasks_by_state ON tasks(state, sweep, idx);

CREATE TABLE workers (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    name                  TEXT NOT NULL,
    hostname              TEXT NOT NULL,
    api_version           INTEGER NOT NULL,
    parallel              INTEGER NOT NULL,
    registered_ms         INTEGER NOT NULL,
    last_seen_ms          INTEGER NOT NULL,
    current_task          TEXT,
    current_level         INTEGER,
    consecutive_failures  INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE leases (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task         INTEGER NOT NULL REFERENCES tasks(key),
    worker       INTEGER NOT NULL REFERENCES workers(id),
    started_ms   INTEGER NOT NULL,
    deadline_ms  INTEGER NOT NULL,
    level        INTEGER NOT NULL,
    ended_ms     INTEGER,
    outcome      TEXT CHECK (outcome IN ('completed', 'failed', 'expired')),
    error        TEXT
) STRICT;
CREATE INDEX leases_open ON leases(deadline_ms) WHERE ended_ms IS NULL;
CREATE INDEX leases_by_task ON leases(task);
CREATE INDEX leases_by_worker ON leases(worker) WHERE ended_ms IS NULL;

CREATE TABLE levels (
    task               INTEGER NOT NULL REFERENCES tasks(key),
    level              INTEGER NOT NULL,
    metrics_json       TEXT NOT NULL,
    remaining_weights  INTEGER NOT NULL,
    active_weights     INTEGER NOT NULL,
    zombie_weights     INTEGER NOT NULL,
    inactive_weights   INTEGER NOT NULL,
    components         INTEGER NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('split', 'connected', 'degraded')),
    epochs             INTEGER NOT NULL,
    seconds            REAL NOT NULL,
    masks              BLOB NOT NULL,
    reported_by        INTEGER NOT NULL REFERENCES leases(id),
    reported_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (task, level)
) STRICT;
CREATE INDEX levels_by_time ON levels(reported_at_ms);
"#;

/// Sets the pragmas of a serving connection and creates or checks the schema.
pub fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // journal_mode answers with a row; the others do not.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "database is not in WAL mode");
    }
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;

    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    match user_version(&tx)? {
        0 => {
            let tables: i64 =
                tx.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables > 0 {
                return Err(StoreError::NoSchema {
                    path: path.to_path_buf(),
                });
            }
            tx.execute_batch(SCHEMA_V1)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(StoreError::UnknownSchema {
                path: path.to_path_buf(),
                found,
                expected: SCHEMA_VERSION,
            })
        }
    }
    tx.commit()?;
    Ok(())
}

/// Checks the schema version of a read-only connection.
pub fn check_read_only(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    match user_version(conn)? {
        SCHEMA_VERSION => Ok(()),
        0 => Err(StoreError::NoSchema {
            path: path.to_path_buf(),
        }),
        found => Err(StoreError::UnknownSchema {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSION,
        }),
    }
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}
