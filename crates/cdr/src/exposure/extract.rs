//! Reading the CDR extract: its CSV files, their headers (for the schema), the times they
//! write, each file's columns by role, and the CDR tables each file holds.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::schema::{column_role, roles_by_values, ExtractHeader, Role, Schema, TableKind};
use crate::sql::IdKind;

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
pub(super) struct Columns {
    pub(super) time: usize,
    pub(super) record_id: Option<usize>,
    pub(super) record_type: Option<usize>,
    /// (index, kind, name)
    pub(super) ids: Vec<(usize, IdKind, String)>,
    pub(super) area: Option<usize>,
    pub(super) cell: Option<usize>,
    pub(super) by_name: HashMap<String, usize>,
}

impl Columns {
    pub(super) fn new(header: &csv::StringRecord, schema: &Schema) -> Result<Columns, String> {
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
pub(super) fn tables_of_file(
    path: &Path,
    schema: &Schema,
    cols: &Columns,
) -> (Vec<String>, &'static str) {
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

/// The name of column `i` as the file writes it (lowercased).
pub(super) fn record_name(cols: &Columns, i: usize) -> String {
    cols.by_name
        .iter()
        .find(|(_, &j)| j == i)
        .map(|(n, _)| n.clone())
        .unwrap_or_default()
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
