//! The compiled Sigma engine.
//!
//! Chainsaw and Hayabusa test every rule of a log source against every event. This engine
//! compiles the whole rule set once:
//!
//! 1. rules are grouped by channel into [`Plan`]s, so an event meets only the rules that can
//!    apply to its channel (event ids are checked per rule before any evaluation);
//! 2. every literal string test becomes an *atom* on a field — exact, prefix, suffix or
//!    contains, folded or cased; a plan keeps, per field, one Aho-Corasick automaton (and one
//!    hash table for exact values) over all atoms of all its rules, so each field value of an
//!    event is scanned once whatever the number of rules;
//! 3. from each rule's condition a *trigger set* is derived: atoms of which at least one must
//!    be true for the rule to match. A rule is evaluated only when one of its triggers hit;
//!    rules without a trigger set (only negations or regexes, say) are evaluated always.
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

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use towerwatch_event::{sigma_aliases, Event};
use towerwatch_sigma::pattern::fold;
use towerwatch_sigma::{Matcher, Rule};

/// A compiled rule set.
pub struct Engine {
    rules: Vec<Rule>,
    /// Plans by channel exactly as the rules spell it.
    plans: HashMap<Box<str>, usize>,
    /// Plans by folded channel, for exports that change case.
    plans_folded: HashMap<Box<str>, usize>,
    plan_list: Vec<Plan>,
    /// The plan for channels no rule names: rules without a channel constraint.
    default_plan: usize,
    max_atoms: usize,
    max_rules: usize,
}

/// The rules that can apply to one channel, compiled together.
pub(crate) struct Plan {
    rules: Vec<PlanRule>,
    fields: HashMap<Box<str>, FieldScanner>,
    /// Atoms on any field (Sigma keywords).
    keywords: Option<FieldScanner>,
    /// For each atom, the plan rules it triggers.
    triggers: Vec<Vec<u32>>,
    /// Plan rules without a trigger set.
    always: Vec<u32>,
    slow: Vec<SlowLeaf>,
    atoms: usize,
}

pub(crate) struct PlanRule {
    rule: usize,
    event_ids: Option<Box<[u32]>>,
    root: Node,
}

/// A condition compiled to atoms and slow leaves.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Atom(u32),
    Slow(u32),
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    AtLeast(usize, Vec<Node>),
}

pub(crate) struct SlowLeaf {
    field: Option<String>,
    matcher: Matcher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Position {
    Prefix,
    Suffix,
    Contains,
}

/// The atoms of one field: exact values in hash tables, the rest in automata.
#[derive(Default)]
pub(crate) struct FieldScanner {
    exact_folded: HashMap<Box<str>, Vec<u32>>,
    exact_cased: HashMap<Box<str>, Vec<u32>>,
    folded: Option<Automaton>,
    cased: Option<Automaton>,
}

pub(crate) struct Automaton {
    ac: AhoCorasick,
    /// Per pattern: the atoms it stands for and where they must sit.
    atoms: Vec<Vec<(u32, Position)>>,
}

/// Per-thread working memory for [`Engine::matches`].
pub struct Scratch {
    atoms: Vec<u64>,
    set: Vec<u32>,
    seen_rules: Vec<u64>,
    candidates: Vec<u32>,
    out: Vec<usize>,
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
        compile::build(rules)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            atoms: vec![0; self.max_atoms.div_ceil(64)],
            set: Vec::new(),
            seen_rules: vec![0; self.max_rules.div_ceil(64)],
            candidates: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn stats(&self) -> EngineStats {
        let mut s = EngineStats {
            rules: self.rules.len(),
            plans: self.plan_list.len(),
            atoms: 0,
            automata: 0,
            slow_leaves: 0,
            always_evaluated: 0,
        };
        for p in &self.plan_list {
            s.atoms += p.atoms;
            s.slow_leaves += p.slow.len();
            s.always_evaluated += p.always.len();
            let scanners = p.fields.values().chain(p.keywords.iter());
            s.automata += scanners
                .map(|f| f.folded.is_some() as usize + f.cased.is_some() as usize)
                .sum::<usize>();
        }
        s
    }

    fn plan_for(&self, channel: Option<&str>) -> &Plan {
        let idx = match channel {
            None => self.default_plan,
            Some(c) => match self.plans.get(c) {
                Some(&i) => i,
                None => *self
                    .plans_folded
                    .get(&*fold(c))
                    .unwrap_or(&self.default_plan),
            },
        };
        &self.plan_list[idx]
    }

    /// The indices (into [`Engine::rules`]) of the rules that match the event, ascending.
    pub fn matches<'s>(&self, event: &Event, scratch: &'s mut Scratch) -> &'s [usize] {
        scratch.out.clear();
        let plan = self.plan_for(event.channel.as_deref());
        if plan.rules.is_empty() {
            return &scratch.out;
        }
        self.scan(plan, event, scratch);
        // Candidates: rules triggered by a true atom, and rules without triggers.
        scratch.candidates.clear();
        for &a in &scratch.set {
            for &r in &plan.triggers[a as usize] {
                let (w, b) = (r as usize / 64, r as usize % 64);
                if scratch.seen_rules[w] & (1 << b) == 0 {
                    scratch.seen_rules[w] |= 1 << b;
                    scratch.candidates.push(r);
                }
            }
        }
        for &r in &scratch.candidates {
            scratch.seen_rules[r as usize / 64] = 0;
        }
        scratch.candidates.extend_from_slice(&plan.always);
        scratch.candidates.sort_unstable();
        scratch.candidates.dedup();
        for &r in &scratch.candidates {
            let pr = &plan.rules[r as usize];
            if let (Some(ids), Some(id)) = (&pr.event_ids, event.event_id) {
                if !ids.contains(&id) {
                    continue;
                }
            } else if pr.event_ids.is_some() {
                continue;
            }
            if eval(&pr.root, plan, &scratch.atoms, event) {
                scratch.out.push(pr.rule);
            }
        }
        for &a in &scratch.set {
            scratch.atoms[a as usize / 64] = 0;
        }
        scratch.set.clear();
        scratch.out.sort_unstable();
        &scratch.out
    }

    /// The reference verdict for the same event: every rule, [`Rule::matches`].
    pub fn reference_matches(&self, event: &Event) -> Vec<usize> {
        (0..self.rules.len())
            .filter(|&i| self.rules[i].matches(event))
            .collect()
    }

    fn scan(&self, plan: &Plan, event: &Event, scratch: &mut Scratch) {
        let channel = event.channel.as_deref();
        for f in &event.fields {
            let Some(text) = f.value.as_str() else {
                continue;
            };
            if !plan.fields.is_empty() {
                if let Some(sc) = plan.fields.get(&f.name) {
                    sc.scan(text, scratch);
                }
                for alias in sigma_aliases(channel, event.event_id, &f.name) {
                    if let Some(sc) = plan.fields.get(*alias) {
                        sc.scan(text, scratch);
                    }
                }
            }
            if let Some(kw) = &plan.keywords {
                kw.scan(text, scratch);
            }
        }
    }
}

impl Scratch {
    #[inline]
    fn set(&mut self, atom: u32) {
        let (w, b) = (atom as usize / 64, atom as usize % 64);
        if self.atoms[w] & (1 << b) == 0 {
            self.atoms[w] |= 1 << b;
            self.set.push(atom);
        }
    }
}

impl FieldScanner {
    fn scan(&self, text: &str, scratch: &mut Scratch) {
        if !self.exact_folded.is_empty() || self.folded.is_some() {
            let folded = fold(text);
            if let Some(atoms) = self.exact_folded.get(&*folded) {
                atoms.iter().for_each(|&a| scratch.set(a));
            }
            if let Some(am) = &self.folded {
                am.scan(&folded, scratch);
            }
        }
        if let Some(atoms) = self.exact_cased.get(text) {
            atoms.iter().for_each(|&a| scratch.set(a));
        }
        if let Some(am) = &self.cased {
            am.scan(text, scratch);
        }
    }
}

impl Automaton {
    fn scan(&self, text: &str, scratch: &mut Scratch) {
        let len = text.len();
        for m in self.ac.find_overlapping_iter(text) {
            for &(atom, pos) in &self.atoms[m.pattern().as_usize()] {
                let ok = match pos {
                    Position::Contains => true,
                    Position::Prefix => m.start() == 0,
                    Position::Suffix => m.end() == len,
                };
                if ok {
                    scratch.set(atom);
                }
            }
        }
    }
}

fn eval(node: &Node, plan: &Plan, atoms: &[u64], event: &Event) -> bool {
    match node {
        Node::Atom(a) => atoms[*a as usize / 64] & (1 << (a % 64)) != 0,
        Node::Slow(s) => {
            let leaf = &plan.slow[*s as usize];
            leaf.matcher.matches_field(event, leaf.field.as_deref())
        }
        Node::And(items) => items.iter().all(|n| eval(n, plan, atoms, event)),
        Node::Or(items) => items.iter().any(|n| eval(n, plan, atoms, event)),
        Node::Not(inner) => !eval(inner, plan, atoms, event),
        Node::AtLeast(k, items) => {
            let mut hits = 0;
            for n in items {
                if eval(n, plan, atoms, event) {
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
