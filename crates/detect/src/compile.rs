//! Building plans: atoms, automata, trigger sets.

use std::collections::{BTreeSet, HashMap};

use aho_corasick::{AhoCorasick, MatchKind};
use towerwatch_sigma::pattern::fold;
use towerwatch_sigma::{Cond, FieldTest, Matcher, Rule, Search, StrPattern};

use crate::{Automaton, Engine, FieldScanner, Node, Plan, PlanRule, Position, SlowLeaf};

/// The key that makes two literal tests the same atom.
#[derive(Clone, PartialEq, Eq, Hash)]
struct AtomKey {
    field: Option<String>,
    kind: AtomKind,
    cased: bool,
    text: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum AtomKind {
    Exact,
    At(Position),
}

pub(crate) fn build(rules: Vec<Rule>) -> Engine {
    // Channels named by any rule, in their rules' spelling, in a stable order.
    let mut channels: BTreeSet<String> = BTreeSet::new();
    for r in &rules {
        for route in &r.routes {
            if let Some(chs) = &route.channels {
                channels.extend(chs.iter().cloned());
            }
        }
    }
    let mut plan_list = Vec::new();
    let mut plans = HashMap::new();
    let mut plans_folded = HashMap::new();
    for ch in &channels {
        plans.insert(ch.as_str().into(), plan_list.len());
        plans_folded.insert(fold(ch).into(), plan_list.len());
        plan_list.push(build_plan(&rules, Some(ch)));
    }
    let default_plan = plan_list.len();
    plan_list.push(build_plan(&rules, None));
    let max_atoms = plan_list.iter().map(|p| p.atoms).max().unwrap_or(0);
    let max_rules = plan_list.iter().map(|p| p.rules.len()).max().unwrap_or(0);
    Engine {
        rules,
        plans,
        plans_folded,
        plan_list,
        default_plan,
        max_atoms,
        max_rules,
    }
}

/// The event ids a rule admits on a channel: `None` when any id is admitted, `Some` with
/// the union otherwise; the outer `None` when the rule does not apply to the channel.
fn admitted_ids(rule: &Rule, channel: Option<&str>) -> Option<Option<Box<[u32]>>> {
    let mut ids: Vec<u32> = Vec::new();
    let mut applies = false;
    for route in &rule.routes {
        let on_channel = match (&route.channels, channel) {
            (None, _) => true,
            (Some(list), Some(c)) => list.iter().any(|l| l.eq_ignore_ascii_case(c)),
            (Some(_), None) => false,
        };
        if !on_channel {
            continue;
        }
        applies = true;
        match &route.event_ids {
            None => return Some(None),
            Some(list) => ids.extend(list),
        }
    }
    applies.then(|| {
        ids.sort_unstable();
        ids.dedup();
        Some(ids.into_boxed_slice())
    })
}

struct PlanBuilder {
    atoms: HashMap<AtomKey, u32>,
    keys: Vec<AtomKey>,
    slow: Vec<SlowLeaf>,
}

fn build_plan(rules: &[Rule], channel: Option<&str>) -> Plan {
    let mut b = PlanBuilder {
        atoms: HashMap::new(),
        keys: Vec::new(),
        slow: Vec::new(),
    };
    let mut plan_rules = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(event_ids) = admitted_ids(rule, channel) else {
            continue;
        };
        let searches: Vec<Node> = rule.searches.iter().map(|s| b.search(s)).collect();
        let root = cond_node(&rule.condition, &searches);
        plan_rules.push(PlanRule {
            rule: i,
            event_ids,
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
    let mut field_scanners = HashMap::new();
    let mut keywords = None;
    for (field, atoms) in fields {
        let scanner = scanner(&atoms);
        match field {
            Some(f) => {
                field_scanners.insert(f.into_boxed_str(), scanner);
            }
            None => keywords = Some(scanner),
        }
    }
    Plan {
        rules: plan_rules,
        fields: field_scanners,
        keywords,
        triggers,
        always,
        slow: b.slow,
        atoms: atom_count,
    }
}

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

    fn build(self) -> Option<Automaton> {
        if self.patterns.is_empty() {
            return None;
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&self.patterns)
            .expect("literal patterns always build");
        Some(Automaton {
            ac,
            atoms: self.owners,
        })
    }
}

fn scanner(atoms: &[(u32, &AtomKey)]) -> FieldScanner {
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
    sc.folded = folded.build();
    sc.cased = cased.build();
    sc
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

impl PlanBuilder {
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
            matcher: m.clone(),
        });
        Node::Slow(self.slow.len() as u32 - 1)
    }

    fn leaf(&mut self, field: Option<&str>, m: &Matcher) -> Node {
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

/// Fields that tell little: an atom on them alone makes a poor trigger.
const ROUTING_FIELDS: &[&str] = &[
    "EventID",
    "Channel",
    "Provider_Name",
    "Level",
    "Task",
    "Opcode",
    "Keywords",
];

fn atom_cost(k: &AtomKey) -> u32 {
    if k.field
        .as_deref()
        .is_some_and(|f| ROUTING_FIELDS.contains(&f))
    {
        return 1000;
    }
    match k.text.len() {
        0..=2 => 100,
        3..=4 => 10,
        _ => 1,
    }
}

/// Atoms of which at least one is true whenever the node is true, with the set's cost;
/// `None` when no such set exists.
fn trigger_set(node: &Node, keys: &[AtomKey]) -> Option<(BTreeSet<u32>, u32)> {
    match node {
        Node::Atom(a) => Some((BTreeSet::from([*a]), atom_cost(&keys[*a as usize]))),
        Node::Slow(_) | Node::Not(_) => None,
        Node::And(items) => items
            .iter()
            .filter_map(|n| trigger_set(n, keys))
            .min_by_key(|(_, cost)| *cost),
        Node::Or(items) | Node::AtLeast(_, items) => {
            if matches!(node, Node::AtLeast(0, _)) {
                return None;
            }
            let mut set = BTreeSet::new();
            let mut cost = 0u32;
            for n in items {
                let (s, c) = trigger_set(n, keys)?;
                set.extend(s);
                cost = cost.saturating_add(c);
            }
            if items.is_empty() {
                // An empty OR is false; an empty AND was handled above.
                return Some((set, 0));
            }
            Some((set, cost))
        }
    }
}
