//! A CSV cell a spreadsheet will not run. Evidence is written by the attacker: a host name
//! `=HYPERLINK("http://e.vil/")` or an `application_name` starting with `@SUM(` becomes a live
//! formula when the privacy officer opens the CSV. Following OWASP's advice, a cell starting
//! with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`, unless it is a
//! plain number (`-5`, `+3.2`), which a spreadsheet reads as that number and nothing else.
//! Quoting is the `csv` crate's job; this is only the formula part.
//!
//! [`csv_row`] gives a whole record's cells so, ready for `csv::Writer::write_record`.
//!
//! ```
//! use towerwatch_event::csv_cell;
//! assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
//! assert_eq!(csv_cell("-5"), "-5");
//! assert_eq!(csv_cell("WEB01"), "WEB01");
//! ```

use std::borrow::Cow;

pub fn csv_cell(s: &str) -> Cow<'_, str> {
    let risky = s.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && s.trim().parse::<f64>().is_err() {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

/// One cell of [`csv_row`]: text a spreadsheet will not run, as the bytes a CSV writer takes.
pub struct CsvCell<'a>(Cow<'a, str>);

impl AsRef<[u8]> for CsvCell<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Every cell of a record through [`csv_cell`]: `writer.write_record(csv_row(&record))`.
pub fn csv_row<S: AsRef<str>>(record: &[S]) -> impl Iterator<Item = CsvCell<'_>> {
    record.iter().map(|c| CsvCell(csv_cell(c.as_ref())))
}
