//! `worker train` as a user runs it: the JSON-lines contract on stdout, logs elsewhere, and
//! clear errors for a bad task index or a bad sweep file.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const SWEEP: &str = "\
name: cli-test
data:
  samples: 200
model:
  shape: [4, 6, 6, 2]
train:
  max_epochs: 5
  learning_rate: 0.01
pruning:
  rate: 0.5
  levels: 2
seeds: 2
";

fn write_sweep(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("sweep.yaml");
    std::fs::write(&path, text).expect("write the sweep file");
    path
}

fn worker(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run the worker binary")
}

/// `worker train SWEEP --task TASK --with-masks`, which must succeed.
fn train_with_masks(sweep: &Path, task: &str) -> std::process::Output {
    let out = worker(&[
        "train",
        sweep.to_str().unwrap(),
        "--task",
        task,
        "--with-masks",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn train_prints_one_json_object_per_level() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), SWEEP);
    let out = train_with_masks(&sweep, "1");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3, "levels 0, 1 and 2");
    let weights = 4 * 6 + 6 * 6 + 6 * 2;
    let expected_remaining = [weights, 36, 18];
    for (l, line) in lines.iter().enumerate() {
        for key in [
            "level",
            "remaining_weights",
            "active_weights",
            "zombie_weights",
            "inactive_weights",
            "components",
            "status",
            "test_accuracy",
            "epochs",
            "seconds",
            "masks",
        ] {
            assert!(line.get(key).is_some(), "level {l} lacks {key}: {line}");
        }
        assert_eq!(line["level"], l);
        assert_eq!(line["remaining_weights"], expected_remaining[l]);
        assert_eq!(line["test_accuracy"].as_array().unwrap().len(), 2);
        assert!(["split", "connected", "degraded"].contains(&line["status"].as_str().unwrap()));
        let masks = line["masks"].as_array().unwrap();
        assert_eq!(masks.len(), 3, "one mask per weight matrix");
        let kept: usize = masks.iter().map(|m| m.as_array().unwrap().len()).sum();
        assert_eq!(kept, expected_remaining[l]);
        // Sorted flat indices o * fan_in + i within each matrix.
        let limits = [4 * 6, 6 * 6, 6 * 2];
        for (m, limit) in masks.iter().zip(limits) {
            let idx: Vec<u64> = m
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert!(idx.windows(2).all(|w| w[0] < w[1]));
            assert!(idx.iter().all(|&i| i < limit));
        }
    }
    // Logs went to stderr, not stdout.
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn train_is_deterministic_across_runs() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), SWEEP);
    let strip = |out: std::process::Output| -> Vec<Value> {
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("seconds");
                v
            })
            .collect()
    };
    let a = strip(worker(&[
        "train",
        sweep.to_str().unwrap(),
        "--task",
        "0",
        "--with-masks",
    ]));
    let b = strip(worker(&[
        "train",
        sweep.to_str().unwrap(),
        "--task",
        "0",
        "--with-masks",
    ]));
    assert_eq!(a, b);
    let other_seed = strip(worker(&[
        "train",
        sweep.to_str().unwrap(),
        "--task",
        "1",
        "--with-masks",
    ]));
    assert_ne!(a, other_seed);
}

#[test]
fn a_task_index_past_the_end_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), SWEEP);
    let out = worker(&["train", sweep.to_str().unwrap(), "--task", "9"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no task 9") && stderr.contains("2 tasks"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_sweep_file_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), &SWEEP.replace("rate: 0.5", "rate: 1.5"));
    let out = worker(&["train", sweep.to_str().unwrap(), "--task", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sweep.yaml") && stderr.contains("rate"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_closed_stdout_ends_train_quietly() {
    // The reader is gone before the first line: every write meets EPIPE.
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), SWEEP);
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["train", sweep.to_str().unwrap(), "--task", "0"])
        .stdout(writer)
        .output()
        .expect("run the worker binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(
        !stderr.contains("Error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// The binary trains with its own allocator (`worker::alloc`), this test with the system's:
/// where buffers live must change no value. The shape is wide enough that the weights, their
/// gradients, gemm's buffers and the activations at batch 64 are all large blocks, and the
/// levels go from dense to sparse (other sizes at every level).
#[test]
fn the_binary_trains_the_same_bits_as_the_library() {
    use std::ops::ControlFlow;
    use std::sync::atomic::AtomicBool;
    use worker::imp::{run_task, Resume};

    const WIDE: &str = "\
name: allocator-test
model:
  shape: [4, 600, 600, 2]
train:
  max_epochs: 2
pruning:
  rate: 0.6
  levels: 5
seeds: 1
";
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), WIDE);
    let out = train_with_masks(&sweep, "0");
    // Compared as text: both sides print through serde_json, whose shortest round-trip form
    // of a float is one text per value, so equal text is equal bits (parsing the binary's
    // floats back could round them).
    let without_seconds = |line: &str| -> String {
        let at = line
            .find("\"seconds\":")
            .expect("every level has its seconds");
        let end = at + line[at..].find([',', '}']).unwrap();
        format!("{}{}", &line[..at], &line[end..])
    };
    let stdout = String::from_utf8(out.stdout).unwrap();
    let binary: Vec<String> = stdout.lines().map(without_seconds).collect();

    let spec = shared::sweep::Sweep::from_path(&sweep)
        .unwrap()
        .expand()
        .unwrap()
        .remove(0);
    let mut library = Vec::new();
    run_task(&spec, Resume::default(), &AtomicBool::new(false), |level| {
        library.push(level);
        ControlFlow::Continue(())
    })
    .unwrap();

    assert_eq!(binary.len(), 6, "levels 0 to 5");
    assert_eq!(library.len(), binary.len());
    // Level 0 trains the hidden matrix dense, the last levels sparse.
    let remaining = |l: usize| library[l].metrics.remaining_weights as f64;
    assert_eq!(remaining(0), 363_600.0);
    assert!(remaining(5) < worker::engine::layout::SPARSE_BELOW * remaining(0));
    for (line, level) in binary.iter().zip(&library) {
        // The line `worker train --with-masks` prints for this level.
        let mut ours = serde_json::to_value(&level.metrics).unwrap();
        let map = ours.as_object_mut().unwrap();
        map.insert("task".into(), serde_json::json!(0));
        map.insert("id".into(), serde_json::json!(spec.id()));
        let masks: Vec<&Vec<u32>> = level.masks.iter().map(|m| &m.kept).collect();
        map.insert("masks".into(), serde_json::json!(masks));
        assert!(
            *line == without_seconds(&ours.to_string()),
            "level {} differs",
            level.metrics.level
        );
    }
}

#[test]
fn data_prints_the_tasks_data_set_as_csv() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(
        dir.path(),
        &SWEEP.replace("  samples: 200\n", "  samples: 200\n  seed: [0, 9]\n"),
    );
    let path = sweep.to_str().unwrap();
    let csv = |args: &[&str]| {
        let out = worker(args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let first = csv(&["data", path]);
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], "split,x0,x1,x2,x3,y0,y1");
    assert_eq!(lines.len(), 1 + 200);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("train,")).count(),
        100
    );
    assert!(lines[101..].iter().all(|l| l.starts_with("test,")));
    // Tasks 0 and 1 (two model seeds) share data seed 0; tasks 2 and 3 have data seed 9.
    assert_eq!(csv(&["data", path, "--task", "1"]), first);
    let other = csv(&["data", path, "--task", "2"]);
    assert_ne!(other, first, "another data seed, another data set");
    assert_eq!(csv(&["data", path, "--set", "data.seed=9"]), other);
    // A task that does not exist is an error naming the file and the count.
    let out = worker(&["data", path, "--task", "4"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no task 4") && err.contains("4 tasks"),
        "{err}"
    );
}
