//! The self-contained HTML report: no script or style from elsewhere, graphs as inline SVG.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use towerwatch_correlate::operations::Process;
use towerwatch_correlate::{Analysis, Attack, Operation};

use crate::Meta;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// One colour per operation, cycling.
fn colour(k: usize) -> &'static str {
    const C: [&str; 8] = [
        "#d7301f", "#2b8cbe", "#31a354", "#fe9929", "#756bb1", "#e7298a", "#636363", "#1c9099",
    ];
    C[k % C.len()]
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}\
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}\
th{background:#f4f4f4}.sev-critical{color:#b30000;font-weight:bold}.sev-high{color:#d7301f}.sev-medium{color:#b8860b}\
code{font-size:12px;word-break:break-all}.tree ul{margin:0;padding-left:18px}.flag{color:#b30000;font-weight:bold}\
svg text{font:11px system-ui,sans-serif}.muted{color:#777}details{margin:6px 0}";

pub fn html(a: &Analysis, meta: &Meta) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        esc(&meta.title)
    );
    let _ = write!(
        s,
        "<h1>{}</h1><p>{} operations in {} waves from {} events ({} detections, {} inputs); {} leads below the reporting score. ATT&amp;CK {}.</p>",
        esc(&meta.title),
        a.operations.len(),
        a.waves.len(),
        meta.events,
        meta.detections,
        meta.inputs,
        a.stats.leads,
        esc(&a.attack_version)
    );
    if let Some(c) = a.actor.first() {
        let _ = write!(
            s,
            "<p id=\"actor\"><b>Suspected actor:</b> {} ({}{}) — score {:.2}, {} shared techniques: <code>{}</code></p>",
            esc(&c.group),
            esc(&c.id),
            if c.aliases.is_empty() { String::new() } else { format!(", also {}", esc(&c.aliases.join(", "))) },
            c.score,
            c.overlap.len(),
            esc(&c.overlap.join(" "))
        );
        if a.actor.len() > 1 {
            let rest: Vec<String> = a.actor[1..]
                .iter()
                .map(|c| format!("{} ({}) {:.2}", esc(&c.group), esc(&c.id), c.score))
                .collect();
            let _ = write!(s, "<p class=\"muted\">Next: {}</p>", rest.join("; "));
        }
    }
    summary_table(&mut s, a);
    let _ = write!(s, "<h2>Lateral movement</h2>");
    movement_graph(&mut s, a);
    let _ = write!(s, "<h2>Timeline</h2>");
    timeline(&mut s, a);
    let _ = write!(s, "<h2>ATT&amp;CK matrix</h2>");
    matrix(&mut s, a);
    if let Some(x) = &meta.exposure {
        let _ = write!(s, "<h2 id=\"exposure\">Exposure</h2><p>Identifiers are {} (key fingerprint <code>{}</code>). {} subscribers' call and location histories were read in stolen queries, {} were looked up by hand, {} counterparties were revealed by their records; {} bulk reads.</p>", esc(&x.identifiers), esc(&x.key_fingerprint), x.total.named(), x.total.subscribers.len() - x.total.named(), x.total.counterparties, x.total.bulk_reads);
        exposure_table(&mut s, &x.total);
    }
    for (k, op) in a.operations.iter().enumerate() {
        operation(&mut s, op, k);
        if let Some(x) = meta
            .exposure
            .as_ref()
            .and_then(|x| x.by_operation.get(&op.id))
        {
            let _ = write!(s, "<h4>Exposure of {}</h4>", esc(&op.id));
            exposure_table(&mut s, x);
        }
    }
    if !a.leads.is_empty() {
        let _ = write!(s, "<h2>Leads below the reporting score</h2><table><tr><th>score</th><th>start</th><th>hosts</th><th>rules</th></tr>");
        for l in a.leads.iter().take(50) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                l.score,
                esc(&l.start),
                esc(&l.hosts.join(", ")),
                esc(&l.rules.join("; "))
            );
        }
        let _ = write!(s, "</table>");
    }
    s.push_str("</body></html>\n");
    s
}

fn summary_table(s: &mut String, a: &Analysis) {
    let _ = write!(s, "<h2>Operations</h2><table id=\"operations\"><tr><th>id</th><th>wave</th><th>severity</th><th>score</th><th>start</th><th>end</th><th>root cause</th><th>hosts</th><th>tactics</th><th>events</th></tr>");
    for op in &a.operations {
        let _ = write!(
            s,
            "<tr><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td class=\"sev-{sev}\">{sev}</td><td>{}</td><td>{}</td><td>{}</td><td>{} on {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::wave_name(op.wave),
            op.score,
            esc(&op.start),
            esc(&op.end),
            op.root_cause.kind,
            esc(&op.root_cause.host),
            esc(&op.hosts.iter().map(|h| h.host.as_str()).collect::<Vec<_>>().join(", ")),
            esc(&op.tactics.iter().map(|t| t.tactic.as_str()).collect::<Vec<_>>().join(" → ")),
            op.events.len(),
            id = esc(&op.id),
            sev = op.severity,
        );
    }
    let _ = write!(s, "</table>");
}

/// Hosts on a circle, arrows for every host-to-host step, coloured by operation.
fn movement_graph(s: &mut String, a: &Analysis) {
    let mut hosts: BTreeMap<&str, bool> = BTreeMap::new();
    for op in &a.operations {
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
    let _ = write!(
        s,
        "<svg id=\"movement-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"19\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0L10,5L0,10z\" fill=\"#555\"/></marker></defs>"
    );
    for (k, op) in a.operations.iter().enumerate() {
        for e in &op.movement {
            if let (Some(p), Some(q)) = (pos.get(e.from.as_str()), pos.get(e.to.as_str())) {
                let _ = write!(
                    s,
                    "<line class=\"edge\" x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{:.1}\" marker-end=\"url(#arrow)\"><title>{} {} → {}: {} ({} times, first {})</title></line>",
                    p.0, p.1, q.0, q.1, colour(k),
                    1.5 + (e.count as f64).ln_1p(),
                    esc(&op.id), esc(&e.from), esc(&e.to), esc(&e.how.join(", ")), e.count, esc(&e.first)
                );
            }
        }
    }
    for (name, jewel) in &hosts {
        let (x, y) = pos[name];
        let _ = write!(
            s,
            "<g class=\"node\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"12\" fill=\"{}\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}{}</text></g>",
            if *jewel { "#fdd0a2" } else { "#e8eef4" },
            y + 26.0,
            esc(name),
            if *jewel { " ★" } else { "" }
        );
    }
    if hosts.is_empty() {
        let _ = write!(s, "<text x=\"20\" y=\"30\">no operations</text>");
    }
    s.push_str("</svg>");
}

fn micros(iso: &str) -> Option<i64> {
    iso.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_microsecond())
}

/// Rows per host, a mark per timeline entry, coloured by operation; operations as bars.
fn timeline(s: &mut String, a: &Analysis) {
    let mut hosts: BTreeSet<&str> = BTreeSet::new();
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for op in &a.operations {
        for e in &op.timeline {
            hosts.insert(&e.host);
        }
        if let (Some(x), Some(y)) = (micros(&op.start), micros(&op.end)) {
            lo = lo.min(x);
            hi = hi.max(y);
        }
    }
    let rows: Vec<&str> = hosts.into_iter().collect();
    let (left, top, row_h, width) = (
        110.0f64,
        24.0 + 14.0 * a.operations.len() as f64,
        18.0f64,
        1100.0f64,
    );
    let height = top + row_h * rows.len() as f64 + 40.0;
    let _ = write!(
        s,
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">",
        left + width + 20.0,
        left + width + 20.0
    );
    if lo >= hi {
        hi = lo.saturating_add(1);
    }
    let x = |t: i64| left + width * (t - lo) as f64 / (hi - lo) as f64;
    for (k, op) in a.operations.iter().enumerate() {
        if let (Some(a0), Some(b0)) = (micros(&op.start), micros(&op.end)) {
            let y = 8.0 + 14.0 * k as f64;
            let _ = write!(
                s,
                "<rect class=\"span\" x=\"{:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"9\" fill=\"{}\"><title>{} {} → {}</title></rect><text x=\"4\" y=\"{}\">{}</text>",
                x(a0), (x(b0) - x(a0)).max(2.0), colour(k), esc(&op.id), esc(&op.start), esc(&op.end), y + 8.0, esc(&op.id)
            );
        }
    }
    for (i, host) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.1}\">{}</text><line x1=\"{left}\" y1=\"{:.1}\" x2=\"{}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            y + 12.0, esc(host), y + 9.0, left + width, y + 9.0
        );
    }
    let row_of: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    for (k, op) in a.operations.iter().enumerate() {
        for e in &op.timeline {
            let (Some(t), Some(&r)) = (micros(&e.time), row_of.get(e.host.as_str())) else {
                continue;
            };
            let y = top + row_h * r as f64 + 9.0;
            let flagged = !e.rules.is_empty();
            let _ = write!(
                s,
                "<circle class=\"mark\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"{}\" fill=\"{}\" fill-opacity=\"{}\"><title>{} {} {}</title></circle>",
                x(t), if flagged { 4 } else { 2 }, colour(k), if flagged { "0.9" } else { "0.4" },
                esc(&e.time), esc(&e.host), esc(&e.what)
            );
        }
    }
    let axis_y = top + row_h * rows.len() as f64 + 14.0;
    for k in 0..=4 {
        let t = lo + (hi - lo) / 4 * k;
        let label = jiff::Timestamp::from_microsecond(t)
            .map(|t| t.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default();
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{axis_y:.1}\" text-anchor=\"middle\">{}</text>",
            x(t).clamp(left + 40.0, left + width - 40.0),
            esc(&label)
        );
    }
    s.push_str("</svg>");
}

/// One column per ATT&CK tactic; the techniques seen, with the operations that used them.
fn matrix(s: &mut String, a: &Analysis) {
    let attack = Attack::get();
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for op in &a.operations {
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
    let col_w = 150.0f64;
    let cell_h = 30.0f64;
    let mut columns: Vec<Vec<(&str, String, usize)>> = Vec::new();
    for tactic in &attack.tactics {
        let mut col = Vec::new();
        for (tech, ops) in &seen {
            if attack
                .technique(tech)
                .is_some_and(|t| t.tactics.contains(&tactic.short))
            {
                let name = attack
                    .technique(tech)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                col.push((*tech, name, ops.len()));
            }
        }
        columns.push(col);
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let (w, h) = (
        col_w * attack.tactics.len() as f64,
        40.0 + cell_h * rows as f64 + 10.0,
    );
    let _ = write!(
        s,
        "<svg id=\"attack-matrix\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">"
    );
    for (i, (tactic, col)) in attack.tactics.iter().zip(&columns).enumerate() {
        let x0 = col_w * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{x0}\" y=\"0\" width=\"{}\" height=\"34\" fill=\"{}\"/><text x=\"{}\" y=\"14\" text-anchor=\"middle\">{}</text><text x=\"{}\" y=\"28\" text-anchor=\"middle\" class=\"muted\">{} seen</text>",
            col_w - 2.0,
            if col.is_empty() { "#f4f4f4" } else { "#fde2d8" },
            x0 + col_w / 2.0,
            esc(&tactic.name),
            x0 + col_w / 2.0,
            col.len()
        );
        for (j, (tech, name, n)) in col.iter().enumerate() {
            let y = 40.0 + cell_h * j as f64;
            let short: String = name.chars().take(22).collect();
            let _ = write!(
                s,
                "<g class=\"hit\"><rect x=\"{x0}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#d7301f\" fill-opacity=\"{:.2}\"/><text x=\"{}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\">{}</text><title>{} {} — {} operation(s)</title></g>",
                col_w - 2.0, cell_h - 3.0,
                (0.25 + 0.2 * *n as f64).min(0.9),
                x0 + 4.0, y + 12.0, esc(tech),
                x0 + 4.0, y + 24.0, esc(&short),
                esc(tech), esc(name), n
            );
        }
    }
    s.push_str("</svg>");
}

fn operation(s: &mut String, op: &Operation, k: usize) {
    let _ = write!(
        s,
        "<h2 id=\"{id}\" style=\"border-color:{}\">{id} — {}, <span class=\"sev-{sev}\">{sev}</span>, score {}</h2>",
        colour(k),
        crate::wave_name(op.wave),
        op.score,
        id = esc(&op.id),
        sev = op.severity
    );
    let _ = write!(
        s,
        "<p><b>Root cause:</b> {} on {} at {}: <code>{}</code></p><p><b>{} → {}</b>, {} events, {} detections.</p>",
        op.root_cause.kind,
        esc(&op.root_cause.host),
        esc(&op.root_cause.time),
        esc(&op.root_cause.what),
        esc(&op.start),
        esc(&op.end),
        op.events.len(),
        op.detections
    );
    let _ = write!(s, "<table><tr><th>host</th><th>role</th><th>first</th><th>events</th><th>detections</th></tr>");
    for h in &op.hosts {
        let _ = write!(
            s,
            "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&h.host),
            if h.crown_jewel { " ★" } else { "" },
            esc(h.role.as_deref().unwrap_or("")),
            esc(&h.first),
            h.events,
            h.detections
        );
    }
    let _ = write!(s, "</table>");
    let _ = write!(s, "<h3>Tactics in order</h3><ol>");
    for t in &op.tactics {
        let _ = write!(
            s,
            "<li>{} ({}) from {}: <code>{}</code></li>",
            esc(&t.name),
            esc(&t.tactic),
            esc(&t.first),
            esc(&t.techniques.join(" "))
        );
    }
    let _ = write!(s, "</ol>");
    if !op.accounts.is_empty() || !op.remote_addresses.is_empty() {
        let _ = write!(
            s,
            "<p><b>Accounts:</b> {} <b>Outside addresses:</b> {}</p>",
            esc(&op.accounts.join(", ")),
            esc(&op.remote_addresses.join(", "))
        );
    }
    if let Some(c) = op.actor.first() {
        let _ = write!(
            s,
            "<p><b>Suspected actor:</b> {} ({}) {:.2}: <code>{}</code></p>",
            esc(&c.group),
            esc(&c.id),
            c.score,
            esc(&c.overlap.join(" "))
        );
    }
    let _ = write!(s, "<details><summary>Rules ({})</summary><table><tr><th>level</th><th>count</th><th>rule</th></tr>", op.rules.len());
    for r in &op.rules {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.level,
            r.count,
            esc(&r.title)
        );
    }
    let _ = write!(s, "</table></details>");
    let _ = write!(
        s,
        "<details><summary>Process trees ({} processes)</summary><div class=\"tree\">",
        op.processes.len()
    );
    process_trees(s, &op.processes);
    let _ = write!(s, "</div></details>");
    let _ = write!(
        s,
        "<details><summary>Timeline ({} entries{})</summary><table><tr><th>time</th><th>host</th><th>what</th><th>rules</th></tr>",
        op.timeline.len(),
        if op.timeline_truncated > 0 { format!(", {} context entries left out", op.timeline_truncated) } else { String::new() }
    );
    for e in &op.timeline {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"{}\">{}</td></tr>",
            esc(&e.time),
            esc(&e.host),
            esc(&e.what),
            if e.rules.is_empty() { "" } else { "flag" },
            esc(&e.rules.join("; "))
        );
    }
    let _ = write!(s, "</table></details>");
}

/// Processes nested under their parents (per host); roots are those whose parent is not in
/// the operation. Sysmon and 4688 views of one process both appear, as the logs have them.
fn process_trees(s: &mut String, procs: &[Process]) {
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
        s: &mut String,
        procs: &[Process],
        children: &HashMap<(&str, &str), Vec<usize>>,
        i: usize,
        depth: usize,
    ) {
        let p = &procs[i];
        let _ = write!(
            s,
            "<li><span class=\"{}\">{} {} </span><code>{}</code> <span class=\"muted\">{} {}</span>",
            if p.flagged { "flag" } else { "" },
            esc(&p.host),
            esc(&p.time),
            esc(if p.command_line.is_empty() { &p.image } else { &p.command_line }),
            esc(&p.user),
            if depth == 0 { format!("(parent {})", esc(&p.parent_image)) } else { String::new() }
        );
        if depth < 32 {
            if let Some(kids) = children.get(&(p.host.as_str(), p.id.as_str())) {
                s.push_str("<ul>");
                for &k in kids {
                    walk(s, procs, children, k, depth + 1);
                }
                s.push_str("</ul>");
            }
        }
        s.push_str("</li>");
    }
    s.push_str("<ul>");
    for r in roots {
        walk(s, procs, &children, r, 0);
    }
    s.push_str("</ul>");
}

fn exposure_table(s: &mut String, x: &crate::ExposureView) {
    let _ = write!(s, "<table class=\"exposure\"><tr><th>subscriber</th><th>how</th><th>records</th><th>cells</th><th>records from</th><th>to</th></tr>");
    for r in &x.subscribers {
        let _ = write!(
            s,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.subscriber),
            if r.reached_by.is_empty() { String::new() } else { format!(" <span class=\"muted\">(also {})</span>", esc(&r.reached_by.join(", "))) },
            r.tier.replace('_', " "),
            r.records.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            r.cells,
            esc(r.from.as_deref().unwrap_or("")),
            esc(r.to.as_deref().unwrap_or(""))
        );
    }
    s.push_str("</table>");
}
