//! From linked events to *operations* (one attack story each) and *waves* (the campaign coming
//! back): every connected story that holds a detection at or above the seeding level becomes a
//! candidate; its score weighs the rules it tripped, the ATT&CK tactics it spans, the hosts it
//! crossed, a web shell at its root and the crown-jewel assets it touched. Candidates under
//! the reporting score are kept as *leads*, counted but not reported as operations.

mod build;
mod model;
mod score;
mod waves;

use std::collections::{BTreeMap, HashMap};

use crate::attack::Attack;
use crate::graph::Graph;

use build::operation;
pub use model::*;
pub use score::attack_of;
use score::{in_routine_story, quick_score, roles_of, routine_reason, routine_split, seeds};
pub(crate) use score::{StoryContext, Triage, Verdict};

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
            if let Some((keep, set_aside)) = routine_split(node, r) {
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
        .filter(|&i| seeds(&graph.nodes[i].hits, rules, opts))
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
                    quick_score(&graph.nodes, l, None, rules, &rule_attack, &roles),
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
                if let Some(why) = routine_reason(&graph.nodes[i], hits, r) {
                    why_by_root.insert(roots[i], why);
                }
            }
            if !why_by_root.is_empty() {
                for (i, n) in graph.nodes.iter().enumerate() {
                    if let Some(why) = why_by_root.get(&roots[i]) {
                        for &h in &n.hits {
                            context.push((EventRef::of(n), h, in_routine_story(why)));
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
    let (waves, all) = waves::group(&mut ops, opts.wave_gap_hours);
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
