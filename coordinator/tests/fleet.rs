//! Faults of the fleet beyond kills and network cuts, each injected for real: a LeaseTask reply
//! lost on the wire (a TCP proxy that cuts the connection as the reply starts), a second
//! process holding the database's write lock for longer than the busy timeout, a database
//! whose files cannot grow (a file-size limit on the coordinator process, as a full disk
//! does), a forward jump of the coordinator's wall clock (libfaketime), a worker whose
//! heartbeats go on while it stores nothing (the stall watchdog), a task whose stored spec is
//! damaged while leases are open, floods of requests and sockets under a memory bound, and
//! SIGPIPE (a peer gone while a process writes to it).
//!
//! After each, no attempt was charged that was not the task's, nothing acknowledged was lost,
//! and the stored results equal an uninterrupted `worker train` where a real worker trained.
//! The scenarios run one at a time (a lock below), as they time faults against training.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::*;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh database, its folder, and a free port.
fn place() -> (tempfile::TempDir, PathBuf, u16) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let db = dir.path().join("c.db");
    (dir, db, free_port())
}

fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// One value from the database, read by a connection of the test's own.
fn query_i64(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).expect("open the database");
    conn.busy_timeout(Duration::from_secs(20)).unwrap();
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Attempts charged to the tasks, and leases that ended other than completed or returned.
fn charged(db: &Path) -> (i64, i64) {
    (
        query_i64(db, "SELECT COALESCE(SUM(attempts), 0) FROM tasks"),
        query_i64(
            db,
            "SELECT COUNT(*) FROM leases WHERE outcome IN ('failed', 'expired')",
        ),
    )
}

/// A coordinator (its command adjusted by `configure`) with 3 s leases and one attempt per
/// task, the slow sweep submitted, and a worker that has stored the first level.
struct SlowRun {
    _dir: tempfile::TempDir,
    db: PathBuf,
    port: u16,
    sweep: PathBuf,
    server: Proc,
    worker: Proc,
}

async fn slow_run(configure: impl FnOnce(&mut std::process::Command)) -> SlowRun {
    let (dir, db, port) = place();
    let server = coordinator_with(
        dir.path(),
        &db,
        port,
        &["--lease-seconds", "3", "--max-attempts", "1"],
        configure,
    );
    let sweep = write_sweep(dir.path(), "slow", SLOW_SWEEP);
    submit_file(&sweep, &url(port));
    let worker = worker(dir.path(), &url(port), "w", &[]);
    wait_until(Duration::from_secs(120), "a stored level", || async {
        levels_done(&url(port), "slow").await >= 1
    })
    .await;
    SlowRun {
        _dir: dir,
        db,
        port,
        sweep,
        server,
        worker,
    }
}

impl SlowRun {
    /// After the fault: the worker exits cleanly, the task is done, no attempt was charged and
    /// the results equal an uninterrupted `worker train`. Returns the coordinator's log.
    async fn assert_unharmed(&mut self) -> String {
        let exit = self.worker.wait_for_exit(Duration::from_secs(180));
        let log = self.server.log_text();
        assert!(
            exit.is_some_and(|s| s.success()),
            "{}",
            self.worker.log_text()
        );
        let status = sweep_status(&url(self.port), "slow").await.expect("status");
        assert_eq!((status.done, status.failed), (1, 0), "{log}");
        assert_eq!(charged(&self.db), (0, 0), "an attempt was charged: {log}");
        assert_same_as_worker_train(&self.db, &self.sweep, "slow", 1);
        log
    }
}

/// A TCP proxy in front of a coordinator that cuts its first connection as soon as the
/// coordinator starts answering the HTTP/2 stream `stream`: the request has been served (the
/// reply's headers are sent once the handler returned), but the client never sees the reply.
/// Later connections pass unchanged.
struct ReplyCutter {
    port: u16,
    cuts: Arc<AtomicUsize>,
}

impl ReplyCutter {
    fn start(upstream: u16, stream: u32) -> ReplyCutter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let cuts = Arc::new(AtomicUsize::new(0));
        let counted = cuts.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                // A failed accept or connect drops that connection only: the proxy stays up.
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let cut = (n == 0).then_some(stream);
                let counted = counted.clone();
                std::thread::spawn(move || relay(client, server, cut, &counted));
            }
        });
        ReplyCutter { port, cuts }
    }
}

/// Relays one connection: client to server byte for byte, server to client frame by frame
/// (a 9-byte header: 24-bit length, type, flags, 31-bit stream id), cutting both directions at
/// the first HEADERS frame of stream `cut`.
fn relay(client: TcpStream, server: TcpStream, cut: Option<u32>, cuts: &AtomicUsize) {
    let (mut from_client, mut to_server) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
        let _ = to_server.shutdown(Shutdown::Write);
    });
    let (mut from_server, mut to_client) = (server, client);
    let mut header = [0u8; 9];
    while from_server.read_exact(&mut header).is_ok() {
        let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
        let kind = header[3];
        let stream = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
        let mut payload = vec![0; len];
        if from_server.read_exact(&mut payload).is_err() {
            break;
        }
        const HEADERS: u8 = 0x1;
        if Some(stream) == cut && kind == HEADERS {
            cuts.fetch_add(1, Ordering::SeqCst);
            let _ = to_client.shutdown(Shutdown::Both);
            let _ = from_server.shutdown(Shutdown::Both);
            return;
        }
        if to_client.write_all(&header).is_err() || to_client.write_all(&payload).is_err() {
            break;
        }
    }
    let _ = to_client.shutdown(Shutdown::Both);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_reply_gets_the_same_lease_again_and_charges_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, db, port) = place();
    // One attempt: an orphan lease expiring would fail the task outright.
    let server = coordinator(
        dir.path(),
        &db,
        port,
        &["--lease-seconds", "3", "--max-attempts", "1"],
    );
    let sweep = write_sweep(dir.path(), "lost", &tiny_sweep("lost", 1, 5));
    submit_file(&sweep, &url(port));
    // A worker's first call on its connection registers (stream 1); its second, stream 3,
    // is its first LeaseTask.
    let proxy = ReplyCutter::start(port, 3);
    let mut w = worker(dir.path(), &url(proxy.port), "w", &[]);
    let exit = w.wait_for_exit(Duration::from_secs(120));
    assert!(exit.is_some_and(|s| s.success()), "{}", w.log_text());
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        1,
        "the reply was not cut"
    );
    let log = server.log_text();
    assert!(log.contains("lease request repeated"), "{log}");
    let status = sweep_status(&url(port), "lost").await.expect("status");
    assert_eq!((status.done, status.failed), (1, 0), "{log}");
    assert_eq!(charged(&db), (0, 0), "an attempt was charged: {log}");
    assert_eq!(
        query_i64(&db, "SELECT COUNT(*) FROM leases"),
        1,
        "a second lease was made: {log}"
    );
    assert_same_as_worker_train(&db, &sweep, "lost", 1);
}

/// Whether process `pid` ignores SIGPIPE (its `SigIgn` mask in /proc).
fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("a SigIgn line");
    let mask = u64::from_str_radix(mask.trim(), 16).expect("a hex mask");
    mask & (1 << (libc::SIGPIPE - 1)) != 0
}

/// A write to a socket whose peer has gone raises SIGPIPE (hyper writes HTTP/2 with `writev`):
/// with the signal's default action, the lost-reply test above saw the worker killed by it,
/// one run in five. Both binaries must ignore it once running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gone_mid_write_kills_neither_coordinator_nor_worker() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, db, port) = place();
    let server = coordinator(dir.path(), &db, port, &[]);
    // Nothing listens on port 9: the worker is running, retrying its connection.
    let worker = worker(dir.path(), "http://127.0.0.1:9", "w", &[]);
    wait_until(Duration::from_secs(120), "the worker retrying", || async {
        worker.log_text().contains("unreachable")
    })
    .await;
    assert!(
        ignores_sigpipe(server.pid()),
        "the coordinator dies of SIGPIPE"
    );
    assert!(ignores_sigpipe(worker.pid()), "the worker dies of SIGPIPE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_holding_the_write_lock_past_the_busy_timeout_costs_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut run = slow_run(|_| {}).await;
    // A BEGIN IMMEDIATE held for longer than the coordinator's 10 s busy timeout (and four
    // lease durations): every write of the coordinator fails with "database is locked".
    let db_held = run.db.clone();
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&db_held).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_secs(12));
        conn.execute_batch("ROLLBACK").unwrap();
    })
    .await
    .unwrap();
    let log = run.assert_unharmed().await;
    assert!(log.contains("locked"), "the lock was never met: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_cannot_grow_stops_nothing_and_loses_nothing() {
    let _one = ONE_AT_A_TIME.lock().await;
    // SIGXFSZ ignored, as a disk that is full raises no signal: writes past the limit fail
    // with EFBIG, which SQLite reports as a disk I/O error.
    let mut run = slow_run(|command| unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    })
    .await;
    let stored_before = stored_levels(&run.db, "slow");
    // No file of the coordinator may grow past 4 KiB for eight seconds: every commit fails.
    set_file_size_limit(run.server.pid(), 4096);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let refused = run.worker.log_text();
    set_file_size_limit(run.server.pid(), libc::RLIM_INFINITY);
    run.assert_unharmed().await;
    assert!(
        refused.contains("retrying"),
        "the worker met no refusal while the database could not grow: {refused}"
    );
    let after = stored_levels(&run.db, "slow");
    assert_eq!(&after[0][..stored_before[0].len()], &stored_before[0][..]);
}

/// Sets the soft and hard RLIMIT_FSIZE of process `pid` (a child of this test).
fn set_file_size_limit(pid: u32, bytes: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit reads `limit` and writes nothing (null old limit).
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Debian's libfaketime (package `faketime`, which `.ci/test` installs).
fn libfaketime() -> PathBuf {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("libfaketime is missing: install Debian's faketime package (.ci/test does)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_jump_of_the_wall_clock_expires_no_lease() {
    let _one = ONE_AT_A_TIME.lock().await;
    // The coordinator's wall clock reads its offset from a file on every call; its monotonic
    // clock stays real, as on a machine whose time is stepped.
    let clock = tempfile::tempdir().expect("a temp dir");
    let offset = clock.path().join("faketime.rc");
    std::fs::write(&offset, "+0\n").unwrap();
    let preload = libfaketime();
    let mut run = slow_run(|command| {
        command
            .env("LD_PRELOAD", &preload)
            .env("FAKETIME_TIMESTAMP_FILE", &offset)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    })
    .await;
    // Two hours forward at once: on the wall clock every deadline has long passed.
    std::fs::write(&offset, "+7200\n").unwrap();
    let log = run.assert_unharmed().await;
    assert!(log.contains("wall clock jumped"), "no jump was seen: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_heartbeats_but_stores_nothing_is_ended_by_the_watchdog() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, db, port) = place();
    // Leases of a minute, heartbeated: only the watchdog can end this one. Its level 0 took
    // 0.01 s, so the watchdog allows the floor, one second, without a new level.
    let server = coordinator(
        dir.path(),
        &db,
        port,
        &[
            "--lease-seconds",
            "60",
            "--stall-factor",
            "3",
            "--stall-min-seconds",
            "1",
        ],
    );
    let sweep = write_sweep(dir.path(), "hung", &tiny_sweep("hung", 1, 5));
    submit_file(&sweep, &url(port));
    let mut hung = coordinator::testkit::FakeWorker::register(&url(port), "hung")
        .await
        .expect("register");
    let lease = hung.lease().await.unwrap().expect("a lease");
    assert!(hung.report(&lease, 0).await.unwrap());
    // A hung training thread: heartbeats go on, no level comes.
    let started = std::time::Instant::now();
    let refused = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match hung.heartbeat(&lease, 1).await {
            Ok(_) => assert!(
                started.elapsed() < Duration::from_secs(30),
                "the watchdog never ended the lease: {}",
                server.log_text()
            ),
            Err(status) => break status,
        }
    };
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "ended before the floor"
    );
    let log = server.log_text();
    assert!(log.contains("stalled"), "{log}");
    // One attempt charged (the task's lease stalled), and the task is leased again.
    assert_eq!(charged(&db), (1, 1));
    let again = hung.lease().await.unwrap().expect("the task again");
    assert_eq!(again.task_id, lease.task_id);
    assert_eq!(again.resume_level, 1, "its stored level is kept");
}

/// The peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read the status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("a VmHWM line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

/// Lets this test process open many sockets (the soft limit up to the hard one).
fn raise_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit of this process, with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

/// The coordinator's Kubernetes memory limit (deploy/kubernetes/coordinator.yaml).
const KUBERNETES_LIMIT: u64 = 2 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_leave_the_coordinator_up_within_its_memory_and_serving_workers() {
    use proto::v1 as pb;
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, db, port) = place();
    let http_port = free_port();
    let http = format!("127.0.0.1:{http_port}");
    // Long leases: the fake worker's lease of the huge task must outlive the test.
    let server = coordinator(
        dir.path(),
        &db,
        port,
        &["--lease-seconds", "600", "--http", &http],
    );
    let mut client = coordinator::client::connect(&url(port)).await.unwrap();

    // A task too large for this coordinator to check in memory is refused at submission.
    let too_large = "name: huge\nmodel:\n  shape: [4, 20000, 20000, 2]\npruning:\n  levels: 2\n  rate: 0.5\nseeds: 1\n";
    let refused = client
        .submit_sweep(pb::SubmitSweepRequest {
            name: String::new(),
            yaml: too_large.to_string(),
            source: "huge.yaml".to_string(),
            priority: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("limit of"), "{refused:?}");

    // The largest task it accepts (16 M weights), leased by a fake worker first.
    let largest = "name: largest\nmodel:\n  shape: [4, 4000, 4000, 2]\npruning:\n  levels: 2\n  rate: 0.5\nseeds: 1\n";
    write_sweep(dir.path(), "largest", largest);
    submit_file(&dir.path().join("largest.yaml"), &url(port));
    let mut fake = coordinator::testkit::FakeWorker::register(&url(port), "flooder")
        .await
        .unwrap();
    let lease = fake.lease().await.unwrap().expect("the largest task");
    let sweep = write_sweep(dir.path(), "small", &tiny_sweep("small", 4, 5));
    submit_file(&sweep, &url(port));

    // 1. A 60 MiB sweep file of newlines.
    let flood = client
        .submit_sweep(pb::SubmitSweepRequest {
            name: String::new(),
            yaml: "\n".repeat(60 << 20),
            source: "flood.yaml".to_string(),
            priority: None,
        })
        .await
        .unwrap_err();
    assert!(
        flood
            .message()
            .contains("SubmitSweep request is larger than its limit"),
        "{flood:?}"
    );

    // 2. A report of millions of empty masks, over and just under the report limit.
    for (count, refusal) in [
        (6_000_000, "ReportLevel request is larger than its limit"),
        (4_000_000, "refused"),
    ] {
        let report = pb::ReportLevelRequest {
            worker_id: fake.worker_id,
            lease_id: lease.lease_id,
            level: 0,
            metrics: None,
            masks: vec![pb::LayerMask::default(); count],
        };
        let refused = fake.client.report_level(report).await.unwrap_err();
        assert!(
            refused.message().contains(refusal),
            "{count} masks: {refused:?}"
        );
    }

    // 3. A dense report of the largest shape: every weight kept (run-length encoded on the
    //    wire, 16 M indices once decoded), with made-up metrics.
    let dense: Vec<shared::graph::LayerMask> = [(4, 4000), (4000, 4000), (4000, 2)]
        .map(|(i, o)| shared::graph::LayerMask::dense(i, o))
        .to_vec();
    let report = pb::ReportLevelRequest {
        worker_id: fake.worker_id,
        lease_id: lease.lease_id,
        level: 0,
        metrics: coordinator::testkit::synthetic_report(fake.worker_id, &lease, 0)
            .unwrap()
            .metrics,
        masks: proto::convert::masks_to_wire(&dense),
    };
    let stored = fake
        .client
        .report_level(report)
        .await
        .expect("a legal dense report");
    assert!(stored.into_inner().stored);

    // 4. A thousand idle sockets on the page server while a real worker runs the small sweep.
    let allowed = raise_file_limit();
    assert!(
        allowed >= 1_100,
        "this machine allows only {allowed} open files"
    );
    let idle: Vec<TcpStream> = (0..1_000)
        .map(|_| TcpStream::connect(("127.0.0.1", http_port)).expect("connect to the page"))
        .collect();
    let mut w = worker(dir.path(), &url(port), "w", &[]);
    wait_until(Duration::from_secs(120), "the small sweep done", || async {
        sweep_status(&url(port), "small")
            .await
            .is_some_and(|s| s.done == 4)
    })
    .await;
    w.kill();
    drop(idle);

    let peak = peak_memory(server.pid());
    eprintln!("coordinator peak memory: {} MiB", peak >> 20);
    assert!(
        peak < KUBERNETES_LIMIT / 4,
        "the coordinator peaked at {} MiB",
        peak >> 20
    );
    // Still up, still answering, its page too.
    assert!(sweep_status(&url(port), "small").await.is_some());
    let mut page = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
    page.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {http}\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    page.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(server.log_text().contains("coordinator serving"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_with_a_corrupt_stored_spec_does_not_stop_the_other_leases_expiring() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (dir, db, port) = place();
    let server = coordinator(dir.path(), &db, port, &["--lease-seconds", "2"]);
    let sweep = write_sweep(dir.path(), "two", &tiny_sweep("two", 2, 5));
    submit_file(&sweep, &url(port));
    // Two workers lease a task each, store its level 0, then die (no more heartbeats).
    let mut leases = Vec::new();
    for name in ["a", "b"] {
        let mut fake = coordinator::testkit::FakeWorker::register(&url(port), name)
            .await
            .unwrap();
        let lease = fake.lease().await.unwrap().expect("a lease");
        assert!(fake.report(&lease, 0).await.unwrap());
        leases.push(lease);
    }
    // The stored spec of the first task is damaged behind the coordinator's back.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(20)).unwrap();
    conn.execute(
        "UPDATE tasks SET spec_json = '{damaged' WHERE id = ?1",
        [&leases[0].task_id],
    )
    .unwrap();
    drop(conn);
    wait_until(Duration::from_secs(30), "both leases ended", || async {
        query_i64(&db, "SELECT COUNT(*) FROM leases WHERE ended_ms IS NULL") == 0
    })
    .await;
    let state = |id: &str| -> (String, String) {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.query_row(
            "SELECT state, COALESCE(last_error, '') FROM tasks WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (damaged, error) = state(&leases[0].task_id);
    assert_eq!(damaged, "failed", "{}", server.log_text());
    assert!(error.contains("cannot be judged"), "{error}");
    let (healthy, _) = state(&leases[1].task_id);
    assert_eq!(healthy, "pending", "{}", server.log_text());
    assert!(server.log_text().contains("marked failed"));
}
