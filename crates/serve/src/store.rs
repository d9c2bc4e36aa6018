//! The event store: SQLite in write-ahead-log mode with full syncs, so an event is on disk
//! before its batch is acknowledged; one row per event identity (source and line), so a
//! batch delivered twice changes nothing.

use std::path::Path;

use rusqlite::Connection;

use crate::db::{Arg, Database, Db, DbError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use towerwatch_event::{Event, Origin};

use towerwatch_sources::{read_input, Input, InputReport, ReadOptions};

/// The store could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store: {0}")]
    Db(#[from] DbError),
    #[error("event store: cannot write the text logs out to read them: {0}")]
    Scratch(std::io::Error),
}

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

/// One source as the ingest health shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceHealth {
    pub source: String,
    /// `JSON events` or `text log lines`.
    pub kind: &'static str,
    pub count: u64,
    /// The newest event time of JSON events (microseconds since the epoch).
    pub newest: Option<i64>,
}

/// A batch of JSON lines parsed, ready to store.
pub struct Batch {
    /// Per event: source, line, time (microseconds), text.
    rows: Vec<(String, u64, Option<i64>, String)>,
    pub(crate) events: Vec<Event>,
    pub(crate) rejected: Vec<Rejected>,
}

impl Batch {
    /// The JSON lines of `body`, from line `first_line` of `source`: events, and the lines
    /// that are none, with why.
    pub fn parse(source: &str, first_line: u64, body: &str) -> Batch {
        let mut batch = Batch {
            rows: Vec::new(),
            events: Vec::new(),
            rejected: Vec::new(),
        };
        for (i, text) in body.lines().enumerate() {
            let line = first_line + i as u64;
            if text.trim().is_empty() {
                continue;
            }
            match parse(source, line, text) {
                Ok(e) => {
                    let time = e.timestamp.map(|t| t.as_microsecond());
                    batch
                        .rows
                        .push((source.to_string(), line, time, text.to_string()));
                    batch.events.push(e);
                }
                Err(error) => batch.rejected.push(Rejected { line, error }),
            }
        }
        batch
    }
}

/// What results made from the store depend on: how many rows it holds, and how many
/// expiries took some.
pub type Version = (u64, u64);

pub struct Store {
    db: Db,
    /// The data directory (text logs are read from a scratch directory inside it).
    dir: PathBuf,
    /// Seconds between ingest marks (retention's resolution).
    mark_every: i64,
    /// Expiries that deleted something since the store opened (the results' cache key
    /// with the count).
    expiries: u64,
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
    // Text logs as they are written (W3C, PostgreSQL, access logs, Zeek): read whole, per
    // source, as `hunt` reads the file (a statement may span lines, a header sets the layout).
    "CREATE TABLE raw_lines (
        source TEXT NOT NULL,
        line INTEGER NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (source, line)
    ) WITHOUT ROWID;",
    // The live hunt's detections, in the order found (on disk, so memory stays flat).
    "CREATE TABLE live_detections (seq INTEGER PRIMARY KEY, line TEXT NOT NULL);",
    // Events in a rowid table: a WITHOUT ROWID table packs kilobyte rows badly (4 KiB on
    // disk per 1.2 KiB event); the identity stays unique.
    "CREATE TABLE events_by_rowid (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        line INTEGER NOT NULL,
        time INTEGER,
        body TEXT NOT NULL,
        UNIQUE (source, line)
    );
    INSERT INTO events_by_rowid (source, line, time, body)
        SELECT source, line, time, body FROM events ORDER BY time, source, line;
    DROP TABLE events;
    ALTER TABLE events_by_rowid RENAME TO events;
    CREATE INDEX events_by_time ON events (time, source, line);",
    // No time index: kept in step with every insert it cost more than the sort it saves
    // when the results are made (late events land all over it).
    "DROP INDEX events_by_time;",
    // For retention by ingest time: how far the events and live detections went by each
    // interval (one row per interval with ingest), and when each text log last grew (a
    // text log is kept or dropped whole: its header sets how its lines read). Live
    // detections are numbered for ever (clients page by number; they are found again at
    // each start, so the table is dropped here).
    "CREATE TABLE ingest_marks (
        at INTEGER PRIMARY KEY,
        events_upto INTEGER NOT NULL DEFAULT 0,
        live_upto INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE text_logs (source TEXT PRIMARY KEY, last INTEGER NOT NULL);
    DROP TABLE live_detections;
    CREATE TABLE live_detections (seq INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);",
    // Text logs stored before retention: as if they grew when this step ran.
    "INSERT OR IGNORE INTO text_logs (source, last)
        SELECT DISTINCT source, CAST(strftime('%s', 'now') AS INTEGER) FROM raw_lines;",
];

/// A connection to the data directory's SQLite database, its schema brought up to date.
pub fn connect_sqlite(dir: &Path) -> Result<Connection, rusqlite::Error> {
    let db = Connection::open(dir.join("events.sqlite"))?;
    // Kilobyte events pack better in 16 KiB pages (a new store only: it is fixed once the
    // first table exists); a 16 MiB page cache keeps the indexes' pages from being read
    // again on every batch.
    db.pragma_update(None, "page_size", 16384)?;
    db.pragma_update(None, "cache_size", -16384)?;
    // WAL with FULL sync: a committed batch survives a crash of the process or machine.
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: usize = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        // A step and the version it reaches, whole or not at all.
        db.execute_batch(&format!(
            "BEGIN; {m}; PRAGMA user_version = {}; COMMIT;",
            i + 1
        ))?;
    }
    Ok(db)
}

impl Store {
    /// Opens (or creates) the SQLite store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_in(&Database::sqlite(dir))
    }

    /// Opens (or creates) the store in `database`.
    pub fn open_in(database: &Database) -> Result<Store, StoreError> {
        Ok(Store {
            db: database.connect()?,
            dir: database.dir.clone(),
            mark_every: 60,
            expiries: 0,
        })
    }

    /// Stores the JSON lines of one batch of `source` whose first line is `first_line`, in
    /// one transaction: all of it is durable when this returns, or none of it.
    pub fn ingest(
        &mut self,
        source: &str,
        first_line: u64,
        body: &str,
    ) -> Result<(Ingested, Vec<Event>), StoreError> {
        let batch = Batch::parse(source, first_line, body);
        self.ingest_batch(batch)
    }

    /// Stores a batch parsed beforehand (without holding the store); returns what it did
    /// and the events that were new.
    pub fn ingest_batch(&mut self, batch: Batch) -> Result<(Ingested, Vec<Event>), StoreError> {
        let Batch {
            rows,
            events,
            rejected,
        } = batch;
        let mut out = Ingested {
            rejected,
            ..Ingested::default()
        };
        let mut fresh = Vec::new();
        for (new, event) in self.ingest_parsed(&rows)?.into_iter().zip(events) {
            if new {
                out.accepted += 1;
                fresh.push(event);
            } else {
                out.duplicates += 1;
            }
        }
        Ok((out, fresh))
    }

    /// Stores events already parsed, each `(source, line, time, text)`, in one transaction;
    /// per event, whether it was new (false: the store held it already).
    pub fn ingest_parsed(
        &mut self,
        events: &[(String, u64, Option<i64>, String)],
    ) -> Result<Vec<bool>, StoreError> {
        let every = self.mark_every;
        Ok(self.db.transaction(|db| {
            let new = match db {
                // One round trip for the batch, not one per event.
                Db::Pg { client, .. } => {
                    crate::db::blocking(|| insert_events_postgres(client, events))?
                }
                Db::Lite(_) => {
                    let mut new = Vec::with_capacity(events.len());
                    for (source, line, time, text) in events {
                        let args = [
                            Arg::Text(source),
                            Arg::from(*line as i64),
                            Arg::Int(*time),
                            Arg::Text(text),
                        ];
                        new.push(
                            db.execute(
                                "INSERT INTO events (source, line, time, body) VALUES (?1, ?2, ?3, ?4)
                                 ON CONFLICT DO NOTHING",
                                &args,
                            )? == 1,
                        );
                    }
                    new
                }
            };
            // Only a batch that stored something marks (so a mark's newest row is its own).
            if new.contains(&true) {
                mark(db, every, "events_upto", "SELECT max(id) FROM events")?;
            }
            Ok(new)
        })?)
    }

    /// Appends detections the live hunt found.
    pub fn add_live(&mut self, lines: &[String]) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let every = self.mark_every;
        Ok(self.db.transaction(|db| {
            for l in lines {
                db.execute(
                    "INSERT INTO live_detections (line) VALUES (?1)",
                    &[Arg::Text(l)],
                )?;
            }
            mark(
                db,
                every,
                "live_upto",
                "SELECT max(seq) FROM live_detections",
            )
        })?)
    }

    /// Forgets the live detections (a starting server finds them again from the events).
    pub fn clear_live(&mut self) -> Result<(), StoreError> {
        // Numbered from 1 again: they are found again in the same order.
        // The marks' numbers of live detections are forgotten with them.
        let sql = if self.db.is_postgres() {
            "TRUNCATE live_detections RESTART IDENTITY;
             UPDATE ingest_marks SET live_upto = 0;"
        } else {
            "DELETE FROM live_detections;
             DELETE FROM sqlite_sequence WHERE name = 'live_detections';
             UPDATE ingest_marks SET live_upto = 0;"
        };
        Ok(self.db.transaction(|db| db.batch(sql))?)
    }

    /// The live detections after the `from`-th found (0: from the first), and where the
    /// next call starts (the last one's number, or the last number there is when `from` is
    /// past it; positions hold when old ones expire).
    pub fn live_since(&mut self, from: u64) -> Result<(Vec<String>, u64), StoreError> {
        let mut next = from;
        let lines = self.db.rows(
            "SELECT line, seq FROM live_detections WHERE seq > ?1 ORDER BY seq",
            &[Arg::from(from as i64)],
            |r| {
                next = r.int(1)?.unwrap_or(0) as u64;
                Ok(r.text(0)?.unwrap_or_default())
            },
        )?;
        if lines.is_empty() {
            // Past the end: the end (a client that asked too far learns where it is).
            let last = self
                .db
                .number("SELECT coalesce(max(seq), 0) FROM live_detections", &[])?;
            next = next.min(last as u64);
        }
        Ok((lines, next))
    }

    /// Every stored JSON event in event time (the live hunt's start after a restart; text
    /// logs are read whole when the results are made).
    pub fn replay_events(&mut self, mut each: impl FnMut(Event)) -> Result<(), StoreError> {
        self.db.each(
            "SELECT source, line, body FROM events ORDER BY time NULLS FIRST, source, line",
            &[],
            |r| {
                if let Some(e) = stored_event(r)? {
                    each(e);
                }
                Ok(())
            },
        )?;
        Ok(())
    }

    /// Stores the lines of one batch of a text log `source` whose first line is `first_line`,
    /// in one transaction. They are read as events when the results are made, with the rest
    /// of their source; no line is refused here (a line alone may be half a record).
    pub fn ingest_raw(
        &mut self,
        source: &str,
        first_line: u64,
        body: &str,
    ) -> Result<Ingested, StoreError> {
        Ok(self.db.transaction(|db| {
            let mut out = Ingested::default();
            let postgres = db.is_postgres();
            for (i, text) in body.lines().enumerate() {
                let line = (first_line + i as u64) as i64;
                // PostgreSQL's text holds no NUL (SQLite's does): shown as U+FFFD there.
                let cleaned;
                let text = if postgres && text.contains('\0') {
                    cleaned = text.replace('\0', "\u{fffd}");
                    cleaned.as_str()
                } else {
                    text
                };
                let new = db.execute(
                    "INSERT INTO raw_lines (source, line, text) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                    &[Arg::Text(source), Arg::from(line), Arg::Text(text)],
                )?;
                if new == 1 {
                    out.accepted += 1;
                } else {
                    out.duplicates += 1;
                }
            }
            db.execute(
                "INSERT INTO text_logs (source, last) VALUES (?1, ?2)
                 ON CONFLICT (source) DO UPDATE SET last = excluded.last",
                &[
                    Arg::Text(source),
                    Arg::from(jiff::Timestamp::now().as_second()),
                ],
            )?;
            Ok(out)
        })?)
    }

    /// Each text log's lines as one text, by source; a line not (yet) received is an empty
    /// line, so every line keeps its number.
    pub fn raw_sources(&mut self, mut each: impl FnMut(&str, &str)) -> Result<(), StoreError> {
        let (mut current, mut text, mut next) = (None::<String>, String::new(), 1i64);
        self.db.each(
            "SELECT source, line, text FROM raw_lines ORDER BY source, line",
            &[],
            |r| {
                let source = r.text(0)?.unwrap_or_default();
                let line = r.int(1)?.unwrap_or(0);
                if current.as_deref() != Some(source.as_str()) {
                    if let Some(done) = current.take() {
                        each(&done, &text);
                    }
                    (current, next) = (Some(source), 1);
                    text.clear();
                }
                while next < line {
                    text.push('\n');
                    next += 1;
                }
                text.push_str(&r.text(2)?.unwrap_or_default());
                text.push('\n');
                next = line + 1;
                Ok(())
            },
        )?;
        if let Some(done) = current {
            each(&done, &text);
        }
        Ok(())
    }

    /// Per source, what came in: events or lines, and the newest event time (microseconds).
    pub fn sources(&mut self) -> Result<Vec<SourceHealth>, StoreError> {
        Ok(self.db.rows(
            "SELECT source, 'events', count(*), max(time) FROM events GROUP BY source
             UNION ALL SELECT source, 'lines', count(*), NULL FROM raw_lines GROUP BY source
             ORDER BY 1",
            &[],
            |r| {
                Ok(SourceHealth {
                    source: r.text(0)?.unwrap_or_default(),
                    kind: if r.text(1)?.as_deref() == Some("events") {
                        "JSON events"
                    } else {
                        "text log lines"
                    },
                    count: r.int(2)?.unwrap_or(0) as u64,
                    newest: r.int(3)?,
                })
            },
        )?)
    }

    /// The first answer `find` gives for the text of a stored event or text log line.
    pub fn find_text<T>(
        &mut self,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        let mut found = None;
        for sql in ["SELECT body FROM events", "SELECT text FROM raw_lines"] {
            self.db.each_while(sql, &[], |r| {
                found = find(r.text(0)?.as_deref().unwrap_or(""));
                Ok(found.is_none())
            })?;
            if found.is_some() {
                break;
            }
        }
        Ok(found)
    }

    /// Events stored.
    pub fn len(&mut self) -> Result<u64, StoreError> {
        Ok(self.db.number(
            "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM raw_lines)",
            &[],
        )? as u64)
    }

    /// What the stored results depend on: the count, and how often events expired.
    pub fn version(&mut self) -> Result<Version, StoreError> {
        Ok((self.len()?, self.expiries))
    }

    /// Sets the resolution of retention (seconds between ingest marks).
    pub fn set_mark_every(&mut self, seconds: i64) {
        self.mark_every = seconds.max(1);
    }

    /// Deletes up to `chunk` events (and live detections) that came in before `cutoff`
    /// (unix seconds, to the marks' resolution), and the text logs that last grew before
    /// it; returns how many rows went (0: nothing older is left). Called again until 0, so
    /// the store is not held for long.
    pub fn expire(&mut self, cutoff: i64, chunk: u64) -> Result<u64, StoreError> {
        // A mark covers what came in during its interval: only marks whose whole interval
        // is before the cutoff.
        let before = cutoff - self.mark_every;
        let gone = self.db.transaction(|db| {
            let upto = db.first(
                "SELECT coalesce(max(events_upto), 0), coalesce(max(live_upto), 0)
                 FROM ingest_marks WHERE at < ?1",
                &[Arg::from(before)],
                |r| Ok((r.int(0)?.unwrap_or(0), r.int(1)?.unwrap_or(0))),
            )?;
            let (events_upto, live_upto) = upto.unwrap_or((0, 0));
            let chunk = Arg::from(chunk as i64);
            let mut gone = db.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?1 LIMIT ?2)",
                &[Arg::from(events_upto), chunk],
            )?;
            gone += db.execute(
                "DELETE FROM live_detections
                 WHERE seq IN (SELECT seq FROM live_detections WHERE seq <= ?1 LIMIT ?2)",
                &[Arg::from(live_upto), chunk],
            )?;
            // Once every row the old marks cover is gone, the marks go in the same
            // transaction: an emptied SQLite table numbers its rows from 1 again, which an
            // old mark must never reach.
            let left = db.number(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM events WHERE id <= ?1 LIMIT 1) e)
                      + (SELECT count(*) FROM (SELECT 1 FROM live_detections WHERE seq <= ?2 LIMIT 1) l)",
                &[Arg::from(events_upto), Arg::from(live_upto)],
            )?;
            if left == 0 {
                db.execute(
                    "DELETE FROM ingest_marks WHERE at < ?1",
                    &[Arg::from(before)],
                )?;
            }
            if gone == 0 {
                gone += db.execute(
                    "DELETE FROM raw_lines
                     WHERE source IN (SELECT source FROM text_logs WHERE last < ?1)",
                    &[Arg::from(cutoff)],
                )?;
                db.execute(
                    "DELETE FROM text_logs WHERE last < ?1",
                    &[Arg::from(cutoff)],
                )?;
            }
            Ok(gone)
        })?;
        if gone > 0 {
            self.expiries += 1;
        }
        Ok(gone)
    }

    pub fn is_empty(&mut self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Every stored event in event time (those without a time first), then source and
    /// line: the JSON events as stored, merged with the text logs read whole by `read` (as
    /// `hunt` reads their files). What the text logs held that is no event is returned, per
    /// source.
    pub fn replay(
        &mut self,
        read: &ReadOptions,
        mut each: impl FnMut(Event),
    ) -> Result<Vec<InputReport>, StoreError> {
        // Written out as files, one directory per source directory, so a log series is read
        // as `hunt` reads its directory (PostgreSQL sessions open across its files); the
        // events then carry their source's name again.
        let scratch = tempfile::tempdir_in(&self.dir).map_err(StoreError::Scratch)?;
        let mut names: HashMap<Arc<str>, Arc<str>> = HashMap::new();
        let mut dirs: HashMap<String, PathBuf> = HashMap::new();
        let mut written = Ok(());
        self.raw_sources(|source, text| {
            let (dir, file) = source.rsplit_once(['/', '\\']).unwrap_or(("", source));
            let n = dirs.len();
            let dir = dirs
                .entry(dir.to_string())
                .or_insert_with(|| scratch.path().join(n.to_string()));
            let path = dir.join(if file.is_empty() { "log" } else { file });
            let wrote = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, text));
            if written.is_ok() {
                written = wrote;
            }
            names.insert(path.display().to_string().into(), source.into());
        })?;
        written.map_err(StoreError::Scratch)?;
        let read = ReadOptions {
            pg_sessions: Default::default(),
            ..read.clone()
        };
        let mut texts: Vec<Event> = Vec::new();
        let mut reports = Vec::new();
        for (path, source) in &names {
            let mut sink = |r: Result<Event, towerwatch_sources::SourceError>| {
                if let Ok(mut e) = r {
                    e.origin.source = source.clone();
                    texts.push(e);
                }
            };
            let mut report = read_input(&Input::File(PathBuf::from(&**path)), &read, &mut sink);
            report.source = source.clone();
            reports.push(report);
        }
        reports.sort_by(|a, b| a.source.cmp(&b.source));
        texts.sort_by(|a, b| {
            (a.timestamp, &*a.origin.source, a.origin.locator).cmp(&(
                b.timestamp,
                &*b.origin.source,
                b.origin.locator,
            ))
        });
        let mut texts = texts.into_iter().peekable();
        self.db.each(
            "SELECT source, line, body, time FROM events ORDER BY time NULLS FIRST, source, line",
            &[],
            |r| {
                let time = r.int(3)?;
                while let Some(t) =
                    texts.next_if(|e| e.timestamp.map(|t| t.as_microsecond()) <= time)
                {
                    each(t);
                }
                if let Some(e) = stored_event(r)? {
                    each(e);
                }
                Ok(())
            },
        )?;
        texts.for_each(each);
        Ok(reports)
    }
}

/// One JSON line of `source` as an event, as `hunt` reads the same line from a file.
/// Notes in `ingest_marks` how far `column` went by now (`upto`: a query giving it).
fn mark(db: &mut Db, every: i64, column: &str, upto: &str) -> Result<(), DbError> {
    let at = jiff::Timestamp::now().as_second() / every * every;
    // The larger of two values: a function of two arguments in PostgreSQL, max in SQLite.
    let larger = if db.is_postgres() { "greatest" } else { "max" };
    db.execute(
        &format!(
            "INSERT INTO ingest_marks (at, {column}) VALUES (?1, coalesce(({upto}), 0))
             ON CONFLICT (at) DO UPDATE
             SET {column} = {larger}(ingest_marks.{column}, excluded.{column})"
        ),
        &[Arg::from(at)],
    )?;
    Ok(())
}

/// A batch of events in one statement: PostgreSQL takes them as arrays; the identities
/// that came back are the new ones.
fn insert_events_postgres(
    client: &mut postgres::Client,
    events: &[(String, u64, Option<i64>, String)],
) -> Result<Vec<bool>, DbError> {
    let sources: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    let lines: Vec<i64> = events.iter().map(|e| e.1 as i64).collect();
    let times: Vec<Option<i64>> = events.iter().map(|e| e.2).collect();
    let bodies: Vec<&str> = events.iter().map(|e| e.3.as_str()).collect();
    let rows = client.query(
        "INSERT INTO events (source, line, time, body)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[])
         ON CONFLICT DO NOTHING RETURNING source, line",
        &[&sources, &lines, &times, &bodies],
    )?;
    let new: std::collections::HashSet<(String, i64)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    // A batch naming one identity twice stores it once: the first is the new one.
    let mut seen = std::collections::HashSet::new();
    Ok(events
        .iter()
        .map(|(s, l, _, _)| {
            let key = (s.clone(), *l as i64);
            new.contains(&key) && seen.insert(key)
        })
        .collect())
}

/// The event a stored row (source, line, body, …) holds; stored lines parsed when they
/// came in, so they parse the same way now.
fn stored_event(r: &crate::db::Row<'_>) -> Result<Option<Event>, DbError> {
    let (source, line, body) = (
        r.text(0)?.unwrap_or_default(),
        r.int(1)?.unwrap_or(0),
        r.text(2)?.unwrap_or_default(),
    );
    Ok(parse(&source, line as u64, &body).ok())
}

fn parse(source: &str, line: u64, text: &str) -> Result<Event, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    towerwatch_sources::json::event_from_json(json, Origin::line(source, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(source: &str, n: u64) -> String {
        (0..n)
            .map(|i| format!("{{\"EventID\": {i}, \"Channel\": \"Security\"}}\n"))
            .collect::<String>()
            + &format!("{{\"EventID\": 0, \"Channel\": \"{source}\"}}\n")
    }

    #[test]
    fn expiry_takes_what_is_older_and_never_what_came_after_an_emptied_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.set_mark_every(1);
        let now = jiff::Timestamp::now().as_second();
        store.ingest("a", 1, &events("a", 30)).unwrap();
        store
            .ingest_raw("w.log", 1, "#Fields: date time\n")
            .unwrap();
        store.add_live(&["{}".to_string()]).unwrap();
        // Nothing is older than an hour ago.
        assert_eq!(store.expire(now - 3600, 10).unwrap(), 0);
        assert_eq!(store.len().unwrap(), 32);
        // Everything is older than a minute from now: gone in chunks, text log last.
        let mut chunks = 0;
        while store.expire(now + 60, 10).unwrap() > 0 {
            chunks += 1;
        }
        assert!(chunks >= 3, "{chunks} chunks of at most 10");
        assert_eq!(store.len().unwrap(), 0);
        assert_eq!(store.live_since(0).unwrap().0.len(), 0);
        // The emptied table numbers rows from 1 again; no old mark reaches them.
        store.ingest("b", 1, &events("b", 5)).unwrap();
        store.add_live(&["{\"b\": 1}".to_string()]).unwrap();
        assert_eq!(store.expire(now - 3600, 10).unwrap(), 0);
        assert_eq!(store.len().unwrap(), 6);
        // Live detections keep their numbers: the next is after the expired one.
        assert_eq!(store.live_since(1).unwrap(), (vec!["{\"b\": 1}".into()], 2));
        assert_eq!(store.live_since(99).unwrap(), (vec![], 2));
        // Each expiry that took something changed what the results depend on.
        assert_eq!(store.version().unwrap(), (6, chunks));
    }
}
