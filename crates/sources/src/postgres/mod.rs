//! PostgreSQL server logs, in the three forms PostgreSQL writes them: stderr (any
//! `log_line_prefix`, found by itself when not given; continuation lines start with a tab),
//! `csvlog` (23 to 26 columns) and `jsonlog` (PostgreSQL 15+). Every log record is an event
//! of channel [`CHANNEL`] with csvlog's column names as fields (`user_name`, `database_name`,
//! `process_id`, `remote_host`, `remote_port`, `session_id`, `application_name`,
//! `error_severity`, `message`, …); a pgaudit record (`AUDIT: …`) also carries its parts
//! (`audit_type`, `statement_id`, `substatement_id`, `class`, `command`, `object_type`,
//! `object_name`, `statement`, `parameter`, `rows`).
//!
//! What a prefix does not say (Debian's default has no client address, PostgreSQL's own not
//! even the user) the reader takes from the session's own lines: `connection received:
//! host=… port=…` and `connection authorized: user=… database=… application_name=…` name the
//! backend's client, and every later record of that backend carries it, with a session id
//! built as PostgreSQL's `%c` is (start time and pid in hex).

mod carry;
mod pgaudit;
pub mod prefix;
mod time;

use std::collections::HashMap;
use std::io::BufRead;

use towerwatch_event::{Event, Origin, Value};

pub use carry::SessionCarry;
pub use pgaudit::{parse_audit, split_csv, Audit};
pub use prefix::{LinePrefix, PrefixChoice, PRESETS};
pub use time::parse_time;

use crate::{Position, Tally};

/// The channel of PostgreSQL log events.
pub const CHANNEL: &str = "postgresql";

/// The three log forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PgFormat {
    Stderr,
    Csv,
    Json,
}

/// Whether a head of text is a PostgreSQL log, and which form.
pub(crate) fn sniff(head: &[u8]) -> Option<PgFormat> {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('\t'))
        .take(40)
        .collect();
    // The last line of a head may be cut.
    let lines = if lines.len() > 1 && !text.ends_with('\n') {
        &lines[..lines.len() - 1]
    } else {
        &lines[..]
    };
    let first = lines.first()?;
    if first.starts_with('{') {
        return (first.contains("\"error_severity\"") && first.contains("\"timestamp\""))
            .then_some(PgFormat::Json);
    }
    if is_csvlog_line(first) {
        return Some(PgFormat::Csv);
    }
    let marked = lines.iter().filter(|l| has_severity(l)).count();
    (marked > 0 && marked * 2 >= lines.len()).then_some(PgFormat::Stderr)
}

fn is_csvlog_line(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() > 24
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b' '
        && l.split(',').nth(1).is_some()
        && [
            ",LOG,",
            ",ERROR,",
            ",FATAL,",
            ",WARNING,",
            ",PANIC,",
            ",NOTICE,",
            ",INFO,",
        ]
        .iter()
        .any(|s| l.contains(s))
}

fn has_severity(l: &str) -> bool {
    l.match_indices(":  ").any(|(k, _)| {
        let start = prefix::word_before(l, k);
        prefix::severity_len(&l[start..]).is_some()
    })
}

/// A backend's client, learnt from its connection lines.
#[derive(Debug, Default, Clone)]
pub(crate) struct Session {
    id: String,
    host: String,
    port: String,
    user: String,
    db: String,
    app: String,
}

/// One log record before it becomes an event.
#[derive(Debug, Default)]
struct Record {
    line: u64,
    time: String,
    pid: Option<u32>,
    user: String,
    db: String,
    app: String,
    host: String,
    port: String,
    session_id: String,
    severity: String,
    message: String,
    extra: Vec<(&'static str, String)>,
}

/// Reads one log's records, tracks its sessions, emits events.
pub(crate) struct Reader<'p> {
    sessions: HashMap<u32, Session>,
    prefix: Option<&'p LinePrefix>,
    computer: Option<Box<str>>,
}

fn kv<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("{key}=");
    let mut from = 0;
    while let Some(i) = message[from..].find(&pat) {
        let at = from + i;
        if at == 0 || message.as_bytes()[at - 1] == b' ' {
            let rest = &message[at + pat.len()..];
            return Some(rest.split(' ').next().unwrap_or(rest));
        }
        from = at + pat.len();
    }
    None
}

/// Tracks the backend sessions a record opens (`connection received`), names (`connection
/// authorized`) or closes (`disconnection`), and fills the record's client, account,
/// database, application and session id from its backend's session.
fn track(sessions: &mut HashMap<u32, Session>, r: &mut Record) {
    let pid = r.pid.unwrap_or(0);
    let msg = r.message.as_str();
    let mut closing = false;
    if let Some(rest) = msg.strip_prefix("connection received: ") {
        let id = if r.session_id.is_empty() {
            let secs = time::parse_time(&r.time).map_or(0, |t| t.as_second());
            format!("{secs:x}.{pid:x}")
        } else {
            r.session_id.clone()
        };
        sessions.insert(
            pid,
            Session {
                id,
                host: kv(rest, "host").unwrap_or("").to_string(),
                port: kv(rest, "port").unwrap_or("").to_string(),
                ..Session::default()
            },
        );
    } else if let Some(rest) = msg.strip_prefix("connection authorized: ") {
        let s = sessions.entry(pid).or_default();
        s.user = kv(rest, "user").unwrap_or("").to_string();
        s.db = kv(rest, "database").unwrap_or("").to_string();
        s.app = kv(rest, "application_name").unwrap_or("").to_string();
    } else if msg.starts_with("disconnection: ") {
        closing = true;
    }
    if let Some(s) = sessions.get(&pid) {
        let fill = |v: &mut String, from: &str| {
            if (v.is_empty() || v == "[unknown]") && !from.is_empty() {
                *v = from.to_string();
            }
        };
        fill(&mut r.host, &s.host);
        fill(&mut r.port, &s.port);
        fill(&mut r.user, &s.user);
        fill(&mut r.db, &s.db);
        fill(&mut r.app, &s.app);
        fill(&mut r.session_id, &s.id);
    }
    if closing {
        sessions.remove(&pid);
    }
}

impl Reader<'_> {
    fn emit(&mut self, mut r: Record, tally: &mut Tally<'_, '_>) -> bool {
        track(&mut self.sessions, &mut r);
        let line = r.line;
        match self.event(r, tally) {
            Ok(e) => tally.event(e),
            Err(m) => tally.reject(Position::Line(line), m),
        }
    }

    fn event(&self, r: Record, tally: &Tally<'_, '_>) -> Result<Event, String> {
        let mut e = Event::new(Origin::line(tally.report.source.clone(), r.line));
        e.set_channel(CHANNEL);
        e.provider = Some("PostgreSQL".into());
        e.computer = self.computer.clone();
        e.timestamp = time::parse_time(&r.time);
        let text = |e: &mut Event, k: &'static str, v: &str| {
            if !v.is_empty() {
                e.push(k, Value::text(v));
            }
        };
        text(&mut e, "log_time", &r.time);
        text(&mut e, "user_name", &r.user);
        text(&mut e, "database_name", &r.db);
        if let Some(p) = r.pid {
            e.push("process_id", Value::Number(p.to_string().into()));
        }
        text(&mut e, "remote_host", &r.host);
        text(&mut e, "remote_port", &r.port);
        text(&mut e, "session_id", &r.session_id);
        text(&mut e, "application_name", &r.app);
        text(&mut e, "error_severity", &r.severity);
        for (k, v) in &r.extra {
            text(&mut e, k, v);
        }
        text(&mut e, "message", &r.message);
        if r.severity == "LOG" {
            if let Some(payload) = r.message.strip_prefix("AUDIT: ") {
                pgaudit::parse_audit(payload)?.push_fields(&mut e);
            }
        }
        Ok(e)
    }
}

/// A host name a log's path gives (`…/CDRDB01/postgresql-2019-03-04.log` → `CDRDB01`), when
/// a directory near the file is named like a host rather than like a folder of logs.
pub fn host_from_path(source: &str) -> Option<Box<str>> {
    const GENERIC: [&str; 44] = [
        "evidence",
        "logs",
        "log",
        "pg_log",
        "pglog",
        "postgresql",
        "postgres",
        "pgsql",
        "pg",
        "db",
        "database",
        "databases",
        "data",
        "audit",
        "web",
        "www",
        "iis",
        "logfiles",
        "tomcat",
        "apache",
        "apache2",
        "httpd",
        "nginx",
        "access",
        "jboss",
        "wildfly",
        "standalone",
        "server",
        "servers",
        "windows",
        "winlogs",
        "evtx",
        "sysmon",
        "flows",
        "zeek",
        "net",
        "network",
        "tmp",
        "var",
        "main",
        "archive",
        "collected",
        "triage",
        "cdr",
    ];
    let path = std::path::Path::new(source);
    let dir = path.parent()?.file_name()?.to_str()?;
    let lower = dir.to_ascii_lowercase();
    let generic = GENERIC.contains(&lower.as_str())
        || lower.starts_with("w3svc")
        || lower.starts_with("tomcat")
        || lower.contains("log")
        || lower
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-');
    let hostlike = dir.len() <= 63
        && dir.bytes().any(|b| b.is_ascii_alphabetic())
        && dir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    (hostlike && !generic).then(|| dir.into())
}

/// Reads a PostgreSQL log of a known form.
pub(crate) fn read(
    reader: &mut (dyn BufRead + Send),
    format: PgFormat,
    given: Option<&LinePrefix>,
    carry: &SessionCarry,
    tally: &mut Tally<'_, '_>,
) {
    let computer = host_from_path(&tally.report.source);
    match format {
        PgFormat::Stderr => {
            // Backends still open from the series' earlier files.
            let path = std::path::Path::new(&*tally.report.source);
            let open = if path.is_file() {
                carry.at_start(path, given)
            } else {
                HashMap::new()
            };
            read_stderr(reader, given, computer, open, tally)
        }
        PgFormat::Csv => {
            let mut r = Reader {
                sessions: HashMap::new(),
                prefix: None,
                computer,
            };
            read_csvlog(reader, &mut r, tally)
        }
        PgFormat::Json => {
            let mut r = Reader {
                sessions: HashMap::new(),
                prefix: None,
                computer,
            };
            read_jsonlog(reader, &mut r, tally)
        }
    }
}

/// The prefix of a log's first lines: a known default, else inferred.
fn detect_prefix<'a>(
    lines: impl Iterator<Item = &'a str> + Clone,
) -> Option<(LinePrefix, prefix::PrefixChoice)> {
    prefix::detect(lines.clone()).or_else(|| prefix::infer(lines))
}

/// The first lines of a stderr log that prefix detection looks at.
const DETECT_RECORDS: usize = 400;

fn read_stderr(
    reader: &mut (dyn BufRead + Send),
    given: Option<&LinePrefix>,
    computer: Option<Box<str>>,
    open: HashMap<u32, Session>,
    tally: &mut Tally<'_, '_>,
) {
    // Without a prefix, the first lines decide it: buffer them.
    let mut buffered: Vec<(u64, String)> = Vec::new();
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    let detected;
    let prefix = match given {
        Some(p) => {
            tally.report.detail = Some(format!("log_line_prefix {p} (given)"));
            p
        }
        None => {
            let mut records = 0;
            while records < DETECT_RECORDS {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        tally.fail(format!("read error after line {line_no}: {e}"));
                        return;
                    }
                }
                line_no += 1;
                let text = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if !text.starts_with('\t') {
                    records += 1;
                }
                buffered.push((line_no, text));
            }
            match detect_prefix(buffered.iter().map(|(_, l)| l.as_str())) {
                Some((p, how)) => {
                    tally.report.detail = Some(format!("log_line_prefix {p} ({})", how));
                    detected = p;
                    &detected
                }
                None => {
                    tally.fail("a PostgreSQL log whose log_line_prefix is none of the known ones and could not be inferred: give it with --log-line-prefix".into());
                    return;
                }
            }
        }
    };
    let mut r = Reader {
        sessions: open,
        prefix: Some(prefix),
        computer,
    };
    let mut pending: Option<(u64, String)> = None;
    let mut each = |r: &mut Reader<'_>, tally: &mut Tally<'_, '_>, no: u64, text: &str| -> bool {
        if let Some(rest) = text.strip_prefix('\t') {
            return match &mut pending {
                Some((_, t)) => {
                    t.push('\n');
                    t.push_str(rest);
                    true
                }
                None => tally.reject(
                    Position::Line(no),
                    "continuation line without a record".into(),
                ),
            };
        }
        if !flush_stderr(r, &mut pending, tally) {
            return false;
        }
        if text.is_empty() {
            return true;
        }
        // A line the prefix does not read is rejected at once (its continuations with it).
        if r.prefix
            .expect("stderr logs have a prefix")
            .parse(text)
            .is_none()
        {
            return tally.reject(
                Position::Line(no),
                format!(
                    "line does not match the log_line_prefix {}",
                    r.prefix.expect("set")
                ),
            );
        }
        pending = Some((no, text.to_string()));
        true
    };
    for (no, text) in std::mem::take(&mut buffered) {
        if !each(&mut r, tally, no, &text) {
            return;
        }
    }
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                flush_stderr(&mut r, &mut pending, tally);
                tally.fail(format!("read error after line {line_no}: {e}"));
                return;
            }
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&buf);
        if !each(&mut r, tally, line_no, text.trim_end_matches(['\n', '\r'])) {
            return;
        }
    }
    flush_stderr(&mut r, &mut pending, tally);
}

fn flush_stderr(
    r: &mut Reader<'_>,
    pending: &mut Option<(u64, String)>,
    tally: &mut Tally<'_, '_>,
) -> bool {
    let Some((line, text)) = pending.take() else {
        return true;
    };
    let prefix = r.prefix.expect("stderr logs have a prefix");
    match record_of(prefix, line, &text) {
        Some(record) => r.emit(record, tally),
        None => tally.reject(
            Position::Line(line),
            "record does not match the log_line_prefix".into(),
        ),
    }
}

/// One stderr record (its line and continuations) read with the prefix.
fn record_of(prefix: &LinePrefix, line: u64, text: &str) -> Option<Record> {
    let f = prefix.parse(text)?;
    let rest = &text[f.severity_at..];
    let sev_len = prefix::severity_len(rest).expect("parse ends at a severity");
    let (host, port) = match (f.get('h'), f.get('r')) {
        (Some(h), r) => (
            h.to_string(),
            r.and_then(port_of).unwrap_or_default().to_string(),
        ),
        (None, Some(r)) => (host_of(r).to_string(), port_of(r).unwrap_or("").to_string()),
        (None, None) => (String::new(), String::new()),
    };
    let mut extra = Vec::new();
    if let Some(b) = f.get('b') {
        extra.push(("backend_type", b.to_string()));
    }
    if let Some(i) = f.get('i') {
        extra.push(("command_tag", i.to_string()));
    }
    if let Some(e) = f.get('e') {
        extra.push(("sql_state_code", e.to_string()));
    }
    Some(Record {
        line,
        time: ['m', 't', 'n']
            .into_iter()
            .find_map(|c| f.get(c))
            .unwrap_or("")
            .to_string(),
        pid: f.get('p').and_then(|p| p.parse().ok()),
        user: f.get('u').unwrap_or("").to_string(),
        db: f.get('d').unwrap_or("").to_string(),
        app: f.get('a').unwrap_or("").to_string(),
        host,
        port,
        session_id: f.get('c').unwrap_or("").to_string(),
        severity: rest[..sev_len].to_string(),
        message: rest[sev_len + 3..].to_string(),
        extra,
    })
}

/// `10.1.2.3(5555)` → `10.1.2.3`; `[local]` stays.
fn host_of(r: &str) -> &str {
    r.split('(').next().unwrap_or(r)
}

fn port_of(r: &str) -> Option<&str> {
    r.split_once('(')
        .and_then(|(_, p)| p.strip_suffix(')'))
        .filter(|p| !p.is_empty())
}

fn read_csvlog(reader: &mut (dyn BufRead + Send), r: &mut Reader<'_>, tally: &mut Tally<'_, '_>) {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut rec = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                if !(23..=26).contains(&rec.len()) {
                    let m = format!(
                        "csvlog record with {} columns (23 to 26 expected)",
                        rec.len()
                    );
                    if !tally.reject(Position::Line(line), m) {
                        return;
                    }
                    continue;
                }
                let from = &rec[4];
                let (host, port) = if from.starts_with('[') {
                    (from.to_string(), String::new())
                } else {
                    match from.rsplit_once(':') {
                        Some((h, p)) => (h.to_string(), p.to_string()),
                        None => (from.to_string(), String::new()),
                    }
                };
                let mut extra = vec![("command_tag", rec[7].to_string())];
                if let Some(b) = rec.get(23) {
                    extra.push(("backend_type", b.to_string()));
                }
                let record = Record {
                    line,
                    time: rec[0].to_string(),
                    pid: rec[3].parse().ok(),
                    user: rec[1].to_string(),
                    db: rec[2].to_string(),
                    app: rec[22].to_string(),
                    host,
                    port,
                    session_id: rec[5].to_string(),
                    severity: rec[11].to_string(),
                    message: rec[13].to_string(),
                    extra,
                };
                if !r.emit(record, tally) {
                    return;
                }
            }
            Err(e) => {
                let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                if !tally.reject(Position::Line(line), format!("not a csvlog record: {e}")) || io {
                    return;
                }
            }
        }
    }
}

fn read_jsonlog(reader: &mut (dyn BufRead + Send), r: &mut Reader<'_>, tally: &mut Tally<'_, '_>) {
    crate::for_each_line(reader, tally, |tally, line, bytes| {
        if bytes.trim_ascii().is_empty() {
            return true;
        }
        let v: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                return tally.reject(Position::Line(line), format!("not a jsonlog record: {e}"))
            }
        };
        let s = |k: &str| {
            v.get(k)
                .map(|x| match x {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        let mut extra = Vec::new();
        for k in ["backend_type", "ps", "state_code"] {
            let val = s(k);
            if !val.is_empty() {
                extra.push((
                    match k {
                        "ps" => "command_tag",
                        "state_code" => "sql_state_code",
                        _ => "backend_type",
                    },
                    val,
                ));
            }
        }
        let record = Record {
            line,
            time: s("timestamp"),
            pid: v.get("pid").and_then(|p| p.as_u64()).map(|p| p as u32),
            user: s("user"),
            db: s("dbname"),
            app: s("application_name"),
            host: s("remote_host"),
            port: s("remote_port"),
            session_id: s("session_id"),
            severity: s("error_severity"),
            message: s("message"),
            extra,
        };
        r.emit(record, tally)
    });
}

#[cfg(test)]
mod tests;
