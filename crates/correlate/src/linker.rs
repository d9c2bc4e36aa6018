//! The linker in bounded memory: the links of [`crate::graph::build`] (its plain reference),
//! made from nodes spilled to disk, holding in memory what grows with the estate (hosts,
//! addresses, services, web-server children) and four bytes per event for the union-find —
//! not the events.
//!
//! 1. The nodes are read back in time order. Each one's group memberships (kind, value,
//!    scope) and pid references go to external sorts, and movements are paired in a sliding
//!    window of a minute.
//! 2. The sorted memberships are walked one group at a time; each group joins its members
//!    as the rules of [`crate::graph`] say (a group that cannot link stops being held).
//! 3. The nodes of the stories that hold a detection are read again, sorted by story, and
//!    judged one story at a time as operations would judge them: only the operations and
//!    the strongest leads are kept for [`crate::operations::analyse`] to build.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use towerwatch_event::Locator;
use towerwatch_spill::{Sorter, SpillError, Tape};

use crate::graph::{
    chain_gap, counts_for_remote, group_of, link_web_children, resolve_host, scoped, Components,
    Graph, Step, Totals, WebChild, DB_SESSION, DROP_WINDOW, FILE_HOSTS, FILE_SESSIONS,
    MOVE_PARTNERS, MOVE_WINDOW, REMOTE, REMOTE_HOSTS, SAME_PROCESS, SESSION, SESSION_SPAN,
};
use crate::links::{Key, Movement, Node};
use crate::operations::{EventRef, StoryContext, Triage, Verdict, LEADS_KEPT};
use crate::webshell::Place;
use crate::{Asset, Options, RuleInfo};

/// A node's place in time order: time, then the record (a Windows event's host, channel and
/// record id, in whatever file it came), then where it was read (source and position). The
/// last tells apart copies of one record read from two sources (a log collected twice), so
/// that their order does not depend on which linker took which copy, or in which order.
pub(crate) type NodeKey = (i64, towerwatch_event::OrderKey, towerwatch_event::OrderKey);

const GROUPS_IN_MEMORY: usize = 1 << 17;
const FILES_IN_MEMORY: usize = 1 << 15;
const PIDS_IN_MEMORY: usize = 1 << 16;
const TAPE_IN_MEMORY: usize = 4096;
const STORY_NODES_IN_MEMORY: usize = 16_384;
/// Scope of keys that belong to no host.
const ESTATE: u32 = u32::MAX;

/// What is known of every node before linking (gathered while observing).
pub(crate) struct Known<'a> {
    /// Address → host → how often that host used it.
    pub votes: &'a FxHashMap<Box<str>, BTreeMap<Box<str>, usize>>,
    /// Accounts created by a command line.
    pub created: &'a FxHashSet<Box<str>>,
}

/// Links the nodes (by [`NodeKey`]) and returns the graph of the stories that hold a
/// detection. `extra`, `joined`, `assets` and `routine` as in [`crate::Correlator::finish`].
pub(crate) fn link(
    nodes: &mut Sorter<NodeKey, Node>,
    known: Known<'_>,
    extra: &[(Place, u32)],
    joined: &[(Place, Place)],
    assets: &[(String, String)],
    story: Judging<'_>,
    routine: Option<&crate::routine::Routine>,
) -> Result<Graph, SpillError> {
    let host_of_ip =
        crate::graph::resolve_votes(known.votes.iter().map(|(ip, h)| (&**ip, by_ref(h))), assets);
    let resolve = |x: &str| -> Box<str> { host_of_ip.get(x).cloned().unwrap_or_else(|| x.into()) };

    // Places named after the fact (by source, then position): the last node at each.
    let mut wanted: FxHashMap<&str, FxHashMap<Locator, Option<u32>>> = FxHashMap::default();
    for (source, at) in extra
        .iter()
        .map(|(p, _)| p)
        .chain(joined.iter().flat_map(|(a, b)| [a, b]))
        .filter_map(place_key)
    {
        wanted.entry(source).or_default().insert(at, None);
    }

    // Pass 1.
    let mut uf = Components::new(0);
    let mut hit = Bits::default();
    let mut hosts = Interner::default();
    let mut groups: Sorter<(u8, u64, u32, u32), (i64, u32)> = Sorter::new(GROUPS_IN_MEMORY);
    let mut files: Sorter<(u64, u32, u32), (i64, Vec<u64>)> = Sorter::new(FILES_IN_MEMORY);
    let mut pids: Sorter<(u32, u32, i64, u8, u32), u32> = Sorter::new(PIDS_IN_MEMORY);
    let mut service_sessions: FxHashSet<(u32, u64)> = FxHashSet::default();
    let mut children: Vec<(WebChild, Vec<u32>, crate::routine::ActorKey)> = Vec::new();
    let mut movement = MovementWindow::default();
    let mut steps: Tape<Step> = Tape::new(TAPE_IN_MEMORY);
    for (index, item) in nodes.sorted()?.enumerate() {
        let (_, mut n) = item?;
        let i = index as u32;
        resolve_host(&mut n, &resolve);
        uf.push();
        hit.push(!n.hits.is_empty());
        if let Some(slot) = wanted
            .get_mut(&*n.source)
            .and_then(|at| at.get_mut(&n.locator))
        {
            *slot = Some(i);
        }
        let host = hosts.id(&n.host);
        let sessions = || -> Vec<u64> {
            n.keys
                .iter()
                .filter_map(|k| match k {
                    Key::Session(s) => Some(*s),
                    _ => None,
                })
                .collect()
        };
        for k in &n.keys {
            match k {
                Key::PidCreated(p, log) => pids.push((host, *p, n.time, 0, i), *log as u32)?,
                Key::PidRef(p) => pids.push((host, *p, n.time, 1, i), u32::MAX)?,
                Key::ServiceSession(s) => {
                    service_sessions.insert((host, *s));
                }
                _ => {}
            }
            let Some((kind, value)) = group_of(k, |a| known.created.contains(a)) else {
                continue;
            };
            let scope = if scoped(k) { host } else { ESTATE };
            match kind {
                crate::graph::FILE => files.push((value, scope, i), (n.time, sessions()))?,
                SESSION => groups.push((kind, value, scope, i), (n.time, n.web_child as u32))?,
                REMOTE => {
                    let h = if counts_for_remote(&n.host) {
                        host
                    } else {
                        ESTATE
                    };
                    groups.push((kind, value, scope, i), (n.time, h))?
                }
                _ => groups.push((kind, value, scope, i), (n.time, 0))?,
            }
        }
        if let Some(c) = WebChild::of(index, &n, &[], None) {
            children.push((c, n.hits.clone(), n.actor));
        }
        movement.observe(i, &n, &mut hosts, &resolve, &mut uf, &mut steps)?;
    }
    movement.finish(&hosts.names, &mut uf, &mut steps)?;
    drop(movement);

    // Detections named after the fact, on the last node at their place.
    let found = |p: &Place| -> Option<u32> {
        let (source, at) = place_key(p)?;
        wanted.get(source)?.get(&at).copied().flatten()
    };
    let mut extra_at: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (p, rule) in extra {
        if let Some(i) = found(p) {
            let rules = extra_at.entry(i).or_default();
            if !rules.contains(rule) {
                rules.push(*rule);
            }
            hit.set(i as usize);
        }
    }
    for (a, b) in joined {
        if let (Some(a), Some(b)) = (found(a), found(b)) {
            uf.union(a as usize, b as usize);
        }
    }

    // Pass 2.
    link_groups(&mut groups, &service_sessions, &mut uf)?;
    drop(groups);
    link_files(&mut files, &mut uf)?;
    drop(files);
    link_pids(&mut pids, &mut uf)?;
    drop(pids);
    let children: Vec<WebChild> = children
        .into_iter()
        .map(|(mut c, mut hits, actor)| {
            for r in extra_at.get(&(c.index as u32)).into_iter().flatten() {
                if !hits.contains(r) {
                    hits.push(*r);
                }
            }
            c.flagged = hits
                .iter()
                .any(|&h| routine.is_none_or(|r| r.verdict_of(h, actor, c.time).is_none()));
            c
        })
        .collect();
    link_web_children(&children, &mut uf);
    drop(children);

    // Pass 3: the stories with detections.
    let total = uf.len();
    let mut stories = 0;
    let mut keep: FxHashSet<u32> = FxHashSet::default();
    for i in 0..total {
        let r = uf.root(i);
        stories += (r == i) as usize;
        if hit.get(i) {
            keep.insert(r as u32);
        }
    }
    drop(hit);
    // The stories, one at a time (by root, each in time order): the runs are merged again
    // rather than every node written once more.
    let mut by_story: Sorter<(u32, u32), Node> = Sorter::new(STORY_NODES_IN_MEMORY);
    for (i, item) in nodes.sorted()?.enumerate() {
        let (_, mut n) = item?;
        let root = uf.root(i) as u32;
        if !keep.contains(&root) {
            continue;
        }
        resolve_host(&mut n, &resolve);
        for r in extra_at.get(&(i as u32)).into_iter().flatten() {
            if !n.hits.contains(r) {
                n.hits.push(*r);
            }
        }
        by_story.push((root, i as u32), n)?;
    }
    drop(keep);
    let mut triage = Triage::new(story.rules, story.assets, story.opts, routine);
    let mut totals = Totals {
        events: total,
        stories,
        ..Totals::default()
    };
    let mut context = Vec::new();
    // Operations keep their nodes; of the leads, the strongest (as `analyse` ranks them).
    let mut kept: Vec<(u32, Node)> = Vec::new();
    let mut leads: Vec<Lead> = Vec::new();
    let mut current: Option<u32> = None;
    let (mut at, mut members): (Vec<u32>, Vec<Node>) = (Vec::new(), Vec::new());
    let mut judge = |root: u32, at: Vec<u32>, members: Vec<Node>| {
        let (verdict, story_context) = triage.story(&members);
        let left_out = |context: &mut Vec<_>, members: &[Node], story_context: StoryContext| {
            for (i, rule, why) in story_context {
                context.push((EventRef::of(&members[i]), rule, why));
            }
        };
        match verdict {
            Verdict::Operation => {
                totals.candidates += 1;
                kept.extend(at.into_iter().zip(members));
            }
            Verdict::Lead(score) => {
                totals.candidates += 1;
                totals.leads += 1;
                leads.push(Lead {
                    score,
                    root,
                    at,
                    members,
                    context: story_context,
                });
                if leads.len() > LEADS_KEPT {
                    let weakest = (0..leads.len())
                        .max_by_key(|&k| (std::cmp::Reverse(leads[k].score), leads[k].root))
                        .expect("not empty");
                    let out = leads.swap_remove(weakest);
                    left_out(&mut context, &out.members, out.context);
                }
            }
            Verdict::Quiet => left_out(&mut context, &members, story_context),
        }
    };
    for item in by_story.sorted()? {
        let ((root, i), n) = item?;
        if current != Some(root) {
            if let Some(r) = current {
                judge(r, std::mem::take(&mut at), std::mem::take(&mut members));
            }
            current = Some(root);
        }
        at.push(i);
        members.push(n);
    }
    if let Some(r) = current {
        judge(r, at, members);
    }
    drop(by_story);
    for lead in leads {
        kept.extend(lead.at.into_iter().zip(lead.members));
    }
    kept.sort_unstable_by_key(|(i, _)| *i);
    let mut new_index: FxHashMap<u32, u32> = FxHashMap::default();
    let mut parents = Vec::with_capacity(kept.len());
    let mut graph_nodes = Vec::with_capacity(kept.len());
    for (i, n) in kept {
        let at = graph_nodes.len() as u32;
        new_index.insert(i, at);
        // The root is the story's first event, so it has its new index already.
        parents.push(new_index[&(uf.root(i as usize) as u32)]);
        graph_nodes.push(n);
    }
    let mut graph_steps = Vec::new();
    for s in steps.read()? {
        let mut s = s?;
        if let (Some(&a), Some(&d)) = (
            new_index.get(&(s.arrival as u32)),
            new_index.get(&(s.departure as u32)),
        ) {
            s.arrival = a as usize;
            s.departure = d as usize;
            graph_steps.push(s);
        }
    }
    Ok(Graph {
        nodes: graph_nodes,
        components: Components::from_roots(parents),
        steps: graph_steps,
        totals: Some(totals),
        context,
    })
}

/// A lead kept while stronger ones may still come.
struct Lead {
    score: u32,
    root: u32,
    at: Vec<u32>,
    members: Vec<Node>,
    context: StoryContext,
}

/// What judging a story needs: the rule catalog, the assets' roles, the thresholds.
pub(crate) struct Judging<'a> {
    pub rules: &'a [RuleInfo],
    pub assets: &'a [Asset],
    pub opts: &'a Options,
}

fn by_ref(h: &BTreeMap<Box<str>, usize>) -> BTreeMap<&str, usize> {
    h.iter().map(|(k, v)| (&**k, *v)).collect()
}

pub(crate) fn place_key(p: &Place) -> Option<(&str, Locator)> {
    let loc = match (p.line, p.record_id) {
        (Some(l), _) => Locator::Line(l),
        (None, Some(r)) => Locator::Record(r),
        (None, None) => return None,
    };
    Some((&p.source, loc))
}

/// One bit per event (whether it holds a detection).
#[derive(Default)]
struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(64) {
            self.words.push(0);
        }
        self.len += 1;
        if bit {
            self.set(self.len - 1);
        }
    }

    fn set(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    fn get(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }
}

/// Names as small ids.
#[derive(Default)]
struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        self.names.push(Arc::from(name));
        let i = self.names.len() as u32 - 1;
        self.ids.insert(name.into(), i);
        i
    }

    /// The id of the host an address or name resolves to (names and their addresses share
    /// one id).
    fn name_id(&mut self, x: &str, resolve: &dyn Fn(&str) -> Box<str>) -> u32 {
        if let Some(&i) = self.ids.get(x) {
            return i;
        }
        let i = self.id(&resolve(x));
        self.ids.insert(x.into(), i);
        i
    }
}

/// One group's members while it may still link.
#[derive(Default)]
struct Group {
    members: Vec<(u32, i64)>,
    /// It cannot link (too long, a pool's, on too many hosts): nothing more is held.
    dead: bool,
    hosts: Vec<u32>,
}

impl Group {
    fn reset(&mut self) {
        self.members.clear();
        self.hosts.clear();
        self.dead = false;
    }

    fn link(&self, gap: Option<i64>, uf: &mut Components) {
        if self.dead {
            return;
        }
        for w in self.members.windows(2) {
            if gap.is_none_or(|g| w[1].1 - w[0].1 <= g) {
                uf.union(w[0].0 as usize, w[1].0 as usize);
            }
        }
    }
}

fn link_groups(
    groups: &mut Sorter<(u8, u64, u32, u32), (i64, u32)>,
    service_sessions: &FxHashSet<(u32, u64)>,
    uf: &mut Components,
) -> Result<(), SpillError> {
    let mut current: Option<(u8, u64, u32)> = None;
    let mut g = Group::default();
    for item in groups.sorted()? {
        let ((kind, value, scope, i), (time, tag)) = item?;
        if current != Some((kind, value, scope)) {
            if let Some((kind, ..)) = current {
                g.link(chain_gap(kind), uf);
            }
            g.reset();
            current = Some((kind, value, scope));
            g.dead = kind == SESSION && service_sessions.contains(&(scope, value));
        }
        if g.dead {
            continue;
        }
        let first = g.members.first().map_or(time, |m| m.1);
        g.dead = match kind {
            SESSION => tag == 1 || time - first > SESSION_SPAN,
            DB_SESSION => time - first > SESSION_SPAN,
            REMOTE => {
                if tag != ESTATE && !g.hosts.contains(&tag) {
                    g.hosts.push(tag);
                }
                g.hosts.len() > REMOTE_HOSTS
            }
            _ => false,
        };
        if g.dead {
            g.members.clear();
        } else {
            g.members.push((i, time));
        }
    }
    if let Some((kind, ..)) = current {
        g.link(chain_gap(kind), uf);
    }
    Ok(())
}

/// Files run or written in few sessions on few hosts: the estate's own (on more than
/// [`FILE_HOSTS`] hosts) are found in a first walk, by value.
fn link_files(
    files: &mut Sorter<(u64, u32, u32), (i64, Vec<u64>)>,
    uf: &mut Components,
) -> Result<(), SpillError> {
    let mut wide: FxHashSet<u64> = FxHashSet::default();
    let mut last: Option<(u64, u32)> = None;
    let mut spread = 0;
    for item in files.sorted()? {
        let ((value, scope, _), _) = item?;
        match last {
            Some((v, s)) if v == value => {
                if s != scope {
                    spread += 1;
                }
            }
            _ => spread = 1,
        }
        if spread > FILE_HOSTS {
            wide.insert(value);
        }
        last = Some((value, scope));
    }
    let gap = chain_gap(crate::graph::FILE);
    let mut current: Option<(u64, u32)> = None;
    let mut g = Group::default();
    let mut sessions: FxHashSet<u64> = FxHashSet::default();
    for item in files.sorted()? {
        let ((value, scope, i), (time, node_sessions)) = item?;
        if current != Some((value, scope)) {
            g.link(gap, uf);
            g.reset();
            sessions.clear();
            current = Some((value, scope));
            g.dead = wide.contains(&value);
        }
        if g.dead {
            continue;
        }
        sessions.extend(node_sessions);
        if sessions.len() > FILE_SESSIONS {
            g.dead = true;
            g.members.clear();
        } else {
            g.members.push((i, time));
        }
    }
    g.link(gap, uf);
    Ok(())
}

/// As [`crate::graph`]'s pid rule, one (host, pid) at a time.
fn link_pids(
    pids: &mut Sorter<(u32, u32, i64, u8, u32), u32>,
    uf: &mut Components,
) -> Result<(), SpillError> {
    let mut current: Option<(u32, u32)> = None;
    // The latest creation: (index, time, the log that recorded it).
    let mut latest: Option<(u32, i64, u32)> = None;
    for item in pids.sorted()? {
        let ((host, pid, time, kind, i), log) = item?;
        if current != Some((host, pid)) {
            current = Some((host, pid));
            latest = None;
        }
        if kind == 0 {
            if let Some((prev, t, s)) = latest {
                // The same creation in the other log.
                if time - t <= SAME_PROCESS && s != log {
                    uf.union(prev as usize, i as usize);
                }
            }
            latest = Some((i, time, log));
        } else if let Some((creator, ..)) = latest {
            uf.union(creator as usize, i as usize);
        }
    }
    Ok(())
}

/// A departure (or flow, or arrival from a known host) an arrival may pair with.
#[derive(Clone)]
struct Candidate {
    index: u32,
    time: i64,
    flow: bool,
    host: Arc<str>,
}

struct Arrival {
    index: u32,
    time: i64,
    from: Option<u32>,
    to: u32,
    how: crate::links::How,
    flow: bool,
}

/// Movements paired as nodes come in time order: an arrival waits until nothing within
/// [`MOVE_WINDOW`] after it can still come, then takes its nearest partners, as
/// `graph::link_movement` does over all nodes at once.
#[derive(Default)]
struct MovementWindow {
    by_pair: FxHashMap<(u32, u32), VecDeque<Candidate>>,
    by_dest: FxHashMap<u32, VecDeque<Candidate>>,
    pending: VecDeque<Arrival>,
    now: i64,
    since_sweep: usize,
}

impl MovementWindow {
    fn observe(
        &mut self,
        i: u32,
        n: &Node,
        hosts: &mut Interner,
        resolve: &dyn Fn(&str) -> Box<str>,
        uf: &mut Components,
        steps: &mut Tape<Step>,
    ) -> Result<(), SpillError> {
        let Some(m) = &n.movement else {
            return Ok(());
        };
        self.now = n.time;
        while self
            .pending
            .front()
            .is_some_and(|a| a.time + MOVE_WINDOW < n.time)
        {
            let a = self.pending.pop_front().expect("checked");
            self.pair(&a, &hosts.names, uf, steps)?;
        }
        self.since_sweep += 1;
        if self.since_sweep > 1 << 16 {
            self.sweep();
        }
        let mut name = |x: &str| hosts.name_id(x, resolve);
        let candidate = Candidate {
            index: i,
            time: n.time,
            flow: matches!(m, Movement::Flow { .. }),
            host: n.host.clone(),
        };
        match m {
            Movement::Departure { to } => {
                let (from, to) = (name(&n.host), name(to));
                self.add(Some((from, to)), to, candidate);
            }
            Movement::Flow { from, to } => {
                let (from, to) = (name(from), name(to));
                self.add(Some((from, to)), to, candidate);
                self.pending.push_back(Arrival {
                    index: i,
                    time: n.time,
                    from: Some(from),
                    to,
                    how: "connection",
                    flow: true,
                });
            }
            Movement::Arrival { from, how } => {
                let from = from.as_deref().map(&mut name);
                let to = name(&n.host);
                if from.is_some() {
                    self.add(None, to, candidate);
                }
                self.pending.push_back(Arrival {
                    index: i,
                    time: n.time,
                    from,
                    to,
                    how,
                    flow: false,
                });
            }
        }
        Ok(())
    }

    fn add(&mut self, pair: Option<(u32, u32)>, to: u32, c: Candidate) {
        let horizon = self.now - MOVE_WINDOW - DROP_WINDOW;
        if let Some(pair) = pair {
            let list = self.by_pair.entry(pair).or_default();
            while list.front().is_some_and(|d| d.time < horizon) {
                list.pop_front();
            }
            list.push_back(c.clone());
        }
        let list = self.by_dest.entry(to).or_default();
        while list.front().is_some_and(|d| d.time < horizon) {
            list.pop_front();
        }
        list.push_back(c);
    }

    /// Drops what no waiting arrival can pair with any more.
    fn sweep(&mut self) {
        self.since_sweep = 0;
        let horizon = self.now - MOVE_WINDOW - DROP_WINDOW;
        let old = |d: &Candidate| d.time < horizon;
        for list in self.by_pair.values_mut() {
            list.retain(|d| !old(d));
        }
        self.by_pair.retain(|_, l| !l.is_empty());
        for list in self.by_dest.values_mut() {
            list.retain(|d| !old(d));
        }
        self.by_dest.retain(|_, l| !l.is_empty());
    }

    fn pair(
        &self,
        a: &Arrival,
        names: &[Arc<str>],
        uf: &mut Components,
        steps: &mut Tape<Step>,
    ) -> Result<(), SpillError> {
        let t = a.time;
        let (list, before) = match a.from {
            Some(f) => (self.by_pair.get(&(f, a.to)), MOVE_WINDOW),
            None => (self.by_dest.get(&a.to), DROP_WINDOW),
        };
        let Some(list) = list else {
            return Ok(());
        };
        let mut near: Vec<&Candidate> = list
            .iter()
            .filter(|d| d.time >= t - before && d.time <= t + MOVE_WINDOW)
            .filter(|d| d.index != a.index && !(a.flow && d.flow))
            .collect();
        near.sort_by_key(|d| (d.time - t).abs());
        for d in near.into_iter().take(MOVE_PARTNERS) {
            uf.union(a.index as usize, d.index as usize);
            // A bare connection is no arrival: a scan touches hosts it never enters.
            if a.flow {
                continue;
            }
            let src = match a.from {
                Some(f) => names[f as usize].clone(),
                None => d.host.clone(),
            };
            let to = &names[a.to as usize];
            if *src != **to {
                steps.push(Step {
                    from: src,
                    to: to.clone(),
                    time: t,
                    how: a.how,
                    arrival: a.index as usize,
                    departure: d.index as usize,
                })?;
            }
        }
        Ok(())
    }

    fn finish(
        &mut self,
        names: &[Arc<str>],
        uf: &mut Components,
        steps: &mut Tape<Step>,
    ) -> Result<(), SpillError> {
        while let Some(a) = self.pending.pop_front() {
            self.pair(&a, names, uf, steps)?;
        }
        Ok(())
    }
}
