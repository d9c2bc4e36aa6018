//! The web UI: server-rendered pages (the report's views, `maud`, everything escaped), no
//! script, nothing fetched from elsewhere; it works offline and is in the binary.
//!
//! Signing in takes a token (as the API does) and gives a session cookie (`HttpOnly`,
//! `SameSite=Strict`, kept in memory: a restart signs everyone out). Every form carries the
//! session's CSRF token, checked on every POST. Pages: operations (live: they reload every
//! 30 s), one operation, exposure (with reveals for analysts), rules, ingest health, and the
//! audit log for admins.

mod pages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use crate::auth::{Caller, Need};
use crate::results::results;
use crate::routes::reveal::{reveal, Ask};
use crate::AppState;

/// How long a session lasts from sign-in.
const SESSION_FOR: Duration = Duration::from_secs(8 * 3600);
const COOKIE: &str = "tw_session";

struct Session {
    caller: Caller,
    csrf: String,
    until: Instant,
}

/// Signed-in browsers, by their cookie's secret.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

/// The signed-in caller of a page, and the CSRF token its forms carry.
pub(crate) struct Viewer {
    pub caller: Caller,
    pub csrf: String,
}

fn random_hex() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(towerwatch_hunt::rules::hex(&b))
}

impl Sessions {
    fn open(&self, caller: Caller) -> Option<String> {
        let id = random_hex()?;
        let csrf = random_hex()?;
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        all.retain(|_, s| s.until > now);
        all.insert(
            id.clone(),
            Session {
                caller,
                csrf,
                until: now + SESSION_FOR,
            },
        );
        Some(id)
    }

    fn get(&self, headers: &HeaderMap) -> Option<Viewer> {
        let id = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))?;
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let s = all.get(id).filter(|s| s.until > Instant::now())?;
        Some(Viewer {
            caller: s.caller.clone(),
            csrf: s.csrf.clone(),
        })
    }

    fn close(&self, headers: &HeaderMap) {
        if let Some(v) = self.get(headers) {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, s| s.csrf != v.csrf);
        }
    }
}

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/operations") }))
        .route("/ui/login", get(login_form).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/operations", get(operations))
        .route("/ui/operations/{id}", get(operation))
        .route("/ui/exposure", get(exposure))
        .route("/ui/reveal", post(reveal_form))
        .route("/ui/rules", get(rules))
        .route("/ui/sources", get(sources))
        .route("/ui/audit", get(audit))
}

/// A page, with headers that keep it to itself: no script at all, no framing, not cached.
fn page(status: StatusCode, body: Markup) -> Response {
    let mut r = (status, axum::response::Html(body.into_string())).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The session's viewer if its role may `need`; else the sign-in page or a refusal.
fn signed_in(state: &AppState, headers: &HeaderMap, need: Need) -> Result<Viewer, Response> {
    let Some(v) = state.sessions.get(headers) else {
        return Err(Redirect::to("/ui/login").into_response());
    };
    if !v.caller.role.can(need) {
        let why = format!("The {} role may not do this.", v.caller.role.name());
        return Err(page(StatusCode::FORBIDDEN, pages::refused(&v, &why)));
    }
    Ok(v)
}

async fn login_form() -> Response {
    page(StatusCode::OK, pages::login(None))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Login {
    token: String,
}

async fn login(State(state): State<Arc<AppState>>, Form(form): Form<Login>) -> Response {
    let checked = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || state.auth.check(form.token.trim())).await
    };
    let caller = match checked {
        Ok(Ok(caller)) => caller,
        Ok(Err(crate::auth::Denied::Throttled)) => {
            return page(
                StatusCode::TOO_MANY_REQUESTS,
                pages::login(Some(
                    "Too many tries of that token just now: wait a second.",
                )),
            )
        }
        _ => {
            return page(
                StatusCode::UNAUTHORIZED,
                pages::login(Some("That token is not valid.")),
            )
        }
    };
    if !caller.role.can(Need::Read) {
        return page(
            StatusCode::FORBIDDEN,
            pages::login(Some("An ingest token cannot read the results.")),
        );
    }
    let _ = state.auth.record(Some(&caller), "sign in", "web UI");
    let Some(id) = state.sessions.open(caller) else {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::login(Some("No randomness for a session.")),
        );
    };
    let mut r = Redirect::to("/ui/operations").into_response();
    let secure = if state.https { "; Secure" } else { "" };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_FOR.as_secs()
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// Every field defaults, so a form short of one reaches the handler (which sends a
// browser without a session to sign in, and refuses a missing CSRF token).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Csrf {
    csrf: String,
}

/// A POST whose form does not carry the session's CSRF token is refused.
fn csrf_ok(v: &Viewer, sent: &str) -> Result<(), Response> {
    if sent.len() == v.csrf.len() && sent == v.csrf {
        Ok(())
    } else {
        Err(page(
            StatusCode::FORBIDDEN,
            pages::refused(
                v,
                "The form was not this session's (CSRF check): reload the page.",
            ),
        ))
    }
}

async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<Csrf>,
) -> Response {
    if let Some(v) = state.sessions.get(&headers) {
        if let Err(refused) = csrf_ok(&v, &form.csrf) {
            return refused;
        }
        state.sessions.close(&headers);
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("tw_session=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

async fn operations(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match signed_in(&state, &headers, Need::Read) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match results(&state).await {
        Ok(r) => page(StatusCode::OK, pages::operations(&v, &r)),
        Err(r) => r,
    }
}

async fn operation(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let v = match signed_in(&state, &headers, Need::Read) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match results(&state).await {
        Ok(r) => match pages::operation(&v, &r, &id) {
            Some(p) => page(StatusCode::OK, p),
            None => page(
                StatusCode::NOT_FOUND,
                pages::refused(&v, &format!("There is no operation {id}.")),
            ),
        },
        Err(r) => r,
    }
}

async fn exposure(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match signed_in(&state, &headers, Need::Read) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match results(&state).await {
        Ok(r) => page(StatusCode::OK, pages::exposure(&v, &r, None)),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RevealForm {
    csrf: String,
    subscriber: String,
    reason: String,
}

async fn reveal_form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<RevealForm>,
) -> Response {
    let v = match signed_in(&state, &headers, Need::Read) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if let Err(refused) = csrf_ok(&v, &form.csrf) {
        return refused;
    }
    if !v.caller.role.can(Need::Reveal) {
        let _ = state.auth.record(
            Some(&v.caller),
            "reveal refused",
            &format!(
                "{}: the {} role may not reveal",
                form.subscriber,
                v.caller.role.name()
            ),
        );
        let why = format!(
            "The {} role may not reveal identities; an analyst may, with a reason.",
            v.caller.role.name()
        );
        return page(StatusCode::FORBIDDEN, pages::refused(&v, &why));
    }
    let ask = Ask {
        subscriber: form.subscriber,
        reason: form.reason,
    };
    let done = reveal(&state, &v.caller, ask).await;
    let r = match results(&state).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match done {
        Ok(revealed) => page(StatusCode::OK, pages::exposure(&v, &r, Some(Ok(&revealed)))),
        Err((status, why)) => page(status, pages::exposure(&v, &r, Some(Err(&why)))),
    }
}

async fn rules(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match signed_in(&state, &headers, Need::Read) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match results(&state).await {
        Ok(r) => page(StatusCode::OK, pages::rules(&v, state.config.hunt, &r)),
        Err(r) => r,
    }
}

async fn sources(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match signed_in(&state, &headers, Need::Read) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match crate::routes::read::source_health(&state).await {
        Ok((rows, r)) => page(
            StatusCode::OK,
            pages::sources(&v, &rows, r.fleet.as_deref()),
        ),
        Err(r) => r,
    }
}

async fn audit(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let v = match signed_in(&state, &headers, Need::Admin) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match state.auth.audit() {
        Ok(log) => page(StatusCode::OK, pages::audit(&v, &log)),
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::refused(&v, &e.to_string()),
        ),
    }
}
