//! The compiled Sigma engine.
//!
//! Chainsaw and Hayabusa test every rule of a log source against every event. This engine
//! compiles the whole rule set once:
//!
//! 1. rules are grouped into *plans* by the (channel, event id) they can match — event ids
//!    from the log source and from the condition itself (`EventID: 4624`) — so an event meets
//!    only the rules that can apply to it. Plans are compiled on first use; large groups that
//!    several routes share (process creation: Sysmon 1 and Security 4688) are compiled once;
//! 2. every literal string test becomes an *atom* on a field — exact, prefix, suffix or
//!    contains, folded or cased; a plan keeps, per field, a hash table of exact values, tries
//!    for prefixes and suffixes and an Aho-Corasick automaton for substrings over all atoms of
//!    all its rules, so each field value of an event is read a fixed number of times
//!    whatever the number of rules;
//! 3. from each rule's condition a *trigger set* is derived: atoms of which at least one must
//!    be true for the rule to match (a regex contributes literals that every match
//!    contains). A rule is evaluated only when one of its triggers hit; rules without a
//!    trigger set (only negations, say) are evaluated always.
//!
//! Tests that are not literals (regex, CIDR, numbers, `exists`, `null`, field references,
//! inner wildcards) stay as *slow leaves*, evaluated lazily with the reference semantics of
//! `towerwatch-sigma`. The engine's verdict is checked against [`Rule::matches`] (the plain
//! reference evaluator) in the differential tests.
//!
//! ```
//! use towerwatch_detect::Engine;
//! use towerwatch_event::{Event, Origin, Value};
//! use towerwatch_sigma::parse_rules;
//!
//! let yaml = "title: t\nlogsource: {product: windows, service: security}\n\
//!             detection: {sel: {EventID: 1102}, condition: sel}\n";
//! let engine = Engine::new(vec![parse_rules(yaml, "t.yml").remove(0).unwrap()]);
//! let mut scratch = engine.scratch();
//! let mut event = Event::new(Origin::record("Security.evtx", 1));
//! event.set_channel("Security");
//! event.set_event_id(1102);
//! assert_eq!(engine.matches(&event, &mut scratch), &[0]);
//! ```

mod compile;
mod trigger;

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, Input};
use rustc_hash::FxHashMap as HashMap;
use towerwatch_event::{alias_table, aliases_in, Event};
use towerwatch_sigma::pattern::{fold, fold_append};
use towerwatch_sigma::{Matcher, Rule};

/// A compiled rule set.
pub struct Engine {
    rules: Vec<Rule>,
    /// Channels named by the rules, exactly as spelled, to their index.
    channels: HashMap<Box<str>, u32>,
    /// The same by folded name, for exports that change case.
    channels_folded: HashMap<Box<str>, u32>,
    /// Channel names by index; the last entry (`None`) stands for every other channel.
    channel_names: Vec<Option<String>>,
    /// Per channel index, the rules whose log source can admit that channel.
    channel_rules: Vec<Vec<u32>>,
    /// Per rule, the event ids its condition requires (`EventID: 4624`), if it pins any.
    required_ids: Vec<Option<Box<[u32]>>>,
    /// Rules that apply to every event (sorted); they live in the [`GLOBAL`] plan only.
    global_rules: Vec<u32>,
    /// Every field name a rule tests, numbered: events are matched against the ids once,
    /// and plans index their scanners by id.
    field_ids: HashMap<Box<str>, u32>,
    /// Per rule, its group if it belongs to a large group shared by several routes.
    shared_group: Vec<Option<u32>>,
    small_set: usize,
    /// Plans are compiled when the first event of their (channel, event id) arrives:
    /// evidence seldom holds every log source, and start-up is part of every run.
    routes: RwLock<HashMap<RouteKey, Route>>,
    /// Compiled plans by the rules they hold: routes with the same rules share one plan.
    /// Each plan is compiled once by the first thread that needs it; threads that need
    /// other plans meanwhile compile those in parallel.
    by_rules: Mutex<HashMap<Vec<u32>, PlanCell>>,
}

/// (channel index, event id)
type RouteKey = (u32, Option<u32>);

/// A plan compiled on first use.
type PlanCell = Arc<OnceLock<Arc<Plan>>>;

/// No field id / no scanner.
const NONE: u32 = u32::MAX;

/// The plans an event of one route meets: large rule groups that several routes share
/// (process creation is Sysmon 1 and Security 4688) compiled once, and the rest.
type Route = Arc<[Arc<Plan>]>;

/// The key of the plan holding the rules that apply to every event (no channel, no event
/// id: `product: windows` keyword rules).
const GLOBAL: RouteKey = (u32::MAX, None);

/// The rules that can apply to one channel, compiled together.
pub(crate) struct Plan {
    rules: Vec<PlanRule>,
    /// Scanners of the fields this plan's rules test, in `slot` order.
    fields: Vec<FieldScanner>,
    /// Per engine field id, the index of its scanner in `fields` ([`NONE`] if none).
    slot: Vec<u32>,
    /// Atoms on any field (Sigma keywords), for fields without a scanner of their own
    /// (the field scanners include the keyword atoms).
    keywords: Option<FieldScanner>,
    /// Folded substring keywords, searched in all of an event's values at once.
    keywords_joined: Option<Automaton>,
    /// For each atom, the plan rules it triggers.
    triggers: Vec<Vec<u32>>,
    /// Plan rules without a trigger set.
    always: Vec<u32>,
    slow: Vec<SlowLeaf>,
    atoms: usize,
    /// For each atom, the [`Node::AnyOf`] groups it belongs to.
    atom_groups: Vec<Vec<u32>>,
    groups: usize,
}

pub(crate) struct PlanRule {
    rule: usize,
    root: Node,
}

/// A condition compiled to atoms and slow leaves.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Atom(u32),
    /// Any of a group of atoms (an OR of atoms), decided by one bit that the atoms set when
    /// they hit, instead of a walk through the list.
    AnyOf(u32),
    Slow(u32),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    AtLeast(usize, Vec<Node>),
}

pub(crate) struct SlowLeaf {
    field: Option<String>,
    /// The field's id ([`NONE`] for keywords).
    field_id: u32,
    matcher: Matcher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Position {
    Contains,
    Prefix,
    Suffix,
}

/// The atoms of one field: exact values in hash tables, the rest in automata.
#[derive(Default)]
pub(crate) struct FieldScanner {
    exact_folded: HashMap<Box<str>, Vec<u32>>,
    exact_cased: HashMap<Box<str>, Vec<u32>>,
    folded: Option<Automaton>,
    cased: Option<Automaton>,
}

pub(crate) enum Automaton {
    /// A few patterns, tested one by one: an automaton costs more to build than a few
    /// substring searches cost to run, and small plans are many.
    Small {
        patterns: Vec<String>,
        /// Per pattern: the atoms it stands for and where they must sit.
        atoms: Vec<Vec<(u32, Position)>>,
    },
    Large {
        /// Search through the value.
        contains: Option<PatternSet>,
        /// Walk from the value's start.
        prefix: Option<Box<Trie>>,
        /// Reversed patterns, walked from the value's end.
        suffix: Option<Box<Trie>>,
    },
}

/// Substring patterns, searched one of two ways.
pub(crate) enum PatternSet {
    /// Few patterns: the automaton finds the leftmost match, which is where at least
    /// one pattern starts; a trie walk from there sets every pattern that starts at that
    /// position; the search goes on one byte further. Every position where a pattern starts
    /// is reached (the leftmost match never lies past it), and the leftmost search uses the
    /// automaton's fast prefilters, which an overlapping search cannot.
    Leftmost { ac: AhoCorasick, starts: Trie },
    /// Many patterns: one overlapping pass, without the rescans that dense matches cause the
    /// leftmost search.
    Overlapping {
        ac: AhoCorasick,
        atoms: Vec<Vec<u32>>,
    },
}

/// Per-thread working memory for [`Engine::matches`].
pub struct Scratch {
    atoms: Vec<u64>,
    set: Vec<u32>,
    groups: Vec<u64>,
    groups_set: Vec<u32>,
    seen_rules: Vec<u64>,
    candidates: Vec<u32>,
    out: Vec<usize>,
    plans: HashMap<RouteKey, Route>,
    prepared: Prepared,
}

/// An event's field values as every plan reads them: folded once, joined by NULs (the text
/// substring keywords search), with each value's field ids resolved once.
#[derive(Default)]
struct Prepared {
    folded: String,
    fields: Vec<PreparedField>,
}

struct PreparedField {
    /// Index into the event's fields.
    index: u32,
    /// The folded value is `folded[start..end]`.
    start: u32,
    end: u32,
    /// The field's id, and the id of the Sigma name it is an alias of ([`NONE`] if none).
    own: u32,
    alias: u32,
}

/// Sizes of the compiled rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStats {
    pub rules: usize,
    pub plans: usize,
    pub atoms: usize,
    pub automata: usize,
    pub slow_leaves: usize,
    /// Rule entries (over all plans) evaluated on every event of their plan.
    pub always_evaluated: usize,
}

impl Engine {
    /// Compiles rules. Rules refused by the parser never reach here; every rule given is run.
    pub fn new(rules: Vec<Rule>) -> Engine {
        compile::build(rules, compile::SMALL_SET)
    }

    /// As [`Engine::new`], searching fields with up to `small_set` patterns pattern by
    /// pattern instead of with an automaton (tests drive both paths with it).
    #[doc(hidden)]
    pub fn with_small_set(rules: Vec<Rule>, small_set: usize) -> Engine {
        compile::build(rules, small_set)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            atoms: Vec::new(),
            set: Vec::new(),
            groups: Vec::new(),
            groups_set: Vec::new(),
            seen_rules: Vec::new(),
            candidates: Vec::new(),
            out: Vec::new(),
            plans: HashMap::default(),
            prepared: Prepared::default(),
        }
    }

    /// Sizes of the plans compiled so far (all of them after [`Engine::compile_all`]).
    pub fn stats(&self) -> EngineStats {
        let cells = self.by_rules.lock().unwrap_or_else(|e| e.into_inner());
        let plans: Vec<&Arc<Plan>> = cells.values().filter_map(|c| c.get()).collect();
        let mut s = EngineStats {
            rules: self.rules.len(),
            plans: plans.len(),
            atoms: 0,
            automata: 0,
            slow_leaves: 0,
            always_evaluated: 0,
        };
        for p in plans {
            s.atoms += p.atoms;
            s.slow_leaves += p.slow.len();
            s.always_evaluated += p.always.len();
            let scanners = p.fields.iter().chain(p.keywords.iter());
            s.automata += scanners
                .map(|f| f.folded.is_some() as usize + f.cased.is_some() as usize)
                .sum::<usize>();
        }
        s
    }

    /// Compiles the plans of every (channel, event id) the rules name, as a rule check does.
    pub fn compile_all(&self) {
        self.route(GLOBAL);
        // Every event id a log source or a condition names, and none.
        let mut ids: Vec<Option<u32>> = vec![None];
        for r in &self.rules {
            for route in &r.routes {
                ids.extend(route.event_ids.iter().flatten().map(|&i| Some(i)));
            }
        }
        ids.extend(
            self.required_ids
                .iter()
                .flatten()
                .flat_map(|l| l.iter().map(|&i| Some(i))),
        );
        ids.sort_unstable();
        ids.dedup();
        for ci in 0..self.channel_names.len() as u32 {
            for &id in &ids {
                self.route((ci, id));
            }
        }
    }

    fn channel_index(&self, channel: Option<&str>) -> u32 {
        let other = self.channel_names.len() as u32 - 1;
        match channel {
            None => other,
            Some(c) => match self.channels.get(c) {
                Some(&i) => i,
                None => *self.channels_folded.get(&*fold(c)).unwrap_or(&other),
            },
        }
    }

    fn route(&self, key: RouteKey) -> Route {
        if let Some(r) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return r.clone();
        }
        let route: Route = compile::admitted(self, key)
            .into_iter()
            .map(|rules| {
                let cell = self
                    .by_rules
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(rules.clone())
                    .or_default()
                    .clone();
                cell.get_or_init(|| Arc::new(compile::build_plan(self, &rules)))
                    .clone()
            })
            .collect();
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, route.clone());
        route
    }

    /// The indices (into [`Engine::rules`]) of the rules that match the event, ascending.
    pub fn matches<'s>(&self, event: &Event, scratch: &'s mut Scratch) -> &'s [usize] {
        scratch.out.clear();
        let route = (self.channel_index(event.channel.as_deref()), event.event_id);
        let mut prepared = false;
        // The event's route, then the rules that apply to every event whatever its log
        // source (compiled once instead of into every route's plan).
        for key in [route, GLOBAL] {
            let plans = match scratch.plans.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let p = self.route(key);
                    scratch.plans.insert(key, p.clone());
                    p
                }
            };
            for plan in plans.iter().filter(|p| !p.rules.is_empty()) {
                if !prepared {
                    self.prepare(event, scratch);
                    prepared = true;
                }
                self.match_plan(plan, event, scratch);
            }
        }
        scratch.out.sort_unstable();
        &scratch.out
    }

    /// Appends the plan's rules that match the event to `scratch.out`.
    fn match_plan(&self, plan: &Plan, event: &Event, scratch: &mut Scratch) {
        scratch.fit(plan);
        self.scan(plan, event, scratch);
        // Candidates: rules triggered by a true atom, and rules without triggers.
        scratch.candidates.clear();
        for &a in &scratch.set {
            for &r in &plan.triggers[a as usize] {
                mark(&mut scratch.seen_rules, &mut scratch.candidates, r);
            }
        }
        for &r in &scratch.candidates {
            scratch.seen_rules[r as usize / 64] = 0;
        }
        scratch.candidates.extend_from_slice(&plan.always);
        scratch.candidates.sort_unstable();
        scratch.candidates.dedup();
        if !scratch.candidates.is_empty() && plan.groups > 0 {
            for &a in &scratch.set {
                for &g in &plan.atom_groups[a as usize] {
                    mark(&mut scratch.groups, &mut scratch.groups_set, g);
                }
            }
        }
        for &r in &scratch.candidates {
            let pr = &plan.rules[r as usize];
            let subject = Subject {
                atoms: &scratch.atoms,
                groups: &scratch.groups,
                event,
                prepared: &scratch.prepared,
            };
            if eval(&pr.root, plan, &subject) {
                scratch.out.push(pr.rule);
            }
        }
        for &a in &scratch.set {
            scratch.atoms[a as usize / 64] = 0;
        }
        scratch.set.clear();
        for &g in &scratch.groups_set {
            scratch.groups[g as usize / 64] = 0;
        }
        scratch.groups_set.clear();
    }

    /// The reference verdict for the same event: every rule, [`Rule::matches`].
    pub fn reference_matches(&self, event: &Event) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].matches(event))
            .collect()
    }

    fn prepare(&self, event: &Event, scratch: &mut Scratch) {
        let table = alias_table(event.channel.as_deref(), event.event_id);
        let prepared = &mut scratch.prepared;
        prepared.folded.clear();
        prepared.fields.clear();
        let id = |name: &str| self.field_ids.get(name).copied().unwrap_or(NONE);
        for (index, f) in event.fields.iter().enumerate() {
            let Some(text) = f.value.as_str() else {
                continue;
            };
            let start = prepared.folded.len() as u32;
            fold_append(text, &mut prepared.folded);
            let end = prepared.folded.len() as u32;
            prepared.folded.push('\0');
            let alias = aliases_in(table, &f.name).first().map_or(NONE, |a| id(a));
            prepared.fields.push(PreparedField {
                index: index as u32,
                start,
                end,
                own: id(&f.name),
                alias,
            });
        }
    }

    fn scan(&self, plan: &Plan, event: &Event, scratch: &mut Scratch) {
        let prepared = std::mem::take(&mut scratch.prepared);
        for p in &prepared.fields {
            let text = event.fields[p.index as usize]
                .value
                .as_str()
                .unwrap_or_default();
            let value = Value {
                text,
                folded: &prepared.folded[p.start as usize..p.end as usize],
            };
            // Field scanners carry the other keyword atoms too.
            let mut keywords_done = false;
            for id in [p.own, p.alias] {
                if id == NONE {
                    continue;
                }
                let slot = plan.slot[id as usize];
                if slot != NONE {
                    plan.fields[slot as usize].scan(&value, scratch);
                    keywords_done = true;
                }
            }
            if let (Some(kw), false) = (&plan.keywords, keywords_done) {
                kw.scan(&value, scratch);
            }
        }
        if let Some(am) = &plan.keywords_joined {
            am.scan(&prepared.folded, scratch);
        }
        scratch.prepared = prepared;
    }
}

/// A field value as written and folded.
struct Value<'a> {
    text: &'a str,
    folded: &'a str,
}

/// Sets bit `i` and lists `i` if the bit was clear (the list is what clearing walks).
#[inline]
fn mark(bits: &mut [u64], listed: &mut Vec<u32>, i: u32) {
    let (w, b) = (i as usize / 64, i as usize % 64);
    if bits[w] & (1 << b) == 0 {
        bits[w] |= 1 << b;
        listed.push(i);
    }
}

impl Scratch {
    fn fit(&mut self, plan: &Plan) {
        let (atoms, rules) = (plan.atoms.div_ceil(64), plan.rules.len().div_ceil(64));
        let groups = plan.groups.div_ceil(64);
        if self.groups.len() < groups {
            self.groups.resize(groups, 0);
        }
        if self.atoms.len() < atoms {
            self.atoms.resize(atoms, 0);
        }
        if self.seen_rules.len() < rules {
            self.seen_rules.resize(rules, 0);
        }
    }

    #[inline]
    fn set(&mut self, atom: u32) {
        mark(&mut self.atoms, &mut self.set, atom);
    }
}

impl FieldScanner {
    fn scan(&self, v: &Value<'_>, scratch: &mut Scratch) {
        // Hashing a long value costs more than the lookup: only when there are exact atoms.
        if !self.exact_folded.is_empty() {
            if let Some(atoms) = self.exact_folded.get(v.folded) {
                atoms.iter().for_each(|&a| scratch.set(a));
            }
        }
        if let Some(am) = &self.folded {
            am.scan(v.folded, scratch);
        }
        if !self.exact_cased.is_empty() {
            if let Some(atoms) = self.exact_cased.get(v.text) {
                atoms.iter().for_each(|&a| scratch.set(a));
            }
        }
        if let Some(am) = &self.cased {
            am.scan(v.text, scratch);
        }
    }
}

impl Automaton {
    fn scan(&self, text: &str, scratch: &mut Scratch) {
        match self {
            Automaton::Small { patterns, atoms } => scan_each(patterns, atoms, text, scratch),
            Automaton::Large {
                contains,
                prefix,
                suffix,
            } => {
                match contains {
                    Some(PatternSet::Leftmost { ac, starts }) => {
                        let hay = text.as_bytes();
                        let mut at = 0;
                        while let Some(m) = ac.find(Input::new(hay).range(at..)) {
                            starts.walk(hay[m.start()..].iter().copied(), scratch);
                            at = m.start() + 1;
                        }
                    }
                    Some(PatternSet::Overlapping { ac, atoms }) => {
                        for m in ac.find_overlapping_iter(text) {
                            atoms[m.pattern().as_usize()]
                                .iter()
                                .for_each(|&a| scratch.set(a));
                        }
                    }
                    None => {}
                }
                if let Some(trie) = prefix {
                    trie.walk(text.bytes(), scratch);
                }
                if let Some(trie) = suffix {
                    trie.walk(text.bytes().rev(), scratch);
                }
            }
        }
    }
}

/// A byte trie for anchored patterns: one walk from the value's start (or end, with
/// reversed patterns) finds every pattern that sits there, in at most as many steps as the
/// longest such pattern has bytes.
///
/// Built by [`TrieBuilder`] and then packed: children and atoms of all nodes live in three
/// flat arrays, so a plan's tries take a fifth of the memory a node-per-allocation trie took
/// (10 MB of the SigmaHQ plans' peak) and a walk stays in a few cache lines.
#[derive(Default)]
pub(crate) struct Trie {
    /// Per node, where its children start in `edge_bytes`/`edge_targets` and where its
    /// atoms start in `atoms`; one extra entry closes the last node's ranges.
    starts: Vec<(u32, u32)>,
    /// Children's bytes, sorted within each node, and the nodes they lead to.
    edge_bytes: Vec<u8>,
    edge_targets: Vec<u32>,
    /// Atoms of the patterns that end at each node.
    atoms: Vec<u32>,
}

/// A trie being built, one allocation per node.
#[derive(Default)]
pub(crate) struct TrieBuilder {
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    /// Children sorted by byte.
    next: Vec<(u8, u32)>,
    /// Atoms of the patterns that end here.
    atoms: Vec<u32>,
}

impl TrieBuilder {
    pub(crate) fn insert(&mut self, pattern: impl Iterator<Item = u8>, atoms: &[u32]) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut at = 0usize;
        for b in pattern {
            at = match self.nodes[at].next.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => self.nodes[at].next[i].1 as usize,
                Err(i) => {
                    let id = self.nodes.len() as u32;
                    self.nodes.push(TrieNode::default());
                    self.nodes[at].next.insert(i, (b, id));
                    id as usize
                }
            };
        }
        self.nodes[at].atoms.extend_from_slice(atoms);
    }

    pub(crate) fn has_atoms(&self) -> bool {
        self.nodes.iter().any(|n| !n.atoms.is_empty())
    }

    pub(crate) fn build(self) -> Trie {
        let edges: usize = self.nodes.iter().map(|n| n.next.len()).sum();
        let atoms: usize = self.nodes.iter().map(|n| n.atoms.len()).sum();
        let mut t = Trie {
            starts: Vec::with_capacity(self.nodes.len() + 1),
            edge_bytes: Vec::with_capacity(edges),
            edge_targets: Vec::with_capacity(edges),
            atoms: Vec::with_capacity(atoms),
        };
        for n in &self.nodes {
            t.starts
                .push((t.edge_bytes.len() as u32, t.atoms.len() as u32));
            t.edge_bytes.extend(n.next.iter().map(|&(b, _)| b));
            t.edge_targets.extend(n.next.iter().map(|&(_, to)| to));
            t.atoms.extend_from_slice(&n.atoms);
        }
        t.starts
            .push((t.edge_bytes.len() as u32, t.atoms.len() as u32));
        t
    }
}

impl Trie {
    fn walk(&self, bytes: impl Iterator<Item = u8>, scratch: &mut Scratch) {
        if self.starts.len() < 2 {
            return;
        }
        let mut at = 0usize;
        for b in bytes {
            let (from, to) = (self.starts[at].0 as usize, self.starts[at + 1].0 as usize);
            match self.edge_bytes[from..to].binary_search(&b) {
                Ok(i) => at = self.edge_targets[from + i] as usize,
                Err(_) => return,
            }
            let (from, to) = (self.starts[at].1 as usize, self.starts[at + 1].1 as usize);
            self.atoms[from..to].iter().for_each(|&a| scratch.set(a));
        }
    }
}

fn scan_each(
    patterns: &[String],
    owners: &[Vec<(u32, Position)>],
    text: &str,
    scratch: &mut Scratch,
) {
    for (pattern, owners) in patterns.iter().zip(owners) {
        let (mut prefix, mut suffix, mut anywhere) = (None, None, None);
        for &(atom, pos) in owners {
            let hit = match pos {
                Position::Prefix => {
                    *prefix.get_or_insert_with(|| text.starts_with(pattern.as_str()))
                }
                Position::Suffix => *suffix.get_or_insert_with(|| text.ends_with(pattern.as_str())),
                Position::Contains => {
                    *anywhere.get_or_insert_with(|| text.contains(pattern.as_str()))
                }
            };
            if hit {
                scratch.set(atom);
            }
        }
    }
}

/// What a condition is evaluated against: the atoms that hit, and the event (prepared).
struct Subject<'a> {
    atoms: &'a [u64],
    groups: &'a [u64],
    event: &'a Event,
    prepared: &'a Prepared,
}

fn eval(node: &Node, plan: &Plan, subject: &Subject<'_>) -> bool {
    match node {
        Node::Atom(a) => subject.atoms[*a as usize / 64] & (1 << (a % 64)) != 0,
        Node::AnyOf(g) => subject.groups[*g as usize / 64] & (1 << (g % 64)) != 0,
        Node::Slow(s) => plan.slow[*s as usize].matches(subject),
        Node::And(items) => items.iter().all(|n| eval(n, plan, subject)),
        Node::Or(items) => items.iter().any(|n| eval(n, plan, subject)),
        Node::Not(inner) => !eval(inner, plan, subject),
        Node::AtLeast(k, items) => {
            let mut hits = 0;
            for n in items {
                if eval(n, plan, subject) {
                    hits += 1;
                    if hits >= *k {
                        return true;
                    }
                }
            }
            false
        }
    }
}

impl SlowLeaf {
    /// The reference semantics of `Matcher::matches_field`; tests of a value's text read the
    /// prepared values of the field's id instead of searching the event by name.
    fn matches(&self, s: &Subject<'_>) -> bool {
        let by_value = matches!(
            self.matcher,
            Matcher::Str { .. } | Matcher::Regex(_) | Matcher::Cidr(_) | Matcher::Compare(..)
        );
        if !by_value || self.field_id == NONE {
            return self.matcher.matches_field(s.event, self.field.as_deref());
        }
        s.prepared
            .fields
            .iter()
            .filter(|p| p.own == self.field_id || p.alias == self.field_id)
            .any(|p| match &self.matcher {
                Matcher::Str {
                    pattern,
                    cased: false,
                } => pattern.matches(&s.prepared.folded[p.start as usize..p.end as usize]),
                m => m.matches_text(
                    s.event.fields[p.index as usize]
                        .value
                        .as_str()
                        .unwrap_or_default(),
                ),
            })
    }
}
