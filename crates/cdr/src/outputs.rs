//! `towerwatch cdr`'s outputs in a directory: the detections with a manifest naming the logs
//! read, and the exposure as CSV, JSON and HTML (each file written whole or not at all).

use std::path::{Path, PathBuf};

use crate::exposure::{CellTable, Exposure};
use crate::pseudo::Pseudonymizer;
use crate::report;
use crate::run::Run;

/// The files [`write`] makes, the detections first.
pub const FILES: [&str; 4] = [
    "cdr-detections.jsonl",
    "exposure.csv",
    "exposure.json",
    "exposure.html",
];

/// Writes the outputs of `run` and its exposure `x` into `out` (created if missing),
/// pseudonymised by `p` (`reveal`: the record of a reveal, named in the manifest). Returns
/// the detections' path.
pub fn write(
    out: &Path,
    run: &Run,
    x: &Exposure,
    p: &Pseudonymizer,
    cells: &CellTable,
    reveal: Option<&serde_json::Value>,
) -> std::io::Result<PathBuf> {
    let named = |e: std::io::Error, path: &Path| {
        std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(out).map_err(|e| named(e, out))?;
    let det = out.join(FILES[0]);
    // Findings are few (each a theft or an unusual reader): the lines are made in memory.
    let mut lines = Vec::new();
    report::write_detections(&mut lines, &run.findings, p, None)?;
    let inputs: Vec<_> = run
        .inputs
        .iter()
        .map(|rep| {
            serde_json::json!({
                "path": &*rep.source, "format": rep.format.to_string(), "records": rep.events,
                "rejected": rep.rejected, "detail": rep.detail, "failure": rep.failure,
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "tool": "towerwatch cdr", "version": env!("CARGO_PKG_VERSION"), "inputs": inputs,
        "detections": run.findings.len(), "schema": run.analytics.schema(), "extract": x.files,
        "key_fingerprint": p.fingerprint(), "revealed": p.reveals(), "reveal": reveal,
    });
    let whole = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        towerwatch_report::write_whole(&path, bytes).map_err(|e| named(e, &path))
    };
    whole(FILES[0], &lines)?;
    whole(
        &format!("{}.manifest.json", FILES[0]),
        &serde_json::to_vec_pretty(&manifest)?,
    )?;
    whole(FILES[1], report::exposure_csv(x, p).as_bytes())?;
    whole(
        FILES[2],
        &serde_json::to_vec_pretty(&report::exposure_json(x, p, cells))?,
    )?;
    whole(FILES[3], report::exposure_html(x, p, cells).as_bytes())?;
    Ok(det)
}
