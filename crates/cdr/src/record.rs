//! The database's audit records as the analytics see them, taken from the events
//! `towerwatch-sources` reads (PostgreSQL stderr/csvlog/jsonlog with pgaudit, Oracle and SQL
//! Server audit exports): who ran which statement, from which client, in which session.

use std::sync::Arc;

use jiff::Timestamp;
use towerwatch_event::{Event, Locator};
use towerwatch_sources::dbexport::{MSSQL_CHANNEL, ORACLE_CHANNEL};
use towerwatch_sources::postgres::{split_csv, CHANNEL as PG_CHANNEL};

/// One audited statement with the session context around it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DbEvent {
    pub time: Option<Timestamp>,
    pub user: String,
    pub db: String,
    pub app: String,
    /// The client's address (or host name when that is all the log has).
    pub client: String,
    pub client_port: String,
    pub pid: Option<u32>,
    /// The backend session (csvlog's `session_id`, or one the reader built).
    pub session: String,
    /// The server: the host the log names, else the log's folder.
    pub server: Arc<str>,
    pub source: Arc<str>,
    /// First line of the record in its file.
    pub line: u64,
    /// The server's zone as its log shows it (minutes east of UTC): PostgreSQL reads times
    /// written without a zone in a statement in its own zone, which is the log's unless set
    /// otherwise.
    pub zone_offset_min: i32,
    pub audit: Audit,
}

/// The offset of a log timestamp's zone (`2024-10-10 01:52:14.399 -05` → -300); 0 for UTC or
/// no zone.
pub fn zone_offset(raw: &str) -> i32 {
    let Some(t) = towerwatch_sources::postgres::parse_time(raw) else {
        return 0;
    };
    let civil = raw.trim().get(..19).unwrap_or("");
    let Ok(dt) = civil.replace('T', " ").parse::<jiff::civil::DateTime>() else {
        return 0;
    };
    let Ok(as_utc) = dt.to_zoned(jiff::tz::TimeZone::UTC) else {
        return 0;
    };
    ((as_utc.timestamp().as_second() - t.as_second()) / 60) as i32
}

/// The audited statement.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Audit {
    pub statement_id: u64,
    pub substatement_id: u64,
    /// `READ`, `WRITE`, `DDL`, `ROLE`, `MISC`, …
    pub class: String,
    pub command: String,
    pub object_name: String,
    pub statement: String,
    /// Bind parameters, when logged.
    pub params: Option<Vec<String>>,
    pub rows: Option<u64>,
}

/// Whether an event comes from a database's log or audit trail.
pub fn is_database(e: &Event) -> bool {
    matches!(
        e.channel.as_deref(),
        Some(PG_CHANNEL) | Some(ORACLE_CHANNEL) | Some(MSSQL_CHANNEL)
    )
}

impl DbEvent {
    /// The audited statement an event holds; `None` for other records (connections,
    /// checkpoints) and for statements the database refused.
    pub fn from_event(e: &Event) -> Option<DbEvent> {
        if !is_database(e) {
            return None;
        }
        let s = |k: &str| e.first_str(k).unwrap_or("").to_string();
        let statement = e.first_str("statement")?.to_string();
        if e.first_str("succeeded") == Some("false") {
            return None;
        }
        let line = match e.origin.locator {
            Locator::Line(l) => l,
            Locator::Record(r) => r,
        };
        let num = |k: &str| e.first_str(k).and_then(|v| v.parse::<u64>().ok());
        let params = match e.first_str("parameter") {
            None | Some("<none>") | Some("<not logged>") | Some("") => None,
            Some(p) => Some(split_csv(p)),
        };
        let server: Arc<str> = match &e.computer {
            Some(c) => Arc::from(&**c),
            None => Arc::from(
                std::path::Path::new(&*e.origin.source)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
                    .as_str(),
            ),
        };
        Some(DbEvent {
            time: e.timestamp,
            user: s("user_name"),
            db: s("database_name"),
            app: s("application_name"),
            client: s("remote_host"),
            client_port: s("remote_port"),
            pid: e.first_str("process_id").and_then(|p| p.parse().ok()),
            session: s("session_id"),
            server,
            source: e.origin.source.clone(),
            line,
            zone_offset_min: e.first_str("log_time").map_or(0, zone_offset),
            audit: Audit {
                statement_id: num("statement_id").unwrap_or(line),
                substatement_id: num("substatement_id").unwrap_or(1),
                class: s("class"),
                command: s("command"),
                object_name: s("object_name"),
                statement,
                params,
                rows: num("rows"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn zones_of_log_timestamps() {
        assert_eq!(super::zone_offset("2024-10-10 01:52:14.399 -05"), -300);
        assert_eq!(super::zone_offset("2019-03-06 02:55:00 +05:30"), 330);
        assert_eq!(super::zone_offset("2019-03-06 18:55:00.300 UTC"), 0);
        assert_eq!(super::zone_offset("2019-07-06 12:00:00 CEST"), 120);
        assert_eq!(super::zone_offset("garbage"), 0);
    }
}
