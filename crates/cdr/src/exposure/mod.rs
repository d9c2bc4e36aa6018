//! Whose histories were read. Audit logs hold statements, not results, so each stolen query's
//! predicates are re-run over a CDR extract — CSV files of the warehouse's content, whatever
//! their column names ([`crate::schema::column_role`] maps them, with the columns the schema
//! learnt): **named**, the subscribers the query named, with the records, time range and cells
//! that came back; **counterparty**, the other parties those records reveal; **looked up**, the
//! subscribers whose owner, SIM or device was asked for by hand; and the subscribers covered by
//! bulk reads without subscriber predicates. Without an extract, the named tier still lists the
//! identifiers and the windows the queries asked for.
//!
//! Each file of the extract is matched to the CDR tables it holds: by its name (a table's or a
//! partition's), else by a record-type column (voice, SMS and data records to the tables named
//! for them), else to the only CDR table, else to every CDR table (said in the summary). Times
//! with an offset are read as written; times without one in the zone given
//! ([`ExtractOptions::timezone`]), else as UTC; epoch seconds and milliseconds too.

mod cells;
mod extract;
mod rerun;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use rustc_hash::FxHashSet;

use crate::analytics::Finding;
use crate::sql::IdKind;

pub use cells::{read_cells, CellTable};
pub use extract::{csv_files, extract_headers, parse_cdr_time};
pub use rerun::{compute, compute_grouped};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Named in the query's predicates: history and location read.
    Named,
    /// A counterparty in the records read: numbers and call times revealed.
    Counterparty,
    /// Looked up in the subscriber table by hand: owner, SIM and device revealed.
    LookedUp,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Named => "named",
            Tier::Counterparty => "counterparty",
            Tier::LookedUp => "looked_up",
        }
    }
}

/// A cell as the extract names it: (area, cell), as text.
pub type CellKey = (String, String);

/// What was exposed of one subscriber.
#[derive(Debug, Clone, Default)]
pub struct Exposed {
    pub kind: Option<IdKind>,
    /// Records returned (distinct); `None` without a CDR extract.
    pub records: Option<u64>,
    /// The time range of the records returned (or, without an extract, the range asked for).
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub cells: BTreeSet<CellKey>,
    pub first_read: Option<Timestamp>,
    pub last_read: Option<Timestamp>,
    /// Evidence: `file:line` of the statements.
    pub evidence: BTreeSet<String>,
    /// `user@client (application)`.
    pub actors: BTreeSet<String>,
    /// The other identifiers (IMSI, IMEI) this subscriber was named by, when the extract or a
    /// subscriber table tied them to this number.
    pub reached_by: BTreeSet<(IdKind, String)>,
    /// The records and cells seen, as numbered by the computation that saw them (an
    /// integer set: a record is looked for once per subscriber and group it reaches).
    record_ids: FxHashSet<u32>,
    cell_ids: FxHashSet<u32>,
    /// A read asked for all history (no lower time bound).
    unbounded: bool,
}

impl Exposed {
    fn widen(&mut self, t: Timestamp) {
        self.from = Some(self.from.map_or(t, |f| f.min(t)));
        self.to = Some(self.to.map_or(t, |l| l.max(t)));
    }

    fn read_at(&mut self, f: &Finding) {
        if let Some(t) = f.event.time {
            self.first_read = Some(self.first_read.map_or(t, |x| x.min(t)));
            self.last_read = Some(self.last_read.map_or(t, |x| x.max(t)));
        }
        self.evidence
            .insert(format!("{}:{}", f.event.source, f.event.line));
        self.actors.insert(format!(
            "{}@{} ({})",
            f.event.user, f.event.client, f.event.app
        ));
    }

    /// Takes in what was exposed of the same subscriber under another identifier.
    fn absorb(&mut self, other: Exposed) {
        for id in other.record_ids {
            if self.record_ids.insert(id) {
                self.records = Some(self.records.unwrap_or(0) + 1);
            }
        }
        if self.records.is_none() {
            self.records = other.records;
        }
        for t in other.from.into_iter().chain(other.to) {
            self.widen(t);
        }
        self.cells.extend(other.cells);
        self.cell_ids.extend(other.cell_ids);
        for t in other.first_read.into_iter() {
            self.first_read = Some(self.first_read.map_or(t, |x| x.min(t)));
        }
        for t in other.last_read.into_iter() {
            self.last_read = Some(self.last_read.map_or(t, |x| x.max(t)));
        }
        self.evidence.extend(other.evidence);
        self.actors.extend(other.actors);
        self.reached_by.extend(other.reached_by);
        self.unbounded |= other.unbounded;
    }

    /// Counts record `id` (numbered by the computation) once, at `t`, seen in `cell` (its
    /// number and key).
    fn record(&mut self, id: u32, t: Timestamp, cell: Option<(u32, &CellKey)>) -> bool {
        if !self.record_ids.insert(id) {
            return false;
        }
        self.records = Some(self.records.unwrap_or(0) + 1);
        self.widen(t);
        if let Some((n, c)) = cell {
            if self.cell_ids.insert(n) {
                self.cells.insert(c.clone());
            }
        }
        true
    }
}

/// A bulk read: how many subscribers' records it covered.
#[derive(Debug, Clone)]
pub struct Bulk {
    pub evidence: String,
    pub actor: String,
    pub tables: Vec<String>,
    pub subscribers: Option<u64>,
    pub records: Option<u64>,
}

/// How one extract file was read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExtractFile {
    pub path: String,
    /// The CDR tables its rows were matched to, and how.
    pub tables: Vec<String>,
    pub matched_by: &'static str,
    pub time_column: String,
    pub id_columns: Vec<String>,
    pub rows: u64,
}

#[derive(Debug, Default)]
pub struct Exposure {
    pub subscribers: BTreeMap<(Tier, String), Exposed>,
    pub bulk: Vec<Bulk>,
    pub cdr_rows: u64,
    pub cdr_rejected: Vec<String>,
    pub cdr_rejected_count: u64,
    /// CSV files that are no CDR extract, named with the reason.
    pub skipped: Vec<String>,
    pub files: Vec<ExtractFile>,
}

/// One subscriber of an exposure, as an output shows it.
pub struct Row<'a> {
    /// The identifier as the output writes it (a pseudonym unless revealed).
    pub shown: String,
    pub tier: Tier,
    pub exposed: &'a Exposed,
}

impl Exposure {
    /// The subscribers as outputs list them: by tier, then by how much was read, then by
    /// pseudonym — never in the order of the real numbers, which would leak it.
    pub fn rows(&self, p: &crate::pseudo::Pseudonymizer) -> Vec<Row<'_>> {
        let mut rows: Vec<Row<'_>> = self
            .subscribers
            .iter()
            .map(|((tier, id), e)| Row {
                shown: p.id(e.kind.unwrap_or(IdKind::Msisdn), id),
                tier: *tier,
                exposed: e,
            })
            .collect();
        rows.sort_by(|a, b| {
            (a.tier, std::cmp::Reverse(a.exposed.records), &a.shown).cmp(&(
                b.tier,
                std::cmp::Reverse(b.exposed.records),
                &b.shown,
            ))
        });
        rows
    }

    pub fn count(&self, tier: Tier) -> usize {
        self.subscribers.keys().filter(|(t, _)| *t == tier).count()
    }
}

/// How to read the extract.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// The zone of times written without an offset (UTC when not given).
    pub timezone: Option<jiff::tz::TimeZone>,
}
