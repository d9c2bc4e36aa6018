//! The direct JSON-to-event path used for EVTX gives the same events as the value-tree path.

use std::path::{Path, PathBuf};

use evtx::EvtxParser;
use towerwatch_event::Origin;
use towerwatch_sources::json::{event_from_evtx_json, event_from_json};

fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            evtx_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "evtx") {
            out.push(p);
        }
    }
}

#[test]
fn direct_and_tree_paths_agree() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/sigma-regression");
    let mut files = Vec::new();
    evtx_files(&root, &mut files);
    // The shared attack corpus, when present, has far more variety (UserData, binary data).
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/evtx");
    if shared.is_dir() {
        evtx_files(&shared, &mut files);
    }
    let mut compared = 0;
    for f in files {
        let mut parser = EvtxParser::from_path(&f).unwrap();
        for rec in parser.records_json() {
            let Ok(rec) = rec else { continue };
            let origin = Origin::record("x", rec.event_record_id);
            let tree =
                event_from_json(serde_json::from_str(&rec.data).unwrap(), origin.clone()).unwrap();
            let direct = event_from_evtx_json(rec.data.as_bytes(), origin).unwrap();
            assert_eq!(
                direct,
                tree,
                "{} record {}",
                f.display(),
                rec.event_record_id
            );
            compared += 1;
        }
    }
    assert!(compared > 200, "{compared} records compared");
}

#[test]
fn direct_path_rejects_broken_json() {
    assert!(event_from_evtx_json(b"{\"Event\": {\"System\": ", Origin::record("x", 1)).is_err());
    assert!(event_from_evtx_json(b"[1]", Origin::record("x", 1)).is_err());
}
