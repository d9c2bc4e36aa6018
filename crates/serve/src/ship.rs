//! The shipper: evidence to a `towerwatch serve` (JSON Lines as events, text logs as their
//! lines, each to its endpoint), in batches, each retried until
//! the server acknowledges it; how far each file is acknowledged is kept in a state file, so
//! a shipper or a server that stops and starts again resumes where it was, and the server's
//! idempotent store makes a batch sent twice harmless.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why shipping stopped.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error("{0}")]
    Io(String),
    /// A refusal a retry cannot change (a bad token, a bad request).
    #[error("{url} refused the batch of {input} from line {line}: HTTP {status}")]
    Refused {
        url: String,
        input: String,
        line: u64,
        status: u16,
    },
    /// The server did not take a batch for the whole retry period.
    #[error("{url} did not take the batch of {input} from line {line}: {why}")]
    Unreachable {
        url: String,
        input: String,
        line: u64,
        why: String,
    },
}

/// Lines acknowledged per file (by the path as shipped).
pub type Offsets = BTreeMap<String, u64>;

/// Where and how to ship.
pub struct Shipper {
    /// The server, e.g. `http://127.0.0.1:8480`.
    pub to: String,
    /// A token with the ingest role.
    pub token: String,
    /// The state file of acknowledged offsets.
    pub state: PathBuf,
    /// Lines per request.
    pub batch: usize,
    /// How long to keep retrying a batch the server does not take.
    pub retry_for: Duration,
}

impl Shipper {
    /// The offsets kept so far (none before the first run).
    pub fn offsets(&self) -> Result<Offsets, ShipError> {
        match std::fs::read(&self.state) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                ShipError::Io(format!(
                    "{} is not a ship state file: {e}",
                    self.state.display()
                ))
            }),
            Err(_) => Ok(Offsets::new()),
        }
    }

    /// Ships the lines of `path` after its acknowledged offset; returns how many were
    /// acknowledged now. `rejected` hears of lines the server named as no event.
    pub fn ship_file(
        &self,
        path: &Path,
        endpoint: Endpoint,
        offsets: &mut Offsets,
        rejected: &mut dyn FnMut(&str, u64, &str),
    ) -> Result<u64, ShipError> {
        let source = path.display().to_string();
        let done = offsets.get(&source).copied().unwrap_or(0);
        let io = |e: std::io::Error| ShipError::Io(format!("{source}: {e}"));
        let file = std::fs::File::open(path).map_err(io)?;
        let (reader, _) = towerwatch_sources::decompressed(file).map_err(io)?;
        let mut lines = BufReader::new(reader).lines();
        let mut line_no = 0u64;
        let mut sent = 0u64;
        loop {
            let mut batch = String::new();
            let first = line_no + 1;
            let mut n = 0;
            while n < self.batch {
                let Some(line) = lines.next() else { break };
                let line =
                    line.map_err(|e| ShipError::Io(format!("{source}:{}: {e}", line_no + 1)))?;
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
            self.send(endpoint, &source, first, &batch, rejected)?;
            sent += n as u64;
            offsets.insert(source.clone(), line_no);
            self.save(offsets)?;
        }
    }

    /// Posts one batch until the server acknowledges it (retries back off to 5 s).
    fn send(
        &self,
        endpoint: Endpoint,
        source: &str,
        first: u64,
        batch: &str,
        rejected: &mut dyn FnMut(&str, u64, &str),
    ) -> Result<(), ShipError> {
        let path = match endpoint {
            Endpoint::Events => "events",
            Endpoint::Lines => "lines",
        };
        let url = format!("{}/api/v1/{path}", self.to.trim_end_matches('/'));
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            let reply = ureq::post(&url)
                .query("source", source)
                .query("first_line", first.to_string())
                .header("Authorization", format!("Bearer {}", self.token))
                .header("Content-Type", "application/x-ndjson")
                .send(batch.as_bytes());
            match reply {
                Ok(mut r) => {
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    for bad in body["rejected"].as_array().into_iter().flatten() {
                        rejected(
                            source,
                            bad["line"].as_u64().unwrap_or(0),
                            bad["error"].as_str().unwrap_or("rejected"),
                        );
                    }
                    return Ok(());
                }
                Err(ureq::Error::StatusCode(status @ (400 | 401 | 403 | 413))) => {
                    return Err(ShipError::Refused {
                        url,
                        input: source.to_string(),
                        line: first,
                        status,
                    })
                }
                Err(e) => {
                    if started.elapsed() > self.retry_for {
                        return Err(ShipError::Unreachable {
                            url,
                            input: source.to_string(),
                            line: first,
                            why: e.to_string(),
                        });
                    }
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Writes the offsets whole (a new file renamed over the old one).
    fn save(&self, offsets: &Offsets) -> Result<(), ShipError> {
        let bytes = serde_json::to_vec_pretty(offsets).expect("offsets serialise");
        towerwatch_report::write_whole(&self.state, &bytes)
            .map_err(|e| ShipError::Io(format!("cannot write {}: {e}", self.state.display())))
    }
}

/// Where a file's lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/v1/events`: one JSON event per line.
    Events,
    /// `/api/v1/lines`: a text log's lines as written, read whole by the server.
    Lines,
}

/// Which endpoint takes `path`, by what its first bytes are (decompressed): JSON Lines are
/// events, text logs (W3C, PostgreSQL, access logs, Zeek, audit exports) their lines.
/// EVTX and JSON documents are not shipped yet (`Err` says why).
pub fn endpoint_of(path: &Path) -> Result<Endpoint, String> {
    use std::io::Read;
    use towerwatch_sources::Format;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let (reader, _) = towerwatch_sources::decompressed(file).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    reader
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    match towerwatch_sources::sniff(&head) {
        Format::JsonLines => Ok(Endpoint::Events),
        Format::Evtx => Err("EVTX is not shipped yet: hunt it, or export it as JSON Lines".into()),
        Format::JsonDocuments => {
            Err("JSON documents are not shipped yet: one event per line is".into())
        }
        Format::Unknown => Err("not a log towerwatch reads".into()),
        _ => Ok(Endpoint::Lines),
    }
}
