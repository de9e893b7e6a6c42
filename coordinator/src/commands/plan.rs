//! `coordinator plan`: the tasks a sweep file expands to, without a coordinator.

use std::path::PathBuf;

use anyhow::Context;
use shared::sweep::plan_rows;

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The sweep file (YAML).
    #[arg(value_name = "SWEEP.yaml")]
    pub sweep: PathBuf,
    /// Print a JSON array of objects instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub overrides: super::SweepOverrides,
}

pub async fn plan(args: PlanArgs) -> anyhow::Result<()> {
    let path = args.sweep.clone();
    let overrides = args.overrides.clone();
    let (sweep, tasks) = tokio::task::spawn_blocking(move || {
        let sweep = overrides.load(&path)?;
        let tasks = sweep.expand()?;
        Ok::<_, shared::sweep::SweepError>((sweep, tasks))
    })
    .await??;
    let rows = plan_rows(&tasks);
    if args.json {
        super::output::print(format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
    } else {
        let values = serde_json::to_value(&rows).context("plan rows do not serialise")?;
        let values = values.as_array().cloned().unwrap_or_default();
        super::output::print(format!(
            "sweep {}\n{}",
            sweep.name,
            coordinator::render::plan_table(&values)
        ))?;
    }
    Ok(())
}
