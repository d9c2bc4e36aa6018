//! Administrators and the DBA at work on the jump host: the benign twins of the intruder's
//! PsExec, PowerShell, scheduled tasks, recon commands, RDP and psql.

use super::{db_ip, Background};
use crate::clock::{MINUTE, SECOND};
use crate::db::Statement;
use crate::queries::Sql;
use crate::sink::Sink;
use crate::windows::{exe, Proc, Who};
use crate::world::{AccountKind, Role};

impl Background<'_> {
    /// An administrator (or the DBA) works on the jump host for a while.
    pub(super) fn admin_session(&mut self, sink: &mut Sink, t0: i64) {
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
}
