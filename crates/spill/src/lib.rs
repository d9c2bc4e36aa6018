//! Bounded memory for unbounded evidence.
//!
//! A hunt sees every event once but links them only at the end; holding them all would grow
//! memory with the evidence. These two containers keep at most `limit` items in memory and
//! write the rest to temporary files (in `TMPDIR`, removed when dropped), encoded with
//! `postcard`:
//!
//! - [`Sorter`]: an external merge sort. Items are `(key, value)` pairs; [`Sorter::sorted`]
//!   yields them by key (equal keys in the order they were pushed), and can be called again.
//! - [`Tape`]: items written once and read back in the order they were written.
//!
//! ```
//! use towerwatch_spill::Sorter;
//!
//! let mut s = Sorter::new(2); // two items in memory, the rest in sorted runs on disk
//! for k in [5u32, 1, 4, 2, 3] {
//!     s.push(k, format!("v{k}")).unwrap();
//! }
//! let keys: Vec<u32> = s.sorted().unwrap().map(|r| r.unwrap().0).collect();
//! assert_eq!(keys, [1, 2, 3, 4, 5]);
//! assert!(s.spilled() > 0);
//! ```

mod sorter;
mod tape;

pub use sorter::{Sorted, Sorter};
pub use tape::Tape;

use std::io::{self, BufRead, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Spilling failed: the temporary file could not be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("a temporary file (in {}) failed", std::env::temp_dir().display())]
    Io(#[from] io::Error),
    #[error("a temporary file does not read back")]
    Decode(#[from] postcard::Error),
}

/// Fails now, not after the work, if temporary files cannot be written where they go
/// (`TMPDIR`).
pub fn check_temp_dir() -> Result<(), SpillError> {
    let mut f = tempfile::tempfile()?;
    f.write_all(b"probe")?;
    Ok(())
}

/// One item: its length (u32, little-endian), then its postcard encoding.
fn write_item<T: Serialize>(
    out: &mut impl Write,
    item: &T,
    scratch: &mut Vec<u8>,
) -> Result<(), SpillError> {
    scratch.clear();
    let bytes = postcard::to_extend(item, std::mem::take(scratch))?;
    out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    out.write_all(&bytes)?;
    *scratch = bytes;
    Ok(())
}

/// The next item, or `None` at the end of the file.
fn read_item<T: DeserializeOwned>(
    input: &mut impl BufRead,
    scratch: &mut Vec<u8>,
) -> Result<Option<T>, SpillError> {
    let mut len = [0u8; 4];
    if input.fill_buf()?.is_empty() {
        return Ok(None);
    }
    input.read_exact(&mut len)?;
    scratch.resize(u32::from_le_bytes(len) as usize, 0);
    input.read_exact(scratch)?;
    Ok(Some(postcard::from_bytes(scratch)?))
}
