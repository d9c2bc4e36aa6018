//! Stages 8–9: the query results in password-protected split RAR volumes in the Recycle
//! Bin, moved to the web server and downloaded from it, then deleted through the shell.

use super::{Collector, Ctx, Foothold, WaveState};
use crate::clock::{MINUTE, SECOND};
use crate::sink::Sink;
use crate::web::{self, Request};
use crate::windows::{exe, Exe};
use crate::world::Role;

impl WaveState<'_> {
    /// Where archive volume `p` is downloaded from, by web stack.
    fn download_uri(&self, p: usize) -> String {
        match self.role {
            Role::WebIis => format!("/aspnet_client/system_web/cdr.part{p:02}.rar"),
            Role::WebTomcat => format!("/portal/static/cdr.part{p:02}.rar"),
            _ => format!("/cdr.part{p:02}.rar"),
        }
    }
}

/// Stage 8: archives the results and copies the volumes to the web server; returns how many
/// volumes there are.
pub(super) fn stage(
    c: &mut Ctx<'_>,
    w: &mut WaveState<'_>,
    sink: &mut Sink,
    hold: &Foothold<'_>,
    collector: &Collector<'_>,
) -> usize {
    let org = c.world.org();
    let dir = c.kit.dir;
    let dest = w.dest;
    let rar_path = &hold.rar_path;
    let (cm, ccmd, chost_ip) = (collector.cm, &collector.ccmd, &collector.ip);
    let t = w.t;
    c.label(
        sink,
        8,
        "T1560.001",
        "password-protected split RAR of the query results",
    );
    let bin = format!("C:\\$Recycle.Bin\\{}-{}", org.sid, 1100 + c.kit.wave as u32);
    let rar = cm.spawn(
        sink,
        &mut c.dice,
        t,
        ccmd,
        Exe {
            path: rar_path,
            pe: "Rar.exe",
            build: c.kit.build,
        },
        format!(
            "{rar_path} a -r -m5 -hpTr0ub4dor{w} -v50m \"{bin}\\cdr.rar\" {dir}\\r*.csv",
            w = c.kit.wave
        ),
    );
    let parts = 3 + c.dice.index(4);
    c.label(
        sink,
        8,
        "T1074.001",
        "archive volumes staged in the Recycle Bin",
    );
    for p in 1..=parts {
        cm.file(
            sink,
            t + (10 * p as i64) * SECOND,
            &rar,
            &format!("{bin}\\cdr.part{p:02}.rar"),
        );
    }
    cm.spawn(
        sink,
        &mut c.dice,
        t + 2 * MINUTE,
        ccmd,
        exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
        format!("cmd /c del /q {dir}\\r*.csv {dir}\\q*.sql"),
    );
    w.t += 10 * MINUTE;
    let t = w.t;
    let entry_ip = &w.web_ip;
    c.label(
        sink,
        8,
        "T1074.001",
        "archive volumes moved to the web server",
    );
    cm.spawn(
        sink,
        &mut c.dice,
        t,
        ccmd,
        exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
        format!("cmd /c copy \"{bin}\\cdr.part*.rar\" \\\\{entry_ip}\\{dest}\\"),
    );
    for p in 1..=parts {
        let local = dest.replacen("c$", "C:", 1);
        w.web.file(
            sink,
            t + (5 * p as i64) * SECOND,
            &w.system4,
            &format!("{local}\\cdr.part{p:02}.rar"),
        );
    }
    c.flow(
        sink,
        t,
        (chost_ip, 50_620),
        (entry_ip, 445),
        "smb",
        40.0,
        50_000_000 * parts as u64,
        40_000,
    );
    parts
}

/// Stage 9: the `parts` volumes leave through the web server (logged downloads where it
/// keeps access logs, bare connections where it does not).
pub(super) fn exfiltrate(c: &mut Ctx<'_>, w: &mut WaveState<'_>, sink: &mut Sink, parts: usize) {
    let world = c.world;
    let (entry, entry_ip, attacker) = (w.entry, &w.web_ip, &w.attacker);
    w.t += c.dice.range(20, 120) * MINUTE;
    let t = w.t;
    c.label(
        sink,
        9,
        "T1041",
        "archive volumes downloaded from the web server",
    );
    let logs = c.estate.web[entry].is_some();
    for p in 1..=parts {
        let tt = t + (p as i64) * 3 * MINUTE;
        let size = if p == parts {
            17_000_000 + c.dice.below(30_000_000)
        } else {
            52_428_800
        };
        if logs {
            let stem = w.download_uri(p);
            let req = Request {
                method: "GET",
                stem: &stem,
                query: "",
                port: 443,
                user: "",
                client: attacker,
                agent: "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
                referer: "",
                status: 200,
                sc_bytes: size,
                cs_bytes: 310,
                time_taken_ms: 60_000 + c.dice.below(90_000),
            };
            web::log(sink, world, &c.estate.web, w.offset, entry, tt, &req);
        } else {
            w.web.connect(
                sink,
                tt,
                &w.parent,
                "tcp",
                false,
                (entry_ip, 8080),
                (attacker, 50_000 + p as u16),
            );
        }
        let front = world
            .profile
            .balancer
            .map_or(entry_ip.clone(), String::from);
        c.flow(
            sink,
            tt,
            (attacker, 50_000 + p as u16),
            (&front, if logs { 443 } else { 8080 }),
            if logs { "ssl" } else { "http" },
            95.0,
            400,
            size,
        );
    }
    w.t += (parts as i64 + 1) * 3 * MINUTE;
    let cleanup = format!("del /q {}\\cdr.part*.rar", w.dest.replacen("c$", "C:", 1));
    w.shell_cmd(
        c,
        sink,
        w.t,
        9,
        "T1070.004",
        "archive volumes deleted from the web root",
        exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
        &cleanup,
    );
}
