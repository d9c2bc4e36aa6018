//! PostgreSQL server logs as PostgreSQL writes them to stderr with pgaudit loaded, in the
//! profile's `log_line_prefix` and `log_timezone`, with `log_connections` and
//! `log_disconnections` on, pgaudit with `log_relation`, `log_parameter` and `log_rows`, and
//! the background processes' own lines (checkpoints). Continuation lines of multi-line
//! messages start with a tab. The real server's shape is checked against ours by a test that
//! replays simulated traffic into PostgreSQL with pgaudit (`tests/real_postgres.rs`).

use crate::clock;
use crate::profile::{DbProfile, PrefixStyle};
use crate::sink::{Sink, StreamId};

/// How the server writes its lines.
#[derive(Debug, Clone, Copy)]
pub struct LogStyle {
    pub prefix: PrefixStyle,
    /// `log_timezone`'s offset in minutes (0: UTC).
    pub offset_min: i32,
}

impl LogStyle {
    pub fn of(db: &DbProfile, utc_offset_min: i32) -> LogStyle {
        LogStyle {
            prefix: db.prefix,
            offset_min: if db.local_log_time { utc_offset_min } else { 0 },
        }
    }

    /// The prefix of a line of a backend (`who` = (user, db, app, host, port)) or of a
    /// background process (`None`).
    fn prefix(&self, t: i64, pid: u32, who: Option<(&str, &str, &str, &str, u16)>) -> String {
        let m = clock::pg_at(t, self.offset_min, true);
        match (self.prefix, who) {
            (PrefixStyle::Towerwatch, Some((u, d, a, h, _))) => {
                format!("{m} [{pid}] user={u},db={d},app={a},client={h} ")
            }
            (PrefixStyle::Towerwatch, None) => format!("{m} [{pid}] user=,db=,app=,client= "),
            (PrefixStyle::Debian, Some((u, d, ..))) => format!("{m} [{pid}] {u}@{d} "),
            (PrefixStyle::Debian, None) => format!("{m} [{pid}] "),
            (PrefixStyle::Rds, Some((u, d, _, h, port))) => format!(
                "{}:{h}({port}):{u}@{d}:[{pid}]:",
                clock::pg_at(t, self.offset_min, false)
            ),
            (PrefixStyle::Rds, None) => {
                format!("{}::@:[{pid}]:", clock::pg_at(t, self.offset_min, false))
            }
        }
    }

    /// A background process's line (checkpointer, autovacuum).
    pub fn background(&self, sink: &mut Sink, stream: StreamId, t: i64, pid: u32, message: &str) {
        let prefix = self.prefix(t, pid, None);
        sink.text(stream, t, format!("{prefix}LOG:  {message}"));
    }
}

/// The settings a real server needs to write logs of this shape.
pub const SERVER_SETTINGS: &str = "shared_preload_libraries = 'pgaudit'
log_destination = 'stderr'
log_line_prefix = '%m [%p] user=%u,db=%d,app=%a,client=%h '
log_timezone = 'UTC'
log_connections = on
log_disconnections = on
pgaudit.log = 'read,write,ddl,role'
pgaudit.log_relation = on
pgaudit.log_parameter = on
pgaudit.log_rows = on
pgaudit.log_catalog = off
";

/// The CDR warehouse schema (`cdrdw` database): one table per record family, with the
/// mediated CDR columns.
pub const SCHEMA_SQL: &str = "CREATE SCHEMA cdr;
CREATE TABLE cdr.voice_cdr (record_id bigint PRIMARY KEY, record_type text, served_imsi text, served_msisdn text, served_imei text, calling_number text, called_number text, start_time timestamptz, answer_time timestamptz, end_time timestamptz, duration_s integer, mcc text, mnc text, lac_tac integer, cell_id bigint, radio text, recording_entity text, cause_for_term text, partial_seq integer, data_volume_ul bigint, data_volume_dl bigint, apn text);
CREATE TABLE cdr.sms_cdr (LIKE cdr.voice_cdr INCLUDING ALL);
CREATE TABLE cdr.data_cdr (LIKE cdr.voice_cdr INCLUDING ALL);
CREATE INDEX ON cdr.voice_cdr (served_msisdn, start_time);
CREATE INDEX ON cdr.sms_cdr (served_msisdn, start_time);
";

/// pgaudit's CSV quoting: quoted (and `"` doubled) only when the value holds `,` `"` CR or LF.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One statement as a client sends it.
#[derive(Debug, Clone)]
pub struct Statement {
    /// `READ`, `WRITE`, …
    pub class: &'static str,
    /// `SELECT`, `INSERT`, `COPY`, …
    pub command: &'static str,
    /// The relation pgaudit names (`log_relation`), if any.
    pub object: Option<String>,
    pub text: String,
    /// Bind parameters (extended protocol), or `None` for a simple query.
    pub params: Option<Vec<String>>,
    pub rows: u64,
}

impl Statement {
    pub fn select(object: &str, text: String, params: Option<Vec<String>>, rows: u64) -> Self {
        Statement {
            class: "READ",
            command: "SELECT",
            object: Some(object.to_string()),
            text,
            params,
            rows,
        }
    }

    /// Whether this is `COPY (…) TO STDOUT`, which pgaudit logs as a SELECT sub-statement
    /// on the relation and then the COPY itself.
    fn is_copy_query_out(&self) -> bool {
        let t = self.text.trim_start().to_ascii_lowercase();
        t.starts_with("copy (") && t.contains(" to stdout")
    }
}

/// A client session on the server.
#[derive(Debug, Clone)]
pub struct Session {
    pub pid: u32,
    pub user: String,
    pub db: String,
    pub app: String,
    pub host: String,
    pub port: u16,
    pub start: i64,
    statement_id: u32,
    style: LogStyle,
}

/// Who connects: the login, database and application, from which address and port.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub user: &'a str,
    pub db: &'a str,
    pub app: &'a str,
    pub host: &'a str,
    pub port: u16,
}

impl Session {
    pub fn new(pid: u32, peer: Peer<'_>, start: i64, style: LogStyle) -> Self {
        Session {
            pid,
            user: peer.user.into(),
            db: peer.db.into(),
            app: peer.app.into(),
            host: peer.host.into(),
            port: peer.port,
            start,
            statement_id: 0,
            style,
        }
    }

    fn prefix(&self, t: i64, user: &str, db: &str, app: &str) -> String {
        self.style
            .prefix(t, self.pid, Some((user, db, app, &self.host, self.port)))
    }

    fn log(&self, sink: &mut Sink, stream: StreamId, t: i64, prefix: String, message: &str) {
        // PostgreSQL's stderr writer puts a tab after every newline of the message.
        let body = message.replace('\n', "\n\t");
        sink.text(stream, t, format!("{prefix}LOG:  {body}"));
    }

    pub fn connect(&self, sink: &mut Sink, stream: StreamId) {
        let t = self.start;
        let unknown = "[unknown]";
        self.log(
            sink,
            stream,
            t,
            self.prefix(t, unknown, unknown, unknown),
            &format!("connection received: host={} port={}", self.host, self.port),
        );
        self.log(
            sink,
            stream,
            t + 900,
            self.prefix(t + 900, &self.user, &self.db, unknown),
            &format!(
                "connection authorized: user={} database={} application_name={}",
                self.user, self.db, self.app
            ),
        );
    }

    pub fn run(&mut self, sink: &mut Sink, stream: StreamId, t: i64, s: &Statement) {
        self.statement_id += 1;
        let params = match &s.params {
            None => "<none>".to_string(),
            Some(p) => csv_field(&p.iter().map(|v| csv_field(v)).collect::<Vec<_>>().join(",")),
        };
        let text = csv_field(&s.text);
        let prefix = self.prefix(t, &self.user, &self.db, &self.app);
        let (object_type, object) = match &s.object {
            Some(o) => ("TABLE", o.as_str()),
            None => ("", ""),
        };
        if s.is_copy_query_out() {
            self.log(
                sink,
                stream,
                t,
                prefix.clone(),
                &format!(
                    "AUDIT: SESSION,{},1,READ,SELECT,{object_type},{object},{text},{params},{}",
                    self.statement_id, s.rows
                ),
            );
            self.log(
                sink,
                stream,
                t,
                prefix,
                &format!(
                    "AUDIT: SESSION,{},2,READ,COPY,,,{text},{params},0",
                    self.statement_id
                ),
            );
        } else {
            self.log(
                sink,
                stream,
                t,
                prefix,
                &format!(
                    "AUDIT: SESSION,{},1,{},{},{object_type},{object},{text},{params},{}",
                    self.statement_id, s.class, s.command, s.rows
                ),
            );
        }
    }

    pub fn disconnect(&self, sink: &mut Sink, stream: StreamId, t: i64) {
        let dur = (t - self.start).max(0);
        let message = format!(
            "disconnection: session time: {}:{:02}:{:02}.{:03} user={} database={} host={} port={}",
            dur / clock::HOUR,
            dur % clock::HOUR / clock::MINUTE,
            dur % clock::MINUTE / clock::SECOND,
            dur % clock::SECOND / 1000,
            self.user,
            self.db,
            self.host,
            self.port
        );
        self.log(
            sink,
            stream,
            t,
            self.prefix(t, &self.user, &self.db, &self.app),
            &message,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_follows_pgaudit() {
        assert_eq!(csv_field("select 1"), "select 1");
        assert_eq!(csv_field("select a, b"), "\"select a, b\"");
        assert_eq!(csv_field("x = \"y\""), "\"x = \"\"y\"\"\"");
        assert_eq!(csv_field("a\nb"), "\"a\nb\"");
    }
}
