//! `coordinator bench` (hidden): task round trips and calls per second against a coordinator
//! with a durable database (`coordinator::bench`), saturated or at real workers' rates
//! (`--level-ms`), for one or several fleet sizes; with `--fleet`, a simulated fleet's makespan in the
//! coordinator's lease order against the old order and the lower bound (`coordinator::fleet`).

use std::path::PathBuf;

use anyhow::{bail, Context};
use coordinator::bench::{self, BenchConfig, Pace};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent synthetic workers; several (comma-separated) run one after another.
    #[arg(long, value_name = "N[,N]", value_delimiter = ',', default_value = "8")]
    pub workers: Vec<usize>,
    /// Tasks to run (saturated: one tiny level each; paced: `--levels` + 1 levels each).
    #[arg(long, default_value_t = 2000)]
    pub tasks: usize,
    /// Paced: each worker reports a level every this many milliseconds (0: saturated, as fast
    /// as the coordinator answers).
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub level_ms: u64,
    /// Paced: milliseconds between two heartbeats of one lease (a real worker's: the
    /// coordinator's heartbeat interval, 10 s by default).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub heartbeat_ms: u64,
    /// Paced: pruning levels per task.
    #[arg(long, default_value_t = 20)]
    pub levels: usize,
    /// Run the coordinator in this process (shows writes per commit) instead of as a child
    /// `coordinator serve` process (shows its peak memory).
    #[arg(long, conflicts_with = "server")]
    pub in_process: bool,
    /// The coordinator executable to run as the child process (default: this one), e.g. an
    /// older build, to compare two builds under the same load.
    #[arg(long, value_name = "EXE")]
    pub server: Option<PathBuf>,
    /// The database file (fresh; removed afterwards). Default: in the temp folder.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Simulate fleets of these many one-slot workers instead (comma-separated), on the
    /// levels and seconds of a stored run (`--levels-from`, `--sweep`).
    #[arg(long, value_name = "N[,N]", value_delimiter = ',', requires_all = ["levels_from", "sweep"])]
    pub fleet: Option<Vec<usize>>,
    /// The stored run's long export (`coordinator export SWEEP --format csv`).
    #[arg(long, value_name = "CSV")]
    pub levels_from: Option<PathBuf>,
    /// The run's sweep file.
    #[arg(long, value_name = "FILE")]
    pub sweep: Option<PathBuf>,
}

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if let (Some(fleets), Some(csv), Some(sweep)) = (&args.fleet, &args.levels_from, &args.sweep) {
        return fleet(fleets, csv, sweep).await;
    }
    let db_path = args.db.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("coordinator-bench-{}.db", std::process::id()))
    });
    let pace = (args.level_ms > 0).then(|| Pace {
        level: std::time::Duration::from_millis(args.level_ms),
        heartbeat: std::time::Duration::from_millis(args.heartbeat_ms.max(1)),
        levels: args.levels,
    });
    let server_exe = match (args.in_process, args.server) {
        (true, _) => None,
        (false, Some(exe)) => Some(exe),
        (false, None) => {
            Some(std::env::current_exe().context("finding this executable to run `serve`")?)
        }
    };
    for workers in args.workers {
        let report = bench::run(BenchConfig {
            workers,
            tasks: args.tasks,
            db_path: db_path.clone(),
            pace,
            server_exe: server_exe.clone(),
        })
        .await?;
        super::output::print(format!("{report}\n"))?;
    }
    Ok(())
}

/// The simulated fleets of `--fleet`.
async fn fleet(fleets: &[usize], csv: &PathBuf, sweep_file: &PathBuf) -> anyhow::Result<()> {
    let yaml = std::fs::read_to_string(sweep_file)
        .with_context(|| format!("reading {}", sweep_file.display()))?;
    let sweep = coordinator::submit::expand(&yaml, &sweep_file.display().to_string(), "")?;
    let specs = shared::sweep::Sweep::from_path(sweep_file)?.expand()?;
    let text =
        std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
    let tasks = analysis::import::long_csv(specs, &text)
        .with_context(|| format!("reading {}", csv.display()))?;
    if let Some(t) = tasks.iter().find(|t| !t.done) {
        bail!(
            "task {} (index {}) is not done in {}: simulate a finished run",
            t.spec.id(),
            t.idx,
            csv.display()
        );
    }
    let dir = std::env::temp_dir().join(format!("coordinator-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let fleets = fleets.to_vec();
    let in_dir = dir.clone();
    let rows = tokio::task::spawn_blocking(move || {
        coordinator::fleet::simulate(&sweep, &tasks, &fleets, &in_dir)
    })
    .await?;
    let _ = std::fs::remove_dir_all(&dir);
    super::output::print(coordinator::fleet::table(&rows?))?;
    Ok(())
}
