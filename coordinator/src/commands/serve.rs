//! `coordinator serve`: the gRPC coordinator until Ctrl-C or SIGTERM.
//!
//! With a token (`--token-file`, `COORDINATOR_TOKEN_FILE` or `COORDINATOR_TOKEN`) every call
//! must carry it; with `--tls-cert` and `--tls-key` the server speaks TLS only. Listening on
//! an address other than loopback without a token is refused unless `--allow-insecure-public`
//! says so: anyone who can reach the port could submit sweeps and report results.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use coordinator::ServerConfig;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    pub listen: String,
    /// The SQLite database (created when missing).
    #[arg(long, value_name = "PATH", default_value = "results/sweeps.db")]
    pub db: PathBuf,
    /// Seconds a lease lasts without a heartbeat.
    #[arg(long, value_name = "N", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub lease_seconds: u64,
    /// Failed or expired attempts after which a task is marked failed.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// Stall watchdog: a lease whose heartbeats go on but whose worker stores no level for this
    /// many times the longest level its task has stored so far expires, as a hung training
    /// thread would otherwise hold it forever (a task's first level is judged by heartbeats
    /// only). 0 turns it off.
    #[arg(long, value_name = "X", default_value_t = coordinator::config::DEFAULT_WATCHDOG.factor, value_parser = non_negative)]
    pub stall_factor: f64,
    /// The stall watchdog never ends a lease sooner than this many seconds without progress.
    #[arg(long, value_name = "N", default_value_t = (coordinator::config::DEFAULT_WATCHDOG.floor_ms / 1000) as u64)]
    pub stall_min_seconds: u64,
    /// Log JSON lines instead of human-readable text.
    #[arg(long)]
    pub log_json: bool,
    // `--token-file`: the token every client must send.
    #[command(flatten)]
    pub token: proto::flags::TokenFile,
    /// PEM certificate (chain) to serve TLS with; needs --tls-key.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve on a non-loopback address without a token (anyone reaching the port may call
    /// the API).
    #[arg(long)]
    pub allow_insecure_public: bool,
    /// Also serve the live HTML report at this address, e.g. 127.0.0.1:8080 (`/` lists the
    /// sweeps, `/sweeps/NAME` shows one). Read-only and unauthenticated: a non-loopback
    /// address needs --allow-insecure-public.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

/// A finite number of zero or more.
fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a number of zero or more")),
    }
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    super::init_logging(args.log_json, "info");
    let mut config =
        ServerConfig::new(&args.db).with_lease(Duration::from_secs(args.lease_seconds));
    config.max_attempts = args.max_attempts;
    config.watchdog = coordinator::store::leases::Watchdog {
        factor: args.stall_factor,
        floor_ms: (args.stall_min_seconds as i64).saturating_mul(1000),
    };
    let (token, warning) = proto::auth::load_token(args.token.token_file.as_deref())?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    config.token = token;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let cert_pem = proto::auth::read_pem(cert, "TLS certificate", "CERTIFICATE")?;
        let key_pem = proto::auth::read_pem(key, "TLS private key", "PRIVATE KEY")?;
        if let Some(warning) = proto::auth::permission_warning(key) {
            tracing::warn!("{warning}");
        }
        config = config.with_tls(cert_pem, key_pem);
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("cannot read the address of {}", args.listen))?;
    check_exposure(
        addr,
        config.token.is_some(),
        config.tls.is_some(),
        args.allow_insecure_public,
    )?;
    let http = match &args.http {
        Some(addr) => Some(
            super::report::start_http(addr, &config, args.allow_insecure_public, shutdown_signal())
                .await?,
        ),
        None => None,
    };
    let served = coordinator::serve(config, listener, shutdown_signal()).await;
    if let Some(http) = http {
        http.abort();
    }
    served?;
    Ok(())
}

/// Refuses a public address without a token (unless explicitly allowed); warns about a token
/// that would travel unencrypted.
fn check_exposure(
    addr: std::net::SocketAddr,
    token: bool,
    tls: bool,
    allow_insecure_public: bool,
) -> anyhow::Result<()> {
    let public = !addr.ip().is_loopback();
    if public && !token {
        if !allow_insecure_public {
            bail!(
                "refusing to serve on {addr} without a token: anyone who can reach it could \
                 submit sweeps and report results. Give a token (--token-file PATH or {}), \
                 listen on 127.0.0.1, or pass --allow-insecure-public",
                proto::auth::TOKEN_ENV
            );
        }
        tracing::warn!(%addr, "serving without a token on a public address (--allow-insecure-public)");
    }
    if public && token && !tls {
        tracing::warn!(%addr, "the token travels unencrypted: serve TLS with --tls-cert and --tls-key");
    }
    Ok(())
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for sigterm");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_need_a_token_or_an_explicit_opt_out() {
        let public: std::net::SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let loopback: std::net::SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let err = check_exposure(public, false, false, false).unwrap_err();
        assert!(err.to_string().contains("--allow-insecure-public"), "{err}");
        assert!(check_exposure(public, false, false, true).is_ok());
        assert!(check_exposure(public, true, false, false).is_ok());
        assert!(check_exposure(public, true, true, false).is_ok());
        assert!(check_exposure(loopback, false, false, false).is_ok());
        let v6: std::net::SocketAddr = "[::1]:50051".parse().unwrap();
        assert!(check_exposure(v6, false, false, false).is_ok());
    }
}
