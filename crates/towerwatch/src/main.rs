//! `towerwatch`: hunt evidence with a compiled Sigma engine; simulate an operator under
//! attack and score hunts against its ground truth.

mod cdr;
mod dump;
mod evaluate;
mod fleet;
mod hunt;
mod interrupt;
mod retro;
mod serve;
mod ship;
mod simulate;
mod term;

// jemalloc, not glibc's allocator: parsing and linking make many small allocations on several
// threads; measured with scripts/bench.sh, hunt x10 runs 9-14% faster at the same peak RSS
// (mimalloc was slower here).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use crate::term::complainln;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Catch state-sponsored espionage inside mobile operators.
///
/// Exit codes: 0 the run completed (bad records are reported and counted, not fatal);
/// 1 a hard failure (unreadable rules, output not writable, --strict and a bad record);
/// 2 bad usage.
#[derive(Parser)]
#[command(name = "towerwatch", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Sigma rules over evidence (EVTX, JSON Lines, IIS W3C, access logs, Zeek, database
    /// audit logs, directories, .gz/.zst, `-` for stdin).
    Hunt(HuntArgs),
    /// Print the normalized events as JSON Lines (parse only, no rules).
    Dump(DumpArgs),
    /// Work with rule sets.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Analyse the CDR store's audit trail (PostgreSQL + pgaudit; Oracle and SQL Server audit
    /// exports): targeted lookups, bulk exports, unusual actors; and the exposure of
    /// subscribers, pseudonymised.
    Cdr(CdrArgs),
    /// Simulate a mobile operator with a Soft Cell campaign inside, with ground truth.
    Simulate(SimArgs),
    /// Score detections (JSONL from hunt and cdr) against a simulation's ground truth.
    Eval(EvalArgs),
    /// Simulate a small operator into a temporary directory, hunt it, analyse its CDR store,
    /// and score both against the ground truth.
    Demo(DemoArgs),
    /// Run the live service: events in over HTTP (JSON Lines, text log lines, Elasticsearch
    /// bulk; durable before acknowledged), the hunt's detections, operations and exposure
    /// out, a web UI at /ui; bearer tokens with roles, audited reveals. Binds 127.0.0.1.
    Serve(ServeArgs),
    /// Send evidence to a `towerwatch serve` (JSON Lines and EVTX as events, text logs as
    /// lines), in batches acknowledged one by one; a state file keeps how far each file
    /// went, so a rerun resumes; --follow watches growing logs. With --nats, to a NATS
    /// JetStream for `towerwatch worker`s instead.
    Ship(ShipArgs),
    /// Judge events from NATS JetStream (a share of the hosts) and publish what each gives
    /// the story builder; run several, with the same rules and context.
    Worker(WorkerArgs),
    /// Keep the workers' facts in PostgreSQL and conclude them into the hunt's detections
    /// and operations (stories across hosts); run one.
    StoryBuilder(StoryBuilderArgs),
    /// Run Sigma rules written after the fact over the events a `towerwatch serve` stored,
    /// in event time (the server may be running); detections as JSON Lines.
    Retro(RetroArgs),
}

#[derive(Args)]
pub struct RetroArgs {
    /// Sigma rule files or directories of them (YAML).
    #[arg(required = true, value_name = "RULES")]
    pub rules: Vec<PathBuf>,
    /// The server's data directory.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// The server's PostgreSQL, when it keeps its events there.
    #[arg(
        long,
        value_name = "URL",
        env = "TOWERWATCH_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub from: Option<jiff::Timestamp>,
    /// Only events before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub to: Option<jiff::Timestamp>,
    /// Write the detections here instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The pseudonymisation key the server uses (else TOWERWATCH_PSEUDONYM_KEY, else a
    /// random one: pseudonyms then differ from the server's).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct ShipArgs {
    /// Files or directories: JSON Lines, EVTX, JSON documents, text logs (W3C, PostgreSQL,
    /// access logs, Zeek, audit exports); also .gz/.zst.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Keep watching the paths: lines added to files (whole lines only) and new files are
    /// shipped as they come, until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub follow: bool,
    /// How often --follow looks for more, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1000, requires = "follow")]
    pub poll_ms: u64,
    /// The server, e.g. http://127.0.0.1:8480.
    #[arg(long, value_name = "URL", required_unless_present = "nats")]
    pub to: Option<String>,
    /// Publish the events to NATS JetStream instead (e.g. nats://127.0.0.1:4222): every
    /// file read here, each event on its host's subject, stored once by its identity.
    #[arg(long, value_name = "URL", conflicts_with_all = ["to", "token"])]
    pub nats: Option<String>,
    #[command(flatten)]
    pub nats_tls: NatsTlsArgs,
    /// A token with the ingest role (else TOWERWATCH_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Where the acknowledged offsets are kept [default: towerwatch-ship.offsets.json].
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Lines per request (not with --nats, which publishes up to 100 events a message).
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub batch: usize,
    /// Seconds to keep retrying a batch the server does not take (it may be restarting).
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub retry_for: u64,
}

/// How NATS and this client prove themselves to each other (TLS, credentials).
#[derive(Args, Clone, Default)]
pub struct NatsTlsArgs {
    /// CA certificates (PEM) that NATS's certificate must chain to: the connection is then
    /// TLS (as with a tls:// URL).
    #[arg(
        long,
        value_name = "PEM",
        env = "TOWERWATCH_NATS_CA",
        requires = "nats"
    )]
    pub nats_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for a NATS server that verifies clients.
    #[arg(
        long,
        value_name = "PEM",
        env = "TOWERWATCH_NATS_CERT",
        requires = "nats_key"
    )]
    pub nats_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        value_name = "PEM",
        env = "TOWERWATCH_NATS_KEY",
        requires = "nats_cert"
    )]
    pub nats_key: Option<PathBuf>,
    /// A NATS credentials file (a user JWT and its NKey seed).
    #[arg(
        long,
        value_name = "FILE",
        env = "TOWERWATCH_NATS_CREDS",
        requires = "nats"
    )]
    pub nats_creds: Option<PathBuf>,
}

impl NatsTlsArgs {
    /// NATS at `url`, reached this way.
    pub fn access(&self, url: &str) -> towerwatch_fleet::NatsAccess {
        towerwatch_fleet::NatsAccess {
            url: url.into(),
            ca: self.nats_ca.clone(),
            cert: self.nats_cert.clone(),
            key: self.nats_key.clone(),
            creds: self.nats_creds.clone(),
        }
    }
}

/// The hunt a worker and the story builder share (the same on every one of them).
#[derive(Args)]
pub struct FleetHuntArgs {
    /// The NATS server, e.g. nats://127.0.0.1:4222 (tls://… for TLS).
    #[arg(
        long,
        value_name = "URL",
        env = "TOWERWATCH_NATS",
        hide_env_values = true
    )]
    pub nats: String,
    #[command(flatten)]
    pub nats_tls: NatsTlsArgs,
    /// Seconds an event (or fact) may stay unacknowledged before it is delivered again, to
    /// whoever pulls it.
    #[arg(long, value_name = "S", default_value_t = 30)]
    pub ack_wait: u64,
    #[command(flatten)]
    pub setup: HuntSetupArgs,
}

impl FleetHuntArgs {
    /// NATS, reached as the flags say.
    pub fn access(&self) -> towerwatch_fleet::NatsAccess {
        self.nats_tls.access(&self.nats)
    }
}

/// What a long-running hunt (serve, worker, story builder) is set up with.
#[derive(Args)]
pub struct HuntSetupArgs {
    #[command(flatten)]
    pub rules: RuleArgs,
    /// An asset inventory (CSV with host, ip, role columns).
    #[arg(long, value_name = "FILE")]
    pub assets: Option<PathBuf>,
    #[command(flatten)]
    pub context: CdrContextArgs,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// This worker's number, from 0; it owns the partitions p with p % workers == index.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub index: u32,
    /// How many workers share the partitions.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: u32,
    /// Events judged between two publishes of their facts.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch: usize,
    #[command(flatten)]
    pub hunt: FleetHuntArgs,
}

#[derive(Args)]
pub struct StoryBuilderArgs {
    /// Where the facts and the results are kept, e.g. postgres://towerwatch@db/towerwatch
    /// (over TLS: ?sslmode=verify-full&sslrootcert=ca.pem).
    #[arg(
        long,
        value_name = "URL",
        env = "TOWERWATCH_DATABASE",
        hide_env_values = true
    )]
    pub database: String,
    /// Conclude after this many milliseconds without new facts.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub settle_ms: u64,
    /// Conclude at least this often (seconds) while facts keep coming.
    #[arg(long, value_name = "S", default_value_t = 300)]
    pub conclude_every: u64,
    #[command(flatten)]
    pub hunt: FleetHuntArgs,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Where the events, tokens and audit log are kept (created if missing); with
    /// --database, scratch space only.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Keep everything in PostgreSQL instead of SQLite in --data, e.g.
    /// postgres://towerwatch@db.example/towerwatch (its schema is created and migrated; over
    /// TLS: ?sslmode=verify-full&sslrootcert=ca.pem, with sslcert and sslkey for a client
    /// certificate).
    #[arg(
        long,
        value_name = "URL",
        env = "TOWERWATCH_DATABASE",
        hide_env_values = true
    )]
    pub database: Option<String>,
    #[command(subcommand)]
    pub action: Option<ServeAction>,
    /// Address to listen on; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8480")]
    pub listen: std::net::SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds (in event time) an event may come after newer ones and still be taken in
    /// order by the live hunt; a live detection shows once its event is this far behind the
    /// newest.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub lateness: u64,
    /// Requests per second each client address may make, in bursts of twice that (more
    /// are answered 429 with Retry-After); 0: no limit.
    #[arg(long, value_name = "N", default_value_t = towerwatch_serve::DEFAULT_RATE_LIMIT)]
    pub rate_limit: u32,
    /// Keep what came in for this long (90d, 12h, 2w…), then delete it (a text log by when
    /// it last grew); the audit log is kept for ever. Default: keep everything.
    #[arg(long, value_name = "PERIOD", value_parser = towerwatch_serve::retention::parse_period)]
    pub retain: Option<std::time::Duration>,
    /// Show the results a `towerwatch story-builder` keeps in --database (events judged by
    /// `towerwatch worker`s from NATS JetStream) instead of hunting what comes in here;
    /// events sent here are refused (ship them with `ship --nats`), unless --nats is given.
    /// Give the builder's rules and context; this server's own tokens and audit log are kept
    /// in that database too.
    #[arg(long, requires = "database")]
    pub fleet: bool,
    /// With --fleet: publish JSON events sent to /api/v1/events, and Elasticsearch bulk
    /// requests, to this NATS server's JetStream for the workers (an ingest node), answering
    /// once JetStream has stored them. Text lines are still refused here: ship their files
    /// with `ship --nats`.
    #[arg(long, value_name = "URL", requires = "fleet")]
    pub nats: Option<String>,
    #[command(flatten)]
    pub nats_tls: NatsTlsArgs,
    #[command(flatten)]
    pub setup: HuntSetupArgs,
}

#[derive(Args, Clone)]
pub struct CdrArgs {
    /// Audit logs or directories: PostgreSQL stderr (any log_line_prefix), csvlog or jsonlog
    /// with pgaudit lines; Oracle UNIFIED_AUDIT_TRAIL or SQL Server fn_get_audit_file exports
    /// as CSV; plain, gzip or zstd.
    #[arg(required = true, value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    #[command(flatten)]
    pub context: CdrContextArgs,
    /// Cell-site table (OpenCelliD CSV) for the map of the leaked location trail.
    #[arg(long, value_name = "FILE")]
    pub cells: Option<PathBuf>,
    /// Asset inventory (CSV host,ip,role).
    #[arg(long, value_name = "FILE")]
    pub assets: Option<PathBuf>,
    /// The server's log_line_prefix (stderr logs); found from each log's first lines when not
    /// given (PostgreSQL's default, Debian/Ubuntu's, RHEL's, Amazon RDS's, Azure's, pgBadger's,
    /// or read off the lines).
    #[arg(long, value_name = "PREFIX")]
    pub log_line_prefix: Option<String>,
    /// Days at the start of the logs that teach the baselines (bulk exports, first-seen actors).
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub training_days: i64,
    /// Most identifiers a lookup may name and still count as targeted.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_ids: usize,
    /// A lookup over more days than this (or unbounded) is long-range.
    #[arg(long, value_name = "DAYS", default_value_t = 92)]
    pub long_range_days: i64,
    /// Show real identifiers instead of pseudonyms. The key must be the one that made the
    /// pseudonyms of `--against` (or of the exposure.json already in `--out`); every reveal is
    /// recorded in reveals.jsonl beside the outputs, with `--reason`.
    #[arg(long, value_name = "FILE", requires = "reason")]
    pub reveal_key: Option<PathBuf>,
    /// Why identifiers are revealed (a case, a request): recorded with the reveal.
    #[arg(long, value_name = "TEXT", requires = "reveal_key")]
    pub reason: Option<String>,
    /// A pseudonymised output (exposure.json, a manifest, the hunt report's exposure.json)
    /// whose key `--reveal-key` must be.
    #[arg(long, value_name = "FILE", requires = "reveal_key")]
    pub against: Option<PathBuf>,
    /// Write cdr-detections.jsonl, exposure.csv, exposure.json and exposure.html here.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Fail on any rejected line or unparsable statement.
    #[arg(long)]
    pub strict: bool,
    /// No summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What the CDR analytics need besides the audit logs.
#[derive(Args, Clone, Default)]
pub struct CdrContextArgs {
    /// CDR extract (CSV files of the warehouse's tables with a header, whatever its column
    /// names; or a directory of them; also .csv.gz/.csv.zst): the stolen queries are re-run
    /// over it to tell what they returned.
    #[arg(long, value_name = "PATH")]
    pub cdr: Option<PathBuf>,
    /// The time zone of extract times written without an offset (IANA name such as
    /// Europe/Istanbul, or +03:00); UTC when not given.
    #[arg(long, value_name = "ZONE")]
    pub cdr_timezone: Option<String>,
    /// The warehouse's CDR and subscriber tables and columns (YAML), when what towerwatch
    /// learns from the logs and the extract should be overridden; see the README.
    #[arg(long, value_name = "FILE")]
    pub schema: Option<PathBuf>,
    /// Register of authorised requests (CSV case_id,identifiers,from,to,approved_by,account):
    /// lookups it covers are not alarms.
    #[arg(long, value_name = "FILE")]
    pub register: Option<PathBuf>,
    /// Pseudonymisation key (at least 16 bytes); else TOWERWATCH_PSEUDONYM_KEY, else a random
    /// key for this run.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct EvalArgs {
    /// The simulation directory (its truth/ is read).
    #[arg(long, value_name = "DIR")]
    pub truth: PathBuf,
    /// Detections from `towerwatch hunt --format jsonl` and `towerwatch cdr` (their
    /// FILE.manifest.json, when each has one, tell which inputs were read).
    #[arg(value_name = "DETECTIONS", required = true)]
    pub detections: Vec<PathBuf>,
    /// Count only detections at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "low",
          value_parser = ["informational", "low", "medium", "high", "critical"])]
    pub min_level: String,
    /// Also write the evaluation as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also score the operations of a `hunt --report` (its operations.json): how each
    /// wave's events fall into operations, and operations holding no campaign event.
    #[arg(long, value_name = "FILE")]
    pub operations: Option<PathBuf>,
}

#[derive(Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub sim: SimOptions,
    /// Count only detections at or above this level.
    #[arg(long, value_name = "LEVEL", default_value = "low",
          value_parser = ["informational", "low", "medium", "high", "critical"])]
    pub min_level: String,
}

#[derive(Args, Clone)]
pub struct SimArgs {
    #[command(flatten)]
    pub options: SimOptions,
    /// No summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What to simulate.
#[derive(Args, Clone)]
pub struct SimOptions {
    /// Output directory (evidence/, cdr/, context/, truth/ are written into it); `demo`
    /// uses a temporary directory without it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The operator: nwm (IIS + JBoss, one table per record family), kestrel (Tomcat + IIS,
    /// monthly partitions with A/B numbers, a CRM table, Debian's log_line_prefix, no Sysmon
    /// on DCs) or andes (load balancer, one daily-partitioned usage table with 32.298 column
    /// names, joins through a subscriber table, Amazon RDS's prefix).
    #[arg(long, value_name = "NAME", default_value = "nwm", value_parser = ["nwm", "kestrel", "andes"])]
    pub profile: String,
    /// Same seed, same bytes.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Operator size and traffic (1: 20 care desks, 500 subscribers); events grow linearly.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Simulated days.
    #[arg(long, default_value_t = 28)]
    pub days: u32,
    /// Campaign waves (each re-enters through a web server with changed tools).
    #[arg(long, default_value_t = 3)]
    pub waves: u8,
    /// Subscribers the campaign is after.
    #[arg(long, default_value_t = 12)]
    pub targets: usize,
    /// 0-1; from 0.8 on even the first wave renames its tools.
    #[arg(long, default_value_t = 0.5)]
    pub stealth: f64,
    /// First simulated day (UTC), YYYY-MM-DD.
    #[arg(long, default_value = "2019-03-04")]
    pub start: String,
    /// Days of CDR history in the warehouse before --start.
    #[arg(long, default_value_t = 30)]
    pub history_days: u32,
    /// The operator's offset from UTC in minutes (business hours follow it); the profile's
    /// own when not given (nwm +480, kestrel +180, andes -300).
    #[arg(long, allow_negative_numbers = true)]
    pub utc_offset_minutes: Option<i32>,
}

#[derive(Args, Clone)]
pub struct RuleArgs {
    /// Rule file or directory (repeatable): Sigma detection and correlation rules; replaces
    /// the embedded set (SigmaHQ Windows rules and the Soft Cell pack).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Only rules at or above this level. Informational rules (a logoff, a service start)
    /// flag about one benign event in ten; `--min-level informational` loads them too. Rules
    /// a selected correlation refers to run whatever their level, silently.
    #[arg(long, value_name = "LEVEL", default_value = "low",
          value_parser = ["informational", "low", "medium", "high", "critical"])]
    pub min_level: String,
    /// Only rules with these statuses (repeatable or comma-separated; `all` for every one).
    #[arg(long, value_name = "STATUS", value_delimiter = ',',
          default_values = ["stable", "test", "experimental"],
          value_parser = ["stable", "test", "experimental", "deprecated", "unsupported", "all"])]
    pub status: Vec<String>,
    /// YAML map of placeholder names to values, for `--rules` rules using `|expand`
    /// (`admins: [alice, bob]`); rules whose placeholders have no values are refused.
    #[arg(long, value_name = "FILE")]
    pub placeholders: Option<PathBuf>,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum HuntFormat {
    /// A summary by level, rule and host (detections are not listed).
    Table,
    /// One JSON object per detection.
    Jsonl,
    /// One CSV row per detection.
    Csv,
}

#[derive(Args)]
pub struct HuntArgs {
    /// Evidence files or directories; `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// How detections are written [default: by the extension of --output (.jsonl, .json,
    /// .ndjson: jsonl; .csv: csv), else table].
    #[arg(long, value_enum)]
    pub format: Option<HuntFormat>,
    /// Write detections here (and a run manifest beside it, FILE.manifest.json).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Report which loaded rules can never fire on this evidence, and which rules were refused.
    #[arg(long)]
    pub coverage: bool,
    /// Write the operations report here: report.html, operations.json, timeline.csv
    /// (Timesketch), navigator.json (ATT&CK Navigator layer) and stix.json (STIX 2.1).
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// An asset inventory (CSV with host, ip, role columns): roles such as cdr_database,
    /// mediation, billing, hlr, lawful_interception or domain_controller raise an
    /// operation's severity.
    #[arg(long, value_name = "FILE")]
    pub assets: Option<PathBuf>,
    /// Database audit logs among the evidence are analysed for CDR theft; these tell what
    /// the thefts returned (the exposure, per operation in the report).
    #[command(flatten)]
    pub context: CdrContextArgs,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[command(flatten)]
    pub run: RunArgs,
    /// Evaluate with the plain reference evaluator instead of the compiled engine, and link
    /// stories with the plain in-memory linker (slow, memory grows with the events; for checks).
    #[arg(long, hide = true)]
    pub reference: bool,
    /// Link stories with the plain in-memory linker (memory grows with the events; for
    /// checking the bounded one).
    #[arg(long, hide = true)]
    pub in_memory_linker: bool,
    /// Skip correlation (no operations): the baseline the benchmark compares against.
    #[arg(long, hide = true)]
    pub no_operations: bool,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
pub enum DumpFormat {
    /// One normalized event per line.
    Jsonl,
    /// Parse and count only (the parse-only baseline of the benchmarks).
    None,
}

/// How text logs whose layout is configurable were written.
#[derive(Args, Clone, Default)]
pub struct LayoutArgs {
    /// The log_line_prefix of PostgreSQL stderr logs; found from each log's first lines when
    /// not given.
    #[arg(long, value_name = "PREFIX")]
    pub log_line_prefix: Option<String>,
    /// The layout of web access logs, as an Apache LogFormat (`%h %l %u %t "%r" %>s %b`) or an
    /// nginx log_format; common and combined (with a trailing X-Forwarded-For or time) are
    /// read without it.
    #[arg(long, value_name = "FORMAT")]
    pub access_log_format: Option<String>,
}

impl LayoutArgs {
    /// The reading options these give.
    pub fn read_options(&self) -> anyhow::Result<towerwatch_sources::ReadOptions> {
        Ok(towerwatch_sources::ReadOptions {
            log_line_prefix: self
                .log_line_prefix
                .as_deref()
                .map(towerwatch_sources::LinePrefix::new)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--log-line-prefix: {e}"))?,
            access_log_format: self
                .access_log_format
                .as_deref()
                .map(towerwatch_sources::AccessFormat::new)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--access-log-format: {e}"))?,
            ..Default::default()
        })
    }
}

/// How a run reads its inputs and reports.
#[derive(Args)]
pub struct RunArgs {
    /// Stop at the first bad record or unreadable input.
    #[arg(long)]
    pub strict: bool,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

#[derive(Args)]
pub struct DumpArgs {
    /// Evidence files or directories; `-` reads stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: DumpFormat,
    /// Write the events here.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub layout: LayoutArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Subcommand)]
pub enum ServeAction {
    /// Issue the data directory's first admin token and print it once (there are no default
    /// credentials; refused when an admin token exists).
    Init,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rules, print every refused rule with its reason, and totals.
    Check {
        /// Rule files or directories (default: the embedded rules).
        paths: Vec<PathBuf>,
        /// YAML map of placeholder names to values, for rules using `|expand`.
        #[arg(long, value_name = "FILE")]
        placeholders: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hunt(args) => hunt::run(args),
        Command::Dump(args) => dump::run(args),
        Command::Rules(RulesCommand::Check {
            paths,
            placeholders,
        }) => rules_check(&paths, placeholders.as_deref()),
        Command::Cdr(args) => cdr::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Eval(args) => evaluate::run_eval(args),
        Command::Demo(args) => evaluate::run_demo(args),
        Command::Serve(args) => serve::run(args),
        Command::Ship(args) => ship::run(args),
        Command::Worker(args) => fleet::worker(args),
        Command::StoryBuilder(args) => fleet::story_builder(args),
        Command::Retro(args) => retro::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            complainln!("towerwatch: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `towerwatch rules check`: every refusal, the totals; exit 1 when the set is broken.
fn rules_check(
    paths: &[PathBuf],
    placeholders: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    let check = towerwatch_hunt::rules::Check::of(paths, placeholders)?;
    term::out(&check.render());
    Ok(if check.invalid() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A reader that stopped reading (`| head`) is not an error of ours.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(std::io::ErrorKind::BrokenPipe))
    })
}
