//! The subcommands of the `coordinator` binary, one file each, and what they share: logging
//! setup and where status and results are read from.

pub mod bench;
pub mod compare;
pub mod control;
pub mod data;
pub mod export;
pub mod output;
pub mod plan;
pub mod plot;
pub mod report;
pub mod results;
pub mod retry;
pub mod serve;
pub mod status;
pub mod submit;

use std::path::PathBuf;

use anyhow::Context;
use coordinator::client::{Client, ClientOptions};
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
    #[command(flatten)]
    pub auth: ClientAuth,
}

/// `--set KEY=VALUE` overrides of a sweep file's keys (shared by `run`, `submit` and `plan`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SweepOverrides {
    /// Override a key of the sweep file, validated like the file: a dotted key and a YAML
    /// value, e.g. `--set train.max_epochs=10 --set seeds=1 --set pruning.rate=[0.2,0.32]`.
    /// Repeatable; applied in order. The sweep keeps its name unless `--set name=...`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_override)]
    pub set: Vec<shared::sweep::Override>,
}

impl SweepOverrides {
    /// Reads, overrides and validates the sweep file (blocking: run off the async threads).
    pub fn load(
        &self,
        path: &std::path::Path,
    ) -> Result<shared::sweep::Sweep, shared::sweep::SweepError> {
        shared::sweep::Sweep::from_path_with(path, &self.set)
    }
}

fn parse_override(s: &str) -> Result<shared::sweep::Override, String> {
    s.parse()
}

/// How a client command authenticates to the coordinator and verifies it: flattened into
/// every command that calls the API, so each takes `--token-file` and `--tls-ca` (declared
/// in [`proto::flags`], which the worker's flags share).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientAuth {
    #[command(flatten)]
    pub flags: proto::flags::ClientFlags,
}

impl ClientAuth {
    /// Reads the token and CA files; warnings (a token file others can read) go to stderr.
    pub fn options(&self) -> anyhow::Result<ClientOptions> {
        let (options, warnings) = self.flags.load()?;
        for warning in warnings {
            eprintln!("warning: {warning}");
        }
        Ok(options)
    }

    /// Connects to the coordinator at `url` with these credentials.
    pub async fn connect(&self, url: &str) -> anyhow::Result<Client> {
        Ok(coordinator::client::connect_with(url, &self.options()?).await?)
    }
}

impl Source {
    /// Connects to the coordinator of `--coordinator`, with `--token-file` / `--tls-ca`.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        self.auth.connect(&self.coordinator).await
    }

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
    if status.code() == tonic::Code::Unauthenticated {
        return anyhow::anyhow!(
            "coordinator refused: {} (Unauthenticated): pass the coordinator's token with \
             --token-file or {}",
            status.message(),
            proto::auth::TOKEN_ENV
        );
    }
    anyhow::anyhow!(
        "coordinator refused: {} ({:?})",
        status.message(),
        status.code()
    )
}
