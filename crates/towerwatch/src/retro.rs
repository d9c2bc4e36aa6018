//! `towerwatch retro`: rule files → `towerwatch_serve::retro` over a server's store → JSON
//! Lines and a summary.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use towerwatch_serve::retro::{retro_in, Like, Window};

use crate::term::complainln;
use crate::RetroArgs;

pub fn run(args: RetroArgs) -> Result<ExitCode> {
    let (pseudonyms, shown) = towerwatch_cdr::context::key(args.key_file.as_deref(), None)?;
    let read = towerwatch_sources::ReadOptions::default();
    let like = Like {
        pseudonyms: (&pseudonyms, shown),
        read: &read,
    };
    let window = Window {
        from: args.from,
        to: args.to,
    };
    let found = retro_in(
        &towerwatch_serve::db::Database {
            dir: args.data.clone(),
            postgres: args.database.clone(),
        },
        &args.rules,
        like,
        &window,
    )?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    for d in &found.detections {
        serde_json::to_writer(&mut out, d)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    complainln!(
        "towerwatch retro: {} rules over {} events: {} detections; {} rules refused",
        found.rules,
        found.events,
        found.detections.len(),
        found.refused.len()
    );
    for r in &found.refused {
        complainln!("  {r}");
    }
    Ok(ExitCode::SUCCESS)
}
