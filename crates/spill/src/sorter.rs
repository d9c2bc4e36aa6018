//! External merge sort: sorted runs on disk, merged on reading.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tempfile::{NamedTempFile, TempPath};

use crate::{read_item, write_item, SpillError};

/// Runs merged at once; more are first merged into fewer, longer runs (file handles and read
/// buffers stay bounded). Each further stage writes and reads every pair once more: 128
/// runs of a correlator's 8,192 nodes are a million events merged in one.
const FAN_IN: usize = 128;
/// Read buffers of a merge, together; each between these bounds.
const READ_BUFFERS: usize = 4 << 20;
const READ_BUFFER: std::ops::RangeInclusive<usize> = (16 << 10)..=(64 << 10);

/// `(key, value)` pairs, sorted by key when read. Up to `limit` pairs wait in memory; each
/// time that fills they are sorted and written as one run.
pub struct Sorter<K, V> {
    limit: usize,
    buffer: Vec<(K, V)>,
    /// Sorted runs, in the order they were written (ties between runs go to the earlier).
    /// Closed between writing and reading: open files stay few however many runs there are
    /// (a process may have only 1,024).
    runs: Vec<TempPath>,
    spilled: u64,
    scratch: Vec<u8>,
}

impl<K, V> Sorter<K, V>
where
    K: Ord + Clone + Serialize + DeserializeOwned,
    V: Clone + Serialize + DeserializeOwned,
{
    pub fn new(limit: usize) -> Self {
        Sorter {
            limit: limit.max(1),
            buffer: Vec::new(),
            runs: Vec::new(),
            spilled: 0,
            scratch: Vec::new(),
        }
    }

    pub fn push(&mut self, key: K, value: V) -> Result<(), SpillError> {
        self.buffer.push((key, value));
        if self.buffer.len() >= self.limit {
            self.spill()?;
        }
        Ok(())
    }

    /// Takes `other`'s pairs: its runs as they are, its buffer pushed after.
    pub fn append(&mut self, other: Sorter<K, V>) -> Result<(), SpillError> {
        // Ties keep push order: what waits here goes to disk before the other's runs.
        if !other.runs.is_empty() && !self.buffer.is_empty() {
            self.spill()?;
        }
        self.spilled += other.spilled;
        self.runs.extend(other.runs);
        for (k, v) in other.buffer {
            self.push(k, v)?;
        }
        Ok(())
    }

    /// Pairs pushed so far.
    pub fn len(&self) -> u64 {
        self.spilled + self.buffer.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pairs that went to disk.
    pub fn spilled(&self) -> u64 {
        self.spilled
    }

    fn spill(&mut self) -> Result<(), SpillError> {
        // The order is found on indices, not on the pairs: values may be large (a node is
        // a few hundred bytes), and a sort of them moves each many times.
        let mut order: Vec<u32> = (0..self.buffer.len() as u32).collect();
        order.sort_by(|&a, &b| self.buffer[a as usize].0.cmp(&self.buffer[b as usize].0));
        let mut file = NamedTempFile::new()?;
        {
            let mut out = BufWriter::new(file.as_file_mut());
            for &i in &order {
                write_item(&mut out, &self.buffer[i as usize], &mut self.scratch)?;
            }
            out.flush()?;
        }
        self.spilled += self.buffer.len() as u64;
        self.buffer.clear();
        self.runs.push(file.into_temp_path());
        Ok(())
    }

    /// Every pair, by key. May be called again (each call reads the runs afresh).
    pub fn sorted(&mut self) -> Result<Sorted<'_, K, V>, SpillError> {
        while self.runs.len() > FAN_IN {
            let merged = {
                let mut out = NamedTempFile::new()?;
                let group: Vec<TempPath> = self.runs.drain(..FAN_IN).collect();
                {
                    let mut w = BufWriter::new(out.as_file_mut());
                    let mut merge: Sorted<'_, K, V> = Sorted::open(&group, &[])?;
                    for item in &mut merge {
                        write_item(&mut w, &item?, &mut self.scratch)?;
                    }
                    w.flush()?;
                }
                out.into_temp_path()
            };
            // The merged run holds the oldest pairs: it goes first.
            self.runs.insert(0, merged);
        }
        self.buffer.sort_by(|a, b| a.0.cmp(&b.0));
        Sorted::open(&self.runs, &self.buffer)
    }
}

/// The smallest key a run has not yet given. Its value waits in [`Sorted::values`]: the
/// heap moves heads on every push and pop, and values may be large.
struct Head<K> {
    key: K,
    /// Which run (the memory buffer last): ties go to the earlier.
    source: usize,
}

impl<K: Ord> PartialEq for Head<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<K: Ord> Eq for Head<K> {}
impl<K: Ord> PartialOrd for Head<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Head<K> {
    // Reversed: the heap's top is the smallest.
    fn cmp(&self, other: &Self) -> Ordering {
        (&other.key, other.source).cmp(&(&self.key, self.source))
    }
}

/// The merge of a [`Sorter`]'s runs and buffer, smallest key first.
pub struct Sorted<'a, K, V> {
    readers: Vec<BufReader<File>>,
    memory: std::slice::Iter<'a, (K, V)>,
    heap: BinaryHeap<Head<K>>,
    /// The value of each run's head (by source).
    values: Vec<Option<V>>,
    scratch: Vec<u8>,
    failed: bool,
}

impl<'a, K, V> Sorted<'a, K, V>
where
    K: Ord + Clone + DeserializeOwned,
    V: Clone + DeserializeOwned,
{
    fn open(runs: &[TempPath], memory: &'a [(K, V)]) -> Result<Self, SpillError> {
        let mut s = Sorted {
            readers: Vec::with_capacity(runs.len()),
            memory: memory.iter(),
            heap: BinaryHeap::with_capacity(runs.len() + 1),
            values: Vec::new(),
            scratch: Vec::new(),
            failed: false,
        };
        let buffer =
            (READ_BUFFERS / runs.len().max(1)).clamp(*READ_BUFFER.start(), *READ_BUFFER.end());
        for run in runs {
            s.readers
                .push(BufReader::with_capacity(buffer, File::open(run)?));
        }
        s.values.resize_with(runs.len() + 1, || None);
        for i in 0..=s.readers.len() {
            s.refill(i)?;
        }
        Ok(s)
    }

    fn refill(&mut self, source: usize) -> Result<(), SpillError> {
        let next = if source == self.readers.len() {
            self.memory.next().cloned()
        } else {
            read_item::<(K, V)>(&mut self.readers[source], &mut self.scratch)?
        };
        if let Some((key, value)) = next {
            self.values[source] = Some(value);
            self.heap.push(Head { key, source });
        }
        Ok(())
    }
}

impl<K, V> Iterator for Sorted<'_, K, V>
where
    K: Ord + Clone + DeserializeOwned,
    V: Clone + DeserializeOwned,
{
    type Item = Result<(K, V), SpillError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let head = self.heap.pop()?;
        let value = self.values[head.source]
            .take()
            .expect("a head's value waits until it is popped");
        if let Err(e) = self.refill(head.source) {
            self.failed = true;
            return Some(Err(e));
        }
        Some(Ok((head.key, value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The external sort is a stable sort by key, whatever the limit and however the
        /// pairs were split between sorters.
        #[test]
        fn same_as_a_stable_sort(items in proptest::collection::vec((0u8..20, any::<u32>()), 0..400),
                                 limit in 1usize..50, split in 0usize..400) {
            let split = split.min(items.len());
            let mut a = Sorter::new(limit);
            let mut b = Sorter::new(limit);
            for (i, &(k, v)) in items.iter().enumerate() {
                if i < split { a.push(k, v).unwrap() } else { b.push(k, v).unwrap() }
            }
            a.append(b).unwrap();
            let mut expected = items.clone();
            expected.sort_by_key(|p| p.0);
            for _ in 0..2 {
                let got: Vec<(u8, u32)> = a.sorted().unwrap().map(Result::unwrap).collect();
                prop_assert_eq!(&got, &expected);
            }
        }
    }

    /// Open files of this process.
    #[cfg(target_os = "linux")]
    fn open_files() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn runs_do_not_hold_files_open_while_they_wait() {
        let before = open_files();
        let mut s = Sorter::new(1);
        let n = 3_000u32;
        for i in (0..n).rev() {
            s.push(i, ()).unwrap();
        }
        assert_eq!(s.spilled(), u64::from(n));
        // Other tests run on other threads of this process: a margin, far below 3,000.
        assert!(open_files() < before + 50, "{} files open", open_files());
        let keys: Vec<u32> = s.sorted().unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, (0..n).collect::<Vec<_>>());
    }

    #[test]
    fn many_runs_are_merged_in_stages() {
        let mut s = Sorter::new(3);
        let n = 3 * (FAN_IN as u32 * 2 + 5);
        for i in (0..n).rev() {
            s.push(i, ()).unwrap();
        }
        assert!(s.runs.len() > FAN_IN);
        let keys: Vec<u32> = s.sorted().unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, (0..n).collect::<Vec<_>>());
        assert!(s.runs.len() <= FAN_IN);
    }
}
