//! Compressed evidence: gzip and zstd streams are recognised by their magic, decompressed and
//! read as what they hold; a stream cut short keeps the events before the cut and fails the
//! input with a message that says where.

use std::io::Write;

use towerwatch_sources::{read_bytes, read_input, Format, Input, ReadOptions};

fn jsonl(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        writeln!(
            out,
            r#"{{"EventID": 4688, "Channel": "Security", "Computer": "ws{i}", "CommandLine": "cmd /c echo {i}"}}"#
        )
        .unwrap();
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

/// Reads `bytes` as a file named without a telling extension.
fn read(bytes: &[u8]) -> (towerwatch_sources::InputReport, Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.bin");
    std::fs::write(&path, bytes).unwrap();
    let (mut hosts, mut errors) = (Vec::new(), Vec::new());
    let report = read_input(
        &Input::File(path),
        &ReadOptions::default(),
        &mut |item| match item {
            Ok(e) => hosts.push(e.computer.as_deref().unwrap_or_default().to_string()),
            Err(e) => errors.push(e.to_string()),
        },
    );
    (report, hosts, errors)
}

#[test]
fn gzip_and_zstd_hold_what_the_plain_file_holds() {
    let plain = jsonl(500);
    let (want, want_hosts, _) = read(&plain);
    assert_eq!(want.events, 500);
    assert!(!want.compressed);
    for packed in [gzip(&plain), zstd(&plain)] {
        let (report, hosts, errors) = read(&packed);
        assert!(report.compressed);
        assert_eq!(report.format, Format::JsonLines);
        assert_eq!((report.events, report.rejected), (500, 0), "{errors:?}");
        assert_eq!(hosts, want_hosts);
        assert_eq!(report.failure, None);
        // The same bytes from memory (as the fuzz targets read them).
        let mut from_memory = 0;
        let mem = read_bytes("mem", &packed, &ReadOptions::default(), &mut |item| {
            from_memory += item.is_ok() as u64
        });
        assert_eq!(
            (mem.events, from_memory, mem.bytes),
            (500, 500, packed.len() as u64)
        );
    }
}

#[test]
fn concatenated_frames_are_read_to_the_end() {
    let (a, b) = (jsonl(3), jsonl(4));
    let mut packed = zstd(&a);
    packed.extend(zstd(&b));
    assert_eq!(read(&packed).0.events, 7);
    let mut packed = gzip(&a);
    packed.extend(gzip(&b));
    assert_eq!(read(&packed).0.events, 7);
}

#[test]
fn a_cut_stream_keeps_what_came_before_and_says_where_it_stopped() {
    // Enough lines for many zstd blocks: a block cut in two yields none of its lines.
    let plain = jsonl(20_000);
    for (kind, packed) in [("gzip", gzip(&plain)), ("zstd", zstd(&plain))] {
        let cut = &packed[..packed.len() * 2 / 3];
        let (report, hosts, errors) = read(cut);
        assert!(
            report.events > 0 && report.events < 20_000,
            "{kind}: {report:?}"
        );
        assert_eq!(hosts.len() as u64, report.events);
        let failure = report.failure.clone().unwrap_or_default();
        assert!(failure.contains("after line"), "{kind}: {failure}");
        assert!(
            errors.iter().any(|e| e.contains("evidence.bin")),
            "{kind}: {errors:?}"
        );
    }
}

#[test]
fn a_compressed_stream_that_is_not_one_fails_the_input_not_the_run() {
    // The magic alone, then garbage.
    for head in [&[0x1f, 0x8b][..], &[0x28, 0xb5, 0x2f, 0xfd][..]] {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(b"this is not compressed at all");
        let (report, hosts, errors) = read(&bytes);
        assert!(hosts.is_empty());
        assert!(report.compressed);
        let failure = report.failure.unwrap_or_default();
        assert!(failure.contains("decompress"), "{failure}");
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
