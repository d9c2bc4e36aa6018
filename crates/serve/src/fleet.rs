//! `serve --fleet`: the results a story builder keeps in PostgreSQL (`towerwatch
//! story-builder`, fed by workers from NATS JetStream), shown instead of a hunt of what comes
//! in here. Events go to JetStream (`towerwatch ship --nats`), not to this server.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::Response;
use towerwatch_fleet::store;

use crate::results::Results;

/// The story builder's results, read again only when it concluded since.
pub(crate) struct FleetResults {
    url: String,
    takes_events: bool,
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    /// The last read, and the generation it was.
    cached: Mutex<Option<(i64, Arc<Results>)>>,
}

impl FleetResults {
    /// The results kept in `url`'s database; `takes_events`: this server publishes events
    /// sent to it to JetStream (`--nats`), which its pages say.
    pub(crate) fn new(url: &str, takes_events: bool) -> FleetResults {
        FleetResults {
            takes_events,
            url: url.to_string(),
            client: tokio::sync::Mutex::new(None),
            cached: Mutex::new(None),
        }
    }

    /// The latest conclusion (empty before the first). While the database cannot be read,
    /// the last one read, if any.
    pub(crate) async fn results(&self) -> Result<Arc<Results>, String> {
        self.read().await.or_else(|why| {
            match &*self.cached.lock().unwrap_or_else(|p| p.into_inner()) {
                Some((_, r)) => {
                    eprintln!("towerwatch serve: {why}; showing the results read before");
                    Ok(r.clone())
                }
                None => Err(why),
            }
        })
    }

    /// The number behind `pseudonym`'s identity as `find` finds it in the facts the workers
    /// judged (the evidence is theirs, not this server's).
    pub(crate) async fn find_text<T>(
        &self,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> Result<Option<T>, String> {
        let mut client = self.client.lock().await;
        let client = connected(&mut client, &self.url).await?;
        // Facts are postcard bytes: their text fields are UTF-8 in them as they are.
        store::find_in_facts(client, |body| find(&String::from_utf8_lossy(body)))
            .await
            .map_err(|e| format!("the story builder's database: {e}"))
    }

    async fn read(&self) -> Result<Arc<Results>, String> {
        let mut client = self.client.lock().await;
        match tokio::time::timeout(READ_WITHIN, self.fetch(&mut client)).await {
            Ok(r) => r.map_err(|why| format!("the story builder's database: {why}")),
            Err(_) => {
                // A connection that stalls is dropped: the next request connects again.
                *client = None;
                Err(format!(
                    "the story builder's database did not answer within {READ_WITHIN:?}"
                ))
            }
        }
    }

    /// The kept results, read again only when their generation is not the cached one's.
    async fn fetch(
        &self,
        client: &mut Option<tokio_postgres::Client>,
    ) -> Result<Arc<Results>, String> {
        let client = connected(client, &self.url).await?;
        let generation = store::generation(client).await.map_err(|e| e.to_string())?;
        if let Some((g, r)) = &*self.cached.lock().unwrap_or_else(|p| p.into_inner()) {
            if Some(*g) == generation {
                return Ok(r.clone());
            }
        }
        // The generation read with the results, in one snapshot, is the one cached.
        let Some(saved) = store::saved(client).await.map_err(|e| e.to_string())? else {
            let analysis = towerwatch_correlate::Analysis::default();
            return Ok(Arc::new(Results {
                operations: serde_json::to_value(&analysis).map_err(|e| e.to_string())?,
                analysis,
                fleet: Some(
                    "No story builder has concluded yet: the results show once one has.".into(),
                ),
                ..Results::default()
            }));
        };
        let (generation, results) = (saved.generation, Arc::new(made(saved, self.takes_events)?));
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((generation, results.clone()));
        Ok(results)
    }
}

/// How long a read of the builder's results may take before the last ones are shown.
const READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

/// The connection in `client`, made (again) if there is none or it closed.
async fn connected<'c>(
    client: &'c mut Option<tokio_postgres::Client>,
    url: &str,
) -> Result<&'c mut tokio_postgres::Client, String> {
    if client.as_ref().is_none_or(|c| c.is_closed()) {
        let (config, tls) = towerwatch_fleet::access::postgres(url).map_err(|e| e.to_string())?;
        let (c, connection) = config.connect(tls).await.map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        *client = Some(c);
    }
    Ok(client.as_mut().expect("connected above"))
}

/// The results as a conclusion kept them.
fn made(saved: store::Saved, takes_events: bool) -> Result<Results, String> {
    use serde::Deserialize;
    let unreadable = |what: &str, e: serde_json::Error| format!("its {what} do not read back: {e}");
    let c = saved.conclusion;
    let mut detections = saved.detections.join("\n");
    if !detections.is_empty() {
        detections.push('\n');
    }
    // The operations' text is read once: the analysis is taken from its JSON value.
    let operations: serde_json::Value =
        serde_json::from_str(&c.operations).map_err(|e| unreadable("operations", e))?;
    Ok(Results {
        detections,
        analysis: towerwatch_correlate::Analysis::deserialize(&operations)
            .map_err(|e| unreadable("operations", e))?,
        operations,
        exposure: c
            .exposure
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| unreadable("exposure", e))?,
        fired: serde_json::from_str(&c.fired).map_err(|e| unreadable("rules fired", e))?,
        texts: Vec::new(),
        events: c.events as u64,
        fleet: Some(format!(
            "These are a story builder's results: {} events judged by workers from NATS \
             JetStream, concluded at {}. Events reach it through JetStream \
             (towerwatch ship --nats){}.",
            c.facts,
            saved.made_at,
            if takes_events {
                ", or through this server, which publishes the JSON events and bulk \
                 requests sent to it there"
            } else {
                ", not through this server"
            }
        )),
    })
}

/// What a server showing a fleet's results answers to events (and retro-hunts) sent to it,
/// once the caller may send them.
pub(crate) async fn refuse_events(
    axum::extract::State(state): axum::extract::State<Arc<crate::AppState>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if let Err(refused) = crate::authorize(&state, &headers, crate::auth::Need::Ingest) {
        return refused;
    }
    crate::refuse(
        StatusCode::CONFLICT,
        "this server shows the results of a story builder: send events to NATS JetStream \
         (towerwatch ship --nats) for the workers",
    )
}
