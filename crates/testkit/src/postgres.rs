//! A PostgreSQL server of its own, for one test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A PostgreSQL server of its own: `initdb` in a temp dir, listening on 127.0.0.1 only,
/// trust authentication for the `postgres` user.
pub struct LocalPostgres {
    bin: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    as_postgres: bool,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its server log (stderr).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The newest PostgreSQL's binaries under `/usr/lib/postgresql`.
fn bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/test.sh installs postgresql)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("no PostgreSQL server binaries under /usr/lib/postgresql")
}

fn command(as_postgres: bool, program: &Path) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl LocalPostgres {
    /// Starts one, with `settings` added to its `postgresql.conf`, and waits until it
    /// takes connections.
    pub fn start(settings: &str) -> LocalPostgres {
        let mut server = LocalPostgres::initialised(settings);
        server.start_again();
        server
    }

    /// Starts one that takes TLS connections only (over TCP), with this certificate chain
    /// and key (PEM), and waits until it takes connections.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> LocalPostgres {
        let mut server = LocalPostgres::initialised(
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'",
        );
        let write = |name: &str, text: &str| {
            let path = server.data.join(name);
            std::fs::write(&path, text).expect("the data directory is writable");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            if server.as_postgres {
                let owned = Command::new("chown")
                    .arg("postgres")
                    .arg(&path)
                    .status()
                    .expect("chown runs");
                assert!(owned.success(), "cannot give {name} to postgres");
            }
        };
        write("server.crt", cert_pem);
        write("server.key", key_pem);
        let hba = server.data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).expect("initdb wrote pg_hba.conf");
        write(
            "pg_hba.conf",
            &format!("hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n{rules}"),
        );
        server.start_again();
        server
    }

    /// `initdb` with `settings`; not started.
    fn initialised(settings: &str) -> LocalPostgres {
        let bin = bin();
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .expect("id runs")
            .stdout;
        let as_postgres = String::from_utf8_lossy(&uid).trim() == "0";
        let dir = tempfile::tempdir().expect("a temp dir");
        let data = dir.path().join("data");
        if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(owned.success(), "cannot give the temp dir to postgres");
        }
        let out = command(as_postgres, &bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = crate::free_port();
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("initdb wrote postgresql.conf");
        text.push_str(&format!(
            "{settings}\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            dir.path().display()
        ));
        std::fs::write(&conf, text).expect("postgresql.conf is writable");
        let log = dir.path().join("server.log");
        LocalPostgres {
            bin,
            data,
            child: None,
            as_postgres,
            port,
            log,
            _dir: dir,
        }
    }

    /// Starts it (again, after [`stop`](Self::stop)) on its port with its data, and waits
    /// until it takes connections.
    pub fn start_again(&mut self) {
        self.stop();
        let log = crate::append_to(&self.log);
        let child = command(self.as_postgres, &self.bin.join("postgres"))
            .arg("-D")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        crate::wait_until_ready("PostgreSQL", Duration::from_secs(60), &self.log, || {
            self.ready()
        });
    }

    /// One of its client programs (`psql`, `pg_isready`), pointed at it as `postgres`.
    fn client(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin.join(program));
        let port = self.port.to_string();
        c.args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"]);
        c
    }

    /// Whether it takes connections (`pg_isready`).
    pub fn ready(&self) -> bool {
        self.client("pg_isready")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// The URL of database `db` as the `postgres` user.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs `sql` with `psql` in the `postgres` database: its output (unaligned, tuples
    /// only), or the error it gave.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        let out = self
            .client("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    /// Stops it (a fast shutdown: its log is complete afterwards).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = command(self.as_postgres, &self.bin.join("pg_ctl"))
                .args(["stop", "-m", "fast", "-w", "-D"])
                .arg(&self.data)
                .output();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answers_keeps_its_data_across_a_restart_and_is_gone_when_dropped() {
        let mut pg = LocalPostgres::start("");
        assert_eq!(pg.psql("SELECT 40 + 2"), Ok("42".into()));
        assert!(pg.psql("SELECT nothing_at_all").is_err());
        pg.psql("CREATE TABLE kept AS SELECT 7 AS n").unwrap();
        pg.stop();
        assert!(!pg.ready());
        pg.start_again();
        assert_eq!(pg.psql("SELECT n FROM kept"), Ok("7".into()));
        let port = pg.port;
        drop(pg);
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
