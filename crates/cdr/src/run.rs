//! From log files to findings, and the operator's context files.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::analytics::{parse_bound, Analytics, Authorised, Finding, Settings};
use crate::audit::{self, Prefix, ReadReport, Rejected};
use crate::pseudo::normalise;
use crate::sql::IdKind;

/// What a run over the audit logs gave.
pub struct Run {
    pub findings: Vec<Finding>,
    pub inputs: Vec<(String, ReadReport)>,
    /// The first rejected lines (all are counted in the reports).
    pub rejected: Vec<Rejected>,
    pub analytics: Analytics,
}

impl Run {
    pub fn rejected_count(&self) -> u64 {
        self.inputs.iter().map(|(_, r)| r.rejected).sum()
    }

    pub fn audit_records(&self) -> u64 {
        self.inputs.iter().map(|(_, r)| r.audit).sum()
    }

    pub fn records(&self) -> u64 {
        self.inputs.iter().map(|(_, r)| r.records).sum()
    }
}

/// Files under the paths, each directory's in name order (daily logs read in time order).
pub fn log_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                if e.is_dir() {
                    out.extend(log_files(&[e])?);
                } else {
                    out.push(e);
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out)
}

/// Reads every log in order and runs the detectors.
pub fn run(files: &[PathBuf], prefix: &Prefix, settings: Settings) -> std::io::Result<Run> {
    let mut analytics = Analytics::new(settings);
    let mut findings = Vec::new();
    let mut rejected = Vec::new();
    let mut inputs = Vec::new();
    for file in files {
        let source: Arc<str> = file.display().to_string().into();
        // Rotated logs are often compressed: gzip and zstd are undone, recognised by content.
        let (mut reader, _) = towerwatch_sources::decompressed(std::fs::File::open(file)?)?;
        let report = audit::read(&mut reader, &source, prefix, &mut |item| match item {
            Ok(event) => findings.extend(analytics.observe(&event)),
            Err(r) => {
                if rejected.len() < 100 {
                    rejected.push(r);
                }
            }
        })?;
        inputs.push((source.to_string(), report));
    }
    Ok(Run {
        findings,
        inputs,
        rejected,
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

/// A CSV file with a header, for the operator's context files.
pub(crate) struct Table {
    pub name: String,
    pub headers: csv::StringRecord,
    pub reader: csv::Reader<Box<dyn std::io::BufRead + Send>>,
}

impl Table {
    pub fn open(path: &Path) -> Result<Table, String> {
        let name = path.display().to_string();
        let mut reader =
            open_csv(path, csv::ReaderBuilder::new()).map_err(|e| format!("{name}: {e}"))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("{name}: {e}"))?
            .clone();
        Ok(Table {
            name,
            headers,
            reader,
        })
    }

    /// The index of a column, or an error naming the file and the column.
    pub fn col(&self, column: &str) -> Result<usize, String> {
        self.headers
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| format!("{}:1: no {column} column", self.name))
    }
}

/// The register of authorised requests: CSV `case_id,identifiers,from,to,approved_by,account`
/// (identifiers separated by `;`, `|` or spaces; times RFC 3339 or dates).
pub fn read_register(path: &Path) -> Result<Vec<Authorised>, String> {
    let mut t = Table::open(path)?;
    let (case, ids, from, to) = (
        t.col("case_id")?,
        t.col("identifiers")?,
        t.col("from")?,
        t.col("to")?,
    );
    let account = t.col("account").ok();
    let name = t.name.clone();
    let mut out = Vec::new();
    for (i, rec) in t.reader.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{name}:{line}: {e}"))?;
        let time = |j: usize| {
            parse_bound(&rec[j])
                .ok_or_else(|| format!("{name}:{line}: {:?} is not a time", &rec[j]))
        };
        out.push(Authorised {
            case_id: rec[case].to_string(),
            ids: rec[ids]
                .split([';', '|', ' '])
                .filter(|s| !s.is_empty())
                .map(|s| normalise(IdKind::Msisdn, s))
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
pub fn read_assets(path: &Path) -> Result<HashMap<String, String>, String> {
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
pub fn read_asset_rows(path: &Path) -> Result<Vec<AssetRow>, String> {
    let mut t = Table::open(path)?;
    let (host, ip, role) = (t.col("host")?, t.col("ip")?, t.col("role")?);
    let mut out = Vec::new();
    for (i, rec) in t.reader.records().enumerate() {
        let rec = rec.map_err(|e| format!("{}:{}: {e}", t.name, i + 2))?;
        out.push(AssetRow {
            host: rec[host].to_string(),
            ip: rec[ip].to_string(),
            role: rec[role].to_string(),
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
            ["999700000001", "999700000002"]
        );
        assert_eq!(cases[0].account.as_deref(), Some("rds"));
        std::fs::write(
            &reg,
            "case_id,identifiers,from,to\nRD-1,1,yesterday,2019-01-01\n",
        )
        .unwrap();
        assert!(read_register(&reg)
            .unwrap_err()
            .ends_with("rd.csv:2: \"yesterday\" is not a time"));
        let assets = dir.path().join("a.csv");
        std::fs::write(&assets, "host,address,role\n").unwrap();
        assert!(read_assets(&assets)
            .unwrap_err()
            .ends_with("a.csv:1: no ip column"));
        std::fs::write(&assets, "host,ip,role\nFS01,10.40.0.20,file_server\n").unwrap();
        assert_eq!(read_assets(&assets).unwrap()["10.40.0.20"], "file_server");
    }
}
