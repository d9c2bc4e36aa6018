//! Any bytes as evidence: the readers never panic, and every record they report is counted
//! (events read + records rejected), so nothing is lost silently.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use towerwatch_sources::ReadOptions;

fuzz_target!(|data: &[u8]| {
    common::read_counted(data, ReadOptions::default());
});
