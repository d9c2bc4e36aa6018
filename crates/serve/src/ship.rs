//! The shipper: evidence to a `towerwatch serve` — JSON Lines as events, text logs as their
//! lines, EVTX files and JSON documents as their records (read here, sent as events) — in
//! batches, each retried until the server acknowledges it. How far each file is acknowledged is kept in a state
//! file, so a shipper or a server that stops and starts again resumes where it was, and the
//! server's idempotent store makes a batch sent twice harmless. With `follow`, growing logs
//! are watched: only whole lines are sent, and a file replaced or truncated in place is
//! shipped again under a new name (`path#2`), since its line numbers start over.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use towerwatch_sources::{Format, Input, ReadOptions};

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
    /// Stopped (a signal) while a batch was still unacknowledged; it is sent next time.
    #[error("stopped before {input} from line {line} was acknowledged")]
    Stopped { input: String, line: u64 },
}

/// How far one file is shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// Lines (EVTX: records) acknowledged.
    pub line: u64,
    /// The bytes those lines take, for a plain text file (resumed by seeking); 0 otherwise.
    #[serde(default)]
    pub byte: u64,
    /// The file's size when it was last shipped to its end (0: not yet): unchanged means
    /// nothing new, without reading it.
    #[serde(default)]
    pub size: u64,
    /// The file's inode: another one at the same path is a new file.
    #[serde(default)]
    pub inode: u64,
    /// The file's device (with the inode, which file it is).
    #[serde(default)]
    pub device: u64,
    /// How many times the file was replaced or truncated (its events' source is `path#N`).
    #[serde(default)]
    pub generation: u32,
    /// The name its events have on the server when it is not this path's (a file that
    /// was moved here by a rotation keeps the name it was shipped under).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Offset {
    /// Where a file that starts over at the same path begins: nothing shipped, the next
    /// generation of its name.
    fn next_generation(&self) -> Offset {
        Offset {
            generation: self.generation + 1,
            ..Offset::default()
        }
    }

    /// The source name the server knows this file's events by.
    fn source(&self, path: &str) -> String {
        if let Some(s) = &self.source {
            return s.clone();
        }
        match self.generation {
            0 => path.to_string(),
            n => format!("{path}#{}", n + 1),
        }
    }
}

/// Offsets per file (by the path as shipped).
pub type Offsets = BTreeMap<String, Offset>;

/// Something the shipper tells its user about; none of them stops shipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The server, or the shipper, named a line (EVTX: a record) as no event.
    Rejected {
        source: String,
        line: u64,
        why: String,
    },
    /// A file not shipped (not a log towerwatch reads, unreadable).
    Skipped { path: String, why: String },
    /// A file replaced or truncated in place: shipped again from its start as `source`.
    Restarted { path: String, source: String },
}

/// What a run shipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    /// Files shipped (each counted once, however often it grew).
    pub files: usize,
    /// Lines (EVTX: records) acknowledged in this run.
    pub lines: u64,
    /// Files skipped.
    pub skipped: usize,
}

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

/// What a file holds, so which endpoint takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// JSON Lines, to `/api/v1/events` as they are.
    Events,
    /// A text log (W3C, PostgreSQL, access logs, Zeek, audit exports), to `/api/v1/lines`
    /// as written, read whole by the server.
    Lines,
    /// EVTX, or JSON documents (an array, pretty-printed objects): its records read here
    /// and sent to `/api/v1/events` as events, numbered in file order.
    Records,
}

/// What `path` holds, by its first bytes (decompressed); `Ok(None)` for an empty file (a
/// log not written yet).
pub fn content_of(path: &Path) -> Result<Option<Content>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let (reader, _) = towerwatch_sources::decompressed(file).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    reader
        .take(4096)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read: {e}"))?;
    if head.is_empty() {
        return Ok(None);
    }
    match towerwatch_sources::sniff(&head) {
        Format::JsonLines => Ok(Some(Content::Events)),
        Format::Evtx | Format::JsonDocuments => Ok(Some(Content::Records)),
        Format::Unknown => Err("not a log towerwatch reads".into()),
        _ => Ok(Some(Content::Lines)),
    }
}

impl Shipper {
    /// The offsets kept so far (none before the first run). A state file of an older
    /// shipper (lines only) is read too.
    pub fn offsets(&self) -> Result<Offsets, ShipError> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Kept {
            Lines(u64),
            Offset(Offset),
        }
        let bytes = match std::fs::read(&self.state) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
            Err(e) => {
                return Err(ShipError::Io(format!(
                    "cannot read {}: {e}",
                    self.state.display()
                )))
            }
        };
        let kept: BTreeMap<String, Kept> = serde_json::from_slice(&bytes).map_err(|e| {
            ShipError::Io(format!(
                "{} is not a ship state file: {e}",
                self.state.display()
            ))
        })?;
        Ok(kept
            .into_iter()
            .map(|(path, k)| match k {
                Kept::Lines(line) => (
                    path,
                    Offset {
                        line,
                        ..Offset::default()
                    },
                ),
                Kept::Offset(o) => (path, o),
            })
            .collect())
    }

    /// Ships `paths` (files and directories); with `follow`, keeps watching them (new files
    /// included) every `follow` until `stop` says so. Notes go to `note`.
    pub fn run(
        &self,
        paths: &[PathBuf],
        follow: Option<Duration>,
        stop: &dyn Fn() -> bool,
        note: &mut dyn FnMut(Note),
    ) -> Result<Shipped, ShipError> {
        let mut offsets = self.offsets()?;
        let mut shipped = Shipped::default();
        let mut seen = BTreeSet::new();
        let mut skipped = BTreeSet::new();
        // What was said already (a followed file that cannot be read now is tried again at
        // every look, and said once).
        let mut said = BTreeSet::new();
        loop {
            let (inputs, problems) = towerwatch_sources::discover(paths);
            for p in problems {
                let path = p.input.to_string();
                if follow.is_none() {
                    skipped.insert(path.clone());
                }
                say_once(
                    note,
                    &mut said,
                    Note::Skipped {
                        path,
                        why: p.message,
                    },
                );
            }
            for input in &inputs {
                let Input::File(path) = input else {
                    continue;
                };
                let name = path.display().to_string();
                if skipped.contains(&name) {
                    continue;
                }
                let content = match content_of(path) {
                    Ok(Some(c)) => c,
                    Ok(None) => continue,
                    // Followed, a file may be gone for a moment (rotated between the listing
                    // and the open) or not yet what it will be: looked at again next time.
                    Err(why) if follow.is_some() => {
                        let why = format!("{why} (tried again at the next look)");
                        say_once(note, &mut said, Note::Skipped { path: name, why });
                        continue;
                    }
                    Err(why) => {
                        skipped.insert(name.clone());
                        say_once(note, &mut said, Note::Skipped { path: name, why });
                        continue;
                    }
                };
                match self.ship_file(path, content, follow.is_some(), &mut offsets, stop, note) {
                    Ok(n) => {
                        seen.insert(name);
                        shipped.lines += n;
                    }
                    // A followed file may be gone or half-written for a moment: next look.
                    Err(ShipError::Io(why)) if follow.is_some() => say_once(
                        note,
                        &mut said,
                        Note::Skipped {
                            path: name,
                            why: format!("{why} (tried again at the next look)"),
                        },
                    ),
                    Err(e) => return Err(e),
                }
                if stop() {
                    break;
                }
            }
            shipped.files = seen.len();
            shipped.skipped = skipped.len();
            let Some(every) = follow else {
                return Ok(shipped);
            };
            let until = Instant::now() + every;
            while Instant::now() < until {
                if stop() {
                    return Ok(shipped);
                }
                std::thread::sleep(Duration::from_millis(50).min(every));
            }
        }
    }

    /// Ships what `path` holds past its acknowledged offset; returns how many lines (EVTX:
    /// records) were acknowledged now. `follow` leaves a last line without its newline for
    /// later (it is still being written).
    pub fn ship_file(
        &self,
        path: &Path,
        content: Content,
        follow: bool,
        offsets: &mut Offsets,
        stop: &dyn Fn() -> bool,
        note: &mut dyn FnMut(Note),
    ) -> Result<u64, ShipError> {
        let name = path.display().to_string();
        let io = |e: std::io::Error| ShipError::Io(format!("{name}: {e}"));
        let meta = std::fs::metadata(path).map_err(io)?;
        let size = meta.len();
        let (inode, device) = towerwatch_sources::inode_and_device(&meta);
        let mut at = offsets.get(&name).cloned().unwrap_or_default();
        if inode != 0 && at.inode != inode {
            if at.inode != 0 {
                // Another file is at this path now (a rotation): the one shipped from here
                // is kept aside by its inode, for the name it moved to.
                let mut away = at.clone();
                away.source = Some(at.source(&name));
                offsets.insert(format!("{name} (moved away, inode {})", at.inode), away);
                at = at.next_generation();
                note(Note::Restarted {
                    path: name.clone(),
                    source: at.source(&name),
                });
            }
            // A file shipped under another name (moved here by a rotation) goes on where
            // it was, under the name its events have on the server. Moved means its old
            // name no longer names it: a hard link is another file, shipped on its own
            // (taking the old name's place would ship the old name again from its start).
            let still_named = |k: &str| {
                std::fs::metadata(k)
                    .is_ok_and(|m| towerwatch_sources::inode_and_device(&m) == (inode, device))
            };
            let moved = offsets
                .iter()
                .find(|(k, o)| {
                    **k != name
                        && o.inode == inode
                        && o.device == device
                        && (k.contains(" (moved away, inode ") || !still_named(k))
                })
                .map(|(k, o)| (k.clone(), o.clone()));
            if let Some((old, mut was)) = moved {
                if old.contains(" (moved away, inode ") {
                    offsets.remove(&old);
                } else {
                    // The old name starts afresh when a file appears there again.
                    offsets.insert(old.clone(), was.next_generation());
                }
                was.source = Some(was.source(&old));
                at = was;
            }
        }
        let truncated = size < at.byte || (at.size != 0 && size < at.size);
        if truncated {
            at = at.next_generation();
            note(Note::Restarted {
                path: name.clone(),
                source: at.source(&name),
            });
        }
        at.device = device;
        at.inode = inode;
        if at.size != 0 && at.size == size {
            return Ok(0);
        }
        let mut batcher = Batcher {
            shipper: self,
            source: at.source(&name),
            name: name.clone(),
            offsets,
            at,
            stop,
            note,
            body: Vec::new(),
            first: 0,
            lines: 0,
            sent: 0,
        };
        match content {
            Content::Records => batcher.records(path)?,
            Content::Events | Content::Lines => batcher.text(path, content, follow, size)?,
        }
        Ok(batcher.sent)
    }

    /// Posts one batch until the server acknowledges it (retries back off to 5 s).
    fn send(
        &self,
        content: Content,
        source: &str,
        first: u64,
        batch: &[u8],
        stop: &dyn Fn() -> bool,
        note: &mut dyn FnMut(Note),
    ) -> Result<(), ShipError> {
        let path = match content {
            Content::Events | Content::Records => "events",
            Content::Lines => "lines",
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
                .send(batch);
            match reply {
                Ok(mut r) => {
                    let text = r.body_mut().read_to_string().unwrap_or_default();
                    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                    for bad in body["rejected"].as_array().into_iter().flatten() {
                        note(Note::Rejected {
                            source: source.to_string(),
                            line: bad["line"].as_u64().unwrap_or(0),
                            why: bad["error"].as_str().unwrap_or("rejected").to_string(),
                        });
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
                    if stop() {
                        return Err(ShipError::Stopped {
                            input: source.to_string(),
                            line: first,
                        });
                    }
                    if started.elapsed() > self.retry_for {
                        return Err(ShipError::Unreachable {
                            url,
                            input: source.to_string(),
                            line: first,
                            why: e.to_string(),
                        });
                    }
                    // A refusal to go faster says when to come back.
                    let asked = match &e {
                        ureq::Error::StatusCode(429) => Some(Duration::from_secs(1)),
                        _ => None,
                    };
                    std::thread::sleep(asked.unwrap_or(wait));
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

/// Tells `note` of `n` unless it was told already.
fn say_once(note: &mut dyn FnMut(Note), said: &mut BTreeSet<String>, n: Note) {
    if said.insert(format!("{n:?}")) {
        note(n);
    }
}

/// One file's lines gathered into batches; each acknowledged batch moves the offset.
struct Batcher<'a> {
    shipper: &'a Shipper,
    /// The file as named in the offsets.
    name: String,
    /// The name its events have on the server.
    source: String,
    offsets: &'a mut Offsets,
    at: Offset,
    stop: &'a dyn Fn() -> bool,
    note: &'a mut dyn FnMut(Note),
    body: Vec<u8>,
    /// The first line in `body`, and how many it holds.
    first: u64,
    lines: u64,
    /// Lines acknowledged in this call.
    sent: u64,
}

impl Batcher<'_> {
    /// Adds line `line` (with its newline) to the batch, without sending it.
    fn append(&mut self, line: u64, text: &[u8]) {
        if self.lines == 0 {
            self.first = line;
        }
        self.body.extend_from_slice(text);
        if !text.ends_with(b"\n") {
            self.body.push(b'\n');
        }
        self.lines += 1;
    }

    /// Adds line `line`; sends when the batch is full.
    fn push(&mut self, content: Content, line: u64, text: &[u8]) -> Result<(), ShipError> {
        self.append(line, text);
        if self.lines as usize >= self.shipper.batch {
            self.flush(content, line, self.at.byte)?;
        }
        Ok(())
    }

    /// Keeps the offset reached, in the state file.
    fn keep(&mut self) -> Result<(), ShipError> {
        self.offsets.insert(self.name.clone(), self.at.clone());
        self.shipper.save(self.offsets)
    }

    /// Sends what is gathered (if anything) and records `line`/`byte` as acknowledged.
    fn flush(&mut self, content: Content, line: u64, byte: u64) -> Result<(), ShipError> {
        if self.lines > 0 {
            self.shipper.send(
                content,
                &self.source,
                self.first,
                &self.body,
                self.stop,
                &mut *self.note,
            )?;
            self.sent += self.lines;
            self.body.clear();
            self.lines = 0;
        }
        self.at.line = line;
        self.at.byte = byte;
        self.keep()
    }

    /// A text file's lines (JSON Lines or a text log) past the offset.
    fn text(
        &mut self,
        path: &Path,
        content: Content,
        follow: bool,
        size: u64,
    ) -> Result<(), ShipError> {
        let io = |e: std::io::Error| ShipError::Io(format!("{}: {e}", path.display()));
        let mut file = std::fs::File::open(path).map_err(io)?;
        let (reader, compression) =
            towerwatch_sources::decompressed(file.try_clone().map_err(io)?).map_err(io)?;
        // A plain file resumes by seeking; a compressed one is read again past the offset.
        let (mut reader, mut line, skip_to): (Box<dyn BufRead>, u64, u64) =
            if compression.is_none() && self.at.byte > 0 {
                drop(reader);
                file.seek(SeekFrom::Start(self.at.byte)).map_err(io)?;
                (
                    Box::new(BufReader::with_capacity(256 * 1024, file)),
                    self.at.line,
                    self.at.line,
                )
            } else {
                (Box::new(reader), 0, self.at.line)
            };
        let mut byte = if line > 0 { self.at.byte } else { 0 };
        let mut buf = Vec::new();
        // A last line without its newline: still being written, or the file's true end.
        let mut unfinished = None;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| ShipError::Io(format!("{}:{}: {e}", path.display(), line + 1)))?;
            if n == 0 {
                break;
            }
            if !buf.ends_with(b"\n") {
                unfinished = Some(std::mem::take(&mut buf));
                break;
            }
            line += 1;
            byte += n as u64;
            if line <= skip_to {
                continue;
            }
            if compression.is_none() {
                self.at.byte = byte;
            }
            let held = std::mem::take(&mut buf);
            let text = self.checked(line, &held);
            self.push(content, line, text)?;
            buf = held;
        }
        let byte = if compression.is_none() { byte } else { 0 };
        // Without --follow the unfinished line is sent (the evidence may end so), but the
        // offset stays before it: a later run sends it again, whole or not, under the same
        // number, which the server already holds (never split into two lines).
        let ended = unfinished.is_none();
        let tail = match unfinished {
            Some(text) if !follow && line + 1 > skip_to => Some(text),
            _ => None,
        };
        if let Some(text) = &tail {
            let text = self.checked(line + 1, text);
            self.append(line + 1, text);
        }
        if line > self.at.line || self.lines > 0 {
            self.flush(content, line, byte)?;
        }
        if ended {
            // Read to its end: unchanged from now on means nothing new.
            self.at.size = if compression.is_none() { byte } else { size };
            self.keep()?;
        }
        Ok(())
    }

    /// A text file's line as it is sent: as it is (a blank one too, so the lines after it
    /// keep their numbers on the server); a line that is not UTF-8 is named and sent empty.
    fn checked<'t>(&mut self, line: u64, text: &'t [u8]) -> &'t [u8] {
        if std::str::from_utf8(text).is_ok() {
            return text;
        }
        (self.note)(Note::Rejected {
            source: self.source.clone(),
            line,
            why: "not UTF-8: sent empty".into(),
        });
        b""
    }

    /// An EVTX file's (or JSON document's) records past the offset, read with the hunt's
    /// reader (an EVTX file's damaged chunks carved) and sent as events in file order.
    fn records(&mut self, path: &Path) -> Result<(), ShipError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let options = ReadOptions {
            cancel: Some(cancel.clone()),
            ..ReadOptions::default()
        };
        let skip_to = self.at.line;
        let mut index = 0u64;
        let mut failed = None;
        let report = towerwatch_sources::read_input(
            &Input::File(path.to_path_buf()),
            &options,
            &mut |item| {
                if failed.is_some() {
                    return;
                }
                match item {
                    Ok(event) => {
                        index += 1;
                        if index <= skip_to {
                            return;
                        }
                        let mut text =
                            serde_json::to_vec(&event.dump_json()).expect("an event serialises");
                        text.push(b'\n');
                        if let Err(e) = self.push(Content::Records, index, &text) {
                            failed = Some(e);
                            cancel.store(true, Ordering::SeqCst);
                        }
                    }
                    Err(e) => (self.note)(Note::Rejected {
                        source: self.source.clone(),
                        line: index + 1,
                        why: e.to_string(),
                    }),
                }
            },
        );
        if let Some(e) = failed {
            return Err(e);
        }
        if let Some(why) = report.failure {
            return Err(ShipError::Io(format!("{}: {why}", path.display())));
        }
        // Read to its end: kept with the last batch's offset.
        self.at.size = report.bytes;
        self.flush(Content::Records, index.max(skip_to), 0)
    }
}
