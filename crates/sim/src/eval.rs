//! Scoring a hunt's detections (`towerwatch hunt --format jsonl`) against a simulation's
//! ground truth (`truth/`).
//!
//! An event is *flagged* when at least one detection at or above the chosen level points at
//! it (by evidence file and line). For every stage of every wave the campaign played, the
//! stage instance counts as detected when any of its labelled events is flagged; event
//! recall is the share of labelled events flagged. Precision is the share of flagged events
//! that are labelled; false alarms are flagged benign events, per million benign events of
//! the inputs the hunt read (from its run manifest, when it is beside the detections).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};
use towerwatch_event::Detection;

use crate::sink::FileStats;
use crate::STAGES;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: {1}")]
    Format(String, String),
}

#[derive(Debug, Deserialize)]
struct LabelRecord {
    file: String,
    line: u64,
    wave: u8,
    stage: u8,
    #[serde(default)]
    time: String,
}

#[derive(Debug, Deserialize)]
struct TwinRecord {
    file: String,
    line: u64,
    category: String,
}

/// A simulation's ground truth, as read back from `truth/`.
pub struct Truth {
    labels: Vec<LabelRecord>,
    twins: Vec<TwinRecord>,
    files: BTreeMap<String, FileStats>,
}

impl Truth {
    pub fn load(sim_dir: &Path) -> Result<Truth, EvalError> {
        let path = sim_dir.join("truth/labels.jsonl");
        let name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| EvalError::Io(name.clone(), e))?;
        let mut labels = Vec::new();
        for (i, line) in text.lines().enumerate() {
            labels.push(
                serde_json::from_str(line)
                    .map_err(|e| EvalError::Format(format!("{name}:{}", i + 1), e.to_string()))?,
            );
        }
        let path = sim_dir.join("truth/benign_twins.jsonl");
        let mut twins = Vec::new();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let name = path.display().to_string();
            for (i, line) in text.lines().enumerate() {
                twins.push(
                    serde_json::from_str(line).map_err(|e| {
                        EvalError::Format(format!("{name}:{}", i + 1), e.to_string())
                    })?,
                );
            }
        }
        let path = sim_dir.join("truth/files.json");
        let name = path.display().to_string();
        let text = std::fs::read(&path).map_err(|e| EvalError::Io(name.clone(), e))?;
        let files =
            serde_json::from_slice(&text).map_err(|e| EvalError::Format(name, e.to_string()))?;
        Ok(Truth {
            labels,
            twins,
            files,
        })
    }
}

/// Detection levels in order, as the JSONL contract names them.
pub const LEVELS: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

#[derive(Debug, Clone, Serialize)]
pub struct StageRow {
    pub stage: u8,
    pub name: &'static str,
    /// Waves in which the campaign played this stage.
    pub waves: usize,
    /// Of those, waves in which a labelled event of the stage was flagged.
    pub detected: usize,
    pub events: u64,
    pub events_flagged: u64,
    /// Labelled events in inputs the hunt did not read (by kind).
    pub unread: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaveRow {
    pub wave: u8,
    pub stages: usize,
    pub stages_detected: usize,
    pub events: u64,
    pub events_flagged: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub min_level: String,
    pub stages: Vec<StageRow>,
    pub waves: Vec<WaveRow>,
    pub stage_instances: usize,
    pub stage_instances_detected: usize,
    pub malicious_events: u64,
    pub malicious_flagged: u64,
    pub flagged_events: u64,
    pub benign_events: u64,
    pub benign_flagged: u64,
    pub detections: u64,
    /// Detections whose evidence is not in the simulation (another directory).
    pub detections_elsewhere: u64,
    /// Rules by the benign events they flagged, most first (top 10).
    pub noisiest_rules: Vec<(String, u64)>,
    /// Benign twins of the campaign's moves, by category: (records, flagged).
    pub twins: BTreeMap<String, (u64, u64)>,
}

impl Report {
    pub fn stage_recall(&self) -> f64 {
        ratio(
            self.stage_instances_detected as u64,
            self.stage_instances as u64,
        )
    }

    pub fn event_recall(&self) -> f64 {
        ratio(self.malicious_flagged, self.malicious_events)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.malicious_flagged, self.flagged_events)
    }

    pub fn false_alarms_per_million(&self) -> f64 {
        ratio(self.benign_flagged, self.benign_events) * 1e6
    }

    /// Categories of benign twins with at least one record flagged.
    pub fn twins_alerting(&self) -> Vec<&str> {
        self.twins
            .iter()
            .filter(|(_, (_, f))| *f > 0)
            .map(|(c, _)| c.as_str())
            .collect()
    }

    /// The report as a terminal table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Evaluation against the ground truth (detections at level {} and above)\n",
            self.min_level
        );
        let _ = writeln!(
            s,
            "{:<3} {:<30} {:>7} {:>14} {:>7}  not read by the hunt",
            "#", "stage", "waves", "events", "recall"
        );
        for r in &self.stages {
            let unread: Vec<String> = r
                .unread
                .iter()
                .map(|(k, v)| format!("{v} in {k}"))
                .collect();
            let _ = writeln!(
                s,
                "{:<3} {:<30} {:>3}/{:<3} {:>6}/{:<7} {:>6.1}%  {}",
                r.stage,
                r.name,
                r.detected,
                r.waves,
                r.events_flagged,
                r.events,
                100.0 * ratio(r.events_flagged, r.events),
                unread.join(", ")
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<6} {:>14} {:>16}", "wave", "stages", "events");
        for w in &self.waves {
            let _ = writeln!(
                s,
                "{:<6} {:>7}/{:<6} {:>7}/{:<6} ({:.1}%)",
                w.wave,
                w.stages_detected,
                w.stages,
                w.events_flagged,
                w.events,
                100.0 * ratio(w.events_flagged, w.events)
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "stage recall {:.1}% ({}/{}), event recall {:.1}% ({}/{}), precision {:.1}% ({} of {} flagged events)",
            100.0 * self.stage_recall(),
            self.stage_instances_detected,
            self.stage_instances,
            100.0 * self.event_recall(),
            self.malicious_flagged,
            self.malicious_events,
            100.0 * self.precision(),
            self.malicious_flagged,
            self.flagged_events
        );
        let _ = writeln!(
            s,
            "false alarms: {} of {} benign events flagged ({:.2}%, {:.0} per million)",
            self.benign_flagged,
            self.benign_events,
            100.0 * ratio(self.benign_flagged, self.benign_events),
            self.false_alarms_per_million()
        );
        if self.detections_elsewhere > 0 {
            let _ = writeln!(
                s,
                "{} detections point at evidence outside this simulation and were not scored",
                self.detections_elsewhere
            );
        }
        if !self.noisiest_rules.is_empty() {
            let _ = writeln!(s, "\nnoisiest rules on benign events:");
            for (rule, n) in &self.noisiest_rules {
                let _ = writeln!(s, "  {n:>7}  {rule}");
            }
        }
        s
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A correlation's detection lists the events behind it (`event.events`); each counts as
/// flagged.
fn behind(d: &Detection) -> Vec<towerwatch_event::Place> {
    d.event
        .get("events")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Maps detection sources (paths as the hunt was given them) to truth files.
struct Resolver<'t> {
    by_name: HashMap<&'t str, Vec<&'t str>>,
    cache: HashMap<String, Option<&'t str>>,
}

impl<'t> Resolver<'t> {
    fn new(files: &'t BTreeMap<String, FileStats>) -> Self {
        let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
        for f in files.keys() {
            by_name
                .entry(f.rsplit('/').next().unwrap_or(f))
                .or_default()
                .push(f);
        }
        Resolver {
            by_name,
            cache: HashMap::new(),
        }
    }

    fn resolve(&mut self, source: &str) -> Option<&'t str> {
        if let Some(hit) = self.cache.get(source) {
            return *hit;
        }
        let norm = source.replace('\\', "/");
        let name = norm.rsplit('/').next().unwrap_or(&norm);
        let hit = self.by_name.get(name).and_then(|candidates| {
            candidates
                .iter()
                .find(|f| norm == **f || norm.ends_with(&format!("/{f}")))
                .copied()
        });
        self.cache.insert(source.to_string(), hit);
        hit
    }
}

/// Reads the inputs a hunt read from its run manifest: the paths whose format it knew.
pub fn inputs_read(manifest: &Path) -> Result<Vec<String>, EvalError> {
    let name = manifest.display().to_string();
    let bytes = std::fs::read(manifest).map_err(|e| EvalError::Io(name.clone(), e))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| EvalError::Format(name.clone(), e.to_string()))?;
    let inputs = doc["inputs"]
        .as_array()
        .ok_or_else(|| EvalError::Format(name, "no \"inputs\" list".into()))?;
    Ok(inputs
        .iter()
        .filter(|i| i["format"].as_str().is_some_and(|f| f != "unknown"))
        .filter_map(|i| i["path"].as_str().map(String::from))
        .collect())
}

/// The headline figures of reports scored at different levels, one line each.
pub fn level_lines(reports: &[Report]) -> String {
    let mut s = format!(
        "{:<14} {:>12} {:>12} {:>10} {:>14}\n",
        "from level", "stage recall", "event recall", "precision", "benign flagged"
    );
    for r in reports {
        let _ = writeln!(
            s,
            "{:<14} {:>11.1}% {:>11.1}% {:>9.1}% {:>13.2}%",
            r.min_level,
            100.0 * r.stage_recall(),
            100.0 * r.event_recall(),
            100.0 * r.precision(),
            100.0 * ratio(r.benign_flagged, r.benign_events)
        );
    }
    s
}

/// Scores detections (JSON Lines, from one or more named sources such as `hunt` and `cdr`)
/// against the truth. `read`: the inputs the detectors read, if known (otherwise every event
/// file of the simulation counts as read).
pub fn evaluate(
    truth: &Truth,
    sources: Vec<(String, Box<dyn BufRead + '_>)>,
    read: Option<&[String]>,
    min_level: &str,
) -> Result<Report, EvalError> {
    let min = min_level
        .parse::<towerwatch_event::Level>()
        .map_err(|_| EvalError::Format(min_level.into(), "not a detection level".into()))?
        .rank() as usize;
    let mut resolver = Resolver::new(&truth.files);
    let read_files: Option<BTreeSet<&str>> =
        read.map(|paths| paths.iter().filter_map(|p| resolver.resolve(p)).collect());
    let is_read = |f: &str| read_files.as_ref().is_none_or(|r| r.contains(f));

    let mut flagged: HashMap<(&str, u64), ()> = HashMap::new();
    let mut rules_on: HashMap<(&str, u64), BTreeSet<String>> = HashMap::new();
    let mut detections_total = 0;
    let mut elsewhere = 0;
    for (detections_name, detections) in sources {
        for (i, line) in detections.lines().enumerate() {
            let line = line.map_err(|e| EvalError::Io(detections_name.clone(), e))?;
            if line.trim().is_empty() {
                continue;
            }
            let d: Detection = serde_json::from_str(&line).map_err(|e| {
                EvalError::Format(format!("{detections_name}:{}", i + 1), e.to_string())
            })?;
            detections_total += 1;
            if (d.level.rank() as usize) < min {
                continue;
            }
            let behind = behind(&d);
            let behind = behind.iter().map(|p| (&p.source, p.line.or(p.record_id)));
            let own = std::iter::once((&d.source, d.position()));
            let places: Vec<_> = own.chain(behind).collect();
            let mut placed = false;
            for (source, pos) in places {
                let (Some(file), Some(pos)) = (resolver.resolve(source), pos) else {
                    continue;
                };
                placed = true;
                flagged.insert((file, pos), ());
                rules_on
                    .entry((file, pos))
                    .or_default()
                    .insert(d.rule_title.clone());
            }
            if !placed {
                elsewhere += 1;
            }
        }
    }

    let mut labelled: HashMap<(&str, u64), usize> = HashMap::new();
    for (i, l) in truth.labels.iter().enumerate() {
        labelled.insert((l.file.as_str(), l.line), i);
    }
    let kind_of = |f: &str| {
        truth
            .files
            .get(f)
            .map_or("unknown", |s| s.kind.as_str())
            .to_string()
    };

    let waves: BTreeSet<u8> = truth.labels.iter().map(|l| l.wave).collect();
    let mut stage_rows = Vec::new();
    let mut wave_rows: BTreeMap<u8, WaveRow> = waves
        .iter()
        .map(|&w| {
            (
                w,
                WaveRow {
                    wave: w,
                    stages: 0,
                    stages_detected: 0,
                    events: 0,
                    events_flagged: 0,
                },
            )
        })
        .collect();
    let (mut instances, mut instances_detected, mut mal, mut mal_flagged) = (0, 0, 0, 0);
    for (stage, name) in STAGES {
        let mut row = StageRow {
            stage,
            name,
            waves: 0,
            detected: 0,
            events: 0,
            events_flagged: 0,
            unread: BTreeMap::new(),
        };
        for &w in &waves {
            let mine: Vec<&LabelRecord> = truth
                .labels
                .iter()
                .filter(|l| l.wave == w && l.stage == stage)
                .collect();
            if mine.is_empty() {
                continue;
            }
            let hits = mine
                .iter()
                .filter(|l| flagged.contains_key(&(l.file.as_str(), l.line)))
                .count() as u64;
            for l in &mine {
                if !is_read(&l.file) {
                    *row.unread.entry(kind_of(&l.file)).or_default() += 1;
                }
            }
            row.waves += 1;
            row.events += mine.len() as u64;
            row.events_flagged += hits;
            let wr = wave_rows.get_mut(&w).expect("every wave has a row");
            wr.stages += 1;
            wr.events += mine.len() as u64;
            wr.events_flagged += hits;
            if hits > 0 {
                row.detected += 1;
                wr.stages_detected += 1;
            }
        }
        instances += row.waves;
        instances_detected += row.detected;
        mal += row.events;
        mal_flagged += row.events_flagged;
        if row.waves > 0 {
            stage_rows.push(row);
        }
    }

    let benign_events: u64 = truth
        .files
        .iter()
        .filter(|(f, s)| s.kind != "cdr" && is_read(f))
        .map(|(_, s)| s.records - s.malicious)
        .sum();
    let mut noisy: BTreeMap<String, u64> = BTreeMap::new();
    let mut benign_flagged = 0;
    for key in flagged.keys() {
        if !labelled.contains_key(key) {
            benign_flagged += 1;
            for r in &rules_on[key] {
                *noisy.entry(r.clone()).or_default() += 1;
            }
        }
    }
    let mut noisiest: Vec<(String, u64)> = noisy.into_iter().collect();
    noisiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    noisiest.truncate(10);
    let mut twins: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for t in &truth.twins {
        if !is_read(&t.file) {
            continue;
        }
        let e = twins.entry(t.category.clone()).or_default();
        e.0 += 1;
        if flagged.contains_key(&(t.file.as_str(), t.line)) {
            e.1 += 1;
        }
    }
    Ok(Report {
        min_level: LEVELS[min].to_string(),
        stages: stage_rows,
        waves: wave_rows.into_values().collect(),
        stage_instances: instances,
        stage_instances_detected: instances_detected,
        malicious_events: mal,
        malicious_flagged: mal_flagged,
        flagged_events: flagged.len() as u64,
        benign_events,
        benign_flagged,
        detections: detections_total,
        detections_elsewhere: elsewhere,
        noisiest_rules: noisiest,
        twins,
    })
}

/// How one wave's labelled events fall into the operations a hunt built.
#[derive(Debug, Clone, Serialize)]
pub struct WaveStory {
    pub wave: u8,
    pub events: u64,
    /// Operations holding at least one of the wave's labelled events.
    pub operations: usize,
    /// The operation holding most of them, and its share.
    pub best: Option<String>,
    pub best_share: f64,
    /// The share the best two hold together.
    pub best_two_share: f64,
    /// The best operation's root cause, and whether it is a labelled step of the wave's entry
    /// (stage 1: the web shell written or run).
    pub root_cause: String,
    pub root_is_entry: bool,
    /// Minutes between the best operation's start and the wave's first labelled event.
    pub start_minutes: Option<i64>,
    /// The share of the best operation's events that are not the campaign's.
    pub benign_share: f64,
    /// The wave's labelled records in database audit logs, and the share the best operation
    /// holds (the CDR theft inside the story, not beside it).
    pub db_events: u64,
    pub db_share: f64,
}

/// Operations (`operations.json` of `hunt --report`) against the truth.
#[derive(Debug, Clone, Serialize)]
pub struct StoryReport {
    pub waves: Vec<WaveStory>,
    pub operations: usize,
    /// Operations holding no labelled event.
    pub false_operations: usize,
    pub days: f64,
}

impl StoryReport {
    pub fn false_per_week(&self) -> f64 {
        self.false_operations as f64 * 7.0 / self.days.max(1e-9)
    }

    pub fn table(&self) -> String {
        let mut s = String::from(
            "wave  labelled  operations  best       holds  best two  benign  start   DB items held  root cause is the entry\n",
        );
        for w in &self.waves {
            let _ = writeln!(
                s,
                "{:<5} {:>8}  {:>10}  {:<9} {:>5.1}%  {:>7.1}%  {:>5.1}%  {:>+5}m  {:>4} {:>5.1}%  {}",
                w.wave,
                w.events,
                w.operations,
                w.best.as_deref().unwrap_or("-"),
                100.0 * w.best_share,
                100.0 * w.best_two_share,
                100.0 * w.benign_share,
                w.start_minutes.unwrap_or(0),
                w.db_events,
                100.0 * w.db_share,
                if w.root_is_entry { "yes" } else { "NO" }
            );
        }
        for w in &self.waves {
            let what: String = w.root_cause.chars().take(120).collect();
            let _ = writeln!(s, "  wave {} root cause: {what}", w.wave);
        }
        let _ = writeln!(
            s,
            "{} operations, {} holding no campaign event: {:.2} false operations per simulated week ({:.0} days)",
            self.operations,
            self.false_operations,
            self.false_per_week(),
            self.days
        );
        s
    }
}

/// Scores the operations in `operations` (an `operations.json`) against the truth of the
/// simulation in `sim_dir`: per wave, how many operations its labelled events fall into and
/// how much of them the best one (and two) hold; and the operations holding none.
pub fn evaluate_operations(
    sim_dir: &Path,
    truth: &Truth,
    operations: &Path,
) -> Result<StoryReport, EvalError> {
    let name = operations.display().to_string();
    let bytes = std::fs::read(operations).map_err(|e| EvalError::Io(name.clone(), e))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| EvalError::Format(name.clone(), e.to_string()))?;
    let cname = sim_dir.join("truth/campaign.json");
    let campaign: serde_json::Value = std::fs::read(&cname)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| EvalError::Format(cname.display().to_string(), "unreadable".into()))?;
    let days = campaign["config"]["days"].as_f64().unwrap_or(0.0);
    let wave_of: HashMap<(&str, u64), u8> = truth
        .labels
        .iter()
        .map(|l| ((l.file.as_str(), l.line), l.wave))
        .collect();
    let mut per_wave: BTreeMap<u8, u64> = BTreeMap::new();
    let is_db = |file: &str| truth.files.get(file).is_some_and(|f| f.kind == "db");
    let mut db_per_wave: BTreeMap<u8, u64> = BTreeMap::new();
    for l in &truth.labels {
        *per_wave.entry(l.wave).or_default() += 1;
        if is_db(&l.file) {
            *db_per_wave.entry(l.wave).or_default() += 1;
        }
    }
    // (wave, op) → database records held.
    let mut db_held: HashMap<(u8, String), u64> = HashMap::new();
    let ops = doc["operations"]
        .as_array()
        .ok_or_else(|| EvalError::Format(name.clone(), "no \"operations\" list".into()))?;
    let mut resolver = Resolver::new(&truth.files);
    let label_of: HashMap<(&str, u64), &LabelRecord> = truth
        .labels
        .iter()
        .map(|l| ((l.file.as_str(), l.line), l))
        .collect();
    // (wave → op → labelled events held)
    let mut held: BTreeMap<u8, BTreeMap<String, u64>> = BTreeMap::new();
    let mut false_operations = 0;
    // Per operation: what the wave table needs of it.
    struct About {
        events: u64,
        benign: u64,
        root_label: Option<(u8, u8)>,
        root_what: String,
        start: String,
    }
    let mut about: HashMap<String, About> = HashMap::new();
    for op in ops {
        let id = op["id"].as_str().unwrap_or("?").to_string();
        let mut any = false;
        let (mut total, mut benign) = (0u64, 0u64);
        for e in op["events"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            total += 1;
            let Some(file) = e["source"].as_str().and_then(|s| resolver.resolve(s)) else {
                benign += 1;
                continue;
            };
            let Some(line) = e["line"].as_u64().or_else(|| e["record_id"].as_u64()) else {
                benign += 1;
                continue;
            };
            if let Some(&w) = wave_of.get(&(file, line)) {
                any = true;
                *held.entry(w).or_default().entry(id.clone()).or_default() += 1;
                if is_db(file) {
                    *db_held.entry((w, id.clone())).or_default() += 1;
                }
            } else {
                benign += 1;
            }
        }
        if !any {
            false_operations += 1;
        }
        let rc = &op["root_cause"];
        let root_label = rc["event"]["source"]
            .as_str()
            .and_then(|s| resolver.resolve(s))
            .and_then(|f| {
                let pos = rc["event"]["line"]
                    .as_u64()
                    .or_else(|| rc["event"]["record_id"].as_u64())?;
                label_of.get(&(f, pos)).map(|l| (l.wave, l.stage))
            });
        let what = format!(
            "{} on {}: {}",
            rc["kind"].as_str().unwrap_or(""),
            rc["host"].as_str().unwrap_or(""),
            rc["what"].as_str().unwrap_or("")
        );
        about.insert(
            id,
            About {
                events: total,
                benign,
                root_label,
                root_what: what,
                start: op["start"].as_str().unwrap_or("").to_string(),
            },
        );
    }
    // Each wave's first labelled event.
    let mut first_of: BTreeMap<u8, &str> = BTreeMap::new();
    for l in &truth.labels {
        let e = first_of.entry(l.wave).or_insert(l.time.as_str());
        if !l.time.is_empty() && l.time.as_str() < *e {
            *e = l.time.as_str();
        }
    }
    let waves = per_wave
        .iter()
        .map(|(&wave, &events)| {
            let mut counts: Vec<(&String, &u64)> = held
                .get(&wave)
                .map(|m| m.iter().collect())
                .unwrap_or_default();
            counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let top = |k: usize| counts.iter().take(k).map(|(_, c)| **c).sum::<u64>();
            let best = counts.first().map(|(id, _)| (*id).clone());
            let info = best.as_ref().and_then(|b| about.get(b));
            let db_held_best = best
                .as_ref()
                .and_then(|b| db_held.get(&(wave, b.clone())))
                .copied()
                .unwrap_or(0);
            let minutes = info.and_then(|i| {
                let a = i.start.parse::<jiff::Timestamp>().ok()?;
                let b = first_of.get(&wave)?.parse::<jiff::Timestamp>().ok()?;
                Some((a.as_second() - b.as_second()) / 60)
            });
            WaveStory {
                wave,
                events,
                operations: counts.len(),
                best,
                best_share: ratio(top(1), events),
                best_two_share: ratio(top(2), events),
                root_cause: info.map(|i| i.root_what.clone()).unwrap_or_default(),
                root_is_entry: info.is_some_and(|i| i.root_label == Some((wave, 1))),
                start_minutes: minutes,
                benign_share: info.map_or(0.0, |i| ratio(i.benign, i.events)),
                db_events: db_per_wave.get(&wave).copied().unwrap_or(0),
                db_share: ratio(db_held_best, db_per_wave.get(&wave).copied().unwrap_or(0)),
            }
        })
        .collect();
    Ok(StoryReport {
        waves,
        operations: ops.len(),
        false_operations,
        days,
    })
}
