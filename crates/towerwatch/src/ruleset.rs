//! Rule sets: the embedded default or files given with `--rules`; filters; `rules check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use towerwatch_detect::Engine;
use towerwatch_sigma::{Level, LoadReport, Placeholders, RefusalKind, Rule};

use crate::RuleArgs;

/// The rule set compiled into the binary by build.rs (the repository's `rules/`).
#[derive(serde::Deserialize)]
struct EmbeddedRules {
    files: usize,
    digest: String,
    rules: Vec<Rule>,
    refused: Vec<towerwatch_sigma::RuleError>,
}

static EMBEDDED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/embedded_rules.bin"));

fn embedded() -> Result<Loaded> {
    let set: EmbeddedRules =
        postcard::from_bytes(EMBEDDED).context("embedded rule set is damaged")?;
    Ok(Loaded {
        report: LoadReport {
            rules: set.rules,
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
                bail!("rules path {} does not exist", p.display());
            }
            for file in towerwatch_sigma::rule_files(p) {
                match std::fs::read_to_string(&file) {
                    Ok(t) => texts.push((file.display().to_string(), t)),
                    Err(e) => report.refused.push(towerwatch_sigma::RuleError {
                        path: file.display().to_string(),
                        title: None,
                        kind: RefusalKind::Invalid,
                        reason: format!("cannot read: {e}"),
                    }),
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
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let map: std::collections::BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(&text)
        .with_context(|| format!("{}: not a map of placeholder values", path.display()))?;
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

/// Rules selected by level and status, and how many each filter removed.
pub struct Selected {
    pub rules: Vec<Rule>,
    pub below_level: usize,
    pub other_status: usize,
}

pub fn select(rules: Vec<Rule>, args: &RuleArgs) -> Result<Selected> {
    let min: Level = args.min_level.parse().map_err(anyhow::Error::msg)?;
    let statuses: Vec<String> = args.status.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut sel = Selected {
        rules: Vec::new(),
        below_level: 0,
        other_status: 0,
    };
    for r in rules {
        if r.level < min {
            sel.below_level += 1;
        } else if !statuses.iter().any(|s| s == "all")
            && !statuses.contains(
                &r.status
                    .as_deref()
                    .unwrap_or("experimental")
                    .to_ascii_lowercase(),
            )
        {
            sel.other_status += 1;
        } else {
            sel.rules.push(r);
        }
    }
    Ok(sel)
}

/// `towerwatch rules check`.
pub fn check(paths: &[PathBuf], placeholders: Option<&Path>) -> Result<ExitCode> {
    let loaded = load(paths, placeholders)?;
    let report = loaded.report;
    let mut refused = report.refused.clone();
    refused.sort_by(|a, b| a.path.cmp(&b.path));
    use std::fmt::Write as _;
    let mut out = String::new();
    for e in &refused {
        let kind = match e.kind {
            RefusalKind::Invalid => "invalid",
            RefusalKind::Unsupported => "unsupported",
        };
        let _ = writeln!(out, "{}: {kind}: {}", e.path, e.reason);
    }
    let invalid = refused
        .iter()
        .filter(|e| e.kind == RefusalKind::Invalid)
        .count();
    let total = report.rules.len() + refused.len();
    let engine = Engine::new(report.rules);
    engine.compile_all();
    let stats = engine.stats();
    println!();
    println!(
        "rule set:     {} (sha256 {})",
        loaded.origin,
        &loaded.digest[..16]
    );
    println!("files:        {}", report.files);
    println!(
        "rules:        {total} ({} loaded, {:.2}%; {} refused: {invalid} invalid, {} unsupported)",
        stats.rules,
        100.0 * stats.rules as f64 / total.max(1) as f64,
        refused.len(),
        refused.len() - invalid
    );
    let _ = writeln!(
        out,
        "engine:       {} plans (by channel and event id), {} atoms, {} automata, {} slow leaves, {} rule entries without a literal trigger",
        stats.plans, stats.atoms, stats.automata, stats.slow_leaves, stats.always_evaluated
    );
    std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes())?;
    Ok(if invalid > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
