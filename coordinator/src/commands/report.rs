//! `coordinator report`: the sweep's self-contained HTML report (settings, progress,
//! statistics tables, every figure inline) written to `DIR/index.html`.

use std::path::PathBuf;

use analysis::report::{self, ReportInput};
use anyhow::Context;

use super::Source;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The sweep's name.
    pub sweep: String,
    /// Folder the page is written to (DIR/index.html; created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub source: Source,
}

pub async fn report(args: ReportArgs) -> anyhow::Result<()> {
    let data = super::data::sweep(&args.source, &args.sweep).await?;
    let status = super::data::progress(&args.source, &args.sweep).await?;
    let ticket = match data.showcase() {
        Some((id, level)) => {
            Some(super::data::ticket(&args.source, &args.sweep, &id, level).await?)
        }
        None => None,
    };
    let page = report::render(ReportInput {
        data: &data,
        status: Some(&status),
        ticket: ticket.as_ref(),
        refresh_seconds: None,
        generated_unix_ms: coordinator::clock::now_ms(),
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join("index.html");
    std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
    super::output::print(format!("{}\n", path.display()))?;
    Ok(())
}

/// Starts the live report pages of `coordinator serve --http ADDR` in the background, until
/// `shutdown` resolves. The pages have no authentication: an address other than loopback
/// needs `allow_public` (the serve command's `--allow-insecure-public`).
pub async fn start_http(
    addr: &str,
    config: &coordinator::ServerConfig,
    allow_public: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the report pages"))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address of {addr}"))?;
    if !local.ip().is_loopback() && !allow_public {
        anyhow::bail!(
            "refusing to serve the report pages on {local}: they have no authentication, so \
             anyone who can reach it could read the results. Listen on 127.0.0.1 (e.g. behind \
             an SSH tunnel or a proxy) or pass --allow-insecure-public"
        );
    }
    let mut http = coordinator::http::HttpConfig::new(&config.db_path);
    http.windows = coordinator::service::CoordinatorService::windows(config);
    eprintln!("report pages at http://{local}/");
    Ok(tokio::spawn(coordinator::http::serve_http(
        http, listener, shutdown,
    )))
}
