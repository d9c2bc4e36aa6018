//! The run summary: detections by level, rule and host, the inputs read, what was rejected,
//! and what the stages' caps dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use towerwatch_event::Detection;
use towerwatch_sigma::{Level, Rule};
use towerwatch_sources::{InputReport, SourceError};

use crate::stages::Cap;

/// Counts for the terminal summary.
#[derive(Default)]
pub struct Summary {
    pub by_level: BTreeMap<Level, u64>,
    /// (rule index) → (count, hosts)
    pub by_rule: BTreeMap<usize, (u64, BTreeSet<String>)>,
    /// host → (count, highest level)
    pub by_host: BTreeMap<String, (u64, Level)>,
    pub inputs: Vec<InputReport>,
    pub errors: Vec<SourceError>,
    pub detections: u64,
    /// Detections of the web-shell join.
    pub correlated: u64,
    /// Sigma correlation firings, per correlation title: (level, firings).
    pub firings: BTreeMap<String, (Level, u64)>,
    /// Matches a correlation could not place in time (the event has no timestamp).
    pub correlation_untimed: u64,
    /// Detections set below medium as the estate's routine.
    pub routine_demoted: u64,
    /// The stages' limits on what they hold in memory, and what each dropped.
    pub caps: Vec<Cap>,
}

/// Hosts remembered per rule in the summary (the count is exact, the list is capped).
const HOSTS_PER_RULE: usize = 50;

impl Summary {
    /// A detection of a correlation (no rule of the rule set): counted by level and host.
    pub fn add_correlated(&mut self, d: &Detection) {
        self.correlated += 1;
        self.count_level_and_host(d);
    }

    /// A Sigma correlation rule's firing.
    pub fn add_firing(&mut self, d: &Detection) {
        let f = self
            .firings
            .entry(d.rule_title.clone())
            .or_insert((d.level, 0));
        f.1 += 1;
        self.count_level_and_host(d);
    }

    fn count_level_and_host(&mut self, d: &Detection) {
        self.count(d.level, d.computer.as_deref());
    }

    /// A detection of rule `rule_idx` at `level` on `computer`.
    pub fn add(&mut self, rule_idx: usize, level: Level, computer: Option<&str>) {
        let host = self.count(level, computer);
        let r = self.by_rule.entry(rule_idx).or_default();
        r.0 += 1;
        if r.1.len() < HOSTS_PER_RULE {
            r.1.insert(host);
        }
    }

    /// Counts a detection by level and host; returns the host's name as counted.
    fn count(&mut self, level: Level, computer: Option<&str>) -> String {
        self.detections += 1;
        *self.by_level.entry(level).or_default() += 1;
        let host = computer.unwrap_or("(unknown host)").to_string();
        let h = self.by_host.entry(host.clone()).or_insert((0, level));
        h.0 += 1;
        h.1 = h.1.max(level);
        host
    }

    pub fn events(&self) -> u64 {
        self.inputs.iter().map(|i| i.events).sum()
    }

    pub fn rejected(&self) -> u64 {
        self.inputs.iter().map(|i| i.rejected).sum()
    }
}

fn span(r: &InputReport) -> String {
    match (r.first, r.last) {
        (Some(a), Some(b)) => format!(
            "{} .. {}",
            a.strftime("%Y-%m-%d %H:%M:%S"),
            b.strftime("%Y-%m-%d %H:%M:%S")
        ),
        _ => "-".into(),
    }
}

/// The per-input table: format, events read, rejected, time span, problems.
pub fn inputs_table(inputs: &[InputReport]) -> String {
    let mut s = String::new();
    let width = inputs
        .iter()
        .map(|i| i.source.len())
        .max()
        .unwrap_or(5)
        .clamp(5, 80);
    let _ = writeln!(
        s,
        "{:<width$}  {:<7} {:>10} {:>8}  time span (UTC)",
        "input", "format", "events", "rejected"
    );
    for r in inputs.iter().filter(|r| !is_skipped(r)) {
        let mut fmt = r.format.to_string();
        if r.compressed {
            fmt.push_str("+gz");
        }
        let name = shorten(&r.source, width);
        let _ = writeln!(
            s,
            "{name:<width$}  {fmt:<7} {:>10} {:>8}  {}",
            r.events,
            r.rejected,
            span(r)
        );
        if let Some(f) = &r.failure {
            let _ = writeln!(s, "{:<width$}  ! {f}", "");
        }
    }
    s
}

/// Rejected records listed in a summary at most (all are counted).
pub const LISTED_ERRORS: usize = 50;

impl Summary {
    /// Lists rejected records, up to [`LISTED_ERRORS`] in all.
    pub fn keep_errors(&mut self, errors: impl IntoIterator<Item = SourceError>) {
        let room = LISTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(errors.into_iter().take(room));
    }
}

/// Why `--strict` stops at this input, if it does: it failed, and it is a log.
/// Why `--strict` stops at this input, if it does: a failure; a file that is no log counts
/// when it was named on the command line (a README found beside the evidence in a folder is
/// listed, not a failure).
pub fn strict_failure(r: &InputReport, named: bool) -> Option<String> {
    if is_skipped(r) && !named {
        return None;
    }
    r.failure.as_ref().map(|f| format!("{}: {f}", r.source))
}

/// Inputs that are not logs (a README in an evidence folder): listed, not counted as losses.
fn is_skipped(r: &InputReport) -> bool {
    r.format == towerwatch_sources::Format::Unknown && r.rejected == 0 && r.events == 0
}

/// The line naming the skipped inputs, if any.
pub fn skipped_note(inputs: &[InputReport]) -> String {
    let skipped: Vec<&InputReport> = inputs.iter().filter(|r| is_skipped(r)).collect();
    let mut s = String::new();
    if skipped.is_empty() {
        return s;
    }
    let _ = writeln!(s, "Skipped {} inputs that are not logs:", skipped.len());
    for r in skipped.iter().take(10) {
        let _ = writeln!(
            s,
            "  {}: {}",
            r.source,
            r.failure.as_deref().unwrap_or("unknown format")
        );
    }
    if skipped.len() > 10 {
        let _ = writeln!(s, "  … and {} more", skipped.len() - 10);
    }
    s
}

fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let tail: String = s
        .chars()
        .rev()
        .take(width - 1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// The human summary of a hunt.
pub fn render(summary: &Summary, rules: &[Rule], header: &str) -> String {
    let mut s = String::new();
    if !header.is_empty() {
        let _ = writeln!(s, "{header}");
        let _ = writeln!(s);
    }
    let levels: Vec<String> = [
        Level::Critical,
        Level::High,
        Level::Medium,
        Level::Low,
        Level::Informational,
    ]
    .iter()
    .map(|l| format!("{l} {}", summary.by_level.get(l).copied().unwrap_or(0)))
    .collect();
    let _ = writeln!(
        s,
        "Detections: {}  ({})",
        summary.detections,
        levels.join(", ")
    );
    if summary.routine_demoted > 0 {
        let _ = writeln!(
            s,
            "Routine: {} detections set to low as the estate's routine (same host, account and program on many days at that hour; the reason is in each)",
            summary.routine_demoted
        );
    }
    if summary.correlated > 0 {
        let _ = writeln!(
            s,
            "Web-shell join: {} detections (a POST to a rare page, then a web-server child process on that host)",
            summary.correlated
        );
    }
    if !summary.firings.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<13} {:>8}  correlation", "level", "firings");
        let mut rows: Vec<_> = summary.firings.iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(*r.1));
        for (title, (level, n)) in rows {
            let _ = writeln!(s, "{:<13} {n:>8}  {title}", level.to_string());
        }
    }
    if summary.correlation_untimed > 0 {
        let _ = writeln!(
            s,
            "Correlation: {} matches without a timestamp were not correlated",
            summary.correlation_untimed
        );
    }
    for cap in summary.caps.iter().filter(|c| c.dropped > 0) {
        let _ = writeln!(s, "{cap}");
    }
    if !summary.by_rule.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<13} {:>8} {:>6}  rule", "level", "count", "hosts");
        let mut rows: Vec<_> = summary.by_rule.iter().collect();
        rows.sort_by(|a, b| {
            rules[*b.0]
                .level
                .cmp(&rules[*a.0].level)
                .then(b.1 .0.cmp(&a.1 .0))
                .then(a.0.cmp(b.0))
        });
        for (idx, (count, hosts)) in rows {
            let r = &rules[*idx];
            let _ = writeln!(
                s,
                "{:<13} {:>8} {:>6}  {}",
                r.level.to_string(),
                count,
                hosts.len(),
                r.title
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<40} {:>8}  highest level", "host", "count");
        let mut hosts: Vec<_> = summary.by_host.iter().collect();
        hosts.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(b.1 .0.cmp(&a.1 .0)));
        for (host, (count, level)) in hosts {
            let _ = writeln!(s, "{:<40} {:>8}  {level}", shorten(host, 40), count);
        }
    }
    let _ = writeln!(s);
    s.push_str(&inputs_table(&summary.inputs));
    s.push_str(&skipped_note(&summary.inputs));
    if !summary.errors.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Rejected records (first {} of {}):",
            summary.errors.len(),
            summary.rejected()
        );
        for e in &summary.errors {
            let _ = writeln!(s, "  {e}");
        }
    }
    s
}

/// This process's peak resident memory so far (Linux's `VmHWM`; `None` elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
