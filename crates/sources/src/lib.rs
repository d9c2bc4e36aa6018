//! Evidence readers for towerwatch.
//!
//! [`discover`] expands the paths a user gives (files, directories, `-` for stdin) into
//! inputs; [`read_input`] recognises each input's format by its content (EVTX magic, gzip
//! and zstd magic, JSON, W3C `#Fields:` directives, Zeek `#fields`, NCSA access logs,
//! PostgreSQL logs in any `log_line_prefix`, csvlog and jsonlog, Oracle and SQL Server audit
//! exports) and streams its records as [`Event`]s to a callback, in bounded memory.
//! Bad records never stop the rest: each one is reported as a [`SourceError`] naming the
//! file and the record, line or byte offset, and counted in the input's [`InputReport`].
//!
//! ```no_run
//! use towerwatch_sources::{discover, read_input, ReadOptions};
//!
//! let (inputs, _problems) = discover(&["evidence/".into()]);
//! for input in &inputs {
//!     let report = read_input(input, &ReadOptions::default(), &mut |item| match item {
//!         Ok(event) => println!("{:?} {:?}", event.channel, event.event_id),
//!         Err(err) => eprintln!("{err}"),
//!     });
//!     println!("{}: {} events, {} rejected", report.source, report.events, report.rejected);
//! }
//! ```

pub mod access_log;
pub mod dbexport;
mod evtx_source;
pub mod json;
mod jsonl;
pub mod postgres;
pub mod w3c;
pub mod zeek;

pub use access_log::AccessFormat;

/// A layout (PostgreSQL `log_line_prefix`, an Apache or nginx log format) that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("the layout ends with a lone {0}")]
    LoneEscape(&'static str),
    #[error("the layout's escape {0} is not known")]
    UnknownEscape(String),
    #[error("the log format has no time (%t or $time_local)")]
    NoTime,
    #[error("the layout has an unclosed %{{")]
    Unclosed,
}
pub use postgres::LinePrefix;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use towerwatch_event::{Event, Timestamp};

/// The formats the readers know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Evtx,
    /// One JSON object per line.
    JsonLines,
    /// Pretty-printed or concatenated JSON documents, or a JSON array of events.
    JsonDocuments,
    /// W3C extended log (IIS access logs).
    W3c,
    /// Zeek TSV logs (`conn.log`, …).
    Zeek,
    /// NCSA common/combined access logs (Apache, nginx, Tomcat, JBoss).
    AccessLog,
    /// PostgreSQL server logs: stderr, csvlog, jsonlog.
    PostgresStderr,
    PostgresCsv,
    PostgresJson,
    /// Oracle `UNIFIED_AUDIT_TRAIL` exported as CSV.
    OracleAudit,
    /// SQL Server `fn_get_audit_file` exported as CSV.
    MssqlAudit,
    Unknown,
}

impl Format {
    /// Whether the format is a database's log or audit trail.
    pub fn is_database(self) -> bool {
        matches!(
            self,
            Format::PostgresStderr
                | Format::PostgresCsv
                | Format::PostgresJson
                | Format::OracleAudit
                | Format::MssqlAudit
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Evtx => "evtx",
            Format::JsonLines => "jsonl",
            Format::JsonDocuments => "json",
            Format::W3c => "w3c",
            Format::Zeek => "zeek",
            Format::AccessLog => "access-log",
            Format::PostgresStderr => "postgresql-stderr",
            Format::PostgresCsv => "postgresql-csvlog",
            Format::PostgresJson => "postgresql-jsonlog",
            Format::OracleAudit => "oracle-unified-audit-csv",
            Format::MssqlAudit => "mssql-audit-csv",
            Format::Unknown => "unknown",
        })
    }
}

/// Where in a source a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The whole input (cannot be opened, unknown format, …).
    Input,
    /// An EVTX record by its record id.
    Record(u64),
    /// An EVTX chunk by its number.
    Chunk(u64),
    /// A 1-based line.
    Line(u64),
    /// A byte offset into the (decompressed) stream.
    Offset(u64),
}

/// A record (or a whole input) that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{input}{}: {message}", position_suffix(.position))]
pub struct SourceError {
    /// The input (file path or `-`).
    pub input: Arc<str>,
    pub position: Position,
    pub message: String,
}

fn position_suffix(p: &Position) -> String {
    match p {
        Position::Input => String::new(),
        Position::Record(r) => format!(" record {r}"),
        Position::Chunk(c) => format!(" chunk {c}"),
        Position::Line(l) => format!(":{l}"),
        Position::Offset(o) => format!(" offset {o}"),
    }
}

/// One thing to read: a file or standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    /// The name used in reports and provenance (`-` for stdin).
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "-".to_string(),
        }
    }
}

/// Which file `meta` describes: its inode and device (zeros where the platform has none), so
/// that a shipper tells a file that grew from another one put at the same path.
#[cfg(unix)]
pub fn inode_and_device(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.ino(), meta.dev())
}

/// Which file `meta` describes: unknown on this platform.
#[cfg(not(unix))]
pub fn inode_and_device(_: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// Expands paths into inputs: directories recursively (sorted, so runs are repeatable),
/// `-` as stdin. Paths that do not exist are returned as problems.
pub fn discover(paths: &[PathBuf]) -> (Vec<Input>, Vec<SourceError>) {
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        if path.is_dir() {
            let walk = walkdir::WalkDir::new(path)
                .sort_by_file_name()
                .follow_links(true);
            for entry in walk {
                match entry {
                    Ok(e) if e.file_type().is_file() => inputs.push(Input::File(e.into_path())),
                    Ok(_) => {}
                    Err(err) => problems.push(SourceError {
                        input: err.path().unwrap_or(path).display().to_string().into(),
                        position: Position::Input,
                        message: err.to_string(),
                    }),
                }
            }
        } else if path.exists() {
            inputs.push(Input::File(path.clone()));
        } else {
            problems.push(SourceError {
                input: path.display().to_string().into(),
                position: Position::Input,
                message: "no such file or directory".into(),
            });
        }
    }
    (inputs, problems)
}

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Stop an input at its first bad record instead of skipping it.
    pub strict: bool,
    /// Threads the EVTX parser may use inside one file (0: all cores).
    pub evtx_threads: usize,
    /// The `log_line_prefix` of PostgreSQL stderr logs; found from each log's lines when
    /// not given.
    pub log_line_prefix: Option<LinePrefix>,
    /// The layout of access logs; common/combined (with trailing extras) when not given.
    pub access_log_format: Option<AccessFormat>,
    /// PostgreSQL sessions open across a log series' files, learnt once per directory and
    /// shared by every reader of the run (clones share it).
    pub pg_sessions: std::sync::Arc<postgres::SessionCarry>,
    /// Set (by a signal handler) to stop reading: each input ends at its next record, its
    /// report saying it was interrupted.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            strict: false,
            evtx_threads: 1,
            log_line_prefix: None,
            access_log_format: None,
            pg_sessions: Default::default(),
            cancel: None,
        }
    }
}

/// What reading one input gave.
#[derive(Debug, Clone)]
pub struct InputReport {
    pub source: Arc<str>,
    pub format: Format,
    pub compressed: bool,
    pub bytes: u64,
    /// Events handed to the callback.
    pub events: u64,
    /// Records that could not be read (each reported to the callback as an error).
    pub rejected: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Set when the input as a whole could not be read, or reading stopped early.
    pub failure: Option<String>,
    /// How the format was read, when that was a choice (the `log_line_prefix` used).
    pub detail: Option<String>,
}

impl InputReport {
    /// An empty report for an input (nothing read yet).
    pub fn new(source: Arc<str>) -> Self {
        InputReport {
            source,
            format: Format::Unknown,
            compressed: false,
            bytes: 0,
            events: 0,
            rejected: 0,
            first: None,
            last: None,
            failure: None,
            detail: None,
        }
    }
}

/// Receives every event read and every record rejected.
pub type Sink<'a> = dyn FnMut(Result<Event, SourceError>) + 'a;

/// Counts what passes to the sink and keeps the time span.
pub(crate) struct Tally<'a, 'b> {
    pub report: InputReport,
    sink: &'a mut Sink<'b>,
    strict: bool,
    cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What an input's report says when reading stopped because the run was interrupted.
pub const INTERRUPTED: &str = "interrupted before the end of the input";

impl<'a, 'b> Tally<'a, 'b> {
    /// Forwards an event; returns false when reading should stop.
    pub fn event(&mut self, event: Event) -> bool {
        self.report.events += 1;
        if let Some(ts) = event.timestamp {
            self.report.first = Some(self.report.first.map_or(ts, |f| f.min(ts)));
            self.report.last = Some(self.report.last.map_or(ts, |l| l.max(ts)));
        }
        (self.sink)(Ok(event));
        let cancelled = self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
        if cancelled {
            self.report.failure = Some(INTERRUPTED.into());
        }
        !cancelled
    }

    /// Counts and forwards a rejected record; returns false when reading should stop.
    pub fn reject(&mut self, position: Position, message: String) -> bool {
        self.report.rejected += 1;
        (self.sink)(Err(SourceError {
            input: self.report.source.clone(),
            position,
            message: message.clone(),
        }));
        if self.strict {
            self.report.failure = Some(format!(
                "stopped at the first bad record (--strict): {message}"
            ));
            return false;
        }
        true
    }

    /// The input as a whole failed.
    pub fn fail(&mut self, message: String) {
        self.reject(Position::Input, message.clone());
        self.report.failure = Some(message);
    }
}

/// Calls `each` with every line (1-based number, bytes without the newline) until it returns
/// false or the input ends; a read error fails the input.
pub(crate) fn for_each_line(
    reader: &mut (dyn BufRead + Send),
    tally: &mut Tally<'_, '_>,
    mut each: impl FnMut(&mut Tally<'_, '_>, u64, &[u8]) -> bool,
) {
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tally.fail(format!("read error after line {line_no}: {e}"));
                return;
            }
        }
        line_no += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        if !each(tally, line_no, line.strip_suffix(b"\r").unwrap_or(line)) {
            return;
        }
    }
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const EVTX_MAGIC: &[u8] = b"ElfFile\0";

/// Reads one input to the end, passing each event or rejected record to `sink`.
pub fn read_input(input: &Input, options: &ReadOptions, sink: &mut Sink<'_>) -> InputReport {
    let source: Arc<str> = input.name().into();
    let mut tally = Tally {
        report: InputReport::new(source),
        sink,
        strict: options.strict,
        cancel: options.cancel.clone(),
    };
    match input {
        Input::Stdin => read_from(Box::new(io::stdin()), None, options, &mut tally),
        Input::File(path) => match std::fs::File::open(path) {
            Ok(f) => {
                tally.report.bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
                read_from(Box::new(f), Some(path), options, &mut tally);
            }
            Err(e) => tally.fail(format!("cannot open: {e}")),
        },
    }
    tally.report
}

/// As [`read_input`], for evidence already in memory (or any other stream), reported under
/// the name `source`.
pub fn read_bytes(
    source: &str,
    bytes: &[u8],
    options: &ReadOptions,
    sink: &mut Sink<'_>,
) -> InputReport {
    let mut tally = Tally {
        report: InputReport::new(source.into()),
        sink,
        strict: options.strict,
        cancel: options.cancel.clone(),
    };
    tally.report.bytes = bytes.len() as u64;
    read_from(Box::new(bytes), None, options, &mut tally);
    tally.report
}

/// Reads one stream: decompresses it if it is compressed, recognises its format and reads
/// it. `path` is the plain file the stream is, when it is one (EVTX is parsed in place).
fn read_from(
    reader: Box<dyn Read + Send + '_>,
    path: Option<&Path>,
    options: &ReadOptions,
    tally: &mut Tally<'_, '_>,
) {
    let (mut reader, compression) = match decompressed(reader) {
        Ok(r) => r,
        Err(e) => return tally.fail(e.to_string()),
    };
    tally.report.compressed = compression.is_some();
    let head = match peek(&mut reader) {
        Ok(h) => h,
        Err(e) => {
            return tally.fail(match compression {
                Some(kind) => format!("cannot decompress {kind}: {e}"),
                None => format!("cannot read: {e}"),
            })
        }
    };
    // A plain file is parsed in place when its format allows (EVTX); a decompressed stream
    // is not that file.
    let path = if compression.is_some() { None } else { path };
    read_plain(&mut reader, &head, path, options, tally);
}

/// The stream `reader` holds: decompressed if it is gzip or zstd (recognised by their magic,
/// whatever the file is called), as is otherwise; and which of the two it was. Only one
/// layer is undone (a gzip inside a gzip is not a log).
pub fn decompressed<'a>(
    reader: impl Read + Send + 'a,
) -> io::Result<(Box<dyn BufRead + Send + 'a>, Option<&'static str>)> {
    let mut reader = BufReader::with_capacity(256 * 1024, reader);
    let head = reader
        .fill_buf()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read: {e}")))?;
    if head.starts_with(GZIP_MAGIC) {
        let gz = flate2::read::MultiGzDecoder::new(reader);
        return Ok((
            Box::new(BufReader::with_capacity(256 * 1024, gz)),
            Some("gzip"),
        ));
    }
    if head.starts_with(ZSTD_MAGIC) {
        let zst = zstd::stream::read::Decoder::with_buffer(reader)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot decompress zstd: {e}")))?;
        return Ok((
            Box::new(BufReader::with_capacity(256 * 1024, zst)),
            Some("zstd"),
        ));
    }
    Ok((Box::new(reader), None))
}

fn peek(reader: &mut dyn BufRead) -> io::Result<Vec<u8>> {
    Ok(reader.fill_buf()?.iter().take(4096).copied().collect())
}

/// Recognises a format by its first bytes.
pub fn sniff(head: &[u8]) -> Format {
    if head.starts_with(EVTX_MAGIC) {
        return Format::Evtx;
    }
    if w3c::looks_like(head) {
        return Format::W3c;
    }
    if zeek::looks_like(head) {
        return Format::Zeek;
    }
    match dbexport::sniff(head) {
        Some(dbexport::Export::Oracle) => return Format::OracleAudit,
        Some(dbexport::Export::Mssql) => return Format::MssqlAudit,
        None => {}
    }
    match postgres::sniff(head) {
        Some(postgres::PgFormat::Stderr) => return Format::PostgresStderr,
        Some(postgres::PgFormat::Csv) => return Format::PostgresCsv,
        Some(postgres::PgFormat::Json) => return Format::PostgresJson,
        None => {}
    }
    if access_log::looks_like(head) {
        return Format::AccessLog;
    }
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| &text[i..]) {
        Some([b'[', ..]) => Format::JsonDocuments,
        Some(rest @ [b'{', ..]) => {
            // One object on the first line is JSON Lines; an object spread over lines is a document.
            let line = rest.split(|b| *b == b'\n').next().unwrap_or(rest);
            if line.len() < rest.len() || head.len() < 4096 {
                if serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok() {
                    return Format::JsonLines;
                }
                return Format::JsonDocuments;
            }
            // First line longer than the peek: assume one object per line.
            Format::JsonLines
        }
        _ => Format::Unknown,
    }
}

fn read_plain(
    reader: &mut (dyn BufRead + Send),
    head: &[u8],
    path: Option<&Path>,
    options: &ReadOptions,
    tally: &mut Tally<'_, '_>,
) {
    let format = sniff(head);
    tally.report.format = format;
    match format {
        Format::Evtx => evtx_source::read(reader, path, options, tally),
        Format::JsonLines => jsonl::read_lines(reader, tally),
        Format::JsonDocuments => jsonl::read_documents(reader, tally),
        Format::W3c => w3c::read(reader, tally),
        Format::Zeek => zeek::read(reader, tally),
        Format::AccessLog => access_log::read(reader, options.access_log_format.as_ref(), tally),
        Format::PostgresStderr => postgres::read(
            reader,
            postgres::PgFormat::Stderr,
            options.log_line_prefix.as_ref(),
            &options.pg_sessions,
            tally,
        ),
        Format::PostgresCsv => postgres::read(
            reader,
            postgres::PgFormat::Csv,
            None,
            &options.pg_sessions,
            tally,
        ),
        Format::PostgresJson => postgres::read(
            reader,
            postgres::PgFormat::Json,
            None,
            &options.pg_sessions,
            tally,
        ),
        Format::OracleAudit => dbexport::read(reader, dbexport::Export::Oracle, tally),
        Format::MssqlAudit => dbexport::read(reader, dbexport::Export::Mssql, tally),
        Format::Unknown => {
            // A configured access-log layout decides for text that no sniffing recognised.
            if let (Some(f), false) = (&options.access_log_format, head.is_empty()) {
                tally.report.format = Format::AccessLog;
                return access_log::read(reader, Some(f), tally);
            }
            // Not a log: said in the report (and skipped), but no record was lost.
            let what = if head.is_empty() {
                "empty input"
            } else {
                "not a log format towerwatch reads (EVTX, JSON, W3C, Zeek, access logs, database audit logs)"
            };
            tally.report.failure = Some(what.to_string());
        }
    }
}
