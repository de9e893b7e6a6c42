//! `coordinator results`: a sweep's statistics, one row per grid point or grouped by axes.
//!
//! Both come from the same data set and the same computation (`analysis::stats`): a grid
//! point is the group of every setting but the seed.

use analysis::axis::Axis;
use analysis::tables::{self, ResultRow};
use shared::state::TaskState;

use super::Source;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ResultsArgs {
    /// The sweep's name.
    pub sweep: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Group by these grid axes instead of by grid point (comma-separated): shape, width,
    /// depth, weights, extension_level (ext), levels, rate, target, scope, method, coupling,
    /// rewind_epochs (rewind), data_seed, seed.
    #[arg(long, value_name = "AXIS[,AXIS]", value_delimiter = ',', value_parser = parse_axis)]
    pub by: Option<Vec<Axis>>,
    /// What the stored levels cost instead: levels, epochs, training seconds and FLOP (epochs x
    /// remaining weights x 8 per data point), in total, against the FLOP limit, and per shape
    /// and pruning levels.
    #[arg(long, conflicts_with = "by")]
    pub cost: bool,
    /// Random masks drawn per seed for the random-mask baseline (the probability that a random
    /// mask with a seed's last per-layer kept counts splits; 0 leaves it out).
    #[arg(long, value_name = "N", default_value_t = shared::baseline::DEFAULT_DRAWS)]
    pub baseline_draws: usize,
    #[command(flatten)]
    pub source: Source,
}

fn parse_axis(name: &str) -> Result<Axis, String> {
    Axis::parse(name)
}

pub async fn results(args: ResultsArgs) -> anyhow::Result<()> {
    let data = super::data::sweep(&args.source, &args.sweep).await?;
    if data.state != "active" {
        let finished = data
            .states
            .iter()
            .filter(|s| matches!(s, TaskState::Done | TaskState::Failed))
            .count();
        eprintln!(
            "sweep {} is {}: {finished} of {} tasks finished; the results are partial",
            data.sweep,
            data.state,
            data.tasks.len()
        );
    }
    if args.cost {
        let (total, parts) = analysis::stats::cost(&data.tasks);
        let text = match args.format {
            Format::Table => tables::cost_table(&total, &parts),
            Format::Csv => tables::cost_csv(&total, &parts),
            Format::Json => format!(
                "{}\n",
                serde_json::to_string_pretty(&tables::cost_json(&total, &parts))?
            ),
        };
        return super::output::print(text);
    }
    if let Some(by) = &args.by {
        let mut axes = by.clone();
        let mut seen = std::collections::HashSet::new();
        axes.retain(|a| seen.insert(*a));
        let mut groups = analysis::stats::group_by(&data.tasks, &axes);
        analysis::baseline::fill(&mut groups, &data.tasks, args.baseline_draws);
        match args.format {
            Format::Table => super::output::print(tables::groups_table(&groups))?,
            Format::Csv => super::output::print(tables::groups_csv(&groups))?,
            Format::Json => super::output::print(format!(
                "{}\n",
                serde_json::to_string_pretty(&tables::groups_json(&groups))?
            ))?,
        }
        return Ok(());
    }
    print_rows(
        &ResultRow::of_tasks_with(&data.tasks, args.baseline_draws),
        args.format,
    )
}

/// Prints grid-point rows in `format`, and a warning on stderr for points that mix engines.
pub fn print_rows(rows: &[ResultRow], format: Format) -> anyhow::Result<()> {
    match format {
        Format::Table => super::output::print(tables::results_table(rows))?,
        Format::Csv => super::output::print(tables::results_csv(rows))?,
        Format::Json => super::output::print(format!("{}\n", tables::results_json(rows)?))?,
    }
    let mixed = rows.iter().filter(|r| r.engines.len() > 1).count();
    if mixed > 0 {
        eprintln!(
            "warning: {mixed} grid point(s) mix results of different training engines \
             (the engine column); compare them with care"
        );
    }
    Ok(())
}
