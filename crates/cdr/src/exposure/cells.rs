//! Cell sites: the cell table (OpenCelliD's columns), and the one form of an area or cell
//! number both it and the extract are read into.

use std::collections::HashMap;
use std::path::Path;

use super::CellKey;

/// Numbers without leading zeros, so `0301` and `301` are one area.
pub(super) fn canonical(v: &str) -> String {
    let t = v.trim();
    match t.parse::<u64>() {
        Ok(n) => n.to_string(),
        Err(_) => t.to_string(),
    }
}

/// Cell sites by (area, cell): (radio, lon, lat).
pub type CellTable = HashMap<CellKey, (String, f64, f64)>;

/// The cell table (`radio,…,area,cell,…,lon,lat`, OpenCelliD's columns), and its rows that
/// could not be read (each named by file and line; they are skipped, the rest is read).
pub fn read_cells(path: &Path) -> Result<(CellTable, Vec<String>), crate::run::ContextFileError> {
    let mut t = crate::run::Table::open(path)?;
    let (radio, area, cell, lon, lat) = (
        t.col("radio")?,
        t.col("area")?,
        t.col("cell")?,
        t.col("lon")?,
        t.col("lat")?,
    );
    let mut out = HashMap::new();
    let mut rejected = Vec::new();
    for (i, rec) in t.reader.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                rejected.push(format!("{}:{line}: {e}", t.name));
                continue;
            }
        };
        let num = |j: usize| rec.get(j).and_then(|v| v.parse::<f64>().ok());
        match (
            num(lon),
            num(lat),
            rec.get(area),
            rec.get(cell),
            rec.get(radio),
        ) {
            (Some(x), Some(y), Some(a), Some(c), Some(r)) => {
                out.insert((canonical(a), canonical(c)), (r.to_string(), x, y));
            }
            _ => rejected.push(format!("{}:{line}: lon and lat must be numbers", t.name)),
        }
    }
    Ok((out, rejected))
}
