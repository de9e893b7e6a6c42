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
use tokio::sync::watch;
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

struct AppState {
    config: HttpConfig,
    store: Mutex<Option<Store>>,
    cache: Mutex<HashMap<String, (Instant, String)>>,
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

/// Runs blocking work with the store on the blocking pool.
async fn with_store<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
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
    if let Some((at, page)) = state
        .cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&name)
        .cloned()
    {
        if at.elapsed() < state.config.cache_for {
            return Html(page).into_response();
        }
    }
    let (windows, refresh) = (state.config.windows, state.config.refresh_seconds);
    let sweep = name.clone();
    match with_store(&state, move |s| {
        render_page(s, &sweep, windows, Some(refresh))
    })
    .await
    {
        Ok(page) => {
            state
                .cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name, (Instant::now(), page.clone()));
            Html(page).into_response()
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
    let sweep = name.clone();
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
            ([(header::CONTENT_TYPE, kind)], bytes).into_response()
        }
        Err(e) => error_response(e),
    }
}

/// The page server's routes.
pub fn router(config: HttpConfig) -> Router {
    let state = Arc::new(AppState {
        config,
        store: Mutex::new(None),
        cache: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/sweeps/{name}", get(sweep_page))
        .route("/sweeps/{name}/{file}", get(export_file))
        .with_state(state)
}

/// Serves the pages on `listener` until `shutdown` resolves.
pub async fn serve_http(
    config: HttpConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "report pages served at http://{addr}/");
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
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
