//! From linked events to *operations* (one attack story each) and *waves* (the campaign coming
//! back): every connected story that holds a detection at or above the seeding level becomes a
//! candidate; its score weighs the rules it tripped, the ATT&CK tactics it spans, the hosts it
//! crossed, a web shell at its root and the crown-jewel assets it touched. Candidates under
//! the reporting score are kept as *leads*, counted but not reported as operations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use towerwatch_event::Locator;

use crate::attack::{Attack, Candidate};
use crate::graph::Graph;
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
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

#[derive(Debug, Clone, Serialize)]
pub struct RootCause {
    /// `web shell`, or `first detection` when no web-server child starts the story.
    pub kind: &'static str,
    pub host: String,
    pub time: String,
    pub what: String,
    pub event: EventRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostInOp {
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub crown_jewel: bool,
    pub first: String,
    pub events: usize,
    pub detections: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TacticStep {
    pub tactic: String,
    pub name: String,
    pub first: String,
    pub techniques: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub title: String,
    pub id: String,
    pub level: &'static str,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub first: String,
    pub count: usize,
    pub how: Vec<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub time: String,
    pub host: String,
    pub what: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    pub level: &'static str,
    pub tactics: Vec<String>,
    pub event: EventRef,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub id: String,
    /// The wave it belongs to; none for a lesser operation outside every wave.
    pub wave: Option<usize>,
    pub score: u32,
    pub severity: &'static str,
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

#[derive(Debug, Clone, Serialize)]
pub struct Wave {
    pub wave: usize,
    pub start: String,
    pub end: String,
    pub operations: Vec<String>,
    pub hosts: Vec<String>,
    pub techniques: Vec<String>,
    pub actor: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Stats {
    pub events_linked: usize,
    pub stories: usize,
    pub candidates: usize,
    pub leads: usize,
    pub operations: usize,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct Lead {
    pub score: u32,
    pub start: String,
    pub hosts: Vec<String>,
    pub rules: Vec<String>,
}

/// Leads described in the analysis (all are counted).
pub(crate) const LEADS_KEPT: usize = 50;

/// Operations scoring this much (severity high and above) make waves.
const WAVE_SCORE: u32 = 90;

pub const LEVEL_NAMES: [&str; 5] = ["informational", "low", "medium", "high", "critical"];

/// How long before its entry a story's events still belong to it (the exploit attempts
/// before the shell ran).
const CONTEXT_BEFORE: i64 = 3_600_000_000;
/// A web-shell request and the command it ran (IIS logs a request when it completes).
const JOIN_WINDOW: i64 = 60_000_000;

/// What a tactic says of intent: administrators run commands, look around and log on to other
/// hosts every day; they do not dump credentials, beacon out, stage archives or exfiltrate.
fn tactic_weight(tactic: &str) -> u32 {
    match tactic {
        "initial-access" | "credential-access" | "command-and-control" | "exfiltration" => 12,
        "collection" => 8,
        "defense-evasion" | "persistence" => 5,
        "privilege-escalation" | "lateral-movement" => 3,
        _ => 1,
    }
}

fn level_weight(level: u8) -> u32 {
    [0, 1, 4, 10, 20][level.min(4) as usize]
}

fn iso(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Tactics (`credential-access`) and techniques (`T1003.001`) in a rule's tags.
pub fn attack_of(tags: &[String]) -> (Vec<String>, Vec<String>) {
    let attack = Attack::get();
    let (mut tactics, mut techniques) = (Vec::new(), Vec::new());
    for t in tags {
        let Some(rest) = t.strip_prefix("attack.") else {
            continue;
        };
        if rest.len() > 1 && rest.starts_with('t') && rest[1..2].chars().all(|c| c.is_ascii_digit())
        {
            techniques.push(rest.to_ascii_uppercase());
        } else {
            let short = rest.replace('_', "-");
            if attack.tactic_rank(&short).is_some() {
                tactics.push(short);
            }
        }
    }
    // Techniques imply their tactics when the rule names none.
    if tactics.is_empty() {
        for id in &techniques {
            if let Some(t) = attack.technique(id) {
                tactics.extend(t.tactics.iter().cloned());
            }
        }
    }
    tactics.sort();
    tactics.dedup();
    (tactics, techniques)
}

/// What one story is, decided story by story the way [`analyse`] decides it over a whole
/// graph: an operation, a lead with its score, or no candidate (no seeding detection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Operation,
    Lead(u32),
    Quiet,
}

/// Story-at-a-time triage for the bounded linker: the routine's demotion, seeding and the
/// quick score of [`analyse`], and the routine's context of a story that is no operation.
pub(crate) struct Triage<'a> {
    rules: &'a [RuleInfo],
    opts: &'a Options,
    routine: Option<&'a crate::routine::Routine>,
    roles: HashMap<String, &'a str>,
    rule_attack: Vec<(Vec<String>, Vec<String>)>,
    known: Vec<bool>,
}

/// The routine's context of one story: (node position, rule, reason).
pub(crate) type StoryContext = Vec<(usize, u32, String)>;

impl<'a> Triage<'a> {
    pub(crate) fn new(
        rules: &'a [RuleInfo],
        assets: &'a [Asset],
        opts: &'a Options,
        routine: Option<&'a crate::routine::Routine>,
    ) -> Self {
        Triage {
            rules,
            opts,
            routine,
            roles: roles_of(assets),
            rule_attack: vec![Default::default(); rules.len()],
            known: vec![false; rules.len()],
        }
    }

    /// One whole story, its nodes in time order: what it is, and (unless an operation) the
    /// routine's context for its detections.
    pub(crate) fn story(&mut self, nodes: &[Node]) -> (Verdict, StoryContext) {
        // The routine's detections seed and score nothing.
        let mut demoted: Vec<(usize, Vec<u32>)> = Vec::new();
        let mut hits: Vec<Vec<u32>> = nodes.iter().map(|n| n.hits.clone()).collect();
        if let Some(r) = self.routine {
            for (i, n) in nodes.iter().enumerate() {
                let (keep, aside): (Vec<u32>, Vec<u32>) = n
                    .hits
                    .iter()
                    .partition(|&&h| r.verdict_of(h, n.actor, n.time).is_none());
                if !aside.is_empty() {
                    hits[i] = keep;
                    demoted.push((i, aside));
                }
            }
        }
        for &h in hits
            .iter()
            .flatten()
            .chain(demoted.iter().flat_map(|d| &d.1))
        {
            if let Some(k) = self.known.get_mut(h as usize).filter(|k| !**k) {
                *k = true;
                self.rule_attack[h as usize] = attack_of(&self.rules[h as usize].tags);
            }
        }
        let seeded = hits.iter().flatten().any(|&h| {
            self.rules
                .get(h as usize)
                .is_some_and(|r| r.level >= self.opts.seed_level)
        });
        let verdict = if !seeded {
            Verdict::Quiet
        } else {
            let scored: Vec<Node> = nodes
                .iter()
                .zip(&hits)
                .map(|(n, h)| Node {
                    hits: h.clone(),
                    ..n.clone()
                })
                .collect();
            let list: Vec<usize> = (0..nodes.len()).collect();
            let score = quick_score(&scored, &list, self.rules, &self.rule_attack, &self.roles);
            if score < self.opts.min_score {
                Verdict::Lead(score)
            } else {
                Verdict::Operation
            }
        };
        let mut context = Vec::new();
        if let (Some(r), false) = (self.routine, verdict == Verdict::Operation) {
            let why = demoted.iter().find_map(|(i, aside)| {
                let n = &nodes[*i];
                aside.iter().find_map(|&h| r.verdict_of(h, n.actor, n.time))
            });
            if let Some(why) = why {
                for (i, h) in hits.iter().enumerate() {
                    for &rule in h {
                        context.push((
                            i,
                            rule,
                            format!("in a story of the estate's routine: {why}"),
                        ));
                    }
                }
            }
        }
        (verdict, context)
    }
}

fn roles_of(assets: &[Asset]) -> HashMap<String, &str> {
    assets
        .iter()
        .map(|a| {
            (
                crate::links::short_host(&a.host).to_string(),
                a.role.as_str(),
            )
        })
        .collect()
}

/// Builds operations and waves from a linked graph.
pub fn analyse(
    graph: &mut Graph,
    rules: &[RuleInfo],
    assets: &[Asset],
    opts: &Options,
    routine: Option<&crate::routine::Routine>,
) -> Analysis {
    let attack = Attack::get();
    // The estate's routine seeds and scores nothing: set aside, given back to stories that
    // stand without it.
    let mut demoted: HashMap<usize, Vec<u32>> = HashMap::new();
    if let Some(r) = routine {
        for (i, node) in graph.nodes.iter_mut().enumerate() {
            if node.hits.is_empty() {
                continue;
            }
            let (keep, set_aside): (Vec<u32>, Vec<u32>) = node
                .hits
                .iter()
                .partition(|&&h| r.verdict_of(h, node.actor, node.time).is_none());
            if !set_aside.is_empty() {
                node.hits = keep;
                demoted.insert(i, set_aside);
            }
        }
    }
    let roles = roles_of(assets);
    let n = graph.nodes.len();
    let roots: Vec<usize> = (0..n).map(|i| graph.components.root(i)).collect();
    let (events_linked, stories) = match &graph.totals {
        Some(t) => (t.events, t.stories),
        None => (
            n,
            roots.iter().enumerate().filter(|(i, r)| *i == **r).count(),
        ),
    };
    // Only stories with a seeding detection are looked at further (routine ones kept aside
    // count for the story they belong to, once it stands).
    let seeds: std::collections::BTreeSet<usize> = (0..n)
        .filter(|&i| {
            graph.nodes[i].hits.iter().any(|&h| {
                rules
                    .get(h as usize)
                    .is_some_and(|r| r.level >= opts.seed_level)
            })
        })
        .map(|i| roots[i])
        .collect();
    let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, r) in roots.iter().enumerate() {
        if seeds.contains(r) {
            members.entry(*r).or_default().push(i);
        }
    }
    // Tactics and techniques of the rules that matched anything (most never do).
    let mut used = vec![false; rules.len()];
    for &h in graph
        .nodes
        .iter()
        .flat_map(|n| n.hits.iter())
        .chain(demoted.values().flatten())
    {
        if let Some(u) = used.get_mut(h as usize) {
            *u = true;
        }
    }
    let rule_attack: Vec<(Vec<String>, Vec<String>)> = rules
        .iter()
        .zip(&used)
        .map(|(r, &u)| {
            if u {
                attack_of(&r.tags)
            } else {
                Default::default()
            }
        })
        .collect();
    let mut stats = Stats {
        events_linked,
        stories,
        ..Stats::default()
    };
    let mut steps_by_root: HashMap<usize, Vec<usize>> = HashMap::new();
    for (k, s) in graph.steps.iter().enumerate() {
        let r = graph.components.root(s.arrival);
        steps_by_root.entry(r).or_default().push(k);
    }
    let mut ops = Vec::new();
    let mut lead_roots: Vec<(u32, usize)> = Vec::new();
    let mut reported: Vec<usize> = Vec::new();
    // Scoring every candidate is the bulk of the work on a large hunt: in parallel.
    let scored: Vec<(usize, u32)> = {
        use rayon::prelude::*;
        let list: Vec<(&usize, &Vec<usize>)> = members.iter().collect();
        list.par_iter()
            .map(|(root, l)| {
                (
                    **root,
                    quick_score(&graph.nodes, l, rules, &rule_attack, &roles),
                )
            })
            .collect()
    };
    for (root, score) in scored {
        let root = &root;
        stats.candidates += 1;
        // Scored cheaply above; the whole story only for what is reported.
        if score < opts.min_score {
            stats.leads += 1;
            lead_roots.push((score, *root));
            continue;
        }
        reported.push(*root);
    }
    // Routine detections of the reported stories count with them again (they are part of an
    // intrusion that stands without them), though never as its entry.
    let mut restored: Vec<(EventRef, u32)> = Vec::new();
    let mut context: Vec<(EventRef, u32, String)> = Vec::new();
    if !demoted.is_empty() {
        let reported_set: std::collections::HashSet<usize> = reported.iter().copied().collect();
        // A story that is no operation and holds the estate's routine is that routine's
        // work: its other detections are context, with the routine's reason.
        if let Some(r) = routine {
            let mut why_by_root: BTreeMap<usize, String> = BTreeMap::new();
            let mut routine_nodes: Vec<(&usize, &Vec<u32>)> = demoted.iter().collect();
            routine_nodes.sort();
            for (&i, hits) in routine_nodes {
                if reported_set.contains(&roots[i]) || why_by_root.contains_key(&roots[i]) {
                    continue;
                }
                let n = &graph.nodes[i];
                if let Some(why) = hits.iter().find_map(|&h| r.verdict_of(h, n.actor, n.time)) {
                    why_by_root.insert(roots[i], why);
                }
            }
            if !why_by_root.is_empty() {
                for (i, n) in graph.nodes.iter().enumerate() {
                    if let Some(why) = why_by_root.get(&roots[i]) {
                        for &h in &n.hits {
                            context.push((
                                EventRef::of(n),
                                h,
                                format!("in a story of the estate's routine: {why}"),
                            ));
                        }
                    }
                }
            }
        }
        demoted.retain(|i, _| reported_set.contains(&roots[*i]));
        for (&i, hits) in &demoted {
            graph.nodes[i].hits.extend(hits.iter().copied());
        }
    }
    let nodes = &graph.nodes;
    {
        use rayon::prelude::*;
        let steps_of = |r: &usize| steps_by_root.get(r).map(Vec::as_slice).unwrap_or(&[]);
        let built: Vec<(Operation, Vec<usize>)> = reported
            .par_iter()
            .map(|r| {
                let (mut op, kept) = operation(
                    nodes,
                    &members[r],
                    steps_of(r),
                    &graph.steps,
                    rules,
                    &rule_attack,
                    &roles,
                    opts,
                    true,
                    &demoted,
                );
                op.actor = attack.attribute(&op.techniques.iter().cloned().collect(), 3);
                (op, kept)
            })
            .collect();
        for (op, kept) in built {
            for i in kept {
                for &h in demoted.get(&i).into_iter().flatten() {
                    restored.push((EventRef::of(&nodes[i]), h));
                }
            }
            ops.push(op);
        }
    }
    ops.sort_by_key(|o| (o.start_us, o.end_us));
    for (k, op) in ops.iter_mut().enumerate() {
        op.id = format!("OP-{:03}", k + 1);
    }
    // Waves: the serious operations (high and critical) whose spans come within the gap of
    // each other; a lesser operation joins the wave whose span it falls in, else none.
    let gap = opts.wave_gap_hours * 3_600_000_000;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for op in ops.iter().filter(|o| o.score >= WAVE_SCORE) {
        match spans.last_mut() {
            Some(last) if op.start_us <= last.1.saturating_add(gap) => {
                last.1 = last.1.max(op.end_us)
            }
            _ => spans.push((op.start_us, op.end_us)),
        }
    }
    let mut waves: Vec<Wave> = spans
        .iter()
        .enumerate()
        .map(|(k, (a, b))| Wave {
            wave: k + 1,
            start: iso(*a),
            end: iso(*b),
            operations: Vec::new(),
            hosts: Vec::new(),
            techniques: Vec::new(),
            actor: Vec::new(),
        })
        .collect();
    let mut wave_sets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); waves.len()];
    for op in ops.iter_mut() {
        let Some(k) = spans
            .iter()
            .position(|(a, b)| op.start_us <= *b && op.end_us >= *a)
        else {
            continue;
        };
        let w = &mut waves[k];
        op.wave = Some(w.wave);
        w.operations.push(op.id.clone());
        for h in &op.hosts {
            if !w.hosts.contains(&h.host) {
                w.hosts.push(h.host.clone());
            }
        }
        if op.score >= WAVE_SCORE {
            wave_sets[k].extend(op.techniques.iter().cloned());
        }
    }
    let mut all = BTreeSet::new();
    for (w, set) in waves.iter_mut().zip(&wave_sets) {
        w.techniques = set.iter().cloned().collect();
        w.actor = attack.attribute(set, 5);
        all.extend(set.iter().cloned());
    }
    stats.operations = ops.len();
    // Stories triaged before the graph was built count here, and their context is kept.
    if let Some(t) = &graph.totals {
        stats.candidates = t.candidates;
        stats.leads = t.leads;
    }
    context.append(&mut graph.context);
    // The strongest leads, described.
    lead_roots.sort_by_key(|(score, root)| (std::cmp::Reverse(*score), *root));
    let leads = lead_roots
        .iter()
        .take(LEADS_KEPT)
        .map(|&(score, root)| {
            let (op, _) = operation(
                nodes,
                &members[&root],
                &[],
                &graph.steps,
                rules,
                &rule_attack,
                &roles,
                opts,
                false,
                &HashMap::new(),
            );
            Lead {
                score,
                start: op.start,
                hosts: op.hosts.into_iter().map(|h| h.host).collect(),
                rules: op.rules.into_iter().map(|r| r.title).collect(),
            }
        })
        .collect();
    Analysis {
        restored,
        context,
        attack_version: attack.attack_version.clone(),
        actor: attack.attribute(&all, 5),
        operations: ops,
        waves,
        leads,
        stats,
    }
}

/// The distinct rules' weight, capped so that a noisy story cannot outweigh its breadth.
fn rules_score(distinct: impl Iterator<Item = u32>, rules: &[RuleInfo]) -> u32 {
    distinct
        .map(|r| level_weight(rules[r as usize].level))
        .sum::<u32>()
        .min(120)
}

/// An operation's score: what it tripped, the tactics it spans, how far it spread, a web
/// shell at its root, the crown jewels it reached.
fn story_score<'a>(
    rule_score: u32,
    tactics: impl Iterator<Item = &'a str>,
    internal_hosts: usize,
    jewels: usize,
    web_root: bool,
    max_level: u8,
) -> u32 {
    rule_score
        + tactics.map(tactic_weight).sum::<u32>()
        + 5 * internal_hosts.saturating_sub(1).min(10) as u32
        + if web_root { 15 } else { 0 }
        + 10 * jewels.min(3) as u32
        + if max_level >= 4 { 10 } else { 0 }
}

/// [`story_score`] without building the story.
fn quick_score(
    nodes: &[Node],
    list: &[usize],
    rules: &[RuleInfo],
    rule_attack: &[(Vec<String>, Vec<String>)],
    roles: &HashMap<String, &str>,
) -> u32 {
    let mut hit: Vec<u32> = Vec::new();
    let mut hosts: Vec<&str> = Vec::new();
    let mut web_root = false;
    let mut max_level = 0;
    for &i in list {
        let n = &nodes[i];
        web_root |= n.web_child;
        if !hosts.contains(&&*n.host) {
            hosts.push(&n.host);
        }
        for &r in &n.hits {
            if !hit.contains(&r) {
                hit.push(r);
                max_level = max_level.max(rules[r as usize].level);
            }
        }
    }
    let mut tactics: Vec<&str> = hit
        .iter()
        .flat_map(|&r| rule_attack[r as usize].0.iter().map(String::as_str))
        .collect();
    tactics.sort_unstable();
    tactics.dedup();
    let internal = hosts
        .iter()
        .filter(|h| h.parse::<std::net::IpAddr>().is_err() || crate::links::is_private(h))
        .count();
    let jewels = hosts
        .iter()
        .filter(|h| roles.get(**h).is_some_and(|r| is_crown_jewel(r)))
        .count();
    story_score(
        rules_score(hit.iter().copied(), rules),
        tactics.into_iter(),
        internal,
        jewels,
        web_root,
        max_level,
    )
}

/// The request a web shell's story starts with: the earliest request, on the host of the
/// shell's first command and within the hour before it, from the client whose flagged
/// request (the web-shell join's) came just before that command: the exploit or the upload,
/// before any command ran.
fn entry_request(nodes: &[Node], list: &[usize], command: usize) -> Option<usize> {
    let c = &nodes[command];
    let client = |n: &Node| {
        n.keys.iter().find_map(|k| match k {
            crate::links::Key::Remote(r) => Some(r.clone()),
            _ => None,
        })
    };
    let requests = || {
        list.iter()
            .copied()
            .filter(|&i| nodes[i].web_request && nodes[i].host == c.host)
    };
    let joined = requests()
        .filter(|&i| !nodes[i].hits.is_empty() && (nodes[i].time - c.time).abs() <= JOIN_WINDOW)
        .min_by_key(|&i| (nodes[i].time - c.time).abs())?;
    let who = client(&nodes[joined])?;
    requests()
        .filter(|&i| {
            nodes[i].time >= c.time - CONTEXT_BEFORE && nodes[i].time <= nodes[joined].time
        })
        .find(|&i| client(&nodes[i]).as_ref() == Some(&who))
}

#[allow(clippy::too_many_arguments)]
fn operation(
    nodes: &[Node],
    list: &[usize],
    step_ids: &[usize],
    steps: &[crate::graph::Step],
    rules: &[RuleInfo],
    rule_attack: &[(Vec<String>, Vec<String>)],
    roles: &HashMap<String, &str>,
    opts: &Options,
    full: bool,
    routine: &HashMap<usize, Vec<u32>>,
) -> (Operation, Vec<usize>) {
    let attack = Attack::get();
    let mut list: Vec<usize> = list.to_vec();
    list.sort_by_key(|&i| nodes[i].time);
    // The entry: the first web-server child with a detection, else the first detection at
    // medium or above, else the first detection at all.
    let level_of = |i: usize| {
        let set_aside = routine.get(&i);
        nodes[i]
            .hits
            .iter()
            .filter(|h| set_aside.is_none_or(|r| !r.contains(h)))
            .filter_map(|&h| rules.get(h as usize).map(|r| r.level))
            .max()
    };
    let seeding = |i: usize| level_of(i).is_some_and(|l| l >= opts.seed_level);
    let first_command = list
        .iter()
        .copied()
        .find(|&i| nodes[i].web_child && seeding(i));
    let root_i = first_command
        .and_then(|c| entry_request(nodes, &list, c))
        .or(first_command)
        .or_else(|| {
            list.iter()
                .copied()
                .find(|&i| level_of(i).is_some_and(|l| l >= 2))
        })
        .or_else(|| list.iter().copied().find(|&i| level_of(i).is_some()))
        .unwrap_or(list[0]);
    // What linked in before the entry is context (an administrator's session, a deployment),
    // not the story's start.
    let from = nodes[root_i].time - CONTEXT_BEFORE;
    list.retain(|&i| nodes[i].time >= from);
    let (start_us, end_us) = (
        nodes[list[0]].time,
        nodes[*list.last().unwrap_or(&list[0])].time,
    );
    // Hosts, rules, tactics.
    let mut hosts: BTreeMap<String, (i64, usize, usize)> = BTreeMap::new();
    let mut rule_counts: BTreeMap<u32, usize> = BTreeMap::new();
    let mut tactic_first: BTreeMap<String, (i64, BTreeSet<String>)> = BTreeMap::new();
    let mut techniques = BTreeSet::new();
    let mut remote = BTreeSet::new();
    let mut accounts = BTreeSet::new();
    let mut processes: Vec<Process> = Vec::new();
    let mut timeline = Vec::new();
    let mut detections = 0;
    let mut max_level = 0u8;
    // One process seen by Sysmon and by 4688 is one row: (host, image, command line, second).
    let mut seen_process: HashMap<(&str, String, &str, i64), usize> = HashMap::new();
    let mut timeline_index: HashMap<(&str, String, i64), usize> = HashMap::new();
    for &i in &list {
        let nd = &nodes[i];
        let h = hosts.entry(nd.host.to_string()).or_insert((nd.time, 0, 0));
        h.1 += 1;
        for k in nd.keys.iter().filter(|_| full) {
            match k {
                crate::links::Key::Remote(r) => {
                    remote.insert(r.to_string());
                }
                crate::links::Key::Account(a) | crate::links::Key::AccountCreated(a) => {
                    accounts.insert(a.to_string());
                }
                _ => {}
            }
        }
        let mut entry_tactics = BTreeSet::new();
        for &r in &nd.hits {
            *rule_counts.entry(r).or_default() += 1;
            let (tac, tech) = &rule_attack[r as usize];
            for t in tac {
                let e = tactic_first
                    .entry(t.clone())
                    .or_insert((nd.time, BTreeSet::new()));
                e.1.extend(
                    tech.iter()
                        .filter(|id| {
                            attack
                                .technique(id)
                                .is_none_or(|x| x.tactics.iter().any(|tt| tt == t))
                        })
                        .cloned(),
                );
                entry_tactics.insert(t.clone());
            }
            techniques.extend(tech.iter().cloned());
            max_level = max_level.max(rules[r as usize].level);
        }
        if !nd.hits.is_empty() {
            detections += 1;
            h.2 += 1;
        }
        let flagged = !nd.hits.is_empty();
        if !full {
            continue;
        }
        let process_key = nd.process.as_ref().map(|p| {
            (
                &*nd.host,
                p.image().to_ascii_lowercase(),
                p.command_line(),
                nd.time / 1_000_000,
            )
        });
        if let (Some(p), Some(key)) = (&nd.process, process_key) {
            let row = Process {
                host: nd.host.to_string(),
                time: iso(nd.time),
                id: p.id().to_string(),
                parent_id: p.parent_id().to_string(),
                image: p.image().to_string(),
                parent_image: p.parent_image().to_string(),
                command_line: p.command_line().to_string(),
                user: p.user().to_string(),
                flagged,
            };
            match seen_process.get(&key) {
                // Sysmon's record (process GUIDs) wins over 4688's (pids) for the tree.
                Some(&k) => {
                    let flagged = processes[k].flagged || row.flagged;
                    if row.id.starts_with('{') && !processes[k].id.starts_with('{') {
                        processes[k] = row;
                    }
                    processes[k].flagged = flagged;
                }
                None => {
                    seen_process.insert(key, processes.len());
                    processes.push(row);
                }
            }
        }
        if flagged || nd.process.is_some() || nd.movement.is_some() {
            let level = nd
                .hits
                .iter()
                .map(|&r| rules[r as usize].level)
                .max()
                .unwrap_or(0);
            // The second record of one process creation adds its rules to the first's entry.
            let entry_key = (&*nd.host, nd.describe(), nd.time / 1_000_000);
            if let Some(&k) = timeline_index.get(&entry_key) {
                let e: &mut Entry = &mut timeline[k];
                for &r in &nd.hits {
                    let title = &rules[r as usize].title;
                    if !e.rules.contains(title) {
                        e.rules.push(title.clone());
                    }
                }
                if LEVEL_NAMES.iter().position(|l| *l == e.level).unwrap_or(0) < level as usize {
                    e.level = LEVEL_NAMES[level as usize];
                }
                for t in entry_tactics {
                    if !e.tactics.contains(&t) {
                        e.tactics.push(t);
                    }
                }
                continue;
            }
            timeline_index.insert(entry_key, timeline.len());
            timeline.push(Entry {
                time: iso(nd.time),
                host: nd.host.to_string(),
                what: nd.describe(),
                rules: nd
                    .hits
                    .iter()
                    .map(|&r| rules[r as usize].title.clone())
                    .collect(),
                level: LEVEL_NAMES[level as usize],
                tactics: entry_tactics.into_iter().collect(),
                event: EventRef::of(nd),
            });
        }
    }
    let kind = if first_command.is_some() && (nodes[root_i].web_child || nodes[root_i].web_request)
    {
        "web shell"
    } else {
        "first detection"
    };
    let rn = &nodes[root_i];
    let root_cause = RootCause {
        kind,
        host: rn.host.to_string(),
        time: iso(rn.time),
        // The request, then the shell's first command: what came in and what it did.
        what: match first_command.filter(|_| rn.web_request) {
            Some(c) => format!("{}; then {}", rn.describe(), nodes[c].describe()),
            None => rn.describe(),
        },
        event: EventRef::of(rn),
    };
    // Movement edges.
    let mut edges: BTreeMap<(&str, &str), (i64, usize, BTreeSet<&'static str>)> = BTreeMap::new();
    for &k in step_ids {
        let s = &steps[k];
        if s.time < from {
            continue;
        }
        let e = edges
            .entry((&s.from, &s.to))
            .or_insert((s.time, 0, BTreeSet::new()));
        e.0 = e.0.min(s.time);
        e.1 += 1;
        e.2.insert(s.how);
    }
    let movement: Vec<Edge> = edges
        .into_iter()
        .map(|((f, t), (first, count, how))| Edge {
            from: f.to_string(),
            to: t.to_string(),
            first: iso(first),
            count,
            how: how.into_iter().collect(),
        })
        .collect();
    let host_rows: Vec<HostInOp> = hosts
        .iter()
        .map(|(h, (first, events, dets))| {
            let role = roles.get(h).map(|r| r.to_string());
            HostInOp {
                host: h.clone(),
                crown_jewel: role.as_deref().is_some_and(is_crown_jewel),
                role,
                first: iso(*first),
                events: *events,
                detections: *dets,
            }
        })
        .collect();
    let mut tactics: Vec<TacticStep> = tactic_first
        .into_iter()
        .map(|(t, (first, techs))| TacticStep {
            name: attack
                .tactics
                .iter()
                .find(|x| x.short == t)
                .map(|x| x.name.clone())
                .unwrap_or_default(),
            tactic: t,
            first: iso(first),
            techniques: techs.into_iter().collect(),
        })
        .collect();
    tactics.sort_by(|a, b| {
        (&a.first, attack.tactic_rank(&a.tactic)).cmp(&(&b.first, attack.tactic_rank(&b.tactic)))
    });
    // Score.
    let rule_score = rules_score(rule_counts.keys().copied(), rules);
    let internal_hosts = host_rows
        .iter()
        .filter(|h| {
            h.host.parse::<std::net::IpAddr>().is_err() || crate::links::is_private(&h.host)
        })
        .count();
    let jewels = host_rows.iter().filter(|h| h.crown_jewel).count() as u32;
    let score = story_score(
        rule_score,
        tactics.iter().map(|t| t.tactic.as_str()),
        internal_hosts,
        jewels as usize,
        kind == "web shell",
        max_level,
    );
    let severity = match score {
        s if s >= 150 => "critical",
        s if s >= 90 => "high",
        s if s >= 50 => "medium",
        _ => "low",
    };
    let mut rules_out: Vec<RuleCount> = rule_counts
        .iter()
        .map(|(&r, &count)| RuleCount {
            title: rules[r as usize].title.clone(),
            id: rules[r as usize].id.clone(),
            level: LEVEL_NAMES[rules[r as usize].level as usize],
            count,
        })
        .collect();
    rules_out.sort_by(|a, b| b.count.cmp(&a.count).then(a.title.cmp(&b.title)));
    let truncated = timeline.len().saturating_sub(opts.timeline_cap);
    if truncated > 0 {
        // Keep every detection first, then context, in time order.
        let mut keep: Vec<Entry> = timeline
            .iter()
            .filter(|e| !e.rules.is_empty())
            .cloned()
            .collect();
        let room = opts.timeline_cap.saturating_sub(keep.len());
        keep.extend(
            timeline
                .iter()
                .filter(|e| e.rules.is_empty())
                .take(room)
                .cloned(),
        );
        keep.sort_by(|a, b| a.time.cmp(&b.time));
        keep.truncate(opts.timeline_cap);
        timeline = keep;
    }
    let op = Operation {
        id: String::new(),
        wave: None,
        score,
        severity,
        start: iso(start_us),
        end: iso(end_us),
        root_cause,
        hosts: host_rows,
        accounts: accounts.into_iter().collect(),
        tactics,
        techniques: techniques.into_iter().collect(),
        rules: rules_out,
        detections,
        movement,
        remote_addresses: remote.into_iter().collect(),
        processes,
        timeline,
        timeline_truncated: truncated,
        actor: Vec::new(),
        events: if full {
            list.iter().map(|&i| EventRef::of(&nodes[i])).collect()
        } else {
            Vec::new()
        },
        start_us,
        end_us,
    };
    (op, list)
}
