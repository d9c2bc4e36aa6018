//! One story's operation: its entry and root cause, hosts, accounts, process trees, lateral
//! movement, tactics in order and timeline.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::model::*;
use super::score::{rules_score, story_score};
use crate::attack::Attack;
use crate::links::Node;

/// How long before its entry a story's events still belong to it (the exploit attempts
/// before the shell ran).
const CONTEXT_BEFORE: i64 = 3_600_000_000;
/// A web-shell request and the command it ran (IIS logs a request when it completes).
const JOIN_WINDOW: i64 = 60_000_000;

pub(super) fn iso(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
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
pub(super) fn operation(
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
                    e.level = LEVEL_NAMES[level as usize].into();
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
                level: LEVEL_NAMES[level as usize].into(),
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
        kind: kind.into(),
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
            how: how.into_iter().map(Into::into).collect(),
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
            level: LEVEL_NAMES[rules[r as usize].level as usize].into(),
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
        severity: severity.into(),
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
