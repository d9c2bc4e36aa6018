//! JSON Lines and JSON documents.

use std::io::BufRead;

use towerwatch_event::Origin;

use crate::json::{event_from_json, event_from_json_text};
use crate::{Position, Tally};

/// One JSON object per line; a bad line is rejected with its number and the rest read.
pub(crate) fn read_lines(reader: &mut (dyn BufRead + Send), tally: &mut Tally<'_, '_>) {
    crate::for_each_line(reader, tally, |tally, line_no, line| {
        let line = line.trim_ascii();
        if line.is_empty() {
            return true;
        }
        let origin = Origin::line(tally.report.source.clone(), line_no);
        match event_from_json_text(line, origin) {
            Ok(event) => tally.event(event),
            Err(e) => tally.reject(Position::Line(line_no), e.to_string()),
        }
    });
}

/// Pretty-printed or concatenated JSON documents, each an event or an array of events.
/// JSON has no record boundary to resynchronise on, so a syntax error ends the input
/// (reported with its line and byte offset).
pub(crate) fn read_documents(reader: &mut (dyn BufRead + Send), tally: &mut Tally<'_, '_>) {
    let mut stream = serde_json::Deserializer::from_reader(reader).into_iter::<serde_json::Value>();
    let mut doc = 0u64;
    loop {
        let offset = stream.byte_offset() as u64;
        let Some(item) = stream.next() else { return };
        doc += 1;
        let items = match item {
            Ok(serde_json::Value::Array(items)) => items,
            Ok(json) => vec![json],
            Err(e) => {
                let msg = format!(
                    "invalid JSON at line {} column {}: {e}; rest of input not readable",
                    e.line(),
                    e.column()
                );
                tally.reject(Position::Offset(offset), msg.clone());
                tally.report.failure = Some(msg);
                return;
            }
        };
        // Documents have no line of their own to report; the document index stands in.
        for json in items {
            let origin = Origin::line(tally.report.source.clone(), doc);
            let ok = match event_from_json(json, origin) {
                Ok(event) => tally.event(event),
                Err(msg) => tally.reject(Position::Offset(offset), msg),
            };
            if !ok {
                return;
            }
        }
    }
}
