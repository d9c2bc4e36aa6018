//! Trigger sets: the atoms of which one must be true for a rule to match (from its
//! condition), the literals every match of a regex contains, and what atoms cost.

use std::collections::BTreeSet;

use crate::compile::AtomKey;
use crate::Node;

/// Literals of which every match of the regex contains one, when there are few and long
/// enough to serve as triggers; `folded` when they are to be found in the folded value
/// (the regex is case-insensitive as a whole).
///
/// Any match of a concatenation `c1 c2 … cn` contains a match of each tail `ci … cn`, so
/// the prefix literals of any tail will do; the tail whose literals are the most selective
/// (longest shortest literal) is taken.
pub(crate) fn regex_literals(pattern: &str) -> Option<(Vec<String>, bool)> {
    use regex_syntax::hir::{Hir, HirKind};
    // `(?i)` over the whole regex: take literals from the case-sensitive reading and look
    // for them, lowercased, in the folded value (ASCII literals fold position by position).
    let (pattern, folded) = match strip_leading_case_flag(pattern) {
        Some(p) => (p, true),
        None => (pattern.to_string(), false),
    };
    let hir = regex_syntax::Parser::new().parse(&pattern).ok()?;
    let tails: Vec<Hir> = match hir.kind() {
        HirKind::Concat(items) => (0..items.len())
            .map(|i| Hir::concat(items[i..].to_vec()))
            .collect(),
        _ => vec![hir.clone()],
    };
    let mut best: Option<(usize, Vec<String>)> = None;
    for tail in &tails {
        let mut extractor = regex_syntax::hir::literal::Extractor::new();
        extractor.limit_total(64);
        let seq = extractor.extract(tail);
        let Some(lits) = seq.literals() else { continue };
        if lits.is_empty() || lits.len() > 64 {
            continue;
        }
        let texts: Option<Vec<String>> = lits
            .iter()
            .map(|l| std::str::from_utf8(l.as_bytes()).ok().map(str::to_string))
            .collect();
        let Some(mut texts) = texts else { continue };
        if folded {
            if !texts.iter().all(|t| t.is_ascii()) {
                continue;
            }
            texts.iter_mut().for_each(|t| t.make_ascii_lowercase());
        }
        let shortest = texts.iter().map(|t| trigger_strength(t)).min().unwrap_or(0);
        if shortest > best.as_ref().map_or(0, |b| b.0) {
            best = Some((shortest, texts));
        }
    }
    best.map(|(_, lits)| (lits, folded))
}

/// How well a literal serves as a trigger: 0 (useless) for empty or short common text; a
/// single punctuation character (a backtick, a brace) is rare enough in command lines.
fn trigger_strength(lit: &str) -> usize {
    match lit.len() {
        0 => 0,
        1 | 2
            if lit
                .chars()
                .all(|c| c.is_alphanumeric() || c.is_whitespace()) =>
        {
            0
        }
        n => n,
    }
}

/// The pattern without a leading `(?i…)` flag group's `i`, when case-insensitivity covers
/// the whole regex (no `(?-i` inside).
fn strip_leading_case_flag(pattern: &str) -> Option<String> {
    let rest = pattern.strip_prefix("(?")?;
    let end = rest.find(')')?;
    let flags = &rest[..end];
    if !flags.contains('i')
        || !flags.chars().all(|c| "imsxU".contains(c))
        || pattern.contains("(?-i")
    {
        return None;
    }
    let kept: String = flags.chars().filter(|&c| c != 'i').collect();
    let body = &rest[end + 1..];
    Some(if kept.is_empty() {
        body.to_string()
    } else {
        format!("(?{kept}){body}")
    })
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
    let by_length = match k.text.len() {
        0..=2 => 100,
        3..=4 => 10,
        _ => 1,
    };
    // A program's name is a weak trigger: the same few images (powershell.exe, cmd.exe)
    // run all day, while command lines, paths and script text vary.
    let by_field = match k.field.as_deref() {
        Some(f) if COMMON_VALUE_FIELDS.contains(&f) => 8,
        _ => 1,
    };
    by_length * by_field
}

/// Fields whose values repeat across many events.
const COMMON_VALUE_FIELDS: &[&str] = &[
    "Image",
    "ParentImage",
    "OriginalFileName",
    "Product",
    "Company",
    "Description",
    "User",
    "ParentUser",
    "IntegrityLevel",
    "Signed",
    "SignatureStatus",
    "Signature",
    "Provider_Name",
    "ServiceName",
    "SourceImage",
    "ImageLoaded",
];

/// Atoms of which at least one is true whenever the node is true, with the set's cost;
/// `None` when no such set exists.
pub(crate) fn trigger_set(node: &Node, keys: &[AtomKey]) -> Option<(BTreeSet<u32>, u32)> {
    match node {
        Node::Atom(a) => Some((BTreeSet::from([*a]), atom_cost(&keys[*a as usize]))),
        Node::Slow(_) | Node::Not(_) | Node::AnyOf(_) => None,
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
