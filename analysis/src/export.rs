//! Exports of a sweep's results in long format: one row per task and level with every metric
//! (and the task's settings and summary repeated on each row), ready for pandas, as CSV, JSON
//! (an array of records) or Parquet. The table is built by a pure function; the writers only
//! serialise it.
//!
//! Columns (in order; `?` marks columns that may be empty / null):
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `sweep` | text | the sweep's name |
//! | `task_id` | text | the task's id (hash of its settings) |
//! | `task_index` | int | position in the sweep's expansion |
//! | `seed` | int | model seed |
//! | `shape` | text | layer widths, e.g. `(4,85,85,2)` |
//! | `depth` | int | hidden layers |
//! | `width` | int | widest hidden layer |
//! | `weights` | int | weights of the dense network (available weights) |
//! | `extension_level` ? | int | model extension level, when the sweep extends a base |
//! | `levels` | int | pruning levels planned |
//! | `rate` | float | pruning rate per level |
//! | `target` | int | weights left after the last level |
//! | `scope` | text | `global` or `layerwise` |
//! | `data_seed` | int | the data seed |
//! | `method` | text | `magnitude` or `random` (the random-pruning control) |
//! | `coupling` | float | degrees of coupling between the problems (0: independent) |
//! | `rewind_epochs` | int | the dense level's epochs later levels rewind to (0: theta_0) |
//! | `task_done` | bool | the task is finished |
//! | `level` | int | pruning level (0 = dense) |
//! | `last_level` | bool | the last level stored for the task (its outcome when done) |
//! | `remaining_weights`, `active_weights`, `zombie_weights`, `inactive_weights` | int | weights |
//! | `active_neurons`, `zombie_neurons`, `inactive_neurons` | int | neurons (inputs and outputs included) |
//! | `components` | int | subnetworks (components of the active weights) |
//! | `status` | text | `split`, `connected` or `degraded` |
//! | `coverage` | text | JSON: `coverage[c][t]`, coverage of problem `t` by component `c` |
//! | `test_accuracy_1` .. `test_accuracy_P` ? | float | test accuracy per problem, in [0, 1] |
//! | `test_loss`, `train_loss` | float | mean binary cross-entropy |
//! | `epochs` | int | epochs trained at this level |
//! | `seconds` | float | wall-clock seconds of training |
//! | `first_split_level` ? | int | the task's first split level |
//! | `active_at_first_split` ? | int | active weights at that level |
//! | `first_degraded_level` ? | int | the task's first degraded level |
//! | `outcome` | text | the task's trajectory so far: `separated`, `separated_degraded`, `interconnected` or `degraded_unsplit` (`shared::outcome`) |
//! | `remaining_at_first_split` ? | int | weights remaining at the first split level |
//! | `engine` | int | the training engine version of this level |
//! | `arithmetic` | text | the arithmetic that trained it (`x86_64-avx2-fma`, ...; empty when not recorded) |
//! | `kept_per_layer` | text | kept weights of each weight matrix, space-separated, input layer first (empty when unknown) |
//! | `random_draws` ? | int | random masks drawn for the random-mask baseline (`crate::baseline`): on the last level of a finished task with known counts, else empty |
//! | `random_split`, `random_connected`, `random_degraded` ? | int | of those draws, how many were split, connected, degraded |
//!
//! The baseline columns are not read back: an import recomputes them identically from
//! `kept_per_layer` (same seed, same draws).

use std::io::Write;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::data::TaskResult;
use crate::stats::{self, Axis};

/// The type of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Text,
    Bool,
}

/// A column: name, type, whether it may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
}

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// A table of typed columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("row {row}: column {column} holds a value of the wrong type")]
    Type { row: usize, column: String },
}

fn col(name: &str, kind: Kind, nullable: bool) -> Column {
    Column {
        name: name.to_string(),
        kind,
        nullable,
    }
}

fn int(v: usize) -> Cell {
    Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

fn opt_int(v: Option<usize>) -> Cell {
    v.map_or(Cell::Null, int)
}

/// The long table of a sweep: one row per task and stored level, tasks in expansion order.
pub fn long_table(sweep: &str, tasks: &[TaskResult]) -> Table {
    let problems = tasks
        .iter()
        .flat_map(|t| t.levels.iter().map(|l| l.test_accuracy.len()))
        .chain(tasks.iter().map(|t| t.spec.data.problems.len()))
        .max()
        .unwrap_or(0);
    let mut columns = vec![
        col("sweep", Kind::Text, false),
        col("task_id", Kind::Text, false),
        col("task_index", Kind::Int, false),
        col("seed", Kind::Int, false),
        col("shape", Kind::Text, false),
        col("depth", Kind::Int, false),
        col("width", Kind::Int, false),
        col("weights", Kind::Int, false),
        col("extension_level", Kind::Int, true),
        col("levels", Kind::Int, false),
        col("rate", Kind::Float, false),
        col("target", Kind::Int, false),
        col("scope", Kind::Text, false),
        col("data_seed", Kind::Int, false),
        col("method", Kind::Text, false),
        col("coupling", Kind::Float, false),
        col("rewind_epochs", Kind::Int, false),
        col("task_done", Kind::Bool, false),
        col("level", Kind::Int, false),
        col("last_level", Kind::Bool, false),
        col("remaining_weights", Kind::Int, false),
        col("active_weights", Kind::Int, false),
        col("zombie_weights", Kind::Int, false),
        col("inactive_weights", Kind::Int, false),
        col("active_neurons", Kind::Int, false),
        col("zombie_neurons", Kind::Int, false),
        col("inactive_neurons", Kind::Int, false),
        col("components", Kind::Int, false),
        col("status", Kind::Text, false),
        col("coverage", Kind::Text, false),
    ];
    for p in 0..problems {
        columns.push(col(&format!("test_accuracy_{}", p + 1), Kind::Float, true));
    }
    columns.extend([
        col("test_loss", Kind::Float, false),
        col("train_loss", Kind::Float, false),
        col("epochs", Kind::Int, false),
        col("seconds", Kind::Float, false),
        col("first_split_level", Kind::Int, true),
        col("active_at_first_split", Kind::Int, true),
        col("first_degraded_level", Kind::Int, true),
        col("outcome", Kind::Text, false),
        col("remaining_at_first_split", Kind::Int, true),
        col("engine", Kind::Int, false),
        col("arithmetic", Kind::Text, false),
        col("kept_per_layer", Kind::Text, false),
        col("random_draws", Kind::Int, true),
        col("random_split", Kind::Int, true),
        col("random_connected", Kind::Int, true),
        col("random_degraded", Kind::Int, true),
    ]);
    let mut sorted: Vec<&TaskResult> = tasks.iter().collect();
    sorted.sort_by_key(|t| t.idx);
    let mut rows = Vec::new();
    for task in sorted {
        let spec = &task.spec;
        let summary = stats::summarize(task);
        let axis_int = |a: Axis| match a.value(spec) {
            stats::AxisValue::Int(v) => Cell::Int(v),
            _ => Cell::Null,
        };
        let random = crate::baseline::of_task(task, shared::baseline::DEFAULT_DRAWS);
        for (k, l) in task.levels.iter().enumerate() {
            let mut row = vec![
                Cell::Text(sweep.to_string()),
                Cell::Text(summary.id.clone()),
                int(task.idx),
                Cell::Int(spec.seed as i64),
                Cell::Text(stats::shape_name(&spec.shape)),
                axis_int(Axis::Depth),
                axis_int(Axis::Width),
                int(spec.weights()),
                opt_int(spec.extension_level),
                int(spec.prune.levels),
                Cell::Float(spec.prune.rate),
                int(spec.prune.target),
                Cell::Text(spec.prune.scope.as_str().to_string()),
                Cell::Int(spec.data.seed as i64),
                Cell::Text(spec.prune.method.as_str().to_string()),
                Cell::Float(spec.data.coupling),
                int(spec.train.rewind_epochs),
                Cell::Bool(task.done),
                int(l.level),
                Cell::Bool(k + 1 == task.levels.len()),
                int(l.remaining_weights),
                int(l.active_weights),
                int(l.zombie_weights),
                int(l.inactive_weights),
                int(l.active_neurons),
                int(l.zombie_neurons),
                int(l.inactive_neurons),
                int(l.components),
                Cell::Text(l.status.as_str().to_string()),
                Cell::Text(serde_json::to_string(&l.coverage).unwrap_or_default()),
            ];
            for p in 0..problems {
                row.push(
                    l.test_accuracy
                        .get(p)
                        .map_or(Cell::Null, |&a| Cell::Float(a)),
                );
            }
            row.extend([
                Cell::Float(l.test_loss),
                Cell::Float(l.train_loss),
                int(l.epochs),
                Cell::Float(l.seconds),
                opt_int(summary.first_split_level),
                opt_int(summary.active_at_first_split),
                opt_int(summary.first_degraded_level),
                Cell::Text(summary.trajectory.map_or("", |o| o.as_str()).to_string()),
                opt_int(summary.remaining_at_first_split),
                Cell::Int(i64::from(l.engine)),
                Cell::Text(l.arithmetic.clone()),
                Cell::Text(kept_text(&l.kept_per_layer)),
            ]);
            let random = random.filter(|_| k + 1 == task.levels.len());
            row.extend([
                opt_int(random.map(|c| c.draws)),
                opt_int(random.map(|c| c.split)),
                opt_int(random.map(|c| c.connected)),
                opt_int(random.map(|c| c.degraded)),
            ]);
            rows.push(row);
        }
    }
    Table { columns, rows }
}

/// Per-layer counts as one space-separated cell.
fn kept_text(kept: &[usize]) -> String {
    let counts: Vec<String> = kept.iter().map(usize::to_string).collect();
    counts.join(" ")
}

/// A cell as CSV text: empty for null, shortest round-tripping decimal for floats.
pub fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Int(v) => v.to_string(),
        Cell::Float(v) => format!("{v}"),
        Cell::Text(v) => v.clone(),
        Cell::Bool(v) => v.to_string(),
    }
}

/// Writes the table as CSV with a header line.
pub fn write_csv(table: &Table, out: impl Write) -> Result<(), ExportError> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(table.columns.iter().map(|c| c.name.as_str()))?;
    for row in &table.rows {
        writer.write_record(row.iter().map(cell_text))?;
    }
    writer.flush()?;
    Ok(())
}

/// Parses CSV written by [`write_csv`] back into cells of `columns`' types.
pub fn read_csv(columns: &[Column], input: impl std::io::Read) -> Result<Table, ExportError> {
    let mut reader = csv::Reader::from_reader(input);
    let mut rows = Vec::new();
    for (r, record) in reader.records().enumerate() {
        let record = record?;
        let row = columns
            .iter()
            .zip(record.iter())
            .map(|(c, text)| parse_cell(c, text).ok_or_else(|| type_error(r, c)))
            .collect::<Result<Vec<Cell>, ExportError>>()?;
        rows.push(row);
    }
    Ok(Table {
        columns: columns.to_vec(),
        rows,
    })
}

fn type_error(row: usize, column: &Column) -> ExportError {
    ExportError::Type {
        row,
        column: column.name.clone(),
    }
}

fn parse_cell(column: &Column, text: &str) -> Option<Cell> {
    if text.is_empty() && column.nullable {
        return Some(Cell::Null);
    }
    Some(match column.kind {
        Kind::Int => Cell::Int(text.parse().ok()?),
        Kind::Float => Cell::Float(text.parse().ok()?),
        Kind::Text => Cell::Text(text.to_string()),
        Kind::Bool => Cell::Bool(text.parse().ok()?),
    })
}

fn cell_json(cell: &Cell) -> Value {
    match cell {
        Cell::Null => Value::Null,
        Cell::Int(v) => Value::from(*v),
        Cell::Float(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
        Cell::Text(v) => Value::from(v.clone()),
        Cell::Bool(v) => Value::from(*v),
    }
}

/// The table as a JSON array of records (`pandas.read_json(path)` reads it).
pub fn to_json(table: &Table) -> Value {
    Value::Array(
        table
            .rows
            .iter()
            .map(|row| {
                let mut object = Map::new();
                for (c, cell) in table.columns.iter().zip(row) {
                    object.insert(c.name.clone(), cell_json(cell));
                }
                Value::Object(object)
            })
            .collect(),
    )
}

/// Writes the table as pretty JSON.
pub fn write_json(table: &Table, mut out: impl Write) -> Result<(), ExportError> {
    serde_json::to_writer_pretty(&mut out, &to_json(table))?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Parses JSON written by [`write_json`] back into cells of `columns`' types.
pub fn read_json(columns: &[Column], input: impl std::io::Read) -> Result<Table, ExportError> {
    let value: Value = serde_json::from_reader(input)?;
    let records = value.as_array().cloned().unwrap_or_default();
    let mut rows = Vec::new();
    for (r, record) in records.iter().enumerate() {
        let row = columns
            .iter()
            .map(|c| {
                let v = record.get(&c.name).unwrap_or(&Value::Null);
                let cell = match (c.kind, v) {
                    (_, Value::Null) if c.nullable => Some(Cell::Null),
                    (Kind::Int, v) => v.as_i64().map(Cell::Int),
                    (Kind::Float, v) => v.as_f64().map(Cell::Float),
                    (Kind::Text, v) => v.as_str().map(|s| Cell::Text(s.to_string())),
                    (Kind::Bool, v) => v.as_bool().map(Cell::Bool),
                };
                cell.ok_or_else(|| type_error(r, c))
            })
            .collect::<Result<Vec<Cell>, ExportError>>()?;
        rows.push(row);
    }
    Ok(Table {
        columns: columns.to_vec(),
        rows,
    })
}

/// The Parquet schema of the table's columns.
pub fn parquet_schema(columns: &[Column]) -> String {
    let mut schema = String::from("message results {\n");
    for c in columns {
        let repetition = if c.nullable { "OPTIONAL" } else { "REQUIRED" };
        let ty = match c.kind {
            Kind::Int => "INT64",
            Kind::Float => "DOUBLE",
            Kind::Text => "BYTE_ARRAY",
            Kind::Bool => "BOOLEAN",
        };
        let annotation = if c.kind == Kind::Text { " (UTF8)" } else { "" };
        schema.push_str(&format!("  {repetition} {ty} {}{annotation};\n", c.name));
    }
    schema.push('}');
    schema
}

/// Writes the table as a Parquet file (one row group, uncompressed).
pub fn write_parquet<W: Write + Send>(table: &Table, out: W) -> Result<(), ExportError> {
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;

    let schema = Arc::new(parquet::schema::parser::parse_message_type(
        &parquet_schema(&table.columns),
    )?);
    let props = Arc::new(WriterProperties::builder().build());
    let mut writer = SerializedFileWriter::new(out, schema, props)?;
    let mut group = writer.next_row_group()?;
    let mut index = 0;
    while let Some(mut column) = group.next_column()? {
        let c = &table.columns[index];
        let cells: Vec<&Cell> = table.rows.iter().map(|r| &r[index]).collect();
        let levels: Vec<i16> = cells
            .iter()
            .map(|cell| i16::from(!matches!(cell, Cell::Null)))
            .collect();
        let def = c.nullable.then_some(levels.as_slice());
        let bad = |row: usize| type_error(row, c);
        match c.kind {
            Kind::Int => {
                let mut values = Vec::new();
                for (r, cell) in cells.iter().enumerate() {
                    match cell {
                        Cell::Int(v) => values.push(*v),
                        Cell::Null if c.nullable => {}
                        _ => return Err(bad(r)),
                    }
                }
                column
                    .typed::<Int64Type>()
                    .write_batch(&values, def, None)?;
            }
            Kind::Float => {
                let mut values = Vec::new();
                for (r, cell) in cells.iter().enumerate() {
                    match cell {
                        Cell::Float(v) => values.push(*v),
                        Cell::Null if c.nullable => {}
                        _ => return Err(bad(r)),
                    }
                }
                column
                    .typed::<DoubleType>()
                    .write_batch(&values, def, None)?;
            }
            Kind::Text => {
                let mut values = Vec::new();
                for (r, cell) in cells.iter().enumerate() {
                    match cell {
                        Cell::Text(v) => values.push(ByteArray::from(v.as_str())),
                        Cell::Null if c.nullable => {}
                        _ => return Err(bad(r)),
                    }
                }
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, def, None)?;
            }
            Kind::Bool => {
                let mut values = Vec::new();
                for (r, cell) in cells.iter().enumerate() {
                    match cell {
                        Cell::Bool(v) => values.push(*v),
                        Cell::Null if c.nullable => {}
                        _ => return Err(bad(r)),
                    }
                }
                column.typed::<BoolType>().write_batch(&values, def, None)?;
            }
        }
        column.close()?;
        index += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}

/// Reads a Parquet file written by [`write_parquet`] back into cells of `columns`' types.
pub fn read_parquet(columns: &[Column], file: std::fs::File) -> Result<Table, ExportError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    let reader = SerializedFileReader::new(file)?;
    let mut rows = Vec::new();
    for (r, row) in reader.get_row_iter(None)?.enumerate() {
        let row = row?;
        let fields: Vec<(&String, &Field)> = row.get_column_iter().collect();
        let cells = columns
            .iter()
            .map(|c| {
                let field = fields
                    .iter()
                    .find(|(name, _)| **name == c.name)
                    .map(|(_, f)| *f);
                let cell = match (c.kind, field) {
                    (_, None | Some(Field::Null)) if c.nullable => Some(Cell::Null),
                    (Kind::Int, Some(Field::Long(v))) => Some(Cell::Int(*v)),
                    (Kind::Float, Some(Field::Double(v))) => Some(Cell::Float(*v)),
                    (Kind::Text, Some(Field::Str(v))) => Some(Cell::Text(v.clone())),
                    (Kind::Bool, Some(Field::Bool(v))) => Some(Cell::Bool(*v)),
                    _ => None,
                };
                cell.ok_or_else(|| type_error(r, c))
            })
            .collect::<Result<Vec<Cell>, ExportError>>()?;
        rows.push(cells);
    }
    Ok(Table {
        columns: columns.to_vec(),
        rows,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shared::graph::Status;
    use shared::synthetic;

    /// Two synthetic tasks of the quick sweep's base, with stored levels (one unfinished).
    pub(crate) fn sample_tasks() -> Vec<TaskResult> {
        let yaml = "name: t\nmodel:\n  base: [4, 8, 8, 2]\n  extension_levels: [2, 4]\nseeds: 2\n";
        let sweep = shared::sweep::Sweep::from_yaml(yaml, "t.yaml").unwrap();
        sweep
            .expand()
            .unwrap()
            .into_iter()
            .enumerate()
            .map(|(idx, spec)| {
                let upto = if idx == 3 { 1 } else { spec.prune.levels };
                let levels = (0..=upto)
                    .map(|l| {
                        let masks = synthetic::synthetic_masks(&spec, l);
                        synthetic::synthetic_metrics(&spec, l, &masks)
                    })
                    .collect();
                TaskResult {
                    idx,
                    done: idx != 3,
                    spec,
                    levels,
                }
            })
            .collect()
    }

    #[test]
    fn long_table_has_one_row_per_task_and_level() {
        let tasks = sample_tasks();
        let table = long_table("t", &tasks);
        let expected: usize = tasks.iter().map(|t| t.levels.len()).sum();
        assert_eq!(table.rows.len(), expected);
        assert!(table.rows.iter().all(|r| r.len() == table.columns.len()));
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        for key in [
            "task_id",
            "level",
            "active_weights",
            "zombie_weights",
            "status",
            "test_accuracy_1",
            "test_accuracy_2",
            "first_split_level",
        ] {
            assert!(names.contains(&key), "{key} missing");
        }
        let i = |name: &str| names.iter().position(|n| *n == name).unwrap();
        let first = &table.rows[0];
        assert_eq!(first[i("level")], Cell::Int(0));
        assert_eq!(first[i("task_id")], Cell::Text(tasks[0].spec.id()));
        assert_eq!(
            first[i("remaining_weights")],
            Cell::Int(tasks[0].spec.weights() as i64)
        );
        assert_eq!(first[i("extension_level")], Cell::Int(2));
        // Last-level flags: one per task.
        let last = table
            .rows
            .iter()
            .filter(|r| r[i("last_level")] == Cell::Bool(true))
            .count();
        assert_eq!(last, tasks.len());
        let statuses: Vec<&Cell> = table.rows.iter().map(|r| &r[i("status")]).collect();
        assert!(statuses.contains(&&Cell::Text("connected".into())));
        let _ = Status::Split;
    }

    #[test]
    fn csv_json_and_parquet_read_back_equal() {
        let table = long_table("t", &sample_tasks());
        let mut csv_bytes = Vec::new();
        write_csv(&table, &mut csv_bytes).unwrap();
        assert_eq!(
            read_csv(&table.columns, csv_bytes.as_slice()).unwrap(),
            table
        );

        let mut json_bytes = Vec::new();
        write_json(&table, &mut json_bytes).unwrap();
        assert_eq!(
            read_json(&table.columns, json_bytes.as_slice()).unwrap(),
            table
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_parquet(&table, std::fs::File::create(&path).unwrap()).unwrap();
        let back = read_parquet(&table.columns, std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(back, table);
        assert_eq!(&std::fs::read(&path).unwrap()[..4], b"PAR1");
    }

    #[test]
    fn nullable_columns_hold_nulls() {
        let mut tasks = sample_tasks();
        for t in &mut tasks {
            t.spec.extension_level = None;
        }
        let table = long_table("t", &tasks);
        let i = table
            .columns
            .iter()
            .position(|c| c.name == "extension_level")
            .unwrap();
        assert!(table.rows.iter().all(|r| r[i] == Cell::Null));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("n.parquet");
        write_parquet(&table, std::fs::File::create(&path).unwrap()).unwrap();
        assert_eq!(
            read_parquet(&table.columns, std::fs::File::open(&path).unwrap()).unwrap(),
            table
        );
        let mut csv_bytes = Vec::new();
        write_csv(&table, &mut csv_bytes).unwrap();
        assert_eq!(
            read_csv(&table.columns, csv_bytes.as_slice()).unwrap(),
            table
        );
    }
}
