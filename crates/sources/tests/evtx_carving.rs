//! Records are recovered from a partial last chunk and from the chunks behind a damaged file
//! header; what cannot be recovered is reported with its offset.

use std::path::{Path, PathBuf};

use towerwatch_sources::{read_input, Input, InputReport, ReadOptions};

/// The sample with the most records (one chunk).
fn sample() -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/sigma-regression/regression_data/rules/windows/file/file_event/file_event_win_hktl_netexec_file_indicators/efc21479-9e83-41da-8cf1-122e06ba8db3.evtx",
    );
    std::fs::read(p).unwrap()
}

fn read(bytes: &[u8], name: &str) -> (Vec<u64>, Vec<String>, InputReport) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let (mut ids, mut errors) = (Vec::new(), Vec::new());
    let report = read_input(
        &Input::File(path),
        &ReadOptions::default(),
        &mut |r| match r {
            Ok(e) => ids.push(e.record_id.unwrap()),
            Err(e) => errors.push(e.to_string()),
        },
    );
    (ids, errors, report)
}

#[test]
fn a_partial_last_chunk_gives_its_whole_records() {
    let full = sample();
    let (all, errors, _) = read(&full, "full.evtx");
    assert!(errors.is_empty(), "{errors:?}");
    assert!(all.len() >= 5);
    // Cut into the last record (the chunk header says where it starts).
    let last = u32::from_le_bytes(full[4096 + 44..4096 + 48].try_into().unwrap()) as usize;
    let cut = &full[..4096 + last + 40];
    let (ids, errors, report) = read(cut, "cut.evtx");
    assert_eq!(ids, all[..all.len() - 1], "every whole record, in order");
    assert_eq!(report.rejected, 1);
    assert!(
        errors[0].contains(&format!("offset {}", 4096))
            && errors[0].contains(&format!("{} whole records were carved", all.len() - 1)),
        "{errors:?}"
    );
    // Cut before the first record ends: nothing to carve, and said so.
    let (ids, errors, _) = read(&full[..4096 + 600], "stub.evtx");
    assert!(ids.is_empty());
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn the_chunks_behind_a_damaged_file_header_are_carved() {
    let full = sample();
    let (all, _, _) = read(&full, "full.evtx");
    let mut damaged = full.clone();
    // The header block size, overwritten: the parser would look for chunks elsewhere.
    damaged[40] = 0xff;
    damaged[41] = 0xff;
    let (ids, errors, report) = read(&damaged, "damaged.evtx");
    assert_eq!(ids, all);
    assert!(report.failure.is_none(), "{:?}", report.failure);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("damaged EVTX file header: its 1 chunks were carved")),
        "{errors:?}"
    );
}
