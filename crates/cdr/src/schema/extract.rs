//! Learning from the CDR extract: its files' headers, the roles their values show where the
//! names do not, and the relation each file's rows belong to.

use std::collections::{BTreeMap, BTreeSet};

use super::discovery::RelationSeen;
use super::{column_role, family_of, How, Role, Schema, Table, TableKind};
use crate::sql::IdKind;

/// A CDR extract file's header, with the roles its columns' values show where their names
/// do not ([`roles_by_values`]).
#[derive(Debug, Clone, Default)]
pub struct ExtractHeader {
    pub file: String,
    pub columns: Vec<String>,
    pub by_values: Vec<(String, Role)>,
}

impl ExtractHeader {
    /// A header whose columns are known by their names only.
    pub fn named(file: impl Into<String>, columns: Vec<String>) -> Self {
        ExtractHeader {
            file: file.into(),
            columns,
            by_values: Vec::new(),
        }
    }
}

/// The leading digits that tell an operator's numbers apart (country code and range).
fn number_stem(raw: &str) -> Option<String> {
    let d = crate::numbers::digits(raw)?;
    let d = d.strip_prefix("00").unwrap_or(&d);
    let d = d.strip_prefix('0').unwrap_or(d);
    (d.len() >= 8).then(|| d[..4].to_string())
}

/// Roles of columns whose names say nothing, from a sample of their rows: 3GPP TS 32.298
/// record names (`moCallRecord`, `pGWRecord`) make a record-type column; numbers shaped like
/// MSISDNs whose leading digits are those of the columns named as MSISDNs make another
/// party's number. A column counting up row by row (a record id) is none of them.
pub fn roles_by_values(columns: &[String], rows: &[Vec<String>]) -> Vec<(String, Role)> {
    let named: Vec<usize> = (0..columns.len())
        .filter(|&i| column_role(&columns[i]) == Some(Role::Id(IdKind::Msisdn)))
        .collect();
    let stems: BTreeSet<String> = rows
        .iter()
        .flat_map(|r| named.iter().filter_map(|&i| r.get(i)))
        .filter_map(|v| number_stem(v))
        .collect();
    let mut out = Vec::new();
    for (i, name) in columns.iter().enumerate() {
        if column_role(name).is_some() {
            continue;
        }
        let values: Vec<&str> = rows
            .iter()
            .filter_map(|r| r.get(i).map(|v| v.trim()))
            .filter(|v| !v.is_empty())
            .collect();
        if values.len() < 20 {
            continue;
        }
        let share = |n: usize| n as f64 / values.len() as f64;
        let record_names = values
            .iter()
            .filter(|v| v.to_ascii_lowercase().ends_with("record") && family_of(v).is_some())
            .count();
        if share(record_names) >= 0.9 {
            out.push((name.clone(), Role::RecordType));
            continue;
        }
        let counting_up = values
            .windows(2)
            .all(|w| matches!((w[0].parse::<u64>(), w[1].parse::<u64>()), (Ok(a), Ok(b)) if b > a));
        if stems.is_empty() || counting_up {
            continue;
        }
        let shaped = values
            .iter()
            .filter(|v| crate::numbers::shape(v) == Some(IdKind::Msisdn))
            .count();
        let ours = values
            .iter()
            .filter(|v| number_stem(v).is_some_and(|s| stems.contains(&s)))
            .count();
        if share(shaped) >= 0.9 && share(ours) >= 0.5 {
            out.push((name.clone(), Role::Id(IdKind::Msisdn)));
        }
    }
    out
}

/// The extract's header: a relation that loads most of its columns holds those rows; its
/// named columns fill in what the statements did not show.
pub(super) fn learn_from_headers(
    schema: &mut Schema,
    relations: &BTreeMap<String, RelationSeen>,
    headers: &[ExtractHeader],
) {
    for ExtractHeader {
        file,
        columns,
        by_values,
    } in headers
    {
        let roles: Vec<(String, Option<Role>, How)> = columns
            .iter()
            .map(|h| {
                let n = h.trim().to_ascii_lowercase();
                match column_role(h) {
                    Some(r) => (n, Some(r), How::Extract),
                    None => {
                        let v = by_values.iter().find(|(c, _)| c.eq_ignore_ascii_case(&n));
                        (n, v.map(|(_, r)| *r), How::ExtractValues)
                    }
                }
            })
            .collect();
        for (n, r) in by_values {
            schema.value_roles.insert(n.to_ascii_lowercase(), *r);
        }
        let has_id = roles.iter().any(|(_, r, _)| matches!(r, Some(Role::Id(_))));
        let has_time = roles
            .iter()
            .any(|(_, r, _)| matches!(r, Some(Role::Time(_))));
        // Records, not a list of subscribers: where, how long, or both parties.
        let record_like = roles
            .iter()
            .any(|(_, r, _)| matches!(r, Some(Role::Location | Role::Duration | Role::RecordType)))
            || roles
                .iter()
                .filter(|(_, r, _)| *r == Some(Role::Id(IdKind::Msisdn)))
                .count()
                >= 2;
        if !(has_id && has_time && record_like) {
            continue;
        }
        let names: BTreeSet<&str> = roles.iter().map(|(n, _, _)| n.as_str()).collect();
        let best = relations
            .iter()
            .map(|(k, seen)| {
                let cols: BTreeSet<&str> = seen
                    .load_columns
                    .iter()
                    .chain(seen.columns.keys())
                    .map(String::as_str)
                    .collect();
                (names.intersection(&cols).count(), k)
            })
            .max();
        let Some((overlap, key)) = best.filter(|(o, _)| o * 10 >= names.len() * 6) else {
            continue;
        };
        let _ = overlap;
        let idx = match schema.tables.iter().position(|t| &t.name == key) {
            Some(i) if schema.tables[i].kind == TableKind::Subscriber => continue,
            Some(i) => i,
            None => {
                schema.tables.push(Table {
                    name: key.clone(),
                    kind: TableKind::Cdr,
                    ids: Vec::new(),
                    time: None,
                    times: Vec::new(),
                    location: Vec::new(),
                    seen_as: relations[key]
                        .names
                        .iter()
                        .filter(|n| *n != key)
                        .cloned()
                        .collect(),
                    evidence: Vec::new(),
                });
                schema.tables.len() - 1
            }
        };
        let t = &mut schema.tables[idx];
        t.kind = TableKind::Cdr;
        let stem = std::path::Path::new(file)
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        if !t
            .evidence
            .iter()
            .any(|e| e.starts_with("columns of the CDR extract"))
        {
            t.evidence
                .push(format!("columns of the CDR extract ({stem})"));
        }
        for (n, r, how) in &roles {
            match r {
                Some(Role::Id(k)) if t.id_kind(n).is_none() => t.ids.push((n.clone(), *k, *how)),
                Some(Role::Time(_)) => {
                    if !t.times.contains(n) {
                        t.times.push(n.clone());
                    }
                    if t.time.is_none() {
                        t.time = Some((n.clone(), *how));
                    }
                }
                Some(Role::Location) if !t.location.contains(n) => t.location.push(n.clone()),
                _ => {}
            }
        }
    }
}
