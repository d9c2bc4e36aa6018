//! Scheduled benign twins of the campaign's moves: IAM creating accounts and adding group
//! members, the nightly backup (password-protected RAR, CDR table dumps), and the weekly
//! deployment (web servers spawning `cmd.exe` and `csc.exe`).

use super::{db_ip, Background};
use crate::clock::{self, HOUR, MINUTE, SECOND};
use crate::db::Statement;
use crate::queries::Sql;
use crate::sink::Sink;
use crate::windows::{exe, Who};
use crate::world::Role;

impl Background<'_> {
    /// IAM provisioning on the domain controller: new agents, group memberships; once in a
    /// while a new administrator (the benign twin of the intruder's own domain admins).
    pub(super) fn iam_provisioning(&mut self, sink: &mut Sink, t0: i64) {
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

    /// The backup job: pg_dump of the CDR tables, a password-protected RAR of the file share.
    pub(super) fn nightly_backup(&mut self, sink: &mut Sink, t0: i64) {
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
    pub(super) fn deployments(&mut self, sink: &mut Sink, t0: i64) {
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
}
