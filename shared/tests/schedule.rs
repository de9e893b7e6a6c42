//! Pruning arithmetic through the public API: the poster's numbers.

use shared::schedule::{
    extension_shape, extension_width, remaining_counts, resolve, trajectory_counts, weight_count,
    ScheduleError,
};

#[test]
fn poster_extension_widths() {
    let widths: Vec<usize> = (0..=25)
        .map(|i| extension_width(&[4, 8, 8, 2], 0.32, i).unwrap())
        .collect();
    assert_eq!(
        widths,
        [
            8, 10, 13, 16, 20, 25, 31, 38, 47, 57, 70, 85, 104, 127, 154, 188, 229, 278, 337, 410,
            498, 604, 733, 890, 1080, 1310
        ]
    );
    assert_eq!(
        weight_count(&extension_shape(&[4, 8, 8, 2], 0.32, 25).unwrap()),
        1_723_960
    );
    assert_eq!(weight_count(&[4, 8, 8, 2]), 112);
}

#[test]
fn experiment_one_trajectory() {
    let c = trajectory_counts(&[4, 8, 8, 2], 0.32, 25).unwrap();
    assert_eq!((c[0], c[25], c.len()), (1_723_960, 112, 26));
    // The effective rate per level stays close to 0.32.
    for w in c.windows(2) {
        let rate = 1.0 - w[1] as f64 / w[0] as f64;
        assert!((rate - 0.32).abs() < 0.08, "{rate}");
    }
}

#[test]
fn experiment_two_and_three() {
    // Experiment 2: 20 levels to 112 from the widest shape.
    let w = 1_723_960;
    let r = resolve(w, None, Some(20), Some(112)).unwrap();
    assert!((r.rate - (1.0 - (112.0f64 / w as f64).powf(0.05))).abs() < 1e-15);
    let c = remaining_counts(w, r.rate, r.levels, r.target);
    assert_eq!((c[0], c[20]), (w, 112));
    // Experiment 3: level count 0 is the dense network.
    let w = weight_count(&[4, 410, 410, 2]);
    let r = resolve(w, None, Some(0), Some(112)).unwrap();
    assert_eq!((r.levels, r.target, r.rate), (0, w, 0.0));
    assert_eq!(remaining_counts(w, r.rate, r.levels, r.target), vec![w]);
    // And the other way round: rate and target give the levels.
    let r = resolve(1_723_960, Some(0.32), None, Some(112)).unwrap();
    assert_eq!(r.levels, 25);
    let r = resolve(112, Some(0.32), Some(25), None);
    assert!(
        matches!(r, Err(ScheduleError::NoWeightsLeft { .. })),
        "{r:?}"
    );
}
