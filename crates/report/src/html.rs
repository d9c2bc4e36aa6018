//! The self-contained HTML report: no script or style from elsewhere, graphs as inline SVG.
//! Written with `maud`, which escapes every value it is given: host names, command lines and
//! account names come from the evidence, which the attacker wrote.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use maud::{html, Markup, PreEscaped, DOCTYPE};
use towerwatch_correlate::operations::Process;
use towerwatch_correlate::{Analysis, Attack, Operation};

use crate::Meta;

/// One colour per operation, cycling.
fn colour(k: usize) -> &'static str {
    const C: [&str; 8] = [
        "#d7301f", "#2b8cbe", "#31a354", "#fe9929", "#756bb1", "#e7298a", "#636363", "#1c9099",
    ];
    C[k % C.len()]
}

/// The style sheet of the report and of the live service's pages.
pub const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}\
th{background:#f4f4f4}.sev-critical{color:#b30000;font-weight:bold}.sev-high{color:#d7301f}.sev-medium{color:#b8860b}\
code{font-size:12px;word-break:break-all}.tree ul{margin:0;padding-left:18px}.flag{color:#b30000;font-weight:bold}\
svg text{font:11px system-ui,sans-serif}.muted{color:#777}details{margin:6px 0}\
.when{white-space:nowrap}.techs{word-break:normal}.techs span{white-space:nowrap}\
svg{max-width:100%;height:auto}svg .label{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}\
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:18px;height:4px;margin-right:5px;vertical-align:middle}\
.matrix{display:grid;gap:2px;font-size:11px;line-height:1.25}.matrix .tactic{background:#f4f4f4;padding:3px;text-align:center;font-weight:600}\
.matrix .tactic.seen{background:#fde2d8}.matrix .col{display:flex;flex-direction:column;gap:2px;min-width:0}\
.matrix .hit{padding:2px 3px;color:#fff;overflow-wrap:anywhere}.matrix .hit b{display:block;font-weight:600}";

/// A time as the tables show it: to the second, UTC, whole on one line; the exact time on hover.
pub fn when(iso: &str) -> Markup {
    let short = iso
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| iso.to_string());
    html! { span class="when" title=(iso) { (short) } }
}

/// ATT&CK technique ids, each kept whole on a line.
fn techniques(ids: &[String]) -> Markup {
    html! {
        code class="techs" {
            @for (i, t) in ids.iter().enumerate() {
                @if i > 0 { " " }
                span { (t) }
            }
        }
    }
}

/// A number for an SVG attribute.
fn n(x: f64) -> String {
    format!("{x:.1}")
}

pub fn html(a: &Analysis, meta: &Meta) -> String {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (meta.title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (meta.title) }
                p {
                    (a.operations.len()) " operations in " (a.waves.len()) " waves from "
                    (meta.events) " events (" (meta.detections) " detections, " (meta.inputs)
                    " inputs); " (a.stats.leads) " leads below the reporting score. ATT&CK "
                    (a.attack_version) "."
                }
                @if let Some(c) = a.actor.first() {
                    p id="actor" {
                        b { "Suspected actor:" } " " (c.group) " (" (c.id)
                        @if !c.aliases.is_empty() { ", also " (c.aliases.join(", ")) }
                        ") — score " (format!("{:.2}", c.score)) ", " (c.overlap.len())
                        " shared techniques: " (techniques(&c.overlap))
                    }
                    @if a.actor.len() > 1 {
                        p class="muted" {
                            "Next: "
                            (a.actor[1..].iter().map(|c| format!("{} ({}) {:.2}", c.group, c.id, c.score)).collect::<Vec<_>>().join("; "))
                        }
                    }
                }
                (operations_table(&a.operations, |op| format!("#{}", op.id)))
                h2 { "Lateral movement" }
                (movement_graph(&a.operations))
                h2 { "Timeline" }
                (timeline(&a.operations))
                h2 { "ATT&CK matrix" }
                (matrix(&a.operations))
                @if let Some(x) = &meta.exposure {
                    h2 id="exposure" { "Exposure" }
                    p {
                        "Identifiers are " (x.identifiers) " (key fingerprint " code { (x.key_fingerprint) } "). "
                        (x.total.named()) " subscribers' call and location histories were read in stolen queries, "
                        (x.total.subscribers.len() - x.total.named()) " were looked up by hand, "
                        (x.total.counterparties) " counterparties were revealed by their records; "
                        (x.total.bulk_reads) " bulk reads."
                    }
                    (exposure_table(&x.total, None))
                }
                @for (k, op) in a.operations.iter().enumerate() {
                    (operation(op, k))
                    @if let Some(x) = meta.exposure.as_ref().and_then(|x| x.by_operation.get(&op.id)) {
                        h4 { "Exposure of " (op.id) }
                        (exposure_table(x, None))
                    }
                }
                @if !a.leads.is_empty() {
                    h2 { "Leads below the reporting score" }
                    details {
                        summary {
                            (a.leads.len()) " stories with detections that did not score as an operation"
                            @if a.leads.len() > 50 { " (the 50 strongest)" }
                        }
                        table {
                            tr { th { "score" } th { "start" } th { "hosts" } th { "rules" } }
                            @for l in a.leads.iter().take(50) {
                                tr {
                                    td { (l.score) } td { (when(&l.start)) } td { (l.hosts.join(", ")) }
                                    td { (l.rules.join("; ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let mut s = page.into_string();
    s.push('\n');
    s
}

/// The operations, one row each; `link` gives where an operation's id leads.
pub fn operations_table(ops: &[Operation], link: impl Fn(&Operation) -> String) -> Markup {
    html! {
        h2 { "Operations" }
        table id="operations" {
            tr {
                th { "id" } th { "wave" } th { "severity" } th { "score" } th { "start" }
                th { "end" } th { "root cause" } th { "hosts" } th { "tactics" } th { "events" }
            }
            @for op in ops {
                tr {
                    td { a href=(link(op)) { (op.id) } }
                    td { (crate::wave_name(op.wave)) }
                    td class=(format!("sev-{}", op.severity)) { (op.severity) }
                    td { (op.score) }
                    td { (when(&op.start)) }
                    td { (when(&op.end)) }
                    td { (op.root_cause.kind) " on " (op.root_cause.host) }
                    td { (op.hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>().join(", ")) }
                    td { (op.tactics.iter().map(|t| t.tactic.as_str()).collect::<Vec<_>>().join(" → ")) }
                    td { (op.events.len()) }
                }
            }
        }
    }
}

/// Hosts on a circle, arrows for every host-to-host step, coloured by operation.
pub fn movement_graph(ops: &[Operation]) -> Markup {
    let mut hosts: BTreeMap<&str, bool> = BTreeMap::new();
    for op in ops {
        for h in &op.hosts {
            let e = hosts.entry(h.host.as_str()).or_default();
            *e |= h.crown_jewel;
        }
    }
    let (w, h) = (900.0f64, 620.0f64);
    let (cx, cy, r) = (w / 2.0, h / 2.0, (h / 2.0 - 70.0).max(60.0));
    let pos: HashMap<&str, (f64, f64)> = hosts
        .keys()
        .enumerate()
        .map(|(i, name)| {
            let ang = std::f64::consts::TAU * i as f64 / hosts.len().max(1) as f64
                - std::f64::consts::FRAC_PI_2;
            (*name, (cx + r * ang.cos(), cy + r * ang.sin()))
        })
        .collect();
    html! {
        svg id="movement-graph" xmlns="http://www.w3.org/2000/svg" width=(w) height=(h)
            viewBox=(format!("0 0 {w} {h}")) {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="4"
                    markerHeight="4" orient="auto" markerUnits="strokeWidth" {
                    path d="M0,0L10,5L0,10z" fill="#444" {}
                }
            }
            @for (k, op) in ops.iter().enumerate() {
                @for e in &op.movement {
                    @if let (Some(p), Some(q)) = (pos.get(e.from.as_str()), pos.get(e.to.as_str())) {
                        // The line stops at the target's circle, so the arrowhead points at
                        // it and leaves its name readable.
                        @let (x2, y2) = short_of(*p, *q, 15.0);
                        line class="edge" x1=(n(p.0)) y1=(n(p.1)) x2=(n(x2)) y2=(n(y2))
                            stroke=(colour(k)) stroke-width=(n(1.5 + (e.count as f64).ln_1p()))
                            marker-end="url(#arrow)" {
                            title {
                                (op.id) " " (e.from) " → " (e.to) ": " (e.how.join(", ")) " ("
                                (e.count) " times, first " (e.first) ")"
                            }
                        }
                    }
                }
            }
            @for (name, jewel) in &hosts {
                @let (x, y) = pos[name];
                // The name sits outside the circle of hosts, where no edge runs (every
                // edge is a chord inside it).
                @let (ux, uy) = ((x - cx) / r, (y - cy) / r);
                @let anchor = if ux > 0.3 { "start" } else if ux < -0.3 { "end" } else { "middle" };
                g class="node" {
                    circle cx=(n(x)) cy=(n(y)) r="12"
                        fill=(if *jewel { "#fdd0a2" } else { "#e8eef4" }) stroke="#333" {}
                    text class="label" x=(n(x + ux * 20.0)) y=(n(y + uy * 22.0 + 4.0)) text-anchor=(anchor) {
                        (name) @if *jewel { " ★" }
                    }
                }
            }
            @if hosts.is_empty() {
                text x="20" y="30" { "no operations" }
            }
        }
        p class="legend" {
            @for (k, op) in ops.iter().enumerate() {
                span { i style=(format!("background:{}", colour(k))) {} (op.id) " (" (crate::wave_name(op.wave)) ")" }
            }
            span class="muted" { "★ crown jewel (by the asset inventory); thicker lines: more steps" }
        }
    }
}

/// The point `gap` short of `q` on the way from `p`.
fn short_of(p: (f64, f64), q: (f64, f64), gap: f64) -> (f64, f64) {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= gap {
        return q;
    }
    (q.0 - dx * gap / len, q.1 - dy * gap / len)
}

fn micros(iso: &str) -> Option<i64> {
    iso.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_microsecond())
}

/// Rows per host, a mark per timeline entry, coloured by operation; operations as bars.
pub fn timeline(ops: &[Operation]) -> Markup {
    let mut hosts: BTreeSet<&str> = BTreeSet::new();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for op in ops {
        for e in &op.timeline {
            hosts.insert(&e.host);
        }
        if let (Some(x), Some(y)) = (micros(&op.start), micros(&op.end)) {
            lo = lo.min(x);
            hi = hi.max(y);
        }
    }
    let rows: Vec<&str> = hosts.into_iter().collect();
    let (left, top, row_h, width) = (110.0f64, 24.0 + 14.0 * ops.len() as f64, 18.0f64, 1100.0f64);
    let height = top + row_h * rows.len() as f64 + 40.0;
    if lo >= hi {
        hi = lo.saturating_add(1);
    }
    let x = |t: i64| left + width * (t - lo) as f64 / (hi - lo) as f64;
    let row_of: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let axis_y = top + row_h * rows.len() as f64 + 14.0;
    let total_w = left + width + 20.0;
    html! {
        svg id="timeline" xmlns="http://www.w3.org/2000/svg" width=(total_w) height=(height)
            viewBox=(format!("0 0 {total_w} {height}")) {
            @for (k, op) in ops.iter().enumerate() {
                @if let (Some(a0), Some(b0)) = (micros(&op.start), micros(&op.end)) {
                    @let y = 8.0 + 14.0 * k as f64;
                    rect class="span" x=(n(x(a0))) y=(y) width=(n((x(b0) - x(a0)).max(2.0)))
                        height="9" fill=(colour(k)) {
                        title { (op.id) " " (op.start) " → " (op.end) }
                    }
                    text x="4" y=(y + 8.0) { (op.id) }
                }
            }
            @for (i, host) in rows.iter().enumerate() {
                @let y = top + row_h * i as f64;
                text x="4" y=(n(y + 12.0)) { (host) }
                line x1=(left) y1=(n(y + 9.0)) x2=(left + width) y2=(n(y + 9.0)) stroke="#eee" {}
            }
            @for (k, op) in ops.iter().enumerate() {
                @for e in &op.timeline {
                    @if let (Some(t), Some(&r)) = (micros(&e.time), row_of.get(e.host.as_str())) {
                        @let flagged = !e.rules.is_empty();
                        circle class="mark" cx=(n(x(t))) cy=(n(top + row_h * r as f64 + 9.0))
                            r=(if flagged { 4 } else { 2 }) fill=(colour(k))
                            fill-opacity=(if flagged { "0.9" } else { "0.4" }) {
                            title { (e.time) " " (e.host) " " (e.what) }
                        }
                    }
                }
            }
            @for k in 0..=4 {
                @let t = lo + (hi - lo) / 4 * k;
                text x=(n(x(t).clamp(left + 40.0, left + width - 40.0))) y=(n(axis_y))
                    text-anchor="middle" {
                    (jiff::Timestamp::from_microsecond(t)
                        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default())
                }
            }
        }
    }
}

/// One column per ATT&CK tactic; the techniques seen, with the operations that used them.
pub fn matrix(ops: &[Operation]) -> Markup {
    let attack = Attack::get();
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for op in ops {
        for t in &op.tactics {
            for tech in &t.techniques {
                seen.entry(tech.as_str())
                    .or_default()
                    .insert(op.id.as_str());
            }
        }
        for tech in &op.techniques {
            seen.entry(tech.as_str())
                .or_default()
                .insert(op.id.as_str());
        }
    }
    let mut columns: Vec<Vec<(&str, String, usize)>> = Vec::new();
    for tactic in &attack.tactics {
        let mut col = Vec::new();
        for (tech, ops) in &seen {
            if let Some(t) = attack
                .technique(tech)
                .filter(|t| t.tactics.contains(&tactic.short))
            {
                col.push((*tech, t.name.clone(), ops.len()));
            }
        }
        columns.push(col);
    }
    // One column per tactic sharing the page's width: names wrap instead of being cut, and
    // the page never scrolls sideways.
    let grid = format!(
        "grid-template-columns:repeat({},minmax(0,1fr))",
        attack.tactics.len()
    );
    html! {
        div id="attack-matrix" class="matrix" style=(grid) {
            @for (tactic, col) in attack.tactics.iter().zip(&columns) {
                div class="col" {
                    div class=(if col.is_empty() { "tactic" } else { "tactic seen" }) {
                        (tactic.name) br; span class="muted" { (col.len()) " seen" }
                    }
                    @for (tech, name, count) in col {
                        div class="hit" title=(format!("{tech} {name} — {count} operation(s)"))
                            style=(format!("background:rgba(215,48,31,{:.2})", (0.45 + 0.2 * *count as f64).min(0.95))) {
                            b { (tech) } (name)
                        }
                    }
                }
            }
        }
    }
}

/// One operation: root cause, hosts, tactics, actor; rules, process trees and the timeline
/// folded (evidence on demand). `k` picks its colour.
pub fn operation(op: &Operation, k: usize) -> Markup {
    html! {
        h2 id=(op.id) style=(format!("border-color:{}", colour(k))) {
            (op.id) " — " (crate::wave_name(op.wave)) ", "
            span class=(format!("sev-{}", op.severity)) { (op.severity) } ", score " (op.score)
        }
        p {
            b { "Root cause:" } " " (op.root_cause.kind) " on " (op.root_cause.host) " at "
            (when(&op.root_cause.time)) ": " code { (op.root_cause.what) }
        }
        p {
            b { (when(&op.start)) " → " (when(&op.end)) } ", " (op.events.len()) " events, "
            (op.detections) " detections."
        }
        table {
            tr { th { "host" } th { "role" } th { "first" } th { "events" } th { "detections" } }
            @for h in &op.hosts {
                tr {
                    td { (h.host) @if h.crown_jewel { " ★" } }
                    td { (h.role.as_deref().unwrap_or("")) }
                    td { (when(&h.first)) }
                    td { (h.events) }
                    td { (h.detections) }
                }
            }
        }
        h3 { "Tactics in order" }
        ol {
            @for t in &op.tactics {
                li { (t.name) " (" (t.tactic) ") from " (when(&t.first)) ": " (techniques(&t.techniques)) }
            }
        }
        @if !op.accounts.is_empty() || !op.remote_addresses.is_empty() {
            p {
                b { "Accounts:" } " " (op.accounts.join(", ")) " "
                b { "Outside addresses:" } " " (op.remote_addresses.join(", "))
            }
        }
        @if let Some(c) = op.actor.first() {
            p {
                b { "Suspected actor:" } " " (c.group) " (" (c.id) ") " (format!("{:.2}", c.score))
                ": " (techniques(&c.overlap))
            }
        }
        details {
            summary { "Rules (" (op.rules.len()) ")" }
            table {
                tr { th { "level" } th { "count" } th { "rule" } }
                @for r in &op.rules {
                    tr { td { (r.level) } td { (r.count) } td { (r.title) } }
                }
            }
        }
        details {
            summary { "Process trees (" (op.processes.len()) " processes)" }
            div class="tree" { (process_trees(&op.processes)) }
        }
        details {
            summary {
                "Timeline (" (op.timeline.len()) " entries"
                @if op.timeline_truncated > 0 {
                    ", " (op.timeline_truncated) " context entries left out"
                }
                ")"
            }
            table {
                tr { th { "time" } th { "host" } th { "what" } th { "rules" } }
                @for e in &op.timeline {
                    tr {
                        td { (when(&e.time)) }
                        td { (e.host) }
                        td { code { (e.what) } }
                        td class=(if e.rules.is_empty() { "" } else { "flag" }) { (e.rules.join("; ")) }
                    }
                }
            }
        }
    }
}

/// Processes nested under their parents (per host); roots are those whose parent is not in
/// the operation.
fn process_trees(procs: &[Process]) -> Markup {
    let mut children: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    let ids: BTreeSet<(&str, &str)> = procs
        .iter()
        .map(|p| (p.host.as_str(), p.id.as_str()))
        .collect();
    let mut roots = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        if !p.parent_id.is_empty()
            && ids.contains(&(p.host.as_str(), p.parent_id.as_str()))
            && p.parent_id != p.id
        {
            children.entry((&p.host, &p.parent_id)).or_default().push(i);
        } else {
            roots.push(i);
        }
    }
    fn walk(
        procs: &[Process],
        children: &HashMap<(&str, &str), Vec<usize>>,
        i: usize,
        depth: usize,
    ) -> Markup {
        let p = &procs[i];
        let kids = children
            .get(&(p.host.as_str(), p.id.as_str()))
            .filter(|_| depth < 32);
        html! {
            li {
                span class=(if p.flagged { "flag" } else { "" }) { (p.host) " " (p.time) " " }
                code { (if p.command_line.is_empty() { &p.image } else { &p.command_line }) }
                " "
                span class="muted" {
                    (p.user)
                    @if depth == 0 { " (parent " (p.parent_image) ")" }
                }
                @if let Some(kids) = kids {
                    ul { @for &k in kids { (walk(procs, children, k, depth + 1)) } }
                }
            }
        }
    }
    html! {
        ul { @for r in roots { (walk(procs, &children, r, 0)) } }
    }
}

/// Whose records were read, pseudonymised; `action`, when given, adds a last column (the
/// live service's reveal form).
pub fn exposure_table(
    x: &crate::ExposureView,
    action: Option<&dyn Fn(&crate::ExposedRow) -> Markup>,
) -> Markup {
    html! {
        table class="exposure" {
            tr {
                th { "subscriber" } th { "how" } th { "records" } th { "cells" }
                th { "records from" } th { "to" }
                @if action.is_some() { th { "identity" } }
            }
            @for r in &x.subscribers {
                tr {
                    td {
                        code { (r.subscriber) }
                        @if !r.reached_by.is_empty() {
                            " " span class="muted" { "(also " (r.reached_by.join(", ")) ")" }
                        }
                    }
                    td { (r.tier.replace('_', " ")) }
                    td { (r.records.map(|n| n.to_string()).unwrap_or_else(|| "?".into())) }
                    td { (r.cells) }
                    td { (when(r.from.as_deref().unwrap_or(""))) }
                    td { (when(r.to.as_deref().unwrap_or(""))) }
                    @if let Some(action) = action { td { (action(r)) } }
                }
            }
        }
    }
}
