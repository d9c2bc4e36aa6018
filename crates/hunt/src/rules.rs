//! Rule sets: the embedded default or rule files; the level and status filters, which know
//! that a correlation's rules run whatever their level; the check of a rule set.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use towerwatch_detect::Engine;
use towerwatch_sigma::correlation::{self, Member};
use towerwatch_sigma::{
    Correlation, Level, LoadReport, Placeholders, RefusalKind, Rule, RuleError,
};

use crate::{HuntError, RuleSelection};

type Result<T> = std::result::Result<T, HuntError>;

/// The rule set compiled into the binary by build.rs (the repository's `rules/`).
#[derive(serde::Deserialize)]
struct EmbeddedRules {
    files: usize,
    digest: String,
    rules: Vec<Rule>,
    correlations: Vec<Correlation>,
    refused: Vec<towerwatch_sigma::RuleError>,
}

static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/embedded_rules.bin"));

fn embedded() -> Result<Loaded> {
    let set: EmbeddedRules = postcard::from_bytes(EMBEDDED)
        .map_err(|e| HuntError::Rules(format!("the embedded rule set is damaged: {e}")))?;
    Ok(Loaded {
        report: LoadReport {
            rules: set.rules,
            correlations: set.correlations,
            refused: set.refused,
            files: set.files,
        },
        origin: "embedded".into(),
        digest: set.digest,
    })
}

/// Rules as loaded, before filters.
pub struct Loaded {
    pub report: LoadReport,
    /// `embedded` or the paths given.
    pub origin: String,
    /// SHA-256 over every rule file's path and text, in load order: names the rule set.
    pub digest: String,
}

/// Loads the embedded rules (no paths) or the given files and directories.
pub fn load(paths: &[PathBuf], placeholders: Option<&Path>) -> Result<Loaded> {
    if paths.is_empty() {
        // The embedded set is compiled at build time; it uses no placeholders.
        return embedded();
    }
    let placeholders = match placeholders {
        Some(p) => read_placeholders(p)?,
        None => Placeholders::new(),
    };
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut report = LoadReport::default();
    {
        for p in paths {
            if !p.exists() {
                return Err(HuntError::Rules(format!(
                    "rules path {} does not exist",
                    p.display()
                )));
            }
            for file in towerwatch_sigma::rule_files(p) {
                match std::fs::read_to_string(&file) {
                    Ok(t) => texts.push((file.display().to_string(), t)),
                    Err(e) => report.refused.push(RuleError::file(
                        &file.display().to_string(),
                        RefusalKind::Invalid,
                        format!("cannot read: {e}"),
                    )),
                }
            }
        }
    }
    let mut hasher = Sha256::new();
    for (p, t) in &texts {
        hasher.update(p.as_bytes());
        hasher.update([0]);
        hasher.update(t.as_bytes());
    }
    let parsed: Vec<LoadReport> = texts
        .par_iter()
        .map(|(p, t)| {
            let mut r = LoadReport::default();
            r.add_text_with(t, p, &placeholders);
            r
        })
        .collect();
    for r in parsed {
        report.files += r.files;
        report.rules.extend(r.rules);
        report.correlations.extend(r.correlations);
        report.refused.extend(r.refused);
    }
    let origin = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Loaded {
        report,
        origin,
        digest: hex(&hasher.finalize()),
    })
}

/// A YAML map of placeholder names to a value or a list of values, for `expand`.
fn read_placeholders(path: &Path) -> Result<Placeholders> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HuntError::Rules(format!("cannot read {}: {e}", path.display())))?;
    let map: std::collections::BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(&text)
        .map_err(|e| {
            HuntError::Rules(format!(
                "{}: not a map of placeholder values: {e}",
                path.display()
            ))
        })?;
    let mut out = Placeholders::new();
    for (name, v) in map {
        let values = match v {
            serde_yaml::Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
            other => scalar(&other).into_iter().collect(),
        };
        out.insert(name, values);
    }
    Ok(out)
}

fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rules and correlations selected by level and status, and how many each filter removed.
///
/// A rule a selected correlation refers to is kept whatever its level, and is *silent* (it
/// feeds the correlation but does not report on its own) unless a correlation referring to it
/// says `generate: true`, as the Sigma correlation specification has it.
pub struct Selected {
    pub rules: Vec<Rule>,
    pub silent: Vec<bool>,
    pub correlations: Vec<Correlation>,
    /// Per correlation, what it refers to, as indices into `rules` and `correlations`.
    pub members: Vec<Option<Vec<Member>>>,
    pub correlation_silent: Vec<bool>,
    /// Correlations refused while resolving their references.
    pub refused: Vec<RuleError>,
    pub below_level: usize,
    pub other_status: usize,
}

/// Which filter, if any, removes an item of this level and status.
enum Filtered {
    Kept,
    BelowLevel,
    OtherStatus,
}

fn filter(level: Level, status: Option<&str>, min: Level, statuses: &[String]) -> Filtered {
    if level < min {
        Filtered::BelowLevel
    } else if !statuses.iter().any(|s| s == "all")
        && !statuses.contains(&status.unwrap_or("experimental").to_ascii_lowercase())
    {
        Filtered::OtherStatus
    } else {
        Filtered::Kept
    }
}

pub fn select(
    rules: Vec<Rule>,
    correlations: Vec<Correlation>,
    selection: &RuleSelection,
) -> Selected {
    let min = selection.min_level;
    let statuses: Vec<String> = selection
        .statuses
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect();
    let (members, refused) = correlation::resolve(&rules, &correlations);
    let rule_filter: Vec<Filtered> = rules
        .iter()
        .map(|r| filter(r.level, r.status.as_deref(), min, &statuses))
        .collect();
    let corr_filter: Vec<Filtered> = correlations
        .iter()
        .map(|c| filter(c.level, c.status.as_deref(), min, &statuses))
        .collect();
    let rule_kept: Vec<bool> = rule_filter
        .iter()
        .map(|f| matches!(f, Filtered::Kept))
        .collect();
    let corr_kept: Vec<bool> = corr_filter
        .iter()
        .zip(&members)
        .map(|(f, m)| m.is_some() && matches!(f, Filtered::Kept))
        .collect();
    // Active: the kept correlations and every correlation they build on.
    let mut active = corr_kept.clone();
    let mut stack: Vec<usize> = (0..correlations.len()).filter(|&i| active[i]).collect();
    while let Some(i) = stack.pop() {
        for m in members[i].iter().flatten() {
            if let Member::Correlation(j) = *m {
                if !active[j] {
                    active[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    // Referenced by an active correlation: (referenced at all, some referrer generates).
    let mut rule_ref = vec![(false, false); rules.len()];
    let mut corr_ref = vec![(false, false); correlations.len()];
    for i in (0..correlations.len()).filter(|&i| active[i]) {
        for m in members[i].iter().flatten() {
            let slot = match *m {
                Member::Rule(r) => &mut rule_ref[r],
                Member::Correlation(j) => &mut corr_ref[j],
            };
            slot.0 = true;
            slot.1 |= correlations[i].generate;
        }
    }
    // A filter counts what it removed: not what still runs for a correlation, nor a
    // correlation refused while resolving (counted as refused).
    let (mut below_level, mut other_status) = (0, 0);
    let mut count = |f: &Filtered| match f {
        Filtered::BelowLevel => below_level += 1,
        Filtered::OtherStatus => other_status += 1,
        Filtered::Kept => {}
    };
    for (f, referenced) in rule_filter.iter().zip(&rule_ref) {
        if !referenced.0 {
            count(f);
        }
    }
    for ((f, m), a) in corr_filter.iter().zip(&members).zip(&active) {
        if m.is_some() && !a {
            count(f);
        }
    }
    let mut rule_index = vec![usize::MAX; rules.len()];
    let mut sel = Selected {
        rules: Vec::new(),
        silent: Vec::new(),
        correlations: Vec::new(),
        members: Vec::new(),
        correlation_silent: Vec::new(),
        refused,
        below_level,
        other_status,
    };
    for (i, r) in rules.into_iter().enumerate() {
        let (referenced, generated) = rule_ref[i];
        if rule_kept[i] || referenced {
            rule_index[i] = sel.rules.len();
            sel.rules.push(r);
            sel.silent.push(!rule_kept[i] || (referenced && !generated));
        }
    }
    let mut corr_index = vec![usize::MAX; correlations.len()];
    let mut next = 0;
    for (i, a) in active.iter().enumerate() {
        if *a {
            corr_index[i] = next;
            next += 1;
        }
    }
    for (i, c) in correlations.into_iter().enumerate() {
        if !active[i] {
            continue;
        }
        let (referenced, generated) = corr_ref[i];
        sel.correlation_silent
            .push(!corr_kept[i] || (referenced && !generated));
        sel.members.push(members[i].as_ref().map(|list| {
            list.iter()
                .map(|m| match *m {
                    Member::Rule(r) => Member::Rule(rule_index[r]),
                    Member::Correlation(j) => Member::Correlation(corr_index[j]),
                })
                .collect()
        }));
        sel.correlations.push(c);
    }
    sel
}

/// What a rule set holds: its refusals, its correlations, and the engine it compiles to.
pub struct Check {
    pub loaded: Loaded,
    /// Correlations refused while resolving what they refer to.
    pub unresolved: Vec<RuleError>,
    pub correlations: usize,
    pub stats: towerwatch_detect::EngineStats,
}

impl Check {
    /// Loads the rule set and compiles every rule.
    pub fn of(paths: &[PathBuf], placeholders: Option<&Path>) -> Result<Check> {
        let mut loaded = load(paths, placeholders)?;
        loaded.report.refused.sort_by(|a, b| a.path.cmp(&b.path));
        let (members, unresolved) =
            correlation::resolve(&loaded.report.rules, &loaded.report.correlations);
        let correlations = members.iter().filter(|m| m.is_some()).count();
        let engine = Engine::new(std::mem::take(&mut loaded.report.rules));
        engine.compile_all();
        let stats = engine.stats();
        Ok(Check {
            loaded,
            unresolved,
            correlations,
            stats,
        })
    }

    /// Rules refused as invalid, and correlations that refer to nothing: a broken set.
    pub fn invalid(&self) -> usize {
        self.loaded
            .report
            .refused
            .iter()
            .filter(|e| e.kind == RefusalKind::Invalid)
            .count()
            + self.unresolved.len()
    }

    /// Every refusal on its own line, then the totals.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let report = &self.loaded.report;
        let mut out = String::new();
        for e in &report.refused {
            let kind = match e.kind {
                RefusalKind::Invalid => "invalid",
                RefusalKind::Unsupported => "unsupported",
            };
            let _ = writeln!(out, "{}: {kind}: {}", e.at(), e.reason);
        }
        for e in &self.unresolved {
            let _ = writeln!(out, "{}: invalid: {}", e.at(), e.reason);
        }
        let refused = report.refused.len();
        let invalid = self.invalid() - self.unresolved.len();
        let stats = &self.stats;
        let total = stats.rules + refused;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "rule set:     {} (sha256 {})",
            self.loaded.origin,
            &self.loaded.digest[..16]
        );
        let _ = writeln!(out, "files:        {}", report.files);
        let _ = writeln!(
            out,
            "rules:        {total} ({} loaded, {:.2}%; {refused} refused: {invalid} invalid, {} unsupported)",
            stats.rules,
            100.0 * stats.rules as f64 / total.max(1) as f64,
            refused - invalid
        );
        let _ = writeln!(
            out,
            "correlations: {} ({} loaded, {} refused)",
            report.correlations.len(),
            self.correlations,
            self.unresolved.len()
        );
        let _ = writeln!(
            out,
            "engine:       {} plans (by channel and event id), {} atoms, {} automata, {} slow leaves, {} rule entries without a literal trigger",
            stats.plans, stats.atoms, stats.automata, stats.slow_leaves, stats.always_evaluated
        );
        out
    }
}
