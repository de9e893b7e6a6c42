//! The shipped sweep files, the errors of bad sweep files, and the determinism of expansion.

use shared::schedule::weight_count;
use shared::spec::TaskSpec;
use shared::sweep::{plan_rows, Sweep, SweepError, MAX_TASKS};
use std::collections::HashSet;
use std::path::PathBuf;

fn sweeps_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sweeps")
}

fn load(name: &str) -> (Sweep, Vec<TaskSpec>) {
    let sweep = Sweep::from_path(&sweeps_dir().join(name)).unwrap_or_else(|e| panic!("{e}"));
    let tasks = sweep.expand().unwrap();
    (sweep, tasks)
}

fn ids(tasks: &[TaskSpec]) -> Vec<String> {
    tasks.iter().map(TaskSpec::id).collect()
}

const POSTER_WIDTHS: [usize; 26] = [
    8, 10, 13, 16, 20, 25, 31, 38, 47, 57, 70, 85, 104, 127, 154, 188, 229, 278, 337, 410, 498,
    604, 733, 890, 1080, 1310,
];

fn check_invariants(tasks: &[TaskSpec]) {
    let unique: HashSet<String> = ids(tasks).into_iter().collect();
    assert_eq!(unique.len(), tasks.len(), "ids are unique");
    for t in tasks {
        let p = &t.prune;
        assert_eq!(p.remaining.len(), p.levels + 1);
        assert_eq!(p.remaining[0], t.weights());
        assert_eq!(*p.remaining.last().unwrap(), p.target);
        assert!(p.remaining.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(t.shape[0], 2 * t.data.problems.len());
        assert_eq!(*t.shape.last().unwrap(), t.data.problems.len());
        // The coordinator stores the spec as JSON and the export recomputes the id from what it
        // reads back: every float (e.g. experiment 3's rate 0.9743746139003141) must survive.
        let back: TaskSpec = serde_json::from_str(&serde_json::to_string(t).unwrap()).unwrap();
        assert_eq!(back.id(), t.id(), "{t:?} changes in a JSON round trip");
    }
}

#[test]
fn every_shipped_file_parses_and_expands() {
    let mut names: Vec<String> = std::fs::read_dir(sweeps_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let (sweep, tasks) = load(&name);
        assert_eq!(
            format!("{}.yaml", sweep.name),
            name,
            "file name matches sweep name"
        );
        assert!(sweep.description.is_some());
        assert!(!tasks.is_empty());
        assert!(tasks.len() <= MAX_TASKS);
        check_invariants(&tasks);
        assert_eq!(
            sweep.yaml(),
            std::fs::read_to_string(sweeps_dir().join(&name)).unwrap()
        );
    }
}

#[test]
fn poster_sweeps_stop_at_the_first_degraded_level() {
    for name in [
        "poster-extension.yaml",
        "poster-20-levels.yaml",
        "poster-levels.yaml",
        "thesis-bases.yaml",
    ] {
        let (_, tasks) = load(name);
        assert!(
            tasks.iter().all(|t| t.prune.stop_at_first_degraded),
            "{name} continues past a degraded level"
        );
    }
}

#[test]
fn poster_extension() {
    let (sweep, tasks) = load("poster-extension.yaml");
    assert_eq!(sweep.name, "poster-extension");
    assert_eq!(tasks.len(), 26 * 4);
    for (i, chunk) in tasks.chunks(4).enumerate() {
        let h = POSTER_WIDTHS[i];
        for (seed, t) in chunk.iter().enumerate() {
            assert_eq!(t.shape, vec![4, h, h, 2]);
            assert_eq!(t.extension_level, Some(i));
            assert_eq!(t.seed, seed as u64);
            assert_eq!(t.prune.levels, i);
            assert_eq!(t.prune.target, 112);
            // Trajectory: each level lands on the next smaller shape's count.
            let expected: Vec<usize> = (0..=i)
                .rev()
                .map(|j| weight_count(&[4, POSTER_WIDTHS[j], POSTER_WIDTHS[j], 2]))
                .collect();
            assert_eq!(t.prune.remaining, expected);
            assert_eq!(t.prune.rate, if i == 0 { 0.0 } else { 0.32 });
            // Protocol defaults.
            assert_eq!(t.data.samples, 2000);
            assert_eq!(t.data.test_fraction, 0.5);
            assert_eq!(t.data.seed, 0);
            assert_eq!(t.train.batch_size, 64);
            assert_eq!(t.train.max_epochs, 3000);
            assert_eq!(t.train.patience, 30);
            // As the thesis: a run ends at its first degraded level.
            assert!(t.prune.stop_at_first_degraded);
        }
    }
    assert_eq!(tasks.last().unwrap().weights(), 1_723_960);
}

#[test]
fn poster_20_levels() {
    let (_, tasks) = load("poster-20-levels.yaml");
    assert_eq!(tasks.len(), 26 * 4);
    for (i, chunk) in tasks.chunks(4).enumerate() {
        let t = &chunk[0];
        let w = t.weights();
        assert_eq!(t.shape[1], POSTER_WIDTHS[i]);
        assert_eq!(t.prune.levels, 20);
        assert_eq!(t.prune.target, 112);
        assert_eq!(t.prune.remaining.len(), 21);
        let expected_rate = 1.0 - (112.0 / w as f64).powf(1.0 / 20.0);
        assert!((t.prune.rate - expected_rate).abs() < 1e-12);
        if i == 0 {
            assert_eq!(t.prune.rate, 0.0);
            assert_eq!(t.prune.remaining, vec![112; 21]);
        } else {
            assert!(t.prune.remaining.windows(2).all(|x| x[0] > x[1]));
        }
    }
}

#[test]
fn poster_levels() {
    let (_, tasks) = load("poster-levels.yaml");
    assert_eq!(tasks.len(), 21 * 4);
    let w = weight_count(&[4, 410, 410, 2]);
    for (levels, chunk) in tasks.chunks(4).enumerate() {
        let t = &chunk[0];
        assert_eq!(t.shape, vec![4, 410, 410, 2]);
        assert_eq!(t.extension_level, None);
        assert_eq!(t.prune.levels, levels);
        if levels == 0 {
            assert_eq!(t.prune.remaining, vec![w]);
            assert_eq!(t.prune.target, w);
            assert_eq!(t.prune.rate, 0.0);
        } else {
            assert_eq!(t.prune.target, 112);
            assert_eq!(*t.prune.remaining.last().unwrap(), 112);
        }
    }
}

#[test]
fn quick_and_thesis_bases() {
    let (_, tasks) = load("quick.yaml");
    assert!(tasks.len() <= 20, "quick stays small: {}", tasks.len());
    let (_, tasks) = load("thesis-bases.yaml");
    assert_eq!(tasks.len(), 2 * 26 * 4);
    assert_eq!(tasks[0].shape, vec![4, 20, 2]);
    assert_eq!(tasks[26 * 4].shape, vec![4, 4, 4, 4, 2]);
    assert!(tasks[..26 * 4].iter().all(|t| t.prune.target == 120));
    assert!(tasks[26 * 4..].iter().all(|t| t.prune.target == 56));
}

#[test]
fn the_three_hidden_layer_result_as_the_thesis_reported_it() {
    let (_, literal) = load("thesis-bases.yaml");
    let literal: Vec<&TaskSpec> = literal.iter().filter(|t| t.shape.len() == 5).collect();
    let (_, reported) = load("thesis-3-hidden.yaml");
    assert_eq!(reported.len(), 24 * 4);
    assert_eq!(reported[0].shape, vec![4, 6, 6, 6, 2]);
    for t in &reported {
        // The same networks as the literal run at the same extension level, pruned along the
        // same trajectory but stopped two levels early, at (4, 6, 6, 6, 2)'s 108 weights.
        let ext = t.extension_level.unwrap();
        let same = literal
            .iter()
            .find(|l| l.extension_level == Some(ext) && l.seed == t.seed)
            .unwrap();
        assert_eq!(t.shape, same.shape);
        assert_eq!(t.prune.target, 108);
        assert_eq!(t.prune.levels, ext - 2);
        assert_eq!(t.prune.remaining[..], same.prune.remaining[..ext - 1]);
        assert!(t.prune.stop_at_first_degraded);
    }
}

#[test]
fn trajectory_to_is_checked() {
    let base = "name: bad\nmodel:\n  base: [4, 4, 4, 4, 2]\n  extension_levels: 0..3\n";
    check(
        &format!("{base}pruning:\n  trajectory_to: 2\n"),
        6,
        "pruning.trajectory_to",
        &[
            "extension level 0 is below",
            "start model.extension_levels at 2",
        ],
    );
    check(
        &format!(
            "{base}pruning:\n  schedule: exact\n  levels: 2\n  target: 56\n  trajectory_to: 1\n"
        ),
        9,
        "pruning.trajectory_to",
        &["trajectory schedule only"],
    );
}

#[test]
fn plan_rows_follow_tasks() {
    let (_, tasks) = load("poster-levels.yaml");
    let rows = plan_rows(&tasks);
    assert_eq!(rows.len(), tasks.len());
    for (i, (row, t)) in rows.iter().zip(&tasks).enumerate() {
        assert_eq!(row.index, i);
        assert_eq!(row.id, t.id());
        assert_eq!(row.weights, t.weights());
        assert_eq!(row.levels, t.prune.levels);
        assert_eq!(row.seed, t.seed);
    }
    assert!(serde_json::to_string(&rows[0])
        .unwrap()
        .contains("\"weights\":170560"));
}

// ------------------------------------------------------------------------------------------
// Determinism.

#[test]
fn expansion_is_deterministic() {
    let (_, a) = load("poster-extension.yaml");
    let (_, b) = load("poster-extension.yaml");
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn reordering_the_file_keeps_the_ids() {
    let a = "name: a\nmodel:\n  shapes: [[4, 8, 8, 2], [4, 20, 2]]\npruning:\n  rate: [0.2, 0.32]\n  levels: 0..3\nseeds: 3\ntrain:\n  max_epochs: 100\n  patience: 5\n";
    let b = "# the same sweep, written differently\ntrain: { patience: 5, max_epochs: 100 }\nseeds: [2, 0, 1]\npruning:\n  levels: [3, 1, 2, 0]\n  rate: [0.32, 0.2]\nmodel:\n  shapes:\n    - [4, 20, 2]\n    - [4, 8, 8, 2]\nname: b\n";
    let ta = Sweep::from_yaml(a, "a.yaml").unwrap().expand().unwrap();
    let tb = Sweep::from_yaml(b, "b.yaml").unwrap().expand().unwrap();
    // Level count 0 is the same dense task for both rates: merged.
    assert_eq!(ta.len(), 2 * (2 * 3 + 1) * 3);
    let sa: HashSet<String> = ids(&ta).into_iter().collect();
    let sb: HashSet<String> = ids(&tb).into_iter().collect();
    assert_eq!(sa, sb);
    assert_ne!(ids(&ta), ids(&tb), "order follows the file");
}

#[test]
fn one_more_seed_adds_exactly_its_tasks() {
    let text = std::fs::read_to_string(sweeps_dir().join("poster-extension.yaml")).unwrap();
    assert!(text.contains("\nseeds: 4\n"));
    let more = text.replace("\nseeds: 4\n", "\nseeds: 5\n");
    let old = Sweep::from_yaml(&text, "a.yaml").unwrap().expand().unwrap();
    let new = Sweep::from_yaml(&more, "a.yaml").unwrap().expand().unwrap();
    let old_ids: HashSet<String> = ids(&old).into_iter().collect();
    let added: Vec<&TaskSpec> = new.iter().filter(|t| !old_ids.contains(&t.id())).collect();
    assert_eq!(added.len(), 26);
    assert!(added.iter().all(|t| t.seed == 4));
    assert!(old_ids.iter().all(|id| new.iter().any(|t| &t.id() == id)));
}

// ------------------------------------------------------------------------------------------
// Bad input: every error names the file, a line and the field.

fn bad(yaml: &str) -> SweepError {
    match Sweep::from_yaml(yaml, "sweeps/bad.yaml") {
        Ok(s) => panic!("accepted: {yaml}\n{:?}", s.expand().map(|t| t.len())),
        Err(e) => e,
    }
}

#[track_caller]
fn check(yaml: &str, line: usize, field: &str, words: &[&str]) -> String {
    let e = bad(yaml);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("sweeps/bad.yaml:{line}:")),
        "expected line {line}: {text}"
    );
    assert_eq!(e.line, Some(line), "{text}");
    assert!(e.column.is_some(), "{text}");
    assert_eq!(e.field.as_deref(), Some(field), "{text}");
    assert!(text.contains(&format!(": {field}: ")), "{text}");
    for w in words {
        assert!(text.contains(w), "{text} lacks {w:?}");
    }
    let first = e.message.chars().next().unwrap();
    assert!(!first.is_uppercase(), "messages start lowercase: {text}");
    text
}

const HEAD: &str = "name: bad\nmodel:\n  shape: [4, 16, 16, 2]\n";

#[test]
fn unknown_keys() {
    check(
        "name: bad\nmodle:\n  shape: [4, 8, 2]\n",
        2,
        "modle",
        &["unknown field", "model"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  rat: 0.3\n"),
        6,
        "pruning.rat",
        &["unknown field", "rate"],
    );
    check(
        "name: bad\ndata:\n  problems:\n    - { kind: circles, nois: 0.1 }\n",
        4,
        "data.problems[0].nois",
        &["unknown field"],
    );
    check(
        "name: bad\ndata:\n  problems:\n    - kind: circle\n",
        4,
        "data.problems[0].kind",
        &["unknown variant", "circles"],
    );
    check(
        "name: bad\ndata:\n  problems:\n    - kind: moons\n      factor: 0.3\n",
        5,
        "data.problems[0].factor",
        &["moons takes no factor", "noise"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: 10\n  scope: local\n"),
        7,
        "pruning.scope",
        &["global", "layerwise"],
    );
}

#[test]
fn missing_and_bad_name() {
    let e = bad("model:\n  shape: [4, 8, 2]\n");
    assert!(e.to_string().contains("name"), "{e}");
    check("name: Bad Name\n", 1, "name", &["a-z"]);
}

#[test]
fn rate_outside_unit_interval() {
    let text = check(
        &format!("{HEAD}pruning:\n  levels: 3\n  rate: 1.5\n"),
        6,
        "pruning.rate",
        &["1.5 is outside (0, 1)"],
    );
    assert!(
        text.starts_with("sweeps/bad.yaml:6:3: pruning.rate: 1.5 is outside (0, 1)"),
        "{text}"
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  rate: [0.2, 0]\n"),
        6,
        "pruning.rate[1]",
        &["0 is outside (0, 1)"],
    );
    check(
        "name: bad\nmodel:\n  base: [4, 8, 8, 2]\n  extension_rate: 1.0\n",
        4,
        "model.extension_rate",
        &["outside (0, 1)"],
    );
}

#[test]
fn rate_levels_target_two_of_three() {
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  rate: 0.3\n  target: 10\n"),
        4,
        "pruning",
        &["all given", "exactly two"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n"),
        4,
        "pruning",
        &["only levels is given", "two of rate, levels and target"],
    );
    check(
        &format!("{HEAD}pruning:\n  scope: global\n"),
        4,
        "pruning",
        &["none of rate, levels and target"],
    );
    check(
        "name: bad\nmodel:\n  base: [4, 8, 8, 2]\npruning:\n  schedule: trajectory\n  levels: 3\n",
        6,
        "pruning.levels",
        &["trajectory"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: base\n"),
        6,
        "pruning.target",
        &["needs model.base"],
    );
}

#[test]
fn target_larger_than_the_network() {
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: 10000\n"),
        6,
        "pruning.target",
        &["10000", "[4, 16, 16, 2]", "has 352 weights"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: [10, 10000]\n"),
        6,
        "pruning.target[1]",
        &["10000", "352"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: 0\n"),
        6,
        "pruning.target",
        &["at least 1"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 30\n  rate: 0.9\n"),
        5,
        "pruning.levels",
        &["leaves no weights"],
    );
}

#[test]
fn empty_grids() {
    check(
        &format!("{HEAD}pruning:\n  levels: []\n  target: 10\n"),
        5,
        "pruning.levels",
        &["empty"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: 10\nseeds: 0\n"),
        7,
        "seeds",
        &["empty grid"],
    );
    check(
        &format!("{HEAD}pruning:\n  levels: 3\n  target: 10\nseeds: []\n"),
        7,
        "seeds",
        &["empty"],
    );
    check(
        "name: bad\nmodel:\n  shapes: []\n",
        3,
        "model.shapes",
        &["empty"],
    );
    check(
        "name: bad\nmodel:\n  hidden: []\n",
        3,
        "model.hidden",
        &["empty"],
    );
    check(
        "name: bad\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: []\n",
        4,
        "model.extension_levels",
        &["empty"],
    );
    check(
        "name: bad\ndata:\n  problems: []\n",
        3,
        "data.problems",
        &["empty"],
    );
    check(
        &format!("{HEAD}pruning:\n  rate: [0.3, 0.3]\n  target: 10\n"),
        5,
        "pruning.rate[1]",
        &["twice"],
    );
}

#[test]
fn shapes() {
    check(
        "name: bad\nmodel:\n  shape: [4, 0, 2]\n",
        3,
        "model.shape[1]",
        &["width 0"],
    );
    check(
        "name: bad\nmodel:\n  shapes:\n    - [4, 8, 2]\n    - [4, 8, 0, 2]\n",
        5,
        "model.shapes[1][2]",
        &["width 0"],
    );
    check(
        "name: bad\nmodel:\n  hidden: [8, 0]\n",
        3,
        "model.hidden[1]",
        &["width 0"],
    );
    check(
        "name: bad\nmodel:\n  shape: [3, 8, 2]\n",
        3,
        "model.shape",
        &["4 inputs and 2 outputs"],
    );
    check(
        "name: bad\nmodel:\n  shape: [4, 2]\n",
        3,
        "model.shape",
        &["no hidden layer"],
    );
    check(
        "name: bad\nmodel:\n  base: [4, 8, 9, 2]\n",
        3,
        "model.base",
        &["same width"],
    );
    check(
        "name: bad\nmodel:\n  shape: [4, 8, 2]\n  base: [4, 8, 8, 2]\n",
        4,
        "model.base",
        &["exactly one of"],
    );
    check(
        "name: bad\nmodel:\n  shape: [4, 8, 2]\n  depth: 3\n",
        4,
        "model.depth",
        &["hidden"],
    );
    check(
        "name: bad\nmodel:\n  shape: [4, -8, 2]\n",
        3,
        "model.shape[1]",
        &["invalid type", "usize"],
    );
    check(
        "name: bad\nmodel:\n  shape: [4, 100000000000, 100000000000, 2]\n",
        3,
        "model.shape",
        &["limit"],
    );
    check(
        "name: bad\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: 0..100\n",
        4,
        "model.extension_levels",
        &["limit"],
    );
}

#[test]
fn bad_ranges() {
    for (range, word) in [
        ("5..2", "empty"),
        ("a..b", "not a range"),
        ("0..", "not a range"),
        ("0-20", "not allowed"),
    ] {
        check(
            &format!("{HEAD}pruning:\n  target: 10\n  levels: \"{range}\"\n"),
            6,
            "pruning.levels",
            &[word],
        );
    }
    check(
        &format!("{HEAD}pruning:\n  target: 10\n  levels: 0..5000\n"),
        6,
        "pruning.levels",
        &["limit"],
    );
    check(
        &format!("{HEAD}pruning:\n  target: 10\n  levels: [1, 0..3]\n"),
        6,
        "pruning.levels[1]",
        &["twice"],
    );
}

#[test]
fn train_and_data_values() {
    check(
        &format!("{HEAD}pruning: {{ levels: 2, target: 10 }}\ntrain:\n  batch_size: 0\n"),
        6,
        "train.batch_size",
        &["at least 1"],
    );
    check(
        "name: bad\ndata:\n  test_fraction: 1.5\n",
        3,
        "data.test_fraction",
        &["outside (0, 1)"],
    );
    check(
        "name: bad\ndata:\n  test_fraction: 0\n",
        3,
        "data.test_fraction",
        &["outside (0, 1)"],
    );
    check(
        "name: bad\ntrain:\n  learning_rate: -1\n",
        3,
        "train.learning_rate",
        &["> 0"],
    );
    check(
        "name: bad\ntrain:\n  init: xavier\n",
        3,
        "train.init",
        &["kaiming_normal"],
    );
    check(
        "name: bad\ntrain:\n  max_epochs: lots\n",
        3,
        "train.max_epochs",
        &["invalid type"],
    );
}

#[test]
fn too_many_tasks() {
    let e = bad("name: bad\nseeds: 100000\n");
    let text = e.to_string();
    assert!(text.starts_with("sweeps/bad.yaml: "), "{text}");
    assert!(
        text.contains("2600000 tasks") && text.contains(&MAX_TASKS.to_string()),
        "{text}"
    );
    let e = bad("name: bad\nseeds: 18446744073709551615\npruning: { rate: [0.1, 0.2], target: base }\nmodel: { extension_rate: 0.3 }\n");
    assert!(e.to_string().contains("limit"), "{e}");
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "",
        "# only a comment\n",
        "---\n",
        "[1, 2]",
        "name",
        "name: [a]",
        "name: x\nmodel: 3\n",
        "name: x\nmodel:\n  shape: {a: 1}\n",
        "name: x\npruning: {rate: .nan, levels: 2}\n",
        "name: x\npruning: {rate: .inf, levels: 2}\n",
        "name: x\nseeds: -1\n",
        "name: x\nseeds: [1, x]\n",
        "name: x\nmodel:\n  hidden: [8]\n  depth: 100000000000\n",
        "name: x\nmodel:\n  base: [[4, 8, 8, 2], 3]\n",
        "name: x\nmodel:\n  base: []\n",
        "name: x\n\tbad: tab\n",
        "name: x\ndata: {samples: 1}\n",
        "name: x\ndata: {problems: [{kind: spirals, turns: -1}]}\n",
        "name: x\npruning: {target: [base, base]}\n",
        "name: &a x\nfoo: *a\n",
        "name: x\npruning:\n  levels: {a: 1}\n  target: 3\n",
        "name: x\nmodel:\n  base: [4, 1000000, 1000000, 2]\n",
        "name: x\n'model': {\"shape\": [4, 8, 2]}\npruning: {'levels': 1..=2, \"target\": 16}\n",
    ] {
        let _ = Sweep::from_yaml(text, "odd.yaml").and_then(|s| s.expand());
    }
    // Quoted keys and a..=b ranges are fine.
    let s = Sweep::from_yaml(
        "name: x\n'model': {\"shape\": [4, 8, 2]}\npruning: {'levels': 1..=2, \"target\": 16}\nseeds: 1\n",
        "ok.yaml",
    )
    .unwrap();
    assert_eq!(s.expand().unwrap().len(), 2);
}

#[test]
fn from_path_names_the_file() {
    let e = Sweep::from_path(std::path::Path::new("sweeps/does-not-exist.yaml")).unwrap_err();
    assert!(
        e.to_string().starts_with("sweeps/does-not-exist.yaml: "),
        "{e}"
    );
}

// ------------------------------------------------------------------------------------------
// `data.seed` as a grid axis.

#[test]
fn data_seeds_are_a_grid_axis_outside_the_model_seeds() {
    let one = "name: d\nmodel:\n  shape: [4, 16, 16, 2]\npruning: { levels: [1, 2], target: 50 }\nseeds: 2\n";
    let base = Sweep::from_yaml(one, "d.yaml").unwrap().expand().unwrap();
    assert!(base.iter().all(|t| t.data.seed == 0), "absent: data seed 0");
    // A lone number is the seed itself (as it always was), not a count.
    let three = one.replace("seeds: 2", "seeds: 2\ndata: { seed: 3 }");
    let three = Sweep::from_yaml(&three, "d.yaml")
        .unwrap()
        .expand()
        .unwrap();
    assert!(three.iter().all(|t| t.data.seed == 3));
    // A list and a range expand per pruning point, data seed then model seed (innermost).
    for written in ["[5, 2]", "\"2..3\""] {
        let file = one.replace(
            "seeds: 2",
            &format!("seeds: 2\ndata: {{ seed: {written} }}"),
        );
        let tasks = Sweep::from_yaml(&file, "d.yaml").unwrap().expand().unwrap();
        check_invariants(&tasks);
        assert_eq!(tasks.len(), 2 * 2 * 2, "{written}");
        let want: Vec<u64> = if written.starts_with('[') {
            vec![5, 2]
        } else {
            vec![2, 3]
        };
        let got: Vec<(usize, u64, u64)> = tasks
            .iter()
            .map(|t| (t.prune.levels, t.data.seed, t.seed))
            .collect();
        let expected: Vec<(usize, u64, u64)> = [1, 2]
            .into_iter()
            .flat_map(|l| want.iter().flat_map(move |&d| [(l, d, 0), (l, d, 1)]))
            .collect();
        assert_eq!(got, expected, "{written}");
        let rows = plan_rows(&tasks);
        assert!(rows
            .iter()
            .zip(&tasks)
            .all(|(r, t)| r.data_seed == t.data.seed));
    }
    // Adding a data seed keeps every existing task (same ids) and adds only its own.
    let two = one.replace("seeds: 2", "seeds: 2\ndata: { seed: [0, 1] }");
    let two = Sweep::from_yaml(&two, "d.yaml").unwrap().expand().unwrap();
    let old: HashSet<String> = ids(&base).into_iter().collect();
    let added: Vec<&TaskSpec> = two.iter().filter(|t| !old.contains(&t.id())).collect();
    assert_eq!(added.len(), base.len());
    assert!(added.iter().all(|t| t.data.seed == 1));
}

#[test]
fn bad_data_seeds_are_located() {
    check(
        "name: bad\ndata:\n  seed: [1, 2, 1]\n",
        3,
        "data.seed[2]",
        &["data seed 1 is listed twice"],
    );
    check(
        "name: bad\ndata:\n  seed: -1\n",
        3,
        "data.seed",
        &["not a data seed", "whole number"],
    );
    check(
        "name: bad\ndata:\n  seed: \"4..2\"\n",
        3,
        "data.seed",
        &["is empty"],
    );
    check(
        "name: bad\ndata:\n  seed: lots\n",
        3,
        "data.seed",
        &["not a data seed"],
    );
    check("name: bad\ndata:\n  seed: []\n", 3, "data.seed", &["empty"]);
    check(
        "name: bad\ndata:\n  seed: \"0..20000\"\n",
        3,
        "data.seed",
        &["more than 10000 data seeds"],
    );
    let e = bad("name: bad\ndata: { seed: \"0..9999\" }\nseeds: 20\n");
    assert!(e.to_string().contains("10000 data seeds x 20 seeds"), "{e}");
}

#[test]
fn the_benchmarks_and_studies_sweep_files_parse_and_expand() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench");
    let mut files = vec![root.join("projection.yaml")];
    for entry in std::fs::read_dir(root.join("fidelity")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            files.push(path);
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    for path in files {
        let sweep = Sweep::from_path(&path).unwrap_or_else(|e| panic!("{e}"));
        let tasks = sweep.expand().unwrap();
        check_invariants(&tasks);
        assert!(!tasks.is_empty(), "{}", path.display());
    }
    // The extension study adds seeds 4-7 to poster-extension's own tasks at widths 410 and 498.
    let (_, poster) = load("poster-extension.yaml");
    let study = Sweep::from_path(&root.join("fidelity/extension-410-498.yaml")).unwrap();
    let study = study.expand().unwrap();
    assert_eq!(study.len(), 8);
    let mut same: Vec<TaskSpec> = study.clone();
    for t in &mut same {
        t.seed -= 4;
    }
    let poster_ids: HashSet<String> = ids(&poster).into_iter().collect();
    assert!(same.iter().all(|t| poster_ids.contains(&t.id())));
    assert!(study.iter().all(|t| !poster_ids.contains(&t.id())));
}

// ------------------------------------------------------------------------------------------
// The controls (issue 22): pruning.method, data.coupling, train.rewind_epochs.

/// The task ids of a committed long export (`docs/reproduction/`), in task order.
fn committed_ids(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut ids: Vec<(usize, String)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let id = fields.nth(1).unwrap().to_string();
            (fields.next().unwrap().parse().unwrap(), id)
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().map(|(_, id)| id).collect()
}

#[test]
fn shipped_sweeps_keep_their_task_ids() {
    // The ids the committed results were stored under: the controls at their defaults are
    // left out of a task's JSON, so no id changed.
    for (sweep, export) in [
        (
            "poster-extension.yaml",
            "../docs/reproduction/engine-2/poster-extension-long.csv",
        ),
        (
            "poster-levels.yaml",
            "../docs/reproduction/poster-levels/poster-levels-long.csv",
        ),
    ] {
        let (_, tasks) = load(sweep);
        assert_eq!(ids(&tasks), committed_ids(export), "{sweep}");
        for t in &tasks {
            let json = serde_json::to_string(t).unwrap();
            for key in ["method", "coupling", "rewind_epochs"] {
                assert!(!json.contains(key), "{sweep}: {json}");
            }
        }
    }
}

#[test]
fn the_controls_sweep_crosses_the_ticket_with_its_controls() {
    use shared::spec::Method;
    let (sweep, tasks) = load("controls.yaml");
    assert_eq!(sweep.name, "controls");
    check_invariants(&tasks);
    assert_eq!(tasks.len(), 5 * 2 * 4 * 2 * 4);
    let widths: Vec<usize> = tasks.iter().map(|t| t.shape[1]).collect();
    for w in [38, 57, 85, 127, 229] {
        assert_eq!(widths.iter().filter(|&&x| x == w).count(), 64, "width {w}");
    }
    // Expansion: shape, then method, coupling, rewind, then the seeds.
    let first: Vec<(Method, f64, usize, u64)> = tasks[..9]
        .iter()
        .map(|t| {
            (
                t.prune.method,
                t.data.coupling,
                t.train.rewind_epochs,
                t.seed,
            )
        })
        .collect();
    assert_eq!(first[0], (Method::Magnitude, 0.0, 0, 0));
    assert_eq!(first[4], (Method::Magnitude, 0.0, 10, 0));
    assert_eq!(first[8], (Method::Magnitude, 15.0, 0, 0));
    assert!(tasks[32..64]
        .iter()
        .all(|t| t.prune.method == Method::Random && t.shape[1] == 38));
    assert!(tasks.iter().all(|t| t.prune.stop_at_first_degraded));
    // The reference (magnitude, coupling 0, rewind 0) is poster-extension's own tasks; every
    // other task is new.
    let (_, poster) = load("poster-extension.yaml");
    let poster: HashSet<String> = ids(&poster).into_iter().collect();
    for t in &tasks {
        let reference = t.prune.method == Method::Magnitude
            && t.data.coupling == 0.0
            && t.train.rewind_epochs == 0;
        assert_eq!(poster.contains(&t.id()), reference, "{t:?}");
    }
}

#[test]
fn control_keys_are_grid_axes() {
    let one =
        "name: c\nmodel:\n  shape: [4, 16, 16, 2]\npruning: { levels: 2, target: 50 }\nseeds: 2\n";
    let plain = Sweep::from_yaml(one, "c.yaml").unwrap().expand().unwrap();
    // Written at their defaults, the controls change no task.
    let defaults = one.replace(
        "seeds: 2",
        "seeds: 2\ndata: { coupling: 0 }\ntrain: { rewind_epochs: 0 }",
    );
    let defaults = defaults.replace("target: 50 }", "target: 50, method: magnitude }");
    let same = Sweep::from_yaml(&defaults, "c.yaml")
        .unwrap()
        .expand()
        .unwrap();
    assert_eq!(ids(&plain), ids(&same));
    // A single value or a list; each list multiplies the grid.
    let grid = one
        .replace("target: 50 }", "target: 50, method: [random, magnitude] }")
        .replace(
            "seeds: 2",
            "seeds: 2\ndata: { coupling: [45, 0, 10.5] }\ntrain: { rewind_epochs: 3 }",
        );
    let tasks = Sweep::from_yaml(&grid, "c.yaml").unwrap().expand().unwrap();
    check_invariants(&tasks);
    assert_eq!(tasks.len(), 2 * 3 * 2);
    assert_eq!(tasks[0].prune.method, shared::spec::Method::Random);
    let couplings: Vec<f64> = tasks.iter().step_by(2).map(|t| t.data.coupling).collect();
    assert_eq!(couplings, [45.0, 0.0, 10.5, 45.0, 0.0, 10.5]);
    assert!(tasks.iter().all(|t| t.train.rewind_epochs == 3));
    let e = bad("name: bad\nseeds: 100\ndata: { coupling: [0, 10, 20, 30, 40, 50, 60, 70, 80] }\ntrain: { rewind_epochs: [0, 1, 2, 3, 4] }\npruning: { method: [magnitude, random] }\nmodel: { extension_levels: 1..25 }\n");
    assert!(
        e.to_string()
            .contains("25 shapes x 1 pruning settings x 2 methods x 9 couplings x 5 rewinds x 1 data seeds x 100 seeds"),
        "{e}"
    );
}

#[test]
fn bad_control_values_are_located() {
    let head = "name: bad\nmodel:\n  shape: [4, 16, 16, 2]\npruning:\n  levels: 2\n  target: 50\n";
    check(
        &format!("{head}  method: lottery\n"),
        7,
        "pruning.method",
        &["not a pruning method", "magnitude, random"],
    );
    check(
        &format!("{head}  method: [random, random]\n"),
        7,
        "pruning.method[1]",
        &["method random is listed twice"],
    );
    check(
        &format!("{head}  method: 1\n"),
        7,
        "pruning.method",
        &["not a pruning method"],
    );
    for (value, words) in [
        ("91", &["91", "[0, 90] degrees"][..]),
        ("-5", &["-5", "[0, 90]"][..]),
        (".nan", &["NaN", "finite"][..]),
        (".inf", &["finite"][..]),
        ("lots", &["not an angle"][..]),
        ("[]", &["empty"][..]),
    ] {
        check(
            &format!("{head}data:\n  coupling: {value}\n"),
            8,
            "data.coupling",
            words,
        );
    }
    check(
        &format!("{head}data:\n  coupling: [0, 15, 0]\n"),
        8,
        "data.coupling[2]",
        &["coupling 0 is listed twice"],
    );
    check(
        "name: bad\ndata:\n  problems:\n    - { kind: moons }\n  coupling: 30\nmodel:\n  shape: [2, 8, 1]\n",
        5,
        "data.coupling",
        &["at least two problems"],
    );
    for (value, words) in [
        ("-1", &["whole number of epochs"][..]),
        ("1.5", &["whole number of epochs"][..]),
        (
            "3001",
            &["3001 epochs is more than train.max_epochs 3000"][..],
        ),
        ("[2, 2]", &["listed twice"][..]),
    ] {
        let field = if value.starts_with('[') {
            "train.rewind_epochs[1]"
        } else {
            "train.rewind_epochs"
        };
        check(
            &format!("{head}train:\n  rewind_epochs: {value}\n"),
            8,
            field,
            words,
        );
    }
    check(
        &format!("{head}train:\n  max_epochs: 20\n  rewind_epochs: [5, 25]\n"),
        9,
        "train.rewind_epochs[1]",
        &["more than train.max_epochs 20"],
    );
    // Rewinding needs a level after the dense one.
    check(
        "name: bad\nmodel:\n  shape: [4, 16, 16, 2]\npruning:\n  levels: [0, 2]\n  target: 50\ntrain:\n  rewind_epochs: [0, 5]\n",
        8,
        "train.rewind_epochs[1]",
        &["rewinding 5 epochs needs pruning levels", "[4, 16, 16, 2] has 0"],
    );
    check(
        "name: bad\ntrain:\n  rewind_epochs: 5\n",
        3,
        "train.rewind_epochs",
        &["needs pruning levels", "[4, 8, 8, 2]"],
    );
    // Unknown keys still name the new ones.
    check(
        &format!("{head}  methods: random\n"),
        7,
        "pruning.methods",
        &["unknown field", "method"],
    );
}
