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
    #[command(flatten)]
    pub source: Source,
}

pub async fn results(args: ResultsArgs) -> anyhow::Result<()> {
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
    let mut client = coordinator::client::connect(&source.coordinator).await?;
    let answer = client
        .results(proto::v1::ResultsRequest {
            sweep: sweep.to_string(),
        })
        .await
        .map_err(super::rpc_error)?
        .into_inner();
    Ok(answer.rows.iter().map(convert::row_from_proto).collect())
}
