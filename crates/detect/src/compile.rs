//! Building plans: atoms, automata, the plan tree (trigger sets are in `trigger`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use towerwatch_sigma::pattern::fold;
use towerwatch_sigma::{Cond, FieldTest, Matcher, Rule, Search, StrPattern};

use std::sync::{Mutex, RwLock};

use crate::trigger::{regex_literals, trigger_set};
use crate::{
    Automaton, Engine, FieldScanner, Node, PatternSet, Plan, PlanRule, Position, SlowLeaf,
    TrieBuilder,
};

/// The key that makes two literal tests the same atom.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct AtomKey {
    pub field: Option<String>,
    pub kind: AtomKind,
    pub cased: bool,
    pub text: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AtomKind {
    Exact,
    At(Position),
}

pub(crate) fn build(rules: Vec<Rule>, small_set: usize) -> Engine {
    // Channels named by any rule, in their rules' spelling, in a stable order.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for r in &rules {
        for route in &r.routes {
            if let Some(chs) = &route.channels {
                names.extend(chs.iter().cloned());
            }
        }
    }
    let mut channels = FxHashMap::default();
    let mut channels_folded = FxHashMap::default();
    let mut channel_names = Vec::new();
    for (i, ch) in names.into_iter().enumerate() {
        channels.insert(ch.as_str().into(), i as u32);
        channels_folded.insert(fold(&ch).into(), i as u32);
        channel_names.push(Some(ch));
    }
    channel_names.push(None);
    // Per channel, the rules whose log source can name it at all.
    let channel_rules = channel_names
        .iter()
        .map(|name| {
            (0..rules.len() as u32)
                .filter(|&i| {
                    rules[i as usize]
                        .routes
                        .iter()
                        .any(|r| r.admits_channel(name.as_deref()))
                })
                .collect()
        })
        .collect();
    let required_ids: Vec<Option<Box<[u32]>>> = rules.iter().map(required_event_ids).collect();
    // Rules for every event: no channel in any route, no event id anywhere.
    let global_rules = (0..rules.len() as u32)
        .filter(|&i| {
            let r = &rules[i as usize];
            required_ids[i as usize].is_none()
                && r.routes
                    .iter()
                    .all(|route| route.channels.is_none() && route.event_ids.is_none())
        })
        .collect();
    let shared_group = shared_groups(&rules, &required_ids);
    let mut field_ids = FxHashMap::default();
    for t in rules
        .iter()
        .flat_map(|r| r.searches.iter())
        .flat_map(|s| s.alternatives.iter().flatten())
    {
        if let Some(f) = &t.field {
            let next = field_ids.len() as u32;
            field_ids.entry(f.as_str().into()).or_insert(next);
        }
    }
    Engine {
        rules,
        channels,
        channels_folded,
        channel_names,
        channel_rules,
        required_ids,
        global_rules,
        field_ids,
        shared_group,
        small_set,
        routes: RwLock::new(FxHashMap::default()),
        by_rules: Mutex::new(FxHashMap::default()),
    }
}

/// The rules (indices, ascending) that can match an event of this channel and event id —
/// their log source admits it, and their condition does not require other event ids —
/// split into the large shared groups among them and the rest.
pub(crate) fn admitted(engine: &Engine, key: (u32, Option<u32>)) -> Vec<Vec<u32>> {
    let rules = admitted_rules(engine, key);
    let mut groups: BTreeMap<Option<u32>, Vec<u32>> = BTreeMap::new();
    for r in rules {
        groups
            .entry(engine.shared_group[r as usize])
            .or_default()
            .push(r);
    }
    groups.into_values().collect()
}

fn admitted_rules(engine: &Engine, key: (u32, Option<u32>)) -> Vec<u32> {
    if key == crate::GLOBAL {
        return engine.global_rules.clone();
    }
    let (channel, event_id) = key;
    let candidates = &engine.channel_rules[channel as usize];
    let channel = engine.channel_names[channel as usize].as_deref();
    let mut out = Vec::new();
    for &i in candidates {
        let (i, rule) = (i as usize, &engine.rules[i as usize]);
        let by_route = rule
            .routes
            .iter()
            .any(|route| route.admits(channel, event_id));
        let by_condition = match &engine.required_ids[i] {
            None => true,
            Some(ids) => event_id.is_some_and(|id| ids.contains(&id)),
        };
        if by_route && by_condition && !engine.global_rules.contains(&(i as u32)) {
            out.push(i as u32);
        }
    }
    out
}

/// What makes rules a group: their routes and the event ids their conditions require.
type Signature<'a> = (&'a [towerwatch_sigma::Route], Option<&'a [u32]>);

/// Groups this large are compiled once for every route they apply to.
const SHARED_GROUP_MIN: usize = 100;

/// Rules with the same log source and required event ids form a group; a large group
/// that applies to more than one (channel, event id) gets an id, so its plan is shared.
fn shared_groups(rules: &[Rule], required: &[Option<Box<[u32]>>]) -> Vec<Option<u32>> {
    let mut members: HashMap<Signature<'_>, Vec<usize>> = HashMap::new();
    for i in 0..rules.len() {
        members
            .entry((&rules[i].routes, required[i].as_deref()))
            .or_default()
            .push(i);
    }
    let mut out = vec![None; rules.len()];
    let mut next = 0u32;
    // Group ids in order of first member, so they do not depend on hashing.
    let mut groups: Vec<Vec<usize>> = members.into_values().collect();
    groups.sort();
    for list in groups {
        let r = &rules[list[0]];
        let spans = r.routes.len() > 1
            || r.routes
                .iter()
                .any(|route| route.event_ids.as_ref().is_none_or(|ids| ids.len() > 1));
        if list.len() >= SHARED_GROUP_MIN && spans {
            for i in list {
                out[i] = Some(next);
            }
            next += 1;
        }
    }
    out
}

/// The event ids a rule's condition cannot match without (`EventID: 4624` in every way the
/// condition can be true), or `None` when it does not pin them. The event's `event_id` is
/// the parse of its `EventID` field, so a rule outside its ids can never match it.
fn required_event_ids(rule: &Rule) -> Option<Box<[u32]>> {
    let searches: Vec<Option<BTreeSet<u32>>> = rule.searches.iter().map(search_ids).collect();
    cond_ids(&rule.condition, &searches).map(|s| s.into_iter().collect())
}

fn search_ids(s: &Search) -> Option<BTreeSet<u32>> {
    let mut union = BTreeSet::new();
    for tests in &s.alternatives {
        let mut alt: Option<BTreeSet<u32>> = None;
        for t in tests {
            if let Some(ids) = test_ids(t) {
                alt = Some(match alt {
                    None => ids,
                    Some(prev) => prev.intersection(&ids).copied().collect(),
                });
            }
        }
        union.extend(alt?);
    }
    Some(union)
}

fn test_ids(t: &FieldTest) -> Option<BTreeSet<u32>> {
    if t.field.as_deref() != Some("EventID") || (t.all && t.values.len() > 1) {
        return None;
    }
    let mut ids = BTreeSet::new();
    for alts in &t.values {
        for m in alts {
            match m {
                Matcher::Str {
                    pattern: StrPattern::Exact(v),
                    ..
                } => ids.insert(v.parse::<u32>().ok()?),
                _ => return None,
            };
        }
    }
    Some(ids)
}

fn cond_ids(c: &Cond, searches: &[Option<BTreeSet<u32>>]) -> Option<BTreeSet<u32>> {
    match c {
        Cond::Search(i) => searches[*i].clone(),
        Cond::Not(_) => None,
        Cond::And(items) => items
            .iter()
            .filter_map(|c| cond_ids(c, searches))
            .reduce(|a, b| a.intersection(&b).copied().collect()),
        Cond::Or(items) | Cond::AtLeast(_, items) => {
            if matches!(c, Cond::AtLeast(0, _)) {
                return None;
            }
            let mut all = BTreeSet::new();
            for c in items {
                all.extend(cond_ids(c, searches)?);
            }
            Some(all)
        }
    }
}

struct PlanBuilder<'a> {
    field_ids: &'a FxHashMap<Box<str>, u32>,
    atoms: HashMap<AtomKey, u32>,
    keys: Vec<AtomKey>,
    slow: Vec<SlowLeaf>,
}

pub(crate) fn build_plan(engine: &Engine, admitted: &[u32]) -> Plan {
    let (rules, small_set) = (&engine.rules, engine.small_set);
    let mut b = PlanBuilder {
        field_ids: &engine.field_ids,
        atoms: HashMap::new(),
        keys: Vec::new(),
        slow: Vec::new(),
    };
    let mut plan_rules = Vec::new();
    for &i in admitted {
        let rule = &rules[i as usize];
        let searches: Vec<Node> = rule.searches.iter().map(|s| b.search(s)).collect();
        let mut root = simplify(cond_node(&rule.condition, &searches));
        cheap_first(&mut root);
        plan_rules.push(PlanRule {
            rule: i as usize,
            root,
        });
    }
    let atom_count = b.keys.len();
    let mut triggers = vec![Vec::new(); atom_count];
    let mut always = Vec::new();
    for (ri, pr) in plan_rules.iter().enumerate() {
        match trigger_set(&pr.root, &b.keys) {
            Some((set, _)) => set
                .into_iter()
                .for_each(|a| triggers[a as usize].push(ri as u32)),
            None => always.push(ri as u32),
        }
    }
    // Scanners per field.
    let mut fields: HashMap<Option<String>, Vec<(u32, &AtomKey)>> = HashMap::new();
    for (id, key) in b.keys.iter().enumerate() {
        fields
            .entry(key.field.clone())
            .or_default()
            .push((id as u32, key));
    }
    // Keyword atoms apply to every field: each field's scanner carries them too, so a value
    // is scanned once; the keyword-only scanner serves fields no rule names.
    // Substring keywords are searched once per event, in all its values joined by NULs
    // (a pattern without NUL matches the joined text exactly where it matches a value).
    let (joined, keyword_atoms): (Vec<_>, Vec<_>) = fields
        .remove(&None)
        .unwrap_or_default()
        .into_iter()
        .partition(|(_, k)| {
            k.kind == AtomKind::At(Position::Contains) && !k.cased && !k.text.contains('\0')
        });
    let keywords_joined = (!joined.is_empty())
        .then(|| scanner(&joined, small_set))
        .and_then(|sc| sc.folded);
    let keywords = (!keyword_atoms.is_empty()).then(|| scanner(&keyword_atoms, small_set));
    let mut field_scanners = Vec::new();
    let mut slot = vec![crate::NONE; engine.field_ids.len()];
    for (field, mut atoms) in fields {
        atoms.extend_from_slice(&keyword_atoms);
        if let Some(f) = field {
            let id = engine.field_ids[f.as_str()];
            slot[id as usize] = field_scanners.len() as u32;
            field_scanners.push(scanner(&atoms, small_set));
        }
    }
    // Atom lists of ORs become groups, one bit each (after the trigger sets, which read
    // the atoms).
    let mut grouping = Grouping {
        atom_groups: vec![Vec::new(); atom_count],
        ids: HashMap::new(),
    };
    for pr in &mut plan_rules {
        grouping.collapse(&mut pr.root);
    }
    Plan {
        groups: grouping.ids.len(),
        atom_groups: grouping.atom_groups,
        rules: plan_rules,
        fields: field_scanners,
        slot,
        keywords,
        keywords_joined,
        triggers,
        always,
        slow: b.slow,
        atoms: atom_count,
    }
}

/// Up to this many patterns a field is searched pattern by pattern.
pub(crate) const SMALL_SET: usize = 12;

/// Up to this many substring patterns are searched leftmost-first (with the automaton's
/// prefilters); more are searched in one overlapping pass.
const LEFTMOST_PATTERNS: usize = 300;

/// Distinct patterns of one automaton, each with the atoms it stands for.
#[derive(Default)]
struct PatternTable {
    patterns: Vec<String>,
    owners: Vec<Vec<(u32, Position)>>,
    index: HashMap<String, usize>,
}

impl PatternTable {
    fn add(&mut self, text: &str, atom: u32, pos: Position) {
        let p = match self.index.get(text) {
            Some(&p) => p,
            None => {
                self.patterns.push(text.to_string());
                self.owners.push(Vec::new());
                self.index.insert(text.to_string(), self.patterns.len() - 1);
                self.patterns.len() - 1
            }
        };
        self.owners[p].push((atom, pos));
    }

    fn build(self, small_set: usize) -> Option<Automaton> {
        if self.patterns.is_empty() {
            return None;
        }
        if self.patterns.len() <= small_set {
            return Some(Automaton::Small {
                patterns: self.patterns,
                atoms: self.owners,
            });
        }
        // Prefixes and suffixes need one walk from the start (or the end) of the value;
        // only substrings need a search through all of it.
        let (mut patterns, mut atoms) = (Vec::new(), Vec::new());
        let (mut prefix, mut suffix) = (TrieBuilder::default(), TrieBuilder::default());
        for (pattern, owners) in self.patterns.iter().zip(&self.owners) {
            let of = |pos| -> Vec<u32> {
                owners
                    .iter()
                    .filter(|(_, p)| *p == pos)
                    .map(|(a, _)| *a)
                    .collect()
            };
            let anywhere = of(Position::Contains);
            if !anywhere.is_empty() {
                patterns.push(pattern.as_bytes());
                atoms.push(anywhere);
            }
            let starts = of(Position::Prefix);
            if !starts.is_empty() {
                prefix.insert(pattern.bytes(), &starts);
            }
            let ends = of(Position::Suffix);
            if !ends.is_empty() {
                suffix.insert(pattern.bytes().rev(), &ends);
            }
        }
        let contains = (!patterns.is_empty()).then(|| {
            if patterns.len() > LEFTMOST_PATTERNS {
                return PatternSet::Overlapping {
                    ac: build_ac(&patterns, MatchKind::Standard),
                    atoms,
                };
            }
            let mut starts = TrieBuilder::default();
            for (p, a) in patterns.iter().zip(&atoms) {
                starts.insert(p.iter().copied(), a);
            }
            PatternSet::Leftmost {
                ac: build_ac(&patterns, MatchKind::LeftmostFirst),
                starts: starts.build(),
            }
        });
        let useful = |t: TrieBuilder| t.has_atoms().then(|| Box::new(t.build()));
        Some(Automaton::Large {
            contains,
            prefix: useful(prefix),
            suffix: useful(suffix),
        })
    }
}

fn build_ac(patterns: &[&[u8]], match_kind: MatchKind) -> AhoCorasick {
    // A contiguous NFA, not a DFA: on the SigmaHQ rules it builds plans 25% faster and
    // searches as fast (measured with `examples/engine_profile`), its tables being smaller.
    AhoCorasick::builder()
        .match_kind(match_kind)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(patterns)
        .expect("literal patterns always build")
}

fn scanner(atoms: &[(u32, &AtomKey)], small_set: usize) -> FieldScanner {
    let mut sc = FieldScanner::default();
    let (mut folded, mut cased) = (PatternTable::default(), PatternTable::default());
    for &(id, key) in atoms {
        match key.kind {
            AtomKind::Exact => {
                let table = if key.cased {
                    &mut sc.exact_cased
                } else {
                    &mut sc.exact_folded
                };
                table.entry(key.text.as_str().into()).or_default().push(id);
            }
            AtomKind::At(pos) if key.cased => cased.add(&key.text, id, pos),
            AtomKind::At(pos) => folded.add(&key.text, id, pos),
        }
    }
    sc.folded = folded.build(small_set);
    sc.cased = cased.build(small_set);
    sc
}

/// Splices nested ORs into their OR parent and nested ANDs into their AND parent, and
/// replaces one-child ORs and ANDs by the child: `Field: [a, b, c]` becomes one flat OR of
/// atoms, which [`Grouping`] can turn into a single bit.
fn simplify(node: Node) -> Node {
    match node {
        Node::Or(items) => splice(items, Node::Or, |n| match n {
            Node::Or(inner) => Ok(inner),
            other => Err(other),
        }),
        Node::And(items) => splice(items, Node::And, |n| match n {
            Node::And(inner) => Ok(inner),
            other => Err(other),
        }),
        Node::Not(inner) => Node::Not(Box::new(simplify(*inner))),
        Node::AtLeast(k, items) => Node::AtLeast(k, items.into_iter().map(simplify).collect()),
        leaf => leaf,
    }
}

/// Simplifies the children of an AND (or OR), splicing in those of the same kind (`same`
/// gives their children back), and rebuilds it with `wrap` unless one child is left.
fn splice(
    items: Vec<Node>,
    wrap: fn(Vec<Node>) -> Node,
    same: fn(Node) -> Result<Vec<Node>, Node>,
) -> Node {
    let mut flat = Vec::with_capacity(items.len());
    for n in items.into_iter().map(simplify) {
        match same(n) {
            Ok(inner) => flat.extend(inner),
            Err(other) => flat.push(other),
        }
    }
    if flat.len() == 1 {
        flat.pop().unwrap_or_else(|| wrap(Vec::new()))
    } else {
        wrap(flat)
    }
}

/// Numbers the OR-of-atoms lists of a plan.
struct Grouping {
    atom_groups: Vec<Vec<u32>>,
    ids: HashMap<Vec<u32>, u32>,
}

impl Grouping {
    /// Lists shorter than this are walked: a couple of bit tests cost less than marking.
    const MIN: usize = 3;

    fn collapse(&mut self, node: &mut Node) {
        match node {
            Node::Or(items)
                if items.len() >= Self::MIN && items.iter().all(|n| matches!(n, Node::Atom(_))) =>
            {
                let mut atoms: Vec<u32> = items
                    .iter()
                    .filter_map(|n| {
                        if let Node::Atom(a) = n {
                            Some(*a)
                        } else {
                            None
                        }
                    })
                    .collect();
                atoms.sort_unstable();
                atoms.dedup();
                let next = self.ids.len() as u32;
                let id = *self.ids.entry(atoms.clone()).or_insert(next);
                if id == next {
                    atoms
                        .iter()
                        .for_each(|&a| self.atom_groups[a as usize].push(id));
                }
                *node = Node::AnyOf(id);
            }
            Node::Not(inner) => self.collapse(inner),
            Node::And(items) | Node::Or(items) | Node::AtLeast(_, items) => {
                items.iter_mut().for_each(|n| self.collapse(n))
            }
            Node::Atom(_) | Node::AnyOf(_) | Node::Slow(_) => {}
        }
    }
}

/// Orders the children of every AND/OR so that bit lookups come before slow leaves (regexes,
/// CIDRs, …): the evaluation short-circuits before reaching them more often. Both are
/// commutative and side-effect free, so the verdict is unchanged.
fn cheap_first(node: &mut Node) -> usize {
    match node {
        Node::Atom(_) | Node::AnyOf(_) => 0,
        Node::Slow(_) => 1,
        Node::Not(inner) => cheap_first(inner),
        Node::And(items) | Node::Or(items) | Node::AtLeast(_, items) => {
            let mut costed: Vec<(usize, Node)> = items
                .drain(..)
                .map(|mut n| (cheap_first(&mut n), n))
                .collect();
            costed.sort_by_key(|(cost, _)| *cost);
            let total = costed.iter().map(|(c, _)| c).sum();
            items.extend(costed.into_iter().map(|(_, n)| n));
            total
        }
    }
}

fn cond_node(c: &Cond, searches: &[Node]) -> Node {
    match c {
        Cond::Search(i) => searches[*i].clone(),
        Cond::And(items) => Node::And(items.iter().map(|c| cond_node(c, searches)).collect()),
        Cond::Or(items) => Node::Or(items.iter().map(|c| cond_node(c, searches)).collect()),
        Cond::Not(inner) => Node::Not(Box::new(cond_node(inner, searches))),
        Cond::AtLeast(k, items) => {
            Node::AtLeast(*k, items.iter().map(|c| cond_node(c, searches)).collect())
        }
    }
}

impl PlanBuilder<'_> {
    fn search(&mut self, s: &Search) -> Node {
        Node::Or(
            s.alternatives
                .iter()
                .map(|tests| Node::And(tests.iter().map(|t| self.field_test(t)).collect()))
                .collect(),
        )
    }

    fn field_test(&mut self, t: &FieldTest) -> Node {
        let values = t
            .values
            .iter()
            .map(|alts| {
                Node::Or(
                    alts.iter()
                        .map(|m| self.leaf(t.field.as_deref(), m))
                        .collect(),
                )
            })
            .collect();
        if t.all {
            Node::And(values)
        } else {
            Node::Or(values)
        }
    }

    fn atom(&mut self, field: Option<&str>, kind: AtomKind, cased: bool, text: &str) -> Node {
        let key = AtomKey {
            field: field.map(String::from),
            kind,
            cased,
            text: text.to_string(),
        };
        let next = self.keys.len() as u32;
        let id = *self.atoms.entry(key.clone()).or_insert(next);
        if id == next {
            self.keys.push(key);
        }
        Node::Atom(id)
    }

    fn slow(&mut self, field: Option<&str>, m: &Matcher) -> Node {
        self.slow.push(SlowLeaf {
            field: field.map(String::from),
            field_id: field
                .and_then(|f| self.field_ids.get(f).copied())
                .unwrap_or(crate::NONE),
            matcher: m.clone(),
        });
        Node::Slow(self.slow.len() as u32 - 1)
    }

    fn leaf(&mut self, field: Option<&str>, m: &Matcher) -> Node {
        if let Matcher::Regex(re) = m {
            // A regex implies one of its required literals: those are its triggers.
            let slow = self.slow(field, m);
            return match regex_literals(re.as_str()) {
                Some((lits, folded)) => {
                    let any = lits
                        .iter()
                        .map(|l| self.atom(field, AtomKind::At(Position::Contains), !folded, l))
                        .collect();
                    Node::And(vec![Node::Or(any), slow])
                }
                None => slow,
            };
        }
        let Matcher::Str { pattern, cased } = m else {
            return self.slow(field, m);
        };
        let cased = *cased;
        match pattern {
            // Keywords on an exact value still scan every field: same as any other atom.
            StrPattern::Exact(s) => self.atom(field, AtomKind::Exact, cased, s),
            StrPattern::Prefix(s) if !s.is_empty() => {
                self.atom(field, AtomKind::At(Position::Prefix), cased, s)
            }
            StrPattern::Suffix(s) if !s.is_empty() => {
                self.atom(field, AtomKind::At(Position::Suffix), cased, s)
            }
            StrPattern::Contains(s) if !s.is_empty() => {
                self.atom(field, AtomKind::At(Position::Contains), cased, s)
            }
            StrPattern::Glob(_) => {
                // A glob implies its longest literal: that atom is its trigger.
                let slow = self.slow(field, m);
                match pattern.required_literal() {
                    Some(lit) if !lit.is_empty() => {
                        let need = self.atom(field, AtomKind::At(Position::Contains), cased, lit);
                        Node::And(vec![need, slow])
                    }
                    _ => slow,
                }
            }
            // Empty prefix/suffix/contains: any non-null value.
            _ => self.slow(field, m),
        }
    }
}
