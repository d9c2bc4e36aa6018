//! Sessions that began in an earlier file of the same log series. A stderr log rotates daily
//! or hourly while its backends live on: a session that connected yesterday names its client
//! only in yesterday's file. With a prefix that does not carry the client (Debian's
//! `%m [%p] %q%u@%d `), today's records of that backend would have no client, and the
//! database session could not be tied to the host that ran it.
//!
//! The first reader of a directory's PostgreSQL stderr logs reads the connection lines of all
//! of them once, in name order per series (names alike but for their digits:
//! `postgresql-2019-03-24.log`, `postgresql.log.2019-03-11-00`), and keeps the sessions open
//! at the start of each file; every file's reader starts from those.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::{detect_prefix, record_of, track, LinePrefix, Session, DETECT_RECORDS};

/// Per directory, the sessions open at the start of each of its stderr logs; built once per
/// run, shared by every reader (see the module docs).
#[derive(Debug, Default)]
pub struct SessionCarry {
    dirs: Mutex<HashMap<PathBuf, Arc<OnceLock<Series>>>>,
}

#[derive(Debug, Default)]
struct Series {
    at_start: HashMap<PathBuf, HashMap<u32, Session>>,
}

/// Digits masked: the files of one rotating series share it.
fn series_of(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect()
}

impl SessionCarry {
    /// The sessions open when the log at `path` begins (empty for the first of its series).
    pub(crate) fn at_start(
        &self,
        path: &Path,
        given: Option<&LinePrefix>,
    ) -> HashMap<u32, Session> {
        let Some(dir) = path.parent() else {
            return HashMap::new();
        };
        let cell = {
            let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
            dirs.entry(dir.to_path_buf()).or_default().clone()
        };
        cell.get_or_init(|| Series::build(dir, given))
            .at_start
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

impl Series {
    fn build(dir: &Path, given: Option<&LinePrefix>) -> Series {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_stderr_log(p))
            .collect();
        logs.sort();
        let mut open_by_series: HashMap<String, HashMap<u32, Session>> = HashMap::new();
        let mut at_start = HashMap::new();
        for path in logs {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let open = open_by_series.entry(series_of(&name)).or_default();
            at_start.insert(path.clone(), open.clone());
            follow(&path, given, open);
        }
        Series { at_start }
    }
}

fn open_file(path: &Path) -> Option<Box<dyn BufRead + Send>> {
    let file = std::fs::File::open(path).ok()?;
    crate::decompressed(file).ok().map(|(r, _)| r)
}

fn is_stderr_log(path: &Path) -> bool {
    let Some(mut r) = open_file(path) else {
        return false;
    };
    let head: Vec<u8> = r
        .fill_buf()
        .map(|b| b.iter().take(4096).copied().collect())
        .unwrap_or_default();
    super::sniff(&head) == Some(super::PgFormat::Stderr)
}

/// Follows the connection lines of one log, updating the sessions open.
fn follow(path: &Path, given: Option<&LinePrefix>, open: &mut HashMap<u32, Session>) {
    let Some(mut reader) = open_file(path) else {
        return;
    };
    let mut lines: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    let mut read_line = |reader: &mut Box<dyn BufRead + Send>| -> Option<String> {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
        }
    };
    let detected;
    let prefix = match given {
        Some(p) => p,
        None => {
            while lines.len() < DETECT_RECORDS {
                match read_line(&mut reader) {
                    Some(l) => lines.push(l),
                    None => break,
                }
            }
            match detect_prefix(lines.iter().map(String::as_str)) {
                Some((p, _)) => {
                    detected = p;
                    &detected
                }
                None => return,
            }
        }
    };
    let mut see = |line: &str| {
        if !(line.contains("connection received: ")
            || line.contains("connection authorized: ")
            || line.contains("disconnection: "))
        {
            return;
        }
        if let Some(mut r) = record_of(prefix, 0, line) {
            track(open, &mut r);
        }
    };
    for l in &lines {
        see(l);
    }
    while let Some(l) = read_line(&mut reader) {
        see(&l);
    }
}
