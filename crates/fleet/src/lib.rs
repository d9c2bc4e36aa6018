//! The hunt past one machine, on NATS JetStream and PostgreSQL.
//!
//! ```text
//! ship --nats ──► stream TOWERWATCH_EVENTS ──► workers (judge) ──► stream TOWERWATCH_FACTS ──► story builder ──► PostgreSQL
//!                 towerwatch.events.<p>.<host>  partition p of a     towerwatch.facts.<p>     keeps facts by    facts, detections,
//!                 ≤ 100 events a message,       worker's share       a message of facts per   identity,         operations
//!                 each with its identity                             message of events        concludes
//! ```
//!
//! - **Ingest** ([`ship`]) publishes events on their host's subject, in one of
//!   [`PARTITIONS`] partitions, up to [`wire::PER_MESSAGE`] a message, each with its identity
//!   (a message sent again is dropped by JetStream within its window; an event that comes
//!   twice all the same is kept once by the builder).
//! - **Workers** ([`worker`]) each own the partitions `p % workers == index` through a durable
//!   pull consumer per partition, so a host's events are judged by one worker. A worker runs
//!   the engine and the extracting halves of the hunt's stages ([`towerwatch_hunt::Judge`])
//!   and publishes each event's facts (detections, the linker's link fact, the database
//!   audit's statement, Sigma-correlation hits, the routine's sighting), a message of facts
//!   for each message of events, acknowledging the events only once their facts are stored
//!   in the facts stream. A partition nobody pulls
//!   (its worker died) is adopted by another worker, which gets the unacknowledged messages
//!   after the ack wait.
//! - **The story builder** ([`builder`]) keeps every fact in PostgreSQL (one row per event
//!   identity: a redelivered event changes nothing), acknowledging only after the commit,
//!   and concludes — the absorbing halves of the stages, then the hunt's conclusion: routine
//!   verdicts, Sigma correlations, the web-shell join, the database audit, the stories
//!   across hosts — into the detections and operations that `hunt` gives on the same files.
//!
//! ```no_run
//! # async fn f() -> Result<(), towerwatch_fleet::FleetError> {
//! let js = towerwatch_fleet::connect(&"nats://127.0.0.1:4222".into()).await?;
//! towerwatch_fleet::streams(&js).await?;
//! # Ok(()) }
//! ```

pub mod access;
pub mod builder;
mod publish;
pub mod ship;
pub mod store;
pub mod wire;
pub mod worker;

pub use access::NatsAccess;
pub use publish::{Published, Publisher};

use std::time::Duration;

use async_nats::jetstream::{self, stream};

/// Partitions of the events: part of the subject layout, the same for every process.
pub const PARTITIONS: u32 = 8;
/// The events' stream and its subjects' prefix.
pub const EVENTS: &str = "TOWERWATCH_EVENTS";
pub const EVENTS_SUBJECTS: &str = "towerwatch.events";
/// The facts' stream and its subjects' prefix.
pub const FACTS: &str = "TOWERWATCH_FACTS";
pub const FACTS_SUBJECTS: &str = "towerwatch.facts";
/// Publishes awaiting JetStream's acknowledgement at once: past a few hundred, waiting
/// acknowledgements slow publishing down (measured: 85k events shipped in 3.0 s with 100 in
/// flight, 5.0 s with 500, 11.2 s with 2,000).
pub const IN_FLIGHT: usize = 128;
/// The header naming the rules a worker judged with (the builder refuses other rules).
pub const RULES_HEADER: &str = "Towerwatch-Rules";

/// Why a fleet process stopped.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("NATS at {url}: {why}")]
    Connect { url: String, why: String },
    #[error("JetStream: {0}")]
    JetStream(String),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Hunt(#[from] towerwatch_hunt::HuntError),
    /// A setting cannot be used (a database URL, a certificate file).
    #[error("{0}")]
    Setting(String),
}

impl FleetError {
    fn js(e: impl std::fmt::Display) -> Self {
        FleetError::JetStream(e.to_string())
    }
}

/// A JetStream context on NATS (a URL, or [`NatsAccess`] with TLS and credentials); the
/// client reconnects by itself after an outage.
pub async fn connect(access: &NatsAccess) -> Result<jetstream::Context, FleetError> {
    use async_nats::ConnectErrorKind as Kind;
    let refused = |e: async_nats::ConnectError| FleetError::Connect {
        url: access.shown(),
        why: e.to_string(),
    };
    let timeout = Duration::from_secs(5);
    // A first try without retrying, because with retrying the client never gives up and a
    // certificate refused would only show as requests timing out: a refusal is told as it
    // is. NATS not there yet (no answer) is waited for, the client retrying in the
    // background.
    match access
        .options()
        .await?
        .connection_timeout(timeout)
        .connect(access.url.as_str())
        .await
    {
        Ok(client) => return Ok(jetstream::new(client)),
        Err(e)
            if matches!(
                e.kind(),
                Kind::Tls | Kind::Authentication | Kind::AuthorizationViolation
            ) =>
        {
            return Err(refused(e))
        }
        Err(e) if tls_refused(&e) => {
            return Err(FleetError::Connect {
                url: access.shown(),
                why: format!(
                    "TLS refused ({e}): a certificate, check --nats-ca, --nats-cert, --nats-key"
                ),
            })
        }
        Err(_) => {}
    }
    let client = access
        .options()
        .await?
        .retry_on_initial_connect()
        .connection_timeout(timeout)
        .connect(access.url.as_str())
        .await
        .map_err(refused)?;
    Ok(jetstream::new(client))
}

/// Whether TLS failed in earnest: a certificate refused on either side (the server's alert
/// reaches the client as an I/O error holding rustls' error).
fn tls_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at = Some(e);
    while let Some(e) = at {
        let held = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>());
        if held || e.is::<rustls::Error>() {
            return true;
        }
        at = e.source();
    }
    false
}

/// Creates the two streams if they are missing (file storage; events and facts kept for a
/// week, so a story builder away for days loses nothing).
pub async fn streams(js: &jetstream::Context) -> Result<(), FleetError> {
    for (name, subjects) in [(EVENTS, EVENTS_SUBJECTS), (FACTS, FACTS_SUBJECTS)] {
        js.get_or_create_stream(stream::Config {
            name: name.into(),
            subjects: vec![format!("{subjects}.>")],
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(7 * 86_400),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .map_err(FleetError::js)?;
    }
    Ok(())
}

/// The durable pull consumer `name` of `stream` (created if missing): explicit acks, each
/// message delivered again after `ack_wait` until acknowledged.
pub(crate) async fn durable(
    js: &jetstream::Context,
    stream: &str,
    name: &str,
    filter: String,
    ack_wait: Duration,
    max_ack_pending: i64,
) -> Result<jetstream::consumer::PullConsumer, FleetError> {
    use jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
    js.get_stream(stream)
        .await
        .map_err(FleetError::js)?
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.into()),
                filter_subject: filter,
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                max_ack_pending,
                ..Default::default()
            },
        )
        .await
        .map_err(FleetError::js)
}

/// The messages of `consumer`, pulled `per_batch` at a time (a missed heartbeat after 10 s
/// of silence ends the stream with an error: pull again).
pub(crate) async fn pull(
    consumer: jetstream::consumer::PullConsumer,
    per_batch: usize,
) -> Result<jetstream::consumer::pull::Stream, FleetError> {
    consumer
        .stream()
        .max_messages_per_batch(per_batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(FleetError::js)
}

/// A digest of the rules a hunt runs, in order: workers and builder must agree on it, since
/// facts name rules by their place.
pub fn rules_digest(hunt: &towerwatch_hunt::Hunt) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for r in hunt.rules() {
        h.update(r.id.as_bytes());
        h.update([0]);
        h.update(r.title.as_bytes());
        h.update([0]);
    }
    h.update(hunt.correlations().to_le_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
