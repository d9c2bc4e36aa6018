//! The results out: detections, operations, metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::Need;
use crate::results::results;
use crate::{authorize, refuse, AppState};

pub(crate) async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    // Off the async workers: the store may be held by a long read (a retro-hunt).
    let counting = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut store = counting.store.lock().unwrap_or_else(|p| p.into_inner());
        store.len().unwrap_or(0)
    })
    .await
    .unwrap_or(0);
    let live = &state.live.counters;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.text(stored, live),
    )
        .into_response()
}

pub(crate) async fn detections(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
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

pub(crate) async fn operations(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    match results(&state).await {
        Ok(r) => Json(r.operations.clone()).into_response(),
        Err(refused) => refused,
    }
}

/// Whose records the database audit shows read, pseudonymised (`null` without one).
pub(crate) async fn exposure(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    match results(&state).await {
        Ok(r) => Json(&r.exposure).into_response(),
        Err(refused) => refused,
    }
}

/// Per source: what came in, the newest event, and what its text was that is no event.
pub(crate) async fn sources(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    match source_health(&state).await {
        Ok((rows, _)) => Json(rows).into_response(),
        Err(refused) => refused,
    }
}

/// One source as the ingest health shows it.
#[derive(serde::Serialize)]
pub(crate) struct Health {
    #[serde(flatten)]
    pub stored: crate::store::SourceHealth,
    /// The newest event time (RFC 3339).
    pub newest: Option<String>,
    /// Seconds from the newest event to now.
    pub lag_seconds: Option<i64>,
    /// Records that were no event: lines refused at ingest (since the server started) and,
    /// for text logs, records refused when read.
    pub rejected: u64,
}

/// Per source, its health; and the results it was judged with (their note on where they
/// come from, for the page).
pub(crate) async fn source_health(
    state: &Arc<AppState>,
) -> Result<(Vec<Health>, Arc<crate::results::Results>), Response> {
    let r = results(state).await?;
    let reading = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let mut store = reading.store.lock().unwrap_or_else(|p| p.into_inner());
        store.sources()
    })
    .await
    .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let now = jiff::Timestamp::now();
    let rejects = state.metrics.rejects_by_source();
    let rows = stored
        .into_iter()
        .map(|s| {
            let text = r.texts.iter().find(|t| *t.source == *s.source);
            let newest = s
                .newest
                .and_then(|m| jiff::Timestamp::from_microsecond(m).ok())
                .or_else(|| text.and_then(|t| t.last));
            let rejected =
                rejects.get(&s.source).copied().unwrap_or(0) + text.map_or(0, |t| t.rejected);
            Health {
                newest: newest.map(|t| t.to_string()),
                lag_seconds: newest.map(|t| now.as_second() - t.as_second()),
                rejected,
                stored: s,
            }
        })
        .collect();
    Ok((rows, r))
}

#[derive(serde::Deserialize)]
pub(crate) struct From {
    #[serde(default)]
    from: usize,
}

/// `GET /api/v1/detections/live?from=N`: the live hunt's detections from the `N`-th on, as
/// JSON Lines (before the routine's verdict); `X-Next` says where the next call starts,
/// `X-Pending` how many acknowledged events the live hunt has not taken yet.
pub(crate) async fn live_detections(
    State(state): State<Arc<AppState>>,
    axum::extract::Query(from): axum::extract::Query<From>,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Read) {
        return refused;
    }
    // Read before the detections: when it is 0, every event acknowledged before this
    // request is in them.
    let pending = state
        .live
        .counters
        .pending
        .load(std::sync::atomic::Ordering::SeqCst);
    let lookup = state.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut store = lookup.store.lock().unwrap_or_else(|p| p.into_inner());
        store.live_since(from.from as u64)
    })
    .await;
    let (lines, next) = match read {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let mut body = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in lines {
        body.push_str(&l);
        body.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (header::HeaderName::from_static("x-next"), next.to_string()),
            (
                header::HeaderName::from_static("x-pending"),
                pending.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}
