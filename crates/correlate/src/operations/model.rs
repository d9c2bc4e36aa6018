//! What the analysis gives: operations, waves, leads and their parts, and what it is given.

use serde::{Deserialize, Serialize};

use crate::Label;
use towerwatch_event::Locator;

use crate::attack::Candidate;
use crate::links::Node;

/// What the caller knows of each rule a node's `hits` index.
#[derive(Debug, Clone)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    /// 0 informational, 1 low, 2 medium, 3 high, 4 critical.
    pub level: u8,
    pub tags: Vec<String>,
}

impl RuleInfo {
    /// A rule (or correlation, or finding) by its id, title, level and tags.
    pub fn new(id: &str, title: &str, level: towerwatch_event::Level, tags: &[String]) -> Self {
        RuleInfo {
            id: id.to_string(),
            title: title.to_string(),
            level: level.rank(),
            tags: tags.to_vec(),
        }
    }
}

/// A host's role from an asset inventory (`host,ip,role` CSV).
#[derive(Debug, Clone)]
pub struct Asset {
    pub host: String,
    pub ip: String,
    pub role: String,
}

/// Roles whose compromise is the loss itself, or the way to it.
pub fn is_crown_jewel(role: &str) -> bool {
    let r = role.to_ascii_lowercase();
    [
        "cdr",
        "hlr",
        "hss",
        "lawful",
        "mediation",
        "billing",
        "domain_controller",
        "msc",
    ]
    .iter()
    .any(|k| r.contains(k))
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Detections at this level and above seed operations (lower ones only add context).
    pub seed_level: u8,
    /// Candidates scoring below this are leads, not operations.
    pub min_score: u32,
    /// Gap between operations that starts a new wave.
    pub wave_gap_hours: i64,
    /// Timeline entries kept per operation (all member events are always listed).
    pub timeline_cap: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed_level: 1,
            min_score: 40,
            wave_gap_hours: 12,
            timeline_cap: 400,
        }
    }
}

/// A record, by file and record id or line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventRef {
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl EventRef {
    pub(crate) fn of(n: &Node) -> EventRef {
        let (record_id, line) = match n.locator {
            Locator::Record(r) => (Some(r), None),
            Locator::Line(l) => (None, Some(l)),
        };
        EventRef {
            source: n.source.to_string(),
            record_id,
            line,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootCause {
    /// `web shell`, or `first detection` when no web-server child starts the story.
    pub kind: Label,
    pub host: String,
    pub time: String,
    pub what: String,
    pub event: EventRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInOp {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub crown_jewel: bool,
    pub first: String,
    pub events: usize,
    pub detections: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TacticStep {
    pub tactic: String,
    pub name: String,
    pub first: String,
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RuleCount {
    pub title: String,
    pub id: String,
    pub level: Label,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub first: String,
    pub count: usize,
    pub how: Vec<Label>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    pub host: String,
    pub time: String,
    pub id: String,
    pub parent_id: String,
    pub image: String,
    pub parent_image: String,
    pub command_line: String,
    pub user: String,
    pub flagged: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub time: String,
    pub host: String,
    pub what: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    pub level: Label,
    pub tactics: Vec<String>,
    pub event: EventRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    /// The wave it belongs to; none for a lesser operation outside every wave.
    pub wave: Option<usize>,
    pub score: u32,
    pub severity: Label,
    pub start: String,
    pub end: String,
    pub root_cause: RootCause,
    pub hosts: Vec<HostInOp>,
    pub accounts: Vec<String>,
    pub tactics: Vec<TacticStep>,
    pub techniques: Vec<String>,
    pub rules: Vec<RuleCount>,
    pub detections: usize,
    pub movement: Vec<Edge>,
    /// Outside addresses the story used.
    pub remote_addresses: Vec<String>,
    pub processes: Vec<Process>,
    pub timeline: Vec<Entry>,
    pub timeline_truncated: usize,
    pub actor: Vec<Candidate>,
    /// Every event of the story.
    pub events: Vec<EventRef>,
    #[serde(skip)]
    pub start_us: i64,
    #[serde(skip)]
    pub end_us: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Wave {
    pub wave: usize,
    pub start: String,
    pub end: String,
    pub operations: Vec<String>,
    pub hosts: Vec<String>,
    pub techniques: Vec<String>,
    pub actor: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Stats {
    pub events_linked: usize,
    pub stories: usize,
    pub candidates: usize,
    pub leads: usize,
    pub operations: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {
    /// Routine detections given back because their operation stands without them.
    #[serde(skip)]
    pub restored: Vec<(EventRef, u32)>,
    /// Detections in stories that are no operation and hold the estate's routine: the
    /// routine's context (the PsExec service an administrator's routine PsExec installed),
    /// with the routine's reason. (event, rule, reason)
    #[serde(skip)]
    pub context: Vec<(EventRef, u32, String)>,
    pub attack_version: String,
    pub operations: Vec<Operation>,
    pub waves: Vec<Wave>,
    /// Over all operations: the campaign's suspected actor.
    pub actor: Vec<Candidate>,
    /// Below-threshold candidates: their score and first detection, for triage.
    pub leads: Vec<Lead>,
    pub stats: Stats,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lead {
    pub score: u32,
    pub start: String,
    pub hosts: Vec<String>,
    pub rules: Vec<String>,
}

/// Leads described in the analysis (all are counted).
pub(crate) const LEADS_KEPT: usize = 50;

pub const LEVEL_NAMES: [&str; 5] = ["informational", "low", "medium", "high", "critical"];
