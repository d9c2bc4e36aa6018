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
        let json = if render {
            // Text keys and plain values: serialising cannot fail.
            serde_json::to_string(d).expect("a detection serialises")
        } else {
            String::new()
        };
        HeldDetection::with_line(tag, d, json)
    }

    /// `d` (made without its event) with its tag and its JSON line, already written.
    pub fn with_line(tag: Tag, d: &Detection, json: String) -> Self {
        HeldDetection {
            tag,
            level: d.level,
            computer: d.computer.clone(),
            timestamp: d.timestamp.clone(),
            source: d.source.clone(),
            record_id: d.record_id,
            line: d.line,
            json,
        }
    }

    /// The detection itself, read back from its JSON line.
    pub fn detection(&self) -> Result<Detection, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// Segments of detections one [`Held`] keeps side by side before copying them into one.
const SEGMENTS: usize = 32;

/// Detections (with their tags), in the order they were found: segments of tape, so that
/// appending another input's detections moves its file rather than copying every line.
pub struct Held {
    limit: usize,
    /// In order; all but the last are sealed (nothing of them in memory).
    segments: Vec<Tape<HeldDetection>>,
    /// Why holding failed, if it did (reported when drained).
    error: Option<SpillError>,
}

impl Held {
    pub fn new(limit: usize) -> Held {
        Held {
            limit,
            segments: vec![Tape::new(limit)],
            error: None,
        }
    }

    pub fn push(&mut self, d: HeldDetection) {
        if self.error.is_some() {
            return;
        }
        let last = match self.segments.last_mut() {
            Some(t) => t,
            None => {
                self.segments.push(Tape::new(self.limit));
                self.segments.last_mut().expect("just pushed")
            }
        };
        if let Err(e) = last.push(d) {
            self.error = Some(e);
        }
    }

    /// Detections held.
    pub fn len(&self) -> u64 {
        self.segments.iter().map(Tape::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves `other`'s detections after these: a segment that went to disk is moved as it
    /// is, a small one in memory is copied.
    pub fn append(&mut self, other: Held) {
        if let Some(e) = other.error {
            self.error.get_or_insert(e);
        }
        for segment in other.segments {
            if self.error.is_some() {
                return;
            }
            if segment.spilled() == 0 {
                match segment.read() {
                    Ok(items) => {
                        for d in items {
                            match d {
                                Ok(d) => self.push(d),
                                Err(e) => {
                                    self.error.get_or_insert(e);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        self.error.get_or_insert(e);
                    }
                }
                continue;
            }
            let sealed = self.segments.last_mut().map_or(Ok(()), Tape::seal);
            if let Err(e) = sealed {
                self.error.get_or_insert(e);
            }
            self.segments.push(segment);
        }
        if self.segments.len() > SEGMENTS {
            self.consolidate();
        }
    }

    /// Copies every segment into one, so that open files stay few.
    fn consolidate(&mut self) {
        let segments = std::mem::take(&mut self.segments);
        let mut one = Tape::new(self.limit);
        for segment in segments {
            let copied = segment.read().and_then(|items| {
                for d in items {
                    one.push(d?)?;
                }
                Ok(())
            });
            if let Err(e) = copied {
                self.error.get_or_insert(e);
            }
        }
        self.segments = vec![one];
    }

    /// Hands every detection to `each`, oldest first; fails if they could not be held.
    pub fn drain(
        self,
        mut each: impl FnMut(HeldDetection) -> Result<(), HuntError>,
    ) -> Result<(), HuntError> {
        if let Some(e) = self.error {
            return Err(e.into());
        }
        for segment in self.segments {
            for d in segment.read()? {
                each(d?)?;
            }
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
            assert_eq!(held.len(), n);
            assert_eq!(held.segments[0].spilled() > 0, n as usize >= limit);
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

    #[test]
    fn appended_inputs_keep_their_order_whether_moved_copied_or_consolidated() {
        let tag = |i: u64| Tag {
            rule: i as usize,
            actor: ActorKey {
                digest: i,
                estate: i,
                person: i,
            },
        };
        // Inputs of 0 to 9 detections with a limit of 4: some stay in memory (copied), some
        // go to disk (moved); 80 inputs pass the segment cap (consolidated).
        let mut all = Held::new(4);
        let mut n = 0u64;
        for input in 0..80u64 {
            let mut one = Held::new(4);
            for _ in 0..(input * 7 % 10) {
                one.push(HeldDetection::new(tag(n), &detection(n), true));
                n += 1;
            }
            all.append(one);
            assert!(all.segments.len() <= SEGMENTS + 1);
        }
        assert_eq!(all.len(), n);
        let mut next = 0u64;
        all.drain(|h| {
            assert_eq!(h.record_id, Some(next));
            assert_eq!(h.tag, tag(next));
            next += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(next, n);
    }
}
