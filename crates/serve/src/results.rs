//! What the hunt over every stored event gives, made again only when events came in.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use towerwatch_correlate::Analysis;
use towerwatch_hunt::{Detection, DetectionSink, Fired, HeldDetection, HuntError};
use towerwatch_report::ReportExposure;
use towerwatch_sources::InputReport;

use crate::{refuse, AppState};

/// What the hunt over every stored event gives.
#[derive(Default)]
pub(crate) struct Results {
    /// Detections as `hunt -o x.jsonl` writes them.
    pub detections: String,
    /// `operations.json`: operations, waves, the suspected actor, leads.
    pub operations: serde_json::Value,
    pub analysis: Analysis,
    /// Whose records the database audit shows read, pseudonymised.
    pub exposure: Option<ReportExposure>,
    /// The rules and correlations that fired, the most frequent first.
    pub fired: Vec<Fired>,
    /// The text logs, as read whole (events and rejected records per source).
    pub texts: Vec<InputReport>,
    /// Events the hunt read.
    pub events: u64,
    /// Where the results come from when they are a story builder's (`serve --fleet`).
    pub fleet: Option<String>,
}

/// The hunt over every stored event, made again only when events came in (or expired)
/// since.
pub(crate) async fn results(state: &Arc<AppState>) -> Result<Arc<Results>, Response> {
    if let Some(fleet) = &state.fleet {
        return fleet
            .results()
            .await
            .map_err(|why| refuse(StatusCode::SERVICE_UNAVAILABLE, why));
    }
    let state = state.clone();
    let made = tokio::task::spawn_blocking(move || -> Result<Arc<Results>, String> {
        let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        let count = store.version().map_err(|e| e.to_string())?;
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
        let hunt = &state.config.hunt;
        // In event time already: nothing waits behind the watermark.
        let mut live = hunt.stream(jiff::SignedDuration::ZERO);
        let texts = store
            .replay(hunt.read_options(), |e| live.push(e))
            .map_err(|e| e.to_string())?;
        drop(store);
        let mut lines = Lines(String::new());
        let outcome = live
            .finish(&mut lines)
            .map_err(|e: HuntError| e.to_string())?;
        let fired = outcome.fired(hunt);
        let made = Arc::new(Results {
            detections: lines.0,
            operations: serde_json::to_value(&outcome.analysis).map_err(|e| e.to_string())?,
            events: outcome.summary.events(),
            analysis: outcome.analysis,
            exposure: outcome.exposure,
            fired,
            texts,
            fleet: None,
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
