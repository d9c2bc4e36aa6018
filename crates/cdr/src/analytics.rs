//! Detectors over a time-ordered stream of audited statements, with the schema
//! [`crate::schema`] learnt from the same stream.
//!
//! Rules that need no history fire from the first record: a **targeted lookup** (a CDR table,
//! one to `max_ids` subscriber identifiers — named on the CDR table or reached through a join
//! on a subscriber table — and a time range longer than `long_range_days` or none at all: the
//! Soft Cell shape, and also the lawful-disclosure shape, which the register of authorised
//! requests turns into "authorised"); a **subscriber lookup** from an interactive client or an
//! unexpected host (who owns a number, which IMSI and IMEI: reconnaissance of a target); a
//! **service account used from an interactive client**; a read from a host whose inventory
//! role is **not an application or DBA host**; **audit changes**. Baselines are learnt over the
//! first `training_days` of the stream and then fire: a **bulk export** (`COPY … TO` or an
//! unfiltered read of a CDR table) by an actor and statement the baseline does not know, and a
//! **first-seen actor** (account, client host, application) on the CDR tables.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::numbers::Numbering;
use crate::record::DbEvent;
use crate::schema::{resolve_id, Schema, TableKind};
use crate::sql::{changes_auditing, shape, Compare, Facts, IdKind, Operand, Reader, Unparsable};

/// Applications that are interactive clients or hand-run tools, not services (lowercase).
pub const INTERACTIVE_CLIENTS: [&str; 20] = [
    "psql",
    "pgadmin",
    "pgcli",
    "dbeaver",
    "datagrip",
    "sqlplus",
    "sqlcl",
    "sql developer",
    "toad",
    "heidisql",
    "navicat",
    "azure data studio",
    "sql server management studio",
    "ssms",
    "sqlcmd",
    "osql",
    "isql",
    "dbvisualizer",
    "squirrel",
    "mysql",
];

/// Inventory roles whose hosts may read the CDR store.
pub const ALLOWED_ROLES: [&str; 8] = [
    "mediation",
    "billing",
    "care_application",
    "lawful_interception",
    "analytics",
    "jump_host",
    "backup",
    "cdr_database",
];

/// An authorised request (lawful disclosure): identifiers, window, and the database account
/// that answers it.
#[derive(Debug, Clone)]
pub struct Authorised {
    pub case_id: String,
    /// Identifiers as the register writes them.
    pub ids: BTreeSet<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub account: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_ids: usize,
    pub long_range_days: i64,
    pub training_days: i64,
    pub register: Vec<Authorised>,
    /// Client address or host name → inventory role.
    pub assets: HashMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_ids: 50,
            long_range_days: 92,
            training_days: 7,
            register: Vec::new(),
            assets: HashMap::new(),
        }
    }
}

/// The detectors' rule ids, titles, levels and ATT&CK tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    TargetedLookup,
    SubscriberLookup,
    BulkExport,
    FirstSeenActor,
    ServiceAccountInteractive,
    UnexpectedHost,
    AuditChange,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::TargetedLookup,
        Rule::SubscriberLookup,
        Rule::BulkExport,
        Rule::FirstSeenActor,
        Rule::ServiceAccountInteractive,
        Rule::UnexpectedHost,
        Rule::AuditChange,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Rule::TargetedLookup => "towerwatch-cdr-targeted-lookup",
            Rule::SubscriberLookup => "towerwatch-cdr-subscriber-lookup",
            Rule::BulkExport => "towerwatch-cdr-bulk-export",
            Rule::FirstSeenActor => "towerwatch-cdr-first-seen-actor",
            Rule::ServiceAccountInteractive => "towerwatch-cdr-service-account-interactive",
            Rule::UnexpectedHost => "towerwatch-cdr-unexpected-host",
            Rule::AuditChange => "towerwatch-cdr-audit-change",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Rule::TargetedLookup => "Targeted CDR lookup: few subscribers over a long time range",
            Rule::SubscriberLookup => {
                "Subscriber looked up by hand: who owns a number, which SIM and device"
            }
            Rule::BulkExport => "Bulk CDR export outside the actor's baseline",
            Rule::FirstSeenActor => {
                "First-seen actor (account, host, application) on the CDR store"
            }
            Rule::ServiceAccountInteractive => {
                "Service account used from an interactive database client"
            }
            Rule::UnexpectedHost => "CDR store read from a host that is no application or DBA host",
            Rule::AuditChange => "Database auditing changed",
        }
    }

    /// The Sigma level name.
    pub fn level(self) -> towerwatch_event::Level {
        match self {
            Rule::FirstSeenActor | Rule::SubscriberLookup => towerwatch_event::Level::Medium,
            _ => towerwatch_event::Level::High,
        }
    }

    pub fn tags(self) -> &'static [&'static str] {
        match self {
            Rule::TargetedLookup | Rule::BulkExport => {
                &["attack.collection", "attack.t1005", "attack.t1213"]
            }
            Rule::SubscriberLookup => &["attack.discovery", "attack.collection", "attack.t1213"],
            Rule::FirstSeenActor | Rule::ServiceAccountInteractive | Rule::UnexpectedHost => {
                &["attack.collection", "attack.t1078", "attack.t1213"]
            }
            Rule::AuditChange => &["attack.defense-evasion", "attack.t1562.001"],
        }
    }
}

/// A subscriber identifier a statement named, normalised, with the column it was matched on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReadId {
    pub kind: IdKind,
    /// The table and column the value is compared with (a CDR table's, or the subscriber
    /// table's when the statement reaches the CDRs through a join on it).
    pub table: String,
    pub column: String,
    pub value: String,
}

/// A statement's subscriber identifiers and time window, resolved against its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    /// CDR tables read (schema names).
    pub tables: Vec<String>,
    /// Subscriber tables read.
    pub subscriber_tables: Vec<String>,
    pub ids: Vec<ReadId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub executed: Timestamp,
    pub export: bool,
    pub projects_location: bool,
    pub aggregates: bool,
    /// `LIKE` on an identifier column (a prefix scan over many subscribers).
    pub id_pattern: bool,
    /// The subscriber table the identifiers were named in, when the CDRs were reached through
    /// a join on it.
    pub through: Option<String>,
}

/// One detection.
#[derive(Debug, Clone)]
pub struct Finding {
    pub rule: Rule,
    pub event: DbEvent,
    pub read: Option<Read>,
    pub reasons: Vec<String>,
}

/// A statement that could not be parsed.
#[derive(Debug, Clone)]
pub struct Unanalysed {
    pub source: String,
    pub line: u64,
    pub error: Unparsable,
}

/// A database backend: server, process id and session.
type Backend = (Arc<str>, u32, String);

pub struct Analytics {
    settings: Settings,
    schema: Schema,
    reader: Reader,
    /// The register's identifiers in the schema's numbering.
    register_ids: Vec<BTreeSet<String>>,
    start: Option<Timestamp>,
    actors: HashSet<(String, String, String)>,
    exports: HashSet<(String, String, String, String)>,
    /// Per account: seen with a service application, seen with an interactive client.
    account_apps: HashMap<String, (bool, bool)>,
    /// Per backend (server, pid, session): its last statement (id, time).
    last_statement: HashMap<Backend, (u64, Option<Timestamp>)>,
    pub statements: u64,
    pub authorised: u64,
    pub unanalysed: Vec<Unanalysed>,
    pub unanalysed_count: u64,
}

/// Whether an application name is an interactive client.
pub fn interactive(app: &str) -> bool {
    let a = app.to_ascii_lowercase();
    let base = a.rsplit(['/', '\\']).next().unwrap_or(&a);
    INTERACTIVE_CLIENTS
        .iter()
        .any(|c| base.starts_with(c) || (c.contains(' ') && a.contains(c)))
}

/// A time literal or parameter: RFC 3339, `YYYY-MM-DD[ HH:MM:SS[.f]][±HH[:MM]]`, or a date;
/// without a zone, in UTC.
pub fn parse_bound(s: &str) -> Option<Timestamp> {
    parse_bound_in(s, 0)
}

/// As [`parse_bound`], reading a time or date without a zone at `offset_min` (the server's
/// zone: `'2023-01-01'` on a server at -05 is 05:00 UTC).
pub fn parse_bound_in(s: &str, offset_min: i32) -> Option<Timestamp> {
    let s = s.trim();
    if s.len() < 8 || !s.as_bytes()[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let zoned = s.len() > 19 && s[19..].contains(['+', '-', 'Z'])
        || s.len() > 10 && s[10..].contains(['+', 'Z'])
        || s.rsplit(' ')
            .next()
            .is_some_and(|z| z.chars().all(|c| c.is_ascii_alphabetic()) && s.len() > 19);
    let t = if zoned {
        towerwatch_sources::postgres::parse_time(s)?
    } else {
        let civil = if s.len() == 10 {
            format!("{s} 00:00:00")
        } else {
            s.replace('T', " ")
        };
        let dt: jiff::civil::DateTime = civil.parse().ok()?;
        jiff::tz::Offset::from_seconds(offset_min * 60)
            .ok()?
            .to_timestamp(dt)
            .ok()?
    };
    Some(t)
}

fn resolve(op: &Operand, params: Option<&[String]>) -> Option<String> {
    match op {
        Operand::Literal(s) => Some(s.clone()),
        Operand::Param(n) => params.and_then(|p| p.get(n.checked_sub(1)?)).cloned(),
    }
}

/// What a statement reads, by the schema.
pub fn read_of(
    schema: &Schema,
    f: &Facts,
    params: Option<&[String]>,
    numbering: &Numbering,
    executed: Timestamp,
    zone_offset_min: i32,
) -> Read {
    let mut tables: Vec<String> = Vec::new();
    let mut subscriber_tables: Vec<String> = Vec::new();
    let mut projects_location = f.wildcard;
    // A load's target is written, not read (`COPY t FROM`, `INSERT INTO t`); what an
    // `INSERT … SELECT` reads stays a read.
    let loaded = f.load.as_ref().map(|(t, _)| t.as_str());
    for r in f.relations.iter().filter(|r| Some(r.as_str()) != loaded) {
        if let Some(t) = schema.table(r) {
            let list = match t.kind {
                TableKind::Cdr => &mut tables,
                TableKind::Subscriber => &mut subscriber_tables,
            };
            if !list.contains(&t.name) {
                list.push(t.name.clone());
            }
        }
    }
    for c in &f.projected {
        let rels: Vec<&String> = match &c.relation {
            Some(r) => vec![r],
            None => f.relations.iter().collect(),
        };
        projects_location |= rels.into_iter().any(|r| {
            schema
                .table(r)
                .is_some_and(|t| t.kind == TableKind::Cdr && t.location.contains(&c.name))
        });
    }
    let mut ids: Vec<ReadId> = Vec::new();
    let mut id_pattern = false;
    let mut through = None;
    let (mut from, mut to) = (None, None);
    for p in &f.predicates {
        if let Some((t, kind)) = resolve_id(schema, f, &p.column) {
            if p.compare == Compare::Pattern {
                id_pattern = true;
                continue;
            }
            if p.compare != Compare::Equals {
                continue;
            }
            // Reached through a join: the CDR-side column of the same kind, when the join
            // names one.
            if t.kind == TableKind::Subscriber && !tables.is_empty() {
                through = Some(t.name.clone());
            }
            let (table, column) = if t.kind == TableKind::Subscriber {
                f.joins
                    .iter()
                    .filter_map(|(a, b)| {
                        let (sub, other) = if a
                            .relation
                            .as_deref()
                            .and_then(|r| schema.table(r))
                            .is_some_and(|x| x.name == t.name)
                        {
                            (a, b)
                        } else {
                            (b, a)
                        };
                        let cdr = schema.table(other.relation.as_deref()?)?;
                        (cdr.kind == TableKind::Cdr
                            && t.id_kind(&sub.name) == Some(kind)
                            && cdr.id_kind(&other.name) == Some(kind))
                        .then(|| (cdr.name.clone(), other.name.clone()))
                    })
                    .next()
                    .unwrap_or((t.name.clone(), p.column.name.clone()))
            } else {
                (t.name.clone(), p.column.name.clone())
            };
            for op in &p.operands {
                if let Some(v) = resolve(op, params) {
                    let value = numbering.normalise(kind, &v);
                    let id = ReadId {
                        kind,
                        table: table.clone(),
                        column: column.clone(),
                        value,
                    };
                    if !id.value.is_empty() && !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            continue;
        }
        // Time bounds on a CDR table's time column.
        let on_time = match &p.column.relation {
            Some(r) => schema
                .table(r)
                .is_some_and(|t| t.kind == TableKind::Cdr && t.is_time(&p.column.name)),
            None => f.relations.iter().any(|r| {
                schema
                    .table(r)
                    .is_some_and(|t| t.kind == TableKind::Cdr && t.is_time(&p.column.name))
            }),
        };
        if !on_time {
            continue;
        }
        let bound = p
            .operands
            .first()
            .and_then(|o| resolve(o, params))
            .and_then(|s| parse_bound_in(&s, zone_offset_min));
        match p.compare {
            Compare::Lower => from = bound.or(from),
            Compare::Upper => to = bound.or(to),
            _ => {}
        }
    }
    Read {
        tables,
        subscriber_tables,
        ids,
        from,
        to,
        executed,
        export: f.export,
        projects_location,
        aggregates: f.aggregates,
        id_pattern,
        through,
    }
}

impl Analytics {
    pub fn new(settings: Settings, schema: Schema, reader: Reader) -> Analytics {
        let register_ids = settings
            .register
            .iter()
            .map(|case| {
                case.ids
                    .iter()
                    .flat_map(|i| {
                        [IdKind::Msisdn, IdKind::Imsi, IdKind::Imei]
                            .map(|k| schema.numbering.normalise(k, i))
                    })
                    .collect()
            })
            .collect();
        Analytics {
            settings,
            schema,
            reader,
            register_ids,
            start: None,
            actors: HashSet::new(),
            exports: HashSet::new(),
            account_apps: HashMap::new(),
            last_statement: HashMap::new(),
            statements: 0,
            authorised: 0,
            unanalysed: Vec::new(),
            unanalysed_count: 0,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn authorised_by(&self, read: &Read, user: &str) -> bool {
        let slack = SignedDuration::from_hours(24);
        self.settings
            .register
            .iter()
            .zip(&self.register_ids)
            .any(|(case, ids)| {
                read.ids.iter().all(|i| ids.contains(&i.value))
                    && case.account.as_deref().is_none_or(|a| a == user)
                    && read.from.is_some_and(|f| f >= case.from - slack)
                    && read.to.unwrap_or(read.executed) <= case.to + slack
            })
    }

    /// Processes one record; returns what it raised.
    pub fn observe(&mut self, e: &DbEvent) -> Vec<Finding> {
        let mut out = Vec::new();
        let a = &e.audit;
        // One analysis per statement: its first sub-statement line (a COPY of a query logs the
        // SELECT, then the COPY; a join logs one line per relation).
        if a.substatement_id > 1 {
            return out;
        }
        // The lines of one statement share its backend, session, statement id and time.
        let key = (e.server.clone(), e.pid.unwrap_or(0), e.session.clone());
        let this = (a.statement_id, e.time);
        if self.last_statement.insert(key, this) == Some(this) {
            return out;
        }
        self.statements += 1;
        let Some(executed) = e.time else {
            return out;
        };
        let start = *self.start.get_or_insert(executed);
        let training =
            executed < start + SignedDuration::from_hours(24 * self.settings.training_days);
        if changes_auditing(&a.statement) {
            out.push(Finding {
                rule: Rule::AuditChange,
                event: e.clone(),
                read: None,
                reasons: vec!["statement changes the database's auditing".into()],
            });
        }
        // DDL, role and settings statements read no CDRs (and need not parse).
        if !matches!(a.class.as_str(), "READ" | "WRITE" | "FUNCTION" | "") {
            return out;
        }
        let facts = match self.reader.facts(&a.statement) {
            Ok(f) => f,
            Err(error) => {
                self.unanalysed_count += 1;
                if self.unanalysed.len() < 100 {
                    self.unanalysed.push(Unanalysed {
                        source: e.source.to_string(),
                        line: e.line,
                        error,
                    });
                }
                return out;
            }
        };
        let read = read_of(
            &self.schema,
            &facts,
            a.params.as_deref(),
            &self.schema.numbering,
            executed,
            e.zone_offset_min,
        );
        if read.tables.is_empty() && read.subscriber_tables.is_empty() {
            return out;
        }
        let is_interactive = interactive(&e.app);
        let mut context = Vec::new();
        let seen = self
            .account_apps
            .entry(e.user.clone())
            .or_insert((false, false));
        if is_interactive && seen.0 && !seen.1 {
            context.push(Rule::ServiceAccountInteractive);
        }
        if is_interactive {
            seen.1 = true;
        } else if !e.app.is_empty() {
            seen.0 = true;
        }
        if let Some(role) = self.settings.assets.get(&e.client) {
            if !ALLOWED_ROLES.contains(&role.as_str()) {
                context.push(Rule::UnexpectedHost);
            }
        }
        let actor = (e.user.clone(), e.client.clone(), e.app.clone());
        // Subscribers, not comparisons: `a = $1 OR b = $1` names one.
        let n = read
            .ids
            .iter()
            .map(|i| i.value.as_str())
            .collect::<BTreeSet<_>>()
            .len();

        // Who a number belongs to, asked by hand: reconnaissance of a subscriber.
        if read.tables.is_empty() {
            let suspicious = is_interactive || context.contains(&Rule::UnexpectedHost);
            if (1..=self.settings.max_ids).contains(&n) && suspicious && !read.id_pattern {
                let mut reasons = vec![format!(
                    "{n} subscriber identifier{} looked up in {}",
                    if n == 1 { "" } else { "s" },
                    read.subscriber_tables.join(", ")
                )];
                if is_interactive {
                    reasons.push(format!("interactive client {}", e.app));
                }
                reasons.extend(context.iter().map(|r| r.title().to_string()));
                out.push(Finding {
                    rule: Rule::SubscriberLookup,
                    event: e.clone(),
                    read: Some(read),
                    reasons,
                });
            }
            return out;
        }

        // Baselines (the fingerprint is needed only for unfiltered reads).
        let export_key = || {
            (
                e.user.clone(),
                e.client.clone(),
                e.app.clone(),
                shape(&a.statement),
            )
        };
        let unfiltered =
            read.ids.is_empty() && !read.aggregates && (read.export || read.from.is_none());
        if training {
            self.actors.insert(actor);
            if unfiltered {
                self.exports.insert(export_key());
            }
        } else {
            if !self.actors.contains(&actor) {
                context.push(Rule::FirstSeenActor);
                self.actors.insert(actor);
            }
            if unfiltered && !self.exports.contains(&export_key()) {
                out.push(Finding {
                    rule: Rule::BulkExport,
                    event: e.clone(),
                    read: Some(read.clone()),
                    reasons: vec![format!(
                        "{} of {} with no subscriber predicate, not in the baseline of {}@{} ({})",
                        if read.export {
                            "export"
                        } else {
                            "unfiltered read"
                        },
                        read.tables.join(", "),
                        e.user,
                        e.client,
                        e.app
                    )],
                });
                self.exports.insert(export_key());
            }
        }

        let long = match read.from {
            None => true,
            Some(f) => {
                read.to.unwrap_or(executed).duration_since(f).as_hours()
                    > 24 * self.settings.long_range_days
            }
        };
        let targeted = (1..=self.settings.max_ids).contains(&n) && !read.id_pattern;
        let authorised = targeted && self.authorised_by(&read, &e.user);
        if targeted && long {
            if authorised {
                self.authorised += 1;
            } else {
                let mut reasons = vec![format!(
                    "{n} subscriber identifier{} over {}",
                    if n == 1 { "" } else { "s" },
                    match read.from {
                        None => "all history (no lower time bound)".to_string(),
                        Some(f) => format!(
                            "{} days",
                            read.to.unwrap_or(executed).duration_since(f).as_hours() / 24
                        ),
                    }
                )];
                if let Some(t) = &read.through {
                    reasons.push(format!("reached through {t}"));
                }
                if read.projects_location {
                    reasons.push("projects cell location".into());
                }
                if read.export {
                    reasons.push("exports the result (COPY … TO)".into());
                }
                if is_interactive {
                    reasons.push(format!("interactive client {}", e.app));
                }
                reasons.extend(context.iter().map(|r| r.title().to_string()));
                out.push(Finding {
                    rule: Rule::TargetedLookup,
                    event: e.clone(),
                    read: Some(read.clone()),
                    reasons,
                });
            }
        }
        // A read the register covers is the lawful-disclosure desk at work, even the first
        // time its account is seen on the store.
        if authorised {
            context
                .retain(|r| !matches!(r, Rule::FirstSeenActor | Rule::ServiceAccountInteractive));
        }
        for rule in context {
            out.push(Finding {
                rule,
                event: e.clone(),
                read: Some(read.clone()),
                reasons: vec![format!("{}@{} ({})", e.user, e.client, e.app)],
            });
        }
        out
    }
}

#[cfg(test)]
mod tests;
