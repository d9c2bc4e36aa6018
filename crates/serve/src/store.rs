//! The event store: SQLite in write-ahead-log mode with full syncs, so an event is on disk
//! before its batch is acknowledged; one row per event identity (source and line), so a
//! batch delivered twice changes nothing.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use towerwatch_event::{Event, Origin};

/// The store could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
#[error("event store: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

/// One line of a batch that is not an event, with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    /// The line in the source (the batch's first line plus its position).
    pub line: u64,
    pub error: String,
}

/// What a batch did to the store.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ingested {
    /// New events, now durable.
    pub accepted: u64,
    /// Events the store already held (a redelivery).
    pub duplicates: u64,
    pub rejected: Vec<Rejected>,
}

pub struct Store {
    db: Connection,
}

/// Versioned schema, applied in order; `user_version` says how far a store is.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE events (
        source TEXT NOT NULL,
        line INTEGER NOT NULL,
        time INTEGER,
        body TEXT NOT NULL,
        PRIMARY KEY (source, line)
    ) WITHOUT ROWID;
    CREATE INDEX events_by_time ON events (time, source, line);",
    // Tokens (argon2 hashes only) and the audit log, which refuses change at this level too.
    "CREATE TABLE tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE audit (
        time TEXT NOT NULL,
        token INTEGER,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
];

/// A connection to the data directory's database, its schema brought up to date.
pub fn connect(dir: &Path) -> Result<Connection, StoreError> {
    let db = Connection::open(dir.join("events.sqlite"))?;
    // WAL with FULL sync: a committed batch survives a crash of the process or machine.
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: usize = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        db.execute_batch(m)?;
        db.pragma_update(None, "user_version", i + 1)?;
    }
    Ok(db)
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store { db: connect(dir)? })
    }

    /// Stores the JSON lines of one batch of `source` whose first line is `first_line`, in
    /// one transaction: all of it is durable when this returns, or none of it.
    pub fn ingest(
        &mut self,
        source: &str,
        first_line: u64,
        body: &str,
    ) -> Result<Ingested, StoreError> {
        let mut out = Ingested::default();
        let mut events = Vec::new();
        for (i, text) in body.lines().enumerate() {
            let line = first_line + i as u64;
            if text.trim().is_empty() {
                continue;
            }
            match parse(source, line, text) {
                Ok(e) => {
                    let time = e.timestamp.map(|t| t.as_microsecond());
                    events.push((source.to_string(), line, time, text.to_string()));
                }
                Err(error) => out.rejected.push(Rejected { line, error }),
            }
        }
        for new in self.ingest_parsed(&events)? {
            if new {
                out.accepted += 1;
            } else {
                out.duplicates += 1;
            }
        }
        Ok(out)
    }

    /// Stores events already parsed, each `(source, line, time, text)`, in one transaction;
    /// per event, whether it was new (false: the store held it already).
    pub fn ingest_parsed(
        &mut self,
        events: &[(String, u64, Option<i64>, String)],
    ) -> Result<Vec<bool>, StoreError> {
        let tx = self.db.transaction()?;
        let mut new = Vec::with_capacity(events.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (source, line, time, body) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (source, line, time, text) in events {
                new.push(insert.execute(params![source, *line as i64, time, text])? == 1);
            }
        }
        tx.commit()?;
        Ok(new)
    }

    /// Events stored.
    pub fn len(&self) -> Result<u64, StoreError> {
        Ok(self
            .db
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))?
            as u64)
    }

    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_row("SELECT 1 FROM events LIMIT 1", [], |r| r.get::<_, i64>(0))
            .optional()?
            .is_none())
    }

    /// Every stored event in event time (those without a time first), then source and line.
    pub fn replay(&self, mut each: impl FnMut(Event)) -> Result<(), StoreError> {
        let mut q = self
            .db
            .prepare("SELECT source, line, body FROM events ORDER BY time, source, line")?;
        let mut rows = q.query([])?;
        while let Some(row) = rows.next()? {
            let source: String = row.get(0)?;
            let line: i64 = row.get(1)?;
            let body: String = row.get(2)?;
            // Stored lines parsed when they came in; they parse the same way now.
            if let Ok(e) = parse(&source, line as u64, &body) {
                each(e);
            }
        }
        Ok(())
    }
}

/// One JSON line of `source` as an event, as `hunt` reads the same line from a file.
fn parse(source: &str, line: u64, text: &str) -> Result<Event, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    towerwatch_sources::json::event_from_json(json, Origin::line(source, line))
}
