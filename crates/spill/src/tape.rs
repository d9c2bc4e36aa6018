//! Items written once, read back in order.

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{read_item, write_item, SpillError};

/// Items in the order they were pushed; past `limit` in memory, the oldest go to an unnamed
/// temporary file.
pub struct Tape<T> {
    limit: usize,
    kept: Vec<T>,
    file: Option<BufWriter<File>>,
    written: u64,
    scratch: Vec<u8>,
}

impl<T: Serialize + DeserializeOwned> Tape<T> {
    pub fn new(limit: usize) -> Self {
        Tape {
            limit: limit.max(1),
            kept: Vec::new(),
            file: None,
            written: 0,
            scratch: Vec::new(),
        }
    }

    pub fn push(&mut self, item: T) -> Result<(), SpillError> {
        self.kept.push(item);
        if self.kept.len() >= self.limit {
            let out = match &mut self.file {
                Some(out) => out,
                None => self.file.insert(BufWriter::new(tempfile::tempfile()?)),
            };
            for item in self.kept.drain(..) {
                write_item(out, &item, &mut self.scratch)?;
            }
            self.written += self.limit as u64;
        }
        Ok(())
    }

    /// Moves the items still in memory to the file, if there is one (a tape that is kept
    /// whole but no longer pushed to then holds no memory).
    pub fn seal(&mut self) -> Result<(), SpillError> {
        if let Some(out) = &mut self.file {
            self.written += self.kept.len() as u64;
            for item in self.kept.drain(..) {
                write_item(out, &item, &mut self.scratch)?;
            }
        }
        Ok(())
    }

    /// Items pushed so far.
    pub fn len(&self) -> u64 {
        self.written + self.kept.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items that went to disk.
    pub fn spilled(&self) -> u64 {
        self.written
    }

    /// Every item, oldest first.
    pub fn read(self) -> Result<impl Iterator<Item = Result<T, SpillError>>, SpillError> {
        let mut reader = match self.file {
            Some(out) => {
                let mut file = out.into_inner().map_err(|e| e.into_error())?;
                file.rewind()?;
                Some(BufReader::with_capacity(1 << 16, file))
            }
            None => None,
        };
        let mut scratch = self.scratch;
        let from_disk = std::iter::from_fn(move || {
            let r = reader.as_mut()?;
            match read_item(r, &mut scratch) {
                Ok(Some(item)) => Some(Ok(item)),
                Ok(None) => {
                    reader = None;
                    None
                }
                Err(e) => {
                    reader = None;
                    Some(Err(e))
                }
            }
        });
        Ok(from_disk.chain(self.kept.into_iter().map(Ok)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_back_in_order_from_disk_and_memory() {
        for (limit, n) in [(1, 5u32), (3, 10), (100, 10), (4, 0)] {
            let mut t = Tape::new(limit);
            for i in 0..n {
                t.push((i, format!("item {i}"))).unwrap();
            }
            assert_eq!(t.len(), n as u64);
            assert_eq!(t.spilled() > 0, n as usize >= limit);
            let back: Vec<(u32, String)> = t.read().unwrap().map(Result::unwrap).collect();
            assert_eq!(
                back,
                (0..n).map(|i| (i, format!("item {i}"))).collect::<Vec<_>>()
            );
        }
    }
}
