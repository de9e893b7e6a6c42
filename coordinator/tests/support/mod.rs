//! Helpers of the process-level tests (cluster runs and faults): the real `coordinator` and
//! `worker` binaries started on loopback ports, killed by the process id the test started, and
//! the stored results compared with `worker train`.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use coordinator::store::{masks, Store};
use proto::v1 as pb;
use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the coordinator crate sits in the repository")
        .to_path_buf()
}

/// Path of a workspace binary: `coordinator` from cargo, `worker` beside it, brought up to
/// date once per test process by `cargo build -p worker` in the same target directory and
/// profile (a no-op when it is fresh), so a test never runs a stale worker built from older
/// sources.
pub fn bin(name: &str) -> PathBuf {
    let coordinator = PathBuf::from(env!("CARGO_BIN_EXE_coordinator"));
    if name == "coordinator" {
        return coordinator;
    }
    let path = coordinator.with_file_name(name);
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile_dir = coordinator.parent().expect("binary in a profile directory");
        let target_dir = profile_dir
            .parent()
            .expect("profile directory in a target directory");
        let mut build = Command::new(env!("CARGO"));
        build
            .args([
                "build",
                "--quiet",
                "-p",
                name,
                "--bin",
                name,
                "--target-dir",
            ])
            .arg(target_dir)
            .current_dir(repo());
        match profile_dir.file_name().and_then(|p| p.to_str()) {
            Some("debug") => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
            None => panic!("no profile in {}", profile_dir.display()),
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {name} failed");
    });
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// A free loopback port (bound then released; the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A child process whose stderr goes to a log file; killed when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, program: &Path, args: &[String], dir: &Path) -> Proc {
        let mut command = Command::new(program);
        command.args(args);
        Proc::spawn_command(name, command, dir)
    }

    /// Starts `command` (its program, arguments and any environment already set) with its
    /// stderr in `dir/NAME.log`.
    pub fn spawn_command(name: &str, mut command: Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create the log file");
        let child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
        Proc {
            name: name.to_string(),
            child,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal by name (TERM, STOP, CONT) to the process the test started.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for the process to exit, at most `limit`; its exit status, or None on timeout.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return Some(status);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `coordinator serve` on `port` with `db`, and waits until it answers.
pub fn coordinator(dir: &Path, db: &Path, port: u16, extra: &[&str]) -> Proc {
    coordinator_with(dir, db, port, extra, |_| {})
}

/// [`coordinator`], with the command adjusted by `configure` first (environment, limits).
pub fn coordinator_with(
    dir: &Path,
    db: &Path,
    port: u16,
    extra: &[&str],
    configure: impl FnOnce(&mut Command),
) -> Proc {
    let mut args = vec![
        "serve".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--db".into(),
        db.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut command = Command::new(bin("coordinator"));
    command.args(&args);
    configure(&mut command);
    let mut proc = Proc::spawn_command("coordinator", command, dir);
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = proc.child.try_wait().expect("poll the coordinator") {
            panic!("the coordinator exited with {status}: {}", proc.log_text());
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the coordinator did not start: {}",
            proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    proc
}

/// Starts `worker --coordinator URL --name NAME --parallel 1 --exit-when-idle` plus `extra`.
pub fn worker(dir: &Path, url: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--coordinator".to_string(),
        url.to_string(),
        "--name".into(),
        name.into(),
        "--parallel".into(),
        "1".into(),
        "--exit-when-idle".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Proc::spawn(name, &bin("worker"), &args, dir)
}

/// Runs `coordinator ARGS` to completion; its stdout, or a panic with its stderr.
pub fn coordinator_cli(args: &[&str]) -> String {
    let out = Command::new(bin("coordinator"))
        .args(args)
        .output()
        .expect("run the coordinator CLI");
    assert!(
        out.status.success(),
        "coordinator {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The status of one sweep from a running coordinator.
pub async fn sweep_status(url: &str, sweep: &str) -> Option<pb::SweepStatus> {
    let mut client = coordinator::client::connect(url).await.ok()?;
    let answer = client
        .status(pb::StatusRequest {
            sweep: Some(sweep.to_string()),
        })
        .await
        .ok()?
        .into_inner();
    answer.sweeps.into_iter().next()
}

/// Polls `check` every 200 ms until it is true; panics with `what` after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One level of one task, as compared between runs: every metric but wall-clock seconds, and
/// the kept indices of every weight matrix.
pub type Level = (Value, Vec<Vec<u32>>);

/// Every stored level of every task of `sweep`, by task index, read-only from the database.
pub fn stored_levels(db: &Path, sweep: &str) -> Vec<Vec<Level>> {
    let store = Store::open_read_only(db).expect("open the database read-only");
    store
        .run_blocking(|conn| -> Result<_, coordinator::store::StoreError> {
            let tasks = coordinator::store::results::sweep_data(conn, sweep)?.tasks;
            let mut out = Vec::new();
            for task in tasks {
                let id = task.spec.id();
                let stored = masks::level_masks(conn, sweep, &id)?;
                assert_eq!(
                    stored.len(),
                    task.levels.len(),
                    "task {id}: masks per level"
                );
                let levels = task
                    .levels
                    .iter()
                    .zip(stored)
                    .map(|(metrics, (level, masks))| {
                        assert_eq!(level, metrics.level);
                        let mut value = serde_json::to_value(metrics).expect("metrics to json");
                        value.as_object_mut().expect("an object").remove("seconds");
                        let masks = proto::convert::masks_from_blob(&masks).expect("stored masks");
                        (value, masks.into_iter().map(|m| m.kept).collect())
                    })
                    .collect();
                out.push(levels);
            }
            Ok(out)
        })
        .expect("read the stored levels")
}

/// The levels `worker train SWEEP --task i --with-masks` prints for every task, two at a time.
pub fn worker_train_levels(sweep: &Path, tasks: usize) -> Vec<Vec<Level>> {
    let run = |i: usize| -> Vec<Level> {
        let out = Command::new(bin("worker"))
            .args([
                "train",
                &sweep.display().to_string(),
                "--task",
                &i.to_string(),
                "--with-masks",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run worker train");
        assert!(
            out.status.success(),
            "worker train --task {i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(|line| {
                let mut value: Value = serde_json::from_str(line).expect("a JSON line");
                let map = value.as_object_mut().expect("an object");
                for key in ["seconds", "task", "id"] {
                    map.remove(key);
                }
                let masks: Vec<Vec<u32>> =
                    serde_json::from_value(map.remove("masks").expect("masks")).expect("masks");
                (value, masks)
            })
            .collect()
    };
    let mut results: Vec<Option<Vec<Level>>> = vec![None; tasks];
    for pair in (0..tasks).collect::<Vec<_>>().chunks(2) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|&i| (i, scope.spawn(move || run(i))))
                .collect();
            for (i, handle) in handles {
                results[i] = Some(handle.join().expect("worker train thread"));
            }
        });
    }
    results
        .into_iter()
        .map(|r| r.expect("every task ran"))
        .collect()
}

/// Writes a sweep file into `dir` and returns its path.
pub fn write_sweep(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write the sweep file");
    path
}

/// A sweep of `seeds` tiny tasks (width 6, 3 pruning levels, a few epochs): seconds each.
pub fn tiny_sweep(name: &str, seeds: usize, epochs: usize) -> String {
    format!(
        "name: {name}\ndata:\n  samples: 200\nmodel:\n  shape: [4, 6, 6, 2]\ntrain:\n  max_epochs: {epochs}\n  learning_rate: 0.01\npruning:\n  rate: 0.4\n  levels: 3\nseeds: {seeds}\n"
    )
}

/// Asserts that the stored levels of `sweep` equal, metric for metric (but seconds) and mask
/// for mask, what `worker train` computes for its `tasks` tasks without interruption.
pub fn assert_same_as_worker_train(db: &Path, sweep_file: &Path, sweep: &str, tasks: usize) {
    let stored = stored_levels(db, sweep);
    let local = worker_train_levels(sweep_file, tasks);
    assert_eq!(stored.len(), tasks);
    for (i, (s, l)) in stored.iter().zip(&local).enumerate() {
        assert_eq!(s.len(), l.len(), "task {i}: level count");
        for (level, (a, b)) in s.iter().zip(l).enumerate() {
            assert_eq!(a.0, b.0, "task {i} level {level}: metrics");
            assert!(a.1 == b.1, "task {i} level {level}: masks differ");
        }
    }
}

/// Levels stored in total by a running coordinator for `sweep`.
pub async fn levels_done(url: &str, sweep: &str) -> u64 {
    sweep_status(url, sweep).await.map_or(0, |s| s.levels_done)
}

/// Submits the sweep file `path` to the coordinator at `url`.
pub fn submit_file(path: &Path, url: &str) {
    coordinator_cli(&["submit", &path.display().to_string(), "--coordinator", url]);
}

/// One task of 7 levels that takes several seconds, so that it can be interrupted mid-run and
/// its lease is still open a few expiry ticks (one a second) after its first level: wide
/// enough, pruned gently enough (every level stays on the dense path or close to it) and
/// trained long enough that with training engine 4 built for x86-64-v3 a level takes about a
/// second and the task about six (at 150 epochs a level it took 1.4 s, and a fault injected
/// after the first level could miss every tick of the open lease).
pub const SLOW_SWEEP: &str = "\
name: slow
data:
  samples: 1000
model:
  shape: [4, 160, 160, 2]
train:
  max_epochs: 400
  patience: 1000
pruning:
  rate: 0.2
  levels: 6
seeds: [3]
";
