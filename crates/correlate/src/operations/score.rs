//! How serious a story is: the rules it tripped, the tactics it spans, the hosts it crossed;
//! and the triage of one story at a time for the bounded linker.

use std::collections::HashMap;

use super::model::{is_crown_jewel, Asset, Options, RuleInfo};
use crate::attack::Attack;
use crate::links::Node;
use crate::routine::Routine;

/// What a tactic says of intent: administrators run commands, look around and log on to other
/// hosts every day; they do not dump credentials, beacon out, stage archives or exfiltrate.
pub(super) fn tactic_weight(tactic: &str) -> u32 {
    match tactic {
        "initial-access" | "credential-access" | "command-and-control" | "exfiltration" => 12,
        "collection" => 8,
        "defense-evasion" | "persistence" => 5,
        "privilege-escalation" | "lateral-movement" => 3,
        _ => 1,
    }
}

pub(super) fn level_weight(level: u8) -> u32 {
    [0, 1, 4, 10, 20][level.min(4) as usize]
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
                if let Some((keep, aside)) = routine_split(n, r) {
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
        let verdict = if !hits.iter().any(|h| seeds(h, self.rules, self.opts)) {
            Verdict::Quiet
        } else {
            let list: Vec<usize> = (0..nodes.len()).collect();
            let score = quick_score(
                nodes,
                &list,
                Some(&hits),
                self.rules,
                &self.rule_attack,
                &self.roles,
            );
            if score < self.opts.min_score {
                Verdict::Lead(score)
            } else {
                Verdict::Operation
            }
        };
        let mut context = Vec::new();
        if let (Some(r), false) = (self.routine, verdict == Verdict::Operation) {
            let why = demoted
                .iter()
                .find_map(|(i, aside)| routine_reason(&nodes[*i], aside, r));
            if let Some(why) = why {
                for (i, h) in hits.iter().enumerate() {
                    for &rule in h {
                        context.push((i, rule, in_routine_story(&why)));
                    }
                }
            }
        }
        (verdict, context)
    }
}

/// `n`'s detections that count and those the estate's routine explains, set aside:
/// `(counting, set aside)`, or `None` when the routine explains none of them.
pub(super) fn routine_split(n: &Node, r: &Routine) -> Option<(Vec<u32>, Vec<u32>)> {
    let (keep, aside): (Vec<u32>, Vec<u32>) = n
        .hits
        .iter()
        .partition(|&&h| r.verdict_of(h, n.actor, n.time).is_none());
    (!aside.is_empty()).then_some((keep, aside))
}

/// Whether any of `hits` is at or above the seeding level.
pub(super) fn seeds(hits: &[u32], rules: &[RuleInfo], opts: &Options) -> bool {
    hits.iter().any(|&h| {
        rules
            .get(h as usize)
            .is_some_and(|r| r.level >= opts.seed_level)
    })
}

/// The routine's reason for the first of `n`'s set-aside detections it explains.
pub(super) fn routine_reason(n: &Node, aside: &[u32], r: &Routine) -> Option<String> {
    aside.iter().find_map(|&h| r.verdict_of(h, n.actor, n.time))
}

/// Why a detection in a story of the routine is that routine's context.
pub(super) fn in_routine_story(why: &str) -> String {
    format!("in a story of the estate's routine: {why}")
}

pub(super) fn roles_of(assets: &[Asset]) -> HashMap<String, &str> {
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

/// The distinct rules' weight, capped so that a noisy story cannot outweigh its breadth.
pub(super) fn rules_score(distinct: impl Iterator<Item = u32>, rules: &[RuleInfo]) -> u32 {
    distinct
        .map(|r| level_weight(rules[r as usize].level))
        .sum::<u32>()
        .min(120)
}

/// An operation's score: what it tripped, the tactics it spans, how far it spread, a web
/// shell at its root, the crown jewels it reached.
pub(super) fn story_score<'a>(
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
/// The story's score, cheaply: `hits`, when given, replaces each node's own (the triage's
/// demoted copy, without cloning nodes).
pub(super) fn quick_score(
    nodes: &[Node],
    list: &[usize],
    hits: Option<&[Vec<u32>]>,
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
        for &r in hits.map_or(&n.hits, |h| &h[i]) {
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
