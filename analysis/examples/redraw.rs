//! Redraws a sweep's figures from its long export (`coordinator export SWEEP --format csv`)
//! and its sweep file, without the database: for whoever has only the CSV, and for figures
//! whose drawing changed after the run (the reproduction's `active.svg` was redrawn this way
//! from `docs/reproduction/poster-extension-long.csv`).
//!
//!     cargo run -p analysis --example redraw -- sweeps/poster-extension.yaml \
//!         docs/reproduction/poster-extension-long.csv OUT_DIR
//!
//! The export carries every number of every level, so the figures are those the database
//! gives (the reproduction's other three figures came out byte-identical).

use std::collections::HashMap;
use std::path::Path;

use analysis::data::TaskResult;
use analysis::plot::{sweep_figures, Options};
use shared::metrics::LevelMetrics;
use shared::sweep::Sweep;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [sweep_file, csv, out] = args.as_slice() else {
        return Err("usage: redraw SWEEP.yaml LONG.csv OUT_DIR".into());
    };
    let sweep = Sweep::from_path(Path::new(sweep_file))?;
    let mut tasks: Vec<TaskResult> = sweep
        .expand()?
        .into_iter()
        .enumerate()
        .map(|(idx, spec)| TaskResult {
            idx,
            spec,
            done: false,
            levels: Vec::new(),
        })
        .collect();
    let text = std::fs::read_to_string(csv)?;
    let mut rows = text.lines().map(fields);
    let header = rows.next().ok_or("the CSV is empty")?;
    let col: HashMap<&str, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.as_str(), i))
        .collect();
    let problems = header
        .iter()
        .filter(|h| h.starts_with("test_accuracy_"))
        .count();
    for (n, row) in rows.enumerate() {
        let line = n + 2;
        let get = |name: &str| -> Result<&str, String> {
            let i = *col.get(name).ok_or_else(|| format!("no column {name}"))?;
            row.get(i)
                .map(String::as_str)
                .ok_or_else(|| format!("line {line}: no {name}"))
        };
        let num = |name: &str| -> Result<usize, String> {
            get(name)?
                .parse()
                .map_err(|e| format!("line {line}: {name}: {e}"))
        };
        let real = |name: &str| -> Result<f64, String> {
            get(name)?
                .parse()
                .map_err(|e| format!("line {line}: {name}: {e}"))
        };
        let metrics = LevelMetrics {
            level: num("level")?,
            remaining_weights: num("remaining_weights")?,
            active_weights: num("active_weights")?,
            zombie_weights: num("zombie_weights")?,
            inactive_weights: num("inactive_weights")?,
            active_neurons: num("active_neurons")?,
            zombie_neurons: num("zombie_neurons")?,
            inactive_neurons: num("inactive_neurons")?,
            components: num("components")?,
            status: serde_json::from_value(serde_json::Value::String(get("status")?.into()))?,
            coverage: serde_json::from_str(get("coverage")?)?,
            test_accuracy: (1..=problems)
                .map(|p| real(&format!("test_accuracy_{p}")))
                .collect::<Result<_, _>>()?,
            test_loss: real("test_loss")?,
            train_loss: real("train_loss")?,
            epochs: num("epochs")?,
            seconds: real("seconds")?,
            engine: num("engine")? as u32,
        };
        let task = tasks
            .get_mut(num("task_index")?)
            .ok_or_else(|| format!("line {line}: the sweep file has no such task"))?;
        task.done = get("task_done")? == "true";
        task.levels.push(metrics);
    }
    for task in &mut tasks {
        task.levels.sort_by_key(|l| l.level);
    }
    let options = Options {
        sweep: sweep.name.clone(),
        shape: None,
        png: false,
    };
    std::fs::create_dir_all(out)?;
    for figure in sweep_figures(&tasks, &options)? {
        let path = Path::new(out).join(format!("{}.svg", figure.name));
        std::fs::write(&path, &figure.svg)?;
        println!("{}", path.display());
    }
    Ok(())
}

/// The fields of one CSV line (RFC 4180 quoting; no line breaks inside fields).
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out
}
