//! The statements the warehouse's clients send, written for the profile's schema: mediation
//! loads, customer care lookups, the bill run, BI dashboards, lawful disclosure, backups, the
//! DBA's checks, and the intruder's lookups and exports.

use crate::profile::{CdrSchema, TheftStyle};

/// Mediated-CDR field indexes (see [`CdrSchema::columns`]).
pub const RECORD_TYPE: usize = 1;
pub const MSISDN: usize = 3;
pub const IMEI: usize = 4;
pub const CALLING: usize = 5;
pub const CALLED: usize = 6;
pub const START: usize = 7;
pub const END: usize = 9;
pub const DURATION: usize = 10;
pub const AREA: usize = 13;
pub const CELL: usize = 14;

/// Builds statement texts for one schema.
pub struct Sql<'a>(pub &'a CdrSchema);

impl Sql<'_> {
    fn c(&self, i: usize) -> String {
        self.0.col(i)
    }

    fn all_columns(&self) -> String {
        (0..22).map(|i| self.c(i)).collect::<Vec<_>>().join(", ")
    }

    /// The mediation's load of a partition.
    pub fn load(&self, partition: &str) -> String {
        format!(
            "COPY {partition} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)",
            self.all_columns()
        )
    }

    /// Customer care: one subscriber's records over recent weeks (parameters: number, from, to).
    pub fn care_lookup(&self, table: &str) -> String {
        format!(
            "SELECT {s}, {rt}, {a}, {b}, {d} FROM {table} WHERE {m} = $1 AND {s} >= $2::timestamptz AND {s} < $3::timestamptz ORDER BY {s}",
            s = self.c(START),
            rt = self.c(RECORD_TYPE),
            a = self.c(CALLING),
            b = self.c(CALLED),
            d = self.c(DURATION),
            m = self.c(MSISDN),
        )
    }

    /// Customer care: who a number is (parameter: number).
    pub fn care_subscriber(&self) -> Option<(String, &'static str)> {
        let [table, msisdn, imsi, imei, customer, segment] = self.0.subscriber?;
        Some((
            format!(
                "SELECT {customer}, {segment}, {imsi}, {imei} FROM {table} WHERE {msisdn} = $1"
            ),
            table,
        ))
    }

    /// The nightly bill run (parameters: from, to).
    pub fn bill_run(&self) -> String {
        format!(
            "SELECT {m}, {rt}, count(*), sum({d}) FROM {t} WHERE {s} >= $1::timestamptz AND {s} < $2::timestamptz GROUP BY {m}, {rt}",
            m = self.c(MSISDN),
            rt = self.c(RECORD_TYPE),
            d = self.c(DURATION),
            t = self.0.voice,
            s = self.c(START),
        )
    }

    /// BI's cell-load dashboard (parameter: from).
    pub fn bi_refresh(&self) -> String {
        format!(
            "SELECT date_trunc('day', {s}) AS day, {a}, {c}, count(*) FROM {t} WHERE {s} >= $1::timestamptz GROUP BY 1, 2, 3",
            s = self.c(START),
            a = self.c(AREA),
            c = self.c(CELL),
            t = self.0.data,
        )
    }

    /// A lawful-disclosure lookup (parameters: number, from, to).
    pub fn disclosure(&self, table: &str, case: &str) -> String {
        format!(
            "SELECT {s}, {e}, {rt}, {a}, {b}, {i}, {ar}, {c} FROM {table} WHERE {m} = $1 AND {s} >= $2::timestamptz AND {s} < $3::timestamptz /* case {case} */",
            s = self.c(START),
            e = self.c(END),
            rt = self.c(RECORD_TYPE),
            a = self.c(CALLING),
            b = self.c(CALLED),
            i = self.c(IMEI),
            ar = self.c(AREA),
            c = self.c(CELL),
            m = self.c(MSISDN),
        )
    }

    /// pg_dump's copy of a table.
    pub fn dump(&self, table: &str) -> String {
        format!("COPY {table} ({}) TO stdout;", self.all_columns())
    }

    /// The DBA's daily checks.
    pub fn dba_checks(&self) -> [(String, &'static str); 3] {
        let s = self.c(START);
        [
            (
                format!(
                    "select count(*) from {} where {s} >= now() - interval '1 day'",
                    self.0.voice
                ),
                self.0.voice,
            ),
            (format!("select max({s}) from {}", self.0.data), self.0.data),
            (
                format!(
                    "select {rt}, count(*) from {} where {s} >= current_date group by {rt}",
                    self.0.sms,
                    rt = self.c(RECORD_TYPE)
                ),
                self.0.sms,
            ),
        ]
    }

    /// The intruder's look at who the targets are.
    pub fn recon(&self, numbers: &[String]) -> Option<(String, &'static str)> {
        let [table, msisdn, imsi, imei, customer, segment] = self.0.subscriber?;
        Some((
            format!(
                "select {msisdn}, {imsi}, {imei}, {customer}, {segment} from {table} where {msisdn} in ({})",
                list(numbers)
            ),
            table,
        ))
    }

    /// The intruder's read of a table for its targets since `from` (a date), up to `until` (a
    /// date) where its habit writes an upper bound; `copy` wraps it in `COPY (…) TO STDOUT`.
    pub fn theft(
        &self,
        style: TheftStyle,
        table: &str,
        numbers: &[String],
        from: &str,
        until: &str,
        copy: bool,
    ) -> String {
        let l = list(numbers);
        let s = self.c(START);
        let body = match style {
            TheftStyle::Served => format!(
                "select {s}, {e}, {rt}, {a}, {b},\n       {d}, {i}, {ar}, {c}\n  from {table}\n where {m} in ({l})\n   and {s} >= '{from}'\n order by {m}, {s}",
                e = self.c(END),
                rt = self.c(RECORD_TYPE),
                a = self.c(CALLING),
                b = self.c(CALLED),
                d = self.c(DURATION),
                i = self.c(IMEI),
                ar = self.c(AREA),
                c = self.c(CELL),
                m = self.c(MSISDN),
            ),
            TheftStyle::Parties => format!(
                "select e.{s}, e.{a}, e.{b}, e.{d}, e.{ar}, e.{c}, e.{i}\n  from {table} e\n where (e.{a} in ({l}) or e.{b} in ({l}))\n   and e.{s} >= '{from}'",
                a = self.c(CALLING),
                b = self.c(CALLED),
                d = self.c(DURATION),
                ar = self.c(AREA),
                c = self.c(CELL),
                i = self.c(IMEI),
            ),
            TheftStyle::JoinSubscriber => {
                let [sub, msisdn, ..] = self.0.subscriber.expect("joins need a subscriber table");
                format!(
                    "select u.{s}, u.{a}, u.{b}, u.{ar}, u.{c}\n  from {table} u\n  join {sub} l on l.{msisdn} = u.{m}\n where l.{msisdn} in ({l})\n   and u.{s} between '{from}' and '{until}'",
                    a = self.c(CALLING),
                    b = self.c(CALLED),
                    ar = self.c(AREA),
                    c = self.c(CELL),
                    m = self.c(MSISDN),
                )
            }
        };
        if copy {
            format!(
                "COPY ({}) TO STDOUT WITH CSV HEADER",
                body.replace('\n', " ")
            )
        } else {
            format!("{body};")
        }
    }
}

fn list(numbers: &[String]) -> String {
    numbers
        .iter()
        .map(|m| format!("'{m}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
