//! What submitting a sweep file means: parse and expand it, then compare its tasks with those
//! already stored under the same name.
//!
//! The same file again adds nothing. A changed file may only add tasks: every stored task id
//! must still come out of the new expansion (a task id is a hash of all its settings, so a
//! missing id means the settings of an existing task changed), otherwise it is refused.

use std::collections::{HashMap, HashSet};

use shared::spec::TaskSpec;
use shared::sweep::Sweep;

use crate::store::StoreError;

/// One task of an expanded sweep, ready to store.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: String,
    /// Position in the sweep's expansion.
    pub idx: usize,
    pub spec_json: String,
    /// Levels 0..=prune.levels.
    pub levels_planned: usize,
    /// The expected cost of all its levels (`shared::cost`).
    pub cost: f64,
}

/// A parsed and expanded sweep file.
#[derive(Debug, Clone)]
pub struct ExpandedSweep {
    pub name: String,
    pub yaml: String,
    pub tasks: Vec<NewTask>,
}

/// How a submission relates to what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// Indices into the expansion's tasks of the tasks to add.
    pub added: Vec<usize>,
    /// Tasks of the expansion already stored.
    pub existing: usize,
}

/// Parses and expands a sweep file. `expected_name`, when not empty, must be the file's name.
pub fn expand(yaml: &str, source: &str, expected_name: &str) -> Result<ExpandedSweep, StoreError> {
    let source = if source.is_empty() {
        "<submitted>"
    } else {
        source
    };
    let sweep = Sweep::from_yaml(yaml, source).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if !expected_name.is_empty() && expected_name != sweep.name {
        return Err(StoreError::Invalid(format!(
            "{source}: the file names sweep {:?}, not {expected_name:?}",
            sweep.name
        )));
    }
    let specs = sweep
        .expand()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let tasks = new_tasks(&specs)?;
    Ok(ExpandedSweep {
        name: sweep.name.clone(),
        yaml: yaml.to_string(),
        tasks,
    })
}

/// The most weights a task of this coordinator may have: every report is validated in memory
/// (its masks decoded and their graph analysed), so this bounds a report's memory. Ten times
/// the widest network of the poster (1,723,960 weights).
pub const MAX_TASK_WEIGHTS: usize = 1 << 24;

/// Ids and JSON of expanded tasks; refuses an expansion that produces the same task twice, or
/// a task over [`MAX_TASK_WEIGHTS`].
pub fn new_tasks(specs: &[TaskSpec]) -> Result<Vec<NewTask>, StoreError> {
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(specs.len());
    let mut tasks = Vec::with_capacity(specs.len());
    for (idx, spec) in specs.iter().enumerate() {
        let weights = spec.weights();
        if weights > MAX_TASK_WEIGHTS {
            return Err(StoreError::Invalid(format!(
                "task {idx} (shape {:?}) has {weights} weights, more than this coordinator's \
                 limit of {MAX_TASK_WEIGHTS} per task (each report is checked in memory)",
                spec.shape
            )));
        }
        let id = spec.id();
        if let Some(first) = seen.insert(id.clone(), idx) {
            return Err(StoreError::Invalid(format!(
                "the sweep expands to task {id} twice (tasks {first} and {idx} have identical settings)"
            )));
        }
        let spec_json = serde_json::to_string(spec)
            .map_err(|e| StoreError::Invalid(format!("task {idx} does not serialise: {e}")))?;
        tasks.push(NewTask {
            id,
            idx,
            spec_json,
            levels_planned: spec.prune.levels + 1,
            cost: shared::cost::remaining_cost(spec, 0),
        });
    }
    Ok(tasks)
}

/// Compares an expansion with the ids already stored under the sweep's name (with their
/// stored positions, used to name the first task that would change).
pub fn diff(
    sweep: &str,
    stored: &[(String, usize)],
    tasks: &[NewTask],
) -> Result<Diff, StoreError> {
    let new_ids: HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    let mut missing: Vec<&(String, usize)> = stored
        .iter()
        .filter(|(id, _)| !new_ids.contains(id.as_str()))
        .collect();
    missing.sort_by_key(|(_, idx)| *idx);
    if let Some((id, idx)) = missing.first() {
        return Err(StoreError::Conflict(format!(
            "sweep {sweep:?} already has task {id} (task {idx} when stored) that the new file \
             no longer produces: the settings of {} existing task(s) changed; a file under an \
             existing name may only add tasks (submit it under a new name instead)",
            missing.len()
        )));
    }
    let stored_ids: HashSet<&str> = stored.iter().map(|(id, _)| id.as_str()).collect();
    let added: Vec<usize> = tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| !stored_ids.contains(t.id.as_str()))
        .map(|(i, _)| i)
        .collect();
    Ok(Diff {
        existing: tasks.len() - added.len(),
        added,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, idx: usize) -> NewTask {
        NewTask {
            id: id.to_string(),
            idx,
            spec_json: "{}".to_string(),
            levels_planned: 1,
            cost: 1.0,
        }
    }

    #[test]
    fn same_tasks_add_nothing() {
        let stored = vec![("a".to_string(), 0), ("b".to_string(), 1)];
        let diff = diff("s", &stored, &[task("a", 0), task("b", 1)]).unwrap();
        assert_eq!(
            diff,
            Diff {
                added: vec![],
                existing: 2
            }
        );
    }

    #[test]
    fn new_tasks_are_added_wherever_they_land() {
        let stored = vec![("a".to_string(), 0), ("b".to_string(), 1)];
        let tasks = [task("a", 0), task("c", 1), task("b", 2), task("d", 3)];
        let diff = diff("s", &stored, &tasks).unwrap();
        assert_eq!(
            diff,
            Diff {
                added: vec![1, 3],
                existing: 2
            }
        );
    }

    #[test]
    fn a_missing_task_is_refused_and_named() {
        let stored = vec![
            ("a".to_string(), 0),
            ("b".to_string(), 1),
            ("z".to_string(), 2),
        ];
        let err = diff("s", &stored, &[task("a", 0), task("c", 1)]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("task b"), "{message}");
        assert!(message.contains("2 existing task(s)"), "{message}");
    }
}
