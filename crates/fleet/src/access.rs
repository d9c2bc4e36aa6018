//! How the fleet reaches NATS and PostgreSQL, over TLS when asked.
//!
//! - **NATS** ([`NatsAccess`]): a `tls://` URL, or a CA file, makes the connection TLS, the
//!   server's certificate checked against the CA; a client certificate and key answer a
//!   server that asks for one (`verify: true`); a credentials file (JWT and NKey seed) or a
//!   `user:password@` in the URL authenticate.
//! - **PostgreSQL** ([`postgres`]): libpq's own URL parameters. `sslmode=require`,
//!   `verify-ca` or `verify-full` with `sslrootcert=FILE` make the connection TLS, the
//!   server's certificate and host name checked against that CA (towerwatch always checks
//!   both, where libpq checks less for `require` and `verify-ca`); `sslcert` and `sslkey`
//!   give a client certificate. Without them (`sslmode` `disable`, `allow` or `prefer`, the
//!   default) the connection is plain, as before.
//!
//! ```
//! let (config, _tls) = towerwatch_fleet::access::postgres(
//!     "postgres://towerwatch@db.example/towerwatch?sslmode=disable",
//! ).unwrap();
//! assert_eq!(config.get_dbname(), Some("towerwatch"));
//! assert!(towerwatch_fleet::access::postgres("postgres://db/x?sslmode=verify-full").is_err());
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::FleetError;

/// Where NATS is and what to prove both sides with.
#[derive(Debug, Clone, Default)]
pub struct NatsAccess {
    /// `nats://host:4222`, `tls://host:4222` (TLS required), `nats://user:password@host:4222`.
    pub url: String,
    /// CA certificates (PEM) the server's certificate must chain to; TLS is then required.
    pub ca: Option<PathBuf>,
    /// This client's certificate chain (PEM), with `key`, for a server that verifies clients.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A NATS credentials file (`.creds`: a user JWT and its NKey seed).
    pub creds: Option<PathBuf>,
}

impl NatsAccess {
    /// The server at `url`, with nothing more.
    pub fn new(url: impl Into<String>) -> NatsAccess {
        NatsAccess {
            url: url.into(),
            ..NatsAccess::default()
        }
    }

    /// The URL as errors show it: what comes before `@` (a password, a token) is not.
    pub fn shown(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}…{}", &self.url[..scheme + 3], &self.url[at..])
            }
            _ => self.url.clone(),
        }
    }

    /// The client's options for this access (files are read when connecting).
    pub(crate) async fn options(&self) -> Result<async_nats::ConnectOptions, FleetError> {
        let refused = |why: String| FleetError::Connect {
            url: self.shown(),
            why,
        };
        let mut o = async_nats::ConnectOptions::new();
        if let Some(ca) = &self.ca {
            present(ca).map_err(refused)?;
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                present(cert).map_err(refused)?;
                present(key).map_err(refused)?;
                o = o
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(refused(
                    "a client certificate needs its key, and a key its certificate".into(),
                ))
            }
        }
        if let Some(creds) = &self.creds {
            o = o
                .credentials_file(creds)
                .await
                .map_err(|e| refused(format!("credentials {}: {e}", creds.display())))?;
        }
        Ok(o)
    }
}

impl From<&str> for NatsAccess {
    fn from(url: &str) -> NatsAccess {
        NatsAccess::new(url)
    }
}

fn present(p: &Path) -> Result<(), String> {
    std::fs::metadata(p)
        .map(|_| ())
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

/// The connection settings of a PostgreSQL URL, and the TLS connector they ask for (see
/// the module's notes). A connection with TLS not asked for never uses it; one asked for
/// is never made without it.
pub fn postgres(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), FleetError> {
    let bad = |why: String| FleetError::Setting(format!("the database URL: {why}"));
    // The query starts at the first `?` after the credentials (a password may hold one).
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let (base, query) = match url[after_credentials..].find('?') {
        Some(q) => url.split_at(after_credentials + q),
        None => (url, ""),
    };
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut kept = Vec::new();
    let (mut mode, mut root, mut cert, mut key) = (None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match percent_decoded(k).as_str() {
            "sslmode" => mode = Some(percent_decoded(v)),
            "sslrootcert" => root = Some(PathBuf::from(percent_decoded(v))),
            "sslcert" => cert = Some(PathBuf::from(percent_decoded(v))),
            "sslkey" => key = Some(PathBuf::from(percent_decoded(v))),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| bad(format!("{e}")))?;
    // What tokio-postgres read itself (a `key=value` string's sslmode) is not lowered.
    if mode.is_none() && config.get_ssl_mode() != SslMode::Prefer {
        if config.get_ssl_mode() != SslMode::Disable {
            return Err(bad(
                "for TLS, give a postgres:// URL with sslmode=verify-full&sslrootcert=FILE".into(),
            ));
        }
        mode = Some("disable".into());
    }
    // A CA or a client certificate given asks for TLS (libpq checks the server then, too).
    if mode.is_none() && (root.is_some() || cert.is_some() || key.is_some()) {
        mode = Some("verify-full".into());
    }
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(bad("sslcert and sslkey go together".into())),
    };
    let tls = match mode.as_deref().unwrap_or("prefer") {
        "disable" | "allow" | "prefer" if root.is_none() && client.is_none() => {
            config.ssl_mode(SslMode::Disable);
            None
        }
        "disable" | "allow" | "prefer" => {
            return Err(bad(
                "sslrootcert, sslcert and sslkey are for sslmode=require, verify-ca or verify-full"
                    .into(),
            ))
        }
        "require" | "verify-ca" | "verify-full" => {
            let root = root.ok_or_else(|| {
                bad("sslmode=require, verify-ca and verify-full need sslrootcert=FILE (the CA that signed the server's certificate: towerwatch always checks it)".into())
            })?;
            config.ssl_mode(SslMode::Require);
            Some((root, client))
        }
        other => {
            return Err(bad(format!(
            "sslmode={other} is none of disable, allow, prefer, require, verify-ca, verify-full"
        )))
        }
    };
    let client = match tls {
        None => client_config(rustls::RootCertStore::empty(), None)?,
        Some((root, client)) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certificates(&root)? {
                roots
                    .add(c)
                    .map_err(|e| bad(format!("{}: {e}", root.display())))?;
            }
            let client = match client {
                Some((cert, key)) => Some((
                    certificates(&cert)?,
                    PrivateKeyDer::from_pem_file(&key)
                        .map_err(|e| bad(format!("{}: {e}", key.display())))?,
                )),
                None => None,
            };
            client_config(roots, client)?
        }
    };
    Ok((config, MakeRustlsConnect::new(client)))
}

fn client_config(
    roots: rustls::RootCertStore,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<rustls::ClientConfig, FleetError> {
    let tls = |e: rustls::Error| FleetError::Setting(format!("TLS to PostgreSQL: {e}"));
    // ring, as serve and async-nats use it, not aws-lc-rs (rustls' choice for post-quantum
    // key exchange, deprecating ring's provider): that one builds C with cmake.
    #[allow(deprecated)]
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(tls)?
    .with_root_certificates(roots);
    match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(tls),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The certificates of a PEM file (at least one).
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, FleetError> {
    let bad = |why: String| FleetError::Setting(format!("{}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no certificate in it".into()));
    }
    Ok(certs)
}

/// A URL's key or value, `%2F` → `/` (as tokio-postgres decodes the rest of the URL).
fn percent_decoded(v: &str) -> String {
    percent_encoding::percent_decode_str(v)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_unless_tls_is_asked_for_with_a_ca() {
        for url in [
            "postgres://tw@db/tw",
            "postgres://tw@db/tw?sslmode=prefer&application_name=x",
            "postgres://tw@db/tw?sslmode=disable",
        ] {
            let (c, _) = postgres(url).unwrap();
            assert_eq!(c.get_ssl_mode(), SslMode::Disable, "{url}");
        }
        let (c, _) = postgres("postgres://tw@db/tw?application_name=x").unwrap();
        assert_eq!(c.get_application_name(), Some("x"));
        // TLS asked for is never dropped: each of these is refused, not made plain.
        for url in [
            "postgres://tw@db/tw?sslmode=require",
            "postgres://tw@db/tw?sslmode=verify-full",
            "postgres://tw@db/tw?sslmode=sometimes",
            "postgres://tw@db/tw?sslmode=verify-ca&sslrootcert=/no/such/ca.pem",
            // tokio-postgres's own reading of a key=value string.
            "host=db user=tw sslmode=require",
            // A `?` in the password: the query is after the credentials.
            "postgres://tw:p?a@db/tw?sslmode=require",
            "postgres://tw@db/tw?ssl%6Dode=require",
            // A CA without a mode asks for TLS (and this one cannot be read).
            "postgres://tw@db/tw?sslrootcert=/no/such/ca.pem",
            "postgres://tw@db/tw?sslmode=verify-full&sslrootcert=/no/such/ca.pem&sslcert=/c.pem",
            "postgres://tw@db/tw?sslmode=prefer&sslrootcert=/no/such/ca.pem",
        ] {
            assert!(postgres(url).is_err(), "{url}");
        }
        let (c, _) = postgres("postgres://tw:p?a@db/tw?sslmode=disable").unwrap();
        assert_eq!(c.get_password(), Some(&b"p?a"[..]));
        let (c, _) = postgres("host=db user=tw sslmode=disable").unwrap();
        assert_eq!(c.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn a_password_in_a_nats_url_is_not_shown() {
        assert_eq!(
            NatsAccess::new("nats://tw:secret@nats:4222").shown(),
            "nats://…@nats:4222"
        );
        assert_eq!(
            NatsAccess::new("tls://nats:4222").shown(),
            "tls://nats:4222"
        );
        assert_eq!(
            NatsAccess::new("nats://s3cr3t@nats").shown(),
            "nats://…@nats"
        );
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(percent_decoded("%2Fetc%2Fca.pem"), "/etc/ca.pem");
        assert_eq!(percent_decoded("a%2"), "a%2");
    }
}
