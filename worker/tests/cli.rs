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

#[test]
fn train_prints_one_json_object_per_level() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let sweep = write_sweep(dir.path(), SWEEP);
    let out = worker(&[
        "train",
        sweep.to_str().unwrap(),
        "--task",
        "1",
        "--with-masks",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
