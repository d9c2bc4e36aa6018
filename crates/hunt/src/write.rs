//! Where detections go: the JSONL contract (one serde definition, [`Detection`]), CSV, or a
//! collection in memory.

use std::io::Write;

use towerwatch_event::Detection;

use crate::held::HeldDetection;
use crate::HuntError;

/// What takes the hunt's final detections, in order: those of the rules (held, with their
/// JSON line rendered once when found), then the web-shell join's, the Sigma correlations'
/// and the database audit's.
pub trait DetectionSink {
    fn detection(&mut self, d: &Detection) -> Result<(), HuntError>;

    /// A rule's detection as it waited; by default read back and taken as any other.
    fn held(&mut self, h: &HeldDetection) -> Result<(), HuntError> {
        self.detection(&h.detection()?)
    }
}

/// Collects the detections (a test, a live service's batch).
impl DetectionSink for Vec<Detection> {
    fn detection(&mut self, d: &Detection) -> Result<(), HuntError> {
        self.push(d.clone());
        Ok(())
    }
}

/// Where detections go.
pub enum DetectionWriter {
    None,
    Jsonl(Box<dyn Write>),
    Csv(Box<csv::Writer<Box<dyn Write>>>),
}

const CSV_HEADER: [&str; 12] = [
    "timestamp",
    "level",
    "rule_title",
    "rule_id",
    "computer",
    "channel",
    "event_id",
    "source",
    "record_id",
    "line",
    "tags",
    "event",
];

impl DetectionWriter {
    pub fn jsonl(out: Box<dyn Write>) -> Self {
        DetectionWriter::Jsonl(out)
    }

    pub fn csv(out: Box<dyn Write>) -> Result<Self, HuntError> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(CSV_HEADER)?;
        Ok(DetectionWriter::Csv(Box::new(w)))
    }

    /// A held detection: its JSON line as rendered when it was found.
    pub fn write_held(&mut self, h: &HeldDetection) -> Result<(), HuntError> {
        match self {
            DetectionWriter::None => Ok(()),
            DetectionWriter::Jsonl(w) => {
                w.write_all(h.json.as_bytes())?;
                w.write_all(b"\n")?;
                Ok(())
            }
            DetectionWriter::Csv(_) => self.write(&h.detection()?),
        }
    }

    pub fn write(&mut self, d: &Detection) -> Result<(), HuntError> {
        match self {
            DetectionWriter::None => {}
            DetectionWriter::Jsonl(w) => {
                serde_json::to_writer(&mut *w, d)?;
                w.write_all(b"\n")?;
            }
            DetectionWriter::Csv(w) => {
                let opt = |v: Option<String>| v.unwrap_or_default();
                let record = [
                    opt(d.timestamp.clone()),
                    d.level.to_string(),
                    d.rule_title.clone(),
                    d.rule_id.clone(),
                    opt(d.computer.clone()),
                    opt(d.channel.clone()),
                    opt(d.event_id.map(|v| v.to_string())),
                    d.source.clone(),
                    opt(d.record_id.map(|v| v.to_string())),
                    opt(d.line.map(|v| v.to_string())),
                    d.tags.join(" "),
                    serde_json::to_string(&d.event)?,
                ];
                // Quoted by the csv crate; no cell a spreadsheet would run.
                w.write_record(towerwatch_event::csv_row(&record))?;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<(), HuntError> {
        match self {
            DetectionWriter::None => {}
            DetectionWriter::Jsonl(mut w) => w.flush()?,
            DetectionWriter::Csv(mut w) => w.flush()?,
        }
        Ok(())
    }
}

impl DetectionSink for DetectionWriter {
    fn detection(&mut self, d: &Detection) -> Result<(), HuntError> {
        self.write(d)
    }

    fn held(&mut self, h: &HeldDetection) -> Result<(), HuntError> {
        self.write_held(h)
    }
}
