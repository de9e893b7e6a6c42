//! The live report over HTTP (`coordinator serve --http ADDR`): the same page as
//! `coordinator report`, rendered from the database on request (cached for a few seconds)
//! and reloading itself, so it follows a sweep as results arrive.
//!
//! Routes: `/` lists the sweeps, `/sweeps/NAME` is a sweep's report, `/sweeps/NAME/export.csv`
//! and `/sweeps/NAME/export.json` its long-format export, `/healthz` answers `ok`. The
//! database is opened read-only (lazily, so the page server may start before the coordinator
//! has created it); rendering runs on the blocking pool.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use analysis::export;
use analysis::report::{self, escape, ReportInput};

use crate::clock::now_ms;
use crate::error::ApiError;
use crate::service::wire;
use crate::store::queries::{self, StatusWindows};
use crate::store::{sweeps, Store, StoreError};
use crate::sweep_data;

/// Settings of the page server.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The coordinator's database.
    pub db_path: PathBuf,
    /// Windows of the progress figures (as the coordinator's status).
    pub windows: StatusWindows,
    /// Pages reload themselves this often.
    pub refresh_seconds: u32,
    /// A rendered page is reused for this long.
    pub cache_for: Duration,
}

impl HttpConfig {
    /// Defaults for the database at `db_path`: reload every 10 s, cache 2 s.
    pub fn new(db_path: impl Into<PathBuf>) -> HttpConfig {
        let db_path = db_path.into();
        let windows =
            crate::service::CoordinatorService::windows(&crate::ServerConfig::new(&db_path));
        HttpConfig {
            db_path,
            windows,
            refresh_seconds: 10,
            cache_for: Duration::from_secs(2),
        }
    }
}

/// Connections served at once.
pub const MAX_HTTP_CONNECTIONS: usize = 64;
/// A connection that sends nothing for this long is closed.
pub const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// A request whose headers take longer than this is dropped (slow clients).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection is served, rendering included.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Threads of the blocking pool the page server uses at once.
pub const RENDER_SLOTS: usize = 2;

struct AppState {
    config: HttpConfig,
    store: Mutex<Option<Store>>,
    /// Rendered pages and exports by path, with when they were made.
    cache: Mutex<HashMap<String, (Instant, Cached)>>,
    render_slots: Semaphore,
}

/// A rendered answer.
#[derive(Clone)]
enum Cached {
    Page(String),
    File(&'static str, Vec<u8>),
}

impl Cached {
    fn into_response(self) -> Response {
        match self {
            Cached::Page(page) => Html(page).into_response(),
            Cached::File(kind, bytes) => ([(header::CONTENT_TYPE, kind)], bytes).into_response(),
        }
    }
}

impl AppState {
    fn cached(&self, key: &str) -> Option<Cached> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.config.cache_for)
            .map(|(_, answer)| answer.clone())
    }

    fn remember(&self, key: String, answer: Cached) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let keep = self.config.cache_for;
        cache.retain(|_, (at, _)| at.elapsed() < keep);
        cache.insert(key, (Instant::now(), answer));
    }
}

impl AppState {
    fn store(&self) -> Result<Store, ApiError> {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = guard.as_ref() {
            return Ok(store.clone());
        }
        let store = Store::open_read_only(&self.config.db_path)?;
        *guard = Some(store.clone());
        Ok(store)
    }
}

fn error_response(error: ApiError) -> Response {
    let code = match error {
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        code,
        Html(format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{code}</title></head>\
             <body><h1>{code}</h1><p>{}</p><p><a href=\"/\">All sweeps</a></p></body></html>",
            escape(&error.to_string())
        )),
    )
        .into_response()
}

/// Runs blocking work with the store on the blocking pool, in one of the render slots.
async fn with_store<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = state
        .render_slots
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let store = state.store()?;
        f(&store)
    })
    .await
    .map_err(|e| ApiError::Store(crate::store::StoreError::Join(e.to_string())))?
}

/// The report page of `sweep` from the store (blocking).
pub fn render_page(
    store: &Store,
    sweep: &str,
    windows: StatusWindows,
    refresh_seconds: Option<u32>,
) -> Result<String, ApiError> {
    let (data, status, ticket) = store.run_blocking(|c| {
        let data = sweep_data::load(c, sweep)?;
        let status = queries::status(c, Some(sweep), now_ms(), windows)?;
        let ticket = match data.showcase() {
            Some((id, level)) => Some(sweep_data::load_ticket(c, sweep, &id, level)?),
            None => None,
        };
        Ok::<_, StoreError>((data, status, ticket))
    })?;
    let progress = wire::progress(&status, sweep);
    Ok(report::render(ReportInput {
        data: &data,
        status: Some(&progress),
        ticket: ticket.as_ref(),
        refresh_seconds,
        generated_unix_ms: now_ms(),
    }))
}

async fn index(State(state): State<Arc<AppState>>) -> Response {
    let refresh = state.config.refresh_seconds;
    match with_store(&state, |s| {
        s.run_blocking(|c| sweeps::list(c).map_err(ApiError::from))
    })
    .await
    {
        Ok(list) => {
            let mut items = String::new();
            for s in &list {
                items.push_str(&format!(
                    "<li><a href=\"/sweeps/{0}\">{0}</a>: {1} of {2} tasks done, {3} failed</li>\n",
                    escape(&s.name),
                    s.done,
                    s.total,
                    s.failed
                ));
            }
            if list.is_empty() {
                items.push_str("<li>No sweep submitted yet.</li>");
            }
            Html(format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta http-equiv=\"refresh\" content=\"{refresh}\">\
                 <title>Lottery sweeps</title></head><body style=\"font-family: sans-serif\">\
                 <h1>Sweeps</h1><ul id=\"sweeps\">\n{items}</ul></body></html>\n"
            ))
            .into_response()
        }
        Err(e) => error_response(e),
    }
}

async fn sweep_page(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let key = format!("/sweeps/{name}");
    if let Some(answer) = state.cached(&key) {
        return answer.into_response();
    }
    let (windows, refresh) = (state.config.windows, state.config.refresh_seconds);
    match with_store(&state, move |s| {
        render_page(s, &name, windows, Some(refresh))
    })
    .await
    {
        Ok(page) => {
            let answer = Cached::Page(page);
            state.remember(key, answer.clone());
            answer.into_response()
        }
        Err(e) => error_response(e),
    }
}

async fn export_file(
    State(state): State<Arc<AppState>>,
    Path((name, file)): Path<(String, String)>,
) -> Response {
    let json = match file.as_str() {
        "export.csv" => false,
        "export.json" => true,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let key = format!("/sweeps/{name}/{file}");
    if let Some(answer) = state.cached(&key) {
        return answer.into_response();
    }
    let sweep = name;
    let result = with_store(&state, move |s| {
        let data = s.run_blocking(|c| sweep_data::load(c, &sweep))?;
        let table = export::long_table(&data.sweep, &data.tasks);
        let mut bytes = Vec::new();
        let written = if json {
            export::write_json(&table, &mut bytes)
        } else {
            export::write_csv(&table, &mut bytes)
        };
        written.map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        Ok(bytes)
    })
    .await;
    match result {
        Ok(bytes) => {
            let kind = if json {
                "application/json"
            } else {
                "text/csv; charset=utf-8"
            };
            let answer = Cached::File(kind, bytes);
            state.remember(key, answer.clone());
            answer.into_response()
        }
        Err(e) => error_response(e),
    }
}

/// Hosts a loopback page answers to: `localhost`, `127.0.0.1` or `[::1]`, with or without
/// the port it listens on.
fn loopback_host(host: &str, port: u16) -> bool {
    let (name, given) = match host.rsplit_once(':') {
        Some((name, p)) if !name.ends_with(':') && !p.contains(']') => (name, Some(p)),
        _ => (host, None),
    };
    let port_ok = given.is_none_or(|p| p.parse::<u16>() == Ok(port));
    port_ok && matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// Refuses a request to a loopback page whose `Host` names another host (421).
async fn check_host(
    State(port): State<u16>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if loopback_host(host, port) {
        return next.run(request).await;
    }
    tracing::warn!(host, "report page request refused: not a loopback host");
    (
        StatusCode::MISDIRECTED_REQUEST,
        format!(
            "this page answers to loopback hosts only (the request named {host:?}); open \
             http://127.0.0.1:{port}/\n"
        ),
    )
        .into_response()
}

/// The page server's routes for a server listening on `addr` (on a loopback address, only
/// loopback `Host`s are answered).
pub fn router(config: HttpConfig, addr: SocketAddr) -> Router {
    let state = Arc::new(AppState {
        config,
        store: Mutex::new(None),
        cache: Mutex::new(HashMap::new()),
        render_slots: Semaphore::new(RENDER_SLOTS),
    });
    let routes = Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/sweeps/{name}", get(sweep_page))
        .route("/sweeps/{name}/{file}", get(export_file))
        .with_state(state);
    if addr.ip().is_loopback() {
        routes.layer(axum::middleware::from_fn_with_state(
            addr.port(),
            check_host,
        ))
    } else {
        routes
    }
}

/// Serves the pages on `listener` until `shutdown` resolves, with the limits of the module
/// documentation.
pub async fn serve_http(
    config: HttpConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "report pages served at http://{addr}/");
    let app = router(config, addr);
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        // A slot before accepting: past the cap, connections wait in the kernel's backlog
        // and cost this process nothing.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "report pages: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if !matches!(
                tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.readable()).await,
                Ok(Ok(()))
            ) {
                tracing::debug!(%peer, "report pages: idle connection closed");
                return;
            }
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(false)
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(app),
                );
            match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%peer, %error, "report pages: connection ended"),
                Err(_) => tracing::debug!(%peer, "report pages: connection took too long, closed"),
            }
        });
    }
    Ok(())
}

/// A page server running in the background (tests, embedding).
#[derive(Debug)]
pub struct RunningHttp {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningHttp {
    /// Serves `config` on `listener` in the background.
    pub fn start(config: HttpConfig, listener: TcpListener) -> std::io::Result<RunningHttp> {
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(serve_http(config, listener, async move {
            let _ = stopped.wait_for(|&s| s).await;
        }));
        Ok(RunningHttp { addr, stop, task })
    }

    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits until done.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_page_answers_to_loopback_hosts_only() {
        for host in [
            "localhost",
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(loopback_host(host, 8080), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8080",
            "127.0.0.1:9090",
            "127.0.0.2:8080",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(host, 8080), "{host}");
        }
    }
}
