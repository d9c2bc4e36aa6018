//! `POST /api/v1/retro?from=T&to=T`: Sigma rules (YAML, one or more documents) run over the
//! stored events; the analyst role; on the audit log (who ran which rules, by title and by
//! the digest of their text, over when).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::Digest;

use crate::auth::Need;
use crate::retro::{hunt_for, retro, Like, RetroError, Window};
use crate::{authorize, refuse, AppState};

pub(crate) async fn retro_hunt(
    State(state): State<Arc<AppState>>,
    Query(window): Query<Window>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&state, &headers, Need::Retro) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let Ok(yaml) = String::from_utf8(body.to_vec()) else {
        return refuse(StatusCode::BAD_REQUEST, "the rules are not UTF-8");
    };
    let ran = tokio::task::spawn_blocking(move || {
        let hunt = hunt_for(&yaml, Like::hunt(state.config.hunt))?;
        let titles: Vec<&str> = hunt.rules().iter().map(|r| r.title.as_str()).collect();
        let bounds = |t: Option<jiff::Timestamp>| t.map_or("…".to_string(), |t| t.to_string());
        state
            .auth
            .record(
                Some(&caller),
                "retro",
                &format!(
                    "{} over {} to {} (rules sha256 {})",
                    titles.join(", "),
                    bounds(window.from),
                    bounds(window.to),
                    towerwatch_hunt::rules::hex(&sha2::Sha256::digest(yaml.as_bytes()))
                ),
            )
            .map_err(|e| RetroError::Io(std::io::Error::other(e.to_string())))?;
        let mut store = state.store.lock().unwrap_or_else(|p| p.into_inner());
        retro(&mut store, &hunt, &window)
    })
    .await;
    match ran {
        Ok(Ok(found)) => Json(found).into_response(),
        Ok(Err(e @ RetroError::NoRules(_))) => refuse(StatusCode::BAD_REQUEST, e.to_string()),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
