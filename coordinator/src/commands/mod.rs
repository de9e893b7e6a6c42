//! The subcommands of the `coordinator` binary, one file each, and what they share: logging
//! setup and where status and results are read from.

pub mod bench;
pub mod plan;
pub mod results;
pub mod serve;
pub mod status;
pub mod submit;

use std::path::PathBuf;

use anyhow::Context;
use coordinator::store::Store;

/// The default coordinator address of the client commands.
pub const DEFAULT_COORDINATOR: &str = "http://127.0.0.1:50051";

/// Where `status` and `results` read from: a running coordinator, or its database directly
/// (read-only, so it is safe while the coordinator serves).
#[derive(Debug, Clone, clap::Args)]
pub struct Source {
    /// The coordinator's URL.
    #[arg(long, value_name = "URL", default_value = DEFAULT_COORDINATOR, conflicts_with = "db")]
    pub coordinator: String,
    /// Read the coordinator's SQLite database directly instead (read-only).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

impl Source {
    /// Opens the database read-only (blocking work, on the blocking pool).
    pub async fn open_db(path: PathBuf) -> anyhow::Result<Store> {
        tokio::task::spawn_blocking(move || Store::open_read_only(&path))
            .await
            .context("database task failed")?
            .map_err(anyhow::Error::from)
    }
}

/// Logs to stderr: human-readable by default, JSON lines with `json`; `RUST_LOG` overrides
/// the default level.
pub fn init_logging(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Turns a gRPC error into one readable line.
pub fn rpc_error(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "coordinator refused: {} ({:?})",
        status.message(),
        status.code()
    )
}
