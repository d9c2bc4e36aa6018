//! Revealing real identifiers is checked and on the record: the key offered must be the one
//! that made the pseudonyms of the output it reveals, and every reveal is appended (and
//! synced) to `reveals.jsonl` before anything shows a real identifier.
//!
//! ```
//! use towerwatch_cdr::pseudo::Pseudonymizer;
//! use towerwatch_cdr::reveal::{check_key, record, Reveal};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let key = Pseudonymizer::new(b"the operator's key, 16+ bytes", true);
//! let output = dir.path().join("exposure.json");
//! std::fs::write(&output, format!(r#"{{"key_fingerprint": "{}"}}"#, key.fingerprint())).unwrap();
//! check_key(&output, &key).unwrap();
//! assert!(check_key(&output, &Pseudonymizer::new(b"another key of 16 bytes", true)).is_err());
//!
//! let r = Reveal::new("case 2019-17", &key, &output, vec!["terminal".into()], 12);
//! record(dir.path(), &r).unwrap();
//! assert!(std::fs::read_to_string(dir.path().join("reveals.jsonl")).unwrap().contains("case 2019-17"));
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::pseudo::Pseudonymizer;

/// A reveal refused, or one that could not be recorded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RevealError(String);

/// The key fingerprint a pseudonymised output records (`key_fingerprint` at its top: an
/// exposure.json, a manifest).
fn recorded_fingerprint(path: &Path) -> Result<String, RevealError> {
    let bytes = std::fs::read(path)
        .map_err(|e| RevealError(format!("cannot read {}: {e}", path.display())))?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        RevealError(format!(
            "{} is not a towerwatch JSON output",
            path.display()
        ))
    })?;
    doc["key_fingerprint"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| RevealError(format!("{} records no key fingerprint", path.display())))
}

/// Refuses a key that did not make the pseudonyms of `against`.
pub fn check_key(against: &Path, p: &Pseudonymizer) -> Result<(), RevealError> {
    let recorded = recorded_fingerprint(against)?;
    let offered = p.fingerprint();
    if recorded != offered {
        return Err(RevealError(format!(
            "--reveal-key refused: {} was pseudonymised with key {recorded}, the key given is {offered}",
            against.display()
        )));
    }
    Ok(())
}

/// The pseudonymised output a reveal is checked against, its key checked: the one named
/// (`given`), else the `exposure.json` already in the output directory `out`.
pub fn checked_against(
    given: Option<&Path>,
    out: Option<&Path>,
    p: &Pseudonymizer,
) -> Result<PathBuf, RevealError> {
    let against = match (given, out) {
        (Some(a), _) => a.to_path_buf(),
        (None, Some(out)) if out.join("exposure.json").is_file() => out.join("exposure.json"),
        _ => return Err(RevealError(
            "--reveal-key needs the pseudonymised output it reveals (--against FILE, or an --out directory holding one): the key is checked against it".into(),
        )),
    };
    check_key(&against, p)?;
    Ok(against)
}

/// Records the reveal of `identifiers` subscribers, `why`: beside the outputs written into
/// `out` (naming them), else beside `against` (for a terminal). Returns the record.
pub fn record_for(
    out: Option<&Path>,
    against: &Path,
    why: &str,
    p: &Pseudonymizer,
    identifiers: usize,
) -> Result<serde_json::Value, RevealError> {
    let (dir, outputs) = match out {
        Some(o) => (
            o.to_path_buf(),
            crate::outputs::FILES
                .iter()
                .map(|f| o.join(f).display().to_string())
                .collect(),
        ),
        None => (
            against
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            vec!["terminal".into()],
        ),
    };
    record(&dir, &Reveal::new(why, p, against, outputs, identifiers))
}

/// One reveal: who, when, why, with which key, against what, into which outputs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reveal {
    pub time: String,
    pub user: String,
    pub reason: String,
    pub key_fingerprint: String,
    pub checked_against: String,
    pub outputs: Vec<String>,
    pub identifiers_revealed: usize,
    pub command: Vec<String>,
}

impl Reveal {
    /// A reveal by the operating system's user, now, by this process's command.
    pub fn new(
        reason: &str,
        p: &Pseudonymizer,
        against: &Path,
        outputs: Vec<String>,
        identifiers_revealed: usize,
    ) -> Reveal {
        Reveal {
            time: jiff::Timestamp::now().to_string(),
            user: os_user(),
            reason: reason.to_string(),
            key_fingerprint: p.fingerprint(),
            checked_against: against.display().to_string(),
            outputs,
            identifiers_revealed,
            command: std::env::args().collect(),
        }
    }
}

/// Who runs this, as the operating system says.
fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Appends `r` to `dir/reveals.jsonl` and syncs it; returns the record as written.
pub fn record(dir: &Path, r: &Reveal) -> Result<serde_json::Value, RevealError> {
    let failed = |e: std::io::Error| {
        RevealError(format!(
            "cannot record the reveal in {}: {e}",
            dir.join("reveals.jsonl").display()
        ))
    };
    let value = serde_json::to_value(r).expect("a reveal serialises");
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("reveals.jsonl"))
        .map_err(failed)?;
    writeln!(f, "{value}").map_err(failed)?;
    f.sync_all().map_err(failed)?;
    Ok(value)
}
