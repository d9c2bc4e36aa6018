//! Revealing a subscriber's real identity: the analyst role, the operator's key on the
//! server, a stated reason, and a line in the append-only audit log before the answer.
//!
//! Pseudonyms are keyed hashes, so nothing stored maps one back. The key's holder finds the
//! identifier by recomputing: every number in the stored evidence is hashed with the key
//! until one gives the pseudonym asked about.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::{Caller, Need};
use crate::results::results;
use crate::{authorize, refuse, AppState};

/// What an analyst asks.
#[derive(serde::Deserialize)]
pub(crate) struct Ask {
    /// The pseudonym shown (`M-…`, `I-…`, `E-…`).
    pub subscriber: String,
    /// Why (a case, a request): recorded with the reveal.
    pub reason: String,
}

/// A reveal made, and recorded.
#[derive(serde::Serialize)]
pub(crate) struct Revealed {
    pub subscriber: String,
    pub identifier: String,
    pub by: String,
}

/// Reveals `ask` for `caller` (whose role was checked), recording it first.
pub(crate) async fn reveal(
    state: &Arc<AppState>,
    caller: &Caller,
    ask: Ask,
) -> Result<Revealed, (StatusCode, String)> {
    if !state.config.operator_key {
        return Err((
            StatusCode::CONFLICT,
            "this server has no operator key (serve --key-file or TOWERWATCH_PSEUDONYM_KEY): its pseudonyms reveal nothing".into(),
        ));
    }
    let reason = ask.reason.trim();
    if reason.chars().count() < 4 {
        return Err((
            StatusCode::BAD_REQUEST,
            "a reveal needs its reason (a case, a request)".into(),
        ));
    }
    let r = results(state).await.map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the results cannot be made now".to_string(),
        )
    })?;
    let exposed = r.exposure.as_ref().is_some_and(|x| {
        x.total
            .subscribers
            .iter()
            .any(|s| s.subscriber == ask.subscriber || s.reached_by.contains(&ask.subscriber))
    });
    if !exposed {
        return Err((
            StatusCode::NOT_FOUND,
            format!("{} is not among the exposed subscribers", ask.subscriber),
        ));
    }
    let pseudonym = ask.subscriber.clone();
    let found = match &state.fleet {
        // The evidence is the workers': what they judged, as the builder keeps it.
        Some(fleet) => {
            let p = state.config.hunt.pseudonyms().0;
            fleet
                .find_text(|text| p.find_in(&pseudonym, text))
                .await
                .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?
        }
        None => {
            let lookup = state.clone();
            tokio::task::spawn_blocking(move || {
                let p = lookup.config.hunt.pseudonyms().0;
                let mut store = lookup.store.lock().unwrap_or_else(|p| p.into_inner());
                store.find_text(|text| p.find_in(&pseudonym, text))
            })
            .await
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        }
    };
    let Some(identifier) = found else {
        return Err((
            StatusCode::NOT_FOUND,
            format!("no number in the stored evidence gives {}", ask.subscriber),
        ));
    };
    // On the record before anyone sees it; no record, no reveal.
    state
        .auth
        .record(
            Some(caller),
            "reveal",
            &format!("{} (reason: {reason})", ask.subscriber),
        )
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Revealed {
        subscriber: ask.subscriber,
        identifier,
        by: caller.name.clone(),
    })
}

/// `POST /api/v1/reveal` with `{"subscriber": "M-…", "reason": "…"}` (analyst, admin).
pub(crate) async fn api(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&state, &headers, Need::Reveal) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let Ok(ask) = serde_json::from_slice::<Ask>(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "expected {\"subscriber\": \"M-…\", \"reason\": \"…\"}",
        );
    };
    match reveal(&state, &caller, ask).await {
        Ok(r) => Json(r).into_response(),
        Err((status, why)) => refuse(status, why),
    }
}
