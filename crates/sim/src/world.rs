//! The simulated operator: hosts with roles, accounts, subscribers and cell sites.

use crate::dice::Dice;
use crate::ids;
use crate::profile::{Org, Profile};
use crate::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    DomainController,
    /// Internet-facing IIS (the self-care portal).
    WebIis,
    /// Internet-facing JBoss/WildFly (the partner API).
    WebJboss,
    /// Internet-facing Apache Tomcat on Windows (`tomcat9.exe`), with NCSA access logs.
    WebTomcat,
    /// The PostgreSQL CDR warehouse.
    CdrDatabase,
    Mediation,
    Billing,
    CareApp,
    /// The retained-data disclosure system that answers police and court requests.
    LawfulDisclosure,
    Analytics,
    JumpHost,
    FileServer,
    Backup,
    AdminWorkstation,
    CareWorkstation,
}

impl Role {
    /// The role name of the asset inventory (`context/assets.csv`).
    pub fn name(self) -> &'static str {
        match self {
            Role::DomainController => "domain_controller",
            Role::WebIis | Role::WebJboss | Role::WebTomcat => "web_server",
            Role::CdrDatabase => "cdr_database",
            Role::Mediation => "mediation",
            Role::Billing => "billing",
            Role::CareApp => "care_application",
            Role::LawfulDisclosure => "lawful_interception",
            Role::Analytics => "analytics",
            Role::JumpHost => "jump_host",
            Role::FileServer => "file_server",
            Role::Backup => "backup",
            Role::AdminWorkstation => "admin_workstation",
            Role::CareWorkstation => "care_workstation",
        }
    }

    pub fn is_server(self) -> bool {
        !matches!(self, Role::AdminWorkstation | Role::CareWorkstation)
    }

    pub fn is_web(self) -> bool {
        matches!(self, Role::WebIis | Role::WebJboss | Role::WebTomcat)
    }
}

#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub fqdn: String,
    pub ip: String,
    pub role: Role,
    /// Whether Sysmon runs here (every host audits 4688 with command lines).
    pub sysmon: bool,
    pub org: &'static Org,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    CareAgent,
    Admin,
    Dba,
    Analyst,
    DisclosureOfficer,
    Service,
}

#[derive(Debug, Clone)]
pub struct Account {
    /// The NetBIOS domain.
    pub domain: &'static str,
    pub name: String,
    pub sid: String,
    pub kind: AccountKind,
    /// The workstation a person works at (index into `World::hosts`).
    pub desk: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Subscriber {
    pub msisdn: String,
    pub imsi: String,
    pub imei: String,
    /// Cells (indexes into `World::cells`) the subscriber is usually served by: home first.
    pub cells: Vec<usize>,
    /// Other subscribers (indexes) this one calls most.
    pub contacts: Vec<usize>,
    /// Mean voice calls a day.
    pub calls_per_day: f64,
}

#[derive(Debug, Clone)]
pub struct Cell {
    pub radio: &'static str,
    pub area: u32,
    pub cell: u32,
    pub lon: f64,
    pub lat: f64,
    pub range: u32,
}

pub struct World {
    pub profile: &'static Profile,
    pub hosts: Vec<Host>,
    pub accounts: Vec<Account>,
    pub subscribers: Vec<Subscriber>,
    pub cells: Vec<Cell>,
}

impl World {
    pub fn build(cfg: &Config) -> World {
        let profile = cfg.profile;
        let org = &profile.org;
        let mut dice = Dice::new(cfg.seed, "world");
        let mut hosts = Vec::new();
        let mut add = |name: &str, ip: &str, role: Role| {
            hosts.push(Host {
                name: name.to_string(),
                fqdn: format!("{name}.{}", org.dns),
                ip: ip.to_string(),
                role,
                sysmon: (profile.sysmon)(role),
                org,
            })
        };
        for (name, ip, role) in profile.servers {
            add(name, ip, *role);
        }
        for i in 1..=3 {
            let (name, ip) = (profile.workstation)(Role::AdminWorkstation, i);
            add(&name, &ip, Role::AdminWorkstation);
        }
        let care_desks = ((20.0 * cfg.scale).round() as usize).max(4);
        for i in 1..=care_desks {
            let (name, ip) = (profile.workstation)(Role::CareWorkstation, i);
            add(&name, &ip, Role::CareWorkstation);
        }

        let mut accounts = Vec::new();
        let mut rid = 1100;
        let mut person = |name: String, kind: AccountKind, desk: Option<usize>| {
            rid += 1;
            accounts.push(Account {
                domain: org.netbios,
                name,
                sid: format!("{}-{rid}", org.sid),
                kind,
                desk,
            })
        };
        const GIVEN: [&str; 16] = [
            "anna", "ben", "chen", "dara", "eli", "farah", "goran", "hana", "ivan", "jun", "kofi",
            "lena", "malik", "nora", "omar", "priya",
        ];
        const FAMILY: [&str; 12] = [
            "tan", "lee", "okafor", "novak", "silva", "khan", "ito", "weber", "costa", "singh",
            "berg", "moreau",
        ];
        // Names repeat in a large operator: the second anna.tan is anna.tan2.
        let name_of = |dice: &mut Dice, taken: &[String]| {
            let base = format!("{}.{}", dice.pick(&GIVEN), dice.pick(&FAMILY));
            (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}{n}")
                    }
                })
                .find(|n| !taken.contains(n))
                .expect("an unused name")
        };
        let mut taken = Vec::new();
        let desks: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].role == Role::CareWorkstation)
            .collect();
        for &desk in &desks {
            let n = name_of(&mut dice, &taken);
            taken.push(n.clone());
            person(n, AccountKind::CareAgent, Some(desk));
        }
        let admin_desks: Vec<usize> = (0..hosts.len())
            .filter(|&i| hosts[i].role == Role::AdminWorkstation)
            .collect();
        for (i, &desk) in admin_desks.iter().enumerate() {
            let n = format!("adm.{}", name_of(&mut dice, &taken));
            taken.push(n.clone());
            person(n, AccountKind::Admin, Some(desk));
            if i == 0 {
                let d = format!("dba.{}", name_of(&mut dice, &taken));
                taken.push(d.clone());
                person(d, AccountKind::Dba, Some(desk));
            }
        }
        for kind in [AccountKind::Analyst, AccountKind::DisclosureOfficer] {
            let n = name_of(&mut dice, &taken);
            taken.push(n.clone());
            person(n, kind, None);
        }
        for svc in [
            "svc_mediation",
            "svc_billing",
            "svc_care",
            "svc_rds",
            "svc_bi",
            "svc_backup",
            "svc_iam",
            "svc_monitor",
        ] {
            person(svc.to_string(), AccountKind::Service, None);
        }

        // Cells: a city grid of LTE sites (three sectors each) and a few GSM cells.
        let sites = ((12.0 * cfg.scale.sqrt()).round() as usize).max(6);
        let mut cells = Vec::new();
        for s in 0..sites {
            let lon = 103.80 + dice.unit() * 0.20;
            let lat = 1.28 + dice.unit() * 0.14;
            let tac = 1000 + (s / 8) as u32;
            for sector in 0..3u32 {
                cells.push(Cell {
                    radio: "LTE",
                    area: tac,
                    cell: ((20_000 + s as u32) << 8) | sector,
                    lon: lon + f64::from(sector) * 0.0007,
                    lat: lat + f64::from(sector) * 0.0004,
                    range: 400 + dice.below(1200) as u32,
                });
            }
            if s % 4 == 0 {
                cells.push(Cell {
                    radio: "GSM",
                    area: 300 + (s / 8) as u32,
                    cell: 10_000 + s as u32,
                    lon,
                    lat,
                    range: 2000 + dice.below(3000) as u32,
                });
            }
        }

        let n_subs = ((500.0 * cfg.scale).round() as usize).max(cfg.targets * 3 + 10);
        let mut subscribers: Vec<Subscriber> = (0..n_subs)
            .map(|_| {
                let home = dice.index(cells.len());
                let mut mine = vec![home];
                for _ in 0..(1 + dice.index(4)) {
                    mine.push(dice.index(cells.len()));
                }
                Subscriber {
                    msisdn: ids::msisdn(&mut dice),
                    imsi: ids::imsi(&mut dice),
                    imei: ids::imei(&mut dice),
                    cells: mine,
                    contacts: Vec::new(),
                    calls_per_day: 1.0 + dice.unit() * 5.0,
                }
            })
            .collect();
        for (i, sub) in subscribers.iter_mut().enumerate() {
            let k = 3 + dice.index(8);
            sub.contacts = (0..k)
                .map(|_| dice.index(n_subs))
                .filter(|&c| c != i)
                .collect();
        }
        World {
            profile,
            hosts,
            accounts,
            subscribers,
            cells,
        }
    }

    /// The first host of a role (every profile has one of each server role).
    pub fn one(&self, role: Role) -> usize {
        self.hosts
            .iter()
            .position(|h| h.role == role)
            .unwrap_or_else(|| panic!("no host with role {role:?}"))
    }

    /// The Internet-facing web servers.
    pub fn web_servers(&self) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.hosts[i].role.is_web())
            .collect()
    }

    pub fn org(&self) -> &'static Org {
        &self.profile.org
    }

    pub fn hosts_with(&self, role: Role) -> Vec<usize> {
        (0..self.hosts.len())
            .filter(|&i| self.hosts[i].role == role)
            .collect()
    }

    pub fn account(&self, name: &str) -> &Account {
        self.accounts
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no account {name}"))
    }

    pub fn accounts_of(&self, kind: AccountKind) -> Vec<&Account> {
        self.accounts.iter().filter(|a| a.kind == kind).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_operators_have_unique_account_names() {
        let world = World::build(&Config {
            scale: 15.0,
            ..Default::default()
        });
        let names: std::collections::BTreeSet<&str> =
            world.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.len(), world.accounts.len());
        assert!(world.hosts_with(Role::CareWorkstation).len() >= 300);
    }
}
