//! `coordinator bench` (hidden): task round trips per second against an in-process
//! coordinator with a durable database.

use std::path::PathBuf;

use coordinator::bench::{self, BenchConfig};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent synthetic workers.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Tiny tasks to run (one level each).
    #[arg(long, default_value_t = 2000)]
    pub tasks: usize,
    /// The database file (fresh; removed afterwards). Default: in the temp folder.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let db_path = args.db.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("coordinator-bench-{}.db", std::process::id()))
    });
    let report = bench::run(BenchConfig {
        workers: args.workers,
        tasks: args.tasks,
        db_path,
    })
    .await?;
    super::output::print(format!("{report}\n"))?;
    Ok(())
}
