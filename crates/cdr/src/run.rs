//! From audit logs to findings: read every log (any format `towerwatch-sources` knows), learn
//! the schema from all their statements, then run the detectors in time order. Also the
//! operator's context files (register, asset inventory).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use towerwatch_sources::{InputReport, ReadOptions, SourceError};
use towerwatch_spill::{Sorter, SpillError};

use crate::analytics::{parse_bound, Analytics, Authorised, Finding, Settings};
use crate::record::{is_database, DbEvent};
use crate::schema::{Discovery, SchemaFile};
use crate::sql::Reader;

/// What a run over the audit logs gave.
pub struct Run {
    pub findings: Vec<Finding>,
    pub inputs: Vec<InputReport>,
    /// Inputs that are not database logs: (input, what it is).
    pub not_database: Vec<(String, String)>,
    /// The first rejected records (all are counted in the reports).
    pub rejected: Vec<SourceError>,
    /// Database records read (audited statements and the rest).
    pub records: u64,
    /// Audited statements among them.
    pub audit: u64,
    pub analytics: Analytics,
}

impl Run {
    pub fn rejected_count(&self) -> u64 {
        self.inputs.iter().map(|r| r.rejected).sum()
    }
}

/// What the schema is learnt from besides the logs.
#[derive(Default)]
pub struct SchemaInputs<'a> {
    /// `--schema`.
    pub given: Option<&'a SchemaFile>,
    /// The CDR extract's files and headers.
    pub headers: Vec<crate::schema::ExtractHeader>,
    /// Numbers seen elsewhere (extract, register), for the country code.
    pub numbers: Vec<String>,
}

/// Audited statements waiting for the analysis: up to [`STATEMENTS_IN_MEMORY`] in memory,
/// the rest in temporary files, read back in time order (records of one time by their
/// source's digest, then in file order: the same order however they were read) — memory
/// does not grow with the logs.
pub struct Statements {
    sorted: Sorter<(Option<jiff::Timestamp>, u64, u64), DbEvent>,
    error: Option<SpillError>,
}

/// Statements one [`Statements`] holds in memory.
pub const STATEMENTS_IN_MEMORY: usize = 8192;

impl Default for Statements {
    fn default() -> Self {
        Statements {
            sorted: Sorter::new(STATEMENTS_IN_MEMORY),
            error: None,
        }
    }
}

impl Statements {
    pub fn push(&mut self, e: DbEvent) {
        let key = (e.time, towerwatch_event::source_digest(&e.source), e.line);
        if let Err(err) = self.sorted.push(key, e) {
            self.error.get_or_insert(err);
        }
    }

    pub fn append(&mut self, other: Statements) {
        if let Err(err) = self.sorted.append(other.sorted) {
            self.error.get_or_insert(err);
        }
        if let Some(err) = other.error {
            self.error.get_or_insert(err);
        }
    }

    pub fn len(&self) -> u64 {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// Every statement, in time order.
    fn each(&mut self, mut f: impl FnMut(DbEvent)) -> Result<(), SpillError> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        for item in self.sorted.sorted()? {
            f(item?.1);
        }
        Ok(())
    }
}

impl FromIterator<DbEvent> for Statements {
    fn from_iter<I: IntoIterator<Item = DbEvent>>(iter: I) -> Self {
        let mut s = Statements::default();
        for e in iter {
            s.push(e);
        }
        s
    }
}

/// Learns the schema from the statements and runs the detectors over them in time order
/// (two reads). Fails only if the temporary files fail.
pub fn analyse(
    statements: &mut Statements,
    settings: Settings,
    inputs: &SchemaInputs<'_>,
) -> Result<(Vec<Finding>, Analytics), SpillError> {
    let mut reader = Reader::default();
    let mut discovery = Discovery::default();
    statements.each(|e| {
        if let Ok(f) = reader.facts(&e.audit.statement) {
            discovery.observe(&f);
        }
    })?;
    for n in &inputs.numbers {
        discovery.number(n);
    }
    for case in &settings.register {
        for id in &case.ids {
            discovery.number(id);
        }
    }
    let schema = discovery.finish(&inputs.headers, inputs.given);
    let mut analytics = Analytics::new(settings, schema, reader);
    let mut findings = Vec::new();
    statements.each(|e| findings.extend(analytics.observe(&e)))?;
    Ok((findings, analytics))
}

/// Reads every log under `paths` and analyses them.
pub fn run(
    paths: &[PathBuf],
    options: &ReadOptions,
    settings: Settings,
    inputs: &SchemaInputs<'_>,
) -> Result<Run, String> {
    let (files, problems) = towerwatch_sources::discover(paths);
    if files.is_empty() {
        return Err(match problems.first() {
            Some(p) => p.to_string(),
            None => "no input files".into(),
        });
    }
    let mut events = Statements::default();
    let mut rejected: Vec<SourceError> = problems;
    let mut reports = Vec::new();
    let mut not_database = Vec::new();
    let (mut records, mut audit) = (0u64, 0u64);
    for input in &files {
        let report = towerwatch_sources::read_input(input, options, &mut |item| match item {
            Ok(e) => {
                if is_database(&e) {
                    records += 1;
                    if let Some(db) = DbEvent::from_event(&e) {
                        audit += 1;
                        events.push(db);
                    }
                }
            }
            Err(err) => {
                if rejected.len() < 100 {
                    rejected.push(err);
                }
            }
        });
        if !report.format.is_database() {
            not_database.push((
                report.source.to_string(),
                match &report.failure {
                    Some(f) => f.clone(),
                    None => format!("a {} log, not a database's", report.format),
                },
            ));
        }
        reports.push(report);
    }
    let (findings, analytics) = analyse(&mut events, settings, inputs)
        .map_err(|e| format!("cannot hold the statements for the analysis: {e}"))?;
    Ok(Run {
        findings,
        inputs: reports,
        not_database,
        rejected,
        records,
        audit,
        analytics,
    })
}

/// A CSV file, gzip- or zstd-compressed or not, opened with `builder`'s settings.
pub(crate) fn open_csv(
    path: &Path,
    builder: csv::ReaderBuilder,
) -> std::io::Result<csv::Reader<Box<dyn std::io::BufRead + Send>>> {
    let (reader, _) = towerwatch_sources::decompressed(std::fs::File::open(path)?)?;
    Ok(builder.from_reader(reader))
}

/// A context file (register, inventory, cell table) that cannot be read, with where.
#[derive(Debug, thiserror::Error)]
pub enum ContextFileError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Csv {
        path: String,
        line: u64,
        reason: String,
    },
    #[error("{path}:1: no {column} column")]
    NoColumn { path: String, column: String },
    #[error("{path}:{line}: {value:?} is not a time")]
    NotATime {
        path: String,
        line: u64,
        value: String,
    },
}

/// A CSV file with a header, for the operator's context files.
pub(crate) struct Table {
    pub name: String,
    pub headers: csv::StringRecord,
    pub reader: csv::Reader<Box<dyn std::io::BufRead + Send>>,
}

impl Table {
    pub fn open(path: &Path) -> Result<Table, ContextFileError> {
        let name = path.display().to_string();
        let mut reader =
            open_csv(path, csv::ReaderBuilder::new()).map_err(|source| ContextFileError::Read {
                path: name.clone(),
                source,
            })?;
        let headers = reader
            .headers()
            .map_err(|e| ContextFileError::Csv {
                path: name.clone(),
                line: 1,
                reason: e.to_string(),
            })?
            .clone();
        Ok(Table {
            name,
            headers,
            reader,
        })
    }

    /// The index of a column, or an error naming the file and the column.
    pub fn col(&self, column: &str) -> Result<usize, ContextFileError> {
        self.headers
            .iter()
            .position(|h| h.trim() == column)
            .ok_or_else(|| ContextFileError::NoColumn {
                path: self.name.clone(),
                column: column.to_string(),
            })
    }

    /// A bad record at `line`, named.
    fn bad(&self, line: u64, e: csv::Error) -> ContextFileError {
        ContextFileError::Csv {
            path: self.name.clone(),
            line,
            reason: e.to_string(),
        }
    }
}

/// The register of authorised requests: CSV `case_id,identifiers,from,to,approved_by,account`
/// (identifiers separated by `;`, `|` or spaces; times RFC 3339 or dates).
pub fn read_register(path: &Path) -> Result<Vec<Authorised>, ContextFileError> {
    let mut t = Table::open(path)?;
    let (case, ids, from, to) = (
        t.col("case_id")?,
        t.col("identifiers")?,
        t.col("from")?,
        t.col("to")?,
    );
    let account = t.col("account").ok();
    let mut out = Vec::new();
    let mut records = csv::StringRecord::new();
    let mut line = 1;
    loop {
        line += 1;
        match t.reader.read_record(&mut records) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(t.bad(line, e)),
        }
        let rec = &records;
        let time = |j: usize| {
            parse_bound(&rec[j]).ok_or_else(|| ContextFileError::NotATime {
                path: t.name.clone(),
                line,
                value: rec[j].to_string(),
            })
        };
        out.push(Authorised {
            case_id: rec[case].to_string(),
            ids: rec[ids]
                .split([';', '|', ' ', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect::<BTreeSet<_>>(),
            from: time(from)?,
            to: time(to)?,
            account: account
                .map(|j| rec[j].to_string())
                .filter(|a| !a.is_empty()),
        });
    }
    Ok(out)
}

/// The asset inventory: CSV `host,ip,role` → ip (and host name) → role.
pub fn read_assets(path: &Path) -> Result<HashMap<String, String>, ContextFileError> {
    let mut out = HashMap::new();
    for a in read_asset_rows(path)? {
        out.insert(a.ip, a.role.clone());
        out.insert(a.host, a.role);
    }
    Ok(out)
}

/// One row of an asset inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetRow {
    pub host: String,
    pub ip: String,
    pub role: String,
}

/// An asset inventory (`host,ip,role` CSV, any column order), row by row.
pub fn read_asset_rows(path: &Path) -> Result<Vec<AssetRow>, ContextFileError> {
    let mut t = Table::open(path)?;
    let (host, ip, role) = (t.col("host")?, t.col("ip")?, t.col("role")?);
    let mut out = Vec::new();
    let mut rec = csv::StringRecord::new();
    let mut line = 1;
    loop {
        line += 1;
        match t.reader.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(t.bad(line, e)),
        }
        out.push(AssetRow {
            host: rec[host].trim().to_string(),
            ip: rec[ip].trim().to_string(),
            role: rec[role].trim().to_string(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_files_are_read_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("rd.csv");
        std::fs::write(&reg, "case_id,identifiers,from,to,approved_by,account\nRD-1,+999700000001;999700000002,2018-01-01,2019-01-01T00:00:00Z,court,rds\n").unwrap();
        let cases = read_register(&reg).unwrap();
        assert_eq!(
            cases[0].ids.iter().collect::<Vec<_>>(),
            ["+999700000001", "999700000002"]
        );
        assert_eq!(cases[0].account.as_deref(), Some("rds"));
        std::fs::write(
            &reg,
            "case_id,identifiers,from,to\nRD-1,1,yesterday,2019-01-01\n",
        )
        .unwrap();
        let e = read_register(&reg).unwrap_err();
        assert!(matches!(e, ContextFileError::NotATime { line: 2, .. }));
        assert!(e
            .to_string()
            .ends_with("rd.csv:2: \"yesterday\" is not a time"));
        let assets = dir.path().join("a.csv");
        std::fs::write(&assets, "host,address,role\n").unwrap();
        let e = read_assets(&assets).unwrap_err();
        assert!(e.to_string().ends_with("a.csv:1: no ip column"), "{e}");
        std::fs::write(&assets, "host,ip,role\nFS01,10.40.0.20,file_server\n").unwrap();
        assert_eq!(read_assets(&assets).unwrap()["10.40.0.20"], "file_server");
    }
}
