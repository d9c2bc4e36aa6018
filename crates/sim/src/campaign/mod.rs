//! Operation Soft Cell, wave after wave (`../shared/docs/softcell.md` §1, stages 1–10): a web
//! shell on an Internet-facing server, discovery, credential theft, lateral movement with
//! stolen and replayed credentials, side-loaded persistence and the actor's own domain admins,
//! a relay, targeted CDR queries for a few subscribers over years of history, password-protected
//! split RAR archives in the Recycle Bin, exfiltration through the web server, and a VPN for
//! later. Each wave re-enters through a web server after the last was cleaned up, with its
//! tools renamed or rebuilt and new infrastructure. Every event is labelled with its wave,
//! stage and ATT&CK technique as it is emitted.
//!
//! One file per part of a wave, in the order `Campaign::wave` plays them; what the stages
//! share travels in a `WaveState`. Each stage keeps its draws from the wave's dice and its
//! events in their original order: the simulator's output depends on it byte for byte.

mod collection;
mod credentials;
mod entry;
mod exfil;
mod lateral;
mod persistence;
mod relay;
mod vpn;

use serde::Serialize;

use crate::background::Background;
use crate::cdr::TheftQuery;
use crate::clock::{self, DAY, HOUR, MINUTE};
use crate::db::{Session, Statement};
use crate::dice::Dice;
use crate::flows::{self, Flow};
use crate::sink::{Label, Sink};
use crate::windows::{Machine, Proc, Who};
use crate::world::{Account, Role, World};
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

/// What the stages of one wave share: where it came in, how its shell is reached, where
/// it is going, and its clock.
struct WaveState<'a> {
    bg: &'a Background<'a>,
    /// The web server the wave enters through, its events and its worker process (the
    /// shell's parent).
    entry: usize,
    web: Machine<'a>,
    parent: Proc,
    role: Role,
    web_ip: String,
    attacker: String,
    /// The operator's UTC offset in minutes (web logs are written in local time).
    offset: i32,
    db_ip: String,
    jump_h: usize,
    dc_h: usize,
    fs_h: usize,
    /// The wave's clock: each stage starts where the last one left it.
    t: i64,
    shell_path: String,
    shell_uri: String,
    /// The directory the shell's commands run in.
    webroot: &'static str,
    /// The admin-share path the archive volumes are copied to for download.
    dest: &'static str,
    exploit_pages: [&'static str; 5],
    /// The System process (pid 4), which writes the files that arrive over SMB.
    system4: Proc,
}

impl<'a> WaveState<'a> {
    fn new(c: &Ctx<'a>, bg: &'a Background<'_>, t0: i64) -> WaveState<'a> {
        let world = c.world;
        let entry = c.kit.entry;
        let role = world.hosts[entry].role;
        // Where the shell lives and how it is reached, by web stack.
        let shell = &c.kit.shell;
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
        WaveState {
            bg,
            entry,
            web: c.m(entry),
            parent: bg.web_proc(entry).clone(),
            role,
            web_ip: c.ip(entry),
            attacker: c.kit.attacker.clone(),
            offset: c.estate.utc_offset_min,
            db_ip: c.ip(world.one(Role::CdrDatabase)),
            jump_h: world.one(Role::JumpHost),
            dc_h: world.one(Role::DomainController),
            fs_h: world.one(Role::FileServer),
            t: t0,
            shell_path,
            shell_uri,
            webroot,
            dest,
            exploit_pages,
            system4: Proc {
                guid: "{00000000-0000-0000-0000-000000000004}".into(),
                pid: 4,
                image: "System".into(),
                cmd: String::new(),
                who: Who::system(),
                integrity: "System",
            },
        }
    }
}

/// What lateral movement (stage 4) leaves for the later stages: the stolen account, the
/// jump host and its shell, the domain controller's PsExec service, and the tools copied in.
struct Foothold<'a> {
    stolen: &'a Account,
    stolen_who: Who,
    /// Whether the stolen account's hash is replayed (NTLM) rather than its password used.
    pth: bool,
    jump: Machine<'a>,
    jump_ip: String,
    jump_name: String,
    /// `cmd.exe` on the jump host, run through WMI as the intruder.
    jcmd: Proc,
    intruder: Who,
    dc: Machine<'a>,
    /// The renamed PsExec service on the domain controller.
    svc: Proc,
    side_exe: String,
    side_dll: String,
    htran_path: String,
    rar_path: String,
}

/// What persistence (stage 5) leaves: the side-loaded implant, its renamed shell, and the
/// actor's own domain admin.
struct Implant {
    implant: Proc,
    /// The renamed `cmd.exe` the implant runs.
    ecmd: Proc,
    da: String,
    da_sid: String,
}

/// Where the CDR queries ran (stage 7), for staging the results.
struct Collector<'a> {
    cm: Machine<'a>,
    /// The intruder's shell on the collection host.
    ccmd: Proc,
    ip: String,
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

    /// Plays one wave's stages in order; returns when it ends (an hour after the intruder's
    /// VPN logon).
    fn wave(
        &mut self,
        c: &mut Ctx<'_>,
        bg: &Background<'_>,
        sink: &mut Sink,
        t0: i64,
        targets: &[String],
    ) -> i64 {
        c.touch(c.kit.entry);
        let mut w = WaveState::new(c, bg, t0);
        entry::exploit(c, &mut w, sink); // stage 1
        entry::discover(c, &mut w, sink); // stage 2
        let stolen = credentials::dump(c, &mut w, sink); // stage 3
        let hold = lateral::move_on(c, &mut w, sink, stolen); // stage 4
        let implant = persistence::persist(c, &mut w, sink, &hold); // stage 5
        relay::beacon_and_relay(c, &mut w, sink, &hold, &implant); // stage 6
        let collector = self.collect(c, &mut w, sink, &hold, &implant, targets); // stage 7
        let parts = exfil::stage(c, &mut w, sink, &hold, &collector); // stage 8
        exfil::exfiltrate(c, &mut w, sink, parts); // stage 9
        let back = vpn::install(c, &mut w, sink, &hold, &implant); // stage 10
        sink.set_label(None);
        back + HOUR
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
