//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use towerwatch_event::Event;
use towerwatch_sigma::{LoadReport, Rule};
use towerwatch_sources::{read_input, Input, ReadOptions};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The shared reference data beside the repository, when present.
pub fn shared() -> Option<PathBuf> {
    let p = repo().join("../shared/data");
    p.is_dir().then_some(p)
}

/// SigmaHQ Windows rules as vendored in `rules/sigmahq/windows` (plus extra directories).
pub fn load_rules(dirs: &[PathBuf]) -> Vec<Rule> {
    let mut report = LoadReport::default();
    for d in dirs {
        report.add_path(d);
    }
    report.rules
}

/// Every event of a file (rejected records are counted, not returned).
pub fn read_events(path: &Path) -> (Vec<Event>, u64) {
    let mut events = Vec::new();
    let report = read_input(
        &Input::File(path.to_path_buf()),
        &ReadOptions::default(),
        &mut |item| {
            if let Ok(e) = item {
                events.push(e);
            }
        },
    );
    (events, report.rejected)
}
