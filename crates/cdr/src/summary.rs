//! The terminal summary of an analysis of the audit trail.

use crate::exposure::{Exposure, Tier};
use crate::pseudo::Pseudonymizer;

/// The terminal summary of `towerwatch cdr`: inputs, the schema used, the extract read,
/// findings by rule, and the exposure (identifiers as `p` shows them).
pub fn summary(
    r: &crate::run::Run,
    x: &Exposure,
    seconds: f64,
    identifiers: &str,
    p: &Pseudonymizer,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let lines: u64 = r.records;
    let _ = writeln!(
        s,
        "towerwatch cdr: {} logs, {} log records ({} audit, {} rejected), {} statements ({} unparsable), {:.2} s, {:.0} records/s",
        r.inputs.len(),
        lines,
        r.audit,
        r.rejected_count(),
        r.analytics.statements,
        r.analytics.unanalysed_count,
        seconds,
        lines as f64 / seconds.max(1e-9)
    );
    let prefixes: std::collections::BTreeMap<&str, usize> = r
        .inputs
        .iter()
        .filter_map(|i| i.detail.as_deref())
        .fold(Default::default(), |mut m, d| {
            *m.entry(d).or_default() += 1;
            m
        });
    for (d, n) in &prefixes {
        let _ = writeln!(s, "  {d}: {n} log{}", if *n == 1 { "" } else { "s" });
    }
    // Inputs that are not database logs, by what they are (each one is in the manifest).
    let mut skipped: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (input, why) in &r.not_database {
        skipped.entry(why).or_default().push(input);
    }
    for (why, inputs) in &skipped {
        let _ = match inputs.as_slice() {
            [one] => writeln!(s, "  skipped {one}: {why}"),
            [first, ..] => writeln!(s, "  skipped {} inputs ({first} …): {why}", inputs.len()),
            [] => Ok(()),
        };
    }
    let _ = writeln!(
        s,
        "\nschema used:\n{}",
        r.analytics.schema().describe().trim_end()
    );
    // Extract files read alike (same tables, match, time and identifier columns) are one line.
    struct Alike<'a> {
        files: usize,
        rows: u64,
        first: &'a str,
    }
    let mut alike: std::collections::BTreeMap<_, Alike> = Default::default();
    for f in &x.files {
        let key = (
            f.tables.join(", "),
            f.matched_by,
            f.time_column.as_str(),
            f.id_columns.join(", "),
        );
        let e = alike.entry(key).or_insert(Alike {
            files: 0,
            rows: 0,
            first: f.path.as_str(),
        });
        e.files += 1;
        e.rows += f.rows;
    }
    for ((tables, by, time, ids), a) in &alike {
        let _ = writeln!(
            s,
            "  CDR extract: {} file{} ({}{}), {} rows of {tables} (matched by {by}); time {time}; identifiers {ids}",
            a.files,
            if a.files == 1 { "" } else { "s" },
            a.first,
            if a.files > 1 { " …" } else { "" },
            a.rows,
        );
    }
    let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &r.findings {
        *by_rule.entry(f.rule.title()).or_default() += 1;
    }
    let _ = writeln!(s, "\nfindings: {}", r.findings.len());
    for (title, n) in &by_rule {
        let _ = writeln!(s, "  {n:>6}  {title}");
    }
    let _ = writeln!(s, "lookups matching the register of authorised requests (not alarms, not in the exposure): {}", r.analytics.authorised);
    let named: Vec<_> = x
        .subscribers
        .iter()
        .filter(|((t, _), _)| *t == Tier::Named)
        .collect();
    let _ = writeln!(
        s,
        "\nexposure ({identifiers}): {} subscribers named in stolen queries, {} counterparties revealed, {} looked up in the subscriber table, {} bulk reads; {} CDR rows re-read ({} rejected)",
        named.len(),
        x.count(Tier::Counterparty),
        x.count(Tier::LookedUp),
        x.bulk.len(),
        x.cdr_rows,
        x.cdr_rejected_count
    );
    for r in x.rows(p).into_iter().filter(|r| r.tier == Tier::Named) {
        let e = r.exposed;
        let _ = writeln!(
            s,
            "  {}  {:>6} records  {:>3} cells  {} .. {}",
            r.shown,
            e.records
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            e.cells.len(),
            e.from.map(|t| t.to_string()).unwrap_or_default(),
            e.to.map(|t| t.to_string()).unwrap_or_default()
        );
    }
    for k in &x.skipped {
        let _ = writeln!(s, "  skipped {k}");
    }
    for b in &x.bulk {
        let _ = writeln!(
            s,
            "  bulk: {} by {} on {}: {} subscribers",
            b.evidence,
            b.actor,
            b.tables.join(", "),
            b.subscribers
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into())
        );
    }
    if !r.rejected.is_empty() {
        let _ = writeln!(
            s,
            "\nrejected lines ({} in all; first {}):",
            r.rejected_count(),
            r.rejected.len().min(10)
        );
        for e in r.rejected.iter().take(10) {
            let _ = writeln!(s, "  {e}");
        }
    }
    if !r.analytics.unanalysed.is_empty() {
        let _ = writeln!(
            s,
            "\nunparsable statements ({} in all; first {}):",
            r.analytics.unanalysed_count,
            r.analytics.unanalysed.len().min(10)
        );
        for u in r.analytics.unanalysed.iter().take(10) {
            let _ = writeln!(s, "  {}:{}: {}", u.source, u.line, u.error);
        }
    }
    s
}
