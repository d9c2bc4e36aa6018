//! Any bytes as evidence: the readers never panic, and every record they report is counted
//! (events read + records rejected), so nothing is lost silently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use towerwatch_sources::{read_bytes, ReadOptions};

fuzz_target!(|data: &[u8]| {
    for strict in [false, true] {
        let (mut events, mut rejected) = (0u64, 0u64);
        let options = ReadOptions {
            strict,
            ..ReadOptions::default()
        };
        let report = read_bytes("fuzz-input", data, &options, &mut |item| match item {
            Ok(_) => events += 1,
            Err(e) => {
                assert!(e.to_string().contains("fuzz-input"), "{e}");
                rejected += 1;
            }
        });
        assert_eq!(report.events, events);
        assert_eq!(report.rejected, rejected);
        if strict {
            assert!(rejected <= 1, "--strict stops at the first bad record");
        }
    }
});
