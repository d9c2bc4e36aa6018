//! EVTX files through the `evtx` crate.

use std::io::{BufRead, Read, Seek};
use std::path::Path;

use evtx::{EvtxParser, ParserSettings};
use towerwatch_event::Origin;

use crate::json::event_from_evtx_json;
use crate::{Position, ReadOptions, Tally};

pub(crate) fn read(
    reader: &mut (dyn BufRead + Send),
    path: Option<&Path>,
    options: &ReadOptions,
    tally: &mut Tally<'_, '_>,
) {
    let settings = ParserSettings::new().num_threads(options.evtx_threads);
    // A plain file is parsed in place; a decompressed or piped stream needs to be seekable,
    // so it is held in memory (EVTX files are bounded in size by Windows).
    let len = match path {
        Some(p) => {
            parse(EvtxParser::from_path(p), settings, tally);
            // The size `read_input` measured when it opened the file.
            tally.report.bytes
        }
        None => {
            let mut buf = Vec::new();
            if let Err(e) = reader.read_to_end(&mut buf) {
                tally.fail(format!("read error: {e}"));
                return;
            }
            let len = buf.len() as u64;
            parse(EvtxParser::from_buffer(buf), settings, tally);
            len
        }
    };
    check_truncation(len, tally);
}

const HEADER: u64 = 4096;
const CHUNK: u64 = 65536;

/// An EVTX file is a 4 KiB header and whole 64 KiB chunks; the parser skips a partial last
/// chunk without a word, so its loss is reported here.
fn check_truncation(len: u64, tally: &mut Tally<'_, '_>) {
    if tally.report.failure.is_some() || len < HEADER {
        return;
    }
    let partial = (len - HEADER) % CHUNK;
    if partial != 0 {
        let at = len - partial;
        tally.reject(
            Position::Offset(at),
            format!("truncated EVTX: the last chunk has {partial} of {CHUNK} bytes; its records could not be read"),
        );
    }
}

fn parse<T: Read + Seek>(
    parser: evtx::err::Result<EvtxParser<T>>,
    settings: ParserSettings,
    tally: &mut Tally<'_, '_>,
) {
    let mut parser = match parser {
        Ok(p) => p.with_configuration(settings),
        Err(e) => {
            tally.fail(format!("not a readable EVTX file: {}", chain(&e)));
            return;
        }
    };
    for record in parser.records_json_bytes() {
        let ok = match record {
            Ok(rec) => {
                let origin = Origin::record(tally.report.source.clone(), rec.event_record_id);
                match event_from_evtx_json(&rec.data, origin) {
                    Ok(mut event) => {
                        if event.timestamp.is_none() {
                            event.timestamp = Some(rec.timestamp);
                        }
                        event.record_id.get_or_insert(rec.event_record_id);
                        tally.event(event)
                    }
                    Err(msg) => tally.reject(Position::Record(rec.event_record_id), msg),
                }
            }
            Err(e) => {
                let position = match &e {
                    evtx::err::EvtxError::FailedToParseRecord { record_id, .. } => {
                        Position::Record(*record_id)
                    }
                    evtx::err::EvtxError::FailedToParseChunk { chunk_id, .. } => {
                        Position::Chunk(*chunk_id)
                    }
                    evtx::err::EvtxError::FailedToReadRecordAt { chunk: Some(c), .. } => {
                        Position::Chunk(*c)
                    }
                    _ => Position::Input,
                };
                tally.reject(position, chain(&e))
            }
        };
        if !ok {
            return;
        }
    }
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
