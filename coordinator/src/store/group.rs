//! Group commit: concurrent writes share one durable commit.
//!
//! With `synchronous=FULL` every commit waits for the disk, so a coordinator that committed
//! each write on its own served at most one write per disk flush, however many workers were
//! waiting. Here a write is a job queued for the store's connection; whoever finds no flush
//! under way starts one on the blocking pool, and the flush takes every job queued so far,
//! runs them one after another inside a single `BEGIN IMMEDIATE ... COMMIT`, and only then
//! answers each of them. Jobs that arrive during a flush form the next group. Under load the
//! groups grow by themselves, one flush per group instead of one per write; alone, a write is
//! a group of one and costs what it did before.
//!
//! The guarantees of a write are those of a transaction of its own:
//! - **Durable when acknowledged**: no job is answered before the commit that holds it has
//!   returned; if that commit fails, every job of the group gets the failure (nothing of the
//!   group was stored) and callers retry, as after any transient error.
//! - **All or nothing per job**: each write function opens its work with [`super::unit`], a
//!   savepoint, so a job that returns an error (or panics) rolls back its own changes and
//!   nothing else; the jobs before and after it in the group commit as usual.
//! - **In order**: jobs run in the order they were queued, each seeing the ones before it.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::StoreError;

/// Answers a job once its group's commit is known: `None` when it committed.
type Finish = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;
/// A queued write: runs on the connection inside the group's transaction.
type Job = Box<dyn FnOnce(&mut Connection) -> Finish + Send>;

/// The queue of writes waiting for the next group, and whether a flush is under way.
#[derive(Default)]
pub(super) struct Queue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    flushing: bool,
    committed: CommitStats,
}

/// How many groups and writes a store has committed (for the benchmark and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitStats {
    pub groups: u64,
    pub writes: u64,
}

impl Queue {
    /// The groups and writes committed so far.
    pub(super) fn stats(&self) -> CommitStats {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .committed
    }

    /// Queues `f` and waits for the commit of its group; starts a flush when none is running.
    pub(super) async fn write<T, E, F>(
        self: &Arc<Self>,
        conn: &Arc<Mutex<Connection>>,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |c: &mut Connection| {
            let outcome = catch_unwind(AssertUnwindSafe(|| f(c)));
            Box::new(move |commit_error: Option<&rusqlite::Error>| {
                let result = match (outcome, commit_error) {
                    (Err(panic), _) => Err(E::from(StoreError::Join(panic_message(&panic)))),
                    (Ok(_), Some(e)) => Err(E::from(copy_error(e))),
                    (Ok(result), None) => result,
                };
                // The caller may have gone (a cancelled request): its write stands regardless.
                let _ = answer.send(result);
            })
        });
        let start = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.jobs.push_back(job);
            !std::mem::replace(&mut state.flushing, true)
        };
        if start {
            let (queue, conn) = (Arc::clone(self), Arc::clone(conn));
            tokio::task::spawn_blocking(move || queue.flush(&conn));
        }
        answered.await.map_err(|_| {
            E::from(StoreError::Join(
                "the write was not stored: the database could not begin a transaction".into(),
            ))
        })?
    }

    /// Commits groups until the queue is empty, then marks the flush as over.
    fn flush(&self, conn: &Mutex<Connection>) {
        loop {
            let jobs: Vec<Job> = {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if state.jobs.is_empty() {
                    state.flushing = false;
                    return;
                }
                state.jobs.drain(..).collect()
            };
            let count = jobs.len() as u64;
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            let (finishers, committed) = commit_group(&mut conn, jobs);
            drop(conn);
            if committed.is_ok() {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.committed.groups += 1;
                state.committed.writes += count;
            }
            for finish in finishers {
                finish(committed.as_ref().err());
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits it; the finishers answer them afterwards.
fn commit_group(conn: &mut Connection, jobs: Vec<Job>) -> (Vec<Finish>, rusqlite::Result<()>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Nothing ran: dropping the jobs answers each caller that its write was lost (a
        // transient error, retried like a busy database).
        tracing::warn!(error = %e, writes = jobs.len(), "cannot begin a group of writes");
        return (Vec::new(), Err(e));
    }
    let finishers: Vec<Finish> = jobs.into_iter().map(|job| job(conn)).collect();
    let committed = conn.execute_batch("COMMIT");
    if committed.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    (finishers, committed)
}

/// A copy of a commit's failure for each job of its group, keeping whether it is transient.
fn copy_error(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(*code, message.clone()))
        }
        other => StoreError::Join(format!("the commit failed: {other}")),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("the write panicked: {what}")
}

#[cfg(test)]
mod tests {
    use super::super::{unit, Store, StoreError};
    use rusqlite::Connection;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        store
            .run_blocking(|c| c.execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)"))
            .unwrap();
        (dir, store)
    }

    /// A write that stores `v`, then fails when `fail` (after its insert: the insert must roll
    /// back) or panics when `panic`.
    fn put(c: &mut Connection, v: i64, fail: bool, panic: bool) -> Result<i64, StoreError> {
        let tx = unit(c)?;
        tx.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
        if panic {
            panic!("job {v} panics");
        }
        if fail {
            return Err(StoreError::Conflict(format!("job {v} refused")));
        }
        tx.commit()?;
        Ok(v)
    }

    fn stored(store: &Store) -> Vec<i64> {
        store
            .run_blocking(|c| {
                let mut q = c.prepare("SELECT v FROM t ORDER BY v")?;
                let rows = q.query_map([], |r| r.get(0))?;
                rows.collect::<Result<Vec<i64>, _>>()
            })
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_share_commits_and_fail_alone() {
        let (dir, store) = store();
        let mut calls = Vec::new();
        for v in 0..400i64 {
            let store = store.clone();
            calls.push(tokio::spawn(async move {
                let (fail, panic) = (v % 7 == 3, v % 50 == 11);
                store.write(move |c| put(c, v, fail, panic)).await
            }));
        }
        let mut acknowledged = Vec::new();
        for (v, call) in calls.into_iter().enumerate() {
            let v = v as i64;
            match call.await.unwrap() {
                Ok(got) => {
                    assert_eq!(got, v);
                    acknowledged.push(v);
                }
                Err(StoreError::Conflict(m)) => {
                    assert!(v % 7 == 3, "{m}");
                }
                Err(StoreError::Join(m)) => {
                    assert!(v % 50 == 11 && m.contains("panics"), "{v}: {m}");
                }
                Err(e) => panic!("write {v}: {e}"),
            }
        }
        // Exactly the acknowledged writes are stored: the refused and panicked ones rolled back
        // their own insert and nobody else's.
        let expected: Vec<i64> = (0..400).filter(|v| v % 7 != 3 && v % 50 != 11).collect();
        assert_eq!(acknowledged, expected);
        let stats = store.group_stats();
        assert_eq!(stats.writes, 400);
        assert!(
            stats.groups < stats.writes,
            "400 concurrent writes took {} commits",
            stats.groups
        );
        // Durable: a fresh connection on the file sees them all.
        let path = store.path().to_path_buf();
        drop(store);
        let reopened = Store::open(&path).unwrap();
        assert_eq!(stored(&reopened), expected);
        drop(dir);
    }

    #[tokio::test]
    async fn a_write_alone_is_a_group_of_one() {
        let (_dir, store) = store();
        for v in 0..3 {
            assert_eq!(
                store.write(move |c| put(c, v, false, false)).await.unwrap(),
                v
            );
        }
        let stats = store.group_stats();
        assert_eq!((stats.groups, stats.writes), (3, 3));
        assert_eq!(stored(&store), vec![0, 1, 2]);
    }

    #[tokio::test]
    async fn a_failed_commit_answers_every_write_of_its_group_and_keeps_nothing() {
        let (_dir, store) = store();
        // A write that leaves a deferred constraint violated makes the group's COMMIT fail.
        store
            .run_blocking(|c| {
                c.execute_batch(
                    "CREATE TABLE parent (id INTEGER PRIMARY KEY);
                     CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
                     PRAGMA foreign_keys = ON;",
                )
            })
            .unwrap();
        let orphan = store.write(|c| {
            let tx = unit(c)?;
            tx.execute("INSERT INTO t (v) VALUES (100)", [])?;
            tx.execute("INSERT INTO child (p) VALUES (42)", [])?;
            tx.commit()?;
            Ok::<_, StoreError>(())
        });
        let err = orphan.await.unwrap_err();
        assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
        assert!(
            stored(&store).is_empty(),
            "nothing of the failed group is kept"
        );
        // The connection is usable again.
        store.write(|c| put(c, 1, false, false)).await.unwrap();
        assert_eq!(stored(&store), vec![1]);
    }
}
