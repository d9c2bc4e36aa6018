//! Where the service keeps what it holds: SQLite in the data directory (WAL, full sync; the
//! default, nothing else to run) or PostgreSQL (`--database postgres://…`), each with its
//! versioned migrations. Statements are written once with `?N` placeholders and standard
//! SQL both take (`ON CONFLICT`, `RETURNING`); the few that differ say so at their use.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The database could not be reached, changed or read.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] postgres::Error),
    #[error("{0}")]
    Value(String),
}

/// Which database: SQLite in `dir` unless a PostgreSQL URL is given. The directory is
/// used either way (scratch files).
#[derive(Debug, Clone)]
pub struct Database {
    pub dir: PathBuf,
    pub postgres: Option<String>,
}

impl Database {
    /// SQLite in `dir`.
    pub fn sqlite(dir: &Path) -> Database {
        Database {
            dir: dir.to_path_buf(),
            postgres: None,
        }
    }

    /// A connection, its schema brought up to date.
    pub fn connect(&self) -> Result<Db, DbError> {
        match &self.postgres {
            None => {
                std::fs::create_dir_all(&self.dir)
                    .map_err(|e| DbError::Value(format!("{}: {e}", self.dir.display())))?;
                Ok(Db::Lite(crate::store::connect_sqlite(&self.dir)?))
            }
            Some(url) => blocking(|| {
                // Over TLS when the URL asks (`sslmode=verify-full&sslrootcert=…`).
                let (config, tls) = towerwatch_fleet::access::postgres(url)
                    .map_err(|e| DbError::Value(e.to_string()))?;
                let mut client = postgres::Config::from(config).connect(tls)?;
                migrate_postgres(&mut client)?;
                Ok(Db::Pg {
                    client: PgClient(Some(Box::new(client))),
                    statements: HashMap::new(),
                })
            }),
        }
    }
}

/// A parameter.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Text(&'a str),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::Text(v) => v.to_sql(),
        }
    }
}

/// One row read, by column position.
pub enum Row<'r> {
    Lite(&'r rusqlite::Row<'r>),
    Pg(&'r postgres::Row),
}

impl Row<'_> {
    pub fn int(&self, i: usize) -> Result<Option<i64>, DbError> {
        Ok(match self {
            Row::Lite(r) => r.get(i)?,
            Row::Pg(r) => r.try_get(i)?,
        })
    }

    pub fn text(&self, i: usize) -> Result<Option<String>, DbError> {
        Ok(match self {
            Row::Lite(r) => r.get(i)?,
            Row::Pg(r) => r.try_get(i)?,
        })
    }
}

/// A connection to either database.
pub enum Db {
    Lite(rusqlite::Connection),
    Pg {
        client: PgClient,
        /// Prepared once per connection.
        statements: HashMap<String, postgres::Statement>,
    },
}

/// A PostgreSQL connection that closes outside the service's runtime (closing drives the
/// client's own runtime, which may not run inside another).
pub struct PgClient(Option<Box<postgres::Client>>);

impl std::ops::Deref for PgClient {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("open until dropped")
    }
}

impl std::ops::DerefMut for PgClient {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("open until dropped")
    }
}

impl Drop for PgClient {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            blocking(move || drop(client));
        }
    }
}

impl Db {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Pg { .. })
    }

    /// Runs a statement; the rows it changed.
    pub fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            Db::Lite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))? as u64),
            Db::Pg { client, statements } => blocking(|| {
                let st = prepared(client, statements, sql)?;
                Ok(client.execute(&st, &pg_args(args))?)
            }),
        }
    }

    /// Runs statements without parameters (schema, several at once).
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Lite(c) => Ok(c.execute_batch(sql)?),
            Db::Pg { client, .. } => blocking(|| Ok(client.batch_execute(sql)?)),
        }
    }

    /// Each row of a query, as it comes (a large table is not held in memory).
    pub fn each(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        self.each_while(sql, args, |r| f(r).map(|_| true))
    }

    /// As [`each`](Self::each), until `f` says `false`.
    pub fn each_while(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<bool, DbError>,
    ) -> Result<(), DbError> {
        match self {
            Db::Lite(c) => {
                let mut q = c.prepare_cached(sql)?;
                let mut rows = q.query(rusqlite::params_from_iter(args))?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Lite(r))? {
                        break;
                    }
                }
                Ok(())
            }
            Db::Pg { client, statements } => blocking(|| {
                use postgres::fallible_iterator::FallibleIterator;
                let st = prepared(client, statements, sql)?;
                let args = pg_args(args);
                let mut rows = client.query_raw(&st, args.iter().copied())?;
                while let Some(r) = rows.next()? {
                    if !f(&Row::Pg(&r))? {
                        break;
                    }
                }
                Ok(())
            }),
        }
    }

    /// The rows of a query, each made into a `T`.
    pub fn rows<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.each(sql, args, |r| {
            out.push(f(r)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row of a query, if any (the rest are not read).
    pub fn first<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut first = None;
        self.each_while(sql, args, |r| {
            first = Some(f(r)?);
            Ok(false)
        })?;
        Ok(first)
    }

    /// A whole number the query gives (0 for none or NULL).
    pub fn number(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<i64, DbError> {
        Ok(self.first(sql, args, |r| r.int(0))?.flatten().unwrap_or(0))
    }

    /// `f` in one transaction: committed if it returns `Ok`, rolled back otherwise.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        // SQLite: the write lock from the start (a read that turns into a write may find
        // another writer in between, and fail at once instead of waiting).
        self.batch(if self.is_postgres() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        })?;
        match f(self) {
            Ok(v) => {
                self.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// Runs `f`, which waits on PostgreSQL: the `postgres` client drives a runtime of its own,
/// which may not start inside the service's, so a worker thread of the service steps
/// aside first (`block_in_place`); elsewhere `f` just runs.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn prepared(
    client: &mut postgres::Client,
    statements: &mut HashMap<String, postgres::Statement>,
    sql: &str,
) -> Result<postgres::Statement, DbError> {
    if let Some(st) = statements.get(sql) {
        return Ok(st.clone());
    }
    let st = client.prepare(&dollar_placeholders(sql))?;
    statements.insert(sql.to_string(), st.clone());
    Ok(st)
}

fn pg_args<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| match a {
            Arg::Int(v) => v as &(dyn postgres::types::ToSql + Sync),
            Arg::Text(v) => v as &(dyn postgres::types::ToSql + Sync),
        })
        .collect()
}

/// `?1` → `$1`, outside string literals.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// PostgreSQL's schema, in versions (recorded in `towerwatch_schema`); the same tables as
/// SQLite's, in PostgreSQL's words.
const PG_MIGRATIONS: &[&str] = &[
    // Sources sort byte-wise, as SQLite sorts them (ties in time are read in that order).
    "CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        source TEXT COLLATE \"C\" NOT NULL,
        line BIGINT NOT NULL,
        time BIGINT,
        body TEXT NOT NULL,
        UNIQUE (source, line)
    );
    CREATE TABLE tokens (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        hash TEXT NOT NULL,
        created TEXT NOT NULL
    );
    CREATE TABLE audit (
        id BIGSERIAL PRIMARY KEY,
        time TEXT NOT NULL,
        token BIGINT,
        who TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE FUNCTION towerwatch_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
    CREATE TRIGGER audit_is_append_only BEFORE UPDATE OR DELETE ON audit
        FOR EACH ROW EXECUTE FUNCTION towerwatch_audit_is_append_only();
    CREATE TRIGGER audit_is_never_emptied BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION towerwatch_audit_is_append_only();
    CREATE TABLE raw_lines (
        source TEXT COLLATE \"C\" NOT NULL,
        line BIGINT NOT NULL,
        text TEXT NOT NULL,
        PRIMARY KEY (source, line)
    );
    CREATE TABLE live_detections (seq BIGSERIAL PRIMARY KEY, line TEXT NOT NULL);
    CREATE TABLE ingest_marks (
        at BIGINT PRIMARY KEY,
        events_upto BIGINT NOT NULL DEFAULT 0,
        live_upto BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE text_logs (source TEXT PRIMARY KEY, last BIGINT NOT NULL);",
];

fn migrate_postgres(client: &mut postgres::Client) -> Result<(), DbError> {
    // One migrator at a time (a second server starting against the same database waits).
    client.batch_execute(
        "SELECT pg_advisory_lock(7307716101);
         CREATE TABLE IF NOT EXISTS towerwatch_schema (version INTEGER NOT NULL);",
    )?;
    let done: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0)::BIGINT FROM towerwatch_schema",
            &[],
        )?
        .get(0);
    for (i, m) in PG_MIGRATIONS.iter().enumerate().skip(done as usize) {
        let mut tx = client.transaction()?;
        tx.batch_execute(m)?;
        tx.execute(
            "INSERT INTO towerwatch_schema (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )?;
        tx.commit()?;
    }
    client.batch_execute("SELECT pg_advisory_unlock(7307716101);")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_postgres_ones_outside_literals() {
        assert_eq!(
            dollar_placeholders("SELECT '?', x FROM t WHERE a = ?1 AND b = ?2"),
            "SELECT '?', x FROM t WHERE a = $1 AND b = $2"
        );
    }
}
