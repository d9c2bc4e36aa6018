//! Detectors over a time-ordered stream of pgaudit records.
//!
//! Rules that need no history fire from the first record: a **targeted lookup** (a CDR table,
//! one to `max_ids` subscriber identifiers, and a time range longer than `long_range_days` or
//! none at all — the Soft Cell shape, and also the lawful-disclosure shape, which the register
//! of authorised requests turns into "authorised"); a **service account used from an interactive
//! client** (an account seen only with applications until now, now with `psql` & co.); a read
//! from a host whose inventory role is **not an application or DBA host**; **audit changes**.
//! Baselines are learnt over the first `training_days` of the stream and then fire: a **bulk
//! export** (`COPY … TO` or an unfiltered read of a CDR table) by an actor and statement the
//! baseline does not know, and a **first-seen actor** (account, client host, application) on the
//! CDR tables.

use std::collections::{BTreeSet, HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use crate::audit::DbEvent;
use crate::pseudo::normalise;
use crate::sql::{changes_auditing, Analysis, Analyzer, IdKind, Operand, Schema, Unparsable};

/// Applications that are interactive clients, not services (lowercase prefixes).
pub const INTERACTIVE_CLIENTS: [&str; 10] = [
    "psql",
    "pgadmin",
    "dbeaver",
    "datagrip",
    "sqlplus",
    "sql developer",
    "toad",
    "heidisql",
    "navicat",
    "azure data studio",
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
    pub ids: BTreeSet<String>,
    pub from: Timestamp,
    pub to: Timestamp,
    pub account: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub schema: Schema,
    pub max_ids: usize,
    pub long_range_days: i64,
    pub training_days: i64,
    pub register: Vec<Authorised>,
    /// Client address → inventory role.
    pub assets: HashMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            schema: Schema::default(),
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
    BulkExport,
    FirstSeenActor,
    ServiceAccountInteractive,
    UnexpectedHost,
    AuditChange,
}

impl Rule {
    pub fn id(self) -> &'static str {
        match self {
            Rule::TargetedLookup => "towerwatch-cdr-targeted-lookup",
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

    pub fn level(self) -> &'static str {
        match self {
            Rule::FirstSeenActor => "medium",
            Rule::TargetedLookup | Rule::BulkExport => "high",
            _ => "high",
        }
    }

    pub fn tags(self) -> &'static [&'static str] {
        match self {
            Rule::TargetedLookup | Rule::BulkExport => {
                &["attack.collection", "attack.t1005", "attack.t1213"]
            }
            Rule::FirstSeenActor | Rule::ServiceAccountInteractive | Rule::UnexpectedHost => {
                &["attack.collection", "attack.t1078", "attack.t1213"]
            }
            Rule::AuditChange => &["attack.defense-evasion", "attack.t1562.001"],
        }
    }
}

/// A statement's subscriber identifiers and time window, resolved against its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub tables: Vec<String>,
    /// (kind, column, normalised value), distinct.
    pub ids: Vec<(IdKind, String, String)>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub executed: Timestamp,
    pub export: bool,
    pub projects_location: bool,
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

pub struct Analytics {
    settings: Settings,
    analyzer: Analyzer,
    start: Option<Timestamp>,
    actors: HashSet<(String, String, String)>,
    exports: HashSet<(String, String, String, String)>,
    /// Per account: seen with a service application, seen with an interactive client.
    account_apps: HashMap<String, (bool, bool)>,
    last_statement: HashMap<(std::sync::Arc<str>, u32), (u64, Option<Timestamp>)>,
    pub statements: u64,
    pub authorised: u64,
    pub unanalysed: Vec<Unanalysed>,
    pub unanalysed_count: u64,
}

fn interactive(app: &str) -> bool {
    let a = app.to_ascii_lowercase();
    INTERACTIVE_CLIENTS.iter().any(|c| a.starts_with(c))
}

/// A time literal or parameter: RFC 3339, `YYYY-MM-DD[ HH:MM:SS[.f]][±HH[:MM]]`, or a date.
pub fn parse_bound(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if let Some(t) = crate::audit::parse_time(s) {
        return Some(t);
    }
    // `2019-02-02 00:00:00+00`: an offset glued to the time.
    if let Some(i) = s.rfind(['+', '-']).filter(|&i| i > 10) {
        let (civil, off) = s.split_at(i);
        return crate::audit::parse_time(&format!("{civil} {off}"));
    }
    let d: jiff::civil::Date = s.parse().ok()?;
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

impl Analytics {
    pub fn new(settings: Settings) -> Analytics {
        Analytics {
            analyzer: Analyzer::new(settings.schema.clone()),
            settings,
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

    fn resolve(op: &Operand, params: Option<&[String]>) -> Option<String> {
        match op {
            Operand::Literal(s) => Some(s.clone()),
            Operand::Param(n) => params.and_then(|p| p.get(n - 1)).cloned(),
        }
    }

    fn read_of(&self, a: &Analysis, e: &DbEvent, executed: Timestamp) -> Read {
        let params = e.audit.params.as_deref();
        let mut ids: Vec<(IdKind, String, String)> = Vec::new();
        for (kind, column, op) in &a.ids {
            if let Some(v) = Self::resolve(op, params) {
                let id = (*kind, column.clone(), normalise(*kind, &v));
                if !id.2.is_empty() && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let bound = |o: &Option<Operand>| {
            o.as_ref()
                .and_then(|o| Self::resolve(o, params))
                .and_then(|s| parse_bound(&s))
        };
        Read {
            tables: a.cdr_tables.clone(),
            ids,
            from: bound(&a.from),
            to: bound(&a.to),
            executed,
            export: a.export,
            projects_location: a.projects_location,
        }
    }

    fn authorised_by(&self, read: &Read, user: &str) -> bool {
        let ids: BTreeSet<&str> = read.ids.iter().map(|(_, _, v)| v.as_str()).collect();
        let slack = SignedDuration::from_hours(24);
        self.settings.register.iter().any(|case| {
            ids.iter().all(|i| case.ids.contains(*i))
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
        if a.substatement_id != 1 {
            return out;
        }
        // The lines of one statement share its backend, statement id and time; a later session
        // that reuses the pid counts its statements from 1 again, at another time.
        let key = (e.source.clone(), e.pid.unwrap_or(0));
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
                reasons: vec!["statement changes pgaudit or statement logging".into()],
            });
        }
        // DDL, role and settings statements read no CDRs (and need not parse).
        if !matches!(a.class.as_str(), "READ" | "WRITE" | "FUNCTION" | "") {
            return out;
        }
        let analysis = match self.analyzer.analyse(&a.statement) {
            Ok(an) => an,
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
        if analysis.cdr_tables.is_empty() {
            return out;
        }
        let read = self.read_of(&analysis, e, executed);
        let is_interactive = interactive(&e.app);
        let actor = (e.user.clone(), e.client.clone(), e.app.clone());
        let mut context = Vec::new();

        // Rules without history.
        let seen = self
            .account_apps
            .entry(e.user.clone())
            .or_insert((false, false));
        if is_interactive && seen.0 && !seen.1 {
            context.push(Rule::ServiceAccountInteractive);
        }
        if is_interactive {
            seen.1 = true;
        } else {
            seen.0 = true;
        }
        if let Some(role) = self.settings.assets.get(&e.client) {
            if !ALLOWED_ROLES.contains(&role.as_str()) {
                context.push(Rule::UnexpectedHost);
            }
        }
        // Baselines.
        // The fingerprint is needed only for unfiltered reads.
        let export_key = || {
            (
                e.user.clone(),
                e.client.clone(),
                e.app.clone(),
                fingerprint(&a.statement),
            )
        };
        let unfiltered =
            read.ids.is_empty() && !analysis.aggregates && (read.export || read.from.is_none());
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

        let n = read.ids.len();
        let long = match read.from {
            None => true,
            Some(f) => {
                read.to.unwrap_or(executed).duration_since(f).as_hours()
                    > 24 * self.settings.long_range_days
            }
        };
        if (1..=self.settings.max_ids).contains(&n) && long && !analysis.id_pattern {
            if self.authorised_by(&read, &e.user) {
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

/// The statement with literals, numbers and parameters masked and whitespace folded.
pub fn fingerprint(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut space = false;
    while let Some(c) = chars.next() {
        if space && !c.is_whitespace() && !out.is_empty() {
            out.push(' ');
        }
        if !c.is_whitespace() {
            space = false;
        }
        match c {
            '\'' => {
                while let Some(d) = chars.next() {
                    if d == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                out.push('?');
            }
            '$' | '0'..='9' if !out.ends_with(|p: char| p.is_ascii_alphanumeric() || p == '_') => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_digit() || *d == '.')
                {
                    chars.next();
                }
                out.push('?');
            }
            c if c.is_whitespace() => space = true,
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;

    fn ev(
        t: &str,
        user: &str,
        app: &str,
        client: &str,
        stmt_id: u64,
        sql: &str,
        params: Option<Vec<&str>>,
    ) -> DbEvent {
        DbEvent {
            time: Some(t.parse().unwrap()),
            user: user.into(),
            db: "cdrdw".into(),
            app: app.into(),
            client: client.into(),
            pid: Some(7),
            source: "pg.log".into(),
            line: stmt_id,
            audit: Audit {
                audit_type: "SESSION".into(),
                statement_id: stmt_id,
                substatement_id: 1,
                class: "READ".into(),
                command: "SELECT".into(),
                object_type: "TABLE".into(),
                object_name: "cdr.voice_cdr".into(),
                statement: sql.into(),
                params: params.map(|p| p.into_iter().map(String::from).collect()),
                rows: Some(3),
            },
        }
    }

    const CARE: &str = "SELECT a FROM cdr.voice_cdr WHERE served_msisdn = $1 AND start_time >= $2::timestamptz AND start_time < $3::timestamptz";

    #[test]
    fn targeted_lookups_fire_care_lookups_and_authorised_requests_do_not() {
        let mut settings = Settings::default();
        settings.register.push(Authorised {
            case_id: "RD-1".into(),
            ids: ["999700000009".to_string()].into(),
            from: "2018-06-01T00:00:00Z".parse().unwrap(),
            to: "2019-03-01T00:00:00Z".parse().unwrap(),
            account: Some("rds_handover".into()),
        });
        let mut an = Analytics::new(settings);
        let care = an.observe(&ev(
            "2019-03-04T02:00:00Z",
            "care_app",
            "PostgreSQL JDBC Driver",
            "10.30.0.40",
            1,
            CARE,
            Some(vec![
                "999700000001",
                "2019-02-01 00:00:00+00",
                "2019-03-04 00:00:00+00",
            ]),
        ));
        assert!(care.is_empty(), "{care:?}");
        let rd = an.observe(&ev(
            "2019-03-04T03:00:00Z",
            "rds_handover",
            "RDHandover",
            "10.30.0.50",
            2,
            CARE,
            Some(vec![
                "999700000009",
                "2018-06-01 00:00:00+00",
                "2019-03-01 00:00:00+00",
            ]),
        ));
        assert!(rd.is_empty());
        assert_eq!(an.authorised, 1);
        // The same request by another account, or for another subscriber, is not authorised.
        let other = an.observe(&ev(
            "2019-03-04T03:00:01Z",
            "rds_handover",
            "RDHandover",
            "10.30.0.50",
            3,
            CARE,
            Some(vec![
                "999700000008",
                "2018-06-01 00:00:00+00",
                "2019-03-01 00:00:00+00",
            ]),
        ));
        assert_eq!(
            other.iter().map(|f| f.rule).collect::<Vec<_>>(),
            vec![Rule::TargetedLookup]
        );
        let theft = an.observe(&ev("2019-03-04T18:50:00Z", "care_app", "psql", "10.40.0.20", 4, "select cell_id from cdr.voice_cdr where served_msisdn in ('999700000001', '999700000002') and start_time >= '2017-03-04'", None));
        let rules: Vec<Rule> = theft.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            vec![Rule::TargetedLookup, Rule::ServiceAccountInteractive]
        );
        let read = theft[0].read.as_ref().unwrap();
        assert_eq!(read.ids.len(), 2);
        assert_eq!(read.from.unwrap().to_string(), "2017-03-04T00:00:00Z");
        assert!(theft[0]
            .reasons
            .iter()
            .any(|r| r.contains("projects cell location")));
    }

    #[test]
    fn baselines_learn_then_flag_new_exports_and_actors() {
        let mut an = Analytics::new(Settings {
            training_days: 1,
            ..Default::default()
        });
        let dump = "COPY cdr.voice_cdr (record_id) TO stdout;";
        assert!(an
            .observe(&ev(
                "2019-03-04T01:00:00Z",
                "backup",
                "pg_dump",
                "10.40.0.30",
                1,
                dump,
                None
            ))
            .is_empty());
        assert!(an
            .observe(&ev(
                "2019-03-06T01:00:00Z",
                "backup",
                "pg_dump",
                "10.40.0.30",
                2,
                dump,
                None
            ))
            .is_empty());
        let f = an.observe(&ev(
            "2019-03-06T02:00:00Z",
            "bi_reader",
            "psql",
            "10.40.0.30",
            3,
            dump,
            None,
        ));
        let rules: BTreeSet<Rule> = f.iter().map(|f| f.rule).collect();
        assert!(
            rules.contains(&Rule::BulkExport) && rules.contains(&Rule::FirstSeenActor),
            "{rules:?}"
        );
        // Auditing changed (class MISC): caught on the text though it does not parse.
        let mut alter = ev(
            "2019-03-06T03:00:00Z",
            "x",
            "psql",
            "10.1.1.1",
            4,
            "ALTER SYSTEM SET pgaudit.log = 'none'",
            None,
        );
        alter.audit.class = "MISC".into();
        assert!(an
            .observe(&alter)
            .iter()
            .any(|f| f.rule == Rule::AuditChange));
        // DDL is not parsed; a READ that does not parse is counted.
        let mut ddl = ev(
            "2019-03-06T03:00:01Z",
            "x",
            "psql",
            "10.1.1.1",
            5,
            "CREATE TABLE t (LIKE cdr.voice_cdr INCLUDING ALL)",
            None,
        );
        ddl.audit.class = "DDL".into();
        assert!(an.observe(&ddl).is_empty());
        assert_eq!(an.unanalysed_count, 0);
        assert!(an
            .observe(&ev(
                "2019-03-06T03:00:02Z",
                "x",
                "psql",
                "10.1.1.1",
                6,
                "selec oops",
                None
            ))
            .is_empty());
        assert_eq!(an.unanalysed_count, 1);
    }

    #[test]
    fn each_statement_is_analysed_once_even_when_pids_are_reused() {
        let mut an = Analytics::new(Settings::default());
        let theft = "select * from cdr.voice_cdr where served_msisdn in ('999700000001')";
        // One statement logged for two relations: one analysis.
        let first = ev(
            "2019-03-04T18:50:00Z",
            "u",
            "psql",
            "10.1.1.1",
            1,
            theft,
            None,
        );
        let mut second_relation = first.clone();
        second_relation.audit.object_name = "cdr.other".into();
        assert_eq!(an.observe(&first).len(), 1);
        assert!(an.observe(&second_relation).is_empty());
        // A later session on the same pid starts again at statement 1: analysed.
        let reused = ev(
            "2019-03-05T18:50:00Z",
            "u",
            "psql",
            "10.1.1.1",
            1,
            theft,
            None,
        );
        assert_eq!(an.observe(&reused).len(), 1);
        assert_eq!(an.statements, 2);
    }

    #[test]
    fn fingerprints_mask_values() {
        assert_eq!(
            fingerprint("SELECT a  FROM t WHERE x = 'a''b' AND y = 42 AND z = $3"),
            "select a from t where x = ? and y = ? and z = ?"
        );
        assert_eq!(
            fingerprint("select * from voice_cdr_2019"),
            "select * from voice_cdr_2019"
        );
        assert_eq!(
            parse_bound("2019-02-02 00:00:00+00").unwrap().to_string(),
            "2019-02-02T00:00:00Z"
        );
        assert_eq!(
            parse_bound("2017-03-06").unwrap().to_string(),
            "2017-03-06T00:00:00Z"
        );
    }
}
