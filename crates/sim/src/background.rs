//! The working operator: benign activity hour by hour. Besides the everyday noise (logons,
//! browsers, services, Kerberos, web traffic, CDR-store traffic from mediation, billing,
//! customer care and BI), it holds the benign twins of the campaign's moves, without which a
//! false-alarm rate means nothing: admins running PsExec, PowerShell and recon commands from
//! the jump host, IAM creating accounts and adding group members, the backup job archiving
//! with a password and dumping CDR tables, lawful-disclosure lookups of a few subscribers
//! over long ranges, JBoss deployments through `cmd.exe`, ASP.NET compiling under `w3wp.exe`.

use crate::cdr::diurnal;
use crate::clock::{self, DAY, HOUR, MINUTE, SECOND};
use crate::db::{Session, Statement};
use crate::dice::Dice;
use crate::flows::{self, Flow};
use crate::sink::Sink;
use crate::web::{self, Request};
use crate::windows::{exe, Proc, Who};
use crate::world::{Account, AccountKind, Role, World};
use crate::Estate;

/// Where the monitoring system polls from (not a simulated host).
const MONITOR_IP: &str = "10.40.0.40";

/// A lawful-disclosure request answered during the simulation (written to
/// `context/rd_requests.csv`).
#[derive(Debug, Clone)]
pub struct DisclosureRequest {
    pub case_id: String,
    pub msisdn: String,
    pub from: i64,
    pub to: i64,
    /// The officer who filed it, and the database account of the disclosure system.
    pub officer: String,
    pub account: String,
}

struct Desk {
    logon: u64,
    explorer: Option<Proc>,
}

pub struct Background<'w> {
    world: &'w World,
    estate: &'w Estate,
    dice: Dice,
    scale: f64,
    offset_min: i32,
    services: Vec<Proc>,
    desks: Vec<Desk>,
    w3wp: Proc,
    java: Proc,
    pool_sessions: Vec<Option<Session>>,
    db_pid: u32,
    pub disclosures: Vec<DisclosureRequest>,
}

impl<'w> Background<'w> {
    pub fn new(
        world: &'w World,
        estate: &'w Estate,
        seed: u64,
        scale: f64,
        offset_min: i32,
    ) -> Self {
        let mut dice = Dice::new(seed, "background");
        let services = (0..world.hosts.len())
            .map(|i| {
                estate.machine(world, i).running(
                    &mut dice,
                    "C:\\Windows\\System32\\services.exe",
                    "C:\\Windows\\system32\\services.exe",
                    Who::system(),
                )
            })
            .collect();
        let web01 = estate.machine(world, world.host("WEB01"));
        let w3wp = web01.running(
            &mut dice,
            "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
            "c:\\windows\\system32\\inetsrv\\w3wp.exe -ap \"Portal\" -v \"v4.0\" -l \"webengine4.dll\" -a \\\\.\\pipe\\iisipm5c1e -h \"C:\\inetpub\\temp\\apppools\\Portal\\Portal.config\" -w \"\" -m 0",
            Who::app_pool("Portal"),
        );
        let web02 = estate.machine(world, world.host("WEB02"));
        let svc_web = world.account("svc_care");
        let java = web02.running(
            &mut dice,
            "C:\\Program Files\\Eclipse Adoptium\\jdk-11\\bin\\java.exe",
            "\"C:\\Program Files\\Eclipse Adoptium\\jdk-11\\bin\\java.exe\" -D[Standalone] -Xms1g -Xmx4g -jar C:\\wildfly\\jboss-modules.jar -mp C:\\wildfly\\modules org.jboss.as.standalone -Djboss.home.dir=C:\\wildfly",
            Who::user(&svc_web.name, &svc_web.sid, 0x2a7f31),
        );
        let desks = world
            .hosts
            .iter()
            .map(|_| Desk {
                logon: 0,
                explorer: None,
            })
            .collect();
        Background {
            world,
            estate,
            dice,
            scale,
            offset_min,
            services,
            desks,
            w3wp,
            java,
            pool_sessions: vec![None, None],
            db_pid: 7000,
            disclosures: Vec::new(),
        }
    }

    fn local(&self, t: i64) -> (u32, u32) {
        let l = t + i64::from(self.offset_min) * MINUTE;
        (clock::parts(l).h, clock::weekday(l))
    }

    fn at(&mut self, t0: i64, within: i64) -> i64 {
        t0 + self.dice.range(0, within)
    }

    /// Everything benign that happens in the hour starting at `t0`.
    pub fn hour(&mut self, sink: &mut Sink, t0: i64) {
        sink.set_label(None);
        let (lh, wd) = self.local(t0);
        let business = wd < 5 && (8..18).contains(&lh);
        for h in 0..self.world.hosts.len() {
            match self.world.hosts[h].role {
                Role::CareWorkstation => self.care_desk(sink, t0, h, lh, business),
                Role::AdminWorkstation => self.admin_desk(sink, t0, h, lh, business),
                _ => {}
            }
            if self.world.hosts[h].role.is_server() {
                self.server_noise(sink, t0, h);
            }
        }
        self.web_traffic(sink, t0, lh);
        self.db_traffic(sink, t0, lh, wd, business);
        if business && self.dice.chance(0.35) {
            self.admin_session(sink, t0);
        }
        if business && self.dice.chance(0.04 * self.scale.max(1.0).sqrt()) {
            self.iam_provisioning(sink, t0);
        }
        if lh == 1 {
            self.nightly_backup(sink, t0);
        }
        if wd == 1 && lh == 22 {
            self.deployments(sink, t0);
        }
    }

    fn dc(&mut self) -> usize {
        let dcs = self.world.hosts_with(Role::DomainController);
        *self.dice.pick(&dcs)
    }

    fn kerberos(&mut self, sink: &mut Sink, t: i64, who: &Who, ip: &str, service_host: &str) {
        let dc = self.dc();
        let m = self.estate.machine(self.world, dc);
        m.kerberos_tgt(sink, t, who, ip);
        m.kerberos_service(sink, t + 20_000, who, &format!("{service_host}$"), ip);
    }

    /// An interactive logon of `account` on host `h` from `from` (address, workstation): the
    /// Kerberos tickets on a domain controller a second before, 4624 (and 4672 when
    /// privileged), and userinit starting Explorer. Returns the logon id and Explorer.
    #[allow(clippy::too_many_arguments)]
    fn desktop_logon(
        &mut self,
        sink: &mut Sink,
        t: i64,
        h: usize,
        account: &Account,
        logon_type: u8,
        from: (&str, &str),
        privileged: bool,
    ) -> (u64, Proc) {
        let world = self.world;
        let m = self.estate.machine(world, h);
        let host = &world.hosts[h];
        let who = Who::user(&account.name, &account.sid, 0);
        // Remote logons ask for tickets from the client's address, local ones from the host's.
        let client = if logon_type == 10 {
            from.0
        } else {
            host.ip.as_str()
        };
        self.kerberos(sink, t - SECOND, &who, client, &host.name);
        let logon = m.logon(
            sink,
            &mut self.dice,
            t,
            &who,
            logon_type,
            false,
            from,
            privileged,
        );
        let who = Who::user(&account.name, &account.sid, logon);
        let userinit = m.running(
            &mut self.dice,
            "C:\\Windows\\System32\\userinit.exe",
            "C:\\Windows\\system32\\userinit.exe",
            who,
        );
        let explorer = m.spawn(
            sink,
            &mut self.dice,
            t + 3 * SECOND,
            &userinit,
            exe("C:\\Windows\\explorer.exe", "EXPLORER.EXE"),
            "C:\\Windows\\Explorer.EXE".into(),
        );
        (logon, explorer)
    }

    fn care_desk(&mut self, sink: &mut Sink, t0: i64, h: usize, lh: u32, business: bool) {
        let world = self.world;
        let Some(agent) = world.accounts.iter().find(|a| a.desk == Some(h)) else {
            return;
        };
        let m = self.estate.machine(world, h);
        let host = &world.hosts[h];
        if business && lh == 8 {
            let t = self.at(t0, 40 * MINUTE);
            let (logon, explorer) =
                self.desktop_logon(sink, t, h, agent, 2, ("127.0.0.1", &host.name), false);
            for (i, (path, pe, cmd)) in [
                (
                    "C:\\Program Files\\NWM\\CareDesk\\CareDesk.exe",
                    "CareDesk.exe",
                    "\"C:\\Program Files\\NWM\\CareDesk\\CareDesk.exe\" /env=prod",
                ),
                (
                    "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                    "chrome.exe",
                    "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\"",
                ),
                (
                    "C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE",
                    "OUTLOOK.EXE",
                    "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\"",
                ),
            ]
            .into_iter()
            .enumerate()
            {
                m.spawn(
                    sink,
                    &mut self.dice,
                    t + (20 + 15 * i as i64) * SECOND,
                    &explorer,
                    exe(path, pe),
                    cmd.into(),
                );
            }
            self.desks[h] = Desk {
                logon,
                explorer: Some(explorer),
            };
        } else if business && lh > 8 {
            let Some(explorer) = self.desks[h].explorer.clone() else {
                return;
            };
            for _ in 0..self.dice.poisson(3.0) {
                let t = self.at(t0, HOUR);
                let cmd = format!(
                    "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer --lang=en-US --renderer-client-id={} --mojo-platform-channel-handle={}",
                    self.dice.range(5, 400),
                    self.dice.range(1000, 9000)
                );
                m.spawn(
                    sink,
                    &mut self.dice,
                    t,
                    &explorer,
                    exe(
                        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
                        "chrome.exe",
                    ),
                    cmd,
                );
            }
            if self.dice.chance(0.15) {
                let t = self.at(t0, HOUR);
                m.spawn(sink, &mut self.dice, t, &explorer, exe("C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE", "Excel.exe"), "\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" \"\\\\FS01\\care\\reports\\daily.xlsx\"".into());
                let fs = self.world.host("FS01");
                let who = Who::user(&agent.name, &agent.sid, 0);
                self.estate.machine(world, fs).logon(
                    sink,
                    &mut self.dice,
                    t,
                    &who,
                    3,
                    false,
                    (&host.ip, &host.name),
                    false,
                );
            }
            if lh == 17 {
                let t = self.at(t0 + 30 * MINUTE, 30 * MINUTE);
                let who = Who::user(&agent.name, &agent.sid, self.desks[h].logon);
                m.logoff(sink, t, &who, self.desks[h].logon, 2);
                self.desks[h].explorer = None;
            }
        }
    }

    fn admin_desk(&mut self, sink: &mut Sink, t0: i64, h: usize, lh: u32, business: bool) {
        let world = self.world;
        let Some(admin) = world
            .accounts
            .iter()
            .find(|a| a.desk == Some(h) && a.kind == AccountKind::Admin)
        else {
            return;
        };
        if business && lh == 8 {
            let m = self.estate.machine(world, h);
            let host = &world.hosts[h];
            let t = self.at(t0 + 20 * MINUTE, 30 * MINUTE);
            let (logon, explorer) =
                self.desktop_logon(sink, t, h, admin, 2, ("127.0.0.1", &host.name), true);
            m.spawn(
                sink,
                &mut self.dice,
                t + 40 * SECOND,
                &explorer,
                exe("C:\\Windows\\System32\\mstsc.exe", "mstsc.exe"),
                "\"C:\\Windows\\system32\\mstsc.exe\" /v:JUMP01".into(),
            );
            self.desks[h] = Desk {
                logon,
                explorer: Some(explorer),
            };
        }
    }

    /// An administrator (or the DBA) works on the jump host for a while.
    fn admin_session(&mut self, sink: &mut Sink, t0: i64) {
        let world = self.world;
        let people: Vec<_> = world
            .accounts
            .iter()
            .filter(|a| matches!(a.kind, AccountKind::Admin | AccountKind::Dba))
            .collect();
        let person = *self.dice.pick(&people);
        let desk = person.desk.unwrap_or(0);
        let jump = world.host("JUMP01");
        let m = self.estate.machine(world, jump);
        let mut t = self.at(t0, 40 * MINUTE);
        let src = &world.hosts[desk];
        let (logon, explorer) =
            self.desktop_logon(sink, t, jump, person, 10, (&src.ip, &src.name), true);
        let who = Who::user(&person.name, &person.sid, logon);
        let mut shell = m.spawn(
            sink,
            &mut self.dice,
            t + 30 * SECOND,
            &explorer,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            "\"C:\\Windows\\system32\\cmd.exe\"".into(),
        );
        shell.integrity = "High";
        t += MINUTE;
        if person.kind == AccountKind::Dba {
            self.dba_work(sink, t, &shell, person.name.as_str());
        } else {
            for _ in 0..(1 + self.dice.index(4)) {
                t += self.dice.range(20, 300) * SECOND;
                let servers: Vec<usize> = (0..world.hosts.len())
                    .filter(|&i| world.hosts[i].role.is_server() && i != jump)
                    .collect();
                let target = *self.dice.pick(&servers);
                let tname = world.hosts[target].name.clone();
                match self.dice.index(10) {
                    0 => {
                        let cmd = format!("PsExec64.exe \\\\{tname} -accepteula cmd /c \"sc query type= service state= all | findstr RUNNING\"");
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Tools\\Sysinternals\\PsExec64.exe", "psexec.c"),
                            cmd,
                        );
                        self.psexec_target(
                            sink,
                            t + 2 * SECOND,
                            target,
                            &who,
                            &world.hosts[jump].ip,
                            "sc query type= service state= all | findstr RUNNING",
                        );
                    }
                    1 => {
                        let script = format!("Get-Service -ComputerName {tname} | Where-Object {{$_.Status -eq 'Stopped' -and $_.StartType -eq 'Automatic'}}");
                        let ps = m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe(
                                "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                                "PowerShell.EXE",
                            ),
                            "powershell.exe".into(),
                        );
                        m.script_block(sink, &mut self.dice, t + 5 * SECOND, &ps, &script);
                    }
                    2 => {
                        let cmd = format!("schtasks /create /tn \"NWM\\LogRotate\" /tr \"C:\\Scripts\\rotate.cmd\" /sc daily /st 02:00 /ru SYSTEM /s {tname}");
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Windows\\System32\\schtasks.exe", "schtasks.exe"),
                            cmd,
                        );
                        self.estate.machine(world, target).task(
                            sink,
                            t + SECOND,
                            &who,
                            "NWM\\LogRotate",
                            "C:\\Scripts\\rotate.cmd",
                            "",
                        );
                    }
                    3 => {
                        let cmd =
                            format!("net user {} /domain", self.dice.pick(&world.accounts).name);
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Windows\\System32\\net.exe", "net.exe"),
                            cmd,
                        );
                    }
                    4 => {
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Windows\\System32\\ipconfig.exe", "ipconfig.exe"),
                            "ipconfig /all".into(),
                        );
                    }
                    5 => {
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Windows\\System32\\PING.EXE", "ping.exe"),
                            format!("ping -n 2 {tname}"),
                        );
                    }
                    6 => {
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Windows\\System32\\whoami.exe", "whoami.exe"),
                            "whoami /groups".into(),
                        );
                    }
                    7 => {
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &shell,
                            exe("C:\\Windows\\System32\\quser.exe", "quser.exe"),
                            format!("quser /server:{tname}"),
                        );
                    }
                    _ => {
                        m.spawn(
                            sink,
                            &mut self.dice,
                            t,
                            &explorer,
                            exe("C:\\Windows\\System32\\mstsc.exe", "mstsc.exe"),
                            format!("\"C:\\Windows\\system32\\mstsc.exe\" /v:{tname}"),
                        );
                        let tm = self.estate.machine(world, target);
                        self.kerberos(sink, t, &who, &world.hosts[jump].ip, &tname);
                        tm.logon(
                            sink,
                            &mut self.dice,
                            t + 3 * SECOND,
                            &who,
                            10,
                            false,
                            (&world.hosts[jump].ip, "JUMP01"),
                            true,
                        );
                    }
                }
            }
        }
        t += self.dice.range(5, 40) * MINUTE;
        m.logoff(sink, t, &who, logon, 10);
    }

    /// What PsExec leaves on its target: network logon, ADMIN$ write, the PSEXESVC service,
    /// its pipe, and the command it runs.
    fn psexec_target(
        &mut self,
        sink: &mut Sink,
        t: i64,
        target: usize,
        who: &Who,
        src_ip: &str,
        command: &str,
    ) {
        let world = self.world;
        let tm = self.estate.machine(world, target);
        let host = &world.hosts[target];
        self.kerberos(sink, t - 500_000, who, src_ip, &host.name);
        let logon = tm.logon(
            sink,
            &mut self.dice,
            t,
            who,
            3,
            false,
            (src_ip, "JUMP01"),
            true,
        );
        let who = Who {
            logon_id: logon,
            ..who.clone()
        };
        tm.share_access(sink, t + 100_000, &who, src_ip, "ADMIN$", "PSEXESVC.exe");
        tm.service(
            sink,
            t + 400_000,
            &who,
            "PSEXESVC",
            "%SystemRoot%\\PSEXESVC.exe",
        );
        let svc = tm.spawn(
            sink,
            &mut self.dice,
            t + 500_000,
            &self.services[target].clone(),
            exe("C:\\Windows\\PSEXESVC.exe", "psexesvc.exe"),
            "C:\\Windows\\PSEXESVC.exe".into(),
        );
        tm.pipe(sink, t + 600_000, &svc, "\\PSEXESVC");
        tm.spawn_as(
            sink,
            &mut self.dice,
            t + SECOND,
            &svc,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            format!("cmd /c {command}"),
            who,
        );
    }

    fn dba_work(&mut self, sink: &mut Sink, t: i64, shell: &Proc, dba: &str) {
        let world = self.world;
        let jump = world.host("JUMP01");
        let m = self.estate.machine(world, jump);
        let db_user = dba.replace('.', "_");
        let psql = m.spawn(
            sink,
            &mut self.dice,
            t,
            shell,
            exe(
                "C:\\Program Files\\PostgreSQL\\15\\bin\\psql.exe",
                "psql.exe",
            ),
            format!("psql.exe -h 10.30.0.10 -U {db_user} -d cdrdw"),
        );
        let port = self.dice.range(49_152, 65_000) as u16;
        m.connect(
            sink,
            t + 200_000,
            &psql,
            "tcp",
            true,
            (&world.hosts[jump].ip, port),
            ("10.30.0.10", 5432),
        );
        let mut s = self.session(&db_user, "psql", &world.hosts[jump].ip, port, t + 300_000);
        s.connect(sink, self.estate.db);
        let mut tt = t + 20 * SECOND;
        for stmt in [
            Statement::select("cdr.voice_cdr", "select count(*) from cdr.voice_cdr where start_time >= now() - interval '1 day'".into(), None, 1),
            Statement::select("cdr.data_cdr", "select max(start_time) from cdr.data_cdr".into(), None, 1),
            Statement::select("cdr.sms_cdr", "select record_type, count(*) from cdr.sms_cdr where start_time >= current_date group by record_type".into(), None, 2),
        ] {
            s.run(sink, self.estate.db, tt, &stmt);
            tt += self.dice.range(10, 120) * SECOND;
        }
        s.disconnect(sink, self.estate.db, tt);
        self.flow(
            sink,
            t,
            (&world.hosts[jump].ip, port),
            ("10.30.0.10", 5432),
            "tcp",
            "postgresql",
            (tt - t) as f64 / 1e6,
            2_000,
            9_000,
        );
    }

    fn session(&mut self, user: &str, app: &str, host: &str, port: u16, t: i64) -> Session {
        self.db_pid = 7000 + (self.db_pid + 37 + self.dice.below(50) as u32) % 60_000;
        Session::new(self.db_pid, user, "cdrdw", app, host, port, t)
    }

    #[allow(clippy::too_many_arguments)]
    fn flow(
        &mut self,
        sink: &mut Sink,
        t: i64,
        orig: (&str, u16),
        resp: (&str, u16),
        proto: &str,
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
                proto,
                service,
                duration_s: dur,
                orig_bytes: ob,
                resp_bytes: rb,
            },
        );
        sink.text(self.estate.flows, t, line);
    }

    fn server_noise(&mut self, sink: &mut Sink, t0: i64, h: usize) {
        let world = self.world;
        let m = self.estate.machine(world, h);
        let host = &world.hosts[h];
        for _ in 0..self.dice.poisson(1.5) {
            let t = self.at(t0, HOUR);
            let svchost = m.running(
                &mut self.dice,
                "C:\\Windows\\System32\\svchost.exe",
                "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
                Who::system(),
            );
            let (path, pe, cmd) = *self.dice.pick(&[
                ("C:\\Windows\\System32\\taskhostw.exe", "taskhostw.exe", "taskhostw.exe Install $(Arg0)"),
                ("C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2001.10-0\\MpCmdRun.exe", "MpCmdRun.exe", "\"C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.2001.10-0\\MpCmdRun.exe\" -SignatureUpdate -ScheduleJob"),
                ("C:\\Windows\\System32\\wermgr.exe", "WerMgr", "C:\\Windows\\system32\\wermgr.exe -upload"),
                ("C:\\Windows\\System32\\sc.exe", "sc.exe", "C:\\Windows\\system32\\sc.exe start w32time task_started"),
                ("C:\\Windows\\System32\\gpupdate.exe", "GPUpdate.exe", "gpupdate.exe /target:computer"),
            ]);
            m.spawn(sink, &mut self.dice, t, &svchost, exe(path, pe), cmd.into());
        }
        // Monitoring polls every server over the network.
        let t = self.at(t0, HOUR);
        let mon = world.account("svc_monitor");
        let who = Who::user(&mon.name, &mon.sid, 0);
        let logon = m.logon(
            sink,
            &mut self.dice,
            t,
            &who,
            3,
            false,
            (MONITOR_IP, "MON01"),
            false,
        );
        m.logoff(sink, t + 4 * SECOND, &who, logon, 3);
        let dc_ip = if h.is_multiple_of(2) {
            "10.10.0.10"
        } else {
            "10.10.0.11"
        };
        let lsass = m.running(
            &mut self.dice,
            "C:\\Windows\\System32\\lsass.exe",
            "C:\\Windows\\system32\\lsass.exe",
            Who::system(),
        );
        m.connect(
            sink,
            t + 30 * SECOND,
            &lsass,
            "tcp",
            true,
            (&host.ip, 50_000 + (h as u16) * 7),
            (dc_ip, 88),
        );
        // Application servers keep their database connections busy.
        if matches!(
            host.role,
            Role::Mediation
                | Role::Billing
                | Role::CareApp
                | Role::LawfulDisclosure
                | Role::Analytics
        ) {
            let app = m.running(
                &mut self.dice,
                "C:\\Program Files\\NWM\\app\\appsvc.exe",
                "appsvc.exe",
                Who::system(),
            );
            let port = self.dice.range(49_152, 65_000) as u16;
            m.connect(
                sink,
                self.at(t0, HOUR),
                &app,
                "tcp",
                true,
                (&host.ip, port),
                ("10.30.0.10", 5432),
            );
        }
        if host.role == Role::DomainController {
            for _ in 0..self.dice.poisson(2.0 * self.scale) {
                let t = self.at(t0, HOUR);
                let a = self.dice.pick(&world.accounts);
                m.ntlm_validation(
                    sink,
                    t,
                    &a.name,
                    &world.hosts[self.dice.index(world.hosts.len())].name,
                );
            }
        }
    }

    fn web_traffic(&mut self, sink: &mut Sink, t0: i64, lh: u32) {
        let world = self.world;
        let web01 = world.host("WEB01");
        let Some(stream) = self.estate.web[web01] else {
            return;
        };
        let n = self.dice.poisson(40.0 * self.scale * diurnal(lh));
        const PAGES: [(&str, &str, u64); 9] = [
            ("GET", "/", 18_000),
            ("GET", "/css/site.css", 9_500),
            ("GET", "/js/app.js", 61_000),
            ("GET", "/images/logo.png", 7_200),
            ("GET", "/selfcare/login.aspx", 12_000),
            ("POST", "/selfcare/login.aspx", 3_100),
            ("GET", "/selfcare/balance.aspx", 8_800),
            ("GET", "/selfcare/usage.aspx", 15_500),
            ("GET", "/selfcare/topup.aspx", 10_100),
        ];
        const AGENTS: [&str; 4] = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.86 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 9; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.121 Mobile Safari/537.36",
            "NWMSelfCare/3.2 (Android 9)",
        ];
        for _ in 0..n {
            let t = self.at(t0, HOUR);
            let (method, stem, size) = *self.dice.pick(&PAGES);
            let client = format!(
                "198.18.{}.{}",
                self.dice.below(256),
                1 + self.dice.below(254)
            );
            let agent = *self.dice.pick(&AGENTS);
            let status = if self.dice.chance(0.02) { 304 } else { 200 };
            let line = web::line(
                t,
                "10.20.0.10",
                &Request {
                    method,
                    stem,
                    query: "",
                    port: 443,
                    user: "",
                    client: &client,
                    agent,
                    referer: if stem == "/" {
                        ""
                    } else {
                        "https://selfcare.nwm.example/"
                    },
                    status,
                    sc_bytes: size + self.dice.below(500),
                    cs_bytes: 400 + self.dice.below(900),
                    time_taken_ms: 15 + self.dice.below(300),
                },
            );
            sink.text(stream, t, line);
            let port = self.dice.range(30_000, 65_000) as u16;
            self.flow(
                sink,
                t,
                (&client, port),
                ("10.20.0.10", 443),
                "tcp",
                "ssl",
                0.4,
                900,
                size + 3000,
            );
        }
        // Internet background scanning: not the campaign, and not worth an alarm.
        for _ in 0..self.dice.poisson(1.5) {
            let t = self.at(t0, HOUR);
            let stem = *self.dice.pick(&[
                "/wp-login.php",
                "/.env",
                "/phpmyadmin/index.php",
                "/admin/config.php",
                "/cgi-bin/luci",
                "/robots.txt",
            ]);
            let client = format!(
                "198.19.{}.{}",
                self.dice.below(256),
                1 + self.dice.below(254)
            );
            let line = web::line(
                t,
                "10.20.0.10",
                &Request {
                    method: "GET",
                    stem,
                    query: "",
                    port: 443,
                    user: "",
                    client: &client,
                    agent: "Mozilla/5.0 zgrab/0.x",
                    referer: "",
                    status: 404,
                    sc_bytes: 1_245,
                    cs_bytes: 180,
                    time_taken_ms: 3,
                },
            );
            sink.text(stream, t, line);
        }
    }

    fn db_traffic(&mut self, sink: &mut Sink, t0: i64, lh: u32, wd: u32, business: bool) {
        let world = self.world;
        let db = self.estate.db;
        // Mediation loads every hour from both mediation servers.
        for (i, med) in ["10.30.0.20", "10.30.0.21"].into_iter().enumerate() {
            let t = t0 + (5 + 30 * i as i64) * MINUTE + self.dice.range(0, MINUTE);
            let port = self.dice.range(49_152, 65_000) as u16;
            let mut s = self.session("mediation_loader", "mediation-loader", med, port, t);
            s.connect(sink, db);
            let mut tt = t + SECOND;
            for table in ["cdr.voice_cdr", "cdr.sms_cdr", "cdr.data_cdr"] {
                s.run(sink, db, tt, &Statement {
                    class: "WRITE",
                    command: "COPY",
                    object: None,
                    text: format!("COPY {table} (record_id, record_type, served_imsi, served_msisdn, served_imei, calling_number, called_number, start_time, answer_time, end_time, duration_s, mcc, mnc, lac_tac, cell_id, radio, recording_entity, cause_for_term, partial_seq, data_volume_ul, data_volume_dl, apn) FROM STDIN WITH (FORMAT csv, HEADER true)"),
                    params: None,
                    rows: 0,
                });
                tt += self.dice.range(2, 20) * SECOND;
            }
            s.disconnect(sink, db, tt);
            self.flow(
                sink,
                t,
                (med, port),
                ("10.30.0.10", 5432),
                "tcp",
                "postgresql",
                (tt - t) as f64 / 1e6,
                2_500_000,
                4_000,
            );
        }
        // Customer care: one pooled connection per care server for the working day.
        if business {
            for (i, ip) in ["10.30.0.40", "10.30.0.41"].into_iter().enumerate() {
                if self.pool_sessions[i].is_none() {
                    let port = self.dice.range(49_152, 65_000) as u16;
                    let start = t0 + self.dice.range(0, 5 * MINUTE);
                    let s = self.session("care_app", "PostgreSQL JDBC Driver", ip, port, start);
                    s.connect(sink, db);
                    self.pool_sessions[i] = Some(s);
                }
                let agents = world.accounts_of(AccountKind::CareAgent).len() as f64;
                let lookups = self.dice.poisson(agents * 1.5 / 2.0);
                for _ in 0..lookups {
                    let t = self.at(t0 + 5 * MINUTE, 55 * MINUTE);
                    let sub = self.dice.pick(&world.subscribers);
                    let days = *self.dice.pick(&[7, 30, 30, 31, 60, 90]);
                    let end = t - t.rem_euclid(DAY);
                    let table = *self.dice.pick(&[
                        "cdr.voice_cdr",
                        "cdr.voice_cdr",
                        "cdr.sms_cdr",
                        "cdr.data_cdr",
                    ]);
                    let stmt = Statement::select(
                        table,
                        format!("SELECT start_time, record_type, calling_number, called_number, duration_s FROM {table} WHERE served_msisdn = $1 AND start_time >= $2::timestamptz AND start_time < $3::timestamptz ORDER BY start_time"),
                        Some(vec![sub.msisdn.clone(), clock::pg_timestamptz(end - days * DAY), clock::pg_timestamptz(end + DAY)]),
                        5 + self.dice.below(150),
                    );
                    if let Some(s) = self.pool_sessions[i].as_mut() {
                        s.run(sink, db, t, &stmt);
                    }
                }
            }
        } else if lh == 18 {
            for slot in &mut self.pool_sessions {
                if let Some(s) = slot.take() {
                    s.disconnect(sink, db, t0 + 2 * MINUTE);
                }
            }
        }
        // The nightly bill run.
        if lh == 3 {
            let t = t0 + 10 * MINUTE;
            let mut s = self.session("billing_batch", "bill-run", "10.30.0.30", 50_211, t);
            s.connect(sink, db);
            let day = t - t.rem_euclid(DAY);
            s.run(sink, db, t + 2 * SECOND, &Statement::select(
                "cdr.voice_cdr",
                "SELECT served_msisdn, record_type, count(*), sum(duration_s) FROM cdr.voice_cdr WHERE start_time >= $1::timestamptz AND start_time < $2::timestamptz GROUP BY served_msisdn, record_type".into(),
                Some(vec![clock::pg_timestamptz(day - DAY), clock::pg_timestamptz(day)]),
                world.subscribers.len() as u64 * 2,
            ));
            s.disconnect(sink, db, t + 9 * MINUTE);
        }
        // BI refreshes cell-load dashboards each weekday morning.
        if wd < 5 && lh == 10 {
            let t = t0 + self.dice.range(0, 10 * MINUTE);
            let mut s = self.session("bi_reader", "Metabase", "10.30.0.60", 51_002, t);
            s.connect(sink, db);
            s.run(sink, db, t + SECOND, &Statement::select(
                "cdr.data_cdr",
                "SELECT date_trunc('day', start_time) AS day, lac_tac, cell_id, count(*) FROM cdr.data_cdr WHERE start_time >= $1::timestamptz GROUP BY 1, 2, 3".into(),
                Some(vec![clock::pg_timestamptz(t - t.rem_euclid(DAY) - 7 * DAY)]),
                world.cells.len() as u64 * 7,
            ));
            s.disconnect(sink, db, t + 40 * SECOND);
        }
        // Lawful disclosure: a registered request for one subscriber over many months.
        if business && self.dice.chance(0.03) {
            let t = self.at(t0, HOUR);
            let sub = self.dice.pick(&world.subscribers).msisdn.clone();
            let months = self.dice.range(3, 13);
            let from = t - t.rem_euclid(DAY) - months * 30 * DAY;
            let to = t - t.rem_euclid(DAY);
            let case_id = format!(
                "RD-{}-{:04}",
                clock::parts(t).y,
                100 + self.disclosures.len()
            );
            let port = 52_000 + self.dice.below(999) as u16;
            let mut s = self.session("rds_handover", "RDHandover", "10.30.0.50", port, t);
            s.connect(sink, db);
            for (k, table) in ["cdr.voice_cdr", "cdr.sms_cdr"].into_iter().enumerate() {
                s.run(sink, db, t + (2 + k as i64) * SECOND, &Statement::select(
                    table,
                    format!("SELECT start_time, end_time, record_type, calling_number, called_number, served_imei, lac_tac, cell_id FROM {table} WHERE served_msisdn = $1 AND start_time >= $2::timestamptz AND start_time < $3::timestamptz /* case {case_id} */"),
                    Some(vec![sub.clone(), clock::pg_timestamptz(from), clock::pg_timestamptz(to)]),
                    20 + self.dice.below(400),
                ));
            }
            s.disconnect(sink, db, t + 10 * SECOND);
            let officer = world.accounts_of(AccountKind::DisclosureOfficer)[0]
                .name
                .clone();
            self.disclosures.push(DisclosureRequest {
                case_id,
                msisdn: sub,
                from,
                to,
                officer,
                account: "rds_handover".into(),
            });
        }
    }

    /// IAM provisioning on the domain controller: new agents, group memberships; once in a
    /// while a new administrator (the benign twin of the intruder's own domain admins).
    fn iam_provisioning(&mut self, sink: &mut Sink, t0: i64) {
        let world = self.world;
        let dc = world.host("DC01");
        let m = self.estate.machine(world, dc);
        let iam = world.account("svc_iam");
        let who = Who::user(&iam.name, &iam.sid, 0x4c11f2);
        let t = self.at(t0, HOUR);
        let n = self.dice.below(9000) + 1000;
        let admin = self.dice.chance(0.08);
        let name = if admin {
            format!("adm.new{n}")
        } else {
            format!("agent{n}")
        };
        let sid = format!("{}-{}", crate::world::DOMAIN_SID, 5000 + n);
        m.account_created(sink, t, &who, &name, &sid);
        let group = if admin {
            "Domain Admins"
        } else {
            "Care Agents"
        };
        m.member_added(sink, t + 2 * SECOND, &who, &name, &sid, group, true);
    }

    fn nightly_backup(&mut self, sink: &mut Sink, t0: i64) {
        let world = self.world;
        let bkp = world.host("BKP01");
        let m = self.estate.machine(world, bkp);
        let host = &world.hosts[bkp];
        let acct = world.account("svc_backup");
        let t = t0 + 5 * MINUTE + self.dice.range(0, MINUTE);
        let who = Who::user(&acct.name, &acct.sid, 0x77a1c);
        let sched = m.running(
            &mut self.dice,
            "C:\\Windows\\System32\\svchost.exe",
            "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
            Who::system(),
        );
        let job = m.spawn_as(
            sink,
            &mut self.dice,
            t,
            &sched,
            exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"),
            "C:\\Windows\\system32\\cmd.exe /c C:\\Backup\\nightly.cmd".into(),
            who,
        );
        let date = clock::date(t).replace('-', "");
        m.spawn(sink, &mut self.dice, t + 2 * SECOND, &job, exe("C:\\Program Files\\PostgreSQL\\15\\bin\\pg_dump.exe", "pg_dump.exe"), format!("\"C:\\Program Files\\PostgreSQL\\15\\bin\\pg_dump.exe\" -h 10.30.0.10 -U backup -d cdrdw -t cdr.voice_cdr -t cdr.sms_cdr -F c -f D:\\Backup\\cdrdw_{date}.dump"));
        let port = self.dice.range(49_152, 65_000) as u16;
        let mut s = self.session("backup", "pg_dump", &host.ip, port, t + 3 * SECOND);
        s.connect(sink, self.estate.db);
        for (k, table) in ["cdr.voice_cdr", "cdr.sms_cdr"].into_iter().enumerate() {
            s.run(sink, self.estate.db, t + (5 + k as i64 * 90) * SECOND, &Statement {
                class: "READ",
                command: "COPY",
                object: None,
                text: format!("COPY {table} (record_id, record_type, served_imsi, served_msisdn, served_imei, calling_number, called_number, start_time, answer_time, end_time, duration_s, mcc, mnc, lac_tac, cell_id, radio, recording_entity, cause_for_term, partial_seq, data_volume_ul, data_volume_dl, apn) TO stdout;"),
                params: None,
                rows: 0,
            });
        }
        s.disconnect(sink, self.estate.db, t + 4 * MINUTE);
        self.flow(
            sink,
            t + 3 * SECOND,
            (&host.ip, port),
            ("10.30.0.10", 5432),
            "tcp",
            "postgresql",
            237.0,
            3_000,
            180_000_000,
        );
        m.spawn(sink, &mut self.dice, t + 5 * MINUTE, &job, exe("C:\\Program Files\\WinRAR\\Rar.exe", "Rar.exe"), format!("\"C:\\Program Files\\WinRAR\\Rar.exe\" a -m5 -hpBkp!2019vault -r D:\\Backup\\fs01_{date}.rar \\\\FS01\\share\\"));
    }

    /// The weekly change window: a JBoss redeploy and an ASP.NET recompile.
    fn deployments(&mut self, sink: &mut Sink, t0: i64) {
        let world = self.world;
        let web02 = self.estate.machine(world, world.host("WEB02"));
        let t = self.at(t0, 20 * MINUTE);
        let java = self.java.clone();
        let cmd = web02.spawn(sink, &mut self.dice, t, &java, exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"), "cmd.exe /c C:\\wildfly\\bin\\jboss-cli.bat --connect --command=\"deploy --force C:\\deploy\\partner-api.war\"".into());
        web02.spawn(
            sink,
            &mut self.dice,
            t + SECOND,
            &cmd,
            exe("C:\\Windows\\System32\\conhost.exe", "CONHOST.EXE"),
            "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1".into(),
        );
        web02.file(
            sink,
            t + 3 * SECOND,
            &java,
            "C:\\wildfly\\standalone\\deployments\\partner-api.war.deployed",
        );
        let web01 = self.estate.machine(world, world.host("WEB01"));
        let t = self.at(t0 + 30 * MINUTE, 20 * MINUTE);
        let w3wp = self.w3wp.clone();
        let csc = format!("\"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe\" /noconfig /fullpaths @\"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\Temporary ASP.NET Files\\root\\a3b4c5d6\\{}\\{}.cmdline\"", self.dice.hex(8), self.dice.hex(8));
        let c = web01.spawn(
            sink,
            &mut self.dice,
            t,
            &w3wp,
            exe(
                "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe",
                "csc.exe",
            ),
            csc,
        );
        web01.spawn(sink, &mut self.dice, t + 500_000, &c, exe("C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\cvtres.exe", "CVTRES.EXE"), "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\cvtres.exe /NOLOGO /READONLY /MACHINE:IX86".into());
    }

    /// The web server's worker process (the campaign's parent on WEB01).
    pub fn w3wp(&self) -> &Proc {
        &self.w3wp
    }

    pub fn java(&self) -> &Proc {
        &self.java
    }

    pub fn services(&self, host: usize) -> &Proc {
        &self.services[host]
    }
}
