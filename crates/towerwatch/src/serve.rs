//! `towerwatch serve`: arguments → the hunt → the live service.

use std::process::ExitCode;

use anyhow::Result;

use crate::ServeArgs;

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    if let Some(crate::ServeAction::Init) = args.action {
        let token = towerwatch_serve::init_in(&towerwatch_serve::db::Database {
            dir: args.data.clone(),
            postgres: args.database.clone(),
        })?;
        crate::term::sayln!(
            "towerwatch serve: the first admin token, shown this once (only its hash is kept):\n{token}"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let hunt = crate::hunt::configure_setup(&args.setup)?;
    // Reveals need the operator's key, not one drawn for this run.
    let operator_key = args.setup.context.key_file.is_some()
        || std::env::var_os(towerwatch_cdr::context::KEY_ENV).is_some();
    let config = towerwatch_serve::Config {
        hunt: Box::leak(Box::new(hunt)),
        lateness: jiff::SignedDuration::from_secs(args.lateness as i64),
        operator_key,
        rate_limit: args.rate_limit,
        retain: args.retain,
        database: args.database.clone(),
        fleet: args.fleet,
        nats: args.nats.as_deref().map(|url| args.nats_tls.access(url)),
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(towerwatch_serve::Tls { cert, key }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    towerwatch_serve::run(args.listen, &args.data, config, tls.as_ref(), |addr| {
        crate::term::sayln!("towerwatch serve: listening on {scheme}://{addr}");
    })?;
    Ok(ExitCode::SUCCESS)
}
