//! `coordinator plot`: the figures of a sweep (SVG, and PNG unless `--no-png`) into a folder,
//! or one ticket with `--ticket TASK_ID [--level L]`.

use std::path::{Path, PathBuf};

use analysis::plot::{self, Figure};
use analysis::SweepData;
use anyhow::{bail, Context};

use super::Source;

#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// The sweep's name.
    pub sweep: String,
    /// Folder the figures are written to (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Draw this task's ticket (its id, or a unique prefix of it) instead of the sweep's
    /// figures.
    #[arg(long, value_name = "TASK_ID")]
    pub ticket: Option<String>,
    /// The ticket's level (default: its first split level, else its last stored level).
    #[arg(long, value_name = "L", requires = "ticket")]
    pub level: Option<usize>,
    /// Shape of the weights-by-level figure, e.g. 4,85,85,2 (default: the largest network).
    #[arg(long, value_name = "W,W,...", value_delimiter = ',')]
    pub shape: Option<Vec<usize>>,
    /// Write SVG only (no PNG).
    #[arg(long)]
    pub no_png: bool,
    #[command(flatten)]
    pub source: Source,
}

pub async fn plot(args: PlotArgs) -> anyhow::Result<()> {
    let data = super::data::sweep(&args.source, &args.sweep).await?;
    let figures = match &args.ticket {
        Some(prefix) => {
            let (id, level) = resolve_ticket(&data, prefix, args.level)?;
            let ticket = super::data::ticket(&args.source, &args.sweep, &id, level).await?;
            vec![plot::ticket::figure(
                &args.sweep,
                &ticket.spec,
                ticket.metrics.as_ref(),
                ticket.level,
                &ticket.masks,
                !args.no_png,
            )?]
        }
        None => plot::sweep_figures(
            &data.tasks,
            &plot::Options {
                sweep: args.sweep.clone(),
                shape: args.shape.clone(),
                png: !args.no_png,
            },
        )?,
    };
    for path in write_figures(&args.out, &figures)? {
        super::output::print(format!("{}\n", path.display()))?;
    }
    Ok(())
}

/// The task whose id starts with `prefix`, and the level to draw.
pub fn resolve_ticket(
    data: &SweepData,
    prefix: &str,
    level: Option<usize>,
) -> anyhow::Result<(String, usize)> {
    let matches: Vec<_> = data
        .tasks
        .iter()
        .filter(|t| t.spec.id().starts_with(prefix))
        .collect();
    let task = match matches.as_slice() {
        [one] => *one,
        [] => bail!(
            "sweep {} has no task whose id starts with {prefix:?}",
            data.sweep
        ),
        _ => bail!(
            "{} tasks of sweep {} have ids starting with {prefix:?}: give more of the id",
            matches.len(),
            data.sweep
        ),
    };
    let level = match level {
        Some(l) => l,
        None => analysis::stats::first_level(&task.levels, shared::graph::Status::Split)
            .map(|l| l.level)
            .or_else(|| task.levels.len().checked_sub(1))
            .with_context(|| format!("task {} has no level stored yet", task.spec.id()))?,
    };
    Ok((task.spec.id(), level))
}

/// Writes each figure's SVG (and PNG) into `dir`; returns the paths written.
pub fn write_figures(dir: &Path, figures: &[Figure]) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for f in figures {
        let svg = dir.join(format!("{}.svg", f.name));
        std::fs::write(&svg, &f.svg).with_context(|| format!("cannot write {}", svg.display()))?;
        written.push(svg);
        if let Some(png) = &f.png {
            let path = dir.join(format!("{}.png", f.name));
            std::fs::write(&path, png)
                .with_context(|| format!("cannot write {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}
