//! Reports of a towerwatch [`Analysis`]: the terminal summary ([`terminal`]), and the files
//! of `towerwatch hunt --report DIR` ([`write_all`]):
//!
//! - `report.html`: self-contained (no network), inline SVG lateral-movement graph, timeline
//!   and ATT&CK matrix; the operations with their process trees and timelines;
//! - `operations.json`: the analysis itself (operations, waves, attribution, leads);
//! - `timeline.csv`: every timeline entry in Timesketch's columns;
//! - `navigator.json`: an ATT&CK Navigator layer (format 4.5) of the techniques seen;
//! - `stix.json`: a STIX 2.1 bundle (report, attack patterns, indicators, suspected actor).
//!
//! ```
//! use towerwatch_correlate::{Correlator, Options};
//! let analysis = Correlator::default().finish(&[], &[], &[], &[], &Options::default()).unwrap();
//! let text = towerwatch_report::terminal(&analysis, 0.0);
//! assert!(text.starts_with("Operations: none"));
//! let dir = tempfile::tempdir().unwrap();
//! let meta = towerwatch_report::Meta { title: "test".into(), ..Default::default() };
//! towerwatch_report::write_all(dir.path(), &analysis, &meta).unwrap();
//! assert!(dir.path().join("report.html").exists());
//! ```

pub mod html;
mod safe;
mod stix;

use std::fmt::Write as _;
use std::path::Path;

use towerwatch_correlate::operations::EventRef;
use towerwatch_correlate::{Analysis, Attack};

pub use html::html;
pub use safe::{one_line, terminal_safe};
pub use stix::stix_bundle;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {0}: {1}")]
    Io(String, std::io::Error),
}

/// What the run was, for the report's header.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub title: String,
    pub events: u64,
    pub detections: u64,
    pub inputs: usize,
    /// Whose call and location histories were read, when the evidence held the CDR store's
    /// audit trail.
    pub exposure: Option<ReportExposure>,
}

/// One subscriber's exposure, pseudonymised.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExposedRow {
    pub subscriber: String,
    /// `named`, `looked_up`.
    pub tier: std::borrow::Cow<'static, str>,
    pub records: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cells: usize,
    /// Other identifiers (IMSI, IMEI pseudonyms) the subscriber was named by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reached_by: Vec<String>,
}

/// An exposure: named and looked-up subscribers, how many counterparties the records
/// revealed, bulk reads.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ExposureView {
    pub subscribers: Vec<ExposedRow>,
    pub counterparties: usize,
    pub bulk_reads: usize,
    pub records_scanned: u64,
}

impl ExposureView {
    pub fn named(&self) -> usize {
        self.subscribers
            .iter()
            .filter(|r| r.tier == "named")
            .count()
    }
}

/// The exposure in all, per operation (by id) and per wave.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ReportExposure {
    /// How identifiers are shown (pseudonymised with which key).
    pub identifiers: String,
    /// The key's fingerprint (never the key): a reveal must bring the key that made it.
    pub key_fingerprint: String,
    pub total: ExposureView,
    pub by_operation: std::collections::BTreeMap<String, ExposureView>,
    pub by_wave: std::collections::BTreeMap<usize, ExposureView>,
}

/// `wave 2`, or `no wave` for a lesser operation outside every wave.
pub(crate) fn wave_name(w: Option<usize>) -> String {
    w.map(|w| format!("wave {w}"))
        .unwrap_or_else(|| "no wave".into())
}

fn short_time(iso: &str) -> String {
    iso.get(..16).unwrap_or(iso).replace('T', " ")
}

fn duration(start: &str, end: &str) -> String {
    let (Ok(a), Ok(b)) = (
        start.parse::<jiff::Timestamp>(),
        end.parse::<jiff::Timestamp>(),
    ) else {
        return String::new();
    };
    let s = (b.as_second() - a.as_second()).max(0);
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
        s if s >= 3_600 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        s => format!("{}m", s / 60),
    }
}

/// The terminal summary: operations first, then waves and the suspected actor.
pub fn terminal(a: &Analysis, seconds: f64) -> String {
    terminal_with(a, None, seconds)
}

/// As [`terminal`], with what each operation exposed.
pub fn terminal_with(a: &Analysis, exposure: Option<&ReportExposure>, seconds: f64) -> String {
    let mut s = String::new();
    if a.operations.is_empty() {
        let _ = writeln!(
            s,
            "Operations: none ({} leads below the reporting score; {} events linked into {} stories in {seconds:.2} s)",
            a.stats.leads, a.stats.events_linked, a.stats.stories
        );
    } else {
        let _ = writeln!(
            s,
            "Operations: {} in {} wave(s); {} leads below the reporting score; {} events linked into {} stories in {seconds:.2} s",
            a.operations.len(),
            a.waves.len(),
            a.stats.leads,
            a.stats.events_linked,
            a.stats.stories
        );
    }
    for op in &a.operations {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "  {}  {}  {:<8}  score {:>3}  {} → {} ({}), {} events, {} detections",
            op.id,
            wave_name(op.wave),
            op.severity,
            op.score,
            short_time(&op.start),
            short_time(&op.end),
            duration(&op.start, &op.end),
            op.events.len(),
            op.detections
        );
        let what: String = op.root_cause.what.chars().take(110).collect();
        let _ = writeln!(
            s,
            "      root cause: {} on {}: {}",
            op.root_cause.kind,
            one_line(&op.root_cause.host),
            one_line(&what)
        );
        let hosts: Vec<String> = op
            .hosts
            .iter()
            .map(|h| match (&h.role, h.crown_jewel) {
                (Some(r), true) => format!("{} ({r} ★)", one_line(&h.host)),
                (Some(r), false) => format!("{} ({r})", one_line(&h.host)),
                (None, _) => one_line(&h.host).into_owned(),
            })
            .collect();
        let _ = writeln!(s, "      hosts: {}", hosts.join(", "));
        if !op.movement.is_empty() {
            let m: Vec<String> = op
                .movement
                .iter()
                .map(|e| format!("{}→{}", one_line(&e.from), one_line(&e.to)))
                .collect();
            let _ = writeln!(s, "      movement: {}", m.join(", "));
        }
        let tactics: Vec<&str> = op.tactics.iter().map(|t| t.tactic.as_str()).collect();
        let _ = writeln!(s, "      tactics: {}", tactics.join(" → "));
        if !op.accounts.is_empty() {
            let accounts: Vec<_> = op.accounts.iter().map(|a| one_line(a)).collect();
            let _ = writeln!(s, "      accounts: {}", accounts.join(", "));
        }
        if !op.remote_addresses.is_empty() {
            let _ = writeln!(
                s,
                "      outside addresses: {}",
                op.remote_addresses.join(", ")
            );
        }
        if let Some(x) = exposure.and_then(|x| x.by_operation.get(&op.id)) {
            let _ = writeln!(
                s,
                "      exposure: {} subscribers' call and location histories read ({} records), {} counterparties revealed",
                x.named(),
                x.subscribers.iter().filter_map(|r| r.records).sum::<u64>(),
                x.counterparties
            );
        }
        if let Some(c) = op.actor.first() {
            let _ = writeln!(
                s,
                "      suspected actor: {} ({}) {:.2}, {} shared techniques",
                c.group,
                c.id,
                c.score,
                c.overlap.len()
            );
        }
    }
    if let Some(x) = exposure {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "  exposure in all ({}): {} subscribers named in stolen queries, {} looked up by hand, {} counterparties revealed, {} bulk reads",
            x.identifiers,
            x.total.named(),
            x.total.subscribers.len() - x.total.named(),
            x.total.counterparties,
            x.total.bulk_reads
        );
    }
    if !a.operations.is_empty() {
        let _ = writeln!(s);
        for w in &a.waves {
            let actor = w
                .actor
                .first()
                .map(|c| format!("; suspected actor {} ({}) {:.2}", c.group, c.id, c.score))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  wave {}: {} → {}, {} ({}){actor}",
                w.wave,
                short_time(&w.start),
                short_time(&w.end),
                w.operations.join(", "),
                one_line(&w.hosts.join(", "))
            );
        }
        if let Some(c) = a.actor.first() {
            let _ = writeln!(
                s,
                "  campaign: suspected actor {} ({}{}), score {:.2}, by {} shared ATT&CK {} techniques: {}",
                c.group,
                c.id,
                if c.aliases.is_empty() {
                    String::new()
                } else {
                    format!(", also {}", c.aliases.join(", "))
                },
                c.score,
                c.overlap.len(),
                a.attack_version,
                c.overlap.join(" ")
            );
            for other in a.actor.iter().skip(1).take(2) {
                let _ = writeln!(
                    s,
                    "            then {} ({}) {:.2}, {} shared",
                    other.group,
                    other.id,
                    other.score,
                    other.overlap.len()
                );
            }
        }
    }
    let _ = writeln!(s);
    s
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ReportError> {
    let path = dir.join(name);
    write_whole(&path, bytes).map_err(|e| ReportError::Io(path.display().to_string(), e))
}

/// Writes a file whole or not at all: under a `.partial` name first, renamed when written
/// (a run that dies, or a full disk, leaves no file that looks complete).
pub fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let written = std::fs::write(&partial, bytes).and_then(|_| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

fn place(e: &EventRef) -> String {
    match (e.record_id, e.line) {
        (Some(r), _) => format!("{} record {r}", e.source),
        (None, Some(l)) => format!("{}:{l}", e.source),
        _ => e.source.clone(),
    }
}

/// Timesketch's CSV: `message,datetime,timestamp_desc` plus our own columns.
pub fn timesketch_csv(a: &Analysis) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "message",
        "datetime",
        "timestamp",
        "timestamp_desc",
        "operation",
        "wave",
        "host",
        "level",
        "rules",
        "tactics",
        "source",
    ]);
    for op in &a.operations {
        for e in &op.timeline {
            let micros = e
                .time
                .parse::<jiff::Timestamp>()
                .map(|t| t.as_microsecond())
                .unwrap_or(0);
            let record = [
                e.what.clone(),
                e.time.clone(),
                micros.to_string(),
                "Event Recorded".to_string(),
                op.id.clone(),
                op.wave.map(|w| w.to_string()).unwrap_or_default(),
                e.host.clone(),
                e.level.to_string(),
                e.rules.join("; "),
                e.tactics.join(" "),
                place(&e.event),
            ];
            // Quoted by the csv crate; no cell a spreadsheet would run (the evidence's words).
            let _ = w.write_record(towerwatch_event::csv_row(&record));
        }
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// An ATT&CK Navigator layer (format 4.5): each technique scored by the operations using it.
pub fn navigator_layer(a: &Analysis, title: &str) -> serde_json::Value {
    let attack = Attack::get();
    let mut uses: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for op in &a.operations {
        for t in &op.techniques {
            uses.entry(t.as_str()).or_default().push(op.id.as_str());
        }
    }
    let max = uses.values().map(Vec::len).max().unwrap_or(1);
    let techniques: Vec<serde_json::Value> = uses
        .iter()
        .map(|(t, ops)| {
            serde_json::json!({
                "techniqueID": t,
                "score": ops.len(),
                "color": "",
                "comment": format!("seen in {}", ops.join(", ")),
                "enabled": true,
                "showSubtechniques": true,
            })
        })
        .collect();
    serde_json::json!({
        "name": title,
        "versions": { "attack": attack.attack_version.split('.').next().unwrap_or("18"), "navigator": "4.9.1", "layer": "4.5" },
        "domain": "enterprise-attack",
        "description": "Techniques towerwatch saw in the operations it built",
        "filters": { "platforms": ["Windows", "Linux", "Network"] },
        "sorting": 0,
        "layout": { "layout": "side", "showID": true, "showName": true },
        "hideDisabled": false,
        "techniques": techniques,
        "gradient": { "colors": ["#fde2d8", "#d7301f"], "minValue": 0, "maxValue": max },
        "legendItems": [],
        "metadata": [],
        "showTacticRowBackground": false,
        "selectTechniquesAcrossTactics": true,
    })
}

/// Writes every report file into `dir` (created if missing).
pub fn write_all(dir: &Path, a: &Analysis, meta: &Meta) -> Result<(), ReportError> {
    std::fs::create_dir_all(dir).map_err(|e| ReportError::Io(dir.display().to_string(), e))?;
    let json = serde_json::to_vec_pretty(a).expect("an analysis serialises");
    write(dir, "operations.json", &json)?;
    write(dir, "timeline.csv", timesketch_csv(a).as_bytes())?;
    let layer = navigator_layer(a, &meta.title);
    write(
        dir,
        "navigator.json",
        &serde_json::to_vec_pretty(&layer).expect("a layer serialises"),
    )?;
    write(
        dir,
        "stix.json",
        &serde_json::to_vec_pretty(&stix_bundle(a)).expect("a bundle serialises"),
    )?;
    if let Some(x) = &meta.exposure {
        write(
            dir,
            "exposure.json",
            &serde_json::to_vec_pretty(x).expect("an exposure serialises"),
        )?;
    }
    write(dir, "report.html", html(a, meta).as_bytes())?;
    Ok(())
}
