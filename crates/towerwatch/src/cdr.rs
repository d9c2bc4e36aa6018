//! `towerwatch cdr`: the CDR warehouse's audit trail → findings and the exposure report.

use crate::term::{complainln, say};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use towerwatch_cdr::analytics::Settings;
use towerwatch_cdr::exposure::{self, Exposure, ExtractOptions, Tier};
use towerwatch_cdr::pseudo::Pseudonymizer;
use towerwatch_cdr::schema::SchemaFile;
use towerwatch_cdr::{report, run};
use towerwatch_sources::{LinePrefix, ReadOptions};

use crate::CdrArgs;

/// The environment variable that can hold the pseudonymisation key.
pub const KEY_ENV: &str = "TOWERWATCH_PSEUDONYM_KEY";

/// The key and whether to reveal: `--reveal-key FILE`, else `--key-file FILE`, else the
/// environment, else a random key for this run (pseudonyms then link only within it).
fn pseudonymizer(args: &CdrArgs) -> Result<(Pseudonymizer, &'static str)> {
    key(args.context.key_file.as_deref(), args.reveal_key.as_deref())
}

/// The pseudonymiser of `--key-file` (or `--reveal-key`, or the environment, or a random key).
pub fn key(
    key_file: Option<&Path>,
    reveal_key: Option<&Path>,
) -> Result<(Pseudonymizer, &'static str)> {
    let read_key = |p: &Path| -> Result<Vec<u8>> {
        let k = std::fs::read(p).with_context(|| format!("cannot read key {}", p.display()))?;
        let k: Vec<u8> = k.trim_ascii().to_vec();
        anyhow::ensure!(
            k.len() >= 16,
            "key {} is shorter than 16 bytes",
            p.display()
        );
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
        anyhow::ensure!(k.len() >= 16, "{KEY_ENV} is shorter than 16 bytes");
        return Ok((
            Pseudonymizer::new(k.as_bytes(), false),
            "pseudonymised with the key in TOWERWATCH_PSEUDONYM_KEY",
        ));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("cannot draw a random key: {e}"))?;
    Ok((
        Pseudonymizer::new(&key, false),
        "pseudonymised with a random key of this run only",
    ))
}

/// The analytics' settings for a hunt: the register, the inventory, the defaults otherwise.
pub fn hunt_settings(context: &crate::CdrContextArgs, assets: Option<&Path>) -> Result<Settings> {
    let mut s = Settings::default();
    if let Some(p) = &context.register {
        s.register = run::read_register(p).map_err(anyhow::Error::msg)?;
    }
    if let Some(p) = assets {
        s.assets = run::read_assets(p).map_err(anyhow::Error::msg)?;
    }
    Ok(s)
}

/// The settings the arguments describe.
pub fn settings(args: &CdrArgs) -> Result<Settings> {
    let mut s = Settings {
        training_days: args.training_days,
        max_ids: args.max_ids,
        long_range_days: args.long_range_days,
        ..Default::default()
    };
    if let Some(p) = &args.context.register {
        s.register = run::read_register(p).map_err(anyhow::Error::msg)?;
    }
    if let Some(p) = &args.assets {
        s.assets = run::read_assets(p).map_err(anyhow::Error::msg)?;
    }
    Ok(s)
}

/// The reading options the arguments give (a forced `log_line_prefix`).
pub fn read_options(prefix: Option<&str>) -> Result<ReadOptions> {
    Ok(ReadOptions {
        log_line_prefix: prefix
            .map(LinePrefix::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--log-line-prefix: {e}"))?,
        ..ReadOptions::default()
    })
}

/// `--schema`.
pub fn schema_file(path: Option<&Path>) -> Result<Option<SchemaFile>> {
    path.map(|p| {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        SchemaFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    })
    .transpose()
}

/// `--cdr-timezone`: an IANA name or a fixed offset.
pub fn extract_options(zone: Option<&str>) -> Result<ExtractOptions> {
    let timezone = match zone {
        None => None,
        Some(z) => Some(match parse_offset(z) {
            Some(o) => jiff::tz::TimeZone::fixed(o),
            None => jiff::tz::TimeZone::get(z)
                .with_context(|| format!("--cdr-timezone {z}: no such time zone"))?,
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
pub struct CdrContext {
    pub given: Option<SchemaFile>,
    pub cdr_files: Vec<PathBuf>,
    pub extract: ExtractOptions,
    headers: Vec<towerwatch_cdr::schema::ExtractHeader>,
    numbers: Vec<String>,
}

impl CdrContext {
    pub fn load(args: &crate::CdrContextArgs) -> Result<CdrContext> {
        let cdr_files = args
            .cdr
            .as_deref()
            .map(exposure::csv_files)
            .unwrap_or_default();
        if let Some(p) = &args.cdr {
            anyhow::ensure!(!cdr_files.is_empty(), "--cdr {}: no CSV files", p.display());
        }
        let (headers, numbers) = exposure::extract_headers(&cdr_files);
        Ok(CdrContext {
            given: schema_file(args.schema.as_deref())?,
            extract: extract_options(args.cdr_timezone.as_deref())?,
            cdr_files,
            headers,
            numbers,
        })
    }

    pub fn schema_inputs(&self) -> run::SchemaInputs<'_> {
        run::SchemaInputs {
            given: self.given.as_ref(),
            headers: self.headers.clone(),
            numbers: self.numbers.clone(),
        }
    }
}

/// Runs the analytics and computes the exposure (raw identifiers, in memory).
pub fn analyse(args: &CdrArgs) -> Result<(run::Run, Exposure, f64)> {
    let clock = Instant::now();
    let options = read_options(args.log_line_prefix.as_deref())?;
    let context = CdrContext::load(&args.context)?;
    let inputs = context.schema_inputs();
    let (cdr_files, extract) = (&context.cdr_files, &context.extract);
    let result =
        run::run(&args.logs, &options, settings(args)?, &inputs).map_err(anyhow::Error::msg)?;
    let x = exposure::compute(
        &result.findings,
        result.analytics.schema(),
        cdr_files,
        extract,
    );
    Ok((result, x, clock.elapsed().as_secs_f64()))
}

pub fn summary(
    r: &run::Run,
    x: &Exposure,
    seconds: f64,
    identifiers: &str,
    p: &Pseudonymizer,
) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let lines: u64 = r.records;
    let _ = writeln!(
        s,
        "towerwatch cdr: {} logs, {} log records ({} audit, {} rejected), {} statements ({} unparsable), {:.2} s, {:.0} records/s",
        r.inputs.len(),
        lines,
        r.audit,
        r.rejected_count(),
        r.analytics.statements,
        r.analytics.unanalysed_count,
        seconds,
        lines as f64 / seconds.max(1e-9)
    );
    let prefixes: std::collections::BTreeMap<&str, usize> = r
        .inputs
        .iter()
        .filter_map(|i| i.detail.as_deref())
        .fold(Default::default(), |mut m, d| {
            *m.entry(d).or_default() += 1;
            m
        });
    for (d, n) in &prefixes {
        let _ = writeln!(s, "  {d}: {n} log{}", if *n == 1 { "" } else { "s" });
    }
    // Inputs that are not database logs, by what they are (each one is in the manifest).
    let mut skipped: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (input, why) in &r.not_database {
        skipped.entry(why).or_default().push(input);
    }
    for (why, inputs) in &skipped {
        let _ = match inputs.as_slice() {
            [one] => writeln!(s, "  skipped {one}: {why}"),
            [first, ..] => writeln!(s, "  skipped {} inputs ({first} …): {why}", inputs.len()),
            [] => Ok(()),
        };
    }
    let _ = writeln!(
        s,
        "\nschema used:\n{}",
        r.analytics.schema().describe().trim_end()
    );
    // Extract files read alike (same tables, match, time and identifier columns) are one line.
    struct Alike<'a> {
        files: usize,
        rows: u64,
        first: &'a str,
    }
    let mut alike: std::collections::BTreeMap<_, Alike> = Default::default();
    for f in &x.files {
        let key = (
            f.tables.join(", "),
            f.matched_by,
            f.time_column.as_str(),
            f.id_columns.join(", "),
        );
        let e = alike.entry(key).or_insert(Alike {
            files: 0,
            rows: 0,
            first: f.path.as_str(),
        });
        e.files += 1;
        e.rows += f.rows;
    }
    for ((tables, by, time, ids), a) in &alike {
        let _ = writeln!(
            s,
            "  CDR extract: {} file{} ({}{}), {} rows of {tables} (matched by {by}); time {time}; identifiers {ids}",
            a.files,
            if a.files == 1 { "" } else { "s" },
            a.first,
            if a.files > 1 { " …" } else { "" },
            a.rows,
        );
    }
    let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &r.findings {
        *by_rule.entry(f.rule.title()).or_default() += 1;
    }
    let _ = writeln!(s, "\nfindings: {}", r.findings.len());
    for (title, n) in &by_rule {
        let _ = writeln!(s, "  {n:>6}  {title}");
    }
    let _ = writeln!(s, "lookups matching the register of authorised requests (not alarms, not in the exposure): {}", r.analytics.authorised);
    let named: Vec<_> = x
        .subscribers
        .iter()
        .filter(|((t, _), _)| *t == Tier::Named)
        .collect();
    let _ = writeln!(
        s,
        "\nexposure ({identifiers}): {} subscribers named in stolen queries, {} counterparties revealed, {} looked up in the subscriber table, {} bulk reads; {} CDR rows re-read ({} rejected)",
        named.len(),
        x.count(Tier::Counterparty),
        x.count(Tier::LookedUp),
        x.bulk.len(),
        x.cdr_rows,
        x.cdr_rejected_count
    );
    for r in x.rows(p).into_iter().filter(|r| r.tier == Tier::Named) {
        let e = r.exposed;
        let _ = writeln!(
            s,
            "  {}  {:>6} records  {:>3} cells  {} .. {}",
            r.shown,
            e.records
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            e.cells.len(),
            e.from.map(|t| t.to_string()).unwrap_or_default(),
            e.to.map(|t| t.to_string()).unwrap_or_default()
        );
    }
    for k in &x.skipped {
        let _ = writeln!(s, "  skipped {k}");
    }
    for b in &x.bulk {
        let _ = writeln!(
            s,
            "  bulk: {} by {} on {}: {} subscribers",
            b.evidence,
            b.actor,
            b.tables.join(", "),
            b.subscribers
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into())
        );
    }
    if !r.rejected.is_empty() {
        let _ = writeln!(
            s,
            "\nrejected lines ({} in all; first {}):",
            r.rejected_count(),
            r.rejected.len().min(10)
        );
        for e in r.rejected.iter().take(10) {
            let _ = writeln!(s, "  {e}");
        }
    }
    if !r.analytics.unanalysed.is_empty() {
        let _ = writeln!(
            s,
            "\nunparsable statements ({} in all; first {}):",
            r.analytics.unanalysed_count,
            r.analytics.unanalysed.len().min(10)
        );
        for u in r.analytics.unanalysed.iter().take(10) {
            let _ = writeln!(s, "  {}:{}: {}", u.source, u.line, u.error);
        }
    }
    s
}

/// Writes the detections (with a manifest naming the logs read), exposure CSV, JSON and HTML.
pub fn write_outputs(
    out: &Path,
    r: &run::Run,
    x: &Exposure,
    p: &Pseudonymizer,
    cells: Option<&Path>,
    reveal: Option<&serde_json::Value>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let det = out.join("cdr-detections.jsonl");
    let mut w = BufWriter::new(
        File::create(&det).with_context(|| format!("cannot write {}", det.display()))?,
    );
    report::write_detections(&mut w, &r.findings, p, None)?;
    w.flush()?;
    let inputs: Vec<_> = r
        .inputs
        .iter()
        .map(|rep| serde_json::json!({"path": &*rep.source, "format": rep.format.to_string(), "records": rep.events, "rejected": rep.rejected, "detail": rep.detail, "failure": rep.failure}))
        .collect();
    std::fs::write(
        format!("{}.manifest.json", det.display()),
        serde_json::to_vec_pretty(
            &serde_json::json!({"tool": "towerwatch cdr", "version": env!("CARGO_PKG_VERSION"), "inputs": inputs, "detections": r.findings.len(), "schema": r.analytics.schema(), "extract": x.files, "key_fingerprint": p.fingerprint(), "revealed": p.reveals(), "reveal": reveal}),
        )?,
    )?;
    let cells = match cells {
        Some(c) => {
            let (table, rejected) = exposure::read_cells(c).map_err(anyhow::Error::msg)?;
            if let Some(first) = rejected.first() {
                complainln!(
                    "towerwatch: {} rows of the cell table rejected (first: {first})",
                    rejected.len()
                );
            }
            table
        }
        None => Default::default(),
    };
    let whole = |name: &str, bytes: &[u8]| -> Result<()> {
        let path = out.join(name);
        towerwatch_report::write_whole(&path, bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    whole("exposure.csv", report::exposure_csv(x, p).as_bytes())?;
    whole(
        "exposure.json",
        &serde_json::to_vec_pretty(&report::exposure_json(x, p, &cells))?,
    )?;
    whole(
        "exposure.html",
        report::exposure_html(x, p, &cells).as_bytes(),
    )?;
    Ok(det)
}

/// The key fingerprint a pseudonymised output records: `key_fingerprint` at its top (an
/// exposure.json, a manifest) or in its `identifiers` block.
fn recorded_fingerprint(path: &Path) -> Result<String> {
    let doc: serde_json::Value = serde_json::from_slice(
        &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not a towerwatch JSON output", path.display()))?;
    doc["key_fingerprint"]
        .as_str()
        .map(String::from)
        .with_context(|| format!("{} records no key fingerprint", path.display()))
}

/// Checks a reveal before any work: the key must be the one that made the pseudonyms of the
/// output it is offered against. Returns that output.
fn check_reveal(args: &CdrArgs, p: &Pseudonymizer) -> Result<Option<PathBuf>> {
    if args.reveal_key.is_none() {
        return Ok(None);
    }
    let against = match (&args.against, &args.out) {
        (Some(a), _) => a.clone(),
        (None, Some(out)) if out.join("exposure.json").is_file() => out.join("exposure.json"),
        _ => anyhow::bail!(
            "--reveal-key needs the pseudonymised output it reveals (--against FILE, or an --out directory holding one): the key is checked against it"
        ),
    };
    let recorded = recorded_fingerprint(&against)?;
    let offered = p.fingerprint();
    anyhow::ensure!(
        recorded == offered,
        "--reveal-key refused: {} was pseudonymised with key {recorded}, the key given is {offered}",
        against.display()
    );
    Ok(Some(against))
}

/// Who runs this, as the operating system says.
fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

/// Appends the reveal to `reveals.jsonl` beside the outputs (or beside the output it was
/// checked against) and returns the record.
fn record_reveal(
    args: &CdrArgs,
    against: &Path,
    p: &Pseudonymizer,
    x: &Exposure,
) -> Result<serde_json::Value> {
    let dir = match &args.out {
        Some(o) => o.clone(),
        None => against
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    let outputs: Vec<String> = match &args.out {
        Some(o) => [
            "cdr-detections.jsonl",
            "exposure.csv",
            "exposure.json",
            "exposure.html",
        ]
        .iter()
        .map(|f| o.join(f).display().to_string())
        .collect(),
        None => vec!["terminal".into()],
    };
    let record = serde_json::json!({
        "time": jiff::Timestamp::now().to_string(),
        "user": os_user(),
        "reason": args.reason,
        "key_fingerprint": p.fingerprint(),
        "checked_against": against.display().to_string(),
        "outputs": outputs,
        "identifiers_revealed": x.subscribers.len(),
        "command": std::env::args().collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log = dir.join("reveals.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("cannot record the reveal in {}", log.display()))?;
    writeln!(f, "{record}")
        .with_context(|| format!("cannot record the reveal in {}", log.display()))?;
    f.sync_all()
        .with_context(|| format!("cannot record the reveal in {}", log.display()))?;
    Ok(record)
}

pub fn run(args: CdrArgs) -> Result<ExitCode> {
    let (p, identifiers) = pseudonymizer(&args)?;
    let against = check_reveal(&args, &p)?;
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    // Statements wait in temporary files on large logs.
    towerwatch_spill::check_temp_dir()?;
    let (r, x, seconds) = analyse(&args)?;
    // A reveal is on the record before anything shows a real identifier.
    let reveal = match &against {
        Some(a) => Some(record_reveal(&args, a, &p, &x)?),
        None => None,
    };
    if let Some(out) = &args.out {
        write_outputs(out, &r, &x, &p, args.cells.as_deref(), reveal.as_ref())?;
    }
    if !args.quiet {
        say!("{}", summary(&r, &x, seconds, identifiers, &p));
    }
    if args.strict && (r.rejected_count() > 0 || r.analytics.unanalysed_count > 0) {
        anyhow::bail!(
            "--strict: {} rejected lines, {} unparsable statements",
            r.rejected_count(),
            r.analytics.unanalysed_count
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Fails before the work when `dir` cannot take the outputs (created if missing, probed with a
/// file), so a long run does not end in "cannot write".
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let probe = dir.join(format!(".towerwatch-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").with_context(|| format!("cannot write into {}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
