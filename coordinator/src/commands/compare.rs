//! `coordinator compare`: the cross-experiment figure (`analysis::plot::compare`) of several
//! sweeps, read from long CSVs (`coordinator export SWEEP --format csv`) or read-only from
//! coordinator databases (every sweep in each, as `results --db` reads one), into a folder.

use std::path::{Path, PathBuf};

use analysis::plot::compare::{self, SweepRuns};
use anyhow::{bail, Context};
use coordinator::store::{sweeps, StoreError};

use super::Source;

#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
One marker per finished run (task) that split at some level: the active weights at its first \
split (y) against the weights of its dense network (compare.svg) and against the weights \
remaining at the split level (compare-remaining.svg), all on log scales. Each sweep has its own \
marker shape and colour, a dashed line at its median, and a legend entry such as \
\"poster-levels: 61 of 84 runs split, median 112\". Runs that never split are left out. Runs at \
the same x are set side by side in a narrow band (sweeps, then pruning levels and seed); that \
offset is not data.

Inputs are read as follows: a path ending in .csv is a long CSV (one or more sweeps, from \
their rows' task-level columns; unfinished tasks are left out); any other path is a \
coordinator database, opened read-only (safe while a coordinator serves it), every sweep in it.

Examples:
  coordinator compare --out figures/ poster-extension.db poster-20-levels.db poster-levels.db
  coordinator export poster-levels --db poster-levels.db --format csv --out levels.csv
  coordinator compare --out figures/ --no-png poster-extension-long.csv levels.csv")]
pub struct CompareArgs {
    /// Long CSVs (`coordinator export SWEEP --format csv`, names ending in .csv) or
    /// coordinator databases (any other path: every sweep in it, read-only).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Folder the figures are written to (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Only these sweeps (repeatable; default: every sweep of every input).
    #[arg(long = "sweep", value_name = "NAME")]
    pub sweeps: Vec<String>,
    /// Write SVG only (no PNG).
    #[arg(long)]
    pub no_png: bool,
}

pub async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let mut all: Vec<(SweepRuns, PathBuf)> = Vec::new();
    for input in &args.inputs {
        for runs in read_input(input).await? {
            if let Some((_, earlier)) = all.iter().find(|(r, _)| r.sweep == runs.sweep) {
                bail!(
                    "sweep {} is in both {} and {}: give it once",
                    runs.sweep,
                    earlier.display(),
                    input.display()
                );
            }
            all.push((runs, input.clone()));
        }
    }
    let chosen = choose(all.into_iter().map(|(r, _)| r).collect(), &args.sweeps)?;
    let figures = compare::figures(&chosen, !args.no_png)?;
    for path in super::plot::write_figures(&args.out, &figures)? {
        super::output::print(format!("{}\n", path.display()))?;
    }
    Ok(())
}

/// The sweeps of one input: a long CSV, or a database.
async fn read_input(path: &Path) -> anyhow::Result<Vec<SweepRuns>> {
    if !path.exists() {
        bail!("input {} does not exist", path.display());
    }
    let csv = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if !csv {
        return read_db(path).await;
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sweeps = SweepRuns::from_csv(&text).with_context(|| path.display().to_string())?;
    if sweeps.is_empty() {
        bail!("{} holds no finished task", path.display());
    }
    Ok(sweeps)
}

/// Every sweep of a database, read-only, with the code of `results --db`.
async fn read_db(path: &Path) -> anyhow::Result<Vec<SweepRuns>> {
    let store = Source::open_db(path.to_path_buf()).await.with_context(|| {
        format!(
            "cannot read {} as a coordinator database (a long CSV's name ends in .csv)",
            path.display()
        )
    })?;
    let names = store
        .run(|c| sweeps::list(c))
        .await
        .map_err(|e: StoreError| anyhow::anyhow!(e))?;
    if names.is_empty() {
        bail!("database {} holds no sweep", path.display());
    }
    let source = Source {
        coordinator: super::DEFAULT_COORDINATOR.to_string(),
        db: Some(path.to_path_buf()),
        auth: super::ClientAuth::default(),
    };
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let data = super::data::sweep(&source, &name.name).await?;
        out.push(SweepRuns::from_tasks(&data.sweep, &data.tasks));
    }
    Ok(out)
}

/// The sweeps named with `--sweep`, in the order given (all of them without).
fn choose(all: Vec<SweepRuns>, names: &[String]) -> anyhow::Result<Vec<SweepRuns>> {
    if names.is_empty() {
        return Ok(all);
    }
    names
        .iter()
        .map(|name| {
            all.iter()
                .find(|r| &r.sweep == name)
                .cloned()
                .with_context(|| {
                    let found: Vec<&str> = all.iter().map(|r| r.sweep.as_str()).collect();
                    format!(
                        "no sweep {name} in the inputs (they hold {})",
                        found.join(", ")
                    )
                })
        })
        .collect()
}
