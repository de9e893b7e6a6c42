//! IMP end to end on small networks: masks shrink to the schedule's exact counts, the run is
//! deterministic whatever the thread count, resumption is bit-identical, and stop rules hold.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use shared::graph::LayerMask;
use shared::graph::Status;
use shared::schedule::remaining_counts;
use shared::spec::{DataSpec, PruneSpec, Scope, TaskSpec, TrainSpec};
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
