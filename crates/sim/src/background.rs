//! The working operator: benign activity hour by hour. Besides the everyday noise (logons,
//! browsers, services, Kerberos, web traffic, CDR-store traffic from mediation, billing,
//! customer care and BI), it holds the benign twins of the campaign's moves, without which a
//! false-alarm rate means nothing: admins running PsExec, PowerShell and recon commands from
//! the jump host, IAM creating accounts and adding group members, the backup job archiving
//! with a password and dumping CDR tables, lawful-disclosure lookups of a few subscribers
//! over long ranges, JBoss deployments through `cmd.exe`, ASP.NET compiling under `w3wp.exe`.

use crate::cdr::diurnal;
use crate::clock::{self, DAY, HOUR, MINUTE, SECOND};
use crate::db::{Peer, Session, Statement};
use crate::dice::Dice;
use crate::flows::{self, Flow};
use crate::queries::Sql;
use crate::sink::Sink;
use crate::web::{self, Request};
use crate::windows::{exe, Proc, Who};
use crate::world::{Account, AccountKind, Role, World};
use crate::Estate;

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
    /// Each web server's worker process (w3wp, the JBoss JVM, tomcat9.exe).
    web_procs: Vec<Option<Proc>>,
    pool_sessions: Vec<Option<Session>>,
    db_pid: u32,
    /// Where the monitoring system polls from (not a simulated host).
    monitor_ip: String,
    pub disclosures: Vec<DisclosureRequest>,
}

/// The database's address.
fn db_ip(world: &World) -> &str {
    &world.hosts[world.one(Role::CdrDatabase)].ip
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
        let svc_web = world.account("svc_care");
        let web_procs = (0..world.hosts.len())
            .map(|h| {
                let m = estate.machine(world, h);
                match world.hosts[h].role {
                    Role::WebIis => Some(m.running(
                        &mut dice,
                        "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                        "c:\\windows\\system32\\inetsrv\\w3wp.exe -ap \"Portal\" -v \"v4.0\" -l \"webengine4.dll\" -a \\\\.\\pipe\\iisipm5c1e -h \"C:\\inetpub\\temp\\apppools\\Portal\\Portal.config\" -w \"\" -m 0",
                        Who::app_pool("Portal"),
                    )),
                    Role::WebJboss => Some(m.running(
                        &mut dice,
                        "C:\\Program Files\\Eclipse Adoptium\\jdk-11\\bin\\java.exe",
                        "\"C:\\Program Files\\Eclipse Adoptium\\jdk-11\\bin\\java.exe\" -D[Standalone] -Xms1g -Xmx4g -jar C:\\wildfly\\jboss-modules.jar -mp C:\\wildfly\\modules org.jboss.as.standalone -Djboss.home.dir=C:\\wildfly",
                        Who::of(svc_web, 0x2a7f31),
                    )),
                    Role::WebTomcat => Some(m.running(
                        &mut dice,
                        "C:\\Tomcat9\\bin\\tomcat9.exe",
                        "\"C:\\Tomcat9\\bin\\tomcat9.exe\" //RS//Tomcat9",
                        Who::local_service(),
                    )),
                    _ => None,
                }
            })
            .collect();
        let jump_ip = &world.hosts[world.one(Role::JumpHost)].ip;
        let monitor_ip = match jump_ip.rsplit_once('.') {
            Some((net, _)) => format!("{net}.40"),
            None => jump_ip.clone(),
        };
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
            web_procs,
            pool_sessions: vec![None; world.hosts_with(Role::CareApp).len()],
            db_pid: 7000,
            monitor_ip,
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
        let when = self.world.profile.schedules;
        if business && self.dice.chance(when.admin_sessions) {
            self.admin_session(sink, t0);
        }
        if business && self.dice.chance(0.04 * self.scale.max(1.0).sqrt()) {
            sink.set_twin(Some("iam-provisioning"));
            self.iam_provisioning(sink, t0);
            sink.set_twin(None);
        }
        if lh == when.backup_hour {
            sink.set_twin(Some("nightly-backup"));
            self.nightly_backup(sink, t0);
            sink.set_twin(None);
        }
        if wd == when.deploy_day && lh == when.deploy_hour {
            sink.set_twin(Some("web-deployment"));
            self.deployments(sink, t0);
            sink.set_twin(None);
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
        let who = Who::of(account, 0);
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
        let who = Who::of(account, logon);
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
            let care_path = format!(
                "C:\\Program Files\\{}\\CareDesk\\CareDesk.exe",
                world.org().short
            );
            let care_cmd = format!("\"{care_path}\" /env=prod");
            for (i, (path, pe, cmd)) in [
                (care_path.as_str(), "CareDesk.exe", care_cmd.as_str()),
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
                let fs = self.world.one(Role::FileServer);
                let fs_name = &world.hosts[fs].name;
                m.spawn(sink, &mut self.dice, t, &explorer, exe("C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE", "Excel.exe"), format!("\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" \"\\\\{fs_name}\\care\\reports\\daily.xlsx\""));
                let who = Who::of(agent, 0);
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
                let who = Who::of(agent, self.desks[h].logon);
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
            let jump = &world.hosts[world.one(Role::JumpHost)].name;
            m.spawn(
                sink,
                &mut self.dice,
                t + 40 * SECOND,
                &explorer,
                exe("C:\\Windows\\System32\\mstsc.exe", "mstsc.exe"),
                format!("\"C:\\Windows\\system32\\mstsc.exe\" /v:{jump}"),
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
        let jump = world.one(Role::JumpHost);
        let jump_name = world.hosts[jump].name.clone();
        sink.set_twin(Some("admin-session"));
        let m = self.estate.machine(world, jump);
        let mut t = self.at(t0, 40 * MINUTE);
        let src = &world.hosts[desk];
        let (logon, explorer) =
            self.desktop_logon(sink, t, jump, person, 10, (&src.ip, &src.name), true);
        let who = Who::of(person, logon);
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
            sink.set_twin(Some("dba-session"));
            self.dba_work(sink, t, &shell, person.name.as_str());
        } else {
            for _ in 0..(1 + self.dice.index(4)) {
                t += self.dice.range(20, 300) * SECOND;
                let servers: Vec<usize> = (0..world.hosts.len())
                    .filter(|&i| world.hosts[i].role.is_server() && i != jump)
                    .collect();
                let target = *self.dice.pick(&servers);
                let tname = world.hosts[target].name.clone();
                let action = self.dice.index(10);
                sink.set_twin(Some(match action {
                    0 => "admin-psexec",
                    1 => "admin-powershell",
                    2 => "admin-schtasks",
                    3..=7 => "admin-recon",
                    _ => "admin-rdp",
                }));
                match action {
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
                        let task = format!("{}\\LogRotate", world.org().short);
                        let cmd = format!("schtasks /create /tn \"{task}\" /tr \"C:\\Scripts\\rotate.cmd\" /sc daily /st 02:00 /ru SYSTEM /s {tname}");
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
                            &task,
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
                            (&world.hosts[jump].ip, &jump_name),
                            true,
                        );
                    }
                }
            }
        }
        sink.set_twin(Some("admin-session"));
        t += self.dice.range(5, 40) * MINUTE;
        m.logoff(sink, t, &who, logon, 10);
        sink.set_twin(None);
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
        let jump_name = world.hosts[world.one(Role::JumpHost)].name.clone();
        self.kerberos(sink, t - 500_000, who, src_ip, &host.name);
        let logon = tm.logon(
            sink,
            &mut self.dice,
            t,
            who,
            3,
            false,
            (src_ip, &jump_name),
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
        let jump = world.one(Role::JumpHost);
        let m = self.estate.machine(world, jump);
        let db_user = dba.replace('.', "_");
        let (db_ip, database) = (db_ip(world), world.profile.db.database);
        let psql = m.spawn(
            sink,
            &mut self.dice,
            t,
            shell,
            exe(
                "C:\\Program Files\\PostgreSQL\\15\\bin\\psql.exe",
                "psql.exe",
            ),
            format!("psql.exe -h {db_ip} -U {db_user} -d {database}"),
        );
        let port = self.dice.range(49_152, 65_000) as u16;
        m.connect(
            sink,
            t + 200_000,
            &psql,
            "tcp",
            true,
            (&world.hosts[jump].ip, port),
            (db_ip, 5432),
        );
        let mut s = self.session(&db_user, "psql", &world.hosts[jump].ip, port, t + 300_000);
        s.connect(sink, self.estate.db);
        let mut tt = t + 20 * SECOND;
        for (i, (text, table)) in Sql(&world.profile.db.schema)
            .dba_checks()
            .into_iter()
            .enumerate()
        {
            s.run(
                sink,
                self.estate.db,
                tt,
                &Statement::select(table, text, None, 1 + i as u64 / 2),
            );
            tt += self.dice.range(10, 120) * SECOND;
        }
        s.disconnect(sink, self.estate.db, tt);
        self.flow(
            sink,
            t,
            (&world.hosts[jump].ip, port),
            (db_ip, 5432),
            "tcp",
            "postgresql",
            (tt - t) as f64 / 1e6,
            2_000,
            9_000,
        );
    }

    fn session(&mut self, user: &str, app: &str, host: &str, port: u16, t: i64) -> Session {
        self.db_pid = 7000 + (self.db_pid + 37 + self.dice.below(50) as u32) % 60_000;
        let database = self.world.profile.db.database;
        Session::new(
            self.db_pid,
            Peer {
                user,
                db: database,
                app,
                host,
                port,
            },
            t,
            self.estate.log,
        )
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
        let who = Who::of(mon, 0);
        let monitor_ip = self.monitor_ip.clone();
        let logon = m.logon(
            sink,
            &mut self.dice,
            t,
            &who,
            3,
            false,
            (&monitor_ip, "MON01"),
            false,
        );
        m.logoff(sink, t + 4 * SECOND, &who, logon, 3);
        let dcs = world.hosts_with(Role::DomainController);
        let dc_ip = world.hosts[dcs[h % dcs.len()]].ip.as_str();
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
                &format!("C:\\Program Files\\{}\\app\\appsvc.exe", world.org().short),
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
                (db_ip(world), 5432),
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
        for h in world.web_servers() {
            if self.estate.web[h].is_some() {
                self.site_traffic(sink, t0, lh, h);
            }
        }
    }

    /// A day's hour of the public site on web server `h`: customers, and Internet scanners.
    fn site_traffic(&mut self, sink: &mut Sink, t0: i64, lh: u32, h: usize) {
        let world = self.world;
        let host = &world.hosts[h];
        let ext = if host.role == Role::WebIis {
            "aspx"
        } else {
            "jsp"
        };
        let base = if host.role == Role::WebIis {
            "/selfcare"
        } else {
            "/portal"
        };
        let n = self.dice.poisson(40.0 * self.scale * diurnal(lh));
        let pages: [(&str, String, u64); 9] = [
            ("GET", "/".into(), 18_000),
            ("GET", "/css/site.css".into(), 9_500),
            ("GET", "/js/app.js".into(), 61_000),
            ("GET", "/images/logo.png".into(), 7_200),
            ("GET", format!("{base}/login.{ext}"), 12_000),
            ("POST", format!("{base}/login.{ext}"), 3_100),
            ("GET", format!("{base}/balance.{ext}"), 8_800),
            ("GET", format!("{base}/usage.{ext}"), 15_500),
            ("GET", format!("{base}/topup.{ext}"), 10_100),
        ];
        let app_agent = format!("{}SelfCare/3.2 (Android 9)", world.org().short);
        let agents: [&str; 4] = [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/73.0.3683.86 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Linux; Android 9; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.121 Mobile Safari/537.36",
            &app_agent,
        ];
        let referer = format!("https://selfcare.{}/", world.org().dns);
        let front = world.profile.balancer.unwrap_or(&host.ip).to_string();
        for _ in 0..n {
            let t = self.at(t0, HOUR);
            let (method, stem, size) = self.dice.pick(&pages).clone();
            let client = format!(
                "198.18.{}.{}",
                self.dice.below(256),
                1 + self.dice.below(254)
            );
            let agent = *self.dice.pick(&agents);
            let status = if self.dice.chance(0.02) { 304 } else { 200 };
            let req = Request {
                method,
                stem: &stem,
                query: "",
                port: 443,
                user: "",
                client: &client,
                agent,
                referer: if stem == "/" { "" } else { &referer },
                status,
                sc_bytes: size + self.dice.below(500),
                cs_bytes: 400 + self.dice.below(900),
                time_taken_ms: 15 + self.dice.below(300),
            };
            web::log(sink, world, &self.estate.web, self.offset_min, h, t, &req);
            let port = self.dice.range(30_000, 65_000) as u16;
            self.flow(
                sink,
                t,
                (&client, port),
                (&front, 443),
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
            let req = Request {
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
            };
            web::log(sink, world, &self.estate.web, self.offset_min, h, t, &req);
        }
    }

    fn db_traffic(&mut self, sink: &mut Sink, t0: i64, lh: u32, wd: u32, business: bool) {
        let world = self.world;
        let db = self.estate.db;
        let schema = world.profile.db.schema;
        let sql = Sql(&schema);
        let db_ip = db_ip(world).to_string();
        // The server's own processes write too: a checkpoint every hour.
        self.estate
            .log
            .background(sink, db, t0 + 2 * MINUTE, 61, "checkpoint starting: time");
        self.estate.log.background(
            sink,
            db,
            t0 + 2 * MINUTE + 40 * SECOND,
            61,
            &format!(
                "checkpoint complete: wrote {} buffers ({:.1}%); 0 WAL file(s) added, 0 removed, 1 recycled; write={:.3} s, sync=0.004 s, total={:.3} s",
                200 + self.dice.below(3000),
                self.dice.unit() * 5.0,
                30.0 + self.dice.unit() * 9.0,
                40.0 + self.dice.unit() * 9.0
            ),
        );
        // Mediation loads every hour from each mediation server, into the hour's partitions.
        let meds: Vec<String> = world
            .hosts_with(Role::Mediation)
            .into_iter()
            .map(|i| world.hosts[i].ip.clone())
            .collect();
        for (i, med) in meds.iter().enumerate() {
            let t = t0 + (5 + 30 * i as i64) * MINUTE + self.dice.range(0, MINUTE);
            let port = self.dice.range(49_152, 65_000) as u16;
            let mut s = self.session("mediation_loader", "mediation-loader", med, port, t);
            s.connect(sink, db);
            let mut tt = t + SECOND;
            for table in schema.tables() {
                s.run(
                    sink,
                    db,
                    tt,
                    &Statement {
                        class: "WRITE",
                        command: "COPY",
                        object: None,
                        text: sql.load(&schema.partition(table, t)),
                        params: None,
                        rows: 0,
                    },
                );
                tt += self.dice.range(2, 20) * SECOND;
            }
            s.disconnect(sink, db, tt);
            self.flow(
                sink,
                t,
                (med, port),
                (&db_ip, 5432),
                "tcp",
                "postgresql",
                (tt - t) as f64 / 1e6,
                2_500_000,
                4_000,
            );
        }
        // Customer care: one pooled connection per care server for the working day.
        let care: Vec<String> = world
            .hosts_with(Role::CareApp)
            .into_iter()
            .map(|i| world.hosts[i].ip.clone())
            .collect();
        if business {
            for (i, ip) in care.iter().enumerate() {
                if self.pool_sessions[i].is_none() {
                    let port = self.dice.range(49_152, 65_000) as u16;
                    let start = t0 + self.dice.range(0, 5 * MINUTE);
                    let s = self.session("care_app", "PostgreSQL JDBC Driver", ip, port, start);
                    s.connect(sink, db);
                    self.pool_sessions[i] = Some(s);
                }
                let agents = world.accounts_of(AccountKind::CareAgent).len() as f64;
                let lookups = self.dice.poisson(agents * 1.5 / care.len() as f64);
                for _ in 0..lookups {
                    let t = self.at(t0 + 5 * MINUTE, 55 * MINUTE);
                    let sub = self.dice.pick(&world.subscribers);
                    // Who calls first: the caller's line, then their records.
                    if let Some((text, table)) = sql.care_subscriber() {
                        if self.dice.chance(0.5) {
                            let stmt =
                                Statement::select(table, text, Some(vec![sub.msisdn.clone()]), 1);
                            if let Some(s) = self.pool_sessions[i].as_mut() {
                                s.run(sink, db, t - 2 * SECOND, &stmt);
                            }
                        }
                    }
                    let days = *self.dice.pick(&[7, 30, 30, 31, 60, 90]);
                    let end = t - t.rem_euclid(DAY);
                    let table =
                        *self
                            .dice
                            .pick(&[schema.voice, schema.voice, schema.sms, schema.data]);
                    let stmt = Statement::select(
                        table,
                        sql.care_lookup(table),
                        Some(vec![
                            sub.msisdn.clone(),
                            clock::pg_timestamptz(end - days * DAY),
                            clock::pg_timestamptz(end + DAY),
                        ]),
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
            let billing = world.hosts[world.one(Role::Billing)].ip.clone();
            let mut s = self.session("billing_batch", "bill-run", &billing, 50_211, t);
            s.connect(sink, db);
            let day = t - t.rem_euclid(DAY);
            s.run(
                sink,
                db,
                t + 2 * SECOND,
                &Statement::select(
                    schema.voice,
                    sql.bill_run(),
                    Some(vec![
                        clock::pg_timestamptz(day - DAY),
                        clock::pg_timestamptz(day),
                    ]),
                    world.subscribers.len() as u64 * 2,
                ),
            );
            s.disconnect(sink, db, t + 9 * MINUTE);
        }
        // BI refreshes cell-load dashboards each weekday morning.
        if wd < 5 && lh == 10 {
            let t = t0 + self.dice.range(0, 10 * MINUTE);
            let bi = world.hosts[world.one(Role::Analytics)].ip.clone();
            let mut s = self.session("bi_reader", "Metabase", &bi, 51_002, t);
            s.connect(sink, db);
            s.run(
                sink,
                db,
                t + SECOND,
                &Statement::select(
                    schema.data,
                    sql.bi_refresh(),
                    Some(vec![clock::pg_timestamptz(t - t.rem_euclid(DAY) - 7 * DAY)]),
                    world.cells.len() as u64 * 7,
                ),
            );
            s.disconnect(sink, db, t + 40 * SECOND);
        }
        // Lawful disclosure: a registered request for one subscriber over many months.
        if business && self.dice.chance(0.03) {
            sink.set_twin(Some("lawful-disclosure"));
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
            let rds = world.hosts[world.one(Role::LawfulDisclosure)].ip.clone();
            let mut s = self.session("rds_handover", "RDHandover", &rds, port, t);
            s.connect(sink, db);
            let mut tables = vec![schema.voice];
            if schema.sms != schema.voice {
                tables.push(schema.sms);
            }
            for (k, table) in tables.into_iter().enumerate() {
                s.run(
                    sink,
                    db,
                    t + (2 + k as i64) * SECOND,
                    &Statement::select(
                        table,
                        sql.disclosure(table, &case_id),
                        Some(vec![
                            sub.clone(),
                            clock::pg_timestamptz(from),
                            clock::pg_timestamptz(to),
                        ]),
                        20 + self.dice.below(400),
                    ),
                );
            }
            s.disconnect(sink, db, t + 10 * SECOND);
            sink.set_twin(None);
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
        let dc = world.one(Role::DomainController);
        let m = self.estate.machine(world, dc);
        let iam = world.account("svc_iam");
        let who = Who::of(iam, 0x4c11f2);
        let t = self.at(t0, HOUR);
        let n = self.dice.below(9000) + 1000;
        let admin = self.dice.chance(0.08);
        let name = if admin {
            format!("adm.new{n}")
        } else {
            format!("agent{n}")
        };
        let sid = format!("{}-{}", world.org().sid, 5000 + n);
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
        let bkp = world.one(Role::Backup);
        let m = self.estate.machine(world, bkp);
        let host = &world.hosts[bkp];
        let acct = world.account("svc_backup");
        let t = t0 + 5 * MINUTE + self.dice.range(0, MINUTE);
        let who = Who::of(acct, 0x77a1c);
        let schema = world.profile.db.schema;
        let sql = Sql(&schema);
        let (db_ip, database) = (db_ip(world).to_string(), world.profile.db.database);
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
        let dumped: Vec<&str> = [schema.voice, schema.sms]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let tables: String = dumped.iter().map(|t| format!(" -t {t}")).collect();
        m.spawn(sink, &mut self.dice, t + 2 * SECOND, &job, exe("C:\\Program Files\\PostgreSQL\\15\\bin\\pg_dump.exe", "pg_dump.exe"), format!("\"C:\\Program Files\\PostgreSQL\\15\\bin\\pg_dump.exe\" -h {db_ip} -U backup -d {database}{tables} -F c -f D:\\Backup\\{database}_{date}.dump"));
        let port = self.dice.range(49_152, 65_000) as u16;
        let mut s = self.session("backup", "pg_dump", &host.ip, port, t + 3 * SECOND);
        s.connect(sink, self.estate.db);
        for (k, table) in dumped.iter().enumerate() {
            s.run(
                sink,
                self.estate.db,
                t + (5 + k as i64 * 90) * SECOND,
                &Statement {
                    class: "READ",
                    command: "COPY",
                    object: None,
                    text: sql.dump(table),
                    params: None,
                    rows: 0,
                },
            );
        }
        s.disconnect(sink, self.estate.db, t + 4 * MINUTE);
        self.flow(
            sink,
            t + 3 * SECOND,
            (&host.ip, port),
            (&db_ip, 5432),
            "tcp",
            "postgresql",
            237.0,
            3_000,
            180_000_000,
        );
        let fs = &world.hosts[world.one(Role::FileServer)].name;
        m.spawn(sink, &mut self.dice, t + 5 * MINUTE, &job, exe("C:\\Program Files\\WinRAR\\Rar.exe", "Rar.exe"), format!("\"C:\\Program Files\\WinRAR\\Rar.exe\" a -m5 -hpBkp!2019vault -v2g -r D:\\Backup\\files_{date}.rar \\\\{fs}\\share\\"));
    }

    /// The weekly change window: each web server's application is redeployed.
    fn deployments(&mut self, sink: &mut Sink, t0: i64) {
        let world = self.world;
        for h in world.web_servers() {
            let m = self.estate.machine(world, h);
            let Some(server) = self.web_procs[h].clone() else {
                continue;
            };
            let t = self.at(t0, 20 * MINUTE);
            match world.hosts[h].role {
                Role::WebJboss => {
                    let cmd = m.spawn(sink, &mut self.dice, t, &server, exe("C:\\Windows\\System32\\cmd.exe", "Cmd.Exe"), "cmd.exe /c C:\\wildfly\\bin\\jboss-cli.bat --connect --command=\"deploy --force C:\\deploy\\partner-api.war\"".into());
                    m.spawn(
                        sink,
                        &mut self.dice,
                        t + SECOND,
                        &cmd,
                        exe("C:\\Windows\\System32\\conhost.exe", "CONHOST.EXE"),
                        "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1".into(),
                    );
                    m.file(
                        sink,
                        t + 3 * SECOND,
                        &server,
                        "C:\\wildfly\\standalone\\deployments\\partner-api.war.deployed",
                    );
                }
                Role::WebTomcat => {
                    // The new release is copied in by the deploy account, then Tomcat unpacks it.
                    let deployer = world.account("svc_care");
                    let who = Who::of(deployer, 0x5d1e2);
                    let robo = m.running(
                        &mut self.dice,
                        "C:\\Windows\\System32\\cmd.exe",
                        "cmd.exe /c C:\\deploy\\release.cmd",
                        who,
                    );
                    m.spawn(
                        sink,
                        &mut self.dice,
                        t,
                        &robo,
                        exe("C:\\Windows\\System32\\Robocopy.exe", "robocopy.exe"),
                        "robocopy C:\\deploy\\portal C:\\Tomcat9\\webapps /E /PURGE portal.war"
                            .into(),
                    );
                    m.file(
                        sink,
                        t + 2 * SECOND,
                        &robo,
                        "C:\\Tomcat9\\webapps\\portal.war",
                    );
                    for page in ["login.jsp", "balance.jsp", "usage.jsp", "topup.jsp"] {
                        m.file(
                            sink,
                            t + 9 * SECOND,
                            &server,
                            &format!("C:\\Tomcat9\\webapps\\portal\\{page}"),
                        );
                    }
                }
                _ => {
                    // Web Deploy writes the new pages; ASP.NET compiles them on first use.
                    let deployer = world.account("svc_care");
                    let who = Who::of(deployer, 0x5d1e2);
                    let ms = m.running(&mut self.dice, "C:\\Program Files\\IIS\\Microsoft Web Deploy V3\\msdeploy.exe", "msdeploy.exe -verb:sync -source:package=C:\\deploy\\selfcare.zip -dest:auto", who);
                    for page in ["login.aspx", "balance.aspx", "usage.aspx", "topup.aspx"] {
                        m.file(
                            sink,
                            t,
                            &ms,
                            &format!("C:\\inetpub\\wwwroot\\selfcare\\{page}"),
                        );
                    }
                    let t = t + 30 * MINUTE + self.dice.range(0, 20 * MINUTE);
                    let csc = format!("\"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe\" /noconfig /fullpaths @\"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\Temporary ASP.NET Files\\root\\a3b4c5d6\\{}\\{}.cmdline\"", self.dice.hex(8), self.dice.hex(8));
                    let c = m.spawn(
                        sink,
                        &mut self.dice,
                        t,
                        &server,
                        exe(
                            "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe",
                            "csc.exe",
                        ),
                        csc,
                    );
                    m.spawn(sink, &mut self.dice, t + 500_000, &c, exe("C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\cvtres.exe", "CVTRES.EXE"), "C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\cvtres.exe /NOLOGO /READONLY /MACHINE:IX86".into());
                }
            }
        }
    }

    /// The worker process of web server `h` (the campaign's parent there).
    pub fn web_proc(&self, h: usize) -> &Proc {
        self.web_procs[h]
            .as_ref()
            .expect("a web server has a worker process")
    }

    pub fn services(&self, host: usize) -> &Proc {
        &self.services[host]
    }
}
