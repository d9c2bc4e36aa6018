//! Shipping evidence to the events stream: every file read with the hunt's own reader
//! (EVTX, JSON, text logs, compressed or not), its events published on their host's subject,
//! up to [`wire::PER_MESSAGE`] in a message, each with its identity. How many events of each file
//! JetStream has stored is kept in a state file, so a shipper stopped (or cut off from NATS
//! for longer than it retries) resumes where it was. A message sent twice is stored once (its
//! id is its first event's identity and its length); an event that reaches the workers
//! twice all the same is kept once by the story builder, which keeps facts by identity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::mpsc;
use towerwatch_sources::{discover, read_input, Input, ReadOptions};

use crate::publish::{store_all, Outgoing, Pending};
use crate::wire;
use crate::FleetError;

/// Events read between two publishes: all of them are stored before the state file says
/// so, so that it always names a prefix of the file.
const FLUSH_EVENTS: u64 = 10_000;

/// Where and how to ship.
pub struct NatsShipper {
    /// The state file: events stored, per file.
    pub state: PathBuf,
    /// How long to keep publishing an event JetStream does not store (it may be restarting).
    pub retry_for: Duration,
}

/// Something the shipper tells its user about; none of them stops shipping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A record that is no event, with where it is (all are counted).
    Rejected(String),
    /// A file not shipped.
    Skipped { path: String, why: String },
    /// A file replaced or truncated in place: shipped again from its start as `source`.
    Restarted { path: String, source: String },
}

/// What a run shipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    pub files: usize,
    /// Events stored by JetStream in this run.
    pub events: u64,
    /// Of those, events it held already (the same identity: shipped before, by a shipper
    /// whose state was lost, or the same file reached by another path).
    pub duplicates: u64,
    pub rejected: u64,
    pub skipped: usize,
    /// The run stopped (a signal) with its state kept.
    pub stopped: bool,
}

/// How far one file is shipped, and which file it was.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shipment {
    /// Events JetStream stored.
    pub events: u64,
    /// The file's size, inode and device when it was last shipped: another inode at the
    /// path, or a smaller size, is a new file.
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub inode: u64,
    #[serde(default)]
    pub device: u64,
    /// How many times the file was replaced or truncated in place: its events are then
    /// `path#N` (N = generation + 1), with identities of their own.
    #[serde(default)]
    pub generation: u32,
    /// The file was read to its end (not stopped, not cut short by an error): unchanged
    /// since (same file, same size), it holds nothing new and is not read again.
    #[serde(default)]
    pub complete: bool,
}

/// A state file's entry: a shipment, or (as first written) only the events stored.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Kept {
    Shipment(Shipment),
    Events(u64),
}

impl Shipment {
    /// Where shipping `meta`'s file starts: after the events stored, unless it is another
    /// file than the one shipped (replaced, or truncated in place), which starts over as
    /// the next generation.
    fn resumed(&self, meta: &std::fs::Metadata) -> (Shipment, bool) {
        let (inode, device) = towerwatch_sources::inode_and_device(meta);
        let other_file = self.inode != 0 && (inode, device) != (self.inode, self.device);
        let replaced = other_file || meta.len() < self.size;
        let at = Shipment {
            events: if replaced { 0 } else { self.events },
            size: meta.len(),
            inode,
            device,
            generation: self.generation + u32::from(replaced),
            complete: false,
        };
        (at, replaced)
    }

    /// Read to its end before, and the same file of the same size still.
    fn unchanged(&self, meta: &std::fs::Metadata) -> bool {
        self.complete
            && self.inode != 0
            && towerwatch_sources::inode_and_device(meta) == (self.inode, self.device)
            && meta.len() == self.size
    }

    /// The name the events of `path` carry in this generation.
    fn source(&self, path: &str) -> String {
        match self.generation {
            0 => path.to_string(),
            n => format!("{path}#{}", n + 1),
        }
    }
}

enum Item {
    Event(towerwatch_event::Event),
    Rejected(String),
}

impl NatsShipper {
    fn offsets(&self) -> Result<BTreeMap<String, Shipment>, FleetError> {
        match std::fs::read(&self.state) {
            Ok(b) => serde_json::from_slice::<BTreeMap<String, Kept>>(&b)
                .map(|kept| {
                    kept.into_iter()
                        .map(|(k, v)| match v {
                            Kept::Shipment(s) => (k, s),
                            Kept::Events(events) => (
                                k,
                                Shipment {
                                    events,
                                    ..Shipment::default()
                                },
                            ),
                        })
                        .collect()
                })
                .map_err(|e| {
                    FleetError::Io(format!(
                        "{} is not a ship state file: {e}",
                        self.state.display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(FleetError::Io(format!(
                "cannot read {}: {e}",
                self.state.display()
            ))),
        }
    }

    fn save(&self, offsets: &BTreeMap<String, Shipment>) -> Result<(), FleetError> {
        let tmp = self.state.with_extension("tmp");
        let text = serde_json::to_vec_pretty(offsets).expect("offsets serialise");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.state))
            .map_err(|e| FleetError::Io(format!("cannot write {}: {e}", self.state.display())))
    }

    /// Ships `paths` (files and directories) once.
    pub async fn run(
        &self,
        js: &jetstream::Context,
        paths: &[PathBuf],
        stop: &(dyn Fn() -> bool + Sync),
        note: &mut dyn FnMut(Note),
    ) -> Result<Shipped, FleetError> {
        crate::streams(js).await?;
        let (mut offsets, mut shipped) = (self.offsets()?, Shipped::default());
        self.pass(js, paths, false, &mut offsets, stop, note, &mut shipped)
            .await?;
        Ok(shipped)
    }

    /// Ships `paths`, then looks again every `poll` until `stop` says so: what was added
    /// to a file (whole lines: a text file is left until it ends with a line break) and
    /// new files are shipped as they come; a file unchanged since is not read again.
    pub async fn follow(
        &self,
        js: &jetstream::Context,
        paths: &[PathBuf],
        poll: Duration,
        stop: &(dyn Fn() -> bool + Sync),
        note: &mut dyn FnMut(Note),
    ) -> Result<Shipped, FleetError> {
        crate::streams(js).await?;
        // The state is read once: from then on this shipper is the one writing it.
        let (mut offsets, mut shipped) = (self.offsets()?, Shipped::default());
        loop {
            self.pass(js, paths, true, &mut offsets, stop, note, &mut shipped)
                .await?;
            if shipped.stopped {
                return Ok(shipped);
            }
            let until = tokio::time::Instant::now() + poll;
            while tokio::time::Instant::now() < until {
                if stop() {
                    shipped.stopped = true;
                    return Ok(shipped);
                }
                tokio::time::sleep(Duration::from_millis(50).min(poll)).await;
            }
        }
    }

    /// One look at `paths`: every file with something new shipped.
    #[allow(clippy::too_many_arguments)]
    async fn pass(
        &self,
        js: &jetstream::Context,
        paths: &[PathBuf],
        follow: bool,
        offsets: &mut BTreeMap<String, Shipment>,
        stop: &(dyn Fn() -> bool + Sync),
        note: &mut dyn FnMut(Note),
        shipped: &mut Shipped,
    ) -> Result<(), FleetError> {
        let (inputs, problems) = discover(paths);
        // (Followed, what cannot be read is said once, not at every look.)
        let first = shipped.files == 0 && shipped.skipped == 0;
        shipped.files = inputs.len();
        for p in problems.into_iter().filter(|_| first) {
            shipped.skipped += 1;
            note(Note::Skipped {
                path: p.input.to_string(),
                why: p.message,
            });
        }
        for input in inputs {
            let Input::File(path) = &input else {
                if !first {
                    continue;
                }
                shipped.skipped += 1;
                note(Note::Skipped {
                    path: input.name(),
                    why: "standard input is not shipped to NATS".into(),
                });
                continue;
            };
            let name = path.display().to_string();
            let was = offsets.get(&name).cloned();
            let stopped = self
                .ship_file(js, path, follow, offsets, shipped, stop, note)
                .await;
            // (A file left as it was leaves the state file as it was: followed, most are.)
            if offsets.get(&name) != was.as_ref() {
                self.save(offsets)?;
            }
            if stopped? {
                shipped.stopped = true;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Stores `messages`, and gives how many events JetStream held already.
    async fn store(
        &self,
        js: &jetstream::Context,
        messages: Vec<Outgoing>,
    ) -> Result<u64, FleetError> {
        let held = store_all(js, None, messages, Some(self.retry_for)).await?;
        Ok(crate::publish::events_in(&held))
    }

    /// Ships one file past the events stored before; true when stopped.
    #[allow(clippy::too_many_arguments)]
    async fn ship_file(
        &self,
        js: &jetstream::Context,
        path: &Path,
        follow: bool,
        offsets: &mut BTreeMap<String, Shipment>,
        shipped: &mut Shipped,
        stop: &(dyn Fn() -> bool + Sync),
        note: &mut dyn FnMut(Note),
    ) -> Result<bool, FleetError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| FleetError::Io(format!("cannot read {name}: {e}")))?;
        let before = match offsets.get(&name) {
            Some(b) => b.clone(),
            // A file new to this path may be one shipped under another name (rotated: the
            // old name is gone, or another file now): where it was goes with it, so its
            // events are not shipped twice. (A hard link, whose other name is still that
            // file, is another file to the shipper.)
            None => renamed(offsets, &meta).unwrap_or_default(),
        };
        // Nothing new; or, followed, a line still being written: looked at next time.
        if before.unchanged(&meta) || (follow && !ends_whole(path, &meta)) {
            return Ok(false);
        }
        let (mut at, replaced) = before.resumed(&meta);
        let source = at.source(&name);
        if replaced {
            note(Note::Restarted {
                path: name.clone(),
                source: source.clone(),
            });
        }
        // Another generation of a file is another file: identities of its own, so that
        // neither JetStream nor the story builder takes its records for the old one's.
        let scope = match at.generation {
            0 => crate::wire::scope_of(path),
            // NUL is in no path: no file's scope is another's generation.
            g => format!("{}\0{}", crate::wire::scope_of(path), g + 1),
        };
        let done = at.events;
        let renamed: Option<std::sync::Arc<str>> = (at.generation > 0).then(|| source.into());
        let (tx, mut rx) = mpsc::channel::<Item>(4096);
        let input = Input::File(path.to_path_buf());
        // The reader runs on a thread of its own; a full channel holds it back.
        let reader = tokio::task::spawn_blocking(move || {
            let mut n = 0u64;
            read_input(&input, &ReadOptions::default(), &mut |item| match item {
                Ok(e) => {
                    n += 1;
                    if n > done {
                        let _ = tx.blocking_send(Item::Event(e));
                    }
                }
                // (One before where shipping resumes was reported when it was read.)
                Err(e) if n >= done => {
                    let _ = tx.blocking_send(Item::Rejected(e.to_string()));
                }
                Err(_) => {}
            })
        });
        let mut stored = done;
        let mut saved = done;
        let mut pending = Pending::default();
        let mut stopped = false;
        while let Some(item) = rx.recv().await {
            let mut e = match item {
                Item::Event(e) => e,
                Item::Rejected(what) => {
                    shipped.rejected += 1;
                    note(Note::Rejected(what));
                    continue;
                }
            };
            if let Some(source) = &renamed {
                e.origin.source = source.clone();
            }
            if let Err(too_large) = pending.push(wire::identity(&scope, e.origin.locator), &e) {
                // Counted with the events passed (so that shipping resumes after it), said,
                // and not sent: no message may hold it.
                shipped.rejected += 1;
                let at = match e.origin.locator {
                    towerwatch_event::Locator::Record(r) => format!("record {r}"),
                    towerwatch_event::Locator::Line(l) => format!("line {l}"),
                };
                note(Note::Rejected(format!(
                    "{name}: {at}: an event of {} bytes, over the {} a message may hold: not shipped",
                    too_large.0,
                    wire::MAX_MESSAGE
                )));
            }
            if pending.events >= FLUSH_EVENTS {
                let (messages, n) = pending.take();
                shipped.duplicates += self.store(js, messages).await?;
                stored += n;
                shipped.events += n;
                if stored - saved >= FLUSH_EVENTS {
                    at.events = stored;
                    offsets.insert(name.clone(), at.clone());
                    self.save(offsets)?;
                    saved = stored;
                }
            }
            if stop() {
                stopped = true;
                break;
            }
        }
        drop(rx);
        let (messages, n) = pending.take();
        shipped.duplicates += self.store(js, messages).await?;
        stored += n;
        shipped.events += n;
        at.events = stored;
        let report = reader
            .await
            .map_err(|e| FleetError::Io(format!("{name}: the reader stopped: {e}")))?;
        at.complete = !stopped && report.failure.is_none();
        offsets.insert(name.clone(), at);
        if let Some(why) = report.failure {
            if !stopped {
                note(Note::Skipped {
                    path: name,
                    why: format!("read in part: {why}"),
                });
            }
        }
        Ok(stopped)
    }
}

/// Whether a followed file ends where a record does: a text file with a line break (a
/// last line without one may still be being written), a binary one (EVTX, compressed) at
/// any size.
fn ends_whole(path: &Path, meta: &std::fs::Metadata) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    if meta.len() == 0 {
        return true;
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        // Read (and its error reported) as any file is.
        return true;
    };
    let mut head = [0u8; 4];
    let got = f.read(&mut head).unwrap_or(0);
    let binary = matches!(
        &head[..got],
        [b'E', b'l', b'f', b'F'] | [0x1f, 0x8b, ..] | [0x28, 0xb5, 0x2f, 0xfd]
    );
    let mut last = [0u8; 1];
    binary
        || (f.seek(SeekFrom::End(-1)).is_ok()
            && f.read_exact(&mut last).is_ok()
            && last[0] == b'\n')
}

/// The shipment of the file `meta` describes under another name, which no longer names it.
fn renamed(offsets: &BTreeMap<String, Shipment>, meta: &std::fs::Metadata) -> Option<Shipment> {
    let file = towerwatch_sources::inode_and_device(meta);
    offsets
        .iter()
        .filter(|(_, s)| s.inode != 0 && (s.inode, s.device) == file)
        .find(|(old, _)| {
            std::fs::metadata(old)
                .map_or(true, |m| towerwatch_sources::inode_and_device(&m) != file)
        })
        .map(|(_, s)| s.clone())
}
