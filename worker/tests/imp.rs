//! IMP end to end on small networks: masks shrink to the schedule's exact counts, the run is
//! deterministic whatever the thread count, resumption is bit-identical, and stop rules hold;
//! the controls (random pruning, rewinding) keep the same promises.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use shared::graph::LayerMask;
use shared::graph::Status;
use shared::schedule::remaining_counts;
use shared::spec::{DataSpec, Method, PruneSpec, Scope, TaskSpec, TrainSpec};
use worker::imp::{run_task, run_task_on, LevelOutcome, Resume};

fn task(hidden: usize, rate: f64, levels: usize, max_epochs: usize, seed: u64) -> TaskSpec {
    let shape = vec![4, hidden, hidden, 2];
    let weights = shared::schedule::weight_count(&shape);
    let target = (weights as f64 * (1.0 - rate).powi(levels as i32)).round() as usize;
    TaskSpec {
        data: DataSpec {
            samples: 400,
            ..DataSpec::protocol()
        },
        shape,
        extension_level: None,
        train: TrainSpec {
            learning_rate: 1e-2,
            max_epochs,
            patience: 10,
            ..TrainSpec::protocol()
        },
        prune: PruneSpec {
            scope: Scope::Global,
            method: Default::default(),
            rate,
            levels,
            target,
            remaining: remaining_counts(weights, rate, levels, target),
            stop_at_first_degraded: false,
            stop_at_first_split: false,
        },
        seed,
    }
}

fn run(spec: &TaskSpec, resume: Resume) -> Vec<LevelOutcome> {
    let mut out = Vec::new();
    run_task(spec, resume, &AtomicBool::new(false), |level| {
        out.push(level);
        ControlFlow::Continue(())
    })
    .expect("the task runs");
    out
}

#[test]
fn masks_shrink_to_the_exact_schedule_and_reach_the_target() {
    let spec = task(16, 0.5, 4, 40, 1);
    let levels = run(&spec, Resume::default());
    assert_eq!(levels.len(), 5);
    for (l, outcome) in levels.iter().enumerate() {
        assert_eq!(outcome.metrics.level, l);
        let kept: usize = outcome.masks.iter().map(|m| m.kept.len()).sum();
        assert_eq!(kept, spec.prune.remaining[l]);
        assert_eq!(outcome.metrics.remaining_weights, kept);
        assert_eq!(
            outcome.metrics.active_weights
                + outcome.metrics.zombie_weights
                + outcome.metrics.inactive_weights,
            kept
        );
        assert!(outcome.metrics.epochs >= 1 && outcome.metrics.epochs <= 40);
        assert_eq!(outcome.metrics.test_accuracy.len(), 2);
    }
    assert_eq!(levels[4].metrics.remaining_weights, spec.prune.target);
    // Masks are nested: IMP only ever removes weights.
    for pair in levels.windows(2) {
        for (a, b) in pair[0].masks.iter().zip(&pair[1].masks) {
            assert!(b.kept.iter().all(|j| a.kept.binary_search(j).is_ok()));
        }
    }
    // The dense network learns both problems well above chance.
    assert!(levels[0].metrics.test_accuracy.iter().all(|&a| a > 0.8));
    assert_eq!(levels[0].metrics.status, Status::Connected);
}

#[test]
fn same_task_gives_identical_results_whatever_the_thread_count() {
    // Wide enough for gemm to split the matrix product over threads.
    let spec = task(256, 0.6, 2, 3, 7);
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        pool.install(|| run(&spec, Resume::default()))
    };
    let one = in_pool(1);
    let two = in_pool(2);
    let four = in_pool(4);
    assert_eq!(strip(&one), strip(&two));
    assert_eq!(strip(&one), strip(&four));
}

/// The levels without their training time (the one figure that differs between runs).
fn strip(v: &[LevelOutcome]) -> Vec<(shared::metrics::LevelMetrics, Vec<LayerMask>)> {
    v.iter()
        .map(|o| {
            let mut m = o.metrics.clone();
            m.seconds = 0.0;
            (m, o.masks.clone())
        })
        .collect()
}

#[test]
fn changing_the_thread_count_between_levels_changes_no_bit() {
    // As a worker lending idle cores does: every level asks for its pool, and the thread
    // count changes from level to level (3, 1, 2, 4 threads).
    let spec = task(256, 0.6, 3, 3, 7);
    let pool = |threads| {
        Arc::new(
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool"),
        )
    };
    let one = pool(1).install(|| run(&spec, Resume::default()));
    let pools: Vec<Arc<rayon::ThreadPool>> = [3, 1, 2, 4].into_iter().map(pool).collect();
    let asked = AtomicUsize::new(0);
    let level_pool = |_: &_| {
        Some(Arc::clone(
            &pools[asked.fetch_add(1, Ordering::Relaxed) % 4],
        ))
    };
    let mut changing = Vec::new();
    run_task_on(
        &spec,
        Resume::default(),
        &AtomicBool::new(false),
        &level_pool,
        |level| {
            changing.push(level);
            ControlFlow::Continue(())
        },
    )
    .expect("the task runs");
    assert_eq!(asked.load(Ordering::Relaxed), 4, "one pool per level");
    assert_eq!(strip(&one), strip(&changing));
}

#[test]
fn resuming_from_a_stored_mask_matches_the_uninterrupted_run() {
    let spec = task(12, 0.4, 4, 30, 3);
    let full = run(&spec, Resume::default());
    let resumed = run(
        &spec,
        Resume {
            level: 3,
            previous_masks: Some(full[2].masks.clone()),
        },
    );
    assert_eq!(resumed.len(), 2);
    for (a, b) in full[3..].iter().zip(&resumed) {
        assert_eq!(a.masks, b.masks);
        let (mut ma, mut mb) = (a.metrics.clone(), b.metrics.clone());
        ma.seconds = 0.0;
        mb.seconds = 0.0;
        assert_eq!(ma, mb);
    }
}

#[test]
fn resume_with_a_mask_of_the_wrong_count_is_refused() {
    let spec = task(8, 0.4, 3, 5, 0);
    let full = run(&spec, Resume::default());
    let err = run_task(
        &spec,
        Resume {
            level: 3,
            previous_masks: Some(full[0].masks.clone()),
        },
        &AtomicBool::new(false),
        |_| ControlFlow::Continue(()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("keeps"), "{err}");
}

#[test]
fn stop_at_first_degraded_ends_the_run_at_that_level() {
    // Pruning to 6 weights cannot keep 4 inputs and 2 outputs connected.
    let mut spec = task(8, 0.6, 5, 20, 2);
    spec.prune.stop_at_first_degraded = true;
    let levels = run(&spec, Resume::default());
    let last = levels.last().expect("at least level 0");
    assert_eq!(last.metrics.status, Status::Degraded);
    assert!(levels[..levels.len() - 1]
        .iter()
        .all(|o| o.metrics.status != Status::Degraded));
}

#[test]
fn cancel_stops_training() {
    let spec = task(8, 0.5, 2, 1000, 0);
    let err = run_task(&spec, Resume::default(), &AtomicBool::new(true), |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(matches!(err, worker::imp::ImpError::Cancelled));
}

#[test]
fn a_diverging_run_is_an_error_naming_level_and_epoch() {
    let mut spec = task(8, 0.5, 2, 50, 0);
    spec.train.learning_rate = 1e30;
    let err = run_task(&spec, Resume::default(), &AtomicBool::new(false), |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(
        matches!(err, worker::imp::ImpError::Diverged { level: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("diverged"));
}

// ------------------------------------------------------------------------------------------
// The controls: random pruning and rewinding.

/// The levels' kept weights per layer.
fn per_layer(levels: &[LevelOutcome]) -> Vec<Vec<usize>> {
    levels
        .iter()
        .map(|o| o.masks.iter().map(|m| m.kept.len()).collect())
        .collect()
}

fn resumed_at(spec: &TaskSpec, full: &[LevelOutcome], level: usize) -> Vec<LevelOutcome> {
    run(
        spec,
        Resume {
            level,
            previous_masks: Some(full[level - 1].masks.clone()),
        },
    )
}

#[test]
fn random_pruning_keeps_the_schedule_and_removes_only_kept_weights() {
    for scope in [Scope::Global, Scope::Layerwise] {
        let mut magnitude = task(16, 0.5, 3, 10, 1);
        magnitude.prune.scope = scope;
        let mut random = magnitude.clone();
        random.prune.method = Method::Random;
        let by_magnitude = run(&magnitude, Resume::default());
        let at_random = run(&random, Resume::default());
        assert_eq!(at_random.len(), 4);
        for (l, outcome) in at_random.iter().enumerate() {
            let kept: usize = outcome.masks.iter().map(|m| m.kept.len()).sum();
            assert_eq!(kept, random.prune.remaining[l], "{scope:?} level {l}");
        }
        for pair in at_random.windows(2) {
            for (a, b) in pair[0].masks.iter().zip(&pair[1].masks) {
                assert!(b.kept.iter().all(|j| a.kept.binary_search(j).is_ok()));
            }
        }
        // The dense level is the same network; the masks after it are not magnitude's.
        assert_eq!(strip(&by_magnitude)[0], strip(&at_random)[0]);
        assert_ne!(by_magnitude[1].masks, at_random[1].masks, "{scope:?}");
        if scope == Scope::Layerwise {
            // Layer-wise, random removes exactly magnitude's counts from every layer.
            assert_eq!(per_layer(&by_magnitude), per_layer(&at_random));
        }
        // Seeded by the task: the same masks on every run, other masks for another seed.
        assert_eq!(strip(&at_random), strip(&run(&random, Resume::default())));
        let mut other = random.clone();
        other.seed = 2;
        assert_ne!(at_random[1].masks, run(&other, Resume::default())[1].masks);
    }
}

#[test]
fn a_resumed_random_pruning_task_matches_the_uninterrupted_run() {
    let mut spec = task(12, 0.4, 4, 30, 3);
    spec.prune.method = Method::Random;
    let full = run(&spec, Resume::default());
    for level in [1, 3] {
        let resumed = resumed_at(&spec, &full, level);
        assert_eq!(strip(&full[level..]), strip(&resumed), "resumed at {level}");
    }
}

#[test]
fn rewinding_changes_only_the_levels_after_the_dense_one() {
    let protocol = task(12, 0.4, 3, 30, 3);
    let mut rewound = protocol.clone();
    rewound.train.rewind_epochs = 3;
    let reset = run(&protocol, Resume::default());
    let late = run(&rewound, Resume::default());
    assert_eq!(
        strip(&reset)[0],
        strip(&late)[0],
        "the dense level trains as always"
    );
    assert_eq!(
        reset[1].masks, late[1].masks,
        "pruned from the same dense weights"
    );
    assert_ne!(
        reset[1].metrics.test_loss, late[1].metrics.test_loss,
        "level 1 starts from other weights"
    );
    // At 0 the spec is the protocol's, down to its JSON (and so its id).
    let mut zero = protocol.clone();
    zero.train.rewind_epochs = 0;
    assert_eq!(zero.id(), protocol.id());
    assert!(!serde_json::to_string(&zero).unwrap().contains("rewind"));
    assert_ne!(rewound.id(), protocol.id());
}

#[test]
fn a_resumed_rewinding_task_matches_the_uninterrupted_run() {
    // The rewind point is not stored: a resumed task replays the dense level's first epochs.
    let mut spec = task(12, 0.4, 4, 30, 3);
    spec.train.rewind_epochs = 2;
    let full = run(&spec, Resume::default());
    for level in [1, 2, 4] {
        let resumed = resumed_at(&spec, &full, level);
        assert_eq!(strip(&full[level..]), strip(&resumed), "resumed at {level}");
    }
    // Random pruning and rewinding together.
    spec.prune.method = Method::Random;
    let full = run(&spec, Resume::default());
    assert_eq!(strip(&full[3..]), strip(&resumed_at(&spec, &full, 3)));
}

#[test]
fn rewinding_past_the_dense_levels_last_epoch_rewinds_to_that_epoch() {
    // The dense level stops early (patience 10) well before 300 epochs: rewinding to epoch 300
    // rewinds to the weights of its last epoch, exactly as rewinding to that epoch does.
    let mut beyond = task(12, 0.4, 2, 300, 5);
    beyond.train.rewind_epochs = 300;
    let full = run(&beyond, Resume::default());
    let trained = full[0].metrics.epochs;
    assert!(
        trained < 300,
        "the dense level trained all {trained} epochs"
    );
    let mut exact = beyond.clone();
    exact.train.rewind_epochs = trained;
    assert_eq!(strip(&full), strip(&run(&exact, Resume::default())));
    assert_eq!(strip(&full[2..]), strip(&resumed_at(&beyond, &full, 2)));
    // One epoch earlier is another rewind point.
    exact.train.rewind_epochs = trained - 1;
    assert_ne!(
        strip(&full[1..]),
        strip(&run(&exact, Resume::default())[1..])
    );
}

#[test]
fn a_rewind_beyond_max_epochs_is_an_invalid_task() {
    let mut spec = task(8, 0.5, 2, 20, 0);
    spec.train.rewind_epochs = 21;
    let err = run_task(&spec, Resume::default(), &AtomicBool::new(false), |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(err.to_string().contains("rewind_epochs 21"), "{err}");
}
