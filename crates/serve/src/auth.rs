//! Who may do what: bearer tokens, stored as argon2 hashes only, each with one role; and the
//! audit log of what was done with them (append-only: no route edits or deletes it).
//!
//! A token reads `tw_<id>_<secret>`: the id finds its row, the secret is checked against
//! the row's hash. There are no default credentials: `towerwatch serve init` issues the
//! first admin token and prints it once.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use crate::db::{Arg, Db, DbError};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the results.
    Viewer,
    /// Sends events (a shipper's token): nothing else.
    Ingest,
    /// Reads the results, sends events, and reveals a subscriber's identity (with a
    /// reason, on the record).
    Analyst,
    /// Everything, and issues tokens and reads the audit log.
    Admin,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Ingest,
    /// Reveals a subscriber's real identifiers (with a reason, on the record).
    Reveal,
    /// Runs new rules over the stored events (a retro-hunt, on the record).
    Retro,
    Admin,
}

impl Role {
    pub fn can(self, need: Need) -> bool {
        match need {
            Need::Read => matches!(self, Role::Viewer | Role::Analyst | Role::Admin),
            Need::Ingest => matches!(self, Role::Ingest | Role::Analyst | Role::Admin),
            Need::Reveal | Need::Retro => matches!(self, Role::Analyst | Role::Admin),
            Need::Admin => self == Role::Admin,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
            Role::Admin => "admin",
        }
    }

    fn parse(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Ingest, Role::Analyst, Role::Admin]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// The holder of a valid token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: i64,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token store: {0}")]
    Db(#[from] DbError),
    #[error("cannot make a token: {0}")]
    Token(String),
    #[error("an admin token exists already: `serve init` issues the first one only")]
    Initialised,
}

/// Tokens and the audit log, in the data directory's database.
pub struct Auth {
    db: Mutex<Db>,
    /// Tokens already checked, by a digest of the whole token (argon2 is slow on purpose;
    /// a token is checked against its hash once per process).
    checked: Mutex<HashMap<[u8; 32], Caller>>,
    /// argon2 checks per token id: guessing one token's secret (its id is a small number)
    /// cannot keep the cores busy.
    attempts: governor::DefaultKeyedRateLimiter<i64>,
}

/// Why a token was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Not a token of this server, or not its secret.
    Invalid,
    /// Too many checks of this token's id just now (its secret is being guessed).
    Throttled,
}

/// argon2 checks a token id may take per second (in bursts of as many).
const ATTEMPTS_PER_SECOND: u32 = 5;

impl Auth {
    pub fn open(db: Db) -> Auth {
        let rate = std::num::NonZeroU32::new(ATTEMPTS_PER_SECOND).expect("not zero");
        Auth {
            db: Mutex::new(db),
            checked: Mutex::new(HashMap::new()),
            attempts: governor::DefaultKeyedRateLimiter::keyed(governor::Quota::per_second(rate)),
        }
    }

    /// Whether an admin token exists (a store without one serves nobody).
    pub fn initialised(&self) -> Result<bool, AuthError> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let admins = db.number("SELECT count(*) FROM tokens WHERE role = 'admin'", &[])?;
        Ok(admins > 0)
    }

    /// The first admin token, once.
    pub fn init(&self) -> Result<String, AuthError> {
        if self.initialised()? {
            return Err(AuthError::Initialised);
        }
        self.issue("first admin", Role::Admin, None)
    }

    /// A new token for `name` with `role`; only its hash is kept.
    pub fn issue(&self, name: &str, role: Role, by: Option<&Caller>) -> Result<String, AuthError> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| AuthError::Token(e.to_string()))?;
        let secret = towerwatch_hunt::rules::hex(&secret);
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| AuthError::Token(e.to_string()))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Token(e.to_string()))?;
        let hash = Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map_err(|e| AuthError::Token(e.to_string()))?
            .to_string();
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        let created = now();
        let id = db.number(
            "INSERT INTO tokens (name, role, hash, created) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            &[
                Arg::Text(name),
                Arg::Text(role.name()),
                Arg::Text(&hash),
                Arg::Text(&created),
            ],
        )?;
        drop(db);
        self.record(
            by,
            "issue token",
            &format!("{name} ({}) as token {id}", role.name()),
        )?;
        Ok(format!("tw_{id}_{secret}"))
    }

    /// The caller a bearer token names, if it is valid.
    pub fn check(&self, token: &str) -> Result<Caller, Denied> {
        self.verify(token).unwrap_or(Err(Denied::Invalid))
    }

    fn verify(&self, token: &str) -> Option<Result<Caller, Denied>> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(c) = self
            .checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Some(Ok(c.clone()));
        }
        let (id, secret) = token.strip_prefix("tw_")?.split_once('_')?;
        let id: i64 = id.parse().ok()?;
        let row: Option<(String, String, String)> = self
            .db
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .first(
                "SELECT name, role, hash FROM tokens WHERE id = ?1",
                &[Arg::from(id)],
                |r| {
                    Ok((
                        r.text(0)?.unwrap_or_default(),
                        r.text(1)?.unwrap_or_default(),
                        r.text(2)?.unwrap_or_default(),
                    ))
                },
            )
            .ok()?;
        let (name, role, hash) = row?;
        if self.attempts.check_key(&id).is_err() {
            return Some(Err(Denied::Throttled));
        }
        let parsed = PasswordHash::new(&hash).ok()?;
        Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .ok()?;
        let caller = Caller {
            token: id,
            name,
            role: Role::parse(&role)?,
        };
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, caller.clone());
        Some(Ok(caller))
    }

    /// Appends to the audit log: who (a token, or the server itself), what, and about what.
    pub fn record(&self, by: Option<&Caller>, action: &str, detail: &str) -> Result<(), AuthError> {
        let time = now();
        self.db.lock().unwrap_or_else(|p| p.into_inner()).execute(
            "INSERT INTO audit (time, token, who, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                Arg::Text(&time),
                Arg::Int(by.map(|c| c.token)),
                Arg::Text(by.map_or("towerwatch serve init", |c| c.name.as_str())),
                Arg::Text(action),
                Arg::Text(detail),
            ],
        )?;
        Ok(())
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> Result<Vec<serde_json::Value>, AuthError> {
        let mut db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        // In the order written: SQLite's row ids, PostgreSQL's serial ids.
        let order = if db.is_postgres() { "id" } else { "rowid" };
        Ok(db.rows(
            &format!("SELECT time, token, who, action, detail FROM audit ORDER BY {order}"),
            &[],
            |r| {
                Ok(serde_json::json!({
                    "time": r.text(0)?,
                    "token": r.int(1)?,
                    "who": r.text(2)?,
                    "action": r.text(3)?,
                    "detail": r.text(4)?,
                }))
            },
        )?)
    }
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}
