//! `coordinator results`: per-grid-point aggregates of a sweep.

use coordinator::aggregate::{self, Row};
use coordinator::error::ApiError;
use coordinator::{convert, render};

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
    /// depth, weights, extension_level (ext), levels, rate, target, scope, seed.
    #[arg(long, value_name = "AXIS[,AXIS]", value_delimiter = ',', value_parser = parse_axis)]
    pub by: Option<Vec<coordinator::stats::Axis>>,
    #[command(flatten)]
    pub source: Source,
}

fn parse_axis(name: &str) -> Result<coordinator::stats::Axis, String> {
    coordinator::stats::Axis::parse(name)
}

pub async fn results(args: ResultsArgs) -> anyhow::Result<()> {
    if let Some(by) = &args.by {
        let mut axes = by.clone();
        let mut seen = std::collections::HashSet::new();
        axes.retain(|a| seen.insert(*a));
        let data = super::data::sweep(&args.source, &args.sweep).await?;
        let groups = coordinator::stats::group_by(&data.tasks, &axes);
        match args.format {
            Format::Table => print!("{}", coordinator::tables::groups_table(&groups)),
            Format::Csv => print!("{}", coordinator::tables::groups_csv(&groups)),
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&coordinator::tables::groups_json(&groups))?
            ),
        }
        return Ok(());
    }
    let rows = fetch(&args.source, &args.sweep).await?;
    match args.format {
        Format::Table => print!("{}", render::results_table(&rows)),
        Format::Csv => print!("{}", render::results_csv(&rows)),
        Format::Json => println!("{}", render::results_json(&rows)?),
    }
    Ok(())
}

/// The aggregate rows of a sweep from a coordinator or a database.
pub async fn fetch(source: &Source, sweep: &str) -> anyhow::Result<Vec<Row>> {
    if let Some(db) = &source.db {
        let store = Source::open_db(db.clone()).await?;
        let name = sweep.to_string();
        let tasks = store
            .run(move |c| coordinator::store::queries::task_results(c, &name))
            .await
            .map_err(|e: ApiError| anyhow::anyhow!(e))?;
        return Ok(aggregate::aggregate(&tasks));
    }
    let mut client = source.connect().await?;
    let answer = client
        .results(proto::v1::ResultsRequest {
            sweep: sweep.to_string(),
        })
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    Ok(answer.rows.iter().map(convert::row_from_proto).collect())
}
