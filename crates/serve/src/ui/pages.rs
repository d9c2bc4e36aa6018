//! The UI's pages, from the report's views (`towerwatch_report::html`); `maud` escapes
//! every value, and the evidence (host names, command lines, accounts) is the attacker's.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use towerwatch_hunt::Hunt;
use towerwatch_report::html::{
    exposure_table, matrix, movement_graph, operation as operation_view, operations_table,
    timeline, when, STYLE,
};

use super::Viewer;
use crate::auth::Need;
use crate::results::Results;
use crate::routes::read::Health;
use crate::routes::reveal::Revealed;

const NAV_STYLE: &str = "nav{display:flex;gap:16px;align-items:center;border-bottom:1px solid #ddd;padding-bottom:8px}\
nav a{text-decoration:none;color:#2b5c8a}nav a.here{font-weight:bold;color:#222}nav .who{margin-left:auto;color:#555}\
nav form{display:inline;margin:0}.notice{padding:8px 12px;border-radius:4px;margin:12px 0}\
.ok{background:#e6f4ea;border:1px solid #9ccfa9}.bad{background:#fde7e7;border:1px solid #e3a1a1}\
form.reveal{display:flex;gap:4px}form.reveal input[type=text]{width:14em}";

/// A page of the UI: its title, the navigation (with who is signed in), its body.
fn layout(v: Option<&Viewer>, here: &str, title: &str, refresh: bool, body: Markup) -> Markup {
    let links: &[(&str, &str)] = &[
        ("/ui/operations", "Operations"),
        ("/ui/exposure", "Exposure"),
        ("/ui/rules", "Rules"),
        ("/ui/sources", "Ingest"),
        ("/ui/audit", "Audit log"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if refresh { meta http-equiv="refresh" content="30"; }
                title { (title) " — towerwatch" }
                style { (PreEscaped(STYLE)) (PreEscaped(NAV_STYLE)) }
            }
            body {
                @if let Some(v) = v {
                    nav {
                        b { "towerwatch" }
                        @for (href, name) in links {
                            @if *href != "/ui/audit" || v.caller.role.can(Need::Admin) {
                                a href=(href) class=(if *href == here { "here" } else { "" }) { (name) }
                            }
                        }
                        span class="who" { (v.caller.name) " (" (v.caller.role.name()) ")" }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                (body)
            }
        }
    }
}

pub(super) fn login(error: Option<&str>) -> Markup {
    layout(
        None,
        "",
        "Sign in",
        false,
        html! {
            h1 { "towerwatch" }
            @if let Some(e) = error { p class="notice bad" { (e) } }
            form method="post" action="/ui/login" {
                p { label for="token" { "Token " } input id="token" type="password" name="token" size="60" autocomplete="off"; }
                p { button type="submit" id="sign-in" { "Sign in" } }
            }
            p class="muted" { "A token comes from an admin (POST /api/v1/tokens); the first one from "
                code { "towerwatch serve --data DIR init" } "." }
        },
    )
}

pub(super) fn refused(v: &Viewer, why: &str) -> Markup {
    layout(
        Some(v),
        "",
        "Refused",
        false,
        html! { h1 { "Refused" } p class="notice bad" id="refused" { (why) } },
    )
}

pub(super) fn operations(v: &Viewer, r: &Results) -> Markup {
    let a = &r.analysis;
    layout(
        Some(v),
        "/ui/operations",
        "Operations",
        true,
        html! {
            h1 { "Operations" }
            p {
                (count(a.operations.len(), "operation")) " in " (count(a.waves.len(), "wave")) " from " (r.events)
                " events; " (count(a.leads.len(), "lead")) " below the reporting score. This page reloads every 30 s."
            }
            @if let Some(c) = a.actor.first() {
                p id="actor" { b { "Suspected actor: " } (c.group) " (" (c.id) "), score " (format!("{:.2}", c.score)) }
            }
            @if a.operations.is_empty() {
                p class="muted" { "No operation yet." }
            } @else {
                (operations_table(&a.operations, |op| format!("/ui/operations/{}", op.id)))
                h2 { "Lateral movement" }
                (movement_graph(&a.operations))
            }
        },
    )
}

pub(super) fn operation(v: &Viewer, r: &Results, id: &str) -> Option<Markup> {
    let op = r.analysis.operations.iter().find(|o| o.id == id)?;
    let one = std::slice::from_ref(op);
    let exposed = r.exposure.as_ref().and_then(|x| x.by_operation.get(id));
    Some(layout(
        Some(v),
        "",
        id,
        false,
        html! {
            p { a href="/ui/operations" { "← all operations" } }
            (operation_view(op, 0))
            h3 { "Movement" }
            (movement_graph(one))
            h3 { "Timeline" }
            (timeline(one))
            h3 { "ATT&CK" }
            (matrix(one))
            @if let Some(x) = exposed {
                h3 id="exposure" { "What it read from the CDR store" }
                (exposure_table(x, Some(&|row| reveal_form(v, &row.subscriber))))
            }
        },
    ))
}

/// The reveal form of one subscriber (every role sees it; the server decides).
fn reveal_form(v: &Viewer, subscriber: &str) -> Markup {
    html! {
        form class="reveal" method="post" action="/ui/reveal" {
            input type="hidden" name="csrf" value=(v.csrf);
            input type="hidden" name="subscriber" value=(subscriber);
            input type="text" name="reason" placeholder="reason (case, request)" required;
            button type="submit" { "Reveal" }
        }
    }
}

pub(super) fn exposure(
    v: &Viewer,
    r: &Results,
    revealed: Option<Result<&Revealed, &str>>,
) -> Markup {
    layout(
        Some(v),
        "/ui/exposure",
        "Exposure",
        false,
        html! {
            h1 { "Exposure" }
            @match revealed {
                Some(Ok(x)) => p class="notice ok" id="revealed" {
                    code { (x.subscriber) } " is " b class="identity" { (x.identifier) }
                    " — revealed to " (x.by) " and recorded in the audit log."
                },
                Some(Err(why)) => p class="notice bad" id="refused" { (why) },
                None => {},
            }
            @match &r.exposure {
                None => p class="muted" { "No CDR store audit trail has come in: nothing to scope yet." },
                Some(x) => {
                    p {
                        "Identifiers are " (x.identifiers) " (key " code { (x.key_fingerprint) } "). "
                        (x.total.named()) " subscribers' call and location histories were read in stolen queries, "
                        (x.total.subscribers.len() - x.total.named()) " looked up by hand; "
                        (x.total.counterparties) " counterparties revealed by their records; "
                        (x.total.bulk_reads) " bulk reads."
                    }
                    p class="muted" { "Revealing an identity needs the analyst role and a reason; every reveal is in the audit log." }
                    (exposure_table(&x.total, Some(&|row| reveal_form(v, &row.subscriber))))
                },
            }
        },
    )
}

pub(super) fn rules(v: &Viewer, hunt: &Hunt, r: &Results) -> Markup {
    let refused = hunt.refused();
    layout(
        Some(v),
        "/ui/rules",
        "Rules",
        false,
        html! {
            h1 { "Rules" }
            p {
                (hunt.rules_loaded()) " rules loaded from " (hunt.rules_origin()) " (digest "
                code { (hunt.rules_digest()) } "), " (hunt.rules().len()) " run, "
                (hunt.correlations()) " correlations, " (refused.len()) " refused."
            }
            h2 { "What fired" }
            table id="fired" {
                tr { th { "rule" } th { "level" } th { "detections" } }
                @for towerwatch_hunt::Fired { title, level, count: n } in &r.fired {
                    tr { td { (title) } td { (level) } td { (n) } }
                }
            }
            @if !refused.is_empty() {
                h2 { "Refused, and why" }
                table id="refused-rules" {
                    tr { th { "where" } th { "rule" } th { "why" } }
                    @for e in refused {
                        tr {
                            td { code { (e.path) @if let Some(l) = e.line { ":" (l) } } }
                            td { (e.title.as_deref().unwrap_or("")) }
                            td { (e.reason) }
                        }
                    }
                }
            }
        },
    )
}

pub(super) fn sources(v: &Viewer, rows: &[Health], fleet: Option<&str>) -> Markup {
    layout(
        Some(v),
        "/ui/sources",
        "Ingest",
        true,
        html! {
            h1 { "Ingest health" }
            @if let Some(note) = fleet { p id="fleet" { (note) } }
            // A server showing a fleet's results takes no events: no table of its own.
            @if fleet.is_none() || !rows.is_empty() {
                p class="muted" { "Per source: what came in, its newest event, how far behind now that is, and what was no event." }
                table id="sources" {
                    tr { th { "source" } th { "as" } th { "received" } th { "newest event" } th { "lag" } th { "rejected" } }
                    @for h in rows {
                        tr {
                            td { code { (h.stored.source) } }
                            td { (h.stored.kind) }
                            td { (h.stored.count) }
                            td { @if let Some(t) = &h.newest { (when(t)) } @else { "—" } }
                            td { (h.lag_seconds.map(lag).unwrap_or_else(|| "—".into())) }
                            td class=(if h.rejected > 0 { "flag" } else { "" }) { (h.rejected) }
                        }
                    }
                }
            }
        },
    )
}

/// `1 operation`, `2 operations`.
fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Seconds as the largest whole unit.
fn lag(s: i64) -> String {
    match s {
        s if s >= 86_400 => format!("{} d", s / 86_400),
        s if s >= 3_600 => format!("{} h", s / 3_600),
        s if s >= 60 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

pub(super) fn audit(v: &Viewer, log: &[serde_json::Value]) -> Markup {
    let text = |e: &serde_json::Value, k: &str| e[k].as_str().unwrap_or("").to_string();
    layout(
        Some(v),
        "/ui/audit",
        "Audit log",
        false,
        html! {
            h1 { "Audit log" }
            p class="muted" { "Append-only: nothing edits or deletes it (the database refuses too)." }
            table id="audit" {
                tr { th { "time" } th { "who" } th { "action" } th { "detail" } }
                @for e in log.iter().rev() {
                    tr {
                        td { (text(e, "time")) }
                        td { (text(e, "who")) }
                        td { (text(e, "action")) }
                        td { (text(e, "detail")) }
                    }
                }
            }
        },
    )
}
