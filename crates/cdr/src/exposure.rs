//! Whose histories were read. Audit logs hold statements, not results, so each stolen query's
//! predicates are re-run over a CDR extract (CSV with the mediated-CDR header): **tier 1** the
//! subscribers the query named, with the records, time range and cells that came back;
//! **tier 2** the counterparties those records reveal; **tier 3** the subscribers covered by
//! bulk reads without subscriber predicates. Without an extract, tier 1 still lists the
//! identifiers and the windows the queries asked for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::analytics::{Finding, Rule};
use crate::pseudo::normalise;
use crate::sql::IdKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Named in the query's predicates: history and location read.
    Named,
    /// A counterparty in the records read: numbers and call times revealed.
    Counterparty,
}

/// What was exposed of one subscriber.
#[derive(Debug, Clone, Default)]
pub struct Exposed {
    pub kind: Option<IdKind>,
    /// Records returned (distinct); `None` without a CDR extract.
    pub records: Option<u64>,
    /// The time range of the records returned (or, without an extract, the range asked for).
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// (area, cell) of the records.
    pub cells: BTreeSet<(u64, u64)>,
    pub first_read: Option<Timestamp>,
    pub last_read: Option<Timestamp>,
    /// Evidence: `file:line` of the statements.
    pub evidence: BTreeSet<String>,
    /// `user@client (application)`.
    pub actors: BTreeSet<String>,
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

#[derive(Debug, Default)]
pub struct Exposure {
    pub subscribers: BTreeMap<(Tier, String), Exposed>,
    pub bulk: Vec<Bulk>,
    pub cdr_rows: u64,
    pub cdr_rejected: Vec<String>,
    pub cdr_rejected_count: u64,
    /// CSV files that are no CDR extract (another header), named with the reason.
    pub skipped: Vec<String>,
}

/// The CDR table a record type is loaded into.
pub fn table_of(record_type: &str) -> &'static str {
    match record_type {
        "moCallRecord" | "mtCallRecord" | "0" | "1" => "voice_cdr",
        "moSMSRecord" | "mtSMSRecord" | "6" | "7" => "sms_cdr",
        _ => "data_cdr",
    }
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

struct Columns {
    record_id: usize,
    record_type: usize,
    start: usize,
    area: usize,
    cell: usize,
    by_name: HashMap<String, usize>,
}

impl Columns {
    fn new(header: &csv::StringRecord) -> Option<Columns> {
        let by_name: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_string(), i))
            .collect();
        let get = |n: &str| by_name.get(n).copied();
        Some(Columns {
            record_id: get("record_id")?,
            record_type: get("record_type")?,
            start: get("start_time")?,
            area: get("lac_tac")?,
            cell: get("cell_id")?,
            by_name,
        })
    }
}

/// Computes the exposure of the targeted lookups and bulk exports among `findings`, over the
/// CDR extract files (none: tier 1 from the predicates alone).
pub fn compute(findings: &[Finding], cdr_files: &[PathBuf]) -> Exposure {
    let mut x = Exposure::default();
    let targeted: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == Rule::TargetedLookup && f.read.is_some())
        .collect();
    let bulk: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.rule == Rule::BulkExport && f.read.is_some())
        .collect();
    for f in &targeted {
        let r = f.read.as_ref().expect("filtered");
        for (kind, _, id) in &r.ids {
            let e = x.subscribers.entry((Tier::Named, id.clone())).or_default();
            e.kind = Some(*kind);
            e.read_at(f);
            if cdr_files.is_empty() {
                // The window asked for: no lower bound once any read had none.
                match r.from {
                    None => e.unbounded = true,
                    Some(f) => e.from = Some(e.from.map_or(f, |g| g.min(f))),
                }
                if e.unbounded {
                    e.from = None;
                }
                let to = r.to.unwrap_or(r.executed).min(r.executed);
                e.to = Some(e.to.map_or(to, |t| t.max(to)));
            }
        }
    }
    if cdr_files.is_empty() {
        for f in &bulk {
            x.bulk.push(bulk_entry(f, None, None));
        }
        return x;
    }
    // Every identifier any stolen query named, and the columns they were named in: most rows
    // match none and are passed over after one look at those columns.
    let wanted: HashSet<&str> = targeted
        .iter()
        .flat_map(|f| {
            f.read
                .as_ref()
                .expect("filtered")
                .ids
                .iter()
                .map(|(_, _, v)| v.as_str())
        })
        .collect();
    let id_columns: BTreeSet<(IdKind, &str)> = targeted
        .iter()
        .flat_map(|f| {
            f.read
                .as_ref()
                .expect("filtered")
                .ids
                .iter()
                .map(|(k, c, _)| (*k, c.as_str()))
        })
        .collect();
    let mut bulk_subs: Vec<HashSet<String>> = vec![HashSet::new(); bulk.len()];
    let mut bulk_rows = vec![0u64; bulk.len()];
    for file in cdr_files {
        let name = file.display().to_string();
        let mut builder = csv::ReaderBuilder::new();
        builder.flexible(true);
        let Ok(mut rdr) = crate::run::open_csv(file, builder) else {
            x.cdr_rejected_count += 1;
            x.cdr_rejected.push(format!("{name}: cannot open"));
            continue;
        };
        let Some(cols) = rdr.headers().ok().and_then(Columns::new) else {
            x.skipped.push(format!("{name}: not a CDR extract (its header lacks record_id, record_type, start_time, lac_tac or cell_id)"));
            continue;
        };
        let idx = |n: &str| cols.by_name.get(n).copied();
        let (served, calling, called) = (
            idx("served_msisdn"),
            idx("calling_number"),
            idx("called_number"),
        );
        let mut record = csv::StringRecord::new();
        loop {
            let line = rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Err(e) => {
                    x.cdr_rejected_count += 1;
                    if x.cdr_rejected.len() < 100 {
                        x.cdr_rejected.push(format!("{name}:{line}: {e}"));
                    }
                    continue;
                }
                Ok(true) => {}
            }
            let Some(start) = record
                .get(cols.start)
                .and_then(|s| s.parse::<Timestamp>().ok())
            else {
                x.cdr_rejected_count += 1;
                if x.cdr_rejected.len() < 100 {
                    x.cdr_rejected
                        .push(format!("{name}:{line}: no valid start_time"));
                }
                continue;
            };
            x.cdr_rows += 1;
            let table = table_of(&record[cols.record_type]);
            let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
            let named_here = id_columns.iter().any(|(kind, column)| {
                cols.by_name
                    .get(*column)
                    .and_then(|&i| record.get(i))
                    .is_some_and(|v| {
                        if v.bytes().all(|b| b.is_ascii_digit())
                            && !v.starts_with("00")
                            && *kind != IdKind::Imei
                        {
                            wanted.contains(v)
                        } else {
                            wanted.contains(normalise(*kind, v).as_str())
                        }
                    })
            });
            for f in targeted.iter().filter(|_| named_here) {
                let r = f.read.as_ref().expect("filtered");
                if !r.tables.iter().any(|t| t == table)
                    || r.from.is_some_and(|from| start < from)
                    || start >= r.to.unwrap_or(r.executed).min(r.executed)
                {
                    continue;
                }
                for (kind, column, id) in &r.ids {
                    let Some(&ci) = cols.by_name.get(column) else {
                        continue;
                    };
                    if normalise(*kind, &record[ci]) != *id {
                        continue;
                    }
                    let e = x.subscribers.entry((Tier::Named, id.clone())).or_default();
                    if e.record_ids
                        .insert(format!("{table}:{}", &record[cols.record_id]))
                    {
                        e.records = Some(e.records.unwrap_or(0) + 1);
                        e.widen(start);
                        if let (Ok(a), Ok(c)) =
                            (record[cols.area].parse(), record[cols.cell].parse())
                        {
                            e.cells.insert((a, c));
                        }
                    }
                    // The other party of the record.
                    if *kind == IdKind::Msisdn {
                        for other in [field(calling), field(called), field(served)] {
                            let other = normalise(IdKind::Msisdn, other);
                            if other.is_empty()
                                || other == *id
                                || r.ids.iter().any(|(_, _, i)| *i == other)
                            {
                                continue;
                            }
                            let c = x
                                .subscribers
                                .entry((Tier::Counterparty, other))
                                .or_default();
                            c.kind = Some(IdKind::Msisdn);
                            if c.record_ids
                                .insert(format!("{table}:{}", &record[cols.record_id]))
                            {
                                c.records = Some(c.records.unwrap_or(0) + 1);
                                c.widen(start);
                                c.read_at(f);
                            }
                        }
                    }
                }
            }
            for (i, f) in bulk.iter().enumerate() {
                let r = f.read.as_ref().expect("filtered");
                if r.tables.iter().any(|t| t == table)
                    && r.from.is_none_or(|from| start >= from)
                    && start < r.to.unwrap_or(r.executed).min(r.executed)
                {
                    bulk_rows[i] += 1;
                    bulk_subs[i].insert(field(served).to_string());
                }
            }
        }
    }
    // A counterparty who is also named is reported once, as named.
    let named: BTreeSet<String> = x
        .subscribers
        .keys()
        .filter(|(t, _)| *t == Tier::Named)
        .map(|(_, id)| id.clone())
        .collect();
    x.subscribers
        .retain(|(t, id), _| *t == Tier::Named || !named.contains(id));
    for (i, f) in bulk.iter().enumerate() {
        x.bulk.push(bulk_entry(
            f,
            Some(bulk_subs[i].len() as u64),
            Some(bulk_rows[i]),
        ));
    }
    x
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
pub type CellTable = HashMap<(u64, u64), (String, f64, f64)>;

/// The cell table (OpenCelliD/MLS CSV).
pub fn read_cells(path: &Path) -> Result<CellTable, String> {
    let mut t = crate::run::Table::open(path)?;
    let (radio, area, cell, lon, lat) = (
        t.col("radio")?,
        t.col("area")?,
        t.col("cell")?,
        t.col("lon")?,
        t.col("lat")?,
    );
    let mut out = HashMap::new();
    for (i, rec) in t.reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}:{}: {e}", t.name, i + 2))?;
        let num = |j: usize| rec.get(j).and_then(|v| v.parse::<f64>().ok());
        match (num(area), num(cell), num(lon), num(lat)) {
            (Some(a), Some(c), Some(x), Some(y)) => {
                out.insert((a as u64, c as u64), (rec[radio].to_string(), x, y));
            }
            _ => {
                return Err(format!(
                    "{}:{}: area, cell, lon and lat must be numbers",
                    t.name,
                    i + 2
                ))
            }
        }
    }
    Ok(out)
}
