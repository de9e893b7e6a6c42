//! `coordinator export`: a sweep's results in long format (one row per task and level) as
//! CSV, JSON or Parquet, or one ticket's active graph as GraphML or DOT.

use std::path::PathBuf;

use analysis::export;
use anyhow::{bail, Context};
use shared::graph::Ticket;

use super::Source;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
    Parquet,
    Graphml,
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The sweep's name.
    pub sweep: String,
    /// csv, json or parquet: every task and level; graphml or dot: one ticket (--ticket).
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write to this file instead of stdout (needed for parquet).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The task (id or unique prefix) whose ticket graphml / dot export.
    #[arg(long, value_name = "TASK_ID")]
    pub ticket: Option<String>,
    /// The ticket's level (default: its first split level, else its last stored level).
    #[arg(long, value_name = "L", requires = "ticket")]
    pub level: Option<usize>,
    /// Graph exports: also the zombie and inactive neurons and weights (with their class).
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub source: Source,
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    use ExportFormat::*;
    let graph = matches!(args.format, Graphml | Dot);
    if graph && args.ticket.is_none() {
        bail!("--format graphml and dot export one ticket: give --ticket TASK_ID [--level L]");
    }
    if !graph && args.ticket.is_some() {
        bail!("--ticket goes with --format graphml or dot");
    }
    let data = super::data::sweep(&args.source, &args.sweep).await?;
    let bytes: Vec<u8> = if let Some(prefix) = &args.ticket {
        let (id, level) = super::plot::resolve_ticket(&data, prefix, args.level)?;
        let t = super::data::ticket(&args.source, &args.sweep, &id, level).await?;
        shared::graph::validate_masks(&t.spec.shape, &t.masks)
            .context("the stored masks do not fit the task")?;
        let ticket = Ticket::from_masks(&t.masks, &t.spec.task_io());
        match args.format {
            Graphml => ticket.to_graphml(args.all).into_bytes(),
            _ => ticket.to_dot(args.all).into_bytes(),
        }
    } else {
        let table = export::long_table(&data.sweep, &data.tasks);
        let mut bytes = Vec::new();
        match args.format {
            Csv => export::write_csv(&table, &mut bytes)?,
            Json => export::write_json(&table, &mut bytes)?,
            _ => {
                let Some(path) = &args.out else {
                    bail!("parquet is binary: give --out FILE");
                };
                let file = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                export::write_parquet(&table, file)?;
                eprintln!("{} rows written to {}", table.rows.len(), path.display());
                return Ok(());
            }
        }
        bytes
    };
    match &args.out {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => super::output::print(&bytes)?,
    }
    Ok(())
}
