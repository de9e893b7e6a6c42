//! The tables, pragmas and schema version (`PRAGMA user_version`) of the store.
//!
//! Version 1 was the first; version 2 lets a lease end as `returned` (a worker shutting down
//! gave it back); version 3 records training engine versions of tasks and workers; version 4
//! gives a lease the worker's request id (a retried lease request gets the same lease back)
//! and the time of its last progress (the stall watchdog); version 5 gives a task the expected
//! cost of its levels not yet stored (`shared::cost`), which leasing orders by; version 6 gives
//! a stored level its cost in the same model, which the ETA's throughput counts; version 7 the
//! arithmetic of tasks and workers (a task continues only on its arithmetic) and why a
//! worker's last lease request got nothing; version 8 a sweep's state (active, paused,
//! cancelled) and priority; version 9 changes no table but computes every cost again with the
//! cost model fitted to engine 4. A new database is created at
//! version 1 and migrated, so the one migration path is the one every database takes. A
//! database of an unknown (newer) version is refused with a clear error rather than misread.
//! Read-only connections accept every version whose tables they can read (1 to 9; the status
//! of a database older than 6 falls back to an ETA by levels, older than 7 shows no
//! arithmetic, older than 8 every sweep active at priority 0).

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The schema version this coordinator reads and writes.
pub const SCHEMA_VERSION: i64 = 9;

/// The oldest version a read-only connection still reads.
const OLDEST_READABLE: i64 = 1;

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

/// Version 2: the lease outcome `returned`. SQLite cannot change a CHECK constraint in place,
/// so the table is rebuilt (with foreign keys off, as SQLite's documentation prescribes) with
/// its rows, ids and indexes.
const MIGRATE_V1_TO_V2: &str = r#"
CREATE TABLE leases_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task         INTEGER NOT NULL REFERENCES tasks(key),
    worker       INTEGER NOT NULL REFERENCES workers(id),
    started_ms   INTEGER NOT NULL,
    deadline_ms  INTEGER NOT NULL,
    level        INTEGER NOT NULL,
    ended_ms     INTEGER,
    outcome      TEXT CHECK (outcome IN ('completed', 'failed', 'expired', 'returned')),
    error        TEXT
) STRICT;
INSERT INTO leases_v2 (id, task, worker, started_ms, deadline_ms, level, ended_ms, outcome, error)
    SELECT id, task, worker, started_ms, deadline_ms, level, ended_ms, outcome, error FROM leases;
DROP TABLE leases;
ALTER TABLE leases_v2 RENAME TO leases;
CREATE INDEX leases_open ON leases(deadline_ms) WHERE ended_ms IS NULL;
CREATE INDEX leases_by_task ON leases(task);
CREATE INDEX leases_by_worker ON leases(worker) WHERE ended_ms IS NULL;
"#;

/// Version 3: training engine versions. A task remembers the engine of its stored levels
/// (every level stored so far came from engine 1) and a worker the engine it runs.
const MIGRATE_V2_TO_V3: &str = r#"
ALTER TABLE tasks ADD COLUMN engine INTEGER;
UPDATE tasks SET engine = 1 WHERE key IN (SELECT task FROM levels);
ALTER TABLE workers ADD COLUMN engine INTEGER NOT NULL DEFAULT 1;
"#;

/// Version 5: a task's expected remaining cost (`shared::cost::remaining_cost` of its levels
/// not yet stored), filled in by [`fill_costs`], and the indexes the lease query walks: sweeps
/// by age, then a sweep's pending tasks, most expensive first.
const MIGRATE_V4_TO_V5: &str = r#"
ALTER TABLE tasks ADD COLUMN cost REAL NOT NULL DEFAULT 0;
CREATE INDEX tasks_by_cost ON tasks(state, sweep, cost DESC, idx);
CREATE INDEX sweeps_by_age ON sweeps(created_ms);
"#;

/// Sets every task's cost from its settings and the levels it has stored (a migration step:
/// the settings are JSON that only Rust reads). A task whose settings do not read keeps 0.
fn fill_costs(tx: &Connection) -> Result<(), StoreError> {
    let mut read = tx.prepare(
        "SELECT t.key, t.spec_json, (SELECT COUNT(*) FROM levels l WHERE l.task = t.key)
         FROM tasks t",
    )?;
    let rows = read.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut update = tx.prepare("UPDATE tasks SET cost = ?2 WHERE key = ?1")?;
    for row in rows {
        let (key, spec_json, stored) = row?;
        if let Ok(spec) = serde_json::from_str::<shared::spec::TaskSpec>(&spec_json) {
            let cost = shared::cost::remaining_cost(&spec, stored.max(0) as usize);
            update.execute(rusqlite::params![key, cost])?;
        }
    }
    Ok(())
}

/// Version 6: a stored level's cost (`shared::cost::level_cost`), filled in by
/// [`fill_level_costs`]; the status's throughput sums it over the levels of its window.
const MIGRATE_V5_TO_V6: &str = r#"
ALTER TABLE levels ADD COLUMN cost REAL NOT NULL DEFAULT 0;
"#;

/// Version 7: the arithmetic (`shared::cpu::arithmetic`) of a task, set by its first stored
/// level (NULL for tasks whose levels were stored before: they continue anywhere, as before),
/// and of a worker ('' for workers that did not say), and why a worker's last lease request got
/// nothing while tasks were pending.
const MIGRATE_V6_TO_V7: &str = r#"
ALTER TABLE tasks ADD COLUMN arithmetic TEXT;
ALTER TABLE workers ADD COLUMN arithmetic TEXT NOT NULL DEFAULT '';
ALTER TABLE workers ADD COLUMN idle_reason TEXT;
"#;

/// Version 8: a sweep's state (`active`; `paused`: nothing of it is leased until resumed;
/// `cancelled`: nothing of it is leased again) and priority (a higher one's tasks are leased
/// first), and the index the lease query walks sweeps by.
const MIGRATE_V7_TO_V8: &str = r#"
ALTER TABLE sweeps ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('active', 'paused', 'cancelled'));
ALTER TABLE sweeps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
DROP INDEX sweeps_by_age;
CREATE INDEX sweeps_by_priority ON sweeps(priority DESC, created_ms);
"#;

/// Sets every stored level's cost from its task's dense weight count (a migration step, as
/// [`fill_costs`]). Levels of a task whose settings do not read keep 0.
fn fill_level_costs(tx: &Connection) -> Result<(), StoreError> {
    let mut read =
        tx.prepare("SELECT key, spec_json FROM tasks WHERE key IN (SELECT task FROM levels)")?;
    let tasks = read
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut levels = tx.prepare("SELECT level, remaining_weights FROM levels WHERE task = ?1")?;
    let mut update = tx.prepare("UPDATE levels SET cost = ?3 WHERE task = ?1 AND level = ?2")?;
    for (key, spec_json) in tasks {
        let Ok(spec) = serde_json::from_str::<shared::spec::TaskSpec>(&spec_json) else {
            continue;
        };
        let dense = spec.weights();
        let rows = levels
            .query_map([key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        for (level, remaining) in rows {
            let cost = shared::cost::level_cost(dense, remaining.max(0) as usize);
            update.execute(rusqlite::params![key, level, cost])?;
        }
    }
    Ok(())
}

/// Version 4: the request id a lease was granted for (a worker that lost the reply asks again
/// with the same id and gets the same lease), and the last time its worker made progress (the
/// lease began or a level was stored), which the stall watchdog reads.
const MIGRATE_V3_TO_V4: &str = r#"
ALTER TABLE leases ADD COLUMN request INTEGER;
ALTER TABLE leases ADD COLUMN progress_ms INTEGER;
UPDATE leases SET progress_ms = MAX(started_ms, COALESCE(
    (SELECT MAX(reported_at_ms) FROM levels WHERE levels.reported_by = leases.id), started_ms))
    WHERE ended_ms IS NULL;
CREATE INDEX leases_by_request ON leases(worker, request) WHERE ended_ms IS NULL;
"#;

/// Statements kept prepared per connection ([`super::sql`]).
pub const STATEMENT_CACHE: usize = 128;

/// Sets the pragmas of a serving connection and creates, migrates or checks the schema.
pub fn prepare(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Room for every statement of the store (about 60), so that none is parsed twice.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // journal_mode answers with a row; the others do not.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "database is not in WAL mode");
    }
    // Foreign keys are enforced from the end of the schema transaction on: a migration that
    // rebuilds a referenced table needs them off (they cannot change inside a transaction).
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = OFF;")?;

    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
    let mut version = user_version(&tx)?;
    if version == 0 {
        let tables: i64 = tx.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))?;
        if tables > 0 {
            return Err(StoreError::NoSchema {
                path: path.to_path_buf(),
            });
        }
        tx.execute_batch(SCHEMA_V1)?;
        version = 1;
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::UnknownSchema {
            path: path.to_path_buf(),
            found: version,
            expected: SCHEMA_VERSION,
        });
    }
    let from = version;
    if version == 1 {
        tx.execute_batch(MIGRATE_V1_TO_V2)?;
        version = 2;
    }
    if version == 2 {
        tx.execute_batch(MIGRATE_V2_TO_V3)?;
        version = 3;
    }
    if version == 3 {
        tx.execute_batch(MIGRATE_V3_TO_V4)?;
        version = 4;
    }
    if version == 4 {
        tx.execute_batch(MIGRATE_V4_TO_V5)?;
        fill_costs(&tx)?;
        version = 5;
    }
    if version == 5 {
        tx.execute_batch(MIGRATE_V5_TO_V6)?;
        fill_level_costs(&tx)?;
        version = 6;
    }
    if version == 6 {
        tx.execute_batch(MIGRATE_V6_TO_V7)?;
        version = 7;
    }
    if version == 7 {
        tx.execute_batch(MIGRATE_V7_TO_V8)?;
        version = 8;
    }
    if version == 8 {
        // Version 9 changes no table: the tasks' and levels' costs are computed again with
        // the cost model fitted to engine 4 (shared::cost), so that the tasks of one sweep
        // are never ordered by costs of two calibrations.
        fill_costs(&tx)?;
        fill_level_costs(&tx)?;
        version = 9;
    }
    if version != from {
        let broken: i64 =
            tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if broken > 0 {
            return Err(StoreError::Corrupt(format!(
                "migrating {} from schema version {from} left {broken} broken references",
                path.display()
            )));
        }
        tx.pragma_update(None, "user_version", version)?;
        tracing::info!(path = %path.display(), from, to = version, "database schema migrated");
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Checks the schema version of a read-only connection.
pub fn check_read_only(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    match user_version(conn)? {
        OLDEST_READABLE..=SCHEMA_VERSION => Ok(()),
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

/// The schema version of `conn`'s database (`PRAGMA user_version`).
pub(crate) fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version 1 database with a sweep, a task, a worker, an ended lease and a stored level.
    fn v1_database(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO sweeps VALUES ('s', 'name: s', 1, 1);
             INSERT INTO tasks (key, id, sweep, idx, spec_json, state, levels_planned)
                 VALUES (1, 't', 's', 0, '{}', 'pending', 3);
             INSERT INTO workers (name, hostname, api_version, parallel, registered_ms, last_seen_ms)
                 VALUES ('w', 'h', 1, 1, 1, 1);
             INSERT INTO leases (task, worker, started_ms, deadline_ms, level, ended_ms, outcome)
                 VALUES (1, 1, 1, 2, 0, 2, 'expired');
             INSERT INTO leases (task, worker, started_ms, deadline_ms, level, ended_ms, outcome)
                 VALUES (1, 1, 3, 4, 0, 4, 'failed');
             INSERT INTO levels VALUES (1, 0, '{}', 1, 1, 0, 0, 1, 'split', 1, 0.5, x'00', 2, 3);",
        )
        .unwrap();
    }

    #[test]
    fn migrating_sets_each_tasks_remaining_cost_and_each_stored_levels_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        v1_database(&path);
        let spec = shared::sweep::Sweep::from_yaml("name: s\nseeds: 1\n", "s.yaml")
            .unwrap()
            .expand()
            .unwrap()
            .remove(20);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO tasks (key, id, sweep, idx, spec_json, levels_planned)
                 VALUES (2, 'u', 's', 1, ?1, 21)",
            [serde_json::to_string(&spec).unwrap()],
        )
        .unwrap();
        // Task 2 has stored its dense level and its first pruned one.
        for level in 0..2 {
            conn.execute(
                "INSERT INTO levels VALUES (2, ?1, '{}', ?2, 1, 0, 0, 1, 'connected', 1, 0.5, x'00', 2, 3)",
                rusqlite::params![level, spec.prune.remaining[level] as i64],
            )
            .unwrap();
        }
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        prepare(&mut conn, &path).unwrap();
        let rows = |sql: &str| -> Vec<(i64, f64)> {
            conn.prepare(sql)
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        // Task 1's settings do not read ('{}'): it and its level keep 0.
        let costs = rows("SELECT key, cost FROM tasks ORDER BY key");
        assert_eq!(
            costs,
            vec![(1, 0.0), (2, shared::cost::remaining_cost(&spec, 2))]
        );
        assert!(costs[1].1 > 0.0);
        let dense = spec.weights();
        let level = |l: usize| shared::cost::level_cost(dense, spec.prune.remaining[l]);
        assert_eq!(
            rows("SELECT task * 10 + level, cost FROM levels ORDER BY task, level"),
            vec![(10, 0.0), (20, level(0)), (21, level(1))]
        );
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn a_version_1_database_is_migrated_keeping_its_rows_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        v1_database(&path);
        // Read-only readers still read an unmigrated database.
        let ro =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        check_read_only(&ro, &path).unwrap();
        drop(ro);

        let mut conn = Connection::open(&path).unwrap();
        prepare(&mut conn, &path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        let outcomes: Vec<(i64, String)> = conn
            .prepare("SELECT id, outcome FROM leases ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(outcomes, [(1, "expired".into()), (2, "failed".into())]);
        // Lease ids keep growing after the rebuild, and `returned` is now allowed.
        conn.execute(
            "INSERT INTO leases (task, worker, started_ms, deadline_ms, level, ended_ms, outcome)
             VALUES (1, 1, 5, 6, 1, 6, 'returned')",
            [],
        )
        .unwrap();
        assert_eq!(conn.last_insert_rowid(), 3);
        // The level still references its lease, and references are enforced.
        let reported_by: i64 = conn
            .query_row("SELECT reported_by FROM levels", [], |r| r.get(0))
            .unwrap();
        assert_eq!(reported_by, 2);
        assert!(conn
            .execute(
                "INSERT INTO leases (task, worker, started_ms, deadline_ms, level) VALUES (9, 1, 1, 1, 0)",
                [],
            )
            .is_err());
        let indexes: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'leases'
                 AND name LIKE 'leases_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 4);
        // Opening again is a no-op.
        drop(conn);
        let mut conn = Connection::open(&path).unwrap();
        prepare(&mut conn, &path).unwrap();
    }

    #[test]
    fn a_new_database_has_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let mut conn = Connection::open(&path).unwrap();
        prepare(&mut conn, &path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        conn.execute_batch(
            "INSERT INTO sweeps (name, yaml, created_ms, updated_ms) VALUES ('s', 'name: s', 1, 1);
             INSERT INTO tasks (key, id, sweep, idx, spec_json, levels_planned)
                 VALUES (1, 't', 's', 0, '{}', 3);
             INSERT INTO workers (name, hostname, api_version, parallel, registered_ms, last_seen_ms)
                 VALUES ('w', 'h', 1, 1, 1, 1);
             INSERT INTO leases (task, worker, started_ms, deadline_ms, level, ended_ms, outcome)
                 VALUES (1, 1, 1, 2, 0, 2, 'returned');",
        )
        .unwrap();
        assert!(conn
            .execute(
                "INSERT INTO leases (task, worker, started_ms, deadline_ms, level, ended_ms, outcome)
                 VALUES (1, 1, 1, 2, 0, 2, 'bogus')",
                [],
            )
            .is_err());
        // A new sweep is active at priority 0; a state outside the three is refused.
        let (state, priority): (String, i64) = conn
            .query_row("SELECT state, priority FROM sweeps", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((state.as_str(), priority), ("active", 0));
        assert!(conn
            .execute("UPDATE sweeps SET state = 'bogus'", [])
            .is_err());
    }
}
