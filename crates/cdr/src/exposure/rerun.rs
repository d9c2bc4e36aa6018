//! Re-running the stolen queries over the extract, for several groups of findings at once
//! (all of them, each operation, each wave): the named tier and its counterparties, the
//! subscribers looked up by hand, and what each bulk read covered.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use rustc_hash::{FxHashMap, FxHashSet};

use super::cells::canonical;
use super::extract::{parse_cdr_time, record_name, tables_of_file, Columns};
use super::{Bulk, CellKey, Exposure, ExtractFile, ExtractOptions, Tier};
use crate::analytics::{Finding, Rule};
use crate::numbers::Numbering;
use crate::schema::{family_of, Schema};
use crate::sql::IdKind;

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
    let mut by_value: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
    for &i in &targeted {
        for id in &findings[i].read.as_ref().expect("filtered").ids {
            let list = by_value.entry(id.value.as_str()).or_default();
            if list.last() != Some(&i) {
                list.push(i);
            }
        }
    }
    let wanted: FxHashSet<&str> = by_value.keys().copied().collect();
    // IMSIs and IMEIs named by queries, and the number each belongs to (from a subscriber
    // table's extract, or from the records themselves).
    let wanted_other: FxHashSet<(IdKind, &str)> = targeted
        .iter()
        .flat_map(|&i| findings[i].read.as_ref().expect("filtered").ids.iter())
        .filter(|id| id.kind != IdKind::Msisdn)
        .map(|id| (id.kind, id.value.as_str()))
        .collect();
    let mut owner: HashMap<(IdKind, String), String> = HashMap::new();
    let mut bulk_subs: Vec<FxHashSet<String>> = vec![FxHashSet::default(); bulk.len()];
    let mut bulk_rows = vec![0u64; bulk.len()];
    let mut rows_total = 0u64;
    let mut rejected: Vec<String> = Vec::new();
    let mut rejected_count = 0u64;
    let mut skipped = Vec::new();
    let mut files_read = Vec::new();
    // Records and cells by number (the same record in two files is one).
    let mut record_numbers: FxHashMap<String, u32> = FxHashMap::default();
    let mut cell_numbers: FxHashMap<CellKey, u32> = FxHashMap::default();
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
                        let v = numbering.normal(*k, v);
                        if wanted_other.contains(&(*k, &*v)) {
                            owner
                                .entry((*k, v.into_owned()))
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
                // Most values are in the normal form already: no allocation for them.
                let n = numbering.normal(kind, raw);
                wanted.contains(&*n).then(|| n.into_owned())
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
            if named_here {
                let record_key = match cols.record_id.and_then(|i| record.get(i)) {
                    Some(id) if !id.is_empty() => {
                        format!("{}:{id}", row_tables.first().unwrap_or(&""))
                    }
                    _ => format!("{name}:{line}"),
                };
                let next = record_numbers.len() as u32;
                let record_key = *record_numbers.entry(record_key).or_insert(next);
                let cell: Option<(u32, CellKey)> = match (cols.area, cols.cell) {
                    (None, None) => None,
                    (a, c) => {
                        let key = (
                            canonical(a.and_then(|i| record.get(i)).unwrap_or("")),
                            canonical(c.and_then(|i| record.get(i)).unwrap_or("")),
                        );
                        let next = cell_numbers.len() as u32;
                        Some((*cell_numbers.entry(key.clone()).or_insert(next), key))
                    }
                };
                if !wanted_other.is_empty() {
                    learn_owner(&record, &mut owner);
                }
                named_values.sort();
                named_values.dedup();
                // The record's numbers, each a party to it.
                let parties: Vec<Cow<str>> = id_cols
                    .iter()
                    .filter(|(_, k, _)| *k == IdKind::Msisdn)
                    .filter_map(|(i, _, _)| record.get(*i).filter(|v| !v.is_empty()))
                    .map(|raw| numbering.normal(IdKind::Msisdn, raw))
                    .collect();
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
                                .record(record_key, start, cell.as_ref().map(|(n, c)| (*n, c)));
                        }
                        // The other parties of the record.
                        for other in &parties {
                            if other.is_empty() || r.ids.iter().any(|id| id.value == **other) {
                                continue;
                            }
                            let c = x
                                .subscribers
                                .entry((Tier::Counterparty, other.to_string()))
                                .or_default();
                            c.kind = Some(IdKind::Msisdn);
                            if c.record(record_key, start, None) {
                                c.read_at(f);
                            }
                        }
                    }
                }
            }
            // The row's own subscriber, in the normal form once for all bulk reads.
            let mut subscriber: Option<Option<Cow<str>>> = None;
            for (bi, &fi) in bulk.iter().enumerate() {
                let r = findings[fi].read.as_ref().expect("filtered");
                if r.tables.iter().any(|t| row_tables.contains(&t.as_str()))
                    && r.from.is_none_or(|from| start >= from)
                    && start < r.to.unwrap_or(r.executed).min(r.executed)
                {
                    bulk_rows[bi] += 1;
                    let subscriber = subscriber.get_or_insert_with(|| {
                        served
                            .and_then(|i| record.get(i))
                            .map(|v| numbering.normal(IdKind::Msisdn, v))
                    });
                    if let Some(v) = subscriber {
                        if !bulk_subs[bi].contains(&**v) {
                            bulk_subs[bi].insert(v.to_string());
                        }
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
    out
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
