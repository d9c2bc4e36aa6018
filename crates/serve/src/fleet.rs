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
    client: tokio::sync::Mutex<Option<tokio_postgres::Client>>,
    /// The last read, and the generation it was.
    cached: Mutex<Option<(i64, Arc<Results>)>>,
}

impl FleetResults {
    pub(crate) fn new(url: &str) -> FleetResults {
        FleetResults {
            url: url.to_string(),
            client: tokio::sync::Mutex::new(None),
            cached: Mutex::new(None),
        }
    }

    /// The latest conclusion (empty before the first).
    pub(crate) async fn results(&self) -> Result<Arc<Results>, String> {
        let mut client = self.client.lock().await;
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            let (c, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("the story builder's database: {e}"))?;
            tokio::spawn(connection);
            *client = Some(c);
        }
        let client = client.as_mut().expect("connected above");
        let generation = store::generation(client).await.map_err(|e| e.to_string())?;
        if let Some((g, r)) = &*self.cached.lock().unwrap_or_else(|p| p.into_inner()) {
            if Some(*g) == generation {
                return Ok(r.clone());
            }
        }
        let Some(saved) = store::saved(client).await.map_err(|e| e.to_string())? else {
            return Ok(Arc::new(Results {
                fleet: Some(
                    "No story builder has concluded yet: the results show once one has.".into(),
                ),
                ..Results::default()
            }));
        };
        let unreadable = |what: &str, e: serde_json::Error| {
            format!("the story builder's {what} do not read back: {e}")
        };
        let mut detections = saved.detections.join("\n");
        if !detections.is_empty() {
            detections.push('\n');
        }
        let results = Arc::new(Results {
            detections,
            operations: serde_json::from_str(&saved.operations)
                .map_err(|e| unreadable("operations", e))?,
            analysis: serde_json::from_str(&saved.operations)
                .map_err(|e| unreadable("operations", e))?,
            exposure: saved
                .exposure
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| unreadable("exposure", e))?,
            fired: serde_json::from_str(&saved.fired).map_err(|e| unreadable("rules fired", e))?,
            texts: Vec::new(),
            events: saved.events as u64,
            fleet: Some(format!(
                "These are a story builder's results: {} events judged by workers from NATS \
                 JetStream, concluded at {}. Events reach it through JetStream \
                 (towerwatch ship --nats), not through this server.",
                saved.facts, saved.made_at
            )),
        });
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((saved.generation, results.clone()));
        Ok(results)
    }
}

/// What a server showing a fleet's results answers to events sent to it.
pub(crate) async fn refuse_events() -> Response {
    crate::refuse(
        StatusCode::CONFLICT,
        "this server shows the results of a story builder: send events to NATS JetStream \
         (towerwatch ship --nats) for the workers",
    )
}
