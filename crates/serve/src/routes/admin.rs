//! Tokens and the audit log (admins only).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::auth::{Need, Role};
use crate::{authorize, refuse, AppState};

#[derive(serde::Deserialize)]
pub(crate) struct NewToken {
    name: String,
    role: Role,
}

pub(crate) async fn issue_token(
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

pub(crate) async fn audit(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorize(&state, &headers, Need::Admin) {
        return refused;
    }
    match state.auth.audit() {
        Ok(log) => Json(log).into_response(),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
