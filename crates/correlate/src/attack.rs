//! MITRE ATT&CK Enterprise, vendored in compact form (`data/attack.json`, made by
//! `scripts/vendor-attack.py` from the ATT&CK STIX bundle): tactics in matrix order,
//! techniques with their tactics, and groups with the techniques ATT&CK records them using.
//! Attribution ranks groups by how much of an operation's technique set they share.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub struct Tactic {
    pub id: String,
    /// The name ATT&CK tags use: `credential-access`.
    pub short: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct Technique {
    pub id: String,
    pub name: String,
    pub tactics: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub techniques: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Attack {
    pub attack_version: String,
    pub tactics: Vec<Tactic>,
    pub techniques: Vec<Technique>,
    pub groups: Vec<Group>,
    #[serde(skip)]
    by_id: HashMap<String, usize>,
}

/// One candidate actor for a set of techniques.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Candidate {
    pub group: String,
    pub id: String,
    pub aliases: Vec<String>,
    /// Weighted cosine similarity of the technique sets, 0–1.
    pub score: f64,
    /// Techniques both use; a sub-technique also counts as its parent, which is listed too.
    pub overlap: Vec<String>,
    /// Techniques ATT&CK records for the group.
    pub group_techniques: usize,
    /// How much the overlap means: `low` (a few techniques many groups share), `medium`,
    /// `high` (many techniques, a close match).
    pub confidence: crate::Label,
}

/// Techniques a suggestion needs before it is made at all: a handful of shared techniques
/// (discovery commands, a web shell) fit dozens of groups and mean nothing.
pub const MIN_OVERLAP: usize = 6;
const MIN_SCORE: f64 = 0.2;

impl Attack {
    /// The embedded data set.
    pub fn get() -> &'static Attack {
        static DATA: OnceLock<Attack> = OnceLock::new();
        DATA.get_or_init(|| {
            let mut a: Attack = serde_json::from_str(include_str!("../data/attack.json"))
                .expect("the vendored ATT&CK data parses (checked by a test)");
            a.by_id = a
                .techniques
                .iter()
                .enumerate()
                .map(|(i, t)| (t.id.clone(), i))
                .collect();
            a
        })
    }

    pub fn technique(&self, id: &str) -> Option<&Technique> {
        self.by_id.get(id).map(|&i| &self.techniques[i])
    }

    /// The tactic's position in the matrix, by its tag name (`lateral-movement`).
    pub fn tactic_rank(&self, short: &str) -> Option<usize> {
        self.tactics.iter().position(|t| t.short == short)
    }

    /// Each group's techniques with their parents, and the inverse document frequency
    /// weight of every technique, computed once.
    fn index(&self) -> &GroupIndex {
        static INDEX: OnceLock<GroupIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            let sets: Vec<BTreeSet<String>> = self
                .groups
                .iter()
                .map(|g| widen(g.techniques.iter().cloned().collect()))
                .collect();
            let mut df: HashMap<String, usize> = HashMap::new();
            for s in &sets {
                for t in s {
                    *df.entry(t.clone()).or_default() += 1;
                }
            }
            let n = sets.len().max(1) as f64;
            let w = df
                .into_iter()
                .map(|(t, d)| (t, (n / (1.0 + d as f64)).ln().max(0.0) + 0.1))
                .collect();
            (sets, w)
        })
    }

    /// Groups ranked by the technique overlap with `observed` (ids such as `T1003.001`).
    /// Techniques many groups use weigh less than rare ones (inverse document frequency);
    /// the score is the weighted cosine similarity of the two sets.
    pub fn attribute(&self, observed: &BTreeSet<String>, top: usize) -> Vec<Candidate> {
        let (sets, weights) = self.index();
        // A technique no group uses still counts against the similarity, at full weight.
        let full = (sets.len().max(1) as f64).ln() + 0.1;
        let w = |t: &str| *weights.get(t).unwrap_or(&full);
        let norm = |s: &BTreeSet<String>| s.iter().map(|t| w(t).powi(2)).sum::<f64>().sqrt();
        let obs = widen(observed.clone());
        let obs_norm = norm(&obs);
        if obs_norm == 0.0 {
            return Vec::new();
        }
        let mut out: Vec<Candidate> = self
            .groups
            .iter()
            .zip(sets)
            .filter_map(|(g, s)| {
                let shared: Vec<&String> = obs.intersection(s).collect();
                if shared.is_empty() {
                    return None;
                }
                let dot: f64 = shared.iter().map(|t| w(t).powi(2)).sum();
                let score = dot / (obs_norm * norm(s));
                if shared.len() < MIN_OVERLAP || score < MIN_SCORE {
                    return None;
                }
                Some(Candidate {
                    group: g.name.clone(),
                    id: g.id.clone(),
                    aliases: g.aliases.clone(),
                    score,
                    overlap: shared.iter().map(|t| t.to_string()).collect(),
                    group_techniques: g.techniques.len(),
                    confidence: match (shared.len(), score) {
                        (n, s) if n >= 20 && s >= 0.4 => "high",
                        (n, s) if n >= 10 && s >= 0.3 => "medium",
                        _ => "low",
                    }
                    .into(),
                })
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        out.truncate(top);
        out
    }
}

/// Each group's widened technique set, and each technique's weight.
type GroupIndex = (Vec<BTreeSet<String>>, HashMap<String, f64>);

/// A technique set with the parents of its sub-techniques added.
fn widen(mut set: BTreeSet<String>) -> BTreeSet<String> {
    let parents: Vec<String> = set
        .iter()
        .filter_map(|t| t.split_once('.').map(|(p, _)| p.to_string()))
        .collect();
    set.extend(parents);
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_data_parses_and_ranks_a_groups_own_techniques_first() {
        let a = Attack::get();
        assert_eq!(a.tactics.len(), 14);
        assert_eq!(a.tactics[0].short, "reconnaissance");
        assert!(a.technique("T1574.001").is_some());
        // T1574.002 was revoked in favour of T1574.001.
        assert!(a.technique("T1574.002").is_none());
        for g in a.groups.iter().filter(|g| g.techniques.len() >= 15) {
            let own: BTreeSet<String> = g.techniques.iter().cloned().collect();
            let ranked = a.attribute(&own, 1);
            // The group itself scores 1, so whatever ranks first does too.
            assert!(
                (ranked[0].score - 1.0).abs() < 1e-9,
                "{}: {:?}",
                g.name,
                ranked[0]
            );
        }
    }
}
