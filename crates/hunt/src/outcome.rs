//! What a hunt gives back besides the detections it wrote.

use towerwatch_cdr::analytics::Analytics;
use towerwatch_correlate::Analysis;
use towerwatch_report::ReportExposure;

use crate::stages::Coverage;
use crate::summary::{peak_rss_bytes, render};
use crate::{Hunt, Summary};

/// The version of the EVTX parser, for the manifest.
const EVTX_PARSER: &str = "evtx 0.15";

/// The outcome of a hunt over files or a stream.
pub struct HuntOutcome {
    /// Operations, waves, the suspected actor and leads (empty when operations are off).
    pub analysis: Analysis,
    /// Counts by level, rule and host; the inputs read; what was rejected and dropped.
    pub summary: Summary,
    /// Per input of [`Summary::inputs`], its SHA-256 when asked for.
    pub sha256: Vec<Option<String>>,
    /// Whose call and location records the database audit shows read, pseudonymised, in all
    /// and per operation and wave.
    pub exposure: Option<ReportExposure>,
    pub database: Database,
    /// Which fields each log source carried, when asked for.
    pub coverage: Option<Coverage>,
    /// Seconds spent after reading: joins, correlations, the database audit, linking.
    pub linking_seconds: f64,
    /// Stream only: events that came later than the allowed lateness (taken all the same).
    pub late: u64,
}

/// The database audit among the evidence.
pub struct Database {
    /// Audited statements collected.
    pub statements: u64,
    /// What the analytics learnt (the schema used, statements that did not parse).
    pub analytics: Option<Analytics>,
}

/// A rule or Sigma correlation that fired: its title, level and how many detections (or
/// firings) it gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fired {
    pub title: String,
    pub level: String,
    pub count: u64,
}

impl HuntOutcome {
    /// The operations report in `dir`: report.html, operations.json, timeline.csv,
    /// navigator.json, stix.json (and exposure.json when the audit showed one).
    pub fn write_report(
        &self,
        dir: &std::path::Path,
        title: &str,
    ) -> Result<(), towerwatch_report::ReportError> {
        let meta = towerwatch_report::Meta {
            title: title.to_string(),
            events: self.summary.events(),
            detections: self.summary.detections,
            inputs: self.summary.inputs.len(),
            exposure: self.exposure.clone(),
        };
        towerwatch_report::write_all(dir, &self.analysis, &meta)
    }

    /// Writes [`manifest`](Self::manifest) as `FILE.manifest.json` beside `output`.
    pub fn write_manifest(
        &self,
        hunt: &Hunt,
        output: &std::path::Path,
        started: jiff::Timestamp,
        interrupted: bool,
    ) -> std::io::Result<()> {
        let path = format!("{}.manifest.json", output.display());
        let manifest = self.manifest(hunt, output, started, interrupted);
        std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot write {path}: {e}")))
    }

    /// Every rule and correlation that fired, the most frequent first (then by title).
    pub fn fired(&self, hunt: &Hunt) -> Vec<Fired> {
        let rules = hunt.rules();
        let mut fired: Vec<Fired> = self
            .summary
            .by_rule
            .iter()
            .map(|(&i, (n, _))| Fired {
                title: rules[i].title.clone(),
                level: rules[i].level.to_string(),
                count: *n,
            })
            .chain(
                self.summary
                    .firings
                    .iter()
                    .map(|(title, (level, n))| Fired {
                        title: title.clone(),
                        level: level.to_string(),
                        count: *n,
                    }),
            )
            .collect();
        fired.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.title.cmp(&b.title)));
        fired
    }

    /// The run manifest written beside detections in `output`: the tool, the command, the
    /// rule set, every input (with its SHA-256, events, rejects, time span and failure),
    /// totals, peak memory, and whether the run completed.
    pub fn manifest(
        &self,
        hunt: &Hunt,
        output: &std::path::Path,
        started: jiff::Timestamp,
        interrupted: bool,
    ) -> serde_json::Value {
        let summary = &self.summary;
        let inputs: Vec<serde_json::Value> = summary
            .inputs
            .iter()
            .zip(self.sha256.iter().chain(std::iter::repeat(&None)))
            .map(|(r, sha256)| {
                serde_json::json!({
                    "path": &*r.source,
                    "sha256": sha256,
                    "bytes": r.bytes,
                    "format": r.format.to_string(),
                    "compressed": r.compressed,
                    "events": r.events,
                    "rejected": r.rejected,
                    "first": r.first.map(|t| t.to_string()),
                    "last": r.last.map(|t| t.to_string()),
                    "failure": r.failure,
                })
            })
            .collect();
        let selection = hunt.selection();
        serde_json::json!({
            "complete": !interrupted,
            "interrupted": interrupted.then_some("stopped by a signal: the inputs after the last one listed were not read, and the last may be partial"),
            "tool": "towerwatch",
            "version": env!("CARGO_PKG_VERSION"),
            "parser": EVTX_PARSER,
            "command": std::env::args().collect::<Vec<_>>(),
            "started": started.to_string(),
            "finished": jiff::Timestamp::now().to_string(),
            "peak_rss_bytes": peak_rss_bytes(),
            "rules": {
                "origin": hunt.rules_origin(),
                "sha256": hunt.rules_digest(),
                "loaded": hunt.rules_loaded(),
                "selected": hunt.rules().len(),
                "correlations": hunt.correlations(),
                "refused": hunt.refused().len(),
                "min_level": selection.min_level.to_string(),
                "status": selection.statuses,
            },
            "inputs": inputs,
            "events": summary.events(),
            "rejected": summary.rejected(),
            "detections": summary.detections,
            "output": output.display().to_string(),
        })
    }

    /// What a terminal shows: `header`, the operations and the exposure, the database
    /// audit, the rule hits behind them, coverage when asked for.
    pub fn terminal(&self, header: &str, hunt: &Hunt) -> String {
        let mut text = format!("{header}\n\n");
        text.push_str(&towerwatch_report::terminal_with(
            &self.analysis,
            self.exposure.as_ref(),
            self.linking_seconds,
        ));
        if let (true, Some(an)) = (self.database.statements > 0, &self.database.analytics) {
            text.push_str(&format!(
                "Database audit: {} statements analysed ({} unparsable); schema used:\n{}\n",
                an.statements,
                an.unanalysed_count,
                an.schema().describe().trim_end()
            ));
        }
        text.push_str(&render(&self.summary, hunt.rules(), ""));
        if let Some(c) = &self.coverage {
            text.push_str(&c.report(hunt.rules(), hunt.refused()));
        }
        text
    }
}
