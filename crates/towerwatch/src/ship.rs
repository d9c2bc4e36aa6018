//! `towerwatch ship`: arguments → `towerwatch_serve::ship::Shipper` → the terminal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use towerwatch_serve::ship::{Note, ShipError, Shipper};

use crate::term::{complainln, sayln};
use crate::ShipArgs;

pub fn run(args: ShipArgs) -> Result<ExitCode> {
    if let Some(nats) = &args.nats {
        return crate::fleet::ship(nats, &args);
    }
    let to = args.to.clone().unwrap_or_default();
    let token = match (&args.token, std::env::var("TOWERWATCH_TOKEN")) {
        (Some(t), _) => t.clone(),
        (None, Ok(t)) => t,
        (None, Err(_)) => bail!("a token is needed: --token or TOWERWATCH_TOKEN"),
    };
    let shipper = Shipper {
        to: to.clone(),
        token,
        state: args
            .state
            .clone()
            .unwrap_or_else(|| PathBuf::from("towerwatch-ship.offsets.json")),
        batch: args.batch.max(1),
        retry_for: Duration::from_secs(args.retry_for),
    };
    let follow = args
        .follow
        .then(|| Duration::from_millis(args.poll_ms.max(10)));
    // Ctrl-C or SIGTERM ends a follow (after the batch in flight) with its offsets kept.
    crate::interrupt::flag();
    let shipped = shipper.run(
        &args.paths,
        follow,
        &crate::interrupt::interrupted,
        &mut |note| match note {
            Note::Rejected { source, line, why } => {
                complainln!("towerwatch ship: {source}:{line}: {why}")
            }
            Note::Skipped { path, why } => complainln!("towerwatch ship: {path} skipped: {why}"),
            Note::Restarted { path, source } => complainln!(
                "towerwatch ship: {path} was replaced or truncated: shipped again as {source}"
            ),
        },
    );
    let shipped = match shipped {
        Ok(s) => s,
        Err(e @ ShipError::Stopped { .. }) => {
            complainln!("towerwatch ship: {e}");
            return Ok(ExitCode::from(crate::interrupt::EXIT_CODE));
        }
        Err(e) => return Err(e.into()),
    };
    sayln!(
        "towerwatch ship: {} files, {} lines acknowledged by {}; {} files skipped",
        shipped.files,
        shipped.lines,
        to,
        shipped.skipped
    );
    Ok(ExitCode::SUCCESS)
}
