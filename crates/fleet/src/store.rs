//! The story builder's PostgreSQL: every fact (one row per event identity), and the results
//! of the last conclusion (detections as `hunt -o x.jsonl` writes them, operations as
//! `operations.json`).

use futures::{Stream, StreamExt};
use tokio_postgres::Client;

use crate::FleetError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS fleet_facts (
    id bytea PRIMARY KEY,
    time_us bigint NOT NULL,
    order_hi bigint NOT NULL,
    order_lo bigint NOT NULL,
    body bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS fleet_detections (n bigint PRIMARY KEY, line text NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_results (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    facts bigint NOT NULL,
    detections bigint NOT NULL,
    operations text NOT NULL,
    made_at timestamptz NOT NULL DEFAULT now()
);
-- The columns of the second version, added once: ALTER TABLE locks the table even when
-- there is nothing to add, and readers (serve --fleet) hold snapshots of it.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = 'fleet_results'
                     AND column_name = 'fired') THEN
        ALTER TABLE fleet_results ADD COLUMN IF NOT EXISTS generation bigint NOT NULL DEFAULT 0;
        ALTER TABLE fleet_results ADD COLUMN IF NOT EXISTS events bigint NOT NULL DEFAULT 0;
        ALTER TABLE fleet_results ADD COLUMN IF NOT EXISTS exposure text;
        ALTER TABLE fleet_results ADD COLUMN IF NOT EXISTS fired text NOT NULL DEFAULT '[]';
    END IF;
END $$;
";

/// A connection to `url` (over TLS when it asks: [`crate::access::postgres`]), its schema
/// made if missing.
pub async fn connect(url: &str) -> Result<Client, FleetError> {
    let (config, tls) = crate::access::postgres(url)?;
    let (client, connection) = config.connect(tls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("towerwatch story-builder: PostgreSQL connection: {e}");
        }
    });
    client.batch_execute(SCHEMA).await?;
    Ok(client)
}

/// A `u64` as an `i64` that sorts the same way.
pub fn ordered(x: u64) -> i64 {
    (x ^ (1 << 63)) as i64
}

/// One fact to keep: its head and its bytes (head included).
pub struct Row {
    pub head: crate::wire::FactHead,
    pub body: bytes::Bytes,
}

/// Keeps `rows` in one transaction; a fact kept already is left as it is. Returns how many
/// were new.
pub async fn keep(client: &mut Client, rows: &[Row]) -> Result<u64, FleetError> {
    let ids: Vec<&[u8]> = rows.iter().map(|r| &r.head.id[..]).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.head.time_us).collect();
    let his: Vec<i64> = rows.iter().map(|r| ordered(r.head.order.0)).collect();
    let los: Vec<i64> = rows.iter().map(|r| ordered(r.head.order.1)).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| &r.body[..]).collect();
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "INSERT INTO fleet_facts (id, time_us, order_hi, order_lo, body)
             SELECT * FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bytea[])
             ON CONFLICT (id) DO NOTHING",
            &[&ids, &times, &his, &los, &bodies],
        )
        .await?;
    tx.commit().await?;
    Ok(n)
}

/// Facts kept, and facts the kept results were made from (none yet: -1).
pub async fn progress(client: &Client) -> Result<(i64, i64), FleetError> {
    let kept: i64 = client
        .query_one("SELECT count(*) FROM fleet_facts", &[])
        .await?
        .get(0);
    let concluded = client
        .query_opt("SELECT facts FROM fleet_results", &[])
        .await?
        .map_or(-1, |r| r.get(0));
    Ok((kept, concluded))
}

/// Every fact's bytes, in time order (then record order), read as a stream.
pub async fn facts_in_order(
    client: &Client,
) -> Result<impl Stream<Item = Result<Vec<u8>, FleetError>> + '_, FleetError> {
    let rows = client
        .query_raw(
            "SELECT body FROM fleet_facts ORDER BY time_us, order_hi, order_lo, id",
            std::iter::empty::<i64>(),
        )
        .await?;
    Ok(rows.map(|r| r.map(|r| r.get::<_, Vec<u8>>(0)).map_err(FleetError::from)))
}

/// What one conclusion gives, as kept for `serve --fleet` to show.
pub struct Conclusion {
    /// Facts absorbed (one per event), and events the hunt counted among them.
    pub facts: i64,
    pub events: i64,
    /// `operations.json`.
    pub operations: String,
    /// The exposure (`towerwatch_report::ReportExposure` as JSON), when the audit showed one.
    pub exposure: Option<String>,
    /// The rules that fired (`towerwatch_hunt::Fired` as a JSON array).
    pub fired: String,
}

/// A conclusion as kept: which one it is, and when it was made.
pub struct Saved {
    /// Counts up with every conclusion: a reader's copy is current while it is the same.
    pub generation: i64,
    /// When it was concluded (RFC 3339, UTC).
    pub made_at: String,
    pub conclusion: Conclusion,
    /// Detections as `hunt -o x.jsonl` writes them, one per line.
    pub detections: Vec<String>,
}

/// A conclusion's detections on their way to PostgreSQL, one JSON line each: in a temporary
/// file past a few thousand, so that the builder's memory does not grow with them.
pub type DetectionLines = towerwatch_spill::Tape<String>;

/// Detection lines written per statement.
const LINES_PER_INSERT: usize = 2_000;

/// Replaces the results with these, in one transaction (the generation counts up).
pub async fn save_results(
    client: &mut Client,
    saved: &Conclusion,
    detections: DetectionLines,
) -> Result<(), FleetError> {
    let unheld = |e: towerwatch_spill::SpillError| FleetError::Hunt(e.into());
    let tx = client.transaction().await?;
    tx.execute("DELETE FROM fleet_detections", &[]).await?;
    let (mut n, mut chunk) = (0i64, Vec::with_capacity(LINES_PER_INSERT));
    let mut lines = detections.read().map_err(unheld)?.peekable();
    while let Some(line) = lines.next() {
        chunk.push(line.map_err(unheld)?);
        if chunk.len() == LINES_PER_INSERT || lines.peek().is_none() {
            let numbers: Vec<i64> = (n..n + chunk.len() as i64).collect();
            tx.execute(
                "INSERT INTO fleet_detections (n, line) SELECT * FROM unnest($1::bigint[], $2::text[])",
                &[&numbers, &chunk],
            )
            .await?;
            n += chunk.len() as i64;
            chunk.clear();
        }
    }
    tx.execute(
        "INSERT INTO fleet_results (one, facts, detections, operations, made_at, generation, events, exposure, fired)
         VALUES (true, $1, $2, $3, now(), 1, $4, $5, $6)
         ON CONFLICT (one) DO UPDATE SET facts = $1, detections = $2, operations = $3, made_at = now(),
             generation = fleet_results.generation + 1, events = $4, exposure = $5, fired = $6",
        &[&saved.facts, &n, &saved.operations, &saved.events, &saved.exposure, &saved.fired],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Whether `e` says the tables are not there (no builder has connected yet).
fn no_tables(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE)
}

/// The generation of the kept results (`None`: no conclusion yet, or no builder has made
/// the tables).
pub async fn generation(client: &Client) -> Result<Option<i64>, FleetError> {
    match client
        .query_opt("SELECT generation FROM fleet_results", &[])
        .await
    {
        Ok(row) => Ok(row.map(|r| r.get(0))),
        Err(e) if no_tables(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The kept results, read in one snapshot (`None`: no conclusion yet).
pub async fn saved(client: &mut Client) -> Result<Option<Saved>, FleetError> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let row = match tx
        .query_opt(
            "SELECT generation, facts, events, operations, exposure, fired,
                    to_char(made_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
             FROM fleet_results",
            &[],
        )
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(None),
        Err(e) if no_tables(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let detections = tx
        .query("SELECT line FROM fleet_detections ORDER BY n", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    tx.commit().await?;
    Ok(Some(Saved {
        generation: row.get(0),
        made_at: row.get(6),
        conclusion: Conclusion {
            facts: row.get(1),
            events: row.get(2),
            operations: row.get(3),
            exposure: row.get(4),
            fired: row.get(5),
        },
        detections,
    }))
}

/// Calls `find` on every kept fact's bytes until it finds something (a reveal looks for the
/// number behind a pseudonym in what the workers judged).
pub async fn find_in_facts<T>(
    client: &Client,
    mut find: impl FnMut(&[u8]) -> Option<T>,
) -> Result<Option<T>, FleetError> {
    let rows = client
        .query_raw("SELECT body FROM fleet_facts", std::iter::empty::<i64>())
        .await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        if let Some(found) = find(row?.get::<_, &[u8]>(0)) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}
