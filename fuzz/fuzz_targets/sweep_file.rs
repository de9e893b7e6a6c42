//! Arbitrary bytes as a sweep file: parsing, validation and expansion must return a value or
//! an error, never panic, and stay within the sweep limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::sweep::{Sweep, MAX_PLANNED_LEVELS, MAX_TASKS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sweep) = Sweep::from_yaml(text, "fuzz.yaml") else {
        return;
    };
    // A sweep that parses expands (from_yaml resolves every grid point first).
    let tasks = sweep.expand().expect("a parsed sweep expands");
    assert!(!tasks.is_empty() && tasks.len() <= MAX_TASKS);
    let planned: usize = tasks.iter().map(|t| t.prune.levels + 1).sum();
    assert!(planned <= MAX_PLANNED_LEVELS);
    for task in &tasks {
        let remaining = &task.prune.remaining;
        assert_eq!(remaining.len(), task.prune.levels + 1);
        assert!(remaining.windows(2).all(|w| w[1] <= w[0]));
    }
});
