//! `towerwatch ship`: JSON Lines evidence to a `towerwatch serve`, in batches, each retried
//! until the server acknowledges it; how far each file is acknowledged is kept in a state
//! file, so a shipper or a server that stops and starts again resumes where it was, and the
//! server's idempotent store makes a batch sent twice harmless.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::term::{complainln, sayln};
use crate::ShipArgs;

/// Lines acknowledged per file (by the path as shipped).
type Offsets = BTreeMap<String, u64>;

pub fn run(args: ShipArgs) -> Result<ExitCode> {
    let token = match (&args.token, std::env::var("TOWERWATCH_TOKEN")) {
        (Some(t), _) => t.clone(),
        (None, Ok(t)) => t,
        (None, Err(_)) => bail!("a token is needed: --token or TOWERWATCH_TOKEN"),
    };
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| PathBuf::from("towerwatch-ship.offsets.json"));
    let mut offsets: Offsets = match std::fs::read(&state) {
        Ok(b) => serde_json::from_slice(&b)
            .with_context(|| format!("{} is not a ship state file", state.display()))?,
        Err(_) => Offsets::new(),
    };
    let (inputs, problems) = towerwatch_sources::discover(&args.paths);
    for p in &problems {
        complainln!("towerwatch ship: {p}");
    }
    let (mut files, mut lines_sent) = (0, 0u64);
    for input in &inputs {
        let towerwatch_sources::Input::File(path) = input else {
            complainln!("towerwatch ship: stdin is not shipped (give files)");
            continue;
        };
        if !is_json_lines(path) {
            complainln!(
                "towerwatch ship: {} skipped: only JSON Lines are shipped yet",
                path.display()
            );
            continue;
        }
        files += 1;
        lines_sent += ship_file(path, &args, &token, &state, &mut offsets)?;
    }
    sayln!(
        "towerwatch ship: {files} files, {lines_sent} lines acknowledged by {}",
        args.to
    );
    Ok(ExitCode::SUCCESS)
}

fn is_json_lines(p: &Path) -> bool {
    let name = p.to_string_lossy().to_ascii_lowercase();
    let name = name
        .strip_suffix(".gz")
        .or_else(|| name.strip_suffix(".zst"))
        .unwrap_or(&name);
    name.ends_with(".jsonl") || name.ends_with(".ndjson")
}

/// Ships the lines of `path` after its acknowledged offset; returns how many were sent.
fn ship_file(
    path: &Path,
    args: &ShipArgs,
    token: &str,
    state: &Path,
    offsets: &mut Offsets,
) -> Result<u64> {
    let source = path.display().to_string();
    let done = offsets.get(&source).copied().unwrap_or(0);
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {source}"))?;
    let (reader, _) =
        towerwatch_sources::decompressed(file).with_context(|| format!("cannot read {source}"))?;
    let mut lines = BufReader::new(reader).lines();
    let mut line_no = 0u64;
    let mut sent = 0u64;
    loop {
        let mut batch = String::new();
        let first = line_no + 1;
        let mut n = 0;
        while n < args.batch {
            let Some(line) = lines.next() else { break };
            let line = line.with_context(|| format!("{source}:{}", line_no + 1))?;
            line_no += 1;
            if line_no <= done {
                continue;
            }
            batch.push_str(&line);
            batch.push('\n');
            n += 1;
        }
        if n == 0 {
            return Ok(sent);
        }
        // The batch's first line is the first one not yet acknowledged.
        let first = first.max(done + 1);
        send(args, token, &source, first, &batch)?;
        sent += n as u64;
        offsets.insert(source.clone(), line_no);
        save(state, offsets)?;
    }
}

/// Posts one batch until the server acknowledges it (retries back off to 5 s, for at most
/// `--retry-for`).
fn send(args: &ShipArgs, token: &str, source: &str, first: u64, batch: &str) -> Result<()> {
    let url = format!("{}/api/v1/events", args.to.trim_end_matches('/'));
    let started = Instant::now();
    let mut wait = Duration::from_millis(200);
    loop {
        let reply = ureq::post(&url)
            .query("source", source)
            .query("first_line", first.to_string())
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/x-ndjson")
            .send(batch.as_bytes());
        match reply {
            Ok(mut r) => {
                let text = r.body_mut().read_to_string().unwrap_or_default();
                let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                for bad in body["rejected"].as_array().into_iter().flatten() {
                    complainln!(
                        "towerwatch ship: {source}:{}: {}",
                        bad["line"],
                        bad["error"].as_str().unwrap_or("rejected")
                    );
                }
                return Ok(());
            }
            // A refusal that a retry cannot change (bad token, bad request) stops the run.
            Err(ureq::Error::StatusCode(code @ (400 | 401 | 403 | 413))) => {
                bail!("{url} refused the batch of {source} from line {first}: HTTP {code}")
            }
            Err(e) => {
                if started.elapsed() > Duration::from_secs(args.retry_for) {
                    bail!("{url} did not take the batch of {source} from line {first}: {e}");
                }
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Writes the offsets whole (a new file renamed over the old one).
fn save(state: &Path, offsets: &Offsets) -> Result<()> {
    towerwatch_report::write_whole(state, &serde_json::to_vec_pretty(offsets)?)
        .with_context(|| format!("cannot write {}", state.display()))
}
