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

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::analytics::{Finding, Rule};
use crate::numbers::Numbering;
use crate::schema::{
    column_role, family_of, roles_by_values, ExtractHeader, Role, Schema, TableKind,
};
use crate::sql::IdKind;

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
    record_ids: HashSet<String>,
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

    fn record(&mut self, id: &str, t: Timestamp, cell: Option<&CellKey>) -> bool {
        if !self.record_ids.insert(id.to_string()) {
            return false;
        }
        self.records = Some(self.records.unwrap_or(0) + 1);
        self.widen(t);
        if let Some(c) = cell {
            self.cells.insert(c.clone());
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

/// The CSV files under a directory (or the file itself), sorted; `.csv.gz` and `.csv.zst`
/// count too.
pub fn csv_files(path: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if path.is_dir() {
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                out.extend(csv_files(&e.path()));
            }
        }
    } else if path.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        [".csv", ".csv.gz", ".csv.zst"]
            .iter()
            .any(|x| n.ends_with(x))
    }) {
        out.push(path.to_path_buf());
    }
    out.sort();
    out
}

/// The header of each file, and a sample of the numbers in its identifier columns (for the
/// country code).
pub fn extract_headers(files: &[PathBuf]) -> (Vec<ExtractHeader>, Vec<String>) {
    let mut headers = Vec::new();
    let mut numbers = Vec::new();
    // Value roles are read from the first file of each header.
    let mut by_header: HashMap<Vec<String>, Vec<(String, Role)>> = HashMap::new();
    for f in files {
        let Ok(mut rdr) = crate::run::open_csv(f, csv::ReaderBuilder::new()) else {
            continue;
        };
        let Ok(h) = rdr.headers() else { continue };
        let h: Vec<String> = h.iter().map(|c| c.trim().to_string()).collect();
        let sample = !by_header.contains_key(&h);
        let rows: Vec<Vec<String>> = if sample || numbers.len() < 20_000 {
            rdr.records()
                .take(2_000)
                .flatten()
                .map(|r| r.iter().map(String::from).collect())
                .collect()
        } else {
            Vec::new()
        };
        if sample {
            by_header.insert(h.clone(), roles_by_values(&h, &rows));
        }
        let by_values = by_header[&h].clone();
        let id_cols: Vec<usize> = h
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                matches!(column_role(c), Some(Role::Id(IdKind::Msisdn)))
                    || by_values
                        .iter()
                        .any(|(n, r)| n == *c && *r == Role::Id(IdKind::Msisdn))
            })
            .map(|(i, _)| i)
            .collect();
        if numbers.len() < 20_000 {
            for rec in &rows {
                for &i in &id_cols {
                    if let Some(v) = rec.get(i).filter(|v| !v.is_empty()) {
                        numbers.push(v.clone());
                    }
                }
            }
        }
        headers.push(ExtractHeader {
            file: f.display().to_string(),
            columns: h,
            by_values,
        });
    }
    (headers, numbers)
}

/// A CDR time: RFC 3339 or `YYYY-MM-DD HH:MM:SS[.f][±HH[:MM]]` (offset as written, else the
/// given zone, else UTC), or epoch seconds / milliseconds.
pub fn parse_cdr_time(s: &str, tz: Option<&jiff::tz::TimeZone>) -> Option<Timestamp> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        return match s.len() {
            9 | 10 => Timestamp::from_second(n).ok(),
            12 | 13 => Timestamp::from_millisecond(n).ok(),
            _ => None,
        };
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    // (Byte 19 may fall inside a character of a hostile value: `get`, not a slice.)
    let has_offset = s
        .get(19..)
        .is_some_and(|t| !t.is_empty() && t.contains(['+', '-', 'Z']))
        || s.ends_with(" UTC");
    if has_offset {
        return towerwatch_sources::postgres::parse_time(&s.replace('T', " "));
    }
    let dt: jiff::civil::DateTime = s.replace(' ', "T").parse().ok()?;
    match tz {
        Some(z) => dt.to_zoned(z.clone()).ok().map(|z| z.timestamp()),
        None => dt
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp()),
    }
}

/// The columns of one extract file, by role.
struct Columns {
    time: usize,
    record_id: Option<usize>,
    record_type: Option<usize>,
    /// (index, kind, name)
    ids: Vec<(usize, IdKind, String)>,
    area: Option<usize>,
    cell: Option<usize>,
    by_name: HashMap<String, usize>,
}

impl Columns {
    fn new(header: &csv::StringRecord, schema: &Schema) -> Result<Columns, String> {
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let by_name: HashMap<String, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        // The schema's own column names come first: they are the table's.
        let learned_time: BTreeSet<&str> = schema
            .cdr_tables()
            .filter_map(|t| t.time.as_ref().map(|(c, _)| c.as_str()))
            .collect();
        let mut ids = Vec::new();
        let (mut time, mut rank) = (None, 0u8);
        let (mut record_id, mut record_type, mut area, mut cell) = (None, None, None, None);
        for (i, n) in names.iter().enumerate() {
            let learned_id = schema.cdr_tables().find_map(|t| t.id_kind(n));
            let role = column_role(n).or_else(|| schema.value_roles.get(n).copied());
            match (learned_id, role) {
                (Some(k), _) | (None, Some(Role::Id(k))) => ids.push((i, k, n.clone())),
                (None, Some(Role::Time(r))) => {
                    let r = if learned_time.contains(n.as_str()) {
                        9
                    } else {
                        r
                    };
                    if time.is_none() || r > rank {
                        time = Some(i);
                        rank = r;
                    }
                }
                (None, Some(Role::RecordId)) if record_id.is_none() => record_id = Some(i),
                (None, Some(Role::RecordType)) if record_type.is_none() => record_type = Some(i),
                (None, Some(Role::Location)) => {
                    let l = n.as_str();
                    if ["lac", "tac", "area"].iter().any(|k| l.contains(k)) {
                        area.get_or_insert(i);
                    } else {
                        cell.get_or_insert(i);
                    }
                }
                _ => {}
            }
        }
        if ids.is_empty() {
            return Err("no subscriber identifier column".into());
        }
        let time = time.ok_or("no time column")?;
        Ok(Columns {
            time,
            record_id,
            record_type,
            ids,
            area,
            cell,
            by_name,
        })
    }
}

/// Which CDR tables a file holds: by its name, by a record-type column, the only table, or all.
fn tables_of_file(path: &Path, schema: &Schema, cols: &Columns) -> (Vec<String>, &'static str) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for t in schema.cdr_tables() {
        for n in std::iter::once(&t.name).chain(&t.seen_as) {
            let short = n.rsplit('.').next().unwrap_or(n);
            if name.contains(short) && best.as_ref().is_none_or(|(l, _)| short.len() > *l) {
                best = Some((short.len(), t.name.clone()));
            }
        }
    }
    if let Some((_, t)) = best {
        return (vec![t], "file name");
    }
    for t in schema
        .tables
        .iter()
        .filter(|t| t.kind == TableKind::Subscriber)
    {
        let short = t.name.rsplit('.').next().unwrap_or(&t.name);
        if name.contains(short) {
            return (Vec::new(), "a subscriber table");
        }
    }
    let all: Vec<String> = schema.cdr_tables().map(|t| t.name.clone()).collect();
    if cols.record_type.is_some() && schema.cdr_tables().any(|t| t.family().is_some()) {
        return (all, "record type");
    }
    if all.len() == 1 {
        return (all, "the only CDR table");
    }
    (
        all,
        "every CDR table (no table name or record type to tell them apart)",
    )
}

/// Computes the exposure of the targeted lookups, subscriber lookups and bulk exports among
/// `findings`, over the CDR extract files (none: the named tier from the predicates alone).
pub fn compute(
    findings: &[Finding],
    schema: &Schema,
    cdr_files: &[PathBuf],
    opts: &ExtractOptions,
) -> Exposure {
    let all: Vec<usize> = (0..findings.len()).collect();
    compute_grouped(findings, &[all], schema, cdr_files, opts)
        .pop()
        .expect("one group")
}

/// As [`compute`], for several groups of findings at once (one pass over the extract): the
/// exposure of each operation and wave as well as of all.
pub fn compute_grouped(
    findings: &[Finding],
    groups: &[Vec<usize>],
    schema: &Schema,
    cdr_files: &[PathBuf],
    opts: &ExtractOptions,
) -> Vec<Exposure> {
    let numbering: &Numbering = &schema.numbering;
    let mut out: Vec<Exposure> = groups.iter().map(|_| Exposure::default()).collect();
    // Per finding, the groups it is in.
    let mut member: Vec<Vec<usize>> = vec![Vec::new(); findings.len()];
    for (g, list) in groups.iter().enumerate() {
        for &i in list {
            if let Some(m) = member.get_mut(i) {
                m.push(g);
            }
        }
    }
    let targeted: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].rule == Rule::TargetedLookup && findings[i].read.is_some())
        .collect();
    let bulk: Vec<usize> = (0..findings.len())
        .filter(|&i| findings[i].rule == Rule::BulkExport && findings[i].read.is_some())
        .collect();
    for (i, f) in findings.iter().enumerate() {
        let Some(r) = &f.read else { continue };
        let tier = match f.rule {
            Rule::TargetedLookup => Tier::Named,
            Rule::SubscriberLookup => Tier::LookedUp,
            _ => continue,
        };
        for &g in &member[i] {
            for id in &r.ids {
                let e = out[g]
                    .subscribers
                    .entry((tier, id.value.clone()))
                    .or_default();
                e.kind = Some(id.kind);
                e.read_at(f);
                if cdr_files.is_empty() && tier == Tier::Named {
                    // The window asked for: no lower bound once any read had none.
                    match r.from {
                        None => e.unbounded = true,
                        Some(from) => e.from = Some(e.from.map_or(from, |x| x.min(from))),
                    }
                    if e.unbounded {
                        e.from = None;
                    }
                    let to = r.to.unwrap_or(r.executed).min(r.executed);
                    e.to = Some(e.to.map_or(to, |t| t.max(to)));
                }
            }
        }
    }
    if cdr_files.is_empty() {
        for &i in &bulk {
            for &g in &member[i] {
                out[g].bulk.push(bulk_entry(&findings[i], None, None));
            }
        }
        return out;
    }
    // Every identifier any stolen query named: most rows name none and are passed over
    // after one look at their identifier columns.
    // The findings that named each identifier: a row is only checked against those.
    let mut by_value: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in &targeted {
        for id in &findings[i].read.as_ref().expect("filtered").ids {
            let list = by_value.entry(id.value.as_str()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let wanted: HashSet<&str> = by_value.keys().copied().collect();
    // IMSIs and IMEIs named by queries, and the number each belongs to (from a subscriber
    // table's extract, or from the records themselves).
    let wanted_other: HashSet<(IdKind, &str)> = targeted
        .iter()
        .flat_map(|&i| findings[i].read.as_ref().expect("filtered").ids.iter())
        .filter(|id| id.kind != IdKind::Msisdn)
        .map(|id| (id.kind, id.value.as_str()))
        .collect();
    let mut owner: HashMap<(IdKind, String), String> = HashMap::new();
    let mut bulk_subs: Vec<HashSet<String>> = vec![HashSet::new(); bulk.len()];
    let mut bulk_rows = vec![0u64; bulk.len()];
    let mut rows_total = 0u64;
    let mut rejected: Vec<String> = Vec::new();
    let mut rejected_count = 0u64;
    let mut skipped = Vec::new();
    let mut files_read = Vec::new();
    let families: HashMap<&str, Option<crate::schema::Family>> = schema
        .cdr_tables()
        .map(|t| (t.name.as_str(), t.family()))
        .collect();
    for file in cdr_files {
        let name = file.display().to_string();
        let mut builder = csv::ReaderBuilder::new();
        builder.flexible(true);
        let Ok(mut rdr) = crate::run::open_csv(file, builder) else {
            rejected_count += 1;
            rejected.push(format!("{name}: cannot open"));
            continue;
        };
        let cols = match rdr
            .headers()
            .map_err(|e| e.to_string())
            .and_then(|h| Columns::new(h, schema))
        {
            Ok(c) => c,
            Err(why) => {
                skipped.push(format!("{name}: not a CDR extract ({why})"));
                continue;
            }
        };
        let (file_tables, matched_by) = tables_of_file(file, schema, &cols);
        let by_record_type = matched_by == "record type";
        let id_cols: Vec<(usize, IdKind, &str)> = cols
            .ids
            .iter()
            .map(|(i, k, n)| (*i, *k, n.as_str()))
            .collect();
        // The column naming the record's own subscriber, where the extract says which.
        let served_col = id_cols
            .iter()
            .find(|(_, k, n)| {
                *k == IdKind::Msisdn
                    && matches!(
                        n.replace('_', "").as_str(),
                        "msisdn" | "servedmsisdn" | "subscribermsisdn" | "servicedmsisdn"
                    )
            })
            .map(|(i, _, _)| *i);
        let learn_owner =
            |record: &csv::StringRecord, owner: &mut HashMap<(IdKind, String), String>| {
                let Some(m) = served_col
                    .and_then(|i| record.get(i))
                    .filter(|m| !m.is_empty())
                else {
                    return;
                };
                for (i, k, _) in &id_cols {
                    if *k == IdKind::Msisdn {
                        continue;
                    }
                    if let Some(v) = record.get(*i) {
                        let v = numbering.normalise(*k, v);
                        if wanted_other.contains(&(*k, v.as_str())) {
                            owner
                                .entry((*k, v))
                                .or_insert_with(|| numbering.normalise(IdKind::Msisdn, m));
                        }
                    }
                }
            };
        if file_tables.is_empty() {
            // A subscriber table's rows: who owns which SIM and device.
            let mut record = csv::StringRecord::new();
            while let Ok(true) = rdr.read_record(&mut record) {
                learn_owner(&record, &mut owner);
            }
            skipped.push(format!(
                "{name}: a subscriber table (used to tie IMSIs and IMEIs to numbers)"
            ));
            continue;
        }
        let served = id_cols
            .iter()
            .find(|(_, k, _)| *k == IdKind::Msisdn)
            .map(|(i, _, _)| *i);
        let mut file_rows = 0u64;
        let mut record = csv::StringRecord::new();
        let mut row_tables: Vec<&str> = Vec::new();
        loop {
            let line = rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Err(e) => {
                    rejected_count += 1;
                    if rejected.len() < 100 {
                        rejected.push(format!("{name}:{line}: {e}"));
                    }
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                    continue;
                }
                Ok(true) => {}
            }
            file_rows += 1;
            rows_total += 1;
            let value_matches = |raw: &str, kind: IdKind| -> Option<String> {
                if raw.is_empty() {
                    return None;
                }
                // Most values are already in the normal form: no allocation for them.
                if raw.bytes().all(|b| b.is_ascii_digit())
                    && !raw.starts_with('0')
                    && kind != IdKind::Imei
                {
                    return wanted.contains(raw).then(|| raw.to_string());
                }
                let n = numbering.normalise(kind, raw);
                wanted.contains(n.as_str()).then_some(n)
            };
            let mut named_values: Vec<String> = id_cols
                .iter()
                .filter_map(|(i, k, _)| record.get(*i).and_then(|v| value_matches(v, *k)))
                .collect();
            let named_here = !named_values.is_empty();
            if !named_here && bulk.is_empty() {
                continue;
            }
            let Some(start) = record
                .get(cols.time)
                .and_then(|s| parse_cdr_time(s, opts.timezone.as_ref()))
            else {
                rejected_count += 1;
                if rejected.len() < 100 {
                    rejected.push(format!(
                        "{name}:{line}: no valid time in {}",
                        record.get(cols.time).unwrap_or("")
                    ));
                }
                continue;
            };
            row_tables.clear();
            if by_record_type {
                let fam = cols
                    .record_type
                    .and_then(|i| record.get(i))
                    .and_then(family_of);
                row_tables.extend(file_tables.iter().map(String::as_str).filter(|t| {
                    fam.is_none()
                        || families
                            .get(t)
                            .copied()
                            .flatten()
                            .is_none_or(|f| Some(f) == fam)
                }));
            } else {
                row_tables.extend(file_tables.iter().map(String::as_str));
            }
            let record_key = match cols.record_id.and_then(|i| record.get(i)) {
                Some(id) if !id.is_empty() => format!("{}:{id}", row_tables.first().unwrap_or(&"")),
                _ => format!("{name}:{line}"),
            };
            let cell: Option<CellKey> = match (cols.area, cols.cell) {
                (None, None) => None,
                (a, c) => Some((
                    canonical(a.and_then(|i| record.get(i)).unwrap_or("")),
                    canonical(c.and_then(|i| record.get(i)).unwrap_or("")),
                )),
            };
            if named_here {
                if !wanted_other.is_empty() {
                    learn_owner(&record, &mut owner);
                }
                named_values.sort();
                named_values.dedup();
                let mut candidates: Vec<usize> = named_values
                    .iter()
                    .flat_map(|v| by_value.get(v.as_str()).into_iter().flatten().copied())
                    .collect();
                candidates.sort_unstable();
                candidates.dedup();
                for ti in candidates {
                    let f = &findings[ti];
                    let r = f.read.as_ref().expect("filtered");
                    if !r.tables.iter().any(|t| row_tables.contains(&t.as_str()))
                        || r.from.is_some_and(|from| start < from)
                        || start >= r.to.unwrap_or(r.executed).min(r.executed)
                    {
                        continue;
                    }
                    let mut hit: Vec<&crate::analytics::ReadId> = Vec::new();
                    for id in &r.ids {
                        // The column the query compared, when the extract has it; else any
                        // column of the same kind (a join through the subscriber table).
                        let found = match cols.by_name.get(&id.column) {
                            Some(&i) => {
                                record
                                    .get(i)
                                    .and_then(|v| value_matches(v, id.kind))
                                    .as_deref()
                                    == Some(id.value.as_str())
                            }
                            None => id_cols.iter().any(|(i, k, _)| {
                                *k == id.kind
                                    && record.get(*i).and_then(|v| value_matches(v, *k)).as_deref()
                                        == Some(id.value.as_str())
                            }),
                        };
                        if found && !hit.iter().any(|h| h.value == id.value) {
                            hit.push(id);
                        }
                    }
                    if hit.is_empty() {
                        continue;
                    }
                    for &g in &member[ti] {
                        let x = &mut out[g];
                        for id in &hit {
                            x.subscribers
                                .entry((Tier::Named, id.value.clone()))
                                .or_default()
                                .record(&record_key, start, cell.as_ref());
                        }
                        // The other parties of the record.
                        for (i, k, _) in &id_cols {
                            if *k != IdKind::Msisdn {
                                continue;
                            }
                            let Some(raw) = record.get(*i).filter(|v| !v.is_empty()) else {
                                continue;
                            };
                            let other = numbering.normalise(IdKind::Msisdn, raw);
                            if other.is_empty() || r.ids.iter().any(|id| id.value == other) {
                                continue;
                            }
                            let c = x
                                .subscribers
                                .entry((Tier::Counterparty, other))
                                .or_default();
                            c.kind = Some(IdKind::Msisdn);
                            if c.record(&record_key, start, None) {
                                c.read_at(f);
                            }
                        }
                    }
                }
            }
            for (bi, &fi) in bulk.iter().enumerate() {
                let r = findings[fi].read.as_ref().expect("filtered");
                if r.tables.iter().any(|t| row_tables.contains(&t.as_str()))
                    && r.from.is_none_or(|from| start >= from)
                    && start < r.to.unwrap_or(r.executed).min(r.executed)
                {
                    bulk_rows[bi] += 1;
                    if let Some(v) = served.and_then(|i| record.get(i)) {
                        bulk_subs[bi].insert(numbering.normalise(IdKind::Msisdn, v));
                    }
                }
            }
        }
        files_read.push(ExtractFile {
            path: name,
            tables: file_tables,
            matched_by,
            time_column: record_name(&cols, cols.time),
            id_columns: cols.ids.iter().map(|(_, _, n)| n.clone()).collect(),
            rows: file_rows,
        });
    }
    for x in out.iter_mut() {
        // One subscriber named by number, IMSI and IMEI is one person: under the number.
        let others: Vec<(Tier, String)> = x
            .subscribers
            .iter()
            .filter(|((t, _), e)| {
                *t != Tier::Counterparty && e.kind.is_some_and(|k| k != IdKind::Msisdn)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for (tier, id) in others {
            let kind = x.subscribers[&(tier, id.clone())].kind.expect("filtered");
            let Some(m) = owner.get(&(kind, id.clone())) else {
                continue;
            };
            let mut e = x.subscribers.remove(&(tier, id.clone())).expect("listed");
            e.reached_by.insert((kind, id));
            let into = x.subscribers.entry((tier, m.clone())).or_default();
            into.kind = Some(IdKind::Msisdn);
            into.absorb(e);
        }
        // A counterparty who is also named is reported once, as named.
        let named: BTreeSet<String> = x
            .subscribers
            .keys()
            .filter(|(t, _)| *t == Tier::Named)
            .map(|(_, id)| id.clone())
            .collect();
        x.subscribers
            .retain(|(t, id), _| *t != Tier::Counterparty || !named.contains(id));
        x.cdr_rows = rows_total;
        x.cdr_rejected = rejected.clone();
        x.cdr_rejected_count = rejected_count;
        x.skipped = skipped.clone();
        x.files = files_read.clone();
    }
    for (bi, &fi) in bulk.iter().enumerate() {
        for &g in &member[fi] {
            out[g].bulk.push(bulk_entry(
                &findings[fi],
                Some(bulk_subs[bi].len() as u64),
                Some(bulk_rows[bi]),
            ));
        }
    }
    let _ = TableKind::Cdr;
    out
}

fn record_name(cols: &Columns, i: usize) -> String {
    cols.by_name
        .iter()
        .find(|(_, &j)| j == i)
        .map(|(n, _)| n.clone())
        .unwrap_or_default()
}

/// Numbers without leading zeros, so `0301` and `301` are one area.
fn canonical(v: &str) -> String {
    let t = v.trim();
    match t.parse::<u64>() {
        Ok(n) => n.to_string(),
        Err(_) => t.to_string(),
    }
}

fn bulk_entry(f: &Finding, subscribers: Option<u64>, records: Option<u64>) -> Bulk {
    let r = f.read.as_ref().expect("bulk findings carry their read");
    Bulk {
        evidence: format!("{}:{}", f.event.source, f.event.line),
        actor: format!("{}@{} ({})", f.event.user, f.event.client, f.event.app),
        tables: r.tables.clone(),
        subscribers,
        records,
    }
}

/// Cell sites by (area, cell): (radio, lon, lat).
pub type CellTable = HashMap<CellKey, (String, f64, f64)>;

/// The cell table (OpenCelliD/MLS CSV: `radio,mcc,net,area,cell,…,lon,lat,…`).
/// The cell table (`radio,…,area,cell,…,lon,lat`, OpenCelliD's columns), and its rows that
/// could not be read (each named by file and line; they are skipped, the rest is read).
pub fn read_cells(path: &Path) -> Result<(CellTable, Vec<String>), String> {
    let mut t = crate::run::Table::open(path)?;
    let (radio, area, cell, lon, lat) = (
        t.col("radio")?,
        t.col("area")?,
        t.col("cell")?,
        t.col("lon")?,
        t.col("lat")?,
    );
    let mut out = HashMap::new();
    let mut rejected = Vec::new();
    for (i, rec) in t.reader.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                rejected.push(format!("{}:{line}: {e}", t.name));
                continue;
            }
        };
        let num = |j: usize| rec.get(j).and_then(|v| v.parse::<f64>().ok());
        match (
            num(lon),
            num(lat),
            rec.get(area),
            rec.get(cell),
            rec.get(radio),
        ) {
            (Some(x), Some(y), Some(a), Some(c), Some(r)) => {
                out.insert((canonical(a), canonical(c)), (r.to_string(), x, y));
            }
            _ => rejected.push(format!("{}:{line}: lon and lat must be numbers", t.name)),
        }
    }
    Ok((out, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_every_form() {
        let at =
            |s: &str, tz: Option<&jiff::tz::TimeZone>| parse_cdr_time(s, tz).map(|t| t.to_string());
        assert_eq!(
            at("2019-03-06T02:55:00+08:00", None).as_deref(),
            Some("2019-03-05T18:55:00Z")
        );
        // Found by fuzzing: a wide character across byte 19 is no panic.
        assert_eq!(at("2019-03-06 02:55:0\u{e9}+08", None), None);
        assert_eq!(
            at("2019-03-06 02:55:00+08", None).as_deref(),
            Some("2019-03-05T18:55:00Z")
        );
        assert_eq!(
            at("2019-03-06 02:55:00", None).as_deref(),
            Some("2019-03-06T02:55:00Z")
        );
        let z = jiff::tz::TimeZone::get("Europe/Istanbul").unwrap();
        assert_eq!(
            at("2019-03-06 02:55:00", Some(&z)).as_deref(),
            Some("2019-03-05T23:55:00Z")
        );
        assert_eq!(
            at("1551840900", None).as_deref(),
            Some("2019-03-06T02:55:00Z")
        );
        assert_eq!(
            at("1551840900000", None).as_deref(),
            Some("2019-03-06T02:55:00Z")
        );
        assert_eq!(at("soon", None), None);
    }
}
