//! The story builder's PostgreSQL: every fact (one row per event identity), and the results
//! of the last conclusion (detections as `hunt -o x.jsonl` writes them, operations as
//! `operations.json`).

use futures::{Stream, StreamExt};
use tokio_postgres::{Client, NoTls};

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
";

/// A connection to `url`, its schema made if missing.
pub async fn connect(url: &str) -> Result<Client, FleetError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
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

/// Replaces the results with these, in one transaction.
pub async fn save_results(
    client: &mut Client,
    facts: i64,
    detections: Vec<String>,
    operations: String,
) -> Result<(), FleetError> {
    let tx = client.transaction().await?;
    tx.execute("DELETE FROM fleet_detections", &[]).await?;
    let n = detections.len() as i64;
    let numbers: Vec<i64> = (0..n).collect();
    tx.execute(
        "INSERT INTO fleet_detections (n, line) SELECT * FROM unnest($1::bigint[], $2::text[])",
        &[&numbers, &detections],
    )
    .await?;
    tx.execute(
        "INSERT INTO fleet_results (one, facts, detections, operations, made_at)
         VALUES (true, $1, $2, $3, now())
         ON CONFLICT (one) DO UPDATE SET facts = $1, detections = $2, operations = $3, made_at = now()",
        &[&facts, &n, &operations],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
