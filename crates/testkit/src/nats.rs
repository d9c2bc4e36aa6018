//! A NATS server with JetStream, of its own, for one test.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `nats-server -js` on a free port of 127.0.0.1, its JetStream store in a temp dir; it can
/// be stopped and started again on the same port with the same store (an outage).
pub struct LocalNats {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its JetStream store.
    pub store: PathBuf,
    /// Its log.
    pub log: PathBuf,
    /// Arguments added to its command line (TLS, say).
    extra: Vec<String>,
    _dir: tempfile::TempDir,
}

impl LocalNats {
    /// Starts one and waits until it greets clients.
    pub fn start() -> LocalNats {
        LocalNats::start_with(&[])
    }

    /// Starts one with `extra` arguments (`--tls --tlscert …`) and waits until it greets
    /// clients.
    pub fn start_with(extra: &[&str]) -> LocalNats {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut nats = LocalNats {
            child: None,
            port: crate::free_port(),
            store: dir.path().join("jetstream"),
            log: dir.path().join("server.log"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            _dir: dir,
        };
        nats.start_again();
        nats
    }

    /// `nats://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts it (again, after [`stop`](Self::stop)) on its port with its store.
    pub fn start_again(&mut self) {
        self.stop();
        let log = crate::append_to(&self.log);
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts (scripts/test.sh installs Debian's nats-server)");
        self.child = Some(child);
        crate::wait_until_ready("nats-server", Duration::from_secs(30), &self.log, || {
            self.ready()
        });
    }

    /// Whether it greets a client (a NATS server's first words are `INFO {…}`).
    pub fn ready(&self) -> bool {
        let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("INFO ")
    }

    /// Stops it at once (SIGKILL: an outage, not a shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalNats {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_greets_stops_and_starts_again_on_its_port() {
        let mut nats = LocalNats::start();
        assert!(nats.ready());
        nats.stop();
        assert!(!nats.ready());
        nats.start_again();
        assert!(nats.ready());
        let port = nats.port;
        drop(nats);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
