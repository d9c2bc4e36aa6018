//! Learning the schema from the audited statements: what each relation and column showed
//! (names, literals, loads, use), then the decision of which are CDR and subscriber tables.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::extract::learn_from_headers;
use super::file::apply_given;
use super::names::parent_key;
use super::{
    column_role, Candidate, ExtractHeader, How, Role, Schema, SchemaFile, Table, TableKind,
};
use crate::numbers::{self, CountryCodeVotes, Numbering};
use crate::sql::{Compare, Facts, IdKind};

/// What one column of one relation showed.
#[derive(Debug, Default, Clone)]
pub(super) struct ColumnSeen {
    equals_literals: u64,
    shaped: [u64; 3],
    time_ranges: u64,
}

/// What one relation (partitions folded in) showed.
#[derive(Debug, Default, Clone)]
pub(super) struct RelationSeen {
    pub(super) names: BTreeSet<String>,
    loads: u64,
    reads: u64,
    /// Statements naming it for identifiers and a time range at once.
    lookups_over_time: u64,
    pub(super) columns: BTreeMap<String, ColumnSeen>,
    pub(super) load_columns: BTreeSet<String>,
}

/// Learns the schema from statements and extract headers.
#[derive(Default)]
pub struct Discovery {
    relations: BTreeMap<String, RelationSeen>,
    children: HashMap<String, String>,
    votes: CountryCodeVotes,
}

fn kind_index(k: IdKind) -> usize {
    match k {
        IdKind::Msisdn => 0,
        IdKind::Imsi => 1,
        IdKind::Imei => 2,
    }
}

impl Discovery {
    /// Takes one statement's facts.
    pub fn observe(&mut self, f: &Facts) {
        if let Some((child, parent)) = &f.child_of {
            self.children.insert(child.clone(), parent.clone());
        }
        let load_target = f.load.as_ref().map(|(t, _)| t.as_str());
        for r in &f.relations {
            let seen = self.relations.entry(parent_key(r)).or_default();
            seen.names.insert(r.clone());
            if Some(r.as_str()) == load_target {
                seen.loads += 1;
            } else {
                seen.reads += 1;
            }
        }
        if let Some((t, cols)) = &f.load {
            let seen = self.relations.entry(parent_key(t)).or_default();
            seen.load_columns.extend(cols.iter().cloned());
        }
        let mut id_rel: BTreeSet<String> = BTreeSet::new();
        let mut time_rel: BTreeSet<String> = BTreeSet::new();
        for (column, compare, lit) in f.literals() {
            let targets: Vec<String> = match &column.relation {
                Some(r) => vec![parent_key(r)],
                None => f.relations.iter().map(|r| parent_key(r)).collect(),
            };
            let shaped = numbers::shape(lit);
            let is_time = matches!(compare, Compare::Lower | Compare::Upper)
                && crate::analytics::parse_bound(lit).is_some();
            if compare == Compare::Equals && shaped == Some(IdKind::Msisdn) {
                self.votes.add(lit);
            }
            for key in targets {
                let seen = self.relations.entry(key.clone()).or_default();
                let c = seen.columns.entry(column.name.clone()).or_default();
                if compare == Compare::Equals {
                    c.equals_literals += 1;
                    if let Some(k) = shaped {
                        c.shaped[kind_index(k)] += 1;
                        id_rel.insert(key.clone());
                    }
                }
                if is_time {
                    c.time_ranges += 1;
                    time_rel.insert(key);
                }
            }
        }
        for key in id_rel.intersection(&time_rel) {
            if let Some(seen) = self.relations.get_mut(key) {
                seen.lookups_over_time += 1;
            }
        }
        for c in f
            .projected
            .iter()
            .chain(f.joins.iter().flat_map(|(a, b)| [a, b]))
        {
            if let Some(r) = &c.relation {
                self.relations
                    .entry(parent_key(r))
                    .or_default()
                    .columns
                    .entry(c.name.clone())
                    .or_default();
            }
        }
    }

    /// Numbers from elsewhere (the CDR extract, the register) for the country code.
    pub fn number(&mut self, raw: &str) {
        self.votes.add(raw);
    }

    /// Decides the schema. `headers` are the CDR extract's files and column names.
    pub fn finish(mut self, headers: &[ExtractHeader], given: Option<&SchemaFile>) -> Schema {
        // Explicit children (PARTITION OF, INHERITS) join their parent.
        let children: Vec<(String, String)> = self.children.drain().collect();
        for (child, parent) in children {
            let (ck, pk) = (parent_key(&child), parent_key(&parent));
            if ck == pk {
                continue;
            }
            if let Some(c) = self.relations.remove(&ck) {
                let p = self.relations.entry(pk).or_default();
                p.names.extend(c.names);
                p.loads += c.loads;
                p.reads += c.reads;
                p.lookups_over_time += c.lookups_over_time;
                p.load_columns.extend(c.load_columns);
                for (k, v) in c.columns {
                    let e = p.columns.entry(k).or_default();
                    e.equals_literals += v.equals_literals;
                    e.time_ranges += v.time_ranges;
                    for i in 0..3 {
                        e.shaped[i] += v.shaped[i];
                    }
                }
            }
        }
        let mut schema = Schema::default();
        for (key, seen) in &self.relations {
            let mut columns: BTreeSet<&String> = seen.columns.keys().collect();
            columns.extend(seen.load_columns.iter());
            let mut ids = Vec::new();
            let mut time: Option<(String, How, u8)> = None;
            let mut times: Vec<String> = Vec::new();
            let mut location = Vec::new();
            let mut other_cdr_columns = 0;
            // The time column the statements bound most wins over names.
            let used_time = columns
                .iter()
                .filter(|c| matches!(column_role(c), Some(Role::Time(_))))
                .filter_map(|c| seen.columns.get(*c).map(|s| (s.time_ranges, (*c).clone())))
                .filter(|(n, _)| *n > 0)
                .max();
            for c in &columns {
                let stats = seen.columns.get(*c).cloned().unwrap_or_default();
                match column_role(c) {
                    Some(Role::Id(k)) => ids.push(((*c).clone(), k, How::Name)),
                    Some(Role::Time(rank)) => {
                        times.push((*c).clone());
                        let rank = if used_time.as_ref().is_some_and(|(_, u)| u == *c) {
                            9
                        } else {
                            rank
                        };
                        if time.as_ref().is_none_or(|(_, _, r)| rank > *r) {
                            time = Some(((*c).clone(), How::Name, rank));
                        }
                    }
                    Some(Role::Location) => location.push((*c).clone()),
                    Some(Role::Duration | Role::RecordType) => other_cdr_columns += 1,
                    Some(Role::RecordId) => {}
                    None => {
                        let shaped: u64 = stats.shaped.iter().sum();
                        if stats.equals_literals > 0
                            && shaped * 10 >= stats.equals_literals * 6
                            && stats.time_ranges == 0
                        {
                            let k = [IdKind::Msisdn, IdKind::Imsi, IdKind::Imei]
                                .into_iter()
                                .max_by_key(|k| stats.shaped[kind_index(*k)])
                                .expect("three kinds");
                            ids.push(((*c).clone(), k, How::Values));
                        } else if stats.time_ranges > 0 {
                            times.push((*c).clone());
                            if time.is_none() {
                                time = Some(((*c).clone(), How::Values, 0));
                            }
                        }
                    }
                }
            }
            if ids.is_empty() {
                continue;
            }
            let msisdn_columns = ids.iter().filter(|(_, k, _)| *k == IdKind::Msisdn).count();
            let kinds: BTreeSet<IdKind> = ids.iter().map(|(_, k, _)| *k).collect();
            let base = key.rsplit('.').next().unwrap_or(key);
            let cdr_name = [
                "cdr", "call", "voice", "sms", "usage", "xdr", "ipdr", "record", "traffic", "gprs",
                "mms", "event", "session", "msc", "pgw",
            ]
            .iter()
            .any(|k| base.contains(k));
            let subscriber_name = [
                "subscr",
                "customer",
                "cust",
                "crm",
                "sim",
                "contract",
                "account",
                "party",
                "person",
                "directory",
                "mnp",
                "owner",
                "msisdn",
                "line",
            ]
            .iter()
            .any(|k| base.contains(k));
            let mut evidence = Vec::new();
            let mut cdr_score = 0;
            if !location.is_empty() {
                cdr_score += 2;
                evidence.push("location columns".to_string());
            }
            if other_cdr_columns > 0 {
                cdr_score += 2;
                evidence.push("duration/record-type columns".into());
            }
            if msisdn_columns >= 2 {
                cdr_score += 2;
                evidence.push("both parties' numbers".into());
            }
            if cdr_name {
                cdr_score += 3;
                evidence.push("its name".into());
            }
            if seen.lookups_over_time > 0 {
                cdr_score += 2;
                evidence.push(format!(
                    "read for identifiers over a time range {} time{}",
                    seen.lookups_over_time,
                    if seen.lookups_over_time == 1 { "" } else { "s" }
                ));
            }
            if seen.loads > 0 {
                cdr_score += 1;
                evidence.push(format!(
                    "loaded {} time{}",
                    seen.loads,
                    if seen.loads == 1 { "" } else { "s" }
                ));
            }
            let mut sub_score = 0;
            if subscriber_name {
                sub_score += 3;
            }
            if time.is_none() {
                sub_score += 2;
            }
            if kinds.len() >= 2 && msisdn_columns < 2 {
                sub_score += 1;
            }
            // A name alone (`billing.daily_usage`) does not make a table of records: it also
            // needs their shape (where, how long, both parties) or their use.
            let strong_name = ["cdr", "xdr", "ipdr", "voice", "call"]
                .iter()
                .any(|k| base.contains(k));
            let structural = !location.is_empty()
                || other_cdr_columns > 0
                || msisdn_columns >= 2
                || seen.lookups_over_time > 0
                || strong_name;
            let kind = if cdr_score >= 2 && cdr_score > sub_score && structural {
                TableKind::Cdr
            } else if sub_score >= 2
                || seen
                    .columns
                    .values()
                    .any(|c| c.shaped.iter().sum::<u64>() > 0)
            {
                evidence = vec![if subscriber_name {
                    "its name".into()
                } else {
                    "identifier columns, no record time".into()
                }];
                TableKind::Subscriber
            } else {
                continue;
            };
            let mut seen_as: Vec<String> =
                seen.names.iter().filter(|n| *n != key).cloned().collect();
            seen_as.sort();
            schema.tables.push(Table {
                name: key.clone(),
                kind,
                ids,
                time: if kind == TableKind::Cdr {
                    time.map(|(c, h, _)| (c, h))
                } else {
                    None
                },
                times: if kind == TableKind::Cdr {
                    times
                } else {
                    Vec::new()
                },
                location,
                seen_as,
                evidence,
            });
        }
        learn_from_headers(&mut schema, &self.relations, headers);
        if let Some(g) = given {
            apply_given(&mut schema, g);
        }
        schema
            .tables
            .sort_by(|a, b| (a.kind as u8, &a.name).cmp(&(b.kind as u8, &b.name)));
        // Identifier-shaped literals on relations that are neither.
        for (key, seen) in &self.relations {
            if schema.tables.iter().any(|t| &t.name == key) {
                continue;
            }
            for (col, c) in &seen.columns {
                let shaped: u64 = c.shaped.iter().sum();
                if shaped > 0 {
                    let k = [IdKind::Msisdn, IdKind::Imsi, IdKind::Imei]
                        .into_iter()
                        .max_by_key(|k| c.shaped[kind_index(*k)])
                        .expect("three kinds");
                    schema.candidates.push(Candidate {
                        relation: key.clone(),
                        column: col.clone(),
                        kind: k,
                        literals: shaped,
                    });
                }
            }
        }
        schema.numbering = match given.and_then(|g| g.country_code.clone()) {
            Some(cc) => Numbering {
                country_code: Some(cc),
                how: "given in --schema".into(),
            },
            None => match self.votes.decide() {
                Some((cc, n)) => Numbering {
                    country_code: Some(cc),
                    how: format!(
                        "{n} national number{} also seen in international form",
                        if n == 1 { "" } else { "s" }
                    ),
                },
                None => Numbering {
                    country_code: None,
                    how: "no national number seen with its international form".into(),
                },
            },
        };
        schema.build_index();
        schema
    }
}
