//! Detections of one input, held until that input's turn to be written.
//!
//! Inputs are read in parallel but written in input order, so each input's detections wait
//! for those of the inputs before it. Past [`HELD_IN_MEMORY`] they wait in an unnamed
//! temporary file instead: one EVTX file with millions of matches (a password spray, say)
//! does not grow memory with it.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, Write};

use anyhow::{Context, Result};

use crate::output::Detection;

/// Detections an input keeps in memory before the rest go to a temporary file.
pub const HELD_IN_MEMORY: usize = 4096;

/// What a held detection carries besides itself: its rule's index and the digest of who did
/// it (for the routine's verdict, given once all evidence is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    pub rule: usize,
    /// Who did it (the routine's keys).
    pub actor: towerwatch_correlate::routine::ActorKey,
}

/// Detections (with their tags), in the order they were found.
pub struct Held {
    limit: usize,
    kept: Vec<(Tag, Detection)>,
    /// Older detections, one JSON line each, when there were more than `limit`.
    spilled: Option<BufWriter<File>>,
    /// Why spilling failed, if it did (the detections then stay in memory).
    spill_error: Option<String>,
}

impl Held {
    pub fn new(limit: usize) -> Held {
        Held {
            limit: limit.max(1),
            kept: Vec::new(),
            spilled: None,
            spill_error: None,
        }
    }

    pub fn push(&mut self, tag: Tag, d: Detection) {
        self.kept.push((tag, d));
        if self.kept.len() >= self.limit && self.spill_error.is_none() {
            if let Err(e) = self.spill() {
                self.spill_error = Some(format!("{e:#}"));
            }
        }
    }

    fn spill(&mut self) -> Result<()> {
        let out = match &mut self.spilled {
            Some(out) => out,
            None => {
                let file = tempfile::tempfile().context("cannot create a temporary file")?;
                self.spilled.insert(BufWriter::new(file))
            }
        };
        for item in &self.kept {
            serde_json::to_writer(&mut *out, item)?;
            out.write_all(b"\n")?;
        }
        self.kept.clear();
        Ok(())
    }

    /// Hands every detection to `each`, oldest first. Returns a warning if they could not
    /// be spilled (and so were held in memory).
    pub fn drain(
        self,
        mut each: impl FnMut(Tag, Detection) -> Result<()>,
    ) -> Result<Option<String>> {
        if let Some(out) = self.spilled {
            let mut file = out
                .into_inner()
                .map_err(|e| e.into_error())
                .context("cannot write held detections to a temporary file")?;
            file.rewind()?;
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.context("cannot read back held detections")?;
                let (rule, d): (Tag, Detection) = serde_json::from_str(&line)
                    .with_context(|| format!("held detection {n} does not read back"))?;
                each(rule, d)?;
            }
        }
        for (rule, d) in self.kept {
            each(rule, d)?;
        }
        Ok(self.spill_error.map(|e| {
            format!("detections could not wait in a temporary file ({e}); they were held in memory")
        }))
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
            level: towerwatch_sigma::Level::High,
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
                held.push(
                    Tag {
                        rule: i as usize % 7,
                        actor: ActorKey {
                            digest: i * 3,
                            estate: i,
                            person: i + 1,
                        },
                    },
                    detection(i),
                );
            }
            assert!(held.kept.len() < limit.max(1) || n == 0);
            assert_eq!(held.spilled.is_some(), n as usize >= limit);
            let mut back = Vec::new();
            let warning = held
                .drain(|rule, d| {
                    back.push((rule, d));
                    Ok(())
                })
                .unwrap();
            assert_eq!(warning, None);
            assert_eq!(back.len() as u64, n);
            for (i, (rule, d)) in back.iter().enumerate() {
                assert_eq!(rule.rule, i % 7);
                assert_eq!(
                    rule.actor,
                    ActorKey {
                        digest: i as u64 * 3,
                        estate: i as u64,
                        person: i as u64 + 1
                    }
                );
                assert_eq!(d.record_id, Some(i as u64));
                assert_eq!(d.event["TargetUserName"], "ü\"x");
            }
        }
    }
}
