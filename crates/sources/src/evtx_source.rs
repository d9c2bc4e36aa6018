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
    let mut source = match path {
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Bytes::File(f),
            Err(e) => return tally.fail(format!("cannot open: {e}")),
        },
        None => {
            let mut buf = Vec::new();
            if let Err(e) = reader.read_to_end(&mut buf) {
                tally.fail(format!("read error: {e}"));
                return;
            }
            Bytes::Memory(buf)
        }
    };
    let len = match &source {
        Bytes::File(_) => tally.report.bytes,
        Bytes::Memory(b) => b.len() as u64,
    };
    // The chunks behind a damaged file header are still whole: carved one by one.
    // (A header that fails its CRC32 or names another block size sends the parser to the
    // wrong offsets; chunks are at fixed ones.)
    let header_ok = source.read_at(0, HEADER as usize).is_some_and(|h| {
        evtx::EvtxFileHeader::from_stream(&mut std::io::Cursor::new(h))
            .is_ok_and(|h| h.validate_checksum() && u64::from(h.header_block_size) == HEADER)
    });
    if !header_ok {
        return carve_all(&mut source, len, &settings, tally);
    }
    // A partial last chunk: its whole records are carved after the parser's pass.
    let partial = if len >= HEADER {
        (len - HEADER) % CHUNK
    } else {
        0
    };
    let tail = (partial > 0)
        .then(|| source.read_at(len - partial, partial as usize))
        .flatten();
    match (source, path) {
        (Bytes::File(_), Some(p)) => parse(EvtxParser::from_path(p), settings.clone(), tally),
        (Bytes::Memory(buf), _) => parse(EvtxParser::from_buffer(buf), settings.clone(), tally),
        (Bytes::File(_), None) => unreachable!("a file has a path"),
    }
    if let Some(tail) = tail {
        if tally.report.failure.is_none() {
            let chunk = (len - partial - HEADER) / CHUNK;
            carve_partial(tail, len - partial, chunk, &settings, tally);
        }
    }
}

const HEADER: u64 = 4096;
const CHUNK: u64 = 65536;

/// An EVTX file held as a file or in memory, read at offsets.
enum Bytes {
    File(std::fs::File),
    Memory(Vec<u8>),
}

impl Bytes {
    fn read_at(&mut self, offset: u64, len: usize) -> Option<Vec<u8>> {
        match self {
            Bytes::File(f) => {
                f.seek(std::io::SeekFrom::Start(offset)).ok()?;
                let mut buf = Vec::with_capacity(len);
                f.take(len as u64).read_to_end(&mut buf).ok()?;
                (buf.len() == len).then_some(buf)
            }
            Bytes::Memory(b) => b
                .get(offset as usize..offset as usize + len)
                .map(<[u8]>::to_vec),
        }
    }
}

/// The whole records of a partial last chunk (a file copied while Windows wrote it, or cut
/// short): the chunk is padded to its size and read until the first record that runs past
/// the end; the rest is reported lost, with its offset.
fn carve_partial(
    mut data: Vec<u8>,
    offset: u64,
    chunk: u64,
    settings: &ParserSettings,
    tally: &mut Tally<'_, '_>,
) {
    let have = data.len() as u64;
    let whole = whole_records(&data);
    data.resize(CHUNK as usize, 0);
    let lost = |tally: &mut Tally<'_, '_>, what: String| {
        tally.reject(
            Position::Offset(offset),
            format!("truncated EVTX: the last chunk has {have} of {CHUNK} bytes; {what}"),
        )
    };
    let Ok(mut chunk_data) = evtx::EvtxChunkData::new(data, false) else {
        lost(
            tally,
            "its header is cut, so none of its records could be read".into(),
        );
        return;
    };
    chunk_data.number = Some(chunk);
    let settings = std::sync::Arc::new(settings.clone());
    let Ok(mut c) = chunk_data.parse(settings) else {
        lost(tally, "its records could not be read".into());
        return;
    };
    let mut carved = 0;
    for record in c.iter().take(whole) {
        let ok = match record.and_then(|r| r.into_json_bytes()) {
            Ok(rec) => {
                carved += 1;
                emit(rec, tally)
            }
            Err(_) => break,
        };
        if !ok {
            return;
        }
    }
    lost(
        tally,
        format!("{carved} whole records were carved from it, the rest is cut off"),
    );
}

/// How many records lie whole in a chunk's first bytes: from the end of the chunk header,
/// each record starts with its signature and size and ends where its size says.
fn whole_records(data: &[u8]) -> usize {
    const CHUNK_HEADER: usize = 512;
    const RECORD_HEADER: usize = 24;
    let mut at = CHUNK_HEADER;
    let mut n = 0;
    while at + RECORD_HEADER <= data.len() && data[at..at + 4] == [0x2a, 0x2a, 0, 0] {
        let size = u32::from_le_bytes(data[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        if size < RECORD_HEADER || at + size > data.len() {
            break;
        }
        at += size;
        n += 1;
    }
    n
}

/// Every chunk of a file whose header is damaged: each 64 KiB chunk with its signature is
/// checked (CRC32s) and read; one that fails is reported and skipped.
fn carve_all(source: &mut Bytes, len: u64, settings: &ParserSettings, tally: &mut Tally<'_, '_>) {
    let chunks = len.saturating_sub(HEADER) / CHUNK;
    let mut found = 0;
    let settings = std::sync::Arc::new(settings.clone());
    for n in 0..chunks {
        let at = HEADER + n * CHUNK;
        let Some(data) = source.read_at(at, CHUNK as usize) else {
            break;
        };
        if !data.starts_with(b"ElfChnk\0") {
            continue;
        }
        found += 1;
        let mut chunk_data = match evtx::EvtxChunkData::new(data, true) {
            Ok(c) => c,
            Err(e) => {
                if !tally.reject(Position::Chunk(n), format!("damaged chunk: {}", chain(&e))) {
                    return;
                }
                continue;
            }
        };
        chunk_data.number = Some(n);
        let mut c = match chunk_data.parse(settings.clone()) {
            Ok(c) => c,
            Err(e) => {
                if !tally.reject(Position::Chunk(n), chain(&e)) {
                    return;
                }
                continue;
            }
        };
        for record in c.iter() {
            let ok = match record.and_then(|r| r.into_json_bytes()) {
                Ok(rec) => emit(rec, tally),
                Err(e) => tally.reject(Position::Chunk(n), chain(&e)),
            };
            if !ok {
                return;
            }
        }
    }
    if found == 0 {
        tally.fail("not a readable EVTX file: a damaged file header and no chunk behind it".into());
    } else {
        tally.reject(
            Position::Offset(0),
            format!("damaged EVTX file header: its {found} chunks were carved one by one"),
        );
    }
}

/// One record's JSON to an event.
fn emit(rec: evtx::SerializedEvtxRecord<Vec<u8>>, tally: &mut Tally<'_, '_>) -> bool {
    let origin = Origin::record(tally.report.source.clone(), rec.event_record_id);
    match event_from_evtx_json(&rec.data, origin) {
        Ok(mut event) => {
            if event.timestamp.is_none() {
                event.timestamp = Some(rec.timestamp);
            }
            // The record is known by the id it states (as its detections name it), so
            // places and joins agree when a record header says otherwise.
            let id = *event.record_id.get_or_insert(rec.event_record_id);
            event.origin.locator = towerwatch_event::Locator::Record(id);
            tally.event(event)
        }
        Err(msg) => tally.reject(Position::Record(rec.event_record_id), msg),
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
            Ok(rec) => emit(rec, tally),
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
