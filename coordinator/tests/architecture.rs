//! The layering that ARCHITECTURE.md states, enforced: which crate may link what, and which
//! module may import which. Each check reads the real dependency graph (`cargo tree`, offline,
//! from the committed lock file) or the real sources, so breaking a rule fails here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The package names in the normal (non-dev, non-build) dependency tree of `package`.
fn normal_dependencies(package: &str, extra: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(workspace())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "-p", package])
        .args(extra)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = String::from_utf8(out.stdout)
        .expect("utf-8 tree")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    assert!(names.iter().any(|n| n == package), "{names:?}");
    names
}

fn assert_links_none(package: &str, extra: &[&str], forbidden: &[&str]) {
    let deps = normal_dependencies(package, extra);
    for f in forbidden {
        assert!(
            !deps.iter().any(|d| d == f),
            "{package} {extra:?} links {f}; its tree: {deps:?}"
        );
    }
}

#[test]
fn the_coordinator_without_local_run_links_no_training_engine() {
    assert_links_none(
        "coordinator",
        &["--no-default-features"],
        &["dfdx", "gemm", "worker"],
    );
    // And the default build is the one that does (so the check above can fail).
    let deps = normal_dependencies("coordinator", &[]);
    assert!(deps.iter().any(|d| d == "dfdx"), "{deps:?}");
}

#[test]
fn the_science_and_the_analysis_know_no_rpc_database_or_runtime() {
    let forbidden = [
        "tonic",
        "prost",
        "rusqlite",
        "libsqlite3-sys",
        "tokio",
        "dfdx",
    ];
    assert_links_none("shared", &[], &forbidden);
    assert_links_none("analysis", &[], &forbidden);
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Lines of the non-comment code of `dir` that name one of `needles`.
fn mentions(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    for file in sources(dir) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|n| code.contains(n)) {
                hits.push(format!("{}:{}: {}", file.display(), i + 1, code));
            }
        }
    }
    hits
}

#[test]
fn the_store_speaks_the_domain_not_the_wire() {
    let store = workspace().join("coordinator/src/store");
    let hits = mentions(&store, &["proto::", "tonic::", "pb::"]);
    assert!(
        hits.is_empty(),
        "store imports the wire:\n{}",
        hits.join("\n")
    );
    // The check reads real files: the store exists and has SQL in it.
    assert!(!mentions(&store, &["rusqlite"]).is_empty());
}

#[test]
fn only_the_service_and_the_clients_map_to_the_wire() {
    // The results side of the coordinator (tables, figures, exports) lives in `analysis`,
    // which cannot reach the wire (see above); within the coordinator, what renders status
    // works on the store's domain types.
    let render = workspace().join("coordinator/src/render.rs");
    let text = std::fs::read_to_string(&render).unwrap();
    assert!(
        !text.contains("proto::") && !text.contains("pb::"),
        "render.rs uses wire types"
    );
}
