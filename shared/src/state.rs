//! Where a task stands in a sweep: the states the coordinator schedules by and that results
//! read (only finished tasks count in statistics).

use serde::{Deserialize, Serialize};

/// A task's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for a worker (never leased, or given back, or its lease expired).
    Pending,
    /// A worker holds a lease on it.
    Leased,
    /// Every level stored, or stopped early as its spec asks.
    Done,
    /// Failed as many times as the coordinator allows; its last error is kept.
    Failed,
}

impl TaskState {
    /// Every state, in the order status tables list them.
    pub const ALL: [TaskState; 4] = [
        TaskState::Pending,
        TaskState::Leased,
        TaskState::Done,
        TaskState::Failed,
    ];

    /// The name in the database, the API and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Leased => "leased",
            TaskState::Done => "done",
            TaskState::Failed => "failed",
        }
    }

    /// A state by its name.
    pub fn parse(name: &str) -> Option<TaskState> {
        TaskState::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in TaskState::ALL {
            assert_eq!(TaskState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
        assert_eq!(TaskState::parse("running"), None);
    }
}
