//! Which tables hold CDRs and which of their columns are subscriber identifiers, times and
//! locations — learnt from the evidence, since every warehouse names them its own way.
//!
//! [`Discovery`] reads every statement of the audit trail (and the CDR extract's headers, if
//! any) and weighs what it sees:
//! - **column names**, against a table of the names 3GPP TS 32.298 and warehouses use
//!   ([`column_role`]: `served_msisdn`, `a_number`, `CallingNumber`, `imsi`, `call_start_ts`,
//!   `seizure_time`, `cell_id`, `lac`, …);
//! - **values**: a column compared for equality with literals shaped like MSISDNs, IMSIs or
//!   IMEIs holds identifiers; a column compared by range with times is a time column;
//! - **loads**: the mediation's `COPY t (cols) FROM STDIN` and `INSERT INTO t (cols)` list every
//!   column of the tables they fill;
//! - **use**: a table read for a few identifiers over a time range is read like a CDR table;
//! - **table names** (`…cdr…`, `…call…`, `…subscriber…`), and partitions (`_2024_05`,
//!   `_y2024m05`, `_20240514`, `PARTITION OF`, `INHERITS`) folded into their parent.
//!
//! A [`SchemaFile`] (`--schema`, YAML) overrides what it names. [`Schema::describe`] says what
//! was used and how each part was learnt, so an analyst can check it.

mod describe;
mod discovery;
mod extract;
mod file;
mod names;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use crate::numbers::Numbering;
use crate::sql::{Column, Facts, IdKind};

pub use discovery::Discovery;
pub use extract::{roles_by_values, ExtractHeader};
pub use file::{SchemaFile, SchemaFileError, TableFile};
pub use names::{column_role, family_of, partition_parent};

/// What a column name says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Id(IdKind),
    /// A time column; the number ranks how much it says "when the record started" (higher
    /// is better: `start_time` over `timestamp` over `end_time`).
    Time(u8),
    Location,
    Duration,
    RecordType,
    RecordId,
}

/// How a part of the schema was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// The column's name.
    Name,
    /// Literals compared with it look like subscriber identifiers (or times).
    Values,
    /// The CDR extract's header.
    Extract,
    /// The CDR extract's values (record names, numbers like the named MSISDN columns').
    ExtractValues,
    /// Given in `--schema`.
    Given,
}

impl How {
    fn say(self) -> &'static str {
        match self {
            How::Name => "name",
            How::Values => "values",
            How::Extract => "extract header",
            How::ExtractValues => "extract values",
            How::Given => "--schema",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// Holds call, message or data records.
    Cdr,
    /// Holds who a number belongs to (customer, subscriber, SIM tables).
    Subscriber,
}

/// One table as the analytics know it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Table {
    /// The parent relation, lowercased (`dwh.call_events`).
    pub name: String,
    pub kind: TableKind,
    /// Identifier columns: (column, kind, how learnt).
    pub ids: Vec<(String, IdKind, How)>,
    /// The column that dates a record: the time column the statements bound most, else the
    /// one whose name says "start" most clearly.
    pub time: Option<(String, How)>,
    /// Every time column (a bound on any of them bounds what a statement reads).
    pub times: Vec<String>,
    pub location: Vec<String>,
    /// Names it was seen under (partitions, other schemas).
    pub seen_as: Vec<String>,
    /// Why it is a table of this kind.
    pub evidence: Vec<String>,
}

impl Table {
    pub fn id_kind(&self, column: &str) -> Option<IdKind> {
        self.ids
            .iter()
            .find(|(c, _, _)| c == column)
            .map(|(_, k, _)| *k)
    }

    pub fn is_time(&self, column: &str) -> bool {
        self.time.as_ref().is_some_and(|(c, _)| c == column)
            || self.times.iter().any(|c| c == column)
    }

    /// Family of records by the table's name: voice, sms or data (for matching extract rows).
    pub fn family(&self) -> Option<Family> {
        family_of(&self.name)
    }
}

/// What kind of records a table or a record type holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Voice,
    Sms,
    Data,
}

/// An identifier-shaped literal on a column of a table the analytics do not hold as CDR or
/// subscriber table: reported so an analyst can check it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Candidate {
    pub relation: String,
    pub column: String,
    pub kind: IdKind,
    pub literals: u64,
}

/// The schema the analytics used.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Schema {
    pub tables: Vec<Table>,
    pub candidates: Vec<Candidate>,
    pub numbering: Numbering,
    /// Extract columns whose values, not names, tell their role (lower-case names).
    #[serde(skip)]
    pub value_roles: BTreeMap<String, Role>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Schema {
    fn build_index(&mut self) {
        self.index.clear();
        for (i, t) in self.tables.iter().enumerate() {
            for n in std::iter::once(&t.name).chain(&t.seen_as) {
                self.index.insert(n.clone(), i);
                if let Some((_, last)) = n.rsplit_once('.') {
                    self.index.entry(last.to_string()).or_insert(i);
                }
            }
        }
    }

    /// The table a relation as written refers to (partitions and unqualified names resolve).
    pub fn table(&self, relation: &str) -> Option<&Table> {
        let r = relation.to_ascii_lowercase();
        let r = r.trim_matches('"');
        let found = self.index.get(r).or_else(|| {
            let parent = partition_parent(r)?;
            self.index.get(&parent).or_else(|| {
                parent
                    .rsplit_once('.')
                    .and_then(|(_, last)| self.index.get(last))
            })
        });
        found
            .or_else(|| {
                r.rsplit_once('.')
                    .and_then(|(_, last)| self.index.get(last))
            })
            .map(|&i| &self.tables[i])
    }

    pub fn cdr_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| t.kind == TableKind::Cdr)
    }
}

/// Resolves a predicate's column to (table, identifier kind) against the schema: its own
/// relation, or, unqualified, the statement's relation that has such a column.
pub fn resolve_id<'s>(schema: &'s Schema, f: &Facts, c: &Column) -> Option<(&'s Table, IdKind)> {
    let candidates: Vec<&String> = match &c.relation {
        Some(r) => vec![r],
        None => f.relations.iter().collect(),
    };
    candidates.into_iter().find_map(|r| {
        let t = schema.table(r)?;
        t.id_kind(&c.name).map(|k| (t, k))
    })
}
