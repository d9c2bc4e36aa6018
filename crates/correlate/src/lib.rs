//! Correlation for towerwatch: from single detections to attack stories.
//!
//! - [`WebShellJoin`]: requests to a rare page of a web server joined with the web server's
//!   child processes on the same host within seconds — a web shell no single log shows.
//! - [`Correlator`]: links every event to the others it shares a process, logon session,
//!   file, created account, outside address or connection with, and host-to-host moves to
//!   the logons and flows they cause ([`graph`]); the linked stories that hold detections
//!   become scored [`Operation`]s with root cause, hosts, accounts, process trees,
//!   lateral movement and ATT&CK tactics in order, grouped into [`Wave`]s and attributed by
//!   technique overlap with ATT&CK groups ([`attack`]).
//!
//! ```
//! use towerwatch_correlate::{Correlator, Options, RuleInfo};
//! use towerwatch_event::{Event, Origin, Value};
//!
//! let sysmon = |line: u64, t: &str, guid: &str, parent: &str, image: &str| {
//!     let mut e = Event::new(Origin::line("WEB01.jsonl", line));
//!     e.set_channel("Microsoft-Windows-Sysmon/Operational");
//!     e.set_event_id(1);
//!     e.computer = Some("WEB01.corp".into());
//!     e.timestamp = t.parse().ok();
//!     for (k, v) in [("ProcessGuid", guid), ("ParentProcessGuid", parent), ("Image", image),
//!                    ("ParentImage", "C:\\Windows\\System32\\cmd.exe")] {
//!         e.push(k, Value::text(v));
//!     }
//!     e
//! };
//! let rules = vec![RuleInfo { id: "r1".into(), title: "Whoami".into(), level: 3,
//!     tags: vec!["attack.discovery".into(), "attack.t1033".into()] }];
//! let mut c = Correlator::default();
//! c.observe(&sysmon(1, "2019-03-05T10:00:00Z", "{a}", "{root}", "C:\\Windows\\System32\\whoami.exe"), &[0]);
//! c.observe(&sysmon(2, "2019-03-05T10:00:05Z", "{b}", "{root}", "C:\\Windows\\System32\\net.exe"), &[]);
//! c.observe(&sysmon(3, "2019-03-05T10:00:09Z", "{z}", "{other}", "C:\\Windows\\System32\\net.exe"), &[]);
//! let analysis = c.finish(&[], &[], &rules, &[], &Options { min_score: 0, ..Options::default() }).unwrap();
//! assert_eq!(analysis.operations.len(), 1);
//! // The two children of one shell are one story; the unrelated process is not in it.
//! assert_eq!(analysis.operations[0].events.len(), 2);
//! assert_eq!(analysis.operations[0].tactics[0].tactic, "discovery");
//! ```

pub mod attack;
pub mod graph;
pub mod linker;
pub mod links;
pub mod operations;
pub mod routine;
mod webshell;

use std::collections::{BTreeMap, HashMap};

use rustc_hash::{FxHashMap, FxHashSet};

use towerwatch_event::{Event, Locator};

pub use attack::{Attack, Candidate};
pub use operations::{Analysis, Asset, Operation, Options, RuleInfo, Wave};
pub use webshell::{
    Child, Finding, Place, Request, Sighting, WebShellJoin, CHILDREN as WEB_CHILDREN,
};

/// Nodes one correlator holds in memory before the rest wait on disk (about 0.5 KiB each).
pub const NODES_IN_MEMORY: usize = 8_192;

pub use towerwatch_spill::SpillError;

/// A word from a fixed set (a level, a severity, a kind) as the analysis carries it:
/// borrowed when made here, owned when read back (a story builder's saved results).
pub type Label = std::borrow::Cow<'static, str>;

/// What the linker keeps of one event: its place in time order and its node (host,
/// entities, the step it may be). Small, and serialisable for a story builder elsewhere.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LinkFact {
    key: linker::NodeKey,
    node: links::Node,
}

impl LinkFact {
    /// The rules (indices into the caller's catalog) that matched its event.
    pub fn hits(&self) -> &[u32] {
        &self.node.hits
    }
}

/// The correlation state one worker builds; [`merge`](Self::merge) combines workers.
///
/// Every event is kept, on disk past [`NODES_IN_MEMORY`]; linking holds four bytes per
/// event and what grows with the estate, and only the stories with detections are built
/// (see [`linker`]). [`reference`](Self::reference) links everything in memory instead, the
/// plain way the bounded one is checked against.
pub struct Correlator {
    nodes: towerwatch_spill::Sorter<linker::NodeKey, links::Node>,
    hosts: links::Hosts,
    votes: FxHashMap<Box<str>, BTreeMap<Box<str>, usize>>,
    created: FxHashSet<Box<str>>,
    in_memory: bool,
    error: Option<SpillError>,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator {
            nodes: towerwatch_spill::Sorter::new(NODES_IN_MEMORY),
            hosts: links::Hosts::default(),
            votes: FxHashMap::default(),
            created: FxHashSet::default(),
            in_memory: false,
            error: None,
        }
    }
}

impl Correlator {
    /// Links in memory with the plain linker of [`graph`] (for checking; memory grows with
    /// the events).
    pub fn reference(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Takes one event and the indices (into the rule catalog) of the rules it matched.
    pub fn observe(&mut self, e: &Event, hits: &[u32]) {
        if let Some(fact) = self.link_fact(e, hits) {
            self.absorb(fact);
        }
    }

    /// What the linker keeps of one event (none for an event without a time), found without
    /// the others: a worker elsewhere can make it and send it on to [`absorb`](Self::absorb).
    pub fn link_fact(&mut self, e: &Event, hits: &[u32]) -> Option<LinkFact> {
        let node = links::node_of(e, hits, &mut self.hosts)?;
        // Ties in time are ordered by the records themselves, so the stories do not depend
        // on which worker read what, or in which order a stream delivered it.
        Some(LinkFact {
            key: (node.time, e.order_key(), e.origin.order_key()),
            node,
        })
    }

    /// Takes one event's link fact.
    pub fn absorb(&mut self, fact: LinkFact) {
        let LinkFact { key, node: n } = fact;
        if let Some(ip) = &n.host_ip {
            *self
                .votes
                .entry(ip.clone())
                .or_default()
                .entry(n.host.as_ref().into())
                .or_default() += 1;
        }
        for k in &n.keys {
            if let links::Key::AccountCreated(a) = k {
                self.created.insert(a.clone());
            }
        }
        if let Err(e) = self.nodes.push(key, n) {
            self.error.get_or_insert(e);
        }
    }

    pub fn merge(&mut self, other: Correlator) {
        if let Err(e) = self.nodes.append(other.nodes) {
            self.error.get_or_insert(e);
        }
        if let Some(e) = other.error {
            self.error.get_or_insert(e);
        }
        for (ip, hosts) in other.votes {
            let mine = self.votes.entry(ip).or_default();
            for (h, c) in hosts {
                *mine.entry(h).or_default() += c;
            }
        }
        self.created.extend(other.created);
    }

    /// Events kept so far.
    pub fn len(&self) -> u64 {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Links everything and builds the operations. `extra` attaches detections found after
    /// the fact (by place); `joined` pairs places that are one story (the web-shell join's
    /// request and process). Fails only if the temporary files fail.
    pub fn finish(
        self,
        extra: &[(Place, u32)],
        joined: &[(Place, Place)],
        rules: &[RuleInfo],
        assets: &[Asset],
        opts: &Options,
    ) -> Result<Analysis, SpillError> {
        self.finish_with(extra, joined, rules, assets, opts, None)
    }

    /// As [`finish`](Self::finish), with the estate's routine: routine detections seed and
    /// score nothing unless their story stands without them (see [`routine`]).
    pub fn finish_with(
        mut self,
        extra: &[(Place, u32)],
        joined: &[(Place, Place)],
        rules: &[RuleInfo],
        assets: &[Asset],
        opts: &Options,
        routine: Option<&routine::Routine>,
    ) -> Result<Analysis, SpillError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let asset_ips: Vec<(String, String)> = assets
            .iter()
            .map(|a| (a.ip.clone(), a.host.clone()))
            .collect();
        let mut graph = if self.in_memory {
            let nodes = self
                .nodes
                .sorted()?
                .map(|r| r.map(|(_, n)| n))
                .collect::<Result<Vec<_>, _>>()?;
            in_memory_graph(nodes, extra, joined, &asset_ips, routine)
        } else {
            let known = linker::Known {
                votes: &self.votes,
                created: &self.created,
            };
            let judging = linker::Judging {
                rules,
                assets,
                opts,
            };
            linker::link(
                &mut self.nodes,
                known,
                extra,
                joined,
                &asset_ips,
                judging,
                routine,
            )?
        };
        let analysis = operations::analyse(&mut graph, rules, assets, opts, routine);
        // Freeing every event's small allocations takes tens of milliseconds on a large
        // hunt; nothing waits for it.
        std::thread::spawn(move || drop(graph));
        Ok(analysis)
    }
}

/// The plain linker: every node in memory, in time order.
fn in_memory_graph(
    mut nodes: Vec<links::Node>,
    extra: &[(Place, u32)],
    joined: &[(Place, Place)],
    asset_ips: &[(String, String)],
    routine: Option<&routine::Routine>,
) -> graph::Graph {
    // Only the few places named after the fact are looked up.
    let place_key = |p: &Place| -> Option<(String, Locator)> {
        linker::place_key(p).map(|(source, at)| (source.to_string(), at))
    };
    let mut wanted: HashMap<(String, Locator), Option<usize>> = extra
        .iter()
        .map(|(p, _)| p)
        .chain(joined.iter().flat_map(|(a, b)| [a, b]))
        .filter_map(place_key)
        .map(|k| (k, None))
        .collect();
    if !wanted.is_empty() {
        let sources: std::collections::HashSet<&str> =
            wanted.keys().map(|(s, _)| s.as_str()).collect();
        let mut found = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if sources.contains(&*n.source) {
                found.push(((n.source.to_string(), n.locator), i));
            }
        }
        for (k, i) in found {
            if let Some(slot) = wanted.get_mut(&k) {
                *slot = Some(i);
            }
        }
    }
    let find = |p: &Place| -> Option<usize> { wanted.get(&place_key(p)?).copied().flatten() };
    for (p, rule) in extra {
        if let Some(i) = find(p) {
            if !nodes[i].hits.contains(rule) {
                nodes[i].hits.push(*rule);
            }
        }
    }
    let pairs: Vec<(usize, usize)> = joined
        .iter()
        .filter_map(|(a, b)| Some((find(a)?, find(b)?)))
        .collect();
    graph::build(nodes, asset_ips, &pairs, routine)
}
