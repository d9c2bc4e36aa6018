//! Stages 1–2: exploit the public web server, plant the web shell, and look around through
//! it. Also the shell's own requests and commands, which later stages use too.

use super::{Ctx, WaveState};
use crate::clock::{MINUTE, SECOND};
use crate::flows::{self, Flow};
use crate::sink::Sink;
use crate::web::{self, Request};
use crate::windows::{exe, Exe, Proc};

impl WaveState<'_> {
    /// One POST to the web shell, answered with `bytes`.
    pub(super) fn shell_req(&self, c: &mut Ctx<'_>, sink: &mut Sink, t: i64, bytes: u64) {
        let req = Request {
            method: "POST",
            stem: &self.shell_uri,
            query: "",
            port: 443,
            user: "",
            client: &self.attacker,
            agent: "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
            referer: "",
            status: 200,
            sc_bytes: bytes,
            cs_bytes: 300 + c.dice.below(700),
            time_taken_ms: 200 + c.dice.below(3000),
        };
        web::log(
            sink,
            c.world,
            &c.estate.web,
            self.offset,
            self.entry,
            t,
            &req,
        );
    }

    /// A command through the shell: its request, the web server's `cmd.exe`, and `tool`
    /// run by it with `line` (labelled with `stage`, `technique` and `what`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn shell_cmd(
        &self,
        c: &mut Ctx<'_>,
        sink: &mut Sink,
        t: i64,
        stage: u8,
        technique: &'static str,
        what: &'static str,
        tool: Exe<'_>,
        line: &str,
    ) -> Proc {
        let (s_mark, e_mark) = c.kit.marker;
        let webroot = self.webroot;
        c.label(sink, 1, "T1505.003", "web shell request");
        let bytes = 400 + c.dice.below(6000);
        self.shell_req(c, sink, t - 2 * SECOND, bytes);
        c.label(
            sink,
            1,
            "T1059.003",
            "command shell spawned by the web server",
        );
        let cmd = self.web.spawn(
            sink,
            &mut c.dice,
            t,
            &self.parent,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            format!("cmd /c cd /d \"{webroot}\"&{line}&echo {s_mark}&cd&echo {e_mark}"),
        );
        c.label(sink, stage, technique, what);
        self.web
            .spawn(sink, &mut c.dice, t + 300_000, &cmd, tool, line.to_string())
    }
}

/// Stage 1: exploit the public server, plant the shell.
pub(super) fn exploit(c: &mut Ctx<'_>, w: &mut WaveState<'_>, sink: &mut Sink) {
    c.truth.web_shell = w.shell_path.clone();
    c.label(
        sink,
        1,
        "T1190",
        "exploit attempts against the public server",
    );
    for i in 0..(12 + c.dice.index(10)) {
        let stem = *c.dice.pick(&w.exploit_pages);
        let status = *c.dice.pick(&[500, 500, 404, 403, 200]);
        let tt = w.t + i as i64 * 20 * SECOND;
        let req = Request {
            method: if i % 3 == 0 { "GET" } else { "POST" },
            stem,
            query: if stem.ends_with(".axd") {
                "type=rau"
            } else {
                ""
            },
            port: 443,
            user: "",
            client: &w.attacker,
            agent: "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:45.0) Gecko/20100101 Firefox/45.0",
            referer: "",
            status,
            sc_bytes: if status == 500 { 3_420 } else { 1_245 },
            cs_bytes: 900 + c.dice.below(40_000),
            time_taken_ms: 40 + c.dice.below(900),
        };
        web::log(sink, c.world, &c.estate.web, w.offset, w.entry, tt, &req);
    }
    w.t += 8 * MINUTE;
    c.label(
        sink,
        1,
        "T1505.003",
        "web shell written by the web server process",
    );
    w.web.file(sink, w.t, &w.parent, &w.shell_path);
    w.shell_req(c, sink, w.t + 30 * SECOND, 120);
    w.t += MINUTE;
}

/// Stage 2: discovery through the shell. Every command is one request and one cmd.exe.
pub(super) fn discover(c: &mut Ctx<'_>, w: &mut WaveState<'_>, sink: &mut Sink) {
    let world = c.world;
    let dir = c.kit.dir;
    let db_ip = w.db_ip.clone();
    let ping = format!("ping -n 1 {db_ip}");
    let recon: Vec<(&'static str, &'static str, Exe<'static>, &str)> = vec![
        (
            "T1033",
            "owner discovery",
            exe("C:\\Windows\\System32\\whoami.exe", "whoami.exe"),
            "whoami",
        ),
        (
            "T1016",
            "network configuration discovery",
            exe("C:\\Windows\\System32\\ipconfig.exe", "ipconfig.exe"),
            "ipconfig /all",
        ),
        (
            "T1049",
            "network connections discovery",
            exe("C:\\Windows\\System32\\NETSTAT.EXE", "netstat.exe"),
            "netstat -oan",
        ),
        (
            "T1033",
            "logged-on users",
            exe("C:\\Windows\\System32\\quser.exe", "quser.exe"),
            "query user",
        ),
        (
            "T1069.002",
            "domain admins discovery",
            exe("C:\\Windows\\System32\\net.exe", "net.exe"),
            "net group \"domain admins\" /domain",
        ),
        (
            "T1018",
            "remote system discovery",
            exe("C:\\Windows\\System32\\net.exe", "net.exe"),
            "net view /domain",
        ),
        (
            "T1018",
            "ping sweep",
            exe("C:\\Windows\\System32\\PING.EXE", "ping.exe"),
            &ping,
        ),
    ];
    let keep = recon.len() - (c.dice.index(3));
    for (technique, what, tool, line) in recon.into_iter().take(keep) {
        w.t += c.dice.range(15, 90) * SECOND;
        w.shell_cmd(c, sink, w.t, 2, technique, what, tool, line);
    }
    // The scanner and PortQry, dropped by the shell (renamed in later waves).
    let tools = world.profile.habits.tools;
    let renamed_tools = world.profile.habits.renamed;
    let nbt_path = c.tool(&if c.kit.renamed {
        format!("{dir}\\{}", renamed_tools[0])
    } else {
        format!("{dir}\\{}", tools[0])
    });
    let qry_path = c.tool(&format!("{dir}\\PortQry.exe"));
    w.t += MINUTE;
    c.label(
        sink,
        2,
        "T1105",
        "discovery tools uploaded through the shell",
    );
    w.shell_req(c, sink, w.t - SECOND, 200);
    w.web.file(sink, w.t, &w.parent, &nbt_path);
    w.web.file(sink, w.t + SECOND, &w.parent, &qry_path);
    w.t += 30 * SECOND;
    let subnet = db_ip
        .rsplit_once('.')
        .map_or(db_ip.clone(), |(n, _)| n.to_string());
    let build = c.kit.build;
    let nbt = w.shell_cmd(
        c,
        sink,
        w.t,
        2,
        "T1018",
        "NetBIOS scan of the CDR segment",
        Exe {
            path: &nbt_path,
            pe: "nbtscan.exe",
            build,
        },
        &format!("{nbt_path} -r {subnet}.0/24"),
    );
    let web_ip = w.web_ip.clone();
    let t = w.t;
    for host in world
        .hosts
        .iter()
        .filter(|h| h.ip.starts_with(&format!("{subnet}.")))
    {
        w.web.connect(
            sink,
            t + SECOND,
            &nbt,
            "udp",
            true,
            (&web_ip, 137),
            (&host.ip, 137),
        );
        let line = flows::line(
            &mut c.dice,
            t + SECOND,
            &Flow {
                orig: (&web_ip, 137),
                resp: (&host.ip, 137),
                proto: "udp",
                service: "dns",
                duration_s: 0.01,
                orig_bytes: 50,
                resp_bytes: 229,
            },
        );
        sink.text(c.estate.flows, t + SECOND, line);
    }
    w.t += 2 * MINUTE;
    let qry = w.shell_cmd(
        c,
        sink,
        w.t,
        2,
        "T1046",
        "port probe of the CDR database",
        Exe {
            path: &qry_path,
            pe: "PortQry.exe",
            build: 0,
        },
        &format!("{qry_path} -n {db_ip} -e 5432"),
    );
    w.web.connect(
        sink,
        w.t + SECOND,
        &qry,
        "tcp",
        true,
        (&web_ip, 51_330),
        (&db_ip, 5432),
    );
}
