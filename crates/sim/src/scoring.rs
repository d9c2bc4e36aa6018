//! Scoring outputs against a simulation's ground truth: detection files (with their run
//! manifests, which tell what was read) and the exposure an output names.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//!
//! let report = towerwatch_sim::scoring::score(
//!     Path::new("sim"),
//!     &[PathBuf::from("sim/detections.jsonl")],
//!     "medium",
//! ).unwrap();
//! println!("{}", report.table());
//! ```

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use towerwatch_cdr::exposure::{Exposure, Tier};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_cdr::sql::IdKind;

use crate::eval::{self, EvalError, Report, Truth};

fn read_json(path: &Path) -> Result<serde_json::Value, EvalError> {
    let bytes = std::fs::read(path).map_err(|e| EvalError::Io(path.display().to_string(), e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| EvalError::Format(path.display().to_string(), e.to_string()))
}

/// Scores detection files (from `hunt`, `cdr`) against the simulation in `sim_dir`, using
/// their run manifests (when every file has one) to know which inputs were read.
pub fn score(sim_dir: &Path, detections: &[PathBuf], min_level: &str) -> Result<Report, EvalError> {
    let truth = Truth::load(sim_dir)?;
    let mut read = Some(Vec::new());
    let mut sources: Vec<(String, Box<dyn BufRead>)> = Vec::new();
    for d in detections {
        let manifest = PathBuf::from(format!("{}.manifest.json", d.display()));
        match (&mut read, manifest.exists()) {
            (Some(r), true) => r.extend(eval::inputs_read(&manifest)?),
            _ => read = None,
        }
        let file = File::open(d).map_err(|e| EvalError::Io(d.display().to_string(), e))?;
        sources.push((d.display().to_string(), Box::new(BufReader::new(file))));
    }
    eval::evaluate(&truth, sources, read.as_deref(), min_level)
}

/// A named subscriber as an output tells it: identifier (or pseudonym), records, first and
/// last record time.
struct NamedRow {
    records: Option<u64>,
    from: Option<String>,
    to: Option<String>,
}

/// The exposure found against the ground truth's.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExposureCheck {
    /// Subscribers the campaign read by name.
    pub targets: usize,
    /// Of them, named in the output.
    pub found: usize,
    /// Subscribers the output names in all.
    pub named: usize,
    /// Targets whose records, first and last record times agree to the second.
    pub exact: usize,
}

impl ExposureCheck {
    fn of(want: &BTreeMap<String, &serde_json::Value>, named: &BTreeMap<String, NamedRow>) -> Self {
        let second = |s: Option<&str>| s.map(|s| s.chars().take(19).collect::<String>());
        let found = named.keys().filter(|id| want.contains_key(*id)).count();
        let exact = want
            .iter()
            .filter(|(id, w)| {
                named.get(*id).is_some_and(|e| {
                    e.records == w["records"].as_u64()
                        && second(e.from.as_deref()) == second(w["first"].as_str())
                        && second(e.to.as_deref()) == second(w["last"].as_str())
                })
            })
            .count();
        ExposureCheck {
            targets: want.len(),
            found,
            named: named.len(),
            exact,
        }
    }

    /// One line: recall, precision and exactness against the ground truth.
    pub fn line(&self, what: &str) -> String {
        format!(
            "exposure ({what}) against the ground truth: {} of {} targeted subscribers found (recall {:.1}%), {} named in all (precision {:.1}%); records and time range exact for {} of {}\n",
            self.found,
            self.targets,
            100.0 * self.found as f64 / (self.targets.max(1)) as f64,
            self.named,
            100.0 * self.found as f64 / (self.named.max(1)) as f64,
            self.exact,
            self.targets
        )
    }
}

/// The truth's named subscribers (by MSISDN, or by its pseudonym under `p`).
fn truth_exposure(
    sim_dir: &Path,
    p: Option<&Pseudonymizer>,
) -> Result<(serde_json::Value, Vec<String>), EvalError> {
    let path = sim_dir.join("truth/exposure.json");
    let truth = read_json(&path)?;
    let ids = truth["total"]
        .as_array()
        .ok_or_else(|| EvalError::Format(path.display().to_string(), "no total".into()))?
        .iter()
        .filter_map(|e| e["msisdn"].as_str())
        .map(|m| match p {
            Some(p) => p.id(IdKind::Msisdn, m),
            None => m.to_string(),
        })
        .collect();
    Ok((truth, ids))
}

fn wanted<'a>(
    truth: &'a serde_json::Value,
    ids: &[String],
) -> BTreeMap<String, &'a serde_json::Value> {
    ids.iter()
        .cloned()
        .zip(truth["total"].as_array().into_iter().flatten())
        .collect()
}

/// The exposure `towerwatch cdr` found, against the ground truth.
pub fn exposure_check(sim_dir: &Path, x: &Exposure) -> Result<ExposureCheck, EvalError> {
    let (truth, ids) = truth_exposure(sim_dir, None)?;
    let named = x
        .subscribers
        .iter()
        .filter(|((t, _), _)| *t == Tier::Named)
        .map(|((_, id), e)| {
            (
                id.clone(),
                NamedRow {
                    records: e.records,
                    from: e.from.map(|t| t.to_string()),
                    to: e.to.map(|t| t.to_string()),
                },
            )
        })
        .collect();
    Ok(ExposureCheck::of(&wanted(&truth, &ids), &named))
}

/// The exposure in a hunt's report (`exposure.json`, pseudonymised under `p`), against the
/// ground truth.
pub fn report_exposure_check(
    sim_dir: &Path,
    report: &Path,
    p: &Pseudonymizer,
) -> Result<ExposureCheck, EvalError> {
    let (truth, ids) = truth_exposure(sim_dir, Some(p))?;
    let doc = read_json(&report.join("exposure.json"))?;
    let named = doc["total"]["subscribers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["tier"] == "named")
        .filter_map(|r| {
            Some((
                r["subscriber"].as_str()?.to_string(),
                NamedRow {
                    records: r["records"].as_u64(),
                    from: r["from"].as_str().map(String::from),
                    to: r["to"].as_str().map(String::from),
                },
            ))
        })
        .collect();
    Ok(ExposureCheck::of(&wanted(&truth, &ids), &named))
}

/// What `demo` measured, as `demo.json`: the exposure in the hunt's report and in
/// `towerwatch cdr`, the benign-twin categories alerting at medium and above, and how each
/// wave's events fall into operations.
#[derive(serde::Serialize)]
pub struct DemoSummary {
    pub exposure_hunt: ExposureCheck,
    pub exposure_cdr: ExposureCheck,
    pub twins_alerting: Vec<String>,
    /// Per category: (records, records flagged at medium and above).
    pub twins: BTreeMap<String, (u64, u64)>,
    pub operations: eval::StoryReport,
}

/// The benign-twin categories: records, and records flagged; then which alert.
pub fn twin_table(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for (category, (records, flagged)) in &r.twins {
        let _ = writeln!(
            s,
            "  {category:<20} {flagged:>5} of {records:>6} records flagged"
        );
    }
    let alerting = r.twins_alerting();
    let _ = writeln!(
        s,
        "{} of {} categories alerting{}",
        alerting.len(),
        r.twins.len(),
        if alerting.is_empty() {
            String::new()
        } else {
            format!(": {}", alerting.join(", "))
        }
    );
    s
}
