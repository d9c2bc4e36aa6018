//! Sigma rules for towerwatch: parse, validate, map log sources, evaluate plainly, correlate.
//!
//! This crate turns Sigma YAML (specification 2.x) into a [`Rule`] model — searches of field
//! tests with every value modifier expanded into [`Matcher`]s, the condition as a tree over the
//! searches, the log source resolved to Windows channels and event ids — and holds the plain
//! reference evaluator ([`Rule::matches`]). The fast engine lives in `towerwatch-detect` and is
//! tested against this one.
//!
//! ```
//! use towerwatch_event::{Event, Origin, Value};
//! use towerwatch_sigma::parse_rules;
//!
//! let yaml = r#"
//! title: Whoami
//! logsource: { product: windows, category: process_creation }
//! detection:
//!   selection:
//!     Image|endswith: '\whoami.exe'
//!   condition: selection
//! "#;
//! let rule = parse_rules(yaml, "whoami.yml").remove(0).unwrap();
//! let mut event = Event::new(Origin::record("x.evtx", 1));
//! event.set_channel("Security");
//! event.set_event_id(4688);
//! event.push("NewProcessName", Value::text(r"C:\Windows\System32\WHOAMI.EXE"));
//! assert!(rule.matches(&event));
//! ```

pub mod condition;
pub mod correlation;
mod eval;
mod lazy_regex;
pub mod logsource;
pub mod pattern;
mod rule;

use std::path::{Path, PathBuf};

pub use condition::Cond;
pub use correlation::Correlation;
pub use lazy_regex::LazyRegex;
pub use logsource::{LogSource, Route};
pub use pattern::{Anchor, GlobToken, StrPattern};
pub use rule::{
    parse_documents, parse_rules, parse_rules_with, Compare, Document, FieldTest, Level, Matcher,
    Placeholders, RefusalKind, Rule, RuleError, Search,
};

/// The rule files a path names: the file itself, or every `.yml`/`.yaml` file below a
/// directory, in path order (so a rule set loads the same way every time). Symbolic links
/// are followed, as they are for evidence (a link that loops is skipped).
pub fn rule_files(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(path)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")))
        .collect();
    files.sort();
    files
}

/// Rules loaded from files, with those refused and why.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub rules: Vec<Rule>,
    /// Correlation rules, with their references not yet resolved.
    pub correlations: Vec<Correlation>,
    pub refused: Vec<RuleError>,
    /// Rule files read.
    pub files: usize,
}

impl LoadReport {
    /// Adds the rules of one YAML text.
    pub fn add_text(&mut self, text: &str, path: &str) {
        self.add_text_with(text, path, &Placeholders::new());
    }

    /// Adds the rules of one YAML text, with placeholder values for `expand`.
    pub fn add_text_with(&mut self, text: &str, path: &str, placeholders: &Placeholders) {
        self.files += 1;
        for d in parse_documents(text, path, placeholders) {
            match d {
                Ok(Document::Rule(rule)) => self.rules.push(*rule),
                Ok(Document::Correlation(c)) => self.correlations.push(*c),
                Err(e) => self.refused.push(e),
            }
        }
    }

    /// Loads `.yml`/`.yaml` files and directories of them (recursively, sorted).
    pub fn add_path(&mut self, path: &Path) {
        for file in rule_files(path) {
            let name = file.display().to_string();
            match std::fs::read(&file) {
                Ok(bytes) => match String::from_utf8(bytes) {
                    Ok(text) => self.add_text(&text, &name),
                    Err(_) => self.refuse(&name, "file is not UTF-8"),
                },
                Err(e) => self.refuse(&name, &format!("cannot read: {e}")),
            }
        }
    }

    fn refuse(&mut self, path: &str, reason: &str) {
        self.files += 1;
        self.refused
            .push(RuleError::file(path, RefusalKind::Invalid, reason));
    }
}
