//! Detections of one input, held until that input's turn to be written.
//!
//! Inputs are read in parallel but written in input order, so each input's detections wait
//! for those of the inputs before it, and every detection waits for the routine's verdict,
//! given once all evidence is read. Past [`HELD_IN_MEMORY`] they wait in a temporary file
//! (`towerwatch-spill`): one EVTX file with millions of matches (a password spray, say) does
//! not grow memory with it. A detection is rendered as its JSON line once, when found; only
//! what the summary and the routine's verdict need is kept beside it.

use serde::{Deserialize, Serialize};
use towerwatch_event::{Detection, Level};
use towerwatch_spill::{SpillError, Tape};

use crate::HuntError;

/// Detections an input keeps in memory before the rest go to a temporary file.
pub const HELD_IN_MEMORY: usize = 1024;

/// What a held detection carries besides itself: its rule's index and the digest of who did
/// it (for the routine's verdict, given once all evidence is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub rule: usize,
    /// Who did it (the routine's keys).
    pub actor: towerwatch_correlate::routine::ActorKey,
}

/// One detection as it waits: what the summary and the routine need, and its JSON line
/// (empty when no detection is written, as for the table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldDetection {
    pub tag: Tag,
    pub level: Level,
    pub computer: Option<String>,
    pub timestamp: Option<String>,
    pub source: String,
    pub record_id: Option<u64>,
    pub line: Option<u64>,
    pub json: String,
}

impl HeldDetection {
    /// `d` with its tag; `render`: keep its JSON line.
    pub fn new(tag: Tag, d: &Detection, render: bool) -> Self {
        HeldDetection {
            tag,
            level: d.level,
            computer: d.computer.clone(),
            timestamp: d.timestamp.clone(),
            source: d.source.clone(),
            record_id: d.record_id,
            line: d.line,
            json: if render {
                // Text keys and plain values: serialising cannot fail.
                serde_json::to_string(d).expect("a detection serialises")
            } else {
                String::new()
            },
        }
    }

    /// The detection itself, read back from its JSON line.
    pub fn detection(&self) -> Result<Detection, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// Detections (with their tags), in the order they were found.
pub struct Held {
    tape: Tape<HeldDetection>,
    /// Why holding failed, if it did (reported when drained).
    error: Option<SpillError>,
}

impl Held {
    pub fn new(limit: usize) -> Held {
        Held {
            tape: Tape::new(limit),
            error: None,
        }
    }

    pub fn push(&mut self, d: HeldDetection) {
        if self.error.is_none() {
            if let Err(e) = self.tape.push(d) {
                self.error = Some(e);
            }
        }
    }

    /// Moves `other`'s detections after these.
    pub fn append(&mut self, other: Held) {
        let moved = other.drain(|d| {
            self.push(d);
            Ok(())
        });
        // Draining fails only on the temporary files.
        if let Err(HuntError::Spill(e)) = moved {
            self.error.get_or_insert(e);
        }
    }

    /// Hands every detection to `each`, oldest first; fails if they could not be held.
    pub fn drain(
        self,
        mut each: impl FnMut(HeldDetection) -> Result<(), HuntError>,
    ) -> Result<(), HuntError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        for d in self.tape.read()? {
            each(d?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use towerwatch_correlate::routine::ActorKey;

    fn detection(i: u64) -> Detection {
        Detection {
            timestamp: Some(format!("2026-01-01T00:00:{:02}Z", i % 60)),
            rule_id: format!("rule-{}", i % 3),
            rule_title: "t".into(),
            level: Level::High,
            tags: vec!["attack.t1110".into()],
            computer: Some("HOST".into()),
            channel: Some("Security".into()),
            event_id: Some(4625),
            source: "Security.evtx".into(),
            record_id: Some(i),
            line: None,
            event: serde_json::Map::from_iter([("TargetUserName".into(), "ü\"x".into())]),
        }
    }

    #[test]
    fn past_the_limit_detections_wait_on_disk_and_come_back_in_order() {
        for (limit, n) in [(3, 10u64), (4096, 10), (1, 1), (5, 0)] {
            let mut held = Held::new(limit);
            for i in 0..n {
                let tag = Tag {
                    rule: i as usize % 7,
                    actor: ActorKey {
                        digest: i * 3,
                        estate: i,
                        person: i + 1,
                    },
                };
                held.push(HeldDetection::new(tag, &detection(i), true));
            }
            assert_eq!(held.tape.len(), n);
            assert_eq!(held.tape.spilled() > 0, n as usize >= limit);
            let mut back = Vec::new();
            held.drain(|h| {
                back.push(h);
                Ok(())
            })
            .unwrap();
            assert_eq!(back.len() as u64, n);
            for (i, h) in back.iter().enumerate() {
                assert_eq!(h.tag.rule, i % 7);
                assert_eq!(
                    h.tag.actor,
                    ActorKey {
                        digest: i as u64 * 3,
                        estate: i as u64,
                        person: i as u64 + 1
                    }
                );
                assert_eq!(h.record_id, Some(i as u64));
                assert_eq!(h.detection().unwrap(), detection(i as u64));
            }
        }
    }
}
