//! PostgreSQL server logs with pgaudit lines, in the three formats PostgreSQL writes:
//! stderr (any `log_line_prefix`; continuation lines start with a tab), `csvlog` (23, 24 or 26
//! columns; quoted multi-line fields) and `jsonlog` (PostgreSQL 15+). Each pgaudit record
//! becomes a [`DbEvent`]; lines that are not records of the format are rejected with their line
//! number, never dropped silently.

use std::io::BufRead;
use std::sync::Arc;

use jiff::Timestamp;
use regex::Regex;

/// One pgaudit record with the session context the log line carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DbEvent {
    pub time: Option<Timestamp>,
    pub user: String,
    pub db: String,
    pub app: String,
    /// Client host (`%h`, csvlog `connection_from` without the port, jsonlog `remote_host`).
    pub client: String,
    pub pid: Option<u32>,
    pub source: Arc<str>,
    /// First line of the record in its file.
    pub line: u64,
    pub audit: Audit,
}

/// The pgaudit payload: `AUDIT_TYPE,STATEMENT_ID,SUBSTATEMENT_ID,CLASS,COMMAND,OBJECT_TYPE,
/// OBJECT_NAME,STATEMENT,PARAMETER[,ROWS]` (some versions omit PARAMETER).
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub audit_type: String,
    pub statement_id: u64,
    pub substatement_id: u64,
    pub class: String,
    pub command: String,
    pub object_type: String,
    pub object_name: String,
    pub statement: String,
    /// Bind parameters, when logged (`None` for `<none>` and `<not logged>`).
    pub params: Option<Vec<String>>,
    pub rows: Option<u64>,
}

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{input}:{line}: {message}")]
pub struct Rejected {
    pub input: Arc<str>,
    pub line: u64,
    pub message: String,
}

/// What reading one log gave.
#[derive(Debug, Default, Clone)]
pub struct ReadReport {
    pub format: &'static str,
    /// Records of the log (pgaudit or not).
    pub records: u64,
    pub audit: u64,
    pub rejected: u64,
}

/// The log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Stderr,
    Csv,
    Json,
    /// Oracle `UNIFIED_AUDIT_TRAIL` exported as CSV with its column names as the header.
    OracleCsv,
    /// SQL Server `sys.fn_get_audit_file` exported as CSV with its column names as the header.
    MssqlCsv,
}

/// Recognises the format from the first non-empty line.
pub fn sniff(head: &str) -> LogFormat {
    let first = head.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let upper = first.to_ascii_uppercase();
    if upper.contains("DBUSERNAME") && upper.contains("SQL_TEXT") {
        LogFormat::OracleCsv
    } else if upper.contains("SERVER_PRINCIPAL_NAME")
        && upper.contains("STATEMENT")
        && upper.contains("EVENT_TIME")
    {
        LogFormat::MssqlCsv
    } else if first.starts_with('{') {
        LogFormat::Json
    } else if Regex::new(r#"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? [^,]*,("[^"]*")?,"#)
        .expect("valid regex")
        .is_match(first)
    {
        LogFormat::Csv
    } else {
        LogFormat::Stderr
    }
}

/// A compiled `log_line_prefix`.
#[derive(Debug, Clone)]
pub struct Prefix {
    re: Regex,
    /// The prefix as literals and escapes, when every escape is followed by a literal: then
    /// lines are split by finding the literals, with no regex (the hot path).
    tokens: Option<Vec<Token>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(String),
    Escape(char),
}

/// The fields a prefix line gives, by escape letter.
#[derive(Debug, Default)]
struct Fields<'a> {
    values: [(char, &'a str); 8],
    n: usize,
    /// Where the message starts.
    end: usize,
    severity: &'a str,
}

impl<'a> Fields<'a> {
    fn get(&self, c: char) -> &'a str {
        self.values[..self.n]
            .iter()
            .find(|(k, _)| *k == c)
            .map_or("", |(_, v)| v)
    }
}

fn valid_field(c: char, v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match c {
        'p' => digits(v),
        'm' | 't' => {
            v.len() >= 19 && v.as_bytes()[4] == b'-' && v.as_bytes()[10] == b' ' && digits(&v[..4])
        }
        'n' => v.split('.').all(digits),
        _ => true,
    }
}
/// The prefix the simulator and our recommended configuration use.
pub const DEFAULT_PREFIX: &str = "%m [%p] user=%u,db=%d,app=%a,client=%h ";

impl Prefix {
    /// Compiles a `log_line_prefix` into a parser of its lines.
    pub fn new(prefix: &str) -> Result<Prefix, String> {
        let mut re = String::from("^");
        let mut chars = prefix.chars();
        let mut seen = std::collections::BTreeSet::new();
        while let Some(c) = chars.next() {
            if c != '%' {
                re.push_str(&regex::escape(&c.to_string()));
                continue;
            }
            let Some(e) = chars.next() else {
                return Err("log_line_prefix ends with a lone %".into());
            };
            let part = match e {
                'm' => r"(?P<m>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(?: [A-Za-z0-9+:-]+)?)",
                't' => r"(?P<t>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z0-9+:-]+)?)",
                'n' => r"(?P<n>\d+(?:\.\d+)?)",
                'p' => r"(?P<p>\d+)",
                'u' => "(?P<u>.*?)",
                'd' => "(?P<d>.*?)",
                'a' => "(?P<a>.*?)",
                'h' => "(?P<h>.*?)",
                'r' => "(?P<r>.*?)",
                'q' => "",
                '%' => "%",
                'c' | 'l' | 's' | 'v' | 'x' | 'e' | 'i' | 'b' | 'Q' | 'P' | 'L' => ".*?",
                other => return Err(format!("log_line_prefix escape %{other} is not known")),
            };
            if part.starts_with("(?P<") && !seen.insert(e) {
                re.push_str(".*?");
                continue;
            }
            re.push_str(part);
        }
        // Only the prefix and severity: the message is the rest of the line (matching it too
        // made the lazy groups scan every statement).
        re.push_str(r"(?P<sev>[A-Z]+[0-9]?):  ");
        let re = Regex::new(&re).map_err(|e| e.to_string())?;
        Ok(Prefix {
            re,
            tokens: tokens(prefix),
        })
    }

    /// Splits a line into its prefix fields, severity and message start.
    fn fields<'a>(&self, line: &'a str) -> Option<Fields<'a>> {
        let mut f = Fields::default();
        if let Some(tokens) = &self.tokens {
            let mut pos = 0;
            for (i, t) in tokens.iter().enumerate() {
                match t {
                    Token::Literal(l) => {
                        if !line[pos..].starts_with(l.as_str()) {
                            return None;
                        }
                        pos += l.len();
                    }
                    Token::Escape(c) => {
                        let len = match tokens.get(i + 1) {
                            Some(Token::Literal(next)) => line[pos..].find(next.as_str())?,
                            // The last escape runs to the severity.
                            _ => severity_at(&line[pos..])?,
                        };
                        let v = &line[pos..pos + len];
                        if !valid_field(*c, v) {
                            return None;
                        }
                        if f.n < f.values.len() && *c != 'q' {
                            f.values[f.n] = (*c, v);
                            f.n += 1;
                        }
                        pos += len;
                    }
                }
            }
            let rest = &line[pos..];
            let sev_len = rest
                .bytes()
                .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                .count();
            if sev_len == 0 || !rest[sev_len..].starts_with(":  ") {
                return None;
            }
            f.severity = &rest[..sev_len];
            f.end = pos + sev_len + 3;
            return Some(f);
        }
        let caps = self.re.captures(line)?;
        for c in ['m', 't', 'n', 'p', 'u', 'd', 'a', 'h'] {
            if let Some(m) = caps.name(&c.to_string()) {
                if f.n < f.values.len() {
                    f.values[f.n] = (c, m.as_str());
                    f.n += 1;
                }
            }
        }
        if let Some(m) = caps.name("r") {
            f.values[f.n.min(7)] = ('r', m.as_str());
            f.n = (f.n + 1).min(8);
        }
        f.severity = caps.name("sev").map_or("", |m| m.as_str());
        f.end = caps.get(0).map_or(0, |m| m.end());
        Some(f)
    }
}

/// Where `SEVERITY:  ` starts in `s` (the first upper-case word followed by a colon and two spaces).
fn severity_at(s: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = s[from..].find(":  ") {
        let at = from + i;
        let word = s[..at]
            .rsplit(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
            .next()
            .unwrap_or("");
        if !word.is_empty() {
            return Some(at - word.len());
        }
        from = at + 3;
    }
    None
}

/// The prefix as tokens, or `None` when two escapes touch (the regex decides then).
fn tokens(prefix: &str) -> Option<Vec<Token>> {
    let mut out: Vec<Token> = Vec::new();
    let mut chars = prefix.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next()? {
                '%' => match out.last_mut() {
                    Some(Token::Literal(l)) => l.push('%'),
                    _ => out.push(Token::Literal("%".into())),
                },
                'q' => {}
                e => {
                    if matches!(out.last(), Some(Token::Escape(_))) {
                        return None;
                    }
                    out.push(Token::Escape(e));
                }
            }
        } else {
            match out.last_mut() {
                Some(Token::Literal(l)) => l.push(c),
                _ => out.push(Token::Literal(c.to_string())),
            }
        }
    }
    Some(out)
}

/// Parses PostgreSQL's timestamp text (`2019-03-06 18:55:00.300 UTC`, `… +08`, epoch).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Timestamp::from_microsecond((secs * 1e6) as i64).ok();
    }
    let (civil, zone) = match s.rfind(' ') {
        Some(i)
            if s[i + 1..]
                .chars()
                .any(|c| c.is_ascii_alphabetic() || c == '+' || c == '-') =>
        {
            (&s[..i], &s[i + 1..])
        }
        _ => (s, "UTC"),
    };
    let dt: jiff::civil::DateTime = civil.parse().ok()?;
    let offset = match zone {
        "UTC" | "GMT" | "Z" => jiff::tz::Offset::UTC,
        z if z.starts_with(['+', '-']) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: Vec<&str> = z[1..].split(':').collect();
            let h: i32 = digits.first()?.parse().ok()?;
            let m: i32 = digits.get(1).map_or(Some(0), |m| m.parse().ok())?;
            jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()?
        }
        // A zone abbreviation we cannot resolve: read as UTC (the report says so).
        _ => jiff::tz::Offset::UTC,
    };
    offset.to_timestamp(dt).ok()
}

/// Splits one CSV record with pgaudit's quoting (`"` doubles inside quoted fields).
pub fn split_csv(s: &str) -> Vec<String> {
    let mut fields = Vec::with_capacity(10);
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            let mut field = String::new();
            let mut start = i + 1;
            let mut j = start;
            loop {
                match memchr_quote(b, j) {
                    Some(q) if b.get(q + 1) == Some(&b'"') => {
                        field.push_str(&s[start..=q]);
                        start = q + 2;
                        j = start;
                    }
                    Some(q) => {
                        field.push_str(&s[start..q]);
                        // Text after the closing quote up to the comma belongs to the field.
                        let end = s[q + 1..].find(',').map_or(s.len(), |k| q + 1 + k);
                        field.push_str(&s[q + 1..end]);
                        i = end;
                        break;
                    }
                    None => {
                        field.push_str(&s[start..]);
                        i = s.len();
                        break;
                    }
                }
            }
            fields.push(field);
        } else {
            let end = s[i..].find(',').map_or(s.len(), |k| i + k);
            fields.push(s[i..end].to_string());
            i = end;
        }
        if i >= s.len() {
            break;
        }
        i += 1; // the comma
        if i == s.len() {
            fields.push(String::new());
            break;
        }
    }
    fields
}

fn memchr_quote(b: &[u8], from: usize) -> Option<usize> {
    b[from..].iter().position(|&c| c == b'"').map(|p| from + p)
}

/// Parses the text after `AUDIT: `.
pub fn parse_audit(payload: &str) -> Result<Audit, String> {
    let f = split_csv(payload);
    if !(8..=10).contains(&f.len()) {
        return Err(format!(
            "pgaudit record with {} fields (8 to 10 expected)",
            f.len()
        ));
    }
    let num = |i: usize, what: &str| {
        f[i].parse::<u64>()
            .map_err(|_| format!("{what} {:?} is not a number", f[i]))
    };
    let params = match f.get(8).map(String::as_str) {
        None | Some("<none>") | Some("<not logged>") => None,
        Some(p) => Some(split_csv(p)),
    };
    let rows = match f.get(9) {
        Some(r) => Some(
            r.parse::<u64>()
                .map_err(|_| format!("rows {r:?} is not a number"))?,
        ),
        None => None,
    };
    Ok(Audit {
        audit_type: f[0].clone(),
        statement_id: num(1, "statement id")?,
        substatement_id: num(2, "substatement id")?,
        class: f[3].clone(),
        command: f[4].clone(),
        object_type: f[5].clone(),
        object_name: f[6].clone(),
        statement: f[7].clone(),
        params,
        rows,
    })
}

struct Context<'a> {
    source: &'a Arc<str>,
    report: ReadReport,
}

impl Context<'_> {
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        line: u64,
        time: &str,
        (user, db, app, client): (&str, &str, &str, &str),
        pid: Option<u32>,
        severity: &str,
        message: &str,
        out: &mut dyn FnMut(Result<DbEvent, Rejected>),
    ) {
        self.report.records += 1;
        let Some(payload) = message.strip_prefix("AUDIT: ") else {
            return;
        };
        if severity != "LOG" {
            return;
        }
        match parse_audit(payload) {
            Ok(audit) => {
                self.report.audit += 1;
                out(Ok(DbEvent {
                    time: parse_time(time),
                    user: user.into(),
                    db: db.into(),
                    app: app.into(),
                    client: client.into(),
                    pid,
                    source: self.source.clone(),
                    line,
                    audit,
                }));
            }
            Err(message) => self.reject(line, message, out),
        }
    }

    fn reject(
        &mut self,
        line: u64,
        message: String,
        out: &mut dyn FnMut(Result<DbEvent, Rejected>),
    ) {
        self.report.rejected += 1;
        out(Err(Rejected {
            input: self.source.clone(),
            line,
            message,
        }));
    }
}

/// Reads one log, streaming every pgaudit record (or rejected line) to `out`.
pub fn read(
    reader: &mut dyn BufRead,
    source: &Arc<str>,
    prefix: &Prefix,
    out: &mut dyn FnMut(Result<DbEvent, Rejected>),
) -> std::io::Result<ReadReport> {
    let mut head = String::new();
    let mut first = String::new();
    // The first line decides the format; keep it to process it.
    reader.read_line(&mut first)?;
    head.push_str(&first);
    let format = sniff(&head);
    let mut cx = Context {
        source,
        report: ReadReport {
            format: match format {
                LogFormat::Stderr => "postgresql-stderr",
                LogFormat::Csv => "postgresql-csvlog",
                LogFormat::Json => "postgresql-jsonlog",
                LogFormat::OracleCsv => "oracle-unified-audit-csv",
                LogFormat::MssqlCsv => "mssql-audit-csv",
            },
            ..Default::default()
        },
    };
    let chained: Box<dyn std::io::Read + '_> = Box::new(std::io::Read::chain(
        std::io::Cursor::new(first.into_bytes()),
        reader,
    ));
    match format {
        LogFormat::OracleCsv | LogFormat::MssqlCsv => {
            read_audit_export(chained, format, &mut cx, out)
        }
        LogFormat::Stderr => {
            read_stderr(&mut std::io::BufReader::new(chained), prefix, &mut cx, out)?
        }
        LogFormat::Csv => read_csvlog(chained, &mut cx, out),
        LogFormat::Json => read_jsonlog(&mut std::io::BufReader::new(chained), &mut cx, out)?,
    }
    Ok(cx.report)
}

fn read_stderr(
    reader: &mut dyn BufRead,
    prefix: &Prefix,
    cx: &mut Context<'_>,
    out: &mut dyn FnMut(Result<DbEvent, Rejected>),
) -> std::io::Result<()> {
    // The record being assembled: its first line number, its text (continuations appended),
    // where its message starts.
    let mut pending: Option<(u64, String, usize)> = None;
    let mut line_no = 0;
    let mut buf = Vec::new();
    let flush = |pending: &mut Option<(u64, String, usize)>,
                 cx: &mut Context<'_>,
                 out: &mut dyn FnMut(Result<DbEvent, Rejected>)| {
        if let Some((line, text, end)) = pending.take() {
            let f = prefix.fields(&text).expect("matched when queued");
            let time = ['m', 't', 'n']
                .into_iter()
                .map(|c| f.get(c))
                .find(|s| !s.is_empty())
                .unwrap_or("");
            let client = match f.get('h') {
                "" => f.get('r').split('(').next().unwrap_or(""),
                h => h,
            };
            cx.record(
                line,
                time,
                (f.get('u'), f.get('d'), f.get('a'), client),
                f.get('p').parse().ok(),
                f.severity,
                &text[end..],
                out,
            );
        }
    };
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if let Some(rest) = text.strip_prefix('\t') {
            match &mut pending {
                Some((_, text, _)) => {
                    text.push('\n');
                    text.push_str(rest);
                }
                None => cx.reject(line_no, "continuation line without a record".into(), out),
            }
            continue;
        }
        flush(&mut pending, cx, out);
        if text.is_empty() {
            continue;
        }
        match prefix.fields(text).map(|f| f.end) {
            Some(end) => pending = Some((line_no, text.to_string(), end)),
            None => cx.reject(
                line_no,
                "line does not match the log_line_prefix".into(),
                out,
            ),
        }
    }
    flush(&mut pending, cx, out);
    Ok(())
}

fn read_csvlog(
    reader: Box<dyn std::io::Read + '_>,
    cx: &mut Context<'_>,
    out: &mut dyn FnMut(Result<DbEvent, Rejected>),
) {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if !(23..=26).contains(&record.len()) {
                    cx.reject(
                        line,
                        format!(
                            "csvlog record with {} columns (23 to 26 expected)",
                            record.len()
                        ),
                        out,
                    );
                    continue;
                }
                let from = &record[4];
                let client = if from.starts_with('[') {
                    from
                } else {
                    from.rsplit_once(':').map_or(from, |(h, _)| h)
                };
                let (time, user, db, pid, sev, msg, app) = (
                    &record[0],
                    &record[1],
                    &record[2],
                    &record[3],
                    &record[11],
                    &record[13],
                    &record[22],
                );
                cx.record(
                    line,
                    time,
                    (user, db, app, client),
                    pid.parse().ok(),
                    sev,
                    msg,
                    out,
                );
            }
            Err(e) => {
                cx.reject(line, format!("not a csvlog record: {e}"), out);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
            }
        }
    }
}

/// Oracle and SQL Server audit exports: one CSV row per audited action, columns by name.
/// Successful reads become records (`READ`, the action's command); failed ones and other
/// actions are counted as records but not analysed.
fn read_audit_export(
    reader: Box<dyn std::io::Read + '_>,
    format: LogFormat,
    cx: &mut Context<'_>,
    out: &mut dyn FnMut(Result<DbEvent, Rejected>),
) {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers: Vec<String> = match csv.headers() {
        Ok(h) => h.iter().map(|c| c.trim().to_ascii_uppercase()).collect(),
        Err(e) => return cx.reject(1, format!("no header: {e}"), out),
    };
    let col = |n: &str| headers.iter().position(|h| h == n);
    let oracle = format == LogFormat::OracleCsv;
    let need: &[&str] = if oracle {
        &["EVENT_TIMESTAMP", "DBUSERNAME", "ACTION_NAME", "SQL_TEXT"]
    } else {
        &[
            "EVENT_TIME",
            "ACTION_ID",
            "SERVER_PRINCIPAL_NAME",
            "STATEMENT",
        ]
    };
    if let Some(missing) = need.iter().find(|n| col(n).is_none()) {
        return cx.reject(1, format!("the header has no {missing} column"), out);
    }
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Err(e) => {
                cx.reject(line, format!("not a CSV record: {e}"), out);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
            Ok(true) => {}
        }
        cx.report.records += 1;
        let get = |n: &str| col(n).and_then(|i| record.get(i)).unwrap_or("").trim();
        let (time, user, db, app, client, action, ok, statement, binds) = if oracle {
            let auth = get("AUTHENTICATION_TYPE");
            let ip = auth
                .split("HOST=")
                .nth(1)
                .and_then(|r| r.split(')').next())
                .unwrap_or("");
            let client = if ip.is_empty() { get("USERHOST") } else { ip };
            (
                get("EVENT_TIMESTAMP"),
                get("DBUSERNAME"),
                get("OBJECT_SCHEMA"),
                get("CLIENT_PROGRAM_NAME"),
                client,
                get("ACTION_NAME").to_string(),
                matches!(get("RETURN_CODE"), "" | "0"),
                get("SQL_TEXT"),
                oracle_binds(get("SQL_BINDS")),
            )
        } else {
            let action = match get("ACTION_ID") {
                "SL" => "SELECT",
                "IN" => "INSERT",
                "UP" => "UPDATE",
                "DL" => "DELETE",
                "EX" => "EXECUTE",
                other => other,
            };
            let client = if get("CLIENT_IP").is_empty() {
                get("HOST_NAME")
            } else {
                get("CLIENT_IP")
            };
            (
                get("EVENT_TIME"),
                get("SERVER_PRINCIPAL_NAME"),
                get("DATABASE_NAME"),
                get("APPLICATION_NAME"),
                client,
                action.to_string(),
                matches!(
                    get("SUCCEEDED").to_ascii_lowercase().as_str(),
                    "" | "1" | "true"
                ),
                get("STATEMENT"),
                None,
            )
        };
        let Some(t) = parse_time(time) else {
            cx.reject(line, format!("{time:?} is not a time"), out);
            continue;
        };
        if !ok
            || !matches!(action.as_str(), "SELECT" | "EXECUTE" | "EXPORT")
            || statement.is_empty()
        {
            continue;
        }
        cx.report.audit += 1;
        out(Ok(DbEvent {
            time: Some(t),
            user: user.into(),
            db: db.into(),
            app: app.into(),
            client: client.into(),
            pid: None,
            source: cx.source.clone(),
            line,
            audit: Audit {
                audit_type: if oracle {
                    "UNIFIED".into()
                } else {
                    "MSSQL".into()
                },
                statement_id: line,
                substatement_id: 1,
                class: "READ".into(),
                command: action,
                object_type: "TABLE".into(),
                object_name: String::new(),
                statement: statement.into(),
                params: binds,
                rows: None,
            },
        }));
    }
}

/// Oracle's `SQL_BINDS`: ` #1(13):8613800000001 #2(10):2018-01-01` (length-prefixed values).
pub fn oracle_binds(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('#') {
        rest = &rest[i + 1..];
        let open = rest.find('(')?;
        let close = rest.find("):")?;
        let len: usize = rest[open + 1..close].parse().ok()?;
        let value = rest.get(close + 2..close + 2 + len)?;
        out.push(value.to_string());
        rest = &rest[close + 2 + len..];
    }
    (!out.is_empty()).then_some(out)
}

fn read_jsonlog(
    reader: &mut dyn BufRead,
    cx: &mut Context<'_>,
    out: &mut dyn FnMut(Result<DbEvent, Rejected>),
) -> std::io::Result<()> {
    let mut line_no = 0;
    let mut buf = String::new();
    loop {
        buf.clear();
        if reader.read_line(&mut buf)? == 0 {
            break;
        }
        line_no += 1;
        if buf.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(&buf) {
            Ok(v) => v,
            Err(e) => {
                cx.reject(line_no, format!("not a jsonlog record: {e}"), out);
                continue;
            }
        };
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
        let pid = v.get("pid").and_then(|p| p.as_u64()).map(|p| p as u32);
        cx.record(
            line_no,
            s("timestamp"),
            (
                s("user"),
                s("dbname"),
                s("application_name"),
                s("remote_host"),
            ),
            pid,
            s("error_severity"),
            s("message"),
            out,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, prefix: &str) -> (Vec<DbEvent>, Vec<Rejected>, ReadReport) {
        let src: Arc<str> = "t.log".into();
        let (mut ok, mut bad) = (Vec::new(), Vec::new());
        let report = read(
            &mut text.as_bytes(),
            &src,
            &Prefix::new(prefix).unwrap(),
            &mut |r| match r {
                Ok(e) => ok.push(e),
                Err(e) => bad.push(e),
            },
        )
        .unwrap();
        (ok, bad, report)
    }

    #[test]
    fn stderr_records_with_continuations_and_bad_lines() {
        let log = "2019-03-06 18:55:00.300 UTC [49963] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  AUDIT: SESSION,2,1,READ,SELECT,TABLE,cdr.voice_cdr,\"select a,\n\t  b from cdr.voice_cdr where served_msisdn in ('999700000001')\",<none>,12\n\
garbage line\n\
2019-03-06 18:55:01.000 UTC [49963] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  connection authorized: user=x\n\
2019-03-06 18:55:02.000 UTC [49963] user=care_app,db=cdrdw,app=PostgreSQL JDBC Driver,client=10.40.0.20 LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,cdr.voice_cdr,select 1 where x = $1,\"999700000002,2019-01-01 00:00:00+00\",1\n\
2019-03-06 18:55:03.000 UTC [49963] user=care_app,db=cdrdw,app=psql,client=10.40.0.20 LOG:  AUDIT: SESSION,x,1,READ\n";
        let (ok, bad, report) = collect(log, DEFAULT_PREFIX);
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].line, 1);
        assert_eq!(
            ok[0].audit.statement,
            "select a,\n  b from cdr.voice_cdr where served_msisdn in ('999700000001')"
        );
        assert_eq!(ok[0].audit.rows, Some(12));
        assert_eq!(ok[0].client, "10.40.0.20");
        assert_eq!(ok[0].time.unwrap().to_string(), "2019-03-06T18:55:00.3Z");
        assert_eq!(ok[1].app, "PostgreSQL JDBC Driver");
        assert_eq!(
            ok[1].audit.params.as_deref().unwrap(),
            ["999700000002", "2019-01-01 00:00:00+00"]
        );
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![3, 6]);
        assert_eq!(report.records, 4);
        assert_eq!(report.rejected, 2);
    }

    #[test]
    fn oracle_and_sql_server_exports() {
        let ora = "EVENT_TIMESTAMP,DBUSERNAME,USERHOST,CLIENT_PROGRAM_NAME,AUTHENTICATION_TYPE,ACTION_NAME,OBJECT_SCHEMA,OBJECT_NAME,SQL_TEXT,SQL_BINDS,RETURN_CODE\n\
2019-03-06 18:55:00.300000,CDR_RO,jump01,sqlplus.exe,\"(TYPE=(DATABASE));(CLIENT ADDRESS=((ADDRESS=(PROTOCOL=tcp)(HOST=10.20.4.17)(PORT=51514))));\",SELECT,CDR,VOICE_CDR,\"select * from cdr.voice_cdr where served_msisdn = :1\", #1(12):999700000001,0\n\
2019-03-06 18:56:00,CDR_RO,jump01,sqlplus.exe,,SELECT,CDR,VOICE_CDR,select 1,,942\n\
yesterday,CDR_RO,jump01,sqlplus.exe,,SELECT,CDR,VOICE_CDR,select 1,,0\n";
        let (ok, bad, report) = collect(ora, DEFAULT_PREFIX);
        assert_eq!(report.format, "oracle-unified-audit-csv");
        assert_eq!(ok.len(), 1, "{bad:?}");
        assert_eq!(ok[0].client, "10.20.4.17");
        assert_eq!(ok[0].app, "sqlplus.exe");
        assert_eq!(ok[0].audit.params.as_deref().unwrap(), ["999700000001"]);
        assert_eq!(report.records, 3);
        assert_eq!((bad.len(), bad[0].line), (1, 4));
        let ms = "event_time,sequence_number,action_id,succeeded,session_id,server_principal_name,database_name,schema_name,object_name,statement,client_ip,application_name\n\
2019-03-06 18:55:00.3000000,1,SL,1,57,NWM\\svc_sync,cdrdw,cdr,voice_cdr,\"SELECT * FROM cdr.voice_cdr WHERE served_msisdn IN ('999700000001', '999700000002')\",10.40.0.20,Microsoft SQL Server Management Studio\n";
        let (ok, bad, report) = collect(ms, DEFAULT_PREFIX);
        assert_eq!(report.format, "mssql-audit-csv");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].user, "NWM\\svc_sync");
        assert_eq!(ok[0].audit.command, "SELECT");
        assert_eq!(
            oracle_binds(" #1(3):abc #2(10):2018-01-01"),
            Some(vec!["abc".into(), "2018-01-01".into()])
        );
    }

    #[test]
    fn csv_split_handles_quotes_and_empties() {
        assert_eq!(
            split_csv("a,,\"b,c\",\"d\"\"e\",x"),
            ["a", "", "b,c", "d\"e", "x"]
        );
        assert_eq!(split_csv(""), [""]);
        assert_eq!(split_csv("a,"), ["a", ""]);
        assert_eq!(split_csv("\"unterminated,x"), ["unterminated,x"]);
    }

    #[test]
    fn the_token_scanner_agrees_with_the_regex() {
        let lines = [
            "2019-03-06 18:55:00.300 UTC [49963] user=care_app,db=cdrdw,app=PostgreSQL JDBC Driver,client=10.40.0.20 LOG:  AUDIT: x",
            "2019-03-06 18:55:00.300 UTC [49963] user=[unknown],db=[unknown],app=[unknown],client=[local] LOG:  connection received: host=[local]",
            "2019-03-06 18:55:00.300 UTC [x] user=a,db=b,app=c,client=d LOG:  bad pid",
            "no prefix at all LOG:  x",
            "2019-03-06 18:55:00.300 UTC [1] user=a,db=b,app=c,client=d ERROR:  relation does not exist",
        ];
        let fast = Prefix::new(DEFAULT_PREFIX).unwrap();
        assert!(fast.tokens.is_some());
        let slow = Prefix {
            tokens: None,
            ..fast.clone()
        };
        for l in lines {
            let (a, b) = (fast.fields(l), slow.fields(l));
            assert_eq!(a.is_some(), b.is_some(), "{l}");
            if let (Some(a), Some(b)) = (a, b) {
                for c in ['m', 'p', 'u', 'd', 'a', 'h'] {
                    assert_eq!(a.get(c), b.get(c), "{c} in {l}");
                }
                assert_eq!((a.severity, a.end), (b.severity, b.end), "{l}");
            }
        }
        assert!(tokens("%m%p ").is_none());
    }

    #[test]
    fn other_prefixes() {
        let log = "2019-03-06 02:55:00 +08 [77]: [3-1] user=dba,db=cdrdw,app=psql,client=10.1.1.1 LOG:  AUDIT: SESSION,1,1,READ,SELECT,,,select 1,<not logged>\n";
        let (ok, bad, _) = collect(log, "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok[0].time.unwrap().to_string(), "2019-03-05T18:55:00Z");
        assert_eq!(ok[0].audit.params, None);
        assert_eq!(ok[0].audit.rows, None);
        assert!(Prefix::new("%Z").is_err());
    }

    #[test]
    fn csvlog_and_jsonlog() {
        let csv = "2015-08-12 16:13:44.854 UTC,\"vagrant\",\"postgres\",22614,\"10.0.0.5:5566\",55cb70b8.5856,8,\"SELECT\",2015-08-12 16:13:44 UTC,2/25,0,LOG,00000,\"AUDIT: SESSION,2,1,READ,SELECT,,,\"\"SELECT a,\nb\"\",<not logged>\",,,,,,,,\"log_audit_event, pgaudit.c:686\",\"psql\"\n\
2015-08-12 16:13:45.000 UTC,\"vagrant\",\"postgres\",1,\"x\",1,1\n";
        let (ok, bad, report) = collect(csv, DEFAULT_PREFIX);
        assert_eq!(report.format, "postgresql-csvlog");
        assert_eq!(ok.len(), 1, "{bad:?}");
        assert_eq!(ok[0].audit.statement, "SELECT a,\nb");
        assert_eq!(ok[0].client, "10.0.0.5");
        assert_eq!(ok[0].app, "psql");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        let json = "{\"timestamp\":\"2022-07-26 10:45:16.563 UTC\",\"user\":\"cdr_ro\",\"dbname\":\"cdrdw\",\"pid\":3361,\"remote_host\":\"10.20.4.17\",\"remote_port\":51514,\"error_severity\":\"LOG\",\"message\":\"AUDIT: SESSION,3,1,READ,SELECT,TABLE,cdr.voice_cdr,select 1,<none>,1843\",\"application_name\":\"psql\"}\n{broken\n";
        let (ok, bad, report) = collect(json, DEFAULT_PREFIX);
        assert_eq!(report.format, "postgresql-jsonlog");
        assert_eq!(ok[0].audit.rows, Some(1843));
        assert_eq!(ok[0].pid, Some(3361));
        assert_eq!(bad[0].line, 2);
    }
}
