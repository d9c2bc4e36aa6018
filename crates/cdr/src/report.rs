//! Outputs: detections in towerwatch's JSONL contract, the exposure as CSV (for the privacy
//! officer) and JSON, and a self-contained HTML page with an SVG map of the exposed cells.
//! Every subscriber identifier goes through the [`Pseudonymizer`].

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use crate::analytics::Finding;
use crate::exposure::{CellTable, Exposure, Tier};
use crate::pseudo::Pseudonymizer;
use crate::sql::IdKind;

fn kind_name(k: Option<IdKind>) -> &'static str {
    match k {
        Some(IdKind::Imsi) => "imsi",
        Some(IdKind::Imei) => "imei",
        _ => "msisdn",
    }
}

fn tier_name(t: Tier) -> &'static str {
    t.name()
}

/// One detection per line, with the keys of `towerwatch hunt --format jsonl`.
pub fn write_detections(
    out: &mut dyn Write,
    findings: &[Finding],
    p: &Pseudonymizer,
    server: Option<&str>,
) -> std::io::Result<()> {
    for f in findings {
        serde_json::to_writer(&mut *out, &detection(f, p, server))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A finding as a detection of the JSONL contract, identifiers pseudonymised.
pub fn detection(
    f: &Finding,
    p: &Pseudonymizer,
    server: Option<&str>,
) -> towerwatch_event::Detection {
    let e = &f.event;
    let read = f.read.as_ref();
    let ids: Vec<String> = read.map_or(Vec::new(), |r| {
        r.ids.iter().map(|id| p.id(id.kind, &id.value)).collect()
    });
    let event = json!({
        "user": e.user, "database": e.db, "application": e.app, "client": e.client, "client_port": e.client_port, "pid": e.pid, "session": e.session,
        "class": e.audit.class, "command": e.audit.command, "object": e.audit.object_name,
        "statement": p.redact(&e.audit.statement),
        "parameters": e.audit.params.as_ref().map(|ps| ps.iter().map(|v| p.redact(v)).collect::<Vec<_>>()),
        "rows": e.audit.rows,
        "tables": read.map(|r| r.tables.clone()),
        "subscriber_tables": read.map(|r| r.subscriber_tables.clone()),
        "subscribers": ids,
        "from": read.and_then(|r| r.from).map(|t| t.to_string()),
        "to": read.and_then(|r| r.to).map(|t| t.to_string()),
        "reasons": f.reasons,
    });
    towerwatch_event::Detection {
        timestamp: e.time.map(|t| t.to_string()),
        rule_id: f.rule.id().into(),
        rule_title: f.rule.title().into(),
        level: f.rule.level(),
        tags: f.rule.tags().iter().map(|t| t.to_string()).collect(),
        computer: server.map(String::from),
        channel: Some("db-audit".into()),
        event_id: None,
        source: e.source.to_string(),
        record_id: None,
        line: Some(e.line),
        event: match event {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("an object"),
        },
    }
}

/// The exposure CSV: one row per subscriber and tier, in [`Exposure::rows`] order; every cell
/// through the `csv` crate and [`towerwatch_event::csv_cell`] (actors and evidence come from
/// the attacker's client: an `application_name` may be a formula).
pub fn exposure_csv(x: &Exposure, p: &Pseudonymizer) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "subscriber",
        "identifier_type",
        "tier",
        "records",
        "distinct_cells",
        "exposed_from",
        "exposed_to",
        "first_read",
        "last_read",
        "actors",
        "evidence",
    ]);
    for r in x.rows(p) {
        let e = r.exposed;
        let t = |v: Option<jiff::Timestamp>| v.map(|t| t.to_string()).unwrap_or_default();
        let record = [
            r.shown.clone(),
            kind_name(e.kind).to_string(),
            tier_name(r.tier).to_string(),
            e.records.map(|r| r.to_string()).unwrap_or_default(),
            e.cells.len().to_string(),
            t(e.from),
            t(e.to),
            t(e.first_read),
            t(e.last_read),
            p.redact(&e.actors.iter().cloned().collect::<Vec<_>>().join("; ")),
            e.evidence.iter().cloned().collect::<Vec<_>>().join("; "),
        ];
        let _ = w.write_record(towerwatch_event::csv_row(&record));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The exposure as JSON, with the cells (and their coordinates, where the cell table has them).
pub fn exposure_json(x: &Exposure, p: &Pseudonymizer, cells: &CellTable) -> serde_json::Value {
    let subs: Vec<_> = x
        .rows(p)
        .into_iter()
        .map(|r| {
            let e = r.exposed;
            json!({
                "subscriber": r.shown,
                "identifier_type": kind_name(e.kind),
                "tier": tier_name(r.tier),
                "records": e.records,
                "exposed_from": e.from.map(|t| t.to_string()),
                "exposed_to": e.to.map(|t| t.to_string()),
                "first_read": e.first_read.map(|t| t.to_string()),
                "last_read": e.last_read.map(|t| t.to_string()),
                "cells": e.cells.iter().map(|c| match cells.get(c) {
                    Some((radio, lon, lat)) => json!({"area": c.0, "cell": c.1, "radio": radio, "lon": lon, "lat": lat}),
                    None => json!({"area": c.0, "cell": c.1}),
                }).collect::<Vec<_>>(),
                "actors": e.actors.iter().map(|a| p.redact(a)).collect::<Vec<_>>(),
                "reached_by": e.reached_by.iter().map(|(k, v)| p.id(*k, v)).collect::<Vec<_>>(),
                "evidence": e.evidence,
            })
        })
        .collect();
    let bulk: Vec<_> = x.bulk.iter().map(|b| json!({"evidence": b.evidence, "actor": b.actor, "tables": b.tables, "subscribers": b.subscribers, "records": b.records})).collect();
    json!({
        "pseudonymised": !p.reveals(),
        "key_fingerprint": p.fingerprint(),
        "named": x.subscribers.keys().filter(|(t, _)| *t == Tier::Named).count(),
        "counterparties": x.subscribers.keys().filter(|(t, _)| *t == Tier::Counterparty).count(),
        "subscribers": subs,
        "bulk": bulk,
        "cdr_rows_scanned": x.cdr_rows,
        "cdr_rows_rejected": x.cdr_rejected_count,
    })
}

/// A self-contained page: the named subscribers' exposure and an SVG plot of every cell site
/// their records placed them at (dot size: how many named subscribers were seen there).
/// Written with `maud`, which escapes every value (actors come from the database client).
pub fn exposure_html(x: &Exposure, p: &Pseudonymizer, cells: &CellTable) -> String {
    use maud::{html, PreEscaped, DOCTYPE};
    let mut at: BTreeMap<crate::exposure::CellKey, usize> = BTreeMap::new();
    for ((tier, _), e) in &x.subscribers {
        if *tier == Tier::Named {
            for c in &e.cells {
                *at.entry(c.clone()).or_default() += 1;
            }
        }
    }
    let all: Vec<(f64, f64)> = cells.values().map(|(_, lon, lat)| (*lon, *lat)).collect();
    let (w, h, m) = (720.0, 480.0, 30.0);
    let bounds = all
        .iter()
        .fold((f64::MAX, f64::MIN, f64::MAX, f64::MIN), |b, (x, y)| {
            (b.0.min(*x), b.1.max(*x), b.2.min(*y), b.3.max(*y))
        });
    let sx = |lon: f64| m + (lon - bounds.0) / (bounds.1 - bounds.0).max(1e-9) * (w - 2.0 * m);
    let sy = |lat: f64| h - m - (lat - bounds.2) / (bounds.3 - bounds.2).max(1e-9) * (h - 2.0 * m);
    let n = |v: f64| format!("{v:.1}");
    let named: Vec<_> = x
        .rows(p)
        .into_iter()
        .filter(|r| r.tier == Tier::Named)
        .collect();
    let counterparties = x.count(Tier::Counterparty);
    let page = html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { "towerwatch: CDR exposure" }
                style { (PreEscaped("body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}")) }
            }
            body {
                h1 { "CDR exposure" }
                p {
                    (named.len()) " subscribers named in stolen queries, " (counterparties)
                    " counterparties revealed by their records, " (x.bulk.len()) " bulk reads. Identifiers are "
                    (if p.reveals() { "revealed (--reveal-key)" } else { "pseudonymised (keyed HMAC-SHA-256)" })
                    ", key fingerprint " code { (p.fingerprint()) } "."
                }
                h2 { "Cell sites in the leaked location trail" }
                svg id="cell-map" xmlns="http://www.w3.org/2000/svg" width=(w) height=(h)
                    viewBox=(format!("0 0 {w} {h}")) {
                    rect width=(w) height=(h) fill="#f4f6f8" {}
                    @for (lon, lat) in &all {
                        circle cx=(n(sx(*lon))) cy=(n(sy(*lat))) r="2" fill="#b8c2cc" {}
                    }
                    @for (c, count) in &at {
                        @if let Some((radio, lon, lat)) = cells.get(c) {
                            circle class="exposed" cx=(n(sx(*lon))) cy=(n(sy(*lat)))
                                r=(n(3.0 + 2.0 * (*count as f64).sqrt())) fill="#c0392b" fill-opacity="0.7" {
                                title { (radio) " area " (c.0) " cell " (c.1) ": " (count) " named subscriber(s)" }
                            }
                        }
                    }
                }
                h2 { "Named subscribers" }
                table {
                    tr { th { "subscriber" } th { "tier" } th { "records" } th { "cells" } th { "records from – to" } th { "read by" } }
                    @for r in &named {
                        tr {
                            td { (r.shown) }
                            td { (tier_name(r.tier)) }
                            td { (r.exposed.records.map(|v| v.to_string()).unwrap_or_else(|| "?".into())) }
                            td { (r.exposed.cells.len()) }
                            td {
                                (r.exposed.from.map(|t| t.to_string()).unwrap_or_default()) " – "
                                (r.exposed.to.map(|t| t.to_string()).unwrap_or_default())
                            }
                            td { (p.redact(&r.exposed.actors.iter().cloned().collect::<Vec<_>>().join("; "))) }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}
