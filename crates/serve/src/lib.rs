//! `towerwatch serve`: the live service.
//!
//! Events come in over HTTP as JSON Lines in every shape `hunt` reads (evtx_dump,
//! Winlogbeat/ECS, flat), as text log lines (W3C, PostgreSQL), or through Elasticsearch's
//! bulk API, plain, gzip or zstd. A batch is on disk ([`store`]: SQLite, WAL, full sync;
//! or PostgreSQL, [`db`]) before it is acknowledged, and an event is known by its identity
//! (the source and its line in it), so a batch sent twice changes nothing. A live hunt
//! ([`towerwatch_hunt::HuntStream`] on event time, bounded lateness) finds detections as
//! events arrive; the concluded results
//! are the hunt library's over every stored event: the same detections, operations and
//! exposure `hunt` gives on the same files. [`ship`] sends files (EVTX included) and follows
//! growing logs.
//!
//! The routes are described in OpenAPI 3.1 ([`OPENAPI`], served at `/api/v1/openapi.json`);
//! the web UI is under `/ui` (server-rendered pages, sessions with CSRF tokens, no script).
//! Every route but `/healthz`, the description and Elasticsearch's handshake needs a bearer
//! token whose role allows it ([`auth`]); there are no default credentials: [`init`] issues
//! the first admin token, once. Revealing a subscriber needs the analyst role, the operator's
//! key and a reason, and is written to the append-only audit log first. Requests are rate
//! limited per client address; HTTPS with rustls ([`serve_tls`]).
//!
//! It binds 127.0.0.1 by default.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let data = std::path::Path::new("data");
//! println!("admin token: {}", towerwatch_serve::init(data)?);
//! let hunt = towerwatch_hunt::Hunt::builder().build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! towerwatch_serve::serve(listener, data, towerwatch_serve::Config::new(hunt)).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod bulk;
pub mod db;
mod fleet;
mod limit;
mod live;
mod metrics;
mod results;
pub mod retention;
pub mod retro;
mod routes;
pub mod ship;
pub mod store;
mod ui;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use towerwatch_hunt::Hunt;

use auth::{Auth, AuthError, Caller, Need};
use metrics::Metrics;
use results::Results;
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
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0} has no admin token: run `towerwatch serve --data {0} init` first (there are no default credentials)")]
    NotInitialised(String),
    #[error("--fleet shows a story builder's results, kept in PostgreSQL: give its --database")]
    Fleet,
}

/// Issues the first admin token of the data directory `data` (created if missing).
pub fn init(data: &Path) -> Result<String, ServeError> {
    init_in(&db::Database::sqlite(data))
}

/// Issues the first admin token of `database`.
pub fn init_in(database: &db::Database) -> Result<String, ServeError> {
    Ok(Auth::open(database.connect().map_err(StoreError::from)?).init()?)
}

/// What the service runs.
pub struct Config {
    /// The hunt every stored event goes through. It lives as long as the process: the live
    /// stream holds on to it.
    pub hunt: &'static Hunt,
    /// How late (in event time) an event may come after newer ones and still be taken in
    /// order by the live hunt; a detection waits this long in event time before it shows.
    pub lateness: jiff::SignedDuration,
    /// Whether the hunt's pseudonymisation key is the operator's (given on the command
    /// line or in the environment): only then may an analyst reveal an identity. A random
    /// key of the run reveals nothing anybody else could check.
    pub operator_key: bool,
    /// Requests per second each client address may make (in bursts of twice that); 0 for
    /// no limit. `/healthz` is not limited.
    pub rate_limit: u32,
    /// PostgreSQL to keep everything in (`postgres://…`) instead of SQLite in the data
    /// directory.
    pub database: Option<String>,
    /// How long what came in is kept (by when it came in; a text log by when it last grew);
    /// `None`: for ever. The audit log is never expired.
    pub retain: Option<std::time::Duration>,
    /// Show the results a story builder keeps in `database` (the fleet's: events judged by
    /// workers from NATS JetStream) instead of hunting what comes in; events sent here are
    /// refused, unless `nats` is given.
    pub fleet: bool,
    /// With `fleet`: JSON events and bulk requests sent here are published to this NATS
    /// server's JetStream for the workers, as `ship --nats` publishes a file's.
    pub nats: Option<towerwatch_fleet::NatsAccess>,
}

impl Config {
    /// Serves `hunt` (kept for the life of the process), with a minute's lateness and a
    /// random key of the run (nothing can be revealed).
    pub fn new(hunt: Hunt) -> Config {
        Config {
            hunt: Box::leak(Box::new(hunt)),
            lateness: jiff::SignedDuration::from_secs(60),
            operator_key: false,
            rate_limit: DEFAULT_RATE_LIMIT,
            retain: None,
            database: None,
            fleet: false,
            nats: None,
        }
    }
}

/// The API's OpenAPI 3.1 description (written by `scripts/openapi.py`).
pub const OPENAPI: &str = include_str!("../api/openapi.json");

/// Requests per second per client address unless configured: far above what shippers
/// (a batch of thousands of events a request) and the UI need, far below a flood.
pub const DEFAULT_RATE_LIMIT: u32 = 500;

/// Largest request body taken (decompressed batches are limited by the same figure).
const MAX_BODY: usize = 64 << 20;

struct AppState {
    store: Mutex<Store>,
    auth: Auth,
    config: Config,
    /// The last results and the number of events they were made from.
    results: Mutex<Option<(store::Version, Arc<Results>)>>,
    metrics: Metrics,
    sessions: ui::Sessions,
    live: live::LiveHandle,
    /// Served over HTTPS: session cookies are `Secure`.
    https: bool,
    /// The story builder's results, shown instead of this server's hunt (`--fleet`).
    fleet: Option<fleet::FleetResults>,
    /// Where events sent here go under `--fleet --nats`.
    publisher: Option<towerwatch_fleet::Publisher>,
    limits: Option<limit::Limits>,
}

/// The service's routes over the store in `data`, its live hunt started.
fn app(data: &Path, config: Config, https: bool) -> Result<Router, ServeError> {
    std::fs::create_dir_all(data)?;
    let database = db::Database {
        dir: data.to_path_buf(),
        postgres: config.database.clone(),
    };
    let auth = Auth::open(database.connect().map_err(StoreError::from)?);
    if !auth.initialised()? {
        return Err(ServeError::NotInitialised(data.display().to_string()));
    }
    let live = live::start(config.hunt, config.lateness, &database)?;
    let config_rate = config.rate_limit;
    let retain = config.retain;
    let mut store = Store::open_in(&database)?;
    if let Some(retain) = retain {
        store.set_mark_every(retention::resolution(retain));
    }
    let fleet = match (config.fleet, &config.database) {
        (false, _) => None,
        (true, Some(url)) => Some(fleet::FleetResults::new(url, config.nats.is_some())),
        (true, None) => return Err(ServeError::Fleet),
    };
    let publisher = config
        .nats
        .clone()
        .filter(|_| config.fleet)
        .map(|nats| towerwatch_fleet::Publisher::new(nats, std::time::Duration::from_secs(30)));
    let state = Arc::new(AppState {
        fleet,
        publisher,
        live,
        store: Mutex::new(store),
        auth,
        config,
        results: Mutex::new(None),
        metrics: Metrics::default(),
        sessions: ui::Sessions::default(),
        https,
        limits: limit::Limits::new(config_rate),
    });
    if let Some(retain) = retain {
        retention::start(state.clone(), retain);
    }
    use routes::{admin, ingest, read, retro, reveal};
    let taking = if state.fleet.is_some() {
        let no = || post(fleet::refuse_events);
        // (Events go to JetStream from the same handlers, which look.)
        let (events, bulk, bulk_index) = if state.publisher.is_some() {
            (
                post(ingest::events),
                post(ingest::es_bulk).put(ingest::es_bulk),
                post(ingest::es_bulk_index).put(ingest::es_bulk_index),
            )
        } else {
            (
                no(),
                no().put(fleet::refuse_events),
                no().put(fleet::refuse_events),
            )
        };
        Router::new()
            .route("/api/v1/events", events)
            .route("/api/v1/lines", no())
            .route("/api/v1/retro", no())
            .route("/_bulk", bulk)
            .route("/{index}/_bulk", bulk_index)
    } else {
        Router::new()
            .route("/api/v1/events", post(ingest::events))
            .route("/api/v1/lines", post(ingest::lines))
            .route("/api/v1/retro", post(retro::retro_hunt))
            // What Elasticsearch shippers (Beats, Elastic Agent, Fluent Bit, Vector) speak.
            .route("/_bulk", post(ingest::es_bulk).put(ingest::es_bulk))
            .route(
                "/{index}/_bulk",
                post(ingest::es_bulk_index).put(ingest::es_bulk_index),
            )
    };
    Ok(Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/api/v1/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/api/v1/detections", get(read::detections))
        .route("/api/v1/detections/live", get(read::live_detections))
        .route("/api/v1/operations", get(read::operations))
        .route("/api/v1/exposure", get(read::exposure))
        .route("/api/v1/sources", get(read::sources))
        .route("/api/v1/reveal", post(reveal::api))
        .route("/api/v1/tokens", post(admin::issue_token))
        .route("/api/v1/audit", get(admin::audit))
        .route("/", get(ingest::es_info).head(ingest::es_info))
        .route("/_license", get(ingest::es_license))
        .merge(taking)
        .route("/metrics", get(read::metrics))
        .merge(ui::routes())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_refusals,
        ))
        .with_state(state))
}

/// Serves plain HTTP until the process is stopped (Ctrl-C or SIGTERM end it gracefully:
/// requests in flight finish, and every acknowledged batch is already on disk).
pub async fn serve(
    listener: tokio::net::TcpListener,
    data: &Path,
    config: Config,
) -> Result<(), ServeError> {
    let app = app(data, config, false)?;
    // The client's address is known to the rate limits.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// A certificate chain and its private key, PEM files, for HTTPS.
pub struct Tls {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Serves HTTPS (rustls) on `listener` until the process is stopped, as [`serve`] does.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    data: &Path,
    config: Config,
    tls: &Tls,
) -> Result<(), ServeError> {
    // One crypto provider for the process; a second call finds it installed. ring, not
    // aws-lc-rs (rustls' choice for post-quantum key exchange): that one builds C with cmake.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| {
            ServeError::Tls(format!(
                "{} / {}: {e}",
                tls.cert.display(),
                tls.key.display()
            ))
        })?;
    let app = app(data, config, true)?;
    let handle = axum_server::Handle::new();
    let stop = handle.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
    });
    listener.set_nonblocking(true)?;
    axum_server::from_tcp_rustls(listener, rustls)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await?;
    Ok(())
}

/// Counts every request answered with an error status, for `/metrics`.
async fn count_refusals(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        state.metrics.add(&state.metrics.refused_requests, 1);
    }
    response
}

/// Binds `listen`, tells `ready` the address (port 0 picks a free one), and serves (HTTPS
/// with `tls`) on a runtime of its own until stopped.
pub fn run(
    listen: std::net::SocketAddr,
    data: &Path,
    config: Config,
    tls: Option<&Tls>,
    ready: impl FnOnce(std::net::SocketAddr),
) -> Result<(), ServeError> {
    // Refused before anything listens.
    std::fs::create_dir_all(data)?;
    let database = db::Database {
        dir: data.to_path_buf(),
        postgres: config.database.clone(),
    };
    if !Auth::open(database.connect().map_err(StoreError::from)?).initialised()? {
        return Err(ServeError::NotInitialised(data.display().to_string()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match tls {
            Some(tls) => {
                let listener = std::net::TcpListener::bind(listen)?;
                ready(listener.local_addr()?);
                serve_tls(listener, data, config, tls).await
            }
            None => {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                ready(listener.local_addr()?);
                serve(listener, data, config).await
            }
        }
    })
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
    let caller = match token.map(|t| state.auth.check(t.trim())) {
        Some(Ok(caller)) => caller,
        Some(Err(auth::Denied::Throttled)) => {
            let mut r = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many checks of this token just now: try again in a second",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return Err(r);
        }
        _ => {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is needed",
            ))
        }
    };
    if !caller.role.can(need) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!("the {} role may not do this", caller.role.name()),
        ));
    }
    Ok(caller)
}
