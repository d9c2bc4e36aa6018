//! Events in: JSON Lines, text log lines, and Elasticsearch's bulk API.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::Need;
use crate::store::StoreError;
use crate::{authorize, bulk, refuse, AppState, MAX_BODY};

#[derive(serde::Deserialize)]
pub(crate) struct Batch {
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

/// `POST /api/v1/events?source=NAME&first_line=N`: JSON Lines, one event each (under
/// `serve --fleet --nats`, published for the workers).
pub(crate) async fn events(
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
    if state.publisher.is_some() {
        return events_to_jetstream(state, batch, text).await;
    }
    let state_metrics = state.clone();
    let source = batch.source.clone();
    let clock = std::time::Instant::now();
    let stored = tokio::task::spawn_blocking(move || {
        // Parsed before the store is held, so batches parse side by side.
        let parsed = crate::store::Batch::parse(&batch.source, batch.first_line, &text);
        let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        let (ingested, fresh) = store.ingest_batch(parsed)?;
        drop(store);
        state.live.push(fresh);
        Ok::<_, StoreError>(ingested)
    })
    .await;
    match stored {
        Ok(Ok(ingested)) => {
            let m = &state_metrics.metrics;
            m.observe_ingest(clock.elapsed());
            m.add(&m.accepted, ingested.accepted);
            m.add(&m.duplicates, ingested.duplicates);
            m.reject(&source, ingested.rejected.len() as u64);
            (StatusCode::OK, Json(ingested)).into_response()
        }
        // Not stored, so not acknowledged: the client sends the batch again.
        Ok(Err(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Under `serve --fleet --nats`: a batch of JSON Lines published to JetStream for the
/// workers (each event's identity made of its source and line: [`towerwatch_fleet::wire::sent_identity`]),
/// answered once JetStream has stored them (the caller is authorised).
async fn events_to_jetstream(state: Arc<AppState>, batch: Batch, text: String) -> Response {
    let Some(publisher) = &state.publisher else {
        return refuse(StatusCode::CONFLICT, "no NATS server to publish to");
    };
    let source = batch.source.clone();
    let parsed = match tokio::task::spawn_blocking(move || {
        crate::store::Batch::parse(&batch.source, batch.first_line, &text)
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    match publisher.publish(&source, &parsed.events).await {
        Ok(published) => {
            let mut rejected = parsed.rejected;
            // Identities are made again only when some event was too large (rarely).
            let looked_at = if published.too_large.is_empty() {
                &[][..]
            } else {
                &parsed.events[..]
            };
            for e in looked_at {
                let id = towerwatch_fleet::wire::sent_identity(&source, e.origin.locator);
                if let (Some(size), towerwatch_event::Locator::Line(line)) =
                    (published.too_large.get(&id), e.origin.locator)
                {
                    rejected.push(crate::store::Rejected {
                        line,
                        error: format!(
                            "an event of {size} bytes, over the {} a message may hold",
                            towerwatch_fleet::wire::MAX_MESSAGE
                        ),
                    });
                }
            }
            rejected.sort_by_key(|r| r.line);
            let sent = (parsed.events.len() - published.too_large.len()) as u64;
            let held = published.held.len() as u64;
            let ingested = crate::store::Ingested {
                accepted: sent - held.min(sent),
                duplicates: held,
                rejected,
            };
            let m = &state.metrics;
            m.add(&m.accepted, ingested.accepted);
            m.add(&m.duplicates, ingested.duplicates);
            m.reject(&source, ingested.rejected.len() as u64);
            (StatusCode::OK, Json(ingested)).into_response()
        }
        // Not stored, so not acknowledged: the client sends the batch again.
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `POST /api/v1/lines?source=NAME&first_line=N`: a text log's lines as written (W3C,
/// PostgreSQL stderr/csvlog/jsonlog, access logs, Zeek), read with the rest of their source
/// as `hunt` reads the file. Durable before the reply, idempotent by (source, line).
pub(crate) async fn lines(
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
        store.ingest_raw(&batch.source, batch.first_line, &text)
    })
    .await;
    match stored {
        Ok(Ok(ingested)) => {
            let m = &state_metrics.metrics;
            m.add(&m.accepted, ingested.accepted);
            m.add(&m.duplicates, ingested.duplicates);
            (StatusCode::OK, Json(ingested)).into_response()
        }
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

/// A reply as Elasticsearch gives it (its clients check the product header).
fn elastic(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [("X-Elastic-Product", "Elasticsearch")], Json(body)).into_response()
}

pub(crate) async fn es_info() -> Response {
    elastic(StatusCode::OK, bulk::info())
}

pub(crate) async fn es_license() -> Response {
    elastic(
        StatusCode::OK,
        serde_json::json!({"license": {"status": "active", "type": "basic", "uid": "towerwatch"}}),
    )
}

pub(crate) async fn es_bulk_index(
    state: State<Arc<AppState>>,
    UrlPath(index): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bulk_into(state, &index, headers, body).await
}

pub(crate) async fn es_bulk(
    state: State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bulk_into(state, "events", headers, body).await
}

/// Stores a bulk request's events (durable before the reply) and answers item by item;
/// under `serve --fleet --nats`, publishes them instead.
async fn bulk_into(
    State(state): State<Arc<AppState>>,
    index: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Ingest) {
        return refused;
    }
    if state.publisher.is_some() {
        return bulk_to_jetstream(state, index, headers, body).await;
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
        drop(store);
        let mut new = new.into_iter();
        let mut fresh = Vec::new();
        let answers: Vec<bulk::Answer> = items
            .into_iter()
            .map(|i| {
                i.answer(|_, _, event| {
                    let created = new.next().unwrap_or(false);
                    if created {
                        fresh.push(*event);
                    }
                    (if created { 201 } else { 200 }, None)
                })
            })
            .collect();
        state.live.push(fresh);
        Ok::<_, StoreError>(answers)
    })
    .await;
    match stored {
        Ok(Ok(answers)) => answer_bulk(&state_metrics, &answers, clock),
        // Not stored, so not acknowledged: the shipper retries the whole request.
        Ok(Err(e)) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The reply to a bulk request, item by item, counted in the metrics.
fn answer_bulk(state: &AppState, answers: &[bulk::Answer], clock: std::time::Instant) -> Response {
    let m = &state.metrics;
    m.observe_ingest(clock.elapsed());
    for (_, index, status, _) in answers {
        match status {
            201 => m.add(&m.accepted, 1),
            200 => m.add(&m.duplicates, 1),
            _ => m.reject(&format!("_bulk {index}"), 1),
        }
    }
    elastic(
        StatusCode::OK,
        bulk::reply(answers, clock.elapsed().as_millis()),
    )
}

/// Under `serve --fleet --nats`: a bulk request's events published to JetStream for the
/// workers (each event's identity made of its source and line, as for `/api/v1/events`),
/// answered item by item once JetStream has stored them: 201, or 200 for one it held
/// already (the caller is authorised).
async fn bulk_to_jetstream(
    state: Arc<AppState>,
    index: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(publisher) = &state.publisher else {
        return refuse(StatusCode::CONFLICT, "no NATS server to publish to");
    };
    let clock = std::time::Instant::now();
    let text = match decode(&headers, &body) {
        Ok(t) => t,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
    };
    let index = index.to_string();
    let items = match tokio::task::spawn_blocking(move || bulk::parse(&text, &index)).await {
        Ok(items) => items,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let identity = |source: &str, line: u64| {
        towerwatch_fleet::wire::sent_identity(source, towerwatch_event::Locator::Line(line))
    };
    let events = items.iter().filter_map(|i| match i {
        bulk::Item::Event {
            source,
            line,
            event,
            ..
        } => Some((identity(source, *line), &**event)),
        bulk::Item::Refused { .. } => None,
    });
    let published = match publisher.publish_identified(events).await {
        Ok(published) => published,
        // Not stored, so not acknowledged: the shipper retries the whole request.
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let answers: Vec<bulk::Answer> = items
        .into_iter()
        .map(|i| {
            i.answer(|source, line, _| {
                let id = identity(source, line);
                match published.too_large.get(&id) {
                    Some(size) => (
                        413,
                        Some(format!(
                            "a document of {size} bytes, over the {} a message may hold",
                            towerwatch_fleet::wire::MAX_MESSAGE
                        )),
                    ),
                    None if published.held.contains(&id) => (200, None),
                    None => (201, None),
                }
            })
        })
        .collect();
    answer_bulk(&state, &answers, clock)
}
