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
//! let analysis = c.finish(&[], &[], &rules, &[], &Options { min_score: 0, ..Options::default() });
//! assert_eq!(analysis.operations.len(), 1);
//! // The two children of one shell are one story; the unrelated process is not in it.
//! assert_eq!(analysis.operations[0].events.len(), 2);
//! assert_eq!(analysis.operations[0].tactics[0].tactic, "discovery");
//! ```

pub mod attack;
pub mod graph;
pub mod links;
pub mod operations;
pub mod routine;
mod webshell;

use std::collections::HashMap;

use towerwatch_event::{Event, Locator};

pub use attack::{Attack, Candidate};
pub use operations::{Analysis, Asset, Operation, Options, RuleInfo, Wave};
pub use webshell::{Child, Finding, Place, Request, WebShellJoin};

/// Events kept as context beyond this are dropped (and counted); events with detections are
/// always kept. About 0.5 KiB each.
pub const DEFAULT_CAPACITY: usize = 4_000_000;

/// The correlation state one worker builds; [`merge`](Self::merge) combines workers.
pub struct Correlator {
    nodes: Vec<links::Node>,
    hosts: links::Hosts,
    capacity: usize,
    /// Context events not kept because the capacity was reached.
    pub dropped: u64,
}

impl Default for Correlator {
    fn default() -> Self {
        Correlator::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Correlator {
    pub fn with_capacity(capacity: usize) -> Self {
        Correlator {
            nodes: Vec::new(),
            hosts: links::Hosts::default(),
            capacity,
            dropped: 0,
        }
    }

    /// Takes one event and the indices (into the rule catalog) of the rules it matched.
    pub fn observe(&mut self, e: &Event, hits: &[u32]) {
        if self.nodes.len() >= self.capacity && hits.is_empty() {
            self.dropped += 1;
            return;
        }
        if let Some(n) = links::node_of(e, hits, &mut self.hosts) {
            self.nodes.push(n);
        }
    }

    pub fn merge(&mut self, other: Correlator) {
        self.dropped += other.dropped;
        let mut room = self.capacity.saturating_sub(self.nodes.len());
        for n in other.nodes {
            if !n.hits.is_empty() {
                self.nodes.push(n);
            } else if room > 0 {
                room -= 1;
                self.nodes.push(n);
            } else {
                self.dropped += 1;
            }
        }
    }

    /// Events kept so far.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Links everything and builds the operations. `extra` attaches detections found after
    /// the fact (by place); `joined` pairs places that are one story (the web-shell join's
    /// request and process).
    pub fn finish(
        self,
        extra: &[(Place, u32)],
        joined: &[(Place, Place)],
        rules: &[RuleInfo],
        assets: &[Asset],
        opts: &Options,
    ) -> Analysis {
        self.finish_with(extra, joined, rules, assets, opts, None)
    }

    /// As [`finish`](Self::finish), with the estate's routine: routine detections seed and
    /// score nothing unless their story stands without them (see [`routine`]).
    pub fn finish_with(
        self,
        extra: &[(Place, u32)],
        joined: &[(Place, Place)],
        rules: &[RuleInfo],
        assets: &[Asset],
        opts: &Options,
        routine: Option<&routine::Routine>,
    ) -> Analysis {
        let nodes = self.nodes;
        // Workers are merged in input order and each input's events come in file order, so a
        // stable sort by time alone gives the same order on every run.
        // (Sorting indices and moving each node once beats moving nodes in the sort.)
        let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
        order.sort_by_key(|&i| nodes[i as usize].time);
        let mut slots: Vec<Option<links::Node>> = nodes.into_iter().map(Some).collect();
        let mut nodes: Vec<links::Node> = order
            .iter()
            .filter_map(|&i| slots[i as usize].take())
            .collect();
        // Only the few places named after the fact are looked up.
        let place_key = |p: &Place| -> Option<(String, Locator)> {
            let loc = match (p.line, p.record_id) {
                (Some(l), _) => Locator::Line(l),
                (None, Some(r)) => Locator::Record(r),
                (None, None) => return None,
            };
            Some((p.source.clone(), loc))
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
        let asset_ips: Vec<(String, String)> = assets
            .iter()
            .map(|a| (a.ip.clone(), a.host.clone()))
            .collect();
        let mut graph = graph::build(nodes, &asset_ips, &pairs, routine);
        let analysis = operations::analyse(&mut graph, rules, assets, opts, routine);
        // Freeing every event's small allocations takes tens of milliseconds on a large
        // hunt; nothing waits for it.
        std::thread::spawn(move || drop(graph));
        analysis
    }
}
