//! Real services for the tests — no mocks where the real thing can run here. Each is
//! started in a temporary directory on a free local port and stopped when dropped.
//!
//! [`LocalPostgres`] needs Debian's `postgresql` (and `postgresql-15-pgaudit` for pgaudit
//! settings); `scripts/test.sh` installs them. When the tests run as root, the server runs
//! as the `postgres` user (PostgreSQL refuses root). [`LocalNats`] needs Debian's
//! `nats-server` (JetStream on, its store in the temp dir).
//!
//! ```no_run
//! let pg = towerwatch_testkit::LocalPostgres::start("");
//! assert_eq!(pg.psql("SELECT 1 + 1").unwrap(), "2");
//! println!("{}", pg.url("postgres"));
//! let nats = towerwatch_testkit::LocalNats::start();
//! println!("{}", nats.url());
//! ```

mod nats;
mod postgres;

pub use nats::LocalNats;
pub use postgres::LocalPostgres;

/// A server's log, opened to append (a server started again adds to it).
fn append_to(log: &std::path::Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("a log file")
}

/// Waits up to `limit` for `ready`; fails with `what` and the server's log.
fn wait_until_ready(
    what: &str,
    limit: std::time::Duration,
    log: &std::path::Path,
    ready: impl Fn() -> bool,
) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server takes it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
