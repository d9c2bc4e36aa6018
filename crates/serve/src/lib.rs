//! `towerwatch serve`: the live service, first slice.
//!
//! Events come in over HTTP as JSON Lines in every shape `hunt` reads (evtx_dump,
//! Winlogbeat/ECS, flat), plain, gzip or zstd. A batch is on disk ([`store`]: SQLite, WAL,
//! full sync) before it is acknowledged, and an event is known by its identity (the source
//! and its line in it), so a batch sent twice changes nothing. The results are the hunt
//! library's ([`towerwatch_hunt::Hunt::stream`]) over every stored event, in event time:
//! the same detections and operations `hunt` gives on the same files.
//!
//! Routes: `POST /api/v1/events?source=NAME&first_line=N` (one JSON object per line; the
//! reply counts what was accepted, already held and rejected, with line numbers),
//! `GET /api/v1/detections` (JSON Lines), `GET /api/v1/operations` (the operations, waves,
//! suspected actor and leads, as `operations.json`), `GET /metrics` (Prometheus' text:
//! events accepted, duplicates, rejected, refused requests, stored), `GET /healthz`.
//!
//! Every route but `/healthz` needs a bearer token whose role allows it ([`auth`]):
//! `POST /api/v1/tokens` (admin) issues one, `GET /api/v1/audit` (admin) reads the
//! append-only audit log. There are no default credentials: [`init`] issues the first admin
//! token, once.
//!
//! Not yet here (see issue 18): TLS, browser sessions, rate limits, raw W3C and PostgreSQL
//! lines, `ship --follow`, the web UI, audited reveals, latency histograms.
//! It binds 127.0.0.1 by default.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let data = std::path::Path::new("data");
//! println!("admin token: {}", towerwatch_serve::init(data)?);
//! let hunt = Arc::new(towerwatch_hunt::Hunt::builder().build()?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! towerwatch_serve::serve(listener, data, hunt).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod bulk;
pub mod ship;
pub mod store;

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use towerwatch_hunt::{Detection, DetectionSink, HeldDetection, Hunt, HuntError};

use auth::{Auth, AuthError, Caller, Need, Role};
use store::{Store, StoreError};

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0} has no admin token: run `towerwatch serve --data {0} init` first (there are no default credentials)")]
    NotInitialised(String),
}

/// Issues the first admin token of the data directory `data` (created if missing).
pub fn init(data: &Path) -> Result<String, ServeError> {
    std::fs::create_dir_all(data)?;
    Ok(Auth::open(store::connect(data)?).init()?)
}

/// Largest request body taken (decompressed batches are limited by the same figure).
const MAX_BODY: usize = 64 << 20;

struct AppState {
    store: Mutex<Store>,
    auth: Auth,
    hunt: Arc<Hunt>,
    /// The last results and the number of events they were made from.
    results: Mutex<Option<(u64, Arc<Results>)>>,
    metrics: Metrics,
}

/// Counters for `/metrics` (Prometheus' text format), since the process started.
#[derive(Default)]
struct Metrics {
    accepted: std::sync::atomic::AtomicU64,
    duplicates: std::sync::atomic::AtomicU64,
    rejected: std::sync::atomic::AtomicU64,
    refused_requests: std::sync::atomic::AtomicU64,
}

impl Metrics {
    fn add(&self, counter: &std::sync::atomic::AtomicU64, n: u64) {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn text(&self, stored: u64) -> String {
        let get = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        format!(
            "# HELP towerwatch_events_accepted_total Events stored (durable) since start.\n\
             # TYPE towerwatch_events_accepted_total counter\n\
             towerwatch_events_accepted_total {}\n\
             # HELP towerwatch_events_duplicate_total Events sent again (already held).\n\
             # TYPE towerwatch_events_duplicate_total counter\n\
             towerwatch_events_duplicate_total {}\n\
             # HELP towerwatch_events_rejected_total Lines or documents that were no event.\n\
             # TYPE towerwatch_events_rejected_total counter\n\
             towerwatch_events_rejected_total {}\n\
             # HELP towerwatch_requests_refused_total Requests refused (authorization, bad bodies, store errors).\n\
             # TYPE towerwatch_requests_refused_total counter\n\
             towerwatch_requests_refused_total {}\n\
             # HELP towerwatch_events_stored Events in the store.\n\
             # TYPE towerwatch_events_stored gauge\n\
             towerwatch_events_stored {stored}\n",
            get(&self.accepted),
            get(&self.duplicates),
            get(&self.rejected),
            get(&self.refused_requests),
        )
    }
}

/// What the hunt over every stored event gives.
struct Results {
    detections: String,
    operations: serde_json::Value,
}

/// Serves until the process is stopped (Ctrl-C or SIGTERM end it gracefully: requests in
/// flight finish, and every acknowledged batch is already on disk).
pub async fn serve(
    listener: tokio::net::TcpListener,
    data: &Path,
    hunt: Arc<Hunt>,
) -> Result<(), ServeError> {
    std::fs::create_dir_all(data)?;
    let auth = Auth::open(store::connect(data)?);
    if !auth.initialised()? {
        return Err(ServeError::NotInitialised(data.display().to_string()));
    }
    let state = Arc::new(AppState {
        store: Mutex::new(Store::open(data)?),
        auth,
        hunt,
        results: Mutex::new(None),
        metrics: Metrics::default(),
    });
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/events", post(ingest))
        .route("/api/v1/detections", get(detections))
        .route("/api/v1/operations", get(operations))
        .route("/api/v1/tokens", post(issue_token))
        // What Elasticsearch shippers (Beats, Elastic Agent, Fluent Bit, Vector) speak.
        .route("/", get(es_info).head(es_info))
        .route("/_license", get(es_license))
        .route("/_bulk", post(es_bulk).put(es_bulk))
        .route("/{index}/_bulk", post(es_bulk_index).put(es_bulk_index))
        .route("/api/v1/audit", get(audit))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Binds `listen`, tells `ready` the address (port 0 picks a free one), and serves on a
/// runtime of its own until stopped.
pub fn run(
    listen: std::net::SocketAddr,
    data: &Path,
    hunt: Arc<Hunt>,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServeError> {
    // Refused before anything listens.
    std::fs::create_dir_all(data)?;
    if !Auth::open(store::connect(data)?).initialised()? {
        return Err(ServeError::NotInitialised(data.display().to_string()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        ready(listener.local_addr()?);
        serve(listener, data, hunt).await
    })
}

#[derive(serde::Deserialize)]
struct Batch {
    /// The evidence the lines come from (a file path, a host's log): with the line, an
    /// event's identity.
    source: String,
    /// The line of the batch's first line in its source (1 when not given).
    #[serde(default = "one")]
    first_line: u64,
}

fn one() -> u64 {
    1
}

/// A request that cannot be taken, said to the client.
fn refuse(status: StatusCode, why: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": why.into() }))).into_response()
}

/// The caller, if its bearer token is valid and its role may do what the route needs:
/// 401 without a valid token, 403 when the role may not.
fn authorize(state: &AppState, headers: &HeaderMap, need: Need) -> Result<Caller, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(caller) = token.and_then(|t| state.auth.check(t.trim())) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is needed",
        ));
    };
    if !caller.role.can(need) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("the {} role may not do this", caller.role.name()),
        ));
    }
    Ok(caller)
}

#[derive(serde::Deserialize)]
struct NewToken {
    name: String,
    role: Role,
}

async fn issue_token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&state, &headers, Need::Admin) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let Ok(new) = serde_json::from_slice::<NewToken>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected {\"name\": …, \"role\": viewer|ingest|analyst|admin}",
        );
    };
    let issued =
        tokio::task::spawn_blocking(move || state.auth.issue(&new.name, new.role, Some(&caller)))
            .await;
    match issued {
        Ok(Ok(token)) => Json(serde_json::json!({ "token": token })).into_response(),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn audit(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Admin) {
        return refused;
    }
    match state.auth.audit() {
        Ok(log) => Json(log).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn ingest(
    State(state): State<Arc<AppState>>,
    Query(batch): Query<Batch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Ingest) {
        return refused;
    }
    let text = match decode(&headers, &body) {
        Ok(t) => t,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let state_metrics = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        store.ingest(&batch.source, batch.first_line, &text)
    })
    .await;
    match stored {
        Ok(Ok(ingested)) => {
            let m = &state_metrics.metrics;
            m.add(&m.accepted, ingested.accepted);
            m.add(&m.duplicates, ingested.duplicates);
            m.add(&m.rejected, ingested.rejected.len() as u64);
            (StatusCode::OK, Json(ingested)).into_response()
        }
        // Not stored, so not acknowledged: the client sends the batch again.
        Ok(Err(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The body as text: plain, or by its `Content-Encoding` gzip or zstd.
fn decode(headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_ascii_lowercase();
    let mut out = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    let read = match encoding.as_str() {
        "identity" => {
            out.extend_from_slice(body);
            Ok(0)
        }
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        "zstd" => {
            zstd::stream::read::Decoder::new(body).and_then(|d| d.take(limit).read_to_end(&mut out))
        }
        other => return Err(format!("unknown Content-Encoding {other}")),
    };
    read.map_err(|e| format!("cannot decode the {encoding} body: {e}"))?;
    if out.len() > MAX_BODY {
        return Err(format!("the batch is over {MAX_BODY} bytes decoded"));
    }
    String::from_utf8(out).map_err(|e| format!("the batch is not UTF-8: {e}"))
}

/// The hunt over every stored event, made again only when events came in since.
async fn results(state: &Arc<AppState>) -> Result<Arc<Results>, Response> {
    let state = state.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<Arc<Results>, String> {
        let store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        let count = store.len().map_err(|e| e.to_string())?;
        if let Some((n, r)) = state
            .results
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if *n == count {
                return Ok(r.clone());
            }
        }
        // In event time already: nothing waits behind the watermark.
        let mut live = state.hunt.stream(jiff::SignedDuration::ZERO);
        store.replay(|e| live.push(e)).map_err(|e| e.to_string())?;
        drop(store);
        let mut lines = Lines(String::new());
        let outcome = live
            .finish(&mut lines)
            .map_err(|e: HuntError| e.to_string())?;
        let made = Arc::new(Results {
            detections: lines.0,
            operations: serde_json::to_value(&outcome.analysis).map_err(|e| e.to_string())?,
        });
        *state.results.lock().unwrap_or_else(|p| p.into_inner()) = Some((count, made.clone()));
        Ok(made)
    })
    .await;
    match made {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(why)) => Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, why)),
        Err(e) => Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Detections as JSON Lines in memory, as `hunt -o x.jsonl` writes them.
struct Lines(String);

impl DetectionSink for Lines {
    fn detection(&mut self, d: &Detection) -> Result<(), HuntError> {
        self.0.push_str(&serde_json::to_string(d)?);
        self.0.push('\n');
        Ok(())
    }

    fn held(&mut self, h: &HeldDetection) -> Result<(), HuntError> {
        self.0.push_str(&h.json);
        self.0.push('\n');
        Ok(())
    }
}

/// A reply as Elasticsearch gives it (its clients check the product header).
fn elastic(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("X-Elastic-Product", "Elasticsearch")], Json(body)).into_response()
}

async fn es_info() -> Response {
    elastic(StatusCode::OK, bulk::info())
}

async fn es_license() -> Response {
    elastic(
        StatusCode::OK,
        serde_json::json!({"license": {"status": "active", "type": "basic", "uid": "towerwatch"}}),
    )
}

async fn es_bulk_index(
    state: State<Arc<AppState>>,
    UrlPath(index): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bulk_into(state, &index, headers, body).await
}

async fn es_bulk(state: State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    bulk_into(state, "events", headers, body).await
}

/// Stores a bulk request's events (durable before the reply) and answers item by item.
async fn bulk_into(
    State(state): State<Arc<AppState>>,
    index: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Ingest) {
        return refused;
    }
    let clock = std::time::Instant::now();
    let text = match decode(&headers, &body) {
        Ok(t) => t,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let index = index.to_string();
    let state_metrics = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let items = bulk::parse(&text, &index);
        let events: Vec<(String, u64, Option<i64>, String)> = items
            .iter()
            .filter_map(|i| match i {
                bulk::Item::Event {
                    source,
                    line,
                    text,
                    event,
                    ..
                } => Some((
                    source.clone(),
                    *line,
                    event.timestamp.map(|t| t.as_microsecond()),
                    text.clone(),
                )),
                bulk::Item::Refused { .. } => None,
            })
            .collect();
        let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        let new = store.ingest_parsed(&events)?;
        let mut new = new.into_iter();
        let answers: Vec<(String, String, u16, Option<String>)> = items
            .into_iter()
            .map(|i| match i {
                bulk::Item::Event { index, .. } => {
                    let created = new.next().unwrap_or(false);
                    (
                        "create".to_string(),
                        index,
                        if created { 201 } else { 200 },
                        None,
                    )
                }
                bulk::Item::Refused {
                    action,
                    index,
                    status,
                    reason,
                } => (action, index, status, Some(reason)),
            })
            .collect();
        Ok::<_, StoreError>(answers)
    })
    .await;
    match stored {
        Ok(Ok(answers)) => {
            let m = &state_metrics.metrics;
            for (_, _, status, _) in &answers {
                match status {
                    201 => m.add(&m.accepted, 1),
                    200 => m.add(&m.duplicates, 1),
                    _ => m.add(&m.rejected, 1),
                }
            }
            elastic(
                StatusCode::OK,
                bulk::reply(&answers, clock.elapsed().as_millis()),
            )
        }
        // Not stored, so not acknowledged: the shipper retries the whole request.
        Ok(Err(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    let stored = {
        let store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        store.len().unwrap_or(0)
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.text(stored),
    )
        .into_response()
}

async fn detections(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    match results(&state).await {
        Ok(r) => (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            r.detections.clone(),
        )
            .into_response(),
        Err(refused) => refused,
    }
}

async fn operations(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    match results(&state).await {
        Ok(r) => Json(r.operations.clone()).into_response(),
        Err(refused) => refused,
    }
}
