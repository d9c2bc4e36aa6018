//! The database stage: the audited statements among the evidence are collected while inputs
//! are read (any order, any worker), then analysed in time order by `towerwatch-cdr` once
//! reading ends; its findings become detections, join the operations through their database
//! sessions, and tell the exposure of each operation and wave.

use std::collections::{BTreeMap, HashMap};

use towerwatch_cdr::analytics::{Finding, Rule, Settings};
use towerwatch_cdr::context::CdrContext;
use towerwatch_cdr::exposure::{self, Exposure, Tier};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_cdr::record::DbEvent;
use towerwatch_cdr::run::Statements;
use towerwatch_correlate::{Analysis, Place, RuleInfo};
use towerwatch_event::Detection;

use super::{Matched, Stage};

/// One input's audited statements (in memory, then on disk: nothing is dropped).
#[derive(Default)]
pub struct Database {
    statements: Statements,
}

impl Stage for Database {
    type Output = Statements;
    type Fact = Option<DbEvent>;

    fn extract(&mut self, m: &Matched<'_>) -> Option<DbEvent> {
        DbEvent::from_event(m.event)
    }

    fn absorb(&mut self, fact: Option<DbEvent>) {
        if let Some(d) = fact {
            self.statements.push(d);
        }
    }

    fn merge(&mut self, other: Database) {
        self.statements.append(other.statements);
    }

    fn finish(self) -> Statements {
        self.statements
    }
}

/// The rules' catalog entries, in [`Rule::ALL`] order.
pub fn catalog() -> Vec<RuleInfo> {
    Rule::ALL
        .iter()
        .map(|r| {
            let tags: Vec<String> = r.tags().iter().map(|t| t.to_string()).collect();
            RuleInfo::new(r.id(), r.title(), r.level(), &tags)
        })
        .collect()
}

/// The analysis of the collected statements.
pub struct DbResult {
    pub findings: Vec<Finding>,
    pub analytics: Option<towerwatch_cdr::analytics::Analytics>,
    pub statements: u64,
}

pub fn analyse(
    mut statements: Statements,
    settings: Settings,
    context: &CdrContext,
) -> Result<DbResult, towerwatch_spill::SpillError> {
    let count = statements.len();
    if count == 0 {
        return Ok(DbResult {
            findings: Vec::new(),
            analytics: None,
            statements: count,
        });
    }
    let (findings, analytics) =
        towerwatch_cdr::run::analyse(&mut statements, settings, &context.schema_inputs())?;
    Ok(DbResult {
        findings,
        analytics: Some(analytics),
        statements: count,
    })
}

/// A finding as a detection (identifiers pseudonymised).
pub fn detection(f: &Finding, p: &Pseudonymizer) -> Detection {
    towerwatch_cdr::report::detection(f, p, Some(&f.event.server))
}

/// Where a finding's record is.
pub fn place(f: &Finding) -> Place {
    Place {
        source: f.event.source.to_string(),
        record_id: None,
        line: Some(f.event.line),
    }
}

/// The exposure, in all and per operation and wave: one pass over the extract.
pub struct Exposures {
    pub total: Exposure,
    pub by_operation: BTreeMap<String, Exposure>,
    pub by_wave: BTreeMap<usize, Exposure>,
}

pub fn exposures(
    findings: &[Finding],
    analysis: &Analysis,
    schema: &towerwatch_cdr::schema::Schema,
    context: &CdrContext,
) -> Exposures {
    // Which operation holds each finding's record.
    let mut op_of: HashMap<(&str, u64), usize> = HashMap::new();
    for (k, op) in analysis.operations.iter().enumerate() {
        for e in &op.events {
            if let Some(l) = e.line {
                op_of.insert((e.source.as_str(), l), k);
            }
        }
    }
    let ops = analysis.operations.len();
    let waves = analysis.waves.len();
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); 1 + ops + waves];
    for (i, f) in findings.iter().enumerate() {
        groups[0].push(i);
        if let Some(&k) = op_of.get(&(&*f.event.source, f.event.line)) {
            groups[1 + k].push(i);
            if let Some(w) = analysis.operations[k].wave {
                groups[1 + ops + w - 1].push(i);
            }
        }
    }
    let mut out = exposure::compute_grouped(
        findings,
        &groups,
        schema,
        &context.cdr_files,
        &context.extract,
    );
    let by_wave: BTreeMap<usize, Exposure> = out
        .drain(1 + ops..)
        .enumerate()
        .map(|(w, x)| (w + 1, x))
        .collect();
    let by_operation: BTreeMap<String, Exposure> = out
        .drain(1..)
        .zip(&analysis.operations)
        .filter(|(x, _)| !x.subscribers.is_empty() || !x.bulk.is_empty())
        .map(|(x, op)| (op.id.clone(), x))
        .collect();
    Exposures {
        total: out.pop().expect("the total"),
        by_operation,
        by_wave,
    }
}

/// An exposure as the report shows it: pseudonymised rows.
pub fn view(x: &Exposure, p: &Pseudonymizer) -> towerwatch_report::ExposureView {
    let rows = x
        .rows(p)
        .into_iter()
        .filter(|r| r.tier != Tier::Counterparty)
        .map(|r| (r.shown, r.tier, r.exposed))
        .map(|(subscriber, tier, e)| towerwatch_report::ExposedRow {
            subscriber,
            tier: tier.name().into(),
            records: e.records,
            from: e.from.map(|t| t.to_string()),
            to: e.to.map(|t| t.to_string()),
            cells: e.cells.len(),
            reached_by: e.reached_by.iter().map(|(k, v)| p.id(*k, v)).collect(),
        })
        .collect();
    towerwatch_report::ExposureView {
        subscribers: rows,
        counterparties: x.count(Tier::Counterparty),
        bulk_reads: x.bulk.len(),
        records_scanned: x.cdr_rows,
    }
}
