//! Faults a cluster survives, with real processes killed by the process id the test started:
//! a worker killed mid-task, a worker preempted with SIGTERM, the coordinator killed and
//! restarted, the coordinator unreachable for longer than a lease, many workers at once, and a
//! task that fails everywhere. After each, the stored results equal those of an uninterrupted
//! `worker train` run, level for level and mask for mask.
//!
//! The scenarios run one at a time (a lock below): they time kills against training progress,
//! which two scenarios sharing 2 cores would make needlessly slow.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::*;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A `coordinator serve` process on a fresh database, with one sweep file submitted.
struct Rig {
    dir: tempfile::TempDir,
    db: PathBuf,
    port: u16,
    url: String,
    server: Proc,
    sweep: PathBuf,
}

fn rig(serve_args: &[&str], name: &str, text: &str) -> Rig {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (db, port) = (dir.path().join("c.db"), free_port());
    let url = format!("http://127.0.0.1:{port}");
    let server = coordinator(dir.path(), &db, port, serve_args);
    let sweep = write_sweep(dir.path(), name, text);
    submit_file(&sweep, &url);
    Rig {
        dir,
        db,
        port,
        url,
        server,
        sweep,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_is_resumed_from_the_stored_mask() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Rig {
        dir,
        db,
        port: _,
        url,
        server: _server,
        sweep,
    } = rig(&["--lease-seconds", "2"], "slow", SLOW_SWEEP);

    let mut victim = worker(dir.path(), &url, "victim", &[]);
    wait_until(Duration::from_secs(120), "two stored levels", || async {
        levels_done(&url, "slow").await >= 2
    })
    .await;
    victim.kill();
    let stored_at_kill = levels_done(&url, "slow").await;
    assert!(stored_at_kill < 7, "the task finished before the kill");

    // The lease expires; a new worker resumes at the first level not stored.
    let mut rescuer = worker(dir.path(), &url, "rescuer", &[]);
    let exit = rescuer.wait_for_exit(Duration::from_secs(180));
    assert!(exit.is_some_and(|s| s.success()), "{}", rescuer.log_text());
    let log = rescuer.log_text();
    assert!(
        !log.contains("resume_level=0"),
        "the rescuer started from scratch: {log}"
    );
    let status = sweep_status(&url, "slow").await.expect("status");
    assert_eq!((status.done, status.failed), (1, 0));
    assert_same_as_worker_train(&db, &sweep, "slow", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sent_sigterm_returns_its_lease_and_exits_promptly() {
    let _one = ONE_AT_A_TIME.lock().await;
    // Leases far longer than the test: only a returned lease frees the task in time.
    let Rig {
        dir,
        db,
        port: _,
        url,
        server: _server,
        sweep,
    } = rig(&["--lease-seconds", "600"], "slow", SLOW_SWEEP);

    let mut preempted = worker(dir.path(), &url, "preempted", &[]);
    wait_until(Duration::from_secs(120), "a stored level", || async {
        levels_done(&url, "slow").await >= 1
    })
    .await;
    let sent = Instant::now();
    preempted.signal("TERM");
    let exit = preempted.wait_for_exit(Duration::from_secs(40));
    assert!(
        exit.is_some_and(|s| s.success()),
        "no clean exit after SIGTERM: {}",
        preempted.log_text()
    );
    assert!(sent.elapsed() < Duration::from_secs(40));
    let status = sweep_status(&url, "slow").await.expect("status");
    assert_eq!(
        (status.leased, status.pending, status.failed),
        (0, 1, 0),
        "the lease was not returned: {}",
        preempted.log_text()
    );

    let mut next = worker(dir.path(), &url, "next", &[]);
    let exit = next.wait_for_exit(Duration::from_secs(180));
    assert!(exit.is_some_and(|s| s.success()), "{}", next.log_text());
    assert_same_as_worker_train(&db, &sweep, "slow", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_killed_and_restarted_loses_no_acknowledged_level() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Rig {
        dir,
        db,
        port,
        url,
        mut server,
        sweep,
    } = rig(&["--lease-seconds", "4"], "slow", SLOW_SWEEP);

    let mut survivor = worker(dir.path(), &url, "survivor", &[]);
    wait_until(Duration::from_secs(120), "two stored levels", || async {
        levels_done(&url, "slow").await >= 2
    })
    .await;
    server.kill();
    let before = stored_levels(&db, "slow");
    assert!(before[0].len() >= 2);
    // Down for longer than a lease: the worker keeps training and retries what it cannot
    // report; the restarted coordinator gives open leases time to reconnect.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let _restarted = coordinator(dir.path(), &db, port, &["--lease-seconds", "4"]);

    let exit = survivor.wait_for_exit(Duration::from_secs(180));
    let log = survivor.log_text();
    assert!(exit.is_some_and(|s| s.success()), "{log}");
    assert!(
        !log.contains("lease lost"),
        "the worker lost its lease: {log}"
    );
    let after = stored_levels(&db, "slow");
    assert_eq!(
        &after[0][..before[0].len()],
        &before[0][..],
        "a stored level changed"
    );
    let status = sweep_status(&url, "slow").await.expect("status");
    assert_eq!((status.done, status.failed), (1, 0));
    assert_same_as_worker_train(&db, &sweep, "slow", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_coordinator_is_waited_out_without_double_counting() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Rig {
        dir,
        db,
        port: _,
        url,
        server,
        sweep,
    } = rig(&["--lease-seconds", "2"], "slow", SLOW_SWEEP);

    let mut cut_off = worker(dir.path(), &url, "cut-off", &[]);
    wait_until(Duration::from_secs(120), "a stored level", || async {
        levels_done(&url, "slow").await >= 1
    })
    .await;
    // The coordinator stops answering (its socket stays open) for longer than a lease.
    server.signal("STOP");
    tokio::time::sleep(Duration::from_secs(5)).await;
    server.signal("CONT");

    let exit = cut_off.wait_for_exit(Duration::from_secs(180));
    assert!(exit.is_some_and(|s| s.success()), "{}", cut_off.log_text());
    let status = sweep_status(&url, "slow").await.expect("status");
    assert_eq!((status.done, status.failed, status.levels_done), (1, 0, 7));
    assert_same_as_worker_train(&db, &sweep, "slow", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_workers_at_once_lose_no_report() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Rig {
        dir,
        db,
        port: _,
        url,
        server: _server,
        sweep: _,
    } = rig(&[], "many", &tiny_sweep("many", 96, 5));

    let mut workers: Vec<Proc> = (0..32)
        .map(|i| worker(dir.path(), &url, &format!("w{i:02}"), &[]))
        .collect();
    for w in &mut workers {
        let exit = w.wait_for_exit(Duration::from_secs(240));
        assert!(
            exit.is_some_and(|s| s.success()),
            "{}: {}",
            w.name,
            w.log_text()
        );
        let log = w.log_text().to_lowercase();
        assert!(!log.contains("locked"), "{}: {log}", w.name);
    }
    let status = sweep_status(&url, "many").await.expect("status");
    assert_eq!((status.done, status.failed), (96, 0));
    assert_eq!(status.levels_done, 96 * 4);
    let stored = stored_levels(&db, "many");
    assert!(stored.iter().all(|levels| levels.len() == 4));
    let busy = workers
        .iter()
        .filter(|w| w.log_text().contains("task done"))
        .count();
    assert!(busy >= 8, "only {busy} of 32 workers got work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failing_on_every_worker_is_marked_failed_with_its_error() {
    let _one = ONE_AT_A_TIME.lock().await;
    // A learning rate this large makes every seed diverge on every worker.
    let text =
        tiny_sweep("diverging", 4, 20).replace("learning_rate: 0.01", "learning_rate: 1.0e30");
    let Rig {
        dir,
        db,
        port: _,
        url,
        server: _server,
        sweep: _,
    } = rig(&["--max-attempts", "2"], "diverging", &text);

    let mut a = worker(dir.path(), &url, "a", &[]);
    let mut b = worker(dir.path(), &url, "b", &[]);
    for w in [&mut a, &mut b] {
        let exit = w.wait_for_exit(Duration::from_secs(120));
        assert!(exit.is_some_and(|s| s.success()), "{}", w.log_text());
    }
    let status = sweep_status(&url, "diverging").await.expect("status");
    assert_eq!((status.done, status.failed), (0, 4));
    assert_eq!(status.failures.len(), 4);
    for failure in &status.failures {
        assert_eq!(failure.attempts, 2);
        assert!(failure.error.contains("diverged"), "{}", failure.error);
    }
    let shown = coordinator_cli(&["status", "diverging", "--db", &db.display().to_string()]);
    assert!(shown.contains("diverged"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_coordinator_on_the_same_database_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut rig = rig(&[], "locked", &tiny_sweep("locked", 1, 2));
    let args: Vec<String> = [
        "serve",
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
        "--db",
        &rig.db.display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let mut second = Proc::spawn("second", &bin("coordinator"), &args, rig.dir.path());
    let status = second
        .wait_for_exit(Duration::from_secs(20))
        .expect("the second coordinator exits instead of serving");
    assert!(!status.success());
    let log = second.log_text();
    assert!(
        log.contains("in use by another coordinator")
            && log.contains(&format!("pid {}", rig.server.pid())),
        "{log}"
    );
    // The first one still serves, and its lock dies with it: after a kill -9 a new
    // coordinator opens the database at once, with the sweep intact.
    assert!(sweep_status(&rig.url, "locked").await.is_some());
    rig.server.kill();
    let port = free_port();
    let _again = coordinator(rig.dir.path(), &rig.db, port, &[]);
    let status = sweep_status(&format!("http://127.0.0.1:{port}"), "locked").await;
    assert_eq!(status.map(|s| s.total), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_stopped_for_longer_than_a_lease_fails_no_task() {
    let _one = ONE_AT_A_TIME.lock().await;
    let Rig {
        dir,
        db,
        port: _,
        url,
        server,
        sweep,
    } = rig(
        &["--lease-seconds", "2", "--max-attempts", "1"],
        "slow",
        SLOW_SWEEP,
    );
    let mut patient = worker(dir.path(), &url, "patient", &[]);
    wait_until(Duration::from_secs(120), "a stored level", || async {
        levels_done(&url, "slow").await >= 1
    })
    .await;
    // SIGSTOP for three lease durations: no heartbeat is answered meanwhile. After SIGCONT
    // the expiry loop sees the gap and gives the open lease grace instead of expiring it,
    // which with --max-attempts 1 would fail the task.
    server.signal("STOP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    server.signal("CONT");
    let exit = patient.wait_for_exit(Duration::from_secs(180));
    assert!(exit.is_some_and(|s| s.success()), "{}", patient.log_text());
    let status = sweep_status(&url, "slow").await.expect("status");
    assert_eq!(
        (status.done, status.failed),
        (1, 0),
        "{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("resumed after a gap"),
        "{}",
        server.log_text()
    );
    assert_same_as_worker_train(&db, &sweep, "slow", 1);
}
