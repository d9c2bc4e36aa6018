//! What every reader target checks: no panic, and every record reported is counted (events
//! read + records rejected, each naming the input), in lenient and in strict mode.
// Each target includes this file and uses what it needs of it.
#![allow(dead_code)]

use towerwatch_sources::{read_bytes, ReadOptions};

pub fn read_counted(data: &[u8], options: ReadOptions) {
    for strict in [false, true] {
        let (mut events, mut rejected) = (0u64, 0u64);
        let options = ReadOptions {
            strict,
            ..options.clone()
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
}

/// The input after a header that makes the sniffer pick one format (its first byte chooses).
pub fn with_header<'a>(headers: &[&[u8]], data: &'a [u8]) -> (Vec<u8>, &'a [u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let mut v = headers[pick as usize % headers.len()].to_vec();
    v.extend_from_slice(rest);
    (v, rest)
}
