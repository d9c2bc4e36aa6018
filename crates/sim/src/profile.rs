//! Operators that differ the way real estates do: names of the domain and its hosts, address
//! plan, time zone, which hosts run Sysmon, the web stack facing the Internet, the CDR
//! warehouse's schema (table and column names, partitioning, a subscriber table, record-type
//! codes, time format of its extract), the database's `log_line_prefix`, how the intruder
//! writes its queries and names its tools, and when the benign twins of its moves happen.
//!
//! A hunt that works on one profile and not another has learnt our simulator, not the threat:
//! tests run the whole pipeline on every profile with no configuration beyond the asset
//! inventory and the register.

use crate::world::Role;

/// The Windows domain.
#[derive(Debug, Clone, Copy)]
pub struct Org {
    /// NetBIOS name (`NWM`).
    pub netbios: &'static str,
    /// DNS suffix (`nwm.example`).
    pub dns: &'static str,
    /// The domain SID prefix accounts' SIDs are made of.
    pub sid: &'static str,
    /// The company's folder under Program Files and its app names.
    pub short: &'static str,
}

/// How PostgreSQL's log lines start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrefixStyle {
    /// `%m [%p] user=%u,db=%d,app=%a,client=%h ` (towerwatch's recommendation).
    Towerwatch,
    /// Debian/Ubuntu's default `%m [%p] %q%u@%d `: no client, no application in the prefix.
    Debian,
    /// Amazon RDS's `%t:%r:%u@%d:[%p]:`.
    Rds,
}

impl PrefixStyle {
    /// The `log_line_prefix` setting.
    pub fn setting(self) -> &'static str {
        match self {
            PrefixStyle::Towerwatch => "%m [%p] user=%u,db=%d,app=%a,client=%h ",
            PrefixStyle::Debian => "%m [%p] %q%u@%d ",
            PrefixStyle::Rds => "%t:%r:%u@%d:[%p]:",
        }
    }
}

/// How CDR tables are partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partitioning {
    None,
    /// `parent_YYYY_MM`.
    Monthly,
    /// `parentYYYYMMDD` (PostgreSQL inheritance children).
    Daily,
}

/// How the CDR extract is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractLayout {
    /// One file a day holding every table's rows, with a record-type column.
    Daily,
    /// One file per table a day, named after the table.
    PerTable,
}

/// How times are written in the extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeStyle {
    /// Local time with its offset (`2019-03-06T02:55:00+08:00`), as 32.298 TimeStamps are.
    LocalOffset,
    /// UTC without an offset (`2019-03-06 18:55:00`).
    UtcNaive,
}

/// Which rows the intruder's queries ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TheftStyle {
    /// `served_msisdn IN (…)` on the voice and SMS tables.
    Served,
    /// `a_number IN (…) OR b_number IN (…)`: both directions.
    Parties,
    /// Through the subscriber table: `JOIN line ON line.msisdn = u.served WHERE line.msisdn IN (…)`.
    JoinSubscriber,
}

/// The warehouse's CDR schema.
#[derive(Debug, Clone, Copy)]
pub struct CdrSchema {
    /// Tables for voice, SMS and data records (the same name for one table of everything).
    pub voice: &'static str,
    pub sms: &'static str,
    pub data: &'static str,
    pub partitioning: Partitioning,
    /// Column names, in the order of the mediated-CDR fields (`../shared/docs/cdr.md` §1.9):
    /// record_id, record_type, served_imsi, served_msisdn, served_imei, calling_number,
    /// called_number, start_time, answer_time, end_time, duration_s, mcc, mnc, lac_tac,
    /// cell_id, radio, recording_entity, cause_for_term, partial_seq, data_volume_ul,
    /// data_volume_dl, apn.
    pub columns: [&'static str; 22],
    /// Whether the column names are written quoted (mixed case).
    pub quoted: bool,
    /// Record-type codes for moCall, mtCall, moSMS, mtSMS, pGW.
    pub record_types: [&'static str; 5],
    /// The subscriber table: (name, msisdn, imsi, imei, customer id, segment).
    pub subscriber: Option<[&'static str; 6]>,
    pub extract: ExtractLayout,
    pub times: TimeStyle,
}

impl CdrSchema {
    /// A column by its mediated-CDR field index, as SQL writes it.
    pub fn col(&self, i: usize) -> String {
        if self.quoted {
            format!("\"{}\"", self.columns[i])
        } else {
            self.columns[i].to_string()
        }
    }

    /// The CSV header of the extract.
    pub fn header(&self) -> String {
        self.columns.join(",")
    }

    /// The record-type code of a 32.298 record name.
    pub fn record_type(&self, r: &str) -> &'static str {
        let i = match r {
            "moCallRecord" => 0,
            "mtCallRecord" => 1,
            "moSMSRecord" => 2,
            "mtSMSRecord" => 3,
            _ => 4,
        };
        self.record_types[i]
    }

    /// The table of a 32.298 record name.
    pub fn table_of(&self, r: &str) -> &'static str {
        match r {
            "moCallRecord" | "mtCallRecord" => self.voice,
            "moSMSRecord" | "mtSMSRecord" => self.sms,
            _ => self.data,
        }
    }

    /// The partition a record of time `t` (micros) is loaded into.
    pub fn partition(&self, table: &str, t: i64) -> String {
        let p = crate::clock::parts(t);
        match self.partitioning {
            Partitioning::None => table.to_string(),
            Partitioning::Monthly => format!("{table}_{:04}_{:02}", p.y, p.mo),
            Partitioning::Daily => format!("{table}{:04}{:02}{:02}", p.y, p.mo, p.d),
        }
    }

    /// The distinct tables.
    pub fn tables(&self) -> Vec<&'static str> {
        let mut t = vec![self.voice];
        for x in [self.sms, self.data] {
            if !t.contains(&x) {
                t.push(x);
            }
        }
        t
    }
}

/// What the database server writes, and how.
#[derive(Debug, Clone, Copy)]
pub struct DbProfile {
    pub prefix: PrefixStyle,
    /// `log_timezone` is the operator's zone (lines show `+03`), not UTC.
    pub local_log_time: bool,
    pub database: &'static str,
    /// Where the logs are: `{host}` and `{date}` are replaced.
    pub log_path: &'static str,
    pub schema: CdrSchema,
}

/// The intruder's habits in this estate.
#[derive(Debug, Clone, Copy)]
pub struct Habits {
    pub theft: TheftStyle,
    /// Some waves write numbers in national form (`0…`).
    pub national_numbers: bool,
    /// Looks the targets up in the subscriber table first.
    pub subscriber_recon: bool,
    /// Tool names: scanner, relay, archiver, credential dumper (the first wave's).
    pub tools: [&'static str; 4],
    /// What later waves rename the scanner, the relay and the archiver to.
    pub renamed: [&'static str; 3],
    /// Staging folders, one per wave (cycled).
    pub dirs: [&'static str; 3],
    /// Accounts the intruder creates, one per wave (cycled).
    pub accounts: [&'static str; 3],
    /// Web-shell names, one per wave (cycled; `.aspx` for IIS, the stem for Java servers).
    pub shells: [&'static str; 3],
    /// Added to tool build numbers: every estate gets its own hashes.
    pub build_base: u32,
}

/// When the benign twins happen.
#[derive(Debug, Clone, Copy)]
pub struct Schedules {
    /// Local hour of the nightly backup.
    pub backup_hour: u32,
    /// Weekday (0 Monday) and local hour of the weekly deployment.
    pub deploy_day: u32,
    pub deploy_hour: u32,
    /// Chance an administrator works on the jump host in a business hour.
    pub admin_sessions: f64,
}

/// One operator.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub name: &'static str,
    pub about: &'static str,
    pub org: Org,
    pub utc_offset_min: i32,
    /// Servers: name, address, role.
    pub servers: &'static [(&'static str, &'static str, Role)],
    /// Workstation names and addresses by role and number (1-based).
    pub workstation: fn(Role, usize) -> (String, String),
    /// Whether a host of this role runs Sysmon (all hosts audit 4688 with command lines).
    pub sysmon: fn(Role) -> bool,
    /// A load balancer in front of the web servers (its address), which logs
    /// `X-Forwarded-For`.
    pub balancer: Option<&'static str>,
    pub db: DbProfile,
    pub habits: Habits,
    pub schedules: Schedules,
}

impl Profile {
    pub fn named(name: &str) -> Option<&'static Profile> {
        PROFILES.iter().find(|p| p.name == name)
    }
}

/// Every profile, the default first.
pub const PROFILES: [Profile; 3] = [NWM, KESTREL, ANDES];

fn nwm_workstation(role: Role, i: usize) -> (String, String) {
    match role {
        Role::AdminWorkstation => (format!("ADM-WS{i:02}"), format!("10.50.0.{}", 10 + i)),
        _ => (
            format!("CC-WS{i:03}"),
            format!("10.60.{}.{}", i / 200, 10 + i % 200),
        ),
    }
}

/// The operator the project started with: IIS portal and JBoss API, towerwatch's prefix,
/// one table per record family, Sysmon on every server.
pub const NWM: Profile = Profile {
    name: "nwm",
    about: "NorthWave Mobile: IIS + JBoss, Sysmon on servers, cdr.voice_cdr/sms_cdr/data_cdr, towerwatch's log_line_prefix, UTC+8",
    org: Org {
        netbios: "NWM",
        dns: "nwm.example",
        sid: "S-1-5-21-3623811015-3361044348-30300820",
        short: "NWM",
    },
    utc_offset_min: 480,
    servers: &[
        ("DC01", "10.10.0.10", Role::DomainController),
        ("DC02", "10.10.0.11", Role::DomainController),
        ("WEB01", "10.20.0.10", Role::WebIis),
        ("WEB02", "10.20.0.11", Role::WebJboss),
        ("CDRDB01", "10.30.0.10", Role::CdrDatabase),
        ("MED01", "10.30.0.20", Role::Mediation),
        ("MED02", "10.30.0.21", Role::Mediation),
        ("BILL01", "10.30.0.30", Role::Billing),
        ("CARE01", "10.30.0.40", Role::CareApp),
        ("CARE02", "10.30.0.41", Role::CareApp),
        ("RDS01", "10.30.0.50", Role::LawfulDisclosure),
        ("BI01", "10.30.0.60", Role::Analytics),
        ("JUMP01", "10.40.0.10", Role::JumpHost),
        ("FS01", "10.40.0.20", Role::FileServer),
        ("BKP01", "10.40.0.30", Role::Backup),
    ],
    workstation: nwm_workstation,
    sysmon: |r| r != Role::CareWorkstation,
    balancer: None,
    db: DbProfile {
        prefix: PrefixStyle::Towerwatch,
        local_log_time: false,
        database: "cdrdw",
        log_path: "evidence/postgresql/{host}/postgresql-{date}.log",
        schema: CdrSchema {
            voice: "cdr.voice_cdr",
            sms: "cdr.sms_cdr",
            data: "cdr.data_cdr",
            partitioning: Partitioning::None,
            columns: [
                "record_id", "record_type", "served_imsi", "served_msisdn", "served_imei",
                "calling_number", "called_number", "start_time", "answer_time", "end_time",
                "duration_s", "mcc", "mnc", "lac_tac", "cell_id", "radio", "recording_entity",
                "cause_for_term", "partial_seq", "data_volume_ul", "data_volume_dl", "apn",
            ],
            quoted: false,
            record_types: ["moCallRecord", "mtCallRecord", "moSMSRecord", "mtSMSRecord", "pGWRecord"],
            subscriber: None,
            extract: ExtractLayout::Daily,
            times: TimeStyle::LocalOffset,
        },
    },
    habits: Habits {
        theft: TheftStyle::Served,
        national_numbers: false,
        subscriber_recon: false,
        tools: ["nbtscan.exe", "htran.exe", "rar.exe", "msupd.exe"],
        renamed: ["nbt.exe", "dsync.exe", "ds.exe"],
        dirs: [
            "C:\\ProgramData\\Samsung",
            "C:\\ProgramData\\Microsoft\\DeviceSync",
            "C:\\Users\\Public\\Libraries\\Intel",
        ],
        accounts: ["svc_sync", "nwm_helpdesk2", "backup_adm"],
        shells: ["errorEE", "logon_sso", "OutlookEN"],
        build_base: 0,
    },
    schedules: Schedules {
        backup_hour: 1,
        deploy_day: 1,
        deploy_hour: 22,
        admin_sessions: 0.35,
    },
};

fn kestrel_workstation(role: Role, i: usize) -> (String, String) {
    match role {
        Role::AdminWorkstation => (format!("KTL-ADM-{i:02}"), format!("10.8.2.{}", 10 + i)),
        _ => (
            format!("KTL-CC-{i:04}"),
            format!("10.9.{}.{}", 1 + i / 200, 20 + i % 200),
        ),
    }
}

/// A second operator: Tomcat self-care portal and IIS partner site, Debian's prefix with the
/// server on local time, a monthly-partitioned `dwh` schema with A/B-number columns and a CRM
/// subscriber table, one extract file per table, domain controllers without Sysmon.
pub const KESTREL: Profile = Profile {
    name: "kestrel",
    about: "Kestrel Telecom: Tomcat + IIS, no Sysmon on DCs, dwh.call_events_YYYY_MM with a/b numbers, crm.subscriber, Debian's log_line_prefix on local time, UTC+3",
    org: Org {
        netbios: "KESTREL",
        dns: "corp.kestrel-tel.example",
        sid: "S-1-5-21-1004336348-1177238915-682003330",
        short: "Kestrel",
    },
    utc_offset_min: 180,
    servers: &[
        ("KTL-DC-01", "10.1.1.11", Role::DomainController),
        ("KTL-DC-02", "10.1.1.12", Role::DomainController),
        ("KTL-WEB-01", "172.20.10.11", Role::WebTomcat),
        ("KTL-WEB-02", "172.20.10.12", Role::WebIis),
        ("KTL-DWH-01", "10.5.20.15", Role::CdrDatabase),
        ("KTL-MED-01", "10.5.20.21", Role::Mediation),
        ("KTL-MED-02", "10.5.20.22", Role::Mediation),
        ("KTL-BIL-01", "10.5.20.31", Role::Billing),
        ("KTL-CRM-01", "10.5.20.41", Role::CareApp),
        ("KTL-CRM-02", "10.5.20.42", Role::CareApp),
        ("KTL-LEA-01", "10.5.20.51", Role::LawfulDisclosure),
        ("KTL-BI-01", "10.5.20.61", Role::Analytics),
        ("KTL-JMP-01", "10.8.1.10", Role::JumpHost),
        ("KTL-FS-01", "10.8.1.20", Role::FileServer),
        ("KTL-BAK-01", "10.8.1.30", Role::Backup),
    ],
    workstation: kestrel_workstation,
    sysmon: |r| !matches!(r, Role::CareWorkstation | Role::DomainController),
    balancer: None,
    db: DbProfile {
        prefix: PrefixStyle::Debian,
        local_log_time: true,
        database: "dwh",
        log_path: "evidence/db/postgresql-{date}.log",
        schema: CdrSchema {
            voice: "dwh.call_events",
            sms: "dwh.sms_events",
            data: "dwh.data_sessions",
            partitioning: Partitioning::Monthly,
            columns: [
                "event_uid", "event_kind", "imsi", "msisdn", "imei", "a_number", "b_number",
                "call_start_ts", "answer_ts", "call_end_ts", "dur_sec", "mcc", "mnc", "lac",
                "cell_id", "rat", "switch_id", "release_cause", "seq_no", "bytes_up",
                "bytes_down", "apn",
            ],
            quoted: false,
            record_types: ["MOC", "MTC", "SMS-MO", "SMS-MT", "GPRS"],
            subscriber: Some(["crm.subscriber", "msisdn", "imsi", "imei", "customer_id", "segment"]),
            extract: ExtractLayout::PerTable,
            times: TimeStyle::LocalOffset,
        },
    },
    habits: Habits {
        theft: TheftStyle::Parties,
        national_numbers: true,
        subscriber_recon: true,
        tools: ["nbt64.exe", "svcmon.exe", "wrar.exe", "lsa.exe"],
        renamed: ["nscan.exe", "wuhelper.exe", "arc.exe"],
        dirs: [
            "C:\\Users\\Public\\Documents\\Cache",
            "C:\\ProgramData\\Oracle\\Java\\jre",
            "C:\\Windows\\Temp\\WER",
        ],
        accounts: ["ktl_sqlagent", "helpdesk_ops", "scom_svc"],
        shells: ["status_check", "upload_tmp", "img_resize"],
        build_base: 100,
    },
    schedules: Schedules {
        backup_hour: 23,
        deploy_day: 3,
        deploy_hour: 21,
        admin_sessions: 0.45,
    },
};

fn andes_workstation(role: Role, i: usize) -> (String, String) {
    match role {
        Role::AdminWorkstation => (format!("amv-it-{i:02}"), format!("192.168.40.{}", 20 + i)),
        _ => (
            format!("amv-cc-{i:03}"),
            format!("192.168.{}.{}", 50 + i / 200, 10 + i % 200),
        ),
    }
}

/// A third: lower-case host names, a load balancer in front of an IIS portal and a Tomcat API
/// (so access logs carry `X-Forwarded-For`), Amazon RDS's prefix, one daily-partitioned usage
/// table for every record family with mixed-case quoted 32.298 column names and integer
/// record types, a subscriber table the intruder joins through, an extract in naive UTC, no
/// Sysmon on admin workstations.
pub const ANDES: Profile = Profile {
    name: "andes",
    about: "Andes Movil: load balancer + IIS + Tomcat (X-Forwarded-For), one daily-partitioned ops.usage_event with \"ServedMSISDN\"-style columns, joins through crm.line, RDS log_line_prefix, UTC-5",
    org: Org {
        netbios: "ANDESMOVIL",
        dns: "andesmovil.example",
        sid: "S-1-5-21-2220415931-3093185529-1551246720",
        short: "AndesMovil",
    },
    utc_offset_min: -300,
    servers: &[
        ("amv-dc1", "192.168.1.5", Role::DomainController),
        ("amv-dc2", "192.168.1.6", Role::DomainController),
        ("amv-web1", "192.168.10.21", Role::WebIis),
        ("amv-api1", "192.168.10.22", Role::WebTomcat),
        ("amv-pgcdr", "192.168.20.10", Role::CdrDatabase),
        ("amv-med1", "192.168.20.21", Role::Mediation),
        ("amv-med2", "192.168.20.22", Role::Mediation),
        ("amv-bill1", "192.168.20.31", Role::Billing),
        ("amv-crm1", "192.168.20.41", Role::CareApp),
        ("amv-crm2", "192.168.20.42", Role::CareApp),
        ("amv-lea1", "192.168.20.51", Role::LawfulDisclosure),
        ("amv-dwh1", "192.168.20.61", Role::Analytics),
        ("amv-bastion", "192.168.30.10", Role::JumpHost),
        ("amv-files1", "192.168.30.20", Role::FileServer),
        ("amv-vault1", "192.168.30.30", Role::Backup),
    ],
    workstation: andes_workstation,
    sysmon: |r| !matches!(r, Role::CareWorkstation | Role::AdminWorkstation),
    balancer: Some("192.168.10.5"),
    db: DbProfile {
        prefix: PrefixStyle::Rds,
        local_log_time: false,
        database: "cdrstore",
        log_path: "evidence/rds/amv-pgcdr/postgresql.log.{date}",
        schema: CdrSchema {
            voice: "ops.usage_event",
            sms: "ops.usage_event",
            data: "ops.usage_event",
            partitioning: Partitioning::Daily,
            columns: [
                "RecordId", "RecordType", "ServedIMSI", "ServedMSISDN", "ServedIMEI",
                "CallingNumber", "CalledNumber", "RecordOpeningTime", "AnswerTime",
                "ReleaseTime", "CallDuration", "MCC", "MNC", "LocationAreaCode",
                "CellIdentifier", "RATType", "RecordingEntity", "CauseForTerm",
                "RecordSequenceNumber", "UplinkVolume", "DownlinkVolume", "AccessPointName",
            ],
            quoted: true,
            record_types: ["0", "1", "6", "7", "85"],
            subscriber: Some(["crm.line", "msisdn", "imsi", "imei", "account_no", "plan"]),
            extract: ExtractLayout::Daily,
            times: TimeStyle::UtcNaive,
        },
    },
    habits: Habits {
        theft: TheftStyle::JoinSubscriber,
        national_numbers: false,
        subscriber_recon: true,
        tools: ["ns.exe", "fwd.exe", "pk.exe", "dbg64.exe"],
        renamed: ["netinfo.exe", "vmtools.exe", "zz.exe"],
        dirs: [
            "C:\\PerfLogs\\Admin\\Diag",
            "C:\\ProgramData\\VMware\\logs",
            "C:\\Users\\Public\\Music\\sync",
        ],
        accounts: ["adm_backup2", "svc_report", "itsupport01"],
        shells: ["healthcheck", "bannerimg", "srvinfo"],
        build_base: 200,
    },
    schedules: Schedules {
        backup_hour: 2,
        deploy_day: 5,
        deploy_hour: 9,
        admin_sessions: 0.25,
    },
};
