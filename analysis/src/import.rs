//! Reading a sweep's long export (`coordinator export SWEEP --format csv`, [`crate::export`])
//! back into the data set the figures and tables are computed from, so that whoever has only
//! the CSV and the sweep file gets the same figures and tables as the database gives (the
//! reproduction's pages are regenerated this way, and a test holds them to it).
//!
//! The export carries every number of every level; the settings come from the sweep file's
//! expansion, matched by task index and checked against the exported task id.

use std::collections::HashMap;

use shared::graph::Status;
use shared::metrics::LevelMetrics;
use shared::spec::TaskSpec;

use crate::data::TaskResult;

/// Why a long CSV could not be read back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImportError {
    #[error("the CSV is empty: it has no header line")]
    Empty,
    #[error("the CSV does not parse: {0}")]
    Syntax(String),
    #[error("the CSV has no column {0:?}")]
    MissingColumn(String),
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
}

/// A CSV read into its header and rows of fields.
pub struct Csv {
    columns: HashMap<String, usize>,
    /// The header's names in order.
    pub header: Vec<String>,
    /// Every line after the header, split into fields.
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    /// Splits `text` into a header and rows (RFC 4180; rows may be short, see [`Csv::get`]).
    pub fn parse(text: &str) -> Result<Csv, ImportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let record =
            |r: Result<csv::StringRecord, csv::Error>| -> Result<Vec<String>, ImportError> {
                let r = r.map_err(|e| ImportError::Syntax(e.to_string()))?;
                Ok(r.iter().map(str::to_string).collect())
            };
        let header = record(records.next().ok_or(ImportError::Empty)?)?;
        let rows = records.map(record).collect::<Result<Vec<_>, _>>()?;
        let columns = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), i))
            .collect();
        Ok(Csv {
            columns,
            header,
            rows,
        })
    }

    /// The field `name` of row `row` (0-based, after the header), or an error naming the line.
    pub fn get<'a>(&'a self, row: usize, name: &str) -> Result<&'a str, ImportError> {
        let i = *self
            .columns
            .get(name)
            .ok_or_else(|| ImportError::MissingColumn(name.to_string()))?;
        self.rows[row]
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| line_error(row, format!("no field {name}")))
    }

    /// The field `name` of row `row` parsed as a `T`.
    pub fn parse_field<T>(&self, row: usize, name: &str) -> Result<T, ImportError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.get(row, name)?;
        text.parse()
            .map_err(|e| line_error(row, format!("{name}: {text:?}: {e}")))
    }
}

/// An error on the line of row `row` (the header is line 1).
fn line_error(row: usize, message: String) -> ImportError {
    ImportError::Line {
        line: row + 2,
        message,
    }
}

/// The tasks of a sweep with the levels of its long CSV: `specs` is the sweep file's
/// expansion (`Sweep::expand`); a row's `task_index` picks its task and its `task_id` must be
/// that task's id. Tasks without a row come back with no levels, not done.
pub fn long_csv(specs: Vec<TaskSpec>, text: &str) -> Result<Vec<TaskResult>, ImportError> {
    let csv = Csv::parse(text)?;
    let mut tasks: Vec<TaskResult> = specs
        .into_iter()
        .enumerate()
        .map(|(idx, spec)| TaskResult {
            idx,
            spec,
            done: false,
            levels: Vec::new(),
        })
        .collect();
    let problems = csv
        .header
        .iter()
        .filter(|h| h.starts_with("test_accuracy_"))
        .count();
    for row in 0..csv.rows.len() {
        let index: usize = csv.parse_field(row, "task_index")?;
        let task = tasks.get_mut(index).ok_or_else(|| {
            line_error(
                row,
                format!("task_index {index}: the sweep has no such task"),
            )
        })?;
        let id = csv.get(row, "task_id")?;
        if id != task.spec.id() {
            return Err(line_error(
                row,
                format!(
                    "task {index} has id {id} in the CSV but {} in the sweep file: the CSV \
                     is another sweep's",
                    task.spec.id()
                ),
            ));
        }
        task.done = csv.get(row, "task_done")? == "true";
        task.levels.push(level_metrics(&csv, row, problems)?);
    }
    for task in &mut tasks {
        task.levels.sort_by_key(|l| l.level);
    }
    Ok(tasks)
}

/// One level's metrics from row `row`.
fn level_metrics(csv: &Csv, row: usize, problems: usize) -> Result<LevelMetrics, ImportError> {
    let status = csv.get(row, "status")?;
    let status = Status::parse(status)
        .ok_or_else(|| line_error(row, format!("status: {status:?} is not a status")))?;
    let coverage = serde_json::from_str(csv.get(row, "coverage")?)
        .map_err(|e| line_error(row, format!("coverage: {e}")))?;
    Ok(LevelMetrics {
        level: csv.parse_field(row, "level")?,
        remaining_weights: csv.parse_field(row, "remaining_weights")?,
        active_weights: csv.parse_field(row, "active_weights")?,
        zombie_weights: csv.parse_field(row, "zombie_weights")?,
        inactive_weights: csv.parse_field(row, "inactive_weights")?,
        active_neurons: csv.parse_field(row, "active_neurons")?,
        zombie_neurons: csv.parse_field(row, "zombie_neurons")?,
        inactive_neurons: csv.parse_field(row, "inactive_neurons")?,
        components: csv.parse_field(row, "components")?,
        status,
        coverage,
        test_accuracy: (1..=problems)
            .map(|p| csv.parse_field(row, &format!("test_accuracy_{p}")))
            .collect::<Result<_, _>>()?,
        test_loss: csv.parse_field(row, "test_loss")?,
        train_loss: csv.parse_field(row, "train_loss")?,
        epochs: csv.parse_field(row, "epochs")?,
        seconds: csv.parse_field(row, "seconds")?,
        engine: csv.parse_field(row, "engine")?,
        // Exports from before the arithmetic was recorded have no such column.
        arithmetic: csv
            .get(row, "arithmetic")
            .map_or_else(|_| String::new(), str::to_string),
        kept_per_layer: kept_per_layer(csv, row)?,
    })
}

/// The `kept_per_layer` cell (counts separated by spaces); empty where the export had no such
/// column or did not know the counts.
fn kept_per_layer(csv: &Csv, row: usize) -> Result<Vec<usize>, ImportError> {
    let Ok(cell) = csv.get(row, "kept_per_layer") else {
        return Ok(Vec::new());
    };
    cell.split_whitespace()
        .map(|k| {
            k.parse()
                .map_err(|e| line_error(row, format!("kept_per_layer: {k:?}: {e}")))
        })
        .collect()
}
