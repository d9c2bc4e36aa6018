//! What the CDR analytics make of text an intruder types: statement facts, fingerprints,
//! schema discovery from them, extract column roles from values, CDR times. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use towerwatch_cdr::exposure::parse_cdr_time;
use towerwatch_cdr::numbers;
use towerwatch_cdr::schema::{roles_by_values, Discovery, ExtractHeader};
use towerwatch_cdr::sql::{facts, fingerprint, shape};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut discovery = Discovery::default();
    for statement in text.split('\0') {
        let _ = fingerprint(statement);
        let _ = shape(statement);
        if let Ok(f) = facts(statement) {
            discovery.observe(&f);
        }
        let _ = parse_cdr_time(statement, None);
        let _ = numbers::shape(statement);
        discovery.number(statement);
    }
    // Lines as an extract: a header, then rows.
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    if let Some(columns) = lines.next() {
        let rows: Vec<Vec<String>> = lines.take(200).collect();
        let by_values = roles_by_values(&columns, &rows);
        let header = ExtractHeader {
            file: "fuzz.csv".into(),
            columns,
            by_values,
        };
        let schema = discovery.finish(&[header], None);
        let _ = schema.describe();
    }
});
