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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

use regex::Regex;

use crate::numbers::{self, CountryCodeVotes, Numbering};
use crate::sql::{Column, Compare, Facts, IdKind};

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

/// A column name's words: `ServedMSISDN` → `served msisdn`, `call_start_ts` → `call start ts`.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1);
        let boundary = match prev {
            Some(p) if p.is_ascii_alphanumeric() => {
                (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                    || (p.is_ascii_uppercase()
                        && c.is_ascii_uppercase()
                        && next.is_some_and(|n| n.is_ascii_lowercase()))
                    || (p.is_ascii_digit() != c.is_ascii_digit())
            }
            _ => false,
        };
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The role a column's name gives it, if any.
pub fn column_role(name: &str) -> Option<Role> {
    let w = words(name);
    let joined: String = w.concat();
    let has = |x: &str| w.iter().any(|t| t == x);
    // Counts, hashes, prefixes and flags of identifiers are not identifiers.
    let derived = [
        "count", "cnt", "total", "hash", "hashed", "type", "flag", "len", "prefix", "country",
        "mcc", "mnc", "tac", "range", "pattern", "masked", "num", "nb",
    ]
    .iter()
    .any(|x| w.last().is_some_and(|l| l == x))
        && !matches!(
            joined.as_str(),
            "anum" | "bnum" | "callingnum" | "callednum"
        );
    let names_id = ["msisdn", "imsi", "imei"]
        .iter()
        .any(|k| joined.contains(k));
    if derived && names_id {
        return None;
    }
    if !derived {
        if joined.contains("msisdn") || joined == "gpsi" {
            return Some(Role::Id(IdKind::Msisdn));
        }
        if joined.contains("imsi") || joined == "supi" {
            return Some(Role::Id(IdKind::Imsi));
        }
        if joined.contains("imei") || joined == "pei" {
            return Some(Role::Id(IdKind::Imei));
        }
    }
    const MSISDN_NAMES: [&str; 32] = [
        "anumber",
        "bnumber",
        "cnumber",
        "anum",
        "bnum",
        "aparty",
        "bparty",
        "partya",
        "partyb",
        "caller",
        "callee",
        "callerid",
        "calleeid",
        "callernumber",
        "calleenumber",
        "calling",
        "called",
        "callingnumber",
        "callednumber",
        "callingparty",
        "calledparty",
        "callingpartynumber",
        "calledpartynumber",
        "callingnum",
        "callednum",
        "cli",
        "recipientid",
        "senderid",
        "othernumber",
        "otherparty",
        "dialednumber",
        "connectednumber",
    ];
    if MSISDN_NAMES.contains(&joined.as_str())
        || (has("number")
            && w.iter().any(|t| {
                matches!(
                    t.as_str(),
                    "calling"
                        | "called"
                        | "caller"
                        | "callee"
                        | "served"
                        | "subscriber"
                        | "phone"
                        | "mobile"
                        | "translated"
                        | "connected"
                        | "redirecting"
                        | "dialed"
                        | "dialled"
                        | "other"
                        | "originating"
                        | "terminating"
                        | "sender"
                        | "recipient"
                        | "directory"
                )
            }))
    {
        return Some(Role::Id(IdKind::Msisdn));
    }
    if matches!(
        joined.as_str(),
        "duration" | "durations" | "callduration" | "durationsec"
    ) || (has("duration") && !has("type"))
    {
        return Some(Role::Duration);
    }
    if matches!(
        joined.as_str(),
        "recordtype"
            | "rectype"
            | "calltype"
            | "cdrtype"
            | "eventtype"
            | "usagetype"
            | "servicetype"
            | "recordkind"
    ) {
        return Some(Role::RecordType);
    }
    // A record's own identity (a 32.298 record sequence number numbers partial records
    // and is no identity).
    if matches!(
        joined.as_str(),
        "recordid"
            | "cdrid"
            | "id"
            | "eventid"
            | "eventuid"
            | "uid"
            | "callid"
            | "uuid"
            | "cdruuid"
            | "usageid"
            | "recid"
            | "rowid"
            | "xdrid"
    ) {
        return Some(Role::RecordId);
    }
    const LOCATION: [&str; 21] = [
        "cell", "cellid", "ci", "eci", "ecgi", "cgi", "ncgi", "nci", "lac", "tac", "lactac",
        "location", "loc", "site", "siteid", "antenna", "bts", "sector", "uli", "enodeb", "gnodeb",
    ];
    if LOCATION.contains(&joined.as_str())
        || w.iter().any(|t| {
            matches!(
                t.as_str(),
                "cell"
                    | "lac"
                    | "tac"
                    | "ecgi"
                    | "cgi"
                    | "ncgi"
                    | "antenna"
                    | "bts"
                    | "site"
                    | "location"
                    | "uli"
                    | "sector"
                    | "enb"
                    | "gnb"
                    | "geohash"
            )
        })
        || joined.contains("locationarea")
        || joined.contains("cellid")
    {
        return Some(Role::Location);
    }
    let timeish = w.iter().any(|t| {
        matches!(
            t.as_str(),
            "time" | "date" | "ts" | "timestamp" | "datetime" | "timestmp" | "dt" | "tstamp"
        )
    }) || joined.ends_with("time")
        || joined.ends_with("timestamp")
        || joined.ends_with("date")
        || matches!(joined.as_str(), "calldate" | "timestmp" | "ts");
    if timeish {
        let ending = w.iter().any(|t| {
            matches!(
                t.as_str(),
                "end"
                    | "release"
                    | "closure"
                    | "stop"
                    | "created"
                    | "updated"
                    | "modified"
                    | "load"
                    | "loaded"
                    | "insert"
                    | "inserted"
                    | "activation"
                    | "expiry"
            )
        }) || joined.contains("release")
            || joined.contains("closure");
        let rank = if ending {
            1
        } else if w.iter().any(|t| {
            matches!(
                t.as_str(),
                "start" | "seizure" | "opening" | "event" | "call" | "begin" | "session" | "usage"
            )
        }) || joined.contains("start")
            || joined.contains("seizure")
            || joined.contains("opening")
        {
            4
        } else if has("answer") || joined.contains("answer") {
            3
        } else {
            2
        };
        return Some(Role::Time(rank));
    }
    None
}

/// The parent of a partition by its name (`call_events_2024_05` → `call_events`,
/// `voice_y2024m05` → `voice`, `cdr_20240514` → `cdr`, `ImportedCDRs_2017` →
/// `importedcdrs`); `None` when the name has no date suffix.
pub fn partition_parent(relation: &str) -> Option<String> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"^(?P<base>.*?[a-z])_?(?:(?:19|20)\d\d(?:_?(?:0[1-9]|1[0-2]))?(?:_?(?:0[1-9]|[12]\d|3[01]))?|y(?:19|20)\d\dm\d\d?(?:d\d\d?)?|p(?:19|20)\d{4,6}|q[1-4]_?(?:19|20)\d\d|(?:19|20)\d\dq[1-4])$",
        )
        .expect("valid regex")
    });
    let (schema, name) = match relation.rsplit_once('.') {
        Some((s, n)) => (Some(s), n),
        None => (None, relation),
    };
    let base = re.captures(name)?.name("base")?.as_str();
    Some(match schema {
        Some(s) => format!("{s}.{base}"),
        None => base.to_string(),
    })
}

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

/// The family a table name or record type names (`voice_cdr`, `moSMSRecord`, `pGWRecord`, `7`).
pub fn family_of(name: &str) -> Option<Family> {
    let l = name.to_ascii_lowercase();
    let l = l.rsplit('.').next().unwrap_or(&l);
    if l.contains("sms") || l.contains("msg") || l.contains("message") || l.contains("text") {
        Some(Family::Sms)
    } else if l.contains("voice")
        || l.contains("call")
        || l.contains("moc")
        || l.contains("mtc")
        || l.contains("msc")
    {
        Some(Family::Voice)
    } else if [
        "data", "gprs", "pgw", "sgw", "pdp", "session", "ipdr", "ps_", "xdr", "internet",
    ]
    .iter()
    .any(|k| l.contains(k))
    {
        Some(Family::Data)
    } else {
        match l {
            "0" | "1" | "2" | "3" | "4" | "5" => Some(Family::Voice),
            "6" | "7" | "21" | "22" => Some(Family::Sms),
            "18" | "19" | "84" | "85" => Some(Family::Data),
            _ => None,
        }
    }
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

    /// The schema in words, one table a line.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if self.tables.is_empty() {
            let _ = writeln!(s, "  no CDR or subscriber table recognised");
        }
        for t in &self.tables {
            let kind = match t.kind {
                TableKind::Cdr => "CDR table",
                TableKind::Subscriber => "subscriber table",
            };
            let mut by_kind: BTreeMap<IdKind, Vec<String>> = BTreeMap::new();
            for (c, k, how) in &t.ids {
                by_kind
                    .entry(*k)
                    .or_default()
                    .push(format!("{c} ({})", how.say()));
            }
            let ids: Vec<String> = by_kind
                .iter()
                .map(|(k, cols)| format!("{} {}", k.name(), cols.join(", ")))
                .collect();
            let _ = write!(s, "  {kind} {}", t.name);
            if !t.seen_as.is_empty() {
                let shown: Vec<&str> = t.seen_as.iter().take(4).map(String::as_str).collect();
                let more = t.seen_as.len().saturating_sub(4);
                let _ = write!(
                    s,
                    " (also {}{})",
                    shown.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
            let _ = write!(
                s,
                ": {}",
                if ids.is_empty() {
                    "no identifier column".into()
                } else {
                    ids.join("; ")
                }
            );
            if let Some((c, how)) = &t.time {
                let _ = write!(s, "; time {c} ({})", how.say());
            }
            if !t.location.is_empty() {
                let _ = write!(s, "; location {}", t.location.join(", "));
            }
            let _ = writeln!(s, " — {}", t.evidence.join(", "));
        }
        for c in &self.candidates {
            let _ = writeln!(
                s,
                "  candidate: {}.{} compared with {} {}-shaped literal{} (not a known CDR or subscriber table)",
                c.relation,
                c.column,
                c.literals,
                c.kind.name(),
                if c.literals == 1 { "" } else { "s" }
            );
        }
        match &self.numbering.country_code {
            Some(cc) => {
                let _ = writeln!(
                    s,
                    "  national numbers: country code {cc} ({})",
                    self.numbering.how
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  national numbers: no country code ({})",
                    self.numbering.how
                );
            }
        }
        s
    }
}

/// The `--schema` file: tables and their columns, as YAML.
///
/// ```yaml
/// cdr_tables:
///   - name: dwh.call_events
///     identifiers: {msisdn: [a_number, b_number], imsi: [imsi], imei: [imei]}
///     time: call_start_ts
///     location: [cell_gid]
/// subscriber_tables:
///   - name: crm.subscriber
///     identifiers: {msisdn: [msisdn], imsi: [imsi]}
/// country_code: "44"
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaFile {
    #[serde(default)]
    pub cdr_tables: Vec<TableFile>,
    #[serde(default)]
    pub subscriber_tables: Vec<TableFile>,
    pub country_code: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableFile {
    pub name: String,
    #[serde(default)]
    pub identifiers: BTreeMap<String, Vec<String>>,
    pub time: Option<String>,
    #[serde(default)]
    pub location: Vec<String>,
}

impl SchemaFile {
    /// Reads and checks a schema file.
    pub fn parse(text: &str) -> Result<SchemaFile, String> {
        let f: SchemaFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        for t in f.cdr_tables.iter().chain(&f.subscriber_tables) {
            for k in t.identifiers.keys() {
                if !matches!(k.as_str(), "msisdn" | "imsi" | "imei") {
                    return Err(format!(
                        "table {}: identifier kind {k:?} is none of msisdn, imsi, imei",
                        t.name
                    ));
                }
            }
        }
        Ok(f)
    }
}

/// What one column of one relation showed.
#[derive(Debug, Default, Clone)]
struct ColumnSeen {
    equals_literals: u64,
    shaped: [u64; 3],
    time_ranges: u64,
}

/// What one relation (partitions folded in) showed.
#[derive(Debug, Default, Clone)]
struct RelationSeen {
    names: BTreeSet<String>,
    loads: u64,
    reads: u64,
    /// Statements naming it for identifiers and a time range at once.
    lookups_over_time: u64,
    columns: BTreeMap<String, ColumnSeen>,
    load_columns: BTreeSet<String>,
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

fn parent_key(relation: &str) -> String {
    partition_parent(relation).unwrap_or_else(|| relation.to_string())
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
        // The extract's header: a relation that loads most of its columns holds those rows;
        // its named columns fill in what the statements did not show.
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
            let record_like = roles.iter().any(|(_, r, _)| {
                matches!(r, Some(Role::Location | Role::Duration | Role::RecordType))
            }) || roles
                .iter()
                .filter(|(_, r, _)| *r == Some(Role::Id(IdKind::Msisdn)))
                .count()
                >= 2;
            if !(has_id && has_time && record_like) {
                continue;
            }
            let names: BTreeSet<&str> = roles.iter().map(|(n, _, _)| n.as_str()).collect();
            let best = self
                .relations
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
                        seen_as: self.relations[key]
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
                    Some(Role::Id(k)) if t.id_kind(n).is_none() => {
                        t.ids.push((n.clone(), *k, *how))
                    }
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

fn apply_given(schema: &mut Schema, g: &SchemaFile) {
    let tables = g.cdr_tables.iter().map(|t| (t, TableKind::Cdr)).chain(
        g.subscriber_tables
            .iter()
            .map(|t| (t, TableKind::Subscriber)),
    );
    for (t, kind) in tables {
        let name = t.name.to_ascii_lowercase();
        schema
            .tables
            .retain(|x| x.name != name && parent_key(&x.name) != name);
        let mut ids = Vec::new();
        for (k, cols) in &t.identifiers {
            let kind = match k.as_str() {
                "msisdn" => IdKind::Msisdn,
                "imsi" => IdKind::Imsi,
                _ => IdKind::Imei,
            };
            for c in cols {
                ids.push((c.to_ascii_lowercase(), kind, How::Given));
            }
        }
        schema.tables.push(Table {
            name,
            kind,
            ids,
            time: t
                .time
                .as_ref()
                .map(|c| (c.to_ascii_lowercase(), How::Given)),
            times: t.time.iter().map(|c| c.to_ascii_lowercase()).collect(),
            location: t.location.iter().map(|c| c.to_ascii_lowercase()).collect(),
            seen_as: Vec::new(),
            evidence: vec!["given in --schema".into()],
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::facts;

    #[test]
    fn column_names_of_many_warehouses() {
        for (name, role) in [
            ("served_msisdn", Role::Id(IdKind::Msisdn)),
            ("ServedMSISDN", Role::Id(IdKind::Msisdn)),
            ("a_number", Role::Id(IdKind::Msisdn)),
            ("B_NUMBER", Role::Id(IdKind::Msisdn)),
            ("calledNumber", Role::Id(IdKind::Msisdn)),
            ("caller_id", Role::Id(IdKind::Msisdn)),
            ("other_msisdn", Role::Id(IdKind::Msisdn)),
            ("served_imsi", Role::Id(IdKind::Imsi)),
            ("caller_imei", Role::Id(IdKind::Imei)),
            ("call_start_ts", Role::Time(4)),
            ("recordOpeningTime", Role::Time(4)),
            ("seizure_time", Role::Time(4)),
            ("calldate", Role::Time(2)),
            ("end_time", Role::Time(1)),
            ("call_end_ts", Role::Time(1)),
            ("ReleaseTime", Role::Time(1)),
            ("cell_id", Role::Location),
            ("LocationAreaCode", Role::Location),
            ("caller_antenna", Role::Location),
            ("lac_tac", Role::Location),
            ("duration_s", Role::Duration),
            ("record_type", Role::RecordType),
            ("record_id", Role::RecordId),
        ] {
            assert_eq!(column_role(name), Some(role), "{name}");
        }
        for name in [
            "msisdn_count",
            "imei_tac",
            "contact_name",
            "customer_segment",
            "status",
        ] {
            assert_eq!(column_role(name), None, "{name}");
        }
    }

    #[test]
    fn partitions_fold_into_their_parent() {
        for (p, parent) in [
            ("dwh.call_events_2024_05", "dwh.call_events"),
            ("voice_y2024m05", "voice"),
            ("cdr_20240514", "cdr"),
            (
                "dbo.dmp_repository_importedcdrs_2017",
                "dbo.dmp_repository_importedcdrs",
            ),
            ("usage_p202405", "usage"),
        ] {
            assert_eq!(partition_parent(p).as_deref(), Some(parent), "{p}");
        }
        assert_eq!(partition_parent("voice_cdr"), None);
        assert_eq!(partition_parent("t2"), None);
    }

    fn learn(statements: &[&str]) -> Schema {
        let mut d = Discovery::default();
        for s in statements {
            d.observe(&facts(s).unwrap());
        }
        d.finish(&[], None)
    }

    #[test]
    fn a_warehouse_nobody_told_us_about() {
        let s = learn(&[
            "COPY dwh.call_events_2024_05 (event_uid, a_number, b_number, imsi, imei, call_start_ts, dur, cell_gid) FROM STDIN",
            "SELECT count(*) FROM dwh.call_events_2024_04 WHERE call_start_ts >= '2024-04-01'",
            "SELECT msisdn, imsi, segment FROM crm.subscriber WHERE msisdn = $1",
            "SELECT * FROM crm.subscriber WHERE msisdn IN ('447700900123', '447700900124')",
            "SELECT * FROM dwh.call_events WHERE a_number IN ('07700900123') OR b_number IN ('07700900123')",
            "SELECT * FROM dwh.call_events WHERE a_number IN ('447700900124') AND call_start_ts >= '2022-05-01'",
        ]);
        let calls = s
            .table("dwh.call_events_2024_05")
            .expect("the partition resolves");
        assert_eq!(calls.name, "dwh.call_events");
        assert_eq!(calls.kind, TableKind::Cdr);
        assert_eq!(calls.id_kind("a_number"), Some(IdKind::Msisdn));
        assert_eq!(calls.id_kind("imsi"), Some(IdKind::Imsi));
        assert_eq!(calls.time, Some(("call_start_ts".into(), How::Name)));
        assert_eq!(calls.location, ["cell_gid"]);
        let subs = s.table("crm.subscriber").unwrap();
        assert_eq!(subs.kind, TableKind::Subscriber);
        assert_eq!(s.numbering.country_code.as_deref(), Some("44"));
        assert!(
            s.describe().contains(
                "CDR table dwh.call_events (also dwh.call_events_2024_04, dwh.call_events_2024_05)"
            ),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn unknown_column_names_are_learnt_from_values_and_use() {
        let s = learn(&[
            "SELECT * FROM t1 WHERE c7 IN ('447700900123', '447700900124') AND c3 >= '2022-01-01'",
            "SELECT * FROM t2 WHERE note = '447700900125'",
        ]);
        let t = s.table("t1").unwrap();
        assert_eq!(t.kind, TableKind::Cdr);
        assert_eq!(t.ids, [("c7".to_string(), IdKind::Msisdn, How::Values)]);
        assert_eq!(t.time, Some(("c3".into(), How::Values)));
        // t2 holds an identifier-shaped literal on an unknown column: a subscriber table at most.
        assert_eq!(s.table("t2").map(|t| t.kind), Some(TableKind::Subscriber));
    }

    #[test]
    fn a_schema_file_overrides() {
        let g = SchemaFile::parse("cdr_tables:\n  - name: x.calls\n    identifiers: {msisdn: [caller]}\n    time: t\ncountry_code: '44'\n").unwrap();
        let mut d = Discovery::default();
        d.observe(&facts("SELECT * FROM x.calls_2024_01 WHERE caller = '07700900123'").unwrap());
        let s = d.finish(&[], Some(&g));
        let t = s.table("x.calls_2024_01").unwrap();
        assert_eq!(t.ids[0].2, How::Given);
        assert_eq!(s.numbering.country_code.as_deref(), Some("44"));
        assert!(
            SchemaFile::parse("cdr_tables:\n  - name: a\n    identifiers: {phone: [x]}\n").is_err()
        );
        assert!(SchemaFile::parse("tables: []\n").is_err());
    }

    #[test]
    fn the_extract_header_names_the_table_it_holds() {
        let mut d = Discovery::default();
        d.observe(
            &facts("COPY ops.usage_y2024m05 (rec, msisdn_a, msisdn_b, t0, cell) FROM STDIN")
                .unwrap(),
        );
        let s = d.finish(
            &[ExtractHeader::named(
                "cdr/usage.csv",
                vec![
                    "rec".into(),
                    "msisdn_a".into(),
                    "msisdn_b".into(),
                    "t0".into(),
                    "cell".into(),
                    "start_time".into(),
                ],
            )],
            None,
        );
        let t = s.table("ops.usage_y2024m06").unwrap();
        assert_eq!(t.kind, TableKind::Cdr);
        assert_eq!(t.time, Some(("start_time".into(), How::Extract)));
    }

    #[test]
    fn extract_values_tell_record_types_and_other_parties() {
        let columns: Vec<String> = ["seq", "kind", "msisdn_a", "orig", "term", "dur"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let rows: Vec<Vec<String>> = (0..40u64)
            .map(|i| {
                vec![
                    (100_000_000 + i).to_string(),
                    ["moCallRecord", "mtSMSRecord", "pGWRecord"][i as usize % 3].to_string(),
                    format!("99970{:07}", i % 7),
                    format!("99970{:07}", 100 + i % 11),
                    // A foreign number now and then: still a party's.
                    if i % 5 == 0 {
                        format!("4479{:08}", i)
                    } else {
                        format!("99971{:07}", i % 13)
                    },
                    (30 + i).to_string(),
                ]
            })
            .collect();
        let roles = roles_by_values(&columns, &rows);
        assert_eq!(
            roles,
            [
                ("kind".to_string(), Role::RecordType),
                ("orig".to_string(), Role::Id(IdKind::Msisdn)),
                ("term".to_string(), Role::Id(IdKind::Msisdn)),
            ]
        );
        // Without a column named as an MSISDN, numbers are not vouched for.
        let mut blind = columns.clone();
        blind[2] = "x".into();
        assert_eq!(
            roles_by_values(&blind, &rows),
            [("kind".to_string(), Role::RecordType)]
        );
    }
}
