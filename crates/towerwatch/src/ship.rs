//! `towerwatch ship`: arguments → `towerwatch_serve::ship::Shipper` → the terminal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use towerwatch_serve::ship::{endpoint_of, Shipper};

use crate::term::{complainln, sayln};
use crate::ShipArgs;

pub fn run(args: ShipArgs) -> Result<ExitCode> {
    let token = match (&args.token, std::env::var("TOWERWATCH_TOKEN")) {
        (Some(t), _) => t.clone(),
        (None, Ok(t)) => t,
        (None, Err(_)) => bail!("a token is needed: --token or TOWERWATCH_TOKEN"),
    };
    let shipper = Shipper {
        to: args.to.clone(),
        token,
        state: args
            .state
            .clone()
            .unwrap_or_else(|| PathBuf::from("towerwatch-ship.offsets.json")),
        batch: args.batch.max(1),
        retry_for: Duration::from_secs(args.retry_for),
    };
    let mut offsets = shipper.offsets()?;
    let (inputs, problems) = towerwatch_sources::discover(&args.paths);
    for p in &problems {
        complainln!("towerwatch ship: {p}");
    }
    let (mut files, mut lines, mut skipped) = (0, 0u64, 0);
    for input in &inputs {
        let towerwatch_sources::Input::File(path) = input else {
            complainln!("towerwatch ship: stdin is not shipped (give files)");
            continue;
        };
        let endpoint = match endpoint_of(path) {
            Ok(e) => e,
            Err(why) => {
                complainln!("towerwatch ship: {} skipped: {why}", path.display());
                skipped += 1;
                continue;
            }
        };
        files += 1;
        lines += shipper.ship_file(path, endpoint, &mut offsets, &mut |source, line, why| {
            complainln!("towerwatch ship: {source}:{line}: {why}");
        })?;
    }
    sayln!(
        "towerwatch ship: {files} files, {lines} lines acknowledged by {}; {skipped} files skipped",
        args.to
    );
    Ok(ExitCode::SUCCESS)
}
