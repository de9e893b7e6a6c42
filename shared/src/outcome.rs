//! The outcome of a run, classified by its trajectory as the thesis did (not by its last level
//! alone): the one definition of the four outcomes that every table, export and figure reads.
//!
//! - **separated**: split at the last level;
//! - **separated-degraded**: split at some level, but not at the last (pruning only removes
//!   edges, so what follows a split is a split or a degraded ticket);
//! - **interconnected**: never split, never degraded;
//! - **degraded** (unsplit): degraded at some level without ever having split.
//!
//! A run stopped at its first degraded level (`stop_at_first_degraded`) is classified from what
//! it stored: the levels after a degradation cannot change the outcome, since the run never
//! split before it (degraded) or split earlier (separated-degraded).

use serde::{Deserialize, Serialize};

use crate::graph::Status;

/// The four outcomes of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Split at the last level.
    Separated,
    /// Split at some level, not at the last.
    SeparatedDegraded,
    /// Never split and never degraded.
    Interconnected,
    /// Degraded without ever having split.
    DegradedUnsplit,
}

impl Outcome {
    /// Every outcome, in the order tables and figures show them.
    pub const ALL: [Outcome; 4] = [
        Outcome::Separated,
        Outcome::SeparatedDegraded,
        Outcome::Interconnected,
        Outcome::DegradedUnsplit,
    ];

    /// The name in tables, exports and keys (as serde writes it).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Separated => "separated",
            Outcome::SeparatedDegraded => "separated_degraded",
            Outcome::Interconnected => "interconnected",
            Outcome::DegradedUnsplit => "degraded_unsplit",
        }
    }

    /// The name people read in legends.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Separated => "separated",
            Outcome::SeparatedDegraded => "separated, then degraded",
            Outcome::Interconnected => "interconnected",
            Outcome::DegradedUnsplit => "degraded (never split)",
        }
    }

    /// An outcome by its name.
    pub fn parse(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == name)
    }
}

/// What a run's trajectory showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trajectory {
    pub outcome: Outcome,
    /// The first level whose ticket split.
    pub first_split_level: Option<usize>,
    /// The first level whose ticket was degraded.
    pub first_degraded_level: Option<usize>,
}

/// Classifies a run from the status of each of its levels, `(level, status)` in level order.
/// `None` for a run with no level.
pub fn classify(levels: impl IntoIterator<Item = (usize, Status)>) -> Option<Trajectory> {
    let mut first_split_level = None;
    let mut first_degraded_level = None;
    let mut last = None;
    for (level, status) in levels {
        match status {
            Status::Split => {
                first_split_level.get_or_insert(level);
            }
            Status::Degraded => {
                first_degraded_level.get_or_insert(level);
            }
            Status::Connected => {}
        }
        last = Some(status);
    }
    let outcome = match (last?, first_split_level, first_degraded_level) {
        (Status::Split, _, _) => Outcome::Separated,
        (_, Some(_), _) => Outcome::SeparatedDegraded,
        (_, None, Some(_)) => Outcome::DegradedUnsplit,
        (_, None, None) => Outcome::Interconnected,
    };
    Some(Trajectory {
        outcome,
        first_split_level,
        first_degraded_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::{Connected as C, Degraded as D, Split as S};

    fn run(statuses: &[Status]) -> Trajectory {
        classify(statuses.iter().copied().enumerate()).expect("a run with levels")
    }

    #[test]
    fn each_of_the_four_outcomes() {
        let t = run(&[C, C, S, S]);
        assert_eq!(t.outcome, Outcome::Separated);
        assert_eq!(
            (t.first_split_level, t.first_degraded_level),
            (Some(2), None)
        );

        let t = run(&[C, S, S, D, D]);
        assert_eq!(t.outcome, Outcome::SeparatedDegraded);
        assert_eq!(
            (t.first_split_level, t.first_degraded_level),
            (Some(1), Some(3))
        );

        let t = run(&[C, C, C]);
        assert_eq!(t.outcome, Outcome::Interconnected);
        assert_eq!((t.first_split_level, t.first_degraded_level), (None, None));

        let t = run(&[C, C, D, D]);
        assert_eq!(t.outcome, Outcome::DegradedUnsplit);
        assert_eq!(
            (t.first_split_level, t.first_degraded_level),
            (None, Some(2))
        );
    }

    #[test]
    fn split_at_one_level_and_degraded_at_the_next() {
        let t = run(&[C, C, S, D]);
        assert_eq!(t.outcome, Outcome::SeparatedDegraded);
        assert_eq!(
            (t.first_split_level, t.first_degraded_level),
            (Some(2), Some(3))
        );
    }

    #[test]
    fn a_run_stopped_at_its_first_degraded_level() {
        // What a run that continued would add after the first degraded level cannot change
        // the outcome: the stopped and the continued run are classified alike.
        let stopped = run(&[C, S, D]);
        let continued = run(&[C, S, D, D, D]);
        assert_eq!(stopped.outcome, Outcome::SeparatedDegraded);
        assert_eq!(stopped, continued);
        let stopped = run(&[C, C, D]);
        assert_eq!(stopped.outcome, Outcome::DegradedUnsplit);
        assert_eq!(stopped, run(&[C, C, D, D]));
    }

    #[test]
    fn the_dense_level_alone_and_no_level() {
        assert_eq!(run(&[C]).outcome, Outcome::Interconnected);
        assert_eq!(run(&[S]).outcome, Outcome::Separated);
        assert_eq!(run(&[D]).outcome, Outcome::DegradedUnsplit);
        assert_eq!(classify(std::iter::empty()), None);
    }

    #[test]
    fn levels_are_read_by_their_numbers() {
        // A resumed run's levels carry their own numbers.
        let t = classify([(3, C), (4, S), (7, D)]).unwrap();
        assert_eq!(t.first_split_level, Some(4));
        assert_eq!(t.first_degraded_level, Some(7));
    }

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert_eq!(
                serde_json::to_string(&o).unwrap(),
                format!("\"{}\"", o.as_str())
            );
        }
        assert_eq!(Outcome::parse("split"), None);
    }
}
