//! Resolving the keys of [`crate::links`] into connected stories: a union-find over events,
//! joined where they share a process, a logon session, a file, a created account, an outside
//! address or a connection, and where one host's departure meets another host's arrival.
//!
//! Keys that everything shares would weld the whole estate into one story, so they do not
//! link: the operating system's own sessions and processes (see [`crate::links`]), sessions
//! that last longer than a day (services, application pools), and outside addresses that more
//! than a handful of our hosts talk to. Keys that can recur by coincidence (a file path, an
//! address, an account) link only events close in time, so a campaign's waves stay apart.

use std::collections::{BTreeMap, HashMap, HashSet};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::links::{is_private, CreatedIn, Key, Movement, Node};

pub(crate) const SECOND: i64 = 1_000_000;
pub(crate) const HOUR: i64 = 3_600 * SECOND;
pub(crate) const DAY: i64 = 24 * HOUR;
pub(crate) const MINUTE: i64 = 60 * SECOND;

/// A session longer than this is a service's or a server's, not one person's.
pub(crate) const SESSION_SPAN: i64 = 7 * DAY;
/// A file run in more logon sessions than this is installed software, not one actor's tool.
pub(crate) const FILE_SESSIONS: usize = 3;
/// Events naming the same own file link when this close.
pub(crate) const FILE_GAP: i64 = 2 * DAY;
/// A file on more hosts than this is the estate's (an admin tool, a deployed service), not
/// one actor's.
pub(crate) const FILE_HOSTS: usize = 3;
/// Same outside address.
pub(crate) const REMOTE_GAP: i64 = 4 * DAY;
/// An outside address more of our hosts than this talk to is a service, not a C2.
pub(crate) const REMOTE_HOSTS: usize = 5;
/// A created account's later use.
pub(crate) const ACCOUNT_GAP: i64 = 5 * DAY;
/// The two ends of one connection (a flow and the host's record of it).
pub(crate) const CONNECTION_GAP: i64 = 10 * 60 * SECOND;
/// A client's address and port: the database's record of a session and the client's own
/// record of connecting (ephemeral ports come back, so only this close).
pub(crate) const ENDPOINT_GAP: i64 = 2 * 60 * SECOND;
/// A client's address alone: its connection to a database port and the session it opened.
pub(crate) const DB_CLIENT_GAP: i64 = 30 * SECOND;
/// Children of one web server this close belong to one operator: a server that serves pages
/// rarely starts processes, and a web shell's operator comes back to it within days.
pub(crate) const WEB_BURST_GAP: i64 = 3 * DAY;
/// An unflagged web-server child and the flagged command it sits beside.
pub(crate) const WEB_QUIET_GAP: i64 = 15 * MINUTE;
/// A departure and the arrival it caused.
pub(crate) const MOVE_WINDOW: i64 = 10 * SECOND;
/// A file the kernel wrote for an SMB client, and the client's arrival or flow.
pub(crate) const DROP_WINDOW: i64 = 60 * SECOND;
/// Partners one arrival may take.
pub(crate) const MOVE_PARTNERS: usize = 4;
/// The same process seen by Sysmon and by Security 4688.
pub(crate) const SAME_PROCESS: i64 = 2 * SECOND;

/// Union-find over node indices.
pub struct Components {
    parent: Vec<u32>,
}

impl Components {
    pub(crate) fn new(n: usize) -> Self {
        Components {
            parent: (0..n as u32).collect(),
        }
    }

    /// A new event, alone in its story.
    pub(crate) fn push(&mut self) {
        self.parent.push(self.parent.len() as u32);
    }

    /// Events given their roots (each root pointing at itself).
    pub(crate) fn from_roots(parent: Vec<u32>) -> Self {
        Components { parent }
    }

    pub fn len(&self) -> usize {
        self.parent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    pub fn root(&mut self, mut i: usize) -> usize {
        while self.parent[i] as usize != i {
            let p = self.parent[i] as usize;
            self.parent[i] = self.parent[p];
            i = p;
        }
        i
    }

    pub(crate) fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            // The older index stays the root, so results do not depend on merge order.
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent[hi] = lo as u32;
        }
    }
}

/// A host-to-host step: the departure on `from`, the arrival on `to`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Step {
    pub from: std::sync::Arc<str>,
    pub to: std::sync::Arc<str>,
    pub time: i64,
    #[serde(with = "crate::links::how")]
    pub how: crate::links::How,
    pub arrival: usize,
    pub departure: usize,
}

pub struct Graph {
    pub nodes: Vec<Node>,
    pub components: Components,
    pub steps: Vec<Step>,
    /// When `nodes` holds only some stories (the bounded linker's operations and strongest
    /// leads): the counts over all of them.
    pub totals: Option<Totals>,
    /// The routine's context of the stories left out (event, rule, reason).
    pub context: Vec<(crate::operations::EventRef, u32, String)>,
}

/// Counts over every story, when a graph holds only some.
#[derive(Debug, Clone, Copy, Default)]
pub struct Totals {
    pub events: usize,
    pub stories: usize,
    pub candidates: usize,
    pub leads: usize,
}

/// Links the nodes, which must be in time order. `assets` gives known (address, host) pairs;
/// `pairs` are nodes known to be one story already; `routine` tells the estate's routine
/// detections, which do not make a web server's children one operator's session.
pub fn build(
    mut nodes: Vec<Node>,
    assets: &[(String, String)],
    pairs: &[(usize, usize)],
    routine: Option<&crate::routine::Routine>,
) -> Graph {
    let host_of_ip = host_map(&nodes, assets);
    let resolve = |x: &str| -> Box<str> { host_of_ip.get(x).cloned().unwrap_or_else(|| x.into()) };
    for n in &mut nodes {
        resolve_host(n, &resolve);
    }
    let mut uf = Components::new(nodes.len());
    for &(a, b) in pairs {
        uf.union(a, b);
    }
    link_keys(&nodes, &mut uf);
    link_pids(&nodes, &mut uf);
    let children: Vec<WebChild> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| WebChild::of(i, n, &n.hits, routine))
        .collect();
    link_web_children(&children, &mut uf);
    let steps = link_movement(&nodes, &resolve, &mut uf);
    Graph {
        nodes,
        components: uf,
        steps,
        totals: None,
        context: Vec::new(),
    }
}

fn host_map(nodes: &[Node], assets: &[(String, String)]) -> HashMap<Box<str>, Box<str>> {
    let mut votes: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
    for n in nodes {
        if let Some(ip) = &n.host_ip {
            *votes.entry(ip).or_default().entry(&n.host).or_default() += 1;
        }
    }
    resolve_votes(votes, assets)
}

/// A node named by an address takes the host name that address resolves to.
pub(crate) fn resolve_host(n: &mut Node, resolve: &dyn Fn(&str) -> Box<str>) {
    if n.host.parse::<std::net::IpAddr>().is_ok() {
        n.host = std::sync::Arc::from(&*resolve(&n.host));
    }
}

/// Each address to the host seen using it most (ties to the first name), then the assets'.
pub(crate) fn resolve_votes<S: AsRef<str>>(
    votes: impl IntoIterator<Item = (S, BTreeMap<S, usize>)>,
    assets: &[(String, String)],
) -> HashMap<Box<str>, Box<str>> {
    let mut map: HashMap<Box<str>, Box<str>> = votes
        .into_iter()
        .filter_map(|(ip, hosts)| {
            let best = hosts
                .into_iter()
                .max_by(|(a, ca), (b, cb)| ca.cmp(cb).then_with(|| b.as_ref().cmp(a.as_ref())))?;
            Some((ip.as_ref().into(), best.0.as_ref().into()))
        })
        .collect();
    for (ip, host) in assets {
        map.entry(ip.as_str().into())
            .or_insert_with(|| crate::links::short_host(host));
    }
    map
}

/// Kinds of the keys that join events in groups.
pub(crate) const PROCESS: u8 = 0;
pub(crate) const SESSION: u8 = 1;
pub(crate) const FILE: u8 = 2;
pub(crate) const REMOTE: u8 = 3;
pub(crate) const CONNECTION: u8 = 4;
pub(crate) const ACCOUNT: u8 = 5;
pub(crate) const ENDPOINT: u8 = 6;
pub(crate) const DB_SESSION: u8 = 7;
pub(crate) const DB_CLIENT: u8 = 8;

/// The group a key puts its event in (kind, value), if any: accounts only when `created`.
pub(crate) fn group_of(k: &Key, created: impl Fn(&str) -> bool) -> Option<(u8, u64)> {
    Some(match k {
        Key::Process(g) => (PROCESS, *g),
        Key::Session(s) => (SESSION, *s),
        Key::File(f) => (FILE, *f),
        Key::Remote(r) => (REMOTE, crate::links::digest(&[r])),
        Key::Connection(c) => (CONNECTION, *c),
        Key::Account(a) | Key::AccountCreated(a) if created(a) => {
            (ACCOUNT, crate::links::digest(&[a]))
        }
        Key::Endpoint(e) => (ENDPOINT, *e),
        Key::DbSession(d) => (DB_SESSION, *d),
        Key::DbClient(c) => (DB_CLIENT, *c),
        _ => return None,
    })
}

/// How far apart consecutive members of a group may be and still link, for the kinds that
/// chain (the others join all members or none).
pub(crate) fn chain_gap(kind: u8) -> Option<i64> {
    match kind {
        FILE => Some(FILE_GAP),
        REMOTE => Some(REMOTE_GAP),
        CONNECTION => Some(CONNECTION_GAP),
        ACCOUNT => Some(ACCOUNT_GAP),
        ENDPOINT => Some(ENDPOINT_GAP),
        DB_CLIENT => Some(DB_CLIENT_GAP),
        _ => None,
    }
}

/// A host that counts toward an outside address's spread: ours (named, or a private address).
pub(crate) fn counts_for_remote(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .map_or(true, |_| is_private(host))
}

/// Whether a key belongs to its host (a pid, a session, a path) or is estate-wide.
pub(crate) fn scoped(k: &Key) -> bool {
    !matches!(
        k,
        Key::Remote(_)
            | Key::Account(_)
            | Key::AccountCreated(_)
            | Key::Connection(_)
            | Key::Endpoint(_)
            | Key::DbClient(_)
            | Key::DbSession(_)
    )
}

fn link_keys(nodes: &[Node], uf: &mut Components) {
    let created: FxHashSet<&str> = nodes
        .iter()
        .flat_map(|n| n.keys.iter())
        .filter_map(|k| match k {
            Key::AccountCreated(a) => Some(&**a),
            _ => None,
        })
        .collect();
    let service_sessions: FxHashSet<(&str, u64)> = nodes
        .iter()
        .flat_map(|n| {
            n.keys.iter().filter_map(move |k| match k {
                Key::ServiceSession(s) => Some((&*n.host, *s)),
                _ => None,
            })
        })
        .collect();
    // Files by the hosts that have them.
    let mut file_hosts: FxHashMap<u64, FxHashSet<&str>> = FxHashMap::default();
    for n in nodes {
        for k in &n.keys {
            if let Key::File(f) = k {
                let hosts = file_hosts.entry(*f).or_default();
                if hosts.len() <= FILE_HOSTS {
                    hosts.insert(&n.host);
                }
            }
        }
    }
    // (scope, kind, value) → member nodes in time order (nodes are sorted by time).
    let mut groups: FxHashMap<(&str, u8, u64), Vec<usize>> = FxHashMap::default();
    for (i, n) in nodes.iter().enumerate() {
        for k in &n.keys {
            let Some((kind, value)) = group_of(k, |a| created.contains(a)) else {
                continue;
            };
            let scope = if scoped(k) { &*n.host } else { "" };
            groups.entry((scope, kind, value)).or_default().push(i);
        }
    }
    // Components do not depend on the order of unions (the lower index stays the root).
    for ((scope, kind, value), members) in groups {
        let span = || {
            nodes[*members.last().unwrap_or(&0)].time - nodes[*members.first().unwrap_or(&0)].time
        };
        let links = match kind {
            SESSION => {
                let web_pool = members.iter().any(|&i| nodes[i].web_child);
                span() <= SESSION_SPAN && !web_pool && !service_sessions.contains(&(scope, value))
            }
            FILE => {
                let sessions: FxHashSet<u64> = members
                    .iter()
                    .flat_map(|&i| nodes[i].keys.iter())
                    .filter_map(|k| match k {
                        Key::Session(s) => Some(*s),
                        _ => None,
                    })
                    .collect();
                let spread = file_hosts.get(&value).map_or(0, |h| h.len());
                sessions.len() <= FILE_SESSIONS && spread <= FILE_HOSTS
            }
            REMOTE => {
                let hosts: HashSet<&str> = members
                    .iter()
                    .map(|&i| &*nodes[i].host)
                    .filter(|h| counts_for_remote(h))
                    .collect();
                hosts.len() <= REMOTE_HOSTS
            }
            // A session open for more than a week is a pool's, not one person's.
            DB_SESSION => span() <= SESSION_SPAN,
            _ => true,
        };
        if !links {
            continue;
        }
        match chain_gap(kind) {
            Some(gap) => chain(nodes, &members, gap, uf),
            None => union_all(&members, uf),
        }
    }
}

fn union_all(members: &[usize], uf: &mut Components) {
    for w in members.windows(2) {
        uf.union(w[0], w[1]);
    }
}

/// Links consecutive members no further apart than `gap`.
fn chain(nodes: &[Node], members: &[usize], gap: i64, uf: &mut Components) {
    for w in members.windows(2) {
        if nodes[w[1]].time - nodes[w[0]].time <= gap {
            uf.union(w[0], w[1]);
        }
    }
}

/// Security events name processes by pid: each reference goes to the latest process created
/// with that pid on that host before it; a Sysmon and a 4688 creation of the same pid at the
/// same moment are one process.
fn link_pids(nodes: &[Node], uf: &mut Components) {
    let mut latest: FxHashMap<(&str, u32), usize> = FxHashMap::default();
    // Nodes are in time order; creations before references at the same instant.
    let mut order: Vec<(i64, u8, usize, u32)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for k in &n.keys {
            match k {
                Key::PidCreated(p, _) => order.push((n.time, 0, i, *p)),
                Key::PidRef(p) => order.push((n.time, 1, i, *p)),
                _ => {}
            }
        }
    }
    order.sort_unstable();
    for (time, kind, i, pid) in order {
        let host = &*nodes[i].host;
        if kind == 0 {
            if let Some(&prev) = latest.get(&(host, pid)) {
                if time - nodes[prev].time <= SAME_PROCESS
                    && created_in(&nodes[prev]) != created_in(&nodes[i])
                {
                    uf.union(prev, i);
                }
            }
            latest.insert((host, pid), i);
        } else if let Some(&creator) = latest.get(&(host, pid)) {
            uf.union(creator, i);
        }
    }
}

/// The log that recorded a node's process creation.
fn created_in(n: &Node) -> Option<CreatedIn> {
    n.keys.iter().find_map(|k| match k {
        Key::PidCreated(_, log) => Some(*log),
        _ => None,
    })
}

/// A web-server child process, as the web-burst rule sees it.
pub(crate) struct WebChild {
    pub index: usize,
    pub time: i64,
    pub host: std::sync::Arc<str>,
    pub parent_image: Box<str>,
    /// It holds a detection the estate's routine does not explain.
    pub flagged: bool,
}

impl WebChild {
    /// `n` (at `index`, with `hits`) if it is a web server's child.
    pub(crate) fn of(
        index: usize,
        n: &Node,
        hits: &[u32],
        routine: Option<&crate::routine::Routine>,
    ) -> Option<WebChild> {
        let p = n.process.as_ref().filter(|_| n.web_child)?;
        Some(WebChild {
            index,
            time: n.time,
            host: n.host.clone(),
            parent_image: p.parent_image().into(),
            flagged: hits
                .iter()
                .any(|&h| routine.is_none_or(|r| r.verdict_of(h, n.actor, n.time).is_none())),
        })
    }
}

/// A web shell's commands are children of a server process that also serves everyone else,
/// so they do not link through it. Its flagged commands are one operator's session across a
/// wave's days; an unflagged child, or one the estate's routine explains (a nightly clean-up
/// job), joins the flagged command nearest in time if close, and bridges nothing: chained,
/// every day's job would join one wave to the next. `children` are in index order.
pub(crate) fn link_web_children(children: &[WebChild], uf: &mut Components) {
    // Per (host, server image): the flagged children, and the unflagged ones.
    type Server<'a> = (&'a str, &'a str);
    let mut bursts: BTreeMap<Server, (Vec<&WebChild>, Vec<&WebChild>)> = BTreeMap::new();
    for c in children {
        let e = bursts.entry((&c.host, &c.parent_image)).or_default();
        if c.flagged {
            e.0.push(c);
        } else {
            e.1.push(c);
        }
    }
    for (flagged, quiet) in bursts.values() {
        for w in flagged.windows(2) {
            if w[1].time - w[0].time <= WEB_BURST_GAP {
                uf.union(w[0].index, w[1].index);
            }
        }
        for q in quiet {
            let t = q.time;
            let at = flagged.partition_point(|c| c.time < t);
            let nearest = [at.checked_sub(1), Some(at)]
                .into_iter()
                .flatten()
                .filter_map(|k| flagged.get(k))
                .min_by_key(|c| (c.time - t).abs());
            if let Some(f) = nearest.filter(|c| (c.time - t).abs() <= WEB_QUIET_GAP) {
                uf.union(f.index, q.index);
            }
        }
    }
}

fn link_movement(
    nodes: &[Node],
    resolve: &dyn Fn(&str) -> Box<str>,
    uf: &mut Components,
) -> Vec<Step> {
    // Hosts and addresses as small ids; names only for the steps kept.
    let mut ids: FxHashMap<Box<str>, u32> = FxHashMap::default();
    let mut names: Vec<std::sync::Arc<str>> = Vec::new();
    let mut id_of = |x: &str| -> u32 {
        if let Some(&i) = ids.get(x) {
            return i;
        }
        let name = resolve(x);
        let i = match ids.get(&name) {
            Some(&i) => i,
            None => {
                names.push(std::sync::Arc::from(&*name));
                let i = names.len() as u32 - 1;
                ids.insert(name, i);
                i
            }
        };
        ids.insert(x.into(), i);
        i
    };
    // Departures by (from, to) and by destination alone, in time order.
    let mut by_pair: FxHashMap<(u32, u32), Vec<usize>> = FxHashMap::default();
    let mut by_dest: FxHashMap<u32, Vec<usize>> = FxHashMap::default();
    let mut arrivals: Vec<(usize, Option<u32>, u32, &'static str)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match &n.movement {
            Some(Movement::Departure { to }) => {
                let (from, to) = (id_of(&n.host), id_of(to));
                by_pair.entry((from, to)).or_default().push(i);
                by_dest.entry(to).or_default().push(i);
            }
            Some(Movement::Flow { from, to }) => {
                let (from, to) = (id_of(from), id_of(to));
                by_pair.entry((from, to)).or_default().push(i);
                by_dest.entry(to).or_default().push(i);
                arrivals.push((i, Some(from), to, "connection"));
            }
            Some(Movement::Arrival { from, how }) => {
                let from = from.as_deref().map(&mut id_of);
                let to = id_of(&n.host);
                if from.is_some() {
                    // Arrivals with a known origin are also what a kernel file write follows.
                    by_dest.entry(to).or_default().push(i);
                }
                arrivals.push((i, from, to, how));
            }
            None => {}
        }
    }
    let is_flow = |i: usize| matches!(nodes[i].movement, Some(Movement::Flow { .. }));
    let mut steps = Vec::new();
    let mut near: Vec<usize> = Vec::new();
    for (a, from, to, how) in arrivals {
        let t = nodes[a].time;
        let (list, before, after) = match from {
            Some(f) => (by_pair.get(&(f, to)), MOVE_WINDOW, MOVE_WINDOW),
            None => (by_dest.get(&to), DROP_WINDOW, MOVE_WINDOW),
        };
        let Some(list) = list else { continue };
        let lo = list.partition_point(|&i| nodes[i].time < t - before);
        near.clear();
        near.extend(
            list[lo..]
                .iter()
                .copied()
                .take_while(|&i| nodes[i].time <= t + after)
                .filter(|&i| i != a && !(is_flow(a) && is_flow(i))),
        );
        near.sort_by_key(|&i| (nodes[i].time - t).abs());
        for &d in near.iter().take(MOVE_PARTNERS) {
            uf.union(a, d);
            // A bare connection is no arrival: a scan touches hosts it never enters.
            if is_flow(a) {
                continue;
            }
            let src = match from {
                Some(f) => names[f as usize].clone(),
                None => nodes[d].host.clone(),
            };
            if *src != *names[to as usize] {
                steps.push(Step {
                    from: src,
                    to: names[to as usize].clone(),
                    time: t,
                    how,
                    arrival: a,
                    departure: d,
                });
            }
        }
    }
    steps
}
