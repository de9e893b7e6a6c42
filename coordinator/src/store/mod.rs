//! The SQLite store: one connection behind a mutex, every call run on tokio's blocking pool.
//!
//! - [`schema`]: the tables, the pragmas (WAL, `synchronous=FULL`) and the schema version;
//! - [`sweeps`]: submitted sweep files and their tasks;
//! - [`leases`]: workers, leases, heartbeats, completion, failure and lease expiry;
//! - [`levels`]: the per-level reports, stored idempotently;
//! - [`lock`]: one coordinator per database (an exclusive lock beside the file);
//! - [`queries`]: the read side: progress, live workers, throughput;
//! - [`results`]: the data set of a sweep (every task's state and levels) and one level's
//!   masks, behind statistics, figures, exports and the report;
//! - [`masks`]: every stored mask of one task.
//!
//! The functions of these modules are blocking and take a `&mut Connection`; async code
//! reaches them only through [`Store::run`] (reads) and [`Store::write`] (writes). A write
//! function opens its work with [`unit`], a savepoint: alone it is a transaction of its own;
//! through [`Store::write`] it joins a group of concurrent writes that share one durable
//! commit ([`group`]). Either way it is answered only once it has committed, so an
//! acknowledged report is durable.
//!
//! The store speaks the domain (`shared` and `analysis` types, its own [`StoreError`]) and
//! knows nothing of the wire: masks are stored as the service encodes them, and the service
//! alone maps results and errors to gRPC (a test checks that nothing here imports `proto`).

pub mod control;
pub mod group;
pub mod leases;
pub mod levels;
pub mod lock;
pub mod masks;
pub mod queries;
pub mod results;
pub mod schema;
pub mod sql;
pub mod sweeps;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, Savepoint};

/// Begins one write's unit of work: a transaction of its own when the connection has none,
/// a savepoint within the group's transaction under [`Store::write`]. Dropped without
/// `commit`, it rolls back its own changes only.
pub fn unit(conn: &mut Connection) -> rusqlite::Result<Savepoint<'_>> {
    conn.savepoint()
}

/// Why the store did not do what was asked: a refusal (decided before anything is written,
/// so nothing changed) or a failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An unknown worker, lease, sweep, task or level.
    #[error("{0}")]
    NotFound(String),
    /// The state does not allow it: a lease expired, ended or reassigned; a worker at its
    /// lease limit; a task completed before its levels are stored; a task of another engine.
    #[error("{0}")]
    Conflict(String),
    /// A request that cannot be stored as given.
    #[error("{0}")]
    Invalid(String),
    /// A level already stored with different content.
    #[error("{0}")]
    AlreadyExists(String),
    /// Two requests raced; the loser may retry.
    #[error("{0}")]
    Raced(String),
    #[error("cannot create the database folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database {db} is in use by another coordinator ({holder}); two coordinators on one \
         database would hand out the same tasks: stop the other one, or use another --db"
    )]
    Locked { db: PathBuf, holder: String },
    #[error("cannot lock the database with {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, this coordinator knows version {expected}"
    )]
    UnknownSchema {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
    #[error("{path} is not a coordinator database (it has no schema)")]
    NoSchema { path: PathBuf },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database task failed: {0}")]
    Join(String),
}

#[cfg(test)]
mod error_tests {
    use super::StoreError;
    use rusqlite::ffi;

    fn sqlite(code: i32) -> StoreError {
        StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some("x".into()),
        ))
    }

    #[test]
    fn busy_full_and_io_errors_are_transient_refusals_and_corruption_are_not() {
        for code in [
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_FULL,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_NOMEM,
            ffi::SQLITE_CANTOPEN,
        ] {
            assert!(sqlite(code).is_transient(), "{code}");
        }
        for code in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_MISMATCH,
            ffi::SQLITE_READONLY,
        ] {
            assert!(!sqlite(code).is_transient(), "{code}");
        }
        assert!(StoreError::Join("lost".into()).is_transient());
        assert!(!StoreError::Conflict("expired".into()).is_transient());
        assert!(!StoreError::Corrupt("bad json".into()).is_transient());
    }
}

impl StoreError {
    /// Whether the failure may go away by itself (the database busy or locked past the busy
    /// timeout, a full disk, an I/O error, a blocking task lost): callers should retry later,
    /// and the service answers UNAVAILABLE so that workers back off and retry instead of
    /// giving up. Refusals and corrupt or foreign data are not transient.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                ErrorCode::DatabaseBusy
                    | ErrorCode::DatabaseLocked
                    | ErrorCode::DiskFull
                    | ErrorCode::SystemIoFailure
                    | ErrorCode::OutOfMemory
                    | ErrorCode::CannotOpen
                    | ErrorCode::FileLockingProtocolFailed
            ),
            StoreError::Join(_) => true,
            _ => false,
        }
    }
}

/// The coordinator's database. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    writes: Arc<group::Queue>,
    path: PathBuf,
    /// The exclusive lock of a serving store (none for read-only opens).
    _lock: Option<Arc<lock::DbLock>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating when missing, with its folder) a database for serving, holding its
    /// exclusive lock ([`lock`]): a second coordinator on the same file is refused. Blocking.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let held = lock::DbLock::acquire(path)?;
        let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        schema::prepare(&mut conn, path)?;
        let mut store = Store::wrap(conn, path);
        store._lock = Some(Arc::new(held));
        Ok(store)
    }

    /// Opens an existing database read-only (`SQLITE_OPEN_READ_ONLY`), e.g. for `status --db`
    /// while a coordinator serves from it. Blocking.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        schema::check_read_only(&conn, path)?;
        Ok(Store::wrap(conn, path))
    }

    fn wrap(conn: Connection, path: &Path) -> Store {
        Store {
            conn: Arc::new(Mutex::new(conn)),
            writes: Arc::default(),
            path: path.to_path_buf(),
            _lock: None,
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on tokio's blocking pool: the async caller never blocks.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic inside `f` rolled its transaction back when unwinding: the connection
            // is still usable.
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| E::from(StoreError::Join(e.to_string())))?
    }

    /// Runs the write `f` (a function that opens its work with [`unit`]) in the next group of
    /// writes and returns once that group has committed ([`group`]): concurrent writes share
    /// one disk flush. The async caller never blocks.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.writes.write(&self.conn, f).await
    }

    /// The groups and writes committed through [`Store::write`] so far.
    pub fn group_stats(&self) -> group::CommitStats {
        self.writes.stats()
    }

    /// Runs `f` with the connection on the calling thread (for blocking contexts only).
    pub fn run_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E>,
    {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut conn)
    }
}
