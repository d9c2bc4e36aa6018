//! Output streams. Generators push records in any order; [`Sink::flush_until`] writes every
//! record older than a time, sorted by (time, push order), so files are in time order while
//! only one slice of the simulation is held in memory. Record ids and line numbers are given
//! at write time, and each labelled record's ground truth is written beside it then.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::clock;
use crate::windows::WinEvent;

/// What a stream holds; decides its file headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Windows events as JSON Lines in the evtx_dump shape.
    Windows,
    /// IIS W3C extended logs.
    Web,
    /// NCSA access logs (Tomcat, Apache, nginx).
    Access,
    /// PostgreSQL stderr logs with pgaudit lines.
    Db,
    /// Mediated CDRs (CSV).
    Cdr,
    /// Zeek `conn.log` flow records.
    Flows,
}

impl Kind {
    /// Whether the records are events (they count for false-alarm rates) rather than data.
    pub fn is_event(self) -> bool {
        !matches!(self, Kind::Cdr)
    }
}

/// The campaign step a record belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Label {
    pub wave: u8,
    pub stage: u8,
    pub technique: &'static str,
    pub what: &'static str,
}

pub enum Body {
    Win(Box<WinEvent>),
    Text(String),
}

struct Pending {
    time: i64,
    seq: u64,
    body: Body,
    label: Option<Label>,
    twin: Option<&'static str>,
}

/// Where a stream's records go: one file, or one file per UTC day named by a function of
/// the day's `YYYY-MM-DD`.
pub enum Layout {
    Single(String),
    Daily(Box<dyn Fn(&str) -> String>),
}

/// The file a stream is writing: files are opened for one flush at a time (appending), so
/// neither memory nor open files grow with the number of hosts.
struct Open {
    day: i64,
    rel: String,
    line: u64,
    last: i64,
}

struct Stream {
    kind: Kind,
    layout: Layout,
    computer: String,
    /// Written at the top of each file instead of the kind's header.
    header: Option<String>,
    pending: Vec<Pending>,
    open: Option<Open>,
    record_id: u64,
}

/// Per-file counts, written to `truth/files.json`.
#[derive(Debug, Default, Clone, Serialize, serde::Deserialize)]
pub struct FileStats {
    pub kind: String,
    pub records: u64,
    pub malicious: u64,
}

pub type StreamId = usize;

pub struct Sink {
    root: PathBuf,
    streams: Vec<Stream>,
    seq: u64,
    label: Option<Label>,
    twin: Option<&'static str>,
    labels: BufWriter<File>,
    twins: BufWriter<File>,
    files: BTreeMap<String, FileStats>,
    buf: String,
    /// Bytes of the current stream's batch not yet appended to its file.
    batch: Vec<u8>,
    /// Records written, by kind.
    written: BTreeMap<&'static str, u64>,
}

impl Sink {
    pub fn create(root: &Path) -> io::Result<Sink> {
        fs::create_dir_all(root.join("truth"))?;
        let labels = BufWriter::new(File::create(root.join("truth/labels.jsonl"))?);
        let twins = BufWriter::new(File::create(root.join("truth/benign_twins.jsonl"))?);
        Ok(Sink {
            root: root.to_path_buf(),
            streams: Vec::new(),
            seq: 0,
            label: None,
            twin: None,
            labels,
            twins,
            files: BTreeMap::new(),
            buf: String::with_capacity(4096),
            batch: Vec::with_capacity(1 << 20),
            written: BTreeMap::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new stream; `computer` names the host of Windows events.
    pub fn stream(&mut self, kind: Kind, layout: Layout, computer: &str) -> StreamId {
        self.streams.push(Stream {
            kind,
            layout,
            computer: computer.to_string(),
            header: None,
            pending: Vec::new(),
            open: None,
            record_id: 0,
        });
        self.streams.len() - 1
    }

    /// Writes `header` at the top of each of the stream's files.
    pub fn set_header(&mut self, stream: StreamId, header: String) {
        self.streams[stream].header = Some(header);
    }

    /// Labels every record pushed from now on (the campaign), or none (`None`: background).
    pub fn set_label(&mut self, label: Option<Label>) {
        self.label = label;
    }

    /// Marks every record pushed from now on as a benign twin of the campaign's moves of this
    /// category (`truth/benign_twins.jsonl`), or none.
    pub fn set_twin(&mut self, category: Option<&'static str>) {
        self.twin = category;
    }

    pub fn push(&mut self, stream: StreamId, time: i64, body: Body) {
        self.seq += 1;
        self.streams[stream].pending.push(Pending {
            time,
            seq: self.seq,
            body,
            label: self.label.clone(),
            twin: self.twin,
        });
    }

    pub fn text(&mut self, stream: StreamId, time: i64, line: String) {
        self.push(stream, time, Body::Text(line));
    }

    /// Writes every pending record older than `until`, in time order.
    pub fn flush_until(&mut self, until: i64) -> io::Result<()> {
        for s in 0..self.streams.len() {
            let mut pending = std::mem::take(&mut self.streams[s].pending);
            pending.sort_unstable_by_key(|p| (p.time, p.seq));
            let split = pending.partition_point(|p| p.time < until);
            let keep = pending.split_off(split);
            for p in pending {
                self.write(s, p)?;
            }
            self.append(s)?;
            self.streams[s].pending = keep;
        }
        self.twins.flush()?;
        self.labels.flush()
    }

    fn write(&mut self, s: StreamId, p: Pending) -> io::Result<()> {
        let day = p.time.div_euclid(clock::DAY);
        let needs_open = match &self.streams[s].open {
            None => true,
            // A record a few seconds older than the last day's first stays in that day's file
            // rather than reopening (and truncating) the one before.
            Some(o) => matches!(self.streams[s].layout, Layout::Daily(_)) && day > o.day,
        };
        if needs_open {
            self.close(s)?;
            let rel = match &self.streams[s].layout {
                Layout::Single(rel) => rel.clone(),
                Layout::Daily(name) => name(&clock::date(p.time)),
            };
            let path = self.root.join(&rel);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            File::create(&path)?;
            let header = match &self.streams[s].header {
                Some(h) => format!("{h}\n"),
                None => header(self.streams[s].kind, p.time),
            };
            self.batch.extend_from_slice(header.as_bytes());
            let kind = format!("{:?}", self.streams[s].kind).to_lowercase();
            self.files.entry(rel.clone()).or_default().kind = kind;
            self.streams[s].open = Some(Open {
                day,
                rel,
                line: header.matches('\n').count() as u64,
                last: p.time,
            });
        }
        let stream = &mut self.streams[s];
        stream.record_id += 1;
        let record_id = stream.record_id;
        self.buf.clear();
        let is_win = match &p.body {
            Body::Win(e) => {
                e.render(&mut self.buf, p.time, record_id, &stream.computer);
                true
            }
            Body::Text(t) => {
                self.buf.push_str(t);
                false
            }
        };
        self.buf.push('\n');
        let open = stream.open.as_mut().expect("opened above");
        let first_line = open.line + 1;
        open.line += self.buf.matches('\n').count() as u64;
        open.last = p.time;
        self.batch.extend_from_slice(self.buf.as_bytes());
        let stats = self.files.get_mut(&open.rel).expect("registered on open");
        stats.records += 1;
        *self
            .written
            .entry(match stream.kind {
                Kind::Windows => "windows",
                Kind::Web | Kind::Access => "web",
                Kind::Db => "db",
                Kind::Cdr => "cdr",
                Kind::Flows => "flows",
            })
            .or_default() += 1;
        if let Some(category) = p.twin {
            let entry = serde_json::json!({
                "file": open.rel,
                "line": first_line,
                "record_id": is_win.then_some(record_id),
                "category": category,
            });
            serde_json::to_writer(&mut self.twins, &entry)?;
            self.twins.write_all(b"\n")?;
        }
        if let Some(label) = p.label {
            stats.malicious += 1;
            let entry = serde_json::json!({
                "file": open.rel,
                "line": first_line,
                "record_id": is_win.then_some(record_id),
                "time": clock::rfc3339_us(p.time),
                "host": stream.computer,
                "wave": label.wave,
                "stage": label.stage,
                "technique": label.technique,
                "what": label.what,
            });
            serde_json::to_writer(&mut self.labels, &entry)?;
            self.labels.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Appends the batch to the stream's current file.
    fn append(&mut self, s: StreamId) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let open = self.streams[s]
            .open
            .as_ref()
            .expect("a batch belongs to an open file");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.root.join(&open.rel))?;
        file.write_all(&self.batch)?;
        self.batch.clear();
        Ok(())
    }

    /// Ends the stream's current file (Zeek writes a `#close` line).
    fn close(&mut self, s: StreamId) -> io::Result<()> {
        if let Some(open) = &self.streams[s].open {
            if self.streams[s].kind == Kind::Flows {
                self.batch
                    .extend_from_slice(format!("#close\t{}\n", zeek_stamp(open.last)).as_bytes());
            }
            self.append(s)?;
        }
        self.streams[s].open = None;
        Ok(())
    }

    /// Flushes everything, closes the files and writes `truth/files.json`; returns the
    /// per-file counts and the records written per kind.
    #[allow(clippy::type_complexity)]
    pub fn finish(
        mut self,
    ) -> io::Result<(BTreeMap<String, FileStats>, BTreeMap<&'static str, u64>)> {
        self.flush_until(i64::MAX)?;
        for s in 0..self.streams.len() {
            self.close(s)?;
        }
        self.labels.flush()?;
        let files = std::mem::take(&mut self.files);
        fs::write(
            self.root.join("truth/files.json"),
            serde_json::to_vec_pretty(&files)?,
        )?;
        Ok((files, self.written))
    }
}

/// The W3C fields IIS writes with `sc-bytes`, `cs-bytes` and the proxy header enabled.
pub const W3C_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken";

fn zeek_stamp(t: i64) -> String {
    let p = clock::parts(t);
    format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        p.y, p.mo, p.d, p.h, p.mi, p.s
    )
}

fn header(kind: Kind, first: i64) -> String {
    match kind {
        Kind::Web => {
            let (d, t) = clock::w3c(first);
            format!(
                "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: {d} {t}\n#Fields: {W3C_FIELDS}\n"
            )
        }
        Kind::Cdr => String::new(),
        Kind::Flows => format!(
            "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t{}\n\
             #fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n\
             #types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n",
            zeek_stamp(first)
        ),
        Kind::Windows | Kind::Db | Kind::Access => String::new(),
    }
}
