//! From log files to findings, and the operator's context files.

use std::collections::{BTreeSet, HashMap};
use std::io::BufReader;
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
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(file)?);
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

/// The register of authorised requests: CSV `case_id,identifiers,from,to,approved_by,account`
/// (identifiers separated by `;`, `|` or spaces; times RFC 3339 or dates).
pub fn read_register(path: &Path) -> Result<Vec<Authorised>, String> {
    let name = path.display().to_string();
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{name}: {e}"))?;
    let headers = rdr.headers().map_err(|e| format!("{name}: {e}"))?.clone();
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (case, ids, from, to) = match (col("case_id"), col("identifiers"), col("from"), col("to")) {
        (Some(a), Some(b), Some(c), Some(d)) => (a, b, c, d),
        _ => {
            return Err(format!(
                "{name}:1: needs case_id, identifiers, from and to columns"
            ))
        }
    };
    let account = col("account");
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
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
    let name = path.display().to_string();
    let mut rdr = csv::Reader::from_path(path).map_err(|e| format!("{name}: {e}"))?;
    let headers = rdr.headers().map_err(|e| format!("{name}: {e}"))?.clone();
    let col = |n: &str| {
        headers
            .iter()
            .position(|h| h == n)
            .ok_or_else(|| format!("{name}:1: no {n} column"))
    };
    let (host, ip, role) = (col("host")?, col("ip")?, col("role")?);
    let mut out = HashMap::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| format!("{name}:{}: {e}", i + 2))?;
        out.insert(rec[ip].to_string(), rec[role].to_string());
        out.insert(rec[host].to_string(), rec[role].to_string());
    }
    Ok(out)
}
