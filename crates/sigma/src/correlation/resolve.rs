//! References (by id or name) to rules and correlations, resolved to indices.

use std::collections::HashMap;

use super::Correlation;
use crate::rule::{RefusalKind, RuleError};
use crate::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Member {
    Rule(usize),
    Correlation(usize),
}

/// Resolves every correlation's references, by id first and then by name. A correlation with
/// an unknown reference, in a cycle, or built on a refused one gets `None` and a refusal.
pub fn resolve(
    rules: &[Rule],
    correlations: &[Correlation],
) -> (Vec<Option<Vec<Member>>>, Vec<RuleError>) {
    let mut by_key: HashMap<&str, Member> = HashMap::new();
    // Names first, so an id wins when a name and an id collide.
    for (i, r) in rules.iter().enumerate() {
        if let Some(n) = &r.name {
            by_key.entry(n).or_insert(Member::Rule(i));
        }
    }
    for (i, c) in correlations.iter().enumerate() {
        if let Some(n) = &c.name {
            by_key.entry(n).or_insert(Member::Correlation(i));
        }
    }
    for (i, r) in rules.iter().enumerate() {
        if !r.id.is_empty() {
            by_key.insert(&r.id, Member::Rule(i));
        }
    }
    for (i, c) in correlations.iter().enumerate() {
        if !c.id.is_empty() {
            by_key.insert(&c.id, Member::Correlation(i));
        }
    }
    let mut members: Vec<Option<Vec<Member>>> = Vec::with_capacity(correlations.len());
    let mut reasons: Vec<Option<String>> = vec![None; correlations.len()];
    for (i, c) in correlations.iter().enumerate() {
        let mut list = Vec::new();
        for r in &c.rules {
            match by_key.get(r.as_str()) {
                Some(&m) if m == Member::Correlation(i) => {
                    reasons[i] = Some("refers to itself".into());
                }
                Some(&m) => list.push(m),
                None => reasons[i] = Some(format!("refers to '{r}', which is not loaded")),
            }
        }
        members.push(reasons[i].is_none().then_some(list));
    }
    // Refuse cycles and anything built on a refused correlation, until nothing changes.
    loop {
        let mut changed = false;
        for i in 0..correlations.len() {
            let Some(list) = &members[i] else { continue };
            let bad = list.iter().find_map(|m| match m {
                Member::Correlation(j) if members[*j].is_none() => Some(*j),
                _ => None,
            });
            if let Some(j) = bad {
                reasons[i] = Some(format!(
                    "refers to correlation '{}', which was refused",
                    correlations[j].title
                ));
                members[i] = None;
                changed = true;
            } else if reaches(&members, i, i, &mut vec![false; correlations.len()]) {
                reasons[i] = Some("is part of a reference cycle".into());
                members[i] = None;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let refused = reasons
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.map(|reason| RuleError {
                path: correlations[i].path.clone(),
                line: Some(correlations[i].line),
                column: Some(1),
                title: Some(correlations[i].title.clone()),
                kind: RefusalKind::Invalid,
                reason: format!("correlation {reason}"),
            })
        })
        .collect();
    (members, refused)
}

/// Whether correlation `from` reaches `target` through its references.
fn reaches(members: &[Option<Vec<Member>>], from: usize, target: usize, seen: &mut [bool]) -> bool {
    let Some(list) = &members[from] else {
        return false;
    };
    for m in list {
        if let Member::Correlation(j) = *m {
            if j == target {
                return true;
            }
            if !seen[j] {
                seen[j] = true;
                if reaches(members, j, target, seen) {
                    return true;
                }
            }
        }
    }
    false
}

/// The ways a correlation's `pos`-th reference is known, for `aliases`.
pub(super) fn member_names<'a>(
    c: &'a Correlation,
    pos: usize,
    name: Option<&'a str>,
    id: &'a str,
) -> Vec<&'a str> {
    let mut names = vec![c.rules[pos].as_str()];
    names.extend(name);
    if !id.is_empty() {
        names.push(id);
    }
    names
}

/// The ways every reference of a correlation is known, for `aliases`: the reference as
/// written, the referenced rule's `name` and its `id`.
pub fn reference_names<'a>(
    c: &'a Correlation,
    members: &[Member],
    rules: &'a [Rule],
    correlations: &'a [Correlation],
) -> Vec<Vec<&'a str>> {
    members
        .iter()
        .enumerate()
        .map(|(pos, m)| match *m {
            Member::Rule(r) => member_names(c, pos, rules[r].name.as_deref(), &rules[r].id),
            Member::Correlation(k) => {
                member_names(c, pos, correlations[k].name.as_deref(), &correlations[k].id)
            }
        })
        .collect()
}
