//! Windows events as evtx_dump writes them (`{"Event":{"System":…,"EventData":…}}`), and the
//! helpers that emit the events a Windows estate produces: Sysmon and Security process
//! creation with consistent process GUIDs, ids and logon ids, logons, network connections,
//! files, image loads, services, tasks, accounts, PowerShell script blocks.
//!
//! One file per family: `render` writes the JSON, `process` creates processes, `sysmon` the
//! rest of Sysmon, `logon` logons and authentication, `admin` services, tasks, accounts and
//! groups. This file holds the types they share and the emitting core of `Machine`.

mod admin;
mod logon;
mod process;
mod render;
mod sysmon;

pub use render::WinEvent;

use render::Channel;

use crate::sink::{Body, Sink, StreamId};
use crate::world::{Account, Host};

/// Who a process or logon runs as.
#[derive(Debug, Clone)]
pub struct Who {
    pub domain: String,
    pub name: String,
    pub sid: String,
    pub logon_id: u64,
}

impl Who {
    pub fn system() -> Who {
        Who {
            domain: "NT AUTHORITY".into(),
            name: "SYSTEM".into(),
            sid: "S-1-5-18".into(),
            logon_id: 0x3e7,
        }
    }

    /// A domain user.
    pub fn user(domain: &str, name: &str, sid: &str, logon_id: u64) -> Who {
        Who {
            domain: domain.into(),
            name: name.into(),
            sid: sid.into(),
            logon_id,
        }
    }

    /// An account of the estate in a logon session.
    pub fn of(a: &Account, logon_id: u64) -> Who {
        Who::user(a.domain, &a.name, &a.sid, logon_id)
    }

    /// `NT AUTHORITY\LOCAL SERVICE` (services such as Tomcat's run as it).
    pub fn local_service() -> Who {
        Who {
            domain: "NT AUTHORITY".into(),
            name: "LOCAL SERVICE".into(),
            sid: "S-1-5-19".into(),
            logon_id: 0x3e5,
        }
    }

    pub fn app_pool(pool: &str) -> Who {
        Who {
            domain: "IIS APPPOOL".into(),
            name: pool.into(),
            sid: "S-1-5-82-3006700770-424185619-1745488364-794895919-4004696415".into(),
            logon_id: 0x1f3a2c,
        }
    }

    pub fn qualified(&self) -> String {
        format!("{}\\{}", self.domain, self.name)
    }

    fn is_system(&self) -> bool {
        self.sid == "S-1-5-18"
    }
}

/// A running process.
#[derive(Debug, Clone)]
pub struct Proc {
    pub guid: String,
    pub pid: u32,
    pub image: String,
    pub cmd: String,
    pub who: Who,
    pub integrity: &'static str,
}

/// The executable a process runs: its path and the PE's own name (`OriginalFileName`),
/// which renaming does not change; `build` tells rebuilds of the same tool apart (hashes).
#[derive(Debug, Clone, Copy)]
pub struct Exe<'a> {
    pub path: &'a str,
    pub pe: &'static str,
    pub build: u32,
}

pub fn exe<'a>(path: &'a str, pe: &'static str) -> Exe<'a> {
    Exe { path, pe, build: 0 }
}

/// Where events of one host go.
#[derive(Clone, Copy)]
pub struct Machine<'a> {
    pub host: &'a Host,
    pub stream: StreamId,
}

impl Machine<'_> {
    fn emit(&self, sink: &mut Sink, t: i64, e: WinEvent) {
        sink.push(self.stream, t, Body::Win(Box::new(e)));
    }

    fn sysmon(&self, sink: &mut Sink, t: i64, id: u16, data: Vec<(&'static str, String)>) {
        if self.host.sysmon {
            self.emit(
                sink,
                t,
                WinEvent {
                    channel: Channel::Sysmon,
                    event_id: id,
                    data,
                    user_sid: Some("S-1-5-18".into()),
                    exec_pid: 2_236,
                },
            );
        }
    }

    fn security(&self, sink: &mut Sink, t: i64, id: u16, data: Vec<(&'static str, String)>) {
        self.emit(
            sink,
            t,
            WinEvent {
                channel: Channel::Security,
                event_id: id,
                data,
                user_sid: None,
                exec_pid: 684,
            },
        );
    }

    /// The machine account (`WEB01$`) that Security events name for SYSTEM.
    fn subject(&self, who: &Who) -> (String, String, String, String) {
        if who.is_system() {
            (
                "S-1-5-18".into(),
                format!("{}$", self.host.name),
                self.host.org.netbios.into(),
                "0x3e7".into(),
            )
        } else {
            (
                who.sid.clone(),
                who.name.clone(),
                who.domain.clone(),
                format!("{:#x}", who.logon_id),
            )
        }
    }
}

fn logon_guid(logon_id: u64) -> String {
    format!(
        "{{b5c1a3f2-{:04x}-{:04x}-0000-{:012x}}}",
        (logon_id >> 16) & 0xffff,
        logon_id & 0xffff,
        logon_id
    )
}
