//! What the analytics need besides the audit logs, loaded from the files an operator gives:
//! the pseudonymisation key, the register of authorised requests, the asset inventory, the
//! CDR extract (its files, headers and time zone) and a schema override.
//!
//! ```
//! use towerwatch_cdr::context::{extract_options, CdrContext};
//!
//! let context = CdrContext::load(None, Some("+03:00"), None).unwrap();
//! assert!(context.cdr_files.is_empty());
//! assert!(extract_options(Some("Mars/Olympus")).is_err());
//! ```

use std::path::{Path, PathBuf};

use crate::analytics::Settings;
use crate::exposure::{self, ExtractOptions};
use crate::pseudo::Pseudonymizer;
use crate::run;
use crate::schema::{ExtractHeader, SchemaFile};

/// A context file that cannot be used, named with why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ContextError(String);

type Result<T> = std::result::Result<T, ContextError>;

/// The environment variable that can hold the pseudonymisation key.
pub const KEY_ENV: &str = "TOWERWATCH_PSEUDONYM_KEY";

/// The pseudonymiser, and how identifiers are shown: `reveal_key` (real identifiers), else
/// `key_file`, else the environment's [`KEY_ENV`], else a random key for this run
/// (pseudonyms then link only within it).
pub fn key(
    key_file: Option<&Path>,
    reveal_key: Option<&Path>,
) -> Result<(Pseudonymizer, &'static str)> {
    let read_key = |p: &Path| -> Result<Vec<u8>> {
        let k = std::fs::read(p)
            .map_err(|e| ContextError(format!("cannot read key {}: {e}", p.display())))?;
        let k: Vec<u8> = k.trim_ascii().to_vec();
        if k.len() < 16 {
            return Err(ContextError(format!(
                "key {} is shorter than 16 bytes",
                p.display()
            )));
        }
        Ok(k)
    };
    if let Some(p) = reveal_key {
        return Ok((
            Pseudonymizer::new(&read_key(p)?, true),
            "revealed (--reveal-key)",
        ));
    }
    if let Some(p) = key_file {
        return Ok((
            Pseudonymizer::new(&read_key(p)?, false),
            "pseudonymised with --key-file",
        ));
    }
    if let Ok(k) = std::env::var(KEY_ENV) {
        if k.len() < 16 {
            return Err(ContextError(format!("{KEY_ENV} is shorter than 16 bytes")));
        }
        return Ok((
            Pseudonymizer::new(k.as_bytes(), false),
            "pseudonymised with the key in TOWERWATCH_PSEUDONYM_KEY",
        ));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| ContextError(format!("cannot draw a random key: {e}")))?;
    Ok((
        Pseudonymizer::new(&key, false),
        "pseudonymised with a random key of this run only",
    ))
}

/// `settings` with the register of authorised requests and the inventory's roles read in.
pub fn with_files(
    mut settings: Settings,
    register: Option<&Path>,
    assets: Option<&Path>,
) -> Result<Settings> {
    if let Some(p) = register {
        settings.register = run::read_register(p).map_err(|e| ContextError(e.to_string()))?;
    }
    if let Some(p) = assets {
        settings.assets = run::read_assets(p).map_err(|e| ContextError(e.to_string()))?;
    }
    Ok(settings)
}

/// A schema override file.
pub fn schema_file(path: Option<&Path>) -> Result<Option<SchemaFile>> {
    path.map(|p| {
        let text = std::fs::read_to_string(p)
            .map_err(|e| ContextError(format!("cannot read {}: {e}", p.display())))?;
        SchemaFile::parse(&text).map_err(|e| ContextError(format!("{}: {e}", p.display())))
    })
    .transpose()
}

/// The extract's time zone: an IANA name or a fixed offset (`+03:00`, `-0500`, `+8`).
pub fn extract_options(zone: Option<&str>) -> Result<ExtractOptions> {
    let timezone = match zone {
        None => None,
        Some(z) => Some(match parse_offset(z) {
            Some(o) => jiff::tz::TimeZone::fixed(o),
            None => jiff::tz::TimeZone::get(z)
                .map_err(|_| ContextError(format!("--cdr-timezone {z}: no such time zone")))?,
        }),
    };
    Ok(ExtractOptions { timezone })
}

/// `+03:00`, `-0500`, `+8`.
fn parse_offset(z: &str) -> Option<jiff::tz::Offset> {
    let sign = match z.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let body = z[1..].replace(':', "");
    let (h, m) = match body.len() {
        1 | 2 => (body.parse::<i32>().ok()?, 0),
        4 => (body[..2].parse().ok()?, body[2..].parse().ok()?),
        _ => return None,
    };
    jiff::tz::Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

/// The CDR context loaded: schema override, extract files and their headers, time zone.
#[derive(Default)]
pub struct CdrContext {
    pub given: Option<SchemaFile>,
    pub cdr_files: Vec<PathBuf>,
    pub extract: ExtractOptions,
    headers: Vec<ExtractHeader>,
    numbers: Vec<String>,
}

impl CdrContext {
    /// The extract (a CSV file or a directory of them), its zone, and a schema override.
    pub fn load(
        cdr: Option<&Path>,
        timezone: Option<&str>,
        schema: Option<&Path>,
    ) -> Result<CdrContext> {
        let cdr_files = cdr.map(exposure::csv_files).unwrap_or_default();
        if let Some(p) = cdr {
            if cdr_files.is_empty() {
                return Err(ContextError(format!("--cdr {}: no CSV files", p.display())));
            }
        }
        let (headers, numbers) = exposure::extract_headers(&cdr_files);
        Ok(CdrContext {
            given: schema_file(schema)?,
            extract: extract_options(timezone)?,
            cdr_files,
            headers,
            numbers,
        })
    }

    /// Reads every audit log under `logs`, runs the analytics over them with this context,
    /// and computes the exposure (raw identifiers, in memory).
    pub fn analyse(
        &self,
        logs: &[PathBuf],
        options: &towerwatch_sources::ReadOptions,
        settings: Settings,
    ) -> std::result::Result<(run::Run, exposure::Exposure), String> {
        let run = run::run(logs, options, settings, &self.schema_inputs())?;
        let x = exposure::compute(
            &run.findings,
            run.analytics.schema(),
            &self.cdr_files,
            &self.extract,
        );
        Ok((run, x))
    }

    pub fn schema_inputs(&self) -> run::SchemaInputs<'_> {
        run::SchemaInputs {
            given: self.given.as_ref(),
            headers: self.headers.clone(),
            numbers: self.numbers.clone(),
        }
    }
}
