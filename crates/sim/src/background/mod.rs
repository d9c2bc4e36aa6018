//! The working operator: benign activity hour by hour. Besides the everyday noise (logons,
//! browsers, services, Kerberos, web traffic, CDR-store traffic from mediation, billing,
//! customer care and BI), it holds the benign twins of the campaign's moves, without which a
//! false-alarm rate means nothing: admins running PsExec, PowerShell and recon commands from
//! the jump host, IAM creating accounts and adding group members, the backup job archiving
//! with a password and dumping CDR tables, lawful-disclosure lookups of a few subscribers
//! over long ranges, JBoss deployments through `cmd.exe`, ASP.NET compiling under `w3wp.exe`.
//!
//! One file per kind of activity; `hour` calls them in a fixed order and each keeps its draws
//! from the background's dice in order: the simulator's output depends on it byte for byte.

mod database;
mod desks;
mod jump;
mod servers;
mod site;
mod twins;

use crate::clock::{self, MINUTE, SECOND};
use crate::db::{Peer, Session};
use crate::dice::Dice;
use crate::flows::{self, Flow};
use crate::sink::Sink;
use crate::windows::{exe, Proc, Who};
use crate::world::{Account, Role, World};
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
