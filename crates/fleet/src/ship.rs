//! Shipping evidence to the events stream: every file read with the hunt's own reader
//! (EVTX, JSON, text logs, compressed or not), each event published on its host's subject
//! with its identity as the message id. How many events of each file JetStream has stored
//! is kept in a state file, so a shipper stopped (or cut off from NATS for longer than it
//! retries) resumes where it was; an event sent twice is stored once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::mpsc;
use towerwatch_sources::{discover, read_input, Input, ReadOptions};

use crate::publish::{store_all, Outgoing};
use crate::FleetError;

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
}

/// What a run shipped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shipped {
    pub files: usize,
    /// Events stored by JetStream in this run.
    pub events: u64,
    pub rejected: u64,
    pub skipped: usize,
    /// The run stopped (a signal) with its state kept.
    pub stopped: bool,
}

enum Item {
    Event(towerwatch_event::Event),
    Rejected(String),
}

impl NatsShipper {
    fn offsets(&self) -> Result<BTreeMap<String, u64>, FleetError> {
        match std::fs::read(&self.state) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
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

    fn save(&self, offsets: &BTreeMap<String, u64>) -> Result<(), FleetError> {
        let tmp = self.state.with_extension("tmp");
        let text = serde_json::to_vec_pretty(offsets).expect("offsets serialise");
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, &self.state))
            .map_err(|e| FleetError::Io(format!("cannot write {}: {e}", self.state.display())))
    }

    /// Ships `paths` (files and directories).
    pub async fn run(
        &self,
        js: &jetstream::Context,
        paths: &[PathBuf],
        stop: &(dyn Fn() -> bool + Sync),
        note: &mut dyn FnMut(Note),
    ) -> Result<Shipped, FleetError> {
        crate::streams(js).await?;
        let mut offsets = self.offsets()?;
        let mut shipped = Shipped::default();
        let (inputs, problems) = discover(paths);
        for p in problems {
            shipped.skipped += 1;
            note(Note::Skipped {
                path: p.input.to_string(),
                why: p.message,
            });
        }
        for input in inputs {
            let Input::File(path) = &input else {
                shipped.skipped += 1;
                note(Note::Skipped {
                    path: input.name(),
                    why: "standard input is not shipped to NATS".into(),
                });
                continue;
            };
            shipped.files += 1;
            let stopped = self
                .ship_file(js, path, &mut offsets, &mut shipped, stop, note)
                .await;
            self.save(&offsets)?;
            if stopped? {
                shipped.stopped = true;
                return Ok(shipped);
            }
        }
        Ok(shipped)
    }

    /// Ships one file past the events stored before; true when stopped.
    async fn ship_file(
        &self,
        js: &jetstream::Context,
        path: &Path,
        offsets: &mut BTreeMap<String, u64>,
        shipped: &mut Shipped,
        stop: &(dyn Fn() -> bool + Sync),
        note: &mut dyn FnMut(Note),
    ) -> Result<bool, FleetError> {
        let name = path.display().to_string();
        let scope = crate::wire::scope_of(path);
        let done = offsets.get(&name).copied().unwrap_or(0);
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
                Err(e) => {
                    let _ = tx.blocking_send(Item::Rejected(e.to_string()));
                }
            })
        });
        let mut stored = done;
        let mut saved = done;
        let mut pending: Vec<Outgoing> = Vec::with_capacity(crate::IN_FLIGHT);
        let mut stopped = false;
        while let Some(item) = rx.recv().await {
            let e = match item {
                Item::Event(e) => e,
                Item::Rejected(what) => {
                    shipped.rejected += 1;
                    note(Note::Rejected(what));
                    continue;
                }
            };
            pending.push(Outgoing {
                subject: crate::wire::subject(&e),
                id: crate::wire::hex(&crate::wire::identity(&scope, e.origin.locator)),
                payload: crate::wire::encode(&e).into(),
            });
            if pending.len() >= crate::IN_FLIGHT {
                let n = pending.len() as u64;
                store_all(js, None, std::mem::take(&mut pending), Some(self.retry_for)).await?;
                stored += n;
                shipped.events += n;
                if stored - saved >= 10_000 {
                    offsets.insert(name.clone(), stored);
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
        let n = pending.len() as u64;
        store_all(js, None, pending, Some(self.retry_for)).await?;
        stored += n;
        shipped.events += n;
        offsets.insert(name.clone(), stored);
        let report = reader
            .await
            .map_err(|e| FleetError::Io(format!("{name}: the reader stopped: {e}")))?;
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
